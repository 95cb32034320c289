// SPDX-License-Identifier: GPL-2.0

//! DMA dirty logging: the tracker's start and stop, the reports, and the
//! stop-copy re-hash whose result the final reports hand out.

use kernel::{
    alloc::flags::GFP_KERNEL_ACCOUNT,
    prelude::*,
    time::{Instant, Monotonic},
};

use super::{
    device::{Locked, MigDevice},
    params::rehash_lanes,
    spread::{zeroed_page, Spread},
    state::{Migration, Tracking},
};
use crate::{
    gmig_core::{
        dirtylog::{DirtyLog, Loss},
        farframes::FarFrames,
        gtt::PAGE_SIZE,
        planner::{self, Action, Phase},
        provider::Provider,
        tracker::HashTracker,
        writeset::{words_for, WriteSet},
    },
    log::dev_ratelimited,
    vfio::migration::IovaBitmap,
};

extern "C" {
    fn get_random_u64() -> u64;
}

/// The tracker's window is capped (8 bytes per page: 32 MiB for 16 GiB);
/// GPU-writable pages above it are kept in [`Tracking::far`] and reported
/// dirty in every report.
const MAX_WINDOW_PAGES: u64 = (16u64 << 30) / PAGE_SIZE;
/// Most GPU-writable frames kept outside the window (8 bytes each). One
/// more fails every report: the migration fails, no write goes unreported.
const MAX_FAR_FRAMES: usize = 1 << 16;

impl Migration {
    /// The stop-copy re-hash, when the vGPU has just been quiesced: its
    /// result waits in `pending` for the final report(s), so its cost
    /// falls inside the device downtime it belongs to.
    /// `open`: a VFIO user has the device open.
    pub(super) fn stop_scan(&mut self, d: &impl MigDevice, open: bool) {
        let action = planner::decide_rehash(self.policy, self.source, self.rehash, Phase::StopCopy);
        let Some(t) = self.tracking.as_mut() else {
            return;
        };
        let start = Instant::<Monotonic>::now();
        let st = t.scan(d, self.hashing, open, &mut self.stats, |log, h| {
            log.stop_scan_by(action, h)
        });
        let Some(st) = st else {
            return;
        };
        self.stats.writeset_unbounded += st.unbounded;
        if action == Action::Candidates {
            self.stats.pages_rehash_skipped = st.skipped;
        }
        self.stats.pages_rehashed_stopcopy = st.rehashed;
        self.stats.pages_dirty_stopcopy = st.dirty;
        self.stats.read_errors += st.read_errors;
        self.stats.rehash_stopcopy_us = start.elapsed().as_micros_ceil();
    }
}

pub(crate) fn log_start<D: MigDevice>(d: &D, ranges: &[u64]) -> Result {
    let mut end = 0u64;
    let mut start = u64::MAX;
    for r in ranges.chunks_exact(2) {
        start = start.min(r[0] / PAGE_SIZE);
        end = end.max(r[1] / PAGE_SIZE + 1);
    }
    if start >= end {
        return Err(EINVAL);
    }
    let pages = (end - start).min(MAX_WINDOW_PAGES);
    // The tracker is the VMM's memory (8 bytes a page: about 34 MiB for
    // 16 GiB), charged to its cgroup. A second start replaces the first,
    // which is freed before the new one is allocated, so the VMM never
    // holds two: if the new one cannot be had, logging is off and the
    // start fails (a later report gets -EINVAL, the migration fails).
    log_stop(d);
    let slots = KVVec::from_elem(0u64, usize::try_from(pages)?, GFP_KERNEL_ACCOUNT)?;
    let scratch = zeroed_page()?;
    let spread = Spread::new(rehash_lanes());
    let mut far = FarFrames::new(KVVec::from_elem(0u64, MAX_FAR_FRAMES, GFP_KERNEL_ACCOUNT)?);
    // SAFETY: `get_random_u64()` has no preconditions.
    let seed = unsafe { get_random_u64() };
    let mut tracker = HashTracker::new(start, seed, slots);
    let words = words_for(pages);
    let bitmap = || KVVec::from_elem(0u64, words, GFP_KERNEL_ACCOUNT);
    let written = WriteSet::new(start, pages, bitmap()?).ok_or(EINVAL)?;
    let pending = WriteSet::new(start, pages, bitmap()?).ok_or(EINVAL)?;
    d.with_locked(|l| {
        // Frames that become writable from here on reach `sync()`.
        d.logging_start()?;
        l.prov.for_each_writable_frame(&mut |gfn| {
            if tracker.track(gfn).is_err() {
                far.insert(gfn);
            }
        });
        let mig = &mut *l.mig;
        mig.reset_stats();
        mig.stats.rehash_cpus = spread.as_ref().map_or(1, |s| s.crew.lanes() as u64);
        let tracked = tracker.tracked();
        mig.tracking = Some(Tracking {
            log: DirtyLog::new(tracker, far, written, pending),
            scratch,
            spread,
            lost_said: false,
        });
        dev_ratelimited!(
            dev_info,
            d.dev(),
            "dirty logging on frames {:#x}..{:#x}: {} GPU pages tracked (precopy={} dirty={} rehash={})\n",
            start,
            start + pages,
            tracked,
            mig.policy.name(),
            mig.source.name(),
            mig.rehash.name()
        );
        Ok(())
    })
}

/// Dirty logging stops (DMA_LOGGING_STOP, a reset, the device's close, a
/// new start): the tracker is freed, once the vGPU lock is dropped.
pub(crate) fn log_stop<D: MigDevice>(d: &D) {
    let old = d.with_locked(|l| {
        d.logging_stop();
        l.mig.tracking.take()
    });
    drop(old);
}

/// DMA_LOGGING_REPORT for `[iova, iova + length)`, into the VMM's bitmap
/// `dirty`.
pub(crate) fn log_report<D: MigDevice>(
    d: &D,
    iova: u64,
    length: u64,
    dirty: &mut IovaBitmap,
) -> Result {
    d.with_locked(|l| log_report_locked(d, l, iova, length, dirty))
}

fn log_report_locked<D: MigDevice>(
    d: &D,
    l: &mut Locked<'_, D::Prov>,
    iova: u64,
    length: u64,
    dirty: &mut IovaBitmap,
) -> Result {
    d.sync(l.mig);
    let open = l.open;
    let stopped = l.prov.is_quiesced() || !open;
    let mig = &mut *l.mig;
    let (policy, source, rehash, hashing) = (mig.policy, mig.source, mig.rehash, mig.hashing);
    if mig.tracking.is_none() {
        return Err(EINVAL);
    }
    let phase = if stopped {
        Phase::StopCopy
    } else {
        Phase::PreCopy
    };
    if phase == Phase::StopCopy {
        // Normally done when STOP_COPY was entered.
        mig.stop_scan(d, open);
    }
    let Some(t) = mig.tracking.as_mut() else {
        return Err(EINVAL);
    };
    if let Some(loss) = t.log.loss() {
        // A GPU-writable frame is neither hashed nor kept: this report
        // cannot be complete, so the migration must fail. Said once.
        if !core::mem::replace(&mut t.lost_said, true) {
            match loss {
                Loss::FarFrames => dev_err!(
                    d.dev(),
                    "more than {} GPU-writable frames outside the tracked window: dirty log incomplete, failing the migration\n",
                    MAX_FAR_FRAMES
                ),
                Loss::Provider => dev_err!(
                    d.dev(),
                    "a GPU-writable frame could not be recorded: dirty log incomplete, failing the migration\n"
                ),
            }
        }
        return Err(match loss {
            Loss::FarFrames => ENOSPC,
            Loss::Provider => ENOMEM,
        });
    }
    let first = iova / PAGE_SIZE;
    let last = iova.saturating_add(length) / PAGE_SIZE;
    let action = match phase {
        // The stop-copy scan has run; its result goes out with the pending.
        Phase::StopCopy => Action::Nothing,
        Phase::PreCopy => planner::decide_rehash(policy, source, rehash, phase),
    };
    let start = Instant::<Monotonic>::now();
    let st = t.scan(d, hashing, open, &mut mig.stats, |log, h| {
        log.report_by(action, first..last, h, |gfn| {
            dirty.set(gfn * PAGE_SIZE, PAGE_SIZE);
        })
    });
    let took = start.elapsed().as_micros_ceil();
    let mig_stats = &mut l.mig.stats;
    mig_stats.read_errors += st.read_errors;
    mig_stats.writeset_unbounded += st.unbounded;
    let slot = match phase {
        Phase::PreCopy => 0,
        Phase::StopCopy => 1,
    };
    if let Some(r) = mig_stats.reports.get_mut(slot) {
        *r += 1;
    }
    match phase {
        Phase::StopCopy => mig_stats.pages_sent_stopcopy += st.dirty,
        Phase::PreCopy => {
            mig_stats.pages_reported_precopy += st.dirty;
            mig_stats.pages_rehashed_precopy += st.rehashed;
            mig_stats.precopy_report_us += took;
        }
    }
    Ok(())
}

// SPDX-License-Identifier: GPL-2.0

//! kvmgt's reports on a vGPU (the companion ops' events): workloads, GGTT
//! writes, pins, scans, kvmgt's own writes, as the hooks record them.

use core::sync::atomic::Ordering;
use kernel::prelude::*;

use super::{
    device::GvtDev,
    status::{bump, COUNTERS, FAIL_PIN_RECORDS},
};
use crate::{
    gmig_core::{
        gvt::{self, EventKind},
        provider::tracker_update,
    },
    log::dev_ratelimited,
};

impl GvtDev {
    /// One of kvmgt's reports, with its arguments (see [`EventKind`]).
    pub(super) fn event(&self, kind: EventKind, a: u64, b: u64, c: u64) {
        let n = &COUNTERS;
        let mut h = self.hooks.lock();
        match kind {
            EventKind::WorkloadQueued => {
                bump(&n.workloads_queued, 1);
                h.writes.queued(a);
            }
            EventKind::WorkloadCompleted => {
                bump(&n.workloads_completed, 1);
                // `c` is the C int status, sign-extended: -ECANCELED for
                // a workload GVT-g dropped unrun (patches/gvt 0017).
                if c != 0 {
                    bump(&n.workloads_failed, 1);
                }
                // `b` is the LRCA: kvmgt wrote the context image back if
                // the workload succeeded.
                h.writes.completed(a, b, c == 0);
            }
            EventKind::SchedStopped => bump(&n.sched_stops, 1),
            EventKind::SchedStarted => bump(&n.sched_starts, 1),
            EventKind::GgttWrite => {
                bump(&n.ggtt_writes, 1);
                h.writes.ggtt_write(a, c);
                match gvt::ggtt_write_event(&self.layout, a, b, c) {
                    Some(ev) => {
                        if let Some(r) = tracker_update(&ev) {
                            bump(&n.pages_reported, r.count);
                            h.reached(r.first, r.count);
                        }
                    }
                    None => bump(&n.ggtt_foreign, 1),
                }
            }
            EventKind::PpgttCreated => bump(&n.ppgtt_shadows, 1),
            EventKind::PpgttDestroyed => {
                h.writes.ppgtt_destroyed(a);
                n.ppgtt_shadows
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1))
                    .ok();
            }
            EventKind::PagesPinned => {
                bump(&n.pins, 1);
                let Some(ev) = gvt::pin_event(a, b, true) else {
                    return;
                };
                let Some(r) = tracker_update(&ev) else {
                    return;
                };
                bump(&n.pages_reported, r.count);
                let injected = FAIL_PIN_RECORDS
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1))
                    .is_ok();
                if injected
                    || h.pinned
                        .try_create_and_insert(r.first, r.count, GFP_KERNEL)
                        .is_err()
                {
                    bump(&n.pins_untracked, 1);
                    h.pins_lost += 1;
                    dev_ratelimited!(
                        dev_err,
                        &self.dev,
                        "gvt: vGPU {}: no memory to record the pin of frame {:#x}: its migrations fail until the frame is unpinned\n",
                        self.id,
                        r.first
                    );
                }
                // A migration already logging has it queued (or, if the
                // queue overflowed, fails at its next report: `sync()`).
                h.reached(r.first, r.count);
            }
            EventKind::PpgttEntry => {
                bump(&n.ppgtt_entries, 1);
                h.writes
                    .ppgtt_entry(u32::try_from(a).unwrap_or(u32::MAX), b);
            }
            EventKind::ScanWorkload => {
                bump(&n.scans, 1);
                // `b` is the LRCA, `c` the PML4 of a 4-level PPGTT or 0.
                h.writes.scan_workload(a, b, (c != 0).then_some(c));
            }
            EventKind::GpaWritten => {
                bump(&n.gpas_written, 1);
                // Before logging starts, the VMM's first pass over guest
                // memory (which follows the start) has it.
                if h.logging {
                    h.writes.kvmgt_wrote(a, b);
                }
            }
            EventKind::PagesUnpinned => {
                bump(&n.unpins, 1);
                // A page that stops being reachable stays tracked while
                // logging (its last content is compared at stop-copy).
                // A pin gmig has no record of is one it could not record:
                // kvmgt unpins what it pinned, with the same frame and size
                // (drivers/gpu/drm/i915/gvt/kvmgt.c, __gvt_cache_remove_entry
                // of 7.3, where the series calls the hook).
                if h.pinned.remove(&a).is_none() {
                    h.pins_lost = h.pins_lost.saturating_sub(1);
                }
            }
        }
    }
}

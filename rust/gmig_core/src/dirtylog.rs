// SPDX-License-Identifier: GPL-2.0

//! The software dirty log of one migration: what a DMA logging report and
//! the stop-copy re-hash do with the tracked pages. The kernel's migration
//! layer calls it under the vGPU lock with its guest-memory reader and the
//! VFIO core's bitmap; the host tests and benches call the same code with a
//! `Vec` for guest memory, so the logic QEMU's reports run is the logic
//! `cargo test` checks.
//!
//! Frames enter through [`DirtyLog::note`] (a shadow page table event or a
//! command's write set); a frame first seen is pending for the next report.
//! A report over `[first, last)` hands out the pending frames there, every
//! frame outside the tracker's window ([`super::farframes`]), and then what
//! the planner's [`Action`] says.

use super::farframes::{note_frame, FarFrames, Noted};
use super::planner::Action;
use super::tracker::{HashTracker, Unhashed, PAGE};
use super::writeset::WriteSet;
use core::ops::{DerefMut, Range};

/// The tracked pages, the frames the GPU may have written since their last
/// hash, and the frames found changed and not reported yet.
pub struct DirtyLog<S> {
    /// Hash per tracked page of the window.
    pub tracker: HashTracker<S>,
    /// GPU-writable frames outside the window (reported in every report).
    pub far: FarFrames<S>,
    /// Frames the GPU may have written since their last hash.
    pub written: WriteSet<S>,
    /// Frames found changed and not reported yet (the stop-copy re-hash
    /// puts its result here; reports hand it out by range).
    pub pending: WriteSet<S>,
    /// The stop-copy re-hash ran (reset when the vGPU runs again).
    pub stop_scanned: bool,
    /// The provider could not keep a GPU-writable frame.
    provider_lost: bool,
}

/// Why a dirty log cannot be complete ([`DirtyLog::loss`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// More GPU-writable frames outside the window than can be kept.
    FarFrames,
    /// The provider could not record a frame ([`DirtyLog::provider_lost`]).
    Provider,
}

/// What a report or a re-hash did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScanStats {
    /// Frames reported (report) or found dirty (stop-copy re-hash).
    pub dirty: u64,
    /// Guest reads that failed (each counts as a changed page).
    pub read_errors: u64,
    /// Pages read and hashed.
    pub rehashed: u64,
    /// Tracked pages whose hash was kept without reading them.
    pub skipped: u64,
    /// Write sets that were unbounded (every tracked page a candidate).
    pub unbounded: u64,
}

impl<S: DerefMut<Target = [u64]>> DirtyLog<S> {
    /// A log over `tracker` and the sets, nothing written or pending yet.
    pub fn new(
        tracker: HashTracker<S>,
        far: FarFrames<S>,
        written: WriteSet<S>,
        pending: WriteSet<S>,
    ) -> Self {
        Self {
            tracker,
            far,
            written,
            pending,
            stop_scanned: false,
            provider_lost: false,
        }
    }

    /// Enters a frame the GPU may write ([`note_frame`]). A frame that
    /// could not be kept ([`Noted::Lost`]) makes [`DirtyLog::complete`]
    /// false for good.
    pub fn note(&mut self, gfn: u64) -> Noted {
        note_frame(&mut self.tracker, &mut self.pending, &mut self.far, gfn)
    }

    /// The GPU may have written `gfn` (a command's write set): noted, and a
    /// candidate of the next re-hash.
    pub fn gpu_may_write(&mut self, gfn: u64) {
        self.note(gfn);
        self.written.record(gfn);
    }

    /// Whether reports can be complete: `false` once a GPU-writable frame
    /// was neither tracked nor kept (the migration must then fail).
    pub fn complete(&self) -> bool {
        self.loss().is_none()
    }

    /// Why reports cannot be complete, if they cannot.
    pub fn loss(&self) -> Option<Loss> {
        if self.far.lost() {
            Some(Loss::FarFrames)
        } else if self.provider_lost {
            Some(Loss::Provider)
        } else {
            None
        }
    }

    /// The provider lost a frame the GPU may write: [`DirtyLog::complete`]
    /// is false for good.
    pub fn provider_lost(&mut self) {
        self.provider_lost = true;
    }

    /// The stop-copy re-hash with the vGPU quiesced: its result waits in
    /// `pending` for the final report(s). `None` (nothing done) if it
    /// already ran since the vGPU last ran.
    pub fn stop_scan<E>(
        &mut self,
        action: Action,
        scratch: &mut [u8; PAGE],
        mut read: impl FnMut(u64, &mut [u8; PAGE]) -> Result<(), E>,
    ) -> Option<ScanStats> {
        if self.stop_scanned {
            return None;
        }
        let mut st = ScanStats::default();
        let Self {
            tracker,
            written,
            pending,
            ..
        } = self;
        let mut errors = 0u64;
        let mut read = |gfn: u64, buf: &mut [u8; PAGE]| {
            let r = read(gfn, buf);
            errors += u64::from(r.is_err());
            r
        };
        let before = tracker.hashed();
        match action {
            Action::Nothing | Action::Snapshot | Action::Refresh => {}
            Action::All => {
                for gfn in tracker.tracked_frames() {
                    pending.record(gfn);
                    st.dirty += 1;
                }
            }
            Action::Changed => {
                st.dirty = tracker.scan_changed(scratch, &mut read, |g| pending.record(g));
            }
            Action::Candidates => {
                st.unbounded = u64::from(written.is_unbounded());
                let window = written.base()..written.base() + written.window();
                let r = tracker.scan_candidates(
                    written,
                    window,
                    Unhashed::Report,
                    scratch,
                    &mut read,
                    |g| pending.record(g),
                );
                written.clear();
                st.dirty = r.changed;
                st.skipped = r.skipped;
            }
        }
        st.rehashed = tracker.hashed() - before;
        st.read_errors = errors;
        self.stop_scanned = true;
        Some(st)
    }

    /// The vGPU runs again: a later stop re-hashes again. Pages found
    /// changed and not reported stay pending (their hashes are current).
    pub fn stop_unscan(&mut self) {
        self.stop_scanned = false;
    }

    /// A report of `range` (frames): `mark(gfn)` for every frame the VMM
    /// must send again. The pending and far frames of the range always go
    /// out; then `action` (the planner's, [`Action::Nothing`] after the
    /// stop-copy re-hash) decides what is re-hashed.
    pub fn report<E>(
        &mut self,
        action: Action,
        range: Range<u64>,
        scratch: &mut [u8; PAGE],
        mut read: impl FnMut(u64, &mut [u8; PAGE]) -> Result<(), E>,
        mut mark: impl FnMut(u64),
    ) -> ScanStats {
        let (first, last) = (range.start, range.end);
        let mut st = ScanStats::default();
        let mut out = |gfn: u64, st: &mut ScanStats| {
            mark(gfn);
            st.dirty += 1;
        };
        // Pages found changed by an earlier scan and not reported yet (the
        // stop-copy re-hash's result), in this report's range.
        for gfn in self.pending.iter_range(first..last) {
            out(gfn, &mut st);
        }
        self.pending.clear_range(first..last);
        // Frames outside the window cannot be hashed: dirty in every report.
        for gfn in self.far.iter_range(first..last) {
            out(gfn, &mut st);
        }
        match action {
            Action::Nothing => {}
            Action::All => {
                for gfn in self
                    .tracker
                    .tracked_frames()
                    .filter(|g| (first..last).contains(g))
                {
                    out(gfn, &mut st);
                }
            }
            Action::Refresh | Action::Candidates => {
                let Self {
                    tracker, written, ..
                } = self;
                if written.take_unbounded() {
                    // Unknown write set: every tracked page is a candidate
                    // (a superset of the frames the active address spaces
                    // map writable, and of every frame they mapped since
                    // logging started). Materialised so that reports by
                    // range work.
                    st.unbounded += 1;
                    for gfn in tracker.tracked_frames() {
                        written.record(gfn);
                    }
                }
                let unhashed = if action == Action::Refresh {
                    Unhashed::Snapshot
                } else {
                    Unhashed::Report
                };
                let mut errors = 0u64;
                let r = tracker.scan_candidates(
                    written,
                    first..last,
                    unhashed,
                    scratch,
                    |gfn, buf| {
                        let r = read(gfn, buf);
                        errors += u64::from(r.is_err());
                        r
                    },
                    |gfn| out(gfn, &mut st),
                );
                written.clear_range(first..last);
                st.read_errors += errors;
                st.rehashed += r.rehashed;
                st.skipped += r.skipped;
            }
            Action::Snapshot | Action::Changed => {
                let base = self.tracker.base();
                let lo = first.max(base);
                let hi = last.min(base + self.tracker.window());
                for gfn in lo..hi {
                    let wanted = match action {
                        Action::Snapshot => self.tracker.needs_hash(gfn),
                        _ => self.tracker.is_tracked(gfn),
                    };
                    if !wanted {
                        continue;
                    }
                    let ok = read(gfn, scratch).is_ok();
                    st.read_errors += u64::from(!ok);
                    st.rehashed += 1;
                    // A page that cannot be read counts as changed.
                    let changed =
                        !ok || self.tracker.check(gfn, &scratch[..], true).unwrap_or(true);
                    if changed && action == Action::Changed {
                        out(gfn, &mut st);
                    }
                }
            }
        }
        st
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writeset::words_for;
    use std::vec;
    use std::vec::Vec;

    fn log(far_room: usize) -> DirtyLog<Vec<u64>> {
        let words = words_for(64);
        DirtyLog::new(
            HashTracker::new(0, 7, vec![0u64; 64]),
            FarFrames::new(vec![0u64; far_room]),
            WriteSet::new(0, 64, vec![0u64; words]).unwrap(),
            WriteSet::new(0, 64, vec![0u64; words]).unwrap(),
        )
    }

    #[test]
    fn a_lost_frame_makes_the_log_incomplete_for_good() {
        let mut l = log(4);
        assert_eq!(l.loss(), None);
        assert!(l.complete());
        l.provider_lost();
        assert_eq!(l.loss(), Some(Loss::Provider));
        l.note(3);
        assert!(!l.complete(), "nothing makes a lost frame found again");

        let mut l = log(1);
        l.note(1 << 40);
        assert!(l.complete(), "one far frame fits");
        l.note((1 << 40) + 1);
        assert_eq!(l.loss(), Some(Loss::FarFrames));
        l.provider_lost();
        assert_eq!(
            l.loss(),
            Some(Loss::FarFrames),
            "the first loss is the one said"
        );
    }
}

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
use super::pageread::{Batched, Copying, Counted, HashSource, Hasher};
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
        read: impl FnMut(u64, &mut [u8; PAGE]) -> Result<(), E>,
    ) -> Option<ScanStats> {
        self.stop_scan_with(action, &mut Copying::new(scratch, read))
    }

    /// [`DirtyLog::stop_scan`], the pages hashed through `src`.
    pub fn stop_scan_with(
        &mut self,
        action: Action,
        src: &mut (impl HashSource + ?Sized),
    ) -> Option<ScanStats> {
        self.stop_scan_by(action, &mut Batched::new(src))
    }

    /// [`DirtyLog::stop_scan`], the pages hashed through `h` (the kernel's
    /// spreads a large re-hash over its CPUs, with the same result).
    pub fn stop_scan_by(
        &mut self,
        action: Action,
        h: &mut (impl Hasher + ?Sized),
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
        let mut src = Counted::new(h);
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
                // The pages whose hash changed and, as candidates do, every
                // page the GPU may have written since the last report.
                tracker.scan_changed_by(&mut src, |g| pending.record(g));
                st.unbounded = u64::from(materialise(tracker, written));
                for g in written.iter() {
                    pending.record(g);
                }
                written.clear();
                st.dirty = pending.len();
            }
            Action::Candidates => {
                st.unbounded = u64::from(written.is_unbounded());
                let window = written.base()..written.base() + written.window();
                let r =
                    tracker.scan_candidates_by(written, window, Unhashed::Report, &mut src, |g| {
                        pending.record(g)
                    });
                written.clear();
                st.dirty = r.changed;
                st.skipped = r.skipped;
            }
        }
        st.rehashed = tracker.hashed() - before;
        st.read_errors = src.errors;
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
        read: impl FnMut(u64, &mut [u8; PAGE]) -> Result<(), E>,
        mark: impl FnMut(u64),
    ) -> ScanStats {
        self.report_with(action, range, &mut Copying::new(scratch, read), mark)
    }

    /// [`DirtyLog::report`], the pages hashed through `src`.
    pub fn report_with(
        &mut self,
        action: Action,
        range: Range<u64>,
        src: &mut (impl HashSource + ?Sized),
        mark: impl FnMut(u64),
    ) -> ScanStats {
        self.report_by(action, range, &mut Batched::new(src), mark)
    }

    /// [`DirtyLog::report`], the pages hashed through `h`.
    pub fn report_by(
        &mut self,
        action: Action,
        range: Range<u64>,
        h: &mut (impl Hasher + ?Sized),
        mut mark: impl FnMut(u64),
    ) -> ScanStats {
        let (first, last) = (range.start, range.end);
        let mut st = ScanStats::default();
        let mut src = Counted::new(h);
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
                let r =
                    tracker.scan_candidates_by(written, first..last, unhashed, &mut src, |gfn| {
                        out(gfn, &mut st)
                    });
                written.clear_range(first..last);
                st.rehashed += r.rehashed;
                st.skipped += r.skipped;
            }
            Action::Snapshot | Action::Changed => {
                if action == Action::Changed {
                    st.unbounded += u64::from(materialise(&self.tracker, &mut self.written));
                }
                let Self {
                    tracker, written, ..
                } = self;
                let lo = first.max(tracker.base());
                let hi = last.min(tracker.base() + tracker.window());
                tracker.hash_frames(
                    &mut src,
                    lo,
                    |t, from| {
                        (from..hi).find(|&g| match action {
                            Action::Snapshot => t.needs_hash(g),
                            _ => t.is_tracked(g),
                        })
                    },
                    |t, gfn, h| {
                        st.rehashed += 1;
                        // A page that cannot be read counts as changed.
                        let changed = h.is_none_or(|h| t.check_hash(gfn, h, true).unwrap_or(true));
                        // A page the GPU may have written goes out even if
                        // its hash is the old one (see `scan_candidates`).
                        if action == Action::Changed && (changed || written.contains(gfn)) {
                            out(gfn, &mut st);
                        }
                    },
                );
                // What the GPU may have written since the last report that
                // re-hashed stays recorded through snapshots (oneshot's
                // pre-copy reports nothing: its final report covers the
                // whole migration).
                if action == Action::Changed {
                    self.written.clear_range(first..last);
                }
            }
        }
        st.read_errors += src.errors;
        st
    }
}

/// An unbounded write set made explicit: every tracked frame recorded
/// (so that reports by range work). Returns whether it was unbounded.
fn materialise<S: DerefMut<Target = [u64]>>(
    tracker: &HashTracker<S>,
    written: &mut WriteSet<S>,
) -> bool {
    if !written.take_unbounded() {
        return false;
    }
    for gfn in tracker.tracked_frames() {
        written.record(gfn);
    }
    true
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

    /// Reports and the stop-copy re-hash of every action mark the same
    /// frames in the same order, with the same statistics and the same
    /// log afterwards, whether pages are hashed a batch at a time or in
    /// rounds of chunks spread over threads (some of which fail, as a
    /// worker that finds the device gone does: like unreadable pages).
    #[test]
    fn reports_and_stop_scans_spread_over_threads_equal_one_cpu() {
        use crate::pageread::testing::{Mem, Threads};
        use crate::pageread::{Chunk, Chunked, CHUNK};
        use std::collections::BTreeSet;
        const ACTIONS: [Action; 6] = [
            Action::Snapshot,
            Action::Nothing,
            Action::Changed,
            Action::All,
            Action::Refresh,
            Action::Candidates,
        ];
        let big = |n: u64| {
            let words = words_for(n);
            DirtyLog::new(
                HashTracker::new(0, 11, vec![0u64; n as usize]),
                FarFrames::new(vec![0u64; 4]),
                WriteSet::new(0, n, vec![0u64; words]).unwrap(),
                WriteSet::new(0, n, vec![0u64; words]).unwrap(),
            )
        };
        let mut spread = 0;
        for seed in 0..6u64 {
            let mut rng = crate::testutil::Rng::new(seed + 7);
            let n = 3 * CHUNK as u64 + rng.below(500);
            let mut mem = vec![[0u8; PAGE]; n as usize - 2];
            let (mut a, mut b) = (big(n), big(n));
            let mut chunks = vec![Chunk::new(); 2 + rng.below(4) as usize];
            for step in 0..14 {
                for _ in 0..rng.below(n) {
                    let g = rng.below(n);
                    a.note(g);
                    b.note(g);
                }
                for _ in 0..rng.below(n / 3) {
                    let g = rng.below(n - 2);
                    mem[g as usize][rng.below(PAGE as u64) as usize] ^= 3;
                    a.gpu_may_write(g);
                    b.gpu_may_write(g);
                }
                if rng.below(5) == 0 {
                    a.written.set_unbounded();
                    b.written.set_unbounded();
                }
                let action = ACTIONS[rng.below(ACTIONS.len() as u64) as usize];
                let stop = rng.below(4) == 0;
                let lo = rng.below(n / 4);
                let hi = lo + rng.below(n);
                let unreadable: BTreeSet<u64> = (0..rng.below(5)).map(|_| rng.below(n)).collect();
                let fail_mod = 2 + rng.below(7);
                let fail = move |i: u64| (i + seed).is_multiple_of(fail_mod);
                let mut pool = Threads {
                    mem: &mem,
                    unreadable: &unreadable,
                    threads: 2 + rng.below(2) as usize,
                    fail: &fail,
                    chunks_seen: 0,
                    failed: BTreeSet::new(),
                    spread_rounds: 0,
                };
                let (mut ma, mut mb) = (Vec::new(), Vec::new());
                let (sa, ra) = {
                    let mut h = Chunked::new(&mut chunks, &mut pool).unwrap();
                    let sa = if stop {
                        a.stop_unscan();
                        a.stop_scan_by(action, &mut h)
                    } else {
                        None
                    };
                    let act = if stop { Action::Nothing } else { action };
                    (sa, a.report_by(act, lo..hi, &mut h, |g| ma.push(g)))
                };
                let gone: BTreeSet<u64> = unreadable.union(&pool.failed).copied().collect();
                let mut src = Mem {
                    mem: &mem,
                    unreadable: &gone,
                };
                let sb = if stop {
                    b.stop_unscan();
                    b.stop_scan_with(action, &mut src)
                } else {
                    None
                };
                let act = if stop { Action::Nothing } else { action };
                let rb = b.report_with(act, lo..hi, &mut src, |g| mb.push(g));
                let ctx = std::format!("seed {seed} step {step} {action:?} stop {stop}");
                assert_eq!(sa, sb, "{ctx}");
                assert_eq!(ra, rb, "{ctx}");
                assert_eq!(ma, mb, "{ctx}");
                assert_eq!(
                    a.tracker.slots_for_test(),
                    b.tracker.slots_for_test(),
                    "{ctx}"
                );
                assert_eq!(
                    a.pending.iter().collect::<Vec<_>>(),
                    b.pending.iter().collect::<Vec<_>>(),
                    "{ctx}"
                );
                assert_eq!(
                    a.written.iter().collect::<Vec<_>>(),
                    b.written.iter().collect::<Vec<_>>(),
                    "{ctx}"
                );
                spread += pool.spread_rounds;
            }
        }
        assert!(spread > 0);
    }

    /// The VMM copies a page whenever it likes after the report that names
    /// it (its first pass copies every page after logging starts), while
    /// the GPU writes. A page the GPU changes and changes back (a frame
    /// cleared and drawn again the same) has its old hash again at the
    /// next report, yet the VMM may have copied it in between: only the
    /// write set knows. Every policy, every re-hash mode: the destination
    /// must end equal to the source. (The replay of glmark2 under QEMU
    /// lost 4 to 9 pages this way, 2026-12-07.)
    #[test]
    fn pages_that_change_and_change_back_while_the_vmm_copies_are_not_lost() {
        use super::super::planner::{decide_rehash, DirtySource, Phase, Policy, Rehash};
        use std::collections::BTreeSet;
        const N: u64 = 64;
        for seed in 1..200u64 {
            for (policy, rehash) in [
                (Policy::Oneshot, Rehash::WriteSet),
                (Policy::Oneshot, Rehash::All),
                (Policy::Iterative, Rehash::WriteSet),
                (Policy::Iterative, Rehash::All),
            ] {
                let mut rng = crate::testutil::Rng::new(seed);
                let mut l = log(4);
                for g in 0..N {
                    l.note(g);
                }
                let mut src = vec![[0u8; PAGE]; N as usize];
                let mut dst = vec![[0u8; PAGE]; N as usize];
                // Pages the VMM has yet to copy: all of them (its first
                // pass), then what each report names.
                let mut to_copy: BTreeSet<u64> = (0..N).collect();
                let mut scratch = [0u8; PAGE];
                let mut report = |l: &mut DirtyLog<Vec<u64>>,
                                  src: &Vec<[u8; PAGE]>,
                                  to_copy: &mut BTreeSet<u64>,
                                  phase: Phase| {
                    let a = decide_rehash(policy, DirtySource::Hash, rehash, phase);
                    let a = if phase == Phase::StopCopy {
                        l.stop_scan(a, &mut scratch, |g, b| {
                            b.copy_from_slice(&src[g as usize]);
                            Ok::<(), ()>(())
                        });
                        Action::Nothing
                    } else {
                        a
                    };
                    l.report(
                        a,
                        0..N,
                        &mut scratch,
                        |g, b| {
                            b.copy_from_slice(&src[g as usize]);
                            Ok::<(), ()>(())
                        },
                        |g| {
                            to_copy.insert(g);
                        },
                    );
                };
                report(&mut l, &src, &mut to_copy, Phase::PreCopy);
                for _round in 0..6 {
                    for _ in 0..40 {
                        let g = rng.below(N);
                        match rng.below(3) {
                            // The VMM copies one page it has to copy.
                            0 => {
                                if let Some(&c) = to_copy.iter().nth(rng.below(4) as usize) {
                                    to_copy.remove(&c);
                                    dst[c as usize] = src[c as usize];
                                }
                            }
                            // The GPU writes a page: new data, or what it
                            // held before the last write (a redraw).
                            1 => {
                                l.gpu_may_write(g);
                                src[g as usize][0] = src[g as usize][0].wrapping_add(1);
                            }
                            _ => {
                                l.gpu_may_write(g);
                                src[g as usize][0] = src[g as usize][0].wrapping_sub(1);
                            }
                        }
                    }
                    report(&mut l, &src, &mut to_copy, Phase::PreCopy);
                }
                // Stopped: the final report, then the VMM copies what it
                // still has to, with nothing running.
                report(&mut l, &src, &mut to_copy, Phase::StopCopy);
                for c in to_copy {
                    dst[c as usize] = src[c as usize];
                }
                let lost: Vec<usize> = (0..N as usize).filter(|&g| src[g] != dst[g]).collect();
                assert!(
                    lost.is_empty(),
                    "{policy:?}/{rehash:?} seed {seed}: pages {lost:?} lost"
                );
            }
        }
    }
}

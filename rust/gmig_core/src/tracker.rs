// SPDX-License-Identifier: GPL-2.0

//! The software dirty-page tracker: one 64-bit slot per guest page of a
//! window, holding the page's hash when it was last snapshotted.
//!
//! Slot values: 0 = page not tracked (the GPU cannot reach it), 1 = tracked
//! but not hashed yet, anything else = the seeded hash at the last
//! snapshot (hashes 0 and 1 are stored as 2 and 3). So the memory cost is
//! exactly 8 bytes per page of the window plus a few counters, lookups are
//! O(1) by guest frame number, and nothing on the stop-copy path allocates:
//! the caller passes the slot storage in. Pages are hashed through a
//! [`HashSource`] in batches of contiguous runs ([`super::pageread`]):
//! copied into the caller's scratch page ([`Copying`], the `scan_*`
//! functions that take a reader) or hashed in place in guest memory (the
//! kernel's source, given to the `*_with` functions). The `*_by` functions
//! take any [`Hasher`]: the kernel's spreads large scans over its CPUs in
//! rounds of chunks ([`super::pageread::Chunked`]), with the same result.

use super::hash::page_hash;
use super::pageread::{Batched, Copying, HashSource, Hasher};
use super::writeset::WriteSet;

/// Page size the tracker hashes.
pub const PAGE: usize = 4096;
const UNTRACKED: u64 = 0;
const NOT_HASHED: u64 = 1;

/// A frame number outside the tracker's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfWindow(pub u64);

/// The tracker over frames `[base, base + slots.len())`.
pub struct HashTracker<S> {
    base: u64,
    seed: u64,
    slots: S,
    tracked: u64,
    hashed: u64,
    /// Tracked pages with no snapshot (slot [`NOT_HASHED`]).
    unhashed: u64,
}

/// What a candidate re-hash ([`HashTracker::scan_candidates`]) did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RehashStats {
    /// Tracked pages hashed.
    pub rehashed: u64,
    /// Tracked pages whose hash was kept without reading them.
    pub skipped: u64,
    /// Pages reported changed.
    pub changed: u64,
}

/// What [`HashTracker::scan_candidates`] does with tracked pages that are
/// not candidates and have no snapshot yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unhashed {
    /// Snapshot them without reporting (pre-copy: the VMM's pass sends
    /// them, and the GPU did not write them since logging started).
    Snapshot,
    /// Report them changed (stop-copy: nothing is known about them).
    Report,
}

/// Keeps the count of unhashed slots across a slot change.
fn account(unhashed: &mut u64, old: u64, new: u64) {
    if old == NOT_HASHED && new != NOT_HASHED {
        *unhashed -= 1;
    } else if old != NOT_HASHED && new == NOT_HASHED {
        *unhashed += 1;
    }
}

fn stored(h: u64) -> u64 {
    if h < 2 {
        h + 2
    } else {
        h
    }
}

impl<S: core::ops::DerefMut<Target = [u64]>> HashTracker<S> {
    /// A tracker with no page tracked; `slots` is cleared.
    pub fn new(base: u64, seed: u64, mut slots: S) -> Self {
        for s in &mut *slots {
            *s = UNTRACKED;
        }
        Self {
            base,
            seed,
            slots,
            tracked: 0,
            hashed: 0,
            unhashed: 0,
        }
    }

    fn slot(&mut self, gfn: u64) -> Result<&mut u64, OutOfWindow> {
        let i = gfn.checked_sub(self.base).ok_or(OutOfWindow(gfn))?;
        let i = usize::try_from(i).map_err(|_| OutOfWindow(gfn))?;
        self.slots.get_mut(i).ok_or(OutOfWindow(gfn))
    }

    /// First frame of the window.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// Slot indices of the frames of `range`, clamped to the window.
    fn indices(&self, range: &core::ops::Range<u64>) -> (usize, usize) {
        let n = self.slots.len() as u64;
        let lo = range.start.saturating_sub(self.base).min(n);
        let hi = range.end.saturating_sub(self.base).min(n);
        (lo as usize, hi.max(lo) as usize)
    }

    /// Frames in the window.
    pub fn window(&self) -> u64 {
        self.slots.len() as u64
    }

    /// Starts tracking `gfn` (no-op if tracked).
    pub fn track(&mut self, gfn: u64) -> Result<(), OutOfWindow> {
        let s = self.slot(gfn)?;
        if *s == UNTRACKED {
            *s = NOT_HASHED;
            self.tracked += 1;
            self.unhashed += 1;
        }
        Ok(())
    }

    /// Stops tracking `gfn` (no-op if untracked).
    pub fn untrack(&mut self, gfn: u64) -> Result<(), OutOfWindow> {
        let s = self.slot(gfn)?;
        if *s != UNTRACKED {
            let was_unhashed = *s == NOT_HASHED;
            *s = UNTRACKED;
            self.tracked -= 1;
            self.unhashed -= u64::from(was_unhashed);
        }
        Ok(())
    }

    /// Whether `gfn` is tracked.
    pub fn is_tracked(&self, gfn: u64) -> bool {
        gfn.checked_sub(self.base)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| self.slots.get(i))
            .is_some_and(|&s| s != UNTRACKED)
    }

    /// Number of tracked pages.
    pub fn tracked(&self) -> u64 {
        self.tracked
    }

    /// Pages hashed since creation.
    pub fn hashed(&self) -> u64 {
        self.hashed
    }

    /// Tracked pages with no snapshot yet.
    pub fn unhashed(&self) -> u64 {
        self.unhashed
    }

    /// Hashes `page` and reports whether it differs from the snapshot (a
    /// never-hashed page counts as changed); stores the new hash if
    /// `update`. Untracked pages are never changed.
    pub fn check(&mut self, gfn: u64, page: &[u8], update: bool) -> Result<bool, OutOfWindow> {
        let h = page_hash(self.seed, page);
        let r = self.check_hash(gfn, h, update)?;
        if self.is_tracked(gfn) {
            self.hashed += 1;
        }
        Ok(r)
    }

    /// [`HashTracker::check`] of a page whose [`page_hash`] with this
    /// tracker's seed is `h` (as a [`HashSource`] gives it): whether it
    /// differs from the snapshot; stores it if `update`. Does not count the
    /// page as hashed (the caller that read it does).
    pub fn check_hash(&mut self, gfn: u64, h: u64, update: bool) -> Result<bool, OutOfWindow> {
        let s = self.slot(gfn)?;
        if *s == UNTRACKED {
            return Ok(false);
        }
        let h = stored(h);
        let changed = *s != h;
        let was_unhashed = *s == NOT_HASHED;
        if update {
            *s = h;
        }
        self.unhashed -= u64::from(update && was_unhashed);
        Ok(changed)
    }

    /// The slots, for tests that compare two trackers.
    #[cfg(test)]
    pub(crate) fn slots_for_test(&self) -> &[u64] {
        &self.slots
    }

    /// Whether `gfn` is tracked but has no snapshot yet.
    pub fn needs_hash(&self, gfn: u64) -> bool {
        gfn.checked_sub(self.base)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| self.slots.get(i))
            .is_some_and(|&s| s == NOT_HASHED)
    }

    /// Stores slot value `new` for tracked `gfn` (a stored hash, or
    /// [`NOT_HASHED`]), keeping the count of unhashed slots.
    fn set(&mut self, gfn: u64, new: u64) {
        let Ok(s) = self.slot(gfn) else {
            return;
        };
        let old = core::mem::replace(s, new);
        account(&mut self.unhashed, old, new);
    }

    /// The slot value of `gfn` ([`UNTRACKED`] outside the window).
    fn value(&self, gfn: u64) -> u64 {
        gfn.checked_sub(self.base)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| self.slots.get(i))
            .copied()
            .unwrap_or(UNTRACKED)
    }

    /// The first frame of `from..end` in the window whose slot value
    /// satisfies `want`.
    fn next_slot(&self, from: u64, end: u64, want: impl Fn(u64) -> bool) -> Option<u64> {
        let (lo, hi) = self.indices(&(from..end));
        let i = self.slots.get(lo..hi)?.iter().position(|&s| want(s))?;
        Some(self.base + (lo + i) as u64)
    }

    /// Hashes frames through `h` (a batch, or a round of chunks, at a
    /// time) and hands each frame with its hash (as stored: hashes 0 and 1
    /// are 2 and 3; `None` if it could not be read) to `done`, in
    /// increasing order. The frames are those `next(tracker, from)` names:
    /// the first frame at or above `from` to hash, or `None` when there is
    /// none. `next` is asked up to what `h` holds (a batch, or a round)
    /// ahead of `done`, so what it looks at for a frame must not depend on
    /// what `done` does to lower frames (`done` changes only its own
    /// frame's slot). Counts every hashed page in [`HashTracker::hashed`].
    pub fn hash_frames<H: Hasher + ?Sized>(
        &mut self,
        h: &mut H,
        start: u64,
        mut next: impl FnMut(&Self, u64) -> Option<u64>,
        mut done: impl FnMut(&mut Self, u64, Option<u64>),
    ) {
        let mut at = Some(start);
        loop {
            while !h.is_full() {
                let Some(g) = at.and_then(|a| next(self, a)) else {
                    at = None;
                    break;
                };
                h.push(g);
                at = g.checked_add(1);
            }
            if h.is_empty() {
                return;
            }
            let seed = self.seed;
            h.flush(seed, &mut |gfn, hash| {
                self.hashed += u64::from(hash.is_some());
                done(self, gfn, hash.map(stored));
            });
        }
    }

    /// Snapshots the tracked pages that have none yet; returns how many.
    /// Pages that cannot be read stay without a snapshot.
    pub fn scan_new<E>(
        &mut self,
        scratch: &mut [u8; PAGE],
        read: impl FnMut(u64, &mut [u8; PAGE]) -> Result<(), E>,
    ) -> u64 {
        self.scan_new_with(&mut Copying::new(scratch, read))
    }

    /// [`HashTracker::scan_new`] through `src`.
    pub fn scan_new_with(&mut self, src: &mut (impl HashSource + ?Sized)) -> u64 {
        self.scan_new_by(&mut Batched::new(src))
    }

    /// [`HashTracker::scan_new`] through `h`.
    pub fn scan_new_by(&mut self, h: &mut (impl Hasher + ?Sized)) -> u64 {
        let end = self.base + self.window();
        let mut n = 0;
        self.hash_frames(
            h,
            self.base,
            |t, from| t.next_slot(from, end, |s| s == NOT_HASHED),
            |t, gfn, h| {
                if let Some(h) = h {
                    t.set(gfn, h);
                    n += 1;
                }
            },
        );
        n
    }

    /// Tracked frames, in order.
    pub fn tracked_frames(&self) -> impl Iterator<Item = u64> + '_ {
        let base = self.base;
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, &s)| s != UNTRACKED)
            .map(move |(i, _)| base + i as u64)
    }

    /// Calls `out` for every tracked page whose content changed since its
    /// snapshot, taking new snapshots. `read` fills the caller's scratch
    /// page; a page that cannot be read counts as changed. Returns the
    /// number of changed pages. Allocates nothing.
    pub fn scan_changed<E>(
        &mut self,
        scratch: &mut [u8; PAGE],
        read: impl FnMut(u64, &mut [u8; PAGE]) -> Result<(), E>,
        out: impl FnMut(u64),
    ) -> u64 {
        self.scan_changed_with(&mut Copying::new(scratch, read), out)
    }

    /// [`HashTracker::scan_changed`] through `src`.
    pub fn scan_changed_with(
        &mut self,
        src: &mut (impl HashSource + ?Sized),
        out: impl FnMut(u64),
    ) -> u64 {
        self.scan_changed_by(&mut Batched::new(src), out)
    }

    /// [`HashTracker::scan_changed`] through `h`.
    pub fn scan_changed_by(
        &mut self,
        h: &mut (impl Hasher + ?Sized),
        mut out: impl FnMut(u64),
    ) -> u64 {
        let end = self.base + self.window();
        let mut n = 0;
        self.hash_frames(
            h,
            self.base,
            |t, from| t.next_slot(from, end, |s| s != UNTRACKED),
            |t, gfn, h| {
                let changed = h.is_none_or(|h| t.value(gfn) != h);
                t.set(gfn, h.unwrap_or(NOT_HASHED));
                if changed {
                    n += 1;
                    out(gfn);
                }
            },
        );
        n
    }

    /// Re-hashes, among the frames in `range`, only the tracked pages in
    /// `candidates` (every tracked page if the set is unbounded) and the
    /// tracked pages with no snapshot yet; every other tracked page keeps
    /// its hash, unread (`skipped` counts those of the whole window).
    /// Calls `out` for every tracked candidate, changed or not, and for
    /// never-hashed non-candidates as `unhashed` says (an unreadable one
    /// always). A hash that did not change does not prove the VMM's copy
    /// current: the page may have changed and changed back while the VMM
    /// copied it, which only the write set knows (the dirty log's test
    /// `pages_that_change_and_change_back_while_the_vmm_copies_are_not_lost`).
    /// `candidates` must cover this tracker's window.
    /// Allocates nothing; the work is proportional to the candidates,
    /// plus one pass over the slots when some page has no snapshot.
    pub fn scan_candidates<B, E>(
        &mut self,
        candidates: &WriteSet<B>,
        range: core::ops::Range<u64>,
        unhashed: Unhashed,
        scratch: &mut [u8; PAGE],
        read: impl FnMut(u64, &mut [u8; PAGE]) -> Result<(), E>,
        out: impl FnMut(u64),
    ) -> RehashStats
    where
        B: core::ops::DerefMut<Target = [u64]>,
    {
        self.scan_candidates_with(
            candidates,
            range,
            unhashed,
            &mut Copying::new(scratch, read),
            out,
        )
    }

    /// [`HashTracker::scan_candidates`] through `src`.
    pub fn scan_candidates_with<B>(
        &mut self,
        candidates: &WriteSet<B>,
        range: core::ops::Range<u64>,
        unhashed: Unhashed,
        src: &mut (impl HashSource + ?Sized),
        out: impl FnMut(u64),
    ) -> RehashStats
    where
        B: core::ops::DerefMut<Target = [u64]>,
    {
        self.scan_candidates_by(candidates, range, unhashed, &mut Batched::new(src), out)
    }

    /// [`HashTracker::scan_candidates`] through `src`.
    pub fn scan_candidates_by<B>(
        &mut self,
        candidates: &WriteSet<B>,
        range: core::ops::Range<u64>,
        unhashed: Unhashed,
        src: &mut (impl Hasher + ?Sized),
        mut out: impl FnMut(u64),
    ) -> RehashStats
    where
        B: core::ops::DerefMut<Target = [u64]>,
    {
        let before = self.hashed;
        let mut changed = 0;
        let end = range.end;
        let same_window = candidates.base() == self.base && candidates.window() == self.window();
        if candidates.is_unbounded() || !same_window {
            // Unknown write set (or a set of another window): every
            // tracked page is a candidate, and a candidate is reported
            // whether its hash changed or not (see below).
            self.hash_frames(
                src,
                range.start,
                |t, from| t.next_slot(from, end, |s| s != UNTRACKED),
                |t, gfn, h| {
                    t.set(gfn, h.unwrap_or(NOT_HASHED));
                    changed += 1;
                    out(gfn);
                },
            );
        } else {
            if self.unhashed > 0 {
                self.hash_frames(
                    src,
                    range.start,
                    |t, from| {
                        let mut from = from;
                        loop {
                            let g = t.next_slot(from, end, |s| s == NOT_HASHED)?;
                            if !candidates.contains(g) {
                                return Some(g);
                            }
                            from = g + 1;
                        }
                    },
                    |t, gfn, h| {
                        if let Some(h) = h {
                            t.set(gfn, h);
                        }
                        if h.is_none() || unhashed == Unhashed::Report {
                            changed += 1;
                            out(gfn);
                        }
                    },
                );
            }
            // A candidate goes out even when its hash did not change: the
            // GPU may have changed it and changed it back (a frame cleared
            // and drawn again) while the VMM copied it, and then the
            // destination holds neither the old nor the new contents.
            self.hash_frames(
                src,
                range.start,
                |t, from| {
                    candidates
                        .iter_range(from..end)
                        .find(|&g| t.value(g) != UNTRACKED)
                },
                |t, gfn, h| {
                    t.set(gfn, h.unwrap_or(NOT_HASHED));
                    changed += 1;
                    out(gfn);
                },
            );
        }
        let rehashed = self.hashed - before;
        RehashStats {
            rehashed,
            skipped: self.tracked.saturating_sub(rehashed),
            changed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pageread::BATCH;
    use std::collections::BTreeMap;
    use std::vec;
    use std::vec::Vec;

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
    }

    #[test]
    fn window_edges() {
        let mut t = HashTracker::new(100, 1, vec![0u64; 10]);
        assert_eq!(t.track(99), Err(OutOfWindow(99)));
        assert_eq!(t.track(110), Err(OutOfWindow(110)));
        t.track(100).unwrap();
        t.track(109).unwrap();
        t.track(109).unwrap();
        assert_eq!(t.tracked(), 2);
        assert!(t.is_tracked(109) && !t.is_tracked(105) && !t.is_tracked(u64::MAX));
        t.untrack(100).unwrap();
        assert_eq!(t.tracked_frames().collect::<Vec<_>>(), vec![109]);
    }

    /// The tracker agrees with a reference that keeps full page copies.
    #[test]
    fn agrees_with_brute_force_reference() {
        for seed in 0..20u64 {
            let mut rng = Rng(seed);
            let n = 64usize;
            let mut mem = vec![[0u8; PAGE]; n];
            let mut t = HashTracker::new(0, rng.next(), vec![0u64; n]);
            let mut reference: BTreeMap<u64, Option<[u8; PAGE]>> = BTreeMap::new();
            let mut scratch = [0u8; PAGE];
            for _round in 0..30 {
                for _ in 0..(rng.next() % 8) {
                    let g = rng.next() % n as u64;
                    if rng.next().is_multiple_of(3) {
                        t.untrack(g).unwrap();
                        reference.remove(&g);
                    } else {
                        t.track(g).unwrap();
                        reference.entry(g).or_insert(None);
                    }
                }
                for _ in 0..(rng.next() % 10) {
                    let g = (rng.next() % n as u64) as usize;
                    let off = (rng.next() % PAGE as u64) as usize;
                    mem[g][off] = mem[g][off].wrapping_add(1 + (rng.next() % 255) as u8);
                }
                let mut got = Vec::new();
                t.scan_changed(
                    &mut scratch,
                    |g, buf| {
                        buf.copy_from_slice(&mem[g as usize]);
                        Ok::<(), ()>(())
                    },
                    |g| got.push(g),
                );
                let mut want = Vec::new();
                for (g, snap) in reference.iter_mut() {
                    let cur = mem[*g as usize];
                    if snap.as_ref() != Some(&cur) {
                        want.push(*g);
                        *snap = Some(cur);
                    }
                }
                assert_eq!(got, want, "seed {seed}");
                assert_eq!(t.tracked(), reference.len() as u64);
            }
        }
    }

    /// Hashes guest memory word by word, as the kernel's in-place source
    /// does, and checks the runs it is given.
    struct InPlace<'a> {
        mem: &'a [[u8; PAGE]],
        runs: u64,
    }

    impl HashSource for InPlace<'_> {
        fn hash_run(&mut self, seed: u64, first: u64, out: &mut [Option<u64>]) {
            assert!(!out.is_empty() && out.len() <= BATCH);
            self.runs += 1;
            for (g, o) in (first..).zip(out.iter_mut()) {
                *o = self.mem.get(g as usize).map(|p| {
                    crate::hash::page_hash_words(seed, |i| {
                        let mut w = [0u8; 8];
                        w.copy_from_slice(&p[8 * i..8 * i + 8]);
                        u64::from_le_bytes(w)
                    })
                });
            }
        }
    }

    /// The in-place source and the copy path find the same pages, in the
    /// same order, with the same slots, through every scan; the in-place
    /// source is given runs of contiguous frames.
    #[test]
    fn hashing_in_place_agrees_with_the_copy_path() {
        use crate::writeset::{words_for, WriteSet};
        for seed in 0..30u64 {
            let mut rng = Rng(seed);
            let n = 200usize;
            let mut mem = vec![[0u8; PAGE]; n];
            let hseed = rng.next();
            // The tracker's window is a frame larger than memory: the last
            // frame cannot be read.
            let mut a = HashTracker::new(0, hseed, vec![0u64; n + 1]);
            let mut b = HashTracker::new(0, hseed, vec![0u64; n + 1]);
            let mut scratch = [0u8; PAGE];
            let mut runs = 0;
            for round in 0..12 {
                for _ in 0..rng.next() % 40 {
                    let g = rng.next() % (n as u64 + 1);
                    if rng.next().is_multiple_of(5) {
                        a.untrack(g).unwrap();
                        b.untrack(g).unwrap();
                    } else {
                        a.track(g).unwrap();
                        b.track(g).unwrap();
                    }
                }
                let mut cand =
                    WriteSet::new(0, n as u64 + 1, vec![0u64; words_for(n as u64 + 1)]).unwrap();
                for _ in 0..rng.next() % 60 {
                    let g = (rng.next() % n as u64) as usize;
                    mem[g][(rng.next() % PAGE as u64) as usize] ^= 1 + (rng.next() % 255) as u8;
                    cand.record(g as u64);
                }
                let read = |g: u64, buf: &mut [u8; PAGE]| {
                    buf.copy_from_slice(mem.get(g as usize).ok_or(())?);
                    Ok::<(), ()>(())
                };
                let mut src = InPlace { mem: &mem, runs: 0 };
                let (mut ga, mut gb) = (Vec::new(), Vec::new());
                match round % 3 {
                    0 => {
                        let na = a.scan_changed(&mut scratch, read, |g| ga.push(g));
                        let nb = b.scan_changed_with(&mut src, |g| gb.push(g));
                        assert_eq!(na, nb);
                    }
                    1 => {
                        let lo = rng.next() % 50;
                        let hi = lo + rng.next() % 200;
                        let u = if rng.next().is_multiple_of(2) {
                            Unhashed::Report
                        } else {
                            Unhashed::Snapshot
                        };
                        let ra =
                            a.scan_candidates(&cand, lo..hi, u, &mut scratch, read, |g| ga.push(g));
                        let rb = b.scan_candidates_with(&cand, lo..hi, u, &mut src, |g| gb.push(g));
                        assert_eq!(ra, rb);
                    }
                    _ => {
                        assert_eq!(a.scan_new(&mut scratch, read), b.scan_new_with(&mut src));
                    }
                }
                runs += src.runs;
                assert_eq!(ga, gb, "seed {seed} round {round}");
                assert_eq!(a.slots, b.slots, "seed {seed} round {round}");
                assert_eq!(
                    (a.tracked(), a.hashed(), a.unhashed()),
                    (b.tracked(), b.hashed(), b.unhashed())
                );
            }
            assert!(runs > 0);
        }
    }

    /// Every scan gives the same result, bit for bit (reported frames and
    /// their order, statistics, every slot, the counters), whether its
    /// pages are hashed a batch at a time on one CPU or in rounds of
    /// chunks spread over threads and merged in order; and a chunk that
    /// fails (the device gone under a worker) counts its pages as changed
    /// exactly as pages that cannot be read do on one CPU.
    #[test]
    fn chunked_scans_equal_batched() {
        use crate::pageread::testing::{Mem, Threads};
        use crate::pageread::{Chunk, Chunked, CHUNK};
        use crate::writeset::{words_for, WriteSet};
        use std::collections::BTreeSet;
        let mut spread_rounds = 0;
        let mut failed_frames = 0;
        for seed in 0..12u64 {
            let mut rng = Rng(seed + 100);
            let n = 4 * CHUNK + (rng.next() % 700) as usize;
            let window = n as u64 + 3;
            let mut mem = vec![[0u8; PAGE]; n];
            for p in mem.iter_mut() {
                p[0] = rng.next() as u8;
            }
            let hseed = rng.next();
            // a: chunked, b: batched, in lockstep.
            let mut a = HashTracker::new(0, hseed, vec![0u64; window as usize]);
            let mut b = HashTracker::new(0, hseed, vec![0u64; window as usize]);
            let mut chunks = vec![Chunk::new(); 1 + (rng.next() % 6) as usize];
            for round in 0..8 {
                for _ in 0..rng.next() % (n as u64) {
                    let g = rng.next() % window;
                    if rng.next().is_multiple_of(7) {
                        a.untrack(g).unwrap();
                        b.untrack(g).unwrap();
                    } else {
                        a.track(g).unwrap();
                        b.track(g).unwrap();
                    }
                }
                let words = vec![0u64; words_for(window)];
                let mut cand = WriteSet::new(0, window, words).unwrap();
                for _ in 0..rng.next() % (n as u64 / 2) {
                    let g = rng.next() % n as u64;
                    mem[g as usize][(rng.next() % PAGE as u64) as usize] ^= 1;
                    cand.record(g);
                }
                if rng.next().is_multiple_of(4) {
                    cand.set_unbounded();
                }
                let unreadable: BTreeSet<u64> =
                    (0..rng.next() % 8).map(|_| rng.next() % window).collect();
                let fail_mod = 2 + rng.next() % 9;
                let fail = move |i: u64| (i * 7 + seed).is_multiple_of(fail_mod);
                let mut pool = Threads {
                    mem: &mem,
                    unreadable: &unreadable,
                    threads: 1 + (rng.next() % 4) as usize,
                    fail: &fail,
                    chunks_seen: 0,
                    failed: BTreeSet::new(),
                    spread_rounds: 0,
                };
                let kind = rng.next() % 4;
                let lo = rng.next() % 100;
                let hi = lo + rng.next() % window;
                let u = if rng.next().is_multiple_of(2) {
                    Unhashed::Report
                } else {
                    Unhashed::Snapshot
                };
                let (mut ga, mut gb) = (Vec::new(), Vec::new());
                let ra = {
                    let mut h = Chunked::new(&mut chunks, &mut pool).unwrap();
                    match kind {
                        0 => (
                            a.scan_changed_by(&mut h, |g| ga.push(g)),
                            RehashStats::default(),
                        ),
                        1 => (a.scan_new_by(&mut h), RehashStats::default()),
                        _ => (
                            0,
                            a.scan_candidates_by(&cand, lo..hi, u, &mut h, |g| ga.push(g)),
                        ),
                    }
                };
                // Pages of a failed chunk read as unreadable pages do.
                let gone: BTreeSet<u64> = unreadable.union(&pool.failed).copied().collect();
                let mut src = Mem {
                    mem: &mem,
                    unreadable: &gone,
                };
                let rb = match kind {
                    0 => (
                        b.scan_changed_with(&mut src, |g| gb.push(g)),
                        RehashStats::default(),
                    ),
                    1 => (b.scan_new_with(&mut src), RehashStats::default()),
                    _ => (
                        0,
                        b.scan_candidates_with(&cand, lo..hi, u, &mut src, |g| gb.push(g)),
                    ),
                };
                let ctx = std::format!("seed {seed} round {round} kind {kind}");
                assert_eq!(ra, rb, "{ctx}");
                assert_eq!(ga, gb, "{ctx}");
                assert_eq!(a.slots, b.slots, "{ctx}");
                assert_eq!(
                    (a.tracked(), a.hashed(), a.unhashed()),
                    (b.tracked(), b.hashed(), b.unhashed()),
                    "{ctx}"
                );
                spread_rounds += pool.spread_rounds;
                failed_frames += pool.failed.len();
            }
        }
        assert!(spread_rounds >= 10, "rounds were spread ({spread_rounds})");
        assert!(failed_frames > 0, "chunks failed");
    }

    #[test]
    fn unreadable_pages_count_as_changed() {
        let mut t = HashTracker::new(0, 9, vec![0u64; 4]);
        t.track(1).unwrap();
        let mut s = [0u8; PAGE];
        let n = t.scan_changed(&mut s, |_, _| Err(()), |_| {});
        assert_eq!(n, 1);
        let n = t.scan_changed(
            &mut s,
            |_, b| {
                let _: () = b.fill(0);
                Ok::<(), ()>(())
            },
            |_| {},
        );
        assert_eq!(n, 1, "first successful hash after a failure");
        let n = t.scan_changed(
            &mut s,
            |_, b| {
                let _: () = b.fill(0);
                Ok::<(), ()>(())
            },
            |_| {},
        );
        assert_eq!(n, 0);
    }
}

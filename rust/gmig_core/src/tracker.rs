// SPDX-License-Identifier: GPL-2.0

//! The software dirty-page tracker: one 64-bit slot per guest page of a
//! window, holding the page's hash when it was last snapshotted.
//!
//! Slot values: 0 = page not tracked (the GPU cannot reach it), 1 = tracked
//! but not hashed yet, anything else = the seeded hash at the last
//! snapshot (hashes 0 and 1 are stored as 2 and 3). So the memory cost is
//! exactly 8 bytes per page of the window plus a few counters, lookups are
//! O(1) by guest frame number, and nothing on the stop-copy path allocates:
//! the caller passes the slot storage in and reads pages into its own
//! buffer.

use super::hash::page_hash;
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
        let seed = self.seed;
        let s = self.slot(gfn)?;
        if *s == UNTRACKED {
            return Ok(false);
        }
        let h = stored(page_hash(seed, page));
        let changed = *s != h;
        let was_unhashed = *s == NOT_HASHED;
        if update {
            *s = h;
        }
        self.unhashed -= u64::from(update && was_unhashed);
        self.hashed += 1;
        Ok(changed)
    }

    /// Whether `gfn` is tracked but has no snapshot yet.
    pub fn needs_hash(&self, gfn: u64) -> bool {
        gfn.checked_sub(self.base)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| self.slots.get(i))
            .is_some_and(|&s| s == NOT_HASHED)
    }

    /// Snapshots the tracked pages that have none yet; returns how many.
    /// Pages that cannot be read stay without a snapshot.
    pub fn scan_new<E>(
        &mut self,
        scratch: &mut [u8; PAGE],
        mut read: impl FnMut(u64, &mut [u8; PAGE]) -> Result<(), E>,
    ) -> u64 {
        let seed = self.seed;
        let base = self.base;
        let mut n = 0;
        for (i, s) in self.slots.iter_mut().enumerate() {
            if *s != NOT_HASHED {
                continue;
            }
            if read(base + i as u64, scratch).is_ok() {
                *s = stored(page_hash(seed, scratch));
                self.hashed += 1;
                self.unhashed -= 1;
                n += 1;
            }
        }
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
        mut read: impl FnMut(u64, &mut [u8; PAGE]) -> Result<(), E>,
        mut out: impl FnMut(u64),
    ) -> u64 {
        let seed = self.seed;
        let base = self.base;
        let mut n = 0;
        for (i, s) in self.slots.iter_mut().enumerate() {
            if *s == UNTRACKED {
                continue;
            }
            let gfn = base + i as u64;
            let changed = match read(gfn, scratch) {
                Ok(()) => {
                    self.hashed += 1;
                    let h = stored(page_hash(seed, scratch));
                    let c = *s != h;
                    account(&mut self.unhashed, *s, h);
                    *s = h;
                    c
                }
                Err(_) => {
                    account(&mut self.unhashed, *s, NOT_HASHED);
                    *s = NOT_HASHED;
                    true
                }
            };
            if changed {
                n += 1;
                out(gfn);
            }
        }
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
        mut read: impl FnMut(u64, &mut [u8; PAGE]) -> Result<(), E>,
        mut out: impl FnMut(u64),
    ) -> RehashStats
    where
        B: core::ops::DerefMut<Target = [u64]>,
    {
        let same_window = candidates.base() == self.base && candidates.window() == self.window();
        if candidates.is_unbounded() || !same_window {
            // Unknown write set (or a set of another window): every
            // tracked page is a candidate; a never-hashed one is reported
            // if recorded, or if `unhashed` says so.
            let before = self.hashed;
            let mut changed = 0;
            let base = self.base;
            let seed = self.seed;
            let (lo, hi) = self.indices(&range);
            for (i, s) in self
                .slots
                .get_mut(lo..hi)
                .unwrap_or(&mut [])
                .iter_mut()
                .enumerate()
            {
                if *s == UNTRACKED {
                    continue;
                }
                let gfn = base + (lo + i) as u64;
                let was = *s;
                let (c, new) = match read(gfn, scratch) {
                    Ok(()) => {
                        self.hashed += 1;
                        let h = stored(page_hash(seed, scratch));
                        // Every tracked page is a candidate here, and a
                        // candidate is reported whether its hash changed
                        // or not (see below).
                        (true, h)
                    }
                    Err(_) => (true, NOT_HASHED),
                };
                account(&mut self.unhashed, was, new);
                *s = new;
                if c {
                    changed += 1;
                    out(gfn);
                }
            }
            let rehashed = self.hashed - before;
            return RehashStats {
                rehashed,
                skipped: self.tracked.saturating_sub(rehashed),
                changed,
            };
        }
        let before = self.hashed;
        let mut changed = 0;
        let base = self.base;
        let seed = self.seed;
        if self.unhashed > 0 {
            let (lo, hi) = self.indices(&range);
            for (i, s) in self
                .slots
                .get_mut(lo..hi)
                .unwrap_or(&mut [])
                .iter_mut()
                .enumerate()
            {
                let gfn = base + (lo + i) as u64;
                if *s != NOT_HASHED || candidates.contains(gfn) {
                    continue;
                }
                let ok = read(gfn, scratch).is_ok();
                if ok {
                    self.hashed += 1;
                    *s = stored(page_hash(seed, scratch));
                    self.unhashed -= 1;
                }
                if !ok || unhashed == Unhashed::Report {
                    changed += 1;
                    out(gfn);
                }
            }
        }
        for gfn in candidates.iter_range(range) {
            let Some(s) = gfn
                .checked_sub(base)
                .and_then(|i| usize::try_from(i).ok())
                .and_then(|i| self.slots.get_mut(i))
            else {
                continue;
            };
            if *s == UNTRACKED {
                continue;
            }
            // A candidate goes out even when its hash did not change: the
            // GPU may have changed it and changed it back (a frame cleared
            // and drawn again) while the VMM copied it, and then the
            // destination holds neither the old nor the new contents.
            let was = *s;
            let new = match read(gfn, scratch) {
                Ok(()) => {
                    self.hashed += 1;
                    stored(page_hash(seed, scratch))
                }
                Err(_) => NOT_HASHED,
            };
            account(&mut self.unhashed, was, new);
            *s = new;
            changed += 1;
            out(gfn);
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

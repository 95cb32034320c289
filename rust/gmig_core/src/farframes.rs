// SPDX-License-Identifier: GPL-2.0

//! GPU-writable frames outside the tracker's window, and the one rule by
//! which every frame the GPU may write enters the dirty log.
//!
//! The hash tracker covers a window of frames from the lowest logged range
//! (capped: 8 bytes a page). A frame the GPU can write above that window
//! cannot be hashed, so it is kept here and reported dirty in every report
//! whose range holds it: conservative, never lost. The set has a fixed
//! capacity; a frame that does not fit makes the set [`FarFrames::lost`],
//! and the migration layer then fails every report (the VMM aborts the
//! migration) instead of leaving a GPU write unreported.

use super::tracker::HashTracker;
use super::writeset::WriteSet;

/// A sorted set of frames of fixed capacity.
pub struct FarFrames<B> {
    frames: B,
    len: usize,
    lost: bool,
}

impl<B: core::ops::DerefMut<Target = [u64]>> FarFrames<B> {
    /// An empty set holding at most `frames.len()` frames.
    pub fn new(frames: B) -> Self {
        Self {
            frames,
            len: 0,
            lost: false,
        }
    }

    /// Frames in the set.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A frame could not be kept: reports can no longer be complete.
    pub fn lost(&self) -> bool {
        self.lost
    }

    /// Adds `gfn`; `false` if the set is full (and it is now [`lost`]).
    ///
    /// [`lost`]: Self::lost
    pub fn insert(&mut self, gfn: u64) -> bool {
        let held = &self.frames[..self.len];
        let Err(at) = held.binary_search(&gfn) else {
            return true;
        };
        if self.len == self.frames.len() {
            self.lost = true;
            return false;
        }
        self.frames.copy_within(at..self.len, at + 1);
        self.frames[at] = gfn;
        self.len += 1;
        true
    }

    /// Whether `gfn` is in the set.
    pub fn contains(&self, gfn: u64) -> bool {
        self.frames[..self.len].binary_search(&gfn).is_ok()
    }

    /// The frames in `range`, ascending.
    pub fn iter_range(&self, range: core::ops::Range<u64>) -> impl Iterator<Item = u64> + '_ {
        let held = &self.frames[..self.len];
        let lo = held.partition_point(|&g| g < range.start);
        let hi = held.partition_point(|&g| g < range.end);
        held[lo..hi.max(lo)].iter().copied()
    }
}

/// How a frame the GPU may write entered the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Noted {
    /// Already tracked.
    Known,
    /// Tracked from now on, and pending for the next report.
    New,
    /// Outside the window: reported dirty in every report.
    Far,
    /// Outside the window and the far set is full.
    Lost,
}

/// Enters `gfn`, a frame the GPU may write (a GGTT or PPGTT mapping, a pin,
/// a command's write set), into the dirty log.
///
/// A newly tracked frame is also pending: the VMM may have sent it before
/// it became reachable and the GPU may write it before its first hash, so
/// the next report names it (and the hash taken then is the content the
/// VMM sends after it). Every entry point uses this one rule.
pub fn note_frame<T, P, F>(
    tracker: &mut HashTracker<T>,
    pending: &mut WriteSet<P>,
    far: &mut FarFrames<F>,
    gfn: u64,
) -> Noted
where
    T: core::ops::DerefMut<Target = [u64]>,
    P: core::ops::DerefMut<Target = [u64]>,
    F: core::ops::DerefMut<Target = [u64]>,
{
    if tracker.is_tracked(gfn) {
        return Noted::Known;
    }
    if tracker.track(gfn).is_err() {
        return if far.insert(gfn) {
            Noted::Far
        } else {
            Noted::Lost
        };
    }
    pending.record(gfn);
    Noted::New
}

#[cfg(all(test, not(CONFIG_RUST)))]
mod tests {
    use super::*;
    use crate::writeset::words_for;
    use std::vec;

    const GIB_FRAMES: u64 = (1 << 30) / 4096;

    #[test]
    fn far_set_is_sorted_deduplicated_and_bounded() {
        let mut far = FarFrames::new(vec![0u64; 3]);
        assert!(far.insert(30));
        assert!(far.insert(10));
        assert!(far.insert(30));
        assert!(far.insert(20));
        assert_eq!(far.len(), 3);
        assert!(!far.lost());
        assert!(!far.insert(40));
        assert!(far.lost());
        assert!(!far.contains(40));
        let got: vec::Vec<u64> = far.iter_range(15..31).collect();
        assert_eq!(got, [20, 30]);
        assert_eq!(far.iter_range(31..15).count(), 0);
    }

    /// A q35 guest of 14 GiB logs [0, 2G) and [4G, 18G); the window is
    /// 16 GiB from frame 0 (the kernel's cap), a frame at 17 GiB is
    /// outside it: it must be reported, not only counted.
    #[test]
    fn frame_above_the_window_is_kept_for_every_report() {
        let window = 16 * GIB_FRAMES;
        let mut tracker = HashTracker::new(0, 7, vec![0u64; window as usize]);
        let mut pending =
            WriteSet::new(0, window, vec![0u64; words_for(window)]).expect("write set");
        let mut far = FarFrames::new(vec![0u64; 8]);
        let high = 17 * GIB_FRAMES + 5;
        assert_eq!(
            note_frame(&mut tracker, &mut pending, &mut far, high),
            Noted::Far
        );
        let lo = 4 * GIB_FRAMES;
        let hi = 18 * GIB_FRAMES;
        assert_eq!(far.iter_range(lo..hi).collect::<vec::Vec<_>>(), [high]);
        // Reports do not drain it: every report names it again.
        assert_eq!(far.iter_range(lo..hi).count(), 1);
        assert_eq!(far.iter_range(0..2 * GIB_FRAMES).count(), 0);
    }

    /// A frame first seen by the command streamer (a PPGTT-only page)
    /// joins the pending set, like one seen by a shadow event.
    #[test]
    fn newly_tracked_frame_is_pending() {
        let mut tracker = HashTracker::new(100, 7, vec![0u64; 64]);
        let mut pending = WriteSet::new(100, 64, vec![0u64; words_for(64)]).expect("write set");
        let mut far = FarFrames::new(vec![0u64; 1]);
        assert_eq!(
            note_frame(&mut tracker, &mut pending, &mut far, 120),
            Noted::New
        );
        assert!(tracker.is_tracked(120));
        assert!(pending.contains(120));
        pending.clear();
        assert_eq!(
            note_frame(&mut tracker, &mut pending, &mut far, 120),
            Noted::Known
        );
        assert!(!pending.contains(120));
        assert_eq!(
            note_frame(&mut tracker, &mut pending, &mut far, 500),
            Noted::Far
        );
        assert_eq!(
            note_frame(&mut tracker, &mut pending, &mut far, 501),
            Noted::Lost
        );
        assert!(far.lost());
    }
}

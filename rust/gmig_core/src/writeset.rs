// SPDX-License-Identifier: GPL-2.0

//! The write-set recorder: which guest frames the GPU may have written
//! since the tracker last hashed them.
//!
//! gMig re-hashes every tracked page in the downtime, which costs about as
//! much as copying them. gmig keeps the hashes current during pre-copy
//! instead and, at stop-copy, re-hashes only the frames the executed work
//! could have written. That set is derived from the commands the provider
//! parsed, before they run: MI_STORE_DATA_IMM, MI_FLUSH_DW and PIPE_CONTROL
//! post-sync writes, XY_COLOR_BLT / XY_SRC_COPY_BLT destination
//! rectangles, the context image the engine writes back, the writes of
//! the commands the sim's streamer runs without effect
//! ([`command::command_write`]: MI_STORE_REGISTER_MEM, timestamp
//! PIPE_CONTROLs, ...), and the pages the device model itself writes on
//! the guest driver's behalf (ring, batch buffers and context images of
//! the synthetic workload). Draws, compute dispatches and depth/HiZ
//! operations are bounded from the context's pipeline state
//! ([`state::PipeState`], which the sim's streamer follows per context).
//! A command whose write set cannot be bounded (state not seen, a kernel
//! or surface the analysis refuses, media objects, MI_ATOMIC,
//! MI_COPY_MEM_MEM) makes the set [`WriteSet::is_unbounded`]: then every
//! tracked frame counts (a superset of what the active address spaces map
//! writable).
//!
//! The set is a bitmap over the tracker's window (one bit per frame, 1/64
//! of the tracker's own memory), given by the caller, so recording never
//! allocates and costs one bit test-and-set per page of a write.

use super::gtt::PAGE_SIZE;

pub mod command;
pub mod eu;
pub mod scan;
pub mod state;
pub mod surface;

/// Where the command streamer reports what a command may write.
pub trait WriteSink {
    /// The command about to run may write guest frame `gfn`.
    fn may_write(&mut self, gfn: u64);
    /// A command whose write set is not known is about to run.
    fn unbounded(&mut self);
}

/// Both sinks are told (the migration's write set and a replay's witness
/// of what each execbuffer's analysis named).
pub struct Tee<'a, A, B>(pub &'a mut A, pub &'a mut B);

impl<A: WriteSink, B: WriteSink> WriteSink for Tee<'_, A, B> {
    fn may_write(&mut self, gfn: u64) {
        self.0.may_write(gfn);
        self.1.may_write(gfn);
    }
    fn unbounded(&mut self) {
        self.0.unbounded();
        self.1.unbounded();
    }
}

/// A closure sees the bounded frames only (tests that ignore write sets).
impl<F: FnMut(u64)> WriteSink for F {
    fn may_write(&mut self, gfn: u64) {
        self(gfn)
    }
    fn unbounded(&mut self) {}
}

/// Frames `[base, base + frames)` as a bitmap in caller storage.
pub struct WriteSet<B> {
    base: u64,
    frames: u64,
    bits: B,
    recorded: u64,
    outside: u64,
    unbounded: bool,
}

/// Words of bitmap storage a window of `frames` frames needs.
pub const fn words_for(frames: u64) -> usize {
    frames.div_ceil(64) as usize
}

impl<B: core::ops::DerefMut<Target = [u64]>> WriteSet<B> {
    /// An empty set over `frames` frames from `base`; `bits` must hold at
    /// least [`words_for`]`(frames)` words (it is cleared). `None` if not.
    pub fn new(base: u64, frames: u64, mut bits: B) -> Option<Self> {
        if (bits.len() as u64) < frames.div_ceil(64) {
            return None;
        }
        base.checked_add(frames)?;
        for w in &mut *bits {
            *w = 0;
        }
        Some(Self {
            base,
            frames,
            bits,
            recorded: 0,
            outside: 0,
            unbounded: false,
        })
    }

    /// First frame of the window.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// Frames in the window.
    pub fn window(&self) -> u64 {
        self.frames
    }

    fn index(&self, gfn: u64) -> Option<(usize, u64)> {
        let i = gfn.checked_sub(self.base)?;
        if i >= self.frames {
            return None;
        }
        Some(((i / 64) as usize, 1u64 << (i % 64)))
    }

    /// Records that `gfn` may have been written.
    pub fn record(&mut self, gfn: u64) {
        match self.index(gfn) {
            Some((w, m)) => {
                if let Some(word) = self.bits.get_mut(w) {
                    if *word & m == 0 {
                        *word |= m;
                        self.recorded += 1;
                    }
                }
            }
            None => self.outside += 1,
        }
    }

    /// Records the frames a write of `len` bytes at guest physical `gpa`
    /// touches.
    pub fn record_bytes(&mut self, gpa: u64, len: u64) {
        if len == 0 {
            return;
        }
        let first = gpa / PAGE_SIZE;
        let last = gpa.saturating_add(len - 1) / PAGE_SIZE;
        for gfn in first..=last {
            self.record(gfn);
        }
    }

    /// The write set is no longer bounded by the recorded frames.
    pub fn set_unbounded(&mut self) {
        self.unbounded = true;
    }

    /// Whether an unbounded command ran since the last [`WriteSet::clear`].
    pub fn is_unbounded(&self) -> bool {
        self.unbounded
    }

    /// Whether `gfn` is recorded.
    pub fn contains(&self, gfn: u64) -> bool {
        self.index(gfn)
            .and_then(|(w, m)| self.bits.get(w).map(|word| word & m != 0))
            .unwrap_or(false)
    }

    /// Distinct frames recorded.
    pub fn len(&self) -> u64 {
        self.recorded
    }

    /// Whether no frame is recorded (the set may still be unbounded).
    pub fn is_empty(&self) -> bool {
        self.recorded == 0
    }

    /// Records of frames outside the window (the tracker cannot track
    /// them either; see its `outside` count).
    pub fn outside(&self) -> u64 {
        self.outside
    }

    /// Empties the set (and its unbounded flag).
    pub fn clear(&mut self) {
        if self.recorded != 0 {
            for w in &mut *self.bits {
                *w = 0;
            }
        }
        self.recorded = 0;
        self.unbounded = false;
    }

    /// Recorded frames, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.iter_range(self.base..self.base + self.frames)
    }

    /// Recorded frames in `range`, ascending.
    pub fn iter_range(&self, range: core::ops::Range<u64>) -> impl Iterator<Item = u64> + '_ {
        let base = self.base;
        let lo = range.start.clamp(base, base + self.frames) - base;
        let hi = range.end.clamp(base, base + self.frames) - base;
        let (wlo, whi) = ((lo / 64) as usize, hi.div_ceil(64) as usize);
        self.bits
            .get(wlo..whi)
            .unwrap_or(&[])
            .iter()
            .enumerate()
            .filter(|(_, &w)| w != 0)
            .flat_map(move |(i, &w)| {
                let mut w = w;
                let word = (wlo + i) as u64;
                core::iter::from_fn(move || {
                    if w == 0 {
                        return None;
                    }
                    let b = u64::from(w.trailing_zeros());
                    w &= w - 1;
                    Some(64 * word + b)
                })
            })
            .filter(move |&i| (lo..hi).contains(&i))
            .map(move |i| base + i)
    }

    /// Forgets the recorded frames in `range` (the unbounded flag stays).
    pub fn clear_range(&mut self, range: core::ops::Range<u64>) {
        let base = self.base;
        let lo = range.start.clamp(base, base + self.frames) - base;
        let hi = range.end.clamp(base, base + self.frames) - base;
        if self.recorded == 0 || lo >= hi {
            return;
        }
        if lo == 0 && hi == self.frames {
            for w in &mut *self.bits {
                *w = 0;
            }
            self.recorded = 0;
            return;
        }
        let mut cleared = 0u64;
        let mut i = lo;
        while i < hi {
            let (w, b) = ((i / 64) as usize, i % 64);
            let n = (64 - b).min(hi - i);
            let mask = if n == 64 {
                u64::MAX
            } else {
                ((1u64 << n) - 1) << b
            };
            if let Some(word) = self.bits.get_mut(w) {
                cleared += u64::from((*word & mask).count_ones());
                *word &= !mask;
            }
            i += n;
        }
        self.recorded -= cleared;
    }

    /// Clears the unbounded flag; returns whether it was set.
    pub fn take_unbounded(&mut self) -> bool {
        core::mem::replace(&mut self.unbounded, false)
    }

    /// Moves the recorded frames (and the unbounded flag) into `dst`,
    /// which must cover the same window, and empties `self`. `dst` keeps
    /// what it had. Returns `false` (nothing moved) if the windows differ.
    pub fn drain_into<C: core::ops::DerefMut<Target = [u64]>>(
        &mut self,
        dst: &mut WriteSet<C>,
    ) -> bool {
        if dst.base != self.base || dst.frames != self.frames {
            return false;
        }
        if self.recorded != 0 {
            let mut added = 0u64;
            for (d, s) in dst.bits.iter_mut().zip(self.bits.iter_mut()) {
                added += u64::from((*s & !*d).count_ones());
                *d |= *s;
                *s = 0;
            }
            dst.recorded += added;
        }
        dst.unbounded |= self.unbounded;
        dst.outside += self.outside;
        self.recorded = 0;
        self.unbounded = false;
        self.outside = 0;
        true
    }
}

impl<B: core::ops::DerefMut<Target = [u64]>> WriteSink for WriteSet<B> {
    fn may_write(&mut self, gfn: u64) {
        self.record(gfn)
    }
    fn unbounded(&mut self) {
        self.set_unbounded()
    }
}

/// A small fixed-size log of frames, for code that cannot hand its
/// [`WriteSink`] down while the sink is borrowed elsewhere: replayed into
/// the real sink afterwards; more than `N` frames make it unbounded.
#[derive(Debug, Clone, Copy)]
pub struct FrameLog<const N: usize> {
    frames: [u64; N],
    n: usize,
    overflow: bool,
}

impl<const N: usize> Default for FrameLog<N> {
    fn default() -> Self {
        Self {
            frames: [0; N],
            n: 0,
            overflow: false,
        }
    }
}

impl<const N: usize> FrameLog<N> {
    /// Tells `sink` what was logged.
    pub fn replay(&self, sink: &mut impl WriteSink) {
        for &g in self.frames.get(..self.n).unwrap_or(&[]) {
            sink.may_write(g);
        }
        if self.overflow {
            sink.unbounded();
        }
    }
}

impl<const N: usize> WriteSink for FrameLog<N> {
    fn may_write(&mut self, gfn: u64) {
        if self.frames.get(..self.n).is_some_and(|f| f.contains(&gfn)) {
            return;
        }
        match self.frames.get_mut(self.n) {
            Some(f) => {
                *f = gfn;
                self.n += 1;
            }
            None => self.overflow = true,
        }
    }
    fn unbounded(&mut self) {
        self.overflow = true;
    }
}

/// Frame ranges in caller storage, for frames learnt where the real sink
/// cannot be reached (GVT-g's command scanner hook runs under kvmgt's
/// vGPU lock; the migration's write set is behind gmig's, which is taken
/// first): replayed into the real sink later. A frame next to or inside
/// the last range extends it; when the storage is full the log becomes
/// unbounded (a superset of anything it could have held).
pub struct RangeLog<B> {
    ranges: B,
    n: usize,
    unbounded: bool,
    /// It went unbounded for want of room.
    overflowed: bool,
}

impl<B: core::ops::DerefMut<Target = [(u64, u64)]>> RangeLog<B> {
    /// An empty log in `ranges` (its capacity; the contents are ignored).
    pub fn new(ranges: B) -> Self {
        Self {
            ranges,
            n: 0,
            unbounded: false,
            overflowed: false,
        }
    }

    /// Whether it went unbounded for want of room since it was cleared.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// Records `gfn`.
    pub fn record(&mut self, gfn: u64) {
        if self.unbounded {
            return;
        }
        if let Some(last) = self.n.checked_sub(1).and_then(|i| self.ranges.get_mut(i)) {
            let (first, count) = *last;
            if gfn >= first && gfn - first < count {
                return;
            }
            if Some(gfn) == first.checked_add(count) {
                last.1 += 1;
                return;
            }
        }
        match self.ranges.get_mut(self.n) {
            Some(r) => {
                *r = (gfn, 1);
                self.n += 1;
            }
            None => {
                self.unbounded = true;
                self.overflowed = true;
            }
        }
    }

    /// The recorded ranges (first frame, frames).
    pub fn ranges(&self) -> &[(u64, u64)] {
        self.ranges.get(..self.n).unwrap_or(&[])
    }

    /// Whether the log stands for every frame.
    pub fn is_unbounded(&self) -> bool {
        self.unbounded
    }

    /// Whether nothing is recorded and the log is bounded.
    pub fn is_empty(&self) -> bool {
        self.n == 0 && !self.unbounded
    }

    /// Tells `sink` what was recorded.
    pub fn replay(&self, sink: &mut impl WriteSink) {
        if self.unbounded {
            sink.unbounded();
            return;
        }
        for &(first, count) in self.ranges() {
            for gfn in first..first.saturating_add(count) {
                sink.may_write(gfn);
            }
        }
    }

    /// Empties the log (and its unbounded flag).
    pub fn clear(&mut self) {
        self.n = 0;
        self.unbounded = false;
        self.overflowed = false;
    }
}

impl<B: core::ops::DerefMut<Target = [(u64, u64)]>> WriteSink for RangeLog<B> {
    fn may_write(&mut self, gfn: u64) {
        self.record(gfn)
    }
    fn unbounded(&mut self) {
        self.unbounded = true;
    }
}

/// Guest memory whose writes are recorded in a [`WriteSink`]: for the
/// device model's own writes to guest memory (the synthetic workload's
/// rings, batch buffers and context images), which no command describes.
pub struct RecordingMem<'a, M, W> {
    /// The memory written through.
    pub mem: &'a mut M,
    /// Where the written frames go.
    pub sink: &'a mut W,
}

impl<M: super::mem::GuestMem, W: WriteSink> super::mem::GuestMem for RecordingMem<'_, M, W> {
    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), super::mem::MemFault> {
        self.mem.read(gpa, buf)
    }

    fn write(&mut self, gpa: u64, buf: &[u8]) -> Result<(), super::mem::MemFault> {
        if !buf.is_empty() {
            let first = gpa / PAGE_SIZE;
            let last = gpa.saturating_add(buf.len() as u64 - 1) / PAGE_SIZE;
            for gfn in first..=last {
                self.sink.may_write(gfn);
            }
        }
        self.mem.write(gpa, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::vec;
    use std::vec::Vec;

    #[test]
    fn records_iterates_and_clears() {
        let mut s = WriteSet::new(1000, 200, vec![0u64; words_for(200)]).unwrap();
        assert!(WriteSet::new(0, 200, vec![0u64; 3]).is_none());
        for g in [1000, 1063, 1064, 1199, 1064] {
            s.record(g);
        }
        s.record(999);
        s.record(1200);
        assert_eq!(s.len(), 4);
        assert_eq!(s.outside(), 2);
        assert!(s.contains(1063) && !s.contains(1062) && !s.contains(1200));
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![1000, 1063, 1064, 1199]);
        s.record_bytes(1100 * 4096 + 4000, 200);
        assert!(s.contains(1100) && s.contains(1101) && !s.contains(1102));
        s.set_unbounded();
        let mut d = WriteSet::new(1000, 200, vec![0u64; 4]).unwrap();
        d.record(1001);
        d.record(1000);
        assert!(s.drain_into(&mut d));
        assert!(s.is_empty() && !s.is_unbounded() && s.iter().next().is_none());
        assert_eq!(d.len(), 7);
        assert!(d.is_unbounded());
        d.clear();
        assert!(d.is_empty() && !d.is_unbounded() && d.iter().next().is_none());
        let mut other = WriteSet::new(0, 200, vec![0u64; 4]).unwrap();
        assert!(!d.drain_into(&mut other), "windows differ");
    }

    #[test]
    fn frame_log_replays_and_overflows() {
        let mut log = FrameLog::<2>::default();
        log.may_write(5);
        log.may_write(5);
        log.may_write(6);
        let mut s = WriteSet::new(0, 10, vec![0u64; 1]).unwrap();
        log.replay(&mut s);
        assert_eq!((s.len(), s.is_unbounded()), (2, false));
        log.may_write(7);
        log.replay(&mut s);
        assert!(s.is_unbounded(), "a third frame overflows");
    }

    #[test]
    fn range_log_coalesces_replays_and_overflows() {
        let mut log = RangeLog::new(vec![(0u64, 0u64); 2]);
        assert!(log.is_empty());
        for g in [10, 11, 11, 12, 10, 20] {
            log.may_write(g);
        }
        assert_eq!(log.ranges(), &[(10, 3), (20, 1)]);
        let mut s = WriteSet::new(0, 64, vec![0u64; 1]).unwrap();
        log.replay(&mut s);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![10, 11, 12, 20]);
        assert!(!s.is_unbounded());
        log.may_write(30);
        assert!(log.is_unbounded(), "a third range overflows");
        log.replay(&mut s);
        assert!(s.is_unbounded());
        log.clear();
        assert!(log.is_empty() && log.ranges().is_empty());
        log.unbounded();
        assert!(log.is_unbounded() && !log.is_empty());
    }

    #[test]
    fn ranges_iterate_and_clear() {
        let mut rng = crate::testutil::Rng::new(11);
        for _ in 0..200 {
            let n = 1 + rng.below(700);
            let mut s = WriteSet::new(500, n, vec![0u64; words_for(n)]).unwrap();
            let mut r = BTreeSet::new();
            for _ in 0..rng.below(200) {
                let g = 500 + rng.below(n);
                s.record(g);
                r.insert(g);
            }
            let a = 490 + rng.below(n + 20);
            let b = a + rng.below(n + 20);
            let want: Vec<u64> = r.range(a..b).copied().collect();
            assert_eq!(s.iter_range(a..b).collect::<Vec<_>>(), want);
            s.clear_range(a..b);
            r.retain(|g| !(a..b).contains(g));
            assert_eq!(
                s.iter().collect::<Vec<_>>(),
                r.iter().copied().collect::<Vec<_>>()
            );
            assert_eq!(s.len(), r.len() as u64);
        }
    }

    #[test]
    fn iter_matches_a_reference_set() {
        let mut rng = crate::testutil::Rng::new(3);
        for _ in 0..50 {
            let n = 1 + rng.below(5000);
            let mut s = WriteSet::new(77, n, vec![0u64; words_for(n)]).unwrap();
            let mut r = BTreeSet::new();
            for _ in 0..rng.below(300) {
                let g = 77 + rng.below(n);
                s.record(g);
                r.insert(g);
            }
            assert_eq!(
                s.iter().collect::<Vec<_>>(),
                r.iter().copied().collect::<Vec<_>>()
            );
            assert_eq!(s.len(), r.len() as u64);
        }
    }
}

/// The write-set recorder against the ground truth: random workloads run
/// through the sim's command streamer (and the device model's own ring,
/// batch and context writes), then the candidate re-hash must find exactly
/// the pages a full re-hash finds.
#[cfg(test)]
mod property {
    use super::*;
    use crate::dirtylog::DirtyLog;
    use crate::farframes::FarFrames;
    use crate::gtt::{Partition, Pte};
    use crate::mem::GuestMem;
    use crate::planner::{decide_rehash, Action, DirtySource, Phase, Policy, Rehash};
    use crate::sim::exec::LRC_MAGIC;
    use crate::sim::vgpu::{SimVgpu, TYPES};
    use crate::sim::workload::{Command, Workload};
    use crate::testutil::Rng;
    use crate::tracker::{HashTracker, Unhashed, PAGE};
    use std::collections::BTreeSet;
    use std::format;
    use std::string::String;
    use std::vec;
    use std::vec::Vec;

    const PAGES: u64 = 512;
    const PBASE: u64 = 64 << 20;
    /// PPGTT: graphics `PPBASE + j * 4 KiB` -> guest page `PPPAGE + j`.
    const PPBASE: u64 = 0x7f_0000_0000;
    const PPPAGE: u64 = 400;
    const PPN: u64 = 32;
    /// Context image page, ring pages, batch pages; surfaces from page 32.
    const RING: u64 = 1;
    const BATCH: u64 = 16;
    const SURF: u64 = 32;

    use crate::testutil::VecMem as Mem;

    /// Which path bypasses the recorder (the test must then fail).
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    enum Bypass {
        None,
        /// The streamer runs with a sink that drops its write sets.
        Streamer,
        /// The ring, batch and context image are written unrecorded.
        DriverWrites,
    }

    struct Rig {
        v: SimVgpu<Vec<u64>>,
        mem: Mem,
        ws: WriteSet<Vec<u64>>,
        rng: Rng,
        tail: u32,
        bypass: Bypass,
        unbounded_frames: u32,
    }

    fn le(words: &[u32]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    impl Rig {
        fn new(seed: u64, bypass: Bypass) -> Self {
            let ty = &TYPES[0];
            let p = Partition::new(PBASE, ty.ggtt_size).unwrap();
            let mut v = SimVgpu::new(ty, p, vec![0; p.entries() as usize]).unwrap();
            for i in 0..PAGES {
                v.write_ggtt_entry(PBASE + i * 4096, Pte::new(i * 4096, 0).unwrap().encode());
            }
            let mut mem = Mem(vec![0; (PAGES * 4096) as usize]);
            // PPGTT tables in pages 500..504, set up before logging starts.
            let lv = [500u64, 501, 502, 503];
            for j in 0..PPN {
                let ga = PPBASE + j * 4096;
                let idx = [
                    (ga >> 39) & 511,
                    (ga >> 30) & 511,
                    (ga >> 21) & 511,
                    (ga >> 12) & 511,
                ];
                for l in 0..4 {
                    let next = if l < 3 {
                        lv[l + 1] * 4096
                    } else {
                        (PPPAGE + j) * 4096
                    };
                    mem.write(lv[l] * 4096 + idx[l] * 8, &(next | 3).to_le_bytes())
                        .unwrap();
                }
            }
            let ws = WriteSet::new(0, PAGES, vec![0u64; words_for(PAGES)]).unwrap();
            Self {
                v,
                mem,
                ws,
                rng: Rng::new(seed),
                tail: 0,
                bypass,
                unbounded_frames: 0,
            }
        }

        /// Writes as the guest driver (device model) does: recorded.
        fn driver_write(&mut self, gpa: u64, bytes: &[u8]) {
            if self.bypass == Bypass::DriverWrites {
                self.mem.write(gpa, bytes).unwrap();
            } else {
                let mut m = RecordingMem {
                    mem: &mut self.mem,
                    sink: &mut self.ws,
                };
                m.write(gpa, bytes).unwrap();
            }
        }

        fn ggtt_addr(&mut self, lo_page: u64, pages: u64, align: u64) -> u64 {
            let page = lo_page + self.rng.below(pages);
            PBASE + page * 4096 + self.rng.below(4096 / align) * align
        }

        fn ppgtt_addr(&mut self, align: u64) -> u64 {
            PPBASE + self.rng.below(PPN) * 4096 + self.rng.below(4096 / align) * align
        }

        /// One random frame: a batch of stores, post-sync writes and blits.
        fn frame(&mut self) {
            let mut b: Vec<u32> = Vec::new();
            let mut unbounded = false;
            for _ in 0..self.rng.below(12) {
                let val = self.rng.next_u64() as u32;
                match self.rng.below(9) {
                    0 => {
                        let a = self.ggtt_addr(SURF, PPPAGE - SURF, 4);
                        b.extend([
                            (0x20 << 23) | (1 << 22) | 2,
                            a as u32,
                            (a >> 32) as u32,
                            val,
                        ]);
                    }
                    1 => {
                        // Two dwords, may straddle a page.
                        let a = self.ggtt_addr(SURF, PPPAGE - SURF - 1, 4);
                        b.extend([
                            (0x20 << 23) | (1 << 22) | 3,
                            a as u32,
                            (a >> 32) as u32,
                            val,
                            !val,
                        ]);
                    }
                    2 => {
                        let a = self.ppgtt_addr(4);
                        b.extend([(0x20 << 23) | 2, a as u32, (a >> 32) as u32, val]);
                    }
                    3 => {
                        let ggtt = self.rng.below(2) == 0;
                        let a = if ggtt {
                            self.ggtt_addr(SURF, PPPAGE - SURF, 8)
                        } else {
                            self.ppgtt_addr(8)
                        };
                        let sp = if ggtt { 1 << 24 } else { 0 };
                        b.extend([
                            0x7a00_0004,
                            (1 << 14) | sp,
                            a as u32,
                            (a >> 32) as u32,
                            val,
                            7,
                        ]);
                    }
                    4 => {
                        let a = self.ggtt_addr(SURF, PPPAGE - SURF, 8);
                        b.extend([
                            (0x26 << 23) | (1 << 14) | 2,
                            a as u32 | 4,
                            (a >> 32) as u32,
                            val,
                        ]);
                    }
                    5 | 6 => {
                        // XY_COLOR_BLT over rows of a pitch-4096 surface.
                        let rows = PPPAGE - SURF;
                        let y1 = self.rng.below(rows);
                        let y2 = y1 + 1 + self.rng.below((rows - y1).min(20));
                        let x1 = self.rng.below(1000);
                        let x2 = x1 + 1 + self.rng.below(1024 - x1);
                        let dst = PBASE + SURF * 4096;
                        b.extend([
                            (2 << 29) | (0x50 << 22) | 5,
                            (3 << 24) | 4096,
                            ((y1 as u32) << 16) | x1 as u32,
                            ((y2 as u32) << 16) | x2 as u32,
                            dst as u32,
                            (dst >> 32) as u32,
                            val,
                        ]);
                    }
                    7 => {
                        // XY_SRC_COPY_BLT: 4 rows from one place to another.
                        let rows = PPPAGE - SURF - 4;
                        let dy = self.rng.below(rows);
                        let sy = self.rng.below(rows);
                        let dst = PBASE + SURF * 4096;
                        b.extend([
                            (2 << 29) | (0x53 << 22) | 8,
                            (3 << 24) | 4096,
                            (dy as u32) << 16,
                            (((dy + 4) as u32) << 16) | 64,
                            dst as u32,
                            (dst >> 32) as u32,
                            (sy as u32) << 16,
                            4096,
                            dst as u32,
                            (dst >> 32) as u32,
                        ]);
                    }
                    _ => {
                        if self.rng.below(6) == 0 {
                            // MI_ATOMIC through the GGTT: write set
                            // unknown (through the PPGTT it would fall
                            // back to the PPGTT's frames).
                            b.extend([(0x2f << 23) | (1 << 22) | 1, 0, 0]);
                            unbounded = true;
                        } else {
                            b.push(0);
                        }
                    }
                }
            }
            b.push(0x0a << 23);
            self.unbounded_frames += u32::from(unbounded);
            self.driver_write(BATCH * 4096, &le(&b));
            let batch_g = PBASE + BATCH * 4096;
            let head = self.tail;
            self.driver_write(
                RING * 4096 + u64::from(head),
                &le(&[(0x31 << 23) | 1, batch_g as u32, 0, 0]),
            );
            self.tail = (head + 16) % 8192;
            let ring_g = (PBASE + RING * 4096) as u32;
            self.driver_write(0, &le(&[LRC_MAGIC, ring_g, 8192, head, self.tail, 0, 0]));
            // Every PPGTT store goes through the context's PML4.
            self.driver_write(20, &le(&[(500 * 4096) as u32, 0]));
            self.v.submit(PBASE | (1 << 32));
            let d = self.v.take_submission().unwrap();
            if self.bypass == Bypass::Streamer {
                self.v.execute(d, &mut self.mem, &mut |_| {}).unwrap();
            } else {
                self.v.execute(d, &mut self.mem, &mut self.ws).unwrap();
            }
        }

        fn read(&self) -> impl FnMut(u64, &mut [u8; PAGE]) -> Result<(), ()> + '_ {
            move |g, buf| {
                let s = (g * 4096) as usize;
                buf.copy_from_slice(&self.mem.0[s..s + PAGE]);
                Ok(())
            }
        }
    }

    fn tracker(seed: u64, rig: &Rig) -> HashTracker<Vec<u64>> {
        let mut t = HashTracker::new(0, seed, vec![0u64; PAGES as usize]);
        for g in 0..PAGES {
            t.track(g).unwrap();
        }
        let mut scratch = [0u8; PAGE];
        t.scan_new(&mut scratch, rig.read());
        t
    }

    /// Rounds of random frames; after each, the candidate re-hash must
    /// name every page a full re-hash finds changed (it names every
    /// candidate: a hash that did not change does not prove the VMM's copy
    /// current). Returns the pages the candidate re-hash skipped, or the
    /// first page lost.
    fn candidates_agree(seed: u64, bypass: Bypass) -> Result<(u64, u32), String> {
        let mut rig = Rig::new(seed, bypass);
        let mut part = tracker(seed ^ 0xabc, &rig);
        let mut full = tracker(seed ^ 0xabc, &rig);
        let mut skipped = 0;
        let mut scratch = [0u8; PAGE];
        for round in 0..25 {
            for _ in 0..rig.rng.below(4) {
                rig.frame();
            }
            let mut got = Vec::new();
            let st = part.scan_candidates(
                &rig.ws,
                0..PAGES,
                Unhashed::Report,
                &mut scratch,
                rig.read(),
                |g| got.push(g),
            );
            let mut want = Vec::new();
            full.scan_changed(&mut scratch, rig.read(), |g| want.push(g));
            got.sort_unstable();
            let lost: Vec<_> = want.iter().filter(|g| !got.contains(g)).collect();
            if !lost.is_empty() {
                return Err(format!(
                    "seed {seed} round {round}: page lost, {lost:?} changed but not re-hashed"
                ));
            }
            if !rig.ws.is_unbounded() {
                let named: Vec<u64> = rig.ws.iter().collect();
                assert_eq!(
                    got, named,
                    "seed {seed} round {round}: the candidates go out"
                );
            }
            assert_eq!(st.changed, got.len() as u64);
            assert_eq!(st.rehashed + st.skipped, PAGES);
            skipped += st.skipped;
            rig.ws.clear();
        }
        Ok((skipped, rig.unbounded_frames))
    }

    #[test]
    fn candidate_rehash_finds_what_a_full_rehash_finds() {
        let mut skipped = 0;
        let mut unbounded = 0;
        for seed in 0..24 {
            let (s, u) = candidates_agree(seed, Bypass::None).unwrap();
            skipped += s;
            unbounded += u;
        }
        // Not vacuous: most pages are skipped, some frames went unbounded.
        assert!(skipped > 24 * 25 * PAGES / 2, "skipped only {skipped}");
        assert!(unbounded > 0);
    }

    #[test]
    fn unbounded_commands_fall_back_to_every_page() {
        let mut rig = Rig::new(1, Bypass::None);
        let mut t = tracker(5, &rig);
        let mut seen = 0;
        for _ in 0..200 {
            rig.frame();
            if rig.ws.is_unbounded() {
                seen += 1;
                let mut scratch = [0u8; PAGE];
                let st = t.scan_candidates(
                    &rig.ws,
                    0..PAGES,
                    Unhashed::Report,
                    &mut scratch,
                    rig.read(),
                    |_| {},
                );
                assert_eq!((st.rehashed, st.skipped), (PAGES, 0));
            }
            rig.ws.clear();
        }
        assert!(seen > 0 && seen < 200, "{seen}");
    }

    /// The test above can fail: with either path bypassing the recorder
    /// the candidate re-hash loses pages.
    #[test]
    fn bypassing_the_recorder_is_caught() {
        for bypass in [Bypass::Streamer, Bypass::DriverWrites] {
            let caught = (0..24)
                .filter(|&s| candidates_agree(s, bypass).is_err())
                .count();
            assert!(caught > 18, "{bypass:?}: only {caught} of 24 seeds caught");
        }
    }

    /// The synthetic workload writes guest memory only through the
    /// recorded paths (streamer write sets and recorded driver writes).
    #[test]
    fn synthetic_workload_is_fully_recorded() {
        for profile in ["desktop", "game"] {
            let Ok(Command::Start(mut params)) =
                Command::parse(&format!("start {profile} base=0 size=1M"))
            else {
                panic!("parse");
            };
            params.base = 0;
            let mut rig = Rig::new(9, Bypass::None);
            let mut ws = WriteSet::new(0, PAGES, vec![0u64; words_for(PAGES)]).unwrap();
            let mut wl = {
                let mut m = RecordingMem {
                    mem: &mut rig.mem,
                    sink: &mut ws,
                };
                Workload::setup(params, &mut rig.v, &mut m, &mut |_| {}).unwrap()
            };
            let mut t = tracker(3, &rig);
            let mut full = tracker(3, &rig);
            let mut scratch = vec![0u32; 4096];
            let mut buf = [0u8; PAGE];
            for _ in 0..20 {
                {
                    let mut m = RecordingMem {
                        mem: &mut rig.mem,
                        sink: &mut ws,
                    };
                    wl.submit_frame(&mut rig.v, &mut m, &mut scratch).unwrap();
                }
                while let Some(d) = rig.v.take_submission() {
                    rig.v.execute(d, &mut rig.mem, &mut ws).unwrap();
                }
                let mut got = BTreeSet::new();
                t.scan_candidates(&ws, 0..PAGES, Unhashed::Report, &mut buf, rig.read(), |g| {
                    got.insert(g);
                });
                let mut want = BTreeSet::new();
                full.scan_changed(&mut buf, rig.read(), |g| {
                    want.insert(g);
                });
                assert!(want.is_subset(&got), "{profile}: {want:?} not in {got:?}");
                assert!(!want.is_empty());
                assert_eq!(got, ws.iter().collect::<BTreeSet<u64>>(), "{profile}");
                ws.clear();
            }
        }
    }

    /// A migration as the VMM drives it (first pass interleaved with
    /// frames, pre-copy reports, stop, final report): the destination must
    /// end equal to the source with every policy, and the write-set
    /// policy must send fewer pages at stop-copy than gMig's full re-hash.
    #[test]
    fn migration_with_write_sets_loses_no_page() {
        for seed in 0..12u64 {
            let mut stop = Vec::new();
            for (policy, source, rehash) in [
                (Policy::Oneshot, DirtySource::Hash, Rehash::All),
                (Policy::Oneshot, DirtySource::Hash, Rehash::WriteSet),
                (Policy::Iterative, DirtySource::Hash, Rehash::WriteSet),
                (Policy::Iterative, DirtySource::All, Rehash::WriteSet),
            ] {
                let mut rig = Rig::new(seed, Bypass::None);
                let mut t = HashTracker::new(0, seed, vec![0u64; PAGES as usize]);
                for g in 0..PAGES {
                    t.track(g).unwrap();
                }
                rig.ws.clear();
                let words = words_for(PAGES);
                // The kernel's own dirty log, fed as the kernel feeds it.
                let mut log = DirtyLog::new(
                    t,
                    FarFrames::new(vec![0u64; 16]),
                    WriteSet::new(0, PAGES, vec![0u64; words]).unwrap(),
                    WriteSet::new(0, PAGES, vec![0u64; words]).unwrap(),
                );
                let mut dst = vec![0xeeu8; rig.mem.0.len()];
                let mut scratch = [0u8; PAGE];
                let mut report = |rig: &mut Rig, log: &mut DirtyLog<Vec<u64>>, phase| {
                    // What the commands recorded reaches the log as the
                    // migration layer's WriteSink passes it on.
                    for g in rig.ws.iter_range(0..PAGES) {
                        log.gpu_may_write(g);
                    }
                    if rig.ws.take_unbounded() {
                        log.written.set_unbounded();
                    }
                    rig.ws.clear();
                    let action = decide_rehash(policy, source, rehash, phase);
                    if phase == Phase::StopCopy {
                        log.stop_scan(action, &mut scratch, rig.read());
                    }
                    let action = if phase == Phase::StopCopy {
                        Action::Nothing
                    } else {
                        action
                    };
                    let mut out = Vec::new();
                    log.report(action, 0..PAGES, &mut scratch, rig.read(), |g| out.push(g));
                    out
                };
                let copy = |rig: &Rig, dst: &mut Vec<u8>, g: u64| {
                    let s = (g * 4096) as usize;
                    dst[s..s + 4096].copy_from_slice(&rig.mem.0[s..s + 4096]);
                };
                report(&mut rig, &mut log, Phase::PreCopy);
                for g in 0..PAGES {
                    if rig.rng.below(32) == 0 {
                        rig.frame();
                    }
                    copy(&rig, &mut dst, g);
                }
                for _ in 0..4 {
                    for _ in 0..3 {
                        rig.frame();
                    }
                    for g in report(&mut rig, &mut log, Phase::PreCopy) {
                        copy(&rig, &mut dst, g);
                    }
                }
                rig.frame();
                rig.v.set_quiesced(true);
                let sent = report(&mut rig, &mut log, Phase::StopCopy);
                for &g in &sent {
                    copy(&rig, &mut dst, g);
                }
                assert!(
                    dst == rig.mem.0,
                    "{policy:?}/{source:?}/{rehash:?} seed {seed}: a page was lost"
                );
                stop.push(sent.len());
            }
            assert!(stop[1] <= stop[0], "writeset {stop:?}");
            assert_eq!(stop[3], PAGES as usize);
        }
    }
}

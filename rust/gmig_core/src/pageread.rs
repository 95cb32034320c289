// SPDX-License-Identifier: GPL-2.0

//! How the tracker reads the guest pages it hashes.
//!
//! A scan of the tracker ([`super::tracker::HashTracker`]) visits frames in
//! increasing order. It gathers them in a [`Batch`] of at most [`BATCH`]
//! frames, which hands them to a [`HashSource`] as runs of contiguous frames
//! ([`runs`]), and takes each frame's hash back in order. Two sources:
//!
//! - [`Copying`] (module parameter `hashing=copy`, the old path): each page
//!   is read into a scratch page by the caller's reader (`vfio_dma_rw()` in
//!   the kernel), then hashed with [`page_hash`].
//! - The kernel's in-place source (`hashing=inplace`, `rust/pin.rs`): a run
//!   is pinned with one `vfio_pin_pages()` call, each page is mapped with
//!   `kmap_local_page()` and hashed through volatile word reads
//!   ([`super::hash::page_hash_words`]), and the run is unpinned. Both give
//!   the same hash for the same bytes.
//! - On GVT-g (`hashing=inplace`, `rust/gvt.rs`), kvmgt holds the pages the
//!   GPU can write pinned already: [`hash_pinned_or_copied`] has the holder
//!   of the pins hash those of a run where they are ([`PinnedHasher`]) and
//!   copies the others (pages kvmgt has not pinned) through the copy path.
//!
//! A scan gathers and hands back its frames through a [`Hasher`]: on one
//! CPU, a [`Batch`] at a time ([`Batched`], what every scan did before), or
//! in rounds of [`Chunk`]s ([`Chunked`]) whose hashes a [`ChunkHasher`]
//! computes independently of each other (the kernel spreads a round over
//! the online CPUs) and which are then handed back in order, one chunk
//! after the other, on the scan's own thread. The scan sees the same
//! frames with the same hashes in the same order either way, so its
//! result is the same bit for bit (`tests::chunked_scans_equal_batched`
//! in the tracker). Only a round of at least [`SPREAD_MIN`] frames is
//! spread: a small write-set re-hash stays on the caller's CPU.
//!
//! Everything here is `core`-only and allocates nothing: a batch is a few
//! hundred bytes of the caller's stack, and the chunks of a round are the
//! caller's (the kernel allocates them when dirty logging starts).

use super::hash::{page_hash, PAGE_BYTES as PAGE};
use core::ops::Range;

/// Most frames of one batch, and so of one run a source is given (the
/// in-place source pins at most this many pages at once).
pub const BATCH: usize = 32;

/// Hashes guest frames for the tracker.
pub trait HashSource {
    /// Hashes the contiguous frames `first..first + out.len()` (at most
    /// [`BATCH`]) with `seed`: `out[i]` becomes [`page_hash`] of frame
    /// `first + i`'s 4096 bytes, or `None` if that frame could not be read
    /// (the tracker counts it as changed).
    fn hash_run(&mut self, seed: u64, first: u64, out: &mut [Option<u64>]);
}

impl<S: HashSource + ?Sized> HashSource for &mut S {
    fn hash_run(&mut self, seed: u64, first: u64, out: &mut [Option<u64>]) {
        (**self).hash_run(seed, first, out)
    }
}

/// The copy path: `read(gfn, page)` fills a scratch page, which is then
/// hashed.
pub struct Copying<'a, F> {
    scratch: &'a mut [u8; PAGE],
    read: F,
}

impl<'a, F, E> Copying<'a, F>
where
    F: FnMut(u64, &mut [u8; PAGE]) -> Result<(), E>,
{
    /// A source reading each frame into `scratch` through `read`.
    pub fn new(scratch: &'a mut [u8; PAGE], read: F) -> Self {
        Self { scratch, read }
    }
}

impl<F, E> HashSource for Copying<'_, F>
where
    F: FnMut(u64, &mut [u8; PAGE]) -> Result<(), E>,
{
    fn hash_run(&mut self, seed: u64, first: u64, out: &mut [Option<u64>]) {
        for (gfn, o) in (first..).zip(out.iter_mut()) {
            *o = (self.read)(gfn, self.scratch)
                .ok()
                .map(|()| page_hash(seed, &self.scratch[..]));
        }
    }
}

/// A source that counts the frames it could not read.
pub struct Counting<S> {
    /// The source.
    pub inner: S,
    /// Frames hashed to `None` so far.
    pub errors: u64,
}

impl<S: HashSource> Counting<S> {
    /// Wraps `inner`, no error counted yet.
    pub fn new(inner: S) -> Self {
        Self { inner, errors: 0 }
    }
}

impl<S: HashSource> HashSource for Counting<S> {
    fn hash_run(&mut self, seed: u64, first: u64, out: &mut [Option<u64>]) {
        self.inner.hash_run(seed, first, out);
        self.errors += out.iter().filter(|o| o.is_none()).count() as u64;
    }
}

/// Hashes, where they are, the frames of a run that someone else holds
/// pinned (kvmgt, for the GVT-g provider).
pub trait PinnedHasher {
    /// Hashes each frame of `first..first + out.len()` (at most 64) that is
    /// pinned now into `out[i]` (`None` if it could not be read) and
    /// returns the mask of those frames (bit `i`: frame `first + i`).
    /// `None` if the holder could not be asked; then nothing was hashed.
    fn hash_pinned(&mut self, seed: u64, first: u64, out: &mut [Option<u64>]) -> Option<u64>;
}

impl<P: PinnedHasher + ?Sized> PinnedHasher for &mut P {
    fn hash_pinned(&mut self, seed: u64, first: u64, out: &mut [Option<u64>]) -> Option<u64> {
        (**self).hash_pinned(seed, first, out)
    }
}

/// What [`hash_pinned_or_copied`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PinnedCounts {
    /// Calls to [`PinnedHasher::hash_pinned`] (one per run of at most 64).
    pub calls: u64,
    /// Frames hashed where they are.
    pub pages: u64,
    /// Frames the holder did not hold pinned (or could not be asked
    /// about), read through the copy path instead.
    pub copied: u64,
}

/// Most frames one [`PinnedHasher::hash_pinned`] call is given.
pub const PINNED_MAX: usize = 64;

/// Hashes the run `first..first + out.len()`: the frames `pinned` holds
/// pinned where they are, the others through `copy`, as runs of the
/// contiguous frames left. `out[i]` ends as [`page_hash`] of frame
/// `first + i` (or `None` if neither could read it), whichever way it was
/// read.
pub fn hash_pinned_or_copied(
    pinned: &mut (impl PinnedHasher + ?Sized),
    copy: &mut (impl HashSource + ?Sized),
    counts: &mut PinnedCounts,
    seed: u64,
    first: u64,
    out: &mut [Option<u64>],
) {
    for (k, chunk) in out.chunks_mut(PINNED_MAX).enumerate() {
        let base = first.wrapping_add((k * PINNED_MAX) as u64);
        chunk.fill(None);
        counts.calls += 1;
        let all = if chunk.len() >= 64 {
            u64::MAX
        } else {
            (1u64 << chunk.len()) - 1
        };
        let done = pinned.hash_pinned(seed, base, chunk).map_or(0, |m| m & all);
        if done == 0 {
            // Whatever the holder wrote, the copy path decides.
            chunk.fill(None);
        }
        counts.pages += u64::from(done.count_ones());
        let mut i = 0;
        while i < chunk.len() {
            if done & (1 << i) != 0 {
                i += 1;
                continue;
            }
            let start = i;
            while i < chunk.len() && done & (1 << i) == 0 {
                i += 1;
            }
            counts.copied += (i - start) as u64;
            if let Some(o) = chunk.get_mut(start..i) {
                copy.hash_run(seed, base.wrapping_add(start as u64), o);
            }
        }
    }
}

/// The runs of contiguous frames in `gfns` (increasing), at most `max`
/// frames each, as index ranges into `gfns`. `max` of 0 counts as 1.
pub fn runs(gfns: &[u64], max: usize) -> Runs<'_> {
    Runs {
        gfns,
        at: 0,
        max: max.max(1),
    }
}

/// Iterator of [`runs`].
pub struct Runs<'a> {
    gfns: &'a [u64],
    at: usize,
    max: usize,
}

impl Iterator for Runs<'_> {
    type Item = Range<usize>;

    fn next(&mut self) -> Option<Range<usize>> {
        let start = self.at;
        let first = *self.gfns.get(start)?;
        let mut end = start + 1;
        while end - start < self.max
            && self
                .gfns
                .get(end)
                .is_some_and(|&g| Some(g) == first.checked_add((end - start) as u64))
        {
            end += 1;
        }
        self.at = end;
        Some(start..end)
    }
}

/// Frames gathered for hashing, in increasing order, and their hashes.
pub struct Batch {
    gfns: [u64; BATCH],
    hashes: [Option<u64>; BATCH],
    len: usize,
}

impl Default for Batch {
    fn default() -> Self {
        Self::new()
    }
}

impl Batch {
    /// An empty batch.
    pub const fn new() -> Self {
        Self {
            gfns: [0; BATCH],
            hashes: [None; BATCH],
            len: 0,
        }
    }

    /// Adds `gfn` (above every frame already in); `false` if the batch is
    /// full (nothing added).
    pub fn push(&mut self, gfn: u64) -> bool {
        match self.gfns.get_mut(self.len) {
            Some(g) => {
                *g = gfn;
                self.len += 1;
                true
            }
            None => false,
        }
    }

    /// Frames in the batch.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the batch holds no frame.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Hashes the batch's frames through `src`, a run of contiguous frames
    /// at a time, and returns them with their hashes, in order; the batch
    /// is empty afterwards.
    pub fn hash(
        &mut self,
        src: &mut (impl HashSource + ?Sized),
        seed: u64,
    ) -> impl Iterator<Item = (u64, Option<u64>)> + '_ {
        let n = core::mem::take(&mut self.len);
        let gfns = self.gfns.get(..n).unwrap_or(&[]);
        let hashes = self.hashes.get_mut(..n).unwrap_or(&mut []);
        for r in runs(gfns, BATCH) {
            if let (Some(&first), Some(out)) = (gfns.get(r.start), hashes.get_mut(r)) {
                src.hash_run(seed, first, out);
            }
        }
        gfns.iter().copied().zip(hashes.iter().copied())
    }
}

/// Where a scan's frames are hashed: frames are pushed in increasing
/// order until it is full, then [`Hasher::flush`] hashes them and hands
/// each back with its hash, in the order pushed.
pub trait Hasher {
    /// Whether no frame can be pushed before the next flush.
    fn is_full(&self) -> bool;
    /// Whether no frame was pushed since the last flush.
    fn is_empty(&self) -> bool;
    /// Adds `gfn` (above every frame pushed since the last flush); ignored
    /// if the hasher is full.
    fn push(&mut self, gfn: u64);
    /// Hashes the pushed frames with `seed` and calls `done` with each and
    /// its hash (`None`: it could not be read), in the order pushed; the
    /// hasher is empty afterwards.
    fn flush(&mut self, seed: u64, done: &mut dyn FnMut(u64, Option<u64>));
}

impl<H: Hasher + ?Sized> Hasher for &mut H {
    fn is_full(&self) -> bool {
        (**self).is_full()
    }
    fn is_empty(&self) -> bool {
        (**self).is_empty()
    }
    fn push(&mut self, gfn: u64) {
        (**self).push(gfn)
    }
    fn flush(&mut self, seed: u64, done: &mut dyn FnMut(u64, Option<u64>)) {
        (**self).flush(seed, done)
    }
}

/// One CPU: a [`Batch`] of at most [`BATCH`] frames at a time, through a
/// [`HashSource`].
pub struct Batched<'s, S: ?Sized> {
    batch: Batch,
    src: &'s mut S,
}

impl<'s, S: HashSource + ?Sized> Batched<'s, S> {
    /// Hashes through `src`.
    pub fn new(src: &'s mut S) -> Self {
        Self {
            batch: Batch::new(),
            src,
        }
    }

    /// The source.
    pub fn source(&mut self) -> &mut S {
        self.src
    }
}

impl<S: HashSource + ?Sized> Hasher for Batched<'_, S> {
    fn is_full(&self) -> bool {
        self.batch.len() >= BATCH
    }
    fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }
    fn push(&mut self, gfn: u64) {
        self.batch.push(gfn);
    }
    fn flush(&mut self, seed: u64, done: &mut dyn FnMut(u64, Option<u64>)) {
        for (gfn, h) in self.batch.hash(&mut *self.src, seed) {
            done(gfn, h);
        }
    }
}

/// Counts the frames a hasher could not read.
pub struct Counted<H> {
    /// The hasher.
    pub inner: H,
    /// Frames handed back with no hash so far.
    pub errors: u64,
}

impl<H: Hasher> Counted<H> {
    /// Wraps `inner`, no error counted yet.
    pub fn new(inner: H) -> Self {
        Self { inner, errors: 0 }
    }
}

impl<H: Hasher> Hasher for Counted<H> {
    fn is_full(&self) -> bool {
        self.inner.is_full()
    }
    fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
    fn push(&mut self, gfn: u64) {
        self.inner.push(gfn)
    }
    fn flush(&mut self, seed: u64, done: &mut dyn FnMut(u64, Option<u64>)) {
        let errors = &mut self.errors;
        self.inner.flush(seed, &mut |gfn, h| {
            *errors += u64::from(h.is_none());
            done(gfn, h)
        });
    }
}

/// Most frames of one [`Chunk`]: the unit of work a CPU takes (1 MiB of
/// guest memory).
pub const CHUNK: usize = 256;

/// Fewest frames a round of chunks must hold to be spread over several
/// CPUs; a smaller one is hashed on the caller's CPU.
pub const SPREAD_MIN: usize = 512;

/// Frames of a round hashed as one unit, and their hashes: 6 KiB.
#[derive(Clone)]
pub struct Chunk {
    gfns: [u64; CHUNK],
    hashes: [Option<u64>; CHUNK],
    len: usize,
}

impl Default for Chunk {
    fn default() -> Self {
        Self::new()
    }
}

impl Chunk {
    /// An empty chunk.
    pub const fn new() -> Self {
        Self {
            gfns: [0; CHUNK],
            hashes: [None; CHUNK],
            len: 0,
        }
    }

    /// Frames in the chunk.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the chunk holds no frame.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn is_full(&self) -> bool {
        self.len >= CHUNK
    }

    fn push(&mut self, gfn: u64) {
        if let Some(g) = self.gfns.get_mut(self.len) {
            *g = gfn;
            self.len += 1;
        }
    }

    /// The chunk's frames, in increasing order.
    pub fn frames(&self) -> &[u64] {
        self.gfns.get(..self.len).unwrap_or(&[])
    }

    /// Hashes the chunk's frames through `src`, a run of at most [`BATCH`]
    /// contiguous frames at a time, as a [`Batch`] does.
    pub fn hash(&mut self, src: &mut (impl HashSource + ?Sized), seed: u64) {
        let n = self.len;
        let gfns = self.gfns.get(..n).unwrap_or(&[]);
        let hashes = self.hashes.get_mut(..n).unwrap_or(&mut []);
        for r in runs(gfns, BATCH) {
            if let (Some(&first), Some(out)) = (gfns.get(r.start), hashes.get_mut(r)) {
                src.hash_run(seed, first, out);
            }
        }
    }

    /// No frame of the chunk could be read (the device is gone): each
    /// counts as changed, as an unreadable page does.
    pub fn fail(&mut self) {
        if let Some(h) = self.hashes.get_mut(..self.len) {
            h.fill(None);
        }
    }

    fn results(&self) -> impl Iterator<Item = (u64, Option<u64>)> + '_ {
        let n = self.len;
        let gfns = self.gfns.get(..n).unwrap_or(&[]);
        let hashes = self.hashes.get(..n).unwrap_or(&[]);
        gfns.iter().copied().zip(hashes.iter().copied())
    }
}

/// Hashes the chunks of a round, each independently of the others.
pub trait ChunkHasher {
    /// Hashes every frame of every chunk of `chunks` with `seed` (each
    /// chunk's hashes as [`Chunk::hash`] gives them, or none of them,
    /// [`Chunk::fail`]), and returns once all are done. `spread`: the round
    /// holds at least [`SPREAD_MIN`] frames and may be spread over CPUs.
    fn hash_chunks(&mut self, seed: u64, chunks: &mut [Chunk], spread: bool);
}

/// One CPU, a chunk after the other, through a [`HashSource`].
pub struct Serial<S>(pub S);

impl<S: HashSource> ChunkHasher for Serial<S> {
    fn hash_chunks(&mut self, seed: u64, chunks: &mut [Chunk], _spread: bool) {
        for c in chunks {
            c.hash(&mut self.0, seed);
        }
    }
}

/// Rounds of chunks: frames are pushed into the caller's chunks, one after
/// the other; a flush has the [`ChunkHasher`] hash the round and hands the
/// frames back in order.
pub struct Chunked<'c, P: ?Sized> {
    chunks: &'c mut [Chunk],
    /// Chunks holding frames of this round.
    used: usize,
    frames: usize,
    pool: &'c mut P,
}

impl<'c, P: ChunkHasher + ?Sized> Chunked<'c, P> {
    /// Rounds of up to `chunks.len()` chunks hashed by `pool`; `None` if
    /// there is no chunk.
    pub fn new(chunks: &'c mut [Chunk], pool: &'c mut P) -> Option<Self> {
        if chunks.is_empty() {
            return None;
        }
        for c in chunks.iter_mut() {
            c.len = 0;
        }
        Some(Self {
            chunks,
            used: 0,
            frames: 0,
            pool,
        })
    }

    /// The chunk hasher.
    pub fn pool(&mut self) -> &mut P {
        self.pool
    }
}

impl<P: ChunkHasher + ?Sized> Hasher for Chunked<'_, P> {
    fn is_full(&self) -> bool {
        self.used == self.chunks.len()
            && self
                .chunks
                .get(self.used.wrapping_sub(1))
                .is_some_and(Chunk::is_full)
    }
    fn is_empty(&self) -> bool {
        self.frames == 0
    }
    fn push(&mut self, gfn: u64) {
        let cur = self.used.checked_sub(1).and_then(|i| self.chunks.get(i));
        if cur.is_none_or(Chunk::is_full) {
            if self.used == self.chunks.len() {
                return;
            }
            self.used += 1;
        }
        if let Some(c) = self
            .used
            .checked_sub(1)
            .and_then(|i| self.chunks.get_mut(i))
        {
            c.push(gfn);
            self.frames += 1;
        }
    }
    fn flush(&mut self, seed: u64, done: &mut dyn FnMut(u64, Option<u64>)) {
        let used = core::mem::take(&mut self.used);
        let spread = core::mem::take(&mut self.frames) >= SPREAD_MIN;
        let round = self.chunks.get_mut(..used).unwrap_or(&mut []);
        self.pool.hash_chunks(seed, round, spread);
        for c in round.iter_mut() {
            for (gfn, h) in c.results() {
                done(gfn, h);
            }
            c.len = 0;
        }
    }
}

/// Sources and chunk hashers for the host tests of the scans.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use std::collections::BTreeSet;
    use std::vec::Vec;

    /// Guest memory as a source: a frame past the end, or in `unreadable`,
    /// cannot be read.
    pub(crate) struct Mem<'m> {
        pub(crate) mem: &'m [[u8; PAGE]],
        pub(crate) unreadable: &'m BTreeSet<u64>,
    }

    impl HashSource for Mem<'_> {
        fn hash_run(&mut self, seed: u64, first: u64, out: &mut [Option<u64>]) {
            assert!(!out.is_empty() && out.len() <= BATCH);
            for (g, o) in (first..).zip(out.iter_mut()) {
                *o = self
                    .mem
                    .get(g as usize)
                    .filter(|_| !self.unreadable.contains(&g))
                    .map(|p| page_hash(seed, p));
            }
        }
    }

    /// Hashes a round's chunks on `threads` threads at once when it may
    /// be spread (each thread with its own source), and makes the chunks
    /// `fail` names fail as a worker that found the device gone does.
    pub(crate) struct Threads<'m> {
        pub(crate) mem: &'m [[u8; PAGE]],
        pub(crate) unreadable: &'m BTreeSet<u64>,
        pub(crate) threads: usize,
        /// Whether the i-th chunk hashed (counting from the first round)
        /// fails.
        pub(crate) fail: &'m dyn Fn(u64) -> bool,
        pub(crate) chunks_seen: u64,
        /// Frames of the chunks that failed.
        pub(crate) failed: BTreeSet<u64>,
        pub(crate) spread_rounds: u64,
    }

    impl ChunkHasher for Threads<'_> {
        fn hash_chunks(&mut self, seed: u64, chunks: &mut [Chunk], spread: bool) {
            let fails: Vec<bool> = (0..chunks.len() as u64)
                .map(|i| (self.fail)(self.chunks_seen + i))
                .collect();
            self.chunks_seen += chunks.len() as u64;
            for (c, &f) in chunks.iter().zip(&fails) {
                if f {
                    self.failed.extend(c.frames().iter().copied());
                }
            }
            let (mem, unreadable) = (self.mem, self.unreadable);
            let work = |c: &mut Chunk, f: bool| {
                if f {
                    c.fail();
                } else {
                    c.hash(&mut Mem { mem, unreadable }, seed);
                }
            };
            if !spread || self.threads < 2 {
                for (c, &f) in chunks.iter_mut().zip(&fails) {
                    work(c, f);
                }
                return;
            }
            self.spread_rounds += 1;
            let per = chunks.len().div_ceil(self.threads);
            std::thread::scope(|s| {
                for (part, f) in chunks.chunks_mut(per).zip(fails.chunks(per)) {
                    s.spawn(move || {
                        for (c, &f) in part.iter_mut().zip(f) {
                            work(c, f);
                        }
                    });
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    #[test]
    fn runs_split_at_gaps_and_at_the_limit() {
        let g = [1u64, 2, 3, 5, 6, 9, 10, 11, 12, 13];
        let r: Vec<_> = runs(&g, 4).collect();
        assert_eq!(r, vec![0..3, 3..5, 5..9, 9..10]);
        let r: Vec<_> = runs(&g, 0).collect();
        assert_eq!(r.len(), g.len(), "max 0 counts as 1");
        assert_eq!(runs(&[], 4).count(), 0);
        // No overflow at the top of the frame space.
        let r: Vec<_> = runs(&[u64::MAX - 1, u64::MAX], 8).collect();
        assert_eq!(r, vec![0..2]);
    }

    /// Every frame lands in exactly one run, runs are contiguous and
    /// bounded, and two neighbouring runs are split only at a gap or at
    /// the limit.
    #[test]
    fn runs_cover_every_frame_once() {
        let mut rng = crate::testutil::Rng::new(3);
        for _ in 0..500 {
            let mut g = Vec::new();
            let mut at = rng.below(1000);
            for _ in 0..rng.below(80) {
                g.push(at);
                at += 1 + rng.below(3) * rng.below(2);
            }
            let max = 1 + rng.below(40) as usize;
            let mut next = 0;
            let mut last: Option<Range<usize>> = None;
            for r in runs(&g, max) {
                assert_eq!(r.start, next);
                assert!(!r.is_empty() && r.len() <= max);
                for i in r.clone().skip(1) {
                    assert_eq!(g[i], g[i - 1] + 1);
                }
                if let Some(l) = last {
                    assert!(l.len() == max || g[r.start] != g[r.start - 1] + 1);
                }
                next = r.end;
                last = Some(r);
            }
            assert_eq!(next, g.len());
        }
    }

    /// A source that records the runs it is given.
    struct Recorder {
        runs: Vec<(u64, usize)>,
        unreadable: u64,
    }

    impl HashSource for Recorder {
        fn hash_run(&mut self, seed: u64, first: u64, out: &mut [Option<u64>]) {
            self.runs.push((first, out.len()));
            for (g, o) in (first..).zip(out.iter_mut()) {
                *o = (g != self.unreadable).then_some(g ^ seed);
            }
        }
    }

    #[test]
    fn a_batch_hashes_by_runs_and_returns_in_order() {
        let mut b = Batch::new();
        let frames = [4u64, 5, 6, 8, 9, 20];
        for &g in &frames {
            assert!(b.push(g));
        }
        let mut src = Counting::new(Recorder {
            runs: Vec::new(),
            unreadable: 9,
        });
        let got: Vec<_> = b.hash(&mut src, 0x100).collect();
        assert_eq!(
            got,
            vec![
                (4, Some(0x104)),
                (5, Some(0x105)),
                (6, Some(0x106)),
                (8, Some(0x108)),
                (9, None),
                (20, Some(0x114)),
            ]
        );
        assert_eq!(src.inner.runs, vec![(4, 3), (8, 2), (20, 1)]);
        assert_eq!(src.errors, 1);
        assert!(b.is_empty());
        for g in 0..BATCH as u64 {
            assert!(b.push(g));
        }
        assert!(!b.push(99), "full");
        assert_eq!(b.len(), BATCH);
        let _ = b.hash(&mut src, 0).count();
        assert_eq!(src.inner.runs.last(), Some(&(0, BATCH)), "one run");
    }

    /// A round holds as many chunks as the caller gave, each at most
    /// [`CHUNK`] frames; frames come back in the order pushed, and only a
    /// round of [`SPREAD_MIN`] frames or more may be spread.
    #[test]
    fn chunked_rounds_hand_frames_back_in_order() {
        struct Rec(Vec<(usize, bool)>);
        impl ChunkHasher for Rec {
            fn hash_chunks(&mut self, seed: u64, chunks: &mut [Chunk], spread: bool) {
                self.0.push((chunks.len(), spread));
                for c in chunks.iter_mut() {
                    assert!(!c.is_empty() && c.len() <= CHUNK);
                    c.hash(
                        &mut Recorder {
                            runs: Vec::new(),
                            unreadable: 7,
                        },
                        seed,
                    );
                }
            }
        }
        let mut chunks = vec![Chunk::new(); 3];
        let mut pool = Rec(Vec::new());
        assert!(Chunked::new(&mut [], &mut pool).is_none(), "no chunk");
        let mut h = Chunked::new(&mut chunks, &mut pool).unwrap();
        let mut pushed = Vec::new();
        let mut got = Vec::new();
        let mut g = 0u64;
        for _ in 0..3 {
            while !h.is_full() {
                h.push(g);
                pushed.push(g);
                g += 1 + g % 3;
            }
            h.flush(1, &mut |gfn, hash| got.push((gfn, hash)));
            assert!(h.is_empty());
        }
        // A small round stays on the caller's CPU.
        h.push(g);
        pushed.push(g);
        h.flush(1, &mut |gfn, hash| got.push((gfn, hash)));
        assert_eq!(got.iter().map(|x| x.0).collect::<Vec<_>>(), pushed);
        for (gfn, hash) in got {
            assert_eq!(hash, (gfn != 7).then_some(gfn ^ 1));
        }
        assert_eq!(pool.0, vec![(3, true), (3, true), (3, true), (1, false)]);
    }

    /// A holder of pins over `mem`: frames in `pinned` are hashed where
    /// they are (word by word, as kvmgt's pages are), `fail` makes it
    /// refuse to be asked, `lie` sets mask bits past the run.
    struct Holder<'a> {
        mem: &'a [[u8; PAGE]],
        pinned: Vec<u64>,
        calls: Vec<(u64, usize)>,
        fail: bool,
        lie: bool,
    }

    impl PinnedHasher for Holder<'_> {
        fn hash_pinned(&mut self, seed: u64, first: u64, out: &mut [Option<u64>]) -> Option<u64> {
            self.calls.push((first, out.len()));
            if self.fail {
                out.fill(Some(0xbad));
                return None;
            }
            let mut mask = if self.lie && out.len() < 64 {
                !0u64 << out.len()
            } else {
                0
            };
            for (i, o) in out.iter_mut().enumerate() {
                let g = first + i as u64;
                if !self.pinned.contains(&g) {
                    continue;
                }
                let p = &self.mem[g as usize];
                *o = Some(crate::hash::page_hash_words(seed, |w| {
                    u64::from_le_bytes(p[8 * w..8 * w + 8].try_into().unwrap())
                }));
                mask |= 1 << i;
            }
            Some(mask)
        }
    }

    fn random_mem(n: usize, seed: u64) -> Vec<[u8; PAGE]> {
        let mut rng = crate::testutil::Rng::new(seed);
        let mut mem = vec![[0u8; PAGE]; n];
        for p in mem.iter_mut() {
            rng.fill(p);
        }
        mem
    }

    /// Every frame hashes as the copy path hashes it, whether the holder
    /// had it pinned or not; only the unpinned ones are copied, in runs
    /// of the contiguous frames left; frames past memory stay `None`.
    #[test]
    fn pinned_frames_hash_in_place_and_the_rest_is_copied() {
        let mem = random_mem(80, 5);
        let mut rng = crate::testutil::Rng::new(9);
        for _ in 0..200 {
            let first = rng.below(70);
            let len = 1 + rng.below(2 * PINNED_MAX as u64) as usize;
            let pinned: Vec<u64> = (first..first + len as u64)
                .filter(|&g| g < mem.len() as u64 && rng.below(3) != 0)
                .collect();
            let mut holder = Holder {
                mem: &mem,
                pinned: pinned.clone(),
                calls: Vec::new(),
                fail: false,
                lie: rng.below(4) == 0,
            };
            let mut copied = Vec::new();
            let mut scratch = [0u8; PAGE];
            let mut copy = Copying::new(&mut scratch, |g, b: &mut [u8; PAGE]| {
                copied.push(g);
                b.copy_from_slice(mem.get(g as usize).ok_or(())?);
                Ok::<(), ()>(())
            });
            let mut counts = PinnedCounts::default();
            let mut out = vec![Some(1); len];
            hash_pinned_or_copied(&mut holder, &mut copy, &mut counts, 3, first, &mut out);
            for (i, o) in out.iter().enumerate() {
                let g = first + i as u64;
                let want = mem.get(g as usize).map(|p| page_hash(3, p));
                assert_eq!(*o, want, "frame {g}");
            }
            let unpinned: Vec<u64> = (first..first + len as u64)
                .filter(|g| !pinned.contains(g))
                .collect();
            let mut c = copied.clone();
            c.sort();
            assert_eq!(c, unpinned, "only the unpinned frames are copied");
            assert_eq!(counts.pages, pinned.len() as u64);
            assert_eq!(counts.copied, unpinned.len() as u64);
            assert_eq!(counts.calls, len.div_ceil(PINNED_MAX) as u64);
            assert!(holder.calls.iter().all(|&(_, n)| n <= PINNED_MAX));
        }
    }

    /// A holder that cannot be asked hashes nothing: the copy path reads
    /// the whole run, whatever the holder wrote.
    #[test]
    fn a_holder_that_fails_leaves_the_run_to_the_copy_path() {
        let mem = random_mem(8, 6);
        let mut holder = Holder {
            mem: &mem,
            pinned: (0..8).collect(),
            calls: Vec::new(),
            fail: true,
            lie: false,
        };
        let mut rec = Recorder {
            runs: Vec::new(),
            unreadable: 99,
        };
        let mut counts = PinnedCounts::default();
        let mut out = [None; 6];
        hash_pinned_or_copied(&mut holder, &mut rec, &mut counts, 0x10, 1, &mut out);
        assert_eq!(rec.runs, vec![(1, 6)], "one run, copied");
        assert_eq!(out[0], Some(0x11));
        assert_eq!(
            counts,
            PinnedCounts {
                calls: 1,
                pages: 0,
                copied: 6
            }
        );
    }

    #[test]
    fn the_copy_path_hashes_what_it_reads() {
        let mut mem = vec![[0u8; PAGE]; 4];
        crate::testutil::Rng::new(1).fill(&mut mem[2]);
        let mut scratch = [0u8; PAGE];
        let mut src = Copying::new(&mut scratch, |g, b: &mut [u8; PAGE]| {
            let p = mem.get(g as usize).ok_or(())?;
            b.copy_from_slice(p);
            Ok::<(), ()>(())
        });
        let mut out = [None; 3];
        src.hash_run(7, 2, &mut out);
        assert_eq!(out[0], Some(page_hash(7, &mem[2])));
        assert_eq!(out[1], Some(page_hash(7, &mem[3])));
        assert_eq!(out[2], None, "frame 4 is not there");
    }
}

// SPDX-License-Identifier: GPL-2.0

//! VFIO v2 live migration of a vGPU, and its DMA dirty logging.
//!
//! GPU pages are guest RAM and travel with the VMM's RAM migration. gmig
//! tells the VMM which of them the vGPU really changed through the VFIO DMA
//! logging report, found by hashing ([`HashTracker`]) under the pre-copy
//! policy of [`planner`] (module parameters `precopy` and `dirty`). The
//! device's data fd carries the vGPU state: configuration space, registers
//! with pending submissions, and the GGTT partition, as a validated
//! [`stream`] image. An image is emitted in PRE_COPY (the state while
//! running) and a final one in STOP_COPY: a delta over the pre-copy image
//! ([`stream::delta`]) when some of that went out, else a full one. The
//! GGTT entries a delta compares are those the provider's GGTT write path
//! reported since the pre-copy image ([`ChangedEntries`]). The destination
//! validates every image it receives, combines a delta with its base and
//! validates the result, and applies the state of the last image. If it
//! sits at another GGTT partition, pending contexts are remapped
//! ([`remap`]).
//!
//! With `rehash=writeset` (the default) the tracker re-hashes only what the
//! executed commands could have written ([`WriteSet`], fed by the command
//! streamer's write sets and the device model's own writes through
//! [`Migration`]'s [`WriteSink`]): pre-copy reports keep the hashes current
//! and report what changed, and the stop-copy re-hash, done when STOP_COPY
//! is entered, reads only the pages written since the last report.
//! `rehash=all` is gMig's full re-hash.
//!
//! Everything here reaches the vGPU through [`MigDevice`] (its lock, guest
//! memory, messages) and the [`Provider`] trait (state image,
//! quiesce/resume, writable pages, restore with remapping), so the sim
//! (`crate::sim::Shared`) and GVT-g (`crate::gvt::GvtDev`) vGPUs migrate
//! the same way, and nothing here names either: the shim's entry points
//! ([`crate::abi`]) name the provider of the object they pass.
//!
//! Arcs run with the shim's `state_mutex` held and take the vGPU lock.
//!
//! # A re-hash on several CPUs
//!
//! A scan (a report's re-hash, the stop-copy re-hash) gathers its frames
//! in rounds of chunks ([`Chunked`]) when the migration has a [`Crew`]
//! (module parameter `rehash_cpus`, 0: every online CPU; none with 1): a
//! round of [`SPREAD_MIN`] frames or more is hashed by every lane of the
//! crew at once, each lane with its own source ([`Pages`]: its own
//! scratch page for the copy path, and its own [`InPlaceSource`] from
//! [`InPlaceSource::for_lane`]: on the sim its pin slot in the vGPU's
//! `PinWindow`, on GVT-g a `Lent` of its own), each chunk into its own
//! buffer; the caller then merges the round into the tracker in order,
//! alone. The result is that of one CPU, bit for bit
//! (`gmig_core::pageread`). A smaller round, as a write-set re-hash
//! usually is, runs on the caller's CPU.
//!
//! Locks: the caller holds the vGPU lock (and the shim's `state_mutex`)
//! and waits in [`Crew::fork`] until every lane's task returned. A lane
//! that is a work item takes, per run of pages, what the caller took
//! itself before, in the same order after the vGPU lock: on the sim,
//! `PinWindow::busy` (a leaf spinlock) and, in `vfio_pin_pages()`,
//! `vfio_unpin_pages()` or `vfio_dma_rw()`, the VFIO container's iommu
//! lock and the VMM's `mmap_lock`; on GVT-g, kvmgt's `cache_lock` for one
//! `read_pinned` call (the lanes' calls take turns on it) and, in
//! `rw_gpa`, what `vfio_dma_rw()` takes (`crate::gvt`'s order, `inner` ->
//! `cache_lock`, is kept). It takes neither the vGPU lock nor
//! `state_mutex`, nor anything a `dma_unmap` callback holds while it waits
//! (type1's device list lock), so the callback's wait for a lane's run
//! ends as it did for the caller's, and no cycle is added. The lanes' only
//! new lock is the crew's job spinlock, a leaf.
//!
//! Close or reset mid-way: both take the vGPU lock (`close_device` to
//! mark the device closed, a reset to end the migration), which the
//! caller holds until every lane is done, so neither runs under a lane. A
//! scan of a device that is not open hashes nothing in place; a lane that
//! finds it so fails its chunk: its pages count as changed, as pages that
//! cannot be read do.

use crate::log::dev_ratelimited;
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::{
    alloc::flags::GFP_KERNEL_ACCOUNT,
    device::Device,
    prelude::*,
    time::{Instant, Monotonic},
    uaccess::UserSliceReader, //
};

use crate::{
    crew::{Crew, Shares, MAX_LANES},
    ffi::{set_dirty, IovaBitmap},
    gmig_core::{
        dirtylog::{DirtyLog, Loss},
        farframes::FarFrames,
        gtt::PAGE_SIZE,
        mem::GuestMem,
        pageread::{Batched, Chunk, ChunkHasher, Chunked, Copying, HashSource, Hasher},
        planner::{self, Action, DirtySource, FinalImage, Hashing, Phase, Policy, Rehash},
        provider::{tracker_update, Provider, RestoreError, ShadowEvent},
        stream::{self, delta, ChangedEntries, Incoming, Resolved, ResumeError},
        tracker::HashTracker,
        writeset::{words_for, WriteSet, WriteSink},
    },
    pin::{InPlaceCounts, InPlaceSource},
};

#[cfg(doc)]
use crate::gmig_core::pageread::SPREAD_MIN;

/// What the vGPU lock protects, as the migration layer sees it.
pub(crate) struct Locked<'a, P> {
    /// The vGPU backend.
    pub(crate) prov: &'a mut P,
    /// Its migration state.
    pub(crate) mig: &'a mut Migration,
    /// A VFIO user has the device open (guest memory is reachable).
    pub(crate) open: bool,
}

/// A vGPU the migration layer drives: the object behind one vfio_device.
/// `Sync`: the lanes of a spread re-hash read guest memory through it on
/// several CPUs at once ([`MigDevice::read_guest`], [`MigDevice::in_place`]'s
/// source).
pub(crate) trait MigDevice: Sync {
    /// Its backend.
    type Prov: Provider;
    /// Guest memory for a restore's remapping.
    type Mem<'a>: GuestMem
    where
        Self: 'a;
    /// Its source of pages hashed in place ([`MigDevice::in_place`]).
    type InPlace<'a>: InPlaceSource
    where
        Self: 'a;

    /// The device messages are logged for.
    fn dev(&self) -> &Device;
    /// Runs `f` with the vGPU lock held.
    fn with_locked<R>(&self, f: impl FnOnce(&mut Locked<'_, Self::Prov>) -> R) -> R;
    /// Reads guest memory (a page to hash, on the copy path).
    fn read_guest(&self, gpa: u64, buf: &mut [u8]) -> Result;
    /// The source that hashes guest pages in place for one scan, if the
    /// device has one (`hashing=inplace`; `open`: a VFIO user has the
    /// device open, read under the vGPU lock the caller holds). `None`:
    /// pages are copied with [`MigDevice::read_guest`].
    fn in_place(&self, _open: bool) -> Option<Self::InPlace<'_>> {
        None
    }
    /// Guest memory for [`Provider::restore_state`].
    fn mem(&self) -> Self::Mem<'_>;
    /// An arc is about to take the vGPU lock (sim: the command streamer
    /// yields after its running context).
    fn arc_begin(&self) {}
    /// An arc ran, with the vGPU lock still held (sim: kick the streamer
    /// if the vGPU still runs and has work).
    fn arc_end(&self, _l: &Locked<'_, Self::Prov>) {}
    /// Hands the migration what the backend learnt outside the vGPU lock
    /// (GVT-g's hooks); called before the tracker is used.
    fn sync(&self, _mig: &mut Migration) {}
    /// Dirty logging starts (before the writable frames are enumerated).
    /// An error refuses the start: the provider cannot enumerate every
    /// frame the GPU may write.
    fn logging_start(&self) -> Result {
        Ok(())
    }
    /// Dirty logging stops (which cannot be refused).
    fn logging_stop(&self) {}
    /// A restore put the vGPU at GGTT base `dst`, the source's was `src`:
    /// the provider says how its graphics addresses follow (`remapped`:
    /// addresses the restore itself patched).
    fn restored_elsewhere(&self, src: u64, dst: u64, remapped: u64);
    /// Whether every write of a GGTT entry of [`Provider::ggtt_in_image`]
    /// reaches [`Migration::shadow_event`] as a [`ShadowEvent::GgttWrite`]
    /// while the migration runs. If not, a stop-copy delta compares every
    /// entry.
    fn ggtt_writes_seen(&self) -> bool {
        false
    }
}

use crate::gmig_core::vfio::DeviceState::{
    self, PreCopy as PRE_COPY, PreCopyP2p as PRE_COPY_P2P, Resuming as RESUMING,
    Running as RUNNING, RunningP2p as RUNNING_P2P, Stop as STOP, StopCopy as STOP_COPY,
};

/// The tracker's window is capped (8 bytes per page: 32 MiB for 16 GiB);
/// GPU-writable pages above it are kept in [`Tracking::far`] and reported
/// dirty in every report.
const MAX_WINDOW_PAGES: u64 = (16u64 << 30) / PAGE_SIZE;
/// Most GPU-writable frames kept outside the window (8 bytes each). One
/// more fails every report: the migration fails, no write goes unreported.
const MAX_FAR_FRAMES: usize = 1 << 16;

extern "C" {
    fn get_random_u64() -> u64;
    fn gmig_param_get(which: u32, buf: *mut kernel::ffi::c_char, len: usize);
    fn gmig_rehash_lanes() -> kernel::ffi::c_uint;
}

/// Lanes a migration starting now spreads its large re-hashes over
/// (module parameter `rehash_cpus`, at most the online CPUs and
/// [`MAX_LANES`]).
fn rehash_lanes() -> usize {
    // SAFETY: `gmig_rehash_lanes()` has no preconditions.
    let n = unsafe { gmig_rehash_lanes() };
    usize::try_from(n).unwrap_or(1).clamp(1, MAX_LANES)
}

/// Chunks of one round of a spread re-hash (16 MiB of guest memory; 96
/// KiB of buffers per migration, plus a scratch page per lane past the
/// caller's: Documentation/migration.rst, "Memory charged to the VMM").
const ROUND_CHUNKS: usize = 16;

/// A copy of a module parameter's value, taken under the parameter lock
/// (the shim's buffers hold 16 bytes, NUL included).
struct ParamValue([u8; 16]);

impl ParamValue {
    fn read(which: planner::Param) -> Self {
        let mut b = [0u8; 16];
        // SAFETY: `b` is valid for writes of `b.len()` bytes, all the shim
        // writes (it NUL-terminates within them).
        unsafe { gmig_param_get(which as u32, b.as_mut_ptr().cast(), b.len()) };
        Self(b)
    }

    fn as_str(&self) -> &str {
        let n = self.0.iter().position(|&c| c == 0).unwrap_or(self.0.len());
        self.0
            .get(..n)
            .and_then(|v| core::str::from_utf8(v).ok())
            .unwrap_or("")
    }
}

/// Fault injection (debugfs `gmig/fault`, `fail_stop_copy N`): the next N
/// stop-copy images fail to build as if memory were short, so that tests
/// reach the rollback of a failed STOP_COPY arc on either provider.
static FAIL_STOP_COPY: AtomicU64 = AtomicU64::new(0);

/// Content of debugfs `gmig/fault`.
pub(crate) struct Fault;

impl core::fmt::Debug for Fault {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        writeln!(
            f,
            "fail_stop_copy: {}",
            FAIL_STOP_COPY.load(Ordering::Relaxed)
        )
    }
}

/// debugfs `gmig/fault` write: `fail_stop_copy N`.
pub(crate) fn write_fault(reader: &mut UserSliceReader) -> Result {
    let n = crate::debugfs_knob(reader, "fail_stop_copy")?;
    FAIL_STOP_COPY.store(n, Ordering::Relaxed);
    Ok(())
}

/// Whether an injected failure is due (and takes it).
fn injected_failure() -> bool {
    FAIL_STOP_COPY
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .is_ok()
}

/// The policies of this migration, from the module parameters.
fn policies() -> (Policy, DirtySource, Rehash, Hashing, FinalImage) {
    use planner::Param;
    let v = |p| ParamValue::read(p);
    let p = Policy::parse(v(Param::Precopy).as_str()).unwrap_or(Policy::Oneshot);
    let d = DirtySource::parse(v(Param::Dirty).as_str()).unwrap_or(DirtySource::Hash);
    let r = Rehash::parse(v(Param::Rehash).as_str()).unwrap_or(Rehash::WriteSet);
    let h = Hashing::parse(v(Param::Hashing).as_str()).unwrap_or(Hashing::InPlace);
    let f = FinalImage::parse(v(Param::FinalImage).as_str()).unwrap_or(FinalImage::Patch);
    (p, d, r, h, f)
}

/// The pages one scan hashes: in place when the migration's `hashing` is
/// `inplace` and the device offers it ([`MigDevice::in_place`]), else
/// copied into the scratch page with [`MigDevice::read_guest`].
struct Pages<'a, D: MigDevice> {
    d: &'a D,
    scratch: &'a mut [u8; 4096],
    in_place: Option<D::InPlace<'a>>,
}

impl<'a, D: MigDevice> Pages<'a, D> {
    fn new(d: &'a D, hashing: Hashing, open: bool, scratch: &'a mut [u8; 4096]) -> Self {
        let in_place = match hashing {
            Hashing::InPlace => d.in_place(open),
            Hashing::Copy => None,
        };
        Self {
            d,
            scratch,
            in_place,
        }
    }
}

impl<D: MigDevice> Pages<'_, D> {
    /// What hashing in place did (all zero on the copy path).
    fn counts(&self) -> InPlaceCounts {
        self.in_place
            .as_ref()
            .map_or_else(InPlaceCounts::default, InPlaceSource::counts)
    }
}

impl<D: MigDevice> HashSource for Pages<'_, D> {
    fn hash_run(&mut self, seed: u64, first: u64, out: &mut [Option<u64>]) {
        let Self {
            d,
            scratch,
            in_place,
        } = self;
        let mut copy = Copying::new(scratch, |gfn, buf| {
            d.read_guest(gfn * PAGE_SIZE, &mut buf[..])
        });
        match in_place {
            Some(p) => p.hash_run(seed, first, out, &mut copy),
            None => copy.hash_run(seed, first, out),
        }
    }
}

/// Hashes the chunks of a round on the lanes of the migration's crew, each
/// lane through its own [`Pages`].
struct Lanes<'a, D: MigDevice> {
    crew: &'a Crew,
    /// A VFIO user has the device open (read under the vGPU lock).
    open: bool,
    /// Per lane, its source (`None` past the crew's lanes).
    pages: [Option<Pages<'a, D>>; MAX_LANES],
    /// Rounds spread over the crew.
    spread_rounds: u64,
}

impl<'a, D: MigDevice> Lanes<'a, D> {
    /// Lane 0 hashes through `first` (the caller's scratch page), lane `k`
    /// through scratch page `k - 1` of `more`; in place on each lane if
    /// `first` does.
    fn new(
        crew: &'a Crew,
        open: bool,
        first: Pages<'a, D>,
        more: &'a mut [KBox<[u8; 4096]>],
    ) -> Self {
        let (d, template) = (first.d, first.in_place.as_ref().map(|p| p.for_lane(0)));
        let mut more = more.iter_mut();
        let mut first = Some(first);
        let lanes = crew.lanes();
        let pages = core::array::from_fn(|k| match k {
            0 => first.take(),
            k if k < lanes => more.next().map(|scratch| Pages {
                d,
                scratch,
                in_place: template.as_ref().map(|p| p.for_lane(k)),
            }),
            _ => None,
        });
        Self {
            crew,
            open,
            pages,
            spread_rounds: 0,
        }
    }
}

impl<D: MigDevice> ChunkHasher for Lanes<'_, D> {
    fn hash_chunks(&mut self, seed: u64, chunks: &mut [Chunk], spread: bool) {
        let open = self.open;
        let n = chunks.len();
        let chunks = Shares::new(chunks);
        let lanes = Shares::new(&mut self.pages[..]);
        self.crew.fork(n, spread, &|lane, task| {
            // SAFETY: a fork runs each task once and each lane on one
            // thread at a time (`crate::crew`): chunk `task` and lane
            // `lane`'s source are this call's alone.
            let (chunk, pages) = unsafe { (chunks.get(task), lanes.get(lane)) };
            let Some(chunk) = chunk else {
                return;
            };
            match pages {
                // The vGPU lock the caller holds keeps the device open
                // (a close takes it); a device found closed all the same
                // is gone: its pages count as changed.
                Some(Some(p)) if open => chunk.hash(p, seed),
                _ => chunk.fail(),
            }
        });
        self.spread_rounds += u64::from(spread && self.crew.lanes() > 1 && n > 1);
    }
}

/// A migration's means to spread a re-hash over CPUs, allocated with its
/// tracker (so nothing is allocated in the downtime).
struct Spread {
    crew: Crew,
    /// The chunks of a round.
    chunks: KVVec<Chunk>,
    /// A scratch page per lane past the caller's (the copy path's).
    scratch: KVec<KBox<[u8; 4096]>>,
}

/// `n` empty chunks, written in place. A [`Chunk`] is 6 KiB: passed by
/// value, as `KVVec::from_elem()` does, two copies of it sit in the frames
/// of one call chain, which overflowed the 16 KiB stack of the
/// `DMA_LOGGING_START` ioctl.
fn empty_chunks(n: usize) -> Option<KVVec<Chunk>> {
    static EMPTY: Chunk = Chunk::new();
    let mut v = KVVec::with_capacity(n, GFP_KERNEL_ACCOUNT).ok()?;
    for slot in v.spare_capacity_mut().iter_mut().take(n) {
        // SAFETY: `slot` is valid for the write of one `Chunk`, which does
        // not overlap `EMPTY`; a `Chunk` is plain integers that own
        // nothing, so a byte copy of `EMPTY` is an empty chunk.
        unsafe { core::ptr::copy_nonoverlapping(&EMPTY, slot.as_mut_ptr(), 1) };
    }
    // SAFETY: the capacity is at least `n`, and the first `n` items were
    // written above.
    unsafe { v.inc_len(n) };
    Some(v)
}

/// A zeroed scratch page, zeroed where it is allocated (not a 4 KiB array
/// on the stack moved into the box).
fn zeroed_page() -> Result<KBox<[u8; 4096]>> {
    KBox::init(pin_init::init_zeroed(), GFP_KERNEL_ACCOUNT)
}

impl Spread {
    /// For `lanes` lanes; `None` for one (or without memory: then every
    /// re-hash runs on the caller's CPU).
    fn new(lanes: usize) -> Option<Self> {
        if lanes < 2 {
            return None;
        }
        let crew = Crew::new(lanes).ok()?;
        let chunks = empty_chunks(ROUND_CHUNKS)?;
        let mut scratch = KVec::with_capacity(crew.lanes() - 1, GFP_KERNEL_ACCOUNT).ok()?;
        for _ in 1..crew.lanes() {
            scratch.push(zeroed_page().ok()?, GFP_KERNEL_ACCOUNT).ok()?;
        }
        Some(Self {
            crew,
            chunks,
            scratch,
        })
    }
}

/// Runs `f` (a scan) with the [`Hasher`] of this migration: rounds of
/// chunks spread over its crew if it has one, else the caller's CPU a
/// batch at a time; counts what hashing in place did and the rounds
/// spread.
fn with_hasher<D: MigDevice, R>(
    d: &D,
    hashing: Hashing,
    open: bool,
    scratch: &mut [u8; 4096],
    spread: Option<&mut Spread>,
    stats: &mut MigStats,
    f: impl FnOnce(&mut dyn Hasher) -> R,
) -> R {
    let pages = Pages::new(d, hashing, open, scratch);
    let Some(Spread {
        crew,
        chunks,
        scratch: more,
    }) = spread
    else {
        let mut pages = pages;
        let r = f(&mut Batched::new(&mut pages));
        stats.add_in_place(pages.counts());
        return r;
    };
    let mut lanes = Lanes::new(crew, open, pages, more);
    let r = match Chunked::new(chunks, &mut lanes) {
        Some(mut h) => f(&mut h),
        // No chunk (cannot be: ROUND_CHUNKS of them): the caller's CPU.
        None => match lanes.pages.get_mut(0) {
            Some(Some(p)) => f(&mut Batched::new(p)),
            _ => f(&mut Batched::new(&mut NoPages)),
        },
    };
    for p in lanes.pages.iter().flatten() {
        stats.add_in_place(p.counts());
    }
    stats.rehash_rounds_spread += lanes.spread_rounds;
    r
}

/// A source that reads nothing (every page counts as changed).
struct NoPages;

impl HashSource for NoPages {
    fn hash_run(&mut self, _seed: u64, _first: u64, out: &mut [Option<u64>]) {
        out.fill(None);
    }
}

/// Per-migration statistics (debugfs `stats`), reset when one starts.
#[derive(Default, Clone, Copy)]
struct MigStats {
    precopy_rounds: u64,
    precopy_bytes: u64,
    stopcopy_bytes: u64,
    pages_dirty_stopcopy: u64,
    pages_sent_stopcopy: u64,
    pages_reported_precopy: u64,
    downtime_us: i64,
    resume_us: i64,
    remap_patched: u64,
    stream_errors: u64,
    images_applied: u64,
    reports: [u64; 2],
    read_errors: u64,
    /// Tracked pages the stop-copy re-hash did not read (hash kept).
    pages_rehash_skipped: u64,
    /// Pages the stop-copy re-hash read.
    pages_rehashed_stopcopy: u64,
    /// Pages pre-copy reports re-hashed.
    pages_rehashed_precopy: u64,
    /// Time pre-copy reports took (their re-hash included).
    precopy_report_us: i64,
    /// Pages hashed in place, the runs they were pinned in, and pages read
    /// with `vfio_dma_rw()` instead because the VMM unmapped memory during
    /// a scan (`hashing=inplace`).
    pages_hashed_inplace: u64,
    pin_runs: u64,
    pages_copied_after_unmap: u64,
    /// GVT-g: pages read with kvmgt's `rw_gpa` because kvmgt did not hold
    /// them pinned (`hashing=inplace`).
    pages_copied_unpinned: u64,
    /// Time of the stop-copy re-hash.
    rehash_stopcopy_us: i64,
    /// Reports whose write set was unbounded (every tracked page read).
    writeset_unbounded: u64,
    /// STOP_COPY entered -> vGPU lock taken (the running context ends).
    quiesce_wait_us: i64,
    /// Building the final state image.
    image_us: i64,
    /// The final image is a delta over the pre-copy image.
    final_delta: bool,
    /// Bytes of the final image.
    final_bytes: u64,
    /// The final delta was patched from what changed
    /// ([`FinalImage::Patch`]), not diffed from an image built whole.
    final_patched: bool,
    /// Patched final images compared, after the stop, with the image
    /// built whole.
    final_checks: u64,
    /// ... and found to describe another image: a change the GGTT write
    /// path did not mark (the destination restores the base's entry).
    final_mismatches: u64,
    /// New pre-copy images sent after the base went stale
    /// (VFIO_PRECOPY_INFO_REINIT).
    precopy_reinits: u64,
    /// Resume side: bytes of images a later full image superseded,
    /// dropped as they arrived.
    superseded_bytes: u64,
    /// CPUs a large re-hash of this migration is spread over.
    rehash_cpus: u64,
    /// Rounds of chunks re-hashed on several CPUs at once.
    rehash_rounds_spread: u64,
}

impl MigStats {
    /// Counts what a scan's in-place hashing did.
    fn add_in_place(&mut self, c: InPlaceCounts) {
        self.pages_hashed_inplace += c.pages;
        self.pin_runs += c.runs;
        self.pages_copied_after_unmap += c.copied;
        self.pages_copied_unpinned += c.unpinned;
    }
}

/// The dirty log of a migration, with what its kernel glue needs.
struct Tracking {
    log: DirtyLog<KVVec<u64>>,
    scratch: KBox<[u8; 4096]>,
    /// Lanes to spread a large re-hash over (`None`: the caller's CPU).
    spread: Option<Spread>,
    /// The incomplete log was reported in dmesg.
    lost_said: bool,
}

impl Tracking {
    /// Runs `f`, a scan of the log, with this migration's [`Hasher`]
    /// ([`with_hasher`]: spread over its crew if it has one).
    fn scan<D: MigDevice, R>(
        &mut self,
        d: &D,
        hashing: Hashing,
        open: bool,
        stats: &mut MigStats,
        f: impl FnOnce(&mut DirtyLog<KVVec<u64>>, &mut dyn Hasher) -> R,
    ) -> R {
        let Self {
            log,
            scratch,
            spread,
            ..
        } = self;
        with_hasher(d, hashing, open, scratch, spread.as_mut(), stats, |h| {
            f(log, h)
        })
    }
}

/// Migration state of one vGPU.
pub(crate) struct Migration {
    state: DeviceState,
    policy: Policy,
    source: DirtySource,
    rehash: Rehash,
    hashing: Hashing,
    final_image: FinalImage,
    /// The final delta was patched from the GGTT entries marked, and the
    /// entries were not checked against an image built whole yet.
    patched: bool,
    stats: MigStats,
    tracking: Option<Tracking>,
    /// Save side: bytes to hand out and how many were read.
    image: KVVec<u8>,
    pos: usize,
    /// The first `base_len` bytes of `image` are the pre-copy image, the
    /// base of a stop-copy delta (0: there is none).
    base_len: usize,
    /// GGTT entries written since the pre-copy image was built.
    changed: Option<ChangedEntries<KVVec<u64>>>,
    /// The full stop-copy image a delta is computed from.
    full: KVVec<u8>,
    /// Resume side: bytes written so far, less the images a later full
    /// image superseded.
    incoming: KVVec<u8>,
    /// Resume side: the images in `incoming`, as far as they are complete.
    arrived: Incoming,
    /// When STOP_COPY was entered (device downtime runs until the last
    /// byte of the final image is read).
    stopped_at: Option<Instant<Monotonic>>,
}

impl Migration {
    pub(crate) fn new() -> Self {
        let (policy, source, rehash, hashing, final_image) = policies();
        Self {
            state: RUNNING,
            policy,
            source,
            rehash,
            hashing,
            final_image,
            patched: false,
            stats: MigStats::default(),
            tracking: None,
            image: KVVec::new(),
            pos: 0,
            base_len: 0,
            changed: None,
            full: KVVec::new(),
            incoming: KVVec::new(),
            arrived: Incoming::default(),
            stopped_at: None,
        }
    }

    /// debugfs `stats` lines of the migration.
    pub(crate) fn show_stats(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let s = &self.stats;
        let (tracked, hashed, outside) = self.tracking.as_ref().map_or((0, 0, 0), |t| {
            (
                t.log.tracker.tracked(),
                t.log.tracker.hashed(),
                t.log.far.len(),
            )
        });
        writeln!(f, "state: {}", self.state.name())?;
        writeln!(f, "precopy: {}", self.policy.name())?;
        writeln!(f, "dirty: {}", self.source.name())?;
        writeln!(f, "rehash: {}", self.rehash.name())?;
        writeln!(f, "hashing: {}", self.hashing.name())?;
        writeln!(f, "final_image_from: {}", self.final_image.name())?;
        writeln!(f, "precopy_rounds: {}", s.precopy_rounds)?;
        writeln!(f, "precopy_bytes: {}", s.precopy_bytes)?;
        writeln!(f, "stopcopy_bytes: {}", s.stopcopy_bytes)?;
        writeln!(f, "pages_tracked: {}", tracked)?;
        writeln!(f, "pages_untrackable: {}", outside)?;
        writeln!(f, "pages_hashed: {}", hashed)?;
        writeln!(f, "pages_reported_precopy: {}", s.pages_reported_precopy)?;
        writeln!(f, "pages_dirty_stopcopy: {}", s.pages_dirty_stopcopy)?;
        writeln!(f, "pages_sent_stopcopy: {}", s.pages_sent_stopcopy)?;
        writeln!(f, "pages_rehash_skipped: {}", s.pages_rehash_skipped)?;
        writeln!(f, "pages_rehashed_stopcopy: {}", s.pages_rehashed_stopcopy)?;
        writeln!(f, "pages_rehashed_precopy: {}", s.pages_rehashed_precopy)?;
        writeln!(f, "rehash_stopcopy_us: {}", s.rehash_stopcopy_us)?;
        writeln!(f, "precopy_report_us: {}", s.precopy_report_us)?;
        writeln!(f, "pages_hashed_inplace: {}", s.pages_hashed_inplace)?;
        writeln!(f, "pin_runs: {}", s.pin_runs)?;
        writeln!(
            f,
            "pages_copied_after_unmap: {}",
            s.pages_copied_after_unmap
        )?;
        writeln!(f, "pages_copied_unpinned: {}", s.pages_copied_unpinned)?;
        writeln!(f, "writeset_unbounded: {}", s.writeset_unbounded)?;
        writeln!(f, "rehash_cpus: {}", s.rehash_cpus)?;
        writeln!(f, "rehash_rounds_spread: {}", s.rehash_rounds_spread)?;
        writeln!(f, "quiesce_wait_us: {}", s.quiesce_wait_us)?;
        writeln!(f, "image_us: {}", s.image_us)?;
        writeln!(
            f,
            "final_image: {}",
            if s.final_delta { "delta" } else { "full" }
        )?;
        writeln!(f, "final_image_bytes: {}", s.final_bytes)?;
        writeln!(f, "final_image_patched: {}", u8::from(s.final_patched))?;
        writeln!(f, "final_image_checks: {}", s.final_checks)?;
        writeln!(f, "final_image_mismatches: {}", s.final_mismatches)?;
        writeln!(f, "precopy_reinits: {}", s.precopy_reinits)?;
        writeln!(f, "superseded_bytes: {}", s.superseded_bytes)?;
        writeln!(f, "downtime_us: {}", s.downtime_us)?;
        writeln!(f, "resume_us: {}", s.resume_us)?;
        writeln!(f, "remap_patched: {}", s.remap_patched)?;
        writeln!(f, "stream_errors: {}", s.stream_errors)?;
        writeln!(f, "images_applied: {}", s.images_applied)?;
        writeln!(
            f,
            "log_reports: {} precopy, {} stopcopy",
            s.reports[0], s.reports[1]
        )?;
        writeln!(f, "log_read_errors: {}", s.read_errors)
    }

    /// The provider's shadow page tables changed (or its GPU wrote a
    /// page): pages that become GPU-writable are tracked from now on.
    /// Pages that stop being reachable stay tracked, so their last content
    /// is still compared at stop-copy.
    pub(crate) fn shadow_event(&mut self, ev: ShadowEvent) {
        if let (ShadowEvent::GgttWrite { index, .. }, Some(c)) = (ev, self.changed.as_mut()) {
            c.mark(index);
        }
        let (Some(t), Some(r)) = (self.tracking.as_mut(), tracker_update(&ev)) else {
            return;
        };
        for gfn in r.first..r.first.saturating_add(r.count) {
            t.log.note(gfn);
        }
    }

    /// The provider lost a frame the GPU may write (it could not record
    /// it): no report of this migration can be complete, so each fails.
    pub(crate) fn writable_frames_lost(&mut self) {
        if let Some(t) = self.tracking.as_mut() {
            t.log.provider_lost();
        }
    }

    fn reset_stats(&mut self) {
        let (p, d, r, h, f) = policies();
        self.policy = p;
        self.source = d;
        self.rehash = r;
        self.hashing = h;
        self.final_image = f;
        self.stats = MigStats::default();
    }

    /// The stop-copy re-hash, when the vGPU has just been quiesced: its
    /// result waits in `pending` for the final report(s), so its cost
    /// falls inside the device downtime it belongs to.
    /// `open`: a VFIO user has the device open.
    fn stop_scan(&mut self, d: &impl MigDevice, open: bool) {
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

    /// The vGPU runs again: a later stop re-hashes again. Pages found
    /// changed and not reported stay pending (their hashes are current).
    fn stop_unscan(&mut self) {
        if let Some(t) = self.tracking.as_mut() {
            t.log.stop_unscan();
        }
    }

    /// A save starts: reset the counters unless dirty logging already
    /// started this migration (QEMU starts logging first).
    fn start_save(&mut self) {
        if self.tracking.is_none() {
            self.reset_stats();
        }
    }

    /// Drops the save side's images (the image buffer is kept for reuse
    /// within this migration, the delta's bookkeeping freed).
    fn drop_images(&mut self) {
        self.image.clear();
        self.pos = 0;
        self.base_len = 0;
        self.changed = None;
        self.full = KVVec::new();
    }

    /// The migration ended (the device runs again, left STOP_COPY, or was
    /// reset): every buffer of both sides is freed, none kept for reuse.
    fn release_images(&mut self) {
        self.drop_images();
        self.image = KVVec::new();
        self.incoming = KVVec::new();
        self.arrived = Incoming::default();
    }

    /// The pre-copy image is in `image`: it is the base of the stop-copy
    /// delta, and GGTT writes are marked from now on if the device reports
    /// them all. What the stop-copy needs is allocated here, outside the
    /// downtime; without memory the final image is a full one.
    fn keep_base(&mut self, p: &impl Provider, writes_seen: bool) {
        let len = p.state_len();
        let span = p.ggtt_in_image();
        let words = ChangedEntries::<KVVec<u64>>::words_for(span.entries);
        self.changed = writes_seen
            .then(|| KVVec::from_elem(0u64, words, GFP_KERNEL_ACCOUNT).ok())
            .flatten()
            .and_then(|w| ChangedEntries::new(span, w));
        // `full` is sized (and zeroed) here: a patched final image fills
        // its sections in it without a memset in the downtime.
        self.full.clear();
        let reserved = self.full.resize(len, 0, GFP_KERNEL_ACCOUNT).is_ok()
            && self.image.reserve(len / 2, GFP_KERNEL_ACCOUNT).is_ok();
        self.base_len = if reserved { self.image.len() } else { 0 };
    }

    /// Builds the stop-copy image behind what is left of the pre-copy one:
    /// a delta when the pre-copy image is the base and some of it went out
    /// (the destination then gets all of it), else a full image. A pre-copy
    /// image none of which was read is dropped. On failure the save side
    /// is as it was: the pre-copy image, what was read of it, its base.
    fn build_final(&mut self, p: &impl Provider) -> core::result::Result<(), SaveError> {
        let (len, pos, base_len) = (self.image.len(), self.pos, self.base_len);
        let res = self.append_final(p);
        if res.is_err() {
            self.image.truncate(len);
            self.pos = pos;
            self.base_len = base_len;
            self.full.clear();
        }
        res
    }

    /// [`Migration::build_final`] without the rollback.
    fn append_final(&mut self, p: &impl Provider) -> core::result::Result<(), SaveError> {
        // Unread pre-copy bytes go out first, unless none was read.
        let unread = match self.pos {
            0 => 0,
            pos => self.image.len() - pos,
        };
        self.stats.final_delta = false;
        self.stats.final_patched = false;
        self.patched = false;
        if injected_failure() {
            return Err(SaveError::Injected);
        }
        if self.pos == 0 {
            // Built aside, so that a failure keeps the pre-copy image.
            self.full.clear();
            build_image(p, &mut self.full)?;
            core::mem::swap(&mut self.image, &mut self.full);
            self.full = KVVec::new();
            self.base_len = 0;
            self.changed = None;
        } else if self.base_len > 0 && self.base_len == self.image.len() {
            self.stats.final_patched =
                self.final_image == FinalImage::Patch && self.append_patch(p, false)?;
            self.stats.final_delta = self.stats.final_patched;
            if !self.stats.final_patched {
                self.full.clear();
                build_image(p, &mut self.full)?;
                self.stats.final_delta = self.append_delta().is_ok();
                if !self.stats.final_delta {
                    self.append_full()?;
                }
            }
        } else {
            build_image(p, &mut self.image)?;
        }
        let sent = self.image.len() - self.pos;
        self.stats.stopcopy_bytes = sent as u64;
        self.stats.final_bytes = (sent - unread) as u64;
        Ok(())
    }

    /// The save side holds only the base, and all of it was read.
    fn base_read_whole(&self) -> bool {
        self.base_len > 0 && self.base_len == self.image.len() && self.pos == self.image.len()
    }

    /// In pre-copy, with the pre-copy image read whole and kept as the
    /// base: the length of the delta a stop-copy would send now (the
    /// current image built into `full`, the delta written behind the base
    /// and dropped again; both buffers were reserved by `keep_base()`).
    /// `None` without a base, or if the delta would not be sent.
    fn delta_now(&mut self, p: &impl Provider) -> Option<usize> {
        if !self.state.is_pre_copy() || !self.base_read_whole() {
            return None;
        }
        // The image a stop now would give (GVT-g: the workloads queued
        // now are in it), made as a stop makes it, so the answer is what
        // it sends.
        if self.final_image == FinalImage::Patch {
            let res = self.append_patch(p, true);
            let n = self.image.len() - self.base_len;
            self.image.truncate(self.base_len);
            if let Ok(true) = res {
                return Some(n);
            }
        }
        self.full.clear();
        build_with(p, &mut self.full, |out| p.save_state_estimate(out)).ok()?;
        let res = self.append_delta();
        let n = self.image.len() - self.base_len;
        self.image.truncate(self.base_len);
        // `full` keeps its length: a patched final image fills it.
        res.ok().map(|()| n)
    }

    /// Appends the delta from the base to the image the provider would
    /// build now (with `estimate`, the one it would build if it stopped
    /// now), patched from what changed ([`stream::Patcher`]: no whole
    /// image is built or checksummed), if it is at most half an image
    /// long; `Ok(false)` if it is not (or memory is short), for a built
    /// delta or a full image to follow. Keeps the digest of a final
    /// delta's image for [`Migration::check_patched`]. The provider's own
    /// failure to save is the stop's: a second save is not tried.
    fn append_patch(
        &mut self,
        p: &impl Provider,
        estimate: bool,
    ) -> core::result::Result<bool, SaveError> {
        let (base_len, len) = (self.base_len, p.state_len());
        // Sized by `keep_base()`, unless `delta_now()` left it shorter.
        let room = stream::patch::room_for(len, self.changed.as_ref());
        let sized = (self.full.len() >= len
            || self.full.resize(len, 0, GFP_KERNEL_ACCOUNT).is_ok())
            && self
                .image
                .resize(base_len + room, 0, GFP_KERNEL_ACCOUNT)
                .is_ok();
        if !sized {
            self.image.truncate(base_len);
            return Ok(false);
        }
        let (base, out) = self.image.split_at_mut(base_len);
        let res = p.save_delta(base, self.changed.as_ref(), &mut self.full, out, estimate);
        let n = res.as_ref().map_or(0, |&(n, _)| n);
        self.image.truncate(base_len + n);
        match res {
            Ok(_) => {
                self.patched = !estimate;
                Ok(true)
            }
            Err(e @ (stream::StreamError::SaveFailed | stream::StreamError::TooManyPending(_))) => {
                Err(SaveError::Provider(e))
            }
            Err(_) => Ok(false),
        }
    }

    /// After the stop (STOP_COPY -> STOP, outside the downtime): builds
    /// the image whole and compares its GGTT entries with the base's. One
    /// that differs unmarked is a GGTT write the write path missed: the
    /// patched delta did not carry it, and the destination restored the
    /// base's entry, which the log says. (A write after the final image
    /// marks its entry too, so a VMM that changes the stopped vGPU does
    /// not count.)
    fn check_patched(&mut self, d: &impl MigDevice, p: &impl Provider) {
        if !core::mem::take(&mut self.patched) {
            return;
        }
        let Some(changed) = self.changed.as_ref() else {
            return;
        };
        self.full.clear();
        if build_image(p, &mut self.full).is_err() {
            return;
        }
        self.stats.final_checks += 1;
        let base = self.image.get(..self.base_len).unwrap_or(&[]);
        let missed = changed.unmarked_changes(base, &self.full);
        if missed > 0 {
            self.stats.final_mismatches += 1;
            dev_ratelimited!(
                dev_err,
                d.dev(),
                "the stop-copy delta missed {} GGTT entries written unmarked: the destination has their pre-copy values\n",
                missed
            );
        }
    }

    /// Appends the delta from the base to `full`, if it is at most half
    /// as long.
    fn append_delta(&mut self) -> core::result::Result<(), stream::StreamError> {
        let base_len = self.base_len;
        let room = self.full.len() / 2;
        self.image
            .resize(base_len + room, 0, GFP_KERNEL_ACCOUNT)
            .map_err(|_| stream::StreamError::NoSpace)?;
        let (base, out) = self.image.split_at_mut(base_len);
        let res = delta::write_delta(base, &self.full, self.changed.as_ref(), out);
        let n = res.as_ref().map_or(0, |&n| n);
        self.image.truncate(base_len + n);
        res.map(|_| ())
    }

    /// In PRE_COPY, with the base read whole: if it went stale
    /// ([`ChangedEntries::base_is_stale`]) and fewer than
    /// [`delta::MAX_REINITS`] new bases were sent, the current image
    /// becomes the new base and the next bytes to read. Returns whether it
    /// did. Without memory the old base stays, and so does the larger
    /// delta over it.
    fn reinit(&mut self, d: &impl MigDevice, p: &impl Provider) -> bool {
        let stale = self.changed.as_ref().is_some_and(|c| c.base_is_stale());
        if self.state != PRE_COPY
            || !stale
            || !self.base_read_whole()
            || self.stats.precopy_reinits >= u64::from(delta::MAX_REINITS)
        {
            return false;
        }
        self.full.clear();
        if let Err(e) = build_image(p, &mut self.full) {
            dev_ratelimited!(
                dev_warn,
                d.dev(),
                "no new pre-copy image ({}): the stop-copy delta stays over the old one\n",
                e.why()
            );
            return false;
        }
        core::mem::swap(&mut self.image, &mut self.full);
        self.full.clear();
        self.pos = 0;
        self.keep_base(p, d.ggtt_writes_seen());
        self.stats.precopy_reinits += 1;
        true
    }

    /// Appends `full` (the delta was not worth it): a wholly read base
    /// gives up its buffer.
    fn append_full(&mut self) -> core::result::Result<(), SaveError> {
        if self.pos == self.image.len() {
            core::mem::swap(&mut self.image, &mut self.full);
            self.pos = 0;
            self.base_len = 0;
            return Ok(());
        }
        self.image
            .extend_from_slice(&self.full, GFP_KERNEL_ACCOUNT)
            .map_err(|_| SaveError::NoMemory)?;
        Ok(())
    }
}

/// The command streamer's write sets and the device model's own writes:
/// the frames join the tracker (as [`ShadowEvent::GpuWrote`] did) and the
/// write set of the migration, if dirty logging runs.
impl WriteSink for Migration {
    fn may_write(&mut self, gfn: u64) {
        let Some(t) = self.tracking.as_mut() else {
            return;
        };
        // A frame first seen here (a PPGTT-only page) is pending like one
        // a shadow event brings.
        t.log.gpu_may_write(gfn);
    }

    fn unbounded(&mut self) {
        if let Some(t) = self.tracking.as_mut() {
            t.log.written.set_unbounded();
        }
    }
}

/// Why a state image could not be built.
#[derive(Debug, Clone, Copy)]
enum SaveError {
    /// No memory for the image.
    NoMemory,
    /// The provider's save failed.
    Provider(stream::StreamError),
    /// debugfs `gmig/fault` said so (counts as no memory).
    Injected,
}

impl SaveError {
    /// Why, for the log.
    fn why(&self) -> &'static str {
        match self {
            Self::NoMemory => "out of memory",
            Self::Injected => "out of memory (injected: debugfs gmig/fault)",
            Self::Provider(stream::StreamError::TooManyPending(_)) => {
                "more workloads queued than an image carries, after letting them drain"
            }
            Self::Provider(stream::StreamError::SaveFailed) => "the backend's save failed",
            Self::Provider(_) => "the image does not fit",
        }
    }
}

impl From<SaveError> for Error {
    fn from(e: SaveError) -> Self {
        match e {
            SaveError::NoMemory | SaveError::Injected => ENOMEM,
            // GVT-g: more workloads queued than an image carries, after
            // the queues were let drain; a later stop may succeed.
            SaveError::Provider(stream::StreamError::TooManyPending(_)) => EBUSY,
            SaveError::Provider(_) => EIO,
        }
    }
}

/// Appends the provider's state image to `out`.
fn build_image(p: &impl Provider, out: &mut KVVec<u8>) -> core::result::Result<(), SaveError> {
    build_with(p, out, |o| p.save_state(o))
}

/// Appends the image `save` writes (at most the provider's `state_len`
/// bytes) to `out`; `out` is as it was on failure.
fn build_with(
    p: &impl Provider,
    out: &mut KVVec<u8>,
    save: impl FnOnce(&mut [u8]) -> core::result::Result<usize, stream::StreamError>,
) -> core::result::Result<(), SaveError> {
    let start = out.len();
    out.resize(start + p.state_len(), 0, GFP_KERNEL_ACCOUNT)
        .map_err(|_| SaveError::NoMemory)?;
    let res = save(&mut out[start..]);
    out.truncate(start + *res.as_ref().unwrap_or(&0));
    res.map(|_| ()).map_err(SaveError::Provider)
}

/// Finds the state in `data` ([`stream::resolve`]), saying why not; the
/// stream's first `dropped` bytes were superseded and are not in `data`.
fn resolve_images<'a, D: MigDevice>(
    d: &D,
    p: &D::Prov,
    data: &'a [u8],
    dropped: usize,
    limits: &stream::Limits,
) -> Result<Resolved<'a>> {
    stream::resolve(data, limits, p.id(), p.type_index()).map_err(|e| {
        match e {
            ResumeError::Image { at, err } => dev_ratelimited!(
                dev_err,
                d.dev(),
                "migration stream rejected at byte {}: {:?}\n",
                at + dropped,
                err
            ),
            ResumeError::WrongDevice { hdr, .. } => dev_ratelimited!(
                dev_err,
                d.dev(),
                "migration stream is for provider {} type {}, this vGPU is provider {} type {} ({})\n",
                hdr.provider,
                hdr.vgpu_type,
                p.id(),
                p.type_index(),
                p.type_name()
            ),
            ResumeError::Delta { at, err } => dev_ratelimited!(
                dev_err,
                d.dev(),
                "migration stream: the delta image at byte {} does not apply: {:?}\n",
                at + dropped,
                err
            ),
            ResumeError::Empty => {
                dev_ratelimited!(dev_err, d.dev(), "migration stream is empty\n")
            }
        }
        EINVAL
    })
}

/// The image to restore: a full image as it came, or a delta applied to
/// its base in `buf`, the result validated as a whole.
fn state_image<'a, D: MigDevice>(
    d: &D,
    resolved: Resolved<'a>,
    limits: &stream::Limits,
    buf: &'a mut KVVec<u8>,
) -> Result<(stream::Header, &'a [u8])> {
    let (base, delta) = match resolved {
        Resolved::Full { hdr, image } => return Ok((hdr, image)),
        Resolved::Delta { base, delta } => (base, delta),
    };
    buf.resize(delta.result_len(), 0, GFP_KERNEL_ACCOUNT)?;
    let hdr = delta.apply(base, buf, limits).map_err(|e| {
        dev_ratelimited!(
            dev_err,
            d.dev(),
            "migration stream: the delta over the pre-copy image gives no valid image: {:?}\n",
            e
        );
        EINVAL
    })?;
    Ok((hdr, &buf[..]))
}

/// Validates every image in `data`, combines a final delta with its base,
/// and applies the resulting state.
fn apply_images<D: MigDevice>(d: &D, l: &mut Locked<'_, D::Prov>, data: &[u8]) -> Result {
    let limits = stream::Limits::for_state_len(l.prov.state_len());
    let dropped = l.mig.arrived.dropped();
    let resolved = resolve_images(d, &*l.prov, data, dropped, &limits)?;
    let mut buf = KVVec::new();
    let (hdr, image) = state_image(d, resolved, &limits, &mut buf)?;
    let mut mem = d.mem();
    let dst = l.prov.partition();
    let done = l.prov.restore_state(&hdr, image, &mut mem).map_err(|e| {
        match e {
            RestoreError::Remap(r) => {
                dev_ratelimited!(
                    dev_err,
                    d.dev(),
                    "remapping pending workloads failed: {:?}\n",
                    r
                )
            }
            e => dev_ratelimited!(
                dev_err,
                d.dev(),
                "migration stream does not fit this vGPU: {:?}\n",
                e
            ),
        }
        EINVAL
    })?;
    if let Some(src) = done.src.filter(|src| src.base != dst.base) {
        l.mig.stats.remap_patched = done.remapped;
        d.restored_elsewhere(src.base, dst.base, done.remapped);
    }
    l.mig.stats.images_applied += 1;
    Ok(())
}

pub(crate) fn arc<D: MigDevice>(d: &D, cur: u32, next: u32) -> Result {
    // The VFIO core passes states of its own arc table; anything else is
    // refused before the vGPU is touched.
    let (Ok(cur), Ok(next)) = (DeviceState::try_from(cur), DeviceState::try_from(next)) else {
        dev_ratelimited!(
            dev_err,
            d.dev(),
            "migration arc {} -> {}: no such state\n",
            cur,
            next
        );
        return Err(EINVAL);
    };
    let entered = Instant::<Monotonic>::now();
    d.arc_begin();
    d.with_locked(|l| {
        let res = arc_locked(d, l, cur, next, entered);
        d.arc_end(l);
        res
    })
}

/// [`arc`] with the vGPU lock held.
fn arc_locked<D: MigDevice>(
    d: &D,
    l: &mut Locked<'_, D::Prov>,
    cur: DeviceState,
    next: DeviceState,
    entered: Instant<Monotonic>,
) -> Result {
    // Hook events reach the tracker where it is used: after the quiesce
    // of the stop arcs below, and at each report.
    let mig = &mut *l.mig;
    match (cur, next) {
        (RUNNING, PRE_COPY) | (RUNNING_P2P, PRE_COPY_P2P) => {
            mig.start_save();
            mig.drop_images();
            build_image(&*l.prov, &mut mig.image)?;
            mig.keep_base(&*l.prov, d.ggtt_writes_seen());
        }
        (PRE_COPY, RUNNING) | (PRE_COPY_P2P, RUNNING_P2P) | (STOP_COPY, STOP) => {
            // A client that left STOP_COPY before reading the last byte:
            // the downtime ends here.
            if let Some(t) = mig.stopped_at.take() {
                if cur == STOP_COPY {
                    mig.stats.downtime_us = t.elapsed().as_micros_ceil();
                }
            }
            if cur == STOP_COPY {
                mig.check_patched(d, &*l.prov);
            }
            mig.release_images();
        }
        (RUNNING_P2P, STOP) => {
            l.prov.quiesce();
            d.sync(mig);
            mig.stop_scan(d, l.open);
        }
        (STOP, RUNNING_P2P) => {
            mig.stopped_at = None;
            mig.stop_unscan();
            // `arc_end()` kicks what waits.
            l.prov.resume();
        }
        (PRE_COPY_P2P, STOP_COPY) | (STOP, STOP_COPY) => {
            mig.stopped_at = Some(entered);
            mig.stats.quiesce_wait_us = entered.elapsed().as_micros_ceil();
            if cur == PRE_COPY_P2P {
                l.prov.quiesce();
                d.sync(mig);
                mig.stop_scan(d, l.open);
            } else {
                mig.start_save();
                mig.drop_images();
            }
            // Unread pre-copy bytes still go out first: images are whole.
            let t = Instant::<Monotonic>::now();
            if let Err(e) = mig.build_final(&*l.prov) {
                // The arc is refused: the device stays as it was, the
                // images, the stop-scan and the vGPU too (it runs again
                // from PRE_COPY_P2P, as STOP -> RUNNING_P2P does).
                mig.stopped_at = None;
                if cur == PRE_COPY_P2P {
                    mig.stop_unscan();
                    l.prov.resume();
                }
                let err = Error::from(e);
                let runs = if cur == PRE_COPY_P2P {
                    ", the vGPU runs again"
                } else {
                    ""
                };
                dev_ratelimited!(
                    dev_err,
                    d.dev(),
                    "{} -> STOP_COPY refused ({}): the stop-copy image could not be built: {} ({:?}); the device stays {}{}\n",
                    cur.name(),
                    err.to_errno(),
                    e.why(),
                    e,
                    cur.name(),
                    runs
                );
                return Err(err);
            }
            mig.stats.image_us = t.elapsed().as_micros_ceil();
        }
        (STOP, RESUMING) => {
            mig.reset_stats();
            mig.incoming = KVVec::new();
            mig.arrived = Incoming::default();
        }
        (RESUMING, STOP) => {
            let start = Instant::<Monotonic>::now();
            let data = core::mem::take(&mut mig.incoming);
            let res = apply_images(d, l, &data);
            l.mig.stats.resume_us = start.elapsed().as_micros_ceil();
            if res.is_err() {
                l.mig.stats.stream_errors += 1;
                l.mig.incoming = data;
            }
            res?;
        }
        (RUNNING, RUNNING_P2P)
        | (RUNNING_P2P, RUNNING)
        | (PRE_COPY, PRE_COPY_P2P)
        | (PRE_COPY_P2P, PRE_COPY) => {}
        _ => {
            dev_ratelimited!(
                dev_err,
                d.dev(),
                "unexpected migration arc {} -> {}\n",
                cur.name(),
                next.name()
            );
            return Err(EINVAL);
        }
    }
    l.mig.state = next;
    Ok(())
}

/// read() of the saving data fd, first half: copies the bytes at the
/// read position into `out` and says where they are (`at`), without
/// consuming them. The shim copies them to the reader outside the vGPU
/// lock (a fault there may take mmap_lock) and consumes what the reader
/// got with [`mig_read_commit`]; its data fd lock keeps the arcs away
/// between the two.
pub(crate) fn mig_read<D: MigDevice>(d: &D, out: &mut [u8], at: &mut u64) -> isize {
    d.with_locked(|l| {
        let mig = &mut *l.mig;
        let Some(avail) = mig.image.get(mig.pos..) else {
            return EINVAL.to_errno() as isize;
        };
        let n = avail.len().min(out.len());
        if n == 0 && !out.is_empty() && mig.state.is_pre_copy() {
            // The end of the data available now (more may come): the
            // uAPI's -ENOMSG; 0 would mean the end of the stream.
            return ENOMSG.to_errno() as isize;
        }
        out[..n].copy_from_slice(&avail[..n]);
        *at = mig.pos as u64;
        isize::try_from(n).unwrap_or(isize::MAX)
    })
}

/// read() of the saving data fd, second half: the reader got `n` of the
/// bytes [`mig_read`] handed out at `at`; they are consumed (the rest is
/// read again). Fails, consuming nothing, if the stream moved since.
pub(crate) fn mig_read_commit<D: MigDevice>(d: &D, at: u64, n: usize) -> Result {
    d.with_locked(|l| {
        let mig = &mut *l.mig;
        let end = mig.pos.checked_add(n).filter(|&e| e <= mig.image.len());
        let Some(end) = end.filter(|_| at == mig.pos as u64) else {
            dev_ratelimited!(
                dev_err,
                d.dev(),
                "migration data fd: {} bytes read at {} but the stream is at {} of {}\n",
                n,
                at,
                mig.pos,
                mig.image.len()
            );
            return Err(EIO);
        };
        mig.pos = end;
        if n > 0 && mig.state.is_pre_copy() {
            mig.stats.precopy_bytes += n as u64;
            if mig.pos == mig.image.len() {
                mig.stats.precopy_rounds += 1;
            }
        }
        if n > 0 && mig.state == STOP_COPY && mig.pos == mig.image.len() {
            // The last byte of device data: STOP_COPY entered -> here.
            if let Some(t) = mig.stopped_at.take() {
                mig.stats.downtime_us = t.elapsed().as_micros_ceil();
            }
        }
        Ok(())
    })
}

/// write() of the resuming data fd: appends `data` to the stream, image by
/// image, and drops the images a later full image superseded (a source
/// that sent new initial data, VFIO_PRECOPY_INFO_REINIT) as soon as that
/// image is complete: the buffer holds at most a full image and the next.
/// Returns the bytes taken, short if the budget or memory ran out part way.
pub(crate) fn mig_write<D: MigDevice>(d: &D, data: &[u8]) -> isize {
    if data.is_empty() {
        return 0;
    }
    d.with_locked(|l| {
        // Sized from this vGPU's type: a real GVT-g type's images are
        // several MiB (2 MiB of vregs and 8 bytes per GM page).
        let limits = stream::Limits::for_state_len(l.prov.state_len());
        let budget = limits.resume_budget();
        let (id, ty) = (l.prov.id(), l.prov.type_index());
        let mig = &mut *l.mig;
        let mut taken = 0;
        while taken < data.len() {
            let n = mig.arrived.cut(&mig.incoming, data.len() - taken);
            let piece = &data[taken..taken + n];
            if mig.incoming.len().saturating_add(n) > budget {
                // One line per resume (the counter restarts at STOP ->
                // RESUMING), however often a client retries, and a bounded
                // number however often it resumes.
                if mig.stats.stream_errors == 0 {
                    dev_ratelimited!(
                        dev_err,
                        d.dev(),
                        "migration stream larger than {} bytes ({} images of this vGPU type)\n",
                        budget,
                        stream::IMAGES_PER_MIGRATION
                    );
                }
                mig.stats.stream_errors += 1;
                break;
            }
            if mig
                .incoming
                .extend_from_slice(piece, GFP_KERNEL_ACCOUNT)
                .is_err()
            {
                return match taken {
                    0 => ENOMEM.to_errno() as isize,
                    t => isize::try_from(t).unwrap_or(isize::MAX),
                };
            }
            taken += n;
            // A bad image stays for the resume to refuse by name.
            if let Ok(gone) = mig.arrived.arrived(&mig.incoming, &limits, id, ty) {
                if gone > 0 {
                    mig.incoming.copy_within(gone.., 0);
                    mig.incoming.truncate(mig.incoming.len() - gone);
                    mig.stats.superseded_bytes += gone as u64;
                }
            }
        }
        match taken {
            0 => EFBIG.to_errno() as isize,
            t => isize::try_from(t).unwrap_or(isize::MAX),
        }
    })
}

/// VFIO_MIG_GET_PRECOPY_INFO: the unread bytes of the pre-copy data, all
/// of them initial data (gmig's images are whole: there are no dirty
/// bytes). With `v2` (the VMM opted in to
/// VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2) and a base gone stale, the new
/// initial data is built here: `reinit` in the answer, which the shim
/// reports as VFIO_PRECOPY_INFO_REINIT.
pub(crate) fn precopy_info<D: MigDevice>(d: &D, v2: bool) -> Result<PrecopyInfo> {
    d.with_locked(|l| {
        if !l.mig.state.is_pre_copy() {
            return Err(EINVAL);
        }
        let reinit = v2 && l.mig.reinit(d, &*l.prov);
        let mig = &*l.mig;
        Ok(PrecopyInfo {
            initial: (mig.image.len() - mig.pos) as u64,
            reinit,
        })
    })
}

/// What [`precopy_info`] answers.
pub(crate) struct PrecopyInfo {
    /// Initial bytes left to read.
    pub(crate) initial: u64,
    /// They are new initial data: a new base.
    pub(crate) reinit: bool,
}

/// VFIO_DEVICE_FEATURE_MIG_DATA_SIZE: bytes of a stop-copy image. Once the
/// pre-copy image was read whole, the stop-copy image is a delta over it:
/// the answer is that delta as it would be now ([`Migration::delta_now`]),
/// else a full image's length. QEMU adds the answer to what must go before
/// it switches over; a full GVT-g image (3-7 MiB) there would keep an idle
/// VM from converging whenever QEMU measures a low bandwidth (its RAM sends
/// little), though the final image is a few hundred bytes.
pub(crate) fn data_size<D: MigDevice>(d: &D) -> usize {
    d.with_locked(|l| {
        let full = l.prov.state_len();
        l.mig.delta_now(&*l.prov).unwrap_or(full)
    })
}

pub(crate) fn abort<D: MigDevice>(d: &D) {
    d.with_locked(|l| {
        l.prov.reset();
        l.prov.resume();
        let mig = &mut *l.mig;
        mig.state = RUNNING;
        mig.release_images();
        mig.stopped_at = None;
        mig.stop_unscan();
        d.arc_end(l);
    })
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

/// # Safety
///
/// `dirty` is the `struct iova_bitmap` of this report, valid during the
/// call.
pub(crate) unsafe fn log_report<D: MigDevice>(
    d: &D,
    iova: u64,
    length: u64,
    dirty: *mut IovaBitmap,
) -> Result {
    // SAFETY: `dirty` is valid during the call (the function's contract).
    d.with_locked(|l| unsafe { log_report_locked(d, l, iova, length, dirty) })
}

/// # Safety
///
/// As [`log_report`].
unsafe fn log_report_locked<D: MigDevice>(
    d: &D,
    l: &mut Locked<'_, D::Prov>,
    iova: u64,
    length: u64,
    dirty: *mut IovaBitmap,
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
            // SAFETY: `dirty` is the bitmap of this report, valid during
            // the call (the function's contract).
            unsafe { set_dirty(dirty, gfn * PAGE_SIZE, PAGE_SIZE) };
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

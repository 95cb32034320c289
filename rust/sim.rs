// SPDX-License-Identifier: GPL-2.0

//! The Rust object behind each gmig mdev: a sim vGPU, its lock, its
//! debugfs directory, and what the C shim's entry points ([`crate::abi`])
//! ask of it.
//!
//! Lock order: the shim's `state_mutex`, then a migration file's lock, then
//! [`Shared::inner`]. Nothing sleeps on the C side with `inner` held except
//! `vfio_dma_rw()`, `vfio_pin_pages()` and `vfio_unpin_pages()` (which take
//! the IOMMU's lock; its `dma_unmap` callback is made with that lock
//! dropped and takes only [`Shared::pins`]' spinlock, never `inner`: see
//! `crate::migration::pin`) and `gmig_raise_irq()` (a spinlock).

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::log::dev_ratelimited;
use kernel::{
    debugfs::{BinaryReader, Dir, File},
    ffi::c_void,
    fs::file,
    prelude::*,
    str::CStr,
    sync::{aref::ARef, Arc, Mutex},
    types::ForeignOwnable,
    uaccess::UserSliceReader, //
};

use crate::{
    ffi::Vdev,
    gmig_core::{
        gtt::Partition,
        mem::{GuestMem, MemFault},
        provider::{Provider, ShadowEvent, MAX_EVENT_PAGES},
        sim::{
            exec::{CtxSlot, CONTEXT_SLOTS},
            replay::{window_pages, witness_words, ReplayRun, Tick},
            vgpu::{Event, SimVgpu, TYPES},
            workload::{Command as WorkloadCommand, Params as WorkloadParams, Workload},
        },
        slots::Slots,
        writeset::{FrameLog, RecordingMem, Tee},
    },
    migration::pin::{InPlace, PinWindow},
    migration::{Locked, MigDevice, Migration},
};

/// Counters of a vGPU outside any migration, for its current VFIO user
/// (cleared when a VM opens the vGPU).
pub(crate) struct Stats {
    /// Bytes the command streamer wrote to guest memory.
    pub(crate) gpu_bytes_written: AtomicU64,
    /// Region accesses refused (bad offset, size or region).
    pub(crate) bad_accesses: AtomicU64,
    /// Contexts executed.
    pub(crate) contexts: AtomicU64,
    /// DMA accesses that failed (each is tried once; the shim logs its
    /// errno and IOVA).
    pub(crate) dma_errors: AtomicU64,
}

impl Stats {
    fn new() -> Self {
        Self {
            gpu_bytes_written: AtomicU64::new(0),
            bad_accesses: AtomicU64::new(0),
            contexts: AtomicU64::new(0),
            dma_errors: AtomicU64::new(0),
        }
    }

    /// Zeroes every counter (a new VFIO user).
    fn clear(&self) {
        for c in [
            &self.gpu_bytes_written,
            &self.bad_accesses,
            &self.contexts,
            &self.dma_errors,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }

    fn show(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        writeln!(f, "contexts: {}", self.contexts.load(Ordering::Relaxed))?;
        writeln!(
            f,
            "gpu_bytes_written: {}",
            self.gpu_bytes_written.load(Ordering::Relaxed)
        )?;
        writeln!(
            f,
            "bad_accesses: {}",
            self.bad_accesses.load(Ordering::Relaxed)
        )?;
        writeln!(f, "dma_errors: {}", self.dma_errors.load(Ordering::Relaxed))
    }
}

kernel::sync::global_lock! {
    // SAFETY: initialised in the module initialiser (`sim::init()`) before
    // the mdev parent is registered, so before any other use.
    unsafe(uninit) static GLOBAL: Mutex<Globals> = Globals::new();
}

/// State shared by every vGPU of the sim parent.
pub(crate) struct Globals {
    /// GGTT partition slots of the parent's global graphics address space.
    slots: Slots,
    /// Instances per type, for `available_instances`.
    instances: [u32; 4],
}

impl Globals {
    const fn new() -> Self {
        Self {
            slots: Slots::new(),
            instances: [0; 4],
        }
    }
}

/// Prepares the globals; called once from the module initialiser.
pub(crate) fn init() {
    // SAFETY: called exactly once, before the mdev parent is registered.
    unsafe { GLOBAL.init() };
}

/// Guest memory as the sim's command streamer sees it: the VFIO DMA path.
pub(crate) struct DmaMem<'a> {
    vdev: Vdev,
    stats: &'a Stats,
}

impl<'a> DmaMem<'a> {
    pub(crate) fn new(s: &'a Shared) -> Self {
        Self {
            vdev: s.vdev,
            stats: &s.stats,
        }
    }
}

/// One DMA access, tried once: the vGPU lock is held, so there is no
/// sleeping retry (it would stretch the stop arc). An access fails when the
/// guest's memory map has no mapping there, e.g. while its firmware
/// reprograms PAM and SMRAM and QEMU unmaps and maps guest RAM again; on a
/// real GPU the IOMMU would fault it. The shim logs errno and IOVA of every
/// failure (ratelimited); a failed read counts as a changed page, a failed
/// write as a GPU fault.
impl DmaMem<'_> {
    fn counted(&self, res: Result) -> Result {
        if res.is_err() {
            self.stats.dma_errors.fetch_add(1, Ordering::Relaxed);
        }
        res
    }
}

impl GuestMem for DmaMem<'_> {
    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), MemFault> {
        self.counted(self.vdev.dma_read(gpa, buf))
            .map_err(|_| MemFault { gpa })
    }

    fn write(&mut self, gpa: u64, buf: &[u8]) -> Result<(), MemFault> {
        self.counted(self.vdev.dma_write(gpa, buf))
            .map_err(|_| MemFault { gpa })?;
        self.stats
            .gpu_bytes_written
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// The device model: GGTT entries and the pipeline state of the contexts
/// it ran (a few KiB each: in a `KVVec`, never on the stack).
pub(crate) type Sim = SimVgpu<KVVec<u64>, KVVec<CtxSlot>>;

/// What the vGPU lock protects.
pub(crate) struct Inner {
    /// The device model (registers, GGTT partition, execlists).
    pub(crate) sim: Sim,
    /// The device is open by a VFIO user (guest memory is reachable).
    pub(crate) open: bool,
    /// The synthetic workload, when running, and its batch scratch buffer.
    pub(crate) workload: Option<(Workload, KVVec<u32>)>,
    /// A `start` waiting for the worker: `vfio_dma_rw()` works only from a
    /// kernel thread or the VFIO user's own process, not from the shell
    /// that wrote the debugfs file.
    pub(crate) workload_start: Option<(WorkloadParams, KVVec<u32>)>,
    /// The replay file written to debugfs `replay` (kept while a replay
    /// runs from it), the replay running, and a `start replay` waiting for
    /// the worker (window base and size).
    pub(crate) replay_file: KVVec<u8>,
    pub(crate) replay: Option<ReplayRun<KVVec<u64>>>,
    pub(crate) replay_start: Option<(u64, u64)>,
    /// Migration state of this vGPU (source or destination side).
    pub(crate) mig: Migration,
}

/// Largest replay file the debugfs `replay` file takes (kernel memory,
/// charged to the writer).
const MAX_REPLAY_FILE: usize = 64 << 20;

impl Inner {
    /// Stops the synthetic workload and the replay (the replay file stays).
    fn stop_workloads(&mut self) {
        self.workload = None;
        self.workload_start = None;
        self.replay = None;
        self.replay_start = None;
    }
}

/// The debugfs `replay` file's data: the vGPU it loads.
pub(crate) struct ReplayFile(Arc<Shared>);

impl BinaryReader for ReplayFile {
    fn read_from_slice(
        &self,
        reader: &mut UserSliceReader,
        offset: &mut file::Offset,
    ) -> Result<usize> {
        self.0.write_replay(reader, offset)
    }
}

/// The part of a vGPU that its debugfs files share.
#[pin_data]
pub(crate) struct Shared {
    pub(crate) vdev: Vdev,
    pub(crate) dev: ARef<kernel::device::Device>,
    pub(crate) partition: Partition,
    pub(crate) type_index: usize,
    pub(crate) stats: Stats,
    pub(crate) faults: AtomicU64,
    /// A migration arc waits for `inner` to quiesce the vGPU: the command
    /// streamer finishes the running context and leaves the queued ones
    /// (they migrate as pending submissions).
    pub(crate) stopping: AtomicBool,
    /// The guest pages a scan pins to hash them in place, which the
    /// `dma_unmap` callback waits for (outside `inner`).
    #[pin]
    pub(crate) pins: PinWindow,
    #[pin]
    pub(crate) inner: Mutex<Inner>,
}

/// The object the C shim holds as `struct gmig_vgpu *`.
pub(crate) struct Vgpu {
    // Dropped in declaration order: files before their directory.
    _stats: Pin<KBox<File<Arc<Shared>>>>,
    _workload: Pin<KBox<File<Arc<Shared>>>>,
    _replay: Pin<KBox<File<ReplayFile>>>,
    _dir: Dir,
    pub(crate) shared: Arc<Shared>,
}

impl Shared {
    /// Runs pending submissions of the command streamer. Called from the
    /// shim's work item, never with `inner` held.
    pub(crate) fn exec(&self) {
        let mut guard = self.inner.lock();
        if !guard.open || guard.sim.is_quiesced() {
            return;
        }
        let mut mem = DmaMem::new(self);
        let Inner {
            sim,
            mig,
            replay,
            replay_file,
            ..
        } = &mut *guard;
        while !self.stopping.load(Ordering::Acquire) {
            let Some(desc) = sim.take_submission() else {
                break;
            };
            // The streamer tells the migration each command's write set
            // before running it.
            let res = match replay.as_mut() {
                // The replay's witness sees what the streamer names too.
                Some(run) => sim.execute(desc, &mut mem, &mut Tee(&mut *mig, run.witness())),
                None => sim.execute(desc, &mut mem, mig),
            };
            self.stats.contexts.fetch_add(1, Ordering::Relaxed);
            // A replayed execbuffer: the model GPU writes what Mesa said it
            // writes, unrecorded (what the analysis must have foreseen).
            if let Some(run) = replay.as_mut() {
                if let Err(e) = run.executed(desc, replay_file, &mut mem) {
                    dev_ratelimited!(dev_warn, &self.dev, "replay: model writes: {:?}\n", e);
                }
            }
            if let Err(fault) = res {
                self.faults.fetch_add(1, Ordering::Relaxed);
                dev_ratelimited!(
                    dev_warn,
                    &self.dev,
                    "context {:#x} faulted: {:?}\n",
                    desc,
                    fault
                );
            }
        }
        if sim.irq_pending() {
            self.vdev.raise_irq();
        }
    }

    fn handle_event(&self, inner: &mut Inner, event: Event) {
        match event {
            Event::Submit => self.vdev.kick_exec(),
            Event::GgttUpdate { index, old, new } => {
                inner.mig.shadow_event(ShadowEvent::GgttWrite {
                    index: index as u64,
                    old,
                    new,
                })
            }
            Event::None => {}
        }
    }

    /// debugfs `stats`: one `key: value` per line.
    fn show_stats(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let inner = self.inner.lock();
        writeln!(
            f,
            "type: {}",
            TYPES.get(self.type_index).map_or("?", |t| t.name)
        )?;
        writeln!(f, "ggtt_base: {:#x}", self.partition.base)?;
        writeln!(f, "ggtt_size: {:#x}", self.partition.size)?;
        writeln!(f, "quiesced: {}", u8::from(inner.sim.is_quiesced()))?;
        inner.mig.show_stats(f)?;
        writeln!(
            f,
            "workload: {}",
            inner.workload.as_ref().map_or(
                if inner.replay.is_some() {
                    "replay"
                } else {
                    "none"
                },
                |w| { w.0.profile_name() }
            )
        )?;
        if let Some(r) = &inner.replay {
            let s = r.stats();
            writeln!(f, "replay_submitted: {}", s.submitted)?;
            writeln!(f, "replay_executed: {}", s.executed)?;
            writeln!(f, "replay_loops: {}", s.loops)?;
            writeln!(f, "replay_pages_written: {}", s.pages_written)?;
            writeln!(f, "replay_model_pages: {}", s.model_pages)?;
            writeln!(f, "replay_unnamed_pages: {}", s.unnamed)?;
        }
        writeln!(f, "faults: {}", self.faults.load(Ordering::Relaxed))?;
        self.stats.show(f)
    }

    /// debugfs `workload` read: state and profiles.
    fn show_workload(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let inner = self.inner.lock();
        match &inner.workload {
            Some(w) => writeln!(f, "state: running {}", w.0.profile_name())?,
            None if inner.replay.is_some() => writeln!(f, "state: running replay")?,
            None => writeln!(f, "state: stopped")?,
        }
        writeln!(f, "replay file: {} bytes", inner.replay_file.len())?;
        Workload::describe_profiles(f)
    }

    /// debugfs `workload` write: `start <profile> [base=..] [size=..]` or `stop`.
    fn write_workload(&self, reader: &mut UserSliceReader) -> Result {
        let mut buf = [0u8; 128];
        let text = crate::debugfs_text(reader, &mut buf)?;
        let cmd = WorkloadCommand::parse(text.trim()).map_err(|e| {
            dev_err!(self.dev, "workload: {:?} in {:?}\n", e, text.trim());
            EINVAL
        })?;
        match cmd {
            WorkloadCommand::Stop => {
                let mut inner = self.inner.lock();
                inner.stop_workloads();
                drop(inner);
                self.vdev.cancel_workload();
            }
            WorkloadCommand::Start(params) => {
                let scratch = KVVec::from_elem(0u32, 16 * 1024, GFP_KERNEL)?;
                let mut inner = self.inner.lock();
                if !inner.open {
                    dev_err!(self.dev, "workload: no VFIO user has the device open\n");
                    return Err(ENODEV);
                }
                inner.stop_workloads();
                inner.workload_start = Some((params, scratch));
                // Queued under the lock: close and release, which cancel
                // the work, cannot run between the check above and here.
                self.vdev.schedule_workload(0);
                drop(inner);
            }
            WorkloadCommand::Replay { base, size } => {
                let mut inner = self.inner.lock();
                if !inner.open {
                    dev_err!(self.dev, "workload: no VFIO user has the device open\n");
                    return Err(ENODEV);
                }
                if inner.replay_file.is_empty() {
                    dev_err!(
                        self.dev,
                        "workload: no replay file written to debugfs `replay`\n"
                    );
                    return Err(ENOENT);
                }
                inner.stop_workloads();
                inner.replay_start = Some((base, size));
                self.vdev.schedule_workload(0);
                drop(inner);
            }
        }
        Ok(())
    }

    /// Sets up a requested replay; runs in the worker.
    fn replay_setup(&self, inner: &mut Inner) {
        let Some((base, size)) = inner.replay_start.take() else {
            return;
        };
        // The witness is a bit per mapped page (at most MAX_MAPPED:
        // 512 KiB), charged to the VMM like the rest of the replay.
        let witness =
            match KVVec::from_elem(0u64, witness_words(&inner.replay_file), GFP_KERNEL_ACCOUNT) {
                Ok(w) => w,
                Err(_) => {
                    dev_err!(self.dev, "workload: no memory for the replay's witness\n");
                    return;
                }
            };
        let mut dma = DmaMem::new(self);
        let Inner {
            sim,
            mig,
            replay_file,
            replay,
            ..
        } = inner;
        let size = if size != 0 {
            size
        } else {
            match crate::gmig_core::replay::Replay::parse(replay_file) {
                Ok(r) => window_pages(&r) * 4096,
                Err(_) => 0,
            }
        };
        // The GGTT updates (a context image and a ring per context) reach
        // the migration after the set-up; the page tables and context
        // images it writes are recorded as the driver's writes.
        let mut ggtt = [(0usize, 0u64, 0u64); 2 * crate::gmig_core::replay::MAX_CONTEXTS as usize];
        let mut n = 0usize;
        let res = {
            let mut mem = RecordingMem {
                mem: &mut dma,
                sink: &mut *mig,
            };
            ReplayRun::setup(base, size, replay_file, witness, sim, &mut mem, &mut |ev| {
                if let (Event::GgttUpdate { index, old, new }, Some(slot)) = (ev, ggtt.get_mut(n)) {
                    *slot = (index, old, new);
                    n += 1;
                }
            })
        };
        for &(index, old, new) in ggtt.iter().take(n) {
            mig.shadow_event(ShadowEvent::GgttWrite {
                index: index as u64,
                old,
                new,
            });
        }
        match res {
            Ok(run) => {
                // The PPGTT's frames are GPU-writable from now on.
                let (first, count) = run.data_frames(replay_file);
                let mut gfn = first;
                while gfn < first + count {
                    let pages = (first + count - gfn).min(MAX_EVENT_PAGES);
                    mig.shadow_event(ShadowEvent::Pinned { gfn, pages });
                    gfn += pages;
                }
                dev_info!(
                    self.dev,
                    "workload replay started at guest {:#x} ({} KiB), GGTT {:#x}: {} pages mapped\n",
                    base,
                    size >> 10,
                    run.gbase(),
                    count
                );
                *replay = Some(run);
            }
            Err(e) => dev_err!(self.dev, "workload: replay set-up failed: {:?}\n", e),
        }
    }

    /// One tick of a running replay; returns the delay to the next one.
    fn replay_tick(&self, inner: &mut Inner) -> Option<u32> {
        let mut dma = DmaMem::new(self);
        let Inner {
            sim,
            mig,
            replay,
            replay_file,
            ..
        } = inner;
        let run = replay.as_mut()?;
        // The pages, rings and context images the stand-in guest driver
        // writes are recorded like a command's writes (the VMM sees
        // device writes only through gmig's log).
        let mut mem = RecordingMem {
            mem: &mut dma,
            sink: mig,
        };
        match run.tick(replay_file, sim, &mut mem) {
            Ok(Tick::Submitted) => {
                self.vdev.kick_exec();
                Some(1)
            }
            Ok(Tick::Wrote) => Some(1),
            Ok(Tick::Waiting) => Some(2),
            Err(e) => {
                dev_ratelimited!(dev_warn, &self.dev, "replay: {:?}\n", e);
                Some(10)
            }
        }
    }

    /// debugfs `replay` write: the replay file, written from offset 0.
    fn write_replay(
        &self,
        reader: &mut UserSliceReader,
        offset: &mut file::Offset,
    ) -> Result<usize> {
        let len = reader.len();
        let mut inner = self.inner.lock();
        if inner.replay.is_some() || inner.replay_start.is_some() {
            // The running replay reads the file.
            return Err(EBUSY);
        }
        let at = usize::try_from(*offset).map_err(|_| EINVAL)?;
        if at == 0 {
            inner.replay_file.clear();
        }
        let end = at.checked_add(len).ok_or(EFBIG)?;
        if at != inner.replay_file.len() || end > MAX_REPLAY_FILE {
            dev_err!(
                self.dev,
                "replay: a write at {} of {} bytes (the file holds {}, at most {})\n",
                at,
                len,
                inner.replay_file.len(),
                MAX_REPLAY_FILE
            );
            return Err(EFBIG);
        }
        inner.replay_file.resize(end, 0, GFP_KERNEL_ACCOUNT)?;
        let dst = inner.replay_file.get_mut(at..end).ok_or(EINVAL)?;
        reader.read_slice(dst)?;
        *offset += len as file::Offset;
        Ok(len)
    }

    /// Sets up a requested workload; runs in the worker.
    fn workload_setup(&self, inner: &mut Inner) {
        let Some((params, scratch)) = inner.workload_start.take() else {
            return;
        };
        let mut dma = DmaMem::new(self);
        let Inner { sim, mig, .. } = inner;
        // The context image it writes is device-model work the VMM cannot
        // see: recorded like a command's write set (logged here, handed to
        // the migration below, as `mig` takes the GGTT updates meanwhile).
        let mut log = FrameLog::<4>::default();
        let mut mem = RecordingMem {
            mem: &mut dma,
            sink: &mut log,
        };
        let res = Workload::setup(params, sim, &mut mem, &mut |ev| {
            if let Event::GgttUpdate { index, old, new } = ev {
                mig.shadow_event(ShadowEvent::GgttWrite {
                    index: index as u64,
                    old,
                    new,
                });
            }
        });
        log.replay(mig);
        match res {
            Ok(wl) => {
                dev_info!(
                    self.dev,
                    "workload {} started at guest {:#x}, GGTT {:#x}\n",
                    wl.profile_name(),
                    params.base,
                    wl.gbase()
                );
                inner.workload = Some((wl, scratch));
            }
            Err(e) => dev_err!(self.dev, "workload: setup failed: {:?}\n", e),
        }
    }

    /// One tick of the synthetic workload; returns the delay to the next
    /// tick in ms, or `None` to stop ticking.
    pub(crate) fn workload_tick(&self) -> Option<u32> {
        let mut guard = self.inner.lock();
        if !guard.open {
            return None;
        }
        if guard.sim.is_quiesced() {
            // No guest write while quiesced: the stop-copy re-hash has
            // read the pages already, a write now would be lost. A set-up
            // waits until the vGPU runs again.
            return match &guard.workload {
                Some((wl, _)) => Some(wl.frame_interval_ms()),
                None if guard.replay.is_some() || guard.replay_start.is_some() => Some(10),
                None => guard.workload_start.as_ref().map(|_| 10),
            };
        }
        self.workload_setup(&mut guard);
        self.replay_setup(&mut guard);
        if guard.replay.is_some() {
            return self.replay_tick(&mut guard);
        }
        let mut dma = DmaMem::new(self);
        let Inner {
            sim, workload, mig, ..
        } = &mut *guard;
        let (wl, scratch) = workload.as_mut()?;
        // The ring, batch and context image the stand-in guest driver
        // writes go through the device (VFIO DMA), unseen by the VMM:
        // recorded in the write set like the commands' own writes.
        let mut mem = RecordingMem {
            mem: &mut dma,
            sink: mig,
        };
        match wl.submit_frame(sim, &mut mem, scratch) {
            Ok(()) => self.vdev.kick_exec(),
            Err(e) => dev_dbg!(self.dev, "workload: frame skipped: {:?}\n", e),
        }
        Some(wl.frame_interval_ms())
    }
}

/// The sim vGPU as the migration layer drives it.
impl MigDevice for Shared {
    type Prov = Sim;
    type Mem<'a> = DmaMem<'a>;
    type InPlace<'a> = InPlace<'a>;

    /// Guest and workload GGTT writes reach the migration through
    /// `handle_event()` and `workload_setup()`; a reset, which clears the
    /// GGTT silently, ends the migration first.
    fn ggtt_writes_seen(&self) -> bool {
        true
    }

    fn dev(&self) -> &kernel::device::Device {
        &self.dev
    }

    fn with_locked<R>(&self, f: impl FnOnce(&mut Locked<'_, Self::Prov>) -> R) -> R {
        let mut guard = self.inner.lock();
        let Inner { sim, mig, open, .. } = &mut *guard;
        f(&mut Locked {
            prov: sim,
            mig,
            open: *open,
        })
    }

    fn read_guest(&self, gpa: u64, buf: &mut [u8]) -> Result {
        self.vdev.dma_read(gpa, buf)
    }

    /// Pages pinned a run at a time and hashed where they are
    /// ([`crate::migration::pin`]); `dma_unmap` waits on [`Shared::pins`].
    fn in_place(&self, open: bool) -> Option<InPlace<'_>> {
        // SAFETY: the caller holds the vGPU lock and the device is open
        // (`open`, read under that lock): `close_device` takes the lock to
        // mark it closed, so it stays open while the caller's scan runs;
        // `pins` is the window `gmig_rs_dma_unmap()` waits on.
        open.then(|| unsafe { InPlace::new(self.vdev, &self.pins) })
    }

    fn mem(&self) -> DmaMem<'_> {
        DmaMem::new(self)
    }

    /// The streamer yields after its running context instead of running
    /// the queued ones first; [`MigDevice::arc_end`] kicks it again if the
    /// vGPU still runs (an arc that quiesces leaves them queued: they
    /// migrate).
    fn arc_begin(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    fn arc_end(&self, l: &Locked<'_, Self::Prov>) {
        self.stopping.store(false, Ordering::Release);
        if l.open && !l.prov.is_quiesced() && Provider::pending_workloads(&*l.prov) > 0 {
            self.vdev.kick_exec();
        }
    }

    /// The restore patched the pending contexts' graphics addresses.
    fn restored_elsewhere(&self, src: u64, dst: u64, remapped: u64) {
        dev_ratelimited!(
            dev_info,
            &self.dev,
            "restored from GGTT base {:#x} at {:#x}: {} graphics addresses remapped\n",
            src,
            dst,
            remapped
        );
    }
}

/// The vGPU behind a pointer the shim holds, borrowed for the length of
/// one call from C (the shim keeps it as `struct gmig_vgpu *`).
///
/// # Safety
///
/// `vgpu` came from `gmig_rs_vgpu_create()`, and `gmig_rs_vgpu_destroy()`
/// does not run before `'a` ends: the shim destroys a vGPU from its release
/// only, after every other entry point for it has returned.
pub(crate) unsafe fn vgpu_ref<'a>(vgpu: *mut c_void) -> &'a Vgpu {
    // SAFETY: `vgpu` came from `into_foreign()` in `gmig_rs_vgpu_create()`
    // and `from_foreign()` (in `gmig_rs_vgpu_destroy()`) comes after `'a`
    // (the function's contract).
    unsafe { <KBox<Vgpu> as ForeignOwnable>::borrow(vgpu) }
}

/// Creates the vGPU of a new mdev of type `type_index`.
pub(crate) fn create(vdev: Vdev, type_index: usize, name: &CStr) -> Result<KBox<Vgpu>> {
    let ty = TYPES.get(type_index).ok_or(EINVAL)?;
    let dev = vdev.device();
    let entries = usize::try_from(ty.ggtt_size / 4096).map_err(|_| EINVAL)?;
    let storage = KVVec::from_elem(0u64, entries, GFP_KERNEL)?;
    let contexts = KVVec::from_elem(CtxSlot::EMPTY, CONTEXT_SLOTS, GFP_KERNEL)?;

    let mut g = GLOBAL.lock();
    if g.instances.get(type_index).copied().unwrap_or(u32::MAX) >= ty.max_instances {
        return Err(ENOSPC);
    }
    let base = g.slots.alloc(ty.ggtt_size).ok_or(ENOSPC)?;
    let partition = Partition {
        base,
        size: ty.ggtt_size,
    };
    let root = crate::debugfs_root();
    if let Some(n) = g.instances.get_mut(type_index) {
        *n += 1;
    }
    drop(g);

    let release = || {
        let mut g = GLOBAL.lock();
        g.slots.free(base, ty.ggtt_size);
        if let Some(n) = g.instances.get_mut(type_index) {
            *n = n.saturating_sub(1);
        }
    };
    let dev_for_shared = dev.clone();
    let built = (|| -> Result<KBox<Vgpu>> {
        let sim = SimVgpu::new(ty, partition, storage)
            .ok_or(EINVAL)?
            .with_contexts(contexts);
        let shared = Arc::pin_init(
            try_pin_init!(Shared {
                vdev,
                dev: dev_for_shared,
                partition,
                type_index,
                stats: Stats::new(),
                faults: AtomicU64::new(0),
                stopping: AtomicBool::new(false),
                pins <- PinWindow::new(),
                inner <- kernel::new_mutex!(Inner {
                    sim,
                    open: false,
                    workload: None,
                    workload_start: None,
                    replay_file: KVVec::new(),
                    replay: None,
                    replay_start: None,
                    mig: Migration::new(),
                }, "Vgpu::inner"),
            }),
            GFP_KERNEL,
        )?;
        let dir = root
            .as_ref()
            .map_or_else(|| Dir::new(name), |r| r.subdir(name));
        let stats = KBox::pin_init(
            dir.read_callback_file(c"stats", shared.clone(), &|s: &Arc<Shared>, f| {
                s.show_stats(f)
            }),
            GFP_KERNEL,
        )?;
        let workload = KBox::pin_init(
            dir.read_write_callback_file(
                c"workload",
                shared.clone(),
                &|s: &Arc<Shared>, f| s.show_workload(f),
                &|s: &Arc<Shared>, r| s.write_workload(r),
            ),
            GFP_KERNEL,
        )?;
        let replay = KBox::pin_init(
            dir.write_binary_file(c"replay", ReplayFile(shared.clone())),
            GFP_KERNEL,
        )?;
        Ok(KBox::new(
            Vgpu {
                _stats: stats,
                _workload: workload,
                _replay: replay,
                _dir: dir,
                shared,
            },
            GFP_KERNEL,
        )?)
    })();
    if built.is_err() {
        release();
    }
    let vgpu = built?;
    dev_info!(
        dev,
        "{} vGPU created, GGTT partition {:#x}+{:#x}\n",
        ty.name,
        partition.base,
        partition.size
    );
    Ok(vgpu)
}

impl Drop for Vgpu {
    fn drop(&mut self) {
        let s = &self.shared;
        let mut g = GLOBAL.lock();
        if let Some(ty) = TYPES.get(s.type_index) {
            g.slots.free(s.partition.base, ty.ggtt_size);
        }
        if let Some(n) = g.instances.get_mut(s.type_index) {
            *n = n.saturating_sub(1);
        }
    }
}

/// The sim's side of the shim's entry points ([`crate::abi`]).
impl Shared {
    /// A VFIO user opened the device.
    pub(crate) fn open(&self) {
        let mut inner = self.inner.lock();
        inner.sim.reset();
        inner.open = true;
        // A new VM: what the last user's vGPU did (faults while its memory
        // went away under a killed QEMU, say) is not this one's.
        self.stats.clear();
        self.faults.store(0, Ordering::Relaxed);
    }

    /// The VFIO user closed the device: stop the workload and the
    /// streamer; the next user finds a freshly reset vGPU.
    pub(crate) fn close(&self) {
        let mut inner = self.inner.lock();
        inner.open = false;
        inner.stop_workloads();
        inner.sim.reset();
    }

    /// Size of VFIO region `index` (0 if the region does not exist).
    pub(crate) fn region_size(&self, index: u32) -> u64 {
        self.inner.lock().sim.region_size(index).unwrap_or(0)
    }

    /// One access of `data.len()` (1, 2, 4 or 8) bytes to VFIO region
    /// `index`; a refused one is counted.
    pub(crate) fn region_rw(&self, index: u32, off: u64, data: &mut [u8], write: bool) -> Result {
        let mut inner = self.inner.lock();
        let res = if write {
            inner
                .sim
                .region_write(index, off, data)
                .map(|ev| self.handle_event(&mut inner, ev))
                .map_err(|_| EINVAL)
        } else {
            inner.sim.region_read(index, off, data).map_err(|_| EINVAL)
        };
        if res.is_err() {
            self.stats.bad_accesses.fetch_add(1, Ordering::Relaxed);
        }
        res
    }

    /// VFIO_DEVICE_RESET.
    pub(crate) fn reset(&self) {
        let mut inner = self.inner.lock();
        inner.sim.reset();
        // A reset device has no workload: its GGTT mappings are gone.
        inner.stop_workloads();
    }
}

/// Number of vGPU types.
pub(crate) fn type_count() -> usize {
    TYPES.len()
}

/// Sysfs name and description of type `index`.
pub(crate) fn type_info(index: usize) -> Option<(&'static str, &'static str)> {
    TYPES.get(index).map(|t| (t.name, t.description))
}

/// `available_instances` of type `index`.
pub(crate) fn type_available(index: usize) -> u32 {
    let Some(ty) = TYPES.get(index) else {
        return 0;
    };
    let g = GLOBAL.lock();
    let by_count = ty
        .max_instances
        .saturating_sub(g.instances.get(index).copied().unwrap_or(0));
    by_count.min(g.slots.available(ty.ggtt_size))
}

// SPDX-License-Identifier: GPL-2.0

//! The sim vGPU: the device model and what its lock protects ([`Inner`]),
//! the part its debugfs files and work items share ([`Shared`]), and what
//! its VFIO device (`vfio.rs`) asks of it.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use kernel::{
    prelude::*,
    sync::{aref::ARef, Mutex},
};

use super::stats::Stats;
use super::vdev::Vdev;
use crate::{
    gmig_core::{
        gtt::Partition,
        provider::ShadowEvent,
        sim::{
            exec::CtxSlot,
            replay::ReplayRun,
            vgpu::{Event, SimVgpu, TYPES},
            workload::{Params as WorkloadParams, Workload},
        },
    },
    migration::{pin::PinWindow, Migration},
};

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

impl Inner {
    /// Stops the synthetic workload and the replay (the replay file stays).
    pub(super) fn stop_workloads(&mut self) {
        self.workload = None;
        self.workload_start = None;
        self.replay = None;
        self.replay_start = None;
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

impl Shared {
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
    pub(super) fn show_stats(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
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
}

/// What the sim's VFIO device (`super::vfio`) asks of the vGPU.
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

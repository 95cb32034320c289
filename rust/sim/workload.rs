// SPDX-License-Identifier: GPL-2.0

//! The synthetic workload a vGPU runs for tests and benchmarks: debugfs
//! `workload`, its set-up and its ticks in the device's work item.

use kernel::{prelude::*, uaccess::UserSliceReader};

use super::{
    device::{Inner, Shared},
    mem::DmaMem,
};
use crate::gmig_core::{
    provider::ShadowEvent,
    sim::{
        vgpu::Event,
        workload::{Command as WorkloadCommand, Workload},
    },
    writeset::{FrameLog, RecordingMem},
};

impl Shared {
    /// debugfs `workload` read: state and profiles.
    pub(super) fn show_workload(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
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
    pub(super) fn write_workload(&self, reader: &mut UserSliceReader) -> Result {
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

// SPDX-License-Identifier: GPL-2.0

//! A recorded workload replayed on a vGPU: debugfs `replay` (the replay
//! file), the replay's set-up and its ticks in the device's work item.

use kernel::{debugfs::BinaryReader, fs::file, prelude::*, sync::Arc, uaccess::UserSliceReader};

use super::{
    device::{Inner, Shared},
    mem::DmaMem,
};
use crate::{
    gmig_core::{
        provider::{ShadowEvent, MAX_EVENT_PAGES},
        sim::{
            replay::{window_pages, witness_words, ReplayRun, Tick},
            vgpu::Event,
        },
        writeset::RecordingMem,
    },
    log::dev_ratelimited,
};

/// Largest replay file the debugfs `replay` file takes (kernel memory,
/// charged to the writer).
const MAX_REPLAY_FILE: usize = 64 << 20;

/// The debugfs `replay` file's data: the vGPU it loads.
pub(crate) struct ReplayFile(pub(super) Arc<Shared>);

impl BinaryReader for ReplayFile {
    fn read_from_slice(
        &self,
        reader: &mut UserSliceReader,
        offset: &mut file::Offset,
    ) -> Result<usize> {
        self.0.write_replay(reader, offset)
    }
}

impl Shared {
    /// Sets up a requested replay; runs in the worker.
    pub(super) fn replay_setup(&self, inner: &mut Inner) {
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
    pub(super) fn replay_tick(&self, inner: &mut Inner) -> Option<u32> {
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
}

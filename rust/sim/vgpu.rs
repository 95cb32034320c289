// SPDX-License-Identifier: GPL-2.0

//! The vGPU of each gmig mdev ([`Vgpu`]): its
//! creation, with its debugfs directory and GGTT partition, and its end.

use core::sync::atomic::{AtomicBool, AtomicU64};
use kernel::{
    debugfs::{Dir, File},
    prelude::*,
    str::CStr,
    sync::Arc,
};

use super::{
    device::{Inner, Shared},
    parent::GLOBAL,
    replay::ReplayFile,
    stats::Stats,
    vdev::Vdev,
};
use crate::{
    gmig_core::{
        gtt::Partition,
        sim::{
            exec::{CtxSlot, CONTEXT_SLOTS},
            vgpu::{SimVgpu, TYPES},
        },
    },
    migration::{pin::PinWindow, Migration},
};

/// The vGPU of one gmig mdev, held by its [`super::vfio::SimVdev`].
pub(crate) struct Vgpu {
    // Dropped in declaration order: files before their directory.
    _stats: Pin<KBox<File<Arc<Shared>>>>,
    _workload: Pin<KBox<File<Arc<Shared>>>>,
    _replay: Pin<KBox<File<ReplayFile>>>,
    _dir: Dir,
    pub(crate) shared: Arc<Shared>,
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

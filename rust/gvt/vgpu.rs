// SPDX-License-Identifier: GPL-2.0

//! A GVT-g vGPU made migratable when kvmgt creates it, and let go when
//! kvmgt destroys it.

use core::sync::atomic::{AtomicU64, Ordering};
use kernel::{
    device::Device,
    new_mutex,
    prelude::*,
    rbtree::RBTree,
    str::CString,
    sync::{aref::ARef, Arc},
};

use super::{
    companion::{self, IntelVgpu},
    device::{GvtDev, GvtInner, InnerLock},
    hooks::{new_writes, Hooks},
    host::Host,
    kvmgt::VgpuPtr,
    status::{bump, COUNTERS},
};
use crate::{
    gmig_core::gvt::{AuditMap, GvtLayout, GvtVgpu, StateSizes},
    migration::{
        vfio::{Registered, Registry},
        Migration,
    },
    vfio::{self, bindings as b},
};

impl GvtDev {
    /// kvmgt created a vGPU, whose vfio_device is `vdev` and graphics
    /// memory `l`: gmig's object for it, or an error (kvmgt then fails the
    /// creation) if its layout is invalid or memory is short.
    ///
    /// # Safety
    ///
    /// `vgpu` is kvmgt's live `struct intel_vgpu`, and `vdev` its
    /// vfio_device; both outlive the returned object (kvmgt calls
    /// `vgpu_destroy` before it frees them).
    pub(super) unsafe fn create(
        vgpu: *mut IntelVgpu,
        vdev: &vfio::device::Device,
        l: &b::intel_gvt_vgpu_layout,
    ) -> Result<Arc<Self>> {
        let k = companion::symbols().ok_or(ENODEV)?;
        let size = |part| {
            // SAFETY: a live vGPU (the function's contract); NULL and 0
            // ask for the part's size.
            let n = unsafe { k.save_state(vgpu, part, core::ptr::null_mut(), 0) };
            usize::try_from(n).map_err(|_| Error::from_errno(n as i32))
        };
        let sizes = StateSizes {
            vregs: size(b::intel_gvt_state_INTEL_GVT_STATE_VREGS)?,
            execlist: size(b::intel_gvt_state_INTEL_GVT_STATE_EXECLIST)?,
        };
        // SAFETY: the vGPU and the vfio_device's parent device outlive the
        // object (the function's contract).
        let res = unsafe {
            create(
                VgpuPtr { vgpu, k },
                vdev.dev(),
                (l.aperture_base, l.aperture_size),
                (l.hidden_base, l.hidden_size),
                l.fence_count,
                l.id,
                sizes,
            )
        };
        match res {
            Ok(d) => {
                bump(&COUNTERS.vgpus, 1);
                Ok(d)
            }
            Err(e) => {
                pr_warn!("gvt: vGPU {}: not made migratable: {e:?}\n", l.id);
                Err(e)
            }
        }
    }

    /// kvmgt destroyed a vGPU ([`GvtDev::create`]).
    pub(super) fn destroyed() {
        COUNTERS
            .vgpus
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1))
            .ok();
    }
}

kernel::sync::global_lock! {
    // SAFETY: initialised in the module initialiser (`gvt::init()`) before
    // gmig registers with kvmgt, so before any other use.
    unsafe(uninit) static FRONTS: Mutex<Registry<GvtDev>> = Registry::new();
}

impl Registered for GvtDev {
    fn with_registry<R>(f: impl FnOnce(&mut Registry<Self>) -> R) -> R {
        f(&mut FRONTS.lock())
    }
}

/// Prepares the registry; called once from the module initialiser.
pub(crate) fn init() {
    // SAFETY: called exactly once, before gmig registers with kvmgt.
    unsafe { FRONTS.init() };
}

/// # Safety
///
/// `vgpu` and `dev` live beyond the returned object.
unsafe fn create(
    vgpu: VgpuPtr,
    dev: &Device,
    aperture: (u64, u64),
    hidden: (u64, u64),
    fences: u32,
    id: u32,
    sizes: StateSizes,
) -> Result<Arc<GvtDev>> {
    let Some(layout) = GvtLayout::new(aperture, hidden, fences) else {
        pr_warn!(
            "gvt: vGPU {id}: invalid layout (aperture {:#x}+{:#x}, hidden {:#x}+{:#x}, {fences} fences)\n",
            aperture.0,
            aperture.1,
            hidden.0,
            hidden.1
        );
        return Err(EINVAL);
    };
    let dev: ARef<Device> = dev.into();
    let writes = KBox::new(new_writes(layout)?, GFP_KERNEL)?;
    let hooks = Arc::pin_init(
        new_mutex!(Hooks {
            pinned: RBTree::new(),
            audit: AuditMap::identity(layout),
            logging: false,
            reachable: KVVec::new(),
            overflow: false,
            writes,
            pins_lost: 0,
        }),
        GFP_KERNEL,
    )?;
    let host = Host {
        vgpu,
        hooks: hooks.clone(),
    };
    let prov = GvtVgpu::new(host, layout, sizes, 0).ok_or(EINVAL)?;
    let status_regs = Arc::pin_init(new_mutex!(KVVec::new()), GFP_KERNEL)?;
    let inner = Arc::pin_init(
        new_mutex!(GvtInner {
            prov,
            mig: Migration::new(),
        }),
        GFP_KERNEL,
    )?;
    // Statistics like a sim vGPU's; a vGPU without them still migrates.
    let dir = CString::try_from_fmt(fmt!("gvt-vgpu{id}"))
        .ok()
        .and_then(|name| Some(crate::debugfs_root()?.subdir(&name)));
    let stats = dir.as_ref().and_then(|d| {
        KBox::pin_init(
            d.read_callback_file(c"stats", inner.clone(), &|s: &InnerLock, f| {
                s.lock().show_stats(f)
            }),
            GFP_KERNEL,
        )
        .ok()
    });
    dev_info!(
        dev,
        "gvt: vGPU {id} is migratable (aperture {:#x}+{:#x}, hidden {:#x}+{:#x}, {fences} fences)\n",
        layout.aperture.base,
        layout.aperture.size,
        layout.hidden.base,
        layout.hidden.size
    );
    Ok(Arc::new(
        GvtDev {
            _stats: stats,
            _dir: dir,
            vgpu,
            dev,
            id,
            layout,
            inner,
            hooks,
            status_regs,
            vregs_size: sizes.vregs,
            refused: AtomicU64::new(0),
        },
        GFP_KERNEL,
    )?)
}

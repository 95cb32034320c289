// SPDX-License-Identifier: GPL-2.0

//! A GVT-g vGPU made migratable when kvmgt creates it, and let go when
//! kvmgt destroys it.

use core::sync::atomic::{AtomicU64, Ordering};
use kernel::{
    bindings, device::Device, ffi::c_void, new_mutex, prelude::*, rbtree::RBTree, str::CString,
    sync::Arc, types::ForeignOwnable,
};

use super::{
    device::{GvtDev, GvtInner, InnerLock},
    hooks::{new_writes, Hooks},
    host::Host,
    kvmgt::{IntelVgpu, VgpuPtr},
    status::{bump, COUNTERS},
};
use crate::{
    gmig_core::gvt::{AuditMap, GvtLayout, GvtVgpu, StateSizes},
    migration::Migration,
};

/// kvmgt created a vGPU: returns gmig's object for it, or NULL (kvmgt then
/// fails the creation) if its layout is invalid or memory is short.
///
/// # Safety
///
/// `vgpu` is NULL or kvmgt's live `struct intel_vgpu`, and `dev` NULL or its
/// live parent device; both outlive the returned object (kvmgt calls
/// `gmig_rs_gvt_vgpu_destroy()` before it frees them).
#[no_mangle]
unsafe extern "C" fn gmig_rs_gvt_vgpu_create(
    vgpu: *mut IntelVgpu,
    dev: *mut bindings::device,
    aperture_base: u64,
    aperture_size: u64,
    hidden_base: u64,
    hidden_size: u64,
    fences: u32,
    id: u32,
    vregs_size: usize,
    execlist_size: usize,
) -> *mut c_void {
    // SAFETY: the pointers are NULL or live beyond the object (the
    // function's contract), as `create()` requires.
    let res = unsafe {
        create(
            vgpu,
            dev,
            (aperture_base, aperture_size),
            (hidden_base, hidden_size),
            fences,
            id,
            StateSizes {
                vregs: vregs_size,
                execlist: execlist_size,
            },
        )
    };
    match res {
        Ok(b) => {
            bump(&COUNTERS.vgpus, 1);
            b.into_foreign()
        }
        Err(e) => {
            pr_warn!("gvt: vGPU {id}: not made migratable: {e:?}\n");
            core::ptr::null_mut()
        }
    }
}

/// # Safety
///
/// `vgpu` and `dev` are NULL or live beyond the returned object.
unsafe fn create(
    vgpu: *mut IntelVgpu,
    dev: *mut bindings::device,
    aperture: (u64, u64),
    hidden: (u64, u64),
    fences: u32,
    id: u32,
    sizes: StateSizes,
) -> Result<KBox<GvtDev>> {
    if vgpu.is_null() || dev.is_null() {
        return Err(EINVAL);
    }
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
    // SAFETY: `dev` is non-null, the vfio_device's parent device, which
    // kvmgt keeps alive while the vGPU exists (the function's contract);
    // `get_device()` takes a reference.
    let dev = unsafe { Device::get_device(dev) };
    let vgpu = VgpuPtr(vgpu);
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
    Ok(KBox::new(
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

/// kvmgt destroys a vGPU.
///
/// # Safety
///
/// `gg` came from `gmig_rs_gvt_vgpu_create()` and is not used after this.
#[no_mangle]
unsafe extern "C" fn gmig_rs_gvt_vgpu_destroy(gg: *mut c_void) {
    if gg.is_null() {
        return;
    }
    // SAFETY: `gg` came from `into_foreign()` in
    // `gmig_rs_gvt_vgpu_create()`; ownership returns here once, after every
    // borrow ended (caller contract).
    drop(unsafe { <KBox<GvtDev> as ForeignOwnable>::from_foreign(gg) });
    COUNTERS
        .vgpus
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1))
        .ok();
}

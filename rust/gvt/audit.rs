// SPDX-License-Identifier: GPL-2.0

//! kvmgt's address hooks after a restore elsewhere: the command scanner
//! hook (graphics addresses of a command moved, its writes recorded) and
//! the `map_gma` hook (addresses the guest hands kvmgt outside commands).

use core::sync::atomic::Ordering;
use kernel::{ffi::c_int, ffi::c_void, prelude::*};

use super::{
    device::device_ref,
    status::{bump, COUNTERS},
};
use crate::{
    gmig_core::{cmd::Mode, gvt},
    migration::MigDevice,
};

#[cfg(doc)]
use crate::gmig_core::gvt::{AuditMap, GvtWrites};

/// The command scanner hook: rewrites GGTT addresses of the command at
/// `cmd` (`len` dwords of GVT-g's shadow copy, in a buffer in the GGTT if
/// `ggtt`) in place, then records what it may write ([`GvtWrites`]).
/// Returns 0, or -EFAULT to fail the scan.
///
/// # Safety
///
/// `gg` came from `gmig_rs_gvt_vgpu_create()` and is not destroyed yet;
/// `cmd` is valid for reads and writes of `len` dwords, and nothing else
/// accesses them during the call.
#[no_mangle]
unsafe extern "C" fn gmig_rs_gvt_scan_cmd(
    gg: *mut c_void,
    cmd: *mut u32,
    len: u32,
    ggtt: bool,
) -> c_int {
    // SAFETY: `gg` is live for this call (the function's contract).
    let g = unsafe { device_ref(gg) };
    let Ok(n) = usize::try_from(len) else {
        return EFAULT.to_errno();
    };
    if cmd.is_null() || n == 0 {
        return EFAULT.to_errno();
    }
    // SAFETY: `cmd` is non-null and valid for `n` dwords of exclusive
    // access for the duration of the call (caller contract).
    let buf = unsafe { core::slice::from_raw_parts_mut(cmd, n) };
    let audit = g.hooks.lock().audit;
    // Under execlists, blits go through the GGTT and 3D state through the
    // context's PPGTT; commands with an explicit bit use it.
    match gvt::patch_command(buf, Mode::EXECLIST, &audit) {
        Ok(k) => {
            bump(
                &COUNTERS.addrs_patched,
                u64::try_from(k).unwrap_or(u64::MAX),
            );
            // The addresses the GPU will use, translated through this
            // vGPU's GGTT or the workload's PPGTT, whose tables and
            // state are read in guest memory now (kvmgt's rw_gpa takes
            // none of GVT-g's locks).
            g.hooks.lock().writes.scanned(buf, ggtt, &mut g.mem());
            0
        }
        Err(e) => {
            bump(&COUNTERS.cmds_refused, 1);
            let k = g.refused.fetch_add(1, Ordering::Relaxed) + 1;
            if k.is_power_of_two() {
                dev_warn!(
                    g.dev,
                    "gvt: vGPU {}: command {:#x} refused after migration: {:?} ({} so far)\n",
                    g.id,
                    buf[0],
                    e,
                    k
                );
            }
            EFAULT.to_errno()
        }
    }
}

/// kvmgt's `map_gma` hook: moves the guest's graphics address at `gma`
/// (`size` bytes, taken from outside a command buffer: a context
/// descriptor, a ring or context buffer start, a GGTT MMIO access) to this
/// vGPU's graphics memory ([`AuditMap::map_guest`]). Returns 0, or
/// -EFAULT if the address is none of the guest's.
///
/// # Safety
///
/// `gg` came from `gmig_rs_gvt_vgpu_create()` and is not destroyed yet;
/// `gma` is valid for reads and writes for the duration of the call.
#[no_mangle]
unsafe extern "C" fn gmig_rs_gvt_map_gma(gg: *mut c_void, gma: *mut u64, size: u64) -> c_int {
    // SAFETY: `gg` is live for this call (the function's contract).
    let g = unsafe { device_ref(gg) };
    if gma.is_null() {
        return EFAULT.to_errno();
    }
    // SAFETY: `gma` is non-null and valid for the call (caller contract).
    let from = unsafe { *gma };
    let audit = g.hooks.lock().audit;
    match audit.map_guest(from, size) {
        Ok(to) => {
            if to != from {
                bump(&COUNTERS.gmas_mapped, 1);
                // SAFETY: as above.
                unsafe { *gma = to };
            }
            0
        }
        Err(_) => {
            bump(&COUNTERS.gmas_refused, 1);
            EFAULT.to_errno()
        }
    }
}

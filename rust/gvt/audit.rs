// SPDX-License-Identifier: GPL-2.0

//! kvmgt's address hooks after a restore elsewhere: the command scanner
//! hook (graphics addresses of a command moved, its writes recorded) and
//! the `map_gma` hook (addresses the guest hands kvmgt outside commands).

use core::sync::atomic::Ordering;
use kernel::prelude::*;

use super::{
    device::GvtDev,
    status::{bump, COUNTERS},
};
use crate::{
    gmig_core::{cmd::Mode, gvt},
    migration::MigDevice,
};

#[cfg(doc)]
use crate::gmig_core::gvt::{AuditMap, GvtWrites};

impl GvtDev {
    /// The command scanner hook: rewrites GGTT addresses of the command in
    /// `buf` (GVT-g's shadow copy, in a buffer in the GGTT if `ggtt`) in
    /// place, then records what it may write ([`GvtWrites`]). -EFAULT fails
    /// the scan.
    pub(super) fn scan_cmd(&self, buf: &mut [u32], ggtt: bool) -> Result {
        let audit = self.hooks.lock().audit;
        // Under execlists, blits go through the GGTT and 3D state through
        // the context's PPGTT; commands with an explicit bit use it.
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
                self.hooks.lock().writes.scanned(buf, ggtt, &mut self.mem());
                Ok(())
            }
            Err(e) => {
                bump(&COUNTERS.cmds_refused, 1);
                let k = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
                if k.is_power_of_two() {
                    dev_warn!(
                        self.dev,
                        "gvt: vGPU {}: command {:#x} refused after migration: {:?} ({} so far)\n",
                        self.id,
                        buf[0],
                        e,
                        k
                    );
                }
                Err(EFAULT)
            }
        }
    }

    /// kvmgt's `map_gma` hook: moves the guest's graphics address `gma`
    /// (`size` bytes, taken from outside a command buffer: a context
    /// descriptor, a ring or context buffer start, a GGTT MMIO access) to
    /// this vGPU's graphics memory ([`AuditMap::map_guest`]). -EFAULT if
    /// the address is none of the guest's.
    pub(super) fn map_gma(&self, gma: &mut u64, size: u64) -> Result {
        let audit = self.hooks.lock().audit;
        match audit.map_guest(*gma, size) {
            Ok(to) => {
                if to != *gma {
                    bump(&COUNTERS.gmas_mapped, 1);
                    *gma = to;
                }
                Ok(())
            }
            Err(_) => {
                bump(&COUNTERS.gmas_refused, 1);
                Err(EFAULT)
            }
        }
    }
}

// SPDX-License-Identifier: GPL-2.0

//! The sim vGPU as the migration layer drives it: [`MigDevice`] for
//! [`Shared`].

use core::sync::atomic::Ordering;
use kernel::prelude::*;

use super::{
    device::{Inner, Shared, Sim},
    mem::DmaMem,
};
use crate::{
    gmig_core::provider::Provider,
    log::dev_ratelimited,
    migration::{pin::InPlace, Locked, MigDevice},
};

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
        // `pins` is the window the device's `dma_unmap` waits on.
        open.then(|| unsafe { InPlace::new(self.vdev.vfio(), &self.pins) })
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

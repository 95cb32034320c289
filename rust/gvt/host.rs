// SPDX-License-Identifier: GPL-2.0

//! kvmgt's services and the hooks' record as the gvt provider's host
//! ([`Host`]: what [`GvtVgpu`] runs on).

use kernel::{
    sync::{Arc, Mutex},
    time::{delay::fsleep, Delta, Instant, Monotonic},
};

use super::{hooks::Hooks, kvmgt::VgpuPtr};
use crate::gmig_core::gvt::{AuditMap, GvtHost, Part, PendingList, StateSource};

#[cfg(doc)]
use crate::gmig_core::gvt::{self, GvtVgpu};

/// How long a stop lets a flooded workload queue drain, at most (in the
/// device downtime: only a guest that flooded the ELSP pays it).
const DRAIN_MS: i64 = 1000;

/// kvmgt's services and the hooks' record: what [`GvtVgpu`] runs on.
pub(crate) struct Host {
    pub(super) vgpu: VgpuPtr,
    pub(super) hooks: Arc<Mutex<Hooks>>,
}

impl StateSource for Host {
    fn save(&self, part: Part, out: &mut [u8]) -> bool {
        self.vgpu.save(part, out).is_ok()
    }

    /// More than an image holds fails the save ([`gvt::write_image`]).
    fn pending_count(&self) -> usize {
        self.vgpu.pending_count().unwrap_or(usize::MAX)
    }

    fn save_pending(&self, out: &mut [u8]) -> bool {
        self.vgpu.save_pending(out).is_ok()
    }
}

impl GvtHost for Host {
    fn stop_schedule(&mut self) {
        self.vgpu.stop_schedule();
    }

    fn start_schedule(&mut self) {
        self.vgpu.start_schedule();
    }

    /// kvmgt checks the fence ranges through `map_gma`: the hooks answer
    /// with `map` for the length of the check.
    fn check(&mut self, part: Part, data: &[u8], map: &AuditMap) -> bool {
        let old = core::mem::replace(&mut self.hooks.lock().audit, *map);
        let ok = self.vgpu.check(part, data).is_ok();
        self.hooks.lock().audit = old;
        ok
    }

    /// Polls kvmgt's count every millisecond, for [`DRAIN_MS`] at most
    /// (a guest flooded the ELSP; its vCPUs are stopped). kvmgt's
    /// scheduler thread runs the workloads; none of its hooks needs the
    /// migration's vGPU lock, which the caller holds.
    fn wait_pending(&mut self, cap: usize) -> usize {
        let start = Instant::<Monotonic>::now();
        loop {
            let Ok(n) = self.vgpu.pending_count() else {
                return usize::MAX;
            };
            if n <= cap || start.elapsed().as_millis() >= DRAIN_MS {
                return n;
            }
            fsleep(Delta::from_millis(1));
        }
    }

    fn restore(&mut self, part: Part, data: &[u8]) -> bool {
        let ok = self.vgpu.restore(part, data).is_ok();
        if ok && part == Part::Ggtt {
            self.hooks.lock().writes.restored(data);
        }
        ok
    }

    fn vgpu_reset(&mut self) {
        self.hooks.lock().writes.reset();
    }

    fn for_each_pinned(&self, f: &mut dyn FnMut(u64, u64)) {
        for (gfn, pages) in self.hooks.lock().pinned.iter() {
            f(*gfn, *pages);
        }
    }

    fn set_audit(&mut self, map: AuditMap) {
        self.hooks.lock().audit = map;
    }

    fn resubmit(&mut self, pending: &PendingList<'_>) -> bool {
        self.vgpu.resubmit(pending).is_ok()
    }
}

// SPDX-License-Identifier: GPL-2.0

//! gmig's object for one GVT-g vGPU ([`GvtDev`]): its lock and what it
//! protects, and the vGPU as the migration layer drives it
//! ([`MigDevice`]).

use core::sync::atomic::AtomicU64;
use kernel::{
    alloc::flags::GFP_KERNEL_ACCOUNT,
    debugfs::{Dir, File},
    device::Device,
    prelude::*,
    sync::{aref::ARef, Arc, Mutex, MutexGuard},
};

use super::{
    hooks::{reg_at, Hooks, MAX_OUTSIDE_RANGES},
    host::Host,
    kvmgt::VgpuPtr,
    lent::Lent,
    mem::GvtMem,
    status::{bump, COUNTERS},
};
use crate::{
    gmig_core::{
        gvt::{self, GvtLayout, GvtVgpu, Part},
        pageread::PinnedCounts,
        provider::{Provider, ShadowEvent},
        writeset::WriteSink,
    },
    log::dev_ratelimited,
    migration::{Locked, MigDevice, Migration},
};

/// The vGPU lock of a GVT-g vGPU and what it protects.
pub(super) type InnerLock = Arc<Mutex<GvtInner>>;

/// What [`GvtDev::inner`] protects.
pub(super) struct GvtInner {
    pub(super) prov: GvtVgpu<Host>,
    pub(super) mig: Migration,
}

impl GvtInner {
    /// debugfs `gmig/gvt-vgpu<id>/stats`: one `key: value` per line.
    pub(super) fn show_stats(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let l = self.prov.layout();
        writeln!(f, "type: gvt-g")?;
        writeln!(f, "aperture_base: {:#x}", l.aperture.base)?;
        writeln!(f, "aperture_size: {:#x}", l.aperture.size)?;
        writeln!(f, "hidden_base: {:#x}", l.hidden.base)?;
        writeln!(f, "hidden_size: {:#x}", l.hidden.size)?;
        writeln!(f, "fences: {}", l.fences)?;
        writeln!(f, "quiesced: {}", u8::from(self.prov.is_quiesced()))?;
        self.mig.show_stats(f)
    }
}

/// gmig's object for one GVT-g vGPU.
pub(crate) struct GvtDev {
    // Dropped in declaration order: the file before its directory.
    pub(super) _stats: Option<Pin<KBox<File<InnerLock>>>>,
    pub(super) _dir: Option<Dir>,
    pub(super) vgpu: VgpuPtr,
    pub(super) dev: ARef<Device>,
    /// kvmgt's vGPU id, for messages.
    pub(super) id: u32,
    pub(super) layout: GvtLayout,
    /// The migration's vGPU lock.
    pub(super) inner: InnerLock,
    /// The hooks' record.
    pub(super) hooks: Arc<Mutex<Hooks>>,
    /// The vGPU's register image, for the HWS_PGA registers at a report
    /// (allocated while dirty logging runs).
    pub(super) status_regs: Arc<Mutex<KVVec<u64>>>,
    /// Bytes of the register image.
    pub(super) vregs_size: usize,
    /// Commands the scanner hook refused (logged at powers of two: the
    /// guest controls how many).
    pub(super) refused: AtomicU64,
}

impl MigDevice for GvtDev {
    type Prov = GvtVgpu<Host>;
    type Mem<'a> = GvtMem;
    type InPlace<'a> = Lent;

    fn dev(&self) -> &Device {
        &self.dev
    }

    fn with_locked<R>(&self, f: impl FnOnce(&mut Locked<'_, Self::Prov>) -> R) -> R {
        let mut guard = self.inner.lock();
        let GvtInner { prov, mig } = &mut *guard;
        // kvmgt's vfio_device is open whenever its ops are called.
        f(&mut Locked {
            prov,
            mig,
            open: true,
        })
    }

    /// The copy path: every page with `hashing=copy` or a kvmgt without
    /// `read_pinned`, else the frames kvmgt does not hold pinned ([`Lent`]).
    fn read_guest(&self, gpa: u64, buf: &mut [u8]) -> Result {
        self.vgpu.rw_gpa(gpa, buf.as_mut_ptr(), buf.len(), false)
    }

    fn mem(&self) -> GvtMem {
        GvtMem(self.vgpu)
    }

    /// kvmgt lends the pages it holds pinned, if it can (patch 0021).
    fn in_place(&self, _open: bool) -> Option<Lent> {
        self.vgpu.k.can_read_pinned().then_some(Lent {
            vgpu: self.vgpu,
            counts: PinnedCounts::default(),
        })
    }

    fn sync(&self, mig: &mut Migration) {
        let mut h = self.hooks.lock();
        for &(gfn, pages) in h.reachable.iter() {
            mig.shadow_event(ShadowEvent::Pinned { gfn, pages });
        }
        h.reachable.clear();
        if core::mem::take(&mut h.overflow) {
            if h.pins_lost > 0 {
                // A pin queued only in the overflowed queue is lost.
                mig.writable_frames_lost();
            }
            for (gfn, pages) in h.pinned.iter() {
                mig.shadow_event(ShadowEvent::Pinned {
                    gfn: *gfn,
                    pages: *pages,
                });
            }
        }
        // What the scanned commands and kvmgt may have written; the status
        // pages need the registers, read without `hooks` (kvmgt takes its
        // `vgpu_lock`), translated with it.
        let due = h.writes.status_due();
        let audit = h.audit;
        drop(h);
        let regs = if due { self.read_regs() } else { None };
        if due && regs.is_none() {
            mig.unbounded();
        }
        // The registers hold the guest's view: kvmgt writes the page the
        // HWS_PGA register names moved through `map_gma` (`gvt::status_page`).
        let reg = |off: usize| {
            regs.as_deref()
                .and_then(|r| reg_at(r, off))
                .map(|v| gvt::status_page(v, &audit))
        };
        let reg: Option<&dyn Fn(usize) -> Option<u32>> =
            if regs.is_some() { Some(&reg) } else { None };
        let mut h = self.hooks.lock();
        let before = h.writes.overflows();
        let kept = h.writes.sync(reg, mig);
        bump(
            &COUNTERS.scan_record_overflows,
            h.writes.overflows() - before,
        );
        drop(h);
        if !kept {
            // Frames kvmgt wrote outside workloads, perhaps untracked: no
            // report of this migration can be complete.
            dev_ratelimited!(
                dev_err,
                &self.dev,
                "gvt: vGPU {}: kvmgt wrote guest memory in more than {} places outside workloads between two reports: failing the migration\n",
                self.id,
                MAX_OUTSIDE_RANGES
            );
            mig.writable_frames_lost();
        }
    }

    fn logging_start(&self) -> Result {
        let h = self.hooks.lock();
        // Checked and set under one hold of `hooks`: a pin lost between the
        // two would be missed.
        if h.pins_lost > 0 {
            dev_err!(
                self.dev,
                "gvt: vGPU {}: {} pinned ranges have no record: dirty logging refused (it would miss their pages)\n",
                self.id,
                h.pins_lost
            );
            return Err(ENOMEM);
        }
        self.set_logging(h, true);
        Ok(())
    }

    fn logging_stop(&self) {
        self.set_logging(self.hooks.lock(), false);
    }

    // TODO: kvmgt's GGTT write hook is not called for a partial (4-byte)
    // entry update (patches/gvt 0004: `if (!partial_update)`), which
    // changes the guest entry the image saves, so `ggtt_writes_seen()`
    // keeps its default (a stop-copy delta compares every GGTT entry)
    // until the hook reports those too and its indices reach the
    // migration through `sync()`.

    /// GVT-g's command scanner translates (the audit map the restore set).
    fn restored_elsewhere(&self, src: u64, dst: u64, _remapped: u64) {
        dev_ratelimited!(
            dev_info,
            &self.dev,
            "restored from GGTT base {:#x} at {:#x}: GVT-g's command scanner moves the graphics addresses of resubmitted workloads\n",
            src,
            dst
        );
    }
}

impl GvtDev {
    /// Dirty logging on or off, with `hooks` held by the caller: what the
    /// hooks queued for an earlier migration is dropped, and the register
    /// image for the status pages is allocated (without it, the reports
    /// after a workload re-hash every tracked page, `sync()`) or freed.
    fn set_logging(&self, mut h: MutexGuard<'_, Hooks>, on: bool) {
        h.logging = on;
        h.reachable = KVVec::new();
        h.overflow = false;
        h.writes.forget_kvmgt_writes();
        drop(h);
        let mut regs = self.status_regs.lock();
        // The VMM's memory (DMA_LOGGING_START), freed before it is
        // allocated again.
        *regs = KVVec::new();
        if on {
            *regs = KVVec::from_elem(0u64, self.vregs_size.div_ceil(8), GFP_KERNEL_ACCOUNT)
                .unwrap_or(KVVec::new());
        }
    }

    /// The vGPU's register image, read into [`GvtDev::status_regs`]; `None`
    /// if dirty logging allocated none or kvmgt refused.
    fn read_regs(&self) -> Option<MutexGuard<'_, KVVec<u64>>> {
        let mut regs = self.status_regs.lock();
        if regs.is_empty() {
            return None;
        }
        self.vgpu
            .save_raw(Part::Vregs, &mut regs, self.vregs_size)
            .ok()?;
        Some(regs)
    }
}

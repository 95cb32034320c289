// SPDX-License-Identifier: GPL-2.0

//! The gvt provider: gmig as kvmgt's companion module (patches/gvt).
//!
//! `companion.rs` finds kvmgt's companion interface at load time and
//! registers gmig's ops (`ops.rs`) with it; each callback lands here.
//! Every GVT-g vGPU created while gmig is loaded becomes a [`GvtDev`]:
//! kvmgt's vfio_device gets gmig's VFIO migration and DMA logging ops
//! ([`crate::migration::vfio`], the same as the sim's), which
//! [`crate::migration`] runs through [`MigDevice`] on a [`GvtVgpu`]
//! provider:
//!
//! - quiesce/resume: kvmgt's `intel_gvt_companion_{stop,start}_schedule()`;
//! - the state image ([`gvt::write_image`] / [`gvt::decode_image`]):
//!   `intel_gvt_companion_{save,restore}_state()`;
//! - guest pages to hash ([`Lent`], `hashing=inplace`): those kvmgt holds
//!   pinned are hashed where they are, in batches of up to 64 frames, each
//!   page lent for the time of its hash under kvmgt's DMA cache lock
//!   (`intel_gvt_companion_read_pinned()`, patch 0021); the others (a
//!   PPGTT page the shadow has not reached, a frame kvmgt unpinned while
//!   it stays tracked), and every page with `hashing=copy` or a kvmgt
//!   without patch 0021, are copied with `intel_gvt_companion_rw_gpa()`;
//! - writable pages: the pin hooks' record ([`Hooks::pinned`]); pins and
//!   GGTT writes during dirty logging join the tracker (reported at the
//!   next report);
//! - what the GPU and kvmgt may have written ([`GvtWrites`],
//!   [`gvt::narrow`]): the command scanner hook runs every command of
//!   every workload through the write-set analysis the sim uses, GGTT
//!   addresses through the guest's GGTT as the GGTT write hook reported
//!   it; a workload's context write-back and the status pages kvmgt's CSB
//!   emulation writes join them, and the frames kvmgt writes outside
//!   workloads (the OpRegion mailbox, `gpa_written`) are noted as written
//!   in the next report, tracked or not; at each report they are the
//!   re-hash candidates. A workload in flight at the report keeps its
//!   scanned frames (and the status pages) as candidates until it
//!   completes; a command whose writes cannot be bounded (PPGTT, draws,
//!   ...) makes every tracked page one; an idle vGPU costs none;
//! - pending workloads (queued, not run at the stop): saved with
//!   `intel_gvt_companion_save_workloads()` into the stop-copy image,
//!   re-created in order on the destination with
//!   `intel_gvt_companion_resubmit_workloads()` ([`gvt::pending`]);
//! - after a restore from a source whose graphics memory sat elsewhere,
//!   the command scanner hook moves graphics addresses of resubmitted
//!   workloads to this vGPU's slices ([`AuditMap`],
//!   [`gvt::patch_command`]), and the `map_gma` hook those kvmgt takes
//!   from the guest outside commands: context descriptors, ring starts,
//!   guest GGTT MMIO accesses, fence ranges, status pages and display
//!   plane bases ([`AuditMap::map_guest`], [`gvt::gma`]); a restore has
//!   kvmgt check every part first (`intel_gvt_companion_check_state()`).
//!
//! Lock order: [`GvtDev::inner`] (the migration's vGPU lock), then
//! [`GvtDev::status_regs`], then kvmgt's `vgpu_lock` (taken by its
//! services), then [`GvtDev::hooks`]. kvmgt calls the hooks with its
//! `vgpu_lock` held, so they take `hooks` only.
//!
//! Hashing in place adds kvmgt's `cache_lock` (the lock of its DMA cache,
//! which every pin and unpin of kvmgt takes, its `dma_unmap` callback's
//! included) after `inner`: a scan runs with `inner` held and nothing else
//! of gmig's (`sync()` has dropped `hooks` and `status_regs`), and
//! `read_pinned` takes `cache_lock` and calls [`hash_lent`], which takes no
//! lock. kvmgt already orders `vgpu_lock` -> `cache_lock` (a GTT write
//! pins under both) and `cache_lock` -> `hooks` (the pin and unpin hooks
//! run under it), and type1's `device_list_lock` -> `cache_lock` (its unmap
//! notifier); none of those holders takes `inner` (the hooks take `hooks`
//! only, kvmgt's `dma_unmap` is its own), so `inner` -> `cache_lock` closes
//! no cycle. gmig pins nothing here: a page kvmgt unpins is unpinned once
//! `cache_lock` is free, after the hash, as the DMA-unmap rules want.
//!
//! A re-hash spread over CPUs (`crate::migration::crew`, module parameter
//! `rehash_cpus`) calls `read_pinned` and `rw_gpa` from work items too,
//! one [`Lent`] per lane, while the scan's caller holds `inner` and waits
//! for them: a work item holds nothing of gmig's when it takes
//! `cache_lock` (or, in `rw_gpa`, the VFIO locks), so the order is the
//! caller's own, `inner` -> `cache_lock`, and no crew lock is held across
//! either. kvmgt's `cache_lock` is never held across a crew fork (a lane
//! takes it only inside one `read_pinned` call), and `inner` is never
//! taken by a lane.
//!
//! None of it can run without an Intel GPU (Broadwell to Comet Lake);
//! `tests/gvt-mock` drives all of it through a mock kvmgt.

mod audit;
mod companion;
mod device;
mod events;
mod hooks;
mod host;
#[cfg(CONFIG_KUNIT = "y")]
mod kunit;
mod kvmgt;
mod lent;
mod mem;
mod ops;
mod register;
mod status;
mod vgpu;

pub(crate) use register::Registration;
pub(crate) use status::{write_control, Status};

#[cfg(doc)]
use crate::{
    gmig_core::gvt::{self, AuditMap, GvtVgpu, GvtWrites},
    migration::MigDevice,
};
#[cfg(doc)]
use device::GvtDev;
#[cfg(doc)]
use hooks::Hooks;
#[cfg(doc)]
use lent::{hash_lent, Lent};

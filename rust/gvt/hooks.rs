// SPDX-License-Identifier: GPL-2.0

//! What kvmgt's hooks record for one vGPU ([`Hooks`]): the pinned ranges,
//! the audit map, the ranges that became reachable while logging, and
//! what the GPU and kvmgt may have written ([`Writes`]).

use kernel::{alloc::flags::GFP_KERNEL_ACCOUNT, prelude::*, rbtree::RBTree};

use crate::gmig_core::{
    gvt::{AuditMap, GgttMirror, GvtLayout, GvtWrites},
    writeset::scan::{CtxSlot, CONTEXT_SLOTS},
};

/// Most ranges queued between two syncs ([`Hooks::reached`]).
const MAX_REACHABLE: usize = 4096;

/// Most frame ranges the scanned commands and kvmgt's writes record
/// between two syncs, and the carry-over of earlier reports (16 bytes
/// each, two records of 64 KiB per vGPU); past it, a report re-hashes
/// every tracked page. iris's buffers lie scattered in guest memory: the
/// replayed glmark2 overflowed 1024 ranges in 16 reports of a migration.
const MAX_SCAN_RANGES: usize = 4096;

/// Most frame ranges kvmgt's own writes outside workloads (the OpRegion
/// mailbox) record between two syncs; past it, the migration fails (those
/// frames need not be tracked, so no unbounded report covers them).
pub(super) const MAX_OUTSIDE_RANGES: usize = 64;

/// What the hooks learn of the GPU's and kvmgt's writes.
type Writes = GvtWrites<KVVec<(u64, u64)>, KVVec<u32>, KVVec<CtxSlot>>;

/// The hooks' record of writes for a vGPU of `layout`: the guest GGTT
/// mirror (every entry unknown), room for [`MAX_SCAN_RANGES`] ranges and
/// [`MAX_OUTSIDE_RANGES`] of kvmgt's writes outside workloads, and the
/// pipeline state of [`CONTEXT_SLOTS`] contexts.
pub(super) fn new_writes(layout: GvtLayout) -> Result<Writes> {
    let mirror = GgttMirror::new(
        layout,
        KVVec::from_elem(0u32, usize::try_from(layout.entries())?, GFP_KERNEL)?,
    )
    .ok_or(EINVAL)?;
    Ok(GvtWrites::new(
        KVVec::from_elem((0u64, 0u64), MAX_SCAN_RANGES, GFP_KERNEL)?,
        KVVec::from_elem((0u64, 0u64), MAX_OUTSIDE_RANGES, GFP_KERNEL)?,
        mirror,
    )
    .with_carry(KVVec::from_elem((0u64, 0u64), MAX_SCAN_RANGES, GFP_KERNEL)?)
    .with_contexts(KVVec::from_elem(CtxSlot::EMPTY, CONTEXT_SLOTS, GFP_KERNEL)?))
}

/// The dword at byte offset `off` of a register image kvmgt saved into
/// u64s (native byte order, as it lies in kvmgt's memory).
pub(super) fn reg_at(regs: &[u64], off: usize) -> Option<u32> {
    let v = regs.get(off / 8)?.to_ne_bytes();
    let i = off % 8;
    let b = v.get(i..i.checked_add(4)?)?;
    Some(u32::from_ne_bytes(b.try_into().ok()?))
}

/// What the kvmgt hooks record for one vGPU (their own lock).
pub(super) struct Hooks {
    /// Guest frame ranges pinned for the GPU now: first frame -> pages.
    pub(super) pinned: RBTree<u64, u64>,
    /// Address translation of the command scanner hook.
    pub(super) audit: AuditMap,
    /// Dirty logging runs: frames that become reachable are queued.
    pub(super) logging: bool,
    /// Frame ranges that became GPU-reachable since the last sync.
    pub(super) reachable: KVVec<(u64, u64)>,
    /// `reachable` could not grow: the next sync re-reports every pin.
    pub(super) overflow: bool,
    /// What the scanned commands and kvmgt may have written, and the
    /// guest's GGTT they are translated through (2 KiB: boxed, so that
    /// the creation path does not carry copies of it on its stack).
    pub(super) writes: KBox<Writes>,
    /// Pins that could not be recorded and are not unpinned yet: their
    /// frames are missing from [`Hooks::pinned`], so no dirty logging may
    /// start (its first report would miss them) until they are unpinned.
    pub(super) pins_lost: u64,
}

impl Hooks {
    /// Queues a range that became GPU-reachable while logging. The queue
    /// is bounded (a guest rewriting its GGTT between two reports must not
    /// grow kernel memory): past [`MAX_REACHABLE`] entries the next sync
    /// re-reports every pin instead, which covers every queued range.
    pub(super) fn reached(&mut self, first: u64, count: u64) {
        if !self.logging || self.overflow {
            return;
        }
        if self.reachable.len() >= MAX_REACHABLE
            || self
                .reachable
                .push((first, count), GFP_KERNEL_ACCOUNT)
                .is_err()
        {
            self.overflow = true;
            self.reachable.clear();
        }
    }
}

// SPDX-License-Identifier: GPL-2.0

//! kvmgt's hook events, and what they mean for dirty tracking.

use super::super::gtt::PAGE_SIZE;
use super::super::provider::ShadowEvent;
use super::layout::GvtLayout;

/// What kvmgt reports through the companion ops (`rust/gvt/ops.rs`; the
/// arguments `a`, `b`, `c` after each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum EventKind {
    /// A workload was queued (engine, LRCA).
    WorkloadQueued = 1,
    /// A workload completed (engine, LRCA, status).
    WorkloadCompleted = 2,
    /// GVT-g stopped scheduling the vGPU.
    SchedStopped = 3,
    /// GVT-g scheduled the vGPU again.
    SchedStarted = 4,
    /// The guest wrote a GGTT entry (global index, old, new).
    GgttWrite = 5,
    /// A PPGTT shadow was created (root).
    PpgttCreated = 6,
    /// A PPGTT shadow was destroyed (root).
    PpgttDestroyed = 7,
    /// Guest pages were pinned for DMA (gfn, size).
    PagesPinned = 8,
    /// Guest pages were unpinned (gfn, size).
    PagesUnpinned = 9,
    /// kvmgt wrote guest memory outside a workload (gpa, length).
    GpaWritten = 10,
    /// The guest changed a shadowed PPGTT entry (level, new guest entry).
    PpgttEntry = 11,
    /// kvmgt begins to scan a workload (engine, LRCA, the PML4 of its
    /// 4-level PPGTT or 0).
    ScanWorkload = 12,
}

impl TryFrom<u32> for EventKind {
    type Error = u32;

    fn try_from(v: u32) -> Result<Self, u32> {
        Ok(match v {
            1 => Self::WorkloadQueued,
            2 => Self::WorkloadCompleted,
            3 => Self::SchedStopped,
            4 => Self::SchedStarted,
            5 => Self::GgttWrite,
            6 => Self::PpgttCreated,
            7 => Self::PpgttDestroyed,
            8 => Self::PagesPinned,
            9 => Self::PagesUnpinned,
            10 => Self::GpaWritten,
            11 => Self::PpgttEntry,
            12 => Self::ScanWorkload,
            _ => return Err(v),
        })
    }
}

/// The [`ShadowEvent`] of kvmgt's GGTT write hook for global entry
/// `index`, or `None` if the vGPU does not own that entry (the hook is
/// then ignored: a GVT bug or another vGPU's entry).
pub fn ggtt_write_event(layout: &GvtLayout, index: u64, old: u64, new: u64) -> Option<ShadowEvent> {
    layout
        .image_index(index)
        .map(|index| ShadowEvent::GgttWrite { index, old, new })
}

/// The [`ShadowEvent`] of kvmgt's pin (`pinned`) or unpin hook for `size`
/// bytes at guest frame `gfn` (GVT pins 4 KiB pages and 2 MiB huge pages;
/// a partial page counts as a whole one). `None` for an empty range.
pub fn pin_event(gfn: u64, size: u64, pinned: bool) -> Option<ShadowEvent> {
    let pages = size.div_ceil(PAGE_SIZE);
    if pages == 0 {
        return None;
    }
    Some(if pinned {
        ShadowEvent::Pinned { gfn, pages }
    } else {
        ShadowEvent::Unpinned { gfn, pages }
    })
}

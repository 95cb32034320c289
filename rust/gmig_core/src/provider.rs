// SPDX-License-Identifier: GPL-2.0

//! The provider interface: what the migration layer needs from a vGPU
//! backend, and how a backend's shadow page table events become dirty
//! tracker updates.
//!
//! gmig has two providers behind [`Provider`]: the sim vGPU
//! ([`super::sim::vgpu::SimVgpu`], implemented in `sim/provider.rs`) and the
//! GVT-g backend ([`super::gvt::GvtVgpu`], over the kvmgt companion hooks). The
//! migration layer (VFIO migration arcs, data fd, DMA logging) calls only
//! these methods, so both providers migrate the same way:
//!
//! - [`Provider::quiesce`] / [`Provider::resume`]: stop and restart
//!   scheduling (stop-copy; the running workload completes first);
//! - [`Provider::for_each_writable_frame`]: the guest pages the vGPU can
//!   write (from its shadow GGTT/PPGTT); later changes arrive as
//!   [`ShadowEvent`]s, which [`tracker_update`] turns into tracker calls;
//! - [`Provider::save_state`] / [`Provider::restore_state`]: the vGPU state
//!   as sections of a [`super::stream`] image, restored into a vGPU that may
//!   sit at another GGTT partition (pending workloads are then remapped);
//! - [`Provider::pending_workloads`]: what will be resubmitted on the
//!   destination;
//! - [`Provider::ggtt_in_image`]: where the GGTT entries sit in the image,
//!   so a stop-copy delta ([`stream::delta`]) compares only the entries
//!   written since the pre-copy image.

use super::gtt::{Partition, Pte};
use super::mem::GuestMem;
use super::remap::RemapError;
use super::stream::{self, ChangedEntries, EntrySpan, ImageSink, StreamError};
use core::ops::Deref;

/// Provider id of the sim vGPU in stream headers.
pub const PROVIDER_SIM: u16 = 1;
/// Provider id of the GVT-g backend in stream headers.
pub const PROVIDER_GVT: u16 = 2;

/// Why a state image could not be restored. Nothing was changed when one
/// is returned, except for [`RestoreError::Remap`] after a partial write of
/// guest memory the remapper documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreError {
    /// The image is for another provider or vGPU type.
    WrongDevice {
        /// Provider id in the image.
        provider: u16,
        /// vGPU type index in the image.
        vgpu_type: u16,
    },
    /// A mandatory section is missing.
    MissingSection(u16),
    /// A section has the wrong size or an invalid content.
    BadSection(u16),
    /// The image's GGTT partition differs in size from this vGPU's.
    PartitionMismatch {
        /// Size in the image.
        size: u64,
    },
    /// The image could not be parsed (only after a failed validation).
    Stream(StreamError),
    /// Remapping the pending workloads to the new partition failed.
    Remap(RemapError),
    /// The backend failed to apply a checked section (GVT-g: kvmgt's
    /// restore failed after its check passed, e.g. out of memory). The
    /// vGPU was reset to a clean state (kvmgt resets a vGPU whose restore
    /// failed half way), not left with part of the image.
    Refused(u16),
    /// Fence register `fence` of the image is valid and covers a range not
    /// wholly inside one slice of the guest's graphics memory: no
    /// destination could detile the guest's part of it.
    FenceOutsideGm {
        /// The fence's number.
        fence: u32,
    },
}

impl From<StreamError> for RestoreError {
    fn from(e: StreamError) -> Self {
        Self::Stream(e)
    }
}

/// What a restore did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Restored {
    /// GGTT partition of the source.
    pub src: Option<Partition>,
    /// Graphics addresses rewritten in pending workloads.
    pub remapped: u64,
}

/// A vGPU backend as the migration layer sees it.
pub trait Provider {
    /// Provider id written in stream headers ([`PROVIDER_SIM`], ...).
    fn id(&self) -> u16;
    /// Index of the vGPU type in the provider's type table.
    fn type_index(&self) -> u16;
    /// Name of the vGPU type (for messages).
    fn type_name(&self) -> &'static str;
    /// The vGPU's GGTT partition.
    fn partition(&self) -> Partition;
    /// Stops scheduling new workloads. The workload running when this is
    /// called completes first (the caller holds the vGPU lock, which the
    /// sim's command streamer holds while it runs a context).
    fn quiesce(&mut self);
    /// Restarts scheduling; returns whether workloads are waiting (the
    /// caller then kicks the command streamer).
    fn resume(&mut self) -> bool;
    /// Whether scheduling is stopped.
    fn is_quiesced(&self) -> bool;
    /// Calls `f` with every guest frame the vGPU can write now (present
    /// entries of its shadow GGTT and PPGTT).
    fn for_each_writable_frame(&self, f: &mut dyn FnMut(u64));
    /// Bytes [`Provider::save_state`] writes, end marker and header
    /// included.
    fn state_len(&self) -> usize;
    /// Describes the vGPU state, section by section, to `w` (a
    /// [`stream::Writer`] or a [`stream::Patcher`]).
    fn write_state<W: ImageSink>(&self, w: &mut W) -> Result<(), StreamError>;
    /// Writes the vGPU state as sections of a stream image into `out`
    /// (at least [`Provider::state_len`] bytes); returns the image length.
    fn save_state(&self, out: &mut [u8]) -> Result<usize, StreamError> {
        let mut w = stream::Writer::new(out, self.id(), self.type_index())?;
        self.write_state(&mut w)?;
        w.finish()
    }
    /// Writes into `out` the delta over `base` (an image
    /// [`Provider::save_state`] wrote) of the image it would write now,
    /// from what changed ([`stream::Patcher`]): `changed` names the GGTT
    /// entries written since `base`, `scratch` holds the sections a
    /// provider fills whole. With `estimate`, of the image
    /// [`Provider::write_state_estimate`] describes (its length is what
    /// counts). Returns the delta's length and the digest of the image it
    /// describes.
    fn save_delta<S: Deref<Target = [u64]>>(
        &self,
        base: &[u8],
        changed: Option<&ChangedEntries<S>>,
        scratch: &mut [u8],
        out: &mut [u8],
        estimate: bool,
    ) -> Result<(usize, u32), StreamError> {
        let mut p =
            stream::Patcher::new(base, changed, scratch, out, self.id(), self.type_index())?;
        if estimate {
            self.write_state_estimate(&mut p)?;
        } else {
            self.write_state(&mut p)?;
        }
        p.finish()
    }
    /// Writes an image as long as the one [`Provider::save_state`] would
    /// write if the vGPU stopped now, for sizing only (the VMM's
    /// MIG_DATA_SIZE): GVT-g's running vGPU gets a pending-work section of
    /// the workloads queued now, whose records are not read (zero).
    fn save_state_estimate(&self, out: &mut [u8]) -> Result<usize, StreamError> {
        let mut w = stream::Writer::new(out, self.id(), self.type_index())?;
        self.write_state_estimate(&mut w)?;
        w.finish()
    }
    /// Describes to `w` the image [`Provider::save_state_estimate`]
    /// writes.
    fn write_state_estimate<W: ImageSink>(&self, w: &mut W) -> Result<(), StreamError> {
        self.write_state(w)
    }
    /// Restores a validated image (see [`stream::validate`]): decodes and
    /// checks every section first, then applies them, and if the image
    /// comes from another GGTT partition, remaps the pending workloads in
    /// guest memory `mem`.
    fn restore_state<M: GuestMem>(
        &mut self,
        hdr: &stream::Header,
        image: &[u8],
        mem: &mut M,
    ) -> Result<Restored, RestoreError>;
    /// Where [`Provider::save_state`]'s image holds the GGTT entries, in
    /// the order of the [`ShadowEvent::GgttWrite`] indices (which name the
    /// entries written since a base image, [`stream::ChangedEntries`]).
    fn ggtt_in_image(&self) -> EntrySpan;
    /// Workloads submitted and not yet run (resubmitted after restore).
    fn pending_workloads(&self) -> usize;
    /// The vGPU was reset or its device closed (the migration layer's
    /// abort): the guest starts over and sees this vGPU's own layout, so
    /// nothing a restore set up to present the source's view may remain.
    fn reset(&mut self);
}

/// A change of what a vGPU can reach, reported by a provider's shadow page
/// tables (sim: GGTT writes and streamer writes; GVT-g: the kvmgt hooks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShadowEvent {
    /// GGTT entry `index` of the partition changed from `old` to `new`
    /// (raw guest PTEs).
    GgttWrite {
        /// Entry index in the partition.
        index: u64,
        /// Previous raw entry.
        old: u64,
        /// New raw entry.
        new: u64,
    },
    /// A PPGTT shadow was created (its pages follow as `Pinned`).
    PpgttCreate {
        /// Guest physical address of the root table.
        root: u64,
    },
    /// A PPGTT shadow was destroyed.
    PpgttDestroy {
        /// Guest physical address of the root table.
        root: u64,
    },
    /// Guest pages were pinned for the GPU (a shadow entry maps them).
    Pinned {
        /// First guest frame.
        gfn: u64,
        /// Number of 4 KiB pages.
        pages: u64,
    },
    /// Guest pages were unpinned.
    Unpinned {
        /// First guest frame.
        gfn: u64,
        /// Number of 4 KiB pages.
        pages: u64,
    },
    /// The GPU wrote a guest frame (known for the sim's streamer only).
    GpuWrote {
        /// The frame.
        gfn: u64,
    },
}

/// What the dirty tracker must do for one [`ShadowEvent`]: start tracking
/// the frames `first..first + count` (already tracked ones are kept).
/// Frames that stop being reachable stay tracked: their last content must
/// still be compared at stop-copy, and another entry may map them too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackRange {
    /// First guest frame.
    pub first: u64,
    /// Number of frames.
    pub count: u64,
}

/// Most frames one event may add (a 2 MiB huge page has 512).
pub const MAX_EVENT_PAGES: u64 = 512;

/// The tracker update of `ev`, or `None` when nothing becomes writable.
/// Pin events larger than [`MAX_EVENT_PAGES`] are clamped (a hostile or
/// buggy hook cannot make the tracker walk the whole address space).
pub fn tracker_update(ev: &ShadowEvent) -> Option<TrackRange> {
    match *ev {
        ShadowEvent::GgttWrite { new, .. } => Pte::decode(new).map(|p| TrackRange {
            first: p.gfn(),
            count: 1,
        }),
        ShadowEvent::Pinned { gfn, pages } if pages > 0 => Some(TrackRange {
            first: gfn,
            count: pages.min(MAX_EVENT_PAGES),
        }),
        ShadowEvent::GpuWrote { gfn } => Some(TrackRange {
            first: gfn,
            count: 1,
        }),
        _ => None,
    }
}

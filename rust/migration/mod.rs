// SPDX-License-Identifier: GPL-2.0

//! VFIO v2 live migration of a vGPU, and its DMA dirty logging.
//!
//! GPU pages are guest RAM and travel with the VMM's RAM migration. gmig
//! tells the VMM which of them the vGPU really changed through the VFIO DMA
//! logging report, found by hashing ([`HashTracker`]) under the pre-copy
//! policy of [`planner`] (module parameters `precopy` and `dirty`). The
//! device's data fd carries the vGPU state: configuration space, registers
//! with pending submissions, and the GGTT partition, as a validated
//! [`stream`] image. An image is emitted in PRE_COPY (the state while
//! running) and a final one in STOP_COPY: a delta over the pre-copy image
//! ([`stream::delta`]) when some of that went out, else a full one. The
//! GGTT entries a delta compares are those the provider's GGTT write path
//! reported since the pre-copy image ([`ChangedEntries`]). The destination
//! validates every image it receives, combines a delta with its base and
//! validates the result, and applies the state of the last image. If it
//! sits at another GGTT partition, pending contexts are remapped
//! ([`remap`]).
//!
//! With `rehash=writeset` (the default) the tracker re-hashes only what the
//! executed commands could have written ([`WriteSet`], fed by the command
//! streamer's write sets and the device model's own writes through
//! [`Migration`]'s [`WriteSink`]): pre-copy reports keep the hashes current
//! and report what changed, and the stop-copy re-hash, done when STOP_COPY
//! is entered, reads only the pages written since the last report.
//! `rehash=all` is gMig's full re-hash.
//!
//! Everything here reaches the vGPU through [`MigDevice`] (its lock, guest
//! memory, messages) and the [`Provider`] trait (state image,
//! quiesce/resume, writable pages, restore with remapping), so the sim
//! (`crate::sim::Shared`) and GVT-g (`crate::gvt::GvtDev`) vGPUs migrate
//! the same way, and nothing here names either: each provider keeps the
//! [`vfio::Front`] of its devices in its own [`vfio::Registry`].
//!
//! Arcs run with the front's state lock held and take the vGPU lock.
//!
//! # A re-hash on several CPUs
//!
//! A scan (a report's re-hash, the stop-copy re-hash) gathers its frames
//! in rounds of chunks ([`Chunked`]) when the migration has a [`Crew`]
//! (module parameter `rehash_cpus`, 0: every online CPU; none with 1): a
//! round of [`SPREAD_MIN`] frames or more is hashed by every lane of the
//! crew at once, each lane with its own source ([`Pages`]: its own
//! scratch page for the copy path, and its own [`InPlaceSource`] from
//! [`InPlaceSource::for_lane`]: on the sim its pin slot in the vGPU's
//! `PinWindow`, on GVT-g a `Lent` of its own), each chunk into its own
//! buffer; the caller then merges the round into the tracker in order,
//! alone. The result is that of one CPU, bit for bit
//! (`gmig_core::pageread`). A smaller round, as a write-set re-hash
//! usually is, runs on the caller's CPU.
//!
//! Locks: the caller holds the vGPU lock (and the front's state lock)
//! and waits in [`Crew::fork`] until every lane's task returned. A lane
//! that is a work item takes, per run of pages, what the caller took
//! itself before, in the same order after the vGPU lock: on the sim,
//! `PinWindow::busy` (a leaf spinlock) and, in `vfio_pin_pages()`,
//! `vfio_unpin_pages()` or `vfio_dma_rw()`, the VFIO container's iommu
//! lock and the VMM's `mmap_lock`; on GVT-g, kvmgt's `cache_lock` for one
//! `read_pinned` call (the lanes' calls take turns on it) and, in
//! `rw_gpa`, what `vfio_dma_rw()` takes (`crate::gvt`'s order, `inner` ->
//! `cache_lock`, is kept). It takes neither the vGPU lock nor
//! `state_mutex`, nor anything a `dma_unmap` callback holds while it waits
//! (type1's device list lock), so the callback's wait for a lane's run
//! ends as it did for the caller's, and no cycle is added. The lanes' only
//! new lock is the crew's job spinlock, a leaf.
//!
//! Close or reset mid-way: both take the vGPU lock (`close_device` to
//! mark the device closed, a reset to end the migration), which the
//! caller holds until every lane is done, so neither runs under a lane. A
//! scan of a device that is not open hashes nothing in place; a lane that
//! finds it so fails its chunk: its pages count as changed, as pages that
//! cannot be read do.

mod arc;
mod crew;
mod data;
mod debugfs;
mod device;
mod dirty;
mod hasher;
mod image;
mod params;
pub(crate) mod pin;
mod resume;
mod spread;
mod state;
mod stats;
pub(crate) mod vfio;

pub(crate) use arc::{abort, arc};
pub(crate) use data::{data_size, mig_read, mig_read_commit, mig_write, precopy_info};
pub(crate) use debugfs::{write_fault, Fault};
pub(crate) use device::{Locked, MigDevice};
pub(crate) use dirty::{log_report, log_start, log_stop};
pub(crate) use state::Migration;

#[cfg(doc)]
use crate::gmig_core::{
    pageread::{Chunked, SPREAD_MIN},
    planner,
    provider::Provider,
    remap,
    stream::{self, ChangedEntries},
    tracker::HashTracker,
    writeset::{WriteSet, WriteSink},
};
#[cfg(doc)]
use crew::Crew;
#[cfg(doc)]
use pin::InPlaceSource;

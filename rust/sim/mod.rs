// SPDX-License-Identifier: GPL-2.0

//! The sim provider: the `gmig` mdev parent (`mdev.rs`), a VFIO device for
//! each mdev (`vfio.rs`, on [`crate::vfio`]), and behind it a sim vGPU, its
//! lock and its debugfs directory.
//!
//! Lock order: the migration front's state lock, then a data fd's link,
//! then [`Shared::inner`]. Nothing sleeps in C with `inner` held except
//! `vfio_dma_rw()`, `vfio_pin_pages()` and `vfio_unpin_pages()` (which take
//! the IOMMU's lock; its `dma_unmap` callback is made with that lock
//! dropped and takes only [`Shared::pins`]' spinlock, never `inner`: see
//! `crate::migration::pin`) and the interrupt's spinlock (`vdev.rs`).

mod device;
mod exec;
mod mdev;
mod mem;
mod migdev;
mod parent;
mod replay;
mod stats;
mod vdev;
mod vfio;
mod vgpu;
mod workload;

pub(crate) use mdev::{register, SimParent};
pub(crate) use parent::init;

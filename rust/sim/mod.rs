// SPDX-License-Identifier: GPL-2.0

//! The Rust object behind each gmig mdev: a sim vGPU, its lock, its
//! debugfs directory, and what the C shim's entry points ([`crate::abi`])
//! ask of it.
//!
//! Lock order: the shim's `state_mutex`, then a migration file's lock, then
//! [`Shared::inner`]. Nothing sleeps on the C side with `inner` held except
//! `vfio_dma_rw()`, `vfio_pin_pages()` and `vfio_unpin_pages()` (which take
//! the IOMMU's lock; its `dma_unmap` callback is made with that lock
//! dropped and takes only [`Shared::pins`]' spinlock, never `inner`: see
//! `crate::migration::pin`) and `gmig_raise_irq()` (a spinlock).

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

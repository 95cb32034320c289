// SPDX-License-Identifier: GPL-2.0

//! The sim provider's device model: a software Gen9-style vGPU.
//!
//! - [`regs`]: BAR0 layout and register offsets (the device contract).
//! - [`config`]: PCI configuration space.
//! - [`vgpu`]: registers, the GGTT partition view and execlist submission.
//! - [`exec`]: the command streamer that executes submitted contexts and
//!   writes guest memory through a [`super::mem::GuestMem`].
//! - [`workload`]: the synthetic workload generator.
//! - [`replay`]: the replay workload (a captured Mesa workload run again).
//! - [`remap`]: the pending contexts walked and remapped after a restore
//!   elsewhere.
//!
//! Nothing here touches memory directly: the kernel glue implements
//! [`super::mem::GuestMem`] with `vfio_dma_rw()`, tests with a `Vec`.

pub mod config;
pub mod exec;
pub mod provider;
pub mod regs;
pub mod remap;
pub mod replay;
pub mod vgpu;
pub mod workload;

// SPDX-License-Identifier: GPL-2.0

//! Guest memory as a vGPU reaches it, for every provider: the sim's command
//! streamer, a restore's remapping, the hash tracker's reads. The kernel
//! implements it with `vfio_dma_rw()` (sim) or kvmgt's `rw_gpa` (GVT-g),
//! the host tests with a `Vec`.

/// A guest memory access failed (not mapped for DMA).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemFault {
    /// Guest physical address of the failed access.
    pub gpa: u64,
}

/// Guest memory as the device sees it (the VFIO DMA path in the kernel).
pub trait GuestMem {
    /// Reads `buf.len()` bytes at guest physical address `gpa`.
    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), MemFault>;
    /// Writes `buf` at guest physical address `gpa`.
    fn write(&mut self, gpa: u64, buf: &[u8]) -> Result<(), MemFault>;
}

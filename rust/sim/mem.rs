// SPDX-License-Identifier: GPL-2.0

//! Guest memory as the sim's command streamer sees it: the VFIO DMA path.

use core::sync::atomic::Ordering;
use kernel::prelude::*;

use super::{device::Shared, stats::Stats, vdev::Vdev};
use crate::gmig_core::mem::{GuestMem, MemFault};

/// Guest memory as the sim's command streamer sees it: the VFIO DMA path.
pub(crate) struct DmaMem<'a> {
    vdev: Vdev,
    stats: &'a Stats,
}

impl<'a> DmaMem<'a> {
    pub(crate) fn new(s: &'a Shared) -> Self {
        Self {
            vdev: s.vdev,
            stats: &s.stats,
        }
    }
}

/// One DMA access, tried once: the vGPU lock is held, so there is no
/// sleeping retry (it would stretch the stop arc). An access fails when the
/// guest's memory map has no mapping there, e.g. while its firmware
/// reprograms PAM and SMRAM and QEMU unmaps and maps guest RAM again; on a
/// real GPU the IOMMU would fault it. `Vdev` logs errno and IOVA of every
/// failure (ratelimited); a failed read counts as a changed page, a failed
/// write as a GPU fault.
impl DmaMem<'_> {
    fn counted(&self, res: Result) -> Result {
        if res.is_err() {
            self.stats.dma_errors.fetch_add(1, Ordering::Relaxed);
        }
        res
    }
}

impl GuestMem for DmaMem<'_> {
    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), MemFault> {
        self.counted(self.vdev.dma_read(gpa, buf))
            .map_err(|_| MemFault { gpa })
    }

    fn write(&mut self, gpa: u64, buf: &[u8]) -> Result<(), MemFault> {
        self.counted(self.vdev.dma_write(gpa, buf))
            .map_err(|_| MemFault { gpa })?;
        self.stats
            .gpu_bytes_written
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

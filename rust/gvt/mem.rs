// SPDX-License-Identifier: GPL-2.0

//! Guest memory of a GVT-g vGPU, through kvmgt's `rw_gpa`.

use kernel::prelude::*;

use super::kvmgt::VgpuPtr;
use crate::gmig_core::mem::{GuestMem, MemFault};

/// Guest memory of a GVT-g vGPU (kvmgt's VFIO DMA path).
///
/// `rw_gpa` (`vfio_dma_rw()`) stays the only correct way here: the scanner
/// hook reads page tables and pipeline state from inside kvmgt's
/// `scan_cmd` callback, where the interface allows no call into GVT-g but
/// `rw_gpa` (`read_pinned` would take `cache_lock`, which kvmgt may hold
/// around its pin hooks), reads of a few bytes that need no page lent, and
/// a restore writes guest memory, which `read_pinned` never lends a page
/// for.
pub(crate) struct GvtMem(pub(super) VgpuPtr);

impl GuestMem for GvtMem {
    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), MemFault> {
        self.0
            .rw_gpa(gpa, buf.as_mut_ptr(), buf.len(), false)
            .map_err(|_| MemFault { gpa })
    }

    fn write(&mut self, gpa: u64, buf: &[u8]) -> Result<(), MemFault> {
        self.0
            .rw_gpa(gpa, buf.as_ptr().cast_mut(), buf.len(), true)
            .map_err(|_| MemFault { gpa })
    }
}

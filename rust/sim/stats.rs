// SPDX-License-Identifier: GPL-2.0

//! A sim vGPU's counters outside any migration (debugfs `stats`).

use core::sync::atomic::{AtomicU64, Ordering};

/// Counters of a vGPU outside any migration, for its current VFIO user
/// (cleared when a VM opens the vGPU).
pub(crate) struct Stats {
    /// Bytes the command streamer wrote to guest memory.
    pub(crate) gpu_bytes_written: AtomicU64,
    /// Region accesses refused (bad offset, size or region).
    pub(crate) bad_accesses: AtomicU64,
    /// Contexts executed.
    pub(crate) contexts: AtomicU64,
    /// DMA accesses that failed (each is tried once; `Vdev` logs its
    /// errno and IOVA).
    pub(crate) dma_errors: AtomicU64,
}

impl Stats {
    pub(super) fn new() -> Self {
        Self {
            gpu_bytes_written: AtomicU64::new(0),
            bad_accesses: AtomicU64::new(0),
            contexts: AtomicU64::new(0),
            dma_errors: AtomicU64::new(0),
        }
    }

    /// Zeroes every counter (a new VFIO user).
    pub(super) fn clear(&self) {
        for c in [
            &self.gpu_bytes_written,
            &self.bad_accesses,
            &self.contexts,
            &self.dma_errors,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }

    pub(super) fn show(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        writeln!(f, "contexts: {}", self.contexts.load(Ordering::Relaxed))?;
        writeln!(
            f,
            "gpu_bytes_written: {}",
            self.gpu_bytes_written.load(Ordering::Relaxed)
        )?;
        writeln!(
            f,
            "bad_accesses: {}",
            self.bad_accesses.load(Ordering::Relaxed)
        )?;
        writeln!(f, "dma_errors: {}", self.dma_errors.load(Ordering::Relaxed))
    }
}

// SPDX-License-Identifier: GPL-2.0

//! A migration's statistics (debugfs `stats`), reset when one starts.

use super::pin::InPlaceCounts;

/// Per-migration statistics (debugfs `stats`), reset when one starts.
#[derive(Default, Clone, Copy)]
pub(super) struct MigStats {
    pub(super) precopy_rounds: u64,
    pub(super) precopy_bytes: u64,
    pub(super) stopcopy_bytes: u64,
    pub(super) pages_dirty_stopcopy: u64,
    pub(super) pages_sent_stopcopy: u64,
    pub(super) pages_reported_precopy: u64,
    pub(super) downtime_us: i64,
    pub(super) resume_us: i64,
    pub(super) remap_patched: u64,
    pub(super) stream_errors: u64,
    pub(super) images_applied: u64,
    pub(super) reports: [u64; 2],
    pub(super) read_errors: u64,
    /// Tracked pages the stop-copy re-hash did not read (hash kept).
    pub(super) pages_rehash_skipped: u64,
    /// Pages the stop-copy re-hash read.
    pub(super) pages_rehashed_stopcopy: u64,
    /// Pages pre-copy reports re-hashed.
    pub(super) pages_rehashed_precopy: u64,
    /// Time pre-copy reports took (their re-hash included).
    pub(super) precopy_report_us: i64,
    /// Pages hashed in place, the runs they were pinned in, and pages read
    /// with `vfio_dma_rw()` instead because the VMM unmapped memory during
    /// a scan (`hashing=inplace`).
    pub(super) pages_hashed_inplace: u64,
    pub(super) pin_runs: u64,
    pub(super) pages_copied_after_unmap: u64,
    /// GVT-g: pages read with kvmgt's `rw_gpa` because kvmgt did not hold
    /// them pinned (`hashing=inplace`).
    pub(super) pages_copied_unpinned: u64,
    /// Time of the stop-copy re-hash.
    pub(super) rehash_stopcopy_us: i64,
    /// Reports whose write set was unbounded (every tracked page read).
    pub(super) writeset_unbounded: u64,
    /// STOP_COPY entered -> vGPU lock taken (the running context ends).
    pub(super) quiesce_wait_us: i64,
    /// Building the final state image.
    pub(super) image_us: i64,
    /// The final image is a delta over the pre-copy image.
    pub(super) final_delta: bool,
    /// Bytes of the final image.
    pub(super) final_bytes: u64,
    /// The final delta was patched from what changed
    /// ([`FinalImage::Patch`]), not diffed from an image built whole.
    pub(super) final_patched: bool,
    /// Patched final images compared, after the stop, with the image
    /// built whole.
    pub(super) final_checks: u64,
    /// ... and found to describe another image: a change the GGTT write
    /// path did not mark (the destination restores the base's entry).
    pub(super) final_mismatches: u64,
    /// New pre-copy images sent after the base went stale
    /// (VFIO_PRECOPY_INFO_REINIT).
    pub(super) precopy_reinits: u64,
    /// Resume side: bytes of images a later full image superseded,
    /// dropped as they arrived.
    pub(super) superseded_bytes: u64,
    /// CPUs a large re-hash of this migration is spread over.
    pub(super) rehash_cpus: u64,
    /// Rounds of chunks re-hashed on several CPUs at once.
    pub(super) rehash_rounds_spread: u64,
}

impl MigStats {
    /// Counts what a scan's in-place hashing did.
    pub(super) fn add_in_place(&mut self, c: InPlaceCounts) {
        self.pages_hashed_inplace += c.pages;
        self.pin_runs += c.runs;
        self.pages_copied_after_unmap += c.copied;
        self.pages_copied_unpinned += c.unpinned;
    }
}

// SPDX-License-Identifier: GPL-2.0

//! The migration layer's debugfs: the `stats` lines of a vGPU's migration,
//! and fault injection (`gmig/fault`).

use core::sync::atomic::{AtomicU64, Ordering};
use kernel::{prelude::*, uaccess::UserSliceReader};

use super::state::Migration;

/// Fault injection (debugfs `gmig/fault`, `fail_stop_copy N`): the next N
/// stop-copy images fail to build as if memory were short, so that tests
/// reach the rollback of a failed STOP_COPY arc on either provider.
static FAIL_STOP_COPY: AtomicU64 = AtomicU64::new(0);

/// Content of debugfs `gmig/fault`.
pub(crate) struct Fault;

impl core::fmt::Debug for Fault {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        writeln!(
            f,
            "fail_stop_copy: {}",
            FAIL_STOP_COPY.load(Ordering::Relaxed)
        )
    }
}

/// debugfs `gmig/fault` write: `fail_stop_copy N`.
pub(crate) fn write_fault(reader: &mut UserSliceReader) -> Result {
    let n = crate::debugfs_knob(reader, "fail_stop_copy")?;
    FAIL_STOP_COPY.store(n, Ordering::Relaxed);
    Ok(())
}

/// Whether an injected failure is due (and takes it).
pub(super) fn injected_failure() -> bool {
    FAIL_STOP_COPY
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .is_ok()
}

impl Migration {
    /// debugfs `stats` lines of the migration.
    pub(crate) fn show_stats(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let s = &self.stats;
        let (tracked, hashed, outside) = self.tracking.as_ref().map_or((0, 0, 0), |t| {
            (
                t.log.tracker.tracked(),
                t.log.tracker.hashed(),
                t.log.far.len(),
            )
        });
        writeln!(f, "state: {}", self.state.name())?;
        writeln!(f, "precopy: {}", self.policy.name())?;
        writeln!(f, "dirty: {}", self.source.name())?;
        writeln!(f, "rehash: {}", self.rehash.name())?;
        writeln!(f, "hashing: {}", self.hashing.name())?;
        writeln!(f, "final_image_from: {}", self.final_image.name())?;
        writeln!(f, "precopy_rounds: {}", s.precopy_rounds)?;
        writeln!(f, "precopy_bytes: {}", s.precopy_bytes)?;
        writeln!(f, "stopcopy_bytes: {}", s.stopcopy_bytes)?;
        writeln!(f, "pages_tracked: {}", tracked)?;
        writeln!(f, "pages_untrackable: {}", outside)?;
        writeln!(f, "pages_hashed: {}", hashed)?;
        writeln!(f, "pages_reported_precopy: {}", s.pages_reported_precopy)?;
        writeln!(f, "pages_dirty_stopcopy: {}", s.pages_dirty_stopcopy)?;
        writeln!(f, "pages_sent_stopcopy: {}", s.pages_sent_stopcopy)?;
        writeln!(f, "pages_rehash_skipped: {}", s.pages_rehash_skipped)?;
        writeln!(f, "pages_rehashed_stopcopy: {}", s.pages_rehashed_stopcopy)?;
        writeln!(f, "pages_rehashed_precopy: {}", s.pages_rehashed_precopy)?;
        writeln!(f, "rehash_stopcopy_us: {}", s.rehash_stopcopy_us)?;
        writeln!(f, "precopy_report_us: {}", s.precopy_report_us)?;
        writeln!(f, "pages_hashed_inplace: {}", s.pages_hashed_inplace)?;
        writeln!(f, "pin_runs: {}", s.pin_runs)?;
        writeln!(
            f,
            "pages_copied_after_unmap: {}",
            s.pages_copied_after_unmap
        )?;
        writeln!(f, "pages_copied_unpinned: {}", s.pages_copied_unpinned)?;
        writeln!(f, "writeset_unbounded: {}", s.writeset_unbounded)?;
        writeln!(f, "rehash_cpus: {}", s.rehash_cpus)?;
        writeln!(f, "rehash_rounds_spread: {}", s.rehash_rounds_spread)?;
        writeln!(f, "quiesce_wait_us: {}", s.quiesce_wait_us)?;
        writeln!(f, "image_us: {}", s.image_us)?;
        writeln!(
            f,
            "final_image: {}",
            if s.final_delta { "delta" } else { "full" }
        )?;
        writeln!(f, "final_image_bytes: {}", s.final_bytes)?;
        writeln!(f, "final_image_patched: {}", u8::from(s.final_patched))?;
        writeln!(f, "final_image_checks: {}", s.final_checks)?;
        writeln!(f, "final_image_mismatches: {}", s.final_mismatches)?;
        writeln!(f, "precopy_reinits: {}", s.precopy_reinits)?;
        writeln!(f, "superseded_bytes: {}", s.superseded_bytes)?;
        writeln!(f, "downtime_us: {}", s.downtime_us)?;
        writeln!(f, "resume_us: {}", s.resume_us)?;
        writeln!(f, "remap_patched: {}", s.remap_patched)?;
        writeln!(f, "stream_errors: {}", s.stream_errors)?;
        writeln!(f, "images_applied: {}", s.images_applied)?;
        writeln!(
            f,
            "log_reports: {} precopy, {} stopcopy",
            s.reports[0], s.reports[1]
        )?;
        writeln!(f, "log_read_errors: {}", s.read_errors)
    }
}

// SPDX-License-Identifier: GPL-2.0

//! The gvt provider's counters over all GVT-g vGPUs and its debugfs file
//! (`gmig/gvt`: the counters, and fault injection).

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use kernel::{prelude::*, uaccess::UserSliceReader};

use crate::gmig_core::gvt::COMPANION_VERSION;

/// Counters over all GVT-g vGPUs (debugfs `gmig/gvt`).
pub(super) struct Counters {
    pub(super) vgpus: AtomicU64,
    pub(super) workloads_queued: AtomicU64,
    pub(super) workloads_completed: AtomicU64,
    pub(super) workloads_failed: AtomicU64,
    pub(super) sched_stops: AtomicU64,
    pub(super) sched_starts: AtomicU64,
    pub(super) ggtt_writes: AtomicU64,
    pub(super) ggtt_foreign: AtomicU64,
    pub(super) ppgtt_shadows: AtomicU64,
    pub(super) pins: AtomicU64,
    pub(super) unpins: AtomicU64,
    pub(super) pages_reported: AtomicU64,
    pub(super) addrs_patched: AtomicU64,
    pub(super) cmds_refused: AtomicU64,
    pub(super) pins_untracked: AtomicU64,
    pub(super) workloads_saved: AtomicU64,
    pub(super) workloads_resubmitted: AtomicU64,
    pub(super) gmas_mapped: AtomicU64,
    pub(super) gmas_refused: AtomicU64,
    pub(super) gpas_written: AtomicU64,
    pub(super) ppgtt_entries: AtomicU64,
    pub(super) scans: AtomicU64,
    pub(super) scan_record_overflows: AtomicU64,
}

pub(super) static REGISTERED: AtomicBool = AtomicBool::new(false);

/// Fault injection (debugfs `gmig/gvt`, `fail_pin_records N`): the next N
/// pin records fail as if memory were short, so that tests reach the path
/// of a pin gmig could not record.
pub(super) static FAIL_PIN_RECORDS: AtomicU64 = AtomicU64::new(0);

/// debugfs `gmig/gvt` write: `fail_pin_records N`.
pub(crate) fn write_control(reader: &mut UserSliceReader) -> Result {
    let n = crate::debugfs_knob(reader, "fail_pin_records")?;
    FAIL_PIN_RECORDS.store(n, Ordering::Relaxed);
    Ok(())
}

pub(super) static COUNTERS: Counters = Counters {
    vgpus: AtomicU64::new(0),
    workloads_queued: AtomicU64::new(0),
    workloads_completed: AtomicU64::new(0),
    workloads_failed: AtomicU64::new(0),
    sched_stops: AtomicU64::new(0),
    sched_starts: AtomicU64::new(0),
    ggtt_writes: AtomicU64::new(0),
    ggtt_foreign: AtomicU64::new(0),
    ppgtt_shadows: AtomicU64::new(0),
    pins: AtomicU64::new(0),
    unpins: AtomicU64::new(0),
    pages_reported: AtomicU64::new(0),
    addrs_patched: AtomicU64::new(0),
    cmds_refused: AtomicU64::new(0),
    pins_untracked: AtomicU64::new(0),
    workloads_saved: AtomicU64::new(0),
    workloads_resubmitted: AtomicU64::new(0),
    gmas_mapped: AtomicU64::new(0),
    gmas_refused: AtomicU64::new(0),
    gpas_written: AtomicU64::new(0),
    ppgtt_entries: AtomicU64::new(0),
    scans: AtomicU64::new(0),
    scan_record_overflows: AtomicU64::new(0),
};

pub(super) fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// Content of debugfs `gmig/gvt`.
pub(crate) struct Status;

impl core::fmt::Debug for Status {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let c = &COUNTERS;
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let state = if REGISTERED.load(Ordering::Relaxed) {
            "registered"
        } else {
            "unavailable"
        };
        writeln!(f, "kvmgt: {state}")?;
        writeln!(f, "interface_version: {COMPANION_VERSION}")?;
        writeln!(f, "vgpus: {}", r(&c.vgpus))?;
        writeln!(f, "workloads_queued: {}", r(&c.workloads_queued))?;
        writeln!(f, "workloads_completed: {}", r(&c.workloads_completed))?;
        writeln!(f, "workloads_failed: {}", r(&c.workloads_failed))?;
        writeln!(f, "sched_stops: {}", r(&c.sched_stops))?;
        writeln!(f, "sched_starts: {}", r(&c.sched_starts))?;
        writeln!(f, "ggtt_writes: {}", r(&c.ggtt_writes))?;
        writeln!(f, "ggtt_foreign: {}", r(&c.ggtt_foreign))?;
        writeln!(f, "ppgtt_shadows: {}", r(&c.ppgtt_shadows))?;
        writeln!(f, "pins: {}", r(&c.pins))?;
        writeln!(f, "unpins: {}", r(&c.unpins))?;
        writeln!(f, "pages_reported: {}", r(&c.pages_reported))?;
        writeln!(f, "addrs_patched: {}", r(&c.addrs_patched))?;
        writeln!(f, "cmds_refused: {}", r(&c.cmds_refused))?;
        writeln!(f, "pins_untracked: {}", r(&c.pins_untracked))?;
        writeln!(f, "workloads_saved: {}", r(&c.workloads_saved))?;
        writeln!(f, "workloads_resubmitted: {}", r(&c.workloads_resubmitted))?;
        writeln!(f, "gmas_mapped: {}", r(&c.gmas_mapped))?;
        writeln!(f, "gmas_refused: {}", r(&c.gmas_refused))?;
        writeln!(f, "gpas_written: {}", r(&c.gpas_written))?;
        writeln!(f, "ppgtt_entries: {}", r(&c.ppgtt_entries))?;
        writeln!(f, "scans: {}", r(&c.scans))?;
        writeln!(f, "scan_record_overflows: {}", r(&c.scan_record_overflows))
    }
}

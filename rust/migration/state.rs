// SPDX-License-Identifier: GPL-2.0

//! The migration state of one vGPU ([`Migration`]) and its dirty log
//! ([`Tracking`]), with what the provider hands it while it runs: shadow
//! events, lost frames, the write sets of what the GPU executes.

use kernel::{
    prelude::*,
    time::{Instant, Monotonic},
};

use super::{params::policies, spread::Spread, stats::MigStats};
use crate::gmig_core::{
    dirtylog::DirtyLog,
    planner::{DirtySource, FinalImage, Hashing, Policy, Rehash},
    provider::{tracker_update, ShadowEvent},
    stream::{ChangedEntries, Incoming},
    vfio::DeviceState::{self, Running as RUNNING},
    writeset::WriteSink,
};

/// The dirty log of a migration, with what its kernel glue needs.
pub(super) struct Tracking {
    pub(super) log: DirtyLog<KVVec<u64>>,
    pub(super) scratch: KBox<[u8; 4096]>,
    /// Lanes to spread a large re-hash over (`None`: the caller's CPU).
    pub(super) spread: Option<Spread>,
    /// The incomplete log was reported in dmesg.
    pub(super) lost_said: bool,
}

/// Migration state of one vGPU.
pub(crate) struct Migration {
    pub(super) state: DeviceState,
    pub(super) policy: Policy,
    pub(super) source: DirtySource,
    pub(super) rehash: Rehash,
    pub(super) hashing: Hashing,
    pub(super) final_image: FinalImage,
    /// The final delta was patched from the GGTT entries marked, and the
    /// entries were not checked against an image built whole yet.
    pub(super) patched: bool,
    pub(super) stats: MigStats,
    pub(super) tracking: Option<Tracking>,
    /// Save side: bytes to hand out and how many were read.
    pub(super) image: KVVec<u8>,
    pub(super) pos: usize,
    /// The first `base_len` bytes of `image` are the pre-copy image, the
    /// base of a stop-copy delta (0: there is none).
    pub(super) base_len: usize,
    /// GGTT entries written since the pre-copy image was built.
    pub(super) changed: Option<ChangedEntries<KVVec<u64>>>,
    /// The full stop-copy image a delta is computed from.
    pub(super) full: KVVec<u8>,
    /// Resume side: bytes written so far, less the images a later full
    /// image superseded.
    pub(super) incoming: KVVec<u8>,
    /// Resume side: the images in `incoming`, as far as they are complete.
    pub(super) arrived: Incoming,
    /// When STOP_COPY was entered (device downtime runs until the last
    /// byte of the final image is read).
    pub(super) stopped_at: Option<Instant<Monotonic>>,
}

impl Migration {
    pub(crate) fn new() -> Self {
        let (policy, source, rehash, hashing, final_image) = policies();
        Self {
            state: RUNNING,
            policy,
            source,
            rehash,
            hashing,
            final_image,
            patched: false,
            stats: MigStats::default(),
            tracking: None,
            image: KVVec::new(),
            pos: 0,
            base_len: 0,
            changed: None,
            full: KVVec::new(),
            incoming: KVVec::new(),
            arrived: Incoming::default(),
            stopped_at: None,
        }
    }

    /// The provider's shadow page tables changed (or its GPU wrote a
    /// page): pages that become GPU-writable are tracked from now on.
    /// Pages that stop being reachable stay tracked, so their last content
    /// is still compared at stop-copy.
    pub(crate) fn shadow_event(&mut self, ev: ShadowEvent) {
        if let (ShadowEvent::GgttWrite { index, .. }, Some(c)) = (ev, self.changed.as_mut()) {
            c.mark(index);
        }
        let (Some(t), Some(r)) = (self.tracking.as_mut(), tracker_update(&ev)) else {
            return;
        };
        for gfn in r.first..r.first.saturating_add(r.count) {
            t.log.note(gfn);
        }
    }

    /// The provider lost a frame the GPU may write (it could not record
    /// it): no report of this migration can be complete, so each fails.
    pub(crate) fn writable_frames_lost(&mut self) {
        if let Some(t) = self.tracking.as_mut() {
            t.log.provider_lost();
        }
    }

    pub(super) fn reset_stats(&mut self) {
        let (p, d, r, h, f) = policies();
        self.policy = p;
        self.source = d;
        self.rehash = r;
        self.hashing = h;
        self.final_image = f;
        self.stats = MigStats::default();
    }

    /// The vGPU runs again: a later stop re-hashes again. Pages found
    /// changed and not reported stay pending (their hashes are current).
    pub(super) fn stop_unscan(&mut self) {
        if let Some(t) = self.tracking.as_mut() {
            t.log.stop_unscan();
        }
    }

    /// A save starts: reset the counters unless dirty logging already
    /// started this migration (QEMU starts logging first).
    pub(super) fn start_save(&mut self) {
        if self.tracking.is_none() {
            self.reset_stats();
        }
    }
}

/// The command streamer's write sets and the device model's own writes:
/// the frames join the tracker (as [`ShadowEvent::GpuWrote`] did) and the
/// write set of the migration, if dirty logging runs.
impl WriteSink for Migration {
    fn may_write(&mut self, gfn: u64) {
        let Some(t) = self.tracking.as_mut() else {
            return;
        };
        // A frame first seen here (a PPGTT-only page) is pending like one
        // a shadow event brings.
        t.log.gpu_may_write(gfn);
    }

    fn unbounded(&mut self) {
        if let Some(t) = self.tracking.as_mut() {
            t.log.written.set_unbounded();
        }
    }
}

// SPDX-License-Identifier: GPL-2.0

//! kvmgt's services on one vGPU ([`VgpuPtr`]): scheduling, the state
//! parts, pending workloads, guest memory through `rw_gpa`.

use kernel::{alloc::flags::GFP_KERNEL_ACCOUNT, prelude::*};

use super::{
    companion::{IntelVgpu, Symbols},
    status::{bump, COUNTERS},
};
use kernel::error::to_result;

use crate::gmig_core::gvt::{
    Part, PendingList, PendingWorkload, MAX_PENDING, WORKLOAD_LEN, WORKLOAD_WORDS,
};

/// kvmgt's vGPU, as the provider calls kvmgt's services on it.
///
/// # Invariants
///
/// `vgpu` is a live vGPU attached to gmig: kvmgt destroys it only after
/// `vgpu_destroy()`, which drops the [`GvtDev`] holding this.
#[derive(Clone, Copy)]
pub(super) struct VgpuPtr {
    pub(super) vgpu: *mut IntelVgpu,
    /// kvmgt's functions, found at registration.
    pub(super) k: &'static Symbols,
}

// SAFETY: kvmgt's services take the vGPU's own locks; the pointer is only
// passed to them.
unsafe impl Send for VgpuPtr {}
// SAFETY: see `Send`.
unsafe impl Sync for VgpuPtr {}

/// Whether the u64 values of `part` travel as little-endian (the others
/// are byte images).
fn u64_part(part: Part) -> bool {
    matches!(part, Part::Ggtt | Part::Fences)
}

impl VgpuPtr {
    pub(super) fn stop_schedule(self) {
        // SAFETY: live vGPU (type invariant).
        unsafe { self.k.stop_schedule(self.vgpu) }
    }

    pub(super) fn start_schedule(self) {
        // SAFETY: live vGPU (type invariant).
        unsafe { self.k.start_schedule(self.vgpu) }
    }

    /// kvmgt saves into an aligned buffer of u64s; `out` gets its bytes.
    pub(super) fn save(self, part: Part, out: &mut [u8]) -> Result {
        // kvmgt's layout is the image's on a little-endian host: an
        // aligned `out` takes the bytes directly, without a buffer
        // allocated and copied in the downtime (a patched final image
        // hands over its scratch, which is aligned).
        if cfg!(target_endian = "little") && out.as_ptr().align_offset(8) == 0 && out.len() % 8 == 0
        {
            // SAFETY: live vGPU (type invariant); `out` holds `out.len()`
            // writable bytes, 8-aligned as kvmgt's u64s need.
            let n = unsafe {
                self.k
                    .save_state(self.vgpu, part as u32, out.as_mut_ptr().cast(), out.len())
            };
            return match usize::try_from(n) {
                Ok(n) if n == out.len() => Ok(()),
                _ => Err(EIO),
            };
        }
        let mut tmp = KVVec::from_elem(0u64, out.len().div_ceil(8), GFP_KERNEL_ACCOUNT)?;
        self.save_raw(part, &mut tmp, out.len())?;
        for (c, v) in out.chunks_mut(8).zip(tmp.iter()) {
            let b = if u64_part(part) {
                v.to_le_bytes()
            } else {
                v.to_ne_bytes()
            };
            c.copy_from_slice(&b[..c.len()]);
        }
        Ok(())
    }

    /// `part` as kvmgt takes it: an aligned buffer of u64s.
    fn part_words(part: Part, data: &[u8]) -> Result<KVVec<u64>> {
        let mut tmp = KVVec::from_elem(0u64, data.len().div_ceil(8), GFP_KERNEL_ACCOUNT)?;
        for (v, c) in tmp.iter_mut().zip(data.chunks(8)) {
            let mut b = [0u8; 8];
            b[..c.len()].copy_from_slice(c);
            *v = if u64_part(part) {
                u64::from_le_bytes(b)
            } else {
                u64::from_ne_bytes(b)
            };
        }
        Ok(tmp)
    }

    pub(super) fn restore(self, part: Part, data: &[u8]) -> Result {
        let tmp = Self::part_words(part, data)?;
        // SAFETY: live vGPU (type invariant); `tmp` holds `data.len()`
        // readable bytes.
        to_result(unsafe {
            self.k
                .restore_state(self.vgpu, part as u32, tmp.as_ptr().cast(), data.len())
        })
    }

    /// Whether kvmgt would restore `data` to `part` (it changes nothing).
    pub(super) fn check(self, part: Part, data: &[u8]) -> Result {
        let tmp = Self::part_words(part, data)?;
        // SAFETY: live vGPU (type invariant); `tmp` holds `data.len()`
        // readable bytes.
        to_result(unsafe {
            self.k
                .check_state(self.vgpu, part as u32, tmp.as_ptr().cast(), data.len())
        })
    }

    /// kvmgt saves `part`, `len` bytes, into `buf` (its u64s as kvmgt
    /// lays them out in memory), which must hold them.
    pub(super) fn save_raw(self, part: Part, buf: &mut [u64], len: usize) -> Result {
        if buf.len() < len.div_ceil(8) {
            return Err(EINVAL);
        }
        // SAFETY: live vGPU (type invariant); `buf` holds at least `len`
        // writable bytes (checked above).
        let n = unsafe {
            self.k
                .save_state(self.vgpu, part as u32, buf.as_mut_ptr().cast(), len)
        };
        if usize::try_from(n).ok() != Some(len) {
            return Err(EIO);
        }
        Ok(())
    }

    /// How many workloads kvmgt has queued and not run.
    pub(super) fn pending_count(self) -> Result<usize> {
        // SAFETY: live vGPU (type invariant); a NULL buffer of no room
        // asks for the number only.
        let n = unsafe { self.k.save_workloads(self.vgpu, core::ptr::null_mut(), 0) };
        usize::try_from(n).map_err(|_| EIO)
    }

    /// Saves the pending workloads into `out` (little-endian records,
    /// [`WORKLOAD_LEN`] bytes each); fails if their number is not the
    /// records `out` holds.
    pub(super) fn save_pending(self, out: &mut [u8]) -> Result {
        let n = out.len() / WORKLOAD_LEN;
        if n > MAX_PENDING || n * WORKLOAD_LEN != out.len() {
            return Err(EINVAL);
        }
        let mut words = KVVec::from_elem(0u32, n * WORKLOAD_WORDS, GFP_KERNEL_ACCOUNT)?;
        let count = u32::try_from(n)?;
        // SAFETY: live vGPU (type invariant); `words` holds `count`
        // records of `WORKLOAD_WORDS` dwords (`struct intel_gvt_workload`,
        // whose size `companion` asserts).
        let got = unsafe { self.k.save_workloads(self.vgpu, words.as_mut_ptr(), count) };
        if u32::try_from(got).ok() != Some(count) {
            return Err(EIO);
        }
        for (c, w) in out
            .chunks_mut(WORKLOAD_LEN)
            .zip(words.chunks(WORKLOAD_WORDS))
        {
            let w: &[u32; WORKLOAD_WORDS] = w.try_into().map_err(|_| EINVAL)?;
            PendingWorkload::from_words(w).encode(c).ok_or(EINVAL)?;
        }
        bump(&COUNTERS.workloads_saved, u64::try_from(n)?);
        Ok(())
    }

    /// Has kvmgt re-create `pending` in their order.
    pub(super) fn resubmit(self, pending: &PendingList<'_>) -> Result {
        let mut words = KVVec::with_capacity(pending.len() * WORKLOAD_WORDS, GFP_KERNEL_ACCOUNT)?;
        for w in pending.iter() {
            words.extend_from_slice(&w.ok_or(EINVAL)?.to_words(), GFP_KERNEL_ACCOUNT)?;
        }
        let count = u32::try_from(pending.len())?;
        // SAFETY: live vGPU (type invariant); `words` holds `count`
        // records of `WORKLOAD_WORDS` dwords.
        to_result(unsafe { self.k.resubmit_workloads(self.vgpu, words.as_ptr(), count) })?;
        bump(&COUNTERS.workloads_resubmitted, u64::from(count));
        Ok(())
    }

    pub(super) fn rw_gpa(self, gpa: u64, buf: *mut u8, len: usize, write: bool) -> Result {
        // SAFETY: live vGPU (type invariant); the callers pass a buffer
        // valid for `len` bytes (read only when `write`).
        to_result(unsafe { self.k.rw_gpa(self.vgpu, gpa, buf.cast(), len, write) })
    }
}

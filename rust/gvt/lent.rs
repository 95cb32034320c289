// SPDX-License-Identifier: GPL-2.0

//! GVT-g's in-place hashing ([`Lent`], `hashing=inplace`): the pages
//! kvmgt holds pinned, lent by `read_pinned` for the time of their hash,
//! the others copied with `rw_gpa`.

use core::ptr::NonNull;
use kernel::{
    bindings,
    ffi::{c_uint, c_void},
    page::BorrowedPage,
};

use super::kvmgt::VgpuPtr;
use crate::{
    gmig_core::pageread::{
        hash_pinned_or_copied, HashSource, PinnedCounts, PinnedHasher, PINNED_MAX,
    },
    migration::pin::{hash_page, InPlaceCounts, InPlaceSource},
};

impl VgpuPtr {
    /// Hashes, where they are, the frames of `first..first + out.len()`
    /// (at most [`PINNED_MAX`]) that kvmgt holds pinned, each lent for the
    /// time of its hash under kvmgt's DMA cache lock; returns the mask of
    /// those frames, `None` if kvmgt refused the call.
    fn read_pinned(self, seed: u64, first: u64, out: &mut [Option<u64>]) -> Option<u64> {
        if out.len() > PINNED_MAX {
            return None;
        }
        let count = u32::try_from(out.len()).ok()?;
        let mut run = LentRun { seed, out, mask: 0 };
        // SAFETY: live vGPU (type invariant); `hash_lent` is called only
        // during the call, with `data` the `run` that outlives it and that
        // nothing else accesses meanwhile.
        let n = unsafe {
            self.k.read_pinned(
                self.vgpu,
                first,
                count,
                hash_lent,
                (&raw mut run).cast::<c_void>(),
            )
        };
        (n >= 0).then_some(run.mask)
    }
}

/// What kvmgt's callbacks of one `read_pinned` call fill.
pub(super) struct LentRun<'a> {
    pub(super) seed: u64,
    /// The run's hashes, at most [`PINNED_MAX`].
    pub(super) out: &'a mut [Option<u64>],
    /// Bit `i`: `out[i]` was hashed in place.
    pub(super) mask: u64,
}

/// kvmgt lends the page of frame `index` of a `read_pinned` run: hashes it
/// where it is ([`hash_page`]: volatile 8-byte reads, no `&[u8]` over
/// memory the guest may be writing). Takes no lock.
///
/// # Safety
///
/// `data` is the [`LentRun`] of the `read_pinned` call in progress, which
/// nothing else accesses during this call; `page` is NULL or a page kvmgt
/// holds pinned until this returns (under its DMA cache lock).
pub(super) unsafe extern "C" fn hash_lent(
    data: *mut c_void,
    index: c_uint,
    page: *mut bindings::page,
) {
    // SAFETY: `data` is the call's `LentRun`, exclusively ours for now
    // (the function's contract).
    let run = unsafe { &mut *data.cast::<LentRun<'_>>() };
    let (Some(page), Ok(i)) = (NonNull::new(page), usize::try_from(index)) else {
        return;
    };
    // A frame past the run is none of ours: ignored. `i` < 64 then.
    let Some(o) = run.out.get_mut(i) else {
        return;
    };
    // SAFETY: kvmgt holds the page pinned until this returns (the
    // function's contract), and the borrow ends before.
    let page = unsafe { BorrowedPage::from_raw(page) };
    *o = Some(hash_page(run.seed, &page));
    run.mask |= 1 << i;
}

/// kvmgt as the holder of the pins of one vGPU.
struct Holder(VgpuPtr);

impl PinnedHasher for Holder {
    fn hash_pinned(&mut self, seed: u64, first: u64, out: &mut [Option<u64>]) -> Option<u64> {
        self.0.read_pinned(seed, first, out)
    }
}

/// GVT-g's in-place source of one scan (`hashing=inplace`): the pages
/// kvmgt holds pinned are lent and hashed where they are, the others
/// copied with `rw_gpa` ([`hash_pinned_or_copied`]).
pub(crate) struct Lent {
    pub(super) vgpu: VgpuPtr,
    pub(super) counts: PinnedCounts,
}

impl InPlaceSource for Lent {
    fn hash_run(
        &mut self,
        seed: u64,
        first: u64,
        out: &mut [Option<u64>],
        copy: &mut dyn HashSource,
    ) {
        // `rw_gpa` (`vfio_dma_rw()`) stays the only correct way to read a
        // frame kvmgt does not hold pinned: gmig pinning it itself would
        // add pins that kvmgt's `dma_unmap` callback does not know to
        // drop, and type1 `BUG()`s when an unmap keeps finding pins.
        hash_pinned_or_copied(
            &mut Holder(self.vgpu),
            copy,
            &mut self.counts,
            seed,
            first,
            out,
        );
    }

    fn counts(&self) -> InPlaceCounts {
        InPlaceCounts {
            runs: self.counts.calls,
            pages: self.counts.pages,
            copied: 0,
            unpinned: self.counts.copied,
        }
    }

    /// Lanes share nothing of gmig's: each lane's `read_pinned` call takes
    /// kvmgt's `cache_lock` for its own run, so the lent pages of several
    /// lanes are hashed one call after the other (only their `rw_gpa`
    /// copies overlap), and a lane that is a work item holds no lock when
    /// it takes `cache_lock`, while the caller it works for holds `inner`
    /// and waits: the order stays `inner` -> `cache_lock` (see the
    /// module's lock order).
    fn for_lane(&self, _lane: usize) -> Self {
        Self {
            vgpu: self.vgpu,
            counts: PinnedCounts::default(),
        }
    }
}

// SPDX-License-Identifier: GPL-2.0

//! Hashing guest pages in place (module parameter `hashing=inplace`, the
//! default): the sim's [`HashSource`] for the tracker's scans, and the
//! [`InPlaceSource`] trait that it and the gvt provider's source (which
//! borrows kvmgt's pins instead, `crate::gvt::Lent`) implement.
//!
//! A scan hands the source runs of at most [`BATCH`] contiguous frames
//! ([`crate::gmig_core::pageread`]). For each run the source:
//!
//! 1. marks the run's IOVA range busy in the vGPU's [`PinWindow`], in the
//!    slot of the scan's lane (a re-hash spread over CPUs, `crate::migration::crew`,
//!    pins on every lane at once: one busy range per lane),
//! 2. pins the run with one `vfio_pin_pages()` call (read only),
//! 3. maps each page with `kmap_local_page()` and hashes it through
//!    volatile 8-byte reads ([`page_hash_words`]): the guest may write the
//!    page while pre-copy hashes it, so no `&[u8]` is ever made over guest
//!    memory; a racing write makes the hash that of a mix of old and new
//!    words, and the write set names the page again,
//! 4. unmaps, unpins the run, clears the busy range and wakes a waiting
//!    `dma_unmap` callback.
//!
//! A run whose pin fails is pinned again page by page, so that one
//! unmapped page does not make its neighbours unreadable; a page that
//! cannot be pinned counts as changed, as a failed copy did.
//!
//! # The DMA-unmap rules and the lock analysis
//!
//! A range the VMM unmaps must hold no page pinned by the device once its
//! `dma_unmap` callback returns: type1 calls the callbacks again while a
//! page of the range stays pinned and `BUG()`s after ten tries, iommufd
//! `WARN`s after a hundred. The callback ([`PinWindow::unmap`]) therefore
//! waits until no busy range, of any lane, overlaps the unmapped one. The
//! busy range is set before the pin and cleared after the unpin, so when
//! the callback returns the run is unpinned, whether the pin happened
//! before the unmap looked for pins or after.
//!
//! The callback takes only [`PinWindow::busy`] (a spinlock no one holds
//! across a call into VFIO) and never the vGPU lock: type1 calls it with
//! its device list lock held and the iommu lock dropped, and the hashing
//! runs under the vGPU lock and takes the iommu lock in `vfio_pin_pages()`
//! and `vfio_unpin_pages()` (vGPU lock -> iommu lock -> device list lock ->
//! vGPU lock would be a cycle). What the callback waits for is a short
//! stretch of the scan (pin, hash at most 32 pages, unpin) that holds no
//! lock the callback's caller holds, on whichever lane: a lane that is a
//! work item holds no lock at all there but [`PinWindow::busy`] for a
//! moment, and the vGPU lock its caller holds is not one the callback
//! takes. The unpin that ends the wait takes type1's iommu lock, which the
//! unmapping thread dropped before calling back: the callback's wait needs
//! the iommu lock exactly where upstream's own rule for a callback (unpin
//! from it, as kvmgt does) needs it, and adds no lock to type1's order.
//! iommufd (`iommufd_access_notify_unmap()`) calls the callback with no
//! lock of its own held, and refuses new pins of an area being unmapped
//! (`prevent_access`).
//!
//! type1 does not refuse them: a scan that kept pinning pages of a range
//! being unmapped could make type1 call back more than ten times. So the
//! first callback a scan sees (a count in [`PinWindow`]) makes the rest of
//! that scan, on every lane, read pages with `vfio_dma_rw()`, which pins
//! nothing (see [`InPlace::hash_run`]); the next scan pins again.

use core::{
    ptr::NonNull,
    sync::atomic::{AtomicU64, Ordering},
};

use kernel::{
    bindings,
    new_condvar,
    new_spinlock,
    page::BorrowedPage,
    prelude::*,
    sync::{CondVar, SpinLock}, //
};

use super::crew::MAX_LANES;

use crate::{
    gmig_core::{
        gtt::PAGE_SIZE,
        hash::{page_hash_words, PAGE_BYTES},
        pageread::{HashSource, BATCH},
    },
    vfio,
};

/// Words of a page.
const WORDS: usize = PAGE_BYTES / 8;

/// The guest pages a vGPU's scan has pinned or is pinning, for the
/// `dma_unmap` callback.
#[pin_data]
pub(crate) struct PinWindow {
    /// Per lane of a scan, the IOVA range `[start, end)` it has pinned or
    /// is pinning.
    #[pin]
    busy: SpinLock<[Option<(u64, u64)>; MAX_LANES]>,
    /// Notified when `busy` is cleared.
    #[pin]
    idle: CondVar,
    /// `dma_unmap` callbacks so far.
    unmaps: AtomicU64,
}

impl PinWindow {
    /// A window with nothing pinned.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            busy <- new_spinlock!([None; MAX_LANES], "PinWindow::busy"),
            idle <- new_condvar!("PinWindow::idle"),
            unmaps: AtomicU64::new(0),
        })
    }

    /// The `dma_unmap` callback of `[iova, iova + length)`: returns once no
    /// page of the range is pinned by this vGPU, on any lane (see the
    /// module's lock analysis). Takes no vGPU lock.
    pub(crate) fn unmap(&self, iova: u64, length: u64) {
        self.unmaps.fetch_add(1, Ordering::AcqRel);
        let end = iova.saturating_add(length);
        let mut busy = self.busy.lock();
        while busy.iter().flatten().any(|&(s, e)| s < end && iova < e) {
            self.idle.wait(&mut busy);
        }
    }

    /// Marks `[start, end)` busy for `lane` until the returned guard is
    /// dropped.
    fn hold(&self, lane: usize, start: u64, end: u64) -> Busy<'_> {
        let lane = lane.min(MAX_LANES - 1);
        if let Some(b) = self.busy.lock().get_mut(lane) {
            *b = Some((start, end));
        }
        Busy(self, lane)
    }
}

/// A lane's busy range of a [`PinWindow`]; dropping it clears the range and
/// wakes the callbacks waiting for it.
struct Busy<'a>(&'a PinWindow, usize);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        if let Some(b) = self.0.busy.lock().get_mut(self.1) {
            *b = None;
        }
        self.0.idle.notify_all();
    }
}

/// A run of guest pages pinned for reading; dropping it unpins them.
///
/// # Invariants
///
/// `pages[..n]` are the pages of `iova..iova + n * PAGE_SIZE`, pinned by
/// one successful `pin_pages()` of that run on the open device `vdev`,
/// until `drop` unpins them.
struct PinnedRun<'a> {
    vdev: &'a vfio::device::Device,
    iova: u64,
    n: usize,
    pages: [*mut bindings::page; BATCH],
}

impl<'a> PinnedRun<'a> {
    /// Pins the `n` (1..=[`BATCH`]) pages from `iova`.
    ///
    /// # Safety
    ///
    /// The device is open (`vfio_pin_pages()` requires it) until the
    /// returned run is dropped, and `iova..iova + n * PAGE_SIZE` is marked
    /// busy in the vGPU's [`PinWindow`] for as long (so that a `dma_unmap`
    /// callback waits for the unpin).
    unsafe fn pin(vdev: &'a vfio::device::Device, iova: u64, n: usize) -> Result<Self> {
        if n == 0 || n > BATCH {
            return Err(EINVAL);
        }
        let mut pages: [*mut bindings::page; BATCH] = [core::ptr::null_mut(); BATCH];
        // SAFETY: the device is open (the contract), and the run is busy in
        // the window until the run is dropped, which unpins it: a
        // `dma_unmap` callback waits for that.
        unsafe { vdev.pin_pages(iova, &mut pages[..n]) }?;
        // INVARIANT: `pin_pages` pins all `n` pages or fails.
        Ok(Self {
            vdev,
            iova,
            n,
            pages,
        })
    }

    /// The run's pages, valid while the run is.
    fn pages(&self) -> impl Iterator<Item = Option<BorrowedPage<'_>>> + '_ {
        self.pages.iter().take(self.n).map(|&p| {
            // SAFETY: `p` is a page of the run, pinned until `self` is
            // dropped (the invariant), which the borrow outlives.
            NonNull::new(p).map(|p| unsafe { BorrowedPage::from_raw(p) })
        })
    }
}

impl Drop for PinnedRun<'_> {
    fn drop(&mut self) {
        // SAFETY: the run was pinned by one `pin_pages()` of the same IOVA
        // and count on the open device (the invariant), and no
        // `BorrowedPage` of it outlives `self`.
        unsafe { self.vdev.unpin_pages(self.iova, self.n) };
    }
}

/// Hashes a pinned page where it is, through volatile 8-byte reads (also
/// the pages kvmgt lends the gvt provider, `crate::gvt`).
pub(crate) fn hash_page(seed: u64, page: &BorrowedPage<'_>) -> u64 {
    // The kernel crate's `Page` maps a page only to copy it
    // (`read_raw()`); its `with_page_mapped()` is private. So the page is
    // mapped here, as `Page` does it.
    //
    // SAFETY: `page` is a valid, pinned `struct page` (`BorrowedPage`'s
    // invariant).
    let va = unsafe { bindings::kmap_local_page(page.as_ptr()) };
    let words = va.cast::<u64>().cast_const();
    let h = page_hash_words(seed, |i| {
        // SAFETY:
        // - `words` is the page-aligned local mapping of a 4096-byte page,
        //   and `i.min(WORDS - 1)` indexes one of its 512 aligned words
        //   (`page_hash_words` asks for `i < 512` only);
        // - the page is guest memory that the guest may write meanwhile:
        //   one volatile load per word, no reference to it, so the read is
        //   of whatever the word holds (as `READ_ONCE()` in C).
        u64::from_le(unsafe { words.add(i.min(WORDS - 1)).read_volatile() })
    });
    // SAFETY: `va` is this task's latest local mapping, made above.
    unsafe { bindings::kunmap_local(va) };
    h
}

/// A source that hashes guest pages in place for one scan
/// (`hashing=inplace`): the sim's [`InPlace`], GVT-g's `crate::gvt::Lent`.
///
/// A re-hash spread over CPUs (`crate::migration::crew`) hashes through one source
/// per lane, each made by [`InPlaceSource::for_lane`] and used on its
/// lane's thread only, the lanes at once: a source is `Send`, and the
/// sources of one scan may run side by side (the sim's pin in their own
/// slots of the [`PinWindow`]; GVT-g's each take kvmgt's `cache_lock` for
/// their own `read_pinned` calls).
pub(crate) trait InPlaceSource: Send {
    /// Hashes the run `first..first + out.len()` (at most [`BATCH`]) into
    /// `out`; `copy` reads the pages the source cannot reach in place.
    fn hash_run(
        &mut self,
        seed: u64,
        first: u64,
        out: &mut [Option<u64>],
        copy: &mut dyn HashSource,
    );
    /// What the scan did so far.
    fn counts(&self) -> InPlaceCounts;
    /// The same scan's source for `lane` (below [`MAX_LANES`]; no two
    /// sources of one scan hash on the same lane at once), nothing counted
    /// yet.
    fn for_lane(&self, lane: usize) -> Self
    where
        Self: Sized;
}

/// The in-place [`HashSource`] of one scan, on one lane.
pub(crate) struct InPlace<'a> {
    vdev: &'a vfio::device::Device,
    win: &'a PinWindow,
    /// The lane of the scan ([`crate::migration::crew`]) this source hashes on: its
    /// slot in the window. Lanes hash on distinct threads at once.
    lane: usize,
    /// [`PinWindow::unmaps`] when the scan started.
    unmaps: u64,
    /// What the scan did so far.
    counts: InPlaceCounts,
}

/// What an in-place scan did.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct InPlaceCounts {
    /// Runs pinned with one `vfio_pin_pages()` call each.
    pub(crate) runs: u64,
    /// Pages hashed in place.
    pub(crate) pages: u64,
    /// Pages read with `vfio_dma_rw()` because a `dma_unmap` came.
    pub(crate) copied: u64,
    /// GVT-g: pages copied with kvmgt's `rw_gpa` because kvmgt did not
    /// hold them pinned.
    pub(crate) unpinned: u64,
}

impl<'a> InPlace<'a> {
    /// The source of a scan starting now.
    ///
    /// # Safety
    ///
    /// The device behind `vdev` is open while the source is used, and `win`
    /// is the window its `dma_unmap` callback waits on.
    pub(crate) unsafe fn new(vdev: &'a vfio::device::Device, win: &'a PinWindow) -> Self {
        Self {
            vdev,
            win,
            lane: 0,
            unmaps: win.unmaps.load(Ordering::Acquire),
            counts: InPlaceCounts::default(),
        }
    }
}

impl InPlaceSource for InPlace<'_> {
    fn counts(&self) -> InPlaceCounts {
        self.counts
    }

    /// Pins, hashes and unpins the run `first..first + out.len()`; runs of
    /// more than one page that cannot be pinned whole are tried page by
    /// page. `copy` reads pages once a `dma_unmap` callback came during
    /// this scan.
    fn hash_run(
        &mut self,
        seed: u64,
        first: u64,
        out: &mut [Option<u64>],
        copy: &mut dyn HashSource,
    ) {
        // `vfio_dma_rw()` is the only correct way to read once the VMM
        // unmaps memory under this scan: type1 does not refuse a new pin
        // of a range it is unmapping, and each pin there would make it
        // call back again (it `BUG()`s after ten tries). It pins nothing.
        if self.win.unmaps.load(Ordering::Acquire) != self.unmaps {
            self.counts.copied += out.len() as u64;
            copy.hash_run(seed, first, out);
            return;
        }
        if !self.pinned(seed, first, out) && out.len() > 1 {
            for (gfn, o) in (first..).zip(out.chunks_mut(1)) {
                self.pinned(seed, gfn, o);
            }
        }
    }

    /// Pins in `lane`'s slot of the window: a `dma_unmap` callback waits
    /// for every lane's run. One that came since the scan started makes
    /// this lane copy too.
    fn for_lane(&self, lane: usize) -> Self {
        Self {
            vdev: self.vdev,
            win: self.win,
            lane,
            unmaps: self.unmaps,
            counts: InPlaceCounts::default(),
        }
    }
}

impl InPlace<'_> {
    /// Hashes `first..first + out.len()` pinned as one run; `false` (every
    /// page unreadable) if the run cannot be pinned.
    fn pinned(&mut self, seed: u64, first: u64, out: &mut [Option<u64>]) -> bool {
        let Some(iova) = first.checked_mul(PAGE_SIZE) else {
            out.fill(None);
            return true;
        };
        let Some(end) = (out.len() as u64)
            .checked_mul(PAGE_SIZE)
            .and_then(|l| iova.checked_add(l))
        else {
            out.fill(None);
            return true;
        };
        // Dropped last: the run is unpinned before the range stops being
        // busy.
        let _busy = self.win.hold(self.lane, iova, end);
        // SAFETY: the device is open while `self` is used (`new()`'s
        // contract), and the run is busy in the window its callback waits
        // on until `_busy` is dropped, after the run.
        let Ok(run) = (unsafe { PinnedRun::pin(self.vdev, iova, out.len()) }) else {
            out.fill(None);
            return false;
        };
        for (o, page) in out.iter_mut().zip(run.pages()) {
            *o = page.map(|p| hash_page(seed, &p));
        }
        self.counts.runs += 1;
        self.counts.pages += out.len() as u64;
        drop(run);
        true
    }
}

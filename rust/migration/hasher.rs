// SPDX-License-Identifier: GPL-2.0

//! The [`Hasher`] of a scan (a report's re-hash, the stop-copy re-hash):
//! the pages it hashes ([`Pages`]: in place, or copied into a scratch
//! page) and, when the migration has a crew, the lanes that hash the
//! chunks of a round at once ([`Lanes`]).

use kernel::prelude::*;

use super::{
    crew::{Crew, Shares, MAX_LANES},
    device::MigDevice,
    pin::{InPlaceCounts, InPlaceSource},
    spread::Spread,
    state::Tracking,
    stats::MigStats,
};
use crate::gmig_core::{
    dirtylog::DirtyLog,
    gtt::PAGE_SIZE,
    pageread::{Batched, Chunk, ChunkHasher, Chunked, Copying, HashSource, Hasher},
    planner::Hashing,
};

/// The pages one scan hashes: in place when the migration's `hashing` is
/// `inplace` and the device offers it ([`MigDevice::in_place`]), else
/// copied into the scratch page with [`MigDevice::read_guest`].
struct Pages<'a, D: MigDevice> {
    d: &'a D,
    scratch: &'a mut [u8; 4096],
    in_place: Option<D::InPlace<'a>>,
}

impl<'a, D: MigDevice> Pages<'a, D> {
    pub(super) fn new(d: &'a D, hashing: Hashing, open: bool, scratch: &'a mut [u8; 4096]) -> Self {
        let in_place = match hashing {
            Hashing::InPlace => d.in_place(open),
            Hashing::Copy => None,
        };
        Self {
            d,
            scratch,
            in_place,
        }
    }
}

impl<D: MigDevice> Pages<'_, D> {
    /// What hashing in place did (all zero on the copy path).
    fn counts(&self) -> InPlaceCounts {
        self.in_place
            .as_ref()
            .map_or_else(InPlaceCounts::default, InPlaceSource::counts)
    }
}

impl<D: MigDevice> HashSource for Pages<'_, D> {
    fn hash_run(&mut self, seed: u64, first: u64, out: &mut [Option<u64>]) {
        let Self {
            d,
            scratch,
            in_place,
        } = self;
        let mut copy = Copying::new(scratch, |gfn, buf| {
            d.read_guest(gfn * PAGE_SIZE, &mut buf[..])
        });
        match in_place {
            Some(p) => p.hash_run(seed, first, out, &mut copy),
            None => copy.hash_run(seed, first, out),
        }
    }
}

/// Hashes the chunks of a round on the lanes of the migration's crew, each
/// lane through its own [`Pages`].
struct Lanes<'a, D: MigDevice> {
    crew: &'a Crew,
    /// A VFIO user has the device open (read under the vGPU lock).
    open: bool,
    /// Per lane, its source (`None` past the crew's lanes).
    pages: [Option<Pages<'a, D>>; MAX_LANES],
    /// Rounds spread over the crew.
    spread_rounds: u64,
}

impl<'a, D: MigDevice> Lanes<'a, D> {
    /// Lane 0 hashes through `first` (the caller's scratch page), lane `k`
    /// through scratch page `k - 1` of `more`; in place on each lane if
    /// `first` does.
    pub(super) fn new(
        crew: &'a Crew,
        open: bool,
        first: Pages<'a, D>,
        more: &'a mut [KBox<[u8; 4096]>],
    ) -> Self {
        let (d, template) = (first.d, first.in_place.as_ref().map(|p| p.for_lane(0)));
        let mut more = more.iter_mut();
        let mut first = Some(first);
        let lanes = crew.lanes();
        let pages = core::array::from_fn(|k| match k {
            0 => first.take(),
            k if k < lanes => more.next().map(|scratch| Pages {
                d,
                scratch,
                in_place: template.as_ref().map(|p| p.for_lane(k)),
            }),
            _ => None,
        });
        Self {
            crew,
            open,
            pages,
            spread_rounds: 0,
        }
    }
}

impl<D: MigDevice> ChunkHasher for Lanes<'_, D> {
    fn hash_chunks(&mut self, seed: u64, chunks: &mut [Chunk], spread: bool) {
        let open = self.open;
        let n = chunks.len();
        let chunks = Shares::new(chunks);
        let lanes = Shares::new(&mut self.pages[..]);
        self.crew.fork(n, spread, &|lane, task| {
            // SAFETY: a fork runs each task once and each lane on one
            // thread at a time (`crate::migration::crew`): chunk `task` and lane
            // `lane`'s source are this call's alone.
            let (chunk, pages) = unsafe { (chunks.get(task), lanes.get(lane)) };
            let Some(chunk) = chunk else {
                return;
            };
            match pages {
                // The vGPU lock the caller holds keeps the device open
                // (a close takes it); a device found closed all the same
                // is gone: its pages count as changed.
                Some(Some(p)) if open => chunk.hash(p, seed),
                _ => chunk.fail(),
            }
        });
        self.spread_rounds += u64::from(spread && self.crew.lanes() > 1 && n > 1);
    }
}

/// Runs `f` (a scan) with the [`Hasher`] of this migration: rounds of
/// chunks spread over its crew if it has one, else the caller's CPU a
/// batch at a time; counts what hashing in place did and the rounds
/// spread.
fn with_hasher<D: MigDevice, R>(
    d: &D,
    hashing: Hashing,
    open: bool,
    scratch: &mut [u8; 4096],
    spread: Option<&mut Spread>,
    stats: &mut MigStats,
    f: impl FnOnce(&mut dyn Hasher) -> R,
) -> R {
    let pages = Pages::new(d, hashing, open, scratch);
    let Some(Spread {
        crew,
        chunks,
        scratch: more,
    }) = spread
    else {
        let mut pages = pages;
        let r = f(&mut Batched::new(&mut pages));
        stats.add_in_place(pages.counts());
        return r;
    };
    let mut lanes = Lanes::new(crew, open, pages, more);
    let r = match Chunked::new(chunks, &mut lanes) {
        Some(mut h) => f(&mut h),
        // No chunk (cannot be: ROUND_CHUNKS of them): the caller's CPU.
        None => match lanes.pages.get_mut(0) {
            Some(Some(p)) => f(&mut Batched::new(p)),
            _ => f(&mut Batched::new(&mut NoPages)),
        },
    };
    for p in lanes.pages.iter().flatten() {
        stats.add_in_place(p.counts());
    }
    stats.rehash_rounds_spread += lanes.spread_rounds;
    r
}

/// A source that reads nothing (every page counts as changed).
struct NoPages;

impl HashSource for NoPages {
    fn hash_run(&mut self, _seed: u64, _first: u64, out: &mut [Option<u64>]) {
        out.fill(None);
    }
}

impl Tracking {
    /// Runs `f`, a scan of the log, with this migration's [`Hasher`]
    /// ([`with_hasher`]: spread over its crew if it has one).
    pub(super) fn scan<D: MigDevice, R>(
        &mut self,
        d: &D,
        hashing: Hashing,
        open: bool,
        stats: &mut MigStats,
        f: impl FnOnce(&mut DirtyLog<KVVec<u64>>, &mut dyn Hasher) -> R,
    ) -> R {
        let Self {
            log,
            scratch,
            spread,
            ..
        } = self;
        with_hasher(d, hashing, open, scratch, spread.as_mut(), stats, |h| {
            f(log, h)
        })
    }
}

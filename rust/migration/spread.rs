// SPDX-License-Identifier: GPL-2.0

//! What a migration allocates to spread its large re-hashes over CPUs
//! ([`Spread`]: its crew, the chunks of a round, a scratch page per lane),
//! with its tracker when dirty logging starts: nothing is allocated in the
//! downtime.

use kernel::{alloc::flags::GFP_KERNEL_ACCOUNT, prelude::*};

use super::crew::Crew;
use crate::gmig_core::pageread::Chunk;

/// Chunks of one round of a spread re-hash (16 MiB of guest memory; 96
/// KiB of buffers per migration, plus a scratch page per lane past the
/// caller's: Documentation/migration.rst, "Memory charged to the VMM").
const ROUND_CHUNKS: usize = 16;

/// A migration's means to spread a re-hash over CPUs, allocated with its
/// tracker (so nothing is allocated in the downtime).
pub(super) struct Spread {
    pub(super) crew: Crew,
    /// The chunks of a round.
    pub(super) chunks: KVVec<Chunk>,
    /// A scratch page per lane past the caller's (the copy path's).
    pub(super) scratch: KVec<KBox<[u8; 4096]>>,
}

/// `n` empty chunks, written in place. A [`Chunk`] is 6 KiB: passed by
/// value, as `KVVec::from_elem()` does, two copies of it sit in the frames
/// of one call chain, which overflowed the 16 KiB stack of the
/// `DMA_LOGGING_START` ioctl.
fn empty_chunks(n: usize) -> Option<KVVec<Chunk>> {
    static EMPTY: Chunk = Chunk::new();
    let mut v = KVVec::with_capacity(n, GFP_KERNEL_ACCOUNT).ok()?;
    for slot in v.spare_capacity_mut().iter_mut().take(n) {
        // SAFETY: `slot` is valid for the write of one `Chunk`, which does
        // not overlap `EMPTY`; a `Chunk` is plain integers that own
        // nothing, so a byte copy of `EMPTY` is an empty chunk.
        unsafe { core::ptr::copy_nonoverlapping(&EMPTY, slot.as_mut_ptr(), 1) };
    }
    // SAFETY: the capacity is at least `n`, and the first `n` items were
    // written above.
    unsafe { v.inc_len(n) };
    Some(v)
}

/// A zeroed scratch page, zeroed where it is allocated (not a 4 KiB array
/// on the stack moved into the box).
pub(super) fn zeroed_page() -> Result<KBox<[u8; 4096]>> {
    KBox::init(pin_init::init_zeroed(), GFP_KERNEL_ACCOUNT)
}

impl Spread {
    /// For `lanes` lanes; `None` for one (or without memory: then every
    /// re-hash runs on the caller's CPU).
    pub(super) fn new(lanes: usize) -> Option<Self> {
        if lanes < 2 {
            return None;
        }
        let crew = Crew::new(lanes).ok()?;
        let chunks = empty_chunks(ROUND_CHUNKS)?;
        let mut scratch = KVec::with_capacity(crew.lanes() - 1, GFP_KERNEL_ACCOUNT).ok()?;
        for _ in 1..crew.lanes() {
            scratch.push(zeroed_page().ok()?, GFP_KERNEL_ACCOUNT).ok()?;
        }
        Some(Self {
            crew,
            chunks,
            scratch,
        })
    }
}

// SPDX-License-Identifier: GPL-2.0

//! What the migration layer asks of a vGPU: [`MigDevice`], the object
//! behind one vfio_device (its lock, guest memory, messages, its source of
//! pages hashed in place), and [`Locked`], what its lock protects.

use kernel::{device::Device, prelude::*};

use super::{pin::InPlaceSource, state::Migration};
use crate::gmig_core::{mem::GuestMem, provider::Provider};

#[cfg(doc)]
use crate::gmig_core::provider::ShadowEvent;

/// What the vGPU lock protects, as the migration layer sees it.
pub(crate) struct Locked<'a, P> {
    /// The vGPU backend.
    pub(crate) prov: &'a mut P,
    /// Its migration state.
    pub(crate) mig: &'a mut Migration,
    /// A VFIO user has the device open (guest memory is reachable).
    pub(crate) open: bool,
}

/// A vGPU the migration layer drives: the object behind one vfio_device.
/// `Sync`: the lanes of a spread re-hash read guest memory through it on
/// several CPUs at once ([`MigDevice::read_guest`], [`MigDevice::in_place`]'s
/// source).
pub(crate) trait MigDevice: Sync {
    /// Its backend.
    type Prov: Provider;
    /// Guest memory for a restore's remapping.
    type Mem<'a>: GuestMem
    where
        Self: 'a;
    /// Its source of pages hashed in place ([`MigDevice::in_place`]).
    type InPlace<'a>: InPlaceSource
    where
        Self: 'a;

    /// The device messages are logged for.
    fn dev(&self) -> &Device;
    /// Runs `f` with the vGPU lock held.
    fn with_locked<R>(&self, f: impl FnOnce(&mut Locked<'_, Self::Prov>) -> R) -> R;
    /// Reads guest memory (a page to hash, on the copy path).
    fn read_guest(&self, gpa: u64, buf: &mut [u8]) -> Result;
    /// The source that hashes guest pages in place for one scan, if the
    /// device has one (`hashing=inplace`; `open`: a VFIO user has the
    /// device open, read under the vGPU lock the caller holds). `None`:
    /// pages are copied with [`MigDevice::read_guest`].
    fn in_place(&self, _open: bool) -> Option<Self::InPlace<'_>> {
        None
    }
    /// Guest memory for [`Provider::restore_state`].
    fn mem(&self) -> Self::Mem<'_>;
    /// An arc is about to take the vGPU lock (sim: the command streamer
    /// yields after its running context).
    fn arc_begin(&self) {}
    /// An arc ran, with the vGPU lock still held (sim: kick the streamer
    /// if the vGPU still runs and has work).
    fn arc_end(&self, _l: &Locked<'_, Self::Prov>) {}
    /// Hands the migration what the backend learnt outside the vGPU lock
    /// (GVT-g's hooks); called before the tracker is used.
    fn sync(&self, _mig: &mut Migration) {}
    /// Dirty logging starts (before the writable frames are enumerated).
    /// An error refuses the start: the provider cannot enumerate every
    /// frame the GPU may write.
    fn logging_start(&self) -> Result {
        Ok(())
    }
    /// Dirty logging stops (which cannot be refused).
    fn logging_stop(&self) {}
    /// A restore put the vGPU at GGTT base `dst`, the source's was `src`:
    /// the provider says how its graphics addresses follow (`remapped`:
    /// addresses the restore itself patched).
    fn restored_elsewhere(&self, src: u64, dst: u64, remapped: u64);
    /// Whether every write of a GGTT entry of [`Provider::ggtt_in_image`]
    /// reaches [`Migration::shadow_event`] as a [`ShadowEvent::GgttWrite`]
    /// while the migration runs. If not, a stop-copy delta compares every
    /// entry.
    fn ggtt_writes_seen(&self) -> bool {
        false
    }
}

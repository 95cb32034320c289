// SPDX-License-Identifier: GPL-2.0

//! The save side's images: the pre-copy image kept as the base of the
//! stop-copy delta, the stop-copy image built behind it (a patched or a
//! built delta, else a full image) and checked after the stop, the
//! estimate MIG_DATA_SIZE answers, and a stale base's re-init.

use kernel::{alloc::flags::GFP_KERNEL_ACCOUNT, prelude::*};

use super::{debugfs::injected_failure, device::MigDevice, state::Migration};
use crate::{
    gmig_core::{
        planner::FinalImage,
        provider::Provider,
        stream::{self, delta, ChangedEntries, Incoming},
        vfio::DeviceState::PreCopy as PRE_COPY,
    },
    log::dev_ratelimited,
};

impl Migration {
    /// Drops the save side's images (the image buffer is kept for reuse
    /// within this migration, the delta's bookkeeping freed).
    pub(super) fn drop_images(&mut self) {
        self.image.clear();
        self.pos = 0;
        self.base_len = 0;
        self.changed = None;
        self.full = KVVec::new();
    }

    /// The migration ended (the device runs again, left STOP_COPY, or was
    /// reset): every buffer of both sides is freed, none kept for reuse.
    pub(super) fn release_images(&mut self) {
        self.drop_images();
        self.image = KVVec::new();
        self.incoming = KVVec::new();
        self.arrived = Incoming::default();
    }

    /// The pre-copy image is in `image`: it is the base of the stop-copy
    /// delta, and GGTT writes are marked from now on if the device reports
    /// them all. What the stop-copy needs is allocated here, outside the
    /// downtime; without memory the final image is a full one.
    pub(super) fn keep_base(&mut self, p: &impl Provider, writes_seen: bool) {
        let len = p.state_len();
        let span = p.ggtt_in_image();
        let words = ChangedEntries::<KVVec<u64>>::words_for(span.entries);
        self.changed = writes_seen
            .then(|| KVVec::from_elem(0u64, words, GFP_KERNEL_ACCOUNT).ok())
            .flatten()
            .and_then(|w| ChangedEntries::new(span, w));
        // `full` is sized (and zeroed) here: a patched final image fills
        // its sections in it without a memset in the downtime.
        self.full.clear();
        let reserved = self.full.resize(len, 0, GFP_KERNEL_ACCOUNT).is_ok()
            && self.image.reserve(len / 2, GFP_KERNEL_ACCOUNT).is_ok();
        self.base_len = if reserved { self.image.len() } else { 0 };
    }

    /// Builds the stop-copy image behind what is left of the pre-copy one:
    /// a delta when the pre-copy image is the base and some of it went out
    /// (the destination then gets all of it), else a full image. A pre-copy
    /// image none of which was read is dropped. On failure the save side
    /// is as it was: the pre-copy image, what was read of it, its base.
    pub(super) fn build_final(&mut self, p: &impl Provider) -> core::result::Result<(), SaveError> {
        let (len, pos, base_len) = (self.image.len(), self.pos, self.base_len);
        let res = self.append_final(p);
        if res.is_err() {
            self.image.truncate(len);
            self.pos = pos;
            self.base_len = base_len;
            self.full.clear();
        }
        res
    }

    /// [`Migration::build_final`] without the rollback.
    fn append_final(&mut self, p: &impl Provider) -> core::result::Result<(), SaveError> {
        // Unread pre-copy bytes go out first, unless none was read.
        let unread = match self.pos {
            0 => 0,
            pos => self.image.len() - pos,
        };
        self.stats.final_delta = false;
        self.stats.final_patched = false;
        self.patched = false;
        if injected_failure() {
            return Err(SaveError::Injected);
        }
        if self.pos == 0 {
            // Built aside, so that a failure keeps the pre-copy image.
            self.full.clear();
            build_image(p, &mut self.full)?;
            core::mem::swap(&mut self.image, &mut self.full);
            self.full = KVVec::new();
            self.base_len = 0;
            self.changed = None;
        } else if self.base_len > 0 && self.base_len == self.image.len() {
            self.stats.final_patched =
                self.final_image == FinalImage::Patch && self.append_patch(p, false)?;
            self.stats.final_delta = self.stats.final_patched;
            if !self.stats.final_patched {
                self.full.clear();
                build_image(p, &mut self.full)?;
                self.stats.final_delta = self.append_delta().is_ok();
                if !self.stats.final_delta {
                    self.append_full()?;
                }
            }
        } else {
            build_image(p, &mut self.image)?;
        }
        let sent = self.image.len() - self.pos;
        self.stats.stopcopy_bytes = sent as u64;
        self.stats.final_bytes = (sent - unread) as u64;
        Ok(())
    }

    /// The save side holds only the base, and all of it was read.
    fn base_read_whole(&self) -> bool {
        self.base_len > 0 && self.base_len == self.image.len() && self.pos == self.image.len()
    }

    /// In pre-copy, with the pre-copy image read whole and kept as the
    /// base: the length of the delta a stop-copy would send now (the
    /// current image built into `full`, the delta written behind the base
    /// and dropped again; both buffers were reserved by `keep_base()`).
    /// `None` without a base, or if the delta would not be sent.
    pub(super) fn delta_now(&mut self, p: &impl Provider) -> Option<usize> {
        if !self.state.is_pre_copy() || !self.base_read_whole() {
            return None;
        }
        // The image a stop now would give (GVT-g: the workloads queued
        // now are in it), made as a stop makes it, so the answer is what
        // it sends.
        if self.final_image == FinalImage::Patch {
            let res = self.append_patch(p, true);
            let n = self.image.len() - self.base_len;
            self.image.truncate(self.base_len);
            if let Ok(true) = res {
                return Some(n);
            }
        }
        self.full.clear();
        build_with(p, &mut self.full, |out| p.save_state_estimate(out)).ok()?;
        let res = self.append_delta();
        let n = self.image.len() - self.base_len;
        self.image.truncate(self.base_len);
        // `full` keeps its length: a patched final image fills it.
        res.ok().map(|()| n)
    }

    /// Appends the delta from the base to the image the provider would
    /// build now (with `estimate`, the one it would build if it stopped
    /// now), patched from what changed ([`stream::Patcher`]: no whole
    /// image is built or checksummed), if it is at most half an image
    /// long; `Ok(false)` if it is not (or memory is short), for a built
    /// delta or a full image to follow. Keeps the digest of a final
    /// delta's image for [`Migration::check_patched`]. The provider's own
    /// failure to save is the stop's: a second save is not tried.
    fn append_patch(
        &mut self,
        p: &impl Provider,
        estimate: bool,
    ) -> core::result::Result<bool, SaveError> {
        let (base_len, len) = (self.base_len, p.state_len());
        // Sized by `keep_base()`, unless `delta_now()` left it shorter.
        let room = stream::patch::room_for(len, self.changed.as_ref());
        let sized = (self.full.len() >= len
            || self.full.resize(len, 0, GFP_KERNEL_ACCOUNT).is_ok())
            && self
                .image
                .resize(base_len + room, 0, GFP_KERNEL_ACCOUNT)
                .is_ok();
        if !sized {
            self.image.truncate(base_len);
            return Ok(false);
        }
        let (base, out) = self.image.split_at_mut(base_len);
        let res = p.save_delta(base, self.changed.as_ref(), &mut self.full, out, estimate);
        let n = res.as_ref().map_or(0, |&(n, _)| n);
        self.image.truncate(base_len + n);
        match res {
            Ok(_) => {
                self.patched = !estimate;
                Ok(true)
            }
            Err(e @ (stream::StreamError::SaveFailed | stream::StreamError::TooManyPending(_))) => {
                Err(SaveError::Provider(e))
            }
            Err(_) => Ok(false),
        }
    }

    /// After the stop (STOP_COPY -> STOP, outside the downtime): builds
    /// the image whole and compares its GGTT entries with the base's. One
    /// that differs unmarked is a GGTT write the write path missed: the
    /// patched delta did not carry it, and the destination restored the
    /// base's entry, which the log says. (A write after the final image
    /// marks its entry too, so a VMM that changes the stopped vGPU does
    /// not count.)
    pub(super) fn check_patched(&mut self, d: &impl MigDevice, p: &impl Provider) {
        if !core::mem::take(&mut self.patched) {
            return;
        }
        let Some(changed) = self.changed.as_ref() else {
            return;
        };
        self.full.clear();
        if build_image(p, &mut self.full).is_err() {
            return;
        }
        self.stats.final_checks += 1;
        let base = self.image.get(..self.base_len).unwrap_or(&[]);
        let missed = changed.unmarked_changes(base, &self.full);
        if missed > 0 {
            self.stats.final_mismatches += 1;
            dev_ratelimited!(
                dev_err,
                d.dev(),
                "the stop-copy delta missed {} GGTT entries written unmarked: the destination has their pre-copy values\n",
                missed
            );
        }
    }

    /// Appends the delta from the base to `full`, if it is at most half
    /// as long.
    fn append_delta(&mut self) -> core::result::Result<(), stream::StreamError> {
        let base_len = self.base_len;
        let room = self.full.len() / 2;
        self.image
            .resize(base_len + room, 0, GFP_KERNEL_ACCOUNT)
            .map_err(|_| stream::StreamError::NoSpace)?;
        let (base, out) = self.image.split_at_mut(base_len);
        let res = delta::write_delta(base, &self.full, self.changed.as_ref(), out);
        let n = res.as_ref().map_or(0, |&n| n);
        self.image.truncate(base_len + n);
        res.map(|_| ())
    }

    /// In PRE_COPY, with the base read whole: if it went stale
    /// ([`ChangedEntries::base_is_stale`]) and fewer than
    /// [`delta::MAX_REINITS`] new bases were sent, the current image
    /// becomes the new base and the next bytes to read. Returns whether it
    /// did. Without memory the old base stays, and so does the larger
    /// delta over it.
    pub(super) fn reinit(&mut self, d: &impl MigDevice, p: &impl Provider) -> bool {
        let stale = self.changed.as_ref().is_some_and(|c| c.base_is_stale());
        if self.state != PRE_COPY
            || !stale
            || !self.base_read_whole()
            || self.stats.precopy_reinits >= u64::from(delta::MAX_REINITS)
        {
            return false;
        }
        self.full.clear();
        if let Err(e) = build_image(p, &mut self.full) {
            dev_ratelimited!(
                dev_warn,
                d.dev(),
                "no new pre-copy image ({}): the stop-copy delta stays over the old one\n",
                e.why()
            );
            return false;
        }
        core::mem::swap(&mut self.image, &mut self.full);
        self.full.clear();
        self.pos = 0;
        self.keep_base(p, d.ggtt_writes_seen());
        self.stats.precopy_reinits += 1;
        true
    }

    /// Appends `full` (the delta was not worth it): a wholly read base
    /// gives up its buffer.
    fn append_full(&mut self) -> core::result::Result<(), SaveError> {
        if self.pos == self.image.len() {
            core::mem::swap(&mut self.image, &mut self.full);
            self.pos = 0;
            self.base_len = 0;
            return Ok(());
        }
        self.image
            .extend_from_slice(&self.full, GFP_KERNEL_ACCOUNT)
            .map_err(|_| SaveError::NoMemory)?;
        Ok(())
    }
}

/// Why a state image could not be built.
#[derive(Debug, Clone, Copy)]
pub(super) enum SaveError {
    /// No memory for the image.
    NoMemory,
    /// The provider's save failed.
    Provider(stream::StreamError),
    /// debugfs `gmig/fault` said so (counts as no memory).
    Injected,
}

impl SaveError {
    /// Why, for the log.
    pub(super) fn why(&self) -> &'static str {
        match self {
            Self::NoMemory => "out of memory",
            Self::Injected => "out of memory (injected: debugfs gmig/fault)",
            Self::Provider(stream::StreamError::TooManyPending(_)) => {
                "more workloads queued than an image carries, after letting them drain"
            }
            Self::Provider(stream::StreamError::SaveFailed) => "the backend's save failed",
            Self::Provider(_) => "the image does not fit",
        }
    }
}

impl From<SaveError> for Error {
    fn from(e: SaveError) -> Self {
        match e {
            SaveError::NoMemory | SaveError::Injected => ENOMEM,
            // GVT-g: more workloads queued than an image carries, after
            // the queues were let drain; a later stop may succeed.
            SaveError::Provider(stream::StreamError::TooManyPending(_)) => EBUSY,
            SaveError::Provider(_) => EIO,
        }
    }
}

/// Appends the provider's state image to `out`.
pub(super) fn build_image(
    p: &impl Provider,
    out: &mut KVVec<u8>,
) -> core::result::Result<(), SaveError> {
    build_with(p, out, |o| p.save_state(o))
}

/// Appends the image `save` writes (at most the provider's `state_len`
/// bytes) to `out`; `out` is as it was on failure.
fn build_with(
    p: &impl Provider,
    out: &mut KVVec<u8>,
    save: impl FnOnce(&mut [u8]) -> core::result::Result<usize, stream::StreamError>,
) -> core::result::Result<(), SaveError> {
    let start = out.len();
    out.resize(start + p.state_len(), 0, GFP_KERNEL_ACCOUNT)
        .map_err(|_| SaveError::NoMemory)?;
    let res = save(&mut out[start..]);
    out.truncate(start + *res.as_ref().unwrap_or(&0));
    res.map(|_| ()).map_err(SaveError::Provider)
}

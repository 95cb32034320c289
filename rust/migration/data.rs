// SPDX-License-Identifier: GPL-2.0

//! The device's data fd: read() of the saving side in two halves, write()
//! of the resuming side, VFIO_MIG_GET_PRECOPY_INFO and
//! VFIO_DEVICE_FEATURE_MIG_DATA_SIZE.

use kernel::{alloc::flags::GFP_KERNEL_ACCOUNT, prelude::*};

use super::device::MigDevice;
use crate::{
    gmig_core::{provider::Provider, stream, vfio::DeviceState::StopCopy as STOP_COPY},
    log::dev_ratelimited,
};

#[cfg(doc)]
use super::state::Migration;

/// read() of the saving data fd, first half: copies the bytes at the
/// read position into `out` and says where they are (`at`), without
/// consuming them. The data fd (`vfio.rs`) copies them to the reader outside the vGPU
/// lock (a fault there may take mmap_lock) and consumes what the reader
/// got with [`mig_read_commit`]; its data fd lock keeps the arcs away
/// between the two.
pub(crate) fn mig_read<D: MigDevice>(d: &D, out: &mut [u8], at: &mut u64) -> isize {
    d.with_locked(|l| {
        let mig = &mut *l.mig;
        let Some(avail) = mig.image.get(mig.pos..) else {
            return EINVAL.to_errno() as isize;
        };
        let n = avail.len().min(out.len());
        if n == 0 && !out.is_empty() && mig.state.is_pre_copy() {
            // The end of the data available now (more may come): the
            // uAPI's -ENOMSG; 0 would mean the end of the stream.
            return ENOMSG.to_errno() as isize;
        }
        out[..n].copy_from_slice(&avail[..n]);
        *at = mig.pos as u64;
        isize::try_from(n).unwrap_or(isize::MAX)
    })
}

/// read() of the saving data fd, second half: the reader got `n` of the
/// bytes [`mig_read`] handed out at `at`; they are consumed (the rest is
/// read again). Fails, consuming nothing, if the stream moved since.
pub(crate) fn mig_read_commit<D: MigDevice>(d: &D, at: u64, n: usize) -> Result {
    d.with_locked(|l| {
        let mig = &mut *l.mig;
        let end = mig.pos.checked_add(n).filter(|&e| e <= mig.image.len());
        let Some(end) = end.filter(|_| at == mig.pos as u64) else {
            dev_ratelimited!(
                dev_err,
                d.dev(),
                "migration data fd: {} bytes read at {} but the stream is at {} of {}\n",
                n,
                at,
                mig.pos,
                mig.image.len()
            );
            return Err(EIO);
        };
        mig.pos = end;
        if n > 0 && mig.state.is_pre_copy() {
            mig.stats.precopy_bytes += n as u64;
            if mig.pos == mig.image.len() {
                mig.stats.precopy_rounds += 1;
            }
        }
        if n > 0 && mig.state == STOP_COPY && mig.pos == mig.image.len() {
            // The last byte of device data: STOP_COPY entered -> here.
            if let Some(t) = mig.stopped_at.take() {
                mig.stats.downtime_us = t.elapsed().as_micros_ceil();
            }
        }
        Ok(())
    })
}

/// write() of the resuming data fd: appends `data` to the stream, image by
/// image, and drops the images a later full image superseded (a source
/// that sent new initial data, VFIO_PRECOPY_INFO_REINIT) as soon as that
/// image is complete: the buffer holds at most a full image and the next.
/// Returns the bytes taken, short if the budget or memory ran out part way.
pub(crate) fn mig_write<D: MigDevice>(d: &D, data: &[u8]) -> isize {
    if data.is_empty() {
        return 0;
    }
    d.with_locked(|l| {
        // Sized from this vGPU's type: a real GVT-g type's images are
        // several MiB (2 MiB of vregs and 8 bytes per GM page).
        let limits = stream::Limits::for_state_len(l.prov.state_len());
        let budget = limits.resume_budget();
        let (id, ty) = (l.prov.id(), l.prov.type_index());
        let mig = &mut *l.mig;
        let mut taken = 0;
        while taken < data.len() {
            let n = mig.arrived.cut(&mig.incoming, data.len() - taken);
            let piece = &data[taken..taken + n];
            if mig.incoming.len().saturating_add(n) > budget {
                // One line per resume (the counter restarts at STOP ->
                // RESUMING), however often a client retries, and a bounded
                // number however often it resumes.
                if mig.stats.stream_errors == 0 {
                    dev_ratelimited!(
                        dev_err,
                        d.dev(),
                        "migration stream larger than {} bytes ({} images of this vGPU type)\n",
                        budget,
                        stream::IMAGES_PER_MIGRATION
                    );
                }
                mig.stats.stream_errors += 1;
                break;
            }
            if mig
                .incoming
                .extend_from_slice(piece, GFP_KERNEL_ACCOUNT)
                .is_err()
            {
                return match taken {
                    0 => ENOMEM.to_errno() as isize,
                    t => isize::try_from(t).unwrap_or(isize::MAX),
                };
            }
            taken += n;
            // A bad image stays for the resume to refuse by name.
            if let Ok(gone) = mig.arrived.arrived(&mig.incoming, &limits, id, ty) {
                if gone > 0 {
                    mig.incoming.copy_within(gone.., 0);
                    mig.incoming.truncate(mig.incoming.len() - gone);
                    mig.stats.superseded_bytes += gone as u64;
                }
            }
        }
        match taken {
            0 => EFBIG.to_errno() as isize,
            t => isize::try_from(t).unwrap_or(isize::MAX),
        }
    })
}

/// VFIO_MIG_GET_PRECOPY_INFO: the unread bytes of the pre-copy data, all
/// of them initial data (gmig's images are whole: there are no dirty
/// bytes). With `v2` (the VMM opted in to
/// VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2) and a base gone stale, the new
/// initial data is built here: `reinit` in the answer, which the data fd
/// reports as VFIO_PRECOPY_INFO_REINIT.
pub(crate) fn precopy_info<D: MigDevice>(d: &D, v2: bool) -> Result<PrecopyInfo> {
    d.with_locked(|l| {
        if !l.mig.state.is_pre_copy() {
            return Err(EINVAL);
        }
        let reinit = v2 && l.mig.reinit(d, &*l.prov);
        let mig = &*l.mig;
        Ok(PrecopyInfo {
            initial: (mig.image.len() - mig.pos) as u64,
            reinit,
        })
    })
}

/// What [`precopy_info`] answers.
pub(crate) struct PrecopyInfo {
    /// Initial bytes left to read.
    pub(crate) initial: u64,
    /// They are new initial data: a new base.
    pub(crate) reinit: bool,
}

/// VFIO_DEVICE_FEATURE_MIG_DATA_SIZE: bytes of a stop-copy image. Once the
/// pre-copy image was read whole, the stop-copy image is a delta over it:
/// the answer is that delta as it would be now ([`Migration::delta_now`]),
/// else a full image's length. QEMU adds the answer to what must go before
/// it switches over; a full GVT-g image (3-7 MiB) there would keep an idle
/// VM from converging whenever QEMU measures a low bandwidth (its RAM sends
/// little), though the final image is a few hundred bytes.
pub(crate) fn data_size<D: MigDevice>(d: &D) -> usize {
    d.with_locked(|l| {
        let full = l.prov.state_len();
        l.mig.delta_now(&*l.prov).unwrap_or(full)
    })
}

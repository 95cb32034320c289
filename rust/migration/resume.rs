// SPDX-License-Identifier: GPL-2.0

//! The resume side's end: the images the destination received are
//! validated, a final delta is combined with its base, and the resulting
//! state is restored (remapped if the vGPU sits elsewhere).

use kernel::{alloc::flags::GFP_KERNEL_ACCOUNT, prelude::*};

use super::device::{Locked, MigDevice};
use crate::{
    gmig_core::{
        provider::{Provider, RestoreError},
        stream::{self, Resolved, ResumeError},
    },
    log::dev_ratelimited,
};

/// Finds the state in `data` ([`stream::resolve`]), saying why not; the
/// stream's first `dropped` bytes were superseded and are not in `data`.
fn resolve_images<'a, D: MigDevice>(
    d: &D,
    p: &D::Prov,
    data: &'a [u8],
    dropped: usize,
    limits: &stream::Limits,
) -> Result<Resolved<'a>> {
    stream::resolve(data, limits, p.id(), p.type_index()).map_err(|e| {
        match e {
            ResumeError::Image { at, err } => dev_ratelimited!(
                dev_err,
                d.dev(),
                "migration stream rejected at byte {}: {:?}\n",
                at + dropped,
                err
            ),
            ResumeError::WrongDevice { hdr, .. } => dev_ratelimited!(
                dev_err,
                d.dev(),
                "migration stream is for provider {} type {}, this vGPU is provider {} type {} ({})\n",
                hdr.provider,
                hdr.vgpu_type,
                p.id(),
                p.type_index(),
                p.type_name()
            ),
            ResumeError::Delta { at, err } => dev_ratelimited!(
                dev_err,
                d.dev(),
                "migration stream: the delta image at byte {} does not apply: {:?}\n",
                at + dropped,
                err
            ),
            ResumeError::Empty => {
                dev_ratelimited!(dev_err, d.dev(), "migration stream is empty\n")
            }
        }
        EINVAL
    })
}

/// The image to restore: a full image as it came, or a delta applied to
/// its base in `buf`, the result validated as a whole.
fn state_image<'a, D: MigDevice>(
    d: &D,
    resolved: Resolved<'a>,
    limits: &stream::Limits,
    buf: &'a mut KVVec<u8>,
) -> Result<(stream::Header, &'a [u8])> {
    let (base, delta) = match resolved {
        Resolved::Full { hdr, image } => return Ok((hdr, image)),
        Resolved::Delta { base, delta } => (base, delta),
    };
    buf.resize(delta.result_len(), 0, GFP_KERNEL_ACCOUNT)?;
    let hdr = delta.apply(base, buf, limits).map_err(|e| {
        dev_ratelimited!(
            dev_err,
            d.dev(),
            "migration stream: the delta over the pre-copy image gives no valid image: {:?}\n",
            e
        );
        EINVAL
    })?;
    Ok((hdr, &buf[..]))
}

/// Validates every image in `data`, combines a final delta with its base,
/// and applies the resulting state.
pub(super) fn apply_images<D: MigDevice>(
    d: &D,
    l: &mut Locked<'_, D::Prov>,
    data: &[u8],
) -> Result {
    let limits = stream::Limits::for_state_len(l.prov.state_len());
    let dropped = l.mig.arrived.dropped();
    let resolved = resolve_images(d, &*l.prov, data, dropped, &limits)?;
    let mut buf = KVVec::new();
    let (hdr, image) = state_image(d, resolved, &limits, &mut buf)?;
    let mut mem = d.mem();
    let dst = l.prov.partition();
    let done = l.prov.restore_state(&hdr, image, &mut mem).map_err(|e| {
        match e {
            RestoreError::Remap(r) => {
                dev_ratelimited!(
                    dev_err,
                    d.dev(),
                    "remapping pending workloads failed: {:?}\n",
                    r
                )
            }
            e => dev_ratelimited!(
                dev_err,
                d.dev(),
                "migration stream does not fit this vGPU: {:?}\n",
                e
            ),
        }
        EINVAL
    })?;
    if let Some(src) = done.src.filter(|src| src.base != dst.base) {
        l.mig.stats.remap_patched = done.remapped;
        d.restored_elsewhere(src.base, dst.base, done.remapped);
    }
    l.mig.stats.images_applied += 1;
    Ok(())
}

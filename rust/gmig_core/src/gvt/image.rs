// SPDX-License-Identifier: GPL-2.0

//! The GVT-g state image: its sections, their sizes, writing and checking.

use super::super::provider::{RestoreError, PROVIDER_GVT};
use super::super::stream::{self, ImageSink, Section, StreamError, Writer, FLAG_MANDATORY};
use super::layout::GvtLayout;
use super::pending::{pending_section_len, PendingList, MAX_PENDING, WORKLOAD_LEN};

/// Payload bytes of the GGTT section of `layout`.
pub fn ggtt_section_len(layout: &GvtLayout) -> Option<usize> {
    let n = usize::try_from(layout.entries()).ok()?;
    n.checked_mul(8)?.checked_add(32)
}

/// Payload bytes of the fence section of `layout`.
pub fn fence_section_len(layout: &GvtLayout) -> usize {
    8 + 8 * layout.fences as usize
}

/// Sizes of the opaque sections, as kvmgt reports them for a vGPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateSizes {
    /// Virtual MMIO register bytes.
    pub vregs: usize,
    /// Execlist image bytes.
    pub execlist: usize,
}

/// Where a GVT image's GGTT entries start: after the vregs section and
/// the GGTT section's slice bases and sizes.
pub fn ggtt_entries_at(sizes: &StateSizes) -> usize {
    stream::HEADER_LEN + 2 * stream::SECTION_HEADER_LEN + sizes.vregs + 32
}

/// Bytes of a whole GVT state image (header, sections, end marker).
pub fn image_len(layout: &GvtLayout, sizes: &StateSizes) -> Option<usize> {
    let mut n = stream::HEADER_LEN + 5 * stream::SECTION_HEADER_LEN;
    for s in [
        sizes.vregs,
        ggtt_section_len(layout)?,
        fence_section_len(layout),
        sizes.execlist,
    ] {
        n = n.checked_add(s)?;
    }
    Some(n)
}

/// Bytes of the largest GVT state image of a vGPU: one with
/// [`MAX_PENDING`] pending workloads.
pub fn max_image_len(layout: &GvtLayout, sizes: &StateSizes) -> Option<usize> {
    image_len(layout, sizes)?
        .checked_add(stream::SECTION_HEADER_LEN)?
        .checked_add(pending_section_len(MAX_PENDING)?)
}

/// A part of a vGPU's state as kvmgt saves and restores it
/// (`enum intel_gvt_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Part {
    /// Virtual MMIO registers (GVT's vreg image).
    Vregs = 0,
    /// The guest GGTT entries of the vGPU's graphics memory, u64 each:
    /// the aperture's, then the hidden GM's.
    Ggtt = 1,
    /// Fence register values, u64 each.
    Fences = 2,
    /// Execlist state of every engine (opaque).
    Execlist = 3,
}

impl Part {
    /// Every part, in the order kvmgt restores them.
    pub const ALL: [Part; 4] = [Part::Vregs, Part::Ggtt, Part::Fences, Part::Execlist];
}

/// Where a [`write_image`] section's bytes come from (kvmgt's save hook in
/// the module, a test's arrays on the host).
pub trait StateSource {
    /// Fills `out` (exactly the part's size) with `part`; u64 values
    /// (GGTT entries, fences) as little-endian. `false` if it failed.
    fn save(&self, part: Part, out: &mut [u8]) -> bool;
    /// How many workloads are pending (queued, not run). A stopped vGPU's
    /// queues do not change; a running one's count is a snapshot (for an
    /// estimate).
    fn pending_count(&self) -> usize {
        0
    }
    /// Fills `out` with the pending workloads, [`WORKLOAD_LEN`] bytes each
    /// (little-endian, [`super::PendingWorkload::encode`]), exactly as
    /// many as [`StateSource::pending_count`] said; `false` if it failed
    /// or their number changed.
    fn save_pending(&self, out: &mut [u8]) -> bool {
        out.is_empty()
    }
}

/// Writes the state image of a vGPU of `layout` into `out`, with its
/// `pending` workloads (the [`StateSource::pending_count`] of a stopped
/// vGPU; none in a pre-copy snapshot); returns its length.
pub fn write_image<S: StateSource>(
    out: &mut [u8],
    vgpu_type: u16,
    layout: &GvtLayout,
    sizes: &StateSizes,
    src: &S,
    pending: usize,
) -> Result<usize, StreamError> {
    let mut w = Writer::new(out, PROVIDER_GVT, vgpu_type)?;
    write_sections(&mut w, layout, sizes, src, pending)?;
    w.finish()
}

/// Describes the sections of [`write_image`]'s image to `w`.
pub fn write_sections<W: ImageSink, S: StateSource>(
    w: &mut W,
    layout: &GvtLayout,
    sizes: &StateSizes,
    src: &S,
    pending: usize,
) -> Result<(), StreamError> {
    if pending > MAX_PENDING {
        return Err(StreamError::TooManyPending(pending));
    }
    let mut ok = true;
    w.section(Section::GvtVregs as u16, FLAG_MANDATORY, sizes.vregs, |p| {
        ok &= src.save(Part::Vregs, p)
    })?;
    let glen = ggtt_section_len(layout).ok_or(StreamError::TooLarge)?;
    // kvmgt saves the entries all at once: a section filled whole, of
    // which a Patcher compares only the marked entries.
    w.section(Section::GvtGgtt as u16, FLAG_MANDATORY, glen, |p| {
        let (h, body) = p.split_at_mut(32);
        h[0..8].copy_from_slice(&layout.aperture.base.to_le_bytes());
        h[8..16].copy_from_slice(&layout.aperture.size.to_le_bytes());
        h[16..24].copy_from_slice(&layout.hidden.base.to_le_bytes());
        h[24..32].copy_from_slice(&layout.hidden.size.to_le_bytes());
        ok &= src.save(Part::Ggtt, body);
    })?;
    w.section(
        Section::GvtFences as u16,
        FLAG_MANDATORY,
        fence_section_len(layout),
        |p| {
            p[0..4].copy_from_slice(&layout.fences.to_le_bytes());
            p[4..8].copy_from_slice(&0u32.to_le_bytes());
            ok &= src.save(Part::Fences, &mut p[8..]);
        },
    )?;
    w.section(
        Section::GvtExeclist as u16,
        FLAG_MANDATORY,
        sizes.execlist,
        |p| ok &= src.save(Part::Execlist, p),
    )?;
    if pending > 0 {
        let len = pending_section_len(pending).ok_or(StreamError::TooLarge)?;
        let count = u32::try_from(pending).map_err(|_| StreamError::TooLarge)?;
        w.section(Section::GvtWorkloads as u16, FLAG_MANDATORY, len, |p| {
            let (h, body) = p.split_at_mut(8);
            h[0..4].copy_from_slice(&count.to_le_bytes());
            h[4..8].fill(0);
            ok &= body.len() == pending * WORKLOAD_LEN && src.save_pending(body);
        })?;
    }
    if !ok {
        return Err(StreamError::SaveFailed);
    }
    Ok(())
}

/// A GVT state image checked against a destination vGPU, ready to apply.
#[derive(Debug, Clone, Copy)]
pub struct GvtImage<'a> {
    /// Virtual MMIO registers.
    pub vregs: &'a [u8],
    /// The source's layout.
    pub src: GvtLayout,
    /// Guest GGTT entries, little-endian u64s in image order.
    entries: &'a [u8],
    /// Fence values, little-endian u64s.
    fences: &'a [u8],
    /// Execlist image.
    pub execlist: &'a [u8],
    /// The workloads pending on the source, in its queue order.
    pub pending: PendingList<'a>,
}

fn le64(b: &[u8], off: usize) -> Option<u64> {
    let s = b.get(off..off.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_le_bytes(a))
}

fn le32(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    let mut a = [0u8; 4];
    a.copy_from_slice(s);
    Some(u32::from_le_bytes(a))
}

impl GvtImage<'_> {
    /// Number of GGTT entries.
    pub fn entry_count(&self) -> usize {
        self.entries.len() / 8
    }

    /// Guest GGTT entry `i` (image order).
    pub fn entry(&self, i: usize) -> Option<u64> {
        le64(self.entries, i.checked_mul(8)?)
    }

    /// Fence register `i`'s value.
    pub fn fence(&self, i: usize) -> Option<u64> {
        le64(self.fences, 8 + i.checked_mul(8)?)
    }

    /// The guest GGTT entries as little-endian u64s in image order (what
    /// kvmgt's GGTT restore takes).
    pub fn entries_le(&self) -> &[u8] {
        self.entries
    }

    /// The fence values as little-endian u64s (what kvmgt's fence restore
    /// takes).
    pub fn fences_le(&self) -> &[u8] {
        self.fences.get(8..).unwrap_or(&[])
    }

    /// Calls `f(index, entry)` for every saved entry with the global GGTT
    /// index it takes in the destination layout `dst` (a layout the image
    /// was decoded against, so every position maps).
    pub fn for_each_entry(&self, dst: &GvtLayout, mut f: impl FnMut(u64, u64)) {
        for i in 0..self.entry_count() {
            if let (Some(idx), Some(e)) = (dst.ggtt_index(i as u64), self.entry(i)) {
                f(idx, e);
            }
        }
    }
}

/// Decodes a validated image (see [`stream::validate`]) for a destination
/// vGPU of type `vgpu_type`, layout `dst` and section `sizes`; checks every
/// section before returning, so a caller that gets `Ok` can apply it all.
pub fn decode_image<'a>(
    hdr: &stream::Header,
    image: &'a [u8],
    vgpu_type: u16,
    dst: &GvtLayout,
    sizes: &StateSizes,
) -> Result<GvtImage<'a>, RestoreError> {
    if hdr.provider != PROVIDER_GVT || hdr.vgpu_type != vgpu_type {
        return Err(RestoreError::WrongDevice {
            provider: hdr.provider,
            vgpu_type: hdr.vgpu_type,
        });
    }
    let (mut vregs, mut ggtt, mut fences, mut execlist) = (None, None, None, None);
    let mut pending = PendingList::EMPTY;
    for sec in stream::sections_unchecked(image) {
        let (ty, _, p) = sec?;
        let bad = RestoreError::BadSection(ty);
        match ty {
            t if t == Section::GvtVregs as u16 => {
                (p.len() == sizes.vregs).then_some(()).ok_or(bad)?;
                vregs = Some(p);
            }
            t if t == Section::GvtGgtt as u16 => {
                let ap = (le64(p, 0).ok_or(bad)?, le64(p, 8).ok_or(bad)?);
                let hi = (le64(p, 16).ok_or(bad)?, le64(p, 24).ok_or(bad)?);
                let src = GvtLayout::new(ap, hi, dst.fences).ok_or(bad)?;
                if src.aperture.size != dst.aperture.size || src.hidden.size != dst.hidden.size {
                    return Err(RestoreError::PartitionMismatch {
                        size: src.aperture.size.saturating_add(src.hidden.size),
                    });
                }
                let body = p.get(32..).ok_or(bad)?;
                (Some(body.len())
                    == usize::try_from(src.entries())
                        .ok()
                        .and_then(|n| n.checked_mul(8)))
                .then_some(())
                .ok_or(bad)?;
                ggtt = Some((src, body));
            }
            t if t == Section::GvtFences as u16 => {
                let n = le32(p, 0).ok_or(bad)?;
                if n != dst.fences || p.len() != fence_section_len(dst) {
                    return Err(bad);
                }
                fences = Some(p);
            }
            t if t == Section::GvtExeclist as u16 => {
                (p.len() == sizes.execlist).then_some(()).ok_or(bad)?;
                execlist = Some(p);
            }
            t if t == Section::GvtWorkloads as u16 => {
                pending = PendingList::parse(p).ok_or(bad)?;
            }
            _ => {} // end marker, optional sections
        }
    }
    let missing = |s: Section| RestoreError::MissingSection(s as u16);
    let (src, entries) = ggtt.ok_or(missing(Section::GvtGgtt))?;
    Ok(GvtImage {
        vregs: vregs.ok_or(missing(Section::GvtVregs))?,
        src,
        entries,
        fences: fences.ok_or(missing(Section::GvtFences))?,
        execlist: execlist.ok_or(missing(Section::GvtExeclist))?,
        pending,
    })
}

// SPDX-License-Identifier: GPL-2.0

//! Graphics addresses GVT-g keeps in a vGPU's state outside command
//! buffers, and what becomes of them after a restore elsewhere.
//!
//! The image carries the guest's view: the registers and fences as the
//! guest wrote them, with the source's graphics addresses (the guest keeps
//! using them after a move). kvmgt moves each one to the vGPU's GM where
//! it *uses* it, through the companion's `map_gma`
//! ([`AuditMap::map_guest`]), so a chained migration saves the guest's
//! view again (patches/gvt 0014-0016):
//!
//! - fences: `intel_vgpu_write_fence()` writes the hardware fence with the
//!   range moved ([`map_fence`]); a valid fence whose range is not wholly
//!   inside one slice of the guest's GM refuses the restore by name
//!   ([`check_fences`]): the destination could not detile the guest's part
//!   of it, and the rest belongs to another vGPU or the host;
//! - status pages: kvmgt re-derives `hws_pga[]` from the restored HWS_PGA
//!   registers as `hws_pga_write()` would take them, the CSB emulation then
//!   writes the page the guest named ([`status_page`] is what the dirty
//!   report's narrowing needs). A register outside the guest's GM is not
//!   refused: until the guest's driver sets an engine up, its register
//!   holds the host's value from GVT-g's MMIO snapshot
//!   (`intel_vgpu_reset_mmio()`), which `hws_pga_write()` never took;
//! - display planes: the primary plane's and the cursor's surface base
//!   (DSPSURF, CURBASE; GVT-g decodes no other plane) is moved when
//!   `intel_vgpu_decode_primary_plane()` / `_cursor_plane()` decode it. A
//!   base outside the guest's GM fails the decode on both sides alike and
//!   is not refused (i915 enables a plane before it writes the surface
//!   register that arms it).

use super::super::provider::RestoreError;
use super::audit::AuditMap;
use super::image::GvtImage;

/// A fence register's valid bit (`I965_FENCE_REG_VALID`).
pub const FENCE_VALID: u64 = 1;
/// The graphics address bits of a fence register's start (low dword) and
/// end (high dword: its last page), Gen6+ (`i965_write_fence_reg()`).
pub const FENCE_ADDR: u32 = 0xffff_f000;
const PAGE: u64 = 4096;

/// The value kvmgt writes to the hardware fence for the guest's fence
/// value `v`: a valid fence's range `[start, end + 4 KiB)` moved by `map`
/// (the pitch and tiling bits kept); an invalid one unchanged (the
/// hardware ignores its addresses). `None` if a valid fence's range is not
/// wholly inside one slice of the guest's GM, or its end lies before its
/// start.
pub fn map_fence(v: u64, map: &AuditMap) -> Option<u64> {
    if v & FENCE_VALID == 0 {
        return Some(v);
    }
    let (lo, hi) = (v as u32, (v >> 32) as u32);
    let start = u64::from(lo & FENCE_ADDR);
    let end = u64::from(hi & FENCE_ADDR);
    let len = end.checked_sub(start)?.checked_add(PAGE)?;
    let new = map.translate(start, len).ok()?;
    let new_lo = u32::try_from(new).ok()?;
    let new_hi = u32::try_from(new.checked_add(end - start)?).ok()?;
    Some(u64::from((hi & !FENCE_ADDR) | new_hi) << 32 | u64::from((lo & !FENCE_ADDR) | new_lo))
}

/// Checks every fence of the image against the guest's GM (`map`'s guest
/// layout): [`RestoreError::FenceOutsideGm`] names the first valid fence
/// [`map_fence`] cannot move.
pub fn check_fences(img: &GvtImage<'_>, map: &AuditMap) -> Result<(), RestoreError> {
    for i in 0..img.src.fences {
        let v = img
            .fence(i as usize)
            .ok_or(RestoreError::FenceOutsideGm { fence: i })?;
        map_fence(v, map).ok_or(RestoreError::FenceOutsideGm { fence: i })?;
    }
    Ok(())
}

/// The status page kvmgt's CSB emulation writes for an engine whose
/// HWS_PGA register holds `v` (the guest's view): its address moved by
/// `map` as `hws_pga_write()` (patch 0015) takes it; 0 (no page) if it is
/// none of the guest's.
pub fn status_page(v: u32, map: &AuditMap) -> u32 {
    if v == 0 {
        return 0;
    }
    map.map_guest(u64::from(v), PAGE)
        .ok()
        .and_then(|g| u32::try_from(g).ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gvt::GvtLayout;

    const MIB: u64 = 1 << 20;

    fn layouts() -> (GvtLayout, GvtLayout) {
        let a = GvtLayout::new((32 * MIB, 64 * MIB), (512 * MIB, 384 * MIB), 4).unwrap();
        let b = GvtLayout::new((96 * MIB, 64 * MIB), (896 * MIB, 384 * MIB), 4).unwrap();
        (a, b)
    }

    /// What i915's `i965_write_fence_reg()` writes for a Gen6+ fence.
    fn fence(start: u64, size: u64, stride: u64, y: bool) -> u64 {
        let mut v = (start + size - PAGE) << 32 | start;
        v |= ((stride / 128) - 1) << 32;
        if y {
            v |= 2;
        }
        v | FENCE_VALID
    }

    #[test]
    fn a_fence_moves_with_its_pitch_and_tiling() {
        let (a, b) = layouts();
        let map = AuditMap::migrated(a, b).unwrap();
        let off = 5 * PAGE;
        let v = fence(a.aperture.base + off, 16 * PAGE, 512, true);
        let got = map_fence(v, &map).unwrap();
        assert_eq!(got, fence(b.aperture.base + off, 16 * PAGE, 512, true));
        // Disabled fences travel as they are; the identity keeps a fence.
        assert_eq!(
            map_fence(0xdead_0000_beef_0000, &map),
            Some(0xdead_0000_beef_0000)
        );
        let id = AuditMap::identity(b);
        let own = fence(b.aperture.base, PAGE, 128, false);
        assert_eq!(map_fence(own, &id), Some(own));
    }

    #[test]
    fn a_fence_outside_the_guests_gm_is_refused() {
        let (a, b) = layouts();
        let map = AuditMap::migrated(a, b).unwrap();
        // The destination's own aperture, a range across the slice's end,
        // an end before the start, the host's GM.
        let bad = [
            fence(b.aperture.base + 64 * MIB - PAGE, PAGE, 128, false),
            fence(a.aperture.end() - PAGE, 2 * PAGE, 128, false),
            (a.aperture.base << 32) | (a.aperture.base + PAGE) | FENCE_VALID,
            fence(0x1000, PAGE, 128, false),
        ];
        for v in bad {
            assert_eq!(map_fence(v, &map), None, "{v:#x}");
        }
        // Without a move too: the fence would cover someone else's GM.
        assert_eq!(map_fence(bad[3], &AuditMap::identity(a)), None);
    }

    #[test]
    fn status_pages_move_or_are_none() {
        let (a, b) = layouts();
        let map = AuditMap::migrated(a, b).unwrap();
        let v = u32::try_from(a.hidden.base + 3 * PAGE).unwrap();
        assert_eq!(u64::from(status_page(v, &map)), b.hidden.base + 3 * PAGE);
        assert_eq!(status_page(0, &map), 0);
        // The host's snapshot value: no page.
        assert_eq!(status_page(0x1000, &map), 0);
        // Without a move, GVT-g's own check decides.
        assert_eq!(status_page(0x1000, &AuditMap::identity(a)), 0x1000);
    }
}

// SPDX-License-Identifier: GPL-2.0
//! Fuzz target: the migration stream decoder must reject or accept any
//! byte string without panicking; what it accepts must iterate cleanly, in
//! increasing section order ending with the end marker, and re-encode
//! byte for byte with [`Writer`].
//!
//! Input: a mode byte, then the image. Mode bit 0 re-seals the image
//! before decoding (header checksum, and every section checksum the length
//! fields reach), bit 1 also sets the header's total length to the image
//! length: mutations then get past the checksums and exercise the section
//! rules (order, duplicates, limits, end marker, mandatory flags) instead
//! of stopping at the first checksum. `examples/fuzz_seeds.rs` writes valid
//! images in both modes, and resume streams of a base and a delta (mode 0:
//! the input is resolved as a destination does, a delta applied to its
//! base, its result never larger than the limit).
#![no_main]

use std::cell::RefCell;

use gmig_core::stream::{
    crc32c, crc32c_update, delta, resolve, sections_unchecked, validate, DeltaView, ImageSink,
    Limits, Resolved, Section, Writer, HEADER_LEN, SECTION_HEADER_LEN,
};
use libfuzzer_sys::fuzz_target;

const LIMITS: Limits = Limits {
    max_total: 1 << 20,
    max_section: 1 << 19,
};

thread_local! {
    static BUF: RefCell<(Vec<u8>, Vec<u8>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

fn rd32(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?))
}

fn seal_header(img: &mut [u8]) {
    if img.len() >= HEADER_LEN {
        let c = crc32c(&img[..24]);
        img[24..28].copy_from_slice(&c.to_le_bytes());
    }
}

/// Recomputes the checksums the image's own length fields lead to.
fn reseal(img: &mut [u8], fix_total: bool) {
    if img.len() < HEADER_LEN {
        return;
    }
    if fix_total {
        let n = u32::try_from(img.len()).unwrap_or(u32::MAX);
        img[20..24].copy_from_slice(&n.to_le_bytes());
    }
    seal_header(img);
    let mut off = HEADER_LEN;
    while let Some(len) = rd32(img, off + 4) {
        let start = off + SECTION_HEADER_LEN;
        let Some(end) = usize::try_from(len).ok().and_then(|l| start.checked_add(l)) else {
            break;
        };
        if end > img.len() {
            break;
        }
        let c = crc32c_update(crc32c(&img[off..off + 8]), &img[start..end]);
        img[off + 8..off + 12].copy_from_slice(&c.to_le_bytes());
        off = end;
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, raw)) = data.split_first() else {
        return;
    };
    BUF.with_borrow_mut(|(img, out)| {
        img.clear();
        img.extend_from_slice(raw);
        if mode & 1 != 0 {
            reseal(img, mode & 2 != 0);
        }
        // The input as a resume stream: a delta's result is allocated only
        // within the limit, and what it builds is a valid full image.
        let ids = rd32(img, 12).unwrap_or(0);
        let (provider, ty) = (ids as u16, (ids >> 16) as u16);
        if let Ok(Resolved::Delta { base, delta }) = resolve(img, &LIMITS, provider, ty) {
            assert!(
                delta.result_len() <= LIMITS.max_total,
                "result over the limit"
            );
            out.clear();
            out.resize(delta.result_len(), 0);
            if let Ok(h) = delta.apply(base, out, &LIMITS) {
                assert!(validate(out, &LIMITS) == Ok(h), "an invalid result applied");
                assert!(!delta::is_delta(&h, out), "a delta as the result");
            }
        }
        let Ok(hdr) = validate(img, &LIMITS) else {
            return;
        };
        assert_eq!(hdr.total as usize, img.len(), "accepted with a wrong total");
        // A delta image's own checks must not panic either.
        if delta::is_delta(&hdr, img) {
            let _ = DeltaView::parse(img);
        }

        // Accepted: sections iterate cleanly, in order, end marker last.
        out.clear();
        out.resize(img.len(), 0);
        let mut w = Writer::new(out, hdr.provider, hdr.vgpu_type).unwrap();
        let mut last = 0u32;
        let mut ended = false;
        for s in sections_unchecked(img) {
            let (ty, flags, payload) = s.expect("a validated image has a bad section");
            assert!(!ended, "a section after the end marker");
            assert!(u32::from(ty) > last, "sections out of order");
            assert!(
                payload.len() <= LIMITS.max_section,
                "section over the limit"
            );
            last = u32::from(ty);
            if ty == Section::End as u16 {
                assert!(payload.is_empty(), "end marker with a payload");
                ended = true;
                continue;
            }
            w.section(ty, flags, payload.len(), |p| p.copy_from_slice(payload))
                .expect("re-encoding an accepted section failed");
        }
        assert!(ended, "accepted without an end marker");
        // The end marker's flags are the writer's (mandatory); an image
        // whose end marker has other flags re-encodes with those.
        let n = w.finish().expect("re-encoding an accepted image failed");
        assert_eq!(n, img.len(), "re-encoded length differs");
        // Version (an accepted older major too) and header flags are the
        // writer's own: take the input's, then re-seal, and the images
        // must be identical.
        out[8..12].copy_from_slice(&img[8..12]);
        out[16..20].copy_from_slice(&img[16..20]);
        let end_at = n - SECTION_HEADER_LEN;
        if out[end_at + 2..end_at + 4] != img[end_at + 2..end_at + 4] {
            out[end_at + 2..end_at + 4].copy_from_slice(&img[end_at + 2..end_at + 4]);
            let c = crc32c(&out[end_at..end_at + 8]);
            out[end_at + 8..end_at + 12].copy_from_slice(&c.to_le_bytes());
        }
        seal_header(out);
        assert!(
            out[..] == img[..],
            "accepted image does not re-encode identically"
        );
    });
});

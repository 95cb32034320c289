// SPDX-License-Identifier: GPL-2.0

//! Delta images written from what changed, without the whole image.
//!
//! [`super::delta::write_delta`] builds the stop-copy image whole, then
//! compares it with the base: inside the downtime it writes every byte of
//! the image, checksums every section and compares what may differ. A
//! [`Patcher`] is an [`ImageSink`]: the provider describes its state
//! image to it section by section, as it does to a [`super::Writer`], and
//! the patcher compares each section with the base's as it comes,
//! writing only the runs that differ. Of the GGTT entries it asks the
//! provider only for those the write path marked ([`ChangedEntries`]),
//! and it updates each section's CRC32C from the bytes that changed
//! (CRC32C is linear: for messages of one length,
//! `crc(a) ^ crc(b) == raw(a ^ b)`, and zero bytes after a change
//! multiply its raw CRC by `x^8` each, [`super::crc_raw_zeros`]). The
//! result's digest comes from its section headers. So the work follows
//! the bytes that changed, and the sections the provider fills whole, not
//! the image's size.
//!
//! The delta it writes is the one `write_delta` would (same format, same
//! result; its runs may be cut differently), and the destination
//! validates its result as a whole as before. What it cannot see is a
//! GGTT entry that changed unmarked: `write_delta` sends the entries it
//! compares, so such a change fails the destination's section checksum,
//! while a patched delta carries a checksum made from the changes it
//! knows. The migration layer therefore builds the image whole once the
//! downtime is over and looks for entries that differ from the base's
//! unmarked ([`ChangedEntries::unmarked_changes`]).

use super::delta::{ChangedEntries, BASE_SECTION_LEN, RUN_HEADER_LEN};
use super::{
    crc32c, crc32c_update, crc_raw, crc_raw_zeros, digest, rd16, rd32, ImageSink, Section,
    StreamError, Writer, FLAG_MANDATORY, HEADER_LEN, MAGIC, SECTION_HEADER_LEN, VERSION_MAJOR,
    VERSION_MINOR,
};
use core::ops::{Deref, Range};

/// Sections an image has at most (the result digest is computed from
/// their headers at the end).
const MAX_SECTIONS: usize = 16;
/// Where the runs start in a delta image: after its header, its
/// `DeltaBase` section and the `DeltaRuns` section header.
const RUNS_AT: usize = HEADER_LEN + 2 * SECTION_HEADER_LEN + BASE_SECTION_LEN;
/// Bytes compared at once before looking closer.
const BLOCK: usize = 64;
/// Granularity of a change.
const CHUNK: usize = 8;

/// Bytes a patched delta over images of at most `len` bytes can take at
/// most (`changed` as given to the [`Patcher`]), capped at half an image
/// (a longer delta is not worth sending): 16 bytes for each 8-byte chunk
/// that changed, of the marked GGTT entries only when they are known, a
/// checksum run for each section, the header's and the delta's own
/// sections. The buffer a migration sizes with it is written in the
/// downtime: sized to what changed, not to the image.
pub fn room_for<S: Deref<Target = [u64]>>(
    len: usize,
    changed: Option<&ChangedEntries<S>>,
) -> usize {
    let fixed = RUNS_AT
        + SECTION_HEADER_LEN
        + RUN_HEADER_LEN
        + HEADER_LEN
        + MAX_SECTIONS * (RUN_HEADER_LEN + 4);
    let known = changed.and_then(|c| Some((c.span().entries.checked_mul(8)?, c.marked()?)));
    let changing = match known {
        Some((span, marked)) => len
            .saturating_sub(span)
            .saturating_mul(2)
            .saturating_add(marked.saturating_mul(2 * CHUNK)),
        None => len.saturating_mul(2),
    };
    changing.saturating_add(fixed).min(len / 2)
}

/// How the CRC of a message changes when some of its bytes do (its
/// length staying the same): the XOR of the old and new CRC.
struct CrcDelta {
    acc: u32,
    end: usize,
}

impl CrcDelta {
    const fn new() -> Self {
        Self { acc: 0, end: 0 }
    }

    /// The bytes at `off` (not before the end of an earlier change)
    /// changed by `diff` (old XOR new).
    fn xor_at(&mut self, off: usize, diff: &[u8]) {
        let reg = crc_raw_zeros(self.acc, off.saturating_sub(self.end));
        self.acc = crc_raw(reg, diff);
        self.end = off + diff.len();
    }

    /// The XOR that turns the old CRC of the `len`-byte message into the
    /// new one.
    fn finish(self, len: usize) -> u32 {
        crc_raw_zeros(self.acc, len.saturating_sub(self.end))
    }
}

/// A run being written: where it starts in the result and where its
/// header sits in the delta image.
#[derive(Clone, Copy)]
struct Run {
    start: usize,
    hdr: usize,
}

/// Writes a delta image over `base` from the sections a provider
/// describes ([`ImageSink`]); see the module documentation.
pub struct Patcher<'a, S> {
    base: &'a [u8],
    changed: Option<&'a ChangedEntries<S>>,
    scratch: &'a mut [u8],
    out: &'a mut [u8],
    provider: u16,
    vgpu_type: u16,
    /// End of what was written in `out` (from [`RUNS_AT`]).
    w: usize,
    run: Option<Run>,
    /// Where the next section starts in the result.
    at: usize,
    last: u16,
    heads: [[u8; SECTION_HEADER_LEN]; MAX_SECTIONS],
    sections: usize,
}

/// A section header as a [`super::Writer`] writes it.
fn section_head(ty: u16, flags: u16, len: u32, crc: u32) -> [u8; SECTION_HEADER_LEN] {
    let mut h = [0u8; SECTION_HEADER_LEN];
    h[0..2].copy_from_slice(&ty.to_le_bytes());
    h[2..4].copy_from_slice(&flags.to_le_bytes());
    h[4..8].copy_from_slice(&len.to_le_bytes());
    h[8..12].copy_from_slice(&crc.to_le_bytes());
    h
}

fn u32_of(n: usize) -> Result<u32, StreamError> {
    u32::try_from(n).map_err(|_| StreamError::TooLarge)
}

impl<'a, S: Deref<Target = [u64]>> Patcher<'a, S> {
    /// A patcher writing into `out` the delta over `base` (an image of
    /// this vGPU's, which the migration layer built) of the image the
    /// provider `provider` of type `vgpu_type` describes next. `changed`
    /// names the GGTT entries written since `base` was built; `scratch`
    /// holds the sections the provider fills whole (at least the longest
    /// of them). [`StreamError::NoSpace`] if the delta outgrows `out`.
    pub fn new(
        base: &'a [u8],
        changed: Option<&'a ChangedEntries<S>>,
        scratch: &'a mut [u8],
        out: &'a mut [u8],
        provider: u16,
        vgpu_type: u16,
    ) -> Result<Self, StreamError> {
        if base.len() < HEADER_LEN {
            return Err(StreamError::Truncated);
        }
        let mut p = Self {
            base,
            changed,
            scratch,
            out,
            provider,
            vgpu_type,
            w: RUNS_AT,
            run: None,
            at: HEADER_LEN,
            last: 0,
            heads: [[0; SECTION_HEADER_LEN]; MAX_SECTIONS],
            sections: 0,
        };
        // Room for the header's run, dropped at the end if it is the
        // base's.
        p.reserve(RUN_HEADER_LEN + HEADER_LEN)?;
        Ok(p)
    }

    /// Room for the end marker is kept.
    fn limit(&self) -> usize {
        self.out.len().saturating_sub(SECTION_HEADER_LEN)
    }

    fn reserve(&mut self, n: usize) -> Result<usize, StreamError> {
        let at = self.w;
        if at + n > self.limit() {
            return Err(StreamError::NoSpace);
        }
        self.w += n;
        Ok(at)
    }

    /// Fills in the length of the run being written.
    fn close(&mut self) {
        if let Some(r) = self.run.take() {
            let len = (self.w - r.hdr - RUN_HEADER_LEN) as u32;
            self.out[r.hdr + 4..r.hdr + 8].copy_from_slice(&len.to_le_bytes());
        }
    }

    /// The result's bytes at `off` are `bytes`, which may differ from the
    /// base's (`off` not before anything put earlier). A change at most a
    /// run header past the current run extends it with the base's bytes
    /// between.
    fn put(&mut self, off: usize, bytes: &[u8]) -> Result<(), StreamError> {
        let end = self
            .run
            .map(|r| r.start + (self.w - r.hdr - RUN_HEADER_LEN));
        let gap = end
            .filter(|&e| off >= e && off - e <= RUN_HEADER_LEN)
            .and_then(|e| match off - e {
                0 => Some(&[][..]),
                _ => self.base.get(e..off),
            });
        match gap {
            Some(g) => {
                let at = self.reserve(g.len() + bytes.len())?;
                self.out[at..at + g.len()].copy_from_slice(g);
                self.out[at + g.len()..self.w].copy_from_slice(bytes);
            }
            None => {
                self.close();
                let start = u32_of(off)?;
                let hdr = self.reserve(RUN_HEADER_LEN + bytes.len())?;
                self.out[hdr..hdr + 4].copy_from_slice(&start.to_le_bytes());
                self.out[hdr + RUN_HEADER_LEN..self.w].copy_from_slice(bytes);
                self.run = Some(Run { start: off, hdr });
            }
        }
        Ok(())
    }

    /// Drops `n` bytes reserved at `at` (nothing is open after them).
    fn unreserve(&mut self, at: usize, n: usize) {
        self.out.copy_within(at + n..self.w, at);
        self.w -= n;
    }

    /// The base's section at `at` if it has the type, flags and length
    /// given: its payload and checksum.
    fn base_section(&self, at: usize, ty: u16, flags: u16, len: usize) -> Option<(usize, u32)> {
        let b = self.base;
        let same = rd16(b, at).ok()? == ty
            && rd16(b, at + 2).ok()? == flags
            && rd32(b, at + 4).ok()? as usize == len;
        let pay = at + SECTION_HEADER_LEN;
        (same && pay.checked_add(len)? <= b.len()).then_some(pay)?;
        Some((pay, rd32(b, at + 8).ok()?))
    }

    /// Compares `new` (payload bytes `r` of a section whose payload
    /// starts at `pay` in both images) with the base's; changed chunks
    /// become runs and change `crc`.
    fn compare(
        &mut self,
        pay: usize,
        r: Range<usize>,
        new: &[u8],
        crc: &mut CrcDelta,
    ) -> Result<(), StreamError> {
        let base = self.base;
        let old = base
            .get(pay + r.start..pay + r.end)
            .ok_or(StreamError::Truncated)?;
        for (b, (o, n)) in old.chunks(BLOCK).zip(new.chunks(BLOCK)).enumerate() {
            if o == n {
                continue;
            }
            for (c, (oc, nc)) in o.chunks(CHUNK).zip(n.chunks(CHUNK)).enumerate() {
                if oc == nc {
                    continue;
                }
                let off = r.start + b * BLOCK + c * CHUNK;
                let mut diff = [0u8; CHUNK];
                for (d, (x, y)) in diff.iter_mut().zip(oc.iter().zip(nc)) {
                    *d = x ^ y;
                }
                crc.xor_at(off, &diff[..nc.len()]);
                self.put(pay + off, nc)?;
            }
        }
        Ok(())
    }

    /// Opens a section at the next place: checks its order and count.
    fn open(&mut self, ty: u16) -> Result<usize, StreamError> {
        if ty <= self.last {
            return Err(StreamError::OutOfOrderSection(ty));
        }
        if self.sections == MAX_SECTIONS {
            return Err(StreamError::TooLarge);
        }
        Ok(self.at)
    }

    /// Closes the section at `at` with header `head`.
    fn done(&mut self, head: [u8; SECTION_HEADER_LEN], len: usize) {
        self.heads[self.sections] = head;
        self.sections += 1;
        self.at += SECTION_HEADER_LEN + len;
        self.last = u16::from_le_bytes([head[0], head[1]]);
    }

    /// A section the base has at the same place (payload at `pay`, CRC
    /// `old`): `diff` compares what may have changed; the header's CRC
    /// becomes a run if it changed.
    fn patch_section(
        &mut self,
        ty: u16,
        flags: u16,
        len: usize,
        (pay, old): (usize, u32),
        diff: impl FnOnce(&mut Self, &mut CrcDelta) -> Result<(), StreamError>,
    ) -> Result<(), StreamError> {
        self.close();
        let slot = self.reserve(RUN_HEADER_LEN + 4)?;
        let mut crc = CrcDelta::new();
        diff(self, &mut crc)?;
        self.close();
        let new = old ^ crc.finish(len);
        if new == old {
            self.unreserve(slot, RUN_HEADER_LEN + 4);
        } else {
            let at = u32_of(pay - 4)?;
            self.out[slot..slot + 4].copy_from_slice(&at.to_le_bytes());
            self.out[slot + 4..slot + 8].copy_from_slice(&4u32.to_le_bytes());
            self.out[slot + 8..slot + 12].copy_from_slice(&new.to_le_bytes());
        }
        self.done(section_head(ty, flags, u32_of(len)?, new), len);
        Ok(())
    }

    /// A section of `payload` that the base does not have at this place:
    /// sent whole.
    fn new_section(&mut self, ty: u16, flags: u16, payload: &[u8]) -> Result<(), StreamError> {
        let len = u32_of(payload.len())?;
        let mut head = section_head(ty, flags, len, 0);
        let crc = crc32c_update(crc32c(&head[0..8]), payload);
        head[8..12].copy_from_slice(&crc.to_le_bytes());
        let at = self.at;
        self.put(at, &head)?;
        if !payload.is_empty() {
            self.put(at + SECTION_HEADER_LEN, payload)?;
        }
        self.done(head, payload.len());
        Ok(())
    }

    /// Finishes the delta image (end marker, `DeltaBase`, `DeltaRuns`,
    /// header); returns its length and the digest of its result, the
    /// image the provider described.
    pub fn finish(mut self) -> Result<(usize, u32), StreamError> {
        ImageSink::section(&mut self, Section::End as u16, FLAG_MANDATORY, 0, |_| {})?;
        self.close();
        let total = u32_of(self.at)?;
        let mut h = [0u8; HEADER_LEN];
        h[0..8].copy_from_slice(&MAGIC);
        h[8..10].copy_from_slice(&VERSION_MAJOR.to_le_bytes());
        h[10..12].copy_from_slice(&VERSION_MINOR.to_le_bytes());
        h[12..14].copy_from_slice(&self.provider.to_le_bytes());
        h[14..16].copy_from_slice(&self.vgpu_type.to_le_bytes());
        h[20..24].copy_from_slice(&total.to_le_bytes());
        let hcrc = crc32c(&h[..24]);
        h[24..28].copy_from_slice(&hcrc.to_le_bytes());
        if self.base.get(..HEADER_LEN) == Some(&h[..]) {
            self.unreserve(RUNS_AT, RUN_HEADER_LEN + HEADER_LEN);
        } else {
            let r = &mut self.out[RUNS_AT..RUNS_AT + RUN_HEADER_LEN + HEADER_LEN];
            r[0..4].fill(0);
            r[4..8].copy_from_slice(&(HEADER_LEN as u32).to_le_bytes());
            r[RUN_HEADER_LEN..].copy_from_slice(&h);
        }
        let mut result = crc32c(&h);
        for head in &self.heads[..self.sections] {
            result = crc32c_update(result, head);
        }
        let base_len = u32_of(self.base.len())?;
        let base_digest = digest(self.base)?;
        // The same length is said as 0: what readers before 2.2 accept.
        let result_len = if total == base_len { 0 } else { total };
        let runs = self.w - RUNS_AT;
        let mut w = Writer::new(self.out, self.provider, self.vgpu_type)?;
        w.section(
            Section::DeltaBase as u16,
            FLAG_MANDATORY,
            BASE_SECTION_LEN,
            |p| {
                p[0..4].copy_from_slice(&base_len.to_le_bytes());
                p[4..8].copy_from_slice(&base_digest.to_le_bytes());
                p[8..12].copy_from_slice(&result.to_le_bytes());
                p[12..16].copy_from_slice(&result_len.to_le_bytes());
            },
        )?;
        // The runs are in place already.
        w.section_fill(Section::DeltaRuns as u16, FLAG_MANDATORY, |_| Some(runs))?;
        Ok((w.finish()?, result))
    }
}

impl<S: Deref<Target = [u64]>> ImageSink for Patcher<'_, S> {
    fn section(
        &mut self,
        ty: u16,
        flags: u16,
        len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<(), StreamError> {
        let at = self.open(ty)?;
        let scratch = core::mem::take(&mut self.scratch);
        let res = (|| {
            let new = scratch.get_mut(..len).ok_or(StreamError::NoSpace)?;
            fill(new);
            let new = &*new;
            let Some(base) = self.base_section(at, ty, flags, len) else {
                return self.new_section(ty, flags, new);
            };
            // Of the GGTT entries in this payload, only the marked ones.
            let pay = base.0;
            let known = self.changed.filter(|c| c.marked().is_some()).and_then(|c| {
                let s = c.span();
                let start = s.offset.checked_sub(pay)?;
                let end = start.checked_add(s.entries.checked_mul(8)?)?;
                (end <= len).then_some((c, start..end))
            });
            self.patch_section(ty, flags, len, base, |p, crc| match known {
                None => p.compare(pay, 0..len, new, crc),
                Some((c, span)) => {
                    p.compare(pay, 0..span.start, &new[..span.start], crc)?;
                    let mut res = Ok(());
                    c.for_each_marked(&mut |r| {
                        let r = r.start - pay..r.end - pay;
                        if res.is_ok() {
                            res = p.compare(pay, r.clone(), &new[r], crc);
                        }
                    });
                    res?;
                    p.compare(pay, span.end..len, &new[span.end..], crc)
                }
            })
        })();
        self.scratch = scratch;
        res
    }

    fn section_entries(
        &mut self,
        ty: u16,
        flags: u16,
        head: usize,
        fill_head: impl FnOnce(&mut [u8]),
        entries: usize,
        mut entry: impl FnMut(usize) -> u64,
    ) -> Result<(), StreamError> {
        let len = super::entries_len(head, entries)?;
        let at = self.open(ty)?;
        let base = self.base_section(at, ty, flags, len);
        let sparse = self.changed.filter(|c| {
            let s = c.span();
            c.marked().is_some()
                && base.is_some_and(|(pay, _)| s.offset == pay + head && s.entries == entries)
        });
        let (Some(c), Some(base)) = (sparse, base) else {
            return ImageSink::section(self, ty, flags, len, |p| {
                super::fill_entries(p, head, fill_head, entry)
            });
        };
        let scratch = core::mem::take(&mut self.scratch);
        let res = (|| {
            let h = scratch.get_mut(..head).ok_or(StreamError::NoSpace)?;
            fill_head(h);
            let h = &*h;
            let pay = base.0;
            self.patch_section(ty, flags, len, base, |p, crc| {
                p.compare(pay, 0..head, h, crc)?;
                let mut res = Ok(());
                c.for_each_marked(&mut |r| {
                    let i = (r.start - pay - head) / 8;
                    if res.is_ok() {
                        let e = entry(i).to_le_bytes();
                        res = p.compare(pay, r.start - pay..r.end - pay, &e, crc);
                    }
                });
                res
            })
        })();
        self.scratch = scratch;
        res
    }
}

#[cfg(test)]
mod tests {
    use super::super::delta::{DeltaView, EntrySpan};
    use super::super::{validate, Limits};
    use super::*;
    use crate::testutil::Rng;
    use std::vec;
    use std::vec::Vec;

    const LIM: Limits = Limits {
        max_total: 1 << 22,
        max_section: 1 << 21,
    };
    const ENTRIES: usize = 4096;
    /// Where the entries sit: after the registers and the GGTT head.
    const SPAN: EntrySpan = EntrySpan {
        offset: HEADER_LEN + 2 * SECTION_HEADER_LEN + 256 + 16,
        entries: ENTRIES,
    };

    /// A vGPU state as a provider describes it: registers, GGTT entries
    /// (asked one by one, or filled whole as GVT-g's kvmgt does) and, if
    /// any, a section that appears at the stop (pending workloads).
    struct State {
        regs: [u8; 256],
        ggtt: Vec<u64>,
        extra: usize,
        whole: bool,
    }

    impl State {
        fn write<W: ImageSink>(&self, w: &mut W) -> Result<(), StreamError> {
            w.section(Section::Regs as u16, FLAG_MANDATORY, 256, |p| {
                p.copy_from_slice(&self.regs)
            })?;
            let head = |h: &mut [u8]| h.copy_from_slice(&[0x11; 16]);
            if self.whole {
                w.section(
                    Section::Ggtt as u16,
                    FLAG_MANDATORY,
                    16 + 8 * ENTRIES,
                    |p| super::super::fill_entries(p, 16, head, |i| self.ggtt[i]),
                )?;
            } else {
                w.section_entries(
                    Section::Ggtt as u16,
                    FLAG_MANDATORY,
                    16,
                    head,
                    ENTRIES,
                    |i| self.ggtt[i],
                )?;
            }
            if self.extra > 0 {
                w.section(
                    Section::GvtWorkloads as u16,
                    FLAG_MANDATORY,
                    self.extra,
                    |p| {
                        for (i, b) in p.iter_mut().enumerate() {
                            *b = (i * 7 + 1) as u8;
                        }
                    },
                )?;
            }
            Ok(())
        }

        fn image(&self) -> Vec<u8> {
            let mut buf = vec![0u8; 1 << 16];
            let mut w = Writer::new(&mut buf, 1, 3).unwrap();
            self.write(&mut w).unwrap();
            let n = w.finish().unwrap();
            buf.truncate(n);
            buf
        }

        /// The patched delta over `base` and its result's digest.
        fn patch(
            &self,
            base: &[u8],
            changed: Option<&ChangedEntries<Vec<u64>>>,
            room: usize,
        ) -> Result<(Vec<u8>, u32), StreamError> {
            let mut scratch = vec![0u8; 1 << 16];
            let mut out = vec![0u8; room];
            let mut p = Patcher::new(base, changed, &mut scratch, &mut out, 1, 3)?;
            self.write(&mut p)?;
            let (n, d) = p.finish()?;
            out.truncate(n);
            Ok((out, d))
        }
    }

    fn random_state(rng: &mut Rng, whole: bool) -> State {
        let mut regs = [0u8; 256];
        rng.fill(&mut regs);
        State {
            regs,
            ggtt: (0..ENTRIES).map(|_| rng.next_u64()).collect(),
            extra: 0,
            whole,
        }
    }

    fn marks() -> ChangedEntries<Vec<u64>> {
        let words = vec![0; ChangedEntries::<Vec<u64>>::words_for(ENTRIES)];
        ChangedEntries::new(SPAN, words).unwrap()
    }

    /// What a destination builds from `base` and `delta`.
    fn applied(base: &[u8], delta: &[u8]) -> Vec<u8> {
        validate(delta, &LIM).unwrap();
        let v = DeltaView::parse(delta).unwrap();
        let mut out = vec![0u8; v.result_len()];
        v.apply(base, &mut out, &LIM).unwrap();
        out
    }

    #[test]
    fn zeros_shift_a_crc_register_as_feeding_them_does() {
        let mut rng = Rng::new(7);
        let zeros = vec![0u8; 5000];
        for n in [0, 1, 7, 63, 64, 65, 100, 4096, 4999] {
            let reg = rng.next_u64() as u32;
            assert_eq!(crc_raw_zeros(reg, n), crc_raw(reg, &zeros[..n]), "{n}");
        }
    }

    #[test]
    fn a_crc_follows_scattered_changes() {
        let mut rng = Rng::new(11);
        for round in 0..200 {
            let len = 1 + rng.below(3000) as usize;
            let mut a = vec![0u8; len];
            rng.fill(&mut a);
            let mut b = a.clone();
            let mut d = CrcDelta::new();
            let mut at = 0;
            while at < len {
                at += rng.below(400) as usize;
                let n = (1 + rng.below(8) as usize).min(len.saturating_sub(at));
                if n == 0 {
                    break;
                }
                let mut diff = [0u8; 8];
                rng.fill(&mut diff[..n]);
                for (x, y) in b[at..at + n].iter_mut().zip(&diff) {
                    *x ^= y;
                }
                d.xor_at(at, &diff[..n]);
                at += n;
            }
            assert_eq!(crc32c(&a) ^ d.finish(len), crc32c(&b), "round {round}");
        }
    }

    #[test]
    fn a_patched_delta_restores_the_image_the_writer_builds() {
        let mut rng = Rng::new(3);
        for round in 0..300 {
            let whole = round % 2 == 1;
            let mut s = random_state(&mut rng, whole);
            let base = s.image();
            let mut changed = marks();
            let writes = [0, 1, 5, 300, ENTRIES][round % 5];
            for _ in 0..writes {
                let i = rng.below(ENTRIES as u64);
                // Some writes rewrite the value the entry had.
                if rng.below(4) != 0 {
                    s.ggtt[i as usize] = rng.next_u64();
                }
                changed.mark(i);
            }
            for _ in 0..rng.below(4) {
                s.regs[rng.below(256) as usize] ^= 1 << rng.below(8);
            }
            s.extra = [0, 0, 0, 40, 1][round % 5];
            let full = s.image();
            let room = room_for(full.len().max(base.len()), Some(&changed));
            // What room_for() gives is enough, unless the delta is over
            // half the image (then it is not sent).
            let (delta, result) = match s.patch(&base, Some(&changed), room) {
                Ok(d) => d,
                Err(StreamError::NoSpace) if room == full.len().max(base.len()) / 2 => {
                    s.patch(&base, Some(&changed), full.len()).unwrap()
                }
                Err(e) => panic!("round {round}: {e:?}"),
            };
            assert_eq!(applied(&base, &delta), full, "round {round}");
            assert_eq!(Ok(result), digest(&full), "round {round}");
            // Without the marks every entry is compared.
            let (delta, _) = s.patch(&base, None, full.len()).unwrap();
            assert_eq!(applied(&base, &delta), full, "round {round}");
        }
    }

    #[test]
    fn the_room_follows_the_marked_entries() {
        let mut changed = marks();
        let len = SPAN.offset + 8 * ENTRIES + 28;
        let none = room_for(len, Some(&changed));
        assert!(none < 2 * (len - 8 * ENTRIES) + 1024, "{none}");
        for i in 0..10 {
            changed.mark(i * 300);
        }
        assert_eq!(room_for(len, Some(&changed)), none + 10 * 16);
        // Unknown entries: up to half an image.
        assert_eq!(room_for::<Vec<u64>>(len, None), len / 2);
        changed.mark(u64::MAX);
        assert_eq!(room_for(len, Some(&changed)), len / 2);
    }

    #[test]
    fn an_unchanged_vgpu_patches_nothing() {
        let s = random_state(&mut Rng::new(5), false);
        let base = s.image();
        let (delta, result) = s.patch(&base, Some(&marks()), base.len()).unwrap();
        // Header, DeltaBase, an empty DeltaRuns and the end marker.
        assert_eq!(delta.len(), RUNS_AT + SECTION_HEADER_LEN);
        assert_eq!(Ok(result), digest(&base));
        assert_eq!(applied(&base, &delta), base);
    }

    #[test]
    fn the_work_follows_the_marked_entries() {
        let mut rng = Rng::new(9);
        let mut s = random_state(&mut rng, false);
        let base = s.image();
        let mut changed = marks();
        for i in [3usize, 4000] {
            s.ggtt[i] ^= 0xff00;
            changed.mark(i as u64);
        }
        let asked = core::cell::Cell::new(0);
        let mut scratch = vec![0u8; 1 << 16];
        let mut out = vec![0u8; base.len()];
        let mut p = Patcher::new(&base, Some(&changed), &mut scratch, &mut out, 1, 3).unwrap();
        p.section(Section::Regs as u16, FLAG_MANDATORY, 256, |r| {
            r.copy_from_slice(&s.regs)
        })
        .unwrap();
        p.section_entries(
            Section::Ggtt as u16,
            FLAG_MANDATORY,
            16,
            |h| h.copy_from_slice(&[0x11; 16]),
            ENTRIES,
            |i| {
                asked.set(asked.get() + 1);
                s.ggtt[i]
            },
        )
        .unwrap();
        let (n, _) = p.finish().unwrap();
        assert_eq!(asked.get(), 2);
        // Two entry runs and the section checksum's.
        assert_eq!(n, RUNS_AT + 2 * (8 + 8) + (8 + 4) + SECTION_HEADER_LEN);
        assert_eq!(applied(&base, &out[..n]), s.image());
    }

    #[test]
    fn a_change_the_write_path_missed_shows_in_the_digest() {
        let mut rng = Rng::new(13);
        for whole in [false, true] {
            let mut s = random_state(&mut rng, whole);
            let base = s.image();
            s.ggtt[77] ^= 1;
            let full = s.image();
            let (delta, result) = s.patch(&base, Some(&marks()), full.len()).unwrap();
            // A valid image, the base's entry in it: only the digest of
            // the image built whole tells.
            let got = applied(&base, &delta);
            assert_ne!(got, full);
            assert_ne!(Ok(result), digest(&full));
        }
    }

    #[test]
    fn a_delta_that_outgrows_its_room_is_no_space() {
        let mut rng = Rng::new(17);
        let mut s = random_state(&mut rng, false);
        let base = s.image();
        let mut changed = marks();
        for i in 0..ENTRIES {
            s.ggtt[i] = !s.ggtt[i];
            changed.mark(i as u64);
        }
        for room in [0, RUNS_AT, RUNS_AT + 100, base.len() / 2] {
            assert_eq!(
                s.patch(&base, Some(&changed), room).err(),
                Some(StreamError::NoSpace),
                "{room}"
            );
        }
        let short = &base[..HEADER_LEN - 1];
        assert!(s.patch(short, Some(&changed), base.len()).is_err());
    }
}

// SPDX-License-Identifier: GPL-2.0

//! Delta images: the stop-copy state as the bytes changed since the
//! pre-copy image.
//!
//! The source keeps the pre-copy image (the base) and, at stop-copy, builds
//! the full image again and compares the two ([`write_delta`]). Where the
//! provider's GGTT entries sit in the image ([`EntrySpan`]), only the
//! entries its GGTT write path marked since the base was taken
//! ([`ChangedEntries`]) are compared: the others are the base's. A delta
//! image is a stream image with the base's provider and vGPU type and these
//! sections (version 2 on):
//!
//! ```text
//! DeltaBase  base length u32 | base digest u32 | result digest u32 |
//!            result length u32 (0: the base's; version 2.2 on)
//! DeltaRuns  run*: offset u32 | length u32 | bytes
//!            (length > 0, offsets increasing, runs disjoint and inside
//!            the result)
//! End
//! ```
//!
//! The result is the base, cut or extended with zeros to the result
//! length, with each run's bytes written at its offset. A state that grew
//! at the stop (GVT-g's pending workloads, a section the pre-copy image of
//! a running vGPU does not have) is a delta too: its new bytes are runs
//! past the base's end. Only such a delta carries a result length; an
//! older reader refuses it by its non-zero reserved word, and accepts
//! every other. The destination ([`super::resolve`],
//! [`DeltaView::apply`]) checks that the image before the delta has the
//! named length and [`digest`], builds the result, validates it as a whole
//! image and checks its digest before anything is restored: a delta over
//! another base, a change the write path missed or a corrupted run is
//! refused by name, never applied.

use super::{
    digest, rd16, rd32, sections_unchecked, validate, Header, ImageSink, Limits, Section,
    StreamError, Writer, FLAG_MANDATORY, HEADER_LEN,
};
use core::ops::{Deref, DerefMut, Range};

/// Payload bytes of a `DeltaBase` section.
pub const BASE_SECTION_LEN: usize = 16;
/// Bytes before each run's data in `DeltaRuns`.
pub const RUN_HEADER_LEN: usize = 8;
/// Bytes an image diff compares at once before it looks closer.
const BLOCK: usize = 64;
/// Granularity of a run.
const CHUNK: usize = 8;

/// Why a delta image cannot be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeltaError {
    /// No full image comes just before the delta.
    NoBase,
    /// The image before the delta is not the one it names (length or
    /// digest differ).
    WrongBase,
    /// Another image follows the delta: a delta is the last image.
    NotLast,
    /// A section that has no place in a delta image, or a malformed one.
    BadSection(u16),
    /// A delta section is missing.
    MissingSection(u16),
    /// The run at byte `at` of `DeltaRuns` is cut, empty, out of order,
    /// overlaps the one before or reaches past the base.
    BadRun {
        /// Offset of the run in the section's payload.
        at: usize,
    },
    /// The base with the runs applied is not a valid image.
    Result(StreamError),
    /// The result is a valid image but not the source's (its digest
    /// differs): a change the source did not send.
    ResultMismatch,
    /// The result would be longer than the destination accepts an image
    /// ([`Limits::max_total`]).
    ResultTooLarge,
}

/// Where a provider's GGTT entries sit in its state image: `entries`
/// little-endian u64s from byte `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntrySpan {
    /// Offset of entry 0 in the image.
    pub offset: usize,
    /// Number of entries.
    pub entries: usize,
}

impl EntrySpan {
    /// Bytes of entry `i` in the image.
    fn entry(&self, i: usize) -> Range<usize> {
        let at = self.offset + 8 * i;
        at..at + 8
    }

    /// Bytes of all entries, if they lie within an image of `len` bytes.
    fn within(&self, len: usize) -> Option<Range<usize>> {
        let end = self.entries.checked_mul(8)?.checked_add(self.offset)?;
        (end <= len).then_some(self.offset..end)
    }
}

/// The GGTT entries written since the base image was taken, one bit per
/// entry of the span (bounded memory: `entries / 8` bytes).
pub struct ChangedEntries<S> {
    span: EntrySpan,
    words: S,
    all: bool,
    /// Entries marked (each once).
    marked: usize,
}

impl<S> ChangedEntries<S> {
    /// Words of bitmap a span of `entries` needs.
    pub const fn words_for(entries: usize) -> usize {
        entries.div_ceil(64)
    }

    /// Where the entries sit.
    pub fn span(&self) -> EntrySpan {
        self.span
    }

    /// How many entries were marked; `None` once a write outside the span
    /// marked them all.
    pub fn marked(&self) -> Option<usize> {
        (!self.all).then_some(self.marked)
    }

    /// Whether the base has gone stale for a VMM that takes new initial
    /// data (VFIO_PRECOPY_INFO_REINIT): a stop-copy delta over it would
    /// carry at least [`REINIT_BYTES`] of GGTT entries, or an unknown
    /// number of them.
    pub fn base_is_stale(&self) -> bool {
        self.marked()
            .is_none_or(|n| n.saturating_mul(8) >= REINIT_BYTES)
    }
}

/// GGTT entry bytes written since the base from which a VMM that opted in
/// to VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2 gets a new base in pre-copy
/// ([`ChangedEntries::base_is_stale`]): 2048 entries, 8 MiB of graphics
/// memory mapped anew. The new base costs a full image in pre-copy, while
/// the VM runs; the delta it saves would be sent and applied in the
/// downtime.
pub const REINIT_BYTES: usize = 16 << 10;

/// New bases a source sends in one migration at most: a guest that keeps
/// rewriting its GGTT still converges, its last delta as large as it
/// would have been.
pub const MAX_REINITS: u32 = 8;

impl<S: Deref<Target = [u64]>> ChangedEntries<S> {
    /// Whether entry `i` was marked.
    fn is_marked(&self, i: usize) -> bool {
        self.words
            .get(i / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// The entries that differ between `base` and `now` (images of this
    /// vGPU, `base` the one the marks started from) and were not marked:
    /// GGTT writes the write path missed. A write after any image still
    /// marks its entry, so the count does not depend on when `now` was
    /// built. 0 when every entry counts as marked.
    pub fn unmarked_changes(&self, base: &[u8], now: &[u8]) -> usize {
        if self.all {
            return 0;
        }
        (0..self.span.entries)
            .filter(|&i| {
                let r = self.span.entry(i);
                !self.is_marked(i) && base.get(r.clone()) != now.get(r)
            })
            .count()
    }

    /// Calls `f` with the image bytes of every marked entry, in order;
    /// the work follows the words of the bitmap, not its bits.
    pub(super) fn for_each_marked(&self, f: &mut impl FnMut(Range<usize>)) {
        for (w, &bits) in self.words.iter().enumerate() {
            let mut bits = bits;
            while bits != 0 {
                let i = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if i < self.span.entries {
                    f(self.span.entry(i));
                }
            }
        }
    }
}

impl<S: DerefMut<Target = [u64]>> ChangedEntries<S> {
    /// A bitmap over `span` in `words` (cleared); `None` if it has fewer
    /// than [`ChangedEntries::words_for`] words.
    pub fn new(span: EntrySpan, mut words: S) -> Option<Self> {
        if words.len() < Self::words_for(span.entries) {
            return None;
        }
        words.fill(0);
        Some(Self {
            span,
            words,
            all: false,
            marked: 0,
        })
    }

    /// GGTT entry `index` (image order) was written. An index outside the
    /// span marks every entry.
    pub fn mark(&mut self, index: u64) {
        let i = usize::try_from(index)
            .ok()
            .filter(|&i| i < self.span.entries);
        match i.and_then(|i| self.words.get_mut(i / 64).map(|w| (i, w))) {
            Some((i, w)) => {
                if *w & (1 << (i % 64)) == 0 {
                    self.marked += 1;
                }
                *w |= 1 << (i % 64);
            }
            None => self.all = true,
        }
    }
}

/// Calls `f` with the byte ranges of an image of `len` bytes that may
/// differ from a base of `base_len` bytes, in order: everything, but of
/// the GGTT entries only those `changed` marks (if all of them lie in
/// both images).
fn candidates<S: Deref<Target = [u64]>>(
    len: usize,
    base_len: usize,
    changed: Option<&ChangedEntries<S>>,
    f: &mut impl FnMut(Range<usize>),
) {
    let known = changed
        .filter(|c| !c.all)
        .and_then(|c| Some((c, c.span.within(len.min(base_len))?)));
    let Some((c, span)) = known else {
        return f(0..len);
    };
    f(0..span.start);
    c.for_each_marked(f);
    f(span.end..len);
}

/// The runs of a delta, written as the diff finds them.
struct Runs<'a> {
    base: &'a [u8],
    full: &'a [u8],
    out: &'a mut [u8],
    used: usize,
    cur: Option<Range<usize>>,
    overflow: bool,
}

impl Runs<'_> {
    /// Compares `r` of the two images; differing chunks join the runs.
    fn diff(&mut self, r: Range<usize>) {
        let mut at = r.start;
        while at < r.end {
            let end = (at + BLOCK).min(r.end);
            if self.base.get(at..end) != self.full.get(at..end) {
                self.diff_block(at..end);
            }
            at = end;
        }
    }

    fn diff_block(&mut self, r: Range<usize>) {
        let mut at = r.start;
        while at < r.end {
            let end = (at + CHUNK).min(r.end);
            if self.base.get(at..end) != self.full.get(at..end) {
                self.push(at..end);
            }
            at = end;
        }
    }

    /// Adds a changed range; one close to the current run (a gap no longer
    /// than a run header) extends it.
    fn push(&mut self, r: Range<usize>) {
        match &mut self.cur {
            Some(c) if r.start <= c.end + RUN_HEADER_LEN => c.end = r.end,
            _ => {
                self.emit();
                self.cur = Some(r);
            }
        }
    }

    /// Writes the current run (its bytes from the full image).
    fn emit(&mut self) {
        let Some(r) = self.cur.take() else {
            return;
        };
        let data = self.full.get(r.clone());
        let (Ok(off), Ok(len), Some(data)) = (u32::try_from(r.start), u32::try_from(r.len()), data)
        else {
            self.overflow = true;
            return;
        };
        let end = self.used + RUN_HEADER_LEN + data.len();
        let Some(o) = self.out.get_mut(self.used..end) else {
            self.overflow = true;
            return;
        };
        o[0..4].copy_from_slice(&off.to_le_bytes());
        o[4..8].copy_from_slice(&len.to_le_bytes());
        o[RUN_HEADER_LEN..].copy_from_slice(data);
        self.used = end;
    }

    fn finish(mut self) -> Option<usize> {
        self.emit();
        (!self.overflow).then_some(self.used)
    }
}

/// Writes into `out` the delta image that turns `base` into `full` (both
/// images of this vGPU, `full` the newer, of any lengths: bytes past the
/// base's end are runs); returns its length. `changed`
/// names the GGTT entries written since `base` was taken; without it every
/// byte is compared. [`StreamError::NoSpace`] if the delta does not fit
/// `out` (the caller sends `full` instead).
pub fn write_delta<S: Deref<Target = [u64]>>(
    base: &[u8],
    full: &[u8],
    changed: Option<&ChangedEntries<S>>,
    out: &mut [u8],
) -> Result<usize, StreamError> {
    let base_sec = Section::DeltaBase as u16;
    let len = u32::try_from(base.len()).map_err(|_| StreamError::TooLarge)?;
    let full_len = u32::try_from(full.len()).map_err(|_| StreamError::TooLarge)?;
    // The same length is said as 0: what readers before 2.2 accept.
    let result_len = if full_len == len { 0 } else { full_len };
    if base.len() < HEADER_LEN || full.len() < HEADER_LEN {
        return Err(StreamError::BadSection(base_sec));
    }
    let (base_digest, full_digest) = (digest(base)?, digest(full)?);
    let mut w = Writer::new(out, rd16(full, 12)?, rd16(full, 14)?)?;
    w.section(base_sec, FLAG_MANDATORY, BASE_SECTION_LEN, |p| {
        p[0..4].copy_from_slice(&len.to_le_bytes());
        p[4..8].copy_from_slice(&base_digest.to_le_bytes());
        p[8..12].copy_from_slice(&full_digest.to_le_bytes());
        p[12..16].copy_from_slice(&result_len.to_le_bytes());
    })?;
    w.section_fill(Section::DeltaRuns as u16, FLAG_MANDATORY, |out| {
        let mut runs = Runs {
            base,
            full,
            out,
            used: 0,
            cur: None,
            overflow: false,
        };
        candidates(full.len(), base.len(), changed, &mut |r| runs.diff(r));
        runs.finish()
    })?;
    w.finish()
}

/// Whether a validated image with header `hdr` is a delta image. Version 1
/// has no delta sections: a section of their type is an unknown optional
/// one there, skipped.
pub fn is_delta(hdr: &Header, image: &[u8]) -> bool {
    hdr.major >= 2
        && sections_unchecked(image)
            .any(|s| matches!(s, Ok((t, _, _)) if t == Section::DeltaBase as u16))
}

/// A delta image, checked on its own (its sections and runs).
#[derive(Debug, Clone, Copy)]
pub struct DeltaView<'a> {
    base_len: usize,
    result_len: usize,
    base_digest: u32,
    result_digest: u32,
    runs: &'a [u8],
}

/// Calls `f(offset, bytes)` for each run of a `DeltaRuns` payload over a
/// result of `result_len` bytes, checking each first.
fn walk_runs<'a>(
    runs: &'a [u8],
    result_len: usize,
    mut f: impl FnMut(usize, &'a [u8]),
) -> Result<(), DeltaError> {
    let mut at = 0usize;
    let mut next = 0usize;
    while at < runs.len() {
        let bad = DeltaError::BadRun { at };
        let off = rd32(runs, at).map_err(|_| bad)? as usize;
        let len = rd32(runs, at + 4).map_err(|_| bad)? as usize;
        let data = at + RUN_HEADER_LEN;
        let bytes = runs
            .get(data..data.checked_add(len).ok_or(bad)?)
            .ok_or(bad)?;
        let end = off.checked_add(len).ok_or(bad)?;
        if len == 0 || off < next || end > result_len {
            return Err(bad);
        }
        f(off, bytes);
        next = end;
        at = data + len;
    }
    Ok(())
}

fn le32(p: &[u8], off: usize) -> u32 {
    rd32(p, off).unwrap_or(0)
}

impl<'a> DeltaView<'a> {
    /// Checks a validated delta image: a `DeltaBase` and a `DeltaRuns`
    /// section and nothing else but the end marker (optional sections
    /// too have no place in it), well-formed runs.
    pub fn parse(image: &'a [u8]) -> Result<Self, DeltaError> {
        let (mut base, mut runs) = (None, None);
        for s in sections_unchecked(image) {
            let (ty, _, p) = s.map_err(DeltaError::Result)?;
            match ty {
                t if t == Section::DeltaBase as u16 => {
                    if p.len() != BASE_SECTION_LEN {
                        return Err(DeltaError::BadSection(t));
                    }
                    base = Some(p);
                }
                t if t == Section::DeltaRuns as u16 => runs = Some(p),
                t if t == Section::End as u16 => {}
                t => return Err(DeltaError::BadSection(t)),
            }
        }
        let base = base.ok_or(DeltaError::MissingSection(Section::DeltaBase as u16))?;
        let runs = runs.ok_or(DeltaError::MissingSection(Section::DeltaRuns as u16))?;
        let base_len = le32(base, 0) as usize;
        let view = Self {
            base_len,
            result_len: match le32(base, 12) as usize {
                0 => base_len,
                n => n,
            },
            base_digest: le32(base, 4),
            result_digest: le32(base, 8),
            runs,
        };
        walk_runs(runs, view.result_len, |_, _| {})?;
        Ok(view)
    }

    /// Length of the base.
    pub fn base_len(&self) -> usize {
        self.base_len
    }

    /// Length of the result (what [`DeltaView::apply`] builds).
    pub fn result_len(&self) -> usize {
        self.result_len
    }

    /// Whether the result fits `limits` (checked before a destination
    /// allocates it).
    pub fn check_limits(&self, limits: &Limits) -> Result<(), DeltaError> {
        if self.result_len > limits.max_total {
            return Err(DeltaError::ResultTooLarge);
        }
        Ok(())
    }

    /// Whether `base` is the image this delta names.
    pub fn check_base(&self, base: &[u8]) -> Result<(), DeltaError> {
        if base.len() != self.base_len || digest(base) != Ok(self.base_digest) {
            return Err(DeltaError::WrongBase);
        }
        Ok(())
    }

    /// Builds the result in `out` (exactly [`DeltaView::result_len`]
    /// bytes) from `base`, validates it against `limits` and checks it is
    /// the source's image; returns its header. `out` holds the image to
    /// restore once this returned `Ok`.
    pub fn apply(
        &self,
        base: &[u8],
        out: &mut [u8],
        limits: &Limits,
    ) -> Result<Header, DeltaError> {
        self.check_base(base)?;
        self.check_limits(limits)?;
        if out.len() != self.result_len {
            return Err(DeltaError::Result(StreamError::NoSpace));
        }
        let kept = base.len().min(out.len());
        let (head, tail) = out.split_at_mut(kept);
        head.copy_from_slice(&base[..kept]);
        tail.fill(0);
        walk_runs(self.runs, self.result_len, |off, bytes| {
            if let Some(d) = out.get_mut(off..off + bytes.len()) {
                d.copy_from_slice(bytes);
            }
        })?;
        let hdr = validate(out, limits).map_err(DeltaError::Result)?;
        if is_delta(&hdr, out) {
            return Err(DeltaError::Result(StreamError::BadSection(
                Section::DeltaBase as u16,
            )));
        }
        if digest(out) != Ok(self.result_digest) {
            return Err(DeltaError::ResultMismatch);
        }
        Ok(hdr)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{resolve, Resolved, ResumeError, SECTION_HEADER_LEN};
    use super::*;
    use crate::testutil::Rng;
    use std::vec;
    use std::vec::Vec;

    const LIM: Limits = Limits {
        max_total: 1 << 22,
        max_section: 1 << 21,
    };
    const ENTRIES: usize = 4096;
    /// Where the entries sit in [`image`]'s layout.
    const SPAN: EntrySpan = EntrySpan {
        offset: HEADER_LEN + 2 * SECTION_HEADER_LEN + 256,
        entries: ENTRIES,
    };

    /// A sim-like image: 256 bytes of registers, then GGTT entries.
    fn image(regs: &[u8; 256], ggtt: &[u64]) -> Vec<u8> {
        grown(regs, ggtt, 0)
    }

    /// [`image`] with a mandatory section of `extra` bytes (if any) behind
    /// the GGTT entries: a state that grew at the stop (GVT-g's pending
    /// workloads).
    fn grown(regs: &[u8; 256], ggtt: &[u64], extra: usize) -> Vec<u8> {
        let mut buf = vec![0u8; 2 * SPAN.offset + 8 * ggtt.len() + extra];
        let mut w = Writer::new(&mut buf, 1, 0).unwrap();
        w.section(Section::Regs as u16, FLAG_MANDATORY, 256, |p| {
            p.copy_from_slice(regs)
        })
        .unwrap();
        w.section(Section::Ggtt as u16, FLAG_MANDATORY, 8 * ggtt.len(), |p| {
            for (c, e) in p.chunks_exact_mut(8).zip(ggtt) {
                c.copy_from_slice(&e.to_le_bytes());
            }
        })
        .unwrap();
        if extra > 0 {
            w.section(Section::GvtWorkloads as u16, FLAG_MANDATORY, extra, |p| {
                for (i, b) in p.iter_mut().enumerate() {
                    *b = (i * 7 + 1) as u8;
                }
            })
            .unwrap();
        }
        let n = w.finish().unwrap();
        buf.truncate(n);
        buf
    }

    /// A state and the same after `writes` GGTT writes (marked) and one
    /// register change.
    struct Case {
        base: Vec<u8>,
        full: Vec<u8>,
        changed: ChangedEntries<Vec<u64>>,
        ggtt: Vec<u64>,
    }

    fn case(seed: u64, writes: usize) -> Case {
        let mut rng = Rng::new(seed);
        let mut regs = [0u8; 256];
        regs.iter_mut().for_each(|r| *r = rng.next_u64() as u8);
        let mut ggtt: Vec<u64> = (0..ENTRIES).map(|_| rng.next_u64()).collect();
        let base = image(&regs, &ggtt);
        let words = vec![0; ChangedEntries::<Vec<u64>>::words_for(ENTRIES)];
        let mut changed = ChangedEntries::new(SPAN, words).unwrap();
        for _ in 0..writes {
            let i = rng.below(ENTRIES as u64);
            ggtt[i as usize] = rng.next_u64();
            changed.mark(i);
        }
        regs[rng.below(256) as usize] ^= 0x5a;
        let full = image(&regs, &ggtt);
        Case {
            base,
            full,
            changed,
            ggtt,
        }
    }

    fn delta_of(c: &Case, changed: Option<&ChangedEntries<Vec<u64>>>) -> Vec<u8> {
        let mut out = vec![0u8; c.full.len()];
        let n = write_delta(&c.base, &c.full, changed, &mut out).unwrap();
        out.truncate(n);
        out
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    /// What a destination restores from `stream`: the image it builds.
    fn restore(stream: &[u8]) -> Result<Vec<u8>, ResumeError> {
        match resolve(stream, &LIM, 1, 0)? {
            Resolved::Full { image, .. } => Ok(image.to_vec()),
            Resolved::Delta { base, delta } => {
                let mut out = vec![0u8; delta.result_len()];
                let at = base.len();
                delta
                    .apply(base, &mut out, &LIM)
                    .map_err(|err| ResumeError::Delta { at, err })?;
                Ok(out)
            }
        }
    }

    #[test]
    fn base_and_delta_restore_the_full_image() {
        for seed in 0..20 {
            let c = case(seed, seed as usize * 3);
            let marked = delta_of(&c, Some(&c.changed));
            let compared = delta_of(&c, None);
            assert!(
                marked.len() <= compared.len(),
                "the bitmap finds every change"
            );
            assert!(restore(&cat(&[&c.base, &compared])).unwrap() == c.full);
            let got = restore(&cat(&[&c.base, &marked])).unwrap();
            assert!(got == c.full, "seed {seed}: result differs");
            let span = SPAN.within(got.len()).unwrap();
            let entry =
                |i: usize| u64::from_le_bytes(got[span.start + 8 * i..][..8].try_into().unwrap());
            assert!((0..ENTRIES).all(|i| entry(i) == c.ggtt[i]));
            // Far smaller than the image: the entries written, the
            // changed register, the two section checksums and the header.
            let runs = 3 + seed as usize * 3;
            assert!(
                marked.len() <= 100 + runs * (RUN_HEADER_LEN + 16),
                "{}",
                marked.len()
            );
        }
    }

    #[test]
    fn an_idle_vgpu_sends_a_delta_of_a_hundred_bytes() {
        let c = case(1, 0);
        let d = delta_of(&c, Some(&c.changed));
        let same = delta_of(
            &Case {
                full: c.base.clone(),
                ..case(1, 0)
            },
            Some(&c.changed),
        );
        assert!(
            d.len() < 200 && same.len() <= 80,
            "{} {}",
            d.len(),
            same.len()
        );
        assert!(restore(&cat(&[&c.base, &same])).unwrap() == c.base);
    }

    #[test]
    fn a_change_the_write_path_missed_is_refused() {
        let mut c = case(2, 4);
        // An entry changed without a mark: the delta lacks it, and the
        // result's GGTT checksum (sent, as it changed) does not match.
        let i = (0..ENTRIES).find(|&i| !c.changed.is_marked(i)).unwrap();
        c.ggtt[i] ^= 1;
        let mut regs = [0u8; 256];
        regs.copy_from_slice(&c.full[HEADER_LEN + SECTION_HEADER_LEN..][..256]);
        c.full = image(&regs, &c.ggtt);
        let d = delta_of(&c, Some(&c.changed));
        assert_eq!(
            restore(&cat(&[&c.base, &d])),
            Err(ResumeError::Delta {
                at: c.base.len(),
                err: DeltaError::Result(StreamError::ChecksumMismatch)
            })
        );
        // An index outside the span marks everything: compared in full.
        c.changed.mark(ENTRIES as u64);
        let d = delta_of(&c, Some(&c.changed));
        assert!(restore(&cat(&[&c.base, &d])).unwrap() == c.full);
    }

    #[test]
    fn a_delta_over_another_or_no_base_is_refused_by_name() {
        let c = case(3, 5);
        let d = delta_of(&c, Some(&c.changed));
        let other = case(4, 0).base;
        let at = other.len();
        let err = |at, err| Err(ResumeError::Delta { at, err });
        assert_eq!(restore(&cat(&[&other, &d])), err(at, DeltaError::WrongBase));
        assert_eq!(restore(&d), err(0, DeltaError::NoBase));
        // The delta applies to the image just before it, a full one.
        let dd = cat(&[&c.base, &d, &d]);
        assert_eq!(restore(&dd), err(c.base.len(), DeltaError::NotLast));
        let later = cat(&[&c.base, &d, &c.full]);
        assert_eq!(restore(&later), err(c.base.len(), DeltaError::NotLast));
        let two = cat(&[&c.full, &c.base, &d]);
        assert!(
            restore(&two).unwrap() == c.full,
            "an older image before the base"
        );
        // `apply` checks its base too.
        let v = DeltaView::parse(&d).unwrap();
        let mut out = vec![0u8; v.result_len()];
        assert_eq!(v.apply(&other, &mut out, &LIM), Err(DeltaError::WrongBase));
        assert_eq!(
            v.apply(&c.base, &mut out[1..], &LIM),
            Err(DeltaError::Result(StreamError::NoSpace))
        );
    }

    /// Re-seals every section checksum and the header of a delta image.
    fn reseal(img: &mut [u8]) {
        let mut off = HEADER_LEN;
        while off + SECTION_HEADER_LEN <= img.len() {
            let len = rd32(img, off + 4).unwrap() as usize;
            let p = off + SECTION_HEADER_LEN;
            let Some(payload) = img.get(p..p + len) else {
                break;
            };
            let c = super::super::crc32c_update(super::super::crc32c(&img[off..off + 8]), payload);
            img[off + 8..off + 12].copy_from_slice(&c.to_le_bytes());
            off = p + len;
        }
        let c = super::super::crc32c(&img[..24]);
        img[24..28].copy_from_slice(&c.to_le_bytes());
    }

    #[test]
    fn every_truncation_and_byte_flip_of_base_and_delta_is_refused() {
        let c = case(5, 6);
        let d = delta_of(&c, Some(&c.changed));
        let good = cat(&[&c.base, &d]);
        assert!(restore(&good).unwrap() == c.full);
        // (The base alone is a stream of its own: what a VMM sends when the
        // switch-over never came.)
        for n in (0..good.len()).filter(|&n| n != c.base.len()) {
            assert!(restore(&good[..n]).is_err(), "truncated at {n}");
        }
        for i in (0..c.base.len())
            .step_by(97)
            .chain(c.base.len()..good.len())
        {
            let mut bad = good.clone();
            bad[i] ^= 0x10;
            assert!(restore(&bad).is_err(), "flip at {i}");
        }
        // Past the checksums too: every flip of the delta, re-sealed, is
        // refused (a run moved, cut or corrupted, another base or result),
        // but in the minor version, the reserved header flags and the flags
        // of known sections, which a reader does not interpret.
        let mut flags = vec![10, 11, 16, 17, 18, 19];
        let mut off = HEADER_LEN;
        while off < d.len() {
            flags.extend([off + 2, off + 3]);
            off += SECTION_HEADER_LEN + rd32(&d, off + 4).unwrap() as usize;
        }
        let free = |i: usize| flags.contains(&i);
        for i in (0..d.len()).filter(|&i| !free(i)) {
            for bit in [0x01, 0x80] {
                let mut bad = d.clone();
                bad[i] ^= bit;
                reseal(&mut bad);
                if bad == d {
                    continue; // a checksum, re-sealed
                }
                let r = restore(&cat(&[&c.base, &bad]));
                assert!(
                    r.is_err(),
                    "flip {bit:#x} at {i} of the delta: {:?}",
                    r.map(|v| v == c.full)
                );
            }
        }
    }

    #[test]
    fn malformed_deltas_are_named() {
        let c = case(6, 2);
        let d = delta_of(&c, Some(&c.changed));
        let runs_at = HEADER_LEN + 2 * SECTION_HEADER_LEN + BASE_SECTION_LEN;
        // A run reaching past the base.
        let mut bad = d.clone();
        let len = c.base.len() as u32;
        bad[runs_at..runs_at + 4].copy_from_slice(&len.to_le_bytes());
        reseal(&mut bad);
        assert_eq!(
            DeltaView::parse(&bad).err(),
            Some(DeltaError::BadRun { at: 0 })
        );
        // A result length the runs do not fit in.
        let mut bad = d.clone();
        bad[HEADER_LEN + SECTION_HEADER_LEN + 12] = 1;
        reseal(&mut bad);
        assert_eq!(
            DeltaView::parse(&bad).err(),
            Some(DeltaError::BadRun { at: 0 })
        );
        // A result longer than the destination accepts: refused before
        // anything is allocated.
        let mut bad = d.clone();
        let huge = (LIM.max_total as u32 + 1).to_le_bytes();
        bad[HEADER_LEN + SECTION_HEADER_LEN + 12..][..4].copy_from_slice(&huge);
        reseal(&mut bad);
        assert_eq!(
            restore(&cat(&[&c.base, &bad])),
            Err(ResumeError::Delta {
                at: c.base.len(),
                err: DeltaError::ResultTooLarge
            })
        );
        let v = DeltaView::parse(&bad).unwrap();
        let mut out = vec![0u8; 16];
        assert_eq!(
            v.apply(&c.base, &mut out, &LIM),
            Err(DeltaError::ResultTooLarge)
        );
        let base = Section::DeltaBase as u16;
        // The runs section missing, or another section in the delta.
        let mut buf = vec![0u8; 256];
        let mut w = Writer::new(&mut buf, 1, 0).unwrap();
        w.section(base, FLAG_MANDATORY, BASE_SECTION_LEN, |p| {
            p.copy_from_slice(&d[HEADER_LEN + SECTION_HEADER_LEN..][..16])
        })
        .unwrap();
        w.section(Section::SourceStats as u16, 0, 4, |_| {})
            .unwrap();
        let n = w.finish().unwrap();
        let runs = Section::DeltaRuns as u16;
        assert_eq!(
            DeltaView::parse(&buf[..n]).err(),
            Some(DeltaError::BadSection(Section::SourceStats as u16))
        );
        let mut w = Writer::new(&mut buf, 1, 0).unwrap();
        w.section(base, FLAG_MANDATORY, BASE_SECTION_LEN, |p| {
            p.copy_from_slice(&d[HEADER_LEN + SECTION_HEADER_LEN..][..16])
        })
        .unwrap();
        let n = w.finish().unwrap();
        assert_eq!(
            DeltaView::parse(&buf[..n]).err(),
            Some(DeltaError::MissingSection(runs))
        );
    }

    /// data-size: a state that gained a section at the stop (pending
    /// workloads) still goes as a small delta over the pre-copy image, and
    /// one that lost it too; the destination rebuilds it exactly.
    #[test]
    fn a_delta_covers_a_section_added_or_dropped_at_the_stop() {
        let mut rng = Rng::new(9);
        let mut regs = [0u8; 256];
        regs.iter_mut().for_each(|r| *r = rng.next_u64() as u8);
        let ggtt: Vec<u64> = (0..ENTRIES).map(|_| rng.next_u64()).collect();
        let base = image(&regs, &ggtt);
        let full = grown(&regs, &ggtt, 8 + 3 * 64);
        let words = vec![0; ChangedEntries::<Vec<u64>>::words_for(ENTRIES)];
        let changed = ChangedEntries::new(SPAN, words).unwrap();
        for (from, to) in [(&base, &full), (&full, &base)] {
            let mut out = vec![0u8; to.len() / 2];
            let n = write_delta(from, to, Some(&changed), &mut out).unwrap();
            assert!(n < 400, "{n} bytes for a {}-byte image", to.len());
            let got = restore(&cat(&[from, &out[..n]])).unwrap();
            assert!(got == *to, "result differs");
        }
    }

    /// REINIT: the base goes stale once the entries written since would
    /// make a delta of [`REINIT_BYTES`], each entry counted once, or when
    /// a write outside the span leaves their number unknown.
    #[test]
    fn unmarked_changes_are_the_writes_the_path_missed() {
        let mut c = case(31, 50);
        assert_eq!(c.changed.unmarked_changes(&c.base, &c.full), 0);
        // Two more writes, one marked (as after the final image), one not.
        c.ggtt[7] ^= 1;
        c.changed.mark(7);
        let i = (0..ENTRIES).find(|&i| !c.changed.is_marked(i)).unwrap();
        c.ggtt[i] ^= 2;
        let regs = [0u8; 256];
        let now = image(&regs, &c.ggtt);
        assert_eq!(c.changed.unmarked_changes(&c.base, &now), 1);
        c.changed.mark(u64::MAX);
        assert_eq!(c.changed.unmarked_changes(&c.base, &now), 0);
    }

    #[test]
    fn the_base_goes_stale_at_reinit_bytes_of_entries() {
        let span = EntrySpan {
            offset: 64,
            entries: 4096,
        };
        let words = vec![0; ChangedEntries::<Vec<u64>>::words_for(span.entries)];
        let mut c = ChangedEntries::new(span, words).unwrap();
        let stale_at = REINIT_BYTES / 8;
        for i in 0..stale_at as u64 - 1 {
            c.mark(i);
            c.mark(i);
        }
        assert_eq!(c.marked(), Some(stale_at - 1));
        assert!(!c.base_is_stale());
        c.mark(stale_at as u64 - 1);
        assert!(c.base_is_stale());
        let words = vec![0; ChangedEntries::<Vec<u64>>::words_for(span.entries)];
        let mut c = ChangedEntries::new(span, words).unwrap();
        c.mark(1);
        assert!(!c.base_is_stale());
        c.mark(span.entries as u64);
        assert_eq!(c.marked(), None);
        assert!(c.base_is_stale());
    }

    #[test]
    fn a_delta_that_does_not_fit_is_refused_to_the_writer() {
        let c = case(7, 200);
        let mut out = vec![0u8; 512];
        assert_eq!(
            write_delta(&c.base, &c.full, Some(&c.changed), &mut out),
            Err(StreamError::NoSpace)
        );
        let short = &c.full[..c.full.len() - 8];
        assert!(write_delta(&c.base, short, Some(&c.changed), &mut out).is_err());
        assert!(
            ChangedEntries::new(SPAN, vec![0u64; 3]).is_none(),
            "bitmap too small"
        );
    }
}

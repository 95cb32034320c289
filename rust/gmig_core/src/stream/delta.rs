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
//! DeltaBase  base length u32 | base digest u32 | result digest u32 | 0 u32
//! DeltaRuns  run*: offset u32 | length u32 | bytes
//!            (length > 0, offsets increasing, runs disjoint and inside
//!            the base)
//! End
//! ```
//!
//! The result is the base with each run's bytes written at its offset, as
//! long as the base. The destination ([`super::resolve`],
//! [`DeltaView::apply`]) checks that the image before the delta has the
//! named length and [`digest`], builds the result, validates it as a whole
//! image and checks its digest before anything is restored: a delta over
//! another base, a change the write path missed or a corrupted run is
//! refused by name, never applied.

use super::{
    digest, rd16, rd32, sections_unchecked, validate, Header, Limits, Section,
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
}

impl<S: Deref<Target = [u64]>> ChangedEntries<S> {
    /// Whether entry `i` was marked.
    fn is_marked(&self, i: usize) -> bool {
        self.words.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// Calls `f` with the image bytes of every marked entry, in order.
    fn for_each_marked(&self, f: &mut impl FnMut(Range<usize>)) {
        for i in 0..self.span.entries {
            if self.is_marked(i) {
                f(self.span.entry(i));
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
        })
    }

    /// GGTT entry `index` (image order) was written. An index outside the
    /// span marks every entry.
    pub fn mark(&mut self, index: u64) {
        let i = usize::try_from(index)
            .ok()
            .filter(|&i| i < self.span.entries);
        match i.and_then(|i| self.words.get_mut(i / 64).map(|w| (i, w))) {
            Some((i, w)) => *w |= 1 << (i % 64),
            None => self.all = true,
        }
    }
}

/// Calls `f` with the byte ranges of an image of `len` bytes that may
/// differ from the base, in order: everything, but of the GGTT entries only
/// those `changed` marks.
fn candidates<S: Deref<Target = [u64]>>(
    len: usize,
    changed: Option<&ChangedEntries<S>>,
    f: &mut impl FnMut(Range<usize>),
) {
    let known = changed.filter(|c| !c.all).and_then(|c| Some((c, c.span.within(len)?)));
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
/// images of this vGPU, `full` the newer); returns its length. `changed`
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
    if base.len() != full.len() || base.len() < HEADER_LEN {
        return Err(StreamError::BadSection(base_sec));
    }
    let (base_digest, full_digest) = (digest(base)?, digest(full)?);
    let mut w = Writer::new(out, rd16(full, 12)?, rd16(full, 14)?)?;
    w.section(base_sec, FLAG_MANDATORY, BASE_SECTION_LEN, |p| {
        p[0..4].copy_from_slice(&len.to_le_bytes());
        p[4..8].copy_from_slice(&base_digest.to_le_bytes());
        p[8..12].copy_from_slice(&full_digest.to_le_bytes());
        p[12..16].fill(0);
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
        candidates(full.len(), changed, &mut |r| runs.diff(r));
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
    base_digest: u32,
    result_digest: u32,
    runs: &'a [u8],
}

/// Calls `f(offset, bytes)` for each run of a `DeltaRuns` payload over a
/// base of `base_len` bytes, checking each first.
fn walk_runs<'a>(
    runs: &'a [u8],
    base_len: usize,
    mut f: impl FnMut(usize, &'a [u8]),
) -> Result<(), DeltaError> {
    let mut at = 0usize;
    let mut next = 0usize;
    while at < runs.len() {
        let bad = DeltaError::BadRun { at };
        let off = rd32(runs, at).map_err(|_| bad)? as usize;
        let len = rd32(runs, at + 4).map_err(|_| bad)? as usize;
        let data = at + RUN_HEADER_LEN;
        let bytes = runs.get(data..data.checked_add(len).ok_or(bad)?).ok_or(bad)?;
        let end = off.checked_add(len).ok_or(bad)?;
        if len == 0 || off < next || end > base_len {
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
                    if p.len() != BASE_SECTION_LEN || le32(p, 12) != 0 {
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
        let view = Self {
            base_len: le32(base, 0) as usize,
            base_digest: le32(base, 4),
            result_digest: le32(base, 8),
            runs,
        };
        walk_runs(runs, view.base_len, |_, _| {})?;
        Ok(view)
    }

    /// Length of the base, and so of the result.
    pub fn base_len(&self) -> usize {
        self.base_len
    }

    /// Whether `base` is the image this delta names.
    pub fn check_base(&self, base: &[u8]) -> Result<(), DeltaError> {
        if base.len() != self.base_len || digest(base) != Ok(self.base_digest) {
            return Err(DeltaError::WrongBase);
        }
        Ok(())
    }

    /// Builds the result in `out` (exactly [`DeltaView::base_len`] bytes)
    /// from `base`, validates it against `limits` and checks it is the
    /// source's image; returns its header. `out` holds the image to
    /// restore once this returned `Ok`.
    pub fn apply(&self, base: &[u8], out: &mut [u8], limits: &Limits) -> Result<Header, DeltaError> {
        self.check_base(base)?;
        if out.len() != base.len() {
            return Err(DeltaError::Result(StreamError::NoSpace));
        }
        out.copy_from_slice(base);
        walk_runs(self.runs, base.len(), |off, bytes| {
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

// SPDX-License-Identifier: GPL-2.0

//! The migration stream of one vGPU.
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! header   magic "GMIGSTRM" | version major u16 | minor u16 | provider u16 |
//!          vgpu type u16 | flags u32 | total length u32 | header crc32c u32
//! section* type u16 | flags u16 (bit 0: mandatory) | length u32 |
//!          crc32c of (type, flags, length, payload) u32 | payload
//! end      a section of type END with an empty payload, last
//! ```
//!
//! Sections appear in increasing type order, each at most once. The
//! decoder ([`validate`]) checks the whole image (magic, version, header
//! checksum, total length, every section's bounds, order, checksum and size
//! limit, the end marker, no trailing bytes) before the caller applies
//! anything.
//!
//! A migration sends a full image in pre-copy and, at stop-copy, either a
//! full image or a delta image ([`delta`]): the changes since the pre-copy
//! image, named by that image's [`digest`]. [`resolve`] finds the state
//! to restore in what a destination received.
//!
//! Compatibility rule: readers accept majors
//! [`MIN_VERSION_MAJOR`]`..=`[`VERSION_MAJOR`] and reject any other with
//! [`StreamError::UnsupportedVersion`]. Version 1 images are full images
//! in the same layout (a version 2 reader applies them as they are); the
//! delta sections exist from version 2 on, so in a version 1 image they are
//! unknown mandatory sections. Within a major, minor versions may only add
//! optional sections, which older readers skip, and mandatory sections
//! that an image carries only when its state cannot be restored without
//! them (2.1: [`Section::GvtWorkloads`], written only if workloads are
//! pending), or use reserved fields that older readers check are zero
//! (2.2: a delta whose result differs in length from its base, see
//! [`delta`]): an older reader rejects exactly those images, and accepts
//! every other. An unknown mandatory section is rejected
//! ([`StreamError::UnknownMandatorySection`]). A version 1 reader rejects
//! every version 2 image by its version.

pub mod delta;
pub mod incoming;
pub mod patch;

pub use delta::{ChangedEntries, DeltaError, DeltaView, EntrySpan};
pub use incoming::Incoming;
pub use patch::Patcher;

/// Stream magic.
pub const MAGIC: [u8; 8] = *b"GMIGSTRM";
/// Format major version (incompatible changes): 2 added delta images.
pub const VERSION_MAJOR: u16 = 2;
/// Oldest major version readers accept (its images are full images).
pub const MIN_VERSION_MAJOR: u16 = 1;
/// Format minor version (additions older readers of the major skip, or
/// reject only in the images that need them): 1 added
/// [`Section::GvtWorkloads`], 2 deltas whose result length differs from
/// their base's.
pub const VERSION_MINOR: u16 = 2;
/// Header size in bytes.
pub const HEADER_LEN: usize = 28;
/// Section header size in bytes.
pub const SECTION_HEADER_LEN: usize = 12;
/// Section flag: a reader that does not know the type must reject it.
pub const FLAG_MANDATORY: u16 = 1;

/// Known section types, in stream order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u16)]
pub enum Section {
    /// PCI configuration space.
    Config = 1,
    /// MMIO register state (execlists, CSB, interrupts, pending submissions).
    Regs = 2,
    /// GGTT: partition base u64, size u64, then one u64 entry per page.
    Ggtt = 3,
    /// GVT-g: virtual MMIO registers (see [`super::gvt`]).
    GvtVregs = 0x10,
    /// GVT-g: the vGPU's GGTT slices and their guest entries.
    GvtGgtt = 0x11,
    /// GVT-g: fence registers.
    GvtFences = 0x12,
    /// GVT-g: execlist state (kvmgt's image).
    GvtExeclist = 0x13,
    /// GVT-g (version 2.1 on): the workloads queued and not run when the
    /// vGPU stopped, re-created on the destination; mandatory, and written
    /// only if there are any.
    GvtWorkloads = 0x14,
    /// Delta image (version 2 on): the base it applies to (see [`delta`]).
    DeltaBase = 0x20,
    /// Delta image (version 2 on): the changed byte runs.
    DeltaRuns = 0x21,
    /// Statistics of the source (optional, informational).
    SourceStats = 0x100,
    /// End marker.
    End = 0xffff,
}

impl Section {
    /// The section type `t` as a reader of major version `major` knows it.
    fn known(t: u16, major: u16) -> Option<Self> {
        Some(match t {
            0x20 if major >= 2 => Self::DeltaBase,
            0x21 if major >= 2 => Self::DeltaRuns,
            1 => Self::Config,
            2 => Self::Regs,
            3 => Self::Ggtt,
            0x10 => Self::GvtVregs,
            0x11 => Self::GvtGgtt,
            0x12 => Self::GvtFences,
            0x13 => Self::GvtExeclist,
            0x14 if major >= 2 => Self::GvtWorkloads,
            0x100 => Self::SourceStats,
            0xffff => Self::End,
            _ => return None,
        })
    }
}

/// Why a stream was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamError {
    /// Shorter than its header or a section says.
    Truncated,
    /// Not a gmig stream.
    BadMagic,
    /// Major version not supported.
    UnsupportedVersion(u16),
    /// Header checksum or a section checksum does not match.
    ChecksumMismatch,
    /// A section of unknown type marked mandatory.
    UnknownMandatorySection(u16),
    /// A known section type appears twice.
    DuplicateSection(u16),
    /// A section appears after one of a higher type.
    OutOfOrderSection(u16),
    /// The image or a section is bigger than the reader's limit.
    TooLarge,
    /// No end marker.
    MissingEnd,
    /// Bytes after the end marker.
    TrailingData,
    /// A known section's payload has the wrong size for the destination,
    /// or the header names another provider or vGPU type.
    BadSection(u16),
    /// The output buffer is too small (encoder).
    NoSpace,
    /// The vGPU has this many workloads pending, more than an image
    /// carries (encoder; GVT-g: [`crate::gvt::MAX_PENDING`]).
    TooManyPending(usize),
    /// The provider could not save a part of the state (encoder; GVT-g:
    /// kvmgt's save failed).
    SaveFailed,
}

/// Limits the reader enforces.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Maximum image size.
    pub max_total: usize,
    /// Maximum payload of one section.
    pub max_section: usize,
}

/// Images a destination buffers at most: the pre-copy image (built on
/// entering PRE_COPY, sent whole even if the switch-over comes before it
/// was read) and the stop-copy image. A source that sends new initial data
/// (VFIO_PRECOPY_INFO_REINIT) sends more full images; each one, once
/// complete, supersedes those before it ([`Incoming`]).
pub const IMAGES_PER_MIGRATION: usize = 2;

impl Limits {
    /// What a destination accepts for a vGPU whose images are at most
    /// `state_len` bytes ([`crate::provider::Provider::state_len`]): the
    /// source is of the same type, so no image of its is longer.
    pub fn for_state_len(state_len: usize) -> Self {
        Self {
            max_total: state_len,
            max_section: state_len,
        }
    }

    /// Bytes a destination buffers during one resume: the images of one
    /// migration it keeps, each at most [`Limits::max_total`]. A stream
    /// longer than this is refused as it arrives.
    pub fn resume_budget(&self) -> usize {
        self.max_total.saturating_mul(IMAGES_PER_MIGRATION)
    }
}

/// CRC32C (Castagnoli), slicing-by-8 (eight 256-entry tables, 8 KiB of
/// rodata): about eight times the nibble-table loop's speed, which matters
/// for the final image built inside the downtime (its GGTT section is 8
/// bytes per partition page).
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c_update(0, data)
}

const CRC_TABLES: [[u32; 256]; 8] = {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82f6_3b78
            } else {
                c >> 1
            };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut j = 1;
    while j < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[j - 1][i];
            t[j][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            i += 1;
        }
        j += 1;
    }
    t
};

/// Continues a CRC32C: `crc32c_update(crc32c(a), b) == crc32c(a ++ b)`.
pub fn crc32c_update(crc: u32, data: &[u8]) -> u32 {
    let t = &CRC_TABLES;
    let mut crc = !crc;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let lo = crc ^ u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        crc = t[7][(lo & 0xff) as usize]
            ^ t[6][((lo >> 8) & 0xff) as usize]
            ^ t[5][((lo >> 16) & 0xff) as usize]
            ^ t[4][(lo >> 24) as usize]
            ^ t[3][c[4] as usize]
            ^ t[2][c[5] as usize]
            ^ t[1][c[6] as usize]
            ^ t[0][c[7] as usize];
    }
    for &b in chunks.remainder() {
        crc = (crc >> 8) ^ t[0][((crc ^ u32::from(b)) & 0xff) as usize];
    }
    !crc
}

/// The reflected CRC32C polynomial.
const POLY: u32 = 0x82f6_3b78;

/// `a * b mod P` over GF(2), reflected (bit 31 is x^0).
const fn mul_mod_p(a: u32, mut b: u32) -> u32 {
    let mut p = 0;
    let mut m = 1u32 << 31;
    while m != 0 {
        if a & m != 0 {
            p ^= b;
        }
        m >>= 1;
        b = if b & 1 != 0 { (b >> 1) ^ POLY } else { b >> 1 };
    }
    p
}

/// `x^(2^k) mod P` for each `k`.
const X2N: [u32; 64] = {
    let mut t = [0u32; 64];
    t[0] = 1 << 30;
    let mut k = 1;
    while k < 64 {
        t[k] = mul_mod_p(t[k - 1], t[k - 1]);
        k += 1;
    }
    t
};

/// The CRC register `reg` (no pre- or post-inversion) after `data`.
fn crc_raw(reg: u32, data: &[u8]) -> u32 {
    !crc32c_update(!reg, data)
}

/// The CRC register `reg` after `n` zero bytes, in `O(log n)` for long
/// runs: `reg * x^(8n) mod P`.
fn crc_raw_zeros(reg: u32, n: usize) -> u32 {
    const ZEROS: [u8; 64] = [0; 64];
    if n <= ZEROS.len() {
        return crc_raw(reg, &ZEROS[..n]);
    }
    let (mut f, mut n, mut k) = (1u32 << 31, n as u64, 3);
    while n != 0 && k < X2N.len() {
        if n & 1 != 0 {
            f = mul_mod_p(X2N[k], f);
        }
        n >>= 1;
        k += 1;
    }
    mul_mod_p(f, reg)
}

fn rd16(b: &[u8], o: usize) -> Result<u16, StreamError> {
    let s = b.get(o..o + 2).ok_or(StreamError::Truncated)?;
    Ok(u16::from_le_bytes([s[0], s[1]]))
}

fn rd32(b: &[u8], o: usize) -> Result<u32, StreamError> {
    let s = b.get(o..o + 4).ok_or(StreamError::Truncated)?;
    Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// What the header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Major version of the format.
    pub major: u16,
    /// Minor version of the format.
    pub minor: u16,
    /// Provider id (1 = sim, 2 = gvt).
    pub provider: u16,
    /// vGPU type index.
    pub vgpu_type: u16,
    /// Flags (reserved, 0).
    pub flags: u32,
    /// Total image length.
    pub total: u32,
}

/// Where a provider writes the sections of its state image: a [`Writer`]
/// builds the whole image, a [`Patcher`] only what changed since a base
/// image, as a delta image. A provider describes its image once, for
/// both.
pub trait ImageSink {
    /// Appends a section whose payload `fill` writes into the given slice
    /// of exactly `len` bytes.
    fn section(
        &mut self,
        ty: u16,
        flags: u16,
        len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<(), StreamError>;

    /// Appends a section of `head` bytes that `fill_head` writes, followed
    /// by `entries` little-endian u64s, entry `i` being `entry(i)`. A
    /// [`Patcher`] asks only for the entries the GGTT write path marked
    /// when they are the ones its [`EntrySpan`] names.
    fn section_entries(
        &mut self,
        ty: u16,
        flags: u16,
        head: usize,
        fill_head: impl FnOnce(&mut [u8]),
        entries: usize,
        entry: impl FnMut(usize) -> u64,
    ) -> Result<(), StreamError> {
        let len = entries_len(head, entries)?;
        self.section(ty, flags, len, |p| fill_entries(p, head, fill_head, entry))
    }
}

/// Payload bytes of an [`ImageSink::section_entries`] section.
fn entries_len(head: usize, entries: usize) -> Result<usize, StreamError> {
    entries
        .checked_mul(8)
        .and_then(|n| n.checked_add(head))
        .ok_or(StreamError::TooLarge)
}

/// Fills the payload `p` of an [`ImageSink::section_entries`] section.
fn fill_entries(
    p: &mut [u8],
    head: usize,
    fill_head: impl FnOnce(&mut [u8]),
    mut entry: impl FnMut(usize) -> u64,
) {
    let (h, body) = p.split_at_mut(head.min(p.len()));
    fill_head(h);
    for (i, c) in body.chunks_exact_mut(8).enumerate() {
        c.copy_from_slice(&entry(i).to_le_bytes());
    }
}

/// Builds a stream into a caller-provided buffer.
pub struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
    last: u16,
    header: Header,
}

impl<'a> Writer<'a> {
    /// Starts a stream for `provider` / `vgpu_type` in `buf`.
    pub fn new(buf: &'a mut [u8], provider: u16, vgpu_type: u16) -> Result<Self, StreamError> {
        if buf.len() < HEADER_LEN {
            return Err(StreamError::NoSpace);
        }
        Ok(Self {
            buf,
            len: HEADER_LEN,
            last: 0,
            header: Header {
                major: VERSION_MAJOR,
                minor: VERSION_MINOR,
                provider,
                vgpu_type,
                flags: 0,
                total: 0,
            },
        })
    }

    /// Appends a section whose payload `fill` writes at the start of the
    /// space left (what the end marker leaves), returning its length, or
    /// `None` if it does not fit ([`StreamError::NoSpace`]).
    pub fn section_fill(
        &mut self,
        ty: u16,
        flags: u16,
        fill: impl FnOnce(&mut [u8]) -> Option<usize>,
    ) -> Result<(), StreamError> {
        let room = self
            .buf
            .len()
            .checked_sub(self.len + 2 * SECTION_HEADER_LEN)
            .ok_or(StreamError::NoSpace)?;
        self.put(ty, flags, room, fill)
    }

    /// Appends a section of at most `max` payload bytes, `fill` says how
    /// many it wrote.
    fn put(
        &mut self,
        ty: u16,
        flags: u16,
        max: usize,
        fill: impl FnOnce(&mut [u8]) -> Option<usize>,
    ) -> Result<(), StreamError> {
        if ty <= self.last {
            return Err(StreamError::OutOfOrderSection(ty));
        }
        let start = self.len;
        let pay = start + SECTION_HEADER_LEN;
        let end = pay.checked_add(max).ok_or(StreamError::NoSpace)?;
        let out = self.buf.get_mut(start..end).ok_or(StreamError::NoSpace)?;
        let (hdr, room) = out.split_at_mut(SECTION_HEADER_LEN);
        let len = fill(room)
            .filter(|&n| n <= max)
            .ok_or(StreamError::NoSpace)?;
        let plen = u32::try_from(len).map_err(|_| StreamError::TooLarge)?;
        let payload = &room[..len];
        hdr[0..2].copy_from_slice(&ty.to_le_bytes());
        hdr[2..4].copy_from_slice(&flags.to_le_bytes());
        hdr[4..8].copy_from_slice(&plen.to_le_bytes());
        let crc = crc32c_update(crc32c(&hdr[0..8]), payload);
        hdr[8..12].copy_from_slice(&crc.to_le_bytes());
        self.len = pay + len;
        self.last = ty;
        Ok(())
    }

    /// Appends the end marker and the header; returns the image length.
    pub fn finish(mut self) -> Result<usize, StreamError> {
        self.section(Section::End as u16, FLAG_MANDATORY, 0, |_| {})?;
        let total = u32::try_from(self.len).map_err(|_| StreamError::TooLarge)?;
        let h = self.buf.get_mut(..HEADER_LEN).ok_or(StreamError::NoSpace)?;
        h[0..8].copy_from_slice(&MAGIC);
        h[8..10].copy_from_slice(&VERSION_MAJOR.to_le_bytes());
        h[10..12].copy_from_slice(&VERSION_MINOR.to_le_bytes());
        h[12..14].copy_from_slice(&self.header.provider.to_le_bytes());
        h[14..16].copy_from_slice(&self.header.vgpu_type.to_le_bytes());
        h[16..20].copy_from_slice(&self.header.flags.to_le_bytes());
        h[20..24].copy_from_slice(&total.to_le_bytes());
        let crc = crc32c(&h[..24]);
        h[24..28].copy_from_slice(&crc.to_le_bytes());
        Ok(self.len)
    }
}

impl ImageSink for Writer<'_> {
    fn section(
        &mut self,
        ty: u16,
        flags: u16,
        len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<(), StreamError> {
        self.put(ty, flags, len, |p| {
            fill(p);
            Some(len)
        })
    }
}

/// Validates a whole image; on success returns its header. Nothing is
/// applied until this returned `Ok`.
pub fn validate(image: &[u8], limits: &Limits) -> Result<Header, StreamError> {
    if image.len() > limits.max_total {
        return Err(StreamError::TooLarge);
    }
    if image.len() < HEADER_LEN {
        return Err(StreamError::Truncated);
    }
    if image.get(..8) != Some(&MAGIC[..]) {
        return Err(StreamError::BadMagic);
    }
    let major = rd16(image, 8)?;
    if !(MIN_VERSION_MAJOR..=VERSION_MAJOR).contains(&major) {
        return Err(StreamError::UnsupportedVersion(major));
    }
    if crc32c(image.get(..24).ok_or(StreamError::Truncated)?) != rd32(image, 24)? {
        return Err(StreamError::ChecksumMismatch);
    }
    let header = Header {
        major,
        minor: rd16(image, 10)?,
        provider: rd16(image, 12)?,
        vgpu_type: rd16(image, 14)?,
        flags: rd32(image, 16)?,
        total: rd32(image, 20)?,
    };
    let total = usize::try_from(header.total).map_err(|_| StreamError::TooLarge)?;
    if total > image.len() {
        return Err(StreamError::Truncated);
    }
    if total < image.len() {
        return Err(StreamError::TrailingData);
    }
    let mut last = 0u16;
    let mut ended = false;
    for s in sections_unchecked(image) {
        let (ty, flags, payload) = s?;
        if ended {
            return Err(StreamError::TrailingData);
        }
        if payload.len() > limits.max_section {
            return Err(StreamError::TooLarge);
        }
        if ty == last {
            return Err(StreamError::DuplicateSection(ty));
        }
        if ty < last {
            return Err(StreamError::OutOfOrderSection(ty));
        }
        last = ty;
        if Section::known(ty, major).is_none() && flags & FLAG_MANDATORY != 0 {
            return Err(StreamError::UnknownMandatorySection(ty));
        }
        if ty == Section::End as u16 {
            if !payload.is_empty() {
                return Err(StreamError::BadSection(ty));
            }
            ended = true;
        }
    }
    if !ended {
        return Err(StreamError::MissingEnd);
    }
    Ok(header)
}

/// Iterates the sections of an image (type, flags, payload), checking
/// bounds and checksums but not order; use after [`validate`]. Unknown
/// optional sections are yielded too: callers skip what they do not know.
pub fn sections_unchecked(
    image: &[u8],
) -> impl Iterator<Item = Result<(u16, u16, &[u8]), StreamError>> + '_ {
    let mut off = HEADER_LEN;
    let mut failed = false;
    core::iter::from_fn(move || {
        if failed || off >= image.len() {
            return None;
        }
        let r = (|| {
            let ty = rd16(image, off)?;
            let flags = rd16(image, off + 2)?;
            let len = usize::try_from(rd32(image, off + 4)?).map_err(|_| StreamError::TooLarge)?;
            let crc = rd32(image, off + 8)?;
            let start = off + SECTION_HEADER_LEN;
            let end = start.checked_add(len).ok_or(StreamError::Truncated)?;
            let payload = image.get(start..end).ok_or(StreamError::Truncated)?;
            let head = image.get(off..off + 8).ok_or(StreamError::Truncated)?;
            if crc32c_update(crc32c(head), payload) != crc {
                return Err(StreamError::ChecksumMismatch);
            }
            off = end;
            Ok((ty, flags, payload))
        })();
        failed = r.is_err();
        Some(r)
    })
}

/// The digest of an image: CRC32C of its header and of every section
/// header, which hold the checksum of their payload. It names an image
/// without reading its payloads (a delta names its base and its result by
/// it). Checks bounds only: use on an image of one's own or a validated
/// one.
pub fn digest(image: &[u8]) -> Result<u32, StreamError> {
    let mut crc = crc32c(image.get(..HEADER_LEN).ok_or(StreamError::Truncated)?);
    let mut off = HEADER_LEN;
    while off < image.len() {
        let head = image
            .get(off..off + SECTION_HEADER_LEN)
            .ok_or(StreamError::Truncated)?;
        crc = crc32c_update(crc, head);
        let len = usize::try_from(rd32(head, 4)?).map_err(|_| StreamError::TooLarge)?;
        off = (off + SECTION_HEADER_LEN)
            .checked_add(len)
            .ok_or(StreamError::Truncated)?;
    }
    Ok(crc)
}

/// Why a resume stream as a whole was refused ([`resolve`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeError {
    /// The image starting at byte `at` of the stream is invalid.
    Image {
        /// Offset of the image in the stream.
        at: usize,
        /// What is wrong with it.
        err: StreamError,
    },
    /// The image at byte `at` is for another provider or vGPU type.
    WrongDevice {
        /// Offset of the image in the stream.
        at: usize,
        /// Its header.
        hdr: Header,
    },
    /// The delta image at byte `at` cannot be applied.
    Delta {
        /// Offset of the image in the stream.
        at: usize,
        /// Why.
        err: DeltaError,
    },
    /// The stream holds no image.
    Empty,
}

/// The state a resume stream describes ([`resolve`]).
#[derive(Debug, Clone, Copy)]
pub enum Resolved<'a> {
    /// A full image, validated: restore it.
    Full {
        /// Its header.
        hdr: Header,
        /// The image.
        image: &'a [u8],
    },
    /// A delta over the full image before it, both validated: build the
    /// image with [`DeltaView::apply`] (which validates the result), then
    /// restore that.
    Delta {
        /// The full image the delta applies to.
        base: &'a [u8],
        /// The delta.
        delta: DeltaView<'a>,
    },
}

/// Splits a resume stream into its images, each as long as its header says
/// (`validate` refuses what is too short or too long).
fn images(data: &[u8]) -> impl Iterator<Item = (usize, &[u8])> + '_ {
    let mut off = 0usize;
    core::iter::from_fn(move || {
        let rest = data.get(off..).filter(|r| !r.is_empty())?;
        let total = rest.get(20..24).map_or(usize::MAX, |b| {
            u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
        });
        let image = &rest[..total.min(rest.len())];
        let at = off;
        off += image.len();
        Some((at, image))
    })
}

/// Finds the state to restore in what a destination received: images of
/// one migration (a pre-copy image, then the stop-copy one; a VMM may send
/// any number). Every image is validated against `limits` and the
/// destination's `provider` and `vgpu_type`; a delta image must be the
/// last and apply to the full image just before it (its length and
/// [`digest`]). The last image gives the state. Nothing is applied unless
/// all of this holds.
pub fn resolve<'a>(
    data: &'a [u8],
    limits: &Limits,
    provider: u16,
    vgpu_type: u16,
) -> Result<Resolved<'a>, ResumeError> {
    let mut last: Option<(usize, Resolved<'a>)> = None;
    for (at, image) in images(data) {
        let hdr = validate(image, limits).map_err(|err| ResumeError::Image { at, err })?;
        if hdr.provider != provider || hdr.vgpu_type != vgpu_type {
            return Err(ResumeError::WrongDevice { at, hdr });
        }
        let next = match (delta::is_delta(&hdr, image), last) {
            (_, Some((prev, Resolved::Delta { .. }))) => {
                let err = DeltaError::NotLast;
                return Err(ResumeError::Delta { at: prev, err });
            }
            (false, _) => Resolved::Full { hdr, image },
            (true, prev) => {
                let base = match prev {
                    Some((_, Resolved::Full { image, .. })) => Some(image),
                    _ => None,
                };
                let on = |err| ResumeError::Delta { at, err };
                let delta = DeltaView::parse(image).map_err(on)?;
                delta.check_limits(limits).map_err(on)?;
                let base = base.ok_or(on(DeltaError::NoBase))?;
                delta.check_base(base).map_err(on)?;
                Resolved::Delta { base, delta }
            }
        };
        last = Some((at, next));
    }
    last.map(|(_, r)| r).ok_or(ResumeError::Empty)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn full(r: Result<Resolved<'_>, ResumeError>) -> (Header, &[u8]) {
        match r {
            Ok(Resolved::Full { hdr, image }) => (hdr, image),
            other => panic!("not a full image: {other:?}"),
        }
    }

    #[test]
    fn the_last_of_valid_images_is_restored_and_any_bad_one_refuses_all() {
        let a = sample(None);
        let b = sample(Some((0x7000, 0)));
        let mut two = a.clone();
        two.extend_from_slice(&b);
        let (hdr, img) = full(resolve(&two, &LIM, 1, 0));
        assert_eq!((hdr.provider, img), (1, &b[..]));
        assert!(matches!(resolve(&[], &LIM, 1, 0), Err(ResumeError::Empty)));
        assert!(matches!(
            resolve(&two, &LIM, 2, 0),
            Err(ResumeError::WrongDevice { at: 0, .. })
        ));
        // A flipped byte in the second image refuses the whole stream.
        let mut bad = two.clone();
        let n = bad.len();
        bad[n - 3] ^= 1;
        assert!(matches!(
            resolve(&bad, &LIM, 1, 0),
            Err(ResumeError::Image { at, .. }) if at == a.len()
        ));
        // A cut-off tail too.
        assert!(matches!(
            resolve(&two[..n - 1], &LIM, 1, 0),
            Err(ResumeError::Image { at, err: StreamError::Truncated }) if at == a.len()
        ));
    }

    const LIM: Limits = Limits {
        max_total: 1 << 20,
        max_section: 1 << 19,
    };

    fn sample(extra: Option<(u16, u16)>) -> Vec<u8> {
        let mut buf = vec![0u8; 4096];
        let mut w = Writer::new(&mut buf, 1, 0).unwrap();
        w.section(Section::Config as u16, FLAG_MANDATORY, 256, |p| {
            p.fill(0x11)
        })
        .unwrap();
        w.section(Section::Regs as u16, FLAG_MANDATORY, 64, |p| {
            for (i, b) in p.iter_mut().enumerate() {
                *b = i as u8;
            }
        })
        .unwrap();
        if let Some((ty, flags)) = extra {
            w.section(ty, flags, 8, |p| p.fill(7)).unwrap();
        }
        let n = w.finish().unwrap();
        buf.truncate(n);
        buf
    }

    #[test]
    fn crc32c_known_answer() {
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        // 32 bytes of zeros and of 0xff (RFC 3720, B.4).
        assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62a8_ab43);
        // Every split point agrees with the bytewise definition.
        let data: std::vec::Vec<u8> = (0..100u32).map(|i| (i * 37 + 5) as u8).collect();
        let bitwise = |d: &[u8]| {
            let mut c = !0u32;
            for &b in d {
                c ^= u32::from(b);
                for _ in 0..8 {
                    c = if c & 1 != 0 {
                        (c >> 1) ^ 0x82f6_3b78
                    } else {
                        c >> 1
                    };
                }
            }
            !c
        };
        for n in 0..data.len() {
            assert_eq!(crc32c(&data[..n]), bitwise(&data[..n]), "{n}");
            assert_eq!(
                crc32c_update(crc32c(&data[..n]), &data[n..]),
                bitwise(&data)
            );
        }
        assert_eq!(crc32c(b""), 0);
        assert_eq!(crc32c_update(crc32c(b"1234"), b"56789"), 0xe306_9283);
    }

    #[test]
    fn round_trip() {
        let img = sample(None);
        let h = validate(&img, &LIM).unwrap();
        assert_eq!(
            (h.provider, h.vgpu_type, h.total as usize),
            (1, 0, img.len())
        );
        let secs: Vec<_> = sections_unchecked(&img).map(|s| s.unwrap()).collect();
        assert_eq!(secs.len(), 3);
        assert_eq!(secs[0].2, &[0x11u8; 256][..]);
        assert_eq!(secs[1].2[63], 63);
        assert_eq!(secs[2].0, Section::End as u16);
    }

    /// `img` with its major version set to `major`, re-sealed.
    fn with_major(img: &[u8], major: u16) -> Vec<u8> {
        let mut v = img.to_vec();
        v[8..10].copy_from_slice(&major.to_le_bytes());
        if major < VERSION_MAJOR {
            v[10..12].fill(0);
        }
        reseal(&mut v);
        v
    }

    #[test]
    fn compatibility_rule() {
        // Unknown optional section: skipped. Unknown mandatory: rejected.
        assert!(validate(&sample(Some((0x200, 0))), &LIM).is_ok());
        // 2.1's pending workloads are known from version 2 on (a 2.0
        // reader rejects the images that carry them, as a version 1 one).
        let ws = Section::GvtWorkloads as u16;
        assert!(validate(&sample(Some((ws, FLAG_MANDATORY))), &LIM).is_ok());
        assert_eq!(
            validate(&with_major(&sample(Some((ws, FLAG_MANDATORY))), 1), &LIM),
            Err(StreamError::UnknownMandatorySection(ws))
        );
        assert_eq!(
            validate(&sample(Some((0x200, FLAG_MANDATORY))), &LIM),
            Err(StreamError::UnknownMandatorySection(0x200))
        );
        // A version 1 stream (full images, the same layout) is accepted and
        // restores what it says.
        let v1 = with_major(&sample(None), 1);
        let (hdr, img) = full(resolve(&v1, &LIM, 1, 0));
        assert_eq!((hdr.major, hdr.minor, img), (1, 0, &v1[..]));
        let secs: Vec<_> = sections_unchecked(&v1).map(|s| s.unwrap()).collect();
        assert_eq!(secs[0].2, &[0x11u8; 256][..]);
        // Version 1 has no delta sections: a mandatory one is unknown
        // there, an optional one skipped (the image stays a full one),
        let base = Section::DeltaBase as u16;
        assert_eq!(
            validate(&with_major(&sample(Some((base, FLAG_MANDATORY))), 1), &LIM),
            Err(StreamError::UnknownMandatorySection(base))
        );
        let v1_opt = with_major(&sample(Some((base, 0))), 1);
        assert!(matches!(
            resolve(&v1_opt, &LIM, 1, 0),
            Ok(Resolved::Full { .. })
        ));
        // while in version 2 the same image is a delta, and a malformed one.
        assert_eq!(
            resolve(&sample(Some((base, 0))), &LIM, 1, 0).err(),
            Some(ResumeError::Delta {
                at: 0,
                err: DeltaError::BadSection(Section::Config as u16)
            })
        );
        // Neither older nor newer majors are misread.
        assert_eq!(MIN_VERSION_MAJOR, 1);
        assert_eq!(
            resolve(&with_major(&v1, 0), &LIM, 1, 0).err(),
            Some(ResumeError::Image {
                at: 0,
                err: StreamError::UnsupportedVersion(0)
            })
        );
    }

    fn reseal_section(img: &mut [u8], off: usize) {
        let len = u32::from_le_bytes(img[off + 4..off + 8].try_into().unwrap()) as usize;
        let p = off + SECTION_HEADER_LEN;
        let c = crc32c_update(crc32c(&img[off..off + 8]), &img[p..p + len]);
        img[off + 8..off + 12].copy_from_slice(&c.to_le_bytes());
    }

    fn reseal(img: &mut [u8]) {
        let c = crc32c(&img[..24]);
        img[24..28].copy_from_slice(&c.to_le_bytes());
    }

    #[test]
    fn every_error_is_named() {
        let good = sample(None);
        let mut bad = good.clone();
        bad[0] = b'X';
        assert_eq!(validate(&bad, &LIM), Err(StreamError::BadMagic));
        for major in [0, VERSION_MAJOR + 1, u16::MAX] {
            assert_eq!(
                validate(&with_major(&good, major), &LIM),
                Err(StreamError::UnsupportedVersion(major))
            );
        }
        let mut bad = good.clone();
        bad[12] = 9;
        assert_eq!(validate(&bad, &LIM), Err(StreamError::ChecksumMismatch));
        let mut bad = good.clone();
        bad[HEADER_LEN + SECTION_HEADER_LEN + 3] ^= 1;
        assert_eq!(validate(&bad, &LIM), Err(StreamError::ChecksumMismatch));
        let mut bad = good.clone();
        bad.push(0);
        assert_eq!(validate(&bad, &LIM), Err(StreamError::TrailingData));
        assert_eq!(
            validate(
                &good,
                &Limits {
                    max_total: 100,
                    max_section: 1 << 19
                }
            ),
            Err(StreamError::TooLarge)
        );
        assert_eq!(
            validate(
                &good,
                &Limits {
                    max_total: 1 << 20,
                    max_section: 100
                }
            ),
            Err(StreamError::TooLarge)
        );
        // Duplicate and out-of-order sections: swap type fields by hand.
        let mut bad = good.clone();
        let second = HEADER_LEN + SECTION_HEADER_LEN + 256;
        bad[second..second + 2].copy_from_slice(&1u16.to_le_bytes());
        reseal_section(&mut bad, second);
        assert_eq!(validate(&bad, &LIM), Err(StreamError::DuplicateSection(1)));
        let mut bad = good.clone();
        bad[HEADER_LEN..HEADER_LEN + 2].copy_from_slice(&3u16.to_le_bytes());
        reseal_section(&mut bad, HEADER_LEN);
        assert_eq!(validate(&bad, &LIM), Err(StreamError::OutOfOrderSection(2)));
        // No end marker: cut it and fix the total.
        let mut bad = good[..good.len() - SECTION_HEADER_LEN].to_vec();
        let t = bad.len() as u32;
        bad[20..24].copy_from_slice(&t.to_le_bytes());
        reseal(&mut bad);
        assert_eq!(validate(&bad, &LIM), Err(StreamError::MissingEnd));
    }

    #[test]
    fn every_truncation_and_byte_flip_is_rejected() {
        let good = sample(None);
        for n in 0..good.len() {
            assert!(validate(&good[..n], &LIM).is_err(), "truncated at {n}");
        }
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x80;
            assert!(validate(&bad, &LIM).is_err(), "flip at {i}");
        }
    }

    #[test]
    fn writer_refuses_disorder_and_overflow() {
        let mut buf = vec![0u8; 64];
        let mut w = Writer::new(&mut buf, 1, 0).unwrap();
        w.section(2, 1, 4, |_| {}).unwrap();
        assert_eq!(
            w.section(2, 1, 4, |_| {}),
            Err(StreamError::OutOfOrderSection(2))
        );
        assert_eq!(w.section(3, 1, 100, |_| {}), Err(StreamError::NoSpace));
    }
}

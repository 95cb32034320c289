// SPDX-License-Identifier: GPL-2.0

//! Reader of AUB files: the GPU command-stream traces that Mesa's
//! `intel_dump_gpu` (an `LD_PRELOAD` tool) records of a driver's
//! execbuffers.
//!
//! An AUB file is a sequence of packets, each a header dword (all integers
//! little-endian) then its payload:
//!
//! ```text
//! header   type 31:29 (7) | opcode 28:23 | sub-opcode 22:16 | length 15:0
//! ```
//!
//! The packet is `length + 1` dwords long for the newer "memtrace" opcode
//! 0x2e and `length + 2` dwords for the classic opcode 0x01, plus, for a
//! classic trace block (sub-opcode 0x41), the data size in its dword 4.
//! This module follows Mesa 25.0's reader (`src/intel/tools/aub_read.c`,
//! `aub_read_command()` and the `handle_*` functions it calls), with the
//! constants of `intel_aub.h`, and is stricter where Mesa silently skips a
//! packet that changes memory: such a packet is an
//! [`AubError::Unsupported`], so an analyzer never builds a verdict on data
//! the reader did not understand.
//!
//! | packet | Mesa | here |
//! | --- | --- | --- |
//! | 0x2e/0x0e `CMD_MEM_TRACE_VERSION` | `handle_memtrace_version` | [`Packet::Header`] with the `PCI-ID=` of the application name |
//! | 0x01/0x05 legacy header | `handle_trace_header` | [`Packet::Header`] with the `PCI-ID=` of the comment |
//! | 0x2e/0x06 memory write | `handle_memtrace_mem_write` | [`Packet::MemWrite`] (GGTT, local, physical or GGTT entry; another space is unsupported) |
//! | 0x2e/0x03 register write | `handle_memtrace_reg_write` | [`Packet::RegWrite`] (a dword MMIO write, full mask; other forms are unsupported) |
//! | 0x01/0x41 trace block, data write, GTT memtype | `handle_trace_block` | [`Packet::MemWrite`] to [`AubSpace::Ggtt`] |
//! | 0x01/0x41 trace block, ring command write, other memtypes, MMIO and unknown operations | ring write or ignored | unsupported |
//! | 0x01/0x41 trace block comment | ignored | [`Packet::Other`] |
//! | 0x2e/0x0b `MEM_WRITE_DISCONT` | `handle_memtrace_mem_write_discont` | unsupported |
//! | 0x2e/0x0d, 0x0f, 0x10 (continuous region, predicate, compressed dump) | error | unsupported |
//! | 0x2e/0x00 old version packet | error | [`Packet::Header`] without a PCI id |
//! | register/memory polls and compares, comment, frame begin, delay, memory dump, test phase marker, 0x01/0x1e bitmap dump | ignored or error | [`Packet::Other`] |
//! | anything else | error | [`AubError::UnknownPacket`] |
//!
//! On top of the packets: [`Execlists`] turns ELSP register writes into
//! [`Submission`]s (Mesa's `handle_memtrace_reg_write`), [`AubMem`]
//! rebuilds GPU memory from the memory writes (Mesa's `aub_mem.c`) in
//! pages the caller stores ([`PageStore`]), and [`context_of`] reads an
//! execlist context image for the ring and the PPGTT of a submission.
//!
//! All of it is `core` only and never panics on any input (the fuzz target
//! `fuzz/fuzz_targets/aub_read.rs` checks that); the kernel module does not
//! use it, a host analyzer does.

pub mod context;
pub mod execlists;
pub mod mem;
#[cfg(all(test, not(CONFIG_RUST)))]
mod tests;

pub use context::{context_of, ContextError, ExeclistContext};
pub use execlists::{Engine, Execlists, Submission, EXECLIST_STATUS, EXECLIST_SUBMITPORT};
pub use mem::{AubMem, PageStore, PAGE};

/// Packet type of every AUB packet (bits 31:29 of the header).
const TYPE_AUB: u32 = 7;
/// Classic opcode (Mesa's `OPCODE_AUB`): the packet is `length + 2` dwords.
const OPCODE_AUB: u32 = 0x01;
/// Newer "memtrace" opcode (Mesa's `OPCODE_NEW_AUB`): `length + 1` dwords.
const OPCODE_NEW_AUB: u32 = 0x2e;

/// The header bits (type, opcode, sub-opcode) of a packet kind, length 0
/// (Mesa's `MAKE_HEADER`).
pub const fn packet_header(opcode: u32, subopcode: u32) -> u32 {
    (TYPE_AUB << 29) | (opcode << 23) | (subopcode << 16)
}

/// Mask of a header's kind bits (type, opcode, sub-opcode).
pub const HEADER_KIND_MASK: u32 = 0xffff_0000;
/// Mask of a header's length field.
pub const HEADER_LEN_MASK: u32 = 0xffff;

/// Legacy header (`CMD_AUB_HEADER`).
pub const CMD_AUB_HEADER: u32 = packet_header(OPCODE_AUB, 0x05);
/// Legacy trace block (`CMD_AUB_TRACE_HEADER_BLOCK`).
pub const CMD_AUB_TRACE_HEADER_BLOCK: u32 = packet_header(OPCODE_AUB, 0x41);
/// Legacy bitmap dump (`CMD_AUB_DUMP_BMP`; Mesa's `SUBOPCODE_BMP`).
pub const CMD_AUB_DUMP_BMP: u32 = packet_header(OPCODE_AUB, 0x1e);
/// Old version packet (Mesa's `SUBOPCODE_VERSION`).
pub const CMD_MEM_TRACE_VERSION_OLD: u32 = packet_header(OPCODE_NEW_AUB, 0x00);
/// Register compare.
pub const CMD_MEM_TRACE_REGISTER_COMPARE: u32 = packet_header(OPCODE_NEW_AUB, 0x01);
/// Register poll (`CMD_MEM_TRACE_REGISTER_POLL`).
pub const CMD_MEM_TRACE_REGISTER_POLL: u32 = packet_header(OPCODE_NEW_AUB, 0x02);
/// Register write (`CMD_MEM_TRACE_REGISTER_WRITE`).
pub const CMD_MEM_TRACE_REGISTER_WRITE: u32 = packet_header(OPCODE_NEW_AUB, 0x03);
/// Memory compare.
pub const CMD_MEM_TRACE_MEMORY_COMPARE: u32 = packet_header(OPCODE_NEW_AUB, 0x04);
/// Memory poll.
pub const CMD_MEM_TRACE_MEMORY_POLL: u32 = packet_header(OPCODE_NEW_AUB, 0x05);
/// Memory write (`CMD_MEM_TRACE_MEMORY_WRITE`).
pub const CMD_MEM_TRACE_MEMORY_WRITE: u32 = packet_header(OPCODE_NEW_AUB, 0x06);
/// Frame begin.
pub const CMD_MEM_TRACE_FRAME_BEGIN: u32 = packet_header(OPCODE_NEW_AUB, 0x07);
/// Comment.
pub const CMD_MEM_TRACE_COMMENT: u32 = packet_header(OPCODE_NEW_AUB, 0x08);
/// Trace delay.
pub const CMD_MEM_TRACE_DELAY: u32 = packet_header(OPCODE_NEW_AUB, 0x09);
/// Memory dump (to the simulator's output, no effect on memory).
pub const CMD_MEM_TRACE_MEMORY_DUMP: u32 = packet_header(OPCODE_NEW_AUB, 0x0a);
/// Discontiguous memory write (`SUBOPCODE_MEM_WRITE_DISCONT`).
pub const CMD_MEM_TRACE_MEMORY_WRITE_DISCONT: u32 = packet_header(OPCODE_NEW_AUB, 0x0b);
/// Test phase marker.
pub const CMD_MEM_TRACE_TEST_PHASE_MARKER: u32 = packet_header(OPCODE_NEW_AUB, 0x0c);
/// Continuous memory region.
pub const CMD_MEM_TRACE_MEMORY_CONTINUOUS_REGION: u32 = packet_header(OPCODE_NEW_AUB, 0x0d);
/// Version packet (`CMD_MEM_TRACE_VERSION`; Mesa's `SUBOPCODE_VERSION_EXT`).
pub const CMD_MEM_TRACE_VERSION: u32 = packet_header(OPCODE_NEW_AUB, 0x0e);
/// Predicate.
pub const CMD_MEM_TRACE_PREDICATE: u32 = packet_header(OPCODE_NEW_AUB, 0x0f);
/// Compressed dump.
pub const CMD_MEM_TRACE_DUMP_COMPRESS: u32 = packet_header(OPCODE_NEW_AUB, 0x10);

/// Trace block dword 1: operation (`AUB_TRACE_OPERATION_MASK`).
const TRACE_OPERATION_MASK: u32 = 0xff;
/// Trace block operation: comment.
pub const AUB_TRACE_OP_COMMENT: u32 = 0;
/// Trace block operation: data write.
pub const AUB_TRACE_OP_DATA_WRITE: u32 = 1;
/// Trace block operation: ring command write.
pub const AUB_TRACE_OP_COMMAND_WRITE: u32 = 2;
/// Trace block dword 1: memory type (`AUB_TRACE_ADDRESS_SPACE_MASK`).
const TRACE_ADDRESS_SPACE_MASK: u32 = 0x00ff_0000;
/// Trace block memory type: GTT (`AUB_TRACE_MEMTYPE_GTT`).
pub const AUB_TRACE_MEMTYPE_GTT: u32 = 0;
/// Trace block memory type: GTT entries (`AUB_TRACE_MEMTYPE_GTT_ENTRY`).
pub const AUB_TRACE_MEMTYPE_GTT_ENTRY: u32 = 4 << 16;

/// Memory write dword 3: address space (bits 31:28,
/// `AUB_MEM_TRACE_MEMORY_ADDRESS_SPACE_MASK`).
const MEMORY_ADDRESS_SPACE_SHIFT: u32 = 28;
/// Register write dword 2: size field (`AUB_MEM_TRACE_REGISTER_SIZE_MASK`).
const REGISTER_SIZE_MASK: u32 = 0x000f_0000;
/// Register write size: one dword (`AUB_MEM_TRACE_REGISTER_SIZE_DWORD`).
pub const AUB_MEM_TRACE_REGISTER_SIZE_DWORD: u32 = 2 << 16;
/// Register write dword 2: space field (`AUB_MEM_TRACE_REGISTER_SPACE_MASK`).
const REGISTER_SPACE_MASK: u32 = 0xf000_0000;
/// Register write space: MMIO (`AUB_MEM_TRACE_REGISTER_SPACE_MMIO`).
pub const AUB_MEM_TRACE_REGISTER_SPACE_MMIO: u32 = 0;

/// Graphics addresses in an AUB are 48 bits wide (Mesa's
/// `intel_48b_address()` drops bits 63:48).
const ADDR_MASK_48: u64 = (1 << 48) - 1;

/// Address spaces of a memory write (Mesa's
/// `AUB_MEM_TRACE_MEMORY_ADDRESS_SPACE_*`, bits 31:28 of dword 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AubSpace {
    /// Through the GGTT (0).
    Ggtt,
    /// Local (device) memory (1): not modeled by [`AubMem`].
    Local,
    /// Physical memory (2).
    Physical,
    /// The GGTT's entries themselves (4), 8 bytes per 4 KiB page: the
    /// address is the byte offset in the entry array.
    GgttEntry,
}

impl AubSpace {
    /// The value of bits 31:28 of a memory write's dword 3.
    pub const fn bits(self) -> u32 {
        match self {
            Self::Ggtt => 0,
            Self::Local => 1,
            Self::Physical => 2,
            Self::GgttEntry => 4,
        }
    }

    /// The space bits 31:28 name (Mesa's `do_write()`), if it is one.
    const fn from_bits(b: u32) -> Option<Self> {
        Some(match b {
            0 => Self::Ggtt,
            1 => Self::Local,
            2 => Self::Physical,
            4 => Self::GgttEntry,
            _ => return None,
        })
    }
}

/// One packet of an AUB file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet<'a> {
    /// Version / header packet (new `CMD_MEM_TRACE_VERSION` or the legacy
    /// header): the PCI id if it names one (`PCI-ID=<number>`).
    Header {
        /// The device's PCI id.
        pci_id: Option<u32>,
    },
    /// Memory write: `data.len()` is exactly the packet's size field in
    /// bytes (padding excluded).
    MemWrite {
        /// Address space of `addr`.
        space: AubSpace,
        /// Address (48 bits).
        addr: u64,
        /// The bytes written.
        data: &'a [u8],
    },
    /// A dword MMIO register write.
    RegWrite {
        /// MMIO offset.
        reg: u32,
        /// Value.
        value: u32,
    },
    /// Register or memory poll, comment, other packets with no effect on
    /// memory.
    Other,
}

/// Why an AUB file could not be read (each with the byte offset of the
/// packet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AubError {
    /// The file ends inside the packet at `offset` (its header, a field it
    /// needs, or the length its header gives run past the end).
    Truncated {
        /// Byte offset of the packet.
        offset: usize,
    },
    /// A header whose type, opcode or sub-opcode the reader does not know.
    UnknownPacket {
        /// Byte offset of the packet.
        offset: usize,
        /// Its header dword.
        header: u32,
    },
    /// A known packet whose fields do not fit together.
    BadPacket {
        /// Byte offset of the packet.
        offset: usize,
        /// Its header dword.
        header: u32,
        /// What is wrong.
        why: &'static str,
    },
    /// A known packet that changes memory or registers in a way this
    /// reader does not model.
    Unsupported {
        /// Byte offset of the packet.
        offset: usize,
        /// Its header dword (its kind bits only when [`AubMem::apply`]
        /// refuses a [`Packet`]).
        header: u32,
        /// What is not supported.
        why: &'static str,
    },
    /// A GGTT write to a page whose GGTT entry is not present (Mesa's
    /// `aub_mem_ggtt_write()` asserts on it); nothing of that page was
    /// written.
    GgttUnmapped {
        /// Byte offset of the packet.
        offset: usize,
        /// The graphics address of the page.
        gma: u64,
    },
    /// The [`PageStore`] refused a page (its memory cap).
    StoreFull {
        /// Byte offset of the packet.
        offset: usize,
        /// The page frame number refused.
        pfn: u64,
    },
}

impl core::fmt::Display for AubError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::Truncated { offset } => {
                write!(f, "AUB packet at byte {offset:#x}: the file ends inside it")
            }
            Self::UnknownPacket { offset, header } => {
                write!(f, "AUB packet at byte {offset:#x}: unknown header {header:#010x}")
            }
            Self::BadPacket {
                offset,
                header,
                why,
            } => write!(f, "AUB packet at byte {offset:#x} (header {header:#010x}): {why}"),
            Self::Unsupported {
                offset,
                header,
                why,
            } => write!(
                f,
                "AUB packet at byte {offset:#x} (header {header:#010x}): unsupported: {why}"
            ),
            Self::GgttUnmapped { offset, gma } => write!(
                f,
                "AUB packet at byte {offset:#x}: GGTT write to {gma:#x}, whose GGTT entry is not present"
            ),
            Self::StoreFull { offset, pfn } => write!(
                f,
                "AUB packet at byte {offset:#x}: the page store refused page frame {pfn:#x}"
            ),
        }
    }
}

/// The dwords of one packet, read on demand.
struct Raw<'a> {
    bytes: &'a [u8],
    offset: usize,
    header: u32,
}

impl<'a> Raw<'a> {
    /// Dword `i`, or a truncation error if the file ends before it.
    fn dw(&self, i: usize) -> Result<u32, AubError> {
        let s = i * 4;
        match self.bytes.get(s..s + 4) {
            Some(b) => Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            None => Err(AubError::Truncated {
                offset: self.offset,
            }),
        }
    }

    fn bad(&self, why: &'static str) -> AubError {
        AubError::BadPacket {
            offset: self.offset,
            header: self.header,
            why,
        }
    }

    fn unsupported(&self, why: &'static str) -> AubError {
        AubError::Unsupported {
            offset: self.offset,
            header: self.header,
            why,
        }
    }
}

/// Iterator over the packets of an AUB file held in memory: yields (byte
/// offset, packet); after the first error it yields that error once and
/// then ends. It ends cleanly only at the end of a packet.
#[derive(Debug, Clone)]
pub struct Packets<'a> {
    aub: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> Packets<'a> {
    /// Packets of `aub`, from its first byte.
    pub fn new(aub: &'a [u8]) -> Self {
        Self {
            aub,
            pos: 0,
            failed: false,
        }
    }

    /// The byte offset of the next packet.
    pub fn offset(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for Packets<'a> {
    type Item = Result<(usize, Packet<'a>), AubError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.aub.len() {
            return None;
        }
        let offset = self.pos;
        match parse(self.aub.get(offset..).unwrap_or(&[]), offset) {
            Ok((p, len)) => {
                self.pos += len;
                Some(Ok((offset, p)))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Decodes the packet at the start of `bytes` (file offset `offset`):
/// the packet and its length in bytes. Follows Mesa's
/// `aub_read_command()`.
fn parse(bytes: &[u8], offset: usize) -> Result<(Packet<'_>, usize), AubError> {
    let mut raw = Raw {
        bytes,
        offset,
        header: 0,
    };
    let h = raw.dw(0)?;
    raw.header = h;
    let header_len = (h & HEADER_LEN_MASK) as usize;
    let kind = h & HEADER_KIND_MASK;
    let bias = match (h >> 23) & 0x3f {
        OPCODE_AUB => 2,
        OPCODE_NEW_AUB => 1,
        _ => return Err(AubError::UnknownPacket { offset, header: h }),
    };
    if h >> 29 != TYPE_AUB {
        return Err(AubError::UnknownPacket { offset, header: h });
    }
    if header_len == 0 {
        return Err(raw.bad("zero header length"));
    }
    // Dwords of the packet; a trace block's data follows its header.
    let mut dwords = header_len + bias;
    let mut block_data = 0;
    if kind == CMD_AUB_TRACE_HEADER_BLOCK {
        if dwords < 5 {
            return Err(raw.bad("trace block shorter than 5 dwords"));
        }
        block_data = raw.dw(4)? as usize;
        if !block_data.is_multiple_of(4) {
            return Err(raw.bad("trace block size not a multiple of 4"));
        }
        dwords += block_data / 4;
    }
    let len = dwords * 4;
    let Some(body) = bytes.get(..len) else {
        return Err(AubError::Truncated { offset });
    };
    raw.bytes = body;
    let p = match kind {
        CMD_AUB_HEADER => Packet::Header {
            pci_id: legacy_pci_id(&raw)?,
        },
        CMD_MEM_TRACE_VERSION => Packet::Header {
            pci_id: version_pci_id(&raw)?,
        },
        CMD_MEM_TRACE_VERSION_OLD => Packet::Header { pci_id: None },
        CMD_AUB_TRACE_HEADER_BLOCK => trace_block(&raw, header_len + bias, block_data)?,
        CMD_MEM_TRACE_REGISTER_WRITE => reg_write(&raw)?,
        CMD_MEM_TRACE_MEMORY_WRITE => mem_write(&raw)?,
        CMD_AUB_DUMP_BMP
        | CMD_MEM_TRACE_REGISTER_COMPARE
        | CMD_MEM_TRACE_REGISTER_POLL
        | CMD_MEM_TRACE_MEMORY_COMPARE
        | CMD_MEM_TRACE_MEMORY_POLL
        | CMD_MEM_TRACE_FRAME_BEGIN
        | CMD_MEM_TRACE_COMMENT
        | CMD_MEM_TRACE_DELAY
        | CMD_MEM_TRACE_MEMORY_DUMP
        | CMD_MEM_TRACE_TEST_PHASE_MARKER => Packet::Other,
        CMD_MEM_TRACE_MEMORY_WRITE_DISCONT => {
            return Err(raw.unsupported("discontiguous memory write"))
        }
        CMD_MEM_TRACE_MEMORY_CONTINUOUS_REGION => {
            return Err(raw.unsupported("continuous memory region"))
        }
        CMD_MEM_TRACE_PREDICATE => return Err(raw.unsupported("predicate")),
        CMD_MEM_TRACE_DUMP_COMPRESS => return Err(raw.unsupported("compressed dump")),
        _ => return Err(AubError::UnknownPacket { offset, header: h }),
    };
    Ok((p, len))
}

/// The PCI id of a legacy header's comment (Mesa's
/// `handle_trace_header()`: dword 12 is the comment's length, the comment
/// starts at dword 13).
fn legacy_pci_id(raw: &Raw<'_>) -> Result<Option<u32>, AubError> {
    if raw.bytes.len() <= 12 * 4 {
        return Ok(None);
    }
    let n = raw.dw(12)? as usize;
    let comment = raw.bytes.get(13 * 4..).unwrap_or(&[]);
    Ok(pci_id(comment.get(..n).unwrap_or(comment)))
}

/// The PCI id of a version packet's application name (Mesa's
/// `handle_memtrace_version()`: the name starts at dword 5).
fn version_pci_id(raw: &Raw<'_>) -> Result<Option<u32>, AubError> {
    if raw.bytes.len() < 5 * 4 {
        return Err(raw.bad("version packet shorter than 5 dwords"));
    }
    let name = raw.bytes.get(5 * 4..).unwrap_or(&[]);
    Ok(pci_id(name.get(..63).unwrap_or(name)))
}

/// `sscanf(text, "PCI-ID=%i")`: the number after `PCI-ID=`, in C's `%i`
/// syntax (`0x` hexadecimal, leading `0` octal, else decimal); `None` if
/// there is none or it does not fit in 32 bits.
fn pci_id(text: &[u8]) -> Option<u32> {
    let rest = text.strip_prefix(b"PCI-ID=")?;
    let start = rest.iter().position(|c| !c.is_ascii_whitespace())?;
    let rest = &rest[start..];
    let (radix, digits) = match rest {
        [b'0', b'x' | b'X', d, ..] if d.is_ascii_hexdigit() => (16, &rest[2..]),
        [b'0', ..] => (8, rest),
        _ => (10, rest),
    };
    let mut v: Option<u32> = None;
    for &c in digits {
        let Some(d) = (c as char).to_digit(radix) else {
            break;
        };
        v = Some(v.unwrap_or(0).checked_mul(radix)?.checked_add(d)?);
    }
    v
}

/// A classic trace block (Mesa's `handle_trace_block()`): `head` dwords of
/// header, then `size` bytes of data.
fn trace_block<'a>(raw: &Raw<'a>, head: usize, size: usize) -> Result<Packet<'a>, AubError> {
    let d1 = raw.dw(1)?;
    match d1 & TRACE_OPERATION_MASK {
        AUB_TRACE_OP_COMMENT => Ok(Packet::Other),
        AUB_TRACE_OP_DATA_WRITE => {
            if d1 & TRACE_ADDRESS_SPACE_MASK != AUB_TRACE_MEMTYPE_GTT {
                return Err(raw.unsupported("trace block data write to a memtype other than GTT"));
            }
            // Dword 5, the address's high half, exists in the 64-bit form
            // (6 header dwords) only; Mesa reads it when the device is
            // Gen8+, whose writer always emits that form.
            let hi = if head >= 6 { raw.dw(5)? } else { 0 };
            let addr = (u64::from(hi) << 32 | u64::from(raw.dw(3)?)) & ADDR_MASK_48;
            let s = head * 4;
            let data = raw
                .bytes
                .get(s..s + size)
                .ok_or(AubError::Truncated { offset: raw.offset })?;
            Ok(Packet::MemWrite {
                space: AubSpace::Ggtt,
                addr,
                data,
            })
        }
        AUB_TRACE_OP_COMMAND_WRITE => Err(raw.unsupported("legacy ring command write")),
        _ => Err(raw.unsupported("trace block operation other than data write or comment")),
    }
}

/// A register write (Mesa's `handle_memtrace_reg_write()`): dword 1 the
/// offset, 2 size and space, 3-4 the mask, 5 the value.
fn reg_write<'a>(raw: &Raw<'a>) -> Result<Packet<'a>, AubError> {
    if raw.bytes.len() < 6 * 4 {
        return Err(raw.bad("register write shorter than 6 dwords"));
    }
    let kind = raw.dw(2)?;
    if kind & REGISTER_SPACE_MASK != AUB_MEM_TRACE_REGISTER_SPACE_MMIO {
        return Err(raw.unsupported("register write outside the MMIO space"));
    }
    if kind & REGISTER_SIZE_MASK != AUB_MEM_TRACE_REGISTER_SIZE_DWORD {
        return Err(raw.unsupported("register write of a size other than a dword"));
    }
    if raw.dw(3)? != u32::MAX {
        return Err(raw.unsupported("masked register write"));
    }
    Ok(Packet::RegWrite {
        reg: raw.dw(1)?,
        value: raw.dw(5)?,
    })
}

/// A memory write (Mesa's `handle_memtrace_mem_write()`): dwords 1-2 the
/// address, 3 the space in bits 31:28, 4 the size in bytes, then the data.
fn mem_write<'a>(raw: &Raw<'a>) -> Result<Packet<'a>, AubError> {
    if raw.bytes.len() < 5 * 4 {
        return Err(raw.bad("memory write shorter than 5 dwords"));
    }
    let addr = (u64::from(raw.dw(2)?) << 32 | u64::from(raw.dw(1)?)) & ADDR_MASK_48;
    let size = raw.dw(4)? as usize;
    let Some(data) = raw.bytes.get(20..20 + size) else {
        return Err(raw.bad("size field larger than the packet"));
    };
    let Some(space) = AubSpace::from_bits(raw.dw(3)? >> MEMORY_ADDRESS_SPACE_SHIFT) else {
        return Err(raw.unsupported("memory write to an unknown address space"));
    };
    if space == AubSpace::GgttEntry && (!addr.is_multiple_of(8) || !size.is_multiple_of(8)) {
        return Err(raw.bad("GGTT entry write not in whole 8-byte entries"));
    }
    Ok(Packet::MemWrite { space, addr, data })
}

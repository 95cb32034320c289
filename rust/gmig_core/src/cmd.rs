// SPDX-License-Identifier: GPL-2.0

//! Gen8/9 command-buffer parser: command lengths and the graphics
//! addresses inside address-bearing commands.
//!
//! A command starts with a header dword `dw0`; bits 31:29 are the client:
//!
//! | client | family | opcode | length |
//! | --- | --- | --- | --- |
//! | 0 | MI | bits 28:23 | fixed 1 for opcodes 0x00..=0x0F, else `(dw0 & mask) + 2`, mask 6, 8 or 10 bits per opcode |
//! | 2 | 2D/BLT | bits 28:22 | `(dw0 & 0xff) + 2` |
//! | 3 | GFXPIPE | bits 28:16 (pipeline type 28:27, opcode 26:24, sub-opcode 23:16) | `(dw0 & 0xff) + 2` (9 or 11 bits for a few 3D commands, 16 bits for media), fixed 1 for PIPELINE_SELECT / 3DSTATE_VF_STATISTICS |
//!
//! The opcode table and length fields follow Linux's GVT-g parser
//! (`drivers/gpu/drm/i915/gvt/cmd_parser.c`: the `OP_*` defines, the
//! `cmd_info[]` table with its `F_LEN_CONST`/`F_LEN_VAR` length rules and
//! `valid_len` checks, `get_cmd_length()`), restricted to the render and
//! blitter rings' MI, 2D and 3D/media families (no VCS/VECS MFX/VEBOX
//! commands). An opcode not in that table is an error
//! ([`CmdError::UnknownOpcode`]), never skipped by a guessed length.
//!
//! Address fields ([`AddrRef`]) are decoded for (dword index within the
//! command, Gen8+ 48/64-bit forms):
//!
//! | command | address dwords | address space |
//! | --- | --- | --- |
//! | MI_BATCH_BUFFER_START (0x31, len 3) | 1-2, bits 1:0 kept | dw0 bit 8: 1 = PPGTT, 0 = GGTT (`_CMDBIT_BB_START_IN_PPGTT`); bit 22 second level |
//! | MI_STORE_DATA_IMM (0x20, len 4/5) | 1-2, bits 1:0 kept | dw0 bit 22 = GGTT (`cmd_handler_mi_store_data_imm`) |
//! | MI_STORE_REGISTER_MEM (0x24) / MI_LOAD_REGISTER_MEM (0x29), len 4 | 2-3, bits 1:0 kept | dw0 bit 22 = GGTT (`cmd_handler_srm`/`_lrm`) |
//! | MI_FLUSH_DW (0x26, len 4/5) | 1-2, bits 2:0 kept, if post-sync op (dw0 15:14) != 0 and not store-data-index (dw0 bit 21) | dw1 bit 2 = GGTT (`cmd_handler_mi_flush_dw`) |
//! | MI_CONDITIONAL_BATCH_BUFFER_END (0x36, len 4) | 2-3, bits 2:0 kept | dw0 bit 22 = GGTT |
//! | MI_SEMAPHORE_WAIT (0x1c, len 4) | 2-3, bits 1:0 kept | dw0 bit 22 = GGTT (i915 `MI_SEMAPHORE_GLOBAL_GTT`) |
//! | XY_COLOR_BLT (0x50, len 7) | 4-5 | caller's [`Mode::blt`] |
//! | XY_SRC_COPY_BLT (0x53, len 10), XY_FAST_COPY_BLT (0x42, len 10) | 4-5 (dst), 8-9 (src) | caller's [`Mode::blt`] |
//! | PIPE_CONTROL (0x7a00, len 6) | 2-3, bits 2:0 kept, if post-sync op (dw1 15:14) != 0, no MMIO write (dw1 bit 23), not store-data-index (dw1 bit 21) | dw1 bit 24 = GGTT (`PIPE_CONTROL_GLOBAL_GTT_IVB`) |
//! | STATE_BASE_ADDRESS (0x6101, len 16 Gen8 / 19 Gen9) | 1, 4, 6, 8, 10 (+16 on Gen9), 64-bit, bits 11:0 kept, only if the modify-enable bit 0 is set | caller's [`Mode::gfx`] |
//! | 3DSTATE_VERTEX_BUFFERS (0x7808, len 1 + 4n, n <= 33) | per buffer 1-2 of its 4 dwords, 64-bit, only if address-modify-enable (bit 14) and not null (bit 13) | caller's [`Mode::gfx`] |
//! | 3DSTATE_INDEX_BUFFER (0x780a, len 5), _DEPTH_BUFFER (0x7805, len 8), _STENCIL_BUFFER (0x7806, len 5), _HIER_DEPTH_BUFFER (0x7807, len 5) | 2-3, 64-bit | caller's [`Mode::gfx`] |
//!
//! Sources: the opcodes, address bits and GGTT indicator bits are those of
//! GVT-g's handlers named above and i915's `gt/intel_gpu_commands.h`
//! (`MI_BATCH_BUFFER_START_GEN8` = `MI_INSTR(0x31, 1)`, `MI_FLUSH_DW_USE_GTT`
//! = bit 2, `GFX_OP_PIPE_CONTROL(6)`, `GEN9_XY_FAST_COPY_BLT_CMD` = `0x42 <<
//! 22`); the Gen8 blit layouts (dst at dwords 4-5, src at 8-9) are those
//! i915's Gen8+ blitter code emits (`XY_SRC_COPY_BLT_CMD | (10 - 2)`,
//! `XY_COLOR_BLT_CMD | (7 - 2)`); the 3D layouts are Mesa's genxml
//! `gen8.xml`/`gen9.xml` (GVT's `ADDR_FIX_*` bitmaps are the older 32-bit
//! layouts and are not used). Where a field mixes flags and address bits,
//! the flag bits are reported in [`AddrRef::flags`] and kept by
//! [`AddrRef::merge`].
//!
//! Commands that carry graphics addresses at positions this parser does
//! not decode (MI_UPDATE_GTT, MI_DISPLAY_FLIP, MI_CLFLUSH, MI_ATOMIC,
//! MI_COPY_MEM_MEM, MI_REPORT_PERF_COUNT, the other XY_* blits,
//! 3DSTATE_CONSTANT_*, 3DSTATE_SO_BUFFER, the *_POOL_ALLOC commands,
//! STATE_PREFETCH, STATE_SIP, media commands) are reported with
//! [`Command::opaque`] set to the space those addresses are in, so a
//! remapper can refuse them when that space is the GGTT instead of
//! passing them through.
//!
//! Address spaces: in execlist mode (Gen8+ with GVT-g), 3D and media
//! state addresses are PPGTT addresses of the submitting context; blits on
//! GVT-g's shadowed ring context go through the GGTT. [`Mode::EXECLIST`]
//! encodes that default; a caller that knows better passes another
//! [`Mode`]. Commands with an explicit GGTT/PPGTT bit use that bit.
//!
//! Nothing allocates: [`Commands`] walks a caller's `&[u32]`, and
//! [`Command::decode_with`] parses one command from any dword source (e.g.
//! guest memory behind a ring that wraps).

/// Maximum number of decoded address fields in one command
/// (3DSTATE_VERTEX_BUFFERS with 33 buffers).
pub const MAX_ADDRS: usize = 33;
/// Maximum length, in dwords, of a command whose addresses are decoded.
pub const MAX_ADDR_CMD_DWORDS: usize = 1 + 4 * MAX_ADDRS;

/// Graphics address space of an address field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    /// The global GTT (the vGPU's GGTT partition).
    Ggtt,
    /// The submitting context's per-process GTT.
    Ppgtt,
}

/// Width of an address field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    /// One dword.
    W32,
    /// Two dwords, the second holding address bits 47:32 in its bits 15:0
    /// (its bits 31:16 are kept as they are).
    W48,
    /// Two dwords, the second holding address bits 63:32.
    W64,
}

/// Where an address is in a buffer and how to read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrRef {
    /// Dword index of the address's low dword (absolute in the buffer
    /// given to [`Commands`] or [`Command::decode`]).
    pub dword: usize,
    /// Field width.
    pub width: Width,
    /// Address space.
    pub space: Space,
    /// Bits of the low dword that are flags, not address (kept on write).
    pub flags: u32,
}

const NO_ADDR: AddrRef = AddrRef {
    dword: 0,
    width: Width::W32,
    space: Space::Ggtt,
    flags: 0,
};

fn lo32(x: u64) -> u32 {
    // Lossless: the value is masked to 32 bits first.
    (x & 0xffff_ffff) as u32
}

impl AddrRef {
    /// Number of dwords the field spans (1 or 2).
    pub const fn dwords(&self) -> usize {
        match self.width {
            Width::W32 => 1,
            Width::W48 | Width::W64 => 2,
        }
    }

    const fn hi_mask(&self) -> u32 {
        match self.width {
            Width::W32 => 0,
            Width::W48 => 0xffff,
            Width::W64 => 0xffff_ffff,
        }
    }

    /// The address held by the field's dwords `lo` and `hi` (`hi` is
    /// ignored for [`Width::W32`]).
    pub const fn extract(&self, lo: u32, hi: u32) -> u64 {
        (lo & !self.flags) as u64 | (((hi & self.hi_mask()) as u64) << 32)
    }

    /// Whether `addr` can be stored in the field: no bits in the flag
    /// positions and none above the field's width.
    pub fn fits(&self, addr: u64) -> bool {
        lo32(addr) & self.flags == 0 && (addr >> 32) & !u64::from(self.hi_mask()) == 0
    }

    /// The field's new dwords holding `addr`, keeping the flag bits of
    /// `lo` and the non-address bits of `hi`; `None` if it does not
    /// [`fit`](Self::fits).
    pub fn merge(&self, lo: u32, hi: u32, addr: u64) -> Option<(u32, u32)> {
        if !self.fits(addr) {
            return None;
        }
        let new_lo = (lo32(addr) & !self.flags) | (lo & self.flags);
        let new_hi = (hi & !self.hi_mask()) | (lo32(addr >> 32) & self.hi_mask());
        Some((new_lo, new_hi))
    }

    /// Reads the address from `buf`; `None` if the field is out of bounds.
    pub fn read(&self, buf: &[u32]) -> Option<u64> {
        let lo = *buf.get(self.dword)?;
        let hi = if self.dwords() == 2 {
            *buf.get(self.dword.checked_add(1)?)?
        } else {
            0
        };
        Some(self.extract(lo, hi))
    }

    /// Writes `addr` into `buf`, keeping flag bits; `None` (and nothing
    /// written) if the field is out of bounds or `addr` does not fit.
    pub fn write(&self, buf: &mut [u32], addr: u64) -> Option<()> {
        let two = self.dwords() == 2;
        let end = self.dword.checked_add(self.dwords())?;
        let field = buf.get_mut(self.dword..end)?;
        let lo = *field.first()?;
        let hi = if two { *field.get(1)? } else { 0 };
        let (new_lo, new_hi) = self.merge(lo, hi, addr)?;
        *field.first_mut()? = new_lo;
        if two {
            *field.get_mut(1)? = new_hi;
        }
        Some(())
    }
}

/// Address spaces the caller assigns to commands without an explicit
/// GGTT/PPGTT bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    /// Space of XY_* blit addresses.
    pub blt: Space,
    /// Space of 3D and media state addresses (STATE_BASE_ADDRESS,
    /// 3DSTATE_*_BUFFER, ...).
    pub gfx: Space,
}

impl Mode {
    /// Gen8+ execlist submission under GVT-g: blits through the GGTT, 3D
    /// state through the context's PPGTT.
    pub const EXECLIST: Mode = Mode {
        blt: Space::Ggtt,
        gfx: Space::Ppgtt,
    };
    /// Everything without an explicit bit is a GGTT address (ring-buffer
    /// submission without PPGTT).
    pub const GGTT: Mode = Mode {
        blt: Space::Ggtt,
        gfx: Space::Ggtt,
    };
    /// Everything without an explicit bit is a PPGTT address.
    pub const PPGTT: Mode = Mode {
        blt: Space::Ppgtt,
        gfx: Space::Ppgtt,
    };
}

impl Default for Mode {
    fn default() -> Self {
        Self::EXECLIST
    }
}

/// What kind of buffer is walked; decides how batch starts and ends nest
/// (GVT-g's `RING_BUFFER_INSTRUCTION`, `BATCH_BUFFER_INSTRUCTION`,
/// `BATCH_BUFFER_2ND_LEVEL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// A ring buffer: runs to its tail (the end of the slice); a batch
    /// start calls a first-level batch and returns; a batch end is an
    /// error.
    Ring,
    /// A first-level batch: ends at MI_BATCH_BUFFER_END or at a chained
    /// MI_BATCH_BUFFER_START (bit 22 clear); a second-level start calls and
    /// returns.
    Batch,
    /// A second-level batch: ends at MI_BATCH_BUFFER_END; a batch start is
    /// an error.
    SecondLevel,
}

/// Command family (bits 31:29 of the header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// Memory interface commands (client 0).
    Mi,
    /// 2D / blitter commands (client 2).
    Blt,
    /// GFXPIPE 3D and media commands (client 3).
    Gfx,
}

/// A parsed command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// MI_NOOP.
    MiNoop,
    /// MI_BATCH_BUFFER_END.
    MiBatchBufferEnd,
    /// MI_BATCH_BUFFER_START.
    MiBatchBufferStart {
        /// Space of the batch address (dw0 bit 8).
        space: Space,
        /// Second-level batch (dw0 bit 22): returns to the caller.
        second_level: bool,
    },
    /// MI_STORE_DATA_IMM.
    MiStoreDataImm,
    /// MI_LOAD_REGISTER_MEM.
    MiLoadRegisterMem,
    /// MI_STORE_REGISTER_MEM.
    MiStoreRegisterMem,
    /// MI_FLUSH_DW.
    MiFlushDw,
    /// MI_CONDITIONAL_BATCH_BUFFER_END.
    MiConditionalBatchBufferEnd,
    /// MI_SEMAPHORE_WAIT.
    MiSemaphoreWait,
    /// XY_COLOR_BLT.
    XyColorBlt,
    /// XY_SRC_COPY_BLT.
    XySrcCopyBlt,
    /// XY_FAST_COPY_BLT (Gen9).
    XyFastCopyBlt,
    /// PIPE_CONTROL.
    PipeControl,
    /// STATE_BASE_ADDRESS.
    StateBaseAddress,
    /// 3DSTATE_VERTEX_BUFFERS.
    VertexBuffers,
    /// 3DSTATE_INDEX_BUFFER.
    IndexBuffer,
    /// 3DSTATE_DEPTH_BUFFER.
    DepthBuffer,
    /// 3DSTATE_STENCIL_BUFFER.
    StencilBuffer,
    /// 3DSTATE_HIER_DEPTH_BUFFER.
    HierDepthBuffer,
    /// Any other known command.
    Other {
        /// Its family.
        client: Client,
        /// Its opcode: MI bits 28:23, BLT bits 28:22, GFXPIPE bits 28:16.
        opcode: u16,
    },
}

/// Why a command buffer could not be parsed. Offsets are dword indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmdError {
    /// The header names no command this parser knows.
    UnknownOpcode {
        /// Dword index of the command.
        offset: usize,
        /// Its header.
        header: u32,
    },
    /// The length field does not match the command's layout.
    BadLength {
        /// Dword index of the command.
        offset: usize,
        /// Its header.
        header: u32,
    },
    /// The command's length runs past the end of the buffer.
    BeyondBuffer {
        /// Dword index of the command.
        offset: usize,
        /// Its length in dwords.
        len: usize,
    },
    /// A batch buffer ended without MI_BATCH_BUFFER_END (or a chained
    /// MI_BATCH_BUFFER_START).
    Truncated {
        /// Dword index where the buffer ended.
        offset: usize,
    },
    /// A batch start or end where it may not appear (a batch end in a
    /// ring, a second-level start from a ring, any start in a second-level
    /// batch).
    BadNesting {
        /// Dword index of the command.
        offset: usize,
    },
}

/// One parsed command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Command {
    /// Dword index of the command in its buffer.
    pub offset: usize,
    /// The header dword.
    pub header: u32,
    /// What it is.
    pub kind: Kind,
    /// Length in dwords (at least 1).
    pub len: usize,
    /// Set when the command carries graphics addresses in this space at
    /// positions the parser does not decode (see the module doc).
    pub opaque: Option<Space>,
    addrs: [AddrRef; MAX_ADDRS],
    naddrs: usize,
}

#[derive(Clone, Copy)]
enum Len {
    Fixed(usize),
    /// Length field of this many bits, plus 2.
    Var(u32),
}

#[derive(Clone, Copy)]
enum Sp {
    Ggtt,
    Bit22,
    Bits22Or21,
    Gfx,
    Blt,
}

#[derive(Clone, Copy)]
enum Tag {
    Plain,
    Noop,
    BbEnd,
    BbStart,
    Sdi,
    Lrm,
    Srm,
    FlushDw,
    CondBbEnd,
    SemWait,
    ColorBlt,
    SrcCopyBlt,
    FastCopyBlt,
    PipeControl,
    Sba,
    VertexBuffers,
    IndexBuffer,
    DepthBuffer,
    StencilBuffer,
    HizBuffer,
    Opaque(Sp),
}

/// Looks `dw0` up in the opcode table (GVT-g's `cmd_info[]`).
fn lookup(dw0: u32) -> Option<(Client, u16, Len, Tag)> {
    use Len::{Fixed, Var};
    match dw0 >> 29 {
        0 => {
            let op = (dw0 >> 23) & 0x3f;
            let (len, tag) = match op {
                0x00 => (Fixed(1), Tag::Noop),
                0x0a => (Fixed(1), Tag::BbEnd),
                // MI_SET_PREDICATE .. MI_RS_CONTEXT: single dword.
                0x01..=0x0f => (Fixed(1), Tag::Plain),
                0x12 => (Fixed(2), Tag::Plain), // MI_LOAD_SCAN_LINES_INCL
                0x14 => (Var(8), Tag::Opaque(Sp::Ggtt)), // MI_DISPLAY_FLIP
                // SEMAPHORE_MBOX, URB_CLEAR, MATH, SEMAPHORE_SIGNAL,
                // STORE_DATA_INDEX (HWSP offset), LRI, LRR.
                0x16 | 0x19 | 0x1a | 0x1b | 0x21 | 0x22 | 0x2a => (Var(8), Tag::Plain),
                0x1c => (Var(8), Tag::SemWait),
                0x20 => (Var(10), Tag::Sdi),
                0x23 => (Var(10), Tag::Opaque(Sp::Ggtt)), // MI_UPDATE_GTT
                0x24 => (Var(8), Tag::Srm),
                0x26 => (Var(6), Tag::FlushDw),
                0x27 => (Var(10), Tag::Opaque(Sp::Bit22)), // MI_CLFLUSH
                0x28 => (Var(6), Tag::Opaque(Sp::Ggtt)),   // MI_REPORT_PERF_COUNT
                0x29 => (Var(8), Tag::Lrm),
                // MI_RS_STORE_DATA_IMM, MI_LOAD_URB_MEM, MI_STORE_URB_MEM.
                0x2b..=0x2d => (Var(8), Tag::Opaque(Sp::Ggtt)),
                0x2e => (Var(8), Tag::Opaque(Sp::Bits22Or21)), // MI_COPY_MEM_MEM
                0x2f => (Var(8), Tag::Opaque(Sp::Bit22)),      // MI_ATOMIC
                0x31 => (Var(8), Tag::BbStart),
                0x36 => (Var(8), Tag::CondBbEnd),
                _ => return None,
            };
            Some((Client::Mi, op as u16, len, tag))
        }
        2 => {
            let op = (dw0 >> 22) & 0x7f;
            let tag = match op {
                // XY_SETUP_CLIP, XY_PIXEL, XY_SCANLINES, XY_TEXT_IMMEDIATE.
                0x03 | 0x24 | 0x25 | 0x31 => Tag::Plain,
                0x42 => Tag::FastCopyBlt,
                0x50 => Tag::ColorBlt,
                0x53 => Tag::SrcCopyBlt,
                0x01 | 0x11 | 0x26 | 0x51 | 0x52 | 0x54..=0x59 | 0x71..=0x77 => {
                    Tag::Opaque(Sp::Blt)
                }
                _ => return None,
            };
            Some((Client::Blt, op as u16, Var(8), tag))
        }
        3 => {
            let key = (dw0 >> 16) & 0x1fff;
            let (pipe, opc, sub) = (key >> 11, (key >> 8) & 7, key & 0xff);
            let (len, tag) = match (pipe, opc, sub) {
                // 3DSTATE_VF_STATISTICS (both encodings), PIPELINE_SELECT.
                (1, 0, 0x0b) | (3, 0, 0x0b) | (1, 1, 0x04) => (Fixed(1), Tag::Plain),
                (0, 1, 0x01) => (Var(8), Tag::Sba),
                // STATE_PREFETCH, STATE_SIP, 0x6104.
                (0, 0, 0x03) | (0, 1, 0x02) | (0, 1, 0x04) => (Var(8), Tag::Opaque(Sp::Gfx)),
                (2, 0, 0x04) => (Var(16), Tag::Plain), // MEDIA_STATE_FLUSH
                (2, 0, 0x00..=0x05) | (2, 1, 0x00 | 0x02 | 0x03) => (Var(16), Tag::Opaque(Sp::Gfx)),
                (2, 1, 0x05) => (Var(8), Tag::Opaque(Sp::Gfx)), // GPGPU_WALKER
                (3, 0, 0x05) => (Var(8), Tag::DepthBuffer),
                (3, 0, 0x06) => (Var(8), Tag::StencilBuffer),
                (3, 0, 0x07) => (Var(8), Tag::HizBuffer),
                (3, 0, 0x08) => (Var(8), Tag::VertexBuffers),
                (3, 0, 0x0a) => (Var(8), Tag::IndexBuffer),
                // 3DSTATE_CONSTANT_{VS,GS,PS,HS,DS}: constant buffer pointers.
                (3, 0, 0x15..=0x17 | 0x19 | 0x1a) => (Var(8), Tag::Opaque(Sp::Gfx)),
                (3, 0, 0x39 | 0x3a) => (Var(11), Tag::Plain), // DX9_CONSTANTF_*
                (3, 0, 0x43..=0x47) => (Var(9), Tag::Plain),  // BINDING_TABLE_EDIT_*
                (
                    3,
                    0,
                    0x04
                    | 0x09
                    | 0x0c..=0x14
                    | 0x18
                    | 0x1b..=0x21
                    | 0x23..=0x38
                    | 0x3b..=0x42
                    | 0x49..=0x52
                    | 0x55,
                ) => (Var(8), Tag::Plain),
                (3, 1, 0x17) => (Var(9), Tag::Plain), // 3DSTATE_SO_DECL_LIST
                // SO_BUFFER, BINDING_TABLE_POOL_ALLOC, GATHER_POOL_ALLOC,
                // DX9_CONSTANT_BUFFER_POOL_ALLOC.
                (3, 1, 0x18..=0x1b) => (Var(8), Tag::Opaque(Sp::Gfx)),
                (3, 1, 0x00 | 0x02 | 0x04 | 0x06..=0x08 | 0x0a..=0x0c | 0x11..=0x16 | 0x1c) => {
                    (Var(8), Tag::Plain)
                }
                (3, 2, 0x00) => (Var(8), Tag::PipeControl),
                (3, 3, 0x00) => (Var(8), Tag::Plain), // 3DPRIMITIVE
                _ => return None,
            };
            Some((Client::Gfx, key as u16, len, tag))
        }
        _ => None,
    }
}

fn len_of(dw0: u32, len: Len) -> usize {
    match len {
        Len::Fixed(n) => n,
        // The mask keeps at most 16 bits: the sum cannot overflow.
        Len::Var(bits) => (dw0 & ((1u32 << bits) - 1)) as usize + 2,
    }
}

/// Length in dwords of the command with header `dw0`, or `None` if the
/// opcode is unknown.
pub fn command_len(dw0: u32) -> Option<usize> {
    lookup(dw0).map(|(_, _, len, _)| len_of(dw0, len))
}

struct Builder {
    offset: usize,
    addrs: [AddrRef; MAX_ADDRS],
    n: usize,
}

impl Builder {
    fn push(&mut self, rel: usize, width: Width, space: Space, flags: u32) {
        // Every caller stays within MAX_ADDRS (checked by the layouts);
        // a push past it is dropped rather than panicking.
        if let Some(slot) = self.addrs.get_mut(self.n) {
            *slot = AddrRef {
                dword: self.offset.saturating_add(rel),
                width,
                space,
                flags,
            };
            self.n += 1;
        }
    }
}

fn bit(dw: u32, n: u32) -> bool {
    dw & (1 << n) != 0
}

fn ggtt_if(b: bool) -> Space {
    if b {
        Space::Ggtt
    } else {
        Space::Ppgtt
    }
}

impl Command {
    /// The decoded address fields.
    pub fn addrs(&self) -> &[AddrRef] {
        self.addrs.get(..self.naddrs).unwrap_or(&[])
    }

    /// The level of the batch this command starts when found in a buffer
    /// of `level`, or `None` if it starts none (or may not start one
    /// there).
    pub fn target_level(&self, level: Level) -> Option<Level> {
        match (self.kind, level) {
            (Kind::MiBatchBufferStart { second_level, .. }, Level::Ring) => {
                (!second_level).then_some(Level::Batch)
            }
            (Kind::MiBatchBufferStart { second_level, .. }, Level::Batch) => {
                Some(if second_level {
                    Level::SecondLevel
                } else {
                    Level::Batch
                })
            }
            _ => None,
        }
    }

    /// Parses the command at the start of `window`, which holds the
    /// buffer's dwords from the command on (at least the whole command, or
    /// at least [`MAX_ADDR_CMD_DWORDS`] of it). `offset` is the command's
    /// dword index in its buffer, used for errors and [`AddrRef::dword`].
    pub fn decode(window: &[u32], offset: usize, mode: Mode) -> Result<Command, CmdError> {
        Self::decode_with(offset, mode, |i| window.get(i).copied())
    }

    /// Parses one command whose dword `i` (relative to the command) is
    /// `fetch(i)`; `None` from `fetch` means the buffer ends there. Only
    /// the dwords the layout needs are fetched. [`AddrRef::dword`] values
    /// are `offset` plus the index within the command.
    pub fn decode_with(
        offset: usize,
        mode: Mode,
        mut fetch: impl FnMut(usize) -> Option<u32>,
    ) -> Result<Command, CmdError> {
        let beyond = CmdError::BeyondBuffer { offset, len: 1 };
        let dw0 = fetch(0).ok_or(beyond)?;
        let (client, opcode, len_rule, tag) = lookup(dw0).ok_or(CmdError::UnknownOpcode {
            offset,
            header: dw0,
        })?;
        let len = len_of(dw0, len_rule);
        let bad = CmdError::BadLength {
            offset,
            header: dw0,
        };
        let mut dw = |i: usize| -> Result<u32, CmdError> {
            if i >= len {
                return Err(bad);
            }
            fetch(i).ok_or(CmdError::BeyondBuffer { offset, len })
        };
        let mut b = Builder {
            offset,
            addrs: [NO_ADDR; MAX_ADDRS],
            n: 0,
        };
        let need = |ok: bool| if ok { Ok(()) } else { Err(bad) };
        let mut opaque = None;
        let kind = match tag {
            Tag::Plain => Kind::Other { client, opcode },
            Tag::Noop => Kind::MiNoop,
            Tag::BbEnd => Kind::MiBatchBufferEnd,
            Tag::BbStart => {
                need(len == 3)?;
                let space = if bit(dw0, 8) {
                    Space::Ppgtt
                } else {
                    Space::Ggtt
                };
                b.push(1, Width::W48, space, 0x3);
                Kind::MiBatchBufferStart {
                    space,
                    second_level: bit(dw0, 22),
                }
            }
            Tag::Sdi => {
                need(len == 4 || len == 5)?;
                b.push(1, Width::W48, ggtt_if(bit(dw0, 22)), 0x3);
                Kind::MiStoreDataImm
            }
            Tag::Lrm | Tag::Srm => {
                need(len == 4)?;
                b.push(2, Width::W48, ggtt_if(bit(dw0, 22)), 0x3);
                if matches!(tag, Tag::Lrm) {
                    Kind::MiLoadRegisterMem
                } else {
                    Kind::MiStoreRegisterMem
                }
            }
            Tag::FlushDw => {
                need(len == 4 || len == 5)?;
                if (dw0 >> 14) & 3 != 0 && !bit(dw0, 21) {
                    let dw1 = dw(1)?;
                    b.push(1, Width::W48, ggtt_if(bit(dw1, 2)), 0x7);
                }
                Kind::MiFlushDw
            }
            Tag::CondBbEnd => {
                need(len == 4)?;
                b.push(2, Width::W48, ggtt_if(bit(dw0, 22)), 0x7);
                Kind::MiConditionalBatchBufferEnd
            }
            Tag::SemWait => {
                need(len == 4)?;
                b.push(2, Width::W48, ggtt_if(bit(dw0, 22)), 0x3);
                Kind::MiSemaphoreWait
            }
            Tag::ColorBlt => {
                need(len == 7)?;
                b.push(4, Width::W48, mode.blt, 0);
                Kind::XyColorBlt
            }
            Tag::SrcCopyBlt | Tag::FastCopyBlt => {
                need(len == 10)?;
                b.push(4, Width::W48, mode.blt, 0);
                b.push(8, Width::W48, mode.blt, 0);
                if matches!(tag, Tag::SrcCopyBlt) {
                    Kind::XySrcCopyBlt
                } else {
                    Kind::XyFastCopyBlt
                }
            }
            Tag::PipeControl => {
                need(len == 6)?;
                let dw1 = dw(1)?;
                if (dw1 >> 14) & 3 != 0 && !bit(dw1, 23) && !bit(dw1, 21) {
                    b.push(2, Width::W48, ggtt_if(bit(dw1, 24)), 0x7);
                }
                Kind::PipeControl
            }
            Tag::Sba => {
                need(len == 16 || len == 19)?;
                for i in [1usize, 4, 6, 8, 10, 16] {
                    if i < len && dw(i)? & 1 != 0 {
                        b.push(i, Width::W64, mode.gfx, 0xfff);
                    }
                }
                Kind::StateBaseAddress
            }
            Tag::VertexBuffers => {
                let n = (len - 1) / 4;
                need((len - 1).is_multiple_of(4) && (1..=MAX_ADDRS).contains(&n))?;
                for i in 0..n {
                    let base = 1 + 4 * i;
                    let d = dw(base)?;
                    if bit(d, 14) && !bit(d, 13) {
                        b.push(base + 1, Width::W64, mode.gfx, 0);
                    }
                }
                Kind::VertexBuffers
            }
            Tag::IndexBuffer | Tag::StencilBuffer | Tag::HizBuffer => {
                need(len == 5)?;
                b.push(2, Width::W64, mode.gfx, 0);
                match tag {
                    Tag::IndexBuffer => Kind::IndexBuffer,
                    Tag::StencilBuffer => Kind::StencilBuffer,
                    _ => Kind::HierDepthBuffer,
                }
            }
            Tag::DepthBuffer => {
                need(len == 8)?;
                b.push(2, Width::W64, mode.gfx, 0);
                Kind::DepthBuffer
            }
            Tag::Opaque(sp) => {
                opaque = Some(match sp {
                    Sp::Ggtt => Space::Ggtt,
                    Sp::Bit22 => ggtt_if(bit(dw0, 22)),
                    Sp::Bits22Or21 => ggtt_if(bit(dw0, 22) || bit(dw0, 21)),
                    Sp::Gfx => mode.gfx,
                    Sp::Blt => mode.blt,
                });
                Kind::Other { client, opcode }
            }
        };
        // Every address field lies inside the command.
        if let Some(last) = b.addrs.get(..b.n).and_then(|a| a.last()) {
            let rel_end = last.dword - offset + last.dwords();
            dw(rel_end - 1)?;
        }
        Ok(Command {
            offset,
            header: dw0,
            kind,
            len,
            opaque,
            addrs: b.addrs,
            naddrs: b.n,
        })
    }
}

/// How a walk over a buffer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// At MI_BATCH_BUFFER_END.
    BatchEnd,
    /// At a chained MI_BATCH_BUFFER_START (the batch continues elsewhere).
    Chained,
    /// At the end of a ring buffer.
    Exhausted,
}

/// A walk position over one buffer, usable while the buffer is borrowed
/// mutably between steps (see [`Cursor::next`]).
#[derive(Debug, Clone, Copy)]
pub struct Cursor {
    pos: usize,
    mode: Mode,
    level: Level,
    end: Option<End>,
    failed: bool,
}

impl Cursor {
    /// A walk from dword 0 of a buffer of `level`.
    pub fn new(mode: Mode, level: Level) -> Self {
        Self {
            pos: 0,
            mode,
            level,
            end: None,
            failed: false,
        }
    }

    /// How the walk ended, once it has.
    pub fn end(&self) -> Option<End> {
        self.end
    }

    /// Dword index of the next command (after the end: dwords consumed).
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The next command of `buf` (which must be the same buffer, or an
    /// unchanged-length copy, at each step).
    pub fn next(&mut self, buf: &[u32]) -> Option<Result<Command, CmdError>> {
        if self.end.is_some() || self.failed {
            return None;
        }
        let r = self.step(buf);
        match r {
            Some(Err(_)) => self.failed = true,
            None => self.end = Some(End::Exhausted),
            Some(Ok(_)) => {}
        }
        r
    }

    fn step(&mut self, buf: &[u32]) -> Option<Result<Command, CmdError>> {
        let offset = self.pos;
        let Some(window) = buf.get(offset..).filter(|w| !w.is_empty()) else {
            return match self.level {
                Level::Ring => None,
                _ => Some(Err(CmdError::Truncated { offset })),
            };
        };
        let cmd = match Command::decode(window, offset, self.mode) {
            Ok(c) => c,
            Err(e) => return Some(Err(e)),
        };
        if cmd.len > window.len() {
            return Some(Err(CmdError::BeyondBuffer {
                offset,
                len: cmd.len,
            }));
        }
        let nesting = CmdError::BadNesting { offset };
        match cmd.kind {
            Kind::MiBatchBufferEnd => {
                if self.level == Level::Ring {
                    return Some(Err(nesting));
                }
                self.end = Some(End::BatchEnd);
            }
            Kind::MiBatchBufferStart { second_level, .. } => {
                if cmd.target_level(self.level).is_none() {
                    return Some(Err(nesting));
                }
                if self.level == Level::Batch && !second_level {
                    self.end = Some(End::Chained);
                }
            }
            _ => {}
        }
        // cmd.len <= window.len(): no overflow.
        self.pos = offset + cmd.len;
        Some(Ok(cmd))
    }
}

/// Iterator over the commands of one buffer. Stops after the first error,
/// after MI_BATCH_BUFFER_END or a chained MI_BATCH_BUFFER_START, or at the
/// end of a ring. A batch that runs out of dwords before its end yields
/// [`CmdError::Truncated`].
pub struct Commands<'a> {
    buf: &'a [u32],
    cursor: Cursor,
}

impl<'a> Commands<'a> {
    /// The commands of a first-level batch buffer in [`Mode::EXECLIST`].
    pub fn new(buf: &'a [u32]) -> Self {
        Self::with(buf, Mode::EXECLIST, Level::Batch)
    }

    /// The commands of a buffer of `level` under `mode`.
    pub fn with(buf: &'a [u32], mode: Mode, level: Level) -> Self {
        Self {
            buf,
            cursor: Cursor::new(mode, level),
        }
    }

    /// How the walk ended, once it has.
    pub fn end(&self) -> Option<End> {
        self.cursor.end()
    }

    /// Dwords consumed so far.
    pub fn position(&self) -> usize {
        self.cursor.position()
    }
}

impl Iterator for Commands<'_> {
    type Item = Result<Command, CmdError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.cursor.next(self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    const MI_NOOP: u32 = 0;
    const BB_END: u32 = 0x0a << 23;

    fn one(dws: &[u32], mode: Mode) -> Command {
        Command::decode(dws, 0, mode).unwrap()
    }

    fn addrs(c: &Command) -> Vec<(usize, Width, Space, u32)> {
        c.addrs()
            .iter()
            .map(|a| (a.dword, a.width, a.space, a.flags))
            .collect()
    }

    #[test]
    fn single_dword_mi_commands() {
        // MI_NOOP, MI_USER_INTERRUPT, MI_ARB_CHECK, MI_BATCH_BUFFER_END,
        // with garbage in the low bits (not a length field for them).
        for dw0 in [0u32, 0x02 << 23, (0x05 << 23) | 0x3f, (0x0a << 23) | 0xff] {
            let c = one(&[dw0], Mode::EXECLIST);
            assert_eq!(c.len, 1, "{dw0:#x}");
            assert!(c.addrs().is_empty());
        }
        assert_eq!(one(&[0], Mode::EXECLIST).kind, Kind::MiNoop);
        assert_eq!(one(&[BB_END], Mode::EXECLIST).kind, Kind::MiBatchBufferEnd);
        assert_eq!(command_len(0x12 << 23), Some(2), "MI_LOAD_SCAN_LINES_INCL");
    }

    #[test]
    fn length_fields_per_family() {
        // MI_LOAD_REGISTER_IMM: 8-bit field; 3 registers = 7 dwords.
        assert_eq!(command_len((0x22 << 23) | 5), Some(7));
        assert_eq!(command_len((0x22 << 23) | 0xff), Some(257));
        // MI_STORE_DATA_IMM: 10-bit field.
        assert_eq!(command_len((0x20 << 23) | 0x3ff), Some(0x401));
        // MI_FLUSH_DW: 6-bit field.
        assert_eq!(command_len((0x26 << 23) | 0xff), Some(0x3f + 2));
        // BLT: 8 bits + 2.
        assert_eq!(command_len((2 << 29) | (0x50 << 22) | 5), Some(7));
        // GFXPIPE: 8 bits + 2; SO_DECL_LIST 9 bits; media 16 bits.
        assert_eq!(command_len(0x7a00_0004), Some(6));
        assert_eq!(command_len(0x7917_01ff), Some(0x1ff + 2));
        assert_eq!(command_len(0x7000_ffff), Some(0x1_0001));
        // PIPELINE_SELECT: one dword whatever the low bits say.
        assert_eq!(command_len(0x6904_0003), Some(1));
        // Unknown: client 1, 4..7; MI 0x3f; BLT 0x7f; 3D (3,7,x).
        for dw0 in [
            1 << 29,
            0xffff_ffff,
            0x3f << 23,
            (2 << 29) | (0x7f << 22),
            0x7fff_0000,
        ] {
            assert_eq!(command_len(dw0), None, "{dw0:#x}");
            assert_eq!(
                Command::decode(&[dw0, 0, 0], 7, Mode::EXECLIST),
                Err(CmdError::UnknownOpcode {
                    offset: 7,
                    header: dw0
                })
            );
        }
    }

    #[test]
    fn batch_buffer_start() {
        // GGTT, chained: 0x18800001 as GVT-g's combine_wa_ctx() emits.
        let c = one(&[0x1880_0001, 0xdead_beec | 1, 0xffff_0012], Mode::EXECLIST);
        assert_eq!(
            c.kind,
            Kind::MiBatchBufferStart {
                space: Space::Ggtt,
                second_level: false
            }
        );
        assert_eq!(addrs(&c), [(1, Width::W48, Space::Ggtt, 3)]);
        let a = c.addrs()[0];
        let dws = [0x1880_0001, 0xdead_beec | 1, 0xffff_0012];
        assert_eq!(a.read(&dws), Some(0x12_dead_beec));
        // PPGTT (bit 8), second level (bit 22).
        let c = one(&[0x1880_0101 | (1 << 22), 0x1000, 0], Mode::GGTT);
        assert_eq!(
            c.kind,
            Kind::MiBatchBufferStart {
                space: Space::Ppgtt,
                second_level: true
            }
        );
        assert_eq!(c.addrs()[0].space, Space::Ppgtt);
        // Gen8 form only: a 2-dword (pre-Gen8) start is refused.
        assert_eq!(
            Command::decode(&[0x1880_0000, 0x1000], 0, Mode::EXECLIST),
            Err(CmdError::BadLength {
                offset: 0,
                header: 0x1880_0000
            })
        );
    }

    #[test]
    fn mi_memory_commands() {
        let sdi = (0x20 << 23) | (1 << 22) | 2;
        assert_eq!(
            addrs(&one(&[sdi, 0x1000, 0, 7], Mode::PPGTT)),
            [(1, Width::W48, Space::Ggtt, 3)]
        );
        let c = one(&[(0x20 << 23) | 2, 0x1000, 0, 7], Mode::GGTT);
        assert_eq!(c.kind, Kind::MiStoreDataImm);
        assert_eq!(c.addrs()[0].space, Space::Ppgtt, "bit 22 clear = PPGTT");
        // Qword store: 5 dwords.
        assert_eq!(
            one(&[sdi | (1 << 21) | 3, 0, 0, 1, 2], Mode::EXECLIST).len,
            5
        );
        // SRM / LRM: register in dw1, address in dw2-3.
        let srm = (0x24 << 23) | (1 << 22) | 2;
        let c = one(&[srm, 0x2358, 0x4000, 0], Mode::EXECLIST);
        assert_eq!(c.kind, Kind::MiStoreRegisterMem);
        assert_eq!(addrs(&c), [(2, Width::W48, Space::Ggtt, 3)]);
        let lrm = (0x29 << 23) | 2;
        let c = one(&[lrm, 0x2358, 0x4000, 0], Mode::EXECLIST);
        assert_eq!(c.kind, Kind::MiLoadRegisterMem);
        assert_eq!(addrs(&c), [(2, Width::W48, Space::Ppgtt, 3)]);
        assert!(Command::decode(&[srm | 1, 0, 0], 0, Mode::EXECLIST).is_err());
        // MI_CONDITIONAL_BATCH_BUFFER_END and MI_SEMAPHORE_WAIT.
        let c = one(
            &[(0x36 << 23) | (1 << 22) | 2, 5, 0x8000, 0],
            Mode::EXECLIST,
        );
        assert_eq!(c.kind, Kind::MiConditionalBatchBufferEnd);
        assert_eq!(addrs(&c), [(2, Width::W48, Space::Ggtt, 7)]);
        let c = one(
            &[(0x1c << 23) | (1 << 22) | 2, 5, 0x8000, 0],
            Mode::EXECLIST,
        );
        assert_eq!(c.kind, Kind::MiSemaphoreWait);
        assert_eq!(addrs(&c), [(2, Width::W48, Space::Ggtt, 3)]);
    }

    #[test]
    fn flush_dw_post_sync() {
        // Post-sync store (bits 15:14 = 1), GGTT (dw1 bit 2).
        let f = (0x26 << 23) | (1 << 14) | 2;
        let c = one(&[f, 0x5000 | 4, 0, 9], Mode::EXECLIST);
        assert_eq!(c.kind, Kind::MiFlushDw);
        assert_eq!(addrs(&c), [(1, Width::W48, Space::Ggtt, 7)]);
        assert_eq!(c.addrs()[0].read(&[f, 0x5000 | 4, 0, 9]), Some(0x5000));
        // PPGTT address.
        assert_eq!(
            one(&[f, 0x5000, 0, 9], Mode::EXECLIST).addrs()[0].space,
            Space::Ppgtt
        );
        // No post-sync op: no address; store data index: an HWSP offset.
        assert!(one(&[(0x26 << 23) | 2, 4, 0, 0], Mode::EXECLIST)
            .addrs()
            .is_empty());
        assert!(one(&[f | (1 << 21), 0x40 | 4, 0, 0], Mode::EXECLIST)
            .addrs()
            .is_empty());
        assert!(Command::decode(&[(0x26 << 23) | 1, 0, 0], 0, Mode::EXECLIST).is_err());
    }

    #[test]
    fn pipe_control_post_sync() {
        let pc = 0x7a00_0004;
        let qw = (1 << 14) | (1 << 24);
        let c = one(&[pc, qw, 0x9000 | 4, 0, 1, 2], Mode::EXECLIST);
        assert_eq!(c.kind, Kind::PipeControl);
        assert_eq!(addrs(&c), [(2, Width::W48, Space::Ggtt, 7)]);
        // Timestamp write (3) to a PPGTT address (bit 24 clear).
        let c = one(&[pc, 3 << 14, 0x9000, 0, 0, 0], Mode::GGTT);
        assert_eq!(addrs(&c), [(2, Width::W48, Space::Ppgtt, 7)]);
        // No post-sync, MMIO write (bit 23), store data index (bit 21).
        for dw1 in [1 << 24, qw | (1 << 23), qw | (1 << 21)] {
            assert!(one(&[pc, dw1, 0x2358, 0, 0, 0], Mode::EXECLIST)
                .addrs()
                .is_empty());
        }
        assert!(Command::decode(&[0x7a00_0003, qw, 0, 0, 0], 0, Mode::EXECLIST).is_err());
    }

    #[test]
    fn blits() {
        let color = (2 << 29) | (0x50 << 22) | (3 << 20) | 5;
        let c = one(&[color, 0, 0, 0, 0x10000, 0, 0xff], Mode::EXECLIST);
        assert_eq!(c.kind, Kind::XyColorBlt);
        assert_eq!(addrs(&c), [(4, Width::W48, Space::Ggtt, 0)]);
        assert_eq!(
            one(&[color, 0, 0, 0, 0, 0, 0], Mode::PPGTT).addrs()[0].space,
            Space::Ppgtt
        );
        let copy = (2 << 29) | (0x53 << 22) | 8;
        let c = one(&[copy, 0, 0, 0, 1, 0, 0, 0, 2, 0], Mode::EXECLIST);
        assert_eq!(c.kind, Kind::XySrcCopyBlt);
        assert_eq!(
            addrs(&c),
            [
                (4, Width::W48, Space::Ggtt, 0),
                (8, Width::W48, Space::Ggtt, 0)
            ]
        );
        let fast = 0x5080_0008; // GEN9_XY_FAST_COPY_BLT_CMD | (10 - 2)
        assert_eq!(
            one(&[fast, 0, 0, 0, 1, 0, 0, 0, 2, 0], Mode::EXECLIST).kind,
            Kind::XyFastCopyBlt
        );
        // Pre-Gen8 6-dword color blit: refused.
        assert!(Command::decode(&[color - 1, 0, 0, 0, 0, 0], 0, Mode::EXECLIST).is_err());
        // XY_PAT_BLT: addresses we do not decode, flagged opaque.
        let c = one(
            &[(2 << 29) | (0x51 << 22) | 7, 0, 0, 0, 0, 0, 0, 0, 0],
            Mode::EXECLIST,
        );
        assert_eq!(c.opaque, Some(Space::Ggtt));
        assert!(c.addrs().is_empty());
    }

    #[test]
    fn state_base_address() {
        // Gen9 form: 19 dwords; general (1), surface (4) and instruction
        // (10) modified, dynamic (6), indirect (8), bindless (16) not.
        let mut d = [0u32; 19];
        d[0] = 0x6101_0000 | 17;
        d[1] = 0x1000_0000 | (3 << 4) | 1;
        d[2] = 0x1;
        d[4] = 0x2000_0001;
        d[6] = 0x3000_0000;
        d[10] = 0x4000_0001;
        d[16] = 0x5000_0000;
        let c = one(&d, Mode::GGTT);
        assert_eq!(c.kind, Kind::StateBaseAddress);
        assert_eq!(
            addrs(&c),
            [
                (1, Width::W64, Space::Ggtt, 0xfff),
                (4, Width::W64, Space::Ggtt, 0xfff),
                (10, Width::W64, Space::Ggtt, 0xfff)
            ]
        );
        assert_eq!(c.addrs()[0].read(&d), Some(0x1_1000_0000));
        d[16] |= 1;
        assert_eq!(one(&d, Mode::GGTT).addrs().len(), 4);
        // Gen8 form: 16 dwords.
        let mut g8 = [0u32; 16];
        g8[0] = 0x6101_0000 | 14;
        g8[8] = 1;
        assert_eq!(
            addrs(&one(&g8, Mode::EXECLIST)),
            [(8, Width::W64, Space::Ppgtt, 0xfff)]
        );
        g8[0] = 0x6101_0000 | 13;
        assert!(Command::decode(&g8, 0, Mode::EXECLIST).is_err());
    }

    #[test]
    fn three_d_buffers() {
        // Two vertex buffers: the first modifies its address, the second is
        // a null buffer.
        let vb = [
            0x7808_0000 | 7,
            (1 << 14) | 64,
            0x7000,
            0,
            0x100,
            (1 << 26) | (1 << 14) | (1 << 13),
            0x8000,
            0,
            0,
        ];
        let c = one(&vb, Mode::GGTT);
        assert_eq!(c.kind, Kind::VertexBuffers);
        assert_eq!(addrs(&c), [(2, Width::W64, Space::Ggtt, 0)]);
        let mut it = Commands::with(&vb[..8], Mode::GGTT, Level::Batch);
        assert_eq!(
            it.next(),
            Some(Err(CmdError::BeyondBuffer { offset: 0, len: 9 }))
        );
        // A length that is not 1 + 4n.
        assert!(Command::decode(&[0x7808_0000 | 4, 0, 0, 0, 0, 0], 0, Mode::GGTT).is_err());
        for (dw0, len, kind) in [
            (0x780a_0003, 5, Kind::IndexBuffer),
            (0x7805_0006, 8, Kind::DepthBuffer),
            (0x7806_0003, 5, Kind::StencilBuffer),
            (0x7807_0003, 5, Kind::HierDepthBuffer),
        ] {
            let mut d = [0u32; 8];
            d[0] = dw0;
            let c = one(&d[..len], Mode::EXECLIST);
            assert_eq!(c.kind, kind);
            assert_eq!(addrs(&c), [(2, Width::W64, Space::Ppgtt, 0)]);
        }
        // 3DSTATE_CONSTANT_VS: opaque in the 3D space.
        let c = one(&[0x7815_0009, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], Mode::GGTT);
        assert_eq!(c.opaque, Some(Space::Ggtt));
        // 3DPRIMITIVE: no addresses.
        let c = one(&[0x7b00_0005, 0, 0, 0, 0, 0, 0], Mode::GGTT);
        assert_eq!((c.len, c.opaque, c.addrs().len()), (7, None, 0));
    }

    #[test]
    fn addr_ref_merge_keeps_flags() {
        let a = AddrRef {
            dword: 0,
            width: Width::W48,
            space: Space::Ggtt,
            flags: 0x7,
        };
        let mut buf = [0x1234_5004u32, 0xabcd_0001];
        assert_eq!(a.read(&buf), Some(0x1_1234_5000));
        a.write(&mut buf, 0x2_8000_0000).unwrap();
        assert_eq!(buf, [0x8000_0004, 0xabcd_0002]);
        assert_eq!(a.write(&mut buf, 0x1001), None, "bits in flag positions");
        assert_eq!(a.write(&mut buf, 1 << 48), None, "beyond 48 bits");
        assert_eq!(buf, [0x8000_0004, 0xabcd_0002], "unchanged on refusal");
        let far = AddrRef { dword: 1, ..a };
        assert_eq!(far.read(&buf), None);
        assert_eq!(far.write(&mut buf, 0), None);
    }

    #[test]
    fn walking_batches_and_rings() {
        let sdi = (0x20 << 23) | (1 << 22) | 2;
        let batch = [MI_NOOP, sdi, 0x1000, 0, 5, BB_END, 0xffff_ffff];
        let mut it = Commands::new(&batch);
        let offs: Vec<usize> = it.by_ref().map(|c| c.unwrap().offset).collect();
        assert_eq!(offs, [0, 1, 5]);
        assert_eq!(it.end(), Some(End::BatchEnd));
        assert_eq!(it.position(), 6);
        // A batch without its end.
        let r: Vec<_> = Commands::new(&batch[..5]).collect();
        assert_eq!(r.last(), Some(&Err(CmdError::Truncated { offset: 5 })));
        // A command that runs past the end.
        let r: Vec<_> = Commands::new(&batch[..3]).collect();
        assert_eq!(
            r.last(),
            Some(&Err(CmdError::BeyondBuffer { offset: 1, len: 4 }))
        );
        // Ring: ends with the slice; batch end in a ring is refused.
        let ring = [MI_NOOP, 0x1880_0001, 0x2000, 0, MI_NOOP];
        let mut it = Commands::with(&ring, Mode::EXECLIST, Level::Ring);
        assert_eq!(it.by_ref().count(), 3);
        assert_eq!(it.end(), Some(End::Exhausted));
        let r: Vec<_> = Commands::with(&[BB_END], Mode::EXECLIST, Level::Ring).collect();
        assert_eq!(r, [Err(CmdError::BadNesting { offset: 0 })]);
        // Chained start ends a batch; any start in a second-level batch is
        // refused.
        let mut it = Commands::new(&ring[1..]);
        assert_eq!(it.by_ref().count(), 1);
        assert_eq!(it.end(), Some(End::Chained));
        let r: Vec<_> = Commands::with(&ring[1..], Mode::EXECLIST, Level::SecondLevel).collect();
        assert_eq!(r, [Err(CmdError::BadNesting { offset: 0 })]);
        // Errors stop the walk.
        let bad = [0xffff_ffffu32, MI_NOOP];
        let r: Vec<_> = Commands::new(&bad).collect();
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn target_levels() {
        let c = one(&[0x1880_0001, 0, 0], Mode::EXECLIST);
        let s = one(&[0x1880_0001 | (1 << 22), 0, 0], Mode::EXECLIST);
        assert_eq!(c.target_level(Level::Ring), Some(Level::Batch));
        assert_eq!(c.target_level(Level::Batch), Some(Level::Batch));
        assert_eq!(s.target_level(Level::Batch), Some(Level::SecondLevel));
        assert_eq!(s.target_level(Level::Ring), None);
        assert_eq!(c.target_level(Level::SecondLevel), None);
    }

    #[test]
    fn never_panics_on_random_dwords() {
        let mut rng = super::super::testutil::Rng::new(0x5eed);
        for _ in 0..20_000 {
            let n = rng.below(24) as usize;
            let dws: Vec<u32> = (0..n).map(|_| rng.next_u64() as u32).collect();
            for level in [Level::Ring, Level::Batch, Level::SecondLevel] {
                let mut total = 0;
                for c in Commands::with(&dws, Mode::GGTT, level) {
                    let Ok(c) = c else { break };
                    total += c.len;
                    for a in c.addrs() {
                        assert!(a.dword + a.dwords() <= c.offset + c.len);
                        assert!(a.read(&dws).is_some());
                    }
                }
                assert!(total <= dws.len());
            }
        }
    }
}

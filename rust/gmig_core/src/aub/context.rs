// SPDX-License-Identifier: GPL-2.0

//! What an execlist context image says about a submission: its ring and
//! its PPGTT.
//!
//! A Gen8/9 context descriptor's bits 31:12 are the LRCA, the GGTT address
//! of the context image (i915's `CTX_GTT_ADDRESS_MASK`). The image's first
//! page is the per-process hardware status page; the register state is
//! the page after it, at LRCA + 4096, laid out as MI_NOOPs and
//! MI_LOAD_REGISTER_IMMs (register, value pairs) ending in
//! MI_BATCH_BUFFER_END (Mesa's `gfx8_render_context_init()` and the other
//! `gfx8_*_context_init()` of `src/intel/tools/gfx8_context.h`; i915's
//! `gt/intel_lrc.c` and the `CTX_*` indices of `gt/intel_lrc_reg.h`).
//! [`context_of`] walks that page's commands for the engine's registers at
//! [`Engine::base`](super::Engine::base) plus [`RING_HEAD`], [`RING_TAIL`], [`RING_START`],
//! [`RING_CTL`] and [`PDP0_LDW`]/[`PDP0_UDW`]; where a register is loaded
//! more than once, the last load wins, as when the hardware restores it.
//!
//! Mesa's video context image (`gfx8_video_context_init()`) loads the
//! registers of base 0x1c000 (VCS2) although Mesa submits it on VCS0
//! (base 0x12000): [`context_of`] reports such a context's registers as
//! missing rather than reading another engine's.

use super::mem::{AubMem, PageStore, PAGE, PPGTT_ADDR_MASK};
use super::Submission;

/// RING_TAIL's offset from an engine's base.
pub const RING_TAIL: u32 = 0x30;
/// RING_HEAD's offset from an engine's base.
pub const RING_HEAD: u32 = 0x34;
/// RING_START's offset from an engine's base.
pub const RING_START: u32 = 0x38;
/// RING_CTL's (RING_BUFFER_CONTROL's) offset from an engine's base.
pub const RING_CTL: u32 = 0x3c;
/// PDP0's low dword's offset from an engine's base.
pub const PDP0_LDW: u32 = 0x270;
/// PDP0's high dword's offset from an engine's base.
pub const PDP0_UDW: u32 = 0x274;
/// The head offset bits of RING_HEAD, 20:2 (i915's `HEAD_ADDR`).
pub const HEAD_ADDR: u32 = 0x001f_fffc;
/// The tail offset bits of RING_TAIL, 20:3 (i915's `TAIL_ADDR`).
pub const TAIL_ADDR: u32 = 0x001f_fff8;
/// The ring's GGTT address bits of RING_START, 31:12.
const RING_START_ADDR: u32 = 0xffff_f000;
/// A descriptor's LRCA bits, 31:12 (i915's `CTX_GTT_ADDRESS_MASK`).
const CTX_GTT_ADDRESS_MASK: u64 = 0xffff_f000;
/// A descriptor's addressing mode: bits 4:3 (`GEN8_CTX_ADDRESSING_MODE_SHIFT`).
const ADDRESSING_MODE_SHIFT: u32 = 3;
/// Addressing mode "legacy 64-bit": a 4-level PPGTT whose PML4 is in PDP0
/// (i915's `INTEL_LEGACY_64B_CONTEXT`).
const LEGACY_64B_CONTEXT: u64 = 3;
/// Register offset bits of an MI_LOAD_REGISTER_IMM's register dword.
const LRI_REG_MASK: u32 = 0x007f_fffc;
/// Dwords in the register state page.
const STATE_DWORDS: usize = PAGE / 4;

/// What an execlist context image says about a submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExeclistContext {
    /// The context image's GGTT address (descriptor bits 31:12).
    pub lrca: u64,
    /// The ring's GGTT address (RING_START bits 31:12).
    pub ring_start: u64,
    /// The ring's head: a byte offset in the ring (RING_HEAD bits 20:2,
    /// [`HEAD_ADDR`]).
    pub ring_head: u32,
    /// The ring's tail: a byte offset in the ring (RING_TAIL bits 20:3,
    /// [`TAIL_ADDR`]).
    pub ring_tail: u32,
    /// The PML4's physical address (PDP0, bits 47:12).
    pub pml4: u64,
    /// RING_CTL as loaded, if it is (bits 20:12 the ring's length in pages
    /// minus one, bit 0 enable). Mesa's render context image loads
    /// `(ring address - 4096) | 1` there, which is right only for a ring at
    /// GGTT 0x1000; Mesa's rings are 4 KiB.
    pub ring_ctl: Option<u32>,
}

/// Why a submission's context could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextError {
    /// The descriptor's addressing mode (bits 4:3) is not legacy 64-bit,
    /// so PDP0 does not hold a PML4.
    AddressingMode {
        /// The descriptor.
        descriptor: u64,
    },
    /// The register state page (LRCA + 4096) is not mapped through the
    /// GGTT, or was never written.
    NotMapped {
        /// Its graphics address.
        gma: u64,
    },
    /// A dword that is not MI_NOOP, MI_LOAD_REGISTER_IMM or
    /// MI_BATCH_BUFFER_END where the register state expects a command.
    UnexpectedCommand {
        /// Its graphics address.
        gma: u64,
        /// The dword.
        dword: u32,
    },
    /// An MI_LOAD_REGISTER_IMM with an odd number of dwords after its
    /// header, or running past the register state page.
    BadLri {
        /// Its graphics address.
        gma: u64,
        /// Its header.
        dword: u32,
    },
    /// The register state holds no MI_LOAD_REGISTER_IMM.
    NoLri {
        /// The register state's graphics address.
        gma: u64,
    },
    /// The register state does not load this register.
    MissingRegister {
        /// Its MMIO offset.
        reg: u32,
    },
}

impl core::fmt::Display for ContextError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::AddressingMode { descriptor } => write!(
                f,
                "context descriptor {descriptor:#x}: addressing mode is not legacy 64-bit (4-level PPGTT)"
            ),
            Self::NotMapped { gma } => {
                write!(f, "context register state at GGTT {gma:#x} is not mapped")
            }
            Self::UnexpectedCommand { gma, dword } => write!(
                f,
                "context register state: unexpected command {dword:#010x} at GGTT {gma:#x}"
            ),
            Self::BadLri { gma, dword } => write!(
                f,
                "context register state: malformed MI_LOAD_REGISTER_IMM {dword:#010x} at GGTT {gma:#x}"
            ),
            Self::NoLri { gma } => write!(
                f,
                "context register state at GGTT {gma:#x} holds no MI_LOAD_REGISTER_IMM"
            ),
            Self::MissingRegister { reg } => {
                write!(f, "context register state does not load register {reg:#x}")
            }
        }
    }
}

/// Reads the context image of submission `s` from `mem`: its ring and the
/// PML4 of its PPGTT, from the MI_LOAD_REGISTER_IMMs of the register state
/// page (LRCA + 4096) for `s.engine`'s registers. The walk stops at
/// MI_BATCH_BUFFER_END or the page's end.
pub fn context_of<P: PageStore, G: PageStore>(
    mem: &AubMem<P, G>,
    s: &Submission,
) -> Result<ExeclistContext, ContextError> {
    if (s.descriptor >> ADDRESSING_MODE_SHIFT) & 3 != LEGACY_64B_CONTEXT {
        return Err(ContextError::AddressingMode {
            descriptor: s.descriptor,
        });
    }
    let lrca = s.descriptor & CTX_GTT_ADDRESS_MASK;
    let state = lrca + PAGE as u64;
    let page = mem
        .ggtt_page(state)
        .ok_or(ContextError::NotMapped { gma: state })?;
    let dw = |i: usize| {
        let b = &page[4 * i..4 * i + 4];
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    };
    let base = s.engine.base();
    let wanted = [
        RING_HEAD, RING_TAIL, RING_START, RING_CTL, PDP0_LDW, PDP0_UDW,
    ]
    .map(|o| base + o);
    let mut loaded = [None; 6];
    let mut lris = 0;
    let mut i = 0;
    while i < STATE_DWORDS {
        let d = dw(i);
        let gma = state + 4 * i as u64;
        match d >> 23 {
            // MI_NOOP.
            0 => i += 1,
            // MI_BATCH_BUFFER_END.
            0x0a => break,
            // MI_LOAD_REGISTER_IMM: (dw0 & 0xff) + 2 dwords.
            0x22 => {
                let len = (d & 0xff) as usize + 2;
                if len.is_multiple_of(2) || i + len > STATE_DWORDS {
                    return Err(ContextError::BadLri { gma, dword: d });
                }
                for p in (i + 1..i + len).step_by(2) {
                    let reg = dw(p) & LRI_REG_MASK;
                    if let Some(k) = wanted.iter().position(|&w| w == reg) {
                        loaded[k] = Some(dw(p + 1));
                    }
                }
                lris += 1;
                i += len;
            }
            _ => return Err(ContextError::UnexpectedCommand { gma, dword: d }),
        }
    }
    if lris == 0 {
        return Err(ContextError::NoLri { gma: state });
    }
    let get = |k: usize| loaded[k].ok_or(ContextError::MissingRegister { reg: wanted[k] });
    let ring_head = get(0)? & HEAD_ADDR;
    let ring_tail = get(1)? & TAIL_ADDR;
    let ring_start = u64::from(get(2)? & RING_START_ADDR);
    let pml4 = (u64::from(get(5)?) << 32 | u64::from(get(4)?)) & PPGTT_ADDR_MASK;
    Ok(ExeclistContext {
        lrca,
        ring_start,
        ring_head,
        ring_tail,
        pml4,
        ring_ctl: loaded[3],
    })
}

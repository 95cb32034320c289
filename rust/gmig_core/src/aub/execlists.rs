// SPDX-License-Identifier: GPL-2.0

//! Execlist submissions of an AUB file: the context descriptors that ELSP
//! register writes submit, after Mesa's `handle_memtrace_reg_write()`
//! (`src/intel/tools/aub_read.c`).

/// Engines whose execlist submissions [`Execlists`] tracks (Gen8/9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// RCS, MMIO base 0x2000.
    Render,
    /// VCS (VCS0), MMIO base 0x12000.
    Video,
    /// VECS, MMIO base 0x1a000.
    VideoEnhance,
    /// VCS2 (VCS1), MMIO base 0x1c000.
    Video2,
    /// BCS, MMIO base 0x22000.
    Blitter,
}

impl Engine {
    /// Every engine, in [`Engine::index`] order.
    pub const ALL: [Self; 5] = [
        Self::Render,
        Self::Video,
        Self::VideoEnhance,
        Self::Video2,
        Self::Blitter,
    ];

    /// The engine's MMIO base (i915's `RENDER_RING_BASE`, `GEN6_BSD_RING_BASE`,
    /// `VEBOX_RING_BASE`, `GEN8_BSD2_RING_BASE`, `BLT_RING_BASE`).
    pub const fn base(self) -> u32 {
        match self {
            Self::Render => 0x2000,
            Self::Video => 0x12000,
            Self::VideoEnhance => 0x1a000,
            Self::Video2 => 0x1c000,
            Self::Blitter => 0x22000,
        }
    }

    /// Position in [`Engine::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// Offset of the execlist submit port (ELSP) from an engine's base
/// (Mesa's `EXECLIST_SUBMITPORT`).
pub const EXECLIST_SUBMITPORT: u32 = 0x230;
/// Offset of the execlist status register from an engine's base.
pub const EXECLIST_STATUS: u32 = 0x234;

/// One execlist submission: element 0 of an ELSP write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Submission {
    /// The engine submitted to.
    pub engine: Engine,
    /// Element 0's context descriptor: `(third write << 32) | fourth`.
    pub descriptor: u64,
    /// Element 1's descriptor, `(first write << 32) | second` (0 when
    /// only one context is submitted, as `intel_dump_gpu` always does;
    /// Mesa's reader ignores it).
    pub element1: u64,
}

/// Execlist submission tracking (Mesa's `handle_memtrace_reg_write()`):
/// the ELSP of Gen8/9 engines ([`Engine::base`] + [`EXECLIST_SUBMITPORT`])
/// takes four dword writes; the fourth submits. Gen11+ submissions (the
/// ELSQ registers at base + 0x510/0x514 and `EXECLIST_CONTROL` at base +
/// 0x550, which Mesa's reader also follows) are not tracked: gmig models
/// Gen8/9, and a Gen11+ trace is recognised by its [`Packet::Header`](super::Packet::Header) PCI
/// id.
#[derive(Debug, Clone, Default)]
pub struct Execlists {
    /// The writes so far of each engine's pending submission.
    elsp: [[u32; 4]; 5],
    /// How many writes each engine's pending submission has.
    count: [u8; 5],
}

impl Execlists {
    /// Records a register write; the submission it completes, if any.
    pub fn reg_write(&mut self, reg: u32, value: u32) -> Option<Submission> {
        let engine = Engine::ALL
            .into_iter()
            .find(|e| e.base() + EXECLIST_SUBMITPORT == reg)?;
        let i = engine.index();
        let n = usize::from(self.count[i]);
        self.elsp[i][n] = value;
        if n < 3 {
            self.count[i] += 1;
            return None;
        }
        self.count[i] = 0;
        let w = self.elsp[i];
        Some(Submission {
            engine,
            descriptor: u64::from(w[2]) << 32 | u64::from(w[3]),
            element1: u64::from(w[0]) << 32 | u64::from(w[1]),
        })
    }
}

// SPDX-License-Identifier: GPL-2.0

//! BAR0 layout of the sim vGPU.
//!
//! BAR0 is 16 MiB, as a Gen9 GTTMMADR: the lower 1 MiB holds MMIO
//! registers, the upper 15 MiB the GGTT (1966080 64-bit entries, a 7.5 GiB
//! global graphics address space, of which the parent uses the first 4 GiB). A vGPU owns only the entries of its
//! partition; writes to other entries are dropped and counted, as GVT-g does
//! for ballooned ranges. The PVINFO page at 0x78000 follows i915's
//! `struct vgt_if` and tells the guest where its partition is.
//!
//! Render-engine registers use the Gen9 RCS offsets (`RING_*` at 0x2000).

/// Size of BAR0 (registers, then a GGTT of 7.5 GiB of entries, of which
/// the parent uses the first 4 GiB, as on Gen9).
pub const BAR0_SIZE: u64 = 16 << 20;
/// Start of the GGTT in BAR0.
pub const GGTT_OFFSET: u64 = 1 << 20;
/// Size of the global graphics address space the GGTT maps.
pub const GGTT_SPACE: u64 = (BAR0_SIZE - GGTT_OFFSET) / 8 * 4096;

/// Ring buffer tail (byte offset), legacy ring registers (read-only view of
/// the running context).
pub const RING_TAIL: u64 = 0x2030;
/// Ring buffer head.
pub const RING_HEAD: u64 = 0x2034;
/// Ring buffer start (GGTT address).
pub const RING_START: u64 = 0x2038;
/// Ring control (size).
pub const RING_CTL: u64 = 0x203c;
/// Render interrupt mask.
pub const RCS_IMR: u64 = 0x20a8;
/// Execlist submit port: four 32-bit writes, element 1 high/low then
/// element 0 high/low; the fourth write submits.
pub const ELSP: u64 = 0x2230;
/// Execlist status, low dword (bit 0: busy; bits 31:16 completed count).
pub const EXECLIST_STATUS_LO: u64 = 0x2234;
/// Execlist status, high dword (context id of the last completed context).
pub const EXECLIST_STATUS_HI: u64 = 0x2238;
/// Context status buffer: 6 entries of 2 dwords.
pub const CSB: u64 = 0x2370;
/// Number of CSB entries.
pub const CSB_ENTRIES: usize = 6;
/// CSB pointers: bits 2:0 write pointer, bits 10:8 read pointer (guest).
pub const CSB_PTR: u64 = 0x23a0;
/// gmig: fault status (0 = none; else a [`super::exec::FaultKind`] code).
pub const FAULT_STATUS: u64 = 0x2400;
/// gmig: faulting graphics address, low dword.
pub const FAULT_ADDR_LO: u64 = 0x2404;
/// gmig: faulting graphics address, high dword.
pub const FAULT_ADDR_HI: u64 = 0x2408;
/// gmig: byte offset in the ring or batch of the faulting command.
pub const FAULT_OFFSET: u64 = 0x240c;
/// Render interrupt identity (write 1 to clear).
pub const RCS_IIR: u64 = 0x44308;
/// GEN8 master interrupt control: bit 31 enables interrupts.
pub const MASTER_IRQ: u64 = 0x44200;
/// Context-switch (complete) interrupt bit in [`RCS_IIR`].
pub const IIR_CTX_SWITCH: u32 = 1 << 8;
/// MI_USER_INTERRUPT bit in [`RCS_IIR`].
pub const IIR_USER: u32 = 1 << 0;

/// PVINFO page (i915 `struct vgt_if`).
pub const PVINFO: u64 = 0x78000;
/// `vgt_if.magic`, "VGTiVGTi".
pub const PVINFO_MAGIC: u64 = 0x4776_5447_7654_4776;
/// Offset of `version_major`/`version_minor` (u16 each).
pub const PVINFO_VERSION: u64 = PVINFO + 0x8;
/// Offset of `vgt_id`.
pub const PVINFO_VGT_ID: u64 = PVINFO + 0xc;
/// Offset of `vgt_caps`.
pub const PVINFO_CAPS: u64 = PVINFO + 0x10;
/// `avail_rs.mappable_gmadr.base`.
pub const PVINFO_GM_BASE: u64 = PVINFO + 0x40;
/// `avail_rs.mappable_gmadr.size`.
pub const PVINFO_GM_SIZE: u64 = PVINFO + 0x44;
/// `avail_rs.nonmappable_gmadr.base`.
pub const PVINFO_HGM_BASE: u64 = PVINFO + 0x48;
/// `avail_rs.nonmappable_gmadr.size`.
pub const PVINFO_HGM_SIZE: u64 = PVINFO + 0x4c;
/// `avail_rs.fence_num`.
pub const PVINFO_FENCE_NUM: u64 = PVINFO + 0x50;
/// End of the PVINFO page.
pub const PVINFO_END: u64 = PVINFO + 0x1000;

/// Render context control (i915's `RING_CONTEXT_CONTROL`, engine base +
/// 0x244): the one register besides [`RCS_IMR`] and [`RING_CTL`] a guest
/// batch may load with MI_LOAD_REGISTER_IMM.
pub const CTX_CONTROL: u64 = 0x2244;

crate::bitfield! {
    /// An execlist context descriptor, as written to [`ELSP`].
    pub struct ContextDescriptor(u64) {
        /// Context id, reported in the CSB and [`EXECLIST_STATUS_HI`].
        63:32 ctx_id, with_ctx_id;
        /// GGTT page of the logical ring context image (LRCA >> 12).
        31:12 lrca_page, with_lrca_page;
    }
}

impl ContextDescriptor {
    /// GGTT address of the context image (LRCA).
    pub const fn lrca(self) -> u64 {
        self.lrca_page() << 12
    }

    /// This descriptor pointing at the context image at `lrca`.
    #[must_use]
    pub const fn with_lrca(self, lrca: u64) -> Self {
        self.with_lrca_page(lrca >> 12)
    }
}

crate::bitfield! {
    /// [`EXECLIST_STATUS_LO`].
    pub struct ExeclistStatus(u32) {
        /// Contexts are queued or running.
        0:0 busy, with_busy;
        /// Contexts completed (wraps at 16 bits).
        31:16 completed, with_completed;
    }
}

crate::bitfield! {
    /// [`CSB_PTR`].
    pub struct CsbPtr(u32) {
        /// Last entry the vGPU wrote (vGPU-owned).
        2:0 write, with_write;
        /// Last entry the guest read (guest-owned).
        10:8 read, with_read;
    }
}

crate::bitfield! {
    /// [`MASTER_IRQ`].
    pub struct MasterIrq(u32) {
        /// Interrupts are enabled.
        31:31 enable, with_enable;
    }
}

crate::bitfield! {
    /// The status dword of a CSB entry.
    pub struct CsbStatus(u32) {
        /// The context completed (or stopped at a fault).
        4:4 complete, with_complete;
        /// gmig: the context stopped at a fault ([`FAULT_STATUS`] says which).
        31:31 fault, with_fault;
    }
}

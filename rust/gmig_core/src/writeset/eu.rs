// SPDX-License-Identifier: GPL-2.0

//! What a Gen9 shader kernel may write: the binding-table entries and the
//! scratch space its messages write, read from the kernel's instructions.
//!
//! A draw or a dispatch writes memory only through its shader kernels'
//! SEND messages to the shared functions (render targets, data-port surface
//! writes and atomics, scratch spills). [`kernel_writes`] walks a kernel
//! from its first instruction to its end and classifies every send by its
//! shared function (SFID) and message descriptor, as Mesa's disassembler
//! does for Gen9 (`brw_disassemble_inst` in `brw_disasm.c`, Mesa 25.0.7):
//!
//! | SFID | messages | write |
//! | --- | --- | --- |
//! | sampler (2), URB (6), thread spawner (7), DP sampler cache (4), DP constant cache (9), pixel interpolator (11) | all | none |
//! | gateway (3) | open, close, forward, timestamp, barrier, update state | none; MMIO read/write and unknown: unbounded |
//! | render cache (5) | RT write (12) | its BTI |
//! | render cache (5) | RT read (13) | none; anything else: unbounded |
//! | DC0 (10) | OWORD block / unaligned / dual block read, DWORD / byte scattered read (0-4), fence (7), scratch block read | none |
//! | DC0 (10) | OWORD block write (8), OWORD dual block write (10), DWORD / byte scattered write (11, 12) | its BTI (see below) |
//! | DC0 (10) | scratch block write (category 1) and types 5, 6, 9, 13-15 | unbounded |
//! | DC1 (12) | untyped / typed surface read (1, 5), media block read (4), A64 scattered / untyped / OWORD block read (0x10, 0x11, 0x14) | none |
//! | DC1 (12) | untyped atomic (2, 3), untyped surface write (9), untyped atomic float (0x1b) | its BTI, SLM excepted |
//! | DC1 (12) | typed atomic (6, 7), media block write (10), atomic counter (11, 12), typed surface write (13) | its BTI |
//! | DC1 (12) | A64 atomic / OWORD block write / untyped write / scattered write / atomic float (0x12, 0x15, 0x19, 0x1a, 0x1d), unknown types | unbounded |
//! | any other SFID (null, VME, CRE, ...) | | unbounded |
//!
//! A data-port write's binding table index (descriptor bits 7:0) is
//! written unless it is special (`brw_eu_defines.h`): BTI 254
//! (`GFX7_BTI_SLM`, shared local memory, on chip) writes nothing for the
//! untyped messages (typed ones are unbounded); BTI 252 (bindless) is
//! unbounded; BTIs 253 and 255 (A32 stateless) are unbounded except for
//! Mesa's spills.
//!
//! # Scratch
//!
//! Mesa 25 spills on Gen9 (`brw_reg_alloc::emit_spill` in
//! `brw_reg_allocate.cpp`, the pre-LSC branch) with a DC0 OWORD block
//! write to BTI 253 (`GFX8_BTI_STATELESS_NON_COHERENT`) whose header
//! `build_legacy_scratch_header` builds just before it (the sequence
//! `generate_scratch_header` in `brw_generator.cpp` emits, then the
//! offset):
//!
//! ```text
//! mov(8) gN<1>UD 0x0UD            { WE_all }
//! and(1) gN.3<1>UD g0.3<0,1,0>UD 0xfUD        { WE_all }
//! and(1) gN.5<1>UD g0.5<0,1,0>UD 0xfffffc00UD { WE_all }
//! mov(1) gN.2<1>UD <offset in OWORDs>UD        { WE_all }
//! send(s) ... gN ... (DC OWORD block write, bti 253)
//! ```
//!
//! Such a write lands in the thread's scratch space (g0.5 holds the
//! thread's scratch pointer) at the header's offset: [`KernelWrites::scratch`]
//! is set and [`KernelWrites::scratch_end`] bounds the bytes reached. Any
//! other stateless write (Mesa's `nir_var_function_temp` scratch uses DWORD
//! or byte scattered writes with per-lane offsets) is unbounded. The proof
//! holds only if no instruction between the header's first write and the
//! send is a jump target (execution could enter with another header),
//! nothing writes g0.5 anywhere in the kernel, and no instruction writes a
//! register-indirect destination.
//!
//! # The end of a kernel
//!
//! Mesa ends every kernel with an EOT send. The walk stops at the first
//! EOT send (predicated or not: see `is_eot`) that lies at or past every jump target seen
//! before it (JIP/UIP of `if`, `else`, `endif`, `while`, `break`, `cont`,
//! `halt`, `jmpi`; `brw_label_assembly` in `brw_eu.c`: byte offsets from
//! the jumping instruction on Gen8+). `call`, `calla`, `ret`, `goto`,
//! `brd`, `brc`, register-indirect jumps and writes to the IP register make
//! the kernel unbounded, as does a jump into the middle of an instruction
//! or a kernel longer than [`MAX_KERNEL_BYTES`].
//!
//! Compacted (8-byte) instructions are expanded as Mesa's
//! `brw_uncompact_instruction` does for Gen9 (`brw_eu_compact.c`, the
//! `gfx8_*` tables). Field positions are `brw_eu_inst.h`'s for Gen9.

/// Bytes of a kernel scanned at most; a longer one is unbounded.
pub const MAX_KERNEL_BYTES: u64 = 256 << 10;

/// Distinct jump targets a kernel may have; more make it unbounded.
pub const MAX_JUMP_TARGETS: usize = 256;

/// What a Gen9 shader kernel may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KernelWrites {
    /// Binding table indices (0..=255) the kernel may write through, as a bitmap.
    pub bti: [u64; 4],
    /// The kernel writes its per-thread scratch space: Mesa 25's Gen9
    /// spills, DC0 OWORD block writes to the stateless BTI 253 (or 255)
    /// whose header is built from g0.5 (see the module documentation).
    pub scratch: bool,
    /// Bytes from the start of the thread's scratch space that the scratch
    /// writes reach (0 without them). A caller whose per-thread scratch
    /// space is smaller must treat the kernel as unbounded.
    pub scratch_end: u64,
    /// Why the kernel's writes cannot be bounded, if they cannot.
    pub unbounded: Option<&'static str>,
}

impl KernelWrites {
    /// Whether the kernel may write through binding table index `i`.
    pub fn writes_bti(&self, i: u8) -> bool {
        self.bti[usize::from(i / 64)] & 1 << (i % 64) != 0
    }

    fn set_bti(&mut self, i: u8) {
        self.bti[usize::from(i / 64)] |= 1 << (i % 64);
    }

    fn unbounded(reason: &'static str) -> Self {
        Self {
            unbounded: Some(reason),
            ..Self::default()
        }
    }
}

crate::bitfield! {
    /// A native (16-byte) Gen9 instruction; fields after `brw_eu_inst.h`
    /// (the `/* 9+ */` positions).
    struct Inst(u128) {
        /// `hw_opcode`.
        6:0 opcode, with_opcode;
        /// `access_mode` (1: align16).
        8:8 align16, with_align16;
        /// `pred_control`.
        19:16 pred, with_pred;
        /// `exec_size` (log2 of the channels).
        23:21 exec_size, with_exec_size;
        /// `sfid` (sends).
        27:24 sfid, with_sfid;
        /// `cmpt_control`.
        29:29 compact, with_compact;
        /// `saturate`.
        31:31 saturate, with_saturate;
        /// `mask_control` (1: WE_all).
        34:34 we_all, with_we_all;
        /// `dst_reg_file` (0 ARF, 1 GRF).
        36:35 dst_file, with_dst_file;
        /// `send_dst_reg_file` (sends: one bit).
        35:35 sends_dst_file, with_sends_dst_file;
        /// `dst_reg_hw_type`.
        40:37 dst_type, with_dst_type;
        /// `src0_reg_file` (3: immediate).
        42:41 src0_file, with_src0_file;
        /// `src0_reg_hw_type`.
        46:43 src0_type, with_src0_type;
        /// `dst_da1_subreg_nr` (bytes).
        52:48 dst_subreg, with_dst_subreg;
        /// `dst_da16_subreg_nr` (16-byte units).
        52:52 dst_subreg16, with_dst_subreg16;
        /// `dst_da_reg_nr`.
        60:53 dst_reg, with_dst_reg;
        /// `send_sel_reg32_ex_desc` (sends: extended descriptor in a0).
        61:61 sends_ex_desc_reg, with_sends_ex_desc_reg;
        /// `dst_hstride`.
        62:61 dst_hstride, with_dst_hstride;
        /// `dst_address_mode` (1: register-indirect).
        63:63 dst_indirect, with_dst_indirect;
        /// `3src_dst_reg_nr`.
        63:56 dst3_reg, with_dst3_reg;
        /// `3src_a16_dst_subreg_nr` (dwords).
        55:53 dst3_subreg, with_dst3_subreg;
        /// `3src_a16_dst_hw_type`.
        48:46 dst3_type, with_dst3_type;
        /// `src0_da1_subreg_nr` (bytes).
        68:64 src0_subreg, with_src0_subreg;
        /// `src0_da_reg_nr`.
        76:69 src0_reg, with_src0_reg;
        /// `src0_abs` and `src0_negate`.
        78:77 src0_mods, with_src0_mods;
        /// `src0_address_mode` (also `send_src0_address_mode`).
        79:79 src0_indirect, with_src0_indirect;
        /// `send_sel_reg32_desc` (sends: descriptor in a0).
        77:77 sends_desc_reg, with_sends_desc_reg;
        /// `src1_reg_file` (3: immediate).
        90:89 src1_file, with_src1_file;
        /// `uip` (bytes from this instruction).
        95:64 uip, with_uip;
        /// `jip`, `imm_ud` and the send descriptor (`send_desc`, 31 bits).
        127:96 imm, with_imm;
        /// `send_desc`.
        126:96 desc, with_desc;
        /// `eot`.
        127:127 eot, with_eot;
    }
}

crate::bitfield! {
    /// A Gen9 message descriptor (`brw_eu.h`'s `brw_*_desc_*` helpers).
    struct Desc(u32) {
        /// `brw_dp_desc_binding_table_index`, `brw_fb_desc_binding_table_index`.
        7:0 bti, with_bti;
        /// `brw_dp_desc_msg_control`.
        13:8 msg_control, with_msg_control;
        /// `brw_dp_desc_msg_type` (bit 18 is DC0's category).
        18:14 dp_msg_type, with_dp_msg_type;
        /// `brw_fb_desc_msg_type`.
        17:14 fb_msg_type, with_fb_msg_type;
        /// `brw_message_desc_header_present`.
        19:19 header, with_header;
        /// `brw_message_desc_rlen`.
        24:20 rlen, with_rlen;
        /// `brw_message_desc_mlen`.
        28:25 mlen, with_mlen;
    }
}

/// Gen9 hardware opcodes (`opcode_descs` in `brw_eu.c`).
mod op {
    pub(super) const MOV: u128 = 1;
    pub(super) const AND: u128 = 5;
    pub(super) const JMPI: u128 = 32;
    pub(super) const IF: u128 = 34;
    pub(super) const ELSE: u128 = 36;
    pub(super) const ENDIF: u128 = 37;
    pub(super) const WHILE: u128 = 39;
    pub(super) const BREAK: u128 = 40;
    pub(super) const CONT: u128 = 41;
    pub(super) const HALT: u128 = 42;
    pub(super) const SEND: u128 = 49;
    pub(super) const SENDC: u128 = 50;
    pub(super) const SENDS: u128 = 51;
    pub(super) const SENDSC: u128 = 52;
    pub(super) const NOP: u128 = 126;
}

/// What an opcode is to the walk.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// One destination in the align1/align16 two-source layout.
    Alu,
    /// One destination in the three-source (align16) layout.
    Alu3,
    /// `send`/`sendc`: descriptor in src1.
    Send,
    /// `sends`/`sendsc`: split send.
    Sends,
    /// JIP and UIP.
    JipUip,
    /// JIP only.
    Jip,
    /// `jmpi`: src1 is the jump.
    Jmpi,
    /// No destination, no jump.
    Nop,
    /// The walk cannot follow it.
    Bad(&'static str),
}

/// The Gen9 rows of `opcode_descs` (`brw_eu.c`).
fn kind(opcode: u128) -> Kind {
    match opcode {
        // mov sel movi not and or xor shr shl asr cmp cmpn bfrev bfi1
        1..=9 | 12 | 16 | 17 | 23 | 25 => Kind::Alu,
        // csel bfe bfi2 mad lrp madm
        18 | 24 | 26 | 91..=93 => Kind::Alu3,
        // wait (the notification register), math, add..subb, dp4..dp2,
        // line, pln
        48 | 56 | 64..=79 | 84..=87 | 89 | 90 => Kind::Alu,
        op::SEND | op::SENDC => Kind::Send,
        op::SENDS | op::SENDSC => Kind::Sends,
        op::IF | op::ELSE | op::BREAK | op::CONT | op::HALT => Kind::JipUip,
        op::ENDIF | op::WHILE => Kind::Jip,
        op::JMPI => Kind::Jmpi,
        op::NOP => Kind::Nop,
        33 | 35 => Kind::Bad("brd/brc branch"),
        43..=45 => Kind::Bad("call, calla or ret"),
        46 => Kind::Bad("goto"),
        _ => Kind::Bad("unknown opcode"),
    }
}

/// `gfx8_control_index_table` (`brw_eu_compact.c`).
const CONTROL: [u32; 32] = [
    0b0000000000000000010,
    0b0000100000000000000,
    0b0000100000000000001,
    0b0000100000000000010,
    0b0000100000000000011,
    0b0000100000000000100,
    0b0000100000000000101,
    0b0000100000000000111,
    0b0000100000000001000,
    0b0000100000000001001,
    0b0000100000000001101,
    0b0000110000000000000,
    0b0000110000000000001,
    0b0000110000000000010,
    0b0000110000000000011,
    0b0000110000000000100,
    0b0000110000000000101,
    0b0000110000000000111,
    0b0000110000000001001,
    0b0000110000000001101,
    0b0000110000000010000,
    0b0000110000100000000,
    0b0001000000000000000,
    0b0001000000000000010,
    0b0001000000000000100,
    0b0001000000100000000,
    0b0010110000000000000,
    0b0010110000000010000,
    0b0011000000000000000,
    0b0011000000100000000,
    0b0101000000000000000,
    0b0101000000100000000,
];

/// `gfx8_datatype_table`.
const DATATYPE: [u32; 32] = [
    0b001000000000000000001,
    0b001000000000001000000,
    0b001000000000001000001,
    0b001000000000011000001,
    0b001000000000101011101,
    0b001000000010111011101,
    0b001000000011101000001,
    0b001000000011101000101,
    0b001000000011101011101,
    0b001000001000001000001,
    0b001000011000001000000,
    0b001000011000001000001,
    0b001000101000101000101,
    0b001000111000101000100,
    0b001000111000101000101,
    0b001011100011101011101,
    0b001011101011100011101,
    0b001011101011101011100,
    0b001011101011101011101,
    0b001011111011101011100,
    0b000000000010000001100,
    0b001000000000001011101,
    0b001000000000101000101,
    0b001000001000001000000,
    0b001000101000101000100,
    0b001000111000100000100,
    0b001001001001000001001,
    0b001010111011101011101,
    0b001011111011101011101,
    0b001001111001101001100,
    0b001001001001001001000,
    0b001001011001001001000,
];

/// `gfx8_subreg_table`.
const SUBREG: [u32; 32] = [
    0b000000000000000,
    0b000000000000001,
    0b000000000001000,
    0b000000000001111,
    0b000000000010000,
    0b000000010000000,
    0b000000100000000,
    0b000000110000000,
    0b000001000000000,
    0b000001000010000,
    0b000001010000000,
    0b001000000000000,
    0b001000000000001,
    0b001000010000001,
    0b001000010000010,
    0b001000010000011,
    0b001000010000100,
    0b001000010000111,
    0b001000010001000,
    0b001000010001110,
    0b001000010001111,
    0b001000110000000,
    0b001000111101000,
    0b010000000000000,
    0b010000110000000,
    0b011000000000000,
    0b011110010000111,
    0b100000000000000,
    0b101000000000000,
    0b110000000000000,
    0b111000000000000,
    0b111000000011100,
];

/// `gfx8_src_index_table` (both sources).
const SRC_INDEX: [u32; 32] = [
    0b000000000000,
    0b000000000010,
    0b000000010000,
    0b000000010010,
    0b000000011000,
    0b000000100000,
    0b000000101000,
    0b000001001000,
    0b000001010000,
    0b000001110000,
    0b000001111000,
    0b001100000000,
    0b001100000010,
    0b001100001000,
    0b001100010000,
    0b001100010010,
    0b001100100000,
    0b001100101000,
    0b001100111000,
    0b001101000000,
    0b001101000010,
    0b001101001000,
    0b001101010000,
    0b001101100000,
    0b001101101000,
    0b001101110000,
    0b001101110001,
    0b001101111000,
    0b010001101000,
    0b010001101001,
    0b010001101010,
    0b010110001000,
];

/// `gfx8_3src_control_index_table`.
const CONTROL_3SRC: [u32; 4] = [
    0b00100000000110000000000001,
    0b00000000000110000000000001,
    0b00000000001000000000000001,
    0b00000000001000000000100001,
];

/// `gfx8_3src_source_index_table`.
const SOURCE_3SRC: [u64; 4] = [
    0b0000001110010011100100111001000001111000000000000,
    0b0000001110010011100100111001000001111000000000010,
    0b0000001110010011100100111001000001111000000001000,
    0b0000001110010011100100111001000001111000000100000,
];

/// Bits `hi:lo` of a compacted instruction.
fn cbits(c: u64, hi: u32, lo: u32) -> u128 {
    u128::from(c >> lo & (u64::MAX >> (63 - (hi - lo))))
}

/// Sets bits `hi:lo` of `i` to the low bits of `v` (`brw_eu_inst_set_bits`).
fn set(i: &mut u128, hi: u32, lo: u32, v: u128) {
    let mask = (u128::MAX >> (127 - (hi - lo))) << lo;
    *i = (*i & !mask) | ((v << lo) & mask);
}

/// Sets `(hi, lo, shift)` fields of `i` to `v >> shift` each: a table
/// entry spread over the instruction as Mesa's `set_uncompacted_*` do.
fn scatter(i: &mut u128, v: u128, fields: &[(u32, u32, u32)]) {
    for &(hi, lo, shift) in fields {
        set(i, hi, lo, v >> shift);
    }
}

/// Copies compacted bits `(chi, clo)` to instruction bits `(hi, lo)`.
fn copy(i: &mut u128, c: u64, fields: &[(u32, u32, u32, u32)]) {
    for &(hi, lo, chi, clo) in fields {
        set(i, hi, lo, cbits(c, chi, clo));
    }
}

/// A compacted Gen9 instruction expanded as `uncompact_instruction` and
/// `brw_uncompact_3src_instruction` do (`devinfo->ver == 9`).
fn uncompact(c: u64) -> Inst {
    let mut i = 0u128;
    let opcode = cbits(c, 6, 0);
    set(&mut i, 6, 0, opcode);
    if kind(opcode) == Kind::Alu3 {
        // set_uncompacted_3src_control_index
        let ctrl = u128::from(CONTROL_3SRC[cbits(c, 9, 8) as usize]);
        scatter(&mut i, ctrl, &[(34, 32, 21), (28, 8, 0), (36, 35, 24)]);
        // set_uncompacted_3src_source_index
        let src = u128::from(SOURCE_3SRC[cbits(c, 11, 10) as usize]);
        let src_fields = [
            (83, 83, 43),
            (114, 107, 35),
            (93, 86, 27),
            (72, 65, 19),
            (55, 37, 0),
            (126, 125, 47),
            (105, 104, 45),
            (84, 84, 44),
        ];
        scatter(&mut i, src, &src_fields);
        // dst_reg_nr, src0_rep_ctrl, debug_control, saturate,
        // src1/src2_rep_ctrl, src0/src1/src2_reg_nr
        let fields = [
            (63, 56, 18, 12),
            (64, 64, 28, 28),
            (30, 30, 30, 30),
            (31, 31, 31, 31),
            (85, 85, 32, 32),
            (106, 106, 33, 33),
            (83, 76, 49, 43),
            (104, 97, 56, 50),
            (125, 118, 63, 57),
        ];
        copy(&mut i, c, &fields);
        // brw_eu_inst_set_3src_a16_srcN_subreg_nr
        for (base, field) in [(64, 34), (85, 37), (106, 40)] {
            let v = cbits(c, field + 2, field);
            scatter(
                &mut i,
                v,
                &[(base + 11, base + 9, 2), (base + 20, base + 20, 1)],
            );
        }
        return Inst(i);
    }
    // debug_control, then set_uncompacted_control, _datatype, _subreg, _src0
    copy(&mut i, c, &[(7, 7, 7, 7)]);
    let ctrl = u128::from(CONTROL[cbits(c, 12, 8) as usize]);
    let ctrl_fields = [
        (33, 31, 16),
        (23, 12, 4),
        (10, 9, 2),
        (34, 34, 1),
        (8, 8, 0),
    ];
    scatter(&mut i, ctrl, &ctrl_fields);
    let dt = u128::from(DATATYPE[cbits(c, 17, 13) as usize]);
    scatter(&mut i, dt, &[(63, 61, 18), (94, 89, 12), (46, 35, 0)]);
    let sr = u128::from(SUBREG[cbits(c, 22, 18) as usize]);
    scatter(&mut i, sr, &[(100, 96, 10), (68, 64, 5), (52, 48, 0)]);
    let src0 = u128::from(SRC_INDEX[cbits(c, 34, 30) as usize]);
    set(&mut i, 88, 77, src0);
    let inst = Inst(i);
    // has_immediate: an immediate source of a valid type (brw_type_decode
    // for IMM knows hardware types 0..=11 on Gfx8-9).
    let imm = (inst.src0_file() == 3 && inst.src0_type() <= 11)
        || (inst.src1_file() == 3 && (i >> 91 & 0xf) <= 11);
    if imm {
        // uncompact_immediate: the 13-bit value, sign-extended.
        let v = (cbits(c, 39, 35) << 8 | cbits(c, 63, 56)) as u32;
        set(&mut i, 127, 96, u128::from(((v << 19) as i32 >> 19) as u32));
    } else {
        let src1 = u128::from(SRC_INDEX[cbits(c, 39, 35) as usize]);
        set(&mut i, 120, 109, src1);
        copy(&mut i, c, &[(108, 101, 63, 56)]); // src1_da_reg_nr
    }
    // acc_wr_control, cond_modifier, dst_da_reg_nr, src0_da_reg_nr
    let fields = [
        (28, 28, 23, 23),
        (27, 24, 27, 24),
        (60, 53, 47, 40),
        (76, 69, 55, 48),
    ];
    copy(&mut i, c, &fields);
    Inst(i)
}

/// Reads the instruction at `off`: the instruction and its size.
fn read(
    fetch: &mut impl FnMut(u64, &mut [u8; 16]) -> bool,
    off: u64,
) -> Result<(Inst, u64), &'static str> {
    if off >= MAX_KERNEL_BYTES {
        return Err("kernel longer than MAX_KERNEL_BYTES");
    }
    let mut b = [0u8; 16];
    if !fetch(off, &mut b) {
        return Err("kernel not readable");
    }
    let v = u128::from_le_bytes(b);
    if Inst(v).compact() != 0 {
        Ok((uncompact(v as u64), 8))
    } else {
        Ok((Inst(v), 16))
    }
}

/// Jump targets, sorted, in kernel byte offsets.
struct Targets {
    t: [u32; MAX_JUMP_TARGETS],
    n: usize,
}

impl Targets {
    fn find(&self, off: u64) -> Result<usize, usize> {
        self.t[..self.n].binary_search_by(|&t| u64::from(t).cmp(&off))
    }

    fn contains(&self, off: u64) -> bool {
        self.find(off).is_ok()
    }

    /// Whether a target lies strictly inside `(off, end)`.
    fn inside(&self, off: u64, end: u64) -> bool {
        let i = match self.find(off) {
            Ok(i) => i + 1,
            Err(i) => i,
        };
        i < self.n && u64::from(self.t[i]) < end
    }

    fn max(&self) -> u64 {
        if self.n == 0 {
            0
        } else {
            u64::from(self.t[self.n - 1])
        }
    }

    fn add(&mut self, target: i64) -> Result<(), &'static str> {
        if !(0..MAX_KERNEL_BYTES as i64).contains(&target) {
            return Err("jump outside the kernel");
        }
        if let Err(i) = self.find(target as u64) {
            if self.n == MAX_JUMP_TARGETS {
                return Err("too many jump targets");
            }
            self.t.copy_within(i..self.n, i + 1);
            self.t[i] = target as u32;
            self.n += 1;
        }
        Ok(())
    }
}

/// The jump targets of a flow-control instruction at `off`
/// (`brw_label_assembly`): each is passed to `f`.
fn jumps(
    inst: Inst,
    off: u64,
    mut f: impl FnMut(i64) -> Result<(), &'static str>,
) -> Result<(), &'static str> {
    let rel = |v: u128| off as i64 + i64::from(v as u32 as i32);
    match kind(inst.opcode()) {
        Kind::JipUip => {
            f(rel(inst.imm()))?;
            f(rel(inst.uip()))
        }
        Kind::Jip => f(rel(inst.imm())),
        Kind::Jmpi => {
            // Mesa 25 emits no jmpi for Gen9 (brw_JMPI has no caller); the
            // immediate is taken both from this instruction and from the
            // next one.
            if inst.src1_file() != 3 {
                return Err("register-indirect jmpi");
            }
            f(rel(inst.imm()))?;
            f(rel(inst.imm()) + 16)
        }
        Kind::Bad(why) => Err(why),
        _ => Ok(()),
    }
}

/// `BRW_ARF_IP`: writing it jumps.
const ARF_IP: u128 = 0xa0;

/// The GRF bytes `[start, end)` an instruction writes, `Ok(None)` for
/// none; an error for a write the walk cannot follow.
fn footprint(inst: Inst, k: Kind) -> Result<Option<(u32, u32)>, &'static str> {
    let exec = 1u32 << inst.exec_size().min(5);
    let (file, reg, rlen) = match k {
        Kind::Alu3 => {
            // Gen9 three-source instructions are align16 with a GRF
            // destination; exec_size elements from the dword subregister.
            let size = match inst.dst3_type() {
                3 => 8, // DF
                4 => 2, // HF
                _ => 4,
            };
            let start = inst.dst3_reg() as u32 * 32 + inst.dst3_subreg() as u32 * 4;
            return Ok(Some((start, start + exec * size)));
        }
        Kind::Send => (inst.dst_file(), inst.dst_reg(), None),
        Kind::Sends => (inst.sends_dst_file(), inst.dst_reg(), None),
        Kind::Alu => (inst.dst_file(), inst.dst_reg(), Some(())),
        _ => return Ok(None),
    };
    if file == 0 {
        // ARF: null, accumulator, flags, ... but not IP.
        return if reg == ARF_IP || inst.dst_indirect() != 0 {
            Err("write to the IP register")
        } else {
            Ok(None)
        };
    }
    if file != 1 {
        return Err("invalid destination register file");
    }
    if inst.dst_indirect() != 0 {
        return Ok(Some((0, u32::MAX)));
    }
    let reg = reg as u32;
    if rlen.is_none() {
        // A send writes its response: rlen registers.
        let n = Desc(inst.desc() as u32).rlen();
        return Ok(Some((reg * 32, (reg + n) * 32)));
    }
    // brw_type_decode for Gfx8-9 register types: UD D UW W UB B DF F UQ Q HF.
    let size = match inst.dst_type() {
        0 | 1 | 7 => 4,
        2 | 3 | 10 => 2,
        4 | 5 => 1,
        _ => 8,
    };
    if inst.align16() != 0 {
        let start = reg * 32 + inst.dst_subreg16() as u32 * 16;
        return Ok(Some((start, start + exec * size)));
    }
    let stride = match inst.dst_hstride() {
        0 | 1 => 1,
        2 => 2,
        _ => 4,
    };
    let start = reg * 32 + inst.dst_subreg() as u32;
    Ok(Some((start, start + (exec - 1) * stride * size + size)))
}

/// What the walk knows of a GRF as a scratch header: bit 63 "built by the
/// header sequence", bit 62 "dword 5 is g0.5 & 0xfffffc00", bit 61 "dword
/// 2 holds the immediate in bits 31:0".
#[derive(Clone, Copy, Default)]
struct Hdr(u64);

const HDR_BUILT: u64 = 1 << 63;
const HDR_DW5: u64 = 1 << 62;
const HDR_DW2: u64 = 1 << 61;

/// The scratch-header tracker of [`analyze`].
struct Headers {
    grf: [Hdr; 128],
    /// Something may have written g0.5 (Mesa's headers copy it).
    g0_5_written: bool,
}

impl Headers {
    fn reset(&mut self) {
        self.grf = [Hdr::default(); 128];
    }

    /// Whether `inst` is `op(exec) gN.sub<1>UD` unpredicated WE_all align1
    /// with a direct GRF destination: then N.
    fn header_dst(inst: Inst, opcode: u128, exec_size: u128, sub: u128) -> Option<usize> {
        let plain = inst.opcode() == opcode
            && inst.exec_size() == exec_size
            && inst.pred() == 0
            && inst.we_all() == 1
            && inst.align16() == 0
            && inst.saturate() == 0
            && inst.dst_file() == 1
            && inst.dst_indirect() == 0
            && inst.dst_hstride() == 1
            && inst.dst_type() <= 1
            && inst.dst_subreg() == sub
            // g0 holds the dispatch payload the header copies.
            && inst.dst_reg() != 0
            && inst.dst_reg() < 128;
        plain.then_some(inst.dst_reg() as usize)
    }

    /// `src0` is `g0.<dw><0,1,0>UD` without modifiers, src1 the immediate `v`.
    fn g0_and(inst: Inst, dw: u128, v: u32) -> bool {
        inst.src0_file() == 1
            && inst.src0_indirect() == 0
            && inst.src0_reg() == 0
            && inst.src0_subreg() == dw * 4
            && inst.src0_mods() == 0
            && inst.src0_type() <= 1
            && inst.src1_file() == 3
            && inst.imm() as u32 == v
    }

    /// Follows the header sequence of `generate_scratch_header` and
    /// `build_legacy_scratch_header`: true if `inst` is one of its steps.
    fn step(&mut self, inst: Inst) -> bool {
        let imm = inst.src0_file() == 3 && inst.src0_type() <= 1;
        if let Some(r) = Self::header_dst(inst, op::MOV, 3, 0) {
            // mov(8) gN<1>UD 0x0UD
            if imm && inst.imm() == 0 {
                self.grf[r] = Hdr(HDR_BUILT);
                return true;
            }
        } else if let Some(r) = Self::header_dst(inst, op::AND, 0, 12) {
            // and(1) gN.3<1>UD g0.3<0,1,0>UD 0xfUD
            if Self::g0_and(inst, 3, 0xf) && self.grf[r].0 & HDR_BUILT != 0 {
                return true;
            }
        } else if let Some(r) = Self::header_dst(inst, op::AND, 0, 20) {
            // and(1) gN.5<1>UD g0.5<0,1,0>UD 0xfffffc00UD
            if Self::g0_and(inst, 5, 0xffff_fc00) && self.grf[r].0 & HDR_BUILT != 0 {
                self.grf[r].0 |= HDR_DW5;
                return true;
            }
        } else if let Some(r) = Self::header_dst(inst, op::MOV, 0, 8) {
            // mov(1) gN.2<1>UD <offset>UD
            if imm && self.grf[r].0 & HDR_BUILT != 0 {
                let h = self.grf[r].0 & (HDR_BUILT | HDR_DW5);
                self.grf[r] = Hdr(h | HDR_DW2 | u64::from(inst.imm() as u32));
                return true;
            }
        }
        false
    }

    /// Forgets what GRF bytes `[start, end)` held.
    fn write(&mut self, start: u32, end: u32) {
        if start < 24 && end > 20 {
            self.g0_5_written = true;
        }
        let last = (end.saturating_sub(1) / 32).min(127);
        for r in start / 32..=last {
            self.grf[r as usize] = Hdr::default();
        }
    }

    /// The OWORD offset of the scratch header in GRF `r`, if it is one.
    fn offset(&self, r: u128) -> Option<u64> {
        let h = self.grf.get(r as usize)?.0;
        let all = HDR_BUILT | HDR_DW5 | HDR_DW2;
        (h & all == all).then_some(h & 0xffff_ffff)
    }
}

/// What one message writes.
enum Effect {
    None,
    Bti(u8),
    /// Scratch bytes up to this offset.
    Scratch(u64),
}

/// A data-port surface write through `bti`; `untyped` messages reach SLM.
fn surface_write(bti: u8, untyped: bool) -> Result<Effect, &'static str> {
    match bti {
        0..=251 => Ok(Effect::Bti(bti)),
        252 => Err("bindless surface write"),
        254 if untyped => Ok(Effect::None),
        254 => Err("typed write to the SLM binding table index"),
        _ => Err("stateless write"),
    }
}

/// The GFX7_SFID_DATAPORT_DATA_CACHE messages (`dp_dc0_msg_type_gfx7`;
/// on Gen9 the HSW_DATAPORT_DC_PORT0_* set).
fn dc0(inst: Inst, d: Desc, hdr: &Headers) -> Result<Effect, &'static str> {
    let t = d.dp_msg_type();
    if t & 0x10 != 0 {
        // Category 1: scratch block messages; bit 17 is "write".
        return if t & 0x8 != 0 {
            Err("DC0 scratch block write (Mesa 25 spills through BTI 253 on Gen9)")
        } else {
            Ok(Effect::None)
        };
    }
    let bti = d.bti() as u8;
    match t {
        0..=4 | 7 => Ok(Effect::None),
        8 if bti == 253 || bti == 255 => {
            // OWORD block write, stateless: a spill if its header is one.
            let bytes = match d.msg_control() & 7 {
                0 | 1 => 16,
                2 => 32,
                3 => 64,
                4 => 128,
                _ => return Err("OWORD block write of unknown size"),
            };
            // The payload's first register, direct, from its start: a
            // send's src0 is a GRF (sends have no src0 file: src0() in
            // brw_disasm.c).
            // Bits 67:64 of sends hold the extended descriptor's 9:6 and
            // bit 68 is src0_da16_subreg_nr.
            let (grf, sub) = if kind(inst.opcode()) == Kind::Sends {
                (true, inst.src0_subreg() >> 4)
            } else {
                (inst.src0_file() == 1, inst.src0_subreg())
            };
            let direct = inst.src0_indirect() == 0 && sub == 0;
            let off = (d.header() != 0 && d.mlen() >= 1 && grf && direct)
                .then(|| hdr.offset(inst.src0_reg()))
                .flatten();
            match off {
                Some(o) => Ok(Effect::Scratch(o * 16 + bytes)),
                None => Err("stateless write (not a scratch spill)"),
            }
        }
        8 | 10..=12 => surface_write(bti, true),
        _ => Err("unknown DC0 message type"),
    }
}

/// The HSW_SFID_DATAPORT_DATA_CACHE_1 messages (`dp_dc1_msg_type_hsw`).
fn dc1(d: Desc) -> Result<Effect, &'static str> {
    let bti = d.bti() as u8;
    match d.dp_msg_type() {
        1 | 4 | 5 | 0x10 | 0x11 | 0x14 => Ok(Effect::None),
        2 | 3 | 9 | 0x1b => surface_write(bti, true),
        6 | 7 | 10..=13 => surface_write(bti, false),
        0x12 | 0x15 | 0x19 | 0x1a | 0x1d => Err("A64 write"),
        _ => Err("unknown DC1 message type"),
    }
}

/// What a send with an immediate descriptor `d` to `sfid` writes
/// (`brw_disassemble_inst`'s switch on the SFID).
fn message(inst: Inst, sfid: u128, d: Desc, hdr: &Headers) -> Result<Effect, &'static str> {
    match sfid {
        // sampler, DP sampler cache, URB, thread spawner, DP constant
        // cache, pixel interpolator
        2 | 4 | 6 | 7 | 9 | 11 => Ok(Effect::None),
        // gateway: brw_eu_inst_gateway_subfuncid, 6 is MMIO read/write
        3 if d.0 & 7 <= 5 => Ok(Effect::None),
        3 => Err("gateway MMIO or unknown gateway message"),
        5 => match (d.0 >> 18 & 1, d.fb_msg_type()) {
            // GFX9_DATAPORT_RC_RENDER_TARGET_WRITE / _READ
            (0, 12) if d.bti() < 252 => Ok(Effect::Bti(d.bti() as u8)),
            (0, 12) => Err("render target write to a special binding table index"),
            (0, 13) => Ok(Effect::None),
            _ => Err("unknown render cache message"),
        },
        10 => dc0(inst, d, hdr),
        12 => dc1(d),
        _ => Err("unknown shared function"),
    }
}

/// Whether `inst` ends the thread: a send with EOT, predicated or not.
///
/// A fragment shader that can discard ends in a render-target write
/// predicated on its live pixels (`brw_emit_single_fb_write()` in Mesa's
/// `brw_compile_fs.cpp`: `write->predicate` when `uses_kill`), and it runs
/// with no pixel left when a discard jumps to the end (`halt`). Mesa puts
/// nothing after that send: the thread ends at it whatever its predicate,
/// or every such shader on Gen9 would run off its end.
fn is_eot(inst: Inst) -> bool {
    matches!(kind(inst.opcode()), Kind::Send | Kind::Sends) && inst.eot() != 0
}

/// First pass: the kernel's end (one past its final EOT send) and its
/// jump targets.
fn find_end(
    fetch: &mut impl FnMut(u64, &mut [u8; 16]) -> bool,
    targets: &mut Targets,
) -> Result<u64, &'static str> {
    let mut off = 0;
    loop {
        let (inst, len) = read(fetch, off)?;
        jumps(inst, off, |t| targets.add(t))?;
        if is_eot(inst) && targets.max() <= off {
            return Ok(off + len);
        }
        off += len;
    }
}

/// Second pass over `[0, end)`: every send classified, scratch headers
/// followed, the jump targets checked against instruction boundaries.
fn analyze(
    fetch: &mut impl FnMut(u64, &mut [u8; 16]) -> bool,
    end: u64,
    targets: &Targets,
) -> Result<KernelWrites, &'static str> {
    let mut w = KernelWrites::default();
    let mut hdr = Headers {
        grf: [Hdr::default(); 128],
        g0_5_written: false,
    };
    let mut indirect = false;
    let mut off = 0;
    let mut last_eot = false;
    while off < end {
        let (inst, len) = read(fetch, off)?;
        if targets.inside(off, off + len) {
            return Err("jump into the middle of an instruction");
        }
        if targets.contains(off) {
            // Another path enters here: no header survives it.
            hdr.reset();
        }
        // The first pass saw these targets unless the kernel changed.
        jumps(inst, off, |t| {
            if targets.contains(t as u64) {
                Ok(())
            } else {
                Err("kernel changed while scanned")
            }
        })?;
        let k = kind(inst.opcode());
        if matches!(k, Kind::Send | Kind::Sends) {
            if k == Kind::Send && inst.src1_file() != 3
                || k == Kind::Sends && inst.sends_desc_reg() != 0
            {
                return Err("register-indirect descriptor");
            }
            if k == Kind::Sends && inst.sends_ex_desc_reg() != 0 {
                return Err("register-indirect extended descriptor");
            }
            match message(inst, inst.sfid(), Desc(inst.desc() as u32), &hdr)? {
                Effect::None => {}
                Effect::Bti(b) => w.set_bti(b),
                Effect::Scratch(e) => {
                    w.scratch = true;
                    w.scratch_end = w.scratch_end.max(e);
                }
            }
        }
        if !hdr.step(inst) {
            if let Some((start, stop)) = footprint(inst, k)? {
                indirect |= stop == u32::MAX;
                hdr.write(start, stop);
            }
        }
        last_eot = is_eot(inst);
        off += len;
    }
    if off != end || !last_eot {
        return Err("kernel changed while scanned");
    }
    if w.scratch && (hdr.g0_5_written || indirect) {
        return Err("scratch header source g0.5 may be overwritten");
    }
    Ok(w)
}

/// Scans the kernel starting at its first instruction; `fetch(offset, buf)`
/// reads 16 bytes of the kernel at byte `offset` (false: not readable,
/// which makes the kernel unbounded).
pub fn kernel_writes(mut fetch: impl FnMut(u64, &mut [u8; 16]) -> bool) -> KernelWrites {
    let mut targets = Targets {
        t: [0; MAX_JUMP_TARGETS],
        n: 0,
    };
    let r = find_end(&mut fetch, &mut targets).and_then(|end| analyze(&mut fetch, end, &targets));
    r.unwrap_or_else(KernelWrites::unbounded)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::{string::String, vec, vec::Vec};

    /// A kernel from a test data file: its title, bytes and Mesa's
    /// disassembly lines.
    pub(crate) struct Kernel {
        pub(crate) name: String,
        pub(crate) bytes: Vec<u8>,
        asm: Vec<String>,
    }

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    /// The kernels of a file written from Mesa's `INTEL_DEBUG=hex` dump.
    pub(crate) fn kernels(text: &str) -> Vec<Kernel> {
        let mut out: Vec<Kernel> = Vec::new();
        for line in text.lines() {
            if let Some(name) = line.strip_prefix("## ") {
                out.push(Kernel {
                    name: name.into(),
                    bytes: Vec::new(),
                    asm: Vec::new(),
                });
            } else if let Some((h, asm)) = line.split_once(" | ") {
                let k = out.last_mut().unwrap();
                k.bytes.extend(hex(h));
                k.asm.push(asm.into());
            }
        }
        out
    }

    fn all_kernels() -> Vec<Kernel> {
        [
            include_str!("testdata/desktop.txt"),
            include_str!("testdata/game.txt"),
            include_str!("testdata/compute.txt"),
            include_str!("testdata/video.txt"),
            include_str!("testdata/compute-spill.txt"),
        ]
        .iter()
        .flat_map(|t| kernels(t))
        .collect()
    }

    fn kernel(file: &str, name: &str) -> Vec<u8> {
        let k = kernels(file);
        k.into_iter()
            .find(|k| k.name.starts_with(name))
            .unwrap()
            .bytes
    }

    /// `fetch` over `bytes`: 16 bytes or nothing.
    fn scan(bytes: &[u8]) -> KernelWrites {
        kernel_writes(|off, buf| {
            let Some(s) = usize::try_from(off).ok().and_then(|o| bytes.get(o..o + 16)) else {
                return false;
            };
            buf.copy_from_slice(s);
            true
        })
    }

    fn btis(w: &KernelWrites) -> Vec<u8> {
        (0..=255).filter(|&i| w.writes_bti(i)).collect()
    }

    /// What Mesa's disassembly says a kernel writes: the surfaces of its
    /// RT writes, surface writes and atomics, and whether it spills.
    fn expected(asm: &[String]) -> (Vec<u8>, bool) {
        let mut b = Vec::new();
        let mut scratch = false;
        for l in asm {
            let Some((_, m)) = l.split_once("MsgDesc:") else {
                continue;
            };
            if m.contains("OWORD block write, bti 253") {
                scratch = true;
            } else if !l.contains("urb MsgDesc") && (m.contains("write") || m.contains("atomic")) {
                let n = m.split("Surface = ").nth(1).unwrap();
                let n: u8 = n.split([',', ' ']).next().unwrap().parse().unwrap();
                b.push(n);
            }
        }
        b.sort();
        b.dedup();
        (b, scratch)
    }

    #[test]
    fn every_gmig_gl_kernel_matches_mesas_disassembly() {
        let all = all_kernels();
        assert_eq!(all.len(), 29);
        for k in &all {
            let w = scan(&k.bytes);
            assert_eq!(w.unbounded, None, "{}", k.name);
            let (b, scratch) = expected(&k.asm);
            assert_eq!(btis(&w), b, "{}", k.name);
            assert_eq!(w.scratch, scratch, "{}", k.name);
        }
    }

    #[test]
    fn fragment_shader_writes_its_render_target() {
        let w = scan(&kernel(
            include_str!("testdata/desktop.txt"),
            "unnamed fragment shader GLSL3 SIMD16",
        ));
        assert_eq!((btis(&w), w.scratch, w.unbounded), (vec![0], false, None));
        // SIMD32: a first RT write (slot group low, no EOT) then the EOT one.
        let w = scan(&kernel(
            include_str!("testdata/game.txt"),
            "unnamed fragment shader GLSL12 SIMD32",
        ));
        assert_eq!((btis(&w), w.unbounded), (vec![0], None));
    }

    #[test]
    fn compute_shaders_write_their_ssbo_images_and_counters() {
        let c = include_str!("testdata/compute.txt");
        // std430 SSBO store: DC1 untyped surface write, surface 1.
        let w = scan(&kernel(c, "unnamed compute shader GLSL2"));
        assert_eq!((btis(&w), w.unbounded), (vec![1], None));
        // imageStore to two images: DC1 typed surface writes 0 and 1.
        let w = scan(&kernel(c, "unnamed compute shader GLSL4"));
        assert_eq!((btis(&w), w.unbounded), (vec![0, 1], None));
        // atomicAdd on an SSBO inside two ifs: untyped atomics, surface 1.
        let w = scan(&kernel(c, "unnamed compute shader GLSL6"));
        assert_eq!((btis(&w), w.unbounded), (vec![1], None));
    }

    #[test]
    fn vertex_shader_writes_nothing() {
        let w = scan(&kernel(
            include_str!("testdata/desktop.txt"),
            "unnamed vertex shader GLSL3",
        ));
        assert_eq!(w, KernelWrites::default());
    }

    /// The spill offsets (`mov(1) gN.2<1>UD imm`) Mesa's disassembly shows
    /// before each block write.
    fn max_spill_end(asm: &[String]) -> u64 {
        let mut last = 0;
        let mut end = 0;
        for l in asm {
            if l.starts_with("mov(1)") && l.contains(".2<1>UD") {
                let imm = l.split_whitespace().nth(2).unwrap();
                last = u64::from_str_radix(imm.trim_start_matches("0x").trim_end_matches("UD"), 16)
                    .unwrap();
            }
            if l.contains("OWORD block write, bti 253, owords = 2") {
                end = end.max(last * 16 + 32);
            }
        }
        end
    }

    #[test]
    fn spills_write_the_scratch_space() {
        let k = kernels(include_str!("testdata/compute-spill.txt")).remove(0);
        let w = scan(&k.bytes);
        assert_eq!((btis(&w), w.scratch, w.unbounded), (vec![1], true, None));
        assert_eq!(w.scratch_end, max_spill_end(&k.asm));
        assert!(w.scratch_end > 0);
    }

    /// Offsets of the instructions of `bytes`.
    fn boundaries(bytes: &[u8]) -> Vec<usize> {
        let mut v = Vec::new();
        let mut off = 0;
        while off < bytes.len() {
            v.push(off);
            off += if bytes[off + 3] & 0x20 != 0 { 8 } else { 16 };
        }
        v
    }

    #[test]
    fn truncated_kernels_are_unbounded() {
        for k in all_kernels() {
            for len in 0..k.bytes.len() {
                let w = scan(&k.bytes[..len]);
                assert!(w.unbounded.is_some(), "{} cut at {len}", k.name);
            }
            // The instructions decode one after another to the end.
            assert!(boundaries(&k.bytes).contains(&(k.bytes.len() - 16)));
        }
    }

    #[test]
    fn fetch_failure_is_unbounded() {
        let k = kernel(
            include_str!("testdata/compute.txt"),
            "unnamed compute shader GLSL2",
        );
        let w = kernel_writes(|off, buf| {
            if off == 64 {
                return false;
            }
            buf.copy_from_slice(&k[off as usize..off as usize + 16]);
            true
        });
        assert_eq!(w.unbounded, Some("kernel not readable"));
    }

    /// Real instructions (compute.txt) to build synthetic kernels from.
    const TS_EOT: &str = "31 00 80 07 44 02 00 20 c0 0f 00 06 10 00 00 82";
    const UNTYPED_WRITE: &str = "33 00 80 0c 10 70 01 00 c2 01 00 00 01 5e 02 04";
    const UNTYPED_ATOMIC: &str = "31 00 80 0c 40 02 00 20 80 03 00 06 01 85 00 04";
    const IF: &str = "22 00 81 00 20 0e 00 20 90 00 00 00 90 00 00 00";
    const NOP: &str = "7e 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00";

    fn inst(s: &str) -> Inst {
        Inst(u128::from_le_bytes(hex(s).try_into().unwrap()))
    }

    fn prog(insts: &[Inst]) -> Vec<u8> {
        insts.iter().flat_map(|i| i.0.to_le_bytes()).collect()
    }

    fn with_bti(i: Inst, bti: u128) -> Inst {
        i.with_desc(i.desc() & !0xff | bti)
    }

    #[test]
    fn synthetic_messages() {
        let eot = inst(TS_EOT);
        let run = |i: Inst| scan(&prog(&[i, eot]));
        let w = inst(UNTYPED_WRITE);
        assert_eq!(btis(&run(w)), vec![1]);
        assert_eq!(btis(&run(with_bti(w, 17))), vec![17]);
        // SLM: on chip.
        assert_eq!(run(with_bti(w, 254)), KernelWrites::default());
        // Stateless, bindless.
        assert_eq!(run(with_bti(w, 255)).unbounded, Some("stateless write"));
        assert_eq!(run(with_bti(w, 253)).unbounded, Some("stateless write"));
        assert_eq!(
            run(with_bti(w, 252)).unbounded,
            Some("bindless surface write")
        );
        // Register-indirect descriptors (sends: a0; send: src1 a GRF).
        let r = Some("register-indirect descriptor");
        assert_eq!(run(w.with_sends_desc_reg(1)).unbounded, r);
        assert_eq!(run(inst(UNTYPED_ATOMIC).with_src1_file(1)).unbounded, r);
        let r = Some("register-indirect extended descriptor");
        assert_eq!(run(w.with_sends_ex_desc_reg(1)).unbounded, r);
        // Unknown shared functions (null, VME, CRE, LSC ids).
        for sfid in [0, 1, 8, 13, 14, 15] {
            let u = run(w.with_sfid(sfid)).unbounded;
            assert_eq!(u, Some("unknown shared function"), "sfid {sfid}");
        }
        // A64 untyped write; an unknown DC1 type.
        let a64 = w.with_desc(w.desc() & !(0x1f << 14) | 0x19 << 14);
        assert_eq!(run(a64).unbounded, Some("A64 write"));
        let odd = w.with_desc(w.desc() & !(0x1f << 14) | 0x1f << 14);
        assert_eq!(run(odd).unbounded, Some("unknown DC1 message type"));
        // Untyped atomic (send, immediate descriptor): surface 1.
        assert_eq!(btis(&run(inst(UNTYPED_ATOMIC))), vec![1]);
        // An EOT send alone: a kernel that writes nothing.
        assert_eq!(scan(&prog(&[eot])), KernelWrites::default());
    }

    #[test]
    fn jump_past_the_first_eot_continues_the_scan() {
        let eot = inst(TS_EOT);
        let w = with_bti(inst(UNTYPED_WRITE), 5);
        // if (JIP = UIP = 32) at 0, EOT at 16, write at 32, EOT at 48.
        let j = inst(IF).with_imm(32).with_uip(32);
        let k = prog(&[j, eot, w, eot]);
        assert_eq!(btis(&scan(&k)), vec![5]);
        // Without the jump the write after the first EOT never runs.
        let k = prog(&[inst(NOP), eot, w, eot]);
        assert_eq!(btis(&scan(&k)), Vec::<u8>::new());
        // A jump into the middle of an instruction, before the kernel, or
        // through a register.
        let k = prog(&[inst(IF).with_imm(24).with_uip(24), eot, w, eot]);
        assert_eq!(
            scan(&k).unbounded,
            Some("jump into the middle of an instruction")
        );
        let k = prog(&[inst(IF).with_imm(-16i32 as u32 as u128), eot]);
        assert_eq!(scan(&k).unbounded, Some("jump outside the kernel"));
        let k = prog(&[inst(IF).with_opcode(44), eot]);
        assert_eq!(scan(&k).unbounded, Some("call, calla or ret"));
        let k = prog(&[inst(IF).with_opcode(32).with_src1_file(1), eot]);
        assert_eq!(scan(&k).unbounded, Some("register-indirect jmpi"));
        // A predicated EOT ends the kernel too (a fragment shader that
        // discards); what follows it is not read.
        assert_eq!(scan(&prog(&[eot.with_pred(1)])).unbounded, None);
    }

    #[test]
    fn long_kernels_are_unbounded() {
        let nop = inst(NOP).0.to_le_bytes();
        let w = kernel_writes(|_, buf| {
            *buf = nop;
            true
        });
        assert_eq!(w.unbounded, Some("kernel longer than MAX_KERNEL_BYTES"));
    }

    /// The spilling kernel of compute-spill.txt and the offset of its
    /// second spill, whose header's four instructions (16, 16, 16 and 8
    /// bytes) come right before it, after a native instruction.
    fn spill() -> (Vec<u8>, usize) {
        let k = kernels(include_str!("testdata/compute-spill.txt")).remove(0);
        let mut spills = k
            .asm
            .iter()
            .enumerate()
            .filter(|(_, l)| l.contains("OWORD block write"));
        let second = spills.nth(1).unwrap().0;
        assert!(k.asm[second - 5].starts_with("shl(8)"));
        assert!(k.asm[second - 4].starts_with("mov(8)"));
        let b = boundaries(&k.bytes);
        (k.bytes, b[second])
    }

    #[test]
    fn scratch_header_must_come_from_g0() {
        let (bytes, send) = spill();
        assert!(scan(&bytes).scratch);
        let at = |delta: usize| send - delta;
        // The spill's header: mov(8) 16 bytes, and(1) 16, and(1) 16,
        // mov(1) compacted 8 bytes, then the send.
        let and5 = at(8 + 16);
        let mut k = bytes.clone();
        // Mask g0.5 with another value: the write may land anywhere.
        k[and5 + 15] = 0x7f;
        assert_eq!(
            scan(&k).unbounded,
            Some("stateless write (not a scratch spill)")
        );
        // Read g1.5 instead of g0.5.
        let mut k = bytes.clone();
        let i = Inst(u128::from_le_bytes(k[and5..and5 + 16].try_into().unwrap()));
        k[and5..and5 + 16].copy_from_slice(&i.with_src0_reg(1).0.to_le_bytes());
        assert_eq!(
            scan(&k).unbounded,
            Some("stateless write (not a scratch spill)")
        );
        // Predicate the and: it may not run.
        let mut k = bytes.clone();
        k[and5..and5 + 16].copy_from_slice(&i.with_pred(1).0.to_le_bytes());
        assert_eq!(
            scan(&k).unbounded,
            Some("stateless write (not a scratch spill)")
        );
        // A kernel that also writes g0.5.
        let mut k = bytes.clone();
        let g0 = i.with_dst_reg(0);
        k[and5..and5 + 16].copy_from_slice(&g0.0.to_le_bytes());
        assert!(scan(&k).unbounded.is_some());
    }

    #[test]
    fn scratch_header_must_not_be_entered_midway() {
        let (bytes, send) = spill();
        // Turn the instruction before the header into an if jumping to
        // the header's and(1) g.5: a path could bring another header.
        let mov8 = send - 8 - 16 - 16 - 16;
        let before = *boundaries(&bytes)
            .iter()
            .rev()
            .find(|&&b| b < mov8)
            .unwrap();
        assert_eq!(mov8 - before, 16, "the instruction before is native");
        let mut k = bytes.clone();
        let target = (send - 8 - 16 - before) as u128;
        let j = inst(IF).with_imm(target).with_uip(target);
        k[before..before + 16].copy_from_slice(&j.0.to_le_bytes());
        assert_eq!(
            scan(&k).unbounded,
            Some("stateless write (not a scratch spill)")
        );
        // Jumping to the header's first instruction is fine.
        let target = (mov8 - before) as u128;
        let j = inst(IF).with_imm(target).with_uip(target);
        k[before..before + 16].copy_from_slice(&j.0.to_le_bytes());
        assert_eq!(scan(&k).unbounded, None);
    }

    /// Mesa's disassembly of an ALU instruction's destination:
    /// `op(exec) gR[.S]<H>T`: exec size, register, subregister, type.
    fn parse_dst(asm: &str) -> Option<(u32, u32, u32, String)> {
        let asm = asm
            .strip_prefix('(')
            .map_or(asm, |a| a.split_once(") ").unwrap().1);
        let (op, rest) = asm.split_once('(')?;
        if op.starts_with("send") {
            return None;
        }
        let (exec, rest) = rest.split_once(')')?;
        let dst = rest.split_whitespace().next()?;
        let dst = dst.strip_prefix('g')?;
        let (reg, rest) = dst.split_once(['.', '<'])?;
        let sub = if dst.as_bytes()[reg.len()] == b'.' {
            rest.split_once('<')?.0.parse().ok()?
        } else {
            0
        };
        let ty = rest.rsplit_once('>')?.1.into();
        Some((exec.parse().ok()?, reg.parse().ok()?, sub, ty))
    }

    #[test]
    fn uncompaction_matches_mesas_disassembly() {
        let mut compacted = 0;
        for k in all_kernels() {
            for (off, asm) in boundaries(&k.bytes).into_iter().zip(&k.asm) {
                let Some((exec, reg, sub, ty)) = parse_dst(asm) else {
                    continue;
                };
                let (i, len) = read(
                    &mut |o, b| {
                        b.copy_from_slice(&k.bytes[o as usize..o as usize + 16]);
                        true
                    },
                    off as u64,
                )
                .unwrap();
                compacted += usize::from(len == 8);
                let kd = kind(i.opcode());
                assert!(matches!(kd, Kind::Alu | Kind::Alu3), "{asm}");
                assert_eq!(1 << i.exec_size(), exec, "{asm}");
                let size = match ty.as_str() {
                    "UW" | "W" | "HF" => 2,
                    "UB" | "B" => 1,
                    "DF" | "Q" | "UQ" => 8,
                    _ => 4,
                };
                let (start, _) = footprint(i, kd).unwrap().unwrap();
                assert_eq!(start, reg * 32 + sub * size, "{asm}");
            }
        }
        assert!(
            compacted > 100,
            "{compacted} compacted instructions checked"
        );
    }
}

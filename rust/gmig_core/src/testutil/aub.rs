// SPDX-License-Identifier: GPL-2.0

//! An AUB writer for the reader's tests and the fuzz seeds: what Mesa's
//! `intel_dump_gpu` writes for execbuffers on a Gen8+ device, following
//! Mesa 25.0's `src/intel/tools/aub_write.c` (execlist mode) function by
//! function, with the context images of `gfx8_context.h`.
//!
//! Limits: PPGTT mappings below 2 MiB only (one PML4, PDP, PD and page
//! table), page-aligned buffers, the three engines Mesa's writer knows.
//! `core` only: it writes into the caller's buffer and reports, at
//! [`Writer::finish`], whether everything fitted.

use super::super::aub::{
    AubSpace, Engine, AUB_MEM_TRACE_REGISTER_SIZE_DWORD, AUB_MEM_TRACE_REGISTER_SPACE_MMIO,
    CMD_MEM_TRACE_MEMORY_WRITE, CMD_MEM_TRACE_REGISTER_POLL, CMD_MEM_TRACE_REGISTER_WRITE,
    CMD_MEM_TRACE_VERSION, EXECLIST_STATUS, EXECLIST_SUBMITPORT,
};
use super::super::sim::config::DEVICE_ID;

/// Ring size (Mesa's `RING_SIZE`).
pub const RING_SIZE: u64 = 4096;
/// Per-process HWSP size (`PPHWSP_SIZE`).
pub const PPHWSP_SIZE: u64 = 4096;
/// Render context image pages (`CONTEXT_RENDER_SIZE`, Gen9's).
pub const CONTEXT_RENDER_PAGES: u64 = 22;
/// Other engines' context image pages (`CONTEXT_OTHER_SIZE`).
pub const CONTEXT_OTHER_PAGES: u64 = 2;
/// Descriptor flags (`CONTEXT_FLAGS`): valid, legacy 64-bit addressing,
/// L3-LLC coherent, PPGTT, normal priority.
pub const CONTEXT_FLAGS: u64 = 0x339;
/// Where `intel_dump_gpu` places the first buffer that is not pinned, in
/// execlist mode.
pub const FIRST_BO: u64 = 0x1000;
/// A Skylake GT2 PCI id (the sim's).
pub const SKL_GT2: u32 = DEVICE_ID as u32;
/// MI_BATCH_BUFFER_START, Gen8 length.
pub const MI_BATCH_BUFFER_START: u32 = 0x31 << 23 | 1;
/// MI_BATCH_BUFFER_START's PPGTT bit (`MI_BATCH_NON_SECURE_I965`).
pub const MI_BATCH_PPGTT: u32 = 1 << 8;
/// MI_BATCH_BUFFER_END.
pub const MI_BATCH_BUFFER_END: u32 = 0x0a << 23;
/// MI_LOAD_REGISTER_IMM's force-posted bit (`MI_LRI_FORCE_POSTED`).
const MI_LRI_FORCE_POSTED: u32 = 1 << 12;
/// GFX_MODE's offset from an engine's base.
const GFX_MODE: u32 = 0x29c;
/// HWS_PGA's offset from an engine's base.
const HWS_PGA: u32 = 0x80;

/// The GGTT addresses of one engine's context (Mesa's `aub_hw_context`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HwContext {
    /// The ring.
    pub ring: u64,
    /// The per-process HWSP, the context image's start (the LRCA).
    pub pphwsp: u64,
}

/// What Mesa's writer knows of an engine: (hardware class for the
/// descriptor, base of the registers its context image loads); `None` for
/// engines it has no context for.
const fn mesa_engine(e: Engine) -> Option<(u64, u32)> {
    match e {
        Engine::Render => Some((1, 0x2000)),
        Engine::Blitter => Some((2, 0x22000)),
        // gfx8_video_context_init() loads VCS2's registers.
        Engine::Video => Some((3, 0x1c000)),
        Engine::VideoEnhance | Engine::Video2 => None,
    }
}

/// An AUB file being written (Mesa's `struct aub_file`).
pub struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
    overflow: bool,
    /// Next free physical page (`phys_addrs_allocator`).
    phys_next: u64,
    /// Next free GGTT page (`ggtt_addrs_allocator`).
    ggtt_next: u64,
    /// Context images of one page (the register state) instead of
    /// Mesa's sizes, for small fuzz seeds.
    small: bool,
    /// PDP, PD and page table of the first 2 MiB, once allocated.
    tables: Option<[u64; 3]>,
    /// The page of each entry of that page table (0: none; physical page
    /// 0 is the PML4).
    pt: [u64; 512],
    contexts: [Option<HwContext>; 5],
    hwsp: [u64; 5],
}

impl<'a> Writer<'a> {
    /// Mesa's `aub_file_init()`: the version packet naming `pci_id` and
    /// `app` (at most 16 bytes), and GGTT entry 0 (the PML4's page, at
    /// physical 0).
    pub fn new(buf: &'a mut [u8], pci_id: u32, app: &str, small: bool) -> Self {
        let mut w = Self {
            buf,
            len: 0,
            overflow: false,
            phys_next: 0,
            ggtt_next: 0,
            small,
            tables: None,
            pt: [0; 512],
            contexts: [None; 5],
            hwsp: [0; 5],
        };
        w.version(pci_id, app);
        w.phys_next = 1; // the PML4
        w.mem_write_header(0, 8, AubSpace::GgttEntry);
        w.ggtt_next = 1;
        w.dword(1);
        w.dword(0);
        w
    }

    /// The length written, `None` if the buffer was too small.
    pub fn finish(&self) -> Option<usize> {
        (!self.overflow).then_some(self.len)
    }

    /// The GGTT addresses of `engine`'s context, once written.
    pub fn context(&self, engine: Engine) -> Option<HwContext> {
        self.contexts[engine.index()]
    }

    /// Mesa's `data_out()`.
    pub fn data(&mut self, b: &[u8]) {
        match self.buf.get_mut(self.len..self.len + b.len()) {
            Some(d) => {
                d.copy_from_slice(b);
                self.len += b.len();
            }
            None => self.overflow = true,
        }
    }

    /// Mesa's `dword_out()`.
    pub fn dword(&mut self, v: u32) {
        self.data(&v.to_le_bytes())
    }

    fn zeros(&mut self, n: u64) {
        for _ in 0..n {
            self.data(&[0]);
        }
    }

    /// Mesa's `write_execlists_header()`.
    fn version(&mut self, pci_id: u32, app: &str) {
        // snprintf(app_name, 32, "PCI-ID=0x%X %s"), aligned up to dwords.
        let mut name = [0u8; 32];
        let mut n = 0;
        let mut put = |c: u8| {
            if n < 31 {
                name[n] = c;
            }
            n += 1;
        };
        b"PCI-ID=0x".iter().for_each(|&c| put(c));
        let digits = (32 - pci_id.leading_zeros()).div_ceil(4).max(1);
        for i in (0..digits).rev() {
            put(b"0123456789ABCDEF"[(pci_id >> (4 * i) & 0xf) as usize]);
        }
        put(b' ');
        app.bytes().for_each(put);
        let len = n.next_multiple_of(4).min(32);
        self.dword(CMD_MEM_TRACE_VERSION | (5 + len as u32 / 4 - 1));
        self.dword(1); // AUB_MEM_TRACE_VERSION_FILE_VERSION
        self.dword(0); // simulator id << 8 (Gen9's is not needed here)
        self.dword(0);
        self.dword(0);
        self.data(&name[..len]);
    }

    /// Mesa's `mem_trace_memory_write_header_out()`.
    pub fn mem_write_header(&mut self, addr: u64, len: u32, space: AubSpace) {
        self.dword(CMD_MEM_TRACE_MEMORY_WRITE | (5 + len.div_ceil(4) - 1));
        self.dword(addr as u32);
        self.dword((addr >> 32) as u32);
        self.dword(space.bits() << 28);
        self.dword(len);
    }

    /// A memory write of `data`, padded to dwords.
    pub fn mem_write(&mut self, space: AubSpace, addr: u64, data: &[u8]) {
        self.mem_write_header(addr, data.len() as u32, space);
        self.data(data);
        self.zeros((data.len().wrapping_neg() & 3) as u64);
    }

    /// Mesa's `register_write_out()`.
    pub fn reg_write(&mut self, reg: u32, value: u32) {
        self.dword(CMD_MEM_TRACE_REGISTER_WRITE | (5 + 1 - 1));
        self.dword(reg);
        self.dword(AUB_MEM_TRACE_REGISTER_SIZE_DWORD | AUB_MEM_TRACE_REGISTER_SPACE_MMIO);
        self.dword(0xffff_ffff);
        self.dword(0);
        self.dword(value);
    }

    /// The register poll of Mesa's `aub_dump_execlist()`.
    pub fn reg_poll(&mut self, reg: u32, mask: u32, value: u32) {
        self.dword(CMD_MEM_TRACE_REGISTER_POLL | (5 + 1 - 1));
        self.dword(reg);
        self.dword(AUB_MEM_TRACE_REGISTER_SIZE_DWORD | AUB_MEM_TRACE_REGISTER_SPACE_MMIO);
        self.dword(mask);
        self.dword(0);
        self.dword(value);
    }

    /// Mesa's `write_execlists_default_setup()`: execlists enabled on
    /// RCS, VCS and BCS.
    pub fn default_setup(&mut self) {
        for base in [0x2000, 0x12000, 0x22000] {
            self.reg_write(base + GFX_MODE, 0x8000_8000);
        }
    }

    fn alloc_phys(&mut self) -> u64 {
        self.phys_next += 1;
        (self.phys_next - 1) << 12
    }

    /// Mesa's `aub_map_ppgtt()` for `[va, va + size)` below 2 MiB (each
    /// level's `populate_ppgtt_table()` writes the entries from the first
    /// to the last it allocated); false if the range is not below 2 MiB.
    pub fn map_ppgtt(&mut self, va: u64, size: u64) -> bool {
        if size == 0 || va.saturating_add(size) > 1 << 21 {
            return false;
        }
        let tables = match self.tables {
            Some(t) => t,
            None => {
                let t = [self.alloc_phys(), self.alloc_phys(), self.alloc_phys()];
                // PML4[0] -> PDP, PDP[0] -> PD, PD[0] -> page table.
                for (table, next) in [(0, t[0]), (t[0], t[1]), (t[1], t[2])] {
                    self.mem_write(AubSpace::Physical, table, &(next | 3).to_le_bytes());
                }
                self.tables = Some(t);
                t
            }
        };
        let (first, last) = ((va >> 12) as usize, ((va + size - 1) >> 12) as usize);
        let (mut dirty_first, mut dirty_last) = (512, 0);
        for i in first..=last {
            if self.pt[i] == 0 {
                self.pt[i] = self.alloc_phys();
                dirty_first = dirty_first.min(i);
                dirty_last = dirty_last.max(i);
            }
        }
        if dirty_first <= dirty_last {
            let n = dirty_last - dirty_first + 1;
            self.mem_write_header(
                tables[2] + 8 * dirty_first as u64,
                8 * n as u32,
                AubSpace::Physical,
            );
            for i in dirty_first..=dirty_last {
                let e = self.pt[i] | 3;
                self.data(&e.to_le_bytes());
            }
        }
        true
    }

    /// Mesa's `aub_write_trace_block()` in execlist mode: `data` at PPGTT
    /// address `va` (page aligned, mapped), in physical writes of at most
    /// a page; false if a page is not mapped.
    pub fn trace_block(&mut self, va: u64, data: &[u8]) -> bool {
        if va & 0xfff != 0 {
            return false;
        }
        for (i, block) in data.chunks(4096).enumerate() {
            let Some(&pa) = self.pt.get((va >> 12) as usize + i) else {
                return false;
            };
            if pa == 0 {
                return false;
            }
            self.mem_write(AubSpace::Physical, pa, block);
        }
        true
    }

    /// Mesa's `alloc_ggtt_address()` and `aub_map_ggtt()`: `size` bytes of
    /// GGTT space backed by fresh physical pages.
    fn alloc_ggtt(&mut self, size: u64) -> u64 {
        let ptes = size.div_ceil(4096);
        let addr = self.ggtt_next << 12;
        self.ggtt_next += ptes;
        let phys = self.phys_next << 12;
        self.phys_next += ptes;
        self.mem_write_header((addr >> 12) * 8, (ptes * 8) as u32, AubSpace::GgttEntry);
        for i in 0..ptes {
            self.dword((1 + phys + i * 4096) as u32);
            self.dword(0);
        }
        addr
    }

    /// An MI_LOAD_REGISTER_IMM of `pairs` (Mesa's
    /// `MI_LOAD_REGISTER_IMM_vals`); its length in dwords.
    fn lri(&mut self, flags: u32, pairs: &[(u32, u32)]) -> u64 {
        self.dword(0x22 << 23 | (2 * pairs.len() as u32 - 1) | flags);
        for &(r, v) in pairs {
            self.dword(r);
            self.dword(v);
        }
        1 + 2 * pairs.len() as u64
    }

    /// Mesa's `gfx8_render_context_init()` and the blitter and video ones,
    /// for the registers at `b`, padded with zeros to `pages` pages.
    fn context_image(&mut self, engine: Engine, b: u32, ring: u64, pages: u64) {
        let ring32 = ring as u32;
        let render = engine == Engine::Render;
        let mut n = 1;
        self.dword(0);
        let mut first = [
            (b + 0x244, 0x90009),
            (b + 0x34, 0),
            (b + 0x30, 0),
            (b + 0x38, ring32),
            (b + 0x3c, 1),
            (b + 0x168, 0),
            (b + 0x140, 0),
            (b + 0x110, 0),
            (b + 0x11c, 0),
            (b + 0x114, 0),
            (b + 0x118, 0),
            (b + 0x1c0, 0),
            (b + 0x1c4, 0),
            (b + 0x1c8, 0),
        ];
        if render {
            // (params->ring_addr - 4096) | 1, as Mesa writes it.
            first[4].1 = ring32.wrapping_sub(4096) | 1;
            n += self.lri(MI_LRI_FORCE_POSTED, &first);
            // MI_NOOP x 3.
            n += 3;
            self.zeros(12);
        } else {
            n += self.lri(MI_LRI_FORCE_POSTED, &first[..11]);
            // 8 MI_NOOPs; the video image has one more.
            let noops = if engine == Engine::Video { 9 } else { 8 };
            n += noops;
            self.zeros(4 * noops);
        }
        // The PML4 is at physical 0 (aub_file_init()).
        let pdps = [
            0x3a8, 0x28c, 0x288, 0x284, 0x280, 0x27c, 0x278, 0x274, 0x270,
        ];
        n += self.lri(MI_LRI_FORCE_POSTED, &pdps.map(|o| (b + o, 0)));
        n += 12;
        self.zeros(48);
        if render {
            self.dword(0);
            n += 1 + self.lri(0, &[(0x20c8, 0x7fff_ffff)]);
        }
        self.dword(MI_BATCH_BUFFER_END);
        n += 1;
        self.zeros(pages * 4096 - 4 * n);
    }

    /// Mesa's `write_engine_execlist_setup()`: the GGTT space, the ring,
    /// the PPHWSP and the context image of `engine`.
    fn setup_context(&mut self, engine: Engine, regs: u32) -> HwContext {
        let pages = match (self.small, engine) {
            (true, _) => 1,
            (false, Engine::Render) => CONTEXT_RENDER_PAGES,
            (false, _) => CONTEXT_OTHER_PAGES,
        };
        let ggtt = self.alloc_ggtt(RING_SIZE + PPHWSP_SIZE + pages * 4096);
        let ctx = HwContext {
            ring: ggtt,
            pphwsp: ggtt + RING_SIZE,
        };
        self.mem_write_header(ctx.ring, RING_SIZE as u32, AubSpace::Ggtt);
        self.zeros(RING_SIZE);
        let len = PPHWSP_SIZE + pages * 4096;
        self.mem_write_header(ctx.pphwsp, len as u32, AubSpace::Ggtt);
        self.zeros(PPHWSP_SIZE);
        self.context_image(engine, regs, ctx.ring, pages);
        ctx
    }

    /// Mesa's `aub_write_exec()`: `engine`'s context (first time), its
    /// hardware status page (first time), the ring calling the PPGTT batch
    /// at `batch`, head 0 and tail 16 in the context image, the ELSP
    /// writes and the status poll. The descriptor submitted; `None` for an
    /// engine Mesa's writer does not know.
    pub fn exec(&mut self, engine: Engine, batch: u64) -> Option<u64> {
        let (class, regs) = mesa_engine(engine)?;
        let base = engine.base();
        let i = engine.index();
        let ctx = match self.contexts[i] {
            Some(c) => c,
            None => {
                let c = self.setup_context(engine, regs);
                self.contexts[i] = Some(c);
                c
            }
        };
        let descriptor = class | ctx.pphwsp | CONTEXT_FLAGS;
        if self.hwsp[i] == 0 {
            self.hwsp[i] = self.alloc_ggtt(4096);
            self.reg_write(base + HWS_PGA, self.hwsp[i] as u32);
        }
        // aub_dump_ring_buffer_execlist().
        self.mem_write_header(ctx.ring, 16, AubSpace::Ggtt);
        self.dword(MI_BATCH_BUFFER_START | MI_BATCH_PPGTT);
        self.dword(batch as u32);
        self.dword((batch >> 32) as u32);
        self.dword(0);
        self.mem_write(AubSpace::Ggtt, ctx.ring + 8192 + 20, &0u32.to_le_bytes());
        self.mem_write(AubSpace::Ggtt, ctx.ring + 8192 + 28, &16u32.to_le_bytes());
        // aub_dump_execlist(), Gen8-10.
        for v in [0, 0, (descriptor >> 32) as u32, descriptor as u32] {
            self.reg_write(base + EXECLIST_SUBMITPORT, v);
        }
        self.reg_poll(base + EXECLIST_STATUS, 0x10, 0);
        Some(descriptor)
    }
}

/// What `intel_dump_gpu` writes for a first execbuffer on `engine` whose
/// only buffer is the batch `batch` (a buffer of that length at
/// [`FIRST_BO`], PPGTT): the AUB's length and the descriptor submitted;
/// `None` if `buf` is too small, the batch is empty or longer than
/// 2 MiB - 4 KiB, or Mesa has no context for `engine`.
pub fn one_exec(buf: &mut [u8], engine: Engine, batch: &[u8], small: bool) -> Option<(usize, u64)> {
    let mut w = Writer::new(buf, SKL_GT2, "gmig", small);
    w.default_setup();
    if !w.map_ppgtt(FIRST_BO, batch.len() as u64) || !w.trace_block(FIRST_BO, batch) {
        return None;
    }
    let d = w.exec(engine, FIRST_BO)?;
    Some((w.finish()?, d))
}

// SPDX-License-Identifier: GPL-2.0

//! What draws, compute dispatches and depth/HiZ operations write, from the
//! pipeline state they run with.
//!
//! [`super::command::command_write`] sees one command at a time and calls
//! 3DPRIMITIVE, GPGPU_WALKER and 3DSTATE_WM_HZ_OP unbounded: they write
//! through state. [`PipeState`] follows that state through a context's
//! commands (it lives as long as the context: the hardware keeps state in
//! the context image across batches) and, at each of those commands,
//! reads what the GPU will read to find its writes:
//!
//! | command | writes |
//! | --- | --- |
//! | 3DPRIMITIVE | for each enabled shader stage (VS, HS, DS, GS; PS when a dispatch width is enabled), the surfaces its kernels write ([`super::eu::kernel_writes`]: render-target writes, typed and untyped surface writes and atomics, by binding table index) through the stage's binding table and their RENDER_SURFACE_STATEs ([`super::surface::surface_state`], auxiliary surfaces included), the kernels' scratch space; the depth, stencil and HiZ buffers; the stream-output buffers when stream output is enabled |
//! | GPGPU_WALKER | the same for the compute kernel of its interface descriptor (MEDIA_INTERFACE_DESCRIPTOR_LOAD), its scratch space from MEDIA_VFE_STATE |
//! | 3DSTATE_WM_HZ_OP | the depth, stencil and HiZ buffers (a clear or resolve; none if the command enables no operation) |
//!
//! Addresses follow Gen9's rules: kernel start pointers are offsets from
//! Instruction Base Address, binding table pointers from Surface State
//! Base Address (or the binding table pool's base when one is enabled),
//! binding table entries point at surface states from Surface State Base
//! Address, interface descriptors from Dynamic State Base Address,
//! scratch space from General State Base Address (STATE_BASE_ADDRESS,
//! 3DSTATE_BINDING_TABLE_POOL_ALLOC). The PS's kernel start pointers are
//! used as Mesa's `brw_fs_simd_width_for_ksp()` maps the enabled dispatch
//! widths to them.
//!
//! A surface bounds its writes: the render cache and the data port do
//! not write past a surface's edge (its Width, Height and Depth at the
//! level written; Mesa's BLORP grows a surface placed at a tile offset "to
//! ensure that the hardware doesn't think we've gone past the edge",
//! `blorp.c`), and iris sets the drawing rectangle to 65535x65535 and
//! relies on it. So a draw's pixels need no bound of their own.
//!
//! Never a write missed: state the tracker has not seen since the context
//! began (or since [`PipeState::forget`]), a structure it cannot read, a
//! kernel or surface it cannot bound, make the command unbounded. The
//! caller learns every range the tracker read ([`StateSink::read_state`])
//! so that it can refuse a bound built on state an earlier command of the
//! same work may have written.

use super::eu::{kernel_writes, KernelWrites};
use super::surface::{self, Extent, Range};

/// GPU memory as the context's commands address it (its PPGTT).
pub trait GpuRead {
    /// Reads `buf.len()` bytes at GPU address `addr`; false if any byte is
    /// not mapped.
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> bool;
}

/// Where [`PipeState::command`] reports.
pub trait StateSink {
    /// The command may write `r`.
    fn write(&mut self, r: Range);
    /// The command's writes are not bounded.
    fn unbounded(&mut self, why: &'static str);
    /// The bound relies on the contents of `r` (binding tables, surface
    /// states, kernels, interface descriptors) as read now.
    fn read_state(&mut self, r: Range);
}

/// Bytes of one RENDER_SURFACE_STATE on Gen9.
const SURFACE_STATE_BYTES: usize = 64;
/// Bytes of a RENDER_SURFACE_STATE its extent depends on (dwords 0-11).
const SURFACE_EXTENT_BYTES: u64 = 48;
/// Bytes of one INTERFACE_DESCRIPTOR_DATA.
const IDD_BYTES: u64 = 32;
/// Threads that may use a stage's scratch space at most: every hardware
/// thread of the largest Gen9 part (GT4: 72 EUs x 7), rounded up. The
/// scratch address is the base plus the thread's index times its space.
pub const MAX_SCRATCH_THREADS: u32 = 1024;
/// Kernels whose writes are remembered per context.
const KERNEL_CACHE: usize = 32;

const VS: usize = 0;
const HS: usize = 1;
const DS: usize = 2;
const GS: usize = 3;
const PS: usize = 4;

/// One shader stage's state (`None`: not seen).
#[derive(Debug, Clone, Copy, Default)]
struct Stage {
    /// Whether the stage runs (VS/HS/DS/GS: Enable; PS: a dispatch width).
    enabled: Option<bool>,
    /// Kernel start pointers in use (offsets from Instruction Base).
    ksp: [Option<u64>; 3],
    /// Scratch space: the base field (offset from General State Base) and
    /// the per-thread space field.
    scratch: (u64, u32),
    /// Binding table offset.
    bt: Option<u64>,
}

/// The pipeline state of one context, as far as its writes go.
#[derive(Debug, Clone)]
pub struct PipeState {
    general: Option<u64>,
    surface: Option<u64>,
    dynamic: Option<u64>,
    instruction: Option<u64>,
    /// `Some(None)`: no binding table pool; `Some(Some(base))`: its base.
    bt_pool: Option<Option<u64>>,
    stages: [Stage; 5],
    depth: Option<Cmd>,
    stencil: Option<Cmd>,
    hiz: Option<Cmd>,
    /// 3DSTATE_MULTISAMPLE's Number of Multisamples (log2).
    samples: Option<u32>,
    so_enabled: Option<bool>,
    so: [Option<Extent>; 4],
    /// MEDIA_VFE_STATE's scratch (base field, per-thread field).
    vfe_scratch: Option<(u64, u32)>,
    /// MEDIA_INTERFACE_DESCRIPTOR_LOAD: start offset, total bytes.
    idd: Option<(u64, u64)>,
    kernels: [Option<(u64, KernelWrites)>; KERNEL_CACHE],
    next_kernel: usize,
}

impl Default for PipeState {
    fn default() -> Self {
        Self::new()
    }
}

fn qw(cmd: &[u32], i: usize) -> Option<u64> {
    Some(u64::from(*cmd.get(i)?) | u64::from(*cmd.get(i + 1)?) << 32)
}

/// A 48-bit address field of bits `low..=47` of the qword at `i`.
fn addr48(cmd: &[u32], i: usize, low: u32) -> Option<u64> {
    Some(qw(cmd, i)? & ((1 << 48) - 1) & !((1u64 << low) - 1))
}

/// A STATE_BASE_ADDRESS base at dword `i`, if its modify bit is set.
fn base(cmd: &[u32], i: usize) -> Option<Option<u64>> {
    let lo = *cmd.get(i)?;
    Some((lo & 1 != 0).then(|| addr48(cmd, i, 12)).flatten())
}

impl PipeState {
    /// A context whose state is not known yet.
    pub const fn new() -> Self {
        Self {
            general: None,
            surface: None,
            dynamic: None,
            instruction: None,
            bt_pool: None,
            stages: [Stage {
                enabled: None,
                ksp: [None; 3],
                scratch: (0, 0),
                bt: None,
            }; 5],
            depth: None,
            stencil: None,
            hiz: None,
            samples: None,
            so_enabled: None,
            so: [None; 4],
            vfe_scratch: None,
            idd: None,
            kernels: [None; KERNEL_CACHE],
            next_kernel: 0,
        }
    }

    /// A context as i915 creates it: its image starts from the golden
    /// render state (`gen9_renderstate.c`, which programs
    /// 3DSTATE_BINDING_TABLE_POOL_ALLOC with the pool disabled), the rest
    /// not known until the context's commands set it.
    pub const fn fresh() -> Self {
        let mut s = Self::new();
        s.bt_pool = Some(None);
        s
    }

    /// Forgets everything (a context whose state the tracker did not
    /// follow: a reset, a restore).
    pub fn forget(&mut self) {
        *self = Self::new();
    }

    /// Follows the command at the start of `cmd` (its whole dwords) and,
    /// if it is a draw, dispatch or depth/HiZ operation, tells `sink` what
    /// it may write, reading its state through `mem`. Returns whether it
    /// was such a command (then `sink` has its verdict).
    pub fn command(
        &mut self,
        cmd: &[u32],
        mem: &mut impl GpuRead,
        sink: &mut impl StateSink,
    ) -> bool {
        let Some(&dw0) = cmd.first() else {
            return false;
        };
        match dw0 >> 16 {
            0x6101 => self.state_base_address(cmd),
            0x7919 => {
                self.bt_pool = cmd
                    .get(1)
                    .map(|&d| (d & (1 << 11) != 0).then(|| addr48(cmd, 1, 12)).flatten());
            }
            0x7826 => self.stages[VS].bt = bt_pointer(cmd),
            0x7828 => self.stages[HS].bt = bt_pointer(cmd),
            0x7829 => self.stages[DS].bt = bt_pointer(cmd),
            0x7827 => self.stages[GS].bt = bt_pointer(cmd),
            0x782a => self.stages[PS].bt = bt_pointer(cmd),
            // 3DSTATE_VS, _DS, _GS: kernel at dw1, scratch at dw4, Enable
            // dw7 bit 0.
            0x7810 => self.stages[VS].simple(cmd, 1, 4, 7, 0),
            0x781d => self.stages[DS].simple(cmd, 1, 4, 7, 0),
            0x7811 => self.stages[GS].simple(cmd, 1, 4, 7, 0),
            // 3DSTATE_HS: kernel at dw3, scratch at dw5, Enable dw2 bit 31.
            0x781b => self.stages[HS].simple(cmd, 3, 5, 2, 31),
            0x7820 => self.stages[PS].pixel(cmd),
            0x781e => self.so_enabled = cmd.get(1).map(|d| d & (1 << 31) != 0),
            0x7918 => {
                // 3DSTATE_SO_BUFFER: SO Buffer Index, dw1 bits 30:29.
                if let Some(d) = cmd.get(1) {
                    self.so[((d >> 29) & 3) as usize] = Some(surface::so_buffer(cmd));
                }
            }
            0x7805 => self.depth = Some(Cmd::of(cmd)),
            0x7806 => self.stencil = Some(Cmd::of(cmd)),
            0x7807 => self.hiz = Some(Cmd::of(cmd)),
            // 3DSTATE_MULTISAMPLE: Number of Multisamples, dw1 bits 3:1.
            0x780d => self.samples = cmd.get(1).map(|d| (d >> 1) & 7),
            0x7000 => {
                // MEDIA_VFE_STATE: Per Thread Scratch Space dw1 bits 3:0,
                // Scratch Space Base Pointer dw1-2 bits 47:10.
                self.vfe_scratch = cmd
                    .get(1)
                    .and_then(|&d| Some((addr48(cmd, 1, 10)?, d & 0xf)));
            }
            0x7002 => {
                // MEDIA_INTERFACE_DESCRIPTOR_LOAD: total length dw2 bits
                // 16:0, start offset dw3.
                self.idd = cmd
                    .get(2..4)
                    .map(|d| (u64::from(d[1]), u64::from(d[0] & 0x1_ffff)));
            }
            0x7b00 => {
                self.draw(mem, sink);
                return true;
            }
            0x7105 => {
                self.dispatch(cmd, mem, sink);
                return true;
            }
            0x7852 => {
                // 3DSTATE_WM_HZ_OP: an operation if any of dw1 bits 31:27.
                if cmd.get(1).is_some_and(|d| d >> 27 != 0) {
                    self.depth_writes(sink);
                }
                return true;
            }
            _ => {}
        }
        false
    }

    fn state_base_address(&mut self, cmd: &[u32]) {
        if cmd.len() < 12 {
            // A layout this tracker does not know: forget the bases.
            self.general = None;
            self.surface = None;
            self.dynamic = None;
            self.instruction = None;
            return;
        }
        for (field, i) in [
            (&mut self.general, 1),
            (&mut self.surface, 4),
            (&mut self.dynamic, 6),
            (&mut self.instruction, 10),
        ] {
            if let Some(Some(b)) = base(cmd, i) {
                *field = Some(b);
            }
        }
    }

    fn extent(e: Option<Extent>, sink: &mut impl StateSink, what: &'static str) {
        match e {
            None => sink.unbounded(what),
            Some(Extent::Nothing) => {}
            Some(Extent::Unbounded(why)) => sink.unbounded(why),
            Some(Extent::Ranges(rs)) => {
                for r in rs.into_iter().flatten() {
                    sink.write(r);
                }
            }
        }
    }

    fn depth_writes(&self, sink: &mut impl StateSink) {
        let (Some(d), Some(s), Some(h), Some(n)) =
            (self.depth, self.stencil, self.hiz, self.samples)
        else {
            return sink.unbounded("depth, stencil, HiZ or multisample state not seen");
        };
        let depth = d.dwords();
        Self::extent(Some(surface::depth_buffer(depth, n)), sink, "");
        Self::extent(
            Some(surface::stencil_buffer(s.dwords(), depth, n)),
            sink,
            "",
        );
        Self::extent(Some(surface::hiz_buffer(h.dwords(), depth)), sink, "");
    }

    fn draw(&mut self, mem: &mut impl GpuRead, sink: &mut impl StateSink) {
        for s in [VS, HS, DS, GS, PS] {
            let stage = self.stages[s];
            match stage.enabled {
                None => return sink.unbounded("shader stage state not seen"),
                Some(false) => continue,
                Some(true) => {}
            }
            for ksp in stage.ksp.into_iter().flatten() {
                self.kernel(ksp, stage.bt, stage.scratch, mem, sink);
            }
        }
        self.depth_writes(sink);
        match self.so_enabled {
            None => sink.unbounded("stream-output state not seen"),
            Some(false) => {}
            Some(true) => {
                for so in self.so {
                    Self::extent(so, sink, "stream-output buffer state not seen");
                }
            }
        }
    }

    fn dispatch(&mut self, cmd: &[u32], mem: &mut impl GpuRead, sink: &mut impl StateSink) {
        let (Some((start, len)), Some(dynamic)) = (self.idd, self.dynamic) else {
            return sink.unbounded("interface descriptor state not seen");
        };
        // GPGPU_WALKER: Interface Descriptor Offset, dw1 bits 5:0.
        let index = u64::from(cmd.get(1).map_or(0, |d| d & 0x3f));
        let off = index * IDD_BYTES;
        if off + IDD_BYTES > len {
            return sink.unbounded("interface descriptor beyond the loaded ones");
        }
        let Some(at) = dynamic.checked_add(start).and_then(|a| a.checked_add(off)) else {
            return sink.unbounded("interface descriptor address overflows");
        };
        let mut b = [0u8; IDD_BYTES as usize];
        if !mem.read(at, &mut b) {
            return sink.unbounded("interface descriptor not readable");
        }
        sink.read_state(Range {
            start: at,
            end: at + IDD_BYTES,
        });
        let d = |i: usize| u32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
        // Kernel Start Pointer dw0-1 bits 47:6; Binding Table Pointer dw4
        // bits 15:5.
        let ksp = (u64::from(d(0)) | u64::from(d(1) & 0xffff) << 32) & !0x3f;
        let bt = u64::from(d(4) & 0xffe0);
        let Some((scratch_base, per_thread)) = self.vfe_scratch else {
            return sink.unbounded("compute scratch state not seen");
        };
        self.kernel(ksp, Some(bt), (scratch_base, per_thread), mem, sink);
    }

    /// The writes of the kernel at `ksp` run with binding table `bt` and
    /// scratch space `scratch`.
    fn kernel(
        &mut self,
        ksp: u64,
        bt: Option<u64>,
        scratch: (u64, u32),
        mem: &mut impl GpuRead,
        sink: &mut impl StateSink,
    ) {
        let Some(ib) = self.instruction else {
            return sink.unbounded("instruction base not seen");
        };
        let Some(addr) = ib.checked_add(ksp) else {
            return sink.unbounded("kernel address overflows");
        };
        let k = self.kernel_at(addr, mem, sink);
        if let Some(why) = k.unbounded {
            return sink.unbounded(why);
        }
        if k.scratch {
            // Spills past the per-thread space would land in another
            // thread's (the field: 1 KiB << n).
            if scratch.1 > 11 || k.scratch_end > 1024u64 << scratch.1 {
                return sink.unbounded("spills past the per-thread scratch space");
            }
            let Some(general) = self.general else {
                return sink.unbounded("general state base not seen");
            };
            match general.checked_add(scratch.0) {
                Some(b) => {
                    Self::extent(
                        Some(surface::scratch(b, scratch.1, MAX_SCRATCH_THREADS)),
                        sink,
                        "",
                    );
                }
                None => return sink.unbounded("scratch address overflows"),
            }
        }
        if k.bti == [0; 4] {
            return;
        }
        let (Some(bt), Some(ss)) = (bt, self.surface) else {
            return sink.unbounded("binding table state not seen");
        };
        let table_base = match self.bt_pool {
            None => return sink.unbounded("binding table pool state not seen"),
            Some(Some(pool)) => pool,
            Some(None) => ss,
        };
        let Some(table) = table_base.checked_add(bt) else {
            return sink.unbounded("binding table address overflows");
        };
        for i in 0..256u64 {
            if k.bti[(i / 64) as usize] & (1 << (i % 64)) == 0 {
                continue;
            }
            let at = table + 4 * i;
            let mut e = [0u8; 4];
            if !mem.read(at, &mut e) {
                return sink.unbounded("binding table not readable");
            }
            sink.read_state(Range {
                start: at,
                end: at + 4,
            });
            // A binding table entry: Surface State Pointer bits 31:6.
            let off = u64::from(u32::from_le_bytes(e) & !0x3f);
            let Some(sa) = ss.checked_add(off) else {
                return sink.unbounded("surface state address overflows");
            };
            let mut s = [0u8; SURFACE_STATE_BYTES];
            if !mem.read(sa, &mut s) {
                return sink.unbounded("surface state not readable");
            }
            // The extent comes from dwords 0-11; 12-15 hold the clear
            // color, which iris rewrites on the GPU (MI_STORE_DATA_IMM)
            // between draws that read the state.
            sink.read_state(Range {
                start: sa,
                end: sa + SURFACE_EXTENT_BYTES,
            });
            let mut dw = [0u32; 16];
            for (j, w) in dw.iter_mut().enumerate() {
                *w = u32::from_le_bytes([s[4 * j], s[4 * j + 1], s[4 * j + 2], s[4 * j + 3]]);
            }
            Self::extent(Some(surface::surface_state(&dw)), sink, "");
        }
    }

    /// The writes of the kernel at `addr`, scanned once per context.
    fn kernel_at(
        &mut self,
        addr: u64,
        mem: &mut impl GpuRead,
        sink: &mut impl StateSink,
    ) -> KernelWrites {
        if let Some((_, k)) = self.kernels.iter().flatten().find(|(a, _)| *a == addr) {
            return *k;
        }
        let mut end = addr;
        let k = kernel_writes(|off, buf| {
            let Some(a) = addr.checked_add(off) else {
                return false;
            };
            end = end.max(a + 16);
            mem.read(a, buf)
        });
        sink.read_state(Range { start: addr, end });
        if let Some(slot) = self.kernels.get_mut(self.next_kernel) {
            *slot = Some((addr, k));
        }
        self.next_kernel = (self.next_kernel + 1) % KERNEL_CACHE;
        k
    }
}

/// A depth, stencil or HiZ buffer command as it was given (Gen9's are 8,
/// 5 and 5 dwords; longer ones are cut, and the extent functions refuse
/// what they do not understand).
#[derive(Debug, Clone, Copy)]
struct Cmd {
    dw: [u32; 8],
    len: usize,
}

impl Cmd {
    fn of(cmd: &[u32]) -> Self {
        let mut dw = [0u32; 8];
        for (d, c) in dw.iter_mut().zip(cmd) {
            *d = *c;
        }
        Self {
            dw,
            len: cmd.len().min(8),
        }
    }

    fn dwords(&self) -> &[u32] {
        self.dw.get(..self.len).unwrap_or(&self.dw)
    }
}

/// A 3DSTATE_BINDING_TABLE_POINTERS_* pointer (dw1 bits 15:5).
fn bt_pointer(cmd: &[u32]) -> Option<u64> {
    cmd.get(1).map(|d| u64::from(d & 0xffe0))
}

impl Stage {
    /// 3DSTATE_VS/HS/DS/GS: kernel start pointer at dword `k`, scratch at
    /// dword `s`, Enable at dword `e` bit `bit`.
    fn simple(&mut self, cmd: &[u32], k: usize, s: usize, e: usize, bit: u32) {
        let (Some(ksp), Some(&en), Some(&sd)) = (addr48(cmd, k, 6), cmd.get(e), cmd.get(s)) else {
            *self = Stage {
                bt: self.bt,
                ..Stage::default()
            };
            return;
        };
        self.enabled = Some(en & (1 << bit) != 0);
        self.ksp = [Some(ksp), None, None];
        self.scratch = (addr48(cmd, s, 10).unwrap_or(0), sd & 0xf);
    }

    /// 3DSTATE_PS: kernel start pointers 0, 1, 2 at dwords 1, 8, 10,
    /// scratch at dword 4, dispatch enables dw6 bits 0 (8), 1 (16), 2 (32).
    fn pixel(&mut self, cmd: &[u32]) {
        let (Some(&d6), Some(&d4)) = (cmd.get(6), cmd.get(4)) else {
            *self = Stage {
                bt: self.bt,
                ..Stage::default()
            };
            return;
        };
        let (s8, s16, s32) = (d6 & 1 != 0, d6 & 2 != 0, d6 & 4 != 0);
        // Mesa's brw_fs_simd_width_for_ksp(): which KSP each enabled width
        // uses.
        let used = [s8 || (s16 != s32), s32 && (s16 || s8), s16 && (s32 || s8)];
        let mut ksp = [None; 3];
        for (i, (&u, at)) in used.iter().zip([1usize, 8, 10]).enumerate() {
            if u {
                match addr48(cmd, at, 6) {
                    Some(k) => ksp[i] = Some(k),
                    None => {
                        self.enabled = None;
                        return;
                    }
                }
            }
        }
        self.enabled = Some(s8 || s16 || s32);
        self.ksp = ksp;
        self.scratch = (addr48(cmd, 4, 10).unwrap_or(0), d4 & 0xf);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    /// Regions of GPU memory.
    struct Mem(Vec<(u64, Vec<u8>)>);

    impl GpuRead for Mem {
        fn read(&mut self, addr: u64, buf: &mut [u8]) -> bool {
            for (base, bytes) in &self.0 {
                if addr >= *base && addr + buf.len() as u64 <= base + bytes.len() as u64 {
                    let o = (addr - base) as usize;
                    buf.copy_from_slice(&bytes[o..o + buf.len()]);
                    return true;
                }
            }
            false
        }
    }

    #[derive(Default)]
    struct Sink {
        writes: Vec<Range>,
        unbounded: Option<&'static str>,
        reads: Vec<Range>,
    }

    impl StateSink for Sink {
        fn write(&mut self, r: Range) {
            self.writes.push(r);
        }
        fn unbounded(&mut self, why: &'static str) {
            self.unbounded.get_or_insert(why);
        }
        fn read_state(&mut self, r: Range) {
            self.reads.push(r);
        }
    }

    /// The SIMD16 fragment shader iris compiled for gmig-gl's desktop
    /// (testdata/desktop.txt, second kernel: one render-target write to
    /// binding table entry 0).
    pub(crate) fn fragment_shader() -> Vec<u8> {
        let mut k = super::super::eu::tests::kernels(include_str!("testdata/desktop.txt"));
        k.swap_remove(2).bytes
    }

    pub(crate) const IB: u64 = 0x10_0000;
    pub(crate) const SS: u64 = 0x20_0000;
    pub(crate) const GS_BASE: u64 = 0x30_0000;
    pub(crate) const KSP: u64 = 0x40;
    pub(crate) const BT: u64 = 0x100;
    pub(crate) const SURF: u64 = 0x200;
    pub(crate) const RT: u64 = 0x1_0000_0000;

    /// A 256x256 RGBA8 linear render target at RT (pitch 1024).
    pub(crate) fn render_target() -> [u32; 16] {
        let mut dw = [0u32; 16];
        // 2D, format R8G8B8A8_UNORM (0xc7), vertical/horizontal
        // alignment 4, linear.
        dw[0] = 1 << 29 | 0xc7 << 18 | 1 << 16 | 1 << 14;
        dw[2] = 255 << 16 | 255;
        dw[3] = 1023;
        dw[8] = RT as u32;
        dw[9] = (RT >> 32) as u32;
        dw
    }

    fn memory(rt: [u32; 16]) -> Mem {
        let mut ss = vec![0u8; 0x1000];
        ss[BT as usize..BT as usize + 4].copy_from_slice(&(SURF as u32).to_le_bytes());
        for (i, d) in rt.iter().enumerate() {
            let o = SURF as usize + 4 * i;
            ss[o..o + 4].copy_from_slice(&d.to_le_bytes());
        }
        let mut ib = vec![0u8; KSP as usize];
        ib.extend(fragment_shader());
        Mem(vec![(SS, ss), (IB, ib)])
    }

    pub(crate) fn sba() -> [u32; 19] {
        let mut c = [0u32; 19];
        c[0] = 0x6101_0011;
        for (i, b) in [(1, GS_BASE), (4, SS), (6, 0), (8, 0), (10, IB)] {
            c[i] = b as u32 | 1;
            c[i + 1] = (b >> 32) as u32;
        }
        c
    }

    /// What a context does before a draw: bases, binding table, shader
    /// stages (only the PS, SIMD16), no depth, no stream output.
    pub(crate) fn setup() -> Vec<Vec<u32>> {
        let mut ps = vec![0x7820_000a, KSP as u32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        ps[6] = 2;
        vec![
            sba().to_vec(),
            vec![0x782a_0000, BT as u32],
            vec![0x7810_0007, 0, 0, 0, 0, 0, 0, 0, 0],
            vec![0x781b_0007, 0, 0, 0, 0, 0, 0, 0, 0],
            vec![0x781d_0009, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            vec![0x7811_0008, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            ps,
            vec![0x7805_0006, 7 << 29, 0, 0, 0, 0, 0, 0],
            vec![0x7806_0003, 0, 0, 0, 0],
            vec![0x7807_0003, 0, 0, 0, 0],
            vec![0x780d_0000, 0],
            vec![0x781e_0003, 0, 0, 0, 0],
        ]
    }

    pub(crate) const DRAW: [u32; 7] = [0x7b00_0005, 0, 3, 0, 1, 0, 0];

    fn draw(cmds: &[Vec<u32>], mem: &mut Mem, fresh: bool) -> Sink {
        let mut st = if fresh {
            PipeState::fresh()
        } else {
            PipeState::new()
        };
        let mut sink = Sink::default();
        for c in cmds {
            assert!(!st.command(c, mem, &mut sink));
        }
        assert!(st.command(&DRAW, mem, &mut sink));
        sink
    }

    #[test]
    fn a_draw_writes_its_render_target() {
        let s = draw(&setup(), &mut memory(render_target()), true);
        assert_eq!(s.unbounded, None);
        assert_eq!(
            s.writes,
            [Range {
                start: RT,
                end: RT + 256 * 1024
            }]
        );
        // The binding table entry, the surface state's extent dwords and
        // the kernel were read.
        assert!(s.reads.contains(&Range {
            start: SS + BT,
            end: SS + BT + 4
        }));
        assert!(s.reads.contains(&Range {
            start: SS + SURF,
            end: SS + SURF + 48
        }));
        assert!(s.reads.iter().any(|r| r.start == IB + KSP));
    }

    #[test]
    fn state_not_seen_or_not_readable_is_unbounded() {
        // A context whose binding table pool state is unknown.
        assert!(draw(&setup(), &mut memory(render_target()), false)
            .unbounded
            .is_some());
        // Each piece of state missing in turn.
        for skip in 0..setup().len() {
            let mut cmds = setup();
            cmds.remove(skip);
            let s = draw(&cmds, &mut memory(render_target()), true);
            assert!(s.unbounded.is_some(), "without command {skip}");
        }
        // The binding table, the surface state or the kernel not mapped.
        for drop in [0usize, 1] {
            let mut m = memory(render_target());
            m.0.remove(drop);
            assert!(draw(&setup(), &mut m, true).unbounded.is_some());
        }
        // A surface the extent rules refuse (a reserved surface type).
        let mut rt = render_target();
        rt[0] = (rt[0] & !(7 << 29)) | 5 << 29;
        assert!(draw(&setup(), &mut memory(rt), true).unbounded.is_some());
    }

    #[test]
    fn a_disabled_pixel_shader_writes_no_render_target() {
        let mut cmds = setup();
        cmds[6][6] = 0;
        let s = draw(&cmds, &mut memory(render_target()), true);
        assert_eq!((s.unbounded, s.writes.len()), (None, 0));
    }

    #[test]
    fn depth_and_hiz_operations_write_the_depth_buffers() {
        let mut st = PipeState::fresh();
        let mut sink = Sink::default();
        let mut m = memory(render_target());
        // No depth state yet.
        assert!(st.command(&[0x7852_0003, 1 << 30, 0, 0, 0], &mut m, &mut sink));
        assert!(sink.unbounded.is_some());
        let mut sink = Sink::default();
        for c in setup() {
            st.command(&c, &mut m, &mut sink);
        }
        // An operation with no enable bit does nothing.
        assert!(st.command(&[0x7852_0003, 0, 0, 0, 0], &mut m, &mut sink));
        assert_eq!((sink.unbounded, sink.writes.len()), (None, 0));
    }
}

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
    depth: Option<Extent>,
    stencil: Option<Extent>,
    hiz: Option<Extent>,
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
            so_enabled: None,
            so: [None; 4],
            vfe_scratch: None,
            idd: None,
            kernels: [None; KERNEL_CACHE],
            next_kernel: 0,
        }
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
            0x7805 => self.depth = Some(surface::depth_buffer(cmd)),
            0x7806 => self.stencil = Some(surface::stencil_buffer(cmd)),
            0x7807 => self.hiz = Some(surface::hiz_buffer(cmd)),
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
        Self::extent(self.depth, sink, "depth buffer state not seen");
        Self::extent(self.stencil, sink, "stencil buffer state not seen");
        Self::extent(self.hiz, sink, "HiZ buffer state not seen");
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
            sink.read_state(Range { start: at, end: at + 4 });
            // A binding table entry: Surface State Pointer bits 31:6.
            let off = u64::from(u32::from_le_bytes(e) & !0x3f);
            let Some(sa) = ss.checked_add(off) else {
                return sink.unbounded("surface state address overflows");
            };
            let mut s = [0u8; SURFACE_STATE_BYTES];
            if !mem.read(sa, &mut s) {
                return sink.unbounded("surface state not readable");
            }
            sink.read_state(Range {
                start: sa,
                end: sa + SURFACE_STATE_BYTES as u64,
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
        let used = [
            s8 || (s16 != s32),
            s32 && (s16 || s8),
            s16 && (s32 || s8),
        ];
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

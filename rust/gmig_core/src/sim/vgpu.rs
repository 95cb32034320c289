// SPDX-License-Identifier: GPL-2.0

//! The sim vGPU: registers, GGTT partition and execlist submission.
//!
//! A [`SimVgpu`] owns the GGTT entries of its partition (storage `S` comes
//! from the caller: a `KVVec` in the kernel, a `Vec` in tests) and the
//! register file. Guest accesses come in through [`SimVgpu::region_read`]
//! and [`SimVgpu::region_write`], which return an [`Event`] telling the glue
//! what to do next (run the command streamer, tell the dirty tracker that a
//! GGTT entry changed). Submitted contexts wait in a small queue until the
//! glue's worker calls [`SimVgpu::take_submission`] and
//! [`SimVgpu::execute`].

use super::super::gtt::{Partition, Pte, PAGE_SIZE};
use super::super::mem::GuestMem;
use super::super::writeset::WriteSink;
use super::{
    config::{ConfigError, ConfigSpace, CONFIG_SIZE},
    exec::{self, CtxSlot, ExecStats, Fault, NoContexts},
    regs::*,
};

/// VFIO region index of BAR0.
pub const REGION_BAR0: u32 = 0;
/// VFIO region index of the PCI configuration space.
pub const REGION_CONFIG: u32 = 7;
/// Maximum submissions waiting for the command streamer.
pub const QUEUE_LEN: usize = 8;

/// A vGPU type (mdev type).
#[derive(Debug)]
pub struct VgpuType {
    /// mdev type name (sysfs directory under `mdev_supported_types`).
    pub name: &'static str,
    /// Size of the GGTT partition.
    pub ggtt_size: u64,
    /// Maximum number of instances.
    pub max_instances: u32,
    /// Text of the type's `description` attribute.
    pub description: &'static str,
}

/// The vGPU types of the sim parent, in the spirit of GVT-g's V5_x types. A
/// `static`, not a `const`: the sim's `Provider::type_index` finds a vGPU's type by
/// its address, and each use of a `const` may be another copy.
pub static TYPES: &[VgpuType] = &[
    VgpuType {
        name: "gmig-small",
        ggtt_size: 64 << 20,
        max_instances: 7,
        description: "gmig sim Gen9 vGPU, 64 MiB graphics memory partition, up to 7 instances",
    },
    VgpuType {
        name: "gmig-large",
        ggtt_size: 128 << 20,
        max_instances: 3,
        description: "gmig sim Gen9 vGPU, 128 MiB graphics memory partition, up to 3 instances",
    },
    VgpuType {
        name: "gmig-xl",
        ggtt_size: 1 << 30,
        max_instances: 3,
        description: "gmig sim Gen9 vGPU, 1 GiB graphics memory partition, up to 3 instances",
    },
];

/// What the glue must do after a register write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Nothing.
    None,
    /// A context was submitted: run the command streamer.
    Submit,
    /// The GGTT entry `index` of the partition changed from `old` to `new`
    /// (raw PTEs): a guest page became, or stopped being, GPU-reachable.
    GgttUpdate {
        /// Entry index within the partition.
        index: usize,
        /// Previous raw entry.
        old: u64,
        /// New raw entry.
        new: u64,
    },
}

/// A rejected region access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessError {
    /// No such region.
    BadRegion,
    /// Offset outside the region or not aligned to the access size.
    BadOffset,
    /// Access size not supported at this offset.
    BadSize,
    /// Configuration space access error.
    Config(ConfigError),
}

/// Register state that migrates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Regs {
    elsp: [u32; 4],
    elsp_count: u32,
    queue: [u64; QUEUE_LEN],
    queue_len: u32,
    status_lo: u32,
    status_hi: u32,
    csb: [u32; 2 * CSB_ENTRIES],
    csb_ptr: u32,
    imr: u32,
    iir: u32,
    master: u32,
    fault_status: u32,
    fault_addr: u64,
    fault_offset: u32,
    ring: [u32; 4],
}

/// Bytes of [`Regs::encode`].
pub const REGS_BYTES: usize =
    4 * (4 + 1 + 2 * QUEUE_LEN + 1 + 2 + 2 * CSB_ENTRIES + 1 + 3 + 1 + 2 + 1 + 4);

impl Regs {
    /// Submissions waiting, oldest first.
    pub fn pending(&self) -> &[u64] {
        self.queue.get(..self.queue_len as usize).unwrap_or(&[])
    }

    fn words(&self) -> impl Iterator<Item = u32> + '_ {
        let q = self
            .queue
            .iter()
            .flat_map(|d| [*d as u32, (*d >> 32) as u32]);
        self.elsp
            .iter()
            .copied()
            .chain([self.elsp_count])
            .chain(q)
            .chain([self.queue_len, self.status_lo, self.status_hi])
            .chain(self.csb.iter().copied())
            .chain([
                self.csb_ptr,
                self.imr,
                self.iir,
                self.master,
                self.fault_status,
                self.fault_addr as u32,
                (self.fault_addr >> 32) as u32,
                self.fault_offset,
            ])
            .chain(self.ring.iter().copied())
    }

    /// Little-endian encoding for the migration stream.
    pub fn encode(&self, out: &mut [u8; REGS_BYTES]) {
        // Index loops, not zip(): see put_le32() in the streamer.
        for (i, w) in self.words().enumerate() {
            if let Some(c) = out.get_mut(4 * i..4 * i + 4) {
                c.copy_from_slice(&w.to_le_bytes());
            }
        }
    }

    /// Decodes [`Regs::encode`]'s output; `None` if a field is out of range.
    pub fn decode(b: &[u8; REGS_BYTES]) -> Option<Self> {
        let mut w = b
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        let mut next = || w.next().unwrap_or(0);
        let mut r = Regs::default();
        for e in r.elsp.iter_mut() {
            *e = next();
        }
        r.elsp_count = next();
        for q in r.queue.iter_mut() {
            *q = u64::from(next()) | (u64::from(next()) << 32);
        }
        r.queue_len = next();
        r.status_lo = next();
        r.status_hi = next();
        for c in r.csb.iter_mut() {
            *c = next();
        }
        r.csb_ptr = next();
        r.imr = next();
        r.iir = next();
        r.master = next();
        r.fault_status = next();
        r.fault_addr = u64::from(next()) | (u64::from(next()) << 32);
        r.fault_offset = next();
        for x in r.ring.iter_mut() {
            *x = next();
        }
        let ok = r.elsp_count < 4 && (r.queue_len as usize) <= QUEUE_LEN;
        ok.then_some(r)
    }
}

/// Translates GGTT graphics address `gaddr` through `ggtt`, the entries
/// of `partition`, to a guest physical address.
pub(super) fn translate_ggtt(partition: Partition, ggtt: &[u64], gaddr: u64) -> Result<u64, Fault> {
    let index = partition
        .index(gaddr)
        .ok_or(Fault::new(exec::FaultKind::OutsidePartition, gaddr))?;
    let raw = ggtt.get(index).copied().unwrap_or(0);
    let pte = Pte::decode(raw).ok_or(Fault::new(exec::FaultKind::Unmapped, gaddr))?;
    Ok(pte.addr + (gaddr % PAGE_SIZE))
}

/// The sim vGPU device model: GGTT storage `S`, and storage `C` for the
/// pipeline state of the contexts it ran ([`CtxSlot`]s: a `KVVec` in the
/// kernel, a `Vec` in tests; [`NoContexts`], the default, keeps none and
/// every draw's write set is unbounded). See [`SimVgpu::with_contexts`].
pub struct SimVgpu<S, C = NoContexts> {
    ty: &'static VgpuType,
    partition: Partition,
    ggtt: S,
    contexts: C,
    config: ConfigSpace,
    regs: Regs,
    ggtt_dropped: u64,
    completed: u64,
    quiesced: bool,
    /// Guest frames mapped through PPGTTs, `(first, count)`: the sim
    /// shadows no guest PPGTT, so the stand-in guest driver that builds
    /// one says which frames it maps ([`SimVgpu::pin_frames`]), as
    /// GVT-g's pins of shadowed pages do.
    pinned: (u64, u64),
}

impl<S: core::ops::DerefMut<Target = [u64]>> SimVgpu<S> {
    /// A vGPU of type `ty` at `partition`; `ggtt` must hold exactly one
    /// entry per partition page. It keeps no context state until given
    /// storage for it ([`SimVgpu::with_contexts`]).
    pub fn new(ty: &'static VgpuType, partition: Partition, ggtt: S) -> Option<Self> {
        if ggtt.len() as u64 != partition.entries()
            || partition.size != ty.ggtt_size
            || partition.base.checked_add(partition.size)? > GGTT_SPACE
        {
            return None;
        }
        let mut v = Self {
            ty,
            partition,
            ggtt,
            contexts: NoContexts,
            config: ConfigSpace::new(),
            regs: Regs::default(),
            ggtt_dropped: 0,
            completed: 0,
            quiesced: false,
            pinned: (0, 0),
        };
        v.reset();
        Some(v)
    }

    /// The vGPU with `contexts` as storage for the pipeline state of the
    /// contexts it runs (emptied here), one context per slot, least
    /// recently run evicted first: e.g. `CONTEXT_SLOTS` copies of
    /// [`CtxSlot::EMPTY`]. The command streamer follows each context's
    /// state across its submissions ([`exec`]) to bound what its draws and
    /// dispatches write.
    pub fn with_contexts<C: core::ops::DerefMut<Target = [CtxSlot]>>(
        self,
        mut contexts: C,
    ) -> SimVgpu<S, C> {
        exec::clear_contexts(&mut contexts);
        SimVgpu {
            ty: self.ty,
            partition: self.partition,
            ggtt: self.ggtt,
            contexts,
            config: self.config,
            regs: self.regs,
            ggtt_dropped: self.ggtt_dropped,
            completed: self.completed,
            quiesced: self.quiesced,
            pinned: self.pinned,
        }
    }
}

impl<S: core::ops::DerefMut<Target = [u64]>, C: core::ops::DerefMut<Target = [CtxSlot]>>
    SimVgpu<S, C>
{
    /// The GGTT partition, its entries and the context state slots,
    /// borrowed apart (the command streamer reads the first two while it
    /// updates the third).
    pub(super) fn exec_parts(&mut self) -> (Partition, &[u64], &mut [CtxSlot]) {
        (self.partition, &self.ggtt, &mut self.contexts)
    }

    /// Device reset: registers, config space, GGTT and context states
    /// cleared, scheduling running.
    pub fn reset(&mut self) {
        exec::clear_contexts(&mut self.contexts);
        self.quiesced = false;
        self.pinned = (0, 0);
        self.regs = Regs::default();
        self.regs.imr = u32::MAX;
        self.config = ConfigSpace::new();
        for e in &mut *self.ggtt {
            *e = 0;
        }
    }

    /// Frames `first..first + count` are mapped through a PPGTT from now
    /// on (replacing the previous range): the GPU may write them. The
    /// caller tells a running migration (`ShadowEvent::Pinned`).
    pub fn pin_frames(&mut self, first: u64, count: u64) {
        self.pinned = (first, count);
    }

    /// The frames [`SimVgpu::pin_frames`] named.
    pub fn pinned_frames(&self) -> core::ops::Range<u64> {
        self.pinned.0..self.pinned.0.saturating_add(self.pinned.1)
    }

    /// The vGPU's type.
    pub fn vgpu_type(&self) -> &'static VgpuType {
        self.ty
    }

    /// The GGTT partition.
    pub fn partition(&self) -> Partition {
        self.partition
    }

    /// The partition's raw GGTT entries.
    pub fn ggtt(&self) -> &[u64] {
        &self.ggtt
    }

    /// GGTT writes outside the partition that were dropped.
    pub fn ggtt_dropped(&self) -> u64 {
        self.ggtt_dropped
    }

    /// Contexts completed since creation.
    pub fn completed(&self) -> u64 {
        self.completed
    }

    /// Register state (for migration).
    pub fn regs(&self) -> &Regs {
        &self.regs
    }

    /// PCI configuration space (for migration).
    pub fn config(&self) -> &ConfigSpace {
        &self.config
    }

    /// Size of VFIO region `index`, `None` if it does not exist.
    pub fn region_size(&self, index: u32) -> Option<u64> {
        match index {
            REGION_BAR0 => Some(BAR0_SIZE),
            REGION_CONFIG => Some(CONFIG_SIZE as u64),
            _ => None,
        }
    }

    /// Translates a GGTT graphics address to a guest physical address.
    pub fn translate_ggtt(&self, gaddr: u64) -> Result<u64, Fault> {
        translate_ggtt(self.partition, &self.ggtt, gaddr)
    }

    /// Guest frames mapped by present GGTT entries.
    pub fn ggtt_frames(&self) -> impl Iterator<Item = u64> + '_ {
        self.ggtt
            .iter()
            .filter_map(|&raw| Pte::decode(raw).map(|p| p.gfn()))
    }

    /// Writes a GGTT entry by global graphics address (guest or workload).
    pub fn write_ggtt_entry(&mut self, gaddr: u64, raw: u64) -> Event {
        let Some(index) = self.partition.index(gaddr) else {
            self.ggtt_dropped += 1;
            return Event::None;
        };
        match self.ggtt.get_mut(index) {
            Some(e) if *e != raw => {
                let old = *e;
                *e = raw;
                Event::GgttUpdate {
                    index,
                    old,
                    new: raw,
                }
            }
            _ => Event::None,
        }
    }

    /// Replaces the whole GGTT (restore after migration).
    pub fn restore_ggtt(&mut self, entries: &[u64]) -> bool {
        let dst = &mut *self.ggtt;
        if entries.len() != dst.len() {
            return false;
        }
        for (d, s) in dst.iter_mut().zip(entries) {
            *d = *s;
        }
        true
    }

    /// Replaces the whole GGTT with `entry(i)` for each index `i`.
    pub fn restore_ggtt_with(&mut self, entry: impl Fn(usize) -> u64) {
        for (i, e) in self.ggtt.iter_mut().enumerate() {
            *e = entry(i);
        }
    }

    /// Restores registers and config space from a migration stream. The
    /// contexts' pipeline states are not migrated: they are dropped here
    /// and the streamer starts each context as not known (its draws are
    /// unbounded until its commands set the state again: safe).
    pub fn restore_state(&mut self, regs: Regs, config: &[u8; CONFIG_SIZE]) {
        exec::clear_contexts(&mut self.contexts);
        self.regs = regs;
        self.config.restore(config);
    }

    /// Queues a context descriptor as an ELSP write would.
    pub fn submit(&mut self, desc: u64) -> Event {
        let n = self.regs.queue_len as usize;
        match self.regs.queue.get_mut(n) {
            Some(slot) => {
                *slot = desc;
                self.regs.queue_len += 1;
                self.regs.status_lo = ExeclistStatus(self.regs.status_lo).with_busy(1).0;
                Event::Submit
            }
            None => {
                self.set_fault(exec::FaultKind::QueueFull as u32, desc, 0);
                Event::None
            }
        }
    }

    /// Stops (`true`) or restarts scheduling: while stopped, submissions
    /// queue up and [`SimVgpu::take_submission`] hands out none.
    pub fn set_quiesced(&mut self, quiesced: bool) {
        self.quiesced = quiesced;
    }

    /// Whether scheduling is stopped.
    pub fn is_quiesced(&self) -> bool {
        self.quiesced
    }

    /// Takes the oldest submitted context descriptor (none while
    /// quiesced).
    pub fn take_submission(&mut self) -> Option<u64> {
        if self.quiesced || self.regs.queue_len == 0 {
            return None;
        }
        let d = self.regs.queue[0];
        self.regs.queue.copy_within(1.., 0);
        self.regs.queue_len -= 1;
        Some(d)
    }

    /// Submissions waiting (for migration: they are resubmitted on the
    /// destination).
    pub fn pending(&self) -> &[u64] {
        self.regs.pending()
    }

    /// Rewrites a pending descriptor (address remapping after migration).
    pub fn pending_mut(&mut self) -> &mut [u64] {
        let n = self.regs.queue_len as usize;
        self.regs.queue.get_mut(..n).unwrap_or(&mut [])
    }

    /// Whether an interrupt must be signalled now.
    pub fn irq_pending(&self) -> bool {
        MasterIrq(self.regs.master).enable() != 0 && self.regs.iir & !self.regs.imr != 0
    }

    fn set_fault(&mut self, code: u32, addr: u64, offset: u32) {
        self.regs.fault_status = code;
        self.regs.fault_addr = addr;
        self.regs.fault_offset = offset;
    }

    /// Executes one submitted context (see [`exec`]). `sink` is told,
    /// before each command runs, every guest page it may write (its write
    /// set, from the command's fields), or that its write set is unknown. On completion or fault a CSB
    /// entry is written and the context-switch interrupt raised.
    pub fn execute(
        &mut self,
        desc: u64,
        mem: &mut impl GuestMem,
        sink: &mut impl WriteSink,
    ) -> Result<ExecStats, Fault> {
        self.execute_within(desc, mem, sink, exec::Budget::default())
    }

    /// [`SimVgpu::execute`] with other limits than the default ones.
    pub fn execute_within(
        &mut self,
        desc: u64,
        mem: &mut impl GuestMem,
        sink: &mut impl WriteSink,
        budget: exec::Budget,
    ) -> Result<ExecStats, Fault> {
        let res = exec::run(self, desc, mem, sink, budget);
        let ctx_id = ContextDescriptor(desc).ctx_id() as u32;
        let mut status = CsbStatus(0).with_complete(1);
        if let Err(f) = &res {
            self.set_fault(f.kind as u32, f.addr, f.offset);
            status = status.with_fault(1);
        }
        let ptr = CsbPtr(self.regs.csb_ptr);
        let wp = (ptr.write() as usize + 1) % CSB_ENTRIES;
        if let Some(e) = self.regs.csb.get_mut(2 * wp..2 * wp + 2) {
            e[0] = status.0;
            e[1] = ctx_id;
        }
        self.regs.csb_ptr = ptr.with_write(wp as u32).0;
        self.completed += 1;
        // The completion count in the register migrates with the state.
        let st = ExeclistStatus(self.regs.status_lo);
        let st = st.with_completed(st.completed().wrapping_add(1));
        self.regs.status_lo = st.0;
        if self.regs.queue_len == 0 {
            self.regs.status_lo = st.with_busy(0).0;
        }
        self.regs.status_hi = ctx_id;
        self.regs.iir |= IIR_CTX_SWITCH;
        if let Ok(s) = &res {
            if s.user_interrupts > 0 {
                self.regs.iir |= IIR_USER;
            }
        }
        res
    }

    pub(super) fn set_ring_view(&mut self, start: u32, head: u32, tail: u32, ctl: u32) {
        self.regs.ring = [tail, head, start, ctl];
    }

    /// A VFIO region read of 1, 2, 4 or 8 bytes.
    pub fn region_read(&mut self, index: u32, off: u64, buf: &mut [u8]) -> Result<(), AccessError> {
        match index {
            REGION_CONFIG => self.config.read(off, buf).map_err(AccessError::Config),
            REGION_BAR0 => self.bar0_read(off, buf),
            _ => Err(AccessError::BadRegion),
        }
    }

    /// A VFIO region write of 1, 2, 4 or 8 bytes.
    pub fn region_write(&mut self, index: u32, off: u64, buf: &[u8]) -> Result<Event, AccessError> {
        match index {
            REGION_CONFIG => self
                .config
                .write(off, buf)
                .map(|()| Event::None)
                .map_err(AccessError::Config),
            REGION_BAR0 => self.bar0_write(off, buf),
            _ => Err(AccessError::BadRegion),
        }
    }

    fn check(off: u64, len: usize) -> Result<(), AccessError> {
        let len64 = len as u64;
        if !matches!(len, 1 | 2 | 4 | 8) {
            return Err(AccessError::BadSize);
        }
        if !off.is_multiple_of(len64) || off.checked_add(len64).is_none_or(|e| e > BAR0_SIZE) {
            return Err(AccessError::BadOffset);
        }
        Ok(())
    }

    fn reg_read32(&self, off: u64) -> u32 {
        let p = self.partition;
        match off {
            RING_TAIL => self.regs.ring[0],
            RING_HEAD => self.regs.ring[1],
            RING_START => self.regs.ring[2],
            RING_CTL => self.regs.ring[3],
            RCS_IMR => self.regs.imr,
            EXECLIST_STATUS_LO => self.regs.status_lo,
            EXECLIST_STATUS_HI => self.regs.status_hi,
            o if (CSB..CSB + 8 * CSB_ENTRIES as u64).contains(&o) => self
                .regs
                .csb
                .get(((o - CSB) / 4) as usize)
                .copied()
                .unwrap_or(0),
            CSB_PTR => self.regs.csb_ptr,
            FAULT_STATUS => self.regs.fault_status,
            FAULT_ADDR_LO => self.regs.fault_addr as u32,
            FAULT_ADDR_HI => (self.regs.fault_addr >> 32) as u32,
            FAULT_OFFSET => self.regs.fault_offset,
            RCS_IIR => self.regs.iir,
            MASTER_IRQ => self.regs.master,
            PVINFO => PVINFO_MAGIC as u32,
            o if o == PVINFO + 4 => (PVINFO_MAGIC >> 32) as u32,
            PVINFO_VERSION => 1, // 1.0
            PVINFO_VGT_ID => p.base.checked_div(p.size).unwrap_or(0) as u32,
            PVINFO_GM_BASE => p.base as u32,
            PVINFO_GM_SIZE => p.size as u32,
            PVINFO_FENCE_NUM => 4,
            _ => 0,
        }
    }

    fn bar0_read(&mut self, off: u64, buf: &mut [u8]) -> Result<(), AccessError> {
        Self::check(off, buf.len())?;
        let mut v = [0u8; 8];
        if off >= GGTT_OFFSET {
            let gaddr = (off - GGTT_OFFSET) / 8 * PAGE_SIZE;
            let raw = self
                .partition
                .index(gaddr)
                .and_then(|i| self.ggtt.get(i).copied())
                .unwrap_or(0);
            v = raw.to_le_bytes();
            let shift = (off % 8) as usize;
            buf.copy_from_slice(
                v.get(shift..shift + buf.len())
                    .ok_or(AccessError::BadOffset)?,
            );
            return Ok(());
        }
        let base = off & !3;
        v[..4].copy_from_slice(&self.reg_read32(base).to_le_bytes());
        v[4..].copy_from_slice(&self.reg_read32(base + 4).to_le_bytes());
        let shift = (off % 4) as usize;
        buf.copy_from_slice(
            v.get(shift..shift + buf.len())
                .ok_or(AccessError::BadOffset)?,
        );
        Ok(())
    }

    fn bar0_write(&mut self, off: u64, buf: &[u8]) -> Result<Event, AccessError> {
        Self::check(off, buf.len())?;
        if off >= GGTT_OFFSET {
            // GGTT entries are written whole (4-byte halves are merged).
            let gaddr = (off - GGTT_OFFSET) / 8 * PAGE_SIZE;
            let old = self
                .partition
                .index(gaddr)
                .and_then(|i| self.ggtt.get(i).copied())
                .unwrap_or(0);
            let mut bytes = old.to_le_bytes();
            let shift = (off % 8) as usize;
            bytes
                .get_mut(shift..shift + buf.len())
                .ok_or(AccessError::BadOffset)?
                .copy_from_slice(buf);
            return Ok(self.write_ggtt_entry(gaddr, u64::from_le_bytes(bytes)));
        }
        if buf.len() != 4 && !(buf.len() == 8 && off == ELSP) {
            // Registers are 32-bit; a qword ELSP write is two dwords.
            return Err(AccessError::BadSize);
        }
        let mut ev = Event::None;
        for (i, c) in buf.chunks_exact(4).enumerate() {
            let v = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            let e = self.reg_write32(off + 4 * i as u64, v);
            if e != Event::None {
                ev = e;
            }
        }
        Ok(ev)
    }

    fn reg_write32(&mut self, off: u64, v: u32) -> Event {
        match off {
            ELSP => {
                let n = self.regs.elsp_count as usize;
                if let Some(s) = self.regs.elsp.get_mut(n) {
                    *s = v;
                }
                self.regs.elsp_count += 1;
                if self.regs.elsp_count < 4 {
                    return Event::None;
                }
                self.regs.elsp_count = 0;
                // Written as element 1 (hi, lo), then element 0 (hi, lo).
                let e = self.regs.elsp;
                let el1 = (u64::from(e[0]) << 32) | u64::from(e[1]);
                let el0 = (u64::from(e[2]) << 32) | u64::from(e[3]);
                let mut ev = self.submit(el0);
                if el1 != 0 {
                    let e1 = self.submit(el1);
                    if ev == Event::None {
                        ev = e1;
                    }
                }
                ev
            }
            RCS_IMR => {
                self.regs.imr = v;
                Event::None
            }
            RCS_IIR => {
                self.regs.iir &= !v;
                Event::None
            }
            MASTER_IRQ => {
                self.regs.master = MasterIrq(0).with_enable(MasterIrq(v).enable()).0;
                Event::None
            }
            CSB_PTR => {
                // The guest owns the read pointer.
                self.regs.csb_ptr = CsbPtr(self.regs.csb_ptr).with_read(CsbPtr(v).read()).0;
                Event::None
            }
            FAULT_STATUS => {
                // Write to clear.
                self.regs.fault_status = 0;
                Event::None
            }
            _ => Event::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    pub(crate) fn small(base: u64) -> SimVgpu<Vec<u64>> {
        let ty = &TYPES[0];
        let p = Partition::new(base, ty.ggtt_size).unwrap();
        SimVgpu::new(ty, p, vec![0; p.entries() as usize]).unwrap()
    }

    fn rd32(v: &mut SimVgpu<Vec<u64>>, off: u64) -> u32 {
        let mut b = [0u8; 4];
        v.region_read(REGION_BAR0, off, &mut b).unwrap();
        u32::from_le_bytes(b)
    }

    #[test]
    fn pvinfo_tells_the_partition() {
        let mut v = small(128 << 20);
        assert_eq!(rd32(&mut v, PVINFO), PVINFO_MAGIC as u32);
        assert_eq!(rd32(&mut v, PVINFO + 4), (PVINFO_MAGIC >> 32) as u32);
        assert_eq!(rd32(&mut v, PVINFO_GM_BASE), 128 << 20);
        assert_eq!(rd32(&mut v, PVINFO_GM_SIZE), 64 << 20);
    }

    #[test]
    fn ggtt_writes_inside_and_outside_the_partition() {
        let mut v = small(64 << 20);
        let entry = |gaddr: u64| GGTT_OFFSET + gaddr / PAGE_SIZE * 8;
        let pte = Pte::new(0x5000, 0).unwrap().encode();
        let ev = v
            .region_write(REGION_BAR0, entry((64 << 20) + 4096), &pte.to_le_bytes())
            .unwrap();
        assert_eq!(
            ev,
            Event::GgttUpdate {
                index: 1,
                old: 0,
                new: pte
            }
        );
        assert_eq!(v.translate_ggtt((64 << 20) + 4096 + 12), Ok(0x500c));
        // Outside: dropped, counted, reads as 0.
        let ev = v
            .region_write(REGION_BAR0, entry(0), &pte.to_le_bytes())
            .unwrap();
        assert_eq!(ev, Event::None);
        assert_eq!(v.ggtt_dropped(), 1);
        let mut b = [0u8; 8];
        v.region_read(REGION_BAR0, entry(0), &mut b).unwrap();
        assert_eq!(u64::from_le_bytes(b), 0);
        assert_eq!(v.ggtt_frames().collect::<Vec<_>>(), vec![5]);
        // Two dword halves make one entry.
        let e2 = entry((64 << 20) + 8192);
        v.region_write(REGION_BAR0, e2, &(pte as u32).to_le_bytes())
            .unwrap();
        v.region_write(REGION_BAR0, e2 + 4, &((pte >> 32) as u32).to_le_bytes())
            .unwrap();
        assert_eq!(v.ggtt()[2], pte);
    }

    #[test]
    fn elsp_submits_after_four_writes() {
        let mut v = small(64 << 20);
        for (i, w) in [0u32, 0, 7, 0x0400_1000].iter().enumerate() {
            let ev = v.region_write(REGION_BAR0, ELSP, &w.to_le_bytes()).unwrap();
            assert_eq!(ev == Event::Submit, i == 3);
        }
        assert_eq!(v.pending(), &[(7u64 << 32) | 0x0400_1000]);
        assert_eq!(v.take_submission(), Some((7u64 << 32) | 0x0400_1000));
        assert_eq!(v.take_submission(), None);
    }

    #[test]
    fn bad_accesses_are_rejected() {
        let mut v = small(64 << 20);
        let mut b3 = [0u8; 3];
        let mut b4 = [0u8; 4];
        assert_eq!(
            v.region_read(REGION_BAR0, 0, &mut b3),
            Err(AccessError::BadSize)
        );
        assert_eq!(
            v.region_read(REGION_BAR0, 2, &mut b4),
            Err(AccessError::BadOffset)
        );
        assert_eq!(
            v.region_read(REGION_BAR0, BAR0_SIZE - 2, &mut b4),
            Err(AccessError::BadOffset)
        );
        assert_eq!(
            v.region_read(REGION_BAR0, u64::MAX - 3, &mut b4),
            Err(AccessError::BadOffset)
        );
        assert_eq!(v.region_read(3, 0, &mut b4), Err(AccessError::BadRegion));
        assert_eq!(
            v.region_write(REGION_BAR0, RCS_IMR, &[1u8]),
            Err(AccessError::BadSize)
        );
    }

    #[test]
    fn regs_encode_round_trip() {
        let mut v = small(64 << 20);
        v.submit(0x1234_5678_9abc_d000);
        v.regs.fault_addr = 0xdead_beef_0000;
        let mut b = [0u8; REGS_BYTES];
        v.regs().encode(&mut b);
        assert_eq!(Regs::decode(&b), Some(*v.regs()));
        b[4 * 4] = 9; // elsp_count out of range
        assert_eq!(Regs::decode(&b), None);
    }
}

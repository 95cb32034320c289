// SPDX-License-Identifier: GPL-2.0

//! Dynamic graphics address remapping (gMig).
//!
//! When a vGPU is restored at another GGTT partition, every GGTT graphics
//! address its pending work uses moves by `dst.base - src.base` (the GGTT
//! entries keep their index in the partition, so the same guest pages stay
//! behind the moved addresses). [`remap_pending`] rewrites the pending
//! context descriptors, each context image's ring start, and the GGTT
//! addresses in the commands between ring head and tail, following GGTT
//! batch buffers (chained or second level). PPGTT addresses are left alone
//! (and PPGTT batches are not entered: a context's PPGTT does not move).
//!
//! Commands are recognised with the streamer's encodings (see
//! [`super::sim::exec`]). An address outside the source partition, an
//! unknown command or a walk that does not end (more than [`MAX_DWORDS`]
//! dwords or [`MAX_BATCHES`] batches) is an error, and because the walk
//! runs twice, first to validate and then to patch, an error leaves guest
//! memory and the pending queue untouched.

use super::gtt::Partition;
use super::sim::exec::{GuestMem, MemFault, LRC_MAGIC};
use super::sim::vgpu::SimVgpu;

/// Dwords walked per context at most.
pub const MAX_DWORDS: u32 = 1 << 16;
/// Batch buffers followed per context at most.
pub const MAX_BATCHES: u32 = 64;

/// Why remapping failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemapError {
    /// A GGTT address outside the source partition, at this graphics
    /// address of a command.
    OutsidePartition {
        /// The address found.
        addr: u64,
        /// Where (graphics address of the command).
        at: u64,
    },
    /// An unknown or malformed command at this graphics address.
    BadCommand(u64),
    /// The walk did not end within the limits.
    TooLong,
    /// A context image is not a gmig-sim LRC.
    BadContext(u64),
    /// Guest memory behind an address is not reachable.
    Memory(MemFault),
    /// A graphics address has no present GGTT entry.
    Unmapped(u64),
}

impl From<MemFault> for RemapError {
    fn from(m: MemFault) -> Self {
        RemapError::Memory(m)
    }
}

struct Walk<'a, S, M> {
    vgpu: &'a SimVgpu<S>,
    mem: &'a mut M,
    src: Partition,
    dst: Partition,
    patch: bool,
    dwords: u32,
    batches: u32,
    patched: u64,
}

impl<S: core::ops::DerefMut<Target = [u64]>, M: GuestMem> Walk<'_, S, M> {
    fn moved(&self, addr: u64, at: u64) -> Result<u64, RemapError> {
        if !self.src.contains(addr) {
            return Err(RemapError::OutsidePartition { addr, at });
        }
        Ok(addr - self.src.base + self.dst.base)
    }

    /// Guest physical address of destination graphics address `g`.
    fn gpa(&self, g: u64) -> Result<u64, RemapError> {
        self.vgpu
            .translate_ggtt(g)
            .map_err(|_| RemapError::Unmapped(g))
    }

    fn rd(&mut self, g: u64) -> Result<u32, RemapError> {
        let mut b = [0u8; 4];
        let gpa = self.gpa(g)?;
        self.mem.read(gpa, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn wr(&mut self, g: u64, v: u32) -> Result<(), RemapError> {
        let gpa = self.gpa(g)?;
        self.mem.write(gpa, &v.to_le_bytes())?;
        Ok(())
    }

    /// Rewrites a 48-bit address split over dwords at `lo_g`/`lo_g + 4`,
    /// keeping the low `keep` flag bits. Returns the moved address.
    fn field(&mut self, lo_g: u64, keep: u32, at: u64) -> Result<u64, RemapError> {
        let lo = self.rd(lo_g)?;
        let hi = self.rd(lo_g + 4)?;
        let addr = (u64::from(lo & !keep)) | (u64::from(hi & 0xffff) << 32);
        let new = self.moved(addr, at)?;
        if self.patch {
            self.wr(lo_g, (new as u32 & !keep) | (lo & keep))?;
            self.wr(lo_g + 4, (hi & !0xffff) | ((new >> 32) as u32 & 0xffff))?;
            self.patched += 1;
        }
        Ok(new)
    }

    /// Walks commands from destination graphics address `g`; a ring walk
    /// wraps at `ring = (start, size)` and stops at `end`.
    fn run(
        &mut self,
        mut g: u64,
        ring: Option<(u64, u64, u64)>,
        depth: u32,
    ) -> Result<(), RemapError> {
        loop {
            if let Some((start, size, end)) = ring {
                if g == end {
                    return Ok(());
                }
                if g >= start + size {
                    g = start + (g - start) % size;
                    if g == end {
                        return Ok(());
                    }
                }
            }
            self.dwords += 1;
            if self.dwords > MAX_DWORDS {
                return Err(RemapError::TooLong);
            }
            let at = g;
            let dw0 = self.rd(g)?;
            let len: u64 = match dw0 >> 29 {
                0 => match (dw0 >> 23) & 0x3f {
                    0x00 | 0x02 => 1,
                    0x0a => {
                        if ring.is_some() {
                            return Err(RemapError::BadCommand(at));
                        }
                        return Ok(());
                    }
                    0x20 => {
                        let len = u64::from(dw0 & 0x3ff) + 2;
                        if dw0 & (1 << 22) != 0 {
                            self.field(g + 4, 3, at)?;
                        }
                        len
                    }
                    0x22 => u64::from(dw0 & 0xff) + 2,
                    0x26 => {
                        let len = u64::from(dw0 & 0x3f) + 2;
                        if (dw0 >> 14) & 3 == 1 && self.rd(g + 4)? & 4 != 0 {
                            self.field(g + 4, 7, at)?;
                        }
                        len
                    }
                    0x31 => {
                        if dw0 & (1 << 8) == 0 {
                            let target = self.field(g + 4, 3, at)?;
                            self.batches += 1;
                            if self.batches > MAX_BATCHES || depth >= 2 {
                                return Err(RemapError::TooLong);
                            }
                            let second = dw0 & (1 << 22) != 0;
                            if ring.is_some() || second {
                                self.run(target, None, depth + 1)?;
                            } else {
                                // Chained: the batch continues there.
                                g = target;
                                continue;
                            }
                        }
                        3
                    }
                    _ => return Err(RemapError::BadCommand(at)),
                },
                2 => {
                    let len = u64::from(dw0 & 0xff) + 2;
                    match ((dw0 >> 22) & 0x7f, len) {
                        (0x50, 7) => {
                            self.field(g + 16, 3, at)?;
                        }
                        (0x53, 10) => {
                            self.field(g + 16, 3, at)?;
                            self.field(g + 32, 3, at)?;
                        }
                        _ => return Err(RemapError::BadCommand(at)),
                    }
                    len
                }
                3 => {
                    let len = u64::from(dw0 & 0xff) + 2;
                    if dw0 & 0xffff_0000 == 0x7a00_0000 {
                        let dw1 = self.rd(g + 4)?;
                        if (dw1 >> 14) & 3 == 1 && dw1 & (1 << 24) != 0 {
                            self.field(g + 8, 7, at)?;
                        }
                    }
                    len
                }
                _ => return Err(RemapError::BadCommand(at)),
            };
            g += 4 * len;
        }
    }
}

/// Remaps the pending contexts of a vGPU restored at `dst` whose state was
/// saved at `src`. Returns the number of graphics addresses rewritten.
pub fn remap_pending<S: core::ops::DerefMut<Target = [u64]>, M: GuestMem>(
    vgpu: &mut SimVgpu<S>,
    src: Partition,
    dst: Partition,
    mem: &mut M,
) -> Result<u64, RemapError> {
    let mut new_descs = [0u64; super::sim::vgpu::QUEUE_LEN];
    let mut patched = 0;
    for patch in [false, true] {
        let mut w = Walk {
            vgpu: &*vgpu,
            mem: &mut *mem,
            src,
            dst,
            patch,
            dwords: 0,
            batches: 0,
            patched: 0,
        };
        let vg = w.vgpu;
        for (i, &desc) in vg.pending().iter().enumerate() {
            let lrca = w.moved(desc & 0xffff_f000, desc & 0xffff_f000)?;
            let new_desc = (desc & !0xffff_f000) | lrca;
            let magic = w.rd(lrca)?;
            if magic != LRC_MAGIC {
                return Err(RemapError::BadContext(lrca));
            }
            let ring_start = u64::from(w.rd(lrca + 4)?);
            let size = u64::from(w.rd(lrca + 8)?);
            let head = u64::from(w.rd(lrca + 12)?);
            let tail = u64::from(w.rd(lrca + 16)?);
            if size == 0 || head >= size || tail >= size {
                return Err(RemapError::BadContext(lrca));
            }
            let start = w.moved(ring_start, lrca + 4)?;
            if patch {
                w.wr(lrca + 4, start as u32)?;
                w.patched += 2; // descriptor and ring start
            }
            w.dwords = 0;
            w.batches = 0;
            w.run(start + head, Some((start, size, start + tail)), 0)?;
            if let Some(d) = new_descs.get_mut(i) {
                *d = new_desc;
            }
        }
        patched = w.patched;
    }
    for (d, n) in vgpu.pending_mut().iter_mut().zip(new_descs) {
        *d = n;
    }
    Ok(patched)
}

#[cfg(test)]
mod tests {
    use super::super::gtt::{Pte, PAGE_SIZE};
    use super::super::sim::exec::tests::VecMem;
    use super::super::sim::vgpu::TYPES;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    const A: u64 = 64 << 20;
    const B: u64 = 192 << 20;

    fn vgpu_at(base: u64) -> SimVgpu<Vec<u64>> {
        let ty = &TYPES[0];
        let p = Partition::new(base, ty.ggtt_size).unwrap();
        let mut v = SimVgpu::new(ty, p, vec![0; p.entries() as usize]).unwrap();
        for i in 0..256u64 {
            v.write_ggtt_entry(
                base + i * PAGE_SIZE,
                Pte::new(i * PAGE_SIZE, 0).unwrap().encode(),
            );
        }
        v
    }

    fn put(mem: &mut VecMem, gpa: u64, dws: &[u32]) {
        for (i, d) in dws.iter().enumerate() {
            mem.write(gpa + 4 * i as u64, &d.to_le_bytes()).unwrap();
        }
    }

    /// A pending context at A: ring with an SDI and a BB_START to a batch
    /// with a blit, a PIPE_CONTROL and a PPGTT store.
    fn setup(mem: &mut VecMem, v: &mut SimVgpu<Vec<u64>>) {
        let g = A as u32;
        put(mem, 0, &[LRC_MAGIC, g + 4096, 8192, 0, 32, 0, 0]);
        put(
            mem,
            4096,
            &[
                (0x20 << 23) | (1 << 22) | 2,
                g + 0x20000,
                0,
                7,
                (0x31 << 23) | 1,
                g + 0x10000,
                0,
                0,
            ],
        );
        put(
            mem,
            0x10000,
            &[
                (2 << 29) | (0x50 << 22) | 5,
                (3 << 24) | 64,
                0,
                (1 << 16) | 4,
                g + 0x30000,
                0,
                9,
                0x7a00_0004,
                (1 << 14) | (1 << 24),
                g + 0x40000 + 4, // low flag bits must survive? (aligned: bit 2 set here)
                0,
                1,
                2,
                (0x20 << 23) | 2, // PPGTT store: left alone
                0x5000,
                0,
                3,
                0x0a << 23,
            ],
        );
        v.submit(A | (3 << 32));
    }

    #[test]
    fn remap_moves_ggtt_addresses_and_inverse_restores() {
        let mut mem = VecMem::new(1 << 20);
        let mut v = vgpu_at(A);
        setup(&mut mem, &mut v);
        let original = mem.bytes.clone();
        // Restore "at B": same entries, different base.
        let mut w = vgpu_at(B);
        w.submit(v.pending()[0]);
        let (pa, pb) = (v.partition(), w.partition());
        let n = remap_pending(&mut w, pa, pb, &mut mem).unwrap();
        // descriptor + ring start + SDI + BB_START + blit + pipe control
        assert_eq!(n, 6);
        assert_eq!(w.pending()[0], B | (3 << 32));
        let rd = |m: &VecMem, a: usize| u32::from_le_bytes(m.bytes[a..a + 4].try_into().unwrap());
        assert_eq!(rd(&mem, 4), B as u32 + 4096);
        assert_eq!(rd(&mem, 4096 + 4), B as u32 + 0x20000);
        assert_eq!(rd(&mem, 4096 + 20), B as u32 + 0x10000);
        assert_eq!(rd(&mem, 0x10000 + 16), B as u32 + 0x30000);
        assert_eq!(rd(&mem, 0x10000 + 36), B as u32 + 0x40000 + 4);
        assert_eq!(rd(&mem, 0x10000 + 56), 0x5000, "PPGTT address untouched");
        // And back: the identity.
        let mut back = vgpu_at(A);
        back.submit(w.pending()[0]);
        remap_pending(&mut back, pb, pa, &mut mem).unwrap();
        assert_eq!(mem.bytes, original);
        assert_eq!(back.pending()[0], A | (3 << 32));
    }

    #[test]
    fn out_of_partition_address_fails_without_writes() {
        let mut mem = VecMem::new(1 << 20);
        let mut v = vgpu_at(A);
        setup(&mut mem, &mut v);
        // The blit in the batch points below the partition.
        put(&mut mem, 0x10000 + 16, &[0x1000]);
        let before = mem.bytes.clone();
        let mut w = vgpu_at(B);
        w.submit(v.pending()[0]);
        let e = remap_pending(
            &mut w,
            v.partition(),
            Partition::new(B, 64 << 20).unwrap(),
            &mut mem,
        )
        .unwrap_err();
        assert_eq!(
            e,
            RemapError::OutsidePartition {
                addr: 0x1000,
                at: B + 0x10000
            }
        );
        assert_eq!(mem.bytes, before, "nothing written on error");
        assert_eq!(w.pending()[0], A | (3 << 32), "queue untouched");
    }

    #[test]
    fn batch_loops_and_garbage_are_errors() {
        let mut mem = VecMem::new(1 << 20);
        let mut v = vgpu_at(A);
        setup(&mut mem, &mut v);
        // Chained batch jumping to itself.
        put(
            &mut mem,
            0x10000,
            &[(0x31 << 23) | 1, A as u32 + 0x10000, 0],
        );
        let mut w = vgpu_at(B);
        w.submit(v.pending()[0]);
        assert_eq!(
            remap_pending(
                &mut w,
                v.partition(),
                Partition::new(B, 64 << 20).unwrap(),
                &mut mem
            ),
            Err(RemapError::TooLong)
        );
        put(&mut mem, 0x10000, &[0xffff_ffff]);
        assert_eq!(
            remap_pending(
                &mut w,
                v.partition(),
                Partition::new(B, 64 << 20).unwrap(),
                &mut mem
            ),
            Err(RemapError::BadCommand(B + 0x10000))
        );
    }
}

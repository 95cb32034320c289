// SPDX-License-Identifier: GPL-2.0
//! Fuzz target: arbitrary guest memory (rings, batches, context images)
//! run through the sim command streamer and the address remapper. Neither
//! may panic, write outside the guest memory, or leave memory changed when
//! the remapper reports an error.
#![no_main]

use gmig_core::{
    gtt::{Partition, Pte},
    remap::remap_pending,
    sim::{
        exec::{GuestMem, MemFault},
        vgpu::{SimVgpu, TYPES},
    },
};
use libfuzzer_sys::fuzz_target;

const MEM: usize = 64 * 4096;

struct Mem(Vec<u8>);

impl GuestMem for Mem {
    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), MemFault> {
        let s = usize::try_from(gpa).map_err(|_| MemFault { gpa })?;
        let src = self.0.get(s..s + buf.len()).ok_or(MemFault { gpa })?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn write(&mut self, gpa: u64, buf: &[u8]) -> Result<(), MemFault> {
        let s = usize::try_from(gpa).map_err(|_| MemFault { gpa })?;
        let dst = self.0.get_mut(s..s + buf.len()).ok_or(MemFault { gpa })?;
        dst.copy_from_slice(buf);
        Ok(())
    }
}

fn vgpu(base: u64) -> SimVgpu<Vec<u64>> {
    let ty = &TYPES[0];
    let p = Partition::new(base, ty.ggtt_size).unwrap();
    let mut v = SimVgpu::new(ty, p, vec![0; p.entries() as usize]).unwrap();
    for i in 0..64u64 {
        v.write_ggtt_entry(base + i * 4096, Pte::new(i * 4096, 0).unwrap().encode());
    }
    v
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (head, body) = data.split_at(8);
    let desc = u64::from_le_bytes(head.try_into().unwrap());
    let mut bytes = vec![0u8; MEM];
    let n = body.len().min(MEM);
    bytes[..n].copy_from_slice(&body[..n]);
    let (a, b) = (64u64 << 20, 128u64 << 20);
    let desc = (desc & !0xffff_f000) | (a + (desc & 0x3f000));

    // Remap first (as a restore would): an error leaves memory untouched.
    let mut mem = Mem(bytes.clone());
    let mut w = vgpu(b);
    w.submit(desc);
    let src = Partition::new(a, 64 << 20).unwrap();
    let dst = w.partition();
    if remap_pending(&mut w, src, dst, &mut mem).is_err() {
        assert!(mem.0 == bytes, "remap wrote memory and then failed");
    }

    // Execute on the source: any fault is fine, a panic is not.
    let mut mem = Mem(bytes);
    let mut v = vgpu(a);
    v.submit(desc);
    if let Some(d) = v.take_submission() {
        let _ = v.execute(d, &mut mem, &mut |_| {});
    }
    assert_eq!(mem.0.len(), MEM);
});

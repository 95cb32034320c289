// SPDX-License-Identifier: GPL-2.0
//! Fuzz target: the AUB reader ([`gmig_core::aub`]) on any byte string.
//! The packets are read and applied to GPU memory in page stores capped at
//! [`CAP`] pages each, ELSP writes are tracked, and each submission's
//! context image, ring and PPGTT batch are read. Nothing may panic; what
//! is read must agree with the stores: a GGTT or PPGTT read that succeeds
//! returns the bytes of the physical page its translation names.
//!
//! Unlike an analyzer, the target goes on after a packet fails to apply
//! (a GGTT write with no entry, a full store), to reach later packets.
//! `examples/fuzz_seeds.rs` writes AUBs as `intel_dump_gpu` writes them.
#![no_main]

use std::collections::BTreeMap;

use gmig_core::aub::{context_of, AubMem, Execlists, Packet, Packets, PageStore, PAGE};
use libfuzzer_sys::fuzz_target;

/// Pages each store holds at most.
const CAP: usize = 4096;

/// Pages in a map, at most [`CAP`].
#[derive(Default)]
struct Store(BTreeMap<u64, Box<[u8; PAGE]>>);

impl PageStore for Store {
    fn page(&self, pfn: u64) -> Option<&[u8; PAGE]> {
        self.0.get(&pfn).map(|p| &**p)
    }
    fn page_mut(&mut self, pfn: u64) -> Option<&mut [u8; PAGE]> {
        if !self.0.contains_key(&pfn) && self.0.len() >= CAP {
            return None;
        }
        Some(self.0.entry(pfn).or_insert_with(|| Box::new([0; PAGE])))
    }
}

type Mem = AubMem<Store, Store>;

/// Reads `n` bytes at `addr` through `read` and checks each page's bytes
/// against the physical page `translate` names.
fn check_read(
    mem: &Mem,
    addr: u64,
    n: usize,
    read: impl Fn(u64, &mut [u8]) -> Option<()>,
    translate: impl Fn(u64) -> Option<u64>,
) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; n];
    read(addr, &mut buf)?;
    let first = (4096 - (addr & 0xfff) as usize).min(n);
    let pa = translate(addr).expect("a read succeeded where the translation fails");
    let mut direct = vec![0u8; first];
    mem.read_phys(pa, &mut direct)
        .expect("the physical page is gone");
    assert_eq!(direct, buf[..first], "read and translation disagree");
    Some(buf)
}

fuzz_target!(|data: &[u8]| {
    let mut mem: Mem = AubMem::new(Store::default(), Store::default());
    let mut el = Execlists::default();
    let mut last = 0;
    for p in Packets::new(data) {
        let (off, p) = match p {
            Ok(x) => x,
            Err(e) => {
                let _ = e.to_string();
                break;
            }
        };
        assert!(off >= last && off < data.len(), "offsets go forward");
        last = off;
        if let Packet::MemWrite { data: d, .. } = p {
            assert!(d.len() <= data.len() - off, "data inside the file");
        }
        if let Err(e) = mem.apply(off, &p) {
            let _ = e.to_string();
        }
        let Packet::RegWrite { reg, value } = p else {
            continue;
        };
        let Some(s) = el.reg_write(reg, value) else {
            continue;
        };
        let c = match context_of(&mem, &s) {
            Ok(c) => c,
            Err(e) => {
                let _ = e.to_string();
                continue;
            }
        };
        // The ring from head (at most 64 bytes), then the batch its first
        // command names, as a PPGTT address.
        let ring = c.ring_start + u64::from(c.ring_head);
        let len = (c.ring_tail.wrapping_sub(c.ring_head) as usize).clamp(16, 64);
        let ggtt = |a: u64, b: &mut [u8]| mem.read_ggtt(a, b);
        let Some(r) = check_read(&mem, ring, len, ggtt, |a| mem.translate_ggtt(a)) else {
            continue;
        };
        let dw = |i: usize| u64::from(u32::from_le_bytes(r[4 * i..4 * i + 4].try_into().unwrap()));
        let batch = dw(2) << 32 | dw(1);
        let ppgtt = |a: u64, b: &mut [u8]| mem.read_ppgtt(c.pml4, a, b);
        let _ = check_read(&mem, batch, 64, ppgtt, |a| mem.translate_ppgtt(c.pml4, a));
    }
});

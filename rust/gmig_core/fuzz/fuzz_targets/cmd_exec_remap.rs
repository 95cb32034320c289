// SPDX-License-Identifier: GPL-2.0
//! Fuzz target: arbitrary guest memory (rings, batches, context images)
//! run through the address remapper and the sim command streamer. Neither
//! may panic or write outside the guest memory; the remapper must leave
//! memory and the pending queue unchanged when it reports an error, and
//! when it succeeds, remapping back (destination to source) must restore
//! every byte.
//!
//! Input: two context descriptors (u64 little-endian; the second is only
//! submitted when it is not 0), then the guest memory from guest physical
//! address 0 (16 pages; the rest is 0xff, which is no command, so a walk
//! that leaves the input stops there instead of running a budget's worth
//! of MI_NOOPs). GGTT page i of either vGPU maps guest page i.
//! `examples/fuzz_seeds.rs` writes valid inputs.
//!
//! Speed: every buffer (guest memory, GGTT entries) is allocated once and
//! reused; an execution clears only what it needs. (Allocating and
//! zeroing them per input made the page faults of fresh mappings the
//! main cost, about 2 k executions/s.) The streamer runs with a smaller
//! [`Budget`].
#![no_main]

use std::cell::RefCell;

use gmig_core::{
    gtt::{Partition, Pte},
    mem::{GuestMem, MemFault},
    sim::{
        exec::Budget,
        remap::remap_pending,
        vgpu::{SimVgpu, TYPES},
    },
};
use libfuzzer_sys::fuzz_target;

const PAGES: u64 = 16;
const MEM: usize = PAGES as usize * 4096;
const A: u64 = 64 << 20;
const B: u64 = 128 << 20;

struct Mem<'a>(&'a mut [u8]);

impl GuestMem for Mem<'_> {
    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), MemFault> {
        let s = usize::try_from(gpa).map_err(|_| MemFault { gpa })?;
        let e = s.checked_add(buf.len()).ok_or(MemFault { gpa })?;
        let src = self.0.get(s..e).ok_or(MemFault { gpa })?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn write(&mut self, gpa: u64, buf: &[u8]) -> Result<(), MemFault> {
        let s = usize::try_from(gpa).map_err(|_| MemFault { gpa })?;
        let e = s.checked_add(buf.len()).ok_or(MemFault { gpa })?;
        let dst = self.0.get_mut(s..e).ok_or(MemFault { gpa })?;
        dst.copy_from_slice(buf);
        Ok(())
    }
}

/// The streamer's limits here: the same checks as the default ones (1 << 16
/// commands, 64 MiB of blits), reached 16 and 64 times sooner. Inputs that
/// loop until the budget ends are common in the corpus; with the default
/// budget they took most of the time.
const BUDGET: Budget = Budget {
    commands: 1 << 12,
    blit_bytes: 1 << 20,
};

/// Reused storage: guest memory and the GGTT entries of three vGPUs.
struct Bufs {
    mem: Vec<u8>,
    ggtt: [Vec<u64>; 3],
}

thread_local! {
    static BUFS: RefCell<Bufs> = RefCell::new(Bufs {
        mem: vec![0; MEM],
        ggtt: core::array::from_fn(|_| vec![0; (TYPES[0].ggtt_size / 4096) as usize]),
    });
}

/// A fresh vGPU at `base` on `ggtt` (cleared by `SimVgpu::new`), GGTT page
/// i mapping guest page i.
fn vgpu(base: u64, ggtt: &mut [u64]) -> SimVgpu<&mut [u64]> {
    let ty = &TYPES[0];
    let p = Partition::new(base, ty.ggtt_size).unwrap();
    let mut v = SimVgpu::new(ty, p, ggtt).unwrap();
    for i in 0..PAGES {
        v.write_ggtt_entry(base + i * 4096, Pte::new(i * 4096, 0).unwrap().encode());
    }
    v
}

/// Guest memory as the input says: `body`, then 0xff.
fn load(mem: &mut [u8], body: &[u8]) {
    let n = body.len().min(MEM);
    mem[..n].copy_from_slice(&body[..n]);
    mem[n..].fill(0xff);
}

/// The fill to compare with: slice comparison is one memcmp, where a loop
/// over the bytes would be traced byte by byte by the fuzzer's
/// instrumentation (that alone made the target 10x slower).
static FILL: [u8; MEM] = [0xff; MEM];

fn same_as_input(mem: &[u8], body: &[u8]) -> bool {
    let n = body.len().min(MEM);
    mem[..n] == body[..n] && mem[n..] == FILL[n..]
}

/// Forces a descriptor's LRCA into the first pages of the partition at
/// `base` (elsewhere nothing is mapped).
fn place(desc: u64, base: u64) -> u64 {
    (desc & !0xffff_f000) | (base + (desc & 0xf000))
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 16 {
        return;
    }
    let (head, body) = data.split_at(16);
    let d0 = u64::from_le_bytes(head[..8].try_into().unwrap());
    let d1 = u64::from_le_bytes(head[8..].try_into().unwrap());
    let descs = [Some(place(d0, A)), (d1 != 0).then(|| place(d1, A))];
    BUFS.with_borrow_mut(|bufs| {
        let [g0, g1, g2] = &mut bufs.ggtt;
        let mem = &mut bufs.mem[..];
        let src = Partition::new(A, TYPES[0].ggtt_size).unwrap();

        // Remap first (as a restore would): an error leaves memory and the
        // queue untouched; success is undone by the inverse remap.
        load(mem, body);
        let mut w = vgpu(B, g0);
        for d in descs.into_iter().flatten() {
            w.submit(d);
        }
        let queued: Vec<u64> = w.pending().to_vec();
        let dst = w.partition();
        match remap_pending(&mut w, src, dst, &mut Mem(mem)) {
            Err(_) => {
                assert!(
                    same_as_input(mem, body),
                    "remap wrote memory and then failed"
                );
                assert_eq!(
                    w.pending(),
                    &queued[..],
                    "remap changed the queue and failed"
                );
            }
            Ok(_) => {
                let mut back = vgpu(A, g1);
                for &d in w.pending() {
                    back.submit(d);
                }
                let r = remap_pending(&mut back, dst, src, &mut Mem(mem));
                assert!(r.is_ok(), "inverse remap failed: {r:?}");
                assert_eq!(back.pending(), &queued[..], "inverse remap: descriptors");
                assert!(same_as_input(mem, body), "inverse remap: memory differs");
            }
        }

        // Execute on the source: any fault is fine, a panic is not.
        load(mem, body);
        let mut v = vgpu(A, g2);
        for d in descs.into_iter().flatten() {
            v.submit(d);
        }
        while let Some(d) = v.take_submission() {
            let _ = v.execute_within(d, &mut Mem(mem), &mut |_| {}, BUDGET);
        }
    });
});

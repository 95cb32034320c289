// SPDX-License-Identifier: GPL-2.0
//! Fuzz target: the GVT-g provider's scanner hook record
//! ([`gmig_core::gvt::GvtWrites`]) on any sequence of kvmgt's hooks over
//! any guest memory: workloads scanned through any PPGTT (page tables,
//! binding tables, surface states and kernels read from the input),
//! PPGTT entry changes, GGTT writes, completions and reports. It must
//! never panic (overflow checks are on), and every frame a report names
//! lies below 2^34 (a guest frame of GVT-g's 46-bit entries).
//!
//! Input: its first half (16 KiB at most) is guest memory from guest
//! physical address 0, zero-padded to 16 KiB (every walk and state read
//! lands there or fails; tables at page 0 map themselves), the rest
//! operations: an opcode byte and its arguments.
#![no_main]

use gmig_core::gvt::{GgttMirror, GvtLayout, GvtWrites};
use gmig_core::mem::{GuestMem, MemFault};
use gmig_core::writeset::scan::{CtxSlot, CONTEXT_SLOTS};
use gmig_core::writeset::WriteSink;
use libfuzzer_sys::fuzz_target;

const MEM: usize = 16 << 10;
const MIB: u64 = 1 << 20;

struct Mem<'a>(&'a mut [u8]);

impl GuestMem for Mem<'_> {
    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), MemFault> {
        let src = usize::try_from(gpa)
            .ok()
            .and_then(|a| self.0.get(a..a.checked_add(buf.len())?))
            .ok_or(MemFault { gpa })?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn write(&mut self, gpa: u64, _buf: &[u8]) -> Result<(), MemFault> {
        Err(MemFault { gpa })
    }
}

struct Check;

impl WriteSink for Check {
    fn may_write(&mut self, gfn: u64) {
        assert!(gfn < 1 << 34, "{gfn:#x}");
    }
    fn unbounded(&mut self) {}
}

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn u32(&mut self) -> Option<u32> {
        let (b, rest) = self.0.split_at_checked(4)?;
        self.0 = rest;
        Some(u32::from_le_bytes(b.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from(self.u32()?) | u64::from(self.u32()?) << 32)
    }
}

fuzz_target!(|data: &[u8]| {
    let (window, rest) = data.split_at((data.len() / 2).min(MEM));
    let mut bytes = window.to_vec();
    bytes.resize(MEM, 0);
    let mut mem = Mem(&mut bytes);
    let layout = GvtLayout::new((32 * MIB, 4 * MIB), (512 * MIB, 4 * MIB), 4).unwrap();
    let mirror = GgttMirror::new(layout, vec![0u32; layout.entries() as usize]).unwrap();
    let mut w = GvtWrites::new(vec![(0, 0); 64], vec![(0, 0); 4], mirror)
        .with_carry(vec![(0, 0); 64])
        .with_contexts(vec![CtxSlot::EMPTY; CONTEXT_SLOTS]);
    let mut inp = Input(rest);
    while let Some(op) = inp.u8() {
        match op % 8 {
            0 => {
                let (Some(lrca), Some(pml4)) = (inp.u64(), inp.u64()) else {
                    break;
                };
                // Mostly a root inside the window.
                let pml4 = if pml4 & 1 == 0 { pml4 % MEM as u64 } else { pml4 };
                w.scan_workload(lrca & 3, lrca, Some(pml4));
            }
            1 | 2 => {
                let Some(n) = inp.u8() else { break };
                let mut cmd = Vec::new();
                for _ in 0..1 + n % 32 {
                    match inp.u32() {
                        Some(d) => cmd.push(d),
                        None => break,
                    }
                }
                w.scanned(&cmd, op % 8 == 2, &mut mem);
            }
            3 => {
                let Some(e) = inp.u8() else { break };
                w.queued(u64::from(e % 4));
            }
            4 => {
                let (Some(lrca), Some(ok)) = (inp.u64(), inp.u8()) else {
                    break;
                };
                w.completed(u64::from(ok >> 6), lrca, ok & 1 != 0);
            }
            5 => {
                let (Some(level), Some(val)) = (inp.u8(), inp.u64()) else {
                    break;
                };
                w.ppgtt_entry(u32::from(level % 5), val);
            }
            6 => {
                let (Some(i), Some(val)) = (inp.u32(), inp.u64()) else {
                    break;
                };
                w.ggtt_write(u64::from(i) % (1 << 20), val);
            }
            _ => {
                w.sync(Some(&|_| Some(0)), &mut Check);
            }
        }
    }
    w.sync(None, &mut Check);
});

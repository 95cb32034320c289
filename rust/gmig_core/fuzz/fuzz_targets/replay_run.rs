// SPDX-License-Identifier: GPL-2.0
//! Fuzz target: the sim vGPU's replay workload ([`gmig_core::sim::replay`])
//! running any replay file that the reader accepts, as the kernel runs it:
//! set-up in a window of guest memory, ticks, the command streamer on each
//! submission (its write sets teed into the replay's witness, as
//! `rust/sim.rs` does), and the model GPU's writes. Nothing may panic, the
//! replay never has more than one execbuffer in flight, and no byte of
//! guest memory outside the window changes: the file decides what the
//! driver, the streamer and the model write, but only through the PPGTT
//! and the GGTT entries the replay set up there.
//! `examples/fuzz_seeds.rs` writes replay files, one with a real batch.
#![no_main]

use gmig_core::gtt::Partition;
use gmig_core::mem::{GuestMem, MemFault};
use gmig_core::replay::Replay;
use gmig_core::sim::exec::{Budget, CtxSlot, CONTEXT_SLOTS};
use gmig_core::sim::replay::{window_pages, witness_words, ReplayRun};
use gmig_core::sim::vgpu::{SimVgpu, TYPES};
use gmig_core::writeset::Tee;
use libfuzzer_sys::fuzz_target;

/// Guest memory, and the window the replay may use.
const MEM: usize = 4 << 20;
const BASE: u64 = 1 << 20;
const MAX_WINDOW: u64 = 2 << 20;

struct Mem(Vec<u8>);

impl GuestMem for Mem {
    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), MemFault> {
        let s = usize::try_from(gpa).map_err(|_| MemFault { gpa })?;
        let src = s
            .checked_add(buf.len())
            .and_then(|e| self.0.get(s..e))
            .ok_or(MemFault { gpa })?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn write(&mut self, gpa: u64, buf: &[u8]) -> Result<(), MemFault> {
        let s = usize::try_from(gpa).map_err(|_| MemFault { gpa })?;
        let dst = s
            .checked_add(buf.len())
            .and_then(|e| self.0.get_mut(s..e))
            .ok_or(MemFault { gpa })?;
        dst.copy_from_slice(buf);
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(r) = Replay::parse(data) else {
        return;
    };
    if r.validate().is_err() || window_pages(&r) * 4096 > MAX_WINDOW {
        return;
    }
    let size = window_pages(&r) * 4096;
    let ty = &TYPES[0];
    let p = Partition::new(64 << 20, ty.ggtt_size).unwrap();
    let mut v = SimVgpu::new(ty, p, vec![0u64; p.entries() as usize])
        .unwrap()
        .with_contexts(vec![CtxSlot::EMPTY; CONTEXT_SLOTS]);
    let mut mem = Mem(vec![0; MEM]);
    let witness = vec![0u64; witness_words(data)];
    let Ok(mut run) = ReplayRun::setup(BASE, size, data, witness, &mut v, &mut mem, &mut |_| {})
    else {
        return;
    };
    let budget = Budget {
        commands: 512,
        blit_bytes: 1 << 20,
    };
    for _ in 0..3 * r.execs().min(16) + 4 {
        let _ = run.tick(data, &mut v, &mut mem);
        while let Some(desc) = v.take_submission() {
            let mut named = |_gfn: u64| {};
            let _ = v.execute_within(desc, &mut mem, &mut Tee(&mut named, run.witness()), budget);
            let _ = run.executed(desc, data, &mut mem);
        }
        let st = run.stats();
        assert!(st.executed <= st.submitted && st.submitted <= st.executed + 1);
    }
    let (lo, hi) = (BASE as usize, (BASE + size) as usize);
    assert!(
        mem.0[..lo].iter().chain(&mem.0[hi..]).all(|&b| b == 0),
        "a write outside the window"
    );
});

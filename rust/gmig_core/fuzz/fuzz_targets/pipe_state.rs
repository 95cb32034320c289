// SPDX-License-Identifier: GPL-2.0
//! Fuzz target: the pipeline-state tracker ([`gmig_core::writeset::state`])
//! on any command stream and any GPU memory. It must never panic (overflow
//! checks are on), and every range it reports is non-empty and within
//! 48 bits.
//!
//! Input: a 4 KiB window of GPU memory at address 0 that every read sees
//! (binding tables, surface states, kernels, interface descriptors all
//! land in it), then commands: a length byte (dwords, 1-32) and that many
//! little-endian dwords each. The first dword of each command is forced
//! to one of the opcodes the tracker follows, half of the time, so that
//! state commands and draws meet often.
#![no_main]

use gmig_core::writeset::state::{GpuRead, PipeState, StateSink};
use gmig_core::writeset::surface::{Range, ADDR_LIMIT};
use libfuzzer_sys::fuzz_target;

const WINDOW: usize = 4096;

/// Opcodes (dw0 bits 31:16) the tracker follows.
const OPS: [u32; 22] = [
    0x6101, 0x7919, 0x7826, 0x7828, 0x7829, 0x7827, 0x782a, 0x7810, 0x781d, 0x7811, 0x781b, 0x7820,
    0x781e, 0x7918, 0x7805, 0x7806, 0x7807, 0x780d, 0x7000, 0x7002, 0x7b00, 0x7105,
];

struct Mem<'a>(&'a [u8]);

impl GpuRead for Mem<'_> {
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> bool {
        let Ok(a) = usize::try_from(addr) else {
            return false;
        };
        match a.checked_add(buf.len()).and_then(|e| self.0.get(a..e)) {
            Some(src) => {
                buf.copy_from_slice(src);
                true
            }
            None => false,
        }
    }
}

struct Check;

impl StateSink for Check {
    fn write(&mut self, r: Range) {
        assert!(r.start < r.end && r.end <= ADDR_LIMIT, "{r:?}");
    }
    fn unbounded(&mut self, _why: &'static str) {}
    fn read_state(&mut self, r: Range) {
        assert!(r.start <= r.end, "{r:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let (window, mut rest) = data.split_at(data.len().min(WINDOW));
    let mut mem = Mem(window);
    let mut st = if window.first().is_some_and(|b| b & 1 != 0) {
        PipeState::fresh()
    } else {
        PipeState::new()
    };
    while let Some((&n, tail)) = rest.split_first() {
        let n = usize::from(n % 32) + 1;
        let take = tail.len().min(4 * n);
        let mut cmd: Vec<u32> = tail[..take]
            .chunks(4)
            .map(|c| {
                let mut b = [0u8; 4];
                b[..c.len()].copy_from_slice(c);
                u32::from_le_bytes(b)
            })
            .collect();
        rest = &tail[take..];
        if let Some(dw0) = cmd.first_mut() {
            if *dw0 & 1 != 0 {
                let op = OPS[(*dw0 >> 1) as usize % OPS.len()];
                *dw0 = op << 16 | (*dw0 & 0xff);
            }
        }
        st.command(&cmd, &mut mem, &mut Check);
    }
});

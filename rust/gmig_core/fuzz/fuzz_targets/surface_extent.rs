// SPDX-License-Identifier: GPL-2.0
//! Fuzz target: the surface extent functions ([`gmig_core::writeset::surface`])
//! on any state and command dwords. None may panic (overflow checks are
//! on); every range they return is non-empty, ends within 48 bits and is
//! at most `MAX_EXTENT` long.
//!
//! Input (little-endian dwords, missing bytes 0): byte 0 the Number of
//! Multisamples field, byte 1 the Per-Thread Scratch Space field, then a
//! 16-dword RENDER_SURFACE_STATE, an 8-dword 3DSTATE_DEPTH_BUFFER and the
//! rest (up to 16 dwords) a command body given to each command function
//! as is and with its opcode set to that function's.
//! `examples/fuzz_seeds.rs` writes real states and commands of iris.
#![no_main]

use gmig_core::writeset::surface::{
    depth_buffer, hiz_buffer, scratch, so_buffer, stencil_buffer, surface_state, Extent,
    ADDR_LIMIT, MAX_EXTENT,
};
use libfuzzer_sys::fuzz_target;

/// `n` dwords from `data` at byte `at`, zero-padded.
fn dwords<const N: usize>(data: &[u8], at: usize) -> [u32; N] {
    core::array::from_fn(|i| {
        let mut b = [0u8; 4];
        for (k, v) in b.iter_mut().enumerate() {
            *v = data.get(at + 4 * i + k).copied().unwrap_or(0);
        }
        u32::from_le_bytes(b)
    })
}

fn check(e: Extent) {
    for r in e.ranges() {
        assert!(r.start < r.end, "{e:?}");
        assert!(
            r.end <= ADDR_LIMIT && r.end - r.start <= MAX_EXTENT,
            "{e:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let ms = u32::from(data.first().copied().unwrap_or(0) & 7);
    let per_thread = u32::from(data.get(1).copied().unwrap_or(0) & 15);
    let state: [u32; 16] = dwords(data, 2);
    let depth: [u32; 8] = dwords(data, 66);
    let body_len = (data.len().saturating_sub(98) / 4).min(16);
    let body: [u32; 16] = dwords(data, 98);
    let body = &body[..body_len];

    check(surface_state(&state));
    check(depth_buffer(&depth, ms));
    let mut cmd = [0u32; 16];
    cmd[..body.len()].copy_from_slice(body);
    for opcode in [None, Some(0x7805), Some(0x7806), Some(0x7807), Some(0x7918)] {
        if let (Some(op), Some(dw0)) = (opcode, cmd.first_mut()) {
            *dw0 = (*dw0 & 0xffff) | op << 16;
        }
        let c = &cmd[..body.len()];
        check(depth_buffer(c, ms));
        check(stencil_buffer(c, &depth, ms));
        check(hiz_buffer(c, &depth));
        check(so_buffer(c));
    }
    let base = u64::from(state[9]) << 32 | u64::from(state[8]);
    check(scratch(base, per_thread, depth[1]));
});

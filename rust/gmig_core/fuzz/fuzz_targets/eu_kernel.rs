// SPDX-License-Identifier: GPL-2.0
//! Fuzz target: [`gmig_core::writeset::eu::kernel_writes`] on any bytes
//! as a Gen9 shader kernel (fetch reads 16 bytes of the input, failing
//! past its end). Nothing may panic; a kernel whose scan needs bytes past
//! the input's end is unbounded, and a bounded one's scratch end is set
//! exactly when it writes scratch. `examples/fuzz_seeds.rs` writes
//! kernels Mesa compiled for gmig-gl.
#![no_main]

use gmig_core::writeset::eu::kernel_writes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut past_end = false;
    let w = kernel_writes(|off, buf| {
        let Some(s) = usize::try_from(off)
            .ok()
            .and_then(|o| data.get(o..o.checked_add(16)?))
        else {
            past_end = true;
            return false;
        };
        buf.copy_from_slice(s);
        true
    });
    if past_end {
        assert!(w.unbounded.is_some(), "bounded after a failed fetch");
    }
    if w.unbounded.is_none() {
        assert_eq!(w.scratch, w.scratch_end > 0, "scratch end without scratch");
    }
});

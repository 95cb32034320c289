// SPDX-License-Identifier: GPL-2.0
//! Fuzz target: the migration stream decoder must reject or accept any
//! byte string without panicking, and what it accepts must iterate cleanly.
#![no_main]

use gmig_core::stream::{sections_unchecked, validate, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_total: 1 << 20,
        max_section: 1 << 19,
    };
    if validate(data, &limits).is_ok() {
        for s in sections_unchecked(data) {
            assert!(s.is_ok(), "a validated image has a bad section");
        }
    }
});

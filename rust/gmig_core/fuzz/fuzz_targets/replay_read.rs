// SPDX-License-Identifier: GPL-2.0
//! Fuzz target: the replay file reader ([`gmig_core::replay`]) on any byte
//! string. Parsing and validating must never panic; a file that passes
//! both is walked record by record, and what the kernel-side driver would
//! rely on must hold: every PAGE's frame is below the mapped pages and is
//! its address's frame, every EXEC's context is below the contexts, its
//! batch is mapped, and each of its write ranges is page aligned and
//! starts and ends (last byte) in mapped pages; there are as many EXECs
//! as the header says and the file ends with one.
//! `examples/fuzz_seeds.rs` writes small valid files.
#![no_main]

use gmig_core::replay::{Record, Replay, PAGE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(r) = Replay::parse(data) else {
        return;
    };
    let mapped: u64 = r.maps().map(|(_, p)| p).sum();
    assert_eq!(mapped, r.mapped_pages(), "the map table sums to the header");
    let valid = r.validate();
    if let Err(e) = valid {
        let _ = e.to_string();
    }
    let (mut off, mut execs, mut last_exec) = (r.first_record(), 0u64, false);
    while let Some(rec) = r.record_at(off) {
        let Ok((rec, next)) = rec else {
            assert!(valid.is_err(), "a record failed in a valid file");
            return;
        };
        assert!(next > off && next <= data.len(), "records go forward");
        match rec {
            Record::Page { addr, frame, data } => {
                assert!(frame < r.mapped_pages(), "frame {frame} beyond the map");
                assert_eq!(r.frame_of(addr), Some(frame));
                assert_eq!(addr % PAGE, 0);
                assert_eq!(data.len() as u64, PAGE);
                last_exec = false;
            }
            Record::Exec(e) => {
                assert!(e.ctx < r.contexts());
                assert!(r.frame_of(e.batch).is_some(), "batch not mapped");
                let mut prev = 0;
                for (s, end) in e.writes() {
                    assert!(s % PAGE == 0 && end % PAGE == 0 && s < end && s >= prev);
                    assert!(r.frame_of(s).is_some(), "write start not mapped");
                    assert!(r.frame_of(end - 1).is_some(), "write end not mapped");
                    prev = end;
                }
                execs += 1;
                last_exec = true;
            }
        }
        off = next;
    }
    if valid.is_ok() {
        assert_eq!(execs, u64::from(r.execs()));
        assert!(last_exec, "a valid file ends with an EXEC");
    }
});

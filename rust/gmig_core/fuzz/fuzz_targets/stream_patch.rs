// SPDX-License-Identifier: GPL-2.0
//! Fuzz target: a delta the [`Patcher`] writes from what changed restores,
//! on a destination that validates it as a whole, exactly the image the
//! [`Writer`] builds of the same state, and names its digest; it fits the
//! room [`room_for`] gives it (unless it is over half an image). A GGTT
//! entry changed without its mark is the one thing it cannot see: then
//! [`ChangedEntries::unmarked_changes`] counts it.
//!
//! Input: a layout (register bytes, GGTT head bytes and entries, whether
//! the GGTT is filled whole as kvmgt's is, a section that appears at the
//! stop), the base state's bytes, then changes of 4 bytes each: kind,
//! index, value.
#![no_main]

use gmig_core::stream::{
    digest, patch::room_for, ChangedEntries, DeltaView, EntrySpan, ImageSink, Limits, Patcher,
    Section, StreamError, Writer, FLAG_MANDATORY, HEADER_LEN, SECTION_HEADER_LEN,
};
use libfuzzer_sys::fuzz_target;

struct State {
    regs: Vec<u8>,
    head: Vec<u8>,
    ggtt: Vec<u64>,
    whole: bool,
    extra: usize,
}

impl State {
    fn write<W: ImageSink>(&self, w: &mut W) -> Result<(), StreamError> {
        w.section(Section::Regs as u16, FLAG_MANDATORY, self.regs.len(), |p| {
            p.copy_from_slice(&self.regs)
        })?;
        let h = self.head.len();
        let fill_head = |p: &mut [u8]| p.copy_from_slice(&self.head);
        if self.whole {
            w.section(
                Section::Ggtt as u16,
                FLAG_MANDATORY,
                h + 8 * self.ggtt.len(),
                |p| {
                    fill_head(&mut p[..h]);
                    for (c, e) in p[h..].chunks_exact_mut(8).zip(&self.ggtt) {
                        c.copy_from_slice(&e.to_le_bytes());
                    }
                },
            )?;
        } else {
            w.section_entries(
                Section::Ggtt as u16,
                FLAG_MANDATORY,
                h,
                fill_head,
                self.ggtt.len(),
                |i| self.ggtt[i],
            )?;
        }
        if self.extra > 0 {
            w.section(
                Section::GvtWorkloads as u16,
                FLAG_MANDATORY,
                self.extra,
                |p| p.fill(0x5a),
            )?;
        }
        Ok(())
    }

    fn image(&self) -> Vec<u8> {
        let mut buf = vec![0u8; self.len()];
        let mut w = Writer::new(&mut buf, 1, 2).unwrap();
        self.write(&mut w).unwrap();
        let n = w.finish().unwrap();
        buf.truncate(n);
        buf
    }

    fn len(&self) -> usize {
        HEADER_LEN
            + 4 * SECTION_HEADER_LEN
            + self.regs.len()
            + self.head.len()
            + 8 * self.ggtt.len()
            + self.extra
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((layout, rest)) = data.split_first_chunk::<6>() else {
        return;
    };
    let regs = 1 + usize::from(layout[0]) * 2;
    let head = usize::from(layout[1] % 5) * 8;
    let entries = 1 + usize::from(u16::from_le_bytes([layout[2], layout[3]]) % 2048);
    let whole = layout[4] & 1 != 0;
    let extra = usize::from(layout[5] % 4) * 24;
    let mut bytes = rest.iter().copied().chain(core::iter::repeat(0));
    let mut s = State {
        regs: (&mut bytes).take(regs).collect(),
        head: (&mut bytes).take(head).collect(),
        ggtt: (0..entries).map(|i| i as u64 * 0x1001).collect(),
        whole,
        extra: 0,
    };
    let base = s.image();
    let span = EntrySpan {
        offset: HEADER_LEN + 2 * SECTION_HEADER_LEN + regs + head,
        entries,
    };
    let mut changed = ChangedEntries::new(
        span,
        vec![0u64; ChangedEntries::<Vec<u64>>::words_for(entries)],
    )
    .unwrap();
    let mut missed = false;
    let ops = rest.get(regs + head..).unwrap_or(&[]);
    for op in ops.chunks_exact(4).take(256) {
        let i = usize::from(u16::from_le_bytes([op[1], op[2]]));
        let v = u64::from(op[3]) << (8 * (op[0] >> 5));
        match op[0] & 7 {
            0 | 1 => {
                s.ggtt[i % entries] ^= v | 1;
                changed.mark((i % entries) as u64);
            }
            2 => changed.mark((i % entries) as u64),
            3 => s.regs[i % regs] ^= op[3] | 1,
            4 => s.head.iter_mut().take(1).for_each(|b| *b ^= op[3] | 1),
            5 => changed.mark(i as u64 + entries as u64),
            6 => {
                // A write the path missed.
                let e = i % entries;
                s.ggtt[e] ^= v | 1;
                missed |= changed.marked().is_some();
                let _ = e;
            }
            _ => {}
        }
    }
    s.extra = extra;
    let full = s.image();
    let len = s.len().max(base.len());
    let mut scratch = vec![0u8; len];
    // A delta may be twice its image (a run header per changed chunk).
    let mut out = vec![0u8; 3 * len + 1024];
    let room = room_for(len, Some(&changed));
    let mut patch = |out: &mut [u8]| {
        let mut p = Patcher::new(&base, Some(&changed), &mut scratch, out, 1, 2)?;
        s.write(&mut p)?;
        p.finish()
    };
    let (n, result) = match patch(&mut out[..room]) {
        Ok(r) => r,
        Err(StreamError::NoSpace) => {
            // Only a delta over half an image may not fit its room.
            assert_eq!(room, len / 2, "room_for() gave too little room");
            patch(&mut out).unwrap()
        }
        Err(e) => panic!("patch: {e:?}"),
    };
    let limits = Limits {
        max_total: 1 << 24,
        max_section: 1 << 24,
    };
    let v = DeltaView::parse(&out[..n]).expect("a patched delta parses");
    let mut got = vec![0u8; v.result_len()];
    let applied = v.apply(&base, &mut got, &limits);
    let unmarked = changed.unmarked_changes(&base, &full);
    if missed && unmarked > 0 {
        assert_ne!(Ok(result), digest(&full));
    } else {
        applied.expect("a patched delta applies");
        assert_eq!(got, full);
        assert_eq!(Ok(result), digest(&full));
        assert_eq!(unmarked, 0);
    }
});

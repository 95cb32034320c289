// SPDX-License-Identifier: GPL-2.0

//! Tests of the AUB reader against AUBs written the way `intel_dump_gpu`
//! writes them ([`super::super::testutil::aub`]).

use super::super::testutil::aub::{
    one_exec, Writer, CONTEXT_FLAGS, FIRST_BO, MI_BATCH_BUFFER_END, MI_BATCH_BUFFER_START,
    MI_BATCH_PPGTT, SKL_GT2,
};
use super::*;
use std::boxed::Box;
use std::collections::HashMap;
use std::format;
use std::string::ToString;
use std::vec;
use std::vec::Vec;

/// Pages in a map, at most `cap` of them.
struct MapStore {
    pages: HashMap<u64, Box<[u8; PAGE]>>,
    cap: usize,
}

impl MapStore {
    fn new(cap: usize) -> Self {
        Self {
            pages: HashMap::new(),
            cap,
        }
    }
}

impl PageStore for MapStore {
    fn page(&self, pfn: u64) -> Option<&[u8; PAGE]> {
        self.pages.get(&pfn).map(|p| &**p)
    }
    fn page_mut(&mut self, pfn: u64) -> Option<&mut [u8; PAGE]> {
        if !self.pages.contains_key(&pfn) && self.pages.len() >= self.cap {
            return None;
        }
        Some(self.pages.entry(pfn).or_insert_with(|| Box::new([0; PAGE])))
    }
}

type Mem = AubMem<MapStore, MapStore>;

fn mem() -> Mem {
    AubMem::new(MapStore::new(1 << 16), MapStore::new(1 << 16))
}

/// Every packet of `aub`, or the first error.
fn packets(aub: &[u8]) -> Result<Vec<(usize, Packet<'_>)>, AubError> {
    Packets::new(aub).collect()
}

/// What reading a whole AUB gives: the memory, the header's PCI id and
/// the submissions.
struct Replay {
    mem: Mem,
    pci_id: Option<u32>,
    subs: Vec<Submission>,
}

fn replay(aub: &[u8]) -> Result<Replay, AubError> {
    let mut r = Replay {
        mem: mem(),
        pci_id: None,
        subs: Vec::new(),
    };
    let mut el = Execlists::default();
    for p in Packets::new(aub) {
        let (off, p) = p?;
        r.mem.apply(off, &p)?;
        match p {
            Packet::Header { pci_id } => r.pci_id = pci_id,
            Packet::RegWrite { reg, value } => r.subs.extend(el.reg_write(reg, value)),
            _ => {}
        }
    }
    Ok(r)
}

fn le(dws: &[u32]) -> Vec<u8> {
    dws.iter().flat_map(|d| d.to_le_bytes()).collect()
}

/// A batch of `n` dwords: MI_NOOPs with distinct identification numbers,
/// then MI_BATCH_BUFFER_END.
fn batch(n: u32) -> Vec<u8> {
    let mut b: Vec<u32> = (1..n).collect();
    b.push(MI_BATCH_BUFFER_END);
    le(&b)
}

fn exec(engine: Engine, batch: &[u8], small: bool) -> (Vec<u8>, u64) {
    let mut buf = vec![0u8; 1 << 20];
    let (n, d) = one_exec(&mut buf, engine, batch, small).unwrap();
    buf.truncate(n);
    (buf, d)
}

#[test]
fn one_exec_round_trip() {
    // Two pages of batch: read_ppgtt crosses a page boundary.
    let b = batch(1100);
    let (aub, descriptor) = exec(Engine::Render, &b, false);
    let r = replay(&aub).unwrap();
    assert_eq!(r.pci_id, Some(SKL_GT2));
    // Ring at GGTT 0x1000, PPHWSP (the LRCA) at 0x2000.
    assert_eq!(descriptor, 0x2000 | CONTEXT_FLAGS);
    assert_eq!(
        r.subs,
        [Submission {
            engine: Engine::Render,
            descriptor,
            element1: 0
        }]
    );
    let ctx = context_of(&r.mem, &r.subs[0]).unwrap();
    assert_eq!(
        ctx,
        ExeclistContext {
            lrca: 0x2000,
            ring_start: 0x1000,
            ring_head: 0,
            ring_tail: 16,
            pml4: 0,
            ring_ctl: Some(1),
        }
    );
    let mut ring = [0u8; 16];
    r.mem.read_ggtt(ctx.ring_start, &mut ring).unwrap();
    let cmd = MI_BATCH_BUFFER_START | MI_BATCH_PPGTT;
    assert_eq!(ring.to_vec(), le(&[cmd, FIRST_BO as u32, 0, 0]));
    let mut got = vec![0u8; b.len()];
    r.mem.read_ppgtt(ctx.pml4, FIRST_BO, &mut got).unwrap();
    assert_eq!(got, b);
    // The batch's pages are mapped no further than the buffer.
    let mut past = [0u8; 4];
    assert_eq!(
        r.mem.read_ppgtt(ctx.pml4, FIRST_BO + 0x2000, &mut past),
        None
    );
}

#[test]
fn second_exec_and_other_engines() {
    let mut buf = vec![0u8; 1 << 20];
    let mut w = Writer::new(&mut buf, SKL_GT2, "two", true);
    w.default_setup();
    let b = batch(8);
    assert!(w.map_ppgtt(FIRST_BO, b.len() as u64));
    assert!(w.trace_block(FIRST_BO, &b));
    let d0 = w.exec(Engine::Render, FIRST_BO).unwrap();
    let d1 = w.exec(Engine::Blitter, FIRST_BO).unwrap();
    let d2 = w.exec(Engine::Render, FIRST_BO).unwrap();
    let dv = w.exec(Engine::Video, FIRST_BO).unwrap();
    assert_eq!(w.exec(Engine::Video2, FIRST_BO), None);
    let blt = w.context(Engine::Blitter).unwrap();
    let n = w.finish().unwrap();
    let r = replay(&buf[..n]).unwrap();
    let engines: Vec<_> = r.subs.iter().map(|s| (s.engine, s.descriptor)).collect();
    assert_eq!(
        engines,
        [
            (Engine::Render, d0),
            (Engine::Blitter, d1),
            (Engine::Render, d2),
            (Engine::Video, dv)
        ]
    );
    let c = context_of(&r.mem, &r.subs[1]).unwrap();
    assert_eq!((c.lrca, c.ring_start), (blt.pphwsp, blt.ring));
    assert_eq!((c.ring_head, c.ring_tail, c.pml4), (0, 16, 0));
    assert_eq!(context_of(&r.mem, &r.subs[2]).unwrap().lrca, 0x2000);
    // Mesa's video context loads VCS2's registers, not VCS0's.
    assert_eq!(
        context_of(&r.mem, &r.subs[3]),
        Err(ContextError::MissingRegister { reg: 0x12034 })
    );
}

#[test]
fn truncated_at_every_byte() {
    let (aub, _) = exec(Engine::Render, &batch(16), true);
    let bounds: Vec<usize> = packets(&aub).unwrap().iter().map(|p| p.0).collect();
    for len in 0..=aub.len() {
        let mut it = Packets::new(&aub[..len]);
        let mut seen = Vec::new();
        let mut err = None;
        for p in it.by_ref() {
            match p {
                Ok((off, _)) => seen.push(off),
                Err(e) => err = Some(e),
            }
        }
        assert!(it.next().is_none());
        assert_eq!(seen, bounds[..seen.len()], "len {len}");
        match err {
            None => assert!(len == aub.len() || bounds.contains(&len), "len {len}"),
            Some(e) => {
                let at = bounds[seen.len()];
                assert_eq!(e, AubError::Truncated { offset: at }, "len {len}");
                assert!(len > at && !bounds.contains(&len), "len {len}");
            }
        }
    }
}

/// A memory write packet: header length `dwords - 1`, size field `size`.
fn mem_write(space: u32, addr: u64, size: u32, payload: &[u32]) -> Vec<u8> {
    let n = 5 + payload.len() as u32;
    let mut d = vec![
        CMD_MEM_TRACE_MEMORY_WRITE | (n - 1),
        addr as u32,
        (addr >> 32) as u32,
        space << 28,
        size,
    ];
    d.extend_from_slice(payload);
    le(&d)
}

fn first_error(aub: &[u8]) -> AubError {
    packets(aub).unwrap_err()
}

#[test]
fn bad_packets() {
    // A size field one byte larger than the packet.
    let p = mem_write(2, 0, 9, &[1, 2]);
    assert_eq!(
        first_error(&p),
        AubError::BadPacket {
            offset: 0,
            header: CMD_MEM_TRACE_MEMORY_WRITE | 6,
            why: "size field larger than the packet"
        }
    );
    assert!(packets(&mem_write(2, 0, 8, &[1, 2])).is_ok());
    // The data is the size field's bytes, the padding excluded.
    let padded = mem_write(2, 0x1_0000_0010, 5, &[0x0403_0201, 0xaaaa_aa05]);
    assert_eq!(
        packets(&padded).unwrap()[0].1,
        Packet::MemWrite {
            space: AubSpace::Physical,
            addr: 0x1_0000_0010,
            data: &[1, 2, 3, 4, 5]
        }
    );
    // The error is at the second packet's offset.
    let mut two = mem_write(2, 0, 4, &[1]);
    two.extend(mem_write(2, 0, 5, &[1]));
    assert!(matches!(
        first_error(&two),
        AubError::BadPacket { offset: 24, .. }
    ));
    // A zero-length header.
    assert_eq!(
        first_error(&le(&[CMD_MEM_TRACE_COMMENT])),
        AubError::BadPacket {
            offset: 0,
            header: CMD_MEM_TRACE_COMMENT,
            why: "zero header length"
        }
    );
    // A header length running past the end.
    assert_eq!(
        first_error(&le(&[CMD_MEM_TRACE_COMMENT | 2, 0])),
        AubError::Truncated { offset: 0 }
    );
    // Unknown opcode, type, sub-opcode.
    for h in [
        0xe100_0001u32,
        0x2e << 23 | 1,
        packet_header(0x2e, 0x7f) | 1,
    ] {
        assert_eq!(
            first_error(&le(&[h, 0])),
            AubError::UnknownPacket {
                offset: 0,
                header: h
            }
        );
    }
    // A discontiguous write, a legacy ring write, a write to an unknown
    // address space.
    let discont = le(&[CMD_MEM_TRACE_MEMORY_WRITE_DISCONT | 1, 0]);
    let ring = le(&[
        CMD_AUB_TRACE_HEADER_BLOCK | 4,
        AUB_TRACE_OP_COMMAND_WRITE | 2 << 8,
        0,
        0,
        4,
        0,
        0,
    ]);
    for (p, why) in [
        (discont, "discontiguous memory write"),
        (ring, "legacy ring command write"),
        (
            mem_write(3, 0, 4, &[0]),
            "memory write to an unknown address space",
        ),
    ] {
        assert!(
            matches!(first_error(&p), AubError::Unsupported { offset: 0, why: w, .. } if w == why),
            "{why}"
        );
    }
    // 1-3 trailing bytes.
    let mut tail = mem_write(2, 0, 4, &[1]);
    tail.push(0);
    assert_eq!(first_error(&tail), AubError::Truncated { offset: 24 });
    // A local write reads, and does not apply.
    let local = mem_write(1, 0x1000, 4, &[7]);
    let (off, p) = packets(&local).unwrap()[0];
    assert_eq!(
        p,
        Packet::MemWrite {
            space: AubSpace::Local,
            addr: 0x1000,
            data: &7u32.to_le_bytes()
        }
    );
    let mut m = mem();
    assert!(matches!(
        m.apply(off, &p),
        Err(AubError::Unsupported { offset: 0, .. })
    ));
    // Error messages name the offset.
    let msg = AubError::Truncated { offset: 0x40 }.to_string();
    assert!(msg.contains("0x40"), "{msg}");
    let msg = format!("{}", first_error(&two));
    assert!(msg.contains("0x18") && msg.contains("size field"), "{msg}");
}

#[test]
fn register_writes_and_polls() {
    let w =
        |kind: u32, mask: u32| le(&[CMD_MEM_TRACE_REGISTER_WRITE | 5, 0x2230, kind, mask, 0, 9]);
    let dword = AUB_MEM_TRACE_REGISTER_SIZE_DWORD;
    assert_eq!(
        packets(&w(dword, !0)).unwrap()[0].1,
        Packet::RegWrite {
            reg: 0x2230,
            value: 9
        }
    );
    for (p, why) in [
        (w(dword, 0xffff), "masked register write"),
        (
            w(1 << 16, !0),
            "register write of a size other than a dword",
        ),
        (
            w(dword | 1 << 28, !0),
            "register write outside the MMIO space",
        ),
    ] {
        assert!(
            matches!(first_error(&p), AubError::Unsupported { why: w, .. } if w == why),
            "{why}"
        );
    }
    let short = le(&[CMD_MEM_TRACE_REGISTER_WRITE | 4, 0x2230, dword, !0, 0]);
    assert!(matches!(first_error(&short), AubError::BadPacket { .. }));
    for h in [
        CMD_MEM_TRACE_REGISTER_POLL,
        CMD_MEM_TRACE_MEMORY_POLL,
        CMD_MEM_TRACE_COMMENT,
        CMD_MEM_TRACE_FRAME_BEGIN,
    ] {
        assert_eq!(packets(&le(&[h | 1, 0])).unwrap()[0].1, Packet::Other);
    }
}

#[test]
fn legacy_packets() {
    // write_legacy_header(): 13 dwords + the comment "PCI-ID=0x1912".
    let mut h = vec![CMD_AUB_HEADER | (13 + 4 - 2), 4 << 24];
    h.extend([0u32; 8]); // application name
    h.extend([0, 0, 13]); // timestamp, comment length
    h.extend(
        b"PCI-ID=0x1912\0\0\0"
            .chunks(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
    );
    assert_eq!(
        packets(&le(&h)).unwrap()[0].1,
        Packet::Header {
            pci_id: Some(0x1912)
        }
    );
    // A legacy data write (64-bit form) goes through the GGTT.
    let d = le(&[
        CMD_AUB_TRACE_HEADER_BLOCK | 4,
        AUB_TRACE_OP_DATA_WRITE,
        0,
        0x3000,
        8,
        1,
        5,
        6,
    ]);
    assert_eq!(
        packets(&d).unwrap()[0].1,
        Packet::MemWrite {
            space: AubSpace::Ggtt,
            addr: 0x1_0000_3000,
            data: &le(&[5, 6])
        }
    );
    // The GTT entry setup of write_legacy_default_setup() is unsupported.
    let e = le(&[
        CMD_AUB_TRACE_HEADER_BLOCK | 4,
        AUB_TRACE_MEMTYPE_GTT_ENTRY | 1,
        0,
        0,
        8,
        0,
        3,
        0,
    ]);
    assert!(matches!(first_error(&e), AubError::Unsupported { .. }));
    // A size that is not a multiple of 4.
    let odd = le(&[
        CMD_AUB_TRACE_HEADER_BLOCK | 4,
        AUB_TRACE_OP_DATA_WRITE,
        0,
        0,
        7,
        0,
        0,
        0,
    ]);
    assert!(matches!(first_error(&odd), AubError::BadPacket { .. }));
}

#[test]
fn pci_ids() {
    assert_eq!(pci_id(b"PCI-ID=0x1912 gmig"), Some(0x1912));
    assert_eq!(pci_id(b"PCI-ID=6418"), Some(6418));
    assert_eq!(pci_id(b"PCI-ID=017"), Some(0o17));
    assert_eq!(pci_id(b"PCI-ID= 0X1a"), Some(0x1a));
    assert_eq!(pci_id(b"PCI-ID=x"), None);
    assert_eq!(pci_id(b"PCI-ID=0x1ffffffff"), None);
    assert_eq!(pci_id(b"gmig"), None);
}

/// Applies physical writes of u64 `entries` (address, value).
fn put(m: &mut Mem, entries: &[(u64, u64)]) {
    for &(a, v) in entries {
        let p = Packet::MemWrite {
            space: AubSpace::Physical,
            addr: a,
            data: &v.to_le_bytes(),
        };
        m.apply(0, &p).unwrap();
    }
}

#[test]
fn ppgtt_not_present_at_each_level() {
    // VA 0x0000_8040_2060_3123: indices 1, 1, 1, 3.
    let va = 1 << 39 | 1 << 30 | 1 << 21 | 3 << 12 | 0x123;
    let pml4 = 0x10_000;
    let (pdp, pd, pt, page) = (0x11_000u64, 0x12_000u64, 0x13_000u64, 0x7_7000u64);
    let levels = [
        (pml4 + 8, pdp),
        (pdp + 8, pd),
        (pd + 8, pt),
        (pt + 24, page),
    ];
    let mut m = mem();
    put(&mut m, &levels.map(|(a, t)| (a, t | 3)));
    put(&mut m, &[(page + 0x120, 0x1122_3344_5566_7788)]);
    assert_eq!(m.translate_ppgtt(pml4, va), Some(page | 0x123));
    let mut b = [0u8; 4];
    m.read_ppgtt(pml4, va + 1, &mut b).unwrap();
    assert_eq!(u32::from_le_bytes(b), 0x1122_3344);
    for (i, &(a, t)) in levels.iter().enumerate() {
        // Not present (bit 0 clear, address kept) at this level.
        put(&mut m, &[(a, t | 2)]);
        assert_eq!(m.translate_ppgtt(pml4, va), None, "level {}", 4 - i);
        assert_eq!(m.read_ppgtt(pml4, va, &mut b), None);
        put(&mut m, &[(a, t | 3)]);
    }
    // A 1 GiB page, a 2 MiB page, 64 KiB page tables are not walked.
    for (a, t, bit) in [
        (pdp + 8, pd, 1 << 7),
        (pd + 8, pt, 1 << 7),
        (pd + 8, pt, 1 << 11),
    ] {
        put(&mut m, &[(a, t | 3 | bit)]);
        assert_eq!(m.translate_ppgtt(pml4, va), None, "{a:#x} {bit:#x}");
        put(&mut m, &[(a, t | 3)]);
    }
    // A table page never written; the page itself never written.
    assert_eq!(m.translate_ppgtt(0x50_000, va), None);
    put(&mut m, &[(pt + 32, 0x9_9000 | 3)]);
    assert_eq!(m.translate_ppgtt(pml4, va + 0x1000), Some(0x9_9123));
    assert_eq!(m.read_ppgtt(pml4, va + 0x1000, &mut b), None);
    // A read across into an unmapped page.
    let mut two = [0u8; 8];
    assert_eq!(m.read_ppgtt(pml4, va | 0xffc, &mut two), None);
    assert!(m.read_ppgtt(pml4, (va | 0xffc) - 4, &mut b).is_some());
    assert_eq!(m.translate_ppgtt(pml4, va), Some(page | 0x123));
}

fn ggtt_write(gma: u64, data: &[u8]) -> Packet<'_> {
    Packet::MemWrite {
        space: AubSpace::Ggtt,
        addr: gma,
        data,
    }
}

/// Writes GGTT entries from entry `index` on.
fn set_ggtt(m: &mut Mem, index: u64, entries: &[u64]) {
    let e: Vec<u8> = entries.iter().flat_map(|e| e.to_le_bytes()).collect();
    let p = Packet::MemWrite {
        space: AubSpace::GgttEntry,
        addr: 8 * index,
        data: &e,
    };
    m.apply(0, &p).unwrap();
}

#[test]
fn ggtt_write_through_entries() {
    let mut m = mem();
    // Entries 1 and 2: pages 0x5000 and 0x9000 (bit 39 set: outside the
    // Gen8 address bits 38:12).
    set_ggtt(&mut m, 1, &[0x5000 | 1, 1 << 39 | 0x9000 | 1]);
    assert_eq!(m.translate_ggtt(0x1abc), Some(0x5abc));
    assert_eq!(m.translate_ggtt(0x2000), Some(0x9000));
    m.apply(0, &ggtt_write(0x1ffe, &[1, 2, 3, 4])).unwrap();
    let mut b = [0u8; 4];
    m.read_ggtt(0x1ffe, &mut b).unwrap();
    assert_eq!(b, [1, 2, 3, 4]);
    m.read_phys(0x5ffe, &mut b[..2]).unwrap();
    m.read_phys(0x9000, &mut b[2..]).unwrap();
    assert_eq!(b, [1, 2, 3, 4]);
    // The entry is read when the write is applied: a later entry does
    // not move it.
    set_ggtt(&mut m, 1, &[0x6000 | 1]);
    assert_eq!(
        m.read_ggtt(0x1ffe, &mut b),
        None,
        "page 0x6000 never written"
    );
}

#[test]
fn ggtt_write_unmapped_is_error() {
    let mut m = mem();
    // No entry at all (page 0x1000), entry 3 written with the present bit
    // clear and address bits set.
    set_ggtt(&mut m, 3, &[0x4000]);
    for (offset, gma, page) in [(0x30, 0x1000, 0x1000), (0, 0x3010, 0x3000)] {
        assert_eq!(
            m.apply(offset, &ggtt_write(gma, &[1])),
            Err(AubError::GgttUnmapped { offset, gma: page })
        );
    }
    // Entry 0 zero: never a write to physical page 0 or 0x4000.
    set_ggtt(&mut m, 0, &[0]);
    assert!(m.apply(0, &ggtt_write(0, &[1])).is_err());
    assert!(m.phys().pages.is_empty());
    assert_eq!(m.translate_ggtt(0x3000), None);
    assert_eq!(m.read_ggtt(0x3000, &mut [0]), None);
    // A GGTT entry write in partial entries is a bad packet.
    let p = mem_write(4, 4, 8, &[1, 0]);
    assert!(matches!(first_error(&p), AubError::BadPacket { .. }));
}

#[test]
fn store_cap_is_an_error() {
    let mut m: Mem = AubMem::new(MapStore::new(1), MapStore::new(0));
    // Physical write over two pages: the second is refused.
    let data = [7u8; 16];
    let p = Packet::MemWrite {
        space: AubSpace::Physical,
        addr: 0x1ff8,
        data: &data,
    };
    assert_eq!(
        m.apply(5, &p),
        Err(AubError::StoreFull { offset: 5, pfn: 2 })
    );
    let p = Packet::MemWrite {
        space: AubSpace::GgttEntry,
        addr: 0,
        data: &data[..8],
    };
    assert_eq!(
        m.apply(6, &p),
        Err(AubError::StoreFull { offset: 6, pfn: 0 })
    );
    // A whole AUB in too small a store.
    let (aub, _) = exec(Engine::Render, &batch(16), true);
    let mut m: Mem = AubMem::new(MapStore::new(3), MapStore::new(1));
    let err = Packets::new(&aub)
        .map(|p| p.and_then(|(off, p)| m.apply(off, &p)))
        .find(Result::is_err);
    assert!(
        matches!(err, Some(Err(AubError::StoreFull { .. }))),
        "{err:?}"
    );
}

#[test]
fn execlists_engines() {
    for e in Engine::ALL {
        let mut el = Execlists::default();
        let port = e.base() + EXECLIST_SUBMITPORT;
        assert_eq!(el.reg_write(port, 0xa), None);
        assert_eq!(el.reg_write(e.base() + 0x29c, 1), None);
        assert_eq!(el.reg_write(port, 0xb), None);
        // Another engine's writes in between do not count here.
        let other = Engine::ALL[(e.index() + 1) % 5];
        assert_eq!(el.reg_write(other.base() + EXECLIST_SUBMITPORT, 9), None);
        assert_eq!(el.reg_write(port, 0x1234), None);
        assert_eq!(
            el.reg_write(port, 0x5678),
            Some(Submission {
                engine: e,
                descriptor: 0x1234_0000_5678,
                element1: 0xa_0000_000b
            })
        );
        // And the next four start over.
        for v in 0..3 {
            assert_eq!(el.reg_write(port, v), None);
        }
        assert!(el.reg_write(port, 3).is_some());
        // Gen11 ELSQ and control registers are not tracked.
        for off in [0x510, 0x514, 0x550] {
            assert_eq!(el.reg_write(e.base() + off, 1), None);
        }
    }
}

/// Memory whose GGTT page 0x1000 holds register state `dws` (LRCA 0).
fn state(dws: &[u32]) -> Mem {
    let mut m = mem();
    set_ggtt(&mut m, 1, &[0x8000 | 1]);
    m.apply(0, &ggtt_write(0x1000, &le(dws))).unwrap();
    m
}

fn render(descriptor: u64) -> Submission {
    Submission {
        engine: Engine::Render,
        descriptor,
        element1: 0,
    }
}

const LRI: u32 = 0x22 << 23;

#[test]
fn context_errors() {
    let full = [
        0,
        LRI | 7,
        0x2034,
        0x1234_5677,
        0x2030,
        0xffff_ffff,
        0x2038,
        0x1_2fff,
        0x2274,
        0xffff_1234,
        LRI | 1,
        0x2270,
        0x5000_0fff,
        MI_BATCH_BUFFER_END,
        0xdead,
    ];
    let ok = render(CONTEXT_FLAGS);
    assert_eq!(
        context_of(&state(&full), &ok),
        Ok(ExeclistContext {
            lrca: 0,
            ring_start: 0x1_2000,
            ring_head: 0x14_5674,
            ring_tail: 0x1f_fff8,
            pml4: 0x1234_5000_0000,
            ring_ctl: None,
        })
    );
    // Addressing mode legacy 32-bit.
    let d = CONTEXT_FLAGS & !(1 << 4);
    assert_eq!(
        context_of(&state(&full), &render(d)),
        Err(ContextError::AddressingMode { descriptor: d })
    );
    // Not mapped: LRCA 0x1000, state at 0x2000.
    assert_eq!(
        context_of(&state(&full), &render(0x1000 | CONTEXT_FLAGS)),
        Err(ContextError::NotMapped { gma: 0x2000 })
    );
    // An unknown command before the end.
    let mut bad = full;
    bad[10] = 0x1234_0000;
    assert_eq!(
        context_of(&state(&bad), &ok),
        Err(ContextError::UnexpectedCommand {
            gma: 0x1000 + 40,
            dword: 0x1234_0000
        })
    );
    // No LRI at all.
    assert_eq!(
        context_of(&state(&[0, 0, MI_BATCH_BUFFER_END]), &ok),
        Err(ContextError::NoLri { gma: 0x1000 })
    );
    // A register missing (PDP0's low half).
    let mut miss = full;
    miss[11] = 0x2278;
    assert_eq!(
        context_of(&state(&miss), &ok),
        Err(ContextError::MissingRegister { reg: 0x2270 })
    );
    // Another engine's registers are not this engine's.
    let blt = Submission {
        engine: Engine::Blitter,
        ..ok
    };
    assert_eq!(
        context_of(&state(&full), &blt),
        Err(ContextError::MissingRegister { reg: 0x22034 })
    );
    // An LRI of an even length, and one running off the page.
    let mut even = full;
    even[1] = LRI | 6;
    assert!(matches!(
        context_of(&state(&even), &ok),
        Err(ContextError::BadLri { gma: 0x1004, .. })
    ));
    let mut last = vec![0u32; 1024];
    last[1021] = LRI | 3;
    assert!(matches!(
        context_of(&state(&last), &ok),
        Err(ContextError::BadLri { gma: 0x1ff4, .. })
    ));
    let msg = ContextError::NotMapped { gma: 0x2000 }.to_string();
    assert!(msg.contains("0x2000"), "{msg}");
}

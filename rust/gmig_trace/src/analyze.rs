// SPDX-License-Identifier: GPL-2.0

//! The analysis of a capture: GPU memory rebuilt from the AUB as it stood
//! at each submission, each execbuffer's ring and batches walked with
//! gmig's command parser, each command's writes from gmig's write-set
//! analysis (`gmig_core::writeset::command`, what both providers run),
//! checked against Mesa's description of the commands and against the
//! buffers the driver flagged written.

use crate::execlog::{Bo, Exec};
use crate::genxml::{self, Table};
use gmig_core::aub::{context_of, AubMem, Engine, Execlists, Packet, Packets, PageStore};
use gmig_core::cmd::{CmdError, Command, Cursor, End, Kind, Level, Mode, Space};
use gmig_core::writeset::command::{command_write, CmdWrite};
use gmig_core::writeset::state::{GpuRead, PipeState, StateSink};
use gmig_core::writeset::surface::Range;
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::ops::ControlFlow;

const PAGE: u64 = 4096;

/// Batches chained or called per execbuffer at most before the walk
/// gives up (unbounded).
const MAX_BATCHES: usize = 4096;

/// Bytes of a batch read at most when no buffer of the execbuffer holds
/// its address.
const MAX_LOOSE_BATCH: u64 = 1 << 20;

/// Physical pages in a map, at most `cap` of them.
pub struct Store {
    pages: HashMap<u64, Box<[u8; 4096]>>,
    cap: usize,
}

impl Store {
    /// An empty store of at most `cap` pages.
    pub fn new(cap: usize) -> Self {
        Self {
            pages: HashMap::new(),
            cap,
        }
    }
}

impl PageStore for Store {
    fn page(&self, pfn: u64) -> Option<&[u8; 4096]> {
        self.pages.get(&pfn).map(|p| &**p)
    }

    fn page_mut(&mut self, pfn: u64) -> Option<&mut [u8; 4096]> {
        if !self.pages.contains_key(&pfn) && self.pages.len() >= self.cap {
            return None;
        }
        Some(&mut **self.pages.entry(pfn).or_insert_with(|| Box::new([0; 4096])))
    }
}

/// What the analysis says of one execbuffer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Every command's writes are bounded (through the PPGTT, as the sim
    /// translates them).
    pub bounded: bool,
    /// Bounded under the GVT-g provider's rule too. With patches/gvt 0019
    /// its scanner hook walks the guest's PPGTT and runs the pipeline state
    /// as the sim does; what it counts unbounded on top (a 3-level PPGTT,
    /// huge or 64 KiB pages) intel_dump_gpu's captures do not have, and a
    /// GGTT write from a PPGTT batch, unbounded here, it bounds.
    pub bounded_gvt: bool,
    /// GPU virtual address ranges the commands may write, end exclusive,
    /// sorted and merged.
    pub writes: Vec<(u64, u64)>,
    /// Commands walked.
    pub commands: u64,
    /// Of which 3DPRIMITIVE (draws, BLORP's included).
    pub draws: u64,
    /// Of which GPGPU_WALKER (compute dispatches).
    pub dispatches: u64,
    /// Commands gmig's parser and Mesa's description disagree on.
    pub mismatches: Vec<String>,
    /// Why the walk made the execbuffer unbounded, beyond the commands.
    pub notes: Vec<String>,
}

struct Walk<'a, P, G> {
    mem: &'a AubMem<P, G>,
    state: &'a mut PipeState,
    table: &'a Table,
    engine: &'static str,
    pml4: u64,
    bos: &'a [Bo],
    v: Verdict,
    batches: usize,
}

impl<P: PageStore, G: PageStore> Walk<'_, P, G> {
    fn unbounded(&mut self, why: String) {
        self.v.bounded = false;
        self.v.bounded_gvt = false;
        if self.v.notes.len() < 8 {
            self.v.notes.push(why);
        }
    }

    /// The dwords of the buffer from `addr` in `space`: to the end of the
    /// execbuffer's buffer holding it, or of the mapped pages.
    fn fetch(&self, space: Space, addr: u64) -> Vec<u32> {
        let end = self
            .bos
            .iter()
            .map(Bo::range)
            .find(|&(s, e)| s <= addr && addr < e)
            .map(|(_, e)| e)
            .unwrap_or(addr.saturating_add(MAX_LOOSE_BATCH));
        let mut out = Vec::new();
        let mut a = addr;
        let mut page = [0u8; 4096];
        while a < end {
            let n = (PAGE - a % PAGE).min(end - a) as usize;
            let buf = &mut page[..n];
            let ok = match space {
                Space::Ggtt => self.mem.read_ggtt(a, buf),
                Space::Ppgtt => self.mem.read_ppgtt(self.pml4, a, buf),
            };
            if ok.is_none() {
                break;
            }
            out.extend(
                buf.chunks_exact(4)
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            );
            a += n as u64;
        }
        out
    }

    fn command(&mut self, cmd: &[u32], batch_space: Space) {
        self.v.commands += 1;
        match cmd[0] >> 16 {
            0x7b00 => self.v.draws += 1,
            0x7105 if self.engine == "render" => self.v.dispatches += 1,
            _ => {}
        }
        let parsed = Command::decode(cmd, 0, Mode::PPGTT).ok();
        if let Some(m) = genxml::check(self.table, self.engine, cmd, parsed.as_ref()) {
            self.v.mismatches.push(m.to_string());
        }
        let mut reader = PpgttReader {
            mem: self.mem,
            pml4: self.pml4,
        };
        let mut sink = DrawSink {
            v: &mut self.v,
            unbounded: None,
        };
        if self.state.command(cmd, &mut reader, &mut sink) {
            if let Some(why) = sink.unbounded {
                self.unbounded(format!(
                    "{}: {why}",
                    command_name(self.table, self.engine, cmd)
                ));
            }
            return;
        }
        match command_write(cmd, Mode::PPGTT) {
            CmdWrite::Nothing | CmdWrite::StatusPage => {}
            CmdWrite::Range {
                space: Space::Ppgtt,
                addr,
                len,
            } if batch_space == Space::Ppgtt => {
                self.v.writes.push((addr, addr.saturating_add(len)));
            }
            CmdWrite::Range { space, addr, .. } => {
                self.unbounded(format!(
                    "{:#x}: a write at {addr:#x} through the {space:?}",
                    cmd[0]
                ));
            }
            CmdWrite::Unbounded => {
                self.unbounded(format!(
                    "{}: unbounded",
                    command_name(self.table, self.engine, cmd)
                ));
            }
        }
    }

    /// Walks the buffer at `addr` of `level`, what it calls and what it
    /// chains to.
    fn buffer(&mut self, space: Space, addr: u64, level: Level, depth: u32) {
        let mut next = Some((space, addr));
        while let Some((space, addr)) = next {
            self.batches += 1;
            if self.batches > MAX_BATCHES || depth > 2 {
                self.unbounded(format!("batch at {addr:#x}: too many batches or levels"));
                return;
            }
            let buf = self.fetch(space, addr);
            next = self.walk_words(&buf, space, addr, level, depth);
        }
    }

    /// The commands of one buffer, batches it calls walked; returns where
    /// a chained batch start leads.
    fn walk_words(
        &mut self,
        buf: &[u32],
        space: Space,
        addr: u64,
        level: Level,
        depth: u32,
    ) -> Option<(Space, u64)> {
        let mut cur = Cursor::new(Mode::PPGTT, level);
        while let Some(r) = cur.next(buf) {
            let c = match r {
                Ok(c) => c,
                Err(e) => {
                    if let CmdError::UnknownOpcode { offset, header }
                    | CmdError::BadLength { offset, header } = e
                    {
                        if let Some(m) = buf
                            .get(offset..)
                            .and_then(|cmd| genxml::check(self.table, self.engine, cmd, None))
                        {
                            self.v.mismatches.push(m.to_string());
                        }
                        self.unbounded(format!(
                            "{:#x}: unknown command {header:#010x}",
                            addr + 4 * offset as u64
                        ));
                    } else {
                        self.unbounded(format!("buffer at {addr:#x}: {e:?}"));
                    }
                    return None;
                }
            };
            let cmd = &buf[c.offset..c.offset + c.len];
            self.command(cmd, space);
            let Kind::MiBatchBufferStart { space: s, .. } = c.kind else {
                continue;
            };
            // The cursor decoded it in `buf`: its address fields index it.
            let Some(target) = c.addrs().first().and_then(|a| a.read(buf)) else {
                self.unbounded(format!("{addr:#x}: a batch start without an address"));
                return None;
            };
            if cur.end() == Some(End::Chained) {
                return Some((s, target));
            }
            if let Some(l) = c.target_level(level) {
                self.buffer(s, target, l, depth + 1);
            }
        }
        if level != Level::Ring && cur.end().is_none() {
            self.unbounded(format!("buffer at {addr:#x}: no batch end"));
        }
        None
    }
}

/// Mesa's name for the command at the start of `cmd`.
fn command_name(table: &Table, engine: &str, cmd: &[u32]) -> String {
    match table.lookup(cmd[0], engine) {
        Some(i) => i.name.clone(),
        None => format!("{:#010x}", cmd[0]),
    }
}

/// The context's PPGTT as the state tracker reads it.
struct PpgttReader<'a, P, G> {
    mem: &'a AubMem<P, G>,
    pml4: u64,
}

impl<P: PageStore, G: PageStore> GpuRead for PpgttReader<'_, P, G> {
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> bool {
        self.mem.read_ppgtt(self.pml4, addr, buf).is_some()
    }
}

/// Collects a draw's or dispatch's writes into the execbuffer's verdict.
struct DrawSink<'a> {
    v: &'a mut Verdict,
    unbounded: Option<&'static str>,
}

impl StateSink for DrawSink<'_> {
    fn write(&mut self, r: Range) {
        self.v.writes.push((r.start, r.end));
    }

    fn unbounded(&mut self, why: &'static str) {
        self.unbounded.get_or_insert(why);
    }

    fn read_state(&mut self, r: Range) {
        // State an earlier command of this execbuffer may have written:
        // what was read is not what the GPU will read.
        if let Some(w) = self
            .v
            .writes
            .iter()
            .find(|&&(s, e)| s < r.end && r.start < e)
        {
            if std::env::var_os("GMIG_TRACE_DEBUG").is_some() {
                eprintln!(
                    "state {:#x}..{:#x} overlaps write {:#x}..{:#x}",
                    r.start, r.end, w.0, w.1
                );
            }
            self.unbounded("reads state an earlier command may write");
        }
    }
}

/// Merges sorted-or-not ranges into sorted, disjoint ones.
pub fn merge(mut r: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    r.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(r.len());
    for (s, e) in r {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

fn pages(s: u64, e: u64) -> std::ops::Range<u64> {
    s / PAGE..e.div_ceil(PAGE)
}

/// Whether any of the sorted, disjoint `writes` touches `[s, e)`.
pub fn touches(writes: &[(u64, u64)], s: u64, e: u64) -> bool {
    let i = writes.partition_point(|w| w.1 <= s);
    writes.get(i).is_some_and(|w| w.0 < e)
}

/// Figures over a whole capture.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Execbuffers analyzed.
    pub execbuffers: u64,
    /// Of which bounded.
    pub bounded: u64,
    /// Of which bounded under the GVT-g provider's rule.
    pub bounded_gvt: u64,
    /// Pages of every buffer mapped over the capture.
    pub tracked_pages: u64,
    /// Pages the driver flagged written, per report interval (mean).
    pub flagged_pages: f64,
    /// Re-hash candidates per report interval (mean): the pages of the
    /// bounded writes, or every page tracked so far when an execbuffer
    /// of the interval is unbounded.
    pub candidate_pages: f64,
    /// Report intervals.
    pub intervals: u64,
    /// Flagged buffers of bounded execbuffers the writes do not touch.
    pub missed_bos: u64,
    /// Commands gmig's parser and Mesa's description disagree on.
    pub parser_mismatches: u64,
    /// Commands walked.
    pub commands: u64,
    /// 3DPRIMITIVEs walked.
    pub draws: u64,
    /// GPGPU_WALKERs walked.
    pub dispatches: u64,
}

impl Summary {
    /// The summary line of the analysis's output.
    pub fn json(&self) -> String {
        format!(
            "{{\"summary\": {{\"execbuffers\": {}, \"bounded\": {}, \"bounded_gvt\": {}, \"tracked_pages\": {}, \"flagged_pages\": {:.1}, \"candidate_pages\": {:.1}, \"intervals\": {}, \"missed_bos\": {}, \"parser_mismatches\": {}, \"commands\": {}, \"draws\": {}, \"dispatches\": {}}}}}",
            self.execbuffers,
            self.bounded,
            self.bounded_gvt,
            self.tracked_pages,
            self.flagged_pages,
            self.candidate_pages,
            self.intervals,
            self.missed_bos,
            self.parser_mismatches,
            self.commands,
            self.draws,
            self.dispatches
        )
    }
}

/// A capture the analysis cannot go on with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureError(pub String);

/// GPU memory as the AUB has it.
pub type Mem = AubMem<Store, Store>;

/// One execbuffer as the capture submitted it, and what the analysis says
/// of it.
pub struct Submitted<'a> {
    /// Its index, in the log as in the AUB.
    pub n: usize,
    /// The log's record of it.
    pub exec: &'a Exec,
    /// The engine the AUB submitted it to.
    pub engine: Engine,
    /// The physical address of its context's PML4.
    pub pml4: u64,
    /// The analysis's verdict, its writes merged.
    pub verdict: Verdict,
    /// GPU memory as the AUB has it at the submission.
    pub mem: &'a Mem,
}

/// Walks a capture: the AUB's bytes, the execbuffer log, Mesa's table;
/// `cap` is the physical pages the rebuilt memory may hold. Each
/// submission, matched with the log's execbuffer and analyzed, goes to
/// `each`, which may stop the walk.
pub fn walk(
    aub: &[u8],
    execs: &[Exec],
    table: &Table,
    cap: usize,
    mut each: impl FnMut(Submitted<'_>) -> ControlFlow<()>,
) -> Result<(), CaptureError> {
    let mut mem = AubMem::new(Store::new(cap), Store::new(cap));
    let mut el = Execlists::default();
    let mut n = 0usize;
    let mut states: HashMap<(u32, u64), PipeState> = HashMap::new();
    for r in Packets::new(aub) {
        let (off, p) = r.map_err(|e| CaptureError(format!("AUB: {e}")))?;
        mem.apply(off, &p)
            .map_err(|e| CaptureError(format!("AUB: {e}")))?;
        let Packet::RegWrite { reg, value } = p else {
            continue;
        };
        let Some(sub) = el.reg_write(reg, value) else {
            continue;
        };
        let Some(exec) = execs.get(n) else {
            // The program died between the dump tool's write and the
            // log's: the capture ends at the last whole execbuffer.
            eprintln!(
                "gmig-trace: AUB submission {n} has no execbuffer in the log: stopping there"
            );
            break;
        };
        let ctx =
            context_of(&mem, &sub).map_err(|e| CaptureError(format!("submission {n}: {e:?}")))?;
        // Each logical context starts as i915 creates one.
        let state = states
            .entry(exec.logical_context())
            .or_insert_with(PipeState::fresh);
        let mut w = Walk {
            mem: &mem,
            state,
            table,
            engine: match sub.engine {
                Engine::Render => "render",
                Engine::Blitter => "blitter",
                _ => "video",
            },
            pml4: ctx.pml4,
            bos: &exec.bos,
            v: Verdict {
                bounded: true,
                bounded_gvt: true,
                ..Verdict::default()
            },
            batches: 0,
        };
        // The ring: what the dump tool wrote between head and tail.
        let (head, tail) = (u64::from(ctx.ring_head), u64::from(ctx.ring_tail));
        if tail < head || tail - head > 1 << 20 {
            return Err(CaptureError(format!(
                "submission {n}: ring head {head:#x} tail {tail:#x}"
            )));
        }
        let mut ring = vec![0u8; (tail - head) as usize];
        mem.read_ggtt(ctx.ring_start + head, &mut ring)
            .ok_or_else(|| CaptureError(format!("submission {n}: ring not mapped")))?;
        let words: Vec<u32> = ring
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        // The batch the ring starts must be the log's.
        let first = Command::decode(&words, 0, Mode::PPGTT).ok();
        let target = first.and_then(|c| c.addrs().first().and_then(|a| a.read(&words)));
        if target != exec.batch_addr() {
            return Err(CaptureError(format!(
                "submission {n}: the ring starts {target:x?}, the log's execbuffer {n} has its batch at {:x?}",
                exec.batch_addr()
            )));
        }
        w.walk_words(&words, Space::Ggtt, ctx.ring_start + head, Level::Ring, 0);
        let mut verdict = w.v;
        verdict.writes = merge(verdict.writes);
        let s = Submitted {
            n,
            exec,
            engine: sub.engine,
            pml4: ctx.pml4,
            verdict,
            mem: &mem,
        };
        n += 1;
        if each(s).is_break() {
            return Ok(());
        }
    }
    if n != execs.len() {
        eprintln!(
            "gmig-trace: the log has {} execbuffers, the AUB {n} submissions",
            execs.len()
        );
    }
    Ok(())
}

/// Analyzes a capture ([`walk`]'s arguments). Each execbuffer's line goes
/// to `line` as it is done; `interval` is the execbuffers per report
/// interval.
pub fn analyze(
    aub: &[u8],
    execs: &[Exec],
    table: &Table,
    interval: usize,
    cap: usize,
    mut line: impl FnMut(&str),
) -> Result<Summary, CaptureError> {
    let mut sum = Summary::default();
    let mut tracked: BTreeSet<u64> = BTreeSet::new();
    let (mut cand, mut flag) = (BTreeSet::new(), BTreeSet::new());
    let (mut iv_unbounded, mut iv_n) = (false, 0usize);
    let (mut cand_total, mut flag_total) = (0u64, 0u64);
    let mut reasons: HashMap<String, u64> = HashMap::new();
    walk(aub, execs, table, cap, |s| {
        let (n, exec, v) = (s.n, s.exec, &s.verdict);
        // Figures.
        for b in &exec.bos {
            let (s, e) = b.range();
            tracked.extend(pages(s, e));
            if b.written() {
                flag.extend(pages(s, e));
                if v.bounded && !touches(&v.writes, s, e) {
                    sum.missed_bos += 1;
                    eprintln!("exec {n}: missed buffer {} at {s:#x}..{e:#x}", b.handle);
                }
            }
        }
        if v.bounded {
            for &(s, e) in &v.writes {
                cand.extend(pages(s, e));
            }
        } else {
            iv_unbounded = true;
        }
        iv_n += 1;
        if iv_n == interval {
            cand_total += if iv_unbounded {
                tracked.len() as u64
            } else {
                cand.len() as u64
            };
            flag_total += flag.len() as u64;
            sum.intervals += 1;
            cand.clear();
            flag.clear();
            iv_unbounded = false;
            iv_n = 0;
        }
        sum.execbuffers += 1;
        sum.bounded += u64::from(v.bounded);
        sum.bounded_gvt += u64::from(v.bounded_gvt);
        sum.commands += v.commands;
        sum.draws += v.draws;
        sum.dispatches += v.dispatches;
        sum.parser_mismatches += v.mismatches.len() as u64;
        if !v.bounded {
            let why = v
                .notes
                .first()
                .map_or("an unbounded command", String::as_str);
            *reasons.entry(why.to_string()).or_insert(0u64) += 1;
        }
        for m in v.mismatches.iter().take(4) {
            eprintln!("exec {n}: parser mismatch: {m}");
        }
        let mut s = format!("{{\"exec\": {n}, \"bounded\": {}, \"writes\": [", v.bounded);
        for (i, (a, b)) in v.writes.iter().enumerate() {
            let _ = write!(s, "{}[{a}, {b}]", if i == 0 { "" } else { ", " });
        }
        s.push_str("]}");
        line(&s);
        ControlFlow::Continue(())
    })?;
    if iv_n != 0 {
        cand_total += if iv_unbounded {
            tracked.len() as u64
        } else {
            cand.len() as u64
        };
        flag_total += flag.len() as u64;
        sum.intervals += 1;
    }
    let mut reasons: Vec<_> = reasons.into_iter().collect();
    reasons.sort_by_key(|r| std::cmp::Reverse(r.1));
    for (why, n) in reasons {
        eprintln!("unbounded: {n} execbuffers: {why}");
    }
    sum.tracked_pages = tracked.len() as u64;
    if sum.intervals != 0 {
        sum.candidate_pages = cand_total as f64 / sum.intervals as f64;
        sum.flagged_pages = flag_total as f64 / sum.intervals as f64;
    }
    Ok(sum)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::execlog;
    use gmig_core::testutil::aub::{one_exec, FIRST_BO};

    pub(crate) const TABLE: &str = "MI_BATCH_BUFFER_START\tff800000\t18800000\tv:0:7:2\t1:2:63:Batch Buffer Start Address\tall\n\
MI_BATCH_BUFFER_END\tff800000\t05000000\t1\t-\tall\n\
MI_NOOP\tff800000\t00000000\t1\t-\tall\n\
PIPE_CONTROL\tffff0000\t7a000000\tv:0:7:2\t2:2:47:Address\trender\n\
3DPRIMITIVE\tffff0000\t7b000000\tv:0:7:2\t-\trender\n";

    pub(crate) const BBE: u32 = 0x0500_0000;

    pub(crate) fn pipe_control_write(addr: u64) -> [u32; 6] {
        [0x7a00_0004, 0x4000, addr as u32, (addr >> 32) as u32, 1, 0]
    }

    /// What the analysis says of one execbuffer whose batch (at
    /// FIRST_BO) is `batch`, with the execbuffer log `log`.
    fn run(batch: &[u32], log: &str, table: &str) -> Result<(Summary, Vec<String>), CaptureError> {
        let bytes: Vec<u8> = batch.iter().flat_map(|d| d.to_le_bytes()).collect();
        let mut buf = vec![0u8; 1 << 20];
        let (len, _) = one_exec(&mut buf, Engine::Render, &bytes, false).unwrap();
        let (execs, cut) = execlog::parse(log).unwrap();
        assert!(!cut);
        let table = Table::parse(table).unwrap();
        let mut lines = Vec::new();
        let s = analyze(&buf[..len], &execs, &table, 1, 4096, |l| {
            lines.push(l.to_string())
        })?;
        Ok((s, lines))
    }

    fn log(bos: &[(u64, u64, bool)]) -> String {
        let mut s = format!(
            "E 0 1 0x40000 0 0 0 {}\nB 1 {FIRST_BO:#x} 4096 0x18\n",
            bos.len() + 1
        );
        for (i, &(addr, size, w)) in bos.iter().enumerate() {
            s += &format!(
                "B {} {addr:#x} {size} {}\n",
                i + 2,
                if w { "0x1c" } else { "0x18" }
            );
        }
        s
    }

    /// A PIPE_CONTROL writing 8 bytes into the buffer at 0x3000 (flagged
    /// written), beside a buffer at 0x5000 flagged as `second_flagged`.
    fn one_write(second_flagged: bool) -> (Summary, Vec<String>) {
        let mut b = pipe_control_write(0x3010).to_vec();
        b.push(BBE);
        let bos = [(0x3000, 4096, true), (0x5000, 8192, second_flagged)];
        run(&b, &log(&bos), TABLE).unwrap()
    }

    #[test]
    fn a_bounded_execbuffer_touches_what_it_writes() {
        let (s, lines) = one_write(false);
        assert_eq!(
            lines,
            ["{\"exec\": 0, \"bounded\": true, \"writes\": [[12304, 12312]]}"]
        );
        assert_eq!(
            (s.execbuffers, s.bounded, s.bounded_gvt, s.missed_bos),
            (1, 1, 1, 0)
        );
        // The ring's batch start and MI_NOOP, the PIPE_CONTROL, the batch end.
        assert_eq!(
            (s.parser_mismatches, s.commands, s.tracked_pages),
            (0, 4, 4)
        );
        assert_eq!((s.flagged_pages, s.candidate_pages), (1.0, 1.0));
    }

    #[test]
    fn a_flagged_buffer_the_writes_miss_is_counted() {
        let (s, _) = one_write(true);
        assert_eq!((s.bounded, s.missed_bos), (1, 1));
    }

    #[test]
    fn draws_and_unknown_commands_are_unbounded() {
        // A 3DPRIMITIVE: unbounded, every tracked page a candidate, and
        // an untouched flagged buffer is not a miss.
        let b = [0x7b00_0005, 0, 3, 0, 1, 0, 0, BBE];
        let (s, lines) = run(&b, &log(&[(0x5000, 8192, true)]), TABLE).unwrap();
        assert_eq!((s.bounded, s.missed_bos, s.candidate_pages), (0, 0, 3.0));
        assert_eq!((s.draws, s.dispatches), (1, 0));
        assert!(lines[0].contains("\"bounded\": false"));
        // A command neither parser knows: unbounded, not a mismatch.
        let b = [0x7c7f_0000, BBE];
        let (s, _) = run(&b, &log(&[]), TABLE).unwrap();
        assert_eq!((s.bounded, s.parser_mismatches), (0, 0));
        // Mesa knows it, gmig's parser does not: a mismatch, unbounded.
        let t = format!("{TABLE}X\tffff0000\t7c7f0000\t1\t-\tall\n");
        let (s, _) = run(&b, &log(&[]), &t).unwrap();
        assert_eq!((s.bounded, s.parser_mismatches), (0, 1));
        // A batch without its end: unbounded.
        let (s, _) = run(
            &pipe_control_write(0x3000),
            &log(&[(0x3000, 4096, true)]),
            TABLE,
        )
        .unwrap();
        assert_eq!(s.bounded, 0);
    }

    #[test]
    fn mesa_disagreeing_is_a_mismatch() {
        let mut b = pipe_control_write(0x3010).to_vec();
        b.push(BBE);
        let t = TABLE.replace("v:0:7:2\t2:2:47", "v:0:7:3\t2:2:47");
        let (s, _) = run(&b, &log(&[(0x3000, 4096, true)]), &t).unwrap();
        assert_eq!(s.parser_mismatches, 1);
        let t = TABLE.replace("2:2:47:Address", "2:5:47:Address");
        let (s, _) = run(&b, &log(&[(0x3000, 4096, true)]), &t).unwrap();
        assert_eq!(s.parser_mismatches, 1);
    }

    #[test]
    fn a_capture_out_of_step_or_cut_short_is_an_error() {
        let b = [BBE];
        let wrong = "E 0 1 0x40000 0 64 0 1\nB 1 0x1000 4096 0x18\n";
        assert!(run(&b, wrong, TABLE)
            .unwrap_err()
            .0
            .contains("the ring starts"));
        let bytes: Vec<u8> = b.iter().flat_map(|d| d.to_le_bytes()).collect();
        let mut buf = vec![0u8; 1 << 20];
        let (len, _) = one_exec(&mut buf, Engine::Render, &bytes, false).unwrap();
        let (execs, _) = execlog::parse(&log(&[])).unwrap();
        let table = Table::parse(TABLE).unwrap();
        for cut in [len - 1, len - 30, len / 2, 7] {
            let r = analyze(&buf[..cut], &execs, &table, 1, 4096, |_| {});
            assert!(r.is_err_and(|e| e.0.starts_with("AUB: ")), "cut at {cut}");
        }
        // More execbuffers in the log than submissions: the figures of
        // what was submitted.
        let two = format!("{}E 1 1 0x40000 0 0 0 1\nB 1 0x1000 4096 0x18\n", log(&[]));
        let (execs, _) = execlog::parse(&two).unwrap();
        let s = analyze(&buf[..len], &execs, &table, 1, 4096, |_| {}).unwrap();
        assert_eq!(s.execbuffers, 1);
    }
}

// SPDX-License-Identifier: GPL-2.0

//! `gmig-trace pack`: a capture packed as a replay file
//! (`gmig_core::replay`) for the sim vGPU to run as its guest workload.
//!
//! Only the render engine's execbuffers are packed, one replay context per
//! logical context (GEM context and engine). The map table holds every
//! page of every buffer of the packed execbuffers. Before each EXEC come
//! PAGE records of the mapped pages whose contents, as the AUB has them at
//! that submission (through the submission's PPGTT), differ from what the
//! AUB had there before (all zero at first): what the driver wrote with
//! the CPU since. The stub device runs nothing, so the AUB holds only
//! the CPU's writes; the model GPU's writes of earlier EXECs
//! ([`gmig_core::replay::model_stamp`]) stay in guest memory, as a GPU's writes would,
//! and are rewritten only where the driver writes the page again. (PAGE
//! records that undid every stamp made the stand-in driver rewrite, and
//! record in the write set, nearly every page the model had written,
//! before the next submission: 17272 of glmark2-desktop's 18957.) A page
//! the AUB cannot read at a submission gets no record there.
//!
//! What the model GPU writes when an EXEC completes: for each buffer the
//! driver flagged written (EXEC_OBJECT_WRITE), the pages of the buffer
//! that the analysis's bounded writes touch, or every page of the buffer
//! when the execbuffer is unbounded or its writes miss the buffer.
//! Mesa's flag is per buffer, and iris's buffers come from 2 MiB buckets
//! larger than the surfaces drawn into them: writing every page of each
//! flagged buffer would model writes past a surface's edge that the
//! hardware does not make (glmark2-desktop's execbuffer 2, buffer 16:
//! 172 of its 512 pages lie outside every surface). So where the analysis
//! touches the buffer the model writes what it bounded there; where it
//! misses a flagged buffer the model writes all of it, so that an analysis
//! that misses a written buffer loses pages in the migration, and the
//! replay test fails.

use crate::analyze::{self, merge, touches, CaptureError, Submitted, Verdict};
use crate::execlog::{Bo, Exec};
use crate::genxml::Table;
use gmig_core::aub::Engine;
use gmig_core::replay::{write::Writer, ADDR_LIMIT, MAX_CONTEXTS, MAX_RANGES, PAGE};
use std::collections::{BTreeSet, HashMap};
use std::ops::ControlFlow;

/// What to pack.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Mapped pages at most.
    pub max_pages: u64,
    /// Execbuffers at most.
    pub max_execs: usize,
    /// Physical pages the rebuilt GPU memory may hold.
    pub cap: usize,
}

/// Figures of a packed file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Packed {
    /// Replay contexts.
    pub contexts: u32,
    /// EXEC records.
    pub execs: u64,
    /// Mapped pages.
    pub mapped_pages: u64,
    /// PAGE records.
    pub page_records: u64,
    /// Pages of the EXECs' model writes, summed.
    pub model_write_pages: u64,
    /// The file.
    pub file: Vec<u8>,
}

impl Packed {
    /// The summary line `gmig-trace pack` prints.
    pub fn line(&self) -> String {
        format!(
            "pack: contexts {} execs {} mapped_pages {} page_records {} model_write_pages {} bytes {}",
            self.contexts,
            self.execs,
            self.mapped_pages,
            self.page_records,
            self.model_write_pages,
            self.file.len()
        )
    }
}

/// The page-aligned range of a buffer's pages, below [`ADDR_LIMIT`].
fn bo_pages(b: &Bo) -> (u64, u64) {
    let (s, e) = b.range();
    let e = e.min(ADDR_LIMIT);
    (s - s % PAGE, e.div_ceil(PAGE) * PAGE)
}

/// What the model GPU writes for an execbuffer with buffers `bos` of
/// which the analysis says `v`: sorted, disjoint, page-aligned ranges
/// (the module's doc says why).
pub fn model_writes(bos: &[Bo], v: &Verdict) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for b in bos.iter().filter(|b| b.written()) {
        let (s, e) = bo_pages(b);
        if s >= e {
            continue;
        }
        let (bs, be) = b.range();
        if !v.bounded || !touches(&v.writes, bs, be) {
            out.push((s, e));
            continue;
        }
        for &(ws, we) in v.writes.iter().filter(|w| w.0 < e && s < w.1) {
            let (ws, we) = (ws.max(s), we.min(e));
            out.push((ws - ws % PAGE, we.div_ceil(PAGE) * PAGE));
        }
    }
    merge(out)
}

/// The execbuffers to pack, chosen from the log and the AUB's engines.
struct Plan {
    /// Replay context of each packed execbuffer, by the log's index.
    ctx: HashMap<usize, u32>,
    /// The last packed execbuffer.
    last: usize,
    contexts: u32,
    /// Mapped pages, sorted.
    pages: Vec<u64>,
}

fn plan(execs: &[Exec], engines: &[Engine], lim: Limits) -> Result<Plan, CaptureError> {
    let mut contexts: HashMap<(u32, u64), u32> = HashMap::new();
    let mut ctx = HashMap::new();
    let mut pages: BTreeSet<u64> = BTreeSet::new();
    let (mut render, mut other, mut last) = (0usize, 0usize, None);
    let mut why_stop = None;
    for (n, (exec, &engine)) in execs.iter().zip(engines).enumerate() {
        if engine != Engine::Render {
            other += 1;
            continue;
        }
        render += 1;
        if why_stop.is_some() {
            continue;
        }
        if ctx.len() >= lim.max_execs {
            why_stop = Some(format!("--execs {}", lim.max_execs));
            continue;
        }
        let mut more = pages.clone();
        for b in &exec.bos {
            let (s, e) = bo_pages(b);
            more.extend((s / PAGE..e / PAGE).map(|p| p * PAGE));
        }
        if more.len() as u64 > lim.max_pages {
            why_stop = Some(format!(
                "execbuffer {n} would map {} pages, beyond --max-pages {}",
                more.len(),
                lim.max_pages
            ));
            continue;
        }
        let next = contexts.len() as u32;
        let c = *contexts.entry(exec.logical_context()).or_insert(next);
        if c >= MAX_CONTEXTS {
            return Err(CaptureError(format!(
                "execbuffer {n}: more than {MAX_CONTEXTS} logical contexts (pack fewer with --execs)"
            )));
        }
        let batch = exec
            .batch_addr()
            .filter(|a| more.contains(&(a - a % PAGE)))
            .ok_or_else(|| CaptureError(format!("execbuffer {n}: its batch is not mapped")))?;
        if batch % 4 != 0 {
            return Err(CaptureError(format!(
                "execbuffer {n}: batch at {batch:#x} not dword aligned"
            )));
        }
        pages = more;
        ctx.insert(n, c);
        last = Some(n);
    }
    if other != 0 {
        eprintln!("gmig-trace: pack: skipped {other} execbuffers on other engines than render");
    }
    let Some(last) = last else {
        return Err(CaptureError(format!(
            "no render execbuffer to pack ({render} of {} on render)",
            engines.len()
        )));
    };
    eprintln!(
        "gmig-trace: pack: kept {} of {render} render execbuffers (the log's 0..={last}), {} mapped pages{}",
        ctx.len(),
        pages.len(),
        why_stop.map_or(String::new(), |w| format!("; stopped at {w}"))
    );
    Ok(Plan {
        ctx,
        last,
        contexts: contexts.len() as u32,
        pages: pages.into_iter().collect(),
    })
}

/// Maps sorted page addresses to `(address, pages)` runs.
fn runs(pages: &[u64]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &p in pages {
        match out.last_mut() {
            Some(r) if r.0 + r.1 * PAGE == p => r.1 += 1,
            _ => out.push((p, 1)),
        }
    }
    out
}

/// The pages as the AUB had them at the last submission that could read
/// them: the pages not all zero.
#[derive(Default)]
struct Shadow(HashMap<u64, Box<[u8; PAGE as usize]>>);

impl Shadow {
    const ZERO: [u8; PAGE as usize] = [0; PAGE as usize];

    fn get(&self, addr: u64) -> &[u8; PAGE as usize] {
        self.0.get(&addr).map_or(&Self::ZERO, |p| p)
    }

    fn set(&mut self, addr: u64, data: &[u8; PAGE as usize]) {
        if data == &Self::ZERO {
            self.0.remove(&addr);
        } else {
            self.0.insert(addr, Box::new(*data));
        }
    }
}

/// Packs a capture ([`analyze::walk`]'s arguments) within `lim`.
pub fn pack(
    aub: &[u8],
    execs: &[Exec],
    table: &Table,
    lim: Limits,
) -> Result<Packed, CaptureError> {
    // The engines first: the map table depends on which execbuffers are
    // packed, the PAGE records before the first EXEC on the map table.
    let mut engines = Vec::new();
    analyze::walk(aub, execs, table, lim.cap, |s| {
        engines.push(s.engine);
        ControlFlow::Continue(())
    })?;
    let plan = plan(execs, &engines, lim)?;
    let mut w = Writer::new(plan.contexts, &runs(&plan.pages));
    let mut out = Packed {
        contexts: plan.contexts,
        mapped_pages: plan.pages.len() as u64,
        ..Packed::default()
    };
    let mut shadow = Shadow::default();
    let mut page = [0u8; PAGE as usize];
    let mut err = None;
    // The replay has one address space: say if the capture had more.
    let mut pml4s = BTreeSet::new();
    analyze::walk(aub, execs, table, lim.cap, |s: Submitted<'_>| {
        let Some(&ctx) = plan.ctx.get(&s.n) else {
            return ControlFlow::Continue(());
        };
        pml4s.insert(s.pml4);
        for &addr in &plan.pages {
            if s.mem.read_ppgtt(s.pml4, addr, &mut page).is_none() || shadow.get(addr) == &page {
                continue;
            }
            w.page(addr, &page);
            shadow.set(addr, &page);
            out.page_records += 1;
        }
        let writes = model_writes(&s.exec.bos, &s.verdict);
        if writes.len() > MAX_RANGES as usize {
            err = Some(CaptureError(format!(
                "execbuffer {}: {} write ranges, beyond {MAX_RANGES}",
                s.n,
                writes.len()
            )));
            return ControlFlow::Break(());
        }
        // plan() checked the batch is mapped.
        let batch = s.exec.batch_addr().unwrap_or_default();
        w.exec(ctx, batch, &writes);
        for &(a, e) in &writes {
            out.model_write_pages += (e - a) / PAGE;
        }
        out.execs += 1;
        if s.n == plan.last {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })?;
    if let Some(e) = err {
        return Err(e);
    }
    if out.execs != plan.ctx.len() as u64 {
        return Err(CaptureError(format!(
            "the AUB ended after {} of {} execbuffers",
            out.execs,
            plan.ctx.len()
        )));
    }
    if pml4s.len() > 1 {
        eprintln!(
            "gmig-trace: pack: the packed execbuffers ran on {} PPGTTs; the replay maps one",
            pml4s.len()
        );
    }
    out.file = w.finish();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::tests::{pipe_control_write, BBE, TABLE};
    use crate::execlog;
    use gmig_core::replay::{Record, Replay};
    use gmig_core::testutil::aub::{Writer as AubWriter, SKL_GT2};

    const A: u64 = 0x10000;
    const W: u64 = 0x20000;
    const U: u64 = 0x30000;
    const W2: u64 = 0x40000;

    fn bytes(words: &[u32]) -> Vec<u8> {
        words.iter().flat_map(|d| d.to_le_bytes()).collect()
    }

    /// Four execbuffers: render 0 (context 1) writes into W, flagged;
    /// blitter 1; render 2 (context 2) writes into U, unflagged, and
    /// flags W2; render 3 (context 1) draws (unbounded) and flags W.
    /// Buffer A changes its first page before execbuffer 2; the AUB holds
    /// W and W2 as zeros.
    fn capture() -> (Vec<u8>, Vec<Exec>) {
        let mut buf = vec![0u8; 1 << 20];
        let mut w = AubWriter::new(&mut buf, SKL_GT2, "gmig", true);
        w.default_setup();
        for (va, size) in [(0x1000, 0x4000), (A, 0x2000), (W, 0x4000), (U, 0x1000)] {
            assert!(w.map_ppgtt(va, size));
        }
        assert!(w.map_ppgtt(W2, 0x2000));
        let mut b0 = pipe_control_write(W + 0x1010).to_vec();
        b0.push(BBE);
        assert!(w.trace_block(0x1000, &bytes(&b0)));
        assert!(w.trace_block(A, &[1; 4096]));
        assert!(w.trace_block(A + 0x1000, &[3; 4096]));
        assert!(w.trace_block(W, &[0; 0x4000]));
        w.exec(Engine::Render, 0x1000).unwrap();
        assert!(w.trace_block(0x4000, &bytes(&[BBE])));
        w.exec(Engine::Blitter, 0x4000).unwrap();
        let mut b2 = pipe_control_write(U + 8).to_vec();
        b2.push(BBE);
        assert!(w.trace_block(0x2000, &bytes(&b2)));
        assert!(w.trace_block(A, &[2; 4096]));
        assert!(w.trace_block(U, &[0; 4096]));
        assert!(w.trace_block(W2, &[0; 0x2000]));
        w.exec(Engine::Render, 0x2000).unwrap();
        assert!(w.trace_block(0x3000, &bytes(&[0x7b00_0005, 0, 3, 0, 1, 0, 0, BBE])));
        w.exec(Engine::Render, 0x3000).unwrap();
        let len = w.finish().unwrap();
        buf.truncate(len);
        let log = format!(
            "E 0 1 0 0 0 0 3\nB 1 0x1000 4096 0x18\nB 2 {A:#x} 8192 0x18\nB 3 {W:#x} 16384 0x1c\n\
             E 1 1 3 0 0 0 1\nB 4 0x4000 4096 0x18\n\
             E 2 2 0 0 0 0 4\nB 5 0x2000 4096 0x18\nB 2 {A:#x} 8192 0x18\nB 6 {U:#x} 4096 0x18\nB 7 {W2:#x} 8192 0x1c\n\
             E 3 1 0 0 0 0 2\nB 8 0x3000 4096 0x18\nB 3 {W:#x} 16384 0x1c\n"
        );
        let (execs, cut) = execlog::parse(&log).unwrap();
        assert!(!cut);
        (buf, execs)
    }

    const ALL: Limits = Limits {
        max_pages: u64::MAX,
        max_execs: usize::MAX,
        cap: 4096,
    };

    fn packed(lim: Limits) -> Result<Packed, CaptureError> {
        let (aub, execs) = capture();
        pack(&aub, &execs, &Table::parse(TABLE).unwrap(), lim)
    }

    /// The records: PAGE (address, first byte) and EXEC (context, batch,
    /// writes).
    #[derive(Debug, PartialEq, Eq)]
    enum Rec {
        Page(u64, u8),
        Exec(u32, u64, Vec<(u64, u64)>),
    }

    fn records(file: &[u8]) -> Vec<Rec> {
        let r = Replay::parse(file).unwrap();
        r.validate().unwrap();
        let mut out = Vec::new();
        let mut off = r.first_record();
        while let Some(rec) = r.record_at(off) {
            let (rec, next) = rec.unwrap();
            out.push(match rec {
                Record::Page { addr, data, .. } => Rec::Page(addr, data[0]),
                Record::Exec(e) => Rec::Exec(e.ctx, e.batch, e.writes().collect()),
            });
            off = next;
        }
        out
    }

    #[test]
    fn the_map_table_covers_the_render_execbuffers_buffers() {
        let p = packed(ALL).unwrap();
        let r = Replay::parse(&p.file).unwrap();
        // The blitter's batch at 0x4000 is not mapped.
        assert_eq!(
            r.maps().collect::<Vec<_>>(),
            [(0x1000, 3), (A, 2), (W, 4), (U, 1), (W2, 2)]
        );
        assert_eq!((r.contexts(), r.execs(), r.mapped_pages()), (2, 3, 12));
        assert_eq!((p.contexts, p.execs, p.mapped_pages), (2, 3, 12));
    }

    #[test]
    fn pages_are_recorded_when_the_driver_changes_them() {
        let p = packed(ALL).unwrap();
        let recs = records(&p.file);
        let pages: Vec<_> = recs
            .iter()
            .map(|r| match r {
                Rec::Page(a, b) => Some((*a, *b)),
                Rec::Exec(..) => None,
            })
            .collect();
        // The PIPE_CONTROL's header byte starts batches 0 and 2, the
        // 3DPRIMITIVE's batch 3.
        let (pc, prim) = (0x04, 0x05);
        assert_eq!(
            pages,
            [
                // Zero pages (W) need no record; unwritten ones (W2, U,
                // the later batches) cannot be read.
                Some((0x1000, pc)),
                Some((A, 1)),
                Some((A + 0x1000, 3)),
                None,
                // A's first page changed, its second did not; what the
                // model wrote into W and W2 stays.
                Some((0x2000, pc)),
                Some((A, 2)),
                None,
                Some((0x3000, prim)),
                None,
            ]
        );
        assert_eq!(p.page_records, 6);
    }

    #[test]
    fn model_writes_are_the_bounded_writes_or_the_whole_flagged_buffer() {
        let p = packed(ALL).unwrap();
        let execs: Vec<_> = records(&p.file)
            .into_iter()
            .filter(|r| matches!(r, Rec::Exec(..)))
            .collect();
        assert_eq!(
            execs,
            [
                // Bounded, touching W: the page the PIPE_CONTROL writes.
                Rec::Exec(0, 0x1000, vec![(W + 0x1000, W + 0x2000)]),
                // Bounded, missing the flagged W2: all of it (not U,
                // which is not flagged).
                Rec::Exec(1, 0x2000, vec![(W2, W2 + 0x2000)]),
                // Unbounded: all of W.
                Rec::Exec(0, 0x3000, vec![(W, W + 0x4000)]),
            ]
        );
        assert_eq!(p.model_write_pages, 1 + 2 + 4);
    }

    #[test]
    fn a_page_or_execbuffer_limit_keeps_a_prefix() {
        // Execbuffer 0 maps 7 pages, 2 adds 4, 3 one more.
        let lim = |max_pages, max_execs| Limits {
            max_pages,
            max_execs,
            cap: 4096,
        };
        for (pages, execs, want) in [(7, 9, 1), (10, 9, 1), (11, 9, 2), (12, 9, 3), (99, 2, 2)] {
            let p = packed(lim(pages, execs)).unwrap();
            assert_eq!(p.execs, want, "--max-pages {pages} --execs {execs}");
            assert!(p.mapped_pages <= pages);
            let r = Replay::parse(&p.file).unwrap();
            r.validate().unwrap();
            assert_eq!(u64::from(r.execs()), want);
        }
        assert!(packed(lim(6, 9)).is_err(), "nothing fits");
    }

    #[test]
    fn more_contexts_than_a_replay_has_are_refused() {
        let one = |i: u64, ctx: u64| format!("E {i} {ctx} 0 0 0 0 1\nB 1 0x1000 4096 0x18\n");
        let log: String = (0..=u64::from(MAX_CONTEXTS))
            .map(|i| one(i, i + 1))
            .collect();
        let (execs, _) = execlog::parse(&log).unwrap();
        let engines = vec![Engine::Render; execs.len()];
        let e = plan(&execs, &engines, ALL).err().unwrap();
        assert!(e.0.contains("logical contexts"), "{}", e.0);
        // As many as a replay has, or the rest on another engine: packed.
        assert!(plan(&execs[1..], &engines[1..], ALL).is_ok());
        let mut engines = engines;
        engines[3] = Engine::Blitter;
        assert!(plan(&execs, &engines, ALL).is_ok());
    }
}

// SPDX-License-Identifier: GPL-2.0

//! `gmig-trace pack`: a capture packed as a replay file
//! (`gmig_core::replay`) for the sim vGPU to run as its guest workload.
//!
//! Only the render engine's execbuffers are packed, one replay context per
//! logical context (GEM context and engine). The map table holds every
//! page of every buffer of the packed execbuffers. Before each EXEC come
//! PAGE records of the mapped pages whose contents, as the AUB has them at
//! that submission (through the submission's PPGTT), differ from what the
//! replay's guest memory holds there: a shadow of it is kept, all zero at
//! first and changed by every PAGE record and by the model GPU's writes
//! of the EXECs before ([`replay::model_stamp`]). A page the AUB cannot
//! read at a submission gets no record there.
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
use gmig_core::replay::{self, write::Writer, ADDR_LIMIT, MAX_CONTEXTS, MAX_RANGES, PAGE};
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

/// The replay's guest memory as the file has it so far: the pages not
/// all zero.
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

    fn stamp(&mut self, exec: u64, addr: u64) {
        let s = replay::model_stamp(exec, addr);
        self.0.entry(addr).or_insert_with(|| Box::new(Self::ZERO))[..s.len()].copy_from_slice(&s);
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
    analyze::walk(aub, execs, table, lim.cap, |s: Submitted<'_>| {
        let Some(&ctx) = plan.ctx.get(&s.n) else {
            return ControlFlow::Continue(());
        };
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
            for p in (a..e).step_by(PAGE as usize) {
                shadow.stamp(out.execs, p);
                out.model_write_pages += 1;
            }
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
    out.file = w.finish();
    Ok(out)
}

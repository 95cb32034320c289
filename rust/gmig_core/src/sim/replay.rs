// SPDX-License-Identifier: GPL-2.0

//! The replay workload: a captured Mesa workload run again as the guest
//! driver of a sim vGPU ([`super::super::replay`] has the file format).
//!
//! Like the synthetic workload ([`super::workload`]) it stands in for a
//! guest driver on a vGPU whose guest has none, and writes guest memory in
//! a window (`base=`, `size=`) through the VFIO DMA path:
//!
//! | window pages | what |
//! | --- | --- |
//! | `0 .. C` | one gmig-sim context image per replay context, mapped at the top of the GGTT partition |
//! | `C .. 2C` | one 4 KiB ring per context, mapped after them |
//! | then | the PPGTT shared by all contexts: PML4, PDPs, PDs, PTs |
//! | then | the replay's mapped pages, in mapping order |
//!
//! Each tick writes the next PAGE records (a bounded number per tick) and,
//! at an EXEC, puts `MI_BATCH_BUFFER_START` (PPGTT) to the execbuffer's
//! batch in its context's ring and submits the context through the ELSP.
//! One execbuffer is in flight at a time. When the command streamer has
//! run it, [`ReplayRun::executed`] writes the model GPU's part: a
//! [`model_stamp`] at the start of every page of the EXEC's write ranges
//! (numbered by execbuffers run, so that every run of the file writes new
//! data), through plain guest memory, unseen by any write set. The
//! analysis under test sees only the commands and memory, as on real
//! hardware; a page it fails to name is lost in a migration, which the
//! end-to-end test's window comparison catches. The replay's witness
//! ([`ReplayRun::witness`]) also sees what the streamer names for each
//! execbuffer, so that every model write the analysis did not name is
//! counted ([`ReplayStats::unnamed`]), whether a migration happens to fall
//! between the two or not. At the end of the file the replay starts
//! again with fresh contexts.

use super::super::gtt::{Pte, PAGE_SIZE};
use super::super::mem::{GuestMem, MemFault};
use super::super::replay::{model_stamp, Record, Replay, ReplayError, MAX_CONTEXTS, PAGE};
use super::super::writeset::{words_for, WriteSet};
use super::exec::CtxSlot;
use super::exec::{LRC_FRESH, LRC_MAGIC};
use super::regs::ContextDescriptor;
use super::vgpu::{Event, SimVgpu};
use super::workload::{map_top, put_le32};

/// Ring bytes per context.
const RING_SIZE: u64 = PAGE_SIZE;
/// PAGE records written per tick at most (4 KiB each).
pub const PAGES_PER_TICK: usize = 256;
/// Context ids of replay contexts are this plus the index.
const CTX_ID_BASE: u64 = 0xfe00;
/// MI_BATCH_BUFFER_START, Gen8 length, PPGTT.
const BB_START_PPGTT: u32 = (0x31 << 23) | (1 << 8) | 1;

/// Why a replay could not start or go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayRunError {
    /// The file is invalid.
    File(ReplayError),
    /// The window is unaligned, too small for the replay's pages and page
    /// tables, or the partition too small for its contexts and rings.
    BadWindow,
    /// Guest memory of the window is not reachable.
    GuestMemory(MemFault),
    /// The submission queue is full.
    Busy,
}

impl From<MemFault> for ReplayRunError {
    fn from(m: MemFault) -> Self {
        Self::GuestMemory(m)
    }
}

impl From<ReplayError> for ReplayRunError {
    fn from(e: ReplayError) -> Self {
        Self::File(e)
    }
}

/// What a tick did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    /// An execbuffer is in flight: nothing to do.
    Waiting,
    /// Pages written, no submission yet.
    Wrote,
    /// An execbuffer was submitted.
    Submitted,
}

/// Figures of a running replay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Execbuffers submitted.
    pub submitted: u64,
    /// Execbuffers the streamer ran (their model writes done).
    pub executed: u64,
    /// Times the file was run to its end.
    pub loops: u64,
    /// PAGE records written.
    pub pages_written: u64,
    /// Pages the model GPU wrote.
    pub model_pages: u64,
    /// Pages the model GPU wrote that the streamer had not named for the
    /// execbuffer (its analysis missed them): 0 unless the analysis is
    /// wrong.
    pub unnamed: u64,
}

/// A running replay. It keeps no reference to the file: each call takes
/// the file again (the caller keeps it, unchanged, while this lives).
pub struct ReplayRun<B> {
    base: u64,
    gbase: u64,
    contexts: u32,
    pml4: u64,
    data: u64,
    /// Offset of the next record, and the number of the next EXEC.
    next: usize,
    exec: u64,
    /// The execbuffer in flight: its descriptor, record offset, number.
    in_flight: Option<(u64, usize, u64)>,
    tails: [u32; MAX_CONTEXTS as usize],
    stats: ReplayStats,
    /// What the streamer named for the execbuffer in flight, over the
    /// data frames.
    named: WriteSet<B>,
}

/// Page tables the replay's PPGTT needs: `(PDPs, PDs, PTs)`.
fn table_counts(r: &Replay<'_>) -> (u64, u64, u64) {
    let mut n = (0u64, 0u64, 0u64);
    let mut last: Option<u64> = None;
    for (a, pages) in r.maps() {
        for p in 0..pages {
            let v = a + p * PAGE;
            let new = |shift: u32| last.is_none_or(|l| l >> shift != v >> shift);
            n.0 += u64::from(new(39));
            n.1 += u64::from(new(30));
            n.2 += u64::from(new(21));
            last = Some(v);
        }
    }
    n
}

/// Writes up to 8 dwords.
fn write_u32s(mem: &mut impl GuestMem, gpa: u64, words: &[u32]) -> Result<(), MemFault> {
    let mut b = [0u8; 32];
    put_le32(&mut b, words);
    mem.write(gpa, b.get(..4 * words.len().min(8)).unwrap_or(&[]))
}

fn zero_page(mem: &mut impl GuestMem, gpa: u64) -> Result<(), MemFault> {
    let z = [0u8; 256];
    for i in 0..PAGE / 256 {
        mem.write(gpa + i * 256, &z)?;
    }
    Ok(())
}

/// Window pages a replay needs: contexts, rings, page tables and its
/// mapped pages.
pub fn window_pages(r: &Replay<'_>) -> u64 {
    let (a, b, c) = table_counts(r);
    2 * u64::from(r.contexts()) + 1 + a + b + c + r.mapped_pages()
}

/// Words of witness storage [`ReplayRun::setup`] needs for `blob`.
pub fn witness_words(blob: &[u8]) -> usize {
    Replay::parse(blob).map_or(0, |r| words_for(r.mapped_pages()))
}

impl<B: core::ops::DerefMut<Target = [u64]>> ReplayRun<B> {
    /// Checks `blob`, maps the contexts and rings at the top of the
    /// partition (through BAR0, as a guest driver writes the GGTT; each
    /// update goes to `on_event`), writes the page tables and the context
    /// images, and tells the vGPU which frames the PPGTT maps. `witness`
    /// holds at least [`witness_words`] words.
    pub fn setup<
        S: core::ops::DerefMut<Target = [u64]>,
        C: core::ops::DerefMut<Target = [CtxSlot]>,
    >(
        base: u64,
        size: u64,
        blob: &[u8],
        witness: B,
        vgpu: &mut SimVgpu<S, C>,
        mem: &mut impl GuestMem,
        on_event: &mut impl FnMut(Event),
    ) -> Result<Self, ReplayRunError> {
        let r = Replay::parse(blob)?;
        r.validate()?;
        let c = u64::from(r.contexts());
        // Before the page tables are counted (a walk over every page).
        if r.mapped_pages() > size / PAGE {
            return Err(ReplayRunError::BadWindow);
        }
        let need = window_pages(&r);
        let p = vgpu.partition();
        if !base.is_multiple_of(PAGE)
            || !size.is_multiple_of(PAGE)
            || need > size / PAGE
            || base.checked_add(size).is_none()
            || p.size < 2 * c * PAGE + (1 << 20)
        {
            return Err(ReplayRunError::BadWindow);
        }
        let gbase = p.base + p.size - 2 * c * PAGE;
        map_top(vgpu, base, 2 * c, on_event).ok_or(ReplayRunError::BadWindow)?;
        // The PPGTT: tables allocated in the order the sorted pages need
        // them, each zeroed before its first entry is written.
        let pml4 = base + 2 * c * PAGE;
        let (a, b, t) = table_counts(&r);
        let data = pml4 + (1 + a + b + t) * PAGE;
        zero_page(mem, pml4)?;
        let mut next_table = pml4 + PAGE;
        let mut alloc = |mem: &mut _| -> Result<u64, MemFault> {
            let at = next_table;
            zero_page(mem, at)?;
            next_table += PAGE;
            Ok(at)
        };
        let entry = |mem: &mut _, table: u64, idx: u64, to: u64| -> Result<(), ReplayRunError> {
            let pte = Pte::new(to, 0).ok_or(ReplayRunError::BadWindow)?.encode();
            GuestMem::write(mem, table + 8 * idx, &pte.to_le_bytes())?;
            Ok(())
        };
        let (mut pdp, mut pd, mut pt) = (0u64, 0u64, 0u64);
        let mut last: Option<u64> = None;
        let mut frame = 0u64;
        for (a, pages) in r.maps() {
            for i in 0..pages {
                let v = a + i * PAGE;
                let new = |shift: u32| last.is_none_or(|l| l >> shift != v >> shift);
                if new(39) {
                    pdp = alloc(mem)?;
                    entry(mem, pml4, (v >> 39) & 511, pdp)?;
                }
                if new(30) {
                    pd = alloc(mem)?;
                    entry(mem, pdp, (v >> 30) & 511, pd)?;
                }
                if new(21) {
                    pt = alloc(mem)?;
                    entry(mem, pd, (v >> 21) & 511, pt)?;
                }
                entry(mem, pt, (v >> 12) & 511, data + frame * PAGE)?;
                last = Some(v);
                frame += 1;
            }
        }
        let named = WriteSet::new(data / PAGE, r.mapped_pages(), witness)
            .ok_or(ReplayRunError::BadWindow)?;
        vgpu.pin_frames(data / PAGE, r.mapped_pages());
        let mut run = Self {
            base,
            gbase,
            contexts: r.contexts(),
            pml4,
            data,
            next: r.first_record(),
            exec: 0,
            in_flight: None,
            tails: [0; MAX_CONTEXTS as usize],
            stats: ReplayStats::default(),
            named,
        };
        run.fresh_contexts(mem)?;
        Ok(run)
    }

    /// Writes every context image as a context never run, its ring empty.
    fn fresh_contexts(&mut self, mem: &mut impl GuestMem) -> Result<(), MemFault> {
        let c = u64::from(self.contexts);
        for i in 0..c {
            let ring = (self.gbase + (c + i) * PAGE) as u32;
            let words = [
                LRC_MAGIC,
                ring,
                RING_SIZE as u32,
                0,
                0,
                self.pml4 as u32,
                (self.pml4 >> 32) as u32,
                LRC_FRESH,
            ];
            write_u32s(mem, self.base + i * PAGE, &words)?;
        }
        self.tails = [0; MAX_CONTEXTS as usize];
        Ok(())
    }

    /// Guest frames of the PPGTT's mapped pages, `(first, count)`.
    pub fn data_frames(&self, blob: &[u8]) -> (u64, u64) {
        let n = Replay::parse(blob).map_or(0, |r| r.mapped_pages());
        (self.data / PAGE, n)
    }

    /// Graphics address of the first context image.
    pub fn gbase(&self) -> u64 {
        self.gbase
    }

    /// Where the streamer's write-set reports go besides the migration
    /// while a replay runs (see [`ReplayRun::executed`]).
    pub fn witness(&mut self) -> &mut WriteSet<B> {
        &mut self.named
    }

    /// Figures so far.
    pub fn stats(&self) -> ReplayStats {
        self.stats
    }

    /// Writes the next PAGE records and, at an EXEC, submits it. The
    /// writes are the guest driver's: the caller records them.
    pub fn tick<
        S: core::ops::DerefMut<Target = [u64]>,
        C: core::ops::DerefMut<Target = [CtxSlot]>,
    >(
        &mut self,
        blob: &[u8],
        vgpu: &mut SimVgpu<S, C>,
        mem: &mut impl GuestMem,
    ) -> Result<Tick, ReplayRunError> {
        if self.in_flight.is_some() {
            return Ok(Tick::Waiting);
        }
        let r = Replay::parse(blob)?;
        let mut pages = 0usize;
        loop {
            let Some(rec) = r.record_at(self.next) else {
                // The end: again, from fresh contexts.
                self.next = r.first_record();
                self.exec = 0;
                self.stats.loops += 1;
                self.fresh_contexts(mem)?;
                return Ok(Tick::Wrote);
            };
            let (rec, after) = rec?;
            match rec {
                Record::Page { frame, data, .. } => {
                    if pages == PAGES_PER_TICK {
                        return Ok(Tick::Wrote);
                    }
                    mem.write(self.data + frame * PAGE, data)?;
                    pages += 1;
                    self.stats.pages_written += 1;
                    self.next = after;
                }
                Record::Exec(e) => {
                    if !vgpu.pending().is_empty() {
                        return Ok(Tick::Wrote);
                    }
                    let i = u64::from(e.ctx);
                    let slot = e.ctx as usize % MAX_CONTEXTS as usize;
                    let tail = self.tails[slot];
                    let ring = self.base + (u64::from(self.contexts) + i) * PAGE;
                    let cmd = [BB_START_PPGTT, e.batch as u32, (e.batch >> 32) as u32, 0];
                    write_u32s(mem, ring + u64::from(tail), &cmd)?;
                    let tail = ((u64::from(tail) + 16) % RING_SIZE) as u32;
                    self.tails[slot] = tail;
                    // Only the tail: the streamer keeps the head and the
                    // context's other fields.
                    write_u32s(mem, self.base + i * PAGE + 16, &[tail])?;
                    let desc = ContextDescriptor(0)
                        .with_lrca_page((self.gbase + i * PAGE) >> 12)
                        .with_ctx_id(CTX_ID_BASE + i)
                        .0;
                    if vgpu.submit(desc) != Event::Submit {
                        return Err(ReplayRunError::Busy);
                    }
                    self.in_flight = Some((desc, self.next, self.exec));
                    self.next = after;
                    self.exec += 1;
                    self.stats.submitted += 1;
                    return Ok(Tick::Submitted);
                }
            }
        }
    }

    /// The streamer ran `desc`: if it is the execbuffer in flight, the
    /// model GPU writes what its record names (through `mem`, which must
    /// not record: these are the writes the analysis has to foresee).
    /// Returns the pages written.
    pub fn executed(
        &mut self,
        desc: u64,
        blob: &[u8],
        mem: &mut impl GuestMem,
    ) -> Result<u64, ReplayRunError> {
        let Some((d, off, _)) = self.in_flight else {
            return Ok(0);
        };
        if d != desc {
            return Ok(0);
        }
        self.in_flight = None;
        // Numbered across loops: every run of the file writes new data.
        let n = self.stats.executed;
        self.stats.executed += 1;
        let r = Replay::parse(blob)?;
        let Some(Ok((Record::Exec(e), _))) = r.record_at(off) else {
            return Err(ReplayRunError::File(ReplayError::BadExec { offset: off }));
        };
        let mut pages = 0u64;
        let named = &mut self.named;
        for (s, end) in e.writes() {
            let mut a = s;
            while a < end {
                let frame = r.frame_of(a).ok_or(ReplayError::BadAddress {
                    offset: off,
                    addr: a,
                })?;
                let gfn = self.data / PAGE + frame;
                if !named.is_unbounded() && !named.contains(gfn) {
                    self.stats.unnamed += 1;
                }
                mem.write(gfn * PAGE, &model_stamp(n, a))?;
                pages += 1;
                a += PAGE;
            }
        }
        named.clear();
        self.stats.model_pages += pages;
        Ok(pages)
    }
}

#[cfg(test)]
mod tests {
    use super::super::exec::tests::VecMem;
    use super::super::vgpu::TYPES;
    use super::*;
    use crate::gtt::Partition;
    use crate::replay::write::Writer;
    use crate::writeset::Tee;
    use std::vec;
    use std::vec::Vec;

    const BASE: u64 = 1 << 20;
    const SIZE: u64 = 1 << 20;

    fn vgpu() -> SimVgpu<Vec<u64>> {
        let ty = &TYPES[0];
        let p = Partition::new(64 << 20, ty.ggtt_size).unwrap();
        SimVgpu::new(ty, p, vec![0; p.entries() as usize]).unwrap()
    }

    /// Two contexts; a batch page at a high address that stores 0xcafe
    /// into a page at a low one; the model writes two pages of a buffer.
    fn blob() -> Vec<u8> {
        let batch = 0xfffe_0000_0000u64;
        let low = 0x1_0000_0000u64;
        let mut w = Writer::new(2, &[(low, 4), (batch, 1)]);
        let mut page = [0u8; 4096];
        let cmds = [
            (0x20 << 23) | 2, // MI_STORE_DATA_IMM, PPGTT
            low as u32 + 8,
            (low >> 32) as u32,
            0xcafe,
            0x0a << 23, // MI_BATCH_BUFFER_END
        ];
        for (i, c) in cmds.iter().enumerate() {
            page[4 * i..4 * i + 4].copy_from_slice(&c.to_le_bytes());
        }
        w.page(batch, &page);
        w.exec(1, batch, &[(low + PAGE, low + 3 * PAGE)]);
        w.exec(0, batch, &[]);
        w.finish()
    }

    fn run_one(
        run: &mut ReplayRun<Vec<u64>>,
        b: &[u8],
        v: &mut SimVgpu<Vec<u64>>,
        mem: &mut VecMem,
        seen: &mut Vec<u64>,
    ) -> u64 {
        while run.tick(b, v, mem).unwrap() != Tick::Submitted {}
        let desc = v.take_submission().unwrap();
        let mut log = |g| seen.push(g);
        v.execute(desc, mem, &mut Tee(&mut log, run.witness()))
            .unwrap();
        run.executed(desc, b, mem).unwrap()
    }

    #[test]
    fn a_replay_runs_through_its_ppgtt_and_the_model_writes_unrecorded() {
        let b = blob();
        let mut v = vgpu();
        let mut mem = VecMem::new(4 << 20);
        let mut run =
            ReplayRun::setup(BASE, SIZE, &b, vec![0u64; 4], &mut v, &mut mem, &mut |_| {}).unwrap();
        let (first, n) = run.data_frames(&b);
        assert_eq!(n, 5);
        assert_eq!(v.pinned_frames(), first..first + 5);
        let mut seen = Vec::new();
        assert_eq!(run_one(&mut run, &b, &mut v, &mut mem, &mut seen), 2);
        // The store landed in frame 0 of the data (mapping order) and was
        // recorded; the model's pages 1 and 2 were written, not recorded.
        let data = first * PAGE;
        let at = |mem: &VecMem, a: u64| mem.bytes[a as usize..a as usize + 16].to_vec();
        assert_eq!(at(&mem, data + 8)[..4], 0xcafeu32.to_le_bytes());
        assert!(
            seen.contains(&first),
            "the store's frame is in the write set"
        );
        assert!(!seen.contains(&(first + 1)) && !seen.contains(&(first + 2)));
        assert_eq!(at(&mem, data + PAGE), model_stamp(0, 0x1_0000_1000));
        assert_eq!(at(&mem, data + 2 * PAGE), model_stamp(0, 0x1_0000_2000));
        assert_eq!(run.stats().model_pages, 2);
        // The batch's store named its page only: the model's two are
        // counted as missed by the analysis.
        assert_eq!(run.stats().unnamed, 2);
        // The second one, on the other context, then the file again.
        assert_eq!(run_one(&mut run, &b, &mut v, &mut mem, &mut seen), 0);
        assert_eq!(run_one(&mut run, &b, &mut v, &mut mem, &mut seen), 2);
        // New data on every run of the file.
        assert_eq!(at(&mem, data + PAGE), model_stamp(2, 0x1_0000_1000));
        let s = run.stats();
        assert_eq!((s.submitted, s.executed, s.loops), (3, 3, 1));
        assert_eq!(v.completed(), 3);
    }

    #[test]
    fn a_window_too_small_or_a_bad_file_is_refused() {
        let b = blob();
        let mut v = vgpu();
        let mut mem = VecMem::new(4 << 20);
        let r = Replay::parse(&b).unwrap();
        // 2 contexts x 2, a PML4, 2 PDPs... (two addresses far apart).
        let need = window_pages(&r);
        assert_eq!(need, 4 + 1 + 2 + 2 + 2 + 5);
        let small = (need - 1) * PAGE;
        assert_eq!(
            ReplayRun::setup(
                BASE,
                small,
                &b,
                vec![0u64; 4],
                &mut v,
                &mut mem,
                &mut |_| {}
            )
            .err(),
            Some(ReplayRunError::BadWindow)
        );
        assert!(ReplayRun::setup(
            BASE,
            need * PAGE,
            &b,
            vec![0u64; 4],
            &mut v,
            &mut mem,
            &mut |_| {}
        )
        .is_ok());
        let mut bad = b.clone();
        bad.truncate(bad.len() - 1);
        assert!(matches!(
            ReplayRun::setup(
                BASE,
                SIZE,
                &bad,
                vec![0u64; 4],
                &mut v,
                &mut mem,
                &mut |_| {}
            ),
            Err(ReplayRunError::File(_))
        ));
    }

    #[test]
    fn another_descriptor_does_not_trigger_the_model() {
        let b = blob();
        let mut v = vgpu();
        let mut mem = VecMem::new(4 << 20);
        let mut run =
            ReplayRun::setup(BASE, SIZE, &b, vec![0u64; 4], &mut v, &mut mem, &mut |_| {}).unwrap();
        while run.tick(&b, &mut v, &mut mem).unwrap() != Tick::Submitted {}
        assert_eq!(run.executed(0x1234, &b, &mut mem).unwrap(), 0);
        assert_eq!(run.tick(&b, &mut v, &mut mem).unwrap(), Tick::Waiting);
    }
}

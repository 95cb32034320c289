// SPDX-License-Identifier: GPL-2.0

//! Replay files: a captured GPU workload packed for a vGPU to run again.
//!
//! `gmig-trace pack` turns a capture of Mesa's iris driver (its AUB file
//! and execbuffer log, see `scripts/trace.sh`) into one of these files;
//! the sim vGPU's replay workload ([`crate::sim::replay`]) runs it as a
//! guest driver would: the pages behind a PPGTT in guest memory, one
//! context per GEM context, one submission per execbuffer. After each
//! submission completes, the model GPU writes the ranges its record names:
//! Mesa's declaration of what the execbuffer writes stands in for the
//! hardware, which the sim does not have (see the `replay` section of
//! Documentation/benchmarks.rst for how they are chosen).
//!
//! All integers are little-endian. GPU addresses are PPGTT addresses
//! below 2^48, in pages of 4 KiB.
//!
//! ```text
//! header  (32 bytes)  magic "GMRP", version 1, contexts, execs,
//!                     map records, mapped pages, 0, 0     (u32 each)
//! map table           map records x (u64 address, u64 pages): sorted,
//!                     disjoint, non-adjacent; their pages sum to
//!                     "mapped pages"
//! records             each a u32 tag then its body, until the file ends:
//!   PAGE (1)          u32 0, u64 address (mapped), 4096 bytes: the page's
//!                     contents from here on
//!   EXEC (2)          u32 context (< contexts), u64 batch (mapped: the
//!                     PPGTT address of the execbuffer's first batch),
//!                     u32 ranges, u32 0, ranges x (u64 start, u64 end):
//!                     page aligned, sorted, disjoint, mapped: what the
//!                     model GPU writes when the execbuffer completes
//! ```
//!
//! The PAGE records before an EXEC are what the driver writes before it
//! submits that execbuffer. There are exactly "execs" EXEC records, and
//! the file ends with the last one.
//!
//! [`Replay::parse`] checks the header and the map table, [`Replay::validate`]
//! every record; neither panics nor allocates on any input (the fuzz target
//! `replay_read` checks it). A page's index in mapping order
//! ([`Replay::frame_of`]) is where the driver puts it in guest memory.

/// "GMRP".
pub const MAGIC: u32 = u32::from_le_bytes(*b"GMRP");
/// The format this reader reads.
pub const VERSION: u32 = 1;
/// Contexts a replay may use at most.
pub const MAX_CONTEXTS: u32 = 8;
/// Write ranges one EXEC may name at most.
pub const MAX_RANGES: u32 = 4096;
/// Pages a replay may map at most (16 GiB): more than any vGPU window,
/// and few enough that walking them stays quick.
pub const MAX_MAPPED: u64 = 1 << 22;
/// Bytes of a page.
pub const PAGE: u64 = 4096;
/// GPU addresses lie below this.
pub const ADDR_LIMIT: u64 = 1 << 48;

const HEADER: usize = 32;
const MAP_ENTRY: usize = 16;
const TAG_PAGE: u32 = 1;
const TAG_EXEC: u32 = 2;

/// Why a replay file was refused; `offset` is where in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayError {
    /// Not a replay file, or another version of the format.
    BadHeader,
    /// The file ends inside a record or the map table.
    Truncated {
        /// Where the record starts.
        offset: usize,
    },
    /// An unknown record tag.
    BadTag {
        /// Where the record starts.
        offset: usize,
        /// Its tag.
        tag: u32,
    },
    /// A map entry unsorted, overlapping, empty or out of range, or the
    /// mapped pages not what the header says.
    BadMap {
        /// Where the entry starts.
        offset: usize,
    },
    /// An address not page aligned, out of range or not mapped.
    BadAddress {
        /// Where the record starts.
        offset: usize,
        /// The address.
        addr: u64,
    },
    /// An EXEC's context out of range or its ranges malformed.
    BadExec {
        /// Where the record starts.
        offset: usize,
    },
    /// More or fewer EXEC records than the header says.
    ExecCount {
        /// How many there are.
        found: u64,
    },
}

impl core::fmt::Display for ReplayError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BadHeader => write!(f, "not a version {VERSION} replay file"),
            Self::Truncated { offset } => write!(f, "cut short at byte {offset}"),
            Self::BadTag { offset, tag } => write!(f, "unknown record {tag} at byte {offset}"),
            Self::BadMap { offset } => write!(f, "bad map entry at byte {offset}"),
            Self::BadAddress { offset, addr } => {
                write!(
                    f,
                    "address {addr:#x} at byte {offset}: unaligned or not mapped"
                )
            }
            Self::BadExec { offset } => write!(f, "bad execbuffer record at byte {offset}"),
            Self::ExecCount { found } => write!(f, "{found} execbuffer records, not the header's"),
        }
    }
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    let lo = u32_at(b, off)?;
    let hi = u32_at(b, off.checked_add(4)?)?;
    Some(u64::from(lo) | (u64::from(hi) << 32))
}

/// A replay file whose header and map table are valid.
#[derive(Debug, Clone, Copy)]
pub struct Replay<'a> {
    blob: &'a [u8],
    contexts: u32,
    execs: u32,
    maps: usize,
    mapped: u64,
}

/// One record.
#[derive(Debug, Clone, Copy)]
pub enum Record<'a> {
    /// The page at `addr` (index `frame` in mapping order) holds `data`.
    Page {
        /// Its PPGTT address.
        addr: u64,
        /// Its index in mapping order.
        frame: u64,
        /// Its 4096 bytes.
        data: &'a [u8],
    },
    /// Submit an execbuffer.
    Exec(Exec<'a>),
}

/// An execbuffer to submit.
#[derive(Debug, Clone, Copy)]
pub struct Exec<'a> {
    /// Context index, below [`Replay::contexts`].
    pub ctx: u32,
    /// PPGTT address of its first batch.
    pub batch: u64,
    ranges: &'a [u8],
}

impl<'a> Exec<'a> {
    /// What the model GPU writes on completion: `[start, end)` ranges.
    pub fn writes(&self) -> impl Iterator<Item = (u64, u64)> + 'a {
        let r = self.ranges;
        (0..r.len() / MAP_ENTRY)
            .filter_map(move |i| Some((u64_at(r, i * MAP_ENTRY)?, u64_at(r, i * MAP_ENTRY + 8)?)))
    }
}

impl<'a> Replay<'a> {
    /// Checks the header and the map table.
    pub fn parse(blob: &'a [u8]) -> Result<Self, ReplayError> {
        let h = |i: usize| u32_at(blob, 4 * i).ok_or(ReplayError::BadHeader);
        if h(0)? != MAGIC || h(1)? != VERSION || h(6)? != 0 || h(7)? != 0 {
            return Err(ReplayError::BadHeader);
        }
        let (contexts, execs, maps, mapped) = (h(2)?, h(3)?, h(4)? as usize, u64::from(h(5)?));
        if contexts == 0
            || contexts > MAX_CONTEXTS
            || execs == 0
            || maps == 0
            || mapped > MAX_MAPPED
        {
            return Err(ReplayError::BadHeader);
        }
        let r = Self {
            blob,
            contexts,
            execs,
            maps,
            mapped,
        };
        let (mut end, mut total) = (0u64, 0u64);
        for i in 0..maps {
            let off = HEADER + i * MAP_ENTRY;
            let (addr, pages) = r.map(i).ok_or(ReplayError::Truncated { offset: off })?;
            let stop = pages
                .checked_mul(PAGE)
                .and_then(|n| addr.checked_add(n))
                .filter(|&s| s <= ADDR_LIMIT);
            match stop {
                Some(s) if pages > 0 && addr % PAGE == 0 && (i == 0 || addr > end) => end = s,
                _ => return Err(ReplayError::BadMap { offset: off }),
            }
            total += pages;
        }
        if total != mapped {
            return Err(ReplayError::BadMap { offset: HEADER });
        }
        Ok(r)
    }

    fn map(&self, i: usize) -> Option<(u64, u64)> {
        let off = HEADER + i * MAP_ENTRY;
        Some((u64_at(self.blob, off)?, u64_at(self.blob, off + 8)?))
    }

    /// Contexts the replay uses.
    pub fn contexts(&self) -> u32 {
        self.contexts
    }

    /// Execbuffers it submits.
    pub fn execs(&self) -> u32 {
        self.execs
    }

    /// Pages it maps.
    pub fn mapped_pages(&self) -> u64 {
        self.mapped
    }

    /// The mapped ranges, `(address, pages)`, sorted.
    pub fn maps(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        (0..self.maps).filter_map(|i| self.map(i))
    }

    /// The index in mapping order of the page holding `addr`, if mapped.
    pub fn frame_of(&self, addr: u64) -> Option<u64> {
        // Binary search over the sorted map table, then the pages before.
        let (mut lo, mut hi) = (0usize, self.maps);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let (a, _) = self.map(mid)?;
            if a <= addr {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let i = lo.checked_sub(1)?;
        let (a, pages) = self.map(i)?;
        let page = (addr - a) / PAGE;
        if page >= pages {
            return None;
        }
        // Pages of the entries before: summed on each call (the table is
        // small: one entry per buffer).
        let before: u64 = (0..i).filter_map(|j| self.map(j)).map(|(_, p)| p).sum();
        Some(before + page)
    }

    /// Where the records start.
    pub fn first_record(&self) -> usize {
        HEADER + self.maps * MAP_ENTRY
    }

    /// Whether `[start, end)` is page aligned and wholly mapped.
    fn mapped_range(&self, start: u64, end: u64) -> bool {
        if !start.is_multiple_of(PAGE)
            || !end.is_multiple_of(PAGE)
            || start >= end
            || end > ADDR_LIMIT
        {
            return false;
        }
        let mut a = start;
        while a < end {
            let Some(i) = self.maps().position(|(m, p)| m <= a && a < m + p * PAGE) else {
                return false;
            };
            let Some((m, p)) = self.map(i) else {
                return false;
            };
            a = m + p * PAGE;
        }
        true
    }

    /// The record at `offset` and the offset of the next one; `None` at
    /// the end of the file.
    pub fn record_at(&self, offset: usize) -> Option<Result<(Record<'a>, usize), ReplayError>> {
        let b = self.blob;
        if offset >= b.len() {
            return None;
        }
        let cut = ReplayError::Truncated { offset };
        Some((|| {
            let tag = u32_at(b, offset).ok_or(cut)?;
            let arg = u32_at(b, offset + 4).ok_or(cut)?;
            let addr = u64_at(b, offset + 8).ok_or(cut)?;
            match tag {
                TAG_PAGE => {
                    let data = b.get(offset + 16..offset + 16 + PAGE as usize).ok_or(cut)?;
                    let frame = self
                        .frame_of(addr)
                        .filter(|_| arg == 0 && addr % PAGE == 0)
                        .ok_or(ReplayError::BadAddress { offset, addr })?;
                    Ok((
                        Record::Page { addr, frame, data },
                        offset + 16 + PAGE as usize,
                    ))
                }
                TAG_EXEC => {
                    let n = u32_at(b, offset + 16).ok_or(cut)?;
                    let zero = u32_at(b, offset + 20).ok_or(cut)?;
                    if arg >= self.contexts || n > MAX_RANGES || zero != 0 {
                        return Err(ReplayError::BadExec { offset });
                    }
                    if addr % 4 != 0 || self.frame_of(addr).is_none() {
                        return Err(ReplayError::BadAddress { offset, addr });
                    }
                    let body = offset + 24;
                    let end = body + n as usize * MAP_ENTRY;
                    let ranges = b.get(body..end).ok_or(cut)?;
                    let exec = Exec {
                        ctx: arg,
                        batch: addr,
                        ranges,
                    };
                    let mut last = 0u64;
                    for (i, (s, e)) in exec.writes().enumerate() {
                        if (i > 0 && s < last) || !self.mapped_range(s, e) {
                            return Err(ReplayError::BadExec { offset });
                        }
                        last = e;
                    }
                    Ok((Record::Exec(exec), end))
                }
                _ => Err(ReplayError::BadTag { offset, tag }),
            }
        })())
    }

    /// Checks every record and the number of EXECs.
    pub fn validate(&self) -> Result<(), ReplayError> {
        let (mut off, mut execs, mut last_exec) = (self.first_record(), 0u64, false);
        while let Some(r) = self.record_at(off) {
            let (rec, next) = r?;
            last_exec = matches!(rec, Record::Exec(_));
            execs += u64::from(last_exec);
            off = next;
        }
        // The last record is an EXEC: nothing written after it is lost.
        if execs != u64::from(self.execs) || !last_exec {
            return Err(ReplayError::ExecCount { found: execs });
        }
        Ok(())
    }
}

/// Bytes the model GPU writes at the start of each page of an EXEC's write
/// ranges, when the execbuffer completes.
pub const STAMP: usize = 16;

/// What the model GPU writes at offset 0 of the page at PPGTT address
/// `addr` (page aligned) of a write range when an execbuffer completes:
/// `exec + 1` then `addr`, both u64, where `exec` counts the execbuffers
/// the replay ran before (across runs of the file, so that every run
/// writes new data). The rest of the page is left as it was. A page whose
/// stamp is lost in a migration reads back wrong.
pub fn model_stamp(exec: u64, addr: u64) -> [u8; STAMP] {
    let mut s = [0u8; STAMP];
    s[..8].copy_from_slice(&exec.wrapping_add(1).to_le_bytes());
    s[8..].copy_from_slice(&addr.to_le_bytes());
    s
}

/// Writes replay files (the packer's and the tests' side).
#[cfg(not(CONFIG_RUST))]
pub mod write {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    /// A replay file being built.
    pub struct Writer {
        contexts: u32,
        maps: Vec<(u64, u64)>,
        records: Vec<u8>,
        execs: u32,
    }

    impl Writer {
        /// A file for `contexts` contexts mapping `maps` (sorted, disjoint
        /// `(address, pages)`; adjacent ones are merged).
        pub fn new(contexts: u32, maps: &[(u64, u64)]) -> Self {
            let mut m: Vec<(u64, u64)> = Vec::new();
            for &(a, p) in maps {
                match m.last_mut() {
                    Some(last) if last.0 + last.1 * PAGE == a => last.1 += p,
                    _ => m.push((a, p)),
                }
            }
            Self {
                contexts,
                maps: m,
                records: Vec::new(),
                execs: 0,
            }
        }

        /// A PAGE record.
        pub fn page(&mut self, addr: u64, data: &[u8; PAGE as usize]) {
            self.records.extend_from_slice(&TAG_PAGE.to_le_bytes());
            self.records.extend_from_slice(&0u32.to_le_bytes());
            self.records.extend_from_slice(&addr.to_le_bytes());
            self.records.extend_from_slice(data);
        }

        /// An EXEC record.
        pub fn exec(&mut self, ctx: u32, batch: u64, writes: &[(u64, u64)]) {
            self.records.extend_from_slice(&TAG_EXEC.to_le_bytes());
            self.records.extend_from_slice(&ctx.to_le_bytes());
            self.records.extend_from_slice(&batch.to_le_bytes());
            self.records
                .extend_from_slice(&(writes.len() as u32).to_le_bytes());
            self.records.extend_from_slice(&0u32.to_le_bytes());
            for &(s, e) in writes {
                self.records.extend_from_slice(&s.to_le_bytes());
                self.records.extend_from_slice(&e.to_le_bytes());
            }
            self.execs += 1;
        }

        /// The file.
        pub fn finish(self) -> Vec<u8> {
            let mapped: u64 = self.maps.iter().map(|m| m.1).sum();
            let mut out = Vec::new();
            for w in [
                MAGIC,
                VERSION,
                self.contexts,
                self.execs,
                self.maps.len() as u32,
                mapped as u32,
                0,
                0,
            ] {
                out.extend_from_slice(&w.to_le_bytes());
            }
            for &(a, p) in &self.maps {
                out.extend_from_slice(&a.to_le_bytes());
                out.extend_from_slice(&p.to_le_bytes());
            }
            out.extend_from_slice(&self.records);
            out
        }
    }
}

#[cfg(all(test, not(CONFIG_RUST)))]
mod tests {
    use super::write::Writer;
    use super::*;

    fn sample() -> std::vec::Vec<u8> {
        let mut w = Writer::new(2, &[(0x10000, 2), (0x12000, 1), (0xfffe_0000_0000, 4)]);
        w.page(0x11000, &[7; 4096]);
        w.exec(1, 0x10040, &[(0xfffe_0000_1000, 0xfffe_0000_3000)]);
        w.page(0xfffe_0000_3000, &[9; 4096]);
        w.exec(0, 0x12000, &[]);
        w.finish()
    }

    #[test]
    fn a_written_file_reads_back() {
        let blob = sample();
        let r = Replay::parse(&blob).unwrap();
        r.validate().unwrap();
        assert_eq!((r.contexts(), r.execs(), r.mapped_pages()), (2, 2, 7));
        // Adjacent maps merge; frames count in mapping order.
        assert_eq!(r.maps().collect::<std::vec::Vec<_>>().len(), 2);
        assert_eq!(r.frame_of(0x10000), Some(0));
        assert_eq!(r.frame_of(0x12fff), Some(2));
        assert_eq!(r.frame_of(0x13000), None);
        assert_eq!(r.frame_of(0xfffe_0000_3000), Some(6));
        assert_eq!(r.frame_of(0xfff), None);
        let mut off = r.first_record();
        let mut seen = std::vec::Vec::new();
        while let Some(rec) = r.record_at(off) {
            let (rec, next) = rec.unwrap();
            match rec {
                Record::Page { frame, data, .. } => seen.push((frame, data[0] as u64)),
                Record::Exec(e) => seen.push((
                    u64::from(e.ctx) << 32 | e.batch,
                    e.writes().map(|(s, e)| e - s).sum(),
                )),
            }
            off = next;
        }
        assert_eq!(
            seen,
            [(1, 7), (1 << 32 | 0x10040, 0x2000), (6, 9), (0x12000, 0)]
        );
    }

    #[test]
    fn every_cut_and_every_flipped_byte_is_refused_or_read_whole() {
        let blob = sample();
        for n in 0..blob.len() {
            let cut = &blob[..n];
            assert!(
                Replay::parse(cut).and_then(|r| r.validate()).is_err(),
                "a file cut at {n} was accepted"
            );
        }
        for i in 0..blob.len() {
            let mut b = blob.clone();
            b[i] ^= 0x81;
            if let Ok(r) = Replay::parse(&b) {
                if r.validate().is_ok() {
                    // Only page contents may change without notice.
                    assert!(i >= r.first_record(), "header byte {i} flipped unnoticed");
                }
            }
        }
    }

    #[test]
    fn the_model_stamp_is_the_exec_number_then_the_address() {
        let s = model_stamp(0, 0xfffe_0000_3000);
        assert_eq!(s[..8], 1u64.to_le_bytes());
        assert_eq!(s[8..], 0xfffe_0000_3000u64.to_le_bytes());
        assert_ne!(model_stamp(1, 0x1000), model_stamp(2, 0x1000));
        assert_ne!(
            model_stamp(1, 0x1000),
            [0; STAMP],
            "a stamp is not a zero page"
        );
    }

    #[test]
    fn unmapped_or_unaligned_addresses_are_refused() {
        let mut w = Writer::new(1, &[(0x10000, 1)]);
        w.exec(0, 0x20000, &[]);
        let b = w.finish();
        assert!(matches!(
            Replay::parse(&b).unwrap().validate(),
            Err(ReplayError::BadAddress { addr: 0x20000, .. })
        ));
        let mut w = Writer::new(1, &[(0x10000, 1)]);
        w.exec(0, 0x10000, &[(0x10000, 0x12000)]);
        let b = w.finish();
        assert!(matches!(
            Replay::parse(&b).unwrap().validate(),
            Err(ReplayError::BadExec { .. })
        ));
        let mut w = Writer::new(1, &[(0x10000, 1)]);
        w.exec(1, 0x10000, &[]);
        let b = w.finish();
        assert!(
            Replay::parse(&b).unwrap().validate().is_err(),
            "context 1 of 1"
        );
        let w = Writer::new(1, &[(0x10800, 1)]);
        assert!(Replay::parse(&w.finish()).is_err(), "unaligned map");
        // A few bytes may not claim more pages than a replay can map.
        let mut w = Writer::new(1, &[(0, MAX_MAPPED + 1)]);
        w.exec(0, 0, &[]);
        assert_eq!(
            Replay::parse(&w.finish()).err(),
            Some(ReplayError::BadHeader)
        );
        let mut w = Writer::new(1, &[(0, MAX_MAPPED)]);
        w.exec(0, 0, &[]);
        assert!(Replay::parse(&w.finish()).is_ok());
    }
}

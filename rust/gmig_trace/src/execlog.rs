// SPDX-License-Identifier: GPL-2.0

//! The execbuffer log trace/execlog.c writes: each execbuffer's object
//! list as the driver submitted it.

use std::fmt;

/// EXEC_OBJECT_WRITE: the driver says the GPU may write the buffer.
pub const EXEC_OBJECT_WRITE: u64 = 1 << 2;

/// One buffer of an execbuffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bo {
    /// GEM handle.
    pub handle: u32,
    /// GPU virtual address, 48 bits (the driver gives it sign-extended).
    pub offset: u64,
    /// Bytes (0: the logger did not see it created).
    pub size: u64,
    /// EXEC_OBJECT_* flags.
    pub flags: u64,
}

impl Bo {
    /// Whether the driver flagged the buffer written.
    pub fn written(&self) -> bool {
        self.flags & EXEC_OBJECT_WRITE != 0
    }

    /// The buffer's address range, end exclusive.
    pub fn range(&self) -> (u64, u64) {
        (self.offset, self.offset.saturating_add(self.size))
    }
}

/// One execbuffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exec {
    /// Submission index (from 0, in the program's order).
    pub index: u64,
    /// GEM context id.
    pub ctx: u32,
    /// I915_EXEC_* flags.
    pub flags: u64,
    /// Index of the batch buffer in `bos`.
    pub batch: usize,
    /// Byte offset of the batch in its buffer.
    pub start: u64,
    /// Its buffers.
    pub bos: Vec<Bo>,
}

/// I915_EXEC_RING_MASK: the engine, or the index in the context's engine
/// map.
pub const I915_EXEC_RING_MASK: u64 = 0x3f;

impl Exec {
    /// The logical context the execbuffer runs in: its GEM context and
    /// engine. iris gives its render and compute batches one GEM context
    /// with two engines (two logical contexts, each with its own state),
    /// which intel_dump_gpu writes as one context image.
    pub fn logical_context(&self) -> (u32, u64) {
        (self.ctx, self.flags & I915_EXEC_RING_MASK)
    }

    /// GPU address of the first batch command.
    pub fn batch_addr(&self) -> Option<u64> {
        self.bos
            .get(self.batch)
            .map(|b| canonical(b.offset + self.start))
    }
}

/// A line the log reader did not understand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogError {
    /// 1-based line number.
    pub line: usize,
    /// What was wrong.
    pub why: &'static str,
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "execlog line {}: {}", self.line, self.why)
    }
}

/// The 48-bit GPU address of a sign-extended (canonical) one.
pub fn canonical(addr: u64) -> u64 {
    addr & ((1 << 48) - 1)
}

fn num(s: Option<&str>) -> Option<u64> {
    let s = s?;
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// The log's execbuffers, and whether its last record was cut short (the
/// program died while it was written: that record is dropped).
pub fn parse(text: &str) -> Result<(Vec<Exec>, bool), LogError> {
    let mut execs: Vec<Exec> = Vec::new();
    let mut want = 0usize;
    let lines: Vec<&str> = text.split('\n').collect();
    let complete_lines = if text.ends_with('\n') || text.is_empty() {
        lines.len().saturating_sub(1)
    } else {
        lines.len() - 1
    };
    let cut = complete_lines < lines.len() && !lines[lines.len() - 1].is_empty();
    for (i, line) in lines.iter().take(complete_lines).enumerate() {
        let err = |why| LogError { line: i + 1, why };
        let mut f = line.split_ascii_whitespace();
        match f.next() {
            Some("E") => {
                if want != 0 {
                    return Err(err("execbuffer record before the previous one's buffers"));
                }
                let v: Vec<u64> = f
                    .map(|s| num(Some(s)))
                    .collect::<Option<_>>()
                    .ok_or(err("bad number"))?;
                let [index, ctx, flags, batch, start, _len, count] = v[..] else {
                    return Err(err("E record needs 7 fields"));
                };
                if index != execs.len() as u64 {
                    return Err(err("execbuffers out of order"));
                }
                if count == 0 || batch >= count || count > 1 << 20 {
                    return Err(err("bad buffer count or batch index"));
                }
                want = count as usize;
                execs.push(Exec {
                    index,
                    ctx: u32::try_from(ctx).map_err(|_| err("context id beyond 32 bits"))?,
                    flags,
                    batch: batch as usize,
                    start,
                    bos: Vec::with_capacity(want),
                });
            }
            Some("B") => {
                let e = execs
                    .last_mut()
                    .filter(|_| want != 0)
                    .ok_or(err("buffer record outside an execbuffer"))?;
                let v: Vec<u64> = f
                    .map(|s| num(Some(s)))
                    .collect::<Option<_>>()
                    .ok_or(err("bad number"))?;
                let [handle, offset, size, flags] = v[..] else {
                    return Err(err("B record needs 4 fields"));
                };
                e.bos.push(Bo {
                    handle: u32::try_from(handle).map_err(|_| err("handle beyond 32 bits"))?,
                    offset: canonical(offset),
                    size,
                    flags,
                });
                want -= 1;
            }
            _ => return Err(err("unknown record")),
        }
    }
    let mut truncated = cut;
    if want != 0 {
        execs.pop();
        truncated = true;
    }
    Ok((execs, truncated))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "E 0 1 0xc1800 0 0 2664 2\nB 7 0xfffffffefffdc000 131072 0xd8\nB 2 0x1000 4096 0xdc\nE 1 1 0x1 1 64 0 2\nB 3 0x2000 4096 0x4\nB 4 0x3000 8192 0x0\n";

    #[test]
    fn reads_records() {
        let (e, cut) = parse(LOG).unwrap();
        assert!(!cut);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].bos[0].offset, 0xfffe_fffd_c000);
        assert_eq!(e[0].batch_addr(), Some(0xfffe_fffd_c000));
        assert!(e[0].bos[1].written() && !e[0].bos[0].written());
        assert_eq!(e[1].batch_addr(), Some(0x3040));
    }

    #[test]
    fn a_record_cut_short_is_dropped() {
        for n in 0..LOG.len() {
            let (e, cut) = parse(&LOG[..n]).unwrap();
            let whole = LOG[..n].matches('\n').count();
            // Two records end at lines 3 and 6.
            let expect = [0, 0, 0, 1, 1, 1, 2][whole];
            assert_eq!(e.len(), expect, "cut at {n}");
            let boundary = LOG[..n].ends_with('\n') && (whole == 3 || whole == 6);
            assert_eq!(cut, n != 0 && !boundary, "cut at {n}");
        }
    }

    #[test]
    fn bad_records_are_errors() {
        for bad in [
            "B 1 0 0 0\n",
            "E 0 1 0 0 0 0\n",
            "E 0 1 0 2 0 0 2\n",
            "E 1 1 0 0 0 0 1\n",
            "E 0 1 0 0 0 0 1\nB 1 0xzz 0 0\n",
            "X\n",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}

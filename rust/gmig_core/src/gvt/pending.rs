// SPDX-License-Identifier: GPL-2.0

//! Pending workloads of a GVT-g vGPU: what the guest submitted through an
//! engine's ELSP and GVT-g had queued but not run when the vGPU stopped.
//!
//! kvmgt lists them (`intel_gvt_companion_save_workloads()`, one
//! `struct intel_gvt_workload` each, in queue order per engine) and
//! re-creates them on the destination
//! (`intel_gvt_companion_resubmit_workloads()`), as if the guest wrote
//! the ELSP again. A record holds the guest's view: its context descriptor
//! and ring buffer start are graphics addresses of the guest's (the
//! original source's) graphics memory, which kvmgt translates through the
//! companion's `map_gma` hook ([`super::AuditMap::map_guest`]) when it
//! re-creates the workload, as for every descriptor the guest submits
//! after the move. The ring offsets are the ones GVT-g had computed: the
//! guest's context image holds only the tail of the last submission of a
//! context, so they cannot be read again.
//!
//! Section [`super::super::stream::Section::GvtWorkloads`] (written only
//! if a workload is pending):
//!
//! ```text
//! count u32 | 0 u32 | count records of 16 u32:
//!   engine | flags | desc ldw | desc udw | elsp[4] | rb_head | rb_tail |
//!   guest_rb_head | rb_start | rb_ctl | 0 | 0 | 0
//! ```

use super::audit::{AuditError, AuditMap};

/// Bytes of one record (`sizeof(struct intel_gvt_workload)`).
pub const WORKLOAD_LEN: usize = 64;
/// Dwords of one record.
pub const WORKLOAD_WORDS: usize = WORKLOAD_LEN / 4;
/// Most pending workloads a vGPU's image carries (16 KiB of records, next
/// to the 3-7 MiB of the rest). GVT-g queues two per ELSP write at most
/// and a guest driver writes the ELSP after a context switch (a handful
/// per engine in practice), but upstream GVT-g does not cap the queue: a
/// guest that floods the ELSP can queue more. The stop then lets the
/// queue drain to this many before it saves ([`super::GvtHost::wait_pending`]).
pub const MAX_PENDING: usize = 256;
/// Flag: queuing the workload emulates the guest's ELSP submission
/// (`emulate_schedule_in`, the submission's first descriptor); `elsp`
/// holds that submission.
pub const WORKLOAD_SCHEDULE_IN: u32 = 1;
/// Highest engine id a record may name (kvmgt checks it is the vGPU's).
pub const MAX_ENGINE: u32 = 63;
/// Pages of a context image GVT-g reads to create a workload: the
/// per-process status page and the ring context (`lrca + 1`).
pub const CONTEXT_LOOKUP_PAGES: u64 = 2;

const PAGE: u64 = 4096;
/// `RB_TAIL_SIZE_MASK`: the ring control's buffer length, in pages - 1.
const RB_SIZE_MASK: u32 = 0x001f_f000;

/// Payload bytes of a section of `n` records.
pub fn pending_section_len(n: usize) -> Option<usize> {
    n.checked_mul(WORKLOAD_LEN)?.checked_add(8)
}

/// One pending workload, as kvmgt saves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PendingWorkload {
    /// Engine id.
    pub engine: u32,
    /// [`WORKLOAD_SCHEDULE_IN`] or 0.
    pub flags: u32,
    /// The guest's context descriptor (low, high dword).
    pub desc: [u32; 2],
    /// The ELSP dwords of the submission (with [`WORKLOAD_SCHEDULE_IN`]).
    pub elsp: [u32; 4],
    /// Ring offset the workload starts at.
    pub rb_head: u32,
    /// Ring offset it ends at.
    pub rb_tail: u32,
    /// Ring head the guest's context image held.
    pub guest_rb_head: u32,
    /// Graphics address of the ring buffer (the guest's).
    pub rb_start: u32,
    /// Ring control (buffer length).
    pub rb_ctl: u32,
}

/// Why a record was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingError {
    /// Unknown flags, a reserved field set, an invalid descriptor or
    /// engine, or ring offsets outside the ring.
    BadRecord,
    /// The context image is not in the guest's graphics memory.
    Context(AuditError),
    /// The ring buffer is not in the guest's graphics memory.
    Ring(AuditError),
}

impl PendingWorkload {
    /// A record from kvmgt's dwords.
    pub fn from_words(w: &[u32; WORKLOAD_WORDS]) -> Self {
        Self {
            engine: w[0],
            flags: w[1],
            desc: [w[2], w[3]],
            elsp: [w[4], w[5], w[6], w[7]],
            rb_head: w[8],
            rb_tail: w[9],
            guest_rb_head: w[10],
            rb_start: w[11],
            rb_ctl: w[12],
        }
    }

    /// kvmgt's dwords of the record (reserved ones zero).
    pub fn to_words(&self) -> [u32; WORKLOAD_WORDS] {
        let e = &self.elsp;
        [
            self.engine,
            self.flags,
            self.desc[0],
            self.desc[1],
            e[0],
            e[1],
            e[2],
            e[3],
            self.rb_head,
            self.rb_tail,
            self.guest_rb_head,
            self.rb_start,
            self.rb_ctl,
            0,
            0,
            0,
        ]
    }

    /// Decodes a little-endian record; `None` if `b` is not one record or
    /// a reserved dword is set.
    pub fn decode(b: &[u8]) -> Option<Self> {
        if b.len() != WORKLOAD_LEN {
            return None;
        }
        let mut w = [0u32; WORKLOAD_WORDS];
        // Not `chunks_exact`: its `zip` specialisation trips objtool in the
        // kernel build.
        for (v, c) in w.iter_mut().zip(b.chunks(4)) {
            *v = u32::from_le_bytes(c.try_into().ok()?);
        }
        (w[13] == 0 && w[14] == 0 && w[15] == 0).then(|| Self::from_words(&w))
    }

    /// Writes the record little-endian into `out` (one record long).
    pub fn encode(&self, out: &mut [u8]) -> Option<()> {
        if out.len() != WORKLOAD_LEN {
            return None;
        }
        for (c, v) in out.chunks_mut(4).zip(self.to_words()) {
            c.copy_from_slice(&v.to_le_bytes());
        }
        Some(())
    }

    /// Graphics address of the context image (the descriptor's LRCA).
    pub fn lrca(&self) -> u64 {
        u64::from(self.desc[0] & !0xfff)
    }

    /// Bytes of the ring buffer (`_RING_CTL_BUF_SIZE()`).
    pub fn ring_size(&self) -> u64 {
        u64::from(self.rb_ctl & RB_SIZE_MASK) + PAGE
    }

    /// Checks the record against the guest's graphics memory as `map`
    /// translates it (the destination's audit map): its context image and
    /// ring buffer must be the guest's, its offsets inside the ring.
    /// Returns the context image's and the ring's addresses in the vGPU's
    /// own graphics memory.
    pub fn check(&self, map: &AuditMap) -> Result<(u64, u64), PendingError> {
        let valid = self.desc[0] & 1 != 0;
        let size = self.ring_size();
        if self.flags & !WORKLOAD_SCHEDULE_IN != 0
            || self.engine > MAX_ENGINE
            || !valid
            || u64::from(self.rb_head) >= size
            || u64::from(self.rb_tail) >= size
            || u64::from(self.guest_rb_head & 0x001f_fffc) >= size
            || (self.flags & WORKLOAD_SCHEDULE_IN != 0 && self.elsp[0] & 1 == 0)
        {
            return Err(PendingError::BadRecord);
        }
        let ctx = map
            .translate(self.lrca(), CONTEXT_LOOKUP_PAGES * PAGE)
            .map_err(PendingError::Context)?;
        let ring = map
            .translate(u64::from(self.rb_start), size)
            .map_err(PendingError::Ring)?;
        Ok((ctx, ring))
    }
}

/// The records of a checked section payload.
#[derive(Debug, Clone, Copy)]
pub struct PendingList<'a> {
    records: &'a [u8],
}

impl<'a> PendingList<'a> {
    /// No pending workloads.
    pub const EMPTY: PendingList<'static> = PendingList { records: &[] };

    /// The section payload `p` as records; `None` if its count and length
    /// disagree, there are more than [`MAX_PENDING`] or one is malformed
    /// ([`PendingWorkload::decode`]).
    pub fn parse(p: &'a [u8]) -> Option<Self> {
        let n = usize::try_from(u32::from_le_bytes(p.get(0..4)?.try_into().ok()?)).ok()?;
        if p.get(4..8)? != [0; 4] || n > MAX_PENDING || Some(p.len()) != pending_section_len(n) {
            return None;
        }
        let l = Self {
            records: p.get(8..)?,
        };
        l.iter().all(|r| r.is_some()).then_some(l)
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len() / WORKLOAD_LEN
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The records in order (`None` for a malformed one; a parsed list
    /// has none).
    pub fn iter(&self) -> impl Iterator<Item = Option<PendingWorkload>> + 'a {
        self.records
            .chunks_exact(WORKLOAD_LEN)
            .map(PendingWorkload::decode)
    }

    /// Checks every record against `map` ([`PendingWorkload::check`]);
    /// returns the index of the first refused one and why.
    pub fn check(&self, map: &AuditMap) -> Result<(), (usize, PendingError)> {
        for (i, r) in self.iter().enumerate() {
            r.ok_or((i, PendingError::BadRecord))?
                .check(map)
                .map_err(|e| (i, e))?;
        }
        Ok(())
    }
}

/// Writes the section payload of `records` (kvmgt's dwords, in its order)
/// into `out`, which must be [`pending_section_len`] of their number.
pub fn write_pending(out: &mut [u8], records: &[[u32; WORKLOAD_WORDS]]) -> Option<()> {
    if Some(out.len()) != pending_section_len(records.len()) || records.len() > MAX_PENDING {
        return None;
    }
    let n = u32::try_from(records.len()).ok()?;
    let (h, body) = out.split_at_mut(8);
    h[0..4].copy_from_slice(&n.to_le_bytes());
    h[4..8].fill(0);
    for (c, w) in body.chunks_mut(WORKLOAD_LEN).zip(records) {
        PendingWorkload::from_words(w).encode(c)?;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::super::layout::GvtLayout;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    const MIB: u64 = 1 << 20;

    fn layouts() -> (GvtLayout, GvtLayout) {
        (
            GvtLayout::new((32 * MIB, 32 * MIB), (512 * MIB, 64 * MIB), 4).unwrap(),
            GvtLayout::new((64 * MIB, 32 * MIB), (576 * MIB, 64 * MIB), 4).unwrap(),
        )
    }

    fn record(src: &GvtLayout, i: u32) -> PendingWorkload {
        let lrca = src.aperture.base as u32 + 0x10000 + i * 0x20000;
        PendingWorkload {
            engine: i % 2,
            flags: if i == 0 { WORKLOAD_SCHEDULE_IN } else { 0 },
            desc: [lrca | 0x19, 0x40 + i],
            elsp: if i == 0 {
                [lrca | 0x19, 0x40, 0, 0]
            } else {
                [0; 4]
            },
            rb_head: 0x40 * i,
            rb_tail: 0x40 * i + 0x20,
            guest_rb_head: 0,
            rb_start: src.hidden.base as u32 + i * 0x1000,
            rb_ctl: 1,
        }
    }

    #[test]
    fn records_round_trip_in_order() {
        let (src, _) = layouts();
        let recs: Vec<[u32; WORKLOAD_WORDS]> = (0..5).map(|i| record(&src, i).to_words()).collect();
        let mut out = vec![0u8; pending_section_len(recs.len()).unwrap()];
        write_pending(&mut out, &recs).unwrap();
        let l = PendingList::parse(&out).unwrap();
        assert_eq!(l.len(), 5);
        for (i, r) in l.iter().enumerate() {
            assert_eq!(r.unwrap(), record(&src, i as u32), "record {i} in order");
        }
        // Count and length must agree; reserved dwords must be zero.
        let mut bad = out.clone();
        bad[0] = 4;
        assert!(PendingList::parse(&bad).is_none());
        let mut bad = out.clone();
        bad[8 + 13 * 4] = 1;
        assert!(PendingList::parse(&bad).is_none());
        assert!(PendingList::parse(&out[..out.len() - 1]).is_none());
        let too_many = vec![[0u32; WORKLOAD_WORDS]; MAX_PENDING + 1];
        let mut big = vec![0u8; pending_section_len(too_many.len()).unwrap()];
        assert!(write_pending(&mut big, &too_many).is_none());
    }

    /// The descriptor's context image and the ring start of a record made
    /// on the source land at the same offsets of the destination's slices;
    /// anything outside the guest's graphics memory is refused.
    #[test]
    fn context_and_ring_start_move_to_the_destination() {
        let (src, dst) = layouts();
        let map = AuditMap::migrated(src, dst).unwrap();
        let r = record(&src, 1);
        let (ctx, ring) = r.check(&map).unwrap();
        assert_eq!(ctx, dst.aperture.base + 0x30000);
        assert_eq!(ring, dst.hidden.base + 0x1000);
        // The source's own map keeps them.
        assert_eq!(
            r.check(&AuditMap::identity(src)),
            Ok((src.aperture.base + 0x30000, src.hidden.base + 0x1000))
        );
        // A ring the guest never owned (the destination's own slice).
        let mut bad = r;
        bad.rb_start = dst.hidden.end() as u32 - 0x1000;
        assert!(matches!(bad.check(&map), Err(PendingError::Ring(_))));
        // A context image that crosses the end of the aperture.
        let mut bad = r;
        bad.desc[0] = (src.aperture.end() as u32 - 0x1000) | 1;
        assert!(matches!(bad.check(&map), Err(PendingError::Context(_))));
        // Offsets outside the ring, an invalid descriptor, unknown flags.
        for f in [
            |r: &mut PendingWorkload| r.rb_tail = 0x1000,
            |r: &mut PendingWorkload| r.desc[0] &= !1,
            |r: &mut PendingWorkload| r.flags = 2,
            |r: &mut PendingWorkload| r.engine = 64,
            |r: &mut PendingWorkload| {
                r.flags = WORKLOAD_SCHEDULE_IN;
                r.elsp = [0; 4];
            },
        ] {
            let mut bad = r;
            f(&mut bad);
            assert_eq!(bad.check(&map), Err(PendingError::BadRecord));
        }
        // A list refuses at its first bad record.
        let recs = [record(&src, 0).to_words(), bad_ring(&src).to_words()];
        let mut out = vec![0u8; pending_section_len(2).unwrap()];
        write_pending(&mut out, &recs).unwrap();
        let l = PendingList::parse(&out).unwrap();
        assert!(matches!(l.check(&map), Err((1, PendingError::Ring(_)))));
        assert!(PendingList::EMPTY.check(&map).is_ok());
    }

    fn bad_ring(src: &GvtLayout) -> PendingWorkload {
        PendingWorkload {
            desc: [src.aperture.base as u32 | 1, 0],
            rb_start: 0,
            ..Default::default()
        }
    }
}

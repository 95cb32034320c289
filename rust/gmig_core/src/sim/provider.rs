// SPDX-License-Identifier: GPL-2.0

//! The sim vGPU as a [`Provider`]: its state image (configuration space,
//! registers, GGTT, pending submissions) and its restore, which remaps the
//! pending contexts when the image comes from another GGTT partition.

use super::super::gtt::{Partition, Pte, PAGE_SIZE};
use super::super::mem::GuestMem;
use super::super::provider::{Provider, RestoreError, Restored, PROVIDER_SIM};
use super::super::stream::{self, EntrySpan, ImageSink, Section, StreamError, FLAG_MANDATORY};
use super::config::CONFIG_SIZE;
use super::exec::CtxSlot;
use super::remap::{self, PendingSource};
use super::vgpu::{Regs, SimVgpu, REGS_BYTES, TYPES};

/// Bytes of a sim state image with `entries` GGTT entries.
pub const fn sim_image_len(entries: usize) -> usize {
    stream::HEADER_LEN
        + 4 * stream::SECTION_HEADER_LEN
        + CONFIG_SIZE
        + REGS_BYTES
        + 16
        + 8 * entries
}

/// Where a sim image's GGTT entries start: after the config and register
/// sections and the GGTT section's base and size.
const GGTT_ENTRIES_AT: usize =
    stream::HEADER_LEN + 3 * stream::SECTION_HEADER_LEN + CONFIG_SIZE + REGS_BYTES + 16;

/// A sim image's registers and GGTT, seen as the vGPU they describe once
/// restored at `at`: what the remap reads before the vGPU is changed.
struct ImageView<'a> {
    regs: &'a Regs,
    entries: &'a [u8],
    at: Partition,
}

impl PendingSource for ImageView<'_> {
    fn pending(&self) -> &[u64] {
        self.regs.pending()
    }

    fn translate_ggtt(&self, gaddr: u64) -> Option<u64> {
        let index = self.at.index(gaddr)?;
        let raw = le64(self.entries, 8 * index)?;
        Some(Pte::decode(raw)?.addr + gaddr % PAGE_SIZE)
    }
}

fn le64(b: &[u8], off: usize) -> Option<u64> {
    let s = b.get(off..off + 8)?;
    Some(u64::from_le_bytes([
        s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7],
    ]))
}

impl<S: core::ops::DerefMut<Target = [u64]>, C: core::ops::DerefMut<Target = [CtxSlot]>> Provider
    for SimVgpu<S, C>
{
    fn id(&self) -> u16 {
        PROVIDER_SIM
    }

    fn type_index(&self) -> u16 {
        TYPES
            .iter()
            .position(|t| core::ptr::eq(t, self.vgpu_type()))
            .and_then(|i| u16::try_from(i).ok())
            .unwrap_or(u16::MAX)
    }

    fn type_name(&self) -> &'static str {
        self.vgpu_type().name
    }

    fn partition(&self) -> Partition {
        SimVgpu::partition(self)
    }

    fn quiesce(&mut self) {
        self.set_quiesced(true);
    }

    fn resume(&mut self) -> bool {
        self.set_quiesced(false);
        !self.pending().is_empty()
    }

    fn is_quiesced(&self) -> bool {
        SimVgpu::is_quiesced(self)
    }

    fn for_each_writable_frame(&self, f: &mut dyn FnMut(u64)) {
        for gfn in self.ggtt_frames().chain(self.pinned_frames()) {
            f(gfn);
        }
    }

    fn state_len(&self) -> usize {
        sim_image_len(self.ggtt().len())
    }

    fn write_state<W: ImageSink>(&self, w: &mut W) -> Result<(), StreamError> {
        w.section(Section::Config as u16, FLAG_MANDATORY, CONFIG_SIZE, |p| {
            p.copy_from_slice(self.config().bytes())
        })?;
        w.section(Section::Regs as u16, FLAG_MANDATORY, REGS_BYTES, |p| {
            let mut r = [0u8; REGS_BYTES];
            self.regs().encode(&mut r);
            p.copy_from_slice(&r);
        })?;
        let p = SimVgpu::partition(self);
        let entries = self.ggtt();
        w.section_entries(
            Section::Ggtt as u16,
            FLAG_MANDATORY,
            16,
            |b| {
                b[0..8].copy_from_slice(&p.base.to_le_bytes());
                b[8..16].copy_from_slice(&p.size.to_le_bytes());
            },
            entries.len(),
            |i| entries.get(i).copied().unwrap_or(0),
        )
    }

    fn restore_state<M: GuestMem>(
        &mut self,
        hdr: &stream::Header,
        image: &[u8],
        mem: &mut M,
    ) -> Result<Restored, RestoreError> {
        if hdr.provider != PROVIDER_SIM || hdr.vgpu_type != Provider::type_index(self) {
            return Err(RestoreError::WrongDevice {
                provider: hdr.provider,
                vgpu_type: hdr.vgpu_type,
            });
        }
        let dst = SimVgpu::partition(self);
        // Decode and check every section before changing anything.
        let mut config = None;
        let mut regs = None;
        let mut ggtt: Option<(Partition, &[u8])> = None;
        for sec in stream::sections_unchecked(image) {
            let (ty, _, payload) = sec?;
            match ty {
                t if t == Section::Config as u16 => {
                    let b: &[u8; CONFIG_SIZE] = payload
                        .try_into()
                        .map_err(|_| RestoreError::BadSection(t))?;
                    config = Some(b);
                }
                t if t == Section::Regs as u16 => {
                    let b: &[u8; REGS_BYTES] = payload
                        .try_into()
                        .map_err(|_| RestoreError::BadSection(t))?;
                    regs = Some(Regs::decode(b).ok_or(RestoreError::BadSection(t))?);
                }
                t if t == Section::Ggtt as u16 => {
                    let bad = RestoreError::BadSection(t);
                    let base = le64(payload, 0).ok_or(bad)?;
                    let size = le64(payload, 8).ok_or(bad)?;
                    let p = Partition::new(base, size).ok_or(bad)?;
                    if p.size != dst.size {
                        return Err(RestoreError::PartitionMismatch { size: p.size });
                    }
                    let entries = payload.get(16..).ok_or(bad)?;
                    if entries.len() as u64 != 8 * p.entries() {
                        return Err(bad);
                    }
                    ggtt = Some((p, entries));
                }
                _ => {} // end marker, optional sections
            }
        }
        let config = config.ok_or(RestoreError::MissingSection(Section::Config as u16))?;
        let regs = regs.ok_or(RestoreError::MissingSection(Section::Regs as u16))?;
        let (src, entries) = ggtt.ok_or(RestoreError::MissingSection(Section::Ggtt as u16))?;
        let mut done = Restored {
            src: Some(src),
            remapped: 0,
        };
        // Dynamic graphics address remapping of the pending contexts, read
        // through the incoming image: it validates before it writes guest
        // memory, so on error the vGPU (registers, config, GGTT) and guest
        // memory are as they were.
        let mut descs = None;
        if src.base != dst.base {
            let image = ImageView {
                regs: &regs,
                entries,
                at: dst,
            };
            let (n, d) =
                remap::remap_pending_of(&image, src, dst, mem).map_err(RestoreError::Remap)?;
            done.remapped = n;
            descs = Some(d);
        }
        self.restore_state(regs, config);
        self.restore_ggtt_with(|i| le64(entries, 8 * i).unwrap_or(0));
        if let Some(d) = descs {
            for (p, n) in self.pending_mut().iter_mut().zip(d) {
                *p = n;
            }
        }
        Ok(done)
    }

    fn ggtt_in_image(&self) -> EntrySpan {
        EntrySpan {
            offset: GGTT_ENTRIES_AT,
            entries: self.ggtt().len(),
        }
    }

    fn pending_workloads(&self) -> usize {
        self.pending().len()
    }

    fn reset(&mut self) {
        // The sim rewrites pending work in guest memory at restore time;
        // no translation outlives it.
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{tracker_update, ShadowEvent, TrackRange, MAX_EVENT_PAGES, PROVIDER_GVT};
    use crate::sim::exec::LRC_MAGIC;
    use crate::sim::vgpu::{REGION_BAR0, TYPES};
    use crate::testutil::Rng;
    use std::vec;
    use std::vec::Vec;

    use crate::testutil::VecMem as Mem;

    const MEM: usize = 8 << 20;

    fn vgpu(base: u64) -> SimVgpu<Vec<u64>> {
        let ty = &TYPES[0];
        let p = Partition::new(base, ty.ggtt_size).unwrap();
        SimVgpu::new(ty, p, vec![0; p.entries() as usize]).unwrap()
    }

    fn put(mem: &mut Mem, gpa: u64, dws: &[u32]) {
        for (i, d) in dws.iter().enumerate() {
            mem.write(gpa + 4 * i as u64, &d.to_le_bytes()).unwrap();
        }
    }

    /// Maps `gaddr` to `gpa`; returns the index of the entry the write
    /// path reports.
    fn map_ggtt(v: &mut SimVgpu<Vec<u64>>, gaddr: u64, gpa: u64) -> u64 {
        let pte = Pte::new(gpa, 0).unwrap().encode();
        let off = crate::sim::regs::GGTT_OFFSET + gaddr / PAGE_SIZE * 8;
        match v.region_write(REGION_BAR0, off, &pte.to_le_bytes()) {
            Ok(crate::sim::vgpu::Event::GgttUpdate { index, .. }) => index as u64,
            other => panic!("no GGTT update: {other:?}"),
        }
    }

    /// A context at guest 1 MiB whose ring (next page) calls a GGTT batch
    /// that stores `value` at graphics address `target`; returns the GGTT
    /// entries written.
    fn submit_store(
        v: &mut SimVgpu<Vec<u64>>,
        mem: &mut Mem,
        value: u32,
        target_page: u64,
    ) -> Vec<u64> {
        let g = SimVgpu::partition(v).base;
        let lrc = 1 << 20;
        let mut written: Vec<u64> = (0..4)
            .map(|i| map_ggtt(v, g + i * PAGE_SIZE, lrc + i * PAGE_SIZE))
            .collect();
        written.push(map_ggtt(v, g + 8 * PAGE_SIZE, target_page * PAGE_SIZE));
        let ring = (g + PAGE_SIZE) as u32;
        let batch = g + 2 * PAGE_SIZE;
        put(mem, lrc, &[LRC_MAGIC, ring, 4096, 0, 16, 0, 0]);
        put(
            mem,
            lrc + PAGE_SIZE,
            &[(0x31 << 23) | 1, batch as u32, (batch >> 32) as u32, 0],
        );
        let target = g + 8 * PAGE_SIZE + 64;
        put(
            mem,
            lrc + 2 * PAGE_SIZE,
            &[
                (0x20 << 23) | (1 << 22) | 2,
                target as u32,
                (target >> 32) as u32,
                value,
                0x0a << 23,
            ],
        );
        v.submit(g | 1);
        written
    }

    fn migrate(a: &SimVgpu<Vec<u64>>, b: &mut SimVgpu<Vec<u64>>, mem: &mut Mem) -> Restored {
        let mut img = vec![0u8; a.state_len()];
        let n = a.save_state(&mut img).unwrap();
        assert_eq!(n, a.state_len(), "state_len is exact");
        let limits = stream::Limits {
            max_total: 1 << 24,
            max_section: 1 << 24,
        };
        let hdr = stream::validate(&img[..n], &limits).unwrap();
        Provider::restore_state(b, &hdr, &img[..n], mem).unwrap()
    }

    #[test]
    fn sim_migrates_through_the_trait_with_remap() {
        let mut rng = Rng::new(5);
        for _ in 0..20 {
            let mut mem = Mem(vec![0; MEM]);
            let mut a = vgpu(64 << 20);
            let value = rng.next_u64() as u32;
            let page = 512 + rng.below(1024);
            submit_store(&mut a, &mut mem, value, page);
            a.quiesce();
            assert!(a.is_quiesced() && a.take_submission().is_none(), "quiesced");
            let mut frames = Vec::new();
            a.for_each_writable_frame(&mut |f| frames.push(f));
            assert!(frames.contains(&page));

            let mut b = vgpu(192 << 20);
            let r = migrate(&a, &mut b, &mut mem);
            assert_eq!(r.src, Some(SimVgpu::partition(&a)));
            assert!(
                r.remapped >= 2,
                "descriptor, ring and batch addresses moved"
            );
            assert_eq!(Provider::pending_workloads(&b), 1);
            assert!(b.resume());
            let desc = b.take_submission().unwrap();
            b.execute(desc, &mut mem, &mut |_| {}).unwrap();
            let off = (page * PAGE_SIZE + 64) as usize;
            assert_eq!(mem.0[off..off + 4], value.to_le_bytes(), "store landed");
        }
    }

    #[test]
    fn a_context_submitted_twice_is_remapped_once() {
        // The synthetic workload keeps up to two submissions of the same
        // context pending; both descriptors name one context image.
        let mut mem = Mem(vec![0; MEM]);
        let mut a = vgpu(64 << 20);
        submit_store(&mut a, &mut mem, 0x600d, 700);
        let desc = a.pending()[0];
        a.submit(desc);
        assert_eq!(Provider::pending_workloads(&a), 2);
        let mut b = vgpu(192 << 20);
        migrate(&a, &mut b, &mut mem);
        assert!(b.resume());
        while let Some(d) = b.take_submission() {
            b.execute(d, &mut mem, &mut |_| {}).unwrap();
        }
        let off = (700 * PAGE_SIZE + 64) as usize;
        assert_eq!(mem.0[off..off + 4], 0x600du32.to_le_bytes());
    }

    #[test]
    fn restore_refuses_foreign_images_without_change() {
        let mut mem = Mem(vec![0; MEM]);
        let mut a = vgpu(64 << 20);
        submit_store(&mut a, &mut mem, 7, 600);
        let mut img = vec![0u8; a.state_len()];
        let n = a.save_state(&mut img).unwrap();
        let limits = stream::Limits {
            max_total: 1 << 24,
            max_section: 1 << 24,
        };
        let mut hdr = stream::validate(&img[..n], &limits).unwrap();
        let mut b = vgpu(192 << 20);
        let before = (*b.regs(), b.ggtt().to_vec());
        hdr.provider = PROVIDER_GVT;
        assert!(matches!(
            Provider::restore_state(&mut b, &hdr, &img[..n], &mut mem),
            Err(RestoreError::WrongDevice { .. })
        ));
        assert_eq!((*b.regs(), b.ggtt().to_vec()), before);
        // A pending context whose batch points outside the source partition.
        hdr.provider = PROVIDER_SIM;
        put(&mut mem, (1 << 20) + 2 * PAGE_SIZE + 4, &[0x10]);
        let snapshot = mem.0.clone();
        assert!(matches!(
            Provider::restore_state(&mut b, &hdr, &img[..n], &mut mem),
            Err(RestoreError::Remap(_))
        ));
        assert_eq!(*b.regs(), before.0, "registers rolled back");
        assert!(b.ggtt() == &before.1[..], "GGTT rolled back");
        assert!(mem.0 == snapshot, "guest memory untouched");
    }

    const KIB64: usize = 64 << 10;

    fn vgpu_of(ty: usize, slot: u64) -> SimVgpu<Vec<u64>> {
        let ty = &TYPES[ty];
        let p = Partition::new(slot * ty.ggtt_size, ty.ggtt_size).unwrap();
        SimVgpu::new(ty, p, vec![0; p.entries() as usize]).unwrap()
    }

    /// The stream header names the vGPU type by its index in [`TYPES`]:
    /// a destination of another type must see another index.
    #[test]
    fn every_type_has_its_own_index() {
        for i in 0..TYPES.len() {
            assert_eq!(usize::from(Provider::type_index(&vgpu_of(i, 1))), i);
        }
    }

    fn save(v: &SimVgpu<Vec<u64>>) -> Vec<u8> {
        let mut img = vec![0u8; v.state_len()];
        let n = v.save_state(&mut img).unwrap();
        img.truncate(n);
        img
    }

    /// What the destination restores from `stream`, built as the module
    /// does (resolve, then apply a delta).
    fn resolved(stream: &[u8], limits: &stream::Limits, ty: u16) -> Vec<u8> {
        match stream::resolve(stream, limits, PROVIDER_SIM, ty).unwrap() {
            stream::Resolved::Full { image, .. } => image.to_vec(),
            stream::Resolved::Delta { base, delta } => {
                let mut out = vec![0u8; delta.result_len()];
                delta.apply(base, &mut out, limits).unwrap();
                out
            }
        }
    }

    #[test]
    fn the_image_says_where_its_ggtt_entries_are() {
        let mut v = vgpu_of(1, 1);
        let g = SimVgpu::partition(&v).base;
        let i = map_ggtt(&mut v, g + 77 * PAGE_SIZE, 0x1234_5000);
        let img = save(&v);
        let span = v.ggtt_in_image();
        assert_eq!(span.entries, v.ggtt().len());
        let at = span.offset + 8 * i as usize;
        let raw = u64::from_le_bytes(img[at..at + 8].try_into().unwrap());
        assert_eq!((i, raw), (77, v.ggtt()[77]));
        assert_eq!(
            span.offset + 8 * span.entries + 12,
            img.len(),
            "then the end"
        );
    }

    /// For every sim type: a pre-copy image, GGTT writes and a submission
    /// while running, the stop; the stop-copy delta (entries from the write
    /// path's marks) is at most 64 KiB, and base plus delta restores what
    /// the full stop-copy image restores, remapped to another partition.
    #[test]
    fn stop_copy_delta_of_every_type_is_small_and_restores_the_full_state() {
        for (ty, t) in TYPES.iter().enumerate() {
            let mut mem = Mem(vec![0; MEM]);
            let mut a = vgpu_of(ty, 1);
            let g = SimVgpu::partition(&a).base;
            for i in 0..64 {
                map_ggtt(&mut a, g + (16 + i) * PAGE_SIZE, (2048 + i) * PAGE_SIZE);
            }
            let base = save(&a);
            let words = vec![0; stream::ChangedEntries::<Vec<u64>>::words_for(a.ggtt().len())];
            let mut changed = stream::ChangedEntries::new(a.ggtt_in_image(), words).unwrap();
            let idle_full = save(&a);
            let mut out = vec![0u8; a.state_len()];
            let n =
                stream::delta::write_delta(&base, &idle_full, Some(&changed), &mut out).unwrap();
            assert!(n <= 128, "{}: idle delta {n} bytes", t.name);
            for i in submit_store(&mut a, &mut mem, 0xbeef, 900) {
                changed.mark(i);
            }
            a.quiesce();
            let full = save(&a);
            let n = stream::delta::write_delta(&base, &full, Some(&changed), &mut out).unwrap();
            assert!(n <= KIB64, "{}: {n} bytes", t.name);
            let limits = stream::Limits::for_state_len(a.state_len());
            let stream = [&base[..], &out[..n]].concat();
            let got = resolved(&stream, &limits, Provider::type_index(&a));
            assert!(got == full, "{}: delta result differs", t.name);
            let mut b = vgpu_of(ty, 2);
            let hdr = stream::validate(&got, &limits).unwrap();
            let r = Provider::restore_state(&mut b, &hdr, &got, &mut mem).unwrap();
            assert!(r.remapped >= 2);
            assert!(b.resume());
            let desc = b.take_submission().unwrap();
            b.execute(desc, &mut mem, &mut |_| {}).unwrap();
            let off = (900 * PAGE_SIZE + 64) as usize;
            assert_eq!(mem.0[off..off + 4], 0xbeefu32.to_le_bytes(), "store landed");
        }
    }

    #[test]
    fn shadow_events_map_to_tracker_updates() {
        let pte = Pte::new(0x1234_5000, 0).unwrap().encode();
        assert_eq!(
            tracker_update(&ShadowEvent::GgttWrite {
                index: 3,
                old: 0,
                new: pte
            }),
            Some(TrackRange {
                first: 0x12345,
                count: 1
            })
        );
        assert_eq!(
            tracker_update(&ShadowEvent::GgttWrite {
                index: 3,
                old: pte,
                new: 0
            }),
            None,
            "an unmap keeps tracking, adds nothing"
        );
        assert_eq!(
            tracker_update(&ShadowEvent::Pinned {
                gfn: 10,
                pages: 1 << 40
            }),
            Some(TrackRange {
                first: 10,
                count: MAX_EVENT_PAGES
            })
        );
        assert_eq!(
            tracker_update(&ShadowEvent::Pinned { gfn: 10, pages: 0 }),
            None
        );
        assert_eq!(
            tracker_update(&ShadowEvent::Unpinned { gfn: 10, pages: 4 }),
            None
        );
        assert_eq!(
            tracker_update(&ShadowEvent::PpgttCreate { root: 0x1000 }),
            None
        );
        assert_eq!(
            tracker_update(&ShadowEvent::GpuWrote { gfn: 9 }),
            Some(TrackRange { first: 9, count: 1 })
        );
    }

    /// A patched final delta ([`Provider::save_delta`]) restores the
    /// image [`Provider::save_state`] writes, the GGTT changes marked as
    /// the migration layer marks them, the registers changed by a run.
    #[test]
    fn a_patched_final_image_is_the_one_the_sim_saves() {
        use crate::stream::{digest, ChangedEntries, DeltaView};
        let limits = stream::Limits {
            max_total: 1 << 24,
            max_section: 1 << 24,
        };
        let mut mem = Mem(vec![0; MEM]);
        let mut a = vgpu(64 << 20);
        let mut base = vec![0u8; a.state_len()];
        let n = a.save_state(&mut base).unwrap();
        base.truncate(n);
        let span = a.ggtt_in_image();
        let words = vec![0; ChangedEntries::<Vec<u64>>::words_for(span.entries)];
        let mut changed = ChangedEntries::new(span, words).unwrap();
        for i in 0..40u64 {
            let g = a.partition().base + (600 + 7 * i) * PAGE_SIZE;
            changed.mark(map_ggtt(&mut a, g, 0x20_0000 + i * PAGE_SIZE));
        }
        for i in submit_store(&mut a, &mut mem, 0x1234, 700) {
            changed.mark(i);
        }
        a.quiesce();
        let mut full = vec![0u8; a.state_len()];
        let n = a.save_state(&mut full).unwrap();
        full.truncate(n);
        let mut scratch = vec![0u8; a.state_len()];
        let mut out = vec![0u8; a.state_len()];
        let (n, result) = a
            .save_delta(&base, Some(&changed), &mut scratch, &mut out, false)
            .unwrap();
        assert_eq!(Ok(result), digest(&full));
        // The GGTT is 128 KiB of the image; the delta is the changes.
        assert!(n < 2048, "{n}");
        let v = DeltaView::parse(&out[..n]).unwrap();
        let mut got = vec![0u8; v.result_len()];
        v.apply(&base, &mut got, &limits).unwrap();
        assert_eq!(got, full);
    }
}

// SPDX-License-Identifier: GPL-2.0

//! KUnit suites: the `core`-only logic of [`crate::gmig_core`], run again
//! inside the kernel (same code as the host tests, kernel compiler flags,
//! overflow checks and all). The suites run when gmig.ko is loaded.

use kernel::prelude::*;

#[kunit_tests(gmig_core)]
mod tests {
    use super::*;
    use crate::gmig_core::{
        gtt::{Partition, Pte},
        hash::page_hash,
        mem::{GuestMem, MemFault},
        planner::{decide, Action, DirtySource, Phase, Policy},
        provider::Provider,
        sim::{
            exec::LRC_MAGIC,
            remap::remap_pending,
            vgpu::{Event, SimVgpu, TYPES},
        },
        slots::{Slots, SLOT_SIZE},
        stream::{self, crc32c, ChangedEntries, Resolved},
        tracker::{HashTracker, Unhashed},
        writeset::{words_for, WriteSet},
    };

    /// Guest memory of a few pages in a kernel vector.
    struct KMem(KVVec<u8>);

    impl GuestMem for KMem {
        fn read(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), MemFault> {
            let s = usize::try_from(gpa).map_err(|_| MemFault { gpa })?;
            let src = self.0.get(s..s + buf.len()).ok_or(MemFault { gpa })?;
            buf.copy_from_slice(src);
            Ok(())
        }
        fn write(&mut self, gpa: u64, buf: &[u8]) -> Result<(), MemFault> {
            let s = usize::try_from(gpa).map_err(|_| MemFault { gpa })?;
            let dst = self.0.get_mut(s..s + buf.len()).ok_or(MemFault { gpa })?;
            dst.copy_from_slice(buf);
            Ok(())
        }
    }

    fn put(mem: &mut KMem, gpa: u64, dws: &[u32]) -> Result {
        for (i, d) in dws.iter().enumerate() {
            mem.write(gpa + 4 * i as u64, &d.to_le_bytes())
                .map_err(|_| EINVAL)?;
        }
        Ok(())
    }

    fn read_page(mem: &KMem, g: u64, b: &mut [u8; 4096]) -> Result {
        let s = usize::try_from(g * 4096)?;
        b.copy_from_slice(mem.0.get(s..s + 4096).ok_or(EINVAL)?);
        Ok(())
    }

    fn vgpu_at(base: u64) -> Result<SimVgpu<KVVec<u64>>> {
        let ty = &TYPES[0];
        let p = Partition::new(base, ty.ggtt_size).ok_or(EINVAL)?;
        let n = usize::try_from(p.entries())?;
        let mut v = SimVgpu::new(ty, p, KVVec::from_elem(0u64, n, GFP_KERNEL)?).ok_or(EINVAL)?;
        for i in 0..64u64 {
            let pte = Pte::new(i * 4096, 0).ok_or(EINVAL)?.encode();
            v.write_ggtt_entry(base + i * 4096, pte);
        }
        Ok(v)
    }

    #[test]
    fn partitions_never_share_a_base() -> Result {
        let mut slots = Slots::new();
        let a = slots.alloc(SLOT_SIZE).ok_or(ENOSPC)?;
        let b = slots.alloc(SLOT_SIZE).ok_or(ENOSPC)?;
        assert_ne!(a, b);
        assert_ne!(a, 0);
        assert!(slots.free(a, SLOT_SIZE));
        assert!(!slots.free(a, SLOT_SIZE));
        Ok(())
    }

    #[test]
    fn crc32c_and_stream_round_trip() -> Result {
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        let mut buf = KVVec::from_elem(0u8, 512, GFP_KERNEL)?;
        let mut w = stream::Writer::new(&mut buf, 1, 0).map_err(|_| EINVAL)?;
        stream::ImageSink::section(&mut w, 1, stream::FLAG_MANDATORY, 16, |p| p.fill(7))
            .map_err(|_| EINVAL)?;
        let n = w.finish().map_err(|_| EINVAL)?;
        let lim = stream::Limits {
            max_total: 4096,
            max_section: 4096,
        };
        assert!(stream::validate(&buf[..n], &lim).is_ok());
        buf[n / 2] ^= 1;
        assert!(stream::validate(&buf[..n], &lim).is_err());
        Ok(())
    }

    fn save(v: &SimVgpu<KVVec<u64>>) -> Result<KVVec<u8>> {
        let mut img = KVVec::from_elem(0u8, v.state_len(), GFP_KERNEL)?;
        let n = v.save_state(&mut img).map_err(|_| EINVAL)?;
        img.truncate(n);
        Ok(img)
    }

    #[test]
    fn stop_copy_delta_restores_the_full_image() -> Result {
        let base_at = 64 << 20;
        let mut v = vgpu_at(base_at)?;
        let base = save(&v)?;
        let span = v.ggtt_in_image();
        let words = ChangedEntries::<KVVec<u64>>::words_for(span.entries);
        let words = KVVec::from_elem(0u64, words, GFP_KERNEL)?;
        let mut changed = ChangedEntries::new(span, words).ok_or(EINVAL)?;
        let pte = Pte::new(0x4242_0000, 0).ok_or(EINVAL)?.encode();
        if let Event::GgttUpdate { index, .. } = v.write_ggtt_entry(base_at + 9 * 4096, pte) {
            changed.mark(index as u64);
        }
        let full = save(&v)?;
        let mut incoming = KVVec::from_elem(0u8, base.len() + full.len(), GFP_KERNEL)?;
        incoming[..base.len()].copy_from_slice(&base);
        let out = &mut incoming[base.len()..];
        let n =
            stream::delta::write_delta(&base, &full, Some(&changed), out).map_err(|_| EINVAL)?;
        assert!(n <= 256);
        incoming.truncate(base.len() + n);
        let lim = stream::Limits::for_state_len(v.state_len());
        let Ok(Resolved::Delta { base: b, delta }) =
            stream::resolve(&incoming, &lim, 1, v.type_index())
        else {
            return Err(EINVAL);
        };
        let mut img = KVVec::from_elem(0u8, delta.result_len(), GFP_KERNEL)?;
        assert!(delta.apply(b, &mut img, &lim).is_ok());
        assert!(img[..] == full[..]);
        // Over another base (the new image itself): refused by name.
        assert_eq!(delta.check_base(&full), Err(stream::DeltaError::WrongBase));
        Ok(())
    }

    #[test]
    fn tracker_sees_a_changed_page() -> Result {
        let mut page = KVVec::from_elem(0u8, 4096, GFP_KERNEL)?;
        let mut t = HashTracker::new(0, 42, KVVec::from_elem(0u64, 8, GFP_KERNEL)?);
        t.track(3).map_err(|_| EINVAL)?;
        // A never-hashed page counts as changed.
        assert!(t.check(3, &page, true).map_err(|_| EINVAL)?);
        assert!(!t.check(3, &page, true).map_err(|_| EINVAL)?);
        page[100] = 1;
        assert!(t.check(3, &page, true).map_err(|_| EINVAL)?);
        assert_ne!(page_hash(1, &page), page_hash(2, &page));
        Ok(())
    }

    #[test]
    fn streamer_write_set_bounds_the_rehash() -> Result {
        // A store runs through the streamer with a write set recording:
        // the candidate re-hash finds the stored page and the context
        // image (head write-back) and reads no other tracked page.
        let a = 64u64 << 20;
        let mut mem = KMem(KVVec::from_elem(0u8, 64 * 4096, GFP_KERNEL)?);
        let ga = a as u32;
        put(&mut mem, 0, &[LRC_MAGIC, ga + 4096, 8192, 0, 16, 0, 0])?;
        put(
            &mut mem,
            4096,
            &[(0x20 << 23) | (1 << 22) | 2, ga + 0x8000, 0, 0x5eed],
        )?;
        let mut t = HashTracker::new(0, 7, KVVec::from_elem(0u64, 64, GFP_KERNEL)?);
        for g in 0..64 {
            t.track(g).map_err(|_| EINVAL)?;
        }
        let mut scratch = [0u8; 4096];
        t.scan_new(&mut scratch, |g, b| read_page(&mem, g, b));
        let bits = KVVec::from_elem(0u64, words_for(64), GFP_KERNEL)?;
        let mut ws = WriteSet::new(0, 64, bits).ok_or(EINVAL)?;
        let mut v = vgpu_at(a)?;
        v.submit(a);
        let d = v.take_submission().ok_or(EINVAL)?;
        v.execute(d, &mut mem, &mut ws).map_err(|_| EINVAL)?;
        assert!(ws.contains(8) && ws.contains(0) && !ws.is_unbounded());
        let mut changed = [u64::MAX; 4];
        let mut n = 0usize;
        let st = t.scan_candidates(
            &ws,
            0..64,
            Unhashed::Report,
            &mut scratch,
            |g, b| read_page(&mem, g, b),
            |g| {
                if let Some(c) = changed.get_mut(n) {
                    *c = g;
                }
                n += 1;
            },
        );
        assert_eq!(n, 2);
        assert_eq!(changed[..2], [0, 8]);
        assert_eq!(st.rehashed, 2);
        assert_eq!(st.skipped, 62);
        Ok(())
    }

    #[test]
    fn planner_decisions() -> Result {
        let (o, h, a) = (Policy::Oneshot, DirtySource::Hash, DirtySource::All);
        assert_eq!(decide(o, h, Phase::PreCopy), Action::Snapshot);
        assert_eq!(decide(o, h, Phase::StopCopy), Action::Changed);
        assert_eq!(decide(o, a, Phase::StopCopy), Action::All);
        assert_eq!(decide(Policy::Off, h, Phase::PreCopy), Action::Nothing);
        Ok(())
    }

    #[test]
    fn streamer_stores_and_remap_moves_it() -> Result {
        let (a, b) = (64u64 << 20, 128u64 << 20);
        let mut mem = KMem(KVVec::from_elem(0u8, 64 * 4096, GFP_KERNEL)?);
        let ga = a as u32;
        put(&mut mem, 0, &[LRC_MAGIC, ga + 4096, 8192, 0, 16, 0, 0])?;
        put(
            &mut mem,
            4096,
            &[(0x20 << 23) | (1 << 22) | 2, ga + 0x8000, 0, 0x5eed],
        )?;
        let mut v = vgpu_at(a)?;
        v.submit(a);
        // Restored at `b` before running: remap, then execute there.
        let mut w = vgpu_at(b)?;
        w.submit(v.pending()[0]);
        let (src, dst) = (v.partition(), w.partition());
        let n = remap_pending(&mut w, src, dst, &mut mem).map_err(|_| EINVAL)?;
        assert_eq!(n, 3);
        let d = w.take_submission().ok_or(EINVAL)?;
        w.execute(d, &mut mem, &mut |_| {}).map_err(|_| EINVAL)?;
        let mut got = [0u8; 4];
        mem.read(0x8000, &mut got).map_err(|_| EINVAL)?;
        assert_eq!(u32::from_le_bytes(got), 0x5eed);
        Ok(())
    }
}

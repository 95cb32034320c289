// SPDX-License-Identifier: GPL-2.0

//! KUnit suite of the gvt provider's glue: the hooks' record as the
//! module allocates it, the register image, a lent page's hash, the
//! scanner hook's address moves.

use kernel::prelude::*;

#[kunit_tests(gmig_gvt)]
mod tests {
    use kernel::{ffi::c_void, prelude::*};

    use super::super::{
        hooks::{new_writes, reg_at, MAX_OUTSIDE_RANGES},
        lent::{hash_lent, LentRun},
    };
    use crate::gmig_core::{
        cmd::Mode,
        gvt::{self, AuditMap, GvtLayout},
        mem::{GuestMem, MemFault},
        provider::tracker_update,
    };
    use crate::gmig_core::{
        gtt::Pte,
        provider::TrackRange,
        writeset::{words_for, WriteSet},
    };

    const MIB: u64 = 1 << 20;

    /// Guest memory nothing can be read from.
    struct NoMem;

    impl GuestMem for NoMem {
        fn read(&mut self, gpa: u64, _buf: &mut [u8]) -> Result<(), MemFault> {
            Err(MemFault { gpa })
        }

        fn write(&mut self, gpa: u64, _buf: &[u8]) -> Result<(), MemFault> {
            Err(MemFault { gpa })
        }
    }

    fn layouts() -> Result<(GvtLayout, GvtLayout)> {
        let a = GvtLayout::new((32 * MIB, 64 * MIB), (512 * MIB, 384 * MIB), 4).ok_or(EINVAL)?;
        let b = GvtLayout::new((96 * MIB, 64 * MIB), (896 * MIB, 384 * MIB), 4).ok_or(EINVAL)?;
        Ok((a, b))
    }

    #[test]
    fn ggtt_hook_becomes_a_tracker_update() -> Result {
        let (l, _) = layouts()?;
        let pte = Pte::new(0x4242_0000, 0).ok_or(EINVAL)?.encode();
        let ev = gvt::ggtt_write_event(&l, l.hidden.base / 4096, 0, pte).ok_or(EINVAL)?;
        assert_eq!(
            tracker_update(&ev),
            Some(TrackRange {
                first: 0x42420,
                count: 1
            })
        );
        assert!(gvt::ggtt_write_event(&l, 0, 0, pte).is_none());
        Ok(())
    }

    #[test]
    fn register_image_dwords() -> Result {
        let regs = [u64::from_ne_bytes([1, 0, 0, 0, 2, 0, 0, 0])];
        assert_eq!(reg_at(&regs, 0), Some(u32::from_ne_bytes([1, 0, 0, 0])));
        assert_eq!(reg_at(&regs, 4), Some(u32::from_ne_bytes([2, 0, 0, 0])));
        assert_eq!(reg_at(&regs, 8), None);
        Ok(())
    }

    /// The hooks' record as `create()` allocates it, fed as the hooks feed
    /// it: a GGTT store from the ring narrows the report to its frame,
    /// the context image and the render engine's status page; a draw
    /// makes it unbounded.
    #[test]
    fn scanned_store_narrows_the_report() -> Result {
        let (l, _) = layouts()?;
        let mut w = new_writes(l)?;
        let first = l.aperture.base / 4096;
        for i in 0..64 {
            w.ggtt_write(first + i, ((0x100 + i) << 12) | 1);
        }
        let ap = u32::try_from(l.aperture.base)?;
        let sdi = [(0x20 << 23) | (1 << 22) | 2, ap + 3 * 4096, 0, 1];
        w.scanned(&sdi, true, &mut NoMem);
        w.queued(0);
        w.completed(0, l.aperture.base + 32 * 4096, true);
        // The render engine's HWS_PGA (byte 0x2080) at page 60.
        let mut regs = KVVec::from_elem(0u64, 0x2100 / 8, GFP_KERNEL)?;
        let mut hws = [0u8; 8];
        hws[..4].copy_from_slice(&(ap + 60 * 4096).to_ne_bytes());
        *regs.get_mut(0x2080 / 8).ok_or(EINVAL)? = u64::from_ne_bytes(hws);
        let reg = |off: usize| reg_at(&regs, off);
        let mut ws = WriteSet::new(0, 512, KVVec::from_elem(0u64, words_for(512), GFP_KERNEL)?)
            .ok_or(EINVAL)?;
        w.sync(Some(&reg), &mut ws);
        assert!(!ws.is_unbounded());
        assert!(ws.contains(0x103) && ws.contains(0x120) && ws.contains(0x13c));
        assert_eq!(ws.len(), 1 + 22 + 1);
        ws.clear();
        w.scanned(&[0x7b00_0005, 0, 3, 0, 1, 0, 0], true, &mut NoMem);
        w.queued(0);
        w.completed(0, l.aperture.base + 32 * 4096, true);
        w.sync(Some(&reg), &mut ws);
        assert!(ws.is_unbounded());
        Ok(())
    }

    /// kvmgt's OpRegion answers, as `create()` allocates the record: in
    /// the next report, unbounded or not; more places than it holds make
    /// the sync say frames were lost.
    #[test]
    fn kvmgt_writes_outside_workloads_are_reported() -> Result {
        let (l, _) = layouts()?;
        let mut w = new_writes(l)?;
        let mut ws = WriteSet::new(0, 512, KVVec::from_elem(0u64, words_for(512), GFP_KERNEL)?)
            .ok_or(EINVAL)?;
        w.queued(0);
        w.kvmgt_wrote(0x150 * 4096 + 0x200, 4);
        w.kvmgt_wrote(0x150 * 4096 + 0x204, 4);
        assert!(w.sync(None, &mut ws));
        assert!(ws.is_unbounded() && ws.contains(0x150));
        let mut n = 0u64;
        while n <= u64::try_from(MAX_OUTSIDE_RANGES)? {
            w.kvmgt_wrote(2 * n * 4096, 4);
            n += 1;
        }
        assert!(!w.sync(None, &mut ws));
        Ok(())
    }

    /// kvmgt's callback of `read_pinned` hashes the page it is lent as
    /// the copy path hashes the same bytes, and ignores a frame past the
    /// run.
    #[test]
    fn a_lent_page_hashes_as_its_copy() -> Result {
        use crate::gmig_core::hash::page_hash;
        use kernel::page::Page;

        let page = Page::alloc_page(GFP_KERNEL)?;
        let mut bytes = KVVec::from_elem(0u8, 4096, GFP_KERNEL)?;
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(31) ^ 0x5a;
        }
        // SAFETY: `bytes` holds 4096 readable bytes, the page 4096.
        unsafe { page.write_raw(bytes.as_ptr(), 0, 4096)? };
        let mut out = [None; 3];
        let mut run = LentRun {
            seed: 7,
            out: &mut out,
            mask: 0,
        };
        let data = (&raw mut run).cast::<c_void>();
        // SAFETY: `data` is `run`, used by nothing else during the calls;
        // `page` is allocated (so valid) for longer than they take.
        unsafe {
            hash_lent(data, 1, page.as_ptr());
            hash_lent(data, 3, page.as_ptr());
        }
        assert_eq!(run.mask, 0b10);
        assert_eq!(out, [None, Some(page_hash(7, &bytes)), None]);
        Ok(())
    }

    #[test]
    fn scanner_hook_moves_a_store_to_the_destination() -> Result {
        let (src, dst) = layouts()?;
        let map = AuditMap::migrated(src, dst).ok_or(EINVAL)?;
        let gma = src.aperture.base + 0x40;
        let mut cmd = [(0x20 << 23) | (1 << 22) | 2, u32::try_from(gma)?, 0, 7];
        assert_eq!(gvt::patch_command(&mut cmd, Mode::EXECLIST, &map), Ok(1));
        assert_eq!(u64::from(cmd[1]), dst.aperture.base + 0x40);
        cmd[1] = 0x1000;
        assert!(gvt::patch_command(&mut cmd, Mode::EXECLIST, &map).is_err());
        assert_eq!(cmd[1], 0x1000);
        Ok(())
    }
}

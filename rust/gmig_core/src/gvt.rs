// SPDX-License-Identifier: GPL-2.0

//! The GVT-g provider's pure parts: a vGPU's graphics memory layout, the
//! kvmgt companion hooks' events as [`ShadowEvent`]s, the state image
//! layout, and the graphics address translation the command scanner's
//! audit hook applies to resubmitted workloads.
//!
//! A GVT-g vGPU owns two slices of the global GGTT: low graphics memory in
//! the CPU-mappable aperture and high graphics memory above it (GVT's
//! `vgpu_aperture_gmadr_base()` / `vgpu_hidden_gmadr_base()`), plus a range
//! of fence registers. A vGPU restored on a host where these slices sit
//! elsewhere keeps using the source's graphics addresses (the guest driver
//! ballooned the rest of the GGTT away at boot), so every address it hands
//! the GPU afterwards is moved from the source slice to the same offset of
//! the destination slice ([`GvtLayout::rebase`]).
//!
//! State image (a [`super::stream`] image, provider [`PROVIDER_GVT`]):
//!
//! ```text
//! GvtVregs     virtual MMIO registers (GVT's vreg page image)
//! GvtGgtt      aperture base u64 | size u64 | hidden base u64 | size u64 |
//!              guest GGTT entries u64: aperture pages, then hidden pages
//! GvtFences    count u32 | 0 u32 | count fence values u64
//! GvtExeclist  kvmgt's execlist image (opaque, versioned by kvmgt)
//! GvtWorkloads count u32 | 0 u32 | the workloads queued and not run, in
//!              queue order (see [`pending`]); only in an image of a
//!              stopped vGPU with some
//! ```
//!
//! The PCI configuration space is not in the image: the VMM migrates it
//! itself (QEMU's vfio-pci saves and reloads it through the config
//! region). [`decode_image`] checks every section against the
//! destination vGPU before anything is applied.

pub mod audit;
pub mod events;
pub mod gma;
pub mod image;
pub mod layout;
pub mod narrow;
pub mod pending;

pub use audit::*;
pub use events::*;
pub use gma::*;
pub use image::*;
pub use layout::*;
pub use narrow::*;
pub use pending::*;

use super::gtt::Partition;
use super::mem::GuestMem;
use super::provider::{Provider, RestoreError, Restored, MAX_EVENT_PAGES, PROVIDER_GVT};
use super::stream::{self, EntrySpan, ImageSink, Section, StreamError};

/// Version of the companion interface gmig speaks
/// (`INTEL_GVT_COMPANION_VERSION` in the kvmgt patch series).
pub const COMPANION_VERSION: u32 = 1;

/// What the gvt provider needs from its environment: kvmgt's companion
/// services and the pin hooks' record (the module: the kvmgt exports and
/// its per-vGPU hook state; host tests: a fake).
pub trait GvtHost: StateSource {
    /// Stops the vGPU's scheduling; the workloads on the hardware complete
    /// first (`intel_gvt_companion_stop_schedule()`).
    fn stop_schedule(&mut self);
    /// Restarts it (`intel_gvt_companion_start_schedule()`).
    fn start_schedule(&mut self);
    /// Whether kvmgt would apply `data` to `part`, with the audit map of
    /// the restore to come (`intel_gvt_companion_check_state()`); changes
    /// nothing.
    fn check(&mut self, part: Part, data: &[u8], map: &AuditMap) -> bool;
    /// With scheduling restarted to drain the queues (the guest's vCPUs
    /// stopped, so they are finite): waits until at most `cap` workloads
    /// are pending, for a bounded time; returns how many are pending then.
    /// Never drops one: GVT-g runs them, and what they write is reported
    /// (the stop-copy re-hash comes after).
    fn wait_pending(&mut self, cap: usize) -> usize {
        let _ = cap;
        self.pending_count()
    }
    /// Applies `data` (the bytes [`StateSource::save`] gave on the source)
    /// to `part`; `false` if kvmgt failed to (it then reset the vGPU).
    fn restore(&mut self, part: Part, data: &[u8]) -> bool;
    /// Calls `f(gfn, pages)` for every range of guest frames pinned now
    /// for the GPU (a shadow GGTT or PPGTT entry maps them).
    fn for_each_pinned(&self, f: &mut dyn FnMut(u64, u64));
    /// The command scanner hook and the `map_gma` hook must translate
    /// addresses with `map` from now on.
    fn set_audit(&mut self, map: AuditMap);
    /// Re-creates `pending` (checked against the audit map set before) in
    /// their order, as if the guest submitted them again
    /// (`intel_gvt_companion_resubmit_workloads()`); `false` if kvmgt
    /// refused them (it then queued none).
    fn resubmit(&mut self, pending: &PendingList<'_>) -> bool;
    /// The vGPU was reset or closed, or kvmgt reset it after it failed to
    /// apply a restore: kvmgt reset its GGTT and dropped its queued
    /// workloads without reporting them (the hooks' record of them,
    /// [`GvtWrites`], starts over).
    fn vgpu_reset(&mut self) {}
}

/// A [`StateSource`] whose pending workloads are zero records: an image
/// of the right length for [`Provider::save_state_estimate`] without
/// asking kvmgt for the records of a running vGPU.
struct Sizing<'a, S>(&'a S);

impl<S: StateSource> StateSource for Sizing<'_, S> {
    fn save(&self, part: Part, out: &mut [u8]) -> bool {
        self.0.save(part, out)
    }

    fn save_pending(&self, out: &mut [u8]) -> bool {
        out.fill(0);
        true
    }
}

/// A GVT-g vGPU as the migration layer sees it ([`Provider`]).
///
/// gmig runs no command streamer on GVT-g: what the GPU may write comes
/// from the command scanner hook ([`GvtWrites`], in the module glue), the
/// reachable set from the pin hooks.
pub struct GvtVgpu<H> {
    /// kvmgt's services and the hook state.
    pub host: H,
    layout: GvtLayout,
    /// The layout the guest believes it is at: `layout` until restored
    /// from another, then the original source's (carried through chained
    /// migrations and saved as the image's source layout).
    guest: GvtLayout,
    sizes: StateSizes,
    vgpu_type: u16,
    quiesced: bool,
}

impl<H: GvtHost> GvtVgpu<H> {
    /// A vGPU of `layout` whose opaque parts have `sizes` (as kvmgt
    /// reports them); `None` if its image would not fit a stream.
    pub fn new(host: H, layout: GvtLayout, sizes: StateSizes, vgpu_type: u16) -> Option<Self> {
        image_len(&layout, &sizes)?;
        Some(Self {
            host,
            layout,
            guest: layout,
            sizes,
            vgpu_type,
            quiesced: false,
        })
    }

    /// The vGPU's graphics memory and fences.
    pub fn layout(&self) -> &GvtLayout {
        &self.layout
    }

    /// kvmgt reset the vGPU (a reset, a close, or a restore it failed to
    /// apply): the guest starts over at this vGPU's own layout, so the
    /// audit map goes back to the identity, and the hooks' record of
    /// kvmgt's writes starts over.
    fn forget_restore(&mut self) {
        self.guest = self.layout;
        self.host.set_audit(AuditMap::identity(self.layout));
        self.host.vgpu_reset();
    }
}

impl<H: GvtHost> Provider for GvtVgpu<H> {
    fn id(&self) -> u16 {
        PROVIDER_GVT
    }

    fn type_index(&self) -> u16 {
        self.vgpu_type
    }

    fn type_name(&self) -> &'static str {
        "gvt-g"
    }

    fn partition(&self) -> Partition {
        self.layout.aperture
    }

    /// Stops scheduling. More workloads queued than an image carries
    /// ([`MAX_PENDING`]: a guest flooded the ELSP) run first: scheduling
    /// restarts until the queues are down to it or a bounded time passed
    /// ([`GvtHost::wait_pending`]), then stops again. If they are still
    /// more, the save fails ([`StreamError::TooManyPending`]) and the
    /// migration layer resumes the vGPU.
    fn quiesce(&mut self) {
        if self.quiesced {
            return;
        }
        self.host.stop_schedule();
        self.quiesced = true;
        if self.host.pending_count() > MAX_PENDING {
            self.host.start_schedule();
            self.host.wait_pending(MAX_PENDING);
            self.host.stop_schedule();
        }
    }

    fn resume(&mut self) -> bool {
        if self.quiesced {
            self.host.start_schedule();
            self.quiesced = false;
        }
        // kvmgt's scheduler runs what is queued; nothing to kick.
        false
    }

    fn is_quiesced(&self) -> bool {
        self.quiesced
    }

    /// On a vGPU reset or close: the guest starts over at this vGPU's own
    /// layout, so the audit map goes back to the identity.
    fn reset(&mut self) {
        self.forget_restore();
    }

    fn for_each_writable_frame(&self, f: &mut dyn FnMut(u64)) {
        self.host.for_each_pinned(&mut |gfn, pages| {
            for p in 0..pages.min(MAX_EVENT_PAGES) {
                f(gfn.saturating_add(p));
            }
        });
    }

    fn state_len(&self) -> usize {
        max_image_len(&self.layout, &self.sizes).unwrap_or(0)
    }

    /// A stopped vGPU's image carries its pending workloads; a pre-copy
    /// snapshot has none (the stop-copy image is the one restored).
    fn write_state<W: ImageSink>(&self, w: &mut W) -> Result<(), StreamError> {
        let pending = if self.quiesced {
            self.host.pending_count()
        } else {
            0
        };
        write_sections(w, &self.guest, &self.sizes, &self.host, pending)
    }

    /// The stop-copy image's length if the vGPU stopped now: its pending
    /// workloads are those queued now (a stop drains the queues down to
    /// [`MAX_PENDING`]), their records zero (only the length counts).
    fn write_state_estimate<W: ImageSink>(&self, w: &mut W) -> Result<(), StreamError> {
        let pending = self.host.pending_count().min(MAX_PENDING);
        write_sections(w, &self.guest, &self.sizes, &Sizing(&self.host), pending)
    }

    /// Checks the whole image first: the pending workloads' context images
    /// and rings, the fences against the guest's graphics memory
    /// ([`check_fences`]) and every part with kvmgt
    /// ([`GvtHost::check`], with the audit map of this restore), so a
    /// refused image changes nothing. Then stops the vGPU (kvmgt restores
    /// only a stopped vGPU; the migration layer's STOP -> RUNNING_P2P arc
    /// restarts it), sets the audit map (kvmgt moves the fence ranges and
    /// status pages through it as it applies them), applies the parts in
    /// kvmgt's order and re-creates the pending workloads in their order.
    /// The hooks then move the source's graphics addresses to this vGPU's
    /// slices: the context descriptors and ring starts as kvmgt re-creates
    /// the workloads (and as the guest submits new ones), the commands when
    /// GVT-g scans them, the fences, status pages and display plane bases
    /// where kvmgt uses them, not in guest memory (`mem` is not used).
    ///
    /// If kvmgt still fails to apply a checked part (it is out of memory),
    /// it has reset the vGPU: the provider forgets the restore too (the
    /// guest's layout and the audit map are this vGPU's own again) and the
    /// error says which part failed.
    fn restore_state<M: GuestMem>(
        &mut self,
        hdr: &stream::Header,
        image: &[u8],
        _mem: &mut M,
    ) -> Result<Restored, RestoreError> {
        let d = decode_image(hdr, image, self.vgpu_type, &self.layout, &self.sizes)?;
        let map = if d.src == self.layout {
            AuditMap::identity(self.layout)
        } else {
            AuditMap::migrated(d.src, self.layout).ok_or(RestoreError::PartitionMismatch {
                size: d.src.aperture.size.saturating_add(d.src.hidden.size),
            })?
        };
        let bad_pending = RestoreError::BadSection(Section::GvtWorkloads as u16);
        d.pending.check(&map).map_err(|_| bad_pending)?;
        check_fences(&d, &map)?;
        let parts: [(Part, &[u8], Section); 4] = [
            (Part::Vregs, d.vregs, Section::GvtVregs),
            (Part::Ggtt, d.entries_le(), Section::GvtGgtt),
            (Part::Fences, d.fences_le(), Section::GvtFences),
            (Part::Execlist, d.execlist, Section::GvtExeclist),
        ];
        for (part, data, sec) in parts {
            if !self.host.check(part, data, &map) {
                return Err(RestoreError::BadSection(sec as u16));
            }
        }
        self.quiesce();
        self.host.set_audit(map);
        for (part, data, sec) in parts {
            if !self.host.restore(part, data) {
                self.forget_restore();
                return Err(RestoreError::Refused(sec as u16));
            }
        }
        self.guest = d.src;
        if !d.pending.is_empty() && !self.host.resubmit(&d.pending) {
            self.forget_restore();
            return Err(RestoreError::Refused(Section::GvtWorkloads as u16));
        }
        // Each pending workload's context descriptor and ring start moved.
        let moved = if map.is_identity() { 0 } else { 2 };
        Ok(Restored {
            src: Some(d.src.aperture),
            remapped: moved * u64::try_from(d.pending.len()).unwrap_or(0),
        })
    }

    fn ggtt_in_image(&self) -> EntrySpan {
        EntrySpan {
            offset: ggtt_entries_at(&self.sizes),
            entries: usize::try_from(self.layout.entries()).unwrap_or(0),
        }
    }

    fn pending_workloads(&self) -> usize {
        // Queued workloads are kvmgt's: it runs them once scheduling
        // restarts, there is nothing for the migration layer to kick.
        0
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn event_kinds_convert_from_their_numbers_only() {
        for v in 1..=12u32 {
            assert_eq!(EventKind::try_from(v).map(|k| k as u32), Ok(v));
        }
        for v in [0u32, 13, u32::MAX] {
            assert_eq!(EventKind::try_from(v), Err(v));
        }
    }

    use super::*;
    use crate::cmd::Mode;
    use crate::gtt::{Pte, PAGE_SIZE};
    use crate::provider::ShadowEvent;
    use crate::provider::{tracker_update, TrackRange};
    use crate::testutil::Rng;
    use std::vec;
    use std::vec::Vec;

    const MIB: u64 = 1 << 20;

    /// GVT's default small type: 64 MiB aperture, 384 MiB hidden, 4 fences.
    fn layout(slot: u64) -> GvtLayout {
        GvtLayout::new(
            (32 * MIB + slot * 64 * MIB, 64 * MIB),
            (512 * MIB + slot * 384 * MIB, 384 * MIB),
            4,
        )
        .unwrap()
    }

    struct Arrays {
        vregs: Vec<u8>,
        ggtt: Vec<u64>,
        fences: Vec<u64>,
        execlist: Vec<u8>,
    }

    fn le(v: &[u64]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    impl Arrays {
        fn part(&self, part: Part) -> Vec<u8> {
            match part {
                Part::Vregs => self.vregs.clone(),
                Part::Ggtt => le(&self.ggtt),
                Part::Fences => le(&self.fences),
                Part::Execlist => self.execlist.clone(),
            }
        }
    }

    impl StateSource for Arrays {
        fn save(&self, part: Part, out: &mut [u8]) -> bool {
            let b = self.part(part);
            out.len() == b.len() && {
                out.copy_from_slice(&b);
                true
            }
        }
    }

    fn arrays(l: &GvtLayout, rng: &mut Rng) -> (Arrays, StateSizes) {
        let sizes = StateSizes {
            vregs: 2 * MIB as usize,
            execlist: 3 * 128,
        };
        let mut bytes = |n: usize| (0..n).map(|_| rng.next_u64() as u8).collect::<Vec<u8>>();
        let a = Arrays {
            vregs: bytes(sizes.vregs),
            execlist: bytes(sizes.execlist),
            ggtt: Vec::new(),
            fences: Vec::new(),
        };
        let ggtt = (0..l.entries())
            .map(|i| if i % 3 == 0 { 0 } else { (i << 12) | 1 })
            .collect();
        // Valid fences over the aperture, every other one disabled.
        let fences = (0..u64::from(l.fences))
            .map(|i| {
                let start = l.aperture.base + i * 0x10000;
                let v = (start + 0x3000) << 32 | start | 1;
                if i % 2 == 0 {
                    v
                } else {
                    v & !1
                }
            })
            .collect();
        (Arrays { ggtt, fences, ..a }, sizes)
    }

    fn save(l: &GvtLayout, a: &Arrays, sizes: &StateSizes) -> Vec<u8> {
        let mut img = vec![0u8; image_len(l, sizes).unwrap()];
        let n = write_image(&mut img, 0, l, sizes, a, 0).unwrap();
        assert_eq!(n, img.len(), "image_len is exact");
        img
    }

    fn limits() -> stream::Limits {
        stream::Limits {
            max_total: 1 << 26,
            max_section: 1 << 25,
        }
    }

    /// A destination of the largest GVT-g type (GVTg_V5_1 in
    /// drivers/gpu/drm/i915/gvt/vgpu.c: 512 MiB low GM, 2 GiB high GM, 4
    /// fences; 2 MiB of vregs, Gen9's mmio_size) accepts a whole migration
    /// of that type: a pre-copy image and a stop-copy image, each
    /// validated under the limits the kernel derives from `state_len`.
    /// The destination used to accept 8 MiB in all (two 7 MiB images do
    /// not fit).
    #[test]
    fn largest_real_type_fits_the_resume_budget() {
        let l = GvtLayout::new((64 * MIB, 512 * MIB), (2048 * MIB, 2048 * MIB), 4).unwrap();
        let (mut p, _) = fake(&l, 5);
        // The largest image: a stopped vGPU with every workload pending.
        p.host.pending = (0..MAX_PENDING as u32).map(|i| record(&l, i)).collect();
        p.quiesce();
        let limits = stream::Limits::for_state_len(p.state_len());
        let img = provider_image(&p);
        assert_eq!(img.len(), p.state_len());
        assert!(img.len() > 7 * MIB as usize, "{} bytes", img.len());
        let mut incoming = img.clone();
        incoming.extend_from_slice(&img);
        assert!(incoming.len() <= limits.resume_budget());
        assert!(incoming.len() > 8 * MIB as usize);
        for i in incoming.chunks(img.len()) {
            stream::validate(i, &limits).unwrap();
        }
        // One byte more than a migration of this type is refused.
        let mut big = img.clone();
        big.push(0);
        assert_eq!(stream::validate(&big, &limits), Err(StreamError::TooLarge));
        assert!(limits.resume_budget() < incoming.len() + img.len());
    }

    /// GVT-g's types (drivers/gpu/drm/i915/gvt/vgpu.c): V5_8, V5_4, V5_2
    /// and V5_1, low and high graphics memory in MiB, 4 fences each.
    const REAL_TYPES: [(&str, u64, u64); 4] = [
        ("V5_8", 64, 384),
        ("V5_4", 128, 512),
        ("V5_2", 256, 1024),
        ("V5_1", 512, 2048),
    ];

    fn real_layout(low: u64, high: u64, slot: u64) -> GvtLayout {
        let (lo, hi) = (low * MIB, high * MIB);
        GvtLayout::new((64 * MIB + slot * lo, lo), (4096 * MIB + slot * hi, hi), 4).unwrap()
    }

    /// For every real type: a pre-copy image, then what an idle guest
    /// changes (a few registers, the execlist state, some GGTT entries the
    /// write path marks); the stop-copy delta is at most 64 KiB and base
    /// plus delta restores what the full image restores, on a vGPU at
    /// other slices.
    #[test]
    fn stop_copy_delta_of_every_real_type_is_small() {
        for (name, low, high) in REAL_TYPES {
            let l = real_layout(low, high, 0);
            let (mut p, _) = fake(&l, 3);
            let base = provider_image(&p);
            let span = p.ggtt_in_image();
            assert_eq!(span.entries as u64, l.entries());
            let words = vec![0; stream::ChangedEntries::<Vec<u64>>::words_for(span.entries)];
            let mut changed = stream::ChangedEntries::new(span, words).unwrap();
            let st = &mut p.host.state;
            for i in 0..16 {
                st.vregs[i * 4096 + 0x30] ^= 0xff;
            }
            st.execlist.iter_mut().for_each(|b| *b = b.wrapping_add(1));
            for i in 0..32u64 {
                let e = i * 997 % l.entries();
                st.ggtt[e as usize] = (e << 12) | 3;
                changed.mark(e);
            }
            let full = provider_image(&p);
            let mut out = vec![0u8; full.len()];
            let limits = stream::Limits::for_state_len(p.state_len());
            for hint in [Some(&changed), None] {
                let n = stream::delta::write_delta(&base, &full, hint, &mut out).unwrap();
                assert!(n <= 64 << 10, "{name}: {n} bytes (full {})", full.len());
                let incoming = [&base[..], &out[..n]].concat();
                assert!(incoming.len() <= limits.resume_budget());
                let stream::Resolved::Delta { base: b, delta } =
                    stream::resolve(&incoming, &limits, PROVIDER_GVT, 0).unwrap()
                else {
                    panic!("{name}: not a delta");
                };
                let mut img = vec![0u8; delta.result_len()];
                let hdr = delta.apply(b, &mut img, &limits).unwrap();
                assert!(img == full, "{name}: result differs");
                let (mut dst, _) = fake(&real_layout(low, high, 1), 4);
                dst.restore_state(&hdr, &img, &mut NoMem).unwrap();
                for (part, data) in &dst.host.restored {
                    assert!(*data == p.host.state.part(*part), "{name}: {part:?}");
                }
            }
        }
    }

    #[test]
    fn the_image_says_where_its_ggtt_entries_are() {
        let (p, _) = fake(&layout(1), 8);
        let img = provider_image(&p);
        let span = p.ggtt_in_image();
        for i in [0, 1, span.entries - 1] {
            let at = span.offset + 8 * i;
            let raw = u64::from_le_bytes(img[at..at + 8].try_into().unwrap());
            assert_eq!(raw, p.host.state.ggtt[i], "entry {i}");
        }
    }

    #[test]
    fn layout_rejects_overlap_and_bad_fences() {
        assert!(GvtLayout::new((0, 64 * MIB), (32 * MIB, 64 * MIB), 4).is_none());
        assert!(GvtLayout::new((0, 64 * MIB), (64 * MIB, 64 * MIB), 33).is_none());
        assert!(GvtLayout::new((0, 64 * MIB + 1), (64 * MIB, 64 * MIB), 4).is_none());
        assert!(GvtLayout::new((0, 64 * MIB), (64 * MIB, 64 * MIB), 32).is_some());
    }

    #[test]
    fn ggtt_indices_round_trip_and_stay_inside() {
        let l = layout(1);
        for i in 0..l.entries() {
            let g = l.ggtt_index(i).unwrap();
            assert_eq!(l.image_index(g), Some(i));
        }
        assert_eq!(l.ggtt_index(l.entries()), None);
        assert_eq!(l.image_index(l.aperture.base / PAGE_SIZE - 1), None);
        assert_eq!(l.image_index(l.hidden.end() / PAGE_SIZE), None);
        assert_eq!(l.image_index(0), None, "another vGPU's entry");
    }

    #[test]
    fn hook_events_become_tracker_updates() {
        let l = layout(2);
        let pte = Pte::new(0x4242_0000, 0).unwrap().encode();
        let first_hidden = l.hidden.base / PAGE_SIZE;
        let ev = ggtt_write_event(&l, first_hidden, 0, pte).unwrap();
        assert_eq!(
            ev,
            ShadowEvent::GgttWrite {
                index: l.aperture.entries(),
                old: 0,
                new: pte
            }
        );
        assert_eq!(
            tracker_update(&ev),
            Some(TrackRange {
                first: 0x42420,
                count: 1
            })
        );
        assert_eq!(ggtt_write_event(&l, 5, 0, pte), None, "not ours");
        let huge = pin_event(0x800, 2 * MIB, true).unwrap();
        assert_eq!(
            tracker_update(&huge),
            Some(TrackRange {
                first: 0x800,
                count: 512
            })
        );
        assert_eq!(
            pin_event(7, 1, true),
            Some(ShadowEvent::Pinned { gfn: 7, pages: 1 })
        );
        assert_eq!(pin_event(7, 0, true), None);
        let un = pin_event(7, PAGE_SIZE, false).unwrap();
        assert_eq!(tracker_update(&un), None, "an unpin keeps tracking");
    }

    #[test]
    fn audit_translates_source_addresses_to_the_destination() {
        let (src, dst) = (layout(0), layout(3));
        let id = AuditMap::identity(src);
        assert!(id.is_identity());
        assert_eq!(
            id.translate(src.aperture.base + 8, 4),
            Ok(src.aperture.base + 8)
        );
        assert!(
            id.translate(src.aperture.end() - 4, 8).is_err(),
            "crosses the end"
        );
        let m = AuditMap::migrated(src, dst).unwrap();
        assert!(!m.is_identity());
        let mut rng = Rng::new(7);
        for _ in 0..1000 {
            let (s, d) = if rng.below(2) == 0 {
                (src.aperture, dst.aperture)
            } else {
                (src.hidden, dst.hidden)
            };
            let off = rng.below(s.size - 64);
            let got = m.translate(s.base + off, 64).unwrap();
            assert_eq!(got, d.base + off);
            assert!(dst.contains_range(got, 64));
        }
        // An address of the destination slice that the guest never owned.
        assert_eq!(
            m.translate(dst.hidden.end() - 8, 8),
            Err(AuditError::OutOfRange {
                gma: dst.hidden.end() - 8
            })
        );
        // A range that straddles the aperture and hidden slices is refused
        // even when they are adjacent.
        let adj = GvtLayout::new((0, 64 * MIB), (64 * MIB, 64 * MIB), 4).unwrap();
        let adj2 = GvtLayout::new((128 * MIB, 64 * MIB), (192 * MIB, 64 * MIB), 4).unwrap();
        let m = AuditMap::migrated(adj, adj2).unwrap();
        assert!(m.translate(64 * MIB - 4, 8).is_err());
        let mut big = dst;
        big.hidden.size *= 2;
        assert!(AuditMap::migrated(src, big).is_none(), "incompatible");
    }

    #[test]
    fn scanner_hook_patches_ggtt_addresses_only() {
        let (src, dst) = (layout(0), layout(2));
        let m = AuditMap::migrated(src, dst).unwrap();
        let gma = src.hidden.base + 0x1230;
        // MI_STORE_DATA_IMM, GGTT (bit 22), one dword of data.
        let sdi = [
            (0x20 << 23) | (1 << 22) | 2,
            gma as u32,
            (gma >> 32) as u32,
            0xcafe,
        ];
        let mut c = sdi;
        assert_eq!(patch_command(&mut c, Mode::EXECLIST, &m), Ok(1));
        let new = dst.hidden.base + 0x1230;
        assert_eq!((c[1], c[2], c[3]), (new as u32, (new >> 32) as u32, 0xcafe));
        // The identity map parses nothing and changes nothing.
        let mut c = sdi;
        assert_eq!(
            patch_command(&mut c, Mode::EXECLIST, &AuditMap::identity(src)),
            Ok(0)
        );
        assert_eq!(c, sdi);
        // A PPGTT store (bit 22 clear) keeps its address.
        let mut c = sdi;
        c[0] &= !(1 << 22);
        let before = c;
        assert_eq!(patch_command(&mut c, Mode::EXECLIST, &m), Ok(0));
        assert_eq!(c, before);
        // An address the guest never owned: refused, nothing written.
        let mut c = sdi;
        c[1] = 0x1000;
        c[2] = 0;
        let before = c;
        assert!(matches!(
            patch_command(&mut c, Mode::EXECLIST, &m),
            Err(PatchError::Audit(_))
        ));
        assert_eq!(c, before);
        // Unknown commands are refused once addresses move.
        let mut c = [0x7fff_ffffu32, 0, 0, 0];
        assert!(matches!(
            patch_command(&mut c, Mode::EXECLIST, &m),
            Err(PatchError::Command(_))
        ));
    }

    #[test]
    fn image_round_trips_to_another_layout() {
        let mut rng = Rng::new(11);
        let (src, dst) = (layout(0), layout(1));
        let (a, sizes) = arrays(&src, &mut rng);
        let img = save(&src, &a, &sizes);
        let hdr = stream::validate(&img, &limits()).unwrap();
        let d = decode_image(&hdr, &img, 0, &dst, &sizes).unwrap();
        assert_eq!(d.vregs, &a.vregs[..]);
        assert_eq!(d.execlist, &a.execlist[..]);
        assert_eq!(d.src.aperture, src.aperture);
        assert_eq!(d.src.hidden, src.hidden);
        for i in 0..4 {
            assert_eq!(d.fence(i), Some(a.fences[i]));
        }
        assert_eq!(d.fence(4), None);
        let mut seen = 0u64;
        d.for_each_entry(&dst, |idx, e| {
            let i = dst.image_index(idx).unwrap();
            assert_eq!(e, a.ggtt[i as usize], "entry {i} lands at its offset");
            seen += 1;
        });
        assert_eq!(seen, dst.entries());
    }

    #[test]
    fn decode_refuses_what_does_not_fit_the_destination() {
        let mut rng = Rng::new(3);
        let src = layout(0);
        let (a, sizes) = arrays(&src, &mut rng);
        let img = save(&src, &a, &sizes);
        let hdr = stream::validate(&img, &limits()).unwrap();
        let mut small = src;
        small.hidden.size /= 2;
        assert!(matches!(
            decode_image(&hdr, &img, 0, &small, &sizes),
            Err(RestoreError::PartitionMismatch { .. })
        ));
        let mut fewer = src;
        fewer.fences = 2;
        assert_eq!(
            decode_image(&hdr, &img, 0, &fewer, &sizes).err(),
            Some(RestoreError::BadSection(Section::GvtFences as u16))
        );
        let other = StateSizes {
            vregs: sizes.vregs - 4,
            ..sizes
        };
        assert_eq!(
            decode_image(&hdr, &img, 0, &src, &other).err(),
            Some(RestoreError::BadSection(Section::GvtVregs as u16))
        );
        assert!(matches!(
            decode_image(&hdr, &img, 1, &src, &sizes),
            Err(RestoreError::WrongDevice { .. })
        ));
        // A sim image is not a GVT image.
        let mut h = hdr;
        h.provider = crate::provider::PROVIDER_SIM;
        assert!(matches!(
            decode_image(&h, &img, 0, &src, &sizes),
            Err(RestoreError::WrongDevice { .. })
        ));
        // A corrupted entry is caught by the section checksum.
        let mut bad = img.clone();
        let off = bad.len() - 500_000;
        bad[off] ^= 1;
        assert!(stream::validate(&bad, &limits()).is_err());
    }

    #[test]
    fn a_failing_source_fails_the_save() {
        let src = layout(0);
        let mut rng = Rng::new(1);
        let (mut a, sizes) = arrays(&src, &mut rng);
        a.fences.pop();
        let mut img = vec![0u8; image_len(&src, &sizes).unwrap()];
        assert!(write_image(&mut img, 0, &src, &sizes, &a, 0).is_err());
        a.fences.push(0);
        assert!(write_image(&mut img, 0, &src, &sizes, &a, 0).is_ok());
        let mut short = vec![0u8; img.len() - 1];
        assert!(write_image(&mut short, 0, &src, &sizes, &a, 0).is_err());
        // Pending workloads the source cannot list fail it too.
        let mut big = vec![0u8; max_image_len(&src, &sizes).unwrap()];
        assert!(write_image(&mut big, 0, &src, &sizes, &a, 1).is_err());
        assert!(write_image(&mut big, 0, &src, &sizes, &a, MAX_PENDING + 1).is_err());
    }

    /// kvmgt and the hooks' pin record, faked: what the provider asked.
    struct FakeHost {
        state: Arrays,
        /// Workloads queued on it, in order.
        pending: Vec<PendingWorkload>,
        /// What the provider re-created, with the audit map then.
        resubmitted: Vec<(PendingWorkload, Option<AuditMap>)>,
        refuse_resubmit: bool,
        calls: Vec<&'static str>,
        restored: Vec<(Part, Vec<u8>)>,
        /// kvmgt fails to apply this part (its check passes).
        refuse: Option<Part>,
        /// kvmgt's check refuses this part.
        refuse_check: Option<Part>,
        /// The parts checked, with the audit map of the check.
        checked: Vec<(Part, AuditMap)>,
        resets: usize,
        pins: Vec<(u64, u64)>,
        audit: Option<AuditMap>,
        /// Workloads the "GPU" ran while scheduling was on, in order.
        ran: Vec<PendingWorkload>,
        /// The queues do not drain (a hung engine).
        stuck: bool,
    }

    impl StateSource for FakeHost {
        fn save(&self, part: Part, out: &mut [u8]) -> bool {
            self.state.save(part, out)
        }
        fn pending_count(&self) -> usize {
            self.pending.len()
        }
        fn save_pending(&self, out: &mut [u8]) -> bool {
            out.len() == self.pending.len() * WORKLOAD_LEN
                && out
                    .chunks_exact_mut(WORKLOAD_LEN)
                    .zip(&self.pending)
                    .all(|(c, w)| w.encode(c).is_some())
        }
    }

    impl GvtHost for FakeHost {
        fn stop_schedule(&mut self) {
            self.calls.push("stop");
        }
        fn start_schedule(&mut self) {
            self.calls.push("start");
        }
        fn check(&mut self, part: Part, data: &[u8], map: &AuditMap) -> bool {
            self.checked.push((part, *map));
            self.refuse_check != Some(part) && data.len() == self.state.part(part).len()
        }
        /// The GPU runs the queue's head first.
        fn wait_pending(&mut self, cap: usize) -> usize {
            self.calls.push("wait");
            while !self.stuck && self.pending.len() > cap {
                let w = self.pending.remove(0);
                self.ran.push(w);
            }
            self.pending.len()
        }
        /// kvmgt applies the part; a later save gives it back.
        fn restore(&mut self, part: Part, data: &[u8]) -> bool {
            if self.refuse == Some(part) {
                return false;
            }
            self.restored.push((part, data.to_vec()));
            let words = || {
                data.chunks_exact(8)
                    .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
                    .collect()
            };
            match part {
                Part::Vregs => self.state.vregs = data.to_vec(),
                Part::Ggtt => self.state.ggtt = words(),
                Part::Fences => self.state.fences = words(),
                Part::Execlist => self.state.execlist = data.to_vec(),
            }
            true
        }
        /// kvmgt's reset clears the fences (`intel_vgpu_reset_resource()`).
        fn vgpu_reset(&mut self) {
            self.calls.push("reset");
            self.resets += 1;
            self.state.fences.iter_mut().for_each(|f| *f = 0);
        }
        fn for_each_pinned(&self, f: &mut dyn FnMut(u64, u64)) {
            for &(g, n) in &self.pins {
                f(g, n);
            }
        }
        fn set_audit(&mut self, map: AuditMap) {
            self.calls.push("audit");
            self.audit = Some(map);
        }
        fn resubmit(&mut self, pending: &PendingList<'_>) -> bool {
            self.calls.push("resubmit");
            if self.refuse_resubmit {
                return false;
            }
            for w in pending.iter() {
                self.resubmitted.push((w.unwrap(), self.audit));
            }
            true
        }
    }

    fn fake(l: &GvtLayout, seed: u64) -> (GvtVgpu<FakeHost>, StateSizes) {
        let mut rng = Rng::new(seed);
        let (state, sizes) = arrays(l, &mut rng);
        let host = FakeHost {
            state,
            pending: Vec::new(),
            resubmitted: Vec::new(),
            refuse_resubmit: false,
            calls: Vec::new(),
            restored: Vec::new(),
            refuse: None,
            refuse_check: None,
            checked: Vec::new(),
            resets: 0,
            pins: Vec::new(),
            audit: None,
            ran: Vec::new(),
            stuck: false,
        };
        (GvtVgpu::new(host, *l, sizes, 0).unwrap(), sizes)
    }

    fn provider_image(p: &GvtVgpu<FakeHost>) -> Vec<u8> {
        let mut img = vec![0u8; p.state_len()];
        let n = p.save_state(&mut img).unwrap();
        img.truncate(n);
        img
    }

    struct NoMem;
    impl GuestMem for NoMem {
        fn read(&mut self, gpa: u64, _: &mut [u8]) -> Result<(), crate::mem::MemFault> {
            Err(crate::mem::MemFault { gpa })
        }
        fn write(&mut self, gpa: u64, _: &[u8]) -> Result<(), crate::mem::MemFault> {
            Err(crate::mem::MemFault { gpa })
        }
    }

    #[test]
    fn provider_migrates_to_another_layout() {
        let (src_l, dst_l) = (layout(0), layout(2));
        let (mut src, _) = fake(&src_l, 5);
        let (mut dst, _) = fake(&dst_l, 6);
        src.quiesce();
        src.quiesce();
        assert!(src.is_quiesced());
        let img = provider_image(&src);
        let hdr = stream::validate(&img, &limits()).unwrap();
        let done = dst.restore_state(&hdr, &img, &mut NoMem).unwrap();
        assert_eq!(done.src, Some(src_l.aperture));
        assert!(dst.is_quiesced(), "kvmgt restores a stopped vGPU");
        let order: Vec<Part> = dst.host.restored.iter().map(|r| r.0).collect();
        assert_eq!(order, Part::ALL.to_vec(), "kvmgt's order");
        for (part, data) in &dst.host.restored {
            assert_eq!(*data, src.host.state.part(*part), "{part:?} as saved");
        }
        let map = dst.host.audit.unwrap();
        assert_eq!(
            map.translate(src_l.hidden.base + 0x40, 4),
            Ok(dst_l.hidden.base + 0x40)
        );
        assert!(!dst.resume(), "nothing to kick");
        assert!(!src.resume());
        assert!(!src.is_quiesced());
        assert_eq!(src.host.calls, ["stop", "start"], "one stop, one start");
        assert_eq!(dst.host.calls, ["stop", "audit", "start"]);
        assert!(dst.host.resubmitted.is_empty(), "nothing was pending");
        // The same layout keeps the identity map.
        let (mut again, _) = fake(&src_l, 7);
        again.restore_state(&hdr, &img, &mut NoMem).unwrap();
        assert!(again.host.audit.unwrap().is_identity());
    }

    #[test]
    fn provider_refuses_before_touching_kvmgt() {
        let (src, _) = fake(&layout(0), 1);
        let img = provider_image(&src);
        let hdr = stream::validate(&img, &limits()).unwrap();
        // Another size of vGPU: nothing restored, not even stopped.
        let mut big_l = layout(1);
        big_l.hidden.size *= 2;
        let (mut big, _) = fake(&big_l, 2);
        assert!(big.restore_state(&hdr, &img, &mut NoMem).is_err());
        assert!(big.host.restored.is_empty() && big.host.calls.is_empty());
        assert!(big.host.audit.is_none());
        // kvmgt's check refusing a part: named, and nothing applied.
        let (mut dst, _) = fake(&layout(1), 3);
        dst.host.refuse_check = Some(Part::Fences);
        assert_eq!(
            dst.restore_state(&hdr, &img, &mut NoMem),
            Err(RestoreError::BadSection(Section::GvtFences as u16))
        );
        assert!(dst.host.restored.is_empty() && dst.host.calls.is_empty());
        assert!(dst.host.audit.is_none(), "no remapping after a refusal");
        // Every part is checked, with the map the restore would set.
        let (mut ok, _) = fake(&layout(1), 3);
        ok.restore_state(&hdr, &img, &mut NoMem).unwrap();
        let map = AuditMap::migrated(layout(0), layout(1)).unwrap();
        assert_eq!(
            ok.host.checked,
            Part::ALL.iter().map(|p| (*p, map)).collect::<Vec<_>>()
        );
    }

    /// A part kvmgt fails to apply after its check passed (allocation):
    /// kvmgt reset the vGPU, and the provider forgets the restore with it
    /// (the audit map back to the identity) and names the part.
    #[test]
    fn a_failed_apply_leaves_a_clean_vgpu() {
        let (src_l, dst_l) = (layout(0), layout(1));
        let (src, _) = fake(&src_l, 1);
        let img = provider_image(&src);
        let hdr = stream::validate(&img, &limits()).unwrap();
        let (mut dst, _) = fake(&dst_l, 3);
        dst.host.refuse = Some(Part::Execlist);
        assert_eq!(
            dst.restore_state(&hdr, &img, &mut NoMem),
            Err(RestoreError::Refused(Section::GvtExeclist as u16))
        );
        assert_eq!(dst.host.calls, ["stop", "audit", "audit", "reset"]);
        assert_eq!(dst.host.audit, Some(AuditMap::identity(dst_l)));
        // The next image of the same source is checked against the guest
        // starting over at the destination's own layout: a move again.
        dst.host.refuse = None;
        let done = dst.restore_state(&hdr, &img, &mut NoMem).unwrap();
        assert_eq!(done.src, Some(src_l.aperture));
        assert_eq!(dst.host.audit, AuditMap::migrated(src_l, dst_l));
    }

    /// A valid fence outside the guest's graphics memory refuses the image
    /// by name before kvmgt is touched; the fences of a guest that moved
    /// keep its view in the image, and pass.
    #[test]
    fn fences_are_checked_against_the_guests_gm() {
        let (src_l, dst_l) = (layout(0), layout(2));
        let (mut src, _) = fake(&src_l, 51);
        let (mut dst, _) = fake(&dst_l, 52);
        // Fence 2 over the destination's aperture: none of the guest's.
        src.host.state.fences[2] = (dst_l.aperture.base << 32) | dst_l.aperture.base | 1;
        let img = provider_image(&src);
        let hdr = stream::validate(&img, &limits()).unwrap();
        assert_eq!(
            dst.restore_state(&hdr, &img, &mut NoMem),
            Err(RestoreError::FenceOutsideGm { fence: 2 })
        );
        assert!(dst.host.calls.is_empty() && dst.host.checked.is_empty());
        // Its own place, source to destination and on to a third place.
        src.host.state.fences[2] = (src_l.aperture.base << 32) | src_l.aperture.base | 1;
        let map = hop(&src, &mut dst);
        let f = dst.host.restored[2].1.clone();
        assert_eq!(f, src.host.state.part(Part::Fences), "the guest's view");
        let moved = map_fence(src.host.state.fences[2], &map).unwrap();
        assert_eq!(moved & 0xffff_f000, dst_l.aperture.base);
        let (mut third, _) = fake(&layout(1), 53);
        let map = hop(&dst, &mut third);
        assert_eq!(
            map_fence(src.host.state.fences[2], &map).unwrap() & 0xffff_f000,
            layout(1).aperture.base
        );
    }

    /// Saves `from` and restores the image on `to`; returns `to`'s map.
    fn hop(from: &GvtVgpu<FakeHost>, to: &mut GvtVgpu<FakeHost>) -> AuditMap {
        let img = provider_image(from);
        let hdr = stream::validate(&img, &limits()).unwrap();
        to.restore_state(&hdr, &img, &mut NoMem).unwrap();
        to.host.audit.unwrap()
    }

    #[test]
    fn chained_migrations_keep_the_guests_view() {
        let (la, lb, lc) = (layout(0), layout(1), layout(2));
        let (a, _) = fake(&la, 11);
        let (mut b, _) = fake(&lb, 12);
        let (mut c, _) = fake(&lc, 13);
        let ab = hop(&a, &mut b);
        let off = 0x40;
        assert_eq!(
            ab.translate(la.hidden.base + off, 4),
            Ok(lb.hidden.base + off)
        );
        // A -> B -> C: the guest still uses A's addresses.
        let bc = hop(&b, &mut c);
        assert_eq!(
            bc.translate(la.hidden.base + off, 4),
            Ok(lc.hidden.base + off)
        );
        assert_eq!(
            bc.translate(la.aperture.base + off, 4),
            Ok(lc.aperture.base + off)
        );
        assert!(
            bc.translate(lb.hidden.base + off, 4).is_err(),
            "B's view is not the guest's"
        );
        // A -> B -> A: back home, no translation.
        let (mut a2, _) = fake(&la, 14);
        let ba = hop(&b, &mut a2);
        assert!(ba.is_identity());
        assert_eq!(
            ba.translate(la.hidden.base + off, 4),
            Ok(la.hidden.base + off)
        );
    }

    #[test]
    fn reset_makes_the_map_identity() {
        let (la, lb, lc) = (layout(0), layout(1), layout(2));
        let (a, _) = fake(&la, 21);
        let (mut b, _) = fake(&lb, 22);
        let (mut c, _) = fake(&lc, 23);
        assert!(!hop(&a, &mut b).is_identity());
        b.reset();
        let m = b.host.audit.unwrap();
        assert!(m.is_identity());
        assert_eq!(m.translate(lb.hidden.base, 4), Ok(lb.hidden.base));
        // After the reset the guest is at B's own layout.
        let bc = hop(&b, &mut c);
        assert_eq!(bc.translate(lb.hidden.base, 4), Ok(lc.hidden.base));
    }

    /// A pending workload of the source: context image and ring in the
    /// source's slices (the guest's view), a few ring offsets.
    fn record(l: &GvtLayout, i: u32) -> PendingWorkload {
        let lrca = u32::try_from(l.aperture.base).unwrap() + 0x10000 + (i % 8) * 0x20000;
        PendingWorkload {
            engine: i % 3,
            flags: u32::from(i.is_multiple_of(2)) * WORKLOAD_SCHEDULE_IN,
            desc: [lrca | 0x19, 0x100 + i],
            elsp: [lrca | 0x19, 0x100 + i, 0, 0],
            rb_head: 0x20 * (i % 16),
            rb_tail: 0x20 * (i % 16) + 0x10,
            guest_rb_head: 0,
            rb_start: u32::try_from(l.hidden.base).unwrap() + (i % 8) * 0x2000,
            rb_ctl: 0x1001,
        }
    }

    fn sections(img: &[u8]) -> Vec<(u16, u16)> {
        stream::sections_unchecked(img)
            .map(|s| s.map(|(t, f, _)| (t, f)).unwrap())
            .collect()
    }

    /// The stop lands with workloads queued: the stop-copy image carries
    /// them (mandatory), the destination at another place re-creates them
    /// in their order after its audit map is set, and their context images
    /// and rings land at the same offsets of its slices. A pre-copy
    /// snapshot carries none.
    #[test]
    fn pending_workloads_are_recreated_in_order_elsewhere() {
        let (src_l, dst_l) = (layout(0), layout(2));
        let (mut src, sizes) = fake(&src_l, 31);
        let (mut dst, _) = fake(&dst_l, 32);
        src.host.pending = (0..5).map(|i| record(&src_l, i)).collect();
        let pre = provider_image(&src);
        assert!(!sections(&pre)
            .iter()
            .any(|s| s.0 == Section::GvtWorkloads as u16));
        assert_eq!(pre.len(), image_len(&src_l, &sizes).unwrap());
        src.quiesce();
        let img = provider_image(&src);
        let ws = Section::GvtWorkloads as u16;
        assert!(sections(&img).contains(&(ws, stream::FLAG_MANDATORY)));
        let hdr = stream::validate(&img, &limits()).unwrap();
        assert_eq!((hdr.major, hdr.minor), (2, stream::VERSION_MINOR));
        let done = dst.restore_state(&hdr, &img, &mut NoMem).unwrap();
        assert_eq!(done.remapped, 10, "5 descriptors, 5 ring starts");
        assert_eq!(dst.host.calls, ["stop", "audit", "resubmit"]);
        let map = AuditMap::migrated(src_l, dst_l).unwrap();
        assert_eq!(dst.host.resubmitted.len(), 5);
        for (i, (w, audit)) in dst.host.resubmitted.iter().enumerate() {
            assert_eq!(*w, src.host.pending[i], "workload {i} in order, as saved");
            assert_eq!(*audit, Some(map), "the map is set first");
            let (ctx, ring) = w.check(&map).unwrap();
            assert_eq!(ctx - dst_l.aperture.base, w.lrca() - src_l.aperture.base);
            assert_eq!(
                ring - dst_l.hidden.base,
                u64::from(w.rb_start) - src_l.hidden.base
            );
        }
        // The guest's other graphics addresses go through the same map.
        let gma = src_l.aperture.base + 5 * 4096;
        assert_eq!(map.map_guest(gma, 4096), Ok(dst_l.aperture.base + 5 * 4096));
        assert!(map.map_guest(dst_l.aperture.end() - 4096, 4096).is_err());
        let id = AuditMap::identity(dst_l);
        assert_eq!(id.map_guest(0x1000, 4096), Ok(0x1000), "GVT-g checks");
    }

    /// Bytes the stop-copy sends after a pre-copy image `base` that was
    /// read whole (rust/migration.rs `build_final`): the delta to `full`
    /// if it is at most half as long, else `full`.
    fn stop_copy_bytes(base: &[u8], full: &[u8]) -> usize {
        let mut out = vec![0u8; full.len() / 2];
        stream::delta::write_delta(
            base,
            full,
            None::<&stream::ChangedEntries<Vec<u64>>>,
            &mut out,
        )
        .unwrap_or(full.len())
    }

    /// The image MIG_DATA_SIZE compares with the pre-copy image
    /// (rust/migration.rs `delta_now`).
    fn estimate_image(p: &GvtVgpu<FakeHost>) -> Vec<u8> {
        let mut img = vec![0u8; p.state_len()];
        let n = p.save_state_estimate(&mut img).unwrap();
        img.truncate(n);
        img
    }

    /// data-size: at GVT-g's largest type (V5_1, 7 MiB images), a guest
    /// with workloads queued when QEMU asks MIG_DATA_SIZE: the answer is
    /// at least what the stop-copy then sends, and close to it, and that
    /// is a small delta, not the full image (it used to be 80 bytes
    /// reported against 7,340,660 sent).
    #[test]
    fn data_size_covers_the_pending_workloads_v5_1() {
        // The mock's v5_1 places (tests/gvt-mock): graphics addresses of
        // the records fit their 32 bits.
        let l = GvtLayout::new((64 * MIB, 512 * MIB), (1024 * MIB, 2048 * MIB), 4).unwrap();
        let (mut p, _) = fake(&l, 41);
        let base = provider_image(&p);
        for n in [1usize, 3, MAX_PENDING] {
            p.host.pending = (0..n as u32).map(|i| record(&l, i)).collect();
            let estimate = stop_copy_bytes(&base, &estimate_image(&p));
            p.quiesce();
            let sent = stop_copy_bytes(&base, &provider_image(&p));
            p.resume();
            assert!(
                estimate >= sent,
                "{n} pending: {estimate} bytes reported, {sent} sent"
            );
            assert!(estimate - sent <= 64, "{n}: {estimate} vs {sent}");
            assert!(sent <= 1024 + n * WORKLOAD_LEN, "{n}: {sent} bytes sent");
        }
    }

    /// stop-copy-rollback: a guest that flooded the ELSP has more
    /// workloads queued at the stop than an image carries. The stop lets
    /// the queues drain down to [`MAX_PENDING`] (scheduling restarts, then
    /// stops again), and the save carries the rest, in order: none is
    /// dropped. Queues that do not drain fail the save by name, and the
    /// caller resumes the vGPU.
    #[test]
    fn a_flooded_queue_drains_to_what_an_image_carries() {
        let l = layout(0);
        let (mut p, _) = fake(&l, 51);
        let flood: Vec<PendingWorkload> = (0..300).map(|i| record(&l, i)).collect();
        p.host.pending = flood.clone();
        p.quiesce();
        assert_eq!(p.host.calls, ["stop", "start", "wait", "stop"]);
        let img = provider_image(&p);
        let hdr = stream::validate(&img, &limits()).unwrap();
        let (mut dst, _) = fake(&layout(1), 52);
        dst.restore_state(&hdr, &img, &mut NoMem).unwrap();
        let carried: Vec<PendingWorkload> = dst.host.resubmitted.iter().map(|r| r.0).collect();
        assert_eq!(carried.len(), MAX_PENDING);
        let ran = p.host.ran.len();
        assert_eq!(ran + carried.len(), flood.len(), "none dropped");
        assert!(
            p.host.ran == flood[..ran] && carried == flood[ran..],
            "in order"
        );
        // Few enough: no restart.
        let (mut q, _) = fake(&l, 53);
        q.host.pending = flood[..MAX_PENDING].to_vec();
        q.quiesce();
        assert_eq!(q.host.calls, ["stop"]);
        // A queue that does not drain fails the save, by name.
        let (mut r, _) = fake(&l, 54);
        r.host.pending = flood.clone();
        r.host.stuck = true;
        r.quiesce();
        let mut out = vec![0u8; r.state_len()];
        assert_eq!(
            r.save_state(&mut out),
            Err(StreamError::TooManyPending(300))
        );
        r.resume();
        assert!(!r.is_quiesced());
        assert_eq!(r.host.calls.last(), Some(&"start"));
    }

    /// A pending workload outside the guest's graphics memory refuses the
    /// image before kvmgt is touched; kvmgt refusing them is reported.
    #[test]
    fn bad_pending_workloads_are_refused() {
        let (src_l, dst_l) = (layout(0), layout(1));
        let (mut src, _) = fake(&src_l, 41);
        let mut bad = record(&src_l, 1);
        bad.rb_start = u32::try_from(dst_l.hidden.end()).unwrap() - 0x2000;
        src.host.pending = vec![record(&src_l, 0), bad];
        src.quiesce();
        let img = provider_image(&src);
        let hdr = stream::validate(&img, &limits()).unwrap();
        let (mut dst, _) = fake(&dst_l, 42);
        assert_eq!(
            dst.restore_state(&hdr, &img, &mut NoMem),
            Err(RestoreError::BadSection(Section::GvtWorkloads as u16))
        );
        assert!(dst.host.calls.is_empty() && dst.host.restored.is_empty());
        src.host.pending.pop();
        let img = provider_image(&src);
        let hdr = stream::validate(&img, &limits()).unwrap();
        dst.host.refuse_resubmit = true;
        assert_eq!(
            dst.restore_state(&hdr, &img, &mut NoMem),
            Err(RestoreError::Refused(Section::GvtWorkloads as u16))
        );
    }

    #[test]
    fn writable_frames_come_from_the_pins() {
        let (mut p, _) = fake(&layout(0), 9);
        p.host.pins = vec![(10, 2), (0x800, 512), (1 << 40, 1 << 30)];
        let mut got = Vec::new();
        p.for_each_writable_frame(&mut |g| got.push(g));
        assert_eq!(got.len(), 2 + 512 + 512, "huge ranges are clamped");
        assert_eq!(&got[..2], &[10, 11]);
        assert!(got.contains(&(0x800 + 511)));
    }

    /// GVT-g: a patched final delta restores the image kvmgt's save
    /// gives, with the workloads that appeared at the stop and changes in
    /// the registers, the marked GGTT entries and the fences.
    #[test]
    fn a_patched_final_image_is_the_one_gvt_saves() {
        use crate::stream::{digest, ChangedEntries, DeltaView};
        let l = layout(0);
        let (mut p, _) = fake(&l, 21);
        let base = provider_image(&p);
        let span = p.ggtt_in_image();
        let words = vec![0; ChangedEntries::<Vec<u64>>::words_for(span.entries)];
        let mut changed = ChangedEntries::new(span, words).unwrap();
        for i in [0usize, 5, 4096] {
            p.host.state.ggtt[i] ^= 0x7000;
            changed.mark(i as u64);
        }
        p.host.state.vregs[0x2000] ^= 1;
        p.host.state.fences[1] = 0;
        p.host.pending = (0..3).map(|i| record(&l, i)).collect();
        p.quiesce();
        let full = provider_image(&p);
        let len = p.state_len();
        let (mut scratch, mut out) = (vec![0u8; len], vec![0u8; len]);
        let (n, result) = p
            .save_delta(&base, Some(&changed), &mut scratch, &mut out, false)
            .unwrap();
        assert_eq!(Ok(result), digest(&full));
        assert!(n < 4096, "{n}");
        let v = DeltaView::parse(&out[..n]).unwrap();
        let mut got = vec![0u8; v.result_len()];
        v.apply(&base, &mut got, &limits()).unwrap();
        assert_eq!(got, full);
    }
}

// SPDX-License-Identifier: GPL-2.0

//! What a destination keeps of the images it receives.
//!
//! A source sends its pre-copy image, then the stop-copy one. A source
//! whose VMM opted in to VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2 may send
//! new initial data in between (VFIO_PRECOPY_INFO_REINIT): a new full
//! image, the base of the stop-copy delta, when the old base went stale.
//! Only the last full image and a delta over it give the state
//! ([`super::resolve`]). [`Incoming`] follows the images as their bytes
//! arrive: it says where to cut a write so that each image is seen
//! complete ([`Incoming::cut`]), validates each image as soon as it is
//! complete, and says how many bytes at the front a later full image made
//! obsolete ([`Incoming::arrived`]). A destination then buffers at most
//! one full image and the image after it, however many a source sends.
//!
//! An image found bad is not dropped: nothing more is checked or dropped,
//! and [`super::resolve`] names the fault when the resume is applied, as
//! for any other stream.

use super::{delta, validate, DeltaError, Limits, ResumeError};

/// Offset of the total length in an image header.
const TOTAL_AT: usize = 20;
/// Header bytes up to and including the total length.
const TOTAL_END: usize = TOTAL_AT + 4;

/// The images a destination received so far, as far as they are complete.
#[derive(Debug, Default, Clone, Copy)]
pub struct Incoming {
    /// Bytes at the front of the buffer that hold complete, validated
    /// images.
    checked: usize,
    /// Offset in the buffer of the last complete full image.
    last_full: usize,
    /// Stream offset of the last complete image if it is a delta.
    delta_at: Option<usize>,
    /// Bytes dropped from the front of the stream so far.
    dropped: usize,
    /// An image was found bad: the resume reports it.
    failed: bool,
}

/// The total length an image header at the start of `rest` declares.
fn declared_total(rest: &[u8]) -> Option<usize> {
    let b = rest.get(TOTAL_AT..TOTAL_END)?;
    usize::try_from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])).ok()
}

impl Incoming {
    /// Bytes dropped from the front of the stream: what a stream offset of
    /// the buffer adds to name a byte of the whole stream.
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// Of `avail` bytes about to be appended to the buffer `data`, how
    /// many to append before [`Incoming::arrived`] looks again: up to the
    /// end of the image in progress, or of its header's total length.
    /// At least one.
    pub fn cut(&self, data: &[u8], avail: usize) -> usize {
        let have = data.len().saturating_sub(self.checked);
        let need = match data.get(self.checked..).and_then(declared_total) {
            _ if self.failed => avail,
            Some(total) => total.saturating_sub(have),
            None => TOTAL_END.saturating_sub(have),
        };
        need.clamp(1, avail.max(1))
    }

    /// Bytes were appended to the buffer `data` (everything received and
    /// not dropped). Validates each image completed since the last call
    /// against `limits` and the destination's `provider` and `vgpu_type`.
    /// Returns how many bytes at the front of `data` the caller must drop
    /// now: every image before the last complete full image. An error
    /// names the first bad image; from then on nothing is dropped.
    pub fn arrived(
        &mut self,
        data: &[u8],
        limits: &Limits,
        provider: u16,
        vgpu_type: u16,
    ) -> Result<usize, ResumeError> {
        while !self.failed {
            let Some(rest) = data.get(self.checked..) else {
                break;
            };
            let Some(total) = declared_total(rest).filter(|&t| t <= rest.len()) else {
                break;
            };
            let at = self.dropped + self.checked;
            if let Err(e) = self.check(&rest[..total], at, limits, provider, vgpu_type) {
                self.failed = true;
                return Err(e);
            }
            // An image shorter than a header is refused by `validate`.
            self.checked += total;
        }
        let n = self.last_full;
        self.checked -= n;
        self.last_full = 0;
        self.dropped += n;
        Ok(n)
    }

    /// One complete image at stream offset `at` (buffer offset
    /// `self.checked`).
    fn check(
        &mut self,
        image: &[u8],
        at: usize,
        limits: &Limits,
        provider: u16,
        vgpu_type: u16,
    ) -> Result<(), ResumeError> {
        let hdr = validate(image, limits).map_err(|err| ResumeError::Image { at, err })?;
        if hdr.provider != provider || hdr.vgpu_type != vgpu_type {
            return Err(ResumeError::WrongDevice { at, hdr });
        }
        if let Some(prev) = self.delta_at {
            let err = DeltaError::NotLast;
            return Err(ResumeError::Delta { at: prev, err });
        }
        if delta::is_delta(&hdr, image) {
            self.delta_at = Some(at);
        } else {
            self.last_full = self.checked;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{
        resolve, ChangedEntries, EntrySpan, ImageSink, Resolved, Section, StreamError, Writer,
        FLAG_MANDATORY,
    };
    use super::*;
    use std::vec;
    use std::vec::Vec;

    const LIM: Limits = Limits {
        max_total: 1 << 16,
        max_section: 1 << 16,
    };
    const ENTRIES: usize = 512;
    const SPAN_AT: usize = 28 + 12 + 16 + 12;

    /// A full image: 16 bytes of registers, then `ENTRIES` GGTT entries
    /// (`seed` picks the registers and the first 8 entries).
    fn full(seed: u64) -> Vec<u8> {
        let mut buf = vec![0u8; 8192];
        let mut w = Writer::new(&mut buf, 1, 0).unwrap();
        w.section(Section::Regs as u16, FLAG_MANDATORY, 16, |p| {
            p.fill(seed as u8)
        })
        .unwrap();
        w.section(Section::Ggtt as u16, FLAG_MANDATORY, 8 * ENTRIES, |p| {
            for (i, e) in p.chunks_mut(8).enumerate() {
                let e8 = i as u64 * 4096 + if i < 8 { seed } else { 0 };
                e.copy_from_slice(&e8.to_le_bytes());
            }
        })
        .unwrap();
        let n = w.finish().unwrap();
        buf.truncate(n);
        buf
    }

    fn delta(base: &[u8], to: &[u8]) -> Vec<u8> {
        let span = EntrySpan {
            offset: SPAN_AT,
            entries: ENTRIES,
        };
        let words = vec![0; ChangedEntries::<Vec<u64>>::words_for(ENTRIES)];
        let mut changed = ChangedEntries::new(span, words).unwrap();
        (0..ENTRIES as u64).for_each(|i| changed.mark(i));
        let mut out = vec![0u8; to.len()];
        let n = delta::write_delta(base, to, Some(&changed), &mut out).unwrap();
        out.truncate(n);
        out
    }

    /// Feeds `stream` in writes of `chunk` bytes as a destination does:
    /// cut, append, drop. Returns what is buffered, the largest buffer and
    /// the first error.
    fn feed(stream: &[u8], chunk: usize) -> (Vec<u8>, usize, Option<ResumeError>) {
        let (mut inc, mut buf, mut most, mut err) = (Incoming::default(), Vec::new(), 0, None);
        for mut w in stream.chunks(chunk) {
            while !w.is_empty() {
                let n = inc.cut(&buf, w.len());
                buf.extend_from_slice(&w[..n]);
                most = most.max(buf.len());
                w = &w[n..];
                match inc.arrived(&buf, &LIM, 1, 0) {
                    Ok(d) => drop(buf.drain(..d)),
                    Err(e) => err = err.or(Some(e)),
                }
            }
        }
        (buf, most, err)
    }

    fn restored(buf: &[u8]) -> Vec<u8> {
        match resolve(buf, &LIM, 1, 0).unwrap() {
            Resolved::Full { image, .. } => image.to_vec(),
            Resolved::Delta { base, delta } => {
                let mut out = vec![0u8; delta.result_len()];
                delta.apply(base, &mut out, &LIM).unwrap();
                out
            }
        }
    }

    /// A source that re-sent its base three times: the destination keeps
    /// one full image and the delta over it, and restores the last state,
    /// whatever the write size.
    #[test]
    fn superseded_images_are_dropped_and_the_last_base_and_delta_restore() {
        let (a, b, c, d) = (full(1), full(2), full(3), full(4));
        let fin = delta(&c, &d);
        let stream = [&a[..], &b, &c, &fin].concat();
        for chunk in [1, 7, 24, 100, a.len(), a.len() + 3, stream.len()] {
            let (buf, most, err) = feed(&stream, chunk);
            assert_eq!(err, None, "chunk {chunk}");
            assert_eq!(buf, [&c[..], &fin].concat(), "chunk {chunk}");
            assert!(most <= 2 * a.len(), "chunk {chunk}: {most} bytes buffered");
            assert_eq!(restored(&buf), d);
        }
        // Without a REINIT nothing is dropped: base and delta.
        let plain = [&a[..], &delta(&a, &d)].concat();
        assert_eq!(feed(&plain, 100).0, plain);
    }

    /// A bad image is never dropped, nor anything after it: the resume
    /// refuses the stream as it refuses it whole.
    #[test]
    fn a_bad_image_is_kept_for_the_resume_to_refuse() {
        let (a, b) = (full(1), full(2));
        let mut bad = a.clone();
        bad[40] ^= 1;
        let stream = [&bad[..], &b].concat();
        let (buf, _, err) = feed(&stream, 64);
        assert_eq!(
            err,
            Some(ResumeError::Image {
                at: 0,
                err: StreamError::ChecksumMismatch
            })
        );
        assert_eq!(buf, stream);
        assert!(resolve(&buf, &LIM, 1, 0).is_err());
        // A full image after a delta: the delta was not last.
        let fin = delta(&a, &b);
        let stream = [&a[..], &fin, &b].concat();
        let (_, _, err) = feed(&stream, 64);
        assert_eq!(
            err,
            Some(ResumeError::Delta {
                at: a.len(),
                err: DeltaError::NotLast
            })
        );
        // Another device's image, after one that was dropped: its offset
        // counts the dropped bytes.
        let mut other = vec![0u8; 8192];
        let mut w = Writer::new(&mut other, 2, 0).unwrap();
        w.section(Section::Regs as u16, FLAG_MANDATORY, 16, |p| p.fill(9))
            .unwrap();
        let n = w.finish().unwrap();
        let stream = [&a[..], &b, &other[..n]].concat();
        let (buf, _, err) = feed(&stream, 64);
        assert!(
            matches!(err, Some(ResumeError::WrongDevice { at, .. }) if at == 2 * a.len()),
            "{err:?}"
        );
        assert_eq!(buf.len(), b.len() + n);
    }

    /// A header that declares less than a header is refused, not looped on.
    #[test]
    fn a_header_declaring_nothing_is_refused() {
        let mut a = full(1);
        a[TOTAL_AT..TOTAL_END].copy_from_slice(&0u32.to_le_bytes());
        let (_, _, err) = feed(&a, 5);
        assert!(
            matches!(err, Some(ResumeError::Image { at: 0, .. })),
            "{err:?}"
        );
    }
}

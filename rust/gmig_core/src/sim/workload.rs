// SPDX-License-Identifier: GPL-2.0

//! The synthetic workload: a stand-in for a guest GPU driver.
//!
//! It runs on a vGPU whose guest never programmed it (a QEMU guest with no
//! GPU driver): it takes the top of the vGPU's GGTT partition for itself,
//! maps it 1:1 onto a window of guest memory, puts a context image, a ring
//! and a batch buffer at the start of that window, and each frame builds a
//! batch of blits and stores over the rest (the working set) and submits it
//! through the same execlist path a guest driver uses.
//!
//! | profile | working set | rewritten per frame | frames/s | locality |
//! | --- | --- | --- | --- | --- |
//! | `idle` | 0 | 0 | 1 (empty batch) | - |
//! | `desktop` | 8 MiB | ~3 % (a few rectangles) | 30 | high: a moving window over a framebuffer |
//! | `game` | 16 MiB | ~20 % in large runs + scattered stores | 30 | render targets rewritten whole, plus random small writes |
//!
//! A frame whose blits exceed [`PIECE_BYTES`] (256 KiB) goes out as several
//! submissions spread over the frame interval (as a driver splits a frame
//! into batches), so no single context runs long: quiescing the vGPU waits
//! for one piece at most. Submissions are at least 1 ms apart, so a frame of
//! more pieces than its interval has milliseconds (game, working sets above
//! ~40 MiB) runs at a lower frame rate than the table's.
//!
//! The working set is clamped to what the partition and the guest window can
//! hold. By default the window starts at guest physical 16 MiB (clear of
//! firmware and boot code); `base=` and `size=` choose another one.

use super::super::gtt::{Pte, PAGE_SIZE};
use super::super::mem::{GuestMem, MemFault};
use super::exec::{CtxSlot, LRC_MAGIC};
use super::regs::GGTT_OFFSET;
use super::vgpu::{Event, SimVgpu, REGION_BAR0};

/// Pages used by the context image, ring and batch.
const META_PAGES: u64 = 1 + 2 + 16;
const RING_SIZE: u64 = 2 * PAGE_SIZE;
const BATCH_SIZE: u64 = 16 * PAGE_SIZE;
/// Pitch of the working set seen as a 32 bpp surface: one page per row.
const PITCH: u64 = PAGE_SIZE;
/// Most bytes of blits one submission carries (a frame may take several).
pub const PIECE_BYTES: u64 = 256 << 10;

/// Writes `words` little-endian into `out` (as many as fit).
///
/// Index loops rather than `chunks_exact_mut().zip()`: with rustc 1.96 the
/// latter leaves a division-by-zero panic path that Linux 7.3's objtool
/// does not know to be noreturn, and it warns.
pub(super) fn put_le32(out: &mut [u8], words: &[u32]) {
    for (i, w) in words.iter().enumerate() {
        if let Some(c) = out.get_mut(4 * i..4 * i + 4) {
            c.copy_from_slice(&w.to_le_bytes());
        }
    }
}

/// Maps `pages` guest pages from `base` at the top of `vgpu`'s partition,
/// through BAR0 as a guest driver writes its GGTT; `on_event` sees each
/// update. `None` if an address does not fit a PTE or BAR0 refuses.
pub(super) fn map_top<S, C>(
    vgpu: &mut SimVgpu<S, C>,
    base: u64,
    pages: u64,
    on_event: &mut impl FnMut(Event),
) -> Option<()>
where
    S: core::ops::DerefMut<Target = [u64]>,
    C: core::ops::DerefMut<Target = [CtxSlot]>,
{
    let p = vgpu.partition();
    let first = (p.base + p.size) / PAGE_SIZE - pages;
    for i in 0..pages {
        let pte = Pte::new(base + i * PAGE_SIZE, 0)?.encode();
        let off = GGTT_OFFSET + (first + i) * 8;
        on_event(
            vgpu.region_write(REGION_BAR0, off, &pte.to_le_bytes())
                .ok()?,
        );
    }
    Some(())
}

/// A workload profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    /// Name used in the debugfs file.
    pub name: &'static str,
    /// Working set in bytes.
    pub working_set: u64,
    /// Per mille of the working set rewritten per frame.
    pub rewrite_permille: u32,
    /// Frames per second.
    pub fps: u32,
    /// Scattered MI_STORE_DATA_IMM writes per frame.
    pub scattered: u32,
}

/// The profiles.
pub const PROFILES: &[Profile] = &[
    Profile {
        name: "idle",
        working_set: 0,
        rewrite_permille: 0,
        fps: 1,
        scattered: 0,
    },
    Profile {
        name: "desktop",
        working_set: 8 << 20,
        rewrite_permille: 30,
        fps: 30,
        scattered: 4,
    },
    Profile {
        name: "game",
        working_set: 16 << 20,
        rewrite_permille: 200,
        fps: 30,
        scattered: 64,
    },
];

/// Parameters of `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// The profile.
    pub profile: &'static Profile,
    /// Guest physical base of the window (`base=`).
    pub base: u64,
    /// Window size (`size=`), 0 = the profile's working set plus metadata.
    pub size: u64,
}

/// A command written to the debugfs `workload` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `start <profile> [base=<iova>] [size=<bytes>]`.
    Start(Params),
    /// `start replay [base=<iova>] [size=<bytes>]`: the replay loaded
    /// through the debugfs `replay` file ([`super::replay`]); size 0 is
    /// what the replay needs.
    Replay {
        /// Guest physical base of the window.
        base: u64,
        /// Window size, 0 = the replay's own.
        size: u64,
    },
    /// `stop`.
    Stop,
}

/// Why a command or a set-up was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadError {
    /// Not `start ...` or `stop`.
    Syntax,
    /// No such profile.
    UnknownProfile,
    /// A number that does not parse or overflows.
    BadNumber,
    /// The window is not page aligned, too small, or does not fit the
    /// partition.
    BadWindow,
    /// Guest memory of the window is not reachable.
    GuestMemory(MemFault),
    /// The submission queue is full (the streamer is behind).
    Busy,
}

fn parse_num(s: &str) -> Result<u64, WorkloadError> {
    let (digits, mult) = match s.as_bytes().last() {
        Some(b'K' | b'k') => (&s[..s.len() - 1], 1u64 << 10),
        Some(b'M' | b'm') => (&s[..s.len() - 1], 1 << 20),
        Some(b'G' | b'g') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    let v = if let Some(hex) = digits.strip_prefix("0x") {
        u64::from_str_radix(hex, 16)
    } else {
        digits.parse::<u64>()
    }
    .map_err(|_| WorkloadError::BadNumber)?;
    v.checked_mul(mult).ok_or(WorkloadError::BadNumber)
}

impl Command {
    /// Parses the text written to the `workload` file.
    pub fn parse(text: &str) -> Result<Self, WorkloadError> {
        let mut words = text.split_ascii_whitespace();
        match words.next() {
            Some("stop") if words.next().is_none() => Ok(Command::Stop),
            Some("start") => {
                let name = words.next().ok_or(WorkloadError::Syntax)?;
                let (mut base, mut size) = (16 << 20, 0);
                for w in words {
                    match w.split_once('=') {
                        Some(("base", v)) => base = parse_num(v)?,
                        Some(("size", v)) => size = parse_num(v)?,
                        _ => return Err(WorkloadError::Syntax),
                    }
                }
                if name == "replay" {
                    return Ok(Command::Replay { base, size });
                }
                let profile = PROFILES
                    .iter()
                    .find(|p| p.name == name)
                    .ok_or(WorkloadError::UnknownProfile)?;
                Ok(Command::Start(Params {
                    profile,
                    base,
                    size,
                }))
            }
            _ => Err(WorkloadError::Syntax),
        }
    }
}

/// A running synthetic workload.
#[derive(Debug, Clone)]
pub struct Workload {
    profile: &'static Profile,
    /// Guest physical base of the window.
    base: u64,
    /// Graphics address where the window is mapped.
    gbase: u64,
    /// Pages of working set.
    ws_pages: u64,
    /// Submissions built so far (pieces of frames).
    frame: u64,
    /// Submissions per frame.
    pieces: u64,
    rng: u64,
    tail: u32,
}

impl Workload {
    /// Lists the profiles (for reads of the debugfs file).
    pub fn describe_profiles(f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        writeln!(f, "profiles:")?;
        for p in PROFILES {
            writeln!(
                f,
                "  {}: working_set={} KiB rewrite={}/1000 fps={} scattered={}",
                p.name,
                p.working_set >> 10,
                p.rewrite_permille,
                p.fps,
                p.scattered
            )?;
        }
        writeln!(
            f,
            "usage: start <profile>|replay [base=<iova>] [size=<bytes>] | stop"
        )
    }

    /// The profile's name.
    pub fn profile_name(&self) -> &'static str {
        self.profile.name
    }

    /// Milliseconds between submissions (frame interval / pieces).
    pub fn frame_interval_ms(&self) -> u32 {
        let frame = 1000 / self.profile.fps.max(1);
        (frame / u32::try_from(self.pieces).unwrap_or(1).max(1)).max(1)
    }

    /// Submissions per frame.
    pub fn pieces(&self) -> u64 {
        self.pieces
    }

    /// Rows (pages) the frame's blits rewrite.
    fn frame_run(profile: &Profile, rows: u64) -> u64 {
        (rows * u64::from(profile.rewrite_permille) / 1000).max(1)
    }

    /// Graphics address of the window (in the vGPU's partition).
    pub fn gbase(&self) -> u64 {
        self.gbase
    }

    /// Guest frames of the working set.
    pub fn working_set(&self) -> (u64, u64) {
        (self.base / PAGE_SIZE + META_PAGES, self.ws_pages)
    }

    /// Maps the window into the top of the partition (through the same BAR0
    /// GGTT path a guest uses), writes the context image and an empty ring.
    /// `on_event` sees each GGTT update.
    pub fn setup<
        S: core::ops::DerefMut<Target = [u64]>,
        C: core::ops::DerefMut<Target = [CtxSlot]>,
    >(
        params: Params,
        vgpu: &mut SimVgpu<S, C>,
        mem: &mut impl GuestMem,
        on_event: &mut impl FnMut(Event),
    ) -> Result<Self, WorkloadError> {
        let p = vgpu.partition();
        let want = if params.size != 0 {
            params.size
        } else {
            params.profile.working_set + META_PAGES * PAGE_SIZE
        };
        // The bottom MiB of the partition stays the guest's.
        let max = p.size.saturating_sub(1 << 20);
        let size = want.min(max);
        if !params.base.is_multiple_of(PAGE_SIZE)
            || size % PAGE_SIZE != 0
            || size < META_PAGES * PAGE_SIZE
        {
            return Err(WorkloadError::BadWindow);
        }
        params
            .base
            .checked_add(size)
            .ok_or(WorkloadError::BadWindow)?;
        let gbase = p.base + p.size - size;
        map_top(vgpu, params.base, size / PAGE_SIZE, on_event).ok_or(WorkloadError::BadWindow)?;
        let ws_pages = size / PAGE_SIZE - META_PAGES;
        let run_bytes = Self::frame_run(params.profile, ws_pages) * PITCH;
        let pieces = run_bytes.div_ceil(PIECE_BYTES).max(1);
        let w = Self {
            profile: params.profile,
            base: params.base,
            gbase,
            ws_pages,
            frame: 0,
            pieces,
            rng: 0x9e37_79b9_7f4a_7c15 ^ params.base,
            tail: 0,
        };
        w.write_context(mem, 0)?;
        Ok(w)
    }

    fn write_context(&self, mem: &mut impl GuestMem, tail: u32) -> Result<(), WorkloadError> {
        let ring = (self.gbase + PAGE_SIZE) as u32;
        let words = [LRC_MAGIC, ring, RING_SIZE as u32, tail, tail, 0, 0];
        let mut b = [0u8; 28];
        put_le32(&mut b, &words);
        mem.write(self.base, &b).map_err(WorkloadError::GuestMemory)
    }

    fn next_rand(&mut self) -> u64 {
        // splitmix64
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Builds the batch of one submission (a frame, or a piece of one)
    /// into `out` (dwords); returns its length.
    pub fn build_frame(&mut self, out: &mut [u32]) -> usize {
        let mut n = 0usize;
        let mut push = |out: &mut [u32], dws: &[u32]| {
            if let Some(dst) = out.get_mut(n..n + dws.len()) {
                for (d, s) in dst.iter_mut().zip(dws) {
                    *d = *s;
                }
                n += dws.len();
            }
        };
        let ws_g = self.gbase + META_PAGES * PAGE_SIZE;
        let rows = self.ws_pages;
        let frame = self.frame;
        self.frame += 1;
        if rows > 0 {
            // Rewrite a run of whole rows (pages), starting where the
            // profile's locality puts it: this submission's share of the
            // frame's run.
            let pieces = self.pieces.max(1);
            let run = Self::frame_run(self.profile, rows).div_ceil(pieces);
            let start = if self.profile.rewrite_permille >= 200 {
                (frame * run) % rows
            } else {
                self.next_rand() % rows
            };
            let mut y = start;
            let mut left = run;
            while left > 0 {
                let h = left.min(rows - y).min(0xffff);
                let color = (frame as u32).wrapping_mul(0x0101_0101) ^ (y as u32);
                let dst = ws_g;
                push(
                    out,
                    &[
                        (2 << 29) | (0x50 << 22) | (3 << 20) | 5,
                        (3 << 24) | (0xf0 << 16) | PITCH as u32,
                        (y as u32) << 16,
                        (((y + h) as u32) << 16) | (PITCH / 4) as u32,
                        dst as u32,
                        (dst >> 32) as u32,
                        color,
                    ],
                );
                left -= h;
                y = (y + h) % rows;
            }
            let scattered = u64::from(self.profile.scattered).div_ceil(pieces);
            for _ in 0..scattered {
                let page = self.next_rand() % rows;
                let off = (self.next_rand() % (PAGE_SIZE / 8)) * 8;
                let a = ws_g + page * PAGE_SIZE + off;
                push(
                    out,
                    &[
                        (0x20 << 23) | (1 << 22) | 2,
                        a as u32,
                        (a >> 32) as u32,
                        frame as u32,
                    ],
                );
            }
        }
        push(out, &[0x0a << 23]); // MI_BATCH_BUFFER_END
        n
    }

    /// Builds a frame, writes it to the batch buffer and the ring, and
    /// submits the context.
    pub fn submit_frame<
        S: core::ops::DerefMut<Target = [u64]>,
        C: core::ops::DerefMut<Target = [CtxSlot]>,
    >(
        &mut self,
        vgpu: &mut SimVgpu<S, C>,
        mem: &mut impl GuestMem,
        scratch: &mut [u32],
    ) -> Result<(), WorkloadError> {
        if vgpu.pending().len() >= 2 {
            return Err(WorkloadError::Busy);
        }
        let limit = scratch.len().min((BATCH_SIZE / 4) as usize);
        let n = self.build_frame(scratch.get_mut(..limit).unwrap_or(&mut []));
        let batch_gpa = self.base + 3 * PAGE_SIZE;
        for (i, chunk) in scratch.get(..n).unwrap_or(&[]).chunks(64).enumerate() {
            let mut b = [0u8; 256];
            put_le32(&mut b, chunk);
            mem.write(batch_gpa + 256 * i as u64, &b[..4 * chunk.len()])
                .map_err(WorkloadError::GuestMemory)?;
        }
        // Ring: MI_BATCH_BUFFER_START (GGTT) + MI_NOOP, 16 bytes.
        let batch_g = self.gbase + 3 * PAGE_SIZE;
        let cmd = [(0x31 << 23) | 1, batch_g as u32, (batch_g >> 32) as u32, 0];
        let mut b = [0u8; 16];
        put_le32(&mut b, &cmd);
        let head = self.tail;
        mem.write(self.base + PAGE_SIZE + u64::from(head), &b)
            .map_err(WorkloadError::GuestMemory)?;
        self.tail = ((u64::from(head) + 16) % RING_SIZE) as u32;
        // Context image: head stays where the streamer left it.
        let mut hb = [0u8; 4];
        mem.read(self.base + 12, &mut hb)
            .map_err(WorkloadError::GuestMemory)?;
        let ring = (self.gbase + PAGE_SIZE) as u32;
        let words = [
            LRC_MAGIC,
            ring,
            RING_SIZE as u32,
            u32::from_le_bytes(hb),
            self.tail,
            0,
            0,
        ];
        let mut img = [0u8; 28];
        put_le32(&mut img, &words);
        mem.write(self.base, &img)
            .map_err(WorkloadError::GuestMemory)?;
        match vgpu.submit(self.gbase | (0xfeed_u64 << 32)) {
            Event::Submit => Ok(()),
            _ => Err(WorkloadError::Busy),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_frames_go_out_in_pieces_of_bounded_size() {
        let game = &PROFILES[2];
        for (ws_pages, want) in [(4096u64, 13u64), (16384, 52), (262_144, 820), (64, 1)] {
            let mut w = Workload {
                profile: game,
                base: 0,
                gbase: 0,
                ws_pages,
                frame: 0,
                pieces: 1,
                rng: 1,
                tail: 0,
            };
            let run_bytes = Workload::frame_run(game, ws_pages) * PITCH;
            w.pieces = run_bytes.div_ceil(PIECE_BYTES).max(1);
            assert_eq!(w.pieces, want, "{ws_pages}");
            let mut out = std::vec![0u32; 4096];
            let mut blitted = 0u64;
            for _ in 0..w.pieces {
                let n = w.build_frame(&mut out);
                // XY_COLOR_BLT rows: dword 3 has y2, dword 2 y1.
                let mut i = 0;
                while i < n {
                    if out[i] >> 22 == (2 << 7) | 0x50 {
                        let rows = u64::from(out[i + 3] >> 16) - u64::from(out[i + 2] >> 16);
                        assert!(rows * PITCH <= PIECE_BYTES + PITCH);
                        blitted += rows;
                        i += 7;
                    } else {
                        i += if out[i] >> 23 == 0x20 { 4 } else { 1 };
                    }
                }
            }
            // One frame's worth of rewrite, whatever the split.
            let run = Workload::frame_run(game, ws_pages);
            assert!(
                blitted >= run && blitted <= run + w.pieces,
                "{blitted} vs {run}"
            );
            assert!(w.frame_interval_ms() >= 1);
        }
    }
}

// SPDX-License-Identifier: GPL-2.0

//! What one command may write, from its fields alone: the command
//! write-set analysis a provider applies to each command before it runs.
//!
//! The sim's command streamer and GVT-g's command scanner hook both see
//! every command before the GPU runs it. [`command_write`] says, from the
//! command's dwords, whether it writes memory and where, in graphics
//! addresses; [`record_write`] turns that into guest frames for a
//! [`WriteSink`] through the caller's translation. A command whose write
//! set cannot be bounded this way is [`CmdWrite::Unbounded`]: the caller
//! then counts every tracked page (never a page missed).
//!
//! | command | write |
//! | --- | --- |
//! | MI_STORE_DATA_IMM | its `len - 3` data dwords at the address |
//! | MI_STORE_REGISTER_MEM | 4 bytes at the address |
//! | MI_FLUSH_DW, PIPE_CONTROL with a post-sync op | 8 bytes at the address (or [`CmdWrite::StatusPage`] with store-data-index; nothing with PIPE_CONTROL's MMIO-write bit 23) |
//! | MI_STORE_DATA_INDEX | [`CmdWrite::StatusPage`] |
//! | XY_COLOR_BLT, XY_SRC_COPY_BLT | the destination rectangle's bytes, tile rows when tiled (dw0 bit 11) |
//! | XY_FAST_COPY_BLT | the destination rectangle's bytes if linear; tiled is unbounded |
//! | XY_SETUP_CLIP_BLT | nothing |
//! | other XY_* blits | unbounded (their destination is setup state) |
//! | 3DPRIMITIVE, GPGPU_WALKER, MEDIA_OBJECT*, 3DSTATE_WM_HZ_OP | unbounded (they write through state: render targets, UAVs, depth/HiZ buffers) |
//! | MI_ATOMIC, MI_COPY_MEM_MEM, MI_REPORT_PERF_COUNT, MI_UPDATE_GTT, MI_CLFLUSH, MI_RS_STORE_DATA_IMM, MI_STORE_URB_MEM, ... (every MI command with addresses the parser does not decode), MI_SEMAPHORE_SIGNAL | unbounded |
//! | a command the parser does not know or cannot parse | unbounded |
//! | anything else (state, batch starts and ends, loads, waits) | nothing |
//!
//! Encodings are those of [`super::super::cmd`] (GVT-g's `cmd_parser.c`
//! table, i915's `intel_gpu_commands.h`); 3DSTATE_WM_HZ_OP (0x7852) runs a
//! depth clear or resolve without a 3DPRIMITIVE (Mesa's blorp HiZ ops on
//! Gen8/9 emit it between two PIPE_CONTROLs).

use super::super::cmd::{Client, Command, Kind, Mode, Space};
use super::super::gtt::PAGE_SIZE;
use super::WriteSink;

/// Pages one bounded write may span at most (16 MiB, a 2048x2048 32 bpp
/// surface); a larger one is recorded as unbounded.
pub const MAX_WRITE_PAGES: u64 = 4096;

/// Tile rows a tiled blit's destination is rounded to (Y tiles are 32
/// rows high, X tiles 8).
const TILE_ROWS: u64 = 32;

/// What a command may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmdWrite {
    /// No memory.
    Nothing,
    /// At most `len` bytes from graphics address `addr` in `space`.
    Range {
        /// Address space of `addr`.
        space: Space,
        /// First byte.
        addr: u64,
        /// Bytes (at least 1).
        len: u64,
    },
    /// An index into the engine's or the context's hardware status page.
    StatusPage,
    /// Memory the command alone does not bound.
    Unbounded,
}

/// GFXPIPE commands that make a GPU write memory through state (render
/// targets, UAVs, media surfaces, depth and HiZ buffers): 3DPRIMITIVE,
/// GPGPU_WALKER, MEDIA_OBJECT, MEDIA_OBJECT_PRT, MEDIA_OBJECT_WALKER and
/// 3DSTATE_WM_HZ_OP.
pub fn writes_through_state(dw0: u32) -> bool {
    matches!(
        dw0 & 0xffff_0000,
        0x7b00_0000 | 0x7105_0000 | 0x7100_0000 | 0x7102_0000 | 0x7103_0000 | 0x7852_0000
    )
}

fn range(space: Space, addr: u64, len: u64) -> CmdWrite {
    if len == 0 {
        return CmdWrite::Nothing;
    }
    match addr.checked_add(len) {
        Some(_) => CmdWrite::Range { space, addr, len },
        None => CmdWrite::Unbounded,
    }
}

/// The write of a command whose address field `at` (dword index) holds
/// the destination, `len` bytes; unbounded if the parser found no field
/// there (a layout it refused).
fn at_field(c: &Command, cmd: &[u32], at: usize, len: u64) -> CmdWrite {
    match c.addrs().iter().find(|a| a.dword == at) {
        Some(a) => match a.read(cmd) {
            Some(addr) => range(a.space, addr, len),
            None => CmdWrite::Unbounded,
        },
        None => CmdWrite::Unbounded,
    }
}

/// The one address space through which a command whose writes
/// [`command_write`] cannot bound writes, if there is one: draws,
/// dispatches, media commands and depth/HiZ operations write surfaces
/// through the 3D and media state space (`mode.gfx`, the context's PPGTT
/// in execlist mode), and MI commands carrying addresses the parser does
/// not decode (MI_ATOMIC, MI_COPY_MEM_MEM, MI_REPORT_PERF_COUNT, ...)
/// through the space their GGTT bits name ([`Command::opaque`]). `None`:
/// not known. A caller may then bound the command by every page that
/// space maps, instead of every tracked page.
pub fn unbounded_space(cmd: &[u32], mode: Mode) -> Option<Space> {
    let c = Command::decode(cmd, 0, mode).ok()?;
    if writes_through_state(c.header) {
        return Some(mode.gfx);
    }
    match c.kind {
        Kind::Other {
            client: Client::Mi, ..
        } => c.opaque,
        _ => None,
    }
}

/// The destination bytes of an XY_* blit of `bpp` bytes per pixel, pitch
/// `pitch` bytes (`tiled`: the destination is tiled), rectangle from
/// `y1x1` to `y2x2` (exclusive) at `dst` in `space`.
fn blit(
    space: Space,
    dst: u64,
    bpp: u64,
    pitch: u64,
    tiled: bool,
    y1x1: u32,
    y2x2: u32,
) -> CmdWrite {
    let (x1, y1) = (u64::from(y1x1 & 0xffff), u64::from(y1x1 >> 16));
    let (x2, y2) = (u64::from(y2x2 & 0xffff), u64::from(y2x2 >> 16));
    // An empty or inverted rectangle is undefined on the hardware.
    if x2 <= x1 || y2 <= y1 {
        return CmdWrite::Unbounded;
    }
    let (start, end) = if tiled {
        // A tile row of a surface whose pitch is a whole number of tiles
        // is contiguous; tiles are at least 128 bytes wide.
        if pitch == 0 || !pitch.is_multiple_of(128) {
            return CmdWrite::Unbounded;
        }
        (
            y1 / TILE_ROWS * TILE_ROWS * pitch,
            y2.div_ceil(TILE_ROWS) * TILE_ROWS * pitch,
        )
    } else {
        // Rows y1..y2 of x1..x2 lie within one span from the first
        // row's first byte to the last row's last (pitch >= 0).
        (y1 * pitch + x1 * bpp, (y2 - 1) * pitch + x2 * bpp)
    };
    match dst.checked_add(start) {
        Some(addr) => range(space, addr, end - start),
        None => CmdWrite::Unbounded,
    }
}

/// What the command at the start of `cmd` (the whole command, as
/// [`Command::decode`] wants it) may write; `mode` assigns address spaces
/// to commands without an explicit bit, as for [`Command::decode`].
pub fn command_write(cmd: &[u32], mode: Mode) -> CmdWrite {
    let Ok(c) = Command::decode(cmd, 0, mode) else {
        return CmdWrite::Unbounded;
    };
    let dw = |i: usize| cmd.get(i).copied().unwrap_or(0);
    let len = c.len as u64;
    match c.kind {
        Kind::MiStoreDataImm => {
            if len < 4 {
                return CmdWrite::Unbounded;
            }
            at_field(&c, cmd, 1, 4 * (len - 3))
        }
        Kind::MiStoreRegisterMem => at_field(&c, cmd, 2, 4),
        Kind::MiFlushDw => {
            let dw0 = c.header;
            if (dw0 >> 14) & 3 == 0 {
                CmdWrite::Nothing
            } else if dw0 & (1 << 21) != 0 {
                CmdWrite::StatusPage
            } else {
                at_field(&c, cmd, 1, 8)
            }
        }
        Kind::PipeControl => {
            let dw1 = dw(1);
            if (dw1 >> 14) & 3 == 0 || dw1 & (1 << 23) != 0 {
                CmdWrite::Nothing
            } else if dw1 & (1 << 21) != 0 {
                CmdWrite::StatusPage
            } else {
                at_field(&c, cmd, 2, 8)
            }
        }
        Kind::XyColorBlt | Kind::XySrcCopyBlt => {
            let br13 = dw(1);
            let bpp = [1u64, 2, 2, 4][((br13 >> 24) & 3) as usize];
            let field = u64::from(br13 & 0xffff);
            // A negative (bottom-up) pitch is not followed.
            if field & 0x8000 != 0 {
                return CmdWrite::Unbounded;
            }
            let tiled = c.header & (1 << 11) != 0;
            // Tiled pitches are in dwords.
            let pitch = if tiled { field * 4 } else { field };
            match c
                .addrs()
                .iter()
                .find(|a| a.dword == 4)
                .and_then(|a| Some((a.space, a.read(cmd)?)))
            {
                Some((space, dst)) => blit(space, dst, bpp, pitch, tiled, dw(2), dw(3)),
                None => CmdWrite::Unbounded,
            }
        }
        Kind::XyFastCopyBlt => {
            let dw1 = dw(1);
            let bpp = match (dw1 >> 24) & 7 {
                0 => 1u64,
                1 => 2,
                2 => 4,
                3 => 8,
                4 => 16,
                _ => return CmdWrite::Unbounded,
            };
            if (c.header >> 13) & 3 != 0 {
                return CmdWrite::Unbounded;
            }
            let pitch = u64::from(dw1 & 0xffff);
            if pitch & 0x8000 != 0 {
                return CmdWrite::Unbounded;
            }
            match c
                .addrs()
                .iter()
                .find(|a| a.dword == 4)
                .and_then(|a| Some((a.space, a.read(cmd)?)))
            {
                Some((space, dst)) => blit(space, dst, bpp, pitch, false, dw(2), dw(3)),
                None => CmdWrite::Unbounded,
            }
        }
        Kind::Other {
            client: Client::Blt,
            opcode,
        } => {
            if opcode == 0x03 {
                CmdWrite::Nothing
            } else {
                CmdWrite::Unbounded
            }
        }
        Kind::Other {
            client: Client::Gfx,
            ..
        } => {
            if writes_through_state(c.header) {
                CmdWrite::Unbounded
            } else {
                CmdWrite::Nothing
            }
        }
        Kind::Other {
            client: Client::Mi,
            opcode,
        } => {
            if c.opaque.is_some() || opcode == 0x1b {
                CmdWrite::Unbounded
            } else if opcode == 0x21 {
                CmdWrite::StatusPage
            } else {
                CmdWrite::Nothing
            }
        }
        Kind::MiNoop
        | Kind::MiBatchBufferEnd
        | Kind::MiBatchBufferStart { .. }
        | Kind::MiLoadRegisterMem
        | Kind::MiConditionalBatchBufferEnd
        | Kind::MiSemaphoreWait
        | Kind::StateBaseAddress
        | Kind::VertexBuffers
        | Kind::IndexBuffer
        | Kind::DepthBuffer
        | Kind::StencilBuffer
        | Kind::HierDepthBuffer => CmdWrite::Nothing,
    }
}

/// Tells `sink` the guest frames behind `w`: each page of a
/// [`CmdWrite::Range`] through `translate(space, page address)`. A page
/// that does not translate, a range of more than [`MAX_WRITE_PAGES`]
/// pages, and [`CmdWrite::Unbounded`] make the sink unbounded.
/// [`CmdWrite::Nothing`] and [`CmdWrite::StatusPage`] record nothing (the
/// caller knows where its status pages are).
pub fn record_write(
    w: CmdWrite,
    mut translate: impl FnMut(Space, u64) -> Option<u64>,
    sink: &mut impl WriteSink,
) {
    match w {
        CmdWrite::Nothing | CmdWrite::StatusPage => {}
        CmdWrite::Unbounded => sink.unbounded(),
        CmdWrite::Range { space, addr, len } => {
            let first = addr / PAGE_SIZE;
            let last = addr.saturating_add(len.max(1) - 1) / PAGE_SIZE;
            if last - first >= MAX_WRITE_PAGES {
                sink.unbounded();
                return;
            }
            for page in first..=last {
                match translate(space, page * PAGE_SIZE) {
                    Some(gfn) => sink.may_write(gfn),
                    None => {
                        sink.unbounded();
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: u32 = 0x0400_0000;

    fn w(cmd: &[u32]) -> CmdWrite {
        command_write(cmd, Mode::GGTT)
    }

    fn ggtt(addr: u64, len: u64) -> CmdWrite {
        CmdWrite::Range {
            space: Space::Ggtt,
            addr,
            len,
        }
    }

    #[test]
    fn the_space_of_what_cannot_be_bounded() {
        let ppgtt = Mode::PPGTT;
        // 3DPRIMITIVE: the 3D state space.
        let draw = [0x7b00_0005, 0, 3, 0, 1, 0, 0];
        assert_eq!(unbounded_space(&draw, ppgtt), Some(Space::Ppgtt));
        assert_eq!(unbounded_space(&draw, Mode::GGTT), Some(Space::Ggtt));
        // MI_ATOMIC: its Use Global GTT bit (22).
        let atomic = |g: u32| [(0x2f << 23) | (g << 22) | 1, 0x1000, 0];
        assert_eq!(command_write(&atomic(0), ppgtt), CmdWrite::Unbounded);
        assert_eq!(unbounded_space(&atomic(0), ppgtt), Some(Space::Ppgtt));
        assert_eq!(unbounded_space(&atomic(1), ppgtt), Some(Space::Ggtt));
        // Unknown commands: nothing known.
        assert_eq!(unbounded_space(&[0xffff_ffff], ppgtt), None);
    }

    #[test]
    fn stores_and_post_sync_writes() {
        let g = u64::from(G);
        // MI_STORE_DATA_IMM, one and two dwords, GGTT and PPGTT.
        assert_eq!(
            w(&[(0x20 << 23) | (1 << 22) | 2, G + 0x40, 0, 7]),
            ggtt(g + 0x40, 4)
        );
        assert_eq!(
            w(&[(0x20 << 23) | (1 << 22) | 3, G + 0x40, 0, 7, 8]),
            ggtt(g + 0x40, 8)
        );
        assert_eq!(
            w(&[(0x20 << 23) | 2, 0x1000, 1, 7]),
            CmdWrite::Range {
                space: Space::Ppgtt,
                addr: 0x1_0000_1000,
                len: 4
            }
        );
        // MI_STORE_REGISTER_MEM.
        assert_eq!(
            w(&[(0x24 << 23) | (1 << 22) | 2, 0x2358, G + 8, 0]),
            ggtt(g + 8, 4)
        );
        // MI_FLUSH_DW: post-sync write, none, store-data-index.
        assert_eq!(
            w(&[(0x26 << 23) | (1 << 14) | 2, (G + 0x80) | 4, 0, 1]),
            ggtt(g + 0x80, 8)
        );
        assert_eq!(w(&[(0x26 << 23) | 2, 0, 0, 0]), CmdWrite::Nothing);
        assert_eq!(
            w(&[(0x26 << 23) | (1 << 21) | (1 << 14) | 2, 0x40, 0, 1]),
            CmdWrite::StatusPage
        );
        // PIPE_CONTROL: post-sync (GGTT bit 24), MMIO write, index.
        let pc = |dw1: u32| w(&[0x7a00_0004, dw1, G + 0x100, 0, 1, 2]);
        assert_eq!(pc((1 << 24) | (1 << 14)), ggtt(g + 0x100, 8));
        assert_eq!(pc((1 << 24) | (3 << 14)), ggtt(g + 0x100, 8));
        assert_eq!(pc((1 << 24) | (1 << 23) | (1 << 14)), CmdWrite::Nothing);
        assert_eq!(pc((1 << 24) | (1 << 21) | (1 << 14)), CmdWrite::StatusPage);
        assert_eq!(pc(1 << 12), CmdWrite::Nothing);
        // MI_STORE_DATA_INDEX.
        assert_eq!(w(&[(0x21 << 23) | 1, 0x40, 7]), CmdWrite::StatusPage);
    }

    #[test]
    fn blit_rectangles() {
        let g = u64::from(G);
        let color = |dw0x: u32, br13: u32, y1x1: u32, y2x2: u32| {
            w(&[
                (2 << 29) | (0x50 << 22) | dw0x | 5,
                br13,
                y1x1,
                y2x2,
                G,
                0,
                1,
            ])
        };
        // 32 bpp, pitch 4096, rows 2..5, x 8..16.
        assert_eq!(
            color(0, (3 << 24) | 4096, (2 << 16) | 8, (5 << 16) | 16),
            ggtt(g + 2 * 4096 + 32, 2 * 4096 + 64 - 32)
        );
        // 8 bpp.
        assert_eq!(
            color(0, 256, (1 << 16) | 4, (2 << 16) | 6),
            ggtt(g + 256 + 4, 2)
        );
        // Tiled (pitch in dwords): whole 32-row tile rows.
        assert_eq!(
            color(1 << 11, (3 << 24) | 128, (40 << 16) | 1, (41 << 16) | 2),
            ggtt(g + 32 * 512, 32 * 512)
        );
        // Negative pitch, empty rectangle, tiled pitch not whole tiles.
        assert_eq!(
            color(0, (3 << 24) | 0x8000, 0, (1 << 16) | 1),
            CmdWrite::Unbounded
        );
        assert_eq!(
            color(0, (3 << 24) | 4096, (1 << 16) | 1, (1 << 16) | 9),
            CmdWrite::Unbounded
        );
        assert_eq!(
            color(1 << 11, (3 << 24) | 3, 0, (1 << 16) | 1),
            CmdWrite::Unbounded
        );
        // XY_SRC_COPY_BLT: the destination only.
        assert_eq!(
            w(&[
                (2 << 29) | (0x53 << 22) | 8,
                (3 << 24) | 4096,
                0,
                (1 << 16) | 2,
                G,
                0,
                0,
                4096,
                G + 0x10_0000,
                0
            ]),
            ggtt(g, 8)
        );
        // XY_FAST_COPY_BLT: linear 64 bpp; tiled is unbounded.
        let fast = |dw0x: u32| {
            w(&[
                (2 << 29) | (0x42 << 22) | dw0x | 8,
                (3 << 24) | 1024,
                0,
                (1 << 16) | 4,
                G,
                0,
                0,
                1024,
                G,
                0,
            ])
        };
        assert_eq!(fast(0), ggtt(g, 32));
        assert_eq!(fast(1 << 13), CmdWrite::Unbounded);
        // XY_SETUP_CLIP writes nothing; XY_PAT_BLT's destination is state.
        assert_eq!(w(&[(2 << 29) | (0x03 << 22) | 1, 0, 0]), CmdWrite::Nothing);
        assert_eq!(
            w(&[(2 << 29) | (0x51 << 22) | 4, 0, 0, 0, 0, 0]),
            CmdWrite::Unbounded
        );
    }

    #[test]
    fn writes_through_state_and_unknown_commands_are_unbounded() {
        for cmd in [
            &[0x7b00_0005u32, 0, 3, 0, 1, 0, 0][..],
            &[0x7852_0003, 0, 0, 0, 0],
            &[(0x2f << 23) | (1 << 22) | 1, G, 0],
            &[(0x2e << 23) | (1 << 22) | 3, G, 0, G, 0],
            &[(0x1b << 23) | 1, 0, 0],
            &[0x1f << 29],
            &[(0x20 << 23) | 7, 0, 0],
        ] {
            assert_eq!(w(cmd), CmdWrite::Unbounded, "{:#x}", cmd[0]);
        }
        for cmd in [
            &[0u32][..],
            &[(0x22 << 23) | 1, 0x2358, 1],
            &[(0x31 << 23) | 1, G, 0],
            &[0x7808_0003, 0, 0, 0, 0],
            &[(0x29 << 23) | (1 << 22) | 2, 0x2358, G, 0],
        ] {
            assert_eq!(w(cmd), CmdWrite::Nothing, "{:#x}", cmd[0]);
        }
    }

    use crate::testutil::Sink;

    #[test]
    fn records_every_page_or_goes_unbounded() {
        let mut s = Sink::default();
        record_write(ggtt(0x1ff8, 16), |_, a| Some(a / PAGE_SIZE + 100), &mut s);
        assert_eq!((s.0.as_slice(), s.1), (&[101u64, 102][..], false));
        let mut s = Sink::default();
        record_write(
            ggtt(0, 3 * PAGE_SIZE),
            |_, a| (a < 2 * PAGE_SIZE).then_some(7),
            &mut s,
        );
        assert!(s.1, "an untranslated page makes it unbounded");
        let mut s = Sink::default();
        record_write(
            ggtt(0, (MAX_WRITE_PAGES + 1) * PAGE_SIZE),
            |_, _| Some(1),
            &mut s,
        );
        assert!(s.1 && s.0.is_empty(), "too large a write is unbounded");
        let mut s = Sink::default();
        record_write(CmdWrite::StatusPage, |_, _| Some(1), &mut s);
        record_write(CmdWrite::Nothing, |_, _| Some(1), &mut s);
        assert!(!s.1 && s.0.is_empty());
        record_write(CmdWrite::Unbounded, |_, _| Some(1), &mut s);
        assert!(s.1);
    }
}

// SPDX-License-Identifier: GPL-2.0

//! The GPU addresses a piece of Gen9 (Skylake) 3D or GPGPU state may let
//! the GPU write: surfaces, depth/stencil/HiZ buffers, stream-output
//! buffers and scratch space.
//!
//! The write-set analysis ([`super::command`]) calls every draw, dispatch
//! and BLORP operation unbounded on its own. A state tracker that follows
//! the draw's state to the structures it writes through asks this module,
//! for each of them, which GPU address ranges it covers. Every answer is
//! conservative: a range covers every byte the GPU could write through
//! the state as the hardware lays it out; what this module cannot bound is
//! [`Extent::Unbounded`] (a missed byte is a page lost in a migration).
//!
//! The layout follows Mesa 25.0.7's surface library (`src/intel/isl`),
//! which describes the Gen9 hardware's layout; field positions are those
//! of Mesa's `genxml/gen90.xml` (and `gen80.xml`, which it imports):
//!
//! - a 2D, cube or 3D surface, and a tiled 1D one, is a 2D mip tree
//!   (`ISL_DIM_LAYOUT_GFX4_2D`): level 0 on top, level 1 below it, levels
//!   2 and on stacked right of level 1, each padded to the surface's
//!   alignment (`isl_calc_phys_slice0_extent_sa_gfx4_2d`); array slices,
//!   cube faces, 3D depth slices and (MSFMT_MSS) samples follow each other
//!   `QPitch` rows apart (`isl_calc_phys_total_extent_el_gfx4_2d`);
//! - a linear 1D surface lays its levels side by side in one row, 64
//!   pixel aligned, slices `QPitch` pixels apart (`ISL_DIM_LAYOUT_GFX9_1D`,
//!   `isl_calc_phys_total_extent_el_gfx9_1d`, `isl_get_qpitch`);
//! - MSFMT_DEPTH_STENCIL multisampling interleaves the samples in a wider,
//!   taller level 0 (`isl_msaa_interleaved_scale_px_to_sa`);
//! - the bytes of a row of elements, then rows of tiles, give the extent
//!   (`isl_tiling_get_info`, `isl_calc_size`): X tiles are 512 B x 8 rows,
//!   Y tiles 128 B x 32, W tiles (stencil) 64 x 64 bytes stored as 128 B x
//!   32, HiZ and CCS tiles hold 16 x 16 and 128 x 128 of their elements in
//!   4 KiB;
//! - the auxiliary surface (`isl_surf_get_ccs_surf`,
//!   `isl_surf_get_mcs_surf`, `isl_surf_get_hiz_surf`) is a tree of the
//!   main surface's pixels in its own elements and alignment, at the aux
//!   base, with the aux pitch (in 128 B tiles) and aux QPitch
//!   (`isl_surf_fill_state_s`). Gen9 keeps the clear color in the surface
//!   state itself, so no clear-value address is ever written.
//!
//! The extent is that of the largest layout the state's fields allow, not
//! of the surface Mesa allocated: levels up to `Surface Min LOD + MIP
//! Count` (a render target's `MIP Count / LOD` is its level), slices up to
//! `Minimum Array Element + max(Depth, Render Target View Extent)`, the
//! state's own X/Y offsets. It ends at the last tile row's last touched
//! tile (or the last row's last byte when linear), which is within the
//! size `isl_calc_size` allocates for a surface Mesa made.
//!
//! Unbounded: STRBUF and reserved surface types, Tiled Resource Modes
//! (Yf/Ys), reserved tilings and alignments, formats Gen9 does not render,
//! sample or access with typed messages, media (memory) compression,
//! aux modes Gen9 does not use with RENDER_SURFACE_STATE (APPEND, CCS with
//! a multisampled or non-32/64/128 bpp surface), anything past 2^48 or
//! over [`MAX_EXTENT`].
//!
//! What this module assumes of the hardware, and the state tracker must
//! hold to: the GPU writes a surface only through the messages its type
//! allows (render target, typed and media block writes on 1D/2D/3D/cube
//! surfaces; untyped, typed and block writes on buffers) and drops what
//! falls outside the surface's width, height, depth, levels and slices,
//! or a buffer's entries (a buffer's extent takes each entry as the
//! larger of its pitch and its format's element, rounded up to 16 bytes:
//! iris's UBOs, RGBA32F with a 1-byte pitch, come out 16 times their
//! size); render target and depth writes stay within the surface when the
//! drawing rectangle does, which the tracker checks. Depth and stencil
//! buffers take their sample count from 3DSTATE_MULTISAMPLE, which the
//! caller passes.

/// Addresses are 48-bit GPU virtual (PPGTT) or GGTT addresses; the bits
/// above (a canonical address's sign extension) are not part of them.
pub const ADDR_LIMIT: u64 = 1 << 48;

/// A range longer than this (1 GiB) is reported as unbounded ("too
/// large"): no Gen9 state a driver builds needs that much, and a range
/// that large bounds nothing worth bounding.
pub const MAX_EXTENT: u64 = 1 << 30;

/// A GPU address range a state may write (end exclusive), 48-bit GPU
/// virtual (or GGTT) addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

/// What a piece of state may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extent {
    /// Nothing (a null surface, a disabled buffer).
    Nothing,
    /// At most these ranges (main surface, then its auxiliary surface if
    /// any; clear-color address if the aux mode has one).
    Ranges([Option<Range>; 3]),
    /// Not bounded, and why.
    Unbounded(&'static str),
}

impl Extent {
    /// The ranges, `None` slots left out (none for [`Extent::Nothing`] and
    /// [`Extent::Unbounded`]).
    pub fn ranges(&self) -> impl Iterator<Item = Range> + '_ {
        let slots: &[Option<Range>] = match self {
            Extent::Ranges(r) => r,
            _ => &[],
        };
        slots.iter().flatten().copied()
    }
}

/// Why a computation was abandoned.
type Why = &'static str;

/// Arithmetic on the fields overflowed.
const OVERFLOW: Why = "overflow";
/// A range over [`MAX_EXTENT`].
const TOO_LARGE: Why = "too large";
/// A range ending past [`ADDR_LIMIT`].
const PAST_48_BITS: Why = "past 2^48";

/// `Option` to a result that says why (arithmetic overflow).
fn ck<T>(v: Option<T>) -> Result<T, Why> {
    v.ok_or(OVERFLOW)
}

/// `len` bytes from `start`, checked against [`MAX_EXTENT`] and
/// [`ADDR_LIMIT`]; `None` when `len` is 0.
fn range(start: u64, len: u64) -> Result<Option<Range>, Why> {
    if len == 0 {
        return Ok(None);
    }
    if len > MAX_EXTENT {
        return Err(TOO_LARGE);
    }
    let end = ck(start.checked_add(len))?;
    if end > ADDR_LIMIT {
        return Err(PAST_48_BITS);
    }
    Ok(Some(Range { start, end }))
}

/// Ranges (or why not) to an [`Extent`]: no range is [`Extent::Nothing`].
fn extent(r: Result<[Option<Range>; 3], Why>) -> Extent {
    match r {
        Ok([None, None, None]) => Extent::Nothing,
        Ok(r) => Extent::Ranges(r),
        Err(why) => Extent::Unbounded(why),
    }
}

/// Bits `lo..lo + width` of `dw` (`width` < 32).
fn bits(dw: u32, lo: u32, width: u32) -> u32 {
    (dw >> lo) & ((1 << width) - 1)
}

/// A 48-bit address from a 64-bit address field's two dwords (low dword
/// first), the bits below `align_bits` cleared (they hold other fields or
/// are ignored).
fn addr(lo: u32, hi: u32, align_bits: u32) -> u64 {
    ((u64::from(hi) << 32) | u64::from(lo & !((1u32 << align_bits) - 1))) & (ADDR_LIMIT - 1)
}

/// `x` rounded up to a multiple of `a` (not 0).
fn align(x: u64, a: u64) -> Result<u64, Why> {
    ck(x.checked_next_multiple_of(a))
}

/// Level `l`'s size along one axis from level 0's (`isl_minify`).
fn minify(x: u64, l: u32) -> u64 {
    x.checked_shr(l).unwrap_or(0).max(1)
}

/// How a surface's elements are stored: rows of tiles, or linear rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tile {
    /// Bits of elements one tile holds per row (0: linear).
    row_bits: u64,
    /// Rows of elements one tile holds.
    rows: u64,
    /// Rows of the pitch one row of tiles spans (`isl_tile_info`'s
    /// `phys_extent_B.height`).
    pitch_rows: u64,
}

/// A tile `row_bits` wide and `rows` high, `pitch_rows` rows of the pitch.
const fn tile(row_bits: u64, rows: u64, pitch_rows: u64) -> Tile {
    Tile {
        row_bits,
        rows,
        pitch_rows,
    }
}

/// Linear: rows of `pitch` bytes.
const LINEAR: Tile = tile(0, 1, 1);
/// X tiles: 512 B x 8 rows.
const TILE_X: Tile = tile(512 * 8, 8, 8);
/// Y tiles: 128 B x 32 rows.
const TILE_Y: Tile = tile(128 * 8, 32, 32);
/// W tiles: 64 x 64 bytes, stored as a 128 B x 32 row tile (the pitch a
/// W-tiled surface's state gives is twice its rows' bytes).
const TILE_W: Tile = tile(64 * 8, 64, 32);
/// HiZ tiles: 16 x 16 128-bit elements in a 128 B x 32 row tile.
const TILE_HIZ: Tile = tile(16 * 128, 16, 32);
/// Gen9 CCS tiles: 128 x 128 2-bit elements in a Y tile.
const TILE_CCS: Tile = tile(128 * 2, 128, 32);

/// Bytes of a tile.
const TILE_BYTES: u64 = 4096;

/// Bytes from a surface's base to the end of its last element: `rows`
/// rows of elements `row_bits` wide, rows `pitch` bytes apart (for tiled
/// surfaces, rows of tiles `pitch * tile.pitch_rows` bytes apart). A row
/// wider than the pitch spills into the next rows' bytes, as the
/// hardware's address computation does.
fn footprint(rows: u64, row_bits: u64, pitch: u64, tile: Tile) -> Result<u64, Why> {
    if rows == 0 || row_bits == 0 {
        return Ok(0);
    }
    if tile.row_bits == 0 {
        let last = ck((rows - 1).checked_mul(pitch))?;
        return ck(last.checked_add(row_bits.div_ceil(8)));
    }
    let tile_rows = rows.div_ceil(tile.rows);
    let tile_cols = row_bits.div_ceil(tile.row_bits);
    let row_stride = ck(pitch.checked_mul(tile.pitch_rows))?;
    let last = ck((tile_rows - 1).checked_mul(row_stride))?;
    ck(last.checked_add(ck(tile_cols.checked_mul(TILE_BYTES))?))
}

/// Width and height, in samples, of the first `levels` levels of a 2D mip
/// tree whose level 0 is `w0` x `h0` samples, each level padded to
/// `align_w` x `align_h` (`isl_calc_phys_slice0_extent_sa_gfx4_2d`).
fn tree_2d(w0: u64, h0: u64, levels: u32, align_w: u64, align_h: u64) -> Result<(u64, u64), Why> {
    let (mut top_w, mut bottom_w, mut left_h, mut right_h) = (0, 0, 0, 0);
    for l in 0..levels {
        let w = align(minify(w0, l), align_w)?;
        let h = align(minify(h0, l), align_h)?;
        match l {
            0 => (top_w, left_h, right_h) = (w, h, h),
            1 => (bottom_w, left_h) = (w, ck(left_h.checked_add(h))?),
            2 => {
                bottom_w = ck(bottom_w.checked_add(w))?;
                right_h = ck(right_h.checked_add(h))?;
            }
            _ => right_h = ck(right_h.checked_add(h))?,
        }
    }
    Ok((top_w.max(bottom_w), left_h.max(right_h)))
}

/// A surface in the 2D mip-tree layout (`ISL_DIM_LAYOUT_GFX4_2D`), its
/// dimensions as the state's fields give them.
#[derive(Debug, Clone, Copy)]
struct Layout {
    /// Level 0's width in samples (pixels, or interleaved samples).
    w0: u64,
    /// Level 0's height in samples.
    h0: u64,
    /// Levels laid out (the last one the state may access, plus one).
    levels: u32,
    /// Level alignment across, in samples.
    align_w: u64,
    /// Level alignment down, in samples.
    align_h: u64,
    /// Element (compression block) width in samples.
    bw: u64,
    /// Element height in samples.
    bh: u64,
    /// Bits per element.
    bpb: u64,
    /// Slices (array layers, cube faces, depth slices, MSS samples).
    slices: u64,
    /// Rows of elements from one slice to the next.
    qpitch: u64,
    /// The state's X offset, in elements.
    x_off: u64,
    /// The state's Y offset, in rows of elements.
    y_off: u64,
    /// Bytes from one row (of elements, or of tile rows) to the next.
    pitch: u64,
    /// Tiling.
    tile: Tile,
}

impl Layout {
    /// Bytes from the surface's base to the end of its last slice's tree.
    fn bytes(&self) -> Result<u64, Why> {
        let (w, h) = tree_2d(self.w0, self.h0, self.levels, self.align_w, self.align_h)?;
        let w_el = ck(w.div_ceil(self.bw).checked_add(self.x_off))?;
        let h_el = ck(h.div_ceil(self.bh).checked_add(self.y_off))?;
        let above = ck(self.slices.saturating_sub(1).checked_mul(self.qpitch))?;
        let rows = ck(above.checked_add(h_el))?;
        footprint(rows, ck(w_el.checked_mul(self.bpb))?, self.pitch, self.tile)
    }
}

/// Surface formats a Gen9 RENDER_SURFACE_STATE can name: hardware format
/// number (= `ISL_FORMAT_*`), bits per element and the element's
/// (compression block's) width and height in pixels, from Mesa's
/// `isl_format_layout.csv`, for the formats `isl_format.c`'s
/// `format_info` table lets Gen9 (verx10 <= 90) sample, render to or
/// access with typed messages, plus RAW (bytes, for untyped buffer
/// access). Sorted by number.
#[rustfmt::skip]
const FORMATS: &[(u16, u8, u8, u8)] = &[
    (0x000, 128, 1, 1), // R32G32B32A32_FLOAT
    (0x001, 128, 1, 1), // R32G32B32A32_SINT
    (0x002, 128, 1, 1), // R32G32B32A32_UINT
    (0x006, 128, 1, 1), // R32G32B32X32_FLOAT
    (0x040, 96, 1, 1), // R32G32B32_FLOAT
    (0x041, 96, 1, 1), // R32G32B32_SINT
    (0x042, 96, 1, 1), // R32G32B32_UINT
    (0x080, 64, 1, 1), // R16G16B16A16_UNORM
    (0x081, 64, 1, 1), // R16G16B16A16_SNORM
    (0x082, 64, 1, 1), // R16G16B16A16_SINT
    (0x083, 64, 1, 1), // R16G16B16A16_UINT
    (0x084, 64, 1, 1), // R16G16B16A16_FLOAT
    (0x085, 64, 1, 1), // R32G32_FLOAT
    (0x086, 64, 1, 1), // R32G32_SINT
    (0x087, 64, 1, 1), // R32G32_UINT
    (0x088, 64, 1, 1), // R32_FLOAT_X8X24_TYPELESS
    (0x089, 64, 1, 1), // X32_TYPELESS_G8X24_UINT
    (0x08a, 64, 1, 1), // L32A32_FLOAT
    (0x08d, 64, 1, 1), // R64_FLOAT
    (0x08e, 64, 1, 1), // R16G16B16X16_UNORM
    (0x08f, 64, 1, 1), // R16G16B16X16_FLOAT
    (0x090, 64, 1, 1), // A32X32_FLOAT
    (0x091, 64, 1, 1), // L32X32_FLOAT
    (0x092, 64, 1, 1), // I32X32_FLOAT
    (0x097, 64, 1, 1), // R32G32_FLOAT_LD
    (0x0a1, 64, 1, 1), // R64_PASSTHRU
    (0x0c0, 32, 1, 1), // B8G8R8A8_UNORM
    (0x0c1, 32, 1, 1), // B8G8R8A8_UNORM_SRGB
    (0x0c2, 32, 1, 1), // R10G10B10A2_UNORM
    (0x0c3, 32, 1, 1), // R10G10B10A2_UNORM_SRGB
    (0x0c4, 32, 1, 1), // R10G10B10A2_UINT
    (0x0c5, 32, 1, 1), // R10G10B10_SNORM_A2_UNORM
    (0x0c7, 32, 1, 1), // R8G8B8A8_UNORM
    (0x0c8, 32, 1, 1), // R8G8B8A8_UNORM_SRGB
    (0x0c9, 32, 1, 1), // R8G8B8A8_SNORM
    (0x0ca, 32, 1, 1), // R8G8B8A8_SINT
    (0x0cb, 32, 1, 1), // R8G8B8A8_UINT
    (0x0cc, 32, 1, 1), // R16G16_UNORM
    (0x0cd, 32, 1, 1), // R16G16_SNORM
    (0x0ce, 32, 1, 1), // R16G16_SINT
    (0x0cf, 32, 1, 1), // R16G16_UINT
    (0x0d0, 32, 1, 1), // R16G16_FLOAT
    (0x0d1, 32, 1, 1), // B10G10R10A2_UNORM
    (0x0d2, 32, 1, 1), // B10G10R10A2_UNORM_SRGB
    (0x0d3, 32, 1, 1), // R11G11B10_FLOAT
    (0x0d6, 32, 1, 1), // R32_SINT
    (0x0d7, 32, 1, 1), // R32_UINT
    (0x0d8, 32, 1, 1), // R32_FLOAT
    (0x0d9, 32, 1, 1), // R24_UNORM_X8_TYPELESS
    (0x0da, 32, 1, 1), // X24_TYPELESS_G8_UINT
    (0x0df, 32, 1, 1), // L16A16_UNORM
    (0x0e0, 32, 1, 1), // I24X8_UNORM
    (0x0e1, 32, 1, 1), // L24X8_UNORM
    (0x0e2, 32, 1, 1), // A24X8_UNORM
    (0x0e3, 32, 1, 1), // I32_FLOAT
    (0x0e4, 32, 1, 1), // L32_FLOAT
    (0x0e5, 32, 1, 1), // A32_FLOAT
    (0x0e9, 32, 1, 1), // B8G8R8X8_UNORM
    (0x0ea, 32, 1, 1), // B8G8R8X8_UNORM_SRGB
    (0x0eb, 32, 1, 1), // R8G8B8X8_UNORM
    (0x0ec, 32, 1, 1), // R8G8B8X8_UNORM_SRGB
    (0x0ed, 32, 1, 1), // R9G9B9E5_SHAREDEXP
    (0x0ee, 32, 1, 1), // B10G10R10X2_UNORM
    (0x0f0, 32, 1, 1), // L16A16_FLOAT
    (0x100, 16, 1, 1), // B5G6R5_UNORM
    (0x101, 16, 1, 1), // B5G6R5_UNORM_SRGB
    (0x102, 16, 1, 1), // B5G5R5A1_UNORM
    (0x103, 16, 1, 1), // B5G5R5A1_UNORM_SRGB
    (0x104, 16, 1, 1), // B4G4R4A4_UNORM
    (0x105, 16, 1, 1), // B4G4R4A4_UNORM_SRGB
    (0x106, 16, 1, 1), // R8G8_UNORM
    (0x107, 16, 1, 1), // R8G8_SNORM
    (0x108, 16, 1, 1), // R8G8_SINT
    (0x109, 16, 1, 1), // R8G8_UINT
    (0x10a, 16, 1, 1), // R16_UNORM
    (0x10b, 16, 1, 1), // R16_SNORM
    (0x10c, 16, 1, 1), // R16_SINT
    (0x10d, 16, 1, 1), // R16_UINT
    (0x10e, 16, 1, 1), // R16_FLOAT
    (0x10f, 16, 1, 1), // A8P8_UNORM_PALETTE0
    (0x110, 16, 1, 1), // A8P8_UNORM_PALETTE1
    (0x111, 16, 1, 1), // I16_UNORM
    (0x112, 16, 1, 1), // L16_UNORM
    (0x113, 16, 1, 1), // A16_UNORM
    (0x114, 16, 1, 1), // L8A8_UNORM
    (0x115, 16, 1, 1), // I16_FLOAT
    (0x116, 16, 1, 1), // L16_FLOAT
    (0x117, 16, 1, 1), // A16_FLOAT
    (0x118, 16, 1, 1), // L8A8_UNORM_SRGB
    (0x119, 16, 1, 1), // R5G5_SNORM_B6_UNORM
    (0x11a, 16, 1, 1), // B5G5R5X1_UNORM
    (0x11b, 16, 1, 1), // B5G5R5X1_UNORM_SRGB
    (0x122, 16, 1, 1), // P8A8_UNORM_PALETTE0
    (0x123, 16, 1, 1), // P8A8_UNORM_PALETTE1
    (0x125, 16, 1, 1), // A4B4G4R4_UNORM
    (0x126, 16, 1, 1), // L8A8_UINT
    (0x127, 16, 1, 1), // L8A8_SINT
    (0x140, 8, 1, 1), // R8_UNORM
    (0x141, 8, 1, 1), // R8_SNORM
    (0x142, 8, 1, 1), // R8_SINT
    (0x143, 8, 1, 1), // R8_UINT
    (0x144, 8, 1, 1), // A8_UNORM
    (0x145, 8, 1, 1), // I8_UNORM
    (0x146, 8, 1, 1), // L8_UNORM
    (0x147, 8, 1, 1), // P4A4_UNORM_PALETTE0
    (0x148, 8, 1, 1), // A4P4_UNORM_PALETTE0
    (0x14b, 8, 1, 1), // P8_UNORM_PALETTE0
    (0x14c, 8, 1, 1), // L8_UNORM_SRGB
    (0x14d, 8, 1, 1), // P8_UNORM_PALETTE1
    (0x14e, 8, 1, 1), // P4A4_UNORM_PALETTE1
    (0x14f, 8, 1, 1), // A4P4_UNORM_PALETTE1
    (0x152, 8, 1, 1), // L8_UINT
    (0x153, 8, 1, 1), // L8_SINT
    (0x154, 8, 1, 1), // I8_UINT
    (0x155, 8, 1, 1), // I8_SINT
    (0x180, 64, 4, 4), // DXT1_RGB_SRGB
    (0x181, 1, 1, 1), // R1_UNORM
    (0x182, 16, 1, 1), // YCRCB_NORMAL
    (0x183, 16, 1, 1), // YCRCB_SWAPUVY
    (0x184, 2, 1, 1), // P2_UNORM_PALETTE0
    (0x185, 2, 1, 1), // P2_UNORM_PALETTE1
    (0x186, 64, 4, 4), // BC1_UNORM
    (0x187, 128, 4, 4), // BC2_UNORM
    (0x188, 128, 4, 4), // BC3_UNORM
    (0x189, 64, 4, 4), // BC4_UNORM
    (0x18a, 128, 4, 4), // BC5_UNORM
    (0x18b, 64, 4, 4), // BC1_UNORM_SRGB
    (0x18c, 128, 4, 4), // BC2_UNORM_SRGB
    (0x18d, 128, 4, 4), // BC3_UNORM_SRGB
    (0x18e, 1, 1, 1), // MONO8
    (0x18f, 16, 1, 1), // YCRCB_SWAPUV
    (0x190, 16, 1, 1), // YCRCB_SWAPY
    (0x191, 64, 4, 4), // DXT1_RGB
    (0x192, 128, 8, 4), // FXT1
    (0x193, 24, 1, 1), // R8G8B8_UNORM
    (0x194, 24, 1, 1), // R8G8B8_SNORM
    (0x199, 64, 4, 4), // BC4_SNORM
    (0x19a, 128, 4, 4), // BC5_SNORM
    (0x19b, 48, 1, 1), // R16G16B16_FLOAT
    (0x19c, 48, 1, 1), // R16G16B16_UNORM
    (0x19d, 48, 1, 1), // R16G16B16_SNORM
    (0x1a1, 128, 4, 4), // BC6H_SF16
    (0x1a2, 128, 4, 4), // BC7_UNORM
    (0x1a3, 128, 4, 4), // BC7_UNORM_SRGB
    (0x1a4, 128, 4, 4), // BC6H_UF16
    (0x1a8, 24, 1, 1), // R8G8B8_UNORM_SRGB
    (0x1a9, 64, 4, 4), // ETC1_RGB8
    (0x1aa, 64, 4, 4), // ETC2_RGB8
    (0x1ab, 64, 4, 4), // EAC_R11
    (0x1ac, 128, 4, 4), // EAC_RG11
    (0x1ad, 64, 4, 4), // EAC_SIGNED_R11
    (0x1ae, 128, 4, 4), // EAC_SIGNED_RG11
    (0x1af, 64, 4, 4), // ETC2_SRGB8
    (0x1b0, 48, 1, 1), // R16G16B16_UINT
    (0x1b1, 48, 1, 1), // R16G16B16_SINT
    (0x1c0, 64, 4, 4), // ETC2_RGB8_PTA
    (0x1c1, 64, 4, 4), // ETC2_SRGB8_PTA
    (0x1c2, 128, 4, 4), // ETC2_EAC_RGBA8
    (0x1c3, 128, 4, 4), // ETC2_EAC_SRGB8_A8
    (0x1c8, 24, 1, 1), // R8G8B8_UINT
    (0x1c9, 24, 1, 1), // R8G8B8_SINT
    (0x1ff, 8, 1, 1), // RAW
    (0x200, 128, 4, 4), // ASTC_LDR_2D_4X4_U8SRGB
    (0x208, 128, 5, 4), // ASTC_LDR_2D_5X4_U8SRGB
    (0x209, 128, 5, 5), // ASTC_LDR_2D_5X5_U8SRGB
    (0x211, 128, 6, 5), // ASTC_LDR_2D_6X5_U8SRGB
    (0x212, 128, 6, 6), // ASTC_LDR_2D_6X6_U8SRGB
    (0x221, 128, 8, 5), // ASTC_LDR_2D_8X5_U8SRGB
    (0x222, 128, 8, 6), // ASTC_LDR_2D_8X6_U8SRGB
    (0x224, 128, 8, 8), // ASTC_LDR_2D_8X8_U8SRGB
    (0x231, 128, 10, 5), // ASTC_LDR_2D_10X5_U8SRGB
    (0x232, 128, 10, 6), // ASTC_LDR_2D_10X6_U8SRGB
    (0x234, 128, 10, 8), // ASTC_LDR_2D_10X8_U8SRGB
    (0x236, 128, 10, 10), // ASTC_LDR_2D_10X10_U8SRGB
    (0x23e, 128, 12, 10), // ASTC_LDR_2D_12X10_U8SRGB
    (0x23f, 128, 12, 12), // ASTC_LDR_2D_12X12_U8SRGB
    (0x240, 128, 4, 4), // ASTC_LDR_2D_4X4_FLT16
    (0x248, 128, 5, 4), // ASTC_LDR_2D_5X4_FLT16
    (0x249, 128, 5, 5), // ASTC_LDR_2D_5X5_FLT16
    (0x251, 128, 6, 5), // ASTC_LDR_2D_6X5_FLT16
    (0x252, 128, 6, 6), // ASTC_LDR_2D_6X6_FLT16
    (0x261, 128, 8, 5), // ASTC_LDR_2D_8X5_FLT16
    (0x262, 128, 8, 6), // ASTC_LDR_2D_8X6_FLT16
    (0x264, 128, 8, 8), // ASTC_LDR_2D_8X8_FLT16
    (0x271, 128, 10, 5), // ASTC_LDR_2D_10X5_FLT16
    (0x272, 128, 10, 6), // ASTC_LDR_2D_10X6_FLT16
    (0x274, 128, 10, 8), // ASTC_LDR_2D_10X8_FLT16
    (0x276, 128, 10, 10), // ASTC_LDR_2D_10X10_FLT16
    (0x27e, 128, 12, 10), // ASTC_LDR_2D_12X10_FLT16
    (0x27f, 128, 12, 12), // ASTC_LDR_2D_12X12_FLT16
];

/// Bits per element and element width and height in pixels of Gen9
/// surface format `format`, or `None` for one Gen9 cannot use.
pub fn format_layout(format: u32) -> Option<(u32, u32, u32)> {
    let i = FORMATS
        .binary_search_by_key(&format, |&(f, ..)| u32::from(f))
        .ok()?;
    let (_, bpb, bw, bh) = FORMATS[i];
    Some((u32::from(bpb), u32::from(bw), u32::from(bh)))
}

/// Surface Type SURFTYPE_1D.
const SURFTYPE_1D: u32 = 0;
/// Surface Type SURFTYPE_3D.
const SURFTYPE_3D: u32 = 2;
/// Surface Type SURFTYPE_CUBE.
const SURFTYPE_CUBE: u32 = 3;
/// Surface Type SURFTYPE_BUFFER.
const SURFTYPE_BUFFER: u32 = 4;
/// Surface Type SURFTYPE_NULL.
const SURFTYPE_NULL: u32 = 7;

/// Auxiliary Surface Mode AUX_NONE.
const AUX_NONE: u32 = 0;
/// Auxiliary Surface Mode AUX_CCS_D; Gen9 encodes ISL's MCS as CCS_D on
/// a multisampled surface (`isl_encode_aux_mode`).
const AUX_CCS_D: u32 = 1;
/// Auxiliary Surface Mode AUX_HIZ.
const AUX_HIZ: u32 = 3;
/// Auxiliary Surface Mode AUX_CCS_E.
const AUX_CCS_E: u32 = 5;

/// Samples per pixel from a Number of Multisamples field (log2).
fn samples(field: u32) -> Result<u64, Why> {
    if field > 4 {
        return Err("reserved sample count");
    }
    Ok(1 << field)
}

/// Level 0 in samples of a `w` x `h` pixel surface whose samples are
/// interleaved (MSFMT_DEPTH_STENCIL; `isl_msaa_interleaved_scale_px_to_sa`
/// with `isl_get_interleaved_msaa_px_size_sa`).
fn interleave(w: u64, h: u64, samples: u64) -> Result<(u64, u64), Why> {
    if samples == 1 {
        return Ok((w, h));
    }
    let log2 = samples.trailing_zeros();
    let (sw, sh) = (1u64 << (log2.div_ceil(2)), 1u64 << (log2 / 2));
    Ok((
        ck(align(w, 2)?.checked_mul(sw))?,
        ck(align(h, 2)?.checked_mul(sh))?,
    ))
}

/// Slices a view may access: up to `Minimum Array Element + max(Depth,
/// Render Target View Extent)`, each a cube of 6 faces for a cube (the
/// count covers Minimum Array Element in faces or in cubes).
fn slices(min_elem: u32, depth: u32, rtv_extent: u32, cube: bool) -> u64 {
    let n = u64::from(min_elem) + u64::from(depth.max(rtv_extent)) + 1;
    if cube {
        n * 6
    } else {
        n
    }
}

/// Alignment in elements from a Surface Horizontal/Vertical Alignment
/// field (`isl_encode_halign`: 4, 8, 16; 0 is reserved).
fn alignment(field: u32) -> Result<u64, Why> {
    match field {
        1..=3 => Ok(2 << field),
        _ => Err("reserved alignment"),
    }
}

/// A range of `bytes` from `base`; a tiled surface's base is 4 KiB
/// aligned (the hardware ignores the low bits), so the range starts at
/// the page either way.
fn surface_range(base: u64, bytes: u64, tile: Tile) -> Result<Option<Range>, Why> {
    if tile == LINEAR {
        return range(base, bytes);
    }
    let start = base & !(TILE_BYTES - 1);
    range(start, ck(bytes.checked_add(base - start))?)
}

/// Gen9 RENDER_SURFACE_STATE (16 dwords): the main surface (type
/// 1D/2D/3D/CUBE/BUFFER; NULL → Nothing; STRBUF/other → Unbounded),
/// extent from format (bytes per block; compressed formats' block size),
/// width/height/depth, pitch, tiling mode (linear/X/Y/W; Tiled Resource
/// Mode Yf/Ys → unbounded), mip count and min LOD, array length/QPitch,
/// multisample count and layout; plus the auxiliary surface (CCS_D,
/// CCS_E, MCS, HiZ: aux base, aux pitch, aux QPitch). Follows Mesa's
/// `isl_surf_fill_state_s` and `isl_buffer_fill_state_s` (gen9) for what
/// each field means.
pub fn surface_state(dw: &[u32; 16]) -> Extent {
    extent(surface_ranges(dw))
}

/// [`surface_state`]'s ranges, or why not.
fn surface_ranges(dw: &[u32; 16]) -> Result<[Option<Range>; 3], Why> {
    let ty = bits(dw[0], 29, 3);
    match ty {
        SURFTYPE_NULL => return Ok([None; 3]),
        SURFTYPE_BUFFER => return buffer_ranges(dw),
        SURFTYPE_1D..=SURFTYPE_CUBE => {}
        _ => return Err("STRBUF or reserved surface type"),
    }
    let (bpb, bw, bh) = format_layout(bits(dw[0], 18, 10)).ok_or("unknown format")?;
    let (bpb, bw, bh) = (u64::from(bpb), u64::from(bw), u64::from(bh));
    if bits(dw[5], 18, 2) != 0 {
        return Err("tiled resource mode (Yf/Ys)");
    }
    if bits(dw[7], 30, 1) != 0 || bits(dw[6], 31, 1) != 0 {
        return Err("media compression or separate UV plane");
    }
    let tile = match bits(dw[0], 12, 2) {
        0 => LINEAR,
        1 if bpb == 8 => TILE_W,
        1 => return Err("W tiling of a format not 8 bpp"),
        2 => TILE_X,
        _ => TILE_Y,
    };
    let (w, h) = (
        u64::from(bits(dw[2], 0, 14)) + 1,
        u64::from(bits(dw[2], 16, 14)) + 1,
    );
    let depth = bits(dw[3], 21, 11);
    let pitch = u64::from(bits(dw[3], 0, 18)) + 1;
    let samples = samples(bits(dw[4], 3, 3))?;
    let interleaved = bits(dw[4], 6, 1) == 1;
    let view = slices(
        bits(dw[4], 18, 11),
        depth,
        bits(dw[4], 7, 11),
        ty == SURFTYPE_CUBE,
    );
    let levels = bits(dw[5], 0, 4) + bits(dw[5], 4, 4) + 1;
    let (x_off, y_off) = (
        u64::from(bits(dw[5], 25, 7)) * 4,
        u64::from(bits(dw[5], 21, 3)) * 4,
    );
    let qpitch = u64::from(bits(dw[1], 0, 15)) * 4;
    let base = addr(dw[8], dw[9], 0);

    let main = if ty == SURFTYPE_1D && tile == LINEAR {
        // ISL_DIM_LAYOUT_GFX9_1D: levels side by side, 64 pixels aligned,
        // slices QPitch pixels apart; Surface Pitch is ignored.
        let mut row = 0u64;
        for l in 0..levels {
            row = ck(row.checked_add(align(minify(w, l), 64)?))?;
        }
        let slices = ck(view.checked_mul(samples))?;
        let above = ck((slices - 1).checked_mul(qpitch))?;
        let els = ck(ck(above.checked_add(x_off))?.checked_add(row.div_ceil(bw)))?;
        footprint(1, ck(els.checked_mul(bpb))?, 0, LINEAR)?
    } else {
        let (w0, h0, slices) = if samples > 1 && interleaved {
            let (w0, h0) = interleave(w, h, samples)?;
            (w0, h0, view)
        } else {
            (w, h, ck(view.checked_mul(samples))?)
        };
        // W-tiled slices: Mesa halves a 3D stencil texture's QPitch as
        // the hardware doubles it (`isl_get_qpitch`); take the double.
        let qpitch = if tile == TILE_W { qpitch * 2 } else { qpitch };
        Layout {
            w0,
            h0,
            levels,
            align_w: alignment(bits(dw[0], 14, 2))? * bw,
            align_h: alignment(bits(dw[0], 16, 2))? * bh,
            bw,
            bh,
            bpb,
            slices,
            qpitch,
            x_off: x_off.div_ceil(bw),
            y_off: y_off.div_ceil(bh),
            pitch,
            tile,
        }
        .bytes()?
    };
    let main = surface_range(base, main, tile)?;

    let aux = Layout {
        w0: w,
        h0: h,
        levels,
        slices: view,
        qpitch: u64::from(bits(dw[6], 16, 15)) * 4,
        x_off,
        y_off,
        pitch: (u64::from(bits(dw[6], 3, 9)) + 1) * 128,
        // Set per mode below.
        align_w: 1,
        align_h: 1,
        bw: 1,
        bh: 1,
        bpb: 0,
        tile: TILE_Y,
    };
    let aux = match bits(dw[6], 0, 3) {
        AUX_NONE => None,
        _ if tile == LINEAR => return Err("aux surface of a linear surface"),
        AUX_CCS_D if samples > 1 => {
            // MCS (`isl_surf_get_mcs_surf`): one element per pixel, 16 x 4
            // aligned (`isl_choose_image_alignment_el`).
            let bpb = match samples {
                2 | 4 => 8,
                8 => 32,
                _ => 64,
            };
            Some(aux_layout(aux, (16, 4), (1, 1), bpb, TILE_Y))
        }
        AUX_CCS_D | AUX_CCS_E if samples == 1 && bw == 1 => {
            // Gen9 CCS (`isl_surf_get_ccs_surf`): 2 bits per cache-line
            // pair, 128 x 64 pixel aligned (`isl_gfx9_choose_image_alignment_el`).
            let cw = match bpb {
                32 => 8,
                64 => 4,
                128 => 2,
                _ => return Err("CCS of a format not 32/64/128 bpp"),
            };
            Some(aux_layout(aux, (128, 64), (cw, 4), 2, TILE_CCS))
        }
        AUX_HIZ if samples == 1 && ty != SURFTYPE_3D => {
            // HiZ (`isl_surf_get_hiz_surf`): 128-bit elements of 8 x 4
            // pixels, 16 x 8 pixel aligned.
            Some(aux_layout(aux, (16, 8), (8, 4), 128, TILE_HIZ))
        }
        _ => return Err("aux mode Gen9 does not use here"),
    };
    let aux = match aux {
        Some(l) => range(addr(dw[10], dw[11], 12), l.bytes()?)?,
        None => None,
    };
    Ok([main, aux, None])
}

/// An aux surface's layout: `base` (the main surface's pixels, offsets,
/// slices and the aux pitch and QPitch in pixel rows) with its own
/// alignment and element size in pixels, bits per element and tiling.
fn aux_layout(base: Layout, align: (u64, u64), el: (u64, u64), bpb: u64, tile: Tile) -> Layout {
    Layout {
        align_w: align.0,
        align_h: align.1,
        bw: el.0,
        bh: el.1,
        bpb,
        tile,
        qpitch: base.qpitch.div_ceil(el.1),
        x_off: base.x_off.div_ceil(el.0),
        y_off: base.y_off.div_ceil(el.1),
        ..base
    }
}

/// Bytes a buffer's accesses are rounded to: an OWord block message
/// checks bounds per OWord, a dword message per dword.
const BUFFER_GRAIN: u64 = 16;

/// A SURFTYPE_BUFFER state: `((Depth << 21) | (Height << 7) | Width) + 1`
/// entries `Surface Pitch + 1` bytes apart, each at least an element of
/// the format (`isl_buffer_fill_state_s`, gen9).
fn buffer_ranges(dw: &[u32; 16]) -> Result<[Option<Range>; 3], Why> {
    let (bpb, ..) = format_layout(bits(dw[0], 18, 10)).ok_or("unknown format")?;
    if bits(dw[6], 0, 3) != AUX_NONE {
        return Err("aux mode on a buffer");
    }
    let entries = (u64::from(bits(dw[3], 21, 11)) << 21)
        + (u64::from(bits(dw[2], 16, 14)) << 7)
        + u64::from(bits(dw[2], 0, 7))
        + 1;
    let stride = (u64::from(bits(dw[3], 0, 18)) + 1).max(u64::from(bpb).div_ceil(8));
    let bytes = align(ck(entries.checked_mul(stride))?, BUFFER_GRAIN)?;
    Ok([range(addr(dw[8], dw[9], 0), bytes)?, None, None])
}

/// A command's dwords, checked against its 3D opcode (dword 0's high
/// half) and minimum length.
fn command(cmd: &[u32], opcode: u32, len: usize, what: Why) -> Result<&[u32], Why> {
    match cmd.first() {
        Some(&dw0) if dw0 >> 16 == opcode && cmd.len() >= len => Ok(cmd),
        _ => Err(what),
    }
}

/// 3DSTATE_DEPTH_BUFFER's dword 0 high half.
const DEPTH_BUFFER: u32 = 0x7805;
/// 3DSTATE_STENCIL_BUFFER's.
const STENCIL_BUFFER: u32 = 0x7806;
/// 3DSTATE_HIER_DEPTH_BUFFER's.
const HIER_DEPTH_BUFFER: u32 = 0x7807;
/// 3DSTATE_SO_BUFFER's.
const SO_BUFFER: u32 = 0x7918;

/// What 3DSTATE_DEPTH_BUFFER gives the depth, stencil and HiZ buffers:
/// they share its type, size, level and slices (`isl_emit_depth_stencil_hiz_s`).
#[derive(Debug, Clone, Copy)]
struct DepthView {
    /// Width in pixels.
    w: u64,
    /// Height in pixels.
    h: u64,
    /// The level rendered (LOD): levels 0 to it are laid out.
    levels: u32,
    /// Slices the view may access.
    slices: u64,
    /// Hierarchical Depth Buffer Enable.
    hiz: bool,
}

impl DepthView {
    /// A buffer of this view, level 0 `size` samples, `pitch` bytes
    /// and `qpitch` rows apart, in `tile`; one-sample elements, no
    /// alignment and no bits yet.
    fn layout(&self, size: (u64, u64), pitch: u64, qpitch: u64, tile: Tile) -> Layout {
        Layout {
            w0: size.0,
            h0: size.1,
            levels: self.levels,
            align_w: 1,
            align_h: 1,
            bw: 1,
            bh: 1,
            bpb: 0,
            slices: self.slices,
            qpitch,
            x_off: 0,
            y_off: 0,
            pitch,
            tile,
        }
    }
}

/// The range of buffer `l` at a depth, stencil or HiZ command's Surface
/// Base Address (dwords 2 and 3).
fn buffer_at(cmd: &[u32], l: Layout) -> Result<[Option<Range>; 3], Why> {
    Ok([
        surface_range(addr(cmd[2], cmd[3], 0), l.bytes()?, l.tile)?,
        None,
        None,
    ])
}

/// 3DSTATE_DEPTH_BUFFER's view, `None` for SURFTYPE_NULL.
fn depth_view(cmd: &[u32]) -> Result<Option<DepthView>, Why> {
    let cmd = command(cmd, DEPTH_BUFFER, 8, "not a 3DSTATE_DEPTH_BUFFER")?;
    let ty = bits(cmd[1], 29, 3);
    if ty == SURFTYPE_NULL {
        return Ok(None);
    }
    if ty > SURFTYPE_CUBE {
        return Err("reserved depth surface type");
    }
    Ok(Some(DepthView {
        w: u64::from(bits(cmd[4], 4, 14)) + 1,
        h: u64::from(bits(cmd[4], 18, 14)) + 1,
        levels: bits(cmd[4], 0, 4) + 1,
        slices: slices(
            bits(cmd[5], 10, 11),
            bits(cmd[5], 21, 11),
            bits(cmd[7], 21, 11),
            ty == SURFTYPE_CUBE,
        ),
        hiz: bits(cmd[1], 22, 1) == 1,
    }))
}

/// 3DSTATE_DEPTH_BUFFER (whole command, header first): the depth buffer,
/// Y-tiled, D32/D24X8 (4 bytes) or D16 (2 bytes) per sample, 4 x 4 (D16:
/// 8 x 4) aligned (`isl_gfx8_choose_image_alignment_el`), Surface QPitch
/// in rows >> 2. `samples` is 3DSTATE_MULTISAMPLE's Number of
/// Multisamples field (log2; Gen9's depth command has none): samples are
/// interleaved. SURFTYPE_NULL → Nothing. The Depth Write Enable bit is
/// not taken as a promise (HiZ resolves write the depth buffer).
pub fn depth_buffer(cmd: &[u32], samples: u32) -> Extent {
    extent(depth_ranges(cmd, samples))
}

/// [`depth_buffer`]'s ranges, or why not.
fn depth_ranges(cmd: &[u32], ms: u32) -> Result<[Option<Range>; 3], Why> {
    let Some(v) = depth_view(cmd)? else {
        return Ok([None; 3]);
    };
    if bits(cmd[6], 30, 2) != 0 {
        return Err("tiled resource mode (Yf/Ys)");
    }
    let (bpb, align_w) = match bits(cmd[1], 18, 3) {
        1 | 3 => (32, 4),
        5 => (16, 8),
        _ => return Err("reserved depth format"),
    };
    let size = interleave(v.w, v.h, samples(ms)?)?;
    let pitch = u64::from(bits(cmd[1], 0, 18)) + 1;
    let qpitch = u64::from(bits(cmd[7], 0, 15)) * 4;
    let base = v.layout(size, pitch, qpitch, TILE_Y);
    let l = Layout {
        align_w,
        align_h: 4,
        bpb,
        ..base
    };
    buffer_at(cmd, l)
}

/// 3DSTATE_STENCIL_BUFFER (whole command): the separate stencil buffer,
/// W-tiled, a byte per sample, 8 x 8 aligned, its size, level and slices
/// those of `depth_cmd` (the 3DSTATE_DEPTH_BUFFER in effect, which Mesa
/// fills from the stencil surface when there is no depth) and `samples`
/// as for [`depth_buffer`]. Stencil Buffer Enable clear → Nothing.
pub fn stencil_buffer(cmd: &[u32], depth_cmd: &[u32], samples: u32) -> Extent {
    extent(stencil_ranges(cmd, depth_cmd, samples))
}

/// [`stencil_buffer`]'s ranges, or why not.
fn stencil_ranges(cmd: &[u32], depth_cmd: &[u32], ms: u32) -> Result<[Option<Range>; 3], Why> {
    let cmd = command(cmd, STENCIL_BUFFER, 5, "not a 3DSTATE_STENCIL_BUFFER")?;
    if bits(cmd[1], 31, 1) == 0 {
        return Ok([None; 3]);
    }
    let v = depth_view(depth_cmd)?.ok_or("stencil without a depth buffer's size")?;
    let size = interleave(v.w, v.h, samples(ms)?)?;
    let pitch = u64::from(bits(cmd[1], 0, 17)) + 1;
    // Twice the rows, as for a W-tiled RENDER_SURFACE_STATE.
    let qpitch = u64::from(bits(cmd[4], 0, 15)) * 8;
    let base = v.layout(size, pitch, qpitch, TILE_W);
    let l = Layout {
        align_w: 8,
        align_h: 8,
        bpb: 8,
        ..base
    };
    buffer_at(cmd, l)
}

/// 3DSTATE_HIER_DEPTH_BUFFER (whole command): the HiZ buffer, its size,
/// level and slices those of `depth_cmd`, in 8 x 4 pixel 128-bit elements
/// (one per pixel, not per sample, on Gen9: `isl_surf_get_hiz_surf`),
/// 16 x 8 pixel aligned, Surface QPitch in pixel rows >> 2. Nothing when
/// `depth_cmd`'s Hierarchical Depth Buffer Enable is clear.
pub fn hiz_buffer(cmd: &[u32], depth_cmd: &[u32]) -> Extent {
    extent(hiz_ranges(cmd, depth_cmd))
}

/// [`hiz_buffer`]'s ranges, or why not.
fn hiz_ranges(cmd: &[u32], depth_cmd: &[u32]) -> Result<[Option<Range>; 3], Why> {
    let cmd = command(cmd, HIER_DEPTH_BUFFER, 5, "not a 3DSTATE_HIER_DEPTH_BUFFER")?;
    let v = match depth_view(depth_cmd)? {
        Some(v) if v.hiz => v,
        Some(_) => return Ok([None; 3]),
        None if bits(depth_cmd[1], 22, 1) == 0 => return Ok([None; 3]),
        None => return Err("HiZ without a depth buffer's size"),
    };
    let pitch = u64::from(bits(cmd[1], 0, 17)) + 1;
    let qpitch = u64::from(bits(cmd[4], 0, 15));
    let base = v.layout((v.w, v.h), pitch, qpitch, TILE_HIZ);
    let l = Layout {
        align_w: 16,
        align_h: 8,
        bw: 8,
        bh: 4,
        bpb: 128,
        ..base
    };
    buffer_at(cmd, l)
}

/// 3DSTATE_SO_BUFFER (whole command): the buffer, `(Surface Size + 1)`
/// dwords from its base (iris: `SurfaceSize = size / 4 - 1`; the
/// hardware stops at its end), and the dword at the Stream Output Buffer
/// Offset Address when the offset is written back (Stream Offset Write
/// Enable or Offset Address Enable). SO Buffer Enable clear → Nothing.
pub fn so_buffer(cmd: &[u32]) -> Extent {
    extent(so_ranges(cmd))
}

/// [`so_buffer`]'s ranges, or why not.
fn so_ranges(cmd: &[u32]) -> Result<[Option<Range>; 3], Why> {
    let cmd = command(cmd, SO_BUFFER, 8, "not a 3DSTATE_SO_BUFFER")?;
    if bits(cmd[1], 31, 1) == 0 {
        return Ok([None; 3]);
    }
    let size = (u64::from(bits(cmd[4], 0, 30)) + 1) * 4;
    let buf = range(addr(cmd[2], cmd[3] & 0xffff, 2), size)?;
    let offset = if bits(cmd[1], 20, 2) != 0 {
        range(addr(cmd[5], cmd[6] & 0xffff, 2), 4)?
    } else {
        None
    };
    Ok([buf, offset, None])
}

/// Per-thread scratch space: `base` (already a GPU address: the caller
/// adds General State Base Address to the Scratch Space Base Pointer
/// field), the Per-Thread Scratch Space field of 3DSTATE_xS /
/// MEDIA_VFE_STATE (Gen9: 1 KiB << n, n <= 11; iris and brw program
/// `ffs(per_thread_scratch) - 11`), and the largest thread count that may
/// use it (a device bound the caller supplies): thread `i`'s space is
/// `i * size` bytes from the base. No thread → Nothing.
pub fn scratch(base: u64, per_thread_field: u32, threads: u32) -> Extent {
    if per_thread_field > 11 {
        return Extent::Unbounded("reserved scratch size");
    }
    let size = 1024u64 << per_thread_field;
    extent(ck(size.checked_mul(u64::from(threads))).and_then(|n| Ok([range(base, n)?, None, None])))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A RENDER_SURFACE_STATE Mesa's decoder (`INTEL_DEBUG=bat`) printed
    /// for gmig-gl's workloads on iris (SKL GT2 stub), and the buffers of
    /// its execbuffer holding its base and aux base (address, size).
    struct Real {
        dw: [u32; 16],
        bo: (u64, u64),
        aux_bo: Option<(u64, u64)>,
    }

    /// Every distinct RENDER_SURFACE_STATE (but for its addresses and clear
    /// color) of `gmig-gl game 1`, `desktop 1`, `compute 1` and `video 1`
    /// (`scripts/trace.sh` set-up, `INTEL_DEBUG=bat`): render targets with
    /// CCS_E, a shadow map sampled with HiZ, a mipmapped texture rendered
    /// and sampled level by level, SSBOs (BUFFER, RAW), storage images,
    /// texel buffers, video planes.
    #[rustfmt::skip]
    const REAL: &[Real] = &[
    Real { dw: [0x80014000, 0x4000000, 0x3, 0x0, 0x0, 0x0, 0x0, 0x9770000, 0xff600000, 0xfffffffe, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0], bo: (0xfffeff600000, 0x100000), aux_bo: None }, // compute SURFTYPE_BUFFER R32G32B32A32_FLOAT 4x1 lod0+0 aux AUX_NONE
    Real { dw: [0x87fd4000, 0x4000000, 0x7ff007f, 0x0, 0x0, 0x0, 0x0, 0x10000, 0xffc00000, 0xfffffffe, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0], bo: (0xfffeffc00000, 0x40000), aux_bo: None }, // compute SURFTYPE_BUFFER RAW 128x2048 lod0+0 aux AUX_NONE
    Real { dw: [0x331df03f, 0x4000080, 0x1ff01ff, 0x7ff, 0x0, 0x100, 0x0, 0x9770000, 0xffa00000, 0xfffffffe, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0], bo: (0xfffeffa00000, 0x200000), aux_bo: None }, // compute SURFTYPE_2D R8G8B8A8_UNORM 512x512 lod0+0 aux AUX_NONE
    Real { dw: [0x3361f03f, 0x4000080, 0x1ff01ff, 0x7ff, 0x0, 0x100, 0x0, 0x8010000, 0xff800000, 0xfffffffe, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0], bo: (0xfffeff800000, 0x200000), aux_bo: None }, // compute SURFTYPE_2D R32_FLOAT 512x512 lod0+0 aux AUX_NONE
    Real { dw: [0x87fd4000, 0x4000000, 0x43, 0x0, 0x0, 0x0, 0x0, 0x10000, 0xffffc0c0, 0xfffffffe, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0], bo: (0xfffeffffc0c0, 0x44), aux_bo: None }, // compute SURFTYPE_BUFFER RAW 68x1 lod0+0 aux AUX_NONE
    Real { dw: [0x331df03f, 0x4000060, 0x17f01ff, 0x7ff, 0x0, 0x100, 0x800005, 0x9770000, 0xffc00000, 0xfffffffe, 0xffcc0000, 0xfffffffe, 0x0, 0x0, 0x0, 0x0], bo: (0xfffeffc00000, 0xc1000), aux_bo: Some((0xfffeffc00000, 0xc1000)) }, // desktop SURFTYPE_2D R8G8B8A8_UNORM 512x384 lod0+0 aux AUX_CCS_E
    Real { dw: [0x331dc03f, 0x4000060, 0x17f01ff, 0x7ff, 0x0, 0x100, 0x0, 0x9770000, 0xffa00000, 0xfffffffe, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0], bo: (0xfffeffa00000, 0x200000), aux_bo: None }, // desktop SURFTYPE_2D R8G8B8A8_UNORM 512x384 lod0+0 aux AUX_NONE
    Real { dw: [0x331df03f, 0x4000008, 0x1f001f, 0x7f, 0x0, 0x100, 0x400005, 0x9770000, 0xfff40000, 0xfffffffe, 0xfff41000, 0xfffffffe, 0x0, 0x0, 0x0, 0x0], bo: (0xfffefff40000, 0x2000), aux_bo: Some((0xfffefff40000, 0x2000)) }, // desktop SURFTYPE_2D R8G8B8A8_UNORM 32x32 lod0+0 aux AUX_CCS_E
    Real { dw: [0x331dc03f, 0x4000008, 0x1f001f, 0x7f, 0x0, 0x100, 0x0, 0x9770000, 0xfffba000, 0xfffffffe, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0], bo: (0xfffefffba000, 0x1000), aux_bo: None }, // desktop SURFTYPE_2D R8G8B8A8_UNORM 32x32 lod0+0 aux AUX_NONE
    Real { dw: [0x331dc03f, 0x4000010, 0x3f007f, 0x1ff, 0x0, 0x100, 0x0, 0x9770000, 0xfffb2000, 0xfffffffe, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0], bo: (0xfffefffb2000, 0x8000), aux_bo: None }, // desktop SURFTYPE_2D R8G8B8A8_UNORM 128x64 lod0+0 aux AUX_NONE
    Real { dw: [0x331df03f, 0x400010e, 0x437077f, 0x1dff, 0x0, 0x100, 0x140000d, 0x9770000, 0xfdc00000, 0xfffffffe, 0xfe3f8000, 0xfffffffe, 0x3dd0d0d2, 0x3e4cccce, 0x3e989899, 0x3f800000], bo: (0xfffefdc00000, 0x800000), aux_bo: Some((0xfffefdc00000, 0x800000)) }, // desktop SURFTYPE_2D R8G8B8A8_UNORM 1920x1080 lod0+0 aux AUX_CCS_E
    Real { dw: [0x331df03f, 0x4000061, 0xff00ff, 0x3ff, 0x0, 0x900, 0xc00005, 0x9770000, 0xfde00000, 0xfffffffe, 0xfde68000, 0xfffffffe, 0x0, 0x0, 0x0, 0x0], bo: (0xfffefde00000, 0x6a000), aux_bo: Some((0xfffefde00000, 0x6a000)) }, // game SURFTYPE_2D R8G8B8A8_UNORM 256x256 lod0+0 aux AUX_CCS_E
    Real { dw: [0x331dc03f, 0x4000040, 0xff00ff, 0x3ff, 0x0, 0x100, 0x0, 0x9770000, 0xffec0000, 0xfffffffe, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0], bo: (0xfffeffec0000, 0x40000), aux_bo: None }, // game SURFTYPE_2D R8G8B8A8_UNORM 256x256 lod0+0 aux AUX_NONE
    Real { dw: [0x331dc03f, 0x4000010, 0x3f003f, 0xff, 0x0, 0x100, 0x0, 0x9770000, 0xfffb2000, 0xfffffffe, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0], bo: (0xfffefffb2000, 0x4000), aux_bo: None }, // game SURFTYPE_2D R8G8B8A8_UNORM 64x64 lod0+0 aux AUX_NONE
    Real { dw: [0x331df03f, 0x4000061, 0xff00ff, 0x3ff, 0x0, 0x901, 0xc00005, 0x9770000, 0xfde00000, 0xfffffffe, 0xfde68000, 0xfffffffe, 0x0, 0x0, 0x0, 0x0], bo: (0xfffefde00000, 0x6a000), aux_bo: Some((0xfffefde00000, 0x6a000)) }, // game SURFTYPE_2D R8G8B8A8_UNORM 256x256 lod0+1 aux AUX_CCS_E
    Real { dw: [0x331df03f, 0x4000061, 0xff00ff, 0x3ff, 0x0, 0x902, 0xc00005, 0x9770000, 0xfde00000, 0xfffffffe, 0xfde68000, 0xfffffffe, 0x0, 0x0, 0x0, 0x0], bo: (0xfffefde00000, 0x6a000), aux_bo: Some((0xfffefde00000, 0x6a000)) }, // game SURFTYPE_2D R8G8B8A8_UNORM 256x256 lod0+2 aux AUX_CCS_E
    Real { dw: [0x331df03f, 0x4000061, 0xff00ff, 0x3ff, 0x0, 0x910, 0xc00005, 0x9770000, 0xfde00000, 0xfffffffe, 0xfde68000, 0xfffffffe, 0x0, 0x0, 0x0, 0x0], bo: (0xfffefde00000, 0x6a000), aux_bo: Some((0xfffefde00000, 0x6a000)) }, // game SURFTYPE_2D R8G8B8A8_UNORM 256x256 lod1+0 aux AUX_CCS_E
    Real { dw: [0x331df03f, 0x4000061, 0xff00ff, 0x3ff, 0x0, 0x903, 0xc00005, 0x9770000, 0xfde00000, 0xfffffffe, 0xfde68000, 0xfffffffe, 0x0, 0x0, 0x0, 0x0], bo: (0xfffefde00000, 0x6a000), aux_bo: Some((0xfffefde00000, 0x6a000)) }, // game SURFTYPE_2D R8G8B8A8_UNORM 256x256 lod0+3 aux AUX_CCS_E
    Real { dw: [0x331df03f, 0x4000061, 0xff00ff, 0x3ff, 0x0, 0x920, 0xc00005, 0x9770000, 0xfde00000, 0xfffffffe, 0xfde68000, 0xfffffffe, 0x0, 0x0, 0x0, 0x0], bo: (0xfffefde00000, 0x6a000), aux_bo: Some((0xfffefde00000, 0x6a000)) }, // game SURFTYPE_2D R8G8B8A8_UNORM 256x256 lod2+0 aux AUX_CCS_E
    Real { dw: [0x331df03f, 0x4000061, 0xff00ff, 0x3ff, 0x0, 0x904, 0xc00005, 0x9770000, 0xfde00000, 0xfffffffe, 0xfde68000, 0xfffffffe, 0x0, 0x0, 0x0, 0x0], bo: (0xfffefde00000, 0x6a000), aux_bo: Some((0xfffefde00000, 0x6a000)) }, // game SURFTYPE_2D R8G8B8A8_UNORM 256x256 lod0+4 aux AUX_CCS_E
    Real { dw: [0x331df03f, 0x4000061, 0xff00ff, 0x3ff, 0x0, 0x930, 0xc00005, 0x9770000, 0xfde00000, 0xfffffffe, 0xfde68000, 0xfffffffe, 0x0, 0x0, 0x0, 0x0], bo: (0xfffefde00000, 0x6a000), aux_bo: Some((0xfffefde00000, 0x6a000)) }, // game SURFTYPE_2D R8G8B8A8_UNORM 256x256 lod3+0 aux AUX_CCS_E
    Real { dw: [0x331df03f, 0x4000061, 0xff00ff, 0x3ff, 0x0, 0x905, 0xc00005, 0x9770000, 0xfde00000, 0xfffffffe, 0xfde68000, 0xfffffffe, 0x0, 0x0, 0x0, 0x0], bo: (0xfffefde00000, 0x6a000), aux_bo: Some((0xfffefde00000, 0x6a000)) }, // game SURFTYPE_2D R8G8B8A8_UNORM 256x256 lod0+5 aux AUX_CCS_E
    Real { dw: [0x331df03f, 0x4000061, 0xff00ff, 0x3ff, 0x0, 0x940, 0xc00005, 0x9770000, 0xfde00000, 0xfffffffe, 0xfde68000, 0xfffffffe, 0x0, 0x0, 0x0, 0x0], bo: (0xfffefde00000, 0x6a000), aux_bo: Some((0xfffefde00000, 0x6a000)) }, // game SURFTYPE_2D R8G8B8A8_UNORM 256x256 lod4+0 aux AUX_CCS_E
    Real { dw: [0x331df03f, 0x4000061, 0xff00ff, 0x3ff, 0x0, 0x906, 0xc00005, 0x9770000, 0xfde00000, 0xfffffffe, 0xfde68000, 0xfffffffe, 0x0, 0x0, 0x0, 0x0], bo: (0xfffefde00000, 0x6a000), aux_bo: Some((0xfffefde00000, 0x6a000)) }, // game SURFTYPE_2D R8G8B8A8_UNORM 256x256 lod0+6 aux AUX_CCS_E
    Real { dw: [0x331df03f, 0x4000061, 0xff00ff, 0x3ff, 0x0, 0x950, 0xc00005, 0x9770000, 0xfde00000, 0xfffffffe, 0xfde68000, 0xfffffffe, 0x0, 0x0, 0x0, 0x0], bo: (0xfffefde00000, 0x6a000), aux_bo: Some((0xfffefde00000, 0x6a000)) }, // game SURFTYPE_2D R8G8B8A8_UNORM 256x256 lod5+0 aux AUX_CCS_E
    Real { dw: [0x331df03f, 0x4000061, 0xff00ff, 0x3ff, 0x0, 0x907, 0xc00005, 0x9770000, 0xfde00000, 0xfffffffe, 0xfde68000, 0xfffffffe, 0x0, 0x0, 0x0, 0x0], bo: (0xfffefde00000, 0x6a000), aux_bo: Some((0xfffefde00000, 0x6a000)) }, // game SURFTYPE_2D R8G8B8A8_UNORM 256x256 lod0+7 aux AUX_CCS_E
    Real { dw: [0x331df03f, 0x4000061, 0xff00ff, 0x3ff, 0x0, 0x960, 0xc00005, 0x9770000, 0xfde00000, 0xfffffffe, 0xfde68000, 0xfffffffe, 0x0, 0x0, 0x0, 0x0], bo: (0xfffefde00000, 0x6a000), aux_bo: Some((0xfffefde00000, 0x6a000)) }, // game SURFTYPE_2D R8G8B8A8_UNORM 256x256 lod6+0 aux AUX_CCS_E
    Real { dw: [0x331df03f, 0x4000061, 0xff00ff, 0x3ff, 0x0, 0x908, 0xc00005, 0x9770000, 0xfde00000, 0xfffffffe, 0xfde68000, 0xfffffffe, 0x0, 0x0, 0x0, 0x0], bo: (0xfffefde00000, 0x6a000), aux_bo: Some((0xfffefde00000, 0x6a000)) }, // game SURFTYPE_2D R8G8B8A8_UNORM 256x256 lod0+8 aux AUX_CCS_E
    Real { dw: [0x331df03f, 0x4000061, 0xff00ff, 0x3ff, 0x0, 0x970, 0xc00005, 0x9770000, 0xfde00000, 0xfffffffe, 0xfde68000, 0xfffffffe, 0x0, 0x0, 0x0, 0x0], bo: (0xfffefde00000, 0x6a000), aux_bo: Some((0xfffefde00000, 0x6a000)) }, // game SURFTYPE_2D R8G8B8A8_UNORM 256x256 lod7+0 aux AUX_CCS_E
    Real { dw: [0x80014000, 0x4000000, 0x9000f, 0x0, 0x0, 0x0, 0x0, 0x9770000, 0xfffb6000, 0xfffffffe, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0], bo: (0xfffefffb6000, 0x490), aux_bo: None }, // game SURFTYPE_BUFFER R32G32B32A32_FLOAT 16x10 lod0+0 aux AUX_NONE
    Real { dw: [0x300ab03f, 0x40000b4, 0x167009f, 0x9ff, 0x0, 0x100, 0x0, 0x9770000, 0xfe800000, 0xfffffffe, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0], bo: (0xfffefe800000, 0xf0000), aux_bo: None }, // game SURFTYPE_2D R32G32B32A32_UINT 160x360 lod0+0 aux AUX_NONE
    Real { dw: [0x3211f03f, 0x40000b4, 0x2cf04ff, 0x27ff, 0x0, 0x100, 0xc00015, 0x9770000, 0xff000000, 0xfffffffe, 0xff730000, 0xfffffffe, 0x3d4cc000, 0x3d4cc000, 0x3dccc000, 0x3f800000], bo: (0xfffeff000000, 0x800000), aux_bo: Some((0xfffeff000000, 0x800000)) }, // game SURFTYPE_2D R16G16B16A16_FLOAT 1280x720 lod0+0 aux AUX_CCS_E
    Real { dw: [0x3361723f, 0x4000100, 0x3ff03ff, 0xfff, 0x0, 0x100, 0x100003b, 0x8010000, 0xff800000, 0xfffffffe, 0xffc00000, 0xfffffffe, 0x0, 0x0, 0x0, 0x0], bo: (0xfffeff800000, 0x600000), aux_bo: Some((0xfffeff800000, 0x600000)) }, // game SURFTYPE_2D R32_FLOAT 1024x1024 lod0+0 aux AUX_HIZ
    Real { dw: [0x3211f03f, 0x400005a, 0x167027f, 0x13ff, 0x0, 0x100, 0x80000d, 0x9770000, 0xfe600000, 0xfffffffe, 0xfe7e0000, 0xfffffffe, 0x0, 0x0, 0x0, 0x0], bo: (0xfffefe600000, 0x200000), aux_bo: Some((0xfffefe600000, 0x200000)) }, // game SURFTYPE_2D R16G16B16A16_FLOAT 640x360 lod0+0 aux AUX_CCS_E
    Real { dw: [0x331df03f, 0x40000b4, 0x2cf04ff, 0x13ff, 0x0, 0x100, 0xc0000d, 0x9770000, 0xfe000000, 0xfffffffe, 0xfe398000, 0xfffffffe, 0x0, 0x0, 0x0, 0x0], bo: (0xfffefe000000, 0x400000), aux_bo: Some((0xfffefe000000, 0x400000)) }, // game SURFTYPE_2D R8G8B8A8_UNORM 1280x720 lod0+0 aux AUX_CCS_E
    Real { dw: [0x3419f03f, 0x400005a, 0x167027f, 0x4ff, 0x0, 0x100, 0x0, 0x9770000, 0xffa00000, 0xfffffffe, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0], bo: (0xfffeffa00000, 0x78000), aux_bo: None }, // video SURFTYPE_2D R8G8_UNORM 640x360 lod0+0 aux AUX_NONE
    Real { dw: [0x84194000, 0x4000000, 0x707007f, 0x1, 0x0, 0x0, 0x0, 0x9410000, 0xfff3b000, 0xfffffffe, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0], bo: (0xfffefff3b000, 0x80000), aux_bo: None }, // video SURFTYPE_BUFFER R8G8_UNORM 128x1800 lod0+0 aux AUX_NONE
    Real { dw: [0x3501f03f, 0x40000b4, 0x2cf04ff, 0x4ff, 0x0, 0x100, 0x0, 0x8010000, 0xffc00000, 0xfffffffe, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0], bo: (0xfffeffc00000, 0xe6000), aux_bo: None }, // video SURFTYPE_2D R8_UNORM 1280x720 lod0+0 aux AUX_NONE
    Real { dw: [0x3419f03f, 0x400005a, 0x167027f, 0x4ff, 0x0, 0x100, 0x0, 0x9410000, 0xffa00000, 0xfffffffe, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0], bo: (0xfffeffa00000, 0x78000), aux_bo: None }, // video SURFTYPE_2D R8G8_UNORM 640x360 lod0+0 aux AUX_NONE
    Real { dw: [0x331df03f, 0x4000040, 0xff00ff, 0x3ff, 0x0, 0x100, 0x400005, 0x9770000, 0xfec00000, 0xfffffffe, 0xfec40000, 0xfffffffe, 0x0, 0x0, 0x0, 0x0], bo: (0xfffefec00000, 0x41000), aux_bo: Some((0xfffefec00000, 0x41000)) }, // video SURFTYPE_2D R8G8B8A8_UNORM 256x256 lod0+0 aux AUX_CCS_E
    ];

    /// The main and aux ranges of `dw`, which must be bounded.
    fn bounded(dw: &[u32; 16]) -> (Range, Option<Range>) {
        match surface_state(dw) {
            Extent::Ranges([Some(main), aux, None]) => (main, aux),
            e => panic!("{e:x?} for {dw:x?}"),
        }
    }

    fn within(r: Range, (start, size): (u64, u64)) -> bool {
        r.start >= start && r.end <= start + size
    }

    /// Every real state lies within its buffer, and a main surface ends
    /// before the aux surface Mesa put after it in the same buffer; a
    /// buffer state whose pitch (1) is under its format's element (iris's
    /// UBOs: R32G32B32A32_FLOAT, sized in bytes) is taken as entries of
    /// whole elements, 16 times the buffer.
    #[test]
    fn real_states_lie_within_their_buffers() {
        for r in REAL {
            let (main, aux) = bounded(&r.dw);
            let stride = (r.dw[3] & 0x3ffff) + 1;
            if r.dw[0] >> 29 == SURFTYPE_BUFFER && stride == 1 && r.dw[0] >> 18 & 0x3ff != 0x1ff {
                let entries = (r.dw[2] >> 16 & 0x3fff) << 7 | (r.dw[2] & 0x7f);
                let bytes = u64::from(entries + 1) * 16;
                assert_eq!(main.end - main.start, bytes, "{:x?}", r.dw);
                continue;
            }
            // Buffers' ends round up to 16 bytes, within the page.
            let bo = (r.bo.0, r.bo.1.next_multiple_of(16));
            assert!(
                within(main, bo),
                "{main:x?} outside {:x?}: {:x?}",
                r.bo,
                r.dw
            );
            assert_eq!(aux.is_some(), r.aux_bo.is_some(), "{:x?}", r.dw);
            if let (Some(aux), Some(aux_bo)) = (aux, r.aux_bo) {
                assert!(within(aux, aux_bo), "{aux:x?} outside {aux_bo:x?}");
                assert!(
                    aux_bo != r.bo || main.end <= aux.start,
                    "{main:x?} overlaps {aux:x?}"
                );
            }
        }
    }

    /// The `i`th state of [`REAL`] (see their comments).
    fn real(i: usize) -> &'static [u32; 16] {
        &REAL[i].dw
    }

    /// Real states against isl's numbers for their surfaces.
    #[test]
    fn real_states_match_isl() {
        // desktop 1920x1080 RGBA8 Y, CCS_E: isl_calc_size 34 tile rows x
        // 32 x 7680 B; CCS 240 x 272 2-bit elements: 2 x 3 CCS tiles.
        let (main, aux) = bounded(real(10));
        assert_eq!(main.end - main.start, 34 * 32 * 7680);
        let aux = aux.unwrap();
        assert_eq!(
            (aux.start - main.start, aux.end - aux.start),
            (34 * 32 * 7680, 3 * 32 * 256)
        );
        // game 256x256 RGBA8, 9 levels (render target LOD 8): the tree is
        // 256 x (256 + 132) rows, 13 tile rows of 1024 B, ending where
        // iris put the CCS (0x68000); LOD 0 alone is 8 tile rows.
        let (mip8, _) = bounded(real(27));
        assert_eq!(mip8.end - mip8.start, 0x68000);
        let (mip0, _) = bounded(real(11));
        assert_eq!(mip0.end - mip0.start, 8 * 32 * 1024);
        // game shadow map 1024x1024 R32_FLOAT sampled with HiZ: 4 MiB, and
        // the HiZ at 4 MiB: 128 x 256 elements, 8 x 16 HiZ tiles.
        let (main, aux) = bounded(real(32));
        assert_eq!(main.end - main.start, 4 << 20);
        assert_eq!(aux.unwrap().end - aux.unwrap().start, 8 * 16 * 4096);
        // compute SSBO (RAW, 256 KiB) and 512x512 R32_FLOAT storage image.
        assert_eq!(bounded(real(1)).0.end - bounded(real(1)).0.start, 256 << 10);
        assert_eq!(bounded(real(3)).0.end - bounded(real(3)).0.start, 1 << 20);
    }

    /// A 2D RGBA8 (format 0xc7) state: `w` x `h`, pitch bytes, tile mode
    /// `tile`, HALIGN_16, VALIGN_4, at 1 GiB.
    fn rss(w: u32, h: u32, pitch: u32, tile: u32) -> [u32; 16] {
        let mut dw = [0u32; 16];
        dw[0] = 1 << 29 | 0xc7 << 18 | 1 << 16 | 3 << 14 | tile << 12;
        dw[2] = (h - 1) << 16 | (w - 1);
        dw[3] = pitch - 1;
        dw[8] = 1 << 30;
        dw
    }

    fn len(dw: &[u32; 16]) -> u64 {
        let (main, _) = bounded(dw);
        main.end - main.start
    }

    #[test]
    fn null_and_unknown() {
        let mut dw = rss(64, 64, 256, 3);
        dw[0] |= 7 << 29;
        assert_eq!(surface_state(&dw), Extent::Nothing);
        let mut dw = rss(64, 64, 256, 3);
        dw[0] = dw[0] & !(0x3ff << 18) | 0x1fe << 18;
        assert_eq!(surface_state(&dw), Extent::Unbounded("unknown format"));
        let mut dw = rss(64, 64, 256, 3);
        dw[0] = dw[0] & !(7 << 29) | 5 << 29;
        assert!(matches!(surface_state(&dw), Extent::Unbounded(_)), "STRBUF");
        let mut dw = rss(64, 64, 256, 3);
        dw[5] = 1 << 18;
        assert_eq!(
            surface_state(&dw),
            Extent::Unbounded("tiled resource mode (Yf/Ys)")
        );
    }

    #[test]
    fn each_tiling() {
        // 100 x 50 RGBA8, aligned to 112 x 52 (448 B rows).
        assert_eq!(
            len(&rss(100, 50, 512, 0)),
            51 * 512 + 448,
            "linear: last row's bytes"
        );
        assert_eq!(
            len(&rss(100, 50, 512, 2)),
            6 * 8 * 512 + 4096,
            "X: 7 tile rows of 1 tile"
        );
        assert_eq!(
            len(&rss(100, 50, 512, 3)),
            32 * 512 + 4 * 4096,
            "Y: 2 tile rows of 4"
        );
        // W (R8_UINT, 0x140... use R8_UNORM 0x140): 100 x 50 bytes, pitch 256.
        let mut dw = rss(100, 50, 256, 1);
        dw[0] = dw[0] & !(0x3ff << 18) | 0x140 << 18;
        assert_eq!(len(&dw), 2 * 4096, "W: 1 tile row of 2 64 B tiles");
        // Tiled base: the range starts at the page.
        let mut dw = rss(100, 50, 512, 3);
        dw[8] |= 0x40;
        assert_eq!(bounded(&dw).0.start, 1 << 30);
    }

    #[test]
    fn mips_raise_the_extent() {
        let one = len(&rss(256, 256, 1024, 3));
        let mut dw = rss(256, 256, 1024, 3);
        dw[5] = 8; // MIP Count 8: 9 levels
        let nine = len(&dw);
        assert_eq!((one, nine), (256 * 1024, 13 * 32 * 1024));
        dw[5] = 4 << 4 | 4; // Min LOD 4 + 4 more: the same 9 levels
        assert_eq!(len(&dw), nine);
    }

    #[test]
    fn arrays_via_qpitch() {
        let mut dw = rss(64, 64, 256, 3);
        dw[1] = 25; // QPitch 100 rows (>> 2)
        dw[3] |= 5 << 21; // Depth 5: 6 layers
        assert_eq!(len(&dw), (5 * 100 + 64_u64).div_ceil(32) * 32 * 256);
        dw[4] = 2 << 18; // Minimum Array Element 2: 8 layers
        assert_eq!(len(&dw), (7 * 100 + 64_u64).div_ceil(32) * 32 * 256);
    }

    #[test]
    fn overflow_near_2_48() {
        let mut dw = rss(64, 64, 256, 3);
        dw[8] = 0xffff_f000;
        dw[9] = 0xffff;
        assert_eq!(surface_state(&dw), Extent::Unbounded("past 2^48"));
        // A canonical address's sign bits are not part of it.
        dw[8] = 0;
        dw[9] = 0xffff_fffe;
        assert_eq!(bounded(&dw).0.start, 0xfffe_0000_0000);
        // 16384 x 16384 RGBA32F, 2048 layers: too large.
        let mut dw = rss(16384, 16384, 1 << 18, 3);
        dw[3] |= 2047 << 21;
        dw[1] = 0x7fff;
        assert_eq!(surface_state(&dw), Extent::Unbounded("too large"));
    }

    #[test]
    fn multisampled_with_mcs() {
        // 64 x 64 RGBA8, 4x MSFMT_MSS (4 slices 64 rows apart), MCS
        // (AUX_CCS_D on a multisampled surface) 8 bpp, one Y tile wide.
        let mut dw = rss(64, 64, 256, 3);
        dw[1] = 16;
        dw[4] = 2 << 3;
        dw[6] = 16 << 16 | AUX_CCS_D;
        dw[10] = 0x8000_0000;
        let (main, aux) = bounded(&dw);
        assert_eq!(main.end - main.start, 7 * 32 * 256 + 2 * 4096);
        let aux = aux.unwrap();
        assert_eq!(
            (aux.start, aux.end - aux.start),
            (0x8000_0000, 32 * 128 + 4096)
        );
        // Interleaved (MSFMT_DEPTH_STENCIL): 128 x 128 samples, one slice.
        dw[4] |= 1 << 6;
        assert_eq!(
            bounded(&dw).0.end - bounded(&dw).0.start,
            3 * 32 * 256 + 4 * 4096
        );
        // CCS_E is not for multisampled surfaces on Gen9.
        dw[6] = AUX_CCS_E;
        assert!(matches!(surface_state(&dw), Extent::Unbounded(_)));
    }

    /// iris's shadow map (game): 1024 x 1024 D32_FLOAT with HiZ, in one
    /// 6 MiB buffer at 0xfffeff800000, the HiZ 4 MiB in.
    const SHADOW_DEPTH: [u32; 8] = [
        0x7805_0006,
        0x3044_0fff,
        0xff80_0000,
        0xffff_fffe,
        0x0ffc_3ff0,
        4,
        0x0400_0000,
        0x100,
    ];
    const SHADOW_HIZ: [u32; 5] = [0x7807_0003, 0x0800_03ff, 0xffc0_0000, 0xffff_fffe, 0x100];
    /// The game's 1280 x 720 D24X8 depth (6 MiB buffer at
    /// 0xfffefea00000, HiZ 0x398000 in) with separate stencil (its own
    /// 960 KiB buffer at 0xfffefe800000).
    const SCENE_DEPTH: [u32; 8] = [
        0x7805_0006,
        0x384c_13ff,
        0xfea0_0000,
        0xffff_fffe,
        0x0b3c_4ff0,
        4,
        0x0400_0000,
        0xb4,
    ];
    const SCENE_HIZ: [u32; 5] = [0x7807_0003, 0x0800_04ff, 0xfed9_8000, 0xffff_fffe, 0xb4];
    const SCENE_STENCIL: [u32; 5] = [0x7806_0003, 0x8100_09ff, 0xfe80_0000, 0xffff_fffe, 0xb4];
    /// No depth, stencil or HiZ (every workload's first batch).
    const NULL_DEPTH: [u32; 8] = [0x7805_0006, 0xe004_0000, 0, 0, 0, 4, 0, 0];

    fn one(e: Extent) -> (u64, u64) {
        match e {
            Extent::Ranges([Some(r), None, None]) => (r.start, r.end),
            e => panic!("{e:x?}"),
        }
    }

    #[test]
    fn real_depth_stencil_hiz() {
        const G: u64 = 0xfffe_0000_0000;
        // Depth: 1024 rows of 4096 B; HiZ: 8 x 16 HiZ tiles.
        assert_eq!(
            one(depth_buffer(&SHADOW_DEPTH, 0)),
            (G | 0xff80_0000, G | 0xffc0_0000)
        );
        let hiz = one(hiz_buffer(&SHADOW_HIZ, &SHADOW_DEPTH));
        assert_eq!(hiz, (G | 0xffc0_0000, G | 0xffc8_0000));
        // 23 tile rows of 5120 B: ends where iris put the HiZ.
        assert_eq!(
            one(depth_buffer(&SCENE_DEPTH, 0)),
            (G | 0xfea0_0000, G | 0xfed9_8000)
        );
        let hiz = one(hiz_buffer(&SCENE_HIZ, &SCENE_DEPTH));
        assert_eq!(hiz, (G | 0xfed9_8000, G | 0xfee1_0000));
        // W tiles: 12 tile rows of 20: the whole buffer.
        let st = one(stencil_buffer(&SCENE_STENCIL, &SCENE_DEPTH, 0));
        assert_eq!(st, (G | 0xfe80_0000, G | 0xfe8f_0000));
        // 4x multisampled: twice the samples across and down.
        let (a, b) = one(depth_buffer(&SCENE_DEPTH, 2));
        assert_eq!(b - a, 44 * 32 * 5120 + 80 * 4096);

        assert_eq!(depth_buffer(&NULL_DEPTH, 0), Extent::Nothing);
        let null_hiz = [0x7807_0003, 0x0800_0000, 0, 0, 0];
        assert_eq!(hiz_buffer(&null_hiz, &NULL_DEPTH), Extent::Nothing);
        let null_stencil = [0x7806_0003, 0x0100_0000, 0, 0, 0];
        assert_eq!(
            stencil_buffer(&null_stencil, &NULL_DEPTH, 0),
            Extent::Nothing
        );
        // HiZ disabled in the depth buffer: nothing, whatever the HiZ says.
        let mut no_hiz = SHADOW_DEPTH;
        no_hiz[1] &= !(1 << 22);
        assert_eq!(hiz_buffer(&SHADOW_HIZ, &no_hiz), Extent::Nothing);
        // Truncated or the wrong command.
        assert!(matches!(
            depth_buffer(&SCENE_DEPTH[..7], 0),
            Extent::Unbounded(_)
        ));
        assert!(matches!(
            hiz_buffer(&SCENE_STENCIL, &SCENE_DEPTH),
            Extent::Unbounded(_)
        ));
        assert!(matches!(
            depth_buffer(&SCENE_DEPTH, 5),
            Extent::Unbounded(_)
        ));
    }

    #[test]
    fn so_buffer_and_offset() {
        let mut cmd = [
            0x7918_0006,
            1 << 31 | 3 << 20,
            0x1000_0000,
            1,
            1023,
            0x2000_0008,
            1,
            0,
        ];
        let e = so_buffer(&cmd);
        let r: std::vec::Vec<_> = e.ranges().map(|r| (r.start, r.end)).collect();
        assert_eq!(
            r,
            [
                (0x1_1000_0000, 0x1_1000_1000),
                (0x1_2000_0008, 0x1_2000_000c)
            ]
        );
        cmd[1] &= !(3 << 20);
        assert_eq!(one(so_buffer(&cmd)), (0x1_1000_0000, 0x1_1000_1000));
        cmd[1] = 0;
        assert_eq!(so_buffer(&cmd), Extent::Nothing);
    }

    #[test]
    fn scratch_space() {
        assert_eq!(one(scratch(0x10000, 0, 4)), (0x10000, 0x11000));
        assert_eq!(one(scratch(0x10000, 11, 2)), (0x10000, 0x10000 + (4 << 20)));
        assert_eq!(
            scratch(0x10000, 12, 2),
            Extent::Unbounded("reserved scratch size")
        );
        assert_eq!(scratch(0x10000, 3, 0), Extent::Nothing);
        assert_eq!(scratch(0, 11, 1024), Extent::Unbounded("too large"));
        assert_eq!(
            scratch(ADDR_LIMIT - 1024, 0, 2),
            Extent::Unbounded("past 2^48")
        );
    }

    /// Any dwords: no panic (overflow checks are on in tests), and every
    /// range is non-empty, within 48 bits and at most [`MAX_EXTENT`].
    #[test]
    fn any_input_is_handled() {
        let mut rng = crate::testutil::Rng::new(7);
        let check = |e: Extent| {
            for r in e.ranges() {
                assert!(r.start < r.end && r.end <= ADDR_LIMIT && r.end - r.start <= MAX_EXTENT);
            }
        };
        for i in 0..20_000u32 {
            let mut dw = *real(i as usize % REAL.len());
            for _ in 0..1 + rng.below(4) {
                let k = rng.below(16) as usize;
                dw[k] ^= 1 << rng.below(32);
                if rng.below(8) == 0 {
                    dw[k] = rng.next_u64() as u32;
                }
            }
            check(surface_state(&dw));
            let cmd: [u32; 8] = core::array::from_fn(|k| {
                let v = rng.next_u64() as u32;
                if k == 0 {
                    0x7800_0000 | (5 + i % 3) << 16
                } else {
                    v
                }
            });
            check(depth_buffer(&cmd, i % 6));
            check(stencil_buffer(&cmd, &SCENE_DEPTH, i % 6));
            check(hiz_buffer(&cmd, &cmd));
            check(so_buffer(&cmd[..(i % 9) as usize]));
            check(scratch(rng.next_u64(), i % 14, rng.next_u64() as u32));
        }
    }
}

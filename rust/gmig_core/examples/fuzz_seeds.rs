// SPDX-License-Identifier: GPL-2.0

//! Writes seed corpora for the fuzz targets in `fuzz/`:
//!
//! - `<dir>/stream_decode/`: valid stream images (known sections, optional
//!   unknown ones, empty and large payloads), each once as is (mode byte 0)
//!   and once for the re-sealing mode (mode byte 3), and resume streams of
//!   a base and a delta to a longer, shorter or same-length image (mode 0);
//! - `<dir>/cmd_exec_remap/`: two context descriptors and guest memory
//!   holding valid context images, rings and first-level, second-level,
//!   chained and PPGTT batches whose commands (stores, flushes, pipe
//!   controls, blits, register loads, 3D state) the sim streamer runs and
//!   the remapper moves;
//! - `<dir>/aub_read/`: AUB files as `intel_dump_gpu` writes them (Mesa's
//!   `aub_write.c`, through `gmig_core::testutil::aub`) for execbuffers on
//!   the render, blitter and video engines, with small context images;
//! - `<dir>/eu_kernel/`: the Gen9 shader kernels Mesa compiled for gmig-gl
//!   (`src/writeset/testdata/`, from Mesa's `INTEL_DEBUG=hex` dumps).
//! - `<dir>/surface_extent/`: RENDER_SURFACE_STATEs and depth, stencil
//!   and HiZ commands iris emitted for gmig-gl's game workload (a render
//!   target with CCS_E, a shadow map with HiZ, an SSBO), as the target
//!   reads them.
//! - `<dir>/replay_run/`: the same, and one whose batch stores through
//!   the PPGTT (the replay workload, `gmig_core::sim::replay`);
//! - `<dir>/replay_read/`: small replay files (`gmig_core::replay`): two
//!   contexts, pages and EXECs with and without write ranges, a map table
//!   of adjacent and distant runs.
//!
//!   cargo run --release --example fuzz_seeds -- <dir>

use std::{fs, path::Path};

use gmig_core::{
    aub::Engine,
    replay::write::Writer as ReplayWriter,
    sim::exec::LRC_MAGIC,
    sim::vgpu::REGS_BYTES,
    stream::{self, ImageSink, Section, Writer, FLAG_MANDATORY, HEADER_LEN, SECTION_HEADER_LEN},
    testutil::{aub, Rng},
};

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    fs::write(dir.join(name), bytes).unwrap();
}

fn stream_seeds(dir: &Path) -> usize {
    fs::create_dir_all(dir).unwrap();
    let mut rng = Rng::new(1);
    let mut n = 0;
    // (type, flags, length) lists: the sim's own sections, optional extras.
    let shapes: &[&[(u16, u16, usize)]] = &[
        &[],
        &[(Section::Config as u16, FLAG_MANDATORY, 256)],
        &[
            (Section::Config as u16, FLAG_MANDATORY, 256),
            (Section::Regs as u16, FLAG_MANDATORY, REGS_BYTES),
            (Section::Ggtt as u16, FLAG_MANDATORY, 16 + 8 * 64),
        ],
        &[
            (Section::Config as u16, FLAG_MANDATORY, 256),
            (Section::Regs as u16, FLAG_MANDATORY, REGS_BYTES),
            (Section::Ggtt as u16, FLAG_MANDATORY, 16 + 8 * 16),
            (Section::SourceStats as u16, 0, 64),
            (0x200, 0, 8),
        ],
        &[(Section::Regs as u16, FLAG_MANDATORY, 0), (0x7fff, 0, 3)],
        &[(0x10, 0, 1), (0x11, 0, 4096)],
    ];
    // Resume streams: a base, then a delta to a longer, a shorter and a
    // same-length image (mode 0).
    let mut imgs = Vec::new();
    for extra in [0usize, 200, 0] {
        let mut buf = vec![0u8; 8 * 1024];
        let mut w = Writer::new(&mut buf, 1, 0).unwrap();
        w.section(Section::Regs as u16, FLAG_MANDATORY, 512, |p| p.fill(7))
            .unwrap();
        if extra > 0 {
            w.section(Section::GvtWorkloads as u16, FLAG_MANDATORY, extra, |p| {
                rng.fill(p)
            })
            .unwrap();
        }
        let len = w.finish().unwrap();
        imgs.push(buf[..len].to_vec());
    }
    imgs[2][HEADER_LEN + SECTION_HEADER_LEN + 5] ^= 1;
    for (i, (a, b)) in [(0, 1), (1, 0), (0, 2)].into_iter().enumerate() {
        let mut d = vec![0u8; 4096];
        let dn = stream::delta::write_delta::<Vec<u64>>(&imgs[a], &imgs[b], None, &mut d).unwrap();
        let mut seed = vec![0u8];
        seed.extend_from_slice(&imgs[a]);
        seed.extend_from_slice(&d[..dn]);
        write(dir, &format!("delta-{i}"), &seed);
        n += 1;
    }
    for (i, shape) in shapes.iter().enumerate() {
        let mut buf = vec![0u8; 64 * 1024];
        let mut w = Writer::new(&mut buf, 1, (i % 2) as u16).unwrap();
        for &(ty, flags, len) in *shape {
            w.section(ty, flags, len, |p| rng.fill(p)).unwrap();
        }
        let len = w.finish().unwrap();
        for mode in [0u8, 3] {
            let mut seed = vec![mode];
            seed.extend_from_slice(&buf[..len]);
            write(dir, &format!("image-{i}-mode{mode}"), &seed);
            n += 1;
        }
    }
    n
}

/// Partition base the fuzz target gives the source vGPU.
const A: u32 = 64 << 20;
const PAGE: u32 = 4096;
// Four pages, packed (small inputs mutate and run faster):
// page 0: context image 0, batches 1-3; page 1: ring 0; page 2: context
// image 1 and, after it, ring 1; page 3: the PPGTT tables (one page that
// is PML4, PDP, PD and PT at once) and the PPGTT batch.
const LRC0: u32 = 0;
const BATCH1: u32 = 0x100;
const BATCH2: u32 = 0x600;
const BATCH3: u32 = 0xb00;
const RING0: u32 = PAGE;
const LRC1: u32 = 2 * PAGE;
const RING1: u32 = 2 * PAGE;
const RING1_HEAD: u32 = 0x100;
const PML4: u32 = 3 * PAGE;
/// PPGTT address of the PPGTT batch: PML4 and PDP index 0, PD index 128,
/// PT index 0, offset 0x800; every level is the page at `PML4`.
const PP_BATCH: u32 = 0x1000_0800;
const PAGES: usize = 4;
/// Graphics addresses that stores and blits may target: GGTT pages 4..16
/// (mapped by the target, beyond the input).
const TARGET_LO: u32 = 4 * PAGE;
const TARGET_HI: u32 = 16 * PAGE;

struct Gen {
    rng: Rng,
}

impl Gen {
    fn target(&mut self, align: u32) -> u32 {
        let off = TARGET_LO + self.rng.below(u64::from(TARGET_HI - TARGET_LO - 64)) as u32;
        (A + off) & !(align - 1)
    }

    /// One command the streamer executes and the remapper understands.
    fn command(&mut self, out: &mut Vec<u32>) {
        let v = self.rng.next_u64() as u32;
        match self.rng.below(13) {
            0 => out.push(0),          // MI_NOOP
            1 => out.push(0x02 << 23), // MI_USER_INTERRUPT
            2 => out.extend([0x20 << 23 | 1 << 22 | 2, self.target(4), 0, v]),
            3 => out.extend([0x20 << 23 | 1 << 22 | 3, self.target(8), 0, v, !v]),
            4 => out.extend([0x20 << 23 | 2, PP_BATCH + 0x400, 0, v]), // PPGTT store
            5 => out.extend([0x22 << 23 | 1, 0x20a8, v]),              // LRI RCS_IMR
            6 => out.extend([0x26 << 23 | 1 << 14 | 2, self.target(8) | 4, 0, v]),
            7 => out.extend([0x7a00_0004, 1 << 14 | 1 << 24, self.target(8), 0, v, !v]),
            8 => {
                // XY_COLOR_BLT: 16x4 pixels, pitch 256.
                let br13 = 3 << 24 | 0xf0 << 16 | 256;
                out.extend([2 << 29 | 0x50 << 22 | 5, br13, 0, 4 << 16 | 16]);
                out.extend([self.target(4096), 0, v]);
            }
            9 => {
                // XY_SRC_COPY_BLT: 8x2 pixels between two target pages.
                let br13 = 3 << 24 | 0xcc << 16 | 128;
                out.extend([2 << 29 | 0x53 << 22 | 8, br13, 0, 2 << 16 | 8]);
                out.extend([self.target(4096), 0, 0, 128, self.target(4096), 0]);
            }
            10 => out.extend([0x7810_0007, 0, 0, 0, 0, 0, 0, 0, 0]), // 3DSTATE_VS
            11 => out.extend([0x7b00_0005, 0x10f, 3, 0, 1, 0, 0]),   // 3DPRIMITIVE
            _ => out.extend([0x7a00_0004, 1 << 20, 0, 0, 0, 0]),     // PIPE_CONTROL, no write
        }
    }

    fn commands(&mut self, max: u64, out: &mut Vec<u32>) {
        for _ in 0..self.rng.below(max) + 1 {
            self.command(out);
        }
    }
}

fn put(mem: &mut [u8], gpa: u32, dws: &[u32]) {
    for (i, d) in dws.iter().enumerate() {
        let o = gpa as usize + 4 * i;
        mem[o..o + 4].copy_from_slice(&d.to_le_bytes());
    }
}

fn put64(mem: &mut [u8], gpa: u32, v: u64) {
    mem[gpa as usize..gpa as usize + 8].copy_from_slice(&v.to_le_bytes());
}

/// A context image at `lrc` whose ring at `ring` holds `cmds`.
fn context(mem: &mut [u8], lrc: u32, ring: u32, head: u32, cmds: &[u32]) {
    let size = PAGE;
    let mut at = head;
    for &c in cmds {
        put(mem, ring + at, &[c]);
        at = (at + 4) % size;
    }
    put(mem, lrc, &[LRC_MAGIC, A + ring, size, head, at, PML4, 0]);
}

fn cmd_seed(seed: u64) -> Vec<u8> {
    let mut g = Gen {
        rng: Rng::new(seed),
    };
    // Unused bytes are 0xff (no command): a mutated ring or batch that
    // runs off its commands stops at once.
    let mut mem = vec![0xffu8; PAGES * PAGE as usize];
    // PPGTT: entries 0 and 128 of the table page point to itself.
    let pte = u64::from(PML4) | 3;
    put64(&mut mem, PML4, pte);
    put64(&mut mem, PML4 + 128 * 8, pte);

    // Batches: batch1 calls second-level batch2, then chains to batch3.
    let shape = seed % 4;
    let mut b1 = Vec::new();
    g.commands(6, &mut b1);
    b1.extend([0x31 << 23 | 1 << 22 | 1, A + BATCH2, 0]);
    g.commands(4, &mut b1);
    if shape & 1 != 0 {
        b1.extend([0x31 << 23 | 1, A + BATCH3, 0]); // chained
    } else {
        b1.push(0x0a << 23);
    }
    put(&mut mem, BATCH1, &b1);
    let mut b2 = Vec::new();
    g.commands(6, &mut b2);
    b2.push(0x0a << 23);
    put(&mut mem, BATCH2, &b2);
    let mut b3 = Vec::new();
    g.commands(6, &mut b3);
    b3.push(0x0a << 23);
    put(&mut mem, BATCH3, &b3);
    let mut pb = Vec::new();
    g.commands(4, &mut pb);
    pb.push(0x0a << 23);
    put(&mut mem, PML4 + (PP_BATCH & 0xfff), &pb);

    // Ring 0: commands, the GGTT batch, maybe the PPGTT batch; wraps
    // around the ring's end in some seeds.
    let mut r0 = Vec::new();
    g.commands(5, &mut r0);
    r0.extend([0x31 << 23 | 1, A + BATCH1, 0]);
    if shape & 2 != 0 {
        r0.extend([0x31 << 23 | 1 << 8 | 1, PP_BATCH, 0]);
    }
    g.commands(3, &mut r0);
    let head = if seed.is_multiple_of(3) { PAGE - 16 } else { 0 };
    context(&mut mem, LRC0, RING0, head, &r0);
    // Ring 1: a second context, calling batch1 too in some seeds.
    let mut r1 = Vec::new();
    g.commands(4, &mut r1);
    if seed.is_multiple_of(5) {
        r1.extend([0x31 << 23 | 1, A + BATCH1, 0]);
    }
    context(&mut mem, LRC1, RING1, RING1_HEAD, &r1);

    // Descriptors: LRCA in bits 31:12 (the target keeps bits 17:12),
    // context id in the high half. Second: none, the other context, or the
    // same one again.
    let d0 = u64::from(A + LRC0) | 1 << 32 | 1;
    let d1 = match seed % 3 {
        0 => 0,
        1 => u64::from(A + LRC1) | 2 << 32 | 1,
        _ => d0,
    };
    let mut out = Vec::with_capacity(16 + mem.len());
    out.extend(d0.to_le_bytes());
    out.extend(d1.to_le_bytes());
    out.extend(mem);
    out
}

/// AUBs of one execbuffer per engine Mesa's writer knows, and of several
/// execbuffers with two buffers.
fn aub_seeds(dir: &Path) -> usize {
    fs::create_dir_all(dir).unwrap();
    let mut rng = Rng::new(3);
    let mut g = Gen { rng: Rng::new(4) };
    let mut batch = || {
        let mut b = Vec::new();
        g.commands(6, &mut b);
        b.push(0x0a << 23);
        b.iter().flat_map(|d| d.to_le_bytes()).collect::<Vec<u8>>()
    };
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0;
    for (i, e) in [Engine::Render, Engine::Blitter, Engine::Video]
        .into_iter()
        .enumerate()
    {
        let (len, _) = aub::one_exec(&mut buf, e, &batch(), true).unwrap();
        write(dir, &format!("exec-{i}"), &buf[..len]);
        n += 1;
    }
    // Three execbuffers: a batch and a data buffer on the next page.
    let mut w = aub::Writer::new(&mut buf, aub::SKL_GT2, "seed", true);
    w.default_setup();
    let mut data = vec![0u8; 256];
    rng.fill(&mut data);
    assert!(w.map_ppgtt(aub::FIRST_BO, 0x2000));
    for e in [Engine::Render, Engine::Render, Engine::Blitter] {
        assert!(w.trace_block(aub::FIRST_BO, &batch()));
        assert!(w.trace_block(aub::FIRST_BO + 0x1000, &data));
        w.exec(e, aub::FIRST_BO).unwrap();
    }
    let len = w.finish().unwrap();
    write(dir, "execs-3", &buf[..len]);
    n + 1
}

/// The kernels of the test data files, one seed each: the hex bytes
/// before each line's `|`, a kernel per `## ` block.
fn eu_seeds(dir: &Path) -> usize {
    fs::create_dir_all(dir).unwrap();
    let files = [
        include_str!("../src/writeset/testdata/desktop.txt"),
        include_str!("../src/writeset/testdata/game.txt"),
        include_str!("../src/writeset/testdata/compute.txt"),
        include_str!("../src/writeset/testdata/video.txt"),
        include_str!("../src/writeset/testdata/compute-spill.txt"),
    ];
    let mut kernels: Vec<Vec<u8>> = Vec::new();
    for line in files.iter().flat_map(|f| f.lines()) {
        if line.starts_with("## ") {
            kernels.push(Vec::new());
        } else if let (Some((hex, _)), Some(k)) = (line.split_once(" | "), kernels.last_mut()) {
            k.extend(
                hex.split_whitespace()
                    .map(|b| u8::from_str_radix(b, 16).unwrap()),
            );
        }
    }
    for (i, k) in kernels.iter().enumerate() {
        write(dir, &format!("kernel-{i}"), k);
    }
    kernels.len()
}

/// RENDER_SURFACE_STATEs from `INTEL_DEBUG=bat` of `gmig-gl game 1` and
/// `compute 1` on iris (SKL): a 1280x720 RGBA16F render target with CCS_E,
/// the 1024x1024 R32_FLOAT shadow map with HiZ, a RAW SSBO (the tests'
/// `REAL[31]`, `REAL[32]`, `REAL[1]` in `writeset/surface.rs`).
const SURFACE_STATES: [[u32; 16]; 3] = [
    [
        0x3211f03f, 0x040000b4, 0x02cf04ff, 0x000027ff, 0, 0x100, 0x00c00015, 0x09770000,
        0xff000000, 0xfffffffe, 0xff730000, 0xfffffffe, 0x3d4cc000, 0x3d4cc000, 0x3dccc000,
        0x3f800000,
    ],
    [
        0x3361723f, 0x04000100, 0x03ff03ff, 0x00000fff, 0, 0x100, 0x0100003b, 0x08010000,
        0xff800000, 0xfffffffe, 0xffc00000, 0xfffffffe, 0, 0, 0, 0,
    ],
    [
        0x87fd4000, 0x04000000, 0x07ff007f, 0, 0, 0, 0, 0x00010000, 0xffc00000, 0xfffffffe, 0, 0,
        0, 0, 0, 0,
    ],
];
/// The game's 1280x720 D24X8 depth buffer, its stencil and HiZ buffer
/// commands, and a 3DSTATE_SO_BUFFER.
const DEPTH: [u32; 8] = [
    0x78050006, 0x384c13ff, 0xfea00000, 0xfffffffe, 0x0b3c4ff0, 4, 0x04000000, 0xb4,
];
const DEPTH_CMDS: [&[u32]; 3] = [
    &[0x78060003, 0x810009ff, 0xfe800000, 0xfffffffe, 0xb4],
    &[0x78070003, 0x080004ff, 0xfed98000, 0xfffffffe, 0xb4],
    &[
        0x79180006, 0x80300000, 0x10000000, 1, 1023, 0x20000008, 1, 0,
    ],
];

fn surface_seeds(dir: &Path) -> usize {
    fs::create_dir_all(dir).unwrap();
    let mut n = 0;
    for (i, state) in SURFACE_STATES.iter().enumerate() {
        for (j, cmd) in DEPTH_CMDS.iter().enumerate() {
            let mut seed = vec![i as u8, 2];
            for dw in state.iter().chain(&DEPTH).chain(cmd.iter()) {
                seed.extend_from_slice(&dw.to_le_bytes());
            }
            write(dir, &format!("state-{i}-cmd-{j}"), &seed);
            n += 1;
        }
    }
    n
}

/// A draw the pipeline-state tracker bounds: a 4 KiB window holding the
/// desktop's SIMD16 fragment shader at 0x40, a binding table at 0x800
/// whose entry 0 points at 0x900, where the first real surface state lies;
/// then STATE_BASE_ADDRESS (every base 0), the PS binding table pointer,
/// the VS/HS/DS/GS disabled, the PS (SIMD16), no depth, no stream output,
/// and a 3DPRIMITIVE, each command as its length byte and dwords.
fn pipe_seeds(dir: &Path) -> usize {
    fs::create_dir_all(dir).unwrap();
    let mut window = vec![0u8; 4096];
    let text = include_str!("../src/writeset/testdata/desktop.txt");
    let mut kernels: Vec<Vec<u8>> = Vec::new();
    for line in text.lines() {
        if line.starts_with("## ") {
            kernels.push(Vec::new());
        } else if let (Some((hex, _)), Some(k)) = (line.split_once(" | "), kernels.last_mut()) {
            k.extend(
                hex.split_whitespace()
                    .map(|b| u8::from_str_radix(b, 16).unwrap()),
            );
        }
    }
    let fs = &kernels[2];
    window[0x40..0x40 + fs.len()].copy_from_slice(fs);
    window[0x800..0x804].copy_from_slice(&0x900u32.to_le_bytes());
    for (i, d) in SURFACE_STATES[0].iter().enumerate() {
        window[0x900 + 4 * i..0x904 + 4 * i].copy_from_slice(&d.to_le_bytes());
    }
    let mut sba = vec![0x6101_0011u32; 1];
    sba.extend([1u32, 0, 0, 1, 0, 1, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    let ps = vec![0x7820_000au32, 0x40, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0];
    let cmds: Vec<Vec<u32>> = vec![
        sba,
        vec![0x782a_0000, 0x800],
        vec![0x7810_0007, 0, 0, 0, 0, 0, 0, 0, 0],
        vec![0x781b_0007, 0, 0, 0, 0, 0, 0, 0, 0],
        vec![0x781d_0009, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        vec![0x7811_0008, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        ps,
        vec![0x7805_0006, 7 << 29, 0, 0, 0, 0, 0, 0],
        vec![0x7806_0003, 0, 0, 0, 0],
        vec![0x7807_0003, 0, 0, 0, 0],
        vec![0x780d_0000, 0],
        vec![0x781e_0003, 0, 0, 0, 0],
        vec![0x7b00_0005, 0, 3, 0, 1, 0, 0],
    ];
    let mut seed = window;
    for c in &cmds {
        // The target's length byte is (n % 32) + 1 dwords.
        seed.push((c.len() - 1) as u8);
        for d in c {
            seed.extend_from_slice(&d.to_le_bytes());
        }
    }
    write(dir, "draw", &seed);
    1
}

/// Small valid replay files.
fn replay_seeds(dir: &Path) -> usize {
    fs::create_dir_all(dir).unwrap();
    let mut w = ReplayWriter::new(2, &[(0x10000, 2), (0x12000, 1), (0xfffe_0000_0000, 4)]);
    w.page(0x11000, &[7; 4096]);
    w.exec(1, 0x10040, &[(0xfffe_0000_1000, 0xfffe_0000_3000)]);
    w.page(0xfffe_0000_3000, &[9; 4096]);
    w.exec(0, 0x12000, &[]);
    write(dir, "two-contexts", &w.finish());
    let mut w = ReplayWriter::new(1, &[(0x1000, 1), (0x20000, 3)]);
    w.page(0x1000, &[0x05; 4096]);
    w.exec(0, 0x1000, &[(0x20000, 0x21000), (0x22000, 0x23000)]);
    w.exec(0, 0x1000, &[(0x20000, 0x23000)]);
    write(dir, "one-context", &w.finish());
    2
}

/// Replay files for the replay workload: the reader's, and one whose batch
/// stores through the PPGTT and whose model writes another buffer.
fn replay_run_seeds(dir: &Path) -> usize {
    let n = replay_seeds(dir);
    let batch = 0xfffe_0000_0000u64;
    let low = 0x1_0000_0000u64;
    let mut w = ReplayWriter::new(2, &[(low, 4), (batch, 1)]);
    let mut page = [0u8; 4096];
    let cmds = [
        (0x20 << 23) | 2,
        low as u32 + 8,
        (low >> 32) as u32,
        0xcafe,
        0x0a << 23,
    ];
    for (i, c) in cmds.iter().enumerate() {
        page[4 * i..4 * i + 4].copy_from_slice(&c.to_le_bytes());
    }
    w.page(batch, &page);
    w.exec(1, batch, &[(low + 0x1000, low + 0x3000)]);
    w.exec(0, batch, &[]);
    write(dir, "store-and-model", &w.finish());
    n + 1
}

fn main() {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: fuzz_seeds <dir>");
        std::process::exit(2);
    };
    let dir = Path::new(&dir);
    let s = stream_seeds(&dir.join("stream_decode"));
    let cdir = dir.join("cmd_exec_remap");
    fs::create_dir_all(&cdir).unwrap();
    let c = 48;
    for seed in 0..c {
        write(&cdir, &format!("ctx-{seed}"), &cmd_seed(seed));
    }
    let a = aub_seeds(&dir.join("aub_read"));
    let e = eu_seeds(&dir.join("eu_kernel"));
    let f = surface_seeds(&dir.join("surface_extent"));
    let p = pipe_seeds(&dir.join("pipe_state"));
    let r = replay_seeds(&dir.join("replay_read"));
    let rr = replay_run_seeds(&dir.join("replay_run"));
    println!(
        "{s} stream_decode seeds, {c} cmd_exec_remap seeds, {a} aub_read seeds, \
         {e} eu_kernel seeds, {f} surface_extent seeds, {p} pipe_state seeds, \
         {r} replay_read seeds, {rr} replay_run seeds in {}",
        dir.display()
    );
}

// SPDX-License-Identifier: GPL-2.0

//! gmig: live migration for mediated virtual GPUs.
//!
//! gmig makes a mediated vGPU (Intel GVT-g, or gmig's own software Gen9-style
//! vGPU) live-migratable through the VFIO v2 migration uAPI. It follows the
//! gMig design (VEE'18): software dirty pages found by hashing, one-shot
//! pre-copy, and dynamic graphics address remapping on resume.
//!
//! The pure logic lives in [`gmig_core`], a `core`-only crate that is also
//! built on the host for tests, benchmarks and fuzzing.

use kernel::{
    debugfs::{Dir, File},
    prelude::*,
    uaccess::UserSliceReader, //
};

#[path = "gmig_core/src/lib.rs"]
pub mod gmig_core;

mod bench;
mod gvt;
mod kunit;
mod log;
mod migration;
mod sim;
mod vfio;

module! {
    type: Gmig,
    name: "gmig",
    authors: ["gmig developers"],
    description: "Live migration for mediated vGPUs (software dirty pages, one-shot pre-copy, address remapping)",
    license: "GPL",
    // iova_bitmap_set() (DMA logging reports).
    imports_ns: ["IOMMUFD"],
    params: {
        bench: u32 {
            default: 0,
            description: "1: at load, time page_hash against memcpy of 16 MiB and print one line",
        },
    },
}

kernel::sync::global_lock! {
    // SAFETY: initialised in `Gmig::init()` before anything that reads it
    // (the providers' vGPU creation) is registered.
    unsafe(uninit) static DEBUGFS: Mutex<Option<Dir>> = None;
}

/// The debugfs root (`/sys/kernel/debug/gmig`) the module owns, for the
/// providers' per-vGPU directories; `None` once the module is going away.
pub(crate) fn debugfs_root() -> Option<Dir> {
    DEBUGFS.lock().clone()
}

/// The text a debugfs write brings (at most `buf.len()` bytes of UTF-8).
pub(crate) fn debugfs_text<'a>(reader: &mut UserSliceReader, buf: &'a mut [u8]) -> Result<&'a str> {
    let len = reader.len().min(buf.len());
    reader.read_slice(&mut buf[..len])?;
    core::str::from_utf8(&buf[..len]).map_err(|_| EINVAL)
}

/// The count N of a debugfs write `<knob> N` (fault injection files).
pub(crate) fn debugfs_knob(reader: &mut UserSliceReader, knob: &str) -> Result<u64> {
    let mut buf = [0u8; 64];
    debugfs_text(reader, &mut buf)?
        .trim()
        .strip_prefix(knob)
        .and_then(|rest| rest.strip_prefix(' '))
        .and_then(|n| n.trim().parse::<u64>().ok())
        .ok_or(EINVAL)
}

/// gmig's version, as printed at load and in debugfs `gmig/version`.
const VERSION: &str = "0.1.0";

/// Content of the debugfs `version` file.
struct Version;

impl core::fmt::Debug for Version {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        writeln!(f, "gmig {VERSION}")
    }
}

struct Gmig {
    /// The sim's mdev parent, removed first (`drop`).
    sim: Option<vfio::mdev::Parent<sim::SimParent>>,
    // Dropped in declaration order: the kvmgt registration first, files
    // before their directory.
    _gvt: gvt::Registration,
    _gvt_status: Pin<KBox<File<gvt::Status>>>,
    _fault: Pin<KBox<File<migration::Fault>>>,
    _version: Pin<KBox<File<Version>>>,
    _debugfs: Dir,
}

impl kernel::Module for Gmig {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        if module_parameters::bench.value() != 0 {
            // A figure, not a function of the module: a failure only warns.
            if let Err(e) = bench::run() {
                pr_warn!("bench: failed: {:?}\n", e);
            }
        }
        let debugfs = Dir::new(c"gmig");
        // SAFETY: called once, here, before the providers are registered.
        unsafe { DEBUGFS.init() };
        *DEBUGFS.lock() = Some(debugfs.clone());
        let version = KBox::pin_init(debugfs.read_only_file(c"version", Version), GFP_KERNEL)?;
        let gvt_status = KBox::pin_init(
            debugfs.read_write_callback_file(
                c"gvt",
                gvt::Status,
                &|s: &gvt::Status, f| write!(f, "{s:?}"),
                &|_: &gvt::Status, r| gvt::write_control(r),
            ),
            GFP_KERNEL,
        )?;
        let fault = KBox::pin_init(
            debugfs.read_write_callback_file(
                c"fault",
                migration::Fault,
                &|s: &migration::Fault, f| write!(f, "{s:?}"),
                &|_: &migration::Fault, r| migration::write_fault(r),
            ),
            GFP_KERNEL,
        )?;
        sim::init();
        let parent = sim::register()
            .inspect_err(|e| pr_err!("registering the sim mdev parent failed: {:?}\n", e))?;
        pr_info!("gmig {VERSION} loaded: sim provider, mdev parent \"gmig\"\n");
        Ok(Gmig {
            sim: Some(parent),
            _gvt: gvt::Registration::new(),
            _gvt_status: gvt_status,
            _fault: fault,
            _version: version,
            _debugfs: debugfs,
        })
    }
}

impl Drop for Gmig {
    fn drop(&mut self) {
        // Its vGPUs go with it.
        drop(self.sim.take());
        *DEBUGFS.lock() = None;
        pr_info!("gmig {VERSION} unloaded\n");
    }
}

// SPDX-License-Identifier: GPL-2.0

//! VFIO v2 migration (`struct vfio_migration_ops`) and DMA logging
//! (`struct vfio_log_ops`).
//!
//! A driver implements [`MigrationOps`] and [`LogOps`] on a type of its own
//! and installs them on a vfio_device with [`install`] before the device is
//! registered, or, for a device another driver registered (GVT-g's kvmgt),
//! before that driver registers it. Every callback gets the [`Device`]; the
//! driver finds its own state from it.
//!
//! C header: [`include/linux/vfio.h`](srctree/include/linux/vfio.h)
//!
//! # Examples
//!
//! ```ignore
//! struct Mig;
//!
//! impl MigrationOps for Mig {
//!     fn set_state(dev: &Device, state: DeviceState) -> Result<Option<ARef<File>>> {
//!         let mut now = my_state(dev)?.lock();
//!         while *now != state {
//!             let next = next_state(dev, *now, state)?;
//!             // ... the arc's work, a data fd for the arcs that open one
//!             *now = next;
//!         }
//!         Ok(None)
//!     }
//!     // ...
//! }
//!
//! // Before the device is registered:
//! // SAFETY: not registered yet, so its ops are ours.
//! unsafe { install::<Mig, Mig>(dev, FLAGS) };
//! ```

use core::marker::PhantomData;

use kernel::{fs::File, prelude::*, sync::aref::ARef, types::Opaque, uaccess::UserSlice};

use super::{bindings, device::Device};
use crate::gmig_core::vfio::DeviceState;

/// The migration operations of a VFIO device.
pub(crate) trait MigrationOps {
    /// Moves the device to `state` (`migration_set_state`), walking the
    /// arcs with [`next_state`]; returns the data fd the last arc opened.
    fn set_state(dev: &Device, state: DeviceState) -> Result<Option<ARef<File>>>;
    /// The device's state (`migration_get_state`).
    fn get_state(dev: &Device) -> Result<DeviceState>;
    /// The bytes a stop-copy would produce now (`migration_get_data_size`).
    fn data_size(dev: &Device) -> Result<usize>;
}

/// The DMA logging operations of a VFIO device.
pub(crate) trait LogOps {
    /// Logging starts over `ranges` (`log_start`); returns the page size
    /// the reports use.
    fn start(dev: &Device, ranges: &LogRanges<'_>) -> Result<u64>;
    /// Logging stops (`log_stop`).
    fn stop(dev: &Device) -> Result;
    /// Reports the pages written in `[iova, iova + length)` since the last
    /// report into `dirty`, and forgets them (`log_read_and_clear`).
    fn read_and_clear(dev: &Device, iova: u64, length: u64, dirty: &mut IovaBitmap) -> Result;
}

/// The migration flags gmig's devices offer: stop-copy, P2P and pre-copy.
pub(crate) const FLAGS: u32 = bindings::VFIO_MIGRATION_STOP_COPY
    | bindings::VFIO_MIGRATION_P2P
    | bindings::VFIO_MIGRATION_PRE_COPY;

/// The ops tables of `M` and `L`, built at compile time.
struct Tables<M, L>(PhantomData<(M, L)>);

impl<M: MigrationOps, L: LogOps> Tables<M, L> {
    const MIG: bindings::vfio_migration_ops = bindings::vfio_migration_ops {
        migration_set_state: Some(set_state_callback::<M>),
        migration_get_state: Some(get_state_callback::<M>),
        migration_get_data_size: Some(data_size_callback::<M>),
    };
    const LOG: bindings::vfio_log_ops = bindings::vfio_log_ops {
        log_start: Some(log_start_callback::<L>),
        log_stop: Some(log_stop_callback::<L>),
        log_read_and_clear: Some(log_read_and_clear_callback::<L>),
    };
}

/// Makes `dev` migratable through `M` and `L`, with migration `flags`.
///
/// # Safety
///
/// `dev` is not registered with the VFIO core yet (no op can run
/// concurrently), or the caller otherwise owns its ops fields, and every
/// op that runs on it is one `M` and `L` accept (they find their state
/// from the device).
pub(crate) unsafe fn install<M: MigrationOps, L: LogOps>(dev: &Device, flags: u32) {
    let raw = dev.as_raw();
    // SAFETY: the device is live and its ops fields are the caller's
    // (the function's contract); the tables are statics.
    unsafe {
        (*raw).migration_flags = flags;
        (*raw).mig_ops = &Tables::<M, L>::MIG;
        (*raw).log_ops = &Tables::<M, L>::LOG;
    }
}

/// The next state on the way from `cur` to `new`
/// (`vfio_mig_get_next_state()`): the arcs the uAPI defines, restricted to
/// the device's migration flags.
pub(crate) fn next_state(dev: &Device, cur: DeviceState, new: DeviceState) -> Result<DeviceState> {
    let mut next = 0;
    // SAFETY: the device is live (`Device`'s invariant); `next` is valid
    // for a write.
    let ret = unsafe {
        bindings::vfio_mig_get_next_state(dev.as_raw(), cur as u32, new as u32, &mut next)
    };
    kernel::error::to_result(ret)?;
    DeviceState::try_from(next).map_err(|_| EINVAL)
}

/// `set_state_callback`.
///
/// # Safety
///
/// The VFIO core calls it on a live device these ops were installed on
/// ([`install`]), with pointers valid for the call.
unsafe extern "C" fn set_state_callback<M: MigrationOps>(
    dev: *mut bindings::vfio_device,
    state: bindings::vfio_device_mig_state,
) -> *mut kernel::bindings::file {
    // SAFETY: the VFIO core calls the op on a live device.
    let dev = unsafe { Device::from_raw(dev) };
    let res = DeviceState::try_from(state)
        .map_err(|_| EINVAL)
        .and_then(|s| M::set_state(dev, s));
    match res {
        Ok(Some(file)) => ARef::into_raw(file).as_ptr().cast(),
        Ok(None) => core::ptr::null_mut(),
        Err(e) => e.to_ptr(),
    }
}

/// `get_state_callback`.
///
/// # Safety
///
/// The VFIO core calls it on a live device these ops were installed on
/// ([`install`]), with pointers valid for the call.
unsafe extern "C" fn get_state_callback<M: MigrationOps>(
    dev: *mut bindings::vfio_device,
    state: *mut bindings::vfio_device_mig_state,
) -> c_int {
    // SAFETY: the VFIO core calls the op on a live device.
    let dev = unsafe { Device::from_raw(dev) };
    match M::get_state(dev) {
        Ok(s) => {
            // SAFETY: the VFIO core passes a valid output pointer.
            unsafe { *state = s as u32 };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// `data_size_callback`.
///
/// # Safety
///
/// The VFIO core calls it on a live device these ops were installed on
/// ([`install`]), with pointers valid for the call.
unsafe extern "C" fn data_size_callback<M: MigrationOps>(
    dev: *mut bindings::vfio_device,
    len: *mut c_ulong,
) -> c_int {
    // SAFETY: the VFIO core calls the op on a live device.
    let dev = unsafe { Device::from_raw(dev) };
    match M::data_size(dev) {
        Ok(n) => {
            // SAFETY: the VFIO core passes a valid output pointer.
            unsafe { *len = n as c_ulong };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// The IOVA ranges of a `DMA_LOGGING_START` (an interval tree the VFIO
/// core built and owns during the call).
///
/// # Invariants
///
/// `root` is a valid `struct rb_root_cached` of `struct interval_tree_node`
/// for `'a`, not changed meanwhile.
pub(crate) struct LogRanges<'a> {
    root: *mut kernel::bindings::rb_root_cached,
    count: u32,
    _p: PhantomData<&'a ()>,
}

impl LogRanges<'_> {
    /// How many ranges the VMM asked for.
    pub(crate) fn count(&self) -> u32 {
        self.count
    }

    /// The ranges, as inclusive `(first, last)` IOVA pairs, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        // SAFETY: the tree is valid (type invariant).
        let mut node = unsafe { bindings::interval_tree_iter_first(self.root, 0, c_ulong::MAX) };
        core::iter::from_fn(move || {
            if node.is_null() {
                return None;
            }
            // SAFETY: `node` is a node of the valid tree (type invariant).
            let range = unsafe { ((*node).start as u64, (*node).last as u64) };
            // SAFETY: as above.
            node = unsafe { bindings::interval_tree_iter_next(node, 0, c_ulong::MAX) };
            Some(range)
        })
    }
}

/// The VMM's dirty bitmap of one `DMA_LOGGING_REPORT` (`struct
/// iova_bitmap`).
///
/// # Invariants
///
/// Wraps the bitmap the VFIO core passed to the running
/// `log_read_and_clear`, valid until it returns.
#[repr(transparent)]
pub(crate) struct IovaBitmap(Opaque<kernel::bindings::iova_bitmap>);

impl IovaBitmap {
    /// Marks `[iova, iova + length)` dirty.
    pub(crate) fn set(&mut self, iova: u64, length: u64) {
        let (Ok(iova), Ok(len)) = (c_ulong::try_from(iova), usize::try_from(length)) else {
            return;
        };
        // SAFETY: the bitmap is valid (type invariant); `iova_bitmap_set()`
        // clips the range to the part the bitmap covers.
        unsafe { bindings::iova_bitmap_set(self.0.get(), iova, len) }
    }
}

/// `log_start_callback`.
///
/// # Safety
///
/// The VFIO core calls it on a live device these ops were installed on
/// ([`install`]), with pointers valid for the call.
unsafe extern "C" fn log_start_callback<L: LogOps>(
    dev: *mut bindings::vfio_device,
    ranges: *mut kernel::bindings::rb_root_cached,
    nnodes: u32,
    page_size: *mut u64,
) -> c_int {
    // SAFETY: the VFIO core calls the op on a live device.
    let dev = unsafe { Device::from_raw(dev) };
    // INVARIANT: the VFIO core owns the tree during the call.
    let ranges = LogRanges {
        root: ranges,
        count: nnodes,
        _p: PhantomData,
    };
    match L::start(dev, &ranges) {
        Ok(size) => {
            // SAFETY: the VFIO core passes a valid output pointer.
            unsafe { *page_size = size };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// `log_stop_callback`.
///
/// # Safety
///
/// The VFIO core calls it on a live device these ops were installed on
/// ([`install`]), with pointers valid for the call.
unsafe extern "C" fn log_stop_callback<L: LogOps>(dev: *mut bindings::vfio_device) -> c_int {
    // SAFETY: the VFIO core calls the op on a live device.
    let dev = unsafe { Device::from_raw(dev) };
    L::stop(dev).map_or_else(|e| e.to_errno(), |()| 0)
}

/// `log_read_and_clear_callback`.
///
/// # Safety
///
/// The VFIO core calls it on a live device these ops were installed on
/// ([`install`]), with pointers valid for the call.
unsafe extern "C" fn log_read_and_clear_callback<L: LogOps>(
    dev: *mut bindings::vfio_device,
    iova: c_ulong,
    length: c_ulong,
    dirty: *mut kernel::bindings::iova_bitmap,
) -> c_int {
    // SAFETY: the VFIO core calls the op on a live device.
    let dev = unsafe { Device::from_raw(dev) };
    // SAFETY: `IovaBitmap` is `repr(transparent)`; the bitmap is the VFIO
    // core's for this call and nothing else uses it meanwhile.
    let dirty = unsafe { &mut *dirty.cast::<IovaBitmap>() };
    L::read_and_clear(dev, iova as u64, length as u64, dirty).map_or_else(|e| e.to_errno(), |()| 0)
}

/// What `VFIO_MIG_GET_PRECOPY_INFO` reports.
#[derive(Default)]
pub(crate) struct PrecopyInfo {
    /// Bytes of initial data not read yet.
    pub(crate) initial_bytes: u64,
    /// Bytes of dirty data not read yet.
    pub(crate) dirty_bytes: u64,
    /// The initial bytes are new initial data (`VFIO_PRECOPY_INFO_REINIT`);
    /// reported only to a VMM that opted in.
    pub(crate) reinit: bool,
}

/// The size of `struct vfio_precopy_info` up to `dirty_bytes`, the part
/// the uAPI reads and writes.
const PRECOPY_INFO_MINSZ: usize = core::mem::size_of::<bindings::vfio_precopy_info>();

impl PrecopyInfo {
    /// Answers the `VFIO_MIG_GET_PRECOPY_INFO` ioctl of a saving data fd of
    /// `dev`: checks `cmd` and the user's `argsz` at `arg` (as
    /// `vfio_check_precopy_ioctl()` does), asks `info` (told whether the
    /// VMM opted in to v2) and writes the answer back.
    pub(crate) fn ioctl(
        dev: &Device,
        cmd: u32,
        arg: usize,
        info: impl FnOnce(bool) -> Result<PrecopyInfo>,
    ) -> Result<isize> {
        if cmd != bindings::VFIO_MIG_GET_PRECOPY_INFO {
            return Err(ENOTTY);
        }
        let (mut reader, mut writer) =
            UserSlice::new(kernel::uaccess::UserPtr::from_addr(arg), PRECOPY_INFO_MINSZ)
                .reader_writer();
        let mut head = [0u8; 8];
        reader.read_slice(&mut head)?;
        let (argsz, flags) = (
            u32::from_ne_bytes([head[0], head[1], head[2], head[3]]),
            u32::from_ne_bytes([head[4], head[5], head[6], head[7]]),
        );
        if (argsz as usize) < PRECOPY_INFO_MINSZ {
            return Err(EINVAL);
        }
        let v2 = dev.precopy_info_v2();
        let got = info(v2)?;
        // v1 keeps what the user passed in flags (reserved); v2 makes them
        // an output, and only a VMM that opted in gets REINIT.
        let flags = match (v2, got.reinit) {
            (false, _) => flags,
            (true, false) => 0,
            (true, true) => bindings::VFIO_PRECOPY_INFO_REINIT,
        };
        let mut out = [0u8; PRECOPY_INFO_MINSZ];
        out[..4].copy_from_slice(&argsz.to_ne_bytes());
        out[4..8].copy_from_slice(&flags.to_ne_bytes());
        out[8..16].copy_from_slice(&got.initial_bytes.to_ne_bytes());
        out[16..24].copy_from_slice(&got.dirty_bytes.to_ne_bytes());
        writer.write_slice(&out)?;
        Ok(0)
    }
}

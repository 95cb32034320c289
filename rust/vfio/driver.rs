// SPDX-License-Identifier: GPL-2.0

//! VFIO devices a driver registers itself, with an emulated IOMMU (an
//! mdev's): the `struct vfio_device_ops` of a [`Driver`], and the
//! [`Registration`] that allocates, registers and frees the device.
//!
//! C header: [`include/linux/vfio.h`](srctree/include/linux/vfio.h)
//!
//! # Examples
//!
//! A device whose data is pin-initialised in place, registered from an
//! mdev's probe (`rust/sim/` has the whole driver; out-of-tree modules
//! cannot run doc tests):
//!
//! ```ignore
//! #[vtable]
//! impl vfio::driver::Driver for MyDev {
//!     const NAME: &'static CStr = c"vfio-mydev";
//!
//!     fn region_info(dev: &Registered<Self>, index: u32) -> Result<RegionInfo> {
//!         dev.region(index).ok_or(EINVAL)
//!     }
//! }
//!
//! let reg = Registration::new(mdev, |vdev| MyDev::new(vdev))?;
//! ```

use core::{marker::PhantomData, mem::MaybeUninit, ptr::NonNull};

use kernel::{
    device,
    prelude::*,
    str::CStr,
    types::Opaque,
    uaccess::{UserPtr, UserSlice, UserSliceReader, UserSliceWriter},
};

use super::{bindings, device::Device};

/// What a `VFIO_DEVICE_GET_REGION_INFO` answers for one region.
pub(crate) struct RegionInfo {
    /// Where the region starts in the device fd's offsets.
    pub(crate) offset: u64,
    /// Its size in bytes (0: the region does not exist).
    pub(crate) size: u64,
    /// `VFIO_REGION_INFO_FLAG_*`.
    pub(crate) flags: u32,
}

/// A VFIO device driver whose devices have an emulated IOMMU: its data and
/// its operations (`struct vfio_device_ops`). Each callback gets the
/// device's [`Registered`] data.
#[vtable]
pub(crate) trait Driver: Send + Sync + Sized + 'static {
    /// The driver's name (`vfio_device_ops.name`).
    const NAME: &'static CStr;

    /// A VFIO user opened the device (`open_device`).
    fn open(_dev: &Registered<Self>) -> Result {
        Ok(())
    }
    /// The VFIO user closed the device (`close_device`).
    fn close(_dev: &Registered<Self>) {}
    /// read() of the device fd at `*pos`; moves `*pos` by what it read.
    fn read(_dev: &Registered<Self>, _buf: UserSliceWriter, _pos: &mut i64) -> Result<usize> {
        Err(EINVAL)
    }
    /// write() of the device fd at `*pos`; moves `*pos` by what it wrote.
    fn write(_dev: &Registered<Self>, _buf: UserSliceReader, _pos: &mut i64) -> Result<usize> {
        Err(EINVAL)
    }
    /// ioctl() of the device fd, for what the VFIO core does not handle.
    fn ioctl(_dev: &Registered<Self>, _cmd: u32, _arg: usize) -> Result<isize> {
        Err(ENOTTY)
    }
    /// `VFIO_DEVICE_GET_REGION_INFO` of region `index`.
    fn region_info(_dev: &Registered<Self>, _index: u32) -> Result<RegionInfo> {
        Err(EINVAL)
    }
    /// Guest memory `[iova, iova + length)` is being unmapped: return once
    /// nothing of it is pinned by the device (`dma_unmap`).
    fn dma_unmap(_dev: &Registered<Self>, _iova: u64, _length: u64) {}
    /// The device is being removed while a user has it open: ask the user
    /// to release it (`request`; `count` counts the calls).
    fn request(_dev: &Registered<Self>, _count: u32) {}
}

/// A registered VFIO device of driver `T`: the `struct vfio_device` and
/// the driver's data after it.
///
/// # Invariants
///
/// `vdev` is the first member (the VFIO core allocates and frees the
/// whole object through it); `data` is initialised while `ready` is true,
/// which it is from the end of [`Registration::new`]'s set-up to the
/// device's release.
#[repr(C)]
pub(crate) struct Registered<T> {
    vdev: Opaque<bindings::vfio_device>,
    data: MaybeUninit<T>,
    ready: bool,
}

impl<T: Driver> Registered<T> {
    /// The device as the VFIO core sees it.
    pub(crate) fn vfio(&self) -> &Device {
        // SAFETY: `vdev` is a live vfio_device while `self` exists.
        unsafe { Device::from_raw(self.vdev.get()) }
    }

    /// The object of `vdev`, one of `T`'s.
    ///
    /// # Safety
    ///
    /// `vdev` was allocated by [`Registration::new::<T>`], its data is
    /// initialised, and it stays live for `'a`.
    unsafe fn from_raw<'a>(vdev: *mut bindings::vfio_device) -> &'a Self {
        // SAFETY: `vdev` is the first member of a `Registered<T>` (type
        // invariant), live for `'a` (the contract).
        unsafe { &*vdev.cast::<Self>() }
    }
}

impl<T> Registered<T> {
    /// The driver data of `dev`, which may still be being initialised:
    /// the caller reads only the fields it knows are.
    ///
    /// # Safety
    ///
    /// `dev` is the vfio_device of a `Registered<T>`.
    pub(crate) unsafe fn data_of(dev: &Device) -> *const T {
        let raw = dev.as_raw().cast::<Self>();
        // SAFETY: `dev` starts a `Registered<T>` (the contract); this only
        // computes the address of its data.
        unsafe { (&raw const (*raw).data).cast::<T>() }
    }
}

impl<T> core::ops::Deref for Registered<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: a `&Registered` is only handed out while the data is
        // initialised (type invariant).
        unsafe { self.data.assume_init_ref() }
    }
}

/// The ops table of `T`.
struct Ops<T>(PhantomData<T>);

impl<T: Driver> Ops<T> {
    const TABLE: Table = Table(bindings::vfio_device_ops {
        name: kernel::str::as_char_ptr_in_const_context(T::NAME).cast_mut(),
        release: Some(release_callback::<T>),
        bind_iommufd: Some(bindings::vfio_iommufd_emulated_bind),
        unbind_iommufd: Some(bindings::vfio_iommufd_emulated_unbind),
        attach_ioas: Some(bindings::vfio_iommufd_emulated_attach_ioas),
        detach_ioas: Some(bindings::vfio_iommufd_emulated_detach_ioas),
        open_device: Some(open_callback::<T>),
        close_device: Some(close_callback::<T>),
        read: if T::HAS_READ {
            Some(read_callback::<T>)
        } else {
            None
        },
        write: if T::HAS_WRITE {
            Some(write_callback::<T>)
        } else {
            None
        },
        ioctl: Some(ioctl_callback::<T>),
        get_region_info_caps: Some(region_info_callback::<T>),
        request: if T::HAS_REQUEST {
            Some(request_callback::<T>)
        } else {
            None
        },
        dma_unmap: Some(dma_unmap_callback::<T>),
        // SAFETY: all-zero is a valid `vfio_device_ops` (no op).
        ..unsafe { core::mem::zeroed() }
    });
}

/// A shareable ops table.
#[repr(transparent)]
struct Table(bindings::vfio_device_ops);

// SAFETY: the table is never written; the VFIO core only reads it.
unsafe impl Sync for Table {}

/// The registration of one device of `T`; dropping it unregisters the
/// device and drops the reference it holds.
///
/// # Invariants
///
/// `raw` is a `Registered<T>` allocated by `_vfio_alloc_device()`,
/// initialised and registered with the VFIO core, on which this holds one
/// reference.
pub(crate) struct Registration<T: Driver> {
    raw: NonNull<Registered<T>>,
}

// SAFETY: the registration only unregisters and puts the device, which
// the VFIO core allows from any thread; `T` is `Send + Sync`.
unsafe impl<T: Driver> Send for Registration<T> {}
// SAFETY: see `Send`; a `&Registration` gives a `&Registered<T>` only.
unsafe impl<T: Driver> Sync for Registration<T> {}

impl<T: Driver> Registration<T> {
    /// Allocates a device of `T` for `parent`, initialises its data with
    /// `init` (given the new vfio_device, not registered yet) and
    /// registers it with an emulated IOMMU.
    pub(crate) fn new<'a, I>(
        parent: &'a device::Device,
        init: impl FnOnce(&'a Device) -> I,
    ) -> Result<Self>
    where
        I: PinInit<T, Error>,
    {
        static_assert!(core::mem::offset_of!(Registered<()>, vdev) == 0);
        let table: &'static Table = &Ops::<T>::TABLE;
        // SAFETY: `parent` is a live device; the size is that of
        // `Registered<T>`, whose first member is the vfio_device; the
        // table is a static.
        let vdev = unsafe {
            bindings::_vfio_alloc_device(
                core::mem::size_of::<Registered<T>>(),
                super::device::raw_device(parent),
                &table.0,
            )
        };
        let vdev = kernel::error::from_err_ptr(vdev)?;
        let raw = vdev.cast::<Registered<T>>();
        // SAFETY: `_vfio_alloc_device()` returned a zeroed object of our
        // size, which no one else uses before it is registered.
        let data = unsafe { (&raw mut (*raw).data).cast::<T>() };
        // SAFETY: `vdev` is live; the data slot is ours to initialise, and
        // does not move (the VFIO core never moves the object).
        let init = init(unsafe { Device::from_raw(vdev) });
        // SAFETY: as above.
        if let Err(e) = unsafe { init.__init(data) } {
            // SAFETY: the reference `_vfio_alloc_device()` gave; `ready`
            // is false, so the release frees the memory only.
            unsafe { put(vdev) };
            return Err(e);
        }
        // INVARIANT: the data is initialised.
        // SAFETY: not registered yet: nothing else uses it.
        unsafe { (*raw).ready = true };
        // SAFETY: a live, initialised vfio_device.
        let ret = unsafe { bindings::vfio_register_emulated_iommu_dev(vdev) };
        if ret < 0 {
            // SAFETY: the reference `_vfio_alloc_device()` gave; the
            // release drops the data.
            unsafe { put(vdev) };
            return Err(Error::from_errno(ret));
        }
        // INVARIANT: allocated, initialised and registered; we hold the
        // reference `_vfio_alloc_device()` gave.
        Ok(Self {
            // SAFETY: `from_err_ptr` let a non-NULL pointer through.
            raw: unsafe { NonNull::new_unchecked(raw) },
        })
    }
}

impl<T: Driver> Drop for Registration<T> {
    fn drop(&mut self) {
        let vdev = self.raw.as_ptr().cast::<bindings::vfio_device>();
        // SAFETY: registered (type invariant); this waits for the users
        // to close the device, then no op runs any more.
        unsafe { bindings::vfio_unregister_group_dev(vdev) };
        // SAFETY: the reference the registration holds (type invariant).
        unsafe { put(vdev) };
    }
}

/// `vfio_put_device()`.
///
/// # Safety
///
/// The caller owns a reference on `vdev`, which it gives up.
unsafe fn put(vdev: *mut bindings::vfio_device) {
    // SAFETY: `vfio_put_device()` is `put_device(&vdev->device)`; the
    // reference is the caller's.
    unsafe { kernel::bindings::put_device(&raw mut (*vdev).device) }
}

/// `release` of the C ops table.
///
/// # Safety
///
/// The VFIO core calls it on a registered device of `T`, with pointers
/// valid for the call, once, at the device's last reference.
unsafe extern "C" fn release_callback<T: Driver>(vdev: *mut bindings::vfio_device) {
    let raw = vdev.cast::<Registered<T>>();
    // SAFETY: the last reference went: nothing else uses the object, which
    // the VFIO core frees after this; the data is dropped once, if it was
    // initialised (type invariant).
    unsafe {
        if (*raw).ready {
            (*raw).ready = false;
            (*raw).data.assume_init_drop();
        }
    }
}

/// The device of a callback.
///
/// # Safety
///
/// The VFIO core calls the op on a live, registered device of `T`.
unsafe fn dev<'a, T: Driver>(vdev: *mut bindings::vfio_device) -> &'a Registered<T> {
    // SAFETY: a registered device of `T` is initialised (the contract).
    unsafe { Registered::from_raw(vdev) }
}

/// `open` of the C ops table.
///
/// # Safety
///
/// The VFIO core calls it on a registered device of `T`, with pointers
/// valid for the call.
unsafe extern "C" fn open_callback<T: Driver>(vdev: *mut bindings::vfio_device) -> c_int {
    // SAFETY: the VFIO core calls the op on a registered device.
    T::open(unsafe { dev::<T>(vdev) }).map_or_else(|e| e.to_errno(), |()| 0)
}

/// `close` of the C ops table.
///
/// # Safety
///
/// The VFIO core calls it on a registered device of `T`, with pointers
/// valid for the call.
unsafe extern "C" fn close_callback<T: Driver>(vdev: *mut bindings::vfio_device) {
    // SAFETY: the VFIO core calls the op on a registered device.
    T::close(unsafe { dev::<T>(vdev) })
}

/// `read` of the C ops table.
///
/// # Safety
///
/// The VFIO core calls it on a registered device of `T`, with pointers
/// valid for the call.
unsafe extern "C" fn read_callback<T: Driver>(
    vdev: *mut bindings::vfio_device,
    buf: *mut c_char,
    count: usize,
    pos: *mut kernel::bindings::loff_t,
) -> isize {
    let w = UserSlice::new(UserPtr::from_ptr(buf.cast()), count).writer();
    // SAFETY: the VFIO core calls the op on a registered device, with its
    // file position for the call.
    let (d, pos) = unsafe { (dev::<T>(vdev), &mut *pos) };
    T::read(d, w, pos).map_or_else(|e| e.to_errno() as isize, |n| n as isize)
}

/// `write` of the C ops table.
///
/// # Safety
///
/// The VFIO core calls it on a registered device of `T`, with pointers
/// valid for the call.
unsafe extern "C" fn write_callback<T: Driver>(
    vdev: *mut bindings::vfio_device,
    buf: *const c_char,
    count: usize,
    pos: *mut kernel::bindings::loff_t,
) -> isize {
    let r = UserSlice::new(UserPtr::from_ptr(buf.cast_mut().cast()), count).reader();
    // SAFETY: as for `read_callback`.
    let (d, pos) = unsafe { (dev::<T>(vdev), &mut *pos) };
    T::write(d, r, pos).map_or_else(|e| e.to_errno() as isize, |n| n as isize)
}

/// `ioctl` of the C ops table.
///
/// # Safety
///
/// The VFIO core calls it on a registered device of `T`, with pointers
/// valid for the call.
unsafe extern "C" fn ioctl_callback<T: Driver>(
    vdev: *mut bindings::vfio_device,
    cmd: c_uint,
    arg: c_ulong,
) -> c_long {
    // SAFETY: the VFIO core calls the op on a registered device.
    let d = unsafe { dev::<T>(vdev) };
    T::ioctl(d, cmd, arg).map_or_else(|e| e.to_errno() as c_long, |n| n as c_long)
}

/// `region_info` of the C ops table.
///
/// # Safety
///
/// The VFIO core calls it on a registered device of `T`, with pointers
/// valid for the call.
unsafe extern "C" fn region_info_callback<T: Driver>(
    vdev: *mut bindings::vfio_device,
    info: *mut bindings::vfio_region_info,
    _caps: *mut bindings::vfio_info_cap,
) -> c_int {
    // SAFETY: the VFIO core calls the op on a registered device, with the
    // user's request copied in, for the call.
    let (d, info) = unsafe { (dev::<T>(vdev), &mut *info) };
    match T::region_info(d, info.index) {
        Ok(r) => {
            info.offset = r.offset;
            info.size = r.size;
            info.flags = r.flags;
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// `request` of the C ops table.
///
/// # Safety
///
/// The VFIO core calls it on a registered device of `T`, with pointers
/// valid for the call.
unsafe extern "C" fn request_callback<T: Driver>(vdev: *mut bindings::vfio_device, count: c_uint) {
    // SAFETY: the VFIO core calls the op on a registered device.
    T::request(unsafe { dev::<T>(vdev) }, count)
}

/// `dma_unmap` of the C ops table.
///
/// # Safety
///
/// The VFIO core calls it on a registered device of `T`, with pointers
/// valid for the call.
unsafe extern "C" fn dma_unmap_callback<T: Driver>(
    vdev: *mut bindings::vfio_device,
    iova: u64,
    length: u64,
) {
    // SAFETY: the VFIO core calls the op on a registered device.
    T::dma_unmap(unsafe { dev::<T>(vdev) }, iova, length)
}

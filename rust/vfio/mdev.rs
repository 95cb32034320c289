// SPDX-License-Identifier: GPL-2.0

//! Mediated devices: a parent device with its types
//! (`/sys/class/mdev_bus/<parent>/mdev_supported_types/`), and the mdev
//! driver that makes a device of each mdev a user creates there.
//!
//! C header: [`include/linux/mdev.h`](srctree/include/linux/mdev.h)

use core::{marker::PhantomData, pin::Pin, ptr::NonNull};

use kernel::{
    device,
    prelude::*,
    str::{CStr, CString},
    types::{ForeignOwnable, Opaque},
};

use super::bindings;

/// An mdev driver: what a parent's types offer, and the object it makes
/// of each mdev (its vfio_device, typically).
pub(crate) trait Driver: Sized + 'static {
    /// The object of one mdev, kept until the mdev is removed.
    type Device: Send + Sync;

    /// An mdev of type `index` was created: its device.
    fn probe(mdev: &device::Device, index: usize) -> Result<Pin<KBox<Self::Device>>>;
    /// How many more mdevs of type `index` can be created now.
    fn available(index: usize) -> u32;
    /// The type's description (its sysfs `description`).
    fn description(index: usize) -> &'static str;
}

/// One type a parent offers: its name (`<parent>-<name>` in sysfs) and
/// the pretty name it shows.
pub(crate) struct TypeName {
    /// The sysfs name, without the parent's prefix.
    pub(crate) sysfs: CString,
    /// The `name` attribute.
    pub(crate) pretty: CString,
}

/// The class of a parent device, which names its types: mdev calls a
/// type's directory `<class>-<type>` (`dev_driver_string()` of a device
/// with no bus and no driver is its class's name). A static: the driver
/// core may read it until the last reference to its sysfs directory goes.
///
/// # Invariants
///
/// A `struct class` with no callbacks, whose name is a `'static` string.
#[repr(transparent)]
pub(crate) struct Class(Opaque<kernel::bindings::class>);

// SAFETY: the class is written by the driver core only, under its locks,
// once registered.
unsafe impl Sync for Class {}

impl Class {
    /// A class named `name`.
    pub(crate) const fn new(name: &'static CStr) -> Self {
        // SAFETY: all-zero is a valid `struct class` (no callbacks).
        let mut c: kernel::bindings::class = unsafe { core::mem::zeroed() };
        c.name = kernel::str::as_char_ptr_in_const_context(name);
        // INVARIANT: no callbacks, a static name.
        Self(Opaque::new(c))
    }
}

/// The parent device: a device of the parent's class, registered here
/// with it; its memory is freed by its release (the driver core's last
/// reference).
///
/// # Invariants
///
/// `class` is registered, and `dev` is a device of it added to the driver
/// core, on which this holds the reference `device_initialize()` gave.
struct ParentDevice {
    dev: NonNull<kernel::bindings::device>,
    class: &'static Class,
}

impl ParentDevice {
    fn new(name: &CStr, class: &'static Class) -> Result<Self> {
        // SAFETY: a static class, unregistered in `drop` (or below).
        kernel::error::to_result(unsafe { kernel::bindings::class_register(class.0.get()) })?;
        Self::add(name, class).inspect_err(|_| {
            // SAFETY: registered just above, with no device.
            unsafe { kernel::bindings::class_unregister(class.0.get()) };
        })
    }

    fn add(name: &CStr, class: &'static Class) -> Result<Self> {
        let b = KBox::new(Opaque::<kernel::bindings::device>::zeroed(), GFP_KERNEL)?;
        let dev = KBox::into_raw(b).cast::<kernel::bindings::device>();
        // SAFETY: `dev` is a zeroed device, ours; once initialised it is
        // freed by `release_device` at its last reference, which `put` or
        // `device_unregister()` drops.
        unsafe {
            kernel::bindings::device_initialize(dev);
            (*dev).class = class.0.get();
            (*dev).release = Some(release_device);
            let ret = kernel::bindings::dev_set_name(dev, c"%s".as_char_ptr(), name.as_char_ptr());
            let ret = if ret == 0 {
                kernel::bindings::device_add(dev)
            } else {
                ret
            };
            if ret < 0 {
                kernel::bindings::put_device(dev);
                return Err(Error::from_errno(ret));
            }
        }
        // INVARIANT: added; the initial reference is ours.
        Ok(Self {
            // SAFETY: `dev` came from a `KBox`, so it is not NULL.
            dev: unsafe { NonNull::new_unchecked(dev) },
            class,
        })
    }
}

impl Drop for ParentDevice {
    fn drop(&mut self) {
        // SAFETY: added, and the reference is ours (type invariant).
        unsafe { kernel::bindings::device_unregister(self.dev.as_ptr()) };
        // SAFETY: registered (type invariant); its device is gone.
        unsafe { kernel::bindings::class_unregister(self.class.0.get()) };
    }
}

/// The release of a [`ParentDevice`].
///
/// # Safety
///
/// Called by the driver core once, at the device's last reference.
unsafe extern "C" fn release_device(dev: *mut kernel::bindings::device) {
    // SAFETY: the device came from `KBox::into_raw` in `ParentDevice::new`.
    drop(unsafe { KBox::from_raw(dev.cast::<Opaque<kernel::bindings::device>>()) });
}

/// The C objects of a registered parent, pinned: mdev keeps pointers to
/// them.
///
/// # Invariants
///
/// `type_ptrs[i]` points to `types[i]`, whose names are `names[i]`'s;
/// none of the vectors is grown once the parent is registered.
#[pin_data]
struct Raw {
    #[pin]
    driver: Opaque<bindings::mdev_driver>,
    #[pin]
    parent: Opaque<bindings::mdev_parent>,
    types: KVec<Opaque<bindings::mdev_type>>,
    type_ptrs: KVec<*mut bindings::mdev_type>,
    names: KVec<TypeName>,
}

/// A registered mdev parent of driver `T` (its device and driver named
/// alike); dropping it removes the parent, its types and its driver.
///
/// # Invariants
///
/// `raw.driver` is registered with mdev, and `raw.parent` with its types
/// on `dev`, for the life of the object.
pub(crate) struct Parent<T: Driver> {
    raw: Pin<KBox<Raw>>,
    dev: Option<ParentDevice>,
    _t: PhantomData<T>,
}

// SAFETY: the raw objects are only used by mdev under its own locks once
// registered, and by `drop`.
unsafe impl<T: Driver> Send for Parent<T> {}
// SAFETY: see `Send`; a `&Parent` gives access to nothing.
unsafe impl<T: Driver> Sync for Parent<T> {}

impl Raw {
    /// The C objects of a parent of `T` named `name`, with the types
    /// `names`, not registered yet.
    fn new<T: Driver>(name: &'static CStr, names: KVec<TypeName>) -> Result<Pin<KBox<Self>>> {
        let n = names.len();
        let mut slots = KVec::with_capacity(n, GFP_KERNEL)?;
        for t in names.iter() {
            slots.push(
                Opaque::new(bindings::mdev_type {
                    sysfs_name: t.sysfs.as_char_ptr(),
                    pretty_name: t.pretty.as_char_ptr(),
                    ..Default::default()
                }),
                GFP_KERNEL,
            )?;
        }
        let type_ptrs = KVec::with_capacity(n, GFP_KERNEL)?;
        let mut raw = KBox::pin_init(
            try_pin_init!(Raw {
                driver: Opaque::new(bindings::mdev_driver {
                    device_api: bindings::VFIO_DEVICE_API_PCI_STRING.as_ptr().cast(),
                    probe: Some(probe_callback::<T>),
                    remove: Some(remove_callback::<T>),
                    get_available: Some(available_callback::<T>),
                    show_description: Some(description_callback::<T>),
                    driver: kernel::bindings::device_driver {
                        name: name.as_char_ptr(),
                        owner: core::ptr::addr_of!(kernel::bindings::__this_module).cast_mut(),
                        mod_name: name.as_char_ptr(),
                        ..Default::default()
                    },
                    ..Default::default()
                }),
                parent: Opaque::new(bindings::mdev_parent::default()),
                types: slots,
                type_ptrs,
                names,
            }? Error),
            GFP_KERNEL,
        )?;
        // SAFETY: `raw` is pinned and not shared yet; the type slots stay
        // where they are (the vector is not grown again).
        let r = unsafe { raw.as_mut().get_unchecked_mut() };
        for t in r.types.iter() {
            r.type_ptrs.push(t.get(), GFP_KERNEL)?;
        }
        Ok(raw)
    }

    /// Registers the parent, with its types, on `dev`.
    fn register_parent(&self, dev: &ParentDevice) -> Result {
        let nr = c_uint::try_from(self.type_ptrs.len())?;
        // SAFETY: the parent, the driver and the type array are pinned and
        // outlive the registration (`Parent`'s invariant); the device is
        // live while the `Parent` holds it.
        kernel::error::to_result(unsafe {
            bindings::mdev_register_parent(
                self.parent.get(),
                dev.dev.as_ptr(),
                self.driver.get(),
                self.type_ptrs.as_ptr().cast_mut(),
                nr,
            )
        })
    }
}

impl<T: Driver> Parent<T> {
    /// Registers the mdev driver `name`, a device of that name in `class`
    /// (registered here) and the parent on it, with the types `names`.
    pub(crate) fn new(
        name: &'static CStr,
        class: &'static Class,
        names: KVec<TypeName>,
    ) -> Result<Self> {
        let raw = Raw::new::<T>(name, names)?;
        // SAFETY: the driver is pinned and outlives its registration.
        kernel::error::to_result(unsafe { bindings::mdev_register_driver(raw.driver.get()) })?;
        let dev = ParentDevice::new(name, class).and_then(|dev| {
            raw.register_parent(&dev)?;
            Ok(dev)
        });
        match dev {
            // INVARIANT: the driver and the parent are registered.
            Ok(dev) => Ok(Self {
                raw,
                dev: Some(dev),
                _t: PhantomData,
            }),
            Err(e) => {
                // SAFETY: registered above, with no parent left.
                unsafe { bindings::mdev_unregister_driver(raw.driver.get()) };
                Err(e)
            }
        }
    }
}

impl<T: Driver> Drop for Parent<T> {
    fn drop(&mut self) {
        // SAFETY: registered (type invariant): this removes every mdev of
        // the parent first.
        unsafe { bindings::mdev_unregister_parent(self.raw.parent.get()) };
        // The parent device and its class go after the parent.
        drop(self.dev.take());
        // SAFETY: registered (type invariant); no mdev is left.
        unsafe { bindings::mdev_unregister_driver(self.raw.driver.get()) };
    }
}

/// The parent's index of an mdev's type.
///
/// # Safety
///
/// `mdev` is a live mdev of a parent of `T` (its type is one of the
/// parent's, whose `types` are in one array).
unsafe fn type_index(mtype: *mut bindings::mdev_type) -> usize {
    // SAFETY: `mtype` points into the parent's type array (the contract),
    // whose first element the parent records.
    unsafe {
        let parent = (*mtype).parent;
        let first = *(*parent).types;
        mtype.offset_from(first) as usize
    }
}

/// `probe` of the C ops table.
///
/// # Safety
///
/// mdev calls it on an mdev or a type of a parent of `T`, with pointers
/// valid for the call.
unsafe extern "C" fn probe_callback<T: Driver>(mdev: *mut bindings::mdev_device) -> c_int {
    // SAFETY: mdev probes a live mdev of this driver's parent.
    let (dev, index) = unsafe {
        (
            device::Device::from_raw(&raw mut (*mdev).dev),
            type_index((*mdev).type_),
        )
    };
    match T::probe(dev, index) {
        Ok(d) => {
            // SAFETY: the device is live; its driver data is ours until
            // `remove_callback` takes it back.
            unsafe {
                kernel::bindings::dev_set_drvdata(&raw mut (*mdev).dev, d.into_foreign().cast())
            };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// `remove` of the C ops table.
///
/// # Safety
///
/// mdev calls it on an mdev or a type of a parent of `T`, with pointers
/// valid for the call.
unsafe extern "C" fn remove_callback<T: Driver>(mdev: *mut bindings::mdev_device) {
    // SAFETY: mdev removes a live mdev `probe_callback` succeeded on, once.
    let p = unsafe { kernel::bindings::dev_get_drvdata(&raw mut (*mdev).dev) };
    // SAFETY: `p` came from `into_foreign()` in `probe_callback`.
    drop(unsafe { <Pin<KBox<T::Device>> as ForeignOwnable>::from_foreign(p.cast()) });
}

/// `available` of the C ops table.
///
/// # Safety
///
/// mdev calls it on an mdev or a type of a parent of `T`, with pointers
/// valid for the call.
unsafe extern "C" fn available_callback<T: Driver>(mtype: *mut bindings::mdev_type) -> c_uint {
    // SAFETY: mdev asks about one of this parent's types.
    T::available(unsafe { type_index(mtype) })
}

/// `description` of the C ops table.
///
/// # Safety
///
/// mdev calls it on an mdev or a type of a parent of `T`, with pointers
/// valid for the call.
unsafe extern "C" fn description_callback<T: Driver>(
    mtype: *mut bindings::mdev_type,
    buf: *mut c_char,
) -> isize {
    // SAFETY: mdev asks about one of this parent's types.
    let d = T::description(unsafe { type_index(mtype) });
    // sysfs gives a page.
    let n = d.len().min(kernel::page::PAGE_SIZE - 2);
    // SAFETY: `buf` is a sysfs page, which `n + 1` bytes fit.
    unsafe {
        core::ptr::copy_nonoverlapping(d.as_ptr(), buf.cast::<u8>(), n);
        *buf.add(n) = b'\n';
    }
    (n + 1) as isize
}

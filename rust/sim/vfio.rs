// SPDX-License-Identifier: GPL-2.0

//! A sim vGPU as a VFIO device ([`SimVdev`], a [`vfio::driver::Driver`]):
//! its regions (PCI config space and BAR0), its interrupts (INTx, MSI and
//! the device request, as eventfds) and the work items of its command
//! streamer and synthetic workload. Every decision is the vGPU's
//! ([`Shared`]); this file moves bytes between the VFIO user and it.
//!
//! Locking: [`SimVdev::irqs`] is a spinlock, because the command streamer
//! raises interrupts with the vGPU lock held; an eventfd is put after it is
//! dropped.

use kernel::{
    new_spinlock,
    prelude::*,
    str::CStr,
    sync::{LockClassKey, SpinLock},
    types::Opaque,
    uaccess::{UserPtr, UserSlice, UserSliceReader, UserSliceWriter},
};

use super::{
    device::Shared,
    vdev::{queue_workload, raise_irq, Irqs, Vdev},
    vgpu::{self, Vgpu},
};
use crate::{
    log::dev_ratelimited,
    migration::vfio::{Front, Ops, Registered as _},
    vfio::{
        self, bindings as b,
        driver::{RegionInfo, Registered},
        eventfd::EventFd,
    },
};

/// Where region `i` starts in the device fd: index in the top bits, as
/// vfio-pci does.
const OFFSET_SHIFT: u32 = 40;
const OFFSET_MASK: u64 = (1 << OFFSET_SHIFT) - 1;

/// A sim mdev's VFIO device: the vGPU and what connects it to the user.
///
/// The fields are initialised in this order and `vgpu` last: [`Vdev`]
/// reaches the others from the vGPU's creation on.
#[pin_data(PinnedDrop)]
pub(crate) struct SimVdev {
    #[pin]
    irqs: SpinLock<Irqs>,
    /// The command streamer's work item.
    #[pin]
    exec_work: Opaque<kernel::bindings::work_struct>,
    /// The synthetic workload's timer.
    #[pin]
    workload_work: Opaque<kernel::bindings::delayed_work>,
    vgpu: KBox<Vgpu>,
}

// SAFETY: the work items are only used through the workqueue API, which
// synchronises them; the rest is `Send` and `Sync`.
unsafe impl Send for SimVdev {}
// SAFETY: see `Send`.
unsafe impl Sync for SimVdev {}

impl SimVdev {
    /// The device of a new mdev of type `index`, named `name`, whose
    /// vfio_device is `dev` (not registered yet).
    pub(super) fn new<'a>(
        dev: &'a vfio::device::Device,
        index: usize,
        name: &'a CStr,
    ) -> impl PinInit<Self, Error> + 'a {
        // SAFETY: the vfio_device of a `Registered<SimVdev>`.
        let this = unsafe { Registered::<SimVdev>::data_of(dev) };
        // SAFETY: the parts of this object, which its vGPU (the handle's
        // holder) lives in; `try_pin_init!` initialises the fields in
        // order, and the vGPU last; the object cancels its work items
        // before it goes.
        let vdev = unsafe {
            Vdev::new(
                dev,
                &(*this).irqs,
                (*this).exec_work.get(),
                (*this).workload_work.get(),
            )
        };
        try_pin_init!(Self {
            irqs <- new_spinlock!(Irqs::default(), "SimVdev::irqs"),
            // SAFETY: the work items are initialised here, before anything
            // can queue them, and cancelled before they go (`drop`).
            exec_work <- unsafe { init_work(exec_callback, c"SimVdev::exec_work", kernel::static_lock_class!()) },
            // SAFETY: as above.
            workload_work <- unsafe { init_delayed_work(workload_callback, c"SimVdev::workload_work", kernel::static_lock_class!(), kernel::static_lock_class!()) },
            vgpu: vgpu::create(vdev, index, name)?,
        })
        .pin_chain(move |this| {
            // SAFETY: `dev` lives until its release destroys the front.
            let front = unsafe { Front::new(dev, this.vgpu.shared.clone()) }?;
            Shared::with_registry(|r| r.add(front))?;
            // SAFETY: not registered yet: its ops are ours; the ops find
            // the front in the sim's registry.
            unsafe {
                vfio::migration::install::<Ops<Shared>, Ops<Shared>>(dev, vfio::migration::FLAGS)
            };
            Ok(())
        })
    }

    fn shared(&self) -> &Shared {
        &self.vgpu.shared
    }

    fn raise_irq(&self) {
        raise_irq(&self.irqs);
    }

    /// Sets the eventfd of interrupt `index` (`None`: removes it).
    fn set_trigger(&self, index: u32, evt: Option<EventFd>) {
        let old = {
            let mut i = self.irqs.lock();
            match index {
                b::VFIO_PCI_INTX_IRQ_INDEX => {
                    i.intx_masked = false;
                    core::mem::replace(&mut i.intx, evt)
                }
                b::VFIO_PCI_MSI_IRQ_INDEX => core::mem::replace(&mut i.msi, evt),
                _ => core::mem::replace(&mut i.req, evt),
            }
        };
        drop(old);
    }

    /// Drops every eventfd (the device was closed).
    fn disable_irqs(&self) {
        let old = core::mem::take(&mut *self.irqs.lock());
        drop(old);
    }

    fn cancel_work(&self) {
        // SAFETY: the work items are initialised (`new`); cancelling waits
        // for a running one.
        unsafe {
            kernel::bindings::cancel_delayed_work_sync(self.workload_work.get());
            kernel::bindings::cancel_work_sync(self.exec_work.get());
        }
    }
}

#[pinned_drop]
impl PinnedDrop for SimVdev {
    fn drop(self: Pin<&mut Self>) {
        // A debugfs "start" on a device that was never opened, or work
        // queued just before close: no work item may run on the freed vGPU.
        self.cancel_work();
        if let Some(f) = Shared::with_registry(|r| r.remove(self.vgpu.shared.vdev.vfio())) {
            f.destroy();
        }
    }
}

/// Initialises a work item that runs `f`.
///
/// # Safety
///
/// The work item is cancelled before its memory goes.
unsafe fn init_work(
    f: unsafe extern "C" fn(*mut kernel::bindings::work_struct),
    name: &'static CStr,
    key: Pin<&'static LockClassKey>,
) -> impl PinInit<Opaque<kernel::bindings::work_struct>> {
    Opaque::ffi_init(move |slot| {
        // SAFETY: `slot` is the work item's memory, pinned.
        unsafe {
            kernel::bindings::init_work_with_key(
                slot,
                Some(f),
                false,
                name.as_char_ptr(),
                key.as_ptr(),
            )
        }
    })
}

/// Initialises a delayed work item that runs `f`, as `INIT_DELAYED_WORK()`:
/// its work and its timer each with their own lock class (the timer's
/// runs in softirq context, the work's in a worker).
///
/// # Safety
///
/// The work item is cancelled before its memory goes.
unsafe fn init_delayed_work(
    f: unsafe extern "C" fn(*mut kernel::bindings::work_struct),
    name: &'static CStr,
    work_key: Pin<&'static LockClassKey>,
    timer_key: Pin<&'static LockClassKey>,
) -> impl PinInit<Opaque<kernel::bindings::delayed_work>> {
    Opaque::ffi_init(move |slot: *mut kernel::bindings::delayed_work| {
        // SAFETY: `slot` is the delayed work item's memory, pinned; this is
        // what `INIT_DELAYED_WORK()` does.
        unsafe {
            kernel::bindings::init_work_with_key(
                &raw mut (*slot).work,
                Some(f),
                false,
                name.as_char_ptr(),
                work_key.as_ptr(),
            );
            kernel::bindings::timer_init_key(
                &raw mut (*slot).timer,
                Some(kernel::bindings::delayed_work_timer_fn),
                kernel::bindings::TIMER_IRQSAFE,
                name.as_char_ptr(),
                timer_key.as_ptr(),
            );
        }
    })
}

/// The object a work item of `SimVdev` belongs to.
///
/// # Safety
///
/// `work` is the `field` work item of a live `SimVdev` (at `offset`).
unsafe fn of_work<'a>(work: *mut kernel::bindings::work_struct, offset: usize) -> &'a SimVdev {
    // SAFETY: the work item lies `offset` bytes into a live `SimVdev`.
    unsafe { &*work.byte_sub(offset).cast::<SimVdev>() }
}

/// `exec` of the C ops table.
///
/// # Safety
///
/// The workqueue calls it with the work item of a live `SimVdev`, which
/// cancels it before it goes.
unsafe extern "C" fn exec_callback(work: *mut kernel::bindings::work_struct) {
    // SAFETY: queued only as `exec_work` of a `SimVdev`, which cancels it
    // before it goes.
    let s = unsafe { of_work(work, core::mem::offset_of!(SimVdev, exec_work)) };
    s.shared().exec();
}

/// `workload` of the C ops table.
///
/// # Safety
///
/// The workqueue calls it with the work item of a live `SimVdev`, which
/// cancels it before it goes.
unsafe extern "C" fn workload_callback(work: *mut kernel::bindings::work_struct) {
    // `work` is the first member of the delayed work item.
    // SAFETY: queued only as `workload_work` of a `SimVdev`, which cancels
    // it before it goes.
    let s = unsafe { of_work(work, core::mem::offset_of!(SimVdev, workload_work)) };
    if let Some(ms) = s.shared().workload_tick() {
        queue_workload(s.workload_work.get(), ms);
    }
}

/// `VFIO_DEVICE_SET_IRQS`, the part after the header's checks.
fn set_irqs(s: &SimVdev, hdr: &b::vfio_irq_set, data: &[u8]) -> Result {
    let action = hdr.flags & b::VFIO_IRQ_SET_ACTION_TYPE_MASK;
    let none = hdr.flags & b::VFIO_IRQ_SET_DATA_NONE != 0;
    let boolean = hdr.flags & b::VFIO_IRQ_SET_DATA_BOOL != 0;
    let efd = hdr.flags & b::VFIO_IRQ_SET_DATA_EVENTFD != 0;
    let index = hdr.index;
    if !matches!(
        index,
        b::VFIO_PCI_INTX_IRQ_INDEX | b::VFIO_PCI_MSI_IRQ_INDEX | b::VFIO_PCI_REQ_IRQ_INDEX
    ) {
        return Err(ENOTTY);
    }
    if action == b::VFIO_IRQ_SET_ACTION_MASK || action == b::VFIO_IRQ_SET_ACTION_UNMASK {
        if index != b::VFIO_PCI_INTX_IRQ_INDEX || efd {
            return Err(ENOTTY); // no mask/unmask eventfds
        }
        if hdr.start != 0 || hdr.count != 1 {
            return Err(EINVAL);
        }
        if boolean && data.first() == Some(&0) {
            return Ok(());
        }
        s.irqs.lock().intx_masked = action == b::VFIO_IRQ_SET_ACTION_MASK;
        return Ok(());
    }
    // ACTION_TRIGGER
    if hdr.count == 0 && none {
        s.set_trigger(index, None);
        return Ok(());
    }
    if hdr.start != 0 || hdr.count != 1 {
        return Err(EINVAL);
    }
    if efd {
        let fd = data
            .get(..4)
            .map(|d| i32::from_ne_bytes([d[0], d[1], d[2], d[3]]))
            .ok_or(EINVAL)?;
        let evt = if fd >= 0 {
            Some(EventFd::from_fd(fd)?)
        } else {
            None
        };
        s.set_trigger(index, evt);
        return Ok(());
    }
    if index == b::VFIO_PCI_REQ_IRQ_INDEX {
        return Err(EINVAL); // only an eventfd can be the request channel
    }
    if none || (boolean && data.first().is_some_and(|&v| v != 0)) {
        s.raise_irq();
    }
    Ok(())
}

/// The device was closed or reset: a migration in progress ends
/// ([`Front::reset`]).
fn end_migration(dev: &Registered<SimVdev>) {
    if let Ok(f) = Shared::front(dev.vfio()) {
        f.reset();
    }
}

/// `VFIO_DEVICE_GET_INFO`: a PCI device that can be reset.
fn get_info(arg: usize) -> Result<isize> {
    // argsz, flags, num_regions, num_irqs
    let [argsz, ..] = read_words::<4>(arg)?;
    if argsz < 16 {
        return Err(EINVAL);
    }
    let flags = b::VFIO_DEVICE_FLAGS_PCI | b::VFIO_DEVICE_FLAGS_RESET;
    write_words(
        arg,
        &[argsz, flags, b::VFIO_PCI_NUM_REGIONS, b::VFIO_PCI_NUM_IRQS],
    )?;
    Ok(0)
}

/// `VFIO_DEVICE_GET_IRQ_INFO`: INTx (maskable, automasked), MSI and the
/// device request, one eventfd each.
fn get_irq_info(arg: usize) -> Result<isize> {
    // argsz, flags, index, count
    let [argsz, _, index, _] = read_words::<4>(arg)?;
    if argsz < 16 || index >= b::VFIO_PCI_NUM_IRQS {
        return Err(EINVAL);
    }
    let (flags, count) = match index {
        b::VFIO_PCI_INTX_IRQ_INDEX => (
            b::VFIO_IRQ_INFO_EVENTFD | b::VFIO_IRQ_INFO_MASKABLE | b::VFIO_IRQ_INFO_AUTOMASKED,
            1,
        ),
        b::VFIO_PCI_MSI_IRQ_INDEX | b::VFIO_PCI_REQ_IRQ_INDEX => {
            (b::VFIO_IRQ_INFO_EVENTFD | b::VFIO_IRQ_INFO_NORESIZE, 1)
        }
        _ => (0, 0),
    };
    write_words(arg, &[argsz, flags, index, count])?;
    Ok(0)
}

/// `VFIO_DEVICE_SET_IRQS`: the header checked by the VFIO core's
/// `vfio_set_irqs_validate_and_prepare()`, then its data read and applied.
fn set_irqs_ioctl(dev: &SimVdev, arg: usize) -> Result<isize> {
    // argsz, flags, index, start, count
    let [argsz, flags, index, start, count] = read_words::<5>(arg)?;
    let mut hdr = b::vfio_irq_set {
        argsz,
        flags,
        index,
        start,
        count,
        ..Default::default()
    };
    let mut size = 0usize;
    let n = b::VFIO_PCI_NUM_IRQS as c_int;
    // SAFETY: `hdr` and `size` are valid for the call.
    kernel::error::to_result(unsafe {
        b::vfio_set_irqs_validate_and_prepare(&mut hdr, n, n, &mut size)
    })?;
    let mut data = KVec::from_elem(0u8, size, GFP_KERNEL_ACCOUNT)?;
    if size > 0 {
        UserSlice::new(UserPtr::from_addr(arg.saturating_add(20)), size)
            .reader()
            .read_slice(&mut data)?;
    }
    set_irqs(dev, &hdr, &data)?;
    Ok(0)
}

/// Reads `N` u32s, the start of a uAPI struct, from `arg`.
fn read_words<const N: usize>(arg: usize) -> Result<[u32; N]> {
    let mut bytes = [[0u8; 4]; N];
    let mut r = UserSlice::new(UserPtr::from_addr(arg), 4 * N).reader();
    for w in bytes.iter_mut() {
        r.read_slice(w)?;
    }
    Ok(bytes.map(u32::from_ne_bytes))
}

/// Writes `words` back to the start of the uAPI struct at `arg`.
fn write_words(arg: usize, words: &[u32]) -> Result {
    let mut w = UserSlice::new(UserPtr::from_addr(arg), 4 * words.len()).writer();
    for v in words {
        w.write_slice(&v.to_ne_bytes())?;
    }
    Ok(())
}

#[vtable]
impl vfio::driver::Driver for SimVdev {
    const NAME: &'static CStr = c"vfio-gmig";

    fn open(dev: &Registered<Self>) -> Result {
        dev.shared().open();
        Ok(())
    }

    /// A client may close the device in the middle of a migration: end
    /// it, so that the next open finds a RUNNING device and stale data fds
    /// only get -ENODEV. Then the workload and the streamer stop.
    fn close(dev: &Registered<Self>) {
        end_migration(dev);
        dev.shared().close();
        dev.cancel_work();
        dev.disable_irqs();
    }

    fn read(dev: &Registered<Self>, mut buf: UserSliceWriter, pos: &mut i64) -> Result<usize> {
        let len = buf.len();
        rw(dev, len, pos, |data| buf.write_slice(data), false)
    }

    fn write(dev: &Registered<Self>, mut buf: UserSliceReader, pos: &mut i64) -> Result<usize> {
        let len = buf.len();
        rw(dev, len, pos, |data| buf.read_slice(data), true)
    }

    fn ioctl(dev: &Registered<Self>, cmd: u32, arg: usize) -> Result<isize> {
        match cmd {
            b::VFIO_DEVICE_GET_INFO => get_info(arg),
            b::VFIO_DEVICE_GET_IRQ_INFO => get_irq_info(arg),
            b::VFIO_DEVICE_SET_IRQS => set_irqs_ioctl(dev, arg),
            b::VFIO_DEVICE_RESET => {
                end_migration(dev);
                dev.shared().reset();
                Ok(0)
            }
            _ => Err(ENOTTY),
        }
    }

    fn region_info(dev: &Registered<Self>, index: u32) -> Result<RegionInfo> {
        if index >= b::VFIO_PCI_NUM_REGIONS {
            return Err(EINVAL);
        }
        let size = dev.shared().region_size(index);
        Ok(RegionInfo {
            offset: u64::from(index) << OFFSET_SHIFT,
            size,
            flags: if size != 0 {
                b::VFIO_REGION_INFO_FLAG_READ | b::VFIO_REGION_INFO_FLAG_WRITE
            } else {
                0
            },
        })
    }

    /// A DMA mapping went away: returns once no page of it is pinned by
    /// this vGPU (the in-place hashing's runs); the streamer's next access
    /// to it faults. The vGPU lock is not taken: type1 calls this with its
    /// device list lock held, and the streamer and the hashing hold the
    /// vGPU lock across `vfio_dma_rw()` and `vfio_pin_pages()`, which take
    /// type1's iommu lock (a three-lock cycle). A scan's pinned run is
    /// unpinned under the vGPU lock; this waits for it on the run's own
    /// spinlock (`PinWindow`).
    fn dma_unmap(dev: &Registered<Self>, iova: u64, length: u64) {
        dev.shared().pins.unmap(iova, length);
    }

    /// The vGPU is being removed while a VFIO user has it open: ask the
    /// user to release it through the request eventfd (QEMU unplugs the
    /// device), as vfio-pci does. Removal waits until the user closes it.
    fn request(dev: &Registered<Self>, count: u32) {
        let i = dev.irqs.lock();
        if let Some(req) = i.req.as_ref() {
            if count % 10 == 0 {
                dev_ratelimited!(
                    dev_notice,
                    dev.vfio().dev(),
                    "relaying device request to user (#{})\n",
                    count
                );
            }
            req.signal();
        } else if count == 0 {
            dev_notice!(
                dev.vfio().dev(),
                "no device request channel registered, blocked until released by user\n"
            );
        }
    }
}

/// read() or write() of the device fd: config space in accesses of up to
/// 4 bytes, BAR0 of up to 8, each naturally aligned; `copy` moves one
/// access's bytes to or from the user.
fn rw(
    dev: &Registered<SimVdev>,
    count: usize,
    pos: &mut i64,
    mut copy: impl FnMut(&mut [u8]) -> Result,
    write: bool,
) -> Result<usize> {
    let at = u64::try_from(*pos).map_err(|_| EINVAL)?;
    let index = u32::try_from(at >> OFFSET_SHIFT).map_err(|_| EINVAL)?;
    let off = at & OFFSET_MASK;
    let mut done = 0usize;
    while done < count {
        let mut len = if index == b::VFIO_PCI_CONFIG_REGION_INDEX {
            4
        } else {
            8
        };
        while len > count - done || (off + done as u64) % len as u64 != 0 {
            len /= 2;
        }
        let mut val = [0u8; 8];
        if write {
            copy(&mut val[..len])?;
        }
        if let Err(e) = dev
            .shared()
            .region_rw(index, off + done as u64, &mut val[..len], write)
        {
            if done > 0 {
                break;
            }
            return Err(e);
        }
        if !write {
            copy(&mut val[..len])?;
        }
        done += len;
    }
    *pos += done as i64;
    Ok(done)
}

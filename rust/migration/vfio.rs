// SPDX-License-Identifier: GPL-2.0

//! The VFIO face of a migratable vGPU: the uAPI state machine, the data fds
//! and DMA logging, over the migration layer's functions, on the
//! abstractions of [`crate::vfio`].
//!
//! What each arc does to the vGPU, what goes into the stream and which
//! pages are dirty is decided there; this file owns the data fds and their
//! life cycle:
//!
//! - A data fd reaches its device only while it is enabled. The device's
//!   close, its reset and the arcs that end a migration disable it under
//!   its lock, so a data fd that outlives the device (a client that closes
//!   the device mid-migration and opens it again) only ever gets -ENODEV.
//! - Lock order: [`Front`]'s state, then a data fd's link, then the vGPU
//!   lock. read() and write() take the link only; an arc takes the saving
//!   fd's link around its part, so that it never moves the stream between
//!   the bytes a read() was handed and those it consumes.
//! - What a VMM makes the kernel allocate (the bounce buffers here, the
//!   images, the incoming stream and the dirty tracker) is charged to its
//!   memory cgroup (`GFP_KERNEL_ACCOUNT`).
//!
//! The same code serves the sim's mdevs and GVT-g's vGPUs (whose
//! vfio_device is kvmgt's). Each provider keeps its fronts in a
//! [`Registry`], where the ops find them from the vfio_device.

use core::ptr::NonNull;

use kernel::{
    alloc::flags::GFP_KERNEL_ACCOUNT,
    fs::File,
    iov::{IovIterDest, IovIterSource},
    new_mutex,
    prelude::*,
    sync::{aref::ARef, Arc, ArcBorrow, Mutex},
};

use super::{self as migration, MigDevice};
use crate::{
    gmig_core::vfio::{arc_fds, ArcFds, DeviceState},
    log::dev_ratelimited,
    vfio::{
        self,
        file::{DataFileOps, Direction},
        migration::{IovaBitmap, LogOps, LogRanges, MigrationOps, PrecopyInfo},
    },
};

/// The most IOVA ranges a `DMA_LOGGING_START` may ask for (QEMU asks for
/// three at most).
const MAX_LOG_RANGES: u32 = 16;

/// The bounce buffer of a data fd's read() or write(), at most.
const CHUNK: usize = 64 * 1024;

/// The migration state of one vfio_device.
#[pin_data]
pub(crate) struct Front<D: MigDevice + 'static> {
    /// The vfio_device.
    ///
    /// # Invariants
    ///
    /// Live while the front is in its provider's [`Registry`]: the provider
    /// removes it (and calls [`Front::destroy`]) before the device goes.
    vdev: NonNull<vfio::device::Device>,
    /// The vGPU behind it.
    pub(crate) d: Arc<D>,
    #[pin]
    state: Mutex<State<D>>,
}

// SAFETY: `vdev` is a `Sync` and `Send` object used only while it lives
// (the field's invariant); the rest is `Send`/`Sync` as `D` is.
unsafe impl<D: MigDevice + Send> Send for Front<D> {}
// SAFETY: as for `Send`.
unsafe impl<D: MigDevice + Send> Sync for Front<D> {}

struct State<D: MigDevice + 'static> {
    now: DeviceState,
    saving: Option<OpenFd<D>>,
    resuming: Option<OpenFd<D>>,
}

/// A data fd the device holds a reference to.
struct OpenFd<D: MigDevice + 'static> {
    file: ARef<File>,
    fd: Arc<DataFd<D>>,
}

/// The device's side of a data fd.
#[pin_data]
pub(crate) struct DataFd<D: MigDevice + 'static> {
    /// The front, while the fd is enabled.
    #[pin]
    link: Mutex<Option<Arc<Front<D>>>>,
}

impl<D: MigDevice + 'static> DataFd<D> {
    fn disable(&self) {
        // The front's reference goes here; the fd's own reference to this
        // object stays until the fd is released.
        drop(self.link.lock().take());
    }
}

impl<D: MigDevice + 'static> Front<D> {
    /// Whether this is the front of `vdev` (compares addresses only).
    fn is_of(&self, vdev: &vfio::device::Device) -> bool {
        core::ptr::eq(self.vdev.as_ptr(), vdev)
    }
}

impl<D: MigDevice + Send + 'static> Front<D> {
    /// The front of `vdev`, over `d`.
    ///
    /// # Safety
    ///
    /// `vdev` stays live until [`Front::destroy`] is called.
    pub(crate) unsafe fn new(vdev: &vfio::device::Device, d: Arc<D>) -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Self {
                vdev: NonNull::from(vdev),
                d,
                state <- new_mutex!(
                    State {
                        now: DeviceState::Running,
                        saving: None,
                        resuming: None,
                    },
                    "Front::state"
                ),
            }),
            GFP_KERNEL,
        )
    }

    /// The vfio_device.
    pub(crate) fn vdev(&self) -> &vfio::device::Device {
        // SAFETY: the device is live while the front is in use (the
        // field's invariant).
        unsafe { self.vdev.as_ref() }
    }

    /// One arc of the state machine: the migration layer does the vGPU's
    /// part; this opens the data fd of the arcs that open one.
    fn step(this: &Arc<Self>, st: &mut State<D>, next: DeviceState) -> Result<Option<ARef<File>>> {
        let fds = arc_fds(st.now, next);
        let dir = match fds {
            ArcFds::NewSaving => Some(Direction::Saving),
            ArcFds::NewResuming => Some(Direction::Resuming),
            _ => None,
        };
        let new = match dir {
            Some(dir) => {
                let fd = Arc::pin_init(
                    pin_init!(DataFd {
                        link <- new_mutex!(Some(this.clone()), "DataFd::link"),
                    }),
                    GFP_KERNEL_ACCOUNT,
                )?;
                let file = vfio::file::open(fd.clone(), dir)?;
                Some(OpenFd { file, fd })
            }
            None => None,
        };

        // A read() in progress ends first (see `DataFd::read`).
        let link = st.saving.as_ref().map(|s| s.fd.link.lock());
        let res = migration::arc(&*this.d, st.now, next);
        drop(link);
        if let Err(e) = res {
            if let Some(n) = new {
                n.fd.disable();
            }
            return Err(e);
        }

        // Arcs that end the data phase close the device's side of the fds.
        if fds == ArcFds::EndData {
            Self::disable_files(st);
        }
        let Some(n) = new else {
            return Ok(None);
        };
        let file = n.file.clone();
        match dir {
            Some(Direction::Saving) => st.saving = Some(n),
            _ => st.resuming = Some(n),
        }
        Ok(Some(file))
    }

    fn disable_files(st: &mut State<D>) {
        for slot in [&mut st.saving, &mut st.resuming] {
            if let Some(open) = slot.take() {
                open.fd.disable();
            }
        }
    }

    fn set_state(this: &Arc<Self>, new: DeviceState) -> Result<Option<ARef<File>>> {
        let mut st = this.state.lock();
        let mut res = Ok(None);
        while st.now != new {
            let next = match vfio::migration::next_state(this.vdev(), st.now, new) {
                Ok(n) => n,
                Err(e) => {
                    res = Err(e);
                    break;
                }
            };
            match Self::step(this, &mut st, next) {
                Ok(file) => {
                    st.now = next;
                    // Only the last arc of a walk may open a data fd.
                    if file.is_some() && next != new {
                        res = Err(EINVAL);
                        break;
                    }
                    res = Ok(file);
                }
                Err(e) => {
                    res = Err(e);
                    break;
                }
            }
        }
        if let Err(e) = &res {
            dev_ratelimited!(
                dev_err,
                this.vdev().dev(),
                "migration state {} -> {} failed: {}\n",
                st.now as u32,
                new as u32,
                e.to_errno()
            );
        }
        res
    }

    /// The VFIO user closed or reset the device: a migration in progress
    /// ends, so that the next open finds a RUNNING device and stale data
    /// fds only get -ENODEV; the vGPU resumes. Dirty logging stops too:
    /// the next VM's GGTT writes and pins must not feed a log nobody reads
    /// (a VMM that goes on migrating after a reset gets -EINVAL from its
    /// next report, and the migration fails rather than missing a page).
    pub(crate) fn reset(&self) {
        let mut st = self.state.lock();
        Self::disable_files(&mut st);
        st.now = DeviceState::Running;
        migration::abort(&*self.d);
        migration::log_stop(&*self.d);
    }

    /// The vfio_device is going away: no op runs any more, and data fds
    /// get -ENODEV from now on.
    pub(crate) fn destroy(&self) {
        Self::disable_files(&mut self.state.lock());
    }
}

impl<D: MigDevice + Send + 'static> DataFd<D> {
    /// One chunk of a read(): the stream hands out up to `buf.len()` bytes
    /// without consuming them, they are copied to the reader outside the
    /// vGPU lock (a fault may take mmap_lock), and only the bytes the
    /// reader got are consumed. A reader whose buffer faults part way gets
    /// a short read, or -EFAULT if nothing was copied; the rest stays in
    /// the stream.
    fn read_chunk(d: &D, buf: &mut [u8], dst: &mut IovIterDest<'_>) -> Result<usize> {
        let mut at = 0;
        let ret = migration::mig_read(d, buf, &mut at);
        let n = match usize::try_from(ret) {
            Ok(n) => n,
            Err(_) => return Err(Error::from_errno(ret as i32)),
        };
        if n == 0 {
            return Ok(0);
        }
        let got = dst.copy_to_iter(&buf[..n]);
        migration::mig_read_commit(d, at, got)?;
        if got == 0 {
            return Err(EFAULT);
        }
        Ok(got)
    }

    /// read() of the saving fd and write() of the resuming fd: the data
    /// goes through a kernel bounce buffer in chunks. A short chunk ends
    /// the loop (nothing more now, the end of the stream, or a fault).
    fn xfer(
        &self,
        len: usize,
        mut chunk: impl FnMut(&D, &mut [u8]) -> Result<usize>,
    ) -> Result<usize> {
        if len == 0 {
            return Ok(0);
        }
        let mut buf = KVVec::from_elem(0u8, len.min(CHUNK), GFP_KERNEL_ACCOUNT)?;
        let link = self.link.lock();
        let mut done = 0;
        let mut res = Ok(0);
        while done < len {
            let n = (len - done).min(CHUNK);
            let Some(front) = link.as_ref() else {
                res = Err(ENODEV);
                break;
            };
            match chunk(&front.d, &mut buf[..n]) {
                Ok(0) => break,
                Ok(got) => {
                    done += got;
                    if got < n {
                        break;
                    }
                }
                Err(e) => {
                    res = Err(e);
                    break;
                }
            }
        }
        drop(link);
        if done > 0 {
            Ok(done)
        } else {
            res
        }
    }
}

impl<D: MigDevice + Send + 'static> DataFileOps for DataFd<D> {
    fn read(this: ArcBorrow<'_, Self>, dst: &mut IovIterDest<'_>) -> Result<usize> {
        this.xfer(dst.len(), |d, buf| Self::read_chunk(d, buf, dst))
    }

    fn write(this: ArcBorrow<'_, Self>, src: &mut IovIterSource<'_>) -> Result<usize> {
        this.xfer(src.len(), |d, buf| {
            let got = src.copy_from_iter(buf);
            if got < buf.len() {
                return Err(EFAULT);
            }
            let ret = migration::mig_write(d, buf);
            usize::try_from(ret).map_err(|_| Error::from_errno(ret as i32))
        })
    }

    fn ioctl(this: ArcBorrow<'_, Self>, cmd: u32, arg: usize) -> Result<isize> {
        let link = this.link.lock();
        let front = link.as_ref().ok_or(ENODEV)?;
        PrecopyInfo::ioctl(front.vdev(), cmd, arg, |v2| {
            let info = migration::precopy_info(&*front.d, v2)?;
            Ok(PrecopyInfo {
                initial_bytes: info.initial,
                dirty_bytes: 0,
                reinit: info.reinit,
            })
        })
    }
}

/// The fronts of one provider's devices, found by their vfio_device.
///
/// A provider has at most a few dozen vGPUs (GVT-g: 7 a GPU; the sim: its
/// types' instances), so a short list does.
pub(crate) struct Registry<D: MigDevice + 'static> {
    list: KVec<Arc<Front<D>>>,
}

impl<D: MigDevice + 'static> Registry<D> {
    /// An empty registry.
    pub(crate) const fn new() -> Self {
        Self { list: KVec::new() }
    }

    /// Adds `front`, for its vfio_device.
    pub(crate) fn add(&mut self, front: Arc<Front<D>>) -> Result {
        self.list.push(front, GFP_KERNEL)?;
        Ok(())
    }

    /// Removes the front of `vdev`.
    pub(crate) fn remove(&mut self, vdev: &vfio::device::Device) -> Option<Arc<Front<D>>> {
        let i = self.list.iter().position(|f| f.is_of(vdev))?;
        let front = self.list.remove(i).ok();
        if self.list.is_empty() {
            // The registry is a static, never dropped: an empty one holds
            // no memory (kmemleak would report it after unload).
            self.list = KVec::new();
        }
        front
    }

    /// The front of `vdev`.
    pub(crate) fn get(&self, vdev: &vfio::device::Device) -> Option<Arc<Front<D>>> {
        self.list.iter().find(|f| f.is_of(vdev)).cloned()
    }
}

/// A provider's device type whose fronts are in a [`Registry`].
pub(crate) trait Registered: MigDevice + Send + Sized + 'static {
    /// Runs `f` on the provider's registry, locked.
    fn with_registry<R>(f: impl FnOnce(&mut Registry<Self>) -> R) -> R;

    /// The front of `vdev`, or -ENODEV.
    fn front(vdev: &vfio::device::Device) -> Result<Arc<Front<Self>>> {
        Self::with_registry(|r| r.get(vdev)).ok_or(ENODEV)
    }
}

/// The migration and DMA logging ops of the devices of `D`.
pub(crate) struct Ops<D>(core::marker::PhantomData<D>);

impl<D: Registered> MigrationOps for Ops<D> {
    fn set_state(dev: &vfio::device::Device, state: DeviceState) -> Result<Option<ARef<File>>> {
        Front::set_state(&D::front(dev)?, state)
    }

    fn get_state(dev: &vfio::device::Device) -> Result<DeviceState> {
        Ok(D::front(dev)?.state.lock().now)
    }

    fn data_size(dev: &vfio::device::Device) -> Result<usize> {
        Ok(migration::data_size(&*D::front(dev)?.d))
    }
}

impl<D: Registered> LogOps for Ops<D> {
    fn start(dev: &vfio::device::Device, ranges: &LogRanges<'_>) -> Result<u64> {
        let front = D::front(dev)?;
        if ranges.count() == 0 || ranges.count() > MAX_LOG_RANGES {
            return Err(E2BIG);
        }
        let mut r = KVec::with_capacity(2 * ranges.count() as usize, GFP_KERNEL_ACCOUNT)?;
        for (first, last) in ranges.iter().take(ranges.count() as usize) {
            r.push(first, GFP_KERNEL_ACCOUNT)?;
            r.push(last, GFP_KERNEL_ACCOUNT)?;
        }
        migration::log_start(&*front.d, &r)?;
        Ok(kernel::page::PAGE_SIZE as u64)
    }

    fn stop(dev: &vfio::device::Device) -> Result {
        migration::log_stop(&*D::front(dev)?.d);
        Ok(())
    }

    fn read_and_clear(
        dev: &vfio::device::Device,
        iova: u64,
        length: u64,
        dirty: &mut IovaBitmap,
    ) -> Result {
        migration::log_report(&*D::front(dev)?.d, iova, length, dirty)
    }
}

// SPDX-License-Identifier: GPL-2.0

//! The data fd of a VFIO migration: an anonymous-inode stream file whose
//! read() (saving) or write() (resuming) moves the device state.
//!
//! The file's operations get the caller's buffer as a kernel
//! [`IovIterDest`] or [`IovIterSource`]: they can only move bytes the
//! caller got or gave, and only as many as it asked for.

use core::marker::PhantomData;

use kernel::{
    bindings,
    fs::File,
    iov::{IovIterDest, IovIterSource},
    prelude::*,
    sync::{aref::ARef, Arc, ArcBorrow},
    types::ForeignOwnable,
};

use super::bindings as vfio;

/// The operations of a migration data fd. The file holds an `Arc<Self>`
/// until it is released.
pub(crate) trait DataFileOps: Send + Sync + Sized + 'static {
    /// read() of a saving fd: moves at most `dst.len()` bytes of the
    /// stream to `dst`; returns how many it moved, 0 at the end.
    fn read(this: ArcBorrow<'_, Self>, dst: &mut IovIterDest<'_>) -> Result<usize>;
    /// write() of a resuming fd: takes at most `src.len()` bytes from
    /// `src`; returns how many it took.
    fn write(this: ArcBorrow<'_, Self>, src: &mut IovIterSource<'_>) -> Result<usize>;
    /// ioctl() of the fd.
    fn ioctl(this: ArcBorrow<'_, Self>, cmd: u32, arg: usize) -> Result<isize>;
}

/// Which way a data fd moves the state.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// The source's fd, read by the VMM.
    Saving,
    /// The destination's fd, written by the VMM.
    Resuming,
}

/// The file operations of data fds of `T`.
struct Fops<T>(PhantomData<T>);

impl<T: DataFileOps> Fops<T> {
    const SAVING: bindings::file_operations = bindings::file_operations {
        owner: core::ptr::addr_of!(kernel::bindings::__this_module).cast_mut(),
        read_iter: Some(read_iter_callback::<T>),
        unlocked_ioctl: Some(ioctl_callback::<T>),
        compat_ioctl: bindings::compat_ptr_ioctl,
        release: Some(release_callback::<T>),
        // SAFETY: all-zero is a valid `file_operations` (no op).
        ..unsafe { core::mem::zeroed() }
    };
    const RESUMING: bindings::file_operations = bindings::file_operations {
        owner: core::ptr::addr_of!(kernel::bindings::__this_module).cast_mut(),
        write_iter: Some(write_iter_callback::<T>),
        release: Some(release_callback::<T>),
        // SAFETY: all-zero is a valid `file_operations` (no op).
        ..unsafe { core::mem::zeroed() }
    };
}

/// Opens a data fd of `data`, moving the state `dir`: a stream
/// (`stream_open()`: pread and pwrite fail with -ESPIPE), read-only or
/// write-only.
pub(crate) fn open<T: DataFileOps>(data: Arc<T>, dir: Direction) -> Result<ARef<File>> {
    let (fops, flags): (&'static bindings::file_operations, _) = match dir {
        Direction::Saving => (&Fops::<T>::SAVING, bindings::O_RDONLY),
        Direction::Resuming => (&Fops::<T>::RESUMING, bindings::O_WRONLY),
    };
    let private = data.into_foreign();
    // SAFETY: the name is a C string and `fops` a static; the file owns
    // `private` from here on, and gives it back in `release_callback`.
    let filp = unsafe {
        vfio::anon_inode_getfile(
            c"gmig_mig".as_char_ptr(),
            fops,
            private.cast(),
            flags as c_int,
        )
    };
    if let Err(e) = kernel::error::from_err_ptr(filp) {
        // SAFETY: `private` came from `into_foreign` above and the file
        // was not made, so nothing else owns it.
        drop(unsafe { <Arc<T> as ForeignOwnable>::from_foreign(private) });
        return Err(e);
    }
    // SAFETY: `filp` is a new file, not yet visible to anyone else.
    unsafe { bindings::stream_open((*filp).f_inode, filp) };
    // SAFETY: `anon_inode_getfile()` returned the one reference to a live
    // file, which the `ARef` takes over.
    Ok(unsafe { ARef::from_raw(core::ptr::NonNull::new_unchecked(filp.cast::<File>())) })
}

/// The data of a data fd of `T`.
///
/// # Safety
///
/// `filp` is a live file opened by [`open::<T>`].
unsafe fn data<'a, T: DataFileOps>(filp: *mut bindings::file) -> ArcBorrow<'a, T> {
    // SAFETY: `private_data` is what `open` stored, owned by the file
    // until its release, which cannot run during one of its ops.
    unsafe { <Arc<T> as ForeignOwnable>::borrow((*filp).private_data.cast()) }
}

/// `read_iter_callback`.
///
/// # Safety
///
/// The VFS calls it on a live file [`open`] made, with pointers valid
/// for the call.
unsafe extern "C" fn read_iter_callback<T: DataFileOps>(
    iocb: *mut bindings::kiocb,
    to: *mut bindings::iov_iter,
) -> isize {
    // SAFETY: the VFS calls `read_iter` with a live kiocb of a file `open`
    // made, and an ITER_DEST iterator that is ours during the call.
    let (this, dst) = unsafe { (data::<T>((*iocb).ki_filp), IovIterDest::from_raw(to)) };
    match T::read(this, dst) {
        Ok(n) => isize::try_from(n).unwrap_or(isize::MAX),
        Err(e) => e.to_errno() as isize,
    }
}

/// `write_iter_callback`.
///
/// # Safety
///
/// The VFS calls it on a live file [`open`] made, with pointers valid
/// for the call.
unsafe extern "C" fn write_iter_callback<T: DataFileOps>(
    iocb: *mut bindings::kiocb,
    from: *mut bindings::iov_iter,
) -> isize {
    // SAFETY: the VFS calls `write_iter` with a live kiocb of a file `open`
    // made, and an ITER_SOURCE iterator that is ours during the call.
    let (this, src) = unsafe { (data::<T>((*iocb).ki_filp), IovIterSource::from_raw(from)) };
    match T::write(this, src) {
        Ok(n) => isize::try_from(n).unwrap_or(isize::MAX),
        Err(e) => e.to_errno() as isize,
    }
}

/// `ioctl_callback`.
///
/// # Safety
///
/// The VFS calls it on a live file [`open`] made, with pointers valid
/// for the call.
unsafe extern "C" fn ioctl_callback<T: DataFileOps>(
    filp: *mut bindings::file,
    cmd: c_uint,
    arg: c_ulong,
) -> c_long {
    // SAFETY: the VFS calls `unlocked_ioctl` on a live file `open` made.
    let this = unsafe { data::<T>(filp) };
    match T::ioctl(this, cmd, arg) {
        Ok(n) => n as c_long,
        Err(e) => e.to_errno() as c_long,
    }
}

/// `release_callback`.
///
/// # Safety
///
/// The VFS calls it on a live file [`open`] made, with pointers valid
/// for the call.
unsafe extern "C" fn release_callback<T: DataFileOps>(
    _inode: *mut bindings::inode,
    filp: *mut bindings::file,
) -> c_int {
    // SAFETY: the file is being released: no op runs on it any more, and
    // the `Arc` `open` stored in it comes back exactly once.
    drop(unsafe { <Arc<T> as ForeignOwnable>::from_foreign((*filp).private_data.cast()) });
    0
}

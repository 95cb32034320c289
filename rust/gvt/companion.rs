// SPDX-License-Identifier: GPL-2.0

//! kvmgt's companion interface (patches/gvt,
//! `include/drm/intel/intel_gvt_companion.h`), bound at load.
//!
//! gmig looks the interface up with `symbol_get()`, so gmig.ko loads on
//! kernels without the patch series or without kvmgt loaded (then only the
//! sim provider runs). If it is there, gmig registers its companion ops;
//! the symbol references it holds until unload keep kvmgt loaded meanwhile
//! (rmmod kvmgt fails while gmig is loaded). kvmgt refuses ops of another
//! interface version or size at registration.
//!
//! `intel_gvt_companion_read_pinned()` (patch 0021) is optional: without
//! it gmig hashes GVT-g's guest pages through rw_gpa copies, as with
//! `hashing=copy`.

use kernel::{
    ffi::{c_int, c_uint, c_void},
    prelude::*,
    str::CStr,
    sync::SetOnce,
};

use crate::vfio::bindings as b;

pub(crate) use b::intel_vgpu as IntelVgpu;

const _: () = assert!(
    b::INTEL_GVT_COMPANION_VERSION == 1,
    "gmig implements version 1 of the GVT-g companion interface"
);

/// The most frames one [`Symbols::read_pinned`] call takes (what
/// gmig_core's page reader asks for).
pub(crate) const READ_PINNED_MAX: usize = 64;
const _: () = assert!(b::INTEL_GVT_READ_PINNED_MAX as usize >= READ_PINNED_MAX);

/// A saved workload: `struct intel_gvt_workload`, 16 dwords.
pub(crate) const WORKLOAD_WORDS: usize = 16;
const _: () = assert!(core::mem::size_of::<b::intel_gvt_workload>() == WORKLOAD_WORDS * 4);

type RegisterFn = unsafe extern "C" fn(*const b::intel_gvt_companion_ops) -> c_int;
type UnregisterFn = unsafe extern "C" fn(*const b::intel_gvt_companion_ops);
type ScheduleFn = unsafe extern "C" fn(*mut IntelVgpu);
type SaveFn = unsafe extern "C" fn(*mut IntelVgpu, b::intel_gvt_state, *mut c_void, usize) -> isize;
type RestoreFn =
    unsafe extern "C" fn(*mut IntelVgpu, b::intel_gvt_state, *const c_void, usize) -> c_int;
type RwGpaFn = unsafe extern "C" fn(*mut IntelVgpu, u64, *mut c_void, usize, bool) -> c_int;
type SaveWorkloadsFn =
    unsafe extern "C" fn(*mut IntelVgpu, *mut b::intel_gvt_workload, c_uint) -> c_int;
type ResubmitFn =
    unsafe extern "C" fn(*mut IntelVgpu, *const b::intel_gvt_workload, c_uint) -> c_int;
/// The callback [`Symbols::read_pinned`] lends each pinned page to.
pub(crate) type LendFn = unsafe extern "C" fn(*mut c_void, c_uint, *mut kernel::bindings::page);
type ReadPinnedFn =
    unsafe extern "C" fn(*mut IntelVgpu, u64, c_uint, Option<LendFn>, *mut c_void) -> c_int;

/// kvmgt's exported functions, as `symbol_get()` found them.
///
/// # Invariants
///
/// Each pointer is the address of the exported function of that name,
/// whose type is the one the interface header declares (the aliases above
/// spell them out), and the module that exports it stays loaded while the
/// reference `symbol_get()` took is held: until [`Symbols::put`].
pub(crate) struct Symbols {
    register: RegisterFn,
    unregister: UnregisterFn,
    stop: ScheduleFn,
    start: ScheduleFn,
    save: SaveFn,
    restore: RestoreFn,
    check: RestoreFn,
    rw_gpa: RwGpaFn,
    save_workloads: SaveWorkloadsFn,
    resubmit: ResubmitFn,
    read_pinned: Option<ReadPinnedFn>,
}

/// The symbols, once gmig registered with kvmgt (never unset: kvmgt cannot
/// unload before gmig, whose references keep it).
static SYMBOLS: SetOnce<Symbols> = SetOnce::new();

/// The companion interface's functions, once found.
pub(crate) fn symbols() -> Option<&'static Symbols> {
    SYMBOLS.as_ref()
}

/// Looks up `name` with `symbol_get()`.
///
/// # Safety
///
/// `F` is the type of the function `name` names.
unsafe fn get<F: Copy>(name: &CStr) -> Option<F> {
    const { assert!(core::mem::size_of::<F>() == core::mem::size_of::<*mut c_void>()) };
    // SAFETY: `name` is a C string.
    let p = unsafe { b::__symbol_get(name.as_char_ptr()) };
    // SAFETY: a non-NULL result is the function's address (`F`, the
    // caller's contract), a pointer-sized value.
    (!p.is_null()).then(|| unsafe { core::mem::transmute_copy::<*mut c_void, F>(&p) })
}

/// The symbols gmig needs, by name.
const NAMES: [&CStr; 11] = [
    c"intel_gvt_register_companion",
    c"intel_gvt_unregister_companion",
    c"intel_gvt_companion_stop_schedule",
    c"intel_gvt_companion_start_schedule",
    c"intel_gvt_companion_save_state",
    c"intel_gvt_companion_restore_state",
    c"intel_gvt_companion_check_state",
    c"intel_gvt_companion_rw_gpa",
    c"intel_gvt_companion_save_workloads",
    c"intel_gvt_companion_resubmit_workloads",
    c"intel_gvt_companion_read_pinned",
];

/// Drops the references `symbol_get()` took on the symbols in `got`.
fn put(got: &[bool; 11]) {
    for (name, _) in NAMES.iter().zip(got).filter(|(_, g)| **g) {
        // SAFETY: `symbol_get()` took a reference on this symbol.
        unsafe { b::__symbol_put(name.as_char_ptr()) };
    }
}

impl Symbols {
    /// Finds kvmgt's interface: `None` (every reference dropped again) if
    /// one of its required functions is missing.
    fn find() -> Option<Self> {
        // SAFETY: each `get` names a function of the header, with its type.
        let s = unsafe {
            (
                get::<RegisterFn>(NAMES[0]),
                get::<UnregisterFn>(NAMES[1]),
                get::<ScheduleFn>(NAMES[2]),
                get::<ScheduleFn>(NAMES[3]),
                get::<SaveFn>(NAMES[4]),
                get::<RestoreFn>(NAMES[5]),
                get::<RestoreFn>(NAMES[6]),
                get::<RwGpaFn>(NAMES[7]),
                get::<SaveWorkloadsFn>(NAMES[8]),
                get::<ResubmitFn>(NAMES[9]),
                get::<ReadPinnedFn>(NAMES[10]),
            )
        };
        let got = [
            s.0.is_some(),
            s.1.is_some(),
            s.2.is_some(),
            s.3.is_some(),
            s.4.is_some(),
            s.5.is_some(),
            s.6.is_some(),
            s.7.is_some(),
            s.8.is_some(),
            s.9.is_some(),
            s.10.is_some(),
        ];
        let found = (|| {
            // INVARIANT: found by name, with the header's types; the
            // references are held until `put`.
            Some(Self {
                register: s.0?,
                unregister: s.1?,
                stop: s.2?,
                start: s.3?,
                save: s.4?,
                restore: s.5?,
                check: s.6?,
                rw_gpa: s.7?,
                save_workloads: s.8?,
                resubmit: s.9?,
                read_pinned: s.10,
            })
        })();
        if found.is_none() {
            put(&got);
        }
        found
    }

    /// Drops the references on the symbols.
    fn put(&self) {
        let mut got = [true; 11];
        got[10] = self.read_pinned.is_some();
        put(&got);
    }

    /// Stops scheduling the vGPU's workloads
    /// (`intel_gvt_companion_stop_schedule()`).
    ///
    /// # Safety
    ///
    /// `vgpu` is a live vGPU attached to gmig.
    pub(crate) unsafe fn stop_schedule(&self, vgpu: *mut IntelVgpu) {
        // SAFETY: the function is kvmgt's (type invariant), the vGPU live
        // (the caller's contract).
        unsafe { (self.stop)(vgpu) }
    }

    /// Resumes scheduling (`intel_gvt_companion_start_schedule()`).
    ///
    /// # Safety
    ///
    /// As [`Symbols::stop_schedule`].
    pub(crate) unsafe fn start_schedule(&self, vgpu: *mut IntelVgpu) {
        // SAFETY: as for `stop_schedule`.
        unsafe { (self.start)(vgpu) }
    }

    /// Saves state part `part` into `buf` (`size` bytes; NULL and 0 ask
    /// for its size): the bytes written or needed, or a negative errno.
    ///
    /// # Safety
    ///
    /// `vgpu` is a live vGPU attached to gmig; `buf` is NULL or valid for
    /// `size` bytes of writes.
    pub(crate) unsafe fn save_state(
        &self,
        vgpu: *mut IntelVgpu,
        part: u32,
        buf: *mut c_void,
        size: usize,
    ) -> isize {
        // SAFETY: kvmgt's function (type invariant); the rest is the
        // caller's contract.
        unsafe { (self.save)(vgpu, part, buf, size) }
    }

    /// Restores state part `part` from `buf` (`size` bytes).
    ///
    /// # Safety
    ///
    /// `vgpu` is a live vGPU attached to gmig; `buf` is valid for `size`
    /// bytes of reads.
    pub(crate) unsafe fn restore_state(
        &self,
        vgpu: *mut IntelVgpu,
        part: u32,
        buf: *const c_void,
        size: usize,
    ) -> c_int {
        // SAFETY: as for `save_state`.
        unsafe { (self.restore)(vgpu, part, buf, size) }
    }

    /// Checks that state part `part` in `buf` would restore.
    ///
    /// # Safety
    ///
    /// As [`Symbols::restore_state`].
    pub(crate) unsafe fn check_state(
        &self,
        vgpu: *mut IntelVgpu,
        part: u32,
        buf: *const c_void,
        size: usize,
    ) -> c_int {
        // SAFETY: as for `save_state`.
        unsafe { (self.check)(vgpu, part, buf, size) }
    }

    /// Reads or writes `len` bytes of guest memory at `gpa`.
    ///
    /// # Safety
    ///
    /// `vgpu` is a live vGPU attached to gmig; `buf` is valid for `len`
    /// bytes of writes (a read) or reads (a write).
    pub(crate) unsafe fn rw_gpa(
        &self,
        vgpu: *mut IntelVgpu,
        gpa: u64,
        buf: *mut c_void,
        len: usize,
        write: bool,
    ) -> c_int {
        // SAFETY: as for `save_state`.
        unsafe { (self.rw_gpa)(vgpu, gpa, buf, len, write) }
    }

    /// Saves the pending workloads into `buf` (`count` of
    /// [`WORKLOAD_WORDS`] dwords each; NULL and 0 ask how many there are).
    ///
    /// # Safety
    ///
    /// `vgpu` is a live vGPU attached to gmig; `buf` is NULL or valid for
    /// `count * WORKLOAD_WORDS` dwords of writes.
    pub(crate) unsafe fn save_workloads(
        &self,
        vgpu: *mut IntelVgpu,
        buf: *mut u32,
        count: u32,
    ) -> c_int {
        // SAFETY: as for `save_state`; `struct intel_gvt_workload` is
        // `WORKLOAD_WORDS` dwords (asserted above).
        unsafe { (self.save_workloads)(vgpu, buf.cast(), count) }
    }

    /// Resubmits `count` saved workloads from `buf`.
    ///
    /// # Safety
    ///
    /// `vgpu` is a live vGPU attached to gmig; `buf` is valid for
    /// `count * WORKLOAD_WORDS` dwords of reads.
    pub(crate) unsafe fn resubmit_workloads(
        &self,
        vgpu: *mut IntelVgpu,
        buf: *const u32,
        count: u32,
    ) -> c_int {
        // SAFETY: as for `save_workloads`.
        unsafe { (self.resubmit)(vgpu, buf.cast(), count) }
    }

    /// Whether kvmgt lends the pages it holds pinned (patch 0021).
    pub(crate) fn can_read_pinned(&self) -> bool {
        self.read_pinned.is_some()
    }

    /// Calls `f(data, index, page)`, under kvmgt's DMA cache lock, for each
    /// of the `count` (at most [`READ_PINNED_MAX`]) frames from `gfn` that
    /// kvmgt holds pinned; returns how many, or a negative errno
    /// (-EOPNOTSUPP without patch 0021).
    ///
    /// # Safety
    ///
    /// `vgpu` is a live vGPU attached to gmig; `f` may be called with
    /// `data` during the call only.
    pub(crate) unsafe fn read_pinned(
        &self,
        vgpu: *mut IntelVgpu,
        gfn: u64,
        count: u32,
        f: LendFn,
        data: *mut c_void,
    ) -> c_int {
        match self.read_pinned {
            // SAFETY: as for `save_state`.
            Some(read) => unsafe { read(vgpu, gfn, count, Some(f), data) },
            None => EOPNOTSUPP.to_errno(),
        }
    }
}

/// Registers `ops` with kvmgt: Ok with the symbols, -ENOENT if kvmgt (with
/// the companion interface) is not loaded, another error if it refused the
/// ops. Undone by [`unregister`].
pub(crate) fn register(ops: &'static b::intel_gvt_companion_ops) -> Result<&'static Symbols> {
    let found = Symbols::find().ok_or(ENOENT)?;
    if !SYMBOLS.populate(found) {
        // Registered before: once per module load.
        return Err(EBUSY);
    }
    let s = SYMBOLS.as_ref().ok_or(ENOENT)?;
    // SAFETY: kvmgt's function (invariant); `ops` is a static.
    let ret = unsafe { (s.register)(ops) };
    if ret < 0 {
        s.put();
        return Err(Error::from_errno(ret));
    }
    Ok(s)
}

/// Undoes a successful [`register`].
///
/// # Safety
///
/// `register(ops)` succeeded and this was not called since; no vGPU is
/// attached any more.
pub(crate) unsafe fn unregister(s: &Symbols, ops: &'static b::intel_gvt_companion_ops) {
    // SAFETY: registered (the caller's contract); kvmgt's function.
    unsafe { (s.unregister)(ops) };
    s.put();
}

// SPDX-License-Identifier: GPL-2.0

//! The module parameters a migration reads when it starts: its policies
//! (`precopy`, `dirty`, `rehash`, `hashing`, `final_image`) and the CPUs
//! its large re-hashes are spread over (`rehash_cpus`).

//!
//! The parameters themselves are declared in C (`shim/gmig_params.c`:
//! `module_param_cb()` is a macro that places a `struct kernel_param` in
//! the module's `__param` section); their values are checked and spelled
//! here ([`gmig_rs_param_set`]).

use kernel::{
    ffi::{c_char, c_int, c_uint},
    prelude::*,
    str::CStr,
};

use super::crew::MAX_LANES;
use crate::gmig_core::planner::{self, DirtySource, FinalImage, Hashing, Param, Policy, Rehash};

extern "C" {
    fn gmig_param_get(which: u32, buf: *mut c_char, len: usize);
    fn gmig_rehash_lanes() -> c_uint;
}

/// A value written to module parameter `which` (`enum gmig_param`): its
/// canonical spelling goes to `buf`, or -EINVAL if it is no value of the
/// parameter (the buffer is then unchanged). The one parser of the values
/// is [`Param::canonical`].
///
/// # Safety
///
/// `val` is a NUL-terminated string and `buf` is valid for writes of `cap`
/// bytes; the caller holds the module parameter lock.
#[no_mangle]
unsafe extern "C" fn gmig_rs_param_set(
    which: u32,
    val: *const c_char,
    buf: *mut c_char,
    cap: usize,
) -> c_int {
    // SAFETY: `val` is NUL-terminated (the function's contract).
    let val = unsafe { CStr::from_char_ptr(val) };
    let Some(name) = Param::from_u32(which)
        .zip(val.to_str().ok())
        .and_then(|(p, v)| p.canonical(v))
    else {
        return EINVAL.to_errno();
    };
    if name.len() >= cap {
        return EINVAL.to_errno();
    }
    // SAFETY: `buf` holds `cap > name.len()` bytes (the function's
    // contract): the name and its NUL fit, uncut.
    unsafe {
        core::ptr::copy_nonoverlapping(name.as_ptr(), buf.cast::<u8>(), name.len());
        *buf.add(name.len()) = 0;
    }
    0
}

/// Lanes a migration starting now spreads its large re-hashes over
/// (module parameter `rehash_cpus`, at most the online CPUs and
/// [`MAX_LANES`]).
pub(super) fn rehash_lanes() -> usize {
    // SAFETY: `gmig_rehash_lanes()` has no preconditions.
    let n = unsafe { gmig_rehash_lanes() };
    usize::try_from(n).unwrap_or(1).clamp(1, MAX_LANES)
}

/// A copy of a module parameter's value, taken under the parameter lock
/// (the shim's buffers hold 16 bytes, NUL included).
struct ParamValue([u8; 16]);

impl ParamValue {
    fn read(which: planner::Param) -> Self {
        let mut b = [0u8; 16];
        // SAFETY: `b` is valid for writes of `b.len()` bytes, all the shim
        // writes (it NUL-terminates within them).
        unsafe { gmig_param_get(which as u32, b.as_mut_ptr().cast(), b.len()) };
        Self(b)
    }

    fn as_str(&self) -> &str {
        let n = self.0.iter().position(|&c| c == 0).unwrap_or(self.0.len());
        self.0
            .get(..n)
            .and_then(|v| core::str::from_utf8(v).ok())
            .unwrap_or("")
    }
}

/// The policies of this migration, from the module parameters.
pub(super) fn policies() -> (Policy, DirtySource, Rehash, Hashing, FinalImage) {
    let v = |p| ParamValue::read(p);
    let p = Policy::parse(v(Param::Precopy).as_str()).unwrap_or(Policy::Oneshot);
    let d = DirtySource::parse(v(Param::Dirty).as_str()).unwrap_or(DirtySource::Hash);
    let r = Rehash::parse(v(Param::Rehash).as_str()).unwrap_or(Rehash::WriteSet);
    let h = Hashing::parse(v(Param::Hashing).as_str()).unwrap_or(Hashing::InPlace);
    let f = FinalImage::parse(v(Param::FinalImage).as_str()).unwrap_or(FinalImage::Patch);
    (p, d, r, h, f)
}

// SPDX-License-Identifier: GPL-2.0

//! The module parameters a migration reads when it starts: its policies
//! (`precopy`, `dirty`, `rehash`, `hashing`, `final_image`) and the CPUs
//! its large re-hashes are spread over (`rehash_cpus`).

use super::crew::MAX_LANES;
use crate::gmig_core::planner::{self, DirtySource, FinalImage, Hashing, Policy, Rehash};

extern "C" {
    fn gmig_param_get(which: u32, buf: *mut kernel::ffi::c_char, len: usize);
    fn gmig_rehash_lanes() -> kernel::ffi::c_uint;
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
    use planner::Param;
    let v = |p| ParamValue::read(p);
    let p = Policy::parse(v(Param::Precopy).as_str()).unwrap_or(Policy::Oneshot);
    let d = DirtySource::parse(v(Param::Dirty).as_str()).unwrap_or(DirtySource::Hash);
    let r = Rehash::parse(v(Param::Rehash).as_str()).unwrap_or(Rehash::WriteSet);
    let h = Hashing::parse(v(Param::Hashing).as_str()).unwrap_or(Hashing::InPlace);
    let f = FinalImage::parse(v(Param::FinalImage).as_str()).unwrap_or(FinalImage::Patch);
    (p, d, r, h, f)
}

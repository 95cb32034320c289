// SPDX-License-Identifier: GPL-2.0

//! Log lines a guest or a VFIO user can trigger at will (a faulting
//! context, a refused arc, a corrupt stream), rate limited per call site
//! like the C `dev_*_ratelimited()` helpers; the count of lines held back
//! comes with the next one let through. The window logic is
//! [`gmig_core::ratelimit`], host-tested.

use crate::gmig_core::ratelimit::{Ratelimit, Verdict};
use kernel::time::{ClockSource, Monotonic};

/// `Some(missed)` if the call site guarded by `rl` may print now.
pub(crate) fn allow(rl: &Ratelimit) -> Option<u32> {
    let now = u64::try_from(Monotonic::ktime_get()).unwrap_or(0);
    match rl.check(now) {
        Verdict::Print { missed } => Some(missed),
        Verdict::Suppress => None,
    }
}

/// `dev_ratelimited!(dev_err, dev, "fmt", args...)`: `dev_err!` (or any
/// `dev_*!` macro) at most [`Ratelimit::BURST`] times per
/// [`Ratelimit::INTERVAL_NS`] from this call site.
macro_rules! dev_ratelimited {
    ($level:ident, $dev:expr, $($fmt:tt)*) => {{
        static RL: $crate::gmig_core::ratelimit::Ratelimit =
            $crate::gmig_core::ratelimit::Ratelimit::new();
        if let Some(missed) = $crate::log::allow(&RL) {
            let dev = $dev;
            if missed > 0 {
                kernel::dev_warn!(dev, "{} similar messages suppressed\n", missed);
            }
            kernel::$level!(dev, $($fmt)*);
        }
    }};
}
pub(crate) use dev_ratelimited;

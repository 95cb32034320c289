// SPDX-License-Identifier: GPL-2.0

//! gmig's registration with kvmgt's companion interface, for as long as
//! the module is loaded.

use core::sync::atomic::Ordering;
use kernel::prelude::*;

use super::{
    kvmgt::{gmig_gvt_can_read_pinned, gmig_gvt_register, gmig_gvt_unregister},
    status::REGISTERED,
};
use crate::ffi::to_result;

/// gmig's registration with kvmgt; dropping it unregisters.
///
/// # Invariants
///
/// `registered` is true iff `gmig_gvt_register()` succeeded and
/// `gmig_gvt_unregister()` has not been called since.
pub(crate) struct Registration {
    registered: bool,
}

impl Registration {
    /// Registers with kvmgt if its companion interface is loaded; says in
    /// the kernel log which providers run. Never fails: without kvmgt,
    /// gmig runs the sim provider only.
    pub(crate) fn new() -> Self {
        // SAFETY: no preconditions; undone in `drop()` if it succeeded.
        let r = to_result(unsafe { gmig_gvt_register() });
        match r {
            // SAFETY: no preconditions (a symbol looked up at registration).
            Ok(()) if !unsafe { gmig_gvt_can_read_pinned() } => pr_info!(
                "gvt provider registered with kvmgt (no intel_gvt_companion_read_pinned(): guest pages are hashed through copies)\n"
            ),
            Ok(()) => pr_info!("gvt provider registered with kvmgt\n"),
            Err(e) if e == ENOENT => pr_info!(
                "gvt provider not available (no kvmgt with the companion interface loaded); sim provider only\n"
            ),
            Err(e) => pr_warn!("kvmgt refused the gvt provider ({:?}); sim provider only\n", e),
        }
        REGISTERED.store(r.is_ok(), Ordering::Relaxed);
        // INVARIANT: set from the result of `gmig_gvt_register()`.
        Self {
            registered: r.is_ok(),
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if self.registered {
            REGISTERED.store(false, Ordering::Relaxed);
            // SAFETY: registered (type invariant), and only once: `self`
            // is dropped once. No vGPU is attached any more: each one
            // holds a reference on this module, so it is not unloading.
            unsafe { gmig_gvt_unregister() };
            pr_info!("gvt provider unregistered from kvmgt\n");
        }
    }
}

// SPDX-License-Identifier: GPL-2.0

//! gmig's registration with kvmgt's companion interface, for as long as
//! the module is loaded.

use core::sync::atomic::Ordering;
use kernel::prelude::*;

use super::{
    companion::{self, Symbols},
    ops::OPS,
    status::REGISTERED,
};

/// gmig's registration with kvmgt; dropping it unregisters.
///
/// # Invariants
///
/// `registered` is `Some` iff [`companion::register`] succeeded and
/// [`companion::unregister`] has not been called since.
pub(crate) struct Registration {
    registered: Option<&'static Symbols>,
}

impl Registration {
    /// Registers with kvmgt if its companion interface is loaded; says in
    /// the kernel log which providers run. Never fails: without kvmgt,
    /// gmig runs the sim provider only.
    pub(crate) fn new() -> Self {
        super::vgpu::init();
        let r = companion::register(&OPS.0);
        match r {
            Ok(s) if !s.can_read_pinned() => pr_info!(
                "gvt provider registered with kvmgt (no intel_gvt_companion_read_pinned(): guest pages are hashed through copies)\n"
            ),
            Ok(_) => pr_info!("gvt provider registered with kvmgt\n"),
            Err(e) if e == ENOENT => pr_info!(
                "gvt provider not available (no kvmgt with the companion interface loaded); sim provider only\n"
            ),
            Err(e) => pr_warn!("kvmgt refused the gvt provider ({:?}); sim provider only\n", e),
        }
        REGISTERED.store(r.is_ok(), Ordering::Relaxed);
        // INVARIANT: set from the result of `companion::register()`.
        Self { registered: r.ok() }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(s) = self.registered.take() {
            REGISTERED.store(false, Ordering::Relaxed);
            // SAFETY: registered (type invariant), and only once: the
            // field is taken. No vGPU is attached any more: each one holds
            // a reference on this module, so it is not unloading.
            unsafe { companion::unregister(s, &OPS.0) };
            pr_info!("gvt provider unregistered from kvmgt\n");
        }
    }
}

// SPDX-License-Identifier: GPL-2.0

//! The sim mdev parent: its vGPU types, and what every vGPU of the parent
//! shares (the GGTT partition slots, the instances of each type, the
//! migration fronts of its vfio_devices).

use kernel::prelude::*;

use super::device::Shared;
use crate::gmig_core::{sim::vgpu::TYPES, slots::Slots};

kernel::sync::global_lock! {
    // SAFETY: initialised in the module initialiser (`sim::init()`) before
    // the mdev parent is registered, so before any other use.
    pub(super) unsafe(uninit) static GLOBAL: Mutex<Globals> = Globals::new();
}

/// State shared by every vGPU of the sim parent.
pub(crate) struct Globals {
    /// GGTT partition slots of the parent's global graphics address space.
    pub(super) slots: Slots,
    /// Instances per type, for `available_instances`.
    pub(super) instances: [u32; 4],
}

impl Globals {
    const fn new() -> Self {
        Self {
            slots: Slots::new(),
            instances: [0; 4],
        }
    }
}

kernel::sync::global_lock! {
    // SAFETY: initialised in the module initialiser (`sim::init()`) before
    // the mdev parent is registered, so before any other use.
    unsafe(uninit) static FRONTS: Mutex<crate::migration::vfio::Registry<Shared>> =
        crate::migration::vfio::Registry::new();
}

impl crate::migration::vfio::Registered for Shared {
    fn with_registry<R>(f: impl FnOnce(&mut crate::migration::vfio::Registry<Self>) -> R) -> R {
        f(&mut FRONTS.lock())
    }
}

/// Prepares the globals; called once from the module initialiser.
pub(crate) fn init() {
    // SAFETY: called exactly once, before the mdev parent is registered.
    unsafe {
        GLOBAL.init();
        FRONTS.init();
    }
}

/// `available_instances` of type `index`.
pub(crate) fn type_available(index: usize) -> u32 {
    let Some(ty) = TYPES.get(index) else {
        return 0;
    };
    let g = GLOBAL.lock();
    let by_count = ty
        .max_instances
        .saturating_sub(g.instances.get(index).copied().unwrap_or(0));
    by_count.min(g.slots.available(ty.ggtt_size))
}

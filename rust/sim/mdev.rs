// SPDX-License-Identifier: GPL-2.0

//! The sim's mdev parent and driver ([`SimParent`]): the `gmig` parent
//! device, its types, and a [`SimVdev`] for each mdev a user creates.

use kernel::{device, prelude::*, str::CString};

use super::{parent::type_available, vfio::SimVdev};
use crate::{
    gmig_core::sim::vgpu::TYPES,
    vfio::{
        driver::Registration,
        mdev::{self, Parent, TypeName},
    },
};

/// The sim's mdev parent and driver, both named `gmig`: its types are
/// under `/sys/class/mdev_bus/gmig/mdev_supported_types/gmig-<type>`.
pub(crate) struct SimParent;

impl mdev::Driver for SimParent {
    type Device = Registration<SimVdev>;

    fn probe(mdev: &device::Device, index: usize) -> Result<Pin<KBox<Self::Device>>> {
        let name = mdev.name();
        let reg = Registration::new(mdev, |dev| SimVdev::new(dev, index, name))?;
        Ok(KBox::pin(reg, GFP_KERNEL)?)
    }

    fn available(index: usize) -> u32 {
        type_available(index)
    }

    fn description(index: usize) -> &'static str {
        TYPES.get(index).map_or("", |t| t.description)
    }
}

/// The sim parent's class: its types are named `gmig-<type>`.
static CLASS: mdev::Class = mdev::Class::new(c"gmig");

/// Registers the sim's mdev parent, after [`super::init`].
pub(crate) fn register() -> Result<Parent<SimParent>> {
    let mut names = KVec::with_capacity(TYPES.len(), GFP_KERNEL)?;
    for t in TYPES.iter() {
        // mdev names the type directory "<parent>-<sysfs name>".
        let sysfs = t.name.strip_prefix("gmig-").unwrap_or(t.name);
        names.push(
            TypeName {
                sysfs: CString::try_from_fmt(fmt!("{sysfs}"))?,
                pretty: CString::try_from_fmt(fmt!("{}", t.name))?,
            },
            GFP_KERNEL,
        )?;
    }
    Parent::new(c"gmig", &CLASS, names)
}

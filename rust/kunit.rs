// SPDX-License-Identifier: GPL-2.0

//! KUnit suites: the `core`-only logic of [`crate::gmig_core`], run again
//! inside the kernel (same code as the host tests, kernel compiler flags,
//! overflow checks and all). The suites run when gmig.ko is loaded.

use kernel::prelude::*;

#[kunit_tests(gmig_slots)]
mod tests {
    use super::*;
    use crate::gmig_core::slots::{Slots, SLOT_SIZE};

    #[test]
    fn partitions_never_share_a_base() -> Result {
        let mut slots = Slots::new();
        let a = slots.alloc(SLOT_SIZE).ok_or(ENOSPC)?;
        let b = slots.alloc(SLOT_SIZE).ok_or(ENOSPC)?;
        assert_ne!(a, b);
        assert_ne!(a, 0);
        assert!(slots.free(a, SLOT_SIZE));
        assert!(!slots.free(a, SLOT_SIZE));
        Ok(())
    }
}

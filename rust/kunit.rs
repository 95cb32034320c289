// SPDX-License-Identifier: GPL-2.0

//! KUnit suites: the `core`-only logic of [`crate::gmig_core`], run again
//! inside the kernel (same code as the host tests, kernel compiler flags,
//! overflow checks and all). The suites run when gmig.ko is loaded.

#[kunit_tests(gmig_smoke)]
mod tests {
    use kernel::prelude::*;

    #[test]
    fn version_is_semver() -> Result {
        let parts = super::super::VERSION.split('.').count();
        assert_eq!(parts, 3);
        Ok(())
    }
}

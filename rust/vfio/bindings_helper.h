/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The C interfaces rust/vfio/ binds: VFIO devices, their migration and
 * DMA logging ops, emulated-IOMMU pinning, and mediated device parents.
 * Linux 7.3's kernel crate has none of them in its bindings, so gmig runs
 * bindgen over this header itself (Kbuild), as rust/bindings does upstream.
 */
#include <linux/anon_inodes.h>
#include <linux/eventfd.h>
#include <linux/interval_tree.h>
#include <linux/iova_bitmap.h>
#include <linux/mdev.h>
#include <linux/vfio.h>

/*
 * kvmgt's companion interface (patches/gvt): the kernel's header when the
 * tree has the series applied (Kbuild says so), gmig's copy otherwise.
 */
#ifdef GMIG_TREE_HAS_GVT_COMPANION
#include <drm/intel/intel_gvt_companion.h>
#else
#include "../gvt/intel_gvt_companion.h"
#endif

/* Function-like macros bindgen does not expand: their values, as consts. */
const unsigned int RUST_CONST_HELPER_VFIO_DEVICE_GET_INFO = VFIO_DEVICE_GET_INFO;
const unsigned int RUST_CONST_HELPER_VFIO_DEVICE_GET_IRQ_INFO =
	VFIO_DEVICE_GET_IRQ_INFO;
const unsigned int RUST_CONST_HELPER_VFIO_DEVICE_SET_IRQS = VFIO_DEVICE_SET_IRQS;
const unsigned int RUST_CONST_HELPER_VFIO_DEVICE_RESET = VFIO_DEVICE_RESET;
const unsigned int RUST_CONST_HELPER_VFIO_MIG_GET_PRECOPY_INFO =
	VFIO_MIG_GET_PRECOPY_INFO;

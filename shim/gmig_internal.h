/* SPDX-License-Identifier: GPL-2.0 */
/* gmig C shim: the sim's C object of one mdev. */
#ifndef GMIG_INTERNAL_H
#define GMIG_INTERNAL_H

#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/vfio.h>
#include <linux/workqueue.h>

#include "gmig_shim.h"

struct gmig_vdev {
	struct vfio_device vdev;
	struct gmig_vgpu *vgpu;
	unsigned int type;

	spinlock_t irq_lock;		/* eventfds and INTx mask */
	struct eventfd_ctx *intx_trigger;
	struct eventfd_ctx *msi_trigger;
	struct eventfd_ctx *req_trigger;	/* device request (remove) */
	bool intx_masked;

	struct work_struct exec_work;
	struct delayed_work workload_work;
};

static inline struct gmig_vdev *gmig_to_gv(struct vfio_device *vdev)
{
	return container_of(vdev, struct gmig_vdev, vdev);
}

#endif /* GMIG_INTERNAL_H */

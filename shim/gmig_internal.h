/* SPDX-License-Identifier: GPL-2.0 */
/* gmig C shim: what gmig_vfio.c and gmig_mig.c share. */
#ifndef GMIG_INTERNAL_H
#define GMIG_INTERNAL_H

#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/vfio.h>
#include <linux/workqueue.h>

#include "gmig_shim.h"

#define GMIG_MAX_LOG_RANGES 16

struct gmig_migf;

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

	struct mutex state_mutex;	/* migration state and files */
	enum vfio_device_mig_state mig_state;
	struct gmig_migf *saving_migf;
	struct gmig_migf *resuming_migf;
};

static inline struct gmig_vdev *gmig_to_gv(struct vfio_device *vdev)
{
	return container_of(vdev, struct gmig_vdev, vdev);
}

extern const struct vfio_migration_ops gmig_migration_ops;
extern const struct vfio_log_ops gmig_log_ops;
void gmig_mig_disable_files(struct gmig_vdev *gv);
void gmig_mig_reset(struct gmig_vdev *gv);

#endif /* GMIG_INTERNAL_H */

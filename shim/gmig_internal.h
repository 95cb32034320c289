/* SPDX-License-Identifier: GPL-2.0 */
/* gmig C shim: what gmig_sim.c and gmig_mig.c share. */
#ifndef GMIG_INTERNAL_H
#define GMIG_INTERNAL_H

#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/vfio.h>
#include <linux/workqueue.h>

#include "gmig_shim.h"

#define GMIG_MAX_LOG_RANGES 16

struct gmig_migf;

/*
 * VFIO migration state of one vfio_device gmig migrates: a sim mdev
 * (embedded in its gmig_vdev) or a GVT-g vGPU (gmig_gvt.c). @rs is the
 * Rust object behind it, of provider @provider (GMIG_PROVIDER_*): every
 * gmig_rs_mig_*() and gmig_rs_log_*() call gets both.
 */
struct gmig_mig {
	struct vfio_device *vdev;
	void *rs;
	u32 provider;

	struct mutex state_mutex;	/* migration state and files */
	enum vfio_device_mig_state mig_state;
	struct gmig_migf *saving_migf;
	struct gmig_migf *resuming_migf;
};

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

	struct gmig_mig mig;
};

static inline struct gmig_vdev *gmig_to_gv(struct vfio_device *vdev)
{
	return container_of(vdev, struct gmig_vdev, vdev);
}

void gmig_mig_init(struct gmig_mig *m, struct vfio_device *vdev,
		   u32 provider);
void gmig_mig_destroy(struct gmig_mig *m);
void gmig_mig_reset(struct gmig_mig *m);
struct gmig_mig *gmig_vfio_mig(struct vfio_device *vdev);
struct gmig_mig *gmig_gvt_mig(struct vfio_device *vdev);

#endif /* GMIG_INTERNAL_H */

// SPDX-License-Identifier: GPL-2.0
/*
 * gvt_mock: the companion's calls into GVT-g, as patches/gvt implements
 * them in drivers/gpu/drm/i915/gvt/companion.c (registration, the
 * companion attached to a vGPU at its creation) and sched_policy.c (the
 * stop and start of a vGPU's scheduling); the check that the companion
 * passes a mock vGPU and calls none of them from a callback made under
 * the vGPU's lock.
 */

#define pr_fmt(fmt) "gvt_mock: " fmt

#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/workqueue.h>

#include "gvt_mock.h"

/* the registered companion; the runs count calls with a foreign vGPU */
DEFINE_MUTEX(companion_lock);
const struct intel_gvt_companion_ops *companion;
atomic_t bad_vgpu_ptr;

struct mock_vgpu *to_mock(struct intel_vgpu *vgpu)
{
	struct mock_vgpu *m = (struct mock_vgpu *)vgpu;

	if (!m || m->magic != MOCK_MAGIC) {
		atomic_inc(&bad_vgpu_ptr);
		pr_err("companion passed a vGPU that is not the mock's\n");
		return NULL;
	}
	return m;
}

static struct intel_vgpu *to_vgpu(struct mock_vgpu *m)
{
	return (struct intel_vgpu *)m;
}

/* A call into GVT-g from a callback made under the vGPU's lock? */
bool reentered(struct mock_vgpu *m, const char *what)
{
	if (READ_ONCE(m->cb_task) != current)
		return false;
	atomic_inc(&m->reentered);
	pr_err("%s: %s called from a companion callback (deadlock on kvmgt)\n",
	       m->name, what);
	return true;
}

/* The interface, as patches 0001-0008 implement it in kvmgt. */

int intel_gvt_register_companion(const struct intel_gvt_companion_ops *ops)
{
	if (!ops || ops->version != INTEL_GVT_COMPANION_VERSION ||
	    ops->size != sizeof(*ops) || !ops->vgpu_create ||
	    !ops->vgpu_destroy)
		return -EINVAL;

	guard(mutex)(&companion_lock);
	if (companion)
		return -EBUSY;
	companion = ops;
	pr_info("companion registered\n");
	return 0;
}
EXPORT_SYMBOL_GPL(intel_gvt_register_companion);

void intel_gvt_unregister_companion(const struct intel_gvt_companion_ops *ops)
{
	guard(mutex)(&companion_lock);
	if (WARN_ON(companion != ops))
		return;
	companion = NULL;
	pr_info("companion unregistered\n");
}
EXPORT_SYMBOL_GPL(intel_gvt_unregister_companion);

void intel_gvt_companion_stop_schedule(struct intel_vgpu *vgpu)
{
	struct mock_vgpu *m = to_mock(vgpu);

	if (!m || reentered(m, "stop_schedule"))
		return;
	guard(mutex)(&m->drv_lock);
	guard(mutex)(&m->lock);
	m->stops++;
	if (m->stopped)
		return;
	m->stopped = true;
	if (m->ops->sched_stopped) {
		cb_begin(m);
		m->ops->sched_stopped(m->priv);
		cb_end(m);
	}
}
EXPORT_SYMBOL_GPL(intel_gvt_companion_stop_schedule);

void intel_gvt_companion_start_schedule(struct intel_vgpu *vgpu)
{
	struct mock_vgpu *m = to_mock(vgpu);

	if (!m || reentered(m, "start_schedule"))
		return;
	guard(mutex)(&m->lock);
	m->starts++;
	if (!m->stopped)
		return;
	m->stopped = false;
	if (m->ops->sched_started) {
		cb_begin(m);
		m->ops->sched_started(m->priv);
		cb_end(m);
	}
	/* intel_gvt_start_schedule(): the workload threads get to it */
	if (m->autorun)
		queue_work(system_unbound_wq, &m->run_work);
}
EXPORT_SYMBOL_GPL(intel_gvt_companion_start_schedule);

/*
 * The companion's vgpu_create, before the vfio_device is registered
 * (patch 0001): it sets the device's mig_ops and log_ops.
 */
int mock_attach(struct mock_vgpu *m, char *why, size_t why_len)
{
	const struct intel_gvt_companion_ops *ops;
	void *priv;

	guard(mutex)(&companion_lock);
	ops = companion;
	if (!ops || !try_module_get(ops->owner)) {
		snprintf(why, why_len, "no companion registered (is gmig loaded?)");
		return -ENOENT;
	}
	cb_begin(m);
	priv = ops->vgpu_create(to_vgpu(m), &m->vdev, &m->layout);
	cb_end(m);
	if (IS_ERR_OR_NULL(priv)) {
		module_put(ops->owner);
		snprintf(why, why_len, "%s: vgpu_create returned %ld", m->name,
			 priv ? PTR_ERR(priv) : 0L);
		return -EINVAL;
	}
	m->ops = ops;
	m->priv = priv;
	return 0;
}

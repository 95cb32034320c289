// SPDX-License-Identifier: GPL-2.0
/*
 * gvt_mock: a mock vGPU's life, as drivers/gpu/drm/i915/gvt/vgpu.c has it
 * (intel_gvt_create_vgpu(), intel_gvt_reset_vgpu_locked()), with the
 * release of kvmgt.c's vfio_device (the companion's vgpu_reset and
 * vgpu_destroy, patches 0001 and 0008).
 */

#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/vmalloc.h>
#include <linux/workqueue.h>

#include "gvt_mock.h"

/*
 * What intel_gvt_reset_vgpu() clears, with m->lock held: the workloads,
 * the guest GGTT (without the ggtt_write hook), registers, fences and
 * execlist state. The companion's vgpu_reset comes after, unlocked.
 */
void mock_reset_locked(struct mock_vgpu *m)
{
	int e;

	mock_clean_workloads(m);
	mock_ppgtt_destroy_all(m);
	memset(m->ggtt, 0, m->ggtt_entries * sizeof(u64));
	memset(m->vregs, 0, m->vregs_size);
	memset(m->fences, 0, m->layout.fence_count * sizeof(u64));
	memset(m->hw_fence, 0, sizeof(m->hw_fence));	/* _clear_vgpu_fence() */
	memset(m->execlist, 0, MOCK_EXECLIST_SIZE);
	/* like GVT-g's reset, hws_pga[] stays; the CSB pointer starts over */
	for (e = 0; e < MOCK_ENGINES; e++)
		m->csb_wp[e] = 7;
}

/* Mock vGPUs: what kvmgt's init and release of a vfio_device do. */

/*
 * Detaches the companion (with @reset, first as kvmgt's close_device()
 * does) and frees what mock_init() allocated; @m itself is the caller's.
 */
void mock_release(struct mock_vgpu *m, bool reset)
{
	if (m->run_work.func) {
		m->autorun = false;
		cancel_work_sync(&m->run_work);
	}
	mock_ppgtt_destroy_all(m);
	if (m->priv) {
		if (reset && m->ops->vgpu_reset)
			m->ops->vgpu_reset(m->priv);
		m->ops->vgpu_destroy(m->priv);
		module_put(m->ops->owner);
		m->priv = NULL;
	}
	if (m->q[0].next)
		mock_clean_workloads(m);
	vfree(m->mem);
	kvfree(m->vregs);
	kvfree(m->ggtt);
	kfree(m->fences);
	kfree(m->execlist);
	m->mem = NULL;
	m->vregs = NULL;
	m->ggtt = NULL;
	m->fences = NULL;
	m->execlist = NULL;
	m->magic = 0;
}

/*
 * intel_gvt_create_vgpu(): the vGPU's state, zeroed; @own_mem gives it a
 * buffer of guest memory (the runs' vGPUs, which have no VFIO user).
 */
int mock_init(struct mock_vgpu *m, const char *name,
	      const struct intel_gvt_vgpu_layout *l, size_t vregs_size,
	      bool own_mem)
{
	int i;

	m->magic = MOCK_MAGIC;
	m->name = name;
	m->layout = *l;
	m->refuse_check = -1;
	m->scan_nonprivbb = scan_nonprivbb;
	m->fail_apply = -1;
	for (i = 0; i < MOCK_ENGINES; i++)
		m->csb_wp[i] = 7;
	mutex_init(&m->lock);
	mutex_init(&m->mem_lock);
	mutex_init(&m->drv_lock);
	for (i = 0; i < MOCK_ENGINES; i++)
		INIT_LIST_HEAD(&m->q[i]);
	INIT_WORK(&m->run_work, mock_run_work);
	m->ggtt_entries = (l->aperture_size + l->hidden_size) / MOCK_PAGE;
	if (own_mem)
		m->mem = vzalloc(MOCK_MEM_SIZE);
	m->vregs_size = vregs_size;
	m->vregs = kvzalloc(vregs_size, GFP_KERNEL);
	m->ggtt = kvcalloc(m->ggtt_entries, sizeof(u64), GFP_KERNEL);
	m->fences = kcalloc(l->fence_count, sizeof(u64), GFP_KERNEL);
	m->execlist = kzalloc(MOCK_EXECLIST_SIZE, GFP_KERNEL);
	if ((own_mem && !m->mem) || !m->vregs || !m->ggtt || !m->fences ||
	    !m->execlist)
		return -ENOMEM;
	return 0;
}

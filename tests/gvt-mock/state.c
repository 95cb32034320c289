// SPDX-License-Identifier: GPL-2.0
/*
 * gvt_mock: save and restore of a vGPU's state, as patches/gvt implements
 * them in drivers/gpu/drm/i915/gvt/companion.c (the state parts, their
 * check, save and restore; the pending workloads saved and re-created,
 * patches 0005, 0011-0013) with intel_vgpu_restore_ggtt() of gtt.c and
 * intel_vgpu_recreate_workload() of scheduler.c.
 */

#define pr_fmt(fmt) "gvt_mock: " fmt

#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/string.h>

#include "gvt_mock.h"

size_t state_size(struct mock_vgpu *m, enum intel_gvt_state part)
{
	switch (part) {
	case INTEL_GVT_STATE_VREGS:
		return m->vregs_size;
	case INTEL_GVT_STATE_GGTT:
		return m->ggtt_entries * sizeof(u64);
	case INTEL_GVT_STATE_FENCES:
		return m->layout.fence_count * sizeof(u64);
	case INTEL_GVT_STATE_EXECLIST:
		return MOCK_EXECLIST_SIZE;
	}
	return 0;
}

void *state_ptr(struct mock_vgpu *m, enum intel_gvt_state part)
{
	switch (part) {
	case INTEL_GVT_STATE_VREGS:
		return m->vregs;
	case INTEL_GVT_STATE_GGTT:
		return m->ggtt;
	case INTEL_GVT_STATE_FENCES:
		return m->fences;
	case INTEL_GVT_STATE_EXECLIST:
		return m->execlist;
	}
	return NULL;
}

/*
 * check_state_locked() (patches 0013, 0014), with m->lock held: a valid
 * fence must map into the vGPU's GM; m->refuse_check refuses a part.
 */
static int mock_check_part(struct mock_vgpu *m, enum intel_gvt_state part,
			   const void *buf)
{
	const u64 *q = buf;
	u64 v;
	int i;

	m->checks++;
	if ((int)part == m->refuse_check)
		return -EINVAL;
	if (part != INTEL_GVT_STATE_FENCES)
		return 0;
	for (i = 0; i < m->layout.fence_count; i++) {
		v = q[i];
		if (mock_map_fence(m, &v)) {
			pr_err("%s: fence %d of the state: range %#llx not in the vGPU's GM\n",
			       m->name, i, q[i]);
			return -EINVAL;
		}
	}
	return 0;
}

/*
 * The mock vGPU whose @part a check or restore of @size bytes (@what) is
 * for; NULL and *@ret the error if there is none, @size is not the part's
 * or the call comes from a callback.
 */
static struct mock_vgpu *part_vgpu(struct intel_vgpu *vgpu,
				   enum intel_gvt_state part, size_t size,
				   const char *what, int *ret)
{
	struct mock_vgpu *m = to_mock(vgpu);
	size_t len;

	*ret = -EINVAL;
	if (!m)
		return NULL;
	len = state_size(m, part);
	if (!len || size != len)
		return NULL;
	if (reentered(m, what)) {
		*ret = -EDEADLK;
		return NULL;
	}
	return m;
}

int intel_gvt_companion_check_state(struct intel_vgpu *vgpu,
				    enum intel_gvt_state part,
				    const void *buf, size_t size)
{
	int ret;
	struct mock_vgpu *m = part_vgpu(vgpu, part, size, "check_state", &ret);

	if (!m)
		return ret;
	guard(mutex)(&m->lock);
	return mock_check_part(m, part, buf);
}
EXPORT_SYMBOL_GPL(intel_gvt_companion_check_state);

/*
 * reset_half_restored() (patches 0013, 0015): a restore that failed after
 * its check resets the vGPU, with no status page left.
 */
static void mock_reset_half_restored(struct mock_vgpu *m)
{
	mock_reset_locked(m);
	memset(m->hws_pga, 0, sizeof(m->hws_pga));
}

ssize_t intel_gvt_companion_save_state(struct intel_vgpu *vgpu,
				       enum intel_gvt_state part,
				       void *buf, size_t size)
{
	struct mock_vgpu *m = to_mock(vgpu);
	size_t len;

	if (!m)
		return -EINVAL;
	len = state_size(m, part);
	if (!len)
		return -EINVAL;
	if (!buf)
		return len;
	if (size < len)
		return -ENOSPC;
	if (reentered(m, "save_state"))
		return -EDEADLK;

	guard(mutex)(&m->lock);
	/* Fault injection: kvmgt's save failing (out of memory, say). */
	if (m->stopped && m->fail_part == part + 1) {
		m->fail_part = 0;
		pr_info("%s: save_state of part %d fails (injected)\n",
			m->name, part);
		return -EIO;
	}
	m->saves++;
	/* A running vGPU's part is a snapshot (patch 0005): pre-copy. */
	if (m->stopped)
		m->stopped_saves++;
	else
		m->running_saves++;
	memcpy(buf, state_ptr(m, part), len);
	return len;
}
EXPORT_SYMBOL_GPL(intel_gvt_companion_save_state);

int intel_gvt_companion_restore_state(struct intel_vgpu *vgpu,
				      enum intel_gvt_state part,
				      const void *buf, size_t size)
{
	size_t len = size;
	int ret;
	struct mock_vgpu *m = part_vgpu(vgpu, part, size, "restore_state",
					&ret);

	if (!m)
		return ret;
	guard(mutex)(&m->lock);
	/* kvmgt checks the part first and then changes nothing if refused */
	if (mock_check_part(m, part, buf))
		return -EINVAL;
	if (m->restores < MOCK_MAX_RESTORES)
		m->restored[m->restores] = part;
	m->restores++;
	if (!m->stopped) {
		m->bad_restores++;
		pr_err("%s: state part %d restored while scheduled\n",
		       m->name, part);
	}
	if ((int)part == m->fail_apply) {
		pr_info("%s: applying state part %d fails (injected), vGPU reset\n",
			m->name, part);
		mock_reset_half_restored(m);
		return -ENOMEM;
	}
	if (part == INTEL_GVT_STATE_FENCES) {
		/* the registers as saved, the hardware through map_gma */
		const u64 *q = buf;
		int i;

		memcpy(m->fences, buf, len);
		for (i = 0; i < m->layout.fence_count; i++)
			mock_write_fence(m, i, q[i]);
		return 0;
	}
	if (part == INTEL_GVT_STATE_VREGS) {
		memcpy(m->vregs, buf, len);
		mock_restore_hws_pga(m);
		return 0;
	}
	if (m->kv && part == INTEL_GVT_STATE_GGTT) {
		/*
		 * intel_vgpu_restore_ggtt() (patch 0005) writes each entry as
		 * the guest would, at this vGPU's own offsets (no map_gma):
		 * the shadow GGTT maps it (pinning its page) and the
		 * companion's ggtt_write hook sees it.
		 */
		const u64 *e = buf;
		size_t i;

		for (i = 0; i < m->ggtt_entries; i++)
			mock_ggtt_set(m, i, e[i]);
		return 0;
	}
	memcpy(state_ptr(m, part), buf, len);
	return 0;
}
EXPORT_SYMBOL_GPL(intel_gvt_companion_restore_state);

int intel_gvt_companion_save_workloads(struct intel_vgpu *vgpu,
				       struct intel_gvt_workload *w,
				       unsigned int count)
{
	struct mock_vgpu *m = to_mock(vgpu);
	struct mock_workload *wl;
	unsigned int n = 0;
	int e;

	if (!m)
		return -EINVAL;
	if (reentered(m, "save_workloads"))
		return -EDEADLK;
	guard(mutex)(&m->lock);
	for (e = 0; e < MOCK_ENGINES; e++) {
		list_for_each_entry(wl, &m->q[e], list) {
			if (w && n < count)
				w[n] = wl->w;
			n++;
		}
	}
	return n;
}
EXPORT_SYMBOL_GPL(intel_gvt_companion_save_workloads);

int intel_gvt_companion_resubmit_workloads(struct intel_vgpu *vgpu,
					   const struct intel_gvt_workload *w,
					   unsigned int count)
{
	struct mock_vgpu *m = to_mock(vgpu);
	unsigned int i;
	int ret;

	if (!m)
		return -EINVAL;
	if (reentered(m, "resubmit_workloads"))
		return -EDEADLK;
	guard(mutex)(&m->lock);
	if (mock_queued(m))
		return -EBUSY;
	for (i = 0; i < count; i++)
		if (w[i].engine >= MOCK_ENGINES ||
		    (w[i].flags & ~INTEL_GVT_WORKLOAD_SCHEDULE_IN) ||
		    w[i].reserved[0] || w[i].reserved[1] || w[i].reserved[2] ||
		    !(w[i].desc[0] & MOCK_DESC_VALID) ||
		    !(w[i].desc[0] & MOCK_DESC_PRIV))
			return -EINVAL;
	for (i = 0; i < count; i++) {
		ret = mock_create_workload(m, w[i].engine, w[i].desc, w[i].elsp,
					   w[i].flags & INTEL_GVT_WORKLOAD_SCHEDULE_IN,
					   &w[i]);
		if (ret) {
			pr_err("%s: resubmitting workload %u: %d, vGPU reset\n",
			       m->name, i, ret);
			mock_reset_half_restored(m);
			return ret;
		}
	}
	return 0;
}
EXPORT_SYMBOL_GPL(intel_gvt_companion_resubmit_workloads);

// SPDX-License-Identifier: GPL-2.0
/*
 * gvt_mock: workloads and the GPU, as drivers/gpu/drm/i915/gvt/ has them:
 * execlist.c (intel_vgpu_submit_execlist(), emulate_csb_update()),
 * scheduler.c (intel_vgpu_create_workload(), intel_vgpu_queue_workload(),
 * dispatch_workload(), complete_current_workload(),
 * update_guest_context(), workload_thread(),
 * intel_vgpu_clean_workloads()) and handlers.c (gdrst_mmio_write(): an
 * engine reset), with the companion's workload_queued and
 * workload_completed hooks (patches 0002, 0017).
 */

#define pr_fmt(fmt) "gvt_mock: " fmt

#include <linux/delay.h>
#include <linux/list.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/workqueue.h>

#include "gvt_mock.h"

/* Workloads, as patches 0009-0012 make GVT-g handle them. */

/*
 * emulate_csb_update(), m->lock held: a context switch's status entry and
 * the write pointer go into the engine's status page, found through the
 * vGPU's GGTT (none: no write).
 */
static void mock_csb_update(struct mock_vgpu *m, unsigned int e, u32 ctx_id)
{
	u32 status[2] = { 0x18, ctx_id };	/* complete, active to idle */
	u64 gpa = mock_gma_to_gpa(m, m->hws_pga[e]);
	u32 wp = m->csb_wp[e] == 7 ? 0 : (m->csb_wp[e] + 1) % 6;

	m->csb_wp[e] = wp;
	if (!m->hws_pga[e] || gpa == ~0ULL)
		return;
	if (mock_wr32(m, gpa + MOCK_CSB_BUF0 * 4 + wp * 8, status[0]) ||
	    mock_wr32(m, gpa + MOCK_CSB_BUF0 * 4 + wp * 8 + 4, status[1]) ||
	    mock_wr32(m, gpa + MOCK_CSB_WRITE * 4, wp))
		return;
	m->csb_gpa[e] = gpa & ~0xfffULL;
	m->csb_writes++;
}

static void mock_free_workload(struct mock_workload *wl)
{
	kfree(wl->shadow);
	kfree(wl);
}

/*
 * intel_vgpu_create_workload() (with @saved: intel_vgpu_recreate_workload()),
 * then intel_vgpu_queue_workload(). Called with m->lock held.
 */
int mock_create_workload(struct mock_vgpu *m, unsigned int engine,
			 const u32 *desc, const u32 *elsp,
			 bool schedule_in,
			 const struct intel_gvt_workload *saved)
{
	struct mock_workload *wl, *last;
	u64 ctx = desc[0] & ~0xfffU, start;
	u32 head, tail, ctl, rb;
	int ret;

	if (mock_map_gma(m, &ctx, 2 * MOCK_PAGE))
		return -EINVAL;
	if (mock_gma_to_gpa(m, ctx + MOCK_PAGE) == ~0ULL)
		return -EINVAL;	/* "invalid guest context LRCA" */
	wl = kzalloc_obj(*wl);
	if (!wl)
		return -ENOMEM;
	wl->ctx_gma = ctx;
	wl->ring_ctx_gpa = mock_gma_to_gpa(m, ctx + MOCK_PAGE);
	head = mock_rd32(m, wl->ring_ctx_gpa + MOCK_CTX_HEAD);
	tail = mock_rd32(m, wl->ring_ctx_gpa + MOCK_CTX_TAIL);
	rb = mock_rd32(m, wl->ring_ctx_gpa + MOCK_CTX_START);
	ctl = mock_rd32(m, wl->ring_ctx_gpa + MOCK_CTX_CTL);
	wl->w.guest_rb_head = head;
	head &= 0x001ffffc;
	tail &= 0x001ffff8;
	list_for_each_entry_reverse(last, &m->q[engine], list) {
		if (last->w.desc[0] == desc[0] && last->w.desc[1] == desc[1]) {
			head = last->w.rb_tail;
			break;
		}
	}
	if (saved) {
		head = saved->rb_head;
		tail = saved->rb_tail;
		wl->w.guest_rb_head = saved->guest_rb_head;
		rb = saved->rb_start;
		ctl = saved->rb_ctl;
	}
	start = rb;
	if (mock_map_gma(m, &start, MOCK_RB_SIZE(ctl)) ||
	    !mock_gm_valid(m, start, MOCK_RB_SIZE(ctl)) || head > tail ||
	    tail >= MOCK_RB_SIZE(ctl)) {
		kfree(wl);
		return -EINVAL;	/* "context contain invalid rb" */
	}
	wl->rb_start = start;
	wl->w.engine = engine;
	wl->w.flags = schedule_in ? INTEL_GVT_WORKLOAD_SCHEDULE_IN : 0;
	wl->w.desc[0] = desc[0];
	wl->w.desc[1] = desc[1];
	if (schedule_in)
		memcpy(wl->w.elsp, elsp, sizeof(wl->w.elsp));
	wl->w.rb_head = head;
	wl->w.rb_tail = tail;
	wl->w.rb_start = rb;
	wl->w.rb_ctl = ctl;
	ret = mock_prepare_mm(m, wl);
	if (!ret && list_empty(&m->q[engine]))
		ret = mock_scan(m, wl);
	if (ret) {
		mock_free_workload(wl);
		return ret;
	}
	list_add_tail(&wl->list, &m->q[engine]);
	if (m->ops->workload_queued) {
		cb_begin(m);
		m->ops->workload_queued(m->priv, engine, wl->ctx_gma);
		cb_end(m);
	}
	return 0;
}

/*
 * intel_vgpu_clean_workloads(): frees the queued workloads of the engines
 * in @engines, unrun, each reported to workload_completed with -ECANCELED
 * first (patch 0017). Called with m->lock held.
 */
static void mock_clean_engines(struct mock_vgpu *m, unsigned long engines)
{
	struct mock_workload *wl, *n;
	int e;

	for (e = 0; e < MOCK_ENGINES; e++) {
		if (!(engines & BIT(e)))
			continue;
		list_for_each_entry_safe(wl, n, &m->q[e], list) {
			list_del(&wl->list);
			if (m->priv && m->ops->workload_completed) {
				cb_begin(m);
				m->ops->workload_completed(m->priv, e,
							   wl->ctx_gma,
							   -ECANCELED);
				cb_end(m);
			}
			mock_free_workload(wl);
		}
	}
}

void mock_clean_workloads(struct mock_vgpu *m)
{
	mock_clean_engines(m, GENMASK(MOCK_ENGINES - 1, 0));
}

/*
 * The guest resets engines through GDRST: gdrst_mmio_write() calls
 * intel_gvt_reset_vgpu_locked(vgpu, false, engine_mask), which stops the
 * vGPU's scheduling, waits for it to be idle and resets the engines'
 * submission (intel_vgpu_reset_submission(): intel_vgpu_clean_workloads()
 * frees their queued workloads unrun, then the execlist emulation of the
 * engines is reset; the mock's execlist state is an opaque image it
 * leaves alone). A reset of some engines, not ALL_ENGINES, resets nothing
 * else, and the companion's vgpu_reset is not called (patch 0008 calls
 * it for the VFIO user's resets only).
 */
void mock_engine_reset(struct mock_vgpu *m, unsigned long engines)
{
	guard(mutex)(&m->lock);
	mock_clean_engines(m, engines);
}

unsigned int mock_queued(struct mock_vgpu *m)
{
	struct mock_workload *wl;
	unsigned int n = 0;
	int e;

	for (e = 0; e < MOCK_ENGINES; e++)
		list_for_each_entry(wl, &m->q[e], list)
			n++;
	return n;
}

/*
 * The guest writes the ELSP of @engine: intel_vgpu_submit_execlist(), one
 * workload per valid descriptor, the first emulating the schedule-in.
 */
int mock_elsp(struct mock_vgpu *m, unsigned int engine, u32 desc0, u32 ctx_id)
{
	u32 elsp[4] = { desc0, ctx_id, 0, 0 };

	guard(mutex)(&m->lock);
	if (!(desc0 & MOCK_DESC_VALID) || !(desc0 & MOCK_DESC_PRIV))
		return -EINVAL;
	return mock_create_workload(m, engine, elsp, elsp, true, NULL);
}

/*
 * The GPU scheduler gets to the queues (dispatch_workload(), then
 * complete_current_workload()), unless scheduling is stopped; @force runs
 * them anyway: what the source would have done had it not been migrated.
 * Runs @max workloads at most; returns the number run.
 */
static int gpu_run(struct mock_vgpu *m, bool force, int max)
{
	struct mock_workload *wl;
	int e, ret, n = 0;
	u32 i;

	guard(mutex)(&m->lock);
	if (m->stopped && !force)
		return 0;
	for (e = 0; e < MOCK_ENGINES; e++) {
		while (!list_empty(&m->q[e]) && n < max) {
			wl = list_first_entry(&m->q[e], struct mock_workload,
					      list);
			list_del(&wl->list);
			ret = mock_scan(m, wl);
			for (i = 0; !ret && i < wl->shadow_len;
			     i += mock_cmd_len(wl->shadow[i])) {
				u64 gma, gpa;

				if (wl->shadow[i] != MOCK_SDI)
					continue;
				gma = ((u64)wl->shadow[i + 2] << 32) |
				      wl->shadow[i + 1];
				gpa = mock_gma_to_gpa(m, gma);
				if (gpa == ~0ULL)
					ret = -EFAULT;
				else if (m->kv && !kv_pinned(m, gpa >> 12))
					;	/* the scratch page */
				else
					ret = mock_wr32(m, gpa,
							wl->shadow[i + 3]);
			}
			/* the stand-in driver's batch buffers: the model GPU */
			if (!ret && m->kv)
				ret = kv_replay_executed(m, wl->w.desc);
			/* update_guest_context(): the ring head */
			if (!ret)
				ret = mock_wr32(m, wl->ring_ctx_gpa +
						MOCK_CTX_HEAD, wl->w.rb_tail);
			if (ret)
				m->run_errors++;
			if (m->ndone < MOCK_MAX_DONE) {
				struct mock_done *d = &m->done[m->ndone++];
				int t;

				d->engine = e;
				d->desc = wl->w.desc[0];
				for (t = 0; t < MOCK_TARGETS; t++)
					d->t[t] = mock_rd32(m, m->target_gpa[t]);
			}
			/* complete(): the schedule-out's CSB, then the hook */
			mock_csb_update(m, e, wl->w.desc[1]);
			if (m->ops->workload_completed) {
				cb_begin(m);
				m->ops->workload_completed(m->priv, e,
							   wl->ctx_gma, ret);
				cb_end(m);
			}
			mock_free_workload(wl);
			m->completed++;
			n++;
		}
	}
	return n;
}

int mock_gpu_run(struct mock_vgpu *m, bool force)
{
	return gpu_run(m, force, INT_MAX);
}

/*
 * With autorun, GVT-g's workload_thread(): one workload at a time while
 * scheduling runs (so that a stop can land with some still queued).
 */
void mock_run_work(struct work_struct *work)
{
	struct mock_vgpu *m = container_of(work, struct mock_vgpu, run_work);

	if (gpu_run(m, false, 1) > 0) {
		/* the GPU's time for it: a stop lands with some queued */
		usleep_range(1000, 2000);
		queue_work(system_unbound_wq, &m->run_work);
	}
}

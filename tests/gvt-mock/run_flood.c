// SPDX-License-Identifier: GPL-2.0
/*
 * gvt_mock's runs: "stop-copy-rollback", a guest that floods the ELSP and
 * a stop-copy whose first save fails. Its flood goes through
 * intel_vgpu_submit_execlist() (drivers/gpu/drm/i915/gvt/execlist.c) as
 * workload.c models it; its failure is the save of a state part
 * (companion.c of patches/gvt, state.c here).
 */

#define pr_fmt(fmt) "gvt_mock: " fmt

#include <linux/err.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/interval_tree.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/random.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/vfio.h>

#include "gvt_mock.h"
#include "run.h"

/*
 * "stop-copy-rollback": during pre-copy the guest floods the ELSP of
 * engine 2 (upstream GVT-g does not cap a vGPU's workload queue:
 * intel_vgpu_submit_execlist() queues whatever the guest submits) with
 * FLOOD_N workloads of one context, more than gmig's image carries (256),
 * each storing its number into its slot of the flood target page. The
 * first STOP_COPY lets the queue drain (the mock's "GPU" runs on its own
 * once scheduling starts), then its save fails once (kvmgt's save of a
 * part, injected): the arc must fail and leave the device in
 * PRE_COPY_P2P with the vGPU scheduled again. The retry succeeds, every
 * page the drained workloads wrote is in the stop-copy report, and the
 * destination ends byte-identical to the source after both ran what
 * each had queued.
 */
#define FLOOD_N		300
#define FLOOD_CTX	24	/* aperture entries 24-25: the context image */
#define FLOOD_TARGET	26	/* aperture entry 26: the target page */
#define FLOOD_RING	10	/* hidden entries 10-11: the ring (8 KiB) */
#define FLOOD_GFN	160	/* frames 160-161 context, 162 target,
				 * 163-164 ring
				 */
#define FLOOD_VAL(i)	(0xf10d0000U | (i))

static u64 flood_target(unsigned int i)
{
	return (FLOOD_GFN + 2) * MOCK_PAGE + 4 * i;
}

static int step_flood_submit(struct scenario *s)
{
	struct mock_vgpu *m = s->src;
	u64 ctx = (FLOOD_GFN + 1) * MOCK_PAGE, ring = (FLOOD_GFN + 3) * MOCK_PAGE;
	unsigned int i;
	int ret;

	for (i = 0; i < 2; i++) {
		mock_ggtt_mmio_write(m, gtt_off(ap_gma(m, FLOOD_CTX + i)),
				     MOCK_PTE(FLOOD_GFN + i));
		mock_ggtt_mmio_write(m, gtt_off(hid_gma(m, FLOOD_RING + i)),
				     MOCK_PTE(FLOOD_GFN + 3 + i));
	}
	mock_ggtt_mmio_write(m, gtt_off(ap_gma(m, FLOOD_TARGET)),
			     MOCK_PTE(FLOOD_GFN + 2));
	mock_wr32(m, ctx + MOCK_CTX_HEAD, 0);
	mock_wr32(m, ctx + MOCK_CTX_START,
		  lower_32_bits(hid_gma(m, FLOOD_RING)));
	mock_wr32(m, ctx + MOCK_CTX_CTL, 0x1000 | 1);	/* two pages */
	for (i = 0; i < FLOOD_N; i++) {
		pend_sdi(m, ring, 16 * i, ap_gma(m, FLOOD_TARGET) + 4 * i,
			 FLOOD_VAL(i));
		mock_wr32(m, ctx + MOCK_CTX_TAIL, 16 * (i + 1));
		ret = mock_elsp(m, 2, pend_desc(m, FLOOD_CTX), 0xf);
		if (ret)
			return fail(s, "ELSP submission %u: %d", i, ret);
	}
	if (mock_queued(m) != FLOOD_N)
		return fail(s, "%u workloads queued, not %u", mock_queued(m),
			    FLOOD_N);
	return 0;
}

/* Workloads the source ran or still has queued: none may be lost. */
static int flood_none_lost(struct scenario *s)
{
	struct mock_vgpu *m = s->src;
	unsigned int ran, queued;

	scoped_guard(mutex, &m->lock) {
		ran = m->completed;
		queued = mock_queued(m);
	}
	pr_info("src: %u workloads ran, %u queued\n", ran, queued);
	if (ran + queued != FLOOD_N || m->run_errors)
		return fail(s, "%u ran (%d failed) and %u queued of %u", ran,
			    m->run_errors, queued, FLOOD_N);
	return 0;
}

static int step_flood_save_fails(struct scenario *s)
{
	struct mock_vgpu *m = s->src;
	unsigned int starts = m->starts;
	struct file *f;

	/* the execlist part: gmig's status page reads take only the vregs */
	m->fail_part = INTEL_GVT_STATE_EXECLIST + 1;
	WRITE_ONCE(m->autorun, true);
	f = set_state(s, m, VFIO_DEVICE_STATE_STOP_COPY);
	if (!IS_ERR(f))
		return fail(s, "STOP_COPY succeeded with a failing save");
	pr_info("src: STOP_COPY with a failing save: %ld\n", PTR_ERR(f));
	if (m->fail_part)
		return fail(s, "STOP_COPY failed (%ld) before it saved",
			    PTR_ERR(f));
	if (get_state(m) != VFIO_DEVICE_STATE_PRE_COPY_P2P)
		return fail(s, "state %d after the failed arc, not PRE_COPY_P2P",
			    get_state(m));
	if (m->starts == starts || m->stopped)
		return fail(s, "scheduling not restarted (%u starts, was %u; %s)",
			    m->starts, starts,
			    m->stopped ? "stopped" : "running");
	return flood_none_lost(s);
}

static int step_flood_retry(struct scenario *s)
{
	struct mock_vgpu *m = s->src;
	struct file *f;
	size_t got;
	int ret;

	f = set_state(s, m, VFIO_DEVICE_STATE_STOP_COPY);
	if (IS_ERR(f))
		return fail(s, "retry of STOP_COPY: %ld", PTR_ERR(f));
	if (f)
		s->src_data = f;
	if (get_state(m) != VFIO_DEVICE_STATE_STOP_COPY || !m->stopped)
		return fail(s, "state %d, %s after the retry", get_state(m),
			    m->stopped ? "stopped" : "scheduled");
	ret = read_all(s, s->src_data, &got);
	if (ret)
		return ret;
	pr_info("src: %zu stop-copy bytes, stream %zu bytes\n", got,
		s->stream_len);
	return flood_none_lost(s);
}

/* What the drained workloads wrote: the target page, the context's head. */
static int step_flood_report(struct scenario *s)
{
	static const unsigned int set[] = { FLOOD_GFN + 1, FLOOD_GFN + 2 };
	int i, ret = report(s, s->src);

	if (ret)
		return ret;
	if (!s->src->completed)
		return fail(s, "no workload ran on src before the stop");
	for (i = 0; i < ARRAY_SIZE(set); i++)
		if (!test_bit(set[i], s->dirty))
			return fail(s, "page %u not reported", set[i]);
	return 0;
}

static int step_flood_recreated(struct scenario *s)
{
	if (mock_queued(s->dst) != mock_queued(s->src) || s->dst->ndone)
		return fail(s, "dst has %u workloads queued (%u ran), src %u",
			    mock_queued(s->dst), s->dst->ndone,
			    mock_queued(s->src));
	return 0;
}

/* Both run what they have queued: the same guest memory, every slot. */
static int step_flood_complete(struct scenario *s)
{
	struct mock_vgpu *d = s->dst, *m = s->src;
	int nd = mock_gpu_run(d, false), ns = mock_gpu_run(m, true);
	unsigned int i;

	pr_info("flood: %d workloads completed on dst, %d on src\n", nd, ns);
	if (nd != ns || d->run_errors || m->run_errors)
		return fail(s, "%d ran on dst (%d failed), %d on src (%d failed)",
			    nd, d->run_errors, ns, m->run_errors);
	for (i = 0; i < FLOOD_N; i++)
		if (mock_rd32(d, flood_target(i)) != FLOOD_VAL(i))
			return fail(s, "slot %u holds %#x: workload %u lost", i,
				    mock_rd32(d, flood_target(i)), i);
	if (memcmp(d->mem, m->mem, MOCK_MEM_SIZE))
		return fail(s, "dst's guest memory differs from src's");
	return 0;
}

const struct step stop_copy_steps[] = {
	{ "register", step_register, true },
	{ "create", step_create, true },
	{ "guest-setup", step_guest_setup, true },
	{ "log-start", step_log_start, true },
	{ "pre-copy", step_pre_copy, true },
	{ "pre-copy-report", step_pre_copy_report, false },
	{ "flood-submit", step_flood_submit, true },
	{ "save-fails", step_flood_save_fails, true },
	{ "retry", step_flood_retry, true },
	{ "report", step_flood_report, false },
	{ "src-stop", step_src_stop, false },
	{ "resume", step_resume, false },
	{ "resume-state", check_restored, false },
	{ "recreated", step_flood_recreated, false },
	{ "resume-running", step_resume_running, false },
	{ "complete", step_flood_complete, false },
	{ "no-reentry", step_no_reentry, false },
	{ NULL }
};

// SPDX-License-Identifier: GPL-2.0
/*
 * gvt_mock's runs: "narrow", "engine-reset" and "in-flight", the re-hash
 * candidates gmig derives from the commands GVT-g scans
 * (drivers/gpu/drm/i915/gvt/cmd_parser.c, the scan_cmd hook), from what
 * kvmgt writes itself (scheduler.c's update_guest_context(), execlist.c's
 * emulate_csb_update()), and from workloads a guest engine reset drops
 * (handlers.c's gdrst_mmio_write(), scheduler.c's
 * intel_vgpu_clean_workloads()).
 */

#define pr_fmt(fmt) "gvt_mock: " fmt

#include <linux/err.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/interval_tree.h>
#include <linux/ktime.h>
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
 * "narrow writeset|all": command-guided narrowing of the stop-copy re-hash
 * on GVT-g. For each profile below, one mock vGPU of the mock's type runs
 * a migration up to its stop-copy report: its guest pins NARROW_PINNED
 * frames and maps some in the GGTT, dirty logging starts, PRE_COPY is read
 * and reported, then one workload goes through the hooks as kvmgt runs
 * it (the scanner hook on each command, queued, the "GPU" writes what the
 * commands write, kvmgt writes the context image back and the CSB into
 * the render engine's status page, completed), then STOP_COPY. The guest
 * frames gmig reads while STOP_COPY is entered are its re-hash candidates;
 * the device downtime is STOP_COPY to the last byte of device data, as
 * the VMM sees it. The argument names gmig's rehash parameter, which the
 * caller set: "writeset" expects the candidates below, "all" every
 * tracked page. Each profile is a step "narrow-<mode>:<profile>" that
 * also checks the stop-copy report has every frame written and not an
 * untouched one, and logs "narrow <profile>: rehash=<mode> candidates=N
 * tracked=N reported=N downtime_us=N".
 */

static u64 narrow_gma(struct mock_vgpu *m, unsigned int entry)
{
	return m->layout.aperture_base + (u64)entry * MOCK_PAGE;
}

/* A ring that stores to frame 3 (aperture entry 2): a kernel workload. */
static int narrow_scan_store(struct mock_vgpu *m)
{
	return scan_store(m, narrow_gma(m, 2) + 0x40, true, true);
}

/* 2D: blits in a PPGTT batch, then the ring's breadcrumb. */
static int narrow_scan_desktop(struct mock_vgpu *m)
{
	u32 fill[7] = { (2 << 29) | (0x50 << 22) | 5, (3 << 24) | 4096,
			0, (4 << 16) | 1024, 0x9000, 0, 0xffffff };
	u32 copy[10] = { (2 << 29) | (0x53 << 22) | 8, (3 << 24) | 4096,
			 0, (4 << 16) | 1024, 0x9000, 0, 0, 4096, 0x20000,
			 0 };
	u32 pc[6] = { 0x7a000004, (1 << 24) | (1 << 14),
		      lower_32_bits(narrow_gma(m, 1)), 0, 1, 0 };

	return scan_one(m, fill, ARRAY_SIZE(fill), false) ?:
	       scan_one(m, copy, ARRAY_SIZE(copy), false) ?:
	       scan_one(m, pc, ARRAY_SIZE(pc), true);
}

/* 3D: vertex buffers and a draw in a PPGTT batch, the ring's breadcrumb. */
static int narrow_scan_game(struct mock_vgpu *m)
{
	u32 vb[5] = { 0x78080003, (1 << 14) | 64, 0x40000, 0, 4096 };
	u32 draw[7] = { 0x7b000005, 0, 3, 0, 1, 0, 0 };
	u32 pc[6] = { 0x7a000004, (1 << 24) | (1 << 14),
		      lower_32_bits(narrow_gma(m, 1)), 0, 1, 0 };

	return scan_one(m, vb, ARRAY_SIZE(vb), false) ?:
	       scan_one(m, draw, ARRAY_SIZE(draw), false) ?:
	       scan_one(m, pc, ARRAY_SIZE(pc), true);
}

const struct narrow_profile narrow_profiles[] = {
	{ "store", narrow_scan_store, 3, 1, true },
	{ "desktop", narrow_scan_desktop, 9, 4, false },
	{ "game", narrow_scan_game, 9, 32, false },
};

static void narrow_ggtt(struct mock_vgpu *m, unsigned int entry, u64 gfn)
{
	u64 pte = MOCK_PTE(gfn);

	m->ggtt[entry] = pte;
	cb_begin(m);
	if (m->ops->ggtt_write)
		m->ops->ggtt_write(m->priv,
				   m->layout.aperture_base / MOCK_PAGE + entry,
				   0, pte);
	cb_end(m);
}

/* The guest's set-up: pins, GGTT entries, the render status page. */
void narrow_setup(struct mock_vgpu *m)
{
	u32 hwsp = lower_32_bits(narrow_gma(m, NARROW_HWSP_ENTRY));
	unsigned int i;

	get_random_bytes(m->mem, MOCK_MEM_SIZE);
	for (i = 1; i <= NARROW_PINNED; i++)
		pin(m, i);
	for (i = 0; i < MOCK_GGTT_SET; i++)
		narrow_ggtt(m, i, i + 1);
	for (i = 0; i < NARROW_CTX_PAGES; i++)
		narrow_ggtt(m, NARROW_CTX_ENTRY + i, NARROW_CTX_GFN + i);
	narrow_ggtt(m, NARROW_HWSP_ENTRY, NARROW_HWSP_GFN);
	memcpy(m->vregs + NARROW_HWS_PGA_RCS, &hwsp, sizeof(hwsp));
}

/* One workload as kvmgt runs it. */
int narrow_workload(struct scenario *s, struct mock_vgpu *m,
		    const struct narrow_profile *p)
{
	u64 lrca = narrow_gma(m, NARROW_CTX_ENTRY);
	unsigned int i;
	int ret = p->scan(m);

	if (ret)
		return fail(s, "scan_cmd: %d", ret);
	cb_begin(m);
	if (m->ops->workload_queued)
		m->ops->workload_queued(m->priv, 0, lrca);
	cb_end(m);
	for (i = 0; i < p->count; i++)
		touch_frame(m, p->first + i);
	/* update_guest_context(), emulate_csb_update() */
	touch_frame(m, NARROW_CTX_GFN + 1);
	touch_frame(m, NARROW_CTX_GFN + 5);
	touch_frame(m, NARROW_HWSP_GFN);
	cb_begin(m);
	if (m->ops->workload_completed)
		m->ops->workload_completed(m->priv, 0, lrca, 0);
	cb_end(m);
	return 0;
}

int narrow_check(struct scenario *s, const struct narrow_profile *p,
		 bool all, unsigned int candidates)
{
	struct mock_vgpu *m = s->src;
	unsigned int i, want;

	for (i = 0; i < p->count; i++)
		if (!test_bit(p->first + i, s->dirty))
			return fail(s, "page %u written, not reported",
				    p->first + i);
	if (!test_bit(NARROW_CTX_GFN + 1, s->dirty) ||
	    !test_bit(NARROW_HWSP_GFN, s->dirty))
		return fail(s, "kvmgt's writes not reported");
	/*
	 * Unbounded, every tracked page is a candidate, and a candidate is
	 * reported changed or not (Documentation/migration.rst, "A hash is
	 * not a dirty bit"); bounded, frame 5 is neither written nor one.
	 */
	if (!p->bounded) {
		for (i = 1; i <= NARROW_PINNED; i++)
			if (!test_bit(i, s->dirty))
				return fail(s, "page %u not reported (unbounded)",
					    i);
	} else if (test_bit(5, s->dirty)) {
		return fail(s, "page 5 reported, neither written nor a candidate");
	}
	if (all || !p->bounded) {
		if (candidates != NARROW_PINNED)
			return fail(s, "%u candidates, not every tracked page (%u)",
				    candidates, NARROW_PINNED);
		return 0;
	}
	/* the store's page, the context image, the status page */
	want = 1 + NARROW_CTX_PAGES + 1;
	if (candidates != want || !test_bit(p->first, m->reads) ||
	    !test_bit(NARROW_HWSP_GFN, m->reads))
		return fail(s, "%u candidates (%*pbl), not %u (%u, %u-%u, %u)",
			    candidates, MOCK_MEM_PAGES, m->reads, want,
			    p->first, NARROW_CTX_GFN,
			    NARROW_CTX_GFN + NARROW_CTX_PAGES - 1,
			    NARROW_HWSP_GFN);
	return 0;
}

/*
 * STOP_COPY on the source @m, its data read to the end, then the stop-copy
 * report into s->dirty: *@candidates is the number of guest frames gmig
 * read while STOP_COPY was entered (its re-hash candidates), *@downtime
 * the device downtime.
 */
int narrow_stop_copy(struct scenario *s, struct mock_vgpu *m,
		     unsigned int *candidates, s64 *downtime)
{
	struct file *f;
	size_t got;
	ktime_t t0;
	int ret;

	bitmap_zero(m->reads, MOCK_MEM_PAGES);
	WRITE_ONCE(m->log_reads, true);
	t0 = ktime_get();
	f = set_state(s, m, VFIO_DEVICE_STATE_STOP_COPY);
	WRITE_ONCE(m->log_reads, false);
	if (IS_ERR(f))
		return fail(s, "set_state(STOP_COPY): %ld", PTR_ERR(f));
	if (f)
		s->src_data = f;
	ret = read_all(s, s->src_data, &got);
	*downtime = ktime_us_delta(ktime_get(), t0);
	if (ret)
		return ret;
	*candidates = bitmap_weight(m->reads, MOCK_MEM_PAGES);
	return report(s, m);
}

static int narrow_one(struct scenario *s, const struct narrow_profile *p,
		      bool all)
{
	struct mock_vgpu *m;
	unsigned int candidates;
	s64 downtime;
	int ret;

	m = mock_create("narrow", &mock_types[0].src, mock_types[0].vregs_size,
			s->why, sizeof(s->why));
	if (IS_ERR(m))
		return PTR_ERR(m);
	s->src = m;
	narrow_setup(m);
	ret = step_log_start(s) ?: step_pre_copy(s) ?: report(s, m) ?:
	      narrow_workload(s, m, p) ?:
	      narrow_stop_copy(s, m, &candidates, &downtime);
	if (ret)
		return ret;
	pr_info("narrow %s: rehash=%s candidates=%u tracked=%u reported=%u downtime_us=%lld\n",
		p->name, all ? "all" : "writeset", candidates, NARROW_PINNED,
		bitmap_weight(s->dirty, MOCK_MEM_PAGES), downtime);
	return narrow_check(s, p, all, candidates) ?:
	       to_state(s, m, VFIO_DEVICE_STATE_STOP) ?: step_log_stop(s);
}

int mock_narrow(bool all)
{
	const char *mode = all ? "all" : "writeset";
	bool failed = false;
	int i;

	for (i = 0; i < ARRAY_SIZE(narrow_profiles); i++) {
		const struct narrow_profile *p = &narrow_profiles[i];
		struct scenario *s = scenario_new(&mock_types[0]);
		int ret;

		if (!s) {
			pr_err("FAIL narrow-%s:%s: out of memory\n", mode,
			       p->name);
			return -EIO;
		}
		ret = narrow_one(s, p, all);
		if (ret) {
			failed = true;
			pr_err("FAIL narrow-%s:%s: %s\n", mode, p->name,
			       s->why[0] ? s->why : "error");
		} else {
			pr_info("ok narrow-%s:%s\n", mode, p->name);
		}
		scenario_free(s);
	}
	return failed ? -EIO : 0;
}

/*
 * "engine-reset": workloads a guest engine reset drops unrun must not
 * count as in flight for ever (every later report would then re-hash
 * every tracked page). The narrow runs' vGPU set-up; during pre-copy the
 * guest submits the three pending-submit workloads (on engines 0 and 1)
 * and resets both engines through GDRST before any of them runs. The
 * report after the reset re-hashes only what is still recorded: the
 * frames the scans of the dropped workloads named (the first workload of
 * each queue is scanned when it is queued: targets 0, 1 and 3) and the
 * render status page. Then one "store" workload runs, and the stop-copy
 * candidates must be the narrow run's for it.
 */
/*
 * The frames the scans of the three pending-submit workloads name (the
 * first workload of each queue is scanned when it is queued: targets 0, 1
 * and 3) and the render status page.
 */
static const unsigned int pend_scanned[] = { PEND_GFN + 6, PEND_GFN + 7,
					     PEND_GFN + 9, NARROW_HWSP_GFN };

/* A report of @m must re-hash exactly pend_scanned[] (@when says when). */
static int report_rehashes_pend_scanned(struct scenario *s,
					struct mock_vgpu *m, const char *when)
{
	const unsigned int *want = pend_scanned;
	unsigned int i, n;
	int ret;

	bitmap_zero(m->reads, MOCK_MEM_PAGES);
	WRITE_ONCE(m->log_reads, true);
	ret = report(s, m);
	WRITE_ONCE(m->log_reads, false);
	if (ret)
		return ret;
	n = bitmap_weight(m->reads, MOCK_MEM_PAGES);
	for (i = 0; i < ARRAY_SIZE(pend_scanned); i++)
		if (!test_bit(want[i], m->reads))
			n = ~0U;
	if (n != ARRAY_SIZE(pend_scanned))
		return fail(s, "%s: %u re-hashed (%*pbl), not %zu (%u, %u, %u, %u)",
			    when, bitmap_weight(m->reads, MOCK_MEM_PAGES),
			    MOCK_MEM_PAGES, m->reads, ARRAY_SIZE(pend_scanned),
			    want[0], want[1], want[2], want[3]);
	return 0;
}

/* The narrow runs' vGPU set-up, dirty logging, pre-copy, pending-submit. */
static int pend_in_flight(struct scenario *s)
{
	int ret = step_create(s);

	if (ret)
		return ret;
	narrow_setup(s->src);
	return step_log_start(s) ?: step_pre_copy(s) ?: report(s, s->src) ?:
	       step_pending_submit(s);
}

int step_engine_reset(struct scenario *s)
{
	struct mock_vgpu *m;
	unsigned int n;
	s64 downtime;
	int ret;

	ret = pend_in_flight(s);
	if (ret)
		return ret;
	m = s->src;
	mock_engine_reset(m, BIT(0) | BIT(1));
	if (mock_queued(m))
		return fail(s, "%u workloads queued after the engine reset",
			    mock_queued(m));
	ret = report_rehashes_pend_scanned(s, m, "after the reset");
	if (ret)
		return ret;

	ret = narrow_workload(s, m, &narrow_profiles[0]) ?:
	      narrow_stop_copy(s, m, &n, &downtime);
	if (ret)
		return ret;
	pr_info("engine-reset: stop-copy candidates=%u tracked=%u reported=%u\n",
		n, NARROW_PINNED, bitmap_weight(s->dirty, MOCK_MEM_PAGES));
	return narrow_check(s, &narrow_profiles[0], false, n) ?:
	       to_state(s, m, VFIO_DEVICE_STATE_STOP) ?: step_log_stop(s);
}

/*
 * "in-flight": workloads queued and not completed at a report keep what
 * their scans named as candidates, report after report, instead of making
 * every tracked page one (GVT-g runs no command it has not scanned). The
 * engine-reset run's set-up leaves the three pending-submit workloads
 * queued; two reports in a row must each re-hash exactly the frames their
 * scans named and the render status page. A guest engine reset then drops
 * them, and the vGPU is stopped.
 */
int step_in_flight(struct scenario *s)
{
	struct mock_vgpu *m;
	int ret;

	ret = pend_in_flight(s);
	if (ret)
		return ret;
	m = s->src;
	if (mock_queued(m) != 3)
		return fail(s, "%u workloads in flight, not 3", mock_queued(m));
	ret = report_rehashes_pend_scanned(s, m, "in flight") ?:
	      report_rehashes_pend_scanned(s, m, "still in flight");
	if (ret)
		return ret;
	mock_engine_reset(m, BIT(0) | BIT(1));
	return to_state(s, m, VFIO_DEVICE_STATE_STOP) ?: step_log_stop(s);
}

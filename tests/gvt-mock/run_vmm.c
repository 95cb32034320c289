// SPDX-License-Identifier: GPL-2.0
/*
 * gvt_mock's runs: "opregion" and "hashing", with the VMM modelled as a
 * copy of guest memory: kvmgt's own writes of the OpRegion's mailbox
 * (drivers/gpu/drm/i915/gvt/opregion.c) and the pages kvmgt holds pinned
 * read in place (kvmgt.c's intel_gvt_companion_read_pinned(), patch 0021)
 * must both reach the VMM. The step list of the runs of one step each.
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
 * "opregion": kvmgt writes the answer of the OpRegion's SWSCI mailbox into
 * guest memory itself, whenever the guest writes the SWSCI config
 * register (mock_opregion_request_locked()), and no GGTT entry maps the
 * OpRegion (it is guest RAM the guest's firmware set aside, not tracked
 * for the GPU). The VMM is a copy of the source's memory: all of it once
 * dirty logging started (its first pass), then each frame the guest's
 * CPU wrote (the VMM's own dirty log) and each frame a device report
 * names. The guest points ASLS at OPREG_GFN before the migration; during
 * pre-copy it writes a request into the mailbox (sent as a CPU write) and
 * triggers SWSCI: kvmgt's answer must be in the next report. A second
 * request (a capability query, answered with zeros) comes once the frame
 * is known, and must be in the stop-copy report. In the end the VMM's
 * copy of the OpRegion page must be the source's.
 */
#define OPREG_GFN	200	/* not pinned: frames 1..16 are */

/* The VMM sends the frames set in s->dirty (the last report) to @vmm. */
static void vmm_send(struct scenario *s, u8 *vmm)
{
	unsigned int gfn;

	guard(mutex)(&s->src->mem_lock);
	for_each_set_bit(gfn, s->dirty, MOCK_MEM_PAGES)
		memcpy(vmm + gfn * MOCK_PAGE, s->src->mem + gfn * MOCK_PAGE,
		       MOCK_PAGE);
}

/*
 * The start both the "opregion" and "hashing" steps make: a source vGPU
 * named @name, its memory and pins as @setup makes them, migrates up to
 * its first pre-copy report, with the VMM modelled as a copy of guest
 * memory (@vmm: all of it once dirty logging started, then the report's
 * frames). The caller kvfree()s *@vmm, whatever this returns.
 */
static int vmm_pre_copy(struct scenario *s, const char *name,
			void (*setup)(struct mock_vgpu *m), u8 **vmm)
{
	struct mock_vgpu *m;
	int ret;

	m = mock_create(name, &s->type->src, s->type->vregs_size,
			s->why, sizeof(s->why));
	if (IS_ERR(m))
		return PTR_ERR(m);
	s->src = m;
	setup(m);
	*vmm = kvmalloc(MOCK_MEM_SIZE, GFP_KERNEL);
	if (!*vmm)
		return -ENOMEM;
	ret = step_log_start(s);
	if (ret)
		return ret;
	scoped_guard(mutex, &m->mem_lock)
		memcpy(*vmm, m->mem, MOCK_MEM_SIZE);
	ret = step_pre_copy(s) ?: report(s, m);
	if (ret)
		return ret;
	vmm_send(s, *vmm);
	return 0;
}

/* The VMM sends the last report's frames; the OpRegion's must be one. */
static int opregion_sent(struct scenario *s, u8 *vmm, const char *report)
{
	vmm_send(s, vmm);
	if (!test_bit(OPREG_GFN, s->dirty))
		return fail(s, "kvmgt's SWSCI answer in frame %u: not in %s",
			    OPREG_GFN, report);
	return 0;
}

/*
 * The guest's CPU writes @scic and @parm into the mailbox (the VMM sends
 * the page), then SWSCI; the device report that follows goes to @vmm.
 */
static int opregion_request(struct scenario *s, u8 *vmm, u32 scic, u32 parm)
{
	struct mock_vgpu *m = s->src;
	u64 gpa = OPREG_GFN * MOCK_PAGE;
	int ret;

	mock_wr32(m, gpa + MOCK_OPREGION_SCIC, scic);
	mock_wr32(m, gpa + MOCK_OPREGION_PARM, parm);
	scoped_guard(mutex, &m->mem_lock)
		memcpy(vmm + gpa, m->mem + gpa, MOCK_PAGE);
	scoped_guard(mutex, &m->lock)
		ret = mock_opregion_request_locked(m, MOCK_SWSCI_SELECT |
						   MOCK_SWSCI_TRIGGER);
	if (ret)
		return fail(s, "SWSCI request: %d", ret);
	if (mock_rd32(m, gpa + MOCK_OPREGION_SCIC) == scic)
		return fail(s, "SWSCI: SCIC %#x not answered", scic);
	return 0;
}

/* Guest memory at random, frames 1..16 pinned, ASLS at OPREG_GFN. */
static void opregion_setup(struct mock_vgpu *m)
{
	unsigned int n;

	get_random_bytes(m->mem, MOCK_MEM_SIZE);
	for (n = 1; n <= 16; n++)
		pin(m, n);
	scoped_guard(mutex, &m->lock)
		mock_opregion_base_locked(m, OPREG_GFN * MOCK_PAGE);
}

static int step_opregion(struct scenario *s)
{
	u64 gpa = OPREG_GFN * MOCK_PAGE;
	struct mock_vgpu *m;
	unsigned int n;
	s64 downtime;
	u8 *vmm = NULL;
	int ret;

	ret = vmm_pre_copy(s, "opregion", opregion_setup, &vmm);
	if (ret)
		goto out;
	m = s->src;

	/* a runtime service (func 2): answered "failed", exit bits cleared */
	ret = opregion_request(s, vmm, 0xe0 | (2 << 1) | 1, 0x1234) ?:
	      report(s, m) ?: opregion_sent(s, vmm, "the next report");
	if (ret)
		goto out;
	/* GETBIOSDATA, supported calls: answered with zeros */
	ret = opregion_request(s, vmm, (4 << 1) | 1, 0x55) ?:
	      narrow_stop_copy(s, m, &n, &downtime) ?:
	      opregion_sent(s, vmm, "the stop-copy report");
	if (ret)
		goto out;
	scoped_guard(mutex, &m->mem_lock)
		n = memcmp(vmm + gpa, m->mem + gpa, MOCK_PAGE);
	if (n) {
		ret = fail(s, "the destination's OpRegion page differs from the source's");
		goto out;
	}
	ret = to_state(s, m, VFIO_DEVICE_STATE_STOP) ?: step_log_stop(s);
out:
	kvfree(vmm);
	return ret;
}

/*
 * "hashing inplace|copy" (gmig's hashing parameter, which the caller set):
 * on GVT-g, hashing in place reads the pages kvmgt holds pinned where they
 * are (patch 0021, intel_gvt_companion_read_pinned()) and copies the rest
 * with rw_gpa; the copy path copies them all. One mock vGPU, the narrow
 * runs' set-up (frames 1..250 pinned and tracked), migrates up to its
 * stop-copy report with the VMM modelled as a copy of guest memory (its
 * first pass, then the frames each report names). After pre-copy the
 * guest unpins frames 5..8, which stay tracked: gmig must read them with
 * rw_gpa. A workload whose writes are unbounded (the "game" profile) makes
 * every tracked page a re-hash candidate of the next report; then a
 * bounded one ("store") runs before the stop. Checked: the VMM's copy ends
 * equal to guest memory (no page lost), frames 5..8 were read and not
 * through read_pinned, and read_pinned handed out pages (every other
 * tracked frame in the unbounded report) with "inplace", none with "copy".
 * Logs "hashing <mode>: pages_read_pinned=N read_pinned_calls=N rw_gpa=N".
 */
#define HASHING_UNPINNED	5	/* frames 5..8 */
#define HASHING_UNPINNED_N	4

static int hashing_reads(struct scenario *s, struct mock_vgpu *m, bool inplace)
{
	unsigned int g, pinned = 0;

	for (g = 1; g <= NARROW_PINNED; g++) {
		bool gone = g - HASHING_UNPINNED < HASHING_UNPINNED_N;

		if (!test_bit(g, m->reads))
			return fail(s, "frame %u not re-hashed by an unbounded report", g);
		if (gone && test_bit(g, m->reads_pinned))
			return fail(s, "frame %u read in place after kvmgt unpinned it", g);
		if (!gone && inplace && !test_bit(g, m->reads_pinned))
			return fail(s, "frame %u, pinned, not read in place", g);
		pinned += test_bit(g, m->reads_pinned);
	}
	if (!inplace && pinned)
		return fail(s, "%u frames read in place with hashing=copy", pinned);
	return 0;
}

static int step_hashing(struct scenario *s, bool inplace)
{
	const struct narrow_profile *game = &narrow_profiles[2];
	const struct narrow_profile *store = &narrow_profiles[0];
	unsigned int n;
	s64 downtime;
	struct mock_vgpu *m;
	u8 *vmm = NULL;
	int ret;

	ret = vmm_pre_copy(s, "hashing", narrow_setup, &vmm);
	if (ret)
		goto out;
	m = s->src;

	/* kvmgt unpins what it pinned, a frame at a time here */
	for (n = 0; n < HASHING_UNPINNED_N; n++)
		pin_range(m, HASHING_UNPINNED + n, 1, false);
	ret = narrow_workload(s, m, game);
	if (ret)
		goto out;
	bitmap_zero(m->reads, MOCK_MEM_PAGES);
	bitmap_zero(m->reads_pinned, MOCK_MEM_PAGES);
	WRITE_ONCE(m->log_reads, true);
	ret = report(s, m);
	WRITE_ONCE(m->log_reads, false);
	if (ret)
		goto out;
	vmm_send(s, vmm);
	ret = hashing_reads(s, m, inplace) ?:
	      narrow_workload(s, m, store) ?:
	      narrow_stop_copy(s, m, &n, &downtime);
	if (ret)
		goto out;
	vmm_send(s, vmm);
	pr_info("hashing %s: pages_read_pinned=%lld read_pinned_calls=%lld rw_gpa=%d stopcopy_candidates=%u downtime_us=%lld\n",
		inplace ? "inplace" : "copy", atomic64_read(&m->pinned_reads),
		atomic64_read(&m->pinned_calls), atomic_read(&m->rw_calls), n,
		downtime);
	scoped_guard(mutex, &m->mem_lock)
		n = memcmp(vmm, m->mem, MOCK_MEM_SIZE);
	if (n) {
		ret = fail(s, "the VMM's copy of guest memory differs: a page was lost");
		goto out;
	}
	if (inplace != (atomic64_read(&m->pinned_reads) > 0)) {
		ret = fail(s, "%lld pages read in place with hashing=%s",
			   atomic64_read(&m->pinned_reads),
			   inplace ? "inplace" : "copy");
		goto out;
	}
	ret = to_state(s, m, VFIO_DEVICE_STATE_STOP) ?: step_log_stop(s);
	if (!ret && atomic_read(&m->reentered))
		ret = fail(s, "%d calls into GVT-g from callbacks",
			   atomic_read(&m->reentered));
out:
	kvfree(vmm);
	return ret;
}

static int step_hashing_inplace(struct scenario *s)
{
	return step_hashing(s, true);
}

static int step_hashing_copy(struct scenario *s)
{
	return step_hashing(s, false);
}

/* Steps run on their own, each on a new scenario ("engine-reset"). */
const struct step single_steps[] = {
	{ "engine-reset", step_engine_reset, false },
	{ "in-flight", step_in_flight, false },
	{ "opregion", step_opregion, false },
	{ "hashing-inplace", step_hashing_inplace, false },
	{ "hashing-copy", step_hashing_copy, false },
	{ NULL }
};

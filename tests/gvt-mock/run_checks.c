// SPDX-License-Identifier: GPL-2.0
/*
 * gvt_mock's runs: the migration's steps from the destination's restore
 * on, and the checks over the whole run, h) to k) (see main.c): the
 * re-created workloads, the moved fences, planes and status pages, GTT
 * MMIO and ELSP at the source's addresses, refused and failed restores,
 * the scanner hook's translation, a corrupt stream, resets, the
 * interface's rules; the step lists of the default run and of "pin-lost".
 * No GVT-g file: this is the VFIO core and QEMU, with the guest and
 * GVT-g of main.c's model.
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
 * The destination re-created the source's pending workloads at the
 * restore, in order and as the guest submitted them, their context images
 * and rings at the same offsets of its own slices; none ran yet (its
 * scheduling is stopped until RUNNING).
 */
static int step_pending_recreated(struct scenario *s)
{
	const struct intel_gvt_vgpu_layout *sl = &s->src->layout;
	const struct intel_gvt_vgpu_layout *dl = &s->dst->layout;
	struct mock_workload *a, *b;
	int e, n = 0;

	if (mock_queued(s->dst) != mock_queued(s->src) || !mock_queued(s->src))
		return fail(s, "dst has %u workloads queued, src %u",
			    mock_queued(s->dst), mock_queued(s->src));
	for (e = 0; e < MOCK_ENGINES; e++) {
		b = list_first_entry(&s->dst->q[e], struct mock_workload, list);
		list_for_each_entry(a, &s->src->q[e], list) {
			if (memcmp(&a->w, &b->w, sizeof(a->w)))
				return fail(s, "workload %d: %08x %#x-%#x, not %08x %#x-%#x",
					    n, b->w.desc[0], b->w.rb_head,
					    b->w.rb_tail, a->w.desc[0],
					    a->w.rb_head, a->w.rb_tail);
			if (b->ctx_gma - dl->aperture_base !=
			    a->ctx_gma - sl->aperture_base ||
			    b->rb_start - dl->hidden_base !=
			    a->rb_start - sl->hidden_base)
				return fail(s, "workload %d: ctx %#llx ring %#llx, src %#llx %#llx",
					    n, b->ctx_gma, b->rb_start,
					    a->ctx_gma, a->rb_start);
			b = list_next_entry(b, list);
			n++;
		}
	}
	if (s->dst->ndone)
		return fail(s, "%u workloads ran on dst while it was stopped",
			    s->dst->ndone);
	return 0;
}

/*
 * Each re-created workload completes on the destination and writes what
 * it would have written on the source: the source runs its queue too (as
 * if it had not been migrated), and after each workload the targets hold
 * the same values on both, and in the end the whole guest memory is the
 * same.
 */
static int step_pending_complete(struct scenario *s)
{
	static const u32 want[3][MOCK_TARGETS] = {
		{ 0xa1, 0xa2 }, { 0xa3, 0xa2, 0xa4 }, { 0xa3, 0xa2, 0xa4, 0xb1 },
	};
	struct mock_vgpu *d = s->dst, *m = s->src;
	int nd = mock_gpu_run(d, false), ns = mock_gpu_run(m, true);
	unsigned int i, t;

	pr_info("pending: %d workloads completed on dst, %d on src\n", nd, ns);
	if (nd != 3 || ns != 3 || d->run_errors || m->run_errors)
		return fail(s, "%d workloads ran on dst (%d failed), %d on src (%d failed), not 3",
			    nd, d->run_errors, ns, m->run_errors);
	for (i = 0; i < 3; i++) {
		struct mock_done *a = &m->done[i], *b = &d->done[i];

		if (a->engine != b->engine || a->desc != b->desc ||
		    memcmp(a->t, b->t, sizeof(a->t)))
			return fail(s, "workload %u: %u/%08x %x %x %x %x, src %u/%08x %x %x %x %x",
				    i, b->engine, b->desc, b->t[0], b->t[1],
				    b->t[2], b->t[3], a->engine, a->desc,
				    a->t[0], a->t[1], a->t[2], a->t[3]);
		for (t = 0; t < MOCK_TARGETS; t++)
			if (want[i][t] && b->t[t] != want[i][t])
				return fail(s, "workload %u left %#x at target %u, not %#x",
					    i, b->t[t], t, want[i][t]);
	}
	if (memcmp(d->mem, m->mem, MOCK_MEM_SIZE))
		return fail(s, "dst's guest memory differs from src's");
	return 0;
}

/*
 * fence: after the move the registers hold the guest's values (the
 * source's addresses) and the hardware fences the same ranges of the
 * destination's aperture; a fence the guest writes after the move goes
 * there too, and one over the destination's aperture outside the guest's
 * GM is disabled in the hardware.
 */
static int step_fence(struct scenario *s)
{
	struct mock_vgpu *d = s->dst, *m = s->src;
	size_t last = d->layout.aperture_size / MOCK_PAGE - 1;
	u64 v, want;
	int i;

	for (i = 0; i < d->layout.fence_count; i++) {
		want = m->fences[i] & MOCK_FENCE_VALID ?
		       fence_moved(m->fences[i], m, d) : m->fences[i];
		if (d->fences[i] != m->fences[i])
			return fail(s, "fence %d register %#llx, not the guest's %#llx",
				    i, d->fences[i], m->fences[i]);
		if (d->hw_fence[i] != want)
			return fail(s, "fence %d: hardware %#llx, not %#llx (guest's %#llx)",
				    i, d->hw_fence[i], want, m->fences[i]);
	}
	v = addr_fence(m, 48, 2, false);
	mock_fence_mmio_write(d, 3, v);
	if (d->hw_fence[3] != fence_moved(v, m, d))
		return fail(s, "fence 3 written after the move: hardware %#llx, not %#llx",
			    d->hw_fence[3], fence_moved(v, m, d));
	if (mock_gm_valid(m, ap_gma(d, last), 1))
		return fail(s, "dst's last aperture entry is in the guest's GM");
	mock_fence_mmio_write(d, 3, addr_fence(d, last, 1, false));
	if (d->hw_fence[3])
		return fail(s, "a fence outside the guest's GM reached the hardware: %#llx",
			    d->hw_fence[3]);
	return 0;
}

/*
 * display-base: the primary plane and the cursor decode on the
 * destination to the same offsets of its aperture and the same guest
 * frames as on the source.
 */
static int step_display_base(struct scenario *s)
{
	struct mock_vgpu *d = s->dst, *m = s->src;
	u32 sb, db;
	u64 sg, dg;
	int c, ret;

	for (c = 0; c < 2; c++) {
		const char *what = c ? "cursor" : "primary plane";

		ret = mock_decode_plane(m, c, &sb, &sg);
		if (ret)
			return fail(s, "%s on src: %d", what, ret);
		ret = mock_decode_plane(d, c, &db, &dg);
		if (ret)
			return fail(s, "%s on dst: %d (the guest's base %#x)", what,
				    ret, sb);
		if (db - d->layout.aperture_base != sb - m->layout.aperture_base ||
		    dg != sg)
			return fail(s, "%s on dst: base %#x gpa %#llx, on src %#x %#llx",
				    what, db, dg, sb, sg);
	}
	return 0;
}

/*
 * status-page: each engine's status page is the page of the
 * destination's GM at the place the guest's HWS_PGA names (the register
 * keeps the guest's value), the workloads that completed on both sides
 * wrote their CSB into the same guest frames, and the guest's HWS_PGA
 * write after the move passes GVT-g's range check.
 */
static int step_status_page(struct scenario *s)
{
	struct mock_vgpu *d = s->dst, *m = s->src;
	int e;

	for (e = 0; e < MOCK_ENGINES; e++) {
		u64 guest = ap_gma(m, ADDR_HWSP + e);

		if (mock_vreg(d, MOCK_HWS_PGA(e)) != lower_32_bits(guest))
			return fail(s, "engine %d: HWS_PGA %#x, not the guest's %#llx",
				    e, mock_vreg(d, MOCK_HWS_PGA(e)), guest);
		if (d->hws_pga[e] != ap_gma(d, ADDR_HWSP + e))
			return fail(s, "engine %d: status page %#x, not %#llx (guest's %#llx)",
				    e, d->hws_pga[e], ap_gma(d, ADDR_HWSP + e),
				    guest);
	}
	for (e = 0; e < 2; e++)
		if (d->csb_gpa[e] != (ADDR_GFN + e) * MOCK_PAGE ||
		    m->csb_gpa[e] != d->csb_gpa[e])
			return fail(s, "engine %d: CSB in guest frame %#llx on dst, %#llx on src",
				    e, d->csb_gpa[e] >> 12, m->csb_gpa[e] >> 12);
	if (!d->csb_writes || d->csb_writes != m->csb_writes)
		return fail(s, "%u CSB writes on dst, %u on src", d->csb_writes,
			    m->csb_writes);
	if (mock_hws_pga_write(d, 2, lower_32_bits(ap_gma(m, ADDR_HWSP + 2))) ||
	    d->hws_pga[2] != ap_gma(d, ADDR_HWSP + 2))
		return fail(s, "the guest's HWS_PGA write after the move: status page %#x",
			    d->hws_pga[2]);
	return 0;
}

/*
 * refused-restore: a part kvmgt's check refuses leaves the destination
 * untouched (gmig checks every part before it applies the first); a part
 * whose apply fails after its check (memory) leaves it reset, with gmig's
 * map_gma back to the identity. A reset then brings it back to RUNNING.
 */
/* vgpu_reset, as after a VFIO_DEVICE_RESET: @m must be RUNNING again. */
static int reset_to_running(struct scenario *s, struct mock_vgpu *m)
{
	if (m->ops->vgpu_reset)
		m->ops->vgpu_reset(m->priv);
	if (get_state(m) != VFIO_DEVICE_STATE_RUNNING)
		return fail(s, "get_state %d after vgpu_reset", get_state(m));
	return 0;
}

/*
 * Resumes the source's stream on the destination with *@knob set to @part
 * (refuse_check or fail_apply) for the RESUMING -> STOP arc, which must
 * fail; @what names the knob in the failure message.
 */
static int resume_must_fail(struct scenario *s, int *knob,
			    enum intel_gvt_state part, const char *what)
{
	struct file *f;
	int werr, ret;

	*knob = part;
	ret = resume(s, s->stream, &werr);
	f = ret ? NULL : set_state(s, s->dst, VFIO_DEVICE_STATE_STOP);
	*knob = -1;
	if (ret)
		return ret;
	if (!IS_ERR(f))
		return fail(s, "set_state(STOP) succeeded with %s part %d",
			    what, part);
	return 0;
}

static int step_refused_restore(struct scenario *s)
{
	struct mock_vgpu *d = s->dst;
	u64 gma = s->src->layout.aperture_base + MOCK_PAGE;
	unsigned int i;
	int ret;

	ret = resume_must_fail(s, &d->refuse_check, INTEL_GVT_STATE_EXECLIST,
			       "a check refusing");
	if (ret)
		return ret;
	if (d->restores != s->restores_before)
		return fail(s, "%u parts applied before kvmgt refused the execlist part",
			    d->restores - s->restores_before);
	if (d->ops->vgpu_reset)
		d->ops->vgpu_reset(d->priv);

	ret = resume_must_fail(s, &d->fail_apply, INTEL_GVT_STATE_FENCES,
			       "an apply failing");
	if (ret)
		return ret;
	if (d->restores - s->restores_before != 3)
		return fail(s, "%u parts applied, not 3 (the third failed)",
			    d->restores - s->restores_before);
	for (i = 0; i < d->layout.fence_count; i++)
		if (d->hw_fence[i] || d->fences[i])
			return fail(s, "fence %u left after the failed restore", i);
	for (i = 0; i < MOCK_ENGINES; i++)
		if (d->hws_pga[i])
			return fail(s, "status page %#x left after the failed restore",
				    d->hws_pga[i]);
	for (i = 0; i < d->ggtt_entries; i++)
		if (d->ggtt[i])
			return fail(s, "GGTT entry %u left after the failed restore", i);
	if (mock_map_gma(d, &gma, MOCK_PAGE) ||
	    gma != s->src->layout.aperture_base + MOCK_PAGE)
		return fail(s, "map_gma still moves the source's addresses (to %#llx)",
			    gma);
	return reset_to_running(s, d);
}

/*
 * After the move the guest keeps the source's offsets of its GGTT
 * entries: a GTT MMIO access there lands on the destination's entry at
 * the same place of its GM, one at an offset of the destination's own GM
 * outside the guest's view (the last aperture entry: the types' slices
 * overlap elsewhere) is dropped and reads zero.
 */
static int step_ggtt_mmio_src_offset(struct scenario *s)
{
	struct mock_vgpu *d = s->dst;
	size_t last = d->layout.aperture_size / MOCK_PAGE - 1;
	u64 at = gtt_off(ap_gma(s->src, 6)), own = gtt_off(ap_gma(d, last));
	u64 before = d->ggtt[last], got;

	mock_ggtt_mmio_write(d, at, MOCK_PTE(50));
	if (d->ggtt[6] != MOCK_PTE(50))
		return fail(s, "GGTT write at the source's entry 6: dst entry 6 is %#llx",
			    d->ggtt[6]);
	got = mock_ggtt_mmio_read(d, at);
	if (got != MOCK_PTE(50))
		return fail(s, "GGTT read at the source's entry 6: %#llx", got);
	if (mock_gm_valid(s->src, ap_gma(d, last), 1))
		return fail(s, "dst's last aperture entry is in the guest's GM");
	mock_ggtt_mmio_write(d, own, MOCK_PTE(51));
	if (d->ggtt[last] != before)
		return fail(s, "a GGTT write outside the guest's GM changed dst entry %zu",
			    last);
	got = mock_ggtt_mmio_read(d, own);
	if (got)
		return fail(s, "GGTT read outside the guest's GM: %#llx", got);
	return 0;
}

/*
 * The guest submits again after the move, with the source's LRCA and
 * ring start: the workload is created at the destination's places and
 * its store lands in the guest frame the source's address named.
 */
static int step_elsp_after_move(struct scenario *s)
{
	struct mock_vgpu *d = s->dst;
	u64 ring_a = (PEND_GFN + 4) * MOCK_PAGE;
	int ret, n;

	pend_sdi(d, ring_a, 0x40, pend_target(s->src, 1), 0xa5);
	mock_wr32(d, (PEND_GFN + 1) * MOCK_PAGE + MOCK_CTX_TAIL, 0x50);
	ret = mock_elsp(d, 0, pend_desc(s->src, PEND_CTX_A), 0xa);
	if (ret)
		return fail(s, "ELSP submission at the source's LRCA: %d", ret);
	n = mock_gpu_run(d, false);
	if (n != 1 || d->run_errors)
		return fail(s, "%d workloads ran (%d failed), not 1", n,
			    d->run_errors);
	if (mock_rd32(d, d->target_gpa[1]) != 0xa5)
		return fail(s, "target 1 holds %#x, not 0xa5",
			    mock_rd32(d, d->target_gpa[1]));
	return 0;
}

int step_resume_running(struct scenario *s)
{
	unsigned int starts = s->dst->starts;
	int ret = to_state(s, s->dst, VFIO_DEVICE_STATE_RUNNING);

	if (ret)
		return ret;
	if (s->dst->starts == starts)
		return fail(s, "start_schedule not called on dst");
	if (s->dst->stopped)
		return fail(s, "dst still stopped");
	return 0;
}

/* h) */
static int scan(struct scenario *s, struct mock_vgpu *m, u64 addr,
		u64 *out)
{
	u32 cmd[4] = { (0x20 << 23) | (1 << 22) | 2, lower_32_bits(addr),
		       upper_32_bits(addr), 0xcafe };
	int ret;

	cb_begin(m);
	ret = m->ops->scan_cmd ? m->ops->scan_cmd(m->priv, cmd, 4, true) :
				 -EOPNOTSUPP;
	cb_end(m);
	*out = ((u64)cmd[2] << 32) | cmd[1];
	if (cmd[0] != ((0x20 << 23) | (1 << 22) | 2) || cmd[3] != 0xcafe)
		return fail(s, "scan_cmd changed the header or the data");
	return ret;
}

static int step_scan_translate(struct scenario *s)
{
	u64 from = s->src->layout.aperture_base + 0x40;
	u64 to = s->dst->layout.aperture_base + 0x40, got;
	int ret = scan(s, s->dst, from, &got);

	if (ret)
		return s->why[0] ? ret : fail(s, "scan_cmd: %d", ret);
	if (got != to)
		return fail(s, "address %#llx became %#llx, not %#llx", from,
			    got, to);
	return 0;
}

static int step_scan_foreign(struct scenario *s)
{
	u64 got;
	int ret = scan(s, s->dst, 0x1000, &got);

	if (s->why[0])
		return ret;
	if (ret >= 0)
		return fail(s, "scan_cmd of address 0x1000 returned %d", ret);
	if (got != 0x1000)
		return fail(s, "address 0x1000 became %#llx", got);
	return 0;
}

static int step_scan_src(struct scenario *s)
{
	u64 addr = s->src->layout.aperture_base + 0x40, got;
	int ret = scan(s, s->src, addr, &got);

	if (ret)
		return s->why[0] ? ret : fail(s, "scan_cmd: %d", ret);
	if (got != addr)
		return fail(s, "address %#llx became %#llx", addr, got);
	return 0;
}

/* i) */
static int step_corrupt_stream(struct scenario *s)
{
	struct file *f;
	int werr, ret;
	u8 *bad;

	bad = kvmemdup(s->stream, s->stream_len, GFP_KERNEL);
	if (!bad)
		return fail(s, "out of memory");
	/* in the payload: the middle may fall on a header */
	bad[s->stream_len / 2 + s->stream_len / 4] ^= 0x10;
	ret = resume(s, bad, &werr);
	kvfree(bad);
	if (ret)
		return ret;
	if (werr)
		pr_info("dst: write of the corrupt stream: %d\n", werr);
	f = set_state(s, s->dst, VFIO_DEVICE_STATE_STOP);
	if (!IS_ERR(f))
		return fail(s, "set_state(STOP) accepted a corrupt stream");
	if (s->dst->restores != s->restores_before)
		return fail(s, "restore_state called for a corrupt stream");
	return 0;
}

static int step_reset_after_refusal(struct scenario *s)
{
	return reset_to_running(s, s->dst);
}

/*
 * After vgpu_reset the guest starts over at the destination's own layout:
 * its own addresses pass unchanged (the source's translation is gone).
 */
static int step_scan_after_reset(struct scenario *s)
{
	u64 addr = s->dst->layout.aperture_base + 0x40, got;
	int ret = scan(s, s->dst, addr, &got);

	if (ret)
		return s->why[0] ? ret : fail(s, "scan_cmd after reset: %d", ret);
	if (got != addr)
		return fail(s, "address %#llx became %#llx after reset", addr,
			    got);
	return 0;
}

static int step_resume_again(struct scenario *s)
{
	memset(s->dst->vregs, 0, s->dst->vregs_size);
	return step_resume(s) ?: check_restored(s) ?: step_resume_running(s);
}

/* j) */
static int step_reset_mid_migration(struct scenario *s)
{
	struct mock_vgpu *m = s->src;
	unsigned int stops, starts;
	struct file *f, *data;
	ssize_t n;
	size_t len = s->stream_len, got;
	u8 byte;
	int ret;

	ret = to_state(s, m, VFIO_DEVICE_STATE_RUNNING);
	if (ret)
		return ret;
	if (m->stopped)
		return fail(s, "src stopped in RUNNING");
	f = set_state(s, m, VFIO_DEVICE_STATE_PRE_COPY);
	if (IS_ERR_OR_NULL(f))
		return fail(s, "set_state(PRE_COPY): %ld", PTR_ERR(f));
	data = f;
	ret = read_all(s, f, &got);
	s->stream_len = len;
	if (ret)
		return ret;
	stops = m->stops;
	f = set_state(s, m, VFIO_DEVICE_STATE_STOP_COPY);
	if (IS_ERR(f))
		return fail(s, "set_state(STOP_COPY): %ld", PTR_ERR(f));
	if (f)
		data = f;
	if (m->stops != stops + 1)
		return fail(s, "stop_schedule not called");
	starts = m->starts;
	if (m->ops->vgpu_reset)
		m->ops->vgpu_reset(m->priv);
	if (m->starts == starts || m->stopped)
		return fail(s, "start_schedule not called by vgpu_reset");
	if (get_state(m) != VFIO_DEVICE_STATE_RUNNING)
		return fail(s, "get_state %d after vgpu_reset", get_state(m));
	n = kernel_read(data, &byte, 1, NULL);
	if (n != 0 && n != -ENODEV)
		return fail(s, "read of the stale data fd: %zd", n);
	return 0;
}

int step_log_stop(struct scenario *s)
{
	int ret = s->src->vdev.log_ops->log_stop(&s->src->vdev);

	return ret ? fail(s, "log_stop: %d", ret) : 0;
}

/*
 * A pin gmig could not record (no memory: tests/gvt-mock.sh injects it by
 * writing "fail_pin_records 1" to gmig's debugfs gvt file before the run)
 * is a page the GPU can write that gmig's list of pins misses: dirty
 * logging must be refused until it is unpinned, and start again after.
 */
static int step_pin_record_lost(struct scenario *s)
{
	struct interval_tree_node node = { .start = 0,
					   .last = MOCK_MEM_SIZE - 1 };
	struct rb_root_cached root = RB_ROOT_CACHED;
	struct mock_vgpu *m = s->src;
	struct vfio_device *vdev = &m->vdev;
	u64 page_size = MOCK_PAGE;
	int ret;

	interval_tree_insert(&node, &root);
	pin(m, 200);
	ret = vdev->log_ops->log_start(vdev, &root, 1, &page_size);
	if (!ret) {
		vdev->log_ops->log_stop(vdev);
		return fail(s, "log_start succeeded with a pin gmig has no record of");
	}
	if (ret != -ENOMEM)
		return fail(s, "log_start with a lost pin: %d, expected -ENOMEM", ret);
	pin_range(m, 200, 1, false);
	ret = vdev->log_ops->log_start(vdev, &root, 1, &page_size);
	if (ret)
		return fail(s, "log_start after the lost pin was unpinned: %d", ret);
	ret = vdev->log_ops->log_stop(vdev);
	return ret ? fail(s, "log_stop: %d", ret) : 0;
}

/* k) */
static int step_bad_state(struct scenario *s)
{
	int before = get_state(s->src);
	struct file *f = set_state(s, s->src, 99);

	if (!IS_ERR(f))
		return fail(s, "set_state(99) returned %p", f);
	if (get_state(s->src) != before)
		return fail(s, "state %d after set_state(99), was %d",
			    get_state(s->src), before);
	return 0;
}

/*
 * The interface's rules over the whole run: every call was for a mock
 * vGPU, and none into GVT-g came from a callback GVT-g makes under the
 * vGPU's lock (it would deadlock on kvmgt).
 */
int step_no_reentry(struct scenario *s)
{
	struct mock_vgpu *v[] = { s->src, s->dst };
	int i;

	pr_info("src: %u stops, %u starts, %u saves, %d rw_gpa\n",
		s->src->stops, s->src->starts, s->src->saves,
		atomic_read(&s->src->rw_calls));
	pr_info("dst: %u stops, %u starts, %u restores, %d rw_gpa\n",
		s->dst->stops, s->dst->starts, s->dst->restores,
		atomic_read(&s->dst->rw_calls));
	if (atomic_read(&bad_vgpu_ptr))
		return fail(s, "%d calls with a foreign vGPU pointer",
			    atomic_read(&bad_vgpu_ptr));
	for (i = 0; i < ARRAY_SIZE(v); i++)
		if (atomic_read(&v[i]->reentered))
			return fail(s, "%s: %d calls into GVT-g from callbacks",
				    v[i]->name, atomic_read(&v[i]->reentered));
	return 0;
}

/*
 * A part saved while the vGPU runs is only a snapshot (patch 0005): the
 * stop-copy image, which the destination applies, must be saved after
 * intel_gvt_companion_stop_schedule(), all four parts of it (twice: the
 * reset-mid-migration step takes a second one). _restore_state() wants a
 * stopped vGPU.
 */
static int step_save_stopped(struct scenario *s)
{
	pr_info("src: %u saves while scheduled (pre-copy), %u stopped\n",
		s->src->running_saves, s->src->stopped_saves);
	if (s->src->stopped_saves < 2 * 4)
		return fail(s, "src: only %u of %u saves while stopped",
			    s->src->stopped_saves, s->src->saves);
	return 0;
}

int step_restore_stopped(struct scenario *s)
{
	if (s->dst->bad_restores)
		return fail(s, "dst: %u of %u restores while scheduled",
			    s->dst->bad_restores, s->dst->restores);
	return 0;
}

const struct step steps[] = {
	{ "register", step_register, true },
	{ "create", step_create, true },
	{ "guest-setup", step_guest_setup, true },
	{ "log-start", step_log_start, true },
	{ "pre-copy", step_pre_copy, true },
	{ "pre-copy-report", step_pre_copy_report, false },
	{ "gpu-work", step_gpu_work, false },
	{ "pending-submit", step_pending_submit, false },
	{ "guest-addresses", step_guest_addresses, false },
	{ "data-size", step_data_size, false },
	{ "stop-copy", step_stop_copy, true },
	{ "data-size-true", step_data_size_true, false },
	{ "stop-copy-report", step_stop_copy_report, false },
	{ "src-stop", step_src_stop, false },
	{ "resume", step_resume, false },
	{ "resume-state", check_restored, false },
	{ "fence", step_fence, false },
	{ "display-base", step_display_base, false },
	{ "pending-recreated", step_pending_recreated, false },
	{ "resume-running", step_resume_running, false },
	{ "pending-complete", step_pending_complete, false },
	{ "status-page", step_status_page, false },
	{ "ggtt-mmio-src-offset", step_ggtt_mmio_src_offset, false },
	{ "elsp-after-move", step_elsp_after_move, false },
	{ "scan-cmd-translate", step_scan_translate, false },
	{ "scan-cmd-foreign", step_scan_foreign, false },
	{ "scan-cmd-src", step_scan_src, false },
	{ "corrupt-stream", step_corrupt_stream, false },
	{ "reset-after-refusal", step_reset_after_refusal, false },
	{ "scan-after-reset", step_scan_after_reset, false },
	{ "resume-again", step_resume_again, false },
	{ "refused-restore", step_refused_restore, false },
	{ "reset-mid-migration", step_reset_mid_migration, false },
	{ "log-stop", step_log_stop, false },
	{ "bad-state", step_bad_state, false },
	{ "no-reentry", step_no_reentry, false },
	{ "save-only-stopped", step_save_stopped, false },
	{ "restore-only-stopped", step_restore_stopped, false },
	{ NULL }
};

/*
 * "pin-lost": the lost pin record, once gmig's fault injection is armed.
 * Its step makes the first pin of the run (no guest-setup, which pins).
 */
const struct step pin_lost_steps[] = {
	{ "register", step_register, true },
	{ "create", step_create, true },
	{ "pin-record-lost", step_pin_record_lost, false },
	{ NULL }
};

// SPDX-License-Identifier: GPL-2.0
/*
 * gvt_mock's runs: the migration's steps up to the destination's restore,
 * a) to g) (see main.c): the vGPUs, what the source's guest sets up and
 * GVT-g saw of it, dirty logging, pre-copy, the GPU's work, workloads
 * pending at the stop, the graphics addresses outside command buffers,
 * stop-copy and the stream written into the destination. No GVT-g file:
 * this is the VFIO core and QEMU on the device, and the guest and GVT-g
 * calling the hooks of drivers/gpu/drm/i915/gvt/ (kvmgt.c, gtt.c,
 * scheduler.c, cmd_parser.c) as patches/gvt places them.
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

int step_register(struct scenario *s)
{
	guard(mutex)(&companion_lock);
	if (!companion)
		return fail(s, "no companion registered (is gmig loaded?)");
	return 0;
}

int check_vdev(struct scenario *s, struct mock_vgpu *m)
{
	const u32 flags = VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P |
			  VFIO_MIGRATION_PRE_COPY;
	const struct vfio_migration_ops *mo = m->vdev.mig_ops;
	const struct vfio_log_ops *lo = m->vdev.log_ops;

	if (m->vdev.migration_flags != flags)
		return fail(s, "%s: migration_flags %#x, not %#x", m->name,
			    m->vdev.migration_flags, flags);
	if (!mo || !mo->migration_set_state || !mo->migration_get_state)
		return fail(s, "%s: no mig_ops", m->name);
	if (!lo || !lo->log_start || !lo->log_stop || !lo->log_read_and_clear)
		return fail(s, "%s: no log_ops", m->name);
	if (get_state(m) != VFIO_DEVICE_STATE_RUNNING)
		return fail(s, "%s: initial state %d", m->name, get_state(m));
	return 0;
}

int step_create(struct scenario *s)
{
	struct mock_vgpu *m;

	m = mock_create("src", &s->type->src, s->type->vregs_size, s->why,
			sizeof(s->why));
	if (IS_ERR(m))
		return PTR_ERR(m);
	s->src = m;
	m = mock_create("dst", &s->type->dst, s->type->vregs_size, s->why,
			sizeof(s->why));
	if (IS_ERR(m))
		return PTR_ERR(m);
	s->dst = m;
	return check_vdev(s, s->src) ?: check_vdev(s, s->dst);
}

/* a) and b): the source's state and guest memory, and what GVT-g saw. */
int step_guest_setup(struct scenario *s)
{
	struct mock_vgpu *m = s->src;
	const struct intel_gvt_vgpu_layout *l = &m->layout;
	u64 ap = l->aperture_size / MOCK_PAGE;
	u64 gfn;
	size_t b;
	int i;

	for (b = 0; b < m->vregs_size; b++)
		m->vregs[b] = (u8)(b * 7 + 0x5a);
	for (i = 0; i < l->fence_count; i++)
		m->fences[i] = 0xfe0000000000ull | (i << 12);	/* disabled */
	for (i = 0; i < MOCK_EXECLIST_SIZE; i++)
		m->execlist[i] = (u8)(0xe0 + i);
	get_random_bytes(m->mem, MOCK_MEM_SIZE);

	for (gfn = 1; gfn <= 16; gfn++)
		pin(m, gfn);
	for (i = 0; i < 2 * MOCK_GGTT_SET; i++) {
		/* entries 0..3 of the aperture, then of the hidden GM */
		u64 idx = i < MOCK_GGTT_SET ? i : ap + i - MOCK_GGTT_SET;
		u64 base = i < MOCK_GGTT_SET ? l->aperture_base :
			   l->hidden_base - l->aperture_size;
		u64 pte = MOCK_PTE(i + 1);

		m->ggtt[idx] = pte;
		if (m->ops->ggtt_write) {
			cb_begin(m);
			m->ops->ggtt_write(m->priv, base / MOCK_PAGE + idx, 0,
					   pte);
			cb_end(m);
		}
	}
	return 0;
}

/* c) */
int step_log_start(struct scenario *s)
{
	struct interval_tree_node node = { .start = 0,
					   .last = MOCK_MEM_SIZE - 1 };
	struct rb_root_cached root = RB_ROOT_CACHED;
	struct vfio_device *vdev = &s->src->vdev;
	u64 page_size = MOCK_PAGE;
	int ret;

	interval_tree_insert(&node, &root);
	ret = vdev->log_ops->log_start(vdev, &root, 1, &page_size);
	if (ret)
		return fail(s, "log_start: %d", ret);
	if (page_size != MOCK_PAGE)
		return fail(s, "log_start: page size %llu", page_size);
	return 0;
}

/* d) */
int step_pre_copy(struct scenario *s)
{
	struct file *f;
	size_t got;
	int ret;

	f = set_state(s, s->src, VFIO_DEVICE_STATE_PRE_COPY);
	if (IS_ERR_OR_NULL(f))
		return fail(s, "set_state(PRE_COPY): %ld", PTR_ERR(f));
	s->src_data = f;
	if (get_state(s->src) != VFIO_DEVICE_STATE_PRE_COPY)
		return fail(s, "get_state %d", get_state(s->src));
	ret = read_all(s, f, &got);
	if (ret)
		return ret;
	pr_info("src: %zu pre-copy bytes\n", got);
	if (s->src->stops)
		return fail(s, "stop_schedule called in PRE_COPY");
	return 0;
}

int step_pre_copy_report(struct scenario *s)
{
	return report(s, s->src);
}

/* The scanner hook on one command, as GVT-g's cmd_parser_exec() calls it. */
int scan_one(struct mock_vgpu *m, u32 *cmd, u32 len, bool ggtt)
{
	int ret = 0;

	cb_begin(m);
	if (m->ops->scan_cmd)
		ret = m->ops->scan_cmd(m->priv, cmd, len, ggtt);
	cb_end(m);
	return ret;
}

/* MI_STORE_DATA_IMM of one dword, through the GGTT (@ggtt) or a PPGTT. */
int scan_store(struct mock_vgpu *m, u64 addr, bool ggtt_bit,
	       bool ggtt_buf)
{
	u32 cmd[4] = { (0x20 << 23) | (ggtt_bit ? 1 << 22 : 0) | 2,
		       lower_32_bits(addr), upper_32_bits(addr), 1 };

	return scan_one(m, cmd, ARRAY_SIZE(cmd), ggtt_buf);
}

/* e) */
int step_gpu_work(struct scenario *s)
{
	struct mock_vgpu *m = s->src;
	u64 lrca = m->layout.aperture_base + 0x10000;
	int ret;

	/*
	 * The workload's ring stores to frame 3 (aperture entry 2, GGTT),
	 * its batch to frame 12 through the PPGTT: the scanner hook sees
	 * both before the "GPU" writes them.
	 */
	ret = scan_store(m, m->layout.aperture_base + 2 * MOCK_PAGE + 0x10,
			 true, true) ?:
	      scan_store(m, 0x10000c, false, false);
	if (ret)
		return fail(s, "scan_cmd: %d", ret);
	cb_begin(m);
	if (m->ops->workload_queued)
		m->ops->workload_queued(m->priv, 0, lrca);
	cb_end(m);
	touch_frame(m, 3);
	touch_frame(m, 12);
	touch_frame(m, 100);
	cb_begin(m);
	if (m->ops->workload_completed)
		m->ops->workload_completed(m->priv, 0, lrca, 0);
	cb_end(m);
	pin(m, 40);
	return 0;
}

u64 ap_gma(struct mock_vgpu *m, unsigned int entry)
{
	return m->layout.aperture_base + (u64)entry * MOCK_PAGE;
}

u64 hid_gma(struct mock_vgpu *m, unsigned int entry)
{
	return m->layout.hidden_base + (u64)entry * MOCK_PAGE;
}

/* Byte offset in the GTT MMIO range of the entry that maps @gma. */
u64 gtt_off(u64 gma)
{
	return gma / MOCK_PAGE * 8;
}

u32 pend_desc(struct mock_vgpu *m, unsigned int entry)
{
	return lower_32_bits(ap_gma(m, entry)) | MOCK_DESC_VALID |
	       MOCK_DESC_PRIV;
}

/* The guest writes MI_STORE_DATA_IMM(@gma, @val) at ring offset @off. */
void pend_sdi(struct mock_vgpu *m, u64 ring_gpa, u32 off, u64 gma,
	      u32 val)
{
	mock_wr32(m, ring_gpa + off, MOCK_SDI);
	mock_wr32(m, ring_gpa + off + 4, lower_32_bits(gma));
	mock_wr32(m, ring_gpa + off + 8, upper_32_bits(gma));
	mock_wr32(m, ring_gpa + off + 12, val);
}

/* The guest's ring context of the context image at PEND_GFN + @ctx. */
static void pend_ctx(struct mock_vgpu *m, unsigned int ctx, u32 tail,
		     u64 ring)
{
	u64 gpa = (PEND_GFN + ctx + 1) * MOCK_PAGE;

	mock_wr32(m, gpa + MOCK_CTX_HEAD, 0);
	mock_wr32(m, gpa + MOCK_CTX_TAIL, tail);
	mock_wr32(m, gpa + MOCK_CTX_START, lower_32_bits(ring));
	mock_wr32(m, gpa + MOCK_CTX_CTL, 1);
}

u64 pend_target(struct mock_vgpu *m, unsigned int t)
{
	return ap_gma(m, PEND_TARGET + t) + 0x40;
}

int step_pending_submit(struct scenario *s)
{
	struct mock_vgpu *m = s->src;
	u64 ring_a = (PEND_GFN + 4) * MOCK_PAGE, ring_b = ring_a + MOCK_PAGE;
	unsigned int i;
	int ret;

	/* the guest maps its pages through the GTT MMIO range */
	for (i = 0; i < 4; i++)
		mock_ggtt_mmio_write(m, gtt_off(ap_gma(m, PEND_CTX_A + i)),
				     MOCK_PTE(PEND_GFN + i));
	mock_ggtt_mmio_write(m, gtt_off(hid_gma(m, PEND_RING_A)),
			     MOCK_PTE(PEND_GFN + 4));
	mock_ggtt_mmio_write(m, gtt_off(hid_gma(m, PEND_RING_B)),
			     MOCK_PTE(PEND_GFN + 5));
	for (i = 0; i < MOCK_TARGETS; i++) {
		mock_ggtt_mmio_write(m, gtt_off(ap_gma(m, PEND_TARGET + i)),
				     MOCK_PTE(PEND_GFN + 6 + i));
		m->target_gpa[i] = (PEND_GFN + 6 + i) * MOCK_PAGE + 0x40;
		s->dst->target_gpa[i] = m->target_gpa[i];
	}
	if (mock_ggtt_mmio_read(m, gtt_off(hid_gma(m, PEND_RING_B))) !=
	    MOCK_PTE(PEND_GFN + 5))
		return fail(s, "GGTT MMIO read of the source's own entry");
	pend_sdi(m, ring_a, 0x00, pend_target(m, 0), 0xa1);
	pend_sdi(m, ring_a, 0x10, pend_target(m, 1), 0xa2);
	pend_sdi(m, ring_a, 0x20, pend_target(m, 0), 0xa3);
	pend_sdi(m, ring_a, 0x30, pend_target(m, 2), 0xa4);
	pend_sdi(m, ring_b, 0x00, pend_target(m, 3), 0xb1);
	pend_ctx(m, 0, 0x20, hid_gma(m, PEND_RING_A));
	pend_ctx(m, 2, 0x10, hid_gma(m, PEND_RING_B));
	ret = mock_elsp(m, 0, pend_desc(m, PEND_CTX_A), 0xa);
	if (!ret) {
		mock_wr32(m, (PEND_GFN + 1) * MOCK_PAGE + MOCK_CTX_TAIL, 0x40);
		ret = mock_elsp(m, 0, pend_desc(m, PEND_CTX_A), 0xa);
	}
	ret = ret ?: mock_elsp(m, 1, pend_desc(m, PEND_CTX_B), 0xb);
	if (ret)
		return fail(s, "ELSP submission on src: %d", ret);
	if (mock_queued(m) != 3)
		return fail(s, "%u workloads queued on src, not 3",
			    mock_queued(m));
	return 0;
}

/* What i915's i965_write_fence_reg() writes (Gen6+), stride 512. */
u64 addr_fence(struct mock_vgpu *m, unsigned int entry,
	       unsigned int pages, bool y)
{
	u64 start = ap_gma(m, entry), end = start + (pages - 1) * MOCK_PAGE;

	return end << 32 | (u64)(512 / 128 - 1) << 32 | start |
	       (y ? BIT(1) : 0) | MOCK_FENCE_VALID;
}

/* A fence value of @from's aperture at the same place of @to's. */
u64 fence_moved(u64 v, struct mock_vgpu *from, struct mock_vgpu *to)
{
	u64 d = to->layout.aperture_base - from->layout.aperture_base;

	return v + (d << 32) + d;
}

int step_guest_addresses(struct scenario *s)
{
	struct mock_vgpu *m = s->src;
	u32 base;
	u64 gpa;
	int i, ret;

	for (i = 0; i < 5; i++)
		mock_ggtt_mmio_write(m, gtt_off(ap_gma(m, ADDR_HWSP + i)),
				     MOCK_PTE(ADDR_GFN + i));
	ret = mock_fence_mmio_write(m, 0, addr_fence(m, ADDR_FENCE, 8, true)) ?:
	      mock_fence_mmio_write(m, 1, addr_fence(m, ADDR_FENCE + 8, 2, false));
	for (i = 0; !ret && i < MOCK_ENGINES; i++)
		ret = mock_hws_pga_write(m, i,
					 lower_32_bits(ap_gma(m, ADDR_HWSP + i)));
	if (ret)
		return fail(s, "programming fences and status pages on src: %d",
			    ret);
	mock_vreg_write(m, MOCK_DSPCNTR, MOCK_DISP_ENABLE);
	mock_vreg_write(m, MOCK_DSPSURF, lower_32_bits(ap_gma(m, ADDR_SURF)));
	mock_vreg_write(m, MOCK_CURCNTR, MOCK_CURSOR_MODE);
	mock_vreg_write(m, MOCK_CURBASE, lower_32_bits(ap_gma(m, ADDR_SURF + 1)));
	for (i = 0; i < 2; i++)
		if (m->hw_fence[i] != m->fences[i])
			return fail(s, "src: hardware fence %d %#llx, not %#llx", i,
				    m->hw_fence[i], m->fences[i]);
	for (i = 0; i < 2; i++) {
		ret = mock_decode_plane(m, i, &base, &gpa);
		if (ret || gpa != (ADDR_GFN + 3 + i) * MOCK_PAGE)
			return fail(s, "src: %s decodes to %d, gpa %#llx", i ?
				    "cursor" : "primary plane", ret, gpa);
	}
	return 0;
}

/* f) */
int step_stop_copy(struct scenario *s)
{
	struct file *f;
	size_t got;
	int ret;

	f = set_state(s, s->src, VFIO_DEVICE_STATE_STOP_COPY);
	if (IS_ERR(f))
		return fail(s, "set_state(STOP_COPY): %ld", PTR_ERR(f));
	/* Unless a new fd came, the data follows on the pre-copy fd. */
	if (f)
		s->src_data = f;
	if (get_state(s->src) != VFIO_DEVICE_STATE_STOP_COPY)
		return fail(s, "get_state %d", get_state(s->src));
	if (s->src->stops != 1)
		return fail(s, "stop_schedule called %u times, not once",
			    s->src->stops);
	ret = read_all(s, s->src_data, &got);
	if (ret)
		return ret;
	pr_info("src: %zu stop-copy bytes (%s fd), stream %zu bytes\n", got,
		f ? "a new" : "the pre-copy", s->stream_len);
	s->stopcopy_bytes = got;
	if (!s->stream_len)
		return fail(s, "empty stream");
	return 0;
}

/*
 * The GPU wrote frames 3 and 12, frame 40 was pinned since: reported.
 * Frame 100 is not tracked: not the device's to report. Frame 5, tracked
 * and not written, is reported too: the PPGTT store made the write set
 * unbounded, and a candidate goes out whether its hash changed or not (a
 * page changed and changed back while QEMU copied it hashes as before;
 * Documentation/migration.rst, "A hash is not a dirty bit").
 */
int step_stop_copy_report(struct scenario *s)
{
	static const unsigned int set[] = { 3, 5, 12, 40 };
	int i, ret;

	ret = report(s, s->src);
	if (ret)
		return ret;
	for (i = 0; i < ARRAY_SIZE(set); i++)
		if (!test_bit(set[i], s->dirty))
			return fail(s, "page %u not reported", set[i]);
	if (test_bit(100, s->dirty))
		return fail(s, "page 100 reported, not tracked");
	return 0;
}

/*
 * data-size: QEMU asks MIG_DATA_SIZE before it switches over, with
 * workloads queued (pending-submit); the stop-copy must then send no
 * more than that, and with the pre-copy image read whole, a delta (the
 * pending-work section included), not the full image.
 */
int step_data_size(struct scenario *s)
{
	int ret = mig(s->src)->migration_get_data_size(&s->src->vdev,
						       &s->data_size);

	if (ret)
		return fail(s, "migration_get_data_size: %d", ret);
	pr_info("src: MIG_DATA_SIZE %lu with %u workloads queued\n",
		s->data_size, mock_queued(s->src));
	return 0;
}

int step_data_size_true(struct scenario *s)
{
	if (s->stopcopy_bytes > s->data_size)
		return fail(s, "MIG_DATA_SIZE said %lu, the stop-copy sent %zu",
			    s->data_size, s->stopcopy_bytes);
	if (s->stopcopy_bytes > SZ_4K)
		return fail(s, "the stop-copy sent %zu bytes, not a delta",
			    s->stopcopy_bytes);
	return 0;
}

int step_src_stop(struct scenario *s)
{
	return to_state(s, s->src, VFIO_DEVICE_STATE_STOP);
}

/* g) and i): a migration of the stream into dst, up to STOP. */
int resume(struct scenario *s, const u8 *stream, int *werr)
{
	struct mock_vgpu *m = s->dst;
	struct file *f;
	int ret;

	ret = to_state(s, m, VFIO_DEVICE_STATE_STOP);
	if (ret)
		return ret;
	f = set_state(s, m, VFIO_DEVICE_STATE_RESUMING);
	if (IS_ERR_OR_NULL(f))
		return fail(s, "set_state(RESUMING): %ld", PTR_ERR(f));
	s->dst_data = f;
	s->restores_before = m->restores;
	/*
	 * The VMM migrated guest RAM as it stood at the stop (nothing else
	 * runs on dst now; both mem_locks are of one lock class).
	 */
	scoped_guard(mutex, &s->src->mem_lock)
		memcpy(m->mem, s->src->mem, MOCK_MEM_SIZE);
	*werr = write_all(s, f, stream, s->stream_len);
	return 0;
}

int step_resume(struct scenario *s)
{
	int werr, ret;

	ret = resume(s, s->stream, &werr);
	if (ret)
		return ret;
	if (werr)
		return fail(s, "write of the stream: %d", werr);
	return to_state(s, s->dst, VFIO_DEVICE_STATE_STOP);
}

int check_restored(struct scenario *s)
{
	static const char * const names[] = { "vregs", "ggtt", "fences",
					      "execlist" };
	struct mock_vgpu *d = s->dst;
	enum intel_gvt_state p;
	unsigned int n = d->restores - s->restores_before;

	if (n != 4)
		return fail(s, "restore_state called %u times, not 4", n);
	for (p = INTEL_GVT_STATE_VREGS; p <= INTEL_GVT_STATE_EXECLIST; p++) {
		unsigned int i = s->restores_before + p;

		if (i < MOCK_MAX_RESTORES && d->restored[i] != p)
			return fail(s, "restore %u was part %d, not %d", p,
				    d->restored[i], p);
		if (memcmp(state_ptr(d, p), state_ptr(s->src, p),
			   state_size(d, p)))
			return fail(s, "restored %s differ from src's",
				    names[p]);
	}
	return 0;
}

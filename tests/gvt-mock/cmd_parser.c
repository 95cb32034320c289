// SPDX-License-Identifier: GPL-2.0
/*
 * gvt_mock: the command scanner, as drivers/gpu/drm/i915/gvt/cmd_parser.c
 * has it (command lengths, batch buffers: find_bb_size(),
 * perform_bb_shadow(), cmd_handler_mi_batch_buffer_start(),
 * copy_gma_to_hva()), with intel_gvt_scan_and_shadow_workload() of
 * scheduler.c and the companion's scan_cmd and scan_workload hooks
 * (patches 0006, 0019).
 */

#define pr_fmt(fmt) "gvt_mock: " fmt

#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/slab.h>
#include <linux/sizes.h>

#include "gvt_mock.h"

/*
 * The command scanner (drivers/gpu/drm/i915/gvt/cmd_parser.c). Its limits
 * are the mock's: GVT-g bounds a scan by guest memory only.
 */
#define MOCK_SCAN_CMDS		BIT(18)	/* commands per workload */
#define MOCK_SCAN_BBS		64		/* batch buffers per workload */
#define MOCK_BB_DWORDS		(SZ_1M / 4)	/* dwords per batch buffer */
#define MOCK_MI_BB_END		0x0a
#define MOCK_MI_BB_START	0x31
#define MOCK_BB_2ND_LEVEL	BIT(22)
#define MOCK_BB_PPGTT		BIT(8)
enum { MOCK_RING, MOCK_BB, MOCK_BB2 };

/* The MI opcode of @dw0 (bits 28:23), ~0 for another client. */
static u32 mock_mi_op(u32 dw0)
{
	return dw0 >> 29 ? ~0U : (dw0 >> 23) & 0x3f;
}

/*
 * GVT-g scans no PPGTT batch buffer unless the host sets the vGPU's debugfs
 * scan_nonprivbb (an engine mask, 0 by default); gmig sees their commands
 * only then, so the mock's vGPUs start with it set on every engine.
 */
unsigned long scan_nonprivbb = GENMASK(MOCK_ENGINES - 1, 0);
module_param(scan_nonprivbb, ulong, 0644);
MODULE_PARM_DESC(scan_nonprivbb,
		 "engines whose PPGTT batch buffers new vGPUs scan (GVT-g's default: 0)");

static u32 mock_var_len(u32 dw0, unsigned int bits)
{
	return (dw0 & GENMASK(bits - 1, 0)) + 2;
}

/* GFXPIPE (client 3): @pipe, @opc and @sub of bits 28:27, 26:24, 23:16. */
static u32 mock_gfx_len(u32 dw0, u32 pipe, u32 opc, u32 sub)
{
	if ((pipe == 1 && opc == 0 && sub == 0x0b) ||
	    (pipe == 3 && opc == 0 && sub == 0x0b) ||
	    (pipe == 1 && opc == 1 && sub == 0x04))
		return 1;	/* 3DSTATE_VF_STATISTICS, PIPELINE_SELECT */
	switch (pipe << 4 | opc) {
	case 0x01:	/* STATE_BASE_ADDRESS, STATE_SIP, 0x6104 */
		return sub == 0x01 || sub == 0x02 || sub == 0x04 ?
		       mock_var_len(dw0, 8) : 0;
	case 0x00:	/* STATE_PREFETCH */
		return sub == 0x03 ? mock_var_len(dw0, 8) : 0;
	case 0x20:	/* MEDIA_VFE_STATE .. MEDIA_STATE_FLUSH */
		return sub <= 0x05 ? mock_var_len(dw0, 16) : 0;
	case 0x21:	/* MEDIA_OBJECT*, GPGPU_WALKER */
		if (sub == 0x05)
			return mock_var_len(dw0, 8);
		return sub == 0x00 || sub == 0x02 || sub == 0x03 ?
		       mock_var_len(dw0, 16) : 0;
	case 0x30:	/* 3DSTATE_* */
		if (sub == 0x39 || sub == 0x3a)
			return mock_var_len(dw0, 11);
		if (sub >= 0x43 && sub <= 0x47)
			return mock_var_len(dw0, 9);
		if ((sub >= 0x04 && sub <= 0x21 && sub != 0x0b) ||
		    (sub >= 0x23 && sub <= 0x38) ||
		    (sub >= 0x3b && sub <= 0x42) ||
		    (sub >= 0x49 && sub <= 0x52) || sub == 0x55)
			return mock_var_len(dw0, 8);
		return 0;
	case 0x31:	/* 3DSTATE_* (more), SO_DECL_LIST, the pools */
		if (sub == 0x17)
			return mock_var_len(dw0, 9);
		if (sub == 0x00 || sub == 0x02 || sub == 0x04 ||
		    (sub >= 0x06 && sub <= 0x08) ||
		    (sub >= 0x0a && sub <= 0x0c) ||
		    (sub >= 0x11 && sub <= 0x1c))
			return mock_var_len(dw0, 8);
		return 0;
	case 0x32:	/* PIPE_CONTROL */
	case 0x33:	/* 3DPRIMITIVE */
		return sub == 0 ? mock_var_len(dw0, 8) : 0;
	}
	return 0;
}

/*
 * The length in dwords of the command with header @dw0, 0 for one the
 * mock does not know: GVT-g's cmd_info[] and get_cmd_length() for the
 * render and blitter rings' MI, 2D and GFXPIPE commands, as
 * gmig_core::cmd::command_len() (rust/gmig_core/src/cmd.rs) has them.
 */
u32 mock_cmd_len(u32 dw0)
{
	u32 op, key;

	switch (dw0 >> 29) {
	case 0:
		op = (dw0 >> 23) & 0x3f;
		if (op <= 0x0f)
			return 1;
		switch (op) {
		case 0x12:
			return 2;	/* MI_LOAD_SCAN_LINES_INCL */
		case 0x20: case 0x23: case 0x27:
			return mock_var_len(dw0, 10);
		case 0x26: case 0x28:
			return mock_var_len(dw0, 6);
		case 0x14: case 0x16: case 0x19: case 0x1a: case 0x1b:
		case 0x1c: case 0x21: case 0x22: case 0x24: case 0x29:
		case 0x2a: case 0x2b: case 0x2c: case 0x2d: case 0x2e:
		case 0x2f: case 0x31: case 0x36:
			return mock_var_len(dw0, 8);
		}
		return 0;
	case 2:
		op = (dw0 >> 22) & 0x7f;
		switch (op) {
		case 0x01: case 0x03: case 0x11: case 0x24: case 0x25:
		case 0x26: case 0x31: case 0x42:
		case 0x50 ... 0x59:
		case 0x71 ... 0x77:
			return mock_var_len(dw0, 8);
		}
		return 0;
	case 3:
		key = (dw0 >> 16) & 0x1fff;
		return mock_gfx_len(dw0, key >> 11, (key >> 8) & 7, key & 0xff);
	}
	return 0;
}

/* copy_gma_to_hva(): @len bytes at @gma, page by page, through the GGTT or PPGTT. */
static int mock_read_gma(struct mock_vgpu *m, const struct mock_workload *wl,
			 bool ppgtt, u64 gma, void *buf, size_t len)
{
	while (len) {
		size_t n = min_t(size_t, len, MOCK_PAGE - gma % MOCK_PAGE);
		u64 gpa = ppgtt ? mock_ppgtt_gpa(m, wl, gma) :
				  mock_gma_to_gpa(m, gma);

		if (gpa == ~0ULL || mem_rw(m, gpa, buf, n, false, false))
			return -EFAULT;
		gma += n;
		buf += n;
		len -= n;
	}
	return 0;
}

/* struct parser_exec_state, what the mock needs */
struct mock_scan {
	struct mock_vgpu *m;
	struct mock_workload *wl;
	unsigned int cmds, bbs;
};

/* A shadow batch buffer (struct intel_vgpu_shadow_bb): the dwords read. */
struct mock_bb {
	u64 gma;
	bool ppgtt;
	u32 *buf;
	u32 n, cap;
};

/* Reads @bb's guest dwords up to at least @want, a page at a time. */
static int mock_bb_fetch(struct mock_scan *s, struct mock_bb *bb, u32 want)
{
	while (bb->n < want) {
		u64 gma = bb->gma + 4ULL * bb->n;
		u32 k = (MOCK_PAGE - gma % MOCK_PAGE) / 4;
		int ret;

		if (bb->n + k > MOCK_BB_DWORDS)
			return -E2BIG;
		if (bb->n + k > bb->cap) {
			u32 cap = clamp_t(u32, 2 * bb->cap, bb->n + k,
					  MOCK_BB_DWORDS);
			u32 *b = kvrealloc(bb->buf, cap * sizeof(u32),
					   GFP_KERNEL);

			if (!b)
				return -ENOMEM;
			bb->buf = b;
			bb->cap = cap;
		}
		ret = mock_read_gma(s->m, s->wl, bb->ppgtt, gma,
				    bb->buf + bb->n, 4 * k);
		if (ret)
			return ret;
		bb->n += k;
	}
	return 0;
}

/*
 * find_bb_size() and the copy of perform_bb_shadow(): the batch ends at
 * MI_BATCH_BUFFER_END or a chained MI_BATCH_BUFFER_START (bit 22 clear),
 * each command's length decoded; an unknown command is refused.
 */
static int mock_bb_size(struct mock_scan *s, struct mock_bb *bb, u32 *size)
{
	u32 i = 0, len, op;
	int ret;

	for (;;) {
		ret = mock_bb_fetch(s, bb, i + 1);
		if (ret)
			return ret;
		len = mock_cmd_len(bb->buf[i]);
		if (!len)
			return -EBADRQC;
		op = mock_mi_op(bb->buf[i]);
		i += len;
		if (op == MOCK_MI_BB_END ||
		    (op == MOCK_MI_BB_START &&
		     !(bb->buf[i - len] & MOCK_BB_2ND_LEVEL)))
			break;
	}
	*size = i;
	return mock_bb_fetch(s, bb, i);
}

/* The companion's scan_cmd on one command of the shadow (patch 0006). */
static int mock_scan_cmd(struct mock_scan *s, u32 *cmd, u32 len, bool ggtt)
{
	struct mock_vgpu *m = s->m;
	int ret = 0;

	if (++s->cmds > MOCK_SCAN_CMDS)
		return -E2BIG;
	m->scan_cmds++;
	if (m->ops->scan_cmd) {
		cb_begin(m);
		ret = m->ops->scan_cmd(m->priv, cmd, len, ggtt);
		cb_end(m);
	}
	return ret;
}

static int mock_bb_start(struct mock_scan *s, const u32 *c, int level,
			 bool ppgtt, u64 *chain);

/*
 * A batch buffer at @gma started from a buffer of @level - 1, its
 * commands scanned as command_scan() does once perform_bb_shadow() moved
 * the parser into it; a chained batch continues in the same loop.
 */
static int mock_scan_bb(struct mock_scan *s, u64 gma, int level, bool ppgtt)
{
	struct mock_bb bb = { .ppgtt = ppgtt };
	u32 i, len, size;
	int ret;

	for (;;) {
		u64 chain = ~0ULL;

		if (++s->bbs > MOCK_SCAN_BBS) {
			ret = -E2BIG;
			break;
		}
		s->m->scan_batches++;
		bb.gma = gma;
		bb.n = 0;
		ret = mock_bb_size(s, &bb, &size);
		for (i = 0; !ret && i < size; i += len) {
			u32 *c = &bb.buf[i];

			len = mock_cmd_len(*c);
			ret = mock_scan_cmd(s, c, len, !ppgtt);
			if (!ret && mock_mi_op(*c) == MOCK_MI_BB_START)
				ret = mock_bb_start(s, c, level, ppgtt, &chain);
		}
		if (ret < 0 || chain == ~0ULL)
			break;
		gma = chain;
	}
	kvfree(bb.buf);
	return ret < 0 ? ret : 0;
}

/*
 * cmd_handler_mi_batch_buffer_start() in a buffer of @level: from the
 * ring a first-level batch, in the GGTT or the PPGTT by bit 8
 * (addr_type_update_snb(); batches inherit it); from a first-level batch
 * a second-level one (bit 22, returns here) or a chained one (*@chain:
 * the current batch ends), none from a second-level batch. A PPGTT batch
 * is scanned only on the engines of scan_nonprivbb
 * (batch_buffer_needs_scan()): otherwise GVT-g emulates its end.
 */
static int mock_bb_start(struct mock_scan *s, const u32 *c, int level,
			 bool ppgtt, u64 *chain)
{
	bool second = c[0] & MOCK_BB_2ND_LEVEL;
	u64 gma = (c[1] & ~3U) | (u64)(c[2] & 0xffff) << 32;
	bool scan = !(c[0] & MOCK_BB_PPGTT) ||
		    test_bit(s->wl->w.engine, &s->m->scan_nonprivbb);

	if (level == MOCK_BB2 || (second && level != MOCK_BB))
		return -EFAULT;
	if (level == MOCK_RING)
		ppgtt = c[0] & MOCK_BB_PPGTT;
	if (!scan)
		return 1;
	if (level == MOCK_RING)
		return mock_scan_bb(s, gma, MOCK_BB, ppgtt);
	if (second)
		return mock_scan_bb(s, gma, MOCK_BB2, ppgtt);
	*chain = gma;
	return 1;
}

/*
 * intel_gvt_scan_and_shadow_workload() with patch 0019: the companion's
 * scan_workload, then intel_gvt_scan_and_shadow_ringbuffer(), which copies
 * the guest's ring from rb_head to rb_tail (the mock's rings do not wrap),
 * and scan_workload(), which calls scan_cmd on each command of the copy
 * before its audit and follows MI_BATCH_BUFFER_START into the batch
 * buffers (mock_bb_start()). A command the mock cannot decode is refused
 * (-EBADRQC), an address it cannot map too (-EFAULT).
 */
int mock_scan(struct mock_vgpu *m, struct mock_workload *wl)
{
	u32 n = (wl->w.rb_tail - wl->w.rb_head) / 4, i, len;
	struct mock_scan s = { .m = m, .wl = wl };
	u64 chain;
	int ret;

	if (wl->shadow)
		return 0;
	if (m->ops->scan_workload) {
		cb_begin(m);
		m->ops->scan_workload(m->priv, wl->w.engine, wl->ctx_gma,
				      wl->ppgtt ? wl->pdps : NULL, wl->lvl4);
		cb_end(m);
	}
	wl->shadow = kcalloc(n ?: 1, sizeof(u32), GFP_KERNEL);
	if (!wl->shadow)
		return -ENOMEM;
	wl->shadow_len = n;
	ret = mock_read_gma(m, wl, false, wl->rb_start + wl->w.rb_head,
			    wl->shadow, 4 * n);
	for (i = 0; !ret && i < n; i += len) {
		u32 *c = &wl->shadow[i];

		len = mock_cmd_len(*c);
		if (!len || i + len > n || mock_mi_op(*c) == MOCK_MI_BB_END) {
			ret = -EBADRQC;
			break;
		}
		ret = mock_scan_cmd(&s, c, len, true);
		/* the audit: a store must land in the vGPU's GM */
		if (!ret && *c == MOCK_SDI &&
		    !mock_gm_valid(m, (u64)c[2] << 32 | c[1], 4))
			ret = -EFAULT;
		if (!ret && mock_mi_op(*c) == MOCK_MI_BB_START)
			ret = mock_bb_start(&s, c, MOCK_RING, false, &chain);
	}
	if (ret < 0) {
		m->scan_refused++;
		pr_notice_ratelimited("%s: scan of a workload on engine %u refused: %d\n",
				      m->name, wl->w.engine, ret);
		return ret;
	}
	return 0;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * gvt_mock: the shadow PPGTT, as drivers/gpu/drm/i915/gvt/gtt.c has it
 * (intel_vgpu_get_ppgtt_mm(), ppgtt_populate_spt(), ppgtt_destroy_mm(),
 * intel_vgpu_gma_to_gpa() through a PPGTT) with prepare_mm() and
 * read_guest_pdps() of scheduler.c, and the companion's ppgtt_created
 * and ppgtt_destroyed hooks (patch 0004).
 */

#define pr_fmt(fmt) "gvt_mock: " fmt

#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "gvt_mock.h"

/* The bounds of a shadow (the mock's: GVT-g bounds it by guest memory). */
#define MOCK_PPGTT_TABLES	4096		/* tables a shadow walks */
#define MOCK_PPGTT_PAGES	BIT(17)	/* pages a shadow pins */

/* Fault injection for the tests: every Nth leaf a shadow maps stays unpinned. */
static unsigned int ppgtt_skip_pin;
module_param(ppgtt_skip_pin, uint, 0644);
MODULE_PARM_DESC(ppgtt_skip_pin,
		 "leave every Nth page a shadow PPGTT maps unpinned (tests: 0 = none)");

/*
 * intel_vgpu_gma_to_gpa() through the guest PPGTT of @wl (the guest's
 * tables in guest memory, as GVT-g's shadow mirrors them): ~0 if not
 * mapped. Large pages are not modelled and do not map.
 */
u64 mock_ppgtt_gpa(struct mock_vgpu *m, const struct mock_workload *wl,
		   u64 gma)
{
	int level = wl->lvl4 ? 4 : 2;
	u64 e;

	if (!wl->ppgtt || gma >> (wl->lvl4 ? 48 : 32))
		return ~0ULL;
	e = wl->lvl4 ? wl->pdps[0] | MOCK_PPGTT_PRESENT :
		       wl->pdps[(gma >> 30) & 3];
	for (; level; level--) {
		u64 idx = (gma >> (12 + 9 * (level - 1))) & 511;

		if (!(e & MOCK_PPGTT_PRESENT) ||
		    mem_rw(m, (e & MOCK_PPGTT_ADDR) + 8 * idx, &e, 8, false,
			   false) ||
		    (level > 1 && (e & BIT_ULL(7))))
			return ~0ULL;
	}
	if (!(e & MOCK_PPGTT_PRESENT))
		return ~0ULL;
	return (e & MOCK_PPGTT_ADDR) | (gma & 0xfff);
}

/*
 * The shadow PPGTT (gtt.c): ppgtt_populate_spt() walks the guest's tables
 * from the root; each present leaf's guest page is pinned
 * (gvt_dma_map_page(), reported to pages_pinned with patch 0004). The
 * walk is bounded: a hostile guest's tables fail the shadow.
 */
static int mock_ppgtt_walk(struct mock_vgpu *m, struct mock_ppgtt *pt,
			   u64 table, int level, unsigned int *tables)
{
	u64 *t;
	int i, ret = 0;

	if (++*tables > MOCK_PPGTT_TABLES)
		return -E2BIG;
	t = kmalloc(MOCK_PAGE, GFP_KERNEL);
	if (!t)
		return -ENOMEM;
	if (mem_rw(m, table & MOCK_PPGTT_ADDR, t, MOCK_PAGE, false, false))
		ret = -EFAULT;
	for (i = 0; !ret && i < MOCK_PAGE / 8; i++) {
		if (!(t[i] & MOCK_PPGTT_PRESENT))
			continue;
		if (level > 1 && (t[i] & BIT_ULL(7)))
			ret = -EINVAL;	/* large pages: not modelled */
		else if (level > 1)
			ret = mock_ppgtt_walk(m, pt, t[i], level - 1, tables);
		else if (pt->npins == MOCK_PPGTT_PAGES)
			ret = -E2BIG;
		else
			pt->gfns[pt->npins++] = (t[i] & MOCK_PPGTT_ADDR) >> 12;
	}
	kfree(t);
	return ret;
}

/* ppgtt_destroy_mm(): the pins dropped, the companion told. m->lock held. */
static void mock_ppgtt_destroy(struct mock_vgpu *m, struct mock_ppgtt *pt)
{
	u32 i;

	if (!pt->used)
		return;
	for (i = 0; m->kv && i < pt->npins; i++)
		if (pt->gfns[i] != ~0ULL)
			kv_unpin(m, pt->gfns[i]);
	if (m->priv && m->ops->ppgtt_destroyed) {
		cb_begin(m);
		m->ops->ppgtt_destroyed(m->priv, pt->pdps[0]);
		cb_end(m);
	}
	kvfree(pt->gfns);
	memset(pt, 0, sizeof(*pt));
}

/*
 * intel_vgpu_get_ppgtt_mm() for @wl, m->lock held: the shadow of its
 * root pointers, created at its first workload (intel_vgpu_create_ppgtt_mm():
 * the walk, each leaf's page pinned, then ppgtt_created).
 */
static int mock_ppgtt_get(struct mock_vgpu *m, const struct mock_workload *wl)
{
	struct mock_ppgtt *pt = NULL;
	unsigned int tables = 0;
	int i, ret = 0;
	u32 k;

	for (i = 0; i < MOCK_PPGTTS; i++) {
		if (m->ppgtt[i].used && m->ppgtt[i].lvl4 == wl->lvl4 &&
		    !memcmp(m->ppgtt[i].pdps, wl->pdps, sizeof(wl->pdps)))
			return 0;
		if (!m->ppgtt[i].used && !pt)
			pt = &m->ppgtt[i];
	}
	if (!pt)
		return -ENOSPC;	/* the mock reclaims no shadow */
	pt->gfns = kvmalloc_array(MOCK_PPGTT_PAGES, sizeof(u64), GFP_KERNEL);
	if (!pt->gfns)
		return -ENOMEM;
	pt->used = true;
	pt->lvl4 = wl->lvl4;
	memcpy(pt->pdps, wl->pdps, sizeof(pt->pdps));
	if (wl->lvl4)
		ret = mock_ppgtt_walk(m, pt, wl->pdps[0], 4, &tables);
	for (i = 0; !wl->lvl4 && !ret && i < 4; i++)
		if (wl->pdps[i] & MOCK_PPGTT_PRESENT)
			ret = mock_ppgtt_walk(m, pt, wl->pdps[i], 2, &tables);
	for (k = 0; m->kv && k < pt->npins; k++)
		if (ret || (ppgtt_skip_pin && k % ppgtt_skip_pin ==
			    ppgtt_skip_pin - 1) || kv_pin(m, pt->gfns[k]))
			pt->gfns[k] = ~0ULL;
	if (m->ops->ppgtt_created) {
		cb_begin(m);
		m->ops->ppgtt_created(m->priv, pt->pdps[0]);
		cb_end(m);
	}
	if (ret) {
		pr_notice_ratelimited("%s: shadowing the PPGTT at %#llx: %d\n",
				      m->name, pt->pdps[0], ret);
		mock_ppgtt_destroy(m, pt);
	}
	return ret;
}

/* All shadows destroyed: a vGPU reset or release. m->lock held. */
void mock_ppgtt_destroy_all(struct mock_vgpu *m)
{
	int i;

	for (i = 0; i < MOCK_PPGTTS; i++)
		mock_ppgtt_destroy(m, &m->ppgtt[i]);
}

/*
 * prepare_mm(): the descriptor's addressing mode picks the root pointers
 * read from the ring context page (read_guest_pdps()): the PML4 in pdps[0]
 * for legacy 64-bit, PDP0..3 for legacy 32-bit. The mock's own contexts
 * (mode 0) and a PML4 of 0 have no PPGTT.
 */
int mock_prepare_mm(struct mock_vgpu *m, struct mock_workload *wl)
{
	u32 mode = MOCK_DESC_MODE(wl->w.desc[0]);
	int i;

	if (mode != MOCK_DESC_LEGACY_32 && mode != MOCK_DESC_LEGACY_64)
		return 0;
	for (i = 0; i < 4; i++)
		wl->pdps[i] = (u64)mock_rd32(m, wl->ring_ctx_gpa +
					     MOCK_CTX_PDP_UDW(i)) << 32 |
			      mock_rd32(m, wl->ring_ctx_gpa + MOCK_CTX_PDP_LDW(i));
	wl->lvl4 = mode == MOCK_DESC_LEGACY_64;
	if (wl->lvl4)
		memset(&wl->pdps[1], 0, 3 * sizeof(u64));
	wl->ppgtt = wl->lvl4 ? wl->pdps[0] != 0 :
			       (wl->pdps[0] | wl->pdps[1] | wl->pdps[2] |
				wl->pdps[3]) != 0;
	return wl->ppgtt ? mock_ppgtt_get(m, wl) : 0;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * gvt_mock: guest memory, the GGTT, and the graphics addresses GVT-g keeps
 * outside command buffers, as drivers/gpu/drm/i915/gvt/ has them:
 * kvmgt.c (guest memory through vfio_dma_rw(), and the pinned pages
 * intel_gvt_companion_read_pinned() reads), gtt.c (the guest GGTT and its
 * GTT MMIO range, intel_vgpu_gma_to_gpa()), aperture_gm.c and handlers.c
 * (fences: intel_vgpu_write_fence(), fence_mmio_write(); status pages:
 * hws_pga_write()), fb_decoder.c (the primary plane and cursor decode),
 * and companion.c of patches/gvt (rw_gpa, map_gma, map_fence, hws_pga,
 * restore_hws_pga(): patches 0010, 0014-0016, 0021).
 */

#define pr_fmt(fmt) "gvt_mock: " fmt

#include <linux/module.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/string.h>
#include <linux/vfio.h>
#include <linux/vmalloc.h>

#include "gvt_mock.h"

int intel_gvt_companion_rw_gpa(struct intel_vgpu *vgpu, u64 gpa, void *buf,
			       size_t len, bool write)
{
	struct mock_vgpu *m = to_mock(vgpu);

	if (!m)
		return -EINVAL;
	atomic_inc(&m->rw_calls);
	return mock_mem_rw(m, gpa, buf, len, write);
}
EXPORT_SYMBOL_GPL(intel_gvt_companion_rw_gpa);

/*
 * Patch 0021: the companion reads the pages kvmgt holds pinned where they
 * are, under kvmgt's DMA cache lock (intel_gvt_companion_read_pinned() in
 * kvmgt.c). The mock's lock of its pins is m->lock: kvmgt.c's pins
 * (kv_pinned_page()) and dma_unmap take it, and so do the runs' (pin());
 * a runs' vGPU's page is that of its buffer. A frame not pinned is skipped,
 * and the companion copies it with rw_gpa. The frames go to m->reads as
 * rw_gpa's do (the re-hash candidates the narrow steps count).
 */
int intel_gvt_companion_read_pinned(struct intel_vgpu *vgpu, u64 gfn,
				    unsigned int count,
				    void (*fn)(void *data, unsigned int index,
					       struct page *page),
				    void *data)
{
	struct mock_vgpu *m = to_mock(vgpu);
	struct page *page;
	unsigned int i;
	int n = 0;

	if (!m)
		return -EINVAL;
	if (count > INTEL_GVT_READ_PINNED_MAX)
		return -EINVAL;
	/* kvmgt calls pages_pinned and _unpinned under its cache_lock */
	if (reentered(m, "read_pinned"))
		return -EDEADLK;
	atomic64_inc(&m->pinned_calls);
	guard(mutex)(&m->lock);
	for (i = 0; i < count; i++) {
		u64 g = gfn + i;

		if (m->kv)
			page = kv_pinned_page(m, g);
		else if (g < MOCK_MEM_PAGES && test_bit(g, m->pins))
			page = vmalloc_to_page(m->mem + g * MOCK_PAGE);
		else
			page = NULL;
		if (!page)
			continue;
		if (!m->kv && READ_ONCE(m->log_reads)) {
			guard(mutex)(&m->mem_lock);
			set_bit(g, m->reads);
			set_bit(g, m->reads_pinned);
		}
		fn(data, i, page);
		n++;
	}
	atomic64_add(n, &m->pinned_reads);
	return n;
}
EXPORT_SYMBOL_GPL(intel_gvt_companion_read_pinned);

/*
 * Guest memory: kvmgt's intel_gvt_read_gpa() and _write_gpa(), that is
 * vfio_dma_rw() on the VFIO user's mappings, for an mdev vGPU; the runs'
 * vGPUs have a buffer of MOCK_MEM_SIZE bytes instead.
 */
int mem_rw(struct mock_vgpu *m, u64 gpa, void *buf, size_t len,
	   bool write, bool companion)
{
	if (m->kv)
		return vfio_dma_rw(&m->vdev, gpa, buf, len, write);
	if (len > MOCK_MEM_SIZE || gpa > MOCK_MEM_SIZE - len)
		return -EFAULT;

	guard(mutex)(&m->mem_lock);
	if (write) {
		memcpy(m->mem + gpa, buf, len);
	} else {
		memcpy(buf, m->mem + gpa, len);
		if (companion && m->log_reads && len)
			bitmap_set(m->reads, gpa / MOCK_PAGE,
				   (gpa + len - 1) / MOCK_PAGE -
				   gpa / MOCK_PAGE + 1);
	}
	return 0;
}

/* What intel_gvt_companion_rw_gpa() does. */
int mock_mem_rw(struct mock_vgpu *m, u64 gpa, void *buf, size_t len,
		bool write)
{
	return mem_rw(m, gpa, buf, len, write, true);
}

/* The graphics address of entry @i of the vGPU's GGTT image. */
static u64 mock_entry_gma(struct mock_vgpu *m, size_t i)
{
	const struct intel_gvt_vgpu_layout *l = &m->layout;
	u64 ap = l->aperture_size / MOCK_PAGE;

	return i < ap ? l->aperture_base + i * MOCK_PAGE :
			l->hidden_base + (i - ap) * MOCK_PAGE;
}

/*
 * emulate_ggtt_mmio_write() of a whole entry, at index @i of the vGPU's
 * GGTT image, with m->lock held: the guest entry changes, the shadow entry
 * maps its page (on an mdev vGPU, kvmgt's gvt_pin_guest_page(): the page
 * of the new entry is pinned, the old one's unpinned, each reported to the
 * companion), and the companion's ggtt_write hook sees it.
 */
void mock_ggtt_set(struct mock_vgpu *m, size_t i, u64 val)
{
	u64 old = m->ggtt[i];

	m->ggtt[i] = val;
	if (m->kv && old != val) {
		if (val & 1)
			kv_pin(m, val >> 12);
		if (old & 1)
			kv_unpin(m, old >> 12);
	}
	if (m->ops->ggtt_write) {
		cb_begin(m);
		m->ops->ggtt_write(m->priv, mock_entry_gma(m, i) / MOCK_PAGE,
				   old, val);
		cb_end(m);
	}
}

/* vgpu_gmadr_is_valid() for a range: inside one slice of the vGPU's GM. */
bool mock_gm_valid(struct mock_vgpu *m, u64 gma, u64 size)
{
	const struct intel_gvt_vgpu_layout *l = &m->layout;

	return (gma >= l->aperture_base && size <= l->aperture_size &&
		gma - l->aperture_base <= l->aperture_size - size) ||
	       (gma >= l->hidden_base && size <= l->hidden_size &&
		gma - l->hidden_base <= l->hidden_size - size);
}

/* The entry of the vGPU's GGTT image that maps @gma (valid). */
static u64 *mock_entry(struct mock_vgpu *m, u64 gma)
{
	const struct intel_gvt_vgpu_layout *l = &m->layout;

	if (gma >= l->aperture_base && gma < l->aperture_base + l->aperture_size)
		return &m->ggtt[(gma - l->aperture_base) / MOCK_PAGE];
	return &m->ggtt[(l->aperture_size + gma - l->hidden_base) / MOCK_PAGE];
}

/* intel_vgpu_gma_to_gpa() through the guest GGTT; ~0 if not mapped. */
u64 mock_gma_to_gpa(struct mock_vgpu *m, u64 gma)
{
	u64 e;

	if (!mock_gm_valid(m, gma, 1))
		return ~0ULL;
	e = *mock_entry(m, gma);
	if (!(e & 1) || (!m->kv && (e & ~0xfffULL) >= MOCK_MEM_SIZE))
		return ~0ULL;
	return (e & ~0xfffULL) + (gma & 0xfff);
}

/* A dword of guest memory that GVT-g itself reads; 0 if it cannot. */
u32 mock_rd32(struct mock_vgpu *m, u64 gpa)
{
	u32 v = 0;

	if (mem_rw(m, gpa, &v, 4, false, false))
		v = 0;
	return v;
}

int mock_wr32(struct mock_vgpu *m, u64 gpa, u32 v)
{
	return mem_rw(m, gpa, &v, 4, true, false);
}

/* intel_gvt_companion_map_gma(): the companion's map_gma, if it has one. */
int mock_map_gma(struct mock_vgpu *m, u64 *gma, u64 size)
{
	int ret = 0;

	if (m->ops->map_gma) {
		cb_begin(m);
		ret = m->ops->map_gma(m->priv, gma, size);
		cb_end(m);
	}
	return ret;
}

/*
 * intel_gvt_companion_map_fence() (patch 0014): a valid fence's range
 * [start, last page + 4 KiB) through map_gma, then inside the vGPU's GM.
 */
int mock_map_fence(struct mock_vgpu *m, u64 *v)
{
	u32 lo = lower_32_bits(*v), hi = upper_32_bits(*v);
	u64 start = lo & MOCK_FENCE_ADDR, end = hi & MOCK_FENCE_ADDR;
	u64 gma = start, size;

	if (!(lo & MOCK_FENCE_VALID))
		return 0;
	if (end < start)
		return -EINVAL;
	size = end - start + MOCK_PAGE;
	if (size > U32_MAX || mock_map_gma(m, &gma, size) ||
	    !mock_gm_valid(m, gma, size) || gma + size - 1 > U32_MAX)
		return -EINVAL;
	lo = (lo & ~MOCK_FENCE_ADDR) | (u32)gma;
	hi = (hi & ~MOCK_FENCE_ADDR) | (u32)(gma + end - start);
	*v = (u64)hi << 32 | lo;
	return 0;
}

/*
 * intel_vgpu_write_fence() with patch 0014, m->lock held: the hardware
 * fence gets the range moved; one outside the vGPU's GM is disabled.
 */
void mock_write_fence(struct mock_vgpu *m, unsigned int i, u64 v)
{
	if (mock_map_fence(m, &v)) {
		pr_notice_ratelimited("%s: fence %u range %#llx not in its GM, disabled\n",
				      m->name, i, v);
		v = 0;
	}
	m->hw_fence[i] = v;
}

/* fence_mmio_write(): the register as written, then the hardware. */
int mock_fence_mmio_write(struct mock_vgpu *m, unsigned int fence, u64 val)
{
	guard(mutex)(&m->lock);
	if (fence >= m->layout.fence_count)
		return -EINVAL;
	m->fences[fence] = val;
	mock_write_fence(m, fence, val);
	return 0;
}

/* intel_gvt_companion_hws_pga() (patch 0015). */
static int mock_hws_pga(struct mock_vgpu *m, u32 val, u32 *hws_pga)
{
	u64 gma = val;

	if (val && (mock_map_gma(m, &gma, MOCK_PAGE) ||
		    !mock_gm_valid(m, gma, MOCK_PAGE) || upper_32_bits(gma)))
		return -EINVAL;
	*hws_pga = gma;
	return 0;
}

u32 mock_vreg(struct mock_vgpu *m, u32 off)
{
	u32 v = 0;

	if (off + 4 <= m->vregs_size)
		memcpy(&v, m->vregs + off, 4);
	return v;
}

/*
 * A register whose write handler only stores the value: pri_surf_mmio_write()
 * (DSPSURF; its flip event is not modelled), CURBASE, DSPCNTR, CURCNTR.
 */
void mock_vreg_write(struct mock_vgpu *m, u32 off, u32 val)
{
	guard(mutex)(&m->lock);
	if (off + 4 <= m->vregs_size)
		memcpy(m->vregs + off, &val, 4);
}

/*
 * hws_pga_write() with patch 0015: the register keeps the guest's value,
 * hws_pga[] the page in the vGPU's GM; a value outside is refused.
 */
int mock_hws_pga_write(struct mock_vgpu *m, unsigned int engine, u32 val)
{
	u32 hws_pga;

	guard(mutex)(&m->lock);
	if (engine >= MOCK_ENGINES ||
	    MOCK_HWS_PGA(engine) + 4 > m->vregs_size)
		return -EINVAL;
	if (mock_hws_pga(m, val, &hws_pga))
		return -EINVAL;	/* "write invalid HWSP address" */
	m->hws_pga[engine] = hws_pga;
	memcpy(m->vregs + MOCK_HWS_PGA(engine), &val, 4);
	return 0;
}

/* restore_hws_pga() (patch 0015), m->lock held. */
void mock_restore_hws_pga(struct mock_vgpu *m)
{
	int e;

	for (e = 0; e < MOCK_ENGINES; e++)
		if (mock_hws_pga(m, mock_vreg(m, MOCK_HWS_PGA(e)), &m->hws_pga[e]))
			m->hws_pga[e] = 0;
}

/*
 * intel_vgpu_decode_primary_plane() and _cursor_plane() with patch 0016,
 * on pipe A (the mock models no other pipe): an enabled plane's surface
 * base through map_gma, checked against the vGPU's GM, and its guest
 * physical address through the vGPU's GGTT.
 */
int mock_decode_plane(struct mock_vgpu *m, bool cursor, u32 *base, u64 *gpa)
{
	u32 ctl;
	u64 gma;

	guard(mutex)(&m->lock);
	ctl = mock_vreg(m, cursor ? MOCK_CURCNTR : MOCK_DSPCNTR);
	if (cursor ? !(ctl & MOCK_CURSOR_MODE) : !(ctl & MOCK_DISP_ENABLE))
		return -ENODEV;
	gma = mock_vreg(m, cursor ? MOCK_CURBASE : MOCK_DSPSURF) & ~0xfffU;
	if (mock_map_gma(m, &gma, MOCK_PAGE) || upper_32_bits(gma) ||
	    !mock_gm_valid(m, gma, 1))
		return -EINVAL;
	*gpa = mock_gma_to_gpa(m, gma);
	if (*gpa == ~0ULL)
		return -EINVAL;
	*base = gma;
	return 0;
}

/*
 * The guest accesses the GGTT entry at byte @off of the GTT MMIO range:
 * intel_vgpu_emulate_ggtt_mmio_write() and _read() with patch 0010. An
 * entry map_gma refuses, or one outside the vGPU's GM (the ballooned rest
 * of the GGTT), is dropped or reads zero.
 */
void mock_ggtt_mmio_write(struct mock_vgpu *m, u64 off, u64 val)
{
	u64 gma = (off >> 3) << 12;

	guard(mutex)(&m->lock);
	if (mock_map_gma(m, &gma, MOCK_PAGE) || !mock_gm_valid(m, gma, 1))
		return;
	mock_ggtt_set(m, mock_entry(m, gma) - m->ggtt, val);
}

u64 mock_ggtt_mmio_read(struct mock_vgpu *m, u64 off)
{
	u64 gma = (off >> 3) << 12;

	guard(mutex)(&m->lock);
	if (mock_map_gma(m, &gma, MOCK_PAGE) || !mock_gm_valid(m, gma, 1))
		return 0;
	return *mock_entry(m, gma);
}

// SPDX-License-Identifier: GPL-2.0
/*
 * gvt_mock - a stand-in for kvmgt's companion interface (patches/gvt), so
 * that gmig's gvt provider runs in the base test kernel, which has no i915,
 * no kvmgt and no Intel GPU.
 *
 * The module exports the eleven functions of the interface
 * (shim/gmig_gvt_companion.h) with the semantics of the patch series.
 * gmig, loaded after it, finds them with symbol_get() and registers as the
 * companion. Writing "1" (the mock's small type) or "v5_1" (GVT-g's largest
 * type's sizes) to /sys/kernel/debug/gvt_mock/run then creates two
 * mock vGPUs of that type and drives gmig through a whole migration between them, in the
 * writer's context, the way the VFIO core and QEMU would: mig_ops and
 * log_ops on the vfio_device gmig was given, the kvmgt hooks as GVT-g calls
 * them, and the save/restore and scheduling calls back into the mock. Each
 * step logs "gvt_mock: ok <step>" or "gvt_mock: FAIL <step>: <why>"; the
 * write fails with -EIO if a step failed. Writing "stop-copy-rollback"
 * runs a migration whose guest flooded the ELSP and whose first stop-copy
 * save fails (stop_copy_steps[]), its steps "stop-copy-rollback:<step>".
 * Writing "hostile SEED SECS" runs
 * a randomized hostile client instead (see mock_hostile()), reported as
 * the step "hostile". Writing "pin-lost" runs the lost pin record steps
 * (step_pin_record_lost()), after the writer has armed gmig's fault
 * injection.
 *
 * The runs' mock vGPUs have a vfio_device that is never registered with
 * VFIO; its ->dev is a root device of the mock, and guest memory is a
 * vmalloc'ed buffer that intel_gvt_companion_rw_gpa() accesses. kvmgt.c
 * adds mdev vGPUs on the same model that a real QEMU opens (their guest
 * memory is the VFIO user's, through vfio_dma_rw()).
 *
 * Like GVT-g, the mock calls the companion's callbacks as if with the
 * vGPU's lock held (all but vgpu_reset): a companion that calls back into
 * GVT-g from one of them (which would deadlock on kvmgt) is reported.
 *
 * Workloads (patches 0002, 0009-0012): a guest "ELSP write" (mock_elsp())
 * creates workloads the way intel_vgpu_submit_execlist() and
 * intel_vgpu_create_workload() do: the context descriptor's LRCA and the
 * ring start of the guest's context image go through the companion's
 * map_gma, the ring context page is found through the vGPU's GGTT, the
 * ring offsets come from the context image (a context already queued
 * continues at its last workload's tail), the first workload of an empty
 * queue is scanned at once (scan_cmd on each command), the others when
 * they run, and each is reported to workload_queued. The mock's "GPU"
 * (mock_gpu_run()) runs the queues only when a step says so (or, with
 * autorun, on its own once scheduling starts, as GVT-g's workload_thread()
 * does) and scheduling is not stopped: it executes MI_STORE_DATA_IMM and MI_NOOP from the shadow
 * ring (GGTT addresses through the vGPU's GGTT into guest memory), writes
 * the ring head back into the context image (update_guest_context()) and
 * writes the CSB into the engine's status page (emulate_csb_update(),
 * through hws_pga[]) and reports workload_completed. Where the mock must
 * decide how GVT-g behaves, it says so: it does not emulate the execlist
 * schedule-in and -out (the execlist state stays an opaque image; one CSB
 * entry per completed workload) and knows only those two commands.
 *
 * Graphics addresses outside command buffers (patches 0013-0016): the
 * hardware fences (intel_vgpu_write_fence(), fence ranges through
 * map_gma), hws_pga[] (hws_pga_write(), re-derived from the registers at
 * a restore), the primary plane and cursor decode (pipe A only), and the
 * check of each state part before any is restored
 * (intel_gvt_companion_check_state()).
 */

#define pr_fmt(fmt) "gvt_mock: " fmt

#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/device.h>
#include <linux/err.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/interval_tree.h>
#include <linux/iova_bitmap.h>
#include <linux/ktime.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/random.h>
#include <linux/sched.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vfio.h>
#include <linux/vmalloc.h>

#include "gvt_mock.h"

static DEFINE_MUTEX(companion_lock);
static const struct intel_gvt_companion_ops *companion;
static DEFINE_MUTEX(run_lock);
static struct device *mock_dev;
static struct dentry *mock_dir;
static atomic_t bad_vgpu_ptr;

static struct mock_vgpu *to_mock(struct intel_vgpu *vgpu)
{
	struct mock_vgpu *m = (struct mock_vgpu *)vgpu;

	if (!m || m->magic != MOCK_MAGIC) {
		atomic_inc(&bad_vgpu_ptr);
		pr_err("companion passed a vGPU that is not the mock's\n");
		return NULL;
	}
	return m;
}

static struct intel_vgpu *to_vgpu(struct mock_vgpu *m)
{
	return (struct intel_vgpu *)m;
}

/* A call into GVT-g from a callback made under the vGPU's lock? */
static bool reentered(struct mock_vgpu *m, const char *what)
{
	if (READ_ONCE(m->cb_task) != current)
		return false;
	atomic_inc(&m->reentered);
	pr_err("%s: %s called from a companion callback (deadlock on kvmgt)\n",
	       m->name, what);
	return true;
}

/* The interface, as patches 0001-0008 implement it in kvmgt. */

int intel_gvt_register_companion(const struct intel_gvt_companion_ops *ops)
{
	if (!ops || ops->version != INTEL_GVT_COMPANION_VERSION ||
	    ops->size != sizeof(*ops) || !ops->vgpu_create ||
	    !ops->vgpu_destroy)
		return -EINVAL;

	guard(mutex)(&companion_lock);
	if (companion)
		return -EBUSY;
	companion = ops;
	pr_info("companion registered\n");
	return 0;
}
EXPORT_SYMBOL_GPL(intel_gvt_register_companion);

void intel_gvt_unregister_companion(const struct intel_gvt_companion_ops *ops)
{
	guard(mutex)(&companion_lock);
	if (WARN_ON(companion != ops))
		return;
	companion = NULL;
	pr_info("companion unregistered\n");
}
EXPORT_SYMBOL_GPL(intel_gvt_unregister_companion);

void intel_gvt_companion_stop_schedule(struct intel_vgpu *vgpu)
{
	struct mock_vgpu *m = to_mock(vgpu);

	if (!m || reentered(m, "stop_schedule"))
		return;
	guard(mutex)(&m->drv_lock);
	guard(mutex)(&m->lock);
	m->stops++;
	if (m->stopped)
		return;
	m->stopped = true;
	if (m->ops->sched_stopped) {
		cb_begin(m);
		m->ops->sched_stopped(m->priv);
		cb_end(m);
	}
}
EXPORT_SYMBOL_GPL(intel_gvt_companion_stop_schedule);

void intel_gvt_companion_start_schedule(struct intel_vgpu *vgpu)
{
	struct mock_vgpu *m = to_mock(vgpu);

	if (!m || reentered(m, "start_schedule"))
		return;
	guard(mutex)(&m->lock);
	m->starts++;
	if (!m->stopped)
		return;
	m->stopped = false;
	if (m->ops->sched_started) {
		cb_begin(m);
		m->ops->sched_started(m->priv);
		cb_end(m);
	}
	/* intel_gvt_start_schedule(): the workload threads get to it */
	if (m->autorun)
		queue_work(system_unbound_wq, &m->run_work);
}
EXPORT_SYMBOL_GPL(intel_gvt_companion_start_schedule);

static size_t state_size(struct mock_vgpu *m, enum intel_gvt_state part)
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

static void *state_ptr(struct mock_vgpu *m, enum intel_gvt_state part)
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
static void mock_ggtt_set(struct mock_vgpu *m, size_t i, u64 val)
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

static int mock_map_fence(struct mock_vgpu *m, u64 *v);
static void mock_write_fence(struct mock_vgpu *m, unsigned int i, u64 v);
static void mock_restore_hws_pga(struct mock_vgpu *m);

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
static int mem_rw(struct mock_vgpu *m, u64 gpa, void *buf, size_t len,
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

/* Workloads, as patches 0009-0012 make GVT-g handle them. */

/* vgpu_gmadr_is_valid() for a range: inside one slice of the vGPU's GM. */
static bool mock_gm_valid(struct mock_vgpu *m, u64 gma, u64 size)
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
static u64 mock_gma_to_gpa(struct mock_vgpu *m, u64 gma)
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
static u32 mock_rd32(struct mock_vgpu *m, u64 gpa)
{
	u32 v = 0;

	if (mem_rw(m, gpa, &v, 4, false, false))
		v = 0;
	return v;
}

static int mock_wr32(struct mock_vgpu *m, u64 gpa, u32 v)
{
	return mem_rw(m, gpa, &v, 4, true, false);
}

/* intel_gvt_companion_map_gma(): the companion's map_gma, if it has one. */
static int mock_map_gma(struct mock_vgpu *m, u64 *gma, u64 size)
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
static int mock_map_fence(struct mock_vgpu *m, u64 *v)
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
static void mock_write_fence(struct mock_vgpu *m, unsigned int i, u64 v)
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

static u32 mock_vreg(struct mock_vgpu *m, u32 off)
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
static void mock_restore_hws_pga(struct mock_vgpu *m)
{
	int e;

	for (e = 0; e < MOCK_ENGINES; e++)
		if (mock_hws_pga(m, mock_vreg(m, MOCK_HWS_PGA(e)), &m->hws_pga[e]))
			m->hws_pga[e] = 0;
}

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

static void mock_free_workload(struct mock_workload *wl)
{
	kfree(wl->shadow);
	kfree(wl);
}

/*
 * The command scanner (drivers/gpu/drm/i915/gvt/cmd_parser.c). Its limits
 * are the mock's: GVT-g bounds a scan by guest memory only.
 */
#define MOCK_SCAN_CMDS		BIT(18)	/* commands per workload */
#define MOCK_SCAN_BBS		64		/* batch buffers per workload */
#define MOCK_BB_DWORDS		(SZ_1M / 4)	/* dwords per batch buffer */
#define MOCK_PPGTT_TABLES	4096		/* tables a shadow walks */
#define MOCK_PPGTT_PAGES	BIT(17)	/* pages a shadow pins */
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
static unsigned long scan_nonprivbb = GENMASK(MOCK_ENGINES - 1, 0);
module_param(scan_nonprivbb, ulong, 0644);
MODULE_PARM_DESC(scan_nonprivbb,
		 "engines whose PPGTT batch buffers new vGPUs scan (GVT-g's default: 0)");

/* Fault injection for the tests: every Nth leaf a shadow maps stays unpinned. */
static unsigned int ppgtt_skip_pin;
module_param(ppgtt_skip_pin, uint, 0644);
MODULE_PARM_DESC(ppgtt_skip_pin,
		 "leave every Nth page a shadow PPGTT maps unpinned (tests: 0 = none)");

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
static u32 mock_cmd_len(u32 dw0)
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

/*
 * intel_vgpu_gma_to_gpa() through the guest PPGTT of @wl (the guest's
 * tables in guest memory, as GVT-g's shadow mirrors them): ~0 if not
 * mapped. Large pages are not modelled and do not map.
 */
static u64 mock_ppgtt_gpa(struct mock_vgpu *m, const struct mock_workload *wl,
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
static int mock_scan(struct mock_vgpu *m, struct mock_workload *wl)
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
static void mock_ppgtt_destroy_all(struct mock_vgpu *m)
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
static int mock_prepare_mm(struct mock_vgpu *m, struct mock_workload *wl)
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

/*
 * intel_vgpu_create_workload() (with @saved: intel_vgpu_recreate_workload()),
 * then intel_vgpu_queue_workload(). Called with m->lock held.
 */
static int mock_create_workload(struct mock_vgpu *m, unsigned int engine,
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

static void mock_clean_workloads(struct mock_vgpu *m)
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
static void mock_engine_reset(struct mock_vgpu *m, unsigned long engines)
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
static void mock_run_work(struct work_struct *work)
{
	struct mock_vgpu *m = container_of(work, struct mock_vgpu, run_work);

	if (gpu_run(m, false, 1) > 0) {
		/* the GPU's time for it: a stop lands with some queued */
		usleep_range(1000, 2000);
		queue_work(system_unbound_wq, &m->run_work);
	}
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

/*
 * What intel_gvt_reset_vgpu() clears, with m->lock held: the workloads,
 * the guest GGTT (without the ggtt_write hook), registers, fences and
 * execlist state. The companion's vgpu_reset comes after, unlocked.
 */
void mock_reset_locked(struct mock_vgpu *m)
{
	int e;

	mock_clean_workloads(m);
	mock_ppgtt_destroy_all(m);
	memset(m->ggtt, 0, m->ggtt_entries * sizeof(u64));
	memset(m->vregs, 0, m->vregs_size);
	memset(m->fences, 0, m->layout.fence_count * sizeof(u64));
	memset(m->hw_fence, 0, sizeof(m->hw_fence));	/* _clear_vgpu_fence() */
	memset(m->execlist, 0, MOCK_EXECLIST_SIZE);
	/* like GVT-g's reset, hws_pga[] stays; the CSB pointer starts over */
	for (e = 0; e < MOCK_ENGINES; e++)
		m->csb_wp[e] = 7;
}

/* The OpRegion (drivers/gpu/drm/i915/gvt/opregion.c and reg.h of 7.3). */
#define MOCK_OPREGION_SCIC	0x200	/* INTEL_GVT_OPREGION_SCIC */
#define MOCK_OPREGION_PARM	0x204	/* INTEL_GVT_OPREGION_PARM */
#define MOCK_SCIC_EXIT_MASK	0xe0	/* OPREGION_SCIC_EXIT_MASK */
#define MOCK_SWSCI_SELECT	BIT(15)	/* SWSCI_SCI_SELECT */
#define MOCK_SWSCI_TRIGGER	BIT(0)	/* SWSCI_SCI_TRIGGER */

/*
 * intel_vgpu_opregion_base_write_handler(): the guest wrote the OpRegion's
 * guest physical address to the ASLS config register. Called with m->lock
 * held.
 */
void mock_opregion_base_locked(struct mock_vgpu *m, u32 gpa)
{
	m->opregion_gfn = gpa >> PAGE_SHIFT;
}

/* Patch 0018: GVT-g's own write of guest memory, after it. */
static void mock_gpa_written(struct mock_vgpu *m, u64 gpa, u64 len)
{
	if (m->priv && m->ops->gpa_written) {
		cb_begin(m);
		m->ops->gpa_written(m->priv, gpa, len);
		cb_end(m);
	}
}

/*
 * querying_capabilities(): GETBIOSDATA (4) or GETBIOSCALLBACKS (6) asking
 * for the supported calls (0), GETBIOSDATA for the requested callbacks (1).
 */
static bool mock_scic_query(u32 scic)
{
	u32 func = (scic & 0x1e) >> 1, subfunc = (scic & 0xff00) >> 8;

	return ((func == 4 || func == 6) && subfunc == 0) ||
	       (func == 4 && subfunc == 1);
}

/*
 * intel_vgpu_emulate_opregion_request(): the guest wrote @swsci to the
 * SWSCI config register (intel_vgpu_emulate_cfg_write(), which does not
 * store it, so the trigger bit always reads as a 0->1 transition). GVT-g
 * reads the mailbox's SCIC and PARM from the guest's OpRegion and writes
 * its answer back into guest memory, itself (intel_gvt_write_gpa()): zero
 * for a capability query, else SCIC without its exit status ("failure"),
 * each write reported to gpa_written (patch 0018). Called with m->lock
 * held.
 */
int mock_opregion_request_locked(struct mock_vgpu *m, u32 swsci)
{
	u64 scic_pa = m->opregion_gfn * MOCK_PAGE + MOCK_OPREGION_SCIC;
	u64 parm_pa = m->opregion_gfn * MOCK_PAGE + MOCK_OPREGION_PARM;
	u32 scic, parm;
	int ret;

	ret = mem_rw(m, scic_pa, &scic, 4, false, false) ?:
	      mem_rw(m, parm_pa, &parm, 4, false, false);
	if (ret)
		return ret;
	if (!(swsci & MOCK_SWSCI_SELECT) || !(swsci & MOCK_SWSCI_TRIGGER))
		return 0;
	if (mock_scic_query(scic)) {
		scic = 0;
		parm = 0;
	} else {
		scic &= ~MOCK_SCIC_EXIT_MASK;
	}
	ret = mock_wr32(m, scic_pa, scic);
	mock_gpa_written(m, scic_pa, sizeof(scic));
	if (ret)
		return ret;
	ret = mock_wr32(m, parm_pa, parm);
	mock_gpa_written(m, parm_pa, sizeof(parm));
	return ret;
}

/* Mock vGPUs: what kvmgt's init and release of a vfio_device do. */

/*
 * Detaches the companion (with @reset, first as kvmgt's close_device()
 * does) and frees what mock_init() allocated; @m itself is the caller's.
 */
void mock_release(struct mock_vgpu *m, bool reset)
{
	if (m->run_work.func) {
		m->autorun = false;
		cancel_work_sync(&m->run_work);
	}
	mock_ppgtt_destroy_all(m);
	if (m->priv) {
		if (reset && m->ops->vgpu_reset)
			m->ops->vgpu_reset(m->priv);
		m->ops->vgpu_destroy(m->priv);
		module_put(m->ops->owner);
		m->priv = NULL;
	}
	if (m->q[0].next)
		mock_clean_workloads(m);
	vfree(m->mem);
	kvfree(m->vregs);
	kvfree(m->ggtt);
	kfree(m->fences);
	kfree(m->execlist);
	m->mem = NULL;
	m->vregs = NULL;
	m->ggtt = NULL;
	m->fences = NULL;
	m->execlist = NULL;
	m->magic = 0;
}

static void mock_free(struct mock_vgpu *m)
{
	if (!m)
		return;
	/* kvmgt: close_device(), then the vfio_device's release */
	mock_release(m, true);
	kfree(m);
}

/*
 * intel_gvt_create_vgpu(): the vGPU's state, zeroed; @own_mem gives it a
 * buffer of guest memory (the runs' vGPUs, which have no VFIO user).
 */
int mock_init(struct mock_vgpu *m, const char *name,
	      const struct intel_gvt_vgpu_layout *l, size_t vregs_size,
	      bool own_mem)
{
	int i;

	m->magic = MOCK_MAGIC;
	m->name = name;
	m->layout = *l;
	m->refuse_check = -1;
	m->scan_nonprivbb = scan_nonprivbb;
	m->fail_apply = -1;
	for (i = 0; i < MOCK_ENGINES; i++)
		m->csb_wp[i] = 7;
	mutex_init(&m->lock);
	mutex_init(&m->mem_lock);
	mutex_init(&m->drv_lock);
	for (i = 0; i < MOCK_ENGINES; i++)
		INIT_LIST_HEAD(&m->q[i]);
	INIT_WORK(&m->run_work, mock_run_work);
	m->ggtt_entries = (l->aperture_size + l->hidden_size) / MOCK_PAGE;
	if (own_mem)
		m->mem = vzalloc(MOCK_MEM_SIZE);
	m->vregs_size = vregs_size;
	m->vregs = kvzalloc(vregs_size, GFP_KERNEL);
	m->ggtt = kvcalloc(m->ggtt_entries, sizeof(u64), GFP_KERNEL);
	m->fences = kcalloc(l->fence_count, sizeof(u64), GFP_KERNEL);
	m->execlist = kzalloc(MOCK_EXECLIST_SIZE, GFP_KERNEL);
	if ((own_mem && !m->mem) || !m->vregs || !m->ggtt || !m->fences ||
	    !m->execlist)
		return -ENOMEM;
	return 0;
}

/*
 * The companion's vgpu_create, before the vfio_device is registered
 * (patch 0001): it sets the device's mig_ops and log_ops.
 */
int mock_attach(struct mock_vgpu *m, char *why, size_t why_len)
{
	const struct intel_gvt_companion_ops *ops;
	void *priv;

	guard(mutex)(&companion_lock);
	ops = companion;
	if (!ops || !try_module_get(ops->owner)) {
		snprintf(why, why_len, "no companion registered (is gmig loaded?)");
		return -ENOENT;
	}
	cb_begin(m);
	priv = ops->vgpu_create(to_vgpu(m), &m->vdev, &m->layout);
	cb_end(m);
	if (IS_ERR_OR_NULL(priv)) {
		module_put(ops->owner);
		snprintf(why, why_len, "%s: vgpu_create returned %ld", m->name,
			 priv ? PTR_ERR(priv) : 0L);
		return -EINVAL;
	}
	m->ops = ops;
	m->priv = priv;
	return 0;
}

static struct mock_vgpu *mock_create(const char *name,
				     const struct intel_gvt_vgpu_layout *l,
				     size_t vregs_size, char *why,
				     size_t why_len)
{
	struct mock_vgpu *m;
	int ret;

	m = kzalloc_obj(*m);
	if (!m)
		return ERR_PTR(-ENOMEM);
	m->vdev.dev = mock_dev;
	ret = mock_init(m, name, l, vregs_size, true) ?:
	      mock_attach(m, why, why_len);
	if (ret) {
		mock_free(m);
		return ERR_PTR(ret);
	}
	return m;
}

/* The scenario. */

struct scenario {
	const struct mock_type *type;
	struct mock_vgpu *src, *dst;
	unsigned long ubuf;		/* the writer's: dirty bitmaps */
	struct file *files[MOCK_MAX_FILES];
	int nfiles;
	struct file *src_data, *dst_data;
	u8 *stream;
	size_t stream_len;
	DECLARE_BITMAP(dirty, MOCK_MEM_PAGES);
	unsigned int restores_before;
	/* MIG_DATA_SIZE before the stop, and what the stop-copy sent */
	unsigned long data_size;
	size_t stopcopy_bytes;
	char why[192];
};

static __printf(2, 3) int fail(struct scenario *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->why, sizeof(s->why), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static const struct vfio_migration_ops *mig(struct mock_vgpu *m)
{
	return m->vdev.mig_ops;
}

/* The file a set_state() returned is the caller's: fput at teardown. */
static void keep_file(struct scenario *s, struct file *f)
{
	if (!IS_ERR_OR_NULL(f) && !WARN_ON(s->nfiles == MOCK_MAX_FILES))
		s->files[s->nfiles++] = f;
}

static struct file *set_state(struct scenario *s, struct mock_vgpu *m,
			      enum vfio_device_mig_state state)
{
	struct file *f = mig(m)->migration_set_state(&m->vdev, state);

	keep_file(s, f);
	return f;
}

static int get_state(struct mock_vgpu *m)
{
	enum vfio_device_mig_state st;
	int ret = mig(m)->migration_get_state(&m->vdev, &st);

	return ret ? ret : st;
}

/* set_state() to a state that opens no data fd. */
static int to_state(struct scenario *s, struct mock_vgpu *m,
		    enum vfio_device_mig_state state)
{
	struct file *f = set_state(s, m, state);

	if (IS_ERR(f))
		return fail(s, "%s: set_state(%d) from %d: %ld", m->name,
			    state, get_state(m), PTR_ERR(f));
	if (f)
		return fail(s, "%s: set_state(%d) returned a data fd",
			    m->name, state);
	if (get_state(m) != state)
		return fail(s, "%s: get_state %d after set_state(%d)",
			    m->name, get_state(m), state);
	return 0;
}

/* Reads @f until a read returns 0, appending to the stream. */
static int read_all(struct scenario *s, struct file *f, size_t *got)
{
	ssize_t n;

	*got = 0;
	for (;;) {
		size_t room = MOCK_STREAM_MAX - s->stream_len;

		if (!room)
			return fail(s, "stream longer than %u bytes",
				    MOCK_STREAM_MAX);
		n = kernel_read(f, s->stream + s->stream_len,
				min_t(size_t, room, SZ_64K), NULL);
		/* -ENOMSG: the end of the PRE_COPY data there is now. */
		if (n == 0 || n == -ENOMSG)
			return 0;
		if (n < 0)
			return fail(s, "read of the data fd: %zd%s", n,
				    f->f_op->read_iter ? "" :
				    " (the fd has no read_iter)");
		s->stream_len += n;
		*got += n;
	}
}

static int write_all(struct scenario *s, struct file *f, const u8 *buf,
		     size_t len)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = kernel_write(f, buf + done, len - done, NULL);
		if (n <= 0)
			return n ? n : -EIO;
		done += n;
	}
	return 0;
}

static int report_one(struct iova_bitmap *bm, unsigned long iova,
		      size_t length, void *opaque)
{
	struct vfio_device *vdev = opaque;

	return vdev->log_ops->log_read_and_clear(vdev, iova, length, bm);
}

/* A DMA logging report of the whole guest memory into s->dirty. */
static int report(struct scenario *s, struct mock_vgpu *m)
{
	void __user *ubuf = (void __user *)s->ubuf;
	struct iova_bitmap *bm;
	int ret;

	if (clear_user(ubuf, sizeof(s->dirty)))
		return fail(s, "clear_user of the bitmap");
	bm = iova_bitmap_alloc(0, MOCK_MEM_SIZE, MOCK_PAGE, ubuf);
	if (IS_ERR(bm))
		return fail(s, "iova_bitmap_alloc: %ld", PTR_ERR(bm));
	ret = iova_bitmap_for_each(bm, &m->vdev, report_one);
	iova_bitmap_free(bm);
	if (ret)
		return fail(s, "%s: log_read_and_clear: %d", m->name, ret);
	if (copy_from_user(s->dirty, ubuf, sizeof(s->dirty)))
		return fail(s, "copy_from_user of the bitmap");
	pr_info("%s: dirty log: %u pages: %*pbl\n", m->name,
		bitmap_weight(s->dirty, MOCK_MEM_PAGES), MOCK_MEM_PAGES,
		s->dirty);
	return 0;
}

static void touch_frame(struct mock_vgpu *m, unsigned long gfn)
{
	guard(mutex)(&m->mem_lock);
	m->mem[gfn * MOCK_PAGE + 123] ^= 0xa5;
}

/*
 * The runs' guest pins @pages frames from @gfn (@pinned) or unpins them,
 * in the mock's pin table, and reports it as kvmgt does: under its lock.
 */
static void pin_range(struct mock_vgpu *m, u64 gfn, u64 pages, bool pinned)
{
	void (*fn)(void *priv, u64 gfn, u64 size);
	u64 g;

	guard(mutex)(&m->lock);
	for (g = gfn; g - gfn < pages && g < MOCK_MEM_PAGES; g++)
		assign_bit(g, m->pins, pinned);
	fn = pinned ? m->ops->pages_pinned : m->ops->pages_unpinned;
	if (!fn)
		return;
	cb_begin(m);
	fn(m->priv, gfn, pages * MOCK_PAGE);
	cb_end(m);
}

static void pin(struct mock_vgpu *m, u64 gfn)
{
	pin_range(m, gfn, 1, true);
}

/*
 * The vGPU types a run migrates between: "1" the mock's own (small, so the
 * scenario is quick), "v5_1" the largest type of GVT-g
 * (drivers/gpu/drm/i915/gvt/vgpu.c: GVTg_V5_1 has 512 MiB of low and
 * 2 GiB of high GM, 4 fences; Gen9's mmio_size is 2 MiB), whose images are
 * 7 MiB each: a destination must buffer two of them.
 */
struct mock_type {
	const char *name;
	struct intel_gvt_vgpu_layout src, dst;
	size_t vregs_size;
};

static const struct mock_type mock_types[] = {
	{
		.name = "1",
		.src = { .aperture_base = SZ_32M, .aperture_size = SZ_32M,
			 .hidden_base = SZ_512M, .hidden_size = SZ_64M,
			 .fence_count = MOCK_FENCES, .id = 1 },
		.dst = { .aperture_base = SZ_64M, .aperture_size = SZ_32M,
			 .hidden_base = SZ_512M + SZ_64M, .hidden_size = SZ_64M,
			 .fence_count = MOCK_FENCES, .id = 2 },
		.vregs_size = SZ_512K,	/* the display registers too */
	}, {
		.name = "v5_1",
		.src = { .aperture_base = SZ_64M, .aperture_size = SZ_512M,
			 .hidden_base = SZ_1G, .hidden_size = SZ_2G,
			 .fence_count = MOCK_FENCES, .id = 1 },
		.dst = { .aperture_base = SZ_128M, .aperture_size = SZ_512M,
			 .hidden_base = SZ_1G + SZ_512M, .hidden_size = SZ_2G,
			 .fence_count = MOCK_FENCES, .id = 2 },
		.vregs_size = SZ_2M,
	},
};

static int step_register(struct scenario *s)
{
	guard(mutex)(&companion_lock);
	if (!companion)
		return fail(s, "no companion registered (is gmig loaded?)");
	return 0;
}

static int check_vdev(struct scenario *s, struct mock_vgpu *m)
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

static int step_create(struct scenario *s)
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
static int step_guest_setup(struct scenario *s)
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
static int step_log_start(struct scenario *s)
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
static int step_pre_copy(struct scenario *s)
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

static int step_pre_copy_report(struct scenario *s)
{
	return report(s, s->src);
}

/* The scanner hook on one command, as GVT-g's cmd_parser_exec() calls it. */
static int scan_one(struct mock_vgpu *m, u32 *cmd, u32 len, bool ggtt)
{
	int ret = 0;

	cb_begin(m);
	if (m->ops->scan_cmd)
		ret = m->ops->scan_cmd(m->priv, cmd, len, ggtt);
	cb_end(m);
	return ret;
}

/* MI_STORE_DATA_IMM of one dword, through the GGTT (@ggtt) or a PPGTT. */
static int scan_store(struct mock_vgpu *m, u64 addr, bool ggtt_bit,
		      bool ggtt_buf)
{
	u32 cmd[4] = { (0x20 << 23) | (ggtt_bit ? 1 << 22 : 0) | 2,
		       lower_32_bits(addr), upper_32_bits(addr), 1 };

	return scan_one(m, cmd, ARRAY_SIZE(cmd), ggtt_buf);
}

/* e) */
static int step_gpu_work(struct scenario *s)
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

/*
 * The stop lands with workloads queued: the source's guest sets up two
 * contexts (images at aperture entries 16-17 and 18-19, rings at hidden
 * entries 8 and 9) and submits three workloads the GPU has not run when
 * the migration stops the vGPU: context A twice on engine 0 (the second
 * continues its ring; the guest's context image then holds only the
 * second's tail), context B on engine 1. Each stores to the guest frames
 * mapped at aperture entries 20-23 (the targets), through the source's
 * graphics addresses.
 */
#define PEND_CTX_A	16
#define PEND_CTX_B	18
#define PEND_RING_A	8
#define PEND_RING_B	9
#define PEND_TARGET	20
#define PEND_GFN	150	/* frames 150-153 contexts, 154-155 rings,
				 * 156-159 targets
				 */

static u64 ap_gma(struct mock_vgpu *m, unsigned int entry)
{
	return m->layout.aperture_base + (u64)entry * MOCK_PAGE;
}

static u64 hid_gma(struct mock_vgpu *m, unsigned int entry)
{
	return m->layout.hidden_base + (u64)entry * MOCK_PAGE;
}

/* Byte offset in the GTT MMIO range of the entry that maps @gma. */
static u64 gtt_off(u64 gma)
{
	return gma / MOCK_PAGE * 8;
}

static u32 pend_desc(struct mock_vgpu *m, unsigned int entry)
{
	return lower_32_bits(ap_gma(m, entry)) | MOCK_DESC_VALID |
	       MOCK_DESC_PRIV;
}

/* The guest writes MI_STORE_DATA_IMM(@gma, @val) at ring offset @off. */
static void pend_sdi(struct mock_vgpu *m, u64 ring_gpa, u32 off, u64 gma,
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

static u64 pend_target(struct mock_vgpu *m, unsigned int t)
{
	return ap_gma(m, PEND_TARGET + t) + 0x40;
}

static int step_pending_submit(struct scenario *s)
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

/*
 * Graphics addresses outside command buffers (patches 0014-0016): the
 * source's guest maps three status pages and two surfaces at aperture
 * entries 24-28 (frames 160-164), programs fence 0 (Y tiled) over entries
 * 32-39 and fence 1 (X tiled) over 40-41, each engine's HWS_PGA, and
 * enables pipe A's primary plane and cursor on the surfaces.
 */
#define ADDR_HWSP	24
#define ADDR_SURF	27	/* the primary plane's; the cursor's next */
#define ADDR_GFN	160
#define ADDR_FENCE	32

/* What i915's i965_write_fence_reg() writes (Gen6+), stride 512. */
static u64 addr_fence(struct mock_vgpu *m, unsigned int entry,
		      unsigned int pages, bool y)
{
	u64 start = ap_gma(m, entry), end = start + (pages - 1) * MOCK_PAGE;

	return end << 32 | (u64)(512 / 128 - 1) << 32 | start |
	       (y ? BIT(1) : 0) | MOCK_FENCE_VALID;
}

/* A fence value of @from's aperture at the same place of @to's. */
static u64 fence_moved(u64 v, struct mock_vgpu *from, struct mock_vgpu *to)
{
	u64 d = to->layout.aperture_base - from->layout.aperture_base;

	return v + (d << 32) + d;
}

static int step_guest_addresses(struct scenario *s)
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
static int step_stop_copy(struct scenario *s)
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
static int step_stop_copy_report(struct scenario *s)
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
static int step_data_size(struct scenario *s)
{
	int ret = mig(s->src)->migration_get_data_size(&s->src->vdev,
						       &s->data_size);

	if (ret)
		return fail(s, "migration_get_data_size: %d", ret);
	pr_info("src: MIG_DATA_SIZE %lu with %u workloads queued\n",
		s->data_size, mock_queued(s->src));
	return 0;
}

static int step_data_size_true(struct scenario *s)
{
	if (s->stopcopy_bytes > s->data_size)
		return fail(s, "MIG_DATA_SIZE said %lu, the stop-copy sent %zu",
			    s->data_size, s->stopcopy_bytes);
	if (s->stopcopy_bytes > SZ_4K)
		return fail(s, "the stop-copy sent %zu bytes, not a delta",
			    s->stopcopy_bytes);
	return 0;
}

static int step_src_stop(struct scenario *s)
{
	return to_state(s, s->src, VFIO_DEVICE_STATE_STOP);
}

/* g) and i): a migration of the stream into dst, up to STOP. */
static int resume(struct scenario *s, const u8 *stream, int *werr)
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

static int step_resume(struct scenario *s)
{
	int werr, ret;

	ret = resume(s, s->stream, &werr);
	if (ret)
		return ret;
	if (werr)
		return fail(s, "write of the stream: %d", werr);
	return to_state(s, s->dst, VFIO_DEVICE_STATE_STOP);
}

static int check_restored(struct scenario *s)
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

static int step_resume_running(struct scenario *s)
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

static int step_log_stop(struct scenario *s)
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
static int step_no_reentry(struct scenario *s)
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

static int step_restore_stopped(struct scenario *s)
{
	if (s->dst->bad_restores)
		return fail(s, "dst: %u of %u restores while scheduled",
			    s->dst->bad_restores, s->dst->restores);
	return 0;
}

struct step {
	const char *name;
	int (*fn)(struct scenario *s);
	bool fatal;	/* the steps after it need it */
};

static const struct step steps[] = {
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

static const struct step stop_copy_steps[] = {
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

/*
 * "pin-lost": the lost pin record, once gmig's fault injection is armed.
 * Its step makes the first pin of the run (no guest-setup, which pins).
 */
static const struct step pin_lost_steps[] = {
	{ "register", step_register, true },
	{ "create", step_create, true },
	{ "pin-record-lost", step_pin_record_lost, false },
	{ NULL }
};

/* The two vGPUs' scenario state, the stream buffer, a user page for bitmaps. */
static struct scenario *scenario_new(const struct mock_type *type)
{
	struct scenario *s = kzalloc_obj(*s);

	if (!s)
		return NULL;
	s->type = type;
	s->stream = kvmalloc(MOCK_STREAM_MAX, GFP_KERNEL);
	s->ubuf = vm_mmap(NULL, 0, PAGE_SIZE, PROT_READ | PROT_WRITE,
			  MAP_ANONYMOUS | MAP_PRIVATE, 0);
	if (!s->stream || IS_ERR_VALUE(s->ubuf)) {
		if (!IS_ERR_VALUE(s->ubuf))
			vm_munmap(s->ubuf, PAGE_SIZE);
		kvfree(s->stream);
		kfree(s);
		return NULL;
	}
	return s;
}

/* l) the fds first, then the vGPUs (a fd may outlive its vGPU) */
static void scenario_free(struct scenario *s)
{
	while (s->nfiles)
		fput(s->files[--s->nfiles]);
	mock_free(s->src);
	mock_free(s->dst);
	vm_munmap(s->ubuf, PAGE_SIZE);
	kvfree(s->stream);
	kfree(s);
}

/* Runs the steps st; their names prefixed "<pfx>:" unless pfx is "". */
static int mock_run(const struct mock_type *type, const struct step *st,
		    const char *pfx)
{
	const char *sep = *pfx ? ":" : "";
	struct scenario *s;
	bool failed = false, aborted = false;

	s = scenario_new(type);
	if (!s) {
		pr_err("FAIL setup: out of memory\n");
		return -EIO;
	}

	atomic_set(&bad_vgpu_ptr, 0);
	for (; st->name; st++) {
		int ret;

		if (aborted) {
			pr_info("skip %s%s%s\n", pfx, sep, st->name);
			continue;
		}
		s->why[0] = 0;
		ret = st->fn(s);
		if (!ret) {
			pr_info("ok %s%s%s\n", pfx, sep, st->name);
			continue;
		}
		failed = true;
		pr_err("FAIL %s%s%s: %s\n", pfx, sep, st->name,
		       s->why[0] ? s->why : "error");
		aborted = st->fatal;
	}

	scenario_free(s);
	pr_info("ok %s%steardown\n", pfx, sep);
	pr_info("%s\n", failed ? "scenario failed" : "scenario passed");
	return failed ? -EIO : 0;
}

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
#define NARROW_PINNED		250	/* frames 1..250 */
#define NARROW_CTX_ENTRY	32	/* aperture entries 32..53: the context */
#define NARROW_CTX_GFN		200	/* ... image, frames 200..221 */
#define NARROW_CTX_PAGES	22
#define NARROW_HWSP_ENTRY	60	/* aperture entry 60: the status page */
#define NARROW_HWSP_GFN		230
#define NARROW_HWS_PGA_RCS	0x2080

struct narrow_profile {
	const char *name;
	/* scans the workload's commands; returns 0 or the hook's error */
	int (*scan)(struct mock_vgpu *m);
	/* frames the GPU writes: first, count */
	unsigned int first, count;
	/* with rehash=writeset, the candidates are the store's page and
	 * kvmgt's writes (else every tracked page)
	 */
	bool bounded;
};

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

static const struct narrow_profile narrow_profiles[] = {
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
static void narrow_setup(struct mock_vgpu *m)
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
static int narrow_workload(struct scenario *s, struct mock_vgpu *m,
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

static int narrow_check(struct scenario *s, const struct narrow_profile *p,
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
static int narrow_stop_copy(struct scenario *s, struct mock_vgpu *m,
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

static int mock_narrow(bool all)
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

static int step_engine_reset(struct scenario *s)
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
static int step_in_flight(struct scenario *s)
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

/* Steps run on their own, each on a new scenario ("engine-reset"). */
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

static const struct step single_steps[] = {
	{ "engine-reset", step_engine_reset, false },
	{ "in-flight", step_in_flight, false },
	{ "opregion", step_opregion, false },
	{ "hashing-inplace", step_hashing_inplace, false },
	{ "hashing-copy", step_hashing_copy, false },
	{ NULL }
};

static int mock_single(const struct step *st)
{
	struct scenario *s = scenario_new(&mock_types[0]);
	int ret;

	if (!s) {
		pr_err("FAIL %s: out of memory\n", st->name);
		return -EIO;
	}
	ret = st->fn(s);
	if (ret)
		pr_err("FAIL %s: %s\n", st->name, s->why[0] ? s->why : "error");
	else
		pr_info("ok %s\n", st->name);
	scenario_free(s);
	return ret ? -EIO : 0;
}

/*
 * "hostile SEED SECS": a randomized hostile client of the gvt provider,
 * seeded and bounded in time. It takes random steps out of what the VFIO
 * core, a VMM gone wrong and a guest can make gmig see on a GVT-g vGPU:
 * any device state (valid arc or not, values that are no state) on either
 * vGPU, reads of any length from the data files and garbage or a mutated
 * real stream written into them, DMA logging started over many, far or
 * huge ranges, stopped and reported anywhere, the kvmgt hooks with any
 * argument (pins and GGTT writes anywhere, workloads on any engine,
 * commands of random dwords to the scanner), guest writes, vgpu_reset (a
 * VFIO reset or close), and destroying a vGPU and creating it again while
 * its data files are open. After every step both vGPUs answer with a
 * state; after each episode, reset, they migrate from one to the other
 * with the state restored byte for byte and the destination running.
 */
#define HOSTILE_FILES		4
#define HOSTILE_STEPS		200
#define HOSTILE_RANGES		300

struct hostile {
	struct scenario *s;
	u64 rng;
	struct file *files[HOSTILE_FILES];
	struct mock_vgpu *owner[HOSTILE_FILES];	/* NULL: its vGPU is gone */
	u8 *buf;		/* bytes read, and garbage to write */
	size_t buf_len;
	unsigned long steps, episodes;
};

static u64 h_rnd(struct hostile *h)
{
	h->rng ^= h->rng >> 12;
	h->rng ^= h->rng << 25;
	h->rng ^= h->rng >> 27;
	return h->rng * 2685821657736338717ull;
}

static u64 h_below(struct hostile *h, u64 n)
{
	return n ? h_rnd(h) % n : 0;
}

static struct mock_vgpu *h_vgpu(struct hostile *h)
{
	return h_below(h, 2) ? h->s->src : h->s->dst;
}

static void h_put(struct hostile *h, int i)
{
	if (h->files[i])
		fput(h->files[i]);
	h->files[i] = NULL;
}

static void h_keep(struct hostile *h, struct file *f, struct mock_vgpu *m)
{
	int i = h_below(h, HOSTILE_FILES);

	h_put(h, i);
	h->files[i] = f;
	h->owner[i] = m;
}

static void h_log_start(struct hostile *h, struct mock_vgpu *m)
{
	struct interval_tree_node *nodes;
	struct rb_root_cached root = RB_ROOT_CACHED;
	unsigned int n = h_below(h, 4) ? 1 + h_below(h, 4) :
			 1 + h_below(h, HOSTILE_RANGES);
	u64 page_size = MOCK_PAGE, next = 0, len;
	unsigned int i;

	nodes = kcalloc(n, sizeof(*nodes), GFP_KERNEL);
	if (!nodes)
		return;
	/* As the VFIO core passes them: sorted, disjoint, page-aligned. */
	for (i = 0; i < n; i++) {
		next += MOCK_PAGE * h_below(h, 1 << (4 * h_below(h, 6)));
		len = MOCK_PAGE * (1 + h_below(h, 1 << (4 * h_below(h, 6))));
		if (next > (1ull << 52))
			break;
		nodes[i].start = next;
		nodes[i].last = next + len - 1;
		next += len;
		interval_tree_insert(&nodes[i], &root);
	}
	if (i)
		m->vdev.log_ops->log_start(&m->vdev, &root, i, &page_size);
	kfree(nodes);
}

static void h_log_report(struct hostile *h, struct mock_vgpu *m)
{
	/* what one page of user bitmap holds */
	u64 max = (u64)PAGE_SIZE * BITS_PER_BYTE * MOCK_PAGE;
	u64 iova = h_below(h, 2) ? 0 : MOCK_PAGE * h_below(h, 1ull << 40);
	u64 len = MOCK_PAGE * (1 + h_below(h, max / MOCK_PAGE));
	struct iova_bitmap *bm;

	bm = iova_bitmap_alloc(iova, len, MOCK_PAGE,
			       (void __user *)h->s->ubuf);
	if (IS_ERR(bm))
		return;
	iova_bitmap_for_each(bm, &m->vdev, report_one);
	iova_bitmap_free(bm);
}

static void h_hook(struct hostile *h, struct mock_vgpu *m)
{
	const struct intel_gvt_companion_ops *o = m->ops;
	u64 gfn = h_below(h, 2) ? h_below(h, MOCK_MEM_PAGES) : h_rnd(h) >> 12;
	u32 cmd[16];
	int i, n;

	cb_begin(m);
	switch (h_below(h, 9)) {
	case 0:
		/* in the mock's pin table too: read_pinned hands them out */
		pin_range(m, gfn, 1 + h_below(h, 4), true);
		break;
	case 1:
		pin_range(m, gfn, 1, false);
		break;
	case 2:
		if (o->ggtt_write)
			o->ggtt_write(m->priv, h_below(h, 2) ?
				      h_below(h, m->ggtt_entries * 2) :
				      h_rnd(h), h_rnd(h),
				      h_below(h, 2) ? MOCK_PTE(gfn) : h_rnd(h));
		break;
	case 3:
		if (o->workload_queued)
			o->workload_queued(m->priv, h_below(h, 8), h_rnd(h));
		break;
	case 4:
		if (o->workload_completed)
			o->workload_completed(m->priv, h_below(h, 8),
					      h_rnd(h), -(int)h_below(h, 3));
		break;
	case 5:
		if (o->ppgtt_created)
			o->ppgtt_created(m->priv, h_rnd(h));
		break;
	case 6:
		if (o->ppgtt_destroyed)
			o->ppgtt_destroyed(m->priv, h_rnd(h));
		break;
	case 7:
		if (o->gpa_written)
			o->gpa_written(m->priv, gfn * MOCK_PAGE + h_below(h, MOCK_PAGE),
				       h_below(h, 2) ? 4 : h_rnd(h));
		break;
	default:
		n = 1 + h_below(h, ARRAY_SIZE(cmd));
		for (i = 0; i < n; i++)
			cmd[i] = h_rnd(h);
		if (h_below(h, 2))	/* a real MI_STORE_DATA_IMM header */
			cmd[0] = (0x20 << 23) | (1 << 22) | 2;
		if (o->scan_cmd)
			o->scan_cmd(m->priv, cmd, n, h_below(h, 2));
		break;
	}
	cb_end(m);
}

static u32 h_state(struct hostile *h)
{
	static const u32 bogus[] = { 8, 9, 99, 0x7fffffff, 0xffffffff };

	if (h_below(h, 8))
		return h_below(h, VFIO_DEVICE_STATE_PRE_COPY_P2P + 1);
	return bogus[h_below(h, ARRAY_SIZE(bogus))];
}

static size_t h_garbage(struct hostile *h)
{
	size_t len, i;

	if (h->s->stream_len && h_below(h, 3)) {
		len = h_below(h, 4) ? h->s->stream_len :
		      h_below(h, h->s->stream_len);
		len = min_t(size_t, len, h->buf_len);
		memcpy(h->buf, h->s->stream, len);
		for (i = h_below(h, 4); i && len; i--)
			h->buf[h_below(h, len)] ^= 1 << h_below(h, 8);
		return len;
	}
	len = h_below(h, 4096);
	for (i = 0; i < len; i++)
		h->buf[i] = h_rnd(h);
	return len;
}

/*
 * vgpu_reset (a VFIO reset or close): the vGPU is scheduled again and no
 * byte moves through the data files it gave before.
 */
static int h_reset(struct hostile *h, struct mock_vgpu *m)
{
	int i;

	m->ops->vgpu_reset(m->priv);
	if (m->stopped)
		return fail(h->s, "%s: still stopped after vgpu_reset", m->name);
	for (i = 0; i < HOSTILE_FILES; i++) {
		struct file *f = h->files[i];

		if (!f || h->owner[i] != m)
			continue;
		if (((f->f_mode & FMODE_READ) &&
		     kernel_read(f, h->buf, 4096, NULL) > 0) ||
		    ((f->f_mode & FMODE_WRITE) &&
		     kernel_write(f, h->buf, 4096, NULL) > 0))
			return fail(h->s, "%s: a data file moved data after vgpu_reset",
				    m->name);
	}
	return 0;
}

/* Destroys a vGPU and creates it again; its data files stay open. */
static int h_recreate(struct hostile *h, bool src)
{
	struct scenario *s = h->s;
	struct mock_vgpu **slot = src ? &s->src : &s->dst;
	struct mock_vgpu *m;
	int i;

	for (i = 0; i < HOSTILE_FILES; i++)
		if (h->owner[i] == *slot)
			h->owner[i] = NULL;
	mock_free(*slot);
	*slot = NULL;
	m = mock_create(src ? "src" : "dst", src ? &s->type->src :
			&s->type->dst, s->type->vregs_size, s->why,
			sizeof(s->why));
	if (IS_ERR(m))
		return PTR_ERR(m);
	*slot = m;
	return check_vdev(s, m);
}

static int h_step(struct hostile *h)
{
	struct mock_vgpu *m = h_vgpu(h);
	struct file *f = h->files[h_below(h, HOSTILE_FILES)];
	ssize_t n;

	switch (h_below(h, 16)) {
	case 0 ... 3:
		f = mig(m)->migration_set_state(&m->vdev, h_state(h));
		if (!IS_ERR_OR_NULL(f))
			h_keep(h, f, m);
		break;
	case 4 ... 5:
		/* read(2) of a write-only fd is -EBADF before the driver */
		if (f && (f->f_mode & FMODE_READ)) {
			n = kernel_read(f, h->buf, h_below(h, 2) ? SZ_64K :
					h_below(h, h->buf_len), NULL);
			if (n > 0 && n <= MOCK_STREAM_MAX) {
				memcpy(h->s->stream, h->buf, n);
				h->s->stream_len = n;
			}
		}
		break;
	case 6 ... 7:
		if (f && (f->f_mode & FMODE_WRITE))
			kernel_write(f, h->buf, h_garbage(h), NULL);
		break;
	case 8:
		h_log_start(h, m);
		break;
	case 9:
		m->vdev.log_ops->log_stop(&m->vdev);
		break;
	case 10:
		h_log_report(h, m);
		break;
	case 11 ... 12:
		h_hook(h, m);
		break;
	case 13:
		touch_frame(m, h_below(h, MOCK_MEM_PAGES));
		break;
	case 14:
		if (h_below(h, 2) && m->ops->vgpu_reset)
			return h_reset(h, m);
		h_put(h, h_below(h, HOSTILE_FILES));
		break;
	default:
		if (!h_below(h, 32))
			return h_recreate(h, m == h->s->src);
		break;
	}
	return 0;
}

static bool h_state_ok(struct mock_vgpu *m)
{
	int st = get_state(m);

	return st >= 0 && st <= VFIO_DEVICE_STATE_PRE_COPY_P2P;
}

/* After an episode: reset, both run; src migrates to dst intact. */
static int h_recover(struct hostile *h)
{
	struct scenario *s = h->s;
	struct mock_vgpu *v[] = { s->src, s->dst };
	struct file *f, *g;
	size_t got;
	int i, werr, ret;

	for (i = 0; i < ARRAY_SIZE(v); i++) {
		ret = h_reset(h, v[i]);
		if (ret)
			return ret;
		v[i]->vdev.log_ops->log_stop(&v[i]->vdev);
		if (get_state(v[i]) != VFIO_DEVICE_STATE_RUNNING)
			return fail(s, "%s: state %d after vgpu_reset",
				    v[i]->name, get_state(v[i]));
	}
	s->stream_len = 0;
	ret = step_log_start(s);
	if (ret)
		return ret;
	f = set_state(s, s->src, VFIO_DEVICE_STATE_PRE_COPY);
	if (IS_ERR_OR_NULL(f))
		return fail(s, "set_state(PRE_COPY): %ld", PTR_ERR(f));
	ret = read_all(s, f, &got);
	if (ret)
		return ret;
	step_gpu_work(s);
	g = set_state(s, s->src, VFIO_DEVICE_STATE_STOP_COPY);
	if (IS_ERR(g))
		return fail(s, "set_state(STOP_COPY): %ld", PTR_ERR(g));
	ret = read_all(s, g ?: f, &got) ?:
	      to_state(s, s->src, VFIO_DEVICE_STATE_STOP) ?:
	      resume(s, s->stream, &werr);
	if (ret)
		return ret;
	if (werr)
		return fail(s, "write of a real stream: %d", werr);
	ret = to_state(s, s->dst, VFIO_DEVICE_STATE_STOP) ?:
	      check_restored(s) ?: step_resume_running(s) ?:
	      to_state(s, s->src, VFIO_DEVICE_STATE_RUNNING) ?:
	      step_log_stop(s);
	while (s->nfiles)
		fput(s->files[--s->nfiles]);
	return ret;
}

static int mock_hostile(u64 seed, unsigned int secs)
{
	unsigned long end = jiffies + secs * HZ;
	struct scenario *s;
	struct hostile *h;
	int i, ret;

	h = kzalloc_obj(*h);
	if (!h)
		goto nomem;
	h->buf_len = SZ_1M;
	h->buf = kvmalloc(h->buf_len, GFP_KERNEL);
	s = scenario_new(&mock_types[0]);
	if (!s || !h->buf) {
		if (s)
			scenario_free(s);
		kvfree(h->buf);
		kfree(h);
		goto nomem;
	}
	h->s = s;
	h->rng = seed | 1;

	pr_info("hostile: seed %llu, %u s\n", seed, secs);
	atomic_set(&bad_vgpu_ptr, 0);
	ret = step_register(s) ?: step_create(s) ?: step_guest_setup(s);
	while (!ret && time_before(jiffies, end) &&
	       !fatal_signal_pending(current)) {
		for (i = 0; !ret && i < HOSTILE_STEPS; i++, h->steps++) {
			ret = h_step(h);
			if (!ret && (!h_state_ok(s->src) || !h_state_ok(s->dst)))
				ret = fail(s, "step %lu: no valid state (%d, %d)",
					   h->steps, get_state(s->src),
					   get_state(s->dst));
			cond_resched();
		}
		if (!ret)
			ret = h_recover(h);
		if (!ret)
			h->episodes++;
	}
	if (!ret)
		ret = step_no_reentry(s) ?: step_restore_stopped(s);
	if (ret)
		pr_err("FAIL hostile: seed %llu, episode %lu: %s\n", seed,
		       h->episodes, s->why[0] ? s->why : "error");
	else
		pr_info("ok hostile\n");
	pr_info("hostile: %lu steps, %lu episodes (seed %llu)\n", h->steps,
		h->episodes, seed);

	/* the fds first, then the vGPUs */
	for (i = 0; i < HOSTILE_FILES; i++)
		h_put(h, i);
	scenario_free(s);
	kvfree(h->buf);
	kfree(h);
	return ret ? -EIO : 0;
nomem:
	pr_err("FAIL hostile: out of memory\n");
	return -ENOMEM;
}

static ssize_t run_write(struct file *file, const char __user *ubuf,
			 size_t count, loff_t *ppos)
{
	char buf[48];
	unsigned int secs;
	u64 seed;
	int i, ret;

	if (count >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, count))
		return -EFAULT;
	buf[count] = 0;
	if (sscanf(buf, "hostile %llu %u", &seed, &secs) == 2) {
		guard(mutex)(&run_lock);
		ret = mock_hostile(seed, secs);
		return ret ? ret : count;
	}
	if (sysfs_streq(buf, "stop-copy-rollback")) {
		guard(mutex)(&run_lock);
		ret = mock_run(&mock_types[0], stop_copy_steps,
			       "stop-copy-rollback");
		return ret ? ret : count;
	}
	if (sysfs_streq(buf, "pin-lost")) {
		guard(mutex)(&run_lock);
		ret = mock_run(&mock_types[0], pin_lost_steps, "pin-lost");
		return ret ? ret : count;
	}
	if (sysfs_streq(buf, "narrow writeset") || sysfs_streq(buf, "narrow all")) {
		guard(mutex)(&run_lock);
		ret = mock_narrow(sysfs_streq(buf, "narrow all"));
		return ret ? ret : count;
	}
	for (i = 0; single_steps[i].name; i++) {
		if (!sysfs_streq(buf, single_steps[i].name))
			continue;
		guard(mutex)(&run_lock);
		ret = mock_single(&single_steps[i]);
		return ret ? ret : count;
	}
	for (i = 0; i < ARRAY_SIZE(mock_types); i++) {
		if (!sysfs_streq(buf, mock_types[i].name))
			continue;
		guard(mutex)(&run_lock);
		/* the mock's own type unprefixed, "v5_1:<step>" else */
		ret = mock_run(&mock_types[i], steps,
			       i ? mock_types[i].name : "");
		return ret ? ret : count;
	}
	return -EINVAL;
}

static const struct file_operations run_fops = {
	.owner = THIS_MODULE,
	.write = run_write,
};

static int __init gvt_mock_init(void)
{
	int ret;

	mock_dev = root_device_register("gvt_mock");
	if (IS_ERR(mock_dev))
		return PTR_ERR(mock_dev);
	mock_dir = debugfs_create_dir("gvt_mock", NULL);
	debugfs_create_file("run", 0200, mock_dir, NULL, &run_fops);
	ret = kv_register(mock_dir);
	if (ret) {
		debugfs_remove_recursive(mock_dir);
		root_device_unregister(mock_dev);
		return ret;
	}
	pr_info("loaded\n");
	return 0;
}

static void __exit gvt_mock_exit(void)
{
	kv_unregister();
	debugfs_remove_recursive(mock_dir);
	root_device_unregister(mock_dev);
}

module_init(gvt_mock_init);
module_exit(gvt_mock_exit);

MODULE_DESCRIPTION("Mock of kvmgt's companion interface, for gmig's tests");
MODULE_LICENSE("GPL");
MODULE_IMPORT_NS("IOMMUFD");

// SPDX-License-Identifier: GPL-2.0
/*
 * gvt_mock's kvmgt: the stand-in guest driver. It follows no GVT-g file: it
 * plays a guest's i915, through the handlers of
 * drivers/gpu/drm/i915/gvt/ (gtt.c's GTT MMIO range, execlist.c's ELSP,
 * handlers.c's fence and HWS_PGA registers).
 *
 * The test guests have no GPU driver, so one
 * is played from the host, through debugfs gvt_mock/<uuid>/workload
 * ("start desktop", "start game", "stop"). Like a guest's i915 it
 * programs the GGTT through the GTT MMIO range (entries from its GM base
 * onto guest frames from 16 MiB: a state page, a two-page context image,
 * a ring, the targets), writes MI_STORE_DATA_IMM batches into the ring,
 * the ring's head and tail into the context image, and writes the
 * context's descriptor to the ELSP. At its first start (no state in guest
 * memory) it also sets up what i915 sets up once: two fences, each
 * engine's status page (HWS_PGA), pipe A's primary plane and cursor
 * (kv_setup_addresses()). A tick every 30 ms, while the device
 * is open, first runs the GPU (mock_gpu_run(): the queued workloads,
 * unless gmig stopped the schedule), then lets the driver submit its next
 * batch once the last one completed. Its state lives in guest memory (the
 * state page holds its GM base): on a destination at another GGTT place
 * the driver goes on with the source's graphics addresses, which map_gma
 * and the scanner hook move, as the guest OS would.
 *
 * The driver's own writes are CPU writes of a real guest, which the VMM
 * tracks; here they are DMA QEMU cannot see. So each one goes only where
 * the GPU or kvmgt writes for the same submission: the ring page gets a
 * breadcrumb store of each batch and lies in the context image's
 * write-back range (22 pages from the LRCA), the head and tail are in the
 * context image; the state page is written by the batch's own stores.
 * Every one thus reaches gmig's write set, and a page that a real guest
 * would have QEMU send is not missed for lack of a CPU.
 */

#define pr_fmt(fmt) "gvt_mock: " fmt

#include <linux/iova_bitmap.h>
#include <linux/module.h>
#include <linux/seq_file.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/vfio.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

#include "gvt_mock.h"
#include "kvmgt.h"

/* The stand-in guest driver: guest frames from KV_WINDOW, GGTT entries. */
#define KV_WINDOW	SZ_16M		/* the tests compare 16..56 MiB */
#define DRV_MAGIC	0x76726447	/* "Gdrv" */
enum { DRV_STATE, DRV_CTX, DRV_RING_CTX, DRV_RING, DRV_TARGET };
/* after the most targets: the engines' status pages, two surfaces */
#define DRV_HWSP	(DRV_TARGET + 256)
#define DRV_SURF	(DRV_HWSP + MOCK_ENGINES)
#define DRV_PAGES	(DRV_SURF + 2)
#define DRV_RING_DWORDS	(MOCK_PAGE / 4)

static const struct kv_profile kv_profiles[] = {
	{ "desktop", 16, 4 },
	{ "game", 256, 96 },
};

/*
 * The VMM's dirty log of the stand-in driver's CPU writes, on top of
 * gmig's DMA logging: what QEMU reads from the device is gmig's report
 * and those writes (cpu_dirty_reported in stats). kvmgt has no such
 * thing; it stands in for KVM's dirty log of a real guest's vCPUs.
 */
static int kv_log_start(struct vfio_device *vdev, struct rb_root_cached *ranges,
			u32 nnodes, u64 *page_size)
{
	struct kv_vgpu *kv = to_kv(vdev);
	int ret;

	xa_destroy(&kv->cpu_dirty);
	WRITE_ONCE(kv->cpu_dirty_lost, false);
	WRITE_ONCE(kv->logging, true);
	ret = kv->gmig_log->log_start(vdev, ranges, nnodes, page_size);
	if (ret)
		WRITE_ONCE(kv->logging, false);
	return ret;
}

static int kv_log_stop(struct vfio_device *vdev)
{
	struct kv_vgpu *kv = to_kv(vdev);

	WRITE_ONCE(kv->logging, false);
	xa_destroy(&kv->cpu_dirty);
	return kv->gmig_log->log_stop(vdev);
}

static int kv_log_read_and_clear(struct vfio_device *vdev, unsigned long iova,
				 unsigned long length, struct iova_bitmap *dirty)
{
	struct kv_vgpu *kv = to_kv(vdev);
	unsigned long gfn;
	void *e;
	int ret;

	ret = kv->gmig_log->log_read_and_clear(vdev, iova, length, dirty);
	if (ret || !length)
		return ret;
	if (READ_ONCE(kv->cpu_dirty_lost))
		return -ENOMEM;
	xa_for_each_range(&kv->cpu_dirty, gfn, e, iova >> PAGE_SHIFT,
			  (iova + length - 1) >> PAGE_SHIFT) {
		iova_bitmap_set(dirty, (u64)gfn << PAGE_SHIFT, PAGE_SIZE);
		xa_erase(&kv->cpu_dirty, gfn);
		kv->cpu_dirty_reported++;
	}
	return 0;
}

const struct vfio_log_ops kv_log_ops = {
	.log_start = kv_log_start,
	.log_stop = kv_log_stop,
	.log_read_and_clear = kv_log_read_and_clear,
};

/* The stand-in guest driver. */

static void kv_store(struct kv_vgpu *kv, u32 *n, u64 gma, u32 val)
{
	u32 *c = &kv->ring[*n];

	c[0] = MOCK_SDI;
	c[1] = lower_32_bits(gma);
	c[2] = upper_32_bits(gma);
	c[3] = val;
	*n += 4;
}

static u64 drv_gma(struct kv_vgpu *kv, unsigned int entry)
{
	return kv->gma + (u64)entry * MOCK_PAGE;
}

static u64 drv_gpa(unsigned int entry)
{
	return KV_WINDOW + (u64)entry * MOCK_PAGE;
}

/* One batch: builds it, writes the ring and context image, ELSP. */
static void kv_submit(struct kv_vgpu *kv)
{
	const struct kv_profile *p = kv->prof;
	struct mock_vgpu *m = &kv->m;
	u32 r = ++kv->round, n = 0, i, ctx[4];
	int ret;

	kv_store(kv, &n, drv_gma(kv, DRV_STATE), DRV_MAGIC);
	kv_store(kv, &n, drv_gma(kv, DRV_STATE) + 4, lower_32_bits(kv->gma));
	kv_store(kv, &n, drv_gma(kv, DRV_STATE) + 8, upper_32_bits(kv->gma));
	kv_store(kv, &n, drv_gma(kv, DRV_STATE) + 12, r);
	for (i = 0; i < p->stores; i++) {
		u32 t = (r * 7 + i * 13) % p->targets;
		u32 off = ((r * 5 + i) * 4) % MOCK_PAGE;

		kv_store(kv, &n, drv_gma(kv, DRV_TARGET + t) + off,
			 (r << 8) | (i & 0xff));
	}
	kv_store(kv, &n, drv_gma(kv, DRV_RING) + MOCK_PAGE - 4, r);

	/* head, tail, start and control of struct execlist_ring_context */
	ctx[0] = 0;
	ctx[1] = 4 * n;
	ctx[2] = lower_32_bits(drv_gma(kv, DRV_RING));
	ctx[3] = 1;	/* RB_CTL: enabled, one page */
	ret = mock_mem_rw(m, drv_gpa(DRV_RING), kv->ring, 4 * n, true);
	for (i = 0; !ret && i < ARRAY_SIZE(ctx); i++)
		ret = mock_mem_rw(m, drv_gpa(DRV_RING_CTX) + 0x14 + 8 * i,
				  &ctx[i], 4, true);
	if (!ret)
		ret = mock_elsp(m, 0, lower_32_bits(drv_gma(kv, DRV_CTX)) |
				MOCK_DESC_VALID | MOCK_DESC_PRIV, r);
	kv->rounds++;
	if (ret) {
		kv->faults++;
		pr_warn_ratelimited("%s: submission %u failed: %d\n", m->name,
				    r, ret);
	}
}

/*
 * What a guest's i915 sets up once, at its start: fence 0 (Y tiled) over
 * the first 8 targets and fence 1 (X tiled) over the surfaces, as
 * i965_write_fence_reg() writes them; each engine's HWS_PGA; pipe A's
 * primary plane and cursor on the surfaces. The registers go through
 * GVT-g's handlers (fence_mmio_write(), hws_pga_write(), plain stores
 * for the display registers).
 */
static int kv_setup_addresses(struct kv_vgpu *kv)
{
	struct mock_vgpu *m = &kv->m;
	u64 t = drv_gma(kv, DRV_TARGET), f = drv_gma(kv, DRV_SURF);
	unsigned int e;
	int ret;

	ret = mock_fence_mmio_write(m, 0, (t + 7 * MOCK_PAGE) << 32 |
				    3ULL << 32 | t | BIT(1) | MOCK_FENCE_VALID) ?:
	      mock_fence_mmio_write(m, 1, (f + MOCK_PAGE) << 32 | 3ULL << 32 |
				    f | MOCK_FENCE_VALID);
	for (e = 0; !ret && e < MOCK_ENGINES; e++)
		ret = mock_hws_pga_write(m, e,
					 lower_32_bits(drv_gma(kv, DRV_HWSP + e)));
	if (ret)
		return ret;
	mock_vreg_write(m, MOCK_DSPCNTR, MOCK_DISP_ENABLE);
	mock_vreg_write(m, MOCK_DSPSURF, lower_32_bits(f));
	mock_vreg_write(m, MOCK_CURCNTR, MOCK_CURSOR_MODE);
	mock_vreg_write(m, MOCK_CURBASE, lower_32_bits(f + MOCK_PAGE));
	return 0;
}

/*
 * "start", in the tick: the driver finds its state in guest memory (a
 * guest that ran it before, here or on a migration source) or takes the
 * vGPU's GM base, and programs its GGTT entries. (vfio_dma_rw() works from
 * the VFIO user's process or a kernel thread, not from the writer of the
 * debugfs file.)
 */
static int kv_start(struct kv_vgpu *kv, const struct kv_profile *p)
{
	struct mock_vgpu *m = &kv->m;
	u32 st[3];
	unsigned int k;
	int ret;

	ret = mock_mem_rw(m, drv_gpa(DRV_STATE), st, sizeof(st), false);
	if (ret)
		return ret;
	kv->gma = st[0] == DRV_MAGIC ? st[1] | (u64)st[2] << 32 :
				       m->layout.aperture_base;
	for (k = 0; k < DRV_PAGES; k++)
		if (k < DRV_TARGET + p->targets || k >= DRV_HWSP)
			mock_ggtt_mmio_write(m, (drv_gma(kv, k) >> 12) * 8,
					     MOCK_PTE(drv_gpa(k) >> 12));
	/* a driver that ran before (here or on a source) set these up */
	ret = st[0] == DRV_MAGIC ? 0 : kv_setup_addresses(kv);
	if (ret)
		return ret;
	kv->prof = p;
	pr_info("%s: workload %s at guest %#x, GM %#llx\n", m->name, p->name,
		KV_WINDOW, kv->gma);
	return 0;
}

void kv_tick(struct work_struct *work)
{
	struct kv_vgpu *kv = container_of(to_delayed_work(work),
					  struct kv_vgpu, tick);
	struct mock_vgpu *m = &kv->m;
	unsigned int queued;
	int errs, ran, ret;
	bool stopped;

	guard(mutex)(&m->drv_lock);
	if (!kv->open)
		return;
	scoped_guard(mutex, &m->lock)
		errs = m->run_errors;
	ran = mock_gpu_run(m, false);
	scoped_guard(mutex, &m->lock) {
		errs = m->run_errors - errs;
		stopped = m->stopped;
		queued = mock_queued(m);
	}
	if (ran > 0) {
		kv->contexts += ran - errs;
		kv->faults += errs;
	}
	if (kv->start && !stopped) {
		ret = kv_start(kv, kv->start);
		if (ret) {
			kv->faults++;
			pr_warn_ratelimited("%s: workload start: %d\n", m->name,
					    ret);
		}
		kv->start = NULL;
	} else if (kv->rp_start && !stopped) {
		kv->rp_start = false;
		ret = kv_replay_setup(kv);
		if (ret)
			kv->faults++;
	} else if (kv->rp && !stopped && !queued) {
		ret = kv_replay_tick(kv);
		if (ret) {
			kv->faults++;
			pr_warn_ratelimited("%s: replay: %d\n", m->name, ret);
		}
	} else if (kv->prof && !stopped && !queued) {
		kv_submit(kv);
	}
	queue_delayed_work(kv_parent.wq, &kv->tick,
			   msecs_to_jiffies(kv->rp ? 1 : KV_TICK_MS));
}

/* debugfs gvt_mock/<uuid>/{workload,stats} */

static ssize_t kv_workload_write(struct file *file, const char __user *ubuf,
				 size_t count, loff_t *ppos)
{
	struct kv_vgpu *kv = file->private_data;
	const struct kv_profile *p = &kv_profiles[0];
	char buf[96], *arg, *opt;
	u64 base = KV_WINDOW, size = 0;
	int i;

	if (count >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, count))
		return -EFAULT;
	buf[count] = 0;
	arg = strim(buf);
	guard(mutex)(&kv->m.drv_lock);
	if (!strcmp(arg, "stop")) {
		kv->prof = NULL;
		kv->start = NULL;
		kv_replay_stop(kv);
		return count;
	}
	if (strncmp(arg, "start", 5) || (arg[5] && arg[5] != ' '))
		return -EINVAL;
	arg = skip_spaces(arg + 5);
	/* start replay [base=<gpa>] [size=<bytes>]: the sim's syntax */
	if (!strncmp(arg, "replay", 6) && (!arg[6] || arg[6] == ' ')) {
		arg += 6;
		while ((opt = strsep(&arg, " ")))
			if (!strncmp(opt, "base=", 5))
				base = memparse(opt + 5, NULL);
			else if (!strncmp(opt, "size=", 5))
				size = memparse(opt + 5, NULL);
			else if (*opt)
				return -EINVAL;
		if (!kv->open)
			return -ENODEV;
		if (!kv->rp_len)
			return -ENOENT;
		kv->prof = NULL;
		kv->start = NULL;
		kv_replay_stop(kv);
		kv->rp_base = base;
		kv->rp_size = size;
		kv->rp_start = true;	/* the next tick sets it up */
		return count;
	}
	if (*arg) {
		for (i = 0; i < ARRAY_SIZE(kv_profiles); i++)
			if (!strcmp(arg, kv_profiles[i].name))
				break;
		if (i == ARRAY_SIZE(kv_profiles))
			return -EINVAL;
		p = &kv_profiles[i];
	}
	if (!kv->open)
		return -ENODEV;
	kv_replay_stop(kv);
	kv->start = p;	/* the next tick starts it */
	return count;
}

const struct file_operations kv_workload_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.write = kv_workload_write,
};

// SPDX-License-Identifier: GPL-2.0
/*
 * gvt_mock's kvmgt: mdev vGPUs that a real QEMU opens and gmig's gvt
 * provider migrates, on the vGPU model of companion.c.
 *
 * The "gvt_mock" mdev parent has one type, GVTg_V5_8 (the smallest Gen9
 * type of drivers/gpu/drm/i915/gvt/vgpu.c: 64 MiB of low and 384 MiB of
 * high GM, 4 fences; Gen9's MMIO space is 2 MiB). Each vGPU gets its own
 * place in the GGTT, so two of them sit at different partitions. Each mdev
 * is a vfio_device with an emulated IOMMU whose ops do what kvmgt's
 * intel_vgpu_dev_ops do (drivers/gpu/drm/i915/gvt/kvmgt.c of 7.3 with
 * patches/gvt), as far as gmig can tell:
 *
 * - init is intel_gvt_create_vgpu() and the companion's vgpu_create,
 *   before vfio_register_emulated_iommu_dev() (patch 0001), so gmig sets
 *   mig_ops and log_ops; release is the companion's vgpu_destroy;
 * - guest memory goes through vfio_dma_rw() (intel_gvt_read_gpa()); a
 *   present GGTT entry pins its page with vfio_pin_pages()
 *   (gvt_pin_guest_page(), reported to pages_pinned), and dma_unmap
 *   unpins the pages of the range (intel_vgpu_dma_unmap(),
 *   pages_unpinned); the GPU writes through an entry whose page is not
 *   pinned go to the scratch page, as the shadow entry maps it then;
 * - VFIO_DEVICE_RESET resets the vGPU (intel_gvt_reset_vgpu(): workloads
 *   dropped, GGTT, registers and fences cleared, pages unpinned; no
 *   ggtt_write hook) and then calls the companion's vgpu_reset
 *   (patch 0008); close_device calls vgpu_reset first, then releases;
 * - BAR0 holds the registers (the vreg image) and, in its upper half, the
 *   GTT MMIO range (intel_vgpu_emulate_ggtt_mmio_write() and _read(), with
 *   patch 0010's map_gma); an access of less than an entry there is
 *   dropped (kvmgt's partial update is not emulated);
 * - config space: the OpRegion's address (ASLS) and the SWSCI mailbox
 *   requests, which kvmgt answers in guest memory
 *   (mock_opregion_request_locked()).
 *
 * Not emulated: the aperture BAR, interrupts (INTx pin 0, no MSI: the
 * guests of the tests boot no OS), the OpRegion's content (the VFIO
 * region), display output and dma-buf (the plane decode is: stats
 * shows it).
 *
 * The stand-in guest driver. The test guests have no GPU driver, so one
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

#include <linux/debugfs.h>
#include <linux/device.h>
#include <linux/eventfd.h>
#include <linux/iommu.h>
#include <linux/mdev.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/unaligned.h>
#include <linux/vfio.h>
#include <linux/vfio_pci_core.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

#include "gvt_mock.h"

#define KV_NAME		"gvt_mock"
#define KV_TYPE		"GVTg_V5_8"
#define KV_MAX		4
#define KV_LOW_GM	SZ_64M
#define KV_HIGH_GM	(SZ_256M + SZ_128M)
#define KV_MMIO_SIZE	SZ_2M		/* Gen9's mmio_size */
#define KV_BAR0_SIZE	SZ_16M
#define KV_GTT_OFFSET	SZ_8M		/* Gen8+: GTT in BAR0's upper half */
#define KV_CFG_SIZE	256
#define KV_CFG_SWSCI	0xe8	/* INTEL_GVT_PCI_SWSCI */
#define KV_CFG_ASLS	0xfc	/* INTEL_GVT_PCI_OPREGION */
#define KV_ID_BASE	11		/* gmig: debugfs gmig/gvt-vgpu<id> */
#define KV_OFFSET_SHIFT	40
#define KV_INDEX(off)	((off) >> KV_OFFSET_SHIFT)
#define KV_OFFSET_MASK	((1ULL << KV_OFFSET_SHIFT) - 1)
#define KV_TICK_MS	30		/* the sim's desktop: 30 frames/s */

/* The stand-in guest driver: guest frames from KV_WINDOW, GGTT entries. */
#define KV_WINDOW	SZ_16M		/* the tests compare 16..56 MiB */
#define DRV_MAGIC	0x76726447	/* "Gdrv" */
enum { DRV_STATE, DRV_CTX, DRV_RING_CTX, DRV_RING, DRV_TARGET };
/* after the most targets: the engines' status pages, two surfaces */
#define DRV_HWSP	(DRV_TARGET + 256)
#define DRV_SURF	(DRV_HWSP + MOCK_ENGINES)
#define DRV_PAGES	(DRV_SURF + 2)
#define DRV_RING_DWORDS	(MOCK_PAGE / 4)

struct kv_profile {
	const char *name;
	unsigned int targets;	/* pages the batches write */
	unsigned int stores;	/* MI_STORE_DATA_IMM per batch */
};

static const struct kv_profile kv_profiles[] = {
	{ "desktop", 16, 4 },
	{ "game", 256, 96 },
};

struct kv_vgpu {
	struct mock_vgpu m;		/* first: m.vdev is the vfio_device */
	unsigned int slot;
	/* pinned guest frames -> shadow entries mapping them, under m.lock */
	struct xarray pins;
	unsigned long npins;
	u64 scratch_writes;
	u8 cfg[KV_CFG_SIZE];		/* under m.lock */
	spinlock_t req_lock;
	struct eventfd_ctx *req;
	struct delayed_work tick;
	struct dentry *dir;
	/* the stand-in guest driver, under m.drv_lock */
	bool open;
	const struct kv_profile *prof, *start;
	u64 gma;			/* the guest's GM base it uses */
	u32 round;
	u64 contexts, faults, rounds;
	u32 *ring;
};

static struct {
	struct device dev;
	struct mdev_parent parent;
	struct mdev_type type;
	struct mdev_type *types[1];
	struct workqueue_struct *wq;
	struct dentry *dir;
	struct mutex lock;		/* slots */
	DECLARE_BITMAP(slots, KV_MAX);
} kv_parent;

static const struct vfio_device_ops kv_dev_ops;

static struct kv_vgpu *to_kv(struct vfio_device *vdev)
{
	return container_of(vdev, struct kv_vgpu, m.vdev);
}

/* Pins: gvt_pin_guest_page() and gvt_unpin_guest_page(), with m->lock. */

static void kv_report(struct mock_vgpu *m, u64 gfn, bool pinned)
{
	void (*fn)(void *priv, u64 gfn, u64 size);

	fn = pinned ? m->ops->pages_pinned : m->ops->pages_unpinned;
	if (fn) {
		cb_begin(m);
		fn(m->priv, gfn, MOCK_PAGE);
		cb_end(m);
	}
}

void kv_pin(struct mock_vgpu *m, u64 gfn)
{
	struct kv_vgpu *kv = m->kv;
	void *e = xa_load(&kv->pins, gfn);
	unsigned long n = e ? xa_to_value(e) : 0;
	struct page *page;
	int ret;

	if (!n) {
		ret = vfio_pin_pages(&m->vdev, gfn << PAGE_SHIFT, 1,
				     IOMMU_READ | IOMMU_WRITE, &page);
		if (ret != 1) {
			/* kvmgt maps the scratch page instead */
			pr_notice_ratelimited("%s: pinning guest frame %#llx: %d\n",
					      m->name, gfn, ret);
			return;
		}
	}
	if (xa_is_err(xa_store(&kv->pins, gfn, xa_mk_value(n + 1),
			       GFP_KERNEL))) {
		if (!n)
			vfio_unpin_pages(&m->vdev, gfn << PAGE_SHIFT, 1);
		return;
	}
	if (!n) {
		kv->npins++;
		kv_report(m, gfn, true);
	}
}

static void kv_drop(struct kv_vgpu *kv, u64 gfn)
{
	xa_erase(&kv->pins, gfn);
	vfio_unpin_pages(&kv->m.vdev, gfn << PAGE_SHIFT, 1);
	kv->npins--;
	kv_report(&kv->m, gfn, false);
}

void kv_unpin(struct mock_vgpu *m, u64 gfn)
{
	struct kv_vgpu *kv = m->kv;
	void *e = xa_load(&kv->pins, gfn);
	unsigned long n = e ? xa_to_value(e) : 0;

	if (n > 1)
		xa_store(&kv->pins, gfn, xa_mk_value(n - 1), GFP_KERNEL);
	else if (n == 1)
		kv_drop(kv, gfn);
}

bool kv_pinned(struct mock_vgpu *m, u64 gfn)
{
	if (xa_load(&m->kv->pins, gfn))
		return true;
	m->kv->scratch_writes++;
	return false;
}

/* Unpins the frames @first..@last (m.lock held). */
static void kv_unpin_range(struct kv_vgpu *kv, u64 first, u64 last)
{
	unsigned long gfn;
	void *e;

	xa_for_each_range(&kv->pins, gfn, e, first, last)
		kv_drop(kv, gfn);
}

/* intel_gvt_reset_vgpu() and the release's gvt_cache_destroy(). */
static void kv_reset_vgpu(struct kv_vgpu *kv)
{
	struct mock_vgpu *m = &kv->m;

	scoped_guard(mutex, &m->drv_lock) {
		kv->prof = NULL;
		kv->start = NULL;
	}
	guard(mutex)(&m->lock);
	mock_reset_locked(m);
	kv_unpin_range(kv, 0, ULONG_MAX);
}

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

static void kv_tick(struct work_struct *work)
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
	} else if (kv->prof && !stopped && !queued) {
		kv_submit(kv);
	}
	queue_delayed_work(kv_parent.wq, &kv->tick,
			   msecs_to_jiffies(KV_TICK_MS));
}

/* debugfs gvt_mock/<uuid>/{workload,stats} */

static ssize_t kv_workload_write(struct file *file, const char __user *ubuf,
				 size_t count, loff_t *ppos)
{
	struct kv_vgpu *kv = file->private_data;
	const struct kv_profile *p = &kv_profiles[0];
	char buf[32], *arg;
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
		return count;
	}
	if (strncmp(arg, "start", 5) || (arg[5] && arg[5] != ' '))
		return -EINVAL;
	arg = skip_spaces(arg + 5);
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
	kv->start = p;	/* the next tick starts it */
	return count;
}

static const struct file_operations kv_workload_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.write = kv_workload_write,
};

/*
 * The graphics addresses GVT-g uses outside command buffers: each valid
 * hardware fence's range, each engine's status page (the guest's HWS_PGA
 * value in brackets), the CSB writes and the guest frame of each engine's
 * last one, the decoded primary plane and cursor (base, guest address).
 */
static void kv_stats_addresses(struct seq_file *s, struct mock_vgpu *m)
{
	static const char * const plane[] = { "primary", "cursor" };
	unsigned int i;
	u32 base;
	u64 gpa;

	scoped_guard(mutex, &m->lock) {
		for (i = 0; i < m->layout.fence_count; i++)
			if (m->hw_fence[i] & MOCK_FENCE_VALID)
				seq_printf(s, "fence%u: %#llx-%#llx\n", i,
					   m->hw_fence[i] & MOCK_FENCE_ADDR,
					   (u64)(upper_32_bits(m->hw_fence[i]) &
						 MOCK_FENCE_ADDR) + MOCK_PAGE - 1);
		for (i = 0; i < MOCK_ENGINES; i++) {
			u32 v = 0;

			if (MOCK_HWS_PGA(i) + 4 <= m->vregs_size)
				memcpy(&v, m->vregs + MOCK_HWS_PGA(i), 4);
			seq_printf(s, "hws_pga%u: %#x (%#x)\n", i,
				   m->hws_pga[i], v);
			seq_printf(s, "csb_gfn%u: %#llx\n", i,
				   m->csb_gpa[i] >> 12);
		}
		seq_printf(s, "csb_writes: %u\n", m->csb_writes);
	}
	for (i = 0; i < ARRAY_SIZE(plane); i++) {
		if (mock_decode_plane(m, i, &base, &gpa))
			seq_printf(s, "%s: none\n", plane[i]);
		else
			seq_printf(s, "%s: %#x %#llx\n", plane[i], base, gpa);
	}
}

static int kv_stats_show(struct seq_file *s, void *unused)
{
	struct kv_vgpu *kv = s->private;
	struct mock_vgpu *m = &kv->m;
	const struct intel_gvt_vgpu_layout *l = &m->layout;

	scoped_guard(mutex, &m->drv_lock) {
		seq_printf(s, "workload: %s\n", kv->prof ? kv->prof->name :
			   kv->start ? "starting" : "none");
		seq_printf(s, "contexts: %llu\n", kv->contexts);
		seq_printf(s, "faults: %llu\n", kv->faults);
		seq_printf(s, "submissions: %llu\n", kv->rounds);
	}
	scoped_guard(mutex, &m->lock) {
		seq_printf(s, "queued: %u\n", mock_queued(m));
		seq_printf(s, "pins: %lu\n", kv->npins);
		seq_printf(s, "scratch_writes: %llu\n", kv->scratch_writes);
		seq_printf(s, "scheduled: %s\n", m->stopped ? "no" : "yes");
	}
	kv_stats_addresses(s, m);
	seq_printf(s, "gm: low %#llx+%#llx high %#llx+%#llx\n",
		   l->aperture_base, l->aperture_size, l->hidden_base,
		   l->hidden_size);
	seq_printf(s, "gmig: gvt-vgpu%u\n", l->id);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(kv_stats);

/* PCI config space and BAR0. */

static void kv_cfg_init(u8 *c)
{
	memset(c, 0, KV_CFG_SIZE);
	put_unaligned_le16(PCI_VENDOR_ID_INTEL, c + PCI_VENDOR_ID);
	put_unaligned_le16(0x1912, c + PCI_DEVICE_ID);	/* SKL GT2 */
	c[PCI_REVISION_ID] = 0x06;
	put_unaligned_le16(PCI_CLASS_DISPLAY_VGA, c + PCI_CLASS_DEVICE);
	put_unaligned_le32(PCI_BASE_ADDRESS_MEM_TYPE_64, c + PCI_BASE_ADDRESS_0);
	put_unaligned_le16(PCI_VENDOR_ID_INTEL, c + PCI_SUBSYSTEM_VENDOR_ID);
	put_unaligned_le16(0x2212, c + PCI_SUBSYSTEM_ID);
}

static void kv_cfg_write(struct kv_vgpu *kv, u64 off, u64 val, size_t len)
{
	u8 *c = kv->cfg;

	if (off == PCI_COMMAND && len >= 2) {
		put_unaligned_le16(val & (PCI_COMMAND_MEMORY |
					  PCI_COMMAND_MASTER), c + off);
	} else if (off == PCI_BASE_ADDRESS_0 && len == 4) {
		put_unaligned_le32((val & ~(u64)(KV_BAR0_SIZE - 1)) |
				   PCI_BASE_ADDRESS_MEM_TYPE_64, c + off);
	} else if (off == PCI_BASE_ADDRESS_1 && len == 4) {
		put_unaligned_le32(val, c + off);
	} else if (off == KV_CFG_SWSCI && len == 4) {
		/* intel_vgpu_emulate_cfg_write(): a request, not stored */
		mock_opregion_request_locked(&kv->m, val);
	} else if (off == KV_CFG_ASLS && len == 4) {
		mock_opregion_base_locked(&kv->m, val);
		put_unaligned_le32(val, c + off);
	}
}

/* One naturally aligned access of @len bytes: 1, 2, 4 or 8. */
static int kv_access(struct kv_vgpu *kv, unsigned int index, u64 off,
		     u64 *val, size_t len, bool write)
{
	struct mock_vgpu *m = &kv->m;

	if (index == VFIO_PCI_CONFIG_REGION_INDEX) {
		if (off + len > KV_CFG_SIZE || len > 4)
			return -EINVAL;
		guard(mutex)(&m->lock);
		if (write)
			kv_cfg_write(kv, off, *val, len);
		else
			memcpy(val, kv->cfg + off, len);
		return 0;
	}
	if (index != VFIO_PCI_BAR0_REGION_INDEX || off + len > KV_BAR0_SIZE)
		return -EINVAL;
	if (off >= KV_GTT_OFFSET) {
		if (len != 8) {
			pr_notice_ratelimited("%s: GTT access of %zu bytes at %#llx dropped\n",
					      m->name, len, off);
			if (!write)
				*val = 0;
			return 0;
		}
		if (write)
			mock_ggtt_mmio_write(m, off - KV_GTT_OFFSET, *val);
		else
			*val = mock_ggtt_mmio_read(m, off - KV_GTT_OFFSET);
		return 0;
	}
	guard(mutex)(&m->lock);
	if (off + len > m->vregs_size) {
		if (!write)
			*val = 0;
	} else if (write) {
		memcpy(m->vregs + off, val, len);
	} else {
		memcpy(val, m->vregs + off, len);
	}
	return 0;
}

static ssize_t kv_rw(struct vfio_device *vdev, char __user *ubuf,
		     size_t count, loff_t *ppos, bool write)
{
	struct kv_vgpu *kv = to_kv(vdev);
	unsigned int index = KV_INDEX(*ppos);
	u64 off = *ppos & KV_OFFSET_MASK;
	size_t done = 0;

	while (done < count) {
		/* config space takes up to dwords, BAR0 up to GTT entries */
		size_t len = index == VFIO_PCI_CONFIG_REGION_INDEX ? 4 : 8;
		u64 val = 0;
		int ret;

		while (len > count - done || (off + done) % len)
			len /= 2;
		if (write && copy_from_user(&val, ubuf + done, len))
			return -EFAULT;
		ret = kv_access(kv, index, off + done, &val, len, write);
		if (ret)
			return done ? done : ret;
		if (!write && copy_to_user(ubuf + done, &val, len))
			return -EFAULT;
		done += len;
	}
	*ppos += done;
	return done;
}

static ssize_t kv_read(struct vfio_device *vdev, char __user *buf,
		       size_t count, loff_t *ppos)
{
	return kv_rw(vdev, buf, count, ppos, false);
}

static ssize_t kv_write(struct vfio_device *vdev, const char __user *buf,
			size_t count, loff_t *ppos)
{
	return kv_rw(vdev, (char __user *)buf, count, ppos, true);
}

static int kv_get_region_info(struct vfio_device *vdev,
			      struct vfio_region_info *info,
			      struct vfio_info_cap *caps)
{
	if (info->index >= VFIO_PCI_NUM_REGIONS)
		return -EINVAL;
	info->offset = (u64)info->index << KV_OFFSET_SHIFT;
	info->size = 0;
	if (info->index == VFIO_PCI_CONFIG_REGION_INDEX)
		info->size = KV_CFG_SIZE;
	else if (info->index == VFIO_PCI_BAR0_REGION_INDEX)
		info->size = KV_BAR0_SIZE;
	info->flags = info->size ? VFIO_REGION_INFO_FLAG_READ |
				   VFIO_REGION_INFO_FLAG_WRITE : 0;
	return 0;
}

/* Interrupts: only the request channel (device removal). */

static int kv_set_req(struct kv_vgpu *kv, int fd)
{
	struct eventfd_ctx *evt = NULL, *old;

	if (fd >= 0) {
		evt = eventfd_ctx_fdget(fd);
		if (IS_ERR(evt))
			return PTR_ERR(evt);
	}
	spin_lock(&kv->req_lock);
	old = kv->req;
	kv->req = evt;
	spin_unlock(&kv->req_lock);
	if (old)
		eventfd_ctx_put(old);
	return 0;
}

static long kv_set_irqs(struct kv_vgpu *kv, void __user *uarg)
{
	unsigned long minsz = offsetofend(struct vfio_irq_set, count);
	struct vfio_irq_set hdr;
	size_t data_size = 0;
	s32 fd;
	int ret;

	if (copy_from_user(&hdr, uarg, minsz))
		return -EFAULT;
	ret = vfio_set_irqs_validate_and_prepare(&hdr,
						 hdr.index == VFIO_PCI_REQ_IRQ_INDEX,
						 VFIO_PCI_NUM_IRQS, &data_size);
	if (ret)
		return ret;
	if ((hdr.flags & VFIO_IRQ_SET_ACTION_TYPE_MASK) !=
	    VFIO_IRQ_SET_ACTION_TRIGGER)
		return -EINVAL;
	if (hdr.flags & VFIO_IRQ_SET_DATA_NONE)
		return hdr.count ? -EINVAL : kv_set_req(kv, -1);
	if (!(hdr.flags & VFIO_IRQ_SET_DATA_EVENTFD) || hdr.count != 1)
		return -EINVAL;
	if (copy_from_user(&fd, uarg + minsz, sizeof(fd)))
		return -EFAULT;
	return kv_set_req(kv, fd);
}

static long kv_ioctl(struct vfio_device *vdev, unsigned int cmd,
		     unsigned long arg)
{
	struct kv_vgpu *kv = to_kv(vdev);
	void __user *uarg = (void __user *)arg;
	unsigned long minsz;

	switch (cmd) {
	case VFIO_DEVICE_GET_INFO: {
		struct vfio_device_info info;

		minsz = offsetofend(struct vfio_device_info, num_irqs);
		if (copy_from_user(&info, uarg, minsz))
			return -EFAULT;
		if (info.argsz < minsz)
			return -EINVAL;
		info.flags = VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET;
		info.num_regions = VFIO_PCI_NUM_REGIONS;
		info.num_irqs = VFIO_PCI_NUM_IRQS;
		return copy_to_user(uarg, &info, minsz) ? -EFAULT : 0;
	}
	case VFIO_DEVICE_GET_IRQ_INFO: {
		struct vfio_irq_info info;

		minsz = offsetofend(struct vfio_irq_info, count);
		if (copy_from_user(&info, uarg, minsz))
			return -EFAULT;
		if (info.argsz < minsz || info.index >= VFIO_PCI_NUM_IRQS)
			return -EINVAL;
		info.flags = 0;
		info.count = 0;
		if (info.index == VFIO_PCI_REQ_IRQ_INDEX) {
			info.flags = VFIO_IRQ_INFO_EVENTFD |
				     VFIO_IRQ_INFO_NORESIZE;
			info.count = 1;
		}
		return copy_to_user(uarg, &info, minsz) ? -EFAULT : 0;
	}
	case VFIO_DEVICE_SET_IRQS:
		return kv_set_irqs(kv, uarg);
	case VFIO_DEVICE_RESET:
		/* kvmgt: intel_gvt_reset_vgpu(), then patch 0008's hook */
		kv_reset_vgpu(kv);
		if (kv->m.ops->vgpu_reset)
			kv->m.ops->vgpu_reset(kv->m.priv);
		return 0;
	}
	return -ENOTTY;
}

/* vfio_device life cycle. */

static void kv_free_slot(unsigned int slot)
{
	guard(mutex)(&kv_parent.lock);
	clear_bit(slot, kv_parent.slots);
}

static int kv_init_dev(struct vfio_device *vdev)
{
	struct kv_vgpu *kv = to_kv(vdev);
	struct mock_vgpu *m = &kv->m;
	struct intel_gvt_vgpu_layout l = {
		.aperture_size = KV_LOW_GM, .hidden_size = KV_HIGH_GM,
		.fence_count = MOCK_FENCES,
	};
	char why[96] = "";
	int ret;

	scoped_guard(mutex, &kv_parent.lock) {
		kv->slot = find_first_zero_bit(kv_parent.slots, KV_MAX);
		if (kv->slot >= KV_MAX)
			return -ENOSPC;
		set_bit(kv->slot, kv_parent.slots);
	}
	/* intel_vgpu_alloc_resource(): low GM, high GM, each its own place */
	l.aperture_base = KV_LOW_GM * (1 + kv->slot);
	l.hidden_base = SZ_1G + (u64)SZ_512M * kv->slot;
	l.id = KV_ID_BASE + kv->slot;
	xa_init(&kv->pins);
	spin_lock_init(&kv->req_lock);
	INIT_DELAYED_WORK(&kv->tick, kv_tick);
	kv_cfg_init(kv->cfg);
	m->kv = kv;
	kv->ring = kmalloc(MOCK_PAGE, GFP_KERNEL);
	ret = kv->ring ? mock_init(m, dev_name(vdev->dev), &l, KV_MMIO_SIZE,
				   false) : -ENOMEM;
	if (!ret)
		ret = mock_attach(m, why, sizeof(why));
	if (ret) {
		if (*why)
			pr_err("%s: %s\n", dev_name(vdev->dev), why);
		mock_release(m, false);
		kfree(kv->ring);
		kv_free_slot(kv->slot);
	}
	return ret;
}

static void kv_release_dev(struct vfio_device *vdev)
{
	struct kv_vgpu *kv = to_kv(vdev);

	cancel_delayed_work_sync(&kv->tick);
	mock_release(&kv->m, false);
	xa_destroy(&kv->pins);
	kfree(kv->ring);
	kv_free_slot(kv->slot);
}

static int kv_open_device(struct vfio_device *vdev)
{
	struct kv_vgpu *kv = to_kv(vdev);

	/* a new VFIO user is a new guest: its driver's counts start at 0 */
	scoped_guard(mutex, &kv->m.drv_lock) {
		kv->open = true;
		kv->contexts = 0;
		kv->faults = 0;
		kv->rounds = 0;
		kv->round = 0;
	}
	queue_delayed_work(kv_parent.wq, &kv->tick, 0);
	return 0;
}

static void kv_close_device(struct vfio_device *vdev)
{
	struct kv_vgpu *kv = to_kv(vdev);

	scoped_guard(mutex, &kv->m.drv_lock)
		kv->open = false;
	cancel_delayed_work_sync(&kv->tick);
	/* patch 0008: the hook first, then intel_gvt_release_vgpu() */
	if (kv->m.ops->vgpu_reset)
		kv->m.ops->vgpu_reset(kv->m.priv);
	kv_reset_vgpu(kv);
	kv_set_req(kv, -1);
}

static void kv_dma_unmap(struct vfio_device *vdev, u64 iova, u64 length)
{
	struct kv_vgpu *kv = to_kv(vdev);

	if (!length)
		return;
	guard(mutex)(&kv->m.lock);
	kv_unpin_range(kv, iova >> PAGE_SHIFT, (iova + length - 1) >> PAGE_SHIFT);
}

/* Removal while a user has the device: ask it to let go, as vfio-pci. */
static void kv_request(struct vfio_device *vdev, unsigned int count)
{
	struct kv_vgpu *kv = to_kv(vdev);

	spin_lock(&kv->req_lock);
	if (kv->req)
		eventfd_signal(kv->req);
	else if (!count)
		dev_notice(vdev->dev, "no request channel: removal waits for the user\n");
	spin_unlock(&kv->req_lock);
}

static const struct vfio_device_ops kv_dev_ops = {
	.name = "vfio-gvt-mock",
	.init = kv_init_dev,
	.release = kv_release_dev,
	.open_device = kv_open_device,
	.close_device = kv_close_device,
	.read = kv_read,
	.write = kv_write,
	.ioctl = kv_ioctl,
	.get_region_info_caps = kv_get_region_info,
	.dma_unmap = kv_dma_unmap,
	.request = kv_request,
	.bind_iommufd = vfio_iommufd_emulated_bind,
	.unbind_iommufd = vfio_iommufd_emulated_unbind,
	.attach_ioas = vfio_iommufd_emulated_attach_ioas,
	.detach_ioas = vfio_iommufd_emulated_detach_ioas,
};

/* The mdev driver and parent. */

static int kv_probe(struct mdev_device *mdev)
{
	struct kv_vgpu *kv;
	int ret;

	kv = vfio_alloc_device(kv_vgpu, m.vdev, &mdev->dev, &kv_dev_ops);
	if (IS_ERR(kv))
		return PTR_ERR(kv);
	ret = vfio_register_emulated_iommu_dev(&kv->m.vdev);
	if (ret) {
		vfio_put_device(&kv->m.vdev);
		return ret;
	}
	dev_set_drvdata(&mdev->dev, kv);
	kv->dir = debugfs_create_dir(dev_name(&mdev->dev), kv_parent.dir);
	debugfs_create_file("workload", 0200, kv->dir, kv, &kv_workload_fops);
	debugfs_create_file("stats", 0444, kv->dir, kv, &kv_stats_fops);
	return 0;
}

static void kv_remove(struct mdev_device *mdev)
{
	struct kv_vgpu *kv = dev_get_drvdata(&mdev->dev);

	debugfs_remove_recursive(kv->dir);
	vfio_unregister_group_dev(&kv->m.vdev);
	vfio_put_device(&kv->m.vdev);
}

static unsigned int kv_get_available(struct mdev_type *mtype)
{
	guard(mutex)(&kv_parent.lock);
	return KV_MAX - bitmap_weight(kv_parent.slots, KV_MAX);
}

static ssize_t kv_show_description(struct mdev_type *mtype, char *buf)
{
	/* intel_vgpu_type's description, as kvmgt shows it */
	return sysfs_emit(buf,
			  "low_gm_size: %uMB\nhigh_gm_size: %uMB\nfence: %u\n"
			  "resolution: 1024x768\nweight: 2\n",
			  KV_LOW_GM >> 20, KV_HIGH_GM >> 20, MOCK_FENCES);
}

static struct mdev_driver kv_driver = {
	.device_api = VFIO_DEVICE_API_PCI_STRING,
	.driver = {
		.name = KV_NAME,
		.owner = THIS_MODULE,
		.mod_name = KBUILD_MODNAME,
	},
	.probe = kv_probe,
	.remove = kv_remove,
	.get_available = kv_get_available,
	.show_description = kv_show_description,
};

static const struct class kv_class = {
	.name = KV_NAME,
};

static void kv_parent_release(struct device *dev)
{
}

int kv_register(struct dentry *dir)
{
	int ret;

	mutex_init(&kv_parent.lock);
	kv_parent.dir = dir;
	kv_parent.type.sysfs_name = KV_TYPE;
	kv_parent.type.pretty_name = KV_TYPE;
	kv_parent.types[0] = &kv_parent.type;
	kv_parent.wq = alloc_workqueue(KV_NAME, WQ_UNBOUND | WQ_MEM_RECLAIM, 0);
	if (!kv_parent.wq)
		return -ENOMEM;
	ret = mdev_register_driver(&kv_driver);
	if (ret)
		goto err_wq;
	ret = class_register(&kv_class);
	if (ret)
		goto err_driver;
	kv_parent.dev.class = &kv_class;
	kv_parent.dev.release = kv_parent_release;
	dev_set_name(&kv_parent.dev, "%s", KV_NAME);
	ret = device_register(&kv_parent.dev);
	if (ret)
		goto err_put;
	ret = mdev_register_parent(&kv_parent.parent, &kv_parent.dev,
				   &kv_driver, kv_parent.types, 1);
	if (ret)
		goto err_device;
	return 0;

err_device:
	device_del(&kv_parent.dev);
err_put:
	put_device(&kv_parent.dev);
	class_unregister(&kv_class);
err_driver:
	mdev_unregister_driver(&kv_driver);
err_wq:
	destroy_workqueue(kv_parent.wq);
	return ret;
}

void kv_unregister(void)
{
	mdev_unregister_parent(&kv_parent.parent);
	device_unregister(&kv_parent.dev);
	class_unregister(&kv_class);
	mdev_unregister_driver(&kv_driver);
	destroy_workqueue(kv_parent.wq);
}

// SPDX-License-Identifier: GPL-2.0
/*
 * gvt_mock's kvmgt: mdev vGPUs that a real QEMU opens and gmig's gvt
 * provider migrates, on the mock's vGPU model (gvt_mock.h lists its files).
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
 * Config space and BAR0 are kvmgt_mmio.c's; the stand-in guest driver
 * that plays the test guests' i915 is kvmgt_drv.c's, its replay driver
 * kvmgt_replay.c's.
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
#include <linux/vfio.h>
#include <linux/vfio_pci_core.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

#include "gvt_mock.h"
#include "kvmgt.h"

struct kv_mdev_parent kv_parent;

static const struct vfio_device_ops kv_dev_ops;

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

int kv_pin(struct mock_vgpu *m, u64 gfn)
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
			return ret < 0 ? ret : -EFAULT;
		}
	}
	if (xa_is_err(xa_store(&kv->pins, gfn, xa_mk_value(n + 1),
			       GFP_KERNEL)) ||
	    (!n && xa_is_err(xa_store(&kv->pin_pages, gfn, page,
				      GFP_KERNEL)))) {
		if (!n) {
			xa_erase(&kv->pins, gfn);
			vfio_unpin_pages(&m->vdev, gfn << PAGE_SHIFT, 1);
		}
		return -ENOMEM;
	}
	if (!n) {
		kv->npins++;
		kv_report(m, gfn, true);
	}
	return 0;
}

static void kv_drop(struct kv_vgpu *kv, u64 gfn)
{
	xa_erase(&kv->pins, gfn);
	xa_erase(&kv->pin_pages, gfn);
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

/*
 * The page of a frame kvmgt holds pinned, NULL if none (m.lock held, as
 * kvmgt's cache_lock: intel_gvt_companion_read_pinned(), patch 0021).
 */
struct page *kv_pinned_page(struct mock_vgpu *m, u64 gfn)
{
	lockdep_assert_held(&m->lock);
	return xa_load(&m->kv->pin_pages, gfn);
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
		kv_replay_stop(kv);
	}
	guard(mutex)(&m->lock);
	mock_reset_locked(m);
	kv_unpin_range(kv, 0, ULONG_MAX);
}

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
	int i;

	scoped_guard(mutex, &m->drv_lock) {
		seq_printf(s, "workload: %s\n", kv->prof ? kv->prof->name :
			   kv->rp ? "replay" :
			   kv->start || kv->rp_start ? "starting" : "none");
		seq_printf(s, "contexts: %llu\n", kv->contexts);
		seq_printf(s, "faults: %llu\n", kv->faults);
		seq_printf(s, "submissions: %llu\n", kv->rounds);
		if (kv->rp) {
			seq_printf(s, "replay_submitted: %llu\n", kv->rp->submitted);
			seq_printf(s, "replay_executed: %llu\n", kv->rp->executed);
			seq_printf(s, "replay_loops: %llu\n", kv->rp->loops);
			seq_printf(s, "replay_pages_written: %llu\n",
				   kv->rp->pages_written);
			seq_printf(s, "replay_model_pages: %llu\n",
				   kv->rp->model_pages);
		}
		seq_printf(s, "replay file: %zu bytes\n", kv->rp_len);
		seq_printf(s, "cpu_dirty_reported: %llu\n",
			   kv->cpu_dirty_reported);
	}
	scoped_guard(mutex, &m->lock) {
		seq_printf(s, "queued: %u\n", mock_queued(m));
		seq_printf(s, "pins: %lu\n", kv->npins);
		seq_printf(s, "pages_read_pinned: %lld\n",
			   atomic64_read(&m->pinned_reads));
		seq_printf(s, "read_pinned_calls: %lld\n",
			   atomic64_read(&m->pinned_calls));
		seq_printf(s, "scratch_writes: %llu\n", kv->scratch_writes);
		seq_printf(s, "scheduled: %s\n", m->stopped ? "no" : "yes");
		seq_printf(s, "scan_cmds: %llu\n", m->scan_cmds);
		seq_printf(s, "scan_batches: %llu\n", m->scan_batches);
		seq_printf(s, "scan_refused: %llu\n", m->scan_refused);
		seq_printf(s, "scan_nonprivbb: %#lx\n", m->scan_nonprivbb);
		for (i = 0; i < MOCK_PPGTTS; i++)
			if (m->ppgtt[i].used)
				seq_printf(s, "ppgtt%d: root %#llx, %u pages\n", i,
					   m->ppgtt[i].pdps[0],
					   m->ppgtt[i].npins);
	}
	kv_stats_addresses(s, m);
	seq_printf(s, "gm: low %#llx+%#llx high %#llx+%#llx\n",
		   l->aperture_base, l->aperture_size, l->hidden_base,
		   l->hidden_size);
	seq_printf(s, "gmig: gvt-vgpu%u\n", l->id);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(kv_stats);

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
	xa_init(&kv->pin_pages);
	xa_init(&kv->cpu_dirty);
	spin_lock_init(&kv->req_lock);
	INIT_DELAYED_WORK(&kv->tick, kv_tick);
	kv_cfg_init(kv->cfg);
	m->kv = kv;
	kv->ring = kmalloc(MOCK_PAGE, GFP_KERNEL);
	ret = kv->ring ? mock_init(m, dev_name(vdev->dev), &l, KV_MMIO_SIZE,
				   false) : -ENOMEM;
	if (!ret)
		ret = mock_attach(m, why, sizeof(why));
	/* the VMM's dirty log of the driver's writes on top of gmig's */
	kv->gmig_log = m->vdev.log_ops;
	if (!ret && kv->gmig_log)
		m->vdev.log_ops = &kv_log_ops;
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
	xa_destroy(&kv->pin_pages);
	xa_destroy(&kv->cpu_dirty);
	kvfree(kv->rp_file);
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
	debugfs_create_file("replay", 0200, kv->dir, kv, &kv_replay_fops);
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

// SPDX-License-Identifier: GPL-2.0
/*
 * gmig sim provider, C side: what Linux 7.3 has no Rust binding for.
 *
 * Registers the "gmig" mdev parent with one mdev type per vGPU type the Rust
 * side defines, and for each mdev a vfio_device with an emulated IOMMU. Every
 * decision is taken in Rust (rust/sim/): this file copies user buffers,
 * manages interrupt eventfds and work items, and forwards the rest.
 *
 * Locking: gv->irq_lock protects the eventfd pointers and the INTx mask; it is
 * a spinlock because gmig_raise_irq() runs from the command streamer worker
 * with the Rust vGPU lock held. No C lock is held while calling into Rust.
 */
#include <linux/cpumask.h>
#include <linux/device.h>
#include <linux/eventfd.h>
#include <linux/iommu.h>
#include <linux/mdev.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vfio.h>
#include <linux/vfio_pci_core.h>
#include <linux/workqueue.h>

#include "gmig_internal.h"

MODULE_IMPORT_NS("IOMMUFD");

#define GMIG_NAME "gmig"
#define GMIG_MAX_TYPES 4
#define GMIG_OFFSET_SHIFT 40
#define GMIG_INDEX_TO_OFFSET(i) ((u64)(i) << GMIG_OFFSET_SHIFT)
#define GMIG_OFFSET_TO_INDEX(o) ((o) >> GMIG_OFFSET_SHIFT)
#define GMIG_OFFSET_MASK (GMIG_INDEX_TO_OFFSET(1) - 1)

static struct gmig_parent {
	struct device dev;
	struct mdev_parent parent;
	struct mdev_type types[GMIG_MAX_TYPES];
	struct mdev_type *type_ptrs[GMIG_MAX_TYPES];
	char names[GMIG_MAX_TYPES][GMIG_TYPE_NAME_LEN];
	char descs[GMIG_MAX_TYPES][GMIG_TYPE_DESC_LEN];
	unsigned int ntypes;
	struct workqueue_struct *wq;
} gmig_parent;

static const struct vfio_device_ops gmig_dev_ops;

/* Module parameters: migration policy, read when a migration starts. */
static char gmig_precopy[16] = "oneshot";
static char gmig_dirty[16] = "hash";
static char gmig_rehash[16] = "writeset";
static char gmig_hashing[16] = "inplace";
static char gmig_final_image[16] = "patch";

/* The values are parsed once, by Rust (gmig_core::planner::Param). */
static int gmig_param_set(const char *val, const struct kernel_param *kp,
			  enum gmig_param which)
{
	int ret = gmig_rs_param_set(which, val, kp->str->string,
				    kp->str->maxlen);

	if (ret)
		pr_err("gmig: %s: invalid value \"%s\"\n", kp->name, val);
	return ret;
}

static int gmig_precopy_set(const char *val, const struct kernel_param *kp)
{
	return gmig_param_set(val, kp, GMIG_PARAM_PRECOPY);
}

static int gmig_dirty_set(const char *val, const struct kernel_param *kp)
{
	return gmig_param_set(val, kp, GMIG_PARAM_DIRTY);
}

static int gmig_rehash_set(const char *val, const struct kernel_param *kp)
{
	return gmig_param_set(val, kp, GMIG_PARAM_REHASH);
}

static int gmig_hashing_set(const char *val, const struct kernel_param *kp)
{
	return gmig_param_set(val, kp, GMIG_PARAM_HASHING);
}

static int gmig_final_image_set(const char *val, const struct kernel_param *kp)
{
	return gmig_param_set(val, kp, GMIG_PARAM_FINAL_IMAGE);
}

static const struct kernel_param_ops gmig_precopy_ops = {
	.set = gmig_precopy_set,
	.get = param_get_string,
};

static const struct kernel_param_ops gmig_dirty_ops = {
	.set = gmig_dirty_set,
	.get = param_get_string,
};

static const struct kernel_param_ops gmig_rehash_ops = {
	.set = gmig_rehash_set,
	.get = param_get_string,
};

static const struct kernel_param_ops gmig_hashing_ops = {
	.set = gmig_hashing_set,
	.get = param_get_string,
};

static const struct kernel_param_ops gmig_final_image_ops = {
	.set = gmig_final_image_set,
	.get = param_get_string,
};

static struct kparam_string gmig_precopy_kps = {
	.maxlen = sizeof(gmig_precopy), .string = gmig_precopy,
};

static struct kparam_string gmig_dirty_kps = {
	.maxlen = sizeof(gmig_dirty), .string = gmig_dirty,
};

static struct kparam_string gmig_rehash_kps = {
	.maxlen = sizeof(gmig_rehash), .string = gmig_rehash,
};

static struct kparam_string gmig_hashing_kps = {
	.maxlen = sizeof(gmig_hashing), .string = gmig_hashing,
};

static struct kparam_string gmig_final_image_kps = {
	.maxlen = sizeof(gmig_final_image), .string = gmig_final_image,
};

module_param_cb(precopy, &gmig_precopy_ops, &gmig_precopy_kps, 0644);
MODULE_PARM_DESC(precopy, "GPU page pre-copy policy: oneshot (default), iterative, off");
module_param_cb(dirty, &gmig_dirty_ops, &gmig_dirty_kps, 0644);
MODULE_PARM_DESC(dirty, "dirty GPU pages: hash (software dirty pages, default) or all");
module_param_cb(rehash, &gmig_rehash_ops, &gmig_rehash_kps, 0644);
MODULE_PARM_DESC(rehash, "pages a hashing report re-hashes: writeset (what executed commands could write, default) or all (gMig)");
module_param_cb(hashing, &gmig_hashing_ops, &gmig_hashing_kps, 0644);
MODULE_PARM_DESC(hashing, "how hashing reads guest pages: inplace (pinned and hashed where they are, default) or copy (copied with vfio_dma_rw)");
module_param_cb(final_image, &gmig_final_image_ops, &gmig_final_image_kps, 0644);
MODULE_PARM_DESC(final_image, "how the stop-copy delta is made: patch (from what changed, default) or build (the image built whole, then compared)");

/*
 * CPUs a large re-hash is spread over (rust/migration/crew.rs): 0, the
 * default, is every online CPU; 1 keeps every re-hash on the caller's CPU
 * (the benchmark's one-CPU reference). Read when dirty logging starts.
 */
static unsigned int gmig_rehash_cpus;
module_param_named(rehash_cpus, gmig_rehash_cpus, uint, 0644);
MODULE_PARM_DESC(rehash_cpus, "CPUs a large re-hash is spread over: 0 (every online CPU, default), 1 (the caller's only), N (at most N, up to 8)");

/* CPUs a re-hash starting now may use: rehash_cpus, at most those online. */
unsigned int gmig_rehash_lanes(void)
{
	unsigned int online = num_online_cpus();
	unsigned int want = READ_ONCE(gmig_rehash_cpus);

	return want && want < online ? want : online;
}

/*
 * Copies module parameter @which into @buf (@len bytes, NUL-terminated)
 * under the parameter lock, which a write of the parameter holds: a
 * migration starting meanwhile reads the old value or the new one, never
 * a mix of the two.
 */
void gmig_param_get(enum gmig_param which, char *buf, size_t len)
{
	static const char *const vals[] = {
		[GMIG_PARAM_PRECOPY] = gmig_precopy,
		[GMIG_PARAM_DIRTY] = gmig_dirty,
		[GMIG_PARAM_REHASH] = gmig_rehash,
		[GMIG_PARAM_HASHING] = gmig_hashing,
		[GMIG_PARAM_FINAL_IMAGE] = gmig_final_image,
	};

	kernel_param_lock(THIS_MODULE);
	strscpy(buf, which < ARRAY_SIZE(vals) ? vals[which] : "", len);
	kernel_param_unlock(THIS_MODULE);
}

/* Helpers for Rust. */

void gmig_raise_irq(struct gmig_vdev *gv)
{
	unsigned long flags;

	spin_lock_irqsave(&gv->irq_lock, flags);
	if (gv->msi_trigger) {
		eventfd_signal(gv->msi_trigger);
	} else if (gv->intx_trigger && !gv->intx_masked) {
		/* INTx is level, emulated as automasked edge like vfio-pci. */
		gv->intx_masked = true;
		eventfd_signal(gv->intx_trigger);
	}
	spin_unlock_irqrestore(&gv->irq_lock, flags);
}

void gmig_kick_exec(struct gmig_vdev *gv)
{
	queue_work(gmig_parent.wq, &gv->exec_work);
}

void gmig_schedule_workload(struct gmig_vdev *gv, unsigned long delay_ms)
{
	mod_delayed_work(gmig_parent.wq, &gv->workload_work,
			 msecs_to_jiffies(delay_ms));
}

void gmig_cancel_workload(struct gmig_vdev *gv)
{
	cancel_delayed_work_sync(&gv->workload_work);
}

static void gmig_exec_work(struct work_struct *work)
{
	struct gmig_vdev *gv = container_of(work, struct gmig_vdev, exec_work);

	gmig_rs_exec(gv->vgpu);
}

static void gmig_workload_work(struct work_struct *work)
{
	struct gmig_vdev *gv = container_of(to_delayed_work(work),
					    struct gmig_vdev, workload_work);
	long next = gmig_rs_workload_tick(gv->vgpu);

	if (next >= 0)
		gmig_schedule_workload(gv, next);
}

/* Interrupts. */

static void gmig_disable_irqs(struct gmig_vdev *gv)
{
	struct eventfd_ctx *intx, *msi, *req;
	unsigned long flags;

	spin_lock_irqsave(&gv->irq_lock, flags);
	intx = gv->intx_trigger;
	msi = gv->msi_trigger;
	req = gv->req_trigger;
	gv->intx_trigger = NULL;
	gv->msi_trigger = NULL;
	gv->req_trigger = NULL;
	gv->intx_masked = false;
	spin_unlock_irqrestore(&gv->irq_lock, flags);
	if (intx)
		eventfd_ctx_put(intx);
	if (msi)
		eventfd_ctx_put(msi);
	if (req)
		eventfd_ctx_put(req);
}

static int gmig_set_trigger(struct gmig_vdev *gv, unsigned int index, int fd)
{
	struct eventfd_ctx *evt = NULL, *old;
	unsigned long flags;

	if (fd >= 0) {
		evt = eventfd_ctx_fdget(fd);
		if (IS_ERR(evt))
			return PTR_ERR(evt);
	}
	spin_lock_irqsave(&gv->irq_lock, flags);
	if (index == VFIO_PCI_INTX_IRQ_INDEX) {
		old = gv->intx_trigger;
		gv->intx_trigger = evt;
		gv->intx_masked = false;
	} else if (index == VFIO_PCI_MSI_IRQ_INDEX) {
		old = gv->msi_trigger;
		gv->msi_trigger = evt;
	} else {
		old = gv->req_trigger;
		gv->req_trigger = evt;
	}
	spin_unlock_irqrestore(&gv->irq_lock, flags);
	if (old)
		eventfd_ctx_put(old);
	return 0;
}

static int gmig_set_irqs(struct gmig_vdev *gv, struct vfio_irq_set *hdr,
			 void *data)
{
	unsigned int action = hdr->flags & VFIO_IRQ_SET_ACTION_TYPE_MASK;
	bool none = hdr->flags & VFIO_IRQ_SET_DATA_NONE;
	bool boolean = hdr->flags & VFIO_IRQ_SET_DATA_BOOL;
	bool efd = hdr->flags & VFIO_IRQ_SET_DATA_EVENTFD;
	unsigned long flags;

	if (hdr->index != VFIO_PCI_INTX_IRQ_INDEX &&
	    hdr->index != VFIO_PCI_MSI_IRQ_INDEX &&
	    hdr->index != VFIO_PCI_REQ_IRQ_INDEX)
		return -ENOTTY;

	if (action == VFIO_IRQ_SET_ACTION_MASK ||
	    action == VFIO_IRQ_SET_ACTION_UNMASK) {
		if (hdr->index != VFIO_PCI_INTX_IRQ_INDEX)
			return -ENOTTY;
		if (efd)
			return -ENOTTY;	/* no mask/unmask eventfds */
		if (hdr->start || hdr->count != 1)
			return -EINVAL;
		if (boolean && !*(u8 *)data)
			return 0;
		spin_lock_irqsave(&gv->irq_lock, flags);
		gv->intx_masked = action == VFIO_IRQ_SET_ACTION_MASK;
		spin_unlock_irqrestore(&gv->irq_lock, flags);
		return 0;
	}

	/* ACTION_TRIGGER */
	if (!hdr->count && none)
		return gmig_set_trigger(gv, hdr->index, -1);
	if (hdr->start || hdr->count != 1)
		return -EINVAL;
	if (efd)
		return gmig_set_trigger(gv, hdr->index, *(s32 *)data);
	if (hdr->index == VFIO_PCI_REQ_IRQ_INDEX)
		return -EINVAL;	/* only an eventfd can be the request channel */
	if (none || (boolean && *(u8 *)data))
		gmig_raise_irq(gv);
	return 0;
}

/* Regions. */

static ssize_t gmig_rw(struct vfio_device *vdev, char __user *ubuf,
		       size_t count, loff_t *ppos, bool write)
{
	struct gmig_vdev *gv = gmig_to_gv(vdev);
	unsigned int index = GMIG_OFFSET_TO_INDEX(*ppos);
	u64 off = *ppos & GMIG_OFFSET_MASK;
	size_t done = 0;

	while (done < count) {
		u64 val = 0;
		/* Config space takes up to dwords, BAR0 up to qwords. */
		size_t len = index == VFIO_PCI_CONFIG_REGION_INDEX ? 4 : 8;
		ssize_t ret;

		while (len > count - done || (off + done) % len)
			len /= 2;
		if (write && copy_from_user(&val, ubuf + done, len))
			return -EFAULT;
		ret = gmig_rs_region_rw(gv->vgpu, index, off + done, &val, len,
					write);
		if (ret < 0)
			return done ? done : ret;
		if (!write && copy_to_user(ubuf + done, &val, len))
			return -EFAULT;
		done += len;
	}
	*ppos += done;
	return done;
}

static ssize_t gmig_read(struct vfio_device *vdev, char __user *buf,
			 size_t count, loff_t *ppos)
{
	return gmig_rw(vdev, buf, count, ppos, false);
}

static ssize_t gmig_write(struct vfio_device *vdev, const char __user *buf,
			  size_t count, loff_t *ppos)
{
	return gmig_rw(vdev, (char __user *)buf, count, ppos, true);
}

static int gmig_get_region_info(struct vfio_device *vdev,
				struct vfio_region_info *info,
				struct vfio_info_cap *caps)
{
	struct gmig_vdev *gv = gmig_to_gv(vdev);
	long size;

	if (info->index >= VFIO_PCI_NUM_REGIONS)
		return -EINVAL;
	size = gmig_rs_region_size(gv->vgpu, info->index);
	if (size < 0)
		return size;
	info->offset = GMIG_INDEX_TO_OFFSET(info->index);
	info->size = size;
	info->flags = size ? VFIO_REGION_INFO_FLAG_READ |
			     VFIO_REGION_INFO_FLAG_WRITE : 0;
	return 0;
}

static long gmig_ioctl(struct vfio_device *vdev, unsigned int cmd,
		       unsigned long arg)
{
	struct gmig_vdev *gv = gmig_to_gv(vdev);
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
		if (info.index == VFIO_PCI_INTX_IRQ_INDEX) {
			info.flags = VFIO_IRQ_INFO_EVENTFD |
				     VFIO_IRQ_INFO_MASKABLE |
				     VFIO_IRQ_INFO_AUTOMASKED;
			info.count = 1;
		} else if (info.index == VFIO_PCI_MSI_IRQ_INDEX ||
			   info.index == VFIO_PCI_REQ_IRQ_INDEX) {
			info.flags = VFIO_IRQ_INFO_EVENTFD |
				     VFIO_IRQ_INFO_NORESIZE;
			info.count = 1;
		}
		return copy_to_user(uarg, &info, minsz) ? -EFAULT : 0;
	}
	case VFIO_DEVICE_SET_IRQS: {
		struct vfio_irq_set hdr;
		size_t data_size = 0;
		void *data = NULL;
		int ret;

		minsz = offsetofend(struct vfio_irq_set, count);
		if (copy_from_user(&hdr, uarg, minsz))
			return -EFAULT;
		ret = vfio_set_irqs_validate_and_prepare(&hdr, VFIO_PCI_NUM_IRQS,
							 VFIO_PCI_NUM_IRQS,
							 &data_size);
		if (ret)
			return ret;
		if (data_size) {
			data = memdup_user(uarg + minsz, data_size);
			if (IS_ERR(data))
				return PTR_ERR(data);
		}
		ret = gmig_set_irqs(gv, &hdr, data);
		kfree(data);
		return ret;
	}
	case VFIO_DEVICE_RESET:
		gmig_rs_sim_front_reset(vdev);
		return gmig_rs_reset(gv->vgpu);
	}
	return -ENOTTY;
}

/* vfio_device life cycle. */

static int gmig_init_dev(struct vfio_device *vdev)
{
	struct gmig_vdev *gv = gmig_to_gv(vdev);
	struct mdev_device *mdev = to_mdev_device(vdev->dev);
	int err = 0;

	gv->type = mdev->type - gmig_parent.types;
	spin_lock_init(&gv->irq_lock);
	INIT_WORK(&gv->exec_work, gmig_exec_work);
	INIT_DELAYED_WORK(&gv->workload_work, gmig_workload_work);
	gv->vgpu = gmig_rs_vgpu_create(gv, gv->type, dev_name(&mdev->dev),
				       &err);
	if (!gv->vgpu)
		return err;
	err = gmig_rs_sim_front_new(vdev, gv->vgpu);
	if (err) {
		gmig_rs_vgpu_destroy(gv->vgpu);
		gv->vgpu = NULL;
	}
	return err;
}

static void gmig_release_dev(struct vfio_device *vdev)
{
	struct gmig_vdev *gv = gmig_to_gv(vdev);

	/*
	 * A debugfs "start" on a device that was never opened, or queued just
	 * before close: no work item may run on the freed vGPU.
	 */
	cancel_delayed_work_sync(&gv->workload_work);
	cancel_work_sync(&gv->exec_work);
	gmig_rs_sim_front_destroy(vdev);
	gmig_rs_vgpu_destroy(gv->vgpu);
	gv->vgpu = NULL;
}

static int gmig_open_device(struct vfio_device *vdev)
{
	gmig_rs_vgpu_open(gmig_to_gv(vdev)->vgpu);
	return 0;
}

static void gmig_close_device(struct vfio_device *vdev)
{
	struct gmig_vdev *gv = gmig_to_gv(vdev);

	/*
	 * A client may close the device in the middle of a migration: end it,
	 * so that the next open finds a RUNNING device and stale data fds
	 * only get -ENODEV. Rust then stops the workload and the streamer.
	 */
	gmig_rs_sim_front_reset(vdev);
	gmig_rs_vgpu_close(gv->vgpu);
	cancel_delayed_work_sync(&gv->workload_work);
	cancel_work_sync(&gv->exec_work);
	gmig_disable_irqs(gv);
}

static void gmig_dma_unmap(struct vfio_device *vdev, u64 iova, u64 length)
{
	gmig_rs_dma_unmap(gmig_to_gv(vdev)->vgpu, iova, length);
}

/*
 * The vGPU is being removed while a VFIO user has it open: ask the user to
 * release it through the request eventfd (QEMU unplugs the device), as
 * vfio-pci does. Removal waits until the user closes the device.
 */
static void gmig_request(struct vfio_device *vdev, unsigned int count)
{
	struct gmig_vdev *gv = gmig_to_gv(vdev);
	unsigned long flags;

	spin_lock_irqsave(&gv->irq_lock, flags);
	if (gv->req_trigger) {
		if (!(count % 10))
			dev_notice_ratelimited(vdev->dev,
					       "relaying device request to user (#%u)\n",
					       count);
		eventfd_signal(gv->req_trigger);
	} else if (count == 0) {
		dev_notice(vdev->dev,
			   "no device request channel registered, blocked until released by user\n");
	}
	spin_unlock_irqrestore(&gv->irq_lock, flags);
}

static const struct vfio_device_ops gmig_dev_ops = {
	.name = "vfio-gmig",
	.init = gmig_init_dev,
	.release = gmig_release_dev,
	.open_device = gmig_open_device,
	.close_device = gmig_close_device,
	.read = gmig_read,
	.write = gmig_write,
	.ioctl = gmig_ioctl,
	.get_region_info_caps = gmig_get_region_info,
	.dma_unmap = gmig_dma_unmap,
	.request = gmig_request,
	.bind_iommufd = vfio_iommufd_emulated_bind,
	.unbind_iommufd = vfio_iommufd_emulated_unbind,
	.attach_ioas = vfio_iommufd_emulated_attach_ioas,
	.detach_ioas = vfio_iommufd_emulated_detach_ioas,
};

/* mdev driver and parent. */

static int gmig_probe(struct mdev_device *mdev)
{
	struct gmig_vdev *gv;
	int ret;

	gv = vfio_alloc_device(gmig_vdev, vdev, &mdev->dev, &gmig_dev_ops);
	if (IS_ERR(gv))
		return PTR_ERR(gv);
	ret = vfio_register_emulated_iommu_dev(&gv->vdev);
	if (ret) {
		vfio_put_device(&gv->vdev);
		return ret;
	}
	dev_set_drvdata(&mdev->dev, gv);
	return 0;
}

static void gmig_remove(struct mdev_device *mdev)
{
	struct gmig_vdev *gv = dev_get_drvdata(&mdev->dev);

	vfio_unregister_group_dev(&gv->vdev);
	vfio_put_device(&gv->vdev);
}

static unsigned int gmig_get_available(struct mdev_type *mtype)
{
	return gmig_rs_type_available(mtype - gmig_parent.types);
}

static ssize_t gmig_show_description(struct mdev_type *mtype, char *buf)
{
	return sysfs_emit(buf, "%s\n",
			  gmig_parent.descs[mtype - gmig_parent.types]);
}

static struct mdev_driver gmig_driver = {
	.device_api = VFIO_DEVICE_API_PCI_STRING,
	.driver = {
		.name = GMIG_NAME,
		.owner = THIS_MODULE,
		.mod_name = KBUILD_MODNAME,
	},
	.probe = gmig_probe,
	.remove = gmig_remove,
	.get_available = gmig_get_available,
	.show_description = gmig_show_description,
};

static const struct class gmig_class = {
	.name = GMIG_NAME,
};

static void gmig_parent_release(struct device *dev)
{
}

int gmig_vfio_register(void)
{
	struct gmig_parent *p = &gmig_parent;
	int i, n, ret;

	n = gmig_rs_type_count();
	if (n <= 0 || n > GMIG_MAX_TYPES)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		ret = gmig_rs_type_info(i, p->names[i], p->descs[i]);
		if (ret)
			return ret;
		/* mdev names the type directory "<parent>-<sysfs_name>". */
		p->types[i].sysfs_name = p->names[i];
		if (strstarts(p->names[i], GMIG_NAME "-"))
			p->types[i].sysfs_name += strlen(GMIG_NAME "-");
		p->types[i].pretty_name = p->names[i];
		p->type_ptrs[i] = &p->types[i];
	}
	p->ntypes = n;

	p->wq = alloc_workqueue("gmig", WQ_UNBOUND | WQ_MEM_RECLAIM, 0);
	if (!p->wq)
		return -ENOMEM;
	ret = mdev_register_driver(&gmig_driver);
	if (ret)
		goto err_wq;
	ret = class_register(&gmig_class);
	if (ret)
		goto err_driver;
	p->dev.class = &gmig_class;
	p->dev.release = gmig_parent_release;
	dev_set_name(&p->dev, "%s", GMIG_NAME);
	ret = device_register(&p->dev);
	if (ret)
		goto err_put;
	ret = mdev_register_parent(&p->parent, &p->dev, &gmig_driver,
				   p->type_ptrs, p->ntypes);
	if (ret)
		goto err_device;
	return 0;

err_device:
	device_del(&p->dev);
err_put:
	put_device(&p->dev);
	class_unregister(&gmig_class);
err_driver:
	mdev_unregister_driver(&gmig_driver);
err_wq:
	destroy_workqueue(p->wq);
	return ret;
}

void gmig_vfio_unregister(void)
{
	struct gmig_parent *p = &gmig_parent;

	mdev_unregister_parent(&p->parent);
	device_unregister(&p->dev);
	class_unregister(&gmig_class);
	mdev_unregister_driver(&gmig_driver);
	destroy_workqueue(p->wq);
}

// SPDX-License-Identifier: GPL-2.0
/*
 * gvt_mock's kvmgt: the mdev's PCI config space and BAR0, as
 * drivers/gpu/drm/i915/gvt/ has them: kvmgt.c (intel_vgpu_rw(), the
 * regions of intel_vgpu_ioctl()), cfg_space.c
 * (intel_vgpu_emulate_cfg_write(): the OpRegion's ASLS and SWSCI), mmio.c
 * (intel_vgpu_emulate_mmio_read() and _write() on the vreg image) and
 * gtt.c (the GTT MMIO range in BAR0's upper half).
 */

#define pr_fmt(fmt) "gvt_mock: " fmt

#include <linux/module.h>
#include <linux/pci.h>
#include <linux/uaccess.h>
#include <linux/unaligned.h>
#include <linux/vfio.h>
#include <linux/vfio_pci_core.h>

#include "gvt_mock.h"
#include "kvmgt.h"

/* PCI config space and BAR0. */

void kv_cfg_init(u8 *c)
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

ssize_t kv_read(struct vfio_device *vdev, char __user *buf,
		size_t count, loff_t *ppos)
{
	return kv_rw(vdev, buf, count, ppos, false);
}

ssize_t kv_write(struct vfio_device *vdev, const char __user *buf,
		 size_t count, loff_t *ppos)
{
	return kv_rw(vdev, (char __user *)buf, count, ppos, true);
}

int kv_get_region_info(struct vfio_device *vdev,
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

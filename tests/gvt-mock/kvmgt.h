/* SPDX-License-Identifier: GPL-2.0 */
/*
 * gvt_mock's kvmgt: what its files share. kvmgt.c is the mdev parent and
 * the vfio_device ops of its vGPUs (drivers/gpu/drm/i915/gvt/kvmgt.c),
 * kvmgt_mmio.c their config space and BAR0, kvmgt_drv.c the stand-in
 * guest driver, kvmgt_replay.c the replay driver.
 */
#ifndef _GVT_MOCK_KVMGT_H_
#define _GVT_MOCK_KVMGT_H_

#include <linux/device.h>
#include <linux/fs.h>
#include <linux/mdev.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/vfio.h>
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

struct kv_profile {
	const char *name;
	unsigned int targets;	/* pages the batches write */
	unsigned int stores;	/* MI_STORE_DATA_IMM per batch */
};

struct kv_vgpu {
	struct mock_vgpu m;		/* first: m.vdev is the vfio_device */
	unsigned int slot;
	/*
	 * pinned guest frames -> shadow entries mapping them, and -> their
	 * page (kvmgt's DMA cache, with patch 0020), under m.lock
	 */
	struct xarray pins;
	struct xarray pin_pages;
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
	/* the replay driver, under m.drv_lock: its file, the run, a start */
	u8 *rp_file;
	size_t rp_len, rp_cap;
	struct kv_replay *rp;
	bool rp_start;
	u64 rp_base, rp_size;
	/* the VMM's log of the driver's CPU writes (kv_log_ops) */
	const struct vfio_log_ops *gmig_log;
	struct xarray cpu_dirty;
	bool logging, cpu_dirty_lost;
	u64 cpu_dirty_reported;
};

/* The mdev parent (kvmgt.c); its workqueue runs the vGPUs' ticks. */
struct kv_mdev_parent {
	struct device dev;
	struct mdev_parent parent;
	struct mdev_type type;
	struct mdev_type *types[1];
	struct workqueue_struct *wq;
	struct dentry *dir;
	struct mutex lock;		/* slots */
	DECLARE_BITMAP(slots, KV_MAX);
};

extern struct kv_mdev_parent kv_parent;

/* A run of the replay driver (kvmgt_replay.c). */
#define RP_MAX_CONTEXTS		8

struct kv_replay {
	/* the file's header and map table */
	u32 contexts, execs, maps;
	u64 mapped;
	u64 *before;		/* pages of the maps before each */
	/* the window: guest base, GM of the first context, PML4, data */
	u64 base, gbase, pml4, data;
	size_t first, next;	/* record offsets */
	bool in_flight;
	size_t exec_off;	/* the execbuffer in flight */
	u32 desc, ctx_id;
	u32 tails[RP_MAX_CONTEXTS];
	u64 submitted, executed, loops, pages_written, model_pages;
};

static inline struct kv_vgpu *to_kv(struct vfio_device *vdev)
{
	return container_of(vdev, struct kv_vgpu, m.vdev);
}

/* kvmgt_mmio.c: PCI config space and BAR0 */
void kv_cfg_init(u8 *c);
ssize_t kv_read(struct vfio_device *vdev, char __user *buf,
		size_t count, loff_t *ppos);
ssize_t kv_write(struct vfio_device *vdev, const char __user *buf,
		 size_t count, loff_t *ppos);
int kv_get_region_info(struct vfio_device *vdev,
		       struct vfio_region_info *info,
		       struct vfio_info_cap *caps);

/* kvmgt_drv.c: the stand-in guest driver, and the VMM's log of its writes */
extern const struct vfio_log_ops kv_log_ops;
extern const struct file_operations kv_workload_fops;
void kv_tick(struct work_struct *work);

/* kvmgt_replay.c: the replay driver */
extern const struct file_operations kv_replay_fops;
void kv_replay_stop(struct kv_vgpu *kv);
int kv_replay_setup(struct kv_vgpu *kv);
int kv_replay_tick(struct kv_vgpu *kv);

#endif /* _GVT_MOCK_KVMGT_H_ */

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * gmig C shim <-> Rust interface.
 *
 * gmig_sim.c registers the sim's mdev parent, the vfio_device and its ops,
 * and forwards everything that is not plumbing to Rust through the
 * gmig_rs_*() functions below (defined in rust/abi.rs; each is an unsafe
 * extern "C" function whose "# Safety" states what C must pass). Rust
 * reaches the vfio_device through rust/vfio/ (DMA, pins, migration and
 * DMA logging ops) and calls back into the few gmig_*() helpers for
 * interrupts and work items.
 */
#ifndef GMIG_SHIM_H
#define GMIG_SHIM_H

#include <linux/types.h>

struct gmig_vdev;	/* C: one per mdev (embeds the vfio_device) */
struct gmig_vgpu;	/* Rust: the vGPU behind it */

#define GMIG_TYPE_NAME_LEN 32
#define GMIG_TYPE_DESC_LEN 160

/* Rust side (rust/sim/). */
int gmig_rs_type_count(void);
int gmig_rs_type_info(unsigned int type, char *name, char *desc);
unsigned int gmig_rs_type_available(unsigned int type);
struct gmig_vgpu *gmig_rs_vgpu_create(struct gmig_vdev *gv, unsigned int type,
				      const char *name, int *err);
void gmig_rs_vgpu_destroy(struct gmig_vgpu *vgpu);
void gmig_rs_vgpu_open(struct gmig_vgpu *vgpu);
void gmig_rs_vgpu_close(struct gmig_vgpu *vgpu);
long gmig_rs_region_size(struct gmig_vgpu *vgpu, unsigned int index);
ssize_t gmig_rs_region_rw(struct gmig_vgpu *vgpu, unsigned int index,
			  u64 off, void *buf, size_t len, bool write);
int gmig_rs_reset(struct gmig_vgpu *vgpu);
void gmig_rs_exec(struct gmig_vgpu *vgpu);
long gmig_rs_workload_tick(struct gmig_vgpu *vgpu);
void gmig_rs_dma_unmap(struct gmig_vgpu *vgpu, u64 iova, u64 length);

/*
 * The migration front of a sim vfio_device (rust/front.rs): made in its
 * init (before it is registered), reset at close and VFIO_DEVICE_RESET,
 * destroyed in its release.
 */
struct vfio_device;
int gmig_rs_sim_front_new(struct vfio_device *vdev, struct gmig_vgpu *vgpu);
void gmig_rs_sim_front_reset(struct vfio_device *vdev);
void gmig_rs_sim_front_destroy(struct vfio_device *vdev);

/* Module parameters (rust/abi.rs): checks and canonicalises a value. */
enum gmig_param {
	GMIG_PARAM_PRECOPY,	/* oneshot, iterative, off */
	GMIG_PARAM_DIRTY,	/* hash, all */
	GMIG_PARAM_REHASH,	/* writeset, all */
	GMIG_PARAM_HASHING,	/* inplace, copy */
	GMIG_PARAM_FINAL_IMAGE,	/* patch, build */
};

int gmig_rs_param_set(u32 which, const char *val, char *buf, size_t cap);

/* C side (shim/gmig_sim.c), called from Rust. */
int gmig_vfio_register(void);
void gmig_vfio_unregister(void);
void gmig_raise_irq(struct gmig_vdev *gv);
void gmig_kick_exec(struct gmig_vdev *gv);
void gmig_schedule_workload(struct gmig_vdev *gv, unsigned long delay_ms);
void gmig_cancel_workload(struct gmig_vdev *gv);
void gmig_param_get(enum gmig_param which, char *buf, size_t len);
unsigned int gmig_rehash_lanes(void);

#endif /* GMIG_SHIM_H */

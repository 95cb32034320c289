/* SPDX-License-Identifier: GPL-2.0 */
/*
 * gmig C shim <-> Rust interface.
 *
 * Linux 7.3 has no Rust binding for vfio or mdev, so gmig_sim.c registers the
 * mdev parent, the vfio_device and its ops, and forwards everything that is
 * not plumbing to Rust through the gmig_rs_*() functions below (defined in
 * rust/sim/, rust/migration/ and rust/gvt/, as each section says;
 * each is an unsafe extern "C" function whose "# Safety" states what C must
 * pass). Rust calls back into the few gmig_*() helpers for the VFIO DMA
 * path and interrupts. The Rust side never sees a struct vfio_device.
 */
#ifndef GMIG_SHIM_H
#define GMIG_SHIM_H

#include <linux/types.h>

struct gmig_vdev;	/* C: one per mdev (embeds the vfio_device) */
struct gmig_vgpu;	/* Rust: the vGPU behind it */
struct gmig_gvt_vgpu;	/* Rust: gvt provider state of a GVT-g vGPU */
struct intel_vgpu;	/* kvmgt's vGPU (opaque) */
struct iova_bitmap;
struct page;

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
 * Migration (rust/migration/), of the Rust object @rs of provider
 * @provider: a struct gmig_vgpu (sim) or a struct gmig_gvt_vgpu (GVT-g).
 */
#define GMIG_PROVIDER_SIM 1
#define GMIG_PROVIDER_GVT 2

int gmig_rs_mig_arc(u32 provider, void *rs, u32 cur, u32 next);
ssize_t gmig_rs_mig_read(u32 provider, void *rs, void *buf, size_t len,
			 u64 *at);
int gmig_rs_mig_read_commit(u32 provider, void *rs, u64 at, size_t n);
ssize_t gmig_rs_mig_write(u32 provider, void *rs, const void *buf,
			  size_t len);
int gmig_rs_precopy_info(u32 provider, void *rs, bool v2, u64 *initial_bytes,
			 u64 *dirty_bytes, bool *reinit);
int gmig_rs_mig_data_size(u32 provider, void *rs, u64 *size);
void gmig_rs_mig_abort(u32 provider, void *rs);
int gmig_rs_log_start(u32 provider, void *rs, const u64 *ranges, u32 n);
void gmig_rs_log_stop(u32 provider, void *rs);
int gmig_rs_log_report(u32 provider, void *rs, u64 iova, u64 length,
		       struct iova_bitmap *dirty);

/* What an arc does with the data fds (rust/abi.rs, gmig_core::vfio). */
enum gmig_arc_fds {
	GMIG_ARC_KEEP,
	GMIG_ARC_NEW_SAVING,
	GMIG_ARC_NEW_RESUMING,
	GMIG_ARC_END_DATA,
};

u32 gmig_rs_arc_fds(u32 cur, u32 next);

/* Module parameters (rust/abi.rs): checks and canonicalises a value. */
enum gmig_param {
	GMIG_PARAM_PRECOPY,	/* oneshot, iterative, off */
	GMIG_PARAM_DIRTY,	/* hash, all */
	GMIG_PARAM_REHASH,	/* writeset, all */
	GMIG_PARAM_HASHING,	/* inplace, copy */
	GMIG_PARAM_FINAL_IMAGE,	/* patch, build */
};

int gmig_rs_param_set(u32 which, const char *val, char *buf, size_t cap);

/* gvt provider (rust/gvt/): kvmgt companion callbacks. */
enum gmig_gvt_event {
	GMIG_GVT_WORKLOAD_QUEUED = 1,	/* engine, lrca */
	GMIG_GVT_WORKLOAD_COMPLETED,	/* engine, lrca, status */
	GMIG_GVT_SCHED_STOPPED,
	GMIG_GVT_SCHED_STARTED,
	GMIG_GVT_GGTT_WRITE,		/* index, old, new */
	GMIG_GVT_PPGTT_CREATED,		/* root */
	GMIG_GVT_PPGTT_DESTROYED,	/* root */
	GMIG_GVT_PAGES_PINNED,		/* gfn, size */
	GMIG_GVT_PAGES_UNPINNED,	/* gfn, size */
	GMIG_GVT_GPA_WRITTEN,		/* gpa, len */
	GMIG_GVT_PPGTT_ENTRY,		/* level, new guest entry */
	GMIG_GVT_SCAN_WORKLOAD,		/* engine, lrca, 4-level PML4 or 0 */
};

struct gmig_gvt_vgpu *gmig_rs_gvt_vgpu_create(struct intel_vgpu *vgpu,
					      struct device *dev,
					      u64 aperture_base,
					      u64 aperture_size,
					      u64 hidden_base, u64 hidden_size,
					      u32 fences, u32 id,
					      size_t vregs_size,
					      size_t execlist_size);
void gmig_rs_gvt_vgpu_destroy(struct gmig_gvt_vgpu *gg);
void gmig_rs_gvt_event(struct gmig_gvt_vgpu *gg, u32 event, u64 a, u64 b,
		       u64 c);
int gmig_rs_gvt_scan_cmd(struct gmig_gvt_vgpu *gg, u32 *cmd, u32 len,
			 bool ggtt);
int gmig_rs_gvt_map_gma(struct gmig_gvt_vgpu *gg, u64 *gma, u64 size);

/* C side of the gvt provider (shim/gmig_gvt.c), called from Rust. */
int gmig_gvt_register(void);
void gmig_gvt_unregister(void);
void gmig_gvt_stop_schedule(struct intel_vgpu *vgpu);
void gmig_gvt_start_schedule(struct intel_vgpu *vgpu);
ssize_t gmig_gvt_save_state(struct intel_vgpu *vgpu, u32 part, void *buf,
			    size_t size);
int gmig_gvt_restore_state(struct intel_vgpu *vgpu, u32 part,
			   const void *buf, size_t size);
int gmig_gvt_check_state(struct intel_vgpu *vgpu, u32 part, const void *buf,
			 size_t size);
int gmig_gvt_rw_gpa(struct intel_vgpu *vgpu, u64 gpa, void *buf, size_t len,
		    bool write);
int gmig_gvt_save_workloads(struct intel_vgpu *vgpu, u32 *buf, u32 count);
int gmig_gvt_resubmit_workloads(struct intel_vgpu *vgpu, const u32 *buf,
				u32 count);
bool gmig_gvt_can_read_pinned(void);
int gmig_gvt_read_pinned(struct intel_vgpu *vgpu, u64 gfn, u32 count,
			 void (*fn)(void *data, unsigned int index,
				    struct page *page),
			 void *data);

/* C side (shim/gmig_sim.c), called from Rust. */
int gmig_vfio_register(void);
void gmig_vfio_unregister(void);
int gmig_dma_rw(struct gmig_vdev *gv, u64 iova, void *data, size_t len,
		bool write);
void gmig_raise_irq(struct gmig_vdev *gv);
void gmig_kick_exec(struct gmig_vdev *gv);
void gmig_schedule_workload(struct gmig_vdev *gv, unsigned long delay_ms);
void gmig_cancel_workload(struct gmig_vdev *gv);
struct device *gmig_vdev_device(struct gmig_vdev *gv);
void gmig_log_set_dirty(struct iova_bitmap *dirty, u64 iova, u64 length);
int gmig_pin_pages(struct gmig_vdev *gv, u64 iova, int npage,
		   struct page **pages);
void gmig_unpin_pages(struct gmig_vdev *gv, u64 iova, int npage);
void gmig_param_get(enum gmig_param which, char *buf, size_t len);
unsigned int gmig_rehash_lanes(void);

#endif /* GMIG_SHIM_H */

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * gvt_mock's runs: what their files share. main.c has the scenario's
 * plumbing (the VFIO core's and QEMU's side: device states, data files,
 * dirty reports) and the debugfs file that starts a run; run_migrate.c
 * and run_checks.c the default run's steps, run_flood.c
 * "stop-copy-rollback", run_narrow.c "narrow", "engine-reset" and
 * "in-flight", run_vmm.c "opregion" and "hashing", run_hostile.c
 * "hostile".
 */
#ifndef _GVT_MOCK_RUN_H_
#define _GVT_MOCK_RUN_H_

#include <linux/atomic.h>
#include <linux/iova_bitmap.h>
#include <linux/mutex.h>
#include <linux/vfio.h>

#include "gvt_mock.h"

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

struct step {
	const char *name;
	int (*fn)(struct scenario *s);
	bool fatal;	/* the steps after it need it */
};

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

/* The "narrow" runs' guest (run_narrow.c), which "hashing" shares. */
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

/* main.c: the scenario's plumbing, the runs' vGPUs */
extern const struct mock_type mock_types[];
__printf(2, 3) int fail(struct scenario *s, const char *fmt, ...);
const struct vfio_migration_ops *mig(struct mock_vgpu *m);
struct file *set_state(struct scenario *s, struct mock_vgpu *m,
		       enum vfio_device_mig_state state);
int get_state(struct mock_vgpu *m);
int to_state(struct scenario *s, struct mock_vgpu *m,
	     enum vfio_device_mig_state state);
int read_all(struct scenario *s, struct file *f, size_t *got);
int write_all(struct scenario *s, struct file *f, const u8 *buf,
	      size_t len);
int report_one(struct iova_bitmap *bm, unsigned long iova,
	       size_t length, void *opaque);
int report(struct scenario *s, struct mock_vgpu *m);
void touch_frame(struct mock_vgpu *m, unsigned long gfn);
void pin_range(struct mock_vgpu *m, u64 gfn, u64 pages, bool pinned);
void pin(struct mock_vgpu *m, u64 gfn);
void mock_free(struct mock_vgpu *m);
struct mock_vgpu *mock_create(const char *name,
			      const struct intel_gvt_vgpu_layout *l,
			      size_t vregs_size, char *why,
			      size_t why_len);
struct scenario *scenario_new(const struct mock_type *type);
void scenario_free(struct scenario *s);

/* run_migrate.c: the default run, up to the destination's restore */
int step_register(struct scenario *s);
int check_vdev(struct scenario *s, struct mock_vgpu *m);
int step_create(struct scenario *s);
int step_guest_setup(struct scenario *s);
int step_log_start(struct scenario *s);
int step_pre_copy(struct scenario *s);
int step_pre_copy_report(struct scenario *s);
int scan_one(struct mock_vgpu *m, u32 *cmd, u32 len, bool ggtt);
int scan_store(struct mock_vgpu *m, u64 addr, bool ggtt_bit,
	       bool ggtt_buf);
int step_gpu_work(struct scenario *s);
u64 ap_gma(struct mock_vgpu *m, unsigned int entry);
u64 hid_gma(struct mock_vgpu *m, unsigned int entry);
u64 gtt_off(u64 gma);
u32 pend_desc(struct mock_vgpu *m, unsigned int entry);
void pend_sdi(struct mock_vgpu *m, u64 ring_gpa, u32 off, u64 gma,
	      u32 val);
u64 pend_target(struct mock_vgpu *m, unsigned int t);
int step_pending_submit(struct scenario *s);
u64 addr_fence(struct mock_vgpu *m, unsigned int entry,
	       unsigned int pages, bool y);
u64 fence_moved(u64 v, struct mock_vgpu *from, struct mock_vgpu *to);
int step_guest_addresses(struct scenario *s);
int step_stop_copy(struct scenario *s);
int step_stop_copy_report(struct scenario *s);
int step_data_size(struct scenario *s);
int step_data_size_true(struct scenario *s);
int step_src_stop(struct scenario *s);
int resume(struct scenario *s, const u8 *stream, int *werr);
int step_resume(struct scenario *s);
int check_restored(struct scenario *s);

/* run_checks.c: the default run from the restore on, its step lists */
int step_resume_running(struct scenario *s);
int step_log_stop(struct scenario *s);
int step_no_reentry(struct scenario *s);
int step_restore_stopped(struct scenario *s);
extern const struct step steps[];
extern const struct step pin_lost_steps[];

/* run_flood.c: "stop-copy-rollback" */
extern const struct step stop_copy_steps[];

/* run_narrow.c: "narrow", "engine-reset", "in-flight" */
extern const struct narrow_profile narrow_profiles[];
void narrow_setup(struct mock_vgpu *m);
int narrow_workload(struct scenario *s, struct mock_vgpu *m,
		    const struct narrow_profile *p);
int narrow_check(struct scenario *s, const struct narrow_profile *p,
		 bool all, unsigned int candidates);
int narrow_stop_copy(struct scenario *s, struct mock_vgpu *m,
		     unsigned int *candidates, s64 *downtime);
int mock_narrow(bool all);
int step_engine_reset(struct scenario *s);
int step_in_flight(struct scenario *s);

/* run_vmm.c: "opregion", "hashing"; the runs of one step each */
extern const struct step single_steps[];

/* run_hostile.c: "hostile" */
int mock_hostile(u64 seed, unsigned int secs);

#endif /* _GVT_MOCK_RUN_H_ */

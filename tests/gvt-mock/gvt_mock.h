/* SPDX-License-Identifier: GPL-2.0 */
/*
 * gvt_mock: what its files share. main.c says what the mock is and runs
 * the scenarios that drive gmig without VFIO (run.h, run_*.c); the vGPU
 * model under them and under kvmgt.c's mdev vGPUs, which a real QEMU
 * opens (kvmgt.h, kvmgt*.c), is split as drivers/gpu/drm/i915/gvt/ is:
 *
 *   companion.c   the companion's registration, stop and start of
 *                 scheduling (gvt/companion.c, sched_policy.c)
 *   state.c       the state parts' check, save and restore, pending
 *                 workloads saved and re-created (gvt/companion.c)
 *   ggtt.c        guest memory and pins, the GGTT, fences, status pages,
 *                 plane decode (kvmgt.c, gtt.c, aperture_gm.c,
 *                 handlers.c, fb_decoder.c)
 *   cmd_parser.c  command lengths, the ring and batch buffer scan
 *                 (cmd_parser.c)
 *   ppgtt.c       the shadow PPGTT (gtt.c)
 *   workload.c    workloads, ELSP, the GPU (execlist.c, scheduler.c)
 *   vgpu.c        a vGPU's creation, reset and release (vgpu.c)
 *   opregion.c    the OpRegion's SWSCI mailbox (opregion.c)
 */
#ifndef _GVT_MOCK_H_
#define _GVT_MOCK_H_

#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/sched.h>
#include <linux/sizes.h>
#include <linux/types.h>
#include <linux/vfio.h>
#include <linux/workqueue.h>

#include "../../rust/gvt/intel_gvt_companion.h"

struct kv_vgpu;

#define MOCK_PAGE		SZ_4K
#define MOCK_MEM_PAGES		256
#define MOCK_MEM_SIZE		(MOCK_MEM_PAGES * MOCK_PAGE)
#define MOCK_ENGINES		3
#define MOCK_EXECLIST_SIZE	(MOCK_ENGINES * 64)
#define MOCK_FENCES		4
#define MOCK_MAX_RESTORES	16
#define MOCK_MAX_FILES		8
#define MOCK_STREAM_MAX		SZ_32M
#define MOCK_MAGIC		0x6776746dU

/* GGTT entries the source's guest has set: frames 1..8. */
#define MOCK_GGTT_SET		4	/* per GM part */
#define MOCK_PTE(gfn)		(((u64)(gfn) << 12) | 1)

/* struct execlist_ring_context: the values' offsets in the ring context */
#define MOCK_CTX_HEAD		0x14
#define MOCK_CTX_TAIL		0x1c
#define MOCK_CTX_START		0x24
#define MOCK_CTX_CTL		0x2c
#define MOCK_RB_SIZE(ctl)	(((ctl) & 0x1ff000) + MOCK_PAGE)
#define MOCK_DESC_VALID		BIT(0)
#define MOCK_DESC_PRIV		BIT(8)	/* privilege_access */
#define MOCK_SDI		((0x20 << 23) | (1 << 22) | 2)
#define MOCK_MAX_DONE		16
#define MOCK_TARGETS		4

/*
 * The context descriptor's addressing mode (bits 4:3): 1 legacy 32-bit
 * (3-level PPGTT), 3 legacy 64-bit (4-level); the PDP registers' values in
 * the ring context page (struct execlist_ring_context: pdps[] holds PDP3
 * first, each pair's value after its register, UDW before LDW).
 */
#define MOCK_DESC_MODE(d)	(((d) >> 3) & 3)
#define MOCK_DESC_LEGACY_32	1
#define MOCK_DESC_LEGACY_64	3
#define MOCK_CTX_PDP_UDW(n)	(0xc4 - 0x10 * (n))
#define MOCK_CTX_PDP_LDW(n)	(0xcc - 0x10 * (n))
/* Gen8 PPGTT entries: bit 0 present, address bits 47:12 */
#define MOCK_PPGTT_PRESENT	BIT_ULL(0)
#define MOCK_PPGTT_ADDR		GENMASK_ULL(47, 12)
#define MOCK_PPGTTS		4	/* shadow PPGTTs per vGPU */

/*
 * A shadow of a guest PPGTT (struct intel_vgpu_mm of INTEL_GVT_MM_PPGTT):
 * its guest root pointers and the guest frames its leaf entries map, each
 * pinned.
 */
struct mock_ppgtt {
	bool used, lvl4;
	u64 pdps[4];
	u64 *gfns;
	u32 npins;
};

/*
 * Graphics addresses GVT-g keeps outside command buffers (patches 0014-0016):
 * fence ranges (Gen6+ layout, i965_write_fence_reg()), each engine's status
 * page (RING_HWS_PGA(engine->mmio_base) of the mock's engines: render,
 * blitter, video), the CSB in it (I915_HWS_CSB_BUF0_INDEX, Gen9's
 * INTEL_HWS_CSB_WRITE_INDEX), and pipe A's primary and cursor planes
 * (i9xx_plane_regs.h, intel_cursor_regs.h).
 */
#define MOCK_FENCE_VALID	BIT_ULL(0)
#define MOCK_FENCE_ADDR		GENMASK(31, 12)
#define MOCK_CSB_BUF0		0x10
#define MOCK_CSB_WRITE		0x1f
#define MOCK_DSPCNTR		0x70180
#define MOCK_DSPSURF		0x7019c
#define MOCK_CURCNTR		0x70080
#define MOCK_CURBASE		0x70084
#define MOCK_DISP_ENABLE	BIT(31)
#define MOCK_CURSOR_MODE	0x27

/* A queued workload (struct intel_vgpu_workload, what the mock needs). */
struct mock_workload {
	struct list_head list;
	struct intel_gvt_workload w;	/* the guest's view, as saved */
	u64 ctx_gma;			/* mapped LRCA */
	u64 ring_ctx_gpa;
	u64 rb_start;			/* mapped ring start */
	bool ppgtt, lvl4;		/* its PPGTT, if any: prepare_mm() */
	u64 pdps[4];
	u32 *shadow;			/* scanned ring, rb_head..rb_tail */
	u32 shadow_len;
};

/* What a completed workload left: the guest's targets after it. */
struct mock_done {
	u32 engine, desc;
	u32 t[MOCK_TARGETS];
};

struct mock_vgpu {
	/* never registered for the runs' vGPUs; kvmgt.c's: an mdev's */
	struct vfio_device vdev;
	u32 magic;
	const char *name;
	struct intel_gvt_vgpu_layout layout;
	const struct intel_gvt_companion_ops *ops;
	void *priv;

	/* guest memory, under mem_lock */
	struct mutex mem_lock;
	u8 *mem;

	/* state, and what the companion did with it, under lock */
	struct mutex lock;
	u8 *vregs;
	size_t vregs_size;
	u64 *ggtt;
	size_t ggtt_entries;
	u64 *fences;
	u8 *execlist;
	bool stopped;
	unsigned int stops, starts, saves, restores;
	unsigned int running_saves, stopped_saves, bad_restores;
	enum intel_gvt_state restored[MOCK_MAX_RESTORES];

	/* set while a callback runs as if under the vGPU's lock */
	struct task_struct *cb_task;
	atomic_t reentered, rw_calls, bad_vgpu;

	/* guest frames the companion read while log_reads is set */
	bool log_reads;
	DECLARE_BITMAP(reads, MOCK_MEM_PAGES);

	/*
	 * The runs' vGPUs only: the frames their guest had pinned (pin(),
	 * under lock), kvmgt's DMA cache for intel_gvt_companion_read_pinned();
	 * kvmgt.c's pins are its own. Pages that call handed the companion,
	 * and its calls (both vGPU kinds).
	 */
	DECLARE_BITMAP(pins, MOCK_MEM_PAGES);
	atomic64_t pinned_reads, pinned_calls;
	/* of reads, those read_pinned handed out (under mem_lock) */
	DECLARE_BITMAP(reads_pinned, MOCK_MEM_PAGES);

	/* the hardware fences (intel_vgpu_write_fence()), under lock */
	u64 hw_fence[MOCK_FENCES];
	/* vgpu->hws_pga[] and the CSB emulation's writes, under lock */
	u32 hws_pga[MOCK_ENGINES];
	u32 csb_wp[MOCK_ENGINES];
	u64 csb_gpa[MOCK_ENGINES];	/* status page of the last CSB */
	unsigned int csb_writes;
	/* fault injection: kvmgt's check refuses, or its apply fails */
	int refuse_check, fail_apply;
	unsigned int checks;

	/* workload queues per engine, under lock */
	struct list_head q[MOCK_ENGINES];
	/* completed workloads, in order, and the frames they are checked at */
	struct mock_done done[MOCK_MAX_DONE];
	unsigned int ndone;
	u64 target_gpa[MOCK_TARGETS];
	int run_errors;
	/* workloads completed since creation */
	unsigned int completed;

	/*
	 * With autorun, scheduling runs the queues on its own once started
	 * (GVT-g's workload_thread), one workload per run_work; the runs'
	 * steps run them explicitly otherwise.
	 */
	bool autorun;
	struct work_struct run_work;
	/*
	 * Fault injection: with fail_part set, the next save of part
	 * fail_part - 1 of a stopped vGPU fails (-EIO), then it is cleared
	 */
	unsigned int fail_part;

	/* the guest frame of the OpRegion (ASLS), under lock */
	u64 opregion_gfn;

	/*
	 * Shadow PPGTTs, under lock; the engines whose PPGTT batch buffers
	 * the scanner follows (GVT-g's debugfs scan_nonprivbb); what the
	 * scanner saw.
	 */
	struct mock_ppgtt ppgtt[MOCK_PPGTTS];
	unsigned long scan_nonprivbb;
	u64 scan_cmds, scan_batches, scan_refused;

	/*
	 * kvmgt.c's mdev vGPUs only (NULL for the runs'): guest memory is the
	 * VFIO user's, through vfio_dma_rw(), and GGTT entries pin pages.
	 */
	struct kv_vgpu *kv;
	/*
	 * Taken before lock by stop_schedule and by kvmgt_drv.c's stand-in guest
	 * driver around each of its submissions: a vCPU stops before QEMU
	 * stops the device, so no guest write lands after the stop.
	 */
	struct mutex drv_lock;
};

/* The OpRegion (drivers/gpu/drm/i915/gvt/opregion.c and reg.h of 7.3). */
#define MOCK_OPREGION_SCIC	0x200	/* INTEL_GVT_OPREGION_SCIC */
#define MOCK_OPREGION_PARM	0x204	/* INTEL_GVT_OPREGION_PARM */
#define MOCK_SCIC_EXIT_MASK	0xe0	/* OPREGION_SCIC_EXIT_MASK */
#define MOCK_SWSCI_SELECT	BIT(15)	/* SWSCI_SCI_SELECT */
#define MOCK_SWSCI_TRIGGER	BIT(0)	/* SWSCI_SCI_TRIGGER */

/* RING_HWS_PGA() of mock engine @e: render, blitter, video. */
static inline u32 MOCK_HWS_PGA(unsigned int e)
{
	static const u32 reg[MOCK_ENGINES] = { 0x2080, 0x22080, 0x12080 };

	return e < MOCK_ENGINES ? reg[e] : ~0U;
}

/* The companion's callbacks run as if with the vGPU's lock held. */
static inline void cb_begin(struct mock_vgpu *m)
{
	WRITE_ONCE(m->cb_task, current);
}

static inline void cb_end(struct mock_vgpu *m)
{
	WRITE_ONCE(m->cb_task, NULL);
}

/* companion.c: the companion, and the calls it makes */
extern struct mutex companion_lock;
extern const struct intel_gvt_companion_ops *companion;
extern atomic_t bad_vgpu_ptr;
struct mock_vgpu *to_mock(struct intel_vgpu *vgpu);
bool reentered(struct mock_vgpu *m, const char *what);
int mock_attach(struct mock_vgpu *m, char *why, size_t why_len);

/* state.c: the state parts */
size_t state_size(struct mock_vgpu *m, enum intel_gvt_state part);
void *state_ptr(struct mock_vgpu *m, enum intel_gvt_state part);

/* ggtt.c: guest memory, the GGTT, addresses outside command buffers */
int mem_rw(struct mock_vgpu *m, u64 gpa, void *buf, size_t len,
	   bool write, bool companion);
int mock_mem_rw(struct mock_vgpu *m, u64 gpa, void *buf, size_t len,
		bool write);
void mock_ggtt_set(struct mock_vgpu *m, size_t i, u64 val);
bool mock_gm_valid(struct mock_vgpu *m, u64 gma, u64 size);
u64 mock_gma_to_gpa(struct mock_vgpu *m, u64 gma);
u32 mock_rd32(struct mock_vgpu *m, u64 gpa);
int mock_wr32(struct mock_vgpu *m, u64 gpa, u32 v);
int mock_map_gma(struct mock_vgpu *m, u64 *gma, u64 size);
int mock_map_fence(struct mock_vgpu *m, u64 *v);
void mock_write_fence(struct mock_vgpu *m, unsigned int i, u64 v);
int mock_fence_mmio_write(struct mock_vgpu *m, unsigned int fence, u64 val);
u32 mock_vreg(struct mock_vgpu *m, u32 off);
void mock_vreg_write(struct mock_vgpu *m, u32 off, u32 val);
int mock_hws_pga_write(struct mock_vgpu *m, unsigned int engine, u32 val);
void mock_restore_hws_pga(struct mock_vgpu *m);
int mock_decode_plane(struct mock_vgpu *m, bool cursor, u32 *base,
		      u64 *gpa);
void mock_ggtt_mmio_write(struct mock_vgpu *m, u64 off, u64 val);
u64 mock_ggtt_mmio_read(struct mock_vgpu *m, u64 off);

/* cmd_parser.c: the command scanner */
extern unsigned long scan_nonprivbb;
u32 mock_cmd_len(u32 dw0);
int mock_scan(struct mock_vgpu *m, struct mock_workload *wl);

/* ppgtt.c: the shadow PPGTT */
u64 mock_ppgtt_gpa(struct mock_vgpu *m, const struct mock_workload *wl,
		   u64 gma);
void mock_ppgtt_destroy_all(struct mock_vgpu *m);
int mock_prepare_mm(struct mock_vgpu *m, struct mock_workload *wl);

/* workload.c: workloads and the GPU */
int mock_create_workload(struct mock_vgpu *m, unsigned int engine,
			 const u32 *desc, const u32 *elsp,
			 bool schedule_in,
			 const struct intel_gvt_workload *saved);
void mock_clean_workloads(struct mock_vgpu *m);
void mock_engine_reset(struct mock_vgpu *m, unsigned long engines);
unsigned int mock_queued(struct mock_vgpu *m);
int mock_elsp(struct mock_vgpu *m, unsigned int engine, u32 desc0,
	      u32 ctx_id);
int mock_gpu_run(struct mock_vgpu *m, bool force);
void mock_run_work(struct work_struct *work);

/* vgpu.c: a mock vGPU's life */
int mock_init(struct mock_vgpu *m, const char *name,
	      const struct intel_gvt_vgpu_layout *l, size_t vregs_size,
	      bool own_mem);
void mock_reset_locked(struct mock_vgpu *m);
void mock_release(struct mock_vgpu *m, bool reset);

/* opregion.c: the OpRegion */
void mock_opregion_base_locked(struct mock_vgpu *m, u32 gpa);
int mock_opregion_request_locked(struct mock_vgpu *m, u32 swsci);

/* kvmgt*.c: pins behind GGTT entries, the model GPU, the mdev parent */
int kv_pin(struct mock_vgpu *m, u64 gfn);
void kv_unpin(struct mock_vgpu *m, u64 gfn);
bool kv_pinned(struct mock_vgpu *m, u64 gfn);
struct page *kv_pinned_page(struct mock_vgpu *m, u64 gfn);
int kv_replay_executed(struct mock_vgpu *m, const u32 *desc);
int kv_register(struct dentry *dir);
void kv_unregister(void);

#endif /* _GVT_MOCK_H_ */

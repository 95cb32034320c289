/* SPDX-License-Identifier: MIT */
/*
 * Copyright © 2026 The gmig developers
 *
 * Interface between GVT-g (kvmgt) and one companion module that extends
 * its vGPUs, e.g. with live migration.
 */

#ifndef _INTEL_GVT_COMPANION_H_
#define _INTEL_GVT_COMPANION_H_

#include <linux/bits.h>
#include <linux/types.h>

struct intel_vgpu;
struct module;
struct page;
struct vfio_device;

#define INTEL_GVT_COMPANION_VERSION 1

/* The most frames intel_gvt_companion_read_pinned() takes in one call. */
#define INTEL_GVT_READ_PINNED_MAX 64

/**
 * struct intel_gvt_vgpu_layout - graphics memory and fences of a vGPU
 * @aperture_base: first graphics address of the vGPU's low (mappable) GM
 * @aperture_size: size of the low GM in bytes
 * @hidden_base: first graphics address of the vGPU's high (hidden) GM
 * @hidden_size: size of the high GM in bytes
 * @fence_count: number of fence registers
 * @id: vGPU id
 */
struct intel_gvt_vgpu_layout {
	u64 aperture_base;
	u64 aperture_size;
	u64 hidden_base;
	u64 hidden_size;
	u32 fence_count;
	u32 id;
};

/**
 * enum intel_gvt_state - parts of a vGPU's state
 * @INTEL_GVT_STATE_VREGS: virtual MMIO registers (the vreg image)
 * @INTEL_GVT_STATE_GGTT: the guest's GGTT entries of the vGPU's graphics
 *	memory, u64 each: the low (aperture) GM's, then the high GM's
 * @INTEL_GVT_STATE_FENCES: the fence registers' values, u64 each
 * @INTEL_GVT_STATE_EXECLIST: execlist state of every engine (layout
 *	private to GVT-g, fixed for a given %INTEL_GVT_COMPANION_VERSION)
 */
enum intel_gvt_state {
	INTEL_GVT_STATE_VREGS,
	INTEL_GVT_STATE_GGTT,
	INTEL_GVT_STATE_FENCES,
	INTEL_GVT_STATE_EXECLIST,
};

#define INTEL_GVT_WORKLOAD_SCHEDULE_IN	BIT(0)

/**
 * struct intel_gvt_workload - a workload GVT-g queued and has not run
 * @engine: the engine's id
 * @flags: %INTEL_GVT_WORKLOAD_SCHEDULE_IN if running it first emulates
 *	the schedule-in of the guest's ELSP submission @elsp (the workload
 *	of that submission's first descriptor)
 * @desc: the guest's context descriptor, low and high dword
 * @elsp: with %INTEL_GVT_WORKLOAD_SCHEDULE_IN, the submission: the low
 *	and high dword of its first descriptor, then of its second
 * @rb_head: ring offset the workload starts at
 * @rb_tail: ring offset it ends at
 * @guest_rb_head: ring head the guest's context image held
 * @rb_start: graphics address of the ring buffer
 * @rb_ctl: ring control (the buffer's length)
 * @reserved: zero
 *
 * Graphics addresses are the guest's, before map_gma. The ring offsets
 * are GVT-g's: the guest's context image holds the tail of its last
 * submission only.
 */
struct intel_gvt_workload {
	u32 engine;
	u32 flags;
	u32 desc[2];
	u32 elsp[4];
	u32 rb_head;
	u32 rb_tail;
	u32 guest_rb_head;
	u32 rb_start;
	u32 rb_ctl;
	u32 reserved[3];
};

/**
 * struct intel_gvt_companion_ops - callbacks of a GVT-g companion module
 * @version: must be %INTEL_GVT_COMPANION_VERSION
 * @size: must be sizeof(struct intel_gvt_companion_ops)
 * @owner: the companion module; each vGPU it is attached to holds a
 *	reference on it
 * @vgpu_create: a vGPU was created; called before its vfio_device is
 *	registered, so the companion may set its mig_ops and log_ops. Returns
 *	the companion's per-vGPU data, passed to every other callback, or an
 *	ERR_PTR() to fail the vGPU's creation.
 * @vgpu_destroy: the vGPU is being destroyed (its vfio_device is already
 *	unregistered)
 * @vgpu_reset: the VFIO user reset the vGPU (VFIO_DEVICE_RESET) or closed
 *	its vfio_device; a migration in progress is over, and the companion
 *	restarts the vGPU's scheduling if it stopped it. Called without the
 *	vGPU's lock held, so it may call intel_gvt_companion_start_schedule().
 * @workload_queued: a workload of the guest context whose image is at
 *	graphics address @lrca (in the vGPU's GM, as @map_gma moved it) was
 *	scanned, shadowed and queued on @engine
 * @workload_completed: that workload completed with @status (zero, or a
 *	negative error code if it failed or the engine was reset). A
 *	workload GVT-g drops from its queue without running it (at an engine
 *	or vGPU reset, after a workload of its engine failed, when the vGPU
 *	is released or a resubmission fails) is reported too, with
 *	-ECANCELED: every workload reported to @workload_queued is reported
 *	here once.
 * @sched_stopped: GVT-g stopped scheduling the vGPU's workloads
 * @sched_started: GVT-g (re)started scheduling the vGPU's workloads
 * @ggtt_write: the guest changed GGTT entry @index (an index into the
 *	whole GGTT) from @old to @val (guest entries, i.e. guest frames)
 * @ppgtt_created: a shadow of the guest PPGTT whose root is at guest
 *	physical address @root was created
 * @ppgtt_destroyed: that shadow was destroyed
 * @pages_pinned: @size bytes of guest memory from guest frame @gfn were
 *	pinned, because a shadow GGTT or PPGTT entry maps them
 * @pages_unpinned: those pages were unpinned
 * @scan_cmd: the command scanner is about to audit the command at @cmd,
 *	@len dwords in GVT-g's shadow copy of a ring or batch buffer that is
 *	in the GGTT (@ggtt) or a PPGTT. The companion may rewrite graphics
 *	addresses in it, e.g. of a workload resubmitted after migration to
 *	a vGPU whose graphics memory sits elsewhere; the scanner then audits
 *	the rewritten command. A negative return fails the scan.
 * @map_gma: GVT-g takes the GGTT graphics address *@gma (@size bytes) from
 *	the guest outside a command buffer: a context descriptor's LRCA, the
 *	ring buffer, indirect context or per-context batch start in its
 *	context image, the graphics address whose GGTT entry it reads or
 *	writes through the GTT MMIO range (@size is a page), the range of a
 *	valid fence register it writes to the hardware, an engine's status
 *	page (HWS_PGA) where it writes the context status, the surface base
 *	of the primary or cursor plane it decodes. After the vGPU
 *	was restored from one whose GM sat elsewhere in the GGTT the guest
 *	still uses the source's addresses; the companion then stores the
 *	address of the same place in this vGPU's GM in *@gma. GVT-g audits
 *	the result as before. A negative return says the address is none of
 *	the guest's: GVT-g treats it as outside the vGPU's GM.
 * @gpa_written: GVT-g itself wrote @len bytes of guest memory at guest
 *	physical address @gpa outside any workload: the answer of the
 *	OpRegion's SWSCI mailbox, which the guest may request at any time
 *	through config space, or a guest MMIO write outside the register
 *	range. No GGTT entry need map that memory, and the VMM's own dirty
 *	tracking does not see the write, so a companion that migrates the
 *	vGPU must report it dirty. Called after the write, and for one that
 *	failed too (it may have written part); with or without the vGPU's
 *	lock held.
 * @scan_workload: the command scanner is about to scan the commands of a
 *	workload queued on @engine (its ring, batch buffers and indirect
 *	context): the commands @scan_cmd sees until the next @scan_workload
 *	are this workload's. @lrca is the graphics address of its context
 *	image (as @map_gma moved it); @pdps are the guest physical root
 *	pointers of its PPGTT, as GVT-g read them from that image: the PML4
 *	in pdps[0] with @lvl4, else the four page directory pointers of a
 *	3-level PPGTT; NULL if the workload has no PPGTT.
 * @ppgtt_entry: the guest changed an entry of a PPGTT page table that
 *	GVT-g shadows, to @val (a guest entry): a write GVT-g trapped, or an
 *	entry of an out-of-sync page it now syncs. @level is the table's: 1
 *	for a page table, 2 for a page directory, 3 for a page directory
 *	pointer table, 4 for a PML4. Called before GVT-g updates its shadow;
 *	the GPU may use the new entry from then on.
 *
 * Every callback but @vgpu_create and @vgpu_destroy is optional. They are
 * called in process context and may sleep, some with the vGPU's lock held:
 * but for @vgpu_reset, they must not call back into GVT-g, except that
 * @scan_cmd and @scan_workload may read guest memory with
 * intel_gvt_companion_rw_gpa(), which takes no lock of GVT-g's.
 */
struct intel_gvt_companion_ops {
	u32 version;
	u32 size;
	struct module *owner;

	void *(*vgpu_create)(struct intel_vgpu *vgpu,
			     struct vfio_device *vfio_dev,
			     const struct intel_gvt_vgpu_layout *layout);
	void (*vgpu_destroy)(void *priv);
	void (*vgpu_reset)(void *priv);

	void (*workload_queued)(void *priv, unsigned int engine, u64 lrca);
	void (*workload_completed)(void *priv, unsigned int engine, u64 lrca,
				   int status);

	void (*sched_stopped)(void *priv);
	void (*sched_started)(void *priv);

	void (*ggtt_write)(void *priv, u64 index, u64 old, u64 val);
	void (*ppgtt_created)(void *priv, u64 root);
	void (*ppgtt_destroyed)(void *priv, u64 root);
	void (*pages_pinned)(void *priv, u64 gfn, u64 size);
	void (*pages_unpinned)(void *priv, u64 gfn, u64 size);

	int (*scan_cmd)(void *priv, u32 *cmd, u32 len, bool ggtt);
	int (*map_gma)(void *priv, u64 *gma, u64 size);
	void (*gpa_written)(void *priv, u64 gpa, u64 len);
	void (*scan_workload)(void *priv, unsigned int engine, u64 lrca,
			      const u64 *pdps, bool lvl4);
	void (*ppgtt_entry)(void *priv, unsigned int level, u64 val);
};

int intel_gvt_register_companion(const struct intel_gvt_companion_ops *ops);
void intel_gvt_unregister_companion(const struct intel_gvt_companion_ops *ops);

void intel_gvt_companion_stop_schedule(struct intel_vgpu *vgpu);
void intel_gvt_companion_start_schedule(struct intel_vgpu *vgpu);
ssize_t intel_gvt_companion_save_state(struct intel_vgpu *vgpu,
				       enum intel_gvt_state part,
				       void *buf, size_t size);
int intel_gvt_companion_restore_state(struct intel_vgpu *vgpu,
				      enum intel_gvt_state part,
				      const void *buf, size_t size);
int intel_gvt_companion_check_state(struct intel_vgpu *vgpu,
				    enum intel_gvt_state part,
				    const void *buf, size_t size);
int intel_gvt_companion_rw_gpa(struct intel_vgpu *vgpu, u64 gpa, void *buf,
			       size_t len, bool write);
int intel_gvt_companion_save_workloads(struct intel_vgpu *vgpu,
				       struct intel_gvt_workload *w,
				       unsigned int count);
int intel_gvt_companion_resubmit_workloads(struct intel_vgpu *vgpu,
					   const struct intel_gvt_workload *w,
					   unsigned int count);
int intel_gvt_companion_read_pinned(struct intel_vgpu *vgpu, u64 gfn,
				    unsigned int count,
				    void (*fn)(void *data, unsigned int index,
					       struct page *page),
				    void *data);

#endif /* _INTEL_GVT_COMPANION_H_ */

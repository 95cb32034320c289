// SPDX-License-Identifier: GPL-2.0
/*
 * gmig's gvt provider, C half: kvmgt's companion interface (patches/gvt).
 *
 * At load, gmig looks the interface up with symbol_get(), so gmig.ko loads
 * on kernels without the patch series or without kvmgt loaded (then only
 * the sim provider runs). If it is there, gmig registers its companion ops;
 * the symbol references it holds until unload keep kvmgt loaded meanwhile
 * (rmmod kvmgt fails while gmig is loaded). Every callback is forwarded to
 * Rust (rust/gvt/), which decides what to do; this file only adapts
 * types, and gives each GVT-g vGPU gmig's VFIO migration and DMA logging
 * ops (gmig_mig.c) when kvmgt creates it: a struct gmig_gvt_dev per vGPU,
 * found from kvmgt's vfio_device through an xarray.
 *
 * The interface's header comes from the kernel tree when it has the series
 * applied, and from gmig's copy otherwise (gmig_gvt_companion.h, identical
 * to the series' include/drm/intel/intel_gvt_companion.h; CI checks that).
 * kvmgt refuses ops of another interface version or size at registration.
 *
 * intel_gvt_companion_read_pinned() (patch 0021) is optional: without it
 * gmig hashes GVT-g's guest pages through rw_gpa copies, as with
 * hashing=copy.
 */
#include <linux/err.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/vfio.h>
#include <linux/xarray.h>

#ifdef GMIG_TREE_HAS_GVT_COMPANION	/* set by Kbuild */
#include <drm/intel/intel_gvt_companion.h>
#else
#include "gmig_gvt_companion.h"
#endif

#include "gmig_internal.h"

#if INTEL_GVT_COMPANION_VERSION != 1
#error "gmig implements version 1 of the GVT-g companion interface"
#endif

static struct {
	typeof(intel_gvt_register_companion) *reg;
	typeof(intel_gvt_unregister_companion) *unreg;
	typeof(intel_gvt_companion_stop_schedule) *stop;
	typeof(intel_gvt_companion_start_schedule) *start;
	typeof(intel_gvt_companion_save_state) *save;
	typeof(intel_gvt_companion_restore_state) *restore;
	typeof(intel_gvt_companion_check_state) *check;
	typeof(intel_gvt_companion_rw_gpa) *rw_gpa;
	typeof(intel_gvt_companion_save_workloads) *save_wl;
	typeof(intel_gvt_companion_resubmit_workloads) *resubmit_wl;
	typeof(intel_gvt_companion_read_pinned) *read_pinned;	/* optional */
} gvt;

/* rust/gvt/ asks for at most this many frames a call (pageread.rs). */
#define GMIG_GVT_READ_PINNED_MAX 64
static_assert(INTEL_GVT_READ_PINNED_MAX >= GMIG_GVT_READ_PINNED_MAX);

/* rust/gvt/ passes workloads as GMIG_GVT_WORKLOAD_WORDS dwords each. */
#define GMIG_GVT_WORKLOAD_WORDS 16
static_assert(sizeof(struct intel_gvt_workload) ==
	      GMIG_GVT_WORKLOAD_WORDS * sizeof(u32));

/* gmig's side of one GVT-g vGPU: the companion's priv. */
struct gmig_gvt_dev {
	struct gmig_mig mig;	/* .rs: the Rust struct gmig_gvt_vgpu */
	struct intel_vgpu *vgpu;
};

/* vfio_device -> gmig_gvt_dev, for the migration and logging ops. */
static DEFINE_XARRAY(gmig_gvt_devs);

struct gmig_mig *gmig_gvt_mig(struct vfio_device *vdev)
{
	struct gmig_gvt_dev *gd = xa_load(&gmig_gvt_devs, (unsigned long)vdev);

	return gd ? &gd->mig : NULL;
}

static struct gmig_gvt_vgpu *rs(void *priv)
{
	return ((struct gmig_gvt_dev *)priv)->mig.rs;
}

static void *gmig_gvt_vgpu_create(struct intel_vgpu *vgpu,
				  struct vfio_device *vfio_dev,
				  const struct intel_gvt_vgpu_layout *l)
{
	ssize_t vregs = gvt.save(vgpu, INTEL_GVT_STATE_VREGS, NULL, 0);
	ssize_t execlist = gvt.save(vgpu, INTEL_GVT_STATE_EXECLIST, NULL, 0);
	struct gmig_gvt_dev *gd;
	int ret;

	if (vregs < 0 || execlist < 0)
		return ERR_PTR(vregs < 0 ? vregs : execlist);
	gd = kzalloc_obj(*gd, GFP_KERNEL);
	if (!gd)
		return ERR_PTR(-ENOMEM);
	gd->vgpu = vgpu;
	gmig_mig_init(&gd->mig, vfio_dev, GMIG_PROVIDER_GVT);
	gd->mig.rs = gmig_rs_gvt_vgpu_create(vgpu, vfio_dev->dev,
					     l->aperture_base, l->aperture_size,
					     l->hidden_base, l->hidden_size,
					     l->fence_count, l->id, vregs,
					     execlist);
	if (!gd->mig.rs) {
		ret = -EINVAL;
		goto err;
	}
	ret = xa_insert(&gmig_gvt_devs, (unsigned long)vfio_dev, gd,
			GFP_KERNEL);
	if (ret)
		goto err_rs;
	return gd;
err_rs:
	gmig_rs_gvt_vgpu_destroy(gd->mig.rs);
err:
	vfio_dev->mig_ops = NULL;
	vfio_dev->log_ops = NULL;
	vfio_dev->migration_flags = 0;
	gmig_mig_destroy(&gd->mig);
	kfree(gd);
	return ERR_PTR(ret);
}

/* The vfio_device is unregistered already: no op can run any more. */
static void gmig_gvt_vgpu_destroy(void *priv)
{
	struct gmig_gvt_dev *gd = priv;

	xa_erase(&gmig_gvt_devs, (unsigned long)gd->mig.vdev);
	gmig_mig_destroy(&gd->mig);
	gmig_rs_gvt_vgpu_destroy(gd->mig.rs);
	kfree(gd);
}

static void gmig_gvt_vgpu_reset(void *priv)
{
	gmig_mig_reset(&((struct gmig_gvt_dev *)priv)->mig);
}

static void gmig_gvt_workload_queued(void *priv, unsigned int engine,
				     u64 lrca)
{
	gmig_rs_gvt_event(rs(priv), GMIG_GVT_WORKLOAD_QUEUED, engine, lrca, 0);
}

static void gmig_gvt_workload_completed(void *priv, unsigned int engine,
					u64 lrca, int status)
{
	gmig_rs_gvt_event(rs(priv), GMIG_GVT_WORKLOAD_COMPLETED, engine, lrca,
			  (u64)(s64)status);
}

static void gmig_gvt_sched_stopped(void *priv)
{
	gmig_rs_gvt_event(rs(priv), GMIG_GVT_SCHED_STOPPED, 0, 0, 0);
}

static void gmig_gvt_sched_started(void *priv)
{
	gmig_rs_gvt_event(rs(priv), GMIG_GVT_SCHED_STARTED, 0, 0, 0);
}

static void gmig_gvt_ggtt_write(void *priv, u64 index, u64 old, u64 val)
{
	gmig_rs_gvt_event(rs(priv), GMIG_GVT_GGTT_WRITE, index, old, val);
}

static void gmig_gvt_ppgtt_created(void *priv, u64 root)
{
	gmig_rs_gvt_event(rs(priv), GMIG_GVT_PPGTT_CREATED, root, 0, 0);
}

static void gmig_gvt_ppgtt_destroyed(void *priv, u64 root)
{
	gmig_rs_gvt_event(rs(priv), GMIG_GVT_PPGTT_DESTROYED, root, 0, 0);
}

static void gmig_gvt_pages_pinned(void *priv, u64 gfn, u64 size)
{
	gmig_rs_gvt_event(rs(priv), GMIG_GVT_PAGES_PINNED, gfn, size, 0);
}

static void gmig_gvt_pages_unpinned(void *priv, u64 gfn, u64 size)
{
	gmig_rs_gvt_event(rs(priv), GMIG_GVT_PAGES_UNPINNED, gfn, size, 0);
}

static int gmig_gvt_scan_cmd(void *priv, u32 *cmd, u32 len, bool ggtt)
{
	return gmig_rs_gvt_scan_cmd(rs(priv), cmd, len, ggtt);
}

static int gmig_gvt_map_gma(void *priv, u64 *gma, u64 size)
{
	return gmig_rs_gvt_map_gma(rs(priv), gma, size);
}

static void gmig_gvt_gpa_written(void *priv, u64 gpa, u64 len)
{
	gmig_rs_gvt_event(rs(priv), GMIG_GVT_GPA_WRITTEN, gpa, len, 0);
}

static void gmig_gvt_scan_workload(void *priv, unsigned int engine, u64 lrca,
				   const u64 *pdps, bool lvl4)
{
	/* A 3-level PPGTT (four PDPs) is not walked: 0, as for none. */
	gmig_rs_gvt_event(rs(priv), GMIG_GVT_SCAN_WORKLOAD, engine, lrca,
			  pdps && lvl4 ? pdps[0] : 0);
}

static void gmig_gvt_ppgtt_entry(void *priv, unsigned int level, u64 val)
{
	gmig_rs_gvt_event(rs(priv), GMIG_GVT_PPGTT_ENTRY, level, val, 0);
}

static const struct intel_gvt_companion_ops gmig_gvt_ops = {
	.version = INTEL_GVT_COMPANION_VERSION,
	.size = sizeof(struct intel_gvt_companion_ops),
	.owner = THIS_MODULE,
	.vgpu_create = gmig_gvt_vgpu_create,
	.vgpu_destroy = gmig_gvt_vgpu_destroy,
	.vgpu_reset = gmig_gvt_vgpu_reset,
	.workload_queued = gmig_gvt_workload_queued,
	.workload_completed = gmig_gvt_workload_completed,
	.sched_stopped = gmig_gvt_sched_stopped,
	.sched_started = gmig_gvt_sched_started,
	.ggtt_write = gmig_gvt_ggtt_write,
	.ppgtt_created = gmig_gvt_ppgtt_created,
	.ppgtt_destroyed = gmig_gvt_ppgtt_destroyed,
	.pages_pinned = gmig_gvt_pages_pinned,
	.pages_unpinned = gmig_gvt_pages_unpinned,
	.scan_cmd = gmig_gvt_scan_cmd,
	.map_gma = gmig_gvt_map_gma,
	.gpa_written = gmig_gvt_gpa_written,
	.scan_workload = gmig_gvt_scan_workload,
	.ppgtt_entry = gmig_gvt_ppgtt_entry,
};

static void gmig_gvt_put_symbols(void)
{
	if (gvt.reg)
		symbol_put(intel_gvt_register_companion);
	if (gvt.unreg)
		symbol_put(intel_gvt_unregister_companion);
	if (gvt.stop)
		symbol_put(intel_gvt_companion_stop_schedule);
	if (gvt.start)
		symbol_put(intel_gvt_companion_start_schedule);
	if (gvt.save)
		symbol_put(intel_gvt_companion_save_state);
	if (gvt.restore)
		symbol_put(intel_gvt_companion_restore_state);
	if (gvt.check)
		symbol_put(intel_gvt_companion_check_state);
	if (gvt.rw_gpa)
		symbol_put(intel_gvt_companion_rw_gpa);
	if (gvt.save_wl)
		symbol_put(intel_gvt_companion_save_workloads);
	if (gvt.resubmit_wl)
		symbol_put(intel_gvt_companion_resubmit_workloads);
	if (gvt.read_pinned)
		symbol_put(intel_gvt_companion_read_pinned);
	memset(&gvt, 0, sizeof(gvt));
}

/*
 * Returns 0 if registered with kvmgt, -ENOENT if kvmgt (with the companion
 * interface) is not loaded, another error if kvmgt refused the ops.
 */
int gmig_gvt_register(void)
{
	int ret;

	gvt.reg = symbol_get(intel_gvt_register_companion);
	if (!gvt.reg)
		return -ENOENT;
	gvt.unreg = symbol_get(intel_gvt_unregister_companion);
	gvt.stop = symbol_get(intel_gvt_companion_stop_schedule);
	gvt.start = symbol_get(intel_gvt_companion_start_schedule);
	gvt.save = symbol_get(intel_gvt_companion_save_state);
	gvt.restore = symbol_get(intel_gvt_companion_restore_state);
	gvt.check = symbol_get(intel_gvt_companion_check_state);
	gvt.rw_gpa = symbol_get(intel_gvt_companion_rw_gpa);
	gvt.save_wl = symbol_get(intel_gvt_companion_save_workloads);
	gvt.resubmit_wl = symbol_get(intel_gvt_companion_resubmit_workloads);
	gvt.read_pinned = symbol_get(intel_gvt_companion_read_pinned);
	if (!gvt.unreg || !gvt.stop || !gvt.start || !gvt.save ||
	    !gvt.restore || !gvt.check || !gvt.rw_gpa || !gvt.save_wl || !gvt.resubmit_wl) {
		ret = -ENOENT;
		goto err;
	}
	ret = gvt.reg(&gmig_gvt_ops);
	if (ret)
		goto err;
	return 0;
err:
	gmig_gvt_put_symbols();
	return ret;
}

/* Undoes a successful gmig_gvt_register(). */
void gmig_gvt_unregister(void)
{
	if (!gvt.unreg)
		return;
	gvt.unreg(&gmig_gvt_ops);
	gmig_gvt_put_symbols();
}

/* The services kvmgt offers the companion, for rust/gvt/. */
void gmig_gvt_stop_schedule(struct intel_vgpu *vgpu)
{
	gvt.stop(vgpu);
}

void gmig_gvt_start_schedule(struct intel_vgpu *vgpu)
{
	gvt.start(vgpu);
}

ssize_t gmig_gvt_save_state(struct intel_vgpu *vgpu, u32 part, void *buf,
			    size_t size)
{
	return gvt.save(vgpu, part, buf, size);
}

int gmig_gvt_restore_state(struct intel_vgpu *vgpu, u32 part,
			   const void *buf, size_t size)
{
	return gvt.restore(vgpu, part, buf, size);
}

int gmig_gvt_check_state(struct intel_vgpu *vgpu, u32 part, const void *buf,
			 size_t size)
{
	return gvt.check(vgpu, part, buf, size);
}

int gmig_gvt_rw_gpa(struct intel_vgpu *vgpu, u64 gpa, void *buf, size_t len,
		    bool write)
{
	return gvt.rw_gpa(vgpu, gpa, buf, len, write);
}

/* @buf: NULL, or @count workloads of GMIG_GVT_WORKLOAD_WORDS dwords. */
int gmig_gvt_save_workloads(struct intel_vgpu *vgpu, u32 *buf, u32 count)
{
	return gvt.save_wl(vgpu, (struct intel_gvt_workload *)buf, count);
}

int gmig_gvt_resubmit_workloads(struct intel_vgpu *vgpu, const u32 *buf,
				u32 count)
{
	return gvt.resubmit_wl(vgpu, (const struct intel_gvt_workload *)buf,
			       count);
}

/* Whether kvmgt lets gmig read the pages it holds pinned (patch 0021). */
bool gmig_gvt_can_read_pinned(void)
{
	return gvt.read_pinned;
}

/*
 * @fn is called under kvmgt's DMA cache lock for each of the @count frames
 * from @gfn that kvmgt holds pinned; returns how many, or an error.
 */
int gmig_gvt_read_pinned(struct intel_vgpu *vgpu, u64 gfn, u32 count,
			 void (*fn)(void *data, unsigned int index,
				    struct page *page),
			 void *data)
{
	if (!gvt.read_pinned)
		return -EOPNOTSUPP;
	return gvt.read_pinned(vgpu, gfn, count, fn, data);
}

// SPDX-License-Identifier: GPL-2.0
/*
 * gvt_mock - a stand-in for kvmgt's companion interface (patches/gvt), so
 * that gmig's gvt provider runs in the base test kernel, which has no i915,
 * no kvmgt and no Intel GPU.
 *
 * The module exports the eleven functions of the interface
 * (rust/gvt/intel_gvt_companion.h) with the semantics of the patch series.
 * gmig, loaded after it, finds them with symbol_get() and registers as the
 * companion. Writing "1" (the mock's small type) or "v5_1" (GVT-g's largest
 * type's sizes) to /sys/kernel/debug/gvt_mock/run then creates two
 * mock vGPUs of that type and drives gmig through a whole migration between them, in the
 * writer's context, the way the VFIO core and QEMU would: mig_ops and
 * log_ops on the vfio_device gmig was given, the kvmgt hooks as GVT-g calls
 * them, and the save/restore and scheduling calls back into the mock. Each
 * step logs "gvt_mock: ok <step>" or "gvt_mock: FAIL <step>: <why>"; the
 * write fails with -EIO if a step failed. Writing "stop-copy-rollback"
 * runs a migration whose guest flooded the ELSP and whose first stop-copy
 * save fails (stop_copy_steps[]), its steps "stop-copy-rollback:<step>".
 * Writing "hostile SEED SECS" runs
 * a randomized hostile client instead (see mock_hostile()), reported as
 * the step "hostile". Writing "pin-lost" runs the lost pin record steps
 * (step_pin_record_lost()), after the writer has armed gmig's fault
 * injection.
 *
 * The runs' mock vGPUs have a vfio_device that is never registered with
 * VFIO; its ->dev is a root device of the mock, and guest memory is a
 * vmalloc'ed buffer that intel_gvt_companion_rw_gpa() accesses. kvmgt.c
 * adds mdev vGPUs on the same model that a real QEMU opens (their guest
 * memory is the VFIO user's, through vfio_dma_rw()).
 *
 * Like GVT-g, the mock calls the companion's callbacks as if with the
 * vGPU's lock held (all but vgpu_reset): a companion that calls back into
 * GVT-g from one of them (which would deadlock on kvmgt) is reported.
 *
 * Workloads (patches 0002, 0009-0012): a guest "ELSP write" (mock_elsp())
 * creates workloads the way intel_vgpu_submit_execlist() and
 * intel_vgpu_create_workload() do: the context descriptor's LRCA and the
 * ring start of the guest's context image go through the companion's
 * map_gma, the ring context page is found through the vGPU's GGTT, the
 * ring offsets come from the context image (a context already queued
 * continues at its last workload's tail), the first workload of an empty
 * queue is scanned at once (scan_cmd on each command), the others when
 * they run, and each is reported to workload_queued. The mock's "GPU"
 * (mock_gpu_run()) runs the queues only when a step says so (or, with
 * autorun, on its own once scheduling starts, as GVT-g's workload_thread()
 * does) and scheduling is not stopped: it executes MI_STORE_DATA_IMM and MI_NOOP from the shadow
 * ring (GGTT addresses through the vGPU's GGTT into guest memory), writes
 * the ring head back into the context image (update_guest_context()) and
 * writes the CSB into the engine's status page (emulate_csb_update(),
 * through hws_pga[]) and reports workload_completed. Where the mock must
 * decide how GVT-g behaves, it says so: it does not emulate the execlist
 * schedule-in and -out (the execlist state stays an opaque image; one CSB
 * entry per completed workload) and knows only those two commands.
 *
 * Graphics addresses outside command buffers (patches 0013-0016): the
 * hardware fences (intel_vgpu_write_fence(), fence ranges through
 * map_gma), hws_pga[] (hws_pga_write(), re-derived from the registers at
 * a restore), the primary plane and cursor decode (pipe A only), and the
 * check of each state part before any is restored
 * (intel_gvt_companion_check_state()).
 *
 * The files: gvt_mock.h lists those of the vGPU model, which follow
 * drivers/gpu/drm/i915/gvt/ file by file; run.h those of the runs; kvmgt.h
 * those of the mdev vGPUs. This one has the runs' plumbing and the
 * debugfs "run" file.
 */

#define pr_fmt(fmt) "gvt_mock: " fmt

#include <linux/debugfs.h>
#include <linux/device.h>
#include <linux/err.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/iova_bitmap.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vfio.h>

#include "gvt_mock.h"
#include "run.h"

static DEFINE_MUTEX(run_lock);
static struct device *mock_dev;
static struct dentry *mock_dir;

void mock_free(struct mock_vgpu *m)
{
	if (!m)
		return;
	/* kvmgt: close_device(), then the vfio_device's release */
	mock_release(m, true);
	kfree(m);
}

struct mock_vgpu *mock_create(const char *name,
			      const struct intel_gvt_vgpu_layout *l,
			      size_t vregs_size, char *why,
			      size_t why_len)
{
	struct mock_vgpu *m;
	int ret;

	m = kzalloc_obj(*m);
	if (!m)
		return ERR_PTR(-ENOMEM);
	m->vdev.dev = mock_dev;
	ret = mock_init(m, name, l, vregs_size, true) ?:
	      mock_attach(m, why, why_len);
	if (ret) {
		mock_free(m);
		return ERR_PTR(ret);
	}
	return m;
}

/* The scenario. */

__printf(2, 3) int fail(struct scenario *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->why, sizeof(s->why), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

const struct vfio_migration_ops *mig(struct mock_vgpu *m)
{
	return m->vdev.mig_ops;
}

/* The file a set_state() returned is the caller's: fput at teardown. */
static void keep_file(struct scenario *s, struct file *f)
{
	if (!IS_ERR_OR_NULL(f) && !WARN_ON(s->nfiles == MOCK_MAX_FILES))
		s->files[s->nfiles++] = f;
}

struct file *set_state(struct scenario *s, struct mock_vgpu *m,
		       enum vfio_device_mig_state state)
{
	struct file *f = mig(m)->migration_set_state(&m->vdev, state);

	keep_file(s, f);
	return f;
}

int get_state(struct mock_vgpu *m)
{
	enum vfio_device_mig_state st;
	int ret = mig(m)->migration_get_state(&m->vdev, &st);

	return ret ? ret : st;
}

/* set_state() to a state that opens no data fd. */
int to_state(struct scenario *s, struct mock_vgpu *m,
	     enum vfio_device_mig_state state)
{
	struct file *f = set_state(s, m, state);

	if (IS_ERR(f))
		return fail(s, "%s: set_state(%d) from %d: %ld", m->name,
			    state, get_state(m), PTR_ERR(f));
	if (f)
		return fail(s, "%s: set_state(%d) returned a data fd",
			    m->name, state);
	if (get_state(m) != state)
		return fail(s, "%s: get_state %d after set_state(%d)",
			    m->name, get_state(m), state);
	return 0;
}

/* Reads @f until a read returns 0, appending to the stream. */
int read_all(struct scenario *s, struct file *f, size_t *got)
{
	ssize_t n;

	*got = 0;
	for (;;) {
		size_t room = MOCK_STREAM_MAX - s->stream_len;

		if (!room)
			return fail(s, "stream longer than %u bytes",
				    MOCK_STREAM_MAX);
		n = kernel_read(f, s->stream + s->stream_len,
				min_t(size_t, room, SZ_64K), NULL);
		/* -ENOMSG: the end of the PRE_COPY data there is now. */
		if (n == 0 || n == -ENOMSG)
			return 0;
		if (n < 0)
			return fail(s, "read of the data fd: %zd%s", n,
				    f->f_op->read_iter ? "" :
				    " (the fd has no read_iter)");
		s->stream_len += n;
		*got += n;
	}
}

int write_all(struct scenario *s, struct file *f, const u8 *buf,
	      size_t len)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = kernel_write(f, buf + done, len - done, NULL);
		if (n <= 0)
			return n ? n : -EIO;
		done += n;
	}
	return 0;
}

int report_one(struct iova_bitmap *bm, unsigned long iova,
	       size_t length, void *opaque)
{
	struct vfio_device *vdev = opaque;

	return vdev->log_ops->log_read_and_clear(vdev, iova, length, bm);
}

/* A DMA logging report of the whole guest memory into s->dirty. */
int report(struct scenario *s, struct mock_vgpu *m)
{
	void __user *ubuf = (void __user *)s->ubuf;
	struct iova_bitmap *bm;
	int ret;

	if (clear_user(ubuf, sizeof(s->dirty)))
		return fail(s, "clear_user of the bitmap");
	bm = iova_bitmap_alloc(0, MOCK_MEM_SIZE, MOCK_PAGE, ubuf);
	if (IS_ERR(bm))
		return fail(s, "iova_bitmap_alloc: %ld", PTR_ERR(bm));
	ret = iova_bitmap_for_each(bm, &m->vdev, report_one);
	iova_bitmap_free(bm);
	if (ret)
		return fail(s, "%s: log_read_and_clear: %d", m->name, ret);
	if (copy_from_user(s->dirty, ubuf, sizeof(s->dirty)))
		return fail(s, "copy_from_user of the bitmap");
	pr_info("%s: dirty log: %u pages: %*pbl\n", m->name,
		bitmap_weight(s->dirty, MOCK_MEM_PAGES), MOCK_MEM_PAGES,
		s->dirty);
	return 0;
}

void touch_frame(struct mock_vgpu *m, unsigned long gfn)
{
	guard(mutex)(&m->mem_lock);
	m->mem[gfn * MOCK_PAGE + 123] ^= 0xa5;
}

/*
 * The runs' guest pins @pages frames from @gfn (@pinned) or unpins them,
 * in the mock's pin table, and reports it as kvmgt does: under its lock.
 */
void pin_range(struct mock_vgpu *m, u64 gfn, u64 pages, bool pinned)
{
	void (*fn)(void *priv, u64 gfn, u64 size);
	u64 g;

	guard(mutex)(&m->lock);
	for (g = gfn; g - gfn < pages && g < MOCK_MEM_PAGES; g++)
		assign_bit(g, m->pins, pinned);
	fn = pinned ? m->ops->pages_pinned : m->ops->pages_unpinned;
	if (!fn)
		return;
	cb_begin(m);
	fn(m->priv, gfn, pages * MOCK_PAGE);
	cb_end(m);
}

void pin(struct mock_vgpu *m, u64 gfn)
{
	pin_range(m, gfn, 1, true);
}

const struct mock_type mock_types[] = {
	{
		.name = "1",
		.src = { .aperture_base = SZ_32M, .aperture_size = SZ_32M,
			 .hidden_base = SZ_512M, .hidden_size = SZ_64M,
			 .fence_count = MOCK_FENCES, .id = 1 },
		.dst = { .aperture_base = SZ_64M, .aperture_size = SZ_32M,
			 .hidden_base = SZ_512M + SZ_64M, .hidden_size = SZ_64M,
			 .fence_count = MOCK_FENCES, .id = 2 },
		.vregs_size = SZ_512K,	/* the display registers too */
	}, {
		.name = "v5_1",
		.src = { .aperture_base = SZ_64M, .aperture_size = SZ_512M,
			 .hidden_base = SZ_1G, .hidden_size = SZ_2G,
			 .fence_count = MOCK_FENCES, .id = 1 },
		.dst = { .aperture_base = SZ_128M, .aperture_size = SZ_512M,
			 .hidden_base = SZ_1G + SZ_512M, .hidden_size = SZ_2G,
			 .fence_count = MOCK_FENCES, .id = 2 },
		.vregs_size = SZ_2M,
	},
};

/* The two vGPUs' scenario state, the stream buffer, a user page for bitmaps. */
struct scenario *scenario_new(const struct mock_type *type)
{
	struct scenario *s = kzalloc_obj(*s);

	if (!s)
		return NULL;
	s->type = type;
	s->stream = kvmalloc(MOCK_STREAM_MAX, GFP_KERNEL);
	s->ubuf = vm_mmap(NULL, 0, PAGE_SIZE, PROT_READ | PROT_WRITE,
			  MAP_ANONYMOUS | MAP_PRIVATE, 0);
	if (!s->stream || IS_ERR_VALUE(s->ubuf)) {
		if (!IS_ERR_VALUE(s->ubuf))
			vm_munmap(s->ubuf, PAGE_SIZE);
		kvfree(s->stream);
		kfree(s);
		return NULL;
	}
	return s;
}

/* l) the fds first, then the vGPUs (a fd may outlive its vGPU) */
void scenario_free(struct scenario *s)
{
	while (s->nfiles)
		fput(s->files[--s->nfiles]);
	mock_free(s->src);
	mock_free(s->dst);
	vm_munmap(s->ubuf, PAGE_SIZE);
	kvfree(s->stream);
	kfree(s);
}

/* Runs the steps st; their names prefixed "<pfx>:" unless pfx is "". */
static int mock_run(const struct mock_type *type, const struct step *st,
		    const char *pfx)
{
	const char *sep = *pfx ? ":" : "";
	struct scenario *s;
	bool failed = false, aborted = false;

	s = scenario_new(type);
	if (!s) {
		pr_err("FAIL setup: out of memory\n");
		return -EIO;
	}

	atomic_set(&bad_vgpu_ptr, 0);
	for (; st->name; st++) {
		int ret;

		if (aborted) {
			pr_info("skip %s%s%s\n", pfx, sep, st->name);
			continue;
		}
		s->why[0] = 0;
		ret = st->fn(s);
		if (!ret) {
			pr_info("ok %s%s%s\n", pfx, sep, st->name);
			continue;
		}
		failed = true;
		pr_err("FAIL %s%s%s: %s\n", pfx, sep, st->name,
		       s->why[0] ? s->why : "error");
		aborted = st->fatal;
	}

	scenario_free(s);
	pr_info("ok %s%steardown\n", pfx, sep);
	pr_info("%s\n", failed ? "scenario failed" : "scenario passed");
	return failed ? -EIO : 0;
}

static int mock_single(const struct step *st)
{
	struct scenario *s = scenario_new(&mock_types[0]);
	int ret;

	if (!s) {
		pr_err("FAIL %s: out of memory\n", st->name);
		return -EIO;
	}
	ret = st->fn(s);
	if (ret)
		pr_err("FAIL %s: %s\n", st->name, s->why[0] ? s->why : "error");
	else
		pr_info("ok %s\n", st->name);
	scenario_free(s);
	return ret ? -EIO : 0;
}

static ssize_t run_write(struct file *file, const char __user *ubuf,
			 size_t count, loff_t *ppos)
{
	char buf[48];
	unsigned int secs;
	u64 seed;
	int i, ret;

	if (count >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, count))
		return -EFAULT;
	buf[count] = 0;
	if (sscanf(buf, "hostile %llu %u", &seed, &secs) == 2) {
		guard(mutex)(&run_lock);
		ret = mock_hostile(seed, secs);
		return ret ? ret : count;
	}
	if (sysfs_streq(buf, "stop-copy-rollback")) {
		guard(mutex)(&run_lock);
		ret = mock_run(&mock_types[0], stop_copy_steps,
			       "stop-copy-rollback");
		return ret ? ret : count;
	}
	if (sysfs_streq(buf, "pin-lost")) {
		guard(mutex)(&run_lock);
		ret = mock_run(&mock_types[0], pin_lost_steps, "pin-lost");
		return ret ? ret : count;
	}
	if (sysfs_streq(buf, "narrow writeset") || sysfs_streq(buf, "narrow all")) {
		guard(mutex)(&run_lock);
		ret = mock_narrow(sysfs_streq(buf, "narrow all"));
		return ret ? ret : count;
	}
	for (i = 0; single_steps[i].name; i++) {
		if (!sysfs_streq(buf, single_steps[i].name))
			continue;
		guard(mutex)(&run_lock);
		ret = mock_single(&single_steps[i]);
		return ret ? ret : count;
	}
	for (i = 0; i < ARRAY_SIZE(mock_types); i++) {
		if (!sysfs_streq(buf, mock_types[i].name))
			continue;
		guard(mutex)(&run_lock);
		/* the mock's own type unprefixed, "v5_1:<step>" else */
		ret = mock_run(&mock_types[i], steps,
			       i ? mock_types[i].name : "");
		return ret ? ret : count;
	}
	return -EINVAL;
}

static const struct file_operations run_fops = {
	.owner = THIS_MODULE,
	.write = run_write,
};

static int __init gvt_mock_init(void)
{
	int ret;

	mock_dev = root_device_register("gvt_mock");
	if (IS_ERR(mock_dev))
		return PTR_ERR(mock_dev);
	mock_dir = debugfs_create_dir("gvt_mock", NULL);
	debugfs_create_file("run", 0200, mock_dir, NULL, &run_fops);
	ret = kv_register(mock_dir);
	if (ret) {
		debugfs_remove_recursive(mock_dir);
		root_device_unregister(mock_dev);
		return ret;
	}
	pr_info("loaded\n");
	return 0;
}

static void __exit gvt_mock_exit(void)
{
	kv_unregister();
	debugfs_remove_recursive(mock_dir);
	root_device_unregister(mock_dev);
}

module_init(gvt_mock_init);
module_exit(gvt_mock_exit);

MODULE_DESCRIPTION("Mock of kvmgt's companion interface, for gmig's tests");
MODULE_LICENSE("GPL");
MODULE_IMPORT_NS("IOMMUFD");

// SPDX-License-Identifier: GPL-2.0
/*
 * gmig VFIO v2 migration plumbing: the data fd (struct file) of a migration,
 * the state machine walk with vfio_mig_get_next_state(), and DMA logging.
 *
 * What each arc does to the vGPU, what goes into the stream and which pages
 * are dirty is decided in Rust (rust/migration/); this file owns the file
 * objects and their life cycle:
 *
 * - a migration file holds a pointer to its gmig_mig only while it is
 *   enabled. close_device(), reset and the arcs that end a migration disable
 *   it under its lock, so a data fd that outlives the device (a client that
 *   closes the device mid-migration and opens it again) only ever returns
 *   -ENODEV.
 * - lock order: m->state_mutex, then migf->lock, then the Rust vGPU lock.
 *   read()/write() take migf->lock only; an arc takes the saving file's
 *   migf->lock around its Rust part, so that it never moves the stream
 *   between the bytes a read() was handed and those it consumes.
 * - what a VMM makes the kernel allocate (the bounce buffers here, the
 *   state images, the incoming stream and the dirty tracker in Rust) is
 *   GFP_KERNEL_ACCOUNT: charged to the VMM's memory cgroup.
 *
 * The same ops serve the sim's mdevs and GVT-g's vGPUs (whose vfio_device
 * is kvmgt's): gmig_mig_of() finds the struct gmig_mig of either.
 */
#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/interval_tree.h>
#include <linux/iova_bitmap.h>
#include <linux/slab.h>
#include <linux/uio.h>
#include <linux/vfio.h>

#include "gmig_internal.h"

MODULE_IMPORT_NS("IOMMUFD");

#define GMIG_MIG_CHUNK (64 * 1024)

struct gmig_migf {
	struct file *filp;
	struct mutex lock;		/* protects mig and disabled */
	struct gmig_mig *mig;
	bool disabled;
	bool saving;
};

static void gmig_migf_disable(struct gmig_migf *migf)
{
	mutex_lock(&migf->lock);
	migf->disabled = true;
	migf->mig = NULL;
	mutex_unlock(&migf->lock);
}

static const struct vfio_migration_ops gmig_migration_ops;
static const struct vfio_log_ops gmig_log_ops;

static struct gmig_mig *gmig_mig_of(struct vfio_device *vdev)
{
	struct gmig_mig *m = gmig_vfio_mig(vdev);

	return m ? m : gmig_gvt_mig(vdev);
}

/* Called with m->state_mutex held. */
static void gmig_mig_disable_files(struct gmig_mig *m)
{
	struct gmig_migf **slots[] = { &m->saving_migf, &m->resuming_migf };
	int i;

	for (i = 0; i < ARRAY_SIZE(slots); i++) {
		struct gmig_migf *migf = *slots[i];

		if (!migf)
			continue;
		gmig_migf_disable(migf);
		fput(migf->filp);
		*slots[i] = NULL;
	}
}

static int gmig_migf_release(struct inode *inode, struct file *filp)
{
	struct gmig_migf *migf = filp->private_data;

	gmig_migf_disable(migf);
	mutex_destroy(&migf->lock);
	kfree(migf);
	return 0;
}

/*
 * One chunk of a read(): Rust hands out up to @n bytes of the stream without
 * consuming them, they are copied to the reader outside the vGPU lock (a
 * fault may take mmap_lock), and only the bytes the reader got are consumed.
 * A reader whose buffer faults part way gets a short read, or -EFAULT if
 * nothing was copied, and the rest stays in the stream.
 */
static ssize_t gmig_migf_read_chunk(struct gmig_mig *m, void *buf, size_t n,
				    struct iov_iter *iter)
{
	u64 at = 0;
	size_t got;
	ssize_t ret;
	int err;

	ret = gmig_rs_mig_read(m->provider, m->rs, buf, n, &at);
	if (ret <= 0)
		return ret;
	got = copy_to_iter(buf, ret, iter);
	err = gmig_rs_mig_read_commit(m->provider, m->rs, at, got);
	if (err)
		return err;
	return got ? got : -EFAULT;
}

/*
 * read() of the saving fd and write() of the resuming fd (also kernel_read()
 * and kernel_write()): the data goes through a kernel bounce buffer in
 * chunks, Rust produces or consumes it. A short read ends the loop (nothing
 * more now, the end of the stream, or a fault). The files are streams:
 * pread() and pwrite() fail with -ESPIPE (stream_open()).
 */
static ssize_t gmig_migf_xfer(struct gmig_migf *migf, struct iov_iter *iter,
			      bool write)
{
	size_t len = iov_iter_count(iter);
	ssize_t done = 0, ret = 0;
	void *buf;

	if (!len)
		return 0;
	buf = kvmalloc(min_t(size_t, len, GMIG_MIG_CHUNK), GFP_KERNEL_ACCOUNT);
	if (!buf)
		return -ENOMEM;
	mutex_lock(&migf->lock);
	while (done < len) {
		size_t n = min_t(size_t, len - done, GMIG_MIG_CHUNK);
		struct gmig_mig *m = migf->mig;

		if (migf->disabled || !m) {
			ret = -ENODEV;
			break;
		}
		if (write) {
			if (!copy_from_iter_full(buf, n, iter)) {
				ret = -EFAULT;
				break;
			}
			ret = gmig_rs_mig_write(m->provider, m->rs, buf, n);
		} else {
			ret = gmig_migf_read_chunk(m, buf, n, iter);
		}
		if (ret <= 0)
			break;
		done += ret;
		if (ret < n)
			break;
	}
	mutex_unlock(&migf->lock);
	kvfree(buf);
	return done ? done : ret;
}

static ssize_t gmig_migf_read_iter(struct kiocb *iocb, struct iov_iter *to)
{
	return gmig_migf_xfer(iocb->ki_filp->private_data, to, false);
}

static ssize_t gmig_migf_write_iter(struct kiocb *iocb, struct iov_iter *from)
{
	return gmig_migf_xfer(iocb->ki_filp->private_data, from, true);
}

static long gmig_migf_ioctl(struct file *filp, unsigned int cmd,
			    unsigned long arg)
{
	struct gmig_migf *migf = filp->private_data;
	struct vfio_precopy_info info = {};
	bool reinit = false;
	struct gmig_mig *m;
	int ret;

	mutex_lock(&migf->lock);
	m = migf->mig;
	if (migf->disabled || !m) {
		mutex_unlock(&migf->lock);
		return -ENODEV;
	}
	ret = vfio_check_precopy_ioctl(m->vdev, cmd, arg, &info);
	if (!ret)
		ret = gmig_rs_precopy_info(m->provider, m->rs,
					   m->vdev->precopy_info_v2,
					   &info.initial_bytes,
					   &info.dirty_bytes, &reinit);
	/* only a VMM that opted in gets the flag (v1: flags are reserved) */
	if (!ret && reinit)
		info.flags |= VFIO_PRECOPY_INFO_REINIT;
	mutex_unlock(&migf->lock);
	if (ret)
		return ret;
	return copy_to_user((void __user *)arg, &info,
			    offsetofend(struct vfio_precopy_info, dirty_bytes)) ?
		-EFAULT : 0;
}

static const struct file_operations gmig_save_fops = {
	.owner = THIS_MODULE,
	.read_iter = gmig_migf_read_iter,
	.unlocked_ioctl = gmig_migf_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.release = gmig_migf_release,
};

static const struct file_operations gmig_resume_fops = {
	.owner = THIS_MODULE,
	.write_iter = gmig_migf_write_iter,
	.release = gmig_migf_release,
};

static struct gmig_migf *gmig_migf_new(struct gmig_mig *m, bool saving)
{
	struct gmig_migf *migf;
	struct file *filp;

	migf = kzalloc_obj(*migf, GFP_KERNEL_ACCOUNT);
	if (!migf)
		return ERR_PTR(-ENOMEM);
	filp = anon_inode_getfile("gmig_mig", saving ? &gmig_save_fops :
				  &gmig_resume_fops, migf,
				  saving ? O_RDONLY : O_WRONLY);
	if (IS_ERR(filp)) {
		kfree(migf);
		return ERR_CAST(filp);
	}
	stream_open(filp->f_inode, filp);
	mutex_init(&migf->lock);
	migf->filp = filp;
	migf->mig = m;
	migf->saving = saving;
	return migf;
}

/*
 * One arc of the VFIO migration state machine. Rust does the device side;
 * this returns the new data fd for the arcs that open one.
 */
static struct file *gmig_step_state(struct gmig_mig *m,
				    enum vfio_device_mig_state next)
{
	enum vfio_device_mig_state cur = m->mig_state;
	u32 fds = gmig_rs_arc_fds(cur, next);
	bool new_save = fds == GMIG_ARC_NEW_SAVING;
	bool new_resume = fds == GMIG_ARC_NEW_RESUMING;
	struct gmig_migf *save = m->saving_migf;
	struct gmig_migf *migf = NULL;
	int ret;

	if (new_save || new_resume) {
		migf = gmig_migf_new(m, new_save);
		if (IS_ERR(migf))
			return ERR_CAST(migf);
	}

	/* A read() in progress ends first (see gmig_migf_read_chunk()). */
	if (save)
		mutex_lock(&save->lock);
	ret = gmig_rs_mig_arc(m->provider, m->rs, cur, next);
	if (save)
		mutex_unlock(&save->lock);
	if (ret) {
		if (migf)
			fput(migf->filp);
		return ERR_PTR(ret);
	}

	/* Arcs that end the data phase close the device's side of the fd. */
	if (fds == GMIG_ARC_END_DATA)
		gmig_mig_disable_files(m);

	if (!migf)
		return NULL;
	if (new_save)
		m->saving_migf = migf;
	else
		m->resuming_migf = migf;
	get_file(migf->filp);
	return migf->filp;
}

static struct file *gmig_set_state(struct vfio_device *vdev,
				   enum vfio_device_mig_state new_state)
{
	struct gmig_mig *m = gmig_mig_of(vdev);
	struct file *res = NULL;

	if (!m)
		return ERR_PTR(-ENODEV);
	mutex_lock(&m->state_mutex);
	while (m->mig_state != new_state) {
		enum vfio_device_mig_state next;
		int ret = vfio_mig_get_next_state(vdev, m->mig_state,
						  new_state, &next);

		if (ret) {
			res = ERR_PTR(ret);
			break;
		}
		res = gmig_step_state(m, next);
		if (IS_ERR(res))
			break;
		m->mig_state = next;
		/* Only the last arc of a walk may open a data fd. */
		if (res && next != new_state) {
			fput(res);
			res = ERR_PTR(-EINVAL);
			break;
		}
	}
	mutex_unlock(&m->state_mutex);
	if (IS_ERR(res))
		dev_err_ratelimited(vdev->dev,
				    "migration state %d -> %d failed: %ld\n",
				    m->mig_state, new_state, PTR_ERR(res));
	return res;
}

static int gmig_get_state(struct vfio_device *vdev,
			  enum vfio_device_mig_state *state)
{
	struct gmig_mig *m = gmig_mig_of(vdev);

	if (!m)
		return -ENODEV;
	mutex_lock(&m->state_mutex);
	*state = m->mig_state;
	mutex_unlock(&m->state_mutex);
	return 0;
}

static int gmig_get_data_size(struct vfio_device *vdev,
			      unsigned long *stop_copy_length)
{
	struct gmig_mig *m = gmig_mig_of(vdev);
	u64 size = 0;
	int ret;

	if (!m)
		return -ENODEV;
	ret = gmig_rs_mig_data_size(m->provider, m->rs, &size);
	*stop_copy_length = size;
	return ret;
}

/*
 * The VFIO user closed or reset the device: a migration in progress ends,
 * so that the next open finds a RUNNING device and stale data fds only get
 * -ENODEV; Rust resumes the vGPU. Dirty logging stops too: the next VM's
 * GGTT writes and pins must not feed a log nobody reads (a VMM that goes
 * on migrating after a reset gets -EINVAL from its next report, and the
 * migration fails rather than missing a page).
 */
void gmig_mig_reset(struct gmig_mig *m)
{
	mutex_lock(&m->state_mutex);
	gmig_mig_disable_files(m);
	m->mig_state = VFIO_DEVICE_STATE_RUNNING;
	gmig_rs_mig_abort(m->provider, m->rs);
	gmig_rs_log_stop(m->provider, m->rs);
	mutex_unlock(&m->state_mutex);
}

static const struct vfio_migration_ops gmig_migration_ops = {
	.migration_set_state = gmig_set_state,
	.migration_get_state = gmig_get_state,
	.migration_get_data_size = gmig_get_data_size,
};

/*
 * Makes @vdev migratable by gmig (called before the vfio_device is
 * registered); @m->rs is set by the caller once the Rust side exists.
 */
void gmig_mig_init(struct gmig_mig *m, struct vfio_device *vdev,
		   u32 provider)
{
	m->vdev = vdev;
	m->provider = provider;
	mutex_init(&m->state_mutex);
	m->mig_state = VFIO_DEVICE_STATE_RUNNING;
	vdev->migration_flags = VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P |
				VFIO_MIGRATION_PRE_COPY;
	vdev->mig_ops = &gmig_migration_ops;
	vdev->log_ops = &gmig_log_ops;
}

/* The vfio_device is gone: no op runs any more; data fds get -ENODEV. */
void gmig_mig_destroy(struct gmig_mig *m)
{
	mutex_lock(&m->state_mutex);
	gmig_mig_disable_files(m);
	mutex_unlock(&m->state_mutex);
	mutex_destroy(&m->state_mutex);
}

/* DMA logging: the ranges QEMU wants reported, answered by the tracker. */

static int gmig_log_start(struct vfio_device *vdev,
			  struct rb_root_cached *ranges, u32 nnodes,
			  u64 *page_size)
{
	struct gmig_mig *m = gmig_mig_of(vdev);
	struct interval_tree_node *node;
	u64 *r;
	u32 i = 0;
	int ret;

	if (!m)
		return -ENODEV;
	if (!nnodes || nnodes > GMIG_MAX_LOG_RANGES)
		return -E2BIG;
	r = kcalloc(2 * nnodes, sizeof(*r), GFP_KERNEL_ACCOUNT);
	if (!r)
		return -ENOMEM;
	for (node = interval_tree_iter_first(ranges, 0, ULONG_MAX);
	     node && i < nnodes;
	     node = interval_tree_iter_next(node, 0, ULONG_MAX), i++) {
		r[2 * i] = node->start;
		r[2 * i + 1] = node->last;
	}
	*page_size = PAGE_SIZE;
	ret = gmig_rs_log_start(m->provider, m->rs, r, i);
	kfree(r);
	return ret;
}

static int gmig_log_stop(struct vfio_device *vdev)
{
	struct gmig_mig *m = gmig_mig_of(vdev);

	if (!m)
		return -ENODEV;
	gmig_rs_log_stop(m->provider, m->rs);
	return 0;
}

static int gmig_log_read_and_clear(struct vfio_device *vdev,
				   unsigned long iova, unsigned long length,
				   struct iova_bitmap *dirty)
{
	struct gmig_mig *m = gmig_mig_of(vdev);

	if (!m)
		return -ENODEV;
	return gmig_rs_log_report(m->provider, m->rs, iova, length, dirty);
}

void gmig_log_set_dirty(struct iova_bitmap *dirty, u64 iova, u64 length)
{
	iova_bitmap_set(dirty, iova, length);
}

static const struct vfio_log_ops gmig_log_ops = {
	.log_start = gmig_log_start,
	.log_stop = gmig_log_stop,
	.log_read_and_clear = gmig_log_read_and_clear,
};

// SPDX-License-Identifier: GPL-2.0
/* VFIO client library for gmig's kselftests and samples (see gmig_vfio.h). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gmig_vfio.h"

#define ERRNO_OR(x) ((x) < 0 ? -errno : 0)

int gvfio_open(struct gvfio *v, const char *uuid)
{
	char path[PATH_MAX], link[PATH_MAX];
	struct vfio_group_status status = { .argsz = sizeof(status) };
	ssize_t n;
	int i, ret;

	memset(v, 0, sizeof(*v));
	v->container = v->group = v->device = v->msi_fd = -1;

	snprintf(path, sizeof(path), "/sys/bus/mdev/devices/%s/iommu_group",
		 uuid);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return -errno;
	link[n] = '\0';
	snprintf(path, sizeof(path), "/dev/vfio/%s", basename(link));

	v->container = open("/dev/vfio/vfio", O_RDWR);
	if (v->container < 0)
		goto err;
	v->group = open(path, O_RDWR);
	if (v->group < 0)
		goto err;
	if (ioctl(v->group, VFIO_GROUP_GET_STATUS, &status) ||
	    !(status.flags & VFIO_GROUP_FLAGS_VIABLE)) {
		errno = errno ? errno : EBUSY;
		goto err;
	}
	if (ioctl(v->group, VFIO_GROUP_SET_CONTAINER, &v->container))
		goto err;
	if (ioctl(v->container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU))
		goto err;
	v->device = ioctl(v->group, VFIO_GROUP_GET_DEVICE_FD, uuid);
	if (v->device < 0)
		goto err;
	for (i = 0; i < VFIO_PCI_NUM_REGIONS; i++) {
		v->region[i].argsz = sizeof(v->region[i]);
		v->region[i].index = i;
		if (ioctl(v->device, VFIO_DEVICE_GET_REGION_INFO, &v->region[i]))
			goto err;
	}
	return 0;
err:
	ret = -errno;
	gvfio_close(v);
	return ret;
}

void gvfio_close(struct gvfio *v)
{
	if (v->mem)
		gvfio_unmap_mem(v);
	if (v->msi_fd >= 0)
		close(v->msi_fd);
	if (v->device >= 0)
		close(v->device);
	if (v->group >= 0)
		close(v->group);
	if (v->container >= 0)
		close(v->container);
	v->container = v->group = v->device = v->msi_fd = -1;
}

int gvfio_map_mem(struct gvfio *v, uint64_t iova, uint64_t size)
{
	struct vfio_iommu_type1_dma_map map = {
		.argsz = sizeof(map),
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.iova = iova,
		.size = size,
	};
	void *mem;

	mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (mem == MAP_FAILED)
		return -errno;
	map.vaddr = (uintptr_t)mem;
	if (ioctl(v->container, VFIO_IOMMU_MAP_DMA, &map)) {
		int ret = -errno;

		munmap(mem, size);
		return ret;
	}
	v->mem = mem;
	v->mem_iova = iova;
	v->mem_size = size;
	return 0;
}

int gvfio_unmap_mem(struct gvfio *v)
{
	struct vfio_iommu_type1_dma_unmap unmap = {
		.argsz = sizeof(unmap),
		.iova = v->mem_iova,
		.size = v->mem_size,
	};
	int ret = 0;

	if (!v->mem)
		return 0;
	if (ioctl(v->container, VFIO_IOMMU_UNMAP_DMA, &unmap))
		ret = -errno;
	munmap(v->mem, v->mem_size);
	v->mem = NULL;
	return ret;
}

int gvfio_region_rw(struct gvfio *v, unsigned int index, uint64_t off,
		    void *buf, size_t len, bool write)
{
	ssize_t n;

	if (index >= VFIO_PCI_NUM_REGIONS)
		return -EINVAL;
	off += v->region[index].offset;
	n = write ? pwrite(v->device, buf, len, off) :
		    pread(v->device, buf, len, off);
	if (n < 0)
		return -errno;
	return n == (ssize_t)len ? 0 : -EIO;
}

int gvfio_read32(struct gvfio *v, unsigned int index, uint64_t off,
		 uint32_t *val)
{
	return gvfio_region_rw(v, index, off, val, sizeof(*val), false);
}

int gvfio_write32(struct gvfio *v, unsigned int index, uint64_t off,
		  uint32_t val)
{
	return gvfio_region_rw(v, index, off, &val, sizeof(val), true);
}

int gvfio_write64(struct gvfio *v, unsigned int index, uint64_t off,
		  uint64_t val)
{
	return gvfio_region_rw(v, index, off, &val, sizeof(val), true);
}

int gvfio_set_eventfd(struct gvfio *v, unsigned int index, int32_t fd)
{
	char buf[sizeof(struct vfio_irq_set) + sizeof(int32_t)];
	struct vfio_irq_set *set = (struct vfio_irq_set *)buf;

	set->argsz = sizeof(buf);
	set->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
	set->index = index;
	set->start = 0;
	set->count = 1;
	memcpy(set->data, &fd, sizeof(fd));
	return ioctl(v->device, VFIO_DEVICE_SET_IRQS, set) ? -errno : 0;
}

int gvfio_enable_msi(struct gvfio *v)
{
	int32_t fd;
	int ret;

	fd = eventfd(0, EFD_NONBLOCK);
	if (fd < 0)
		return -errno;
	ret = gvfio_set_eventfd(v, VFIO_PCI_MSI_IRQ_INDEX, fd);
	if (ret) {
		close(fd);
		return ret;
	}
	v->msi_fd = fd;
	return 0;
}

int gvfio_wait_msi(struct gvfio *v, int timeout_ms)
{
	struct pollfd p = { .fd = v->msi_fd, .events = POLLIN };
	uint64_t count;
	int n;

	n = poll(&p, 1, timeout_ms);
	if (n <= 0)
		return n < 0 ? -errno : 0;
	if (read(v->msi_fd, &count, sizeof(count)) != sizeof(count))
		return -errno;
	return 1;
}

int gvfio_reset(struct gvfio *v)
{
	return ERRNO_OR(ioctl(v->device, VFIO_DEVICE_RESET));
}

static int feature(struct gvfio *v, uint32_t flags, void *data, size_t len)
{
	char buf[sizeof(struct vfio_device_feature) + 64]
		__attribute__((aligned(8)));
	struct vfio_device_feature *f = (struct vfio_device_feature *)buf;

	if (len > 64)
		return -EINVAL;
	f->argsz = sizeof(*f) + len;
	f->flags = flags;
	if (len)
		memcpy(f->data, data, len);
	if (ioctl(v->device, VFIO_DEVICE_FEATURE, f))
		return -errno;
	if (len)
		memcpy(data, f->data, len);
	return 0;
}

int gvfio_mig_flags(struct gvfio *v, uint64_t *flags)
{
	struct vfio_device_feature_migration m = {};
	int ret = feature(v, VFIO_DEVICE_FEATURE_GET |
			  VFIO_DEVICE_FEATURE_MIGRATION, &m, sizeof(m));

	*flags = m.flags;
	return ret;
}

int gvfio_mig_set_state(struct gvfio *v, uint32_t state, int *data_fd)
{
	struct vfio_device_feature_mig_state m = { .device_state = state };
	int ret = feature(v, VFIO_DEVICE_FEATURE_SET |
			  VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, &m, sizeof(m));

	if (data_fd)
		*data_fd = ret ? -1 : m.data_fd;
	return ret;
}

int gvfio_mig_get_state(struct gvfio *v, uint32_t *state)
{
	struct vfio_device_feature_mig_state m = {};
	int ret = feature(v, VFIO_DEVICE_FEATURE_GET |
			  VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, &m, sizeof(m));

	*state = m.device_state;
	return ret;
}

int gvfio_mig_data_size(struct gvfio *v, uint64_t *size)
{
	struct vfio_device_feature_mig_data_size m = {};
	int ret = feature(v, VFIO_DEVICE_FEATURE_GET |
			  VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, &m, sizeof(m));

	*size = m.stop_copy_length;
	return ret;
}

int gvfio_precopy_info(int data_fd, uint64_t *initial, uint64_t *dirty)
{
	uint32_t flags;

	return gvfio_precopy_info_flags(data_fd, initial, dirty, &flags);
}

int gvfio_precopy_info_flags(int data_fd, uint64_t *initial, uint64_t *dirty,
			     uint32_t *flags)
{
	struct vfio_precopy_info info = { .argsz = sizeof(info) };

	if (ioctl(data_fd, VFIO_MIG_GET_PRECOPY_INFO, &info))
		return -errno;
	*initial = info.initial_bytes;
	*dirty = info.dirty_bytes;
	*flags = info.flags;
	return 0;
}

int gvfio_precopy_info_v2(struct gvfio *v)
{
	return feature(v, VFIO_DEVICE_FEATURE_SET |
		       VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2, NULL, 0);
}

int gvfio_log_start_ranges(struct gvfio *v,
			   const struct vfio_device_feature_dma_logging_range *r,
			   unsigned int n)
{
	struct vfio_device_feature_dma_logging_control ctl = {
		.page_size = 4096, .num_ranges = n,
		.ranges = (uintptr_t)r,
	};

	return feature(v, VFIO_DEVICE_FEATURE_SET |
		       VFIO_DEVICE_FEATURE_DMA_LOGGING_START, &ctl, sizeof(ctl));
}

int gvfio_log_start(struct gvfio *v, uint64_t iova, uint64_t length)
{
	struct vfio_device_feature_dma_logging_range range = {
		.iova = iova, .length = length,
	};

	return gvfio_log_start_ranges(v, &range, 1);
}

int gvfio_log_stop(struct gvfio *v)
{
	return feature(v, VFIO_DEVICE_FEATURE_SET |
		       VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP, NULL, 0);
}

int gvfio_log_report(struct gvfio *v, uint64_t iova, uint64_t length,
		     uint64_t *bitmap)
{
	struct vfio_device_feature_dma_logging_report r = {
		.iova = iova, .length = length, .page_size = 4096,
		.bitmap = (uintptr_t)bitmap,
	};

	return feature(v, VFIO_DEVICE_FEATURE_GET |
		       VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, &r, sizeof(r));
}

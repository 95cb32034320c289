/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A small VFIO client library for gmig's kselftests and samples: opens an
 * mdev through the legacy group/container path (what QEMU uses for
 * sysfsdev=), maps guest-like DMA memory, accesses regions, takes MSI
 * through an eventfd, and drives the VFIO v2 migration uAPI.
 * Functions return 0 or a negative errno; none of them exits.
 */
#ifndef GMIG_VFIO_H
#define GMIG_VFIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/vfio.h>

struct gvfio {
	int container;
	int group;
	int device;
	int msi_fd;
	struct vfio_region_info region[VFIO_PCI_NUM_REGIONS];
	void *mem;		/* the DMA-mapped "guest RAM" */
	uint64_t mem_iova;
	uint64_t mem_size;
};

int gvfio_open(struct gvfio *v, const char *uuid);
void gvfio_close(struct gvfio *v);
int gvfio_map_mem(struct gvfio *v, uint64_t iova, uint64_t size);
int gvfio_unmap_mem(struct gvfio *v);
int gvfio_region_rw(struct gvfio *v, unsigned int index, uint64_t off,
		    void *buf, size_t len, bool write);
int gvfio_read32(struct gvfio *v, unsigned int index, uint64_t off,
		 uint32_t *val);
int gvfio_write32(struct gvfio *v, unsigned int index, uint64_t off,
		  uint32_t val);
int gvfio_write64(struct gvfio *v, unsigned int index, uint64_t off,
		  uint64_t val);
/* Sets fd as the trigger eventfd of IRQ index (MSI, REQ, ...). */
int gvfio_set_eventfd(struct gvfio *v, unsigned int index, int32_t fd);
int gvfio_enable_msi(struct gvfio *v);
/* Waits up to timeout_ms for an MSI; returns 1 if one came, 0 if not. */
int gvfio_wait_msi(struct gvfio *v, int timeout_ms);
int gvfio_reset(struct gvfio *v);

/* Migration (VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE etc.). */
int gvfio_mig_flags(struct gvfio *v, uint64_t *flags);
/* Sets the state; *data_fd gets the new data fd or -1. */
int gvfio_mig_set_state(struct gvfio *v, uint32_t state, int *data_fd);
int gvfio_mig_get_state(struct gvfio *v, uint32_t *state);
int gvfio_mig_data_size(struct gvfio *v, uint64_t *size);
int gvfio_precopy_info(int data_fd, uint64_t *initial, uint64_t *dirty);
/* As gvfio_precopy_info(), with the flags the kernel returns. */
int gvfio_precopy_info_flags(int data_fd, uint64_t *initial, uint64_t *dirty,
			     uint32_t *flags);
/* Opts in to VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2 (flags, REINIT). */
int gvfio_precopy_info_v2(struct gvfio *v);
int gvfio_log_start(struct gvfio *v, uint64_t iova, uint64_t length);
/* DMA logging over n ranges (as QEMU starts it for a guest with holes). */
int gvfio_log_start_ranges(struct gvfio *v,
			   const struct vfio_device_feature_dma_logging_range *r,
			   unsigned int n);
int gvfio_log_stop(struct gvfio *v);
/* Reads the dirty bitmap (one bit per 4 KiB page) of [iova, iova+length). */
int gvfio_log_report(struct gvfio *v, uint64_t iova, uint64_t length,
		     uint64_t *bitmap);

#endif /* GMIG_VFIO_H */

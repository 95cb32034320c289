/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Driving a gmig sim vGPU the way a guest driver does: the register layout
 * (see rust/gmig_core/src/sim/regs.rs and Documentation/sim-vgpu.rst) and
 * helpers to map GGTT pages, build a context and submit it through ELSP.
 */
#ifndef GMIG_SIM_H
#define GMIG_SIM_H

#include <stdint.h>

#include "gmig_vfio.h"

#define SIM_BAR0_SIZE		(16ull << 20)
#define SIM_GGTT_OFFSET		0x100000ull
#define SIM_ELSP		0x2230
#define SIM_STATUS_LO		0x2234
#define SIM_STATUS_HI		0x2238
#define SIM_FAULT_STATUS	0x2400
#define SIM_FAULT_ADDR_LO	0x2404
#define SIM_RCS_IMR		0x20a8
#define SIM_MASTER_IRQ		0x44200
#define SIM_PVINFO		0x78000
#define SIM_PVINFO_GM_BASE	(SIM_PVINFO + 0x40)
#define SIM_PVINFO_GM_SIZE	(SIM_PVINFO + 0x44)
#define SIM_LRC_MAGIC		0x434c4d47u

#define SIM_FAULT_UNKNOWN_OPCODE	1
#define SIM_FAULT_OUTSIDE_PARTITION	2
#define SIM_FAULT_UNMAPPED		3
#define SIM_FAULT_GUEST_MEMORY		4
#define SIM_FAULT_BAD_RING		5

/* Page layout of the test "guest" inside the DMA-mapped memory. */
#define SIM_PAGE_CTX	0
#define SIM_PAGE_RING	1	/* 2 pages */
#define SIM_PAGE_BATCH	16
#define SIM_PAGE_DATA	64
#define SIM_PAGES	1024	/* GGTT-mapped pages */

struct sim {
	struct gvfio v;
	uint64_t gbase;		/* partition base (graphics address) */
	uint64_t gsize;
	uint32_t ring_tail;
	uint32_t completed;
};

/* Writes val to a sysfs or debugfs file: 0 or -errno (-EIO if short). */
int sim_write_sysfs(const char *path, const char *val);
/* Writes gmig's module parameter @name; 0 or -errno. */
int sim_set_param(const char *name, const char *val);
/* The value of `key` in the vGPU's debugfs stats, or -1. */
long long sim_stat(const char *uuid, const char *key);
int sim_create_mdev(const char *type, const char *uuid);
int sim_remove_mdev(const char *uuid);
/* Opens the mdev, maps mem_size bytes at iova, maps SIM_PAGES in the GGTT. */
int sim_open(struct sim *s, const char *uuid, uint64_t iova, uint64_t mem_size);
void sim_close(struct sim *s);
int sim_map_ggtt(struct sim *s);
/*
 * Rewrites n GGTT entries from page first on, as a guest remapping its
 * graphics memory: entry i maps page (i + salt) % the pages of its memory.
 */
int sim_rewrite_ggtt(struct sim *s, unsigned int first, unsigned int n,
		     unsigned int salt);
/* The GGTT entry of page n of the partition, read through BAR0 (0 if not). */
uint64_t sim_ggtt_entry(struct sim *s, unsigned int page);
/* Graphics address and CPU pointer of test page n. */
uint64_t sim_gaddr(struct sim *s, unsigned int page);
void *sim_ptr(struct sim *s, unsigned int page);
/* Appends dwords to the ring, updates the context image, submits it. */
int sim_submit(struct sim *s, const uint32_t *dw, unsigned int n,
	       uint32_t ctx_id);
/* Waits until one more context completed than at the last wait (2 s). */
int sim_wait(struct sim *s);
uint32_t sim_reg(struct sim *s, uint64_t off);

#endif /* GMIG_SIM_H */

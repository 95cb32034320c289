// SPDX-License-Identifier: GPL-2.0
/*
 * gmig_submit: drive a gmig sim vGPU the way a guest driver would, from
 * userspace through VFIO. Maps 8 MiB of "guest memory" for DMA, programs
 * GGTT entries through BAR0, builds a ring and a batch (MI_STORE_DATA_IMM,
 * XY_COLOR_BLT, XY_SRC_COPY_BLT), submits the context through ELSP, waits
 * for the MSI, and checks memory.
 *
 *   gmig_submit UUID        (the vGPU must not be in use by QEMU)
 */
#include <stdio.h>
#include <string.h>

#include "gmig_sim.h"

int main(int argc, char **argv)
{
	struct sim s;
	uint32_t *surf, *copy, *data, *batch;
	uint32_t bb[32], n = 0, ring[4];
	int ret, bad = 0, x, y;

	if (argc != 2) {
		fprintf(stderr, "usage: %s UUID\n", argv[0]);
		return 2;
	}
	ret = sim_open(&s, argv[1], 16ull << 20, 8ull << 20);
	if (ret) {
		fprintf(stderr, "open %s: %s\n", argv[1], strerror(-ret));
		return 1;
	}
	printf("vGPU %s: GGTT partition %#llx + %#llx, %d pages mapped\n",
	       argv[1], (unsigned long long)s.gbase,
	       (unsigned long long)s.gsize, SIM_PAGES);
	gvfio_enable_msi(&s.v);
	gvfio_write32(&s.v, 0, SIM_RCS_IMR, 0);
	gvfio_write32(&s.v, 0, SIM_MASTER_IRQ, 1u << 31);

	surf = sim_ptr(&s, SIM_PAGE_DATA);
	copy = sim_ptr(&s, SIM_PAGE_DATA + 16);
	data = sim_ptr(&s, SIM_PAGE_DATA + 32);
	batch = sim_ptr(&s, SIM_PAGE_BATCH);
	/* MI_STORE_DATA_IMM (GGTT) */
	bb[n++] = (0x20u << 23) | (1u << 22) | 2;
	bb[n++] = (uint32_t)sim_gaddr(&s, SIM_PAGE_DATA + 32);
	bb[n++] = 0;
	bb[n++] = 0x600dcafe;
	/* XY_COLOR_BLT: 256x16 px at 32 bpp, pitch 1024 */
	bb[n++] = (2u << 29) | (0x50u << 22) | 5;
	bb[n++] = (3u << 24) | 1024;
	bb[n++] = 0;
	bb[n++] = (16u << 16) | 256;
	bb[n++] = (uint32_t)sim_gaddr(&s, SIM_PAGE_DATA);
	bb[n++] = 0;
	bb[n++] = 0x00ff8800;
	/* XY_SRC_COPY_BLT: the same rectangle elsewhere */
	bb[n++] = (2u << 29) | (0x53u << 22) | 8;
	bb[n++] = (3u << 24) | 1024;
	bb[n++] = 0;
	bb[n++] = (16u << 16) | 256;
	bb[n++] = (uint32_t)sim_gaddr(&s, SIM_PAGE_DATA + 16);
	bb[n++] = 0;
	bb[n++] = 0;
	bb[n++] = 1024;
	bb[n++] = (uint32_t)sim_gaddr(&s, SIM_PAGE_DATA);
	bb[n++] = 0;
	bb[n++] = 0x0au << 23;	/* MI_BATCH_BUFFER_END */
	memcpy(batch, bb, n * 4);
	ring[0] = (0x31u << 23) | 1;	/* MI_BATCH_BUFFER_START (GGTT) */
	ring[1] = (uint32_t)sim_gaddr(&s, SIM_PAGE_BATCH);
	ring[2] = 0;
	ring[3] = 0;
	printf("submitting a batch of %u dwords through ELSP\n", n);
	sim_submit(&s, ring, 4, 1);
	printf("MSI: %s\n", gvfio_wait_msi(&s.v, 2000) == 1 ? "received" : "none");
	if (sim_wait(&s)) {
		fprintf(stderr, "context did not complete\n");
		return 1;
	}
	printf("fault status: %u\n", sim_reg(&s, SIM_FAULT_STATUS));
	bad += data[0] != 0x600dcafe;
	for (y = 0; y < 16; y++)
		for (x = 0; x < 256; x++)
			bad += surf[y * 256 + x] != 0x00ff8800 ||
			       copy[y * 256 + x] != 0x00ff8800;
	printf("memory check: %s\n", bad ? "MISMATCH" : "ok");
	sim_close(&s);
	return bad ? 1 : 0;
}

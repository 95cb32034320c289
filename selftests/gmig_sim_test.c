// SPDX-License-Identifier: GPL-2.0
/*
 * The gmig sim vGPU driven like a guest driver does, through VFIO: config
 * space, PVINFO, GGTT programming, ELSP submission, each supported
 * command's effect byte for byte, interrupts, and hostile input (unknown
 * opcode, out-of-partition address, bad region accesses, DMA unmapped under
 * the GPU, removal while busy). Skips when the gmig mdev parent is absent.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "gmig_sim.h"

#define UUID "5a1d0000-0000-4000-8000-0000000000a1"
#define IOVA (16ull << 20)
#define MEM (8ull << 20)

#define SDI_GGTT(a, v)	((0x20u << 23) | (1u << 22) | 2), (uint32_t)(a), 0, (v)

FIXTURE(sim) {
	struct sim s;
};

FIXTURE_SETUP(sim)
{
	struct stat st;

	if (stat("/sys/class/mdev_bus/gmig", &st))
		SKIP(return, "no gmig mdev parent (gmig.ko not loaded)");
	sim_remove_mdev(UUID);	/* left over by a killed test */
	ASSERT_EQ(0, sim_create_mdev("gmig-small", UUID));
	ASSERT_EQ(0, sim_open(&self->s, UUID, IOVA, MEM));
}

FIXTURE_TEARDOWN(sim)
{
	sim_close(&self->s);
	sim_remove_mdev(UUID);
}

TEST_F(sim, config_identity)
{
	uint32_t id, class;

	ASSERT_EQ(0, gvfio_read32(&self->s.v, VFIO_PCI_CONFIG_REGION_INDEX, 0, &id));
	ASSERT_EQ(0x19128086u, id);
	ASSERT_EQ(0, gvfio_read32(&self->s.v, VFIO_PCI_CONFIG_REGION_INDEX, 8, &class));
	ASSERT_EQ(0x030000u, class >> 8);
	/* Identity is read-only. */
	ASSERT_EQ(0, gvfio_write32(&self->s.v, VFIO_PCI_CONFIG_REGION_INDEX, 0, 0));
	ASSERT_EQ(0, gvfio_read32(&self->s.v, VFIO_PCI_CONFIG_REGION_INDEX, 0, &id));
	ASSERT_EQ(0x19128086u, id);
}

TEST_F(sim, pvinfo_tells_the_partition)
{
	ASSERT_EQ(0x76544776u, sim_reg(&self->s, SIM_PVINFO));
	ASSERT_EQ(64u << 20, self->s.gsize);
	ASSERT_EQ(0, self->s.gbase % (64u << 20));
	ASSERT_NE(0, self->s.gbase);
}

TEST_F(sim, store_data_imm)
{
	uint32_t *data = sim_ptr(&self->s, SIM_PAGE_DATA);
	uint32_t cmd[] = { SDI_GGTT(sim_gaddr(&self->s, SIM_PAGE_DATA) + 12, 0xc0ffee01) };

	ASSERT_EQ(0, sim_submit(&self->s, cmd, 4, 7));
	ASSERT_EQ(0, sim_wait(&self->s));
	ASSERT_EQ(0xc0ffee01u, data[3]);
	ASSERT_EQ(0u, data[2]);
	ASSERT_EQ(0u, data[4]);
	ASSERT_EQ(7u, sim_reg(&self->s, SIM_STATUS_HI));
	ASSERT_EQ(0u, sim_reg(&self->s, SIM_FAULT_STATUS));
}

TEST_F(sim, color_and_copy_blt_in_a_batch)
{
	struct sim *s = &self->s;
	uint32_t *batch = sim_ptr(s, SIM_PAGE_BATCH);
	uint32_t *dst = sim_ptr(s, SIM_PAGE_DATA);
	uint32_t *cpy = sim_ptr(s, SIM_PAGE_DATA + 4);
	uint32_t pitch = 256, x, y;
	uint32_t bb[] = {
		/* XY_COLOR_BLT 32bpp: (4,2)-(20,6) of a 64x16 surface */
		(2u << 29) | (0x50u << 22) | 5, (3u << 24) | pitch,
		(2u << 16) | 4, (6u << 16) | 20,
		(uint32_t)sim_gaddr(s, SIM_PAGE_DATA), 0, 0x55aa1234,
		/* XY_SRC_COPY_BLT: copy (4,2)-(20,6) to (0,0) of another surface */
		(2u << 29) | (0x53u << 22) | 8, (3u << 24) | pitch,
		0, (4u << 16) | 16,
		(uint32_t)sim_gaddr(s, SIM_PAGE_DATA + 4), 0,
		(2u << 16) | 4, pitch,
		(uint32_t)sim_gaddr(s, SIM_PAGE_DATA), 0,
		0x0au << 23,	/* MI_BATCH_BUFFER_END */
	};
	uint32_t ring[] = { (0x31u << 23) | 1, (uint32_t)sim_gaddr(s, SIM_PAGE_BATCH), 0, 0 };

	memcpy(batch, bb, sizeof(bb));
	ASSERT_EQ(0, sim_submit(s, ring, 4, 9));
	ASSERT_EQ(0, sim_wait(s));
	ASSERT_EQ(0u, sim_reg(s, SIM_FAULT_STATUS));
	for (y = 0; y < 16; y++) {
		for (x = 0; x < 64; x++) {
			int in = y >= 2 && y < 6 && x >= 4 && x < 20;
			int in_copy = y < 4 && x < 16;

			ASSERT_EQ(in ? 0x55aa1234u : 0u, dst[y * 64 + x]);
			ASSERT_EQ(in_copy ? 0x55aa1234u : 0u, cpy[y * 64 + x]);
		}
	}
}

TEST_F(sim, pipe_control_and_flush_dw_post_sync)
{
	struct sim *s = &self->s;
	uint32_t *data = sim_ptr(s, SIM_PAGE_DATA);
	uint64_t g = sim_gaddr(s, SIM_PAGE_DATA);
	uint32_t cmd[] = {
		0x7a000004, (1u << 14) | (1u << 24), (uint32_t)g + 64, 0, 0x11112222, 0x33334444,
		(0x26u << 23) | (1u << 14) | 2, ((uint32_t)g + 128) | 4, 0, 0x99, 0, 0,
	};

	ASSERT_EQ(0, sim_submit(s, cmd, 12, 1));
	ASSERT_EQ(0, sim_wait(s));
	ASSERT_EQ(0x11112222u, data[16]);
	ASSERT_EQ(0x33334444u, data[17]);
	ASSERT_EQ(0x99u, data[32]);
}

TEST_F(sim, msi_on_completion)
{
	struct sim *s = &self->s;
	uint32_t cmd[] = { SDI_GGTT(sim_gaddr(s, SIM_PAGE_DATA), 1) };

	ASSERT_EQ(0, gvfio_enable_msi(&s->v));
	ASSERT_EQ(0, gvfio_write32(&s->v, 0, SIM_RCS_IMR, 0));
	ASSERT_EQ(0, gvfio_write32(&s->v, 0, SIM_MASTER_IRQ, 1u << 31));
	ASSERT_EQ(0, sim_submit(s, cmd, 4, 2));
	ASSERT_EQ(1, gvfio_wait_msi(&s->v, 2000));
}

TEST_F(sim, unknown_opcode_faults_without_writes)
{
	struct sim *s = &self->s;
	uint32_t *data = sim_ptr(s, SIM_PAGE_DATA);
	uint32_t cmd[] = { 0x3fu << 23, SDI_GGTT(sim_gaddr(s, SIM_PAGE_DATA), 5) };

	ASSERT_EQ(0, sim_submit(s, cmd, 5, 3));
	ASSERT_EQ(0, sim_wait(s));
	ASSERT_EQ(SIM_FAULT_UNKNOWN_OPCODE, sim_reg(s, SIM_FAULT_STATUS));
	ASSERT_EQ(0u, data[0]);
}

TEST_F(sim, out_of_partition_address_faults)
{
	struct sim *s = &self->s;
	uint32_t cmd[] = { SDI_GGTT(0x1000, 5) };

	ASSERT_EQ(0, sim_submit(s, cmd, 4, 3));
	ASSERT_EQ(0, sim_wait(s));
	ASSERT_EQ(SIM_FAULT_OUTSIDE_PARTITION, sim_reg(s, SIM_FAULT_STATUS));
	ASSERT_EQ(0x1000u, sim_reg(s, SIM_FAULT_ADDR_LO));
}

TEST_F(sim, ggtt_writes_outside_the_partition_are_dropped)
{
	struct sim *s = &self->s;
	uint64_t off = SIM_GGTT_OFFSET + 8;	/* graphics address 4 KiB */
	uint64_t v = 0;

	ASSERT_EQ(0, gvfio_write64(&s->v, 0, off, 0x5001));
	ASSERT_EQ(0, gvfio_region_rw(&s->v, 0, off, &v, 8, false));
	ASSERT_EQ(0u, v);
}

TEST_F(sim, bad_region_accesses_are_refused)
{
	struct sim *s = &self->s;
	uint8_t b[8];

	ASSERT_EQ(SIM_BAR0_SIZE, s->v.region[VFIO_PCI_BAR0_REGION_INDEX].size);
	ASSERT_GT(0, gvfio_region_rw(&s->v, 0, SIM_BAR0_SIZE, b, 4, false));
	ASSERT_GT(0, gvfio_region_rw(&s->v, 0, SIM_BAR0_SIZE - 2, b, 4, false));
	/* Registers are written as dwords (unaligned accesses are split). */
	ASSERT_GT(0, gvfio_region_rw(&s->v, 0, SIM_RCS_IMR, b, 2, true));
	ASSERT_GT(0, gvfio_region_rw(&s->v, 0, 0x2030, b, 3, true));
	ASSERT_GT(0, gvfio_region_rw(&s->v, VFIO_PCI_CONFIG_REGION_INDEX, 256, b, 4, false));
	ASSERT_GT(0, gvfio_region_rw(&s->v, VFIO_PCI_BAR1_REGION_INDEX, 0, b, 4, false));
	ASSERT_EQ(0u, s->v.region[VFIO_PCI_BAR1_REGION_INDEX].size);
	/* Still alive. */
	ASSERT_EQ(0x76544776u, sim_reg(s, SIM_PVINFO));
}

TEST_F(sim, dma_unmapped_under_the_gpu_faults)
{
	struct sim *s = &self->s;
	uint32_t cmd[] = { SDI_GGTT(sim_gaddr(s, SIM_PAGE_DATA), 5) };

	/* The ring is built in memory, then the memory goes away. */
	ASSERT_EQ(0, sim_submit(s, cmd, 4, 4));
	ASSERT_EQ(0, sim_wait(s));
	ASSERT_EQ(0, gvfio_unmap_mem(&s->v));
	ASSERT_EQ(0, gvfio_write32(&s->v, 0, SIM_ELSP, 0));
	ASSERT_EQ(0, gvfio_write32(&s->v, 0, SIM_ELSP, 0));
	ASSERT_EQ(0, gvfio_write32(&s->v, 0, SIM_ELSP, 4));
	ASSERT_EQ(0, gvfio_write32(&s->v, 0, SIM_ELSP, (uint32_t)sim_gaddr(s, SIM_PAGE_CTX)));
	ASSERT_EQ(0, sim_wait(s));
	ASSERT_EQ(SIM_FAULT_GUEST_MEMORY, sim_reg(s, SIM_FAULT_STATUS));
	/*
	 * The context's first read failed: tried once (no sleeping retry
	 * under the vGPU lock), counted, and the context faulted.
	 */
	ASSERT_EQ(1, sim_stat(UUID, "dma_errors"));
	ASSERT_EQ(1, sim_stat(UUID, "faults"));
}

/* Waits up to 10 s for a dword of guest memory to become val. */
static int wait_value(volatile uint32_t *p, uint32_t val)
{
	int i;

	for (i = 0; i < 5000; i++) {
		if (*p == val)
			return 0;
		usleep(2000);
	}
	return -ETIMEDOUT;
}

static void *remove_thread(void *arg)
{
	*(int *)arg = sim_remove_mdev(UUID);
	return NULL;
}

/*
 * Removing a vGPU that a VFIO user has open and keeps busy (synthetic
 * workload plus its own submissions): the kernel asks the user to release
 * it through the request eventfd, removal waits for the close, then the
 * mdev and its debugfs directory are gone, and a new vGPU with the same
 * UUID works.
 */
TEST_F(sim, remove_while_busy)
{
	struct sim *s = &self->s;
	uint32_t cmd[] = { SDI_GGTT(sim_gaddr(s, SIM_PAGE_DATA), 0x5eed) };
	char path[128];
	struct pollfd pfd;
	struct stat st;
	pthread_t t;
	int rc = -1;
	int req;

	req = eventfd(0, EFD_CLOEXEC);
	ASSERT_LE(0, req);
	ASSERT_EQ(0, gvfio_set_eventfd(&s->v, VFIO_PCI_REQ_IRQ_INDEX, req));

	snprintf(path, sizeof(path), "/sys/kernel/debug/gmig/%s/workload", UUID);
	ASSERT_EQ(0, sim_write_sysfs(path, "start game base=0x1400000 size=0x200000"));
	ASSERT_EQ(0, sim_submit(s, cmd, 4, 3));

	ASSERT_EQ(0, pthread_create(&t, NULL, remove_thread, &rc));
	pfd.fd = req;
	pfd.events = POLLIN;
	EXPECT_EQ(1, poll(&pfd, 1, 20000));	/* "please release the device" */
	/* Still usable until the user lets go (the workload runs too). */
	EXPECT_EQ(0, wait_value(sim_ptr(s, SIM_PAGE_DATA), 0x5eed));
	sim_close(s);
	ASSERT_EQ(0, pthread_join(t, NULL));
	close(req);
	ASSERT_EQ(0, rc);
	snprintf(path, sizeof(path), "/sys/bus/mdev/devices/%s", UUID);
	ASSERT_NE(0, stat(path, &st));
	snprintf(path, sizeof(path), "/sys/kernel/debug/gmig/%s", UUID);
	ASSERT_NE(0, stat(path, &st));

	/* The same UUID again: a fresh, working vGPU. */
	ASSERT_EQ(0, sim_create_mdev("gmig-small", UUID));
	ASSERT_EQ(0, sim_open(s, UUID, IOVA, MEM));
	cmd[3] = 0xface;
	ASSERT_EQ(0, sim_submit(s, cmd, 4, 4));
	ASSERT_EQ(0, sim_wait(s));
	ASSERT_EQ(0xfaceu, ((uint32_t *)sim_ptr(s, SIM_PAGE_DATA))[0]);
}

/*
 * A context whose ring is malformed (the guest's ring registers overflow
 * the ring, or describe an impossible ring) faults with "bad ring" and
 * executes nothing: the store queued in the ring never lands.
 */
TEST_F(sim, bad_rings_fault_without_writes)
{
	static const struct {
		const char *what;
		uint32_t size, head, tail;
	} bad[] = {
		{ "tail past the end", 8192, 0, 8192 },
		{ "tail far past the end", 8192, 0, 0x100000 },
		{ "head past the end", 8192, 8196, 16 },
		{ "unaligned tail", 8192, 0, 18 },
		{ "size not a page multiple", 6000, 0, 16 },
		{ "size zero", 0, 0, 16 },
		{ "size over 2 MiB", 4u << 20, 0, 16 },
	};
	struct sim *s = &self->s;
	uint32_t *ring = sim_ptr(s, SIM_PAGE_RING);
	uint32_t *ctx = sim_ptr(s, SIM_PAGE_CTX);
	uint32_t *data = sim_ptr(s, SIM_PAGE_DATA);
	uint32_t cmd[] = { SDI_GGTT(sim_gaddr(s, SIM_PAGE_DATA), 0xbad) };
	unsigned int i;

	memcpy(ring, cmd, sizeof(cmd));
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		TH_LOG("%s", bad[i].what);
		ctx[0] = SIM_LRC_MAGIC;
		ctx[1] = (uint32_t)sim_gaddr(s, SIM_PAGE_RING);
		ctx[2] = bad[i].size;
		ctx[3] = bad[i].head;
		ctx[4] = bad[i].tail;
		ctx[5] = 0;
		ctx[6] = 0;
		ASSERT_EQ(0, gvfio_write32(&s->v, 0, SIM_ELSP, 0));
		ASSERT_EQ(0, gvfio_write32(&s->v, 0, SIM_ELSP, 0));
		ASSERT_EQ(0, gvfio_write32(&s->v, 0, SIM_ELSP, 20 + i));
		ASSERT_EQ(0, gvfio_write32(&s->v, 0, SIM_ELSP,
					   (uint32_t)sim_gaddr(s, SIM_PAGE_CTX)));
		ASSERT_EQ(0, sim_wait(s));
		ASSERT_EQ(SIM_FAULT_BAD_RING, sim_reg(s, SIM_FAULT_STATUS));
		ASSERT_EQ(0u, data[0]);
	}
	/* The vGPU still runs a good context afterwards. */
	s->ring_tail = sizeof(cmd);
	ASSERT_EQ(0, sim_submit(s, cmd, 4, 99));
	ASSERT_EQ(0, sim_wait(s));
	ASSERT_EQ(0xbadu, data[0]);
}

static long read_long(const char *path)
{
	char buf[64] = "";
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? strtol(buf, NULL, 0) : -EIO;
}

/*
 * The vGPU types a cloud operator picks from: each says what it is, counts
 * its free instances, and every instance gets its own GGTT partition.
 */
TEST(types_instances_and_partitions)
{
	static const char *const types[] = { "gmig-small", "gmig-large", "gmig-xl" };
	static const char *const uuids[] = {
		"5a1d0000-0000-4000-8000-0000000000b1",
		"5a1d0000-0000-4000-8000-0000000000b2",
	};
	const char *dir = "/sys/class/mdev_bus/gmig/mdev_supported_types";
	uint64_t base[2];
	char path[256], buf[256];
	struct stat st;
	unsigned int t, i;

	if (stat("/sys/class/mdev_bus/gmig", &st))
		SKIP(return, "no gmig mdev parent (gmig.ko not loaded)");
	for (t = 0; t < ARRAY_SIZE(types); t++) {
		long avail, now;
		int fd;

		snprintf(path, sizeof(path), "%s/%s/description", dir, types[t]);
		fd = open(path, O_RDONLY);
		ASSERT_LE(0, fd);
		ASSERT_LT(0, read(fd, buf, sizeof(buf)));
		close(fd);
		snprintf(path, sizeof(path), "%s/%s/device_api", dir, types[t]);
		fd = open(path, O_RDONLY);
		ASSERT_LE(0, fd);
		memset(buf, 0, sizeof(buf));
		ASSERT_LT(0, read(fd, buf, sizeof(buf) - 1));
		close(fd);
		ASSERT_EQ(0, strncmp(buf, "vfio-pci", 8));
		snprintf(path, sizeof(path), "%s/%s/available_instances", dir, types[t]);
		avail = read_long(path);
		ASSERT_LE(2, avail);
		for (i = 0; i < 2; i++) {
			struct sim s;

			sim_remove_mdev(uuids[i]);
			ASSERT_EQ(0, sim_create_mdev(types[t], uuids[i]));
			ASSERT_EQ(0, sim_open(&s, uuids[i], IOVA, MEM));
			base[i] = s.gbase;
			TH_LOG("%s #%u: partition %#llx + %#llx", types[t], i,
			       (unsigned long long)s.gbase,
			       (unsigned long long)s.gsize);
			sim_close(&s);
		}
		now = read_long(path);
		ASSERT_EQ(avail - 2, now);
		ASSERT_NE(base[0], base[1]);
		for (i = 0; i < 2; i++)
			ASSERT_EQ(0, sim_remove_mdev(uuids[i]));
		ASSERT_EQ(avail, read_long(path));
	}
}

TEST_HARNESS_MAIN

// SPDX-License-Identifier: GPL-2.0
/*
 * What a VMM makes gmig do on its behalf, on two gmig-xl sim vGPUs (2 MiB
 * state images):
 *
 * - vmm_accounting: the memory a VMM makes the kernel allocate (the dirty
 *   tracker of DMA_LOGGING_START, the state images of the saving side, the
 *   resuming side's incoming stream) is charged to the VMM's memory cgroup,
 *   a second DMA_LOGGING_START never holds two trackers at once, and the
 *   memory is given back when logging stops, the migration ends, the
 *   device is reset or closed.
 * - read_fault: a read() of the data fd into a buffer that faults part way
 *   gets a short read (or -EFAULT if nothing was copied), and no byte of
 *   the stream is lost: the image read around the faults resumes on the
 *   other vGPU.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "gmig_sim.h"

#define UA "5a1d0000-0000-4000-8000-0000000000e1"
#define UB "5a1d0000-0000-4000-8000-0000000000e2"
#define IOVA (16ull << 20)
#define MEM (8ull << 20)
#define MIB (1024ll * 1024)
/* The shim's bounce buffer: a read crosses it in chunks of this size. */
#define XFER_CHUNK (64 * 1024)
/* DMA logging over 16 GiB: the tracker's whole window. */
#define LOG_LEN (16ull << 30)
/*
 * The tracker of LOG_LEN: 8 bytes a page (32 MiB), two write-set bitmaps
 * (512 KiB each), the frames outside the window (512 KiB), a scratch page.
 */
#define TRACKER_BYTES (32 * MIB + 3 * MIB / 2)
/*
 * memory.current is charged in per-CPU batches (64 pages per CPU): what
 * the test itself touches and those batches stay below this.
 */
#define SLACK MIB

FIXTURE(vmm) {
	struct sim a, b;
	char cg[160];
	char root[96];
};

FIXTURE_SETUP(vmm)
{
	struct stat st;

	self->cg[0] = 0;
	if (stat("/sys/class/mdev_bus/gmig", &st))
		SKIP(return, "no gmig mdev parent (gmig.ko not loaded)");
	sim_remove_mdev(UA);
	sim_remove_mdev(UB);
	ASSERT_EQ(0, sim_create_mdev("gmig-xl", UA));
	ASSERT_EQ(0, sim_create_mdev("gmig-xl", UB));
	ASSERT_EQ(0, sim_open(&self->a, UA, IOVA, MEM));
	ASSERT_EQ(0, sim_open(&self->b, UB, IOVA, MEM));
}

FIXTURE_TEARDOWN(vmm)
{
	char path[192];

	if (self->cg[0]) {
		snprintf(path, sizeof(path), "%s/cgroup.procs", self->root);
		sim_write_sysfs(path, "0");
		rmdir(self->cg);
	}
	sim_close(&self->a);
	sim_close(&self->b);
	sim_remove_mdev(UA);
	sim_remove_mdev(UB);
}

/* The cgroup v2 hierarchy's root: where it is mounted, else mounted here. */
static int cg2_root(char *root, size_t len)
{
	static const char fallback[] = "/tmp/gmig-cgroup2";
	char mnt[96], type[32];
	int found = 0;
	FILE *f;

	f = fopen("/proc/self/mounts", "r");
	if (!f)
		return -errno;
	while (!found && fscanf(f, "%*s %95s %31s %*[^\n]\n", mnt, type) == 2)
		found = !strcmp(type, "cgroup2");
	fclose(f);
	if (found) {
		snprintf(root, len, "%s", mnt);
		return 0;
	}
	mkdir(fallback, 0755);
	if (mount("none", fallback, "cgroup2", 0, NULL) && errno != EBUSY)
		return -errno;
	snprintf(root, len, "%s", fallback);
	return 0;
}

/*
 * Moves this process into a new cgroup with the memory controller: what
 * it makes the kernel charge from here on is counted there, from zero.
 */
static int cg_enter(char *cg, size_t len, char *root, size_t rlen)
{
	char path[192];
	int ret;

	ret = cg2_root(root, rlen);
	if (ret)
		return ret;
	snprintf(path, sizeof(path), "%s/cgroup.subtree_control", root);
	ret = sim_write_sysfs(path, "+memory");
	if (ret)
		return ret;
	snprintf(cg, len, "%s/gmig-vmm-%d", root, getpid());
	if (mkdir(cg, 0755))
		return -errno;
	snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
	return sim_write_sysfs(path, "0");
}

/* A number in the cgroup's file (key NULL) or its "key value" line. */
static long long cg_read(const char *cg, const char *file, const char *key)
{
	char path[192], line[256];
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", cg, file);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		size_t klen = key ? strlen(key) : 0;

		if (!key || (!strncmp(line, key, klen) && line[klen] == ' ')) {
			v = atoll(line + klen);
			break;
		}
	}
	fclose(f);
	return v;
}

static long long charged(const char *cg)
{
	return cg_read(cg, "memory.current", NULL);
}

TEST_F(vmm, vmm_accounting)
{
	struct sim *a = &self->a, *b = &self->b;
	long long base, vm0, grown, peak;
	uint32_t state = 0xff;
	size_t img_cap = 8 * MIB;
	char *img = malloc(img_cap);
	int fd;

	ASSERT_NE(NULL, img);
	/* Touched before the baseline: the test's own pages are not counted. */
	memset(img, 0x5a, img_cap);
	ASSERT_EQ(0, cg_enter(self->cg, sizeof(self->cg), self->root,
			      sizeof(self->root))) {
		TH_LOG("no cgroup v2 memory controller (CONFIG_MEMCG)");
	}
	base = charged(self->cg);
	vm0 = cg_read(self->cg, "memory.stat", "vmalloc");
	ASSERT_LE(0, base);

	/* The tracker of DMA_LOGGING_START is the VMM's. */
	ASSERT_EQ(0, gvfio_log_start(&a->v, 0, LOG_LEN));
	grown = charged(self->cg) - base;
	TH_LOG("DMA_LOGGING_START over 16 GiB: %lld KiB charged, vmalloc +%lld KiB",
	       grown >> 10, (cg_read(self->cg, "memory.stat", "vmalloc") - vm0) >> 10);
	ASSERT_LE(TRACKER_BYTES - SLACK, grown);
	ASSERT_GE(TRACKER_BYTES + 4 * SLACK, grown);

	/* A second start replaces it: never two trackers at once. */
	ASSERT_EQ(0, gvfio_log_start(&a->v, 0, LOG_LEN));
	grown = charged(self->cg) - base;
	peak = cg_read(self->cg, "memory.peak", NULL) - base;
	TH_LOG("second DMA_LOGGING_START: %lld KiB charged, peak %lld KiB",
	       grown >> 10, peak >> 10);
	ASSERT_GE(TRACKER_BYTES + 4 * SLACK, grown);
	ASSERT_GT(TRACKER_BYTES + TRACKER_BYTES / 2, peak);

	/* DMA_LOGGING_STOP gives it back. */
	ASSERT_EQ(0, gvfio_log_stop(&a->v));
	ASSERT_GT(SLACK, charged(self->cg) - base);

	/* The pre-copy image and its delta's room, until the client runs again. */
	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_PRE_COPY, &fd));
	grown = charged(self->cg) - base;
	TH_LOG("PRE_COPY: %lld KiB charged", grown >> 10);
	ASSERT_LE(2 * MIB, grown);
	ASSERT_LT(0, read(fd, img, img_cap));
	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_RUNNING, NULL));
	close(fd);
	grown = charged(self->cg) - base;
	TH_LOG("PRE_COPY -> RUNNING: %lld KiB left charged", grown >> 10);
	ASSERT_GT(SLACK, grown);

	/* The stop-copy image, until the source leaves STOP_COPY. */
	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_STOP_COPY, &fd));
	ASSERT_LE(2 * MIB, charged(self->cg) - base);
	ASSERT_LT(0, read(fd, img, img_cap));
	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_STOP, NULL));
	close(fd);
	ASSERT_GT(SLACK, charged(self->cg) - base);
	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_RUNNING, NULL));

	/* The resuming side's stream: a bad one is kept until the reset. */
	ASSERT_EQ(0, gvfio_mig_set_state(&b->v, VFIO_DEVICE_STATE_RESUMING, &fd));
	ASSERT_EQ(3 * MIB, write(fd, img, 3 * MIB));
	grown = charged(self->cg) - base;
	TH_LOG("3 MiB written to RESUMING: %lld KiB charged", grown >> 10);
	ASSERT_LE(3 * MIB, grown);
	ASSERT_EQ(-EINVAL, gvfio_mig_set_state(&b->v, VFIO_DEVICE_STATE_STOP, NULL));
	close(fd);
	ASSERT_EQ(0, gvfio_reset(&b->v));
	ASSERT_EQ(0, gvfio_mig_get_state(&b->v, &state));
	ASSERT_EQ(VFIO_DEVICE_STATE_RUNNING, state);
	ASSERT_GT(SLACK, charged(self->cg) - base);

	/* A VMM that closes the device mid-migration leaves nothing behind. */
	ASSERT_EQ(0, gvfio_log_start(&a->v, 0, LOG_LEN));
	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_PRE_COPY, &fd));
	ASSERT_LE(TRACKER_BYTES + 2 * MIB, charged(self->cg) - base);
	sim_close(a);
	close(fd);
	grown = charged(self->cg) - base;
	TH_LOG("closed mid-migration: %lld KiB left charged", grown >> 10);
	ASSERT_GT(SLACK, grown);
	free(img);
}

/* Reads up to len bytes, stopping at the end of the data there is now. */
static ssize_t read_upto(int fd, char *buf, size_t len)
{
	size_t got = 0;
	ssize_t n = 1;

	while (got < len && n > 0) {
		n = read(fd, buf + got, len - got);
		if (n > 0)
			got += n;
	}
	if (n < 0 && errno != ENOMSG)
		return -errno;
	return got;
}

TEST_F(vmm, read_fault)
{
	struct sim *a = &self->a, *b = &self->b;
	size_t span = XFER_CHUNK + 2 * 4096;
	uint64_t initial = 0, dirty = 0, left = 0;
	char *pre, *fin, *map, *hole;
	ssize_t nfin, got;
	int fd, rfd;

	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_PRE_COPY, &fd));
	ASSERT_EQ(0, gvfio_precopy_info(fd, &initial, &dirty));
	ASSERT_LT(2 * XFER_CHUNK, initial);
	pre = malloc(initial);
	fin = malloc(initial);
	ASSERT_NE(NULL, pre);
	ASSERT_NE(NULL, fin);
	/* A buffer whose last page faults. */
	map = mmap(NULL, span, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	ASSERT_NE(MAP_FAILED, map);
	hole = map + span - 4096;
	ASSERT_EQ(0, mprotect(hole, 4096, PROT_NONE));

	/* Nothing copied: -EFAULT, and nothing consumed. */
	ASSERT_EQ(-1, read(fd, hole, 512));
	ASSERT_EQ(EFAULT, errno);
	ASSERT_EQ(0, gvfio_precopy_info(fd, &left, &dirty));
	ASSERT_EQ(initial, left);
	ASSERT_EQ(0, sim_stat(UA, "precopy_bytes"));

	/* 100 bytes fit: a short read of 100, the rest stays in the stream. */
	ASSERT_EQ(100, read(fd, hole - 100, 4000));
	memcpy(pre, hole - 100, 100);
	ASSERT_EQ(0, gvfio_precopy_info(fd, &left, &dirty));
	ASSERT_EQ(initial - 100, left);
	ASSERT_EQ(100, sim_stat(UA, "precopy_bytes"));

	/* A whole chunk, then a fault in the next one. */
	got = read(fd, hole - XFER_CHUNK - 300, XFER_CHUNK + 1000);
	ASSERT_EQ(XFER_CHUNK + 300, got);
	memcpy(pre + 100, hole - XFER_CHUNK - 300, got);
	ASSERT_EQ(0, gvfio_precopy_info(fd, &left, &dirty));
	ASSERT_EQ(initial - 100 - got, left);

	/* The rest reads cleanly: the whole image, as it was built. */
	ASSERT_EQ((ssize_t)left, read_upto(fd, pre + 100 + got, initial));
	ASSERT_EQ(initial, sim_stat(UA, "precopy_bytes"));
	ASSERT_EQ(1, sim_stat(UA, "precopy_rounds"));

	/* Stop-copy: the final data, with a fault on its way too. */
	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_PRE_COPY_P2P, NULL));
	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_STOP_COPY, NULL));
	ASSERT_EQ(-1, read(fd, hole, 64));
	ASSERT_EQ(EFAULT, errno);
	nfin = read_upto(fd, fin, initial);
	ASSERT_LT(0, nfin);
	close(fd);
	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_STOP, NULL));

	/* Both images, read around the faults, resume on B. */
	memcpy(b->v.mem, a->v.mem, MEM);
	ASSERT_EQ(0, gvfio_mig_set_state(&b->v, VFIO_DEVICE_STATE_RESUMING, &rfd));
	ASSERT_EQ((ssize_t)initial, write(rfd, pre, initial));
	ASSERT_EQ(nfin, write(rfd, fin, nfin));
	ASSERT_EQ(0, gvfio_mig_set_state(&b->v, VFIO_DEVICE_STATE_RUNNING, NULL));
	close(rfd);
	ASSERT_EQ(1, sim_stat(UB, "images_applied"));
	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_RUNNING, NULL));
	munmap(map, span);
	free(pre);
	free(fin);
}

TEST_HARNESS_MAIN

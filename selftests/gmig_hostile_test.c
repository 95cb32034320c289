// SPDX-License-Identifier: GPL-2.0
/*
 * A randomized hostile VFIO client of a gmig sim vGPU. Seeded and bounded
 * in time, it takes random steps out of everything a VMM (or a VMM gone
 * wrong) can do through the VFIO uAPI:
 *
 *  - open and close the device in any migration state, with data fds still
 *    open (they outlive the device's use), and remove and create the mdev
 *    again;
 *  - set any device state, valid arc or not, and values that are no state;
 *  - read saving fds with any length, close them mid-stream, write garbage
 *    or a mutated real stream into resuming fds, query PRECOPY_INFO with
 *    bad arguments, opt in to PRECOPY_INFOv2 and remap thousands of GGTT
 *    entries, so that pre-copy bases go stale (REINIT);
 *  - start, stop and report DMA logging with hostile ranges (none, too
 *    many, unaligned, overlapping, wrapping, huge) and bitmaps the kernel
 *    cannot write;
 *  - keep the vGPU busy (contexts of valid and garbage commands, the
 *    synthetic workload) and unmap its DMA memory under it; reset it.
 *
 * After each step the device answers GET_STATE with a state; after each
 * episode (a few hundred steps) the vGPU must reopen, reach RUNNING, run a
 * context that writes guest memory, and migrate into itself (RUNNING ->
 * STOP_COPY -> STOP -> RESUMING -> STOP -> RUNNING) with its memory intact.
 * Kernel reports (KASAN, lockdep, WARN, leaks) are caught by the dmesg and
 * kmemleak checks of tests/vm-tests.sh after the run.
 *
 * GMIG_HOSTILE_SECS (default 20) bounds the run, GMIG_HOSTILE_SEED (default
 * from the clock) seeds it; the seed is printed so a failure replays.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "gmig_sim.h"

#define UUID "5a1d0000-0000-4000-8000-0000000000b1"
#define IOVA (16ull << 20)
#define MEM (16ull << 20)
#define WORKLOAD_BASE (IOVA + (4ull << 20))
#define WORKLOAD_SIZE (12ull << 20)
#define STEPS_PER_EPISODE 300
#define MAX_FDS 4
#define CAPTURE_MAX (16u << 20)
#define BITMAP_BYTES (1u << 16)	/* 2 GiB of 4 KiB pages */
#define WORKLOAD_FILE "/sys/kernel/debug/gmig/" UUID "/workload"

#define SDI_GGTT(a, v)	((0x20u << 23) | (1u << 22) | 2), (uint32_t)(a), 0, (v)

struct hostile {
	uint64_t rng;
	struct sim s;
	bool open;		/* s.v is open (memory mapped or not) */
	bool mapped;		/* its DMA memory is mapped */
	int fds[MAX_FDS];	/* data fds, possibly stale */
	uint8_t *capture;	/* bytes read from saving fds */
	size_t capture_len;
	uint64_t *bitmap;	/* writable report bitmap */
	void *noaccess;		/* a page the kernel cannot write */
	unsigned long ops[16], errors[16];
	unsigned long episodes, roundtrips;
};

static uint64_t rnd(struct hostile *h)
{
	/* xorshift64* */
	h->rng ^= h->rng >> 12;
	h->rng ^= h->rng << 25;
	h->rng ^= h->rng >> 27;
	return h->rng * 2685821657736338717ull;
}

static uint64_t below(struct hostile *h, uint64_t n)
{
	return n ? rnd(h) % n : 0;
}

/* A length: mostly small, sometimes odd, huge or zero. */
static uint64_t any_len(struct hostile *h)
{
	switch (below(h, 6)) {
	case 0:
		return 0;
	case 1:
		return 1 + below(h, 64);
	case 2:
		return 4096 * (1 + below(h, 64));
	case 3:
		return below(h, 1 << 20);
	case 4:
		return 1ull << below(h, 64);
	default:
		return rnd(h);
	}
}

/* An IOVA: inside the guest memory, near it, unaligned, or anywhere. */
static uint64_t any_iova(struct hostile *h)
{
	switch (below(h, 5)) {
	case 0:
		return IOVA + 4096 * below(h, MEM / 4096);
	case 1:
		return IOVA + below(h, MEM);
	case 2:
		return 0;
	case 3:
		return ~0ull - below(h, 1 << 16);
	default:
		return rnd(h);
	}
}

static void drop_fd(struct hostile *h, int i)
{
	if (h->fds[i] >= 0)
		close(h->fds[i]);
	h->fds[i] = -1;
}

static void keep_fd(struct hostile *h, int fd)
{
	int i = below(h, MAX_FDS);

	drop_fd(h, i);
	h->fds[i] = fd;
}

static int any_fd(struct hostile *h)
{
	return h->fds[below(h, MAX_FDS)];
}

static void close_dev(struct hostile *h)
{
	if (h->open)
		sim_close(&h->s);
	h->open = h->mapped = false;
}

static int open_dev(struct hostile *h)
{
	int ret = sim_open(&h->s, UUID, IOVA, MEM);

	h->open = h->mapped = !ret;
	return ret;
}

/*
 * Once the device is closed, the data fds it gave are stale: no byte
 * moves through them (-ENODEV from gmig, -EBADF from the VFS for the
 * direction an fd was not opened for).
 */
static int stale_fds_dead(struct hostile *h, uint8_t *buf)
{
	int i;

	for (i = 0; i < MAX_FDS; i++) {
		if (h->fds[i] < 0)
			continue;
		if (read(h->fds[i], buf, 4096) > 0 ||
		    write(h->fds[i], buf, 4096) > 0)
			return -EEXIST;
	}
	return 0;
}

enum op {
	OP_OPEN_CLOSE, OP_STATE, OP_READ, OP_WRITE, OP_IOCTL, OP_LOG_START,
	OP_LOG_STOP, OP_LOG_REPORT, OP_SUBMIT, OP_WORKLOAD, OP_UNMAP, OP_RESET,
	OP_REGION, OP_DROP_FD, OP_REMOVE, OP_NR
};

static const char *const op_names[OP_NR] = {
	"open/close", "set-state", "read", "write", "precopy-info",
	"log-start", "log-stop", "log-report", "submit", "workload", "unmap",
	"reset", "region", "close-fd", "remove",
};

/* Weights of the steps, out of their sum. */
static const unsigned int op_weight[OP_NR] = {
	4, 24, 14, 10, 4, 6, 3, 6, 8, 2, 3, 3, 4, 4, 1,
};

static enum op pick(struct hostile *h)
{
	unsigned int sum = 0, i, r;

	for (i = 0; i < OP_NR; i++)
		sum += op_weight[i];
	r = below(h, sum);
	for (i = 0; r >= op_weight[i]; i++)
		r -= op_weight[i];
	return i;
}

static uint32_t any_state(struct hostile *h)
{
	static const uint32_t bogus[] = { 8, 9, 99, 0x7fffffff, 0xffffffff };

	if (below(h, 8))
		return below(h, VFIO_DEVICE_STATE_PRE_COPY_P2P + 1);
	return bogus[below(h, sizeof(bogus) / sizeof(bogus[0]))];
}

/* Garbage for a resuming fd: random bytes or a mutated real stream. */
static size_t garbage(struct hostile *h, uint8_t *buf, size_t room)
{
	size_t len, i, flips;

	if (h->capture_len && below(h, 3)) {
		len = below(h, 4) ? h->capture_len : below(h, h->capture_len);
		len = len < room ? len : room;
		memcpy(buf, h->capture, len);
		flips = below(h, 4);
		for (i = 0; i < flips && len; i++)
			buf[below(h, len)] ^= 1u << below(h, 8);
		return len;
	}
	len = below(h, 3) ? below(h, 4096) : below(h, room);
	for (i = 0; i < len; i++)
		buf[i] = rnd(h);
	return len;
}

static int step(struct hostile *h, enum op op, uint8_t *buf, size_t room)
{
	struct vfio_device_feature_dma_logging_range r[300];
	uint64_t a, b;
	uint32_t st;
	int fd, ret = 0;
	unsigned int n, i;
	ssize_t got;

	if (op != OP_OPEN_CLOSE && op != OP_REMOVE && op != OP_DROP_FD &&
	    op != OP_READ && op != OP_WRITE && op != OP_IOCTL && !h->open)
		op = OP_OPEN_CLOSE;
	h->ops[op]++;
	switch (op) {
	case OP_OPEN_CLOSE:
		if (h->open) {
			close_dev(h);
			return stale_fds_dead(h, buf);
		}
		return open_dev(h);
	case OP_STATE:
		st = any_state(h);
		ret = gvfio_mig_set_state(&h->s.v, st, &fd);
		if (!ret && fd >= 0)
			keep_fd(h, fd);
		break;
	case OP_READ:
		fd = any_fd(h);
		if (fd < 0)
			return 0;
		got = read(fd, buf, below(h, 2) ? below(h, room) : 65536);
		if (got > 0 && h->capture_len + got <= CAPTURE_MAX) {
			memcpy(h->capture + h->capture_len, buf, got);
			h->capture_len += got;
		}
		ret = got < 0 ? -errno : 0;
		break;
	case OP_WRITE:
		fd = any_fd(h);
		if (fd < 0)
			return 0;
		got = write(fd, buf, garbage(h, buf, room));
		ret = got < 0 ? -errno : 0;
		break;
	case OP_IOCTL:
		fd = any_fd(h);
		if (fd < 0)
			return 0;
		if (below(h, 2)) {
			ret = gvfio_precopy_info(fd, &a, &b);
		} else {
			/* argsz too small, or an argument it cannot write */
			struct vfio_precopy_info info = {
				.argsz = below(h, sizeof(info)),
			};

			ret = ioctl(fd, VFIO_MIG_GET_PRECOPY_INFO,
				    below(h, 2) ? (void *)&info : h->noaccess);
			ret = ret ? -errno : 0;
		}
		if (!ret && below(h, 2))
			ret = gvfio_mig_data_size(&h->s.v, &a);
		/*
		 * New initial data: the PRECOPY_INFOv2 opt-in, and a guest
		 * remapping thousands of GGTT entries (above the test's own
		 * pages) so that a pre-copy base goes stale.
		 */
		if (!below(h, 8))
			gvfio_precopy_info_v2(&h->s.v);
		if (!below(h, 8))
			sim_rewrite_ggtt(&h->s, SIM_PAGES + below(h, 4096),
					 2048 + below(h, 2048), below(h, 4096));
		break;
	case OP_LOG_START:
		n = below(h, 4) ? 1 + below(h, 4) : below(h, 300);
		for (i = 0; i < n; i++) {
			r[i].iova = below(h, 2) ? IOVA : any_iova(h);
			r[i].length = below(h, 2) ? MEM : any_len(h);
		}
		ret = gvfio_log_start_ranges(&h->s.v, r, n);
		break;
	case OP_LOG_STOP:
		ret = gvfio_log_stop(&h->s.v);
		break;
	case OP_LOG_REPORT:
		a = below(h, 2) ? IOVA : any_iova(h);
		b = below(h, 2) ? MEM : any_len(h);
		/* A writable bitmap only where it is big enough. */
		ret = gvfio_log_report(&h->s.v, a, b,
				       b / 4096 / 8 < BITMAP_BYTES ?
				       h->bitmap : h->noaccess);
		break;
	case OP_SUBMIT:
		if (!h->mapped)
			return 0;
		if (below(h, 3)) {
			uint32_t cmd[] = {
				SDI_GGTT(sim_gaddr(&h->s, SIM_PAGE_DATA +
						   below(h, 64)), rnd(h)),
			};

			ret = sim_submit(&h->s, cmd, 4, 1 + below(h, 8));
		} else {
			uint32_t cmd[16];

			for (i = 0; i < 16; i++)
				cmd[i] = rnd(h);
			ret = sim_submit(&h->s, cmd, 1 + below(h, 16), 9);
		}
		break;
	case OP_WORKLOAD:
		if (below(h, 2)) {
			char cmd[96];

			snprintf(cmd, sizeof(cmd),
				 "start %s base=%llu size=%llu",
				 below(h, 2) ? "desktop" : "game",
				 WORKLOAD_BASE, WORKLOAD_SIZE);
			ret = sim_write_sysfs(WORKLOAD_FILE, cmd);
		} else {
			ret = sim_write_sysfs(WORKLOAD_FILE, "stop");
		}
		break;
	case OP_UNMAP:
		if (h->mapped) {
			ret = gvfio_unmap_mem(&h->s.v);
			h->mapped = false;
		} else {
			ret = gvfio_map_mem(&h->s.v, IOVA, MEM);
			h->mapped = !ret;
			if (!ret)
				ret = sim_map_ggtt(&h->s);
		}
		break;
	case OP_RESET:
		ret = gvfio_reset(&h->s.v);
		if (!ret && stale_fds_dead(h, buf))
			return -EEXIST;
		break;
	case OP_REGION:
		i = below(h, VFIO_PCI_NUM_REGIONS);
		a = below(h, 2) ? below(h, SIM_BAR0_SIZE) : rnd(h);
		n = 1u << below(h, 4);
		ret = gvfio_region_rw(&h->s.v, i, a, buf, n, below(h, 2));
		break;
	case OP_DROP_FD:
		drop_fd(h, below(h, MAX_FDS));
		return 0;
	case OP_REMOVE:
		/* Removal with the device (and fds) open waits for the close. */
		close_dev(h);
		ret = sim_remove_mdev(UUID);
		if (!ret)
			ret = sim_create_mdev("gmig-small", UUID);
		if (ret)
			return ret;	/* the vGPU must come back */
		break;
	default:
		break;
	}
	if (ret)
		h->errors[op]++;
	return 0;
}

/* After any step: the device still answers with a state. */
static int state_sane(struct hostile *h)
{
	uint32_t st = ~0u;

	if (!h->open)
		return 0;
	if (gvfio_mig_get_state(&h->s.v, &st))
		return -1;
	return st <= VFIO_DEVICE_STATE_PRE_COPY_P2P ? 0 : -1;
}

static int read_to_end(int fd, uint8_t *buf, size_t room, size_t *len)
{
	ssize_t n;

	*len = 0;
	for (;;) {
		n = read(fd, buf + *len, room - *len);
		if (n == 0)
			return 0;
		if (n < 0)
			return -errno;
		*len += n;
		if (*len == room)
			return -E2BIG;
	}
}

/*
 * The end of an episode: whatever came before, the vGPU reopens, reaches
 * RUNNING, runs a context, and migrates into itself keeping its memory.
 */
static int recover(struct __test_metadata *_metadata, struct hostile *h,
		   uint8_t *buf, size_t room)
{
	uint32_t st = ~0u, val = (uint32_t)rnd(h) | 1, *data, cmd[4];
	size_t len, done;
	ssize_t n;
	int fd, rfd, i;

	sim_write_sysfs(WORKLOAD_FILE, "stop");
	close_dev(h);
	for (i = 0; i < MAX_FDS; i++)
		drop_fd(h, i);
	EXPECT_EQ(0, open_dev(h)) return -1;
	EXPECT_EQ(0, gvfio_mig_get_state(&h->s.v, &st)) return -1;
	/* A new user: QEMU resets the device first, and it runs. */
	EXPECT_EQ(0, gvfio_reset(&h->s.v)) return -1;
	EXPECT_EQ(0, gvfio_mig_get_state(&h->s.v, &st)) return -1;
	EXPECT_EQ(VFIO_DEVICE_STATE_RUNNING, st) return -1;
	/* sim_open's GGTT mapping came before the reset: again. */
	EXPECT_EQ(0, sim_map_ggtt(&h->s)) return -1;
	h->s.completed = sim_reg(&h->s, SIM_STATUS_LO) >> 16;
	h->s.ring_tail = 0;
	{
		uint32_t sdi[] = { SDI_GGTT(sim_gaddr(&h->s, SIM_PAGE_DATA),
					    val) };

		memcpy(cmd, sdi, sizeof(cmd));
	}
	EXPECT_EQ(0, sim_submit(&h->s, cmd, 4, 1)) return -1;
	EXPECT_EQ(0, sim_wait(&h->s)) return -1;
	data = sim_ptr(&h->s, SIM_PAGE_DATA);
	EXPECT_EQ(val, *data) return -1;

	/* Into itself: save to the end, restore, run. */
	EXPECT_EQ(0, gvfio_mig_set_state(&h->s.v, VFIO_DEVICE_STATE_STOP_COPY,
					 &fd)) return -1;
	EXPECT_LE(0, fd) return -1;
	EXPECT_EQ(0, read_to_end(fd, buf, room, &len)) { close(fd); return -1; }
	close(fd);
	EXPECT_LT(0, len) return -1;
	*data = 0;	/* guest memory is not device state */
	EXPECT_EQ(0, gvfio_mig_set_state(&h->s.v, VFIO_DEVICE_STATE_STOP,
					 NULL)) return -1;
	EXPECT_EQ(0, gvfio_mig_set_state(&h->s.v, VFIO_DEVICE_STATE_RESUMING,
					 &rfd)) return -1;
	EXPECT_LE(0, rfd) return -1;
	for (done = 0; done < len; done += n) {
		n = write(rfd, buf + done, len - done);
		if (n <= 0)
			break;
	}
	close(rfd);
	EXPECT_EQ(len, done) return -1;
	EXPECT_EQ(0, gvfio_mig_set_state(&h->s.v, VFIO_DEVICE_STATE_STOP,
					 NULL)) return -1;
	EXPECT_EQ(0, gvfio_mig_set_state(&h->s.v, VFIO_DEVICE_STATE_RUNNING,
					 NULL)) return -1;
	cmd[3] = val ^ 0xffff;
	EXPECT_EQ(0, sim_submit(&h->s, cmd, 4, 2)) return -1;
	EXPECT_EQ(0, sim_wait(&h->s)) return -1;
	EXPECT_EQ(val ^ 0xffff, *data) return -1;
	h->roundtrips++;
	/* The capture now starts with a valid stream to mutate. */
	if (len <= CAPTURE_MAX) {
		memcpy(h->capture, buf, len);
		h->capture_len = len;
	}
	return 0;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

FIXTURE(hostile) {
	struct hostile h;
	uint8_t *buf;
};

FIXTURE_SETUP(hostile)
{
	struct stat st;
	int i;

	memset(&self->h, 0, sizeof(self->h));
	for (i = 0; i < MAX_FDS; i++)
		self->h.fds[i] = -1;
	if (stat("/sys/class/mdev_bus/gmig", &st))
		SKIP(return, "no gmig mdev parent (gmig.ko not loaded)");
	sim_remove_mdev(UUID);	/* left over by a killed test */
	ASSERT_EQ(0, sim_create_mdev("gmig-small", UUID));
	self->buf = malloc(CAPTURE_MAX);
	self->h.capture = malloc(CAPTURE_MAX);
	self->h.bitmap = malloc(BITMAP_BYTES);
	self->h.noaccess = mmap(NULL, 4096, PROT_NONE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(NULL, self->buf);
	ASSERT_NE(NULL, self->h.capture);
	ASSERT_NE(NULL, self->h.bitmap);
	ASSERT_NE(MAP_FAILED, self->h.noaccess);
}

FIXTURE_TEARDOWN(hostile)
{
	int i;

	for (i = 0; i < MAX_FDS; i++)
		drop_fd(&self->h, i);
	close_dev(&self->h);
	sim_remove_mdev(UUID);
	free(self->buf);
	free(self->h.capture);
	free(self->h.bitmap);
}

/* The harness's limit is the upper bound; GMIG_HOSTILE_SECS the run. */
TEST_F_TIMEOUT(hostile, random_client_leaves_a_usable_vgpu, 4 * 3600)
{
	const char *e = getenv("GMIG_HOSTILE_SECS");
	double secs = e && *e ? atof(e) : 20, end;
	struct hostile *h = &self->h;
	uint64_t seed;
	unsigned long steps = 0;
	int i;

	e = getenv("GMIG_HOSTILE_SEED");
	seed = e && *e ? strtoull(e, NULL, 0) : (uint64_t)time(NULL);
	h->rng = seed | 1;
	TH_LOG("seed %llu (GMIG_HOSTILE_SEED replays it), %.0f s",
	       (unsigned long long)seed, secs);
	end = now() + secs;
	ASSERT_EQ(0, recover(_metadata, h, self->buf, CAPTURE_MAX));
	while (now() < end) {
		for (i = 0; i < STEPS_PER_EPISODE; i++) {
			enum op op = pick(h);

			ASSERT_EQ(0, step(h, op, self->buf, CAPTURE_MAX))
				TH_LOG("step %lu (%s): the vGPU did not come back or a stale fd moved data",
				       steps, op_names[op]);
			ASSERT_EQ(0, state_sane(h))
				TH_LOG("step %lu (%s): no valid state",
				       steps, op_names[op]);
			steps++;
		}
		h->episodes++;
		ASSERT_EQ(0, recover(_metadata, h, self->buf, CAPTURE_MAX))
			TH_LOG("episode %lu (seed %llu): not usable after it",
			       h->episodes, (unsigned long long)seed);
	}
	for (i = 0; i < OP_NR; i++)
		TH_LOG("%-12s %8lu steps, %8lu refused", op_names[i],
		       h->ops[i], h->errors[i]);
	TH_LOG("%lu steps in %lu episodes, %lu self-migrations", steps,
	       h->episodes, h->roundtrips);
}

TEST_HARNESS_MAIN

// SPDX-License-Identifier: GPL-2.0
/*
 * VFIO v2 migration of a gmig sim vGPU, driven like QEMU drives it:
 * vGPU A (with a pending workload) migrates to vGPU B at another GGTT
 * partition, the test copying guest memory as a VMM would; the pending
 * workload completes on B with remapped graphics addresses. Plus invalid
 * arcs, corrupt/truncated/foreign streams, data fd misuse, a client that
 * closes the device mid-migration, and DMA dirty logging.
 */
#include <errno.h>
#include <pthread.h>
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

#define UA "5a1d0000-0000-4000-8000-0000000000b1"
#define UB "5a1d0000-0000-4000-8000-0000000000b2"
#define IOVA (16ull << 20)
#define MEM (8ull << 20)

static ssize_t read_all(int fd, char **out)
{
	size_t cap = 1 << 20, len = 0;
	char *buf = malloc(cap);
	ssize_t n;

	while (buf) {
		if (len == cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			if (!buf)
				break;
		}
		n = read(fd, buf + len, cap - len);
		/* PRE_COPY: the end of the data there is now. */
		if (n < 0 && errno == ENOMSG)
			break;
		if (n < 0) {
			free(buf);
			return -errno;
		}
		if (n == 0)
			break;
		len += n;
	}
	*out = buf;
	return buf ? (ssize_t)len : -ENOMEM;
}

FIXTURE(mig) {
	struct sim a, b;
};

FIXTURE_SETUP(mig)
{
	struct stat st;

	if (stat("/sys/class/mdev_bus/gmig", &st))
		SKIP(return, "no gmig mdev parent (gmig.ko not loaded)");
	/* Left over by a test that was killed (timeout) before its teardown. */
	sim_remove_mdev(UA);
	sim_remove_mdev(UB);
	ASSERT_EQ(0, sim_create_mdev("gmig-small", UA));
	ASSERT_EQ(0, sim_create_mdev("gmig-small", UB));
	ASSERT_EQ(0, sim_open(&self->a, UA, IOVA, MEM));
	ASSERT_EQ(0, sim_open(&self->b, UB, IOVA, MEM));
	ASSERT_NE(self->a.gbase, self->b.gbase);
}

FIXTURE_TEARDOWN(mig)
{
	sim_close(&self->a);
	sim_close(&self->b);
	sim_remove_mdev(UA);
	sim_remove_mdev(UB);
}

static uint32_t state_of(struct sim *s)
{
	uint32_t st = 0xff;

	gvfio_mig_get_state(&s->v, &st);
	return st;
}

TEST_F(mig, advertises_stop_copy_p2p_pre_copy)
{
	uint64_t flags = 0;

	ASSERT_EQ(0, gvfio_mig_flags(&self->a.v, &flags));
	ASSERT_EQ(VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P |
		  VFIO_MIGRATION_PRE_COPY, flags);
	ASSERT_EQ(VFIO_DEVICE_STATE_RUNNING, state_of(&self->a));
}

TEST_F(mig, invalid_arc_changes_nothing)
{
	ASSERT_EQ(-EINVAL, gvfio_mig_set_state(&self->a.v, VFIO_DEVICE_STATE_ERROR, NULL));
	ASSERT_EQ(-EINVAL, gvfio_mig_set_state(&self->a.v, 99, NULL));
	ASSERT_EQ(VFIO_DEVICE_STATE_RUNNING, state_of(&self->a));
}

TEST_F(mig, every_arc_of_the_state_machine)
{
	static const uint32_t walk[] = {
		VFIO_DEVICE_STATE_RUNNING_P2P, VFIO_DEVICE_STATE_STOP,
		VFIO_DEVICE_STATE_RUNNING_P2P, VFIO_DEVICE_STATE_RUNNING,
		VFIO_DEVICE_STATE_PRE_COPY, VFIO_DEVICE_STATE_PRE_COPY_P2P,
		VFIO_DEVICE_STATE_PRE_COPY, VFIO_DEVICE_STATE_RUNNING,
		VFIO_DEVICE_STATE_STOP, VFIO_DEVICE_STATE_STOP_COPY,
		VFIO_DEVICE_STATE_STOP, VFIO_DEVICE_STATE_RESUMING,
		VFIO_DEVICE_STATE_STOP, VFIO_DEVICE_STATE_RUNNING,
	};
	unsigned int i;
	int fd;

	for (i = 0; i < ARRAY_SIZE(walk); i++) {
		if (walk[i] == VFIO_DEVICE_STATE_STOP && i == 12) {
			/* RESUMING -> STOP with no data: a bad (empty) stream. */
			ASSERT_EQ(-EINVAL, gvfio_mig_set_state(&self->a.v, walk[i], &fd));
			ASSERT_EQ(VFIO_DEVICE_STATE_RESUMING, state_of(&self->a));
			ASSERT_EQ(0, gvfio_reset(&self->a.v));
			ASSERT_EQ(VFIO_DEVICE_STATE_RUNNING, state_of(&self->a));
			ASSERT_EQ(0, gvfio_mig_set_state(&self->a.v, VFIO_DEVICE_STATE_STOP, &fd));
			continue;
		}
		ASSERT_EQ(0, gvfio_mig_set_state(&self->a.v, walk[i], &fd)) {
			TH_LOG("arc %u -> state %u", i, walk[i]);
		}
		if (fd >= 0)
			close(fd);
		ASSERT_EQ(walk[i], state_of(&self->a));
	}
}

/*
 * The VMM's part of a resume: B gets A's guest memory, then the pre-copy
 * and final data in one write, and runs.
 */
static void resume_from(struct __test_metadata *_metadata, struct sim *a,
			struct sim *b, const char *pre, ssize_t npre,
			const char *fin, ssize_t nfin)
{
	char *img = malloc(npre + nfin);
	int rfd;

	ASSERT_NE(NULL, img);
	memcpy(b->v.mem, a->v.mem, MEM);
	memcpy(img, pre, npre);
	memcpy(img + npre, fin, nfin);
	ASSERT_EQ(0, gvfio_mig_set_state(&b->v, VFIO_DEVICE_STATE_RESUMING, &rfd));
	ASSERT_EQ(npre + nfin, write(rfd, img, npre + nfin));
	ASSERT_EQ(0, gvfio_mig_set_state(&b->v, VFIO_DEVICE_STATE_RUNNING, NULL));
	close(rfd);
	free(img);
}

TEST_F(mig, migrate_with_pending_workload_to_another_partition)
{
	struct sim *a = &self->a, *b = &self->b;
	uint64_t initial = 0, dirty = 0, size = 0;
	uint32_t cmd[] = {
		(0x20u << 23) | (1u << 22) | 2,
		(uint32_t)sim_gaddr(a, SIM_PAGE_DATA) + 8, 0, 0xabcd0001,
	};
	uint32_t *ring_b = sim_ptr(b, SIM_PAGE_RING);
	char *pre = NULL, *fin = NULL, byte;
	ssize_t npre, nfin;
	int fd;

	/* Pre-copy while running. */
	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_PRE_COPY, &fd));
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, gvfio_precopy_info(fd, &initial, &dirty));
	ASSERT_LT(0, initial);
	ASSERT_EQ(0, gvfio_mig_data_size(&a->v, &size));
	ASSERT_LT(0, size);
	npre = read_all(fd, &pre);
	ASSERT_EQ((ssize_t)initial, npre);
	ASSERT_EQ(0, gvfio_precopy_info(fd, &initial, &dirty));
	ASSERT_EQ(0, initial);
	/* The end of the data for now is -ENOMSG in PRE_COPY, not EOF. */
	ASSERT_EQ(-1, read(fd, &byte, 1));
	ASSERT_EQ(ENOMSG, errno);

	/* Stop, then queue a workload: it stays pending in the saved state. */
	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_PRE_COPY_P2P, NULL));
	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_STOP_COPY, NULL));
	ASSERT_EQ(0, sim_submit(a, cmd, 4, 11));
	ASSERT_EQ(-ETIMEDOUT, sim_wait(a));	/* quiesced: nothing runs */
	close(fd);
	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_STOP, NULL));
	/*
	 * The registers changed after the patched final image: the check of
	 * its GGTT entries does not take that for a missed GGTT write.
	 */
	ASSERT_EQ(1, sim_stat(UA, "final_image_checks"));
	ASSERT_EQ(0, sim_stat(UA, "final_image_mismatches"));
	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_STOP_COPY, &fd));
	nfin = read_all(fd, &fin);
	ASSERT_LT(0, nfin);
	close(fd);
	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_STOP, NULL));

	/* The VMM copies guest memory; B resumes from pre-copy + final data. */
	b->completed = a->completed;
	resume_from(_metadata, a, b, pre, npre, fin, nfin);

	/* The pending store ran on B, at the same guest page. */
	ASSERT_EQ(0, sim_wait(b));
	ASSERT_EQ(0u, sim_reg(b, SIM_FAULT_STATUS));
	ASSERT_EQ(0xabcd0001u, ((uint32_t *)sim_ptr(b, SIM_PAGE_DATA))[2]);
	ASSERT_EQ(11u, sim_reg(b, SIM_STATUS_HI));
	/* Its ring was remapped to B's partition; A's memory was not touched. */
	ASSERT_EQ((uint32_t)sim_gaddr(b, SIM_PAGE_DATA) + 8, ring_b[1]);
	ASSERT_EQ((uint32_t)sim_gaddr(a, SIM_PAGE_DATA) + 8,
		  ((uint32_t *)sim_ptr(a, SIM_PAGE_RING))[1]);
	ASSERT_EQ((uint32_t)sim_gaddr(b, SIM_PAGE_RING),
		  ((uint32_t *)sim_ptr(b, SIM_PAGE_CTX))[1]);
	/* B's GGTT entries equal A's, index for index. */
	for (int i = 0; i < 8; i++) {
		uint64_t ea = 0, eb = 0;

		gvfio_region_rw(&a->v, 0, SIM_GGTT_OFFSET + (sim_gaddr(a, i) / 4096) * 8, &ea, 8, false);
		gvfio_region_rw(&b->v, 0, SIM_GGTT_OFFSET + (sim_gaddr(b, i) / 4096) * 8, &eb, 8, false);
		ASSERT_EQ(ea, eb);
		ASSERT_NE(0, ea);
	}
	free(pre);
	free(fin);
}

/*
 * One migration src -> dst as a VMM does it, with a store queued on src
 * after it stopped (so it is pending in the saved state): state through
 * the data fds, guest memory copied by the "VMM", and the store must land
 * in dst's memory at the same guest page once dst runs.
 */
static void migrate_once(struct __test_metadata *_metadata, struct sim *src,
			 struct sim *dst, uint32_t value, unsigned int page)
{
	uint32_t cmd[] = {
		(0x20u << 23) | (1u << 22) | 2,
		(uint32_t)sim_gaddr(src, page) + 4, 0, value,
	};
	char *img = NULL;
	ssize_t n;
	int fd;

	ASSERT_EQ(0, gvfio_mig_set_state(&src->v, VFIO_DEVICE_STATE_STOP, NULL));
	ASSERT_EQ(0, sim_submit(src, cmd, 4, value & 0xffff));
	ASSERT_EQ(0, gvfio_mig_set_state(&src->v, VFIO_DEVICE_STATE_STOP_COPY, &fd));
	n = read_all(fd, &img);
	ASSERT_LT(0, n);
	close(fd);
	ASSERT_EQ(0, gvfio_mig_set_state(&src->v, VFIO_DEVICE_STATE_STOP, NULL));
	memcpy(dst->v.mem, src->v.mem, MEM);
	dst->ring_tail = src->ring_tail;
	/* The completion count is device state: it migrates too. */
	dst->completed = src->completed;
	ASSERT_EQ(0, gvfio_mig_set_state(&dst->v, VFIO_DEVICE_STATE_RESUMING, &fd));
	ASSERT_EQ(n, write(fd, img, n));
	ASSERT_EQ(0, gvfio_mig_set_state(&dst->v, VFIO_DEVICE_STATE_RUNNING, NULL));
	close(fd);
	free(img);
	ASSERT_EQ(0, sim_wait(dst));
	ASSERT_EQ(0u, sim_reg(dst, SIM_FAULT_STATUS));
	ASSERT_EQ(value, ((uint32_t *)sim_ptr(dst, page))[1]);
	/* The source stays usable: reset it for the way back. */
	ASSERT_EQ(0, gvfio_reset(&src->v));
	ASSERT_EQ(0, sim_map_ggtt(src));
	src->completed = sim_reg(src, SIM_STATUS_LO) >> 16;
}

TEST_F_TIMEOUT(mig, back_and_forth, 3600)
{
	/* GMIG_LONG=1: the 1000-round reliability run (make check LONG=1). */
	unsigned int rounds = getenv("GMIG_LONG") ? 1000 : 20, i;
	struct sim *x = &self->a, *y = &self->b, *t;
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < rounds; i++) {
		migrate_once(_metadata, x, y, 0x10000000 + i, SIM_PAGE_DATA + i % 256);
		t = x;
		x = y;
		y = t;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	TH_LOG("%u migrations with a pending workload, nothing lost, %.1f ms each",
	       rounds, ((t1.tv_sec - t0.tv_sec) * 1e3 +
			(t1.tv_nsec - t0.tv_nsec) / 1e6) / rounds);
}

static void bad_stream(struct __test_metadata *_metadata, struct sim *b,
		       const char *data, size_t len)
{
	int rfd;

	ASSERT_EQ(0, gvfio_mig_set_state(&b->v, VFIO_DEVICE_STATE_RESUMING, &rfd));
	if (len)
		ASSERT_EQ((ssize_t)len, write(rfd, data, len));
	ASSERT_EQ(-EINVAL, gvfio_mig_set_state(&b->v, VFIO_DEVICE_STATE_STOP, NULL));
	ASSERT_EQ(VFIO_DEVICE_STATE_RESUMING, state_of(b));
	close(rfd);
	/* The destination is usable again after a reset. */
	ASSERT_EQ(0, gvfio_reset(&b->v));
	ASSERT_EQ(VFIO_DEVICE_STATE_RUNNING, state_of(b));
}

TEST_F(mig, corrupt_truncated_and_foreign_streams_are_rejected)
{
	struct sim *a = &self->a, *b = &self->b;
	char *img = NULL;
	ssize_t n;
	int fd;

	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_STOP_COPY, &fd));
	n = read_all(fd, &img);
	close(fd);
	ASSERT_LT(64, n);
	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_RUNNING, NULL));

	bad_stream(_metadata, b, "garbage garbage garbage garbage", 31);
	bad_stream(_metadata, b, img, n / 2);			/* truncated */
	img[n / 2] ^= 0x40;
	bad_stream(_metadata, b, img, n);			/* checksum */
	img[n / 2] ^= 0x40;
	img[8] = 3;						/* version 3.x */
	bad_stream(_metadata, b, img, n);
	img[8] = 2;
	img[14] = 1;						/* gmig-large's stream */
	bad_stream(_metadata, b, img, n);
	img[14] = 0;
	/* And the intact image is accepted by the same destination. */
	ASSERT_EQ(0, gvfio_mig_set_state(&b->v, VFIO_DEVICE_STATE_RESUMING, &fd));
	ASSERT_EQ(n, write(fd, img, n));
	ASSERT_EQ(0, gvfio_mig_set_state(&b->v, VFIO_DEVICE_STATE_RUNNING, NULL));
	close(fd);
	free(img);
}

/*
 * A stop-copy image after a pre-copy image was read is a delta over it:
 * at most 64 KiB whatever the partition, and the destination needs both
 * (the delta alone has no base and is refused).
 */
TEST_F(mig, stop_copy_sends_a_delta_over_the_precopy_image)
{
	struct sim *a = &self->a, *b = &self->b;
	char *pre = NULL, *fin = NULL;
	ssize_t npre, nfin;
	uint64_t size = 0;
	int fd;

	ASSERT_EQ(0, sim_map_ggtt(a));
	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_PRE_COPY, &fd));
	npre = read_all(fd, &pre);
	ASSERT_LT(0, npre);
	/* What QEMU weighs before the switchover: the delta, not an image. */
	ASSERT_EQ(0, gvfio_mig_data_size(&a->v, &size));
	ASSERT_GT((uint64_t)npre, size);
	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_PRE_COPY_P2P, NULL));
	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_STOP_COPY, NULL));
	nfin = read_all(fd, &fin);
	close(fd);
	ASSERT_LT(0, nfin);
	ASSERT_GE(65536, nfin);
	ASSERT_GT(npre, nfin);
	/* The vGPU is idle: the estimate was about the final image. */
	ASSERT_GE((uint64_t)nfin + 64, size);
	ASSERT_GE(size + 64, (uint64_t)nfin);
	ASSERT_EQ(nfin, sim_stat(UA, "final_image_bytes"));
	/* Patched from what changed, then checked whole after the stop. */
	ASSERT_EQ(1, sim_stat(UA, "final_image_patched"));
	ASSERT_EQ(0, sim_stat(UA, "final_image_checks"));
	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_STOP, NULL));
	ASSERT_EQ(1, sim_stat(UA, "final_image_checks"));
	ASSERT_EQ(0, sim_stat(UA, "final_image_mismatches"));

	bad_stream(_metadata, b, fin, nfin);
	resume_from(_metadata, a, b, pre, npre, fin, nfin);
	ASSERT_EQ(1, sim_stat(UB, "images_applied"));
	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_RUNNING, NULL));
	free(pre);
	free(fin);
}

/*
 * One migration A -> B during which the guest rewrites half of A's GGTT
 * (8192 of gmig-small's 16384 entries) after the pre-copy image was read.
 * Returns the final image's length; *nreinit gets the bytes of new initial
 * data (0 unless the client opted in to PRECOPY_INFOv2), and B restores
 * what A had.
 */
static ssize_t half_ggtt_rewritten(struct __test_metadata *_metadata,
				   struct sim *a, struct sim *b, bool v2,
				   ssize_t *nreinit)
{
	char *pre = NULL, *re = NULL, *fin = NULL, *all;
	uint64_t initial = 0, dirty = 0;
	uint32_t flags = 0;
	ssize_t npre, nre = 0, nfin;
	unsigned int i;
	int fd, rfd;

	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_PRE_COPY, &fd));
	ASSERT_EQ(0, gvfio_precopy_info_flags(fd, &initial, &dirty, &flags));
	ASSERT_EQ(0, flags);
	npre = read_all(fd, &pre);
	ASSERT_EQ((ssize_t)initial, npre);
	ASSERT_EQ(0, sim_rewrite_ggtt(a, 0, 8192, 7 + v2));
	ASSERT_EQ(0, gvfio_precopy_info_flags(fd, &initial, &dirty, &flags));
	if (v2) {
		/* New initial data, reported once: a new base. */
		ASSERT_EQ(VFIO_PRECOPY_INFO_REINIT, flags);
		ASSERT_LT(0, initial);
		ASSERT_EQ(0, gvfio_precopy_info_flags(fd, &initial, &dirty, &flags));
		ASSERT_EQ(0, flags);
		nre = read_all(fd, &re);
		ASSERT_EQ((ssize_t)initial, nre);
		ASSERT_EQ(1, sim_stat(UA, "precopy_reinits"));
	} else {
		/* Without the opt-in the flags are the caller's (0) and nothing is re-sent. */
		ASSERT_EQ(0, flags);
		ASSERT_EQ(0, initial);
		ASSERT_EQ(0, sim_stat(UA, "precopy_reinits"));
	}
	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_STOP_COPY, NULL));
	nfin = read_all(fd, &fin);
	close(fd);
	ASSERT_LT(0, nfin);
	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_STOP, NULL));
	ASSERT_EQ(0, sim_stat(UA, "final_image_mismatches"));

	/* The destination takes the whole stream in one write. */
	all = malloc(npre + nre + nfin);
	ASSERT_NE(NULL, all);
	memcpy(all, pre, npre);
	if (nre)
		memcpy(all + npre, re, nre);
	memcpy(all + npre + nre, fin, nfin);
	memcpy(b->v.mem, a->v.mem, MEM);
	ASSERT_EQ(0, gvfio_mig_set_state(&b->v, VFIO_DEVICE_STATE_RESUMING, &rfd));
	ASSERT_EQ(npre + nre + nfin, write(rfd, all, npre + nre + nfin));
	ASSERT_EQ(0, gvfio_mig_set_state(&b->v, VFIO_DEVICE_STATE_RUNNING, NULL));
	close(rfd);
	ASSERT_EQ(1, sim_stat(UB, "images_applied"));
	/* A new base superseded the first: B dropped it as it came. */
	ASSERT_EQ(nre ? npre : 0, sim_stat(UB, "superseded_bytes"));
	for (i = 0; i < 8192; i += 509)
		ASSERT_EQ(sim_ggtt_entry(a, i), sim_ggtt_entry(b, i));
	ASSERT_NE(0, sim_ggtt_entry(b, 8191));
	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_RUNNING, NULL));
	free(pre);
	free(re);
	free(fin);
	free(all);
	*nreinit = nre;
	return nfin;
}

/*
 * PRECOPY_INFOv2 and REINIT: a guest that rewrites half of its GGTT during
 * pre-copy. Without the opt-in the final image carries those entries as a
 * delta; with it the source sends a new base while the VM runs, and the
 * final image is small. Prints both sizes.
 */
TEST_F(mig, reinit_sends_a_new_base_when_the_ggtt_is_rewritten)
{
	struct sim *a = &self->a, *b = &self->b;
	ssize_t plain, reinit, nre = 0;

	plain = half_ggtt_rewritten(_metadata, a, b, false, &nre);
	ASSERT_EQ(0, nre);
	ASSERT_EQ(0, gvfio_precopy_info_v2(&a->v));
	reinit = half_ggtt_rewritten(_metadata, a, b, true, &nre);
	TH_LOG("half of the GGTT rewritten in pre-copy: final image %zd bytes without REINIT, %zd with it (new base %zd bytes)",
	       plain, reinit, nre);
	ASSERT_LT(65536, plain);
	ASSERT_GE(65536, reinit);
	ASSERT_GT(plain, 4 * reinit);
}

/*
 * A guest that keeps rewriting its GGTT: at most MAX_REINITS (8) new bases
 * per migration, then the old one stays and the delta grows.
 */
TEST_F(mig, reinits_per_migration_are_bounded)
{
	struct sim *a = &self->a;
	uint64_t initial = 0, dirty = 0;
	uint32_t flags = 0;
	unsigned int round, reinits = 0;
	char *buf = NULL;
	int fd;

	ASSERT_EQ(0, gvfio_precopy_info_v2(&a->v));
	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_PRE_COPY, &fd));
	ASSERT_LT(0, read_all(fd, &buf));
	free(buf);
	for (round = 0; round < 10; round++) {
		ASSERT_EQ(0, sim_rewrite_ggtt(a, 0, 2048, round + 1));
		ASSERT_EQ(0, gvfio_precopy_info_flags(fd, &initial, &dirty, &flags));
		reinits += !!(flags & VFIO_PRECOPY_INFO_REINIT);
		ASSERT_EQ(!!(flags & VFIO_PRECOPY_INFO_REINIT), initial > 0);
		buf = NULL;
		if (initial)
			ASSERT_EQ((ssize_t)initial, read_all(fd, &buf));
		free(buf);
	}
	ASSERT_EQ(8, reinits);
	ASSERT_EQ(8, sim_stat(UA, "precopy_reinits"));
	close(fd);
	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_RUNNING, NULL));
}

/*
 * final_image=patch|build: the stop-copy delta patched from the marked
 * GGTT entries and the sections compared one by one, or diffed from the
 * image built whole, restores the same state on the destination; the
 * patched one says so in the stats and passes the check after the stop.
 */
TEST_F(mig, a_patched_final_image_restores_what_a_built_one_does)
{
	struct sim *a = &self->a, *b = &self->b;
	static const char *const modes[] = { "build", "patch" };
	unsigned int m, i;

	for (m = 0; m < 2; m++) {
		char *pre = NULL, *fin = NULL;
		ssize_t npre, nfin;
		int fd;

		ASSERT_EQ(0, sim_set_param("final_image", modes[m]));
		ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_PRE_COPY, &fd));
		npre = read_all(fd, &pre);
		ASSERT_LT(0, npre);
		ASSERT_EQ(0, sim_rewrite_ggtt(a, 100 + m, 300, 3 + m));
		ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_STOP_COPY, NULL));
		nfin = read_all(fd, &fin);
		close(fd);
		ASSERT_LT(0, nfin);
		ASSERT_EQ((long long)m, sim_stat(UA, "final_image_patched"));
		ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_STOP, NULL));
		ASSERT_EQ((long long)m, sim_stat(UA, "final_image_checks"));
		ASSERT_EQ(0, sim_stat(UA, "final_image_mismatches"));
		TH_LOG("final_image=%s: final image %zd bytes, built in %lld us",
		       modes[m], nfin, sim_stat(UA, "image_us"));
		resume_from(_metadata, a, b, pre, npre, fin, nfin);
		ASSERT_EQ(1, sim_stat(UB, "images_applied"));
		for (i = 100; i < 400 + m; i += 7)
			ASSERT_EQ(sim_ggtt_entry(a, i), sim_ggtt_entry(b, i));
		ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_RUNNING, NULL));
		ASSERT_EQ(0, gvfio_mig_set_state(&b->v, VFIO_DEVICE_STATE_STOP, NULL));
		free(pre);
		free(fin);
	}
	ASSERT_EQ(0, sim_set_param("final_image", "patch"));
}

/* Writes gmig's fault injection file; returns 0 or -errno. */
static int set_fault(const char *what)
{
	FILE *f = fopen("/sys/kernel/debug/gmig/fault", "w");
	int ret;

	if (!f)
		return -errno;
	ret = fputs(what, f) < 0 ? -EIO : 0;
	if (fclose(f))
		ret = -errno;
	return ret;
}

/*
 * stop-copy-rollback on the sim: a STOP_COPY whose final image cannot be
 * built (no memory, injected) fails and leaves the device as it was:
 * PRE_COPY_P2P, the vGPU scheduled, the pre-copy image kept. The retry
 * succeeds and the destination restores base and delta.
 */
TEST_F(mig, failed_stop_copy_leaves_the_device_as_it_was)
{
	struct sim *a = &self->a, *b = &self->b;
	char *pre = NULL, *fin = NULL;
	ssize_t npre, nfin;
	int fd;

	ASSERT_EQ(0, sim_map_ggtt(a));
	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_PRE_COPY, &fd));
	npre = read_all(fd, &pre);
	ASSERT_LT(0, npre);
	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_PRE_COPY_P2P, NULL));
	ASSERT_EQ(0, set_fault("fail_stop_copy 1"));
	ASSERT_EQ(-ENOMEM, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_STOP_COPY, NULL));
	ASSERT_EQ(VFIO_DEVICE_STATE_PRE_COPY_P2P, state_of(a));
	ASSERT_EQ(0, sim_stat(UA, "quiesced"));
	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_STOP_COPY, NULL));
	ASSERT_EQ(1, sim_stat(UA, "quiesced"));
	nfin = read_all(fd, &fin);
	close(fd);
	ASSERT_LT(0, nfin);
	ASSERT_GT(npre, nfin);	/* still a delta over the kept pre-copy image */
	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_STOP, NULL));
	resume_from(_metadata, a, b, pre, npre, fin, nfin);
	ASSERT_EQ(1, sim_stat(UB, "images_applied"));
	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_RUNNING, NULL));
	free(pre);
	free(fin);
}

TEST_F(mig, data_fd_misuse)
{
	struct sim *a = &self->a, *b = &self->b;
	char buf[64] = { 0 };
	int sfd, rfd;

	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_PRE_COPY, &sfd));
	ASSERT_EQ(-1, write(sfd, buf, sizeof(buf)));
	ASSERT_EQ(0, gvfio_mig_set_state(&b->v, VFIO_DEVICE_STATE_STOP, NULL));
	ASSERT_EQ(0, gvfio_mig_set_state(&b->v, VFIO_DEVICE_STATE_RESUMING, &rfd));
	ASSERT_EQ(-1, read(rfd, buf, sizeof(buf)));
	/* Seeking a stream fd is refused. */
	ASSERT_EQ(-1, pread(sfd, buf, sizeof(buf), 0));
	ASSERT_EQ(ESPIPE, errno);
	close(sfd);
	close(rfd);
	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_RUNNING, NULL));
	ASSERT_EQ(0, gvfio_reset(&b->v));
}

TEST_F(mig, close_mid_migration_then_reopen)
{
	struct sim *a = &self->a;
	char buf[64];
	int fd;

	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_PRE_COPY, &fd));
	sim_close(a);
	/* The stale data fd outlives the device's open: -ENODEV, no crash. */
	ASSERT_EQ(-1, read(fd, buf, sizeof(buf)));
	ASSERT_EQ(ENODEV, errno);
	close(fd);
	ASSERT_EQ(0, sim_open(a, UA, IOVA, MEM));
	ASSERT_EQ(VFIO_DEVICE_STATE_RUNNING, state_of(a));
	/* And it migrates again. */
	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_STOP_COPY, &fd));
	ASSERT_LT(0, read(fd, buf, sizeof(buf)));
	close(fd);
	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_RUNNING, NULL));
}

static unsigned int count_bits(const uint64_t *bm, size_t words, int *first)
{
	unsigned int n = 0;
	size_t i;

	*first = -1;
	for (i = 0; i < words * 64; i++) {
		if (bm[i / 64] & (1ull << (i % 64))) {
			if (*first < 0)
				*first = i;
			n++;
		}
	}
	return n;
}

/* Writes a gmig module parameter; returns 0 or -errno. */
#define set_param sim_set_param

TEST_F(mig, dirty_logging_reports_gpu_written_pages_only)
{
	struct sim *a = &self->a;
	size_t words = MEM / 4096 / 64;
	uint64_t *bm = calloc(words, 8);
	uint32_t cmd[] = {
		(0x20u << 23) | (1u << 22) | 2,
		(uint32_t)sim_gaddr(a, SIM_PAGE_DATA + 5), 0, 0x12345678,
	};
	int first, fd;

	ASSERT_NE(NULL, bm);
	/* gMig's behaviour: every tracked page re-hashed at stop-copy. */
	ASSERT_EQ(0, set_param("rehash", "all"));
	ASSERT_EQ(0, gvfio_log_start(&a->v, IOVA, MEM));
	ASSERT_EQ(0, set_param("rehash", "writeset"));
	/* One-shot: reports while running name nothing (and hash the pages). */
	ASSERT_EQ(0, gvfio_log_report(&a->v, IOVA, MEM, bm));
	ASSERT_EQ(0u, count_bits(bm, words, &first));
	ASSERT_EQ(0, sim_submit(a, cmd, 4, 5));
	ASSERT_EQ(0, sim_wait(a));
	memset(bm, 0, words * 8);
	ASSERT_EQ(0, gvfio_log_report(&a->v, IOVA, MEM, bm));
	ASSERT_EQ(0u, count_bits(bm, words, &first));
	/* Stopped: the pages whose content changed since they were hashed. */
	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_STOP_COPY, &fd));
	memset(bm, 0, words * 8);
	ASSERT_EQ(0, gvfio_log_report(&a->v, IOVA, MEM, bm));
	/* The data page, the ring and the context image (head write-back). */
	ASSERT_EQ(3u, count_bits(bm, words, &first));
	ASSERT_TRUE(bm[0] & (1ull << SIM_PAGE_CTX));
	ASSERT_TRUE(bm[0] & (1ull << SIM_PAGE_RING));
	ASSERT_TRUE(bm[(SIM_PAGE_DATA + 5) / 64] & (1ull << ((SIM_PAGE_DATA + 5) % 64)));
	ASSERT_EQ(0, sim_stat(UA, "pages_rehash_skipped"));
	ASSERT_EQ(sim_stat(UA, "pages_tracked"), sim_stat(UA, "pages_rehashed_stopcopy"));
	close(fd);
	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_RUNNING, NULL));
	ASSERT_EQ(0, gvfio_log_stop(&a->v));
	free(bm);
}

/*
 * rehash_cpus=0: a re-hash of 512 frames or more is spread over the online
 * CPUs (the test VM has two), and reports the pages rehash_cpus=1 reports
 * for the same GPU writes.
 */
TEST_F(mig, a_spread_rehash_reports_what_one_cpu_does)
{
	static const char *const cpus[] = { "1", "0" };
	struct sim *a = &self->a;
	size_t words = MEM / 4096 / 64;
	uint64_t *bm[2] = { calloc(words, 8), calloc(words, 8) };
	int m, first, fd;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		SKIP(return, "one CPU online: nothing to spread over");
	ASSERT_NE(NULL, bm[0]);
	ASSERT_NE(NULL, bm[1]);
	for (m = 0; m < 2; m++) {
		uint32_t cmd[] = {
			(0x20u << 23) | (1u << 22) | 2,
			(uint32_t)sim_gaddr(a, SIM_PAGE_DATA + 5), 0, 0x12345678u + m,
		};

		ASSERT_EQ(0, set_param("rehash_cpus", cpus[m]));
		ASSERT_EQ(0, set_param("rehash", "all"));
		ASSERT_EQ(0, gvfio_log_start(&a->v, IOVA, MEM));
		ASSERT_EQ(0, set_param("rehash", "writeset"));
		ASSERT_LE(512, sim_stat(UA, "pages_tracked"));
		ASSERT_EQ(0, gvfio_log_report(&a->v, IOVA, MEM, bm[m]));
		ASSERT_EQ(0, sim_submit(a, cmd, 4, 5 + m));
		ASSERT_EQ(0, sim_wait(a));
		ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_STOP_COPY, &fd));
		memset(bm[m], 0, words * 8);
		ASSERT_EQ(0, gvfio_log_report(&a->v, IOVA, MEM, bm[m]));
		ASSERT_EQ(m ? 2LL : 1LL, sim_stat(UA, "rehash_cpus"));
		if (m) {
			ASSERT_LT(0, sim_stat(UA, "rehash_rounds_spread"));
		} else {
			ASSERT_EQ(0, sim_stat(UA, "rehash_rounds_spread"));
		}
		close(fd);
		ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_RUNNING, NULL));
		ASSERT_EQ(0, gvfio_log_stop(&a->v));
	}
	ASSERT_EQ(0, set_param("rehash_cpus", "0"));
	/* The data page, the ring and the context image, on either. */
	ASSERT_EQ(3u, count_bits(bm[1], words, &first));
	ASSERT_EQ(0, memcmp(bm[0], bm[1], words * 8));
	free(bm[0]);
	free(bm[1]);
}

static int bit(const uint64_t *bm, unsigned int page)
{
	return !!(bm[page / 64] & (1ull << (page % 64)));
}

/*
 * hashing=inplace (pages pinned a run at a time and hashed where they are)
 * and hashing=copy (each copied with vfio_dma_rw() first) report the same
 * pages, and only the first reads guest memory in place. Each a logging
 * session whose every pre-copy report re-hashes every tracked page
 * (precopy=iterative dirty=hash rehash=all).
 */
TEST_F(mig, hashing_in_place_reports_what_the_copy_path_does)
{
	static const char *const modes[] = { "copy", "inplace" };
	struct sim *a = &self->a;
	size_t words = MEM / 4096 / 64;
	uint64_t *bm[2] = { calloc(words, 8), calloc(words, 8) };
	unsigned int i, n[2];
	int first;

	ASSERT_NE(NULL, bm[0]);
	ASSERT_NE(NULL, bm[1]);
	ASSERT_EQ(0, set_param("precopy", "iterative"));
	ASSERT_EQ(0, set_param("rehash", "all"));
	for (i = 0; i < 2; i++) {
		uint32_t cmd[] = {
			(0x20u << 23) | (1u << 22) | 2,
			(uint32_t)sim_gaddr(a, SIM_PAGE_DATA + 7 + i), 0, 0x5a5a0000 + i,
		};
		long long rehashed;

		ASSERT_EQ(0, set_param("hashing", modes[i]));
		ASSERT_EQ(0, gvfio_log_start(&a->v, IOVA, MEM));
		/* The first report hashes every tracked page (all new). */
		ASSERT_EQ(0, gvfio_log_report(&a->v, IOVA, MEM, bm[i]));
		ASSERT_EQ(0, sim_submit(a, cmd, 4, 9 + i));
		ASSERT_EQ(0, sim_wait(a));
		memset(bm[i], 0, words * 8);
		ASSERT_EQ(0, gvfio_log_report(&a->v, IOVA, MEM, bm[i]));
		n[i] = count_bits(bm[i], words, &first);
		ASSERT_TRUE(bit(bm[i], SIM_PAGE_DATA + 7 + i));
		rehashed = sim_stat(UA, "pages_rehashed_precopy");
		ASSERT_EQ(2 * sim_stat(UA, "pages_tracked"), rehashed);
		/* Every page read was read in place (one that cannot be is an error). */
		ASSERT_EQ(i ? rehashed : 0, sim_stat(UA, "pages_hashed_inplace") +
			  (i ? sim_stat(UA, "log_read_errors") : 0));
		ASSERT_EQ(0, sim_stat(UA, "pages_copied_after_unmap"));
		ASSERT_EQ(0, gvfio_log_stop(&a->v));
	}
	/* The same pages but each mode's own store. */
	ASSERT_EQ(n[0], n[1]);
	bm[0][(SIM_PAGE_DATA + 7) / 64] &= ~(1ull << ((SIM_PAGE_DATA + 7) % 64));
	bm[0][(SIM_PAGE_DATA + 8) / 64] |= 1ull << ((SIM_PAGE_DATA + 8) % 64);
	ASSERT_EQ(0, memcmp(bm[0], bm[1], words * 8));
	ASSERT_EQ(0, set_param("hashing", "inplace"));
	ASSERT_EQ(0, set_param("precopy", "oneshot"));
	ASSERT_EQ(0, set_param("rehash", "writeset"));
	free(bm[0]);
	free(bm[1]);
}

struct reporter {
	struct gvfio *v;
	volatile int stop;
	int reports, failed;
};

static void *report_loop(void *arg)
{
	struct reporter *r = arg;
	size_t words = MEM / 4096 / 64;
	uint64_t *bm = calloc(words, 8);

	while (bm && !r->stop) {
		if (gvfio_log_report(r->v, IOVA, MEM, bm))
			r->failed++;
		r->reports++;
	}
	free(bm);
	return NULL;
}

/*
 * The VMM unmaps guest memory while reports hash it in place: the
 * dma_unmap callback waits for the run a report has pinned and the unmap
 * completes (type1 BUG()s if a page stays pinned through ten callbacks);
 * reports after it read nothing and say every tracked page changed.
 */
TEST_F(mig, unmap_while_hashing_in_place)
{
	struct reporter r = { .v = &self->a.v };
	pthread_t th;

	ASSERT_EQ(0, set_param("precopy", "iterative"));
	ASSERT_EQ(0, set_param("rehash", "all"));
	ASSERT_EQ(0, set_param("hashing", "inplace"));
	ASSERT_EQ(0, gvfio_log_start(&self->a.v, IOVA, MEM));
	ASSERT_EQ(0, pthread_create(&th, NULL, report_loop, &r));
	while (r.reports < 3)
		usleep(1000);
	ASSERT_EQ(0, gvfio_unmap_mem(&self->a.v));
	usleep(20000);
	r.stop = 1;
	pthread_join(th, NULL);
	ASSERT_EQ(0, r.failed);
	ASSERT_LT(0, sim_stat(UA, "pages_hashed_inplace"));
	ASSERT_EQ(0, gvfio_log_stop(&self->a.v));
	ASSERT_EQ(0, set_param("precopy", "oneshot"));
	ASSERT_EQ(0, set_param("rehash", "writeset"));
}


/*
 * rehash=writeset: reports re-hash only what the executed commands could
 * write (the store's page and the context image the engine writes back),
 * pre-copy reports keep the hashes current, and stop-copy reads only the
 * pages written since the last report. The ring, written by this process
 * (the guest CPU, which the VMM tracks itself), is not the device's.
 */
TEST_F(mig, writeset_rehash_reads_only_what_commands_wrote)
{
	struct sim *a = &self->a;
	size_t words = MEM / 4096 / 64;
	uint64_t *bm = calloc(words, 8);
	unsigned int p1 = SIM_PAGE_DATA + 5, p2 = SIM_PAGE_DATA + 9;
	uint32_t cmd[] = {
		(0x20u << 23) | (1u << 22) | 2,
		(uint32_t)sim_gaddr(a, p1), 0, 0x12345678,
	};
	long long tracked;
	int first, fd;

	ASSERT_NE(NULL, bm);
	ASSERT_EQ(0, set_param("rehash", "writeset"));
	ASSERT_EQ(0, gvfio_log_start(&a->v, IOVA, MEM));
	ASSERT_EQ(0, gvfio_log_report(&a->v, IOVA, MEM, bm));
	ASSERT_EQ(0u, count_bits(bm, words, &first));
	ASSERT_EQ(0, sim_submit(a, cmd, 4, 5));
	ASSERT_EQ(0, sim_wait(a));
	/* Pre-copy: the written pages are reported (and re-hashed) now. */
	memset(bm, 0, words * 8);
	ASSERT_EQ(0, gvfio_log_report(&a->v, IOVA, MEM, bm));
	ASSERT_EQ(2u, count_bits(bm, words, &first));
	ASSERT_TRUE(bit(bm, SIM_PAGE_CTX));
	ASSERT_TRUE(bit(bm, p1));
	/* One more store, then stop: only its pages are read again. */
	cmd[1] = (uint32_t)sim_gaddr(a, p2);
	ASSERT_EQ(0, sim_submit(a, cmd, 4, 6));
	ASSERT_EQ(0, sim_wait(a));
	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_STOP_COPY, &fd));
	memset(bm, 0, words * 8);
	ASSERT_EQ(0, gvfio_log_report(&a->v, IOVA, MEM, bm));
	ASSERT_EQ(2u, count_bits(bm, words, &first));
	ASSERT_TRUE(bit(bm, SIM_PAGE_CTX));
	ASSERT_TRUE(bit(bm, p2));
	tracked = sim_stat(UA, "pages_tracked");
	ASSERT_LE(SIM_PAGES, tracked);
	ASSERT_EQ(2, sim_stat(UA, "pages_rehashed_stopcopy"));
	ASSERT_EQ(tracked - 2, sim_stat(UA, "pages_rehash_skipped"));
	ASSERT_EQ(2, sim_stat(UA, "pages_dirty_stopcopy"));
	ASSERT_EQ(2, sim_stat(UA, "pages_sent_stopcopy"));
	/* A second stop-copy report has nothing left to say. */
	memset(bm, 0, words * 8);
	ASSERT_EQ(0, gvfio_log_report(&a->v, IOVA, MEM, bm));
	ASSERT_EQ(0u, count_bits(bm, words, &first));
	close(fd);
	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_RUNNING, NULL));
	ASSERT_EQ(0, gvfio_log_stop(&a->v));
	free(bm);
}

/*
 * A guest with a hole in its RAM (q35 with >= 14 GiB: [0, 2G) and
 * [4G, 20G)): the tracker's window starts at frame 0 and holds 16 GiB, so a
 * GPU-writable frame at 18 GiB is outside it. It must be in every report,
 * stop-copy's included.
 */
TEST_F(mig, frame_above_the_tracker_window_is_reported)
{
	const uint64_t far = 18ull << 30, hi = 4ull << 30, hi_len = 16ull << 30;
	struct vfio_device_feature_dma_logging_range r[] = {
		{ .iova = 0, .length = 2ull << 30 },
		{ .iova = hi, .length = hi_len },
	};
	struct sim *a = &self->a;
	size_t words = hi_len / 4096 / 64;
	uint64_t *bm = calloc(words, 8);
	unsigned int gpage = 2000, fbit = (far - hi) / 4096;
	struct vfio_iommu_type1_dma_map map = {
		.argsz = sizeof(map),
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.iova = far, .size = 4096,
	};
	uint32_t cmd[] = {
		(0x20u << 23) | (1u << 22) | 2,
		(uint32_t)sim_gaddr(a, gpage), 0, 0x5eed0018,
	};
	uint32_t *page;
	int fd;

	ASSERT_NE(NULL, bm);
	page = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	ASSERT_NE(MAP_FAILED, page);
	map.vaddr = (uintptr_t)page;
	ASSERT_EQ(0, ioctl(a->v.container, VFIO_IOMMU_MAP_DMA, &map));
	ASSERT_EQ(0, gvfio_write64(&a->v, VFIO_PCI_BAR0_REGION_INDEX,
				   SIM_GGTT_OFFSET + sim_gaddr(a, gpage) / 4096 * 8,
				   far | 1));
	ASSERT_EQ(0, set_param("rehash", "writeset"));
	ASSERT_EQ(0, gvfio_log_start_ranges(&a->v, r, 2));
	ASSERT_EQ(1, sim_stat(UA, "pages_untrackable"));
	/* Pre-copy: the frame cannot be hashed, so it is reported. */
	ASSERT_EQ(0, gvfio_log_report(&a->v, hi, hi_len, bm));
	ASSERT_EQ(1, bit(bm, fbit));
	ASSERT_EQ(0, sim_submit(a, cmd, 4, 7));
	ASSERT_EQ(0, sim_wait(a));
	ASSERT_EQ(0x5eed0018u, page[0]);
	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_STOP_COPY, &fd));
	memset(bm, 0, words * 8);
	ASSERT_EQ(0, gvfio_log_report(&a->v, hi, hi_len, bm));
	ASSERT_EQ(1, bit(bm, fbit));
	close(fd);
	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_RUNNING, NULL));
	ASSERT_EQ(0, gvfio_log_stop(&a->v));
	free(bm);
}

/*
 * A VMM killed mid-migration (close) or a reset ends dirty logging: the
 * next VM's GGTT writes feed no log, and its reports are refused until it
 * starts logging itself.
 */
TEST_F(mig, close_and_reset_stop_dirty_logging)
{
	struct sim *a = &self->a;
	size_t words = MEM / 4096 / 64;
	uint64_t *bm = calloc(words, 8);
	int fd;

	ASSERT_NE(NULL, bm);
	ASSERT_EQ(0, gvfio_log_start(&a->v, IOVA, MEM));
	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_PRE_COPY, &fd));
	close(fd);
	sim_close(a);
	ASSERT_EQ(0, sim_open(a, UA, IOVA, MEM));
	ASSERT_EQ(0, sim_stat(UA, "pages_tracked"));
	ASSERT_EQ(-EINVAL, gvfio_log_report(&a->v, IOVA, MEM, bm));
	/* Logging again works, and a reset ends it too. */
	ASSERT_EQ(0, gvfio_log_start(&a->v, IOVA, MEM));
	ASSERT_EQ(0, gvfio_log_report(&a->v, IOVA, MEM, bm));
	ASSERT_EQ(0, gvfio_reset(&a->v));
	ASSERT_EQ(0, sim_map_ggtt(a));
	ASSERT_EQ(0, sim_stat(UA, "pages_tracked"));
	ASSERT_EQ(-EINVAL, gvfio_log_report(&a->v, IOVA, MEM, bm));
	free(bm);
}

/*
 * A workload started (debugfs) while the vGPU is stopped writes nothing
 * into guest memory until it runs again: the stop-copy re-hash has read the
 * pages already, so a write then would never reach the destination.
 */
TEST_F(mig, no_guest_write_while_stopped)
{
	struct sim *a = &self->a;
	char *before = malloc(MEM), path[128];
	int i, changed = 0;

	ASSERT_NE(NULL, before);
	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_STOP, NULL));
	memcpy(before, a->v.mem, MEM);
	snprintf(path, sizeof(path), "/sys/kernel/debug/gmig/%s/workload", UA);
	ASSERT_EQ(0, sim_write_sysfs(path, "start game base=0x1400000 size=0x200000"));
	usleep(300 * 1000);
	ASSERT_EQ(0, memcmp(before, a->v.mem, MEM));
	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_RUNNING, NULL));
	for (i = 0; i < 200 && !changed; i++) {
		usleep(10 * 1000);
		changed = memcmp(before, a->v.mem, MEM) != 0;
	}
	ASSERT_TRUE(changed);
	ASSERT_EQ(0, sim_write_sysfs(path, "stop"));
	free(before);
}

static void *remove_thread(void *uuid)
{
	return (void *)(intptr_t)sim_remove_mdev(uuid);
}

TEST_F(mig, remove_vgpu_mid_migration)
{
	struct sim *a = &self->a;
	pthread_t th;
	void *ret;
	char buf[64];
	int fd;

	ASSERT_EQ(0, gvfio_mig_set_state(&a->v, VFIO_DEVICE_STATE_PRE_COPY, &fd));
	/* The remove waits for the VFIO user; the user then lets go. */
	ASSERT_EQ(0, pthread_create(&th, NULL, remove_thread, UA));
	usleep(300 * 1000);
	sim_close(a);
	ASSERT_EQ(0, pthread_join(th, &ret));
	ASSERT_EQ(0, (intptr_t)ret);
	/* The data fd outlives the vGPU: -ENODEV, nothing touched. */
	ASSERT_EQ(-1, read(fd, buf, sizeof(buf)));
	ASSERT_EQ(ENODEV, errno);
	close(fd);
	/* The parent is fine: the same UUID can be created and used again. */
	ASSERT_EQ(0, sim_create_mdev("gmig-small", UA));
	ASSERT_EQ(0, sim_open(a, UA, IOVA, MEM));
	ASSERT_EQ(VFIO_DEVICE_STATE_RUNNING, state_of(a));
}

TEST_HARNESS_MAIN

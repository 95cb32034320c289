// SPDX-License-Identifier: GPL-2.0
/*
 * gmig_bench: stop-copy pages and device downtime of a busy sim vGPU,
 * measured inside the test VM without QEMU. This program is the VMM: it
 * creates a source and a destination vGPU, gives each a DMA-mapped "guest
 * RAM", runs the synthetic workload on the source over a window of the
 * chosen size, and drives the VFIO v2 migration and DMA logging itself:
 *
 *   DMA_LOGGING_START, first report (snapshot), PRE_COPY, read the
 *   pre-copy image, copy all of guest RAM once (the VMM's first pass)
 *   while the vGPU keeps writing, then R pre-copy rounds (report, copy
 *   the reported pages); then
 *   PRE_COPY_P2P, t0 -> STOP_COPY -> final report -> copy the reported
 *   pages -> read the device data to EOF -> t1
 *
 * Device downtime is t1 - t0: from entering STOP_COPY to the last byte of
 * device data read, the stop-copy GPU pages included (they are the part
 * of the device's state the VMM carries for it). The destination then
 * takes the stream (RESUMING -> STOP must validate and apply it), and the
 * source's and destination's windows are compared page by page: a page
 * that differs was lost.
 *
 * The same program times one memcpy of the working set (best of 3) in
 * this VM, the yardstick for the downtime targets.
 *
 * Concurrent migrations (-c 1,3,7), a host evacuation: N gmig-small vGPUs,
 * each with its own workload, migrate at the same time (writeset variant),
 * one thread per vGPU, every step above in parallel; the ones done with
 * their rounds go on with rounds until all are, then each stops right
 * after its last round (stop "own"), or a barrier puts them all into
 * STOP_COPY at the same moment (stop "sync"); -S picks (default: both).
 * Per vGPU: the device downtime as above; per run: the wall time from the
 * start of dirty logging to the last vGPU's last byte. gmig-small allows 7
 * instances, so during the migration the destination RAM is a plain buffer
 * (the VMM's copy); afterwards each source in turn is removed and a
 * gmig-small destination takes its RAM and stream (RESUMING -> STOP).
 *
 * New initial data (-g N): an idle gmig-small vGPU whose guest rewrites
 * half of its GGTT after the pre-copy image was read, migrated N times
 * without the PRECOPY_INFOv2 opt-in and N times with it, alternating; with
 * it the source sends a new base (VFIO_PRECOPY_INFO_REINIT) and the final
 * image shrinks. Final image bytes, device downtime and the kernel's image
 * time, median and spread, and their ratios; every destination must
 * restore the source's GGTT.
 *
 * Usage: gmig_bench [-s MiB,MiB,...] [-p desktop,game] [-v VARIANTS]
 *                   [-r rounds] [-w warmup_ms] [-i round_ms] [-j out.json]
 *                   [-c N,N,...] [-m MiB] [-S own,sync] [-g N]
 *                   [-H reps] [-M MiB] [-P reps] [-X lose|corrupt]
 * Variants: writeset (oneshot/hash, rehash=writeset), built (the same,
 * final_image=build: the final delta diffed from an image built whole),
 * gmig (oneshot/hash, rehash=all), naive (iterative/all); every variant
 * but built has final_image=patch. fixed_ms is the downtime less the
 * stop-copy re-hash and the VMM's copy of the stop-copy pages. -c: counts of concurrent vGPUs (0:
 * none), -m: the working set of each. -s 0 skips the single-vGPU runs.
 * -H: repetitions of the hashing comparison (default 7, 0: none; see
 * run_hashing()), -M: its working set (default 64 MiB), on the first -p
 * profile.
 * -P: repetitions of the spread re-hash comparison (default 0: none; see
 * run_spread()): a full re-hash on one CPU (rehash_cpus=1) against every
 * online CPU (rehash_cpus=0), on the -M working set.
 * -X lose|corrupt: makes every run fail (see inject). Exits non-zero if a
 * page was lost or a step failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "gmig_sim.h"

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif

#define US "5a1d0000-0000-4000-8000-0000000000e1"
#define UD "5a1d0000-0000-4000-8000-0000000000e2"
#define IOVA (16ull << 20)
#define PAGE 4096ull
/* Context image, ring and batch pages the workload puts before its set. */
#define META_BYTES (19 * PAGE)
/* Largest window: gmig-xl's 1 GiB partition less the bottom MiB. */
#define XL_WINDOW (1023ull << 20)

struct variant {
	const char *name, *label, *precopy, *dirty, *rehash, *final_image;
};

static const struct variant variants[] = {
	{ "writeset", "oneshot/hash+writeset", "oneshot", "hash", "writeset", "patch" },
	/* The same, the final delta diffed from an image built whole. */
	{ "built", "writeset, image built", "oneshot", "hash", "writeset", "build" },
	{ "gmig", "oneshot/hash (gMig)", "oneshot", "hash", "all", "patch" },
	{ "naive", "iterative/all (naive)", "iterative", "all", "all", "patch" },
};

struct result {
	unsigned long long ws_mib, ws_bytes;
	const char *profile;
	const struct variant *v;
	long long tracked, stop_pages, precopy_pages, skipped, rehashed;
	long long k_downtime_us, k_rehash_us, k_wait_us, k_image_us, contexts, faults;
	double downtime_ms, memcpy_ms, copy_ms;
	long long lost;
	int ok;
};

/*
 * The downtime's fixed part: what is left of it besides the stop-copy
 * re-hash and copying the stop-copy pages (the VMM's part).
 */
static double fixed_ms(const struct result *r)
{
	return r->downtime_ms - r->k_rehash_us / 1e3 - r->copy_ms;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

#define set_param sim_set_param

/* Reads the data fd until it returns 0; appends to *buf. */
static int drain(int fd, char **buf, size_t *len, size_t *cap)
{
	ssize_t n;

	for (;;) {
		if (*cap - *len < (1 << 20)) {
			char *b = realloc(*buf, *cap + (4 << 20));

			if (!b)
				return -ENOMEM;
			*buf = b;
			*cap += 4 << 20;
		}
		n = read(fd, *buf + *len, 1 << 20);
		if (n < 0 && errno == ENOMSG)
			return 0;	/* PRE_COPY: all there is for now */
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		*len += n;
	}
}

/* Copies the pages set in a report from the source to the destination. */
static long long copy_reported(const uint64_t *bm, size_t pages, char *dst,
			       const char *src)
{
	long long n = 0;
	size_t i;

	for (i = 0; i < pages; i++) {
		if (!(bm[i / 64] & (1ull << (i % 64))))
			continue;
		memcpy(dst + i * PAGE, src + i * PAGE, PAGE);
		n++;
	}
	return n;
}

static double time_memcpy(char *dst, const char *src, size_t len)
{
	double best = 1e30;
	int i;

	for (i = 0; i < 3; i++) {
		double t = now_ms();

		memcpy(dst, src, len);
		t = now_ms() - t;
		if (t < best)
			best = t;
	}
	return best;
}

static int wait_contexts(const char *uuid, long long more, int timeout_ms)
{
	long long start = sim_stat(uuid, "contexts");
	double end = now_ms() + timeout_ms;

	while (now_ms() < end) {
		if (sim_stat(uuid, "contexts") >= start + more)
			return 0;
		usleep(10 * 1000);
	}
	return -ETIMEDOUT;
}

/*
 * -X: a self-test of this program's checks. "lose": the VMM skips the
 * first page of each stop-copy report (a page the destination then lacks);
 * "corrupt": one byte of each final image flipped (the destination must
 * refuse it). Either makes every run fail.
 */
enum { INJECT_NONE, INJECT_LOSE, INJECT_CORRUPT };
static int inject;

/*
 * One source vGPU's migration as the VMM drives it: its dirty bitmap, the
 * device data read so far, and the destination RAM the pages go to.
 */
struct mig {
	struct gvfio *s;
	char *dst;
	size_t mem, pages, words;
	uint64_t *bm;
	char *img;
	size_t len, cap;
	int fd;
	long long precopy_pages, stop_pages;
	double t_start, t0, t1, copy_ms;
	const char *err;	/* the step that failed */
};

static int mig_fail(struct mig *m, const char *step)
{
	m->err = step;
	return -1;
}

/* A pre-copy round: report, copy the reported pages. */
static int mig_round(struct mig *m)
{
	memset(m->bm, 0, m->words * 8);
	if (gvfio_log_report(m->s, IOVA, m->mem, m->bm))
		return mig_fail(m, "pre-copy report");
	m->precopy_pages += copy_reported(m->bm, m->pages, m->dst, m->s->mem);
	return 0;
}

/* Dirty logging, first report, pre-copy image, first pass, R rounds. */
static int mig_precopy(struct mig *m, int rounds, int round_ms)
{
	size_t off;
	int i;

	if (gvfio_log_start(m->s, IOVA, m->mem))
		return mig_fail(m, "DMA_LOGGING_START");
	if (gvfio_log_report(m->s, IOVA, m->mem, m->bm))
		return mig_fail(m, "first report");
	copy_reported(m->bm, m->pages, m->dst, m->s->mem);
	if (gvfio_mig_set_state(m->s, VFIO_DEVICE_STATE_PRE_COPY, &m->fd) ||
	    m->fd < 0)
		return mig_fail(m, "PRE_COPY");
	if (drain(m->fd, &m->img, &m->len, &m->cap))
		return mig_fail(m, "pre-copy read");
	for (off = 0; off < m->mem; off += 1 << 20)
		memcpy(m->dst + off, (char *)m->s->mem + off,
		       m->mem - off < (1 << 20) ? m->mem - off : 1 << 20);
	m->precopy_pages = 0;
	for (i = 0; i < rounds; i++) {
		usleep(round_ms * 1000);
		if (mig_round(m))
			return -1;
	}
	return 0;
}

/* -X lose: clears the first page of the report; 1 if there was one. */
static long long skip_first(struct mig *m)
{
	size_t i;

	for (i = 0; i < m->words; i++)
		if (m->bm[i]) {
			m->bm[i] &= m->bm[i] - 1;
			return 1;
		}
	return 0;
}

/*
 * From PRE_COPY_P2P: t0 -> STOP_COPY -> final report -> copy the reported
 * pages -> device data to EOF -> t1, the device downtime.
 */
static int mig_stopcopy(struct mig *m)
{
	m->t0 = now_ms();
	if (gvfio_mig_set_state(m->s, VFIO_DEVICE_STATE_STOP_COPY, NULL))
		return mig_fail(m, "STOP_COPY");
	memset(m->bm, 0, m->words * 8);
	if (gvfio_log_report(m->s, IOVA, m->mem, m->bm))
		return mig_fail(m, "stop-copy report");
	m->stop_pages = inject == INJECT_LOSE ? skip_first(m) : 0;
	m->copy_ms = now_ms();
	m->stop_pages += copy_reported(m->bm, m->pages, m->dst, m->s->mem);
	m->copy_ms = now_ms() - m->copy_ms;
	if (drain(m->fd, &m->img, &m->len, &m->cap))
		return mig_fail(m, "stop-copy read");
	m->t1 = now_ms();
	if (inject == INJECT_CORRUPT && m->len)
		m->img[m->len - 1] ^= 0x5a;
	return 0;
}

/* Pages of the stopped source's RAM the destination's does not have. */
static long long count_lost(const char *src, const char *dst, size_t mem)
{
	long long lost = 0;
	size_t off;

	for (off = 0; off < mem; off += PAGE)
		lost += !!memcmp(src + off, dst + off, PAGE);
	return lost;
}

/* The destination takes the stream: RESUMING -> STOP validates, applies. */
static const char *resume(struct gvfio *d, const char *img, size_t len)
{
	const char *err = NULL;
	int dfd = -1;
	size_t off;

	if (gvfio_mig_set_state(d, VFIO_DEVICE_STATE_RESUMING, &dfd) || dfd < 0)
		return "RESUMING";
	for (off = 0; off < len;) {
		ssize_t w = write(dfd, img + off, len - off);

		if (w <= 0) {
			err = "stream write";
			break;
		}
		off += w;
	}
	if (!err && gvfio_mig_set_state(d, VFIO_DEVICE_STATE_STOP, NULL))
		err = "destination rejected the stream (RESUMING -> STOP)";
	close(dfd);
	return err;
}

#define FAIL(...) do { fprintf(stderr, "gmig_bench: " __VA_ARGS__); goto out; } while (0)

static int run_one(struct result *r, const char *type, int rounds,
		   int warmup_ms, int round_ms)
{
	size_t ws = r->ws_mib << 20;
	size_t win = ws + META_BYTES > XL_WINDOW ? XL_WINDOW : ws + META_BYTES;
	size_t mem = win + (1 << 20);
	struct gvfio s = { .container = -1 }, d = { .container = -1 };
	struct mig m = { .s = &s, .mem = mem, .pages = mem / PAGE, .fd = -1 };
	char cmd[160], path[128];
	const char *err;
	long long n;

	m.words = (m.pages + 63) / 64;
	m.bm = calloc(m.words, 8);
	ws = win - META_BYTES;
	r->ws_bytes = ws;
	r->ok = 0;
	r->lost = -1;
	sim_remove_mdev(US);
	sim_remove_mdev(UD);
	if (!m.bm)
		FAIL("no memory\n");
	if (set_param("precopy", r->v->precopy) || set_param("dirty", r->v->dirty) ||
	    set_param("rehash", r->v->rehash) ||
	    set_param("final_image", r->v->final_image))
		FAIL("cannot set module parameters\n");
	if (sim_create_mdev(type, US) || sim_create_mdev(type, UD))
		FAIL("cannot create two %s vGPUs\n", type);
	if (gvfio_open(&s, US) || gvfio_open(&d, UD))
		FAIL("cannot open the vGPUs\n");
	if (gvfio_map_mem(&s, IOVA, mem) || gvfio_map_mem(&d, IOVA, mem))
		FAIL("cannot map %zu MiB of DMA memory twice\n", mem >> 20);
	m.dst = d.mem;
	r->memcpy_ms = time_memcpy((char *)d.mem + META_BYTES,
				   (char *)s.mem + META_BYTES, ws);

	snprintf(cmd, sizeof(cmd), "start %s base=%llu size=%zu", r->profile,
		 IOVA, win);
	snprintf(path, sizeof(path), "/sys/kernel/debug/gmig/%s/workload", US);
	if (sim_write_sysfs(path, cmd))
		FAIL("cannot start the workload (%s)\n", cmd);
	if (wait_contexts(US, 2, 60000))
		FAIL("the workload runs no context\n");
	usleep(warmup_ms * 1000);

	if (mig_precopy(&m, rounds, round_ms))
		FAIL("%s\n", m.err);
	r->precopy_pages = m.precopy_pages;
	/* Stop (as QEMU: P2P first): the device downtime starts at STOP_COPY. */
	if (gvfio_mig_set_state(&s, VFIO_DEVICE_STATE_PRE_COPY_P2P, NULL))
		FAIL("PRE_COPY_P2P\n");
	if (mig_stopcopy(&m))
		FAIL("%s\n", m.err);
	r->stop_pages = m.stop_pages;
	r->downtime_ms = m.t1 - m.t0;
	r->copy_ms = m.copy_ms;

	/* No page lost: the stopped source's window is the destination's. */
	r->lost = count_lost(s.mem, d.mem, mem);

	r->tracked = sim_stat(US, "pages_tracked");
	r->skipped = sim_stat(US, "pages_rehash_skipped");
	r->rehashed = sim_stat(US, "pages_rehashed_stopcopy");
	r->k_downtime_us = sim_stat(US, "downtime_us");
	r->k_rehash_us = sim_stat(US, "rehash_stopcopy_us");
	r->k_wait_us = sim_stat(US, "quiesce_wait_us");
	r->k_image_us = sim_stat(US, "image_us");
	r->contexts = sim_stat(US, "contexts");
	r->faults = sim_stat(US, "faults");
	n = sim_stat(US, "pages_sent_stopcopy");
	if (n != r->stop_pages)
		FAIL("stats say %lld stop-copy pages, the report had %lld\n", n,
		     r->stop_pages);

	err = resume(&d, m.img, m.len);
	if (err)
		FAIL("%s\n", err);
	r->ok = r->lost == 0 && r->faults == 0;
out:
	if (m.fd >= 0)
		close(m.fd);
	if (s.container >= 0) {
		gvfio_mig_set_state(&s, VFIO_DEVICE_STATE_RUNNING, NULL);
		gvfio_log_stop(&s);
		snprintf(path, sizeof(path), "/sys/kernel/debug/gmig/%s/workload", US);
		sim_write_sysfs(path, "stop");
		gvfio_close(&s);
	}
	if (d.container >= 0)
		gvfio_close(&d);
	sim_remove_mdev(US);
	sim_remove_mdev(UD);
	free(m.bm);
	free(m.img);
	return r->ok ? 0 : -1;
}

/* Concurrent migrations: N gmig-small vGPUs (its instance limit). */
#define STOP_OWN 1
#define STOP_SYNC 2
#define CONC_MAX 7
#define CONC_TYPE "gmig-small"
/* gmig-small's 64 MiB partition less the bottom MiB. */
#define SMALL_WINDOW (63ull << 20)

/* One vGPU of a concurrent run, and its thread's figures. */
struct conc_vgpu {
	char su[40], du[40];	/* source and destination mdev UUIDs */
	struct gvfio s;
	struct mig m;
	pthread_barrier_t *bar;
	int *ready;		/* threads done with their rounds */
	int n, rounds, round_ms, sync;
	int ok;			/* the source side completed */
	long long faults, lost, k_down_us, k_wait_us, k_rehash_us, k_image_us;
	double down_ms;
};

struct conc_result {
	const char *profile;
	int n, sync;
	unsigned long long ws_bytes;
	struct conc_vgpu *v;
	double down_min, down_med, down_max, kdown_med, kdown_max;
	double wait_max, rehash_max, image_max, total_ms;
	double spread;		/* first STOP_COPY request -> last one */
	int overlap;		/* every stop-copy ran while all the others did */
	long long stop_pages, precopy_pages, lost;
	int ok;
};

/*
 * A vGPU's thread: every step of its migration runs at the same time as
 * the others'. A vGPU done with its rounds goes on with rounds (5 ms
 * apart) until every one is done, as a VMM iterates until its stop; then
 * each stops right after its last round, PRE_COPY_P2P and STOP_COPY, as
 * a VMM does (stop "own": the stops fall within one round of each other).
 * With stop "sync" a barrier puts them all into STOP_COPY at the
 * same moment, and a vGPU whose last round ended first lets its GPU write
 * until the slowest one's ends: all of that goes into its stop-copy. A
 * failed vGPU still counts as ready and meets the barrier, so the others
 * go on.
 */
static void *conc_thread(void *arg)
{
	struct conc_vgpu *c = arg;
	int ok;

	pthread_barrier_wait(c->bar);
	c->m.t_start = now_ms();
	ok = !mig_precopy(&c->m, c->rounds, c->round_ms);
	__atomic_add_fetch(c->ready, 1, __ATOMIC_SEQ_CST);
	while (ok && __atomic_load_n(c->ready, __ATOMIC_SEQ_CST) < c->n) {
		usleep(5 * 1000);
		ok = !mig_round(&c->m);
	}
	if (ok && gvfio_mig_set_state(&c->s, VFIO_DEVICE_STATE_PRE_COPY_P2P, NULL))
		ok = !mig_fail(&c->m, "PRE_COPY_P2P");
	if (c->sync)
		pthread_barrier_wait(c->bar);
	if (ok)
		ok = !mig_stopcopy(&c->m);
	c->ok = ok;
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Of n sorted values. */
static double median(const double *x, int n)
{
	return n % 2 ? x[n / 2] : (x[n / 2 - 1] + x[n / 2]) / 2;
}

static void workload_ctl(const char *uuid, const char *cmd)
{
	char path[128];

	snprintf(path, sizeof(path), "/sys/kernel/debug/gmig/%s/workload", uuid);
	sim_write_sysfs(path, cmd);
}

/* The source's figures, then a destination takes its RAM and stream. */
static int conc_finish(struct conc_vgpu *c)
{
	struct mig *m = &c->m;
	struct gvfio d = { .container = -1 };
	const char *err = NULL;
	long long n;

	c->lost = count_lost(c->s.mem, m->dst, m->mem);
	c->down_ms = m->t1 - m->t0;
	c->k_down_us = sim_stat(c->su, "downtime_us");
	c->k_wait_us = sim_stat(c->su, "quiesce_wait_us");
	c->k_rehash_us = sim_stat(c->su, "rehash_stopcopy_us");
	c->k_image_us = sim_stat(c->su, "image_us");
	c->faults = sim_stat(c->su, "faults");
	n = sim_stat(c->su, "pages_sent_stopcopy");
	if (n != m->stop_pages) {
		fprintf(stderr, "gmig_bench: %s: stats say %lld stop-copy pages, the report had %lld\n",
			c->su, n, m->stop_pages);
		c->ok = 0;
	}
	/* The source goes: gmig-small has no room for 2N instances. */
	workload_ctl(c->su, "stop");
	gvfio_close(&c->s);
	sim_remove_mdev(c->su);
	if (sim_create_mdev(CONC_TYPE, c->du) || gvfio_open(&d, c->du) ||
	    gvfio_map_mem(&d, IOVA, m->mem)) {
		err = "cannot set up the destination";
	} else {
		/* Its RAM is what the VMM copied: the restore may patch it. */
		memcpy(d.mem, m->dst, m->mem);
		err = resume(&d, m->img, m->len);
	}
	if (err) {
		fprintf(stderr, "gmig_bench: %s: %s\n", c->du, err);
		c->ok = 0;
	}
	if (d.container >= 0)
		gvfio_close(&d);
	sim_remove_mdev(c->du);
	return c->ok && c->lost == 0 && c->faults == 0 ? 0 : -1;
}

static void conc_free(struct conc_vgpu *c)
{
	if (c->m.fd >= 0)
		close(c->m.fd);
	if (c->s.container >= 0) {
		gvfio_mig_set_state(&c->s, VFIO_DEVICE_STATE_RUNNING, NULL);
		gvfio_log_stop(&c->s);
		workload_ctl(c->su, "stop");
		gvfio_close(&c->s);
	}
	if (c->su[0]) {
		sim_remove_mdev(c->su);
		sim_remove_mdev(c->du);
	}
	if (c->m.dst)
		munmap(c->m.dst, c->m.mem);
	free(c->m.bm);
	free(c->m.img);
}

/* Sets up source vGPU i of a concurrent run, its workload running. */
static int conc_setup(struct conc_vgpu *c, int i, unsigned long long ws_mib,
		      const char *profile)
{
	size_t ws = ws_mib << 20;
	size_t win = ws + META_BYTES > SMALL_WINDOW ? SMALL_WINDOW : ws + META_BYTES;
	struct mig *m = &c->m;
	char cmd[160];
	void *dst;

	snprintf(c->su, sizeof(c->su), "5a1d0000-0000-4000-8000-0000000001%02x", i);
	snprintf(c->du, sizeof(c->du), "5a1d0000-0000-4000-8000-0000000002%02x", i);
	c->s.container = -1;
	m->s = &c->s;
	m->fd = -1;
	m->mem = win + (1 << 20);
	m->pages = m->mem / PAGE;
	m->words = (m->pages + 63) / 64;
	sim_remove_mdev(c->su);
	sim_remove_mdev(c->du);
	m->bm = calloc(m->words, 8);
	dst = mmap(NULL, m->mem, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (!m->bm || dst == MAP_FAILED) {
		fprintf(stderr, "gmig_bench: no memory for vGPU %d\n", i);
		return -1;
	}
	m->dst = dst;
	if (sim_create_mdev(CONC_TYPE, c->su) || gvfio_open(&c->s, c->su) ||
	    gvfio_map_mem(&c->s, IOVA, m->mem)) {
		fprintf(stderr, "gmig_bench: cannot set up %s vGPU %d\n", CONC_TYPE, i);
		return -1;
	}
	snprintf(cmd, sizeof(cmd), "start %s base=%llu size=%zu", profile, IOVA, win);
	workload_ctl(c->su, cmd);
	return 0;
}

/*
 * N vGPUs migrating at once (writeset variant); r->ok only if every one
 * migrated with no page lost and no fault.
 */
static int run_concurrent(struct conc_result *r, unsigned long long ws_mib,
			  int rounds, int warmup_ms, int round_ms)
{
	struct conc_vgpu *v = calloc(r->n, sizeof(*v));
	double down[CONC_MAX], kdown[CONC_MAX], first = 1e30, last = 0;
	double t0_min = 1e30, t0_max = 0, t1_min = 1e30;
	pthread_t th[CONC_MAX];
	pthread_barrier_t bar;
	int i, started = 0, bad = 0, done = 0, ready = 0;

	r->v = v;
	r->ok = 0;
	r->lost = -1;
	if (!v || r->n < 1 || r->n > CONC_MAX) {
		fprintf(stderr, "gmig_bench: -c takes 1 to %d vGPUs\n", CONC_MAX);
		free(v);
		r->v = NULL;
		return -1;
	}
	for (i = 0; i < r->n; i++) {
		v[i].s.container = -1;
		v[i].m.fd = -1;
	}
	if (set_param("precopy", "oneshot") || set_param("dirty", "hash") ||
	    set_param("rehash", "writeset") || set_param("final_image", "patch")) {
		fprintf(stderr, "gmig_bench: cannot set module parameters\n");
		goto out;
	}
	for (i = 0; i < r->n; i++) {
		if (conc_setup(&v[i], i, ws_mib, r->profile))
			goto out;
		v[i].bar = &bar;
		v[i].ready = &ready;
		v[i].n = r->n;
		v[i].sync = r->sync;
		v[i].rounds = rounds;
		v[i].round_ms = round_ms;
	}
	r->ws_bytes = v[0].m.mem - (1 << 20) - META_BYTES;
	for (i = 0; i < r->n; i++)
		if (wait_contexts(v[i].su, 2, 60000)) {
			fprintf(stderr, "gmig_bench: %s: the workload runs no context\n",
				v[i].su);
			goto out;
		}
	usleep(warmup_ms * 1000);

	pthread_barrier_init(&bar, NULL, r->n);
	for (started = 0; started < r->n; started++)
		if (pthread_create(&th[started], NULL, conc_thread, &v[started]))
			break;
	if (started < r->n) {
		/* The barrier counts N threads: without them all, none can go on. */
		fprintf(stderr, "gmig_bench: cannot start %d threads\n", r->n);
		abort();
	}
	for (i = 0; i < r->n; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&bar);

	r->lost = 0;
	r->stop_pages = 0;
	r->precopy_pages = 0;
	for (i = 0; i < r->n; i++) {
		struct conc_vgpu *c = &v[i];

		if (!c->ok) {
			fprintf(stderr, "gmig_bench: %s: %s failed\n", c->su, c->m.err);
			bad++;
			continue;
		}
		if (conc_finish(c))
			bad++;
		r->lost += c->lost;
		r->stop_pages += c->m.stop_pages;
		r->precopy_pages += c->m.precopy_pages;
		down[done] = c->down_ms;
		kdown[done++] = c->k_down_us / 1e3;
		if (c->m.t_start < first)
			first = c->m.t_start;
		if (c->m.t1 > last)
			last = c->m.t1;
		if (c->m.t1 < t1_min)
			t1_min = c->m.t1;
		if (c->m.t0 < t0_min)
			t0_min = c->m.t0;
		if (c->m.t0 > t0_max)
			t0_max = c->m.t0;
		if (c->k_wait_us / 1e3 > r->wait_max)
			r->wait_max = c->k_wait_us / 1e3;
		if (c->k_rehash_us / 1e3 > r->rehash_max)
			r->rehash_max = c->k_rehash_us / 1e3;
		if (c->k_image_us / 1e3 > r->image_max)
			r->image_max = c->k_image_us / 1e3;
	}
	/* The figures of the vGPUs whose source side completed. */
	if (done) {
		qsort(down, done, sizeof(down[0]), cmp_double);
		qsort(kdown, done, sizeof(kdown[0]), cmp_double);
		r->down_min = down[0];
		r->down_max = down[done - 1];
		r->down_med = median(down, done);
		r->kdown_max = kdown[done - 1];
		r->kdown_med = median(kdown, done);
		r->total_ms = last - first;
		r->spread = t0_max - t0_min;
		r->overlap = t1_min > t0_max;
	}
	r->ok = !bad && r->lost == 0;
out:
	for (i = 0; i < r->n; i++)
		conc_free(&v[i]);
	return r->ok ? 0 : -1;
}

/*
 * The workload's window is its partition less the bottom MiB: gmig-large
 * (128 MiB) holds working sets up to 127 MiB, gmig-xl (1 GiB, the largest
 * Gen9-style GGTT partition the sim has) up to 1023 MiB.
 */
static const char *type_for(unsigned long long mib)
{
	return mib < 127 ? "gmig-large" : "gmig-xl";
}

/*
 * -H N: gmig's hashing in place (module parameter hashing=inplace)
 * against the copy path it replaced (hashing=copy), in the same run: one
 * source vGPU of the -M working set with the workload running, N
 * repetitions, each measuring both parameters back to back, alternating
 * which goes first, so that the machine's drift falls on both. One
 * measurement is a DMA logging session with precopy=iterative dirty=hash
 * rehash=all, in which every pre-copy report re-hashes every tracked page:
 * a first report hashes them all, the second is measured (gmig's
 * precopy_report_us over its pages_rehashed_precopy: the time per page,
 * the report's fixed part included). A repetition's sample is copy's time
 * per page over inplace's; the line gives their median and spread, and
 * how many pages were really hashed in place (a run that fell back to
 * vfio_dma_rw() counts as copied).
 */
struct hash_sample {
	double us_per_page;
	long long pages, inplace, runs, spread, cpus;
};

static int hash_measure_with(struct gvfio *s, size_t mem, uint64_t *bm,
			     const char *param, const char *mode,
			     struct hash_sample *h)
{
	long long us0, pg0, ip0, rn0, sp0;
	int ret = -1;

	if (set_param(param, mode) || gvfio_log_start(s, IOVA, mem))
		return -1;
	if (gvfio_log_report(s, IOVA, mem, bm))
		goto out;
	us0 = sim_stat(US, "precopy_report_us");
	pg0 = sim_stat(US, "pages_rehashed_precopy");
	ip0 = sim_stat(US, "pages_hashed_inplace");
	rn0 = sim_stat(US, "pin_runs");
	sp0 = sim_stat(US, "rehash_rounds_spread");
	if (gvfio_log_report(s, IOVA, mem, bm))
		goto out;
	h->pages = sim_stat(US, "pages_rehashed_precopy") - pg0;
	h->inplace = sim_stat(US, "pages_hashed_inplace") - ip0;
	h->runs = sim_stat(US, "pin_runs") - rn0;
	h->spread = sim_stat(US, "rehash_rounds_spread") - sp0;
	h->cpus = sim_stat(US, "rehash_cpus");
	if (h->pages <= 0)
		goto out;
	h->us_per_page = (double)(sim_stat(US, "precopy_report_us") - us0) /
			 h->pages;
	ret = 0;
out:
	gvfio_log_stop(s);
	return ret;
}

static int hash_measure(struct gvfio *s, size_t mem, uint64_t *bm,
			const char *mode, struct hash_sample *h)
{
	return hash_measure_with(s, mem, bm, "hashing", mode, h);
}

/*
 * The vGPU -H and -P measure on: one source vGPU of the -M working set
 * (@ws_mib) with @profile's workload running, precopy=iterative
 * dirty=hash rehash=all, and a bitmap for its DMA logging reports.
 */
struct rehash_vgpu {
	struct gvfio s;
	size_t win, mem;
	uint64_t *bm;
};

static int rehash_vgpu_up(struct rehash_vgpu *v, unsigned long long ws_mib,
			  const char *profile)
{
	char cmd[160], path[128];

	v->win = (ws_mib << 20) + META_BYTES > XL_WINDOW ?
		 XL_WINDOW : (ws_mib << 20) + META_BYTES;
	v->mem = v->win + (1 << 20);
	v->bm = calloc((v->mem / PAGE + 63) / 64, 8);
	sim_remove_mdev(US);
	if (!v->bm)
		FAIL("no memory\n");
	if (set_param("precopy", "iterative") || set_param("dirty", "hash") ||
	    set_param("rehash", "all"))
		FAIL("cannot set module parameters\n");
	if (sim_create_mdev(type_for(ws_mib), US) || gvfio_open(&v->s, US) ||
	    gvfio_map_mem(&v->s, IOVA, v->mem))
		FAIL("cannot set up a %s vGPU with %zu MiB of DMA memory\n",
		     type_for(ws_mib), v->mem >> 20);
	snprintf(cmd, sizeof(cmd), "start %s base=%llu size=%zu", profile,
		 IOVA, v->win);
	snprintf(path, sizeof(path), "/sys/kernel/debug/gmig/%s/workload", US);
	if (sim_write_sysfs(path, cmd) || wait_contexts(US, 2, 60000))
		FAIL("the workload does not run (%s)\n", cmd);
	return 0;
out:
	return -1;
}

static void rehash_vgpu_down(struct rehash_vgpu *v)
{
	char path[128];

	if (v->s.container >= 0) {
		snprintf(path, sizeof(path), "/sys/kernel/debug/gmig/%s/workload", US);
		sim_write_sysfs(path, "stop");
		gvfio_close(&v->s);
	}
	sim_remove_mdev(US);
	free(v->bm);
	v->bm = NULL;
}

static int run_hashing(int reps, unsigned long long ws_mib,
		       const char *profile, FILE *jf)
{
	struct rehash_vgpu v = { .s = { .container = -1 } };
	double *ratio = calloc(reps, sizeof(double));
	double *cp = calloc(reps, sizeof(double));
	double *ip = calloc(reps, sizeof(double));
	long long pages = 0, inplace = 0, runs = 0;
	int i, ok = 0;

	if (!ratio || !cp || !ip || reps <= 0)
		FAIL("no memory\n");
	if (rehash_vgpu_up(&v, ws_mib, profile))
		goto out;
	for (i = 0; i < reps; i++) {
		struct hash_sample c = { 0 }, n = { 0 };
		int first_copy = i % 2 == 0;

		if (hash_measure(&v.s, v.mem, v.bm,
				 first_copy ? "copy" : "inplace",
				 first_copy ? &c : &n) ||
		    hash_measure(&v.s, v.mem, v.bm,
				 first_copy ? "inplace" : "copy",
				 first_copy ? &n : &c))
			FAIL("repetition %d: a report failed or hashed nothing\n", i);
		cp[i] = c.us_per_page;
		ip[i] = n.us_per_page;
		ratio[i] = n.us_per_page > 0 ? c.us_per_page / n.us_per_page : 0;
		pages += n.pages;
		inplace += n.inplace;
		runs += n.runs;
	}
	qsort(ratio, reps, sizeof(double), cmp_double);
	qsort(cp, reps, sizeof(double), cmp_double);
	qsort(ip, reps, sizeof(double), cmp_double);
	ok = inplace == pages;
	printf("\nhashing in place vs copy (hashing=inplace|copy), %.1f MiB %s, %d interleaved repetitions, a full re-hash of %lld pages each:\n",
	       (v.win - META_BYTES) / 1048576.0, profile, reps, pages / reps);
	printf("  copy %.3f us/page (spread %.3f-%.3f), inplace %.3f us/page (spread %.3f-%.3f); hashed in place %lld of %lld pages, %.1f pages per pinned run\n",
	       cp[reps / 2], cp[0], cp[reps - 1], ip[reps / 2], ip[0],
	       ip[reps - 1], inplace, pages, runs ? (double)inplace / runs : 0);
	printf("  copy/inplace time per page: median %.2fx, spread %.2f-%.2fx: target (>= 2x) %s%s\n",
	       ratio[reps / 2], ratio[0], ratio[reps - 1],
	       ratio[reps / 2] >= 2 ? "met" : "missed",
	       ok ? "" : "  FAILED (pages fell back to the copy path)");
	if (jf)
		fprintf(jf, "%s  {\"mode\": \"hashing\", \"ws_bytes\": %zu, \"profile\": \"%s\", \"reps\": %d, \"pages\": %lld, \"pages_inplace\": %lld, \"pin_runs\": %lld, \"copy_us_per_page_median\": %.4f, \"inplace_us_per_page_median\": %.4f, \"ratio_median\": %.3f, \"ratio_min\": %.3f, \"ratio_max\": %.3f, \"ok\": %s}",
			ftell(jf) > 2 ? ",\n" : "", (size_t)(v.win - META_BYTES), profile,
			reps, pages, inplace, runs, cp[reps / 2], ip[reps / 2],
			ratio[reps / 2], ratio[0], ratio[reps - 1],
			ok ? "true" : "false");
out:
	rehash_vgpu_down(&v);
	set_param("hashing", "inplace");
	free(ratio);
	free(cp);
	free(ip);
	return ok ? 0 : -1;
}

/*
 * -P N: a full re-hash spread over every online CPU (module parameter
 * rehash_cpus=0) against the same on one CPU (rehash_cpus=1), in the same
 * run, as -H measures hashing in place: one source vGPU of the -M working
 * set with the first -p profile's workload running, hashing=inplace
 * precopy=iterative dirty=hash rehash=all, N repetitions of both back to
 * back, alternating which goes first; each measurement is gmig's
 * precopy_report_us over pages_rehashed_precopy of the second report of a
 * DMA logging session, which re-hashes every tracked page through the
 * same scan as an unbounded stop-copy re-hash. A repetition's sample is
 * one CPU's time per page over all CPUs'; the line gives their median and
 * spread, the CPUs used and the rounds spread (a run whose "all CPUs"
 * measurement spread no round fails: the comparison would be void).
 */
static int run_spread(int reps, unsigned long long ws_mib,
		      const char *profile, FILE *jf)
{
	struct rehash_vgpu v = { .s = { .container = -1 } };
	double *ratio = calloc(reps, sizeof(double));
	double *one = calloc(reps, sizeof(double));
	double *all = calloc(reps, sizeof(double));
	long long pages = 0, spread = 0, cpus = 0;
	int i, ok = 0;

	if (!ratio || !one || !all || reps <= 0)
		FAIL("no memory\n");
	if (set_param("hashing", "inplace"))
		FAIL("cannot set module parameters\n");
	if (rehash_vgpu_up(&v, ws_mib, profile))
		goto out;
	for (i = 0; i < reps; i++) {
		struct hash_sample o = { 0 }, a = { 0 };
		int first_one = i % 2 == 0;

		if (hash_measure_with(&v.s, v.mem, v.bm, "rehash_cpus",
				      first_one ? "1" : "0",
				      first_one ? &o : &a) ||
		    hash_measure_with(&v.s, v.mem, v.bm, "rehash_cpus",
				      first_one ? "0" : "1",
				      first_one ? &a : &o))
			FAIL("repetition %d: a report failed or hashed nothing\n", i);
		one[i] = o.us_per_page;
		all[i] = a.us_per_page;
		ratio[i] = a.us_per_page > 0 ? o.us_per_page / a.us_per_page : 0;
		pages += a.pages;
		spread += a.spread;
		cpus = a.cpus;
		if (o.spread || o.cpus != 1)
			FAIL("repetition %d: rehash_cpus=1 used %lld CPUs\n", i, o.cpus);
	}
	qsort(ratio, reps, sizeof(double), cmp_double);
	qsort(one, reps, sizeof(double), cmp_double);
	qsort(all, reps, sizeof(double), cmp_double);
	ok = cpus < 2 || spread > 0;
	printf("\nre-hash on %lld CPUs vs one (rehash_cpus=0|1), %.1f MiB %s, %d interleaved repetitions, a full re-hash of %lld pages each:\n",
	       cpus, (v.win - META_BYTES) / 1048576.0, profile, reps, pages / reps);
	printf("  one CPU %.3f us/page (spread %.3f-%.3f), %lld CPUs %.3f us/page (spread %.3f-%.3f); %.1f rounds spread per re-hash\n",
	       one[reps / 2], one[0], one[reps - 1], cpus, all[reps / 2],
	       all[0], all[reps - 1], (double)spread / reps);
	printf("  one/all time per page: median %.2fx, spread %.2f-%.2fx: target (>= 1.6x with 2 CPUs) %s%s\n",
	       ratio[reps / 2], ratio[0], ratio[reps - 1],
	       cpus < 2 ? "not measurable (one CPU online)" :
	       ratio[reps / 2] >= 1.6 ? "met" : "missed",
	       ok ? "" : "  FAILED (no round was spread)");
	if (jf)
		fprintf(jf, "%s  {\"mode\": \"spread\", \"ws_bytes\": %zu, \"profile\": \"%s\", \"reps\": %d, \"cpus\": %lld, \"pages\": %lld, \"rounds_spread\": %lld, \"one_us_per_page_median\": %.4f, \"all_us_per_page_median\": %.4f, \"ratio_median\": %.3f, \"ratio_min\": %.3f, \"ratio_max\": %.3f, \"ok\": %s}",
			ftell(jf) > 2 ? ",\n" : "", (size_t)(v.win - META_BYTES), profile,
			reps, cpus, pages, spread, one[reps / 2], all[reps / 2],
			ratio[reps / 2], ratio[0], ratio[reps - 1],
			ok ? "true" : "false");
out:
	rehash_vgpu_down(&v);
	set_param("rehash_cpus", "0");
	free(ratio);
	free(one);
	free(all);
	return ok ? 0 : -1;
}

/* The single-vGPU matrix: sizes x profiles x variants. */
static int run_singles(const char *sizes, const char *profiles,
		       const char *vars, int rounds, int warmup_ms,
		       int round_ms, FILE *jf)
{
	char *list, *tok, *save, *ptok, *psave, *vtok, *vsave, *sl, *pl;
	unsigned int i;
	int bad = 0;

	printf("%-6s %-8s %-22s %8s %9s %8s %9s %9s %8s %9s %7s %8s %6s %9s %8s %8s %5s\n",
	       "ws_MiB", "profile", "variant", "tracked", "stop_pgs", "skipped",
	       "down_ms", "k_down_ms", "wait_ms", "rehash_ms", "img_ms",
	       "fixed_ms", "fixed", "memcpy_ms", "down/cp", "pre_pgs", "lost");
	sl = strdup(sizes);
	for (tok = strtok_r(sl, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		pl = strdup(profiles);
		for (ptok = strtok_r(pl, ",", &psave); ptok;
		     ptok = strtok_r(NULL, ",", &psave)) {
			list = strdup(vars);
			for (vtok = strtok_r(list, ",", &vsave); vtok;
			     vtok = strtok_r(NULL, ",", &vsave)) {
				struct result r = { .ws_mib = strtoull(tok, NULL, 0),
						    .profile = ptok };

				for (i = 0; i < ARRAY_SIZE(variants); i++)
					if (!strcmp(variants[i].name, vtok))
						r.v = &variants[i];
				if (!r.v) {
					fprintf(stderr, "unknown variant %s\n", vtok);
					exit(2);
				}
				if (run_one(&r, type_for(r.ws_mib), rounds, warmup_ms,
					    round_ms))
					bad++;
				printf("%-6.1f %-8s %-22s %8lld %9lld %8lld %9.2f %9.2f %8.2f %9.2f %7.2f %8.2f %5.1f%% %9.2f %7.1f%% %8lld %5lld%s\n",
				       r.ws_bytes / 1048576.0, r.profile, r.v->label, r.tracked,
				       r.stop_pages, r.skipped, r.downtime_ms,
				       r.k_downtime_us / 1e3, r.k_wait_us / 1e3,
				       r.k_rehash_us / 1e3, r.k_image_us / 1e3,
				       fixed_ms(&r),
				       r.downtime_ms > 0 ? 100 * fixed_ms(&r) / r.downtime_ms : 0,
				       r.memcpy_ms,
				       r.memcpy_ms > 0 ? 100 * r.downtime_ms / r.memcpy_ms : 0,
				       r.precopy_pages, r.lost, r.ok ? "" : "  FAILED");
				fflush(stdout);
				if (jf)
					fprintf(jf, "%s  {\"mode\": \"single\", \"ws_mib\": %llu, \"ws_bytes\": %llu, \"profile\": \"%s\", \"variant\": \"%s\", \"precopy\": \"%s\", \"dirty\": \"%s\", \"rehash\": \"%s\", \"pages_tracked\": %lld, \"stopcopy_pages\": %lld, \"rehash_skipped\": %lld, \"rehashed_stopcopy\": %lld, \"downtime_ms\": %.3f, \"kernel_downtime_us\": %lld, \"rehash_stopcopy_us\": %lld, \"quiesce_wait_us\": %lld, \"image_us\": %lld, \"final_image\": \"%s\", \"copy_ms\": %.3f, \"fixed_ms\": %.3f, \"memcpy_ms\": %.3f, \"precopy_pages\": %lld, \"contexts\": %lld, \"faults\": %lld, \"lost_pages\": %lld, \"ok\": %s}",
						ftell(jf) > 2 ? ",\n" : "",
						r.ws_mib, r.ws_bytes, r.profile, r.v->name, r.v->precopy,
						r.v->dirty, r.v->rehash, r.tracked, r.stop_pages,
						r.skipped, r.rehashed, r.downtime_ms,
						r.k_downtime_us, r.k_rehash_us, r.k_wait_us,
						r.k_image_us, r.v->final_image, r.copy_ms,
						fixed_ms(&r), r.memcpy_ms,
						r.precopy_pages, r.contexts, r.faults, r.lost,
						r.ok ? "true" : "false");
			}
			free(list);
		}
		free(pl);
	}
	free(sl);
	/* The variants' parameters do not outlive them. */
	set_param("final_image", "patch");
	return bad;
}

#define FAIL_AT(step) do { err = step; goto out; } while (0)

/* -g: one migration of the REINIT runs, its figures. */
struct reinit_run {
	double down_ms, final_bytes, image_ms, reinit_bytes;
};

#define REINIT_ENTRIES 8192	/* half of gmig-small's 16384 */

static const char *reinit_one(struct sim *s, struct sim *d, bool v2,
			      unsigned int salt, struct reinit_run *out)
{
	uint64_t initial = 0, dirty = 0;
	char *img = NULL;
	size_t len = 0, cap = 0, pre;
	const char *err = NULL;
	uint32_t flags = 0;
	unsigned int i;
	double t0;
	int fd = -1;

	if (v2 && gvfio_precopy_info_v2(&s->v))
		return "PRECOPY_INFOv2 opt-in";
	if (gvfio_mig_set_state(&s->v, VFIO_DEVICE_STATE_PRE_COPY, &fd) || fd < 0)
		return "PRE_COPY";
	if (drain(fd, &img, &len, &cap))
		FAIL_AT("pre-copy read");
	if (sim_rewrite_ggtt(s, 0, REINIT_ENTRIES, salt))
		FAIL_AT("GGTT rewrite");
	pre = len;
	if (gvfio_precopy_info_flags(fd, &initial, &dirty, &flags))
		FAIL_AT("PRECOPY_INFO");
	if (!!(flags & VFIO_PRECOPY_INFO_REINIT) != v2 || !initial != !v2)
		FAIL_AT("REINIT reported to a VMM that did not opt in, or not to one that did");
	if (drain(fd, &img, &len, &cap))
		FAIL_AT("new initial data read");
	out->reinit_bytes = len - pre;
	pre = len;
	if (gvfio_mig_set_state(&s->v, VFIO_DEVICE_STATE_PRE_COPY_P2P, NULL))
		FAIL_AT("PRE_COPY_P2P");
	t0 = now_ms();
	if (gvfio_mig_set_state(&s->v, VFIO_DEVICE_STATE_STOP_COPY, NULL))
		FAIL_AT("STOP_COPY");
	if (drain(fd, &img, &len, &cap))
		FAIL_AT("stop-copy read");
	out->down_ms = now_ms() - t0;
	out->final_bytes = len - pre;
	out->image_ms = sim_stat(US, "image_us") / 1e3;
	err = resume(&d->v, img, len);
	for (i = 0; !err && i < REINIT_ENTRIES; i += 127)
		if (sim_ggtt_entry(s, i) != sim_ggtt_entry(d, i))
			err = "the destination's GGTT differs";
out:
	if (fd >= 0)
		close(fd);
	gvfio_mig_set_state(&s->v, VFIO_DEVICE_STATE_RUNNING, NULL);
	gvfio_mig_set_state(&d->v, VFIO_DEVICE_STATE_RUNNING, NULL);
	free(img);
	return err;
}

static void spread3(const double *x, int n, double *med, double *lo, double *hi)
{
	double *c = malloc(n * sizeof(*c));

	*med = *lo = *hi = 0;
	if (!c || !n) {
		free(c);
		return;
	}
	memcpy(c, x, n * sizeof(*c));
	qsort(c, n, sizeof(*c), cmp_double);
	*med = median(c, n);
	*lo = c[0];
	*hi = c[n - 1];
	free(c);
}

/* -g N: the REINIT runs, N of each kind, alternating. */
static int run_reinit(int reps, FILE *jf)
{
	struct reinit_run *r = calloc(2 * reps, sizeof(*r));
	double x[2][4][64];
	const char *what[4] = { "final_bytes", "down_ms", "image_ms", "reinit_bytes" };
	struct sim s, d;
	int i, k, v, bad = 0;

	if (!r || reps > 64)
		return 1;
	sim_remove_mdev(US);
	sim_remove_mdev(UD);
	if (set_param("precopy", "oneshot") || sim_create_mdev("gmig-small", US) ||
	    sim_create_mdev("gmig-small", UD) || sim_open(&d, UD, IOVA, 8 << 20)) {
		fprintf(stderr, "gmig_bench: cannot set up the REINIT runs\n");
		free(r);
		return 1;
	}
	for (i = 0; i < 2 * reps; i++) {
		const char *err;

		v = i % 2;
		if (sim_open(&s, US, IOVA, 8 << 20)) {
			fprintf(stderr, "gmig_bench: cannot open the source\n");
			bad++;
			break;
		}
		err = reinit_one(&s, &d, v, i + 1, &r[i]);
		gvfio_close(&s.v);
		if (err) {
			fprintf(stderr, "gmig_bench: REINIT run %d (%s): %s\n", i,
				v ? "opted in" : "no opt-in", err);
			bad++;
		}
		x[v][0][i / 2] = r[i].final_bytes;
		x[v][1][i / 2] = r[i].down_ms;
		x[v][2][i / 2] = r[i].image_ms;
		x[v][3][i / 2] = r[i].reinit_bytes;
	}
	gvfio_close(&d.v);
	sim_remove_mdev(US);
	sim_remove_mdev(UD);
	printf("\nREINIT: gmig-small, %d of its GGTT entries rewritten after the pre-copy image, %d runs each\n",
	       REINIT_ENTRIES, reps);
	printf("%-14s %28s %28s %8s\n", "figure", "no opt-in: median [min-max]",
	       "REINIT: median [min-max]", "ratio");
	for (k = 0; k < 4; k++) {
		double m[2], lo[2], hi[2];

		for (v = 0; v < 2; v++)
			spread3(x[v][k], reps, &m[v], &lo[v], &hi[v]);
		printf("%-14s %10.2f [%6.2f-%8.2f] %10.2f [%6.2f-%8.2f] %8.2f\n",
		       what[k], m[0], lo[0], hi[0], m[1], lo[1], hi[1],
		       m[1] > 0 ? m[0] / m[1] : 0);
		if (jf)
			fprintf(jf, "%s  {\"mode\": \"reinit\", \"figure\": \"%s\", \"runs\": %d, \"plain_median\": %.3f, \"plain_min\": %.3f, \"plain_max\": %.3f, \"reinit_median\": %.3f, \"reinit_min\": %.3f, \"reinit_max\": %.3f}",
				ftell(jf) > 2 ? ",\n" : "", what[k], reps, m[0], lo[0],
				hi[0], m[1], lo[1], hi[1]);
	}
	free(r);
	return bad;
}

static void conc_json(FILE *jf, const struct conc_result *r)
{
	static const char *const keys[] = {
		"downtime_ms", "kernel_downtime_us", "quiesce_wait_us",
		"rehash_stopcopy_us", "image_us", "stopcopy_pages",
		"precopy_pages", "lost_pages",
	};
	unsigned int k;
	int i;

	fprintf(jf, "%s  {\"mode\": \"concurrent\", \"vgpus\": %d, \"type\": \"%s\", \"ws_bytes\": %llu, \"profile\": \"%s\", \"variant\": \"writeset\", \"stop\": \"%s\", \"total_ms\": %.3f, \"stop_spread_ms\": %.3f, \"overlap\": %s, \"ok\": %s",
		ftell(jf) > 2 ? ",\n" : "", r->n, CONC_TYPE, r->ws_bytes,
		r->profile, r->sync ? "sync" : "own", r->total_ms, r->spread,
		r->overlap ? "true" : "false", r->ok ? "true" : "false");
	for (k = 0; k < ARRAY_SIZE(keys); k++) {
		fprintf(jf, ", \"%s\": [", keys[k]);
		for (i = 0; i < r->n; i++) {
			const struct conc_vgpu *c = &r->v[i];
			double x[] = {
				c->down_ms, c->k_down_us, c->k_wait_us, c->k_rehash_us,
				c->k_image_us, c->m.stop_pages, c->m.precopy_pages,
				c->lost,
			};

			fprintf(jf, "%s%.3f", i ? ", " : "", x[k]);
		}
		fprintf(jf, "]");
	}
	fprintf(jf, "}");
}

/*
 * Concurrent runs: profiles x counts x stop modes. max/1 and
 * total/1 compare with the run of 1 vGPU of the same profile in this
 * program's run.
 */
static int run_concurrents(const char *counts, unsigned long long ws_mib,
			   const char *profiles, int rounds, int warmup_ms,
			   int round_ms, int modes, FILE *jf)
{
	char *pl, *ptok, *psave, *cl, *ctok, *csave;
	int bad = 0, sync;

	printf("\nconcurrent migrations (%s, writeset), per-vGPU device downtime and total time:\n",
	       CONC_TYPE);
	printf("%-5s %-4s %-6s %-8s %8s %8s %8s %9s %8s %9s %7s %8s %8s %7s %3s %8s %6s %7s %4s\n",
	       "vgpus", "stop", "ws_MiB", "profile", "down_min", "down_med",
	       "down_max", "k_dn_max", "wait_mx", "rehash_mx", "img_mx",
	       "stop_pgs", "pre_pgs", "t0_sprd", "ovl", "total_ms", "max/1",
	       "total/1", "lost");
	pl = strdup(profiles);
	for (ptok = strtok_r(pl, ",", &psave); ptok;
	     ptok = strtok_r(NULL, ",", &psave)) {
		double one_down = 0, one_total = 0;

		cl = strdup(counts);
		for (ctok = strtok_r(cl, ",", &csave); ctok;
		     ctok = strtok_r(NULL, ",", &csave)) {
			for (sync = 0; sync <= 1; sync++) {
				struct conc_result r = { .profile = ptok, .n = atoi(ctok),
							 .sync = sync };
				char mx[16] = "-", tt[16] = "-";

				/* One vGPU stops alone either way: run once. */
				if (r.n == 0 || (sync && r.n == 1) ||
				    (!(modes & (1 << sync)) && r.n != 1))
					continue;
				if (run_concurrent(&r, ws_mib, rounds, warmup_ms, round_ms))
					bad++;
				if (r.ok && r.n == 1) {
					one_down = r.down_max;
					one_total = r.total_ms;
				}
				if (r.ok && one_down > 0) {
					snprintf(mx, sizeof(mx), "%.2fx", r.down_max / one_down);
					snprintf(tt, sizeof(tt), "%.2fx", r.total_ms / one_total);
				}
				printf("%-5d %-4s %-6.1f %-8s %8.2f %8.2f %8.2f %9.2f %8.2f %9.2f %7.2f %8lld %8lld %7.1f %3s %8.1f %6s %7s %4lld%s\n",
				       r.n, sync ? "sync" : "own", r.ws_bytes / 1048576.0,
				       r.profile, r.down_min, r.down_med, r.down_max,
				       r.kdown_max, r.wait_max, r.rehash_max, r.image_max,
				       r.stop_pages, r.precopy_pages, r.spread,
				       r.overlap ? "y" : "n", r.total_ms, mx, tt, r.lost,
				       r.ok ? "" : "  FAILED");
				fflush(stdout);
				if (jf && r.v)
					conc_json(jf, &r);
				free(r.v);
			}
		}
		free(cl);
	}
	free(pl);
	return bad;
}

int main(int argc, char **argv)
{
	const char *sizes = "64,256,1024", *profiles = "desktop,game";
	const char *vars = "writeset,built,gmig,naive", *json = NULL;
	const char *counts = "1,3,7";
	unsigned long long conc_mib = 64, hash_mib = 64;
	int hash_reps = 7, spread_reps = 0;
	int modes = STOP_OWN | STOP_SYNC;
	int rounds = 3, warmup_ms = 1000, round_ms = 300, opt, bad = 0;
	int reinit_reps = 0;
	FILE *jf = NULL;

	while ((opt = getopt(argc, argv, "s:p:v:r:w:i:j:c:m:S:g:X:H:M:P:")) != -1) {
		switch (opt) {
		case 's':
			sizes = optarg;
			break;
		case 'p':
			profiles = optarg;
			break;
		case 'v':
			vars = optarg;
			break;
		case 'r':
			rounds = atoi(optarg);
			break;
		case 'w':
			warmup_ms = atoi(optarg);
			break;
		case 'i':
			round_ms = atoi(optarg);
			break;
		case 'j':
			json = optarg;
			break;
		case 'c':
			counts = optarg;
			break;
		case 'm':
			conc_mib = strtoull(optarg, NULL, 0);
			break;
		case 'g':
			reinit_reps = atoi(optarg);
			if (reinit_reps < 0 || reinit_reps > 64) {
				fprintf(stderr, "-g: 0 to 64 runs\n");
				return 2;
			}
			break;
		case 'H':
			hash_reps = atoi(optarg);
			break;
		case 'M':
			hash_mib = strtoull(optarg, NULL, 0);
			break;
		case 'P':
			spread_reps = atoi(optarg);
			break;
		case 'S':
			modes = (strstr(optarg, "own") ? STOP_OWN : 0) |
				(strstr(optarg, "sync") ? STOP_SYNC : 0);
			break;
		case 'X':
			inject = !strcmp(optarg, "lose") ? INJECT_LOSE :
				 !strcmp(optarg, "corrupt") ? INJECT_CORRUPT : -1;
			if (inject < 0) {
				fprintf(stderr, "-X lose or -X corrupt\n");
				return 2;
			}
			break;
		default:
			fprintf(stderr, "usage: %s [-s MiB,..] [-p profile,..] [-v writeset,built,gmig,naive] [-r rounds] [-w ms] [-i ms] [-j file] [-c N,..] [-m MiB] [-S own,sync] [-g N] [-H reps] [-M MiB] [-P reps] [-X lose|corrupt]\n",
				argv[0]);
			return 2;
		}
	}
	if (access("/sys/class/mdev_bus/gmig", F_OK)) {
		fprintf(stderr, "gmig_bench: gmig.ko is not loaded\n");
		return 4;
	}
	if (json) {
		jf = fopen(json, "w");
		if (!jf) {
			perror(json);
			return 2;
		}
		fprintf(jf, "[\n");
	}
	if (strcmp(sizes, "0"))
		bad += run_singles(sizes, profiles, vars, rounds, warmup_ms,
				   round_ms, jf);
	if (hash_reps > 0) {
		char *pl = strdup(profiles), *save = NULL;

		bad += run_hashing(hash_reps, hash_mib,
				   pl ? strtok_r(pl, ",", &save) : "desktop", jf);
		free(pl);
	}
	if (spread_reps > 0) {
		char *pl = strdup(profiles), *save = NULL;

		bad += run_spread(spread_reps, hash_mib,
				  pl ? strtok_r(pl, ",", &save) : "desktop", jf);
		free(pl);
	}
	if (strcmp(counts, "0"))
		bad += run_concurrents(counts, conc_mib, profiles, rounds,
				       warmup_ms, round_ms, modes, jf);
	if (reinit_reps)
		bad += run_reinit(reinit_reps, jf);
	if (jf) {
		fprintf(jf, "\n]\n");
		fclose(jf);
	}
	set_param("precopy", "oneshot");
	set_param("dirty", "hash");
	set_param("rehash", "writeset");
	printf("gmig_bench: %s\n", bad ? "FAILED" : "done");
	return bad ? 1 : 0;
}

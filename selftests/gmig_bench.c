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
 * Usage: gmig_bench [-s MiB,MiB,...] [-p desktop,game] [-v VARIANTS]
 *                   [-r rounds] [-w warmup_ms] [-i round_ms] [-j out.json]
 * Variants: writeset (oneshot/hash, rehash=writeset), gmig (oneshot/hash,
 * rehash=all), naive (iterative/all). Exits non-zero if a page was lost
 * or a step failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	const char *name, *label, *precopy, *dirty, *rehash;
};

static const struct variant variants[] = {
	{ "writeset", "oneshot/hash+writeset", "oneshot", "hash", "writeset" },
	{ "gmig", "oneshot/hash (gMig)", "oneshot", "hash", "all" },
	{ "naive", "iterative/all (naive)", "iterative", "all", "all" },
};

struct result {
	unsigned long long ws_mib, ws_bytes;
	const char *profile;
	const struct variant *v;
	long long tracked, stop_pages, precopy_pages, skipped, rehashed;
	long long k_downtime_us, k_rehash_us, k_wait_us, k_image_us, contexts, faults;
	double downtime_ms, memcpy_ms;
	long long lost;
	int ok;
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int set_param(const char *name, const char *val)
{
	char path[128];

	snprintf(path, sizeof(path), "/sys/module/gmig/parameters/%s", name);
	return sim_write_sysfs(path, val);
}

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

#define FAIL(...) do { fprintf(stderr, "gmig_bench: " __VA_ARGS__); goto out; } while (0)

static int run_one(struct result *r, const char *type, int rounds,
		   int warmup_ms, int round_ms)
{
	size_t ws = r->ws_mib << 20;
	size_t win = ws + META_BYTES > XL_WINDOW ? XL_WINDOW : ws + META_BYTES;
	size_t mem = win + (1 << 20);
	size_t pages = mem / PAGE, words = (pages + 63) / 64;
	struct gvfio s = { .container = -1 }, d = { .container = -1 };
	uint64_t *bm = calloc(words, 8);
	char cmd[160], path[128];
	char *img = NULL;
	size_t len = 0, cap = 0, off;
	double t0;
	int fd = -1, dfd = -1, i;
	long long n;

	ws = win - META_BYTES;
	r->ws_bytes = ws;
	r->ok = 0;
	r->lost = -1;
	sim_remove_mdev(US);
	sim_remove_mdev(UD);
	if (!bm)
		FAIL("no memory\n");
	if (set_param("precopy", r->v->precopy) || set_param("dirty", r->v->dirty) ||
	    set_param("rehash", r->v->rehash))
		FAIL("cannot set module parameters\n");
	if (sim_create_mdev(type, US) || sim_create_mdev(type, UD))
		FAIL("cannot create two %s vGPUs\n", type);
	if (gvfio_open(&s, US) || gvfio_open(&d, UD))
		FAIL("cannot open the vGPUs\n");
	if (gvfio_map_mem(&s, IOVA, mem) || gvfio_map_mem(&d, IOVA, mem))
		FAIL("cannot map %zu MiB of DMA memory twice\n", mem >> 20);
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

	/* Dirty logging, first report, pre-copy image, first pass. */
	if (gvfio_log_start(&s, IOVA, mem))
		FAIL("DMA_LOGGING_START\n");
	if (gvfio_log_report(&s, IOVA, mem, bm))
		FAIL("first report\n");
	copy_reported(bm, pages, d.mem, s.mem);
	if (gvfio_mig_set_state(&s, VFIO_DEVICE_STATE_PRE_COPY, &fd) || fd < 0)
		FAIL("PRE_COPY\n");
	if (drain(fd, &img, &len, &cap))
		FAIL("pre-copy read\n");
	for (off = 0; off < mem; off += 1 << 20)
		memcpy((char *)d.mem + off, (char *)s.mem + off,
		       mem - off < (1 << 20) ? mem - off : 1 << 20);
	r->precopy_pages = 0;
	for (i = 0; i < rounds; i++) {
		usleep(round_ms * 1000);
		memset(bm, 0, words * 8);
		if (gvfio_log_report(&s, IOVA, mem, bm))
			FAIL("pre-copy report\n");
		r->precopy_pages += copy_reported(bm, pages, d.mem, s.mem);
	}

	/* Stop (as QEMU: P2P first): the device downtime starts at STOP_COPY. */
	if (gvfio_mig_set_state(&s, VFIO_DEVICE_STATE_PRE_COPY_P2P, NULL))
		FAIL("PRE_COPY_P2P\n");
	t0 = now_ms();
	if (gvfio_mig_set_state(&s, VFIO_DEVICE_STATE_STOP_COPY, NULL))
		FAIL("STOP_COPY\n");
	memset(bm, 0, words * 8);
	if (gvfio_log_report(&s, IOVA, mem, bm))
		FAIL("stop-copy report\n");
	r->stop_pages = copy_reported(bm, pages, d.mem, s.mem);
	if (drain(fd, &img, &len, &cap))
		FAIL("stop-copy read\n");
	r->downtime_ms = now_ms() - t0;

	/* No page lost: the stopped source's window is the destination's. */
	r->lost = 0;
	for (off = 0; off < mem; off += PAGE)
		r->lost += !!memcmp((char *)s.mem + off, (char *)d.mem + off, PAGE);

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

	/* The destination takes the stream. */
	if (gvfio_mig_set_state(&d, VFIO_DEVICE_STATE_RESUMING, &dfd) || dfd < 0)
		FAIL("RESUMING\n");
	for (off = 0; off < len;) {
		ssize_t w = write(dfd, img + off, len - off);

		if (w <= 0)
			FAIL("stream write: %s\n", strerror(errno));
		off += w;
	}
	if (gvfio_mig_set_state(&d, VFIO_DEVICE_STATE_STOP, NULL))
		FAIL("destination rejected the stream (RESUMING -> STOP)\n");
	r->ok = r->lost == 0 && r->faults == 0;
out:
	if (dfd >= 0)
		close(dfd);
	if (fd >= 0)
		close(fd);
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
	free(bm);
	free(img);
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

int main(int argc, char **argv)
{
	const char *sizes = "64,256,1024", *profiles = "desktop,game";
	const char *vars = "writeset,gmig,naive", *json = NULL;
	int rounds = 3, warmup_ms = 1000, round_ms = 300, opt, bad = 0;
	char *list, *tok, *save, *ptok, *psave, *vtok, *vsave, *sl, *pl;
	FILE *jf = NULL;
	unsigned int i;

	while ((opt = getopt(argc, argv, "s:p:v:r:w:i:j:")) != -1) {
		switch (opt) {
		case 's': sizes = optarg; break;
		case 'p': profiles = optarg; break;
		case 'v': vars = optarg; break;
		case 'r': rounds = atoi(optarg); break;
		case 'w': warmup_ms = atoi(optarg); break;
		case 'i': round_ms = atoi(optarg); break;
		case 'j': json = optarg; break;
		default:
			fprintf(stderr, "usage: %s [-s MiB,..] [-p profile,..] [-v writeset,gmig,naive] [-r rounds] [-w ms] [-i ms] [-j file]\n",
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
	printf("%-6s %-8s %-22s %8s %9s %8s %9s %9s %8s %9s %7s %9s %8s %8s %5s\n",
	       "ws_MiB", "profile", "variant", "tracked", "stop_pgs", "skipped",
	       "down_ms", "k_down_ms", "wait_ms", "rehash_ms", "img_ms",
	       "memcpy_ms", "down/cp", "pre_pgs", "lost");
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
					return 2;
				}
				if (run_one(&r, type_for(r.ws_mib), rounds, warmup_ms,
					    round_ms))
					bad++;
				printf("%-6.1f %-8s %-22s %8lld %9lld %8lld %9.2f %9.2f %8.2f %9.2f %7.2f %9.2f %7.1f%% %8lld %5lld%s\n",
				       r.ws_bytes / 1048576.0, r.profile, r.v->label, r.tracked,
				       r.stop_pages, r.skipped, r.downtime_ms,
				       r.k_downtime_us / 1e3, r.k_wait_us / 1e3,
				       r.k_rehash_us / 1e3, r.k_image_us / 1e3,
				       r.memcpy_ms,
				       r.memcpy_ms > 0 ? 100 * r.downtime_ms / r.memcpy_ms : 0,
				       r.precopy_pages, r.lost, r.ok ? "" : "  FAILED");
				fflush(stdout);
				if (jf)
					fprintf(jf, "%s  {\"ws_mib\": %llu, \"ws_bytes\": %llu, \"profile\": \"%s\", \"variant\": \"%s\", \"precopy\": \"%s\", \"dirty\": \"%s\", \"rehash\": \"%s\", \"pages_tracked\": %lld, \"stopcopy_pages\": %lld, \"rehash_skipped\": %lld, \"rehashed_stopcopy\": %lld, \"downtime_ms\": %.3f, \"kernel_downtime_us\": %lld, \"rehash_stopcopy_us\": %lld, \"quiesce_wait_us\": %lld, \"image_us\": %lld, \"memcpy_ms\": %.3f, \"precopy_pages\": %lld, \"contexts\": %lld, \"faults\": %lld, \"lost_pages\": %lld, \"ok\": %s}",
						ftell(jf) > 2 ? ",\n" : "",
						r.ws_mib, r.ws_bytes, r.profile, r.v->name, r.v->precopy,
						r.v->dirty, r.v->rehash, r.tracked, r.stop_pages,
						r.skipped, r.rehashed, r.downtime_ms,
						r.k_downtime_us, r.k_rehash_us, r.k_wait_us,
						r.k_image_us, r.memcpy_ms,
						r.precopy_pages, r.contexts, r.faults, r.lost,
						r.ok ? "true" : "false");
			}
			free(list);
		}
		free(pl);
	}
	free(sl);
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

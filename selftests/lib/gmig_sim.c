// SPDX-License-Identifier: GPL-2.0
/* Guest-driver-like helpers for the gmig sim vGPU (see gmig_sim.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gmig_sim.h"

int sim_write_sysfs(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	close(fd);
	if (n < 0)
		return -errno;
	return n == (ssize_t)strlen(val) ? 0 : -EIO;
}

int sim_set_param(const char *name, const char *val)
{
	char path[128];

	snprintf(path, sizeof(path), "/sys/module/gmig/parameters/%s", name);
	return sim_write_sysfs(path, val);
}

long long sim_stat(const char *uuid, const char *key)
{
	char path[128], line[256];
	size_t klen = strlen(key);
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/kernel/debug/gmig/%s/stats", uuid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, klen) && line[klen] == ':')
			v = atoll(line + klen + 1);
	fclose(f);
	return v;
}

int sim_create_mdev(const char *type, const char *uuid)
{
	char path[256];

	snprintf(path, sizeof(path),
		 "/sys/class/mdev_bus/gmig/mdev_supported_types/%s/create",
		 type);
	return sim_write_sysfs(path, uuid);
}

int sim_remove_mdev(const char *uuid)
{
	char path[256];

	snprintf(path, sizeof(path), "/sys/bus/mdev/devices/%s/remove", uuid);
	return sim_write_sysfs(path, "1");
}

uint32_t sim_reg(struct sim *s, uint64_t off)
{
	uint32_t v = 0xdeadbeef;

	gvfio_read32(&s->v, VFIO_PCI_BAR0_REGION_INDEX, off, &v);
	return v;
}

uint64_t sim_gaddr(struct sim *s, unsigned int page)
{
	return s->gbase + (uint64_t)page * 4096;
}

void *sim_ptr(struct sim *s, unsigned int page)
{
	return (char *)s->v.mem + (size_t)page * 4096;
}

int sim_map_ggtt(struct sim *s)
{
	unsigned int i;
	int ret;

	for (i = 0; i < SIM_PAGES && (uint64_t)i * 4096 < s->v.mem_size; i++) {
		uint64_t pte = (s->v.mem_iova + (uint64_t)i * 4096) | 1;
		uint64_t off = SIM_GGTT_OFFSET + (sim_gaddr(s, i) / 4096) * 8;

		ret = gvfio_write64(&s->v, VFIO_PCI_BAR0_REGION_INDEX, off, pte);
		if (ret)
			return ret;
	}
	return 0;
}

int sim_rewrite_ggtt(struct sim *s, unsigned int first, unsigned int n,
		     unsigned int salt)
{
	unsigned int i, pages = s->v.mem_size / 4096;
	int ret;

	if (!pages)
		return -EINVAL;
	for (i = first; i < first + n; i++) {
		uint64_t page = (i + salt) % pages;
		uint64_t pte = (s->v.mem_iova + page * 4096) | 1;
		uint64_t off = SIM_GGTT_OFFSET + (sim_gaddr(s, i) / 4096) * 8;

		ret = gvfio_write64(&s->v, VFIO_PCI_BAR0_REGION_INDEX, off, pte);
		if (ret)
			return ret;
	}
	return 0;
}

uint64_t sim_ggtt_entry(struct sim *s, unsigned int page)
{
	uint64_t off = SIM_GGTT_OFFSET + (sim_gaddr(s, page) / 4096) * 8, e = 0;

	gvfio_region_rw(&s->v, VFIO_PCI_BAR0_REGION_INDEX, off, &e, 8, false);
	return e;
}

int sim_open(struct sim *s, const char *uuid, uint64_t iova, uint64_t mem_size)
{
	int ret;

	memset(s, 0, sizeof(*s));
	ret = gvfio_open(&s->v, uuid);
	if (ret)
		return ret;
	ret = gvfio_map_mem(&s->v, iova, mem_size);
	if (ret)
		goto err;
	s->completed = sim_reg(s, SIM_STATUS_LO) >> 16;
	s->gbase = sim_reg(s, SIM_PVINFO_GM_BASE);
	s->gsize = sim_reg(s, SIM_PVINFO_GM_SIZE);
	if (!s->gbase || !s->gsize) {
		ret = -ENODEV;
		goto err;
	}
	ret = sim_map_ggtt(s);
	if (ret)
		goto err;
	return 0;
err:
	gvfio_close(&s->v);
	return ret;
}

void sim_close(struct sim *s)
{
	gvfio_close(&s->v);
}

int sim_submit(struct sim *s, const uint32_t *dw, unsigned int n,
	       uint32_t ctx_id)
{
	uint32_t *ring = sim_ptr(s, SIM_PAGE_RING);
	uint32_t *ctx = sim_ptr(s, SIM_PAGE_CTX);
	uint32_t head = s->ring_tail;
	unsigned int i;
	int ret = 0;

	for (i = 0; i < n; i++) {
		ring[s->ring_tail / 4] = dw[i];
		s->ring_tail = (s->ring_tail + 4) % 8192;
	}
	ctx[0] = SIM_LRC_MAGIC;
	ctx[1] = (uint32_t)sim_gaddr(s, SIM_PAGE_RING);
	ctx[2] = 8192;
	ctx[3] = head;
	ctx[4] = s->ring_tail;
	ctx[5] = 0;
	ctx[6] = 0;
	/* ELSP: element 1 (high, low), then element 0 (high, low). */
	ret |= gvfio_write32(&s->v, 0, SIM_ELSP, 0);
	ret |= gvfio_write32(&s->v, 0, SIM_ELSP, 0);
	ret |= gvfio_write32(&s->v, 0, SIM_ELSP, ctx_id);
	ret |= gvfio_write32(&s->v, 0, SIM_ELSP,
			     (uint32_t)sim_gaddr(s, SIM_PAGE_CTX));
	return ret;
}

int sim_wait(struct sim *s)
{
	struct timespec ts = { 0, 2 * 1000 * 1000 };
	uint32_t want = (s->completed + 1) & 0xffff;
	int i;

	for (i = 0; i < 1000; i++) {
		if ((sim_reg(s, SIM_STATUS_LO) >> 16) == want) {
			s->completed = want;
			return 0;
		}
		nanosleep(&ts, NULL);
	}
	return -ETIMEDOUT;
}

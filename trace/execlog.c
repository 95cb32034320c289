// SPDX-License-Identifier: GPL-2.0
/*
 * execlog: an LD_PRELOAD library that records, for every i915 execbuffer a
 * program submits, its object list as the driver gave it: each buffer's
 * handle, GPU address, size and flags (EXEC_OBJECT_WRITE among them).
 * scripts/trace.sh loads it in front of Mesa's intel_dump_gpu and stub i915
 * device; the log goes to the file named by GMIG_EXECLOG, one record per
 * execbuffer, flushed at once (a program that crashes leaves whole records):
 *
 *   E <index> <ctx> <flags> <batch> <start> <len> <count>
 *   B <handle> <offset> <size> <flags>        (count lines)
 *
 * Numbers are decimal except flags and offset (0x hex). <batch> is the
 * index of the batch buffer in the list (I915_EXEC_BATCH_FIRST or last).
 * A buffer whose size the library did not see created (a dma-buf import)
 * has size 0.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <libdrm/drm.h>
#include <libdrm/i915_drm.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *log_file;
static uint64_t *sizes;		/* by GEM handle */
static size_t nsizes;
static uint64_t execs;

static void set_size(uint32_t handle, uint64_t size)
{
	if (handle >= nsizes) {
		size_t n = (size_t)handle * 2 + 64;
		uint64_t *s = realloc(sizes, n * sizeof(*s));

		if (!s)
			return;
		memset(s + nsizes, 0, (n - nsizes) * sizeof(*s));
		sizes = s;
		nsizes = n;
	}
	sizes[handle] = size;
}

static uint64_t get_size(uint32_t handle)
{
	return handle < nsizes ? sizes[handle] : 0;
}

static void log_exec(const struct drm_i915_gem_execbuffer2 *eb)
{
	const struct drm_i915_gem_exec_object2 *obj =
		(const void *)(uintptr_t)eb->buffers_ptr;
	uint32_t batch = (eb->flags & I915_EXEC_BATCH_FIRST) ? 0 :
			 eb->buffer_count - 1;
	uint32_t i;

	if (!log_file) {
		const char *path = getenv("GMIG_EXECLOG");

		if (!path)
			return;
		log_file = fopen(path, "w");
		if (!log_file)
			return;
	}
	fprintf(log_file, "E %" PRIu64 " %u 0x%llx %u %u %u %u\n", execs++,
		(unsigned int)eb->rsvd1, (unsigned long long)eb->flags, batch,
		eb->batch_start_offset, eb->batch_len, eb->buffer_count);
	for (i = 0; i < eb->buffer_count; i++)
		fprintf(log_file, "B %u 0x%llx %" PRIu64 " 0x%llx\n",
			obj[i].handle, (unsigned long long)obj[i].offset,
			get_size(obj[i].handle),
			(unsigned long long)obj[i].flags);
	fflush(log_file);
}

int ioctl(int fd, unsigned long request, ...)
{
	static int (*next)(int, unsigned long, ...);
	va_list ap;
	void *arg;
	int ret;

	va_start(ap, request);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (!next)
		next = dlsym(RTLD_NEXT, "ioctl");
	ret = next(fd, request, arg);
	if (ret != 0)
		return ret;

	pthread_mutex_lock(&lock);
	switch (request) {
	case DRM_IOCTL_I915_GEM_CREATE: {
		struct drm_i915_gem_create *c = arg;

		set_size(c->handle, c->size);
		break;
	}
	case DRM_IOCTL_I915_GEM_CREATE_EXT: {
		struct drm_i915_gem_create_ext *c = arg;

		set_size(c->handle, c->size);
		break;
	}
	case DRM_IOCTL_I915_GEM_USERPTR: {
		struct drm_i915_gem_userptr *u = arg;

		set_size(u->handle, u->user_size);
		break;
	}
	case DRM_IOCTL_GEM_CLOSE: {
		struct drm_gem_close *c = arg;

		set_size(c->handle, 0);
		break;
	}
	case DRM_IOCTL_I915_GEM_EXECBUFFER2:
	case DRM_IOCTL_I915_GEM_EXECBUFFER2_WR:
		log_exec(arg);
		break;
	}
	pthread_mutex_unlock(&lock);
	return ret;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * ctxid: an LD_PRELOAD library between Mesa's intel_dump_gpu and its stub
 * i915 device that gives each GEM context the program creates its own id.
 * The stub answers every I915_GEM_CONTEXT_CREATE with id 1, and
 * intel_dump_gpu keys its hardware contexts by that id: iris's render and
 * compute contexts (and every other one) would then share one context
 * image in the AUB, and the state one left behind would look like the
 * other's. With this library they are 1, 2, 3, ... as on a real i915.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <libdrm/drm.h>
#include <libdrm/i915_drm.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t next_id = 1;

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
	if (request == DRM_IOCTL_I915_GEM_CONTEXT_CREATE ||
	    request == DRM_IOCTL_I915_GEM_CONTEXT_CREATE_EXT) {
		/* ctx_id is the first field of both structures. */
		struct drm_i915_gem_context_create *c = arg;

		pthread_mutex_lock(&lock);
		c->ctx_id = next_id++;
		pthread_mutex_unlock(&lock);
	}
	return ret;
}

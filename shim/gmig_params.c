// SPDX-License-Identifier: GPL-2.0
/*
 * gmig's module parameters: what Rust cannot declare in Linux 7.3.
 *
 * module_param_cb() places a struct kernel_param in the module's __param
 * section, with ops of the caller's; the kernel crate's module! macro does
 * that for integers only. The string parameters here are the migration
 * policies: each value written is checked and spelled by Rust
 * (gmig_rs_param_set(), rust/migration/params.rs, the one parser of the
 * values), and read by a migration when it starts (gmig_param_get()).
 * Everything else of gmig is Rust: rust/vfio/ binds VFIO and mdev.
 */
#include <linux/cpumask.h>
#include <linux/moduleparam.h>
#include <linux/string.h>

#include "gmig_shim.h"

/* Module parameters: migration policy, read when a migration starts. */
static char gmig_precopy[16] = "oneshot";
static char gmig_dirty[16] = "hash";
static char gmig_rehash[16] = "writeset";
static char gmig_hashing[16] = "inplace";
static char gmig_final_image[16] = "patch";

/* The values are parsed once, by Rust (gmig_core::planner::Param). */
static int gmig_param_set(const char *val, const struct kernel_param *kp,
			  enum gmig_param which)
{
	int ret = gmig_rs_param_set(which, val, kp->str->string,
				    kp->str->maxlen);

	if (ret)
		pr_err("gmig: %s: invalid value \"%s\"\n", kp->name, val);
	return ret;
}

static int gmig_precopy_set(const char *val, const struct kernel_param *kp)
{
	return gmig_param_set(val, kp, GMIG_PARAM_PRECOPY);
}

static int gmig_dirty_set(const char *val, const struct kernel_param *kp)
{
	return gmig_param_set(val, kp, GMIG_PARAM_DIRTY);
}

static int gmig_rehash_set(const char *val, const struct kernel_param *kp)
{
	return gmig_param_set(val, kp, GMIG_PARAM_REHASH);
}

static int gmig_hashing_set(const char *val, const struct kernel_param *kp)
{
	return gmig_param_set(val, kp, GMIG_PARAM_HASHING);
}

static int gmig_final_image_set(const char *val, const struct kernel_param *kp)
{
	return gmig_param_set(val, kp, GMIG_PARAM_FINAL_IMAGE);
}

static const struct kernel_param_ops gmig_precopy_ops = {
	.set = gmig_precopy_set,
	.get = param_get_string,
};

static const struct kernel_param_ops gmig_dirty_ops = {
	.set = gmig_dirty_set,
	.get = param_get_string,
};

static const struct kernel_param_ops gmig_rehash_ops = {
	.set = gmig_rehash_set,
	.get = param_get_string,
};

static const struct kernel_param_ops gmig_hashing_ops = {
	.set = gmig_hashing_set,
	.get = param_get_string,
};

static const struct kernel_param_ops gmig_final_image_ops = {
	.set = gmig_final_image_set,
	.get = param_get_string,
};

static struct kparam_string gmig_precopy_kps = {
	.maxlen = sizeof(gmig_precopy), .string = gmig_precopy,
};

static struct kparam_string gmig_dirty_kps = {
	.maxlen = sizeof(gmig_dirty), .string = gmig_dirty,
};

static struct kparam_string gmig_rehash_kps = {
	.maxlen = sizeof(gmig_rehash), .string = gmig_rehash,
};

static struct kparam_string gmig_hashing_kps = {
	.maxlen = sizeof(gmig_hashing), .string = gmig_hashing,
};

static struct kparam_string gmig_final_image_kps = {
	.maxlen = sizeof(gmig_final_image), .string = gmig_final_image,
};

module_param_cb(precopy, &gmig_precopy_ops, &gmig_precopy_kps, 0644);
MODULE_PARM_DESC(precopy, "GPU page pre-copy policy: oneshot (default), iterative, off");
module_param_cb(dirty, &gmig_dirty_ops, &gmig_dirty_kps, 0644);
MODULE_PARM_DESC(dirty, "dirty GPU pages: hash (software dirty pages, default) or all");
module_param_cb(rehash, &gmig_rehash_ops, &gmig_rehash_kps, 0644);
MODULE_PARM_DESC(rehash, "pages a hashing report re-hashes: writeset (what executed commands could write, default) or all (gMig)");
module_param_cb(hashing, &gmig_hashing_ops, &gmig_hashing_kps, 0644);
MODULE_PARM_DESC(hashing, "how hashing reads guest pages: inplace (pinned and hashed where they are, default) or copy (copied with vfio_dma_rw)");
module_param_cb(final_image, &gmig_final_image_ops, &gmig_final_image_kps, 0644);
MODULE_PARM_DESC(final_image, "how the stop-copy delta is made: patch (from what changed, default) or build (the image built whole, then compared)");

/*
 * CPUs a large re-hash is spread over (rust/migration/crew.rs): 0, the
 * default, is every online CPU; 1 keeps every re-hash on the caller's CPU
 * (the benchmark's one-CPU reference). Read when dirty logging starts.
 */
static unsigned int gmig_rehash_cpus;
module_param_named(rehash_cpus, gmig_rehash_cpus, uint, 0644);
MODULE_PARM_DESC(rehash_cpus, "CPUs a large re-hash is spread over: 0 (every online CPU, default), 1 (the caller's only), N (at most N, up to 8)");

/* CPUs a re-hash starting now may use: rehash_cpus, at most those online. */
unsigned int gmig_rehash_lanes(void)
{
	unsigned int online = num_online_cpus();
	unsigned int want = READ_ONCE(gmig_rehash_cpus);

	return want && want < online ? want : online;
}

/*
 * Copies module parameter @which into @buf (@len bytes, NUL-terminated)
 * under the parameter lock, which a write of the parameter holds: a
 * migration starting meanwhile reads the old value or the new one, never
 * a mix of the two.
 */
void gmig_param_get(enum gmig_param which, char *buf, size_t len)
{
	static const char *const vals[] = {
		[GMIG_PARAM_PRECOPY] = gmig_precopy,
		[GMIG_PARAM_DIRTY] = gmig_dirty,
		[GMIG_PARAM_REHASH] = gmig_rehash,
		[GMIG_PARAM_HASHING] = gmig_hashing,
		[GMIG_PARAM_FINAL_IMAGE] = gmig_final_image,
	};

	kernel_param_lock(THIS_MODULE);
	strscpy(buf, which < ARRAY_SIZE(vals) ? vals[which] : "", len);
	kernel_param_unlock(THIS_MODULE);
}

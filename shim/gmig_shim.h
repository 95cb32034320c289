/* SPDX-License-Identifier: GPL-2.0 */
/*
 * gmig C shim <-> Rust: the module parameters (gmig_params.c).
 *
 * gmig_rs_param_set() is Rust's (rust/migration/params.rs), an unsafe
 * extern "C" function whose "# Safety" states what C must pass; Rust
 * calls gmig_param_get() and gmig_rehash_lanes() when a migration starts.
 */
#ifndef GMIG_SHIM_H
#define GMIG_SHIM_H

#include <linux/types.h>

/* The string parameters, as Rust's planner::Param numbers them. */
enum gmig_param {
	GMIG_PARAM_PRECOPY,	/* oneshot, iterative, off */
	GMIG_PARAM_DIRTY,	/* hash, all */
	GMIG_PARAM_REHASH,	/* writeset, all */
	GMIG_PARAM_HASHING,	/* inplace, copy */
	GMIG_PARAM_FINAL_IMAGE,	/* patch, build */
};

int gmig_rs_param_set(u32 which, const char *val, char *buf, size_t cap);
void gmig_param_get(enum gmig_param which, char *buf, size_t len);
unsigned int gmig_rehash_lanes(void);

#endif /* GMIG_SHIM_H */

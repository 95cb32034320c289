// SPDX-License-Identifier: GPL-2.0
/*
 * gvt_mock's runs: "hostile SEED SECS", a randomized hostile client of
 * the gvt provider. It plays the VFIO core, a VMM gone wrong and the
 * guest, and calls the hooks of drivers/gpu/drm/i915/gvt/ (kvmgt.c,
 * gtt.c, scheduler.c, cmd_parser.c, opregion.c) with any argument.
 */

#define pr_fmt(fmt) "gvt_mock: " fmt

#include <linux/err.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/interval_tree.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/random.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/vfio.h>

#include "gvt_mock.h"
#include "run.h"

/*
 * "hostile SEED SECS": a randomized hostile client of the gvt provider,
 * seeded and bounded in time. It takes random steps out of what the VFIO
 * core, a VMM gone wrong and a guest can make gmig see on a GVT-g vGPU:
 * any device state (valid arc or not, values that are no state) on either
 * vGPU, reads of any length from the data files and garbage or a mutated
 * real stream written into them, DMA logging started over many, far or
 * huge ranges, stopped and reported anywhere, the kvmgt hooks with any
 * argument (pins and GGTT writes anywhere, workloads on any engine,
 * commands of random dwords to the scanner), guest writes, vgpu_reset (a
 * VFIO reset or close), and destroying a vGPU and creating it again while
 * its data files are open. After every step both vGPUs answer with a
 * state; after each episode, reset, they migrate from one to the other
 * with the state restored byte for byte and the destination running.
 */
#define HOSTILE_FILES		4
#define HOSTILE_STEPS		200
#define HOSTILE_RANGES		300

struct hostile {
	struct scenario *s;
	u64 rng;
	struct file *files[HOSTILE_FILES];
	struct mock_vgpu *owner[HOSTILE_FILES];	/* NULL: its vGPU is gone */
	u8 *buf;		/* bytes read, and garbage to write */
	size_t buf_len;
	unsigned long steps, episodes;
};

static u64 h_rnd(struct hostile *h)
{
	h->rng ^= h->rng >> 12;
	h->rng ^= h->rng << 25;
	h->rng ^= h->rng >> 27;
	return h->rng * 2685821657736338717ull;
}

static u64 h_below(struct hostile *h, u64 n)
{
	return n ? h_rnd(h) % n : 0;
}

static struct mock_vgpu *h_vgpu(struct hostile *h)
{
	return h_below(h, 2) ? h->s->src : h->s->dst;
}

static void h_put(struct hostile *h, int i)
{
	if (h->files[i])
		fput(h->files[i]);
	h->files[i] = NULL;
}

static void h_keep(struct hostile *h, struct file *f, struct mock_vgpu *m)
{
	int i = h_below(h, HOSTILE_FILES);

	h_put(h, i);
	h->files[i] = f;
	h->owner[i] = m;
}

static void h_log_start(struct hostile *h, struct mock_vgpu *m)
{
	struct interval_tree_node *nodes;
	struct rb_root_cached root = RB_ROOT_CACHED;
	unsigned int n = h_below(h, 4) ? 1 + h_below(h, 4) :
			 1 + h_below(h, HOSTILE_RANGES);
	u64 page_size = MOCK_PAGE, next = 0, len;
	unsigned int i;

	nodes = kcalloc(n, sizeof(*nodes), GFP_KERNEL);
	if (!nodes)
		return;
	/* As the VFIO core passes them: sorted, disjoint, page-aligned. */
	for (i = 0; i < n; i++) {
		next += MOCK_PAGE * h_below(h, 1 << (4 * h_below(h, 6)));
		len = MOCK_PAGE * (1 + h_below(h, 1 << (4 * h_below(h, 6))));
		if (next > (1ull << 52))
			break;
		nodes[i].start = next;
		nodes[i].last = next + len - 1;
		next += len;
		interval_tree_insert(&nodes[i], &root);
	}
	if (i)
		m->vdev.log_ops->log_start(&m->vdev, &root, i, &page_size);
	kfree(nodes);
}

static void h_log_report(struct hostile *h, struct mock_vgpu *m)
{
	/* what one page of user bitmap holds */
	u64 max = (u64)PAGE_SIZE * BITS_PER_BYTE * MOCK_PAGE;
	u64 iova = h_below(h, 2) ? 0 : MOCK_PAGE * h_below(h, 1ull << 40);
	u64 len = MOCK_PAGE * (1 + h_below(h, max / MOCK_PAGE));
	struct iova_bitmap *bm;

	bm = iova_bitmap_alloc(iova, len, MOCK_PAGE,
			       (void __user *)h->s->ubuf);
	if (IS_ERR(bm))
		return;
	iova_bitmap_for_each(bm, &m->vdev, report_one);
	iova_bitmap_free(bm);
}

static void h_hook(struct hostile *h, struct mock_vgpu *m)
{
	const struct intel_gvt_companion_ops *o = m->ops;
	u64 gfn = h_below(h, 2) ? h_below(h, MOCK_MEM_PAGES) : h_rnd(h) >> 12;
	u32 cmd[16];
	int i, n;

	cb_begin(m);
	switch (h_below(h, 9)) {
	case 0:
		/* in the mock's pin table too: read_pinned hands them out */
		pin_range(m, gfn, 1 + h_below(h, 4), true);
		break;
	case 1:
		pin_range(m, gfn, 1, false);
		break;
	case 2:
		if (o->ggtt_write)
			o->ggtt_write(m->priv, h_below(h, 2) ?
				      h_below(h, m->ggtt_entries * 2) :
				      h_rnd(h), h_rnd(h),
				      h_below(h, 2) ? MOCK_PTE(gfn) : h_rnd(h));
		break;
	case 3:
		if (o->workload_queued)
			o->workload_queued(m->priv, h_below(h, 8), h_rnd(h));
		break;
	case 4:
		if (o->workload_completed)
			o->workload_completed(m->priv, h_below(h, 8),
					      h_rnd(h), -(int)h_below(h, 3));
		break;
	case 5:
		if (o->ppgtt_created)
			o->ppgtt_created(m->priv, h_rnd(h));
		break;
	case 6:
		if (o->ppgtt_destroyed)
			o->ppgtt_destroyed(m->priv, h_rnd(h));
		break;
	case 7:
		if (o->gpa_written)
			o->gpa_written(m->priv, gfn * MOCK_PAGE + h_below(h, MOCK_PAGE),
				       h_below(h, 2) ? 4 : h_rnd(h));
		break;
	default:
		n = 1 + h_below(h, ARRAY_SIZE(cmd));
		for (i = 0; i < n; i++)
			cmd[i] = h_rnd(h);
		if (h_below(h, 2))	/* a real MI_STORE_DATA_IMM header */
			cmd[0] = (0x20 << 23) | (1 << 22) | 2;
		if (o->scan_cmd)
			o->scan_cmd(m->priv, cmd, n, h_below(h, 2));
		break;
	}
	cb_end(m);
}

static u32 h_state(struct hostile *h)
{
	static const u32 bogus[] = { 8, 9, 99, 0x7fffffff, 0xffffffff };

	if (h_below(h, 8))
		return h_below(h, VFIO_DEVICE_STATE_PRE_COPY_P2P + 1);
	return bogus[h_below(h, ARRAY_SIZE(bogus))];
}

static size_t h_garbage(struct hostile *h)
{
	size_t len, i;

	if (h->s->stream_len && h_below(h, 3)) {
		len = h_below(h, 4) ? h->s->stream_len :
		      h_below(h, h->s->stream_len);
		len = min_t(size_t, len, h->buf_len);
		memcpy(h->buf, h->s->stream, len);
		for (i = h_below(h, 4); i && len; i--)
			h->buf[h_below(h, len)] ^= 1 << h_below(h, 8);
		return len;
	}
	len = h_below(h, 4096);
	for (i = 0; i < len; i++)
		h->buf[i] = h_rnd(h);
	return len;
}

/*
 * vgpu_reset (a VFIO reset or close): the vGPU is scheduled again and no
 * byte moves through the data files it gave before.
 */
static int h_reset(struct hostile *h, struct mock_vgpu *m)
{
	int i;

	m->ops->vgpu_reset(m->priv);
	if (m->stopped)
		return fail(h->s, "%s: still stopped after vgpu_reset", m->name);
	for (i = 0; i < HOSTILE_FILES; i++) {
		struct file *f = h->files[i];

		if (!f || h->owner[i] != m)
			continue;
		if (((f->f_mode & FMODE_READ) &&
		     kernel_read(f, h->buf, 4096, NULL) > 0) ||
		    ((f->f_mode & FMODE_WRITE) &&
		     kernel_write(f, h->buf, 4096, NULL) > 0))
			return fail(h->s, "%s: a data file moved data after vgpu_reset",
				    m->name);
	}
	return 0;
}

/* Destroys a vGPU and creates it again; its data files stay open. */
static int h_recreate(struct hostile *h, bool src)
{
	struct scenario *s = h->s;
	struct mock_vgpu **slot = src ? &s->src : &s->dst;
	struct mock_vgpu *m;
	int i;

	for (i = 0; i < HOSTILE_FILES; i++)
		if (h->owner[i] == *slot)
			h->owner[i] = NULL;
	mock_free(*slot);
	*slot = NULL;
	m = mock_create(src ? "src" : "dst", src ? &s->type->src :
			&s->type->dst, s->type->vregs_size, s->why,
			sizeof(s->why));
	if (IS_ERR(m))
		return PTR_ERR(m);
	*slot = m;
	return check_vdev(s, m);
}

static int h_step(struct hostile *h)
{
	struct mock_vgpu *m = h_vgpu(h);
	struct file *f = h->files[h_below(h, HOSTILE_FILES)];
	ssize_t n;

	switch (h_below(h, 16)) {
	case 0 ... 3:
		f = mig(m)->migration_set_state(&m->vdev, h_state(h));
		if (!IS_ERR_OR_NULL(f))
			h_keep(h, f, m);
		break;
	case 4 ... 5:
		/* read(2) of a write-only fd is -EBADF before the driver */
		if (f && (f->f_mode & FMODE_READ)) {
			n = kernel_read(f, h->buf, h_below(h, 2) ? SZ_64K :
					h_below(h, h->buf_len), NULL);
			if (n > 0 && n <= MOCK_STREAM_MAX) {
				memcpy(h->s->stream, h->buf, n);
				h->s->stream_len = n;
			}
		}
		break;
	case 6 ... 7:
		if (f && (f->f_mode & FMODE_WRITE))
			kernel_write(f, h->buf, h_garbage(h), NULL);
		break;
	case 8:
		h_log_start(h, m);
		break;
	case 9:
		m->vdev.log_ops->log_stop(&m->vdev);
		break;
	case 10:
		h_log_report(h, m);
		break;
	case 11 ... 12:
		h_hook(h, m);
		break;
	case 13:
		touch_frame(m, h_below(h, MOCK_MEM_PAGES));
		break;
	case 14:
		if (h_below(h, 2) && m->ops->vgpu_reset)
			return h_reset(h, m);
		h_put(h, h_below(h, HOSTILE_FILES));
		break;
	default:
		if (!h_below(h, 32))
			return h_recreate(h, m == h->s->src);
		break;
	}
	return 0;
}

static bool h_state_ok(struct mock_vgpu *m)
{
	int st = get_state(m);

	return st >= 0 && st <= VFIO_DEVICE_STATE_PRE_COPY_P2P;
}

/* After an episode: reset, both run; src migrates to dst intact. */
static int h_recover(struct hostile *h)
{
	struct scenario *s = h->s;
	struct mock_vgpu *v[] = { s->src, s->dst };
	struct file *f, *g;
	size_t got;
	int i, werr, ret;

	for (i = 0; i < ARRAY_SIZE(v); i++) {
		ret = h_reset(h, v[i]);
		if (ret)
			return ret;
		v[i]->vdev.log_ops->log_stop(&v[i]->vdev);
		if (get_state(v[i]) != VFIO_DEVICE_STATE_RUNNING)
			return fail(s, "%s: state %d after vgpu_reset",
				    v[i]->name, get_state(v[i]));
	}
	s->stream_len = 0;
	ret = step_log_start(s);
	if (ret)
		return ret;
	f = set_state(s, s->src, VFIO_DEVICE_STATE_PRE_COPY);
	if (IS_ERR_OR_NULL(f))
		return fail(s, "set_state(PRE_COPY): %ld", PTR_ERR(f));
	ret = read_all(s, f, &got);
	if (ret)
		return ret;
	step_gpu_work(s);
	g = set_state(s, s->src, VFIO_DEVICE_STATE_STOP_COPY);
	if (IS_ERR(g))
		return fail(s, "set_state(STOP_COPY): %ld", PTR_ERR(g));
	ret = read_all(s, g ?: f, &got) ?:
	      to_state(s, s->src, VFIO_DEVICE_STATE_STOP) ?:
	      resume(s, s->stream, &werr);
	if (ret)
		return ret;
	if (werr)
		return fail(s, "write of a real stream: %d", werr);
	ret = to_state(s, s->dst, VFIO_DEVICE_STATE_STOP) ?:
	      check_restored(s) ?: step_resume_running(s) ?:
	      to_state(s, s->src, VFIO_DEVICE_STATE_RUNNING) ?:
	      step_log_stop(s);
	while (s->nfiles)
		fput(s->files[--s->nfiles]);
	return ret;
}

int mock_hostile(u64 seed, unsigned int secs)
{
	unsigned long end = jiffies + secs * HZ;
	struct scenario *s;
	struct hostile *h;
	int i, ret;

	h = kzalloc_obj(*h);
	if (!h)
		goto nomem;
	h->buf_len = SZ_1M;
	h->buf = kvmalloc(h->buf_len, GFP_KERNEL);
	s = scenario_new(&mock_types[0]);
	if (!s || !h->buf) {
		if (s)
			scenario_free(s);
		kvfree(h->buf);
		kfree(h);
		goto nomem;
	}
	h->s = s;
	h->rng = seed | 1;

	pr_info("hostile: seed %llu, %u s\n", seed, secs);
	atomic_set(&bad_vgpu_ptr, 0);
	ret = step_register(s) ?: step_create(s) ?: step_guest_setup(s);
	while (!ret && time_before(jiffies, end) &&
	       !fatal_signal_pending(current)) {
		for (i = 0; !ret && i < HOSTILE_STEPS; i++, h->steps++) {
			ret = h_step(h);
			if (!ret && (!h_state_ok(s->src) || !h_state_ok(s->dst)))
				ret = fail(s, "step %lu: no valid state (%d, %d)",
					   h->steps, get_state(s->src),
					   get_state(s->dst));
			cond_resched();
		}
		if (!ret)
			ret = h_recover(h);
		if (!ret)
			h->episodes++;
	}
	if (!ret)
		ret = step_no_reentry(s) ?: step_restore_stopped(s);
	if (ret)
		pr_err("FAIL hostile: seed %llu, episode %lu: %s\n", seed,
		       h->episodes, s->why[0] ? s->why : "error");
	else
		pr_info("ok hostile\n");
	pr_info("hostile: %lu steps, %lu episodes (seed %llu)\n", h->steps,
		h->episodes, seed);

	/* the fds first, then the vGPUs */
	for (i = 0; i < HOSTILE_FILES; i++)
		h_put(h, i);
	scenario_free(s);
	kvfree(h->buf);
	kfree(h);
	return ret ? -EIO : 0;
nomem:
	pr_err("FAIL hostile: out of memory\n");
	return -ENOMEM;
}

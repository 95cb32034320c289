// SPDX-License-Identifier: GPL-2.0
/*
 * gvt_mock's kvmgt: the replay driver, a captured Mesa workload played as
 * the guest's. It follows no GVT-g file: the format and the model GPU are
 * gmig_core::replay's (rust/gmig_core/src/replay.rs), the driver the
 * sim's (rust/gmig_core/src/sim/replay.rs); it submits through the
 * handlers of drivers/gpu/drm/i915/gvt/ (gtt.c's GTT MMIO range,
 * execlist.c's ELSP) and its batches run on the PPGTT of gtt.c.
 */

#define pr_fmt(fmt) "gvt_mock: " fmt

#include <linux/module.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/unaligned.h>
#include <linux/vfio.h>
#include <linux/xarray.h>

#include "gvt_mock.h"
#include "kvmgt.h"

/*
 * The replay driver: a captured Mesa workload (scripts/trace.sh pack; the
 * format is gmig_core::replay's, rust/gmig_core/src/replay.rs) run as the
 * guest's workload, as the sim's replay driver (rust/gmig_core/src/sim/
 * replay.rs) runs it on a sim vGPU. Its window of guest memory (base=,
 * size=, from KV_WINDOW by default) holds, in pages:
 *
 *   0 .. 2C    per replay context a context image: its LRCA page and ring
 *              context page (head, tail, start, control, PDP0 = the PML4)
 *   2C .. 3C   per context a 4 KiB ring
 *   then       the 4-level PPGTT all contexts share: PML4, PDPs, PDs, PTs
 *   then       the replay's pages, in mapping order
 *
 * The contexts and rings are mapped at the top of the aperture through
 * the GTT MMIO range; the driver keeps that GM address in guest memory
 * (the first context's LRCA page, which the mock's GPU does not write),
 * so that on a destination at another GGTT place it goes on with the
 * source's, which map_gma moves, as the desktop driver does. Each tick
 * writes at most RP_PAGES_PER_TICK page records and, at an execbuffer,
 * puts MI_BATCH_BUFFER_START (PPGTT) to its batch into the context's
 * ring and writes the context's descriptor (addressing mode legacy
 * 64-bit) to the ELSP; one is in flight at a time.
 * When the mock's GPU runs it, the model GPU (kv_replay_executed()) writes
 * a stamp at the start of every page the file names for it, through guest
 * memory, seen by no hook, as a GPU's writes. At the end of the file the
 * replay starts again with fresh contexts.
 */
#define RP_MAGIC		0x50524d47	/* "GMRP" */
#define RP_VERSION		1
#define RP_MAX_RANGES		4096
#define RP_MAX_MAPPED		BIT_ULL(22)
#define RP_MAX_MAPS		65536	/* the mock's bound: before[] */
#define RP_ADDR_LIMIT		BIT_ULL(48)
#define RP_HEADER		32
#define RP_MAP_ENTRY		16
#define RP_TAG_PAGE		1
#define RP_TAG_EXEC		2
#define RP_FILE_MAX		SZ_64M
#define RP_PAGES_PER_TICK	256
#define RP_CTX_ID_BASE		0xfe00
#define RP_BB_START		((0x31 << 23) | (1 << 8) | 1)
#define RP_PDE			(BIT_ULL(0) | BIT_ULL(1))	/* present, RW */
#define RP_STATE_MAGIC		0x6c707247	/* "Grpl" */

struct rp_rec {
	u32 tag, ctx, nranges;
	u64 addr, frame;
	size_t ranges, next;
};

static u32 rp_u32(const u8 *b, size_t off)
{
	return get_unaligned_le32(b + off);
}

static u64 rp_u64(const u8 *b, size_t off)
{
	return get_unaligned_le64(b + off);
}

static void rp_map(const u8 *b, u32 i, u64 *addr, u64 *pages)
{
	*addr = rp_u64(b, RP_HEADER + (size_t)i * RP_MAP_ENTRY);
	*pages = rp_u64(b, RP_HEADER + (size_t)i * RP_MAP_ENTRY + 8);
}

/* Replay::parse(): the header and the map table (sorted, non-adjacent). */
static int rp_parse(struct kv_replay *r, const u8 *b, size_t len)
{
	u64 end = 0, total = 0, addr, pages;
	u32 i;

	if (len < RP_HEADER || rp_u32(b, 0) != RP_MAGIC ||
	    rp_u32(b, 4) != RP_VERSION || rp_u32(b, 24) || rp_u32(b, 28))
		return -EINVAL;
	r->contexts = rp_u32(b, 8);
	r->execs = rp_u32(b, 12);
	r->maps = rp_u32(b, 16);
	r->mapped = rp_u32(b, 20);
	if (!r->contexts || r->contexts > RP_MAX_CONTEXTS || !r->execs ||
	    !r->maps || r->maps > RP_MAX_MAPS || r->mapped > RP_MAX_MAPPED ||
	    len < RP_HEADER + (size_t)r->maps * RP_MAP_ENTRY)
		return -EINVAL;
	r->before = kvmalloc_array(r->maps, sizeof(u64), GFP_KERNEL);
	if (!r->before)
		return -ENOMEM;
	for (i = 0; i < r->maps; i++) {
		rp_map(b, i, &addr, &pages);
		if (!pages || addr % MOCK_PAGE ||
		    pages > RP_ADDR_LIMIT / MOCK_PAGE ||
		    addr > RP_ADDR_LIMIT - pages * MOCK_PAGE ||
		    (i && addr <= end))
			return -EINVAL;
		end = addr + pages * MOCK_PAGE;
		r->before[i] = total;
		total += pages;
	}
	return total == r->mapped ? 0 : -EINVAL;
}

/* The map holding @addr, or -1. */
static long rp_map_of(const struct kv_replay *r, const u8 *b, u64 addr)
{
	u32 lo = 0, hi = r->maps, mid;
	u64 a, pages;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		rp_map(b, mid, &a, &pages);
		if (a <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return -1;
	rp_map(b, lo - 1, &a, &pages);
	return (addr - a) / MOCK_PAGE < pages ? (long)lo - 1 : -1;
}

/* Replay::frame_of(): the index in mapping order of the page at @addr. */
static bool rp_frame_of(const struct kv_replay *r, const u8 *b, u64 addr,
			u64 *frame)
{
	long i = rp_map_of(r, b, addr);
	u64 a, pages;

	if (i < 0)
		return false;
	rp_map(b, i, &a, &pages);
	*frame = r->before[i] + (addr - a) / MOCK_PAGE;
	return true;
}

/* [@s, @e) page aligned and in one map (maps are never adjacent). */
static bool rp_mapped_range(const struct kv_replay *r, const u8 *b, u64 s,
			    u64 e)
{
	long i;
	u64 a, pages;

	if (s % MOCK_PAGE || e % MOCK_PAGE || s >= e || e > RP_ADDR_LIMIT)
		return false;
	i = rp_map_of(r, b, s);
	if (i < 0)
		return false;
	rp_map(b, i, &a, &pages);
	return e - a <= pages * MOCK_PAGE;
}

/* Replay::record_at(): the record at @off (< @len), checked. */
static int rp_record(const struct kv_replay *r, const u8 *b, size_t len,
		     size_t off, struct rp_rec *rec)
{
	u64 s, e, last = 0;
	u32 arg, i;

	if (len - off < 16)
		return -EINVAL;
	rec->tag = rp_u32(b, off);
	arg = rp_u32(b, off + 4);
	rec->addr = rp_u64(b, off + 8);
	if (rec->tag == RP_TAG_PAGE) {
		if (len - off - 16 < MOCK_PAGE || arg ||
		    rec->addr % MOCK_PAGE ||
		    !rp_frame_of(r, b, rec->addr, &rec->frame))
			return -EINVAL;
		rec->next = off + 16 + MOCK_PAGE;
		return 0;
	}
	if (rec->tag != RP_TAG_EXEC || len - off < 24)
		return -EINVAL;
	rec->ctx = arg;
	rec->nranges = rp_u32(b, off + 16);
	if (arg >= r->contexts || rec->nranges > RP_MAX_RANGES ||
	    rp_u32(b, off + 20) || rec->addr % 4 ||
	    !rp_frame_of(r, b, rec->addr, &rec->frame) ||
	    (len - off - 24) / RP_MAP_ENTRY < rec->nranges)
		return -EINVAL;
	rec->ranges = off + 24;
	rec->next = rec->ranges + (size_t)rec->nranges * RP_MAP_ENTRY;
	for (i = 0; i < rec->nranges; i++) {
		s = rp_u64(b, rec->ranges + i * RP_MAP_ENTRY);
		e = rp_u64(b, rec->ranges + i * RP_MAP_ENTRY + 8);
		if ((i && s < last) || !rp_mapped_range(r, b, s, e))
			return -EINVAL;
		last = e;
	}
	return 0;
}

/* Replay::validate(): every record; "execs" EXECs, the last one last. */
static int rp_validate(const struct kv_replay *r, const u8 *b, size_t len,
		       size_t *bad)
{
	size_t off = r->first;
	struct rp_rec rec = { .tag = 0 };
	u64 execs = 0;
	int ret;

	while (off < len) {
		ret = rp_record(r, b, len, off, &rec);
		if (ret) {
			*bad = off;
			return ret;
		}
		execs += rec.tag == RP_TAG_EXEC;
		off = rec.next;
		cond_resched();
	}
	*bad = len;
	return execs == r->execs && rec.tag == RP_TAG_EXEC ? 0 : -EINVAL;
}

/* Each new table of the walk in mapping order: PDPs, PDs, PTs. */
static u64 rp_tables(const struct kv_replay *r, const u8 *b)
{
	u64 n = 0, last = 0, a, pages, p, v;
	bool first = true;
	u32 i;

	for (i = 0; i < r->maps; i++) {
		rp_map(b, i, &a, &pages);
		for (p = 0; p < pages; p++, first = false) {
			v = a + p * MOCK_PAGE;
			n += first || last >> 39 != v >> 39;
			n += first || last >> 30 != v >> 30;
			n += first || last >> 21 != v >> 21;
			last = v;
		}
	}
	return n;
}

static void kv_replay_free(struct kv_replay *r)
{
	if (r)
		kvfree(r->before);
	kfree(r);
}

/* Stops the replay (the file stays), m.drv_lock held. */
void kv_replay_stop(struct kv_vgpu *kv)
{
	kv_replay_free(kv->rp);
	kv->rp = NULL;
	kv->rp_start = false;
}

/*
 * The stand-in driver's CPU writes: a real guest's would be in the VMM's
 * dirty log; these are DMA QEMU does not see, so the log's read adds them
 * (kv_log_read_and_clear()).
 */
static int kv_cpu_write(struct kv_vgpu *kv, u64 gpa, const void *buf,
			size_t len)
{
	int ret = mock_mem_rw(&kv->m, gpa, (void *)buf, len, true);
	u64 gfn;

	if (!len || !READ_ONCE(kv->logging))
		return ret;
	for (gfn = gpa >> PAGE_SHIFT; gfn <= (gpa + len - 1) >> PAGE_SHIFT; gfn++)
		if (xa_is_err(xa_store(&kv->cpu_dirty, gfn, xa_mk_value(1),
				       GFP_KERNEL)))
			WRITE_ONCE(kv->cpu_dirty_lost, true);
	return ret;
}

/* Every context image as a context never run, its ring empty. */
static int kv_replay_fresh(struct kv_vgpu *kv)
{
	struct kv_replay *r = kv->rp;
	u32 ctx[0xd0 / 4] = { 0 }, i;
	int ret = 0;

	ctx[MOCK_CTX_START / 4] = 0;
	ctx[MOCK_CTX_CTL / 4] = 1;	/* RB_CTL: enabled, one page */
	ctx[MOCK_CTX_PDP_UDW(0) / 4] = upper_32_bits(r->pml4);
	ctx[MOCK_CTX_PDP_LDW(0) / 4] = lower_32_bits(r->pml4);
	for (i = 0; !ret && i < r->contexts; i++) {
		ctx[MOCK_CTX_START / 4] = lower_32_bits(r->gbase +
			(2ULL * r->contexts + i) * MOCK_PAGE);
		ret = kv_cpu_write(kv, r->base + (2ULL * i + 1) * MOCK_PAGE,
				   ctx, sizeof(ctx));
	}
	memset(r->tails, 0, sizeof(r->tails));
	return ret;
}

/* The PPGTT's tables being written, one per level: PML4, PDP, PD, PT. */
struct rp_pt {
	u64 *t[4];
	u64 at[4], next;
};

static int rp_pt_flush(struct kv_vgpu *kv, struct rp_pt *pt, int l)
{
	return pt->at[l] ? kv_cpu_write(kv, pt->at[l], pt->t[l], MOCK_PAGE) : 0;
}

/* The next table of level @l, entry @idx of the level above maps it. */
static int rp_pt_new(struct kv_vgpu *kv, struct rp_pt *pt, int l, u64 idx)
{
	int ret = rp_pt_flush(kv, pt, l);

	memset(pt->t[l], 0, MOCK_PAGE);
	pt->at[l] = pt->next;
	pt->next += MOCK_PAGE;
	pt->t[l - 1][idx & 511] = pt->at[l] | RP_PDE;
	return ret;
}

static int kv_replay_tables(struct kv_vgpu *kv, const u8 *b)
{
	struct kv_replay *r = kv->rp;
	struct rp_pt pt = { .next = r->pml4 + MOCK_PAGE };
	u64 a, pages, p, v, last = 0, frame = 0;
	bool first = true;
	int l, ret = 0;
	u32 i;

	for (l = 0; l < 4; l++) {
		pt.t[l] = kzalloc(MOCK_PAGE, GFP_KERNEL);
		if (!pt.t[l])
			ret = -ENOMEM;
	}
	pt.at[0] = r->pml4;
	for (i = 0; !ret && i < r->maps; i++) {
		rp_map(b, i, &a, &pages);
		for (p = 0; !ret && p < pages; p++, frame++, first = false) {
			v = a + p * MOCK_PAGE;
			if (first || last >> 39 != v >> 39)
				ret = rp_pt_new(kv, &pt, 1, v >> 39);
			if (!ret && (first || last >> 30 != v >> 30))
				ret = rp_pt_new(kv, &pt, 2, v >> 30);
			if (!ret && (first || last >> 21 != v >> 21))
				ret = rp_pt_new(kv, &pt, 3, v >> 21);
			pt.t[3][(v >> 12) & 511] = (r->data + frame * MOCK_PAGE) |
						   RP_PDE;
			last = v;
		}
	}
	for (l = 0; l < 4; l++) {
		if (!ret)
			ret = rp_pt_flush(kv, &pt, l);
		kfree(pt.t[l]);
	}
	return ret;
}

/*
 * "start replay", in the tick: the file checked, the window laid out, the
 * contexts and rings mapped through the GTT MMIO range, the page tables
 * and context images written.
 */
int kv_replay_setup(struct kv_vgpu *kv)
{
	struct mock_vgpu *m = &kv->m;
	const u8 *b = kv->rp_file;
	struct kv_replay *r;
	u64 c, need, size, k;
	size_t bad = 0;
	u32 st[3];
	int ret;

	r = kzalloc_obj(*r);
	if (!r)
		return -ENOMEM;
	ret = rp_parse(r, b, kv->rp_len);
	r->first = RP_HEADER + (size_t)r->maps * RP_MAP_ENTRY;
	if (!ret)
		ret = rp_validate(r, b, kv->rp_len, &bad);
	if (ret) {
		pr_warn_ratelimited("%s: replay file refused (at byte %zu of %zu): %d\n",
				    m->name, bad, kv->rp_len, ret);
		kv_replay_free(r);
		return ret;
	}
	c = r->contexts;
	size = kv->rp_size;
	if (r->mapped > (size ?: U64_MAX) / MOCK_PAGE)
		ret = -E2BIG;
	need = 3 * c + 1 + rp_tables(r, b) + r->mapped;
	size = size ?: need * MOCK_PAGE;
	if (ret || kv->rp_base % MOCK_PAGE || size % MOCK_PAGE ||
	    need > size / MOCK_PAGE || kv->rp_base + size < kv->rp_base ||
	    m->layout.aperture_size < 3 * c * MOCK_PAGE) {
		pr_warn_ratelimited("%s: replay window %#llx+%#llx refused: it needs %llu pages\n",
				    m->name, kv->rp_base, size, need);
		kv_replay_free(r);
		return -EINVAL;
	}
	r->base = kv->rp_base;
	r->gbase = m->layout.aperture_base + m->layout.aperture_size -
		   3 * c * MOCK_PAGE;
	/* a driver that ran before (here or on a source) keeps its GM */
	ret = mock_mem_rw(m, r->base, st, sizeof(st), false);
	if (!ret && st[0] == RP_STATE_MAGIC)
		r->gbase = st[1] | (u64)st[2] << 32;
	st[0] = RP_STATE_MAGIC;
	st[1] = lower_32_bits(r->gbase);
	st[2] = upper_32_bits(r->gbase);
	ret = ret ?: kv_cpu_write(kv, r->base, st, sizeof(st));
	if (ret) {
		kv_replay_free(r);
		return ret;
	}
	r->pml4 = r->base + 3 * c * MOCK_PAGE;
	r->data = r->base + (need - r->mapped) * MOCK_PAGE;
	r->next = r->first;
	kv->rp = r;
	for (k = 0; k < 3 * c; k++)
		mock_ggtt_mmio_write(m, ((r->gbase >> 12) + k) * 8,
				     MOCK_PTE((r->base >> 12) + k));
	ret = kv_replay_tables(kv, b) ?: kv_replay_fresh(kv);
	if (ret) {
		kv_replay_stop(kv);
		return ret;
	}
	pr_info("%s: workload replay at guest %#llx (%llu KiB), GM %#llx: %llu pages mapped\n",
		m->name, r->base, size >> 10, r->gbase, r->mapped);
	return 0;
}

/* An execbuffer: MI_BATCH_BUFFER_START in its context's ring, the ELSP. */
static int kv_replay_submit(struct kv_vgpu *kv, const struct rp_rec *rec,
			    size_t off)
{
	struct kv_replay *r = kv->rp;
	u64 i = rec->ctx, ring = r->base + (2 * r->contexts + i) * MOCK_PAGE;
	u64 ring_ctx = r->base + (2 * i + 1) * MOCK_PAGE;
	u32 cmd[4] = { RP_BB_START, lower_32_bits(rec->addr),
		       upper_32_bits(rec->addr), 0 };
	u32 tail = r->tails[i], zero = 0, desc;
	int ret = 0;

	/* the mock's rings do not wrap: the driver starts over at 0 */
	if (tail + sizeof(cmd) > MOCK_PAGE) {
		tail = 0;
		ret = kv_cpu_write(kv, ring_ctx + MOCK_CTX_HEAD, &zero, 4);
	}
	r->tails[i] = tail + sizeof(cmd);
	ret = ret ?: kv_cpu_write(kv, ring + tail, cmd, sizeof(cmd)) ?:
	      kv_cpu_write(kv, ring_ctx + MOCK_CTX_TAIL, &r->tails[i], 4);
	desc = lower_32_bits(r->gbase + 2 * i * MOCK_PAGE) | MOCK_DESC_VALID |
	       MOCK_DESC_PRIV | MOCK_DESC_LEGACY_64 << 3;
	ret = ret ?: mock_elsp(&kv->m, 0, desc, RP_CTX_ID_BASE + i);
	if (ret)
		return ret;
	r->in_flight = true;
	r->exec_off = off;
	r->desc = desc;
	r->ctx_id = RP_CTX_ID_BASE + i;
	r->submitted++;
	return 0;
}

/* One tick of a running replay: page records, then an execbuffer. */
int kv_replay_tick(struct kv_vgpu *kv)
{
	struct kv_replay *r = kv->rp;
	const u8 *b = kv->rp_file;
	unsigned int pages = 0;
	struct rp_rec rec;
	size_t off;
	int ret;

	if (r->in_flight) {
		/* it left the queue unrun (its engine was reset) */
		r->in_flight = false;
		kv->faults++;
	}
	for (;;) {
		off = r->next;
		if (off >= kv->rp_len) {
			r->next = r->first;
			r->loops++;
			return kv_replay_fresh(kv);
		}
		ret = rp_record(r, b, kv->rp_len, off, &rec);
		if (ret)
			return ret;
		if (rec.tag == RP_TAG_EXEC) {
			r->next = rec.next;
			return kv_replay_submit(kv, &rec, off);
		}
		if (pages++ == RP_PAGES_PER_TICK)
			return 0;
		ret = kv_cpu_write(kv, r->data + rec.frame * MOCK_PAGE,
				   b + off + 16, MOCK_PAGE);
		if (ret)
			return ret;
		r->pages_written++;
		r->next = rec.next;
	}
}

/*
 * The mock's GPU ran a workload of @desc (m.lock held, and m.drv_lock: the
 * tick runs the GPU): for the replay's execbuffer in flight, the model
 * GPU writes gmig_core::replay::model_stamp() (the count of execbuffers
 * run before plus one, then the page's PPGTT address, both u64) at the
 * start of every page of the execbuffer's write ranges.
 */
int kv_replay_executed(struct mock_vgpu *m, const u32 *desc)
{
	struct kv_vgpu *kv = m->kv;
	struct kv_replay *r = kv->rp;
	const u8 *b = kv->rp_file;
	__le64 stamp[2];
	struct rp_rec rec;
	u64 a, e, frame, n;
	u32 i;
	int ret;

	lockdep_assert_held(&m->drv_lock);
	if (!r || !r->in_flight || desc[0] != r->desc || desc[1] != r->ctx_id)
		return 0;
	r->in_flight = false;
	n = r->executed++;
	ret = rp_record(r, b, kv->rp_len, r->exec_off, &rec);
	for (i = 0; !ret && i < rec.nranges; i++) {
		a = rp_u64(b, rec.ranges + i * RP_MAP_ENTRY);
		e = rp_u64(b, rec.ranges + i * RP_MAP_ENTRY + 8);
		for (; !ret && a < e; a += MOCK_PAGE) {
			if (!rp_frame_of(r, b, a, &frame))
				return -EINVAL;
			stamp[0] = cpu_to_le64(n + 1);
			stamp[1] = cpu_to_le64(a);
			ret = mock_mem_rw(m, r->data + frame * MOCK_PAGE, stamp,
					  sizeof(stamp), true);
			r->model_pages++;
		}
	}
	return ret;
}

static ssize_t kv_replay_write(struct file *file, const char __user *ubuf,
			       size_t count, loff_t *ppos)
{
	struct kv_vgpu *kv = file->private_data;
	size_t at = *ppos, cap;
	u8 *b;

	guard(mutex)(&kv->m.drv_lock);
	if (kv->rp || kv->rp_start)
		return -EBUSY;	/* the running replay reads the file */
	if (!at)
		kv->rp_len = 0;
	if (*ppos < 0 || at != kv->rp_len || count > RP_FILE_MAX - at) {
		pr_notice_ratelimited("%s: replay: a write at %lld of %zu bytes (the file holds %zu, at most %u)\n",
				      kv->m.name, *ppos, count, kv->rp_len,
				      RP_FILE_MAX);
		return -EFBIG;
	}
	if (at + count > kv->rp_cap) {
		cap = clamp_t(size_t, 2 * kv->rp_cap, at + count, RP_FILE_MAX);
		b = kvrealloc(kv->rp_file, cap, GFP_KERNEL_ACCOUNT);
		if (!b)
			return -ENOMEM;
		kv->rp_file = b;
		kv->rp_cap = cap;
	}
	if (copy_from_user(kv->rp_file + at, ubuf, count))
		return -EFAULT;
	kv->rp_len = at + count;
	*ppos += count;
	return count;
}

const struct file_operations kv_replay_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.write = kv_replay_write,
};

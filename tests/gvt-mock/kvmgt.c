// SPDX-License-Identifier: GPL-2.0
/*
 * gvt_mock's kvmgt: mdev vGPUs that a real QEMU opens and gmig's gvt
 * provider migrates, on the vGPU model of companion.c.
 *
 * The "gvt_mock" mdev parent has one type, GVTg_V5_8 (the smallest Gen9
 * type of drivers/gpu/drm/i915/gvt/vgpu.c: 64 MiB of low and 384 MiB of
 * high GM, 4 fences; Gen9's MMIO space is 2 MiB). Each vGPU gets its own
 * place in the GGTT, so two of them sit at different partitions. Each mdev
 * is a vfio_device with an emulated IOMMU whose ops do what kvmgt's
 * intel_vgpu_dev_ops do (drivers/gpu/drm/i915/gvt/kvmgt.c of 7.3 with
 * patches/gvt), as far as gmig can tell:
 *
 * - init is intel_gvt_create_vgpu() and the companion's vgpu_create,
 *   before vfio_register_emulated_iommu_dev() (patch 0001), so gmig sets
 *   mig_ops and log_ops; release is the companion's vgpu_destroy;
 * - guest memory goes through vfio_dma_rw() (intel_gvt_read_gpa()); a
 *   present GGTT entry pins its page with vfio_pin_pages()
 *   (gvt_pin_guest_page(), reported to pages_pinned), and dma_unmap
 *   unpins the pages of the range (intel_vgpu_dma_unmap(),
 *   pages_unpinned); the GPU writes through an entry whose page is not
 *   pinned go to the scratch page, as the shadow entry maps it then;
 * - VFIO_DEVICE_RESET resets the vGPU (intel_gvt_reset_vgpu(): workloads
 *   dropped, GGTT, registers and fences cleared, pages unpinned; no
 *   ggtt_write hook) and then calls the companion's vgpu_reset
 *   (patch 0008); close_device calls vgpu_reset first, then releases;
 * - BAR0 holds the registers (the vreg image) and, in its upper half, the
 *   GTT MMIO range (intel_vgpu_emulate_ggtt_mmio_write() and _read(), with
 *   patch 0010's map_gma); an access of less than an entry there is
 *   dropped (kvmgt's partial update is not emulated);
 * - config space: the OpRegion's address (ASLS) and the SWSCI mailbox
 *   requests, which kvmgt answers in guest memory
 *   (mock_opregion_request_locked()).
 *
 * Not emulated: the aperture BAR, interrupts (INTx pin 0, no MSI: the
 * guests of the tests boot no OS), the OpRegion's content (the VFIO
 * region), display output and dma-buf (the plane decode is: stats
 * shows it).
 *
 * The stand-in guest driver. The test guests have no GPU driver, so one
 * is played from the host, through debugfs gvt_mock/<uuid>/workload
 * ("start desktop", "start game", "stop"). Like a guest's i915 it
 * programs the GGTT through the GTT MMIO range (entries from its GM base
 * onto guest frames from 16 MiB: a state page, a two-page context image,
 * a ring, the targets), writes MI_STORE_DATA_IMM batches into the ring,
 * the ring's head and tail into the context image, and writes the
 * context's descriptor to the ELSP. At its first start (no state in guest
 * memory) it also sets up what i915 sets up once: two fences, each
 * engine's status page (HWS_PGA), pipe A's primary plane and cursor
 * (kv_setup_addresses()). A tick every 30 ms, while the device
 * is open, first runs the GPU (mock_gpu_run(): the queued workloads,
 * unless gmig stopped the schedule), then lets the driver submit its next
 * batch once the last one completed. Its state lives in guest memory (the
 * state page holds its GM base): on a destination at another GGTT place
 * the driver goes on with the source's graphics addresses, which map_gma
 * and the scanner hook move, as the guest OS would.
 *
 * The driver's own writes are CPU writes of a real guest, which the VMM
 * tracks; here they are DMA QEMU cannot see. So each one goes only where
 * the GPU or kvmgt writes for the same submission: the ring page gets a
 * breadcrumb store of each batch and lies in the context image's
 * write-back range (22 pages from the LRCA), the head and tail are in the
 * context image; the state page is written by the batch's own stores.
 * Every one thus reaches gmig's write set, and a page that a real guest
 * would have QEMU send is not missed for lack of a CPU.
 */

#define pr_fmt(fmt) "gvt_mock: " fmt

#include <linux/debugfs.h>
#include <linux/device.h>
#include <linux/eventfd.h>
#include <linux/iommu.h>
#include <linux/iova_bitmap.h>
#include <linux/mdev.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/unaligned.h>
#include <linux/vfio.h>
#include <linux/vfio_pci_core.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

#include "gvt_mock.h"

#define KV_NAME		"gvt_mock"
#define KV_TYPE		"GVTg_V5_8"
#define KV_MAX		4
#define KV_LOW_GM	SZ_64M
#define KV_HIGH_GM	(SZ_256M + SZ_128M)
#define KV_MMIO_SIZE	SZ_2M		/* Gen9's mmio_size */
#define KV_BAR0_SIZE	SZ_16M
#define KV_GTT_OFFSET	SZ_8M		/* Gen8+: GTT in BAR0's upper half */
#define KV_CFG_SIZE	256
#define KV_CFG_SWSCI	0xe8	/* INTEL_GVT_PCI_SWSCI */
#define KV_CFG_ASLS	0xfc	/* INTEL_GVT_PCI_OPREGION */
#define KV_ID_BASE	11		/* gmig: debugfs gmig/gvt-vgpu<id> */
#define KV_OFFSET_SHIFT	40
#define KV_INDEX(off)	((off) >> KV_OFFSET_SHIFT)
#define KV_OFFSET_MASK	((1ULL << KV_OFFSET_SHIFT) - 1)
#define KV_TICK_MS	30		/* the sim's desktop: 30 frames/s */

/* The stand-in guest driver: guest frames from KV_WINDOW, GGTT entries. */
#define KV_WINDOW	SZ_16M		/* the tests compare 16..56 MiB */
#define DRV_MAGIC	0x76726447	/* "Gdrv" */
enum { DRV_STATE, DRV_CTX, DRV_RING_CTX, DRV_RING, DRV_TARGET };
/* after the most targets: the engines' status pages, two surfaces */
#define DRV_HWSP	(DRV_TARGET + 256)
#define DRV_SURF	(DRV_HWSP + MOCK_ENGINES)
#define DRV_PAGES	(DRV_SURF + 2)
#define DRV_RING_DWORDS	(MOCK_PAGE / 4)

struct kv_profile {
	const char *name;
	unsigned int targets;	/* pages the batches write */
	unsigned int stores;	/* MI_STORE_DATA_IMM per batch */
};

static const struct kv_profile kv_profiles[] = {
	{ "desktop", 16, 4 },
	{ "game", 256, 96 },
};

struct kv_vgpu {
	struct mock_vgpu m;		/* first: m.vdev is the vfio_device */
	unsigned int slot;
	/*
	 * pinned guest frames -> shadow entries mapping them, and -> their
	 * page (kvmgt's DMA cache, with patch 0020), under m.lock
	 */
	struct xarray pins;
	struct xarray pin_pages;
	unsigned long npins;
	u64 scratch_writes;
	u8 cfg[KV_CFG_SIZE];		/* under m.lock */
	spinlock_t req_lock;
	struct eventfd_ctx *req;
	struct delayed_work tick;
	struct dentry *dir;
	/* the stand-in guest driver, under m.drv_lock */
	bool open;
	const struct kv_profile *prof, *start;
	u64 gma;			/* the guest's GM base it uses */
	u32 round;
	u64 contexts, faults, rounds;
	u32 *ring;
	/* the replay driver, under m.drv_lock: its file, the run, a start */
	u8 *rp_file;
	size_t rp_len, rp_cap;
	struct kv_replay *rp;
	bool rp_start;
	u64 rp_base, rp_size;
	/* the VMM's log of the driver's CPU writes (kv_log_ops) */
	const struct vfio_log_ops *gmig_log;
	struct xarray cpu_dirty;
	bool logging, cpu_dirty_lost;
	u64 cpu_dirty_reported;
};

static struct {
	struct device dev;
	struct mdev_parent parent;
	struct mdev_type type;
	struct mdev_type *types[1];
	struct workqueue_struct *wq;
	struct dentry *dir;
	struct mutex lock;		/* slots */
	DECLARE_BITMAP(slots, KV_MAX);
} kv_parent;

static const struct vfio_device_ops kv_dev_ops;

static struct kv_vgpu *to_kv(struct vfio_device *vdev)
{
	return container_of(vdev, struct kv_vgpu, m.vdev);
}

/* Pins: gvt_pin_guest_page() and gvt_unpin_guest_page(), with m->lock. */

static void kv_report(struct mock_vgpu *m, u64 gfn, bool pinned)
{
	void (*fn)(void *priv, u64 gfn, u64 size);

	fn = pinned ? m->ops->pages_pinned : m->ops->pages_unpinned;
	if (fn) {
		cb_begin(m);
		fn(m->priv, gfn, MOCK_PAGE);
		cb_end(m);
	}
}

int kv_pin(struct mock_vgpu *m, u64 gfn)
{
	struct kv_vgpu *kv = m->kv;
	void *e = xa_load(&kv->pins, gfn);
	unsigned long n = e ? xa_to_value(e) : 0;
	struct page *page;
	int ret;

	if (!n) {
		ret = vfio_pin_pages(&m->vdev, gfn << PAGE_SHIFT, 1,
				     IOMMU_READ | IOMMU_WRITE, &page);
		if (ret != 1) {
			/* kvmgt maps the scratch page instead */
			pr_notice_ratelimited("%s: pinning guest frame %#llx: %d\n",
					      m->name, gfn, ret);
			return ret < 0 ? ret : -EFAULT;
		}
	}
	if (xa_is_err(xa_store(&kv->pins, gfn, xa_mk_value(n + 1),
			       GFP_KERNEL)) ||
	    (!n && xa_is_err(xa_store(&kv->pin_pages, gfn, page,
				      GFP_KERNEL)))) {
		if (!n) {
			xa_erase(&kv->pins, gfn);
			vfio_unpin_pages(&m->vdev, gfn << PAGE_SHIFT, 1);
		}
		return -ENOMEM;
	}
	if (!n) {
		kv->npins++;
		kv_report(m, gfn, true);
	}
	return 0;
}

static void kv_drop(struct kv_vgpu *kv, u64 gfn)
{
	xa_erase(&kv->pins, gfn);
	xa_erase(&kv->pin_pages, gfn);
	vfio_unpin_pages(&kv->m.vdev, gfn << PAGE_SHIFT, 1);
	kv->npins--;
	kv_report(&kv->m, gfn, false);
}

void kv_unpin(struct mock_vgpu *m, u64 gfn)
{
	struct kv_vgpu *kv = m->kv;
	void *e = xa_load(&kv->pins, gfn);
	unsigned long n = e ? xa_to_value(e) : 0;

	if (n > 1)
		xa_store(&kv->pins, gfn, xa_mk_value(n - 1), GFP_KERNEL);
	else if (n == 1)
		kv_drop(kv, gfn);
}

bool kv_pinned(struct mock_vgpu *m, u64 gfn)
{
	if (xa_load(&m->kv->pins, gfn))
		return true;
	m->kv->scratch_writes++;
	return false;
}

/*
 * The page of a frame kvmgt holds pinned, NULL if none (m.lock held, as
 * kvmgt's cache_lock: intel_gvt_companion_read_pinned(), patch 0021).
 */
struct page *kv_pinned_page(struct mock_vgpu *m, u64 gfn)
{
	lockdep_assert_held(&m->lock);
	return xa_load(&m->kv->pin_pages, gfn);
}

/* Unpins the frames @first..@last (m.lock held). */
static void kv_unpin_range(struct kv_vgpu *kv, u64 first, u64 last)
{
	unsigned long gfn;
	void *e;

	xa_for_each_range(&kv->pins, gfn, e, first, last)
		kv_drop(kv, gfn);
}

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
#define RP_MAX_CONTEXTS		8
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

struct kv_replay {
	/* the file's header and map table */
	u32 contexts, execs, maps;
	u64 mapped;
	u64 *before;		/* pages of the maps before each */
	/* the window: guest base, GM of the first context, PML4, data */
	u64 base, gbase, pml4, data;
	size_t first, next;	/* record offsets */
	bool in_flight;
	size_t exec_off;	/* the execbuffer in flight */
	u32 desc, ctx_id;
	u32 tails[RP_MAX_CONTEXTS];
	u64 submitted, executed, loops, pages_written, model_pages;
};

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
static void kv_replay_stop(struct kv_vgpu *kv)
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
static int kv_replay_setup(struct kv_vgpu *kv)
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
static int kv_replay_tick(struct kv_vgpu *kv)
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

static const struct file_operations kv_replay_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.write = kv_replay_write,
};

/*
 * The VMM's dirty log of the stand-in driver's CPU writes, on top of
 * gmig's DMA logging: what QEMU reads from the device is gmig's report
 * and those writes (cpu_dirty_reported in stats). kvmgt has no such
 * thing; it stands in for KVM's dirty log of a real guest's vCPUs.
 */
static int kv_log_start(struct vfio_device *vdev, struct rb_root_cached *ranges,
			u32 nnodes, u64 *page_size)
{
	struct kv_vgpu *kv = to_kv(vdev);
	int ret;

	xa_destroy(&kv->cpu_dirty);
	WRITE_ONCE(kv->cpu_dirty_lost, false);
	WRITE_ONCE(kv->logging, true);
	ret = kv->gmig_log->log_start(vdev, ranges, nnodes, page_size);
	if (ret)
		WRITE_ONCE(kv->logging, false);
	return ret;
}

static int kv_log_stop(struct vfio_device *vdev)
{
	struct kv_vgpu *kv = to_kv(vdev);

	WRITE_ONCE(kv->logging, false);
	xa_destroy(&kv->cpu_dirty);
	return kv->gmig_log->log_stop(vdev);
}

static int kv_log_read_and_clear(struct vfio_device *vdev, unsigned long iova,
				 unsigned long length, struct iova_bitmap *dirty)
{
	struct kv_vgpu *kv = to_kv(vdev);
	unsigned long gfn;
	void *e;
	int ret;

	ret = kv->gmig_log->log_read_and_clear(vdev, iova, length, dirty);
	if (ret || !length)
		return ret;
	if (READ_ONCE(kv->cpu_dirty_lost))
		return -ENOMEM;
	xa_for_each_range(&kv->cpu_dirty, gfn, e, iova >> PAGE_SHIFT,
			  (iova + length - 1) >> PAGE_SHIFT) {
		iova_bitmap_set(dirty, (u64)gfn << PAGE_SHIFT, PAGE_SIZE);
		xa_erase(&kv->cpu_dirty, gfn);
		kv->cpu_dirty_reported++;
	}
	return 0;
}

static const struct vfio_log_ops kv_log_ops = {
	.log_start = kv_log_start,
	.log_stop = kv_log_stop,
	.log_read_and_clear = kv_log_read_and_clear,
};

/* intel_gvt_reset_vgpu() and the release's gvt_cache_destroy(). */
static void kv_reset_vgpu(struct kv_vgpu *kv)
{
	struct mock_vgpu *m = &kv->m;

	scoped_guard(mutex, &m->drv_lock) {
		kv->prof = NULL;
		kv->start = NULL;
		kv_replay_stop(kv);
	}
	guard(mutex)(&m->lock);
	mock_reset_locked(m);
	kv_unpin_range(kv, 0, ULONG_MAX);
}

/* The stand-in guest driver. */

static void kv_store(struct kv_vgpu *kv, u32 *n, u64 gma, u32 val)
{
	u32 *c = &kv->ring[*n];

	c[0] = MOCK_SDI;
	c[1] = lower_32_bits(gma);
	c[2] = upper_32_bits(gma);
	c[3] = val;
	*n += 4;
}

static u64 drv_gma(struct kv_vgpu *kv, unsigned int entry)
{
	return kv->gma + (u64)entry * MOCK_PAGE;
}

static u64 drv_gpa(unsigned int entry)
{
	return KV_WINDOW + (u64)entry * MOCK_PAGE;
}

/* One batch: builds it, writes the ring and context image, ELSP. */
static void kv_submit(struct kv_vgpu *kv)
{
	const struct kv_profile *p = kv->prof;
	struct mock_vgpu *m = &kv->m;
	u32 r = ++kv->round, n = 0, i, ctx[4];
	int ret;

	kv_store(kv, &n, drv_gma(kv, DRV_STATE), DRV_MAGIC);
	kv_store(kv, &n, drv_gma(kv, DRV_STATE) + 4, lower_32_bits(kv->gma));
	kv_store(kv, &n, drv_gma(kv, DRV_STATE) + 8, upper_32_bits(kv->gma));
	kv_store(kv, &n, drv_gma(kv, DRV_STATE) + 12, r);
	for (i = 0; i < p->stores; i++) {
		u32 t = (r * 7 + i * 13) % p->targets;
		u32 off = ((r * 5 + i) * 4) % MOCK_PAGE;

		kv_store(kv, &n, drv_gma(kv, DRV_TARGET + t) + off,
			 (r << 8) | (i & 0xff));
	}
	kv_store(kv, &n, drv_gma(kv, DRV_RING) + MOCK_PAGE - 4, r);

	/* head, tail, start and control of struct execlist_ring_context */
	ctx[0] = 0;
	ctx[1] = 4 * n;
	ctx[2] = lower_32_bits(drv_gma(kv, DRV_RING));
	ctx[3] = 1;	/* RB_CTL: enabled, one page */
	ret = mock_mem_rw(m, drv_gpa(DRV_RING), kv->ring, 4 * n, true);
	for (i = 0; !ret && i < ARRAY_SIZE(ctx); i++)
		ret = mock_mem_rw(m, drv_gpa(DRV_RING_CTX) + 0x14 + 8 * i,
				  &ctx[i], 4, true);
	if (!ret)
		ret = mock_elsp(m, 0, lower_32_bits(drv_gma(kv, DRV_CTX)) |
				MOCK_DESC_VALID | MOCK_DESC_PRIV, r);
	kv->rounds++;
	if (ret) {
		kv->faults++;
		pr_warn_ratelimited("%s: submission %u failed: %d\n", m->name,
				    r, ret);
	}
}

/*
 * What a guest's i915 sets up once, at its start: fence 0 (Y tiled) over
 * the first 8 targets and fence 1 (X tiled) over the surfaces, as
 * i965_write_fence_reg() writes them; each engine's HWS_PGA; pipe A's
 * primary plane and cursor on the surfaces. The registers go through
 * GVT-g's handlers (fence_mmio_write(), hws_pga_write(), plain stores
 * for the display registers).
 */
static int kv_setup_addresses(struct kv_vgpu *kv)
{
	struct mock_vgpu *m = &kv->m;
	u64 t = drv_gma(kv, DRV_TARGET), f = drv_gma(kv, DRV_SURF);
	unsigned int e;
	int ret;

	ret = mock_fence_mmio_write(m, 0, (t + 7 * MOCK_PAGE) << 32 |
				    3ULL << 32 | t | BIT(1) | MOCK_FENCE_VALID) ?:
	      mock_fence_mmio_write(m, 1, (f + MOCK_PAGE) << 32 | 3ULL << 32 |
				    f | MOCK_FENCE_VALID);
	for (e = 0; !ret && e < MOCK_ENGINES; e++)
		ret = mock_hws_pga_write(m, e,
					 lower_32_bits(drv_gma(kv, DRV_HWSP + e)));
	if (ret)
		return ret;
	mock_vreg_write(m, MOCK_DSPCNTR, MOCK_DISP_ENABLE);
	mock_vreg_write(m, MOCK_DSPSURF, lower_32_bits(f));
	mock_vreg_write(m, MOCK_CURCNTR, MOCK_CURSOR_MODE);
	mock_vreg_write(m, MOCK_CURBASE, lower_32_bits(f + MOCK_PAGE));
	return 0;
}

/*
 * "start", in the tick: the driver finds its state in guest memory (a
 * guest that ran it before, here or on a migration source) or takes the
 * vGPU's GM base, and programs its GGTT entries. (vfio_dma_rw() works from
 * the VFIO user's process or a kernel thread, not from the writer of the
 * debugfs file.)
 */
static int kv_start(struct kv_vgpu *kv, const struct kv_profile *p)
{
	struct mock_vgpu *m = &kv->m;
	u32 st[3];
	unsigned int k;
	int ret;

	ret = mock_mem_rw(m, drv_gpa(DRV_STATE), st, sizeof(st), false);
	if (ret)
		return ret;
	kv->gma = st[0] == DRV_MAGIC ? st[1] | (u64)st[2] << 32 :
				       m->layout.aperture_base;
	for (k = 0; k < DRV_PAGES; k++)
		if (k < DRV_TARGET + p->targets || k >= DRV_HWSP)
			mock_ggtt_mmio_write(m, (drv_gma(kv, k) >> 12) * 8,
					     MOCK_PTE(drv_gpa(k) >> 12));
	/* a driver that ran before (here or on a source) set these up */
	ret = st[0] == DRV_MAGIC ? 0 : kv_setup_addresses(kv);
	if (ret)
		return ret;
	kv->prof = p;
	pr_info("%s: workload %s at guest %#x, GM %#llx\n", m->name, p->name,
		KV_WINDOW, kv->gma);
	return 0;
}

static void kv_tick(struct work_struct *work)
{
	struct kv_vgpu *kv = container_of(to_delayed_work(work),
					  struct kv_vgpu, tick);
	struct mock_vgpu *m = &kv->m;
	unsigned int queued;
	int errs, ran, ret;
	bool stopped;

	guard(mutex)(&m->drv_lock);
	if (!kv->open)
		return;
	scoped_guard(mutex, &m->lock)
		errs = m->run_errors;
	ran = mock_gpu_run(m, false);
	scoped_guard(mutex, &m->lock) {
		errs = m->run_errors - errs;
		stopped = m->stopped;
		queued = mock_queued(m);
	}
	if (ran > 0) {
		kv->contexts += ran - errs;
		kv->faults += errs;
	}
	if (kv->start && !stopped) {
		ret = kv_start(kv, kv->start);
		if (ret) {
			kv->faults++;
			pr_warn_ratelimited("%s: workload start: %d\n", m->name,
					    ret);
		}
		kv->start = NULL;
	} else if (kv->rp_start && !stopped) {
		kv->rp_start = false;
		ret = kv_replay_setup(kv);
		if (ret)
			kv->faults++;
	} else if (kv->rp && !stopped && !queued) {
		ret = kv_replay_tick(kv);
		if (ret) {
			kv->faults++;
			pr_warn_ratelimited("%s: replay: %d\n", m->name, ret);
		}
	} else if (kv->prof && !stopped && !queued) {
		kv_submit(kv);
	}
	queue_delayed_work(kv_parent.wq, &kv->tick,
			   msecs_to_jiffies(kv->rp ? 1 : KV_TICK_MS));
}

/* debugfs gvt_mock/<uuid>/{workload,stats} */

static ssize_t kv_workload_write(struct file *file, const char __user *ubuf,
				 size_t count, loff_t *ppos)
{
	struct kv_vgpu *kv = file->private_data;
	const struct kv_profile *p = &kv_profiles[0];
	char buf[96], *arg, *opt;
	u64 base = KV_WINDOW, size = 0;
	int i;

	if (count >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, count))
		return -EFAULT;
	buf[count] = 0;
	arg = strim(buf);
	guard(mutex)(&kv->m.drv_lock);
	if (!strcmp(arg, "stop")) {
		kv->prof = NULL;
		kv->start = NULL;
		kv_replay_stop(kv);
		return count;
	}
	if (strncmp(arg, "start", 5) || (arg[5] && arg[5] != ' '))
		return -EINVAL;
	arg = skip_spaces(arg + 5);
	/* start replay [base=<gpa>] [size=<bytes>]: the sim's syntax */
	if (!strncmp(arg, "replay", 6) && (!arg[6] || arg[6] == ' ')) {
		arg += 6;
		while ((opt = strsep(&arg, " ")))
			if (!strncmp(opt, "base=", 5))
				base = memparse(opt + 5, NULL);
			else if (!strncmp(opt, "size=", 5))
				size = memparse(opt + 5, NULL);
			else if (*opt)
				return -EINVAL;
		if (!kv->open)
			return -ENODEV;
		if (!kv->rp_len)
			return -ENOENT;
		kv->prof = NULL;
		kv->start = NULL;
		kv_replay_stop(kv);
		kv->rp_base = base;
		kv->rp_size = size;
		kv->rp_start = true;	/* the next tick sets it up */
		return count;
	}
	if (*arg) {
		for (i = 0; i < ARRAY_SIZE(kv_profiles); i++)
			if (!strcmp(arg, kv_profiles[i].name))
				break;
		if (i == ARRAY_SIZE(kv_profiles))
			return -EINVAL;
		p = &kv_profiles[i];
	}
	if (!kv->open)
		return -ENODEV;
	kv_replay_stop(kv);
	kv->start = p;	/* the next tick starts it */
	return count;
}

static const struct file_operations kv_workload_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.write = kv_workload_write,
};

/*
 * The graphics addresses GVT-g uses outside command buffers: each valid
 * hardware fence's range, each engine's status page (the guest's HWS_PGA
 * value in brackets), the CSB writes and the guest frame of each engine's
 * last one, the decoded primary plane and cursor (base, guest address).
 */
static void kv_stats_addresses(struct seq_file *s, struct mock_vgpu *m)
{
	static const char * const plane[] = { "primary", "cursor" };
	unsigned int i;
	u32 base;
	u64 gpa;

	scoped_guard(mutex, &m->lock) {
		for (i = 0; i < m->layout.fence_count; i++)
			if (m->hw_fence[i] & MOCK_FENCE_VALID)
				seq_printf(s, "fence%u: %#llx-%#llx\n", i,
					   m->hw_fence[i] & MOCK_FENCE_ADDR,
					   (u64)(upper_32_bits(m->hw_fence[i]) &
						 MOCK_FENCE_ADDR) + MOCK_PAGE - 1);
		for (i = 0; i < MOCK_ENGINES; i++) {
			u32 v = 0;

			if (MOCK_HWS_PGA(i) + 4 <= m->vregs_size)
				memcpy(&v, m->vregs + MOCK_HWS_PGA(i), 4);
			seq_printf(s, "hws_pga%u: %#x (%#x)\n", i,
				   m->hws_pga[i], v);
			seq_printf(s, "csb_gfn%u: %#llx\n", i,
				   m->csb_gpa[i] >> 12);
		}
		seq_printf(s, "csb_writes: %u\n", m->csb_writes);
	}
	for (i = 0; i < ARRAY_SIZE(plane); i++) {
		if (mock_decode_plane(m, i, &base, &gpa))
			seq_printf(s, "%s: none\n", plane[i]);
		else
			seq_printf(s, "%s: %#x %#llx\n", plane[i], base, gpa);
	}
}

static int kv_stats_show(struct seq_file *s, void *unused)
{
	struct kv_vgpu *kv = s->private;
	struct mock_vgpu *m = &kv->m;
	const struct intel_gvt_vgpu_layout *l = &m->layout;
	int i;

	scoped_guard(mutex, &m->drv_lock) {
		seq_printf(s, "workload: %s\n", kv->prof ? kv->prof->name :
			   kv->rp ? "replay" :
			   kv->start || kv->rp_start ? "starting" : "none");
		seq_printf(s, "contexts: %llu\n", kv->contexts);
		seq_printf(s, "faults: %llu\n", kv->faults);
		seq_printf(s, "submissions: %llu\n", kv->rounds);
		if (kv->rp) {
			seq_printf(s, "replay_submitted: %llu\n", kv->rp->submitted);
			seq_printf(s, "replay_executed: %llu\n", kv->rp->executed);
			seq_printf(s, "replay_loops: %llu\n", kv->rp->loops);
			seq_printf(s, "replay_pages_written: %llu\n",
				   kv->rp->pages_written);
			seq_printf(s, "replay_model_pages: %llu\n",
				   kv->rp->model_pages);
		}
		seq_printf(s, "replay file: %zu bytes\n", kv->rp_len);
		seq_printf(s, "cpu_dirty_reported: %llu\n",
			   kv->cpu_dirty_reported);
	}
	scoped_guard(mutex, &m->lock) {
		seq_printf(s, "queued: %u\n", mock_queued(m));
		seq_printf(s, "pins: %lu\n", kv->npins);
		seq_printf(s, "pages_read_pinned: %lld\n",
			   atomic64_read(&m->pinned_reads));
		seq_printf(s, "read_pinned_calls: %lld\n",
			   atomic64_read(&m->pinned_calls));
		seq_printf(s, "scratch_writes: %llu\n", kv->scratch_writes);
		seq_printf(s, "scheduled: %s\n", m->stopped ? "no" : "yes");
		seq_printf(s, "scan_cmds: %llu\n", m->scan_cmds);
		seq_printf(s, "scan_batches: %llu\n", m->scan_batches);
		seq_printf(s, "scan_refused: %llu\n", m->scan_refused);
		seq_printf(s, "scan_nonprivbb: %#lx\n", m->scan_nonprivbb);
		for (i = 0; i < MOCK_PPGTTS; i++)
			if (m->ppgtt[i].used)
				seq_printf(s, "ppgtt%d: root %#llx, %u pages\n", i,
					   m->ppgtt[i].pdps[0],
					   m->ppgtt[i].npins);
	}
	kv_stats_addresses(s, m);
	seq_printf(s, "gm: low %#llx+%#llx high %#llx+%#llx\n",
		   l->aperture_base, l->aperture_size, l->hidden_base,
		   l->hidden_size);
	seq_printf(s, "gmig: gvt-vgpu%u\n", l->id);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(kv_stats);

/* PCI config space and BAR0. */

static void kv_cfg_init(u8 *c)
{
	memset(c, 0, KV_CFG_SIZE);
	put_unaligned_le16(PCI_VENDOR_ID_INTEL, c + PCI_VENDOR_ID);
	put_unaligned_le16(0x1912, c + PCI_DEVICE_ID);	/* SKL GT2 */
	c[PCI_REVISION_ID] = 0x06;
	put_unaligned_le16(PCI_CLASS_DISPLAY_VGA, c + PCI_CLASS_DEVICE);
	put_unaligned_le32(PCI_BASE_ADDRESS_MEM_TYPE_64, c + PCI_BASE_ADDRESS_0);
	put_unaligned_le16(PCI_VENDOR_ID_INTEL, c + PCI_SUBSYSTEM_VENDOR_ID);
	put_unaligned_le16(0x2212, c + PCI_SUBSYSTEM_ID);
}

static void kv_cfg_write(struct kv_vgpu *kv, u64 off, u64 val, size_t len)
{
	u8 *c = kv->cfg;

	if (off == PCI_COMMAND && len >= 2) {
		put_unaligned_le16(val & (PCI_COMMAND_MEMORY |
					  PCI_COMMAND_MASTER), c + off);
	} else if (off == PCI_BASE_ADDRESS_0 && len == 4) {
		put_unaligned_le32((val & ~(u64)(KV_BAR0_SIZE - 1)) |
				   PCI_BASE_ADDRESS_MEM_TYPE_64, c + off);
	} else if (off == PCI_BASE_ADDRESS_1 && len == 4) {
		put_unaligned_le32(val, c + off);
	} else if (off == KV_CFG_SWSCI && len == 4) {
		/* intel_vgpu_emulate_cfg_write(): a request, not stored */
		mock_opregion_request_locked(&kv->m, val);
	} else if (off == KV_CFG_ASLS && len == 4) {
		mock_opregion_base_locked(&kv->m, val);
		put_unaligned_le32(val, c + off);
	}
}

/* One naturally aligned access of @len bytes: 1, 2, 4 or 8. */
static int kv_access(struct kv_vgpu *kv, unsigned int index, u64 off,
		     u64 *val, size_t len, bool write)
{
	struct mock_vgpu *m = &kv->m;

	if (index == VFIO_PCI_CONFIG_REGION_INDEX) {
		if (off + len > KV_CFG_SIZE || len > 4)
			return -EINVAL;
		guard(mutex)(&m->lock);
		if (write)
			kv_cfg_write(kv, off, *val, len);
		else
			memcpy(val, kv->cfg + off, len);
		return 0;
	}
	if (index != VFIO_PCI_BAR0_REGION_INDEX || off + len > KV_BAR0_SIZE)
		return -EINVAL;
	if (off >= KV_GTT_OFFSET) {
		if (len != 8) {
			pr_notice_ratelimited("%s: GTT access of %zu bytes at %#llx dropped\n",
					      m->name, len, off);
			if (!write)
				*val = 0;
			return 0;
		}
		if (write)
			mock_ggtt_mmio_write(m, off - KV_GTT_OFFSET, *val);
		else
			*val = mock_ggtt_mmio_read(m, off - KV_GTT_OFFSET);
		return 0;
	}
	guard(mutex)(&m->lock);
	if (off + len > m->vregs_size) {
		if (!write)
			*val = 0;
	} else if (write) {
		memcpy(m->vregs + off, val, len);
	} else {
		memcpy(val, m->vregs + off, len);
	}
	return 0;
}

static ssize_t kv_rw(struct vfio_device *vdev, char __user *ubuf,
		     size_t count, loff_t *ppos, bool write)
{
	struct kv_vgpu *kv = to_kv(vdev);
	unsigned int index = KV_INDEX(*ppos);
	u64 off = *ppos & KV_OFFSET_MASK;
	size_t done = 0;

	while (done < count) {
		/* config space takes up to dwords, BAR0 up to GTT entries */
		size_t len = index == VFIO_PCI_CONFIG_REGION_INDEX ? 4 : 8;
		u64 val = 0;
		int ret;

		while (len > count - done || (off + done) % len)
			len /= 2;
		if (write && copy_from_user(&val, ubuf + done, len))
			return -EFAULT;
		ret = kv_access(kv, index, off + done, &val, len, write);
		if (ret)
			return done ? done : ret;
		if (!write && copy_to_user(ubuf + done, &val, len))
			return -EFAULT;
		done += len;
	}
	*ppos += done;
	return done;
}

static ssize_t kv_read(struct vfio_device *vdev, char __user *buf,
		       size_t count, loff_t *ppos)
{
	return kv_rw(vdev, buf, count, ppos, false);
}

static ssize_t kv_write(struct vfio_device *vdev, const char __user *buf,
			size_t count, loff_t *ppos)
{
	return kv_rw(vdev, (char __user *)buf, count, ppos, true);
}

static int kv_get_region_info(struct vfio_device *vdev,
			      struct vfio_region_info *info,
			      struct vfio_info_cap *caps)
{
	if (info->index >= VFIO_PCI_NUM_REGIONS)
		return -EINVAL;
	info->offset = (u64)info->index << KV_OFFSET_SHIFT;
	info->size = 0;
	if (info->index == VFIO_PCI_CONFIG_REGION_INDEX)
		info->size = KV_CFG_SIZE;
	else if (info->index == VFIO_PCI_BAR0_REGION_INDEX)
		info->size = KV_BAR0_SIZE;
	info->flags = info->size ? VFIO_REGION_INFO_FLAG_READ |
				   VFIO_REGION_INFO_FLAG_WRITE : 0;
	return 0;
}

/* Interrupts: only the request channel (device removal). */

static int kv_set_req(struct kv_vgpu *kv, int fd)
{
	struct eventfd_ctx *evt = NULL, *old;

	if (fd >= 0) {
		evt = eventfd_ctx_fdget(fd);
		if (IS_ERR(evt))
			return PTR_ERR(evt);
	}
	spin_lock(&kv->req_lock);
	old = kv->req;
	kv->req = evt;
	spin_unlock(&kv->req_lock);
	if (old)
		eventfd_ctx_put(old);
	return 0;
}

static long kv_set_irqs(struct kv_vgpu *kv, void __user *uarg)
{
	unsigned long minsz = offsetofend(struct vfio_irq_set, count);
	struct vfio_irq_set hdr;
	size_t data_size = 0;
	s32 fd;
	int ret;

	if (copy_from_user(&hdr, uarg, minsz))
		return -EFAULT;
	ret = vfio_set_irqs_validate_and_prepare(&hdr,
						 hdr.index == VFIO_PCI_REQ_IRQ_INDEX,
						 VFIO_PCI_NUM_IRQS, &data_size);
	if (ret)
		return ret;
	if ((hdr.flags & VFIO_IRQ_SET_ACTION_TYPE_MASK) !=
	    VFIO_IRQ_SET_ACTION_TRIGGER)
		return -EINVAL;
	if (hdr.flags & VFIO_IRQ_SET_DATA_NONE)
		return hdr.count ? -EINVAL : kv_set_req(kv, -1);
	if (!(hdr.flags & VFIO_IRQ_SET_DATA_EVENTFD) || hdr.count != 1)
		return -EINVAL;
	if (copy_from_user(&fd, uarg + minsz, sizeof(fd)))
		return -EFAULT;
	return kv_set_req(kv, fd);
}

static long kv_ioctl(struct vfio_device *vdev, unsigned int cmd,
		     unsigned long arg)
{
	struct kv_vgpu *kv = to_kv(vdev);
	void __user *uarg = (void __user *)arg;
	unsigned long minsz;

	switch (cmd) {
	case VFIO_DEVICE_GET_INFO: {
		struct vfio_device_info info;

		minsz = offsetofend(struct vfio_device_info, num_irqs);
		if (copy_from_user(&info, uarg, minsz))
			return -EFAULT;
		if (info.argsz < minsz)
			return -EINVAL;
		info.flags = VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET;
		info.num_regions = VFIO_PCI_NUM_REGIONS;
		info.num_irqs = VFIO_PCI_NUM_IRQS;
		return copy_to_user(uarg, &info, minsz) ? -EFAULT : 0;
	}
	case VFIO_DEVICE_GET_IRQ_INFO: {
		struct vfio_irq_info info;

		minsz = offsetofend(struct vfio_irq_info, count);
		if (copy_from_user(&info, uarg, minsz))
			return -EFAULT;
		if (info.argsz < minsz || info.index >= VFIO_PCI_NUM_IRQS)
			return -EINVAL;
		info.flags = 0;
		info.count = 0;
		if (info.index == VFIO_PCI_REQ_IRQ_INDEX) {
			info.flags = VFIO_IRQ_INFO_EVENTFD |
				     VFIO_IRQ_INFO_NORESIZE;
			info.count = 1;
		}
		return copy_to_user(uarg, &info, minsz) ? -EFAULT : 0;
	}
	case VFIO_DEVICE_SET_IRQS:
		return kv_set_irqs(kv, uarg);
	case VFIO_DEVICE_RESET:
		/* kvmgt: intel_gvt_reset_vgpu(), then patch 0008's hook */
		kv_reset_vgpu(kv);
		if (kv->m.ops->vgpu_reset)
			kv->m.ops->vgpu_reset(kv->m.priv);
		return 0;
	}
	return -ENOTTY;
}

/* vfio_device life cycle. */

static void kv_free_slot(unsigned int slot)
{
	guard(mutex)(&kv_parent.lock);
	clear_bit(slot, kv_parent.slots);
}

static int kv_init_dev(struct vfio_device *vdev)
{
	struct kv_vgpu *kv = to_kv(vdev);
	struct mock_vgpu *m = &kv->m;
	struct intel_gvt_vgpu_layout l = {
		.aperture_size = KV_LOW_GM, .hidden_size = KV_HIGH_GM,
		.fence_count = MOCK_FENCES,
	};
	char why[96] = "";
	int ret;

	scoped_guard(mutex, &kv_parent.lock) {
		kv->slot = find_first_zero_bit(kv_parent.slots, KV_MAX);
		if (kv->slot >= KV_MAX)
			return -ENOSPC;
		set_bit(kv->slot, kv_parent.slots);
	}
	/* intel_vgpu_alloc_resource(): low GM, high GM, each its own place */
	l.aperture_base = KV_LOW_GM * (1 + kv->slot);
	l.hidden_base = SZ_1G + (u64)SZ_512M * kv->slot;
	l.id = KV_ID_BASE + kv->slot;
	xa_init(&kv->pins);
	xa_init(&kv->pin_pages);
	xa_init(&kv->cpu_dirty);
	spin_lock_init(&kv->req_lock);
	INIT_DELAYED_WORK(&kv->tick, kv_tick);
	kv_cfg_init(kv->cfg);
	m->kv = kv;
	kv->ring = kmalloc(MOCK_PAGE, GFP_KERNEL);
	ret = kv->ring ? mock_init(m, dev_name(vdev->dev), &l, KV_MMIO_SIZE,
				   false) : -ENOMEM;
	if (!ret)
		ret = mock_attach(m, why, sizeof(why));
	/* the VMM's dirty log of the driver's writes on top of gmig's */
	kv->gmig_log = m->vdev.log_ops;
	if (!ret && kv->gmig_log)
		m->vdev.log_ops = &kv_log_ops;
	if (ret) {
		if (*why)
			pr_err("%s: %s\n", dev_name(vdev->dev), why);
		mock_release(m, false);
		kfree(kv->ring);
		kv_free_slot(kv->slot);
	}
	return ret;
}

static void kv_release_dev(struct vfio_device *vdev)
{
	struct kv_vgpu *kv = to_kv(vdev);

	cancel_delayed_work_sync(&kv->tick);
	mock_release(&kv->m, false);
	xa_destroy(&kv->pins);
	xa_destroy(&kv->pin_pages);
	xa_destroy(&kv->cpu_dirty);
	kvfree(kv->rp_file);
	kfree(kv->ring);
	kv_free_slot(kv->slot);
}

static int kv_open_device(struct vfio_device *vdev)
{
	struct kv_vgpu *kv = to_kv(vdev);

	/* a new VFIO user is a new guest: its driver's counts start at 0 */
	scoped_guard(mutex, &kv->m.drv_lock) {
		kv->open = true;
		kv->contexts = 0;
		kv->faults = 0;
		kv->rounds = 0;
		kv->round = 0;
	}
	queue_delayed_work(kv_parent.wq, &kv->tick, 0);
	return 0;
}

static void kv_close_device(struct vfio_device *vdev)
{
	struct kv_vgpu *kv = to_kv(vdev);

	scoped_guard(mutex, &kv->m.drv_lock)
		kv->open = false;
	cancel_delayed_work_sync(&kv->tick);
	/* patch 0008: the hook first, then intel_gvt_release_vgpu() */
	if (kv->m.ops->vgpu_reset)
		kv->m.ops->vgpu_reset(kv->m.priv);
	kv_reset_vgpu(kv);
	kv_set_req(kv, -1);
}

static void kv_dma_unmap(struct vfio_device *vdev, u64 iova, u64 length)
{
	struct kv_vgpu *kv = to_kv(vdev);

	if (!length)
		return;
	guard(mutex)(&kv->m.lock);
	kv_unpin_range(kv, iova >> PAGE_SHIFT, (iova + length - 1) >> PAGE_SHIFT);
}

/* Removal while a user has the device: ask it to let go, as vfio-pci. */
static void kv_request(struct vfio_device *vdev, unsigned int count)
{
	struct kv_vgpu *kv = to_kv(vdev);

	spin_lock(&kv->req_lock);
	if (kv->req)
		eventfd_signal(kv->req);
	else if (!count)
		dev_notice(vdev->dev, "no request channel: removal waits for the user\n");
	spin_unlock(&kv->req_lock);
}

static const struct vfio_device_ops kv_dev_ops = {
	.name = "vfio-gvt-mock",
	.init = kv_init_dev,
	.release = kv_release_dev,
	.open_device = kv_open_device,
	.close_device = kv_close_device,
	.read = kv_read,
	.write = kv_write,
	.ioctl = kv_ioctl,
	.get_region_info_caps = kv_get_region_info,
	.dma_unmap = kv_dma_unmap,
	.request = kv_request,
	.bind_iommufd = vfio_iommufd_emulated_bind,
	.unbind_iommufd = vfio_iommufd_emulated_unbind,
	.attach_ioas = vfio_iommufd_emulated_attach_ioas,
	.detach_ioas = vfio_iommufd_emulated_detach_ioas,
};

/* The mdev driver and parent. */

static int kv_probe(struct mdev_device *mdev)
{
	struct kv_vgpu *kv;
	int ret;

	kv = vfio_alloc_device(kv_vgpu, m.vdev, &mdev->dev, &kv_dev_ops);
	if (IS_ERR(kv))
		return PTR_ERR(kv);
	ret = vfio_register_emulated_iommu_dev(&kv->m.vdev);
	if (ret) {
		vfio_put_device(&kv->m.vdev);
		return ret;
	}
	dev_set_drvdata(&mdev->dev, kv);
	kv->dir = debugfs_create_dir(dev_name(&mdev->dev), kv_parent.dir);
	debugfs_create_file("workload", 0200, kv->dir, kv, &kv_workload_fops);
	debugfs_create_file("stats", 0444, kv->dir, kv, &kv_stats_fops);
	debugfs_create_file("replay", 0200, kv->dir, kv, &kv_replay_fops);
	return 0;
}

static void kv_remove(struct mdev_device *mdev)
{
	struct kv_vgpu *kv = dev_get_drvdata(&mdev->dev);

	debugfs_remove_recursive(kv->dir);
	vfio_unregister_group_dev(&kv->m.vdev);
	vfio_put_device(&kv->m.vdev);
}

static unsigned int kv_get_available(struct mdev_type *mtype)
{
	guard(mutex)(&kv_parent.lock);
	return KV_MAX - bitmap_weight(kv_parent.slots, KV_MAX);
}

static ssize_t kv_show_description(struct mdev_type *mtype, char *buf)
{
	/* intel_vgpu_type's description, as kvmgt shows it */
	return sysfs_emit(buf,
			  "low_gm_size: %uMB\nhigh_gm_size: %uMB\nfence: %u\n"
			  "resolution: 1024x768\nweight: 2\n",
			  KV_LOW_GM >> 20, KV_HIGH_GM >> 20, MOCK_FENCES);
}

static struct mdev_driver kv_driver = {
	.device_api = VFIO_DEVICE_API_PCI_STRING,
	.driver = {
		.name = KV_NAME,
		.owner = THIS_MODULE,
		.mod_name = KBUILD_MODNAME,
	},
	.probe = kv_probe,
	.remove = kv_remove,
	.get_available = kv_get_available,
	.show_description = kv_show_description,
};

static const struct class kv_class = {
	.name = KV_NAME,
};

static void kv_parent_release(struct device *dev)
{
}

int kv_register(struct dentry *dir)
{
	int ret;

	mutex_init(&kv_parent.lock);
	kv_parent.dir = dir;
	kv_parent.type.sysfs_name = KV_TYPE;
	kv_parent.type.pretty_name = KV_TYPE;
	kv_parent.types[0] = &kv_parent.type;
	kv_parent.wq = alloc_workqueue(KV_NAME, WQ_UNBOUND | WQ_MEM_RECLAIM, 0);
	if (!kv_parent.wq)
		return -ENOMEM;
	ret = mdev_register_driver(&kv_driver);
	if (ret)
		goto err_wq;
	ret = class_register(&kv_class);
	if (ret)
		goto err_driver;
	kv_parent.dev.class = &kv_class;
	kv_parent.dev.release = kv_parent_release;
	dev_set_name(&kv_parent.dev, "%s", KV_NAME);
	ret = device_register(&kv_parent.dev);
	if (ret)
		goto err_put;
	ret = mdev_register_parent(&kv_parent.parent, &kv_parent.dev,
				   &kv_driver, kv_parent.types, 1);
	if (ret)
		goto err_device;
	return 0;

err_device:
	device_del(&kv_parent.dev);
err_put:
	put_device(&kv_parent.dev);
	class_unregister(&kv_class);
err_driver:
	mdev_unregister_driver(&kv_driver);
err_wq:
	destroy_workqueue(kv_parent.wq);
	return ret;
}

void kv_unregister(void)
{
	mdev_unregister_parent(&kv_parent.parent);
	device_unregister(&kv_parent.dev);
	class_unregister(&kv_class);
	mdev_unregister_driver(&kv_driver);
	destroy_workqueue(kv_parent.wq);
}

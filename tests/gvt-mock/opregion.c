// SPDX-License-Identifier: GPL-2.0
/*
 * gvt_mock: the OpRegion's SWSCI mailbox, as
 * drivers/gpu/drm/i915/gvt/opregion.c has it
 * (intel_vgpu_opregion_base_write_handler(),
 * intel_vgpu_emulate_opregion_request()), GVT-g's own writes of guest
 * memory reported to the companion's gpa_written hook (patch 0018).
 */

#include <linux/module.h>
#include <linux/mm.h>

#include "gvt_mock.h"

/*
 * intel_vgpu_opregion_base_write_handler(): the guest wrote the OpRegion's
 * guest physical address to the ASLS config register. Called with m->lock
 * held.
 */
void mock_opregion_base_locked(struct mock_vgpu *m, u32 gpa)
{
	m->opregion_gfn = gpa >> PAGE_SHIFT;
}

/* Patch 0018: GVT-g's own write of guest memory, after it. */
static void mock_gpa_written(struct mock_vgpu *m, u64 gpa, u64 len)
{
	if (m->priv && m->ops->gpa_written) {
		cb_begin(m);
		m->ops->gpa_written(m->priv, gpa, len);
		cb_end(m);
	}
}

/*
 * querying_capabilities(): GETBIOSDATA (4) or GETBIOSCALLBACKS (6) asking
 * for the supported calls (0), GETBIOSDATA for the requested callbacks (1).
 */
static bool mock_scic_query(u32 scic)
{
	u32 func = (scic & 0x1e) >> 1, subfunc = (scic & 0xff00) >> 8;

	return ((func == 4 || func == 6) && subfunc == 0) ||
	       (func == 4 && subfunc == 1);
}

/*
 * intel_vgpu_emulate_opregion_request(): the guest wrote @swsci to the
 * SWSCI config register (intel_vgpu_emulate_cfg_write(), which does not
 * store it, so the trigger bit always reads as a 0->1 transition). GVT-g
 * reads the mailbox's SCIC and PARM from the guest's OpRegion and writes
 * its answer back into guest memory, itself (intel_gvt_write_gpa()): zero
 * for a capability query, else SCIC without its exit status ("failure"),
 * each write reported to gpa_written (patch 0018). Called with m->lock
 * held.
 */
int mock_opregion_request_locked(struct mock_vgpu *m, u32 swsci)
{
	u64 scic_pa = m->opregion_gfn * MOCK_PAGE + MOCK_OPREGION_SCIC;
	u64 parm_pa = m->opregion_gfn * MOCK_PAGE + MOCK_OPREGION_PARM;
	u32 scic, parm;
	int ret;

	ret = mem_rw(m, scic_pa, &scic, 4, false, false) ?:
	      mem_rw(m, parm_pa, &parm, 4, false, false);
	if (ret)
		return ret;
	if (!(swsci & MOCK_SWSCI_SELECT) || !(swsci & MOCK_SWSCI_TRIGGER))
		return 0;
	if (mock_scic_query(scic)) {
		scic = 0;
		parm = 0;
	} else {
		scic &= ~MOCK_SCIC_EXIT_MASK;
	}
	ret = mock_wr32(m, scic_pa, scic);
	mock_gpa_written(m, scic_pa, sizeof(scic));
	if (ret)
		return ret;
	ret = mock_wr32(m, parm_pa, parm);
	mock_gpa_written(m, parm_pa, sizeof(parm));
	return ret;
}

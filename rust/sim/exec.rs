// SPDX-License-Identifier: GPL-2.0

//! The command streamer's run: a vGPU's pending submissions, executed from
//! the device's work item, their write sets told to the migration.

use core::sync::atomic::Ordering;

use super::{
    device::{Inner, Shared},
    mem::DmaMem,
};
use crate::{gmig_core::writeset::Tee, log::dev_ratelimited};

impl Shared {
    /// Runs pending submissions of the command streamer. Called from the
    /// device's work item, never with `inner` held.
    pub(crate) fn exec(&self) {
        let mut guard = self.inner.lock();
        if !guard.open || guard.sim.is_quiesced() {
            return;
        }
        let mut mem = DmaMem::new(self);
        let Inner {
            sim,
            mig,
            replay,
            replay_file,
            ..
        } = &mut *guard;
        while !self.stopping.load(Ordering::Acquire) {
            let Some(desc) = sim.take_submission() else {
                break;
            };
            // The streamer tells the migration each command's write set
            // before running it.
            let res = match replay.as_mut() {
                // The replay's witness sees what the streamer names too.
                Some(run) => sim.execute(desc, &mut mem, &mut Tee(&mut *mig, run.witness())),
                None => sim.execute(desc, &mut mem, mig),
            };
            self.stats.contexts.fetch_add(1, Ordering::Relaxed);
            // A replayed execbuffer: the model GPU writes what Mesa said it
            // writes, unrecorded (what the analysis must have foreseen).
            if let Some(run) = replay.as_mut() {
                if let Err(e) = run.executed(desc, replay_file, &mut mem) {
                    dev_ratelimited!(dev_warn, &self.dev, "replay: model writes: {:?}\n", e);
                }
            }
            if let Err(fault) = res {
                self.faults.fetch_add(1, Ordering::Relaxed);
                dev_ratelimited!(
                    dev_warn,
                    &self.dev,
                    "context {:#x} faulted: {:?}\n",
                    desc,
                    fault
                );
            }
        }
        if sim.irq_pending() {
            self.vdev.raise_irq();
        }
    }
}

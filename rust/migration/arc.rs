// SPDX-License-Identifier: GPL-2.0

//! The arcs of the VFIO migration state machine, and the abort of a
//! migration (a reset).

use kernel::{
    prelude::*,
    time::{Instant, Monotonic},
};

use super::{
    device::{Locked, MigDevice},
    image::build_image,
    resume::apply_images,
};
use crate::{
    gmig_core::{
        provider::Provider,
        stream::Incoming,
        vfio::DeviceState::{
            self, PreCopy as PRE_COPY, PreCopyP2p as PRE_COPY_P2P, Resuming as RESUMING,
            Running as RUNNING, RunningP2p as RUNNING_P2P, Stop as STOP, StopCopy as STOP_COPY,
        },
    },
    log::dev_ratelimited,
};

pub(crate) fn arc<D: MigDevice>(d: &D, cur: DeviceState, next: DeviceState) -> Result {
    let entered = Instant::<Monotonic>::now();
    d.arc_begin();
    d.with_locked(|l| {
        let res = arc_locked(d, l, cur, next, entered);
        d.arc_end(l);
        res
    })
}

/// [`arc`] with the vGPU lock held.
fn arc_locked<D: MigDevice>(
    d: &D,
    l: &mut Locked<'_, D::Prov>,
    cur: DeviceState,
    next: DeviceState,
    entered: Instant<Monotonic>,
) -> Result {
    // Hook events reach the tracker where it is used: after the quiesce
    // of the stop arcs below, and at each report.
    let mig = &mut *l.mig;
    match (cur, next) {
        (RUNNING, PRE_COPY) | (RUNNING_P2P, PRE_COPY_P2P) => {
            mig.start_save();
            mig.drop_images();
            build_image(&*l.prov, &mut mig.image)?;
            mig.keep_base(&*l.prov, d.ggtt_writes_seen());
        }
        (PRE_COPY, RUNNING) | (PRE_COPY_P2P, RUNNING_P2P) | (STOP_COPY, STOP) => {
            // A client that left STOP_COPY before reading the last byte:
            // the downtime ends here.
            if let Some(t) = mig.stopped_at.take() {
                if cur == STOP_COPY {
                    mig.stats.downtime_us = t.elapsed().as_micros_ceil();
                }
            }
            if cur == STOP_COPY {
                mig.check_patched(d, &*l.prov);
            }
            mig.release_images();
        }
        (RUNNING_P2P, STOP) => {
            l.prov.quiesce();
            d.sync(mig);
            mig.stop_scan(d, l.open);
        }
        (STOP, RUNNING_P2P) => {
            mig.stopped_at = None;
            mig.stop_unscan();
            // `arc_end()` kicks what waits.
            l.prov.resume();
        }
        (PRE_COPY_P2P, STOP_COPY) | (STOP, STOP_COPY) => {
            mig.stopped_at = Some(entered);
            mig.stats.quiesce_wait_us = entered.elapsed().as_micros_ceil();
            if cur == PRE_COPY_P2P {
                l.prov.quiesce();
                d.sync(mig);
                mig.stop_scan(d, l.open);
            } else {
                mig.start_save();
                mig.drop_images();
            }
            // Unread pre-copy bytes still go out first: images are whole.
            let t = Instant::<Monotonic>::now();
            if let Err(e) = mig.build_final(&*l.prov) {
                // The arc is refused: the device stays as it was, the
                // images, the stop-scan and the vGPU too (it runs again
                // from PRE_COPY_P2P, as STOP -> RUNNING_P2P does).
                mig.stopped_at = None;
                if cur == PRE_COPY_P2P {
                    mig.stop_unscan();
                    l.prov.resume();
                }
                let err = Error::from(e);
                let runs = if cur == PRE_COPY_P2P {
                    ", the vGPU runs again"
                } else {
                    ""
                };
                dev_ratelimited!(
                    dev_err,
                    d.dev(),
                    "{} -> STOP_COPY refused ({}): the stop-copy image could not be built: {} ({:?}); the device stays {}{}\n",
                    cur.name(),
                    err.to_errno(),
                    e.why(),
                    e,
                    cur.name(),
                    runs
                );
                return Err(err);
            }
            mig.stats.image_us = t.elapsed().as_micros_ceil();
        }
        (STOP, RESUMING) => {
            mig.reset_stats();
            mig.incoming = KVVec::new();
            mig.arrived = Incoming::default();
        }
        (RESUMING, STOP) => {
            let start = Instant::<Monotonic>::now();
            let data = core::mem::take(&mut mig.incoming);
            let res = apply_images(d, l, &data);
            l.mig.stats.resume_us = start.elapsed().as_micros_ceil();
            if res.is_err() {
                l.mig.stats.stream_errors += 1;
                l.mig.incoming = data;
            }
            res?;
        }
        (RUNNING, RUNNING_P2P)
        | (RUNNING_P2P, RUNNING)
        | (PRE_COPY, PRE_COPY_P2P)
        | (PRE_COPY_P2P, PRE_COPY) => {}
        _ => {
            dev_ratelimited!(
                dev_err,
                d.dev(),
                "unexpected migration arc {} -> {}\n",
                cur.name(),
                next.name()
            );
            return Err(EINVAL);
        }
    }
    l.mig.state = next;
    Ok(())
}

pub(crate) fn abort<D: MigDevice>(d: &D) {
    d.with_locked(|l| {
        l.prov.reset();
        l.prov.resume();
        let mig = &mut *l.mig;
        mig.state = RUNNING;
        mig.release_images();
        mig.stopped_at = None;
        mig.stop_unscan();
        d.arc_end(l);
    })
}

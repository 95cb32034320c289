// SPDX-License-Identifier: GPL-2.0

//! A scoped fork-join over the kernel's unbound workqueue: one migration's
//! re-hash spread over the online CPUs (module parameter `rehash_cpus`).
//!
//! A [`Crew`] belongs to one migration (allocated when dirty logging
//! starts, with the tracker): `lanes - 1` Arc-based work items ([`Hand`]s)
//! and a [`Board`] they share. [`Crew::fork`] posts a job of `tasks`
//! numbered tasks on the board, queues every hand on `system_unbound`,
//! and takes tasks itself (lane 0) until none is left; each hand takes
//! tasks as lane `1..lanes` from whenever the workqueue runs it. The
//! caller then waits only for the tasks that other lanes are running, not
//! for hands that have not started: a hand that starts after the job is
//! closed finds nothing to do. So a fork never waits for the workqueue to
//! schedule anything, and the caller's own CPU alone finishes the job if
//! no worker ever runs.
//!
//! What a fork guarantees its closure `f(lane, task)`:
//!
//! - every task `0..tasks` is run exactly once, and the fork returns only
//!   once every call of `f` returned: `f` may borrow the caller's stack;
//! - a lane runs on one thread at a time (lane 0 is the caller; lane `k`
//!   is hand `k - 1`, a work item, which the workqueue never runs on two
//!   CPUs at once), so per-lane state needs no lock.
//!
//! # Locks
//!
//! [`Board::job`] is a spinlock held only to post, take or finish a task,
//! never across `f`, and no other lock is taken under it. A hand takes no
//! other lock of its own: whatever `f` takes, it takes as the caller would
//! have, while the caller waits for it, so the order the fork puts locks in
//! is that of running `f` on the caller's thread (see `crate::migration`
//! for what the re-hash's `f` takes).
//!
//! # Teardown
//!
//! A hand may still be queued, or running its empty tail, after the fork
//! that queued it returned. Dropping the crew flushes every hand
//! (`flush_work()`), so no hand runs module code after the crew, and so
//! the module, is gone.

use core::{marker::PhantomData, ptr};

use kernel::{
    bindings,
    new_condvar,
    new_spinlock,
    prelude::*,
    sync::{Arc, CondVar, SpinLock},
    workqueue::{self, impl_has_work, new_work, Work, WorkItem}, //
};

/// Most lanes of a crew: the caller and seven work items.
pub(crate) const MAX_LANES: usize = 8;

/// Runs task `task` of the job whose closure is at `data`, as lane `lane`.
type Trampoline = unsafe fn(data: *const (), lane: usize, task: usize);

/// The job on the board.
struct Job {
    /// The closure's trampoline; `None` when no job is open.
    run: Option<Trampoline>,
    /// The closure, valid while `run` is `Some` or a task of it runs.
    data: *const (),
    /// Tasks of the job, and the next one to take.
    tasks: usize,
    next: usize,
    /// Tasks being run by lanes other than the caller's.
    active: usize,
}

// SAFETY: `data` points at a `Sync` closure (`Crew::fork`'s bound), which
// any thread may call through a shared reference; it is only dereferenced
// while the fork that posted it waits (see `Board::take`).
unsafe impl Send for Job {}

/// What a crew's lanes share.
#[pin_data]
struct Board {
    #[pin]
    job: SpinLock<Job>,
    /// Notified when `active` drops to zero.
    #[pin]
    idle: CondVar,
}

impl Board {
    /// Takes and runs tasks of the open job as `lane` until none is left.
    /// `counted`: the lane is not the caller's (its tasks are `active`).
    fn take(&self, lane: usize, counted: bool) {
        loop {
            let mut j = self.job.lock();
            let Some(run) = j.run.filter(|_| j.next < j.tasks) else {
                return;
            };
            let task = j.next;
            j.next += 1;
            j.active += usize::from(counted);
            let data = j.data;
            drop(j);
            // SAFETY: `run` and `data` are the trampoline and closure of the
            // open job: the fork that posted them waits, before it returns,
            // for every task taken (its own, and those counted in `active`
            // until the decrement below), so the closure is alive; `task`
            // was taken once, and `lane` runs on this thread only (the
            // module's guarantees).
            unsafe { run(data, lane, task) };
            if counted {
                let mut j = self.job.lock();
                j.active -= 1;
                if j.active == 0 {
                    self.idle.notify_all();
                }
            }
        }
    }
}

/// A work item that takes tasks as one lane.
#[pin_data]
struct Hand {
    lane: usize,
    board: Arc<Board>,
    #[pin]
    work: Work<Hand>,
}

impl_has_work! {
    impl HasWork<Self> for Hand { self.work }
}

impl WorkItem for Hand {
    type Pointer = Arc<Hand>;

    fn run(this: Arc<Hand>) {
        this.board.take(this.lane, true);
    }
}

/// The lanes of one migration's re-hash.
pub(crate) struct Crew {
    board: Arc<Board>,
    hands: KVec<Arc<Hand>>,
}

impl Crew {
    /// A crew of `lanes` lanes (at least 1, at most [`MAX_LANES`]): the
    /// caller's and `lanes - 1` work items.
    pub(crate) fn new(lanes: usize) -> Result<Self> {
        let lanes = lanes.clamp(1, MAX_LANES);
        let board = Arc::pin_init(
            pin_init!(Board {
                job <- new_spinlock!(
                    Job {
                        run: None,
                        data: ptr::null(),
                        tasks: 0,
                        next: 0,
                        active: 0,
                    },
                    "Crew::job"
                ),
                idle <- new_condvar!("Crew::idle"),
            }),
            GFP_KERNEL_ACCOUNT,
        )?;
        let mut hands = KVec::with_capacity(lanes - 1, GFP_KERNEL_ACCOUNT)?;
        for lane in 1..lanes {
            let shared = board.clone();
            let hand = Arc::pin_init(
                pin_init!(Hand {
                    lane,
                    board: shared,
                    work <- new_work!("Crew::hand"),
                }),
                GFP_KERNEL_ACCOUNT,
            )?;
            hands.push(hand, GFP_KERNEL_ACCOUNT)?;
        }
        Ok(Self { board, hands })
    }

    /// Lanes of the crew, the caller's included.
    pub(crate) fn lanes(&self) -> usize {
        self.hands.len() + 1
    }

    /// Runs `f(lane, task)` for every task of `0..tasks`, on every lane of
    /// the crew if `spread`, else on the caller's thread (lane 0) alone;
    /// returns once every call returned (see the module's guarantees).
    pub(crate) fn fork<F: Fn(usize, usize) + Sync>(&self, tasks: usize, spread: bool, f: &F) {
        if !spread || self.hands.is_empty() || tasks < 2 {
            for task in 0..tasks {
                f(0, task);
            }
            return;
        }
        {
            let mut j = self.board.job.lock();
            j.run = Some(trampoline::<F>);
            j.data = ptr::from_ref(f).cast();
            j.tasks = tasks;
            j.next = 0;
        }
        for hand in self.hands.iter() {
            // A hand still queued from an earlier fork takes this job's
            // tasks when it runs: queueing it again may fail, harmlessly.
            let _ = workqueue::system_unbound().enqueue(hand.clone());
        }
        self.board.take(0, false);
        let mut j = self.board.job.lock();
        // Every task is taken: close the job, so that a hand starting now
        // finds nothing, and wait for those the other lanes still run.
        j.run = None;
        j.data = ptr::null();
        while j.active > 0 {
            self.board.idle.wait(&mut j);
        }
    }
}

impl Drop for Crew {
    fn drop(&mut self) {
        for hand in self.hands.iter() {
            // SAFETY: `hand.work` is an initialised `work_struct` inside a
            // live `Hand` (this crew holds a reference); `flush_work()`
            // waits for a queued or running instance and needs no lock.
            unsafe { bindings::flush_work(Work::raw_get(&hand.work)) };
        }
    }
}

/// Calls the closure of type `F` at `data` for `lane` and `task`.
///
/// # Safety
///
/// `data` points at a live `F`.
unsafe fn trampoline<F: Fn(usize, usize) + Sync>(data: *const (), lane: usize, task: usize) {
    // SAFETY: `data` points at a live `F` (the contract); `F: Sync`, so a
    // shared reference may be used from this thread.
    let f = unsafe { &*data.cast::<F>() };
    f(lane, task);
}

/// Items of a slice handed out one per index to the lanes of a fork: the
/// fork's guarantees (a task runs once, a lane on one thread at a time)
/// make `&mut` to one item per task or per lane exclusive.
pub(crate) struct Shares<'a, T> {
    ptr: *mut T,
    len: usize,
    _items: PhantomData<&'a mut [T]>,
}

// SAFETY: `Shares` hands out `&mut T` to distinct items on distinct threads
// (`get`'s contract), which is sound when `T: Send`.
unsafe impl<T: Send> Sync for Shares<'_, T> {}

impl<'a, T> Shares<'a, T> {
    /// The items of `items`, borrowed for the fork.
    pub(crate) fn new(items: &'a mut [T]) -> Self {
        Self {
            ptr: items.as_mut_ptr(),
            len: items.len(),
            _items: PhantomData,
        }
    }

    /// Item `i`, if there is one.
    ///
    /// # Safety
    ///
    /// No other reference to item `i` is live while the result is: one
    /// caller per index at a time (one task, or one lane, of a fork).
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn get(&self, i: usize) -> Option<&mut T> {
        if i >= self.len {
            return None;
        }
        // SAFETY: `i < len`, so `ptr.add(i)` is an item of the borrowed
        // slice, alive for `'a`; no other reference to it is live (the
        // contract).
        Some(unsafe { &mut *self.ptr.add(i) })
    }
}

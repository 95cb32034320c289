// SPDX-License-Identifier: GPL-2.0

//! Rate limits for log lines that a guest or a VFIO user can trigger at
//! will (a faulting context, a refused arc, a corrupt stream): the kernel's
//! `DEFAULT_RATELIMIT_BURST` lines per `DEFAULT_RATELIMIT_INTERVAL`, and the
//! count of lines held back in between, as `___ratelimit()` does for the C
//! `dev_*_ratelimited()` helpers. Lock-free: a line that races the start of
//! a new window may be let through or held back once more, never lost
//! track of.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// One call site's window.
pub struct Ratelimit {
    /// Start of the current window (monotonic ns, 0 = none yet).
    begin: AtomicU64,
    /// Lines let through or held back in the current window.
    seen: AtomicU32,
    /// Lines held back since the last line let through.
    missed: AtomicU32,
}

/// What a call site may do now.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Print the line.
    Print {
        /// Lines held back since the last one printed.
        missed: u32,
    },
    /// Hold it back.
    Suppress,
}

impl Ratelimit {
    /// Length of a window (the kernel's 5 s).
    pub const INTERVAL_NS: u64 = 5_000_000_000;
    /// Lines per window (the kernel's 10).
    pub const BURST: u32 = 10;

    /// A call site that has printed nothing yet.
    pub const fn new() -> Self {
        Self {
            begin: AtomicU64::new(0),
            seen: AtomicU32::new(0),
            missed: AtomicU32::new(0),
        }
    }

    /// Whether a line may be printed at `now_ns` (a monotonic clock).
    pub fn check(&self, now_ns: u64) -> Verdict {
        let now = now_ns.max(1);
        let begin = self.begin.load(Ordering::Relaxed);
        if (begin == 0 || now.wrapping_sub(begin) >= Self::INTERVAL_NS)
            && self
                .begin
                .compare_exchange(begin, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.seen.store(0, Ordering::Relaxed);
        }
        if self.seen.fetch_add(1, Ordering::Relaxed) < Self::BURST {
            Verdict::Print {
                missed: self.missed.swap(0, Ordering::Relaxed),
            }
        } else {
            self.missed.fetch_add(1, Ordering::Relaxed);
            Verdict::Suppress
        }
    }
}

impl Default for Ratelimit {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(all(test, not(CONFIG_RUST)))]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn burst_then_silence_then_a_new_window_with_the_count() {
        let rl = Ratelimit::new();
        for _ in 0..Ratelimit::BURST {
            assert_eq!(rl.check(S), Verdict::Print { missed: 0 });
        }
        for i in 0..25 {
            assert_eq!(rl.check(S + i * S / 10), Verdict::Suppress);
        }
        // The next window tells how many were held back, once.
        assert_eq!(
            rl.check(S + Ratelimit::INTERVAL_NS),
            Verdict::Print { missed: 25 }
        );
        assert_eq!(
            rl.check(S + Ratelimit::INTERVAL_NS),
            Verdict::Print { missed: 0 }
        );
    }

    #[test]
    fn a_flood_is_bounded_by_burst_per_interval() {
        let rl = Ratelimit::new();
        let mut printed = 0u64;
        // One line per ms for 60 s.
        for ms in 0..60_000u64 {
            if let Verdict::Print { .. } = rl.check(ms * 1_000_000) {
                printed += 1;
            }
        }
        let windows = 60 * S / Ratelimit::INTERVAL_NS;
        assert!(
            printed <= windows * u64::from(Ratelimit::BURST),
            "{printed}"
        );
        assert!(
            printed >= (windows - 1) * u64::from(Ratelimit::BURST),
            "{printed}"
        );
    }

    #[test]
    fn time_zero_and_wrap_do_not_stick() {
        let rl = Ratelimit::new();
        assert!(matches!(rl.check(0), Verdict::Print { .. }));
        for _ in 0..20 {
            rl.check(0);
        }
        assert!(matches!(
            rl.check(Ratelimit::INTERVAL_NS + 1),
            Verdict::Print { .. }
        ));
    }
}

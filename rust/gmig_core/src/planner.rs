// SPDX-License-Identifier: GPL-2.0

//! Pre-copy planner: what a dirty-page report says about GPU pages.
//!
//! GPU pages are guest RAM, so they travel with the VMM's RAM migration;
//! gmig steers it through VFIO DMA logging: every report tells the VMM
//! which GPU-writable pages it must (re)send. The policy decides what each
//! report contains:
//!
//! | policy | pre-copy reports | stop-copy report |
//! | --- | --- | --- |
//! | `oneshot` (gMig) | nothing: the VMM's first pass sends each page once; a page is hashed at the first report that sees it tracked | pages whose hash changed (`dirty=hash`) or all (`dirty=all`) |
//! | `iterative` | changed pages each round (`hash`) or all (`all`) | same |
//! | `off` | nothing | all tracked pages |
//!
//! `dirty=all` is the naive baseline (what VFIO type1 does for pinned
//! pages: every page the device can write is dirty every time).

/// Pre-copy policy (module parameter `precopy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// gMig's one-shot pre-copy.
    Oneshot,
    /// Classic iterative pre-copy.
    Iterative,
    /// No pre-copy of GPU pages.
    Off,
}

/// Dirty source (module parameter `dirty`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirtySource {
    /// Software dirty pages: pages whose hash changed.
    Hash,
    /// Every tracked page, every time.
    All,
}

/// Which tracked pages a hashing report re-hashes (module parameter
/// `rehash`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rehash {
    /// gMig: every tracked page, every hashing report (the stop-copy one
    /// included, inside the downtime).
    All,
    /// Only the pages the executed work could have written since their
    /// last hash ([`super::writeset`]); pre-copy reports keep the hashes
    /// current, so stop-copy re-hashes little.
    WriteSet,
}

impl Rehash {
    /// Parses `writeset|all`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "writeset" => Some(Self::WriteSet),
            "all" => Some(Self::All),
            _ => None,
        }
    }

    /// The parameter spelling.
    pub fn name(self) -> &'static str {
        match self {
            Self::WriteSet => "writeset",
            Self::All => "all",
        }
    }
}

/// How a hashing report reads the pages it hashes (module parameter
/// `hashing`; [`super::pageread`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hashing {
    /// In place: guest pages pinned a run at a time, each mapped and hashed
    /// where it is (the default).
    InPlace,
    /// The old path: each page copied into a scratch page (the sim:
    /// `vfio_dma_rw()`), then hashed. Kept to measure against.
    Copy,
}

impl Hashing {
    /// Parses `inplace|copy`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "inplace" => Some(Self::InPlace),
            "copy" => Some(Self::Copy),
            _ => None,
        }
    }

    /// The parameter spelling.
    pub fn name(self) -> &'static str {
        match self {
            Self::InPlace => "inplace",
            Self::Copy => "copy",
        }
    }
}

/// How the stop-copy delta image is made (module parameter
/// `final_image`; [`crate::stream::patch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalImage {
    /// From what changed since the pre-copy image, section by section,
    /// without the whole image (the default).
    Patch,
    /// The old path: the image built whole, then compared with the base.
    /// Kept to measure against.
    Build,
}

impl FinalImage {
    /// Parses `patch|build`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "patch" => Some(Self::Patch),
            "build" => Some(Self::Build),
            _ => None,
        }
    }

    /// The parameter spelling.
    pub fn name(self) -> &'static str {
        match self {
            Self::Patch => "patch",
            Self::Build => "build",
        }
    }
}

/// gmig's module parameters of the migration policy (`enum gmig_param` in
/// shim/gmig_shim.h, where they are declared).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    /// `precopy`: a [`Policy`].
    Precopy = 0,
    /// `dirty`: a [`DirtySource`].
    Dirty = 1,
    /// `rehash`: a [`Rehash`].
    Rehash = 2,
    /// `hashing`: a [`Hashing`].
    Hashing = 3,
    /// `final_image`: a [`FinalImage`].
    FinalImage = 4,
}

impl Param {
    /// The parameter numbered `v` (`enum gmig_param`).
    pub fn from_u32(v: u32) -> Option<Self> {
        [
            Self::Precopy,
            Self::Dirty,
            Self::Rehash,
            Self::Hashing,
            Self::FinalImage,
        ]
        .into_iter()
        .find(|p| *p as u32 == v)
    }

    /// The one parse of a value written to the parameter: its canonical
    /// spelling (what the parameter then reads back), or `None` if it is
    /// no value of the parameter.
    pub fn canonical(self, s: &str) -> Option<&'static str> {
        match self {
            Self::Precopy => Policy::parse(s).map(Policy::name),
            Self::Dirty => DirtySource::parse(s).map(DirtySource::name),
            Self::Rehash => Rehash::parse(s).map(Rehash::name),
            Self::Hashing => Hashing::parse(s).map(Hashing::name),
            Self::FinalImage => FinalImage::parse(s).map(FinalImage::name),
        }
    }
}

/// Phase of the migration a report belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// A report while the vGPU runs.
    PreCopy,
    /// A report with the vGPU stopped (final).
    StopCopy,
}

/// What a report does with the tracked pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Hash the tracked pages not hashed yet (newly tracked ones), report
    /// none. Pages hashed before are left alone: their snapshot must stay
    /// the content the VMM's single pass sent.
    Snapshot,
    /// Report nothing (no hashing).
    Nothing,
    /// Re-hash, report the pages that changed.
    Changed,
    /// Report every tracked page.
    All,
    /// [`Action::Snapshot`] for pages not written since logging started,
    /// and re-hash the recorded write set, reporting the pages that
    /// changed (so the VMM resends them before the downtime).
    Refresh,
    /// Re-hash the recorded write set and the never-hashed pages, report
    /// the pages that changed; every other tracked page keeps its hash.
    Candidates,
}

impl Policy {
    /// Parses `oneshot|iterative|off`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "oneshot" => Some(Self::Oneshot),
            "iterative" => Some(Self::Iterative),
            "off" => Some(Self::Off),
            _ => None,
        }
    }

    /// The parameter spelling.
    pub fn name(self) -> &'static str {
        match self {
            Self::Oneshot => "oneshot",
            Self::Iterative => "iterative",
            Self::Off => "off",
        }
    }
}

impl DirtySource {
    /// Parses `hash|all`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "hash" => Some(Self::Hash),
            "all" => Some(Self::All),
            _ => None,
        }
    }

    /// The parameter spelling.
    pub fn name(self) -> &'static str {
        match self {
            Self::Hash => "hash",
            Self::All => "all",
        }
    }
}

/// The decision for one report.
pub fn decide(policy: Policy, source: DirtySource, phase: Phase) -> Action {
    use {DirtySource as D, Phase as P, Policy as Y};
    match (policy, source, phase) {
        (_, D::All, P::StopCopy) | (Y::Iterative, D::All, _) | (Y::Off, _, P::StopCopy) => {
            Action::All
        }
        (Y::Oneshot, D::Hash, P::PreCopy) => Action::Snapshot,
        (Y::Oneshot | Y::Off, _, P::PreCopy) => Action::Nothing,
        (Y::Iterative, D::Hash, _) | (Y::Oneshot, D::Hash, P::StopCopy) => Action::Changed,
    }
}

/// The decision for one report with re-hash policy `rehash`: `writeset`
/// turns every hashing action into its write-set form.
pub fn decide_rehash(policy: Policy, source: DirtySource, rehash: Rehash, phase: Phase) -> Action {
    match (decide(policy, source, phase), rehash) {
        (Action::Snapshot, Rehash::WriteSet) => Action::Refresh,
        (Action::Changed, Rehash::WriteSet) => Action::Candidates,
        (a, _) => a,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parameters_take_their_values_only_and_read_back_canonical() {
        assert_eq!(Param::Precopy.canonical("iterative\n"), Some("iterative"));
        assert_eq!(Param::Dirty.canonical(" all "), Some("all"));
        assert_eq!(Param::Rehash.canonical("writeset"), Some("writeset"));
        assert_eq!(Param::Precopy.canonical("all"), None);
        assert_eq!(Param::Dirty.canonical("writeset"), None);
        assert_eq!(Param::Rehash.canonical(""), None);
        assert_eq!(Param::Hashing.canonical(" copy\n"), Some("copy"));
        assert_eq!(Param::Hashing.canonical("inplace"), Some("inplace"));
        assert_eq!(Param::Hashing.canonical("all"), None);
        assert_eq!(Param::FinalImage.canonical("build\n"), Some("build"));
        assert_eq!(Param::FinalImage.canonical("patch"), Some("patch"));
        assert_eq!(Param::FinalImage.canonical("copy"), None);
        assert_eq!(Param::from_u32(4), Some(Param::FinalImage));
        assert_eq!(Param::from_u32(5), None);
        assert_eq!(Param::from_u32(2), Some(Param::Rehash));
        assert_eq!(Param::from_u32(3), Some(Param::Hashing));
    }

    use super::*;
    use std::collections::BTreeSet;
    use std::vec;
    use std::vec::Vec;

    #[test]
    fn parse_names() {
        for p in [Policy::Oneshot, Policy::Iterative, Policy::Off] {
            assert_eq!(Policy::parse(p.name()), Some(p));
        }
        for d in [DirtySource::Hash, DirtySource::All] {
            assert_eq!(DirtySource::parse(d.name()), Some(d));
        }
        assert_eq!(Policy::parse("sometimes"), None);
        assert_eq!(DirtySource::parse(""), None);
    }

    /// A simulated migration: the VMM sends every page in its first pass,
    /// then whatever each report names; the workload writes between
    /// rounds. With every policy the destination must end equal to the
    /// source (no page lost), and oneshot+hash must report fewer pages at
    /// stop-copy than oneshot+all.
    #[test]
    fn planner_never_loses_a_page() {
        use super::super::tracker::HashTracker;
        let n = 256usize;
        for seed in 1..30u64 {
            let mut stop_counts = Vec::new();
            for (policy, source) in [
                (Policy::Oneshot, DirtySource::Hash),
                (Policy::Oneshot, DirtySource::All),
                (Policy::Iterative, DirtySource::Hash),
                (Policy::Iterative, DirtySource::All),
                (Policy::Off, DirtySource::Hash),
            ] {
                let mut rng = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                let mut next = || {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng
                };
                let mut src = vec![[0u8; 4096]; n];
                let mut dst = vec![[1u8; 4096]; n];
                let mut t = HashTracker::new(0, seed, vec![0u64; n]);
                for g in 0..n as u64 {
                    t.track(g).unwrap();
                }
                let mut scratch = [0u8; 4096];
                let mut sent_at_stop = BTreeSet::new();
                let mut report = |t: &mut HashTracker<Vec<u64>>, src: &Vec<[u8; 4096]>, phase| {
                    let mut out = Vec::new();
                    match decide(policy, source, phase) {
                        Action::Nothing => {}
                        Action::All => out.extend(t.tracked_frames()),
                        Action::Snapshot => {
                            t.scan_new(&mut scratch, |g, b| {
                                let _: () = b.copy_from_slice(&src[g as usize]);
                                Ok::<(), ()>(())
                            });
                        }
                        Action::Changed => {
                            t.scan_changed(
                                &mut scratch,
                                |g, b| {
                                    let _: () = b.copy_from_slice(&src[g as usize]);
                                    Ok::<(), ()>(())
                                },
                                |g| out.push(g),
                            );
                        }
                        Action::Refresh | Action::Candidates => {
                            unreachable!("decide() never asks for write sets")
                        }
                    }
                    out
                };
                report(&mut t, &src, Phase::PreCopy);
                // The VMM's first pass, interleaved with GPU writes.
                for g in 0..n {
                    if next() % 4 == 0 {
                        let h = (next() % n as u64) as usize;
                        src[h][(next() % 4096) as usize] ^= 0x5a;
                    }
                    dst[g] = src[g];
                }
                for _round in 0..4 {
                    for _ in 0..(n / 5) {
                        let h = (next() % n as u64) as usize;
                        src[h][(next() % 4096) as usize] = next() as u8 | 1;
                    }
                    for g in report(&mut t, &src, Phase::PreCopy) {
                        dst[g as usize] = src[g as usize];
                    }
                }
                // Stop: last GPU writes, then the final report.
                for _ in 0..(n / 5) {
                    let h = (next() % n as u64) as usize;
                    src[h][(next() % 4096) as usize] = next() as u8 | 1;
                }
                for g in report(&mut t, &src, Phase::StopCopy) {
                    dst[g as usize] = src[g as usize];
                    sent_at_stop.insert(g);
                }
                assert!(
                    src == dst,
                    "{policy:?}/{source:?} seed {seed}: a page was lost"
                );
                stop_counts.push(sent_at_stop.len());
            }
            assert!(
                stop_counts[0] < stop_counts[1],
                "hash must beat all: {stop_counts:?}"
            );
            assert_eq!(stop_counts[1], n);
        }
    }
}

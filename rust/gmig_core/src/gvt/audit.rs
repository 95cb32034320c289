// SPDX-License-Identifier: GPL-2.0

//! The graphics address translation the command scanner's audit hook
//! applies to resubmitted workloads after a restore elsewhere.

use super::super::cmd::{CmdError, Command, Mode, Space};
use super::layout::GvtLayout;

/// Why the command scanner's audit hook refused an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditError {
    /// The range is not inside the guest's (source) graphics memory.
    OutOfRange {
        /// The refused address.
        gma: u64,
    },
}

/// The audit hook's address translation for one vGPU: the identity until
/// the vGPU is restored from a source whose slices sit elsewhere, then the
/// source-to-destination move of every graphics address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditMap {
    guest: GvtLayout,
    host: GvtLayout,
}

impl AuditMap {
    /// No translation: the guest's graphics memory is the vGPU's own.
    pub fn identity(layout: GvtLayout) -> Self {
        Self {
            guest: layout,
            host: layout,
        }
    }

    /// After a restore: the guest keeps `src`'s addresses, the vGPU owns
    /// `dst`. `None` if the layouts are not [`GvtLayout::compatible`].
    pub fn migrated(src: GvtLayout, dst: GvtLayout) -> Option<Self> {
        src.compatible(&dst).then_some(Self {
            guest: src,
            host: dst,
        })
    }

    /// Whether addresses move.
    pub fn is_identity(&self) -> bool {
        self.guest.aperture.base == self.host.aperture.base
            && self.guest.hidden.base == self.host.hidden.base
    }

    /// The host graphics address of the guest's `[gma, gma + len)`
    /// (`len` at least 1). The scanner then audits and uses the result.
    pub fn translate(&self, gma: u64, len: u64) -> Result<u64, AuditError> {
        let len = len.max(1);
        if self.is_identity() {
            return if self.host.contains_range(gma, len) {
                Ok(gma)
            } else {
                Err(AuditError::OutOfRange { gma })
            };
        }
        self.guest
            .rebase(gma, len, &self.host)
            .ok_or(AuditError::OutOfRange { gma })
    }
}

impl AuditMap {
    /// kvmgt's `map_gma` hook: the vGPU's own graphics address of the
    /// guest's `[gma, gma + len)` that GVT-g takes from outside a command
    /// buffer (a context descriptor's LRCA, a ring buffer or context
    /// buffer start, the entry of a GGTT MMIO access). Without a move it
    /// is `gma` itself, unchecked: GVT-g's own checks apply as they always
    /// did (a GGTT MMIO write into the ballooned rest of the GGTT is
    /// dropped). After one, [`AuditMap::translate`]: an address outside
    /// the guest's graphics memory is refused, and GVT-g treats it as
    /// outside the vGPU's.
    pub fn map_guest(&self, gma: u64, len: u64) -> Result<u64, AuditError> {
        if self.is_identity() {
            Ok(gma)
        } else {
            self.translate(gma, len)
        }
    }
}

/// Why [`patch_command`] refused a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchError {
    /// The command could not be parsed (unknown, bad length, cut off).
    Command(CmdError),
    /// The command carries GGTT addresses the parser cannot locate.
    Opaque,
    /// An address is outside the guest's graphics memory.
    Audit(AuditError),
    /// A translated address does not fit the command's field.
    Overflow,
}

/// kvmgt's command scanner hook: rewrites, in GVT's shadow copy of one
/// command (`cmd` starts with it and holds at least the whole command),
/// every GGTT graphics address from the guest's to the vGPU's graphics
/// memory. PPGTT addresses are left alone. Returns the number of addresses
/// rewritten; on error `cmd` is unchanged and the scan must fail. With an
/// identity map nothing is parsed (GVT's own audit does the checking).
///
/// Once addresses move, a command the parser does not know is refused
/// rather than passed through: it might hold a GGTT address.
pub fn patch_command(cmd: &mut [u32], mode: Mode, map: &AuditMap) -> Result<usize, PatchError> {
    if map.is_identity() {
        return Ok(0);
    }
    let c = Command::decode(cmd, 0, mode).map_err(PatchError::Command)?;
    if c.opaque == Some(Space::Ggtt) {
        return Err(PatchError::Opaque);
    }
    let ggtt = || c.addrs().iter().filter(|a| a.space == Space::Ggtt);
    // Validate every field first, then write.
    for a in ggtt() {
        let addr = a.read(cmd).ok_or(PatchError::Overflow)?;
        let new = map.translate(addr, 1).map_err(PatchError::Audit)?;
        if !a.fits(new) {
            return Err(PatchError::Overflow);
        }
    }
    let mut n = 0;
    for a in ggtt() {
        let addr = a.read(cmd).ok_or(PatchError::Overflow)?;
        let new = map.translate(addr, 1).map_err(PatchError::Audit)?;
        a.write(cmd, new).ok_or(PatchError::Overflow)?;
        n += 1;
    }
    Ok(n)
}

// SPDX-License-Identifier: GPL-2.0

//! VFIO migration uAPI values (`include/uapi/linux/vfio.h`), typed.

/// `enum vfio_device_mig_state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum DeviceState {
    /// `VFIO_DEVICE_STATE_ERROR`: a failed arc left the device unknown.
    Error = 0,
    /// `VFIO_DEVICE_STATE_STOP`.
    Stop = 1,
    /// `VFIO_DEVICE_STATE_RUNNING`.
    Running = 2,
    /// `VFIO_DEVICE_STATE_STOP_COPY`.
    StopCopy = 3,
    /// `VFIO_DEVICE_STATE_RESUMING`.
    Resuming = 4,
    /// `VFIO_DEVICE_STATE_RUNNING_P2P`.
    RunningP2p = 5,
    /// `VFIO_DEVICE_STATE_PRE_COPY`.
    PreCopy = 6,
    /// `VFIO_DEVICE_STATE_PRE_COPY_P2P`.
    PreCopyP2p = 7,
}

/// A value that is no `enum vfio_device_mig_state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadState(pub u32);

impl TryFrom<u32> for DeviceState {
    type Error = BadState;

    fn try_from(v: u32) -> Result<Self, BadState> {
        Ok(match v {
            0 => Self::Error,
            1 => Self::Stop,
            2 => Self::Running,
            3 => Self::StopCopy,
            4 => Self::Resuming,
            5 => Self::RunningP2p,
            6 => Self::PreCopy,
            7 => Self::PreCopyP2p,
            _ => return Err(BadState(v)),
        })
    }
}

impl DeviceState {
    /// The name debugfs `stats` shows (`state: ...`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Stop => "stop",
            Self::Running => "running",
            Self::StopCopy => "stop_copy",
            Self::Resuming => "resuming",
            Self::RunningP2p => "running_p2p",
            Self::PreCopy => "pre_copy",
            Self::PreCopyP2p => "pre_copy_p2p",
        }
    }

    /// A pre-copy state: the saving fd may be at a temporary end of data.
    pub fn is_pre_copy(self) -> bool {
        matches!(self, Self::PreCopy | Self::PreCopyP2p)
    }
}

#[cfg(all(test, not(CONFIG_RUST)))]
mod tests {
    use super::*;

    #[test]
    fn every_uapi_value_round_trips_and_no_other_converts() {
        for v in 0..8u32 {
            let s = DeviceState::try_from(v).unwrap();
            assert_eq!(s as u32, v);
        }
        for v in [8u32, 9, 99, 0x7fff_ffff, u32::MAX] {
            assert_eq!(DeviceState::try_from(v), Err(BadState(v)));
        }
        assert_eq!(DeviceState::PreCopyP2p.name(), "pre_copy_p2p");
        assert!(DeviceState::PreCopy.is_pre_copy() && !DeviceState::StopCopy.is_pre_copy());
    }
}

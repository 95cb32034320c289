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

/// What an arc of the migration state machine does with the data fds
/// (the migration layer's `Front` opens and closes them by it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ArcFds {
    /// The fds stay as they are.
    Keep = 0,
    /// A new saving fd (RUNNING -> PRE_COPY, RUNNING_P2P -> PRE_COPY_P2P,
    /// STOP -> STOP_COPY).
    NewSaving = 1,
    /// A new resuming fd (STOP -> RESUMING).
    NewResuming = 2,
    /// The data phase ends: the device's side of every fd is closed
    /// (PRE_COPY -> RUNNING, PRE_COPY_P2P -> RUNNING_P2P, STOP_COPY -> STOP,
    /// RESUMING -> STOP).
    EndData = 3,
}

/// The data fds of arc `cur` -> `next`.
pub fn arc_fds(cur: DeviceState, next: DeviceState) -> ArcFds {
    use DeviceState::*;
    match (cur, next) {
        (Running, PreCopy) | (RunningP2p, PreCopyP2p) | (Stop, StopCopy) => ArcFds::NewSaving,
        (Stop, Resuming) => ArcFds::NewResuming,
        (PreCopy, Running) | (PreCopyP2p, RunningP2p) | (StopCopy, Stop) | (Resuming, Stop) => {
            ArcFds::EndData
        }
        _ => ArcFds::Keep,
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

    #[test]
    fn four_arcs_open_data_fds_and_four_end_them() {
        use DeviceState::*;
        let all = [
            Error, Stop, Running, StopCopy, Resuming, RunningP2p, PreCopy, PreCopyP2p,
        ];
        let (mut new, mut end) = (0, 0);
        for a in all {
            for b in all {
                match arc_fds(a, b) {
                    ArcFds::NewSaving | ArcFds::NewResuming => new += 1,
                    ArcFds::EndData => end += 1,
                    ArcFds::Keep => {}
                }
            }
        }
        assert_eq!((new, end), (4, 4));
        assert_eq!(arc_fds(Stop, Resuming), ArcFds::NewResuming);
        assert_eq!(arc_fds(RunningP2p, PreCopyP2p), ArcFds::NewSaving);
        assert_eq!(arc_fds(Resuming, Stop), ArcFds::EndData);
    }
}

//! Zun's container status enum, used for capsules and their containers alike.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Status of a capsule or of one of its containers (Zun's `CONTAINER_STATUSES`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CapsuleStatus {
    /// Accepted; the compute host is building it.
    Creating,
    /// Built but not started.
    Created,
    /// Every container is running (init containers have completed).
    Running,
    /// Exited (init containers that completed, or stopped containers).
    Stopped,
    /// Paused.
    Paused,
    /// Being restarted by its restart policy.
    Restarting,
    /// Being deleted.
    Deleting,
    /// Deleted.
    Deleted,
    /// Failed; `status_reason` says why.
    Error,
    /// The compute host cannot tell.
    Unknown,
    /// Being rebuilt.
    Rebuilding,
    /// Dead.
    Dead,
}

impl CapsuleStatus {
    /// Every status, in Zun's order.
    pub const ALL: [CapsuleStatus; 12] = [
        CapsuleStatus::Error,
        CapsuleStatus::Running,
        CapsuleStatus::Stopped,
        CapsuleStatus::Paused,
        CapsuleStatus::Unknown,
        CapsuleStatus::Creating,
        CapsuleStatus::Created,
        CapsuleStatus::Deleted,
        CapsuleStatus::Deleting,
        CapsuleStatus::Rebuilding,
        CapsuleStatus::Dead,
        CapsuleStatus::Restarting,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            CapsuleStatus::Creating => "Creating",
            CapsuleStatus::Created => "Created",
            CapsuleStatus::Running => "Running",
            CapsuleStatus::Stopped => "Stopped",
            CapsuleStatus::Paused => "Paused",
            CapsuleStatus::Restarting => "Restarting",
            CapsuleStatus::Deleting => "Deleting",
            CapsuleStatus::Deleted => "Deleted",
            CapsuleStatus::Error => "Error",
            CapsuleStatus::Unknown => "Unknown",
            CapsuleStatus::Rebuilding => "Rebuilding",
            CapsuleStatus::Dead => "Dead",
        }
    }
}

impl fmt::Display for CapsuleStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CapsuleStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

/// A status string that is not one of Zun's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown status {0:?}")]
pub struct UnknownStatus(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for s in CapsuleStatus::ALL {
            assert_eq!(s.as_str().parse::<CapsuleStatus>(), Ok(s));
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        assert!("running".parse::<CapsuleStatus>().is_err());
    }
}

//! Volumes: Cinder's status names, and the size unit shared by the API and compute hosts.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Bytes in one GiB, the unit of a volume's `size`.
pub const GIB: u64 = 1 << 30;

/// Status of a volume (the subset of Cinder's that this service uses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VolumeStatus {
    /// Its compute host is making it.
    Creating,
    /// Made, not attached.
    Available,
    /// Attached to a capsule.
    InUse,
    /// Its compute host is removing it.
    Deleting,
    /// Its host could not make it; `status_reason` says why.
    Error,
}

impl VolumeStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            VolumeStatus::Creating => "creating",
            VolumeStatus::Available => "available",
            VolumeStatus::InUse => "in-use",
            VolumeStatus::Deleting => "deleting",
            VolumeStatus::Error => "error",
        }
    }

    /// Whether a user may delete a volume in this status (Cinder: `available` or `error`).
    pub fn deletable(self) -> bool {
        matches!(self, VolumeStatus::Available | VolumeStatus::Error)
    }
}

impl fmt::Display for VolumeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for VolumeStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "creating" => VolumeStatus::Creating,
            "available" => VolumeStatus::Available,
            "in-use" => VolumeStatus::InUse,
            "deleting" => VolumeStatus::Deleting,
            "error" => VolumeStatus::Error,
            other => return Err(format!("unknown volume status {other:?}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in [
            VolumeStatus::Creating,
            VolumeStatus::Available,
            VolumeStatus::InUse,
            VolumeStatus::Deleting,
            VolumeStatus::Error,
        ] {
            assert_eq!(s.as_str().parse::<VolumeStatus>().unwrap(), s);
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert!("in_use".parse::<VolumeStatus>().is_err());
        assert!(VolumeStatus::Error.deletable());
        assert!(!VolumeStatus::InUse.deletable());
    }
}

//! What capsules may never take of the host: `[resources] reserved_memory_mib` is kept for the
//! agent, its shims, containerd and the rest of the host by limiting the memory of the cgroup
//! every capsule is under (`/capsule`) to the host's memory less the reserve, as the kubelet
//! limits `kubepods` to capacity less its reservations. The agent and the shims run outside
//! that subtree (the shim creates only its containers' cgroups); when capsules together reach
//! the limit, the kernel reclaims and kills inside it, never the agent.

use std::path::PathBuf;

use crate::runtime::pod::layout::CAPSULES_CGROUP;
use crate::shim::cgroup;

/// Why the reserve could not be set.
#[derive(Debug, thiserror::Error)]
pub enum ReserveError {
    /// The host's memory is unknown, or not more than the reserve.
    #[error("cannot reserve {reserved_mib} MiB of a host with {total_mib} MiB of memory")]
    TooLarge {
        /// The reserve asked for.
        reserved_mib: u64,
        /// The host's memory (0: unreadable).
        total_mib: u64,
    },
    /// The cgroup could not be made or limited.
    #[error("cannot limit the memory of cgroup {cgroup}")]
    Cgroup {
        /// The cgroup.
        cgroup: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The limit of the capsules' parent cgroup for a host of `total_mib` keeping `reserved_mib`.
pub fn capsules_limit_bytes(total_mib: u64, reserved_mib: u64) -> Result<u64, ReserveError> {
    match total_mib.checked_sub(reserved_mib) {
        Some(left) if left > 0 => Ok(left << 20),
        _ => Err(ReserveError::TooLarge {
            reserved_mib,
            total_mib,
        }),
    }
}

/// Limits `/capsule`'s memory to the host's less `reserved_mib` (making the cgroup if
/// needed); returns the file written and the limit. Idempotent.
pub fn reserve_memory(reserved_mib: u64) -> Result<(PathBuf, u64), ReserveError> {
    let limit = capsules_limit_bytes(crate::host::meminfo_mib(), reserved_mib)?;
    let err = |source| ReserveError::Cgroup {
        cgroup: CAPSULES_CGROUP,
        source,
    };
    let hierarchies = cgroup::hierarchies().map_err(err)?;
    let file = cgroup::limit_memory(&hierarchies, CAPSULES_CGROUP, limit).map_err(err)?;
    tracing::info!(file = %file.display(), limit, reserved_mib, "memory reserved: capsules together get the rest");
    Ok((file, limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_the_host_less_the_reserve_and_never_nothing() {
        assert_eq!(capsules_limit_bytes(24_000, 512).unwrap(), 23_488 << 20);
        assert_eq!(capsules_limit_bytes(1024, 0).unwrap(), 1 << 30);
        assert!(capsules_limit_bytes(512, 512).is_err());
        assert!(capsules_limit_bytes(0, 512).is_err());
    }
}

//! A capsule's state as Zun reports it, from its shim's status and its network attachment.

use capsule_types::rpc::{CapsuleSpec, CapsuleState, ContainerState};
use capsule_types::CapsuleStatus;

use crate::network::Attachment;
use crate::shim::{
    ContainerState as ShimContainerState, ContainerStatus as ShimContainerStatus, Phase, Status,
};

/// The capsule's state from the shim's status.
pub(super) fn capsule_state(
    spec: &CapsuleSpec,
    status: &Status,
    attachment: Option<&Attachment>,
    network: &str,
) -> CapsuleState {
    let containers = status
        .containers
        .iter()
        .map(|c| ContainerState {
            uuid: c.uuid,
            status: match c.state {
                ShimContainerState::Created => CapsuleStatus::Created,
                ShimContainerState::Running => CapsuleStatus::Running,
                ShimContainerState::Restarting => CapsuleStatus::Restarting,
                ShimContainerState::Exited if c.exit_code.unwrap_or(0) == 0 => {
                    CapsuleStatus::Stopped
                }
                ShimContainerState::Exited | ShimContainerState::Failed => CapsuleStatus::Error,
                ShimContainerState::Stopped => CapsuleStatus::Stopped,
                ShimContainerState::Paused => CapsuleStatus::Paused,
            },
            status_reason: container_reason(c),
            exit_code: c.exit_code,
            restart_count: c.restart_count,
            container_id: Some(format!("{}-{}", spec.uuid, c.name)),
            // The agent's prober knows.
            ready: None,
        })
        .collect();
    let apps = || status.containers.iter().filter(|c| !c.init);
    let all_apps = |state| apps().next().is_some() && apps().all(|c| c.state == state);
    let capsule_status = match status.phase {
        Phase::Starting => CapsuleStatus::Creating,
        // Every app container stopped (or paused) by a user: so is the capsule.
        Phase::Running if all_apps(ShimContainerState::Stopped) => CapsuleStatus::Stopped,
        Phase::Running if all_apps(ShimContainerState::Paused) => CapsuleStatus::Paused,
        Phase::Running => CapsuleStatus::Running,
        Phase::Succeeded | Phase::Stopped => CapsuleStatus::Stopped,
        Phase::Failed => CapsuleStatus::Error,
        Phase::Stopping => CapsuleStatus::Deleting,
    };
    let addresses = match attachment {
        Some(a) => serde_json::json!({ network: [{
            "addr": a.ip,
            "version": 4,
            "port": a.interface,
            "subnet_id": format!("{}/{}", a.gateway, a.prefix),
            "preserve_on_delete": false,
        }]}),
        None => serde_json::json!({}),
    };
    CapsuleState {
        capsule: spec.uuid,
        status: capsule_status,
        status_reason: status.reason.clone(),
        containers,
        addresses,
        volumes_released: false,
    }
}

/// Why a container is as it is: its last exit, if it had one.
fn container_reason(c: &ShimContainerStatus) -> Option<String> {
    let why = c.reason.as_deref()?;
    Some(match (c.state, c.exit_code) {
        (ShimContainerState::Running | ShimContainerState::Restarting, Some(code)) => format!(
            "Restarted {} time(s); last exit: {why} (code {code})",
            c.restart_count
        ),
        (_, Some(code)) => format!("{why} (exit code {code})"),
        (_, None) => why.to_owned(),
    })
}

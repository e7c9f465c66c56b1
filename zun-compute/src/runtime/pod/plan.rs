//! What the shim is told to run, from the capsule's spec and its images: pure, but for the
//! working directories made in the containers' root filesystems.

use std::path::PathBuf;

use capsule_types::rpc::CapsuleSpec;
use capsule_types::template::{ContainerSpec, Protocol as TemplateProtocol};
use uuid::Uuid;

use super::error::StepError;
use crate::image::Image;
use crate::network::{PortMapping, Protocol};
use crate::shim::{self, ContainerPlan};

/// A container's name for the shim (and its rootfs, snapshot and log file): a DNS label made
/// from its uuid, whatever name the user gave it.
pub fn shim_name(container: Uuid) -> String {
    format!("c{}", container.simple())
}

/// The containerd key of a container's rootfs snapshot.
pub(super) fn snapshot_key(id: Uuid, container: &str) -> String {
    format!("capsule-{id}-{container}")
}

/// The sandbox's host name: the capsule's name when it is a valid one, else its uuid's start.
pub(super) fn hostname(spec: &CapsuleSpec) -> String {
    let ok = |n: &str| {
        !n.is_empty()
            && n.len() <= 63
            && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !n.starts_with('-')
    };
    match spec.template.name.as_deref() {
        Some(n) if ok(n) => n.to_owned(),
        _ => spec.uuid.simple().to_string()[..12].to_owned(),
    }
}

/// The shim's restart policy for the template's.
pub(super) fn shim_restart_policy(
    p: capsule_types::template::RestartPolicy,
) -> shim::RestartPolicy {
    match p {
        capsule_types::template::RestartPolicy::Always => shim::RestartPolicy::Always,
        capsule_types::template::RestartPolicy::OnFailure => shim::RestartPolicy::OnFailure,
        capsule_types::template::RestartPolicy::Never => shim::RestartPolicy::Never,
    }
}

/// The host ports the capsule's containers publish.
pub(super) fn port_mappings<'a>(
    containers: impl Iterator<Item = &'a ContainerSpec>,
) -> Vec<PortMapping> {
    containers
        .flat_map(|c| c.ports.iter())
        .filter_map(|p| {
            p.host_port.map(|h| PortMapping {
                host_port: h,
                container_port: p.container_port,
                protocol: match p.protocol {
                    TemplateProtocol::Udp => Protocol::Udp,
                    _ => Protocol::Tcp,
                },
                host_ip: None,
            })
        })
        .collect()
}

/// What the shim runs for template container `c`.
pub(super) fn container_plan(
    c: &ContainerSpec,
    name: &str,
    uuid: Uuid,
    image: &Image,
    rootfs: PathBuf,
    is_init: bool,
) -> Result<(ContainerPlan, bool), StepError> {
    let command = (!c.command.is_empty()).then_some(c.command.as_slice());
    let args = (!c.args.is_empty()).then_some(c.args.as_slice());
    let argv = image.config.process_args(command, args)?;
    let mut env: Vec<String> = image.config.env.clone();
    for (k, v) in &c.env {
        env.retain(|e| e.split_once('=').map(|(ek, _)| ek) != Some(k.as_str()));
        env.push(format!("{k}={v}"));
    }
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    }
    let cwd = c
        .work_dir
        .clone()
        .or_else(|| image.config.working_dir.clone().filter(|w| !w.is_empty()))
        .unwrap_or_else(|| "/".into());
    // As runc does: a working directory the image lacks is made (in the container's own
    // writable layer).
    let in_rootfs = rootfs.join(cwd.trim_start_matches('/'));
    std::fs::create_dir_all(&in_rootfs).map_err(|source| StepError::WorkDir {
        cwd: cwd.clone(),
        container: name.to_owned(),
        source,
    })?;
    let user = match image.config.user.as_deref() {
        None | Some("") | Some("root") | Some("0") | Some("0:0") => None,
        Some(u) => Some(parse_numeric_user(u).ok_or_else(|| StepError::User {
            image: image.name.clone(),
            user: u.to_owned(),
        })?),
    };
    Ok((
        ContainerPlan {
            name: name.to_owned(),
            uuid,
            rootfs,
            args: argv,
            env,
            cwd,
            user,
            memory_bytes: c.memory_mib.map(|m| m * 1024 * 1024),
            cpu_millis: c.cpu.map(|cpu| (cpu * 1000.0).round() as u64),
            mounts: Vec::new(),
            net_raw: c.adds_net_raw(),
            stop_signal: image
                .config
                .stop_signal
                .as_deref()
                .and_then(crate::image::signal_number),
        },
        is_init,
    ))
}

fn parse_numeric_user(u: &str) -> Option<(u32, u32)> {
    match u.split_once(':') {
        Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
        None => {
            let uid = u.parse().ok()?;
            Some((uid, uid))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_users() {
        assert_eq!(parse_numeric_user("1000"), Some((1000, 1000)));
        assert_eq!(parse_numeric_user("1000:50"), Some((1000, 50)));
        assert_eq!(parse_numeric_user("nginx"), None);
    }
}

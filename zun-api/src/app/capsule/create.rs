//! Capsule create (`POST /v1/capsules`): validate the template, name the containers, resolve
//! the security groups and volumes, build the host's `create_capsule` message, then place the
//! capsule ([`Placement::create_capsule`]: a host's claim, the rows and the outbox entry in one
//! transaction) and publish the entry at once.

use std::collections::{HashMap, HashSet};

use capsule_types::rpc::{CapsuleSpec, ContainerRef};
use capsule_types::template::{
    parse_create_body, CapsuleTemplate, ContainerSpec, RestartPolicy, VolumeSource,
};
use capsule_types::CapsuleStatus;
use db::secgroups::Resolved;
use db::{CapsuleRecord, NewCapsule, NewContainer, NewVolumeMapping, SecurityGroupBinding};
use policy::Target;
use serde_json::{json, Value};

use crate::compute::placement::{self, Placed, Placement};
use crate::config::LimitsConfig;
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::state::AppState;

/// Zun's reason for a capsule no host can take.
pub const NO_VALID_HOST: &str = "There are not enough hosts available.";

/// Validates the template of `body` (with the query's parameters merged in, as pecan does),
/// then stores the capsule with its containers, on a host when one can take it, else in
/// `Error` (Zun's 202 with [`NO_VALID_HOST`]).
pub async fn create(
    state: &AppState,
    ctx: &RequestContext,
    body: Value,
) -> Result<CapsuleRecord, ApiError> {
    state
        .policy
        .enforce("capsule:create", &Target::owned_by(&ctx.creds), &ctx.creds)?;
    let Some(project_id) = ctx.identity.project_id.clone() else {
        // A capsule belongs to a project; a domain- or system-scoped token has none.
        return Err(ApiError::Forbidden {
            rule: "capsule:create".into(),
        });
    };
    let mut template = parse_create_body(&body, &state.limits)
        .map_err(|errors| ApiError::schema(errors.to_string()))?;
    // CAP_NET_RAW lets a container forge packets on the capsule network: by policy only.
    if template.all_containers().any(ContainerSpec::adds_net_raw) {
        let target = Target::owned_by(&ctx.creds);
        state
            .policy
            .enforce("capsule:create:net_raw", &target, &ctx.creds)?;
    }
    apply_default_resources(&mut template, &state.config.limits);
    let security_groups =
        resolve_security_groups(state, &project_id, &template.security_groups).await?;
    let volumes = super::volumes::resolve(state, ctx, &project_id, &template).await?;

    // Zun drops imagePullPolicy for callers the policy does not allow to choose it.
    let may_pull_policy = state.policy.check(
        "container:create:image_pull_policy",
        &Target::owned_by(&ctx.creds),
        &ctx.creds,
    );
    let uuid = uuid::Uuid::new_v4().to_string();
    let name_base = template.name.clone().unwrap_or_else(|| uuid.clone());
    let mut taken: HashSet<String> = template
        .all_containers()
        .filter_map(|c| c.name.clone())
        .collect();
    let auto_remove: HashMap<String, bool> = template
        .volumes
        .iter()
        .map(|v| {
            let remove = matches!(
                v.source,
                VolumeSource::New {
                    auto_remove: true,
                    ..
                }
            );
            (v.name.clone(), remove)
        })
        .collect();
    let mut containers = Vec::new();
    let mut mappings = Vec::new();
    let capsule_policy = template.restart_policy;
    let init_count = template.init_containers.len();
    for (i, spec) in template
        .init_containers
        .iter_mut()
        .chain(template.containers.iter_mut())
        .enumerate()
    {
        let is_init = i < init_count;
        let position = if is_init { i } else { i - init_count };
        if !may_pull_policy {
            spec.image_pull_policy = None;
        }
        if spec.name.is_none() {
            spec.name = Some(super::names::generate(&name_base, &mut taken));
        }
        let c = new_container(spec, is_init, position, capsule_policy);
        for m in &spec.volume_mounts {
            let auto_remove = auto_remove.get(m.name.as_str()).copied().unwrap_or(false);
            mappings.push(NewVolumeMapping {
                container_uuid: c.uuid.clone(),
                volume_name: m.name.clone(),
                mount_path: m.mount_path.clone(),
                read_only: m.read_only,
                auto_remove,
                volume_id: volumes.id_of(&m.name),
            });
        }
        containers.push(c);
    }

    let memory = i64::try_from(template.total_memory_mib()).unwrap_or(i64::MAX);
    let (policy_name, retries) = zun_restart_policy(capsule_policy, false);
    let refs: Vec<ContainerRef> = containers
        .iter()
        .map(|c| {
            Ok(ContainerRef {
                uuid: c.uuid.parse().map_err(ApiError::internal)?,
                name: c.name.clone(),
                is_init: c.is_init,
                position: usize::try_from(c.position).unwrap_or_default(),
            })
        })
        .collect::<Result<_, ApiError>>()?;
    let spec = CapsuleSpec {
        uuid: uuid.parse().map_err(ApiError::internal)?,
        name: template.name.clone(),
        project_id: project_id.clone(),
        template: template.clone(),
        containers: refs,
        volumes: volumes.refs.clone(),
    };
    let message = state
        .compute
        .create_capsule(spec, &ctx.request_id.0)
        .map_err(ApiError::internal)?;
    let base = NewCapsule {
        uuid: uuid.clone(),
        name: template.name.clone(),
        project_id,
        user_id: ctx.identity.user_id.clone(),
        status: CapsuleStatus::Creating.as_str().into(),
        status_reason: None,
        host: None,
        availability_zone: template.availability_zone.clone(),
        cpu: template.total_cpu(),
        memory,
        restart_policy: policy_name.into(),
        restart_max_retries: retries,
        labels: json!(template.labels),
        annotations: template.annotations.clone(),
        template: serde_json::to_value(&template).map_err(ApiError::internal)?,
        security_groups,
        containers,
        volume_mappings: mappings,
        volumes: volumes.take.clone(),
        volume_limits: state.config.volume.limits(),
        claim: None,
        outbox: Vec::new(),
    };
    let request = placement::Request {
        cpu: base.cpu,
        memory_mib: memory,
        ports: template
            .host_ports()
            .into_iter()
            .map(|(port, proto)| (proto.as_str().to_owned(), port))
            .collect(),
        availability_zone: template.availability_zone.clone(),
    };
    if state.compute.is_connected() {
        // Existing volumes pin the capsule to the host that holds them.
        let pinned = volumes.host.as_deref();
        let placed = Placement::new(&state.db, &state.config)
            .create_capsule(&base, &request, pinned, &message)
            .await?;
        if let Some(Placed {
            record,
            host,
            outbox,
        }) = placed
        {
            tracing::info!(capsule = %uuid, %host, "capsule scheduled");
            if let Some(fw) = &state.firewall {
                fw.hosts_changed([host]);
            }
            state.publish_now(&outbox).await;
            return Ok(record);
        }
    }
    // No host can take it: Zun's answer is 202 with the capsule in Error. It takes no
    // volumes.
    let reason = match &volumes.host {
        Some(h) => format!("{NO_VALID_HOST} (Its volumes are on compute host {h}.)"),
        None => NO_VALID_HOST.to_owned(),
    };
    let mut new = NewCapsule {
        status: CapsuleStatus::Error.as_str().into(),
        status_reason: Some(reason),
        volumes: Vec::new(),
        ..base
    };
    for m in &mut new.volume_mappings {
        m.volume_id = None;
    }
    let (rec, _) = state.db.create_capsule(new).await?;
    tracing::info!(capsule = %uuid, "no host can take the capsule");
    Ok(rec)
}

/// Zun's `default_cpu` / `default_memory`: a container that asks for no CPU or no memory gets
/// the configured default, so the scheduler claims it, the host enforces it and the view
/// shows it (a capsule without requests would otherwise claim nothing and run unbounded).
fn apply_default_resources(template: &mut CapsuleTemplate, limits: &LimitsConfig) {
    for c in template
        .init_containers
        .iter_mut()
        .chain(template.containers.iter_mut())
    {
        c.cpu.get_or_insert(limits.default_cpu);
        c.memory_mib.get_or_insert(limits.default_memory);
    }
}

/// The groups `spec.securityGroups` names, by id or name, in the capsule's project (each
/// project's `default` is made on first use). An unknown group is a 400 and nothing is made.
async fn resolve_security_groups(
    state: &AppState,
    project: &str,
    references: &[String],
) -> Result<Vec<SecurityGroupBinding>, ApiError> {
    let mut out = Vec::with_capacity(references.len());
    for (i, reference) in references.iter().enumerate() {
        let id = match state.db.resolve_security_group(project, reference).await? {
            Resolved::Group(id) => id,
            Resolved::NotFound => {
                return Err(ApiError::invalid_value(format!(
                    "spec.securityGroups[{i}]: security group {reference:?} not found in this project"
                )))
            }
            Resolved::Ambiguous => {
                return Err(ApiError::Conflict(format!(
                    "spec.securityGroups[{i}]: several security groups are named {reference:?}; name it by id"
                )))
            }
        };
        if out
            .iter()
            .any(|b: &SecurityGroupBinding| b.security_group_id == id)
        {
            return Err(ApiError::invalid_value(format!(
                "spec.securityGroups[{i}]: security group {reference:?} is already listed"
            )));
        }
        out.push(SecurityGroupBinding {
            reference: reference.clone(),
            security_group_id: id,
        });
    }
    Ok(out)
}

/// Zun's restart policy `(Name, MaximumRetryCount)` of a container. Init containers of an
/// `Always` capsule retry on failure up to 10 times, as in Zun (without Zun's bug of passing
/// that policy on to the application containers).
fn zun_restart_policy(p: RestartPolicy, init: bool) -> (&'static str, i32) {
    match (p, init) {
        (RestartPolicy::Always, true) => ("on-failure", 10),
        (p, _) => (p.zun_name(), 0),
    }
}

fn new_container(
    spec: &ContainerSpec,
    is_init: bool,
    position: usize,
    policy: RestartPolicy,
) -> NewContainer {
    let (restart_policy, restart_max_retries) = zun_restart_policy(policy, is_init);
    NewContainer {
        uuid: uuid::Uuid::new_v4().to_string(),
        is_init,
        position: i32::try_from(position).unwrap_or(i32::MAX),
        name: spec.name.clone().unwrap_or_default(),
        image: spec.image.clone(),
        command: json!(spec.zun_command()),
        environment: json!(spec.env),
        workdir: spec.work_dir.clone(),
        ports: json!(spec
            .ports
            .iter()
            .map(|p| p.container_port)
            .collect::<Vec<_>>()),
        image_pull_policy: spec
            .image_pull_policy
            .map(|p| p.as_zun_str())
            .unwrap_or("always")
            .into(),
        cpu: spec.cpu,
        memory: spec.memory_mib.and_then(|m| i64::try_from(m).ok()),
        status: CapsuleStatus::Creating.as_str().into(),
        restart_policy: restart_policy.into(),
        restart_max_retries,
        interactive: spec.stdin,
        tty: spec.tty,
        healthcheck: spec.liveness_probe.as_ref().map(|p| p.zun_healthcheck()),
    }
}

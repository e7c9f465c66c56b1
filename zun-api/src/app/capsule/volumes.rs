//! A capsule's volumes at its create: each `cinder: {volumeID}` checked (visible, in the
//! capsule's project, `available`, on a host) and each `cinder: {size}` given an id and checked
//! against the limits, before anything is made; the host the existing ones pin the capsule to.

use std::collections::HashMap;

use capsule_types::rpc::VolumeRef;
use capsule_types::template::{CapsuleTemplate, VolumeSource};
use capsule_types::VolumeStatus;
use db::volumes::{CapsuleVolume, VolumeRefused, VolumeScope};

use crate::context::RequestContext;
use crate::error::ApiError;
use crate::state::AppState;

/// What a capsule's volumes resolved to.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CapsuleVolumes {
    /// For the compute host, in template order.
    pub refs: Vec<VolumeRef>,
    /// For the database, to take atomically with the capsule.
    pub take: Vec<CapsuleVolume>,
    /// The host holding the existing volumes: the capsule must run there.
    pub host: Option<String>,
}

impl CapsuleVolumes {
    /// The id of the template's volume `name`.
    pub fn id_of(&self, name: &str) -> Option<String> {
        self.refs
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.id.to_string())
    }
}

fn not_found(id: &uuid::Uuid) -> ApiError {
    ApiError::NotFound {
        code: "volume-not-found",
        message: format!("Volume {id} could not be found."),
    }
}

/// Resolves `template.volumes` for a capsule of `project`. Nothing is written.
pub async fn resolve(
    state: &AppState,
    ctx: &RequestContext,
    project: &str,
    template: &CapsuleTemplate,
) -> Result<CapsuleVolumes, ApiError> {
    let limits = state.config.volume.limits();
    let mut out = CapsuleVolumes::default();
    let mut hosts: HashMap<String, uuid::Uuid> = HashMap::new();
    let mut new_sizes = Vec::new();
    for (i, v) in template.volumes.iter().enumerate() {
        let at = format!("spec.volumes[{i}] ({})", v.name);
        match &v.source {
            VolumeSource::Existing { volume_id } => {
                if out.refs.iter().any(|r| r.id == *volume_id) {
                    return Err(ApiError::invalid_value(format!(
                        "{at}: volume {volume_id} is named twice"
                    )));
                }
                let scope = if ctx.is_admin {
                    VolumeScope::All
                } else {
                    VolumeScope::Project(project)
                };
                let rec = state
                    .db
                    .volume(scope, &volume_id.to_string())
                    .await?
                    .ok_or_else(|| not_found(volume_id))?;
                let vol = &rec.volume;
                let label = match &vol.name {
                    Some(n) if !n.is_empty() => format!("{volume_id} ({n})"),
                    _ => volume_id.to_string(),
                };
                if vol.project_id != project {
                    return Err(ApiError::BadRequest {
                        code: "volume-not-usable",
                        message: format!(
                            "{at}: volume {label} belongs to project {}, not to the capsule's project {project}.",
                            vol.project_id
                        ),
                    });
                }
                let status = vol.status.parse::<VolumeStatus>().ok();
                if vol.capsule_uuid.is_some() || status == Some(VolumeStatus::InUse) {
                    return Err(ApiError::BadRequest {
                        code: "volume-in-use",
                        message: format!(
                            "{at}: volume {label} is in use: it is attached to capsule {}.",
                            vol.capsule_uuid.as_deref().unwrap_or("(unknown)")
                        ),
                    });
                }
                if status != Some(VolumeStatus::Available) {
                    return Err(ApiError::invalid_value(format!(
                        "{at}: volume {label} cannot be attached: its status is {}.",
                        vol.status
                    )));
                }
                let Some(host) = vol.host.clone() else {
                    return Err(ApiError::invalid_value(format!(
                        "{at}: volume {label} is on no compute host."
                    )));
                };
                if let Some((other_host, other)) = hosts.iter().find(|(h, _)| **h != host) {
                    return Err(ApiError::invalid_value(format!(
                        "{at}: volume {label} is on compute host {host} and volume {other} on \
                         {other_host}; a capsule runs on one host."
                    )));
                }
                hosts.insert(host.clone(), *volume_id);
                out.host = Some(host);
                out.refs.push(VolumeRef {
                    name: v.name.clone(),
                    id: *volume_id,
                    size_gib: u64::try_from(vol.size_gib).unwrap_or_default(),
                    create: false,
                    auto_remove: false,
                });
                out.take.push(CapsuleVolume::Existing {
                    id: volume_id.to_string(),
                });
            }
            VolumeSource::New {
                size_gib,
                auto_remove,
            } => {
                let size = i64::try_from(*size_gib).unwrap_or(i64::MAX);
                if size > limits.max_size_gib {
                    return Err(ApiError::from(VolumeRefused::TooLarge {
                        size,
                        max: limits.max_size_gib,
                    }));
                }
                new_sizes.push(size);
                let id = uuid::Uuid::new_v4();
                out.refs.push(VolumeRef {
                    name: v.name.clone(),
                    id,
                    size_gib: *size_gib,
                    create: true,
                    auto_remove: *auto_remove,
                });
                out.take.push(CapsuleVolume::New {
                    id: id.to_string(),
                    size_gib: size,
                    auto_remove: *auto_remove,
                });
            }
        }
    }
    // The quota, checked here for a clear answer before anything is made (and again in the
    // create's transaction, which counts concurrent creates).
    if !new_sizes.is_empty() {
        let (used_gib, count) = state.db.volume_usage(project).await?;
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        let n = i64::try_from(new_sizes.len()).unwrap_or(i64::MAX);
        if limits.project_volumes >= 0 && count + n > limits.project_volumes {
            return Err(ApiError::from(VolumeRefused::TooMany {
                quota: limits.project_volumes,
            }));
        }
        let requested: i64 = new_sizes.iter().sum();
        if limits.project_gigabytes >= 0 && used_gib + requested > limits.project_gigabytes {
            return Err(ApiError::from(VolumeRefused::OverQuota {
                requested,
                quota: limits.project_gigabytes,
                used: used_gib,
            }));
        }
    }
    Ok(out)
}

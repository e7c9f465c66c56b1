//! Volume quotas and limits (the Cinder API's `/limits` and `/os-quota-sets`): every project
//! has the configured ones (`[volume]`), shown with the project's usage.

use db::volumes::VolumeLimits;

use super::volume::{project, VolumeError};
use crate::context::RequestContext;
use crate::state::AppState;

/// A project's limits and what its volumes use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    /// The configured limits.
    pub limits: VolumeLimits,
    /// GiB its volumes take.
    pub gigabytes: i64,
    /// How many volumes it has.
    pub volumes: u64,
}

/// The limits and usage of the caller's project (an admin may name another in `asked`;
/// anyone else's `asked` is ignored, as Cinder does).
pub async fn limits(
    state: &AppState,
    ctx: &RequestContext,
    asked: Option<&str>,
) -> Result<Usage, VolumeError> {
    let own = project(ctx, "limits_extension:used_limits")?;
    let project = match asked {
        Some(p) if ctx.is_admin => p,
        _ => own,
    };
    let (gigabytes, volumes) = state.db.volume_usage(project).await?;
    Ok(Usage {
        limits: state.config.volume.limits(),
        gigabytes,
        volumes,
    })
}

/// `target` if the caller may see its quotas (its own, or any for an admin).
fn quota_target(ctx: &RequestContext, target: &str) -> Result<(), VolumeError> {
    const SHOW: &str = "volume_extension:quotas:show";
    if ctx.is_admin || ctx.identity.project_id.as_deref() == Some(target) {
        Ok(())
    } else {
        Err(VolumeError::Denied { action: SHOW })
    }
}

/// The quotas of project `target`, with its usage when `usage` (the parsed `?usage=`, or the
/// API's refusal of it) says so.
pub async fn show<E: From<VolumeError>>(
    state: &AppState,
    ctx: &RequestContext,
    target: &str,
    usage: Result<bool, E>,
) -> Result<(VolumeLimits, Option<(i64, u64)>), E> {
    quota_target(ctx, target)?;
    let used = if usage? {
        let used = state.db.volume_usage(target).await;
        Some(used.map_err(VolumeError::from)?)
    } else {
        None
    };
    Ok((state.config.volume.limits(), used))
}

/// The default quotas, as seen for project `target` (every project has the configured ones).
pub fn defaults(
    state: &AppState,
    ctx: &RequestContext,
    target: &str,
) -> Result<VolumeLimits, VolumeError> {
    quota_target(ctx, target)?;
    Ok(state.config.volume.limits())
}

/// `PUT` or `DELETE` of quotas: they come from the configuration, so always refused (admins
/// are told why).
pub fn change(ctx: &RequestContext) -> VolumeError {
    if !ctx.is_admin {
        return VolumeError::Denied {
            action: "volume_extension:quotas:update",
        };
    }
    VolumeError::QuotasFixed
}

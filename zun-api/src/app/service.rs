//! Compute services (Zun's `/v1/services`): list with liveness, delete, enable, disable and
//! force down, each behind its `zun-service:*` rule.

use std::time::Duration;

use chrono::Utc;
use db::entity::zun_service;
use policy::Target;

use crate::context::RequestContext;
use crate::error::ApiError;
use crate::state::AppState;

/// A service with its liveness.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceState {
    /// The row.
    pub service: zun_service::Model,
    /// Up by Zun's rule with `[conductor] service_down_seconds`.
    pub up: bool,
}

/// Which `PUT /v1/services/<action>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `enable`: `host`, `binary`.
    Enable,
    /// `disable`: `host`, `binary`, optional `disabled_reason`.
    Disable,
    /// `force_down`: `host`, `binary`, `forced_down`.
    ForceDown,
}

impl Action {
    /// The policy rule of the action.
    pub fn rule(self) -> &'static str {
        match self {
            Action::Enable => "zun-service:enable",
            Action::Disable => "zun-service:disable",
            Action::ForceDown => "zun-service:force_down",
        }
    }
}

/// A service by its host and binary, as given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceKey {
    /// Host name.
    pub host: String,
    /// Binary (`zun-compute`).
    pub binary: String,
}

/// What an action changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Enable the service.
    Enable,
    /// Disable it, for this reason.
    Disable {
        /// Why (shown in the list).
        reason: Option<String>,
    },
    /// Force it down (`true`) or undo that (`false`).
    ForceDown(bool),
}

/// What an action changed, as Zun echoes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Enable or disable.
    Disabled {
        /// As given.
        host: String,
        /// As given.
        binary: String,
        /// The new flag.
        disabled: bool,
        /// The new reason.
        disabled_reason: Option<String>,
    },
    /// Force down or undo it.
    ForcedDown {
        /// As given.
        host: String,
        /// As given.
        binary: String,
        /// The new flag.
        forced_down: bool,
    },
}

fn authorize(state: &AppState, ctx: &RequestContext, rule: &str) -> Result<(), ApiError> {
    state
        .policy
        .enforce(rule, &Target::owned_by(&ctx.creds), &ctx.creds)?;
    Ok(())
}

/// Zun's 404 for a service.
fn not_found(key: &ServiceKey) -> ApiError {
    ApiError::NotFound {
        code: "zun-service-not-found",
        message: format!(
            "Zun service {} on host {} could not be found.",
            key.binary, key.host
        ),
    }
}

/// Every service, oldest first, with its liveness.
pub async fn list(state: &AppState, ctx: &RequestContext) -> Result<Vec<ServiceState>, ApiError> {
    authorize(state, ctx, "zun-service:get_all")?;
    let down_after = Duration::from_secs(state.config.conductor.service_down_seconds);
    let now = Utc::now();
    Ok(state
        .db
        .list_services()
        .await?
        .into_iter()
        .map(|service| ServiceState {
            up: db::service_is_up(&service, down_after, now),
            service,
        })
        .collect())
}

/// Deletes the service and its host's compute node; `key` is the parsed query, or why it did
/// not parse (reported after the policy check, as Zun does).
pub async fn delete(
    state: &AppState,
    ctx: &RequestContext,
    key: Result<ServiceKey, ApiError>,
) -> Result<(), ApiError> {
    authorize(state, ctx, "zun-service:delete")?;
    let key = key?;
    if state.db.delete_service(&key.host, &key.binary).await? {
        Ok(())
    } else {
        Err(not_found(&key))
    }
}

/// Applies `action`; `change` is its parsed parameters, or why they did not parse (reported
/// after the policy check, as Zun does).
pub async fn update(
    state: &AppState,
    ctx: &RequestContext,
    action: Action,
    change: Result<(ServiceKey, Change), ApiError>,
) -> Result<Outcome, ApiError> {
    authorize(state, ctx, action.rule())?;
    let (key, change) = change?;
    match change {
        Change::Enable | Change::Disable { .. } => {
            let (disabled, reason) = match change {
                Change::Disable { reason } => (true, reason),
                _ => (false, None),
            };
            if !state
                .db
                .set_service_disabled(&key.host, &key.binary, disabled, reason.as_deref())
                .await?
            {
                return Err(not_found(&key));
            }
            Ok(Outcome::Disabled {
                host: key.host,
                binary: key.binary,
                disabled,
                disabled_reason: reason,
            })
        }
        Change::ForceDown(forced_down) => {
            if !state
                .db
                .set_service_forced_down(&key.host, &key.binary, forced_down)
                .await?
            {
                return Err(not_found(&key));
            }
            Ok(Outcome::ForcedDown {
                host: key.host,
                binary: key.binary,
                forced_down,
            })
        }
    }
}

//! Availability zones (the Cinder API's `/os-availability-zone`): the zones of the compute
//! hosts, each available when one of its hosts is up and enabled.

use std::collections::BTreeSet;
use std::time::Duration;

use capsule_types::rpc::COMPUTE_BINARY;
use db::DbError;

use crate::compute::placement::service_is_up;
use crate::state::AppState;

/// The zones of the compute hosts (the default zone when a host names none) and whether each
/// is available. With no host at all, the default zone, not available.
pub async fn states(state: &AppState) -> Result<Vec<(String, bool)>, DbError> {
    let cfg = &state.config;
    let down_after = Duration::from_secs(cfg.conductor.service_down_seconds);
    let mut zones: Vec<(String, bool)> = Vec::new();
    for svc in state.db.list_services().await? {
        if svc.binary != COMPUTE_BINARY {
            continue;
        }
        let zone = svc
            .availability_zone
            .clone()
            .filter(|z| !z.is_empty())
            .unwrap_or_else(|| cfg.scheduler.default_availability_zone.clone());
        let up = !svc.disabled && service_is_up(&svc, down_after);
        match zones.iter_mut().find(|(z, _)| *z == zone) {
            Some((_, avail)) => *avail |= up,
            None => zones.push((zone, up)),
        }
    }
    if zones.is_empty() {
        zones.push((cfg.scheduler.default_availability_zone.clone(), false));
    }
    Ok(zones)
}

/// The names of the zones a volume may ask for.
pub async fn names(state: &AppState) -> Result<BTreeSet<String>, DbError> {
    let mut names: BTreeSet<String> = states(state).await?.into_iter().map(|(z, _)| z).collect();
    names.insert(state.config.scheduler.default_availability_zone.clone());
    Ok(names)
}

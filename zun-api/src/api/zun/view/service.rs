//! Compute services as Zun's `services_view` shows them, and the answers of the enable,
//! disable and force-down actions.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::app::service::{Outcome, ServiceState};

/// Zun's `utils.strtime`: `%Y-%m-%dT%H:%M:%S.%f`, always with microseconds.
pub fn service_time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

/// One service; an empty zone is shown as `default_az` (Zun's `default_availability_zone`).
pub fn service_json(s: &ServiceState, default_az: &str) -> Value {
    let svc = &s.service;
    let az = svc
        .availability_zone
        .as_deref()
        .filter(|z| !z.is_empty())
        .unwrap_or(default_az);
    json!({
        "availability_zone": az,
        "binary": svc.binary,
        "created_at": service_time(&svc.created_at),
        "disabled": svc.disabled,
        "disabled_reason": svc.disabled_reason,
        "forced_down": svc.forced_down,
        "host": svc.host,
        "id": svc.id,
        "last_seen_up": svc.last_seen_up.as_ref().map(service_time),
        "report_count": svc.report_count,
        "state": if s.up { "up" } else { "down" },
        "updated_at": svc.updated_at.as_ref().map(service_time),
    })
}

/// `{"services": [...]}` (Zun's service list has no `next`).
pub fn services_json(list: &[ServiceState], default_az: &str) -> Value {
    json!({
        "services": list.iter().map(|s| service_json(s, default_az)).collect::<Vec<_>>(),
    })
}

/// `{"service": {...}}` echoing what an action changed.
pub fn outcome_json(o: &Outcome) -> Value {
    match o {
        Outcome::Disabled {
            host,
            binary,
            disabled,
            disabled_reason,
        } => json!({"service": {
            "host": host,
            "binary": binary,
            "disabled": disabled,
            "disabled_reason": disabled_reason,
        }}),
        Outcome::ForcedDown {
            host,
            binary,
            forced_down,
        } => json!({"service": {
            "host": host,
            "binary": binary,
            "forced_down": forced_down,
        }}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Timelike};

    #[test]
    fn zun_strtime_always_has_microseconds() {
        let t = Utc.with_ymd_and_hms(2017, 2, 1, 3, 25, 7).unwrap();
        assert_eq!(service_time(&t), "2017-02-01T03:25:07.000000");
        let t = t.with_nanosecond(304_734_000).unwrap();
        assert_eq!(service_time(&t), "2017-02-01T03:25:07.304734");
    }
}

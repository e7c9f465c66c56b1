//! Container actions and their events in Zun's shape (`actions_view.format_action` and
//! `format_event`): the keys Zun shows, times as `%Y-%m-%dT%H:%M:%S.%f`, and an event's
//! `traceback` only for callers `container:action:events` allows.

use chrono::{DateTime, Utc};
use db::entity::{container_action, container_action_event};
use serde_json::{json, Value};

use crate::app::container::history::ActionDetail;

/// Zun's `utils.strtime`.
fn strtime(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

fn action_json(a: &container_action::Model) -> Value {
    json!({
        "action": a.action,
        "container_uuid": a.container_uuid,
        "finish_time": a.finish_time.as_ref().map(strtime),
        "message": a.message,
        "project_id": a.project_id,
        "request_id": a.request_id,
        "start_time": strtime(&a.start_time),
        "user_id": a.user_id,
    })
}

fn event_json(e: &container_action_event::Model, show_traceback: bool) -> Value {
    json!({
        "event": e.event,
        "finish_time": e.finish_time.as_ref().map(strtime),
        "result": e.result,
        "start_time": strtime(&e.start_time),
        "traceback": if show_traceback { e.traceback.clone() } else { None },
    })
}

/// `{"containerActions": [...]}`.
pub fn actions_json(actions: &[container_action::Model]) -> Value {
    json!({ "containerActions": actions.iter().map(action_json).collect::<Vec<_>>() })
}

/// One action with its `events`.
pub fn action_detail_json(d: &ActionDetail) -> Value {
    let mut v = action_json(&d.record.action);
    v["events"] = d
        .record
        .events
        .iter()
        .map(|e| event_json(e, d.show_traceback))
        .collect();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn zun_time_format() {
        let t = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(strtime(&t), "2026-01-02T03:04:05.000000");
    }
}

//! The JSON shapes of the block-storage API: volumes, volume types, limits and quotas as
//! Cinder's v3 API shows them. Fields that Cinder adds at a microversion appear from that
//! microversion on, admin-only ones only to admins; every stored row renders (odd values as
//! they are, or as an empty metadata object), so a `GET` never fails on data.

use chrono::{DateTime, Utc};
use db::volumes::{VolumeLimits, VolumeRecord};
use serde_json::{json, Map, Value};

use super::version::Version;
pub use crate::app::volume::metadata_of as metadata;
use crate::app::volume::VolumePage;
use crate::app::volume_type::{DEFAULT_TYPE_ID, DEFAULT_TYPE_NAME};

/// What a volume's view depends on besides the row: the negotiated microversion, whether the
/// caller is an admin and the link prefixes of the request.
#[derive(Clone, Copy, Debug)]
pub struct Viewer<'a> {
    /// The negotiated microversion.
    pub version: Version,
    /// The caller is an admin (sees the host and the admin-only attributes).
    pub is_admin: bool,
    /// `<base>/v3[/<project>]`: the prefix of `self` links.
    pub versioned: &'a str,
    /// `<base>[/<project>]`: the prefix of `bookmark` links.
    pub bookmark: &'a str,
}

impl Viewer<'_> {
    fn links(&self, id: &str) -> Value {
        json!([
            {"href": format!("{}/volumes/{id}", self.versioned), "rel": "self"},
            {"href": format!("{}/volumes/{id}", self.bookmark), "rel": "bookmark"},
        ])
    }
}

/// A timestamp as Cinder writes it: `2026-11-24T20:28:00.510474` (UTC, no zone).
pub fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

/// A volume in a summary list: id, name and links.
pub fn summary(rec: &VolumeRecord, v: &Viewer<'_>) -> Value {
    let vol = &rec.volume;
    json!({"id": vol.id, "name": vol.name, "links": v.links(&vol.id)})
}

/// The attachments of an attached volume: one per container mount of its capsule (one without
/// a device while the capsule has none recorded yet). `id` is the volume's id, as in Cinder;
/// `attachment_id` is stable for the mount. `host_name` is shown to admins only, as Cinder does.
pub fn attachments(rec: &VolumeRecord, is_admin: bool) -> Vec<Value> {
    let vol = &rec.volume;
    let Some(capsule) = &vol.capsule_uuid else {
        return Vec::new();
    };
    let host = if is_admin { vol.host.clone() } else { None };
    let attached_at = vol.attached_at.map(time);
    let entry = |key: String, device: Option<&str>, container: Option<&str>, ro: Option<bool>| {
        json!({
            "id": vol.id,
            "attachment_id": attachment_id(&key),
            "volume_id": vol.id,
            "server_id": capsule,
            "host_name": host,
            "device": device,
            "attached_at": attached_at,
            "container_uuid": container,
            "read_only": ro,
        })
    };
    if rec.mounts.is_empty() {
        return vec![entry(format!("{}/{capsule}", vol.id), None, None, None)];
    }
    rec.mounts
        .iter()
        .map(|m| {
            entry(
                format!("{}/{capsule}/{}", vol.id, m.id),
                Some(&m.mount_path),
                Some(&m.container_uuid),
                Some(m.read_only),
            )
        })
        .collect()
}

/// A uuid derived from `key` (the same key, the same id).
fn attachment_id(key: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// A volume in full (`GET /volumes/{id}`, `/volumes/detail`, create and update answers).
/// `reason` is why it is in `error`; Cinder has no field for it, so it is not shown (yet).
pub fn detail(rec: &VolumeRecord, reason: Option<&str>, v: &Viewer<'_>) -> Value {
    let _ = reason;
    let vol = &rec.volume;
    let mut out = json!({
        "id": vol.id,
        "name": vol.name,
        "description": vol.description,
        "size": vol.size_gib,
        "status": vol.status,
        "availability_zone": vol.availability_zone,
        "created_at": time(vol.created_at),
        "updated_at": vol.updated_at.map(time),
        "attachments": attachments(rec, v.is_admin),
        "bootable": "false",
        "encrypted": false,
        "multiattach": false,
        "metadata": metadata(&vol.metadata),
        "volume_type": DEFAULT_TYPE_NAME,
        "snapshot_id": null,
        "source_volid": null,
        "consistencygroup_id": null,
        "replication_status": null,
        "user_id": vol.user_id,
        "links": v.links(&vol.id),
        "os-vol-tenant-attr:tenant_id": vol.project_id,
    });
    let Value::Object(m) = &mut out else {
        return out;
    };
    let at = |minor: u16| v.version.at_least(minor);
    if v.is_admin {
        m.insert("migration_status".into(), Value::Null);
        m.insert("os-vol-host-attr:host".into(), json!(vol.host));
        m.insert("os-vol-mig-status-attr:migstat".into(), Value::Null);
        m.insert("os-vol-mig-status-attr:name_id".into(), Value::Null);
    }
    if at(13) {
        m.insert("group_id".into(), Value::Null);
    }
    if v.is_admin && at(21) {
        m.insert("provider_id".into(), Value::Null);
    }
    if at(48) {
        m.insert("shared_targets".into(), Value::Bool(false));
        m.insert("service_uuid".into(), Value::Null);
    }
    if v.is_admin && at(61) {
        m.insert("cluster_name".into(), Value::Null);
    }
    if at(63) {
        m.insert("volume_type_id".into(), json!(DEFAULT_TYPE_ID));
    }
    if at(65) {
        m.insert("consumes_quota".into(), Value::Bool(true));
    }
    out
}

/// The only volume type.
pub fn default_type() -> Value {
    json!({
        "id": DEFAULT_TYPE_ID,
        "name": DEFAULT_TYPE_NAME,
        "description": "Default Volume Type",
        "is_public": true,
        "extra_specs": {},
        "os-volume-type-access:is_public": true,
    })
}

/// A limit as Cinder shows it: `-1` for unlimited.
fn limit(n: i64) -> i64 {
    if n < 0 {
        -1
    } else {
        n
    }
}

/// `GET /limits`: the project's absolute limits and usage (no rate limits; no snapshots or
/// backups exist here, so their limits are 0).
pub fn limits(l: VolumeLimits, gib_used: i64, volumes_used: u64) -> Value {
    json!({"limits": {"rate": [], "absolute": {
        "maxTotalVolumes": limit(l.project_volumes),
        "maxTotalVolumeGigabytes": limit(l.project_gigabytes),
        "maxTotalSnapshots": 0,
        "maxTotalBackups": 0,
        "maxTotalBackupGigabytes": 0,
        "totalVolumesUsed": volumes_used,
        "totalGigabytesUsed": gib_used,
        "totalSnapshotsUsed": 0,
        "totalBackupsUsed": 0,
        "totalBackupGigabytesUsed": 0,
    }}})
}

/// `GET /os-quota-sets/{project}`: the quotas, with `usage` (`in_use`, `reserved`) per
/// resource when `usage` is given.
pub fn quota_set(project: &str, l: VolumeLimits, usage: Option<(i64, u64)>) -> Value {
    let quotas: [(&str, i64, i64); 7] = [
        (
            "volumes",
            limit(l.project_volumes),
            usage.map_or(0, |u| i64::try_from(u.1).unwrap_or(i64::MAX)),
        ),
        (
            "gigabytes",
            limit(l.project_gigabytes),
            usage.map_or(0, |u| u.0),
        ),
        ("per_volume_gigabytes", limit(l.max_size_gib), 0),
        ("snapshots", 0, 0),
        ("backups", 0, 0),
        ("backup_gigabytes", 0, 0),
        ("groups", 0, 0),
    ];
    let mut m = Map::new();
    m.insert("id".into(), json!(project));
    for (name, lim, used) in quotas {
        let v = if usage.is_some() {
            json!({"limit": lim, "in_use": used, "reserved": 0})
        } else {
            json!(lim)
        };
        m.insert(name.into(), v);
    }
    json!({ "quota_set": m })
}

/// `{"volume": {...}}` in full.
pub fn volume(rec: &VolumeRecord, v: &Viewer<'_>) -> Value {
    json!({"volume": detail(rec, rec.volume.status_reason.as_deref(), v)})
}

/// A list page: `volumes` (in summary or in full), `volumes_links` with the `next` link when
/// the page is full (`next` is its URL without the marker's value), and `count` when asked.
pub fn volume_list(
    page: &VolumePage,
    detailed: bool,
    limit: u64,
    next: impl FnOnce(&str) -> String,
    v: &Viewer<'_>,
) -> Value {
    let recs = &page.records;
    let items: Vec<Value> = recs
        .iter()
        .map(|r| {
            if detailed {
                detail(r, r.volume.status_reason.as_deref(), v)
            } else {
                summary(r, v)
            }
        })
        .collect();
    let mut out = Map::new();
    let full = limit > 0 && u64::try_from(recs.len()).unwrap_or(u64::MAX) == limit;
    if let (true, Some(last)) = (full, recs.last()) {
        out.insert(
            "volumes_links".into(),
            json!([{"href": next(&last.volume.id), "rel": "next"}]),
        );
    }
    out.insert("volumes".into(), Value::Array(items));
    if let Some(count) = page.count {
        out.insert("count".into(), json!(count));
    }
    Value::Object(out)
}

/// `GET /volumes/summary`: how many volumes and GiB, with their distinct metadata from 3.36.
pub fn volume_summary(recs: &[VolumeRecord], version: Version) -> Value {
    let total = recs
        .iter()
        .fold(0i64, |t, r| t.saturating_add(r.volume.size_gib));
    let mut s = json!({"total_count": recs.len(), "total_size": total});
    if version.at_least(36) {
        let mut meta: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
        for r in recs {
            for (k, v) in metadata(&r.volume.metadata) {
                let vals = meta.entry(k).or_default();
                if !vals.contains(&v) {
                    vals.push(v);
                }
            }
        }
        s["metadata"] = json!(meta);
    }
    json!({ "volume-summary": s })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use db::entity::{volume, volume_mapping};

    fn row() -> volume::Model {
        let t = Utc.with_ymd_and_hms(2026, 11, 24, 20, 28, 0).unwrap();
        volume::Model {
            id: "v1".into(),
            project_id: "p".into(),
            user_id: "u".into(),
            name: Some("data".into()),
            description: None,
            size_gib: 1,
            status: "in-use".into(),
            status_reason: None,
            host: Some("h1".into()),
            availability_zone: "nova".into(),
            capsule_uuid: Some("c1".into()),
            attached_at: Some(t),
            auto_remove: false,
            metadata: json!({"a": "b", "n": 1}),
            created_at: t,
            updated_at: None,
        }
    }

    fn viewer(version: u16, is_admin: bool) -> Viewer<'static> {
        Viewer {
            version: Version(version),
            is_admin,
            versioned: "http://h/v3/p",
            bookmark: "http://h/p",
        }
    }

    #[test]
    fn detail_follows_version_and_role() {
        let rec = VolumeRecord {
            volume: row(),
            mounts: vec![],
        };
        let d = detail(&rec, None, &viewer(0, false));
        assert_eq!(d["created_at"], "2026-11-24T20:28:00.000000");
        assert_eq!(d["updated_at"], Value::Null);
        assert_eq!(d["metadata"], json!({"a": "b", "n": "1"}));
        assert_eq!(d["links"][0]["href"], "http://h/v3/p/volumes/v1");
        assert_eq!(d["links"][1]["href"], "http://h/p/volumes/v1");
        assert!(d.get("os-vol-host-attr:host").is_none());
        assert!(d.get("group_id").is_none());
        assert!(d.get("volume_type_id").is_none());
        // One attachment without a device while no mount is recorded; no host for users.
        let a = d["attachments"].as_array().unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!(a[0]["server_id"], "c1");
        assert_eq!(a[0]["device"], Value::Null);
        assert_eq!(a[0]["host_name"], Value::Null);
        let d = detail(&rec, None, &viewer(70, true));
        assert_eq!(d["os-vol-host-attr:host"], "h1");
        assert_eq!(d["group_id"], Value::Null);
        assert_eq!(d["volume_type_id"], DEFAULT_TYPE_ID);
        assert_eq!(d["consumes_quota"], true);
        assert_eq!(d["attachments"][0]["host_name"], "h1");
    }

    #[test]
    fn one_attachment_per_mount_with_stable_ids() {
        let t = Utc::now();
        let mount = |id: i32, path: &str| volume_mapping::Model {
            id,
            capsule_id: 1,
            container_uuid: format!("k{id}"),
            volume_name: "data".into(),
            mount_path: path.into(),
            read_only: id == 2,
            volume_id: Some("v1".into()),
            auto_remove: false,
            created_at: t,
        };
        let rec = VolumeRecord {
            volume: row(),
            mounts: vec![mount(1, "/data"), mount(2, "/ro")],
        };
        let a = attachments(&rec, false);
        assert_eq!(a.len(), 2);
        assert_eq!(a[1]["device"], "/ro");
        assert_eq!(a[1]["read_only"], true);
        assert_eq!(a[0]["container_uuid"], "k1");
        assert_ne!(a[0]["attachment_id"], a[1]["attachment_id"]);
        assert_eq!(attachments(&rec, false)[0], a[0]);
        let mut free = rec.clone();
        free.volume.capsule_uuid = None;
        assert!(attachments(&free, true).is_empty());
    }

    #[test]
    fn odd_metadata_still_renders() {
        assert!(metadata(&json!([1, 2])).is_empty());
        assert!(metadata(&Value::Null).is_empty());
    }

    #[test]
    fn quotas_and_limits_show_unlimited_as_minus_one() {
        let l = VolumeLimits {
            max_size_gib: 100,
            project_gigabytes: -5,
            project_volumes: 10,
        };
        let q = quota_set("p", l, Some((3, 2)));
        assert_eq!(
            q["quota_set"]["gigabytes"],
            json!({"limit": -1, "in_use": 3, "reserved": 0})
        );
        assert_eq!(q["quota_set"]["volumes"]["in_use"], 2);
        assert_eq!(quota_set("p", l, None)["quota_set"]["volumes"], 10);
        let lim = limits(l, 3, 2);
        assert_eq!(lim["limits"]["absolute"]["maxTotalVolumeGigabytes"], -1);
        assert_eq!(lim["limits"]["absolute"]["totalVolumesUsed"], 2);
    }
}

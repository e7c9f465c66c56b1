//! The JSON shapes of the block-storage API. Answers: volumes, volume types and quotas as
//! Cinder's v3 API shows them; fields that Cinder adds at a microversion appear from that
//! microversion on, admin-only ones only to admins; every stored row renders (odd values as
//! they are, or as an empty metadata object), so a `GET` never fails on data. Requests: volume
//! bodies checked strictly, as Cinder's schemas check them, with a 400 naming the field; what
//! this service cannot do (volumes from snapshots, images, backups or other volumes;
//! multiattach; scheduler hints) is a 400 saying so, never silently ignored.

use chrono::{DateTime, Utc};
use db::volumes::{VolumeLimits, VolumeRecord};
use serde_json::{json, Map, Value};

use super::error::CinderError;
use super::{parse_bool, Version};

/// The id of the only volume type, `__DEFAULT__` (fixed, so clients may cache it).
pub const DEFAULT_TYPE_ID: &str = "5d6a3f2e-9c1b-4f7a-8e0d-2b4c6a8e1f30";
/// The name of the only volume type (Cinder's default type's name).
pub const DEFAULT_TYPE_NAME: &str = "__DEFAULT__";

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

/// The stored metadata as an object of strings (anything else stored shows as text, a
/// non-object as `{}`).
pub fn metadata(stored: &Value) -> Map<String, Value> {
    match stored {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(_) => v.clone(),
                    other => Value::String(other.to_string()),
                };
                (k.clone(), v)
            })
            .collect(),
        _ => Map::new(),
    }
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

/// Longest name, description, metadata key or value, in characters.
const MAX_TEXT: usize = 255;
/// Largest size the schema accepts (Cinder's `DB_MAX_INT`), before the configured limit.
const DB_MAX_INT: i64 = 0x7FFF_FFFF;

/// A `POST /volumes` body, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct CreateRequest {
    /// Size, GiB (>= 1).
    pub size: i64,
    /// Name (trimmed).
    pub name: Option<String>,
    /// Description (trimmed).
    pub description: Option<String>,
    /// Requested zone.
    pub availability_zone: Option<String>,
    /// Metadata.
    pub metadata: Map<String, Value>,
    /// Requested type (name or id), if any.
    pub volume_type: Option<String>,
}

/// A `PUT /volumes/{id}` body, checked: `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UpdateRequest {
    /// New name (`Some(None)`: none).
    pub name: Option<Option<String>>,
    /// New description.
    pub description: Option<Option<String>>,
    /// New metadata (replaces the old).
    pub metadata: Option<Map<String, Value>>,
}

/// Source keys Cinder accepts and this service does not implement; `null` is fine.
const SOURCES: &[(&str, &str)] = &[
    ("snapshot_id", "a snapshot"),
    ("source_volid", "another volume"),
    ("imageRef", "an image"),
    ("image_id", "an image"),
    ("backup_id", "a backup"),
    ("consistencygroup_id", "a consistency group"),
    ("group_id", "a group"),
];

fn unexpected(key: &str, allowed: &str) -> CinderError {
    CinderError::bad_request(format!(
        "Additional properties are not allowed ('{key}' was unexpected): {allowed}."
    ))
}

/// An optional text field: a string of at most 255 characters (trimmed) or `null`.
fn text(field: &str, v: &Value) -> Result<Option<String>, CinderError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => {
            let s = s.trim();
            if s.chars().count() > MAX_TEXT {
                return Err(CinderError::invalid(
                    field,
                    format!("'{}...'", s.chars().take(32).collect::<String>()),
                    format!("It is longer than {MAX_TEXT} characters."),
                ));
            }
            Ok(Some(s.to_owned()))
        }
        other => Err(CinderError::invalid(
            field,
            other,
            "It must be a string or null.",
        )),
    }
}

/// A size: an integer >= 1, or a string of digits (Cinder accepts both).
fn size(v: &Value) -> Result<i64, CinderError> {
    let why = "The size must be a whole number of GiB, at least 1.";
    let n = match v {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| CinderError::invalid("size", v, why))?,
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse::<i64>().unwrap_or(i64::MAX)
        }
        other => return Err(CinderError::invalid("size", other, why)),
    };
    if n < 1 {
        return Err(CinderError::invalid(
            "size",
            v,
            format!("{n} is less than the minimum of 1."),
        ));
    }
    if n > DB_MAX_INT {
        return Err(CinderError::invalid(
            "size",
            v,
            format!("{n} is greater than the maximum of {DB_MAX_INT}."),
        ));
    }
    Ok(n)
}

fn metadata_key_ok(k: &str) -> bool {
    let n = k.chars().count();
    (1..=MAX_TEXT).contains(&n)
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_:. /".contains(c))
}

/// Metadata: an object of strings (keys of letters, digits and `-_:. /`, 1 to 255
/// characters; values at most 255).
pub fn parse_metadata(v: &Value) -> Result<Map<String, Value>, CinderError> {
    let Value::Object(m) = v else {
        return Err(CinderError::invalid(
            "metadata",
            v,
            "It must be an object of strings.",
        ));
    };
    for (k, val) in m {
        if !metadata_key_ok(k) {
            return Err(CinderError::invalid(
                "metadata",
                v,
                format!(
                    "Key '{k}' is not allowed: keys are 1 to {MAX_TEXT} letters, digits or \
                     '-_:. /'."
                ),
            ));
        }
        match val {
            Value::String(s) if s.chars().count() <= MAX_TEXT => {}
            Value::String(_) => {
                return Err(CinderError::invalid(
                    "metadata",
                    v,
                    format!("The value of '{k}' is longer than {MAX_TEXT} characters."),
                ))
            }
            other => {
                return Err(CinderError::invalid(
                    "metadata",
                    v,
                    format!("The value of '{k}' is {other}, not a string."),
                ))
            }
        }
    }
    Ok(m.clone())
}

/// An empty `null`/`{}` hint object is fine; anything else is not supported.
fn no_hints(key: &str, v: &Value) -> Result<(), CinderError> {
    match v {
        Value::Null => Ok(()),
        Value::Object(m) if m.is_empty() => Ok(()),
        _ => Err(CinderError::bad_request(format!(
            "Scheduler hints ('{key}') are not supported by this service."
        ))),
    }
}

/// The object under `key` of a body that has only that key (and, for a create, scheduler
/// hints).
pub(super) fn wrapped<'a>(
    body: &'a Value,
    key: &str,
    hints: bool,
) -> Result<&'a Map<String, Value>, CinderError> {
    let Value::Object(top) = body else {
        return Err(CinderError::bad_request("Malformed request body"));
    };
    for (k, v) in top {
        if k == key {
            continue;
        }
        if hints && k == "OS-SCH-HNT:scheduler_hints" {
            no_hints(k, v)?;
            continue;
        }
        return Err(unexpected(
            k,
            &format!("the body is {{\"{key}\": {{...}}}}"),
        ));
    }
    match top.get(key) {
        Some(Value::Object(m)) => Ok(m),
        Some(other) => Err(CinderError::invalid(key, other, "It must be an object.")),
        None => Err(CinderError::bad_request(format!(
            "Invalid input for field/attribute body. '{key}' is a required property."
        ))),
    }
}

/// Checks a `POST /volumes` body.
pub fn parse_create(body: &Value) -> Result<CreateRequest, CinderError> {
    let vol = wrapped(body, "volume", true)?;
    let mut req = CreateRequest {
        size: 0,
        name: None,
        description: None,
        availability_zone: None,
        metadata: Map::new(),
        volume_type: None,
    };
    let mut have_size = false;
    let (mut name, mut display_name, mut desc, mut display_desc) = (None, None, None, None);
    for (k, v) in vol {
        match k.as_str() {
            "size" if v.is_null() => {}
            "size" => {
                req.size = size(v)?;
                have_size = true;
            }
            "name" => name = text(k, v)?,
            "display_name" => display_name = text(k, v)?,
            "description" => desc = text(k, v)?,
            "display_description" => display_desc = text(k, v)?,
            "availability_zone" => {
                req.availability_zone = text(k, v)?;
                if req.availability_zone.as_deref() == Some("") {
                    return Err(CinderError::invalid(k, "''", "It must not be empty."));
                }
            }
            "metadata" if v.is_null() => {}
            "metadata" => req.metadata = parse_metadata(v)?,
            "volume_type" => req.volume_type = text(k, v)?.filter(|t| !t.is_empty()),
            "multiattach" => {
                let on = match v {
                    Value::Null => false,
                    Value::Bool(b) => *b,
                    Value::String(s) => parse_bool(k, s)?,
                    other => return Err(CinderError::invalid(k, other, "It must be a boolean.")),
                };
                if on {
                    return Err(CinderError::bad_request(
                        "multiattach parameter has been removed. The default behavior is to use \
                         multiattach enabled volume types. Contact your administrator to create \
                         a multiattach enabled volume type and use it to create multiattach \
                         volumes.",
                    ));
                }
            }
            "OS-SCH-HNT:scheduler_hints" | "scheduler_hints" => no_hints(k, v)?,
            key => match SOURCES.iter().find(|(s, _)| *s == key) {
                Some(_) if v.is_null() || v.as_str() == Some("") => {}
                Some((_, what)) => {
                    return Err(CinderError::bad_request(format!(
                        "Creating a volume from {what} ('{key}') is not supported by this \
                         service: only new, empty volumes can be created."
                    )))
                }
                None => {
                    return Err(unexpected(
                        key,
                        "a volume has size, name, description, availability_zone, metadata \
                         and volume_type",
                    ))
                }
            },
        }
    }
    if !have_size {
        return Err(CinderError::bad_request(
            "Invalid input for field/attribute size. Value: None. The size of the volume, a \
             whole number of GiB (at least 1), is required.",
        ));
    }
    req.name = name.or(display_name);
    req.description = desc.or(display_desc);
    Ok(req)
}

/// Checks a `PUT /volumes/{id}` body; from 3.53 it must change something.
pub fn parse_update(body: &Value, version: Version) -> Result<UpdateRequest, CinderError> {
    let vol = wrapped(body, "volume", false)?;
    let mut req = UpdateRequest::default();
    let (mut display_name, mut display_desc) = (None, None);
    for (k, v) in vol {
        match k.as_str() {
            "name" => req.name = Some(text(k, v)?),
            "display_name" => display_name = Some(text(k, v)?),
            "description" => req.description = Some(text(k, v)?),
            "display_description" => display_desc = Some(text(k, v)?),
            "metadata" => req.metadata = Some(parse_metadata(v)?),
            key => {
                return Err(unexpected(
                    key,
                    "only name, description and metadata can be changed",
                ))
            }
        }
    }
    req.name = req.name.or(display_name);
    req.description = req.description.or(display_desc);
    if version.at_least(53) && req == UpdateRequest::default() {
        return Err(CinderError::invalid(
            "volume",
            "{}",
            "It must name at least one of name, description or metadata.",
        ));
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
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

    fn create(volume: Value) -> Result<CreateRequest, CinderError> {
        parse_create(&json!({ "volume": volume }))
    }

    fn refused(volume: Value) -> String {
        let e = create(volume).unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        e.message().to_owned()
    }

    #[test]
    fn what_openstackclient_sends_is_accepted() {
        let r = parse_create(&json!({"volume": {
            "size": 1, "name": "data1", "description": null, "snapshot_id": null,
            "source_volid": null, "imageRef": null, "volume_type": null,
            "consistencygroup_id": null, "backup_id": null, "multiattach": false,
            "availability_zone": null, "metadata": null,
            "OS-SCH-HNT:scheduler_hints": null,
        }}))
        .unwrap();
        assert_eq!(r.size, 1);
        assert_eq!(r.name.as_deref(), Some("data1"));
        assert!(r.metadata.is_empty());
        assert_eq!(r.volume_type, None);
        let r = parse_create(&json!({"volume": {"size": "2", "display_name": " x ",
            "metadata": {"k": "v"}, "volume_type": "__DEFAULT__"},
            "OS-SCH-HNT:scheduler_hints": {}}))
        .unwrap();
        assert_eq!(r.size, 2);
        assert_eq!(r.name.as_deref(), Some("x"));
        assert_eq!(r.metadata["k"], "v");
        assert_eq!(r.volume_type.as_deref(), Some("__DEFAULT__"));
    }

    #[test]
    fn bad_sizes_are_refused() {
        for bad in [
            json!(0),
            json!(-1),
            json!("abc"),
            json!(1.5),
            json!("1.5"),
            json!(""),
            json!(true),
            json!(2_147_483_648_i64),
            json!("99999999999999999999999"),
        ] {
            let m = refused(json!({ "size": bad }));
            assert!(m.contains("field/attribute size"), "{bad}: {m}");
        }
        assert!(refused(json!({"name": "x"})).contains("size"));
        assert!(refused(json!({"size": null})).contains("required"));
    }

    #[test]
    fn unsupported_and_unknown_keys_are_named() {
        let m = refused(json!({"size": 1, "snapshot_id": "5a0b4d4c-1d0b-4d4e-8e59-3b6cfa1b1f2a"}));
        assert!(
            m.contains("'snapshot_id'") && m.contains("not supported"),
            "{m}"
        );
        for key in ["source_volid", "imageRef", "backup_id", "group_id"] {
            let m = refused(json!({"size": 1, key: "x"}));
            assert!(m.contains(&format!("'{key}'")), "{m}");
        }
        assert!(refused(json!({"size": 1, "multiattach": true})).contains("multiattach"));
        assert!(refused(json!({"size": 1, "colour": "red"})).contains("'colour'"));
        assert!(refused(json!({"size": 1, "scheduler_hints": {"a": "b"}})).contains("hints"));
        let e = parse_create(&json!({"volume": {"size": 1}, "extra": 1})).unwrap_err();
        assert!(e.message().contains("'extra'"));
        assert!(parse_create(&json!({"volume": 1})).is_err());
        assert!(parse_create(&json!({}))
            .unwrap_err()
            .message()
            .contains("required"));
        assert!(parse_create(&json!([1])).is_err());
    }

    #[test]
    fn texts_and_metadata_are_checked() {
        assert!(refused(json!({"size": 1, "name": "n".repeat(256)})).contains("name"));
        assert!(create(json!({"size": 1, "name": "n".repeat(255)})).is_ok());
        assert!(refused(json!({"size": 1, "description": 5})).contains("description"));
        assert!(refused(json!({"size": 1, "availability_zone": ""})).contains("availability_zone"));
        assert!(refused(json!({"size": 1, "metadata": {"k": 1}})).contains("'k'"));
        assert!(refused(json!({"size": 1, "metadata": {"": "v"}})).contains("Key"));
        assert!(
            refused(json!({"size": 1, "metadata": {"a/b c:d.e_f-g": "v".repeat(256)}}))
                .contains("longer")
        );
        assert!(refused(json!({"size": 1, "metadata": ["a"]})).contains("metadata"));
        assert!(create(json!({"size": 1, "metadata": {"a/b c:d.e_f-g": "v"}})).is_ok());
    }

    #[test]
    fn updates_change_only_what_is_named() {
        let u = parse_update(
            &json!({"volume": {"name": "x", "description": null}}),
            Version(0),
        )
        .unwrap();
        assert_eq!(u.name, Some(Some("x".into())));
        assert_eq!(u.description, Some(None));
        assert_eq!(u.metadata, None);
        let u = parse_update(&json!({"volume": {"metadata": {"a": "b"}}}), Version(70)).unwrap();
        assert_eq!(u.metadata.unwrap()["a"], "b");
        assert!(parse_update(&json!({"volume": {}}), Version(0)).is_ok());
        assert!(parse_update(&json!({"volume": {}}), Version(53)).is_err());
        let e = parse_update(&json!({"volume": {"size": 2}}), Version(0)).unwrap_err();
        assert!(e.message().contains("'size'"));
        assert!(parse_update(&json!({"volume": {"metadata": null}}), Version(0)).is_err());
    }
}

//! The capsule view and its container view.

use std::collections::HashSet;

use capsule_types::microversion::ApiVersion;
use db::entity::capsule_container;
use db::CapsuleRecord;
use policy::Target;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::{json, Value};

use super::zun_time;
use crate::app::capsule::Page;
use crate::context::RequestContext;
use crate::error::ApiError;

/// Capsule fields of the current view, in output order.
const CAPSULE_KEYS: &[&str] = &[
    "uuid",
    "links",
    "name",
    "labels",
    "annotations",
    "status",
    "status_reason",
    "ready",
    "task_state",
    "restart_policy",
    "cpu",
    "memory",
    "addresses",
    "security_groups",
    "containers",
    "init_containers",
    "project_id",
    "user_id",
    "host",
    "created_at",
    "updated_at",
];

/// Container fields, in output order.
const CONTAINER_KEYS: &[&str] = &[
    "uuid",
    "name",
    "image",
    "command",
    "status",
    "status_reason",
    "task_state",
    "cpu",
    "memory",
    "environment",
    "workdir",
    "ports",
    "hostname",
    "labels",
    "addresses",
    "restart_policy",
    "restart_count",
    "ready",
    "exit_code",
    "status_detail",
    "interactive",
    "tty",
    "image_driver",
    "security_groups",
    "auto_remove",
    "disk",
    "auto_heal",
    "healthcheck",
    "cpu_policy",
    "registry_id",
    "entrypoint",
    "project_id",
    "user_id",
    "host",
    "image_pull_policy",
    "privileged",
    "runtime",
    "created_at",
    "updated_at",
];

/// Which fields policy hides from this caller; computed once per request, as Zun checks the
/// field rules against the caller's own project.
#[derive(Debug, Default)]
pub struct ViewMask {
    capsule: HashSet<&'static str>,
    container: HashSet<&'static str>,
}

impl ViewMask {
    /// A stable fingerprint of what this mask hides (part of list cache keys).
    pub fn fingerprint(&self) -> u64 {
        let capsule = self.capsule.iter().copied();
        let container = self.container.iter().copied();
        // Prefix container fields so the two sets cannot be confused.
        let container: Vec<String> = container.map(|k| format!("container:{k}")).collect();
        crate::list_cache::fingerprint(capsule.chain(container.iter().map(String::as_str)))
    }

    /// The mask of the caller of `ctx`.
    pub fn for_request(enforcer: &policy::Enforcer, ctx: &RequestContext) -> Self {
        let target = Target::owned_by(&ctx.creds);
        let hidden = |prefix: &str, keys: &[&'static str]| {
            keys.iter()
                .copied()
                .filter(|k| {
                    let rule = format!("{prefix}{k}");
                    !enforcer.check_might_not_exist(&rule, &target, &ctx.creds)
                })
                .collect::<HashSet<_>>()
        };
        Self {
            capsule: hidden(policy::defaults::CAPSULE_FIELD_PREFIX, CAPSULE_KEYS),
            container: hidden(policy::defaults::CONTAINER_FIELD_PREFIX, CONTAINER_KEYS),
        }
    }
}

struct View<'a> {
    rec: &'a CapsuleRecord,
    mask: &'a ViewMask,
    legacy: bool,
    base_url: &'a str,
}

fn restart_policy(name: &str, retries: i32) -> Value {
    json!({"MaximumRetryCount": retries.to_string(), "Name": name})
}

/// Writes `key: value` unless the mask hides `key`.
struct Writer<'m, M> {
    map: M,
    hidden: &'m HashSet<&'static str>,
}

impl<M: SerializeMap> Writer<'_, M> {
    fn put<V: Serialize + ?Sized>(&mut self, key: &'static str, value: &V) -> Result<(), M::Error> {
        if self.hidden.contains(key) {
            return Ok(());
        }
        self.map.serialize_entry(key, value)
    }

    /// Like `put`, under another wire name (legacy views rename fields).
    fn put_as<V: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        wire: &'static str,
        value: &V,
    ) -> Result<(), M::Error> {
        if self.hidden.contains(key) {
            return Ok(());
        }
        self.map.serialize_entry(wire, value)
    }
}

impl Serialize for View<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = &self.rec.capsule;
        let mut w = Writer {
            map: s.serialize_map(None)?,
            hidden: &self.mask.capsule,
        };
        w.put("uuid", &c.uuid)?;
        w.put(
            "links",
            &json!([
                {"href": format!("{}/v1/capsules/{}", self.base_url, c.uuid), "rel": "self"},
                {"href": format!("{}/capsules/{}", self.base_url, c.uuid), "rel": "bookmark"},
            ]),
        )?;
        if self.legacy {
            w.map.serialize_entry("volumes_info", &json!({}))?;
            w.map
                .serialize_entry("containers_uuids", &uuids(&self.rec.containers))?;
            w.map
                .serialize_entry("init_containers_uuids", &uuids(&self.rec.init_containers))?;
            w.map.serialize_entry("capsule_version", "")?;
            w.put_as("name", "meta_name", &c.name)?;
            w.put_as("labels", "meta_labels", &c.labels)?;
            w.put("restart_policy", &c.restart_policy)?;
        } else {
            w.put("name", &c.name)?;
            w.put("labels", &c.labels)?;
            w.put(
                "restart_policy",
                &restart_policy(&c.restart_policy, c.restart_max_retries),
            )?;
        }
        w.put("annotations", &c.annotations)?;
        w.put("status", &c.status)?;
        w.put("status_reason", &c.status_reason)?;
        w.put("ready", &ready(&self.rec.containers))?;
        w.put("task_state", &c.task_state)?;
        w.put("cpu", &c.cpu)?;
        w.put("memory", &c.memory.to_string())?;
        w.put("addresses", &c.addresses)?;
        w.put("security_groups", &self.rec.security_groups)?;
        let host = c.host.as_deref();
        w.put(
            "containers",
            &container_list(&self.rec.containers, host, &self.mask.container),
        )?;
        w.put(
            "init_containers",
            &container_list(&self.rec.init_containers, host, &self.mask.container),
        )?;
        w.put("project_id", &c.project_id)?;
        w.put("user_id", &c.user_id)?;
        w.put("host", &c.host)?;
        w.put("created_at", &zun_time(&c.created_at))?;
        w.put("updated_at", &c.updated_at.as_ref().map(zun_time))?;
        w.map.end()
    }
}

/// The capsule's readiness: every application container ready (`None` until its host says).
fn ready(cs: &[capsule_container::Model]) -> Option<bool> {
    cs.iter()
        .map(|c| c.ready)
        .try_fold(true, |all, r| r.map(|r| all && r))
        .filter(|_| !cs.is_empty())
}

fn uuids(cs: &[capsule_container::Model]) -> Vec<&str> {
    cs.iter().map(|c| c.uuid.as_str()).collect()
}

fn container_list<'a>(
    list: &'a [capsule_container::Model],
    host: Option<&'a str>,
    mask: &'a HashSet<&'static str>,
) -> ContainerList<'a> {
    ContainerList {
        list: list.iter().map(|x| (x, host)).collect(),
        mask,
    }
}

struct ContainerList<'a> {
    list: Vec<(&'a capsule_container::Model, Option<&'a str>)>,
    mask: &'a HashSet<&'static str>,
}

impl Serialize for ContainerList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.list.len()))?;
        for (m, host) in &self.list {
            seq.serialize_element(&ContainerView {
                m,
                host: *host,
                mask: self.mask,
            })?;
        }
        seq.end()
    }
}

struct ContainerView<'a> {
    m: &'a capsule_container::Model,
    host: Option<&'a str>,
    mask: &'a HashSet<&'static str>,
}

impl Serialize for ContainerView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let m = self.m;
        let mut w = Writer {
            map: s.serialize_map(None)?,
            hidden: self.mask,
        };
        let none: Option<&str> = None;
        w.put("uuid", &m.uuid)?;
        w.put("name", &m.name)?;
        w.put("image", &m.image)?;
        w.put("command", &m.command)?;
        w.put("status", &m.status)?;
        w.put("status_reason", &m.status_reason)?;
        w.put("task_state", &m.task_state)?;
        w.put("cpu", &m.cpu)?;
        w.put("memory", &m.memory.map(|v| v.to_string()))?;
        w.put("environment", &m.environment)?;
        w.put("workdir", &m.workdir)?;
        w.put("ports", &m.ports)?;
        w.put("hostname", &none)?;
        w.put("labels", &json!({}))?;
        w.put("addresses", &json!({}))?;
        w.put(
            "restart_policy",
            &restart_policy(&m.restart_policy, m.restart_max_retries),
        )?;
        w.put("restart_count", &m.restart_count)?;
        w.put("ready", &m.ready)?;
        w.put("exit_code", &m.exit_code)?;
        w.put("status_detail", &none)?;
        w.put("interactive", &m.interactive)?;
        w.put("tty", &m.tty)?;
        w.put("image_driver", &none)?;
        w.put("security_groups", &json!([]))?;
        w.put("auto_remove", &false)?;
        w.put("disk", &0)?;
        // A failing liveness probe kills the container; its restart policy brings it back.
        w.put("auto_heal", &m.healthcheck.is_some())?;
        w.put("healthcheck", m.healthcheck.as_ref().unwrap_or(&json!({})))?;
        w.put("cpu_policy", "shared")?;
        w.put("registry_id", &none)?;
        w.put("entrypoint", &json!([]))?;
        w.put("host", &self.host)?;
        w.put("image_pull_policy", &m.image_pull_policy)?;
        w.put("privileged", &false)?;
        w.put("runtime", &none)?;
        w.put("created_at", &zun_time(&m.created_at))?;
        w.put("updated_at", &m.updated_at.as_ref().map(zun_time))?;
        w.map.end()
    }
}

fn view<'a>(rec: &'a CapsuleRecord, ctx: &'a RequestContext, mask: &'a ViewMask) -> View<'a> {
    View {
        rec,
        mask,
        legacy: ctx.version < ApiVersion::CAPSULE_CURRENT_VIEW,
        base_url: &ctx.base_url,
    }
}

/// One capsule as a JSON body.
pub fn capsule_json(
    rec: &CapsuleRecord,
    ctx: &RequestContext,
    mask: &ViewMask,
) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(&view(rec, ctx, mask)).map_err(ApiError::internal)
}

/// A page of capsules as `{"capsules": [...], "next": ...}`.
pub fn capsule_list_json(
    page: &Page,
    ctx: &RequestContext,
    mask: &ViewMask,
) -> Result<Vec<u8>, ApiError> {
    #[derive(Serialize)]
    struct Body<'a> {
        capsules: Vec<View<'a>>,
        next: Option<String>,
    }
    let body = Body {
        capsules: page.records.iter().map(|r| view(r, ctx, mask)).collect(),
        next: page
            .next_query
            .as_ref()
            .map(|q| format!("{}/v1/capsules?{q}", ctx.base_url)),
    };
    let mut out = Vec::with_capacity(1024 + page.records.len() * 2048);
    serde_json::to_writer(&mut out, &body).map_err(ApiError::internal)?;
    Ok(out)
}

//! The template walker: request body, template, metadata, spec, volumes and the checks that span
//! several containers.

use super::container::{container, Role};
use super::errors::{index, join, quote, FieldError, Sink, TemplateErrors};
use super::limits::Limits;
use super::model::{
    default_security_groups, CapsuleTemplate, ContainerSpec, Protocol, RestartPolicy, VolumeSource,
    VolumeSpec,
};
use super::scalars::{
    array, bool_ish, check_count, check_free_text, check_text, grace_seconds, name, object,
    object_or_null, required, size_gib, string, text, type_name, unexpected, wrong_type,
    MAX_NAME_LEN,
};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Length of a volume id (a hyphenated UUID), as Zun's schema.
const VOLUME_ID_LEN: usize = 36;
/// How deeply `metadata.annotations` may nest (objects and arrays). The template travels to the
/// compute host inside an RPC envelope a few levels deep, and every JSON decoder on the way stops
/// at 128 levels; 32 leaves room and is more than any real annotation needs.
pub const MAX_ANNOTATION_DEPTH: usize = 32;

/// State shared by the checks while one template is walked.
pub(crate) struct Ctx<'l> {
    /// The bounds in force.
    pub(crate) limits: &'l Limits,
    /// Errors so far.
    pub(crate) sink: Sink,
    /// Every string under `spec.volumes[*].name`, collected before the containers are walked.
    pub(crate) declared_volumes: HashSet<String>,
    /// Container names seen so far (init and application).
    pub(crate) container_names: HashSet<String>,
    /// `(containerPort, protocol)` of the application containers so far.
    pub(crate) app_ports: HashSet<(u16, Protocol)>,
    /// `(hostPort, protocol)` of every container so far.
    pub(crate) host_ports: HashSet<(u16, Protocol)>,
    /// `ports` entries seen so far, over every container.
    pub(crate) port_count: usize,
    /// Volumes named by a valid mount of any container.
    pub(crate) mounted_volumes: HashSet<String>,
    /// Volume name → index of the first application container mounting it read-write.
    pub(crate) rw_owner: HashMap<String, usize>,
    /// `(volume, container index)` pairs already reported as a second read-write user.
    pub(crate) rw_reported: HashSet<(String, usize)>,
}

impl<'l> Ctx<'l> {
    /// A fresh walk under `limits`.
    pub(crate) fn new(limits: &'l Limits) -> Self {
        Self {
            limits,
            sink: Sink::default(),
            declared_volumes: HashSet::new(),
            container_names: HashSet::new(),
            app_ports: HashSet::new(),
            host_ports: HashSet::new(),
            port_count: 0,
            mounted_volumes: HashSet::new(),
            rw_owner: HashMap::new(),
            rw_reported: HashSet::new(),
        }
    }
}

/// See [`crate::template::parse_create_body`].
pub(crate) fn create_body(
    body: &Value,
    limits: &Limits,
) -> Result<CapsuleTemplate, TemplateErrors> {
    let Some(obj) = body.as_object() else {
        return Err(FieldError::new(
            "body",
            format!("must be a JSON object (got {})", type_name(body)),
        )
        .into());
    };
    let mut ctx = Ctx::new(limits);
    for key in obj.keys().filter(|k| *k != "template") {
        unexpected(&join("", key), &mut ctx.sink);
    }
    let parsed;
    let template = match obj.get("template") {
        None => {
            required("", "template", &mut ctx.sink);
            None
        }
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(v @ Value::Object(_)) => {
                parsed = v;
                Some(&parsed)
            }
            Ok(other) => {
                wrong_type(
                    &other,
                    "a string holding a JSON object",
                    "template",
                    &mut ctx.sink,
                );
                None
            }
            Err(e) => {
                ctx.sink.add("template", format!("is not valid JSON: {e}"));
                None
            }
        },
        Some(v @ Value::Object(_)) => Some(v),
        Some(other) => {
            wrong_type(
                other,
                "an object or a string holding JSON",
                "template",
                &mut ctx.sink,
            );
            None
        }
    };
    let out = template.map(|t| walk_template(t, &mut ctx));
    match out {
        Some(t) => ctx.sink.finish(t),
        None => Err(TemplateErrors(ctx.sink.errors)),
    }
}

/// See [`crate::template::parse_template`].
pub(crate) fn template(v: &Value, limits: &Limits) -> Result<CapsuleTemplate, TemplateErrors> {
    let mut ctx = Ctx::new(limits);
    let t = walk_template(v, &mut ctx);
    ctx.sink.finish(t)
}

/// An empty template, filled in as the walk goes.
fn empty_template() -> CapsuleTemplate {
    CapsuleTemplate {
        name: None,
        labels: BTreeMap::new(),
        annotations: None,
        availability_zone: None,
        restart_policy: RestartPolicy::Always,
        termination_grace_period_seconds: None,
        init_containers: Vec::new(),
        containers: Vec::new(),
        volumes: Vec::new(),
        security_groups: default_security_groups(),
    }
}

/// Walks the template object, keys in document order, then checks required keys.
fn walk_template(v: &Value, ctx: &mut Ctx<'_>) -> CapsuleTemplate {
    let mut t = empty_template();
    let Some(obj) = v.as_object() else {
        wrong_type(v, "an object", "template", &mut ctx.sink);
        return t;
    };
    let mut top_policy = None;
    let mut spec_policy = None;
    for (key, val) in obj {
        let p = join("", key);
        match key.as_str() {
            "kind" => one_of(val, &["capsule", "Capsule"], &p, ctx),
            "capsuleVersion" => one_of(val, &["beta", "Beta"], &p, ctx),
            "metadata" => metadata(val, &p, &mut t, ctx),
            "restartPolicy" => top_policy = restart_policy(val, &p, ctx),
            "availabilityZone" if val.is_null() => {}
            "availabilityZone" => {
                t.availability_zone = text(val, 1, MAX_NAME_LEN, &p, &mut ctx.sink);
            }
            "spec" => spec(val, &p, &mut t, &mut spec_policy, ctx),
            _ => unexpected(&p, &mut ctx.sink),
        }
    }
    for key in ["kind", "metadata", "spec"] {
        if !obj.contains_key(key) {
            required("", key, &mut ctx.sink);
        }
    }
    // Zun reads only `spec.restartPolicy` (§9 item 9); we also honour the deprecated copy.
    t.restart_policy = spec_policy.or(top_policy).unwrap_or_default();
    t
}

/// A string that must be one of `allowed`.
fn one_of(v: &Value, allowed: &[&str], path: &str, ctx: &mut Ctx<'_>) {
    let Some(s) = string(v, path, &mut ctx.sink) else {
        return;
    };
    if !allowed.contains(&s) {
        ctx.sink
            .add(path, format!("must be one of: {}", allowed.join(", ")));
    }
}

/// `restartPolicy`: `Always`, `OnFailure` or `Never`.
fn restart_policy(v: &Value, path: &str, ctx: &mut Ctx<'_>) -> Option<RestartPolicy> {
    let s = string(v, path, &mut ctx.sink)?;
    let policy = RestartPolicy::from_template_str(s);
    if policy.is_none() {
        ctx.sink
            .add(path, "must be one of: Always, OnFailure, Never");
    }
    policy
}

/// `metadata`: `name`, `labels`, `annotations`; other keys are ignored, as Zun.
fn metadata(v: &Value, path: &str, t: &mut CapsuleTemplate, ctx: &mut Ctx<'_>) {
    let Some(obj) = object(v, path, &mut ctx.sink) else {
        return;
    };
    for (key, val) in obj {
        let p = join(path, key);
        match key.as_str() {
            "name" if val.is_null() => {}
            "name" => t.name = name(val, &p, &mut ctx.sink),
            "labels" => t.labels = labels(val, &p, ctx),
            "annotations" => match val {
                Value::Null => {}
                Value::Object(_) if deeper_than(val, MAX_ANNOTATION_DEPTH) => ctx.sink.add(
                    &p,
                    format!("must not nest deeper than {MAX_ANNOTATION_DEPTH} levels"),
                ),
                Value::Object(_) => t.annotations = Some(val.clone()),
                _ => wrong_type(val, "an object or null", &p, &mut ctx.sink),
            },
            _ => {}
        }
    }
}

/// Whether a JSON value nests deeper than `limit` levels (a scalar is 0, a flat object or array
/// 1). Recurses at most `limit + 1` levels, however deep the value is.
fn deeper_than(v: &Value, limit: usize) -> bool {
    let mut children: Box<dyn Iterator<Item = &Value>> = match v {
        Value::Object(o) => Box::new(o.values()),
        Value::Array(a) => Box::new(a.iter()),
        _ => return false,
    };
    limit == 0 || children.any(|c| deeper_than(c, limit - 1))
}

/// `metadata.labels`: null or an object; keys 1..255 characters, values scalars made strings
/// the way Zun's `DictOfStrings` does (`true` → `"True"`).
fn labels(v: &Value, path: &str, ctx: &mut Ctx<'_>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(obj) = object_or_null(v, ctx.limits.max_labels, path, &mut ctx.sink) else {
        return out;
    };
    for (key, val) in obj {
        let p = join(path, key);
        let key_ok = check_text(key, 1, MAX_NAME_LEN, &p, &mut ctx.sink);
        let value = match val {
            Value::String(s) => label_value(s, ctx.limits.max_string_len, &p, &mut ctx.sink),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(true) => Some(String::from("True")),
            Value::Bool(false) => Some(String::from("False")),
            _ => {
                wrong_type(val, "a string, number or boolean", &p, &mut ctx.sink);
                None
            }
        };
        if let (true, Some(value)) = (key_ok, value) {
            out.insert(key.clone(), value);
        }
    }
    out
}

/// A label value: at most `max` bytes, no control characters.
fn label_value(s: &str, max: usize, path: &str, sink: &mut Sink) -> Option<String> {
    if !check_free_text(s, max, path, sink) {
        None
    } else if s.chars().any(char::is_control) {
        sink.add(path, "must not contain control characters");
        None
    } else {
        Some(s.to_owned())
    }
}

/// `spec`: containers, init containers, volumes, restart policy and security groups; other keys
/// are ignored, as Zun (`additionalProperties: true`).
fn spec(
    v: &Value,
    path: &str,
    t: &mut CapsuleTemplate,
    policy: &mut Option<RestartPolicy>,
    ctx: &mut Ctx<'_>,
) {
    let Some(obj) = object(v, path, &mut ctx.sink) else {
        return;
    };
    ctx.declared_volumes = declared_volume_names(obj);
    let mut volumes = Vec::new();
    for (key, val) in obj {
        let p = join(path, key);
        match key.as_str() {
            "containers" => t.containers = containers(val, &p, Role::App, ctx),
            "initContainers" if val.is_null() => {}
            "initContainers" => t.init_containers = containers(val, &p, |_| Role::Init, ctx),
            "volumes" => volumes = self::volumes(val, &p, ctx),
            "restartPolicy" => *policy = restart_policy(val, &p, ctx),
            "terminationGracePeriodSeconds" if val.is_null() => {}
            "terminationGracePeriodSeconds" => {
                t.termination_grace_period_seconds = grace_seconds(val, &p, &mut ctx.sink)
            }
            "securityGroups" if val.is_null() => {}
            "securityGroups" => t.security_groups = security_groups(val, &p, ctx),
            _ => {}
        }
    }
    if !obj.contains_key("containers") {
        required(path, "containers", &mut ctx.sink);
    }
    for (volume, vpath) in volumes {
        if !ctx.mounted_volumes.contains(&volume.name) {
            ctx.sink.add(
                &join(&vpath, "name"),
                format!("volume {} is not mounted by any container", volume.name),
            );
        }
        t.volumes.push(volume);
    }
}

/// Every string under `volumes[*].name`, so mounts can be checked before volumes are walked.
fn declared_volume_names(spec: &Map<String, Value>) -> HashSet<String> {
    spec.get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.get("name")?.as_str().map(str::to_owned))
        .collect()
}

/// `containers` / `initContainers`: a bounded array of containers.
fn containers(
    v: &Value,
    path: &str,
    role: impl Fn(usize) -> Role,
    ctx: &mut Ctx<'_>,
) -> Vec<ContainerSpec> {
    let Some(items) = array(v, path, &mut ctx.sink) else {
        return Vec::new();
    };
    let init = matches!(role(0), Role::Init);
    let max = if init {
        ctx.limits.max_init_containers
    } else {
        ctx.limits.max_containers
    };
    if items.is_empty() && !init {
        ctx.sink.add(path, "must have at least one container");
    }
    if items.len() > max {
        ctx.sink.add(
            path,
            format!("must have at most {max} containers (got {})", items.len()),
        );
    }
    items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| container(item, &index(path, i), role(i), ctx))
        .collect()
}

/// `volumes`: null or an array of `{name, cinder}`; returns each valid volume with its path.
fn volumes(v: &Value, path: &str, ctx: &mut Ctx<'_>) -> Vec<(VolumeSpec, String)> {
    if v.is_null() {
        return Vec::new();
    }
    let Some(items) = array(v, path, &mut ctx.sink) else {
        return Vec::new();
    };
    if items.len() > ctx.limits.max_volumes {
        ctx.sink.add(
            path,
            format!(
                "must have at most {} volumes (got {})",
                ctx.limits.max_volumes,
                items.len()
            ),
        );
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = index(path, i);
        let before = ctx.sink.count();
        let Some(obj) = object(item, &p, &mut ctx.sink) else {
            continue;
        };
        let mut volume_name = None;
        let mut source = None;
        // Other keys of a volume item are ignored, as Zun (`additionalProperties: true`).
        for (key, val) in obj {
            let kp = join(&p, key);
            match key.as_str() {
                "name" => {
                    volume_name = name(val, &kp, &mut ctx.sink);
                    if let Some(n) = &volume_name {
                        if !seen.insert(n.clone()) {
                            ctx.sink
                                .add(&kp, format!("duplicate volume name {}", quote(n)));
                        }
                    }
                }
                "cinder" => source = cinder(val, &kp, ctx),
                _ => {}
            }
        }
        for key in ["name", "cinder"] {
            if !obj.contains_key(key) {
                required(&p, key, &mut ctx.sink);
            }
        }
        if let (Some(name), Some(source), true) = (volume_name, source, ctx.sink.count() == before)
        {
            out.push((VolumeSpec { name, source }, p));
        }
    }
    out
}

/// `cinder`: exactly one of `volumeID` (an existing volume) or `size` (a new one, with
/// `autoRemove`).
fn cinder(v: &Value, path: &str, ctx: &mut Ctx<'_>) -> Option<VolumeSource> {
    let before = ctx.sink.count();
    let obj = object(v, path, &mut ctx.sink)?;
    let mut volume_id = None;
    let mut size = None;
    let mut auto_remove = false;
    for (key, val) in obj {
        let p = join(path, key);
        match key.as_str() {
            "volumeID" => volume_id = parse_volume_id(val, &p, ctx),
            "size" => size = size_gib(val, ctx.limits, &p, &mut ctx.sink),
            "autoRemove" => auto_remove = bool_ish(val, &p, &mut ctx.sink).unwrap_or(false),
            _ => unexpected(&p, &mut ctx.sink),
        }
    }
    match (obj.contains_key("volumeID"), obj.contains_key("size")) {
        (true, true) => ctx
            .sink
            .add(path, "must give either size or volumeID, not both"),
        (false, false) => ctx.sink.add(path, "must give size or volumeID"),
        _ => {}
    }
    if ctx.sink.count() != before {
        return None;
    }
    match (volume_id, size) {
        // `autoRemove` is accepted and ignored with an existing volume, as Zun.
        (Some(volume_id), None) => Some(VolumeSource::Existing { volume_id }),
        (None, Some(size_gib)) => Some(VolumeSource::New {
            size_gib,
            auto_remove,
        }),
        _ => None,
    }
}

/// `volumeID`: a hyphenated UUID (36 characters).
fn parse_volume_id(v: &Value, path: &str, ctx: &mut Ctx<'_>) -> Option<uuid::Uuid> {
    let s = string(v, path, &mut ctx.sink)?;
    let parsed = (s.len() == VOLUME_ID_LEN)
        .then(|| uuid::Uuid::parse_str(s).ok())
        .flatten();
    if parsed.is_none() {
        ctx.sink.add(path, "must be a volume UUID (36 characters)");
    }
    parsed
}

/// `securityGroups`: a non-empty array of unique names or ids.
fn security_groups(v: &Value, path: &str, ctx: &mut Ctx<'_>) -> Vec<String> {
    let Some(items) = array(v, path, &mut ctx.sink) else {
        return default_security_groups();
    };
    let max = ctx.limits.max_security_groups;
    if items.is_empty() {
        ctx.sink.add(path, "must name at least one security group");
    }
    check_count(items.len(), max, path, &mut ctx.sink);
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = index(path, i);
        let Some(group) = text(item, 1, MAX_NAME_LEN, &p, &mut ctx.sink) else {
            continue;
        };
        if seen.insert(group.clone()) {
            out.push(group);
        } else {
            ctx.sink
                .add(&p, format!("duplicate security group {}", quote(&group)));
        }
    }
    out
}

//! Validation of one container (init or application) and of its ports and volume mounts.

use super::errors::{index, join, quote};
use super::image_ref::ImageReference;
use super::model::{ContainerSpec, ImagePullPolicy, PortSpec, Protocol, VolumeMount};
use super::probe::{probe, Kind};
use super::scalars::{
    absolute_path, array, bool_ish, check_count, check_free_text, cpu, memory, mount_path, name,
    object, object_or_null, port, required, string, unexpected,
};
use super::security::security_context;
use super::validate::Ctx;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};

/// Which list a container comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// `spec.initContainers`: runs alone, before the application containers.
    Init,
    /// `spec.containers[i]`: runs alongside the other application containers.
    App(usize),
}

/// Shortest and longest `image` (Zun's schema).
const IMAGE_LEN: (usize, usize) = (2, 255);

/// Validates the container at `path`; `None` when it had any error.
pub(crate) fn container(
    v: &Value,
    path: &str,
    role: Role,
    ctx: &mut Ctx<'_>,
) -> Option<ContainerSpec> {
    let before = ctx.sink.count();
    let obj = object(v, path, &mut ctx.sink)?;
    let mut c = ContainerSpec::new(String::new());
    let mut ports_seen = HashSet::new();
    let mut mount_paths = HashSet::new();
    for (key, val) in obj {
        let p = join(path, key);
        match key.as_str() {
            "name" => c.name = container_name(val, &p, ctx),
            "image" => c.image = image(val, &p, ctx).unwrap_or_default(),
            "command" => c.command = string_list(val, &p, ctx),
            "args" => c.args = string_list(val, &p, ctx),
            "resources" => resources(val, &p, &mut c, ctx),
            "ports" => c.ports = ports(val, &p, role, &mut ports_seen, ctx),
            "volumeMounts" => c.volume_mounts = mounts(val, &p, role, &mut mount_paths, ctx),
            "env" => c.env = env(val, &p, ctx),
            "workDir" => c.work_dir = work_dir(val, &p, ctx),
            "imagePullPolicy" => c.image_pull_policy = pull_policy(val, &p, ctx),
            "stdin" => c.stdin = bool_ish(val, &p, &mut ctx.sink).unwrap_or(false),
            "tty" => c.tty = bool_ish(val, &p, &mut ctx.sink).unwrap_or(false),
            "livenessProbe" | "readinessProbe" | "startupProbe" if role == Role::Init => {
                ctx.sink.add(&p, "is not allowed on an init container");
            }
            "livenessProbe" => c.liveness_probe = probe(val, &p, Kind::Liveness, ctx),
            "readinessProbe" => c.readiness_probe = probe(val, &p, Kind::Readiness, ctx),
            "startupProbe" => c.startup_probe = probe(val, &p, Kind::Startup, ctx),
            "securityContext" => {
                c.security_context = security_context(val, &p, &mut ctx.sink);
            }
            _ => unexpected(&p, &mut ctx.sink),
        }
    }
    if !obj.contains_key("image") {
        required(path, "image", &mut ctx.sink);
    }
    let items = c.command.len() + c.args.len();
    if items > ctx.limits.max_command_items {
        ctx.sink.add(
            path,
            format!(
                "command and args must have at most {} items together (got {items})",
                ctx.limits.max_command_items
            ),
        );
    }
    (ctx.sink.count() == before).then_some(c)
}

/// `name`: null, or a name unique among all containers of the capsule.
fn container_name(v: &Value, path: &str, ctx: &mut Ctx<'_>) -> Option<String> {
    if v.is_null() {
        return None;
    }
    let n = name(v, path, &mut ctx.sink)?;
    if !ctx.container_names.insert(n.clone()) {
        ctx.sink
            .add(path, format!("duplicate container name {}", quote(&n)));
    }
    Some(n)
}

/// `image`: 2..255 characters and a valid image reference.
fn image(v: &Value, path: &str, ctx: &mut Ctx<'_>) -> Option<String> {
    let s = string(v, path, &mut ctx.sink)?;
    let len = s.chars().count();
    if len < IMAGE_LEN.0 || len > IMAGE_LEN.1 {
        ctx.sink.add(
            path,
            format!(
                "must be {} to {} characters long (got {len})",
                IMAGE_LEN.0, IMAGE_LEN.1
            ),
        );
        return None;
    }
    match ImageReference::parse(s) {
        Ok(_) => Some(s.to_owned()),
        Err(e) => {
            ctx.sink.add(path, format!("invalid image reference: {e}"));
            None
        }
    }
}

/// `command` / `args`: an array of strings.
pub(crate) fn string_list(v: &Value, path: &str, ctx: &mut Ctx<'_>) -> Vec<String> {
    let Some(items) = array(v, path, &mut ctx.sink) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(items.len().min(ctx.limits.max_command_items));
    for (i, item) in items.iter().enumerate() {
        let p = index(path, i);
        if let Some(s) = string(item, &p, &mut ctx.sink) {
            if check_free_text(s, ctx.limits.max_string_len, &p, &mut ctx.sink) {
                out.push(s.to_owned());
            }
        }
    }
    out
}

/// `resources`: `{requests: {cpu, memory}}` and nothing else.
fn resources(v: &Value, path: &str, c: &mut ContainerSpec, ctx: &mut Ctx<'_>) {
    let Some(obj) = object(v, path, &mut ctx.sink) else {
        return;
    };
    for (key, val) in obj {
        let p = join(path, key);
        if key != "requests" {
            unexpected(&p, &mut ctx.sink);
            continue;
        }
        let Some(requests) = object(val, &p, &mut ctx.sink) else {
            continue;
        };
        for (key, val) in requests {
            let rp = join(&p, key);
            match key.as_str() {
                "cpu" if val.is_null() => c.cpu = None,
                "cpu" => c.cpu = cpu(val, ctx.limits, &rp, &mut ctx.sink),
                "memory" if val.is_null() => c.memory_mib = None,
                "memory" => c.memory_mib = memory(val, ctx.limits, &rp, &mut ctx.sink),
                _ => unexpected(&rp, &mut ctx.sink),
            }
        }
    }
}

/// `ports`: an array of `{name, containerPort, hostPort, protocol}`.
///
/// `(containerPort, protocol)` must be unique in the container and, for application
/// containers, across all of them (they share one network namespace); `(hostPort, protocol)`
/// must be unique across the capsule.
fn ports(
    v: &Value,
    path: &str,
    role: Role,
    seen: &mut HashSet<(u16, Protocol)>,
    ctx: &mut Ctx<'_>,
) -> Vec<PortSpec> {
    let Some(items) = array(v, path, &mut ctx.sink) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = index(path, i);
        ctx.port_count += 1;
        if ctx.port_count == ctx.limits.max_ports + 1 {
            ctx.sink.add(
                &p,
                format!(
                    "too many ports: a capsule may have at most {}",
                    ctx.limits.max_ports
                ),
            );
        }
        let Some(spec) = port_item(item, &p, ctx) else {
            continue;
        };
        let key = (spec.container_port, spec.protocol);
        let shared_clash = role != Role::Init && !ctx.app_ports.insert(key);
        if !seen.insert(key) || shared_clash {
            ctx.sink.add(
                &join(&p, "containerPort"),
                format!(
                    "duplicate port {}/{}: the containers of a capsule share one network namespace",
                    key.0,
                    key.1.as_str()
                ),
            );
        }
        if let Some(host) = spec.host_port {
            if !ctx.host_ports.insert((host, spec.protocol)) {
                ctx.sink.add(
                    &join(&p, "hostPort"),
                    format!("duplicate host port {host}/{}", spec.protocol.as_str()),
                );
            }
        }
        out.push(spec);
    }
    out
}

/// One `ports` entry; `None` when it had any error.
fn port_item(v: &Value, path: &str, ctx: &mut Ctx<'_>) -> Option<PortSpec> {
    let before = ctx.sink.count();
    let obj = object(v, path, &mut ctx.sink)?;
    let mut spec = PortSpec {
        name: None,
        container_port: 0,
        host_port: None,
        protocol: Protocol::Tcp,
    };
    for (key, val) in obj {
        let p = join(path, key);
        match key.as_str() {
            "name" if val.is_null() => {}
            "name" => spec.name = name(val, &p, &mut ctx.sink),
            "containerPort" => spec.container_port = port(val, &p, &mut ctx.sink).unwrap_or(0),
            "hostPort" => spec.host_port = port(val, &p, &mut ctx.sink),
            "protocol" => spec.protocol = protocol(val, &p, ctx).unwrap_or_default(),
            _ => unexpected(&p, &mut ctx.sink),
        }
    }
    if !obj.contains_key("containerPort") {
        required(path, "containerPort", &mut ctx.sink);
    }
    (ctx.sink.count() == before).then_some(spec)
}

/// `protocol`: `TCP` or `UDP`, upper or lower case.
fn protocol(v: &Value, path: &str, ctx: &mut Ctx<'_>) -> Option<Protocol> {
    match string(v, path, &mut ctx.sink)? {
        "TCP" | "tcp" => Some(Protocol::Tcp),
        "UDP" | "udp" => Some(Protocol::Udp),
        _ => {
            ctx.sink.add(path, "must be TCP or UDP");
            None
        }
    }
}

/// `volumeMounts`: an array of `{name, mountPath, readOnly}`.
fn mounts(
    v: &Value,
    path: &str,
    role: Role,
    paths_seen: &mut HashSet<String>,
    ctx: &mut Ctx<'_>,
) -> Vec<VolumeMount> {
    let Some(items) = array(v, path, &mut ctx.sink) else {
        return Vec::new();
    };
    check_count(
        items.len(),
        ctx.limits.max_volume_mounts,
        path,
        &mut ctx.sink,
    );
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = index(path, i);
        let Some(mount) = mount_item(item, &p, paths_seen, ctx) else {
            continue;
        };
        if let (Role::App(me), false) = (role, mount.read_only) {
            let owner = *ctx.rw_owner.entry(mount.name.clone()).or_insert(me);
            if owner != me && ctx.rw_reported.insert((mount.name.clone(), me)) {
                ctx.sink.add(
                    &p,
                    format!(
                        "volume {} is mounted read-write by more than one container",
                        mount.name
                    ),
                );
            }
        }
        out.push(mount);
    }
    out
}

/// One `volumeMounts` entry; `None` when it had any error.
fn mount_item(
    v: &Value,
    path: &str,
    paths_seen: &mut HashSet<String>,
    ctx: &mut Ctx<'_>,
) -> Option<VolumeMount> {
    let before = ctx.sink.count();
    let obj = object(v, path, &mut ctx.sink)?;
    let mut mount = VolumeMount {
        name: String::new(),
        mount_path: String::new(),
        read_only: false,
    };
    for (key, val) in obj {
        let p = join(path, key);
        match key.as_str() {
            "name" => mount.name = mount_volume_name(val, &p, ctx).unwrap_or_default(),
            "mountPath" => {
                let Some(s) = string(val, &p, &mut ctx.sink) else {
                    continue;
                };
                match mount_path(s, ctx.limits) {
                    Ok(normal) if paths_seen.insert(normal.clone()) => mount.mount_path = normal,
                    Ok(normal) => ctx.sink.add(
                        &p,
                        format!("duplicate mount path {} in this container", quote(&normal)),
                    ),
                    Err(msg) => ctx.sink.add(&p, msg),
                }
            }
            "readOnly" => mount.read_only = bool_ish(val, &p, &mut ctx.sink).unwrap_or(false),
            _ => unexpected(&p, &mut ctx.sink),
        }
    }
    for key in ["name", "mountPath"] {
        if !obj.contains_key(key) {
            required(path, key, &mut ctx.sink);
        }
    }
    (ctx.sink.count() == before).then_some(mount)
}

/// A mount's `name`: a volume name declared in `spec.volumes`.
fn mount_volume_name(v: &Value, path: &str, ctx: &mut Ctx<'_>) -> Option<String> {
    let n = name(v, path, &mut ctx.sink)?;
    if ctx.declared_volumes.contains(&n) {
        // Counted as mounted even if the rest of the mount is wrong, so a bad mountPath does
        // not also report the volume as unused.
        ctx.mounted_volumes.insert(n.clone());
        Some(n)
    } else {
        ctx.sink.add(
            path,
            format!("no volume named {} in spec.volumes", quote(&n)),
        );
        None
    }
}

/// `env`: null or an object of string values; keys non-empty, without `=` or NUL.
fn env(v: &Value, path: &str, ctx: &mut Ctx<'_>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(obj) = object_or_null(v, ctx.limits.max_env_vars, path, &mut ctx.sink) else {
        return out;
    };
    let max = ctx.limits.max_string_len;
    for (key, val) in obj {
        let p = join(path, key);
        let key_ok = if key.is_empty() {
            ctx.sink
                .add(&p, "environment variable names must not be empty");
            false
        } else if key.contains('=') {
            ctx.sink
                .add(&p, "environment variable names must not contain '='");
            false
        } else {
            check_free_text(key, max, &p, &mut ctx.sink)
        };
        let Some(value) = string(val, &p, &mut ctx.sink) else {
            continue;
        };
        if check_free_text(value, max, &p, &mut ctx.sink) && key_ok {
            out.insert(key.clone(), value.to_owned());
        }
    }
    out
}

/// `workDir`: null or an absolute path.
fn work_dir(v: &Value, path: &str, ctx: &mut Ctx<'_>) -> Option<String> {
    if v.is_null() {
        return None;
    }
    let s = string(v, path, &mut ctx.sink)?;
    absolute_path(s, ctx.limits, path, &mut ctx.sink).then(|| s.to_owned())
}

/// `imagePullPolicy`: null (unset) or `always` / `ifnotpresent` / `never` in any case.
fn pull_policy(v: &Value, path: &str, ctx: &mut Ctx<'_>) -> Option<ImagePullPolicy> {
    if v.is_null() {
        return None;
    }
    let s = string(v, path, &mut ctx.sink)?;
    let policy = ImagePullPolicy::parse(s);
    if policy.is_none() {
        ctx.sink
            .add(path, "must be one of Always, IfNotPresent, Never");
    }
    policy
}

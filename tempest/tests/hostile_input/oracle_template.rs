//! The capsule template's contract (`POST /v1/capsules`): Zun's schema as this service
//! documents it (`docs/zun-compatibility.md`, the README's "Templates", the field docs of
//! `capsule-types`): unknown keys refused in the body, the template, containers, ports,
//! mounts, resources and `cinder`, ignored in `metadata`, `spec` and volume items as Zun does;
//! names by Zun's pattern; ports 1..65535; cpu, memory and counts within the `[limits]`
//! defaults; mount paths absolute, without `..`, not `/`, `/proc`, `/sys` or `/dev`.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::oracle::{
    array, digits, has_control, integer, lenient_object, object, shape, string, unexpected, wrong,
    zun_name, Judged, Shape,
};
use crate::strategies::Deeps;

/// `[limits]` defaults (devstack sets none): CPUs, MiB, GiB, and the counts of the template.
const CPU: (f64, f64) = (0.1, 16.0);
const MEMORY: (i128, i128) = (4, 8192);
const VOLUME_GIB: (f64, f64) = (1.0, 1024.0);
const MAX_CONTAINERS: usize = 16;
const MAX_VOLUMES: usize = 16;
const MAX_PORTS: usize = 64;
const MAX_LABELS: usize = 256;
const MAX_ENV: usize = 1024;
const MAX_COMMAND_ITEMS: usize = 1024;
const MAX_MOUNTS: usize = 32;
const MAX_GROUPS: usize = 16;
/// Longest free text (command items, env keys and values, label values) in bytes.
const MAX_TEXT: usize = 32 * 1024;
/// Longest path (`mountPath`, `workDir`) in bytes.
const MAX_PATH: usize = 4096;
/// Deepest `metadata.annotations` (`types::template::MAX_ANNOTATION_DEPTH`).
const ANNOTATION_DEPTH: usize = 32;

/// What the walk has seen so far, for the checks that span containers.
struct Walk<'d> {
    d: &'d Deeps,
    names: HashSet<String>,
    app_ports: HashSet<(u16, bool)>,
    host_ports: HashSet<(u16, bool)>,
    ports: usize,
    declared: HashSet<String>,
    mounted: HashSet<String>,
    rw_owner: HashMap<String, usize>,
}

/// Judges a `POST /v1/capsules` body; `as_string`: its template goes as a string holding the
/// JSON (judged as what the string will hold).
pub(crate) fn capsule_create(body: &Value, d: &Deeps, as_string: bool) -> Judged {
    let top = object(body, d, "body")?;
    if let Some(k) = top.keys().find(|k| *k != "template") {
        return Err(unexpected("body", k));
    }
    let t = top.get("template").ok_or("body.template: missing")?;
    match shape(t, d) {
        Shape::Json(Value::String(s)) if !as_string => match serde_json::from_str::<Value>(s) {
            Ok(v) => template(&v, &Deeps::default(), 1),
            Err(_) => Err("template: a string that holds no JSON".into()),
        },
        // The string of an `as_string` template nests from its own top.
        _ => template(t, d, if as_string { 1 } else { 2 }),
    }
}

/// The template object, `nest` levels down the JSON text that holds it.
fn template(v: &Value, d: &Deeps, nest: usize) -> Judged {
    let o = object(v, d, "template")?;
    for k in ["kind", "metadata", "spec"] {
        if !o.contains_key(k) {
            return Err(format!("template.{k}: missing"));
        }
    }
    let mut w = Walk {
        d,
        names: HashSet::new(),
        app_ports: HashSet::new(),
        host_ports: HashSet::new(),
        ports: 0,
        declared: HashSet::new(),
        mounted: HashSet::new(),
        rw_owner: HashMap::new(),
    };
    for (k, v) in o {
        let p = format!("template.{k}");
        match k.as_str() {
            "kind" => w.one_of(v, &p, &["capsule", "Capsule"])?,
            "capsuleVersion" => w.one_of(v, &p, &["beta", "Beta"])?,
            "restartPolicy" => w.one_of(v, &p, &["Always", "OnFailure", "Never"])?,
            "availabilityZone" if v.is_null() => {}
            "availabilityZone" => w.text(v, &p, 255)?,
            "metadata" => w.metadata(v, nest + 1)?,
            "spec" => w.spec(v)?,
            _ => return Err(unexpected("template", k)),
        }
    }
    Ok(())
}

impl Walk<'_> {
    fn one_of(&self, v: &Value, p: &str, allowed: &[&str]) -> Judged {
        let s = string(v, self.d, p)?;
        if allowed.contains(&s) {
            Ok(())
        } else {
            Err(format!("{p}: not one of {allowed:?}"))
        }
    }

    /// 1..=`max` characters, no control characters.
    fn text(&self, v: &Value, p: &str, max: usize) -> Judged {
        let s = string(v, self.d, p)?;
        let n = s.chars().count();
        if n == 0 || n > max || has_control(s) {
            Err(format!(
                "{p}: not 1..={max} characters without control characters"
            ))
        } else {
            Ok(())
        }
    }

    /// Zun's name, or null when `nullable`.
    fn name(&self, v: &Value, p: &str, nullable: bool) -> Result<Option<String>, String> {
        if nullable && v.is_null() {
            return Ok(None);
        }
        let s = string(v, self.d, p)?;
        if zun_name(s) {
            Ok(Some(s.to_owned()))
        } else {
            Err(format!("{p}: not a name (Zun's pattern)"))
        }
    }

    fn bool_ish(&self, v: &Value, p: &str) -> Judged {
        match v {
            Value::Bool(_) => Ok(()),
            Value::String(s) if ["true", "True", "false", "False"].contains(&s.as_str()) => Ok(()),
            _ => Err(format!("{p}: not true or false")),
        }
    }

    fn metadata(&self, v: &Value, nest: usize) -> Judged {
        let Some(m) = lenient_object(v, self.d, "template.metadata", nest)? else {
            return Ok(());
        };
        for (k, v) in m {
            let p = format!("template.metadata.{k}");
            match k.as_str() {
                "name" => self.name(v, &p, true).map(drop)?,
                "labels" => self.labels(v, &p)?,
                "annotations" => match shape(v, self.d) {
                    Shape::Json(Value::Null) => {}
                    Shape::Json(Value::Object(_)) | Shape::Deep { object: true, .. }
                        if depth(v, self.d) > ANNOTATION_DEPTH =>
                    {
                        return Err(format!("{p}: nests deeper than {ANNOTATION_DEPTH}"))
                    }
                    Shape::Json(Value::Object(_)) | Shape::Deep { object: true, .. } => {}
                    _ => return Err(wrong(v, self.d, &p, "an object or null")),
                },
                _ => {}
            }
        }
        Ok(())
    }

    fn labels(&self, v: &Value, p: &str) -> Judged {
        if v.is_null() {
            return Ok(());
        }
        let m = object(v, self.d, p)?;
        if m.len() > MAX_LABELS {
            return Err(format!("{p}: more than {MAX_LABELS} labels"));
        }
        for (k, v) in m {
            let n = k.chars().count();
            if n == 0 || n > 255 || has_control(k) {
                return Err(format!(
                    "{p}: a key not 1..=255 characters without control ones"
                ));
            }
            match shape(v, self.d) {
                Shape::Json(Value::String(s)) if s.len() > MAX_TEXT || has_control(s) => {
                    return Err(format!("{p}.{k}: too long or with control characters"))
                }
                Shape::Json(Value::String(_) | Value::Number(_) | Value::Bool(_)) => {}
                _ => return Err(wrong(v, self.d, &format!("{p}.{k}"), "a scalar")),
            }
        }
        Ok(())
    }

    fn spec(&mut self, v: &Value) -> Judged {
        let Shape::Json(Value::Object(o)) = shape(v, self.d) else {
            return Err(wrong(
                v,
                self.d,
                "template.spec",
                "an object with containers",
            ));
        };
        let containers = o
            .get("containers")
            .ok_or("template.spec.containers: missing")?;
        // Every string under volumes[*].name counts as declared, before mounts are checked.
        self.declared = o
            .get("volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| Some(v.get("name")?.as_str()?.to_owned()))
            .collect();
        if let Some(init) = o.get("initContainers").filter(|v| !v.is_null()) {
            self.containers(init, "template.spec.initContainers", false)?;
        }
        self.containers(containers, "template.spec.containers", true)?;
        for (k, v) in o {
            let p = format!("template.spec.{k}");
            match k.as_str() {
                "restartPolicy" => self.one_of(v, &p, &["Always", "OnFailure", "Never"])?,
                "securityGroups" if v.is_null() => {}
                "securityGroups" => self.groups(v, &p)?,
                "volumes" if v.is_null() => {}
                "volumes" => self.volumes(v, &p)?,
                _ => {}
            }
        }
        Ok(())
    }

    fn groups(&self, v: &Value, p: &str) -> Judged {
        let a = array(v, self.d, p)?;
        if a.is_empty() || a.len() > MAX_GROUPS {
            return Err(format!("{p}: not 1..={MAX_GROUPS} groups"));
        }
        let mut seen = HashSet::new();
        for g in a {
            self.text(g, p, 255)?;
            if !seen.insert(g.as_str()) {
                return Err(format!("{p}: a group named twice"));
            }
        }
        Ok(())
    }

    fn volumes(&self, v: &Value, p: &str) -> Judged {
        let a = array(v, self.d, p)?;
        if a.len() > MAX_VOLUMES {
            return Err(format!("{p}: more than {MAX_VOLUMES} volumes"));
        }
        let mut seen = HashSet::new();
        for (i, item) in a.iter().enumerate() {
            let p = format!("{p}.{i}");
            let Shape::Json(Value::Object(o)) = shape(item, self.d) else {
                return Err(wrong(item, self.d, &p, "a volume with name and cinder"));
            };
            let name = o.get("name").ok_or(format!("{p}.name: missing"))?;
            let name = self
                .name(name, &format!("{p}.name"), false)?
                .unwrap_or_default();
            if !seen.insert(name.clone()) {
                return Err(format!("{p}.name: a volume named twice"));
            }
            self.cinder(o.get("cinder").ok_or(format!("{p}.cinder: missing"))?, &p)?;
            if !self.mounted.contains(&name) {
                return Err(format!("{p}: volume {name} mounted by no container"));
            }
        }
        Ok(())
    }

    fn cinder(&self, v: &Value, p: &str) -> Judged {
        let p = format!("{p}.cinder");
        let o = object(v, self.d, &p)?;
        match (o.get("size"), o.get("volumeID")) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(format!("{p}: not exactly one of size and volumeID"))
            }
            _ => {}
        }
        for (k, v) in o {
            let kp = format!("{p}.{k}");
            match k.as_str() {
                "size" => match (integer(v), v) {
                    (Some(n), _) if !(1..=1024).contains(&n) => {
                        return Err(format!("{kp}: not 1..=1024 GiB"))
                    }
                    (Some(_), _) | (None, Value::String(_)) => {}
                    (None, Value::Number(n)) => {
                        let f = n.as_f64().unwrap_or(f64::NAN);
                        if f.fract() != 0.0 || !(VOLUME_GIB.0..=VOLUME_GIB.1).contains(&f) {
                            return Err(format!("{kp}: not a whole number 1..=1024 of GiB"));
                        }
                    }
                    _ => return Err(wrong(v, self.d, &kp, "a number of GiB")),
                },
                "volumeID" => {
                    let s = string(v, self.d, &kp)?;
                    if s.len() != 36 || uuid::Uuid::parse_str(s).is_err() {
                        return Err(format!("{kp}: not a 36-character UUID"));
                    }
                }
                "autoRemove" => self.bool_ish(v, &kp)?,
                _ => return Err(unexpected(&p, k)),
            }
        }
        Ok(())
    }

    fn containers(&mut self, v: &Value, p: &str, app: bool) -> Judged {
        let a = array(v, self.d, p)?;
        if (app && a.is_empty()) || a.len() > MAX_CONTAINERS {
            return Err(format!("{p}: not 1..={MAX_CONTAINERS} containers"));
        }
        for (i, c) in a.iter().enumerate() {
            self.container(c, &format!("{p}.{i}"), app.then_some(i))?;
        }
        Ok(())
    }

    /// One container; `app`: its index among the application containers.
    fn container(&mut self, v: &Value, p: &str, app: Option<usize>) -> Judged {
        let o = object(v, self.d, p)?;
        if !o.contains_key("image") {
            return Err(format!("{p}.image: missing"));
        }
        let mut items = 0;
        let mut mount_paths = HashSet::new();
        let mut own_ports = HashSet::new();
        for (k, v) in o {
            let kp = format!("{p}.{k}");
            match k.as_str() {
                "name" => {
                    if let Some(n) = self.name(v, &kp, true)? {
                        if !self.names.insert(n) {
                            return Err(format!("{kp}: a container name used twice"));
                        }
                    }
                }
                "image" => image(string(v, self.d, &kp)?, &kp)?,
                "command" | "args" => {
                    let a = array(v, self.d, &kp)?;
                    items += a.len();
                    for s in a {
                        let s = string(s, self.d, &kp)?;
                        if s.len() > MAX_TEXT || s.contains('\0') {
                            return Err(format!("{kp}: an item too long or with NUL"));
                        }
                    }
                }
                "resources" => self.resources(v, &kp)?,
                "ports" => {
                    for (i, item) in array(v, self.d, &kp)?.iter().enumerate() {
                        self.port_item(item, &format!("{kp}.{i}"), app, &mut own_ports)?;
                    }
                }
                "volumeMounts" => {
                    let a = array(v, self.d, &kp)?;
                    if a.len() > MAX_MOUNTS {
                        return Err(format!("{kp}: more than {MAX_MOUNTS} mounts"));
                    }
                    for (i, m) in a.iter().enumerate() {
                        self.mount(m, &format!("{kp}.{i}"), app, &mut mount_paths)?;
                    }
                }
                "env" => self.env(v, &kp)?,
                "workDir" if v.is_null() => {}
                "workDir" => {
                    let s = string(v, self.d, &kp)?;
                    if !s.starts_with('/') || s.len() > MAX_PATH || has_control(s) {
                        return Err(format!("{kp}: not an absolute path"));
                    }
                }
                "imagePullPolicy" if v.is_null() => {}
                "imagePullPolicy" => {
                    let s = string(v, self.d, &kp)?.to_ascii_lowercase();
                    if !["always", "ifnotpresent", "never"].contains(&s.as_str()) {
                        return Err(format!("{kp}: not Always, IfNotPresent or Never"));
                    }
                }
                "stdin" | "tty" => self.bool_ish(v, &kp)?,
                _ => return Err(unexpected(p, k)),
            }
        }
        if items > MAX_COMMAND_ITEMS {
            return Err(format!(
                "{p}: more than {MAX_COMMAND_ITEMS} command and args items"
            ));
        }
        Ok(())
    }

    fn resources(&self, v: &Value, p: &str) -> Judged {
        for (k, v) in object(v, self.d, p)? {
            if k != "requests" {
                return Err(unexpected(p, k));
            }
            let rp = format!("{p}.requests");
            for (k, v) in object(v, self.d, &rp)? {
                let kp = format!("{rp}.{k}");
                match (k.as_str(), v) {
                    (_, Value::Null) if k == "cpu" || k == "memory" => {}
                    ("cpu", _) => cpu(v, self.d, &kp)?,
                    ("memory", _) => memory(v, self.d, &kp)?,
                    _ => return Err(unexpected(&rp, k)),
                }
            }
        }
        Ok(())
    }

    fn port_item(
        &mut self,
        v: &Value,
        p: &str,
        app: Option<usize>,
        own: &mut HashSet<(u16, bool)>,
    ) -> Judged {
        self.ports += 1;
        if self.ports > MAX_PORTS {
            return Err(format!("{p}: more than {MAX_PORTS} ports in the capsule"));
        }
        let o = object(v, self.d, p)?;
        let mut udp = false;
        let (mut container, mut host) = (None, None);
        for (k, v) in o {
            let kp = format!("{p}.{k}");
            match k.as_str() {
                "name" => self.name(v, &kp, true).map(drop)?,
                "containerPort" => container = port(v, self.d, &kp)?,
                "hostPort" => host = port(v, self.d, &kp)?,
                "protocol" => match string(v, self.d, &kp)? {
                    "TCP" | "tcp" => {}
                    "UDP" | "udp" => udp = true,
                    _ => return Err(format!("{kp}: not TCP or UDP")),
                },
                _ => return Err(unexpected(p, k)),
            }
        }
        if !o.contains_key("containerPort") {
            return Err(format!("{p}.containerPort: missing"));
        }
        if let Some(c) = container {
            let shared = app.is_some() && !self.app_ports.insert((c, udp));
            if !own.insert((c, udp)) || shared {
                return Err(format!("{p}: container port {c} used twice"));
            }
        }
        if let Some(h) = host {
            if !self.host_ports.insert((h, udp)) {
                return Err(format!("{p}: host port {h} used twice"));
            }
        }
        Ok(())
    }

    fn mount(
        &mut self,
        v: &Value,
        p: &str,
        app: Option<usize>,
        paths: &mut HashSet<String>,
    ) -> Judged {
        let o = object(v, self.d, p)?;
        for k in ["name", "mountPath"] {
            if !o.contains_key(k) {
                return Err(format!("{p}.{k}: missing"));
            }
        }
        let mut read_only = false;
        for (k, v) in o {
            let kp = format!("{p}.{k}");
            match k.as_str() {
                "name" => {}
                "mountPath" => {
                    let normal = mount_path(string(v, self.d, &kp)?, &kp)?;
                    if !paths.insert(normal) {
                        return Err(format!("{kp}: a mount path used twice"));
                    }
                }
                "readOnly" => {
                    self.bool_ish(v, &kp)?;
                    read_only = v == &Value::Bool(true) || v == "true" || v == "True";
                }
                _ => return Err(unexpected(p, k)),
            }
        }
        let name = self
            .name(&o["name"], &format!("{p}.name"), false)?
            .unwrap_or_default();
        if !self.declared.contains(&name) {
            return Err(format!("{p}.name: no volume {name} in spec.volumes"));
        }
        self.mounted.insert(name.clone());
        if let (Some(me), false) = (app, read_only) {
            if *self.rw_owner.entry(name.clone()).or_insert(me) != me {
                return Err(format!("{p}: volume {name} mounted read-write twice"));
            }
        }
        Ok(())
    }

    fn env(&self, v: &Value, p: &str) -> Judged {
        if v.is_null() {
            return Ok(());
        }
        let m = object(v, self.d, p)?;
        if m.len() > MAX_ENV {
            return Err(format!("{p}: more than {MAX_ENV} variables"));
        }
        for (k, v) in m {
            if k.is_empty() || k.contains('=') || k.contains('\0') || k.len() > MAX_TEXT {
                return Err(format!(
                    "{p}: a variable name empty, with '=' or NUL, or too long"
                ));
            }
            let s = string(v, self.d, &format!("{p}.{k}"))?;
            if s.contains('\0') || s.len() > MAX_TEXT {
                return Err(format!("{p}.{k}: a value with NUL or too long"));
            }
        }
        Ok(())
    }
}

/// How deeply `v` nests (a scalar 0, a flat object or array 1), deep marks included.
fn depth(v: &Value, d: &Deeps) -> usize {
    match shape(v, d) {
        Shape::Deep { depth, .. } => depth,
        Shape::Json(Value::Object(m)) => 1 + m.values().map(|v| depth(v, d)).max().unwrap_or(0),
        Shape::Json(Value::Array(a)) => 1 + a.iter().map(|v| depth(v, d)).max().unwrap_or(0),
        Shape::Json(_) => 0,
    }
}

/// A port: an integer or a string of digits, 1..=65535 (a float with no fraction is left to
/// the API: JSON Schema validators differ on it). The port when certain.
fn port(v: &Value, d: &Deeps, p: &str) -> Result<Option<u16>, String> {
    let n = match v {
        Value::Number(n) if integer(v).is_none() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            if f.fract() != 0.0 || !(1.0..=65535.0).contains(&f) {
                return Err(format!("{p}: not an integer 1..=65535"));
            }
            return Ok(None);
        }
        Value::Number(_) => integer(v).unwrap_or_default(),
        Value::String(s) => match digits(s) {
            Some(n) => i128::try_from(n).unwrap_or(i128::MAX),
            None => return Err(format!("{p}: a string that is not digits")),
        },
        _ => return Err(wrong(v, d, p, "a port number")),
    };
    match u16::try_from(n) {
        Ok(port) if port > 0 => Ok(Some(port)),
        _ => Err(format!("{p}: not 1..=65535")),
    }
}

/// `resources.requests.cpu`: a number or a decimal string (`^[0-9]*(\.[0-9]+)?$`) within
/// 0.1..=16 (values within a millionth of a bound are left to the API's rounding).
fn cpu(v: &Value, d: &Deeps, p: &str) -> Judged {
    let x = match v {
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        Value::String(s) => {
            let ok = match s.split_once('.') {
                Some((int, frac)) => {
                    int.bytes().all(|b| b.is_ascii_digit()) && digits(frac).is_some()
                }
                None => digits(s).is_some(),
            };
            if !ok {
                return Err(format!("{p}: a string that is not a decimal number"));
            }
            s.parse::<f64>().unwrap_or(f64::NAN)
        }
        _ => return Err(wrong(v, d, p, "a number")),
    };
    if x.is_finite() && x >= CPU.0 - 1e-6 && x <= CPU.1 + 1e-6 {
        Ok(())
    } else {
        Err(format!("{p}: not within {}..={} CPUs", CPU.0, CPU.1))
    }
}

/// `resources.requests.memory`: MiB as an integer or a string of digits, 4..=8192.
fn memory(v: &Value, d: &Deeps, p: &str) -> Judged {
    let n = match v {
        Value::Number(n) if integer(v).is_none() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            if f.fract() != 0.0 || !(4.0..=8192.0).contains(&f) {
                return Err(format!("{p}: not an integer 4..=8192"));
            }
            return Ok(());
        }
        Value::Number(_) => integer(v).unwrap_or_default(),
        Value::String(s) => match digits(s) {
            Some(n) => i128::try_from(n).unwrap_or(i128::MAX),
            None => return Err(format!("{p}: a string that is not digits")),
        },
        _ => return Err(wrong(v, d, p, "a number of MiB")),
    };
    if (MEMORY.0..=MEMORY.1).contains(&n) {
        Ok(())
    } else {
        Err(format!("{p}: not 4..=8192 MiB"))
    }
}

/// A `mountPath` and its normal form: absolute, no `..`, not `/`, not under `/proc`, `/sys`
/// or `/dev`, at most 4096 bytes, no control characters.
fn mount_path(s: &str, p: &str) -> Result<String, String> {
    if !s.starts_with('/') || s.len() > MAX_PATH || has_control(s) {
        return Err(format!("{p}: not an absolute path"));
    }
    let parts: Vec<&str> = s
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    match parts.first() {
        _ if parts.contains(&"..") => Err(format!("{p}: holds '..'")),
        None => Err(format!("{p}: the root directory")),
        Some(&("proc" | "sys" | "dev")) => Err(format!("{p}: under /proc, /sys or /dev")),
        Some(_) => Ok(format!("/{}", parts.join("/"))),
    }
}

/// An image reference: 2..=255 characters and, of the Docker reference grammar, only what is
/// certain: no whitespace or control characters, no empty or all-dot component, no empty tag,
/// a digest `algorithm:hex` of at least 32, and lower-case repository components.
fn image(s: &str, p: &str) -> Judged {
    let n = s.chars().count();
    let bad = |why: &str| Err(format!("{p}: {why}"));
    if !(2..=255).contains(&n) {
        return bad("not 2..=255 characters");
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("whitespace or control characters in a reference");
    }
    let (name, digest) = match s.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (s, None),
    };
    if let Some(digest) = digest {
        let ok = digest.split_once(':').is_some_and(|(alg, hex)| {
            !alg.is_empty()
                && alg
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b))
                && hex.len() >= 32
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"=_-".contains(&b))
        });
        if !ok {
            return bad("a digest that is not algorithm:hex");
        }
    }
    let comps: Vec<&str> = name.split('/').collect();
    if comps
        .iter()
        .any(|c| c.is_empty() || c.bytes().all(|b| b == b'.'))
    {
        return bad("an empty or all-dot component");
    }
    let last = comps.last().copied().unwrap_or_default();
    if last.ends_with(':') || last.starts_with(':') {
        return bad("an empty tag or repository");
    }
    let has_domain = comps.len() > 1
        && (comps[0].contains('.') || comps[0].contains(':') || comps[0] == "localhost");
    let repo = &comps[usize::from(has_domain)..];
    let repo_text: Vec<&str> = repo
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i + 1 == repo.len() {
                c.split(':').next().unwrap_or(c)
            } else {
                c
            }
        })
        .collect();
    if repo_text
        .iter()
        .any(|c| c.bytes().any(|b| b.is_ascii_uppercase()))
    {
        return bad("upper case in the repository");
    }
    Ok(())
}

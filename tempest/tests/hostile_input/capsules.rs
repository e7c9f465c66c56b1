//! Capsule templates: a valid template, whole-list floods and hostile edits of it, sent as
//! `POST /v1/capsules` and judged by the template's contract; only harmless templates may
//! reach a compute host.

use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{json, Value};

use crate::oracle::container_version;
use crate::oracle_template::capsule_create;
use crate::stack::Stack;
use crate::strategies::{apply, edit_kind, edits, hostile_string, query_string, Deeps, Edit};
use crate::verdict::Verdict;
use crate::wire::{Api, Wire};
use crate::NOWHERE;

pub(crate) const TEMPLATE_LOCS: &[&str] = &[
    "",
    "extra",
    "template",
    "template.kind",
    "template.capsuleVersion",
    "template.restartPolicy",
    "template.availabilityZone",
    "template.unknownKey",
    "template.metadata",
    "template.metadata.name",
    "template.metadata.labels",
    "template.metadata.labels.app",
    "template.metadata.annotations",
    "template.metadata.annotations.note",
    "template.spec",
    "template.spec.restartPolicy",
    "template.spec.securityGroups",
    "template.spec.securityGroups.0",
    "template.spec.containers",
    "template.spec.containers.0",
    "template.spec.containers.1",
    "template.spec.containers.0.name",
    "template.spec.containers.0.image",
    "template.spec.containers.0.command",
    "template.spec.containers.0.command.0",
    "template.spec.containers.0.args",
    "template.spec.containers.0.env",
    "template.spec.containers.0.env.HOSTILE",
    "template.spec.containers.0.workDir",
    "template.spec.containers.0.imagePullPolicy",
    "template.spec.containers.0.stdin",
    "template.spec.containers.0.tty",
    "template.spec.containers.0.privileged",
    "template.spec.containers.0.ports",
    "template.spec.containers.0.ports.0",
    "template.spec.containers.0.ports.0.containerPort",
    "template.spec.containers.0.ports.0.hostPort",
    "template.spec.containers.0.ports.0.protocol",
    "template.spec.containers.0.ports.0.name",
    "template.spec.containers.0.resources",
    "template.spec.containers.0.resources.requests",
    "template.spec.containers.0.resources.requests.cpu",
    "template.spec.containers.0.resources.requests.memory",
    "template.spec.containers.0.resources.limits",
    "template.spec.containers.0.volumeMounts",
    "template.spec.containers.0.volumeMounts.0",
    "template.spec.containers.0.volumeMounts.0.name",
    "template.spec.containers.0.volumeMounts.0.mountPath",
    "template.spec.containers.0.volumeMounts.0.readOnly",
    "template.spec.initContainers",
    "template.spec.initContainers.0",
    "template.spec.initContainers.0.image",
    "template.spec.volumes",
    "template.spec.volumes.0",
    "template.spec.volumes.0.name",
    "template.spec.volumes.0.cinder",
    "template.spec.volumes.0.cinder.size",
    "template.spec.volumes.0.cinder.volumeID",
    "template.spec.volumes.0.cinder.autoRemove",
    "template.spec.volumes.0.cinder.unknown",
];

/// Whole-list changes of `spec.containers` and friends.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Flood {
    NoContainers,
    Containers(usize),
    DuplicateNames,
    Ports(usize),
    Labels(usize),
    SameVolumeReadWriteTwice,
}

#[derive(Clone, Debug)]
pub(crate) struct CapsuleCase {
    /// May a valid template reach a compute host (if it is harmless)?
    pub(crate) schedulable: bool,
    pub(crate) with_volume: bool,
    pub(crate) with_port: bool,
    /// The template as a string holding JSON (as python-zunclient sends it).
    pub(crate) as_string: bool,
    pub(crate) version: &'static str,
    pub(crate) query: Option<(String, String)>,
    pub(crate) flood: Option<Flood>,
    pub(crate) edits: Vec<Edit>,
}

pub(crate) const VERSIONS: &[&str] = &[
    "container 1.1",
    "container latest",
    "container 1.41",
    "container 2.0",
    "container 1.x",
    "container",
    "compute 2.1",
    "",
    "container 1.40, container 1.1",
    "container 01.40",
    "container 1.40\u{0}",
];

pub(crate) fn capsule_case() -> impl Strategy<Value = CapsuleCase> {
    (
        prop::bool::weighted(0.25),
        prop::bool::weighted(0.3),
        prop::bool::weighted(0.3),
        prop::bool::weighted(0.2),
        prop_oneof![9 => Just("container 1.40"), 1 => select(VERSIONS)],
        prop::option::weighted(
            0.05,
            (
                select(&["template", "kind", "all_projects", "name"][..]).prop_map(str::to_owned),
                hostile_string(),
            ),
        ),
        prop::option::weighted(
            0.1,
            prop_oneof![
                Just(Flood::NoContainers),
                select(&[17usize, 100, 1000][..]).prop_map(Flood::Containers),
                Just(Flood::DuplicateNames),
                select(&[65usize, 1000][..]).prop_map(Flood::Ports),
                select(&[257usize, 5000][..]).prop_map(Flood::Labels),
                Just(Flood::SameVolumeReadWriteTwice),
            ],
        ),
        edits(TEMPLATE_LOCS, 3),
    )
        .prop_map(
            |(schedulable, with_volume, with_port, as_string, version, query, flood, edits)| {
                CapsuleCase {
                    schedulable,
                    with_volume,
                    with_port,
                    as_string,
                    version,
                    query,
                    flood,
                    edits,
                }
            },
        )
}

/// The valid template every case starts from.
pub(crate) fn base_template(with_volume: bool, with_port: bool, schedulable: bool) -> Value {
    let mut container = json!({"image": "busybox", "command": ["sleep", "3600"]});
    let mut t = json!({
        "kind": "capsule",
        "metadata": {"name": "hostile-input", "labels": {"app": "hostile"}},
        "spec": {"containers": []},
    });
    if with_port {
        container["ports"] = json!([{"containerPort": 80, "protocol": "TCP"}]);
    }
    if with_volume {
        container["volumeMounts"] = json!([{"name": "data", "mountPath": "/data"}]);
        t["spec"]["volumes"] = json!([{"name": "data", "cinder": {"size": 1, "autoRemove": true}}]);
    }
    t["spec"]["containers"] = json!([container]);
    if !schedulable {
        t["availabilityZone"] = json!(NOWHERE);
    }
    t
}

/// Whether a template may go to a real compute host: it runs only `busybox` with `sleep`,
/// publishes no host port, makes no volume and holds nothing deep.
pub(crate) fn harmless(t: &Value) -> bool {
    fn walk(v: &Value, depth: usize) -> bool {
        if depth > 16 {
            return false;
        }
        match v {
            Value::Object(m) => m.iter().all(|(k, v)| {
                let ok = match k.as_str() {
                    "hostPort" | "volumes" | "volumeMounts" | "initContainers" | "args" => false,
                    "image" => v == "busybox",
                    "command" => *v == json!(["sleep", "3600"]),
                    _ => true,
                };
                ok && walk(v, depth + 1)
            }),
            Value::Array(a) => a.iter().all(|v| walk(v, depth + 1)),
            Value::String(s) => !s.contains("\u{0}DEEP"),
            _ => true,
        }
    }
    t.is_object() && walk(t, 0)
}

pub(crate) fn flood(t: &mut Value, f: Flood) {
    let container = json!({"image": "busybox", "command": ["sleep", "3600"]});
    match f {
        Flood::NoContainers => t["spec"]["containers"] = json!([]),
        Flood::Containers(n) => t["spec"]["containers"] = Value::Array(vec![container; n]),
        Flood::DuplicateNames => {
            let mut a = container.clone();
            a["name"] = json!("twin");
            t["spec"]["containers"] = json!([a.clone(), a]);
        }
        Flood::Ports(n) => {
            t["spec"]["containers"][0]["ports"] = Value::Array(
                (0..n)
                    .map(|i| json!({"containerPort": 1000 + i, "protocol": "TCP"}))
                    .collect(),
            )
        }
        Flood::Labels(n) => {
            t["metadata"]["labels"] =
                Value::Object((0..n).map(|i| (format!("label-{i}"), json!("x"))).collect())
        }
        Flood::SameVolumeReadWriteTwice => {
            let mut a = container.clone();
            a["volumeMounts"] = json!([{"name": "data", "mountPath": "/data"}]);
            let mut b = a.clone();
            b["volumeMounts"][0]["mountPath"] = json!("/other");
            t["spec"]["containers"] = json!([a, b]);
            t["spec"]["volumes"] =
                json!([{"name": "data", "cinder": {"size": 1, "autoRemove": true}}]);
        }
    }
}

impl Stack {
    /// The request of a case, and what it must get: the template, microversion and floods
    /// judged by the contract; the kinds are its edits, flood, version, query and form.
    pub(crate) fn capsule_wire(&self, c: &CapsuleCase) -> (Wire, Verdict) {
        let mut body =
            json!({"template": base_template(c.with_volume, c.with_port, c.schedulable)});
        if let Some(f) = c.flood {
            flood(&mut body["template"], f);
        }
        let mut deeps = Deeps::default();
        apply(&mut body, &c.edits, &mut deeps, &self.marks());
        // Anything that could touch more than this host's loopback goes nowhere.
        if let Some(t) = body.get_mut("template") {
            if t.is_object() && !harmless(t) {
                t["availabilityZone"] = json!(NOWHERE);
            }
        }
        let judged =
            container_version(c.version).and_then(|()| capsule_create(&body, &deeps, c.as_string));
        let mut kinds: Vec<String> = c.edits.iter().map(edit_kind).collect();
        kinds.extend(c.flood.map(|f| format!("flood {f:?}")));
        if c.version != "container 1.40" {
            kinds.push(format!("version {:?}", c.version));
        }
        if c.as_string {
            kinds.push("template as a string".into());
        }
        kinds.extend(c.query.as_ref().map(|(k, _)| format!("query {k}")));
        if c.as_string {
            if let Some(t) = body.get_mut("template") {
                *t = Value::String(deeps.render(t));
            }
        }
        let mut path = b"/v1/capsules".to_vec();
        if let Some((k, v)) = &c.query {
            path.push(b'?');
            path.extend_from_slice(query_string(&[(k.clone(), v.clone())]).as_bytes());
        }
        let mut w = self.wire(
            Api::Capsule,
            "POST",
            &path,
            Some(deeps.render(&body).into_bytes()),
        );
        w.headers
            .push(("Content-Type".into(), b"application/json".to_vec()));
        w.headers.push((
            "OpenStack-API-Version".into(),
            c.version.as_bytes().to_vec(),
        ));
        (w, Verdict::of(judged, kinds))
    }
}

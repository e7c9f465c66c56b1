//! Property tests: no input makes the validator panic, and whatever it accepts is consistent and
//! round-trips through its stored JSON form.

use capsule_types::template::{
    parse_create_body, parse_template, CapsuleTemplate, ImageReference, Limits,
};
use proptest::prelude::*;
use serde_json::{json, Map, Number, Value};
use std::collections::HashSet;

/// Keys the validator knows, so random objects often look like templates.
const KEYS: &[&str] = &[
    "template",
    "kind",
    "capsuleVersion",
    "metadata",
    "spec",
    "restartPolicy",
    "availabilityZone",
    "name",
    "labels",
    "annotations",
    "containers",
    "initContainers",
    "volumes",
    "securityGroups",
    "image",
    "command",
    "args",
    "resources",
    "requests",
    "cpu",
    "memory",
    "ports",
    "containerPort",
    "hostPort",
    "protocol",
    "volumeMounts",
    "mountPath",
    "readOnly",
    "env",
    "workDir",
    "imagePullPolicy",
    "stdin",
    "tty",
    "cinder",
    "size",
    "volumeID",
    "autoRemove",
    "privileged",
    "",
    "a.b",
    "=",
];

/// Strings that sit on the validator's boundaries.
const STRINGS: &[&str] = &[
    "",
    "capsule",
    "Capsule",
    "beta",
    "Always",
    "OnFailure",
    "Never",
    "busybox",
    "nginx:1.25",
    "Nginx",
    "localhost:5000/a/b:c",
    "data",
    "workdir",
    "/data",
    "/data/",
    "/proc/x",
    "/a/../b",
    "/",
    "relative",
    "TCP",
    "udp",
    "SCTP",
    "true",
    "True",
    "false",
    "False",
    "yes",
    "0",
    "1",
    "80",
    "65535",
    "65536",
    "-1",
    "0.5",
    ".5",
    "1.",
    "99999999999999999999999",
    "512",
    "abc",
    "always",
    "IFNOTPRESENT",
    "0b5a3b0e-7d43-4c5e-9d5f-6b1c2d3e4f50",
    "default",
    "a\u{0}b",
    "\u{1b}[31m",
    "名前",
    "x; rm -rf /",
];

/// True when this build's serde_json parses every float it prints back to the same value (its
/// `float_roundtrip` feature). Without it, 17-digit floats can come back one ULP off.
fn exact_floats() -> bool {
    let x = 14.046_574_958_306_719_f64;
    serde_json::to_string(&x)
        .ok()
        .and_then(|s| serde_json::from_str::<f64>(&s).ok())
        == Some(x)
}

/// Any finite float when serde_json round-trips floats exactly; otherwise floats with at most
/// ten significant digits and small exponents, which its default parser reads back exactly.
/// (Stored annotations keep user floats verbatim, so the round-trip property depends on it.)
fn arb_float() -> BoxedStrategy<f64> {
    let short = (any::<i32>(), -12i32..=12)
        .prop_map(|(m, e)| format!("{m}e{e}").parse::<f64>().unwrap_or(0.0));
    if exact_floats() {
        prop_oneof![any::<f64>(), short].boxed()
    } else {
        short.boxed()
    }
}

fn arb_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (0u64..70000).prop_map(Value::from),
        arb_float().prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(vec![0.0, -0.0, 0.1, 0.5, 1.5, 16.0, 1e300, -1e-300, 1024.0])
            .prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
    ]
}

fn arb_string() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(STRINGS).prop_map(str::to_owned),
        any::<String>(),
        "[a-z0-9/:._@-]{0,40}",
    ]
}

fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(KEYS).prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        arb_number(),
        arb_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((arb_key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A rich valid template to mutate.
fn seed() -> Value {
    json!({
        "kind": "capsule", "capsuleVersion": "beta",
        "metadata": {"name": "demo", "labels": {"app": "web", "n": 1}, "annotations": {"k": "v"}},
        "availabilityZone": "nova",
        "spec": {
            "restartPolicy": "OnFailure", "securityGroups": ["default", "web"],
            "initContainers": [{"name": "init", "image": "busybox", "command": ["true"],
                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                "resources": {"requests": {"cpu": 2, "memory": "1024"}}}],
            "containers": [
                {"name": "web", "image": "nginx:1.25", "workDir": "/", "env": {"A": "1"},
                 "ports": [{"name": "http", "containerPort": 80, "hostPort": "8080", "protocol": "TCP"}],
                 "volumeMounts": [{"name": "data", "mountPath": "/usr/share/nginx/html"}],
                 "resources": {"requests": {"cpu": "0.5", "memory": 512}},
                 "imagePullPolicy": "IfNotPresent", "stdin": "false", "tty": true},
                {"name": "side", "image": "localhost:5000/tools/side", "args": ["-v"],
                 "ports": [{"containerPort": 53, "protocol": "udp"}],
                 "volumeMounts": [{"name": "data", "mountPath": "/ro", "readOnly": "True"},
                                  {"name": "old", "mountPath": "/old"}]}
            ],
            "volumes": [
                {"name": "data", "cinder": {"size": 1, "autoRemove": "true"}},
                {"name": "old", "cinder": {"volumeID": "0b5a3b0e-7d43-4c5e-9d5f-6b1c2d3e4f50"}}
            ]
        }
    })
}

/// Paths (as key/index steps) of every node of `v`, root first.
fn node_paths(v: &Value, prefix: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(prefix.clone());
    match v {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                prefix.push(Step::Index(i));
                node_paths(item, prefix, out);
                prefix.pop();
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                prefix.push(Step::Key(k.clone()));
                node_paths(item, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

fn node_mut<'a>(mut v: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    for step in path {
        v = match step {
            Step::Key(k) => v.get_mut(k.as_str())?,
            Step::Index(i) => v.get_mut(*i)?,
        };
    }
    Some(v)
}

/// Applies one mutation at the node chosen by `pick`.
fn mutate(v: &mut Value, pick: usize, op: u8, new: Value, key: String) {
    let mut paths = Vec::new();
    node_paths(v, &mut Vec::new(), &mut paths);
    let path = &paths[pick % paths.len()];
    let Some(node) = node_mut(v, path) else {
        return;
    };
    match (op % 5, node) {
        (0, node) => *node = new,
        (1, Value::Object(map)) => {
            map.insert(key, new);
        }
        (1, Value::Array(items)) => items.push(new),
        (2, Value::Object(map)) => {
            let first = map.keys().next().cloned();
            if let Some(k) = first {
                map.shift_remove(&k);
            }
        }
        (2, Value::Array(items)) => {
            items.pop();
        }
        (3, Value::Array(items)) => {
            if let Some(first) = items.first().cloned() {
                items.push(first);
            }
        }
        (4, node) => *node = Value::String(node.to_string()),
        _ => {}
    }
}

/// Everything an accepted template promises.
fn check_accepted(t: &CapsuleTemplate, limits: &Limits) -> Result<(), TestCaseError> {
    prop_assert!(!t.containers.is_empty() && t.containers.len() <= limits.max_containers);
    prop_assert!(t.init_containers.len() <= limits.max_init_containers);
    prop_assert!(!t.security_groups.is_empty());
    let mut names = HashSet::new();
    for c in t.all_containers() {
        prop_assert!(ImageReference::parse(&c.image).is_ok(), "{}", c.image);
        if let Some(n) = &c.name {
            prop_assert!(names.insert(n.clone()), "duplicate name {}", n);
        }
        if let Some(cpu) = c.cpu {
            prop_assert!(cpu >= limits.min_cpu && cpu <= limits.max_cpu);
        }
        for m in &c.volume_mounts {
            prop_assert!(t.volume(&m.name).is_some());
            prop_assert!(m.mount_path.starts_with('/') && m.mount_path.len() > 1);
        }
        for p in &c.ports {
            prop_assert!(p.container_port > 0);
        }
    }
    let hosts = t.host_ports();
    prop_assert_eq!(hosts.iter().collect::<HashSet<_>>().len(), hosts.len());
    for v in &t.volumes {
        prop_assert!(t
            .all_containers()
            .any(|c| c.volume_mounts.iter().any(|m| m.name == v.name)));
    }
    prop_assert!(t.total_cpu().is_finite());
    let stored = serde_json::to_string(t).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let back: CapsuleTemplate =
        serde_json::from_str(&stored).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&back, t);
    Ok(())
}

/// Runs every entry point on `template`; never panics by construction of the property.
fn exercise(template: &Value) -> Result<(), TestCaseError> {
    let limits = Limits::default();
    let direct = parse_template(template, &limits);
    let body = parse_create_body(&json!({ "template": template }), &limits);
    match (&direct, &body) {
        (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
        (Err(a), Err(b)) => {
            prop_assert!(!a.is_empty() && !b.is_empty());
            if template.is_object() {
                prop_assert_eq!(a, b);
            }
        }
        _ => prop_assert!(
            !template.is_object(),
            "parse_template and parse_create_body disagree"
        ),
    }
    if let Ok(text) = serde_json::to_string(template) {
        let as_string = parse_create_body(&json!({ "template": text }), &limits);
        if template.is_object() {
            prop_assert_eq!(&as_string, &body);
        }
    }
    if let Ok(t) = &direct {
        check_accepted(t, &limits)?;
    }
    if let Err(e) = &direct {
        prop_assert!(!e.to_string().is_empty());
        for fe in e {
            prop_assert!(!fe.path.is_empty() && !fe.message.is_empty());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_never_panics(v in arb_json()) {
        let limits = Limits::default();
        let _ = parse_create_body(&v, &limits);
        exercise(&v)?;
    }

    #[test]
    fn arbitrary_spec_never_panics(spec in arb_json(), metadata in arb_json()) {
        let t = json!({"kind": "capsule", "metadata": metadata, "spec": spec});
        exercise(&t)?;
    }

    #[test]
    fn accepted_values_round_trip(
        cpu in 0.1f64..=16.0,
        init_cpu in 0.1f64..=16.0,
        memory in 4u64..=8192,
        size in 1u64..=1024,
        port in 1u16..=65535,
        host_port in 1u16..=65535,
        annotation in arb_json(),
        label in arb_string(),
        env in arb_string(),
    ) {
        let mut t = seed();
        t["spec"]["containers"][0]["resources"]["requests"] = json!({"cpu": cpu, "memory": memory});
        t["spec"]["initContainers"][0]["resources"]["requests"]["cpu"] = json!(init_cpu.to_string());
        t["spec"]["containers"][0]["ports"][0]["containerPort"] = json!(port);
        t["spec"]["containers"][0]["ports"][0]["hostPort"] = json!(host_port.to_string());
        t["spec"]["volumes"][0]["cinder"]["size"] = json!(size);
        t["metadata"]["annotations"] = json!({ "x": annotation });
        t["metadata"]["labels"]["free"] = json!(label);
        t["spec"]["containers"][0]["env"]["FREE"] = json!(env);
        let limits = Limits::default();
        // Labels refuse control characters and env values NUL; everything else must pass.
        let label_ok = !label.chars().any(char::is_control);
        let env_ok = !env.contains('\0');
        let nano = |x: f64| (x * 1e9).round() / 1e9;
        match parse_template(&t, &limits) {
            Ok(parsed) => {
                prop_assert_eq!(parsed.containers[0].cpu, Some(nano(cpu)));
                prop_assert_eq!(parsed.containers[0].memory_mib, Some(memory));
                prop_assert_eq!(parsed.total_cpu(), nano(cpu).max(nano(init_cpu)));
                check_accepted(&parsed, &limits)?;
                exercise(&t)?;
            }
            Err(e) => prop_assert!(!label_ok || !env_ok, "refused: {}", e),
        }
    }

    #[test]
    fn mutated_templates_never_panic(
        mutations in prop::collection::vec((any::<usize>(), any::<u8>(), arb_json(), arb_key()), 1..4)
    ) {
        let mut t = seed();
        for (pick, op, new, key) in mutations {
            mutate(&mut t, pick, op, new, key);
        }
        exercise(&t)?;
    }
}

#[test]
fn seed_is_valid() {
    let t = parse_template(&seed(), &Limits::default()).expect("seed is valid");
    assert_eq!(t.containers.len(), 2);
    assert_eq!(t.volumes.len(), 2);
}

#[test]
fn deep_nesting_does_not_overflow() {
    // serde_json refuses nesting deeper than 128 when parsing text; build a deep value directly
    // in annotations, labels and env: each is refused without deep recursion (annotations are
    // looked at only MAX_ANNOTATION_DEPTH + 1 levels down).
    let mut deep = json!(1);
    for _ in 0..100 {
        deep = json!({ "a": [deep] });
    }
    let mut t = seed();
    t["metadata"]["annotations"] = json!({ "deep": deep.clone() });
    t["metadata"]["labels"] = json!({ "deep": deep.clone() });
    t["spec"]["containers"][0]["env"] = json!({ "deep": deep });
    let err = parse_template(&t, &Limits::default()).expect_err("deep values refused");
    assert_eq!(err.len(), 3, "{err}");
    let text = "[".repeat(10_000);
    let body = json!({ "template": text });
    assert!(parse_create_body(&body, &Limits::default()).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// Security-group bodies: any JSON anywhere gets an answer (a rule or a 4xx), never a
    /// panic, and a refusal always has a type and a message.
    #[test]
    fn security_group_bodies_never_panic(
        v in arb_json(),
        protocol in arb_json(),
        min in arb_json(),
        max in arb_json(),
        prefix in arb_json(),
    ) {
        use capsule_types::secgroup::{parse_group_create, parse_group_update, parse_rule_create};
        for body in [
            v.clone(),
            json!({"security_group_rule": v.clone()}),
            json!({"security_group_rule": {"security_group_id": "g", "direction": "ingress",
                "protocol": protocol, "port_range_min": min, "port_range_max": max,
                "remote_ip_prefix": prefix}}),
        ] {
            if let Err(e) = parse_rule_create(&body) {
                prop_assert!((400..500).contains(&e.status) && !e.message.is_empty());
            }
        }
        for body in [v.clone(), json!({"security_group": v})] {
            for r in [parse_group_create(&body), parse_group_update(&body)] {
                if let Err(e) = r {
                    prop_assert!((400..500).contains(&e.status) && !e.kind.is_empty());
                }
            }
        }
    }
}

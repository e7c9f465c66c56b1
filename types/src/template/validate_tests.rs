//! Unit tests of the template walker, one rule at a time.

use super::*;
use serde_json::{json, Value};

fn limits() -> Limits {
    Limits::default()
}

fn ok(v: Value) -> CapsuleTemplate {
    match parse_template(&v, &limits()) {
        Ok(t) => t,
        Err(e) => panic!("expected valid, got: {e:?}"),
    }
}

fn errs(v: Value) -> Vec<String> {
    match parse_template(&v, &limits()) {
        Ok(t) => panic!("expected errors, got {t:?}"),
        Err(e) => {
            assert!(!e.is_empty());
            e.iter().map(ToString::to_string).collect()
        }
    }
}

/// Asserts exactly one error, equal to `want`.
fn one_err(v: Value, want: &str) {
    assert_eq!(errs(v), [want]);
}

fn minimal() -> Value {
    json!({"kind": "capsule", "metadata": {}, "spec": {"containers": [{"image": "busybox"}]}})
}

/// `minimal()` with its only container replaced by `c`.
fn with_container(c: Value) -> Value {
    let mut t = minimal();
    t["spec"]["containers"] = json!([c]);
    t
}

/// A template whose `spec` is `spec`, plus the minimal `containers` (last) if it has none.
fn with_spec(spec: Value) -> Value {
    let mut spec = spec;
    if let Some(obj) = spec.as_object_mut() {
        obj.entry("containers")
            .or_insert_with(|| json!([{"image": "busybox"}]));
    }
    json!({"kind": "capsule", "metadata": {}, "spec": spec})
}

#[test]
fn minimal_template_defaults() {
    let t = ok(minimal());
    assert_eq!(t.name, None);
    assert!(t.labels.is_empty());
    assert_eq!(t.restart_policy, RestartPolicy::Always);
    assert_eq!(t.security_groups, ["default"]);
    assert_eq!(t.containers.len(), 1);
    let c = &t.containers[0];
    assert_eq!(c.image, "busybox");
    assert!(!c.stdin && !c.tty);
    assert_eq!(c.image_pull_policy, None);
    assert_eq!(t.total_cpu(), 0.0);
}

#[test]
fn body_requires_only_template() {
    let l = limits();
    let e = parse_create_body(&json!({}), &l).unwrap_err();
    assert_eq!(e.to_string(), "template: is a required property");
    let e = parse_create_body(&json!({"template": minimal(), "nets": []}), &l).unwrap_err();
    assert_eq!(e.to_string(), "nets: unexpected property");
    let e = parse_create_body(&json!([]), &l).unwrap_err();
    assert_eq!(e.to_string(), "body: must be a JSON object (got array)");
    let e = parse_create_body(&json!({"template": 3}), &l).unwrap_err();
    assert_eq!(
        e.to_string(),
        "template: must be an object or a string holding JSON (got integer)"
    );
    assert!(parse_create_body(&json!({"template": minimal()}), &l).is_ok());
}

#[test]
fn body_template_as_string() {
    let l = limits();
    let s = serde_json::to_string(&minimal()).unwrap();
    let t = parse_create_body(&json!({ "template": s }), &l).unwrap();
    assert_eq!(t.containers[0].image, "busybox");
    let e = parse_create_body(&json!({"template": "{not json"}), &l).unwrap_err();
    assert!(
        e.to_string().starts_with("template: is not valid JSON"),
        "{e}"
    );
    let e = parse_create_body(&json!({"template": "[1]"}), &l).unwrap_err();
    assert_eq!(
        e.to_string(),
        "template: must be a string holding a JSON object (got array)"
    );
    // Numbers serde_json cannot hold, and nesting beyond its limit, are JSON errors.
    let huge = r#"{"kind": "capsule", "metadata": {}, "spec": {"containers": [{"image": "busybox",
        "resources": {"requests": {"cpu": 1e400}}}]}}"#;
    let e = parse_create_body(&json!({ "template": huge }), &l).unwrap_err();
    assert!(
        e.to_string().starts_with("template: is not valid JSON"),
        "{e}"
    );
    let deep = format!("{}{}", "[".repeat(500), "]".repeat(500));
    let e = parse_create_body(&json!({ "template": deep }), &l).unwrap_err();
    assert!(
        e.to_string().starts_with("template: is not valid JSON"),
        "{e}"
    );
    // The string is validated like an object.
    let bad = serde_json::to_string(&with_container(json!({"image": "Bad"}))).unwrap();
    let e = parse_create_body(&json!({ "template": bad }), &l).unwrap_err();
    assert!(
        e.to_string().starts_with("spec.containers[0].image:"),
        "{e}"
    );
}

#[test]
fn template_top_level_keys() {
    one_err(json!([]), "template: must be an object (got array)");
    assert_eq!(
        errs(json!({})),
        [
            "kind: is a required property",
            "metadata: is a required property",
            "spec: is a required property"
        ]
    );
    let mut t = minimal();
    t["nets"] = json!([]);
    one_err(t, "nets: unexpected property");
    let mut t = minimal();
    t["kind"] = json!("Pod");
    one_err(t, "kind: must be one of: capsule, Capsule");
    let mut t = minimal();
    t["capsuleVersion"] = json!("v1");
    one_err(t, "capsuleVersion: must be one of: beta, Beta");
    let mut t = minimal();
    t["metadata"] = Value::Null;
    one_err(t, "metadata: must be an object (got null)");
    let mut t = minimal();
    t["availabilityZone"] = json!("");
    one_err(
        t,
        "availabilityZone: must be 1 to 255 characters long (got 0)",
    );
    let mut t = minimal();
    t["availabilityZone"] = json!("nova");
    assert_eq!(ok(t).availability_zone.as_deref(), Some("nova"));
}

#[test]
fn restart_policy_precedence() {
    let mut t = minimal();
    t["restartPolicy"] = json!("Never");
    assert_eq!(ok(t.clone()).restart_policy, RestartPolicy::Never);
    t["spec"]["restartPolicy"] = json!("OnFailure");
    assert_eq!(ok(t.clone()).restart_policy, RestartPolicy::OnFailure);
    t["spec"]["restartPolicy"] = json!("never");
    one_err(
        t,
        "spec.restartPolicy: must be one of: Always, OnFailure, Never",
    );
}

#[test]
fn metadata_fields() {
    let mut t = minimal();
    t["metadata"] = json!({
        "name": "web-1", "labels": {"app": "web", "n": 3, "f": 1.5, "on": true, "off": false},
        "annotations": {"k": {"nested": [1]}}, "uid": "ignored"
    });
    let t = ok(t);
    assert_eq!(t.name.as_deref(), Some("web-1"));
    assert_eq!(t.labels["n"], "3");
    assert_eq!(t.labels["f"], "1.5");
    assert_eq!(t.labels["on"], "True");
    assert_eq!(t.labels["off"], "False");
    assert_eq!(t.annotations, Some(json!({"k": {"nested": [1]}})));

    // Annotations nest at most MAX_ANNOTATION_DEPTH levels, so the template still decodes on
    // the compute host inside its RPC envelope.
    let nested = |levels: usize| {
        let inner: Value = serde_json::from_str(&format!(
            "{}{}",
            "[".repeat(levels - 1),
            "]".repeat(levels - 1)
        ))
        .unwrap();
        let mut t = minimal();
        t["metadata"] = json!({"annotations": {"x": inner}});
        t
    };
    assert!(ok(nested(MAX_ANNOTATION_DEPTH)).annotations.is_some());
    assert_eq!(
        errs(nested(MAX_ANNOTATION_DEPTH + 1)),
        ["metadata.annotations: must not nest deeper than 32 levels"]
    );

    let mut t = minimal();
    t["metadata"] = json!({"name": "x"});
    assert!(errs(t)[0].starts_with("metadata.name: must be 2 to 255"));
    let mut t = minimal();
    t["metadata"] =
        json!({"labels": {"a": {"b": 1}, "c": null, "": "v", "d\n": "v", "e": "x\u{0}"}});
    assert_eq!(
        errs(t),
        [
            "metadata.labels.a: must be a string, number or boolean (got object)",
            "metadata.labels.c: must be a string, number or boolean (got null)",
            "metadata.labels[\"\"]: must be 1 to 255 characters long (got 0)",
            "metadata.labels[\"d\\n\"]: must not contain control characters",
            "metadata.labels.e: must not contain NUL characters",
        ]
    );
    let mut t = minimal();
    t["metadata"] = json!({"labels": [], "annotations": "x"});
    assert_eq!(
        errs(t),
        [
            "metadata.labels: must be an object or null (got array)",
            "metadata.annotations: must be an object or null (got string)"
        ]
    );
    let mut t = minimal();
    t["metadata"] = json!({"name": null, "labels": null, "annotations": null});
    let t = ok(t);
    assert_eq!((t.name, t.annotations), (None, None));
}

#[test]
fn containers_list() {
    one_err(
        with_spec(json!({"containers": []})),
        "spec.containers: must have at least one container",
    );
    one_err(
        with_spec(json!({"containers": null})),
        "spec.containers: must be an array (got null)",
    );
    one_err(
        with_spec(json!({"containers": {}})),
        "spec.containers: must be an array (got object)",
    );
    one_err(
        json!({"kind": "capsule", "metadata": {}, "spec": {}}),
        "spec.containers: is a required property",
    );
    let many: Vec<Value> = (0..17).map(|_| json!({"image": "busybox"})).collect();
    one_err(
        with_spec(json!({"containers": many})),
        "spec.containers: must have at most 16 containers (got 17)",
    );
    one_err(
        with_spec(json!({"containers": [3]})),
        "spec.containers[0]: must be an object (got integer)",
    );
    // Other spec keys are ignored, as Zun.
    assert!(parse_template(&with_spec(json!({"nets": "x", "hostname": 1})), &limits()).is_ok());
}

#[test]
fn container_keys() {
    one_err(
        with_container(json!({})),
        "spec.containers[0].image: is a required property",
    );
    one_err(
        with_container(json!({"image": "busybox", "privileged": true})),
        "spec.containers[0].privileged: unexpected property",
    );
    let t = with_spec(json!({"initContainers": [
        {"image": "busybox", "privileged": true, "runtime": "runc", "hostname": "h", "labels": {}}
    ]}));
    assert_eq!(
        errs(t),
        [
            "spec.initContainers[0].privileged: unexpected property",
            "spec.initContainers[0].runtime: unexpected property",
            "spec.initContainers[0].hostname: unexpected property",
            "spec.initContainers[0].labels: unexpected property",
        ]
    );
    assert!(ok(with_spec(json!({"initContainers": []})))
        .init_containers
        .is_empty());
    assert!(ok(with_spec(json!({"initContainers": null})))
        .init_containers
        .is_empty());
}

#[test]
fn container_image() {
    one_err(
        with_container(json!({"image": "a"})),
        "spec.containers[0].image: must be 2 to 255 characters long (got 1)",
    );
    one_err(
        with_container(json!({"image": "Nginx"})),
        "spec.containers[0].image: invalid image reference: has an invalid repository name \
         (lowercase letters, digits and single . _ - separators)",
    );
    one_err(
        with_container(json!({"image": 5})),
        "spec.containers[0].image: must be a string (got integer)",
    );
    let t = ok(with_container(
        json!({"image": "localhost:5000/team/app:1.0"}),
    ));
    assert_eq!(t.containers[0].image, "localhost:5000/team/app:1.0");
}

#[test]
fn container_names_unique_across_init_and_app() {
    let t = with_spec(json!({
        "initContainers": [{"name": "one", "image": "busybox"}],
        "containers": [{"name": "two", "image": "busybox"}, {"name": "one", "image": "busybox"}]
    }));
    one_err(
        t,
        "spec.containers[1].name: duplicate container name \"one\"",
    );
    one_err(
        with_container(json!({"name": "bad name", "image": "busybox"})),
        "spec.containers[0].name: must be 2 to 255 characters: letters, digits, '_', '.' or '-', \
         starting with a letter or digit",
    );
    let t = ok(with_container(json!({"name": null, "image": "busybox"})));
    assert_eq!(t.containers[0].name, None);
}

#[test]
fn command_and_args() {
    let t = ok(with_container(
        json!({"image": "busybox", "command": ["sh", "-c"], "args": ["echo hi"]}),
    ));
    assert_eq!(t.containers[0].zun_command(), ["sh", "-c", "echo hi"]);
    assert_eq!(
        errs(with_container(
            json!({"image": "busybox", "command": ["sh", null, 3], "args": "x"})
        )),
        [
            "spec.containers[0].command[1]: must be a string (got null)",
            "spec.containers[0].command[2]: must be a string (got integer)",
            "spec.containers[0].args: must be an array (got string)",
        ]
    );
    let big = "x".repeat(32 * 1024 + 1);
    one_err(
        with_container(json!({"image": "busybox", "args": [big]})),
        "spec.containers[0].args[0]: must be at most 32768 bytes long (got 32769)",
    );
    let many: Vec<&str> = vec!["a"; 1025];
    one_err(
        with_container(json!({"image": "busybox", "args": many})),
        "spec.containers[0]: command and args must have at most 1024 items together (got 1025)",
    );
}

#[test]
fn resources() {
    let t = ok(with_container(
        json!({"image": "busybox", "resources": {"requests": {"cpu": "0.5", "memory": "256"}}}),
    ));
    assert_eq!(t.containers[0].cpu, Some(0.5));
    assert_eq!(t.containers[0].memory_mib, Some(256));
    let t = ok(with_container(
        json!({"image": "busybox", "resources": {"requests": {"cpu": null, "memory": null}}}),
    ));
    assert_eq!(
        (t.containers[0].cpu, t.containers[0].memory_mib),
        (None, None)
    );
    assert_eq!(
        errs(with_container(json!({"image": "busybox", "resources": {"limits": {}, "requests": {"cpu": "lots", "memory": 2, "gpu": 1}}}))),
        [
            "spec.containers[0].resources.limits: unexpected property",
            "spec.containers[0].resources.requests.cpu: must be a number or a string holding a decimal number",
            "spec.containers[0].resources.requests.memory: must be between 4 and 8192 MiB",
            "spec.containers[0].resources.requests.gpu: unexpected property",
        ]
    );
    one_err(
        with_container(json!({"image": "busybox", "resources": null})),
        "spec.containers[0].resources: must be an object (got null)",
    );
}

#[test]
fn ports() {
    let t = ok(with_container(json!({"image": "nginx", "ports": [
        {"containerPort": 80}, {"name": "dns", "containerPort": "53", "hostPort": 5353, "protocol": "udp"},
        {"containerPort": 53, "protocol": "TCP"}
    ]})));
    let ports = &t.containers[0].ports;
    assert_eq!(ports[0].protocol, Protocol::Tcp);
    assert_eq!(ports[1].container_port, 53);
    assert_eq!(ports[1].name.as_deref(), Some("dns"));
    assert_eq!(t.host_ports(), [(5353, Protocol::Udp)]);
    assert_eq!(
        errs(with_container(json!({"image": "nginx", "ports": [
            {"containerPort": 0}, {"containerPort": 65536}, {"containerPort": -1}, {"containerPort": "abc"},
            {"containerPort": 1.5}, {"hostPort": 80}, {"containerPort": 1, "protocol": "SCTP"},
            {"containerPort": 2, "target": 3}
        ]}))),
        [
            "spec.containers[0].ports[0].containerPort: must be 1..65535",
            "spec.containers[0].ports[1].containerPort: must be 1..65535",
            "spec.containers[0].ports[2].containerPort: must be 1..65535",
            "spec.containers[0].ports[3].containerPort: must be an integer or a string of digits",
            "spec.containers[0].ports[4].containerPort: must be an integer (got number)",
            "spec.containers[0].ports[5].containerPort: is a required property",
            "spec.containers[0].ports[6].protocol: must be TCP or UDP",
            "spec.containers[0].ports[7].target: unexpected property",
        ]
    );
}

#[test]
fn port_duplicates() {
    // Same port in two app containers: they share a network namespace.
    let t = with_spec(json!({"containers": [
        {"image": "nginx", "ports": [{"containerPort": 80}]},
        {"image": "nginx", "ports": [{"containerPort": 80, "protocol": "UDP"}, {"containerPort": "80"}]}
    ]}));
    one_err(
        t,
        "spec.containers[1].ports[1].containerPort: duplicate port 80/tcp: the containers of a \
         capsule share one network namespace",
    );
    // An init container may reuse an app container's port, but not its host port.
    let t = with_spec(json!({
        "initContainers": [{"image": "busybox", "ports": [{"containerPort": 80, "hostPort": 8080}]}],
        "containers": [{"image": "nginx", "ports": [{"containerPort": 80, "hostPort": 8080}]}]
    }));
    one_err(
        t,
        "spec.containers[0].ports[0].hostPort: duplicate host port 8080/tcp",
    );
    // Same host port with different protocols is fine.
    let t = with_spec(json!({"containers": [{"image": "nginx", "ports": [
        {"containerPort": 53, "hostPort": 53}, {"containerPort": 53, "hostPort": 53, "protocol": "UDP"}
    ]}]}));
    assert_eq!(ok(t).host_ports().len(), 2);
    let many: Vec<Value> = (1..=65).map(|p| json!({"containerPort": p})).collect();
    one_err(
        with_container(json!({"image": "nginx", "ports": many})),
        "spec.containers[0].ports[64]: too many ports: a capsule may have at most 64",
    );
}

fn with_volume(mounts: Value, volumes: Value) -> Value {
    with_spec(
        json!({"containers": [{"image": "busybox", "volumeMounts": mounts}], "volumes": volumes}),
    )
}

#[test]
fn volume_mounts() {
    let vol = json!([{"name": "data", "cinder": {"size": 1}}]);
    let t = ok(with_volume(
        json!([{"name": "data", "mountPath": "/data/", "readOnly": "True"}]),
        vol.clone(),
    ));
    let m = &t.containers[0].volume_mounts[0];
    assert_eq!(
        (m.name.as_str(), m.mount_path.as_str(), m.read_only),
        ("data", "/data", true)
    );
    assert_eq!(
        errs(with_volume(
            json!([
                {"name": "data", "mountPath": "/a/../../etc"}, {"name": "data", "mountPath": "rel"},
                {"name": "data", "mountPath": "/proc/x"}, {"name": "data", "mountPath": "/"},
                {"name": "other", "mountPath": "/o"}, {"mountPath": "/m"},
                {"name": "data", "mountPath": "/x", "readOnly": "yes", "subPath": "a"},
                {"name": "data", "mountPath": "/dup"}, {"name": "data", "mountPath": "/dup/"}
            ]),
            vol.clone()
        )),
        [
            "spec.containers[0].volumeMounts[0].mountPath: must not contain '..' components",
            "spec.containers[0].volumeMounts[1].mountPath: must be an absolute path",
            "spec.containers[0].volumeMounts[2].mountPath: must not be under /proc, /sys or /dev",
            "spec.containers[0].volumeMounts[3].mountPath: must not be the root directory",
            "spec.containers[0].volumeMounts[4].name: no volume named \"other\" in spec.volumes",
            "spec.containers[0].volumeMounts[5].name: is a required property",
            "spec.containers[0].volumeMounts[6].readOnly: must be true or false (got the string \"yes\")",
            "spec.containers[0].volumeMounts[6].subPath: unexpected property",
            "spec.containers[0].volumeMounts[8].mountPath: duplicate mount path \"/dup\" in this container",
        ]
    );
    // A mount naming a volume when there are no volumes at all.
    one_err(
        with_container(
            json!({"image": "busybox", "volumeMounts": [{"name": "data", "mountPath": "/d"}]}),
        ),
        "spec.containers[0].volumeMounts[0].name: no volume named \"data\" in spec.volumes",
    );
}

#[test]
fn volumes_rules() {
    let mount = json!([{"name": "data", "mountPath": "/d"}]);
    let t = ok(with_volume(
        mount.clone(),
        json!([{"name": "data", "cinder": {"size": 2, "autoRemove": "false"}}]),
    ));
    assert_eq!(
        t.volumes[0].source,
        VolumeSource::New {
            size_gib: 2,
            auto_remove: false
        }
    );
    let id = "0b5a3b0e-7d43-4c5e-9d5f-6b1c2d3e4f50";
    let t = ok(with_volume(
        mount.clone(),
        json!([{"name": "data", "cinder": {"volumeID": id, "autoRemove": true}, "extra": 1}]),
    ));
    assert_eq!(
        t.volumes[0].source,
        VolumeSource::Existing {
            volume_id: id.parse().unwrap()
        }
    );
    let cases = [
        (
            json!({}),
            "spec.volumes[0].cinder: must give size or volumeID",
        ),
        (
            json!({"size": 1, "volumeID": id}),
            "spec.volumes[0].cinder: must give either size or volumeID, not both",
        ),
        (
            json!({"volumeID": "abc"}),
            "spec.volumes[0].cinder.volumeID: must be a volume UUID (36 characters)",
        ),
        (
            json!({"volumeID": "0b5a3b0e7d434c5e9d5f6b1c2d3e4f50"}),
            "spec.volumes[0].cinder.volumeID: must be a volume UUID (36 characters)",
        ),
        (
            json!({"size": 0}),
            "spec.volumes[0].cinder.size: must be between 1 and 1024 GiB",
        ),
        (
            json!({"size": 1.5}),
            "spec.volumes[0].cinder.size: must be a whole number of GiB",
        ),
        (
            json!({"size": "big"}),
            "spec.volumes[0].cinder.size: must be an integer number of GiB (got string)",
        ),
        (
            json!({"size": 1, "type": "ssd"}),
            "spec.volumes[0].cinder.type: unexpected property",
        ),
        (
            json!({"size": 1, "autoRemove": "yes"}),
            "spec.volumes[0].cinder.autoRemove: must be true or false (got the string \"yes\")",
        ),
        (
            json!(null),
            "spec.volumes[0].cinder: must be an object (got null)",
        ),
    ];
    for (cinder, want) in cases {
        one_err(
            with_volume(mount.clone(), json!([{"name": "data", "cinder": cinder}])),
            want,
        );
    }
    one_err(
        with_volume(mount.clone(), json!([{"name": "data"}])),
        "spec.volumes[0].cinder: is a required property",
    );
    assert_eq!(
        errs(with_volume(
            mount.clone(),
            json!([
                {"name": "data", "cinder": {"size": 1}}, {"name": "data", "cinder": {"size": 1}}
            ])
        )),
        ["spec.volumes[1].name: duplicate volume name \"data\""]
    );
    one_err(
        with_volume(
            mount.clone(),
            json!([{"name": "data", "cinder": {"size": 1}}, {"name": "spare", "cinder": {"size": 1}}]),
        ),
        "spec.volumes[1].name: volume spare is not mounted by any container",
    );
    assert_eq!(
        errs(with_volume(mount, json!({}))),
        [
            "spec.containers[0].volumeMounts[0].name: no volume named \"data\" in spec.volumes",
            "spec.volumes: must be an array (got object)",
        ]
    );
}

#[test]
fn read_write_sharing() {
    let vols = json!([{"name": "data", "cinder": {"size": 1}}]);
    let rw = json!([{"name": "data", "mountPath": "/d"}]);
    let ro = json!([{"name": "data", "mountPath": "/d", "readOnly": true}]);
    let two = |a: &Value, b: &Value| {
        with_spec(json!({"containers": [
            {"image": "busybox", "volumeMounts": a}, {"image": "busybox", "volumeMounts": b}
        ], "volumes": vols}))
    };
    one_err(
        two(&rw, &rw),
        "spec.containers[1].volumeMounts[0]: volume data is mounted read-write by more than one container",
    );
    assert!(parse_template(&two(&rw, &ro), &limits()).is_ok());
    assert!(parse_template(&two(&ro, &ro), &limits()).is_ok());
    // An init container and an app container may both write (they never run together).
    let t = with_spec(json!({
        "initContainers": [{"image": "busybox", "volumeMounts": rw}, {"image": "busybox", "volumeMounts": rw}],
        "containers": [{"image": "busybox", "volumeMounts": rw}], "volumes": vols
    }));
    assert!(parse_template(&t, &limits()).is_ok());
    // Mounted only by an init container still counts as mounted.
    let t = with_spec(json!({
        "initContainers": [{"image": "busybox", "volumeMounts": rw}],
        "containers": [{"image": "busybox"}], "volumes": vols
    }));
    assert!(parse_template(&t, &limits()).is_ok());
}

#[test]
fn env_workdir_pull_policy_flags() {
    let t = ok(with_container(json!({
        "image": "busybox", "env": {"A": "1", "B": ""}, "workDir": "/srv", "imagePullPolicy": "IfNotPresent",
        "stdin": "false", "tty": "True"
    })));
    let c = &t.containers[0];
    assert_eq!(c.env["A"], "1");
    assert_eq!(c.work_dir.as_deref(), Some("/srv"));
    assert_eq!(c.image_pull_policy, Some(ImagePullPolicy::IfNotPresent));
    assert!(!c.stdin && c.tty);
    let t = ok(with_container(
        json!({"image": "busybox", "env": null, "workDir": null, "imagePullPolicy": null}),
    ));
    assert_eq!(t.containers[0].image_pull_policy, None);
    assert_eq!(
        errs(with_container(json!({
            "image": "busybox", "env": {"A": 1, "": "x", "B=C": "x", "D": "a\u{0}"}, "workDir": "srv",
            "imagePullPolicy": "sometimes", "stdin": "yes", "tty": 1
        }))),
        [
            "spec.containers[0].env.A: must be a string (got integer)",
            "spec.containers[0].env[\"\"]: environment variable names must not be empty",
            "spec.containers[0].env[\"B=C\"]: environment variable names must not contain '='",
            "spec.containers[0].env.D: must not contain NUL characters",
            "spec.containers[0].workDir: must be an absolute path",
            "spec.containers[0].imagePullPolicy: must be one of Always, IfNotPresent, Never",
            "spec.containers[0].stdin: must be true or false (got the string \"yes\")",
            "spec.containers[0].tty: must be true or false (got integer)",
        ]
    );
    one_err(
        with_container(json!({"image": "busybox", "env": ["A=1"]})),
        "spec.containers[0].env: must be an object or null (got array)",
    );
}

#[test]
fn security_groups() {
    assert_eq!(
        ok(with_spec(json!({"securityGroups": ["web", "db"]}))).security_groups,
        ["web", "db"]
    );
    assert_eq!(
        ok(with_spec(json!({"securityGroups": null}))).security_groups,
        ["default"]
    );
    one_err(
        with_spec(json!({"securityGroups": []})),
        "spec.securityGroups: must name at least one security group",
    );
    one_err(
        with_spec(json!({"securityGroups": ["a", "a"]})),
        "spec.securityGroups[1]: duplicate security group \"a\"",
    );
    one_err(
        with_spec(json!({"securityGroups": [""]})),
        "spec.securityGroups[0]: must be 1 to 255 characters long (got 0)",
    );
    one_err(
        with_spec(json!({"securityGroups": "default"})),
        "spec.securityGroups: must be an array (got string)",
    );
}

#[test]
fn errors_collected_in_document_order() {
    let t = json!({
        "kind": "pod", "metadata": {"name": "!"}, "extra": 1,
        "spec": {"containers": [{"image": "x"}, {"image": "busybox", "tty": "no"}]}
    });
    let e = errs(t);
    let paths: Vec<&str> = e
        .iter()
        .map(|s| s.split(':').next().unwrap_or(""))
        .collect();
    assert_eq!(
        paths,
        [
            "kind",
            "metadata.name",
            "extra",
            "spec.containers[0].image",
            "spec.containers[1].tty"
        ]
    );
}

#[test]
fn custom_limits_apply() {
    let l = Limits {
        max_cpu: 1.0,
        max_containers: 1,
        ..Limits::default()
    };
    let t = with_spec(json!({"containers": [
        {"image": "busybox", "resources": {"requests": {"cpu": 2}}}, {"image": "busybox"}
    ]}));
    let e = parse_template(&t, &l).unwrap_err();
    assert_eq!(
        e.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [
            "spec.containers: must have at most 1 containers (got 2)",
            "spec.containers[0].resources.requests.cpu: must be between 0.1 and 1",
        ]
    );
}

#[test]
fn termination_grace_period_is_seconds_up_to_an_hour() {
    let mut t = minimal();
    assert_eq!(ok(t.clone()).termination_grace_period_seconds, None);
    t["spec"]["terminationGracePeriodSeconds"] = json!(30);
    assert_eq!(ok(t.clone()).termination_grace_period_seconds, Some(30));
    t["spec"]["terminationGracePeriodSeconds"] = json!("0");
    assert_eq!(ok(t.clone()).termination_grace_period_seconds, Some(0));
    for bad in [json!(3601), json!(-1)] {
        t["spec"]["terminationGracePeriodSeconds"] = bad;
        one_err(
            t.clone(),
            "spec.terminationGracePeriodSeconds: must be 0..3600 (seconds)",
        );
    }
    t["spec"]["terminationGracePeriodSeconds"] = json!(true);
    assert_eq!(errs(t).len(), 1);
}

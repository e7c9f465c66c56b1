//! Every file in `examples/`, created as the README tells users to (`zun capsule-create -f`),
//! as demo: it reaches Running with each of its containers, shows its labels, containers and
//! address, gets the volumes it asks for, and is deleted leaving nothing on the host and no
//! volume behind. A new example is covered by being in the directory. Published host ports are
//! replaced by free ones, so an example never fails for a port another program holds.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use tempest::{
    examples_dir, free_port, host_leftovers, openstack, unique_name, wait_capsule, wait_gone, zun,
    CapsuleGuard, TemplateFile, User,
};

const LONG: Duration = Duration::from_secs(180);

/// demo's volumes (`openstack volume list --long -f json`).
fn volumes() -> Vec<Value> {
    let r = openstack(User::Demo, &["volume", "list", "--long", "-f", "json"]).ok();
    r.json().as_array().cloned().unwrap_or_default()
}

/// Replaces every `hostPort` in the template with a free port (adding no keys).
fn free_host_ports(v: &mut Value) {
    let Some(spec) = v.get_mut("spec") else {
        return;
    };
    for list in ["containers", "initContainers"] {
        let containers = spec.get_mut(list).and_then(Value::as_array_mut);
        for c in containers.into_iter().flatten() {
            let ports = c.get_mut("ports").and_then(Value::as_array_mut);
            for port in ports.into_iter().flatten() {
                if let Some(p) = port.get_mut("hostPort") {
                    *p = Value::from(free_port());
                }
            }
        }
    }
}

/// Creates `file`, checks it running as the file says, deletes it and checks the host.
fn run_example(file: &Path) {
    let stem = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("example");
    let name = unique_name(&format!("ex-{stem}"));
    let text = std::fs::read_to_string(file).expect("read example");
    let template: Value = serde_yaml::from_str(&text).expect("example is YAML");
    let wanted = template["spec"]["containers"]
        .as_array()
        .map_or(0, Vec::len);
    let wanted_volumes = template["spec"]["volumes"].as_array().map_or(0, Vec::len);
    let before = volumes().len();
    let tf = TemplateFile::edited(file, &name, free_host_ports);
    let _guard = CapsuleGuard {
        name: name.clone(),
        owner: User::Demo,
    };
    let r = zun(User::Demo, &["capsule-create", "-f", tf.arg()]);
    assert_eq!(r.code, Some(0), "{}: create: {r:?}", file.display());

    let what = "Running with every container Running";
    let c = wait_capsule(User::Demo, &name, what, LONG, |c| {
        let all = c["containers"].as_array().into_iter().flatten();
        c["status"] == "Running"
            && all.clone().count() == wanted
            && all.into_iter().all(|x| x["status"] == "Running")
    });
    let uuid = c["uuid"].as_str().expect("uuid").to_owned();
    let at = format!("example {} (capsule {name}, {uuid})", file.display());
    let labels = template["metadata"]["labels"].as_object();
    for (k, v) in labels.into_iter().flatten() {
        let shown = &c["labels"][k];
        let same = shown == v || shown.as_str() == Some(&v.to_string());
        assert!(same, "{at}: label {k} is {shown}, the file says {v}");
    }
    let address = c["addresses"].to_string();
    assert!(address.contains("10."), "{at}: no address: {address}");
    let mine: Vec<Value> = volumes()
        .into_iter()
        .filter(|v| v.to_string().contains(&uuid))
        .collect();
    assert_eq!(
        mine.len(),
        wanted_volumes,
        "{at}: volumes attached: {mine:?}"
    );
    for v in &mine {
        assert_eq!(v["Status"], "in-use", "{at}: {v}");
    }

    zun(User::Demo, &["capsule-delete", &name]).ok();
    wait_gone(User::Demo, &name, LONG);
    let left = host_leftovers(&uuid, Path::new("/run/netns"));
    assert!(left.is_empty(), "{at}: left on the host: {left:#?}");
    // Every example's volumes are autoRemove: they go with the capsule.
    let deadline = std::time::Instant::now() + LONG;
    while volumes().len() != before {
        assert!(
            std::time::Instant::now() < deadline,
            "{at}: its volumes stayed: {:?}",
            volumes()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn every_example_runs_as_written_and_is_deleted_clean() {
    let mut files: Vec<_> = std::fs::read_dir(examples_dir())
        .expect("examples/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    let names: Vec<_> = files.iter().filter_map(|f| f.file_name()).collect();
    assert!(
        names.len() >= 4,
        "examples/ should hold at least guide, minimal, volumes and web: {names:?}"
    );
    // One at a time: together they would compete for the published ports' firewall and the
    // 2 CPUs with the rest of the suite for no gain.
    for file in &files {
        run_example(file);
    }
}

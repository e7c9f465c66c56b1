//! Volumes as a new user meets them: the unchanged `openstack volume ...` commands against the
//! stack's block-storage API, and capsules that mount them on the compute host (sparse file,
//! loop device, ext4). Data outlives a capsule, a volume has one attacher, a read-only mount
//! refuses writes, an `autoRemove` volume goes with its capsule, and the host keeps no file,
//! mount or loop device of a volume that no longer exists, nor a mount of one no capsule uses.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tempest::{
    env, examples_dir, host_leftovers, openstack, unique_name, volume_leftovers, wait_gone,
    wait_status, zun, CapsuleGuard, TemplateFile, User,
};

const LONG: Duration = Duration::from_secs(120);

/// devstack's compute host keeps its volumes here.
fn volume_dir() -> PathBuf {
    PathBuf::from(env("ZUN_TEST_VOLUME_DIR"))
}

/// `openstack volume show ID -f json` as `user`, or `None` once it is gone (404).
fn volume_show(user: User, id: &str) -> Option<Value> {
    let r = openstack(user, &["volume", "show", id, "-f", "json"]);
    if r.code == Some(0) {
        return Some(r.json());
    }
    assert!(
        ["404", "No volume with a name or ID", "No Volume found"]
            .iter()
            .any(|m| r.stderr.contains(m)),
        "volume show {id}: {}",
        r.stderr
    );
    None
}

/// Waits until volume `id` has `status` (or is gone, for `None`).
fn wait_volume(user: User, id: &str, status: Option<&str>) -> Option<Value> {
    let deadline = Instant::now() + LONG;
    loop {
        let v = volume_show(user, id);
        if v.as_ref().map(|v| v["status"].as_str().unwrap_or_default()) == status {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "volume {id} never {status:?}: {v:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Deletes a volume when dropped (once its capsules are gone).
struct VolumeGuard(User, String);

impl Drop for VolumeGuard {
    fn drop(&mut self) {
        let deadline = Instant::now() + LONG;
        while openstack(self.0, &["volume", "delete", &self.1]).code != Some(0)
            && Instant::now() < deadline
            && volume_show(self.0, &self.1).is_some()
        {
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// Whether the volume is mounted on the host now.
fn mounted(id: &str) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .contains(id)
}

/// A template of a busybox capsule running `script` with volume `id` at /data.
fn capsule_with(prefix: &str, id: &str, read_only: bool, script: &str) -> (String, TemplateFile) {
    let name = unique_name(prefix);
    let file = TemplateFile::edited(&examples_dir().join("minimal.yaml"), &name, |v| {
        v["spec"] = json!({
            "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", script],
                "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": read_only}]}],
            "volumes": [{"name": "data", "cinder": {"volumeID": id}}],
        });
    });
    (name, file)
}

/// The logs of the capsule's first container, once they contain `want`.
fn logs_with(user: User, capsule: &Value, want: &str) -> String {
    let container = container_uuid(capsule);
    let deadline = Instant::now() + LONG;
    loop {
        let logs = zun(user, &["logs", &container]).ok().stdout;
        if logs.contains(want) {
            return logs;
        }
        assert!(
            Instant::now() < deadline,
            "container {container}: no {want:?} in its logs: {logs}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The uuid of the first container in `openstack capsule show`'s `containers` (objects, or
/// Python-style dict strings, depending on the client's version).
fn container_uuid(capsule: &Value) -> String {
    if let Some(id) = capsule["containers"][0]["uuid"].as_str() {
        return id.to_owned();
    }
    let text = capsule["containers"].to_string();
    let at = text.find("'uuid': '").expect("a container uuid") + "'uuid': '".len();
    text[at..at + 36].to_owned()
}

fn delete_capsule(user: User, name: &str, uuid: &str) {
    zun(user, &["capsule-delete", name]).ok();
    wait_gone(user, name, LONG);
    let left = host_leftovers(uuid, Path::new("/run/netns"));
    assert!(left.is_empty(), "capsule {name} left behind: {left:#?}");
}

#[test]
fn a_volume_keeps_its_data_across_capsules_has_one_attacher_and_read_only_refuses_writes() {
    let user = User::Demo;
    let vname = unique_name("data");
    let created = openstack(
        user,
        &["volume", "create", "--size", "1", &vname, "-f", "json"],
    )
    .ok()
    .json();
    let id = created["id"].as_str().expect("volume id").to_owned();
    let _vguard = VolumeGuard(user, id.clone());
    let v = wait_volume(user, &id, Some("available")).unwrap();
    assert_eq!((v["size"].as_u64(), &v["name"]), (Some(1), &json!(vname)));
    assert!(!mounted(&id), "an available volume is mounted");
    assert!(volume_dir().join(format!("{id}.img")).exists());
    let listed = openstack(user, &["volume", "list", "-f", "json"])
        .ok()
        .json();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["ID"] == id.as_str()),
        "{listed}"
    );

    // A capsule writes a file to it.
    let token = format!("data-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let (writer, file) = capsule_with(
        "vol-writer",
        &id,
        false,
        &format!("echo {token} > /data/file && sync && echo done && exec sleep infinity"),
    );
    let _g1 = CapsuleGuard {
        name: writer.clone(),
        owner: user,
    };
    zun(user, &["capsule-create", "-f", file.arg()]).ok();
    let running = wait_status(user, &writer, "Running", LONG);
    let writer_uuid = running["uuid"].as_str().unwrap().to_owned();
    logs_with(user, &running, "done");
    let v = wait_volume(user, &id, Some("in-use")).unwrap();
    assert!(v["attachments"].to_string().contains(&writer_uuid), "{v}");

    // One attacher: a second capsule asking for it is refused, naming it; and it cannot be
    // deleted while in use.
    let (second, file2) = capsule_with("vol-second", &id, false, "sleep infinity");
    let _g2 = CapsuleGuard {
        name: second.clone(),
        owner: user,
    };
    let refused = zun(user, &["capsule-create", "-f", file2.arg()]);
    assert_ne!(refused.code, Some(0), "{}", refused.stdout);
    assert!(
        refused.stderr.contains(&id) && refused.stderr.contains("in use"),
        "{}",
        refused.stderr
    );
    let r = openstack(user, &["capsule", "show", &second]);
    assert_ne!(r.code, Some(0), "the refused capsule exists: {}", r.stdout);
    let r = openstack(user, &["volume", "delete", &id]);
    assert_ne!(r.code, Some(0), "an in-use volume was deleted");
    assert!(r.stderr.contains("attached"), "{}", r.stderr);

    // Its capsule is deleted: the volume is available again, unmounted, its file kept.
    delete_capsule(user, &writer, &writer_uuid);
    wait_volume(user, &id, Some("available"));
    assert!(!mounted(&id), "volume still mounted after its capsule went");
    assert!(volume_dir().join(format!("{id}.img")).exists());

    // The next capsule mounts it read-only: it reads the file and cannot write.
    let (reader, file3) = capsule_with(
        "vol-reader",
        &id,
        true,
        "cat /data/file; touch /data/mine 2>&1 || echo write-refused; exec sleep infinity",
    );
    let _g3 = CapsuleGuard {
        name: reader.clone(),
        owner: user,
    };
    zun(user, &["capsule-create", "-f", file3.arg()]).ok();
    let running = wait_status(user, &reader, "Running", LONG);
    let logs = logs_with(user, &running, "write-refused");
    assert!(logs.contains(&token), "{logs}");
    assert!(logs.contains("Read-only file system"), "{logs}");
    delete_capsule(user, &reader, running["uuid"].as_str().unwrap());
    wait_volume(user, &id, Some("available"));

    // Deleted: nothing of it stays on the host.
    openstack(user, &["volume", "delete", &id]).ok();
    wait_volume(user, &id, None);
    let left = volume_leftovers(&volume_dir(), &[]);
    assert!(
        !left.iter().any(|l| l.contains(&id)),
        "volume {id} left: {left:#?}"
    );
}

#[test]
fn an_auto_remove_volume_goes_with_its_capsule_and_other_projects_cannot_use_volumes() {
    let user = User::Demo;
    let name = unique_name("volumes");
    let file = TemplateFile::renamed(&examples_dir().join("volumes.yaml"), &name);
    let _g = CapsuleGuard {
        name: name.clone(),
        owner: user,
    };
    zun(user, &["capsule-create", "-f", file.arg()]).ok();
    let running = wait_status(user, &name, "Running", LONG);
    let uuid = running["uuid"].as_str().unwrap().to_owned();
    let listed = openstack(user, &["volume", "list", "--long", "-f", "json"])
        .ok()
        .json();
    let mine: Vec<&Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v.to_string().contains(&uuid))
        .collect();
    assert_eq!(mine.len(), 1, "{listed}");
    let id = mine[0]["ID"].as_str().unwrap().to_owned();
    assert_eq!(mine[0]["Status"], "in-use");
    assert!(mounted(&id));

    // Another project sees nothing of it and cannot mount it.
    assert!(volume_show(User::AltDemo, &id).is_none());
    let (other, f2) = capsule_with("vol-other", &id, false, "sleep infinity");
    let _g2 = CapsuleGuard {
        name: other.clone(),
        owner: User::AltDemo,
    };
    let r = zun(User::AltDemo, &["capsule-create", "-f", f2.arg()]);
    assert_ne!(r.code, Some(0), "{}", r.stdout);
    assert!(r.stderr.contains("could not be found"), "{}", r.stderr);

    delete_capsule(user, &name, &uuid);
    wait_volume(user, &id, None);
    let left = volume_leftovers(&volume_dir(), &[]);
    assert!(
        !left.iter().any(|l| l.contains(&id)),
        "volume {id} left: {left:#?}"
    );
}

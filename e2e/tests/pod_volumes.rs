//! Volumes on a real pod host: API -> RabbitMQ -> zun-compute with the pod driver, volumes as
//! sparse files with ext4 on loop devices, bind-mounted into libcontainer containers. A capsule's
//! new volumes are made with it, mounted read-write or read-only as its containers ask, and
//! given back (data kept) or removed (`autoRemove`) with it; a volume made on its own is made
//! by its host over RPC and removed by it. The host is checked for files, mounts and loop
//! devices after every step. Needs root and a running devstack (containerd, registry).

use std::time::{Duration, Instant};

use capsule_types::rpc::{compute_queue, ComputeRequest, Envelope};
use db::volumes::{NewVolume, VolumeDeleted, VolumeScope};
use db::NewOutbox;
use e2e::pod::PodHost;
use e2e::{Stack, DEMO};
use serde_json::{json, Value};

const LONG: Duration = Duration::from_secs(120);

/// The compute client's delete of volume `id`, addressed once the database finds its host.
fn delete_message(stack: &Stack, id: &str) -> zun_api::compute::Unaddressed {
    let id = id.parse().expect("volume id");
    stack
        .state
        .compute
        .delete_volume(id, "req-pod-volumes")
        .expect("encode")
}

fn mounted(id: &str) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .contains(id)
}

/// The logs of container `name` of capsule `capsule`, once they contain `want`.
async fn logs_with(stack: &Stack, capsule: &Value, name: &str, want: &str) -> String {
    let c = capsule["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name}: {capsule}"));
    let uuid = c["uuid"].as_str().unwrap();
    let deadline = Instant::now() + LONG;
    loop {
        let text = stack.container_logs(uuid).await;
        if text.contains(want) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "container {name}: no {want:?} in its logs: {text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Volume `id`'s `(status, capsule)` in the database, or `None` once it is gone.
async fn volume(stack: &Stack, id: &str) -> Option<(String, Option<String>)> {
    stack
        .state
        .db
        .volume(VolumeScope::All, id)
        .await
        .unwrap()
        .map(|r| (r.volume.status, r.volume.capsule_uuid))
}

async fn wait_volume(stack: &Stack, id: &str, want: Option<&str>) {
    let deadline = Instant::now() + LONG;
    loop {
        let v = volume(stack, id).await;
        if v.as_ref().map(|(s, _)| s.as_str()) == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "volume {id} never {want:?}: {v:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Makes a 1 GiB volume of project demo on `host` through its host, as the block-storage API
/// does; its id once it is `available`.
async fn make_volume(stack: &Stack, host: &str) -> String {
    let id = uuid::Uuid::new_v4();
    let payload = serde_json::to_string(&Envelope::new(
        ComputeRequest::CreateVolume {
            volume: id,
            size_gib: 1,
        },
        None,
    ))
    .unwrap();
    let (_, ids) = stack
        .state
        .db
        .create_volume(
            NewVolume {
                id: id.to_string(),
                project_id: "demo".into(),
                user_id: "demo-user".into(),
                name: Some("own".into()),
                description: None,
                size_gib: 1,
                availability_zone: "nova".into(),
                metadata: json!({}),
                host: Some(host.into()),
            },
            Default::default(),
            Some(NewOutbox {
                routing_key: compute_queue(host),
                payload,
                capsule_uuid: None,
            }),
        )
        .await
        .unwrap()
        .unwrap();
    stack
        .state
        .dispatcher
        .as_ref()
        .unwrap()
        .publish_now(&ids)
        .await;
    let id = id.to_string();
    wait_volume(stack, &id, Some("available")).await;
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_are_made_mounted_as_asked_and_given_back_or_removed() {
    let stack = Stack::start().await;
    let host = PodHost::start(&stack, "p1").await;
    let token = format!("tok-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);

    // A capsule with two new volumes: `data` kept after it, `scratch` removed with it.
    let t = json!({"kind": "capsule", "metadata": {"name": "vols"}, "spec": {
        "containers": [
            {"name": "writer", "image": "busybox", "command": ["sh", "-c",
                format!("echo {token} > /data/f && touch /scratch/x && echo wrote; exec sleep 3600")],
             "volumeMounts": [{"name": "data", "mountPath": "/data"},
                              {"name": "scratch", "mountPath": "/scratch"}]},
            {"name": "reader", "image": "busybox", "command": ["sh", "-c",
                "until [ -s /data/f ]; do sleep 0.1; done; cat /data/f; touch /data/y 2>&1; echo tried; exec sleep 3600"],
             "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": true}]}],
        "volumes": [
            {"name": "data", "cinder": {"size": 1}},
            {"name": "scratch", "cinder": {"size": 1, "autoRemove": true}}]}});
    let first = stack.create_template(DEMO, &t).await;
    let running = stack.wait_status(&first, "Running", LONG).await;
    logs_with(&stack, &running, "writer", "wrote").await;
    let reader = logs_with(&stack, &running, "reader", "tried").await;
    assert!(reader.contains(&token), "{reader}");
    assert!(reader.contains("Read-only file system"), "{reader}");

    let on_host = stack.state.db.volumes_on_host("p1").await.unwrap();
    assert_eq!(on_host.len(), 2, "{on_host:?}");
    let data = on_host.iter().find(|v| !v.auto_remove).unwrap().id.clone();
    let scratch = on_host.iter().find(|v| v.auto_remove).unwrap().id.clone();
    for id in [&data, &scratch] {
        assert_eq!(
            volume(&stack, id).await,
            Some(("in-use".into(), Some(first.clone())))
        );
        assert!(mounted(id), "volume {id} not mounted while in use");
    }

    host.delete_and_check(&stack, &first).await;
    wait_volume(&stack, &data, Some("available")).await;
    assert_eq!(volume(&stack, &scratch).await, None);
    assert!(!mounted(&data), "an available volume is still mounted");
    let left = host.volume_leftovers(std::slice::from_ref(&data));
    assert!(left.is_empty(), "left on the host: {left:#?}");
    assert!(host.volume_dir().join(format!("{data}.img")).exists());

    // A volume made on its own (as the block-storage API makes it): its host makes it over RPC.
    let own = make_volume(&stack, "p1").await;
    assert!(host.volume_dir().join(format!("{own}.img")).exists());

    // The next capsule mounts both: the data written before is there.
    let t = json!({"kind": "capsule", "metadata": {"name": "again"}, "spec": {
        "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c",
            "cat /data/f; echo fresh > /own/f && cat /own/f; exec sleep 3600"],
            "volumeMounts": [{"name": "data", "mountPath": "/data"},
                             {"name": "own", "mountPath": "/own"}]}],
        "volumes": [{"name": "data", "cinder": {"volumeID": data}},
                    {"name": "own", "cinder": {"volumeID": own}}]}});
    let second = stack.create_template(DEMO, &t).await;
    let running = stack.wait_status(&second, "Running", LONG).await;
    let logs = logs_with(&stack, &running, "main", "fresh").await;
    assert!(logs.contains(&token), "{logs}");
    assert_eq!(
        volume(&stack, &own).await,
        Some(("in-use".into(), Some(second.clone())))
    );
    // In use: not deletable.
    assert!(matches!(
        stack
            .state
            .db
            .request_volume_delete(VolumeScope::Project("demo"), &own, |host| {
                delete_message(&stack, &own).to(host)
            })
            .await
            .unwrap(),
        VolumeDeleted::NotDeletable { .. }
    ));
    host.delete_and_check(&stack, &second).await;
    wait_volume(&stack, &own, Some("available")).await;

    // Deleted through its host: nothing of either volume is left.
    for id in [&data, &own] {
        let VolumeDeleted::Deleting(ids) = stack
            .state
            .db
            .request_volume_delete(VolumeScope::Project("demo"), id, |host| {
                delete_message(&stack, id).to(host)
            })
            .await
            .unwrap()
        else {
            panic!("volume {id} not deletable");
        };
        stack
            .state
            .dispatcher
            .as_ref()
            .unwrap()
            .publish_now(&ids)
            .await;
        wait_volume(&stack, id, None).await;
    }
    let left = host.volume_leftovers(&[]);
    assert!(left.is_empty(), "left on the host: {left:#?}");
    drop(host);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_create_gives_its_volumes_back_at_once() {
    let stack = Stack::start().await;
    let host = PodHost::start(&stack, "p2").await;
    let data = make_volume(&stack, "p2").await;
    // The volumes are mounted before the images are pulled: this one fails after that.
    let t = json!({"kind": "capsule", "metadata": {"name": "broken"}, "spec": {
        "containers": [{"image": "no-such-image-anywhere", "imagePullPolicy": "Always",
            "volumeMounts": [{"name": "data", "mountPath": "/data"},
                             {"name": "tmp", "mountPath": "/tmp"}]}],
        "volumes": [{"name": "data", "cinder": {"volumeID": data}},
                    {"name": "tmp", "cinder": {"size": 1, "autoRemove": true}}]}});
    let failed = stack.create_template(DEMO, &t).await;
    let shown = stack.wait_status(&failed, "Error", LONG).await;
    assert!(
        shown["status_reason"]
            .as_str()
            .unwrap_or_default()
            .contains("no-such-image-anywhere"),
        "{shown}"
    );
    wait_volume(&stack, &data, Some("available")).await;
    assert!(
        !mounted(&data),
        "the failed capsule's volume is still mounted"
    );
    let left = host.volume_leftovers(std::slice::from_ref(&data));
    assert!(left.is_empty(), "left on the host: {left:#?}");
    assert_eq!(
        stack.state.db.volumes_on_host("p2").await.unwrap().len(),
        1,
        "the autoRemove volume of the failed capsule is kept"
    );
    // Free for the next capsule at once, while the failed one is still there.
    let t = json!({"kind": "capsule", "metadata": {"name": "next"}, "spec": {
        "containers": [{"image": "busybox", "command": ["sh", "-c", "ls /data; exec sleep 3600"],
            "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
        "volumes": [{"name": "data", "cinder": {"volumeID": data}}]}});
    let next = stack.create_template(DEMO, &t).await;
    stack.wait_status(&next, "Running", LONG).await;
    host.delete_and_check(&stack, &failed).await;
    assert_eq!(
        volume(&stack, &data).await,
        Some(("in-use".into(), Some(next.clone())))
    );
    host.delete_and_check(&stack, &next).await;
    wait_volume(&stack, &data, Some("available")).await;
    drop(host);
    stack.stop().await;
}

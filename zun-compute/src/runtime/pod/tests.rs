//! The pod runtime's ordering and rollback, with the host parts' fakes: no root, no network.
//! A create is failed at each step in turn and exactly the steps done before it must be
//! undone, in reverse; a create that succeeds is then deleted, from the capsule's directory
//! alone, and nothing is left.

use std::path::PathBuf;
use std::sync::Arc;

use capsule_types::rpc::{CapsuleSpec, ContainerRef, VolumeRef};
use capsule_types::template::{
    CapsuleTemplate, ContainerSpec, PortSpec, VolumeMount, VolumeSource, VolumeSpec,
};
use capsule_types::CapsuleStatus;
use uuid::Uuid;

use super::*;
use crate::config::PodConfig;
use crate::firewall::fake::FakeFirewall;
use crate::image::fake::FakeImages;
use crate::layer::fake::FakeLayers;
use crate::network::fake::FakeNetwork;
use crate::recorder::Recorder;
use crate::shim::fake::FakeShims;
use crate::volume::fake::FakeVolumes;

struct World {
    calls: Recorder,
    dir: PathBuf,
    parts: Parts,
    firewall: Arc<FakeFirewall>,
    volumes: Arc<FakeVolumes>,
    network: Arc<FakeNetwork>,
    layers: Arc<FakeLayers>,
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn world() -> World {
    let dir = std::env::temp_dir().join(format!("zun-pod-unit-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let calls = Recorder::new();
    let network = Arc::new(FakeNetwork::new(calls.clone()));
    let firewall = Arc::new(FakeFirewall::new(calls.clone()));
    let volumes = Arc::new(FakeVolumes::new(calls.clone(), &dir.join("volumes")));
    let layers = Arc::new(FakeLayers::new(calls.clone(), &dir.join("layers")));
    let sg = SecurityGroups::new(
        firewall.clone(),
        &dir.join("firewall.json"),
        Some(network.clone()),
    );
    let parts = Parts {
        images: Arc::new(FakeImages::new(calls.clone())),
        network: network.clone(),
        shims: Arc::new(FakeShims::new(calls.clone())),
        volumes: volumes.clone(),
        firewall: Arc::new(sg),
        layers: layers.clone(),
    };
    World {
        calls,
        dir,
        parts,
        firewall,
        volumes,
        network,
        layers,
    }
}

impl World {
    /// A pod runtime over the world's parts (a new one is an agent restarted).
    fn runtime(&self) -> PodRuntime {
        PodRuntime::new(
            CapsuleDirs::new(&self.dir),
            PodConfig::default(),
            self.parts.clone(),
        )
        .unwrap()
    }

    /// The calls that make or unmake something (not the shim's status queries and watches).
    fn effects(&self) -> Vec<&'static str> {
        self.calls
            .names()
            .into_iter()
            .filter(|n| !matches!(*n, "shim.watch" | "shim.status"))
            .collect()
    }

    /// Nothing of any capsule is left: no directory, lease, volume or rule.
    fn assert_clean(&self, id: Uuid) {
        let dir = CapsuleDirs::new(&self.dir).dir(id);
        assert!(!dir.exists(), "{} is left", dir.display());
        assert!(
            self.network.leased_ips().unwrap().is_empty(),
            "a lease is left"
        );
        assert!(self.volumes.list().unwrap().is_empty(), "a volume is left");
        assert!(self.layers.list().is_empty(), "a writable layer is left");
        if let Some((_, local)) = self.firewall.in_force() {
            assert!(!local.contains_key(&id), "the capsule still has rules");
        }
    }
}

/// One app container publishing a port and mounting a new volume that goes with the capsule.
fn spec() -> CapsuleSpec {
    let mut c = ContainerSpec::new("busybox");
    c.name = Some("web".into());
    c.ports = vec![PortSpec {
        name: None,
        container_port: 80,
        host_port: Some(8080),
        protocol: Default::default(),
    }];
    c.volume_mounts = vec![VolumeMount {
        name: "data".into(),
        mount_path: "/data".into(),
        read_only: false,
    }];
    let volume = Uuid::new_v4();
    CapsuleSpec {
        uuid: Uuid::new_v4(),
        name: Some("t".into()),
        project_id: "p".into(),
        template: CapsuleTemplate {
            name: Some("t".into()),
            labels: Default::default(),
            annotations: None,
            availability_zone: None,
            restart_policy: Default::default(),
            termination_grace_period_seconds: None,
            init_containers: vec![],
            containers: vec![c],
            volumes: vec![VolumeSpec {
                name: "data".into(),
                source: VolumeSource::New {
                    size_gib: 1,
                    auto_remove: true,
                },
            }],
            security_groups: vec!["default".into()],
        },
        containers: vec![ContainerRef {
            uuid: Uuid::new_v4(),
            name: "web".into(),
            is_init: false,
            position: 0,
        }],
        volumes: vec![VolumeRef {
            name: "data".into(),
            id: volume,
            size_gib: 1,
            create: true,
            auto_remove: true,
        }],
    }
}

/// What a full create does, step by step, in order.
const MADE: &[&str] = &[
    "network.check_ports",
    "volume.create",
    "volume.attach",
    "layer.create",
    "image.ensure",
    "image.prepare_rootfs",
    "network.setup",
    "shim.spawn",
    "firewall.apply",
];

/// What the parts see of a create failing at `step`, up to its undo: the calls of the steps
/// before it and of its row, and the cleanup of the failed step itself.
fn made_until(step: Step) -> &'static [&'static str] {
    match step {
        Step::Ports | Step::Dir => &MADE[..1],
        // Its row partner, the layer, is made all the same.
        Step::Volumes => &[
            "network.check_ports",
            "volume.create",
            "volume.delete",
            "layer.create",
        ],
        Step::Layer => &[
            "network.check_ports",
            "volume.create",
            "volume.attach",
            "layer.create",
            "layer.remove",
        ],
        // Its row partner, the network, is set up all the same.
        Step::Rootfs => &[
            "network.check_ports",
            "volume.create",
            "volume.attach",
            "layer.create",
            "image.ensure",
            "network.setup",
        ],
        Step::Network | Step::Plan => &MADE[..7],
        Step::Shim => &[
            "network.check_ports",
            "volume.create",
            "volume.attach",
            "layer.create",
            "image.ensure",
            "image.prepare_rootfs",
            "network.setup",
            "shim.spawn",
            "shim.shutdown",
            "firewall.apply",
        ],
        Step::Firewall => MADE,
    }
}

/// The calls that undo each step (none: its undo touches only the capsule's directory).
fn undo_calls(step: Step) -> &'static [&'static str] {
    match step {
        Step::Ports | Step::Dir | Step::Plan => &[],
        Step::Volumes => &["volume.delete"],
        Step::Layer => &["layer.remove"],
        Step::Rootfs => &["image.release_rootfs"],
        // The address's rules go with it.
        Step::Network => &["network.teardown", "firewall.apply"],
        Step::Shim => &["shim.shutdown"],
        Step::Firewall => &["firewall.apply"],
    }
}

#[tokio::test]
async fn a_create_failing_at_each_step_undoes_exactly_the_steps_before_it_in_reverse() {
    let steps: Vec<Step> = CREATE.iter().flat_map(|row| row.iter().copied()).collect();
    for (k, &failing) in steps.iter().enumerate() {
        let w = world();
        let rt = w.runtime();
        let s = spec();
        let dir = CapsuleDirs::new(&w.dir).dir(s.uuid);
        // Make step `failing` fail at its first move; the steps of its row still run.
        match failing {
            Step::Ports => w.calls.fail("network.check_ports"),
            Step::Dir => {
                std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
                std::fs::write(&dir, b"not a directory").unwrap();
            }
            Step::Volumes => w.calls.fail("volume.create"),
            Step::Layer => w.calls.fail("layer.create"),
            Step::Rootfs => w.calls.fail("image.ensure"),
            Step::Network => w.calls.fail("network.setup"),
            Step::Plan => std::fs::create_dir_all(dir.join("plan.json")).unwrap(),
            Step::Shim => w.calls.fail("shim.spawn"),
            Step::Firewall => w.calls.fail("firewall.apply"),
        }
        let failed = rt.build(&s).await.expect_err("the create fails");
        assert_eq!(failed.step, failing, "{failing:?}");
        // A firewall that fails keeps failing: the network's undo cannot drop the address's
        // rules either (and the directory is kept for the next try).
        let undo_failed: Vec<Step> = failed.undo_errors.iter().map(|(s, _)| *s).collect();
        let broken_firewall = failing == Step::Firewall;
        assert_eq!(
            undo_failed,
            if broken_firewall {
                vec![Step::Network]
            } else {
                vec![]
            },
            "{failing:?}: {:?}",
            failed.undo_errors
        );

        // The steps done: those before it, and the others of its row.
        let row = CREATE.iter().find(|r| r.contains(&failing)).unwrap();
        let done: Vec<Vec<Step>> = CREATE[..CREATE.iter().position(|r| r == row).unwrap()]
            .iter()
            .map(|r| r.to_vec())
            .chain(std::iter::once(
                row.iter().copied().filter(|s| *s != failing).collect(),
            ))
            .collect();
        let expected: Vec<Step> = done
            .iter()
            .rev()
            .flatten()
            .copied()
            .filter(|s| !matches!(s, Step::Ports | Step::Plan))
            .collect();
        assert_eq!(failed.undone, expected, "failing at {failing:?} (step {k})");

        // The parts saw the create up to the failure (and what the failed step cleaned up of
        // itself), then the undos of exactly the steps done, in that order.
        let mut wanted: Vec<&str> = made_until(failing).to_vec();
        wanted.extend(expected.iter().flat_map(|s| undo_calls(*s)));
        assert_eq!(w.effects(), wanted, "failing at {failing:?}");

        if failing == Step::Dir {
            std::fs::remove_file(&dir).unwrap();
        }
        if broken_firewall {
            assert!(dir.exists(), "kept after a failed undo");
            w.calls.heal("firewall.apply");
            rt.teardown(s.uuid).await.expect("the next try");
        }
        w.assert_clean(s.uuid);
    }
}

#[tokio::test]
async fn a_create_that_succeeds_is_deleted_whole_and_a_delete_again_is_fine() {
    let w = world();
    let rt = w.runtime();
    let s = spec();
    let state = rt.create(&s).await.expect("create");
    assert_eq!(state.status, CapsuleStatus::Running);
    assert_eq!(state.containers[0].status, CapsuleStatus::Running);
    assert_eq!(state.addresses["fake"][0]["addr"], "10.88.0.2");
    assert_eq!(w.effects(), MADE);
    let (_, local) = w.firewall.in_force().unwrap();
    assert!(local.contains_key(&s.uuid), "the capsule got its rules");
    // The plan mounts the volume where the template says.
    let plan = crate::shim::Plan::load(&CapsuleDirs::new(&w.dir).dir(s.uuid)).unwrap();
    assert_eq!(plan.containers[0].mounts[0].destination, "/data");
    assert_eq!(
        plan.netns.as_deref(),
        Some(std::path::Path::new(&format!("/run/netns/fake-{}", s.uuid)))
    );
    // Every capsule is bounded, and its containers write to its layer.
    assert_eq!(plan.limits, Bounds::default().shim);
    assert_eq!(plan.limits.pids_max, Some(2048));
    assert!(!plan.containers[0].net_raw);
    let writable = w.dir.join("layers").join(s.uuid.to_string());
    assert!(
        writable.join(&plan.containers[0].name).is_dir(),
        "the rootfs was prepared on the layer"
    );

    w.calls.clear();
    rt.delete(s.uuid).await.expect("delete");
    assert_eq!(
        w.effects(),
        [
            "shim.shutdown",
            "network.teardown",
            "firewall.apply",
            "firewall.apply",
            "volume.delete",
            "image.release_rootfs",
            "layer.remove",
        ]
    );
    w.assert_clean(s.uuid);
    rt.delete(s.uuid)
        .await
        .expect("a delete of a deleted capsule");
    w.assert_clean(s.uuid);
}

#[tokio::test]
async fn a_restarted_agent_tears_down_from_the_capsule_directory_alone() {
    let w = world();
    let s = spec();
    w.runtime().create(&s).await.expect("create");
    // Another runtime over the same directory knows nothing of the create but what is there.
    let again = w.runtime();
    w.calls.clear();
    again.delete(s.uuid).await.expect("delete");
    assert!(w.effects().contains(&"image.release_rootfs"));
    assert!(w.effects().contains(&"volume.delete"));
    w.assert_clean(s.uuid);
}

#[tokio::test]
async fn a_half_made_capsule_is_torn_down_too() {
    let w = world();
    let rt = w.runtime();
    let s = spec();
    // What an agent killed right after recording the volumes leaves.
    let dir = CapsuleDirs::new(&w.dir).dir(s.uuid);
    std::fs::create_dir_all(dir.join("rootfs")).unwrap();
    std::fs::write(
        dir.join("volumes.json"),
        serde_json::to_vec(&s.volumes).unwrap(),
    )
    .unwrap();
    rt.delete(s.uuid).await.expect("delete of a partial create");
    assert!(w.effects().contains(&"volume.delete"));
    w.assert_clean(s.uuid);
}

#[tokio::test]
async fn a_failed_teardown_keeps_the_directory_and_says_what_failed() {
    let w = world();
    let rt = w.runtime();
    let s = spec();
    rt.create(&s).await.expect("create");
    w.calls.fail("shim.shutdown");
    let e = rt
        .teardown(s.uuid)
        .await
        .expect_err("the shim does not stop");
    assert_eq!(e.errors.len(), 1, "{e}");
    assert!(e.to_string().contains("containers: "), "{e}");
    assert!(
        !w.effects().contains(&"volume.delete"),
        "volumes stay while processes may use them"
    );
    assert!(
        CapsuleDirs::new(&w.dir).dir(s.uuid).exists(),
        "kept for the next try"
    );
    w.calls.heal("shim.shutdown");
    rt.teardown(s.uuid).await.expect("the next try");
    w.assert_clean(s.uuid);
}

#[tokio::test]
async fn a_failed_step_gives_its_own_words_as_the_reason() {
    let w = world();
    let rt = w.runtime();
    let s = spec();
    w.calls.fail("volume.attach");
    let e = RuntimeDriver::create(&rt, &s).await.expect_err("fails");
    let reason = crate::chain::chain(&e);
    assert!(
        reason.starts_with(&format!("volume data ({}): ", s.volumes[0].id)),
        "{reason}"
    );
    assert!(
        reason.ends_with("injected failure of volume.attach"),
        "{reason}"
    );
    w.assert_clean(s.uuid);
}

#[tokio::test]
async fn without_a_layer_bound_no_layer_is_made_and_net_raw_reaches_the_plan() {
    let w = world();
    let rt = w.runtime().with_bounds(Bounds {
        layer_bytes: 0,
        ..Bounds::default()
    });
    let mut s = spec();
    s.template.containers[0].security_context = Some(capsule_types::template::SecurityContext {
        capabilities: capsule_types::template::Capabilities {
            add: vec![capsule_types::template::Capability::NetRaw],
        },
    });
    rt.create(&s).await.expect("create");
    assert!(!w.effects().contains(&"layer.create"), "{:?}", w.effects());
    let plan = crate::shim::Plan::load(&CapsuleDirs::new(&w.dir).dir(s.uuid)).unwrap();
    assert!(plan.containers[0].net_raw);
    rt.delete(s.uuid).await.expect("delete");
    w.assert_clean(s.uuid);
}

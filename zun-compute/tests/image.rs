//! The image module against the real containerd and registry devstack sets up: pulls through
//! a mirror, pull policies, archive imports, rootfs mounts, clear errors and concurrent
//! ensures. Each test works in a containerd namespace of its own and removes it at the end.
//! Needs root (mounts) and `devstack/stack.sh` run on this host.

mod image_support;

use std::collections::HashMap;
use std::time::Instant;

use containerd_client::services::v1::{
    content_client::ContentClient, leases_client::LeasesClient, InfoRequest, ListRequest,
};
use containerd_client::tonic::Request;
use containerd_client::with_namespace;
use image_support::{content, mounted, remove_snapshot, snapshots, Fixture};
use zun_compute::image::{ImageError, ImageStore, PullPolicy};

const BUSYBOX: &str = "docker.io/library/busybox:latest";

async fn labels(f: &Fixture, digest: &str) -> HashMap<String, String> {
    let ns = f.namespace.as_str();
    let req = InfoRequest {
        digest: digest.to_owned(),
    };
    ContentClient::new(f.channel().await)
        .info(with_namespace!(req, ns))
        .await
        .unwrap()
        .into_inner()
        .info
        .unwrap()
        .labels
}

async fn leases(f: &Fixture) -> usize {
    let ns = f.namespace.as_str();
    LeasesClient::new(f.channel().await)
        .list(with_namespace!(ListRequest { filters: vec![] }, ns))
        .await
        .unwrap()
        .into_inner()
        .leases
        .len()
}

#[tokio::test]
async fn pulls_busybox_through_the_mirror_and_mounts_a_writable_rootfs() {
    let f = Fixture::new("pull-mount");
    f.docker_io_mirror();
    let store = f.store().await;

    let t = Instant::now();
    let img = store
        .ensure("busybox", PullPolicy::IfNotPresent)
        .await
        .unwrap();
    eprintln!("timing: pull+unpack of busybox: {:?}", t.elapsed());
    assert_eq!(img.name, BUSYBOX);
    assert!(img.manifest_digest.starts_with("sha256:"), "{img:?}");
    assert!(img.chain_id.starts_with("sha256:"), "{img:?}");
    assert_eq!(img.config.cmd, ["sh"]);
    assert_eq!(img.config.process_args(None, None).unwrap(), ["sh"]);

    // What keeps it from containerd's GC: manifest -> config and layers, config -> snapshot.
    let m = labels(&f, &img.manifest_digest).await;
    let config = m
        .get("containerd.io/gc.ref.content.config")
        .expect("manifest labels its config")
        .clone();
    let layer = m
        .get("containerd.io/gc.ref.content.l.0")
        .expect("manifest labels its layer")
        .clone();
    assert_eq!(
        labels(&f, &config)
            .await
            .get("containerd.io/gc.ref.snapshot.overlayfs"),
        Some(&img.chain_id)
    );
    assert!(labels(&f, &layer)
        .await
        .contains_key("containerd.io/uncompressed"));
    assert_eq!(leases(&f).await, 0, "the pull lease is gone");
    assert_eq!(store.get("busybox").await.unwrap(), Some(img.clone()));

    let target = f.target("app");
    let t = Instant::now();
    store
        .prepare_rootfs("capsule-test-app", &img, &target)
        .await
        .unwrap();
    eprintln!("timing: prepare_rootfs: {:?}", t.elapsed());
    assert!(mounted(&target), "{} is a mount point", target.display());
    assert!(target.join("bin/busybox").is_file());
    std::fs::write(target.join("tmp-written-by-test"), b"hi").expect("rootfs is writable");
    // Again: already mounted is fine, and the written file is still there.
    store
        .prepare_rootfs("capsule-test-app", &img, &target)
        .await
        .unwrap();
    assert!(target.join("tmp-written-by-test").is_file());

    // A second rootfs of the same image does not see the first one's writes.
    let other = f.target("other");
    store
        .prepare_rootfs("capsule-test-other", &img, &other)
        .await
        .unwrap();
    assert!(other.join("bin/busybox").is_file());
    assert!(!other.join("tmp-written-by-test").exists());

    let t = Instant::now();
    store
        .release_rootfs("capsule-test-app", &target)
        .await
        .unwrap();
    eprintln!("timing: release_rootfs: {:?}", t.elapsed());
    store
        .release_rootfs("capsule-test-other", &other)
        .await
        .unwrap();
    assert!(!mounted(&target) && !target.exists());
    assert!(!mounted(&other) && !other.exists());
}

#[tokio::test]
async fn if_not_present_stays_local_and_always_pulls() {
    let f = Fixture::new("policies");
    f.docker_io_mirror();
    let store = f.store().await;
    let first = store.ensure("busybox", PullPolicy::Always).await.unwrap();

    // Every host of docker.io is now dead.
    let dead = "http://127.0.0.1:9";
    f.hosts("docker.io", dead, &[dead]);
    let t = Instant::now();
    let again = store
        .ensure("docker.io/library/busybox", PullPolicy::IfNotPresent)
        .await
        .unwrap();
    eprintln!("timing: ensure of a present image: {:?}", t.elapsed());
    assert_eq!(again, first);
    assert_eq!(
        store.ensure("busybox", PullPolicy::Never).await.unwrap(),
        first
    );

    let e = store
        .ensure("busybox", PullPolicy::Always)
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, ImageError::Unavailable { .. }), "{e:?}");
    assert!(
        msg.starts_with(&format!("cannot pull image {BUSYBOX}: {dead}: unreachable")),
        "{msg}"
    );
    assert!(store.pull("busybox").await.is_err());
    // The failed pulls did not remove what the host has.
    assert_eq!(store.get("busybox").await.unwrap(), Some(first));
}

#[tokio::test]
async fn never_fails_on_an_absent_image() {
    let f = Fixture::new("never");
    f.docker_io_mirror();
    let store = f.store().await;
    let e = store
        .ensure("busybox", PullPolicy::Never)
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "image docker.io/library/busybox:latest is not on this host and imagePullPolicy is Never"
    );
    assert!(e.is_not_found());
    assert_eq!(store.get("busybox").await.unwrap(), None);
}

#[tokio::test]
async fn imports_oci_layout_and_docker_save_archives() {
    let f = Fixture::new("import");
    // No registry at all: imports must not need one.
    f.hosts("docker.io", "http://127.0.0.1:9", &[]);
    let store = f.store().await;

    let t = Instant::now();
    let oci = store
        .import(&f.images_dir.join("busybox.oci.tar"))
        .await
        .unwrap();
    eprintln!("timing: import of busybox.oci.tar: {:?}", t.elapsed());
    assert_eq!(oci.len(), 1, "{oci:?}");
    assert_eq!(oci[0].name, BUSYBOX);
    assert_eq!(oci[0].config.cmd, ["sh"]);
    assert_eq!(
        store.ensure("busybox", PullPolicy::Never).await.unwrap(),
        oci[0]
    );
    let target = f.target("oci");
    store
        .prepare_rootfs("capsule-test-oci", &oci[0], &target)
        .await
        .unwrap();
    assert!(target.join("bin/busybox").is_file());
    store
        .release_rootfs("capsule-test-oci", &target)
        .await
        .unwrap();

    let t = Instant::now();
    let docker = store
        .import(&f.images_dir.join("busybox.docker.tar"))
        .await
        .unwrap();
    eprintln!("timing: import of busybox.docker.tar: {:?}", t.elapsed());
    assert_eq!(docker.len(), 1, "{docker:?}");
    assert_eq!(docker[0].name, BUSYBOX);
    // Same layer content, so the same snapshot chain, whatever the archive's format.
    assert_eq!(docker[0].chain_id, oci[0].chain_id);
    assert_eq!(docker[0].config, oci[0].config);
    let target = f.target("docker");
    store
        .prepare_rootfs("capsule-test-docker", &docker[0], &target)
        .await
        .unwrap();
    assert!(target.join("bin/busybox").is_file());
    store
        .release_rootfs("capsule-test-docker", &target)
        .await
        .unwrap();

    // Importing again is fine.
    assert_eq!(
        store
            .import(&f.images_dir.join("busybox.docker.tar"))
            .await
            .unwrap(),
        docker
    );
    let e = store
        .import(&f.dir.join("certs.d/docker.io/hosts.toml"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("hosts.toml"), "{e}");
}

#[tokio::test]
async fn bogus_references_fail_clearly() {
    let f = Fixture::new("bogus");
    f.docker_io_mirror();
    let store = f.store().await;

    let e = store
        .ensure("Not A Reference!", PullPolicy::IfNotPresent)
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("invalid image reference \"Not A Reference!\""),
        "{e}"
    );

    // On the test registry itself: one host, which has no such image.
    let missing = format!("{}/library/nosuch:1", f.registry);
    let e = store
        .ensure(&missing, PullPolicy::IfNotPresent)
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "cannot pull image {missing}: not found in any of {}",
            f.registry_url()
        )
    );
    assert!(e.is_not_found());

    // Through the docker.io mirror: every host tried is named.
    let e = store
        .ensure("nosuch", PullPolicy::IfNotPresent)
        .await
        .unwrap_err();
    let msg = e.to_string();
    eprintln!("error for nosuch: {msg}");
    assert!(
        msg.starts_with(&format!(
            "cannot pull image docker.io/library/nosuch:latest: {}",
            f.registry_url()
        )),
        "{msg}"
    );
    assert!(msg.contains("https://registry-1.docker.io"), "{msg}");
    assert!(
        msg.contains(&format!("{}: not found", f.registry_url())),
        "{msg}"
    );
}

#[tokio::test]
async fn concurrent_ensures_of_one_image_all_succeed() {
    let f = Fixture::new("concurrent");
    f.docker_io_mirror();
    let a = f.store().await;
    // Another store shares no lock with `a`: containerd's AlreadyExists must be handled.
    let b = f.store().await;
    let a2 = a.clone();
    let (x, y, z) = tokio::join!(
        a.ensure("busybox", PullPolicy::IfNotPresent),
        a2.ensure("busybox", PullPolicy::Always),
        b.ensure("busybox:latest", PullPolicy::IfNotPresent),
    );
    let (x, y, z) = (x.unwrap(), y.unwrap(), z.unwrap());
    assert_eq!(x, y);
    assert_eq!(x, z);

    // And two rootfs from them at once.
    let (t1, t2) = (f.target("one"), f.target("two"));
    let (r1, r2) = tokio::join!(
        a.prepare_rootfs("capsule-c-one", &x, &t1),
        b.prepare_rootfs("capsule-c-two", &z, &t2),
    );
    r1.unwrap();
    r2.unwrap();
    assert!(t1.join("bin/busybox").is_file() && t2.join("bin/busybox").is_file());
    a.release_rootfs("capsule-c-one", &t1).await.unwrap();
    b.release_rootfs("capsule-c-two", &t2).await.unwrap();
}

#[tokio::test]
async fn release_rootfs_is_idempotent_and_leaves_no_mount() {
    let f = Fixture::new("release");
    f.docker_io_mirror();
    let store = f.store().await;
    let target = f.target("x");
    // Nothing there yet: fine.
    store.release_rootfs("capsule-r-x", &target).await.unwrap();

    let img = store
        .ensure("busybox", PullPolicy::IfNotPresent)
        .await
        .unwrap();
    store
        .prepare_rootfs("capsule-r-x", &img, &target)
        .await
        .unwrap();
    // Busy: a process has its cwd in the rootfs. The unmount falls back to a lazy one.
    let busy = std::process::Command::new("sleep")
        .arg("30")
        .current_dir(&target)
        .spawn()
        .unwrap();
    let r = store.release_rootfs("capsule-r-x", &target).await;
    let mut busy = busy;
    let _ = busy.kill();
    let _ = busy.wait();
    r.unwrap();
    assert!(!mounted(&target));
    store.release_rootfs("capsule-r-x", &target).await.unwrap();
    assert!(!mounted(&target));
    assert!(!target.exists());

    // The image is still usable afterwards.
    store
        .prepare_rootfs("capsule-r-x", &img, &target)
        .await
        .unwrap();
    assert!(target.join("bin/busybox").is_file());
    store.release_rootfs("capsule-r-x", &target).await.unwrap();
}

#[tokio::test]
async fn pulls_a_multi_layer_image_by_its_registry_name() {
    let f = Fixture::new("nginx");
    let store = f.store().await;
    let name = format!("{}/library/nginx:latest", f.registry);
    let t = Instant::now();
    let img = store.ensure(&name, PullPolicy::IfNotPresent).await.unwrap();
    eprintln!("timing: pull+unpack of nginx: {:?}", t.elapsed());
    assert_eq!(img.name, name);
    assert!(!img.config.process_args(None, None).unwrap().is_empty());
    let target = f.target("nginx");
    store
        .prepare_rootfs("capsule-n-web", &img, &target)
        .await
        .unwrap();
    assert!(
        target.join("usr/sbin/nginx").exists(),
        "nginx binary in the rootfs"
    );
    store
        .release_rootfs("capsule-n-web", &target)
        .await
        .unwrap();
    store.remove(&name).await.unwrap();
    assert_eq!(store.get(&name).await.unwrap(), None);
    store.remove(&name).await.unwrap();
}

#[tokio::test]
async fn gc_keeps_what_images_and_rootfs_use_and_collects_the_rest() {
    let f = Fixture::new("gc");
    f.docker_io_mirror();
    let store = f.store().await;
    let busybox = store
        .ensure("busybox", PullPolicy::IfNotPresent)
        .await
        .unwrap();
    let target = f.target("kept");
    store
        .prepare_rootfs("capsule-gc-kept", &busybox, &target)
        .await
        .unwrap();
    let blobs = content(&f).await;
    let snaps = snapshots(&f).await;
    assert_eq!(blobs.len(), 3, "manifest, config, layer: {blobs:?}");
    assert!(snaps.contains(&(busybox.chain_id.clone(), String::new(), true)));
    assert!(snaps.contains(&("capsule-gc-kept".into(), busybox.chain_id.clone(), false)));

    // Another image comes and goes; its removal runs containerd's GC synchronously.
    let nginx = format!("{}/library/nginx:latest", f.registry);
    let n = store
        .ensure(&nginx, PullPolicy::IfNotPresent)
        .await
        .unwrap();
    assert!(snapshots(&f).await.iter().any(|s| s.0 == n.chain_id));
    store.remove(&nginx).await.unwrap();

    assert_eq!(content(&f).await, blobs, "only busybox's blobs are left");
    assert_eq!(
        snapshots(&f).await,
        snaps,
        "only busybox's snapshots are left"
    );
    assert!(target.join("bin/busybox").is_file());
    store
        .release_rootfs("capsule-gc-kept", &target)
        .await
        .unwrap();
}

#[tokio::test]
async fn if_not_present_unpacks_again_from_local_content() {
    let f = Fixture::new("reunpack");
    f.docker_io_mirror();
    let store = f.store().await;
    let img = store
        .ensure("busybox", PullPolicy::IfNotPresent)
        .await
        .unwrap();
    remove_snapshot(&f, &img.chain_id).await;
    assert!(snapshots(&f).await.is_empty());

    let dead = "http://127.0.0.1:9";
    f.hosts("docker.io", dead, &[dead]);
    let again = store
        .ensure("busybox", PullPolicy::IfNotPresent)
        .await
        .unwrap();
    assert_eq!(again, img);
    assert_eq!(
        snapshots(&f).await,
        [(img.chain_id.clone(), String::new(), true)]
    );
}

#[tokio::test]
async fn connect_names_a_missing_socket() {
    let cfg = zun_compute::image::ImageConfig {
        containerd_socket: "/nonexistent/containerd.sock".into(),
        ..Default::default()
    };
    let e = ImageStore::connect(&cfg).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("cannot connect to containerd at /nonexistent/containerd.sock"),
        "{e}"
    );
}

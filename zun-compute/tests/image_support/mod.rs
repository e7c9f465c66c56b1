//! A fixture for the image tests: the containerd, registry and image archives devstack set up
//! (from `ZUN_TEST_CONTAINERD_SOCKET`, `ZUN_TEST_REGISTRY`, `ZUN_TEST_IMAGES_DIR`), a containerd
//! namespace of its own and a scratch directory (certs dir, mount points). Dropping it
//! unmounts whatever is still mounted under the scratch directory and deletes everything in
//! the namespace (images, leases, snapshots, content) and the namespace itself, even when the
//! test failed.

use std::path::{Path, PathBuf};

use containerd_client::services::v1::snapshots::{
    snapshots_client::SnapshotsClient, ListSnapshotsRequest, RemoveSnapshotRequest,
};
use containerd_client::services::v1::{
    content_client::ContentClient, images_client::ImagesClient, leases_client::LeasesClient,
    namespaces_client::NamespacesClient, DeleteContentRequest, DeleteImageRequest,
    DeleteNamespaceRequest, DeleteRequest, ListContentRequest, ListImagesRequest, ListRequest,
};
use containerd_client::tonic::transport::Channel;
use containerd_client::tonic::Request;
use containerd_client::with_namespace;
use test_support::{env_or, mount_points};
use zun_compute::image::{ImageConfig, ImageStore};

/// The environment and one test's namespace and scratch directory.
pub struct Fixture {
    /// containerd's socket.
    pub socket: PathBuf,
    /// The test registry, `host:port`.
    pub registry: String,
    /// Where `busybox.oci.tar` and `busybox.docker.tar` are.
    pub images_dir: PathBuf,
    /// This test's containerd namespace.
    pub namespace: String,
    /// This test's scratch directory.
    pub dir: PathBuf,
}

impl Fixture {
    /// Checks the environment (failing, never skipping, when devstack has not set it up) and
    /// makes a namespace and a scratch directory.
    pub fn new(test: &str) -> Self {
        // RUST_LOG=zun_compute=debug shows what the store does.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let socket = PathBuf::from(env_or(
            "ZUN_TEST_CONTAINERD_SOCKET",
            "/opt/capsule/run/containerd/containerd.sock",
        ));
        assert!(
            socket.exists(),
            "containerd socket {} is missing: run devstack/stack.sh (or set \
             ZUN_TEST_CONTAINERD_SOCKET)",
            socket.display()
        );
        let registry = env_or("ZUN_TEST_REGISTRY", "127.0.0.1:5100");
        assert!(
            std::net::TcpStream::connect(&registry).is_ok(),
            "test registry {registry} does not answer: run devstack/stack.sh (or set \
             ZUN_TEST_REGISTRY)"
        );
        let images_dir = PathBuf::from(env_or("ZUN_TEST_IMAGES_DIR", "/opt/capsule/images"));
        let id = uuid::Uuid::new_v4().simple().to_string();
        let namespace = format!("test-{}-{}", test.replace('_', "-"), &id[..12]);
        let dir = std::env::temp_dir().join(format!("zun-image-{namespace}"));
        std::fs::create_dir_all(dir.join("certs.d")).unwrap();
        Self {
            socket,
            registry,
            images_dir,
            namespace,
            dir,
        }
    }

    /// The registry's URL.
    pub fn registry_url(&self) -> String {
        format!("http://{}", self.registry)
    }

    /// An image configuration for this namespace and certs dir.
    pub fn config(&self) -> ImageConfig {
        ImageConfig {
            containerd_socket: self.socket.clone(),
            namespace: self.namespace.clone(),
            snapshotter: "overlayfs".into(),
            certs_dir: Some(self.dir.join("certs.d")),
            insecure_registries: vec![],
        }
    }

    /// A store on this namespace.
    pub async fn store(&self) -> ImageStore {
        ImageStore::connect(&self.config()).await.unwrap()
    }

    /// Writes `certs.d/<registry>/hosts.toml` with `server` and mirror `hosts`.
    pub fn hosts(&self, registry: &str, server: &str, hosts: &[&str]) {
        let d = self.dir.join("certs.d").join(registry);
        std::fs::create_dir_all(&d).unwrap();
        let mut text = format!("server = \"{server}\"\n");
        for h in hosts {
            text.push_str(&format!(
                "\n[host.\"{h}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
            ));
        }
        std::fs::write(d.join("hosts.toml"), text).unwrap();
    }

    /// `docker.io` served by the test registry first, Docker Hub then (as devstack does).
    pub fn docker_io_mirror(&self) {
        self.hosts(
            "docker.io",
            "https://registry-1.docker.io",
            &[&self.registry_url()],
        );
    }

    /// A mount point under the scratch directory.
    pub fn target(&self, name: &str) -> PathBuf {
        self.dir.join("rootfs").join(name)
    }

    /// A channel to containerd, for looking behind the store's back.
    pub async fn channel(&self) -> Channel {
        containerd_client::connect(&self.socket).await.unwrap()
    }
}

/// Whether `path` is a mount point now.
pub fn mounted(path: &Path) -> bool {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let p = path.to_string_lossy().replace(' ', "\\040");
    text.lines()
        .any(|l| l.split(' ').nth(4) == Some(p.as_str()))
}

/// Mount points at or under `dir`, deepest first.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = mount_points()
        .into_iter()
        .filter(|p| p.starts_with(dir))
        .collect();
    v.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    v
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for m in mounts_under(&self.dir) {
            if let Err(e) = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH) {
                eprintln!("cleanup: cannot unmount {}: {e}", m.display());
            }
        }
        let (socket, ns) = (self.socket.clone(), self.namespace.clone());
        // The test's runtime may be gone or busy: clean up on a runtime of our own.
        let cleaned = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(clean_namespace(&socket, &ns))
        })
        .join();
        if let Ok(Err(e)) = cleaned {
            eprintln!("cleanup of namespace {}: {e}", self.namespace);
        }
        if mounts_under(&self.dir).is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Deletes everything in containerd namespace `ns`, then `ns`.
pub async fn clean_namespace(socket: &Path, ns: &str) -> Result<(), String> {
    let ch = containerd_client::connect(socket)
        .await
        .map_err(|e| e.to_string())?;
    let e = |s: containerd_client::tonic::Status| s.message().to_owned();

    let mut images = ImagesClient::new(ch.clone());
    let list = images
        .list(with_namespace!(ListImagesRequest { filters: vec![] }, ns))
        .await
        .map_err(e)?
        .into_inner()
        .images;
    for i in list {
        let req = DeleteImageRequest {
            name: i.name,
            sync: true,
            target: None,
        };
        let _ = images.delete(with_namespace!(req, ns)).await;
    }

    let mut leases = LeasesClient::new(ch.clone());
    let list = leases
        .list(with_namespace!(ListRequest { filters: vec![] }, ns))
        .await
        .map_err(e)?
        .into_inner()
        .leases;
    for l in list {
        let req = DeleteRequest {
            id: l.id,
            sync: false,
        };
        let _ = leases.delete(with_namespace!(req, ns)).await;
    }

    let mut snaps = SnapshotsClient::new(ch.clone());
    for _ in 0..64 {
        let req = ListSnapshotsRequest {
            snapshotter: "overlayfs".into(),
            filters: vec![],
        };
        let mut stream = snaps
            .list(with_namespace!(req, ns))
            .await
            .map_err(e)?
            .into_inner();
        let mut all = Vec::new();
        while let Some(m) = stream.message().await.map_err(e)? {
            all.extend(m.info);
        }
        if all.is_empty() {
            break;
        }
        let parents: std::collections::HashSet<String> =
            all.iter().map(|i| i.parent.clone()).collect();
        for i in all.iter().filter(|i| !parents.contains(&i.name)) {
            let req = RemoveSnapshotRequest {
                snapshotter: "overlayfs".into(),
                key: i.name.clone(),
            };
            let _ = snaps.remove(with_namespace!(req, ns)).await;
        }
    }

    let mut content = ContentClient::new(ch.clone());
    let mut stream = content
        .list(with_namespace!(ListContentRequest { filters: vec![] }, ns))
        .await
        .map_err(e)?
        .into_inner();
    let mut blobs = Vec::new();
    while let Some(m) = stream.message().await.map_err(e)? {
        blobs.extend(m.info.into_iter().map(|i| i.digest));
    }
    for d in blobs {
        let _ = content
            .delete(with_namespace!(DeleteContentRequest { digest: d }, ns))
            .await;
    }

    // containerd's GC may still be removing things: give it a moment.
    let mut namespaces = NamespacesClient::new(ch);
    for attempt in 0.. {
        let req = DeleteNamespaceRequest {
            name: ns.to_owned(),
        };
        match namespaces.delete(with_namespace!(req, ns)).await {
            Ok(_) => return Ok(()),
            // A test that stored nothing never created its namespace.
            Err(s) if s.code() == containerd_client::tonic::Code::NotFound => return Ok(()),
            Err(s)
                if s.code() == containerd_client::tonic::Code::FailedPrecondition
                    && attempt < 20 =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(s) => return Err(e(s)),
        }
    }
    Ok(())
}

/// The snapshots of namespace `ns`: (name, parent, committed).
pub async fn snapshots(f: &Fixture) -> Vec<(String, String, bool)> {
    let ns = f.namespace.as_str();
    let req = ListSnapshotsRequest {
        snapshotter: "overlayfs".into(),
        filters: vec![],
    };
    let mut stream = SnapshotsClient::new(f.channel().await)
        .list(with_namespace!(req, ns))
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while let Some(m) = stream.message().await.unwrap() {
        for i in m.info {
            // Kind 3 is COMMITTED.
            out.push((i.name, i.parent, i.kind == 3));
        }
    }
    out.sort();
    out
}

/// The content digests of namespace `ns`, sorted.
pub async fn content(f: &Fixture) -> Vec<String> {
    let ns = f.namespace.as_str();
    let mut stream = ContentClient::new(f.channel().await)
        .list(with_namespace!(ListContentRequest { filters: vec![] }, ns))
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while let Some(m) = stream.message().await.unwrap() {
        out.extend(m.info.into_iter().map(|i| i.digest));
    }
    out.sort();
    out
}

/// Removes the snapshot `key` of the fixture's namespace.
pub async fn remove_snapshot(f: &Fixture, key: &str) {
    let ns = f.namespace.as_str();
    let req = RemoveSnapshotRequest {
        snapshotter: "overlayfs".into(),
        key: key.to_owned(),
    };
    SnapshotsClient::new(f.channel().await)
        .remove(with_namespace!(req, ns))
        .await
        .unwrap();
}

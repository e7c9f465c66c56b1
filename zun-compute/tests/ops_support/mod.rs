//! The fixture of the container operation tests: a compute host of a test, its manager over
//! the pod runtime (devstack's containerd and registry) with the stream listener, and helpers
//! to read processes and archives. Dropping the host tears down every capsule it made, with the
//! pod runtime's own teardown, then its bridge, network namespace directory and files.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use capsule_types::rpc::{
    CapsuleSpec, ComputeRequest, ConductorEvent, ContainerAction, ContainerCall, ContainerRef,
    ContainerReply,
};
use capsule_types::template::{CapsuleTemplate, ContainerSpec};
use capsule_types::CapsuleStatus;
use rpc::{Bus, MemoryBus};
use test_support::env_or;
use uuid::Uuid;
use zun_compute::config::{Config, StreamConfig};
use zun_compute::manager::Manager;
use zun_compute::reporter::Reporter;
use zun_compute::store::Store;

use crate::manager_support::{read_reports, Reports};

/// The shim: this crate's, or `ZUN_TEST_SHIM` (a target directory shared by several
/// checkouts may hold another checkout's build at the usual place).
pub fn shim() -> String {
    std::env::var("ZUN_TEST_SHIM").unwrap_or_else(|_| env!("CARGO_BIN_EXE_capsule-shim").into())
}
/// The archive limit of the test hosts.
pub const ARCHIVE_MAX: u64 = 256 * 1024;

/// One compute host of a test: its manager over the pod runtime, torn down when dropped.
pub struct Host {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub bridge: String,
    pub netns_dir: PathBuf,
    pub manager: Manager,
    pub events: Arc<Mutex<Vec<ConductorEvent>>>,
    pub stop: tokio::sync::watch::Sender<bool>,
}

pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the container operation tests need root (namespaces, cgroups, mounts)"
    );
    let socket = env_or(
        "ZUN_TEST_CONTAINERD_SOCKET",
        "/opt/capsule/run/containerd/containerd.sock",
    );
    assert!(
        Path::new(&socket).exists(),
        "no containerd socket at {socket}: run devstack/stack.sh first"
    );
}

/// A manager of host `ops-host` over the pod runtime of `config`, reporting on a bus of its
/// own whose conductor's queue goes into `events`.
pub async fn manager_for(config: &Config, events: Reports) -> Manager {
    let bus = Bus::Memory(MemoryBus::new());
    read_reports(&bus, events);
    let drivers = zun_compute::start::pod_drivers(config).await.unwrap();
    Manager::new(
        drivers,
        Store::open(&config.compute.state_dir).unwrap(),
        Reporter::new(bus, "ops-host"),
    )
}

impl Host {
    pub async fn start() -> Host {
        require_root();
        let tag = &Uuid::new_v4().simple().to_string()[..6];
        let dir = std::env::temp_dir().join(format!("zc-ops-{tag}"));
        let certs = dir.join("certs.d/docker.io");
        std::fs::create_dir_all(&certs).unwrap();
        let registry = env_or("ZUN_TEST_REGISTRY", "127.0.0.1:5100");
        std::fs::write(
            certs.join("hosts.toml"),
            format!(
                "server = \"https://registry-1.docker.io\"\n[host.\"http://{registry}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
            ),
        )
        .unwrap();
        let bridge = format!("cpo{tag}");
        let octet = u8::from_str_radix(&tag[..2], 16).unwrap();
        let netns_dir = dir.join("netns");
        let mut toml = format!(
            "[compute]\nhost = \"ops-host\"\nstate_dir = \"{state}\"\n\
             [metrics]\nlisten = \"\"\n\
             [runtime]\ndriver = \"pod\"\n\
             [pod]\nshim = \"{shim}\"\nstop_grace_seconds = 2\nstart_timeout_seconds = 120\n\
             archive_max_bytes = {ARCHIVE_MAX}\n\
             [image]\ncontainerd_socket = \"{socket}\"\nnamespace = \"capsule-test\"\ncerts_dir = \"{certs}\"\n\
             [network]\nnetavark = \"{netavark}\"\nconfig_dir = \"{nv}\"\nnetwork_name = \"{bridge}\"\n\
             bridge = \"{bridge}\"\nsubnet = \"10.215.{octet}.0/24\"\nnetns_dir = \"{netns}\"\n",
            state = dir.join("state").display(),
            shim = shim(),
            socket = env_or(
                "ZUN_TEST_CONTAINERD_SOCKET",
                "/opt/capsule/run/containerd/containerd.sock"
            ),
            certs = dir.join("certs.d").display(),
            netavark = env_or("ZUN_TEST_NETAVARK", "/usr/lib/podman/netavark"),
            nv = dir.join("netavark").display(),
            netns = netns_dir.display(),
        );
        if let Ok(fw) = std::env::var("ZUN_TEST_NETAVARK_FW") {
            toml.push_str(&format!("firewall_driver = \"{fw}\"\n"));
        }
        toml.push_str("[firewall]\nenabled = false\n");
        let config = dir.join("zun-compute.toml");
        std::fs::write(&config, toml).unwrap();
        let cfg = Config::load(Some(&config)).unwrap();
        let events = Arc::new(Mutex::new(Vec::new()));
        let manager = manager_for(&cfg, events.clone()).await;
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let (listener, streams) =
            zun_compute::stream::bind(&StreamConfig::default(), manager.runtime().clone())
                .unwrap()
                .unwrap();
        manager.set_streams(streams.clone());
        tokio::spawn(zun_compute::stream::serve(listener, streams, stop_rx));
        Host {
            dir,
            config,
            bridge,
            netns_dir,
            manager,
            events,
            stop,
        }
    }

    /// The same host's agent started again: a new manager and runtime over the same state.
    pub async fn restart_agent(&mut self) {
        let cfg = Config::load(Some(&self.config)).unwrap();
        self.manager = manager_for(&cfg, self.events.clone()).await;
        self.manager.report_all().await.unwrap();
    }

    /// Deletes capsule `spec` as the API would and checks that no process of it is left.
    pub async fn delete_and_check(&self, spec: &CapsuleSpec) {
        self.manager
            .handle(ComputeRequest::DeleteCapsule { capsule: spec.uuid }, None)
            .await
            .unwrap();
        let left = processes_mentioning(&spec.uuid.to_string());
        assert!(left.is_empty(), "left running: {left:?}");
        let dir = self.dir.join("state/capsules").join(spec.uuid.to_string());
        assert!(!dir.exists(), "{} is left", dir.display());
    }

    pub async fn create(&self, spec: &CapsuleSpec) {
        self.manager
            .handle(
                ComputeRequest::CreateCapsule {
                    capsule: Box::new(spec.clone()),
                },
                None,
            )
            .await
            .unwrap();
        let state = self.manager.runtime().inspect(spec).await.unwrap();
        let state =
            state.unwrap_or_else(|| panic!("not created: {:?}", self.events.lock().unwrap()));
        assert_eq!(state.status, CapsuleStatus::Running, "{state:?}");
    }

    pub async fn act(&self, s: &CapsuleSpec, c: usize, action: ContainerAction) {
        let req = ComputeRequest::ContainerAction {
            capsule: s.uuid,
            container: Some(s.containers[c].uuid),
            action,
        };
        let before = self.events.lock().unwrap().len();
        self.manager
            .handle(req, Some("req-a".into()))
            .await
            .unwrap();
        // The action's own event (the bus delivers it a moment later): without an error.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let found = self.events.lock().unwrap()[before..]
                .iter()
                .find_map(|e| match e {
                    ConductorEvent::ContainerEvent { happened, .. }
                        if happened.container == s.containers[c].uuid
                            && happened.request_id.as_deref() == Some("req-a") =>
                    {
                        Some(happened.clone())
                    }
                    _ => None,
                });
            if let Some(happened) = found {
                assert_eq!(happened.error, None, "{happened:?}");
                return;
            }
            assert!(Instant::now() < deadline, "no event for the action");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn call(&self, s: &CapsuleSpec, c: usize, call: ContainerCall) -> ContainerReply {
        crate::manager_support::call(&self.manager, s, c, call, "req-c").await
    }

    pub async fn exec(&self, s: &CapsuleSpec, c: usize, script: &str) -> (String, i32) {
        let call = ContainerCall::Exec {
            command: vec!["sh".into(), "-c".into(), script.into()],
            interactive: false,
            tty: false,
        };
        match self.call(s, c, call).await {
            ContainerReply::Exec { output, exit_code } => (output, exit_code),
            other => panic!("exec {script:?}: {other:?}"),
        }
    }

    pub async fn status(&self, s: &CapsuleSpec, c: usize) -> CapsuleStatus {
        let state = self.manager.runtime().inspect(s).await.unwrap().unwrap();
        state
            .containers
            .iter()
            .find(|x| x.uuid == s.containers[c].uuid)
            .unwrap()
            .status
    }

    /// The last container status the conductor heard of.
    pub fn reported(&self, s: &CapsuleSpec, c: usize) -> Option<CapsuleStatus> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find_map(|e| match e {
                ConductorEvent::CapsuleState { state, .. } => state
                    .containers
                    .iter()
                    .find(|x| x.uuid == s.containers[c].uuid)
                    .map(|x| x.status),
                _ => None,
            })
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        let config = self.config.clone();
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let cfg = Config::load(Some(&config)).unwrap();
                let Ok(entries) = std::fs::read_dir(cfg.compute.state_dir.join("capsules")) else {
                    return;
                };
                let ids: Vec<Uuid> = entries
                    .flatten()
                    .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
                    .collect();
                let drivers = zun_compute::start::pod_drivers(&cfg).await.unwrap();
                for id in ids {
                    if let Err(e) = drivers.capsules.delete(id).await {
                        eprintln!("cleanup of {id}: {}", zun_compute::chain::chain(&e));
                    }
                }
            });
        });
        let _ = cleanup.join();
        let _ = nix::mount::umount2(&self.netns_dir, nix::mount::MntFlags::MNT_DETACH);
        let _ = test_support::run("ip", &["link", "del", &self.bridge]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A capsule of busybox containers running `scripts` (name, script), restart policy Always.
pub fn spec(scripts: &[(&str, &str)], memory_mib: Option<u64>) -> CapsuleSpec {
    let containers: Vec<ContainerSpec> = scripts
        .iter()
        .map(|(n, script)| {
            let mut c = ContainerSpec::new("busybox");
            c.name = Some((*n).into());
            c.command = vec!["sh".into(), "-c".into(), (*script).into()];
            c.memory_mib = memory_mib;
            c
        })
        .collect();
    CapsuleSpec {
        uuid: Uuid::new_v4(),
        name: Some("ops".into()),
        project_id: "p".into(),
        containers: scripts
            .iter()
            .enumerate()
            .map(|(i, (n, _))| ContainerRef {
                uuid: Uuid::new_v4(),
                name: (*n).into(),
                is_init: false,
                position: i,
            })
            .collect(),
        template: CapsuleTemplate {
            name: Some("ops".into()),
            labels: Default::default(),
            annotations: None,
            availability_zone: None,
            restart_policy: Default::default(),
            termination_grace_period_seconds: None,
            init_containers: vec![],
            containers,
            volumes: vec![],
            security_groups: vec![],
        },
        volumes: vec![],
    }
}

/// Host processes whose command line is exactly `argv`.
pub fn host_processes(argv: &[&str]) -> Vec<i32> {
    let want: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
        .collect()
}

/// Host processes whose command line mentions `word` (a capsule's shim names its directory).
pub fn processes_mentioning(word: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.parse::<i32>().is_ok())
        })
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(word))
        .collect()
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A tar of `(path, contents)` files, paths written as given (even `..`).
pub fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        // set_path refuses `..`; the raw name field does not.
        let name = path.as_bytes();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// The files of tar `data`: (path, contents).
pub fn untar(data: &str) -> Vec<(String, Vec<u8>)> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap();
    let mut a = tar::Archive::new(&bytes[..]);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let p = e.path().unwrap().display().to_string();
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut v).unwrap();
            (p, v)
        })
        .collect()
}

//! The pod runtime driver: images from containerd, a network namespace with published ports
//! from netavark, and one shim per capsule that runs the sandbox and the containers with
//! libcontainer. Steps and their undo are in `docs/runtime.md`; each step's module is tested on
//! its own, this one ties them together.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use capsule_types::rpc::{
    CapsuleSpec, CapsuleState, ContainerRef, ContainerState, LogQuery, LogsReply, VolumeRef,
};
use capsule_types::template::{ContainerSpec, Protocol as TemplateProtocol};
use capsule_types::volume::GIB;
use capsule_types::CapsuleStatus;
use tokio::sync::broadcast;
use uuid::Uuid;

use super::secgroups::SecurityGroups;
use super::{DriverError, RuntimeDriver};
use crate::config::PodConfig;
use crate::firewall::NftFirewall;
use crate::image::{Image, ImageStore, PullPolicy};
use crate::network::{Attachment, Network, PortMapping, Protocol};
use crate::shim::{
    self, ContainerPlan, ContainerState as ShimContainerState,
    ContainerStatus as ShimContainerStatus, MountPlan, Phase, Plan, Status,
};
use crate::volume::{LoopVolumes, VolumeDriver};

/// The capsule's volumes, in its directory (what a teardown must unmount or remove).
const VOLUMES_FILE: &str = "volumes.json";

/// The pod driver.
#[derive(Debug)]
pub struct PodDriver {
    images: ImageStore,
    network: Network,
    shim: PathBuf,
    capsules_dir: PathBuf,
    sandbox_rootfs: PathBuf,
    cfg: PodConfig,
    changes: broadcast::Sender<Uuid>,
    watchers: Arc<Mutex<HashMap<Uuid, tokio::task::JoinHandle<()>>>>,
    /// The security groups in force, and the table that enforces them (none: not enforced).
    secgroups: SecurityGroups,
    firewall: Option<NftFirewall>,
    /// Serializes "read the document and the leases, render, apply", so an older view of
    /// either never replaces a newer one in the kernel.
    firewall_lock: tokio::sync::Mutex<()>,
    /// Capsules being torn down: they get no rules even while they still hold an address.
    going: Mutex<HashSet<Uuid>>,
    /// Where volumes are kept (none: capsules with volumes are refused).
    volumes: Option<LoopVolumes>,
}

fn err(msg: impl std::fmt::Display) -> DriverError {
    DriverError(msg.to_string())
}

impl PodDriver {
    /// A driver keeping capsules under `state_dir/capsules`, and watching every capsule it
    /// finds there (after an agent restart its shims are still running).
    pub async fn new(
        state_dir: &Path,
        cfg: PodConfig,
        images: ImageStore,
        network: Network,
    ) -> Result<Self, DriverError> {
        let shim = match &cfg.shim {
            Some(p) => p.clone(),
            None => std::env::current_exe()
                .map_err(|e| err(format!("cannot find my own binary: {e}")))?
                .with_file_name("capsule-shim"),
        };
        if !shim.is_file() {
            return Err(err(format!("no shim binary at {}", shim.display())));
        }
        let capsules_dir = state_dir.join("capsules");
        std::fs::create_dir_all(&capsules_dir)
            .map_err(|e| err(format!("cannot create {}: {e}", capsules_dir.display())))?;
        let sandbox_rootfs = state_dir.join("sandbox-rootfs");
        shim::ensure_sandbox_rootfs(&sandbox_rootfs)
            .map_err(|e| err(format!("cannot lay out {}: {e}", sandbox_rootfs.display())))?;
        let driver = Self {
            images,
            network,
            shim,
            capsules_dir,
            sandbox_rootfs,
            cfg,
            changes: broadcast::channel(1024).0,
            watchers: Arc::default(),
            secgroups: SecurityGroups::load(&state_dir.join("firewall.json")),
            firewall: None,
            firewall_lock: tokio::sync::Mutex::new(()),
            going: Mutex::new(HashSet::new()),
            volumes: None,
        };
        for entry in std::fs::read_dir(&driver.capsules_dir).map_err(|e| {
            err(format!(
                "cannot list {}: {e}",
                driver.capsules_dir.display()
            ))
        })? {
            let Ok(entry) = entry else { continue };
            if let Some(id) = entry.file_name().to_str().and_then(|n| n.parse().ok()) {
                if shim::is_alive(&entry.path()) {
                    driver.watch(id);
                }
            }
        }
        Ok(driver)
    }

    /// Enforces security groups with `firewall`, starting with the document saved before a
    /// restart (the API sends a newer one when the next heartbeat shows it is behind).
    pub async fn with_firewall(mut self, firewall: NftFirewall) -> Result<Self, DriverError> {
        self.firewall = Some(firewall);
        self.refresh_firewall().await?;
        Ok(self)
    }

    /// Keeps volumes in `volumes` (sparse files, loop devices, ext4).
    pub fn with_volumes(mut self, volumes: LoopVolumes) -> Self {
        self.volumes = Some(volumes);
        self
    }

    fn volume_driver(&self) -> Result<&LoopVolumes, DriverError> {
        self.volumes.as_ref().ok_or_else(|| {
            err("Volumes are not available on this host: no volume driver is configured.")
        })
    }

    /// Makes (if the capsule makes them) and mounts the capsule's volumes on the host, after
    /// recording them in `volumes.json` so a teardown finds them even if this fails midway.
    /// Returns each volume's mount point by its template name.
    async fn attach_volumes(
        &self,
        spec: &CapsuleSpec,
        dir: &Path,
    ) -> Result<HashMap<String, PathBuf>, DriverError> {
        let mut points = HashMap::new();
        if spec.volumes.is_empty() {
            return Ok(points);
        }
        let driver = self.volume_driver()?;
        let bytes = serde_json::to_vec_pretty(&spec.volumes).map_err(err)?;
        std::fs::write(dir.join(VOLUMES_FILE), bytes)
            .map_err(|e| err(format!("cannot write {}: {e}", dir.display())))?;
        for v in &spec.volumes {
            if v.create {
                driver
                    .create(v.id, v.size_gib.saturating_mul(GIB))
                    .await
                    .map_err(|e| err(format!("volume {} ({}): {e}", v.name, v.id)))?;
            }
            let point = driver
                .attach(v.id)
                .await
                .map_err(|e| err(format!("volume {} ({}): {e}", v.name, v.id)))?;
            points.insert(v.name.clone(), point);
        }
        Ok(points)
    }

    /// Unmounts the volumes the capsule in `dir` recorded, and removes those made to go with
    /// it; idempotent. Errors are pushed to `errors`.
    async fn release_volumes(&self, dir: &Path, errors: &mut Vec<String>) {
        let Ok(bytes) = std::fs::read(dir.join(VOLUMES_FILE)) else {
            return;
        };
        let volumes: Vec<VolumeRef> = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => {
                errors.push(format!(
                    "cannot read {}: {e}",
                    dir.join(VOLUMES_FILE).display()
                ));
                return;
            }
        };
        let Ok(driver) = self.volume_driver() else {
            errors.push("volumes: no volume driver is configured".into());
            return;
        };
        for v in volumes {
            let done = if v.auto_remove {
                driver.delete(v.id).await
            } else {
                driver.detach(v.id).await
            };
            if let Err(e) = done {
                errors.push(format!("volume {} ({}): {e}", v.name, v.id));
            }
        }
    }

    /// Renders the document in force for the capsules that hold an address now, into the
    /// kernel.
    /// Capsules being torn down are left out: their address, without rules, takes and makes
    /// no new connections.
    async fn refresh_firewall(&self) -> Result<(), DriverError> {
        let Some(fw) = &self.firewall else {
            return Ok(());
        };
        let _g = self.firewall_lock.lock().await;
        let doc = self.secgroups.current();
        let mut local = self.network.leased_ips().map_err(err)?;
        {
            let going = self.going.lock().unwrap_or_else(|p| p.into_inner());
            local.retain(|id, _| !going.contains(id));
        }
        fw.apply(&doc, &local)
            .await
            .map_err(|e| err(format!("security groups: {e}")))
    }

    fn dir(&self, id: Uuid) -> PathBuf {
        self.capsules_dir.join(id.to_string())
    }

    /// Follows the capsule's shim and announces every change it reports.
    fn watch(&self, id: Uuid) {
        let dir = self.dir(id);
        let tx = self.changes.clone();
        let task = tokio::spawn(async move {
            let Ok(mut rx) = shim::watch(&dir).await else {
                let _ = tx.send(id);
                return;
            };
            while rx.recv().await.is_some() {
                let _ = tx.send(id);
            }
            // The shim went away: whoever listens finds out how things stand.
            let _ = tx.send(id);
        });
        let mut w = self.watchers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = w.insert(id, task) {
            old.abort();
        }
    }

    fn unwatch(&self, id: Uuid) {
        let mut w = self.watchers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = w.remove(&id) {
            t.abort();
        }
    }

    /// Every step of a create; on error the caller undoes with `teardown`.
    /// Each image of the capsule, once, then each container's root filesystem; the shim's
    /// plan of each container and whether it is an init container.
    async fn root_filesystems(
        &self,
        spec: &CapsuleSpec,
        dir: &Path,
    ) -> Result<Vec<(ContainerPlan, bool)>, DriverError> {
        let t = &spec.template;
        let mut images: BTreeMap<String, Image> = BTreeMap::new();
        for c in t.all_containers() {
            if images.contains_key(&c.image) {
                continue;
            }
            let policy =
                PullPolicy::for_reference(c.image_pull_policy.map(|p| p.as_zun_str()), &c.image)
                    .map_err(err)?;
            let image = self.images.ensure(&c.image, policy).await.map_err(err)?;
            images.insert(c.image.clone(), image);
        }
        let refs = &spec.containers;
        let mut plans = Vec::new();
        for (i, c) in t.all_containers().enumerate() {
            let r = refs
                .get(i)
                .ok_or_else(|| err(format!("capsule {} lists too few containers", spec.uuid)))?;
            let image = &images[&c.image];
            let name = shim_name(r.uuid);
            let rootfs = dir.join("rootfs").join(&name);
            self.images
                .prepare_rootfs(&snapshot_key(spec.uuid, &name), image, &rootfs)
                .await
                .map_err(err)?;
            plans.push(container_plan(c, &name, r.uuid, image, rootfs, r.is_init)?);
        }
        Ok(plans)
    }

    async fn build(&self, spec: &CapsuleSpec, dir: &Path) -> Result<CapsuleState, DriverError> {
        let t = &spec.template;
        if !t.volumes.is_empty() {
            self.volume_driver()?;
        }
        // A taken host port is refused before anything is made.
        let ports = port_mappings(t.all_containers());
        Network::check_ports(spec.uuid, &ports).map_err(err)?;
        std::fs::create_dir_all(dir.join("rootfs"))
            .map_err(|e| err(format!("cannot create {}: {e}", dir.display())))?;
        let points = self.attach_volumes(spec, dir).await?;
        // Images and root filesystems, and the network, are independent: build them at once
        // (the network is the slow part). Both finish before either error is looked at, so a
        // rollback finds all that was made.
        let (name, record) = (hostname(spec), dir.join("network.json"));
        // Boxed: each is large, and together they would make every caller's future larger.
        let (plans, attachment) = tokio::join!(
            Box::pin(self.root_filesystems(spec, dir)),
            Box::pin(self.network.setup(spec.uuid, &name, &ports, &record)),
        );
        let mut plans = plans?;
        let attachment = attachment.map_err(err)?;
        for ((plan, _), c) in plans.iter_mut().zip(t.all_containers()) {
            for m in &c.volume_mounts {
                let source = points.get(&m.name).ok_or_else(|| {
                    err(format!(
                        "container {} mounts volume {:?}, which the capsule does not have",
                        plan.name, m.name
                    ))
                })?;
                plan.mounts.push(MountPlan {
                    source: source.clone(),
                    destination: m.mount_path.clone(),
                    read_only: m.read_only,
                });
            }
        }
        // The shim, once the network is there.
        let (init, app): (Vec<_>, Vec<_>) = plans.into_iter().partition(|(_, is_init)| *is_init);
        let plan = Plan {
            uuid: spec.uuid,
            hostname: hostname(spec),
            netns: Some(attachment.netns.clone()),
            cgroup_parent: format!("/capsule/{}", spec.uuid),
            sandbox_rootfs: self.sandbox_rootfs.clone(),
            restart_policy: shim_restart_policy(t.restart_policy),
            max_retries: 0,
            init_containers: init.into_iter().map(|(p, _)| p).collect(),
            containers: app.into_iter().map(|(p, _)| p).collect(),
        };
        let bytes = serde_json::to_vec_pretty(&plan).map_err(err)?;
        std::fs::write(dir.join("plan.json"), bytes)
            .map_err(|e| err(format!("cannot write the plan in {}: {e}", dir.display())))?;
        // The capsule's address enters the security-group table while its containers start;
        // until then the table's catch-all refuses new connections to and from it.
        let (started, enforced) = tokio::join!(
            async {
                shim::spawn(&self.shim, dir).await.map_err(err)?;
                self.watch(spec.uuid);
                self.wait_started(spec, dir).await
            },
            self.refresh_firewall(),
        );
        let status = started?;
        enforced?;
        Ok(capsule_state(
            spec,
            &status,
            Some(&attachment),
            &self.network_name(),
        ))
    }

    fn network_name(&self) -> String {
        self.network.name().to_owned()
    }

    /// Waits until every app container runs, or the capsule failed, or the time is up.
    async fn wait_started(&self, spec: &CapsuleSpec, dir: &Path) -> Result<Status, DriverError> {
        let deadline = Instant::now() + Duration::from_secs(self.cfg.start_timeout_seconds);
        let mut rx = shim::watch(dir).await.map_err(err)?;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let next = tokio::time::timeout(left, rx.recv()).await;
            match next {
                Ok(Some(status)) => {
                    let state = capsule_state(spec, &status, None, "");
                    match state.status {
                        CapsuleStatus::Creating => continue,
                        CapsuleStatus::Error => {
                            return Err(err(state
                                .status_reason
                                .unwrap_or_else(|| "the capsule failed to start".into())))
                        }
                        _ => return Ok(status),
                    }
                }
                Ok(None) => return Err(err("the capsule's shim exited while starting it")),
                Err(_) => {
                    return Err(err(format!(
                        "the capsule's containers did not all start within {} s",
                        self.cfg.start_timeout_seconds
                    )))
                }
            }
        }
    }

    /// Undoes every step, best effort, in reverse; the errors joined.
    async fn teardown(&self, id: Uuid) -> Result<(), DriverError> {
        self.unwatch(id);
        let dir = self.dir(id);
        let mut errors = Vec::new();
        // The processes stop while their network goes and the capsule's rules go: none waits
        // for the others (the network's teardown is the slow part, and nothing reaches the
        // capsule meanwhile: its address without rules takes no new connections).
        let started = Instant::now();
        let grace = Duration::from_secs(self.cfg.stop_grace_seconds);
        let record = dir.join("network.json");
        self.going
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id);
        let (stopped, unplugged, unfiltered) = tokio::join!(
            async {
                let r = shim::shutdown(&dir, grace).await;
                tracing::debug!(capsule = %id, ms = started.elapsed().as_millis() as u64, "processes stopped");
                r
            },
            self.network.teardown(id, &record),
            self.refresh_firewall(),
        );
        self.going
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        let stopped_ok = stopped.is_ok();
        if let Err(e) = stopped {
            errors.push(format!("containers: {e}"));
        }
        if let Err(e) = unplugged {
            errors.push(format!("network: {e}"));
        }
        if let Err(e) = unfiltered {
            errors.push(e.0);
        }
        // The volumes once no process uses them.
        if stopped_ok {
            self.release_volumes(&dir, &mut errors).await;
        }
        if let Ok(entries) = std::fs::read_dir(dir.join("rootfs")) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Err(e) = self
                    .images
                    .release_rootfs(&snapshot_key(id, &name), &entry.path())
                    .await
                {
                    errors.push(format!("rootfs of {name}: {e}"));
                }
            }
        }
        if errors.is_empty() {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    errors.push(format!("cannot remove {}: {e}", dir.display()));
                }
            }
        }
        if errors.is_empty() {
            let ms = started.elapsed().as_millis() as u64;
            tracing::info!(capsule = %id, ms, "capsule torn down");
            Ok(())
        } else {
            Err(err(format!(
                "teardown of capsule {id} incomplete: {}",
                errors.join("; ")
            )))
        }
    }
}

/// A container's name for the shim (and its rootfs, snapshot and log file): a DNS label made
/// from its uuid, whatever name the user gave it.
fn shim_name(container: Uuid) -> String {
    format!("c{}", container.simple())
}

fn snapshot_key(id: Uuid, container: &str) -> String {
    format!("capsule-{id}-{container}")
}

/// The sandbox's host name: the capsule's name when it is a valid one, else its uuid's start.
fn hostname(spec: &CapsuleSpec) -> String {
    let ok = |n: &str| {
        !n.is_empty()
            && n.len() <= 63
            && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !n.starts_with('-')
    };
    match spec.template.name.as_deref() {
        Some(n) if ok(n) => n.to_owned(),
        _ => spec.uuid.simple().to_string()[..12].to_owned(),
    }
}

fn shim_restart_policy(p: capsule_types::template::RestartPolicy) -> shim::RestartPolicy {
    match p {
        capsule_types::template::RestartPolicy::Always => shim::RestartPolicy::Always,
        capsule_types::template::RestartPolicy::OnFailure => shim::RestartPolicy::OnFailure,
        capsule_types::template::RestartPolicy::Never => shim::RestartPolicy::Never,
    }
}

fn port_mappings<'a>(containers: impl Iterator<Item = &'a ContainerSpec>) -> Vec<PortMapping> {
    containers
        .flat_map(|c| c.ports.iter())
        .filter_map(|p| {
            p.host_port.map(|h| PortMapping {
                host_port: h,
                container_port: p.container_port,
                protocol: match p.protocol {
                    TemplateProtocol::Udp => Protocol::Udp,
                    _ => Protocol::Tcp,
                },
                host_ip: None,
            })
        })
        .collect()
}

/// What the shim runs for template container `c`.
fn container_plan(
    c: &ContainerSpec,
    name: &str,
    uuid: Uuid,
    image: &Image,
    rootfs: PathBuf,
    is_init: bool,
) -> Result<(ContainerPlan, bool), DriverError> {
    let command = (!c.command.is_empty()).then_some(c.command.as_slice());
    let args = (!c.args.is_empty()).then_some(c.args.as_slice());
    let argv = image.config.process_args(command, args).map_err(err)?;
    let mut env: Vec<String> = image.config.env.clone();
    for (k, v) in &c.env {
        env.retain(|e| e.split_once('=').map(|(ek, _)| ek) != Some(k.as_str()));
        env.push(format!("{k}={v}"));
    }
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    }
    let cwd = c
        .work_dir
        .clone()
        .or_else(|| image.config.working_dir.clone().filter(|w| !w.is_empty()))
        .unwrap_or_else(|| "/".into());
    // As runc does: a working directory the image lacks is made (in the container's own
    // writable layer).
    let in_rootfs = rootfs.join(cwd.trim_start_matches('/'));
    std::fs::create_dir_all(&in_rootfs).map_err(|e| {
        err(format!(
            "cannot create working directory {cwd} of {name}: {e}"
        ))
    })?;
    let user = match image.config.user.as_deref() {
        None | Some("") | Some("root") | Some("0") | Some("0:0") => None,
        Some(u) => Some(parse_numeric_user(u).ok_or_else(|| {
            err(format!(
                "image {} runs as user {u:?}: only numeric uid[:gid] users are supported",
                image.name
            ))
        })?),
    };
    Ok((
        ContainerPlan {
            name: name.to_owned(),
            uuid,
            rootfs,
            args: argv,
            env,
            cwd,
            user,
            memory_bytes: c.memory_mib.map(|m| m * 1024 * 1024),
            cpu_millis: c.cpu.map(|cpu| (cpu * 1000.0).round() as u64),
            mounts: Vec::new(),
        },
        is_init,
    ))
}

fn parse_numeric_user(u: &str) -> Option<(u32, u32)> {
    match u.split_once(':') {
        Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
        None => {
            let uid = u.parse().ok()?;
            Some((uid, uid))
        }
    }
}

/// The capsule's state from the shim's status.
fn capsule_state(
    spec: &CapsuleSpec,
    status: &Status,
    attachment: Option<&Attachment>,
    network: &str,
) -> CapsuleState {
    let containers = status
        .containers
        .iter()
        .map(|c| ContainerState {
            uuid: c.uuid,
            status: match c.state {
                ShimContainerState::Created => CapsuleStatus::Created,
                ShimContainerState::Running => CapsuleStatus::Running,
                ShimContainerState::Restarting => CapsuleStatus::Restarting,
                ShimContainerState::Exited if c.exit_code.unwrap_or(0) == 0 => {
                    CapsuleStatus::Stopped
                }
                ShimContainerState::Exited | ShimContainerState::Failed => CapsuleStatus::Error,
            },
            status_reason: container_reason(c),
            exit_code: c.exit_code,
            restart_count: c.restart_count,
            container_id: Some(format!("{}-{}", spec.uuid, c.name)),
        })
        .collect();
    let capsule_status = match status.phase {
        Phase::Starting => CapsuleStatus::Creating,
        Phase::Running => CapsuleStatus::Running,
        Phase::Succeeded | Phase::Stopped => CapsuleStatus::Stopped,
        Phase::Failed => CapsuleStatus::Error,
        Phase::Stopping => CapsuleStatus::Deleting,
    };
    let addresses = match attachment {
        Some(a) => serde_json::json!({ network: [{
            "addr": a.ip,
            "version": 4,
            "port": a.interface,
            "subnet_id": format!("{}/{}", a.gateway, a.prefix),
            "preserve_on_delete": false,
        }]}),
        None => serde_json::json!({}),
    };
    CapsuleState {
        capsule: spec.uuid,
        status: capsule_status,
        status_reason: status.reason.clone(),
        containers,
        addresses,
        volumes_released: false,
    }
}

/// Why a container is as it is: its last exit, if it had one.
fn container_reason(c: &ShimContainerStatus) -> Option<String> {
    let why = c.reason.as_deref()?;
    Some(match (c.state, c.exit_code) {
        (ShimContainerState::Running | ShimContainerState::Restarting, Some(code)) => format!(
            "Restarted {} time(s); last exit: {why} (code {code})",
            c.restart_count
        ),
        (_, Some(code)) => format!("{why} (exit code {code})"),
        (_, None) => why.to_owned(),
    })
}

impl RuntimeDriver for PodDriver {
    async fn create(&self, spec: &CapsuleSpec) -> Result<CapsuleState, DriverError> {
        let dir = self.dir(spec.uuid);
        match self.build(spec, &dir).await {
            Ok(state) => Ok(state),
            Err(e) => {
                if let Err(undo) = self.teardown(spec.uuid).await {
                    tracing::warn!(capsule = %spec.uuid, error = %undo, "undo of a failed create");
                }
                Err(e)
            }
        }
    }

    async fn delete(&self, capsule: Uuid) -> Result<(), DriverError> {
        self.teardown(capsule).await
    }

    async fn inspect(&self, spec: &CapsuleSpec) -> Result<Option<CapsuleState>, DriverError> {
        let dir = self.dir(spec.uuid);
        if !dir.exists() {
            return Ok(None);
        }
        let attachment = self
            .network
            .recorded_attachment(spec.uuid, &dir.join("network.json"))
            .await
            .ok()
            .flatten();
        match shim::status(&dir).await {
            Ok(status) => Ok(Some(capsule_state(
                spec,
                &status,
                attachment.as_ref(),
                &self.network_name(),
            ))),
            Err(e) => Ok(Some(CapsuleState {
                capsule: spec.uuid,
                status: CapsuleStatus::Error,
                status_reason: Some(format!("The capsule's shim is gone: {e}")),
                containers: Vec::new(),
                addresses: serde_json::json!({}),
                volumes_released: false,
            })),
        }
    }

    async fn logs(&self, capsule: Uuid, container: &ContainerRef, query: &LogQuery) -> LogsReply {
        let path = shim::log_path(&self.dir(capsule), &shim_name(container.uuid));
        let container = &container.name;
        let query = query.clone();
        let read = tokio::task::spawn_blocking(move || crate::logs::read(&path, &query)).await;
        match read {
            Ok(Ok(text)) => LogsReply::Logs { text },
            Ok(Err(e)) => LogsReply::Unavailable {
                message: format!("Cannot read the logs of {container}: {e}"),
            },
            Err(e) => LogsReply::Unavailable {
                message: format!("Cannot read the logs of {container}: {e}"),
            },
        }
    }

    fn changes(&self) -> broadcast::Receiver<Uuid> {
        self.changes.subscribe()
    }

    async fn set_firewall(
        &self,
        firewall: capsule_types::secgroup::HostFirewall,
    ) -> Result<(), DriverError> {
        let epoch = firewall.epoch;
        if self.secgroups.offer(firewall)?.is_some() {
            self.refresh_firewall().await?;
            tracing::info!(epoch, "security groups applied");
        }
        Ok(())
    }

    fn firewall_epoch(&self) -> Option<u64> {
        self.secgroups.received_epoch()
    }

    async fn create_volume(&self, id: Uuid, size_gib: u64) -> Result<(), DriverError> {
        self.volume_driver()?
            .create(id, size_gib.saturating_mul(GIB))
            .await
            .map_err(err)
    }

    fn holds_volumes(&self, capsule: Uuid) -> bool {
        self.dir(capsule).join(VOLUMES_FILE).exists()
    }

    async fn delete_volume(&self, id: Uuid) -> Result<(), DriverError> {
        let driver = self.volume_driver()?;
        if driver.is_attached(id).map_err(err)? {
            return Err(err(format!(
                "volume {id} is attached on this host; it is removed once its capsule is deleted"
            )));
        }
        driver.delete(id).await.map_err(err)
    }
}

impl Drop for PodDriver {
    fn drop(&mut self) {
        let w = self.watchers.lock().unwrap_or_else(|p| p.into_inner());
        for t in w.values() {
            t.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_users() {
        assert_eq!(parse_numeric_user("1000"), Some((1000, 1000)));
        assert_eq!(parse_numeric_user("1000:50"), Some((1000, 50)));
        assert_eq!(parse_numeric_user("nginx"), None);
    }
}

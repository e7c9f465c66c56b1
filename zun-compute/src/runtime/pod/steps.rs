//! The steps of a capsule's create, each named with its undo, and the order a teardown runs the
//! undos in. The create is `CREATE`, run by [`super::saga::run`]: a failure undoes exactly the
//! steps done before it, in reverse. A delete is `TEARDOWN`: every undo, each coping with what
//! is not there (after an agent restart nothing of the create is known but the capsule's
//! directory), grouped so that what need not wait does not.
//!
//! | step | does | undo |
//! |---|---|---|
//! | `ports` | refuses a taken host port (and volumes on a host without them) | none: a check |
//! | `dir` | makes the capsule's directory | removes it, unless an undo before failed |
//! | `volumes` | records, makes and mounts the capsule's volumes | unmounts them; removes `autoRemove` ones |
//! | `layer` | makes and mounts the capsule's writable layer (`[limits] writable_layer_mib`) | unmounts and removes it |
//! | `rootfs` | pulls the images, prepares each container's rootfs (its writes on the layer) | releases each rootfs |
//! | `network` | namespace, address, published ports (netavark) | tears the network down, drops the address's rules |
//! | `plan` | writes the shim's `plan.json` | none: goes with the directory |
//! | `shim` | starts the shim, waits until every app container runs | stops containers and shim |
//! | `firewall` | applies the security groups with the capsule's address | applies them without it |

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use capsule_types::rpc::{CapsuleSpec, VolumeRef};
use capsule_types::volume::GIB;
use uuid::Uuid;

use super::error::{StepError, UndoError};
use super::layout::{CAPSULES_CGROUP, NETWORK_FILE, ROOTFS_DIR, VOLUMES_FILE};
use super::plan::{
    container_plan, hostname, port_mappings, shim_name, shim_restart_policy, snapshot_key,
};
use super::saga::{Saga, Undo};
use super::PodRuntime;
use crate::chain::Chain;
use crate::firewall::Leaving;
use crate::image::{Image, PullPolicy};
use crate::network::{Attachment, PortMapping};
use crate::shim::{ContainerPlan, MountPlan, Plan, Status};

/// A step of a capsule's create.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    /// Host ports free (and volumes available, if the capsule has some).
    Ports,
    /// The capsule's directory.
    Dir,
    /// The capsule's volumes, made and mounted.
    Volumes,
    /// The capsule's writable layer, made and mounted.
    Layer,
    /// Images present, each container's rootfs prepared.
    Rootfs,
    /// The capsule's network namespace, address and published ports.
    Network,
    /// The shim's plan written.
    Plan,
    /// The shim started, every app container running.
    Shim,
    /// The security groups applied with the capsule's address.
    Firewall,
}

impl Step {
    /// The step's name, for logs.
    pub fn name(self) -> &'static str {
        match self {
            Step::Ports => "ports",
            Step::Dir => "dir",
            Step::Volumes => "volumes",
            Step::Layer => "layer",
            Step::Rootfs => "rootfs",
            Step::Network => "network",
            Step::Plan => "plan",
            Step::Shim => "shim",
            Step::Firewall => "firewall",
        }
    }
}

/// A create, in order; the steps of a row run at once (images and rootfs overlap the
/// network, the slow part; the capsule's address enters the security groups while its
/// containers start).
pub const CREATE: &[&[Step]] = &[
    &[Step::Ports],
    &[Step::Dir],
    &[Step::Volumes, Step::Layer],
    &[Step::Rootfs, Step::Network],
    &[Step::Plan],
    &[Step::Shim, Step::Firewall],
];

/// A delete: every undo. The processes stop while the network goes and the capsule's rules go
/// (none needs the others: an address without rules takes no new connections); the volumes
/// once no process uses them; then the root filesystems; then the writable layer they wrote
/// to; the directory last.
pub const TEARDOWN: &[&[Step]] = &[
    &[Step::Shim, Step::Network, Step::Firewall],
    &[Step::Volumes],
    &[Step::Rootfs],
    &[Step::Layer],
    &[Step::Dir],
];

/// The undo of a capsule's steps: works from its directory alone.
pub(super) struct Unmake<'a> {
    rt: &'a PodRuntime,
    pub(super) id: Uuid,
    pub(super) dir: PathBuf,
    /// Held from the first undo on: the capsule gets no rules while its address goes.
    leaving: OnceLock<Leaving<'a>>,
    /// A shim shutdown failed: processes may still use the volumes.
    processes_may_run: AtomicBool,
    /// An undo failed: the directory is kept for the next try.
    failed: AtomicBool,
}

impl<'a> Unmake<'a> {
    /// The undo of capsule `id` of `rt`.
    pub(super) fn new(rt: &'a PodRuntime, id: Uuid) -> Self {
        Self {
            rt,
            id,
            dir: rt.dirs.dir(id),
            leaving: OnceLock::new(),
            processes_may_run: AtomicBool::new(false),
            failed: AtomicBool::new(false),
        }
    }

    async fn undo_step(&self, step: Step) -> Vec<UndoError> {
        let rt = self.rt;
        match step {
            Step::Ports | Step::Plan => Vec::new(),
            Step::Dir => {
                if self.failed.load(Ordering::SeqCst) {
                    return Vec::new();
                }
                match std::fs::remove_dir_all(&self.dir) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        vec![UndoError::RemoveDir {
                            path: self.dir.clone(),
                            source: e,
                        }]
                    }
                    _ => Vec::new(),
                }
            }
            Step::Volumes => {
                if self.processes_may_run.load(Ordering::SeqCst) {
                    return Vec::new();
                }
                self.release_volumes().await
            }
            Step::Layer => {
                if self.processes_may_run.load(Ordering::SeqCst) {
                    return Vec::new();
                }
                match rt.layers.remove(self.id).await {
                    Ok(()) => Vec::new(),
                    Err(e) => vec![UndoError::Layer(e)],
                }
            }
            Step::Rootfs => self.release_rootfs().await,
            Step::Network => {
                let record = self.dir.join(NETWORK_FILE);
                let mut errors = Vec::new();
                if let Err(e) = rt.network.teardown(self.id, &record).await {
                    errors.push(UndoError::Network(e));
                }
                // Any apply since the setup may have given the address rules: they go with it
                // (in a teardown the firewall's own undo has applied the same already, and an
                // apply that changes nothing does not run nft).
                if let Err(e) = rt.firewall.refresh().await {
                    errors.push(UndoError::SecurityGroups(e));
                }
                errors
            }
            Step::Shim => {
                rt.unwatch(self.id);
                let started = Instant::now();
                let grace = Duration::from_secs(rt.cfg.stop_grace_seconds);
                let stopped = rt.shims.shutdown(&self.dir, grace).await;
                let ms = started.elapsed().as_millis() as u64;
                tracing::debug!(capsule = %self.id, ms, "processes stopped");
                match stopped {
                    Ok(()) => Vec::new(),
                    Err(e) => {
                        self.processes_may_run.store(true, Ordering::SeqCst);
                        vec![UndoError::Containers(e)]
                    }
                }
            }
            Step::Firewall => match rt.firewall.refresh().await {
                Ok(()) => Vec::new(),
                Err(e) => vec![UndoError::SecurityGroups(e)],
            },
        }
    }

    /// Unmounts the volumes the capsule recorded, and removes those made to go with it.
    async fn release_volumes(&self) -> Vec<UndoError> {
        let path = self.dir.join(VOLUMES_FILE);
        let Ok(bytes) = std::fs::read(&path) else {
            return Vec::new();
        };
        let volumes: Vec<VolumeRef> = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(source) => return vec![UndoError::VolumesRecord { path, source }],
        };
        let mut errors = Vec::new();
        for v in volumes {
            let done = if v.auto_remove {
                self.rt.volumes.delete(v.id).await
            } else {
                self.rt.volumes.detach(v.id).await
            };
            if let Err(source) = done {
                errors.push(UndoError::Volume {
                    name: v.name,
                    id: v.id,
                    source,
                });
            }
        }
        errors
    }

    /// Releases every root filesystem in the capsule's directory.
    async fn release_rootfs(&self) -> Vec<UndoError> {
        let mut errors = Vec::new();
        let Ok(entries) = std::fs::read_dir(self.dir.join(ROOTFS_DIR)) else {
            return errors;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let key = snapshot_key(self.id, &name);
            if let Err(source) = self.rt.images.release_rootfs(&key, &entry.path()).await {
                errors.push(UndoError::Rootfs {
                    container: name,
                    source,
                });
            }
        }
        errors
    }
}

impl Undo for Unmake<'_> {
    type Step = Step;
    type UndoError = UndoError;

    fn undoable(step: Step) -> bool {
        !matches!(step, Step::Ports | Step::Plan)
    }

    async fn undo(&self, step: Step) -> Vec<UndoError> {
        self.leaving
            .get_or_init(|| self.rt.firewall.leaving(self.id));
        let started = Instant::now();
        let errors = self.undo_step(step).await;
        crate::metrics::metrics().step(
            "teardown",
            step.name(),
            errors.is_empty(),
            started.elapsed(),
        );
        for e in &errors {
            tracing::warn!(capsule = %self.id, step = step.name(), error = %Chain(e), "undo");
        }
        if !errors.is_empty() {
            self.failed.store(true, Ordering::SeqCst);
        }
        errors
    }
}

/// A create under way: the steps' results, each set once by its step.
pub(super) struct Make<'a> {
    rt: &'a PodRuntime,
    spec: &'a CapsuleSpec,
    pub(super) unmake: Unmake<'a>,
    ports: Vec<PortMapping>,
    points: OnceLock<HashMap<String, PathBuf>>,
    /// The writable layer's mount point (none when the host bounds no layer).
    layer: OnceLock<PathBuf>,
    plans: OnceLock<Vec<(ContainerPlan, bool)>>,
    pub(super) attachment: OnceLock<Attachment>,
    pub(super) status: OnceLock<Status>,
}

impl<'a> Make<'a> {
    /// The create of `spec` on `rt`.
    pub(super) fn new(rt: &'a PodRuntime, spec: &'a CapsuleSpec) -> Self {
        Self {
            rt,
            spec,
            unmake: Unmake::new(rt, spec.uuid),
            ports: port_mappings(spec.template.all_containers()),
            points: OnceLock::new(),
            layer: OnceLock::new(),
            plans: OnceLock::new(),
            attachment: OnceLock::new(),
            status: OnceLock::new(),
        }
    }

    fn dir(&self) -> &Path {
        &self.unmake.dir
    }

    async fn act_step(&self, step: Step) -> Result<(), StepError> {
        let (rt, spec) = (self.rt, self.spec);
        match step {
            Step::Ports => {
                if !spec.template.volumes.is_empty() {
                    rt.volumes.available()?;
                }
                rt.network.check_ports(spec.uuid, &self.ports)?;
            }
            Step::Dir => {
                let path = self.dir().join(ROOTFS_DIR);
                std::fs::create_dir_all(&path).map_err(|source| StepError::CreateDir {
                    path: self.dir().to_owned(),
                    source,
                })?;
            }
            Step::Volumes => {
                let points = self.cleaning(Step::Volumes, self.attach_volumes()).await?;
                let _ = self.points.set(points);
            }
            Step::Layer => {
                let bytes = rt.bounds.layer_bytes;
                if bytes > 0 {
                    let made = rt.layers.create(spec.uuid, bytes);
                    let made = async { made.await.map_err(StepError::Layer) };
                    let point = self.cleaning(Step::Layer, made).await?;
                    let _ = self.layer.set(point);
                }
            }
            Step::Rootfs => {
                let plans = self.cleaning(Step::Rootfs, self.root_filesystems()).await?;
                let _ = self.plans.set(plans);
            }
            Step::Network => {
                let record = self.dir().join(NETWORK_FILE);
                let name = hostname(spec);
                let att = rt
                    .network
                    .setup(spec.uuid, &name, &self.ports, &record)
                    .await?;
                let _ = self.attachment.set(att);
            }
            Step::Plan => self.write_plan()?,
            Step::Shim => {
                let status = self.cleaning(Step::Shim, self.start_shim()).await?;
                let _ = self.status.set(status);
            }
            Step::Firewall => rt.firewall.refresh().await?,
        }
        Ok(())
    }

    /// Runs `work` of `step`; if it fails, undoes what it did before returning the error.
    async fn cleaning<T>(
        &self,
        step: Step,
        work: impl std::future::Future<Output = Result<T, StepError>>,
    ) -> Result<T, StepError> {
        let result = work.await;
        if result.is_err() {
            let errors = self.unmake.undo_step(step).await;
            for e in &errors {
                tracing::warn!(capsule = %self.spec.uuid, step = step.name(), error = %Chain(e), "cleanup of a failed step");
            }
            if !errors.is_empty() {
                self.unmake.failed.store(true, Ordering::SeqCst);
            }
        }
        result
    }

    /// Makes (if the capsule makes them) and mounts the capsule's volumes, after recording
    /// them so a teardown finds them even if this fails midway. Each mount point by name.
    async fn attach_volumes(&self) -> Result<HashMap<String, PathBuf>, StepError> {
        let mut points = HashMap::new();
        if self.spec.volumes.is_empty() {
            return Ok(points);
        }
        let path = self.dir().join(VOLUMES_FILE);
        let bytes = serde_json::to_vec_pretty(&self.spec.volumes).unwrap_or_default();
        std::fs::write(&path, bytes).map_err(|source| StepError::Write { path, source })?;
        let volumes = &self.rt.volumes;
        for v in &self.spec.volumes {
            let of = |source| StepError::Volume {
                name: v.name.clone(),
                id: v.id,
                source: Box::new(source),
            };
            if v.create {
                volumes
                    .create(v.id, v.size_gib.saturating_mul(GIB))
                    .await
                    .map_err(of)?;
            }
            let point = volumes.attach(v.id).await.map_err(of)?;
            points.insert(v.name.clone(), point);
        }
        Ok(points)
    }

    /// Each image of the capsule, once, then each container's root filesystem; the shim's
    /// plan of each container and whether it is an init container.
    async fn root_filesystems(&self) -> Result<Vec<(ContainerPlan, bool)>, StepError> {
        let (spec, images_of) = (self.spec, &self.rt.images);
        let t = &spec.template;
        let mut images: BTreeMap<String, Image> = BTreeMap::new();
        for c in t.all_containers() {
            if images.contains_key(&c.image) {
                continue;
            }
            let policy =
                PullPolicy::for_reference(c.image_pull_policy.map(|p| p.as_zun_str()), &c.image)?;
            let image = images_of.ensure(&c.image, policy).await?;
            images.insert(c.image.clone(), image);
        }
        let mut plans = Vec::new();
        for (i, c) in t.all_containers().enumerate() {
            let r = spec
                .containers
                .get(i)
                .ok_or(StepError::TooFewContainers { capsule: spec.uuid })?;
            let image = &images[&c.image];
            let name = shim_name(r.uuid);
            let rootfs = self.dir().join(ROOTFS_DIR).join(&name);
            let writable = self.layer.get().map(|l| l.join(&name));
            images_of
                .prepare_rootfs(
                    &snapshot_key(spec.uuid, &name),
                    image,
                    &rootfs,
                    writable.as_deref(),
                )
                .await?;
            plans.push(container_plan(c, &name, r.uuid, image, rootfs, r.is_init)?);
        }
        Ok(plans)
    }

    /// The shim's plan: the containers with their volumes, in the network's namespace.
    fn write_plan(&self) -> Result<(), StepError> {
        let (spec, t) = (self.spec, &self.spec.template);
        let mut plans = self.plans.get().cloned().unwrap_or_default();
        let no_points = HashMap::new();
        let points = self.points.get().unwrap_or(&no_points);
        for ((plan, _), c) in plans.iter_mut().zip(t.all_containers()) {
            for m in &c.volume_mounts {
                let source = points
                    .get(&m.name)
                    .ok_or_else(|| StepError::MissingVolume {
                        container: plan.name.clone(),
                        volume: m.name.clone(),
                    })?;
                plan.mounts.push(MountPlan {
                    source: source.clone(),
                    destination: m.mount_path.clone(),
                    read_only: m.read_only,
                });
            }
        }
        let (init, app): (Vec<_>, Vec<_>) = plans.into_iter().partition(|(_, is_init)| *is_init);
        let plan = Plan {
            uuid: spec.uuid,
            hostname: hostname(spec),
            netns: self.attachment.get().map(|a| a.netns.clone()),
            cgroup_parent: format!("{CAPSULES_CGROUP}/{}", spec.uuid),
            sandbox_rootfs: self.rt.shims.sandbox_rootfs().to_owned(),
            restart_policy: shim_restart_policy(t.restart_policy),
            max_retries: 0,
            init_containers: init.into_iter().map(|(p, _)| p).collect(),
            containers: app.into_iter().map(|(p, _)| p).collect(),
            limits: self.rt.bounds.shim,
        };
        let bytes = serde_json::to_vec_pretty(&plan).unwrap_or_default();
        std::fs::write(self.dir().join(crate::shim::PLAN_FILE), bytes).map_err(|source| {
            StepError::WritePlan {
                dir: self.dir().to_owned(),
                source,
            }
        })
    }

    /// Starts the shim, follows it, and waits until every app container runs.
    async fn start_shim(&self) -> Result<Status, StepError> {
        let rt = self.rt;
        rt.shims.spawn(self.dir()).await?;
        rt.watch(self.spec.uuid);
        let timeout = Duration::from_secs(rt.cfg.start_timeout_seconds);
        Ok(rt.shims.wait_started(self.dir(), timeout).await?)
    }
}

impl Undo for Make<'_> {
    type Step = Step;
    type UndoError = UndoError;

    fn undoable(step: Step) -> bool {
        Unmake::undoable(step)
    }

    async fn undo(&self, step: Step) -> Vec<UndoError> {
        self.unmake.undo(step).await
    }
}

impl Saga for Make<'_> {
    type Error = StepError;

    async fn act(&self, step: Step) -> Result<(), StepError> {
        let started = Instant::now();
        let result = self.act_step(step).await;
        let elapsed = started.elapsed();
        crate::metrics::metrics().step("create", step.name(), result.is_ok(), elapsed);
        let ms = elapsed.as_millis() as u64;
        tracing::debug!(capsule = %self.spec.uuid, step = step.name(), ms, ok = result.is_ok(), "create step");
        result
    }
}

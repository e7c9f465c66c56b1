//! The fake runtime: keeps a table of capsules (in its state file, so they outlive an agent
//! restart, as real containers do) and reports them running, without running anything. It
//! appends every create and delete it performs to a journal, which tests read to prove that no
//! request was carried out twice. Used in tests, and on hosts until the pod runtime is there.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use capsule_types::rpc::{
    CapsuleSpec, CapsuleState, ContainerRef, ContainerState, LogQuery, LogsReply,
};
use capsule_types::CapsuleStatus;
use uuid::Uuid;

use super::{DriverError, RuntimeDriver};

/// The fake runtime.
#[derive(Debug)]
pub struct FakeRuntime {
    table: PathBuf,
    journal: PathBuf,
    create_delay: Duration,
    lock: Mutex<()>,
    /// Nothing changes by itself here; kept so `changes` receivers stay open.
    changes: tokio::sync::broadcast::Sender<Uuid>,
    /// The firewall it would enforce (tests read it).
    firewall: super::secgroups::SecurityGroups,
}

/// The reason the fake runtime gives for the capsules it "runs".
pub const FAKE_REASON: &str = "fake runtime driver: no containers are run on this host";

impl FakeRuntime {
    /// A fake runtime keeping its files in `dir`; each create takes `create_delay`.
    pub fn new(dir: &std::path::Path, create_delay: Duration) -> Result<Self, DriverError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| DriverError(format!("cannot create {}: {e}", dir.display())))?;
        Ok(Self {
            table: dir.join("fake-runtime.json"),
            journal: dir.join("fake-runtime.journal"),
            create_delay,
            lock: Mutex::new(()),
            changes: tokio::sync::broadcast::channel(1).0,
            firewall: super::secgroups::SecurityGroups::load(&dir.join("firewall.json")),
        })
    }

    /// The firewall document in force (what the pod driver would render into nftables).
    pub fn firewall(&self) -> capsule_types::secgroup::HostFirewall {
        self.firewall.current()
    }

    fn load(&self) -> BTreeMap<Uuid, CapsuleState> {
        std::fs::read(&self.table)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn save(&self, t: &BTreeMap<Uuid, CapsuleState>) -> Result<(), DriverError> {
        let tmp = self.table.with_extension("tmp");
        let bytes = serde_json::to_vec(t).map_err(|e| DriverError(e.to_string()))?;
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, &self.table))
            .map_err(|e| DriverError(format!("cannot write {}: {e}", self.table.display())))
    }

    /// The file standing for volume `id` (empty: the fake runtime keeps no data).
    fn volume_file(&self, id: Uuid) -> PathBuf {
        self.table.with_file_name(format!("fake-volume-{id}"))
    }

    fn journal(&self, what: &str, id: Uuid) -> Result<(), DriverError> {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.journal)
            .and_then(|mut f| writeln!(f, "{what} {id}"))
            .map_err(|e| DriverError(format!("cannot write {}: {e}", self.journal.display())))
    }

    fn with_table<T>(
        &self,
        f: impl FnOnce(&mut BTreeMap<Uuid, CapsuleState>) -> Result<T, DriverError>,
    ) -> Result<T, DriverError> {
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut t = self.load();
        let out = f(&mut t)?;
        self.save(&t)?;
        Ok(out)
    }
}

fn running(spec: &CapsuleSpec) -> CapsuleState {
    CapsuleState {
        capsule: spec.uuid,
        status: CapsuleStatus::Running,
        status_reason: Some(FAKE_REASON.into()),
        containers: spec
            .containers
            .iter()
            .map(|c| ContainerState {
                uuid: c.uuid,
                // Init containers ran to completion; application containers run.
                status: if c.is_init {
                    CapsuleStatus::Stopped
                } else {
                    CapsuleStatus::Running
                },
                status_reason: None,
                exit_code: c.is_init.then_some(0),
                restart_count: 0,
                container_id: Some(format!("fake-{}", c.uuid.simple())),
            })
            .collect(),
        addresses: serde_json::json!({}),
        volumes_released: false,
    }
}

impl RuntimeDriver for FakeRuntime {
    async fn create(&self, spec: &CapsuleSpec) -> Result<CapsuleState, DriverError> {
        tokio::time::sleep(self.create_delay).await;
        let state = running(spec);
        self.with_table(|t| {
            t.insert(spec.uuid, state.clone());
            Ok(())
        })?;
        self.journal("create", spec.uuid)?;
        Ok(state)
    }

    async fn delete(&self, capsule: Uuid) -> Result<(), DriverError> {
        let existed = self.with_table(|t| Ok(t.remove(&capsule).is_some()))?;
        if existed {
            self.journal("delete", capsule)?;
        }
        Ok(())
    }

    async fn inspect(&self, spec: &CapsuleSpec) -> Result<Option<CapsuleState>, DriverError> {
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        Ok(self.load().remove(&spec.uuid))
    }

    async fn logs(&self, capsule: Uuid, container: &ContainerRef, _query: &LogQuery) -> LogsReply {
        let _ = (capsule, container);
        LogsReply::Unavailable {
            message: format!("{FAKE_REASON}, so it keeps no logs"),
        }
    }

    fn changes(&self) -> tokio::sync::broadcast::Receiver<Uuid> {
        self.changes.subscribe()
    }

    async fn set_firewall(
        &self,
        firewall: capsule_types::secgroup::HostFirewall,
    ) -> Result<(), DriverError> {
        self.firewall.offer(firewall).map(|_| ())
    }

    fn firewall_epoch(&self) -> Option<u64> {
        self.firewall.received_epoch()
    }

    async fn create_volume(&self, id: Uuid, _size_gib: u64) -> Result<(), DriverError> {
        let path = self.volume_file(id);
        if path.exists() {
            return Ok(());
        }
        self.journal("create_volume", id)?;
        std::fs::write(&path, b"")
            .map_err(|e| DriverError(format!("cannot write {}: {e}", path.display())))
    }

    fn holds_volumes(&self, _capsule: Uuid) -> bool {
        false
    }

    async fn delete_volume(&self, id: Uuid) -> Result<(), DriverError> {
        let path = self.volume_file(id);
        match std::fs::remove_file(&path) {
            Ok(()) => self.journal("delete_volume", id),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(DriverError(format!(
                "cannot remove {}: {e}",
                path.display()
            ))),
        }
    }
}

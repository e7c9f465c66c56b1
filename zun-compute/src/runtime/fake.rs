//! The fake runtime: keeps a table of capsules (in its state file, so they outlive an agent
//! restart, as real containers do) and reports them running, without running anything. It
//! appends every create and delete it performs to a journal, which tests read to prove that no
//! request was carried out twice. Used in tests, and on hosts until the pod runtime is there.
//! Its volumes are [`crate::volume::MarkerVolumes`] journaling to the same file; its security
//! groups are kept (in `firewall.json` beside its table) and enforced by no driver.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use capsule_types::rpc::{
    CapsuleSpec, CapsuleState, ContainerRef, ContainerState, LogQuery, LogsReply,
};
use capsule_types::CapsuleStatus;
use uuid::Uuid;

use super::{RuntimeDriver, RuntimeError};

/// Why the fake runtime's files failed.
#[derive(Debug, thiserror::Error)]
pub enum FakeError {
    /// A file could not be used.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The table could not be encoded.
    #[error("cannot encode the fake runtime's table")]
    Encode(#[source] serde_json::Error),
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> FakeError + 'a {
    move |source| FakeError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// The journal the fake runtime (and its volumes) append to: one `<what> <uuid>` line each.
pub(crate) fn journal(path: &Path, what: &str, id: Uuid) -> Result<(), FakeError> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| writeln!(f, "{what} {id}"))
        .map_err(io("write", path))
}

/// The fake runtime.
#[derive(Debug)]
pub struct FakeRuntime {
    table: PathBuf,
    journal: PathBuf,
    create_delay: Duration,
    lock: Mutex<()>,
    /// Nothing changes by itself here; kept so `changes` receivers stay open.
    changes: tokio::sync::broadcast::Sender<Uuid>,
}

/// The reason the fake runtime gives for the capsules it "runs".
pub const FAKE_REASON: &str = "fake runtime driver: no containers are run on this host";

impl FakeRuntime {
    /// A fake runtime keeping its files in `dir`; each create takes `create_delay`.
    pub fn new(dir: &Path, create_delay: Duration) -> Result<Self, FakeError> {
        std::fs::create_dir_all(dir).map_err(io("create", dir))?;
        Ok(Self {
            table: dir.join("fake-runtime.json"),
            journal: dir.join("fake-runtime.journal"),
            create_delay,
            lock: Mutex::new(()),
            changes: tokio::sync::broadcast::channel(1).0,
        })
    }

    /// Where its security-group document is kept.
    pub fn firewall_file(&self) -> PathBuf {
        self.table.with_file_name("firewall.json")
    }

    /// Its journal.
    pub fn journal_file(&self) -> &Path {
        &self.journal
    }

    fn load(&self) -> BTreeMap<Uuid, CapsuleState> {
        std::fs::read(&self.table)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn save(&self, t: &BTreeMap<Uuid, CapsuleState>) -> Result<(), FakeError> {
        let tmp = self.table.with_extension("tmp");
        let bytes = serde_json::to_vec(t).map_err(FakeError::Encode)?;
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, &self.table))
            .map_err(io("write", &self.table))
    }

    fn journal(&self, what: &str, id: Uuid) -> Result<(), FakeError> {
        journal(&self.journal, what, id)
    }

    /// What the journal last says of capsule `id` (`create` or `delete`), if anything.
    fn last_journaled(&self, id: Uuid) -> Result<Option<String>, FakeError> {
        let text = match std::fs::read_to_string(&self.journal) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("read", &self.journal)(e)),
        };
        let id = id.to_string();
        Ok(text.lines().rev().find_map(|l| {
            let (what, of) = l.split_once(' ')?;
            (of == id && (what == "create" || what == "delete")).then(|| what.to_owned())
        }))
    }

    fn with_table<T>(
        &self,
        f: impl FnOnce(&mut BTreeMap<Uuid, CapsuleState>) -> Result<T, FakeError>,
    ) -> Result<T, FakeError> {
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

#[async_trait::async_trait]
impl RuntimeDriver for FakeRuntime {
    async fn create(&self, spec: &CapsuleSpec) -> Result<CapsuleState, RuntimeError> {
        tokio::time::sleep(self.create_delay).await;
        let state = running(spec);
        // The journal first: an agent killed between the two writes leaves a create journaled
        // and not in the table, which the delete before the redo then journals as removed (a
        // capsule in the table but not journaled would be removed unseen).
        self.journal("create", spec.uuid)?;
        self.with_table(|t| {
            t.insert(spec.uuid, state.clone());
            Ok(())
        })?;
        Ok(state)
    }

    async fn delete(&self, capsule: Uuid) -> Result<(), RuntimeError> {
        let in_table = self.with_table(|t| Ok(t.remove(&capsule).is_some()))?;
        if in_table || self.last_journaled(capsule)?.as_deref() == Some("create") {
            self.journal("delete", capsule)?;
        }
        Ok(())
    }

    async fn inspect(&self, spec: &CapsuleSpec) -> Result<Option<CapsuleState>, RuntimeError> {
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
}

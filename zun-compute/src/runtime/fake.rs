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
    CapsuleSpec, CapsuleState, ContainerCall, ContainerRef, ContainerReply, ContainerState,
    ContainerStats, LogQuery, LogsReply,
};
use capsule_types::CapsuleStatus;
use uuid::Uuid;

use super::{Act, ActOutcome, ExecOutcome, ExecProcess, RuntimeDriver, RuntimeError, RuntimeEvent};

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

/// The journal the fake runtime (and its volumes) append to: one `<what> <uuid>` line each,
/// written by one `write` to a file opened for appending, so that concurrent creates never
/// interleave their lines (`writeln!` on a `File` writes each piece of the line apart).
pub(crate) fn journal(path: &Path, what: &str, id: Uuid) -> Result<(), FakeError> {
    let line = format!("{what} {id}\n");
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(line.as_bytes()))
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
                ready: None,
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

    async fn act(
        &self,
        spec: &CapsuleSpec,
        containers: &[ContainerRef],
        act: Act,
    ) -> Result<Vec<ActOutcome>, RuntimeError> {
        let outcomes = self.with_table(|t| {
            let Some(state) = t.get_mut(&spec.uuid) else {
                return Ok(containers
                    .iter()
                    .map(|c| ActOutcome {
                        container: c.uuid,
                        error: Some("the capsule is not on this host".into()),
                    })
                    .collect());
            };
            let out: Vec<ActOutcome> = containers
                .iter()
                .map(|c| {
                    let error = match state.containers.iter_mut().find(|s| s.uuid == c.uuid) {
                        Some(s) => fake_act(s, act, &c.name),
                        None => Some(format!("no container {}", c.name)),
                    };
                    ActOutcome {
                        container: c.uuid,
                        error,
                    }
                })
                .collect();
            let apps = || state.containers.iter().filter(|c| c.exit_code.is_none());
            state.status = if apps().all(|c| c.status == CapsuleStatus::Stopped) {
                CapsuleStatus::Stopped
            } else {
                CapsuleStatus::Running
            };
            Ok(out)
        })?;
        for o in &outcomes {
            self.journal(&format!("act {act:?}"), o.container)?;
        }
        Ok(outcomes)
    }

    async fn events(
        &self,
        _spec: &CapsuleSpec,
        _after: u64,
    ) -> Result<Vec<RuntimeEvent>, RuntimeError> {
        // Nothing happens here by itself.
        Ok(Vec::new())
    }

    async fn exec(
        &self,
        spec: &CapsuleSpec,
        container: &ContainerRef,
        command: Vec<String>,
        _tty: bool,
        stdin: bool,
    ) -> Result<ExecOutcome, RuntimeError> {
        let status = self
            .load()
            .get(&spec.uuid)
            .and_then(|s| {
                s.containers
                    .iter()
                    .find(|c| c.uuid == container.uuid)
                    .cloned()
            })
            .map(|c| c.status);
        if status != Some(CapsuleStatus::Running) {
            return Ok(ExecOutcome::Conflict(format!(
                "{} is not running",
                container.name
            )));
        }
        self.journal("exec", container.uuid)?;
        // A pretend process: without input it prints its command line; with input it echoes
        // what it reads until its input closes. It exits 0.
        let (out_r, mut out_w) = tokio::io::duplex(64 * 1024);
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let (input, echo_from) = if stdin {
            let (r, w) = tokio::io::duplex(64 * 1024);
            (Some(Box::pin(w) as _), Some(r))
        } else {
            (None, None)
        };
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            match echo_from {
                Some(mut r) => {
                    let _ = tokio::io::copy(&mut r, &mut out_w).await;
                }
                None => {
                    let _ = out_w
                        .write_all(format!("{}\n", command.join(" ")).as_bytes())
                        .await;
                }
            }
            let _ = out_w.shutdown().await;
            drop(out_w);
            let _ = done_tx.send(0);
        });
        Ok(ExecOutcome::Started(ExecProcess {
            output: Box::pin(out_r),
            input,
            terminal: None,
            exit: Box::pin(async move { done_rx.await.ok() }),
        }))
    }

    async fn call(
        &self,
        spec: &CapsuleSpec,
        container: &ContainerRef,
        call: &ContainerCall,
    ) -> ContainerReply {
        let _ = spec;
        match call {
            ContainerCall::Top { .. } => ContainerReply::Top {
                titles: vec!["UID".into(), "PID".into(), "CMD".into()],
                processes: vec![vec!["root".into(), "1".into(), container.name.clone()]],
            },
            ContainerCall::Stats => ContainerReply::Stats {
                stats: ContainerStats::default(),
            },
            _ => ContainerReply::Unavailable {
                message: format!("{FAKE_REASON}, so it has no files to copy"),
            },
        }
    }
}

/// What `act` makes of container state `s`: `Some(why)` if it cannot be done.
fn fake_act(s: &mut ContainerState, act: Act, name: &str) -> Option<String> {
    use CapsuleStatus::*;
    let (next, error) = match (act, s.status) {
        (Act::Stop { .. }, _) => (Stopped, None),
        (Act::Start | Act::Restart { .. }, Paused) => (Paused, Some(format!("{name} is paused"))),
        (Act::Start | Act::Restart { .. }, _) => (Running, None),
        (Act::Kill { .. } | Act::Fail, Running) => (Running, None),
        (Act::Pause | Act::Unpause, Running) if act == Act::Unpause => (Running, None),
        (Act::Pause, Running | Paused) => (Paused, None),
        (Act::Unpause, Paused) => (Running, None),
        (Act::Kill { .. } | Act::Fail | Act::Pause, other) => {
            (other, Some(format!("{name} is not running")))
        }
        (Act::Unpause, other) => (other, Some(format!("{name} is not paused"))),
    };
    s.status = next;
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_journal_lines_never_interleave() {
        let dir = std::env::temp_dir().join(format!("fake-journal-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("journal");
        let writers: Vec<_> = (0..8)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || {
                    for _ in 0..300 {
                        journal(&path, "create", Uuid::new_v4()).unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 8 * 300);
        for l in lines {
            let (what, id) = l.split_once(' ').unwrap_or_else(|| panic!("{l:?}"));
            assert_eq!(what, "create", "{l:?}");
            assert!(id.parse::<Uuid>().is_ok(), "{l:?}");
        }
    }
}

//! The agent's memory across restarts, under its state directory: one JSON file per capsule
//! it was asked to run (the spec and the last state it reported, or that the report is still
//! owed), and a tombstone per capsule it deleted, so a late or redelivered create never brings
//! a deleted capsule back. Files are written whole and renamed into place.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use capsule_types::rpc::{CapsuleSpec, CapsuleState};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What the agent remembers of one capsule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// What it was asked to run.
    pub spec: CapsuleSpec,
    /// The last state it knows.
    pub state: CapsuleState,
    /// Whether the create finished (successfully or not); false means a create was under way
    /// when the agent stopped and must be redone.
    pub settled: bool,
    /// Whether `state` still has to be reported.
    pub unreported: bool,
    /// Whether a delete was under way: its state on the host is half torn down, never to be
    /// reported as the capsule's state; the delete is finished when the agent starts again.
    #[serde(default)]
    pub deleting: bool,
    /// The number of the last runtime event of the capsule that was reported (the runtime
    /// numbers them; the ones after it are still to report).
    #[serde(default)]
    pub events_seen: u64,
}

/// A store failure, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("state store: cannot {action} {path}")]
pub struct StoreError {
    action: &'static str,
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

/// The state directory.
#[derive(Clone, Debug)]
pub struct Store {
    capsules: PathBuf,
    tombstones: PathBuf,
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |source| StoreError {
        action,
        path: path.to_owned(),
        source,
    }
}

impl Store {
    /// Opens (creating) the store under `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let s = Self {
            capsules: dir.join("capsules"),
            tombstones: dir.join("tombstones"),
        };
        std::fs::create_dir_all(&s.capsules).map_err(io("create", &s.capsules))?;
        std::fs::create_dir_all(&s.tombstones).map_err(io("create", &s.tombstones))?;
        Ok(s)
    }

    fn file(&self, id: Uuid) -> PathBuf {
        self.capsules.join(format!("{id}.json"))
    }

    /// The record of `id`, if the host has the capsule.
    pub fn get(&self, id: Uuid) -> Result<Option<Record>, StoreError> {
        let path = self.file(id);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| StoreError {
                    action: "parse",
                    path,
                    source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("read", &path)(e)),
        }
    }

    /// Writes `rec` (atomically: a crash leaves the old or the new file, never half of one).
    pub fn put(&self, rec: &Record) -> Result<(), StoreError> {
        let path = self.file(rec.spec.uuid);
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(rec).map_err(|e| StoreError {
            action: "encode",
            path: path.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })?;
        std::fs::write(&tmp, bytes).map_err(io("write", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(io("rename", &path))
    }

    /// Forgets capsule `id` and leaves its tombstone. Volumes deleted here get one too (their
    /// ids never name a capsule).
    pub fn bury(&self, id: Uuid) -> Result<(), StoreError> {
        let t = self.tombstones.join(id.to_string());
        std::fs::write(&t, b"").map_err(io("write", &t))?;
        let path = self.file(id);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("remove", &path)(e)),
        }
    }

    /// Whether capsule (or volume) `id` was deleted here.
    pub fn is_buried(&self, id: Uuid) -> bool {
        self.tombstones.join(id.to_string()).exists()
    }

    /// Every capsule the host has.
    pub fn list(&self) -> Result<Vec<Record>, StoreError> {
        let mut out = Vec::new();
        let entries = std::fs::read_dir(&self.capsules).map_err(io("list", &self.capsules))?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(id) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|n| n.parse::<Uuid>().ok())
            else {
                continue;
            };
            if let Some(rec) = self.get(id)? {
                out.push(rec);
            }
        }
        Ok(out)
    }

    /// Removes tombstones older than `age`.
    pub fn prune_tombstones(&self, age: Duration) -> Result<usize, StoreError> {
        let mut n = 0;
        let entries = std::fs::read_dir(&self.tombstones).map_err(io("list", &self.tombstones))?;
        for entry in entries.flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|d| d > age);
            if old && std::fs::remove_file(entry.path()).is_ok() {
                n += 1;
            }
        }
        Ok(n)
    }
}

//! The security-group document a driver enforces: the newest the API sent (by epoch), saved in
//! the state directory so a restarted agent enforces it at once, before the API sends a newer.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use capsule_types::secgroup::HostFirewall;

use super::DriverError;

/// The current document and what the API has sent since start.
#[derive(Debug)]
pub struct SecurityGroups {
    path: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    doc: HostFirewall,
    /// Epoch of the newest document received since start.
    received: Option<u64>,
}

impl SecurityGroups {
    /// The document saved at `path`; an empty one (no capsule takes new connections) if there
    /// is none or it cannot be read.
    pub fn load(path: &Path) -> Self {
        let doc = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), error = %e, "unreadable firewall document ignored");
                HostFirewall::default()
            }),
            Err(_) => HostFirewall::default(),
        };
        Self {
            path: path.to_owned(),
            state: Mutex::new(State {
                doc,
                received: None,
            }),
        }
    }

    /// Takes `doc` if it is not older than the current one: saves it and returns it to apply.
    /// `None` if it is older (a newer one was applied already).
    pub fn offer(&self, doc: HostFirewall) -> Result<Option<HostFirewall>, DriverError> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.received = Some(s.received.map_or(doc.epoch, |e| e.max(doc.epoch)));
        if doc.epoch < s.doc.epoch {
            tracing::debug!(
                epoch = doc.epoch,
                current = s.doc.epoch,
                "older firewall ignored"
            );
            return Ok(None);
        }
        let bytes = serde_json::to_vec(&doc).map_err(|e| DriverError(e.to_string()))?;
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, &self.path))
            .map_err(|e| {
                DriverError(format!(
                    "cannot save the firewall in {}: {e}",
                    self.path.display()
                ))
            })?;
        s.doc = doc.clone();
        Ok(Some(doc))
    }

    /// The document in force.
    pub fn current(&self) -> HostFirewall {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .doc
            .clone()
    }

    /// The newest epoch the API sent since start.
    pub fn received_epoch(&self) -> Option<u64> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .received
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(epoch: u64) -> HostFirewall {
        HostFirewall {
            epoch,
            ..HostFirewall::default()
        }
    }

    #[test]
    fn newer_or_equal_wins_and_survives_a_restart() {
        let dir = std::env::temp_dir().join(format!("zun-sg-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("firewall.json");
        let sg = SecurityGroups::load(&path);
        assert_eq!(sg.received_epoch(), None);
        assert_eq!(sg.offer(doc(5)).unwrap(), Some(doc(5)));
        assert_eq!(sg.offer(doc(3)).unwrap(), None, "older is ignored");
        assert_eq!(sg.received_epoch(), Some(5));
        assert_eq!(sg.offer(doc(5)).unwrap(), Some(doc(5)), "equal is applied");
        assert_eq!(sg.current().epoch, 5);
        let again = SecurityGroups::load(&path);
        assert_eq!(again.current().epoch, 5);
        assert_eq!(
            again.received_epoch(),
            None,
            "nothing received since this start"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

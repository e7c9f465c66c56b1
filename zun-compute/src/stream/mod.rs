//! The host's stream listener: interactive exec sessions over WebSocket. An `Exec` call with
//! `interactive: true` opens a session here and answers its grant (random, 256 bits, single
//! use, good until it lapses); the API connects to `ws://<address>/exec/<exec_id>` with
//! `Authorization: Bearer <grant>`, and only then is the process started (so no output is
//! lost). Binary frames carry stdin one way and output the other (an empty one from the
//! client ends the process's stdin); the host closes with code
//! 1000 and reason `exit <code>` when the process exits; a client that goes first takes the
//! process (and all it started) with it. See docs/runtime.md.

mod server;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use capsule_types::rpc::{CapsuleSpec, ContainerRef, StreamGrant};
use chrono::{DateTime, Utc};
use rand::RngCore;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::config::StreamConfig;
use crate::runtime::{RuntimeDriver, Terminal};

pub use server::serve;

/// One interactive exec, from its grant to its end.
struct Session {
    /// The grant, until it is used.
    grant: Option<String>,
    expires_at: DateTime<Utc>,
    spec: Arc<CapsuleSpec>,
    container: ContainerRef,
    command: Vec<String>,
    tty: bool,
    /// Once attached, with a terminal.
    terminal: Option<Arc<dyn Terminal>>,
    /// A size asked before the terminal existed.
    size: Option<(u16, u16)>,
}

/// What a client that attaches gets.
pub(crate) struct Claimed {
    pub(crate) exec_id: Uuid,
    pub(crate) spec: Arc<CapsuleSpec>,
    pub(crate) container: ContainerRef,
    pub(crate) command: Vec<String>,
    pub(crate) tty: bool,
}

/// Why an attach is refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// No such session (404).
    NotFound,
    /// A wrong, used or lapsed grant (401).
    Unauthorized,
}

/// The sessions of this host.
pub struct Streams {
    sessions: Mutex<HashMap<Uuid, Session>>,
    address: String,
    grant_ttl: Duration,
    runtime: Arc<dyn RuntimeDriver>,
}

impl std::fmt::Debug for Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streams")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// Binds the listener `cfg` names: the listener and the sessions behind it (whose address is
/// the one heartbeats report). `None` when `cfg.listen` is empty.
pub fn bind(
    cfg: &StreamConfig,
    runtime: Arc<dyn RuntimeDriver>,
) -> std::io::Result<Option<(std::net::TcpListener, Arc<Streams>)>> {
    if cfg.listen.trim().is_empty() {
        return Ok(None);
    }
    let listener = std::net::TcpListener::bind(cfg.listen.trim())?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    let address = match &cfg.advertise {
        Some(host) if host.contains(':') && !host.starts_with('[') => {
            format!("[{host}]:{}", local.port())
        }
        Some(host) => format!("{host}:{}", local.port()),
        None => local.to_string(),
    };
    let streams = Streams {
        sessions: Mutex::default(),
        address,
        grant_ttl: Duration::from_secs(cfg.grant_seconds.max(1)),
        runtime,
    };
    Ok(Some((listener, Arc::new(streams))))
}

impl Streams {
    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The address heartbeats report.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Opens a session for `command` in `container`; its id and grant.
    pub fn open(
        &self,
        spec: &CapsuleSpec,
        container: &ContainerRef,
        command: Vec<String>,
        tty: bool,
    ) -> (Uuid, StreamGrant) {
        self.purge();
        let mut secret = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let grant = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
        let expires_at = Utc::now()
            + chrono::Duration::from_std(self.grant_ttl).unwrap_or(chrono::Duration::seconds(60));
        let exec_id = Uuid::new_v4();
        self.sessions().insert(
            exec_id,
            Session {
                grant: Some(grant.clone()),
                expires_at,
                spec: Arc::new(spec.clone()),
                container: container.clone(),
                command,
                tty,
                terminal: None,
                size: None,
            },
        );
        (
            exec_id,
            StreamGrant {
                address: self.address.clone(),
                grant,
                expires_at,
            },
        )
    }

    /// Uses the grant of session `exec_id`: good once, before it lapses.
    pub(crate) fn claim(&self, exec_id: Uuid, presented: &str) -> Result<Claimed, Refused> {
        let mut sessions = self.sessions();
        let s = sessions.get_mut(&exec_id).ok_or(Refused::NotFound)?;
        let good = match &s.grant {
            Some(g) => bool::from(g.as_bytes().ct_eq(presented.as_bytes())),
            None => false,
        };
        if !good || Utc::now() >= s.expires_at {
            return Err(Refused::Unauthorized);
        }
        s.grant = None;
        Ok(Claimed {
            exec_id,
            spec: s.spec.clone(),
            container: s.container.clone(),
            command: s.command.clone(),
            tty: s.tty,
        })
    }

    /// The attached process's terminal: a size asked before is applied now.
    pub(crate) fn attached(&self, exec_id: Uuid, terminal: Option<Arc<dyn Terminal>>) {
        let mut sessions = self.sessions();
        if let Some(s) = sessions.get_mut(&exec_id) {
            if let (Some(t), Some((w, h))) = (&terminal, s.size) {
                let _ = t.resize(w, h);
            }
            s.terminal = terminal;
        }
    }

    /// The session is over.
    pub(crate) fn ended(&self, exec_id: Uuid) {
        self.sessions().remove(&exec_id);
    }

    /// Sets session `exec_id`'s terminal size; false if there is no such session (or it
    /// ended).
    pub fn resize(&self, exec_id: Uuid, width: u16, height: u16) -> bool {
        let mut sessions = self.sessions();
        let Some(s) = sessions.get_mut(&exec_id) else {
            return false;
        };
        s.size = Some((width, height));
        if let Some(t) = &s.terminal {
            if let Err(e) = t.resize(width, height) {
                tracing::warn!(%exec_id, "cannot resize the terminal: {e}");
            }
        }
        true
    }

    /// Forgets sessions whose grant lapsed unused (their process never started).
    pub fn purge(&self) {
        let now = Utc::now();
        self.sessions()
            .retain(|_, s| s.grant.is_none() || s.expires_at > now);
    }

    /// How many sessions are open (tests).
    pub fn len(&self) -> usize {
        self.sessions().len()
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn runtime(&self) -> &Arc<dyn RuntimeDriver> {
        &self.runtime
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::fake::FakeRuntime;

    fn streams(ttl: u64) -> Arc<Streams> {
        let dir = std::env::temp_dir().join(format!("streams-{}", Uuid::new_v4()));
        let rt = Arc::new(FakeRuntime::new(&dir, Duration::ZERO).unwrap());
        let cfg = StreamConfig {
            listen: "127.0.0.1:0".into(),
            advertise: Some("10.1.2.3".into()),
            grant_seconds: ttl,
        };
        bind(&cfg, rt).unwrap().unwrap().1
    }

    fn spec() -> CapsuleSpec {
        serde_json::from_value(serde_json::json!({
            "uuid": Uuid::new_v4(), "name": null, "project_id": "p",
            "template": {"name": null, "containers": [{"image": "busybox"}]},
            "containers": [{"uuid": Uuid::new_v4(), "name": "c", "is_init": false, "position": 0}]
        }))
        .unwrap()
    }

    #[test]
    fn grants_are_single_use_secret_and_advertised() {
        let s = streams(60);
        let spec = spec();
        let (id, g) = s.open(&spec, &spec.containers[0], vec!["sh".into()], true);
        assert!(g.address.starts_with("10.1.2.3:"), "{}", g.address);
        assert!(g.grant.len() >= 43, "at least 256 bits");
        assert_eq!(
            s.claim(Uuid::new_v4(), &g.grant).err(),
            Some(Refused::NotFound)
        );
        assert_eq!(s.claim(id, "wrong").err(), Some(Refused::Unauthorized));
        assert!(s.claim(id, &g.grant).is_ok());
        assert_eq!(s.claim(id, &g.grant).err(), Some(Refused::Unauthorized));
        assert!(s.resize(id, 80, 24));
        s.ended(id);
        assert!(!s.resize(id, 80, 24));
    }

    #[test]
    fn lapsed_grants_are_refused_and_purged() {
        let s = streams(1);
        let spec = spec();
        let (id, g) = s.open(&spec, &spec.containers[0], vec!["sh".into()], false);
        s.sessions().get_mut(&id).unwrap().expires_at = Utc::now() - chrono::Duration::seconds(1);
        assert_eq!(s.claim(id, &g.grant).err(), Some(Refused::Unauthorized));
        s.purge();
        assert!(s.is_empty());
    }
}

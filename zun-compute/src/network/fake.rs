//! A recording fake of the network part: leases addresses of 10.88.0.0/24 in memory and
//! records the attachment in the capsule's state file, as the real one does, so a teardown
//! works from the state directory. For unit tests of the pod runtime and the security groups.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Mutex;

use async_trait::async_trait;
use uuid::Uuid;

use super::{Attachment, NetworkDriver, NetworkError, PortMapping};
use crate::recorder::Recorder;

/// The fake. Its calls are `network.check_ports`, `network.setup`, `network.teardown`.
#[derive(Debug, Default)]
pub struct FakeNetwork {
    calls: Recorder,
    leases: Mutex<BTreeMap<Uuid, Ipv4Addr>>,
}

impl FakeNetwork {
    /// A fake recording into `calls`.
    pub fn new(calls: Recorder) -> Self {
        Self {
            calls,
            leases: Mutex::default(),
        }
    }

    fn leases(&self) -> std::sync::MutexGuard<'_, BTreeMap<Uuid, Ipv4Addr>> {
        self.leases.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn injected(reason: String) -> NetworkError {
    NetworkError::Config { reason }
}

fn io<'a>(
    capsule: Uuid,
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> NetworkError + 'a {
    move |source| NetworkError::Io {
        capsule,
        action,
        path: path.to_owned(),
        source,
    }
}

#[async_trait]
impl NetworkDriver for FakeNetwork {
    fn check_ports(&self, capsule: Uuid, ports: &[PortMapping]) -> Result<(), NetworkError> {
        self.calls
            .call("network.check_ports", format!("{capsule} {}", ports.len()))
            .map_err(injected)
    }

    async fn setup(
        &self,
        capsule: Uuid,
        _hostname: &str,
        _ports: &[PortMapping],
        state_file: &Path,
    ) -> Result<Attachment, NetworkError> {
        self.calls
            .call("network.setup", capsule)
            .map_err(injected)?;
        let ip = {
            let mut leases = self.leases();
            let next = (2..=254u8)
                .map(|n| Ipv4Addr::new(10, 88, 0, n))
                .find(|ip| !leases.values().any(|l| l == ip))
                .ok_or_else(|| NetworkError::SubnetExhausted {
                    capsule,
                    subnet: "10.88.0.0/24".into(),
                })?;
            *leases.entry(capsule).or_insert(next)
        };
        let att = Attachment {
            netns: format!("/run/netns/fake-{capsule}").into(),
            interface: "eth0".into(),
            ip: ip.to_string(),
            prefix: 24,
            gateway: "10.88.0.1".into(),
            mac: "02:00:00:00:00:01".into(),
        };
        let bytes = serde_json::to_vec(&att).unwrap_or_default();
        std::fs::write(state_file, bytes).map_err(io(capsule, "write", state_file))?;
        Ok(att)
    }

    async fn teardown(&self, capsule: Uuid, state_file: &Path) -> Result<(), NetworkError> {
        self.calls
            .call("network.teardown", capsule)
            .map_err(injected)?;
        self.leases().remove(&capsule);
        match std::fs::remove_file(state_file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(io(capsule, "remove", state_file)(e))
            }
            _ => Ok(()),
        }
    }

    async fn recorded_attachment(
        &self,
        capsule: Uuid,
        state_file: &Path,
    ) -> Result<Option<Attachment>, NetworkError> {
        match std::fs::read(state_file) {
            Ok(b) => Ok(serde_json::from_slice(&b).ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(capsule, "read", state_file)(e)),
        }
    }

    fn leased_ips(&self) -> Result<BTreeMap<Uuid, Ipv4Addr>, NetworkError> {
        Ok(self.leases().clone())
    }

    fn subnet(&self) -> (Ipv4Addr, u8, Ipv4Addr) {
        (Ipv4Addr::new(10, 88, 0, 0), 24, Ipv4Addr::new(10, 88, 0, 1))
    }

    fn name(&self) -> &str {
        "fake"
    }
}

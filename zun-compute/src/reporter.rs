//! Reports to the conductor: capsule states, deletions and heartbeats, each state report with
//! a sequence number that only grows (microseconds since the epoch, or one more than the last),
//! so the API applies a host's reports in order even across agent restarts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use capsule_types::rpc::{
    CapsuleState, ConductorEvent, ContainerEvent, Envelope, Heartbeat, VolumeHostState,
    CONDUCTOR_QUEUE,
};
use rpc::{Bus, RpcError};
use uuid::Uuid;

/// How long a report waits for the broker before the caller gets an error.
const PATIENCE: Duration = Duration::from_secs(30);

/// Sends reports for one host.
#[derive(Debug)]
pub struct Reporter {
    bus: Bus,
    host: String,
    last: AtomicU64,
}

fn micros_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Reporter {
    /// A reporter for `host`.
    pub fn new(bus: Bus, host: &str) -> Self {
        Self {
            bus,
            host: host.to_owned(),
            last: AtomicU64::new(0),
        }
    }

    /// The next sequence number. A heartbeat takes its number *before* it lists the host's
    /// capsules: a capsule recorded after that list was made is reported with a larger number,
    /// so the conductor never reads the heartbeat as newer news of its absence.
    pub fn seq(&self) -> u64 {
        let mut prev = self.last.load(Ordering::SeqCst);
        loop {
            let next = micros_now().max(prev + 1);
            match self
                .last
                .compare_exchange(prev, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return next,
                Err(p) => prev = p,
            }
        }
    }

    async fn send(&self, ev: ConductorEvent) -> Result<(), RpcError> {
        let payload = rpc::encode(&Envelope::new(ev, None))?;
        self.bus.publish(CONDUCTOR_QUEUE, &payload, PATIENCE).await
    }

    /// Reports a capsule's state.
    pub async fn state(&self, state: &CapsuleState) -> Result<(), RpcError> {
        self.send(ConductorEvent::CapsuleState {
            host: self.host.clone(),
            seq: self.seq(),
            state: state.clone(),
        })
        .await
    }

    /// Reports a capsule gone.
    pub async fn deleted(&self, capsule: Uuid) -> Result<(), RpcError> {
        self.send(ConductorEvent::CapsuleDeleted {
            host: self.host.clone(),
            seq: self.seq(),
            capsule,
        })
        .await
    }

    /// Reports something that happened to a container.
    pub async fn container_event(&self, happened: ContainerEvent) -> Result<(), RpcError> {
        self.send(ConductorEvent::ContainerEvent {
            host: self.host.clone(),
            seq: self.seq(),
            happened,
        })
        .await
    }

    /// Reports what this host has of a volume.
    pub async fn volume(
        &self,
        volume: Uuid,
        state: VolumeHostState,
        reason: Option<String>,
    ) -> Result<(), RpcError> {
        self.send(ConductorEvent::VolumeState {
            host: self.host.clone(),
            volume,
            state,
            reason,
        })
        .await
    }

    /// Sends a heartbeat whose `seq` was taken from [`Reporter::seq`] before its capsule list
    /// was made.
    pub async fn heartbeat(&self, hb: Heartbeat) -> Result<(), RpcError> {
        self.send(ConductorEvent::Heartbeat(hb)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_only_grows() {
        let r = Reporter::new(Bus::Memory(rpc::MemoryBus::new()), "h");
        let a = r.seq();
        let b = r.seq();
        assert!(b > a);
        // Even if the clock went back, the next number is larger.
        r.last.store(u64::MAX - 10, Ordering::SeqCst);
        assert!(r.seq() > u64::MAX - 10);
    }
}

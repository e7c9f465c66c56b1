//! Talking to compute hosts: the typed [`ComputeClient`] (every message to a host is built
//! there), [`placement`] (which host takes a capsule or a volume, and its claim), the
//! transactional outbox's publisher ([`Dispatcher`]), the security-group firewall sender
//! ([`FirewallSync`]), the hosts' [`stream`] listeners (interactive exec) and the
//! [`conductor`], which consumes the hosts' reports. All but the
//! conductor sit below the state that holds them and import nothing above `config`, `error`
//! and `context`; the conductor runs on a whole state.

pub mod client;
pub mod conductor;
pub mod dispatch;
pub mod firewall;
pub mod placement;
pub mod stream;

pub use client::{ComputeClient, ComputeError, Unaddressed};
pub use dispatch::Dispatcher;
pub use firewall::FirewallSync;
pub use placement::Placement;

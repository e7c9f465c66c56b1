//! Talking to compute hosts: the transactional outbox's publisher ([`Dispatcher`]) and the
//! security-group firewall sender ([`FirewallSync`]). They sit below the state that holds them
//! and import nothing above it.

pub mod dispatch;
pub mod firewall;

pub use dispatch::Dispatcher;
pub use firewall::FirewallSync;

//! The whole service in one test process, for the tests and benchmarks that need the API and
//! the database together with compute: [`Stack`] runs a private RabbitMQ, zun-api (noauth,
//! SQLite, conductor) serving the Zun, network and block-storage APIs over HTTP, and starts
//! zun-compute agents as real processes ([`Compute`], fake runtime by default);
//! [`pod::PodHost`] is an agent with the pod driver, running real pods; [`tap::Tap`] copies
//! what a host is sent, to send it again. Everything is stopped and removed when dropped.
//!
//! zun-compute's own tests need none of this (a compute host never holds the database); the
//! end-to-end suite against a running devstack, with the real clients, is `tempest`.

pub mod bins;
pub mod compute;
pub mod pod;
pub mod stack;
pub mod tap;

pub use compute::{journal_counts, opens, Compute};
pub use stack::{Stack, ADMIN, ALT, DEMO};

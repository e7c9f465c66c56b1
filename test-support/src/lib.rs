//! What the tests and benchmarks of every crate share, and nothing of ours: a private RabbitMQ
//! node ([`PrivateBroker`]), the devstack test environment ([`env()`]), what a capsule left on a
//! host ([`host_leftovers`], [`volume_leftovers`]), commands ([`run`]), temporary directories
//! removed on drop ([`TempDir`]), waits with a deadline ([`wait`]), free ports, and the samples
//! of a Prometheus scrape ([`openmetrics`]).
//!
//! It depends on no crate of the service, so any crate may use it in its tests without pulling
//! in another layer: the compute agent's tests never link the API or the database through it.

pub mod broker;
pub mod cmd;
pub mod env;
pub mod figures;
pub mod host;
pub mod openmetrics;
pub mod tempdir;
pub mod wait;

pub use broker::PrivateBroker;
pub use cmd::run;
pub use env::{env, env_or};
pub use host::{cgroup_roots, host_leftovers, mount_points, volume_leftovers};
pub use tempdir::TempDir;

/// A TCP port free on this host now (the kernel's pick; free for UDP too, most likely).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

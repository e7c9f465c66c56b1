//! The compute agent: receives capsule work for its host over AMQP (`zun-compute.<host>`), runs
//! it through a runtime driver, remembers it across restarts, and reports every state change
//! and a heartbeat to the conductor. It holds broker credentials only, never the database's.

pub mod agent;
pub mod chain;
pub mod config;
pub mod driver;
pub mod firewall;
pub mod host;
pub mod image;
pub mod logs;
pub mod manager;
pub mod network;
mod notes;
pub mod recorder;
pub mod reporter;
pub mod shim;
pub mod store;
pub mod volume;

use std::time::Duration;

use rpc::Bus;

pub use agent::Agent;
pub use config::Config;

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The state directory is unusable.
    #[error("cannot open the state directory")]
    Store(#[from] store::StoreError),
    /// The driver could not start.
    #[error("cannot start the runtime driver")]
    Driver(#[from] driver::DriverError),
    /// containerd is unreachable.
    #[error("cannot reach containerd")]
    Image(#[from] image::ImageError),
    /// The network configuration is unusable.
    #[error("cannot set up the capsule network")]
    Network(#[from] network::NetworkError),
    /// The security-group firewall cannot be set up.
    #[error("cannot set up the security-group firewall")]
    Firewall(#[from] firewall::FirewallError),
    /// The volume directory or tools are unusable.
    #[error("cannot set up volumes")]
    Volume(#[from] volume::VolumeError),
}

/// Builds the agent `config` describes, with the fake driver, on `bus`.
pub fn fake_agent(
    config: Config,
    bus: Bus,
) -> Result<Agent<driver::fake::FakeRuntime>, StartError> {
    let dir = &config.compute.state_dir;
    let store = store::Store::open(dir)?;
    let driver = driver::fake::FakeRuntime::new(
        &dir.join("runtime"),
        Duration::from_millis(config.runtime.fake_create_ms),
    )?;
    let reporter = reporter::Reporter::new(bus.clone(), &config.host());
    let manager = manager::Manager::new(driver, store, reporter);
    Ok(Agent::new(manager, bus, config))
}

/// Builds the agent `config` describes, with the pod driver (real containers), on `bus`.
pub async fn pod_agent(
    config: Config,
    bus: Bus,
) -> Result<Agent<driver::pod::PodDriver>, StartError> {
    let dir = &config.compute.state_dir;
    let store = store::Store::open(dir)?;
    let images = image::ImageStore::connect(&config.image).await?;
    let network = network::Network::new(config.network.clone())?;
    let (subnet, prefix, gateway) = network.subnet();
    let subnet = capsule_types::secgroup::Cidr {
        addr: subnet.into(),
        len: prefix,
    };
    let firewall = firewall::NftFirewall::new(config.firewall.clone(), subnet, gateway)?;
    let volumes = volume::LoopVolumes::new(config.volume.clone(), dir)?;
    let driver = driver::pod::PodDriver::new(dir, config.pod.clone(), images, network)
        .await?
        .with_firewall(firewall)
        .await?
        .with_volumes(volumes);
    let reporter = reporter::Reporter::new(bus.clone(), &config.host());
    let manager = manager::Manager::new(driver, store, reporter);
    Ok(Agent::new(manager, bus, config))
}

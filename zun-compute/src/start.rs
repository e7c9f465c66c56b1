//! Building an agent from its configuration: the drivers `[runtime]`, `[firewall]` and
//! `[volume]` choose, tied into the manager's members.

use std::sync::Arc;
use std::time::Duration;

use rpc::Bus;

use crate::agent::Agent;
use crate::config::{Config, DriverKind};
use crate::firewall::{SecurityGroups, SecurityGroupsError};
use crate::manager::volume::Volumes;
use crate::manager::{Drivers, Manager};
use crate::runtime::fake::{FakeError, FakeRuntime};
use crate::runtime::pod::{self, CapsuleDirs, PodRuntime};
use crate::{firewall, image, layer, network, reporter, reserve, shim, store, volume};

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The state directory is unusable.
    #[error("cannot open the state directory")]
    Store(#[from] store::StoreError),
    /// The fake runtime's directory is unusable.
    #[error("cannot start the fake runtime")]
    Fake(#[from] FakeError),
    /// The capsules' directory is unusable.
    #[error("cannot start the pod runtime")]
    Capsules(#[from] pod::CapsulesDirError),
    /// The shim cannot be run.
    #[error("cannot set up the capsules' shims")]
    Shim(#[from] shim::ShimError),
    /// containerd is unreachable.
    #[error("cannot reach containerd")]
    Image(#[from] image::ImageError),
    /// The network configuration is unusable.
    #[error("cannot set up the capsule network")]
    Network(#[from] network::NetworkError),
    /// The security-group firewall cannot be set up.
    #[error("cannot set up the security-group firewall")]
    Firewall(#[from] firewall::FirewallError),
    /// The security groups saved before a restart cannot be enforced.
    #[error("cannot enforce the saved security groups")]
    SecurityGroups(#[from] SecurityGroupsError),
    /// The volume directory or tools are unusable.
    #[error("cannot set up volumes")]
    Volume(#[from] volume::VolumeError),
    /// The writable layers' directory or tools are unusable.
    #[error("cannot set up the capsules' writable layers")]
    Layer(#[source] volume::VolumeError),
    /// The memory reserved for the host cannot be kept from the capsules.
    #[error("cannot reserve memory for the host")]
    Reserve(#[from] reserve::ReserveError),
}

/// The fake runtime's drivers, keeping their files under `<state_dir>/runtime`: capsules in a
/// table, volumes as marker files, security groups kept and enforced by no driver.
pub fn fake_drivers(
    state_dir: &std::path::Path,
    create_delay: Duration,
) -> Result<Drivers, StartError> {
    let runtime = FakeRuntime::new(&state_dir.join("runtime"), create_delay)?;
    let firewall = SecurityGroups::new(
        Arc::new(firewall::NoFirewall),
        &runtime.firewall_file(),
        None,
    );
    let marker = volume::MarkerVolumes::new(&state_dir.join("runtime"), runtime.journal_file());
    Ok(Drivers {
        volumes: Volumes::new(Arc::new(marker), CapsuleDirs::new(state_dir)),
        capsules: Arc::new(runtime),
        firewall: Arc::new(firewall),
    })
}

/// The pod runtime's drivers as `config` chooses them: containerd images, netavark network,
/// `capsule-shim` shims, the `[volume]` driver, loop-device writable layers, the `[firewall]`
/// driver; every capsule bounded by `[limits]` and `[logs]`, and all of them together by
/// `[resources] reserved_memory_mib` (set now on their parent cgroup). Enforces no security
/// group yet.
pub async fn pod_drivers(config: &Config) -> Result<Drivers, StartError> {
    let dir = &config.compute.state_dir;
    reserve::reserve_memory(config.resources.reserved_memory_mib)?;
    let images = image::ImageStore::connect(&config.image).await?;
    let network = network::Network::new(config.network.clone())?;
    let (subnet, prefix, gateway) = network.subnet();
    let subnet = capsule_types::secgroup::Cidr {
        addr: subnet.into(),
        len: prefix,
    };
    let bridge = network.config().bridge.clone();
    let network: Arc<dyn network::NetworkDriver> = Arc::new(network);
    let net = firewall::CapsuleNet {
        subnet,
        gateway,
        bridge,
    };
    let driver = firewall::from_config(config.firewall.clone(), net)?;
    let firewall = Arc::new(SecurityGroups::new(
        driver,
        &dir.join("firewall.json"),
        Some(network.clone()),
    ));
    let volumes = volume::from_config(&config.volume, dir)?;
    let layers = layer::LoopLayers::new(&config.volume, dir).map_err(StartError::Layer)?;
    let shims = shim::Shims::new(config.pod.shim.clone(), dir.join("sandbox-rootfs"))?;
    let dirs = CapsuleDirs::new(dir);
    let runtime = PodRuntime::new(
        dirs.clone(),
        config.pod.clone(),
        pod::Parts {
            images: Arc::new(images),
            network,
            shims: Arc::new(shims),
            volumes: volumes.clone(),
            firewall: firewall.clone(),
            layers: Arc::new(layers),
        },
    )?
    .with_bounds(pod::Bounds::from_config(&config.limits, &config.logs));
    Ok(Drivers {
        capsules: Arc::new(runtime),
        volumes: Volumes::new(volumes, dirs),
        firewall,
    })
}

/// Builds the agent `config` describes, with the fake runtime, on `bus`.
pub fn fake_agent(config: Config, bus: Bus) -> Result<Agent, StartError> {
    let dir = &config.compute.state_dir;
    let store = store::Store::open(dir)?;
    let drivers = fake_drivers(dir, Duration::from_millis(config.runtime.fake_create_ms))?;
    let reporter = reporter::Reporter::new(bus.clone(), &config.host());
    Ok(Agent::new(
        Manager::new(drivers, store, reporter),
        bus,
        config,
    ))
}

/// Builds the agent `config` describes, with the pod runtime (real containers), on `bus`;
/// enforces the security groups saved before a restart (the API sends a newer document when
/// the next heartbeat shows it is behind).
pub async fn pod_agent(config: Config, bus: Bus) -> Result<Agent, StartError> {
    let store = store::Store::open(&config.compute.state_dir)?;
    let drivers = pod_drivers(&config).await?;
    drivers.firewall.refresh().await?;
    let reporter = reporter::Reporter::new(bus.clone(), &config.host());
    Ok(Agent::new(
        Manager::new(drivers, store, reporter),
        bus,
        config,
    ))
}

/// Builds the agent of `config`'s `[runtime] driver`.
pub async fn agent(config: Config, bus: Bus) -> Result<Agent, StartError> {
    match config.runtime.driver {
        DriverKind::Fake => {
            tracing::warn!(
                "runtime driver \"fake\": capsules are tracked and reported, no containers run"
            );
            fake_agent(config, bus)
        }
        DriverKind::Pod => pod_agent(config, bus).await,
    }
}

//! `zun-compute`: the compute agent of one host.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use rpc::{AmqpBus, Bus};
use zun_compute::Config;

#[derive(Parser)]
#[command(
    name = "zun-compute",
    version,
    about = "Compute agent of the capsule service"
)]
struct Cli {
    /// Configuration file (TOML); every key has a default.
    #[arg(long, short, env = "ZUN_COMPUTE_CONFIG")]
    config: Option<PathBuf>,
    /// Host name (overrides `[compute] host`).
    #[arg(long)]
    host: Option<String>,
    /// State directory (overrides `[compute] state_dir`).
    #[arg(long)]
    state_dir: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("ZUN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let mut config = Config::load(cli.config.as_deref()).context("loading configuration")?;
    if let Some(h) = cli.host {
        config.compute.host = Some(h);
    }
    if let Some(d) = cli.state_dir {
        config.compute.state_dir = d;
    }
    let host = config.host();
    let bus = Bus::Amqp(AmqpBus::new(
        &config.rpc.url,
        &format!("zun-compute-{host}"),
    ));
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown().await;
        let _ = stop_tx.send(true);
    });
    zun_compute::start::agent(config, bus)
        .await
        .context("starting the agent")?
        .run(stop)
        .await;
    Ok(())
}

async fn shutdown() {
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term => {},
    }
}

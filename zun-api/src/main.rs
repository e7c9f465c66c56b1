//! `zun-api`: serves the capsule API, or manages its database (`zun-api db sync`).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use zun_api::{AppState, Config};

// glibc malloc serializes the database driver's per-value allocations across its worker
// threads (seen in profiles of list requests); mimalloc's per-thread heaps do not.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "zun-api", version, about = "Zun-compatible capsule API server")]
struct Cli {
    /// Configuration file (TOML); every key has a default.
    #[arg(long, short, env = "ZUN_API_CONFIG")]
    config: Option<PathBuf>,
    /// Log lines as text for people, or as one JSON object each for machines.
    #[arg(
        long,
        global = true,
        env = "ZUN_LOG_FORMAT",
        value_enum,
        default_value_t
    )]
    log_format: telemetry::LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Database management.
    Db {
        #[command(subcommand)]
        action: DbAction,
    },
    /// Print the default policy as a commented sample policy.yaml.
    PolicySample,
}

#[derive(Subcommand)]
enum DbAction {
    /// Apply every pending migration.
    Sync,
    /// List the applied migrations.
    Version,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init_logs(cli.log_format, "ZUN_LOG", "info");
    if let Some(Command::PolicySample) = cli.command {
        print!("{}", policy::sample_yaml());
        return Ok(());
    }
    let config =
        Config::load(cli.config.as_deref()).with_context(|| "loading configuration".to_owned())?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Db { action } => {
            let db = db::Database::connect(&config.database.url).await?;
            match action {
                DbAction::Sync => {
                    db.migrate().await?;
                    for m in db.applied_migrations().await? {
                        eprintln!("applied: {m}");
                    }
                }
                DbAction::Version => {
                    for m in db.applied_migrations().await? {
                        eprintln!("{m}");
                    }
                }
            }
            Ok(())
        }
        Command::Serve => serve(config).await,
        Command::PolicySample => unreachable!("handled above"),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listen = config.api.listen;
    let state = AppState::from_config(config).await?;
    let pending = state.db.pending_migrations().await?;
    anyhow::ensure!(
        pending.is_empty(),
        "the database needs `zun-api db sync` first (pending: {})",
        pending.join(", ")
    );
    let conductor = state
        .dispatcher
        .as_ref()
        .map(|d| zun_api::conductor::Conductor::start(&state, d));
    if conductor.is_none() {
        tracing::warn!("no [rpc] url: no compute host can take capsules");
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    tracing::info!(%listen, "zun-api listening");
    let network_api = bind(state.config.network_api.listen, "network API")
        .await?
        .map(|l| tokio::spawn(zun_api::neutron::serve(state.clone(), l, shutdown())));
    let volume_api = bind(state.config.volume_api.listen, "volume API")
        .await?
        .map(|l| tokio::spawn(zun_api::cinder::serve(state.clone(), l, shutdown())));
    let metrics_api = bind(state.config.metrics.listen, "metrics (GET /metrics)")
        .await?
        .map(|l| {
            let app = zun_api::http::metrics::router(state.clone());
            tokio::spawn(
                async move { axum::serve(l, app).with_graceful_shutdown(shutdown()).await },
            )
        });
    let app =
        axum::ServiceExt::<axum::extract::Request>::into_make_service(zun_api::service(state));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown())
        .await
        .context("serving")?;
    if let Some(n) = network_api {
        n.await
            .context("network API task")?
            .context("serving the network API")?;
    }
    if let Some(v) = volume_api {
        v.await
            .context("volume API task")?
            .context("serving the volume API")?;
    }
    if let Some(m) = metrics_api {
        m.await
            .context("metrics task")?
            .context("serving the metrics")?;
    }
    if let Some(c) = conductor {
        c.stop().await;
    }
    tracing::info!("zun-api stopped");
    Ok(())
}

/// The listener of an optional part (`what`) at `addr`, if configured; said in the log.
async fn bind(
    addr: Option<std::net::SocketAddr>,
    what: &str,
) -> anyhow::Result<Option<tokio::net::TcpListener>> {
    let Some(addr) = addr else {
        return Ok(None);
    };
    let l = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the {what} listener to {addr}"))?;
    tracing::info!(listen = %addr, "{what} listening");
    Ok(Some(l))
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

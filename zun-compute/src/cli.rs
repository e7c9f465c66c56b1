//! The command lines of the two programs this crate ships, as library functions so that every
//! build of them (`zun-compute`, `capsule-shim`, and the e2e suite's copies) is the same code:
//! `zun-compute [--config F] [--host H] [--state-dir D]` runs the agent until SIGTERM or
//! Ctrl-C; `capsule-shim start --dir <capsule_dir>` starts one capsule's shim.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use rpc::{AmqpBus, Bus};

use crate::chain::Chain;
use crate::Config;

#[derive(Parser)]
#[command(
    name = "zun-compute",
    version,
    about = "Compute agent of the capsule service"
)]
struct AgentArgs {
    /// Configuration file (TOML); every key has a default.
    #[arg(long, short, env = "ZUN_COMPUTE_CONFIG")]
    config: Option<PathBuf>,
    /// Host name (overrides `[compute] host`).
    #[arg(long)]
    host: Option<String>,
    /// State directory (overrides `[compute] state_dir`).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Log lines as text for people, or as one JSON object each for machines.
    #[arg(long, env = "ZUN_LOG_FORMAT", value_enum, default_value_t)]
    log_format: telemetry::LogFormat,
}

/// `zun-compute`: reads its arguments and configuration, starts the agent and runs it until
/// told to stop. A configuration or start-up failure is printed with its causes.
pub fn agent_main() -> ExitCode {
    let args = AgentArgs::parse();
    telemetry::init_logs(args.log_format, "ZUN_LOG", "info");
    let mut config = match Config::load(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("zun-compute: loading configuration: {}", Chain(&e));
            return ExitCode::FAILURE;
        }
    };
    if let Some(h) = args.host {
        config.compute.host = Some(h);
    }
    if let Some(d) = args.state_dir {
        config.compute.state_dir = d;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("zun-compute: cannot start the async runtime: {}", Chain(&e));
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run_agent(config))
}

async fn run_agent(config: Config) -> ExitCode {
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
    match crate::start::agent(config, bus).await {
        Ok(agent) => {
            agent.run(stop).await;
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %Chain(&e), "cannot start the agent");
            eprintln!("zun-compute: starting the agent: {}", Chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C.
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

const SHIM_USAGE: &str = "usage: capsule-shim start --dir <capsule_dir>";

/// `capsule-shim start --dir <capsule_dir>`: reads `<capsule_dir>/plan.json`, starts the shim
/// in the background and exits 0 once it listens on `<capsule_dir>/shim.sock`, or 1 with the
/// reason on stderr. It must stay single-threaded: no async runtime here.
pub fn shim_main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = match args.as_slice() {
        [cmd, flag, dir] if cmd == "start" && flag == "--dir" => PathBuf::from(dir),
        [cmd, dir] if cmd == "start" && dir.starts_with("--dir=") => {
            PathBuf::from(dir.trim_start_matches("--dir="))
        }
        [h] if h == "--help" || h == "-h" => {
            println!("{SHIM_USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{SHIM_USAGE}");
            return ExitCode::from(2);
        }
    };
    let code = crate::shim::daemon::start(&dir);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

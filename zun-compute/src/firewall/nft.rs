//! The real firewall driver: the security groups rendered into an nftables table this agent
//! owns, replaced whole in one `nft -f -` transaction on every apply.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use capsule_types::secgroup::HostFirewall;
use tokio::io::AsyncWriteExt;
use tracing::{debug, info, warn};
use uuid::Uuid;

use super::{CapsuleNet, Drift, FirewallConfig, FirewallDriver, FirewallError};

/// The host's security-group table in nftables. Cheap to clone; clones share the apply lock.
#[derive(Clone, Debug)]
pub struct NftFirewall(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    cfg: FirewallConfig,
    net: CapsuleNet,
    /// Serializes nft runs, so the last apply to start is the one left in force; holds what
    /// the last apply put in force.
    lock: tokio::sync::Mutex<Option<Applied>>,
}

/// What an apply put in force.
#[derive(Debug)]
struct Applied {
    /// The script it ran, to run again if the table is found changed.
    script: String,
    /// The rules (the script without its epoch line), so an apply that would change nothing
    /// does not run nft.
    rules: String,
    /// The table as nft listed it right after (stateless: no counters), to notice a change
    /// made by anyone else; `None` if it could not be listed then.
    listing: Option<String>,
}

/// nft identifiers: a letter, then letters, digits and `_` (at most 255 bytes).
fn valid_table(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 255
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Interface names as the kernel takes them, kept to characters nft needs no quoting for.
fn valid_interface(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl NftFirewall {
    /// Checks `cfg` with the capsule network `net` (its IPv4 subnet, the host's address on it
    /// and its bridge); touches nothing on the host.
    pub fn new(cfg: FirewallConfig, net: CapsuleNet) -> Result<Self, FirewallError> {
        let (subnet, gateway) = (net.subnet, net.gateway);
        let bad = |reason: String| FirewallError::Config {
            table: cfg.table.clone(),
            reason,
        };
        if !valid_table(&cfg.table) {
            return Err(bad(format!(
                "table name {:?} must be a letter followed by letters, digits or '_'",
                cfg.table
            )));
        }
        if !subnet.is_ipv4() {
            return Err(bad(format!("subnet {subnet} is not IPv4")));
        }
        if subnet.len == 32 || !subnet.contains(IpAddr::V4(gateway)) {
            return Err(bad(format!(
                "gateway {gateway} is not a host address of subnet {subnet}"
            )));
        }
        if cfg.nft.as_os_str().is_empty() {
            return Err(bad("nft binary is empty".into()));
        }
        if !valid_interface(&net.bridge) {
            return Err(bad(format!(
                "bridge {:?} is not an interface name (1 to 15 letters, digits, '-', '_' or '.')",
                net.bridge
            )));
        }
        Ok(Self(Arc::new(Inner {
            cfg,
            net,
            lock: tokio::sync::Mutex::new(None),
        })))
    }

    /// The configuration in use.
    pub fn config(&self) -> &FirewallConfig {
        &self.0.cfg
    }

    /// Replaces the whole table, atomically, with the rendering of `doc` for the capsules this
    /// host has (`local`: capsule uuid -> its IPv4 address). Serialized with other applies and
    /// removes; idempotent. On failure the previous table stays in force.
    pub async fn apply(
        &self,
        doc: &HostFirewall,
        local: &BTreeMap<Uuid, Ipv4Addr>,
    ) -> Result<(), FirewallError> {
        for ip in super::render::shared_addresses(local) {
            let owners: Vec<String> = local
                .iter()
                .filter(|(_, a)| **a == ip)
                .map(|(id, _)| id.to_string())
                .collect();
            warn!(%ip, capsules = %owners.join(","), "address claimed by several capsules; none of them gets rules");
        }
        let cfg = &self.0.cfg;
        let script = super::render(&cfg.table, &self.0.net, doc, local);
        let named = local
            .keys()
            .filter(|id| doc.capsules.contains_key(id))
            .count();
        // The first line names the epoch; the rules are the rest.
        let rules = script.split_once('\n').map_or("", |(_, rest)| rest);
        let mut last = self.0.lock.lock().await;
        if last.as_ref().is_some_and(|a| a.rules == rules) {
            debug!(table = %cfg.table, epoch = doc.epoch, "security groups unchanged; nft not run");
            return Ok(());
        }
        *last = None;
        let started = Instant::now();
        self.run("apply", &script).await?;
        *last = Some(Applied {
            rules: rules.to_owned(),
            listing: self.listing().await,
            script,
        });
        info!(
            table = %cfg.table,
            epoch = doc.epoch,
            capsules = named,
            unnamed = local.len() - named,
            groups = doc.groups.len(),
            ms = started.elapsed().as_millis() as u64,
            "security groups applied"
        );
        Ok(())
    }

    /// Deletes the table if present (absent is fine; idempotent).
    pub async fn remove(&self) -> Result<(), FirewallError> {
        let table = &self.0.cfg.table;
        // One transaction: declaring the table first makes the delete succeed when absent.
        let script = format!("table inet {table} {{}}\ndelete table inet {table}\n");
        let mut last = self.0.lock.lock().await;
        *last = None;
        self.run("remove", &script).await?;
        info!(%table, "security-group table removed");
        Ok(())
    }

    /// Puts the last apply back if the table is no longer as it left it (see
    /// [`FirewallDriver::restore`]).
    pub async fn restore(&self) -> Result<Option<Drift>, FirewallError> {
        let mut last = self.0.lock.lock().await;
        let Some(applied) = last.as_mut() else {
            return Ok(None);
        };
        let now = self.listing().await;
        let drift = match (&now, &applied.listing) {
            (None, _) => Drift::Missing,
            (Some(now), Some(then)) if now == then => return Ok(None),
            // Not listed after the apply: compare from now on.
            (Some(_), None) => {
                applied.listing = now;
                return Ok(None);
            }
            (Some(_), Some(_)) => Drift::Changed,
        };
        let table = &self.0.cfg.table;
        warn!(%table, %drift, "security-group table changed outside the agent; restoring it");
        self.run("restore", &applied.script).await?;
        applied.listing = self.listing().await;
        info!(%table, "security-group table restored");
        Ok(Some(drift))
    }

    /// The table as `nft -s list table` prints it (no counters), or `None` if it is not there
    /// (or cannot be listed).
    async fn listing(&self) -> Option<String> {
        let cfg = &self.0.cfg;
        let list = ["-s", "list", "table", "inet", cfg.table.as_str()].map(OsString::from);
        let (program, args) = command_line(&cfg.nft, cfg.netns.as_deref(), &list);
        let out = tokio::process::Command::new(&program)
            .args(&args)
            .env("PATH", path_env())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await;
        match out {
            Ok(out) if out.status.success() => {
                Some(String::from_utf8_lossy(&out.stdout).into_owned())
            }
            Ok(out) => {
                debug!(table = %cfg.table, stderr = %String::from_utf8_lossy(&out.stderr).trim(), "table not listed");
                None
            }
            Err(e) => {
                warn!(table = %cfg.table, error = %e, "cannot run nft to list the table");
                None
            }
        }
    }

    /// Runs `nft -f -` (in the configured namespace) with `script` on stdin.
    async fn run(&self, action: &'static str, script: &str) -> Result<(), FirewallError> {
        let started = Instant::now();
        let out = async {
            let cfg = &self.0.cfg;
            let stdin = ["-f", "-"].map(OsString::from);
            let (program, args) = command_line(&cfg.nft, cfg.netns.as_deref(), &stdin);
            let command = std::iter::once(&program)
                .chain(&args)
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" ");
            debug!(table = %cfg.table, %command, bytes = script.len(), action, "running nft");
            let spawn_error = |source| FirewallError::Spawn {
                table: cfg.table.clone(),
                action,
                command: command.clone(),
                source,
            };
            let mut child = tokio::process::Command::new(&program)
                .args(&args)
                .env("PATH", path_env())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .map_err(spawn_error)?;
            if let Some(mut stdin) = child.stdin.take() {
                // nft reads the whole script before it acts; a write error shows as its exit.
                let _ = stdin.write_all(script.as_bytes()).await;
                let _ = stdin.shutdown().await;
            }
            let out = child.wait_with_output().await.map_err(spawn_error)?;
            if out.status.success() {
                return Ok(());
            }
            Err(FirewallError::Nft {
                table: cfg.table.clone(),
                action,
                command,
                code: out.status.code(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            })
        }
        .await;
        crate::metrics::metrics().tool("nft", action, out.is_ok(), started.elapsed());
        out
    }
}

/// The program and arguments that run nft with `nft_args`, inside `netns` if given.
pub(super) fn command_line(
    nft: &Path,
    netns: Option<&Path>,
    nft_args: &[OsString],
) -> (OsString, Vec<OsString>) {
    match netns {
        None => (nft.as_os_str().to_owned(), nft_args.to_vec()),
        Some(ns) => {
            let mut enter = OsString::from("--net=");
            enter.push(ns);
            let mut args = vec![enter, nft.as_os_str().to_owned()];
            args.extend(nft_args.iter().cloned());
            (OsString::from("nsenter"), args)
        }
    }
}

/// `PATH` for nft and nsenter: Debian keeps nft in `/usr/sbin`, which a service's `PATH` may
/// lack.
fn path_env() -> OsString {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    for extra in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
        if !dirs.iter().any(|d| d == Path::new(extra)) {
            dirs.push(PathBuf::from(extra));
        }
    }
    std::env::join_paths(dirs).unwrap_or(path)
}

#[async_trait]
impl FirewallDriver for NftFirewall {
    async fn apply(
        &self,
        doc: &HostFirewall,
        local: &BTreeMap<Uuid, Ipv4Addr>,
    ) -> Result<(), FirewallError> {
        NftFirewall::apply(self, doc, local).await
    }

    async fn remove(&self) -> Result<(), FirewallError> {
        NftFirewall::remove(self).await
    }

    async fn restore(&self) -> Result<Option<Drift>, FirewallError> {
        NftFirewall::restore(self).await
    }

    fn name(&self) -> &'static str {
        "nftables"
    }
}

//! The agent's side of the shim: start it, ask it, watch it, stop it, and clean up after a shim
//! that died.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::mpsc;

use super::cgroup;
use super::plan::Plan;
use super::protocol::{ActReply, Action, EventsReply, Request, ShimEvent, ShutdownReply};
use super::status::Status;
use super::{ShimError, PID_FILE, SOCKET_FILE};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// Beyond the grace: what the shim may need to delete containers and cgroups.
const SHUTDOWN_SLACK: Duration = Duration::from_secs(15);

fn absolute(dir: &Path) -> PathBuf {
    dir.canonicalize().unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|cwd| cwd.join(dir))
            .unwrap_or_else(|_| dir.to_owned())
    })
}

/// Starts the shim of the capsule whose plan is in `dir` (`<shim_binary> start --dir <dir>`)
/// and returns once it listens on `shim.sock`; its containers then start on their own (follow
/// them with [`watch`]). The error carries the shim's own words.
pub async fn spawn(shim_binary: &Path, dir: &Path) -> Result<(), ShimError> {
    let dir = absolute(dir);
    let out = tokio::process::Command::new(shim_binary)
        .arg("start")
        .arg("--dir")
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .await
        .map_err(|source| ShimError::Exec {
            binary: shim_binary.to_owned(),
            source,
        })?;
    if out.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&out.stderr);
    let text = text.trim().trim_start_matches("capsule-shim: ");
    Err(ShimError::Start(if text.is_empty() {
        format!("capsule-shim exited with {}", out.status)
    } else {
        text.to_owned()
    }))
}

async fn connect(dir: &Path) -> Result<UnixStream, ShimError> {
    let path = dir.join(SOCKET_FILE);
    let short =
        super::ShortPath::new(dir, SOCKET_FILE).map_err(|source| ShimError::NotRunning {
            path: path.clone(),
            source,
        })?;
    match tokio::time::timeout(CONNECT_TIMEOUT, UnixStream::connect(short.path())).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(source)) => Err(ShimError::NotRunning { path, source }),
        Err(_) => Err(ShimError::Timeout {
            what: "a connection",
            after: CONNECT_TIMEOUT,
        }),
    }
}

async fn ask(
    stream: UnixStream,
    dir: &Path,
    request: &Request,
) -> Result<(BufReader<UnixStream>, String), ShimError> {
    let path = dir.join(SOCKET_FILE);
    let io = |source| ShimError::Io {
        path: path.clone(),
        source,
    };
    let mut line = serde_json::to_vec(request).map_err(|e| io(std::io::Error::other(e)))?;
    line.push(b'\n');
    let mut reader = BufReader::new(stream);
    reader.get_mut().write_all(&line).await.map_err(io)?;
    let mut answer = String::new();
    let n = reader.read_line(&mut answer).await.map_err(io)?;
    if n == 0 {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the shim closed the connection",
        )));
    }
    Ok((reader, answer))
}

fn parse<T: serde::de::DeserializeOwned>(answer: &str) -> Result<T, ShimError> {
    serde_json::from_str(answer.trim()).map_err(|_| ShimError::Protocol {
        answer: answer.trim().chars().take(500).collect(),
    })
}

/// The capsule's current [`Status`].
pub async fn status(dir: &Path) -> Result<Status, ShimError> {
    let stream = connect(dir).await?;
    let (_, answer) = tokio::time::timeout(ANSWER_TIMEOUT, ask(stream, dir, &Request::Status))
        .await
        .map_err(|_| ShimError::Timeout {
            what: "a status",
            after: ANSWER_TIMEOUT,
        })??;
    parse(&answer)
}

/// The capsule's [`Status`] now, then after every change, until the receiver is dropped or the
/// shim exits (the channel then closes).
pub async fn watch(dir: &Path) -> Result<mpsc::Receiver<Status>, ShimError> {
    let stream = connect(dir).await?;
    let (mut reader, first) =
        tokio::time::timeout(ANSWER_TIMEOUT, ask(stream, dir, &Request::Watch))
            .await
            .map_err(|_| ShimError::Timeout {
                what: "a status",
                after: ANSWER_TIMEOUT,
            })??;
    let first: Status = parse(&first)?;
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        if tx.send(first).await.is_err() {
            return;
        }
        let mut line = String::new();
        loop {
            line.clear();
            let read = tokio::select! {
                r = reader.read_line(&mut line) => r,
                () = tx.closed() => return,
            };
            match read {
                Ok(0) | Err(_) => return,
                Ok(_) => match serde_json::from_str::<Status>(line.trim()) {
                    Ok(s) => {
                        if tx.send(s).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!("shim watch: unexpected line {line:?}: {e}");
                        return;
                    }
                },
            }
        }
    });
    Ok(rx)
}

/// Stops the capsule: asks its shim to stop every container (SIGTERM, SIGKILL after `grace`),
/// delete them and their cgroups, and exit. If no shim answers but `shim.pid` names a live
/// capsule shim of `dir`, that shim is killed; then whatever is left is removed (the capsule's
/// cgroup tree and every process in it, libcontainer's state, the socket and pid files).
/// Idempotent: a capsule with nothing left is `Ok`.
pub async fn shutdown(dir: &Path, grace: Duration) -> Result<(), ShimError> {
    let dir = absolute(dir);
    if let Some(pid) = live_shim_pid(&dir) {
        match ask_shutdown(&dir, grace).await {
            Ok(reply) => {
                wait_gone(pid, Duration::from_secs(2)).await;
                if reply.ok && live_shim_pid(&dir).is_none() {
                    return Ok(());
                }
                tracing::warn!(errors = ?reply.errors, "the shim's shutdown left things behind");
            }
            Err(e) => tracing::warn!(
                "the shim (pid {pid}) did not shut down: {}; killing it",
                super::error_chain(&e)
            ),
        }
        if let Some(pid) = live_shim_pid(&dir) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            wait_gone(pid, Duration::from_secs(2)).await;
        }
    }
    tokio::task::spawn_blocking(move || clean_leftovers(&dir))
        .await
        .map_err(|e| ShimError::Cleanup(vec![format!("cleanup task: {e}")]))?
}

/// Does `action` to app container `container` (every app container when `None`) and answers
/// once it is done; a stop waits for the grace period at most (plus a little).
pub async fn act(
    dir: &Path,
    container: Option<&str>,
    action: Action,
) -> Result<ActReply, ShimError> {
    let grace = match action {
        Action::Stop { grace_ms } | Action::Restart { grace_ms } => Duration::from_millis(grace_ms),
        _ => Duration::ZERO,
    };
    let stream = connect(dir).await?;
    let request = Request::Act {
        container: container.map(str::to_owned),
        action,
    };
    let wait = grace + SHUTDOWN_SLACK;
    let (_, answer) = tokio::time::timeout(wait, ask(stream, dir, &request))
        .await
        .map_err(|_| ShimError::Timeout {
            what: "an action",
            after: wait,
        })??;
    parse(&answer)
}

/// The events the shim numbered above `after`.
pub async fn events(dir: &Path, after: u64) -> Result<Vec<ShimEvent>, ShimError> {
    let stream = connect(dir).await?;
    let (_, answer) =
        tokio::time::timeout(ANSWER_TIMEOUT, ask(stream, dir, &Request::Events { after }))
            .await
            .map_err(|_| ShimError::Timeout {
                what: "events",
                after: ANSWER_TIMEOUT,
            })??;
    parse::<EventsReply>(&answer).map(|r| r.events)
}

async fn ask_shutdown(dir: &Path, grace: Duration) -> Result<ShutdownReply, ShimError> {
    let stream = connect(dir).await?;
    let request = Request::Shutdown {
        grace_ms: Some(u64::try_from(grace.as_millis()).unwrap_or(u64::MAX)),
    };
    let wait = grace + SHUTDOWN_SLACK;
    let (_, answer) = tokio::time::timeout(wait, ask(stream, dir, &request))
        .await
        .map_err(|_| ShimError::Timeout {
            what: "a shutdown",
            after: wait,
        })??;
    parse(&answer)
}

async fn wait_gone(pid: i32, patience: Duration) {
    let start = tokio::time::Instant::now();
    while process_alive(pid) && start.elapsed() < patience {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn clean_leftovers(dir: &Path) -> Result<(), ShimError> {
    let mut errors = Vec::new();
    match Plan::cgroup_parent_of(dir) {
        Ok(Some(parent)) => match cgroup::hierarchies() {
            Ok(h) => {
                cgroup::signal_tree(&h, &parent, Signal::SIGKILL);
                if let Err(e) = cgroup::remove_tree(&h, &parent, Duration::from_secs(3)) {
                    errors.extend(e);
                }
            }
            Err(e) => errors.push(format!("cannot list cgroup mounts: {e}")),
        },
        // No usable plan: no shim ever ran this capsule, so it has no cgroup.
        Ok(None) => {}
        Err(e) => errors.push(super::error_chain(&e)),
    }
    let runtime = dir.join("runtime");
    if let Err(e) = std::fs::remove_dir_all(&runtime) {
        if e.kind() != std::io::ErrorKind::NotFound {
            errors.push(format!("cannot remove {}: {e}", runtime.display()));
        }
    }
    for f in [SOCKET_FILE, PID_FILE, "shim.lock"] {
        if let Err(e) = std::fs::remove_file(dir.join(f)) {
            if e.kind() != std::io::ErrorKind::NotFound {
                errors.push(format!("cannot remove {}: {e}", dir.join(f).display()));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ShimError::Cleanup(errors))
    }
}

/// Whether `pid` runs (a zombie does not).
fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses and may hold spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// The pid in `<dir>/shim.pid` if it is a live `capsule-shim` started for `dir`.
fn live_shim_pid(dir: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(dir.join(PID_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    if pid <= 0 || !process_alive(pid) {
        return None;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    let is_shim = args
        .first()
        .is_some_and(|a| String::from_utf8_lossy(a).contains("capsule-shim"));
    let dir = absolute(dir);
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok();
    let names_dir = args.iter().any(|a| {
        let p = Path::new(std::str::from_utf8(a).unwrap_or(""));
        let p = match (&cwd, p.is_relative()) {
            (Some(cwd), true) => cwd.join(p),
            _ => p.to_owned(),
        };
        p == dir || p.canonicalize().is_ok_and(|c| c == dir)
    });
    (is_shim && names_dir).then_some(pid)
}

/// Whether a live shim serves the capsule in `dir` (by `shim.pid`, checked against the
/// process's command line, so a recycled pid does not count).
pub fn is_alive(dir: &Path) -> bool {
    live_shim_pid(dir).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liveness() {
        assert!(process_alive(std::process::id() as i32));
        assert!(!process_alive(i32::MAX));
    }

    #[tokio::test]
    async fn a_capsule_with_nothing_left_shuts_down_fine() {
        let dir = std::env::temp_dir().join(format!("shim-client-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(PID_FILE), format!("{}\n", std::process::id())).unwrap();
        // Our own pid is no capsule-shim: it must not be killed, and cleanup goes on.
        assert!(!is_alive(&dir));
        shutdown(&dir, Duration::from_millis(10)).await.unwrap();
        shutdown(&dir, Duration::from_millis(10)).await.unwrap();
        assert!(!dir.join(PID_FILE).exists());
        assert!(matches!(
            status(&dir).await,
            Err(ShimError::NotRunning { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

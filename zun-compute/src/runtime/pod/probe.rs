//! Health probes of a pod's containers: `exec` runs the command in the container through its
//! shim (as `zun exec` does) and wants exit code 0; `tcpSocket` and `httpGet` connect to
//! 127.0.0.1:port inside the capsule's network namespace, from a short-lived thread that
//! joined it (the namespace stays with that thread, never with the agent's runtime threads).
//!
//! The HTTP check is a few lines of std I/O rather than a client crate: one `GET` with
//! `Connection: close` on a socket made inside the namespace, and the status line of the
//! answer (2xx and 3xx are healthy, as the kubelet reads them); a client's pool and runtime
//! would be of no use on a thread that lives for one request.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use capsule_types::rpc::{CapsuleSpec, ContainerRef};
use capsule_types::template::ProbeAction;
use nix::sched::{setns, CloneFlags};
use tokio::io::AsyncReadExt;

use super::PodRuntime;
use crate::runtime::ExecOutcome;
use crate::shim::Plan;

/// Most output of an exec probe kept for the reason of a failure.
const OUTPUT_KEPT: usize = 512;

impl PodRuntime {
    pub(super) async fn probe_container(
        &self,
        spec: &CapsuleSpec,
        container: &ContainerRef,
        action: &ProbeAction,
        timeout: Duration,
    ) -> Result<(), String> {
        match action {
            ProbeAction::Exec { command } => {
                self.probe_exec(spec, container, command.clone(), timeout)
                    .await
            }
            ProbeAction::TcpSocket { port } => {
                let netns = self.netns_of(spec)?;
                in_netns(netns, *port, timeout, None).await
            }
            ProbeAction::HttpGet {
                path,
                port,
                headers,
            } => {
                let netns = self.netns_of(spec)?;
                let request = http_request(path, *port, headers);
                in_netns(netns, *port, timeout, Some(request)).await
            }
        }
    }

    fn netns_of(&self, spec: &CapsuleSpec) -> Result<PathBuf, String> {
        let plan = Plan::load(&self.dirs.dir(spec.uuid))
            .map_err(|e| format!("cannot read the capsule's plan: {e}"))?;
        plan.netns
            .ok_or_else(|| "the capsule has no network namespace".to_owned())
    }

    async fn probe_exec(
        &self,
        spec: &CapsuleSpec,
        container: &ContainerRef,
        command: Vec<String>,
        timeout: Duration,
    ) -> Result<(), String> {
        let started = self
            .exec_in(spec, container, command, false, false)
            .await
            .map_err(|e| format!("cannot run the probe: {e}"))?;
        let mut process = match started {
            ExecOutcome::Started(p) => p,
            ExecOutcome::Conflict(why) | ExecOutcome::Failed(why) => return Err(why),
        };
        let run = async {
            let mut output = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                match process.output.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        output.extend_from_slice(&chunk[..n]);
                        if output.len() > OUTPUT_KEPT {
                            output.drain(..output.len() - OUTPUT_KEPT);
                        }
                    }
                }
            }
            (process.exit.await, output)
        };
        // Out of time, the process is dropped, which kills it.
        match tokio::time::timeout(timeout, run).await {
            Err(_) => Err(format!("timed out after {} s", timeout.as_secs())),
            Ok((Some(0), _)) => Ok(()),
            Ok((code, output)) => {
                let output = String::from_utf8_lossy(&output);
                let code = code.map_or("lost".to_owned(), |c| c.to_string());
                Err(format!(
                    "command exited with code {code}: {}",
                    output.trim()
                ))
            }
        }
    }
}

/// `GET path` for the capsule's `port`, with `headers`.
fn http_request(path: &str, port: u16, headers: &[(String, String)]) -> Vec<u8> {
    let mut r = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: capsule-probe/1\r\nAccept: */*\r\nConnection: close\r\n"
    );
    for (name, value) in headers {
        r.push_str(&format!("{name}: {value}\r\n"));
    }
    r.push_str("\r\n");
    r.into_bytes()
}

/// Connects to 127.0.0.1:`port` in namespace `netns` within `timeout` and, with a `request`,
/// sends it and reads the status.
async fn in_netns(
    netns: PathBuf,
    port: u16,
    timeout: Duration,
    request: Option<Vec<u8>>,
) -> Result<(), String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("capsule-probe".into())
        .spawn(move || {
            let _ = tx.send(connect_in(&netns, port, timeout, request));
        })
        .map_err(|e| format!("cannot start a probe thread: {e}"))?;
    rx.await
        .unwrap_or_else(|_| Err("the probe thread ended without an answer".into()))
}

/// On the calling thread (which it moves into `netns` for good: call it on a thread of its own).
fn connect_in(
    netns: &std::path::Path,
    port: u16,
    timeout: Duration,
    request: Option<Vec<u8>>,
) -> Result<(), String> {
    let ns = std::fs::File::open(netns).map_err(|e| format!("cannot open the namespace: {e}"))?;
    setns(&ns, CloneFlags::CLONE_NEWNET).map_err(|e| format!("cannot enter the namespace: {e}"))?;
    let deadline = Instant::now() + timeout;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("cannot connect to port {port}: {e}"))?;
    let Some(request) = request else {
        return Ok(());
    };
    let left = || {
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    stream
        .set_write_timeout(Some(left()))
        .and_then(|()| stream.write_all(&request))
        .map_err(|e| format!("cannot send the request to port {port}: {e}"))?;
    let mut head = Vec::new();
    let mut chunk = [0u8; 256];
    while !head.contains(&b'\n') && head.len() < 1024 {
        stream
            .set_read_timeout(Some(left()))
            .map_err(|e| e.to_string())?;
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("no answer from port {port}: {e}")),
        }
    }
    status_ok(&head)
}

/// Whether an HTTP answer's first line says 2xx or 3xx.
fn status_ok(head: &[u8]) -> Result<(), String> {
    let line = String::from_utf8_lossy(head);
    let line = line.lines().next().unwrap_or_default().trim();
    let code = line
        .strip_prefix("HTTP/")
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| format!("not an HTTP answer: {line:?}"))?;
    if (200..400).contains(&code) {
        Ok(())
    } else {
        Err(format!("HTTP probe failed with status {code}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_2xx_and_3xx_are_healthy() {
        assert!(status_ok(b"HTTP/1.1 200 OK\r\n").is_ok());
        assert!(status_ok(b"HTTP/1.0 302 Found\r\n").is_ok());
        assert_eq!(
            status_ok(b"HTTP/1.1 503 Service Unavailable\r\n"),
            Err("HTTP probe failed with status 503".into())
        );
        assert!(status_ok(b"SSH-2.0-OpenSSH\r\n").is_err());
        assert!(status_ok(b"").is_err());
    }

    #[test]
    fn the_request_names_the_path_and_the_headers() {
        let r = http_request("/healthz?x=1", 8080, &[("X-Probe".into(), "1".into())]);
        let r = String::from_utf8(r).unwrap();
        assert!(r.starts_with("GET /healthz?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"));
        assert!(r.contains("\r\nX-Probe: 1\r\n"));
        assert!(r.ends_with("\r\n\r\n"));
    }
}

//! The shim's clients: connections on `shim.sock` and the newline-delimited JSON protocol
//! (status, watch, shutdown) they speak.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use serde::Serialize;

use super::daemon::Shim;
use super::lifecycle::DEFAULT_GRACE;
use super::protocol::{ErrorReply, Request};
use super::status::Status;

const MAX_REQUEST: usize = 64 * 1024;
const MAX_PENDING_OUTPUT: usize = 4 * 1024 * 1024;

pub(super) struct Client {
    pub(super) stream: UnixStream,
    input: Vec<u8>,
    pub(super) output: Vec<u8>,
    watching: bool,
    pub(super) awaiting_shutdown: bool,
    pub(super) closed: bool,
}

impl Shim {
    fn status(&self) -> Status {
        Status {
            phase: self.phase,
            reason: self.reason.clone(),
            sandbox_pid: self.sandbox_pid,
            containers: self.units.iter().map(|u| u.status.clone()).collect(),
        }
    }

    pub(super) fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if stream.set_nonblocking(true).is_ok() {
                        self.clients.push(Client {
                            stream,
                            input: Vec::new(),
                            output: Vec::new(),
                            watching: false,
                            awaiting_shutdown: false,
                            closed: false,
                        });
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    break;
                }
            }
        }
    }

    pub(super) fn on_client_input(&mut self, i: usize) {
        let mut buf = [0u8; 4096];
        loop {
            let c = &mut self.clients[i];
            match c.stream.read(&mut buf) {
                Ok(0) => {
                    c.closed = true;
                    return;
                }
                Ok(n) => {
                    c.input.extend_from_slice(&buf[..n]);
                    if c.input.len() > MAX_REQUEST {
                        c.closed = true;
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    c.closed = true;
                    return;
                }
            }
        }
        while let Some(nl) = self.clients[i].input.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.clients[i].input.drain(..=nl).collect();
            let line = String::from_utf8_lossy(&line);
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Request>(line.trim()) {
                Ok(Request::Status) => {
                    let s = self.status();
                    send(&mut self.clients[i], &s);
                }
                Ok(Request::Watch) => {
                    let s = self.status();
                    self.clients[i].watching = true;
                    send(&mut self.clients[i], &s);
                }
                Ok(Request::Shutdown { grace_ms }) => {
                    self.clients[i].awaiting_shutdown = true;
                    let grace = grace_ms.map(Duration::from_millis).unwrap_or(DEFAULT_GRACE);
                    self.begin_shutdown(grace);
                }
                Err(e) => send(
                    &mut self.clients[i],
                    &ErrorReply {
                        error: format!("bad request: {e}"),
                    },
                ),
            }
        }
        self.flush_client(i);
    }

    pub(super) fn flush_client(&mut self, i: usize) {
        let c = &mut self.clients[i];
        while !c.output.is_empty() {
            match c.stream.write(&c.output) {
                Ok(0) => {
                    c.closed = true;
                    return;
                }
                Ok(n) => {
                    c.output.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    c.closed = true;
                    return;
                }
            }
        }
    }

    /// Sends the status to every watcher if it changed since the last time.
    pub(super) fn broadcast(&mut self) {
        let s = self.status();
        if self.last_sent.as_ref() == Some(&s) {
            return;
        }
        for i in 0..self.clients.len() {
            if self.clients[i].watching && !self.clients[i].closed {
                send(&mut self.clients[i], &s);
                self.flush_client(i);
            }
        }
        self.last_sent = Some(s);
    }
}

pub(super) fn send<T: Serialize>(c: &mut Client, value: &T) {
    if c.output.len() > MAX_PENDING_OUTPUT {
        // A watcher that does not read: let it go.
        c.closed = true;
        return;
    }
    if let Ok(mut line) = serde_json::to_vec(value) {
        line.push(b'\n');
        c.output.extend_from_slice(&line);
    }
}

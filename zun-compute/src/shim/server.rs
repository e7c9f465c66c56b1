//! The shim's clients: connections on `shim.sock` and the newline-delimited JSON protocol
//! (status, watch, shutdown, actions, events, exec) they speak.

use std::io::{self, Read};
use std::time::Duration;

use super::protocol::{ErrorReply, EventsReply, Request};
use super::state::{send, Client, Shim, DEFAULT_GRACE};

const MAX_REQUEST: usize = 64 * 1024;

impl Shim {
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
                            pending_act: None,
                            exec: None,
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
                // An exec's connection carries nothing more: data is ignored, EOF ends it.
                Ok(_) if c.exec.is_some() => continue,
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
                Ok(Request::Act { container, action }) => {
                    if self.clients[i].pending_act.is_some() {
                        send(
                            &mut self.clients[i],
                            &ErrorReply {
                                error: "one action at a time per connection".into(),
                            },
                        );
                    } else {
                        self.act(i, container.as_deref(), action);
                    }
                }
                Ok(Request::Events { after }) => {
                    let events = self
                        .events
                        .iter()
                        .filter(|e| e.seq > after)
                        .cloned()
                        .collect();
                    send(&mut self.clients[i], &EventsReply { events });
                }
                Ok(Request::Exec {
                    container,
                    args,
                    tty,
                    stdin,
                }) => {
                    // The connection is the exec's from now on: nothing more is read from it.
                    self.clients[i].input.clear();
                    self.exec_start(i, &container, args, tty, stdin);
                    return;
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
}

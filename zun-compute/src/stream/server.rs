//! The stream listener's HTTP side: `GET /exec/<exec_id>` with `Authorization: Bearer
//! <grant>`, upgraded to a WebSocket that carries one exec's bytes.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use uuid::Uuid;

use super::{Claimed, Refused, Streams};
use crate::runtime::ExecOutcome;

/// Output read at once.
const CHUNK: usize = 32 * 1024;
/// How long the exit code may lag behind the end of the output.
const EXIT_PATIENCE: Duration = Duration::from_secs(10);

/// Serves `listener` until `stop` turns true.
pub async fn serve(
    listener: std::net::TcpListener,
    streams: Arc<Streams>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let app = Router::new()
        .route("/exec/{exec_id}", get(attach))
        .with_state(streams.clone());
    let purge = {
        let streams = streams.clone();
        tokio::spawn(async move {
            let mut t = tokio::time::interval(Duration::from_secs(5));
            loop {
                t.tick().await;
                streams.purge();
            }
        })
    };
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            while !*stop.borrow() {
                if stop.changed().await.is_err() {
                    break;
                }
            }
        })
        .await;
    purge.abort();
    served
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

async fn attach(
    State(streams): State<Arc<Streams>>,
    Path(exec_id): Path<String>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let Ok(exec_id) = exec_id.parse::<Uuid>() else {
        return (StatusCode::NOT_FOUND, "no such exec session").into_response();
    };
    let Some(grant) = bearer(&headers) else {
        return (StatusCode::UNAUTHORIZED, "a grant is required").into_response();
    };
    let claimed = match streams.claim(exec_id, grant) {
        Ok(c) => c,
        Err(Refused::NotFound) => {
            return (StatusCode::NOT_FOUND, "no such exec session").into_response()
        }
        Err(Refused::Unauthorized) => {
            tracing::info!(%exec_id, "exec stream refused: bad, used or lapsed grant");
            return (StatusCode::UNAUTHORIZED, "bad, used or lapsed grant").into_response();
        }
    };
    match ws {
        Ok(ws) => ws.on_upgrade(move |socket| run(socket, streams, claimed)),
        Err(rejection) => {
            streams.ended(exec_id);
            rejection.into_response()
        }
    }
}

async fn close(socket: &mut WebSocket, code: u16, reason: String) {
    let mut reason = reason;
    // A close reason is at most 123 bytes.
    while reason.len() > 123 {
        reason.pop();
    }
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await;
}

/// Starts the process and carries its bytes until it exits or the client goes.
async fn run(mut socket: WebSocket, streams: Arc<Streams>, c: Claimed) {
    let exec_id = c.exec_id;
    let started = streams
        .runtime()
        .exec(&c.spec, &c.container, c.command.clone(), c.tty, true)
        .await;
    let mut process = match started {
        Ok(ExecOutcome::Started(p)) => p,
        Ok(ExecOutcome::Conflict(why)) | Ok(ExecOutcome::Failed(why)) => {
            close(&mut socket, 1011, why).await;
            streams.ended(exec_id);
            return;
        }
        Err(e) => {
            let why = crate::chain::Chain(&e).to_string();
            close(&mut socket, 1011, why).await;
            streams.ended(exec_id);
            return;
        }
    };
    tracing::info!(%exec_id, capsule = %c.spec.uuid, container = %c.container.name, tty = c.tty, "exec stream attached");
    streams.attached(exec_id, process.terminal.clone());
    let mut buf = vec![0u8; CHUNK];
    let mut output_open = true;
    let mut input = process.input.take();
    let client_gone = loop {
        tokio::select! {
            read = process.output.read(&mut buf), if output_open => match read {
                Ok(0) | Err(_) => output_open = false,
                Ok(n) => {
                    if socket.send(Message::Binary(buf[..n].to_vec().into())).await.is_err() {
                        break true;
                    }
                }
            },
            msg = socket.recv() => match msg {
                // An empty frame is the end of the client's stdin: the process's stdin is
                // closed (for a terminal, dropping the writer changes nothing: the client
                // sends ^D).
                Some(Ok(Message::Binary(b))) if b.is_empty() => input = None,
                Some(Ok(Message::Binary(b))) => {
                    if let Some(i) = input.as_mut() {
                        if i.write_all(&b).await.is_err() {
                            input = None;
                        }
                    }
                }
                Some(Ok(Message::Text(t))) => {
                    if let Some(i) = input.as_mut() {
                        if i.write_all(t.as_bytes()).await.is_err() {
                            input = None;
                        }
                    }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break true,
            },
            else => break false,
        }
        if !output_open {
            break false;
        }
    };
    if client_gone {
        // Dropping the process kills it and everything it started.
        tracing::info!(%exec_id, "exec stream closed by the client: killing the process");
        drop(process);
        streams.ended(exec_id);
        return;
    }
    drop(input);
    let code = tokio::time::timeout(EXIT_PATIENCE, process.exit).await;
    let reason = match code {
        Ok(Some(code)) => format!("exit {code}"),
        Ok(None) => "exit unknown".to_owned(),
        Err(_) => "exit unknown".to_owned(),
    };
    tracing::info!(%exec_id, %reason, "exec stream done");
    close(&mut socket, 1000, reason).await;
    streams.ended(exec_id);
}

//! A websocket relay: the frames of a client's websocket (axum's server side) go to a compute
//! host's stream (tungstenite's client side) and back, until either side closes or fails; then
//! the other is closed too, so the host ends the session's process. The host's close reason
//! (`exit <code>`) is passed on to the client. Pings are answered by each side's own library.

use axum::extract::ws::{self, WebSocket};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message as HostMessage;

use crate::compute::stream::HostStream;

/// How a relay ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelayEnd {
    /// The host closed, with this reason (`exit 0`).
    Host(Option<String>),
    /// The client closed or went away.
    Client,
}

fn to_host(frame: Option<ws::CloseFrame>) -> Option<CloseFrame> {
    frame.map(|f| CloseFrame {
        code: CloseCode::from(f.code),
        reason: f.reason.as_str().into(),
    })
}

fn to_client(frame: Option<&CloseFrame>) -> Option<ws::CloseFrame> {
    frame.map(|f| ws::CloseFrame {
        code: u16::from(f.code),
        reason: f.reason.as_str().into(),
    })
}

/// Relays between `client` and `host` until one side is done.
pub async fn relay(mut client: WebSocket, mut host: HostStream) -> RelayEnd {
    loop {
        tokio::select! {
            m = client.recv() => match m {
                Some(Ok(ws::Message::Binary(b))) => {
                    if host.send(HostMessage::Binary(b)).await.is_err() {
                        let _ = client.send(ws::Message::Close(None)).await;
                        return RelayEnd::Host(None);
                    }
                }
                Some(Ok(ws::Message::Text(t))) => {
                    if host.send(HostMessage::Text(t.as_str().into())).await.is_err() {
                        let _ = client.send(ws::Message::Close(None)).await;
                        return RelayEnd::Host(None);
                    }
                }
                Some(Ok(ws::Message::Ping(_) | ws::Message::Pong(_))) => {}
                Some(Ok(ws::Message::Close(frame))) => {
                    let _ = host.close(to_host(frame)).await;
                    return RelayEnd::Client;
                }
                // Gone without a close (killed, network lost): the host ends the session.
                Some(Err(_)) | None => {
                    let _ = host.close(None).await;
                    return RelayEnd::Client;
                }
            },
            m = host.next() => match m {
                Some(Ok(HostMessage::Binary(b))) => {
                    if client.send(ws::Message::Binary(b)).await.is_err() {
                        let _ = host.close(None).await;
                        return RelayEnd::Client;
                    }
                }
                Some(Ok(HostMessage::Text(t))) => {
                    if client.send(ws::Message::Text(t.as_str().into())).await.is_err() {
                        let _ = host.close(None).await;
                        return RelayEnd::Client;
                    }
                }
                Some(Ok(HostMessage::Close(frame))) => {
                    let reason = frame.as_ref().map(|f| f.reason.as_str().to_owned());
                    let _ = client.send(ws::Message::Close(to_client(frame.as_ref()))).await;
                    // Finish the host's closing handshake.
                    let _ = host.next().await;
                    return RelayEnd::Host(reason);
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    let _ = client.send(ws::Message::Close(None)).await;
                    return RelayEnd::Host(None);
                }
            },
        }
    }
}

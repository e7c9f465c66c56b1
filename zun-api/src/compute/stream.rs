//! The other way to a compute host: its stream listener, for the bytes of an interactive exec
//! that cannot ride AMQP. The API connects to `ws://<address>/exec/<exec_id>`, where `address`
//! is what the host's heartbeats advertised (never an address from a request), and presents
//! the session's grant as `Authorization: Bearer`; the host holds the grant and refuses any
//! other. The grant is never logged.

use std::time::Duration;

use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

/// How long connecting to a host's stream listener may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// An open stream to a host.
pub type HostStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Why a host's stream could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The advertised address is not a `host:port`.
    #[error("compute host stream address {address:?} is not host:port")]
    BadAddress {
        /// The address.
        address: String,
    },
    /// The host answered the handshake with this HTTP status (the grant is unknown, used,
    /// expired or not this session's: 401/403/404).
    #[error("compute host refused the stream with HTTP {status}")]
    Refused {
        /// The status.
        status: u16,
    },
    /// The host could not be reached in time, or the handshake failed.
    #[error("compute host stream listener {address} could not be reached")]
    Unreachable {
        /// The address.
        address: String,
        /// Why.
        #[source]
        source: Box<WsError>,
    },
    /// Connecting took longer than allowed.
    #[error("compute host stream listener {address} did not answer in time")]
    Timeout {
        /// The address.
        address: String,
    },
}

/// Whether `address` is a plain `host:port` (a name or an IPv4 address, or a bracketed IPv6
/// address, then a port), so it cannot change the URL it is put in.
pub fn is_host_port(address: &str) -> bool {
    let Some((host, port)) = address.rsplit_once(':') else {
        return false;
    };
    let host_ok = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        !v6.is_empty()
            && v6
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
    } else {
        !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    };
    host_ok && port.parse::<u16>().is_ok_and(|p| p > 0)
}

/// Opens exec session `exec_id`'s stream on the host listening at `address`, with `grant`.
pub async fn connect_exec(
    address: &str,
    exec_id: Uuid,
    grant: &str,
) -> Result<HostStream, StreamError> {
    if !is_host_port(address) {
        return Err(StreamError::BadAddress {
            address: address.to_owned(),
        });
    }
    let unreachable = |source: WsError| StreamError::Unreachable {
        address: address.to_owned(),
        source: Box::new(source),
    };
    let mut request = format!("ws://{address}/exec/{exec_id}")
        .into_client_request()
        .map_err(unreachable)?;
    let mut bearer = HeaderValue::from_str(&format!("Bearer {grant}")).map_err(|e| {
        unreachable(WsError::HttpFormat(
            tokio_tungstenite::tungstenite::http::Error::from(e),
        ))
    })?;
    bearer.set_sensitive(true);
    request.headers_mut().insert("authorization", bearer);
    let connect = tokio_tungstenite::connect_async(request);
    match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
        Err(_) => Err(StreamError::Timeout {
            address: address.to_owned(),
        }),
        Ok(Ok((stream, _))) => Ok(stream),
        Ok(Err(WsError::Http(resp))) => Err(StreamError::Refused {
            status: resp.status().as_u16(),
        }),
        Ok(Err(e)) => Err(unreachable(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_host_and_port() {
        for ok in ["127.0.0.1:9520", "compute-1.example:80", "[::1]:9520"] {
            assert!(is_host_port(ok), "{ok}");
        }
        for bad in [
            "127.0.0.1",
            "h:0",
            "h:99999",
            "evil@h:1",
            "h/x:1",
            "h:1/x",
            ":1",
            "[]:1",
            "h :1",
        ] {
            assert!(!is_host_port(bad), "{bad}");
        }
    }
}

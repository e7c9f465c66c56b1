//! The wire: a raw HTTP/1.1 client that sends requests exactly as built (nothing normalized)
//! and reads the answer to the end, or calls it a hang or a dropped connection.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An answer later than this is a hang.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(15);

/// One of the stack's three APIs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Api {
    Capsule,
    Network,
    Volume,
}

/// A request exactly as it goes on the wire (the request target is not normalized).
#[derive(Clone)]
pub(crate) struct Wire {
    pub(crate) api: Api,
    pub(crate) method: String,
    pub(crate) target: Vec<u8>,
    pub(crate) headers: Vec<(String, Vec<u8>)>,
    pub(crate) body: Option<Vec<u8>>,
    pub(crate) chunked: bool,
    /// The case writes its own `Host` headers (none, one or several).
    pub(crate) own_host: bool,
}

impl std::fmt::Debug for Wire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<String> = self
            .headers
            .iter()
            // Real Keystone (Fernet) tokens are not shown; generated ones are.
            .filter(|(k, v)| !(k == "X-Auth-Token" && v.starts_with(b"gAAAA")))
            .map(|(k, v)| format!("{k}: {}", String::from_utf8_lossy(v)))
            .collect();
        write!(
            f,
            "{:?} {} {} {:?}{}",
            self.api,
            self.method,
            clip(&String::from_utf8_lossy(&self.target), 300),
            headers,
            if self.chunked { " (chunked)" } else { "" }
        )?;
        if let Some(b) = &self.body {
            write!(
                f,
                " body ({} bytes): {}",
                b.len(),
                clip(&String::from_utf8_lossy(b), 600)
            )?;
        }
        Ok(())
    }
}

/// What came back.
#[derive(Debug)]
pub(crate) enum Outcome {
    Answer { status: u16, body: Vec<u8> },
    Hang,
    Dropped(String),
}

impl Outcome {
    pub(crate) fn label(&self) -> String {
        match self {
            Outcome::Answer { status, .. } => status.to_string(),
            Outcome::Hang => "hang".into(),
            Outcome::Dropped(_) => "dropped".into(),
        }
    }
}

/// `s` cut to at most `n` characters, saying how long it was.
pub(crate) fn clip(s: &str, n: usize) -> String {
    let count = s.chars().count();
    if count <= n {
        return format!("{s:?}");
    }
    let head: String = s.chars().take(n).collect();
    format!("{head:?}… ({count} characters)")
}

pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub(crate) fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = find(b, b"\r\n") {
        let size_text = String::from_utf8_lossy(&b[..eol]);
        let size_text = size_text.split(';').next().unwrap_or("").trim().to_owned();
        let Ok(size) = usize::from_str_radix(&size_text, 16) else {
            break;
        };
        b = &b[eol + 2..];
        if size == 0 || b.len() < size {
            out.extend_from_slice(&b[..size.min(b.len())]);
            break;
        }
        out.extend_from_slice(&b[..size]);
        b = b.get(size + 2..).unwrap_or_default();
    }
    out
}

/// The status and body of a complete response in `buf`.
pub(crate) fn parse_response(buf: &[u8], head_only: bool) -> Option<(u16, Vec<u8>)> {
    let end = find(buf, b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let (mut chunked, mut length) = (false, None);
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                chunked = true;
            }
            if k == "content-length" {
                length = v.parse::<usize>().ok();
            }
        }
    }
    let rest = &buf[end + 4..];
    let body = if head_only {
        Vec::new()
    } else if chunked {
        dechunk(rest)
    } else if let Some(n) = length {
        rest[..n.min(rest.len())].to_vec()
    } else {
        rest.to_vec()
    };
    Some((status, body))
}

/// Sends `w` to `authority` on a connection of its own and reads the answer to the end.
pub(crate) async fn exchange(authority: &str, w: &Wire) -> Outcome {
    let mut head = Vec::with_capacity(256 + w.target.len());
    head.extend_from_slice(w.method.as_bytes());
    head.push(b' ');
    head.extend_from_slice(&w.target);
    head.extend_from_slice(b" HTTP/1.1\r\n");
    if !w.own_host {
        head.extend_from_slice(b"Host: ");
        head.extend_from_slice(authority.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"Connection: close\r\n");
    for (k, v) in &w.headers {
        head.extend_from_slice(k.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(v);
        head.extend_from_slice(b"\r\n");
    }
    match (&w.body, w.chunked) {
        (Some(b), false) => {
            head.extend_from_slice(format!("Content-Length: {}\r\n", b.len()).as_bytes())
        }
        (Some(_), true) => head.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        (None, _) if matches!(w.method.as_str(), "POST" | "PUT" | "PATCH") => {
            head.extend_from_slice(b"Content-Length: 0\r\n")
        }
        (None, _) => {}
    }
    head.extend_from_slice(b"\r\n");
    let (body, chunked) = (w.body.clone(), w.chunked);
    let head_only = w.method == "HEAD";
    let talk = async move {
        let stream = TcpStream::connect(authority)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let _ = stream.set_nodelay(true);
        let (mut rd, mut wr) = stream.into_split();
        // The write half is kept (not shut down) until the answer is read: a half-closed
        // connection may be closed by the server before it answers.
        let writer = tokio::spawn(async move {
            let sent: std::io::Result<()> = async {
                wr.write_all(&head).await?;
                if let Some(b) = body {
                    if chunked {
                        for c in b.chunks(64 * 1024) {
                            wr.write_all(format!("{:x}\r\n", c.len()).as_bytes())
                                .await?;
                            wr.write_all(c).await?;
                            wr.write_all(b"\r\n").await?;
                        }
                        wr.write_all(b"0\r\n\r\n").await?;
                    } else {
                        wr.write_all(&b).await?;
                    }
                }
                wr.flush().await
            }
            .await;
            (wr, sent)
        });
        let mut buf = Vec::new();
        let read = rd.read_to_end(&mut buf).await;
        let _sent = writer.await;
        match parse_response(&buf, head_only) {
            Some((status, body)) => Ok(Outcome::Answer { status, body }),
            None => Err(format!(
                "no complete answer (read: {read:?}, {} bytes: {})",
                buf.len(),
                clip(&String::from_utf8_lossy(&buf), 200)
            )),
        }
    };
    match tokio::time::timeout(TIMEOUT, talk).await {
        Err(_) => Outcome::Hang,
        Ok(Ok(o)) => o,
        Ok(Err(e)) => Outcome::Dropped(e),
    }
}

/// `http://host:port[/prefix]` as `(authority, prefix)`.
pub(crate) fn split_url(url: &str) -> (String, String) {
    let rest = url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("{url}: the suite talks plain HTTP on loopback"));
    match rest.find('/') {
        Some(i) => (
            rest[..i].to_owned(),
            rest[i..].trim_end_matches('/').to_owned(),
        ),
        None => (rest.to_owned(), String::new()),
    }
}

//! `capsule exec` as a process, against a stand-in API on a local port (a token and
//! `--endpoint`, so Keystone is not asked): the request it sends, the output it prints, and
//! the exit code it passes through, for a one-shot run and for an interactive session whose
//! websocket closes with `exit <code>`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::thread::JoinHandle;

use tungstenite::handshake::server::{Request, Response};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::Message;

/// Answers one HTTP request with `body` (JSON); the request line it got.
fn api_once(listener: TcpListener, body: String) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let mut length = 0;
        loop {
            let mut h = String::new();
            reader.read_line(&mut h).unwrap();
            if h.trim().is_empty() {
                break;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
        }
        let mut rest = vec![0; length];
        reader.read_exact(&mut rest).unwrap();
        let mut stream = stream;
        write!(
            stream,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        line.trim().to_owned()
    })
}

fn capsule(port: u16, args: &[&str], stdin: &[u8]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_capsule"));
    for (k, _) in std::env::vars() {
        if k.starts_with("OS_") || k.starts_with("CAPSULE_") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd
        .args(["--os-token", "t0k", "--endpoint"])
        .arg(format!("http://127.0.0.1:{port}/v1"))
        .args(args)
        .env("CAPSULE_NO_TOKEN_CACHE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn a_run_prints_the_output_and_exits_with_its_code() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let body = r#"{"output": "hi there\n", "exit_code": 3, "exec_id": null, "proxy_url": null}"#;
    let api = api_once(l, body.to_owned());
    let out = capsule(
        port,
        &["exec", "web", "--", "sh", "-c", "echo hi; exit 3"],
        b"",
    );
    let line = api.join().unwrap();
    assert_eq!(
        line,
        "POST /v1/containers/web/execute?run=True&interactive=False\
         &command=sh%20-c%20%27echo%20hi%3B%20exit%203%27 HTTP/1.1"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi there\n");
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_session_relays_stdin_and_exits_with_the_close_reason() {
    let ws = TcpListener::bind("127.0.0.1:0").unwrap();
    let ws_port = ws.local_addr().unwrap().port();
    let host = std::thread::spawn(move || {
        let (tcp, _) = ws.accept().unwrap();
        let mut path = String::new();
        // As the API answers: the `binary` subprotocol the client asked for. (The callback's
        // type is tungstenite's.)
        #[allow(clippy::result_large_err)]
        let check = |req: &Request, mut resp: Response| {
            path = req.uri().to_string();
            let asked = req.headers().get("sec-websocket-protocol").cloned();
            if let Some(p) = asked {
                resp.headers_mut().insert("sec-websocket-protocol", p);
            }
            Ok(resp)
        };
        let mut sock = tungstenite::accept_hdr(tcp, check).unwrap();
        let mut got = Vec::new();
        loop {
            if let Message::Binary(b) = sock.read().unwrap() {
                got.extend_from_slice(&b);
                if got.ends_with(b"exit\n") {
                    sock.send(Message::Binary(b"bye\n".to_vec().into()))
                        .unwrap();
                    let frame = CloseFrame {
                        code: CloseCode::Normal,
                        reason: "exit 7".into(),
                    };
                    sock.close(Some(frame)).unwrap();
                    let _ = sock.read();
                    return (path, got);
                }
            }
        }
    });
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let url = format!("ws://127.0.0.1:{ws_port}/v1/containers/u/exec_stream?exec_id=e&grant=g");
    let body =
        format!(r#"{{"output": null, "exit_code": null, "exec_id": "e", "proxy_url": "{url}"}}"#);
    let api = api_once(l, body);
    let out = capsule(
        port,
        &["exec", "-i", "web", "--", "/bin/sh"],
        b"echo $$\nexit\n",
    );
    let line = api.join().unwrap();
    assert!(
        line.starts_with(
            "POST /v1/containers/web/execute?run=False&interactive=True&tty=False&command=%2Fbin%2Fsh "
        ),
        "{line}"
    );
    let (path, got) = host.join().unwrap();
    assert_eq!(path, "/v1/containers/u/exec_stream?exec_id=e&grant=g");
    assert_eq!(String::from_utf8_lossy(&got), "echo $$\nexit\n");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "bye\n");
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

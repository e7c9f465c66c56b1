//! The interactive exec relay, over real sockets: the API served on a TCP port, a websocket
//! client where python-zunclient would be, and the fake host's stream listener (the address
//! its heartbeat advertised). Bytes go both ways, the host's close reason reaches the client,
//! a grant opens one stream only and not after it expired, and a client that goes away closes
//! the host's side.

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::common::DEMO;
use crate::fake_host::Stack;

/// Serves the API on a free port; its address.
async fn serve(s: &Stack) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let app = axum::ServiceExt::<axum::extract::Request>::into_make_service(zun_api::service(
        s.api.state.clone(),
    ));
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// An interactive exec's `proxy_url`, pointed at `addr` (the test's requests name the host
/// `zun.test:9517`), and its grant.
async fn session(s: &Stack, addr: &str) -> (String, String) {
    let q = "execute?run=False&interactive=True&command=%22%2Fbin%2Fsh%22";
    let r = s.send("POST", &s.path(0, q), DEMO, None).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let url = r.json["proxy_url"].as_str().unwrap();
    let url = url.replace("ws://zun.test:9517", &format!("ws://{addr}"));
    let grant = url.rsplit_once("grant=").unwrap().1.to_owned();
    (url, grant)
}

/// Connects as python-zunclient does (subprotocol `binary`).
async fn connect(
    url: &str,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    u16,
> {
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("sec-websocket-protocol", "binary".parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, resp)) => {
            assert_eq!(
                resp.headers()
                    .get("sec-websocket-protocol")
                    .map(|v| v.to_str().unwrap()),
                Some("binary")
            );
            Ok(ws)
        }
        Err(WsError::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("connect {url}: {e}"),
    }
}

#[tokio::test]
async fn bytes_both_ways_and_the_exit_code_in_the_close() {
    let s = Stack::start().await;
    let addr = serve(&s).await;
    let (url, _) = session(&s, &addr).await;
    let mut ws = connect(&url).await.expect("the stream opens");
    ws.send(Message::Binary(b"echo $$\n".to_vec().into()))
        .await
        .unwrap();
    match ws.next().await {
        Some(Ok(Message::Binary(b))) => assert_eq!(&b[..], b"out:echo $$\n"),
        other => panic!("{other:?}"),
    }
    ws.send(Message::Binary(b"exit".to_vec().into()))
        .await
        .unwrap();
    match ws.next().await {
        Some(Ok(Message::Close(Some(f)))) => assert_eq!(f.reason.as_str(), "exit 3"),
        other => panic!("no close with the exit code: {other:?}"),
    }
    s.until("the host saw the session", |s| async move {
        !s.host.books.lock().unwrap().streams.is_empty()
    })
    .await;
    assert_eq!(
        s.host.books.lock().unwrap().streams,
        ["echo $$\nexit".to_owned()]
    );

    // The same grant again: refused, and the host was asked (it alone knows grants).
    let refused = s.host.books.lock().unwrap().refused;
    assert_eq!(connect(&url).await.err(), Some(403));
    assert_eq!(s.host.books.lock().unwrap().refused, refused + 1);
    s.stop().await;
}

#[tokio::test]
async fn spent_expired_and_forged_grants_open_nothing() {
    let s = Stack::start().await;
    let addr = serve(&s).await;

    // Expired before it was used.
    let (url, grant) = session(&s, &addr).await;
    s.host
        .books
        .lock()
        .unwrap()
        .grants
        .get_mut(&grant)
        .unwrap()
        .expires_at = chrono::Utc::now() - chrono::Duration::seconds(1);
    assert_eq!(connect(&url).await.err(), Some(403));

    // Forged, or another session's.
    let (url2, grant2) = session(&s, &addr).await;
    let forged = url2.replace(&grant2, "g-forged");
    assert_eq!(connect(&forged).await.err(), Some(403));
    let (url3, _) = session(&s, &addr).await;
    let crossed = url3.replace(&url3.rsplit_once("grant=").unwrap().1.to_owned(), &grant2);
    assert_eq!(connect(&crossed).await.err(), Some(403));
    assert_eq!(s.host.books.lock().unwrap().refused, 3);
    // Malformed: refused by the API itself, the host not asked.
    let bad = url2.replace(&grant2, "a%0D%0Ab");
    assert_eq!(connect(&bad).await.err(), Some(400));
    let other = url2.replace(&s.containers[0], &s.containers[1]);
    // The other container's host is the same, and the grant is still good: the host binds
    // it to its session, not the API.
    assert!(connect(&other).await.is_ok());
    assert_eq!(s.host.books.lock().unwrap().refused, 3);
    assert!(
        s.host.books.lock().unwrap().grants[&grant2].used,
        "the grant is spent"
    );

    // A client that goes away closes the host's side of the stream.
    let (url4, _) = session(&s, &addr).await;
    let mut ws = connect(&url4).await.unwrap();
    ws.send(Message::Binary(b"sleep 100\n".to_vec().into()))
        .await
        .unwrap();
    let _ = ws.next().await;
    drop(ws);
    s.until("the host's side is closed", |s| async move {
        let books = s.host.books.lock().unwrap();
        books.streams.iter().any(|x| x.starts_with("sleep 100\n"))
    })
    .await;
    let seen = {
        let books = s.host.books.lock().unwrap();
        let seen = books.streams.iter().find(|x| x.starts_with("sleep 100\n"));
        seen.cloned().unwrap()
    };
    assert!(
        seen.ends_with("<closed>") || seen.ends_with("<gone>"),
        "{seen}"
    );
    s.stop().await;
}

/// What python-zunclient's `zun exec --interactive` does with a `proxy_url`, in its own
/// websocket library (websocket-client, from the clients' venv): the same connection options,
/// a line sent and its answer, then the close and its reason.
const ZUNCLIENT_LIKE: &str = r#"
import sys, websocket
ws = websocket.create_connection(sys.argv[1], skip_utf8_validation=True,
                                 origin="http://127.0.0.1:1", subprotocols=["binary", "base64"])
ws.send_binary(b"ls\n")
print(ws.recv().decode())
ws.send_binary(b"exit")
op, data = ws.recv_data(control_frame=True)
print(op, data[2:].decode())
"#;

#[tokio::test]
async fn zunclients_websocket_library_speaks_to_the_relay() {
    let s = Stack::start().await;
    let addr = serve(&s).await;
    let (url, _) = session(&s, &addr).await;
    let python = format!("{}/python3", test_support::env("ZUN_TEST_CLIENTS_BIN"));
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .args(["-c", ZUNCLIENT_LIKE, &url])
            .output()
            .expect("run the clients' python")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Opcode 8 is a close.
    assert_eq!(stdout, "out:ls\n\n8 exit 3\n");
    s.stop().await;
}

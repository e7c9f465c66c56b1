//! `exec [-i] [-t] CONTAINER -- CMD...`: a command in a running container. Without `-i`: its
//! output, and its exit code as ours. With `-i`: the session's websocket (the `proxy_url` the
//! API answers, as `zun exec --interactive` uses it), stdin to the command and its output to
//! stdout, the terminal raw with `-t` and its size followed as it changes; the end of stdin
//! ends the command's stdin (an empty binary frame; with `-t`, the terminal's ^D). The exit
//! code is the host's close reason `exit <code>`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use tungstenite::client::IntoClientRequest;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use super::segment;
use crate::client::Client;
use crate::CliError;

/// The exit code when a session ended without saying how its command ended.
pub const LOST: i32 = 255;

/// `exec` arguments.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    /// Keep stdin open and stream (a session instead of a one-shot run).
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// A terminal: the local one is made raw while the session lasts (with `-i`).
    #[arg(short = 't', long)]
    pub tty: bool,
    /// The container's name or uuid.
    pub container: String,
    /// The command and its arguments (after `--`).
    #[arg(required = true, last = true)]
    pub command: Vec<String>,
}

/// The `execute` query: the command quoted as one shell string (the API splits it as
/// python-zunclient's quoting expects), run or interactive.
pub fn query(args: &Args) -> Result<String, CliError> {
    let words = args.command.iter().map(String::as_str);
    let command = shlex::try_join(words)
        .map_err(|e| CliError::Usage(format!("the command cannot be quoted: {e}")))?;
    let (run, interactive) = if args.interactive {
        ("False", "True")
    } else {
        ("True", "False")
    };
    // Without `-t`, an interactive session is plain pipes (our API's `tty` extension).
    let tty = if args.interactive && !args.tty {
        "&tty=False"
    } else {
        ""
    };
    Ok(format!(
        "/containers/{}/execute?run={run}&interactive={interactive}{tty}&command={}",
        segment(&args.container),
        segment(&command)
    ))
}

/// The exit code in a host's close reason (`exit <code>`).
pub fn exit_code(reason: &str) -> Option<i32> {
    reason.strip_prefix("exit ")?.trim().parse().ok()
}

/// Runs it; the command's exit code.
pub fn run(client: &Client, args: &Args) -> Result<i32, CliError> {
    if args.tty && !args.interactive {
        return Err(CliError::Usage("-t goes with -i".into()));
    }
    let answer = client.post_empty(&query(args)?)?;
    if !args.interactive {
        let output = answer["output"].as_str().unwrap_or_default();
        print!("{output}");
        let _ = std::io::stdout().flush();
        return Ok(answer["exit_code"].as_i64().map_or(LOST, |c| c as i32));
    }
    let resize = |(w, h): (u16, u16)| {
        let exec_id = answer["exec_id"].as_str().unwrap_or_default();
        let path = resize_path(&args.container, exec_id, w, h);
        // The session works at any size: a refused resize is said, not fatal.
        if let Err(e) = client.post_empty(&path) {
            eprintln!("the terminal's size was not set: {e}");
        }
    };
    session(&answer, args.tty, resize)
}

/// `execute_resize` of session `exec_id` to `width` x `height`.
pub fn resize_path(container: &str, exec_id: &str, width: u16, height: u16) -> String {
    format!(
        "/containers/{}/execute_resize?exec_id={}&w={width}&h={height}",
        segment(container),
        segment(exec_id)
    )
}

type Socket = WebSocket<MaybeTlsStream<TcpStream>>;

fn failed(what: &str, e: impl std::fmt::Display) -> CliError {
    CliError::Failed(format!("{what}: {e}"))
}

/// Relays stdin and stdout through the session's websocket until the host closes it; with a
/// terminal, first gives the session its size (`resize`), as zunclient does once connected,
/// and again whenever it changes.
fn session(answer: &Value, tty: bool, resize: impl Fn((u16, u16))) -> Result<i32, CliError> {
    let url = answer["proxy_url"]
        .as_str()
        .ok_or_else(|| failed("exec", "the API answered no proxy_url"))?;
    let mut request = url
        .into_client_request()
        .map_err(|e| failed("the session's URL", e))?;
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "binary".parse().expect("a header"),
    );
    let (mut ws, _) = tungstenite::connect(request).map_err(|e| failed("the session", e))?;
    if let MaybeTlsStream::Plain(s) = ws.get_mut() {
        s.set_read_timeout(Some(Duration::from_millis(20)))
            .map_err(|e| failed("the session", e))?;
    }
    let size = if tty {
        crate::output::terminal_size()
    } else {
        None
    };
    if let Some(size) = size {
        resize(size);
    }
    let _raw = if tty { RawTerminal::enter() } else { None };
    let (tx, rx) = mpsc::channel::<Option<Vec<u8>>>();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 4096];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = tx.send(None);
                    return;
                }
                Ok(n) => {
                    if tx.send(Some(buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let window = tty.then_some(Window { size, resize });
    pump(&mut ws, &rx, window)
}

/// A terminal session's window: the size the host was last given, and how to give it another.
/// The loop asks the terminal's size each turn (every 20 ms at most, one ioctl) rather than
/// handling SIGWINCH, which would need a signal handler for what a poll does as well.
struct Window<F> {
    size: Option<(u16, u16)>,
    resize: F,
}

impl<F: Fn((u16, u16))> Window<F> {
    fn follow(&mut self) {
        let now = crate::output::terminal_size();
        if now.is_some() && now != self.size {
            self.size = now;
            if let Some(size) = now {
                (self.resize)(size);
            }
        }
    }
}

/// The session's loop: what the host sends goes to stdout, what stdin gives goes to the host,
/// and with a terminal its size when it changes.
fn pump<F: Fn((u16, u16))>(
    ws: &mut Socket,
    input: &mpsc::Receiver<Option<Vec<u8>>>,
    mut window: Option<Window<F>>,
) -> Result<i32, CliError> {
    let tty = window.is_some();
    let mut stdout = std::io::stdout();
    loop {
        if let Some(w) = window.as_mut() {
            w.follow();
        }
        match ws.read() {
            Ok(Message::Binary(b)) => {
                let _ = stdout.write_all(&b);
                let _ = stdout.flush();
            }
            Ok(Message::Text(t)) => {
                let _ = stdout.write_all(t.as_bytes());
                let _ = stdout.flush();
            }
            Ok(Message::Close(frame)) => {
                let code = frame.and_then(|f| exit_code(f.reason.as_str()));
                return Ok(code.unwrap_or(LOST));
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                return Ok(LOST)
            }
            Err(e) => return Err(failed("the session", e)),
        }
        while let Ok(chunk) = input.try_recv() {
            let sent = match chunk {
                Some(bytes) => ws.send(Message::Binary(bytes.into())),
                // stdin is over: a terminal's end of input is ^D; a pipe's is an empty
                // binary frame, on which the host closes the command's stdin.
                None if tty => ws.send(Message::Binary(vec![4u8].into())),
                None => ws.send(Message::Binary(Vec::new().into())),
            };
            if let Err(e) = sent {
                return Err(failed("the session", e));
            }
        }
    }
}

/// The local terminal in raw mode, put back when dropped.
struct RawTerminal(nix::sys::termios::Termios);

impl RawTerminal {
    fn enter() -> Option<Self> {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let stdin = std::io::stdin();
        let saved = tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(&stdin, SetArg::TCSANOW, &raw).ok()?;
        Some(Self(saved))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        use nix::sys::termios::{tcsetattr, SetArg};
        let _ = tcsetattr(std::io::stdin(), SetArg::TCSANOW, &self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(interactive: bool, command: &[&str]) -> Args {
        Args {
            interactive,
            tty: false,
            container: "web".into(),
            command: command.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn commands_are_quoted_as_one_string() {
        let q = query(&args(false, &["sh", "-c", "echo a b"])).unwrap();
        assert_eq!(
            q,
            "/containers/web/execute?run=True&interactive=False&command=sh%20-c%20%27echo%20a%20b%27"
        );
        let q = query(&args(true, &["/bin/sh"])).unwrap();
        assert!(
            q.contains("run=False&interactive=True&tty=False&command=%2Fbin%2Fsh"),
            "{q}"
        );
        let mut tty = args(true, &["/bin/sh"]);
        tty.tty = true;
        let q = query(&tty).unwrap();
        assert!(
            q.contains("run=False&interactive=True&command=%2Fbin%2Fsh"),
            "{q}"
        );
    }

    #[test]
    fn resizes_as_zunclient() {
        assert_eq!(
            resize_path("web", "e-1", 80, 24),
            "/containers/web/execute_resize?exec_id=e-1&w=80&h=24"
        );
    }

    #[test]
    fn exit_codes_from_close_reasons() {
        assert_eq!(exit_code("exit 0"), Some(0));
        assert_eq!(exit_code("exit 137"), Some(137));
        assert_eq!(exit_code("gone"), None);
        assert_eq!(exit_code("exit x"), None);
    }
}

//! The agent's side of an exec: ask the shim to run a command in a container, take the
//! process's descriptors it hands over, read and write them asynchronously, resize its
//! terminal, wait for its exit code. Dropping the [`ExecWait`] closes the shim connection,
//! which kills the process and whatever it started.

use std::io::{self, IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::Path;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, BufReader, ReadBuf};

use super::protocol::{ExecExit, ExecReply, Request};
use super::{ShimError, SOCKET_FILE};

/// How long the shim may take to start a process.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_LINE: usize = 64 * 1024;

/// What to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecRequest {
    /// The container's name in the plan.
    pub container: String,
    /// The command and its arguments.
    pub args: Vec<String>,
    /// With a terminal.
    pub tty: bool,
    /// Without a terminal: give it a stdin pipe.
    pub stdin: bool,
}

/// A started process.
#[derive(Debug)]
pub struct ExecIo {
    /// Its pid (host namespace).
    pub pid: i32,
    /// Its output (stdout and stderr together, or the terminal).
    pub output: FdStream,
    /// Its input (the terminal, or the stdin pipe), if it has one.
    pub input: Option<FdStream>,
    /// The terminal's master side (for resizes), with a terminal.
    pub terminal: Option<std::sync::Arc<OwnedFd>>,
    /// Its exit.
    pub exit: ExecWait,
}

/// What the shim answered.
#[derive(Debug)]
pub enum ExecStart {
    /// Running.
    Started(ExecIo),
    /// Not started: why, and whether because of the container's state.
    Refused {
        /// Why, for users.
        message: String,
        /// The container is not running.
        conflict: bool,
    },
}

/// The shim connection of a running exec: its exit code arrives on it; dropping it kills the
/// process.
#[derive(Debug)]
pub struct ExecWait {
    reader: BufReader<tokio::net::UnixStream>,
    pending: Vec<u8>,
}

impl ExecWait {
    /// Waits for the exit code (`None` if the shim went away without one).
    pub async fn wait(mut self) -> Option<i32> {
        let mut line = std::mem::take(&mut self.pending);
        if !line.contains(&b'\n') && self.reader.read_until(b'\n', &mut line).await.ok()? == 0 {
            return None;
        }
        let end = line.iter().position(|&b| b == b'\n').unwrap_or(line.len());
        serde_json::from_slice::<ExecExit>(&line[..end])
            .ok()
            .map(|e| e.exited)
    }
}

/// Asks the shim of the capsule in `dir` to run `req`.
pub async fn exec(dir: &Path, req: &ExecRequest) -> Result<ExecStart, ShimError> {
    let path = dir.join(SOCKET_FILE);
    let request = Request::Exec {
        container: req.container.clone(),
        args: req.args.clone(),
        tty: req.tty,
        stdin: req.stdin,
    };
    let dir = dir.to_owned();
    let io_err = {
        let path = path.clone();
        move |source| ShimError::Io {
            path: path.clone(),
            source,
        }
    };
    let (stream, first, rest, fds) = tokio::task::spawn_blocking(move || {
        let short =
            super::ShortPath::new(&dir, SOCKET_FILE).map_err(|source| ShimError::NotRunning {
                path: path.clone(),
                source,
            })?;
        let mut stream =
            StdUnixStream::connect(short.path()).map_err(|source| ShimError::NotRunning {
                path: path.clone(),
                source,
            })?;
        let io = |source| ShimError::Io {
            path: path.clone(),
            source,
        };
        stream.set_read_timeout(Some(START_TIMEOUT)).map_err(io)?;
        let mut line = serde_json::to_vec(&request).map_err(|e| io(io::Error::other(e)))?;
        line.push(b'\n');
        stream.write_all(&line).map_err(io)?;
        let (bytes, fds) = read_line_with_fds(&stream).map_err(io)?;
        Ok::<_, ShimError>((stream, bytes.0, bytes.1, fds))
    })
    .await
    .map_err(|e| io_err(io::Error::other(e)))??;
    let reply: ExecReply = serde_json::from_slice(&first).map_err(|_| ShimError::Protocol {
        answer: String::from_utf8_lossy(&first).chars().take(500).collect(),
    })?;
    let pid = match reply {
        ExecReply::Refused { message, conflict } => {
            return Ok(ExecStart::Refused { message, conflict })
        }
        ExecReply::Started { pid } => pid,
    };
    stream.set_read_timeout(None).map_err(&io_err)?;
    stream.set_nonblocking(true).map_err(&io_err)?;
    let stream = tokio::net::UnixStream::from_std(stream).map_err(&io_err)?;
    let exit = ExecWait {
        reader: BufReader::new(stream),
        pending: rest,
    };
    let mut fds = fds.into_iter();
    let bad = || ShimError::Protocol {
        answer: "an exec without its descriptors".into(),
    };
    let (output, input, terminal) = if req.tty {
        let master = fds.next().ok_or_else(bad)?;
        let input = master.try_clone().map_err(&io_err)?;
        let resize = master.try_clone().map_err(&io_err)?;
        (
            FdStream::new(master).map_err(&io_err)?,
            Some(FdStream::new(input).map_err(&io_err)?),
            Some(std::sync::Arc::new(resize)),
        )
    } else {
        let out = fds.next().ok_or_else(bad)?;
        let input = match (req.stdin, fds.next()) {
            (true, Some(fd)) => Some(FdStream::new(fd).map_err(&io_err)?),
            (true, None) => return Err(bad()),
            (false, _) => None,
        };
        (FdStream::new(out).map_err(&io_err)?, input, None)
    };
    Ok(ExecStart::Started(ExecIo {
        pid,
        output,
        input,
        terminal,
        exit,
    }))
}

type Line = (Vec<u8>, Vec<u8>);

/// Reads up to the first newline, with the descriptors that came along: (the line, what came
/// after it), descriptors.
fn read_line_with_fds(stream: &StdUnixStream) -> io::Result<(Line, Vec<OwnedFd>)> {
    let mut data = Vec::new();
    let mut fds = Vec::new();
    loop {
        let mut buf = [0u8; 4096];
        let mut space = nix::cmsg_space!([RawFd; 4]);
        let (n, got) = {
            let mut iov = [IoSliceMut::new(&mut buf)];
            let msg = recvmsg::<UnixAddr>(
                stream.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            )
            .map_err(io::Error::from)?;
            let mut got = Vec::new();
            for c in msg.cmsgs().map_err(io::Error::from)? {
                if let ControlMessageOwned::ScmRights(raw) = c {
                    got.extend(raw.into_iter().map(super::exec::own));
                }
            }
            (msg.bytes, got)
        };
        fds.extend(got);
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the shim closed the connection",
            ));
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(nl) = data.iter().position(|&b| b == b'\n') {
            let rest = data.split_off(nl + 1);
            data.pop();
            return Ok(((data, rest), fds));
        }
        if data.len() > MAX_LINE {
            return Err(io::Error::other("the shim's answer is too long"));
        }
    }
}

/// A pipe or terminal descriptor, non-blocking, read and written on tokio.
#[derive(Debug)]
pub struct FdStream {
    fd: AsyncFd<OwnedFd>,
}

impl FdStream {
    /// Wraps `fd` (made non-blocking).
    pub fn new(fd: OwnedFd) -> io::Result<Self> {
        let flags = nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL)?;
        let flags = nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(flags))?;
        Ok(Self { fd: register(fd)? })
    }
}

#[allow(unsafe_code)]
fn register(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: an `OwnedFd` is a valid open descriptor, and it stays open, the same descriptor,
    // for as long as it is owned, which is as long as the `AsyncFd` lives.
    unsafe { AsyncFd::register(fd) }.map_err(io::Error::from)
}

struct Raw<'a>(std::os::fd::BorrowedFd<'a>);

impl Read for Raw<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match nix::unistd::read(self.0.as_raw_fd(), buf) {
            Ok(n) => Ok(n),
            // A terminal whose other side closed: the end.
            Err(nix::errno::Errno::EIO) => Ok(0),
            Err(e) => Err(e.into()),
        }
    }
}

impl Write for Raw<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        nix::unistd::write(self.0, buf).map_err(Into::into)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsyncRead for FdStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard.try_io(|fd| Raw(fd.get_ref().as_fd()).read(unfilled)) {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for FdStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.fd.poll_write_ready(cx))?;
            match guard.try_io(|fd| Raw(fd.get_ref().as_fd()).write(buf)) {
                Ok(r) => return Poll::Ready(r),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Sets the window size of the terminal whose master side is `fd`.
#[allow(unsafe_code)]
pub fn resize_terminal(fd: &OwnedFd, width: u16, height: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `winsize` from the pointer, which points at a live local;
    // `fd` is an open descriptor this process owns.
    let r = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::TIOCSWINSZ,
            &ws as *const libc::winsize,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

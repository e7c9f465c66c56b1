//! A process run in a container, as the runtime hands it to the manager and the stream
//! listener: its output, its input, its terminal and its exit. Dropping it kills the process
//! and whatever it started.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};

/// A terminal's size, set by resizes.
pub trait Terminal: Send + Sync + std::fmt::Debug {
    /// Sets the window size.
    fn resize(&self, width: u16, height: u16) -> std::io::Result<()>;
}

/// A running process in a container.
pub struct ExecProcess {
    /// Its output (stdout and stderr interleaved, or the terminal's output).
    pub output: Pin<Box<dyn AsyncRead + Send>>,
    /// Its input, if it has one.
    pub input: Option<Pin<Box<dyn AsyncWrite + Send>>>,
    /// Its terminal, if it has one.
    pub terminal: Option<Arc<dyn Terminal>>,
    /// Its exit code once it exits (`None`: lost). Dropping this kills the process.
    pub exit: Pin<Box<dyn Future<Output = Option<i32>> + Send>>,
}

impl std::fmt::Debug for ExecProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecProcess")
            .field("input", &self.input.is_some())
            .field("terminal", &self.terminal)
            .finish_non_exhaustive()
    }
}

/// What became of an exec.
#[derive(Debug)]
pub enum ExecOutcome {
    /// It runs.
    Started(ExecProcess),
    /// Not possible in the container's state (it does not run, is paused...).
    Conflict(String),
    /// Not possible at all (no such command...).
    Failed(String),
}

//! The host seam: everything a work function may do to the outside world.
//!
//! Starlark code never touches processes, files, the network or the clock
//! directly; it goes through a [`Host`]. [`LocalHost`] is the real thing. A
//! program embedding Ocuroot (a CI agent, a deploy tool, a test) can supply its
//! own implementation; only [`Host::shell`] is required, every other method
//! defaults to the local behaviour.
//!
//! A `shell` starts the command however it likes (a container, a remote
//! machine, a recorded answer in a test) and gives the output to the
//! [`LineSink`] it is handed: [`LineSink::read`] on each pipe, one of them on
//! a second thread (the sink is `Sync`), then [`LineSink::output`] with the
//! exit code for the [`ShellOutput`] to return. `examples/rust` in the
//! repository has such a host, running commands with `std::process::Command`.

mod agent;
mod lines;
mod local;
mod piped;
mod read_only;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub use agent::Agent;
pub use lines::LineSink;
pub use local::{LocalHost, MAX_READ_BYTES};
pub(crate) use piped::Piped;
pub use read_only::ReadOnlyHost;

use crate::Result;

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// A shell command to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellRequest {
    /// The command text, passed to `<shell> -c`.
    pub command: String,
    /// The shell program (`sh` by default).
    pub shell: String,
    /// Absolute working directory.
    pub dir: PathBuf,
    /// Extra environment variables, on top of the process environment.
    pub env: BTreeMap<String, String>,
    /// How long the command may run: once it has run this long, its whole
    /// process group is killed and the call fails. `None`: no limit.
    pub timeout: Option<std::time::Duration>,
}

/// The result of a shell command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShellOutput {
    /// Exit status; a process killed by a signal reports `128 + signal`.
    pub exit_code: i32,
    /// Everything written to standard output.
    pub stdout: String,
    /// Everything written to standard error.
    pub stderr: String,
    /// Both streams, interleaved line by line in arrival order.
    pub combined_output: String,
}

/// An HTTP request made by `http.get(...)` and friends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// `GET`, `HEAD`, `DELETE`, `POST`, `PUT` or `PATCH`.
    pub method: String,
    /// Absolute URL.
    pub url: String,
    /// Request headers.
    pub headers: BTreeMap<String, String>,
    /// Request body (empty for methods without one).
    pub body: String,
}

/// An HTTP response. Non-2xx statuses are responses, not errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code, e.g. 200.
    pub status_code: u16,
    /// Status text, e.g. `200 OK`.
    pub status_text: String,
    /// Response headers; a repeated header keeps every value.
    pub headers: BTreeMap<String, Vec<String>>,
    /// Response body as text.
    pub body: String,
}

/// Access to the outside world for work functions.
///
/// Implementations must be `Send + Sync`: the engine calls them from worker
/// threads, several at a time.
pub trait Host: Send + Sync {
    /// Run a command with `<shell> -c <command>` in `req.dir`, giving each
    /// line of output to `lines` as it arrives (from any thread: see
    /// [`LineSink::read`]), and return what it did, usually
    /// [`lines.output(exit_code)`](LineSink::output). A non-zero exit is not
    /// an error here; failing to start the command is.
    fn shell(&self, req: &ShellRequest, lines: &LineSink<'_>) -> Result<ShellOutput>;

    /// The environment variables visible to work (`host.env()`).
    fn env(&self) -> BTreeMap<String, String> {
        local::process_env()
    }

    /// One environment variable.
    fn var(&self, name: &str) -> Option<String> {
        self.env().remove(name)
    }

    /// The operating system, as Go names it (`linux`, `darwin`, `windows`).
    fn os(&self) -> String {
        local::go_os().to_string()
    }

    /// The CPU architecture, as Go names it (`amd64`, `arm64`).
    fn arch(&self) -> String {
        local::go_arch().to_string()
    }

    /// Read a UTF-8 file.
    fn read_file(&self, path: &Path) -> Result<String> {
        local::read_file(path)
    }

    /// Write a file, creating parent directories.
    fn write_file(&self, path: &Path, contents: &str) -> Result<()> {
        local::write_file(path, contents)
    }

    /// The names of the entries of a directory, sorted.
    fn read_dir(&self, path: &Path) -> Result<Vec<String>> {
        local::read_dir(path)
    }

    /// Whether `path` is a directory; an error if it does not exist.
    fn is_dir(&self, path: &Path) -> Result<bool> {
        local::is_dir(path)
    }

    /// Make an HTTP request.
    fn http(&self, req: &HttpRequest) -> Result<HttpResponse> {
        local::http(req)
    }

    /// The current time.
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    /// Who is running work: recorded on each running run's status marker
    /// (with the claim's lease), so that other agents can tell whose claim
    /// it is and, where they safely can, whether that agent is gone.
    fn agent(&self) -> Agent {
        agent::agent()
    }

    /// Whether an agent's process is still alive: `Some(false)` only when it
    /// is known to be gone (same host name, boot and PID namespace as this
    /// process, and no process with its pid and start time), `Some(true)`
    /// when it is known to run, `None` when this process cannot tell. Only
    /// `Some(false)` lets an agent take over a claim before its lease
    /// expires.
    fn agent_alive(&self, agent: &Agent) -> Option<bool> {
        agent::agent_alive(agent)
    }
}

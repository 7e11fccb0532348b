//! Live progress: what happens while a release runs, as it happens.

use std::sync::Arc;

use super::RunStatus;
use crate::host::{Agent, Stream};
use crate::refs::{Ref, WorkPath};

/// Something that happened while a release ran, for live progress.
///
/// Its JSON form is tagged by `event`: `release_started`, `run_started`,
/// `log`, `run_taken_over` or `run_finished`, with the fields below.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A scheduling session of a release begins (before any of its runs
    /// starts): once per `release new`, `continue`, `retry`, and per
    /// release that `work` or a cascade runs on. With the totals, a display
    /// can show how much of every release is done, failed or waiting.
    ReleaseStarted {
        /// The release ref.
        release: Ref,
        /// Its work items.
        total: usize,
        /// How many of them are complete already.
        complete: usize,
        /// How many of them have failed (their latest run failed, or was
        /// cancelled), as the release's report counts them.
        failed: usize,
    },
    /// A run was claimed and its function is starting.
    RunStarted {
        /// The release ref.
        release: Ref,
        /// `task/<name>` or `deploy/<env>`.
        work: WorkPath,
        /// The run number.
        run: u32,
    },
    /// A line of a run's log.
    Log {
        /// `task/<name>` or `deploy/<env>`.
        work: WorkPath,
        /// The line (secrets masked).
        line: LogLine,
    },
    /// A run another agent had claimed was taken over: its lease expired,
    /// its agent's process is gone, or a person broke the claim (`release
    /// takeover`). The run is now `cancelled` and `new_run` replaces it.
    RunTakenOver {
        /// The release ref.
        release: Ref,
        /// `task/<name>` or `deploy/<env>`.
        work: WorkPath,
        /// The run taken over.
        run: u32,
        /// The run that replaces it (pending).
        new_run: u32,
        /// The agent whose claim it was, if known.
        holder: Option<Agent>,
        /// Why it could be taken over.
        reason: String,
    },
    /// A run finished (complete, failed or paused).
    RunFinished {
        /// The release ref.
        release: Ref,
        /// `task/<name>` or `deploy/<env>`.
        work: WorkPath,
        /// The run number.
        run: u32,
        /// Its new status.
        status: RunStatus,
        /// How long it took.
        duration_ms: u64,
        /// The failure message, if it failed.
        error: Option<String>,
    },
}

/// Receives [`Event`]s, from worker threads.
pub type EventSink = Arc<dyn Fn(&Event) + Send + Sync>;

/// One line of a run's (or an evaluation's) log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogLine {
    /// Milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// `stdout` for `print` and command output, `stderr` for command errors.
    pub stream: Stream,
    /// The text, with secrets masked.
    pub message: String,
}

//! The release engine: `release new`, `continue` and `retry`.
//!
//! A release is a set of runs in the state store. The engine moves them
//! forward one durable transition at a time: a run is *claimed* with a
//! compare-and-swap from `pending` (or `paused`) to `running`, its function
//! is called, and the outcome (run document, status, logs, work document,
//! `@` link, tags) is committed as one transaction. Because every step is a
//! transaction against the store, any number of agents can work on the same
//! release: a run is executed exactly once, by whoever claims it.
//!
//! Phases run in order. A work item is ready when every item of every
//! earlier phase is complete and all its inputs resolve; ready items run
//! in parallel, at most [`EngineContext::parallel`] at once: on the calling
//! thread and `parallel - 1` worker threads (so [`Host`]
//! and [`Store`](crate::store::Store) are called from several threads). A
//! required input that does not exist yet leaves the item pending
//! (*blocked*), not failed.

pub mod cascade;
mod inputs;
pub mod intent;
pub mod plan;
pub mod push;
pub mod push_intent;
pub(crate) mod release;
mod run;
mod scheduler;
mod status;
pub mod trigger;
pub mod work;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

pub use inputs::{Resolution, resolve_inputs};
pub use release::{NewRelease, release_continue, release_new, release_retry};

use crate::host::Host;
use crate::model::{RepoConfig, RunStatus};
use crate::sdk::{Limits, LogLine, Secrets};
use crate::store::RefStore;

/// Something that happened while a release ran, for live progress.
///
/// Its JSON form is tagged by `event`: `run_started`, `log` or
/// `run_finished`, with the fields below.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A run was claimed and its function is starting.
    RunStarted {
        /// The release ref.
        release: String,
        /// `task/<name>` or `deploy/<env>`.
        work: String,
        /// The run number.
        run: u32,
    },
    /// A line of a run's log.
    Log {
        /// `task/<name>` or `deploy/<env>`.
        work: String,
        /// The line (secrets masked).
        line: LogLine,
    },
    /// A run finished (complete, failed or paused).
    RunFinished {
        /// The release ref.
        release: String,
        /// `task/<name>` or `deploy/<env>`.
        work: String,
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

/// Everything the engine needs, assembled by the [`Workspace`](crate::Workspace).
#[derive(Clone)]
pub struct EngineContext {
    /// The state store.
    pub state: RefStore,
    /// The intent store.
    pub intent: RefStore,
    /// Shell, files and clock.
    pub host: Arc<dyn Host>,
    /// The repository root (package paths in refs are relative to it).
    pub root: PathBuf,
    /// The commit work is done at.
    pub commit: String,
    /// Secrets registered so far (shared by every evaluation and call).
    pub secrets: Secrets,
    /// Evaluation limits.
    pub limits: Limits,
    /// How many work items may run at once (at least 1).
    pub parallel: usize,
    /// Live progress.
    pub events: Option<EventSink>,
    /// The repository work is done in: its name in refs, its git work tree,
    /// remotes and settings, and where checkouts of other commits go.
    pub site: Site,
    /// The refs changed through this workspace, for `--cascade`.
    pub journal: Journal,
}

/// The repository an [`EngineContext`] works in.
#[derive(Debug, Clone, Default)]
pub struct Site {
    /// The repository's name in refs.
    pub repo: String,
    /// Its git work tree, if it is in one.
    pub git_root: Option<PathBuf>,
    /// Where worktrees of other commits and clones of other repositories
    /// are made (and removed again): `<git dir>/ocuroot`.
    pub work_area: Option<PathBuf>,
    /// The URLs of its git remotes, `origin` first.
    pub remotes: Vec<String>,
    /// Its `repo.ocu.star`, if it has one.
    pub config_file: Option<PathBuf>,
    /// The settings of that file.
    pub config: RepoConfig,
}

/// The refs a workspace changed (work documents written, runs created,
/// intent applied), so that `--cascade` follows only what it changed.
#[derive(Debug, Clone, Default)]
pub struct Journal(Arc<Mutex<BTreeSet<String>>>);

impl Journal {
    /// Record a changed ref (without fragment).
    pub(crate) fn record(&self, r: impl ToString) {
        self.lock().insert(r.to_string());
    }

    /// Everything recorded so far, leaving the journal empty.
    pub fn take(&self) -> BTreeSet<String> {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        // A panic while holding the lock cannot leave the set half-updated.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl std::fmt::Debug for EngineContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineContext")
            .field("root", &self.root)
            .field("commit", &self.commit)
            .field("parallel", &self.parallel)
            .finish_non_exhaustive()
    }
}

impl EngineContext {
    /// Send the event `event` builds to the sink, if there is one (the
    /// event is not built otherwise).
    pub(crate) fn emit(&self, event: impl FnOnce() -> Event) {
        if let Some(sink) = &self.events {
            sink(&event());
        }
    }

    pub(crate) fn now(&self) -> SystemTime {
        self.host.now()
    }

    pub(crate) fn timestamp(&self) -> String {
        rfc3339(self.now())
    }
}

/// RFC 3339 with milliseconds, UTC.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// Milliseconds between two RFC 3339 times, if both parse.
pub(crate) fn millis_between(start: &str, end: &str) -> Option<u64> {
    let s = humantime::parse_rfc3339(start).ok()?;
    let e = humantime::parse_rfc3339(end).ok()?;
    e.duration_since(s).ok().map(|d| d.as_millis() as u64)
}

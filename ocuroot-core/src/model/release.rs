//! Releases, runs and reports: what the engine stores and returns.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Timestamp;
use super::{FunctionId, InputSpec, Package};
use crate::host::Agent;
use crate::refs::{Ref, WorkPath};
use crate::{Error, Location};

/// The state of one run. Exactly one `<run>/status/<status>` marker exists
/// per run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Created, not yet started (or waiting for its inputs or phase).
    Pending,
    /// Claimed by an agent and executing.
    Running,
    /// A `next()` function is waiting for inputs.
    Paused,
    /// Finished with `done()`.
    Complete,
    /// The function failed.
    Failed,
    /// A failed run superseded by a retry.
    FailedRetried,
    /// Abandoned.
    Cancelled,
}

impl RunStatus {
    /// Every status, in a stable order.
    pub const ALL: [RunStatus; 7] = [
        RunStatus::Pending,
        RunStatus::Running,
        RunStatus::Paused,
        RunStatus::Complete,
        RunStatus::Failed,
        RunStatus::FailedRetried,
        RunStatus::Cancelled,
    ];

    /// The marker name (`pending`, `failed_retried`...).
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Pending => "pending",
            RunStatus::Running => "running",
            RunStatus::Paused => "paused",
            RunStatus::Complete => "complete",
            RunStatus::Failed => "failed",
            RunStatus::FailedRetried => "failed_retried",
            RunStatus::Cancelled => "cancelled",
        }
    }

    /// True for runs an agent may start or resume.
    pub fn is_runnable(self) -> bool {
        matches!(self, RunStatus::Pending | RunStatus::Paused)
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunStatus {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        RunStatus::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| Error::store(format!("unknown run status {s:?}")))
    }
}

/// What a run executes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunType {
    /// A task's function.
    Task,
    /// A deploy's `up`.
    Up,
    /// A deploy's `down`.
    Down,
}

impl RunType {
    /// `task`, `up` or `down`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunType::Task => "task",
            RunType::Up => "up",
            RunType::Down => "down",
        }
    }
}

/// A run's status marker, `<run>/status/<status>`: exactly one exists per
/// run. Its document says who set it and when, where that is known.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusMarker {
    /// `running`: the agent that claimed the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<Agent>,
    /// `running`: when it was claimed.
    #[serde(
        default,
        deserialize_with = "super::time::optional::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub since: Option<Timestamp>,
    /// A finished run: when it finished.
    #[serde(
        default,
        deserialize_with = "super::time::optional::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub time: Option<Timestamp>,
    /// `running`: when the claim's lease expires, by the claiming agent's
    /// clock. The agent renews it while the run runs; once it has passed,
    /// any agent may take the run over. A marker without it (written
    /// before leases) expires a lease's length after `since`.
    #[serde(
        default,
        deserialize_with = "super::time::optional::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires: Option<Timestamp>,
    /// `failed_retried` and `cancelled`: the run that replaced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retried_by: Option<Ref>,
    /// `cancelled`: the run was running when another agent took it over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taken_over: Option<Takeover>,
}

/// How a run's claim was taken over (on its `cancelled` marker): by whom,
/// when, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Takeover {
    /// The agent whose claim it was, if its marker named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<Agent>,
    /// The agent that took the run over.
    pub by: Agent,
    /// When, by the taking agent's clock.
    pub at: Timestamp,
    /// Why: the lease expired (and when), the holder's process is gone, or
    /// a person broke the claim (`release takeover`).
    pub reason: String,
}

/// The release document `<pkg>/@r<N>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseDoc {
    /// The commit the release was created at.
    pub commit: String,
    /// The evaluated package, as it was when the release was created.
    pub package: Package,
    /// When the release was created.
    #[serde(
        default,
        deserialize_with = "super::time::optional::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub created_at: Option<Timestamp>,
}

/// One function call in a run's chain (`next()` appends one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunFunction {
    /// The function.
    #[serde(rename = "fn")]
    pub function: FunctionId,
    /// Its inputs as declared.
    #[serde(default)]
    pub inputs: BTreeMap<String, InputSpec>,
    /// The values the inputs resolved to when the function was called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<BTreeMap<String, Value>>,
}

/// Why a run failed, kept on the run document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunError {
    /// The message (secrets masked), including Starlark's rendering.
    pub message: String,
    /// What went wrong, in one line (`./deploy.sh prod: exit status 1`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub summary: String,
    /// Where, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// The Starlark call stack, one frame per line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
}

impl RunError {
    /// What went wrong, in one line: the summary, else (a run document
    /// written before there were summaries) the message's first line.
    pub fn one_line(&self) -> &str {
        if self.summary.is_empty() {
            self.message.lines().next().unwrap_or_default()
        } else {
            &self.summary
        }
    }
}

/// A run document `<rel>/task/<name>/<n>` or `<rel>/deploy/<env>/<n>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunDoc {
    /// What the run executes.
    #[serde(rename = "type")]
    pub run_type: RunType,
    /// The release ref.
    pub release: Ref,
    /// The chain of functions; the last one is the one to run or resume.
    pub functions: Vec<RunFunction>,
    /// Outputs of `done()`.
    #[serde(default)]
    pub output: Option<Value>,
    /// The failure, if the run failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RunError>,
    /// When the run last started.
    #[serde(
        default,
        deserialize_with = "super::time::optional::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub started_at: Option<Timestamp>,
    /// When the run finished.
    #[serde(
        default,
        deserialize_with = "super::time::optional::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub finished_at: Option<Timestamp>,
    /// How many times an agent has started this run.
    #[serde(default)]
    pub attempt: u32,
    /// Paths from `done(watch=...)`, stored as the original does
    /// (`watch_files`); `ocuroot push` reads them.
    #[serde(
        rename = "watch_files",
        alias = "watch",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub watch: Vec<String>,
}

impl RunDoc {
    /// A run that has not started: one function, no outcome yet.
    pub fn new(run_type: RunType, release: Ref, first: RunFunction) -> RunDoc {
        RunDoc {
            run_type,
            release,
            functions: vec![first],
            output: None,
            error: None,
            started_at: None,
            finished_at: None,
            attempt: 0,
            watch: Vec::new(),
        }
    }

    /// The inputs of the function to run or resume (the last of the chain);
    /// none for a run without functions.
    pub fn current_inputs(&self) -> BTreeMap<String, InputSpec> {
        self.functions
            .last()
            .map(|f| f.inputs.clone())
            .unwrap_or_default()
    }
}

/// The document a successful run writes at `<rel>/task/<name>` or
/// `<rel>/deploy/<env>`, which `@` links point to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkDoc {
    /// The run that produced it.
    pub run_ref: Ref,
    /// `task`, `up` or `down`.
    #[serde(rename = "type")]
    pub run_type: RunType,
    /// The release ref.
    pub release: Ref,
    /// The resolved inputs of the run's first function.
    #[serde(default)]
    pub input: BTreeMap<String, Value>,
    /// The outputs.
    #[serde(default)]
    pub output: Value,
}

/// The overall state of a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseStatus {
    /// Every work item completed.
    Complete,
    /// Some work failed; later phases will not start until it is retried.
    Failed,
    /// Nothing can run: some work waits for inputs that do not exist yet.
    Blocked,
    /// Some work paused in a `next()` chain waiting for inputs.
    Paused,
    /// Some work is running (in another agent).
    Running,
    /// Work is pending and could run (e.g. after a dry run).
    Pending,
}

impl ReleaseStatus {
    /// The name used in JSON and output.
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseStatus::Complete => "complete",
            ReleaseStatus::Failed => "failed",
            ReleaseStatus::Blocked => "blocked",
            ReleaseStatus::Paused => "paused",
            ReleaseStatus::Running => "running",
            ReleaseStatus::Pending => "pending",
        }
    }
}

impl fmt::Display for ReleaseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where one work item of a release stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkState {
    /// Done.
    Complete,
    /// Failed (see `error`).
    Failed,
    /// Its inputs do not resolve (see `waiting_for`).
    Blocked,
    /// A `next()` function waits for inputs (see `waiting_for`).
    Paused,
    /// Running in some agent.
    Running,
    /// Waiting for an earlier phase to complete.
    Waiting,
    /// Ready to run.
    Pending,
}

impl WorkState {
    /// The name used in JSON and output.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkState::Complete => "complete",
            WorkState::Failed => "failed",
            WorkState::Blocked => "blocked",
            WorkState::Paused => "paused",
            WorkState::Running => "running",
            WorkState::Waiting => "waiting",
            WorkState::Pending => "pending",
        }
    }
}

impl fmt::Display for WorkState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One work item in a [`ReleaseReport`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkReport {
    /// `task/<name>` or `deploy/<env>`.
    pub path: WorkPath,
    /// Index of the phase (0-based) and its name.
    pub phase: usize,
    /// The phase name (empty for work outside any phase).
    pub phase_name: String,
    /// Where it stands.
    pub state: WorkState,
    /// The latest run's number.
    pub run: Option<u32>,
    /// The latest run's ref.
    pub run_ref: Option<Ref>,
    /// How long the latest run took, in milliseconds, if it finished.
    pub duration_ms: Option<u64>,
    /// The failure message, if it failed (for an evaluation error,
    /// Starlark's rendering with the traceback and source snippet).
    pub error: Option<String>,
    /// The failure in one line, if it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Refs it waits for, if blocked or paused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting_for: Vec<Ref>,
}

/// The result of `release new`, `continue` and `retry`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseReport {
    /// The release ref (`<repo>/-/<pkg>/@r<N>`).
    pub release: Ref,
    /// The commit the release belongs to.
    pub commit: String,
    /// Overall status.
    pub status: ReleaseStatus,
    /// Every work item, in phase order.
    pub work: Vec<WorkReport>,
}

impl ReleaseReport {
    /// True when some work failed (the CLI exits 1).
    pub fn is_failed(&self) -> bool {
        self.status == ReleaseStatus::Failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_display_as_their_json_names() {
        use WorkState::*;
        for s in [Complete, Failed, Blocked, Paused, Running, Waiting, Pending] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.to_string());
        }
        for s in [
            ReleaseStatus::Complete,
            ReleaseStatus::Failed,
            ReleaseStatus::Blocked,
            ReleaseStatus::Paused,
            ReleaseStatus::Running,
            ReleaseStatus::Pending,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.to_string());
        }
    }
}

//! What the operations return: outcomes of applying intent and doing work,
//! the outstanding work (todos and plans), triggers and `release new`.
//!
//! Every type here is plain data with a stable JSON form (what the C and
//! Python bindings return, and what `--format json` prints).

use serde::Serialize;

use super::graph::DependencyGraph;
use super::{Environment, ReleaseReport, ReleaseStatus};
use crate::refs::Ref;

/// What `release new` did.
///
/// Its JSON form (what the C and Python bindings return) is tagged by
/// `kind`: `{"kind": "release", ...}` with the fields of the
/// [`ReleaseReport`], `{"kind": "environments", "environments": [...],
/// "outcome": {...}}`, or `{"kind": "empty"}`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NewRelease {
    /// A release was created and run as far as it could go.
    Release(ReleaseReport),
    /// The file registers environments; they were written to intent and
    /// applied to state.
    Environments {
        /// The environments the file registers.
        environments: Vec<Environment>,
        /// What applying them did: each new environment leaves an
        /// `op/check_envs` on the latest release of each package.
        outcome: WorkOutcome,
    },
    /// The file declares neither a release nor environments.
    Empty,
}

impl NewRelease {
    /// Whether the release has failed work, or a release run by applying
    /// the environments did.
    pub fn failed(&self) -> bool {
        match self {
            NewRelease::Release(r) => r.is_failed(),
            NewRelease::Environments { outcome, .. } => outcome.failed(),
            NewRelease::Empty => false,
        }
    }
}

/// What applying intent or finding work did.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct WorkOutcome {
    /// Intent applied, in order.
    pub applied: Vec<IntentChange>,
    /// `check_envs` ops run: the deploys each added to its release.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ops: Vec<OpReport>,
    /// Releases that ran, with their reports.
    pub releases: Vec<ReleaseReport>,
    /// Work left for later, and why (a release at another commit, an
    /// environment that still has deployments).
    pub deferred: Vec<String>,
    /// Cascades: the rounds done.
    #[serde(skip_serializing_if = "is_zero")]
    pub rounds: u32,
    /// Cascades: why work was given up (a redeploy that kept failing, too
    /// many rounds). Any makes the outcome failed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stopped: Vec<String>,
    /// `work any`: the triggers called afterwards for commits that still
    /// have work (the repositories' `trigger(commit)`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub triggered: Vec<Triggered>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl WorkOutcome {
    /// Whether anything was done: intent applied, an op run or a release
    /// run further.
    pub fn did_something(&self) -> bool {
        !(self.applied.is_empty() && self.ops.is_empty() && self.releases.is_empty())
    }

    /// Whether any release that ran has failed work.
    pub fn failed(&self) -> bool {
        !self.stopped.is_empty()
            || self
                .releases
                .iter()
                .any(|r| r.status == ReleaseStatus::Failed)
    }

    /// Add what `other` did; a later report of a release replaces an
    /// earlier one.
    pub fn merge(&mut self, other: WorkOutcome) {
        self.applied.extend(other.applied);
        self.ops.extend(other.ops);
        self.deferred.extend(other.deferred);
        self.stopped.extend(other.stopped);
        self.triggered.extend(other.triggered);
        self.rounds = self.rounds.max(other.rounds);
        for report in other.releases {
            // The later report of a release supersedes an earlier one.
            self.releases.retain(|r| r.release != report.release);
            self.releases.push(report);
        }
    }
}

/// How intent differs from state for one ref.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// In intent, not in state.
    Create,
    /// In both, different.
    Update,
    /// In state, not in intent.
    Delete,
}

/// One difference between intent and state: applying `ref` removes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IntentChange {
    /// The intent ref to apply.
    #[serde(rename = "ref")]
    pub r#ref: Ref,
    /// What applying it does.
    pub change: ChangeKind,
}

/// What running a `check_envs` op did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpReport {
    /// The op (`<rel>/op/check_envs`).
    #[serde(rename = "ref")]
    pub r#ref: Ref,
    /// The runs it added, pending (`<rel>/deploy/<env>/1`).
    pub added: Vec<Ref>,
}

/// What a piece of outstanding work is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TodoKind {
    /// Intent to apply: in intent, not in state.
    Create,
    /// Intent to apply: different in state.
    Update,
    /// Intent to apply: in state, not in intent.
    Delete,
    /// A run to execute, or a deployment to redeploy.
    Run,
    /// A release to check for environments added since it was created
    /// (`<rel>/op/check_envs`).
    Op,
}

impl TodoKind {
    /// Its name, as in JSON: `create`, `update`, `delete`, `run` or `op`.
    pub fn as_str(self) -> &'static str {
        match self {
            TodoKind::Create => "create",
            TodoKind::Update => "update",
            TodoKind::Delete => "delete",
            TodoKind::Run => "run",
            TodoKind::Op => "op",
        }
    }
}

/// One piece of outstanding work, as `--dryrun` prints it (the original's
/// `{"ref", "work_type", "commit"}`), with why it is to be done or what it
/// waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Todo {
    /// The intent ref, run ref or deployment (`<rel>/deploy/<env>`).
    #[serde(rename = "ref")]
    pub r#ref: Ref,
    /// What kind of work.
    pub work_type: TodoKind,
    /// The commit it must be done at (runs and redeploys).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Why: `pending`, `paused`, or the inputs that changed.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// What it waits for (plans only): refs that do not exist yet, earlier
    /// phases, a failure to retry. Empty when it can be done now.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub waits_for: Vec<String>,
}

impl Todo {
    /// Whether it can be done now (it waits for nothing).
    pub fn is_ready(&self) -> bool {
        self.waits_for.is_empty()
    }
}

/// The work a cascade would do and the work that waits, in order.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Every item, dependencies first; ready ones have no `waits_for`.
    pub work: Vec<Todo>,
    /// The dependency graph of the latest release of every package.
    pub graph: DependencyGraph,
}

/// A node of the plan's graph and what it reads, for the JSON form.
#[derive(Debug, Clone, Serialize)]
struct GraphNode {
    node: String,
    depends_on: Vec<String>,
}

impl Plan {
    /// The JSON form: `{"work": [...], "graph": [{"node", "depends_on"}]}`.
    pub fn to_json(&self) -> serde_json::Value {
        let nodes: Vec<GraphNode> = self
            .graph
            .nodes()
            .map(|n| GraphNode {
                node: n.to_string(),
                depends_on: self
                    .graph
                    .dependencies(n)
                    .into_iter()
                    .map(|d| d.to_string())
                    .collect(),
            })
            .collect();
        serde_json::json!({ "work": self.work, "graph": nodes })
    }

    /// The work that can be done now.
    pub fn ready(&self) -> impl Iterator<Item = &Todo> {
        self.work.iter().filter(|t| t.is_ready())
    }
}

/// What happened to one commit's trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerStatus {
    /// `--dryrun`: it would be called.
    Planned,
    /// It was called and returned.
    Called,
    /// The repository's `repo.ocu.star` has no `trigger(fn)`.
    NoTrigger,
    /// Evaluating the file or calling the function failed.
    Failed,
}

/// One commit with outstanding work and its trigger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Triggered {
    /// The repository.
    pub repo: String,
    /// The commit.
    pub commit: String,
    /// What happened.
    pub status: TriggerStatus,
    /// What the trigger printed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub log: Vec<String>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A deployment whose release was made at one of the commits
/// [`Workspace::find_deploys`](crate::Workspace::find_deploys) searched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FoundDeploy {
    /// The deployment: `<pkg>/@/deploy/<env>`, the link to what is deployed there.
    pub r#ref: Ref,
    /// The release deployed there, `<pkg>/@r<N>`.
    pub release: Ref,
    /// The commit that release was made at.
    pub commit: String,
}

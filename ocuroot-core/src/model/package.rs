//! The evaluated form of package, environment and repo files.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{EnvironmentName, TaskName};
use crate::refs::{Ref, WorkPath};

/// Identifies a module-level function so the engine can find it again when
/// the package file is evaluated later (at the release's commit).
///
/// `file` is the defining file's path relative to the package file's
/// directory (`release.ocu.star` for the package file itself,
/// `lib/tasks.star` for a loaded module), with `/` separators. Serialised as
/// the original's `{"name": "build", "pos": "release.ocu.star:3:1"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FunctionId {
    /// The function's name (a module-level global of `file`).
    pub name: String,
    /// The defining file, relative to the package file's directory.
    pub file: String,
    /// Line of the `def`, 1-based.
    pub line: u32,
    /// Column of the `def`, 1-based.
    pub column: u32,
}

impl FunctionId {
    /// `file:line:col`, the original's `pos`.
    pub fn pos(&self) -> String {
        format!("{}:{}:{}", self.file, self.line, self.column)
    }
}

impl fmt::Display for FunctionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}:{}:{})",
            self.name, self.file, self.line, self.column
        )
    }
}

#[derive(Serialize, Deserialize)]
struct FunctionIdJson {
    name: String,
    pos: String,
}

impl Serialize for FunctionId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        FunctionIdJson {
            name: self.name.clone(),
            pos: self.pos(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for FunctionId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let j = FunctionIdJson::deserialize(d)?;
        let bad = || serde::de::Error::custom(format!("invalid function position {:?}", j.pos));
        let mut parts = j.pos.rsplitn(3, ':');
        let column = parts.next().and_then(|c| c.parse().ok()).ok_or_else(bad)?;
        let line = parts.next().and_then(|l| l.parse().ok()).ok_or_else(bad)?;
        let file = parts.next().filter(|f| !f.is_empty()).ok_or_else(bad)?;
        Ok(FunctionId {
            name: j.name,
            file: file.to_string(),
            line,
            column,
        })
    }
}

/// Where a work item's input comes from.
///
/// Serialised as the original's input descriptor: `{"ref": "..", "default": ..}`
/// or `{"value": ..}`.
#[derive(Debug, Clone, PartialEq)]
pub enum InputSpec {
    /// Read from state. Without a default the work blocks until the ref exists.
    Ref {
        /// Absolute ref (relative refs are resolved when the file is evaluated).
        r#ref: Ref,
        /// Used when the ref is absent (or resolves to `null`).
        default: Option<Value>,
    },
    /// A static value given in the file.
    Value(Value),
}

impl InputSpec {
    /// The ref this input reads, if any.
    pub fn as_ref(&self) -> Option<&Ref> {
        match self {
            InputSpec::Ref { r#ref, .. } => Some(r#ref),
            InputSpec::Value(_) => None,
        }
    }
    /// True for a ref without a default: the work blocks until it exists.
    pub fn is_required_ref(&self) -> bool {
        matches!(self, InputSpec::Ref { default: None, .. })
    }
}

#[derive(Serialize, Deserialize)]
struct InputJson {
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    r#ref: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    default: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<Value>,
}

impl Serialize for InputSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            InputSpec::Ref { r#ref, default } => InputJson {
                r#ref: Some(r#ref.clone()),
                default: default.clone(),
                value: None,
            },
            InputSpec::Value(v) => InputJson {
                r#ref: None,
                default: None,
                value: Some(v.clone()),
            },
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for InputSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let j = InputJson::deserialize(d)?;
        match (j.r#ref, j.value) {
            (Some(r), _) => Ok(InputSpec::Ref {
                r#ref: r,
                default: j.default.filter(|v| !v.is_null()),
            }),
            (None, Some(v)) => Ok(InputSpec::Value(v)),
            (None, None) => match j.default {
                Some(v) => Ok(InputSpec::Value(v)),
                None => Err(serde::de::Error::custom(
                    "an input needs a ref, a default or a value",
                )),
            },
        }
    }
}

/// A standalone task (build, test...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Unique within the package.
    pub name: TaskName,
    /// The function to call.
    #[serde(rename = "fn")]
    pub function: FunctionId,
    /// Free text shown in plans and reports.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub annotation: String,
    /// Inputs by parameter name.
    #[serde(default)]
    pub inputs: BTreeMap<String, InputSpec>,
}

/// A deployment of the package to one environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deploy {
    /// The target environment.
    pub environment: EnvironmentName,
    /// Called to deploy.
    pub up: FunctionId,
    /// Called to undeploy.
    pub down: FunctionId,
    /// Inputs by parameter name, including the implicit `environment`
    /// (a ref to `@/environment/<name>`).
    #[serde(default)]
    pub inputs: BTreeMap<String, InputSpec>,
}

/// One unit of work in a phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Work {
    /// A task.
    Task(Task),
    /// A deployment.
    Deploy(Deploy),
}

impl Work {
    /// The inputs of the work's entry function.
    pub fn inputs(&self) -> &BTreeMap<String, InputSpec> {
        match self {
            Work::Task(t) => &t.inputs,
            Work::Deploy(d) => &d.inputs,
        }
    }
    /// `task/<name>` or `deploy/<environment>`: the work's path inside a release.
    pub fn path(&self) -> WorkPath {
        match self {
            Work::Task(t) => WorkPath::task(t.name.as_str()),
            Work::Deploy(d) => WorkPath::deploy(d.environment.as_str()),
        }
    }
    /// The function that starts the work (`fn` of a task, `up` of a deploy).
    pub fn entry_function(&self) -> &FunctionId {
        match self {
            Work::Task(t) => &t.function,
            Work::Deploy(d) => &d.up,
        }
    }
}

/// A group of work; phases run in order, work within a phase may run in parallel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    /// The phase name; empty for work declared outside any `phase()`.
    #[serde(default)]
    pub name: String,
    /// The work items, in declaration order.
    #[serde(rename = "tasks", default)]
    pub work: Vec<Work>,
}

/// The release process a package file describes.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Package {
    /// Phases in execution order.
    pub phases: Vec<Phase>,
}

impl Package {
    /// Every work item with the index of its phase, in order.
    pub fn work(&self) -> impl Iterator<Item = (usize, &Work)> {
        self.phases
            .iter()
            .enumerate()
            .flat_map(|(i, p)| p.work.iter().map(move |w| (i, w)))
    }
}

/// An environment: a named target for deployments, with free-form attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    /// The name, also the last segment of its ref `@/environment/<name>`.
    pub name: EnvironmentName,
    /// Attributes; values may be any JSON value.
    #[serde(default)]
    pub attributes: serde_json::Map<String, Value>,
}

/// Where state (or intent) is stored, as configured in `repo.ocu.star`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreSpec {
    /// A directory, relative to the repository root.
    Fs {
        /// The directory.
        path: String,
    },
    /// A branch of a git repository.
    Git {
        /// Clone URL of the repository holding the state.
        remote_url: String,
        /// Branch; the remote's default when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        branch: Option<String>,
        /// Create the branch when it does not exist.
        #[serde(default = "default_true")]
        create_branch: bool,
        /// Files written at the repository root of the store branch.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        support_files: BTreeMap<String, String>,
    },
}

fn default_true() -> bool {
    true
}

/// The directory (relative to the root) of the embedded default store used
/// when there is no `repo.ocu.star` or it configures no store.
pub const DEFAULT_STORE_DIR: &str = ".ocuroot/store";

impl RepoConfig {
    /// The state store: the configured one, else the embedded default
    /// (`store.fs(".ocuroot/store")`, which then holds intent too).
    pub fn state_store(&self) -> StoreSpec {
        self.state.clone().unwrap_or_else(|| StoreSpec::Fs {
            path: DEFAULT_STORE_DIR.to_string(),
        })
    }
}

/// The settings of `repo.ocu.star`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RepoConfig {
    /// Replaces the origin-derived repository name in refs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// The state store (and intent, under `intent/`, when `intent` is absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<StoreSpec>,
    /// A separate intent store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<StoreSpec>,
    /// Clone URLs tried in order when work of this repo runs elsewhere.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remotes: Vec<String>,
    /// Globs over package paths excluded from `ocuroot push`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub release_ignore: Vec<String>,
    /// The `trigger(fn)` function, called with a commit that has outstanding work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<FunctionId>,
    /// Where in `repo.ocu.star` the alias and the stores were set, so errors
    /// found later (an alias that cannot be a ref, a store that cannot be
    /// opened) name the line. Not stored.
    #[serde(skip)]
    pub locations: RepoLocations,
}

/// Where [`RepoConfig`]'s settings were made.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RepoLocations {
    /// The `repo_alias(...)` call or `repo_alias = ...` assignment.
    pub alias: Option<crate::Location>,
    /// The `store.set(...)` call or `state_store = ...` assignment.
    pub state: Option<crate::Location>,
    /// The `store.set(..., intent=...)` call or `intent_store = ...` assignment.
    pub intent: Option<crate::Location>,
}

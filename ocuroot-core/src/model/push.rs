//! What `push` reads and writes: the push index, and what a push (from the
//! repository, or from an intent checkout) did.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{NewRelease, WorkOutcome};

/// The push index: what a push released, and the watch prefixes of each
/// package, read by the next push.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushIndex {
    /// The commit pushed.
    pub commit: String,
    /// The commit of the push before it (empty for the first).
    #[serde(default)]
    pub previous_commit: String,
    /// Per package ref: what its runs watch.
    #[serde(default)]
    pub release_configs: BTreeMap<String, ReleaseConfig>,
}

/// What a pushed package's runs asked to watch (`done(watch=[...])`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseConfig {
    /// Repository paths (prefixes) whose changes release the package.
    #[serde(default)]
    pub watch_files: Vec<String>,
}

/// One package a push released (or could not).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pushed {
    /// The package file, relative to the root.
    pub package: String,
    /// Why it was released: `first push`, `changed`, or the watched prefix
    /// a changed path is under.
    pub reason: String,
    /// What releasing it did (absent on a dry run or an error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<NewRelease>,
    /// Why it could not be released.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What `push` did, or (dry run) would do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PushOutcome {
    /// The commit pushed.
    pub commit: String,
    /// The commit of the previous push, if there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_commit: Option<String>,
    /// The packages, in the order they were released.
    pub packages: Vec<Pushed>,
    /// What the cascade after the releases did.
    pub cascade: WorkOutcome,
    /// The index written (`<repo>/-/repo.ocu.star/@<commit>/push/index`);
    /// none on a dry run or when a package could not be released.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
    /// Whether nothing was changed.
    pub dryrun: bool,
}

impl PushOutcome {
    /// Whether a package could not be released, or released work failed.
    pub fn failed(&self) -> bool {
        self.cascade.failed()
            || self
                .packages
                .iter()
                .any(|p| p.error.is_some() || p.release.as_ref().is_some_and(NewRelease::failed))
    }
}

/// What a push from an intent checkout did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntentPush {
    /// The commit of the intent branch applied: its tip as the intent store
    /// reads it (fetched from the remote), or the checkout's commit when
    /// the store has no revisions.
    pub commit: String,
    /// The checkout's own commit, when it is not the one applied (the
    /// checkout is behind the remote branch, or has commits not pushed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkout_commit: Option<String>,
    /// The commit of the previous push from an intent checkout, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_commit: Option<String>,
    /// The intent refs applied (all of the diff when there was no previous
    /// push, or the store cannot tell what changed since it).
    pub refs: Vec<crate::refs::Ref>,
    /// What applying them did.
    pub outcome: WorkOutcome,
    /// Whether nothing was changed.
    pub dryrun: bool,
}

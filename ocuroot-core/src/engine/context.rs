//! What every engine operation works with: the stores, the host, the
//! repository (its [`Site`]), limits, live progress and the [`Journal`] of
//! refs changed, and the clock's formats.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::host::Host;
use crate::model::{Event, EventSink, RepoConfig, Timestamp};
use crate::refs::Ref;
use crate::sdk::{Limits, Secrets};
use crate::store::RefStore;

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
    /// How long a claim on a run holds without being renewed (see
    /// `engine::lease`).
    pub lease: std::time::Duration,
    /// Live progress.
    pub events: Option<EventSink>,
    /// The repository work is done in: its name in refs, its git work tree,
    /// remotes and settings, and where checkouts of other commits go.
    pub site: Site,
    /// The refs changed through this workspace, for `--cascade`.
    pub journal: Journal,
    /// The package (with a release: that release of it) the work commands
    /// are limited to, if they are: work on other refs is not found.
    pub limit: Option<Ref>,
}

impl EngineContext {
    /// Whether `r` is within [`limit`](Self::limit): always without one;
    /// else the same repository and package, and when the limit names a
    /// release, that release or the package's current one (`<pkg>/@/...`:
    /// its deploy intents and custom state). Global refs (`@/custom/...`,
    /// `@/environment/...`) are within no limit.
    pub(crate) fn within_limit(&self, r: &Ref) -> bool {
        let Some(limit) = &self.limit else {
            return true;
        };
        let release = match (&limit.release, r.release.as_deref()) {
            (None, _) | (Some(_), None | Some("")) => true,
            (Some(wanted), Some(release)) => wanted == release,
        };
        !r.global && r.repo == limit.repo && r.filename == limit.filename && release
    }
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
pub struct Journal(Arc<Mutex<BTreeSet<Ref>>>);

impl Journal {
    /// Record a changed ref (without fragment).
    pub(crate) fn record(&self, r: &Ref) {
        self.lock().insert(r.without_fragment());
    }

    /// Everything recorded so far, leaving the journal empty.
    pub fn take(&self) -> BTreeSet<Ref> {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<Ref>> {
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

    pub(crate) fn timestamp(&self) -> Timestamp {
        Timestamp::new(self.now())
    }
}

//! The facade every front end uses: open a repository, then lint package
//! files and read state.
//!
//! ```no_run
//! use ocuroot_core::Workspace;
//!
//! let ws = Workspace::builder("path/to/repo").open()?;
//! let lint = ws.release_lint("release.ocu.star")?;
//! for phase in &lint.package().unwrap().phases {
//!     println!("{} ({} items)", phase.name, phase.work.len());
//! }
//! let doc = ws.state_get("@/environment/production")?;
//! # Ok::<(), ocuroot_core::Error>(())
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::engine::cascade::CascadeOptions;
use crate::engine::work::WorkCommand;
use crate::engine::{self, EngineContext};
use crate::host::{Host, LocalHost};
use crate::model::{Environment, ReleaseReport, RepoConfig};
use crate::model::{
    EventSink, IntentChange, IntentPush, NewRelease, Plan, PushOutcome, Todo, TriggerStatus,
    Triggered, WorkOutcome,
};
use crate::refs::{Ref, RefGlob, ReleaseId};
use crate::repo::{NameSource, RepoInfo};
use crate::sdk::{self, EvalOptions, Limits, Secrets};
use crate::store::{PrefixStore, RefStore, Store};
use crate::{Error, Result};

mod args;
mod checkout;
mod deploys;
mod evaluate;
mod stores;

pub use checkout::StoreCheckout;

pub use evaluate::{EnvironmentSource, Lint};

pub use crate::engine::lease::{DEFAULT_RUN_LEASE, MAX_RUN_LEASE, MIN_RUN_LEASE, parse_lease};
pub use crate::model::DEFAULT_STORE_DIR;

/// Builds a [`Workspace`].
pub struct WorkspaceBuilder {
    path: PathBuf,
    host: Option<Arc<dyn Host>>,
    state: Option<Arc<dyn Store>>,
    intent: Option<Arc<dyn Store>>,
    /// Whether `intent` was given on its own (so `store` keeps it).
    intent_given: bool,
    limits: Limits,
    parallel: Option<usize>,
    lease: Option<Duration>,
    events: Option<EventSink>,
    cascade: CascadeOptions,
    limit: Option<String>,
}

impl WorkspaceBuilder {
    /// Limit the work commands to one package, or one release of it:
    /// `<package>` or `<package>/@<release or tag>`, the package as a path
    /// or a package ref (as `release_retry` takes them). Work on any other
    /// ref (other packages, global intent such as `@/custom/...`) is not
    /// found, applied or triggered; `work_trigger_intent` triggers only the
    /// package's repository. Checked when the workspace is opened.
    pub fn limit(mut self, package_or_release: impl Into<String>) -> Self {
        self.limit = Some(package_or_release.into());
        self
    }

    /// How many times a cascade tries a failing redeploy before it gives
    /// it up (default 3; 0 counts as 1).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.cascade.max_attempts = n.max(1);
        self
    }

    /// How many work items may run at once (default: the number of CPUs).
    pub fn parallel(mut self, n: usize) -> Self {
        self.parallel = Some(n.max(1));
        self
    }

    /// How long a claim on a run holds without being renewed: once it has
    /// expired, any agent may take the run over (default: the
    /// `OCUROOT_RUN_LEASE` environment variable, else
    /// [`DEFAULT_RUN_LEASE`], 2 minutes). An agent renews the leases of the
    /// runs it executes every third of this; see the crate's README on
    /// exactly-once execution. Values outside [`MIN_RUN_LEASE`] (300 ms)
    /// and [`MAX_RUN_LEASE`] (a day) are taken as the nearest of them.
    pub fn run_lease(mut self, lease: Duration) -> Self {
        self.lease = Some(lease.clamp(MIN_RUN_LEASE, MAX_RUN_LEASE));
        self
    }

    /// Receive live progress events from releases (from worker threads).
    pub fn events(mut self, sink: EventSink) -> Self {
        self.events = Some(sink);
        self
    }

    /// Use this host for shell commands, files, environment variables and
    /// the clock (default: [`LocalHost`]). Environment overrides such as
    /// `OCU_REPO_COMMIT_OVERRIDE` are read through [`Host::var`].
    pub fn host(mut self, host: Arc<dyn Host>) -> Self {
        self.host = Some(host);
        self
    }

    /// Keep state and intent in one store, under `state/` and `intent/`,
    /// instead of the store `repo.ocu.star` configures. With
    /// [`intent_store`](Self::intent_store) too, this store keeps state only
    /// (still under `state/`).
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.state = Some(Arc::new(PrefixStore::fixed(store.clone(), "state")));
        if !self.intent_given {
            self.intent = Some(Arc::new(PrefixStore::fixed(store, "intent")));
        }
        self
    }

    /// Keep intent in a store of its own (keys without a prefix), whatever
    /// keeps state: [`store`](Self::store), or the store `repo.ocu.star`
    /// configures.
    pub fn intent_store(mut self, intent: Arc<dyn Store>) -> Self {
        self.intent = Some(intent);
        self.intent_given = true;
        self
    }

    /// Use separate state and intent stores (keys without a prefix).
    pub fn stores(mut self, state: Arc<dyn Store>, intent: Arc<dyn Store>) -> Self {
        self.state = Some(state);
        self.intent_store(intent)
    }

    /// Evaluation limits for every file and call.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Discover the repository, evaluate `repo.ocu.star` and open the stores.
    pub fn open(self) -> Result<Workspace> {
        let host = self.host.unwrap_or_else(|| Arc::new(LocalHost::new()));
        let var = |name: &str| host.var(name).filter(|v| !v.is_empty());
        let start = self
            .path
            .canonicalize()
            .map_err(|e| Error::io("cannot open", &self.path, e))?;
        let start_dir = if start.is_dir() {
            start.clone()
        } else {
            start
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or(start.clone())
        };
        let info = RepoInfo::discover(&start_dir, &var)?;
        // In a checkout of a state or intent branch, the repo.ocu.star
        // recorded there names the stores (unless the caller gave some).
        let checkout = match (&self.state, checkout::find(&start_dir)) {
            (None, Some(dir)) => Some(checkout::open(&dir, &host, self.limits)?),
            _ => None,
        };
        let config = match (&checkout, &info.config_file) {
            (Some((_, config)), _) => config.clone(),
            (None, Some(file)) => {
                let mut options = EvalOptions::new(host.clone(), info.root.clone(), Ref::default());
                options.limits = self.limits;
                sdk::evaluate_repo_config(file, &options)?
            }
            (None, None) => RepoConfig::default(),
        };
        let (name, name_source) = match (var("OCU_CFG_repo_alias"), &config.alias) {
            _ if checkout.is_some() => (
                checkout
                    .as_ref()
                    .map(|(c, _)| c.repo.clone())
                    .unwrap_or_default(),
                NameSource::StoreCheckout,
            ),
            (Some(alias), _) => (alias, NameSource::AliasOverride),
            (None, Some(alias)) => (alias.clone(), NameSource::Alias),
            (None, None) => info.default_name(&var)?,
        };
        crate::refs::validate_key(&name).map_err(|e| {
            let hint = if name_source == NameSource::Directory {
                " (the name of the root directory, as there is no repo_alias and no 'origin' \
                 remote: set repo_alias(...) in repo.ocu.star)"
            } else {
                ""
            };
            Error::config(format!(
                "invalid repository name {name:?}{hint}: {}",
                e.message()
            ))
            .with_location_opt(config.locations.alias.clone())
        })?;
        let lease = match (self.lease, var("OCUROOT_RUN_LEASE")) {
            (Some(lease), _) => lease,
            (None, Some(text)) => parse_lease(&text)?,
            (None, None) => DEFAULT_RUN_LEASE,
        };
        let (state, intent) = match (self.state, self.intent) {
            (Some(s), Some(i)) => (s, i),
            (given_state, given_intent) => stores::open_configured(&info.root, &config, &var)
                .map_err(|e| {
                    let at = config
                        .locations
                        .state
                        .clone()
                        .or(config.locations.intent.clone());
                    match &at {
                        Some(l) => e
                            .context(format!("the store configured at {l}"))
                            .with_location_opt(at),
                        None => e,
                    }
                })
                .map(|(s, i)| (given_state.unwrap_or(s), given_intent.unwrap_or(i)))?,
        };
        tracing::debug!(
            root = %info.root.display(),
            repo = %name,
            commit = %info.commit,
            state = %state.describe(),
            intent = %intent.describe(),
            "workspace opened"
        );
        Workspace {
            host,
            info,
            config,
            name,
            name_source,
            cwd: start_dir,
            state: RefStore::new(state),
            intent: RefStore::new(intent),
            limits: self.limits,
            secrets: Secrets::default(),
            parallel: self.parallel.unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            }),
            lease,
            events: self.events,
            journal: engine::Journal::default(),
            cascade: self.cascade,
            checkout: checkout.map(|(c, _)| c),
            limit: None,
        }
        .limited(self.limit.as_deref())
    }
}

/// An opened repository with its state and intent stores.
pub struct Workspace {
    host: Arc<dyn Host>,
    info: RepoInfo,
    config: RepoConfig,
    name: String,
    name_source: NameSource,
    cwd: PathBuf,
    state: RefStore,
    intent: RefStore,
    limits: Limits,
    secrets: Secrets,
    parallel: usize,
    lease: Duration,
    events: Option<EventSink>,
    journal: engine::Journal,
    cascade: CascadeOptions,
    checkout: Option<StoreCheckout>,
    limit: Option<Ref>,
}

impl std::fmt::Debug for Workspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workspace")
            .field("root", &self.info.root)
            .field("name", &self.name)
            .field("commit", &self.info.commit)
            .finish_non_exhaustive()
    }
}

impl Workspace {
    /// Start building a workspace for the repository containing `path`.
    pub fn builder(path: impl Into<PathBuf>) -> WorkspaceBuilder {
        WorkspaceBuilder {
            path: path.into(),
            host: None,
            state: None,
            intent: None,
            intent_given: false,
            limits: Limits::default(),
            parallel: None,
            lease: None,
            events: None,
            cascade: CascadeOptions::default(),
            limit: None,
        }
    }

    /// Open the repository containing `path` with the defaults.
    pub fn open(path: impl Into<PathBuf>) -> Result<Workspace> {
        Self::builder(path).open()
    }

    /// The checkout of a state or intent branch this workspace was opened
    /// in, if it was: its stores are the ones the `repo.ocu.star` recorded
    /// there names, and refs given to it must be absolute.
    pub fn store_checkout(&self) -> Option<&StoreCheckout> {
        self.checkout.as_ref()
    }

    /// The repository root.
    pub fn root(&self) -> &Path {
        &self.info.root
    }
    /// The repository name used in refs.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Where [`name`](Self::name) comes from.
    pub fn name_source(&self) -> NameSource {
        self.name_source
    }
    /// A note for the first line of a report when the name is the root
    /// directory's (no `repo_alias` and no `origin` remote): refs would
    /// change if the directory were renamed, so say so.
    pub fn name_note(&self) -> Option<String> {
        (self.name_source == NameSource::Directory).then(|| {
            format!(
                "Repository name: {} (the root directory's name, as there is no repo_alias in \
                 repo.ocu.star and no 'origin' remote; set repo_alias(...) to choose one)",
                self.name
            )
        })
    }

    /// The commit work is done at: HEAD (or `OCU_REPO_COMMIT_OVERRIDE`) when
    /// the workspace was opened. It is read once, so that every operation of
    /// a workspace works at one commit even while someone checks out
    /// another; after a checkout, open a new workspace to work at the new
    /// HEAD.
    pub fn commit(&self) -> &str {
        &self.info.commit
    }
    /// The settings of `repo.ocu.star`.
    pub fn config(&self) -> &RepoConfig {
        &self.config
    }
    /// The state store.
    pub fn state(&self) -> &RefStore {
        &self.state
    }
    /// The intent store.
    pub fn intent(&self) -> &RefStore {
        &self.intent
    }
    /// The host.
    pub fn host(&self) -> &Arc<dyn Host> {
        &self.host
    }

    /// The environments in state, sorted by name.
    pub fn environments(&self) -> Result<Vec<Environment>> {
        engine::releases::environments(&self.engine())
    }

    /// The release id `release new` would allocate next for a package.
    pub fn next_release_id(&self, package: &Ref) -> Result<ReleaseId> {
        engine::releases::next_release_id(&self.engine(), package)
    }

    /// The engine's view of this workspace.
    pub(crate) fn engine(&self) -> EngineContext {
        EngineContext {
            state: self.state.clone(),
            intent: self.intent.clone(),
            host: self.host.clone(),
            root: self.info.root.clone(),
            commit: self.info.commit.clone(),
            secrets: self.secrets.clone(),
            limits: self.limits,
            parallel: self.parallel,
            lease: self.lease,
            events: self.events.clone(),
            site: engine::Site {
                repo: self.name.clone(),
                git_root: self.info.git_root.clone(),
                work_area: self.info.git_dir.as_ref().map(|d| d.join("ocuroot")),
                remotes: self.info.remotes.clone(),
                config_file: self.info.config_file.clone(),
                config: self.config.clone(),
            },
            journal: self.journal.clone(),
            limit: self.limit.clone(),
        }
    }

    /// The engine's view for calling triggers. A trigger's `host.shell`
    /// runs in the repository root; in a checkout of a store branch, which
    /// is no repository, it runs where the workspace was opened (as the
    /// original runs it in the process's directory), so `cd
    /// <checkout>/intent && ocuroot work trigger --intent` acts there.
    fn trigger_engine(&self) -> EngineContext {
        let mut ctx = self.engine();
        if self.checkout.is_some() {
            ctx.root = self.cwd.clone();
        }
        ctx
    }

    /// `release new`: create a release of the package file at the current
    /// commit and run it until nothing more can run. Refuses when the package
    /// already has a release at this commit, unless `force`. A file that
    /// registers environments writes them to intent and applies them.
    ///
    /// `file` is a path or a package ref (`//backend/package.ocu.star`); see
    /// [`package_file`](Self::package_file).
    pub fn release_new(&self, file: impl AsRef<Path>, force: bool) -> Result<NewRelease> {
        let abs = self.package_file(file.as_ref())?;
        let package = self.package_ref(&abs)?;
        engine::release::release_new(&self.engine(), &abs, &package, force)
    }

    /// `release continue <pkg>/@<id or tag>`: run a release further. The
    /// package is a path or a package ref; see
    /// [`release_arg`](Self::release_arg).
    pub fn release_continue(&self, release: &str) -> Result<ReleaseReport> {
        let r = self.release_arg(release)?;
        engine::release::release_continue(&self.engine(), &r)
    }

    /// `release retry <pkg>[/@<id>]`: retry the failed work of a release
    /// (without an id, the latest release of the package at this commit),
    /// and take over runs whose agents' claims have lapsed (their lease
    /// expired, or their process is known to be gone).
    pub fn release_retry(&self, release: &str) -> Result<ReleaseReport> {
        let r = self.release_arg(release)?;
        engine::release::release_retry(&self.engine(), &r)
    }

    /// `release takeover <pkg>[/@<id>]`: break every claim on the running
    /// runs of a release now, whatever their leases say, then run the
    /// release on. For a person who knows the agents holding them are gone
    /// (a cancelled pipeline, a lost machine); an agent still running one
    /// of them finds its outcome refused. Each taken-over run is marked
    /// `cancelled`, with who held it, who took it over, when and why, and a
    /// new run replaces it. Nothing running is
    /// [`ErrorKind::NothingToRetry`](crate::ErrorKind::NothingToRetry).
    pub fn release_takeover(&self, release: &str) -> Result<ReleaseReport> {
        let r = self.release_arg(release)?;
        engine::release::release_takeover(&self.engine(), &r)
    }

    /// `release status <pkg>[/@<id or tag>]`: the report of a release as it
    /// stands in state, the same report [`release_continue`](Self::release_continue)
    /// returns, for a release at any commit. Nothing is evaluated, run or
    /// written (the package file need not exist at this commit). Without a
    /// release (`<pkg>`), the package's latest release (highest number).
    /// The package is a path or a package ref; see
    /// [`release_arg`](Self::release_arg). A release that does not exist is
    /// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound), naming the ref.
    pub fn release_status(&self, release: &str) -> Result<ReleaseReport> {
        let r = self.release_arg(release)?;
        engine::report::release_status(&self.engine(), &r)
    }

    /// Read the stores afresh: publish what this workspace deferred and
    /// fetch what other agents have written since (a git store reads from
    /// its last fetch for up to `OCUROOT_GIT_FETCH_INTERVAL` seconds, 5 by
    /// default, to spare the remote a fetch per read). After it returns,
    /// reads see every change any agent had pushed before the call. Stores
    /// every reader sees at once (a directory) have nothing to do.
    pub fn refresh(&self) -> Result<()> {
        self.state.store().refresh()?;
        self.intent.store().refresh()
    }

    /// `state gc`: pack the clones of this repository's git stores under
    /// `OCUROOT_HOME` into one pack each, and remove the other clones there
    /// that no command has used for `unused_for` (remotes no longer
    /// configured; `Duration::ZERO` removes every other clone). Stores that
    /// are not git stores have no clone.
    pub fn state_gc(&self, unused_for: Duration) -> Result<GcReport> {
        let var = |name: &str| self.host.var(name).filter(|v| !v.is_empty());
        let (home, clones) = stores::configured_clones(&self.info.root, &self.config, &var)?;
        let packed = clones
            .iter()
            .map(|c| crate::store::pack_clone(c))
            .collect::<Result<Vec<_>>>()?;
        let removed = crate::store::prune_clones(&home, unused_for, &clones)?;
        Ok(GcReport {
            home,
            packed,
            removed,
        })
    }

    /// A document (or `#fragment` of one) from the state store, following links.
    pub fn state_get(&self, r: &str) -> Result<Option<serde_json::Value>> {
        let r = self.resolve_user_ref(r)?;
        self.state.get(&r)
    }

    /// `state read`: the document at `r` in the state store, typed by what
    /// its ref names (a release, a run, a task's or deploy's outcome, an
    /// environment, custom state), links followed; `None` if absent. See
    /// [`StateDoc`](crate::model::StateDoc) for which ref gives which type.
    pub fn state_read(&self, r: &str) -> Result<Option<crate::model::StateRead>> {
        let r = self.resolve_user_ref(r)?;
        let resolved = self.state.resolve(&r)?;
        let Some(value) = self.state.get(&resolved)? else {
            return Ok(None);
        };
        let doc = crate::model::StateDoc::from_ref(&resolved, value)?;
        Ok(Some(crate::model::StateRead {
            r#ref: resolved,
            doc,
        }))
    }

    /// Refs in the state store matching any of the globs, sorted.
    pub fn state_match(&self, globs: &[impl AsRef<str>]) -> Result<Vec<String>> {
        for g in globs {
            RefGlob::new(g.as_ref())?;
        }
        self.state.match_globs(globs)
    }

    /// [`state_match`](Self::state_match) without links and without refs
    /// reached through a link (`state match --no-links`): only documents
    /// stored under their own ref.
    pub fn state_match_no_links(&self, globs: &[impl AsRef<str>]) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for text in self.state_match(globs)? {
            let r = Ref::parse(&text)?;
            if self.state.resolve(&r)? == r {
                out.push(text);
            }
        }
        Ok(out)
    }

    /// `state set`: write `value` to the intent store at `r` (intent refs
    /// only: custom state, environments, deploy intents). Environments must
    /// be valid and named as their ref, tags valid; nothing is written
    /// otherwise. Returns the absolute ref written. Apply it with
    /// [`state_apply`](Self::state_apply).
    pub fn state_set(&self, r: &str, value: serde_json::Value) -> Result<Ref> {
        let r = self.resolve_user_ref(r)?;
        no_fragment_in(&r)?;
        crate::model::check_json_depth(&value, &format!("the value for {r}"))?;
        engine::intent::validate_intent(&r, &value)?;
        let ctx = self.engine();
        engine::intent::require_release(&ctx, &r)?;
        if let Some(other) = engine::intent::conflicting_intent(&ctx, &r, &value)? {
            return Err(Error::new(
                crate::ErrorKind::Conflict,
                format!(
                    "intent {other} already sets the same state as {r} (through a tag) to \
                     another value: change or delete that one instead"
                ),
            ));
        }
        self.intent.update(|tx| tx.set(&r, value.clone()))?;
        Ok(r)
    }

    /// `state delete`: remove `r` from the intent store (applying that
    /// undoes it in state: custom state deleted, `down` for a deploy intent,
    /// an environment emptied and removed). Returns the absolute ref.
    pub fn state_delete(&self, r: &str) -> Result<Ref> {
        let r = self.resolve_user_ref(r)?;
        no_fragment_in(&r)?;
        engine::intent::IntentKind::require(&r)?;
        self.intent.update(|tx| tx.delete(&r))?;
        Ok(r)
    }

    /// `state apply`: make state match the intent at `r`, and run the work
    /// that creates in releases at the current commit.
    pub fn state_apply(&self, r: &str) -> Result<WorkOutcome> {
        let r = self.resolve_user_ref(r)?;
        no_fragment_in(&r)?;
        engine::intent::apply(&self.engine(), &r)
    }

    /// `state diff`: every intent ref whose state differs, sorted.
    pub fn state_diff(&self) -> Result<Vec<IntentChange>> {
        engine::intent::diff(&self.engine())
    }

    /// `work continue`: run the ready runs of releases at the current commit
    /// and redeploy current deployments whose inputs changed. With `dryrun`,
    /// only list that work. The `check_envs` ops new environments leave are
    /// for [`work_ops`](Self::work_ops).
    pub fn work_continue(&self, dryrun: bool) -> Result<WorkResult> {
        self.work(WorkCommand::Continue, dryrun)
    }

    /// `work ops`: run the ops of releases at the current commit: each
    /// `<rel>/op/check_envs` (left by a new environment) re-evaluates the
    /// release's file, adds the deploys it now makes as pending runs, and is
    /// removed. The deploys run with [`work_continue`](Self::work_continue).
    /// With `dryrun`, only list the ops.
    pub fn work_ops(&self, dryrun: bool) -> Result<WorkResult> {
        self.work(WorkCommand::Ops, dryrun)
    }

    /// `work any`: apply every intent difference, then run the ops, then do
    /// what [`work_continue`](Self::work_continue) does. With `dryrun`, only
    /// list that work. When it did something, it then calls the triggers of
    /// the commits that still have work (as
    /// [`work_trigger`](Self::work_trigger) does; repositories without a
    /// trigger are left out of the outcome), so a CI job running `work any`
    /// starts the next ones.
    pub fn work_any(&self, dryrun: bool) -> Result<WorkResult> {
        let mut result = self.work(WorkCommand::Any, dryrun)?;
        if let WorkResult::Done(out) = &mut result {
            self.trigger_after(out)?;
        }
        Ok(result)
    }

    /// `work any --comprehensive`: [`work_any`](Self::work_any) again and
    /// again until nothing is left at this commit, a round has failed work,
    /// or the cascade's round bound is reached (reported in
    /// [`WorkOutcome::stopped`]); then the triggers, as `work any` calls
    /// them.
    pub fn work_any_comprehensive(&self) -> Result<WorkOutcome> {
        let mut out = engine::work::work_comprehensive(&self.engine(), self.cascade.max_rounds)?;
        self.trigger_after(&mut out)?;
        Ok(out)
    }

    /// After `work any` did something, call the triggers of the commits
    /// still left with work.
    fn trigger_after(&self, out: &mut WorkOutcome) -> Result<()> {
        if out.did_something() {
            out.triggered = engine::trigger::work_trigger(&self.trigger_engine(), false)?
                .into_iter()
                .filter(|t| t.status != TriggerStatus::NoTrigger)
                .collect();
        }
        Ok(())
    }

    fn work(&self, command: WorkCommand, dryrun: bool) -> Result<WorkResult> {
        let ctx = self.engine();
        if dryrun {
            Ok(WorkResult::Planned(engine::work::find_work(&ctx, command)?))
        } else {
            Ok(WorkResult::Done(engine::work::work(&ctx, command)?))
        }
    }

    /// `push`: release every package file changed since the last push (all
    /// of them the first time; also the packages whose runs
    /// `done(watch=[...])` a prefix of a changed path; not those matching
    /// `release_ignore`), then follow what they changed as
    /// [`cascade`](Self::cascade) does, and record the push. Refuses with
    /// uncommitted or untracked changes. With `dryrun`, only list the
    /// packages.
    pub fn push(&self, dryrun: bool) -> Result<PushOutcome> {
        if let Some(checkout) = &self.checkout {
            return Err(Error::invalid_input(format!(
                "{} is a checkout of a store: push_intent applies an intent checkout's changes",
                checkout.dir.display()
            )));
        }
        engine::push::push(&self.engine(), self.cascade, dryrun)
    }

    /// `push` in a checkout of an intent branch: apply the intent changed
    /// since the last such push (all of the diff the first time) and record
    /// the checkout's commit at `@/push/intent_commit` in the intent store.
    /// With `dryrun`, only list the refs.
    pub fn push_intent(&self, dryrun: bool) -> Result<IntentPush> {
        match &self.checkout {
            Some(c) if c.tags.iter().any(|t| t == "intent") => {
                engine::push_intent::push_intent(&self.engine(), &c.dir, dryrun)
            }
            Some(c) => Err(Error::invalid_input(format!(
                "{} is a checkout of a state store: push applies intent, so run it in a \
                 checkout of the intent branch",
                c.dir.display()
            ))),
            None => Err(Error::invalid_input(
                "push_intent runs in a checkout of an intent branch (found by its .ocuroot-store)",
            )),
        }
    }

    /// `work cascade`: do everything outstanding (intent, ready runs,
    /// redeploys) at every commit of every repository, each in a checkout
    /// of its commit (a git worktree, or a clone of another repository),
    /// repeating until nothing is left. With `dryrun`, only list the work
    /// of the first round, in dependency order.
    pub fn work_cascade(&self, dryrun: bool) -> Result<WorkResult> {
        let ctx = self.engine();
        if dryrun {
            Ok(WorkResult::Planned(engine::cascade::plan_cascade(&ctx)?))
        } else {
            Ok(WorkResult::Done(engine::cascade::work_cascade(
                &ctx,
                self.cascade,
            )?))
        }
    }

    /// `--cascade`: follow what this workspace changed since the last
    /// cascade (the releases [`release_new`](Self::release_new) ran, the
    /// intent [`state_apply`](Self::state_apply) applied) to every
    /// deployment that reads it, at its own commit, repeating until nothing
    /// is left.
    pub fn cascade(&self) -> Result<WorkOutcome> {
        engine::cascade::cascade(&self.engine(), self.cascade)
    }

    /// `plan`: the outstanding work everywhere in dependency order, each
    /// item with why it would run or what it waits for, and the dependency
    /// graph of the latest release of every package. A dependency cycle is
    /// an error naming every node on it.
    pub fn plan(&self) -> Result<Plan> {
        engine::plan::plan(&self.engine())
    }

    /// `work trigger`: call `repo.ocu.star`'s `trigger(commit)` for each
    /// commit with outstanding work (with `dryrun`, only list them).
    pub fn work_trigger(&self, dryrun: bool) -> Result<Vec<Triggered>> {
        engine::trigger::work_trigger(&self.trigger_engine(), dryrun)
    }

    /// `work trigger --intent`: call the trigger of every repository state
    /// knows, at its latest recorded commit (with `dryrun`, only list them).
    /// How a person's push to an intent branch reaches each repository's CI.
    pub fn work_trigger_intent(&self, dryrun: bool) -> Result<Vec<Triggered>> {
        engine::trigger::work_trigger_intent(&self.trigger_engine(), dryrun)
    }

    /// Bring the state and intent stores' files up to date for tools that
    /// read them directly (see [`Store::checkpoint`]):
    /// the files of a [`FsStore`](crate::store::FsStore) are written from
    /// its log and made durable.
    pub fn state_checkpoint(&self) -> Result<()> {
        self.state.store().checkpoint()?;
        self.intent.store().checkpoint()
    }
}

/// What [`Workspace::state_gc`] did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GcReport {
    /// `OCUROOT_HOME`.
    pub home: PathBuf,
    /// The clones of this repository's stores, packed.
    pub packed: Vec<crate::store::Packed>,
    /// The clones removed.
    pub removed: Vec<PathBuf>,
}

/// What a `work` command did, or (dry run) would do.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum WorkResult {
    /// `--dryrun`: the work, in order.
    Planned(Vec<Todo>),
    /// What was done.
    Done(WorkOutcome),
}

fn no_fragment_in(r: &Ref) -> Result<()> {
    if r.fragment.is_empty() {
        Ok(())
    } else {
        Err(Error::invalid_input(format!(
            "{r}: intent is set and applied as whole documents, without a #fragment"
        )))
    }
}

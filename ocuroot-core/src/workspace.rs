//! The facade every front end uses: open a repository, then lint package
//! files and read state.
//!
//! ```no_run
//! use ocuroot_core::Workspace;
//!
//! let ws = Workspace::builder("path/to/repo").open()?;
//! let lint = ws.lint("release.ocu.star")?;
//! for phase in &lint.package().unwrap().phases {
//!     println!("{} ({} items)", phase.name, phase.work.len());
//! }
//! let doc = ws.state_get("@/environment/production")?;
//! # Ok::<(), ocuroot_core::Error>(())
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::engine::cascade::CascadeOptions;
use crate::engine::intent::{IntentChange, WorkOutcome};
use crate::engine::plan::Plan;
use crate::engine::trigger::Triggered;
use crate::engine::work::Todo;
use crate::engine::{self, EngineContext, EventSink, NewRelease};
use crate::host::{Host, LocalHost};
use crate::model::{Environment, Package, ReleaseReport, RepoConfig, StoreSpec};
use crate::refs::{Ref, RefGlob};
use crate::repo::RepoInfo;
use crate::sdk::{self, EvalOptions, FileContents, Limits, LoadedFile, Secrets};
use crate::store::{FsStore, PrefixStore, RefStore, Store};
use crate::{Error, Result};

/// The directory (relative to the root) of the embedded default store used
/// when there is no `repo.ocu.star` or it configures no store (SPEC §1).
pub const DEFAULT_STORE_DIR: &str = ".ocuroot/store";

/// Builds a [`Workspace`].
pub struct WorkspaceBuilder {
    path: PathBuf,
    host: Option<Arc<dyn Host>>,
    state: Option<Arc<dyn Store>>,
    intent: Option<Arc<dyn Store>>,
    limits: Limits,
    parallel: Option<usize>,
    events: Option<EventSink>,
    cascade: CascadeOptions,
}

impl WorkspaceBuilder {
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
    /// instead of the store `repo.ocu.star` configures.
    pub fn store(mut self, store: Arc<dyn Store>) -> Result<Self> {
        self.state = Some(Arc::new(PrefixStore::new(store.clone(), "state")?));
        self.intent = Some(Arc::new(PrefixStore::new(store, "intent")?));
        Ok(self)
    }

    /// Use separate state and intent stores.
    pub fn stores(mut self, state: Arc<dyn Store>, intent: Arc<dyn Store>) -> Self {
        self.state = Some(state);
        self.intent = Some(intent);
        self
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
        let config = match &info.config_file {
            Some(file) => {
                let mut options = EvalOptions::new(host.clone(), info.root.clone(), Ref::default());
                options.limits = self.limits;
                sdk::evaluate_repo_config(file, &options)?
            }
            None => RepoConfig::default(),
        };
        let name = match var("OCU_CFG_repo_alias").or(config.alias.clone()) {
            Some(alias) => alias,
            None => info.default_name(&var)?,
        };
        crate::refs::validate_key(&name).map_err(|e| {
            Error::config(format!("invalid repository name {name:?}: {}", e.message()))
        })?;
        let (state, intent) = match (self.state, self.intent) {
            (Some(s), Some(i)) => (s, i),
            _ => open_configured_stores(&info.root, &config)?,
        };
        Ok(Workspace {
            host,
            info,
            config,
            name,
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
            events: self.events,
            journal: engine::Journal::default(),
            cascade: self.cascade,
        })
    }
}

fn open_configured_stores(
    root: &Path,
    config: &RepoConfig,
) -> Result<(Arc<dyn Store>, Arc<dyn Store>)> {
    let fs_dir = |spec: &StoreSpec| -> Result<PathBuf> {
        match spec {
            StoreSpec::Fs { path } => {
                let p = Path::new(path);
                if p.is_absolute() {
                    Ok(p.to_path_buf())
                } else {
                    Ok(root.join(p))
                }
            }
            StoreSpec::Git { remote_url, .. } => Err(Error::config(format!(
                "store.git({remote_url:?}) is not supported by this version of ocuroot yet; use store.fs(...)"
            ))),
        }
    };
    let default = StoreSpec::Fs {
        path: DEFAULT_STORE_DIR.to_string(),
    };
    let state_spec = config.state.as_ref().unwrap_or(&default);
    match &config.intent {
        Some(intent_spec) => Ok((
            Arc::new(FsStore::open(fs_dir(state_spec)?, "state")?),
            Arc::new(FsStore::open(fs_dir(intent_spec)?, "intent")?),
        )),
        None => {
            let base = fs_dir(state_spec)?;
            Ok((
                Arc::new(FsStore::open(base.join("state"), "state")?),
                Arc::new(FsStore::open(base.join("intent"), "intent")?),
            ))
        }
    }
}

/// An opened repository with its state and intent stores.
pub struct Workspace {
    host: Arc<dyn Host>,
    info: RepoInfo,
    config: RepoConfig,
    name: String,
    cwd: PathBuf,
    state: RefStore,
    intent: RefStore,
    limits: Limits,
    secrets: Secrets,
    parallel: usize,
    events: Option<EventSink>,
    journal: engine::Journal,
    cascade: CascadeOptions,
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

/// Where the environments shown by a lint came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvironmentSource {
    /// `@/environment/*` in the state store.
    State,
    /// The state store has none; these files of the repository register them.
    Files(Vec<String>),
    /// None anywhere.
    None,
}

/// The result of [`Workspace::lint`].
#[derive(Debug)]
pub struct Lint {
    /// The package file, relative to the root.
    pub file: String,
    /// The ref relative refs resolved against (the release `release new`
    /// would create next).
    pub base: Ref,
    /// The evaluated file.
    pub loaded: LoadedFile,
    /// Where `environments()` got its list.
    pub environment_source: EnvironmentSource,
}

impl Lint {
    /// The package, if the file declares a release.
    pub fn package(&self) -> Option<&Package> {
        self.loaded.package()
    }

    /// The JSON form of the lint (`release lint --format json`, and what
    /// the C and Python bindings return): `file`, `base`, then `package`
    /// (a release), `environments` (a file registering them) or nothing
    /// more (an empty file).
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "file": self.file,
            "base": self.base.to_string(),
        });
        let extra = match self.loaded.contents() {
            FileContents::Release(p) => Some(("package", serde_json::to_value(p))),
            FileContents::Environments(e) => Some(("environments", serde_json::to_value(e))),
            FileContents::Empty => None,
        };
        if let (Some((name, Ok(value))), Some(o)) = (extra, v.as_object_mut()) {
            o.insert(name.to_string(), value);
        }
        v
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
            limits: Limits::default(),
            parallel: None,
            events: None,
            cascade: CascadeOptions::default(),
        }
    }

    /// Open the repository containing `path` with the defaults.
    pub fn open(path: impl Into<PathBuf>) -> Result<Workspace> {
        Self::builder(path).open()
    }

    /// The repository root.
    pub fn root(&self) -> &Path {
        &self.info.root
    }
    /// The repository name used in refs.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The commit work is done at.
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

    /// The ref of the working directory: relative refs given on the command
    /// line resolve against it (`release.ocu.star` from the root is
    /// `<repo>/-/release.ocu.star`).
    pub fn cwd_ref(&self) -> Ref {
        let filename = self.info.relative_path(&self.cwd).unwrap_or_default();
        Ref {
            repo: self.name.clone(),
            filename,
            ..Ref::default()
        }
    }

    /// Parse a ref given by a user and make it absolute against the working
    /// directory.
    pub fn resolve_user_ref(&self, text: &str) -> Result<Ref> {
        let r = Ref::parse(text)?;
        let r = r.relative_to(&self.cwd_ref());
        r.validate_storable()
            .map_err(|e| e.context(format!("ref {text:?}")))?;
        Ok(r)
    }

    /// The package ref of a package file (`<repo>/-/<path from root>`).
    pub fn package_ref(&self, file: &Path) -> Result<Ref> {
        let abs = self.abs(file);
        let rel = self.info.relative_path(&abs)?;
        Ok(Ref {
            repo: self.name.clone(),
            filename: rel,
            ..Ref::default()
        })
    }

    fn abs(&self, file: &Path) -> PathBuf {
        if file.is_absolute() {
            file.to_path_buf()
        } else {
            self.cwd.join(file)
        }
    }

    /// The environments in state, sorted by name.
    pub fn environments(&self) -> Result<Vec<Environment>> {
        engine::release::environments(&self.engine())
    }

    /// The release id `release new` would allocate next for a package.
    pub fn next_release_id(&self, package: &Ref) -> Result<String> {
        engine::release::next_release_id(&self.engine(), package)
    }

    /// The engine's view of this workspace.
    pub fn engine(&self) -> EngineContext {
        EngineContext {
            state: self.state.clone(),
            intent: self.intent.clone(),
            host: self.host.clone(),
            root: self.info.root.clone(),
            commit: self.info.commit.clone(),
            secrets: self.secrets.clone(),
            limits: self.limits,
            parallel: self.parallel,
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
        }
    }

    /// `release new`: create a release of the package file at the current
    /// commit and run it until nothing more can run. Refuses when the package
    /// already has a release at this commit, unless `force`. A file that
    /// registers environments writes them to intent and applies them.
    pub fn release_new(&self, file: impl AsRef<Path>, force: bool) -> Result<NewRelease> {
        let abs = self.abs(file.as_ref());
        let package = self.package_ref(&abs)?;
        engine::release_new(&self.engine(), &abs, &package, force)
    }

    /// `release continue <pkg>/@<id or tag>`: run a release further.
    pub fn release_continue(&self, release: &str) -> Result<ReleaseReport> {
        let r = self.resolve_user_ref(release)?;
        engine::release_continue(&self.engine(), &r)
    }

    /// `release retry <pkg>[/@<id>]`: retry the failed work of a release
    /// (without an id, the latest release of the package at this commit).
    pub fn release_retry(&self, release: &str) -> Result<ReleaseReport> {
        let r = self.resolve_user_ref(release)?;
        engine::release_retry(&self.engine(), &r)
    }

    /// Options for evaluating a file of this repository.
    pub fn eval_options(&self, base: Ref, environments: Vec<Environment>) -> EvalOptions {
        let mut o = EvalOptions::new(self.host.clone(), self.info.root.clone(), base);
        o.environments = environments.into();
        o.limits = self.limits;
        o.secrets = self.secrets.clone();
        o
    }

    /// Evaluate a package file without touching state, for `release lint`.
    ///
    /// Relative refs resolve against the release `release new` would create
    /// next. `environments()` returns the environments in state; when state
    /// has none, those registered by the repository's environment files, so a
    /// fresh checkout lints meaningfully.
    pub fn lint(&self, file: impl AsRef<Path>) -> Result<Lint> {
        let file = file.as_ref();
        let abs = self.abs(file);
        let package = self.package_ref(&abs)?;
        let base = package.with_release(&self.next_release_id(&package)?);
        let mut environments = self.environments()?;
        let mut source = EnvironmentSource::State;
        if environments.is_empty() {
            let (envs, files) = self.registered_environments(&abs)?;
            environments = envs;
            source = if files.is_empty() {
                EnvironmentSource::None
            } else {
                EnvironmentSource::Files(files)
            };
        }
        let loaded = sdk::evaluate_package(&abs, &self.eval_options(base.clone(), environments))?;
        Ok(Lint {
            file: package.filename.clone(),
            base,
            loaded,
            environment_source: source,
        })
    }

    /// Environments registered by the repository's package files (other than
    /// `except`), with the files that register them.
    fn registered_environments(&self, except: &Path) -> Result<(Vec<Environment>, Vec<String>)> {
        let mut files = Vec::new();
        collect_package_files(&self.info.root, &mut files);
        let except = except.canonicalize().ok();
        let mut envs: Vec<Environment> = Vec::new();
        let mut sources = Vec::new();
        for f in files {
            if Some(&f) == except.as_ref() {
                continue;
            }
            let mut options = self.eval_options(Ref::default(), Vec::new());
            // Looking for environments must not run anything: other files'
            // top-level commands and requests are refused here.
            options.host = Arc::new(ReadOnlyHost(self.host.clone()));
            // Only files that evaluate cleanly and register environments count.
            let Ok(loaded) = sdk::evaluate_package(&f, &options) else {
                continue;
            };
            if let FileContents::Environments(list) = loaded.contents() {
                sources.push(self.info.relative_path(&f)?);
                for e in list {
                    if !envs.iter().any(|x| x.name == e.name) {
                        envs.push(e.clone());
                    }
                }
            }
        }
        envs.sort_by(|a, b| a.name.cmp(&b.name));
        Ok((envs, sources))
    }

    /// A document (or `#fragment` of one) from the state store, following links.
    pub fn state_get(&self, r: &str) -> Result<Option<serde_json::Value>> {
        let r = self.resolve_user_ref(r)?;
        self.state.get(&r)
    }

    /// Refs in the state store matching any of the globs, sorted.
    pub fn state_match(&self, globs: &[impl AsRef<str>]) -> Result<Vec<String>> {
        for g in globs {
            RefGlob::new(g.as_ref())?;
        }
        self.state.match_globs(globs)
    }

    /// `state set`: write `value` to the intent store at `r` (intent refs
    /// only: custom state, environments, deploy intents). Environments must
    /// be valid and named as their ref, tags valid; nothing is written
    /// otherwise. Returns the absolute ref written. Apply it with
    /// [`state_apply`](Self::state_apply).
    pub fn state_set(&self, r: &str, value: serde_json::Value) -> Result<Ref> {
        let r = self.resolve_user_ref(r)?;
        no_fragment_in(&r)?;
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
    /// only list that work.
    pub fn work_continue(&self, dryrun: bool) -> Result<WorkResult> {
        self.work(false, dryrun)
    }

    /// `work any`: apply every intent difference, then do what
    /// [`work_continue`](Self::work_continue) does. With `dryrun`, only list
    /// that work. When it did something, it then calls the triggers of the
    /// commits that still have work (as [`work_trigger`](Self::work_trigger)
    /// does; repositories without a trigger are left out of the outcome), so
    /// a CI job running `work any` starts the next ones.
    pub fn work_any(&self, dryrun: bool) -> Result<WorkResult> {
        let mut result = self.work(true, dryrun)?;
        if let WorkResult::Done(out) = &mut result
            && !(out.applied.is_empty() && out.releases.is_empty())
        {
            out.triggered = engine::trigger::work_trigger(&self.engine(), false)?
                .into_iter()
                .filter(|t| t.status != engine::trigger::TriggerStatus::NoTrigger)
                .collect();
        }
        Ok(result)
    }

    fn work(&self, with_intent: bool, dryrun: bool) -> Result<WorkResult> {
        let ctx = self.engine();
        if dryrun {
            Ok(WorkResult::Planned(engine::work::find_work(
                &ctx,
                with_intent,
            )?))
        } else {
            Ok(WorkResult::Done(engine::work::work(&ctx, with_intent)?))
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
        engine::trigger::work_trigger(&self.engine(), dryrun)
    }

    /// Bring the state and intent stores' files up to date for tools that
    /// read them directly (see [`Store::checkpoint`]):
    /// the files of a [`FsStore`] are written from
    /// its log and made durable.
    pub fn state_checkpoint(&self) -> Result<()> {
        self.state.store().checkpoint()?;
        self.intent.store().checkpoint()
    }
}

/// A host for evaluating files only to see what they declare: reads go
/// through, commands, writes and requests are refused.
struct ReadOnlyHost(Arc<dyn Host>);

impl ReadOnlyHost {
    fn refuse(&self, what: &str) -> Error {
        Error::host(format!(
            "{what} is not run while looking for environments (release lint)"
        ))
    }
}

impl Host for ReadOnlyHost {
    fn shell(
        &self,
        _req: &crate::host::ShellRequest,
        _on_line: &mut dyn FnMut(crate::host::Stream, &str),
    ) -> Result<crate::host::ShellOutput> {
        Err(self.refuse("host.shell"))
    }
    fn env(&self) -> std::collections::BTreeMap<String, String> {
        self.0.env()
    }
    fn os(&self) -> String {
        self.0.os()
    }
    fn arch(&self) -> String {
        self.0.arch()
    }
    fn read_file(&self, path: &Path) -> Result<String> {
        self.0.read_file(path)
    }
    fn write_file(&self, _path: &Path, _contents: &str) -> Result<()> {
        Err(self.refuse("host.write_file"))
    }
    fn read_dir(&self, path: &Path) -> Result<Vec<String>> {
        self.0.read_dir(path)
    }
    fn is_dir(&self, path: &Path) -> Result<bool> {
        self.0.is_dir(path)
    }
    fn http(&self, _req: &crate::host::HttpRequest) -> Result<crate::host::HttpResponse> {
        Err(self.refuse("http"))
    }
    fn now(&self) -> std::time::SystemTime {
        self.0.now()
    }
}

/// Every `*.ocu.star` file below `dir` except `repo.ocu.star`, skipping
/// hidden directories, `target` and `node_modules`; sorted.
fn collect_package_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            if !name.starts_with('.') && name != "target" && name != "node_modules" {
                collect_package_files(&path, out);
            }
        } else if name.ends_with(".ocu.star")
            && name != "repo.ocu.star"
            && let Ok(p) = path.canonicalize()
        {
            out.push(p);
        }
    }
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

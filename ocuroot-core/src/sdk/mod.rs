//! The Starlark SDK: evaluate `*.ocu.star` files into model types and call
//! work functions later.
//!
//! This is the only module that imports `starlark`. Everything that leaves it
//! is a plain model type ([`Package`], [`Environment`], [`RepoConfig`],
//! [`Outcome`]) or a crate [`Error`](crate::Error) carrying the file:line:col
//! and the Starlark call stack.
//!
//! Evaluation is sandboxed: files reach the outside world only through the
//! [`Host`] given in [`EvalOptions`], and every evaluation runs under tick,
//! call-stack and heap limits ([`Limits`]) so a runaway file fails with a clear
//! error instead of hanging.

mod call;
mod context;
mod errors;
mod globals;
mod loader;
mod nesting;
mod repl;
mod secrets;
mod stubs;
mod values;
mod version;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use crate::model::LogLine;
pub use call::{CallRequest, CallResult, Outcome};
pub use repl::{ReplIo, ReplValue, evaluate_expression, input_is_complete, repl};
pub use secrets::Secrets;
pub use stubs::stubs;
pub use version::SDK_VERSION;

use crate::host::Host;
use crate::model::{Environment, FunctionId, Package, RepoConfig};
use crate::refs::Ref;
use crate::{Location, Result};

/// Resource limits for one evaluation or one function call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum number of Starlark "ticks" (function calls and loop iterations).
    pub max_ticks: u64,
    /// Maximum Starlark call-stack depth.
    pub max_callstack: usize,
    /// Maximum Starlark heap size in bytes (checked periodically).
    pub max_heap_bytes: usize,
    /// How long a `host.shell` command may run when its call gives no
    /// `timeout=` (`--timeout` on the CLI); `None`: no limit.
    pub shell_timeout: Option<std::time::Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_ticks: 50_000_000,
            max_callstack: 200,
            max_heap_bytes: 256 << 20,
            shell_timeout: None,
        }
    }
}

/// A callback receiving log lines as they are produced (live progress).
pub type LogSink = Arc<dyn Fn(&LogLine) + Send + Sync>;

/// What an evaluation may see and use.
#[derive(Clone)]
pub struct EvalOptions {
    /// Host access for `host.*`, `http.*` and the bare helpers.
    pub host: Arc<dyn Host>,
    /// The repository root: `load()` may not leave it, and file names in
    /// errors are shown relative to it.
    pub root: PathBuf,
    /// The ref relative refs are resolved against: the release being created
    /// or run (`<repo>/-/<pkg>/@r<N>`).
    pub base: Ref,
    /// The environments `environments()` returns (from state). Shared, so
    /// cloning options for each call is cheap.
    pub environments: Arc<[Environment]>,
    /// Strings to mask as `<secret>`; shared so `secret()` in one call masks
    /// the value in every later log line.
    pub secrets: Secrets,
    /// Resource limits.
    pub limits: Limits,
    /// Receives each log line as it is produced.
    pub log_sink: Option<LogSink>,
}

impl EvalOptions {
    /// Options with the default limits, no environments and no sink.
    pub fn new(host: Arc<dyn Host>, root: impl Into<PathBuf>, base: Ref) -> Self {
        EvalOptions {
            host,
            root: root.into(),
            base,
            environments: Arc::from(Vec::new()),
            secrets: Secrets::default(),
            limits: Limits::default(),
            log_sink: None,
        }
    }
}

impl std::fmt::Debug for EvalOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvalOptions")
            .field("root", &self.root)
            .field("base", &self.base)
            .field("environments", &self.environments)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// What a package file declares.
#[derive(Debug, Clone, PartialEq)]
pub enum FileContents {
    /// A release process.
    Release(Package),
    /// Environments registered with `register_environment`.
    Environments(Vec<Environment>),
    /// Neither (a file with only helpers, or an empty file).
    Empty,
}

/// A where-declared record for a work item, for messages and plans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    /// Work path inside the release (`task/build`, `deploy/staging`).
    pub path: crate::refs::WorkPath,
    /// Where the `task()` / `deploy()` call is.
    pub location: Location,
}

/// An evaluated package file. Holds the frozen modules so the work
/// functions it declares can be called later ([`LoadedFile::call`]); it is
/// `Send + Sync` and cheap to share between worker threads.
pub struct LoadedFile {
    contents: FileContents,
    declared: Vec<Declared>,
    prints: Vec<LogLine>,
    modules: Arc<context::ModuleSet>,
    path: PathBuf,
    options: EvalOptions,
}

impl std::fmt::Debug for LoadedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedFile")
            .field("path", &self.path)
            .field("contents", &self.contents)
            .finish_non_exhaustive()
    }
}

impl LoadedFile {
    /// What the file declares.
    pub fn contents(&self) -> &FileContents {
        &self.contents
    }
    /// The package, if the file declares a release.
    pub fn package(&self) -> Option<&Package> {
        match &self.contents {
            FileContents::Release(p) => Some(p),
            _ => None,
        }
    }
    /// Where each work item was declared, in package order.
    pub fn declared(&self) -> &[Declared] {
        &self.declared
    }
    /// Lines printed while the file was evaluated.
    pub fn prints(&self) -> &[LogLine] {
        &self.prints
    }
    /// The package file.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The options the file was evaluated with.
    pub fn options(&self) -> &EvalOptions {
        &self.options
    }
    /// True when `function` names a module-level function of this file or of
    /// a file it loads, at the recorded position.
    pub fn has_function(&self, function: &FunctionId) -> bool {
        self.modules.find(function).is_ok()
    }
    /// Call a work function; see [`CallRequest`].
    pub fn call(&self, request: &CallRequest) -> call::CallResult {
        on_eval_stack(|| Ok(call::call(self, request))).unwrap_or_else(|e| CallResult {
            outcome: Err(e),
            log: Vec::new(),
        })
    }
}

/// Evaluate a package file (a release or an environments file).
///
/// `path` is the file; relative refs in it resolve against `options.base`.
/// The result is validated: inputs match parameters, each environment is
/// deployed at most once, task names are unique, and a file does not both
/// register environments and declare work.
pub fn evaluate_package(path: &Path, options: &EvalOptions) -> Result<LoadedFile> {
    on_eval_stack(|| loader::evaluate(path, options, context::Mode::Package))
        .map_err(|e| options.secrets.mask_error(e))
}

/// Evaluate `repo.ocu.star` into its settings.
pub fn evaluate_repo_config(path: &Path, options: &EvalOptions) -> Result<RepoConfig> {
    on_eval_stack(|| loader::evaluate_repo(path, options))
        .map_err(|e| options.secrets.mask_error(e))
}

/// Evaluate `repo.ocu.star` into its settings, keeping the evaluated file
/// so that its `trigger` function can be called.
pub fn evaluate_repo_file(path: &Path, options: &EvalOptions) -> Result<(LoadedFile, RepoConfig)> {
    on_eval_stack(|| loader::evaluate_repo_file(path, options))
        .map_err(|e| options.secrets.mask_error(e))
}

/// The stack size of the thread every evaluation and call runs on. Parsing,
/// compiling and running Starlark recurse once per level of nesting in the
/// source and in values; a thread of its own with a known, large stack
/// (reserved, and only touched as deep as it is used) keeps a hostile file
/// from overflowing whatever small stack the caller's thread has. The
/// nesting itself is bounded by [`Limits`] and the value depth limit.
pub const EVAL_STACK_BYTES: usize = 1 << 30;

/// The stack tried when a thread with [`EVAL_STACK_BYTES`] cannot be made
/// (a machine that refuses to reserve that much address space).
const FALLBACK_STACK_BYTES: usize = 64 << 20;

std::thread_local! {
    /// Whether this thread is one [`spawn_eval_thread`] started: its
    /// evaluations and calls run on it directly.
    static ON_EVAL_STACK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Run `f` on a thread with an [`EVAL_STACK_BYTES`] stack: this one if it
/// is such a thread already, else a new one. A panic becomes an error.
fn on_eval_stack<T: Send>(f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    let panicked = || Err(crate::Error::internal("an evaluation panicked"));
    if ON_EVAL_STACK.get() {
        return std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
            .unwrap_or_else(|_| panicked());
    }
    std::thread::scope(|scope| {
        spawn_eval_thread(scope, f)?
            .join()
            .unwrap_or_else(|_| panicked())
    })
}

/// Run `f` on a thread with the evaluation stack, on which every
/// evaluation and call `f` makes runs directly rather than on a thread of
/// its own: the engine runs a release's scheduler this way, so a release
/// of 10,000 deploys starts a few threads, not 10,000.
pub fn with_eval_stack<T: Send>(f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    on_eval_stack(f)
}

/// Start a scoped thread with an [`EVAL_STACK_BYTES`] stack (or a smaller
/// one on a machine that refuses to reserve that much) running `f`, on
/// which evaluations and calls run directly (see [`with_eval_stack`]).
pub fn spawn_eval_thread<'scope, T: Send + 'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    f: impl FnOnce() -> Result<T> + Send + 'scope,
) -> Result<std::thread::ScopedJoinHandle<'scope, Result<T>>> {
    // `spawn_scoped` consumes the closure even when it fails, so the closure
    // is handed over through a slot that a failed spawn leaves full.
    let slot = std::sync::Arc::new(std::sync::Mutex::new(Some(f)));
    let spawn = |size: usize| {
        let slot = slot.clone();
        std::thread::Builder::new()
            .name("ocuroot-eval".into())
            .stack_size(size)
            .spawn_scoped(scope, move || {
                ON_EVAL_STACK.set(true);
                match slot.lock().ok().and_then(|mut s| s.take()) {
                    Some(f) => f(),
                    None => Err(crate::Error::internal("an evaluation ran twice")),
                }
            })
    };
    spawn(EVAL_STACK_BYTES)
        .or_else(|_| spawn(FALLBACK_STACK_BYTES))
        .map_err(|e| crate::Error::internal(format!("cannot start an evaluation thread: {e}")))
}

/// Mask every registered secret in `text`.
pub fn mask(secrets: &Secrets, text: &str) -> String {
    secrets.mask(text)
}

/// The values passed to a function call, by parameter name.
pub type Inputs = BTreeMap<String, serde_json::Value>;

#[cfg(test)]
mod eval_stack_tests {
    use super::*;

    fn thread() -> std::thread::ThreadId {
        std::thread::current().id()
    }

    /// Outside an evaluation thread each evaluation gets a thread of its
    /// own; inside one (a release's scheduler and workers), it runs there.
    #[test]
    fn evaluations_run_on_the_evaluation_thread_they_are_called_from() {
        let here = thread();
        let fresh = on_eval_stack(|| Ok(thread())).unwrap();
        assert_ne!(fresh, here);
        let (outer, inner) = with_eval_stack(|| {
            let outer = thread();
            let inner = on_eval_stack(|| Ok(thread()))?;
            Ok((outer, inner))
        })
        .unwrap();
        assert_ne!(outer, here);
        assert_eq!(inner, outer);
        // A worker started for the scheduler is one too.
        let same = std::thread::scope(|scope| {
            spawn_eval_thread(scope, || Ok(on_eval_stack(|| Ok(thread()))? == thread()))
                .unwrap()
                .join()
                .unwrap()
        })
        .unwrap();
        assert!(same);
    }

    /// A panic in an evaluation run in place is an error, as on a thread
    /// of its own.
    #[test]
    fn a_panic_on_the_evaluation_thread_is_an_error() {
        let err =
            with_eval_stack(|| on_eval_stack(|| -> Result<()> { panic!("boom") })).unwrap_err();
        assert!(err.message().contains("an evaluation panicked"), "{err}");
        let err = on_eval_stack(|| -> Result<()> { panic!("boom") }).unwrap_err();
        assert!(err.message().contains("an evaluation panicked"), "{err}");
    }
}

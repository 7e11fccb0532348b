//! # ocuroot-core
//!
//! The Ocuroot release engine as a library. A `*.ocu.star` file describes how
//! a package goes from a commit to deployments in every environment; this
//! crate evaluates those files, stores what happens in a state store, and
//! exposes it all through one facade, [`Workspace`], that the `ocuroot` CLI,
//! the C ABI and the Python module share.
//!
//! ## Evaluate a package file
//!
//! [`sdk::evaluate_package`] turns a file into a plain [`model::Package`]:
//! phases of tasks and deploys, with inputs wired by refs.
//!
//! ```
//! use std::sync::Arc;
//! use ocuroot_core::host::LocalHost;
//! use ocuroot_core::model::Work;
//! use ocuroot_core::refs::Ref;
//! use ocuroot_core::sdk::{self, EvalOptions};
//!
//! let dir = tempfile::tempdir()?;
//! std::fs::write(dir.path().join("release.ocu.star"), r#"
//! ocuroot("0.3.0")
//!
//! def build(prev):
//!     return done(outputs={"n": prev + 1})
//!
//! task(build, name="build", inputs={"prev": input(ref="./@/task/build#output/n", default=0)})
//! "#)?;
//!
//! let base = Ref::parse("myrepo/-/release.ocu.star/@r1")?;
//! let options = EvalOptions::new(Arc::new(LocalHost::new()), dir.path(), base);
//! let loaded = sdk::evaluate_package(&dir.path().join("release.ocu.star"), &options)?;
//! let package = loaded.package().expect("the file declares a release");
//! let Work::Task(build) = &package.phases[0].work[0] else { unreachable!() };
//! assert_eq!(build.name.as_str(), "build");
//! // Relative refs are resolved against the release being created.
//! assert_eq!(
//!     build.inputs["prev"].as_ref().unwrap().to_string(),
//!     "myrepo/-/release.ocu.star/@/task/build#output/n",
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Call a work function later
//!
//! The evaluated file keeps its frozen modules, so the engine can call the
//! functions it declares with resolved inputs (from any thread):
//!
//! ```
//! # use std::sync::Arc;
//! # use ocuroot_core::host::LocalHost;
//! # use ocuroot_core::refs::Ref;
//! # use ocuroot_core::sdk::{self, EvalOptions, CallRequest, Outcome};
//! # let dir = tempfile::tempdir()?;
//! # std::fs::write(dir.path().join("release.ocu.star"),
//! #     "def build(prev):\n    print('building', prev + 1)\n    return done(outputs={'n': prev + 1})\ntask(build, name='build', inputs={'prev': 1})\n")?;
//! # let options = EvalOptions::new(Arc::new(LocalHost::new()), dir.path(), Ref::parse("r/-/release.ocu.star/@r1")?);
//! # let loaded = sdk::evaluate_package(&dir.path().join("release.ocu.star"), &options)?;
//! let (_, work) = loaded.package().unwrap().work().next().unwrap();
//! let result = loaded.call(&CallRequest {
//!     function: work.entry_function().clone(),
//!     inputs: [("prev".to_string(), serde_json::json!(41))].into(),
//!     work_dir: None,
//!     base: None,
//!     log_sink: None,
//! });
//! let Outcome::Done { outputs, .. } = result.outcome? else { unreachable!() };
//! assert_eq!(outputs["n"], 42);
//! assert_eq!(result.log[0].message, "building 42");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Refs and the state store
//!
//! Every document has a [`refs::Ref`]; [`store::RefStore`] reads and writes
//! JSON documents by ref on top of any [`store::Store`] backend, with links,
//! `#fragment` reads, globs and transactions.
//!
//! ```
//! use std::sync::Arc;
//! use ocuroot_core::refs::Ref;
//! use ocuroot_core::store::{MemoryStore, RefStore};
//!
//! let state = RefStore::new(Arc::new(MemoryStore::new()));
//! let run = Ref::parse("repo/-/app.ocu.star/@r1/task/build")?;
//! state.update(|tx| {
//!     tx.set(&run, serde_json::json!({"output": {"tag": "app:1"}}))?;
//!     // `@` links to the latest successful build.
//!     tx.link(&Ref::parse("repo/-/app.ocu.star/@/task/build")?, &run)
//! })?;
//! let tag = state.get_str("repo/-/app.ocu.star/@/task/build#output/tag")?;
//! assert_eq!(tag, Some(serde_json::json!("app:1")));
//! assert_eq!(state.match_globs(&["**/@r1/task/*"])?, ["repo/-/app.ocu.star/@r1/task/build"]);
//! # Ok::<(), ocuroot_core::Error>(())
//! ```
//!
//! ## Open a repository
//!
//! [`Workspace`] finds the repository root (`repo.ocu.star`, else the git
//! root), evaluates `repo.ocu.star`, and opens the configured stores (by
//! default `.ocuroot/store`). The repository's name in refs is its
//! `repo_alias`, else the `origin` remote's URL, else the root directory's
//! name ([`Workspace::name_source`]). Shell execution and storage can be
//! replaced through
//! [`WorkspaceBuilder::host`](workspace::WorkspaceBuilder::host) and
//! [`WorkspaceBuilder::store`](workspace::WorkspaceBuilder::store).
//!
//! ## Releases, intent and dependencies
//!
//! The operations are methods of [`Workspace`], named as the CLI's
//! commands: `release_new` (a package file as a path or a package ref,
//! `//backend/package.ocu.star`), `release_continue`, `release_retry`,
//! `release_lint`, `state_set`/`state_apply`, `work_continue`, `work_ops` (the
//! `op/check_envs` a new environment leaves on the latest release of each
//! package), `work_any` and `work_any_comprehensive`, `push` (release what
//! changed since the last push), `repl`, and for dependencies across
//! packages `work_cascade` (everything outstanding, at every commit, each
//! in a git worktree or clone of its commit), `cascade` (after
//! `release_new` or `state_apply`: follow only what they changed), `plan`
//! (the work in dependency order, why or what it waits for, and the
//! [`graph::DependencyGraph`] as Mermaid or DOT) and `work_trigger`.
//!
//! ## Layout
//!
//! Each module imports only those above it in this table (the repository's
//! ARCHITECTURE.md says more, and a test checks it):
//!
//! | module | what |
//! |---|---|
//! | [`error`] | [`Error`]: kind, message, location, the ref it concerns |
//! | [`refs`] | ref grammar, relative resolution, globs, release ids and work paths |
//! | [`host`] | the `Host` seam: shell, files, HTTP, clock |
//! | [`model`] | plain serde types: packages, documents, and what every operation returns (outcomes, todos, plans, events, the dependency [`graph`]) |
//! | [`repo`] | git discovery: root, commit, repository name, worktrees, clones; paths |
//! | [`store`] | the `Store` seam, memory, filesystem and git backends, the ref layer |
//! | [`sdk`] | the Starlark SDK (the only module that imports `starlark`) |
//! | `engine` (private) | releases, intent, work discovery, cascades, plans, triggers, pushes |
//! | [`workspace`] | the facade the CLI and the bindings use |
#![warn(missing_docs)]

mod engine;
pub mod error;
pub mod host;
pub mod model;
pub mod refs;
pub mod repo;
pub mod sdk;
pub mod store;
pub mod workspace;

pub use error::{Error, ErrorKind, Location, Result};
pub use model::graph;
pub use model::{
    Event, EventSink, IntentChange, IntentPush, NewRelease, Plan, PushOutcome, ReleaseReport,
    StateDoc, StateRead, Todo, Triggered, WorkOutcome,
};
pub use workspace::{GcReport, WorkResult, Workspace};

// The crate's README (what crates.io shows) is compiled as a doctest, so its
// example keeps up with the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

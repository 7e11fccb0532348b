//! Intent, environments, custom state and the `work` calls through the
//! Workspace API: `state_set` / `state_delete` write the intent store,
//! `state_diff` lists what differs from state, `state_apply` makes state
//! match (running the work that creates), and `work_continue` / `work_any`
//! / `work_ops` / `work_any_comprehensive` (and their dry runs) find and do
//! outstanding work at the current commit.
//!
//! Each test writes package files into a fresh git repository (alias
//! `test`, with the environments `staging` and `prod`), commits them, opens
//! a workspace on a memory store with a recording host (a fixed clock; every
//! shell command recorded, none run), and checks the outcomes, the documents
//! left in state and the commands the Starlark `mark(line)` helper ran
//! (`mark <line>`), which prove which functions ran.
//!
//! The scenarios of the CLI's `tests/cli/intent.rs`, ported to the library.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ocuroot_core::host::{Host, LineSink, ShellOutput, ShellRequest, Stream};
use ocuroot_core::model::{ChangeKind, NewRelease, ReleaseReport, Todo, WorkOutcome};
use ocuroot_core::store::{Entry, MemoryStore, Store};
use ocuroot_core::{WorkResult, Workspace};
use serde_json::Value;

use packages::*;

#[path = "../../../../tests/packages/mod.rs"]
mod packages;

mod approvals;
mod deploys;
mod environments;
mod redeploys;
mod refused;
mod status;

/// Prepended to every package file: the SDK version and `mark(line)`, which
/// runs the shell command `mark <line>` (recorded by [`Recorder`]).
const PRELUDE: &str = r#"ocuroot("0.3.0")

def mark(line):
    host.shell("mark {}".format(line))

"#;

/// The clock of every [`Recorder`]: outcomes do not depend on the time.
fn fixed_now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

/// Records every shell command and answers it with exit 0 without starting
/// a process; a fixed clock; only the environment variables it is given.
#[derive(Default)]
struct Recorder {
    commands: Arc<Mutex<Vec<String>>>,
    vars: BTreeMap<String, String>,
}

impl Recorder {
    /// A recorder sharing this one's log, whose environment has `name` set to
    /// `value` (`OCU_REPO_COMMIT_OVERRIDE`, say: an agent at another commit).
    fn with_var(&self, name: &str, value: &str) -> Recorder {
        let mut vars = self.vars.clone();
        vars.insert(name.to_string(), value.to_string());
        Recorder {
            commands: self.commands.clone(),
            vars,
        }
    }
}

impl Host for Recorder {
    fn shell(&self, req: &ShellRequest, lines: &LineSink<'_>) -> ocuroot_core::Result<ShellOutput> {
        self.commands.lock().unwrap().push(req.command.clone());
        lines.line(Stream::Stdout, &format!("ok: {}", req.command));
        Ok(ShellOutput::default())
    }

    fn env(&self) -> BTreeMap<String, String> {
        self.vars.clone()
    }

    fn now(&self) -> SystemTime {
        fixed_now()
    }
}

/// A committed repository with a workspace on a memory store.
struct Fx {
    dir: tempfile::TempDir,
    host: Arc<Recorder>,
    store: Arc<MemoryStore>,
    ws: Workspace,
    /// The commit the files are at.
    sha: String,
}

/// A committed repository with `repo.ocu.star` (alias `test`),
/// [`ENVIRONMENTS`] and `files` (each prefixed with [`PRELUDE`]), and the
/// environments registered.
fn setup(files: &[(&str, &str)]) -> Fx {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, content: &str| {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    };
    write(
        "repo.ocu.star",
        "ocuroot(\"0.3.0\")\n\n# Refs start with \"test/-/...\".\nrepo_alias(\"test\")\n",
    );
    write("environments.ocu.star", ENVIRONMENTS);
    for (path, body) in files {
        write(path, &format!("{PRELUDE}{body}"));
    }
    let sha = commit(dir.path());
    let host = Arc::new(Recorder::default());
    let store = Arc::new(MemoryStore::new());
    let ws = open(dir.path(), host.clone(), &store);
    let NewRelease::Environments { environments, .. } =
        ws.release_new("environments.ocu.star", false).unwrap()
    else {
        panic!("environments expected")
    };
    let names: Vec<&str> = environments.iter().map(|e| e.name.as_str()).collect();
    assert!(
        names.contains(&"staging") && names.contains(&"prod"),
        "{names:?}"
    );
    Fx {
        dir,
        host,
        store,
        ws,
        sha,
    }
}

/// A workspace on `store` at `root`, run by `host`.
fn open(root: &Path, host: Arc<Recorder>, store: &Arc<MemoryStore>) -> Workspace {
    Workspace::builder(root)
        .host(host)
        .store(store.clone() as Arc<dyn Store>)
        .parallel(2)
        .open()
        .unwrap()
}

/// `git init`, add everything and commit with a fixed signature: the sha.
fn commit(root: &Path) -> String {
    let git = git2::Repository::init(root).unwrap();
    let mut index = git.index().unwrap();
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    index.write().unwrap();
    let tree = git.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::new("Test", "test@example.com", &git2::Time::new(0, 0)).unwrap();
    git.commit(Some("HEAD"), &sig, &sig, "init", &tree, &[])
        .unwrap()
        .to_string()
}

/// [`setup`] with [`service`] packages `names`, each released once.
fn services(names: &[&str]) -> Fx {
    let files = service_files(names);
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, b)| (p.as_str(), b.as_str()))
        .collect();
    let fx = setup(&refs);
    for (path, _) in &files {
        fx.release(path);
    }
    let mut ran = fx.log();
    ran.sort();
    let mut expected: Vec<String> = names
        .iter()
        .flat_map(|n| [format!("{n} up prod a"), format!("{n} up staging a")])
        .collect();
    expected.sort();
    assert_eq!(ran, expected);
    fx
}

/// What a `work` call did (not a dry run).
#[track_caller]
fn done(result: WorkResult) -> WorkOutcome {
    match result {
        WorkResult::Done(out) => out,
        WorkResult::Planned(todo) => panic!("work done expected, got a plan: {todo:#?}"),
    }
}

/// What a `work` dry run would do.
#[track_caller]
fn planned(result: WorkResult) -> Vec<Todo> {
    match result {
        WorkResult::Planned(todo) => todo,
        WorkResult::Done(out) => panic!("a plan expected, got an outcome: {out:#?}"),
    }
}

/// The intent an outcome applied, in order.
fn applied(out: &WorkOutcome) -> Vec<(String, ChangeKind)> {
    out.applied
        .iter()
        .map(|c| (c.r#ref.to_string(), c.change))
        .collect()
}

/// `out` applied exactly `changes`, and did nothing else.
#[track_caller]
fn assert_only_applied(out: &WorkOutcome, changes: &[(&str, ChangeKind)]) {
    let want: Vec<(String, ChangeKind)> =
        changes.iter().map(|(r, c)| (r.to_string(), *c)).collect();
    assert_eq!(applied(out), want, "{out:#?}");
    let mut rest = out.clone();
    rest.applied.clear();
    assert_eq!(rest, WorkOutcome::default(), "only intent applied");
}

/// An outcome that did nothing at all (the CLI prints `Nothing to do`).
#[track_caller]
fn assert_nothing(out: &WorkOutcome) {
    assert_eq!(*out, WorkOutcome::default(), "nothing to do");
}

/// The refs of some work, sorted.
fn todo_refs(todo: &[Todo]) -> Vec<String> {
    let mut refs: Vec<String> = todo.iter().map(|t| t.r#ref.to_string()).collect();
    refs.sort();
    refs
}

impl Fx {
    /// `release_new(file)`, which must make a release that has not failed.
    #[track_caller]
    fn release(&self, file: &str) -> ReleaseReport {
        self.release_with(file, false)
    }

    /// `release_new(file, force)` at a commit that has a release already.
    #[track_caller]
    fn release_forced(&self, file: &str) -> ReleaseReport {
        self.release_with(file, true)
    }

    #[track_caller]
    fn release_with(&self, file: &str, force: bool) -> ReleaseReport {
        match self.ws.release_new(file, force).unwrap() {
            NewRelease::Release(report) => {
                assert!(!report.is_failed(), "{report:#?}");
                report
            }
            other => panic!("a release expected: {other:#?}"),
        }
    }

    /// `state_set(r, value)`, which must succeed.
    #[track_caller]
    fn set(&self, r: &str, value: Value) {
        self.ws.state_set(r, value).unwrap();
    }

    /// `state_apply(r)`, which must not fail.
    #[track_caller]
    fn apply(&self, r: &str) -> WorkOutcome {
        let out = self.ws.state_apply(r).unwrap();
        assert!(!out.failed(), "{out:#?}");
        out
    }

    /// `work_continue`, which must not fail.
    #[track_caller]
    fn work_continue(&self) -> WorkOutcome {
        let out = done(self.ws.work_continue(false).unwrap());
        assert!(!out.failed(), "{out:#?}");
        out
    }

    /// `work_any`, which must not fail.
    #[track_caller]
    fn work_any(&self) -> WorkOutcome {
        let out = done(self.ws.work_any(false).unwrap());
        assert!(!out.failed(), "{out:#?}");
        out
    }

    /// `work_ops`, which must not fail.
    #[track_caller]
    fn work_ops(&self) -> WorkOutcome {
        let out = done(self.ws.work_ops(false).unwrap());
        assert!(!out.failed(), "{out:#?}");
        out
    }

    /// `work_continue(dryrun)`.
    #[track_caller]
    fn plan_continue(&self) -> Vec<Todo> {
        planned(self.ws.work_continue(true).unwrap())
    }

    /// `work_any(dryrun)`.
    #[track_caller]
    fn plan_any(&self) -> Vec<Todo> {
        planned(self.ws.work_any(true).unwrap())
    }

    /// `work_ops(dryrun)`.
    #[track_caller]
    fn plan_ops(&self) -> Vec<Todo> {
        planned(self.ws.work_ops(true).unwrap())
    }

    /// `state_get(r)`.
    #[track_caller]
    fn get(&self, r: &str) -> Option<Value> {
        self.ws.state_get(r).unwrap()
    }

    /// `state_match(glob)`: the refs, sorted.
    #[track_caller]
    fn matches(&self, glob: &str) -> Vec<String> {
        self.ws.state_match(&[glob]).unwrap()
    }

    /// The status markers of a run (exactly one is expected).
    #[track_caller]
    fn statuses(&self, run: &str) -> Vec<String> {
        let prefix = format!("{run}/status/");
        self.matches(&format!("{run}/status/*"))
            .into_iter()
            .map(|r| r.strip_prefix(&prefix).unwrap_or(&r).to_string())
            .collect()
    }

    /// `state_diff`: the intent refs that differ from state.
    #[track_caller]
    fn diff(&self) -> Vec<String> {
        self.ws
            .state_diff()
            .unwrap()
            .into_iter()
            .map(|c| c.r#ref.to_string())
            .collect()
    }

    /// The lines `mark()` ran, in order.
    fn log(&self) -> Vec<String> {
        self.host
            .commands
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.strip_prefix("mark ").unwrap_or(c).to_string())
            .collect()
    }

    /// How many times `line` is in the log.
    fn count(&self, line: &str) -> usize {
        self.log().iter().filter(|l| *l == line).count()
    }

    /// The log lines after the first `from`, sorted (runs of a phase finish
    /// in any order).
    fn sorted_since(&self, from: usize) -> Vec<String> {
        let mut lines = self.log().split_off(from);
        lines.sort();
        lines
    }

    /// Every key under `prefix` of the store (`state/`, `intent/`, or all)
    /// with its entry. The memory store gives every write a new version, so
    /// two equal dumps mean nothing was written in between.
    fn dump(&self, prefix: &str) -> Vec<(String, Entry)> {
        self.store
            .list(prefix)
            .unwrap()
            .into_iter()
            .map(|k| {
                let e = self.store.get(&k).unwrap().unwrap();
                (k, e)
            })
            .collect()
    }

    /// Intent and state agree, and `work_any` finds nothing to do.
    #[track_caller]
    fn assert_settled(&self) {
        assert_eq!(self.diff(), Vec::<String>::new());
        assert_nothing(&self.work_any());
    }

    /// `work_continue` finds nothing to do.
    #[track_caller]
    fn assert_nothing_to_continue(&self) {
        assert_nothing(&self.work_continue());
    }

    /// `value` as pretty JSON, with the commit and the repository's path
    /// redacted, as the snapshot `name` (in `tests/it/snapshots`).
    fn snap(&self, name: &str, value: &impl serde::Serialize) {
        let text = serde_json::to_string_pretty(value)
            .unwrap()
            .replace(&self.sha, "[commit]")
            .replace(&self.dir.path().display().to_string(), "[root]");
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path("../snapshots");
        settings.set_omit_expression(true);
        settings.bind(|| insta::assert_snapshot!(name, text));
    }
}

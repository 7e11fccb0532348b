//! The operations the other test files do not reach from Rust: matching
//! without links, checkpoints, triggers, pushing intent outside an intent
//! checkout, and evaluating at the prompt. A real repository in a temporary
//! directory, the local host and the filesystem store.

use std::path::Path;

use ocuroot_core::model::{LogLine, NewRelease, TriggerStatus};
use ocuroot_core::sdk::{ReplIo, ReplValue};
use ocuroot_core::{ErrorKind, Result, Workspace};

const REPO: &str = "ocuroot(\"0.3.0\")\nrepo_alias(\"ops\")\n\
store.set(store.fs(\".ocuroot/store\"))\n\
def on_commit(commit):\n    print(\"triggered\", commit)\n\
trigger(on_commit)\n";

const PACKAGE: &str = "ocuroot(\"0.3.0\")\nanswer = 42\n\
def build():\n    return done(output={\"tag\": \"v1\"})\n\
task(build, name=\"build\")\n";

fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("repo.ocu.star"), REPO).unwrap();
    std::fs::write(dir.path().join("p.ocu.star"), PACKAGE).unwrap();
    std::fs::write(dir.path().join(".gitignore"), ".ocuroot/\n").unwrap();
    let git = git2::Repository::init(dir.path()).unwrap();
    let mut index = git.index().unwrap();
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    index.write().unwrap();
    let tree = git.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::now("t", "t@example.invalid").unwrap();
    git.commit(Some("HEAD"), &sig, &sig, "x", &tree, &[])
        .unwrap();
    dir
}

fn released(dir: &Path) -> Workspace {
    let ws = Workspace::open(dir).unwrap();
    let NewRelease::Release(report) = ws.release_new("p.ocu.star", false).unwrap() else {
        panic!("a release expected")
    };
    assert!(!report.is_failed());
    ws
}

#[test]
fn state_match_no_links_leaves_links_out() {
    let dir = repo();
    let ws = released(dir.path());
    let glob = ["ops/-/p.ocu.star/@*/task/build"];
    assert_eq!(
        ws.state_match(&glob).unwrap(),
        [
            "ops/-/p.ocu.star/@/task/build",
            "ops/-/p.ocu.star/@r1/task/build"
        ]
    );
    assert_eq!(
        ws.state_match_no_links(&glob).unwrap(),
        ["ops/-/p.ocu.star/@r1/task/build"]
    );
}

#[test]
fn state_checkpoint_writes_the_store_files() {
    let dir = repo();
    let ws = released(dir.path());
    ws.state_checkpoint().unwrap();
    let files = dir.path().join(".ocuroot/store/state");
    let mut found = Vec::new();
    for entry in walk(&files) {
        if entry.ends_with("task/build/1/status/complete") || entry.contains("@r1") {
            found.push(entry);
        }
    }
    assert!(
        !found.is_empty(),
        "no release files under {}",
        files.display()
    );
    // Still readable afterwards, through a new workspace.
    let again = Workspace::open(dir.path()).unwrap();
    assert_eq!(
        again
            .state_get("ops/-/p.ocu.star/@/task/build#output/tag")
            .unwrap(),
        Some(serde_json::json!("v1"))
    );
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.to_string_lossy().into_owned());
            }
        }
    }
    out
}

#[test]
fn work_trigger_and_work_trigger_intent_call_the_repository_trigger() {
    let dir = repo();
    let ws = Workspace::open(dir.path()).unwrap();
    // Nothing outstanding at any commit: no trigger to call.
    assert!(ws.work_trigger(false).unwrap().is_empty());
    ws.release_new("p.ocu.star", false).unwrap();
    // Every repository state knows, at its latest commit.
    let planned = ws.work_trigger_intent(true).unwrap();
    assert_eq!(planned.len(), 1);
    assert_eq!(planned[0].repo, "ops");
    assert_eq!(planned[0].commit, ws.commit());
    assert_eq!(planned[0].status, TriggerStatus::Planned);
    let called = ws.work_trigger_intent(false).unwrap();
    assert_eq!(called[0].status, TriggerStatus::Called, "{called:?}");
    assert!(
        called[0].log.iter().any(|l| l.contains("triggered")),
        "{called:?}"
    );
}

#[test]
fn push_intent_outside_an_intent_checkout_is_refused() {
    let dir = repo();
    let ws = Workspace::open(dir.path()).unwrap();
    let err = ws.push_intent(false).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.message().contains("intent branch"), "{err}");
}

struct Script {
    inputs: Vec<String>,
    results: Vec<String>,
}

impl ReplIo for Script {
    fn read(&mut self) -> Option<String> {
        (!self.inputs.is_empty()).then(|| self.inputs.remove(0))
    }
    fn print(&mut self, line: &LogLine) {
        self.results.push(format!("printed {}", line.message));
    }
    fn result(&mut self, result: Result<Option<ReplValue>>) -> bool {
        self.results.push(match result {
            Ok(Some(v)) => format!("{v:?}"),
            Ok(None) => "None".into(),
            Err(e) => format!("error {}", e.summary()),
        });
        true
    }
}

#[test]
fn repl_and_eval_expression_see_the_files_globals() {
    let dir = repo();
    let ws = Workspace::open(dir.path()).unwrap();
    assert_eq!(ws.eval_expression("1 + 2").unwrap(), serde_json::json!(3));
    let mut io = Script {
        inputs: vec!["answer".into(), "print('hi')".into(), "nope".into()],
        results: Vec::new(),
    };
    ws.repl(Some(Path::new("p.ocu.star")), &mut io).unwrap();
    assert!(io.results[0].contains("42"), "{:?}", io.results);
    assert!(
        io.results.iter().any(|r| r == "printed hi"),
        "{:?}",
        io.results
    );
    assert!(
        io.results.last().unwrap().starts_with("error "),
        "{:?}",
        io.results
    );
}

//! Cascades through the `Workspace` API: the frontend's redeploy runs in a
//! worktree of its own commit — its package file, `host.shell`, `read` and
//! `pwd` all there — and the worktree is gone afterwards; `plan` orders the
//! work by the dependency graph.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ocuroot_core::Workspace;
use ocuroot_core::host::{Host, LineSink, LocalHost, ShellOutput, ShellRequest};
use ocuroot_core::model::NewRelease;
use ocuroot_core::store::{MemoryStore, Store};

/// Runs commands for real, recording the directory of each.
#[derive(Default)]
struct Dirs {
    seen: Mutex<Vec<(String, PathBuf)>>,
    local: LocalHost,
}

impl Host for Dirs {
    fn shell(&self, req: &ShellRequest, lines: &LineSink<'_>) -> ocuroot_core::Result<ShellOutput> {
        self.seen
            .lock()
            .unwrap()
            .push((req.command.clone(), req.dir.clone()));
        self.local.shell(req, lines)
    }
}

const REPO: &str = "ocuroot(\"0.3.0\")\nrepo_alias(\"deps\")\n";

const ENVIRONMENTS: &str = r#"ocuroot("0.3.0")
register_environment(environment("staging"))
"#;

const BACKEND: &str = r#"ocuroot("0.3.0")

def up(environment):
    return done(outputs={"url": "https://api/" + read("api.txt").strip()})

def down(environment):
    return done()

deploy(up=up, down=down, environment=environments()[0])
"#;

const FRONTEND: &str = r#"ocuroot("0.3.0")

def up(environment, url):
    bundle = read("bundle.txt").strip()
    where = host.shell("pwd", mute=True).stdout.strip()
    return done(outputs={"bundle": bundle, "url": url, "pwd": where, "helper_pwd": pwd()})

def down(environment):
    return done()

deploy(up=up, down=down, environment=environments()[0],
       inputs={"url": input(ref="deps/-/backend.ocu.star/@/deploy/staging#output/url")})
"#;

fn write(root: &Path, rel: &str, content: &str) {
    std::fs::write(root.join(rel), content).unwrap();
}

fn commit(repo: &git2::Repository, message: &str) -> String {
    let mut index = repo.index().unwrap();
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::now("t", "t@example.com").unwrap();
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
        .unwrap()
        .to_string()
}

fn open(dir: &Path, store: &Arc<MemoryStore>, host: &Arc<Dirs>) -> Workspace {
    Workspace::builder(dir)
        .store(store.clone() as Arc<dyn Store>)
        .host(host.clone())
        .parallel(1)
        .open()
        .unwrap()
}

/// The files of the example, in their first versions.
fn write_files(root: &Path) {
    write(root, "repo.ocu.star", REPO);
    write(root, "environments.ocu.star", ENVIRONMENTS);
    write(root, "backend.ocu.star", BACKEND);
    write(root, "frontend.ocu.star", FRONTEND);
    write(root, "api.txt", "v1\n");
    write(root, "bundle.txt", "bundle-1\n");
}

/// A workspace over a fresh memory store with everything released.
fn release_all(root: &Path) -> (Arc<MemoryStore>, Arc<Dirs>, Workspace) {
    let store = Arc::new(MemoryStore::new());
    let host = Arc::new(Dirs::default());
    let ws = open(root, &store, &host);
    for f in [
        "environments.ocu.star",
        "backend.ocu.star",
        "frontend.ocu.star",
    ] {
        released(&ws, f);
    }
    (store, host, ws)
}

fn released(ws: &Workspace, file: &str) {
    match ws.release_new(file, false).unwrap() {
        NewRelease::Release(r) => assert!(!r.is_failed(), "{r:?}"),
        NewRelease::Environments { outcome, .. } => assert!(!outcome.failed()),
        NewRelease::Empty => panic!("{file} declares nothing"),
    }
}

#[test]
fn a_redeploy_runs_entirely_inside_a_worktree_of_its_commit() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let git = git2::Repository::init(&root).unwrap();
    write_files(&root);
    let first = commit(&git, "first");
    let (store, host, ws) = release_all(&root);
    let deployed = "deps/-/frontend.ocu.star/@/deploy/staging#output";
    let before = ws.state_get(deployed).unwrap().unwrap();
    assert_eq!(before["pwd"], root.display().to_string());

    write(&root, "api.txt", "v2\n");
    write(&root, "bundle.txt", "bundle-2\n");
    commit(&git, "second");
    let ws = open(&root, &store, &host);
    released(&ws, "backend.ocu.star");

    // The plan: the frontend's redeploy, at the first commit.
    let plan = ws.plan().unwrap();
    let refs: Vec<(String, Option<&str>)> = plan
        .work
        .iter()
        .map(|t| (t.r#ref.to_string(), t.commit.as_deref()))
        .collect();
    assert_eq!(
        refs,
        [(
            "deps/-/frontend.ocu.star/@r1/deploy/staging".to_string(),
            Some(first.as_str())
        )]
    );

    host.seen.lock().unwrap().clear();
    let outcome = ws.cascade().unwrap();
    assert!(!outcome.failed(), "{outcome:#?}");
    assert_eq!(outcome.rounds, 1);
    let after = ws.state_get(deployed).unwrap().unwrap();
    assert_eq!(after["bundle"], "bundle-1");
    assert_eq!(after["url"], "https://api/v2");
    let worktrees = root.join(".git/ocuroot/worktrees");
    let pwd = PathBuf::from(after["pwd"].as_str().unwrap());
    assert!(pwd.starts_with(&worktrees), "{pwd:?}");
    assert_eq!(after["helper_pwd"], after["pwd"]);
    let seen = host.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].1, pwd);
    assert!(!pwd.exists(), "the worktree is removed");
    assert_eq!(std::fs::read_dir(&worktrees).unwrap().count(), 0);

    // Nothing is left, and a second cascade finds nothing.
    assert!(ws.plan().unwrap().work.is_empty());
    let again = ws.cascade().unwrap();
    assert_eq!(again.rounds, 0);
    assert!(again.releases.is_empty());
}

#[test]
fn work_at_another_commit_without_git_is_given_up_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    write_files(&root);
    // A second dependant, at the current commit.
    write(&root, "frontend2.ocu.star", FRONTEND);
    let (_store, _host, ws) = release_all(&root);
    released(&ws, "frontend2.ocu.star");
    // Pretend the frontend was released at another commit.
    let rel = ocuroot_core::refs::Ref::parse("deps/-/frontend.ocu.star/@r1").unwrap();
    let mut doc = ws.state().get(&rel).unwrap().unwrap();
    doc["commit"] = serde_json::json!("1".repeat(40));
    ws.state().update(|tx| tx.set(&rel, doc.clone())).unwrap();
    write(&root, "api.txt", "v2\n");
    released_forced(&ws, "backend.ocu.star");
    // That work is given up (the outcome says why); the cascade ends.
    let outcome = match ws.work_cascade(false).unwrap() {
        ocuroot_core::WorkResult::Done(o) => o,
        other => panic!("{other:?}"),
    };
    assert!(outcome.failed());
    assert_eq!(outcome.stopped.len(), 1, "{outcome:#?}");
    let why = &outcome.stopped[0];
    assert!(
        why.starts_with(&format!("work of deps at commit {}", "1".repeat(40))),
        "{why}"
    );
    assert!(why.contains("not in a git repository"), "{why}");
    // The rest went on: the other dependant was redeployed in place.
    let other = ws
        .state_get("deps/-/frontend2.ocu.star/@/deploy/staging#output/url")
        .unwrap();
    assert_eq!(other, Some(serde_json::json!("https://api/v2")));
}

fn released_forced(ws: &Workspace, file: &str) {
    match ws.release_new(file, true).unwrap() {
        NewRelease::Release(r) => assert!(!r.is_failed(), "{r:?}"),
        _ => panic!("{file} is a release"),
    }
}

//! `store.git(...)`: state and intent in branches of bare repositories on
//! disk (and one served by `git daemon`), shared by agents with their own
//! clones under their own `OCUROOT_HOME`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::packages::{PKG, SHIP};
use crate::servers::GitDaemon;
use crate::support::{Output, PRELUDE, Repo, TIMEOUT, log, ocu_with, out_lines, std_ocuroot_in};

/// Twelve tasks in two phases, each appending its name to `out/runs.txt`,
/// all blocked on `key.ocu.star` until it is released.
const FAN: &str = r#"
def work(name, key):
    host.shell("mkdir -p out && echo " + name + " >> out/runs.txt")
    return done(outputs={"name": name})

phase("one", tasks=[
    task(work, name="a{}".format(i), inputs={"name": "a{}".format(i), "key": ref("./-/key.ocu.star/@/task/k#output/v")})
    for i in range(6)
])
phase("two", tasks=[
    task(work, name="b{}".format(i), inputs={"name": "b{}".format(i), "key": ref("./-/key.ocu.star/@/task/k#output/v")})
    for i in range(6)
])
"#;

pub(crate) const KEY: &str = r#"
def k():
    return done(outputs={"v": 1})

task(k, name="k")
"#;

/// A source repository whose stores are git branches, with a temporary
/// directory for remotes and `OCUROOT_HOME`s.
pub(crate) struct Setup {
    pub(crate) repo: Repo,
    pub(crate) dir: TempDir,
}

impl Setup {
    /// `store_call` is the `store.set(...)` line; `{dir}` in it is replaced
    /// by the directory of the remotes.
    pub(crate) fn new(store_call: &str, files: &[(&str, &str)]) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repo::new();
        let call = store_call.replace("{dir}", &dir.path().to_string_lossy());
        repo.write(
            "repo.ocu.star",
            &format!("ocuroot(\"0.3.0\")\nrepo_alias(\"test\")\n{call}\n"),
        );
        for (path, body) in files {
            repo.write(path, &format!("{PRELUDE}{body}"));
        }
        repo.commit("init");
        Setup { repo, dir }
    }

    /// [`SHIP`] as `release.ocu.star`, state and intent on the branches
    /// `state` and `intent` of their own bare remotes, released once (by
    /// agent `ci`).
    pub(crate) fn released_on_two_branches() -> Setup {
        let s = Setup::new(
            r#"store.set(store.git("{dir}/state.git", branch="state"), intent=store.git("{dir}/intent.git", branch="intent"))"#,
            &[("release.ocu.star", SHIP)],
        );
        bare(&s.remote("state.git"));
        bare(&s.remote("intent.git"));
        s.ocu("ci", &[], &["release", "new", "release.ocu.star", "-q"])
            .success();
        s
    }

    pub(crate) fn remote(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub(crate) fn home(&self, agent: &str) -> PathBuf {
        self.dir.path().join("homes").join(agent)
    }

    /// `ocuroot <args>` as agent `agent` (its own `OCUROOT_HOME`).
    pub(crate) fn ocu(&self, agent: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
        let home = self.home(agent).to_string_lossy().into_owned();
        let mut all = vec![("OCUROOT_HOME", home.as_str())];
        all.extend_from_slice(env);
        ocu_with(&self.repo, &all, TIMEOUT, args)
    }

    /// A checkout (by `git clone`) of `branch` of the remote `<branch>.git`.
    pub(crate) fn checkout(&self, branch: &str) -> PathBuf {
        let dir = self.dir.path().join(format!("checkout-{branch}"));
        let remote = self.remote(&format!("{branch}.git"));
        git(
            None,
            &[
                "clone",
                "-q",
                "-b",
                branch,
                &remote.to_string_lossy(),
                &dir.to_string_lossy(),
            ],
        );
        dir
    }

    /// `ocuroot <args>` in `dir` (a store checkout) as agent `agent`.
    pub(crate) fn ocu_in(&self, dir: &Path, agent: &str, args: &[&str]) -> Output {
        let out = crate::support::ocuroot_in(dir)
            .env("OCUROOT_HOME", self.home(agent))
            .args(args)
            .timeout(TIMEOUT)
            .output()
            .expect("run ocuroot");
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub(crate) fn get(&self, r: &str) -> Option<Value> {
        let out = self.ocu("reader", &[], &["state", "get", r]);
        (out.code == 0).then(|| serde_json::from_str(&out.stdout).expect("state get prints JSON"))
    }
}

/// A bare repository made by the `git` binary, with `branch` created by
/// the first push.
pub(crate) fn bare(path: &Path) {
    git(None, &["init", "-q", "--bare", &path.to_string_lossy()]);
}

/// `git <args>` (in `dir`), its stdout; panics on failure.
pub(crate) fn git(dir: Option<&Path>, args: &[&str]) -> String {
    let mut cmd = Command::new("git");
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    let out = cmd
        .args(args)
        .env("GIT_AUTHOR_NAME", "A Person")
        .env("GIT_AUTHOR_EMAIL", "person@example.com")
        .env("GIT_COMMITTER_NAME", "A Person")
        .env("GIT_COMMITTER_EMAIL", "person@example.com")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub(crate) fn in_remote(remote: &Path, args: &[&str]) -> String {
    let mut all = vec!["--git-dir", remote.to_str().unwrap()];
    all.extend_from_slice(args);
    git(None, &all)
}

pub(crate) fn files(remote: &Path, branch: &str) -> Vec<String> {
    in_remote(remote, &["ls-tree", "-r", "--name-only", branch])
        .lines()
        .map(str::to_string)
        .collect()
}

/// The history of `branch` is linear, every object is sound, and every
/// commit is by `author`.
pub(crate) fn assert_sound(remote: &Path, branch: &str, author: &str) {
    in_remote(remote, &["fsck", "--strict", "--no-dangling"]);
    assert_eq!(
        in_remote(remote, &["rev-list", "--merges", branch]),
        "",
        "no merge commits on {branch}"
    );
    for line in in_remote(remote, &["log", "--format=%an <%ae>", branch]).lines() {
        assert_eq!(line, author, "every commit on {branch} is by {author}");
    }
}

#[test]
fn separate_state_and_intent_remotes_on_their_branches() {
    let s = Setup::new(
        r#"store.set(
    store.git("{dir}/state.git", branch="state", support_files={"support.txt": "state support"}),
    intent=store.git("{dir}/intent.git", branch="intent", support_files={"support.txt": "intent support"}),
)"#,
        &[("release.ocu.star", SHIP)],
    );
    bare(&s.remote("state.git"));
    bare(&s.remote("intent.git"));
    let out = s
        .ocu("a", &[], &["release", "new", "release.ocu.star"])
        .success();
    assert!(out.stdout.contains("waiting for"), "{}", out.stdout);
    assert_eq!(log(&s.repo), ["build"]);

    let state = files(&s.remote("state.git"), "state");
    for f in [
        ".ocuroot-store",
        "support.txt",
        "refs/test/-/release.ocu.star/@r1/@object.json",
        "refs/test/-/release.ocu.star/@r1/task/build/1/status/complete/@object.json",
    ] {
        assert!(state.contains(&f.to_string()), "{f} in {state:#?}");
    }
    assert!(
        state
            .iter()
            .any(|f| f.starts_with("refs/test/-/repo.ocu.star/@")),
        "{state:#?}"
    );
    let intent = files(&s.remote("intent.git"), "intent");
    assert!(intent.contains(&"support.txt".to_string()), "{intent:#?}");
    assert_eq!(
        in_remote(&s.remote("state.git"), &["show", "state:support.txt"]),
        "state support"
    );
    assert_eq!(
        in_remote(&s.remote("intent.git"), &["show", "intent:support.txt"]),
        "intent support"
    );
    assert_eq!(
        in_remote(&s.remote("intent.git"), &["show", "intent:.ocuroot-store"]),
        r#"{"version":3,"Tags":{"intent":{}}}"#
    );
    let subjects = in_remote(&s.remote("state.git"), &["log", "--format=%s", "state"]);
    assert!(
        subjects.contains("release r1 created (test/-/release.ocu.star)"),
        "{subjects}"
    );
    assert!(
        subjects.contains("run test/-/release.ocu.star/@r1/task/build/1 complete"),
        "{subjects}"
    );
    assert_sound(
        &s.remote("state.git"),
        "state",
        "Ocuroot <contact@ocuroot.com>",
    );
    assert_sound(
        &s.remote("intent.git"),
        "intent",
        "Ocuroot <contact@ocuroot.com>",
    );

    // Another agent, with its own clone, sees the same state.
    assert!(
        s.get(&format!("{PKG}/@r1/task/build/1/status/complete"))
            .is_some()
    );

    // A configured author.
    s.ocu(
        "b",
        &[
            ("OCUROOT_GIT_USER_NAME", "CI Bot"),
            ("OCUROOT_GIT_USER_EMAIL", "ci@example.com"),
        ],
        &["state", "set", "release.ocu.star/@/custom/approval", "ok"],
    )
    .success();
    let last = in_remote(
        &s.remote("intent.git"),
        &["log", "-1", "--format=%an <%ae>|%s", "intent"],
    );
    assert_eq!(
        last.trim(),
        format!("CI Bot <ci@example.com>|set {PKG}/@/custom/approval")
    );
}

#[test]
fn one_store_holds_state_and_intent_under_prefixes() {
    let s = Setup::new(
        r#"store.set(store.git("{dir}/store.git", branch="ocuroot", support_files={"ci/workflow.yml": "on: push"}))"#,
        &[("release.ocu.star", SHIP)],
    );
    bare(&s.remote("store.git"));
    s.ocu("a", &[], &["release", "new", "release.ocu.star", "-q"])
        .success();
    s.ocu(
        "a",
        &[],
        &["state", "set", "release.ocu.star/@/custom/approval", "ok"],
    )
    .success();
    let files = files(&s.remote("store.git"), "ocuroot");
    for f in [
        "ci/workflow.yml",
        "state/.ocuroot-store",
        "intent/.ocuroot-store",
        "state/refs/test/-/release.ocu.star/@r1/@object.json",
        "intent/refs/test/-/release.ocu.star/@/custom/approval/@object.json",
    ] {
        assert!(files.contains(&f.to_string()), "{f} in {files:#?}");
    }
    assert!(!files.iter().any(|f| f.starts_with("refs/")), "{files:#?}");
    let out = s.ocu("b", &[], &["state", "diff"]).success();
    assert_eq!(out.stdout.trim(), format!("{PKG}/@/custom/approval"));
    assert_sound(
        &s.remote("store.git"),
        "ocuroot",
        "Ocuroot <contact@ocuroot.com>",
    );
}

#[test]
fn a_persons_edit_pushed_to_the_intent_branch_is_diffed_and_applied() {
    let s = Setup::released_on_two_branches();
    assert_eq!(log(&s.repo), ["build"]);

    // A person approves the release with git alone.
    let person = s.checkout("intent");
    let file = person.join("refs/test/-/release.ocu.star/@/custom/approval/@object.json");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, r#"{"kind":"ref","body":"approved by a person"}"#).unwrap();
    git(Some(&person), &["add", "-A"]);
    git(Some(&person), &["commit", "-q", "-m", "approve"]);
    git(Some(&person), &["push", "-q", "origin", "intent"]);

    let out = s.ocu("ci", &[], &["state", "diff"]).success();
    assert_eq!(out.stdout.trim(), format!("{PKG}/@/custom/approval"));
    s.ocu(
        "ci",
        &[],
        &["state", "apply", &format!("{PKG}/@/custom/approval")],
    )
    .success();
    s.ocu("ci", &[], &["work", "continue", "-q"]).success();
    assert_eq!(log(&s.repo), ["build", "ship approved by a person"]);
    assert_eq!(
        s.get(&format!("{PKG}/@r1/task/ship#output/approval")),
        Some(json!("approved by a person"))
    );
    assert_eq!(s.ocu("ci", &[], &["state", "diff"]).success().stdout, "");
    // The person's commit is kept: the history is linear on top of it.
    let intent = in_remote(
        &s.remote("intent.git"),
        &["log", "--format=%an|%s", "intent"],
    );
    assert!(intent.contains("A Person|approve"), "{intent}");
    in_remote(
        &s.remote("intent.git"),
        &["fsck", "--strict", "--no-dangling"],
    );
    assert_eq!(
        in_remote(&s.remote("intent.git"), &["rev-list", "--merges", "intent"]),
        ""
    );
}

/// Refs and run statuses of the fan release, with commit ids blanked.
fn fan_state(s: &Setup) -> Vec<String> {
    let out = s.ocu("reader", &[], &["state", "match", "**"]).success();
    let mut refs: Vec<String> = out
        .stdout
        .lines()
        .map(|l| {
            l.split('/')
                .map(|seg| {
                    let hex = seg.trim_start_matches('@');
                    if hex.len() == 40 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
                        "<commit>".to_string()
                    } else {
                        seg.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("/")
        })
        .collect();
    refs.sort();
    refs
}

/// The fan release blocked, then unblocked: its twelve runs are pending.
fn fan_setup() -> Setup {
    let s = Setup::new(
        r#"store.set(store.git("{dir}/store.git", branch="state"))"#,
        &[("fan.ocu.star", FAN), ("key.ocu.star", KEY)],
    );
    bare(&s.remote("store.git"));
    s.ocu("setup", &[], &["release", "new", "fan.ocu.star", "-q"])
        .success();
    s.ocu("setup", &[], &["release", "new", "key.ocu.star", "-q"])
        .success();
    assert!(out_lines(&s.repo, "runs.txt").is_empty());
    s
}

fn fan_names() -> Vec<String> {
    let mut names: Vec<String> = (0..6)
        .flat_map(|i| [format!("a{i}"), format!("b{i}")])
        .collect();
    names.sort();
    names
}

#[test]
fn four_agents_with_their_own_clones_run_every_run_exactly_once() {
    // The single-agent result to compare with.
    let single = fan_setup();
    single
        .ocu(
            "solo",
            &[],
            &["release", "continue", "fan.ocu.star/@r1", "-q"],
        )
        .success();
    let expected = fan_state(&single);

    for round in 0..10 {
        let s = fan_setup();
        let commits_before: usize =
            in_remote(&s.remote("store.git"), &["rev-list", "--count", "state"])
                .trim()
                .parse()
                .unwrap();
        let children: Vec<_> = (0..4)
            .map(|i| {
                let args: &[&str] = if i % 2 == 0 {
                    &["release", "continue", "fan.ocu.star/@r1", "-q"]
                } else {
                    &["work", "continue", "-q"]
                };
                std_ocuroot_in(s.repo.path())
                    .args(args)
                    .env("OCUROOT_HOME", s.home(&format!("agent{i}")))
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn ocuroot")
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().expect("wait for ocuroot");
            assert!(
                out.status.success(),
                "round {round}: an agent failed\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let mut ran = out_lines(&s.repo, "runs.txt");
        ran.sort();
        assert_eq!(
            ran,
            fan_names(),
            "round {round}: every run executed exactly once"
        );
        let remote = s.remote("store.git");
        assert_sound(&remote, "state", "Ocuroot <contact@ocuroot.com>");
        // Every claim is in one commit of the history (claims made
        // together share one), and every outcome is one commit: each run
        // was claimed, and started, once.
        let subjects = in_remote(&remote, &["log", "--format=%s", "state"]);
        for name in fan_names() {
            let run = format!("run test/-/fan.ocu.star/@r1/task/{name}/1");
            for status in ["running", "complete"] {
                let n = subjects
                    .lines()
                    .filter(|l| l.contains(&format!("{run} {status}")))
                    .count();
                assert_eq!(
                    n, 1,
                    "round {round}: {run} {status} committed once\n{subjects}"
                );
            }
        }
        let commits_after: usize = in_remote(&remote, &["rev-list", "--count", "state"])
            .trim()
            .parse()
            .unwrap();
        assert!(
            commits_after > commits_before + fan_names().len(),
            "round {round}: an outcome commit per run and at least one claim commit"
        );
        assert_eq!(
            fan_state(&s),
            expected,
            "round {round}: the same state as one agent"
        );
    }
}

/// A `pre-receive` hook that refuses as many pushes as `refuse` says.
fn refusing_hook(remote: &Path, refuse: u32) {
    let hook = remote.join("hooks/pre-receive");
    std::fs::write(
        &hook,
        "#!/bin/sh\nn=$(cat \"$GIT_DIR/refuse\" 2>/dev/null || echo 0)\n\
         if [ \"$n\" -gt 0 ]; then echo $((n - 1)) > \"$GIT_DIR/refuse\"; \
         echo \"refused by the test ($n left)\" >&2; exit 1; fi\nexit 0\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(remote.join("refuse"), refuse.to_string()).unwrap();
}

#[test]
fn pushes_the_remote_refuses_for_a_while_are_retried() {
    let dir = tempfile::tempdir().unwrap();
    let remote = dir.path().join("store.git");
    bare(&remote);
    refusing_hook(&remote, 0);
    let daemon = GitDaemon::start(dir.path());
    let s = Setup::new(
        &format!(
            r#"store.set(store.git("{}", branch="state"))"#,
            daemon.url("store.git")
        ),
        &[("fan.ocu.star", FAN), ("key.ocu.star", KEY)],
    );
    s.ocu("a", &[], &["release", "new", "fan.ocu.star", "-q"])
        .success();
    refusing_hook(&remote, 6);
    let out = s
        .ocu("a", &[], &["release", "new", "key.ocu.star", "-q"])
        .success();
    assert_eq!(
        std::fs::read_to_string(remote.join("refuse"))
            .unwrap()
            .trim(),
        "0",
        "{}",
        out.stderr
    );
    refusing_hook(&remote, 6);
    s.ocu("a", &[], &["release", "continue", "fan.ocu.star/@r1", "-q"])
        .success();
    assert_eq!(
        std::fs::read_to_string(remote.join("refuse"))
            .unwrap()
            .trim(),
        "0"
    );
    let mut ran = out_lines(&s.repo, "runs.txt");
    ran.sort();
    assert_eq!(ran, fan_names(), "nothing executed twice");
    assert_sound(&remote, "state", "Ocuroot <contact@ocuroot.com>");
    let clone = s.home("a").join("stores/127.0.0.1/store.git");
    assert_eq!(
        in_remote(&clone, &["rev-parse", "refs/remotes/origin/state"]),
        in_remote(&remote, &["rev-parse", "refs/heads/state"]),
        "the clone ends equal to the remote"
    );

    // A remote that keeps refusing: the command fails, and says why.
    let before = in_remote(&remote, &["rev-parse", "refs/heads/state"]);
    refusing_hook(&remote, 1000);
    let out = s
        .ocu(
            "a",
            &[("OCUROOT_GIT_PUSH_ATTEMPTS", "3")],
            &["state", "set", "fan.ocu.star/@/custom/x", "1"],
        )
        .failure();
    assert!(out.stderr.contains("rejected 3 times"), "{}", out.stderr);
    assert!(out.stderr.contains("refused by the test"), "{}", out.stderr);
    assert_eq!(
        in_remote(&remote, &["rev-parse", "refs/heads/state"]),
        before
    );
    assert_eq!(
        in_remote(&clone, &["rev-parse", "refs/remotes/origin/state"]),
        before,
        "the clone is not ahead of the remote"
    );
}

#[test]
fn bad_git_store_settings_are_named() {
    let s = Setup::new(
        r#"store.set(store.git("{dir}/none.git", branch="state"))"#,
        &[("release.ocu.star", SHIP)],
    );
    let out = s.ocu("a", &[], &["state", "match", "**"]).failure();
    assert!(out.stderr.contains("none.git"), "{}", out.stderr);

    let s = Setup::new(
        r#"store.set(store.git("{dir}/store.git", branch="state", create_branch=False))"#,
        &[("release.ocu.star", SHIP)],
    );
    bare(&s.remote("store.git"));
    let out = s.ocu("a", &[], &["state", "match", "**"]).failure();
    assert!(
        out.stderr.contains("create_branch is False"),
        "{}",
        out.stderr
    );

    let s = Setup::new(
        r#"store.set(store.git("{dir}/s.git", branch="x"), intent=store.git("{dir}/s.git", branch="x"))"#,
        &[("release.ocu.star", SHIP)],
    );
    let out = s.ocu("a", &[], &["state", "match", "**"]).failure();
    assert!(
        out.stderr.contains("one store.git(...) for both"),
        "{}",
        out.stderr
    );

    let s = Setup::new(
        r#"store.set(store.git("{dir}/s.git", branch="x", support_files={"../escape": "x"}))"#,
        &[("release.ocu.star", SHIP)],
    );
    let out = s.ocu("a", &[], &["state", "match", "**"]).failure();
    assert!(out.stderr.contains("../escape"), "{}", out.stderr);
}

#[test]
fn commands_in_a_checkout_of_a_store_branch_open_the_recorded_stores() {
    let s = Setup::released_on_two_branches();
    let in_dir = |dir: &Path, args: &[&str]| s.ocu_in(dir, "person", args);

    let state_dir = s.checkout("state");
    let out = in_dir(
        &state_dir,
        &[
            "state",
            "get",
            &format!("{PKG}/@r1/task/build/1/status/complete"),
        ],
    )
    .success();
    assert!(out.stdout.contains('{'), "{}", out.stdout);
    let out = in_dir(
        &state_dir.join("refs"),
        &["state", "match", &format!("{PKG}/@r1/task/*/1/status/*")],
    )
    .success();
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        [
            format!("{PKG}/@r1/task/build/1/status/complete"),
            format!("{PKG}/@r1/task/ship/1/status/pending"),
        ]
    );
    let out = in_dir(&state_dir, &["state", "get", "release.ocu.star/@r1"]).failure();
    assert!(out.stderr.contains("relative"), "{}", out.stderr);

    // In an intent checkout: set intent, see it in the diff, apply it.
    let intent_dir = s.checkout("intent");
    in_dir(
        &intent_dir,
        &[
            "state",
            "set",
            &format!("{PKG}/@/custom/approval"),
            "from a checkout",
        ],
    )
    .success();
    let out = in_dir(&intent_dir, &["state", "diff"]).success();
    assert_eq!(out.stdout.trim(), format!("{PKG}/@/custom/approval"));
    in_dir(
        &intent_dir,
        &["state", "apply", &format!("{PKG}/@/custom/approval")],
    )
    .success();
    assert_eq!(
        s.get(&format!("{PKG}/@/custom/approval")),
        Some(json!("from a checkout"))
    );
    // The checkout itself was not written: the remote was.
    assert_eq!(git(Some(&intent_dir), &["status", "--porcelain"]), "");
}

#[test]
fn work_trigger_intent_in_an_intent_checkout_triggers_each_repository_at_its_latest_commit() {
    let s = Setup::new(
        r#"store.set(store.git("{dir}/state.git", branch="state"), intent=store.git("{dir}/intent.git", branch="intent"))

def on_commit(commit):
    host.shell("mkdir -p out && echo " + commit + " >> out/triggered.txt")
    print("scheduled " + commit)

trigger(on_commit)"#,
        &[("release.ocu.star", SHIP)],
    );
    bare(&s.remote("state.git"));
    bare(&s.remote("intent.git"));
    s.ocu("ci", &[], &["release", "new", "release.ocu.star", "-q"])
        .success();
    // A second commit and release: the latest.
    s.repo.write("notes.txt", "second");
    let second = s.repo.commit("second").to_string();
    s.ocu("ci", &[], &["release", "new", "release.ocu.star", "-q"])
        .success();

    let dir = s.checkout("intent");
    let run = |args: &[&str]| s.ocu_in(&dir, "person", args).success().stdout;
    let planned: Value =
        serde_json::from_str(&run(&["work", "trigger", "--intent", "--dryrun", "--json"])).unwrap();
    assert_eq!(
        planned,
        json!([{"repo": "test", "commit": second, "status": "planned"}])
    );
    let out = run(&["work", "trigger", "-i"]);
    assert_eq!(
        out,
        format!("test @ {second}: triggered\n  scheduled {second}\n")
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("out/triggered.txt"))
            .unwrap()
            .trim(),
        second
    );
}

#[test]
fn push_in_an_intent_checkout_applies_the_intent_changed_since_the_last_push() {
    let s = Setup::released_on_two_branches();
    let dir = s.checkout("intent");
    let run = |args: &[&str]| s.ocu_in(&dir, "intent-ci", args);
    // A person approves in the checkout and pushes; CI runs `ocuroot push`.
    let file = dir.join("refs/test/-/release.ocu.star/@/custom/approval/@object.json");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, r#"{"kind":"ref","body":"yes"}"#).unwrap();
    let out = run(&["push"]).failure();
    assert!(out.stderr.contains("uncommitted changes"), "{}", out.stderr);
    git(Some(&dir), &["add", "-A"]);
    git(Some(&dir), &["commit", "-q", "-m", "approve"]);
    git(Some(&dir), &["push", "-q", "origin", "intent"]);
    let head = git(Some(&dir), &["rev-parse", "HEAD"]).trim().to_string();
    let out = run(&["push"]).success();
    assert!(
        out.stdout.starts_with(&format!(
            "Applying the intent at {head} (first push: the whole diff):\n  {PKG}/@/custom/approval\n"
        )),
        "{}",
        out.stdout
    );
    assert_eq!(
        s.get(&format!("{PKG}/@/custom/approval")),
        Some(json!("yes"))
    );
    let out = s.ocu("ci", &[], &["state", "get", "@/push/intent_commit"]);
    // The record is intent; state has none.
    assert_eq!(out.code, 1, "{}", out.stdout);
    let recorded = in_remote(
        &s.remote("intent.git"),
        &["show", "intent:refs/@/push/intent_commit/@object.json"],
    );
    assert!(recorded.contains(&head), "{recorded}");

    // Pushing again with nothing new applies nothing (intent set by
    // others while the checkout is behind: `checkouts.rs`). The branch has
    // moved on by the record of the push.
    let tip = in_remote(&s.remote("intent.git"), &["rev-parse", "intent"]);
    let out = run(&["push", "--dryrun"]).success();
    assert_eq!(
        out.stdout,
        format!(
            "No intent to apply at {} changed since the push of {head}\n",
            tip.trim()
        )
    );

    // A state checkout refuses.
    let state_dir = s.checkout("state");
    let out = s.ocu_in(&state_dir, "intent-ci", &["push"]).failure();
    assert!(
        out.stderr.contains("checkout of a state store"),
        "{}",
        out.stderr
    );
}

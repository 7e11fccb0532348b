//! What a lone agent's release costs in pushes on a git store whose branch
//! holds state and intent: the claims of a phase share one push, outcomes
//! ride along with the next, and deploy intents never take a push of their
//! own (they reach the remote with, or before, the outcomes they explain).

use crate::gitstore::{Setup, bare, git};

const ENVS: &str = r#"
for i in range(6):
    register_environment(environment("env{}".format(i), {}))
"#;

const APP: &str = r#"
def build():
    return done(outputs={"v": 1})

def up(environment):
    return done()

def down(environment):
    return done()

def check(name):
    return done()

task(build, name="build")
phase("deploy", tasks=[deploy(up=up, down=down, environment=e) for e in environments()])
phase("checks", tasks=[task(check, name="c{}".format(i), inputs={"name": "c{}".format(i)}) for i in range(6)])
"#;

#[test]
fn a_release_pushes_per_phase_and_its_deploy_intents_ride_along() {
    let s = Setup::new(
        r#"store.set(store.git("{dir}/store.git", branch="state"))"#,
        &[("envs.ocu.star", ENVS), ("app.ocu.star", APP)],
    );
    let remote = s.remote("store.git");
    bare(&remote);
    let remote_s = remote.to_string_lossy().into_owned();
    let in_remote = |args: &[&str]| {
        let mut all = vec!["--git-dir", remote_s.as_str()];
        all.extend_from_slice(args);
        git(None, &all)
    };
    s.ocu("a", &[], &["release", "new", "envs.ocu.star"])
        .success();
    in_remote(&["config", "core.logAllRefUpdates", "always"]);
    s.ocu(
        "a",
        &[],
        &["release", "new", "app.ocu.star", "--parallel", "3"],
    )
    .success();

    let pushed: Vec<String> = in_remote(&["reflog", "show", "--format=%H", "state"])
        .lines()
        .map(str::to_string)
        .collect();
    // Three phases: at most two pushes each, plus two.
    assert!(
        (1..=8).contains(&pushed.len()),
        "{} pushes for a release of three phases",
        pushed.len()
    );
    for tip in &pushed {
        let changed = in_remote(&["diff-tree", "--no-commit-id", "--name-only", "-r", tip]);
        assert!(
            !changed.lines().all(|p| p.starts_with("intent/")),
            "a push of its own for intent: {}",
            in_remote(&["log", "-1", "--format=%s", tip])
        );
    }
    // Every deployment's intent is recorded, before any deployment's outcome.
    let files = in_remote(&["ls-tree", "-r", "--name-only", "state"]);
    for i in 0..6 {
        let intent = format!("intent/refs/test/-/app.ocu.star/@/deploy/env{i}/@object.json");
        assert!(files.lines().any(|f| f == intent), "{intent} missing");
    }
    let subjects = in_remote(&["log", "--reverse", "--format=%s", "state"]);
    let subjects: Vec<&str> = subjects.lines().collect();
    let first_intent = subjects.iter().position(|s| s.starts_with("update 6 refs"));
    let first_outcome = subjects
        .iter()
        .position(|s| s.contains("/deploy/") && s.ends_with(" complete"));
    assert!(
        matches!((first_intent, first_outcome), (Some(i), Some(o)) if i < o),
        "intent after an outcome: {subjects:#?}"
    );
    in_remote(&["fsck", "--strict", "--no-dangling"]);
}

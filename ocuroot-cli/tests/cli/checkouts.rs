//! Commands run in a clone of a store branch, as the original's e2e scripts
//! run them: a repository's trigger called from the intent folder of a
//! store holding state and intent in one branch (tests/gitstate_shared),
//! and `push` from an intent checkout left behind its remote by another
//! agent (tests/push, `test_push_from_intent`). Real bare remotes, real
//! `git clone`s.

use serde_json::json;

use crate::gitstore::{Setup, bare, git};
use crate::packages::{PKG, SHIP};

#[test]
fn a_trigger_called_from_a_store_checkout_runs_in_the_directory_of_the_command() {
    let s = Setup::new(
        r#"store.set(store.git("{dir}/main.git", branch="main"))

def do_trigger(commit):
    host.shell("mkdir -p ./.triggers")
    host.shell("echo go > ./.triggers/{}".format(commit))

trigger(do_trigger)"#,
        &[("release.ocu.star", SHIP)],
    );
    bare(&s.remote("main.git"));
    s.ocu("ci", &[], &["release", "new", "release.ocu.star", "-q"])
        .success();
    let commit = git(Some(s.repo.path()), &["rev-parse", "HEAD"])
        .trim()
        .to_string();
    let clone = s.checkout("main");
    // State and intent share the branch, under state/ and intent/: the
    // original's test runs the trigger from the intent folder.
    let here = clone.join("intent");
    assert!(here.join(".ocuroot-store").is_file());
    let out = s
        .ocu_in(&here, "person", &["work", "trigger", "--intent"])
        .success();
    assert_eq!(out.stdout, format!("test @ {commit}: triggered\n"));
    assert_eq!(
        std::fs::read_to_string(here.join(".triggers").join(&commit)).unwrap(),
        "go\n"
    );
    assert!(
        !clone.join(".triggers").exists(),
        "nothing is written at the root of the clone"
    );
}

#[test]
fn push_from_an_intent_checkout_behind_its_remote_applies_the_remotes_intent() {
    let s = Setup::released_on_two_branches();
    // As the original's test: intent set from the source repository, then
    // `ocuroot push` in a checkout of the intent branch.
    s.ocu("ci", &[], &["state", "set", "@/custom/test", "1"])
        .success();
    let dir = s.checkout("intent");
    let first = git(Some(&dir), &["rev-parse", "HEAD"]).trim().to_string();
    let out = s.ocu_in(&dir, "intent-ci", &["push"]).success();
    assert!(
        out.stdout.starts_with(&format!(
            "Applying the intent at {first} (first push: the whole diff):\n  @/custom/test\n"
        )),
        "{}",
        out.stdout
    );
    assert_eq!(s.get("@/custom/test"), Some(json!("1")));

    // Another agent sets more intent; this checkout is not pulled, so it is
    // behind the remote (by that commit and the push's own record).
    s.ocu("ci", &[], &["state", "set", "@/custom/test2", "1"])
        .success();
    s.ocu(
        "ci",
        &[],
        &["state", "set", &format!("{PKG}/@/custom/approval"), "yes"],
    )
    .success();
    let tip = |remote: &str, branch: &str| {
        git(
            None,
            &[
                "--git-dir",
                &s.remote(remote).to_string_lossy(),
                "rev-parse",
                branch,
            ],
        )
        .trim()
        .to_string()
    };
    let remote_tip = tip("intent.git", "intent");
    assert_ne!(remote_tip, first);
    let out = s.ocu_in(&dir, "intent-ci", &["push", "--json"]).success();
    let pushed: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(pushed["commit"], json!(remote_tip), "{pushed:#}");
    assert_eq!(pushed["checkout_commit"], json!(first), "{pushed:#}");
    assert_eq!(
        pushed["refs"],
        json!(["@/custom/test2", format!("{PKG}/@/custom/approval")]),
        "only what changed since the last push: {pushed:#}"
    );
    assert_eq!(s.get("@/custom/test"), Some(json!("1")));
    assert_eq!(s.get("@/custom/test2"), Some(json!("1")));
    assert_eq!(
        s.get(&format!("{PKG}/@/custom/approval")),
        Some(json!("yes"))
    );
    // The checkout was read, not changed.
    assert_eq!(
        git(Some(&dir), &["rev-parse", "HEAD"]).trim(),
        first.as_str()
    );

    // Once pulled, nothing is left to apply, and the text names the commit.
    git(Some(&dir), &["pull", "-q", "--ff-only"]);
    let now = tip("intent.git", "intent");
    let out = s.ocu_in(&dir, "intent-ci", &["push"]).success();
    assert_eq!(
        out.stdout,
        format!("No intent to apply at {now} changed since the push of {remote_tip}\n")
    );
}

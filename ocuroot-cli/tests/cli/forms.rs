//! The original's command forms: a ref limiting `work any`, `work trigger`
//! and `work cascade` (and `work continue`, `work ops`) to a package or a
//! release; the persistent `--package/-p` and `--release/-r` of `release`
//! and `state`; `state match` without a glob; `release continue` and
//! `release retry` without an argument. Outputs and exit codes as the
//! original's, where it has them.

use serde_json::Value;

use crate::packages::{PKG, SHIP};
use crate::support::{PRELUDE, Repo, get, ocu, ocu_env};

/// Two packages, `a` and `b`, each the [`SHIP`] package waiting for its
/// approval, released, and both approvals set as intent (not applied).
fn two_waiting() -> Repo {
    let repo = Repo::new();
    repo.copy_fixture_dir("release/base");
    for name in ["a", "b"] {
        repo.write(&format!("{name}.ocu.star"), &format!("{PRELUDE}{SHIP}"));
    }
    repo.commit("init");
    for name in ["a", "b"] {
        ocu(
            &repo,
            &["release", "new", &format!("{name}.ocu.star"), "-q"],
        )
        .success();
        ocu(
            &repo,
            &[
                "state",
                "set",
                &format!("{name}.ocu.star/@/custom/approval"),
                "yes",
            ],
        )
        .success();
    }
    repo
}

fn refs_of(out: &str) -> Vec<String> {
    let todos: Vec<Value> = serde_json::from_str(out).expect("the work as JSON");
    todos
        .iter()
        .map(|t| t["ref"].as_str().unwrap().to_string())
        .collect()
}

fn shipped(repo: &Repo, name: &str) -> bool {
    get(
        repo,
        &format!("test/-/{name}.ocu.star/@r1/task/ship/1/status/complete"),
    )
    .is_some()
}

#[test]
fn a_ref_limits_the_work_commands_to_a_package_or_release() {
    let repo = two_waiting();
    let all = refs_of(&ocu(&repo, &["work", "any", "--dryrun"]).success().stdout);
    assert!(
        all.iter().any(|r| r.contains("/a.ocu.star/"))
            && all.iter().any(|r| r.contains("/b.ocu.star/")),
        "{all:?}"
    );
    let only_a = refs_of(
        &ocu(&repo, &["work", "any", "a.ocu.star", "--dryrun"])
            .success()
            .stdout,
    );
    assert!(!only_a.is_empty());
    assert!(
        only_a.iter().all(|r| r.starts_with("test/-/a.ocu.star/")),
        "{only_a:?}"
    );
    // A release of it, and the package as a package ref, say the same.
    for limit in ["a.ocu.star/@r1", "//a.ocu.star", "test/-/a.ocu.star"] {
        let out = ocu(&repo, &["work", "any", limit, "--dryrun"]).success();
        assert_eq!(refs_of(&out.stdout), only_a, "work any {limit}");
    }

    ocu(&repo, &["work", "any", "a.ocu.star", "-q"]).success();
    assert!(shipped(&repo, "a"));
    assert!(!shipped(&repo, "b"), "b is not a's work");
    assert_eq!(
        get(&repo, "test/-/b.ocu.star/@/custom/approval"),
        None,
        "b's intent is not applied"
    );
    // Nothing of a is left; b's work is once its approval is applied (from
    // another commit, so that its run is left ready at this one), and the
    // trigger and cascade forms take the limit too.
    ocu_env(
        &repo,
        &[("OCU_REPO_COMMIT_OVERRIDE", &"1".repeat(40))],
        &["state", "apply", "b.ocu.star/@/custom/approval", "-q"],
    )
    .success();
    assert!(!shipped(&repo, "b"));
    let planned = |args: &[&str]| -> Value {
        serde_json::from_str(&ocu(&repo, args).success().stdout).unwrap()
    };
    assert_eq!(
        planned(&["work", "trigger", "a.ocu.star", "--dryrun", "--json"]),
        serde_json::json!([])
    );
    assert_eq!(
        planned(&["work", "trigger", "b.ocu.star", "--dryrun", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(
        refs_of(
            &ocu(&repo, &["work", "cascade", "a.ocu.star", "--dryrun"])
                .success()
                .stdout
        )
        .is_empty()
    );
    let b = refs_of(
        &ocu(&repo, &["work", "cascade", "b.ocu.star", "--dryrun"])
            .success()
            .stdout,
    );
    assert!(
        !b.is_empty() && b.iter().all(|r| r.starts_with("test/-/b.ocu.star/")),
        "{b:?}"
    );
    ocu(&repo, &["work", "cascade", "b.ocu.star/@r1", "-q"]).success();
    assert!(shipped(&repo, "b"));

    // A release that does not exist, or a ref that is not a package.
    let out = ocu(&repo, &["work", "any", "a.ocu.star/@r9"]).failure();
    assert!(out.stderr.contains("no such release"), "{}", out.stderr);
    let out = ocu(&repo, &["work", "continue", "@/custom/x"]).failure();
    assert!(out.stderr.contains("not a release"), "{}", out.stderr);
}

#[test]
fn release_commands_take_the_package_and_release_flags_or_no_argument() {
    let repo = two_waiting();
    // No release: the original's message, and success.
    let out = ocu(&repo, &["release", "continue"]).success();
    assert_eq!(out.stdout, "A release ID or tag must be specified\n");

    // --package and --release, after or before the subcommand, short or long.
    for args in [
        &[
            "release",
            "status",
            "--package",
            "a.ocu.star",
            "--release",
            "r1",
            "--json",
        ][..],
        &[
            "release",
            "-p",
            "a.ocu.star",
            "-r",
            "r1",
            "status",
            "--json",
        ][..],
        &["release", "status", "-p", "a.ocu.star", "--json"][..],
    ] {
        let out = ocu(&repo, args).success();
        let report: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(report["release"], "test/-/a.ocu.star/@r1", "{args:?}");
    }
    ocu(
        &repo,
        &[
            "release",
            "continue",
            "--package",
            "a.ocu.star",
            "--release",
            "r1",
            "-q",
        ],
    )
    .success();
    let out = ocu(&repo, &["release", "new", "--package", "b.ocu.star"]).failure();
    assert!(out.stderr.contains("b.ocu.star"), "{}", out.stderr);
    let out = ocu(&repo, &["release", "lint", "-p", "a.ocu.star"]).success();
    assert!(out.stdout.contains("ship"), "{}", out.stdout);
    let out = ocu(&repo, &["release", "--release", "r1", "continue"]).failure();
    assert!(
        out.stderr.contains("names a release of no package"),
        "{}",
        out.stderr
    );
    let out = ocu(&repo, &["release", "new"]).failure();
    assert!(out.stderr.contains("--package"), "{}", out.stderr);

    // retry with no argument: the release made last at this commit (b's),
    // which has nothing failed: exit 1, as the original's second retry.
    let out = ocu(&repo, &["release", "retry"]).failure();
    assert!(
        out.stderr
            .contains("no failed work to retry in test/-/b.ocu.star/@r1"),
        "{}",
        out.stderr
    );
    // At a commit without releases: said, and success (the original's).
    repo.write("notes.txt", "later");
    let sha = repo.commit("later").to_string();
    let out = ocu(&repo, &["release", "retry"]).success();
    assert_eq!(out.stdout, format!("No release found at commit {sha}\n"));
}

#[test]
fn release_retry_without_an_argument_retries_the_latest_release_here() {
    let repo = Repo::new();
    repo.copy_fixture_dir("release/base");
    repo.write(
        "release.ocu.star",
        &format!(
            "{PRELUDE}
def build():
    if not host.shell(\"test -f ok\", continue_on_error=True).exit_code == 0:
        fail(\"not yet\")
    return done()

task(build, name=\"build\")
"
        ),
    );
    repo.commit("init");
    ocu(&repo, &["release", "new", "release.ocu.star", "-q"]).failure();
    repo.write("ok", "");
    let out = ocu(&repo, &["release", "retry", "--json"]).success();
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["release"], format!("{PKG}/@r1"));
    assert_eq!(report["status"], "complete");
    let out = ocu(&repo, &["release", "retry"]).failure();
    assert!(out.stderr.contains("no failed work"), "{}", out.stderr);
}

#[test]
fn state_commands_take_the_package_flags_and_match_without_a_glob() {
    let repo = two_waiting();
    let lines = |args: &[&str]| -> Vec<String> {
        ocu(&repo, args)
            .success()
            .stdout
            .lines()
            .map(str::to_string)
            .collect()
    };
    let every = lines(&["state", "match"]);
    assert_eq!(every, lines(&["state", "match", "**"]));
    assert!(every.iter().any(|r| r.starts_with("test/-/b.ocu.star/")));
    let a = lines(&["state", "match", "-p", "a.ocu.star"]);
    assert!(
        !a.is_empty() && a.iter().all(|r| r.starts_with("test/-/a.ocu.star/")),
        "{a:?}"
    );
    assert_eq!(a, lines(&["state", "match", "test/-/a.ocu.star/**"]));
    let r1 = lines(&[
        "state",
        "match",
        "--package",
        "a.ocu.star",
        "--release",
        "r1",
    ]);
    assert_eq!(r1, lines(&["state", "match", "test/-/a.ocu.star/@r1/**"]));

    // A relative ref is read against --package (and --release); an
    // absolute one wins.
    let complete = "test/-/a.ocu.star/@r1/task/build/1/status/complete";
    let doc = ocu(&repo, &["state", "get", complete]).success().stdout;
    for args in [
        &[
            "state",
            "get",
            "-p",
            "a.ocu.star",
            "-r",
            "r1",
            "./task/build/1/status/complete",
        ][..],
        &[
            "state",
            "get",
            "-p",
            "a.ocu.star",
            "./@r1/task/build/1/status/complete",
        ][..],
        &["state", "get", "-p", "b.ocu.star", complete][..],
    ] {
        assert_eq!(ocu(&repo, args).success().stdout, doc, "{args:?}");
    }
    ocu(
        &repo,
        &["state", "set", "-p", "a.ocu.star", "./@/custom/other", "x"],
    )
    .success();
    ocu(
        &repo,
        &[
            "state",
            "apply",
            "--package",
            "a.ocu.star",
            "./@/custom/other",
            "-q",
        ],
    )
    .success();
    assert_eq!(
        get(&repo, "test/-/a.ocu.star/@/custom/other"),
        Some(serde_json::json!("x"))
    );
}

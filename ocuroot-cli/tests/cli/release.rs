//! `release new`, `release continue`, `release retry` end to end: each test
//! writes package files into a fresh git repository (alias `test`, fs store
//! in `.store`, from `fixtures/release/base`), runs the built binary and
//! checks exit codes, reports and the documents left in state.
//!
//! The Starlark functions observe execution by appending lines to files
//! under `out/` (shell commands run in the package file's directory, here
//! the root), so "ran exactly once" and "never started" can be asserted.

use std::collections::BTreeMap;
use std::fs;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{
    Output, PRELUDE, Repo, TIMEOUT, get, log, matches, must_get, ocu, ocu_env, ocu_with, out_lines,
    statuses, std_ocuroot_in,
};

/// A package whose only task counts builds across releases.
const BUILD: &str = r#"
def build(prev):
    n = prev + 1
    mark("build {}".format(n))
    host.shell("echo building {}".format(n))
    return done(outputs={"build_number": n})

task(
    build,
    name="build",
    inputs={"prev": input(ref="./@/call/build#output/build_number", default=0)},
)
"#;

/// Deploys to every environment (`bad` and `good`) in one phase, then a
/// task in a later phase. `up` fails with "boom" for `bad` unless the
/// process has `OCU_TEST_FIXED=1`.
const DEPLOYS: &str = r#"
def up(environment):
    mark("up " + environment["name"])
    if environment["attributes"]["fails"] and host.env().get("OCU_TEST_FIXED", "") != "1":
        fail("boom")
    return done(outputs={"env": environment["name"]})

def down(environment):
    return done()

def after():
    mark("after")
    return done()

phase("deploy", tasks=[deploy(up=up, down=down, environment=e) for e in environments()])
phase("after", tasks=[task(after, name="after")])
"#;

/// A package with one task whose output `v` unblocks others.
const KEY: &str = r#"
def k():
    mark("key")
    return done(outputs={"v": "unlocked"})

task(k, name="k")
"#;

pub(crate) const PKG: &str = "test/-/release.ocu.star";

/// A committed repository with the base fixture and `files` (each prefixed
/// with [`PRELUDE`]), and the commit's sha.
pub(crate) fn setup(files: &[(&str, &str)]) -> (Repo, String) {
    let repo = Repo::new();
    repo.copy_fixture_dir("release/base");
    for (path, body) in files {
        repo.write(path, &format!("{PRELUDE}{body}"));
    }
    let sha = repo.commit("init").to_string();
    (repo, sha)
}

/// The stdout of a `--json` command, parsed.
#[track_caller]
fn report(out: &Output) -> Value {
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("--json printed invalid JSON ({e}):\n{}", out.stdout))
}

/// The work item `path` of a report.
#[track_caller]
fn item<'a>(report: &'a Value, path: &str) -> &'a Value {
    report["work"]
        .as_array()
        .expect("work is an array")
        .iter()
        .find(|w| w["path"] == path)
        .unwrap_or_else(|| panic!("no work item {path} in\n{report:#}"))
}

/// The raw fs-store object at `r` (`{"kind": "ref"|"link", "body"}`),
/// after `state checkpoint` has written the files from the store's log.
fn store_object(repo: &Repo, r: &str) -> Value {
    ocu(repo, &["state", "checkpoint"]).success();
    let path = repo
        .path()
        .join(".store/state/refs")
        .join(r)
        .join("@object.json");
    let bytes = fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_slice(&bytes).expect("store object is JSON")
}

/// The repository of the failing-deploy tests, with its environments
/// registered.
pub(crate) fn deploy_repo() -> (Repo, String) {
    let (repo, sha) = setup(&[("release.ocu.star", DEPLOYS)]);
    let out = ocu(&repo, &["release", "new", "environments.ocu.star"]).success();
    assert!(
        out.stdout.contains("bad") && out.stdout.contains("good"),
        "{}",
        out.stdout
    );
    (repo, sha)
}

// 1. Build numbers and the document layout -----------------------------------

#[test]
fn build_number_carries_across_releases() {
    let (repo, sha1) = setup(&[("release.ocu.star", BUILD)]);
    ocu(&repo, &["release", "new", "release.ocu.star"]).success();
    assert_eq!(
        get(&repo, &format!("{PKG}/@r1/task/build#output/build_number")),
        Some(json!(1))
    );

    // A new commit: the next release reads the previous build number
    // through the `@` link.
    repo.write("README", "second commit\n");
    let sha2 = repo.commit("second").to_string();
    ocu(&repo, &["release", "new", "release.ocu.star"]).success();
    assert_eq!(
        get(&repo, &format!("{PKG}/@r2/task/build#output/build_number")),
        Some(json!(2))
    );
    assert_eq!(log(&repo), ["build 1", "build 2"]);
    assert_eq!(
        matches(&repo, &format!("{PKG}/@r*")),
        [format!("{PKG}/@r1"), format!("{PKG}/@r2")]
    );

    // The documents of SPEC §4, for r2.
    let rel = format!("{PKG}/@r2");
    let doc = must_get(&repo, &rel);
    assert_eq!(doc["commit"], sha2.as_str());
    assert!(doc["package"]["phases"].is_array(), "{doc:#}");
    assert!(doc["created_at"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(get(&repo, &format!("{rel}/commit/{sha2}")).is_some());
    assert!(get(&repo, &format!("{rel}/commit/{sha1}")).is_none());
    assert!(get(&repo, &format!("{PKG}/@r1/commit/{sha1}")).is_some());

    let run = format!("{rel}/task/build/1");
    let run_doc = must_get(&repo, &run);
    assert_eq!(run_doc["type"], "task");
    assert_eq!(run_doc["release"], rel.as_str());
    assert_eq!(run_doc["functions"].as_array().map(Vec::len), Some(1));
    assert_eq!(run_doc["functions"][0]["fn"]["name"], "build");
    assert_eq!(run_doc["output"]["build_number"], 2);
    assert!(run_doc["error"].is_null(), "{run_doc:#}");
    assert_eq!(statuses(&repo, &run), ["complete"]);

    let logs = must_get(&repo, &format!("{run}/logs"));
    let lines = logs.as_array().expect("logs are an array");
    let building = lines
        .iter()
        .find(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.contains("building 2"))
        })
        .unwrap_or_else(|| panic!("no 'building 2' in the logs\n{logs:#}"));
    assert!(building.get("timestamp").is_some(), "{building}");
    assert!(building.get("stream").is_some(), "{building}");

    let work_doc = must_get(&repo, &format!("{rel}/task/build"));
    assert_eq!(work_doc["run_ref"], run.as_str());
    assert_eq!(work_doc["type"], "task");
    assert_eq!(work_doc["release"], rel.as_str());
    assert_eq!(work_doc["input"]["prev"], 1);
    assert_eq!(work_doc["output"]["build_number"], 2);

    // `<pkg>/@/task/build` is a link to the latest successful build.
    let link = format!("{PKG}/@/task/build");
    assert!(matches(&repo, &format!("{PKG}/@/**")).contains(&link));
    assert_eq!(
        store_object(&repo, &link),
        json!({"kind": "link", "body": format!("{rel}/task/build")})
    );
    assert_eq!(get(&repo, &format!("{link}#release")), Some(json!(rel)));

    // OCU_REPO_COMMIT_OVERRIDE names the commit of the next release.
    ocu_env(
        &repo,
        &[("OCU_REPO_COMMIT_OVERRIDE", "commit3")],
        &["release", "new", "release.ocu.star", "-q"],
    )
    .success();
    assert_eq!(
        get(&repo, &format!("{PKG}/@r3/task/build#output/build_number")),
        Some(json!(3))
    );
    assert_eq!(
        get(&repo, &format!("{PKG}/@r3#commit")),
        Some(json!("commit3"))
    );
    assert!(get(&repo, &format!("{PKG}/@r3/commit/commit3")).is_some());
}

// 2. --force -------------------------------------------------------------------

#[test]
fn second_release_at_the_same_commit_needs_force() {
    let (repo, _) = setup(&[("release.ocu.star", BUILD)]);
    ocu(&repo, &["release", "new", "release.ocu.star", "-q"]).success();

    let refused = ocu(&repo, &["release", "new", "release.ocu.star"]).failure();
    assert!(
        refused.stderr.contains(&format!("{PKG}/@r1")),
        "the existing release is listed:\n{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("--force"), "{}", refused.stderr);
    // The original's words: the library's message, then the CLI's hint.
    assert!(
        refused.stderr.contains(
            "There are already 1 releases for this commit (listed above).\n\
             You can force a new release with the --force flag"
        ),
        "{}",
        refused.stderr
    );
    assert!(matches(&repo, &format!("{PKG}/@r2")).is_empty());
    assert!(matches(&repo, &format!("{PKG}/@r2/**")).is_empty());
    assert_eq!(log(&repo), ["build 1"], "nothing ran");

    let forced = ocu(
        &repo,
        &["release", "new", "release.ocu.star", "--force", "--json"],
    )
    .success();
    assert_eq!(report(&forced)["release"], format!("{PKG}/@r2"));
    assert_eq!(
        get(&repo, &format!("{PKG}/@r2/task/build#output/build_number")),
        Some(json!(2))
    );

    ocu(&repo, &["release", "new", "release.ocu.star", "-f", "-q"]).success();
    assert_eq!(
        matches(&repo, &format!("{PKG}/@r*")),
        [
            format!("{PKG}/@r1"),
            format!("{PKG}/@r2"),
            format!("{PKG}/@r3")
        ]
    );
}

// 3. A failing deploy ------------------------------------------------------------

#[test]
fn a_failing_deploy_stops_later_phases_and_keeps_its_error() {
    let (repo, _) = deploy_repo();
    let out = ocu(&repo, &["release", "new", "release.ocu.star", "--json"]).failure();
    let rel = format!("{PKG}/@r1");
    let r = report(&out);
    assert_eq!(r["status"], "failed");
    let bad = item(&r, "deploy/bad");
    assert_eq!(bad["state"], "failed");
    assert!(
        bad["error"].as_str().is_some_and(|e| e.contains("boom")),
        "{bad:#}"
    );
    assert_eq!(item(&r, "deploy/good")["state"], "complete");
    let after = item(&r, "task/after");
    assert_eq!(after["state"], "waiting");
    assert_eq!(after["run"], 1);
    assert!(out.stderr.contains("[failed] deploy/bad"), "{}", out.stderr);

    // The sibling completed; the later phase never started.
    assert_eq!(
        statuses(&repo, &format!("{rel}/deploy/good/1")),
        ["complete"]
    );
    assert_eq!(statuses(&repo, &format!("{rel}/deploy/bad/1")), ["failed"]);
    assert_eq!(statuses(&repo, &format!("{rel}/task/after/1")), ["pending"]);
    let mut ran = log(&repo);
    ran.sort();
    assert_eq!(ran, ["up bad", "up good"]);
    assert!(get(&repo, &format!("{rel}/task/after")).is_none());
    assert!(get(&repo, &format!("{PKG}/@/deploy/good")).is_some());
    assert!(get(&repo, &format!("{PKG}/@/deploy/bad")).is_none());

    // `state get` of an absent document exits 1.
    let absent = ocu(&repo, &["state", "get", &format!("{rel}/task/after")]).failure();
    assert!(absent.stdout.is_empty(), "{}", absent.stdout);
    assert!(absent.stderr.contains("not found"), "{}", absent.stderr);

    // The failure is kept on the run: message, location and Starlark stack.
    let run = format!("{rel}/deploy/bad/1");
    let message = must_get(&repo, &format!("{run}#error/message"));
    assert!(
        message.as_str().is_some_and(|m| m.contains("boom")),
        "{message}"
    );
    let error = must_get(&repo, &format!("{run}#error"));
    let stack = error["stack"].as_str().unwrap_or_default();
    assert!(
        stack.contains("up"),
        "the stack names the function: {error:#}"
    );
    assert!(stack.contains("release.ocu.star"), "{error:#}");
    assert_eq!(error["location"]["file"], "release.ocu.star", "{error:#}");
    assert!(
        get(&repo, &format!("{rel}/deploy/good/1#error")).is_none(),
        "a successful run has no error"
    );

    // `continue` does not retry failed work: still failed, nothing ran.
    let again = ocu(&repo, &["release", "continue", "release.ocu.star/@r1"]).failure();
    assert!(again.stdout.contains("failed"), "{}", again.stdout);
    assert!(again.stdout.contains("boom"), "{}", again.stdout);
    assert_eq!(log(&repo).len(), 2, "{:?}", log(&repo));
    assert!(matches(&repo, &format!("{rel}/deploy/bad/2")).is_empty());
}

#[test]
fn a_deploy_writes_its_intent() {
    let (repo, _) = deploy_repo();
    ocu_env(
        &repo,
        &[("OCU_TEST_FIXED", "1")],
        &["release", "new", "release.ocu.star", "-q"],
    )
    .success();
    // There is no command that reads intent yet: read the fs store's files,
    // once `state checkpoint` has written them from its log.
    assert!(
        !repo.path().join(".store/intent/refs").exists(),
        "files are written by checkpoints, not by commits"
    );
    ocu(&repo, &["state", "checkpoint"]).success();
    for env in ["bad", "good"] {
        let path = repo
            .path()
            .join(".store/intent/refs")
            .join(format!("{PKG}/@/deploy/{env}"))
            .join("@object.json");
        let bytes = fs::read(&path)
            .unwrap_or_else(|e| panic!("no deploy intent at {}: {e}", path.display()));
        let object: Value = serde_json::from_slice(&bytes).expect("intent is JSON");
        assert_eq!(
            object["body"]["release"],
            format!("{PKG}/@r1"),
            "{object:#}"
        );
        assert_eq!(
            object["body"]["input"]["environment"]["name"], env,
            "{object:#}"
        );
    }
}

const SHELL_FAILS: &str = r#"
def helper(token):
    host.shell("echo visible " + token + "; echo oops >&2; exit 3")

def work():
    helper(secret("hunter2"))
    return done()

task(work, name="work")
"#;

#[test]
fn a_failing_shell_command_fails_the_run() {
    let (repo, _) = setup(&[("release.ocu.star", SHELL_FAILS)]);
    let out = ocu(&repo, &["release", "new", "release.ocu.star", "--json"]).failure();
    assert_eq!(report(&out)["status"], "failed");
    let run = format!("{PKG}/@r1/task/work/1");
    assert_eq!(statuses(&repo, &run), ["failed"]);

    let error = must_get(&repo, &format!("{run}#error"));
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.contains("exit status 3"), "{error:#}");
    // The stack goes through the helper to the shell call.
    let stack = error["stack"].as_str().unwrap_or_default();
    assert!(
        stack.contains("work") && stack.contains("helper"),
        "{error:#}"
    );
    // The shell call: line 3 of SHELL_FAILS, after the prelude.
    let line = PRELUDE.lines().count() + 3;
    assert_eq!(error["location"]["line"], line, "{error:#}");

    // Both streams are in the run's log; the secret is masked everywhere.
    let logs = must_get(&repo, &format!("{run}/logs"));
    let lines: Vec<(&str, &str)> = logs
        .as_array()
        .expect("logs")
        .iter()
        .map(|l| {
            (
                l["stream"].as_str().unwrap_or_default(),
                l["message"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert!(lines.contains(&("stdout", "visible <secret>")), "{logs:#}");
    assert!(lines.contains(&("stderr", "oops")), "{logs:#}");
    for text in [
        out.stdout.as_str(),
        out.stderr.as_str(),
        &error.to_string(),
        &logs.to_string(),
    ] {
        assert!(!text.contains("hunter2"), "the secret leaked: {text}");
    }
}

// 4. Retry -------------------------------------------------------------------------

#[test]
fn retry_after_fixing_the_cause_runs_the_later_phases() {
    let (repo, _) = deploy_repo();
    let rel = format!("{PKG}/@r1");
    ocu(&repo, &["release", "new", "release.ocu.star", "-q"]).failure();

    // Not fixed yet: the retry fails again, as run 2.
    let again = ocu(&repo, &["release", "retry", "release.ocu.star", "--json"]).failure();
    assert_eq!(report(&again)["release"], rel.as_str());
    assert_eq!(item(&report(&again), "deploy/bad")["run"], 2);
    assert_eq!(
        statuses(&repo, &format!("{rel}/deploy/bad/1")),
        ["failed_retried"]
    );
    assert_eq!(statuses(&repo, &format!("{rel}/deploy/bad/2")), ["failed"]);
    assert_eq!(statuses(&repo, &format!("{rel}/task/after/1")), ["pending"]);

    // Fixed (the function reads the variable at call time).
    let fixed = ocu_env(
        &repo,
        &[("OCU_TEST_FIXED", "1")],
        &["release", "retry", "release.ocu.star", "--json"],
    )
    .success();
    let r = report(&fixed);
    assert_eq!(r["status"], "complete");
    assert_eq!(item(&r, "deploy/bad")["run"], 3);
    assert_eq!(item(&r, "task/after")["state"], "complete");
    for (run, status) in [
        ("deploy/bad/1", "failed_retried"),
        ("deploy/bad/2", "failed_retried"),
        ("deploy/bad/3", "complete"),
        ("deploy/good/1", "complete"),
        ("task/after/1", "complete"),
    ] {
        assert_eq!(statuses(&repo, &format!("{rel}/{run}")), [status], "{run}");
    }
    assert_eq!(
        matches(&repo, &format!("{rel}/deploy/good/*")),
        [format!("{rel}/deploy/good/1")],
        "the successful sibling is not run again"
    );
    let ran = log(&repo);
    let count = |l: &str| ran.iter().filter(|x| *x == l).count();
    assert_eq!(
        (count("up good"), count("up bad"), count("after")),
        (1, 3, 1),
        "{ran:?}"
    );
    assert_eq!(ran.last().map(String::as_str), Some("after"));

    // The new run restarted from the stored inputs of the old one.
    // (A fragment walks object keys only, so index the array here.)
    let first = must_get(&repo, &format!("{rel}/deploy/bad/1#functions"));
    let third = must_get(&repo, &format!("{rel}/deploy/bad/3#functions"));
    assert_eq!(third.as_array().map(Vec::len), Some(1), "{third:#}");
    assert_eq!(first[0]["fn"], third[0]["fn"]);
    assert_eq!(first[0]["inputs"], third[0]["inputs"]);
    assert!(get(&repo, &format!("{rel}/deploy/bad/3#error")).is_none());
    assert_eq!(
        get(&repo, &format!("{PKG}/@/deploy/bad#output/env")),
        Some(json!("bad"))
    );

    // Nothing is left to retry.
    let none = ocu_env(
        &repo,
        &[("OCU_TEST_FIXED", "1")],
        &["release", "retry", "release.ocu.star"],
    )
    .failure();
    assert!(none.stderr.contains("no failed work"), "{}", none.stderr);
    assert!(matches(&repo, &format!("{rel}/deploy/bad/4")).is_empty());
}

#[test]
fn retry_of_an_explicit_release_and_of_the_latest() {
    let (repo, _) = deploy_repo();
    repo.write("other.ocu.star", &format!("{PRELUDE}{DEPLOYS}"));
    let sha = repo.commit("another package").to_string();
    let r1 = format!("{PKG}/@r1");
    let r2 = format!("{PKG}/@r2");
    ocu(&repo, &["release", "new", "release.ocu.star", "-q"]).failure();
    ocu(
        &repo,
        &["release", "new", "release.ocu.star", "-q", "--force"],
    )
    .failure();
    // A failed release of another package at the same commit.
    ocu(&repo, &["release", "new", "other.ocu.star", "-q"]).failure();
    let fixed = [("OCU_TEST_FIXED", "1")];

    // The explicit form retries that release only.
    let out = ocu_env(
        &repo,
        &fixed,
        &["release", "retry", "release.ocu.star/@r1", "--json"],
    )
    .success();
    assert_eq!(report(&out)["release"], r1.as_str());
    assert_eq!(report(&out)["commit"], sha.as_str());
    assert_eq!(statuses(&repo, &format!("{r1}/deploy/bad/2")), ["complete"]);
    assert_eq!(statuses(&repo, &format!("{r2}/deploy/bad/1")), ["failed"]);

    // Without an id: the latest release of this package at this commit.
    let out = ocu_env(
        &repo,
        &fixed,
        &["release", "retry", "release.ocu.star", "--json"],
    )
    .success();
    assert_eq!(report(&out)["release"], r2.as_str());
    assert_eq!(
        statuses(&repo, &format!("{r2}/deploy/bad/1")),
        ["failed_retried"]
    );
    assert_eq!(statuses(&repo, &format!("{r2}/deploy/bad/2")), ["complete"]);
    assert_eq!(statuses(&repo, &format!("{r2}/task/after/1")), ["complete"]);

    // The other package's failure is not this package's to retry.
    let none = ocu_env(&repo, &fixed, &["release", "retry", "release.ocu.star"]).failure();
    assert!(none.stderr.contains("no failed work"), "{}", none.stderr);
    assert_eq!(
        statuses(&repo, "test/-/other.ocu.star/@r1/deploy/bad/1"),
        ["failed"]
    );
    let none = ocu_env(&repo, &fixed, &["release", "retry", "release.ocu.star/@r1"]).failure();
    assert!(none.stderr.contains("no failed work"), "{}", none.stderr);
}

// 5. Blocked inputs -------------------------------------------------------------------

const A: &str = r#"
def build():
    mark("a build")
    return done(outputs={"x": "from-a"})

task(build, name="build")
"#;

const B: &str = r#"
def use(x):
    mark("b use " + x)
    return done(outputs={"got": x})

def after():
    mark("b after")
    return done()

phase("use", tasks=[task(use, name="use", inputs={"x": ref("./-/a.ocu.star/@/task/build#output/x")})])
phase("after", tasks=[task(after, name="after")])
"#;

#[test]
fn a_missing_ref_blocks_until_the_other_package_is_released() {
    let (repo, _) = setup(&[("a.ocu.star", A), ("b.ocu.star", B)]);
    let wanted = "test/-/a.ocu.star/@/task/build#output/x";

    let out = ocu(&repo, &["release", "new", "b.ocu.star", "--json"]).success();
    let r = report(&out);
    assert_eq!(r["release"], "test/-/b.ocu.star/@r1");
    assert_eq!(r["status"], "blocked");
    let use_ = item(&r, "task/use");
    assert_eq!(use_["state"], "blocked");
    assert_eq!(use_["waiting_for"], json!([wanted]));
    assert_eq!(
        statuses(&repo, "test/-/b.ocu.star/@r1/task/use/1"),
        ["pending"]
    );
    // The later phase waits for the blocked one.
    let after = item(&r, "task/after");
    assert_eq!(after["state"], "waiting");
    assert!(after.get("waiting_for").is_none(), "{after:#}");
    assert_eq!(
        statuses(&repo, "test/-/b.ocu.star/@r1/task/after/1"),
        ["pending"]
    );
    assert!(log(&repo).is_empty(), "nothing ran: {:?}", log(&repo));

    // Still blocked: continue changes nothing and says what it waits for.
    let out = ocu(&repo, &["release", "continue", "b.ocu.star/@r1"]).success();
    assert!(out.stdout.contains("blocked"), "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!("waiting for {wanted}")),
        "{}",
        out.stdout
    );
    assert!(log(&repo).is_empty());

    ocu(&repo, &["release", "new", "a.ocu.star", "-q"]).success();
    let out = ocu(&repo, &["release", "continue", "b.ocu.star/@r1", "--json"]).success();
    let r = report(&out);
    assert_eq!(r["status"], "complete");
    assert_eq!(item(&r, "task/use")["state"], "complete");
    assert_eq!(item(&r, "task/after")["state"], "complete");
    assert_eq!(
        get(&repo, "test/-/b.ocu.star/@r1/task/use#output/got"),
        Some(json!("from-a"))
    );
    assert_eq!(
        get(&repo, "test/-/b.ocu.star/@r1/task/use#input/x"),
        Some(json!("from-a"))
    );
    assert_eq!(log(&repo), ["a build", "b use from-a", "b after"]);
    assert!(matches(&repo, "test/-/b.ocu.star/@r2").is_empty());
}

const TAGGED: &str = r#"
def tagger():
    mark("tagger")
    return done(tags=["v1"])

def use(v):
    mark("use " + v)
    return done()

phase("tag", tasks=[task(tagger, name="tagger")])
phase("use", tasks=[task(use, name="use", inputs={"v": ref("./-/key.ocu.star/@/task/k#output/v")})])
"#;

#[test]
fn continue_by_tag() {
    let (repo, sha) = setup(&[("tagged.ocu.star", TAGGED), ("key.ocu.star", KEY)]);
    let out = ocu(&repo, &["release", "new", "tagged.ocu.star", "--json"]).success();
    assert_eq!(report(&out)["status"], "blocked");
    assert_eq!(
        get(&repo, "test/-/tagged.ocu.star/@v1#commit"),
        Some(json!(sha))
    );

    ocu(&repo, &["release", "new", "key.ocu.star", "-q"]).success();
    let out = ocu(
        &repo,
        &["release", "continue", "tagged.ocu.star/@v1", "--json"],
    )
    .success();
    let r = report(&out);
    assert_eq!(r["release"], "test/-/tagged.ocu.star/@r1");
    assert_eq!(r["status"], "complete");
    assert_eq!(log(&repo), ["tagger", "key", "use unlocked"]);
}

// 6. next() chains ------------------------------------------------------------------------

const GATE: &str = r#"
def finish(approval):
    mark("finish {}".format(approval))
    return done(outputs={"approved": approval})

def start():
    mark("start")
    return next(finish, inputs={"approval": ref("./-/approver.ocu.star/@/task/approve#output/ok")})

task(start, name="gate")
"#;

const APPROVER: &str = r#"
def approve():
    mark("approve")
    return done(outputs={"ok": True})

task(approve, name="approve")
"#;

#[test]
fn a_next_chain_pauses_and_resumes() {
    let (repo, _) = setup(&[("gate.ocu.star", GATE), ("approver.ocu.star", APPROVER)]);
    let rel = "test/-/gate.ocu.star/@r1";
    let run = format!("{rel}/task/gate/1");

    let out = ocu_with(
        &repo,
        &[],
        Duration::from_secs(10),
        &["release", "new", "gate.ocu.star", "--json"],
    )
    .success();
    let r = report(&out);
    assert_eq!(r["status"], "paused");
    let gate = item(&r, "task/gate");
    assert_eq!(gate["state"], "paused");
    assert_eq!(
        gate["waiting_for"],
        json!(["test/-/approver.ocu.star/@/task/approve#output/ok"])
    );
    assert_eq!(statuses(&repo, &run), ["paused"]);
    assert_eq!(log(&repo), ["start"]);
    let doc = must_get(&repo, &run);
    assert_eq!(doc["functions"].as_array().map(Vec::len), Some(2));
    assert_eq!(doc["attempt"], 1, "the paused run was started once");

    ocu(&repo, &["release", "new", "approver.ocu.star", "-q"]).success();
    let out = ocu(
        &repo,
        &["release", "continue", "gate.ocu.star/@r1", "--json"],
    )
    .success();
    assert_eq!(report(&out)["status"], "complete");
    assert_eq!(statuses(&repo, &run), ["complete"]);
    let doc = must_get(&repo, &run);
    let names: Vec<&Value> = doc["functions"]
        .as_array()
        .expect("functions")
        .iter()
        .map(|f| &f["fn"]["name"])
        .collect();
    assert_eq!(names, [&json!("start"), &json!("finish")]);
    assert_eq!(doc["output"]["approved"], true);
    assert_eq!(log(&repo), ["start", "approve", "finish True"]);
}

const CHAIN: &str = r#"
def prep():
    return done(outputs={"v": 5})

def finish(n, extra):
    mark("finish {} {}".format(n, extra))
    return done(outputs={"sum": n + extra})

def start(n):
    mark("start {}".format(n))
    return next(finish, inputs={"n": n, "extra": ref("./task/prep#output/v")})

phase("prep", tasks=[task(prep, name="prep")])
phase("chain", tasks=[task(start, name="chain", inputs={"n": 1})])
"#;

#[test]
fn a_next_chain_whose_inputs_resolve_runs_in_one_go() {
    let (repo, _) = setup(&[("release.ocu.star", CHAIN)]);
    let out = ocu(&repo, &["release", "new", "release.ocu.star", "--json"]).success();
    assert_eq!(report(&out)["status"], "complete");
    let run = format!("{PKG}/@r1/task/chain/1");
    assert_eq!(statuses(&repo, &run), ["complete"]);
    let doc = must_get(&repo, &run);
    let functions = doc["functions"].as_array().expect("functions");
    assert_eq!(functions.len(), 2, "{doc:#}");
    assert_eq!(functions[0]["fn"]["name"], "start");
    assert_eq!(functions[1]["fn"]["name"], "finish");
    assert_eq!(doc["output"]["sum"], 6);
    assert_eq!(doc["attempt"], 1);
    assert_eq!(log(&repo), ["start 1", "finish 1 5"]);
}

// 7. Two agents on one release ---------------------------------------------------------------

const FAN: &str = r#"
def work(name, key):
    host.shell("mkdir -p out && echo " + name + " >> out/runs.txt && sleep 0.2")
    return done(outputs={"name": name})

phase("all", tasks=[
    task(
        work,
        name="t{}".format(i),
        inputs={"name": "t{}".format(i), "key": ref("./-/key.ocu.star/@/task/k#output/v")},
    )
    for i in range(8)
])
"#;

/// A finished child process: exit code, stdout, stderr.
struct Child {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Create a release of eight tasks blocked on `key.ocu.star`, unblock it,
/// then run `release continue` in two processes at once. Checks that every
/// run was executed exactly once and completed; returns both processes.
fn two_agents_continue() -> [Child; 2] {
    let (repo, _) = setup(&[("fan.ocu.star", FAN), ("key.ocu.star", KEY)]);
    let rel = "test/-/fan.ocu.star/@r1";
    let out = ocu(&repo, &["release", "new", "fan.ocu.star", "--json"]).success();
    assert_eq!(report(&out)["status"], "blocked");
    assert_eq!(
        matches(&repo, &format!("{rel}/task/*/1/status/pending")).len(),
        8
    );
    assert!(out_lines(&repo, "runs.txt").is_empty());
    ocu(&repo, &["release", "new", "key.ocu.star", "-q"]).success();

    let spawn = || {
        std_ocuroot_in(repo.path())
            .args(["release", "continue", "fan.ocu.star/@r1", "--parallel", "4"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ocuroot")
    };
    let children = [spawn(), spawn()];
    let children = children.map(|child| {
        let out = child.wait_with_output().expect("wait for ocuroot");
        Child {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    });

    let mut ran = out_lines(&repo, "runs.txt");
    ran.sort();
    let expected: Vec<String> = (0..8).map(|i| format!("t{i}")).collect();
    assert_eq!(ran, expected, "each task ran exactly once");
    for name in &expected {
        let run = format!("{rel}/task/{name}/1");
        assert_eq!(statuses(&repo, &run), ["complete"], "{run}");
        assert_eq!(
            get(&repo, &format!("{run}#attempt")),
            Some(json!(1)),
            "{run} was started once"
        );
    }
    assert!(matches(&repo, &format!("{rel}/task/*/2")).is_empty());
    let out = ocu(
        &repo,
        &["release", "continue", "fan.ocu.star/@r1", "--json"],
    )
    .success();
    assert_eq!(report(&out)["status"], "complete");
    assert_eq!(out_lines(&repo, "runs.txt").len(), 8, "nothing ran again");
    children
}

#[test]
fn two_agents_continuing_one_release_run_each_run_exactly_once() {
    // Both agents race for the same claims; a few rounds make every
    // interleaving likely. Each run executes once and both agents succeed.
    for round in 0..8 {
        for child in two_agents_continue() {
            assert_eq!(
                child.code, 0,
                "round {round}: release continue failed\n--- stdout\n{}\n--- stderr\n{}",
                child.stdout, child.stderr
            );
        }
    }
}

// 8. Parallelism ------------------------------------------------------------------------------

const TIMED: &str = r#"
def work(name):
    host.shell("mkdir -p out && echo $(date +%s%N) start " + name + " >> out/times.txt && sleep 0.3 && echo $(date +%s%N) end " + name + " >> out/times.txt")
    return done()

phase("all", tasks=[task(work, name="w{}".format(i), inputs={"name": "w{}".format(i)}) for i in range(4)])
"#;

/// The `(start, end)` nanoseconds of each task in `out/times.txt`.
fn intervals(repo: &Repo) -> BTreeMap<String, (u128, u128)> {
    let mut starts = BTreeMap::new();
    let mut ends = BTreeMap::new();
    for line in out_lines(repo, "times.txt") {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [t, what, name] = parts.as_slice() else {
            panic!("bad line {line:?}");
        };
        let t: u128 = t.parse().unwrap_or_else(|_| panic!("bad time in {line:?}"));
        let map = if *what == "start" {
            &mut starts
        } else {
            &mut ends
        };
        assert!(
            map.insert(name.to_string(), t).is_none(),
            "{name} ran twice"
        );
    }
    assert_eq!(starts.len(), 4, "{starts:?}");
    starts
        .into_iter()
        .map(|(name, s)| {
            let e = ends[&name];
            (name, (s, e))
        })
        .collect()
}

/// Pairs of tasks whose intervals overlap.
fn overlapping(iv: &BTreeMap<String, (u128, u128)>) -> Vec<(String, String)> {
    let v: Vec<(&String, &(u128, u128))> = iv.iter().collect();
    let mut out = Vec::new();
    for (i, (a, (sa, ea))) in v.iter().enumerate() {
        for (b, (sb, eb)) in &v[i + 1..] {
            if sa < eb && sb < ea {
                out.push((a.to_string(), b.to_string()));
            }
        }
    }
    out
}

#[test]
fn work_in_a_phase_runs_in_parallel() {
    let (repo, _) = setup(&[("release.ocu.star", TIMED)]);
    let out = ocu(
        &repo,
        &[
            "release",
            "new",
            "release.ocu.star",
            "--parallel",
            "4",
            "-q",
        ],
    )
    .success();
    assert!(out.stdout.contains("complete"), "{}", out.stdout);
    let iv = intervals(&repo);
    assert!(
        !overlapping(&iv).is_empty(),
        "with --parallel 4 some runs overlap: {iv:?}"
    );
}

#[test]
fn parallel_1_runs_one_at_a_time() {
    let (repo, _) = setup(&[("release.ocu.star", TIMED)]);
    ocu(
        &repo,
        &[
            "release",
            "new",
            "release.ocu.star",
            "--parallel",
            "1",
            "-q",
        ],
    )
    .success();
    let iv = intervals(&repo);
    assert_eq!(overlapping(&iv), [], "with --parallel 1: {iv:?}");

    // 0 is not a number of workers.
    let out = ocu(
        &repo,
        &[
            "release",
            "new",
            "release.ocu.star",
            "-f",
            "--parallel",
            "0",
        ],
    );
    assert_ne!(out.code, 0, "{}", out.stderr);
    assert!(matches(&repo, &format!("{PKG}/@r2")).is_empty());
}

// 9. Output ---------------------------------------------------------------------------------------

const TWO_PHASES: &str = r#"
def build():
    host.shell("echo building")
    return done(outputs={"n": 1})

def later(x):
    return done()

task(build, name="build")
phase("later", tasks=[task(later, name="wait", inputs={"x": ref("./-/missing.ocu.star/@/task/x#output/y")})])
"#;

#[test]
fn json_report_has_the_documented_fields() {
    let (repo, sha) = setup(&[("release.ocu.star", TWO_PHASES)]);
    let out = ocu(&repo, &["release", "new", "release.ocu.star", "--json"]).success();
    let r = report(&out);
    let keys: Vec<&String> = r.as_object().expect("an object").keys().collect();
    assert_eq!(keys.len(), 4, "{r:#}");
    assert_eq!(r["release"], format!("{PKG}/@r1"));
    assert_eq!(r["commit"], sha.as_str());
    assert_eq!(r["status"], "blocked");
    let work = r["work"].as_array().expect("work");
    assert_eq!(work.len(), 2);
    for w in work {
        for key in [
            "path",
            "phase",
            "phase_name",
            "state",
            "run",
            "run_ref",
            "duration_ms",
            "error",
        ] {
            assert!(w.get(key).is_some(), "{key} missing in {w:#}");
        }
    }

    let build = &work[0];
    assert_eq!(build["path"], "task/build");
    assert_eq!(build["phase"], 0);
    assert_eq!(build["phase_name"], "");
    assert_eq!(build["state"], "complete");
    assert_eq!(build["run"], 1);
    assert_eq!(build["run_ref"], format!("{PKG}/@r1/task/build/1"));
    assert!(build["duration_ms"].is_u64(), "{build:#}");
    assert!(build["error"].is_null());
    assert!(
        build
            .get("waiting_for")
            .is_none_or(|v| v.as_array().is_some_and(Vec::is_empty)),
        "{build:#}"
    );

    let wait = &work[1];
    assert_eq!(wait["path"], "task/wait");
    assert_eq!(wait["phase"], 1);
    assert_eq!(wait["phase_name"], "later");
    assert_eq!(wait["state"], "blocked");
    assert_eq!(wait["run"], 1);
    assert_eq!(wait["run_ref"], format!("{PKG}/@r1/task/wait/1"));
    assert!(wait["duration_ms"].is_null());
    assert!(wait["error"].is_null());
    assert_eq!(
        wait["waiting_for"],
        json!(["test/-/missing.ocu.star/@/task/x#output/y"])
    );

    // Progress went to stderr, not into the JSON.
    assert!(
        out.stderr.contains("[start] task/build (run 1)"),
        "{}",
        out.stderr
    );
}

#[test]
fn progress_goes_to_stderr_unless_quiet() {
    let (repo, _) = setup(&[("release.ocu.star", BUILD)]);
    let out = ocu(&repo, &["release", "new", "release.ocu.star"]).success();
    for wanted in [
        "[start] task/build (run 1)",
        "task/build | building 1",
        "[complete] task/build",
    ] {
        assert!(out.stderr.contains(wanted), "{wanted:?} in\n{}", out.stderr);
    }
    assert!(
        out.stdout
            .starts_with(&format!("Release {PKG}/@r1: complete\n")),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("task/build"), "{}", out.stdout);
    assert!(!out.stdout.contains("[start]"), "{}", out.stdout);

    let quiet = ocu(&repo, &["release", "new", "release.ocu.star", "-f", "-q"]).success();
    assert_eq!(quiet.stderr, "", "-q prints nothing on stderr");
    assert!(
        quiet
            .stdout
            .starts_with(&format!("Release {PKG}/@r2: complete\n")),
        "{}",
        quiet.stdout
    );

    let quiet = ocu(
        &repo,
        &[
            "release",
            "new",
            "release.ocu.star",
            "-f",
            "--quiet",
            "--json",
        ],
    )
    .success();
    assert_eq!(quiet.stderr, "");
    assert_eq!(report(&quiet)["status"], "complete");
}

// 10. Bad input --------------------------------------------------------------------------------------

#[test]
fn continue_and_retry_of_unknown_releases_fail() {
    let (repo, _) = setup(&[("release.ocu.star", BUILD)]);

    let out = ocu(&repo, &["release", "continue", "release.ocu.star/@r1"]).failure();
    assert!(out.stderr.contains("not found"), "{}", out.stderr);
    assert!(out.stderr.contains(&format!("{PKG}/@r1")), "{}", out.stderr);

    let out = ocu(&repo, &["release", "continue", "nothere.ocu.star/@r7"]).failure();
    assert!(out.stderr.contains("not found"), "{}", out.stderr);

    ocu(&repo, &["release", "new", "release.ocu.star", "-q"]).success();
    let out = ocu(&repo, &["release", "continue", "release.ocu.star/@r2"]).failure();
    assert!(out.stderr.contains(&format!("{PKG}/@r2")), "{}", out.stderr);
    let out = ocu(
        &repo,
        &["release", "continue", "release.ocu.star/@nosuchtag"],
    )
    .failure();
    assert!(out.stderr.contains("not found"), "{}", out.stderr);

    let out = ocu(&repo, &["release", "continue", "release.ocu.star"]).failure();
    assert!(
        out.stderr.contains("does not name a release"),
        "{}",
        out.stderr
    );

    let out = ocu(&repo, &["release", "new", "nothere.ocu.star"]).failure();
    assert!(out.stderr.contains("nothere.ocu.star"), "{}", out.stderr);

    let out = ocu(&repo, &["release", "retry", "nothere.ocu.star"]).failure();
    assert!(out.stderr.contains("no release"), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert_eq!(log(&repo), ["build 1"]);
}

#[test]
fn continue_and_retry_at_another_commit_fail() {
    let (repo, sha) = setup(&[("a.ocu.star", A), ("b.ocu.star", B)]);
    ocu(&repo, &["release", "new", "b.ocu.star", "-q"]).success();
    ocu(&repo, &["release", "new", "a.ocu.star", "-q"]).success();

    // Another commit via the override...
    let out = ocu_env(
        &repo,
        &[("OCU_REPO_COMMIT_OVERRIDE", "commit2")],
        &["release", "continue", "b.ocu.star/@r1"],
    )
    .failure();
    assert!(
        out.stderr.contains(&format!("git checkout {sha}")),
        "{}",
        out.stderr
    );
    // ...and a real one.
    repo.write("README", "moved on\n");
    repo.commit("second");
    let out = ocu(&repo, &["release", "continue", "b.ocu.star/@r1"]).failure();
    assert!(
        out.stderr.contains(&format!("git checkout {sha}")),
        "{}",
        out.stderr
    );
    let out = ocu(&repo, &["release", "retry", "b.ocu.star/@r1"]).failure();
    assert!(out.stderr.contains("git checkout"), "{}", out.stderr);
    assert_eq!(log(&repo), ["a build"], "the blocked work did not run");
    assert_eq!(
        statuses(&repo, "test/-/b.ocu.star/@r1/task/use/1"),
        ["pending"]
    );

    // Back at the release's commit it runs.
    let out = ocu_env(
        &repo,
        &[("OCU_REPO_COMMIT_OVERRIDE", &sha)],
        &["release", "continue", "b.ocu.star/@r1", "--json"],
    )
    .success();
    assert_eq!(report(&out)["status"], "complete");
    assert_eq!(log(&repo), ["a build", "b use from-a", "b after"]);
}

// A run left `running` by an agent that died -------------------------------------------------

/// A task that waits (up to 20 s) until `out/go` exists.
const WAITS: &str = r#"
def slow():
    mark("slow started")
    host.shell("i=0; while [ ! -f out/go ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done")
    return done(outputs={"ok": True})

task(slow, name="slow")
"#;

#[test]
fn a_run_left_running_by_a_dead_agent_is_retried() {
    let (repo, _) = setup(&[("release.ocu.star", WAITS)]);
    let mut agent = std_ocuroot_in(repo.path())
        .args(["release", "new", "release.ocu.star", "-q"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ocuroot");
    let run = format!("{PKG}/@r1/task/slow/1");
    let deadline = std::time::Instant::now() + TIMEOUT;
    while statuses(&repo, &run) != ["running"] {
        assert!(
            std::time::Instant::now() < deadline,
            "the run never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let marker = must_get(&repo, &format!("{run}/status/running"));
    assert_eq!(marker["agent"]["pid"], json!(agent.id()), "{marker}");

    // While the agent lives, its run is not taken from it.
    let out = ocu(&repo, &["release", "retry", "release.ocu.star"]).failure();
    assert!(
        out.stderr.contains("still running in other agents"),
        "{}",
        out.stderr
    );

    agent.kill().expect("kill the agent");
    agent.wait().expect("reap the agent");
    fs::create_dir_all(repo.path().join("out")).unwrap();
    fs::write(repo.path().join("out/go"), "").unwrap();

    let out = ocu(&repo, &["release", "retry", "release.ocu.star", "--json"]).success();
    assert_eq!(report(&out)["status"], "complete");
    assert_eq!(statuses(&repo, &run), ["cancelled"]);
    assert_eq!(
        statuses(&repo, &format!("{PKG}/@r1/task/slow/2")),
        ["complete"]
    );
    assert_eq!(item(&report(&out), "task/slow")["run"], json!(2));
}

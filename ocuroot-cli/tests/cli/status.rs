//! `release status`: a release's report read from state, at any commit,
//! without running, evaluating or writing anything; exit 1 when it failed.

use serde_json::Value;

use crate::packages::GATED;
use crate::release::setup;
use crate::support::{Output, log, ocu, ocu_env};

/// A build, then a task that fails beside a deploy to each environment
/// that waits for the release's custom state `approval`.
const MIXED: &str = r#"
def build():
    mark("build")
    return done(tags=["v1"])

def check():
    fail("the check failed")

def up(environment, approval):
    mark("up " + environment["name"])
    return done()

def down(environment, approval):
    return done()

phase("build", tasks=[task(build, name="build")])
phase("deploy", tasks=[task(check, name="check")] + [
    deploy(up=up, down=down, environment=e, inputs={"approval": input(ref="./custom/approval")})
    for e in environments()
])
"#;

const REL: &str = "test/-/release.ocu.star/@r1";

#[track_caller]
fn json(out: &Output) -> Value {
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("--json printed invalid JSON ({e}):\n{}", out.stdout))
}

#[track_caller]
fn state_of(report: &Value, path: &str) -> String {
    report["work"]
        .as_array()
        .expect("work is an array")
        .iter()
        .find(|w| w["path"] == path)
        .unwrap_or_else(|| panic!("no work item {path} in\n{report:#}"))["state"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn release_status_prints_the_report_and_exits_1_when_the_release_failed() {
    let (repo, sha) = setup(&[("release.ocu.star", MIXED), ("gated.ocu.star", GATED)]);
    ocu(&repo, &["release", "new", "environments.ocu.star", "-q"]).success();
    let created = ocu(&repo, &["release", "new", "release.ocu.star"]).failure();
    let ran = log(&repo);
    assert_eq!(ran, ["build"]);
    let store = repo.snapshot_dir(".store/");

    // Text: the report `release new` printed, and nothing on stderr.
    let text = ocu(&repo, &["release", "status", "release.ocu.star/@r1"]).failure();
    assert_eq!(text.stdout, created.stdout);
    assert_eq!(text.stderr, "");
    assert!(
        text.stdout.starts_with(&format!("Release {REL}: failed\n")),
        "{}",
        text.stdout
    );

    // JSON: the report `release continue` gives (it runs nothing here).
    let status = json(&ocu(&repo, &["release", "status", "release.ocu.star", "--json"]).failure());
    assert_eq!(status["release"], REL);
    assert_eq!(status["commit"], sha);
    assert_eq!(status["status"], "failed");
    assert_eq!(state_of(&status, "task/build"), "complete");
    assert_eq!(state_of(&status, "task/check"), "failed");
    for env in ["deploy/bad", "deploy/good"] {
        assert_eq!(state_of(&status, env), "blocked");
    }
    let blocked = status["work"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["path"] == "deploy/good")
        .unwrap();
    assert_eq!(
        blocked["waiting_for"],
        serde_json::json!([format!("{REL}/custom/approval")])
    );
    for arg in ["release.ocu.star/@v1", "//release.ocu.star/@r1", REL] {
        let again = json(&ocu(&repo, &["release", "status", arg, "--json"]).failure());
        assert_eq!(again, status, "{arg}");
    }
    assert_eq!(log(&repo), ran, "release status ran nothing");
    assert!(
        repo.snapshot_dir(".store/") == store,
        "release status wrote to the store"
    );
    let continued = json(
        &ocu(
            &repo,
            &[
                "release",
                "continue",
                "release.ocu.star/@r1",
                "--json",
                "-q",
            ],
        )
        .failure(),
    );
    assert_eq!(continued, status);

    // A blocked release is not a failure.
    ocu(&repo, &["release", "new", "gated.ocu.star", "-q"]).success();
    let gated = json(&ocu(&repo, &["release", "status", "gated.ocu.star", "--json"]).success());
    assert_eq!(gated["status"], "blocked");

    // Unknown releases.
    let out = ocu(&repo, &["release", "status", "release.ocu.star/@r9"]).failure();
    assert!(out.stderr.contains("not found"), "{}", out.stderr);
    assert!(
        out.stderr.contains("test/-/release.ocu.star/@r9"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    let out = ocu(&repo, &["release", "status", "environments.ocu.star"]).failure();
    assert!(
        out.stderr
            .contains("no release of test/-/environments.ocu.star"),
        "{}",
        out.stderr
    );
}

/// At another commit, where the package file is gone, the status is read
/// all the same.
#[test]
fn release_status_works_at_another_commit() {
    let (repo, sha) = setup(&[("release.ocu.star", MIXED)]);
    ocu(&repo, &["release", "new", "environments.ocu.star", "-q"]).success();
    let created = json(
        &ocu(
            &repo,
            &["release", "new", "release.ocu.star", "--json", "-q"],
        )
        .failure(),
    );
    std::fs::remove_file(repo.path().join("release.ocu.star")).unwrap();
    repo.commit("remove the package");
    for arg in ["//release.ocu.star", "//release.ocu.star/@r1"] {
        let status = json(&ocu(&repo, &["release", "status", arg, "--json"]).failure());
        assert_eq!(status, created, "{arg}");
        assert_eq!(status["commit"], sha);
    }
    let out = ocu_env(
        &repo,
        &[("OCU_REPO_COMMIT_OVERRIDE", "elsewhere")],
        &["release", "status", "//release.ocu.star/@r1"],
    )
    .failure();
    assert!(out.stdout.starts_with(&format!("Release {REL}: failed")));
    assert_eq!(log(&repo), ["build"]);
}

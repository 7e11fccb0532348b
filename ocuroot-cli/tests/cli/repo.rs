//! Finding the repository: root, name and store without a `repo.ocu.star`,
//! outside any repository, and `version`.

use serde_json::Value;

use crate::support::{Repo, StateStore, inside_some_repo, ocuroot_in, run};

/// A git repository without `repo.ocu.star`: `pkg/release.ocu.star` and an
/// `environments.ocu.star`, origin `git@github.com:org/repo.git`.
fn unconfigured_repo() -> Repo {
    let repo = Repo::new();
    repo.copy_fixture_dir("noconfig");
    repo.set_origin("git@github.com:org/repo.git");
    repo.commit("no repo.ocu.star");
    repo
}

fn lint_json(repo: &Repo, dir: &str, file: &str) -> Value {
    let out = repo
        .ocuroot_at(dir, &["release", "lint", file, "--format", "json"])
        .success();
    serde_json::from_str(&out.stdout).expect("lint --format json is JSON")
}

#[test]
fn without_repo_config_the_git_root_and_origin_name_the_repo() {
    let repo = unconfigured_repo();
    assert!(!repo.path().join("repo.ocu.star").exists());

    for (dir, file) in [("", "pkg/release.ocu.star"), ("pkg", "release.ocu.star")] {
        let v = lint_json(&repo, dir, file);
        assert_eq!(v["file"], "pkg/release.ocu.star", "from {dir:?}");
        assert_eq!(
            v["base"], "github.com/org/repo/-/pkg/release.ocu.star/@r1",
            "from {dir:?}"
        );
        let deploy = &v["package"]["phases"][1]["tasks"][0]["deploy"];
        assert_eq!(deploy["environment"], "dev", "from {dir:?}");
        assert_eq!(
            deploy["inputs"]["tag"]["ref"],
            "github.com/org/repo/-/pkg/release.ocu.star/@r1/task/build#output/tag"
        );
    }
    // Read-only: the default store is not created by lint.
    assert!(!repo.path().join(".ocuroot").exists());
}

#[test]
fn without_repo_config_the_store_defaults_to_dot_ocuroot_store() {
    let repo = unconfigured_repo();
    // The default store is `<git root>/.ocuroot/store`, state under `state/`.
    StateStore::create(&repo).doc(
        "github.com/org/repo/-/pkg/release.ocu.star/@r1/task/build",
        serde_json::json!({"output": {"tag": "app:1"}}),
    );
    // A ref relative to the subdirectory names the package in it.
    let out = repo
        .ocuroot_at(
            "pkg",
            &["state", "get", "release.ocu.star/@r1/task/build#output/tag"],
        )
        .success();
    assert_eq!(out.stdout, "\"app:1\"\n");
    let out = repo
        .ocuroot(&["state", "match", "github.com/org/repo/**"])
        .success();
    assert_eq!(
        out.stdout,
        "github.com/org/repo/-/pkg/release.ocu.star/@r1/task/build\n"
    );
}

#[test]
fn url_override_names_an_unconfigured_repo() {
    let repo = unconfigured_repo();
    let mut cmd = ocuroot_in(repo.path());
    cmd.args([
        "release",
        "lint",
        "pkg/release.ocu.star",
        "--format",
        "json",
    ])
    .env("OCU_REPO_URL_OVERRIDE", "example.com/other");
    let out = run(cmd).success();
    let v: Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(v["base"], "example.com/other/-/pkg/release.ocu.star/@r1");
}

/// A first run in a fresh local repository (no `repo_alias`, no `origin`)
/// works: the repository is named after its root directory, and the report
/// says so in its first line, once.
#[test]
fn unconfigured_repo_without_origin_is_named_after_its_directory() {
    let repo = Repo::new();
    repo.copy_fixture_dir("noconfig");
    repo.commit("no origin");
    let name = repo
        .path()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let out = repo
        .ocuroot(&[
            "release",
            "lint",
            "pkg/release.ocu.star",
            "--format",
            "json",
        ])
        .success();
    let v: Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(v["base"], format!("{name}/-/pkg/release.ocu.star/@r1"));

    let out = repo
        .ocuroot(&["release", "new", "pkg/release.ocu.star", "-q"])
        .success();
    let first = out.stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!(
            "Repository name: {name} (the root directory's name"
        )),
        "{}",
        out.stdout
    );
    assert!(first.contains("repo_alias"), "{first}");
    assert_eq!(
        out.stdout.matches("Repository name:").count(),
        1,
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains(&format!("Release {name}/-/pkg/release.ocu.star/@r1")),
        "{}",
        out.stdout
    );
    let got = repo
        .ocuroot(&[
            "state",
            "get",
            &format!("{name}/-/pkg/release.ocu.star/@r1#commit"),
        ])
        .success();
    assert!(
        got.stdout
            .contains(&repo.git().head().unwrap().target().unwrap().to_string())
    );

    // An alias, or an origin remote, takes precedence (and no note).
    repo.set_origin("git@github.com:org/repo.git");
    let out = repo
        .ocuroot(&["release", "new", "pkg/release.ocu.star", "-f", "-q"])
        .success();
    assert!(!out.stdout.contains("Repository name:"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("Release github.com/org/repo/-/pkg/release.ocu.star/@r1"),
        "{}",
        out.stdout
    );
    let mut cmd = ocuroot_in(repo.path());
    cmd.args(["release", "new", "pkg/release.ocu.star", "-f", "-q"])
        .env("OCU_CFG_repo_alias", "aliased");
    let out = run(cmd).success();
    assert!(
        out.stdout
            .starts_with("Release aliased/-/pkg/release.ocu.star/@r1"),
        "{}",
        out.stdout
    );
}

#[test]
fn outside_any_repository_is_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    if inside_some_repo(dir) {
        eprintln!(
            "skipped: the temp dir {} is inside a git repository or below a repo.ocu.star",
            dir.display()
        );
        return;
    }
    std::fs::write(dir.join("release.ocu.star"), "ocuroot(\"0.3.0\")\n").expect("write");
    for args in [
        &["release", "lint", "release.ocu.star"][..],
        &["state", "get", "x/-/release.ocu.star/@r1"][..],
        &["state", "match", "**"][..],
    ] {
        let mut cmd = ocuroot_in(dir);
        cmd.args(args);
        let out = run(cmd).failure();
        assert!(
            out.stderr.contains("not in an Ocuroot repository"),
            "{args:?}: {}",
            out.stderr
        );
        assert!(
            out.stderr
                .contains("no repo.ocu.star and no git repository"),
            "{args:?}: {}",
            out.stderr
        );
        assert!(out.stdout.is_empty(), "{args:?}: {}", out.stdout);
    }
    assert!(!dir.join(".ocuroot").exists());
}

#[test]
fn version_prints_the_version() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = ocuroot_in(dir.path());
    cmd.arg("version");
    let out = run(cmd).success();
    assert_eq!(
        out.stdout,
        format!(
            "Ocuroot version: {} (SDK 0.3.0)\n",
            env!("CARGO_PKG_VERSION")
        )
    );

    let mut cmd = ocuroot_in(dir.path());
    cmd.arg("--version");
    let out = run(cmd).success();
    assert!(
        out.stdout.contains(env!("CARGO_PKG_VERSION")),
        "{}",
        out.stdout
    );
}

#[test]
fn unknown_subcommand_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = ocuroot_in(dir.path());
    cmd.arg("frobnicate");
    let out = run(cmd);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("frobnicate"), "{}", out.stderr);
}

//! `ocuroot release lint` / `release check`.

use std::path::Path;

use serde_json::Value;

use crate::support::{Repo, StateStore};

/// The lines of `text`, indentation kept.
fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

fn line_index(lines: &[&str], wanted: &str) -> usize {
    lines
        .iter()
        .position(|l| *l == wanted)
        .unwrap_or_else(|| panic!("no line {wanted:?} in:\n{}", lines.join("\n")))
}

#[test]
fn quickstart_lints_into_three_phases() {
    let repo = Repo::quickstart();
    let out = repo
        .ocuroot(&["release", "lint", "release.ocu.star"])
        .success();
    let text = out.stdout.as_str();
    let l = lines(text);

    assert_eq!(
        l[0],
        "Package release.ocu.star (refs resolve against quickstart/-/release.ocu.star/@r1)"
    );
    // No state yet: environments come from environments.ocu.star.
    assert_eq!(
        l[1],
        "No environments in state yet; using those registered by environments.ocu.star"
    );

    // `build` is outside any phase: its own unnamed phase, first.
    let build = line_index(&l, "Phase 1 (unnamed): 1 task");
    assert!(
        l[build + 1].starts_with("  Task \"build\": build()"),
        "{text}"
    );
    assert_eq!(
        l[build + 2],
        "    input prev_build_number <- ./@/task/build#output/build_number (default 0)",
        "`./@/call/build` is normalised to `task`"
    );

    let staging = line_index(&l, "Phase 2 \"staging\": 1 deployment");
    let production = line_index(&l, "Phase 3 \"production\": 2 deployments");
    assert!(build < staging && staging < production);

    let deployments = |from: usize, to: usize| -> Vec<&str> {
        l[from..to]
            .iter()
            .filter(|x| x.starts_with("  Deployment to "))
            .copied()
            .collect()
    };
    let staging_deploys = deployments(staging, production);
    assert_eq!(staging_deploys.len(), 1, "{text}");
    assert!(staging_deploys[0].starts_with("  Deployment to \"staging\": up up(), down down()"));
    let production_deploys = deployments(production, l.len());
    assert_eq!(production_deploys.len(), 2, "{text}");
    assert!(
        production_deploys[0].starts_with("  Deployment to \"production\": up up(), down down()")
    );
    assert!(production_deploys[1].starts_with("  Deployment to \"production2\":"));

    // Every deployment takes its tag from this release's build (the `call`
    // alias normalised) and the implicit environment input.
    let tag_inputs = l
        .iter()
        .filter(|x| **x == "    input tag <- ./task/build#output/tag (required)")
        .count();
    assert_eq!(tag_inputs, 3, "{text}");
    for env in ["staging", "production", "production2"] {
        let wanted = format!("    input environment <- @/environment/{env} (required)");
        assert!(
            l.contains(&wanted.as_str()),
            "missing {wanted:?} in\n{text}"
        );
    }
    assert!(!text.contains("/call/"), "{text}");
    assert_eq!(l.last(), Some(&"Config file evaluated successfully"));

    // Snapshots live in tests/snapshots (paths are relative to this file).
    insta::with_settings!({ snapshot_path => "../snapshots" }, {
        insta::assert_snapshot!("quickstart_lint_text", text);
    });
}

#[test]
fn check_is_an_alias_of_lint() {
    let repo = Repo::quickstart();
    let lint = repo
        .ocuroot(&["release", "lint", "release.ocu.star"])
        .success();
    let check = repo
        .ocuroot(&["release", "check", "release.ocu.star"])
        .success();
    assert_eq!(lint.stdout, check.stdout);
    assert!(!check.stdout.is_empty());
}

#[test]
fn quickstart_lint_json() {
    let repo = Repo::quickstart();
    let out = repo
        .ocuroot(&["release", "lint", "release.ocu.star", "--format", "json"])
        .success();
    let v: Value = serde_json::from_str(&out.stdout).expect("lint --format json is JSON");
    assert_eq!(v["file"], "release.ocu.star");
    assert_eq!(v["base"], "quickstart/-/release.ocu.star/@r1");

    let phases = v["package"]["phases"]
        .as_array()
        .expect("package.phases is an array");
    let names: Vec<&str> = phases
        .iter()
        .map(|p| p["name"].as_str().expect("phase name"))
        .collect();
    assert_eq!(names, ["", "staging", "production"]);

    let build = &phases[0]["tasks"][0]["task"];
    assert_eq!(build["name"], "build");
    assert_eq!(
        build["inputs"]["prev_build_number"]["ref"],
        "quickstart/-/release.ocu.star/@/task/build#output/build_number"
    );
    assert_eq!(build["inputs"]["prev_build_number"]["default"], 0);

    let envs: Vec<Vec<&str>> = phases[1..]
        .iter()
        .map(|p| {
            p["tasks"]
                .as_array()
                .expect("tasks")
                .iter()
                .map(|t| t["deploy"]["environment"].as_str().expect("environment"))
                .collect()
        })
        .collect();
    assert_eq!(envs, [vec!["staging"], vec!["production", "production2"]]);
    for phase in &phases[1..] {
        for t in phase["tasks"].as_array().expect("tasks") {
            assert_eq!(
                t["deploy"]["inputs"]["tag"]["ref"],
                "quickstart/-/release.ocu.star/@r1/task/build#output/tag"
            );
        }
    }
}

#[test]
fn lint_of_an_environments_file() {
    let repo = Repo::quickstart();
    let out = repo
        .ocuroot(&["release", "lint", "environments.ocu.star"])
        .success();
    let l = lines(&out.stdout);
    assert!(l.contains(&"Registers 3 environments:"), "{}", out.stdout);
    assert!(
        l.contains(&"  staging {\"type\":\"staging\"}"),
        "{}",
        out.stdout
    );
    assert!(
        l.contains(&"  production2 {\"type\":\"prod\"}"),
        "{}",
        out.stdout
    );
}

#[test]
fn lint_writes_nothing() {
    let repo = Repo::quickstart();
    let before = repo.files();
    repo.ocuroot(&["release", "lint", "release.ocu.star"])
        .success();
    repo.ocuroot(&["release", "check", "release.ocu.star", "--format", "json"])
        .success();
    repo.ocuroot(&["release", "lint", "environments.ocu.star"])
        .success();
    // A read-only command must not create the store (.ocuroot/store).
    assert!(
        !repo.path().join(".ocuroot").exists(),
        "release lint created {}",
        repo.path().join(".ocuroot").display()
    );
    assert_eq!(repo.files(), before);
}

#[test]
fn lint_leaves_an_existing_store_unchanged() {
    let repo = Repo::quickstart();
    let store = StateStore::create(&repo);
    store
        .doc(
            "quickstart/-/release.ocu.star/@r1",
            serde_json::json!({"commit": "abc"}),
        )
        .doc(
            "@/environment/staging",
            serde_json::json!({"name": "staging", "attributes": {"type": "staging"}}),
        );
    // `.lock` holds no data; it may be created by any reader.
    let data = || {
        repo.snapshot_dir(".ocuroot/")
            .into_iter()
            .filter(|(f, _)| !f.ends_with("/.lock"))
            .collect::<Vec<_>>()
    };
    let before = data();
    let out = repo
        .ocuroot(&["release", "lint", "release.ocu.star"])
        .success();
    assert_eq!(data(), before, "release lint changed the store");

    // With a release r1 in state the next release is r2, and the
    // environments come from state (only staging), not from the files.
    let l = lines(&out.stdout);
    assert_eq!(
        l[0],
        "Package release.ocu.star (refs resolve against quickstart/-/release.ocu.star/@r2)"
    );
    assert!(
        !out.stdout.contains("No environments in state"),
        "{}",
        out.stdout
    );
    assert!(
        l.contains(&"Phase 2 \"staging\": 1 deployment"),
        "{}",
        out.stdout
    );
    assert!(
        l.contains(&"Phase 3 \"production\": 0 deployments"),
        "{}",
        out.stdout
    );
}

#[test]
fn lint_honours_the_alias_override() {
    let repo = Repo::quickstart();
    let mut cmd = crate::support::ocuroot_in(repo.path());
    cmd.args(["release", "lint", "release.ocu.star", "--format", "json"])
        .env("OCU_CFG_repo_alias", "overridden");
    let out = crate::support::run(cmd).success();
    let v: Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(v["base"], "overridden/-/release.ocu.star/@r1");
}

/// A repository holding the broken fixtures, with a `repo.ocu.star`.
fn broken_repo() -> Repo {
    let repo = Repo::new();
    repo.write(
        "repo.ocu.star",
        "ocuroot(\"0.3.0\")\nrepo_alias(\"broken\")\n",
    );
    repo.copy_fixture_dir("broken");
    repo.commit("broken files");
    repo
}

#[test]
fn broken_files_fail_with_their_position() {
    let repo = broken_repo();
    let cases: &[(&str, &[&str])] = &[
        (
            "syntax_error.ocu.star",
            &["syntax_error.ocu.star:3:11", "expected identifier"],
        ),
        (
            "input_not_parameter.ocu.star",
            &[
                "input_not_parameter.ocu.star:6:1",
                "input \"colour\" is not a parameter of build",
                "input_not_parameter.ocu.star:3:1",
            ],
        ),
        (
            "missing_input.ocu.star",
            &[
                "missing_input.ocu.star:6:1",
                "parameter \"count\" of build",
                "no input",
            ],
        ),
        (
            "unsupported_version.ocu.star",
            &["unsupported_version.ocu.star:1:1", "0.4.0", "0.3"],
        ),
        (
            "fail.ocu.star",
            &["fail.ocu.star:7:1", "deliberate failure", "Traceback"],
        ),
    ];
    for (file, wanted) in cases {
        for format in ["text", "json"] {
            let out = repo
                .ocuroot(&["release", "lint", file, "--format", format])
                .failure();
            assert!(out.stdout.is_empty(), "{file}: stdout {:?}", out.stdout);
            // Every error starts "Error: ", as the original's do; an
            // evaluation error's first line is its location and summary,
            // Starlark's rendering (a traceback, the source line) follows.
            let (first, rest) = out.stderr.split_once('\n').unwrap_or((&out.stderr, ""));
            assert!(
                first.starts_with(&format!("Error: {file}:")),
                "{file}: {}",
                out.stderr
            );
            assert!(
                rest.starts_with("error: ") || rest.starts_with("Traceback"),
                "{file}: {}",
                out.stderr
            );
            assert!(
                !out.stderr.contains("Error: error:"),
                "{file}: {}",
                out.stderr
            );
            for w in *wanted {
                assert!(
                    out.stderr.contains(w),
                    "{file}: stderr should mention {w:?}:\n{}",
                    out.stderr
                );
            }
        }
    }
    assert!(!repo.path().join(".ocuroot").exists());
}

#[test]
fn missing_file_is_an_error() {
    let repo = broken_repo();
    let out = repo
        .ocuroot(&["release", "lint", "no-such-file.ocu.star"])
        .failure();
    assert!(
        out.stderr.contains("no-such-file.ocu.star"),
        "{}",
        out.stderr
    );
}

#[test]
fn looking_for_environments_runs_nothing_from_other_files() {
    let repo = Repo::quickstart();
    repo.write(
        "other.ocu.star",
        "host.shell(\"touch ran-shell\")\nwrite(\"ran-write\", \"x\")\n",
    );
    repo.commit("another package with top-level side effects");
    let out = repo
        .ocuroot(&["release", "lint", "release.ocu.star"])
        .success();
    assert!(
        out.stdout
            .contains("using those registered by environments.ocu.star"),
        "{}",
        out.stdout
    );
    assert!(!repo.path().join("ran-shell").exists());
    assert!(!repo.path().join("ran-write").exists());
}

/// A project whose root is not an Ocuroot repository, with the quickstart
/// under `examples/quickstart` (a repository of its own) and, elsewhere,
/// another example's environments file registering environments without
/// the `type` the quickstart reads.
#[test]
fn lint_from_above_takes_environments_from_the_packages_own_repository() {
    let repo = Repo::new();
    let quickstart = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart");
    for file in ["repo.ocu.star", "environments.ocu.star", "release.ocu.star"] {
        repo.copy_file(
            &quickstart.join(file),
            &format!("examples/quickstart/{file}"),
        );
    }
    repo.write(
        "examples/other/environments.ocu.star",
        "ocuroot(\"0.3.0\")\nregister_environment(environment(\"staging\", {}))\n",
    );
    repo.commit("init");
    let out = repo
        .ocuroot(&["release", "lint", "examples/quickstart/release.ocu.star"])
        .success();
    assert!(
        out.stdout.contains(
            "No environments in state yet; using those registered by \
             examples/quickstart/environments.ocu.star\n"
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("Deployment to \"production2\""),
        "{}",
        out.stdout
    );
    // From the quickstart itself, the same environments.
    let inside = repo
        .ocuroot_at(
            "examples/quickstart",
            &["release", "lint", "release.ocu.star"],
        )
        .success();
    assert!(
        inside
            .stdout
            .contains("using those registered by environments.ocu.star\n"),
        "{}",
        inside.stdout
    );
}

//! Intent and the `work` commands through the binary: what is the CLI's
//! own (relative refs and `-f json` values, the text and `--dryrun` JSON it
//! prints, exit codes, the documented `state diff | xargs state apply`
//! pipeline, files written by hand into the fs store, an agent at another
//! commit through `OCU_REPO_COMMIT_OVERRIDE`) and an approval end to end.
//! The engine's behaviour (what `state set` / `delete` / `diff` / `apply`
//! and `work continue` / `any` / `ops` / `any --comprehensive` do to state)
//! is tested through the library in `ocuroot-core/tests/it/intent/`.
//!
//! Each test writes package files into a fresh git repository (alias `test`,
//! fs store in `.store`, from `fixtures/release/base`, with the environments
//! `staging` and `prod`), runs the built binary and checks exit codes, the
//! documents left in state (through `state get`) and the lines the Starlark
//! functions append to `out/log.txt`, which prove which functions ran.

use std::fs;
use std::path::Path;

use serde_json::{Value, json};

use crate::support::{
    Output, PRELUDE, Repo, TIMEOUT, get, log, matches, ocu, ocu_env, run, statuses,
};

use crate::packages::{ENVIRONMENTS, GATED, PKG, pkg, service, service_files};

/// A committed repository with the base fixture, [`ENVIRONMENTS`] and
/// `files` (each prefixed with [`PRELUDE`]), the environments registered,
/// and the commit's sha.
fn setup(files: &[(&str, &str)]) -> (Repo, String) {
    let repo = Repo::new();
    repo.copy_fixture_dir("release/base");
    repo.write("environments.ocu.star", ENVIRONMENTS);
    for (path, body) in files {
        repo.write(path, &format!("{PRELUDE}{body}"));
    }
    let sha = repo.commit("init").to_string();
    let out = ocu(&repo, &["release", "new", "environments.ocu.star", "-q"]).success();
    assert!(
        out.stdout.contains("staging") && out.stdout.contains("prod"),
        "{}",
        out.stdout
    );
    (repo, sha)
}

/// [`setup`] with [`service`] packages `names`, each released once.
fn services(names: &[&str]) -> (Repo, String) {
    let files = service_files(names);
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, b)| (p.as_str(), b.as_str()))
        .collect();
    let (repo, sha) = setup(&refs);
    for (path, _) in &files {
        ocu(&repo, &["release", "new", path, "-q"]).success();
    }
    let mut ran = log(&repo);
    ran.sort();
    let mut expected: Vec<String> = names
        .iter()
        .flat_map(|n| [format!("{n} up prod a"), format!("{n} up staging a")])
        .collect();
    expected.sort();
    assert_eq!(ran, expected);
    (repo, sha)
}

/// `sh -c <script>` at the root, with the built `ocuroot` first on `PATH`.
fn sh(repo: &Repo, script: &str) -> Output {
    let bin = Path::new(env!("CARGO_BIN_EXE_ocuroot"))
        .parent()
        .expect("the binary's directory");
    let path = match std::env::var_os("PATH") {
        Some(p) => {
            let mut dirs = vec![bin.to_path_buf()];
            dirs.extend(std::env::split_paths(&p));
            std::env::join_paths(dirs).expect("PATH")
        }
        None => bin.as_os_str().to_owned(),
    };
    let mut cmd = assert_cmd::Command::new("sh");
    cmd.args(["-c", script])
        .current_dir(repo.path())
        .env("PATH", path)
        .env_remove("OCU_CFG_repo_alias")
        .env_remove("OCU_REPO_URL_OVERRIDE")
        .env_remove("OCU_REPO_COMMIT_OVERRIDE")
        .env_remove("OCUROOT_LOG")
        .timeout(TIMEOUT);
    let out = run(cmd);
    assert_ne!(out.code, -1, "{script} was killed\n{}", out.stderr);
    out
}

/// `state diff`: the intent refs that differ from state.
#[track_caller]
fn diff(repo: &Repo) -> Vec<String> {
    let out = ocu(repo, &["state", "diff"]).success();
    out.stdout.lines().map(str::to_string).collect()
}

/// Intent and state agree, and `work any` finds nothing to do.
fn assert_settled(repo: &Repo) {
    assert_eq!(diff(repo), Vec::<String>::new());
    assert_eq!(
        ocu(repo, &["work", "any", "-q"]).success().stdout,
        "Nothing to do\n"
    );
}

/// The log lines after the first `from`, sorted (runs of a phase finish in
/// any order).
fn sorted_since(repo: &Repo, from: usize) -> Vec<String> {
    let mut lines = log(repo).split_off(from);
    lines.sort();
    lines
}

/// The `--dryrun` output, parsed.
#[track_caller]
fn plan(out: &Output) -> Vec<Value> {
    let v: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("--dryrun printed invalid JSON ({e}):\n{}", out.stdout));
    v.as_array()
        .unwrap_or_else(|| panic!("--dryrun printed no array:\n{v:#}"))
        .clone()
}

/// Every state document under the store, for before/after comparisons:
/// each ref with its document.
fn state_dump(repo: &Repo) -> Vec<(String, Value)> {
    matches(repo, "**")
        .into_iter()
        .map(|r| {
            let doc = get(repo, &r).unwrap_or(Value::Null);
            (r, doc)
        })
        .collect()
}

// 1. Approval gates, end to end ---------------------------------------------------------------

#[test]
fn an_approval_on_the_release_unblocks_its_deploys() {
    let (repo, _) = setup(&[("release.ocu.star", GATED)]);
    let rel = format!("{PKG}/@r1");
    let approval = format!("{rel}/custom/approval");

    let out = ocu(&repo, &["release", "new", "release.ocu.star"]).success();
    assert!(out.stdout.contains(": blocked"), "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!("waiting for {approval}")),
        "{}",
        out.stdout
    );
    for env in ["staging", "prod"] {
        assert_eq!(
            statuses(&repo, &format!("{rel}/deploy/{env}/1")),
            ["pending"]
        );
    }
    assert_eq!(log(&repo), ["build"]);
    assert_eq!(diff(&repo), Vec::<String>::new());

    // Intent only (relative to the current directory): state is unchanged
    // and the release stays blocked.
    ocu(
        &repo,
        &[
            "state",
            "set",
            "release.ocu.star/@r1/custom/approval",
            "yes",
        ],
    )
    .success();
    assert_eq!(get(&repo, &approval), None);
    assert_eq!(diff(&repo), [approval.as_str()]);
    let out = ocu(&repo, &["release", "continue", "release.ocu.star/@r1"]).success();
    assert!(out.stdout.contains(": blocked"), "{}", out.stdout);
    assert_eq!(log(&repo), ["build"]);

    let out = ocu(&repo, &["state", "apply", &approval]).success();
    assert!(
        out.stdout
            .starts_with(&format!("Applied {approval} (created)\n")),
        "{}",
        out.stdout
    );
    assert_eq!(get(&repo, &approval), Some(json!("yes")));
    assert_eq!(diff(&repo), Vec::<String>::new());
    assert_eq!(log(&repo), ["build"], "applying custom state runs nothing");

    let out = ocu(&repo, &["release", "continue", "release.ocu.star/@r1"]).success();
    assert!(
        out.stdout
            .starts_with(&format!("Release {rel}: complete\n")),
        "{}",
        out.stdout
    );
    assert_eq!(sorted_since(&repo, 1), ["up prod yes", "up staging yes"]);
    for env in ["staging", "prod"] {
        assert_eq!(
            get(&repo, &format!("{PKG}/@/deploy/{env}#output/approval")),
            Some(json!("yes"))
        );
    }
}

// 2. The documented pipeline, one process per ref ---------------------------------------------

#[test]
fn deleting_a_deploy_intent_runs_down() {
    let (repo, _) = services(&["svc"]);
    let staging = format!("{}/@/deploy/staging", pkg("svc"));
    ocu(&repo, &["state", "delete", "svc.ocu.star/@/deploy/staging"]).success();
    assert_eq!(diff(&repo), [staging.as_str()]);

    let out = sh(
        &repo,
        "ocuroot state diff | xargs -n1 ocuroot state apply -q",
    );
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .starts_with(&format!("Applied {staging} (deleted)\n")),
        "{}",
        out.stdout
    );
    assert_eq!(sorted_since(&repo, 2), ["svc down staging"]);
    assert_eq!(get(&repo, &staging), None);
    assert_settled(&repo);
}

// 3. Arguments and output ---------------------------------------------------------------------

#[test]
fn work_any_comprehensive_cannot_be_a_dry_run() {
    let (repo, _) = setup(&[]);
    let out = ocu(&repo, &["work", "any", "--comprehensive", "--dryrun"]).expect_code(2);
    assert!(out.stderr.contains("cannot be used with"), "{}", out.stderr);
}

/// A value is a string unless `-f json` says otherwise; what `state apply`
/// prints for each change.
#[test]
fn custom_state_is_set_and_removed() {
    let (repo, _) = setup(&[]);
    ocu(&repo, &["state", "set", "@/custom/test", "1"]).success();
    let out = ocu(&repo, &["state", "apply", "@/custom/test"]).success();
    assert_eq!(out.stdout, "Applied @/custom/test (created)\n");
    assert_eq!(get(&repo, "@/custom/test"), Some(json!("1")), "a string");

    // As JSON, 1 is a number: another value.
    ocu(&repo, &["state", "set", "-f", "json", "@/custom/test", "1"]).success();
    let out = ocu(&repo, &["state", "apply", "@/custom/test"]).success();
    assert_eq!(out.stdout, "Applied @/custom/test (updated)\n");
    assert_eq!(get(&repo, "@/custom/test"), Some(json!(1)));

    ocu(&repo, &["state", "delete", "@/custom/test"]).success();
    let out = ocu(&repo, &["state", "apply", "@/custom/test"]).success();
    assert_eq!(out.stdout, "Applied @/custom/test (deleted)\n");
    assert_eq!(get(&repo, "@/custom/test"), None);
}

/// `--dryrun` (and `-d`) print the work as JSON and leave the fs store's
/// files as they were.
#[test]
fn dryrun_lists_the_work_and_changes_nothing() {
    let (repo, sha) = setup(&[
        ("release.ocu.star", GATED),
        ("svc.ocu.star", &service("svc")),
    ]);
    let svc = pkg("svc");
    ocu(&repo, &["release", "new", "release.ocu.star", "-q"]).success();
    ocu(&repo, &["release", "new", "svc.ocu.star", "-q"]).success();
    // Pending intent (the approval) and changed state (the flag).
    let approval = format!("{PKG}/@r1/custom/approval");
    ocu(&repo, &["state", "set", &approval, "yes"]).success();
    ocu(&repo, &["state", "set", "@/custom/flag", "b"]).success();
    ocu(&repo, &["state", "apply", "@/custom/flag"]).success();
    ocu(&repo, &["state", "checkpoint"]).success();

    let ran = log(&repo);
    assert_eq!(ran.len(), 3, "{ran:?}");
    let files_before = repo.snapshot_dir(".store/");

    let cont = plan(&ocu(&repo, &["work", "continue", "--dryrun"]).success());
    let any = plan(&ocu(&repo, &["work", "any", "-d"]).success());

    // `continue`: the two redeploys; the gated deploys are blocked.
    let mut refs: Vec<&str> = cont.iter().filter_map(|t| t["ref"].as_str()).collect();
    refs.sort();
    assert_eq!(
        refs,
        [
            format!("{svc}/@r1/deploy/prod"),
            format!("{svc}/@r1/deploy/staging")
        ],
        "{cont:#?}"
    );
    for t in &cont {
        assert_eq!(t["work_type"], "run");
        assert_eq!(t["commit"], sha.as_str());
    }
    // `any`: the intent first (without a commit), then the same.
    assert_eq!(
        any.first(),
        Some(
            &json!({"ref": approval, "work_type": "create", "reason": "intent differs from state"})
        ),
        "{any:#?}"
    );
    assert_eq!(&any[1..], &cont[..]);

    // Nothing changed.
    assert_eq!(log(&repo), ran);
    assert!(
        repo.snapshot_dir(".store/") == files_before,
        "the store's files changed"
    );
}

// 4. Invalid intent, exit codes and files written by hand ---------------------------------------

#[test]
fn invalid_intent_is_refused() {
    let (repo, _) = services(&["svc"]);
    ocu(&repo, &["state", "checkpoint"]).success();
    let files_before = repo.snapshot_dir(".store/");
    let state_before = state_dump(&repo);

    let env = |name: &str| json!({"name": name, "attributes": {}}).to_string();
    let other_release = json!({"release": "test/-/other.ocu.star/@r1", "input": {}}).to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "-f".into(),
                "json".into(),
                "@/environment/a/b".into(),
                env("a/b"),
            ],
            "is not intent",
        ),
        (
            vec![
                "-f".into(),
                "json".into(),
                "@/environment/a+b".into(),
                env("a+b"),
            ],
            "invalid environment name \"a+b\"",
        ),
        (
            vec![
                "-f".into(),
                "json".into(),
                "@/environment/x".into(),
                env("y"),
            ],
            "must match",
        ),
        (
            vec![
                "-f".into(),
                "json".into(),
                "@/environment/x".into(),
                r#"{"attributes": {}}"#.into(),
            ],
            "missing field `name`",
        ),
        (
            vec![
                "-f".into(),
                "json".into(),
                "@/environment/x".into(),
                "{not json".into(),
            ],
            "not JSON",
        ),
        (
            vec!["svc.ocu.star/@bad+tag/custom/x".into(), "1".into()],
            "invalid tag \"bad+tag\"",
        ),
        (
            vec!["svc.ocu.star/@r1/task/x".into(), "1".into()],
            "is not intent",
        ),
        (vec!["@/custom/x#frag".into(), "1".into()], "#fragment"),
        (
            vec![
                "-f".into(),
                "json".into(),
                "svc.ocu.star/@/deploy/prod".into(),
                "{}".into(),
            ],
            "missing field `release`",
        ),
        (
            vec![
                "-f".into(),
                "json".into(),
                "svc.ocu.star/@/deploy/prod".into(),
                other_release,
            ],
            "is not a release of test/-/svc.ocu.star",
        ),
    ];
    for (args, message) in &cases {
        let mut full = vec!["state", "set"];
        full.extend(args.iter().map(String::as_str));
        let out = ocu(&repo, &full);
        assert_eq!(out.code, 1, "{full:?} is refused\n{}", out.stderr);
        assert!(
            out.stderr.contains(message),
            "{full:?}: {message:?} in\n{}",
            out.stderr
        );
        assert!(out.stderr.starts_with("Error: "), "{}", out.stderr);
    }
    // Nothing was written: no intent differs, state is as it was.
    assert_eq!(diff(&repo), Vec::<String>::new());
    assert_eq!(state_dump(&repo), state_before);
    ocu(&repo, &["state", "checkpoint"]).success();
    assert!(
        repo.snapshot_dir(".store/") == files_before,
        "the store's files changed"
    );
    assert_eq!(log(&repo).len(), 2);
}

#[test]
fn applying_a_hand_written_bad_intent_is_refused() {
    let (repo, _) = services(&["svc"]);
    let state_before = state_dump(&repo);
    // Files written by hand (or by `git pull`) into the intent store: a
    // checkpoint first, so the store's log has nothing newer.
    ocu(&repo, &["state", "checkpoint"]).success();
    let write = |key: &str, body: Value| {
        let dir = repo.path().join(".store/intent/refs").join(key);
        fs::create_dir_all(&dir).expect("mkdir");
        let object = json!({"kind": "ref", "body": body});
        fs::write(dir.join("@object.json"), object.to_string()).expect("write");
    };
    write("@/environment/x", json!({"name": "y", "attributes": {}}));
    write(
        "@/environment/a+b",
        json!({"name": "a+b", "attributes": {}}),
    );
    write(
        &format!("{}/@/deploy/prod", pkg("svc")),
        json!({"release": "test/-/other.ocu.star/@r1", "input": {}}),
    );
    let bad_deploy = format!("{}/@/deploy/prod", pkg("svc"));
    assert_eq!(
        diff(&repo),
        ["@/environment/a+b", "@/environment/x", bad_deploy.as_str()]
    );

    for (r, message) in [
        ("@/environment/x", "must match"),
        ("@/environment/a+b", "invalid environment name"),
        (bad_deploy.as_str(), "is not a release of"),
    ] {
        let out = ocu(&repo, &["state", "apply", r]).failure();
        assert!(out.stderr.contains(message), "{r}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{}", out.stdout);
    }
    let out = ocu(&repo, &["work", "any", "-q"]).failure();
    assert!(out.stderr.contains("Error: "), "{}", out.stderr);

    assert_eq!(state_dump(&repo), state_before);
    assert_eq!(log(&repo).len(), 2, "nothing ran");
}

// 5. An agent at another commit ------------------------------------------------------------------

/// With `OCU_REPO_COMMIT_OVERRIDE` another commit, `state apply` defers the
/// release's new deploys, and says so.
#[test]
fn an_environment_applied_elsewhere_is_deployed_by_work_at_the_release_commit() {
    let (repo, _) = services(&["svc"]);
    let prod3 = r#"{"name": "prod3", "attributes": {}}"#;
    ocu(
        &repo,
        &["state", "set", "-f", "json", "@/environment/prod3", prod3],
    )
    .success();
    let out = ocu_env(
        &repo,
        &[("OCU_REPO_COMMIT_OVERRIDE", "other")],
        &["state", "apply", "@/environment/prod3", "-q"],
    )
    .success();
    assert!(out.stdout.contains("Deferred: "), "{}", out.stdout);
    assert_eq!(log(&repo).len(), 2);

    // At the release's commit, the outstanding work is found and done.
    ocu(&repo, &["work", "any", "-q"]).success();
    assert_eq!(
        log(&repo).last().map(String::as_str),
        Some("svc up prod3 a")
    );
}

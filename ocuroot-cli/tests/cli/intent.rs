//! Intent, environments, custom state and the `work` commands end to end:
//! `state set` / `state delete` write the intent store, `state diff` lists
//! what differs from state, `state apply` makes state match (running the
//! work that creates), and `work continue` / `work any` (and their
//! `--dryrun`) find and do outstanding work at the current commit.
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

/// Replaces the base fixture's environments.
const ENVIRONMENTS: &str = r#"ocuroot("0.3.0")

register_environment(environment("staging", {"tier": 1}))
register_environment(environment("prod", {"tier": 2}))
"#;

/// A build task that tags its release `v1`, then a deploy to every
/// environment that needs the release's custom state `approval`.
const GATED: &str = r#"
def build():
    mark("build")
    return done(tags=["v1"])

def up(environment, approval):
    mark("up {} {}".format(environment["name"], approval))
    return done(outputs={"approval": approval})

def down(environment, approval):
    mark("down " + environment["name"])
    return done()

phase("build", tasks=[task(build, name="build")])
phase("deploy", tasks=[
    deploy(up=up, down=down, environment=e, inputs={"approval": input(ref="./custom/approval")})
    for e in environments()
])
"#;

/// A task gated on the package's custom state `<pkg>/@/custom/approval`.
const SHIP: &str = r#"
def build():
    mark("build")
    return done()

def ship(approval):
    mark("ship {}".format(approval))
    return done(outputs={"approval": approval})

phase("build", tasks=[task(build, name="build")])
phase("ship", tasks=[task(ship, name="ship", inputs={"approval": input(ref="./@/custom/approval")})])
"#;

/// A service deployed to every environment; its `up` reads the global
/// custom state `flag` (default `a`) and fails in an environment whose
/// attributes say `fails`. `NAME` is replaced by the package's name.
const SERVICE: &str = r#"
def up(environment, flag):
    mark("NAME up {} {}".format(environment["name"], flag))
    if environment["attributes"].get("fails", False):
        fail("boom")
    return done(outputs={"env": environment["name"], "flag": flag})

def down(environment, flag):
    mark("NAME down " + environment["name"])
    return done()

phase("deploy", tasks=[
    deploy(up=up, down=down, environment=e, inputs={"flag": input(ref="@/custom/flag", default="a")})
    for e in environments()
])
"#;

/// A library whose build number counts its releases.
const LIB: &str = r#"
def build(prev):
    mark("lib build {}".format(prev + 1))
    return done(outputs={"n": prev + 1})

task(build, name="build", inputs={"prev": input(ref="./@/call/build#output/n", default=0)})
"#;

/// An app deployed to staging with the library's latest build number.
const APP: &str = r#"
def up(environment, n):
    mark("app up {} {}".format(environment["name"], n))
    return done(outputs={"n": n})

def down(environment, n):
    return done()

deploy(up=up, down=down, environment=environment("staging", {"tier": 1}),
       inputs={"n": ref("./-/lib.ocu.star/@/task/build#output/n")})
"#;

const PKG: &str = "test/-/release.ocu.star";

/// [`SERVICE`] for the package `name`.
fn service(name: &str) -> String {
    SERVICE.replace("NAME", name)
}

/// The package `<name>.ocu.star` of this repository.
fn pkg(name: &str) -> String {
    format!("test/-/{name}.ocu.star")
}

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
    let files: Vec<(String, String)> = names
        .iter()
        .map(|n| (format!("{n}.ocu.star"), service(n)))
        .collect();
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

/// `work continue` finds nothing to do.
fn assert_nothing_to_continue(repo: &Repo) {
    assert_eq!(
        ocu(repo, &["work", "continue", "-q"]).success().stdout,
        "Nothing to do\n"
    );
}

/// How many times `line` is in the log.
fn count(repo: &Repo, line: &str) -> usize {
    log(repo).iter().filter(|l| *l == line).count()
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

// 1. Approval gates --------------------------------------------------------------------------

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

#[test]
fn work_any_applies_an_approval_and_continues_the_release() {
    let (repo, sha) = setup(&[("release.ocu.star", GATED)]);
    let approval = format!("{PKG}/@r1/custom/approval");
    ocu(&repo, &["release", "new", "release.ocu.star", "-q"]).success();
    ocu(&repo, &["state", "set", &approval, "yes"]).success();

    // `work continue` does not look at intent: still blocked.
    let out = ocu(&repo, &["work", "continue", "-q"]).success();
    assert_eq!(out.stdout, "Nothing to do\n");
    assert_eq!(log(&repo), ["build"]);

    let out = ocu(&repo, &["work", "any", "-q"]).success();
    assert!(
        out.stdout
            .starts_with(&format!("Applied {approval} (created)\n")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!("Release {PKG}/@r1: complete")),
        "{}",
        out.stdout
    );
    assert_eq!(sorted_since(&repo, 1), ["up prod yes", "up staging yes"]);
    assert_eq!(
        get(&repo, &format!("{PKG}/@/deploy/prod#release")),
        Some(json!(format!("{PKG}/@r1")))
    );
    assert_eq!(get(&repo, &format!("{PKG}/@r1#commit")), Some(json!(sha)));

    // Nothing is left: a second `work any` does nothing.
    assert_settled(&repo);
    assert_eq!(log(&repo).len(), 3);
}

#[test]
fn package_custom_state_unblocks_a_task_through_work_any() {
    let (repo, _) = setup(&[("release.ocu.star", SHIP)]);
    let approval = format!("{PKG}/@/custom/approval");
    let out = ocu(&repo, &["release", "new", "release.ocu.star"]).success();
    assert!(
        out.stdout.contains(&format!("waiting for {approval}")),
        "{}",
        out.stdout
    );

    ocu(
        &repo,
        &["state", "set", "release.ocu.star/@/custom/approval", "ok"],
    )
    .success();
    let out = ocu(&repo, &["work", "any", "-q"]).success();
    assert!(
        out.stdout
            .contains(&format!("Applied {approval} (created)")),
        "{}",
        out.stdout
    );
    assert_eq!(log(&repo), ["build", "ship ok"]);
    assert_eq!(get(&repo, &approval), Some(json!("ok")));
    assert_eq!(
        get(&repo, &format!("{PKG}/@r1/task/ship#output/approval")),
        Some(json!("ok"))
    );
    assert_eq!(
        statuses(&repo, &format!("{PKG}/@r1/task/ship/1")),
        ["complete"]
    );
}

#[test]
fn an_approval_on_a_tag_lands_on_its_release() {
    let (repo, _) = setup(&[("release.ocu.star", GATED)]);
    ocu(&repo, &["release", "new", "release.ocu.star", "-q"]).success();
    assert!(get(&repo, &format!("{PKG}/@v1")).is_some(), "tagged v1");

    let tagged = format!("{PKG}/@v1/custom/approval");
    ocu(
        &repo,
        &[
            "state",
            "set",
            "release.ocu.star/@v1/custom/approval",
            "yes",
        ],
    )
    .success();
    assert_eq!(diff(&repo), [tagged.as_str()]);
    let out = ocu(&repo, &["state", "apply", &tagged]).success();
    assert!(
        out.stdout
            .starts_with(&format!("Applied {tagged} (created)")),
        "{}",
        out.stdout
    );

    // Written through the tag's link, to the release.
    assert_eq!(
        matches(&repo, &format!("{PKG}/**/custom/*")),
        [format!("{PKG}/@r1/custom/approval")]
    );
    assert_eq!(
        get(&repo, &format!("{PKG}/@r1/custom/approval")),
        Some(json!("yes"))
    );
    assert_eq!(diff(&repo), Vec::<String>::new());

    let out = ocu(&repo, &["release", "continue", "release.ocu.star/@v1"]).success();
    assert!(
        out.stdout
            .starts_with(&format!("Release {PKG}/@r1: complete\n")),
        "{}",
        out.stdout
    );
    assert_eq!(sorted_since(&repo, 1), ["up prod yes", "up staging yes"]);
}

// 2. Deploy intents -----------------------------------------------------------------------------

#[test]
fn deleting_a_deploy_intent_runs_down() {
    let (repo, _) = services(&["svc"]);
    let p = pkg("svc");
    let rel = format!("{p}/@r1");
    let staging = format!("{p}/@/deploy/staging");
    assert_eq!(diff(&repo), Vec::<String>::new());

    ocu(&repo, &["state", "delete", "svc.ocu.star/@/deploy/staging"]).success();
    assert!(get(&repo, &staging).is_some(), "state is unchanged");
    assert_eq!(diff(&repo), [staging.as_str()]);

    // The documented pipeline.
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
    let down = format!("{rel}/deploy/staging/2");
    assert_eq!(statuses(&repo, &down), ["complete"]);
    assert_eq!(get(&repo, &format!("{down}#type")), Some(json!("down")));

    // The other environment is still deployed, and was not touched.
    assert_eq!(
        get(&repo, &format!("{p}/@/deploy/prod#output/env")),
        Some(json!("prod"))
    );
    assert_eq!(count(&repo, "svc up prod a"), 1);
    assert!(matches(&repo, &format!("{rel}/deploy/prod/2")).is_empty());
    assert_settled(&repo);
}

#[test]
fn a_deploy_intent_naming_another_release_redeploys_it() {
    let (repo, _) = services(&["svc"]);
    let p = pkg("svc");
    // A second release at the same commit is now deployed everywhere.
    ocu(&repo, &["release", "new", "svc.ocu.star", "-f", "-q"]).success();
    assert_eq!(
        get(&repo, &format!("{p}/@/deploy/prod#release")),
        Some(json!(format!("{p}/@r2")))
    );
    assert_eq!(log(&repo).len(), 4);

    // Roll prod back to r1, with another flag.
    let mut input = get(&repo, &format!("{p}/@/deploy/prod#input")).expect("deployed inputs");
    input["flag"] = json!("rollback");
    let intent = json!({"release": format!("{p}/@r1"), "input": input}).to_string();
    ocu(
        &repo,
        &[
            "state",
            "set",
            "-f",
            "json",
            "svc.ocu.star/@/deploy/prod",
            &intent,
        ],
    )
    .success();
    assert_eq!(diff(&repo), [format!("{p}/@/deploy/prod")]);
    let out = ocu(&repo, &["state", "apply", &format!("{p}/@/deploy/prod")]).success();
    assert!(
        out.stdout
            .starts_with(&format!("Applied {p}/@/deploy/prod (updated)\n")),
        "{}",
        out.stdout
    );
    assert_eq!(sorted_since(&repo, 4), ["svc up prod rollback"]);
    assert_eq!(
        get(&repo, &format!("{p}/@/deploy/prod#release")),
        Some(json!(format!("{p}/@r1")))
    );
    assert_eq!(
        get(&repo, &format!("{p}/@/deploy/prod#output/flag")),
        Some(json!("rollback"))
    );
    assert_eq!(
        get(&repo, &format!("{p}/@/deploy/staging#release")),
        Some(json!(format!("{p}/@r2")))
    );
    assert_settled(&repo);
    assert_eq!(log(&repo).len(), 5);
}

// 3. Environments -------------------------------------------------------------------------------

/// A new environment, as the original schedules it (its
/// `tests/environments` `create_environment`): `state apply` records
/// `op/check_envs` on the latest release of each package and deploys
/// nothing; `work ops` runs the ops (the deploys become pending, the ops
/// go); `work continue` deploys.
#[test]
fn adding_an_environment_records_ops_that_work_ops_and_continue_deploy() {
    let (repo, _) = services(&["a", "b"]);
    // a's latest release is r2.
    ocu(&repo, &["release", "new", "a.ocu.star", "-f", "-q"]).success();
    let before = log(&repo).len();
    assert_eq!(before, 6);

    let prod3 = r#"{"name": "prod3", "attributes": {"tier": 3}}"#;
    ocu(
        &repo,
        &["state", "set", "-f", "json", "@/environment/prod3", prod3],
    )
    .success();
    assert_eq!(get(&repo, "@/environment/prod3"), None);
    assert_eq!(diff(&repo), ["@/environment/prod3"]);
    assert_eq!(log(&repo).len(), before, "setting intent runs nothing");

    let out = ocu(&repo, &["state", "apply", "@/environment/prod3", "-q"]).success();
    assert!(
        out.stdout
            .starts_with("Applied @/environment/prod3 (created)\n"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("`ocuroot work ops`"), "{}", out.stdout);
    assert_eq!(
        get(&repo, "@/environment/prod3"),
        Some(json!({"name": "prod3", "attributes": {"tier": 3}}))
    );
    assert_eq!(log(&repo).len(), before, "applying deploys nothing yet");
    let ops = [
        format!("{}/@r2/op/check_envs", pkg("a")),
        format!("{}/@r1/op/check_envs", pkg("b")),
    ];
    assert_eq!(matches(&repo, "**/op/*"), ops);
    assert_eq!(diff(&repo), Vec::<String>::new());

    // `work ops --dryrun` lists them; `work continue` does not run them.
    let dry = ocu(&repo, &["work", "ops", "--dryrun"]).success();
    let listed: Vec<String> = serde_json::from_str::<Vec<Value>>(&dry.stdout)
        .unwrap()
        .iter()
        .map(|t| {
            assert_eq!(t["work_type"], "op");
            t["ref"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(listed, ops);
    assert_eq!(
        ocu(&repo, &["work", "continue", "-q"]).success().stdout,
        "Nothing to do\n"
    );
    assert_eq!(matches(&repo, "**/op/*"), ops);

    // `work ops`: the deploys are added as pending runs and the ops go.
    let out = ocu(&repo, &["work", "ops", "-q"]).success();
    for (name, rel) in [("a", "r2"), ("b", "r1")] {
        let p = pkg(name);
        assert!(
            out.stdout.contains(&format!(
                "Ran {p}/@{rel}/op/check_envs: added {p}/@{rel}/deploy/prod3/1 (pending)"
            )),
            "{}",
            out.stdout
        );
        assert_eq!(
            statuses(&repo, &format!("{p}/@{rel}/deploy/prod3/1")),
            ["pending"]
        );
    }
    assert_eq!(matches(&repo, "**/op/*"), Vec::<String>::new());
    assert_eq!(log(&repo).len(), before, "work ops deploys nothing");

    // `work continue` deploys them.
    ocu(&repo, &["work", "continue", "-q"]).success();
    assert_eq!(
        sorted_since(&repo, before),
        ["a up prod3 a", "b up prod3 a"]
    );
    for (name, rel) in [("a", "r2"), ("b", "r1")] {
        let p = pkg(name);
        assert_eq!(
            get(&repo, &format!("{p}/@/deploy/prod3#release")),
            Some(json!(format!("{p}/@{rel}"))),
            "{name}"
        );
        assert_eq!(
            get(&repo, &format!("{p}/@/deploy/prod3#output/env")),
            Some(json!("prod3"))
        );
        assert_eq!(
            get(
                &repo,
                &format!("{p}/@/deploy/prod3#input/environment/attributes/tier")
            ),
            Some(json!(3))
        );
        assert_eq!(
            statuses(&repo, &format!("{p}/@{rel}/deploy/prod3/1")),
            ["complete"]
        );
    }
    assert!(
        matches(&repo, &format!("{}/@r1/deploy/prod3/**", pkg("a"))).is_empty(),
        "a's older release is not deployed"
    );
    // Nothing else ran again (a was deployed by r1, then r2).
    for (line, n) in [
        ("a up staging a", 2),
        ("a up prod a", 2),
        ("b up staging a", 1),
        ("b up prod a", 1),
    ] {
        assert_eq!(count(&repo, line), n, "{line}");
    }
    assert_eq!(diff(&repo), Vec::<String>::new());
    assert_nothing_to_continue(&repo);

    // `work any` does all of it in one command (the original's
    // `create_environment_omnibus`); where the deploys fail, it fails.
    let broken = r#"{"name": "broken", "attributes": {"fails": true}}"#;
    ocu(
        &repo,
        &["state", "set", "-f", "json", "@/environment/broken", broken],
    )
    .success();
    let out = ocu(&repo, &["work", "any", "-q"]).failure();
    assert!(
        out.stdout
            .starts_with("Applied @/environment/broken (created)\n"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("failed"), "{}", out.stdout);
    assert!(out.stdout.contains("boom"), "{}", out.stdout);
    assert_eq!(count(&repo, "a up broken a"), 1);
    assert_eq!(count(&repo, "b up broken a"), 1);
    assert_eq!(get(&repo, &format!("{}/@/deploy/broken", pkg("a"))), None);
    assert_eq!(matches(&repo, "**/op/*"), Vec::<String>::new());
}

/// `work any --comprehensive` repeats until nothing is left at this commit
/// (the deploys of a new environment, and the redeploys of a package that
/// reads them, in one command); it cannot be a dry run.
#[test]
fn work_any_comprehensive_repeats_until_nothing_is_left() {
    let (repo, _) = setup(&[
        ("a.ocu.star", &service("a")),
        (
            "reader.ocu.star",
            r#"
def up(environment, seen):
    mark("reader up {} {}".format(environment["name"], seen))
    return done(outputs={"seen": seen})

def down(environment, seen):
    return done()

[deploy(up=up, down=down, environment=e,
        inputs={"seen": input(ref="./-/a.ocu.star/@/deploy/prod3#output/env", default="none")})
 for e in environments()]
"#,
        ),
    ]);
    for file in ["a.ocu.star", "reader.ocu.star"] {
        ocu(&repo, &["release", "new", file, "-q"]).success();
    }
    assert_eq!(count(&repo, "reader up staging none"), 1);
    let out = ocu(&repo, &["work", "any", "--comprehensive", "--dryrun"]).expect_code(2);
    assert!(out.stderr.contains("cannot be used with"), "{}", out.stderr);

    let prod3 = r#"{"name": "prod3", "attributes": {}}"#;
    ocu(
        &repo,
        &["state", "set", "-f", "json", "@/environment/prod3", prod3],
    )
    .success();
    ocu(&repo, &["work", "any", "--comprehensive", "-q"]).success();
    // Round 1 applies the environment, runs both ops and deploys both
    // packages to prod3 (a first, so the reader's new deploy reads a's
    // output); round 2 redeploys the reader's other deployments, which
    // read that output now too.
    assert_eq!(count(&repo, "a up prod3 a"), 1);
    assert_eq!(count(&repo, "reader up prod3 none"), 0);
    assert_eq!(count(&repo, "reader up staging prod3"), 1);
    assert_eq!(count(&repo, "reader up prod prod3"), 1);
    assert_eq!(count(&repo, "reader up prod3 prod3"), 1);
    assert_settled(&repo);
    assert_eq!(
        ocu(&repo, &["work", "any", "--comprehensive", "-q"])
            .success()
            .stdout,
        "Nothing to do\n"
    );
}

#[test]
fn deleting_an_environment_runs_every_down_in_it() {
    let (repo, _) = services(&["a", "b"]);
    ocu(&repo, &["state", "delete", "@/environment/prod"]).success();
    assert!(get(&repo, "@/environment/prod").is_some());
    assert_eq!(diff(&repo), ["@/environment/prod"]);
    assert_eq!(log(&repo).len(), 4, "deleting intent runs nothing");

    let out = ocu(&repo, &["state", "apply", "@/environment/prod", "-q"]).success();
    assert!(
        out.stdout
            .starts_with("Applied @/environment/prod (deleted)\n"),
        "{}",
        out.stdout
    );
    assert_eq!(sorted_since(&repo, 4), ["a down prod", "b down prod"]);
    assert_eq!(get(&repo, "@/environment/prod"), None);
    assert_eq!(matches(&repo, "@/environment/*"), ["@/environment/staging"]);
    assert!(matches(&repo, "**/@/deploy/prod").is_empty());
    for name in ["a", "b"] {
        let p = pkg(name);
        assert_eq!(get(&repo, &format!("{p}/@/deploy/prod")), None);
        assert_eq!(
            get(&repo, &format!("{p}/@r1/deploy/prod/2#type")),
            Some(json!("down"))
        );
        // The other environment's deployment is untouched.
        assert_eq!(
            get(&repo, &format!("{p}/@/deploy/staging#output/env")),
            Some(json!("staging"))
        );
        assert!(matches(&repo, &format!("{p}/@r1/deploy/staging/2")).is_empty());
    }
    assert_settled(&repo);
    assert_eq!(log(&repo).len(), 6);
}

// 4. Custom state -------------------------------------------------------------------------------

#[test]
fn custom_state_is_set_and_removed() {
    let (repo, _) = setup(&[]);
    ocu(&repo, &["state", "set", "@/custom/test", "1"]).success();
    assert_eq!(get(&repo, "@/custom/test"), None);
    assert_eq!(diff(&repo), ["@/custom/test"]);

    let out = ocu(&repo, &["state", "apply", "@/custom/test"]).success();
    assert_eq!(out.stdout, "Applied @/custom/test (created)\n");
    assert_eq!(get(&repo, "@/custom/test"), Some(json!("1")), "a string");
    assert_eq!(diff(&repo), Vec::<String>::new());

    // As JSON, 1 is a number: another value.
    ocu(&repo, &["state", "set", "-f", "json", "@/custom/test", "1"]).success();
    assert_eq!(diff(&repo), ["@/custom/test"]);
    let out = ocu(&repo, &["state", "apply", "@/custom/test"]).success();
    assert_eq!(out.stdout, "Applied @/custom/test (updated)\n");
    assert_eq!(get(&repo, "@/custom/test"), Some(json!(1)));

    ocu(&repo, &["state", "delete", "@/custom/test"]).success();
    assert_eq!(get(&repo, "@/custom/test"), Some(json!(1)));
    assert_eq!(diff(&repo), ["@/custom/test"]);
    let out = ocu(&repo, &["state", "apply", "@/custom/test"]).success();
    assert_eq!(out.stdout, "Applied @/custom/test (deleted)\n");
    assert_eq!(get(&repo, "@/custom/test"), None);
    assert_eq!(diff(&repo), Vec::<String>::new());
    assert!(matches(&repo, "**/custom/*").is_empty());
}

// 5. Redeploys when inputs change -----------------------------------------------------------

#[test]
fn changed_custom_state_redeploys_with_work_continue() {
    let (repo, sha) = services(&["svc"]);
    let p = pkg("svc");
    assert_nothing_to_continue(&repo);
    assert_eq!(log(&repo).len(), 2);

    ocu(&repo, &["state", "set", "@/custom/flag", "b"]).success();
    // Intent alone changes nothing the deployments read.
    assert_eq!(
        plan(&ocu(&repo, &["work", "continue", "-d"]).success()),
        Vec::<Value>::new()
    );
    ocu(&repo, &["state", "apply", "@/custom/flag", "-q"]).success();
    assert_eq!(log(&repo).len(), 2, "applying custom state runs nothing");

    let todo = plan(&ocu(&repo, &["work", "continue", "-d"]).success());
    let mut refs: Vec<&str> = todo.iter().filter_map(|t| t["ref"].as_str()).collect();
    refs.sort();
    assert_eq!(
        refs,
        [
            format!("{p}/@r1/deploy/prod"),
            format!("{p}/@r1/deploy/staging")
        ]
    );
    for t in &todo {
        assert_eq!(t["work_type"], "run", "{t}");
        assert_eq!(t["commit"], sha.as_str(), "{t}");
        assert!(
            t["reason"].as_str().is_some_and(|r| r.contains("flag")),
            "{t}"
        );
    }

    let out = ocu(&repo, &["work", "continue", "-q"]).success();
    assert!(
        out.stdout
            .starts_with(&format!("Release {p}/@r1: complete\n")),
        "{}",
        out.stdout
    );
    assert_eq!(
        sorted_since(&repo, 2),
        ["svc up prod b", "svc up staging b"]
    );
    for env in ["staging", "prod"] {
        assert_eq!(
            get(&repo, &format!("{p}/@/deploy/{env}#output/flag")),
            Some(json!("b"))
        );
        assert_eq!(
            statuses(&repo, &format!("{p}/@r1/deploy/{env}/2")),
            ["complete"]
        );
    }

    // Done: a second `work continue` has nothing to do.
    assert_eq!(
        plan(&ocu(&repo, &["work", "continue", "-d"]).success()),
        Vec::<Value>::new()
    );
    assert_nothing_to_continue(&repo);
    assert_eq!(log(&repo).len(), 4);
}

#[test]
fn changed_environment_attributes_redeploy_with_work_continue() {
    let (repo, _) = services(&["svc"]);
    let p = pkg("svc");
    let staging = r#"{"name": "staging", "attributes": {"tier": 10}}"#;
    ocu(
        &repo,
        &[
            "state",
            "set",
            "-f",
            "json",
            "@/environment/staging",
            staging,
        ],
    )
    .success();
    let out = ocu(&repo, &["state", "apply", "@/environment/staging", "-q"]).success();
    assert!(
        out.stdout
            .starts_with("Applied @/environment/staging (updated)\n"),
        "{}",
        out.stdout
    );
    assert_eq!(log(&repo).len(), 2);

    ocu(&repo, &["work", "continue", "-q"]).success();
    assert_eq!(sorted_since(&repo, 2), ["svc up staging a"]);
    assert_eq!(
        get(
            &repo,
            &format!("{p}/@/deploy/staging#input/environment/attributes/tier")
        ),
        Some(json!(10))
    );
    assert_nothing_to_continue(&repo);
    assert_eq!(log(&repo).len(), 3);
}

#[test]
fn another_packages_new_output_redeploys_with_work_continue() {
    let (repo, _) = setup(&[("lib.ocu.star", LIB), ("app.ocu.star", APP)]);
    ocu(&repo, &["release", "new", "lib.ocu.star", "-q"]).success();
    ocu(&repo, &["release", "new", "app.ocu.star", "-q"]).success();
    assert_eq!(log(&repo), ["lib build 1", "app up staging 1"]);
    assert_nothing_to_continue(&repo);

    ocu(&repo, &["release", "new", "lib.ocu.star", "-f", "-q"]).success();
    assert_eq!(log(&repo).len(), 3);
    let todo = plan(&ocu(&repo, &["work", "continue", "-d"]).success());
    assert_eq!(todo.len(), 1, "{todo:#?}");
    assert_eq!(todo[0]["ref"], format!("{}/@r1/deploy/staging", pkg("app")));

    ocu(&repo, &["work", "continue", "-q"]).success();
    assert_eq!(
        log(&repo),
        [
            "lib build 1",
            "app up staging 1",
            "lib build 2",
            "app up staging 2"
        ]
    );
    assert_eq!(
        get(&repo, &format!("{}/@/deploy/staging#output/n", pkg("app"))),
        Some(json!(2))
    );
    ocu(&repo, &["work", "continue", "-q"]).success();
    assert_eq!(log(&repo).len(), 4);
}

// 6. --dryrun ---------------------------------------------------------------------------------

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
    let diff_before = diff(&repo);
    assert_eq!(diff_before, [approval.as_str()]);
    let state_before = state_dump(&repo);
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
    // `any`: the intent first, then the same.
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
    assert_eq!(diff(&repo), diff_before);
    assert_eq!(state_dump(&repo), state_before);
    assert!(
        repo.snapshot_dir(".store/") == files_before,
        "the store's files changed"
    );

    // Doing it does all of it.
    ocu(&repo, &["work", "any", "-q"]).success();
    let mut new = log(&repo).split_off(3);
    new.sort();
    assert_eq!(
        new,
        [
            "svc up prod b",
            "svc up staging b",
            "up prod yes",
            "up staging yes"
        ]
    );
    assert_eq!(
        plan(&ocu(&repo, &["work", "any", "-d"]).success()),
        Vec::<Value>::new()
    );
    assert_eq!(diff(&repo), Vec::<String>::new());
}

// 7. Invalid intent -------------------------------------------------------------------------------

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

// 8. Bugs ---------------------------------------------------------------------------------------

#[test]

fn two_intents_for_one_custom_state_converge() {
    let (repo, _) = setup(&[("release.ocu.star", GATED)]);
    ocu(&repo, &["release", "new", "release.ocu.star", "-q"]).success();
    ocu(
        &repo,
        &["state", "set", "release.ocu.star/@r1/custom/approval", "ok"],
    )
    .success();
    // The same state document through the tag, with another value: either
    // refused, or applying everything must leave nothing to do.
    let second = ocu(
        &repo,
        &[
            "state",
            "set",
            "release.ocu.star/@v1/custom/approval",
            "yes",
        ],
    );
    if second.code != 0 {
        return;
    }
    ocu(&repo, &["work", "any", "-q"]).success();
    assert_eq!(log(&repo).len(), 3, "{:?}", log(&repo));
    assert_eq!(diff(&repo), Vec::<String>::new(), "work any left a diff");
    ocu(&repo, &["work", "any", "-q"]).success();
    assert_eq!(log(&repo).len(), 3, "deployed again: {:?}", log(&repo));
}

#[test]

fn an_environment_applied_elsewhere_is_deployed_by_work_at_the_release_commit() {
    let (repo, _) = services(&["svc"]);
    let p = pkg("svc");
    let prod3 = r#"{"name": "prod3", "attributes": {}}"#;
    ocu(
        &repo,
        &["state", "set", "-f", "json", "@/environment/prod3", prod3],
    )
    .success();
    // An agent at another commit applies it: the release is not re-evaluated
    // there, and the output says so.
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
    assert_eq!(count(&repo, "svc up prod3 a"), 1, "{:?}", log(&repo));
    assert_eq!(
        get(&repo, &format!("{p}/@/deploy/prod3#output/env")),
        Some(json!("prod3"))
    );
}

//! Repositories and CI scripts written for the original Ocuroot (0.3) run
//! unchanged: keyword spellings and private functions in package files,
//! package refs as arguments, new environments through `op/check_envs`,
//! and the original's flag spellings.

use serde_json::{Value, json};

use crate::support::{Repo, get, matches, must_get, ocu, ocu_at, ocu_env, out_lines, statuses};

/// `repo.ocu.star` with settings as globals (as the original's push and repl
/// tests write it) and a private trigger.
const REPO: &str = r#"ocuroot("0.3.x")
repo_alias = "compat"
state_store = store.fs(".store")

def _trigger(commit):
    host.shell("mkdir -p out && echo " + commit + " >> out/triggered.txt")

trigger(_trigger)
"#;

const ENVIRONMENTS: &str = r#"ocuroot("0.3.0")
register_environment(env=environment(name="staging", attributes={"tier": "1"}))
"#;

/// Every call spelled with keywords, private functions, `next(fn=_noop)`.
const PACKAGE: &str = r#"ocuroot("0.3.14")

def _build():
    return next(fn=_noop)

def _noop():
    return done(outputs={"built": "yes"})

def _up(environment, built, flag):
    host.shell(command="mkdir -p out && echo up " + environment["name"] + " " + flag + " >> out/log.txt")
    return done(outputs={"env": environment["name"], "flag": flag})

def _down(environment):
    return done()

phase(name="build", tasks=[task(fn=_build, name="build")])
phase(name="deploy", tasks=[
    deploy(environment=e, up=_up, down=_down, inputs={
        "built": input(ref=ref(ref="./task/build#output/built")),
        "flag": input(ref="@/custom/flag", default="a"),
    })
    for e in environments()
])
"#;

fn repo_with(files: &[(&str, &str)]) -> Repo {
    let repo = Repo::new();
    repo.write("repo.ocu.star", REPO);
    repo.write(".gitignore", ".store/\nout/\n");
    for (path, body) in files {
        repo.write(path, body);
    }
    repo.commit("init");
    repo
}

#[test]
fn keyword_spellings_and_private_functions_release_as_written() {
    let repo = repo_with(&[
        ("environments.ocu.star", ENVIRONMENTS),
        ("package.ocu.star", PACKAGE),
    ]);
    let first = repo.git().head().unwrap().target().unwrap().to_string();
    ocu(&repo, &["release", "new", "environments.ocu.star", "-q"]).success();
    ocu(&repo, &["release", "new", "package.ocu.star", "-q"]).success();
    let rel = "compat/-/package.ocu.star/@r1";
    assert_eq!(
        statuses(&repo, &format!("{rel}/task/build/1")),
        ["complete"]
    );
    assert_eq!(
        get(&repo, &format!("{rel}/task/build#output/built")),
        Some(json!("yes"))
    );
    assert_eq!(
        must_get(&repo, "compat/-/package.ocu.star/@/deploy/staging#output"),
        json!({"env": "staging", "flag": "a"})
    );
    assert_eq!(out_lines(&repo, "log.txt"), ["up staging a"]);

    // The private trigger is called for a commit with work: the deployment
    // at the first commit reads custom state changed at the second.
    repo.write("README", "second\n");
    repo.commit("second");
    ocu(&repo, &["state", "set", "@/custom/flag", "b"]).success();
    ocu(&repo, &["state", "apply", "@/custom/flag", "-q"]).success();
    let out = ocu(&repo, &["work", "trigger"]).success();
    assert_eq!(out.stdout, format!("compat @ {first}: triggered\n"));
    assert_eq!(out_lines(&repo, "triggered.txt"), vec![first.clone()]);
    // At that commit, the redeploy.
    ocu_env(
        &repo,
        &[("OCU_REPO_COMMIT_OVERRIDE", &first)],
        &["work", "continue", "-q"],
    )
    .success();
    assert_eq!(
        out_lines(&repo, "log.txt"),
        ["up staging a", "up staging b"]
    );
}

/// The refused forms keep file:line:col and the Starlark stack.
#[test]
fn refused_forms_name_where_they_are() {
    let repo = repo_with(&[(
        "bad.ocu.star",
        "def make():\n    def _inner():\n        return done()\n    return _inner\n\ntask(fn=make(), name=\"build\")\n",
    )]);
    let out = ocu(&repo, &["release", "new", "bad.ocu.star"]).failure();
    assert!(out.stderr.contains("Traceback"), "{}", out.stderr);
    assert!(out.stderr.contains("bad.ocu.star:6:1"), "{}", out.stderr);
    assert!(
        out.stderr.contains("`_inner` is not a module-level def"),
        "{}",
        out.stderr
    );
    assert!(
        matches(&repo, "**")
            .iter()
            .all(|r| !r.contains("bad.ocu.star"))
    );
}

/// The original's `tests/dependencies` layout: a backend and a frontend
/// reading its deployment's outputs.
fn dependencies() -> Repo {
    repo_with(&[
        ("environments.ocu.star", ENVIRONMENTS),
        (
            "backend/package.ocu.star",
            r#"
def up(environment, credential):
    return done(outputs={"credential": credential})

def down(environment):
    return done()

deploy(environment=environment("staging"), up=up, down=down, inputs={
    "credential": input(ref="./@/custom/credential/staging", default="abcd"),
})
"#,
        ),
        (
            "frontend/package.ocu.star",
            r#"
def up(environment, credential):
    return done(outputs={"credential": credential})

def down(environment):
    return done()

deploy(environment=environment("staging"), up=up, down=down, inputs={
    "credential": ref("./-/backend/package.ocu.star/@/deploy/staging#output/credential"),
})
"#,
        ),
    ])
}

const BACKEND: &str = "compat/-/backend/package.ocu.star";
const FRONTEND: &str = "compat/-/frontend/package.ocu.star";
const ALL: &str = "compat/-/all.ocu.star";

#[test]
fn package_refs_are_arguments_of_the_release_commands() {
    let repo = dependencies();
    ocu(&repo, &["release", "new", "environments.ocu.star", "-q"]).success();
    // `./-/...` from the root (the original's test_releases_with_continue):
    // released, blocked on the backend.
    let out = ocu(&repo, &["release", "new", "./-/frontend/package.ocu.star"]).success();
    assert!(out.stdout.contains("blocked"), "{}", out.stdout);
    assert_eq!(get(&repo, &format!("{FRONTEND}/@/deploy/staging")), None);
    // `//...` from another package's directory (test_releases_with_rootpath).
    ocu_at(
        &repo,
        "frontend",
        &["release", "new", "//backend/package.ocu.star", "-q"],
    )
    .success();
    assert_eq!(
        get(
            &repo,
            &format!("{BACKEND}/@/deploy/staging#output/credential")
        ),
        Some(json!("abcd"))
    );
    // A plain path from a subdirectory, as before.
    assert!(
        ocu_at(&repo, "backend", &["release", "new", "package.ocu.star"])
            .failure()
            .stderr
            .contains("already"),
    );
    ocu(&repo, &["work", "continue", "-q"]).success();
    assert_eq!(
        get(
            &repo,
            &format!("{FRONTEND}/@/deploy/staging#output/credential")
        ),
        Some(json!("abcd"))
    );

    // lint, continue and retry take them too, and file paths.
    let lint = ocu_at(
        &repo,
        "backend",
        &[
            "release",
            "lint",
            "//frontend/package.ocu.star",
            "--format",
            "json",
        ],
    )
    .success();
    let lint: Value = serde_json::from_str(&lint.stdout).unwrap();
    assert_eq!(lint["file"], "frontend/package.ocu.star");
    for (dir, arg) in [
        ("backend", "//frontend/package.ocu.star/@r1"),
        ("", "./-/frontend/package.ocu.star/@r1"),
        ("backend", "../frontend/package.ocu.star/@r1"),
        ("frontend", "package.ocu.star/@r1"),
    ] {
        let out = ocu_at(&repo, dir, &["release", "continue", arg, "-q"]).success();
        assert!(
            out.stdout
                .starts_with(&format!("Release {FRONTEND}/@r1: complete")),
            "{arg}: {}",
            out.stdout
        );
    }
    for (dir, arg) in [
        ("frontend", "//backend/package.ocu.star"),
        ("", "./-/backend/package.ocu.star/@r1"),
        ("frontend", "../backend/package.ocu.star"),
    ] {
        let out = ocu_at(&repo, dir, &["release", "retry", arg, "-q"]).failure();
        assert!(
            out.stderr.contains("no failed work to retry"),
            "{arg}: {}",
            out.stderr
        );
        assert!(out.stderr.contains(BACKEND), "{arg}: {}", out.stderr);
    }

    // Refs that name no package file here are clear errors.
    let out = ocu(&repo, &["release", "new", "//missing/package.ocu.star"]).failure();
    assert!(
        out.stderr.contains(
            "//missing/package.ocu.star: there is no package file missing/package.ocu.star"
        ),
        "{}",
        out.stderr
    );
    let out = ocu(
        &repo,
        &["release", "new", "other/-/backend/package.ocu.star"],
    )
    .failure();
    assert!(
        out.stderr.contains("is a package of repository other"),
        "{}",
        out.stderr
    );
    let out = ocu(&repo, &["release", "new", "//backend/package.ocu.star/@r1"]).failure();
    assert!(
        out.stderr.contains("expected a package file"),
        "{}",
        out.stderr
    );
}

/// The original's `tests/environments`: a new environment is recorded as
/// `op/check_envs` on the latest release of each package; `release new` of
/// an environments file does the same; `--cascade` deploys in one command.
#[test]
fn new_environments_are_scheduled_as_check_envs_ops() {
    let repo = dependencies();
    // A package deploying to every environment, beside two that deploy to
    // staging only.
    repo.write(
        "all.ocu.star",
        "def up(environment):\n    return done(outputs={\"env\": environment[\"name\"]})\n\n\
         def down(environment):\n    return done()\n\n\
         [deploy(up=up, down=down, environment=e) for e in environments()]\n",
    );
    repo.commit("all");
    for file in [
        "environments.ocu.star",
        "all.ocu.star",
        "backend/package.ocu.star",
        "frontend/package.ocu.star",
    ] {
        ocu(&repo, &["release", "new", file, "-q"]).success();
    }

    // The -f=json spelling of the original's scripts.
    ocu(
        &repo,
        &[
            "state",
            "set",
            "-f=json",
            "@/environment/production3",
            r#"{"name": "production3", "attributes": {}}"#,
        ],
    )
    .success();
    ocu(
        &repo,
        &["state", "apply", "@/environment/production3", "-q"],
    )
    .success();
    // The exact refs the original writes, which CI scripts check for.
    assert_eq!(
        matches(&repo, "**/op/check_envs"),
        [
            format!("{ALL}/@r1/op/check_envs"),
            format!("{BACKEND}/@r1/op/check_envs"),
            format!("{FRONTEND}/@r1/op/check_envs"),
        ]
    );
    assert_eq!(get(&repo, &format!("{ALL}/@/deploy/production3")), None);
    // The staging-only packages' ops add nothing; all's adds its deploy.
    let out = ocu(&repo, &["work", "ops"]).success();
    assert!(
        out.stdout
            .contains(&format!("Ran {BACKEND}/@r1/op/check_envs: no new deploys")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!(
            "Ran {ALL}/@r1/op/check_envs: added {ALL}/@r1/deploy/production3/1 (pending)"
        )),
        "{}",
        out.stdout
    );
    assert_eq!(matches(&repo, "**/op/check_envs"), Vec::<String>::new());
    ocu(&repo, &["work", "continue", "-q"]).success();
    assert_eq!(
        get(&repo, &format!("{ALL}/@/deploy/production3#output/env")),
        Some(json!("production3"))
    );

    // An environments file registering a new environment records ops too;
    // the one registered again as it is, nothing.
    repo.write(
        "environments.ocu.star",
        &format!("{ENVIRONMENTS}register_environment(environment(\"qa\"))\n"),
    );
    let out = ocu(
        &repo,
        &["release", "new", "environments.ocu.star", "--force", "-q"],
    )
    .success();
    assert!(
        out.stdout.starts_with(
            "Registered environments: staging, qa\nApplied @/environment/qa (created)\n"
        ),
        "{}",
        out.stdout
    );
    assert_eq!(matches(&repo, "**/op/check_envs").len(), 3);
    // --cascade runs the ops and what they add, in one command. An op is
    // per release, so the ops recorded again for prod also add qa's deploy.
    ocu(
        &repo,
        &[
            "state",
            "set",
            "-f",
            "json",
            "@/environment/prod",
            r#"{"name": "prod", "attributes": {}}"#,
        ],
    )
    .success();
    ocu(
        &repo,
        &["state", "apply", "@/environment/prod", "--cascade", "-q"],
    )
    .success();
    for env in ["prod", "qa"] {
        assert_eq!(
            get(&repo, &format!("{ALL}/@/deploy/{env}#output/env")),
            Some(json!(env))
        );
    }
    assert_eq!(matches(&repo, "**/op/check_envs"), Vec::<String>::new());
    assert_eq!(
        ocu(&repo, &["work", "any", "-q"]).success().stdout,
        "Nothing to do\n"
    );
}

/// The original's flag spellings and exit codes.
#[test]
fn original_flags_and_exit_codes() {
    let repo = dependencies();
    ocu(&repo, &["release", "new", "environments.ocu.star", "-q"]).success();
    ocu(&repo, &["release", "new", "backend/package.ocu.star", "-q"]).success();

    // state get of a missing ref: exit 1, and the ref on stderr.
    let out = ocu(&repo, &["state", "get", &format!("{BACKEND}/@r9")]).failure();
    assert!(
        out.stderr.contains(&format!("{BACKEND}/@r9")),
        "{}",
        out.stderr
    );

    // state match -l / --no-links leaves out links and what is under them.
    let all = matches(&repo, &format!("{BACKEND}/@/**"));
    assert!(
        all.contains(&format!("{BACKEND}/@/deploy/staging")),
        "{all:?}"
    );
    for flag in ["-l", "--no-links"] {
        let out = ocu(&repo, &["state", "match", flag, &format!("{BACKEND}/**")]).success();
        assert!(!out.stdout.contains("/@/"), "{}", out.stdout);
        assert!(
            out.stdout
                .contains(&format!("{BACKEND}/@r1/deploy/staging\n")),
            "{}",
            out.stdout
        );
    }

    // state set -f starlark evaluates an expression; `-` reads stdin.
    ocu(
        &repo,
        &[
            "state",
            "set",
            "-f",
            "starlark",
            "@/custom/config",
            r#"{"n": 1 + 1, "env": "x".upper()}"#,
        ],
    )
    .success();
    ocu(&repo, &["state", "apply", "@/custom/config", "-q"]).success();
    assert_eq!(
        get(&repo, "@/custom/config"),
        Some(json!({"n": 2, "env": "X"}))
    );
    let out = ocu(
        &repo,
        &["state", "set", "-f", "starlark", "@/custom/bad", "1 +"],
    )
    .expect_code(1);
    assert!(out.stderr.contains("state set"), "{}", out.stderr);
    let mut cmd = crate::support::ocuroot_in(repo.path());
    cmd.args(["state", "set", "@/custom/piped", "-"])
        .write_stdin("from stdin\n");
    crate::support::run(cmd).success();
    ocu(&repo, &["state", "apply", "@/custom/piped", "-q"]).success();
    assert_eq!(get(&repo, "@/custom/piped"), Some(json!("from stdin")));

    // --comprehensive and --dryrun are mutually exclusive, as in the original.
    let out = ocu(&repo, &["work", "any", "--comprehensive", "-d"]).expect_code(2);
    assert!(out.stderr.contains("cannot be used with"), "{}", out.stderr);
}

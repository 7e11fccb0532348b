//! Dependencies across packages end to end: `work cascade` and `--cascade`
//! redeploy the dependants of a changed deployment at their own commit (in
//! a git worktree, or a clone of another repository from a bare remote on
//! disk), cycles are refused naming every package, a redeploy that keeps
//! failing is given up after the bound, `plan` explains and renders the
//! work, and `work trigger` calls `repo.ocu.star`'s trigger.
//!
//! Most tests use `examples/dependencies`: a backend whose deployments
//! publish a URL built from this commit's `backend/api-version.txt`, and a
//! frontend whose deployments read that URL and output the `bundle.txt` of
//! their own checkout, which proves at which commit they ran.

use std::fs;
use std::path::Path;

use serde_json::{Value, json};

use crate::support::{Output, Repo, get, matches, ocu, ocu_env, statuses};

const BACKEND: &str = "dependencies/-/backend/release.ocu.star";
const FRONTEND: &str = "dependencies/-/frontend/release.ocu.star";

/// `examples/dependencies` committed, with the environments, the backend
/// and the frontend released at that first commit. Returns the commit.
fn released_example() -> (Repo, String) {
    let repo = Repo::example("dependencies");
    let first = repo.git().head().unwrap().target().unwrap().to_string();
    release_all(&repo);
    assert_eq!(frontend(&repo, "staging")["bundle"], "frontend-1");
    (repo, first)
}

/// Release the environments, the backend and the frontend.
fn release_all(repo: &Repo) {
    for file in [
        "environments.ocu.star",
        "backend/release.ocu.star",
        "frontend/release.ocu.star",
    ] {
        ocu(repo, &["release", "new", file, "-q"]).success();
    }
}

/// `examples/dependencies` whose `repo.ocu.star` also has `trigger` calling
/// `on_commit` as `body` defines it, committed and released. Returns the
/// commit.
fn released_with_trigger(body: &str) -> (Repo, String) {
    let repo = Repo::example("dependencies");
    let mut config = fs::read_to_string(repo.path().join("repo.ocu.star")).unwrap();
    config.push_str(&format!(
        "\ndef on_commit(commit):\n{body}\ntrigger(on_commit)\n"
    ));
    repo.write("repo.ocu.star", &config);
    let first = repo.commit("trigger").to_string();
    release_all(&repo);
    (repo, first)
}

/// Change both packages in a second commit; returns it.
fn second_commit(repo: &Repo) -> String {
    repo.write("backend/api-version.txt", "v2\n");
    repo.write("frontend/bundle.txt", "frontend-2\n");
    repo.commit("second").to_string()
}

/// The outputs of the frontend's deployment to `env`.
#[track_caller]
fn frontend(repo: &Repo, env: &str) -> Value {
    get(repo, &format!("{FRONTEND}/@/deploy/{env}#output"))
        .unwrap_or_else(|| panic!("the frontend is not deployed to {env}"))
}

/// No worktree of ours is left: not on disk, not registered with git, no
/// temporary branch.
#[track_caller]
fn assert_no_worktrees(repo: &Repo) {
    let area = repo.path().join(".git/ocuroot/worktrees");
    let left: Vec<_> = fs::read_dir(&area)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "worktree directories left: {left:?}");
    let registered = repo.git().worktrees().unwrap();
    assert_eq!(registered.len(), 0, "worktrees still registered");
    let branches: Vec<String> = repo
        .git()
        .branches(None)
        .unwrap()
        .flatten()
        .filter_map(|(b, _)| b.name().ok().flatten().map(str::to_string))
        .filter(|n| n.starts_with("ocuroot-"))
        .collect();
    assert!(branches.is_empty(), "branches left: {branches:?}");
}

/// The `--dryrun` output, parsed.
#[track_caller]
fn todos(out: &Output) -> Vec<Value> {
    let v: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("--dryrun printed invalid JSON ({e}):\n{}", out.stdout));
    v.as_array().expect("an array").clone()
}

#[test]
fn work_cascade_redeploys_the_frontend_at_its_own_commit() {
    let (repo, first) = released_example();
    let second = second_commit(&repo);

    // A new backend release alone leaves the frontend as it was.
    ocu(&repo, &["release", "new", "backend/release.ocu.star", "-q"]).success();
    let before = frontend(&repo, "staging");
    assert_eq!(before["backend_url"], "https://api.staging.example.com/v1");
    // `work continue` works at this commit only: nothing of the frontend.
    assert_eq!(
        ocu(&repo, &["work", "continue", "-q"]).success().stdout,
        "Nothing to do\n"
    );

    let planned = todos(&ocu(&repo, &["work", "cascade", "--dryrun"]).success());
    assert_eq!(
        planned,
        ["production", "staging"]
            .iter()
            .map(|env| json!({
                "ref": format!("{FRONTEND}/@r1/deploy/{env}"),
                "work_type": "run",
                "commit": first,
                "reason": "inputs changed: backend_url",
            }))
            .collect::<Vec<_>>()
    );

    let out = ocu(&repo, &["work", "cascade", "-q"]).success();
    assert!(
        out.stdout.contains(&format!("{FRONTEND}/@r1: complete")),
        "{}",
        out.stdout
    );
    for env in ["staging", "production"] {
        let now = frontend(&repo, env);
        // Run at the first commit (its bundle), with the new backend URL.
        assert_eq!(now["bundle"], "frontend-1", "{env}");
        assert_eq!(
            now["backend_url"],
            format!("https://api.{env}.example.com/v2"),
            "{env}"
        );
        assert_eq!(
            statuses(&repo, &format!("{FRONTEND}/@r1/deploy/{env}/2")),
            ["complete"]
        );
    }
    // The checkout was not touched and is still at the second commit.
    assert_eq!(
        fs::read_to_string(repo.path().join("frontend/bundle.txt")).unwrap(),
        "frontend-2\n"
    );
    assert_eq!(
        repo.git().head().unwrap().target().unwrap().to_string(),
        second
    );
    assert_no_worktrees(&repo);

    assert_eq!(
        ocu(&repo, &["work", "cascade", "-q"]).success().stdout,
        "Nothing to do\n"
    );
}

#[test]
fn release_new_cascade_redeploys_in_one_command_and_leaves_unrelated_intent() {
    let (repo, _) = released_example();
    second_commit(&repo);
    ocu(&repo, &["state", "set", "@/custom/unrelated", "x"]).success();

    let out = ocu(
        &repo,
        &[
            "release",
            "new",
            "backend/release.ocu.star",
            "--cascade",
            "-q",
        ],
    )
    .success();
    assert!(
        out.stdout.contains(&format!("{BACKEND}/@r2: complete")),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("Cascade:"), "{}", out.stdout);
    let now = frontend(&repo, "staging");
    assert_eq!(now["bundle"], "frontend-1");
    assert_eq!(now["backend_url"], "https://api.staging.example.com/v2");
    assert_no_worktrees(&repo);

    // Intent nobody applied is left to `work cascade`.
    assert_eq!(get(&repo, "@/custom/unrelated"), None);
    let out = ocu(&repo, &["work", "cascade", "-q"]).success();
    assert!(
        out.stdout.contains("Applied @/custom/unrelated (created)"),
        "{}",
        out.stdout
    );
    assert_eq!(get(&repo, "@/custom/unrelated"), Some(json!("x")));
}

#[test]
fn state_apply_cascade_follows_custom_state_to_dependants() {
    let repo = Repo::example("dependencies");
    // The backend's URL gets a region from custom state.
    let path = repo.path().join("backend/release.ocu.star");
    let text = fs::read_to_string(&path).unwrap().replace(
        r#"inputs={"api_version": input(ref="./call/build#output/api_version")},"#,
        r#"inputs={"api_version": input(ref="./call/build#output/api_version"),
                "region": input(ref="@/custom/region", default="eu")},"#,
    );
    let text = text
        .replace("def up(environment, api_version):", "def up(environment, api_version, region):")
        .replace(
            r#"url = "https://api.{}.example.com/{}".format(environment["name"], api_version)"#,
            r#"url = "https://api.{}.{}.example.com/{}".format(region, environment["name"], api_version)"#,
        );
    fs::write(&path, text).unwrap();
    repo.commit("region");
    release_all(&repo);
    assert_eq!(
        frontend(&repo, "staging")["backend_url"],
        "https://api.eu.staging.example.com/v1"
    );
    ocu(&repo, &["state", "set", "@/custom/region", "us"]).success();
    ocu(
        &repo,
        &["state", "apply", "@/custom/region", "--cascade", "-q"],
    )
    .success();
    // Backend redeployed with the region, then the frontend with its URL.
    assert_eq!(
        frontend(&repo, "staging")["backend_url"],
        "https://api.us.staging.example.com/v1"
    );
    assert_eq!(
        statuses(&repo, &format!("{FRONTEND}/@r1/deploy/staging/2")),
        ["complete"]
    );
}

#[test]
fn a_dependant_in_another_repository_is_redeployed_from_a_clone() {
    let shared = tempfile::tempdir().unwrap();
    let store = shared.path().canonicalize().unwrap().join("store");
    let config = |alias: &str, extra: &str| {
        format!(
            "ocuroot(\"0.3.0\")\nrepo_alias(\"{alias}\")\nstore.set(store.fs(\"{}\"))\n{extra}",
            store.display()
        )
    };

    // The backend lives in `upstream`.
    let upstream = Repo::example("dependencies");
    upstream.write("repo.ocu.star", &config("upstream", ""));
    upstream.commit("upstream");

    // The frontend lives in `downstream`, published to a bare repository.
    let downstream = Repo::new();
    let bare = shared.path().canonicalize().unwrap().join("downstream.git");
    let bare_url = bare.display().to_string();
    // remotes() is tried in order: the first does not exist.
    downstream.write(
        "repo.ocu.star",
        &config(
            "downstream",
            &format!(
                "remotes([\"{}/missing.git\", \"{bare_url}\"])\n",
                shared.path().display()
            ),
        ),
    );
    let frontend_src = fs::read_to_string(upstream.path().join("frontend/release.ocu.star"))
        .unwrap()
        .replace("dependencies/-/backend/", "upstream/-/backend/");
    downstream.write("frontend.ocu.star", &frontend_src);
    downstream.write("bundle.txt", "downstream-1\n");
    downstream.write(".gitignore", "out/\n");
    let first = downstream.commit("frontend").to_string();
    git2::Repository::init_bare(&bare).unwrap();
    let mut remote = downstream.git().remote("origin", &bare_url).unwrap();
    remote
        .push(&["refs/heads/master:refs/heads/master"], None)
        .or_else(|_| remote.push(&["refs/heads/main:refs/heads/main"], None))
        .unwrap();

    ocu(
        &upstream,
        &["release", "new", "environments.ocu.star", "-q"],
    )
    .success();
    ocu(
        &upstream,
        &["release", "new", "backend/release.ocu.star", "-q"],
    )
    .success();
    ocu(&downstream, &["release", "new", "frontend.ocu.star", "-q"]).success();
    let deployed = "downstream/-/frontend.ocu.star/@/deploy/staging#output";
    assert_eq!(
        get(&upstream, deployed).unwrap()["backend_url"],
        "https://api.staging.example.com/v1"
    );

    // The downstream checkout moves on (and then disappears): the cascade
    // must clone the release's commit from the remote.
    downstream.write("bundle.txt", "downstream-2\n");
    downstream.commit("later");
    fs::remove_dir_all(downstream.path()).unwrap();

    upstream.write("backend/api-version.txt", "v2\n");
    upstream.commit("v2");
    let out = ocu(
        &upstream,
        &[
            "release",
            "new",
            "backend/release.ocu.star",
            "--cascade",
            "-q",
        ],
    )
    .success();
    assert!(
        out.stdout
            .contains("downstream/-/frontend.ocu.star/@r1: complete"),
        "{}",
        out.stdout
    );
    let now = get(&upstream, deployed).unwrap();
    assert_eq!(now["bundle"], "downstream-1");
    assert_eq!(now["backend_url"], "https://api.staging.example.com/v2");
    // What the cascade cloned from: remotes() first, the git remotes too.
    let recorded = get(&upstream, &format!("downstream/-/repo.ocu.star/@{first}")).unwrap();
    assert_eq!(recorded["Remotes"], json!([bare_url]));
    assert_eq!(recorded["remotes"].as_array().unwrap().len(), 2);
    let clones = upstream.path().join(".git/ocuroot/clones");
    assert_eq!(
        fs::read_dir(&clones).unwrap().count(),
        0,
        "clones are removed"
    );

    // The same through `work cascade` after another backend release.
    upstream.write("backend/api-version.txt", "v3\n");
    upstream.commit("v3");
    ocu(
        &upstream,
        &["release", "new", "backend/release.ocu.star", "-q"],
    )
    .success();
    ocu(&upstream, &["work", "cascade", "-q"]).success();
    let now = get(&upstream, deployed).unwrap();
    assert_eq!(now["bundle"], "downstream-1");
    assert_eq!(now["backend_url"], "https://api.staging.example.com/v3");
}

#[test]
fn a_dependency_cycle_across_three_packages_is_refused_naming_each() {
    let repo = Repo::example("dependencies");
    // a reads c, b reads a, c reads b.
    for (name, reads) in [("a", "c"), ("b", "a"), ("c", "b")] {
        repo.write(
            &format!("{name}.ocu.star"),
            &format!(
                r#"ocuroot("0.3.0")

def up(environment, other):
    return done(outputs={{"url": "{name}"}})

def down(environment):
    return done()

deploy(up=up, down=down, environment=environment("staging"),
       inputs={{"other": input(ref="dependencies/-/{reads}.ocu.star/@/deploy/staging#output/url")}})
"#
            ),
        );
    }
    repo.commit("cycle");
    ocu(&repo, &["release", "new", "environments.ocu.star", "-q"]).success();
    ocu(&repo, &["release", "new", "a.ocu.star", "-q"]).success();
    ocu(&repo, &["release", "new", "b.ocu.star", "-q"]).success();
    let out = ocu(&repo, &["release", "new", "c.ocu.star", "-q"]).failure();
    for name in ["a", "b", "c"] {
        assert!(
            out.stderr
                .contains(&format!("dependencies/-/{name}.ocu.star deploy staging")),
            "{name} is not named:\n{}",
            out.stderr
        );
    }
    assert!(out.stderr.contains("dependency cycle"), "{}", out.stderr);
    assert!(out.stderr.contains("back to the first"), "{}", out.stderr);
    assert_eq!(
        matches(&repo, "dependencies/-/c.ocu.star/**"),
        Vec::<String>::new()
    );
}

#[test]
fn a_redeploy_that_keeps_failing_is_given_up_after_the_bound() {
    let repo = Repo::example("dependencies");
    // The frontend cannot work with API v2.
    let path = repo.path().join("frontend/release.ocu.star");
    let text = fs::read_to_string(&path).unwrap().replace(
        "    bundle = host.shell",
        "    if backend_url.endswith(\"/v2\"):\n        fail(\"API v2 is not supported\")\n    bundle = host.shell",
    );
    fs::write(&path, text).unwrap();
    repo.commit("fragile");
    release_all(&repo);
    second_commit(&repo);

    let out = ocu(
        &repo,
        &[
            "release",
            "new",
            "backend/release.ocu.star",
            "--cascade",
            "--max-attempts",
            "2",
            "-q",
        ],
    )
    .failure();
    for env in ["production", "staging"] {
        let deployment = format!("{FRONTEND}/@r1/deploy/{env}");
        assert!(
            out.stdout.contains(&format!(
                "Stopped: {deployment}: its redeploy failed 2 times, so the cascade stops retrying it (run 3: fail: API v2 is not supported at frontend/release.ocu.star:11:9)"
            )),
            "{}",
            out.stdout
        );
        assert_eq!(
            statuses(&repo, &format!("{deployment}/2")),
            ["failed_retried"]
        );
        assert_eq!(statuses(&repo, &format!("{deployment}/3")), ["failed"]);
        assert_eq!(
            matches(&repo, &format!("{deployment}/4/**")),
            Vec::<String>::new()
        );
        // The deployment is still the one that worked.
        assert_eq!(
            frontend(&repo, env)["backend_url"],
            format!("https://api.{env}.example.com/v1")
        );
    }
    assert_no_worktrees(&repo);

    // The plan says what the failed redeploys wait for.
    let plan: Value =
        serde_json::from_str(&ocu(&repo, &["plan", "--format", "json"]).success().stdout).unwrap();
    let waiting: Vec<&Value> = plan["work"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t.get("waits_for").is_some())
        .collect();
    assert_eq!(waiting.len(), 2, "{plan:#}");
    assert!(
        waiting[0]["waits_for"][0]
            .as_str()
            .unwrap()
            .starts_with("a retry of "),
        "{plan:#}"
    );
}

/// Run every release of an example's checkout (with its `bin/` first on
/// `PATH`) and render `plan`.
fn example_plan(name: &str, files: &[&str], format: &str) -> String {
    let repo = Repo::example(name);
    let mut dirs = vec![repo.path().join("bin")];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    let path = std::env::join_paths(dirs).unwrap();
    let path = path.to_str().unwrap();
    for file in files {
        ocu_env(&repo, &[("PATH", path)], &["release", "new", file, "-q"]).success();
    }
    ocu(&repo, &["plan", "--format", format]).success().stdout
}

#[test]
fn plan_mermaid_of_the_examples() {
    let quickstart = example_plan(
        "quickstart",
        &["environments.ocu.star", "release.ocu.star"],
        "mermaid",
    );
    let dependencies = example_plan(
        "dependencies",
        &[
            "environments.ocu.star",
            "backend/release.ocu.star",
            "frontend/release.ocu.star",
        ],
        "mermaid",
    );
    insta::with_settings!({ snapshot_path => "../snapshots" }, {
        insta::assert_snapshot!("plan_mermaid_quickstart", quickstart);
        insta::assert_snapshot!("plan_mermaid_dependencies", dependencies);
    });
    let dot = example_plan("dependencies", &["environments.ocu.star"], "dot");
    assert!(dot.starts_with("digraph"), "{dot}");
}

#[test]
fn plan_explains_ready_and_waiting_work_in_dependency_order() {
    let (repo, first) = released_example();
    assert_eq!(ocu(&repo, &["plan"]).success().stdout, "Nothing to do\n");
    second_commit(&repo);
    // A new backend: the frontend's deployments (at the first commit) are
    // to be redeployed.
    ocu(&repo, &["release", "new", "backend/release.ocu.star", "-q"]).success();
    let text = ocu(&repo, &["plan"]).success().stdout;
    let short = &first[..12];
    assert_eq!(
        text,
        format!(
            "ready    run    {FRONTEND}/@r1/deploy/production @ {short}: inputs changed: backend_url\n\
             ready    run    {FRONTEND}/@r1/deploy/staging @ {short}: inputs changed: backend_url\n"
        )
    );
}

#[test]
fn work_trigger_calls_the_repo_trigger_for_each_commit_with_work() {
    let (repo, first) = released_with_trigger(
        "    host.shell(\"mkdir -p out/triggers && touch out/triggers/\" + commit)\n    print(\"scheduled \" + commit)\n",
    );
    assert_eq!(
        ocu(&repo, &["work", "trigger"]).success().stdout,
        "No commits with outstanding work\n"
    );
    second_commit(&repo);
    ocu(&repo, &["release", "new", "backend/release.ocu.star", "-q"]).success();

    let dry = ocu(&repo, &["work", "trigger", "--dryrun", "--json"]).success();
    let dry: Value = serde_json::from_str(&dry.stdout).unwrap();
    assert_eq!(
        dry,
        json!([{"repo": "dependencies", "commit": first, "status": "planned"}])
    );
    assert!(!repo.path().join("out/triggers").exists());

    let out = ocu(&repo, &["work", "trigger"]).success();
    assert_eq!(
        out.stdout,
        format!("dependencies @ {first}: triggered\n  scheduled {first}\n")
    );
    assert!(Path::new(&repo.path().join("out/triggers").join(&first)).is_file());
}

#[test]
fn work_any_calls_the_triggers_of_commits_left_with_work() {
    let (repo, first) = released_with_trigger("    print(\"scheduled \" + commit)\n");
    // Nothing done: no triggers.
    assert_eq!(
        ocu(&repo, &["work", "any", "-q"]).success().stdout,
        "Nothing to do\n"
    );
    second_commit(&repo);
    ocu(&repo, &["release", "new", "backend/release.ocu.star", "-q"]).success();
    ocu(&repo, &["state", "set", "@/custom/x", "1"]).success();
    // Work here (the intent), then the frontend's commit is triggered.
    let out = ocu(&repo, &["work", "any", "-q"]).success();
    assert_eq!(
        out.stdout,
        format!(
            "Applied @/custom/x (created)\ndependencies @ {first}: triggered\n  scheduled {first}\n"
        )
    );
}

#[test]
fn a_failing_trigger_is_reported_and_exits_1() {
    let (repo, first) = released_with_trigger("    fail(\"no CI for \" + commit)\n");
    second_commit(&repo);
    ocu(&repo, &["release", "new", "backend/release.ocu.star", "-q"]).success();
    let out = ocu(&repo, &["work", "trigger"]).failure();
    assert!(
        out.stdout
            .starts_with(&format!("dependencies @ {first}: trigger failed: ")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!("no CI for {first}")),
        "{}",
        out.stdout
    );
}

#[test]
fn deleting_an_environment_with_cascade_undeploys_at_each_commit_and_removes_it() {
    let (repo, _) = released_example();
    second_commit(&repo);
    ocu(&repo, &["state", "delete", "@/environment/production"]).success();
    let out = ocu(
        &repo,
        &[
            "state",
            "apply",
            "@/environment/production",
            "--cascade",
            "-q",
        ],
    )
    .success();
    assert!(
        out.stdout
            .contains("Applied @/environment/production (deleted)"),
        "{}",
        out.stdout
    );
    for pkg in [BACKEND, FRONTEND] {
        assert_eq!(
            get(&repo, &format!("{pkg}/@/deploy/production")),
            None,
            "{pkg}"
        );
        assert_eq!(
            statuses(&repo, &format!("{pkg}/@r1/deploy/production/2")),
            ["complete"],
            "{pkg}"
        );
    }
    assert_eq!(get(&repo, "@/environment/production"), None);
    assert!(get(&repo, &format!("{FRONTEND}/@/deploy/staging")).is_some());
    assert_no_worktrees(&repo);
    assert_eq!(
        ocu(&repo, &["work", "cascade", "-q"]).success().stdout,
        "Nothing to do\n"
    );
}

#[test]
fn an_older_releases_deploy_does_not_roll_back_a_newer_one() {
    let repo = Repo::example("dependencies");
    repo.write(
        "gated.ocu.star",
        r#"ocuroot("0.3.0")

def up(environment, approval):
    return done(outputs={"approval": approval})

def down(environment):
    return done()

deploy(up=up, down=down, environment=environment("staging"),
       inputs={"approval": input(ref="./custom/approval")})
"#,
    );
    repo.commit("gated");
    ocu(&repo, &["release", "new", "environments.ocu.star", "-q"]).success();
    let pkg = "dependencies/-/gated.ocu.star";
    ocu(&repo, &["release", "new", "gated.ocu.star", "-q"]).success();
    ocu(
        &repo,
        &["release", "new", "gated.ocu.star", "--force", "-q"],
    )
    .success();
    for (rel, value) in [("r2", "yes-2"), ("r1", "yes-1")] {
        let approval = format!("{pkg}/@{rel}/custom/approval");
        ocu(&repo, &["state", "set", &approval, value]).success();
        ocu(&repo, &["state", "apply", &approval, "-q"]).success();
        ocu(&repo, &["work", "continue", "-q"]).success();
    }
    // r1's deploy is ready now, but r2 is deployed: it stays pending.
    assert_eq!(
        get(&repo, &format!("{pkg}/@/deploy/staging#output/approval")),
        Some(json!("yes-2"))
    );
    assert_eq!(
        statuses(&repo, &format!("{pkg}/@r1/deploy/staging/1")),
        ["pending"]
    );
    let plan = ocu(&repo, &["plan"]).success().stdout;
    assert!(
        plan.contains(&format!("waiting  run    {pkg}/@r1/deploy/staging/1 @ "))
            && plan.contains(&format!(
                "waits for a deploy intent naming it: {pkg}/@r2 is deployed already"
            )),
        "{plan}"
    );
}

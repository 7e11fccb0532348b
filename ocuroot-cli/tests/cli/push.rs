//! `ocuroot push`: the package files changed since the last push are
//! released, then cascaded; the push is recorded in
//! `<repo>/-/repo.ocu.star/@<commit>/push/index` (the original's
//! `tests/push`, `test_push_from_source`).

use serde_json::{Value, json};

use crate::support::{Repo, get, matches, must_get, ocu, out_lines};

const REPO: &str = r#"ocuroot("0.3.0")
repo_alias = "push"
state_store = store.fs(".store")
release_ignore = ["ignored/*"]
"#;

const ENVIRONMENTS: &str = r#"ocuroot("0.3.0")
register_environment(environment("staging"))
register_environment(environment("production"))
"#;

/// Deploys the contents of `a.txt`, watching it.
const A: &str = r#"ocuroot("0.3.0")

def up(environment):
    message = read("a.txt").strip()
    host.shell("mkdir -p out && echo 'a {} {}' >> out/log.txt".format(environment["name"], message))
    return done(outputs={"message": message}, watch=["a.txt"])

def down(environment):
    return done()

[deploy(up=up, down=down, environment=e) for e in environments()]
"#;

/// Deploys what a deployed.
const B: &str = r#"ocuroot("0.3.0")

def up(environment, message):
    host.shell("mkdir -p out && echo 'b {} {}' >> out/log.txt".format(environment["name"], message))
    return done(outputs={"message": message})

def down(environment, message):
    return done()

[deploy(up=up, down=down, environment=e, inputs={
    "message": ref("./-/a.ocu.star/@/deploy/{}#output/message".format(e.name)),
}) for e in environments()]
"#;

const INDEX: &str = "push/-/repo.ocu.star/@/push/index";

fn head(repo: &Repo) -> String {
    repo.git().head().unwrap().target().unwrap().to_string()
}

/// A committed repository with the environments, a, b and an ignored file.
fn pushed_repo(gitignore: &str) -> Repo {
    let repo = Repo::new();
    repo.write("repo.ocu.star", REPO);
    repo.write(".gitignore", gitignore);
    repo.write("environments.ocu.star", ENVIRONMENTS);
    repo.write("a.ocu.star", A);
    repo.write("b.ocu.star", B);
    repo.write("a.txt", "commit 1\n");
    repo.write("ignored/never.ocu.star", "fail(\"never released\")\n");
    repo.commit("init");
    repo
}

#[test]
fn push_releases_what_changed_since_the_last_push_then_cascades() {
    let repo = pushed_repo(".store/\nout/\n");
    let first = head(&repo);

    // A dry run lists every package file (repo.ocu.star and release_ignore
    // aside), environments first, and changes nothing.
    let out = ocu(&repo, &["push", "--dryrun"]).success();
    assert_eq!(
        out.stdout,
        format!(
            "Would release at {first} (first push):\n  environments.ocu.star (first push)\n  \
             a.ocu.star (first push)\n  b.ocu.star (first push)\n"
        )
    );
    assert_eq!(matches(&repo, "**"), Vec::<String>::new());

    // Uncommitted or untracked changes: refused, nothing released.
    for (file, stage) in [("untracked.txt", false), ("staged.txt", true)] {
        repo.write(file, "x\n");
        if stage {
            let mut index = repo.git().index().unwrap();
            index.add_path(std::path::Path::new(file)).unwrap();
            index.write().unwrap();
        }
        let out = ocu(&repo, &["push"]).failure();
        assert!(
            out.stderr.contains("you have uncommitted changes") && out.stderr.contains(file),
            "{}",
            out.stderr
        );
        if stage {
            let mut index = repo.git().index().unwrap();
            index.remove_path(std::path::Path::new(file)).unwrap();
            index.write().unwrap();
        }
        std::fs::remove_file(repo.path().join(file)).unwrap();
    }
    assert_eq!(matches(&repo, "**"), Vec::<String>::new());

    // The first push: the environments, then a and b, deployed to them.
    let out = ocu(&repo, &["push", "-q"]).success();
    assert!(
        out.stdout.contains("Recorded push/-/repo.ocu.star/@"),
        "{}",
        out.stdout
    );
    assert_eq!(
        must_get(
            &repo,
            "push/-/b.ocu.star/@/deploy/production#output/message"
        ),
        json!("commit 1")
    );
    assert_eq!(matches(&repo, "**/op/*"), Vec::<String>::new());
    assert_eq!(matches(&repo, "push/-/ignored/**"), Vec::<String>::new());
    assert_eq!(
        must_get(&repo, INDEX),
        json!({
            "commit": first,
            "previous_commit": "",
            "release_configs": {
                "push/-/a.ocu.star": {"watch_files": ["a.txt"]},
                "push/-/b.ocu.star": {"watch_files": []},
                "push/-/environments.ocu.star": {"watch_files": []},
            },
        })
    );
    assert_eq!(
        must_get(
            &repo,
            &format!("push/-/repo.ocu.star/@{first}/push/index#commit")
        ),
        json!(first)
    );
    assert_eq!(
        get(
            &repo,
            "push/-/a.ocu.star/@r1/deploy/production/1#watch_files"
        ),
        Some(json!(["a.txt"]))
    );

    // Nothing changed since: nothing to push.
    let out = ocu(&repo, &["push", "-q"]).success();
    assert!(out.stdout.starts_with("Nothing to push"), "{}", out.stdout);
    assert_eq!(matches(&repo, "push/-/a.ocu.star/@r*").len(), 1);

    // A change under a's watch prefix releases a only; b is redeployed in
    // its existing release by the cascade.
    repo.write("a.txt", "commit 2\n");
    repo.commit("second");
    let second = head(&repo);
    let out = ocu(&repo, &["push", "--dryrun"]).success();
    assert!(
        out.stdout.contains("  a.ocu.star (watches a.txt)\n"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("b.ocu.star"), "{}", out.stdout);
    ocu(&repo, &["push", "-q"]).success();
    assert!(get(&repo, "push/-/a.ocu.star/@r2").is_some());
    assert_eq!(get(&repo, "push/-/b.ocu.star/@r2/deploy/production"), None);
    assert_eq!(
        must_get(
            &repo,
            "push/-/b.ocu.star/@/deploy/production#output/message"
        ),
        json!("commit 2")
    );
    assert_eq!(
        must_get(&repo, &format!("{INDEX}#previous_commit")),
        json!(first)
    );
    assert_eq!(must_get(&repo, &format!("{INDEX}#commit")), json!(second));

    // A changed package file releases that package; the ignored one never.
    repo.write("b.ocu.star", &format!("{B}\n# changed\n"));
    repo.write("ignored/never.ocu.star", "fail(\"still never\")\n");
    repo.commit("third");
    let out = ocu(&repo, &["push", "--json", "-q"]).success();
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    let packages: Vec<(&str, &str)> = v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["package"].as_str().unwrap(),
                p["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(packages, [("b.ocu.star", "changed")]);
    assert_eq!(v["previous_commit"], json!(second));
    assert!(get(&repo, "push/-/b.ocu.star/@r2").is_some());
    // The index keeps a's watch prefixes though a was not pushed this time.
    assert_eq!(
        must_get(&repo, INDEX)["release_configs"]["push/-/a.ocu.star"],
        json!({"watch_files": ["a.txt"]})
    );
}

/// A filesystem store kept inside the work tree (not ignored) is not a
/// change; a package that cannot be released leaves the push unrecorded.
#[test]
fn push_with_the_store_in_the_work_tree_and_a_broken_package() {
    let repo = pushed_repo("out/\n");
    repo.write("broken.ocu.star", "fail(\"broken on purpose\")\n");
    repo.commit("broken");
    let out = ocu(&repo, &["push", "-q"]).failure();
    assert!(
        out.stdout
            .contains("broken.ocu.star: could not be released")
            && out.stdout.contains("broken on purpose"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("Not recorded"), "{}", out.stdout);
    assert_eq!(get(&repo, INDEX), None);
    assert!(get(&repo, "push/-/a.ocu.star/@r1").is_some());
    assert!(
        out_lines(&repo, "log.txt").contains(&"b production commit 1".to_string()),
        "{:?}",
        out_lines(&repo, "log.txt")
    );

    // Fixed: the next push (the store's files are untracked, and not a
    // change) releases everything again, and is recorded.
    std::fs::remove_file(repo.path().join("broken.ocu.star")).unwrap();
    repo.commit("fixed");
    assert!(repo.path().join(".store/state").is_dir());
    ocu(&repo, &["push", "-q"]).success();
    assert_eq!(
        must_get(&repo, &format!("{INDEX}#commit")),
        json!(head(&repo))
    );
    assert!(get(&repo, "push/-/a.ocu.star/@r2").is_some());
}

//! `state gc`: the clones of a repository's git stores under
//! `OCUROOT_HOME` are packed into one pack each, and the other clones there
//! that no command has used for a while are removed.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::{PRELUDE, Repo, TIMEOUT, ocu_with};

const BUILD: &str = r#"
def build():
    return done(outputs={"ok": True})

task(build, name="build")
"#;

fn git(args: &[&str]) -> String {
    let out = Command::new("git").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The objects reachable from the clone's refs.
fn reachable(clone: &Path) -> usize {
    git(&[
        "-C",
        clone.to_str().unwrap(),
        "rev-list",
        "--all",
        "--objects",
    ])
    .lines()
    .count()
}

/// The loose objects and pack files under a clone's `objects`.
fn objects(clone: &Path) -> (usize, usize) {
    let (mut loose, mut packs) = (0, 0);
    for fan in std::fs::read_dir(clone.join("objects")).unwrap().flatten() {
        let name = fan.file_name().to_string_lossy().into_owned();
        if name == "pack" {
            packs = std::fs::read_dir(fan.path())
                .unwrap()
                .flatten()
                .filter(|f| f.file_name().to_string_lossy().ends_with(".pack"))
                .count();
        } else if name.len() == 2 {
            loose += std::fs::read_dir(fan.path()).unwrap().count();
        }
    }
    (loose, packs)
}

/// An old clone of another remote, last used `age` ago (`touch -d`).
fn other_clone(home: &Path, name: &str, age: &str) -> std::path::PathBuf {
    let dir = home
        .join("stores")
        .join("old.example.com")
        .join(format!("{name}.git"));
    git(&["init", "-q", "--bare", dir.to_str().unwrap()]);
    let used = dir.join("ocuroot-used");
    std::fs::write(&used, "").unwrap();
    let status = Command::new("touch")
        .args(["-d", age, used.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    dir
}

/// A repository whose store is branch `state` of `store_url`, with
/// `release.ocu.star` (BUILD) released once with `env`.
fn released(store_url: &str, env: &[(&str, &str)]) -> Repo {
    let repo = Repo::new();
    repo.write(
        "repo.ocu.star",
        &format!(
            "ocuroot(\"0.3.0\")\nrepo_alias(\"gc\")\nstore.set(store.git({store_url:?}, branch=\"state\"))\n"
        ),
    );
    repo.write("release.ocu.star", &format!("{PRELUDE}{BUILD}"));
    repo.commit("init");
    ocu_with(
        &repo,
        env,
        TIMEOUT,
        &["release", "new", "release.ocu.star", "-q"],
    )
    .success();
    repo
}

#[test]
fn state_gc_packs_the_configured_clone_and_removes_unused_ones() {
    let dir = tempfile::tempdir().unwrap();
    let remote = dir.path().join("store.git");
    git(&["init", "-q", "--bare", remote.to_str().unwrap()]);
    // A network remote: its clone keeps the objects it fetches and pushes
    // (a clone of a path reads the remote's in place).
    let daemon = crate::servers::GitDaemon::start(dir.path());
    let home = dir.path().join("home");
    let env = [("OCUROOT_HOME", home.to_str().unwrap())];
    let repo = released(&daemon.url("store.git"), &env);
    let clone = home.join("stores/127.0.0.1/store.git");
    ocu_with(&repo, &env, TIMEOUT, &["state", "set", "@/custom/y", "1"]).success();
    let (loose, packs) = objects(&clone);
    let before = reachable(&clone);
    assert_eq!(loose, 0, "new objects are written as packs");
    assert!(packs > 1, "a pack per command before: {packs}");
    let stale = other_clone(&home, "stale", "30 days ago");
    let recent = other_clone(&home, "recent", "1 hour ago");

    let out = ocu_with(&repo, &env, TIMEOUT, &["state", "gc", "--json"]).success();
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    let packed = report["packed"].as_array().unwrap();
    assert_eq!(packed.len(), 1, "{report}");
    assert_eq!(
        Path::new(packed[0]["clone"].as_str().unwrap())
            .canonicalize()
            .unwrap(),
        clone.canonicalize().unwrap()
    );
    // Every reachable object, and the unreachable ones (kept for an hour).
    assert!(
        packed[0]["objects"].as_u64().unwrap() >= before as u64,
        "{report}"
    );
    assert_eq!(report["removed"].as_array().unwrap().len(), 1, "{report}");
    assert!(!stale.exists(), "a clone unused for 30 days is removed");
    assert!(
        recent.exists(),
        "a clone used an hour ago is kept (default: 14 days)"
    );
    assert_eq!(objects(&clone), (0, 1), "one pack in the clone");
    assert_eq!(reachable(&clone), before, "every object is there");
    // The packed clone still works, and is not cloned again.
    let out = ocu_with(
        &repo,
        &env,
        TIMEOUT,
        &["state", "get", "release.ocu.star/@r1/task/build#output/ok"],
    )
    .success();
    assert!(!out.stderr.contains("damaged"), "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "true");
    ocu_with(&repo, &env, TIMEOUT, &["state", "set", "@/custom/x", "1"]).success();

    let out = ocu_with(&repo, &env, TIMEOUT, &["state", "gc", "--unused-for", "0s"]).success();
    assert!(out.stdout.contains("removed "), "{}", out.stdout);
    assert!(
        !recent.exists(),
        "--unused-for 0s removes every other clone"
    );
    assert!(clone.exists(), "never the configured store's clone");
    assert!(
        !home.join("stores/old.example.com").exists(),
        "emptied directories go too"
    );

    let out = ocu_with(
        &repo,
        &env,
        TIMEOUT,
        &["state", "gc", "--unused-for", "soon"],
    )
    .expect_code(2);
    assert!(out.stderr.contains("14d"), "{}", out.stderr);
}

#[test]
fn state_gc_leaves_the_clone_of_a_path_remote_usable() {
    let dir = tempfile::tempdir().unwrap();
    let remote = dir.path().join("store.git");
    git(&["init", "-q", "--bare", remote.to_str().unwrap()]);
    let home = dir.path().join("home");
    let env = [("OCUROOT_HOME", home.to_str().unwrap())];
    let repo = released(&remote.to_string_lossy(), &env);
    let stale = other_clone(&home, "stale", "30 days ago");
    // Everything unused is removed, and the directories left empty, but not
    // the configured clone's own (it keeps no objects or refs of its own).
    for _ in 0..2 {
        let out = ocu_with(&repo, &env, TIMEOUT, &["state", "gc", "--unused-for", "0s"]).success();
        assert!(!out.stderr.contains("damaged"), "{}", out.stderr);
    }
    assert!(!stale.exists());
    let out = ocu_with(
        &repo,
        &env,
        TIMEOUT,
        &[
            "state",
            "get",
            "gc/-/release.ocu.star/@r1/task/build#output/ok",
        ],
    )
    .success();
    assert!(!out.stderr.contains("damaged"), "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "true");
    ocu_with(&repo, &env, TIMEOUT, &["state", "set", "@/custom/y", "1"]).success();
}

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

/// The objects reachable from the clone's refs, and the others.
fn reachable_and_not(clone: &Path) -> (usize, usize) {
    let dir = clone.to_str().unwrap();
    let reachable = git(&["-C", dir, "rev-list", "--all", "--objects"])
        .lines()
        .count();
    let unreachable = git(&["-C", dir, "fsck", "--unreachable", "--no-reflogs"])
        .lines()
        .filter(|l| l.starts_with("unreachable"))
        .count();
    (reachable, unreachable)
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

#[test]
fn state_gc_packs_the_configured_clone_and_removes_unused_ones() {
    let dir = tempfile::tempdir().unwrap();
    let remote = dir.path().join("store.git");
    git(&["init", "-q", "--bare", remote.to_str().unwrap()]);
    let repo = Repo::new();
    repo.write(
        "repo.ocu.star",
        &format!(
            "ocuroot(\"0.3.0\")\nrepo_alias(\"gc\")\nstore.set(store.git({:?}, branch=\"state\"))\n",
            remote.to_str().unwrap()
        ),
    );
    repo.write("release.ocu.star", &format!("{PRELUDE}{BUILD}"));
    repo.commit("init");
    let home = dir.path().join("home");
    let env = [("OCUROOT_HOME", home.to_str().unwrap())];
    ocu_with(
        &repo,
        &env,
        TIMEOUT,
        &["release", "new", "release.ocu.star", "-q"],
    )
    .success();
    let clone = home.join("stores").join(
        remote
            .to_str()
            .unwrap()
            .trim_start_matches('/')
            .trim_end_matches(".git")
            .to_string()
            + ".git",
    );
    let (loose, _) = objects(&clone);
    let (reachable, unreachable) = reachable_and_not(&clone);
    assert!(loose > 10, "the clone holds loose objects before: {loose}");
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
    assert_eq!(
        packed[0]["objects"].as_u64().unwrap(),
        reachable as u64,
        "{report}"
    );
    assert_eq!(report["removed"].as_array().unwrap().len(), 1, "{report}");
    assert!(!stale.exists(), "a clone unused for 30 days is removed");
    assert!(
        recent.exists(),
        "a clone used an hour ago is kept (default: 14 days)"
    );
    assert_eq!(
        objects(&clone),
        (unreachable, 1),
        "one pack in the clone, and loose only the unreachable objects (for an hour)"
    );
    // The packed clone still works, and is not cloned again.
    let out = ocu_with(
        &repo,
        &env,
        TIMEOUT,
        &["state", "get", "release.ocu.star/@r1/task/build#output/ok"],
    )
    .success();
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

//! Hostile and unlucky input through the CLI: four agents retrying one
//! release at the same moment, refs that name something inside a release
//! where the release is expected, package files that are not regular files,
//! mistakes in `repo.ocu.star`, read-only commands given a file that runs
//! commands, and commands that hang.

use std::process::Stdio;

use crate::release::{PKG, deploy_repo};
use crate::support::{ocu, std_ocuroot_in};

#[test]
fn concurrent_retries_retry_once_and_the_others_say_there_is_nothing_to_retry() {
    let (repo, _) = deploy_repo();
    ocu(&repo, &["release", "new", "release.ocu.star", "-q"]).failure();
    let agents: Vec<_> = (0..4)
        .map(|_| {
            std_ocuroot_in(repo.path())
                .args(["release", "retry", "release.ocu.star"])
                .env("OCU_TEST_FIXED", "1")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start an agent")
        })
        .collect();
    let mut succeeded = 0;
    for agent in agents {
        let out = agent.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            succeeded += 1;
        } else {
            assert_eq!(out.status.code(), Some(1), "{stderr}");
            assert!(stderr.contains("no failed work to retry"), "{stderr}");
            assert!(!stderr.contains("conflict"), "{stderr}");
        }
    }
    assert_eq!(succeeded, 1, "exactly one agent retries");
    let runs = crate::support::matches(&repo, &format!("{PKG}/@r1/deploy/bad/*"));
    assert_eq!(runs.len(), 2, "one retry run: {runs:?}");
}

#[test]
fn a_ref_inside_a_release_is_not_taken_for_the_release() {
    let (repo, _) = deploy_repo();
    ocu(&repo, &["release", "new", "release.ocu.star", "-q"]).failure();
    for arg in [
        "release.ocu.star/@r1/task/after",
        "release.ocu.star/@r1/deploy/bad/1",
        "release.ocu.star/@r1#package",
    ] {
        for cmd in ["continue", "retry"] {
            let out = ocu(&repo, &["release", cmd, arg]).expect_code(1);
            assert!(
                out.stderr.contains("is not a release"),
                "{arg}: {}",
                out.stderr
            );
            assert!(
                out.stderr
                    .contains(&format!("give the release itself, {PKG}/@r1")),
                "{arg}: {}",
                out.stderr
            );
        }
    }
    let out = ocu(&repo, &["release", "continue", "@/custom/x"]).expect_code(1);
    assert!(out.stderr.contains("is not a release"), "{}", out.stderr);
}

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
        for cmd in ["continue", "retry", "status"] {
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

#[test]
fn package_files_must_be_regular_files_of_a_bounded_size() {
    let repo = crate::support::Repo::new();
    repo.write("repo.ocu.star", "ocuroot(\"0.3.0\")\nrepo_alias(\"t\")\n");
    let fifo = repo.path().join("f.ocu.star");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    std::fs::create_dir(repo.path().join("d.ocu.star")).unwrap();
    let big = "#".repeat(17 << 20);
    repo.write("big.ocu.star", &big);
    for (file, says) in [
        ("f.ocu.star", "not a regular file"),
        ("d.ocu.star", "not a regular file"),
        ("big.ocu.star", "larger than 16 MiB"),
    ] {
        for cmd in ["new", "lint"] {
            let out = ocu(&repo, &["release", cmd, file]).expect_code(1);
            assert!(out.stderr.contains(says), "{cmd} {file}: {}", out.stderr);
            assert!(out.stderr.contains(file), "{cmd} {file}: {}", out.stderr);
        }
    }
    assert!(!repo.path().join(".store").exists());
}

#[test]
fn mistakes_in_repo_ocu_star_name_the_file_and_line() {
    let repo = crate::support::Repo::new();
    repo.write("p.ocu.star", "ocuroot(\"0.3.0\")\n");
    for (config, says) in [
        ("store.set(store.s3(\"x\"))", "repo.ocu.star:3"),
        ("store.set(\"nonsense\")", "repo.ocu.star:3"),
        ("repo_alias(\"a/../b\")", "repo.ocu.star:3"),
        ("repo_alias = \"a/../b\"", "repo.ocu.star:3:1"),
        ("repo_alias = 5", "repo.ocu.star:3:1"),
        ("state_store = \"x\"", "repo.ocu.star:3:1"),
        (
            "store.set(store.git(\"/nonexistent/x.git\"))",
            "the store configured at repo.ocu.star:3:1",
        ),
    ] {
        repo.write(
            "repo.ocu.star",
            &format!("ocuroot(\"0.3.0\")\n\n{config}\n"),
        );
        let out = ocu(&repo, &["release", "new", "p.ocu.star"]).expect_code(1);
        assert!(out.stderr.contains(says), "{config}: {}", out.stderr);
    }
}

#[test]
fn deep_values_fail_the_run_with_a_message_and_leave_a_readable_store() {
    let (repo, _) = crate::release::setup(&[(
        "release.ocu.star",
        r#"
def deep(n):
    x = "leaf"
    for i in range(n):
        x = [x]
    return x

def out150():
    return done(outputs={"v": deep(150)})

def out1000():
    return done(outputs={"v": deep(1000)})

def enc():
    print(json.encode(deep(1000)))
    return done()

phase("a", tasks=[task(out150, name="o150"), task(out1000, name="o1000"), task(enc, name="enc")])
"#,
    )]);
    let out = ocu(&repo, &["release", "new", "release.ocu.star"]).expect_code(1);
    assert!(!out.stderr.contains("overflow"), "{}", out.stderr);
    for task in ["o150", "o1000", "enc"] {
        let run = format!("{PKG}/@r1/task/{task}/1");
        assert_eq!(crate::support::statuses(&repo, &run), ["failed"], "{task}");
        let doc = crate::support::must_get(&repo, &run);
        let error = doc["error"].to_string();
        assert!(
            error.contains("nested more than 100 deep"),
            "{task}: {error}"
        );
    }
    // Every document reads back.
    for r in crate::support::matches(&repo, "**") {
        crate::support::must_get(&repo, &r);
    }
}

#[test]
fn deeply_nested_source_is_refused_before_it_is_parsed() {
    let repo = crate::support::Repo::new();
    let cases = [
        (
            format!("x = {}{}", "[".repeat(5000), "]".repeat(5000)),
            "nested more than 200 deep",
        ),
        (
            format!("x = 1{}", "+1".repeat(300_000)),
            "more than 1000 operators",
        ),
    ];
    for (body, says) in cases {
        repo.write("deep.ocu.star", &format!("ocuroot(\"0.3.0\")\n{body}\n"));
        let out = ocu(&repo, &["release", "lint", "deep.ocu.star"]).expect_code(1);
        assert!(out.stderr.contains("deep.ocu.star:2:"), "{}", out.stderr);
        assert!(out.stderr.contains(says), "{}", out.stderr);
    }
}

#[test]
fn lint_runs_no_command_writes_no_file_and_makes_no_request() {
    let repo = crate::support::Repo::new();
    repo.write(
        "evil.ocu.star",
        r#"ocuroot("0.3.0")
host.shell("touch pwned-by-shell")
write("pwned-by-write", "x")
http.get("http://127.0.0.1:9/exfiltrate")
def build():
    return done()
task(build, name="b")
"#,
    );
    let out = ocu(&repo, &["release", "lint", "evil.ocu.star"]).success();
    assert!(!repo.path().join("pwned-by-shell").exists());
    assert!(!repo.path().join("pwned-by-write").exists());
    assert!(
        out.stdout.contains("Not run while linting (3 calls"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("host.shell(\"touch pwned-by-shell\")"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("http GET http://127.0.0.1:9/exfiltrate"),
        "{}",
        out.stdout
    );
    let json = ocu(
        &repo,
        &["release", "lint", "evil.ocu.star", "--format", "json"],
    )
    .success();
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["skipped"].as_array().map(Vec::len), Some(3), "{v:#}");
    assert!(!repo.path().join("pwned-by-shell").exists());
}

#[test]
fn a_hung_command_fails_its_run_after_the_timeout_and_its_process_group_is_killed() {
    let (repo, _) = crate::release::setup(&[(
        "release.ocu.star",
        r#"
def hang():
    host.shell("(sleep 313; touch survived) & sleep 313", timeout=0.5)
    return done()

def hang_default():
    host.shell("sleep 317 > /dev/null 2>&1 < /dev/null")
    return done()

phase("a", tasks=[task(hang, name="hang"), task(hang_default, name="hang_default")])
"#,
    )]);
    let started = std::time::Instant::now();
    let out = ocu(
        &repo,
        &["release", "new", "release.ocu.star", "--timeout", "1s"],
    )
    .expect_code(1);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "it did not wait for the sleeps"
    );
    for (task, after) in [("hang", "500ms"), ("hang_default", "1s")] {
        let run = format!("{PKG}/@r1/task/{task}/1");
        assert_eq!(crate::support::statuses(&repo, &run), ["failed"], "{task}");
        let error = crate::support::must_get(&repo, &run)["error"].to_string();
        assert!(
            error.contains(&format!("timed out after {after}")),
            "{task}: {error}"
        );
    }
    assert!(out.stderr.contains("timed out"), "{}", out.stderr);
    let bad = ocu(
        &repo,
        &["release", "new", "release.ocu.star", "--timeout", "abc"],
    )
    .expect_code(2);
    assert!(bad.stderr.contains("--timeout"), "{}", bad.stderr);
    // The background `sleep 313; touch survived` was killed with its group
    // (these durations are used by no other test).
    let mut left = String::new();
    for _ in 0..20 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let Ok(ps) = std::process::Command::new("pgrep")
            .args(["-f", "sleep 31[37]"])
            .output()
        else {
            return;
        };
        left = String::from_utf8_lossy(&ps.stdout).trim().to_string();
        if left.is_empty() {
            break;
        }
    }
    assert!(left.is_empty(), "processes left running: {left}");
}

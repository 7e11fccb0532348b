//! The log file of each command under `$OCUROOT_HOME/logs`, as the
//! original writes it: named `<unix nanoseconds>-<arguments>.log`, holding
//! the command line, diagnostics (`debug` ones with `OCUROOT_DEBUG`), the
//! runs' starts, log lines and ends, errors and the exit status, every
//! secret masked; and the directory bounded.

use std::path::{Path, PathBuf};

use crate::support::{Output, Repo, ocuroot_in, run};

const TOKEN: &str = "l0g-s3cr3t-77aa";

const PACKAGE: &str = r#"ocuroot("0.3.0")

def build():
    token = secret(host.env()["OCU_TEST_TOKEN"])
    print("token is " + token)
    host.shell("echo shell says " + token)
    return done(outputs={"token": token})

task(build, name="build")
"#;

fn ocu(repo: &Repo, home: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = ocuroot_in(repo.path());
    cmd.env("OCUROOT_HOME", home)
        .env("OCU_TEST_TOKEN", TOKEN)
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(cmd)
}

/// The log files, oldest first.
fn logs(home: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(home.join("logs"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

fn name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn every_command_writes_a_masked_log_file_and_the_directory_stays_bounded() {
    let repo = Repo::new();
    repo.write("repo.ocu.star", "ocuroot(\"0.3.0\")\nrepo_alias(\"t\")\n");
    repo.write("p.ocu.star", PACKAGE);
    repo.commit("init");
    let home = tempfile::tempdir().unwrap();
    let home = home.path();

    let out = ocu(
        &repo,
        home,
        &[("OCUROOT_DEBUG", "1")],
        &["release", "new", "p.ocu.star", "-q"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stdout.contains(TOKEN) && !out.stderr.contains(TOKEN));
    let files = logs(home);
    assert_eq!(files.len(), 1, "{files:?}");
    let file = name(&files[0]);
    let (stamp, rest) = file.split_once('-').unwrap();
    assert!(
        stamp.len() >= 19 && stamp.chars().all(|c| c.is_ascii_digit()),
        "{file}"
    );
    assert_eq!(rest, "release_new_p.ocu.star_-q.log");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(
        !text.contains(TOKEN),
        "the secret is in the log file:\n{text}"
    );
    assert!(
        text.starts_with("ocuroot release new p.ocu.star -q\n"),
        "{text}"
    );
    for wanted in [
        "[start] task/build (run 1)",
        "token is <secret>",
        "shell says <secret>",
        "DEBUG ocuroot: ocuroot started",
        "DEBUG ocuroot_core::workspace: workspace opened",
        "exit status 0",
    ] {
        assert!(text.contains(wanted), "{wanted:?} not in:\n{text}");
    }
    // Without OCUROOT_DEBUG, no debug diagnostics; an error and its status.
    let out = ocu(&repo, home, &[], &["release", "new", "missing.ocu.star"]);
    assert_eq!(out.code, 1);
    let files = logs(home);
    assert_eq!(files.len(), 2);
    let text = std::fs::read_to_string(&files[1]).unwrap();
    assert!(!text.contains("DEBUG"), "{text}");
    assert!(
        text.contains("Error:") && text.contains("missing.ocu.star"),
        "{text}"
    );
    assert!(text.ends_with("exit status 1\n"), "{text}");

    // Bounded: the newest OCUROOT_LOG_KEEP files stay.
    for _ in 0..4 {
        ocu(&repo, home, &[("OCUROOT_LOG_KEEP", "3")], &["version"]);
    }
    let files = logs(home);
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(
        files.iter().all(|f| name(f).ends_with("-version.log")),
        "{files:?}"
    );
    // And by age: a file older than OCUROOT_LOG_MAX_AGE goes.
    let old = home.join("logs").join("1000-release_new_old.log");
    std::fs::write(&old, "old\n").unwrap();
    ocu(&repo, home, &[("OCUROOT_LOG_MAX_AGE", "1h")], &["version"]);
    assert!(!old.exists());
    assert_eq!(logs(home).len(), 4);
    // OCUROOT_LOG_KEEP=0 writes none.
    ocu(&repo, home, &[("OCUROOT_LOG_KEEP", "0")], &["version"]);
    assert_eq!(logs(home).len(), 4);
}

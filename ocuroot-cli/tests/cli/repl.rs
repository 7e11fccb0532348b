//! `ocuroot repl FILE [-c EXPR]`: a file's globals and the SDK, for one
//! expression (the original's `tests/repl`), a program on stdin, or at an
//! interactive prompt on a terminal.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{Repo, ocu, ocuroot_in, run};

/// The original's `tests/repl` fixture: settings as globals, a function and
/// a global variable.
fn repl_repo() -> Repo {
    let repo = Repo::new();
    repo.write(
        "repo.ocu.star",
        "ocuroot(\"0.3.0\")\nrepo_alias = \"repl\"\nstate_store = store.fs(\".store\")\n",
    );
    repo.write(".gitignore", ".store/\n");
    repo.write(
        "test.ocu.star",
        r#"ocuroot("0.3.0")
GLOBAL_VAR = "global value"
_HIDDEN = 7

def fn(s):
    print("fn called with " + s)
    return s + "!"

def _private(n):
    return n * _HIDDEN
"#,
    );
    repo.write("broken.ocu.star", "x = 1\ny = undefined_name\n");
    repo.write(
        "environments.ocu.star",
        "register_environment(environment(\"staging\", {\"tier\": 1}))\n",
    );
    repo.commit("repl");
    repo
}

#[test]
fn an_expression_with_the_files_globals() {
    let repo = repl_repo();
    // The original's two checks.
    let out = ocu(&repo, &["repl", "test.ocu.star", "-c", "fn(\"hello\")"]).success();
    assert_eq!(out.stdout, "fn called with hello\n\"hello!\"\n");
    let out = ocu(&repo, &["repl", "test.ocu.star", "-c", "print(GLOBAL_VAR)"]).success();
    assert_eq!(out.stdout, "global value\n");
    // Private globals, and the SDK globals.
    let out = ocu(
        &repo,
        &["repl", "test.ocu.star", "--command", "_private(6)"],
    )
    .success();
    assert_eq!(out.stdout, "42\n");
    let out = ocu(
        &repo,
        &[
            "repl",
            "test.ocu.star",
            "-c",
            "environment(name=\"qa\").name + host.os()",
        ],
    )
    .success();
    assert!(out.stdout.starts_with("\"qa"), "{}", out.stdout);
    // environments() reads state.
    ocu(&repo, &["release", "new", "environments.ocu.star", "-q"]).success();
    let out = ocu(
        &repo,
        &[
            "repl",
            "test.ocu.star",
            "-c",
            "[(e.name, e.attributes) for e in environments()]",
        ],
    )
    .success();
    assert_eq!(out.stdout, "[(\"staging\", {\"tier\": 1})]\n");
    // Without a file: repo.ocu.star, evaluated as the repository's
    // configuration.
    let out = ocu(&repo, &["repl", "-c", "repo_alias"]).success();
    assert_eq!(out.stdout, "\"repl\"\n");
    // Secrets are masked in what it prints.
    let out = ocu(
        &repo,
        &["repl", "test.ocu.star", "-c", "secret(\"s3cr3t\") + \"!\""],
    )
    .success();
    assert_eq!(out.stdout, "\"<secret>!\"\n");
    // A package ref as the file.
    let out = ocu(&repo, &["repl", "//test.ocu.star", "-c", "GLOBAL_VAR"]).success();
    assert_eq!(out.stdout, "\"global value\"\n");
}

#[test]
fn failures_exit_1_with_where() {
    let repo = repl_repo();
    let out = ocu(&repo, &["repl", "test.ocu.star", "-c", "fail(\"boom\")"]).failure();
    assert!(out.stderr.contains("error: fail: boom"), "{}", out.stderr);
    assert!(out.stderr.contains("<repl>:1:1"), "{}", out.stderr);
    assert!(out.stderr.contains("Traceback"), "{}", out.stderr);
    let out = ocu(&repo, &["repl", "test.ocu.star", "-c", "1 +"]).failure();
    assert!(out.stderr.contains("Parse error"), "{}", out.stderr);
    // The file's own error, with its location; the expression never runs.
    let out = ocu(&repo, &["repl", "broken.ocu.star", "-c", "print(\"ran\")"]).failure();
    assert!(out.stderr.contains("broken.ocu.star:2:5"), "{}", out.stderr);
    assert!(out.stderr.contains("undefined_name"), "{}", out.stderr);
    assert!(!out.stdout.contains("ran"), "{}", out.stdout);
    let out = ocu(&repo, &["repl", "missing.ocu.star", "-c", "1"]).failure();
    assert!(out.stderr.contains("missing.ocu.star"), "{}", out.stderr);
}

#[test]
fn a_program_on_stdin() {
    let repo = repl_repo();
    let mut cmd = ocuroot_in(repo.path());
    cmd.args(["repl", "test.ocu.star"])
        .write_stdin("def twice(x):\n    return x * 2\n\nprint(fn(\"a\"))\ntwice(_HIDDEN)\n");
    let out = run(cmd).success();
    assert_eq!(out.stdout, "fn called with a\na!\n14\n");
    let mut cmd = ocuroot_in(repo.path());
    cmd.args(["repl", "test.ocu.star"])
        .write_stdin("fail(\"from stdin\")\n");
    let out = run(cmd).failure();
    assert!(out.stderr.contains("from stdin"), "{}", out.stderr);
}

/// Output of a child process, collected by a thread as it arrives.
#[derive(Clone, Default)]
struct Collected(Arc<Mutex<Vec<u8>>>);

impl Collected {
    fn text(&self) -> String {
        let bytes = self.0.lock().unwrap().clone();
        // Terminal escapes and carriage returns out, for matching.
        let text = String::from_utf8_lossy(&bytes).replace('\r', "");
        let mut out = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' && chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    /// Wait until `needle` has appeared `n` times.
    #[track_caller]
    fn wait_for(&self, needle: &str, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.text().matches(needle).count() < n {
            assert!(
                Instant::now() < deadline,
                "waited for {n} x {needle:?}; got:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// On a terminal (a pty from `script`), a prompt: each line is typed once
/// the prompt for it is shown; a block is closed by an empty line; an error
/// is shown and the session goes on; Ctrl-D ends it with exit 0.
#[test]
fn an_interactive_prompt_on_a_terminal() {
    let repo = repl_repo();
    let bin = env!("CARGO_BIN_EXE_ocuroot");
    let mut child = Command::new("script")
        .args(["-qfec", &format!("{bin} repl test.ocu.star"), "/dev/null"])
        .current_dir(repo.path())
        .env("TERM", "dumb")
        .env_remove("OCU_CFG_repo_alias")
        .env_remove("OCU_REPO_COMMIT_OVERRIDE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("script(1) runs (util-linux)");
    let collected = Collected::default();
    let mut stdout = child.stdout.take().unwrap();
    let sink = collected.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.0.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let mut stdin = child.stdin.take().unwrap();
    // Type `line` once `prompt` has been shown `n` times.
    let mut type_after = |prompt: &str, n: usize, line: &str| {
        collected.wait_for(prompt, n);
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.flush().unwrap();
    };
    type_after(">>> ", 1, "fn(\"typed\")\n");
    collected.wait_for("\"typed!\"", 1);
    type_after(">>> ", 2, "def g(x):\n");
    type_after("... ", 1, "    return x * 2\n");
    type_after("... ", 2, "\n");
    type_after(">>> ", 3, "g(21)\n");
    collected.wait_for("42", 1);
    type_after(">>> ", 4, "fail(\"oops\")\n");
    collected.wait_for("error: fail: oops", 1);
    type_after(">>> ", 5, "_private(2)\n");
    collected.wait_for("14", 1);
    type_after(">>> ", 6, "\u{4}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the repl did not end on Ctrl-D:\n{}", collected.text());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    reader.join().unwrap();
    let text = collected.text();
    assert!(status.success(), "{status}\n{text}");
    assert!(text.contains("test.ocu.star loaded"), "{text}");
    assert!(text.contains("fn called with typed"), "{text}");
    assert!(text.contains("<repl>:1:1"), "{text}");
}

//! `secret()` values never leak: the decided policy, tested every way.
//!
//! - **Refused**, with an error that explains (it says `secret`) and does
//!   not show the value: a secret as a static input of a task or deploy
//!   (`inputs={"token": secret(...)}`, or through `input(default=...)`), as
//!   an input of `next(...)`, as a `done(tags=[...])` tag, and as (part of)
//!   an output key.
//! - **Masked** as `<secret>`: a secret as an output value, in `print`, in a
//!   `host.shell` command line and its output, in `fail(...)` messages, and
//!   in HTTP URLs (a tiny local server started by the test, and a port
//!   nothing listens on). The value itself still reaches the shell and the
//!   server.
//!
//! The secret comes from the environment (`OCU_TEST_TOKEN`), so it is in no
//! file of the repository: any occurrence of it is a leak. For every case
//! and every `OCUROOT_LOG` level (`error` to `trace`; the CLI reads it as a
//! `tracing` filter), the test runs `release lint` (text and `--format
//! json`), `release new` (text and `--json`), `release continue` (text and
//! `--json`), `release retry` and `state checkpoint`, then greps for the raw
//! value in every file under the store directories (raw bytes, the
//! write-ahead logs `.wal` included) and in every command's log file, in `state get` of every ref `state
//! match '**'` lists, and in all stdout and stderr. Every leak and every
//! broken expectation is collected and reported together.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::bad_input::{Ran, run_limited};
use crate::support::Repo;

/// The secret: distinctive, so any occurrence is a leak.
const TOKEN: &str = "s3cr3t-VALUE-9f2c";

/// Every level `OCUROOT_LOG` is tried at.
const LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace"];

const LIMIT: Duration = Duration::from_secs(30);

/// How the release of a case must go.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Expect {
    /// `release new` fails (exit 1) saying `secret`.
    Refused,
    /// `release new` succeeds and `<secret>` shows where the value was.
    Masked,
    /// `release new` fails (the work fails on purpose) and `<secret>` shows
    /// where the value was.
    MaskedFailure,
}

struct Case {
    name: &'static str,
    expect: Expect,
    /// The package file; `{PORT}` and `{DEAD_PORT}` are replaced.
    package: &'static str,
    /// A ref (relative to the release `t/-/p.ocu.star/@r1`) that must read
    /// `"<secret>"`, when there is one.
    masked_ref: Option<&'static str>,
    /// A file under `out/` the work writes, which must hold the value
    /// itself (the secret still works).
    delivered: Option<&'static str>,
}

const ENVS: &str = r#"ocuroot("0.3.0")
register_environment(environment("qa"))
"#;

const CASES: &[Case] = &[
    Case {
        name: "static-input",
        expect: Expect::Refused,
        package: r#"ocuroot("0.3.0")
def use(token):
    return done()
task(use, name="x", inputs={"token": secret(host.env()["OCU_TEST_TOKEN"])})
"#,
        masked_ref: None,
        delivered: None,
    },
    Case {
        name: "input-default",
        expect: Expect::Refused,
        package: r#"ocuroot("0.3.0")
def use(token):
    return done()
task(use, name="x", inputs={"token": input(ref="./@/custom/token", default=secret(host.env()["OCU_TEST_TOKEN"]))})
"#,
        masked_ref: None,
        delivered: None,
    },
    Case {
        name: "deploy-static-input",
        expect: Expect::Refused,
        package: r#"ocuroot("0.3.0")
def up(token, environment):
    return done()
def down(environment):
    return done()
phase("deploy", tasks=[
    deploy(up=up, down=down, environment=e, inputs={"token": secret(host.env()["OCU_TEST_TOKEN"])})
    for e in environments()
])
"#,
        masked_ref: None,
        delivered: None,
    },
    Case {
        name: "next-input",
        expect: Expect::Refused,
        package: r#"ocuroot("0.3.0")
def second(token):
    return done()
def first():
    return next(second, inputs={"token": secret(host.env()["OCU_TEST_TOKEN"])})
task(first, name="x")
"#,
        masked_ref: None,
        delivered: None,
    },
    Case {
        name: "done-tag",
        expect: Expect::Refused,
        package: r#"ocuroot("0.3.0")
def b():
    return done(tags=[secret(host.env()["OCU_TEST_TOKEN"])])
task(b, name="x")
"#,
        masked_ref: None,
        delivered: None,
    },
    Case {
        name: "output-key",
        expect: Expect::Refused,
        package: r#"ocuroot("0.3.0")
def b():
    return done(outputs={secret(host.env()["OCU_TEST_TOKEN"]): 1})
task(b, name="x")
"#,
        masked_ref: None,
        delivered: None,
    },
    Case {
        name: "output-key-containing",
        expect: Expect::Refused,
        package: r#"ocuroot("0.3.0")
def b():
    token = secret(host.env()["OCU_TEST_TOKEN"])
    return done(outputs={"key-" + token: 1})
task(b, name="x")
"#,
        masked_ref: None,
        delivered: None,
    },
    Case {
        name: "output-value",
        expect: Expect::Masked,
        package: r#"ocuroot("0.3.0")
def b():
    token = secret(host.env()["OCU_TEST_TOKEN"])
    return done(outputs={"t": token, "nested": {"list": [token, "x-" + token]}})
task(b, name="x")
"#,
        masked_ref: Some("task/x#output/t"),
        delivered: None,
    },
    Case {
        name: "print",
        expect: Expect::Masked,
        package: r#"ocuroot("0.3.0")
def b():
    token = secret(host.env()["OCU_TEST_TOKEN"])
    print(token)
    print("the token is " + token + "!")
    return done()
task(b, name="x")
"#,
        masked_ref: None,
        delivered: None,
    },
    Case {
        name: "print-at-top-level",
        expect: Expect::Masked,
        package: r#"ocuroot("0.3.0")
TOKEN = secret(host.env()["OCU_TEST_TOKEN"])
print("top level: " + TOKEN)
def b():
    print("in the task: " + TOKEN)
    return done()
task(b, name="x")
"#,
        masked_ref: None,
        delivered: None,
    },
    Case {
        name: "shell",
        expect: Expect::Masked,
        package: r#"ocuroot("0.3.0")
def b():
    token = secret(host.env()["OCU_TEST_TOKEN"])
    r = host.shell("echo out " + token + "; echo err " + token + " >&2; mkdir -p out; printf %s " + token + " > out/shell.txt")
    print(r.stdout)
    return done(outputs={"stdout": r.stdout, "combined": r.combined_output})
task(b, name="x")
"#,
        masked_ref: None,
        delivered: Some("shell.txt"),
    },
    Case {
        name: "shell-failing",
        expect: Expect::MaskedFailure,
        package: r#"ocuroot("0.3.0")
def b():
    token = secret(host.env()["OCU_TEST_TOKEN"])
    host.shell("echo " + token + "; echo " + token + " >&2; exit 3")
    return done()
task(b, name="x")
"#,
        masked_ref: None,
        delivered: None,
    },
    Case {
        name: "fail",
        expect: Expect::MaskedFailure,
        package: r#"ocuroot("0.3.0")
def b():
    token = secret(host.env()["OCU_TEST_TOKEN"])
    fail("bad token " + token)
task(b, name="x")
"#,
        masked_ref: None,
        delivered: None,
    },
    Case {
        name: "fail-at-top-level",
        expect: Expect::MaskedFailure,
        package: r#"ocuroot("0.3.0")
TOKEN = secret(host.env()["OCU_TEST_TOKEN"])
fail("bad token at top level " + TOKEN)
"#,
        masked_ref: None,
        delivered: None,
    },
    Case {
        name: "http-local-server",
        expect: Expect::Masked,
        package: r#"ocuroot("0.3.0")
def b():
    token = secret(host.env()["OCU_TEST_TOKEN"])
    r = http.get("http://127.0.0.1:{PORT}/?t=" + token)
    print(r.body)
    return done(outputs={"body": r.body, "status": r.status_code})
task(b, name="x")
"#,
        masked_ref: Some("task/x#output/body"),
        delivered: None,
    },
    Case {
        name: "http-unreachable",
        expect: Expect::MaskedFailure,
        package: r#"ocuroot("0.3.0")
def b():
    token = secret(host.env()["OCU_TEST_TOKEN"])
    r = http.get("http://127.0.0.1:{DEAD_PORT}/?t=" + token)
    return done(outputs={"status": r.status_code})
task(b, name="x")
"#,
        masked_ref: None,
        delivered: None,
    },
];

/// A tiny HTTP server on 127.0.0.1 answering every request with its request
/// line as the body; the request lines it got are kept.
fn echo_server() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a local port");
    let port = listener.local_addr().expect("local address").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let log = log.clone();
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&head).into_owned();
                let line = text.lines().next().unwrap_or_default().to_string();
                log.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(line.clone());
                let body = format!("you asked for {line}");
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    (port, seen)
}

/// A port nothing listens on (bound, then closed).
fn dead_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a local port");
    l.local_addr().expect("local address").port()
}

/// Every file below `dir` (not following symlinks), with its bytes.
fn files_below(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => files_below(&path, out),
            Ok(t) if t.is_file() => out.push((
                path.display().to_string(),
                fs::read(&path).unwrap_or_default(),
            )),
            _ => {}
        }
    }
}

/// `text` without ANSI colour sequences (the log lines of `tracing`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
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

/// The line of a command's stderr that says how it ended: the last error
/// or outcome line, without the log lines.
fn summary_line(stderr: &str) -> String {
    let text = strip_ansi(stderr);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains(" TRACE ") && !l.contains(" DEBUG ") && !l.contains(" INFO "))
        .collect();
    lines
        .iter()
        .rev()
        .find(|l| {
            let l = l.to_lowercase();
            l.contains("error") || l.contains("failed") || l.contains("complete")
        })
        .or(lines.last())
        .map(|l| l.trim().to_string())
        .unwrap_or_default()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// What one (case, level) run found wrong.
struct Findings {
    case: &'static str,
    level: &'static str,
    problems: Vec<String>,
}

impl Findings {
    fn leak_in(&mut self, what: &str, text: &str) {
        let text = strip_ansi(text);
        if text.contains(TOKEN) {
            let at = text.find(TOKEN).unwrap_or(0);
            let from = text[..at]
                .char_indices()
                .rev()
                .nth(60)
                .map_or(0, |(i, _)| i);
            let snippet: String = text[from..].chars().take(140).collect();
            self.problems.push(format!(
                "LEAK in {what}: ...{}...",
                snippet.replace('\n', "\\n")
            ));
        }
    }
}

fn run_case(case: &Case, level: &'static str, port: u16, dead: u16) -> Findings {
    let mut f = Findings {
        case: case.name,
        level,
        problems: Vec::new(),
    };
    let repo = Repo::new();
    repo.write("repo.ocu.star", "ocuroot(\"0.3.0\")\nrepo_alias(\"t\")\n");
    repo.write("envs.ocu.star", ENVS);
    repo.write(
        "p.ocu.star",
        &case
            .package
            .replace("{PORT}", &port.to_string())
            .replace("{DEAD_PORT}", &dead.to_string()),
    );
    repo.write(".gitignore", "out/\n");
    repo.commit(case.name);
    // OCUROOT_HOME in the repository: each command's log file is under
    // .ocuroot/logs, swept with the store's files.
    let env = vec![
        ("OCU_TEST_TOKEN".to_string(), TOKEN.to_string()),
        ("OCUROOT_LOG".to_string(), level.to_string()),
        (
            "OCUROOT_HOME".to_string(),
            repo.path().join(".ocuroot").to_string_lossy().into_owned(),
        ),
    ];
    let run = |f: &mut Findings, args: &[&str]| -> Ran {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let ran = run_limited(repo.path(), &args, &env, None, LIMIT);
        let what = format!("ocuroot {}", args.join(" "));
        if ran.timed_out || ran.signal.is_some() {
            f.problems
                .push(format!("{what}: did not finish (signal {:?})", ran.signal));
        }
        f.leak_in(&format!("stdout of {what}"), &ran.stdout);
        f.leak_in(&format!("stderr of {what}"), &ran.stderr);
        ran
    };

    // Environments first, for the deploy case (an ordinary release).
    let envs = run(&mut f, &["release", "new", "envs.ocu.star"]);
    if envs.code != Some(0) {
        f.problems.push(format!(
            "release new envs.ocu.star failed: {}",
            envs.stderr.trim()
        ));
    }
    run(&mut f, &["release", "lint", "p.ocu.star"]);
    run(
        &mut f,
        &["release", "lint", "p.ocu.star", "--format", "json"],
    );
    let new = run(&mut f, &["release", "new", "p.ocu.star"]);
    let new_json = run(
        &mut f,
        &["release", "new", "p.ocu.star", "--force", "--json"],
    );
    for (ran, how) in [(&new, "release new"), (&new_json, "release new --json")] {
        let both = format!("{}\n{}", ran.stdout, ran.stderr);
        match case.expect {
            Expect::Refused => {
                if ran.code != Some(1) {
                    f.problems.push(format!(
                        "{how} exited {:?}, expected a refusal (1)",
                        ran.code
                    ));
                }
                if !both.to_lowercase().contains("secret") {
                    f.problems.push(format!(
                        "{how}: the refusal does not explain it is about a secret: {}",
                        summary_line(&ran.stderr)
                    ));
                }
            }
            Expect::Masked => {
                if ran.code != Some(0) {
                    f.problems.push(format!(
                        "{how} exited {:?}, expected 0: {}",
                        ran.code,
                        summary_line(&ran.stderr)
                    ));
                }
            }
            Expect::MaskedFailure => {
                if ran.code != Some(1) {
                    f.problems
                        .push(format!("{how} exited {:?}, expected 1", ran.code));
                }
            }
        }
    }
    run(&mut f, &["release", "continue", "p.ocu.star/@r1"]);
    run(&mut f, &["release", "continue", "p.ocu.star/@r1", "--json"]);
    run(&mut f, &["release", "retry", "p.ocu.star"]);

    // Before and after a checkpoint: the log, then the files.
    let sweep_files = |f: &mut Findings, when: &str| {
        let mut files = Vec::new();
        for dir in [".ocuroot", ".store"] {
            files_below(&repo.path().join(dir), &mut files);
        }
        if !files.iter().any(|(path, _)| path.contains("/logs/")) {
            f.problems
                .push(format!("no log file under .ocuroot/logs ({when})"));
        }
        for (path, bytes) in files {
            if contains(&bytes, TOKEN.as_bytes()) {
                let shown = repo.redact(&path);
                f.problems
                    .push(format!("LEAK in store or log file {shown} ({when})"));
            }
        }
    };
    sweep_files(&mut f, "before a checkpoint");
    run(&mut f, &["state", "checkpoint"]);
    sweep_files(&mut f, "after a checkpoint");

    let listed = run(&mut f, &["state", "match", "**"]);
    let refs: BTreeSet<String> = listed.stdout.lines().map(str::to_string).collect();
    if refs.is_empty() {
        f.problems
            .push("state match '**' listed nothing".to_string());
    }
    let mut masked_seen = false;
    for r in &refs {
        let got = run(&mut f, &["state", "get", r]);
        if got.stdout.contains("<secret>") {
            masked_seen = true;
        }
    }
    let rel = "t/-/p.ocu.star/@r1";
    if let Some(masked) = case.masked_ref {
        let got = run(&mut f, &["state", "get", &format!("{rel}/{masked}")]);
        if !got.stdout.contains("<secret>") {
            f.problems.push(format!(
                "{rel}/{masked} is {:?} (exit {:?}), not masked as <secret>",
                got.stdout.trim(),
                got.code
            ));
        }
    }
    if case.expect != Expect::Refused && !masked_seen {
        // The value must show up masked somewhere: the logs, the output or
        // the stored error.
        let printed = [&new, &new_json]
            .iter()
            .any(|r| r.stdout.contains("<secret>") || r.stderr.contains("<secret>"));
        if !printed {
            f.problems
                .push("<secret> appears in no state document and no release output".to_string());
        }
    }
    if let Some(file) = case.delivered {
        let got = fs::read_to_string(repo.path().join("out").join(file)).unwrap_or_default();
        if got != TOKEN {
            f.problems.push(format!(
                "the secret did not reach the shell intact: out/{file} is {got:?}"
            ));
        }
    }
    f
}

#[test]
fn secrets_are_refused_or_masked_everywhere() {
    let (port, seen) = echo_server();
    let dead = dead_port();
    let jobs: Vec<(&Case, &'static str)> = CASES
        .iter()
        .flat_map(|c| LEVELS.iter().map(move |l| (c, *l)))
        .collect();
    let queue = Mutex::new(jobs.iter());
    let found = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                loop {
                    let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                    let Some((case, level)) = next else { break };
                    let findings = run_case(case, level, port, dead);
                    found
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(findings);
                }
            });
        }
    });
    let mut found = found.into_inner().unwrap_or_else(|e| e.into_inner());
    found.sort_by_key(|f| (f.case, f.level));

    // The server got the real value: masking must not break the request.
    let requests = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut problems: Vec<String> = Vec::new();
    if !requests.iter().any(|r| r.contains(TOKEN)) {
        problems.push(format!(
            "http-local-server: the server never got the secret in the URL: {requests:?}"
        ));
    }
    // Each problem once per case, with the levels it was seen at (most do
    // not depend on the level).
    let mut grouped: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
    let mut report = String::new();
    for f in &found {
        let status = if f.problems.is_empty() {
            "ok  "
        } else {
            "FAIL"
        };
        report.push_str(&format!("{status} {} @ OCUROOT_LOG={}\n", f.case, f.level));
        for p in &f.problems {
            grouped
                .entry((f.case, p.as_str()))
                .or_default()
                .push(f.level);
        }
    }
    for ((case, p), levels) in &grouped {
        let levels = if levels.len() == LEVELS.len() {
            "every level".to_string()
        } else {
            format!("OCUROOT_LOG={}", levels.join(","))
        };
        problems.push(format!("{case}: {p} [{levels}]"));
    }
    println!("{report}");
    assert!(
        problems.is_empty(),
        "{} problems with secrets:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

//! Live progress on a terminal: a release run under a pseudo-terminal
//! (`script`) shows the status area (running items, the done / failed /
//! waiting bar) while it runs, and clears it before the report; off a
//! terminal the output is the plain log lines, unchanged.

use std::process::{Command, Stdio};

use super::support::{Repo, ocu};

const PACKAGE: &str = r#"ocuroot("0.3.0")

def step(n):
    print("step {} started".format(n))
    host.shell("sleep 1.2")
    print("step {} done".format(n))
    return done(output={"n": n})

def one():
    return step(1)

def two():
    return step(2)

task(one, name="one")
phase("later", tasks=[task(two, name="two")])
"#;

fn repo() -> Repo {
    let repo = Repo::new();
    repo.write("repo.ocu.star", "ocuroot(\"0.3.0\")\nrepo_alias(\"tty\")\n");
    repo.write("steps.ocu.star", PACKAGE);
    repo.write(".gitignore", ".ocuroot/\n");
    repo.commit("steps");
    repo
}

/// Run `ocuroot <args>` on a pty of 120 columns; everything it drew.
fn on_a_terminal(repo: &Repo, args: &str) -> (i32, Vec<u8>) {
    let bin = env!("CARGO_BIN_EXE_ocuroot");
    let out = Command::new("script")
        .args([
            "-qfec",
            &format!("stty cols 120 rows 40; {bin} {args}"),
            "/dev/null",
        ])
        .current_dir(repo.path())
        .env("TERM", "xterm-256color")
        .env_remove("OCU_CFG_repo_alias")
        .env_remove("OCUROOT_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("script(1) runs (util-linux)");
    (out.status.code().unwrap_or(-1), out.stdout)
}

/// The screen after `bytes` were drawn on a 40 x 120 terminal.
fn screen(bytes: &[u8]) -> String {
    let size = |n| std::num::NonZeroU16::new(n).expect("not zero");
    let mut parser = vt100::Parser::new(size(40), size(120), 0);
    parser.process(bytes);
    parser.screen().contents()
}

#[test]
fn a_release_on_a_terminal_shows_a_status_area_then_clears_it() {
    let repo = repo();
    let (code, drawn) = on_a_terminal(&repo, "release new steps.ocu.star");
    let text = String::from_utf8_lossy(&drawn).into_owned();
    assert_eq!(code, 0, "{text}");
    // While it ran: the running item with its elapsed time, and the bar.
    assert!(text.contains("task/one (@r1, run 1)"), "{text}");
    assert!(
        text.contains("0 done · 0 failed · 1 running · 1 waiting"),
        "{text}"
    );
    assert!(
        text.contains("1 done · 0 failed · 1 running · 0 waiting"),
        "{text}"
    );
    // Mid-run, the screen shows the log above the area: the second step
    // running, the bar at 1 of 2.
    let needle = "1 done · 0 failed · 1 running · 0 waiting".as_bytes();
    let cut = drawn
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the bar after the first step")
        + needle.len();
    let during = screen(&drawn[..cut]);
    assert!(during.contains("step 1 done"), "{during}");
    assert!(during.contains("task/two (@r1, run 1)"), "{during}");
    assert!(during.contains("1/2"), "the bar counts 1 of 2:\n{during}");
    // At the end: the log and the report, and no status area.
    let end = screen(&drawn);
    assert!(end.contains("step 2 done"), "{end}");
    assert!(
        end.contains("Release tty/-/steps.ocu.star/@r1: complete"),
        "{end}"
    );
    for gone in ["running ·", "waiting", "(@r1, run"] {
        assert!(!end.contains(gone), "{gone:?} is still on screen:\n{end}");
    }
}

#[test]
fn off_a_terminal_and_with_json_the_output_is_the_plain_lines() {
    let repo = repo();
    let out = ocu(&repo, &["release", "new", "steps.ocu.star"]).success();
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 8, "{}", out.stderr);
    assert_eq!(
        lines[..3],
        [
            "[start] task/one (run 1)",
            "  task/one | step 1 started",
            "  task/one | step 1 done"
        ]
    );
    assert!(
        lines[3].starts_with("[complete] task/one in "),
        "{}",
        lines[3]
    );
    assert_eq!(
        lines[4..7],
        [
            "[start] task/two (run 1)",
            "  task/two | step 2 started",
            "  task/two | step 2 done"
        ]
    );
    assert!(
        lines[7].starts_with("[complete] task/two in "),
        "{}",
        lines[7]
    );
    assert!(
        !out.stderr.contains('\u{1b}'),
        "no escape codes:\n{}",
        out.stderr
    );
    // With --json on a terminal: the plain lines on stderr, the JSON report.
    let (code, drawn) = on_a_terminal(&repo, "release new steps.ocu.star --force --json");
    let text = String::from_utf8_lossy(&drawn).into_owned();
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("[start] task/one (run 1)"), "{text}");
    assert!(!text.contains("running ·"), "{text}");
    assert!(text.contains("\"status\": \"complete\""), "{text}");
}

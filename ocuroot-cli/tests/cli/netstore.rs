//! `store.git(...)` on network remotes, against the private servers of
//! `servers.rs` on 127.0.0.1: ssh (`ssh://` and an `~/.ssh/config` alias,
//! through `GIT_SSH_COMMAND`), https (a token in the URL or in
//! `OCUROOT_GIT_TOKEN`, a private CA) and `git daemon`.
//!
//! - `four_agents_share_a_release_over_{ssh,https}`: 4 agents with empty
//!   homes continue one release at the same moment: each exits 0, every
//!   task ran once, at least two agents ran some, the history is linear.
//! - `ssh_alias_from_the_ssh_config`: `ocuroot-test-alias:/path.git`.
//! - `refusals_write_nothing_{ssh,https}`: an unknown host key, a refused
//!   key, a wrong token (URL, environment), an untrusted certificate: exit
//!   1, a message that says what to do, the remote untouched.
//! - `credentials_are_never_shown`: tokens at every log level, in success
//!   and failure, are in no output, no file of the agent and no object of
//!   the remote.
//! - `eight_agents_release_new_on_an_empty_daemon_remote`: one creates the
//!   release, the others are refused with the original's message.
//! - `outage_mid_release_{daemon,https}`: the server goes away while a
//!   release runs: the command fails naming the remote, and `release
//!   continue` once it is back completes it with nothing run twice.
//!
//! Every agent runs with the network settings removed from its
//! environment, and `HOME` set to an empty directory (so no git
//! configuration of the person running the tests applies); the test gives
//! it only what it means to.
//!
//! The servers, agents and checks these tests use are in `netstore_kit.rs`.

#[path = "netstore_kit.rs"]
mod kit;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::gitstore::{KEY, Setup, assert_sound, files, in_remote};
use crate::servers::SSH_ALIAS;
use crate::support::out_lines;
use kit::{
    Env, HTTPS_USER, LIMIT, Proc, Remote, Server, TOKEN, all_at_once, base64, elapsed, forms,
    leaks_in_files, leaks_in_remote, names_of, remote_contents, run, shown, store_call, succeeded,
    task_names,
};

/// A token the server does not accept.
const WRONG_TOKEN: &str = "tok-Wr0ng-k4Pd9";

/// The author of every commit the agents make.
const AUTHOR: &str = "Ocuroot <contact@ocuroot.com>";

/// Twelve tasks in each of two phases, blocked on `key.ocu.star` until it
/// is released; each sleeps a moment and appends `<name> <agent>` to
/// `out/runs.txt`, the agent from `$AGENT`.
const SHARED: &str = r#"
def work(name, key):
    host.shell("sleep 0.2 && mkdir -p out && echo " + name + " $AGENT >> out/runs.txt")
    return done(outputs={"name": name})

phase("one", tasks=[
    task(work, name="a{}".format(i), inputs={"name": "a{}".format(i), "key": ref("./-/key.ocu.star/@/task/k#output/v")})
    for i in range(12)
])
phase("two", tasks=[
    task(work, name="b{}".format(i), inputs={"name": "b{}".format(i), "key": ref("./-/key.ocu.star/@/task/k#output/v")})
    for i in range(12)
])
"#;

/// One task appending `build` to `out/runs.txt`.
const ONE: &str = r#"
def build():
    host.shell("mkdir -p out && echo build >> out/runs.txt")
    return done(outputs={"built": True})

task(build, name="build")
"#;

/// Three phases of six tasks, each taking 0.3 s, then appending its name
/// to `out/runs.txt`.
const SLOW: &str = r#"
def work(name):
    host.shell("sleep 0.3 && mkdir -p out && echo " + name + " >> out/runs.txt")
    return done(outputs={"name": name})

phase("one", tasks=[task(work, name="a{}".format(i), inputs={"name": "a{}".format(i)}) for i in range(6)])
phase("two", tasks=[task(work, name="b{}".format(i), inputs={"name": "b{}".format(i)}) for i in range(6)])
phase("three", tasks=[task(work, name="c{}".format(i), inputs={"name": "c{}".format(i)}) for i in range(6)])
"#;

// --- 1. four agents share one release -------------------------------------

/// The shared release (blocked on `key`, then unblocked by releasing
/// `key`) continued by 4 agents with empty homes at the same moment.
fn four_agents_share_a_release(remote: Remote) {
    let started = Instant::now();
    let server = Server::start(remote);
    let path = server.new_repo("store.git");
    // https: the token from the environment, the CA from SSL_CERT_FILE
    // (the other ways are used by the other tests).
    let env = server.env_with("SSL_CERT_FILE", true);
    let s = Setup::new(
        &store_call(&server.url("store.git")),
        &[("shared.ocu.star", SHARED), ("key.ocu.star", KEY)],
    );
    run(
        &s,
        "setup",
        &env,
        &["release", "new", "shared.ocu.star", "-q"],
    )
    .success();
    run(&s, "setup", &env, &["release", "new", "key.ocu.star", "-q"]).success();
    assert!(out_lines(&s.repo, "runs.txt").is_empty(), "blocked on key");

    let agents: Vec<String> = ["a", "b", "c", "d"].iter().map(|a| a.to_string()).collect();
    let results = all_at_once(
        &s,
        &agents,
        &env,
        &[
            "release",
            "continue",
            "shared.ocu.star/@r1",
            "-q",
            "--parallel",
            "2",
        ],
    );
    for r in &results {
        assert_eq!(r.code, Some(0), "{}\n{}", r.describe(), server.log());
        eprintln!("{}: {:.1}s", r.what, r.took.as_secs_f32());
    }
    let lines = out_lines(&s.repo, "runs.txt");
    assert_eq!(
        names_of(&lines),
        task_names(&["a", "b"], 12),
        "every task ran exactly once:\n{lines:#?}"
    );
    let ran_some: BTreeSet<&str> = lines
        .iter()
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert!(
        ran_some.len() >= 2,
        "the agents shared the release's tasks: only {ran_some:?} ran any\n{lines:#?}"
    );
    eprintln!("{remote:?}: tasks ran by {ran_some:?}: {lines:?}");
    assert_eq!(
        succeeded(&s, &env, "test/-/shared.ocu.star/@r1"),
        task_names(&["a", "b"], 12)
    );
    assert_sound(&path, "state", AUTHOR);
    // Each run was claimed once and completed once.
    let subjects = in_remote(&path, &["log", "--format=%s", "state"]);
    for name in task_names(&["a", "b"], 12) {
        let run = format!("run test/-/shared.ocu.star/@r1/task/{name}/1");
        for status in ["running", "complete"] {
            let n = subjects
                .lines()
                .filter(|l| l.contains(&format!("{run} {status}")))
                .count();
            assert_eq!(n, 1, "{run} {status} committed once\n{subjects}");
        }
    }
    elapsed(&format!("four agents over {remote:?}"), started);
}

#[test]
fn four_agents_share_a_release_over_ssh() {
    four_agents_share_a_release(Remote::Ssh);
}

#[test]
fn four_agents_share_a_release_over_https() {
    four_agents_share_a_release(Remote::Https);
}

// --- 2. an ssh alias --------------------------------------------------------

#[test]
fn ssh_alias_from_the_ssh_config() {
    let started = Instant::now();
    let server = Server::start(Remote::Ssh);
    let ssh = server.ssh();
    let path = server.new_repo("store.git");
    let url = ssh.alias_url(&path);
    assert!(url.starts_with(&format!("{SSH_ALIAS}:/")), "{url}");
    let env: Env = vec![(
        "GIT_SSH_COMMAND".into(),
        format!("ssh -F {}", ssh.ssh_config.display()),
    )];
    let s = Setup::new(&store_call(&url), &[("key.ocu.star", KEY)]);
    let out = run(&s, "a", &env, &["release", "new", "key.ocu.star"]);
    assert_eq!(out.code, Some(0), "{}\n{}", out.describe(), ssh.log());
    let listed = files(&path, "state");
    for f in [
        "state/.ocuroot-store",
        "intent/.ocuroot-store",
        "state/refs/test/-/key.ocu.star/@r1/@object.json",
        "state/refs/test/-/key.ocu.star/@r1/task/k/1/status/complete/@object.json",
    ] {
        assert!(listed.contains(&f.to_string()), "{f} in {listed:#?}");
    }
    assert_sound(&path, "state", AUTHOR);
    // Another agent reads it through the alias too.
    let out = run(
        &s,
        "b",
        &env,
        &["state", "get", "test/-/key.ocu.star/@r1/task/k#output/v"],
    )
    .success();
    assert_eq!(out.stdout.trim(), "1");
    elapsed("ssh alias", started);
}

// --- 3. refusals ------------------------------------------------------------

/// `release new key.ocu.star` by a new agent with `env`, against a store at
/// `url` whose remote (at `path`) has a release already: it fails with a
/// message holding each of `says`, names no credential, and leaves the
/// remote as it was.
fn refused(s_url: &str, path: &Path, env: &Env, says: &[&str]) {
    let s = Setup::new(&store_call(s_url), &[("key.ocu.star", KEY)]);
    let before = remote_contents(path);
    let out = run(&s, "refused", env, &["release", "new", "key.ocu.star"]);
    assert_eq!(out.code, Some(1), "{}", out.describe());
    for word in says {
        assert!(out.stderr.contains(word), "{word:?} in {}", out.describe());
    }
    for token in [TOKEN, WRONG_TOKEN] {
        assert!(
            shown(&out.stderr, token).is_empty() && shown(&out.stdout, token).is_empty(),
            "a credential is shown: {}",
            out.describe()
        );
    }
    assert_eq!(
        remote_contents(path),
        before,
        "nothing written to the remote by {}",
        out.what
    );
    assert!(
        leaks_in_files(&s.home("refused"), TOKEN).is_empty()
            && leaks_in_files(&s.home("refused"), WRONG_TOKEN).is_empty(),
        "a credential in the agent's home"
    );
    eprintln!("refused as expected: {}", out.stderr.trim());
}

/// The remote `store.git` of `server` with a release in it, made by an
/// agent that reaches it.
fn remote_with_a_release(server: &Server) -> PathBuf {
    let path = server.new_repo("store.git");
    let s = Setup::new(
        &store_call(&server.url_with_token("store.git")),
        &[("key.ocu.star", KEY)],
    );
    run(
        &s,
        "good",
        &server.env(),
        &["release", "new", "key.ocu.star", "-q"],
    )
    .success();
    assert!(
        files(&path, "state")
            .contains(&"state/refs/test/-/key.ocu.star/@r1/@object.json".to_string())
    );
    path
}

#[test]
fn refusals_write_nothing_ssh() {
    let started = Instant::now();
    let server = Server::start(Remote::Ssh);
    let ssh = server.ssh();
    let path = remote_with_a_release(&server);
    let url = server.url("store.git");

    // An unknown host key: known_hosts is empty, and stays so.
    let env: Env = vec![("GIT_SSH_COMMAND".into(), ssh.empty_known_hosts_command())];
    refused(&url, &path, &env, &["host key", "known_hosts"]);
    assert_eq!(std::fs::read_to_string(&ssh.empty_known_hosts).unwrap(), "");

    // A key the server does not accept, by URL and by alias.
    let env: Env = vec![("GIT_SSH_COMMAND".into(), ssh.wrong_key_command())];
    refused(&url, &path, &env, &["refused"]);
    refused(&ssh.alias_url(&path), &path, &env, &["refused"]);

    // On an empty remote, no branch is made.
    let empty = server.new_repo("empty.git");
    let env: Env = vec![("GIT_SSH_COMMAND".into(), ssh.empty_known_hosts_command())];
    refused(
        &server.url("empty.git"),
        &empty,
        &env,
        &["host key", "known_hosts"],
    );
    assert_eq!(in_remote(&empty, &["for-each-ref"]), "");
    elapsed("ssh refusals", started);
}

#[test]
fn refusals_write_nothing_https() {
    let started = Instant::now();
    let server = Server::start(Remote::Https);
    let https = server.https();
    let path = remote_with_a_release(&server);
    let ca: Env = vec![("GIT_SSL_CAINFO".into(), https.ca_file.display().to_string())];

    // A wrong token in the URL.
    let wrong_url = https
        .url_with_token("store.git")
        .replace(TOKEN, WRONG_TOKEN);
    assert!(wrong_url.contains(WRONG_TOKEN));
    refused(&wrong_url, &path, &ca, &["refused", "HTTP 401"]);

    // A wrong token in the environment.
    let mut env = ca.clone();
    env.push(("OCUROOT_GIT_TOKEN".into(), WRONG_TOKEN.into()));
    env.push(("OCUROOT_GIT_USERNAME".into(), HTTPS_USER.into()));
    refused(
        &server.url("store.git"),
        &path,
        &env,
        &["refused", "HTTP 401"],
    );

    // An untrusted certificate: another CA given, or none (the system's
    // bundle does not hold the private CA).
    let other = tempfile::tempdir().unwrap();
    let other_ca = other.path().join("other-ca.pem");
    let made = Command::new("openssl")
        .args(["req", "-x509", "-nodes", "-days", "30", "-sha256"])
        .args(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
        .args(["-subj", "/CN=another test CA"])
        .arg("-keyout")
        .arg(other.path().join("other-ca.key"))
        .arg("-out")
        .arg(&other_ca)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl");
    assert!(made.status.success(), "{made:?}");
    let url = https.url_with_token("store.git");
    let env: Env = vec![("GIT_SSL_CAINFO".into(), other_ca.display().to_string())];
    refused(&url, &path, &env, &["not trusted", "GIT_SSL_CAINFO"]);
    refused(&url, &path, &Vec::new(), &["not trusted", "GIT_SSL_CAINFO"]);

    // On an empty remote, no branch is made.
    let empty = server.new_repo("empty.git");
    let wrong_url = https
        .url_with_token("empty.git")
        .replace(TOKEN, WRONG_TOKEN);
    refused(&wrong_url, &empty, &ca, &["refused", "HTTP 401"]);
    assert_eq!(in_remote(&empty, &["for-each-ref"]), "");
    elapsed("https refusals", started);
}

// --- 4. credentials are never shown -----------------------------------------

#[test]
fn credentials_are_never_shown() {
    let started = Instant::now();
    // The checks find what they look for.
    assert_eq!(
        forms(TOKEN)[1],
        "Y2ktYm90OnRvay1OM3RTdDByZS1xN1p4Mg==",
        "base64 of {HTTPS_USER}:{TOKEN}"
    );
    assert_eq!(
        (base64(b"ab"), base64(b"abcd")),
        ("YWI=".into(), "YWJjZA==".into())
    );
    assert!(shown("TRACE util: 2f69 6e66 6f2f  /info/", TOKEN).is_empty());
    let dump: String = forms(TOKEN)[1]
        .as_bytes()
        .chunks(8)
        .map(|c| {
            let hex: Vec<String> = c
                .chunks(2)
                .map(|p| p.iter().map(|b| format!("{b:02x}")).collect())
                .collect();
            format!("TRACE util: {}  ........\n", hex.join(" "))
        })
        .collect();
    assert_eq!(shown(&dump, TOKEN), [forms(TOKEN)[1].clone()], "{dump}");
    let server = Server::start(Remote::Https);
    let mut problems = Vec::new();
    // The token in the URL, then in the environment.
    for (name, token_in_url) in [("url.git", true), ("env.git", false)] {
        let path = server.new_repo(name);
        let url = match token_in_url {
            true => server.url_with_token(name),
            false => server.url(name),
        };
        let env = server.env_with("GIT_SSL_CAINFO", !token_in_url);
        let s = Setup::new(&store_call(&url), &[("key.ocu.star", KEY)]);
        // A store whose repository is not on the server (HTTP 404).
        let missing = Setup::new(
            &store_call(&url.replace(name, "missing.git")),
            &[("key.ocu.star", KEY)],
        );
        let mut outputs = Vec::new();
        for level in ["error", "info", "debug", "trace"] {
            let mut env = env.clone();
            env.push(("OCUROOT_LOG".into(), level.into()));
            let agent = format!("agent-{level}");
            let new = run(&s, &agent, &env, &["release", "new", "key.ocu.star", "-f"]);
            assert_eq!(new.code, Some(0), "{}", new.describe());
            let matched = run(&s, &agent, &env, &["state", "match", "**"]).success();
            assert!(
                matched.stdout.contains("test/-/key.ocu.star/@r1"),
                "{}",
                matched.describe()
            );
            let failed = run(&missing, &agent, &env, &["release", "new", "key.ocu.star"]);
            assert_eq!(failed.code, Some(1), "{}", failed.describe());
            assert!(
                failed.stderr.contains("missing.git"),
                "the failure names the remote: {}",
                failed.describe()
            );
            if level == "trace" {
                eprintln!("a missing repository: {}", failed.stderr.trim());
            }
            outputs.extend([new, matched, failed]);
        }
        for out in &outputs {
            for (stream, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
                for form in shown(text, TOKEN) {
                    problems.push(format!("{name}: {form:?} in {stream} of {}", out.what));
                }
            }
        }
        for setup in [&s, &missing] {
            for f in leaks_in_files(&setup.dir.path().join("homes"), TOKEN) {
                problems.push(format!("{name}: the token in an agent's file {f}"));
            }
        }
        for leak in leaks_in_remote(&path, TOKEN) {
            problems.push(format!("{name}: the token in {leak}"));
        }
        // The check finds the token where it is: in `repo.ocu.star`.
        if token_in_url {
            assert!(!leaks_in_files(s.repo.path(), TOKEN).is_empty());
        }
    }
    assert!(
        problems.is_empty(),
        "credentials shown:\n{}",
        problems.join("\n")
    );
    elapsed("credentials", started);
}

// --- 5. eight agents, one commit, an empty remote ---------------------------

#[test]
fn eight_agents_release_new_on_an_empty_daemon_remote() {
    let started = Instant::now();
    let server = Server::start(Remote::Daemon);
    let agents: Vec<String> = (0..8).map(|i| format!("agent{i}")).collect();
    for round in 1..=3 {
        let name = format!("store-{round}.git");
        let path = server.new_repo(&name);
        assert_eq!(in_remote(&path, &["for-each-ref"]), "", "an empty remote");
        let s = Setup::new(&store_call(&server.url(&name)), &[("one.ocu.star", ONE)]);
        let results = all_at_once(
            &s,
            &agents,
            &Vec::new(),
            &["release", "new", "one.ocu.star", "-q"],
        );
        let codes: Vec<Option<i32>> = results.iter().map(|r| r.code).collect();
        assert_eq!(
            codes.iter().filter(|c| **c == Some(0)).count(),
            1,
            "round {round}: one agent creates the release: {codes:?}"
        );
        for r in &results {
            let refused = r.code == Some(1) && r.stderr.contains("releases for this commit");
            assert!(
                r.code == Some(0) || refused,
                "round {round}: {}",
                r.describe()
            );
        }
        assert_eq!(
            out_lines(&s.repo, "runs.txt"),
            ["build"],
            "round {round}: built once"
        );
        let releases: Vec<String> = files(&path, "state")
            .into_iter()
            .filter(|f| {
                f.starts_with("state/refs/test/-/one.ocu.star/@r") && f.matches('/').count() == 6
            })
            .collect();
        assert_eq!(
            releases,
            ["state/refs/test/-/one.ocu.star/@r1/@object.json"],
            "round {round}: one release"
        );
        assert_sound(&path, "state", AUTHOR);
        let took: Vec<String> = results
            .iter()
            .map(|r| format!("{:.1}", r.took.as_secs_f32()))
            .collect();
        eprintln!("round {round}: codes {codes:?}, seconds {took:?}");
    }
    elapsed("eight agents on an empty remote", started);
}

// --- 6. an outage mid-release -----------------------------------------------

fn outage_mid_release(remote: Remote) {
    let started = Instant::now();
    let mut server = Server::start(remote);
    let path = server.new_repo("store.git");
    let url = server.url_with_token("store.git");
    let env = server.env();
    let s = Setup::new(&store_call(&url), &[("slow.ocu.star", SLOW)]);
    let args = ["release", "new", "slow.ocu.star", "--parallel", "2"];
    let mut agent = Proc::spawn(&s, "a", &env, &args, None);
    let deadline = Instant::now() + LIMIT;
    while out_lines(&s.repo, "runs.txt").len() < 7 {
        if agent.exited() {
            panic!(
                "the release ended before the outage\n{}",
                agent.finish().describe()
            );
        }
        assert!(
            Instant::now() < deadline,
            "the release did not get to phase two"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    server.stop();
    let out = agent.finish();
    let ran_before = out_lines(&s.repo, "runs.txt").len();
    eprintln!(
        "{remote:?}: during the outage: {} ran, then: {}",
        ran_before,
        out.stderr.trim()
    );
    assert!(
        out.code.is_some_and(|c| c != 0),
        "the release fails while the remote is away: {}",
        out.describe()
    );
    let named = format!("127.0.0.1:{}/store.git", server.port());
    assert!(
        out.stderr.contains(&named),
        "the failure names the remote ({named}): {}",
        out.describe()
    );
    assert!(
        shown(&out.stderr, TOKEN).is_empty() && shown(&out.stdout, TOKEN).is_empty(),
        "no credential shown: {}",
        out.describe()
    );

    server.start_again();
    let out = run(
        &s,
        "a",
        &env,
        &[
            "release",
            "continue",
            "slow.ocu.star/@r1",
            "--parallel",
            "2",
        ],
    );
    assert_eq!(out.code, Some(0), "{}", out.describe());
    assert!(
        shown(&out.stderr, TOKEN).is_empty() && shown(&out.stdout, TOKEN).is_empty(),
        "no credential shown: {}",
        out.describe()
    );
    let all = task_names(&["a", "b", "c"], 6);
    assert_eq!(
        names_of(&out_lines(&s.repo, "runs.txt")),
        all,
        "every task ran exactly once"
    );
    assert_eq!(
        succeeded(&s, &env, "test/-/slow.ocu.star/@r1"),
        all,
        "the release is complete"
    );
    assert_sound(&path, "state", AUTHOR);
    assert!(leaks_in_remote(&path, TOKEN).is_empty());
    elapsed(&format!("outage over {remote:?}"), started);
}

#[test]
fn outage_mid_release_daemon() {
    outage_mid_release(Remote::Daemon);
}

#[test]
fn outage_mid_release_https() {
    outage_mid_release(Remote::Https);
}

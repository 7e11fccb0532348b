//! `ocuroot state view`: the server started on an ephemeral port over a
//! real repository holding releases in every state (complete, failed,
//! failed and retried, blocked on an approval, paused, running), every
//! page's HTML, refusals, approvals with `--allow-intent`, `--export`, and
//! (when Chromium is installed) what a browser shows.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::support::{Repo, StateStore, fixtures, matches, ocu, ocu_env, std_ocuroot_in};

/// The repository with a release in every state; the `slow` release is
/// left running (its process is returned) until `slow-go` is created.
pub(crate) struct Fixture {
    pub repo: Repo,
    pub slow: Child,
}

impl Drop for Fixture {
    /// Let the slow release finish; if it does not within 10 s, kill its
    /// process group (the release and the shell of its task, which would
    /// otherwise outlive the test waiting for a file in a removed
    /// directory).
    fn drop(&mut self) {
        let _ = std::fs::write(self.repo.path().join("slow-go"), "");
        let start = Instant::now();
        while matches!(self.slow.try_wait(), Ok(None)) && start.elapsed() < Duration::from_secs(10)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.slow.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.slow.wait();
    }
}

const SLOW_RUN: &str = "shop/-/slow.ocu.star/@r1/task/wait/1";

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Fixture {
    pub(crate) fn new() -> Fixture {
        let repo = Repo::new();
        repo.copy_fixture_dir("view");
        repo.write(".gitignore", ".store/\nfixed\nslow-go\n");
        repo.commit("view fixture");
        ocu(&repo, &["release", "new", "environments.ocu.star"]).success();
        ocu(&repo, &["release", "new", "web.ocu.star"]).success();
        ocu(&repo, &["release", "new", "broken.ocu.star"]).failure();
        ocu(&repo, &["release", "new", "flaky.ocu.star"]).failure();
        repo.write("fixed", "");
        ocu(&repo, &["release", "retry", "flaky.ocu.star"]).success();
        ocu(&repo, &["release", "new", "paused.ocu.star"]).success();
        let slow = std_ocuroot_in(repo.path())
            .args(["release", "new", "slow.ocu.star"])
            // Its own process group, so that Drop can end its task's shell.
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ocuroot starts");
        let fixture = Fixture { repo, slow };
        wait_for("the slow release to run", || {
            !matches(&fixture.repo, &format!("{SLOW_RUN}/status/running")).is_empty()
        });
        fixture
    }

    /// Let the slow release finish, and wait for it.
    pub(crate) fn finish_slow(&mut self) {
        std::fs::write(self.repo.path().join("slow-go"), "").unwrap();
        let status = self.slow.wait().expect("the slow release ends");
        assert!(status.success(), "the slow release failed: {status}");
    }
}

/// A running `ocuroot state view`, stopped when dropped.
pub(crate) struct View {
    child: Child,
    pub addr: String,
}

impl Drop for View {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl View {
    pub(crate) fn start(dir: &Path, extra: &[&str]) -> View {
        View::start_with(dir, extra, &[])
    }

    pub(crate) fn start_with(dir: &Path, extra: &[&str], env: &[(&str, &Path)]) -> View {
        let mut args = vec!["state", "view", "--port", "0"];
        args.extend(extra);
        View::spawn(dir, &args, env)
    }

    /// `ocuroot <args>` in `dir`, a command that prints the URL it serves
    /// on its first line (`state view`, `preview`).
    pub(crate) fn spawn(dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> View {
        let mut cmd = std_ocuroot_in(dir);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("ocuroot starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {line:?}"));
        let addr = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        View { child, addr }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub(crate) fn get(&self, path: &str) -> Reply {
        self.request("GET", path, &[], "")
    }

    pub(crate) fn post(&self, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        self.request("POST", path, headers, body)
    }

    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        let mut stream = TcpStream::connect(&self.addr).expect("the view accepts connections");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            head.push_str(&format!("Host: {}\r\n", self.addr));
        }
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body.as_bytes()).unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        let text = String::from_utf8(raw).expect("the reply is UTF-8");
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status in {head:?}"));
        Reply {
            status,
            head: head.to_string(),
            body: body.to_string(),
        }
    }
}

/// An HTTP reply.
pub(crate) struct Reply {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Reply {
    #[track_caller]
    pub(crate) fn ok(self) -> Reply {
        assert_eq!(self.status, 200, "{}\n\n{}", self.head, self.body);
        self
    }

    #[track_caller]
    pub(crate) fn expect(self, status: u16) -> Reply {
        assert_eq!(self.status, status, "{}\n\n{}", self.head, self.body);
        self
    }

    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }

    #[track_caller]
    pub(crate) fn has(&self, text: &str) -> &Reply {
        assert!(self.body.contains(text), "{text:?} not in\n{}", self.body);
        self
    }

    #[track_caller]
    pub(crate) fn lacks(&self, text: &str) -> &Reply {
        assert!(!self.body.contains(text), "{text:?} is in\n{}", self.body);
        self
    }

    /// The `value` of the hidden input `name` in the page's first form.
    pub(crate) fn hidden(&self, name: &str) -> String {
        let at = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&at).unwrap_or_else(|| panic!("no {name}")) + at.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_string()
    }
}

fn q(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn release_path(r: &str) -> String {
    format!("/release?ref={}", q(r))
}

#[test]
fn every_page_of_a_repository_with_releases_in_every_state() {
    let mut fx = Fixture::new();
    let view = View::start(fx.repo.path(), &[]);

    // The overview: the matrix, counts, environments; live while running.
    let home = view.get("/").ok();
    home.has("<table id=\"matrix\"")
        .has("web.ocu.star")
        .has("broken.ocu.star")
        .has("production")
        .has("region=eu-west-1")
        .has("data-live=\"1\"")
        .has("latest running")
        .has("st-deployed")
        .has("st-blocked");
    assert_eq!(
        home.header("Content-Type").as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert!(home.header("Content-Security-Policy").is_some());

    // A blocked release: outputs escaped, what it waits for, no form.
    let web = view.get(&release_path("shop/-/web.ocu.star/@r1")).ok();
    web.has("st-blocked")
        .has("&lt;script&gt;alert('owned')&lt;/script&gt;")
        .lacks("<script>alert")
        .has("shop/-/web.ocu.star/@r1/custom/approval")
        .has("ocuroot state set shop/-/web.ocu.star/@r1/custom/approval")
        .lacks("Approve…")
        .has("https://staging.example.com");

    // A failed release: the error, its one line and the Starlark stack.
    view.get(&release_path("shop/-/broken.ocu.star/@r1"))
        .ok()
        .has("st-failed")
        .has("exit status 3")
        .has("Starlark stack")
        .has("check (broken.ocu.star");

    // Failed, then retried: complete with the earlier attempt.
    view.get(&release_path("shop/-/flaky.ocu.star/@r1"))
        .ok()
        .has("st-complete")
        .has("earlier attempts")
        .has("st-failed_retried")
        .has("run 2");

    // Paused: what the next() function waits for.
    view.get(&release_path("shop/-/paused.ocu.star/@r1"))
        .ok()
        .has("st-paused")
        .has("shop/-/paused.ocu.star/@r1/custom/go");

    // Running: the release and its run's log, written while it runs.
    view.get(&release_path("shop/-/slow.ocu.star/@r1"))
        .ok()
        .has("st-running")
        .has("data-live=\"1\"");
    // The line reaches the store within the flusher's half second.
    let run_path = format!("/run?ref={}", q(SLOW_RUN));
    wait_for("the live log line on the run page", || {
        view.get(&run_path).ok().body.contains("slow started")
    });
    view.get(&run_path)
        .ok()
        .has("(live)")
        .has("data-live=\"1\"")
        .lacks("slow finished");

    // A failed run's page: its error and log.
    view.get(&format!(
        "/run?ref={}",
        q("shop/-/broken.ocu.star/@r1/task/build/1")
    ))
    .ok()
    .has("checking 1")
    .has("Starlark stack");

    // The plan and the graph.
    view.get("/plan")
        .ok()
        .has("<svg id=\"graph\"")
        .has("deploy/production")
        .has("custom state");

    // The ref browser: a document, its children, a link, a glob.
    view.get(&format!("/ref?ref={}", q("@/environment/production")))
        .ok()
        .has("eu-west-1");
    view.get(&format!(
        "/ref?ref={}",
        q("shop/-/web.ocu.star/@/deploy/staging")
    ))
    .ok()
    .has("A link to");
    view.get(&format!(
        "/ref?ref={}",
        q("shop/-/web.ocu.star/@r1/task/build")
    ))
    .ok()
    .has("shop/-/web.ocu.star/@r1/task/build/1");
    view.get(&format!("/match?glob={}", q("**/@r*")))
        .ok()
        .has("shop/-/slow.ocu.star/@r1");
    // The original's paths.
    view.get("/ref/@/environment/production")
        .ok()
        .has("eu-west-1");
    view.get("/match/**/@r*")
        .ok()
        .has("shop/-/paused.ocu.star/@r1");

    // Bad requests: a clear error page with the right status.
    view.get(&format!("/release?ref={}", q("shop/-/nope.ocu.star/@r9")))
        .expect(404);
    view.get(&format!("/ref?ref={}", q("a b//@@"))).expect(400);
    view.get("/release").expect(400);
    view.get("/nowhere").expect(404);
    view.get(&format!("/ref?ref={}", q("<img src=x onerror=alert(1)>")))
        .lacks("<img src=x");

    // Read-only: no approval page, and POSTs are refused.
    view.get(&format!(
        "/approve?release={}&ref={}",
        q("shop/-/web.ocu.star/@r1"),
        q("shop/-/web.ocu.star/@r1/custom/approval")
    ))
    .expect(403);
    view.post("/approve", &[], "value=true").expect(403);

    // When the running release finishes, its pages say so.
    fx.finish_slow();
    view.get(&release_path("shop/-/slow.ocu.star/@r1"))
        .ok()
        .has("st-complete")
        .has("data-live=\"0\"");
    view.get(&format!("/run?ref={}", q(SLOW_RUN)))
        .ok()
        .has("slow finished")
        .lacks("(live)");

    // A deletion in intent is marked; once applied, a teardown shows as one.
    let staging = "shop/-/web.ocu.star/@/deploy/staging";
    ocu(&fx.repo, &["state", "delete", staging]).success();
    view.get("/")
        .ok()
        .has("≠ intent (to delete)")
        .lacks("st st-torn_down");
    ocu(&fx.repo, &["state", "apply", staging]).success();
    view.get("/")
        .ok()
        .has("st st-torn_down")
        .lacks("≠ intent (to delete)");
    view.get(&release_path("shop/-/web.ocu.star/@r1"))
        .ok()
        .has("st st-torn_down")
        .has("run 2");
}

#[test]
fn approving_from_the_page_unblocks_the_release() {
    let fx = Fixture::new();
    let view = View::start(fx.repo.path(), &["--allow-intent"]);
    let rel = "shop/-/web.ocu.star/@r1";
    let input = "shop/-/web.ocu.star/@r1/custom/approval";
    let web = view.get(&release_path(rel)).ok();
    web.has("Approve…");
    let form = view
        .get(&format!("/approve?release={}&ref={}", q(rel), q(input)))
        .ok();
    let token = form.hidden("token");
    assert_eq!(token.len(), 48);

    let body = |token: &str| {
        format!(
            "token={}&release={}&ref={}&format=string&value={}",
            q(token),
            q(rel),
            q(input),
            q("alice")
        )
    };
    // The diff comes before anything is written.
    view.post("/approve/preview", &[], &body(&token))
        .ok()
        .has("+ &quot;alice&quot;")
        .has("Write and apply");
    assert!(matches(&fx.repo, input).is_empty());
    // Without the token, from another site, or to another host: refused.
    view.post("/approve", &[], &body("")).expect(403);
    view.post("/approve", &[], &body("0".repeat(48).as_str()))
        .expect(403);
    view.post(
        "/approve",
        &[("Origin", "http://evil.example")],
        &body(&token),
    )
    .expect(403);
    view.post("/approve", &[("Host", "evil.example:80")], &body(&token))
        .expect(403);
    assert!(matches(&fx.repo, input).is_empty());
    // Something the release does not wait for: refused.
    let other = body(&token).replace(&q(input), &q("shop/-/web.ocu.star/@r1/custom/other"));
    view.post("/approve", &[], &other).expect(409);

    let done = view.post(
        "/approve",
        &[("Origin", &format!("http://{}", view.addr))],
        &body(&token),
    );
    let done = done.expect(303);
    let to = done.header("Location").expect("a redirect");
    view.get(&to).ok().has("Wrote and applied");
    assert_eq!(matches(&fx.repo, input), vec![input.to_string()]);

    let out = ocu(&fx.repo, &["release", "continue", rel]).success();
    assert!(out.stdout.contains(": complete"), "{}", out.stdout);
    view.get(&release_path(rel))
        .ok()
        .has("st-complete")
        .has("&quot;approval&quot;: &quot;alice&quot;")
        .lacks("Approve…");
    view.get(&format!(
        "/run?ref={}",
        q("shop/-/web.ocu.star/@r1/deploy/production/1")
    ))
    .ok()
    .has("approved: alice");
}

#[test]
fn export_writes_static_pages_that_link_to_each_other() {
    let mut fx = Fixture::new();
    fx.finish_slow();
    let out_dir = fx.repo.path().join("site");
    let out = ocu(
        &fx.repo,
        &["state", "view", "--export", out_dir.to_str().unwrap()],
    )
    .success();
    assert!(out.stdout.contains("index.html"), "{}", out.stdout);
    let index = std::fs::read_to_string(out_dir.join("index.html")).unwrap();
    assert!(!index.contains("<script"), "an export has no scripts");
    let mut linked = 0;
    for href in index.split("href=\"").skip(1) {
        let target = &href[..href.find('"').unwrap()];
        assert!(!target.starts_with('/'), "absolute link {target}");
        assert!(out_dir.join(target).is_file(), "{target} is not exported");
        linked += 1;
    }
    assert!(linked > 5, "{linked} links");
    let web = std::fs::read_dir(&out_dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().contains("web.ocu.star"))
        .expect("the web release is exported");
    let page = std::fs::read_to_string(web).unwrap();
    assert!(page.contains("&lt;script&gt;alert"));
    assert!(!page.contains("Approve…"));

    // An export into a file that exists: a clear error.
    std::fs::write(fx.repo.path().join("taken"), "").unwrap();
    let err = ocu(&fx.repo, &["state", "view", "--export", "taken"]).failure();
    assert!(err.stderr.contains("taken"), "{}", err.stderr);
}

#[test]
fn a_damaged_release_is_reported_where_it_is_and_the_rest_is_shown() {
    let repo = Repo::new();
    repo.write("repo.ocu.star", "ocuroot(\"0.3.0\")\nrepo_alias(\"r\")\n");
    repo.write(".gitignore", ".ocuroot/\nsite/\n");
    repo.commit("config");
    StateStore::create(&repo)
        .doc("@/environment/prod", serde_json::json!({"name": "prod", "attributes": {"note": "</td><script>x()</script>"}}))
        .doc("r/-/bad.ocu.star/@r1", serde_json::json!({"commit": 5}))
        .doc("r/-/bad.ocu.star/@r1/task/build/1/status/pending", serde_json::json!({}));
    let view = View::start(repo.path(), &[]);
    view.get("/")
        .ok()
        .has("bad.ocu.star")
        .has("st-unreadable")
        .has("r/-/bad.ocu.star/@r1")
        .has("&lt;/td&gt;&lt;script&gt;x()&lt;/script&gt;")
        .lacks("<script>x()");
    let page = view.get(&release_path("r/-/bad.ocu.star/@r1"));
    assert_eq!(page.status, 500, "{}", page.body);
    page.has("r/-/bad.ocu.star/@r1");
    let out = ocu(&repo, &["state", "view", "--export", "site"]).failure();
    assert!(
        out.stderr.contains("r/-/bad.ocu.star/@r1"),
        "{}",
        out.stderr
    );
    assert!(repo.path().join("site/index.html").is_file());
}

#[test]
fn over_a_git_store_each_page_shows_what_other_agents_did_since() {
    let remotes = tempfile::tempdir().unwrap();
    let bare = remotes.path().join("store.git");
    let made = std::process::Command::new("git")
        .args(["init", "-q", "--bare"])
        .arg(&bare)
        .status()
        .unwrap();
    assert!(made.success());
    let repo = Repo::new();
    repo.write(
        "repo.ocu.star",
        &format!(
            "ocuroot(\"0.3.0\")\nrepo_alias(\"shop\")\nstore.set(store.git(\"{}\", branch=\"ocuroot\"))\n",
            bare.display()
        ),
    );
    for file in ["environments.ocu.star", "web.ocu.star", "broken.ocu.star"] {
        repo.copy_file(&fixtures().join("view").join(file), file);
    }
    repo.commit("git store");
    let home = |agent: &str| remotes.path().join("homes").join(agent);
    let home_a = home("a");
    let agent_a = [("OCUROOT_HOME", home_a.to_str().unwrap())];
    ocu_env(
        &repo,
        &agent_a,
        &["release", "new", "environments.ocu.star"],
    )
    .success();
    ocu_env(&repo, &agent_a, &["release", "new", "web.ocu.star"]).success();
    // The view is another agent, with its own clone of the store.
    let view = View::start_with(repo.path(), &[], &[("OCUROOT_HOME", &home("view"))]);
    view.get("/")
        .ok()
        .has("web.ocu.star")
        .has("st-deployed")
        .lacks("broken.ocu.star");
    ocu_env(&repo, &agent_a, &["release", "new", "broken.ocu.star"]).failure();
    // Fetched before the page: no waiting for the store's refresh interval.
    view.get("/").ok().has("broken.ocu.star").has("st-failed");
}

/// Chromium from Debian, when installed (`scripts/test-all.sh` installs it
/// and sets `OCUROOT_REQUIRE_BROWSER=1`, which makes its absence a failure).
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("OCUROOT_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if path.is_file() {
        return Some(path);
    }
    assert!(
        std::env::var_os("OCUROOT_REQUIRE_BROWSER").is_none(),
        "OCUROOT_REQUIRE_BROWSER is set but {} is not installed",
        path.display()
    );
    eprintln!("browser test skipped: {} is not installed", path.display());
    None
}

fn headless(chromium: &Path, profile: &Path, args: &[&str], url: &str) -> String {
    headless_logged(chromium, profile, args, url).0
}

/// What headless Chromium printed (the DOM, with `--dump-dom`) and what it
/// logged: every console message of the page, with
/// `--enable-logging=stderr`, is a line with `:CONSOLE`.
fn headless_logged(chromium: &Path, profile: &Path, args: &[&str], url: &str) -> (String, String) {
    let out = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1400,900",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The console messages in what Chromium logged.
fn console(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains(":CONSOLE")).collect()
}

#[test]
fn a_real_browser_shows_the_overview_a_release_and_a_preview() {
    let Some(chromium) = chromium() else {
        return;
    };
    let fx = Fixture::new();
    let view = View::start(fx.repo.path(), &["--allow-intent"]);
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("view-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let profile = tempfile::tempdir().unwrap();

    // The DOM after scripts ran: what a person sees.
    let dom = headless(&chromium, profile.path(), &["--dump-dom"], &view.url("/"));
    for seen in [
        "web.ocu.star",
        "deployed",
        "blocked",
        "running",
        "eu-west-1",
    ] {
        assert!(dom.contains(seen), "{seen:?} not shown:\n{dom}");
    }
    let release = view.url(&release_path("shop/-/web.ocu.star/@r1"));
    let dom = headless(&chromium, profile.path(), &["--dump-dom"], &release);
    assert!(dom.contains("&lt;script&gt;alert('owned')&lt;/script&gt;"));
    assert!(!dom.contains("<script>alert"));
    assert!(dom.contains("Approve…"));
    // The refresh script keeps the page live while work runs: after a few
    // seconds of virtual time the page has been fetched and replaced, and
    // still shows the release.
    let running = view.url(&release_path("shop/-/slow.ocu.star/@r1"));
    let dom = headless(
        &chromium,
        profile.path(),
        &["--dump-dom", "--virtual-time-budget=5000"],
        &running,
    );
    assert!(dom.contains("data-live=\"1\""), "{dom}");
    assert!(dom.contains("task/wait"), "{dom}");

    // `ocuroot preview`: the package's phases and work, after the page
    // has fetched itself again, with nothing on the console (no error, no
    // refused script). Console messages are seen: a page logging one shows.
    let logging = ["--enable-logging=stderr", "--v=0"];
    let probe_dir = tempfile::tempdir().unwrap();
    let probe_page = probe_dir.path().join("probe.html");
    std::fs::write(&probe_page, "<script>console.error('probe')</script>").unwrap();
    let (_, probe) = headless_logged(
        &chromium,
        profile.path(),
        &[&logging[..], &["--dump-dom"]].concat(),
        &format!("file://{}", probe_page.display()),
    );
    assert!(
        console(&probe).iter().any(|l| l.contains("probe")),
        "Chromium logs no console messages:\n{probe}"
    );
    let preview = View::spawn(
        fx.repo.path(),
        &["preview", "web.ocu.star", "--port", "0"],
        &[],
    );
    let (dom, log) = headless_logged(
        &chromium,
        profile.path(),
        &[&logging[..], &["--dump-dom", "--virtual-time-budget=5000"]].concat(),
        &preview.url("/"),
    );
    for seen in [
        "Phase 2 “staging”",
        "Phase 3 “production”",
        "task/build",
        "deploy/staging",
        "deploy/production",
        "up_approved()",
        "./custom/approval",
        "data-live=\"1\"",
    ] {
        assert!(dom.contains(seen), "{seen:?} not shown:\n{dom}");
    }
    assert_eq!(console(&log), Vec::<&str>::new(), "the preview logged");

    for (name, url) in [
        ("overview", view.url("/")),
        ("release", release),
        ("plan", view.url("/plan")),
        ("preview", preview.url("/")),
    ] {
        let file = shots.join(format!("{name}.png"));
        let _ = std::fs::remove_file(&file);
        headless(
            &chromium,
            profile.path(),
            &[&format!("--screenshot={}", file.display())],
            &url,
        );
        let png = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 10_000,
            "{name}.png"
        );
        eprintln!("screenshot: {}", file.display());
    }
}

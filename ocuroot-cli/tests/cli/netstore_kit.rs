//! What the network store tests of `netstore.rs` share: a private server
//! of each kind with its bare repositories ([`Server`]), agents run as
//! `ocuroot` processes in process groups of their own with the network
//! settings removed from their environment ([`Proc`], [`run`],
//! [`all_at_once`]), and the checks: what a remote holds, where a token
//! leaks (as it is, in base64, in a hex dump), which tasks ran.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::gitstore::{Setup, in_remote};
use crate::servers::{GitDaemon, HttpsServer, SshServer, bare_repo};
use crate::support::clean_command;

/// How long one `ocuroot` command may take before it is killed and the
/// test fails.
pub(crate) const LIMIT: Duration = Duration::from_secs(180);

/// The https server's user and token. The token is distinctive: any
/// occurrence of it in output or files is a leak.
pub(crate) const HTTPS_USER: &str = "ci-bot";
pub(crate) const TOKEN: &str = "tok-N3tSt0re-q7Zx2";

/// Environment variables that choose how remotes are reached (or that git
/// reads its configuration through): removed from every agent.
const NETWORK_ENV: &[&str] = &[
    "GIT_SSH_COMMAND",
    "GIT_SSH",
    "GIT_SSH_VARIANT",
    "OCUROOT_SSH_SHARE",
    "OCUROOT_GIT_TOKEN",
    "OCUROOT_GIT_USERNAME",
    "GIT_SSL_CAINFO",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "GIT_CONFIG_GLOBAL",
    "GIT_CONFIG_SYSTEM",
    "XDG_CONFIG_HOME",
    "SSH_AUTH_SOCK",
    "RUST_LOG",
];

// --- servers -------------------------------------------------------------

/// A kind of network remote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Remote {
    Ssh,
    Https,
    Daemon,
}

enum Kind {
    Ssh(SshServer),
    Https(HttpsServer),
    Daemon(GitDaemon),
}

/// A private server of one kind, and the bare repositories it serves, in
/// a temporary directory.
pub(crate) struct Server {
    kind: Kind,
    repos: PathBuf,
    // Last: the servers are stopped (dropped) before their files go.
    _dir: TempDir,
}

impl Server {
    pub(crate) fn start(remote: Remote) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let (kind, repos) = match remote {
            Remote::Ssh => {
                let repos = dir.path().join("ssh-repos");
                (Kind::Ssh(SshServer::start(dir.path())), repos)
            }
            Remote::Https => {
                let https = HttpsServer::start(dir.path(), HTTPS_USER, TOKEN);
                let repos = https.repos.clone();
                (Kind::Https(https), repos)
            }
            Remote::Daemon => {
                let repos = dir.path().join("daemon");
                std::fs::create_dir_all(&repos).unwrap();
                (Kind::Daemon(GitDaemon::start(&repos)), repos)
            }
        };
        std::fs::create_dir_all(&repos).unwrap();
        Server {
            kind,
            repos,
            _dir: dir,
        }
    }

    /// A new empty bare repository `name` (`store.git`) served by it: its
    /// path on disk.
    pub(crate) fn new_repo(&self, name: &str) -> PathBuf {
        let path = self.repos.join(name);
        bare_repo(&path);
        path
    }

    /// The URL of the repository `name`, without credentials.
    pub(crate) fn url(&self, name: &str) -> String {
        match &self.kind {
            Kind::Ssh(ssh) => ssh.url(&self.repos.join(name)),
            Kind::Https(https) => https.url(name),
            Kind::Daemon(daemon) => daemon.url(name),
        }
    }

    /// The URL of the repository `name` with the token in it (https), or
    /// [`Server::url`].
    pub(crate) fn url_with_token(&self, name: &str) -> String {
        match &self.kind {
            Kind::Https(https) => https.url_with_token(name),
            _ => self.url(name),
        }
    }

    /// What an agent needs in its environment to reach the server: ssh's
    /// command; the CA of https (in `var`: `GIT_SSL_CAINFO` or
    /// `SSL_CERT_FILE`), and the token when `token_in_env`.
    pub(crate) fn env_with(&self, ca_var: &str, token_in_env: bool) -> Env {
        match &self.kind {
            Kind::Ssh(ssh) => vec![("GIT_SSH_COMMAND".into(), ssh.git_ssh_command())],
            Kind::Https(https) => {
                let mut env = vec![(ca_var.into(), https.ca_file.display().to_string())];
                if token_in_env {
                    env.push(("OCUROOT_GIT_TOKEN".into(), TOKEN.into()));
                    env.push(("OCUROOT_GIT_USERNAME".into(), HTTPS_USER.into()));
                }
                env
            }
            Kind::Daemon(_) => Vec::new(),
        }
    }

    pub(crate) fn env(&self) -> Env {
        self.env_with("GIT_SSL_CAINFO", false)
    }

    pub(crate) fn ssh(&self) -> &SshServer {
        match &self.kind {
            Kind::Ssh(ssh) => ssh,
            _ => panic!("not an ssh server"),
        }
    }

    pub(crate) fn https(&self) -> &HttpsServer {
        match &self.kind {
            Kind::Https(https) => https,
            _ => panic!("not an https server"),
        }
    }

    pub(crate) fn port(&self) -> u16 {
        match &self.kind {
            Kind::Ssh(ssh) => ssh.port,
            Kind::Https(https) => https.port,
            Kind::Daemon(daemon) => daemon.port,
        }
    }

    pub(crate) fn stop(&mut self) {
        match &mut self.kind {
            Kind::Ssh(ssh) => ssh.stop(),
            Kind::Https(https) => https.stop(),
            Kind::Daemon(daemon) => daemon.stop(),
        }
    }

    pub(crate) fn start_again(&mut self) {
        match &mut self.kind {
            Kind::Ssh(ssh) => ssh.start_again(),
            Kind::Https(https) => https.start_again(),
            Kind::Daemon(daemon) => daemon.start_again(),
        }
    }

    /// The server's log, for failure messages.
    pub(crate) fn log(&self) -> String {
        match &self.kind {
            Kind::Ssh(ssh) => ssh.log(),
            Kind::Https(https) => https.log(),
            Kind::Daemon(_) => String::new(),
        }
    }
}

/// Environment variables for an agent.
pub(crate) type Env = Vec<(String, String)>;

/// `store.set(store.git("<url>", branch="state"))`.
pub(crate) fn store_call(url: &str) -> String {
    format!(r#"store.set(store.git("{url}", branch="state"))"#)
}

// --- agents --------------------------------------------------------------

/// What a finished `ocuroot` printed, and how it ended.
pub(crate) struct Ran {
    pub(crate) what: String,
    /// The exit code; `None` when killed by a signal (or by the limit).
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) took: Duration,
}

impl Ran {
    pub(crate) fn describe(&self) -> String {
        format!(
            "{} exited {:?} after {:.1}s\n--- stdout\n{}\n--- stderr\n{}",
            self.what,
            self.code,
            self.took.as_secs_f32(),
            self.stdout,
            self.stderr
        )
    }

    #[track_caller]
    pub(crate) fn success(self) -> Ran {
        assert_eq!(self.code, Some(0), "{}", self.describe());
        self
    }
}

/// A running `ocuroot` in a process group of its own.
pub(crate) struct Proc {
    child: Child,
    what: String,
    started: Instant,
    out: Receiver<Vec<u8>>,
    err: Receiver<Vec<u8>>,
}

fn read_all(mut pipe: impl Read + Send + 'static) -> Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    rx
}

impl Proc {
    /// `ocuroot <args>` as `agent` of `s` (its own `OCUROOT_HOME`, `AGENT`
    /// set to its name) with `env`; if `barrier` is given it first creates
    /// `<barrier>.<agent>`, then waits for `barrier` to exist.
    pub(crate) fn spawn(
        s: &Setup,
        agent: &str,
        env: &Env,
        args: &[&str],
        barrier: Option<&Path>,
    ) -> Proc {
        let bin = env!("CARGO_BIN_EXE_ocuroot");
        let mut cmd = match barrier {
            None => clean_command(bin, s.repo.path()),
            Some(b) => {
                let mut cmd = clean_command("sh", s.repo.path());
                cmd.args([
                    "-c",
                    "touch \"$NET_BARRIER.$AGENT\"; \
                     while [ ! -e \"$NET_BARRIER\" ]; do sleep 0.005; done; exec \"$@\"",
                    "sh",
                    bin,
                ])
                .env("NET_BARRIER", b);
                cmd
            }
        };
        for var in NETWORK_ENV {
            cmd.env_remove(var);
        }
        let user_home = s.dir.path().join("user-home");
        std::fs::create_dir_all(&user_home).unwrap();
        cmd.args(args)
            .env("OCUROOT_HOME", s.home(agent))
            .env("HOME", &user_home)
            .env("AGENT", agent)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let what = format!("agent {agent}: ocuroot {}", args.join(" "));
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let out = read_all(child.stdout.take().unwrap());
        let err = read_all(child.stderr.take().unwrap());
        Proc {
            child,
            what,
            started: Instant::now(),
            out,
            err,
        }
    }

    /// Whether it has exited.
    pub(crate) fn exited(&mut self) -> bool {
        self.child.try_wait().expect("wait for ocuroot").is_some()
    }

    /// Waits for it to exit (killing its process group after [`LIMIT`]).
    pub(crate) fn finish(mut self) -> Ran {
        let deadline = self.started + LIMIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for ocuroot") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", self.child.id())])
                    .status();
                break self.child.wait().expect("wait for ocuroot");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let took = self.started.elapsed();
        // A process it left behind (an ssh connection master) does not
        // hold its pipes; do not wait for ever if one did.
        let text = |rx: &Receiver<Vec<u8>>| {
            String::from_utf8_lossy(&rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default())
                .into_owned()
        };
        Ran {
            what: self.what.clone(),
            code: status.code(),
            stdout: text(&self.out),
            stderr: text(&self.err),
            took,
        }
    }
}

/// `ocuroot <args>` as `agent`, to completion.
pub(crate) fn run(s: &Setup, agent: &str, env: &Env, args: &[&str]) -> Ran {
    Proc::spawn(s, agent, env, args, None).finish()
}

static BARRIERS: AtomicUsize = AtomicUsize::new(0);

/// `ocuroot <args>` by every agent of `agents` at the same moment: each
/// process starts and waits at a barrier until all are there.
pub(crate) fn all_at_once(s: &Setup, agents: &[String], env: &Env, args: &[&str]) -> Vec<Ran> {
    let n = BARRIERS.fetch_add(1, Ordering::SeqCst);
    let barrier = s.dir.path().join(format!("barrier-{n}"));
    let mut procs: Vec<Proc> = agents
        .iter()
        .map(|a| Proc::spawn(s, a, env, args, Some(&barrier)))
        .collect();
    let deadline = Instant::now() + LIMIT;
    loop {
        let waiting = agents
            .iter()
            .filter(|a| Path::new(&format!("{}.{a}", barrier.display())).exists())
            .count();
        if waiting == agents.len() {
            break;
        }
        for p in &mut procs {
            assert!(!p.exited(), "{} ended before the barrier", p.what);
        }
        assert!(
            Instant::now() < deadline,
            "the agents never reached the barrier"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    std::fs::write(&barrier, "go").unwrap();
    procs.into_iter().map(Proc::finish).collect()
}

// --- checks --------------------------------------------------------------

/// Everything the remote holds: its refs and every object's id.
pub(crate) fn remote_contents(remote: &Path) -> String {
    in_remote(remote, &["for-each-ref"])
        + &in_remote(
            remote,
            &["cat-file", "--batch-all-objects", "--batch-check"],
        )
}

/// Every regular file below `dir`.
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                todo.push(path);
            } else if meta.is_file() {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Standard base64 with padding.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(DIGITS[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The forms `token` takes on the wire: itself, and the value of the
/// `Authorization: Basic` header that carries it.
pub(crate) fn forms(token: &str) -> Vec<String> {
    vec![
        token.to_string(),
        base64(format!("{HTTPS_USER}:{token}").as_bytes()),
    ]
}

/// The bytes of the hex dumps in `text` (an HTTP client's trace of what it
/// sends: `2f69 6e66 6f2f ...` groups, `--` for none), concatenated.
fn hex_dumped(text: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    for word in text.split_whitespace() {
        if word.len() == 4 && word.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            for pair in [&word[..2], &word[2..]] {
                if let Ok(b) = u8::from_str_radix(pair, 16) {
                    bytes.push(b);
                }
            }
        }
    }
    bytes
}

/// The forms of `token` that `text` shows, as they are or in a hex dump.
pub(crate) fn shown(text: &str, token: &str) -> Vec<String> {
    let dumped = hex_dumped(text);
    forms(token)
        .into_iter()
        .filter(|f| text.contains(f.as_str()) || contains(&dumped, f))
        .collect()
}

/// Where a form of `token` occurs in the regular files below `dir` (raw
/// bytes).
pub(crate) fn leaks_in_files(dir: &Path, token: &str) -> Vec<String> {
    let forms = forms(token);
    files_below(dir)
        .into_iter()
        .filter(|f| std::fs::read(f).is_ok_and(|b| forms.iter().any(|t| contains(&b, t))))
        .map(|f| f.display().to_string())
        .collect()
}

/// Where a form of `token` occurs in the remote: its files (raw), its
/// history's patches and every object's content.
pub(crate) fn leaks_in_remote(remote: &Path, token: &str) -> Vec<String> {
    let forms = forms(token);
    let mut leaks = leaks_in_files(remote, token);
    let patches = in_remote(remote, &["log", "-p", "--all"]);
    if forms.iter().any(|t| patches.contains(t.as_str())) {
        leaks.push(format!("git log -p --all of {}", remote.display()));
    }
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(remote)
        .args(["cat-file", "--batch-all-objects", "--batch"])
        .output()
        .expect("run git cat-file");
    assert!(out.status.success(), "git cat-file --batch-all-objects");
    if forms.iter().any(|t| contains(&out.stdout, t)) {
        leaks.push(format!("an object of {}", remote.display()));
    }
    leaks
}

/// The task names of a `<name> ...` lines file, sorted.
pub(crate) fn names_of(lines: &[String]) -> Vec<String> {
    let mut names: Vec<String> = lines
        .iter()
        .map(|l| l.split_whitespace().next().unwrap_or_default().to_string())
        .collect();
    names.sort();
    names
}

/// `<prefix>0` .. `<prefix><n-1>` for each prefix, sorted.
pub(crate) fn task_names(prefixes: &[&str], n: usize) -> Vec<String> {
    let mut names: Vec<String> = prefixes
        .iter()
        .flat_map(|p| (0..n).map(move |i| format!("{p}{i}")))
        .collect();
    names.sort();
    names
}

/// The tasks of release `rel` that succeeded (`<rel>/task/<name>`
/// exists), as `reader` sees them.
pub(crate) fn succeeded(s: &Setup, env: &Env, rel: &str) -> Vec<String> {
    let out = run(
        s,
        "reader",
        env,
        &["state", "match", &format!("{rel}/task/*")],
    )
    .success();
    let prefix = format!("{rel}/task/");
    let mut names: Vec<String> = out
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter(|rest| !rest.contains('/'))
        .map(str::to_string)
        .collect();
    names.sort();
    names
}

pub(crate) fn elapsed(what: &str, started: Instant) {
    eprintln!("{what}: {:.1}s", started.elapsed().as_secs_f32());
}

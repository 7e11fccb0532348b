//! Private git servers on 127.0.0.1 for the tests: `git daemon`, an OpenSSH
//! `sshd`, nginx + fcgiwrap + `git http-backend` over TLS, and a TCP proxy
//! that delays every chunk.
//!
//! Every server runs in its own process group, listens on 127.0.0.1 only,
//! is ready (its port accepts connections) when `start` returns, and leaves
//! no process behind once dropped: the process group and every descendant
//! (sshd's sessions call `setsid`) are stopped, then killed, then waited for.
//! `stop` and `start_again` take a server down and bring it back on the same
//! port, for outage tests.
//!
//! OpenSSH takes `~` from the password database, not `$HOME`, so a test
//! points ssh at this module's files with `GIT_SSH_COMMAND` (see
//! [`SshServer::git_ssh_command`]). The paths written into commands and
//! configuration files are not quoted: they must not contain whitespace
//! (temporary directories do not).
//!
//! The ssh server is in `servers_ssh.rs`, the https server in
//! `servers_https.rs`, and the self-test in `servers_selftest.rs`.

#![allow(dead_code)]

#[path = "servers_ssh.rs"]
mod ssh;

#[path = "servers_https.rs"]
mod https;

#[cfg(test)]
#[path = "servers_selftest.rs"]
mod servers_selftest;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub(crate) use https::HttpsServer;
pub(crate) use ssh::{SSH_ALIAS, SshServer};

/// How long a server may take to accept connections after it is started.
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// How long the processes of a killed server may take to disappear.
const GONE_TIMEOUT: Duration = Duration::from_secs(10);

/// A free TCP port on 127.0.0.1 (free when this returns).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .unwrap()
        .port()
}

/// The login name of the current user (`whoami`, else `$USER`).
pub(crate) fn current_user() -> String {
    let name = Command::new("whoami")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|n| !n.is_empty());
    name.or_else(|| std::env::var("USER").ok().filter(|n| !n.is_empty()))
        .expect("the current user's name (whoami or $USER)")
}

/// Whether this process runs as root (`id -u` is 0).
pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A bare repository at `dir` (`git init --bare`) that accepts pushes over
/// https too (`http.receivepack true`).
pub(crate) fn bare_repo(dir: &Path) {
    run(Command::new("git")
        .args(["init", "-q", "--bare"])
        .arg(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null"));
    run(Command::new("git")
        .arg("--git-dir")
        .arg(dir)
        .args(["config", "http.receivepack", "true"]));
}

/// Runs `cmd`; panics with its output unless it succeeds. Its stdout.
fn run(cmd: &mut Command) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The end of the log at `path`, for a panic message.
fn log_tail(path: &Path) -> String {
    let text = fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_else(|e| format!("(no log at {}: {e})", path.display()));
    let start = text.len().saturating_sub(8000);
    let start = (start..=text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    format!("--- {} ---\n{}", path.display(), &text[start..])
}

/// A path as it is written into commands and configuration files.
fn plain(path: &Path) -> String {
    let s = path.to_str().expect("a UTF-8 path").to_string();
    assert!(
        !s.chars()
            .any(|c| c.is_whitespace() || "'\"\\#$`".contains(c)),
        "paths in server configurations must be plain: {s:?}"
    );
    s
}

fn write_file(path: &Path, text: &str, mode: u32) {
    fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

// --- processes ---------------------------------------------------------

/// One process read from `/proc/<pid>/stat`.
#[derive(Clone, Copy, Debug)]
struct ProcStat {
    ppid: u32,
    pgrp: u32,
    zombie: bool,
}

fn proc_stat(pid: u32) -> Option<ProcStat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid pgrp ...`; comm may hold spaces and parentheses.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some(ProcStat {
        ppid,
        pgrp,
        zombie: state == "Z" || state == "X",
    })
}

/// Every process on the machine, by pid.
fn all_procs() -> BTreeMap<u32, ProcStat> {
    let mut procs = BTreeMap::new();
    if let Ok(entries) = fs::read_dir("/proc") {
        for entry in entries.flatten() {
            if let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok())
                && let Some(stat) = proc_stat(pid)
            {
                procs.insert(pid, stat);
            }
        }
    }
    procs
}

/// The live processes of process group `pgid` (its leader included) and
/// all their descendants, wherever their groups and sessions are.
fn group_and_descendants(pgid: u32) -> BTreeSet<u32> {
    let procs = all_procs();
    let mut set: BTreeSet<u32> = procs
        .iter()
        .filter(|(pid, p)| (**pid == pgid || p.pgrp == pgid) && !p.zombie)
        .map(|(pid, _)| *pid)
        .collect();
    loop {
        let more: Vec<u32> = procs
            .iter()
            .filter(|(pid, p)| !p.zombie && !set.contains(pid) && set.contains(&p.ppid))
            .map(|(pid, _)| *pid)
            .collect();
        if more.is_empty() {
            return set;
        }
        set.extend(more);
    }
}

/// `kill -<signal> <pids>`, errors ignored (a process may be gone).
fn signal(sig: &str, pids: &BTreeSet<u32>) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg("--")
        .args(pids.iter().map(u32::to_string))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Stops (SIGSTOP) the group `pgid` and its descendants until no new
/// process appears, kills them all (SIGKILL, the group too), and waits
/// until none is left alive.
fn kill_group_and_descendants(pgid: u32) {
    let mut stopped = BTreeSet::new();
    for _ in 0..50 {
        let now = group_and_descendants(pgid);
        let new: BTreeSet<u32> = now.difference(&stopped).copied().collect();
        if new.is_empty() {
            break;
        }
        signal("STOP", &new);
        stopped.extend(new);
    }
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    signal("KILL", &stopped);
    let deadline = Instant::now() + GONE_TIMEOUT;
    loop {
        let alive: Vec<u32> = stopped
            .iter()
            .copied()
            .filter(|pid| proc_stat(*pid).is_some_and(|p| !p.zombie))
            .collect();
        if alive.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            eprintln!("servers: processes {alive:?} of group {pgid} survived SIGKILL");
            return;
        }
        signal("KILL", &alive.into_iter().collect());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A server process, the leader of its own process group; on drop the
/// group and every descendant are killed and waited for.
struct ProcGroup {
    child: Child,
    what: String,
    log: PathBuf,
    done: bool,
}

impl ProcGroup {
    /// Spawns `cmd` in a new process group, with stdin from /dev/null and
    /// stdout and stderr appended to `log`.
    fn spawn(what: &str, cmd: &mut Command, log: &Path) -> ProcGroup {
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("open {}: {e}", log.display()));
        let child = cmd
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("start {what} ({cmd:?}): {e}"));
        ProcGroup {
            child,
            what: what.to_string(),
            log: log.to_path_buf(),
            done: false,
        }
    }

    fn pgid(&self) -> u32 {
        self.child.id()
    }

    /// Panics, with the log, if the process has exited.
    fn check_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            self.done = true;
            panic!(
                "{} exited ({status}) before it was ready\n{}",
                self.what,
                log_tail(&self.log)
            );
        }
    }

    /// Waits until `ready()` holds; panics with the log on a timeout or if
    /// the process exits first.
    fn wait_until(&mut self, ready: impl Fn() -> bool) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if ready() {
                return;
            }
            self.check_running();
            assert!(
                Instant::now() < deadline,
                "{} not ready after {READY_TIMEOUT:?}\n{}",
                self.what,
                log_tail(&self.log)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until 127.0.0.1:`port` accepts connections.
    fn wait_for_port(&mut self, port: u16) {
        self.wait_until(|| TcpStream::connect(("127.0.0.1", port)).is_ok());
    }

    fn kill(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        kill_group_and_descendants(self.pgid());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ProcGroup {
    fn drop(&mut self) {
        self.kill();
    }
}

// --- git daemon --------------------------------------------------------

/// `git daemon` serving the repositories under `base` (pushes enabled) on
/// `git://127.0.0.1:<port>/`.
pub(crate) struct GitDaemon {
    pub(crate) port: u16,
    pub(crate) base: PathBuf,
    log: tempfile::NamedTempFile,
    proc: Option<ProcGroup>,
}

impl GitDaemon {
    pub(crate) fn start(base: &Path) -> GitDaemon {
        let log = tempfile::Builder::new()
            .prefix("git-daemon-")
            .suffix(".log")
            .tempfile()
            .expect("a log file for git daemon");
        let mut daemon = GitDaemon {
            port: free_port(),
            base: base.to_path_buf(),
            log,
            proc: None,
        };
        daemon.start_again();
        daemon
    }

    /// `git://127.0.0.1:<port>/<repo>`.
    pub(crate) fn url(&self, repo: &str) -> String {
        format!("git://127.0.0.1:{}/{repo}", self.port)
    }

    /// Process groups of the running server (for leak checks).
    pub(crate) fn pgids(&self) -> Vec<u32> {
        self.proc.iter().map(ProcGroup::pgid).collect()
    }

    /// Kills the server (and its connections); the port is closed.
    pub(crate) fn stop(&mut self) {
        self.proc = None;
    }

    /// Starts the server again on the same port (stopping it first if it
    /// runs).
    pub(crate) fn start_again(&mut self) {
        self.stop();
        let mut proc = ProcGroup::spawn(
            "git daemon",
            Command::new("git")
                .args([
                    "daemon",
                    "--reuseaddr",
                    "--export-all",
                    "--enable=receive-pack",
                    "--informative-errors",
                    "--listen=127.0.0.1",
                ])
                .arg(format!("--port={}", self.port))
                .arg(format!("--base-path={}", self.base.display()))
                .arg(&self.base),
            self.log.path(),
        );
        proc.wait_for_port(self.port);
        self.proc = Some(proc);
    }
}

// --- latency -----------------------------------------------------------

/// A TCP proxy on 127.0.0.1 to 127.0.0.1:`target_port` that forwards every
/// chunk, in each direction, `delay` after it was read.
pub(crate) struct DelayProxy {
    pub(crate) port: u16,
    stop: Arc<AtomicBool>,
    connections: Arc<AtomicUsize>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
    accept: Option<JoinHandle<()>>,
}

impl DelayProxy {
    pub(crate) fn start(target_port: u16, delay: Duration) -> DelayProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicUsize::new(0));
        let streams: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let accept = {
            let (stop, connections, streams) = (stop.clone(), connections.clone(), streams.clone());
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(client) = client else { continue };
                    connections.fetch_add(1, Ordering::SeqCst);
                    let Ok(upstream) = TcpStream::connect(("127.0.0.1", target_port)) else {
                        let _ = client.shutdown(Shutdown::Both);
                        continue;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = upstream.set_nodelay(true);
                    {
                        let mut all = streams.lock().unwrap();
                        all.retain(|s| s.peer_addr().is_ok());
                        all.extend(client.try_clone().ok());
                        all.extend(upstream.try_clone().ok());
                    }
                    let (Ok(c2), Ok(u2)) = (client.try_clone(), upstream.try_clone()) else {
                        continue;
                    };
                    pipe(client, u2, delay);
                    pipe(upstream, c2, delay);
                }
            })
        };
        DelayProxy {
            port,
            stop,
            connections,
            streams,
            accept: Some(accept),
        }
    }

    /// How many connections it accepted.
    pub(crate) fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Forwards what `from` reads to `to`, each chunk `delay` after it was
/// read: a reader thread and a writer thread joined by a channel, so chunks
/// in flight do not wait for each other. At EOF, `to` is shut for writing.
fn pipe(mut from: TcpStream, mut to: TcpStream, delay: Duration) {
    let (tx, rx) = mpsc::channel::<Option<(Instant, Vec<u8>)>>();
    let reader_side = from.try_clone().ok();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = tx.send(None);
                    return;
                }
                Ok(n) => {
                    if tx
                        .send(Some((Instant::now() + delay, buf[..n].to_vec())))
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    });
    std::thread::spawn(move || {
        for msg in rx {
            match msg {
                Some((due, data)) => {
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    if to.write_all(&data).is_err() {
                        // The other side is gone: stop reading this one.
                        if let Some(r) = &reader_side {
                            let _ = r.shutdown(Shutdown::Both);
                        }
                        return;
                    }
                }
                None => {
                    let _ = to.shutdown(Shutdown::Write);
                    return;
                }
            }
        }
    });
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accepting thread up.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        for s in self.streams.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

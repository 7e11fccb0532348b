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

#![allow(dead_code)]

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

// --- sshd --------------------------------------------------------------

/// A private OpenSSH server on 127.0.0.1 that lets the current user in with
/// [`SshServer::key`], and the client files to reach it.
pub(crate) struct SshServer {
    pub(crate) port: u16,
    /// The login name (the current user).
    pub(crate) user: String,
    /// The directory of its files.
    pub(crate) dir: PathBuf,
    /// An authorised client key (private; `.pub` next to it).
    pub(crate) key: PathBuf,
    /// A client key the server does not accept.
    pub(crate) wrong_key: PathBuf,
    /// `[127.0.0.1]:<port> ssh-ed25519 AAAA...`: the server's host key.
    pub(crate) known_hosts: PathBuf,
    /// An empty known_hosts file.
    pub(crate) empty_known_hosts: PathBuf,
    /// An ssh client configuration with `Host ocuroot-test-alias` (this
    /// server, [`SshServer::key`]), so `ocuroot-test-alias:/abs/path.git`
    /// works as an scp-like URL.
    pub(crate) ssh_config: PathBuf,
    /// The same with [`SshServer::wrong_key`] for the alias.
    pub(crate) wrong_key_ssh_config: PathBuf,
    config: PathBuf,
    log: PathBuf,
    proc: Option<ProcGroup>,
}

/// The Host alias in [`SshServer::ssh_config`].
pub(crate) const SSH_ALIAS: &str = "ocuroot-test-alias";

impl SshServer {
    /// Its files go to `<dir>/sshd` (created).
    pub(crate) fn start(dir: &Path) -> SshServer {
        let dir = dir.join("sshd");
        fs::create_dir_all(&dir).unwrap();
        let d = plain(&dir);
        // sshd refuses to start without its privilege separation directory.
        if !Path::new("/run/sshd").is_dir() && is_root() {
            let _ = fs::create_dir_all("/run/sshd");
            let _ = fs::set_permissions("/run/sshd", fs::Permissions::from_mode(0o755));
        }
        let port = free_port();
        let user = current_user();
        let keygen = |name: &str| {
            let path = dir.join(name);
            let _ = fs::remove_file(&path);
            let _ = fs::remove_file(path.with_extension("pub"));
            run(Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
                .arg(&path));
            path
        };
        let host_key = keygen("host_key");
        let key = keygen("client_key");
        let wrong_key = keygen("wrong_key");
        let authorized = dir.join("authorized_keys");
        write_file(
            &authorized,
            &fs::read_to_string(key.with_extension("pub")).unwrap(),
            0o600,
        );
        let host_pub = fs::read_to_string(host_key.with_extension("pub")).unwrap();
        let mut parts = host_pub.split_whitespace();
        let (kind, blob) = (parts.next().unwrap(), parts.next().unwrap());
        let known_hosts = dir.join("known_hosts");
        write_file(
            &known_hosts,
            &format!("[127.0.0.1]:{port} {kind} {blob}\n"),
            0o600,
        );
        let empty_known_hosts = dir.join("empty_known_hosts");
        write_file(&empty_known_hosts, "", 0o600);

        let log = dir.join("sshd.log");
        let config = dir.join("sshd_config");
        let mut text = format!(
            "ListenAddress 127.0.0.1:{port}\n\
             AddressFamily inet\n\
             HostKey {host_key}\n\
             PidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {authorized}\n\
             StrictModes no\n\
             UsePAM no\n\
             PubkeyAuthentication yes\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             PermitRootLogin prohibit-password\n\
             AllowUsers {user}\n\
             MaxStartups 100:30:200\n\
             MaxSessions 100\n\
             UseDNS no\n\
             PrintMotd no\n\
             X11Forwarding no\n\
             # Root's ~/.bashrc here runs a slow `pyenv init` for every\n\
             # command unless bash sees it is nested.\n\
             SetEnv SHLVL=1\n",
            host_key = plain(&host_key),
            authorized = plain(&authorized),
        );
        write_file(&config, &text, 0o600);
        // OpenSSH 9.8 and later penalise addresses that fail to log in
        // (the wrong-key tests would lock 127.0.0.1 out); older ones do not
        // know the option.
        let penalties = Command::new("/usr/sbin/sshd")
            .args(["-t", "-o", "PerSourcePenalties=no", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if penalties {
            text.push_str("PerSourcePenalties no\n");
            write_file(&config, &text, 0o600);
        }

        let client_config = |identity: &Path| {
            format!(
                "Host {SSH_ALIAS}\n\
                 \x20 HostName 127.0.0.1\n\
                 \x20 Port {port}\n\
                 \x20 User {user}\n\
                 \x20 IdentityFile {identity}\n\
                 \x20 UserKnownHostsFile {known}\n\
                 \x20 IdentitiesOnly yes\n\
                 Host *\n\
                 \x20 UserKnownHostsFile {known}\n\
                 \x20 GlobalKnownHostsFile /dev/null\n\
                 \x20 StrictHostKeyChecking yes\n\
                 \x20 UpdateHostKeys no\n\
                 \x20 IdentitiesOnly yes\n\
                 \x20 BatchMode yes\n\
                 \x20 ControlMaster no\n\
                 \x20 LogLevel ERROR\n",
                identity = plain(identity),
                known = plain(&known_hosts),
            )
        };
        let ssh_config = dir.join("ssh_config");
        write_file(&ssh_config, &client_config(&key), 0o600);
        let wrong_key_ssh_config = dir.join("ssh_config_wrong_key");
        write_file(&wrong_key_ssh_config, &client_config(&wrong_key), 0o600);

        let mut server = SshServer {
            port,
            user,
            dir,
            key,
            wrong_key,
            known_hosts,
            empty_known_hosts,
            ssh_config,
            wrong_key_ssh_config,
            config,
            log,
            proc: None,
        };
        server.start_again();
        server
    }

    /// `ssh://<user>@127.0.0.1:<port><path>` for an absolute `path`.
    pub(crate) fn url(&self, path: &Path) -> String {
        assert!(path.is_absolute(), "{} is not absolute", path.display());
        format!(
            "ssh://{}@127.0.0.1:{}{}",
            self.user,
            self.port,
            path.display()
        )
    }

    /// `ocuroot-test-alias:<path>`: an scp-like URL that needs
    /// [`SshServer::ssh_config`] (as in [`SshServer::git_ssh_command`]).
    pub(crate) fn alias_url(&self, path: &Path) -> String {
        assert!(path.is_absolute(), "{} is not absolute", path.display());
        format!("{SSH_ALIAS}:{}", path.display())
    }

    fn command(&self, config: &Path, known_hosts: &Path, key: &Path) -> String {
        format!(
            "ssh -F {} -o UserKnownHostsFile={} -i {} -o IdentitiesOnly=yes",
            plain(config),
            plain(known_hosts),
            plain(key)
        )
    }

    /// For `GIT_SSH_COMMAND`: ssh with this server's client configuration,
    /// known host and key.
    pub(crate) fn git_ssh_command(&self) -> String {
        self.command(&self.ssh_config, &self.known_hosts, &self.key)
    }

    /// As [`SshServer::git_ssh_command`], with an empty known_hosts file:
    /// the server's host key is unknown, so ssh refuses to connect.
    pub(crate) fn empty_known_hosts_command(&self) -> String {
        self.command(&self.ssh_config, &self.empty_known_hosts, &self.key)
    }

    /// As [`SshServer::git_ssh_command`], with a key the server does not
    /// accept (the alias too).
    pub(crate) fn wrong_key_command(&self) -> String {
        self.command(
            &self.wrong_key_ssh_config,
            &self.known_hosts,
            &self.wrong_key,
        )
    }

    /// The server's log so far.
    pub(crate) fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Process groups of the running server (for leak checks).
    pub(crate) fn pgids(&self) -> Vec<u32> {
        self.proc.iter().map(ProcGroup::pgid).collect()
    }

    /// Kills the server and its sessions; the port is closed.
    pub(crate) fn stop(&mut self) {
        self.proc = None;
    }

    /// Starts the server again on the same port.
    pub(crate) fn start_again(&mut self) {
        self.stop();
        let mut proc = ProcGroup::spawn(
            "sshd",
            Command::new("/usr/sbin/sshd")
                .arg("-D")
                .arg("-f")
                .arg(&self.config)
                .arg("-E")
                .arg(&self.log),
            &self.log,
        );
        proc.wait_for_port(self.port);
        self.proc = Some(proc);
    }
}

// --- https -------------------------------------------------------------

/// nginx (TLS, basic authentication) in front of fcgiwrap and
/// `git http-backend`, serving the bare repositories under
/// [`HttpsServer::repos`] at `https://127.0.0.1:<port>/<name>`.
pub(crate) struct HttpsServer {
    pub(crate) port: u16,
    pub(crate) user: String,
    pub(crate) token: String,
    /// The PEM of the private CA that signed the server's certificate
    /// (`GIT_SSL_CAINFO`, `SSL_CERT_FILE`).
    pub(crate) ca_file: PathBuf,
    /// Where the served bare repositories go (see [`bare_repo`]).
    pub(crate) repos: PathBuf,
    /// The directory of its other files.
    pub(crate) dir: PathBuf,
    nginx_conf: PathBuf,
    socket: PathBuf,
    nginx_log: PathBuf,
    fcgi_log: PathBuf,
    nginx: Option<ProcGroup>,
    fcgiwrap: Option<ProcGroup>,
}

impl HttpsServer {
    /// Its repositories go to `<dir>/repos`, its other files to
    /// `<dir>/https` (both created). `user` and `token` are used in URLs
    /// as they are: keep them URL-safe.
    pub(crate) fn start(dir: &Path, user: &str, token: &str) -> HttpsServer {
        assert!(
            !user.is_empty() && !user.contains([':', '@', '/', '\n']),
            "a plain user name: {user:?}"
        );
        let repos = dir.join("repos");
        let sdir = dir.join("https");
        fs::create_dir_all(&repos).unwrap();
        fs::create_dir_all(sdir.join("tmp")).unwrap();
        let s = plain(&sdir);
        let port = free_port();

        // A private CA and a certificate for 127.0.0.1 signed by it.
        let ca_key = sdir.join("ca.key");
        let ca_file = sdir.join("ca.pem");
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
        run(Command::new("openssl")
            .args(["req", "-x509", "-nodes", "-days", "30", "-sha256"])
            .args(ec)
            .args(["-subj", "/CN=ocuroot test CA"])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
            .arg("-keyout")
            .arg(&ca_key)
            .arg("-out")
            .arg(&ca_file));
        let key = sdir.join("server.key");
        let csr = sdir.join("server.csr");
        let cert = sdir.join("server.pem");
        run(Command::new("openssl")
            .args(["req", "-new", "-nodes", "-sha256"])
            .args(ec)
            .args(["-subj", "/CN=127.0.0.1"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&csr));
        let ext = sdir.join("server.ext");
        write_file(
            &ext,
            "basicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth\n\
             subjectAltName=IP:127.0.0.1\n",
            0o644,
        );
        run(Command::new("openssl")
            .args(["x509", "-req", "-days", "30", "-sha256", "-in"])
            .arg(&csr)
            .arg("-CA")
            .arg(&ca_file)
            .arg("-CAkey")
            .arg(&ca_key)
            .arg("-CAcreateserial")
            .arg("-CAserial")
            .arg(sdir.join("ca.srl"))
            .arg("-extfile")
            .arg(&ext)
            .arg("-out")
            .arg(&cert));

        // The one user, with `token` as the password.
        let hash = run(Command::new("openssl").args(["passwd", "-apr1", token]));
        let htpasswd = sdir.join("htpasswd");
        write_file(&htpasswd, &format!("{user}:{}\n", hash.trim()), 0o644);

        let exec_path = run(Command::new("git").arg("--exec-path"));
        let backend = Path::new(exec_path.trim()).join("git-http-backend");
        assert!(backend.exists(), "no {}", backend.display());
        let socket = sdir.join("fcgiwrap.sock");
        let user_line = if is_root() {
            // Workers would run as `nobody`, which may not use fcgiwrap's
            // socket (fcgiwrap runs as the current user).
            "user root;"
        } else {
            ""
        };
        let nginx_conf = sdir.join("nginx.conf");
        write_file(
            &nginx_conf,
            &format!(
                "daemon off;\n\
                 master_process on;\n\
                 worker_processes 2;\n\
                 {user_line}\n\
                 pid {s}/nginx.pid;\n\
                 lock_file {s}/nginx.lock;\n\
                 error_log {s}/error.log notice;\n\
                 events {{ worker_connections 512; }}\n\
                 http {{\n\
                 \x20 access_log {s}/access.log;\n\
                 \x20 client_body_temp_path {s}/tmp/body;\n\
                 \x20 fastcgi_temp_path {s}/tmp/fastcgi;\n\
                 \x20 proxy_temp_path {s}/tmp/proxy;\n\
                 \x20 scgi_temp_path {s}/tmp/scgi;\n\
                 \x20 uwsgi_temp_path {s}/tmp/uwsgi;\n\
                 \x20 client_max_body_size 0;\n\
                 \x20 server {{\n\
                 \x20   listen 127.0.0.1:{port} ssl;\n\
                 \x20   server_name 127.0.0.1;\n\
                 \x20   ssl_certificate {cert};\n\
                 \x20   ssl_certificate_key {key};\n\
                 \x20   location / {{\n\
                 \x20     auth_basic \"ocuroot test\";\n\
                 \x20     auth_basic_user_file {htpasswd};\n\
                 \x20     fastcgi_pass unix:{socket};\n\
                 \x20     fastcgi_buffering off;\n\
                 \x20     fastcgi_request_buffering off;\n\
                 \x20     fastcgi_read_timeout 300s;\n\
                 \x20     fastcgi_param SCRIPT_FILENAME {backend};\n\
                 \x20     fastcgi_param GIT_PROJECT_ROOT {repos};\n\
                 \x20     fastcgi_param GIT_HTTP_EXPORT_ALL \"\";\n\
                 \x20     fastcgi_param PATH_INFO $uri;\n\
                 \x20     fastcgi_param REMOTE_USER $remote_user;\n\
                 \x20     fastcgi_param REMOTE_ADDR $remote_addr;\n\
                 \x20     fastcgi_param QUERY_STRING $query_string;\n\
                 \x20     fastcgi_param REQUEST_METHOD $request_method;\n\
                 \x20     fastcgi_param CONTENT_TYPE $content_type;\n\
                 \x20     fastcgi_param CONTENT_LENGTH $content_length;\n\
                 \x20     fastcgi_param REQUEST_URI $request_uri;\n\
                 \x20     fastcgi_param SERVER_PROTOCOL $server_protocol;\n\
                 \x20     fastcgi_param SERVER_NAME $server_name;\n\
                 \x20     fastcgi_param SERVER_PORT $server_port;\n\
                 \x20     fastcgi_param HTTPS on;\n\
                 \x20     fastcgi_param GATEWAY_INTERFACE CGI/1.1;\n\
                 \x20   }}\n\
                 \x20 }}\n\
                 }}\n",
                cert = plain(&cert),
                key = plain(&key),
                htpasswd = plain(&htpasswd),
                socket = plain(&socket),
                backend = plain(&backend),
                repos = plain(&repos),
            ),
            0o644,
        );

        let mut server = HttpsServer {
            port,
            user: user.to_string(),
            token: token.to_string(),
            ca_file,
            repos,
            nginx_log: sdir.join("nginx.out"),
            fcgi_log: sdir.join("fcgiwrap.log"),
            dir: sdir,
            nginx_conf,
            socket,
            nginx: None,
            fcgiwrap: None,
        };
        server.start_again();
        server
    }

    /// `https://127.0.0.1:<port>/<repo>`, without credentials.
    pub(crate) fn url(&self, repo: &str) -> String {
        format!("https://127.0.0.1:{}/{repo}", self.port)
    }

    /// `https://<user>:<token>@127.0.0.1:<port>/<repo>`.
    pub(crate) fn url_with_token(&self, repo: &str) -> String {
        format!(
            "https://{}:{}@127.0.0.1:{}/{repo}",
            self.user, self.token, self.port
        )
    }

    /// nginx's error log so far.
    pub(crate) fn log(&self) -> String {
        fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    /// Process groups of the running server (for leak checks).
    pub(crate) fn pgids(&self) -> Vec<u32> {
        self.nginx
            .iter()
            .chain(self.fcgiwrap.iter())
            .map(ProcGroup::pgid)
            .collect()
    }

    /// Kills nginx and fcgiwrap (with its CGI processes); the port is
    /// closed.
    pub(crate) fn stop(&mut self) {
        self.nginx = None;
        self.fcgiwrap = None;
    }

    /// Starts the server again on the same port.
    pub(crate) fn start_again(&mut self) {
        self.stop();
        // A socket left by a killed fcgiwrap would stop the new one binding.
        let _ = fs::remove_file(&self.socket);
        let mut fcgi = ProcGroup::spawn(
            "fcgiwrap",
            Command::new("/usr/sbin/fcgiwrap")
                .args(["-c", "4", "-s"])
                .arg(format!("unix:{}", plain(&self.socket))),
            &self.fcgi_log,
        );
        let socket = self.socket.clone();
        fcgi.wait_until(|| std::os::unix::net::UnixStream::connect(&socket).is_ok());
        self.fcgiwrap = Some(fcgi);
        let mut nginx = ProcGroup::spawn(
            "nginx",
            Command::new("/usr/sbin/nginx")
                .arg("-p")
                .arg(&self.dir)
                .arg("-c")
                .arg(&self.nginx_conf)
                .arg("-e")
                .arg(self.dir.join("error.log")),
            &self.nginx_log,
        );
        let error_log = self.dir.join("error.log");
        let port = self.port;
        let ready = || TcpStream::connect(("127.0.0.1", port)).is_ok();
        let deadline = Instant::now() + READY_TIMEOUT;
        while !ready() {
            if let Ok(Some(status)) = nginx.child.try_wait() {
                nginx.done = true;
                panic!(
                    "nginx exited ({status}) before it was ready\n{}\n{}",
                    log_tail(&self.nginx_log),
                    log_tail(&error_log)
                );
            }
            assert!(
                Instant::now() < deadline,
                "nginx not ready after {READY_TIMEOUT:?}\n{}\n{}",
                log_tail(&self.nginx_log),
                log_tail(&error_log)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        self.nginx = Some(nginx);
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

// --- self-test ---------------------------------------------------------

#[cfg(test)]
mod servers_selftest {
    use super::*;

    /// `git <args>` in `dir` with `env`; its output, or an error with
    /// stderr.
    fn git_in(dir: Option<&Path>, env: &[(&str, &str)], args: &[&str]) -> Result<String, String> {
        let mut cmd = Command::new("git");
        if let Some(dir) = dir {
            cmd.current_dir(dir);
        }
        cmd.args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ASKPASS", "/bin/false")
            .env("SSH_ASKPASS", "/bin/false")
            .env_remove("GIT_SSH")
            .env_remove("GIT_SSH_COMMAND")
            .env_remove("GIT_SSL_CAINFO")
            .env("GIT_AUTHOR_NAME", "A Person")
            .env("GIT_AUTHOR_EMAIL", "person@example.com")
            .env("GIT_COMMITTER_NAME", "A Person")
            .env("GIT_COMMITTER_EMAIL", "person@example.com")
            .stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run git");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Clones `url` into `work`, commits a file and pushes it to `main`;
    /// the bare repository `bare` then has that commit on `main`.
    fn round_trip(url: &str, env: &[(&str, &str)], work: &Path, bare: &Path) {
        git_in(None, env, &["clone", "-q", url, work.to_str().unwrap()])
            .unwrap_or_else(|e| panic!("clone {url}: {e}"));
        fs::write(work.join("file.txt"), url).unwrap();
        git_in(Some(work), env, &["add", "file.txt"]).unwrap();
        git_in(Some(work), env, &["commit", "-q", "-m", "one"]).unwrap();
        git_in(
            Some(work),
            env,
            &["push", "-q", "origin", "HEAD:refs/heads/main"],
        )
        .unwrap_or_else(|e| panic!("push to {url}: {e}"));
        let local = git_in(Some(work), env, &["rev-parse", "HEAD"]).unwrap();
        let remote = git_in(
            None,
            &[],
            &[
                "--git-dir",
                bare.to_str().unwrap(),
                "rev-parse",
                "refs/heads/main",
            ],
        )
        .unwrap();
        assert_eq!(local, remote, "{url} received the commit");
        // And a fresh clone fetches it back.
        let again = work.with_extension("again");
        git_in(
            None,
            env,
            &["clone", "-q", "-b", "main", url, again.to_str().unwrap()],
        )
        .unwrap_or_else(|e| panic!("clone {url} again: {e}"));
        assert_eq!(
            fs::read_to_string(again.join("file.txt")).unwrap(),
            url,
            "{url}"
        );
    }

    /// `ps -eo pid,ppid,pgid,cmd` lines of server programs that mention
    /// `needle`, or that belong to one of `pgids`.
    fn leftovers(needle: &str, pgids: &BTreeSet<u32>) -> Vec<String> {
        let out = run(Command::new("ps").args(["-eo", "pid,ppid,pgid,stat,cmd"]));
        out.lines()
            .skip(1)
            .filter(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                let pgid: u32 = f.get(2).and_then(|s| s.parse().ok()).unwrap_or(0);
                let zombie = f.get(3).is_some_and(|s| s.starts_with('Z'));
                let server = ["sshd", "nginx", "fcgiwrap", "git-daemon", "git daemon"]
                    .iter()
                    .any(|p| line.contains(p));
                !zombie && ((server && line.contains(needle)) || pgids.contains(&pgid))
            })
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn servers_selftest() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let mut pgids = BTreeSet::new();

        // git daemon, and an outage.
        {
            let base = root.join("daemon");
            fs::create_dir_all(&base).unwrap();
            bare_repo(&base.join("d.git"));
            let mut daemon = GitDaemon::start(&base);
            pgids.extend(daemon.pgids());
            round_trip(
                &daemon.url("d.git"),
                &[],
                &root.join("work-daemon"),
                &base.join("d.git"),
            );
            daemon.stop();
            assert!(git_in(None, &[], &["ls-remote", &daemon.url("d.git")]).is_err());
            daemon.start_again();
            pgids.extend(daemon.pgids());
            let refs = git_in(None, &[], &["ls-remote", &daemon.url("d.git")]).unwrap();
            assert!(refs.contains("refs/heads/main"), "{refs}");
        }

        // sshd: ssh:// and the scp-like alias; unknown host key and a wrong
        // key refused; an outage.
        {
            let mut ssh = SshServer::start(root);
            pgids.extend(ssh.pgids());
            let repo = root.join("ssh-repos/s.git");
            bare_repo(&repo);
            let cmd = ssh.git_ssh_command();
            let env = [("GIT_SSH_COMMAND", cmd.as_str())];
            let started = Instant::now();
            round_trip(&ssh.url(&repo), &env, &root.join("work-ssh"), &repo);
            eprintln!("ssh round trip: {:?}", started.elapsed());
            let refs = git_in(None, &env, &["ls-remote", &ssh.alias_url(&repo)])
                .unwrap_or_else(|e| panic!("ls-remote over the alias: {e}\n{}", ssh.log()));
            assert!(refs.contains("refs/heads/main"), "{refs}");

            let empty = ssh.empty_known_hosts_command();
            let err = git_in(
                None,
                &[("GIT_SSH_COMMAND", empty.as_str())],
                &["ls-remote", &ssh.url(&repo)],
            )
            .expect_err("an unknown host key is refused");
            assert!(err.contains("Host key verification failed"), "{err}");
            assert_eq!(fs::read_to_string(&ssh.empty_known_hosts).unwrap(), "");

            let wrong = ssh.wrong_key_command();
            for url in [ssh.url(&repo), ssh.alias_url(&repo)] {
                let err = git_in(
                    None,
                    &[("GIT_SSH_COMMAND", wrong.as_str())],
                    &["ls-remote", &url],
                )
                .expect_err("a key the server does not know is refused");
                assert!(err.contains("Permission denied"), "{url}: {err}");
            }

            ssh.stop();
            assert!(git_in(None, &env, &["ls-remote", &ssh.url(&repo)]).is_err());
            ssh.start_again();
            pgids.extend(ssh.pgids());
            git_in(None, &env, &["ls-remote", &ssh.url(&repo)]).unwrap();
        }

        // https: the token, a wrong token, no CA, through a slow proxy; an
        // outage.
        {
            let mut https = HttpsServer::start(root, "ci-bot", "s3cret-Token_1");
            pgids.extend(https.pgids());
            let repo = https.repos.join("h.git");
            bare_repo(&repo);
            let ca = https.ca_file.to_str().unwrap().to_string();
            let env = [("GIT_SSL_CAINFO", ca.as_str())];
            let started = Instant::now();
            round_trip(
                &https.url_with_token("h.git"),
                &env,
                &root.join("work-https"),
                &repo,
            );
            eprintln!("https round trip: {:?}", started.elapsed());

            let wrong = https.url_with_token("h.git").replace("s3cret", "wrong");
            let err = git_in(None, &env, &["ls-remote", &wrong]).expect_err("a wrong token");
            assert!(err.contains("Authentication failed"), "{err}");
            let err = git_in(None, &env, &["ls-remote", &https.url("h.git")])
                .expect_err("no credentials");
            assert!(
                err.contains("Authentication failed") || err.contains("could not read Username"),
                "{err}"
            );
            let err = git_in(
                None,
                &[("GIT_SSL_CAINFO", "/dev/null")],
                &["ls-remote", &https.url_with_token("h.git")],
            )
            .expect_err("an unknown CA");
            assert!(err.contains("SSL") || err.contains("certificate"), "{err}");

            let proxy = DelayProxy::start(https.port, Duration::from_millis(50));
            let via = https
                .url_with_token("h2.git")
                .replace(&format!(":{}/", https.port), &format!(":{}/", proxy.port));
            let repo2 = https.repos.join("h2.git");
            bare_repo(&repo2);
            let started = Instant::now();
            round_trip(&via, &env, &root.join("work-proxy"), &repo2);
            let slow = started.elapsed();
            eprintln!(
                "https round trip through the 50 ms proxy: {slow:?}, {} connections",
                proxy.connections()
            );
            assert!(proxy.connections() >= 1);
            assert!(slow >= Duration::from_millis(200), "{slow:?}");
            drop(proxy);

            https.stop();
            assert!(git_in(None, &env, &["ls-remote", &https.url_with_token("h.git")]).is_err());
            https.start_again();
            pgids.extend(https.pgids());
            git_in(None, &env, &["ls-remote", &https.url_with_token("h.git")]).unwrap();
        }

        let left = leftovers(root.to_str().unwrap(), &pgids);
        assert!(
            left.is_empty(),
            "processes left behind:\n{}",
            left.join("\n")
        );
    }

    #[test]
    fn delay_proxy_forwards_both_ways_and_half_closes() {
        let echo = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = echo.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for s in echo.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut s = s;
                    let mut all = Vec::new();
                    s.read_to_end(&mut all).unwrap();
                    s.write_all(&all).unwrap();
                });
            }
        });
        let proxy = DelayProxy::start(port, Duration::from_millis(50));
        let started = Instant::now();
        let mut c = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
        c.write_all(&data).unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let mut back = Vec::new();
        c.read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(100), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
        assert_eq!(proxy.connections(), 1);
    }
}

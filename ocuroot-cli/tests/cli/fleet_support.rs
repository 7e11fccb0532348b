//! What the fleet tests share: a repository whose store is the default fs
//! store or a git store on bare repositories given by path (each agent with
//! its own `OCUROOT_HOME`), agents on other machines simulated with Linux
//! namespaces on this one, processes in their own process groups with hard
//! limits (killed, stopped and continued as a group, and always cleaned up
//! by [`Proc`]'s `Drop`), and readers of state and of the side effects the
//! tasks leave outside the store, in `out/exec/<name>.log`.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use crate::bad_input::{Ran, kill_group};
use crate::support::{Repo, clean_command};

/// Every command gets this long before its process group is killed.
pub(crate) const LIMIT: Duration = Duration::from_secs(60);

/// The repository alias of every fleet repository.
pub(crate) const ALIAS: &str = "fleet";

/// Where state and intent are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Store {
    /// The default fs store, `.ocuroot/store` in the repository.
    Fs,
    /// `store.git(...)` on two bare repositories given by absolute path.
    Git,
}

impl Store {
    /// `fs` or `git`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Store::Fs => "fs",
            Store::Git => "git",
        }
    }

    /// The `store.set(...)` line of `repo.ocu.star` (none for the default
    /// fs store), with the remotes in `dir`.
    fn config(self, dir: &Path) -> String {
        match self {
            Store::Fs => String::new(),
            Store::Git => format!(
                "store.set(store.git(\"{0}/state.git\"), intent=store.git(\"{0}/intent.git\"))\n",
                dir.display()
            ),
        }
    }
}

/// How many rounds the tests with rounds run: `OCUROOT_FLEET_ROUNDS`, else 3.
pub(crate) fn rounds() -> usize {
    std::env::var("OCUROOT_FLEET_ROUNDS")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(3)
}

/// Panic, saying why, unless `unshare` can give a process another host name
/// and another PID namespace (and set the next PID in it): the fleet tests
/// cannot simulate other machines without them, and must not pass silently.
pub(crate) fn require_namespaces() {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    let checked = CHECKED.get_or_init(|| {
        let probe = |args: &[&str], want: &str| -> Result<(), String> {
            let out = Command::new("unshare")
                .args(args)
                .stdin(Stdio::null())
                .output()
                .map_err(|e| format!("`unshare {}` could not start: {e}", args.join(" ")))?;
            let got = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if out.status.success() && got == want {
                Ok(())
            } else {
                Err(format!(
                    "`unshare {}` exited {:?} printing {got:?} (expected {want:?}); stderr: {}",
                    args.join(" "),
                    out.status.code(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
        };
        probe(
            &[
                "-u",
                "sh",
                "-c",
                "hostname ci-probe && cat /proc/sys/kernel/hostname",
            ],
            "ci-probe",
        )?;
        probe(
            &[
                "-p",
                "-f",
                "--mount-proc",
                "sh",
                "-c",
                "echo 20000 > /proc/sys/kernel/ns_last_pid && sh -c 'echo $$'",
            ],
            "20001",
        )
    });
    if let Err(e) = checked {
        panic!(
            "the fleet tests simulate agents on other machines with Linux namespaces \
             (`unshare -u`, `unshare -p -f --mount-proc`, run as root), which do not work here: {e}"
        );
    }
}

/// Where an agent runs.
#[derive(Clone, Debug)]
pub(crate) enum Place {
    /// This machine, this PID namespace.
    Here,
    /// Another machine: its own host name (`unshare -u`) and its own PID
    /// namespace, so that killing it kills everything it started, as a
    /// machine that dies does.
    Machine(String),
    /// A container on this machine: the same host name, another PID
    /// namespace (`unshare -p -f --mount-proc`), where `ocuroot` gets the
    /// PID after the one given (a PID no process has on this machine).
    Container(u32),
}

/// An agent: where it runs, its own `OCUROOT_HOME`, its environment.
#[derive(Clone, Debug)]
pub(crate) struct Agent {
    /// Its name, which names its `OCUROOT_HOME`.
    pub name: String,
    /// Where it runs.
    pub place: Place,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
}

impl Agent {
    /// An agent on this machine.
    pub(crate) fn here(name: &str) -> Agent {
        Agent {
            name: name.to_string(),
            place: Place::Here,
            env: Vec::new(),
        }
    }

    /// An agent on the machine named `host`.
    pub(crate) fn machine(name: &str, host: &str) -> Agent {
        Agent {
            place: Place::Machine(host.to_string()),
            ..Agent::here(name)
        }
    }

    /// An agent in a container on this machine (see [`Place::Container`]).
    pub(crate) fn container(name: &str, after_pid: u32) -> Agent {
        Agent {
            place: Place::Container(after_pid),
            ..Agent::here(name)
        }
    }

    /// With the environment variable `key` set to `value`.
    pub(crate) fn env(mut self, key: &str, value: &str) -> Agent {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// With `OCUROOT_RUN_LEASE=lease`.
    pub(crate) fn lease(self, lease: &str) -> Agent {
        self.env("OCUROOT_RUN_LEASE", lease)
    }
}

/// A PID after which a few dozen PIDs are unused on this machine: a process
/// given one in another PID namespace has a PID that names no process here.
pub(crate) fn unused_pid() -> u32 {
    let max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(32768);
    let mut p = max.saturating_sub(200);
    while p > 1000 {
        if (p + 1..=p + 40).all(|q| !Path::new(&format!("/proc/{q}")).exists()) {
            return p;
        }
        p -= 997;
    }
    panic!("no run of 40 unused PIDs below {max}");
}

/// A repository and its store, shared by agents.
pub(crate) struct Fleet {
    /// The source repository; every agent runs at its root.
    pub repo: Repo,
    /// Remotes, `OCUROOT_HOME`s and barrier files.
    dir: TempDir,
}

static BARRIERS: AtomicUsize = AtomicUsize::new(0);

impl Fleet {
    /// A repository (alias [`ALIAS`]) with `store` and `files` (in whose
    /// text `{LOG}` is the side-effect directory), committed.
    pub(crate) fn new(store: Store, files: &[(&str, &str)]) -> Fleet {
        let fleet = Fleet::empty(store, Repo::new());
        fleet.repo.write(
            "repo.ocu.star",
            &format!(
                "ocuroot(\"0.3.0\")\nrepo_alias(\"{ALIAS}\")\n{}",
                store.config(fleet.dir.path())
            ),
        );
        fleet.repo.write(".gitignore", ".ocuroot/\nout/\n");
        for (path, body) in files {
            fleet.write(path, body);
        }
        fleet.repo.commit("init");
        fleet
    }

    /// `examples/<name>` (committed by [`Repo::example`]) with its
    /// `store.set(store.fs(".ocuroot/store"))` replaced by the git store
    /// for [`Store::Git`]; the change is not committed yet.
    pub(crate) fn example(store: Store, name: &str) -> Fleet {
        let fleet = Fleet::empty(store, Repo::example(name));
        if store == Store::Git {
            let path = fleet.repo.path().join("repo.ocu.star");
            let text = std::fs::read_to_string(&path).expect("the example has a repo.ocu.star");
            let fs_line = "store.set(store.fs(\".ocuroot/store\"))\n";
            assert!(text.contains(fs_line), "{name}'s repo.ocu.star:\n{text}");
            let text = text.replace(fs_line, &store.config(fleet.dir.path()));
            fleet.repo.write("repo.ocu.star", &text);
        }
        fleet
    }

    fn empty(store: Store, repo: Repo) -> Fleet {
        let dir = tempfile::Builder::new()
            .prefix("ocuroot-fleet")
            .tempdir()
            .expect("temp dir");
        if store == Store::Git {
            for remote in ["state.git", "intent.git"] {
                let path = dir.path().join(remote);
                let out = Command::new("git")
                    .args(["init", "-q", "--bare"])
                    .arg(&path)
                    .output()
                    .expect("run git");
                assert!(
                    out.status.success(),
                    "git init --bare {}: {}",
                    path.display(),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        Fleet { repo, dir }
    }

    /// `body` with `{LOG}` replaced by the side-effect directory.
    pub(crate) fn expand(&self, body: &str) -> String {
        body.replace("{LOG}", &self.log_dir().display().to_string())
    }

    /// Write `body` (expanded) to `path` in the repository.
    pub(crate) fn write(&self, path: &str, body: &str) {
        self.repo.write(path, &self.expand(body));
    }

    /// Commit everything; the commit id.
    pub(crate) fn commit(&self, message: &str) -> String {
        self.repo.commit(message).to_string()
    }

    /// Where the tasks write their side effects: `out/exec` (absolute, so
    /// runs in worktrees at other commits write here too).
    pub(crate) fn log_dir(&self) -> PathBuf {
        self.repo.path().join("out/exec")
    }

    /// The lines of the side-effect log `out/exec/<name>.log`.
    pub(crate) fn log_lines(&self, name: &str) -> Vec<String> {
        std::fs::read_to_string(self.log_dir().join(format!("{name}.log")))
            .map(|t| t.lines().map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// The `OCUROOT_HOME` of `agent`.
    pub(crate) fn home(&self, agent: &str) -> PathBuf {
        self.dir.path().join("homes").join(agent)
    }

    /// The command running `ocuroot <args>` as `agent` (waiting for the
    /// file `barrier` first, if given).
    fn command(&self, agent: &Agent, args: &[&str], barrier: Option<&Path>) -> Command {
        let bin = env!("CARGO_BIN_EXE_ocuroot");
        let mut cmd = if matches!(agent.place, Place::Here) && barrier.is_none() {
            clean_command(bin, self.repo.path())
        } else {
            let mut script = String::new();
            if barrier.is_some() {
                script.push_str(
                    "touch \"$FLEET_BARRIER.$FLEET_AGENT\"; \
                     while [ ! -e \"$FLEET_BARRIER\" ]; do sleep 0.005; done; ",
                );
            }
            let (prefix, tail): (&[&str], &str) = match &agent.place {
                Place::Here => (&[], "exec \"$@\""),
                Place::Machine(_) => {
                    script.push_str("hostname \"$FLEET_HOST\" || exit 97; ");
                    (&["unshare", "-u", "-p", "-f", "--mount-proc"], "\"$@\"")
                }
                Place::Container(_) => {
                    script.push_str(
                        "echo \"$FLEET_AFTER_PID\" > /proc/sys/kernel/ns_last_pid || exit 97; ",
                    );
                    (&["unshare", "-p", "-f", "--mount-proc"], "\"$@\"")
                }
            };
            // In a namespace, `sh` stays as its first process (its init)
            // and `ocuroot` is its child.
            script.push_str(tail);
            let mut cmd = match prefix.split_first() {
                Some((first, rest)) => {
                    let mut c = clean_command(first, self.repo.path());
                    c.args(rest).arg("sh");
                    c
                }
                None => clean_command("sh", self.repo.path()),
            };
            cmd.args(["-c", &script, "sh", bin]);
            if let Some(b) = barrier {
                cmd.env("FLEET_BARRIER", b).env("FLEET_AGENT", &agent.name);
            }
            match &agent.place {
                Place::Machine(host) => {
                    cmd.env("FLEET_HOST", host);
                }
                Place::Container(pid) => {
                    cmd.env("FLEET_AFTER_PID", pid.to_string());
                }
                Place::Here => {}
            }
            cmd
        };
        cmd.args(args)
            .env("OCUROOT_HOME", self.home(&agent.name))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        for (k, v) in &agent.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Start `ocuroot <args>` as `agent`, in its own process group.
    pub(crate) fn spawn(&self, agent: &Agent, args: &[&str]) -> Proc {
        Proc::spawn(self.command(agent, args, None), describe_cmd(agent, args))
    }

    /// Run `ocuroot <args>` as `agent` to the end (at most [`LIMIT`]).
    pub(crate) fn run(&self, agent: &Agent, args: &[&str]) -> Ran {
        self.spawn(agent, args).finish(LIMIT)
    }

    /// Run `ocuroot <args>` as `agent`, which must exit 0.
    #[track_caller]
    pub(crate) fn ok(&self, agent: &Agent, args: &[&str]) -> Ran {
        let ran = self.run(agent, args);
        assert_eq!(
            ran.code,
            Some(0),
            "{} as {agent:?}: {}",
            args.join(" "),
            describe(&ran)
        );
        ran
    }

    /// Start `ocuroot <args>` in every agent of `agents` at the same moment
    /// (each shell says it is ready, then waits for one barrier file,
    /// created once all are ready), and wait for them all; their results,
    /// in order.
    pub(crate) fn all_at_once(&self, agents: &[Agent], args: &[&str]) -> Vec<Ran> {
        let n = BARRIERS.fetch_add(1, Ordering::SeqCst);
        let barrier = self.dir.path().join(format!("barrier-{n}"));
        let mut procs: Vec<Proc> = agents
            .iter()
            .map(|a| Proc::spawn(self.command(a, args, Some(&barrier)), describe_cmd(a, args)))
            .collect();
        wait_for("every agent waits at the barrier", LIMIT, || {
            let waiting: Vec<&str> = agents
                .iter()
                .filter(|a| Path::new(&format!("{}.{}", barrier.display(), a.name)).exists())
                .map(|a| a.name.as_str())
                .collect();
            if waiting.len() == agents.len() {
                return Ok(());
            }
            for p in &mut procs {
                if let Some(ran) = p.ended() {
                    panic!("{} ended before the barrier: {}", p.what, describe(&ran));
                }
            }
            Err(format!("waiting: {waiting:?}"))
        });
        std::fs::write(&barrier, "go").expect("write the barrier");
        procs.into_iter().map(|p| p.finish(LIMIT)).collect()
    }

    /// The reader: an agent on this machine that only reads state.
    fn reader() -> Agent {
        Agent::here("reader")
    }

    /// `state match <glob>`: the refs.
    #[track_caller]
    pub(crate) fn matches(&self, glob: &str) -> Vec<String> {
        let ran = self.run(&Fleet::reader(), &["state", "match", glob]);
        assert_eq!(ran.code, Some(0), "state match {glob}: {}", describe(&ran));
        ran.stdout.lines().map(str::to_string).collect()
    }

    /// `state get <r>`: the document, or `None` when it is absent.
    #[track_caller]
    pub(crate) fn get(&self, r: &str) -> Option<Value> {
        let ran = self.run(&Fleet::reader(), &["state", "get", r]);
        match ran.code {
            Some(0) => Some(serde_json::from_str(&ran.stdout).unwrap_or_else(|e| {
                panic!("state get {r} printed invalid JSON ({e}): {}", ran.stdout)
            })),
            Some(1) => None,
            _ => panic!("state get {r}: {}", describe(&ran)),
        }
    }

    /// The runs of the work item `work` (`<rel>/task/<name>`), each with
    /// the names of its status markers, by run number.
    #[track_caller]
    pub(crate) fn runs(&self, work: &str) -> Vec<(u32, String)> {
        let mut runs = Vec::new();
        for r in self.matches(&format!("{work}/*/status/*")) {
            let rest = r.strip_prefix(&format!("{work}/")).unwrap_or(&r);
            let parts: Vec<&str> = rest.split('/').collect();
            if let [n, "status", status] = parts[..] {
                runs.push((n.parse().unwrap_or(0), status.to_string()));
            }
        }
        runs.sort();
        runs
    }

    /// For each work item under `rel` (`task/<name>`, `deploy/<env>`), its
    /// runs as [`Fleet::runs`] gives them, from one `state match`.
    #[track_caller]
    pub(crate) fn all_runs(&self, rel: &str) -> BTreeMap<String, Vec<(u32, String)>> {
        let mut all: BTreeMap<String, Vec<(u32, String)>> = BTreeMap::new();
        for glob in ["task", "deploy"] {
            for r in self.matches(&format!("{rel}/{glob}/*/*/status/*")) {
                let rest = r.strip_prefix(&format!("{rel}/")).unwrap_or(&r);
                let parts: Vec<&str> = rest.split('/').collect();
                if let [kind, name, n, "status", status] = parts[..] {
                    all.entry(format!("{kind}/{name}"))
                        .or_default()
                        .push((n.parse().unwrap_or(0), status.to_string()));
                }
            }
        }
        for runs in all.values_mut() {
            runs.sort();
        }
        all
    }
}

/// `ocuroot <args>` as `agent`, for messages.
fn describe_cmd(agent: &Agent, args: &[&str]) -> String {
    let place = match &agent.place {
        Place::Here => "here".to_string(),
        Place::Machine(h) => format!("on {h}"),
        Place::Container(_) => "in a container".to_string(),
    };
    format!("agent {} ({place}): ocuroot {}", agent.name, args.join(" "))
}

/// What a command did, for messages: exit code or signal, time, its report
/// in one line (or the tail of its stdout), the tail of its stderr.
pub(crate) fn describe(ran: &Ran) -> String {
    fn tail(s: &str) -> &str {
        let cut = s.len().saturating_sub(3000);
        let mut i = cut;
        while !s.is_char_boundary(i) {
            i += 1;
        }
        &s[i..]
    }
    let stdout = serde_json::from_str::<Value>(&ran.stdout)
        .ok()
        .and_then(|r| summary(&r))
        .unwrap_or_else(|| tail(&ran.stdout).to_string());
    format!(
        "exit {:?}, signal {:?}{} after {:.1}s\n--- stdout\n{}\n--- stderr\n{}",
        ran.code,
        ran.signal,
        if ran.timed_out {
            ", KILLED AT THE LIMIT"
        } else {
            ""
        },
        ran.elapsed.as_secs_f32(),
        stdout.trim_end(),
        tail(&ran.stderr).trim_end()
    )
}

/// The status of the release report a command printed (`--json`), or what
/// it printed instead.
pub(crate) fn status_of(ran: &Ran) -> String {
    serde_json::from_str::<Value>(&ran.stdout)
        .ok()
        .and_then(|r| r["status"].as_str().map(str::to_string))
        .unwrap_or_else(|| format!("no report (exit {:?})", ran.code))
}

/// A release report (`--json`) in one line: the release, its status, and
/// each work item's state and run.
fn summary(report: &Value) -> Option<String> {
    let work: Vec<String> = report["work"]
        .as_array()?
        .iter()
        .map(|w| {
            let run = w["run"]
                .as_u64()
                .map(|n| format!(" run {n}"))
                .unwrap_or_default();
            format!(
                "{} {}{run}",
                w["path"].as_str().unwrap_or("?"),
                w["state"].as_str().unwrap_or("?")
            )
        })
        .collect();
    Some(format!(
        "report: {} {}: {}",
        report["release"].as_str()?,
        report["status"].as_str()?,
        work.join(", ")
    ))
}

/// A started process, the leader of its own process group. Dropped
/// unfinished (a failed assertion), its group is continued and killed.
pub(crate) struct Proc {
    child: Option<Child>,
    pgid: u32,
    what: String,
    started: Instant,
    out: Option<Receiver<Vec<u8>>>,
    err: Option<Receiver<Vec<u8>>>,
    status: Option<std::process::ExitStatus>,
}

fn reader(mut pipe: impl Read + Send + 'static) -> Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    rx
}

impl Proc {
    fn spawn(mut cmd: Command, what: String) -> Proc {
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let out = child.stdout.take().map(reader);
        let err = child.stderr.take().map(reader);
        Proc {
            pgid: child.id(),
            child: Some(child),
            what,
            started,
            out,
            err,
            status: None,
        }
    }

    /// Whether it has exited (reaped).
    pub(crate) fn exited(&mut self) -> bool {
        if self.status.is_none()
            && let Some(child) = self.child.as_mut()
        {
            self.status = child.try_wait().expect("wait for a child");
        }
        self.status.is_some()
    }

    /// Send `signal` (`STOP`, `CONT`, `KILL`) to the whole group.
    pub(crate) fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), "--", &format!("-{}", self.pgid)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Kill the whole group with `SIGKILL` (continuing it first, if it was
    /// stopped); what it had printed.
    pub(crate) fn kill(mut self) -> Ran {
        self.signal("CONT");
        kill_group(self.pgid);
        self.collect(false)
    }

    /// Wait for it to exit, at most `limit` from now, then kill its group;
    /// what it did.
    pub(crate) fn finish(mut self, limit: Duration) -> Ran {
        let deadline = Instant::now() + limit;
        while !self.exited() {
            if Instant::now() >= deadline {
                self.signal("CONT");
                kill_group(self.pgid);
                return self.collect(true);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.collect(false)
    }

    /// If it has exited, what it did.
    pub(crate) fn ended(&mut self) -> Option<Ran> {
        if self.exited() {
            Some(self.collect(false))
        } else {
            None
        }
    }

    fn collect(&mut self, timed_out: bool) -> Ran {
        let status = match (self.status, self.child.as_mut()) {
            (Some(s), _) => s,
            (None, Some(child)) => {
                let _ = child.kill();
                child.wait().expect("reap a child")
            }
            (None, None) => panic!("{} collected twice", self.what),
        };
        self.status = Some(status);
        self.child = None;
        let elapsed = self.started.elapsed();
        // Whatever it started must not outlive it.
        kill_group(self.pgid);
        let take = |rx: Option<Receiver<Vec<u8>>>| {
            rx.and_then(|rx| rx.recv_timeout(Duration::from_secs(5)).ok())
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_else(|| "<the pipe is still held open by a process it started>".into())
        };
        Ran {
            code: status.code(),
            signal: status.signal(),
            timed_out,
            stdout: take(self.out.take()),
            stderr: take(self.err.take()),
            elapsed,
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            self.signal("CONT");
            kill_group(self.pgid);
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Panic listing `problems`, unless there are none.
#[track_caller]
pub(crate) fn assert_no_problems(what: &str, store: Store, problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{what} [{}]: {} problems:\n- {}",
        store.name(),
        problems.len(),
        problems.join("\n- ")
    );
}

/// Poll `probe` every 100 ms until it gives `Ok`, at most `limit`; panics
/// with `what` and the last `Err` it gave.
#[track_caller]
pub(crate) fn wait_for<T>(
    what: &str,
    limit: Duration,
    mut probe: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match probe() {
            Ok(v) => return v,
            Err(last) if Instant::now() >= deadline => {
                panic!("{what}: not within {limit:?}; last seen: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Sleep until `t`.
pub(crate) fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

/// Sleep until a lease of `lease` given at `since` has surely expired: a
/// second after `since + lease`, or half a second after the latest of the
/// `expires` times the store recorded (ms since the epoch), whichever is
/// later, but no later than 3 s after `since + lease` (a lease far longer
/// than asked for fails the test instead of stalling it).
pub(crate) fn sleep_past_lease(since: Instant, lease: Duration, expires: &[Option<i64>]) {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let now = Instant::now();
    let mut t = since + lease + Duration::from_secs(1);
    if let Some(latest) = expires.iter().flatten().max() {
        let ahead = Duration::from_millis((latest - now_ms + 500).max(0) as u64);
        t = t.max(now + ahead);
    }
    sleep_until(t.min(since + lease + Duration::from_secs(3)));
}

/// Milliseconds since the epoch of an RFC 3339 time (`Z` or an offset,
/// any fraction), as the store records them.
pub(crate) fn rfc3339_millis(s: &str) -> Option<i64> {
    let t = ocuroot_core::model::Timestamp::parse(s).ok()?;
    let since = t.system_time().duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(since.as_millis()).ok()
}

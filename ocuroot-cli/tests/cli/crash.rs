//! Releases survive `SIGKILL` at any moment.
//!
//! A package of 40 tasks in 4 phases (each task sleeps a few dozen ms in
//! `host.shell`, then, as the last thing its shell does, appends its name to
//! its own execution log `out/exec/r<N>/<task>.log`, outside the store) is
//! released at several commits. Each `ocuroot` is started in its own process
//! group and the whole group is killed with `SIGKILL` after a delay drawn
//! from a small deterministic PRNG (20–400 ms; seed printed, `CRASH_SEED`
//! overrides it), at least 30 times over the releases. After each kill the
//! next command is `release new` (when the kill came before the release
//! existed), `release retry` (when runs were left `running` by the dead
//! agent, or failed), else `release continue`; after the last kill of a
//! release, those run to the end without a kill.
//!
//! At the end:
//!
//! - every release reports `complete`, and every task has its work
//!   document with its output;
//! - every ref `state match '**'` lists reads back with `state get` (exit 0),
//!   and a checkpoint succeeds and lists the same refs;
//! - every task has exactly one `complete` run;
//! - no task ran to completion twice, except where a kill hit after its log
//!   line was written and before its outcome was committed: such a task has
//!   one extra line per run the kill cancelled (never more lines than runs).
//!   Those are counted, reported, and must be fewer than 10% of the kills.
//!
//! The same test runs on the default fs store and on a git store (bare
//! repositories given by path, the clone in an `OCUROOT_HOME` of the
//! temporary directory, shared by the agents that follow each other), there
//! with fewer releases to stay within time (2 releases, 8 kills each).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use crate::bad_input::{kill_group, run_limited};
use crate::support::{Repo, std_ocuroot_in};

const PHASES: usize = 4;
const TASKS_PER_PHASE: usize = 10;
const PKG: &str = "t/-/crash.ocu.star";
const LIMIT: Duration = Duration::from_secs(60);

/// xorshift64*: small, deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

fn task_name(phase: usize, i: usize) -> String {
    format!("p{phase}t{i:02}")
}

/// The package file of release `n`: its log directory is `out/exec/r<n>`
/// (also what makes each commit's file differ).
fn package(n: usize, rng: &mut Rng) -> String {
    let mut text = format!(
        r#"ocuroot("0.3.0")

LOG = "out/exec/r{n}"

def work(name, sleep):
    # The log line is the shell's last action: it is written only once
    # the work is done.
    host.shell("sleep {{}} && mkdir -p {{}} && echo {{}} >> {{}}/{{}}.log".format(sleep, LOG, name, LOG, name))
    return done(outputs={{"name": name}})
"#
    );
    for phase in 0..PHASES {
        let tasks: Vec<String> = (0..TASKS_PER_PHASE)
            .map(|i| {
                let name = task_name(phase, i);
                let ms = rng.between(80, 150);
                format!(
                    "    task(work, name=\"{name}\", inputs={{\"name\": \"{name}\", \"sleep\": \"0.{ms:03}\"}}),"
                )
            })
            .collect();
        text.push_str(&format!(
            "\nphase(\"phase{phase}\", tasks=[\n{}\n])\n",
            tasks.join("\n")
        ));
    }
    text
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// The repository, and the environment every command gets (the git store's
/// `OCUROOT_HOME`).
struct Site {
    repo: Repo,
    env: Vec<(String, String)>,
    /// The git store's remotes and home, removed on drop.
    _dir: Option<TempDir>,
}

impl Site {
    /// A repository with the default fs store, or with a git store on two
    /// bare repositories given by path.
    fn new(git: bool) -> Site {
        let repo = Repo::new();
        let mut config = "ocuroot(\"0.3.0\")\nrepo_alias(\"t\")\n".to_string();
        let (env, dir) = if git {
            let dir = tempfile::tempdir().expect("temp dir");
            for remote in ["state.git", "intent.git"] {
                let path = dir.path().join(remote);
                let ok = std::process::Command::new("git")
                    .args(["init", "-q", "--bare"])
                    .arg(&path)
                    .status()
                    .expect("run git")
                    .success();
                assert!(ok, "git init --bare {}", path.display());
            }
            config.push_str(&format!(
                "store.set(store.git(\"{0}/state.git\"), intent=store.git(\"{0}/intent.git\"))\n",
                dir.path().display()
            ));
            let home = dir.path().join("home").display().to_string();
            (vec![("OCUROOT_HOME".to_string(), home)], Some(dir))
        } else {
            (Vec::new(), None)
        };
        repo.write("repo.ocu.star", &config);
        repo.write(".gitignore", ".ocuroot/\nout/\n");
        Site {
            repo,
            env,
            _dir: dir,
        }
    }

    /// `ocuroot <args>` to the end (at most [`LIMIT`]).
    fn run(&self, a: &[String]) -> crate::bad_input::Ran {
        run_limited(self.repo.path(), a, &self.env, None, LIMIT)
    }
}

/// `state match` of `globs`, which must work.
fn matches(site: &Site, globs: &[&str]) -> Vec<String> {
    let mut a = vec!["state", "match"];
    a.extend_from_slice(globs);
    let ran = site.run(&args(&a));
    assert_eq!(
        ran.code,
        Some(0),
        "state match {globs:?} failed after a kill: {}",
        ran.stderr
    );
    ran.stdout.lines().map(str::to_string).collect()
}

/// What to run next for release `n`.
fn next_command(site: &Site, n: usize) -> Vec<String> {
    let rel = format!("{PKG}/@r{n}");
    let exists = site.run(&args(&["state", "get", &rel]));
    if exists.code != Some(0) {
        return args(&["release", "new", "crash.ocu.star", "--parallel", "2", "-q"]);
    }
    let stuck = matches(
        site,
        &[
            &format!("{rel}/task/*/*/status/running"),
            &format!("{rel}/task/*/*/status/failed"),
        ],
    );
    let target = format!("crash.ocu.star/@r{n}");
    if stuck.is_empty() {
        args(&["release", "continue", &target, "--parallel", "2", "-q"])
    } else {
        args(&["release", "retry", &target, "--parallel", "2", "-q"])
    }
}

/// Start `args`, kill its process group after `delay`; whether it was still
/// running then (a real kill).
fn start_and_kill(site: &Site, args: &[String], delay: Duration) -> bool {
    let mut child = std_ocuroot_in(site.repo.path())
        .args(args)
        .envs(site.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("spawn ocuroot");
    let deadline = Instant::now() + delay;
    while Instant::now() < deadline {
        if child.try_wait().expect("try_wait").is_some() {
            kill_group(child.id());
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let running = child.try_wait().expect("try_wait").is_none();
    kill_group(child.id());
    let _ = child.kill();
    child.wait().expect("reap ocuroot");
    running
}

/// Run release `n` to the end without killing it; its last report.
fn finish(site: &Site, n: usize) -> Result<Value, String> {
    let mut last = String::new();
    for _ in 0..10 {
        let mut cmd = next_command(site, n);
        cmd.retain(|a| a != "-q");
        cmd.push("--json".to_string());
        let ran = site.run(&cmd);
        if ran.timed_out || ran.signal.is_some() {
            return Err(format!("{cmd:?} did not finish: {}", ran.stderr));
        }
        if let Ok(report) = serde_json::from_str::<Value>(&ran.stdout) {
            if report["status"] == "complete" {
                return Ok(report);
            }
            last = format!("{cmd:?} exited {:?}: status {}", ran.code, report["status"]);
        } else {
            last = format!("{cmd:?} exited {:?}: {}", ran.code, ran.stderr.trim());
        }
    }
    Err(format!("release r{n} never completed; last: {last}"))
}

#[test]
fn releases_killed_at_random_moments_complete_and_run_each_task_once() {
    crash(false, 4, 8);
}

#[test]
fn releases_on_a_git_store_killed_at_random_moments_complete_and_run_each_task_once() {
    crash(true, 2, 8);
}

/// Release `releases` commits, killing each release `kills_per_release`
/// times, on the fs store or on a git store; then check everything.
fn crash(git: bool, releases: usize, kills_per_release: usize) {
    let started = Instant::now();
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x0c05_15ed_0015_u64);
    let mut rng = Rng(seed | 1);
    let site = Site::new(git);
    let repo = &site.repo;
    let store = if git { "git" } else { "fs" };

    let mut problems = Vec::new();
    let mut kills = 0usize;
    let mut attempts = 0usize;
    let mut kills_by_release = Vec::new();
    for n in 1..=releases {
        repo.write("crash.ocu.star", &package(n, &mut rng));
        repo.commit(&format!("release {n}"));
        let mut k = 0;
        let mut tries = 0;
        // Kills that land after the command finished do not count; give up
        // on reaching the quota after many tries (the release is short).
        while k < kills_per_release && tries < 4 * kills_per_release {
            tries += 1;
            attempts += 1;
            let cmd = next_command(&site, n);
            let delay = Duration::from_millis(rng.between(20, 400));
            if start_and_kill(&site, &cmd, delay) {
                k += 1;
            }
        }
        kills += k;
        kills_by_release.push(k);
        match finish(&site, n) {
            Ok(report) => {
                if report["release"] != format!("{PKG}/@r{n}") {
                    problems.push(format!("r{n}: the report is of {}", report["release"]));
                }
            }
            Err(e) => problems.push(e),
        }
    }

    // Every document reads back, from the log, then after a checkpoint.
    let listed = matches(&site, &["**"]);
    let unreadable = std::sync::Mutex::new(Vec::new());
    let read = std::sync::Mutex::new(BTreeMap::new());
    let chunks: Vec<&[String]> = listed.chunks(listed.len().div_ceil(2).max(1)).collect();
    std::thread::scope(|scope| {
        for chunk in &chunks {
            // `Repo` is not `Sync`: its path and the environment are.
            let (root, env) = (site.repo.path(), &site.env);
            let unreadable = &unreadable;
            let read = &read;
            scope.spawn(move || {
                for r in chunk.iter() {
                    let got = run_limited(root, &args(&["state", "get", r]), env, None, LIMIT);
                    if got.code == Some(0) {
                        read.lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(r.clone(), got.stdout);
                    } else {
                        unreadable
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(format!("{r}: {}", got.stderr.trim()));
                    }
                }
            });
        }
    });
    for u in unreadable.into_inner().unwrap_or_else(|e| e.into_inner()) {
        problems.push(format!("unreadable: {u}"));
    }
    let docs: BTreeMap<String, String> = read.into_inner().unwrap_or_else(|e| e.into_inner());
    // Every task: one complete run, and log lines only for runs that ran.
    let mut doubles = Vec::new();
    for n in 1..=releases {
        let rel = format!("{PKG}/@r{n}");
        let statuses = matches(&site, &[&format!("{rel}/task/*/*/status/*")]);
        let mut runs: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for s in &statuses {
            // <rel>/task/<name>/<n>/status/<status>
            let rest = s.strip_prefix(&format!("{rel}/task/")).unwrap_or(s);
            let parts: Vec<&str> = rest.split('/').collect();
            if let [name, _, "status", status] = parts[..] {
                runs.entry(name.to_string())
                    .or_default()
                    .push(status.to_string());
            }
        }
        for phase in 0..PHASES {
            for i in 0..TASKS_PER_PHASE {
                let name = task_name(phase, i);
                let st = runs.get(&name).cloned().unwrap_or_default();
                let complete = st.iter().filter(|s| *s == "complete").count();
                if complete != 1 {
                    problems.push(format!("r{n} {name}: {complete} complete runs ({st:?})"));
                }
                let log = repo.path().join(format!("out/exec/r{n}/{name}.log"));
                let lines = fs::read_to_string(&log)
                    .map(|t| t.lines().filter(|l| *l == name).count())
                    .unwrap_or(0);
                if lines == 0 {
                    problems.push(format!("r{n} {name}: recorded complete, but never ran"));
                }
                if lines > st.len() {
                    problems.push(format!(
                        "r{n} {name}: ran to completion {lines} times with only {} runs ({st:?})",
                        st.len()
                    ));
                }
                if lines > 1 {
                    doubles.push(format!("r{n} {name}: {lines} completions, runs {st:?}"));
                }
                let work = docs.get(&format!("{rel}/task/{name}"));
                let output = work
                    .and_then(|d| serde_json::from_str::<Value>(d).ok())
                    .map(|d| d["output"]["name"].clone());
                if output != Some(Value::String(name.clone())) {
                    problems.push(format!(
                        "r{n} {name}: the work document is {:?}",
                        work.map(|d| d.chars().take(200).collect::<String>())
                    ));
                }
            }
        }
    }
    let extra: usize = doubles.len();
    if kills > 0 && extra * 10 >= kills {
        problems.push(format!(
            "{extra} tasks completed twice (a kill between the log line and the commit), \
             not fewer than 10% of {kills} kills"
        ));
    }

    let ck = site.run(&args(&["state", "checkpoint"]));
    if ck.code != Some(0) {
        problems.push(format!("state checkpoint failed: {}", ck.stderr.trim()));
    }
    let relisted = matches(&site, &["**"]);
    if relisted != listed {
        problems.push(format!(
            "after the checkpoint state match lists {} refs, before {}",
            relisted.len(),
            listed.len()
        ));
    }

    println!(
        "crash test [{store}]: seed {seed:#x}, {kills} kills (per release {kills_by_release:?}) in {attempts} attempts, \
         {} refs read back, {extra} tasks completed twice (kill between log line and commit){}, {:.1}s",
        listed.len(),
        if doubles.is_empty() {
            String::new()
        } else {
            format!(": {}", doubles.join("; "))
        },
        started.elapsed().as_secs_f32()
    );
    // All but one in 16 of the quota (30 of 32).
    let quota = releases * kills_per_release;
    assert!(
        kills >= quota - quota / 16,
        "[{store}] only {kills} kills of {quota} hit a running process (per release {kills_by_release:?})"
    );
    assert!(
        problems.is_empty(),
        "[{store}] {} problems after {kills} kills:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

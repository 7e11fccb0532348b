//! Exactly once across machines: many CI agents on many machines share one
//! store, and each run is executed once even when agents die, freeze or run
//! in containers.
//!
//! Other machines are simulated with Linux namespaces on this one (see
//! `fleet_support.rs`): an agent "on `ci-runner-7`" runs in `unshare -u -p
//! -f --mount-proc` with that host name (its own PID namespace too, so that
//! killing it kills everything it started, as a machine that dies does); an
//! agent "in a container" runs in `unshare -p -f --mount-proc` with this
//! machine's host name. Every scenario runs on the default fs store and on a
//! git store on bare repositories given by path, each agent with its own
//! `OCUROOT_HOME` (tests `<scenario>::fs` and `<scenario>::git`).
//!
//! Claims are leases (`OCUROOT_RUN_LEASE`, default 2m), renewed by the
//! agent while the work runs. Here:
//!
//! - `dead_agent_on_another_machine`: agent A on `ci-runner-7` (lease 3s)
//!   is killed with its machine while phase 2 of a release runs. Agent B on
//!   `ci-runner-8` continues at once: the runs are still A's (reported
//!   running, exit 0). After the lease, B's `release continue` takes them
//!   over and completes the release: phase 1 is not run again, each killed
//!   run is `cancelled` with `taken_over` naming both agents (no earlier
//!   than the lease's expiry), run 2 is complete, and each side effect
//!   happened once (a killed task at most twice: counted and reported).
//! - `frozen_holder`: A (lease 3s) is stopped (`SIGSTOP`) while its task
//!   runs; after the lease B takes over and completes run 2; A, continued,
//!   exits 1 saying `taken over`, and its outcome is not recorded.
//! - `agent_in_another_pid_namespace`: A runs in a container on this
//!   machine (lease 2s) with a PID no process has here. While its task runs,
//!   `release retry` here exits 1 (`still running in other agents`) and
//!   `release continue` exits 0 without a second run; A completes.
//! - `release_takeover`: A (lease 2m) dies; `release retry` and `release
//!   continue` leave its claim alone, `release takeover` breaks it at once
//!   and completes the release, recording why.
//!
//! Many agents at once (`fleet_many.rs`): `release new` of one commit by 8
//! agents, `work any --comprehensive` over new environments and `work
//! cascade` by 4 agents, each for `OCUROOT_FLEET_ROUNDS` rounds (default 3).

#[path = "fleet_support.rs"]
mod kit;

#[path = "fleet_many.rs"]
mod many;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::bad_input::Ran;
use kit::{
    Agent, Fleet, LIMIT, Store, assert_no_problems, describe, require_namespaces, rfc3339_millis,
    sleep_past_lease, status_of, unused_pid, wait_for,
};

/// Run each scenario on both stores: `<scenario>::fs`, `<scenario>::git`.
macro_rules! on_both_stores {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                #[test]
                fn fs() {
                    super::$scenario(super::Store::Fs);
                }

                #[test]
                fn git() {
                    super::$scenario(super::Store::Git);
                }
            }
        )*
    };
}
pub(crate) use on_both_stores;

on_both_stores!(
    dead_agent_on_another_machine,
    frozen_holder,
    agent_in_another_pid_namespace,
    release_takeover,
);

/// The release of `app.ocu.star`, the package file of every scenario here.
const REL: &str = "fleet/-/app.ocu.star/@r1";

/// Four quick tasks, then four that each sleep 4 s: every task's side
/// effect, the last thing its shell does, appends its name to
/// `out/exec/<name>.log`.
const TWO_PHASES: &str = r#"ocuroot("0.3.0")

LOG = "{LOG}"

def work(name, sleep):
    host.shell("sleep {} && mkdir -p {} && echo {} >> {}/{}.log".format(sleep, LOG, name, LOG, name))
    return done(outputs={"name": name})

phase("quick", tasks=[
    task(work, name="q{}".format(i), inputs={"name": "q{}".format(i), "sleep": "0"})
    for i in range(4)
])
phase("slow", tasks=[
    task(work, name="s{}".format(i), inputs={"name": "s{}".format(i), "sleep": "4"})
    for i in range(4)
])
"#;

/// One task, `work`, that sleeps `SLEEP` seconds, then appends the value of
/// `FLEET_WHO` in the agent's environment to `out/exec/work.log` and
/// outputs it.
const ONE_TASK: &str = r#"ocuroot("0.3.0")

LOG = "{LOG}"

def work():
    who = host.env().get("FLEET_WHO", "nobody")
    host.shell("sleep SLEEP && mkdir -p {} && echo {} >> {}/work.log".format(LOG, who, LOG))
    return done(outputs={"who": who})

task(work, name="work")
"#;

fn one_task(sleep: u32) -> String {
    ONE_TASK.replace("SLEEP", &sleep.to_string())
}

/// The JSON report a command printed, if it printed one.
fn report(ran: &Ran) -> Option<Value> {
    serde_json::from_str(&ran.stdout).ok()
}

/// The state and run number of `path` (`task/<name>`) in a report.
fn work_state(report: &Value, path: &str) -> (String, Option<u64>) {
    report["work"]
        .as_array()
        .and_then(|w| w.iter().find(|x| x["path"] == path))
        .map(|x| {
            (
                x["state"].as_str().unwrap_or("?").to_string(),
                x["run"].as_u64(),
            )
        })
        .unwrap_or_else(|| ("<not in the report>".to_string(), None))
}

/// Wait until each of `works` (tasks under [`REL`]) has a running run 1,
/// while `proc` (the agent that is to claim them) runs; their running
/// markers. Panics with the agent's output if it ends first.
#[track_caller]
fn wait_running(fleet: &Fleet, proc: &mut kit::Proc, works: &[&str]) -> Vec<Value> {
    wait_for(&format!("runs {works:?} of {REL} running"), LIMIT, || {
        if let Some(ran) = proc.ended() {
            panic!("the agent ended before {works:?} ran: {}", describe(&ran));
        }
        let running = fleet.matches(&format!("{REL}/task/*/*/status/running"));
        if works
            .iter()
            .all(|w| running.contains(&format!("{REL}/task/{w}/1/status/running")))
        {
            Ok(())
        } else {
            Err(format!("running: {running:?}"))
        }
    });
    works
        .iter()
        .map(|w| {
            fleet
                .get(&format!("{REL}/task/{w}/1/status/running"))
                .unwrap_or(Value::Null)
        })
        .collect()
}

/// What is wrong with the `cancelled` marker of `run` (taken over from the
/// agent on `holder` by the agent on `by`): `not_before` is the claim's
/// expiry (ms since the epoch) as the holder left it, when the takeover had
/// to wait for it; `reason` a text its reason must contain.
fn check_takeover(
    fleet: &Fleet,
    run: &str,
    holder: &str,
    by: &str,
    not_before: Option<i64>,
    reason: Option<&str>,
) -> Vec<String> {
    let at = format!("{run}/status/cancelled");
    let Some(m) = fleet.get(&at) else {
        return vec![format!("{at} is absent")];
    };
    let mut problems = Vec::new();
    let t = &m["taken_over"];
    if t["holder"]["host"] != holder {
        problems.push(format!(
            "{at}: taken_over.holder.host is {}, expected {holder:?}; the marker: {m}",
            t["holder"]["host"]
        ));
    }
    if t["by"]["host"] != by {
        problems.push(format!(
            "{at}: taken_over.by.host is {}, expected {by:?}; the marker: {m}",
            t["by"]["host"]
        ));
    }
    let (base, n) = run.rsplit_once('/').expect("a run ref");
    let next = format!("{base}/{}", n.parse::<u32>().unwrap_or(0) + 1);
    if m["retried_by"] != next.as_str() {
        problems.push(format!(
            "{at}: retried_by is {}, expected {next:?}",
            m["retried_by"]
        ));
    }
    if let Some(expires) = not_before {
        match t["at"].as_str().and_then(rfc3339_millis) {
            Some(when) if when >= expires => {}
            Some(when) => problems.push(format!(
                "{at}: taken over at {} ({} ms before the lease the holder left expired)",
                t["at"],
                expires - when
            )),
            None => problems.push(format!("{at}: taken_over.at is {}", t["at"])),
        }
    }
    if let Some(want) = reason
        && !t["reason"].as_str().unwrap_or("").contains(want)
    {
        problems.push(format!(
            "{at}: the reason {} does not mention {want:?}",
            t["reason"]
        ));
    }
    problems
}

fn dead_agent_on_another_machine(store: Store) {
    require_namespaces();
    let started = Instant::now();
    let fleet = Fleet::new(store, &[("app.ocu.star", TWO_PHASES)]);
    let lease = Duration::from_secs(3);
    let a = Agent::machine("a", "ci-runner-7").lease("3s");
    let b = Agent::machine("b", "ci-runner-8").lease("3s");
    let slow = ["s0", "s1", "s2", "s3"];
    let quick = ["q0", "q1", "q2", "q3"];
    let mut problems = Vec::new();

    let mut proc_a = fleet.spawn(
        &a,
        &[
            "release",
            "new",
            "app.ocu.star",
            "--parallel",
            "4",
            "--json",
        ],
    );
    wait_running(&fleet, &mut proc_a, &slow);
    let killed_at = Instant::now();
    proc_a.kill();

    // The claims the dead agent left, and when each expires.
    let mut killed = Vec::new();
    let mut expires: BTreeMap<&str, Option<i64>> = BTreeMap::new();
    for s in slow {
        let marker = fleet.get(&format!("{REL}/task/{s}/1/status/running"));
        let Some(m) = marker else { continue };
        killed.push(s);
        if m["agent"]["host"] != "ci-runner-7" {
            problems.push(format!(
                "the running marker of {s} names {}, not ci-runner-7: {m}",
                m["agent"]
            ));
        }
        let e = m["expires"].as_str().and_then(rfc3339_millis);
        if e.is_none() {
            problems.push(format!("the running marker of {s} has no expiry: {m}"));
        }
        expires.insert(s, e);
    }

    // B at once: A's claims hold (their leases have two thirds to go at
    // least), so B reports them running and exits 0.
    let cont = [
        "release",
        "continue",
        "app.ocu.star/@r1",
        "--parallel",
        "4",
        "--json",
    ];
    let first = fleet.run(&b, &cont);
    let first_after = killed_at.elapsed();
    let mut first_seen = "not checked".to_string();
    if first.code != Some(0) {
        problems.push(format!(
            "B's release continue right after the kill: {}",
            describe(&first)
        ));
    } else if first_after < lease * 2 / 3 {
        let rep = report(&first).unwrap_or(Value::Null);
        let states: Vec<(String, Option<u64>)> = killed
            .iter()
            .map(|s| work_state(&rep, &format!("task/{s}")))
            .collect();
        first_seen = format!("{states:?}");
        if states
            .iter()
            .any(|(st, run)| st != "running" || *run != Some(1))
        {
            problems.push(format!(
                "B's release continue {:.1}s after the kill, with the leases still valid, \
                 reported the killed runs {killed:?} as {states:?}, not running as run 1 (status {})",
                first_after.as_secs_f32(),
                rep["status"]
            ));
        }
    } else {
        first_seen = format!(
            "not checked: it ended {:.1}s after the kill",
            first_after.as_secs_f32()
        );
    }

    // After the lease: B takes the runs over and completes the release.
    sleep_past_lease(
        killed_at,
        lease,
        &expires.values().copied().collect::<Vec<_>>(),
    );
    let second = fleet.run(&b, &cont);
    let status = status_of(&second);
    if second.code != Some(0) || status != "complete" {
        problems.push(format!(
            "B's release continue after the lease expired: {}",
            describe(&second)
        ));
    }

    let runs = fleet.all_runs(REL);
    let mut doubled = Vec::new();
    for q in quick {
        let r = runs.get(&format!("task/{q}")).cloned().unwrap_or_default();
        if r != [(1, "complete".to_string())] {
            problems.push(format!(
                "{q} (phase 1) has runs {r:?}, expected one complete"
            ));
        }
        let lines = fleet.log_lines(q);
        if lines.len() != 1 {
            problems.push(format!("{q}'s side effect happened {} times", lines.len()));
        }
    }
    for s in slow {
        let r = runs.get(&format!("task/{s}")).cloned().unwrap_or_default();
        let lines = fleet.log_lines(s).len();
        if killed.contains(&s) {
            let want = [(1, "cancelled".to_string()), (2, "complete".to_string())];
            if r != want {
                problems.push(format!("{s} (killed) has runs {r:?}, expected {want:?}"));
            }
            problems.extend(check_takeover(
                &fleet,
                &format!("{REL}/task/{s}/1"),
                "ci-runner-7",
                "ci-runner-8",
                expires.get(s).copied().flatten(),
                None,
            ));
            if !(1..=2).contains(&lines) {
                problems.push(format!("{s} (killed) ran its side effect {lines} times"));
            }
            if lines == 2 {
                doubled.push(s);
            }
        } else {
            if r != [(1, "complete".to_string())] {
                problems.push(format!("{s} (finished before the kill) has runs {r:?}"));
            }
            if lines != 1 {
                problems.push(format!("{s}'s side effect happened {lines} times"));
            }
        }
        let work = fleet.get(&format!("{REL}/task/{s}"));
        let output = work.as_ref().map(|w| w["output"]["name"].clone());
        if output != Some(Value::from(s)) {
            problems.push(format!("the work document of {s} is {work:?}"));
        }
    }
    println!(
        "fleet dead_agent_on_another_machine [{}]: killed runs {killed:?} of ci-runner-7; \
         B's continue {:.1}s after the kill saw {first_seen}; after the lease: {status}; \
         {} killed tasks ran their side effect twice {doubled:?}; {} problems; {:.1}s",
        store.name(),
        first_after.as_secs_f32(),
        doubled.len(),
        problems.len(),
        started.elapsed().as_secs_f32()
    );
    assert!(!killed.is_empty(), "no run was running when A was killed");
    assert_no_problems("dead agent on another machine", store, &problems);
}

fn frozen_holder(store: Store) {
    require_namespaces();
    let started = Instant::now();
    let fleet = Fleet::new(store, &[("app.ocu.star", &one_task(6))]);
    let lease = Duration::from_secs(3);
    let a = Agent::machine("a", "ci-runner-7")
        .lease("3s")
        .env("FLEET_WHO", "A");
    let b = Agent::machine("b", "ci-runner-8")
        .lease("3s")
        .env("FLEET_WHO", "B");
    let mut problems = Vec::new();

    let mut proc_a = fleet.spawn(&a, &["release", "new", "app.ocu.star", "--json"]);
    let marker = wait_running(&fleet, &mut proc_a, &["work"]).remove(0);
    proc_a.signal("STOP");
    let stopped_at = Instant::now();
    // As the frozen agent left it (it may have renewed since `marker`).
    let marker = fleet
        .get(&format!("{REL}/task/work/1/status/running"))
        .unwrap_or(marker);
    let expires = marker["expires"].as_str().and_then(rfc3339_millis);
    if expires.is_none() {
        problems.push(format!("A's running marker has no expiry: {marker}"));
    }

    sleep_past_lease(stopped_at, lease, &[expires]);
    let cont = fleet.run(&b, &["release", "continue", "app.ocu.star/@r1", "--json"]);
    let status = status_of(&cont);
    if cont.code != Some(0) || status != "complete" {
        problems.push(format!(
            "B's release continue after A's lease expired: {}",
            describe(&cont)
        ));
    }

    proc_a.signal("CONT");
    let late = proc_a.finish(LIMIT);
    if late.code != Some(1) || !late.stderr.contains("taken over") {
        problems.push(format!(
            "A, continued after B took its run over, must exit 1 saying `taken over`: {}",
            describe(&late)
        ));
    }

    let runs = fleet.runs(&format!("{REL}/task/work"));
    let want = [(1, "cancelled".to_string()), (2, "complete".to_string())];
    if runs != want {
        problems.push(format!("the task has runs {runs:?}, expected {want:?}"));
    }
    problems.extend(check_takeover(
        &fleet,
        &format!("{REL}/task/work/1"),
        "ci-runner-7",
        "ci-runner-8",
        expires,
        None,
    ));
    let work = fleet.get(&format!("{REL}/task/work"));
    let (run_ref, who) = work
        .as_ref()
        .map(|w| (w["run_ref"].clone(), w["output"]["who"].clone()))
        .unwrap_or_default();
    if run_ref != format!("{REL}/task/work/2").as_str() || who != "B" {
        problems.push(format!(
            "the work document is {work:?}: expected run 2's, with B's output"
        ));
    }
    let lines = fleet.log_lines("work");
    let by = |who: &str| lines.iter().filter(|l| *l == who).count();
    if by("B") != 1 || by("A") > 1 || lines.len() != by("A") + by("B") {
        problems.push(format!("the side effects: {lines:?}"));
    }
    println!(
        "fleet frozen_holder [{}]: B's continue {:.1}s ({status}); A continued: exit {:?}; \
         runs {runs:?}; side effects {lines:?}; {} problems; {:.1}s",
        store.name(),
        cont.elapsed.as_secs_f32(),
        late.code,
        problems.len(),
        started.elapsed().as_secs_f32()
    );
    assert_no_problems("frozen holder", store, &problems);
}

fn agent_in_another_pid_namespace(store: Store) {
    require_namespaces();
    let started = Instant::now();
    let fleet = Fleet::new(store, &[("app.ocu.star", &one_task(5))]);
    let a = Agent::container("a", unused_pid())
        .lease("2s")
        .env("FLEET_WHO", "A");
    let here = Agent::here("here").lease("2s").env("FLEET_WHO", "here");
    let mut problems = Vec::new();

    let mut proc_a = fleet.spawn(&a, &["release", "new", "app.ocu.star", "--json"]);
    let marker = wait_running(&fleet, &mut proc_a, &["work"]).remove(0);
    let pid = marker["agent"]["pid"].as_u64().unwrap_or(0);
    let same_host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| marker["agent"]["host"] == h.trim())
        .unwrap_or(false);
    if !same_host {
        problems.push(format!(
            "the container's claim does not name this host: {marker}"
        ));
    }
    let pid_free_here = !std::path::Path::new(&format!("/proc/{pid}")).exists();

    let work = format!("{REL}/task/work");
    let (mut retries, mut continues) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    'poll: while !proc_a.exited() && Instant::now() < deadline {
        for cmd in ["retry", "continue"] {
            let ran = fleet.run(&here, &["release", cmd, "app.ocu.star/@r1", "--json"]);
            if cmd == "retry" {
                retries += 1;
            } else {
                continues += 1;
            }
            let runs = fleet.runs(&work);
            if runs == [(1, "complete".to_string())] {
                // A finished meanwhile: nothing is running any more.
                break 'poll;
            }
            if runs != [(1, "running".to_string())] {
                problems.push(format!(
                    "after release {cmd} here, the task has runs {runs:?}: {}",
                    describe(&ran)
                ));
                break 'poll;
            }
            let fine = match cmd {
                "retry" => {
                    ran.code == Some(1) && ran.stderr.contains("still running in other agents")
                }
                _ => {
                    ran.code == Some(0)
                        && report(&ran).is_some_and(|r| {
                            work_state(&r, "task/work") == ("running".into(), Some(1))
                        })
                }
            };
            if !fine {
                problems.push(format!(
                    "release {cmd} here while the container's agent runs: {}",
                    describe(&ran)
                ));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    let ran_a = proc_a.finish(LIMIT);
    if ran_a.code != Some(0) {
        problems.push(format!("the container's agent: {}", describe(&ran_a)));
    }
    let runs = fleet.runs(&work);
    if runs != [(1, "complete".to_string())] {
        problems.push(format!("the task has runs {runs:?}, expected one complete"));
    }
    let lines = fleet.log_lines("work");
    if lines != ["A"] {
        problems.push(format!("the side effects: {lines:?}, expected [\"A\"]"));
    }
    if retries == 0 {
        problems.push("no release retry ran while the task was running".into());
    }
    println!(
        "fleet agent_in_another_pid_namespace [{}]: container agent pid {pid} ({}), \
         {retries} retries and {continues} continues here while it ran; runs {runs:?}; \
         side effects {lines:?}; {} problems; {:.1}s",
        store.name(),
        if pid_free_here {
            "no such process here"
        } else {
            "a process here has the same pid"
        },
        problems.len(),
        started.elapsed().as_secs_f32()
    );
    assert_no_problems("agent in another PID namespace", store, &problems);
}

fn release_takeover(store: Store) {
    require_namespaces();
    let started = Instant::now();
    let fleet = Fleet::new(store, &[("app.ocu.star", &one_task(3))]);
    let a = Agent::machine("a", "ci-runner-7")
        .lease("2m")
        .env("FLEET_WHO", "A");
    let b = Agent::machine("b", "ci-runner-8").env("FLEET_WHO", "B");
    let mut problems = Vec::new();

    let mut proc_a = fleet.spawn(&a, &["release", "new", "app.ocu.star", "--json"]);
    wait_running(&fleet, &mut proc_a, &["work"]);
    proc_a.kill();

    // The lease has minutes to go: retry and continue leave the claim.
    let retry = fleet.run(&b, &["release", "retry", "app.ocu.star/@r1"]);
    if retry.code != Some(1)
        || !retry.stderr.contains("still running in other agents")
        || !retry.stderr.contains("ci-runner-7")
    {
        problems.push(format!(
            "release retry with the claim valid for minutes: {}",
            describe(&retry)
        ));
    }
    let cont = fleet.run(&b, &["release", "continue", "app.ocu.star/@r1", "--json"]);
    let state = report(&cont).map(|r| work_state(&r, "task/work"));
    if cont.code != Some(0) || state != Some(("running".into(), Some(1))) {
        problems.push(format!(
            "release continue with the claim valid for minutes: task {state:?}, {}",
            describe(&cont)
        ));
    }

    let takeover = fleet.run(&b, &["release", "takeover", "app.ocu.star/@r1", "--json"]);
    let status = status_of(&takeover);
    if takeover.code != Some(0) || status != "complete" {
        problems.push(format!("release takeover: {}", describe(&takeover)));
    }
    let runs = fleet.runs(&format!("{REL}/task/work"));
    let want = [(1, "cancelled".to_string()), (2, "complete".to_string())];
    if runs != want {
        problems.push(format!("the task has runs {runs:?}, expected {want:?}"));
    }
    problems.extend(check_takeover(
        &fleet,
        &format!("{REL}/task/work/1"),
        "ci-runner-7",
        "ci-runner-8",
        None,
        Some("release takeover"),
    ));
    let lines = fleet.log_lines("work");
    if !lines.contains(&"B".to_string()) || lines.len() > 2 {
        problems.push(format!("the side effects: {lines:?}"));
    }
    println!(
        "fleet release_takeover [{}]: takeover exit {:?} in {:.1}s ({status}), lease 2m; \
         runs {runs:?}; side effects {lines:?}; {} problems; {:.1}s",
        store.name(),
        takeover.code,
        takeover.elapsed.as_secs_f32(),
        problems.len(),
        started.elapsed().as_secs_f32()
    );
    assert_no_problems("release takeover", store, &problems);
}

/// The reader of the store's times used above.
#[test]
fn rfc3339_times_are_read() {
    assert_eq!(rfc3339_millis("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(
        rfc3339_millis("2026-12-02T16:36:30.123Z"),
        Some(1_796_229_390_123)
    );
    assert_eq!(
        rfc3339_millis("2026-12-02T17:36:30.123+01:00"),
        Some(1_796_229_390_123)
    );
    assert_eq!(rfc3339_millis("soon"), None);
}

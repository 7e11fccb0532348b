//! Claims are leases: agents sharing one store, each with its own identity
//! and clock (a test host), take over runs whose leases expired or whose
//! agents are gone, never a claim that is being renewed, and refuse the
//! late outcome of a holder whose run was taken over. Also: one release per
//! commit however many agents release it at once.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

use ocuroot_core::host::{Agent, Host, LineSink, ShellOutput, ShellRequest, Stream};
use ocuroot_core::model::{Event, NewRelease, ReleaseStatus, StatusMarker, WorkState};
use ocuroot_core::store::{MemoryStore, Store};
use ocuroot_core::{ErrorKind, Workspace};

/// One agent: its name, its clock (real time plus a skew that a test moves
/// forward), what it says of other agents, and a gate that holds every
/// command containing `gate` until opened.
struct TestHost {
    agent: Agent,
    skew_ms: AtomicU64,
    others_gone: AtomicBool,
    gate: Arc<(Mutex<bool>, Condvar)>,
    commands: Mutex<Vec<String>>,
}

impl TestHost {
    fn new(name: &str) -> Arc<TestHost> {
        Arc::new(TestHost {
            agent: Agent {
                id: Some(format!("{name}-id")),
                ..Agent::new(name, 1)
            },
            skew_ms: AtomicU64::new(0),
            others_gone: AtomicBool::new(false),
            gate: Arc::new((Mutex::new(false), Condvar::new())),
            commands: Mutex::new(Vec::new()),
        })
    }

    /// Move this agent's clock forward.
    fn advance(&self, d: Duration) {
        self.skew_ms
            .fetch_add(d.as_millis() as u64, Ordering::SeqCst);
    }

    fn open_gate(&self) {
        let (open, cv) = &*self.gate;
        *open.lock().unwrap() = true;
        cv.notify_all();
    }

    fn commands(&self) -> Vec<String> {
        self.commands.lock().unwrap().clone()
    }
}

/// Opens a host's gate when dropped: a failing assertion must not leave
/// the agent it holds blocked (and the test waiting for it forever).
struct OpenOnDrop<'a>(&'a TestHost);

impl Drop for OpenOnDrop<'_> {
    fn drop(&mut self) {
        self.0.open_gate();
    }
}

impl Host for TestHost {
    fn shell(&self, req: &ShellRequest, lines: &LineSink<'_>) -> ocuroot_core::Result<ShellOutput> {
        self.commands.lock().unwrap().push(req.command.clone());
        if req.command.contains("gate") {
            let (open, cv) = &*self.gate;
            let mut open = open.lock().unwrap();
            while !*open {
                open = cv.wait(open).unwrap();
            }
        }
        if let Some(ms) = req.command.strip_prefix("sleep-ms ") {
            std::thread::sleep(Duration::from_millis(ms.trim().parse().unwrap()));
        }
        lines.line(
            Stream::Stdout,
            &format!("{} ran {}", self.agent.host, req.command),
        );
        Ok(lines.output(0))
    }

    fn now(&self) -> SystemTime {
        SystemTime::now() + Duration::from_millis(self.skew_ms.load(Ordering::SeqCst))
    }

    fn agent(&self) -> Agent {
        self.agent.clone()
    }

    fn agent_alive(&self, agent: &Agent) -> Option<bool> {
        if agent.id == self.agent.id {
            Some(true)
        } else if self.others_gone.load(Ordering::SeqCst) {
            Some(false)
        } else {
            None
        }
    }
}

const PKG: &str = "l/-/release.ocu.star";

/// A repository with one package: a first task `one`, then a task `two`
/// running `command`, outputting the agent that ran it.
fn repo(command: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("repo.ocu.star"),
        "ocuroot(\"0.3.0\")\nrepo_alias(\"l\")\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("release.ocu.star"),
        format!(
            r#"ocuroot("0.3.0")

def one():
    return done(outputs={{"n": 1}})

def two():
    out = host.shell("{command}")
    return done(outputs={{"by": out.stdout.split(" ")[0]}})

phase("first", tasks=[task(one, name="one")])
phase("second", tasks=[task(two, name="two")])
"#
        ),
    )
    .unwrap();
    git2::Repository::init(dir.path()).unwrap();
    dir
}

fn agent(
    dir: &tempfile::TempDir,
    host: &Arc<TestHost>,
    store: &Arc<MemoryStore>,
    lease: Duration,
    events: Option<Arc<Mutex<Vec<Event>>>>,
) -> Workspace {
    let mut b = Workspace::builder(dir.path())
        .host(host.clone())
        .store(store.clone() as Arc<dyn Store>)
        .run_lease(lease)
        .parallel(1);
    if let Some(events) = events {
        b = b.events(Arc::new(move |e: &Event| {
            events.lock().unwrap().push(e.clone())
        }));
    }
    b.open().unwrap()
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn statuses(ws: &Workspace, work: &str) -> Vec<String> {
    ws.state_match(&[format!("{PKG}/@r1/task/{work}/*/status/*")])
        .unwrap()
        .into_iter()
        .map(|r| {
            r.trim_start_matches(&format!("{PKG}/@r1/task/{work}/"))
                .to_string()
        })
        .collect()
}

fn marker(ws: &Workspace, r: &str) -> StatusMarker {
    serde_json::from_value(
        ws.state_get(r)
            .unwrap()
            .unwrap_or_else(|| panic!("{r} exists")),
    )
    .unwrap()
}

fn running(ws: &Workspace) -> bool {
    statuses(ws, "two") == ["1/status/running"]
}

/// A holds `two` (blocked in its command); B, on another machine, leaves it
/// alone while the lease holds, takes it over once its own clock is past
/// the expiry, and completes it; A's late outcome is refused.
#[test]
fn an_expired_claim_is_taken_over_and_the_late_outcome_refused() {
    let dir = repo("gate");
    let store = Arc::new(MemoryStore::new());
    let (a, b) = (TestHost::new("a"), TestHost::new("b"));
    b.open_gate();
    let lease = Duration::from_secs(60);
    let events = Arc::new(Mutex::new(Vec::new()));
    let ws_a = agent(&dir, &a, &store, lease, None);
    let ws_b = agent(&dir, &b, &store, lease, Some(events.clone()));
    std::thread::scope(|s| {
        let _open = OpenOnDrop(&a);
        let held = s.spawn(|| ws_a.release_new("release.ocu.star", false));
        wait_for("A to run `two`", || running(&ws_b));
        let claim = marker(&ws_b, &format!("{PKG}/@r1/task/two/1/status/running"));
        assert_eq!(claim.agent.as_ref(), Some(&a.agent));
        let (since, expires) = (claim.since.unwrap(), claim.expires.unwrap());
        assert_eq!(expires.millis_since(since), Some(60_000));

        // The lease holds: B reports the work running and takes nothing.
        let report = ws_b.release_continue("release.ocu.star/@r1").unwrap();
        assert_eq!(report.status, ReleaseStatus::Running, "{report:#?}");
        let e = ws_b.release_retry("release.ocu.star/@r1").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NothingToRetry);
        assert!(
            e.message()
                .contains("still running in other agents: task/two (agent a pid 1, lease until"),
            "{e}"
        );
        assert!(running(&ws_b));

        // B's clock passes the expiry: B takes the run over and runs it.
        b.advance(lease + Duration::from_secs(1));
        let report = ws_b.release_continue("release.ocu.star/@r1").unwrap();
        assert_eq!(report.status, ReleaseStatus::Complete, "{report:#?}");
        assert_eq!(
            statuses(&ws_b, "two"),
            ["1/status/cancelled", "2/status/complete"]
        );
        let taken = events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::RunTakenOver {
                    work,
                    run,
                    new_run,
                    holder,
                    reason,
                    ..
                } => Some((
                    work.to_string(),
                    *run,
                    *new_run,
                    holder.clone(),
                    reason.clone(),
                )),
                _ => None,
            })
            .collect::<Vec<_>>();
        assert_eq!(taken.len(), 1, "{taken:?}");
        assert_eq!(taken[0].0, "task/two");
        assert_eq!((taken[0].1, taken[0].2), (1, 2));
        assert_eq!(taken[0].3.as_ref(), Some(&a.agent));
        assert!(
            taken[0].4.starts_with("its lease expired at"),
            "{}",
            taken[0].4
        );

        // A's command ends; its outcome is refused, naming the takeover.
        a.open_gate();
        let e = held.join().unwrap().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict);
        assert!(
            e.message().contains("was taken over by agent b pid 1")
                && e.message().contains("its lease expired at")
                && e.message()
                    .contains("this agent's outcome (complete) is not recorded"),
            "{e}"
        );
    });
    // The record: run 1 cancelled with the takeover, run 2 B's outcome.
    let cancelled = marker(&ws_a, &format!("{PKG}/@r1/task/two/1/status/cancelled"));
    let t = cancelled.taken_over.expect("the takeover is recorded");
    assert_eq!(t.holder.as_ref(), Some(&a.agent));
    assert_eq!(t.by, b.agent);
    assert_eq!(
        cancelled.retried_by.map(|r| r.to_string()),
        Some(format!("{PKG}/@r1/task/two/2"))
    );
    assert_eq!(
        ws_a.state_get(&format!("{PKG}/@r1/task/two#output/by"))
            .unwrap(),
        Some(serde_json::json!("b"))
    );
    assert_eq!(statuses(&ws_a, "one"), ["1/status/complete"]);
    assert_eq!(b.commands(), ["gate"]);
}

/// A live agent renews its lease while its command runs, so an agent on
/// another machine never takes it over, however often it looks.
#[test]
fn a_renewed_claim_is_never_taken_over() {
    let dir = repo("sleep-ms 1500");
    let store = Arc::new(MemoryStore::new());
    let (a, b) = (TestHost::new("a"), TestHost::new("b"));
    let lease = Duration::from_millis(450);
    let ws_a = agent(&dir, &a, &store, lease, None);
    let ws_b = agent(&dir, &b, &store, lease, None);
    let mut expiries = Vec::new();
    std::thread::scope(|s| {
        let _open = OpenOnDrop(&a);
        let held = s.spawn(|| ws_a.release_new("release.ocu.star", false));
        wait_for("A to run `two`", || running(&ws_b));
        while running(&ws_b) {
            // Past every expiry the marker said when B read it.
            if let Some(doc) = ws_b
                .state_get(&format!("{PKG}/@r1/task/two/1/status/running"))
                .unwrap()
            {
                let m: StatusMarker = serde_json::from_value(doc).unwrap();
                expiries.push(m.expires.unwrap());
            }
            match ws_b.release_retry("release.ocu.star/@r1") {
                Err(e) if e.kind() == ErrorKind::NothingToRetry => {}
                other => panic!("B took over a renewed claim: {other:?}"),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let Ok(NewRelease::Release(report)) = held.join().unwrap() else {
            panic!("A's release")
        };
        assert_eq!(report.status, ReleaseStatus::Complete, "{report:#?}");
    });
    expiries.dedup();
    assert!(
        expiries.len() >= 3,
        "the lease was renewed while the command ran: {expiries:?}"
    );
    assert_eq!(statuses(&ws_b, "two"), ["1/status/complete"]);
    assert_eq!(b.commands(), Vec::<String>::new());
}

/// A holder known to be gone (same machine, process not there) is taken
/// over at once, lease or not; `release takeover` breaks a live-looking
/// claim at once too; with nothing running it has nothing to do.
#[test]
fn gone_agents_and_broken_claims_are_taken_over_at_once() {
    for broken in [false, true] {
        let dir = repo("gate");
        let store = Arc::new(MemoryStore::new());
        let (a, b) = (TestHost::new("a"), TestHost::new("b"));
        b.open_gate();
        let lease = Duration::from_secs(3600);
        let ws_a = agent(&dir, &a, &store, lease, None);
        let ws_b = agent(&dir, &b, &store, lease, None);
        std::thread::scope(|s| {
            let _open = OpenOnDrop(&a);
            let held = s.spawn(|| ws_a.release_new("release.ocu.star", false));
            wait_for("A to run `two`", || running(&ws_b));
            let report = if broken {
                ws_b.release_takeover("release.ocu.star").unwrap()
            } else {
                b.others_gone.store(true, Ordering::SeqCst);
                ws_b.release_continue("release.ocu.star/@r1").unwrap()
            };
            assert_eq!(report.status, ReleaseStatus::Complete, "{report:#?}");
            a.open_gate();
            assert!(held.join().unwrap().is_err());
        });
        let t = marker(&ws_b, &format!("{PKG}/@r1/task/two/1/status/cancelled"))
            .taken_over
            .unwrap();
        let expected = if broken {
            "a person broke the claim (release takeover by agent b pid 1)"
        } else {
            "its agent's process is gone"
        };
        assert!(t.reason.starts_with(expected), "{}", t.reason);
        let e = ws_b.release_takeover("release.ocu.star/@r1").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NothingToRetry);
        assert!(e.message().contains("nothing to take over"), "{e}");
    }
}

/// A `running` marker written before leases (agent and time only) expires
/// a lease's length after its claim.
#[test]
fn a_claim_without_an_expiry_expires_a_lease_after_it_was_made() {
    let dir = repo("echo hi");
    let store = Arc::new(MemoryStore::new());
    let b = TestHost::new("b");
    let lease = Duration::from_secs(60);
    let ws = agent(&dir, &b, &store, lease, None);
    let NewRelease::Release(_) = ws.release_new("release.ocu.star", false).unwrap() else {
        panic!("a release")
    };
    // As if an agent of an older version had died running `two`.
    let run = format!("{PKG}/@r1/task/two/1");
    let claimed = SystemTime::now() - Duration::from_secs(30);
    let since = humantime::format_rfc3339_millis(claimed).to_string();
    ws.state()
        .update(|tx| {
            tx.delete(&ocuroot_core::refs::Ref::parse(&format!(
                "{run}/status/complete"
            ))?)?;
            tx.create(
                &ocuroot_core::refs::Ref::parse(&format!("{run}/status/running"))?,
                serde_json::json!({"agent": {"host": "old", "pid": 7}, "since": since}),
            )
        })
        .unwrap();
    let report = ws.release_continue("release.ocu.star/@r1").unwrap();
    assert_eq!(report.work[1].state, WorkState::Running, "{report:#?}");
    b.advance(Duration::from_secs(31));
    let report = ws.release_continue("release.ocu.star/@r1").unwrap();
    assert_eq!(report.status, ReleaseStatus::Complete, "{report:#?}");
    let t = marker(&ws, &format!("{run}/status/cancelled"))
        .taken_over
        .unwrap();
    assert_eq!(t.holder, Some(Agent::new("old", 7)));
    let expired = humantime::format_rfc3339_millis(claimed + lease).to_string();
    assert_eq!(t.reason, format!("its lease expired at {expired}"));
    assert_eq!(b.commands(), ["echo hi", "echo hi"]);
}

/// Eight agents release the same package at the same commit at once: one
/// release is made, its work runs once, and every other agent is refused
/// with the original's message.
#[test]
fn one_release_per_commit_however_many_agents_release_it_at_once() {
    for round in 0..5 {
        let dir = repo("echo hi");
        let store = Arc::new(MemoryStore::new());
        let hosts: Vec<Arc<TestHost>> = (0..8).map(|i| TestHost::new(&format!("a{i}"))).collect();
        let agents: Vec<Workspace> = hosts
            .iter()
            .map(|h| agent(&dir, h, &store, Duration::from_secs(60), None))
            .collect();
        let start = std::sync::Barrier::new(agents.len());
        let results: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = agents
                .iter()
                .map(|ws| {
                    let start = &start;
                    s.spawn(move || {
                        start.wait();
                        ws.release_new("release.ocu.star", false)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let made = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(made, 1, "round {round}: {results:?}");
        for e in results.iter().filter_map(|r| r.as_ref().err()) {
            assert_eq!(e.kind(), ErrorKind::AlreadyReleased, "round {round}: {e}");
            assert!(
                e.message()
                    .contains("There are already 1 releases for this commit"),
                "{e}"
            );
        }
        assert_eq!(
            agents[0]
                .state_match(&[format!("{PKG}/@*/commit/*")])
                .unwrap()
                .len(),
            1
        );
        let ran: usize = hosts.iter().map(|h| h.commands().len()).sum();
        assert_eq!(ran, 1, "round {round}: the work ran {ran} times");
    }
}

/// While A's `up` runs, the deploy intent it wrote as it started differs
/// from state (its outcome is not there yet). That is not a difference for
/// another agent: B's `state diff` lists nothing and B's `work any` deploys
/// nothing.
#[test]
fn a_deployment_in_progress_is_not_an_intent_difference() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write("repo.ocu.star", "ocuroot(\"0.3.0\")\nrepo_alias(\"l\")\n");
    write(
        "environments.ocu.star",
        "ocuroot(\"0.3.0\")\nregister_environment(environment(\"prod\", {}))\n",
    );
    write(
        "app.ocu.star",
        r#"ocuroot("0.3.0")

def up(environment):
    host.shell("gate")
    return done(outputs={"ok": True})

def down(environment):
    return done()

[deploy(up=up, down=down, environment=e) for e in environments()]
"#,
    );
    git2::Repository::init(dir.path()).unwrap();
    let store = Arc::new(MemoryStore::new());
    let (a, b) = (TestHost::new("a"), TestHost::new("b"));
    b.open_gate();
    let lease = Duration::from_secs(60);
    let ws_a = agent(&dir, &a, &store, lease, None);
    let ws_b = agent(&dir, &b, &store, lease, None);
    ws_a.release_new("environments.ocu.star", false).unwrap();
    let run = "l/-/app.ocu.star/@r1/deploy/prod/1";
    std::thread::scope(|s| {
        let _open = OpenOnDrop(&a);
        let held = s.spawn(|| ws_a.release_new("app.ocu.star", false));
        wait_for("A's up to run", || {
            ws_b.state_match(&[format!("{run}/status/running")])
                .unwrap()
                .len()
                == 1
                && ws_b
                    .intent()
                    .exists(
                        &ocuroot_core::refs::Ref::parse("l/-/app.ocu.star/@/deploy/prod").unwrap(),
                    )
                    .unwrap()
        });
        assert_eq!(ws_b.state_diff().unwrap(), Vec::new());
        let result = ws_b.work_any(false).unwrap();
        let ocuroot_core::WorkResult::Done(outcome) = result else {
            panic!("work any ran")
        };
        assert!(outcome.applied.is_empty(), "{outcome:#?}");
        a.open_gate();
        assert!(held.join().unwrap().is_ok());
    });
    assert_eq!(
        ws_b.state_match(&["l/-/app.ocu.star/@r1/deploy/prod/*/status/*"])
            .unwrap(),
        [format!("{run}/status/complete")]
    );
    assert_eq!(ws_b.state_diff().unwrap(), Vec::new());
    assert_eq!(b.commands(), Vec::<String>::new());
}

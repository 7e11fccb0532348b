//! The release engine through the Workspace API, with an in-memory store and
//! a recording host: what the C and Python bindings will do.

use std::path::Path;
use std::sync::{Arc, Mutex};

use ocuroot_core::Workspace;
use ocuroot_core::host::{Host, LineSink, ShellOutput, ShellRequest, Stream};
use ocuroot_core::model::{Event, NewRelease, StateDoc};
use ocuroot_core::model::{ReleaseStatus, WorkState};
use ocuroot_core::store::{MemoryStore, Store};

/// Records every command and answers it without starting a process; a
/// command containing "fail" exits 1.
#[derive(Default)]
struct Recorder {
    commands: Mutex<Vec<String>>,
}

impl Host for Recorder {
    fn shell(&self, req: &ShellRequest, lines: &LineSink<'_>) -> ocuroot_core::Result<ShellOutput> {
        self.commands.lock().unwrap().push(req.command.clone());
        lines.line(Stream::Stdout, &format!("ok: {}", req.command));
        Ok(ShellOutput {
            exit_code: if req.command.contains("fail") { 1 } else { 0 },
            ..ShellOutput::default()
        })
    }
}

fn repo(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    git2::Repository::init(dir.path()).unwrap();
    dir
}

fn quickstart() -> tempfile::TempDir {
    let q = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart");
    let read = |f: &str| std::fs::read_to_string(q.join(f)).unwrap();
    repo(&[
        ("repo.ocu.star", &read("repo.ocu.star")),
        ("environments.ocu.star", &read("environments.ocu.star")),
        ("release.ocu.star", &read("release.ocu.star")),
    ])
}

#[test]
fn quickstart_with_a_memory_store_and_a_recording_host() {
    let dir = quickstart();
    let host = Arc::new(Recorder::default());
    let store = Arc::new(MemoryStore::new());
    let events = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = events.clone();
    let ws = Workspace::builder(dir.path())
        .host(host.clone())
        .store(store.clone() as Arc<dyn Store>)
        .parallel(2)
        .events(Arc::new(move |e: &Event| {
            if let Event::RunFinished { work, status, .. } = e {
                sink.lock().unwrap().push(format!("{work} {status}"));
            }
        }))
        .open()
        .unwrap();

    let NewRelease::Environments {
        environments,
        outcome,
    } = ws.release_new("environments.ocu.star", false).unwrap()
    else {
        panic!("environments expected")
    };
    assert_eq!(environments.len(), 3);
    // Nothing is released yet, so applying them deploys nothing.
    assert_eq!(outcome.applied.len(), 3);
    assert!(outcome.releases.is_empty(), "{outcome:#?}");

    let NewRelease::Release(report) = ws.release_new("release.ocu.star", false).unwrap() else {
        panic!("a release expected")
    };
    assert_eq!(report.status, ReleaseStatus::Complete, "{report:#?}");
    assert_eq!(report.release, "quickstart/-/release.ocu.star/@r1");
    assert!(
        report
            .work
            .iter()
            .all(|w| w.state == WorkState::Complete && w.run == Some(1))
    );

    // Build first, then staging, then both production environments.
    let commands = host.commands.lock().unwrap().clone();
    assert_eq!(commands[0], "docker build . -t myapp:1");
    assert_eq!(commands[1], "docker push myapp:1");
    assert_eq!(commands[2], "./deploy.sh myapp:1 staging");
    assert_eq!(commands[3], "./test.sh staging");
    let mut prod = commands[4..].to_vec();
    prod.sort();
    assert_eq!(
        prod,
        [
            "./deploy.sh myapp:1 production",
            "./deploy.sh myapp:1 production2",
            "./test.sh production",
            "./test.sh production2"
        ]
    );
    let finished = events.lock().unwrap().clone();
    assert_eq!(finished[0], "task/build complete");
    assert_eq!(finished[1], "deploy/staging complete");

    // Everything is in the memory store; nothing was written to disk.
    assert!(!dir.path().join(".ocuroot").exists());
    assert_eq!(
        ws.state_get("quickstart/-/release.ocu.star/@/task/build#output/tag")
            .unwrap(),
        Some(serde_json::json!("myapp:1"))
    );
    assert!(store.get("state/@/environment/staging").unwrap().is_some());
    assert!(store.get("intent/@/environment/staging").unwrap().is_some());

    // The same documents read typed.
    let read = |r: &str| ws.state_read(r).unwrap().unwrap();
    let build = read("quickstart/-/release.ocu.star/@/task/build");
    assert_eq!(build.r#ref, "quickstart/-/release.ocu.star/@r1/task/build");
    let StateDoc::Work(work) = &build.doc else {
        panic!("{build:?}")
    };
    assert_eq!(work.output["tag"], "myapp:1");
    assert_eq!(
        work.run_ref,
        "quickstart/-/release.ocu.star/@r1/task/build/1"
    );
    let StateDoc::Run(run) = read(work.run_ref.to_string().as_str()).doc else {
        panic!()
    };
    assert_eq!(run.attempt, 1);
    assert!(run.error.is_none() && run.finished_at.is_some());
    let StateDoc::Release(release) = read("quickstart/-/release.ocu.star/@r1").doc else {
        panic!()
    };
    assert_eq!(release.commit, ws.commit());
    let StateDoc::Environment(env) = read("@/environment/staging").doc else {
        panic!()
    };
    assert_eq!(env.name.as_str(), "staging");
    assert!(ws.state_read("@/custom/none").unwrap().is_none());

    // A second release at the same commit is refused, with --force it counts on.
    let err = ws.release_new("release.ocu.star", false).unwrap_err();
    assert!(err.message().contains("@r1"), "{err}");
    let NewRelease::Release(second) = ws.release_new("release.ocu.star", true).unwrap() else {
        panic!()
    };
    assert_eq!(second.release, "quickstart/-/release.ocu.star/@r2");
    assert_eq!(
        ws.state_get("quickstart/-/release.ocu.star/@r2/task/build#output/build_number")
            .unwrap(),
        Some(serde_json::json!(2))
    );
}

#[test]
fn failure_stops_later_phases_and_retry_resumes() {
    let dir = repo(&[
        ("repo.ocu.star", "repo_alias(\"t\")\n"),
        (
            "release.ocu.star",
            r#"
def ok():
    host.shell("echo ok")

def flaky():
    host.shell(read("cmd.txt"))

def last():
    host.shell("echo last")

phase("one", tasks=[task(ok, name="a"), task(flaky, name="b")])
phase("two", tasks=[task(last, name="c")])
"#,
        ),
        ("cmd.txt", "fail now"),
    ]);
    let host = Arc::new(Recorder::default());
    let ws = Workspace::builder(dir.path())
        .host(host.clone())
        .store(Arc::new(MemoryStore::new()))
        .open()
        .unwrap();
    let NewRelease::Release(report) = ws.release_new("release.ocu.star", false).unwrap() else {
        panic!()
    };
    assert_eq!(report.status, ReleaseStatus::Failed);
    let state = |p: &str| report.work.iter().find(|w| w.path == p).unwrap().clone();
    assert_eq!(state("task/a").state, WorkState::Complete);
    assert_eq!(state("task/b").state, WorkState::Failed);
    assert!(
        state("task/b")
            .error
            .unwrap()
            .contains("fail now: exit status 1")
    );
    // The failure in one line, beside Starlark's full rendering.
    let summary = state("task/b").summary.unwrap();
    assert!(summary.contains("fail now: exit status 1"), "{summary}");
    assert!(
        !summary.contains('\n') && !summary.contains("Traceback"),
        "{summary}"
    );
    assert_eq!(state("task/c").state, WorkState::Waiting);
    assert!(
        !host
            .commands
            .lock()
            .unwrap()
            .contains(&"echo last".to_string())
    );
    let stored = ws
        .state_get("t/-/release.ocu.star/@r1/task/b/1#error")
        .unwrap()
        .unwrap();
    assert!(
        stored["stack"].as_str().unwrap().contains("flaky"),
        "{stored}"
    );
    assert_eq!(
        stored["summary"].as_str(),
        Some(summary.as_str()),
        "{stored}"
    );
    assert_eq!(stored["location"]["file"], "release.ocu.star");

    std::fs::write(dir.path().join("cmd.txt"), "echo fixed").unwrap();
    let report = ws.release_retry("release.ocu.star").unwrap();
    assert_eq!(report.status, ReleaseStatus::Complete, "{report:#?}");
    assert_eq!(
        report.work.iter().find(|w| w.path == "task/b").unwrap().run,
        Some(2)
    );
    assert!(
        ws.state_get("t/-/release.ocu.star/@r1/task/b/1/status/failed_retried")
            .unwrap()
            .is_some()
    );
    assert!(
        host.commands
            .lock()
            .unwrap()
            .contains(&"echo last".to_string())
    );
    let err = ws.release_retry("release.ocu.star/@r1").unwrap_err();
    assert!(err.message().contains("no failed work"), "{err}");
}

/// A work item waiting for a sibling in its own phase starts once the
/// sibling completes; one waiting for something that never comes leaves the
/// release blocked, naming the ref. The same with one worker and with two.
#[test]
fn work_waiting_for_a_sibling_starts_when_it_completes() {
    for parallel in [1, 2] {
        let dir = repo(&[
            ("repo.ocu.star", "repo_alias(\"t\")\n"),
            (
                "release.ocu.star",
                r#"
def produce():
    return done(outputs={"x": 41})

def consume(x):
    return done(outputs={"y": x + 1})

def never(z):
    return done()

phase("one", tasks=[
    task(consume, name="b", inputs={"x": input(ref="./task/a#output/x")}),
    task(produce, name="a"),
])
phase("two", tasks=[
    task(consume, name="c", inputs={"x": input(ref="./task/b#output/y")}),
    task(never, name="d", inputs={"z": input(ref="./task/nobody#output/z")}),
])
"#,
            ),
        ]);
        let ws = Workspace::builder(dir.path())
            .host(Arc::new(Recorder::default()))
            .store(Arc::new(MemoryStore::new()))
            .parallel(parallel)
            .open()
            .unwrap();
        let NewRelease::Release(report) = ws.release_new("release.ocu.star", false).unwrap() else {
            panic!()
        };
        let item = |p: &str| report.work.iter().find(|w| w.path == p).unwrap().clone();
        assert_eq!(report.status, ReleaseStatus::Blocked, "{report:#?}");
        for p in ["task/a", "task/b", "task/c"] {
            assert_eq!(item(p).state, WorkState::Complete, "{p} {report:#?}");
        }
        assert_eq!(item("task/d").state, WorkState::Blocked);
        assert_eq!(
            item("task/d").waiting_for,
            ["t/-/release.ocu.star/@r1/task/nobody#output/z"]
        );
        assert_eq!(
            ws.state_get("t/-/release.ocu.star/@r1/task/c#output/y")
                .unwrap(),
            Some(serde_json::json!(43))
        );
    }
}

/// The JSON forms the C and Python bindings hand out: `release new` tagged
/// by `kind`, events by `event`, a lint with its package.
#[test]
fn json_forms_of_results_and_events() {
    let dir = quickstart();
    let events = Arc::new(Mutex::new(Vec::<serde_json::Value>::new()));
    let sink = events.clone();
    let ws = Workspace::builder(dir.path())
        .host(Arc::new(Recorder::default()))
        .store(Arc::new(MemoryStore::new()))
        .events(Arc::new(move |e: &Event| {
            sink.lock().unwrap().push(serde_json::to_value(e).unwrap());
        }))
        .open()
        .unwrap();
    let envs =
        serde_json::to_value(ws.release_new("environments.ocu.star", false).unwrap()).unwrap();
    assert_eq!(envs["kind"], "environments");
    assert_eq!(envs["environments"].as_array().unwrap().len(), 3);
    assert!(envs["outcome"].is_object(), "{envs}");

    let lint = ws.release_lint("release.ocu.star").unwrap().to_json();
    assert_eq!(lint["file"], "release.ocu.star");
    assert_eq!(lint["base"], "quickstart/-/release.ocu.star/@r1");
    assert!(lint["package"]["phases"].is_array(), "{lint}");

    let rel = serde_json::to_value(ws.release_new("release.ocu.star", false).unwrap()).unwrap();
    assert_eq!(rel["kind"], "release");
    assert_eq!(rel["release"], "quickstart/-/release.ocu.star/@r1");
    assert_eq!(rel["status"], "complete");
    assert_eq!(rel["work"][0]["path"], "task/build");

    let events = events.lock().unwrap();
    // The release's totals first, before any run starts.
    assert_eq!(
        events[0],
        serde_json::json!({
            "event": "release_started",
            "release": "quickstart/-/release.ocu.star/@r1",
            "total": rel["work"].as_array().unwrap().len(),
            "complete": 0,
            "failed": 0,
        })
    );
    assert_eq!(events[1]["event"], "run_started");
    assert_eq!(events[1]["work"], "task/build");
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "log" && e["line"]["message"].is_string())
    );
    let last = events.last().unwrap();
    assert_eq!(last["event"], "run_finished");
    assert_eq!(last["status"], "complete");
}

/// Each scheduling session starts with `release_started`: the release's
/// work items, and how many are complete and failed as it starts.
#[test]
fn release_started_counts_the_work_before_any_run_starts() {
    let dir = repo(&[
        ("repo.ocu.star", "repo_alias(\"t\")\n"),
        (
            "release.ocu.star",
            r#"
def ok():
    host.shell("echo ok")

def flaky():
    host.shell(read("cmd.txt"))

phase("one", tasks=[task(ok, name="a"), task(flaky, name="b")])
phase("two", tasks=[task(ok, name="c")])
"#,
        ),
        ("cmd.txt", "fail now"),
    ]);
    let events = Arc::new(Mutex::new(Vec::<Event>::new()));
    let sink = events.clone();
    let ws = Workspace::builder(dir.path())
        .host(Arc::new(Recorder::default()))
        .store(Arc::new(MemoryStore::new()))
        .parallel(2)
        .events(Arc::new(move |e: &Event| {
            if !matches!(e, Event::Log { .. }) {
                sink.lock().unwrap().push(e.clone());
            }
        }))
        .open()
        .unwrap();
    // The kinds of the events since the last call, with the totals of
    // `release_started`.
    let take = || -> Vec<String> {
        std::mem::take(&mut *events.lock().unwrap())
            .into_iter()
            .map(|e| match e {
                Event::ReleaseStarted {
                    release,
                    total,
                    complete,
                    failed,
                } => {
                    assert_eq!(release, "t/-/release.ocu.star/@r1");
                    format!("release_started {total} {complete} {failed}")
                }
                Event::RunStarted { work, .. } => format!("run_started {work}"),
                Event::RunFinished { work, status, .. } => format!("run_finished {work} {status}"),
                Event::RunTakenOver { work, .. } => format!("run_taken_over {work}"),
                Event::Log { .. } => unreachable!(),
            })
            .collect()
    };

    ws.release_new("release.ocu.star", false).unwrap();
    let new = take();
    assert_eq!(new[0], "release_started 3 0 0", "{new:?}");
    assert_eq!(new.len(), 5, "{new:?}");
    // Nothing can run: one complete, one failed, one waiting.
    ws.release_continue("release.ocu.star/@r1").unwrap();
    assert_eq!(take(), ["release_started 3 1 1"]);
    // A retry makes the failed work pending again before the session.
    std::fs::write(dir.path().join("cmd.txt"), "echo fixed").unwrap();
    ws.release_retry("release.ocu.star").unwrap();
    assert_eq!(
        take(),
        [
            "release_started 3 1 0",
            "run_started task/b",
            "run_finished task/b complete",
            "run_started task/c",
            "run_finished task/c complete",
        ]
    );
    ws.release_continue("release.ocu.star/@r1").unwrap();
    assert_eq!(take(), ["release_started 3 3 0"]);
    // Reading a release's status is not running it.
    ws.release_status("release.ocu.star").unwrap();
    assert_eq!(take(), Vec::<String>::new());
}

/// Counts the commands running at once. Each waits (up to a few seconds)
/// until `want` are running, so reaching the limit does not depend on timing;
/// a wait that runs out means the scheduler left a slot idle.
struct Gate {
    want: usize,
    /// Running now, most at once, waits that ran out.
    state: Mutex<(usize, usize, usize)>,
    changed: std::sync::Condvar,
}

impl Host for Gate {
    fn shell(
        &self,
        _req: &ShellRequest,
        _lines: &LineSink<'_>,
    ) -> ocuroot_core::Result<ShellOutput> {
        let mut s = self.state.lock().unwrap();
        s.0 += 1;
        s.1 = s.1.max(s.0);
        self.changed.notify_all();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while s.1 < self.want {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                s.2 += 1;
                break;
            }
            s = self.changed.wait_timeout(s, left).unwrap().0;
        }
        s.0 -= 1;
        Ok(ShellOutput::default())
    }
}

/// `parallel(n)` runs n work items at once (the scheduling thread runs work
/// beside n - 1 workers), and never more.
#[test]
fn parallel_n_runs_exactly_n_at_once() {
    for parallel in [2, 3, 4] {
        let dir = repo(&[
            ("repo.ocu.star", "repo_alias(\"p\")\n"),
            (
                "release.ocu.star",
                "def work():\n    host.shell(\"x\")\n    return done()\n\n\
                 phase(\"a\", tasks=[task(work, name=\"a{}\".format(i)) for i in range(12)])\n\
                 phase(\"b\", tasks=[task(work, name=\"b{}\".format(i)) for i in range(5)])\n",
            ),
        ]);
        let gate = Arc::new(Gate {
            want: parallel,
            state: Mutex::new((0, 0, 0)),
            changed: std::sync::Condvar::new(),
        });
        let ws = Workspace::builder(dir.path())
            .host(gate.clone())
            .store(Arc::new(MemoryStore::new()))
            .parallel(parallel)
            .open()
            .unwrap();
        let NewRelease::Release(report) = ws.release_new("release.ocu.star", false).unwrap() else {
            panic!("a release expected")
        };
        assert_eq!(report.status, ReleaseStatus::Complete, "{report:#?}");
        assert_eq!(report.work.len(), 17);
        let (_, most, starved) = *gate.state.lock().unwrap();
        assert_eq!(
            most, parallel,
            "most commands at once with parallel {parallel}"
        );
        assert_eq!(
            starved, 0,
            "with parallel {parallel}, a command waited in vain"
        );
    }
}

/// Runs claim and finish with deferred commits (no fsync each); the engine
/// syncs the store before it reports, so everything a report says is durable
/// when `release_new` returns.
#[test]
fn what_a_release_reports_is_durable_when_it_returns() {
    let dir = repo(&[
        ("repo.ocu.star", "ocuroot(\"0.3.0\")\nrepo_alias(\"d\")\n"),
        (
            "many.ocu.star",
            "ocuroot(\"0.3.0\")\n\ndef work():\n    return done()\n\n\
             [task(work, name=\"t{}\".format(i)) for i in range(40)]\n",
        ),
    ]);
    let store =
        Arc::new(ocuroot_core::store::FsStore::open(dir.path().join(".store"), "state").unwrap());
    let ws = Workspace::builder(dir.path())
        .host(Arc::new(Recorder::default()))
        .store(store.clone() as Arc<dyn Store>)
        .parallel(2)
        .open()
        .unwrap();
    let NewRelease::Release(report) = ws.release_new("many.ocu.star", false).unwrap() else {
        panic!("a release expected")
    };
    assert_eq!(report.status, ReleaseStatus::Complete, "{report:#?}");
    assert_eq!(report.work.len(), 40);
    // Far fewer fsyncs than the 80 claim and outcome commits: they were
    // deferred...
    let syncs = store.sync_count();
    assert!(syncs < 20, "{syncs} fsyncs");
    // ...and nothing is left to make durable.
    Store::sync(store.as_ref()).unwrap();
    assert_eq!(store.sync_count(), syncs, "the release left work unsynced");
}

/// The conditions a program acts on have kinds of their own, and the
/// library's messages name no CLI flag.
#[test]
fn already_released_and_nothing_to_retry_have_their_own_kinds() {
    let dir = quickstart();
    let ws = Workspace::builder(dir.path())
        .host(Arc::new(Recorder::default()))
        .store(Arc::new(MemoryStore::new()))
        .open()
        .unwrap();
    ws.release_new("environments.ocu.star", false).unwrap();
    ws.release_new("release.ocu.star", false).unwrap();

    let again = ws.release_new("release.ocu.star", false).unwrap_err();
    assert_eq!(again.kind(), ocuroot_core::ErrorKind::AlreadyReleased);
    assert_eq!(again.kind().as_str(), "already_released");
    assert!(
        again
            .message()
            .contains("There are already 1 releases for this commit"),
        "{again}"
    );
    assert!(!again.message().contains("--force"), "{again}");
    assert_eq!(again.reference(), Some("quickstart/-/release.ocu.star"));
    assert!(ws.release_new("release.ocu.star", true).is_ok());

    let retry = ws.release_retry("release.ocu.star/@r1").unwrap_err();
    assert_eq!(retry.kind(), ocuroot_core::ErrorKind::NothingToRetry);
    assert!(
        retry.message().starts_with("no failed work to retry in"),
        "{retry}"
    );
    assert_eq!(retry.reference(), Some("quickstart/-/release.ocu.star/@r1"));
}

//! Live logs: while a run runs, its lines are written in chunks to
//! `<run>/live_logs/<k>`, where another process can read them; the commit
//! that finishes the run writes `<run>/logs` and deletes the chunks.
//! These run real shell commands (the default host).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ocuroot_core::Workspace;
use ocuroot_core::model::{NewRelease, ReleaseStatus, WorkState};
use ocuroot_core::store::{MemoryStore, Store};
use serde_json::Value;

use crate::store::common::CountingStore;

/// A committed repository with an fs store in `.store` and `files`.
fn repo(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("repo.ocu.star"),
        "ocuroot(\"0.3.0\")\nrepo_alias(\"l\")\nstore.set(store.fs(\".store\"))\n",
    )
    .unwrap();
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    git2::Repository::init(dir.path()).unwrap();
    dir
}

const RUN: &str = "l/-/release.ocu.star/@r1/task/slow/1";

/// The messages of a JSON array of log lines.
fn messages(lines: &Value) -> Vec<String> {
    lines
        .as_array()
        .unwrap_or_else(|| panic!("an array of lines: {lines}"))
        .iter()
        .map(|l| l["message"].as_str().unwrap().to_string())
        .collect()
}

/// The live chunks of `run`, in order, read through `ws`.
fn chunks(ws: &Workspace, run: &str) -> Vec<Value> {
    let mut refs = ws.state_match(&[format!("{run}/live_logs/*")]).unwrap();
    let k = |r: &String| r.rsplit('/').next().unwrap().parse::<u32>().unwrap();
    refs.sort_by_key(k);
    // Chunks are numbered from 1 without gaps.
    let numbers: Vec<u32> = refs.iter().map(k).collect();
    assert_eq!(numbers, (1..=refs.len() as u32).collect::<Vec<_>>());
    refs.iter()
        .map(|r| ws.state_get(r).unwrap().expect("a listed chunk exists"))
        .collect()
}

fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(t) = f() {
            return t;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A line printed by a running run is visible to another workspace on the
/// same store while the run still runs; once it finishes, `<run>/logs` has
/// every line and no chunk is left.
#[test]
fn a_running_runs_lines_are_visible_to_another_workspace_while_it_runs() {
    let dir = repo(&[(
        "release.ocu.star",
        r#"ocuroot("0.3.0")

def slow():
    host.shell("echo first line; while [ ! -f go ]; do sleep 0.05; done; echo second line")
    return done()

task(slow, name="slow")
"#,
    )]);
    let ws = Workspace::builder(dir.path()).parallel(1).open().unwrap();
    let watcher = Workspace::open(dir.path()).unwrap();
    std::thread::scope(|s| {
        let release = s.spawn(|| ws.release_new("release.ocu.star", false));
        let seen = wait_for("the first line in a live chunk", || {
            let lines: Vec<String> = chunks(&watcher, RUN).iter().flat_map(messages).collect();
            (!lines.is_empty()).then_some(lines)
        });
        assert_eq!(seen, ["first line"]);
        // The run is still running: it waits for `go`.
        assert_eq!(
            watcher.state_match(&[format!("{RUN}/status/*")]).unwrap(),
            [format!("{RUN}/status/running")]
        );
        assert_eq!(watcher.state_get(&format!("{RUN}/logs")).unwrap(), None);
        let status = watcher.release_status("release.ocu.star").unwrap();
        assert_eq!(status.work[0].state, WorkState::Running);
        std::fs::write(dir.path().join("go"), "").unwrap();
        let Ok(NewRelease::Release(report)) = release.join().unwrap() else {
            panic!("a release expected")
        };
        assert_eq!(report.status, ReleaseStatus::Complete, "{report:#?}");
    });
    for reader in [&ws, &watcher] {
        let logs = reader.state_get(&format!("{RUN}/logs")).unwrap().unwrap();
        assert_eq!(messages(&logs), ["first line", "second line"]);
        assert_eq!(
            reader
                .state_match(&[format!("{RUN}/live_logs/**")])
                .unwrap(),
            Vec::<String>::new()
        );
    }
}

/// Many lines over more than a second make several chunks, each line once,
/// in order; the finished run keeps none of them.
#[test]
fn a_finished_run_leaves_no_chunks_however_many_it_wrote() {
    let dir = repo(&[(
        "release.ocu.star",
        r#"ocuroot("0.3.0")

def slow():
    host.shell("for i in $(seq 1 60); do echo line $i; sleep 0.025; done")
    return done()

task(slow, name="slow")
"#,
    )]);
    let ws = Workspace::builder(dir.path())
        .store(Arc::new(MemoryStore::new()) as Arc<dyn Store>)
        .open()
        .unwrap();
    let all: Vec<String> = (1..=60).map(|i| format!("line {i}")).collect();
    let mut most = Vec::new();
    std::thread::scope(|s| {
        let release = s.spawn(|| ws.release_new("release.ocu.star", false));
        while !release.is_finished() {
            let seen = chunks(&ws, RUN);
            if seen.len() > most.len() {
                most = seen;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let Ok(NewRelease::Release(report)) = release.join().unwrap() else {
            panic!("a release expected")
        };
        assert_eq!(report.status, ReleaseStatus::Complete, "{report:#?}");
    });
    // The chunks seen hold the first lines, each once, in order.
    assert!(most.len() >= 2, "{} chunks seen", most.len());
    let live: Vec<String> = most.iter().flat_map(messages).collect();
    assert_eq!(live, all[..live.len()]);
    let logs = ws.state_get(&format!("{RUN}/logs")).unwrap().unwrap();
    assert_eq!(messages(&logs), all);
    assert_eq!(
        ws.state_match(&[format!("{RUN}/**")]).unwrap(),
        [format!("{RUN}/logs"), format!("{RUN}/status/complete")]
    );
}

/// Runs that print nothing make the flusher write nothing: a release whose
/// run takes more than a second commits as often as one whose run is
/// instant.
#[test]
fn runs_that_print_nothing_write_no_chunk() {
    let commits = |command: &str| {
        let dir = repo(&[(
            "release.ocu.star",
            &format!(
                "ocuroot(\"0.3.0\")\n\ndef quiet():\n    host.shell(\"{command}\")\n    \
                 return done()\n\ntask(quiet, name=\"quiet\")\n"
            ),
        )]);
        let store = Arc::new(CountingStore::over(&Arc::new(MemoryStore::new())));
        let ws = Workspace::builder(dir.path())
            .store(store.clone() as Arc<dyn Store>)
            .open()
            .unwrap();
        let NewRelease::Release(report) = ws.release_new("release.ocu.star", false).unwrap() else {
            panic!("a release expected")
        };
        assert_eq!(report.status, ReleaseStatus::Complete, "{report:#?}");
        store.commits()
    };
    assert_eq!(commits("sleep 1.2"), commits("true"));
    // One line is one chunk more, written while the run sleeps.
    assert_eq!(commits("echo hi; sleep 1.2"), commits("true") + 1);
}

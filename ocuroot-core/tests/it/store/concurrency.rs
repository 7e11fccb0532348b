//! Real concurrency on one directory store: writer threads in this process
//! and in child processes (this test binary, re-executed), with readers
//! checking that no document is ever partial and no batch is ever seen half
//! applied, and that no batch is lost; and writer processes killed mid-batch.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ocuroot_core::store::{Expect, FsStore, Op, Store};
use serde_json::{Value, json};

const ENV_DIR: &str = "OCUROOT_STORE_TEST_DIR";
const ENV_WORKER: &str = "OCUROOT_STORE_TEST_WORKER";
const ENV_WRITERS: &str = "OCUROOT_STORE_TEST_WRITERS";
const ENV_CHECKPOINT: &str = "OCUROOT_STORE_TEST_CHECKPOINT";
/// Keys written together by every batch.
const K: usize = 4;
/// Batches per writer.
const BATCHES: u64 = 20;
const PROCESSES: usize = 3;
const THREADS_PER_WORKER: usize = 2;
const TOTAL: &str = "conc/total";

fn shared_keys() -> Vec<String> {
    (0..K).map(|j| format!("conc/shared/k{j}")).collect()
}

fn counter_key(writer: &str) -> String {
    format!("conc/writers/{writer}")
}

fn number(bytes: &[u8]) -> u64 {
    let v: Value = serde_json::from_slice(bytes).expect("a counter is complete JSON");
    v.as_u64().expect("a counter is a number")
}

/// `BATCHES` batches, each writing `{"writer", "n", "pad"}` to all K shared
/// keys, the writer's own counter (= n) and the shared total (+1, by
/// compare-and-swap, retried on conflict).
fn run_writer(store: &FsStore, writer: &str) -> u64 {
    let mut conflicts = 0;
    for n in 1..=BATCHES {
        let doc = serde_json::to_vec(&json!({"writer": writer, "n": n, "pad": "x".repeat(1024)}))
            .unwrap();
        loop {
            let total = store.get(TOTAL).unwrap();
            let mine = store.get(&counter_key(writer)).unwrap();
            assert_eq!(
                mine.as_ref().map_or(0, |e| number(&e.value)),
                n - 1,
                "{writer}: an earlier batch was lost"
            );
            let new_total = total.as_ref().map_or(0, |e| number(&e.value)) + 1;
            let mut ops: Vec<Op> = shared_keys()
                .into_iter()
                .map(|k| Op::put(k, doc.clone(), Expect::Any))
                .collect();
            ops.push(Op::put(
                TOTAL,
                new_total.to_string().into_bytes(),
                Expect::unchanged(total.map(|e| e.version)),
            ));
            ops.push(Op::put(
                counter_key(writer),
                n.to_string().into_bytes(),
                Expect::unchanged(mine.map(|e| e.version)),
            ));
            match store.commit(&ops) {
                Ok(()) => break,
                Err(e) if e.is_conflict() => conflicts += 1,
                Err(e) => panic!("{writer}: {e}"),
            }
        }
    }
    conflicts
}

/// Read until `stop`, checking every snapshot; returns how many snapshots
/// saw data.
fn run_reader(store: &FsStore, writers: &[String], stop: &AtomicBool) -> usize {
    let shared = shared_keys();
    let counters: Vec<String> = writers.iter().map(|w| counter_key(w)).collect();
    let mut keys: Vec<&str> = shared.iter().map(String::as_str).collect();
    keys.push(TOTAL);
    keys.extend(counters.iter().map(String::as_str));
    let mut last_total = 0;
    let mut seen = 0;
    while !stop.load(Ordering::SeqCst) {
        // One consistent snapshot (the shared lock).
        let snapshot = store.get_many(&keys).unwrap();
        if let Some(first) = &snapshot[0] {
            seen += 1;
            let doc: Value = serde_json::from_slice(&first.value).expect("complete JSON");
            let (writer, n) = (
                doc["writer"].as_str().unwrap().to_string(),
                doc["n"].as_u64().unwrap(),
            );
            assert_eq!(doc["pad"].as_str().unwrap().len(), 1024);
            for (key, entry) in shared.iter().zip(&snapshot[..K]) {
                let entry = entry
                    .as_ref()
                    .unwrap_or_else(|| panic!("{key} missing: half a batch"));
                assert_eq!(entry.value, first.value, "{key}: half a batch visible");
            }
            let total = number(
                &snapshot[K]
                    .as_ref()
                    .expect("total written with the keys")
                    .value,
            );
            assert!(
                total >= last_total,
                "total went back from {last_total} to {total}"
            );
            last_total = total;
            // The counter of the writer whose batch is visible says the same n.
            let w = writers
                .iter()
                .position(|x| *x == writer)
                .expect("a known writer");
            let counter = number(&snapshot[K + 1 + w].as_ref().unwrap().value);
            assert_eq!(
                counter, n,
                "{writer}'s counter and documents disagree: half a batch"
            );
            // The sum of the counters is the total: no batch half applied, none lost.
            let sum: u64 = snapshot[K + 1..]
                .iter()
                .map(|e| e.as_ref().map_or(0, |e| number(&e.value)))
                .sum();
            assert_eq!(sum, total);

            // Without any lock, files (written by checkpoints) are never
            // partial (atomic renames).
            for key in &shared {
                let bytes = match std::fs::read(store.object_path(key).unwrap()) {
                    Ok(bytes) => bytes,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => panic!("{key}: {e}"),
                };
                let doc: Value = serde_json::from_slice(&bytes).expect("complete file");
                assert_eq!(doc["pad"].as_str().unwrap().len(), 1024);
            }
            assert_eq!(store.list("conc/shared/").unwrap(), shared);
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    seen
}

/// Run `THREADS_PER_WORKER` writers named `<worker>-<t>` and one reader.
fn run_worker(store: &FsStore, worker: &str, all_writers: &[String]) -> (u64, usize) {
    let stop = AtomicBool::new(false);
    let conflicts = AtomicUsize::new(0);
    let reads = std::thread::scope(|scope| {
        let reader = scope.spawn(|| run_reader(store, all_writers, &stop));
        let writers: Vec<_> = (0..THREADS_PER_WORKER)
            .map(|t| {
                let conflicts = &conflicts;
                scope.spawn(move || {
                    let c = run_writer(store, &format!("{worker}-{t}"));
                    conflicts.fetch_add(c as usize, Ordering::SeqCst);
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        stop.store(true, Ordering::SeqCst);
        reader.join().unwrap()
    });
    (conflicts.load(Ordering::SeqCst) as u64, reads)
}

/// Open the store as every worker does: with the default checkpoint
/// threshold, or `checkpoint` bytes.
fn open(dir: &std::path::Path, checkpoint: Option<u64>) -> FsStore {
    let builder = FsStore::builder(dir, "state");
    match checkpoint {
        Some(bytes) => builder.checkpoint_bytes(bytes),
        None => builder,
    }
    .open()
    .unwrap()
}

/// The child-process side of `threads_and_processes_never_see_half_a_batch`.
/// Does nothing unless started by it.
#[test]
#[ignore = "started in child processes by the tests below"]
fn process_worker() {
    let Ok(dir) = std::env::var(ENV_DIR) else {
        return;
    };
    let worker = std::env::var(ENV_WORKER).unwrap();
    let writers: Vec<String> = std::env::var(ENV_WRITERS)
        .unwrap()
        .split(',')
        .map(String::from)
        .collect();
    let checkpoint = std::env::var(ENV_CHECKPOINT)
        .ok()
        .filter(|v| !v.is_empty())
        .map(|v| v.parse().unwrap());
    let store = open(dir.as_ref(), checkpoint);
    let (conflicts, reads) = run_worker(&store, &worker, &writers);
    println!("worker {worker}: done, {conflicts} conflicts retried, {reads} snapshots checked");
}

#[test]
fn threads_and_processes_never_see_half_a_batch() {
    run_all(None);
}

/// The same, with the log checkpointed every few batches, by whichever
/// writer crosses the threshold.
#[test]
fn threads_and_processes_with_frequent_checkpoints() {
    run_all(Some(16 * 1024));
}

fn run_all(checkpoint: Option<u64>) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), checkpoint);
    let workers: Vec<String> = std::iter::once("main".to_string())
        .chain((0..PROCESSES).map(|p| format!("proc{p}")))
        .collect();
    let writers: Vec<String> = workers
        .iter()
        .flat_map(|w| (0..THREADS_PER_WORKER).map(move |t| format!("{w}-{t}")))
        .collect();
    let started = Instant::now();
    let children: Vec<_> = workers[1..]
        .iter()
        .map(|w| {
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "store::concurrency::process_worker",
                    "--nocapture",
                    "--ignored",
                ])
                .env(ENV_DIR, dir.path())
                .env(ENV_WORKER, w)
                .env(ENV_WRITERS, writers.join(","))
                .env(
                    ENV_CHECKPOINT,
                    checkpoint.map_or(String::new(), |c| c.to_string()),
                )
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let (conflicts, reads) = run_worker(&store, "main", &writers);
    for (child, name) in children.into_iter().zip(&workers[1..]) {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name} failed:\n{stdout}\n{stderr}");
        assert!(
            stdout.contains(&format!("worker {name}: done")) && stdout.contains("1 passed"),
            "{name} did not run the worker:\n{stdout}\n{stderr}"
        );
        eprintln!(
            "{}",
            stdout.lines().find(|l| l.starts_with("worker")).unwrap()
        );
    }
    eprintln!(
        "main: {conflicts} conflicts retried, {reads} snapshots checked; {} batches in {:?}",
        writers.len() as u64 * BATCHES,
        started.elapsed()
    );

    // No batch was lost.
    let total = number(&store.get(TOTAL).unwrap().unwrap().value);
    assert_eq!(total, writers.len() as u64 * BATCHES);
    for w in &writers {
        assert_eq!(
            number(&store.get(&counter_key(w)).unwrap().unwrap().value),
            BATCHES,
            "{w}"
        );
    }
    if let Some(bytes) = checkpoint {
        let wal = std::fs::metadata(dir.path().join(".wal")).unwrap().len();
        assert!(wal < bytes + 16 * 1024, "checkpoints bound the log: {wal}");
    }
    // Nothing left over: no journal, no temporary files.
    let leftovers: Vec<_> = crate::store::common::tree(dir.path())
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("tmp") || p.to_string_lossy().contains("journal"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

const ENV_CRASH_DIR: &str = "OCUROOT_STORE_TEST_CRASH_DIR";
const ENV_CRASH_FSYNC: &str = "OCUROOT_STORE_TEST_CRASH_FSYNC";
/// Keys written together by every batch of the crash test.
const CRASH_KEYS: usize = 24;

/// The child-process side of `killed_writers_never_leave_half_a_batch`:
/// commit batches until killed. Does nothing unless started by it.
#[test]
#[ignore = "started in child processes by killed_writers_never_leave_half_a_batch"]
fn crash_worker() {
    let Ok(dir) = std::env::var(ENV_CRASH_DIR) else {
        return;
    };
    let fsync = std::env::var(ENV_CRASH_FSYNC).unwrap() == "1";
    let store = FsStore::builder(&dir, "state")
        .fsync(fsync)
        .checkpoint_bytes(64 * 1024)
        .open()
        .unwrap();
    println!("started");
    loop {
        let n = store
            .get("crash/n")
            .unwrap()
            .map_or(0, |e| number(&e.value))
            + 1;
        let doc = serde_json::to_vec(&json!({"n": n, "pad": "y".repeat(2048)})).unwrap();
        let mut ops: Vec<Op> = (0..CRASH_KEYS)
            .map(|j| Op::put(format!("crash/k/{j}"), doc.clone(), Expect::Any))
            .collect();
        ops.push(Op::put("crash/n", n.to_string().into_bytes(), Expect::Any));
        // Every other batch deletes what the previous one created.
        if n.is_multiple_of(2) {
            ops.push(Op::delete(format!("crash/odd/{}", n - 1), Expect::Any));
        } else {
            ops.push(Op::put(
                format!("crash/odd/{n}"),
                b"1".to_vec(),
                Expect::Absent,
            ));
        }
        store.commit(&ops).unwrap();
    }
}

/// A writer process killed at random points (mid-append, mid-apply,
/// mid-checkpoint) never leaves a batch half visible to the next opener, and
/// never loses a batch whose commit returned.
#[test]
fn killed_writers_never_leave_half_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut last_n = 0;
    for round in 0..8u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "store::concurrency::crash_worker",
                "--nocapture",
                "--ignored",
            ])
            .env(ENV_CRASH_DIR, dir.path())
            .env(ENV_CRASH_FSYNC, if round % 2 == 0 { "1" } else { "0" })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Let it start, then commit for a while.
        let started =
            std::io::BufRead::lines(std::io::BufReader::new(child.stdout.as_mut().unwrap()))
                .any(|line| line.unwrap() == "started");
        assert!(started, "worker did not start");
        std::thread::sleep(Duration::from_millis(40 + 23 * round));
        child.kill().unwrap();
        child.wait().unwrap();

        let store = FsStore::open(dir.path(), "state").unwrap();
        let n = number(&store.get("crash/n").unwrap().expect("some batch").value);
        assert!(n >= last_n, "round {round}: went back from {last_n} to {n}");
        last_n = n;
        let keys: Vec<String> = (0..CRASH_KEYS).map(|j| format!("crash/k/{j}")).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        for entry in store.get_many(&keys).unwrap() {
            let doc: Value = serde_json::from_slice(&entry.unwrap().value).unwrap();
            assert_eq!(doc["n"].as_u64(), Some(n), "round {round}: half a batch");
        }
        let odd = store.list("crash/odd/").unwrap();
        let expected = if n % 2 == 1 {
            vec![format!("crash/odd/{n}")]
        } else {
            vec![]
        };
        assert_eq!(odd, expected, "round {round}: half a batch");
        eprintln!("round {round}: killed after batch {n}");
    }
    assert!(last_n > 8, "the workers committed too little: {last_n}");
}

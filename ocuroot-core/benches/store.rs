//! What the directory store costs: a 6-key commit (the size of a task's
//! outcome batch) with and without fsync, a 1-key commit, reads, and a
//! checkpoint.
//!
//! Run with `cargo bench -p ocuroot-core --bench store`. The stores live in
//! Cargo's target tmp directory, on the same filesystem as the work folder.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_main};
use ocuroot_core::store::{Expect, FsStore, Op, Store};

const PKG: &str = "github.com/org/repo/-/release.ocu.star/@r1";

/// A task outcome-like document of about 600 bytes.
fn doc(i: u64) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "kind": "ref",
        "body": {
            "status": "complete",
            "n": i,
            "outputs": {"tag": format!("app:{i}"), "log": "x".repeat(480)},
        },
    }))
    .unwrap()
}

/// Six writes for task `t`: status, outputs, logs and three links, as a
/// release run's outcome batch (new keys the first time round, then
/// replacements).
fn six_keys(t: u64, i: u64) -> Vec<Op> {
    let base = format!("{PKG}/task/t{t}");
    [
        "status/complete",
        "outputs",
        "logs",
        "@/links/a",
        "@/links/b",
        "@/links/c",
    ]
    .iter()
    .map(|leaf| Op::put(format!("{base}/{leaf}"), doc(i), Expect::Any))
    .collect()
}

fn store_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

fn bench(c: &mut Criterion) {
    for fsync in [true, false] {
        let dir = store_dir();
        let store = FsStore::builder(dir.path(), "state")
            .fsync(fsync)
            .open()
            .unwrap();
        let mut i = 0u64;
        let name = if fsync {
            "commit 6 keys (fsync)"
        } else {
            "commit 6 keys (no fsync)"
        };
        let syncs = store.sync_count();
        c.bench_function(name, |b| {
            b.iter(|| {
                i += 1;
                store.commit(&six_keys(i % 1000, i)).unwrap();
            })
        });
        if fsync {
            eprintln!(
                "{name}: {:.3} fsyncs per commit, checkpoints included ({i} commits)",
                (store.sync_count() - syncs) as f64 / i as f64
            );
        }
    }

    let dir = store_dir();
    let store = FsStore::open(dir.path(), "state").unwrap();
    let mut i = 0u64;
    c.bench_function("commit 1 key (fsync)", |b| {
        b.iter(|| {
            i += 1;
            store
                .commit(&[Op::put(
                    format!("{PKG}/task/t{}/status/complete", i % 1000),
                    doc(i),
                    Expect::Any,
                )])
                .unwrap();
        })
    });

    let key = format!("{PKG}/task/t1/outputs");
    let keys: Vec<String> = six_keys(1, 0)
        .iter()
        .map(|op| op.key().to_string())
        .collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    store.commit(&six_keys(1, 0)).unwrap();
    c.bench_function("get", |b| b.iter(|| black_box(store.get(&key).unwrap())));
    c.bench_function("get_many 6 keys", |b| {
        b.iter(|| black_box(store.get_many(&keys).unwrap()))
    });

    // A checkpoint after 100 six-key commits to distinct tasks (600 files).
    let dir = store_dir();
    let store = FsStore::open(dir.path(), "state").unwrap();
    let mut i = 0u64;
    let mut group = c.benchmark_group("checkpoint");
    group.sample_size(10);
    group.bench_function("after 100 commits of 6 new keys (fsync)", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                for _ in 0..100 {
                    i += 1;
                    store.commit(&six_keys(i, i)).unwrap();
                }
                let start = Instant::now();
                store.checkpoint().unwrap();
                total += start.elapsed();
            }
            total
        })
    });
    group.finish();
}

#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::bench);
}
use group::benches;
criterion_main!(benches);

//! What the release engine costs per work item: `release new` of a package
//! with 10 phases of 100 tasks that do nothing (`return done()`), against a
//! [`MemoryStore`] and a host that runs no commands. What is measured is the
//! engine's own overhead: evaluation, the scheduler, run claims, input
//! resolution, the Starlark call, the transactions and their JSON.
//!
//! Run with `cargo bench -p ocuroot-core --bench release`. Each release
//! runs in a fresh store and workspace (set up outside the measurement);
//! divide the time per release by 1000 for the time per task.
//!
//! On a shared 2-vCPU machine (the figures vary by 10-20% with its load):
//! about 138 ms per release at parallel 1 and 100 ms at parallel 2 at
//! 51f3bbb, i.e. 0.14 and 0.10 ms per task; about 58 ms at both after the
//! engine work that followed, i.e. under 0.06 ms per task.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_main};
use ocuroot_core::Workspace;
use ocuroot_core::host::{Host, LineSink, ShellOutput, ShellRequest};
use ocuroot_core::model::NewRelease;
use ocuroot_core::model::ReleaseStatus;
use ocuroot_core::store::{MemoryStore, Store};

/// Phases and tasks per phase.
const PHASES: usize = 10;
const TASKS: usize = 100;

const PACKAGE: &str = r#"
ocuroot("0.3.0")

def work():
    return done()

[phase(
    "p{}".format(p),
    tasks=[task(work, name="t{}_{}".format(p, i)) for i in range(100)],
) for p in range(10)]
"#;

/// A host that refuses to run commands (the tasks run none).
struct NoShell;

impl Host for NoShell {
    fn shell(
        &self,
        req: &ShellRequest,
        _lines: &LineSink<'_>,
    ) -> ocuroot_core::Result<ShellOutput> {
        Err(ocuroot_core::Error::host(format!(
            "no shell in this benchmark: {}",
            req.command
        )))
    }
}

/// A git repository holding the package file and a `repo.ocu.star` naming
/// the repository (the store given to the workspace replaces its store).
fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("release.ocu.star"), PACKAGE).unwrap();
    std::fs::write(
        dir.path().join("repo.ocu.star"),
        "ocuroot(\"0.3.0\")\nrepo_alias(\"bench\")\n",
    )
    .unwrap();
    git2::Repository::init(dir.path()).unwrap();
    dir
}

fn workspace(root: &Path, parallel: usize) -> Workspace {
    Workspace::builder(root)
        .host(Arc::new(NoShell))
        .store(Arc::new(MemoryStore::new()) as Arc<dyn Store>)
        .parallel(parallel)
        .open()
        .unwrap()
}

/// One release in a fresh workspace; returns the time `release_new` took.
fn release(root: &Path, parallel: usize) -> Duration {
    let ws = workspace(root, parallel);
    let start = Instant::now();
    let result = ws.release_new("release.ocu.star", false).unwrap();
    let took = start.elapsed();
    let NewRelease::Release(report) = black_box(result) else {
        panic!("a release expected")
    };
    assert_eq!(report.status, ReleaseStatus::Complete);
    assert_eq!(report.work.len(), PHASES * TASKS);
    took
}

fn bench(c: &mut Criterion) {
    let dir = repo();
    let mut group = c.benchmark_group(format!("release new, {PHASES} phases x {TASKS} tasks"));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    for parallel in [1, 2] {
        group.bench_function(format!("parallel {parallel}"), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| release(dir.path(), parallel)).sum())
        });
    }
    group.finish();
}

#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::bench);
}
use group::benches;
criterion_main!(benches);

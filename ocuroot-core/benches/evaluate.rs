//! How long evaluating a large package file takes, and calling one of its
//! work functions.
//!
//! Run with `cargo bench -p ocuroot-core --bench evaluate`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_main};
use ocuroot_core::host::LocalHost;
use ocuroot_core::model::{Environment, EnvironmentName};
use ocuroot_core::refs::Ref;
use ocuroot_core::sdk::{self, CallRequest, EvalOptions};

/// 1000 deploys in 10 phases of 100, plus a build task feeding them.
const PACKAGE: &str = r#"
ocuroot("0.3.0")

def build(prev):
    return done(outputs={"tag": "app:{}".format(prev + 1), "n": prev + 1})

def up(tag, environment, replicas=1):
    return done(outputs={"deployed": tag, "env": environment["name"]})

def down(environment):
    return done()

task(build, name="build", inputs={"prev": input(ref="./@/task/build#output/n", default=0)})

[phase(
    "wave-{}".format(w),
    tasks=[
        deploy(
            up=up,
            down=down,
            environment=e,
            inputs={"tag": ref("./task/build#output/tag"), "replicas": e.attributes["replicas"]},
        )
        for e in environments() if e.attributes["wave"] == w
    ],
) for w in range(10)]
"#;

fn options(root: &std::path::Path) -> EvalOptions {
    let mut o = EvalOptions::new(
        Arc::new(LocalHost::new()),
        root,
        Ref::parse("bench/-/release.ocu.star/@r1").unwrap(),
    );
    o.environments = (0..1000)
        .map(|i| Environment {
            name: EnvironmentName::new(format!("env-{i:04}")).unwrap(),
            attributes: serde_json::json!({"wave": i % 10, "replicas": 1 + i % 3})
                .as_object()
                .unwrap()
                .clone(),
        })
        .collect::<Vec<_>>()
        .into();
    o
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("release.ocu.star");
    std::fs::write(&file, PACKAGE).unwrap();
    let opts = options(dir.path());

    let loaded = sdk::evaluate_package(&file, &opts).unwrap();
    let deploys: usize = loaded.package().unwrap().work().count() - 1;
    assert_eq!(deploys, 1000);

    c.bench_function("evaluate package with 1000 deploys", |b| {
        b.iter(|| black_box(sdk::evaluate_package(&file, &opts).unwrap()))
    });

    let (_, first) = loaded.package().unwrap().work().nth(1).unwrap();
    let request = CallRequest {
        function: first.entry_function().clone(),
        inputs: BTreeMap::from([
            ("tag".to_string(), serde_json::json!("app:1")),
            ("replicas".to_string(), serde_json::json!(2)),
            (
                "environment".to_string(),
                serde_json::json!({"name": "env-0000", "attributes": {}}),
            ),
        ]),
        work_dir: None,
        base: None,
        log_sink: None,
    };
    c.bench_function("call a work function", |b| {
        b.iter(|| black_box(loaded.call(&request).outcome.unwrap()))
    });
}

#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::bench);
}
use group::benches;
criterion_main!(benches);

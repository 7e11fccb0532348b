//! The dependency graph across packages: order, downstream, cycles naming
//! every node, and the rendered forms.

use std::sync::Arc;

use ocuroot_core::Workspace;
use ocuroot_core::graph::{DependencyGraph, Node};
use ocuroot_core::store::MemoryStore;

/// A git repository with `files`, opened with a memory store.
fn workspace(files: &[(&str, &str)]) -> (tempfile::TempDir, Workspace) {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    git2::Repository::init(dir.path()).unwrap();
    let ws = Workspace::builder(dir.path())
        .store(Arc::new(MemoryStore::new()))
        .open()
        .unwrap();
    (dir, ws)
}

/// The graph of `files` (package files evaluated as `release lint` does).
fn graph_of(ws: &Workspace, files: &[&str]) -> DependencyGraph {
    let mut graph = DependencyGraph::new();
    for file in files {
        let lint = ws.release_lint(file).unwrap();
        let package = lint.package().expect("a package file");
        graph.add_package(&lint.base, package);
    }
    graph
}

const ENVIRONMENTS: &str = r#"
register_environment(environment("staging", {"type": "staging"}))
register_environment(environment("production", {"type": "prod"}))
"#;

const BACKEND: &str = r#"
def up(environment):
    return done(outputs={"url": "https://backend." + environment["name"]})

def down(environment):
    return done()

phase("deploy", tasks=[deploy(up=up, down=down, environment=e) for e in environments()])
"#;

const FRONTEND: &str = r#"
def up(environment, backend):
    return done()

def down(environment):
    return done()

phase("deploy", tasks=[
    deploy(up=up, down=down, environment=e, inputs={
        "backend": input(ref="g/-/backend.ocu.star/@/deploy/{}#output/url".format(e.name)),
    })
    for e in environments()
])
"#;

fn work(package: &str, work: &str) -> Node {
    Node::Work {
        package: format!("g/-/{package}"),
        work: work.to_string(),
    }
}

fn names(nodes: &[&Node]) -> Vec<String> {
    nodes.iter().map(|n| n.to_string()).collect()
}

#[test]
fn a_frontend_reading_a_backend_output_comes_after_it() {
    let (_dir, ws) = workspace(&[
        ("repo.ocu.star", "repo_alias(\"g\")\n"),
        ("environments.ocu.star", ENVIRONMENTS),
        ("backend.ocu.star", BACKEND),
        ("frontend.ocu.star", FRONTEND),
    ]);
    ws.release_new("environments.ocu.star", false).unwrap();
    let graph = graph_of(&ws, &["frontend.ocu.star", "backend.ocu.star"]);

    assert_eq!(
        names(&graph.order().unwrap()),
        [
            "environment production",
            "g/-/backend.ocu.star deploy production",
            "g/-/frontend.ocu.star deploy production",
            "environment staging",
            "g/-/backend.ocu.star deploy staging",
            "g/-/frontend.ocu.star deploy staging",
        ]
    );
    let staging = work("backend.ocu.star", "deploy/staging");
    assert_eq!(
        names(&graph.dependants(&staging)),
        ["g/-/frontend.ocu.star deploy staging"]
    );
    assert_eq!(
        names(&graph.dependencies(&work("frontend.ocu.star", "deploy/staging"))),
        ["g/-/backend.ocu.star deploy staging", "environment staging"]
    );
    // What a new backend release at staging changes: itself, then the
    // frontend at staging; nothing in production.
    assert_eq!(
        names(&graph.downstream(std::slice::from_ref(&staging)).unwrap()),
        [
            "g/-/backend.ocu.star deploy staging",
            "g/-/frontend.ocu.star deploy staging"
        ]
    );
    // An environment's attributes changing reaches every deploy in it.
    let env = Node::Environment {
        name: "production".into(),
    };
    assert_eq!(
        names(&graph.downstream(&[env]).unwrap()),
        [
            "environment production",
            "g/-/backend.ocu.star deploy production",
            "g/-/frontend.ocu.star deploy production",
        ]
    );
    insta::assert_snapshot!("backend_frontend_mermaid", graph.to_mermaid());
    insta::assert_snapshot!("backend_frontend_dot", graph.to_dot());
}

#[test]
fn reading_its_own_previous_output_is_not_a_cycle() {
    let quick = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart");
    let read = |f: &str| std::fs::read_to_string(quick.join(f)).unwrap();
    let (_dir, ws) = workspace(&[
        ("repo.ocu.star", &read("repo.ocu.star")),
        ("environments.ocu.star", &read("environments.ocu.star")),
        ("release.ocu.star", &read("release.ocu.star")),
    ]);
    ws.release_new("environments.ocu.star", false).unwrap();
    // build reads ./@/call/build#output/build_number: its own last call.
    let graph = graph_of(&ws, &["release.ocu.star"]);
    assert!(graph.cycle().is_none());
    let order = names(&graph.order().unwrap());
    let pos = |s: &str| order.iter().position(|n| n == s).unwrap();
    assert!(
        pos("quickstart/-/release.ocu.star task build")
            < pos("quickstart/-/release.ocu.star deploy staging")
    );
    insta::assert_snapshot!("quickstart_mermaid", graph.to_mermaid());
}

#[test]
fn a_cycle_across_three_packages_names_all_three() {
    let reader = |next: &str| {
        format!(
            "def up(environment, x):\n    return done(outputs={{\"x\": 1}})\n\n\
             def down(environment):\n    return done()\n\n\
             e = [e for e in environments() if e.name == \"staging\"][0]\n\
             deploy(up=up, down=down, environment=e, inputs={{\n    \
             \"x\": input(ref=\"g/-/{next}.ocu.star/@/deploy/staging#output/x\", default=0),\n}})\n"
        )
    };
    let (_dir, ws) = workspace(&[
        ("repo.ocu.star", "repo_alias(\"g\")\n"),
        ("environments.ocu.star", ENVIRONMENTS),
        ("a.ocu.star", &reader("b")),
        ("b.ocu.star", &reader("c")),
        ("c.ocu.star", &reader("a")),
        ("d.ocu.star", &reader("a")),
    ]);
    ws.release_new("environments.ocu.star", false).unwrap();
    let graph = graph_of(
        &ws,
        &["a.ocu.star", "b.ocu.star", "c.ocu.star", "d.ocu.star"],
    );
    let error = graph.order().unwrap_err();
    assert_eq!(error.kind(), ocuroot_core::ErrorKind::Validation);
    assert_eq!(
        error.message(),
        "dependency cycle: g/-/a.ocu.star deploy staging -> g/-/c.ocu.star deploy staging \
         -> g/-/b.ocu.star deploy staging -> back to the first"
    );
    // Downstream of d alone there is no cycle; downstream of b there is.
    let d = work("d.ocu.star", "deploy/staging");
    assert_eq!(
        names(&graph.downstream(&[d]).unwrap()),
        ["g/-/d.ocu.star deploy staging"]
    );
    let b = work("b.ocu.star", "deploy/staging");
    assert!(
        graph
            .downstream(&[b])
            .unwrap_err()
            .message()
            .starts_with("dependency cycle: ")
    );
}

#[test]
fn a_cycle_is_found_among_other_paths() {
    // a -> b -> c -> d -> b, with a branch a -> e: the cycle is b c d.
    let n = |s: &str| Node::Custom {
        r#ref: format!("g/-/p.ocu.star/@/custom/{s}"),
    };
    let mut graph = DependencyGraph::new();
    for (from, to) in [
        ("a", "b"),
        ("b", "c"),
        ("c", "d"),
        ("d", "b"),
        ("a", "e"),
        ("e", "f"),
    ] {
        graph.add_dependency(n(from), n(to));
    }
    let cycle = graph.cycle().unwrap();
    assert_eq!(cycle, [&n("b"), &n("c"), &n("d")]);
    // Self-dependencies are ignored.
    let mut graph = DependencyGraph::new();
    graph.add_dependency(n("a"), n("a"));
    assert!(graph.cycle().is_none());
    assert_eq!(graph.order().unwrap().len(), 0);
}

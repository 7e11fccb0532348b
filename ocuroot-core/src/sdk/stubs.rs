//! The SDK as Starlark stubs, generated from the globals' declarations:
//! one `def` per function with its parameters, defaults and documentation,
//! in files as the original ships its SDK (`sdk/<version>/*.star`).

use starlark::environment::{Globals, GlobalsBuilder};

use super::SDK_VERSION;
use super::globals;

/// How the stubs are read, at the top of the set.
fn readme() -> String {
    let title = format!("# Ocuroot SDK {SDK_VERSION}");
    let declare = format!("ocuroot(\"{SDK_VERSION}\")");
    [
        title.as_str(),
        "",
        "These stubs list the globals a `*.ocu.star` file can use, with their",
        "parameters, defaults and documentation, generated from this build's SDK.",
        "The functions are built in: a file needs no `load()` for them.",
        "",
        "Every package file declares the SDK version it is written for first:",
        "",
        "```python",
        declare.as_str(),
        "```",
        "",
        "- `package.star`: releases (`task`, `deploy`, `phase`, `input`, `ref`),",
        "  results (`done`, `next`), environments and secrets.",
        "- `host.star`: the `host` namespace (`host.shell(...)`, `host.read_file(...)`);",
        "  the same functions are bare globals too (`shell`, `read`, `write`, ...).",
        "- `http.star`: the `http` namespace (`http.get(...)`, `http.post(...)`, ...).",
        "- `json.star`: the `json` namespace.",
        "- `repo.star`: `repo.ocu.star` only: the repository's alias, stores,",
        "  remotes and trigger.",
        "- `store.star`: the `store` namespace of `repo.ocu.star`.",
        "",
    ]
    .join("\n")
}

fn render(globals: Globals, namespace: Option<&str>) -> String {
    let mut docs = globals.documentation();
    // A module's own documentation is about its Rust code; each function's
    // is the reference.
    docs.docs = None;
    let code = docs.render_as_code();
    match namespace {
        Some(ns) => format!(
            "# The members of the `{ns}` namespace: call them as `{ns}.<name>(...)`.\n{code}"
        ),
        None => code.trim_start().to_string(),
    }
}

fn build(f: impl FnOnce(&mut GlobalsBuilder)) -> Globals {
    let mut builder = GlobalsBuilder::new();
    f(&mut builder);
    builder.build()
}

/// The SDK as Starlark stub files, `(file name, contents)` sorted by name:
/// `README.md`, then one `.star` file per group of globals (`package.star`,
/// `host.star`, `http.star`, `json.star`, `repo.star`, `store.star`). Each
/// function is a `def` with its parameters and defaults and a docstring,
/// generated from the declarations this build evaluates files with.
pub fn stubs() -> Vec<(&'static str, String)> {
    let mut files = vec![
        ("README.md", readme()),
        (
            "host.star",
            render(build(globals::host_members), Some("host")),
        ),
        (
            "http.star",
            render(build(globals::http_members), Some("http")),
        ),
        (
            "json.star",
            render(build(globals::json_members), Some("json")),
        ),
        (
            "package.star",
            render(build(globals::package_members), None),
        ),
        ("repo.star", render(build(globals::repo_members), None)),
        (
            "store.star",
            render(build(globals::store_members), Some("store")),
        ),
    ];
    files.sort_by_key(|(name, _)| *name);
    files
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_sdk_global_has_a_documented_stub() {
        let files = super::stubs();
        let names: Vec<&str> = files.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "README.md",
                "host.star",
                "http.star",
                "json.star",
                "package.star",
                "repo.star",
                "store.star"
            ]
        );
        let file = |name: &str| &files.iter().find(|(n, _)| *n == name).unwrap().1;
        for (name, def) in [
            ("package.star", "def task("),
            ("package.star", "def deploy("),
            ("package.star", "def phase("),
            ("package.star", "def done("),
            ("package.star", "def ocuroot("),
            ("host.star", "def shell("),
            ("http.star", "def post("),
            ("json.star", "def encode_indent("),
            ("repo.star", "def repo_alias("),
            ("store.star", "def git("),
        ] {
            assert!(
                file(name).contains(def),
                "{name} lacks {def}:\n{}",
                file(name)
            );
        }
        // Every def has a docstring: each `def` line is followed by `"""`.
        for (name, text) in &files {
            let lines: Vec<&str> = text.lines().collect();
            for (i, line) in lines.iter().enumerate() {
                if line.starts_with("def ") {
                    let rest = &lines[i..];
                    let body = rest.iter().position(|l| l.ends_with(':')).unwrap();
                    assert_eq!(
                        rest.get(body + 1).map(|l| l.trim()),
                        Some("\"\"\""),
                        "{name}: {line} has no docstring"
                    );
                }
            }
        }
    }
}

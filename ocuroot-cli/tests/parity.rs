//! Every operation in every layer, under one name: the README's table of
//! operations against the CLI's command tree (from the built binary's
//! help), `Workspace`'s and `WorkspaceBuilder`'s public methods, the C
//! header's functions and the Python `Workspace` class. A layer that lacks
//! an operation the table lists, or has one the table does not, fails here.
//! An option the CLI takes from the environment (`OCUROOT_RUN_LEASE`) must
//! be read where the workspace is opened.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Rust methods that are accessors or the CLI's ref helpers, not operations.
const RUST_ACCESSORS: &[&str] = &[
    "root",
    "name",
    "name_source",
    "name_note",
    "commit",
    "config",
    "state",
    "intent",
    "host",
    "environments",
    "next_release_id",
    "store_checkout",
    "cwd_ref",
    "resolve_user_ref",
    "package_ref",
    "package_file",
    "release_arg",
    "latest_release_here",
    "eval_options",
];

/// C functions that are plumbing (errors, memory, callback replies, the
/// options object's life), and former names.
const C_PLUMBING: &[&str] = &[
    "ocuroot_error_code",
    "ocuroot_error_column",
    "ocuroot_error_file",
    "ocuroot_error_free",
    "ocuroot_error_kind",
    "ocuroot_error_line",
    "ocuroot_error_message",
    "ocuroot_error_stack",
    "ocuroot_string_free",
    "ocuroot_shell_output_set_error",
    "ocuroot_shell_output_set_exit_code",
    "ocuroot_shell_output_write",
    "ocuroot_store_reply_add_key",
    "ocuroot_store_reply_set_error",
    "ocuroot_store_reply_set_value",
    "ocuroot_workspace_free",
    "ocuroot_workspace_options_free",
    "ocuroot_workspace_options_new",
    // The former name of ocuroot_release_lint, kept until 0.3.
    "ocuroot_lint",
];

/// Python members that are accessors, or former names kept for a while.
const PY_OTHER: &[&str] = &["root", "name", "commit", "lint", "on_event="];

struct Row {
    operation: String,
    cli: String,
    rust: Vec<String>,
    c: Vec<String>,
    python: Vec<String>,
}

/// The names in a cell: every `code span`, or nothing for a dash.
fn names(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

fn table() -> Vec<Row> {
    let readme = read("README.md");
    let marker = "<!-- operations-table: checked by ocuroot-cli/tests/parity.rs -->";
    let start = readme
        .find(marker)
        .expect("the README's operations table lost its marker");
    readme[start + marker.len()..]
        .trim_start()
        .lines()
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            assert_eq!(cells.len(), 5, "{line}");
            Row {
                operation: cells[0].to_string(),
                cli: cells[1].to_string(),
                rust: names(cells[2]),
                c: names(cells[3]),
                python: names(cells[4]),
            }
        })
        .collect()
}

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ocuroot"))
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    // A command that does not exist has no help: the checks below then
    // report it.
    if !out.status.success() {
        return String::new();
    }
    String::from_utf8(out.stdout).unwrap()
}

/// The subcommands a help text lists (without `help`).
fn subcommands(text: &str) -> Vec<String> {
    let Some(at) = text.find("Commands:") else {
        return Vec::new();
    };
    text[at..]
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

/// Whether a name in the CLI column is an environment variable
/// (`OCUROOT_RUN_LEASE`) rather than a command or a flag.
fn is_env_var(name: &str) -> bool {
    name.starts_with("OCUROOT_")
        && name
            .chars()
            .all(|c| c == '_' || c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// Whether the workspace's sources (which every layer opens through) read
/// the environment variable `name`.
fn workspace_reads(name: &str) -> bool {
    let quoted = format!("\"{name}\"");
    std::fs::read_dir(root().join("ocuroot-core/src/workspace"))
        .unwrap()
        .any(|entry| {
            std::fs::read_to_string(entry.unwrap().path()).is_ok_and(|text| text.contains(&quoted))
        })
}

/// Every leaf command of the CLI, as `"state match"`.
fn cli_leaves() -> BTreeSet<String> {
    let mut leaves = BTreeSet::new();
    for top in subcommands(&help(&[])) {
        let below = subcommands(&help(&[&top]));
        if below.is_empty() {
            leaves.insert(top.clone());
        }
        for sub in below {
            leaves.insert(format!("{top} {sub}"));
        }
    }
    leaves
}

/// The public methods of `impl <ty>` blocks in `files`, without deprecated ones.
fn rust_methods(ty: &str, files: &[PathBuf]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(file).unwrap();
        let mut inside = false;
        let mut deprecated = false;
        for line in text.lines() {
            if line.starts_with(&format!("impl {ty} {{")) {
                inside = true;
            } else if line == "}" {
                inside = false;
            } else if inside {
                let l = line.trim();
                if l.starts_with("#[deprecated") {
                    deprecated = true;
                } else if let Some(rest) = l.strip_prefix("pub fn ") {
                    let name: String = rest
                        .chars()
                        .take_while(|c| *c == '_' || c.is_alphanumeric())
                        .collect();
                    if !deprecated {
                        out.insert(name);
                    }
                    deprecated = false;
                }
            }
        }
    }
    out
}

fn c_functions() -> BTreeSet<String> {
    let header = read("include/ocuroot.h");
    let mut out = BTreeSet::new();
    for line in header
        .lines()
        .filter(|l| !l.starts_with(' ') && !l.starts_with('/'))
    {
        for (at, _) in line.match_indices("ocuroot_") {
            let name: String = line[at..]
                .chars()
                .take_while(|c| *c == '_' || c.is_alphanumeric())
                .collect();
            if line[at + name.len()..].starts_with('(') {
                out.insert(name);
                break;
            }
        }
    }
    out
}

/// The Python class's public methods and properties, and its keyword
/// arguments as `name=`.
fn python_members() -> BTreeSet<String> {
    let text = read("ocuroot-py/python/ocuroot/_workspace.py");
    let class = &text[text.find("class Workspace:").unwrap()..];
    let class = &class[..class[1..].find("\nclass ").map_or(class.len(), |i| i + 1)];
    let class = &class[..class.find("\ndef ").unwrap_or(class.len())];
    let mut out = BTreeSet::new();
    for line in class.lines() {
        if let Some(rest) = line.strip_prefix("    def ") {
            let name: String = rest
                .chars()
                .take_while(|c| *c == '_' || c.is_alphanumeric())
                .collect();
            if !name.starts_with('_') {
                out.insert(name);
            }
        }
    }
    let init = &class[class.find("def __init__(").unwrap()..];
    let init = &init[..init.find(") -> None").unwrap()];
    for line in init.lines().skip(1) {
        let l = line.trim();
        if let Some((name, _)) = l.split_once(':')
            && name != "path"
            && !name.starts_with('*')
            && !name.is_empty()
        {
            out.insert(format!("{name}="));
        }
    }
    out
}

fn check(
    layer: &str,
    found: &BTreeSet<String>,
    listed: &BTreeSet<String>,
    other: &[&str],
) -> Vec<String> {
    let mut problems = Vec::new();
    for name in found {
        if !listed.contains(name) && !other.contains(&name.as_str()) {
            problems.push(format!("{layer} has {name}, which the table does not list"));
        }
    }
    for name in listed {
        if !found.contains(name) {
            problems.push(format!(
                "the table lists {name} for {layer}, which it does not have"
            ));
        }
    }
    problems
}

#[test]
fn every_layer_has_every_operation_under_the_tables_name() {
    let rows = table();
    assert!(rows.len() > 20, "the table has {} rows", rows.len());
    let mut problems = Vec::new();

    // A dash only where the README says why.
    let gaps: Vec<String> = rows
        .iter()
        .flat_map(|r| {
            let mut g = Vec::new();
            if r.rust.is_empty() {
                g.push(format!("{}: Rust", r.operation));
            }
            if r.c.is_empty() {
                g.push(format!("{}: C", r.operation));
            }
            if r.python.is_empty() {
                g.push(format!("{}: Python", r.operation));
            }
            if r.cli == "—" {
                g.push(format!("{}: CLI", r.operation));
            }
            g
        })
        .collect();
    let allowed = [
        "evaluate Starlark at a prompt: C",
        "evaluate Starlark at a prompt: Python",
        "version: Rust",
        "option: run shell commands: CLI",
        "option: the store (state and intent): CLI",
        "option: a separate intent store: CLI",
        // Each command opens the stores afresh.
        "read the stores afresh (every command of the CLI starts afresh): CLI",
        "option: limits: C",
        "option: limits: Python",
        // The pages are the CLI's presentation of the operations above; a
        // program embedding the library reads the same data through them.
        "serve the state as web pages (built from the operations above): Rust",
        "serve the state as web pages (built from the operations above): C",
        "serve the state as web pages (built from the operations above): Python",
        // Likewise the preview page and the MCP server.
        "preview a package file as a web page (built from release lint): Rust",
        "preview a package file as a web page (built from release lint): C",
        "preview a package file as a web page (built from release lint): Python",
        "serve the operations above to an assistant over the Model Context Protocol: Rust",
        "serve the operations above to an assistant over the Model Context Protocol: C",
        "serve the operations above to an assistant over the Model Context Protocol: Python",
    ];
    for g in &gaps {
        if !allowed.contains(&g.as_str()) {
            problems.push(format!("{g} is missing"));
        }
    }

    // The CLI: every leaf command has a row, every command and flag a row
    // names exists.
    let leaves = cli_leaves();
    let mut named = BTreeSet::new();
    for r in &rows {
        for cell in names(&r.cli) {
            if is_env_var(&cell) {
                if !workspace_reads(&cell) {
                    problems.push(format!(
                        "{}: the workspace does not read the environment variable {cell}",
                        r.operation
                    ));
                }
                continue;
            }
            let words: Vec<&str> = cell.split_whitespace().collect();
            let command: Vec<&str> = words
                .iter()
                .copied()
                .take_while(|w| !w.starts_with("--"))
                .collect();
            let flags: Vec<&str> = words
                .iter()
                .copied()
                .filter(|w| w.starts_with("--"))
                .collect();
            let help_of = if command.is_empty() {
                vec!["release", "new"]
            } else {
                command.clone()
            };
            let text = help(&help_of);
            for flag in flags {
                if !text.contains(flag) {
                    problems.push(format!(
                        "{}: `ocuroot {}` has no {flag}",
                        r.operation,
                        help_of.join(" ")
                    ));
                }
            }
            if !command.is_empty() {
                named.insert(command.join(" "));
            }
        }
    }
    for leaf in &leaves {
        if !named.contains(leaf) {
            problems.push(format!(
                "the CLI has `{leaf}`, which the table does not list"
            ));
        }
    }
    for n in &named {
        if !leaves.contains(n) {
            problems.push(format!(
                "the table lists `{n}` for the CLI, which it does not have"
            ));
        }
    }

    // Rust: Workspace's and WorkspaceBuilder's methods.
    let mut files = Vec::new();
    for entry in std::fs::read_dir(root().join("ocuroot-core/src/workspace")).unwrap() {
        files.push(entry.unwrap().path());
    }
    let mut rust = rust_methods("Workspace", &files);
    rust.extend(rust_methods("WorkspaceBuilder", &files));
    let listed: BTreeSet<String> = rows.iter().flat_map(|r| r.rust.clone()).collect();
    problems.extend(check("Rust", &rust, &listed, RUST_ACCESSORS));

    // C: the header's functions.
    let listed: BTreeSet<String> = rows.iter().flat_map(|r| r.c.clone()).collect();
    problems.extend(check("C", &c_functions(), &listed, C_PLUMBING));

    // Python: the class's members and keywords (`Workspace(path)` is the
    // constructor, `ocuroot.__version__` a module attribute).
    let init = read("ocuroot-py/python/ocuroot/__init__.py");
    assert!(init.contains("__version__"), "ocuroot has no __version__");
    let listed: BTreeSet<String> = rows
        .iter()
        .flat_map(|r| r.python.clone())
        .filter(|n| n != "Workspace(path)" && n != "ocuroot.__version__")
        .collect();
    problems.extend(check("Python", &python_members(), &listed, PY_OTHER));

    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn environment_variables_are_told_from_commands_and_flags() {
    assert!(is_env_var("OCUROOT_RUN_LEASE"));
    assert!(workspace_reads("OCUROOT_RUN_LEASE"));
    assert!(!workspace_reads("OCUROOT_NO_SUCH_VARIABLE"));
    for other in ["release retry", "--max-attempts", "push", "OCUROOT run"] {
        assert!(!is_env_var(other), "{other}");
    }
}

#[test]
fn the_checker_sees_a_missing_operation() {
    let found: BTreeSet<String> = ["a", "b"].map(String::from).into();
    let listed: BTreeSet<String> = ["a", "c"].map(String::from).into();
    assert_eq!(
        check("X", &found, &listed, &[]),
        [
            "X has b, which the table does not list",
            "the table lists c for X, which it does not have"
        ]
    );
}

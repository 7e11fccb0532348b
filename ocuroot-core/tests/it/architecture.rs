//! The house rules, checked over the source text (ARCHITECTURE.md):
//!
//! - the modules of `ocuroot-core` import in one direction: in every module
//!   with submodules (the crate root, `engine`, `store`, `store::fs`, ...),
//!   the imports between its submodules form no circle;
//! - only `sdk/` imports `starlark`, only `host/` starts processes;
//! - the CLI and the bindings go through `Workspace` and `model`, never
//!   `ocuroot_core::engine`;
//! - no source file is longer than 800 lines.
//!
//! A module's imports are the `crate::`, `super::` and `self::` paths in its
//! code (comments left out), resolved to the module they name; a path that
//! names an item a parent module re-exports (`pub use x::{Item}`) counts as
//! an import of the submodule it comes from. A parent importing its own
//! submodules (declaring and re-exporting them) is not an edge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use petgraph::algo::tarjan_scc;
use petgraph::graph::DiGraph;

/// A module path from the crate root: `["engine", "work"]`.
type ModPath = Vec<String>;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The module a file under `src/` defines.
fn module_of(src: &Path, file: &Path) -> ModPath {
    let rel = file.strip_prefix(src).unwrap();
    let mut parts: ModPath = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    match last.as_str() {
        "lib.rs" | "main.rs" | "mod.rs" => {}
        name => parts.push(name.trim_end_matches(".rs").to_string()),
    }
    parts
}

/// The code of a file without comments (line comments, doc comments and
/// block comments) and without the contents of string literals.
fn code_of(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            b'r' if (i == 0 || !is_ident(b[i - 1] as char))
                && raw_hashes(&b[i + 1..]).is_some() =>
            {
                // A raw string: r"...", r#"..."#.
                let hashes = raw_hashes(&b[i + 1..]).unwrap();
                let close: Vec<u8> = std::iter::once(b'"')
                    .chain(std::iter::repeat_n(b'#', hashes))
                    .collect();
                i += 2 + hashes;
                while i < b.len() && !b[i..].starts_with(&close) {
                    i += 1;
                }
                i += close.len();
                out.push_str("\"\"");
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
                out.push_str("\"\"");
            }
            b'\'' if b.get(i + 1) == Some(&b'\\') => {
                // An escaped char literal such as '\'' or '\n'.
                i += 3;
                while i < b.len() && b[i] != b'\'' {
                    i += 1;
                }
                i += 1;
            }
            b'\'' if b.get(i + 2) == Some(&b'\'') => {
                // A char literal such as '"' or '/'.
                i += 3;
            }
            c => {
                out.push(c as char);
                i += 1;
            }
        }
    }
    out
}

/// The number of `#` of a raw string starting after its `r`, if one does.
fn raw_hashes(b: &[u8]) -> Option<usize> {
    let n = b.iter().take_while(|c| **c == b'#').count();
    (b.get(n) == Some(&b'"')).then_some(n)
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Every path starting with `crate::`, `super::` or `self::`, with `use`
/// groups expanded: `crate::a::{b, c::d}` gives `crate::a::b` and
/// `crate::a::c::d`.
fn paths_in(code: &str) -> Vec<Vec<String>> {
    let chars: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let boundary = i == 0 || !(is_ident(chars[i - 1]) || chars[i - 1] == ':');
        if boundary {
            for start in ["crate::", "super::", "self::"] {
                let s: Vec<char> = start.chars().collect();
                if chars[i..].starts_with(&s) {
                    let (mut paths, end) = parse_path(&chars, i);
                    out.append(&mut paths);
                    i = end.max(i + 1) - 1;
                    break;
                }
            }
        }
        i += 1;
    }
    out
}

/// Parse the path at `chars[i..]`; returns the expanded paths and where
/// it ends.
fn parse_path(chars: &[char], mut i: usize) -> (Vec<Vec<String>>, usize) {
    let mut prefix: Vec<String> = Vec::new();
    loop {
        let start = i;
        while i < chars.len() && is_ident(chars[i]) {
            i += 1;
        }
        if i > start {
            prefix.push(chars[start..i].iter().collect());
        }
        let ws = |mut j: usize| {
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            j
        };
        let j = ws(i);
        if chars[j..].starts_with(&[':', ':']) {
            i = ws(j + 2);
            if chars.get(i) == Some(&'{') {
                let mut out = Vec::new();
                i += 1;
                loop {
                    i = ws(i);
                    match chars.get(i) {
                        None => return (out, i),
                        Some('}') => return (out, i + 1),
                        Some(',') => i += 1,
                        Some(_) => {
                            let (inner, end) = parse_path(chars, i);
                            for p in inner {
                                let mut full = prefix.clone();
                                full.extend(p);
                                out.push(full);
                            }
                            // `name as alias`: skip to the next `,` or `}`.
                            i = end;
                            while i < chars.len() && chars[i] != ',' && chars[i] != '}' {
                                i += 1;
                            }
                        }
                    }
                }
            }
            continue;
        }
        return (vec![prefix], i);
    }
}

/// The crate's modules, their files' imports and their re-exports.
struct Crate {
    /// Every module.
    modules: BTreeSet<ModPath>,
    /// What each module's code imports (raw paths).
    imports: BTreeMap<ModPath, Vec<Vec<String>>>,
    /// `pub use child::{Name}` in a module: name -> the child it comes from.
    reexports: BTreeMap<ModPath, BTreeMap<String, String>>,
}

impl Crate {
    fn read(src: &Path) -> Crate {
        let mut files = Vec::new();
        rust_files(src, &mut files);
        let mut krate = Crate {
            modules: BTreeSet::new(),
            imports: BTreeMap::new(),
            reexports: BTreeMap::new(),
        };
        for file in &files {
            let module = module_of(src, file);
            let code = code_of(&std::fs::read_to_string(file).unwrap());
            for line in code.lines() {
                let line = line.trim();
                let Some(rest) = line
                    .strip_prefix("pub use ")
                    .or_else(|| line.strip_prefix("pub(crate) use "))
                else {
                    continue;
                };
                let chars: Vec<char> = rest.chars().collect();
                for p in parse_path(&chars, 0).0 {
                    if let [child, .., name] = p.as_slice() {
                        krate
                            .reexports
                            .entry(module.clone())
                            .or_default()
                            .insert(name.clone(), child.clone());
                    }
                }
            }
            krate.imports.insert(module.clone(), paths_in(&code));
            krate.modules.insert(module);
        }
        krate
    }

    /// The module a path seen in `from` names (the longest module prefix),
    /// and the item after it, if any.
    fn resolve(&self, from: &ModPath, path: &[String]) -> Option<(ModPath, Option<String>)> {
        let (mut base, rest): (ModPath, &[String]) = match path.first()?.as_str() {
            "crate" => (Vec::new(), &path[1..]),
            "self" => (from.clone(), &path[1..]),
            "super" => {
                let mut base = from.clone();
                let mut rest = path;
                while rest.first().is_some_and(|s| s == "super") {
                    base.pop();
                    rest = &rest[1..];
                }
                (base, rest)
            }
            _ => return None,
        };
        let mut item = None;
        for seg in rest {
            let mut next = base.clone();
            next.push(seg.clone());
            if self.modules.contains(&next) {
                base = next;
            } else {
                item = Some(seg.clone());
                break;
            }
        }
        // An item a module re-exports from one of its submodules.
        if let Some(name) = &item
            && let Some(child) = self.reexports.get(&base).and_then(|r| r.get(name))
        {
            let mut next = base.clone();
            next.push(child.clone());
            if self.modules.contains(&next) {
                return Some((next, None));
            }
        }
        Some((base, item))
    }

    /// The circles among the submodules of every module: each is the list
    /// of sibling modules on it, with the imports that tie them.
    fn circles(&self) -> Vec<String> {
        let mut found = Vec::new();
        for parent in &self.modules {
            let children: BTreeSet<&String> = self
                .modules
                .iter()
                .filter(|m| m.len() == parent.len() + 1 && m.starts_with(parent))
                .map(|m| &m[parent.len()])
                .collect();
            if children.len() < 2 {
                continue;
            }
            let mut graph = DiGraph::<&String, ()>::new();
            let index: BTreeMap<&String, _> =
                children.iter().map(|c| (*c, graph.add_node(*c))).collect();
            let mut why: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
            for (module, paths) in &self.imports {
                if module.len() <= parent.len() || !module.starts_with(parent) {
                    continue;
                }
                let from = &module[parent.len()];
                for p in paths {
                    let Some((target, _)) = self.resolve(module, p) else {
                        continue;
                    };
                    if target.len() <= parent.len() || !target.starts_with(parent) {
                        continue;
                    }
                    let to = &target[parent.len()];
                    if to == from {
                        continue;
                    }
                    let key = (from.clone(), to.clone());
                    if !why.contains_key(&key) {
                        graph.add_edge(index[from], index[to], ());
                    }
                    why.entry(key).or_default().insert(p.join("::"));
                }
            }
            for scc in tarjan_scc(&graph) {
                if scc.len() < 2 {
                    continue;
                }
                let members: BTreeSet<&String> = scc.iter().map(|n| graph[*n]).collect();
                let on = |m: &String| members.contains(m);
                let mut text = format!("in {}: {:?}", display(parent), members);
                for ((a, b), paths) in &why {
                    if on(a) && on(b) {
                        text.push_str(&format!("\n  {a} -> {b}: {paths:?}"));
                    }
                }
                found.push(text);
            }
        }
        found
    }
}

fn display(m: &ModPath) -> String {
    if m.is_empty() {
        "the crate root".to_string()
    } else {
        m.join("::")
    }
}

#[test]
fn the_modules_of_the_core_import_in_one_direction() {
    let krate = Crate::read(&workspace_root().join("ocuroot-core/src"));
    assert!(krate.modules.len() > 40, "the crate was not read");
    let circles = krate.circles();
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}

#[test]
fn the_checker_finds_a_circle() {
    // Two siblings importing each other, one through its parent's
    // re-export, and a third on the side.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("engine")).unwrap();
    std::fs::write(src.join("lib.rs"), "mod engine;\nmod model;\n").unwrap();
    std::fs::write(
        src.join("model.rs"),
        "// crate::engine::a is only a comment\n",
    )
    .unwrap();
    std::fs::write(
        src.join("engine/mod.rs"),
        "mod a;\nmod b;\nmod c;\npub(crate) use b::Thing;\n",
    )
    .unwrap();
    std::fs::write(src.join("engine/a.rs"), "use super::Thing;\n").unwrap();
    std::fs::write(
        src.join("engine/b.rs"),
        "use crate::{model, engine::{a::f, c}};\n",
    )
    .unwrap();
    std::fs::write(
        src.join("engine/c.rs"),
        "fn g() { let s = \"crate::engine::a\"; let q = '\\''; }\n\
         const R: &str = r#\"say \"crate::engine::a\" \"#;\n",
    )
    .unwrap();
    let krate = Crate::read(src);
    let circles = krate.circles();
    assert_eq!(circles.len(), 1, "{circles:?}");
    assert!(
        circles[0].starts_with("in engine: {\"a\", \"b\"}"),
        "{}",
        circles[0]
    );
    assert!(
        circles[0].contains("a -> b: {\"super::Thing\"}"),
        "{}",
        circles[0]
    );
    assert!(
        circles[0].contains("b -> a: {\"crate::engine::a::f\"}"),
        "{}",
        circles[0]
    );
}

/// The non-test source files of every crate of the workspace.
fn sources() -> Vec<PathBuf> {
    let root = workspace_root();
    let mut files = Vec::new();
    for krate in ["ocuroot-core", "ocuroot-cli", "ocuroot-ffi", "ocuroot-py"] {
        rust_files(&root.join(krate).join("src"), &mut files);
    }
    files
}

#[test]
fn no_source_file_is_longer_than_800_lines() {
    let long: Vec<String> = sources()
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).unwrap().lines().count();
            (n > 800).then(|| format!("{}: {n} lines", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "split these by idea: {long:?}");
}

#[test]
fn only_sdk_imports_starlark_and_only_host_starts_processes() {
    let src = workspace_root().join("ocuroot-core/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    for file in files {
        let rel = file
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let code = code_of(&std::fs::read_to_string(&file).unwrap());
        if !rel.starts_with("sdk/") {
            assert!(!code.contains("starlark::"), "{rel} uses starlark");
        }
        if !rel.starts_with("host/") {
            for needle in ["process::Command", "Command::new", "process::Stdio"] {
                assert!(!code.contains(needle), "{rel} starts processes ({needle})");
            }
        }
    }
}

#[test]
fn the_cli_and_the_bindings_go_through_the_workspace() {
    for file in sources() {
        if file.starts_with(workspace_root().join("ocuroot-core")) {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(&file).unwrap());
        assert!(
            !code.contains("ocuroot_core::engine"),
            "{} reaches into the engine",
            file.display()
        );
    }
}

/// Messages of the core name operations, never the CLI's spelling of them:
/// no `ocuroot <command>` and no `--flag` inside a string literal outside
/// comments (a binding's user has neither). The CLI adds its own hints.
#[test]
fn the_core_speaks_of_operations_not_cli_commands() {
    let src = workspace_root().join("ocuroot-core/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let commands = ["release", "state", "work", "push", "plan", "repl"];
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            // The string literals of the line (good enough for one line).
            for (i, literal) in code.split('"').enumerate() {
                if i % 2 == 0 {
                    continue;
                }
                let cli = commands
                    .iter()
                    .any(|c| literal.contains(&format!("ocuroot {c}")));
                let flag = literal.split_whitespace().any(|w| {
                    w.trim_start_matches('`').starts_with("--")
                        && w.trim_start_matches(['`', '-'])
                            .starts_with(char::is_alphabetic)
                });
                if cli || flag {
                    found.push(format!("{}:{}: {literal}", file.display(), n + 1));
                }
            }
        }
    }
    // Commands the engine runs itself are not messages.
    found.retain(|f| !f.contains("git clone --quiet"));
    assert!(found.is_empty(), "CLI wording in core messages: {found:#?}");
}

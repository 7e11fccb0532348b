//! Write seed inputs into `fuzz/corpus/<target>/` (or the directory given
//! as the first argument), from the project's own examples and tests and
//! from real store logs. Minimise afterwards with `cargo fuzz cmin`; see
//! fuzz/README.md.
//!
//! - `refs`: the string literals of the ref tests, the refs quoted in the
//!   ref module's docs and the `ref="..."` of the examples; pairs
//!   `<ref>\n<base>` for resolution and joins;
//! - `glob`: the patterns of the glob tests, with their candidates;
//! - `package`: `examples/**/*.ocu.star`, the example of
//!   `shared/seed/releases.md` (if there), and the Starlark snippets of the
//!   SDK tests;
//! - `fslog`: logs of stores built with the public API, as each mode of
//!   the target reads them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ocuroot_core::store::{Expect, FsStore, Op, Store};
use ocuroot_fuzz::{FslogMode, RECORD_SEPARATOR};

fn main() {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = fuzz.parent().unwrap().to_path_buf();
    let out = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| fuzz.join("corpus"));
    let core = root.join("ocuroot-core");

    write(&out, "refs", ref_seeds(&root, &core));
    write(&out, "glob", glob_seeds(&core));
    write(&out, "package", package_seeds(&root, &core));
    write(&out, "fslog", fslog_seeds());
}

/// Write each seed as `seed-<n>` (content-named files from earlier runs and
/// from `cmin` are left alone).
fn write(out: &Path, target: &str, seeds: BTreeSet<Vec<u8>>) {
    let dir = out.join(target);
    std::fs::create_dir_all(&dir).unwrap();
    for (i, s) in seeds.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i:04}")), s).unwrap();
    }
    eprintln!("seeds: {} into {}", seeds.len(), dir.display());
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Files under `dir` whose name ends with `suffix`.
fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_ending(&p, suffix));
        } else if p.to_string_lossy().ends_with(suffix) {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// The string literals of Rust source, per line of their start: plain
/// (escapes resolved) and raw; comments skipped.
fn literals(src: &str) -> Vec<(usize, String)> {
    let b: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    while i < b.len() {
        let c = b[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c == '/' && b.get(i + 1) == Some(&'/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '\'' {
            // A char literal ('"', '\'', '\n'), or a lifetime.
            if b.get(i + 1) == Some(&'\\') {
                let mut j = i + 2;
                while j < b.len() && b[j] != '\'' && j < i + 12 {
                    j += 1;
                }
                i = j + 1;
            } else if b.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
            }
        } else if c == 'r'
            && (b.get(i + 1) == Some(&'"') || b.get(i + 1) == Some(&'#'))
            && (i == 0 || !b[i - 1].is_alphanumeric() && b[i - 1] != '_')
        {
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                i += 1;
                continue;
            }
            let start = j + 1;
            let mut k = start;
            let end = loop {
                if k >= b.len() {
                    break b.len();
                }
                if b[k] == '"' && (1..=hashes).all(|h| b.get(k + h) == Some(&'#')) {
                    break k;
                }
                k += 1;
            };
            let text: String = b[start..end].iter().collect();
            out.push((line, text.clone()));
            line += text.matches('\n').count();
            i = end + 1 + hashes;
        } else if c == '"' {
            let start_line = line;
            let mut s = String::new();
            let mut j = i + 1;
            while j < b.len() && b[j] != '"' {
                if b[j] == '\n' {
                    line += 1;
                }
                if b[j] == '\\' && j + 1 < b.len() {
                    j += 1;
                    match b[j] {
                        'n' => s.push('\n'),
                        't' => s.push('\t'),
                        'r' => s.push('\r'),
                        '0' => s.push('\0'),
                        '\\' => s.push('\\'),
                        '"' => s.push('"'),
                        '\'' => s.push('\''),
                        '\n' => {
                            line += 1;
                            while j + 1 < b.len() && b[j + 1].is_whitespace() {
                                if b[j + 1] == '\n' {
                                    line += 1;
                                }
                                j += 1;
                            }
                        }
                        'x' => {
                            let hex: String = b[j + 1..(j + 3).min(b.len())].iter().collect();
                            if let Ok(v) = u8::from_str_radix(&hex, 16) {
                                s.push(char::from(v));
                            }
                            j += 2;
                        }
                        'u' => {
                            let close = (j..b.len()).find(|&k| b[k] == '}').unwrap_or(j);
                            let hex: String = b[(j + 2).min(close)..close].iter().collect();
                            if let Some(ch) =
                                u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32)
                            {
                                s.push(ch);
                            }
                            j = close;
                        }
                        other => s.push(other),
                    }
                } else {
                    s.push(b[j]);
                }
                j += 1;
            }
            out.push((start_line, s));
            i = j + 1;
        } else {
            i += 1;
        }
    }
    out
}

/// The spans in backticks of the doc comments of `src`.
fn doc_code_spans(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    for l in src.lines() {
        let t = l.trim_start();
        if !(t.starts_with("//!") || t.starts_with("///")) {
            continue;
        }
        let parts: Vec<&str> = t.split('`').collect();
        for (i, p) in parts.iter().enumerate() {
            if i % 2 == 1 && !p.is_empty() {
                out.push(p.to_string());
            }
        }
    }
    out
}

fn ref_seeds(root: &Path, core: &Path) -> BTreeSet<Vec<u8>> {
    let mut refs = BTreeSet::new();
    for f in [
        core.join("tests/it/refs.rs"),
        core.join("src/refs/mod.rs"),
        core.join("src/refs/parse.rs"),
    ] {
        let src = read(&f);
        refs.extend(literals(&src).into_iter().map(|(_, s)| s));
        refs.extend(doc_code_spans(&src));
    }
    for f in files_ending(&root.join("examples"), ".ocu.star") {
        let src = read(&f);
        for part in src.split("ref=\"").skip(1) {
            if let Some(end) = part.find('"') {
                refs.insert(part[..end].to_string());
            }
        }
    }
    refs.retain(|s| !s.contains('\n') && s.len() <= 1100 && !s.contains("{}"));
    let mut seeds: BTreeSet<Vec<u8>> = refs.iter().map(|s| s.as_bytes().to_vec()).collect();
    let bases = [
        "github.com/org/repo/-/backend/pkg.ocu.star/@r3",
        "repo/-/release.ocu.star/@/task/build",
        ".",
    ];
    for r in [
        "./@/deploy/staging#output/url",
        "//other/pkg.ocu.star",
        "pkg.ocu.star",
        "./task/build",
        "./@./task/x",
    ] {
        for b in bases {
            seeds.insert(format!("{r}\n{b}").into_bytes());
        }
    }
    for (r, join) in [
        ("repo/-/pkg.ocu.star/@r1/task/build/1", "status/pending"),
        ("repo/-/pkg.ocu.star/@r1/deploy", "prod"),
        ("repo/-/pkg.ocu.star/@r1/task/build/1", "x//y"),
    ] {
        seeds.insert(format!("{r}\n{join}").into_bytes());
    }
    seeds
}

fn glob_seeds(core: &Path) -> BTreeSet<Vec<u8>> {
    let mut seeds = BTreeSet::new();
    let src = read(&core.join("src/refs/glob.rs"));
    let lits = literals(&src);
    // Literals on one line: a pattern and the candidates it is tried on.
    let mut by_line: std::collections::BTreeMap<usize, Vec<String>> = Default::default();
    for (line, s) in lits {
        by_line.entry(line).or_default().push(s);
    }
    for (_, group) in by_line {
        seeds.insert(group.join("\n").into_bytes());
        for s in group {
            seeds.insert(s.into_bytes());
        }
    }
    // Glob patterns of the other tests, on some real keys.
    let keys = [
        "github.com/o/r/-/pkg.ocu.star/@r1/deploy/prod/2/status/paused",
        "repo/-/app.ocu.star/@r1/task/build",
        "@/environment/prod",
        "a/b/c",
    ];
    for f in rust_files(&core.join("tests")) {
        for (_, s) in literals(&read(&f)) {
            if s.contains('*') && !s.contains(' ') && !s.contains('\n') && s.len() < 200 {
                seeds.insert(format!("{s}\n{}", keys.join("\n")).into_bytes());
            }
        }
    }
    seeds
}

fn package_seeds(root: &Path, core: &Path) -> BTreeSet<Vec<u8>> {
    let mut seeds = BTreeSet::new();
    for f in files_ending(&root.join("examples"), ".ocu.star") {
        seeds.insert(read(&f).into_bytes());
    }
    // The example of the "Releases" page, as written there.
    for seed in [
        root.join("../shared/seed/releases.md"),
        PathBuf::from("/work/shared/seed/releases.md"),
    ] {
        let md = read(&seed);
        if let Some(start) = md.find("```python\n") {
            let body = &md[start + 10..];
            if let Some(end) = body.find("```") {
                seeds.insert(body.as_bytes()[..end].to_vec());
                break;
            }
        }
    }
    for f in rust_files(&core.join("tests/it/sdk")) {
        for (_, s) in literals(&read(&f)) {
            let starlarkish = s.contains('(') || s.contains(" = ") || s.contains("def ");
            if s.len() >= 8 && starlarkish && !s.starts_with("kind:") {
                seeds.insert(s.into_bytes());
            }
        }
    }
    seeds
}

/// The records' payloads of a log (after its 64-byte header).
fn payloads(log: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = 64;
    while at + 8 <= log.len() {
        let len = u32::from_le_bytes(log[at..at + 4].try_into().unwrap()) as usize;
        let Some(p) = log.get(at + 8..at + 8 + len) else {
            break;
        };
        out.push(p.to_vec());
        at += 8 + len;
    }
    out
}

/// Logs of real stores: each scenario's batches committed with the public
/// API, then the `.wal` read back.
fn real_logs() -> Vec<Vec<u8>> {
    let put = |k: &str, v: &[u8]| Op::put(k, v.to_vec(), Expect::Any);
    let del = |k: &str| Op::delete(k, Expect::Any);
    let k1 = "github.com/org/repo/-/pkg.ocu.star/@r1/deploy/staging";
    let k2 = "github.com/org/repo/-/pkg.ocu.star/@r1/task/build/1/status/complete";
    let k3 = "@/environment/prod";
    let scenarios: Vec<(Vec<Vec<Op>>, bool)> = vec![
        (vec![vec![put("a/b", b"1")]], false),
        (
            vec![
                vec![
                    put(k1, b"{\"kind\":\"ref\",\"body\":1}"),
                    put(k3, b"{\"attributes\":{}}"),
                ],
                vec![put(k2, b"{}"), del(k1)],
                vec![put("x/@y", &[0, 159, 146, 150, 255])],
            ],
            false,
        ),
        (
            vec![
                vec![put("a/b", b"1"), put("a/c", b"2")],
                vec![del("a/b")],
                vec![put("a/b", b"3"), put("z", b"")],
            ],
            true,
        ),
    ];
    let mut logs = Vec::new();
    for (batches, checkpoint_first) in scenarios {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::builder(dir.path(), "state")
            .fsync(false)
            .open()
            .unwrap();
        for (i, b) in batches.iter().enumerate() {
            store.commit(b).unwrap();
            if checkpoint_first && i == 0 {
                store.checkpoint().unwrap();
            }
        }
        drop(store);
        logs.push(std::fs::read(dir.path().join(".wal")).unwrap());
    }
    logs
}

fn fslog_seeds() -> BTreeSet<Vec<u8>> {
    let mut seeds = BTreeSet::new();
    let with = |mode: u8, body: &[u8]| {
        let mut s = vec![mode];
        s.extend_from_slice(body);
        s
    };
    for log in real_logs() {
        let records = &log[64.min(log.len())..];
        let framed = payloads(&log).join(&RECORD_SEPARATOR);
        seeds.insert(with(FslogMode::RAW, &log));
        seeds.insert(with(FslogMode::RAW | FslogMode::FILE, &log));
        seeds.insert(with(FslogMode::HEADER | FslogMode::THIS_BOOT, records));
        seeds.insert(with(FslogMode::HEADER, records));
        seeds.insert(with(FslogMode::FRAMED | FslogMode::THIS_BOOT, &framed));
        seeds.insert(with(FslogMode::FRAMED, &framed));
        seeds.insert(with(FslogMode::FRAMED | FslogMode::DAMAGE, &framed));
        seeds.insert(with(
            FslogMode::FRAMED | FslogMode::THIS_BOOT | FslogMode::DAMAGE,
            &framed,
        ));
        seeds.insert(with(FslogMode::FRAMED_V1 | FslogMode::FILE, &framed));
        seeds.insert(with(
            FslogMode::FRAMED | FslogMode::THIS_BOOT | FslogMode::FILE | FslogMode::CHECKPOINT_MARK,
            &framed,
        ));
        for delta in [-5i16, 100] {
            let mut body = delta.to_le_bytes().to_vec();
            body.extend_from_slice(&framed);
            seeds.insert(with(
                FslogMode::FRAMED | FslogMode::END_DELTA | FslogMode::THIS_BOOT,
                &body,
            ));
        }
    }
    seeds
}

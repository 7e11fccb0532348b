//! Bad input of every kind must fail cleanly: a data-driven corpus under
//! `tests/bad-input/<group>/<name>.json`, one case per file, run by
//! [`bad_input_corpus`], plus the positive tests at the limits.
//!
//! Every case gets a fresh git repository holding a `repo.ocu.star`
//! (`repo_alias("t")`, the default store `.ocuroot/store/{state,intent}`) and
//! `ok.ocu.star` (one task, `build`), then the case's own files, committed.
//! Its setup commands must succeed, its hand edits (of store files, usually)
//! are applied, and then the command under test must:
//!
//! - finish within 30 s (it is killed then, and a hang is a failure) and not
//!   be killed by a signal;
//! - exit with one of the case's codes (1 for errors, 2 for clap's usage
//!   errors);
//! - print no crash (`panicked`, a Rust `stack overflow`, `RUST_BACKTRACE`;
//!   Starlark's own "call stack overflow" message is not one);
//! - print every expected substring on stderr, ignoring case (what was
//!   wrong and where: `file:line:col`, the ref, the flag, the store file);
//! - leave the store directories (`.ocuroot/` and `.store/`) byte-identical:
//!   every path, its kind and its contents, including files appearing or
//!   vanishing. The fs store's lock is a `flock` on `.wal`, which changes no
//!   byte, so nothing is ignored. Cases whose failure is recorded (a run that
//!   fails) say `store_may_change` and list commands that must then succeed
//!   (`after`), such as `state get` of the failed run.
//!
//! Failures are collected and reported together, one line per case; the
//! report with every case's duration (the slowest first) is written to
//! `target/bad-input-report.txt` and printed. Durations are only reported,
//! never asserted. `BAD_INPUT_FILTER=<substring>` runs only the cases whose
//! name contains it; `BAD_INPUT_THREADS=<n>` sets how many run at once
//! (default 2).
//!
//! # Case files
//!
//! ```json
//! {
//!   "about": "what is wrong",
//!   "files": [{"path": "p.ocu.star", "text": "..."}],
//!   "setup": [["release", "new", "ok.ocu.star"]],
//!   "edits": [{"path": ".ocuroot/store/state/.wal", "op": "flip", "offset": 80}],
//!   "args": ["release", "new", "p.ocu.star"],
//!   "stdin": "text, or parts",
//!   "env": {"NAME": "value"},
//!   "exit": [1],
//!   "stderr": ["p.ocu.star:4:", "200 bytes"],
//!   "store_may_change": false,
//!   "after": [["state", "get", "t/-/p.ocu.star/@r1/task/x/1"]]
//! }
//! ```
//!
//! - A file is `{"path", "text"}`, `{"path", "parts": [...]}` (each part
//!   `{"text"}`, `{"hex": "fffe"}` for raw bytes, or `{"repeat", "times"}`),
//!   or `{"path", "kind": "fifo" | "dir"}` (made after the commit).
//! - An edit is `{"path", "op"}` with `op` one of `write` (`text` or
//!   `parts`), `truncate` (`len`), `flip` (xor 0xff the byte at `offset`),
//!   `dir` (replace by an empty directory), `remove`, and `wal-format`
//!   (`format`: rewrite the log header's format number and fix its CRC).
//! - In every string, `«N*TEXT»` stands for `TEXT` repeated `N` times.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Repo, std_ocuroot_in};

/// Every command of a case is killed after this long.
const LIMIT: Duration = Duration::from_secs(30);

/// The repository configuration of every case (unless it brings its own).
const REPO_FILE: &str = "ocuroot(\"0.3.0\")\nrepo_alias(\"t\")\n";

/// The valid package every case has beside its own files.
const OK_PACKAGE: &str = r#"ocuroot("0.3.0")

def build():
    return done(outputs={"n": 1})

task(build, name="build")
"#;

/// Directories (relative to the root) holding stores, compared before and
/// after the command.
const STORE_DIRS: &[&str] = &[".ocuroot", ".store"];

/// Signs of a crash rather than an error.
const CRASH_SIGNS: &[&str] = &["panicked", "RUST_BACKTRACE", "has overflowed its stack"];

// ----- templates and file contents ------------------------------------------------

/// `text` with every `«N*TEXT»` expanded.
pub(crate) fn expand(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find('«') {
        out.push_str(&rest[..start]);
        let after = &rest[start + '«'.len_utf8()..];
        let Some(end) = after.find('»') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let body = &after[..end];
        match body.split_once('*') {
            Some((n, unit)) if n.parse::<usize>().is_ok() => {
                out.push_str(&unit.repeat(n.parse().unwrap_or(0)));
            }
            _ => {
                out.push('«');
                out.push_str(body);
                out.push('»');
            }
        }
        rest = &after[end + '»'.len_utf8()..];
    }
    out.push_str(rest);
    out
}

fn hex_bytes(hex: &str) -> Result<Vec<u8>, String> {
    if !hex.len().is_multiple_of(2) {
        return Err(format!("odd hex string {hex:?}"));
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|e| format!("hex {hex:?}: {e}")))
        .collect()
}

/// The bytes of a `parts` list.
fn parts_bytes(parts: &Value) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for part in parts.as_array().ok_or("parts must be a list")? {
        if let Some(text) = part.get("text").and_then(Value::as_str) {
            out.extend_from_slice(expand(text).as_bytes());
        } else if let Some(hex) = part.get("hex").and_then(Value::as_str) {
            out.extend(hex_bytes(hex)?);
        } else if let Some(unit) = part.get("repeat").and_then(Value::as_str) {
            let times = part
                .get("times")
                .and_then(Value::as_u64)
                .ok_or("repeat needs times")?;
            out.extend_from_slice(expand(unit).repeat(times as usize).as_bytes());
        } else {
            return Err(format!("unknown part {part}"));
        }
    }
    Ok(out)
}

/// The contents given by `text` or `parts` of `spec`.
fn contents(spec: &Value) -> Result<Vec<u8>, String> {
    if let Some(text) = spec.get("text").and_then(Value::as_str) {
        Ok(expand(text).into_bytes())
    } else if let Some(parts) = spec.get("parts") {
        parts_bytes(parts)
    } else {
        Err(format!("no text or parts in {spec}"))
    }
}

fn strings(v: Option<&Value>) -> Result<Vec<String>, String> {
    match v {
        None => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|s| {
                s.as_str()
                    .map(expand)
                    .ok_or_else(|| format!("not a string: {s}"))
            })
            .collect(),
        Some(other) => Err(format!("not a list of strings: {other}")),
    }
}

fn commands(v: Option<&Value>) -> Result<Vec<Vec<String>>, String> {
    match v {
        None => Ok(Vec::new()),
        Some(Value::Array(a)) => a.iter().map(|c| strings(Some(c))).collect(),
        Some(other) => Err(format!("not a list of commands: {other}")),
    }
}

// ----- running a command with a hard limit ----------------------------------------

/// What a command did.
pub(crate) struct Ran {
    /// The exit code, when it exited.
    pub code: Option<i32>,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
    /// Killed by us at the limit.
    pub timed_out: bool,
    /// Standard output (lossy UTF-8).
    pub stdout: String,
    /// Standard error (lossy UTF-8).
    pub stderr: String,
    /// How long it ran.
    pub elapsed: Duration,
}

/// Proxy settings removed from every child.
const PROXY_ENV: &[&str] = &[
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
];

/// Kill the process group `pgid` (the command and whatever it started).
pub(crate) fn kill_group(pgid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Run `ocuroot <args>` in `dir` in its own process group (with the
/// environment of [`std_ocuroot_in`], no proxy, and `env` added), killing
/// the group after `limit`.
pub(crate) fn run_limited(
    dir: &Path,
    args: &[String],
    env: &[(String, String)],
    stdin: Option<Vec<u8>>,
    limit: Duration,
) -> Ran {
    let mut cmd = std_ocuroot_in(dir);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    // Requests to the tests' local servers must not go through a proxy.
    for var in PROXY_ENV {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn ocuroot");
    if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
        std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        });
    }
    let mut out_pipe = child.stdout.take().expect("stdout");
    let mut err_pipe = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out_pipe.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err_pipe.read_to_end(&mut buf);
        buf
    });
    let mut timed_out = false;
    let status = loop {
        match child.try_wait().expect("wait for ocuroot") {
            Some(status) => break status,
            None if start.elapsed() >= limit => {
                timed_out = true;
                kill_group(child.id());
                let _ = child.kill();
                break child.wait().expect("reap ocuroot");
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    let elapsed = start.elapsed();
    // Whatever it started must not outlive it (nor keep the pipes open).
    kill_group(child.id());
    let stdout = String::from_utf8_lossy(&out_reader.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned();
    Ran {
        code: status.code(),
        signal: status.signal(),
        timed_out,
        stdout,
        stderr,
        elapsed,
    }
}

// ----- store snapshots -----------------------------------------------------------

/// Every path under the store directories of `root`, with its kind and a
/// hash of its contents (the target, for a symlink).
pub(crate) fn store_snapshot(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .display()
                .to_string();
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            let ft = meta.file_type();
            if ft.is_symlink() {
                let target = fs::read_link(&path).unwrap_or_default();
                out.insert(rel, format!("symlink -> {}", target.display()));
            } else if ft.is_dir() {
                out.insert(rel, "dir".to_string());
                walk(root, &path, out);
            } else if ft.is_file() {
                let bytes = fs::read(&path).unwrap_or_default();
                let mut h = DefaultHasher::new();
                bytes.hash(&mut h);
                out.insert(
                    rel,
                    format!("file {} bytes {:016x}", bytes.len(), h.finish()),
                );
            } else {
                out.insert(rel, "special".to_string());
            }
        }
    }
    let mut out = BTreeMap::new();
    for dir in STORE_DIRS {
        let path = root.join(dir);
        if fs::symlink_metadata(&path).is_ok() {
            out.insert((*dir).to_string(), "dir".to_string());
            walk(root, &path, &mut out);
        }
    }
    out
}

/// The differences between two snapshots, one per line.
pub(crate) fn snapshot_diff(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut diff = Vec::new();
    for (path, was) in before {
        match after.get(path) {
            None => diff.push(format!("removed {path}")),
            Some(now) if now != was => diff.push(format!("changed {path}: {was} -> {now}")),
            Some(_) => {}
        }
    }
    for path in after.keys().filter(|p| !before.contains_key(*p)) {
        diff.push(format!("created {path}"));
    }
    diff
}

// ----- the fs store's log header -------------------------------------------------

fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for b in data {
        c ^= u32::from(*b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

// ----- one case -------------------------------------------------------------------

struct Outcome {
    name: String,
    elapsed: Duration,
    failure: Option<String>,
    /// The error a passing case printed, shortened.
    said: String,
}

fn write_special(repo: &Repo, spec: &Value) -> Result<(), String> {
    let rel = spec["path"].as_str().ok_or("a file needs a path")?;
    let path = repo.path().join(expand(rel));
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| format!("mkdir {}: {e}", parent.display()))?;
    }
    match spec.get("kind").and_then(Value::as_str) {
        Some("fifo") => {
            let status = std::process::Command::new("mkfifo")
                .arg(&path)
                .status()
                .map_err(|e| format!("mkfifo: {e}"))?;
            if !status.success() {
                return Err(format!("mkfifo {} failed", path.display()));
            }
        }
        Some("dir") => {
            fs::create_dir_all(&path).map_err(|e| format!("mkdir {}: {e}", path.display()))?
        }
        other => return Err(format!("unknown file kind {other:?}")),
    }
    Ok(())
}

fn apply_edit(root: &Path, edit: &Value) -> Result<(), String> {
    let rel = expand(edit["path"].as_str().ok_or("an edit needs a path")?);
    let path = root.join(&rel);
    let op = edit["op"].as_str().ok_or("an edit needs an op")?;
    let io = |what: &str, e: std::io::Error| format!("{what} {rel}: {e}");
    match op {
        "write" => {
            if path.is_dir() {
                fs::remove_dir_all(&path).map_err(|e| io("rmdir", e))?;
            }
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).map_err(|e| io("mkdir", e))?;
            }
            fs::write(&path, contents(edit)?).map_err(|e| io("write", e))?;
        }
        "truncate" => {
            let len = edit["len"].as_u64().ok_or("truncate needs len")?;
            let bytes = fs::read(&path).map_err(|e| io("read", e))?;
            if (bytes.len() as u64) < len {
                return Err(format!("{rel} has only {} bytes", bytes.len()));
            }
            fs::write(&path, &bytes[..len as usize]).map_err(|e| io("write", e))?;
        }
        "flip" => {
            let at = edit["offset"].as_u64().ok_or("flip needs offset")? as usize;
            let mut bytes = fs::read(&path).map_err(|e| io("read", e))?;
            let Some(b) = bytes.get_mut(at) else {
                return Err(format!(
                    "{rel} has only {} bytes, no offset {at}",
                    bytes.len()
                ));
            };
            *b ^= 0xff;
            fs::write(&path, &bytes).map_err(|e| io("write", e))?;
        }
        "wal-format" => {
            let format = edit["format"].as_u64().ok_or("wal-format needs format")? as u32;
            let mut bytes = fs::read(&path).map_err(|e| io("read", e))?;
            if bytes.len() < 64 {
                return Err(format!("{rel} has no header"));
            }
            bytes[8..12].copy_from_slice(&format.to_le_bytes());
            let crc = crc32(&bytes[..60]);
            bytes[60..64].copy_from_slice(&crc.to_le_bytes());
            fs::write(&path, &bytes).map_err(|e| io("write", e))?;
        }
        "dir" => {
            if path.is_dir() {
                fs::remove_dir_all(&path).map_err(|e| io("rmdir", e))?;
            } else if fs::symlink_metadata(&path).is_ok() {
                fs::remove_file(&path).map_err(|e| io("rm", e))?;
            }
            fs::create_dir_all(&path).map_err(|e| io("mkdir", e))?;
        }
        "remove" => {
            if path.is_dir() {
                fs::remove_dir_all(&path).map_err(|e| io("rmdir", e))?;
            } else {
                fs::remove_file(&path).map_err(|e| io("rm", e))?;
            }
        }
        other => return Err(format!("unknown edit op {other:?}")),
    }
    Ok(())
}

/// Shortened, redacted output for a failure line.
fn excerpt(repo: &Repo, text: &str) -> String {
    let text = repo.redact(text);
    let text = text.trim();
    let flat: String = text
        .replace('\n', " | ")
        .chars()
        .map(|c| {
            if c.is_control() {
                format!("\\u{{{:x}}}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect();
    if flat.chars().count() > 600 {
        let head: String = flat.chars().take(300).collect();
        let tail: String = flat
            .chars()
            .rev()
            .take(300)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("{head} ... {tail}")
    } else {
        flat
    }
}

fn short_args(args: &[String]) -> String {
    let shown: Vec<String> = args
        .iter()
        .map(|a| {
            if a.chars().count() > 60 {
                format!(
                    "{}...({} bytes)",
                    a.chars().take(40).collect::<String>(),
                    a.len()
                )
            } else {
                a.clone()
            }
        })
        .collect();
    format!("{shown:?}")
}

/// Run one case: `Ok` with the (shortened) error it printed, or why it
/// failed.
fn run_case(name: &str, case: &Value) -> Result<String, String> {
    let repo = Repo::new();
    let files = case
        .get("files")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !files.iter().any(|f| f["path"] == "repo.ocu.star") {
        repo.write("repo.ocu.star", REPO_FILE);
    }
    repo.write("ok.ocu.star", OK_PACKAGE);
    let mut special = Vec::new();
    for file in &files {
        if file.get("kind").is_some() {
            special.push(file);
            continue;
        }
        let rel = expand(file["path"].as_str().ok_or("a file needs a path")?);
        let path = repo.path().join(&rel);
        fs::create_dir_all(path.parent().expect("a parent")).map_err(|e| e.to_string())?;
        fs::write(&path, contents(file)?).map_err(|e| format!("write {rel}: {e}"))?;
    }
    repo.commit(name);
    for file in special {
        write_special(&repo, file)?;
    }
    let env: Vec<(String, String)> = case
        .get("env")
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), expand(v.as_str().unwrap_or_default())))
                .collect()
        })
        .unwrap_or_default();
    for setup in commands(case.get("setup"))? {
        let ran = run_limited(repo.path(), &setup, &env, None, LIMIT);
        if ran.code != Some(0) {
            return Err(format!(
                "setup {} exited {:?} (signal {:?}): {}",
                short_args(&setup),
                ran.code,
                ran.signal,
                excerpt(&repo, &ran.stderr)
            ));
        }
    }
    for edit in case
        .get("edits")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        apply_edit(repo.path(), &edit)?;
    }

    let args = strings(case.get("args"))?;
    let stdin = match case.get("stdin") {
        None => None,
        Some(Value::String(s)) => Some(expand(s).into_bytes()),
        Some(parts) => Some(parts_bytes(parts)?),
    };
    let exits: Vec<i64> = case
        .get("exit")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_else(|| vec![1]);
    let wanted = strings(case.get("stderr"))?;
    let may_change = case
        .get("store_may_change")
        .and_then(Value::as_bool)
        .unwrap_or(false);

    let before = store_snapshot(repo.path());
    let ran = run_limited(repo.path(), &args, &env, stdin, LIMIT);
    let after = store_snapshot(repo.path());

    let mut problems = Vec::new();
    if ran.timed_out {
        problems.push(format!(
            "did not finish within {}s (killed)",
            LIMIT.as_secs()
        ));
    } else if let Some(sig) = ran.signal {
        problems.push(format!("killed by signal {sig}"));
    } else if !ran.code.is_some_and(|c| exits.contains(&i64::from(c))) {
        problems.push(format!("exit {:?}, expected one of {exits:?}", ran.code));
    }
    let both = format!("{}\n{}", ran.stdout, ran.stderr);
    let lower = both.to_lowercase();
    for sign in CRASH_SIGNS {
        if both.contains(sign) {
            problems.push(format!("output shows a crash ({sign:?})"));
        }
    }
    // A Rust stack overflow; Starlark's "call stack overflow" error is not one.
    if lower
        .replace("call stack overflow", "")
        .contains("stack overflow")
    {
        problems.push("output shows a stack overflow".to_string());
    }
    let stderr_lower = ran.stderr.to_lowercase();
    let missing: Vec<&String> = wanted
        .iter()
        .filter(|w| !stderr_lower.contains(&w.to_lowercase()))
        .collect();
    if !missing.is_empty() {
        let shown: Vec<String> = missing
            .iter()
            .map(|m| {
                if m.len() > 120 {
                    format!(
                        "{}...",
                        &m[..m.char_indices().nth(60).map_or(m.len(), |c| c.0)]
                    )
                } else {
                    (*m).clone()
                }
            })
            .collect();
        problems.push(format!("stderr lacks {shown:?}"));
    }
    if may_change {
        for cmd in commands(case.get("after"))? {
            let r = run_limited(repo.path(), &cmd, &env, None, LIMIT);
            if r.code != Some(0) {
                problems.push(format!(
                    "afterwards {} exited {:?}: {}",
                    short_args(&cmd),
                    r.code,
                    excerpt(&repo, &r.stderr)
                ));
            }
        }
    } else {
        let diff = snapshot_diff(&before, &after);
        if !diff.is_empty() {
            let n = diff.len();
            let shown: Vec<String> = diff.into_iter().take(4).collect();
            problems.push(format!(
                "the store changed ({n} paths): {}",
                repo.redact(&shown.join("; "))
            ));
        }
    }
    if problems.is_empty() {
        let said = excerpt(&repo, &ran.stderr);
        Ok(said.chars().take(200).collect())
    } else {
        Err(format!(
            "{} [{}s] -- stderr: {}",
            problems.join("; "),
            ran.elapsed.as_secs_f32(),
            excerpt(&repo, &ran.stderr)
        ))
    }
}

/// The case files, by name (`<group>/<name>`).
fn corpus() -> Vec<(String, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad-input");
    let mut out = Vec::new();
    for group in fs::read_dir(&root)
        .expect("tests/bad-input exists")
        .flatten()
    {
        if !group.path().is_dir() {
            continue;
        }
        for file in fs::read_dir(group.path()).expect("a group").flatten() {
            let path = file.path();
            if path.extension().is_some_and(|e| e == "json") {
                let name = format!(
                    "{}/{}",
                    group.file_name().to_string_lossy(),
                    path.file_stem().unwrap_or_default().to_string_lossy()
                );
                out.push((name, path));
            }
        }
    }
    out.sort();
    out
}

/// Where the report goes: `target/bad-input-report.txt`.
fn report_path() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("bad-input-report.txt")
}

#[test]
fn bad_input_corpus() {
    let filter = std::env::var("BAD_INPUT_FILTER").unwrap_or_default();
    let threads: usize = std::env::var("BAD_INPUT_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(2)
        .max(1);
    let all = corpus();
    assert!(
        all.len() >= 110,
        "the corpus has {} cases, fewer than 110",
        all.len()
    );
    let cases: Vec<(String, PathBuf)> = all
        .into_iter()
        .filter(|(name, _)| name.contains(&filter))
        .collect();
    let queue = Mutex::new(cases.iter());
    let outcomes = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                    let Some((name, path)) = next else {
                        break;
                    };
                    let start = Instant::now();
                    let mut said = String::new();
                    let failure = match fs::read(path).map_err(|e| e.to_string()).and_then(|b| {
                        serde_json::from_slice::<Value>(&b).map_err(|e| e.to_string())
                    }) {
                        Err(e) => Some(format!("bad case file: {e}")),
                        Ok(case) => match std::panic::catch_unwind(|| run_case(name, &case)) {
                            Ok(Ok(s)) => {
                                said = s;
                                None
                            }
                            Ok(Err(e)) => Some(e),
                            Err(_) => Some("the runner panicked".to_string()),
                        },
                    };
                    outcomes
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(Outcome {
                            name: name.clone(),
                            elapsed: start.elapsed(),
                            failure,
                            said,
                        });
                }
            });
        }
    });
    let mut outcomes = outcomes.into_inner().unwrap_or_else(|e| e.into_inner());
    outcomes.sort_by(|a, b| a.name.cmp(&b.name));

    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| o.failure.is_some()).collect();
    let mut report = String::new();
    let _ = writeln!(
        report,
        "bad-input corpus: {} cases, {} passed, {} failed, {:.1}s on {threads} threads",
        outcomes.len(),
        outcomes.len() - failed.len(),
        failed.len(),
        started.elapsed().as_secs_f32()
    );
    let mut by_group: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for o in &outcomes {
        let group = o.name.split('/').next().unwrap_or_default();
        let e = by_group.entry(group).or_default();
        e.0 += 1;
        if o.failure.is_some() {
            e.1 += 1;
        }
    }
    for (group, (n, f)) in &by_group {
        let _ = writeln!(report, "  {group}: {n} cases, {f} failed");
    }
    let mut slowest: Vec<&Outcome> = outcomes.iter().collect();
    slowest.sort_by_key(|o| std::cmp::Reverse(o.elapsed));
    let _ = writeln!(report, "\nslowest:");
    for o in slowest.iter().take(10) {
        let _ = writeln!(report, "  {:>8.3}s  {}", o.elapsed.as_secs_f32(), o.name);
    }
    let _ = writeln!(
        report,
        "\nevery case (a passing case with what it printed):"
    );
    for o in &outcomes {
        let _ = writeln!(
            report,
            "  {:>8.3}s  {}  {}{}",
            o.elapsed.as_secs_f32(),
            if o.failure.is_some() { "FAIL" } else { "ok  " },
            o.name,
            if o.said.is_empty() {
                String::new()
            } else {
                format!("  -- {}", o.said)
            }
        );
    }
    let _ = writeln!(report, "\nfailures:");
    for o in &failed {
        let _ = writeln!(
            report,
            "  {}: {}",
            o.name,
            o.failure.as_deref().unwrap_or_default()
        );
    }
    let path = report_path();
    let _ = fs::write(&path, &report);
    println!("{report}\n(report written to {})", path.display());
    assert!(
        failed.is_empty(),
        "{} of {} bad-input cases failed (report: {}):\n{}",
        failed.len(),
        outcomes.len(),
        path.display(),
        failed
            .iter()
            .map(|o| format!("{}: {}", o.name, o.failure.as_deref().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

// ----- at the limits --------------------------------------------------------------

/// A repository with `repo.ocu.star` (alias `t`) and `files`, committed.
fn limits_repo(files: &[(&str, &str)]) -> Repo {
    let repo = Repo::new();
    repo.write("repo.ocu.star", REPO_FILE);
    for (path, text) in files {
        repo.write(path, text);
    }
    repo.commit("limits");
    repo
}

#[track_caller]
fn ok(repo: &Repo, args: &[&str]) -> Ran {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let ran = run_limited(repo.path(), &args, &[], None, LIMIT);
    assert_eq!(
        ran.code,
        Some(0),
        "ocuroot {} failed\n--- stdout\n{}\n--- stderr\n{}",
        short_args(&args),
        ran.stdout,
        ran.stderr
    );
    ran
}

#[test]
fn a_task_name_of_exactly_200_bytes_works() {
    let name = "n".repeat(200);
    let repo = limits_repo(&[(
        "p.ocu.star",
        &format!(
            "ocuroot(\"0.3.0\")\n\ndef b():\n    return done(outputs={{\"ok\": True}})\n\ntask(b, name=\"{name}\")\n"
        ),
    )]);
    ok(&repo, &["release", "new", "p.ocu.star"]);
    let got = ok(
        &repo,
        &[
            "state",
            "get",
            &format!("t/-/p.ocu.star/@r1/task/{name}#output/ok"),
        ],
    );
    assert_eq!(got.stdout.trim(), "true");
    ok(&repo, &["state", "checkpoint"]);
    ok(
        &repo,
        &["state", "get", &format!("t/-/p.ocu.star/@/task/{name}")],
    );
}

#[test]
fn names_of_exactly_200_bytes_work_in_custom_state_and_environments() {
    let repo = limits_repo(&[]);
    let custom = format!("@/custom/{}", "c".repeat(200));
    ok(&repo, &["state", "set", &custom, "1"]);
    ok(&repo, &["state", "apply", &custom]);
    let got = ok(&repo, &["state", "get", &custom]);
    assert_eq!(got.stdout.trim(), "\"1\"");
    let env = "e".repeat(200);
    ok(
        &repo,
        &[
            "state",
            "set",
            "-f",
            "json",
            &format!("@/environment/{env}"),
            &format!("{{\"name\": \"{env}\", \"attributes\": {{}}}}"),
        ],
    );
    ok(&repo, &["state", "apply", &format!("@/environment/{env}")]);
    ok(&repo, &["state", "checkpoint"]);
    ok(&repo, &["state", "get", &format!("@/environment/{env}")]);
}

#[test]
fn templates_expand() {
    assert_eq!(expand("a«3*b»c"), "abbbc");
    assert_eq!(expand("«2*{\"a\":»1«2*}»"), "{\"a\":{\"a\":1}}");
    assert_eq!(expand("no template «x»"), "no template «x»");
    assert_eq!(expand("«2*é»"), "éé");
}

//! Symbolic links planted in a directory store must not make it read or
//! write anything outside its directory, and temporary files left by a
//! killed checkpoint must not linger or show up as keys.
//!
//! Each probe starts from a fresh store with real files (a commit and a
//! checkpoint), replaces one part of it with a symlink to a victim outside
//! the store (the log `.wal`, `refs/`, a release folder inside `refs/`, an
//! `@object.json`, the `.ocuroot-store` marker, a dangling or a live
//! `@object.json.tmp` or `.ocuroot-store.tmp`), then opens the store again
//! and writes (a commit), checkpoints and reads (`get`, `list`). Afterwards:
//!
//! - every victim file has its bytes, and nothing new exists outside;
//! - no read returned the victim's marker content;
//! - each operation either succeeded without touching the outside, or failed
//!   with an error that says `symbolic link` (or `symlink`) and names the
//!   link's path.
//!
//! All probes run and their findings are reported together.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use ocuroot_core::store::{Entry, Expect, FsStore, Op, Store};

/// Keys the fresh store holds.
const RELEASE_KEY: &str = "repo/-/pkg.ocu.star/@r1";
const TASK_KEY: &str = "repo/-/pkg.ocu.star/@r1/task/build";
const KEY: &str = "k";

/// What the outside holds: a document any read of it would return.
const MARKER: &str = "OUTSIDE-MARKER-7d1e";

fn doc(body: &str) -> Vec<u8> {
    format!("{{\"kind\":\"ref\",\"body\":\"{body}\"}}").into_bytes()
}

fn outside_doc() -> Vec<u8> {
    doc(MARKER)
}

/// Every path below `dir` (not following links) with its kind and bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap_or(&p).to_path_buf();
            let meta = fs::symlink_metadata(&p).expect("stat");
            if meta.file_type().is_symlink() {
                let mut v = b"symlink:".to_vec();
                v.extend(
                    fs::read_link(&p)
                        .unwrap_or_default()
                        .as_os_str()
                        .as_encoded_bytes(),
                );
                out.insert(rel, v);
            } else if meta.is_dir() {
                out.insert(rel, b"dir".to_vec());
                walk(root, &p, out);
            } else {
                out.insert(rel, fs::read(&p).unwrap_or_default());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// A probe's directories: the store and the outside, side by side.
struct Scene {
    _tmp: tempfile::TempDir,
    store: PathBuf,
    outside: PathBuf,
}

/// A store with real files: three keys committed and checkpointed, then one
/// more committed (so the log is not empty).
fn scene() -> Scene {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().canonicalize().expect("canonical");
    let store = root.join("store");
    let outside = root.join("outside");
    fs::create_dir_all(&outside).expect("mkdir outside");
    {
        let s = FsStore::open(&store, "state").expect("open the store");
        s.commit(&[
            Op::put(RELEASE_KEY, doc("release"), Expect::Any),
            Op::put(TASK_KEY, doc("task"), Expect::Any),
            Op::put(KEY, doc("k"), Expect::Any),
        ])
        .expect("first commit");
        s.checkpoint().expect("checkpoint");
        s.commit(&[Op::put("logged", doc("logged"), Expect::Any)])
            .expect("second commit");
    }
    Scene {
        _tmp: tmp,
        store,
        outside,
    }
}

/// Replace `path` (a file or a directory) with a symlink to `target`.
fn replace_with_link(path: &Path, target: &Path) {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).expect("remove dir"),
        Ok(_) => fs::remove_file(path).expect("remove file"),
        Err(_) => {}
    }
    symlink(target, path).expect("symlink");
}

/// Copy the directory `from` to `to`, recursively.
fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for e in fs::read_dir(from).expect("read dir").flatten() {
        let p = e.path();
        let dest = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            fs::copy(&p, &dest).expect("copy");
        }
    }
}

/// Replace every `@object.json` below `dir` with the outside marker doc.
fn mark_objects(dir: &Path) {
    for e in fs::read_dir(dir).expect("read dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            mark_objects(&p);
        } else if e.file_name() == "@object.json" {
            fs::write(&p, outside_doc()).expect("write marker doc");
        }
    }
}

/// The probe's findings.
struct Probe {
    name: &'static str,
    /// The link, relative to the store directory.
    link: String,
    problems: Vec<String>,
}

impl Probe {
    /// Check one operation's result: a value must not hold the marker, an
    /// error must say symbolic link and name the link.
    fn check<T: std::fmt::Debug>(&mut self, what: &str, r: ocuroot_core::Result<T>) {
        match r {
            Ok(v) => {
                let shown = format!("{v:?}");
                if shown.contains(MARKER) {
                    self.problems
                        .push(format!("{what} returned the outside content: {shown:.200}"));
                }
            }
            Err(e) => {
                let msg = e.to_string();
                let lower = msg.to_lowercase();
                if !(lower.contains("symbolic link") || lower.contains("symlink")) {
                    self.problems
                        .push(format!("{what} failed without saying symbolic link: {msg}"));
                } else if !msg.contains(&self.link) {
                    self.problems
                        .push(format!("{what} failed without naming {}: {msg}", self.link));
                }
            }
        }
    }
}

/// A value read, as text.
fn text(e: Option<Entry>) -> Option<String> {
    e.map(|e| String::from_utf8_lossy(&e.value).into_owned())
}

/// Open the store, read and list, commit, checkpoint, then read and list
/// again; `tags`: the tags to open it with (a second tag makes the marker
/// be written).
fn exercise(p: &mut Probe, store: &Path, tags: &[&str]) {
    fn reads(p: &mut Probe, s: &FsStore, when: &str) {
        for key in [KEY, TASK_KEY, RELEASE_KEY, "logged"] {
            p.check(&format!("get {key} ({when})"), s.get(key).map(text));
        }
        p.check(
            &format!("get_many ({when})"),
            s.get_many(&[KEY, TASK_KEY])
                .map(|v| v.into_iter().map(text).collect::<Vec<_>>()),
        );
        for prefix in ["", "repo/", "repo/-/pkg.ocu.star/@r1/"] {
            p.check(&format!("list {prefix:?} ({when})"), s.list(prefix));
        }
    }
    for tag in tags {
        let opened = FsStore::open(store, tag);
        let Ok(s) = opened else {
            p.check(&format!("open ({tag})"), opened.map(|_| ()));
            continue;
        };
        reads(p, &s, &format!("{tag}, before writing"));
        p.check(
            &format!("commit ({tag})"),
            s.commit(&[
                Op::put(KEY, doc("k2"), Expect::Any),
                Op::put("repo/-/pkg.ocu.star/@r1/task/new", doc("new"), Expect::Any),
                Op::put(TASK_KEY, doc("task2"), Expect::Any),
            ]),
        );
        p.check(&format!("checkpoint ({tag})"), s.checkpoint());
        reads(p, &s, &format!("{tag}, after a checkpoint"));
        // A fresh instance reads the files the checkpoint wrote.
        if let Ok(again) = FsStore::open(store, tag) {
            reads(p, &again, &format!("{tag}, reopened"));
        }
    }
}

fn probe(
    name: &'static str,
    link: &str,
    tags: &[&str],
    plant: impl FnOnce(&Scene) -> Vec<PathBuf>,
) -> Probe {
    let scene = scene();
    // What the probe plants outside, and the victims it names.
    let victims = plant(&scene);
    let before = snapshot(&scene.outside);
    let mut p = Probe {
        name,
        link: link.to_string(),
        problems: Vec::new(),
    };
    exercise(&mut p, &scene.store, tags);
    let after = snapshot(&scene.outside);
    for v in &victims {
        let rel = v.strip_prefix(&scene.outside).unwrap_or(v).to_path_buf();
        match (before.get(&rel), after.get(&rel)) {
            (Some(a), Some(b)) if a != b => p.problems.push(format!(
                "the victim {} was changed: {:?} -> {:?}",
                rel.display(),
                String::from_utf8_lossy(&a[..a.len().min(80)]),
                String::from_utf8_lossy(&b[..b.len().min(80)])
            )),
            (None, Some(_)) => p
                .problems
                .push(format!("the victim {} was created", rel.display())),
            _ => {}
        }
    }
    for (path, bytes) in &after {
        match before.get(path) {
            None => p
                .problems
                .push(format!("created outside the store: {}", path.display())),
            Some(b) if b != bytes && !victims.iter().any(|v| v.ends_with(path)) => p
                .problems
                .push(format!("changed outside the store: {}", path.display())),
            _ => {}
        }
    }
    p
}

#[test]
fn symlinks_planted_in_the_store_never_reach_outside() {
    let mut probes = Vec::new();

    probes.push(probe("wal -> victim file", ".wal", &["state"], |s| {
        let victim = s.outside.join("victim.bin");
        fs::write(&victim, format!("VICTIM {MARKER} {}", "x".repeat(200))).unwrap();
        replace_with_link(&s.store.join(".wal"), &victim);
        vec![victim]
    }));

    probes.push(probe("wal -> empty victim file", ".wal", &["state"], |s| {
        let victim = s.outside.join("empty-victim");
        fs::write(&victim, b"").unwrap();
        replace_with_link(&s.store.join(".wal"), &victim);
        vec![victim]
    }));

    probes.push(probe("wal -> dangling", ".wal", &["state"], |s| {
        let victim = s.outside.join("wal-created-by-the-store");
        replace_with_link(&s.store.join(".wal"), &victim);
        vec![victim]
    }));

    probes.push(probe("refs -> outside dir", "refs", &["state"], |s| {
        let target = s.outside.join("refs");
        copy_dir(&s.store.join("refs"), &target);
        mark_objects(&target);
        replace_with_link(&s.store.join("refs"), &target);
        let mut victims = vec![];
        collect_files(&target, &mut victims);
        victims
    }));

    probes.push(probe(
        "release folder -> outside dir",
        "refs/repo/-/pkg.ocu.star/@r1",
        &["state"],
        |s| {
            let release = s.store.join("refs").join(RELEASE_KEY);
            let target = s.outside.join("release");
            copy_dir(&release, &target);
            mark_objects(&target);
            replace_with_link(&release, &target);
            let mut victims = vec![];
            collect_files(&target, &mut victims);
            victims
        },
    ));

    probes.push(probe(
        "@object.json -> outside file",
        "refs/k/@object.json",
        &["state"],
        |s| {
            let victim = s.outside.join("doc.json");
            fs::write(&victim, outside_doc()).unwrap();
            replace_with_link(&s.store.join("refs/k/@object.json"), &victim);
            vec![victim]
        },
    ));

    probes.push(probe(
        ".ocuroot-store -> outside file",
        ".ocuroot-store",
        &["state", "intent"],
        |s| {
            let victim = s.outside.join("marker.json");
            fs::write(&victim, br#"{"version":3,"Tags":{"state":{}}}"#).unwrap();
            replace_with_link(&s.store.join(".ocuroot-store"), &victim);
            vec![victim]
        },
    ));

    probes.push(probe(
        "dangling @object.json.tmp -> outside path",
        "refs/k/@object.json.tmp",
        &["state"],
        |s| {
            let victim = s.outside.join("created-by-the-store");
            replace_with_link(&s.store.join("refs/k/@object.json.tmp"), &victim);
            vec![victim]
        },
    ));

    probes.push(probe(
        "@object.json.tmp -> existing outside file",
        "refs/repo/-/pkg.ocu.star/@r1/task/build/@object.json.tmp",
        &["state"],
        |s| {
            let victim = s.outside.join("victim.txt");
            fs::write(&victim, format!("precious {MARKER}")).unwrap();
            replace_with_link(
                &s.store.join("refs").join(TASK_KEY).join("@object.json.tmp"),
                &victim,
            );
            vec![victim]
        },
    ));

    probes.push(probe(
        "dangling .ocuroot-store.tmp -> outside path",
        ".ocuroot-store.tmp",
        &["intent"],
        |s| {
            let victim = s.outside.join("marker-created-by-the-store");
            replace_with_link(&s.store.join(".ocuroot-store.tmp"), &victim);
            vec![victim]
        },
    ));

    probes.push(probe(
        ".checkpoint mark -> existing outside file",
        ".checkpoint",
        &["state"],
        |s| {
            let victim = s.outside.join("victim.txt");
            fs::write(&victim, format!("precious {MARKER}")).unwrap();
            replace_with_link(&s.store.join(".checkpoint"), &victim);
            vec![victim]
        },
    ));

    let mut report = Vec::new();
    for p in &probes {
        println!(
            "{} {}",
            if p.problems.is_empty() {
                "ok  "
            } else {
                "FAIL"
            },
            p.name
        );
        for problem in &p.problems {
            report.push(format!("{}: {problem}", p.name));
        }
    }
    assert!(
        report.is_empty(),
        "{} problems:\n{}",
        report.len(),
        report.join("\n")
    );
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).expect("read dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            collect_files(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn temporary_files_of_a_killed_checkpoint_are_removed_on_open_and_never_listed() {
    let scene = scene();
    let refs = scene.store.join("refs");
    // Next to a real @object.json, and in a key folder that has none (a new
    // key whose checkpoint was killed before the rename).
    let beside = refs.join(KEY).join("@object.json.tmp");
    fs::write(&beside, b"{\"kind\":\"ref\",\"body\":\"half wr").unwrap();
    let alone_dir = refs.join("repo/-/pkg.ocu.star/@r1/task/never");
    fs::create_dir_all(&alone_dir).unwrap();
    let alone = alone_dir.join("@object.json.tmp");
    fs::write(&alone, doc("never")).unwrap();
    // The mark a checkpoint leaves while it writes files back, which tells
    // the next opening to look for its temporary files.
    fs::write(scene.store.join(".checkpoint"), b"").unwrap();

    let store = FsStore::open(&scene.store, "state").expect("open");
    let mut problems = Vec::new();
    if scene.store.join(".checkpoint").exists() {
        problems.push("the .checkpoint mark is still there after the store opened".to_string());
    }
    for tmp in [&beside, &alone] {
        if fs::symlink_metadata(tmp).is_ok() {
            problems.push(format!(
                "{} is still there after the store opened",
                tmp.strip_prefix(&scene.store).unwrap().display()
            ));
        }
    }
    let keys = store.list("").expect("list");
    for k in &keys {
        if k.contains("never") || k.contains(".tmp") {
            problems.push(format!("list shows {k}"));
        }
    }
    if store
        .get("repo/-/pkg.ocu.star/@r1/task/never")
        .expect("get")
        .is_some()
    {
        problems.push("the key of a lone temporary file reads as present".to_string());
    }
    assert_eq!(
        store.get(KEY).expect("get").map(|e| e.value),
        Some(doc("k")),
        "the real value is untouched"
    );
    // A checkpoint goes through too and leaves no temporary file.
    store.checkpoint().expect("checkpoint");
    for tmp in [&beside, &alone] {
        if fs::symlink_metadata(tmp).is_ok() {
            problems.push(format!(
                "{} is still there after a checkpoint",
                tmp.strip_prefix(&scene.store).unwrap().display()
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

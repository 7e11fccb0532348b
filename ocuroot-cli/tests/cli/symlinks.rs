//! Symbolic links planted in the default fs store (`.ocuroot/store/{state,
//! intent}`), through the CLI: the probes of the core's
//! `store::symlinks` tests, driven by `ocuroot state set` / `state apply` /
//! `state checkpoint` / `state get` / `state match`.
//!
//! Each probe starts from a fresh repository whose stores have real files (a
//! release of `ok.ocu.star`, custom state `@/custom/seed` set and applied,
//! a checkpoint), replaces one part with a symlink to a victim outside the
//! repository, and runs the commands. Afterwards every victim has its
//! bytes, nothing new exists outside, no command printed the victim's
//! marker, and every command either succeeded or failed saying `symbolic
//! link` (or `symlink`) and naming the link. A command that hangs or
//! crashes is a failure too. All findings are reported together.
//!
//! Also: `@object.json.tmp` files left by a killed checkpoint are removed
//! when the store opens and never appear in `state match`.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::bad_input::run_limited;
use crate::support::Repo;

const LIMIT: Duration = Duration::from_secs(30);

/// What the outside holds.
const MARKER: &str = "OUTSIDE-MARKER-c41a";

const OK_PACKAGE: &str = r#"ocuroot("0.3.0")

def build():
    return done(outputs={"n": 1})

task(build, name="build")
"#;

const STATE: &str = ".ocuroot/store/state";
const INTENT: &str = ".ocuroot/store/intent";
const RELEASE: &str = "t/-/ok.ocu.star/@r1";

fn outside_doc() -> String {
    format!("{{\"kind\":\"ref\",\"body\":\"{MARKER}\"}}")
}

/// A repository with a released package, applied custom state and a
/// checkpoint, so both stores have their files.
fn populated() -> Repo {
    let repo = Repo::new();
    repo.write("repo.ocu.star", "ocuroot(\"0.3.0\")\nrepo_alias(\"t\")\n");
    repo.write("ok.ocu.star", OK_PACKAGE);
    repo.write(".gitignore", ".ocuroot/\n");
    repo.commit("init");
    for args in [
        &["release", "new", "ok.ocu.star"][..],
        &["state", "set", "@/custom/seed", "1"],
        &["state", "apply", "@/custom/seed"],
        &["state", "checkpoint"],
    ] {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let ran = run_limited(repo.path(), &args, &[], None, LIMIT);
        assert_eq!(ran.code, Some(0), "{args:?}: {}", ran.stderr);
    }
    repo
}

fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap_or(&p).to_path_buf();
            let Ok(meta) = fs::symlink_metadata(&p) else {
                continue;
            };
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

fn replace_with_link(path: &Path, target: &Path) {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).expect("remove dir"),
        Ok(_) => fs::remove_file(path).expect("remove file"),
        Err(_) => {}
    }
    symlink(target, path).expect("symlink");
}

fn copy_marked(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for e in fs::read_dir(from).expect("read dir").flatten() {
        let p = e.path();
        let dest = to.join(e.file_name());
        if p.is_dir() {
            copy_marked(&p, &dest);
        } else if e.file_name() == "@object.json" {
            fs::write(&dest, outside_doc()).expect("write");
        } else {
            fs::copy(&p, &dest).expect("copy");
        }
    }
}

/// The commands every probe runs, in order.
const COMMANDS: &[&[&str]] = &[
    &["state", "get", "@/custom/seed"],
    &["state", "get", "t/-/ok.ocu.star/@r1/task/build"],
    &["state", "match", "**"],
    &["state", "set", "@/custom/seed", "2"],
    &["state", "apply", "@/custom/seed"],
    &["state", "set", "@/custom/other", "3"],
    &["state", "apply", "@/custom/other"],
    &["release", "continue", "ok.ocu.star/@r1"],
    &["state", "checkpoint"],
    &["state", "get", "@/custom/seed"],
    &["state", "get", "t/-/ok.ocu.star/@r1/task/build"],
    &["state", "get", "t/-/ok.ocu.star/@r1"],
    &["state", "match", "**"],
];

/// Plant with `plant` (which returns the victims), run [`COMMANDS`], and
/// say what went wrong. `link` is the planted link, relative to the root.
fn probe(name: &str, link: &str, plant: impl FnOnce(&Repo, &Path) -> Vec<PathBuf>) -> Vec<String> {
    let repo = populated();
    let outside_dir = tempfile::tempdir().expect("temp dir");
    let outside = outside_dir.path().canonicalize().expect("canonical");
    let victims = plant(&repo, &outside);
    let before = snapshot(&outside);
    let mut problems = Vec::new();
    for cmd in COMMANDS {
        let args: Vec<String> = cmd.iter().map(|a| a.to_string()).collect();
        let ran = run_limited(repo.path(), &args, &[], None, LIMIT);
        let what = format!("{name}: ocuroot {}", cmd.join(" "));
        if ran.timed_out || ran.signal.is_some() {
            problems.push(format!("{what}: did not finish (signal {:?})", ran.signal));
            continue;
        }
        if ran.stderr.contains("panicked") {
            problems.push(format!("{what}: panicked: {}", ran.stderr.trim()));
        }
        if ran.stdout.contains(MARKER) || ran.stderr.contains(MARKER) {
            problems.push(format!("{what}: printed the outside content"));
        }
        if ran.code != Some(0) {
            let lower = ran.stderr.to_lowercase();
            let err = repo.redact(ran.stderr.trim()).replace('\n', " | ");
            if !(lower.contains("symbolic link") || lower.contains("symlink")) {
                problems.push(format!(
                    "{what}: failed (exit {:?}) without saying symbolic link: {err}",
                    ran.code
                ));
            } else if !ran.stderr.contains(link) {
                problems.push(format!("{what}: failed without naming {link}: {err}"));
            }
        }
    }
    let after = snapshot(&outside);
    for v in &victims {
        let rel = v.strip_prefix(&outside).unwrap_or(v).to_path_buf();
        match (before.get(&rel), after.get(&rel)) {
            (Some(a), Some(b)) if a != b => {
                problems.push(format!("{name}: the victim {} was changed", rel.display()))
            }
            (None, Some(_)) => {
                problems.push(format!("{name}: the victim {} was created", rel.display()))
            }
            (Some(_), None) => {
                problems.push(format!("{name}: the victim {} was removed", rel.display()))
            }
            _ => {}
        }
    }
    for path in after.keys() {
        if !before.contains_key(path) && !victims.iter().any(|v| v.ends_with(path)) {
            problems.push(format!("{name}: created outside: {}", path.display()));
        }
    }
    problems
}

fn files_below(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).expect("read dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            files_below(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn symlinks_in_the_default_store_never_reach_outside() {
    let mut problems = Vec::new();
    let wal = format!("{STATE}/.wal");
    problems.extend(probe("state .wal -> victim", &wal, |repo, out| {
        let victim = out.join("victim.bin");
        fs::write(&victim, format!("VICTIM {MARKER}")).unwrap();
        replace_with_link(&repo.path().join(&wal), &victim);
        vec![victim]
    }));
    problems.extend(probe("state .wal -> empty victim", &wal, |repo, out| {
        let victim = out.join("empty");
        fs::write(&victim, b"").unwrap();
        replace_with_link(&repo.path().join(&wal), &victim);
        vec![victim]
    }));
    let intent_wal = format!("{INTENT}/.wal");
    problems.extend(probe(
        "intent .wal -> empty victim",
        &intent_wal,
        |repo, out| {
            let victim = out.join("empty");
            fs::write(&victim, b"").unwrap();
            replace_with_link(&repo.path().join(&intent_wal), &victim);
            vec![victim]
        },
    ));
    let refs = format!("{STATE}/refs");
    problems.extend(probe("state refs/ -> outside dir", &refs, |repo, out| {
        let target = out.join("refs");
        copy_marked(&repo.path().join(&refs), &target);
        replace_with_link(&repo.path().join(&refs), &target);
        let mut v = Vec::new();
        files_below(&target, &mut v);
        v
    }));
    let release = format!("{STATE}/refs/{RELEASE}");
    problems.extend(probe(
        "release folder -> outside dir",
        &release,
        |repo, out| {
            let target = out.join("release");
            copy_marked(&repo.path().join(&release), &target);
            replace_with_link(&repo.path().join(&release), &target);
            let mut v = Vec::new();
            files_below(&target, &mut v);
            v
        },
    ));
    let object = format!("{STATE}/refs/@/custom/seed/@object.json");
    problems.extend(probe(
        "@object.json -> outside file",
        &object,
        |repo, out| {
            let victim = out.join("doc.json");
            fs::write(&victim, outside_doc()).unwrap();
            replace_with_link(&repo.path().join(&object), &victim);
            vec![victim]
        },
    ));
    let marker = format!("{STATE}/.ocuroot-store");
    problems.extend(probe(
        ".ocuroot-store -> outside file",
        &marker,
        |repo, out| {
            let victim = out.join("marker.json");
            fs::write(&victim, br#"{"version":3,"Tags":{"state":{}}}"#).unwrap();
            replace_with_link(&repo.path().join(&marker), &victim);
            vec![victim]
        },
    ));
    let tmp = format!("{STATE}/refs/@/custom/seed/@object.json.tmp");
    problems.extend(probe("dangling @object.json.tmp", &tmp, |repo, out| {
        let victim = out.join("created-by-ocuroot");
        replace_with_link(&repo.path().join(&tmp), &victim);
        vec![victim]
    }));
    let tmp_live = format!("{STATE}/refs/{RELEASE}/task/build/@object.json.tmp");
    problems.extend(probe(
        "@object.json.tmp -> existing file",
        &tmp_live,
        |repo, out| {
            let victim = out.join("precious.txt");
            fs::write(&victim, format!("precious {MARKER}")).unwrap();
            replace_with_link(&repo.path().join(&tmp_live), &victim);
            vec![victim]
        },
    ));
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn temporary_files_of_a_killed_checkpoint_are_removed_and_never_matched() {
    let repo = populated();
    let refs = repo.path().join(STATE).join("refs");
    let beside = refs.join("@/custom/seed/@object.json.tmp");
    fs::write(&beside, b"{\"kind\":\"ref\",\"body\":\"half").unwrap();
    let alone_dir = refs.join(RELEASE).join("task/never");
    fs::create_dir_all(&alone_dir).unwrap();
    let alone = alone_dir.join("@object.json.tmp");
    fs::write(&alone, b"{\"kind\":\"ref\",\"body\":\"never\"}").unwrap();
    // The mark a checkpoint leaves while it writes files back, which tells
    // the next opening to look for its temporary files.
    fs::write(repo.path().join(STATE).join(".checkpoint"), b"").unwrap();

    let mut problems = Vec::new();
    let args: Vec<String> = ["state", "match", "**"]
        .iter()
        .map(|a| a.to_string())
        .collect();
    let listed = run_limited(repo.path(), &args, &[], None, LIMIT);
    assert_eq!(listed.code, Some(0), "{}", listed.stderr);
    for line in listed.stdout.lines() {
        if line.contains("never") || line.contains(".tmp") {
            problems.push(format!("state match '**' lists {line}"));
        }
    }
    for tmp in [&beside, &alone] {
        if fs::symlink_metadata(tmp).is_ok() {
            problems.push(format!(
                "{} is still there after the store was opened",
                repo.redact(&tmp.display().to_string())
            ));
        }
    }
    let args: Vec<String> = ["state", "get", "@/custom/seed"]
        .iter()
        .map(|a| a.to_string())
        .collect();
    let got = run_limited(repo.path(), &args, &[], None, LIMIT);
    assert_eq!(got.stdout.trim(), "\"1\"", "{}", got.stderr);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

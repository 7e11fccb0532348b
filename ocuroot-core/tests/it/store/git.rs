//! The git store against real bare repositories on disk: the branch's
//! layout, compare-and-swap between agents with their own clones, deferred
//! batches sharing a push, and a linear history.

use std::path::Path;
use std::process::Command;

use ocuroot_core::store::{Durability, Expect, GitBranch, GitStore, Op, Store};

use crate::store::common::{bare_remote, git_options};

fn git(remote: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(remote)
        .args(args)
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn agent(remote: &Path, home: &Path) -> GitStore {
    GitStore::open(git_options(remote, home, "state"), "state").unwrap()
}

fn put(key: &str, value: &str, expect: Expect) -> Op {
    Op::put(key, value.as_bytes().to_vec(), expect)
}

#[test]
fn the_branch_holds_the_directory_store_layout() {
    let dir = tempfile::tempdir().unwrap();
    let remote = bare_remote(dir.path());
    let a = agent(&remote, &dir.path().join("a"));
    a.commit(&[put("repo/-/pkg.ocu.star/@r1", "{}", Expect::Absent)])
        .unwrap();
    let files = git(&remote, &["ls-tree", "-r", "--name-only", "state"]);
    assert_eq!(
        files,
        ".ocuroot-store\nrefs/repo/-/pkg.ocu.star/@r1/@object.json\n"
    );
    assert_eq!(
        git(&remote, &["show", "state:.ocuroot-store"]),
        r#"{"version":3,"Tags":{"state":{}}}"#
    );
    let log = git(&remote, &["log", "--format=%an <%ae>|%s", "state"]);
    assert_eq!(
        log,
        "Ocuroot <contact@ocuroot.com>|release r1 created (repo/-/pkg.ocu.star)\n\
         Ocuroot <contact@ocuroot.com>|state store initialised\n"
    );
    // A version is the blob id: the same bytes have the same version in
    // another clone.
    let b = agent(&remote, &dir.path().join("b"));
    assert_eq!(
        a.get("repo/-/pkg.ocu.star/@r1").unwrap(),
        b.get("repo/-/pkg.ocu.star/@r1").unwrap()
    );
}

#[test]
fn a_stale_agent_conflicts_instead_of_overwriting() {
    let dir = tempfile::tempdir().unwrap();
    let remote = bare_remote(dir.path());
    let mut slow = git_options(&remote, &dir.path().join("b"), "state");
    slow.fetch_interval = std::time::Duration::from_secs(3600);
    let a = agent(&remote, &dir.path().join("a"));
    let b = GitStore::open(slow, "state").unwrap();
    a.commit(&[put("k", "1", Expect::Absent)]).unwrap();
    // b read the branch before a's commit and does not fetch again.
    assert_eq!(b.get("k").unwrap(), None);
    let err = b.commit(&[put("k", "2", Expect::Absent)]).unwrap_err();
    assert!(err.is_conflict(), "{err}");
    // An unrelated write from the stale clone is re-applied on the new tip.
    b.commit(&[put("other", "x", Expect::Absent)]).unwrap();
    assert_eq!(a.get("k").unwrap().unwrap().value, b"1");
    assert_eq!(a.get("other").unwrap().unwrap().value, b"x");
    assert_eq!(b.get("k").unwrap().unwrap().value, b"1");
    assert!(git(&remote, &["rev-list", "--merges", "state"]).is_empty());
    assert_eq!(git(&remote, &["rev-list", "--count", "state"]).trim(), "3");
    git(&remote, &["fsck", "--strict"]);
    // b's clone is not ahead of the remote.
    assert_eq!(
        b.branch().stats().pushes,
        1,
        "only the accepted commit was pushed"
    );
}

#[test]
fn deferred_batches_share_a_push_and_sync_pushes_them() {
    let dir = tempfile::tempdir().unwrap();
    let remote = bare_remote(dir.path());
    let a = agent(&remote, &dir.path().join("a"));
    let before = a.branch().stats();
    for i in 0..5 {
        a.commit_with(
            &[put(&format!("k{i}"), "v", Expect::Absent)],
            Durability::Deferred,
        )
        .unwrap();
    }
    assert_eq!(
        a.branch().stats().pushes,
        before.pushes,
        "nothing pushed yet"
    );
    // This agent reads its own deferred batches.
    assert!(a.get("k4").unwrap().is_some());
    a.commit_with(&[put("claim", "v", Expect::Absent)], Durability::Shared)
        .unwrap();
    let after = a.branch().stats();
    assert_eq!(after.pushes, before.pushes + 1);
    assert_eq!(after.commits, before.commits + 6, "one commit per batch");
    assert_eq!(git(&remote, &["rev-list", "--count", "state"]).trim(), "7");
    a.commit_with(&[put("late", "v", Expect::Absent)], Durability::Deferred)
        .unwrap();
    a.sync().unwrap();
    assert!(git(&remote, &["ls-tree", "-r", "--name-only", "state"]).contains("refs/late/"));
}

#[test]
fn agents_in_threads_and_clones_never_lose_a_write() {
    let dir = tempfile::tempdir().unwrap();
    let remote = bare_remote(dir.path());
    let stores: Vec<GitStore> = (0..4)
        .map(|i| agent(&remote, &dir.path().join(format!("home{i}"))))
        .collect();
    std::thread::scope(|s| {
        for (i, store) in stores.iter().enumerate() {
            s.spawn(move || {
                for n in 0..10 {
                    // A counter every agent increments, and a key of its own.
                    store_increment(store);
                    store
                        .commit(&[put(&format!("agent{i}/{n}"), "x", Expect::Absent)])
                        .unwrap();
                }
            });
        }
    });
    let fresh = agent(&remote, &dir.path().join("check"));
    assert_eq!(fresh.get("counter").unwrap().unwrap().value, b"40");
    assert_eq!(fresh.list("agent").unwrap().len(), 40);
    assert!(git(&remote, &["rev-list", "--merges", "state"]).is_empty());
    git(&remote, &["fsck", "--strict"]);
}

fn store_increment(store: &GitStore) {
    loop {
        let current = store.get("counter").unwrap();
        let n: u64 = current
            .as_ref()
            .map(|e| String::from_utf8_lossy(&e.value).parse().unwrap())
            .unwrap_or(0);
        let op = put(
            "counter",
            &(n + 1).to_string(),
            Expect::unchanged(current.map(|e| e.version)),
        );
        match store.commit(&[op]) {
            Ok(()) => return,
            Err(e) if e.is_conflict() => continue,
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn state_and_intent_share_one_branch_under_prefixes() {
    let dir = tempfile::tempdir().unwrap();
    let remote = bare_remote(dir.path());
    let branch = GitBranch::open(git_options(&remote, &dir.path().join("a"), "store")).unwrap();
    let state = branch.store("state", "state").unwrap();
    let intent = branch.store("intent", "intent").unwrap();
    state.commit(&[put("k", "s", Expect::Absent)]).unwrap();
    intent.commit(&[put("k", "i", Expect::Absent)]).unwrap();
    let files = git(&remote, &["ls-tree", "-r", "--name-only", "store"]);
    assert_eq!(
        files,
        "intent/.ocuroot-store\nintent/refs/k/@object.json\nstate/.ocuroot-store\nstate/refs/k/@object.json\n"
    );
    assert_eq!(state.list("").unwrap(), ["k"]);
    assert_eq!(intent.get("k").unwrap().unwrap().value, b"i");
}

#[test]
fn revisions_name_commits_and_say_which_keys_changed_since() {
    let dir = tempfile::tempdir().unwrap();
    let remote = bare_remote(dir.path());
    let branch = GitBranch::open(git_options(&remote, &dir.path().join("a"), "store")).unwrap();
    let state = branch.store("state", "state").unwrap();
    let intent = branch.store("intent", "intent").unwrap();
    intent
        .commit(&[put("a", "1", Expect::Absent), put("b", "1", Expect::Absent)])
        .unwrap();
    let first = intent
        .revision()
        .unwrap()
        .expect("a git store has revisions");
    assert_eq!(first, git(&remote, &["rev-parse", "store"]).trim());
    // Another agent changes one key, removes another and adds a third; a
    // state write on the same branch is not the intent store's change.
    let other = GitBranch::open(git_options(&remote, &dir.path().join("b"), "store")).unwrap();
    let other_intent = other.store("intent", "intent").unwrap();
    other_intent
        .commit(&[
            put("a", "2", Expect::Any),
            Op::delete("b", Expect::Any),
            put("c/d", "1", Expect::Absent),
        ])
        .unwrap();
    other
        .store("state", "state")
        .unwrap()
        .commit(&[put("s", "1", Expect::Absent)])
        .unwrap();
    intent.refresh().unwrap();
    let now = intent.revision().unwrap().unwrap();
    assert_eq!(now, git(&remote, &["rev-parse", "store"]).trim());
    assert_ne!(now, first);
    assert_eq!(
        intent.changed_since(&first).unwrap(),
        Some(vec!["a".to_string(), "b".to_string(), "c/d".to_string()])
    );
    assert_eq!(
        state.changed_since(&first).unwrap(),
        Some(vec!["s".to_string()])
    );
    assert_eq!(intent.changed_since(&now).unwrap(), Some(vec![]));
    // A revision it does not know, or not a revision at all: it cannot tell.
    assert_eq!(intent.changed_since(&"0".repeat(40)).unwrap(), None);
    assert_eq!(intent.changed_since("not a commit").unwrap(), None);
}

#[test]
fn a_missing_branch_is_refused_without_create_branch() {
    let dir = tempfile::tempdir().unwrap();
    let remote = bare_remote(dir.path());
    let mut options = git_options(&remote, &dir.path().join("a"), "state");
    options.create_branch = false;
    let err = GitBranch::open(options).unwrap_err();
    assert!(err.to_string().contains("create_branch is False"), "{err}");
    let options = git_options(
        &dir.path().join("missing.git"),
        &dir.path().join("a"),
        "state",
    );
    let err = GitBranch::open(options).unwrap_err();
    assert!(err.to_string().contains("missing.git"), "{err}");
}

/// The `.pack` files of a clone.
fn packs(clone: &Path) -> usize {
    std::fs::read_dir(clone.join("objects/pack"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".pack"))
        .count()
}

/// The loose objects of a clone.
fn loose(clone: &Path) -> usize {
    std::fs::read_dir(clone.join("objects"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().len() == 2)
        .map(|e| std::fs::read_dir(e.path()).unwrap().count())
        .sum()
}

#[test]
fn a_clone_of_a_path_reads_its_objects_in_place_and_small_packs_are_merged() {
    let dir = tempfile::tempdir().unwrap();
    let remote = bare_remote(dir.path());
    let home = dir.path().join("a");
    let a = agent(&remote, &home);
    let clone = a.branch().clone_dir().to_path_buf();
    for i in 0..30 {
        a.commit(&[put(&format!("k/{i}"), "1", Expect::Absent)])
            .unwrap();
    }
    drop(a);
    assert_eq!(
        (loose(&clone), packs(&clone)),
        (0, 0),
        "everything pushed is in the remote, read in place"
    );
    let a = agent(&remote, &home);
    for i in 0..30 {
        assert!(a.get(&format!("k/{i}")).unwrap().is_some(), "k/{i}");
    }
    drop(a);

    // A clone with many small packs (a network remote's: one per
    // command) has them merged when it is opened.
    let run = |args: &[&str], input: &str| -> String {
        use std::io::Write;
        let mut child = Command::new("git")
            .arg("--git-dir")
            .arg(&clone)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "git {args:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let pack_base = clone.join("objects/pack/pack");
    let blobs: Vec<String> = (0..30)
        .map(|i| {
            let blob = run(&["hash-object", "-w", "--stdin"], &format!("blob {i}"));
            run(&["pack-objects", "-q", pack_base.to_str().unwrap()], &blob);
            blob
        })
        .collect();
    assert_eq!(packs(&clone), 30);
    let a = agent(&remote, &home);
    assert!(packs(&clone) <= 2, "merged: {} packs", packs(&clone));
    for blob in &blobs {
        git(&clone, &["cat-file", "-e", blob]);
    }
    assert_eq!(a.get("k/0").unwrap().map(|e| e.value), Some(b"1".to_vec()));
}

/// The files on branch `state` of `remote`, a line each.
fn files(remote: &Path) -> String {
    git(remote, &["ls-tree", "-r", "--name-only", "state"])
}

/// The object ids a pack index lists (`git show-index`).
fn pack_objects(idx: &Path) -> usize {
    let out = Command::new("git")
        .arg("show-index")
        .stdin(std::fs::File::open(idx).unwrap())
        .output()
        .expect("run git show-index");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).lines().count()
}

#[test]
fn a_new_clone_is_a_few_files_with_its_remote_and_no_hooks() {
    let dir = tempfile::tempdir().unwrap();
    let remote = bare_remote(dir.path());
    let home = dir.path().join("a");
    // Several agents sharing a home make the same clone at once.
    let agents: Vec<GitStore> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4).map(|_| s.spawn(|| agent(&remote, &home))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let clone = agents[0].branch().clone_dir().to_path_buf();
    for (i, a) in agents.iter().enumerate() {
        a.commit(&[put(&format!("k/{i}"), "1", Expect::Absent)])
            .unwrap();
    }
    assert!(!clone.join("hooks").exists(), "no hook samples");
    assert_eq!(
        git(&clone, &["config", "remote.origin.url"]).trim(),
        remote.to_string_lossy()
    );
    assert_eq!(git(&clone, &["config", "pack.deltaCacheSize"]).trim(), "1");
    let siblings: Vec<String> = std::fs::read_dir(clone.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(siblings.len(), 1, "no temporary clone left: {siblings:?}");
    drop(agents);
    let a = agent(&remote, &home);
    assert_eq!(a.list("k/").unwrap().len(), 4);
}

#[test]
fn a_push_to_a_path_remote_sends_only_the_objects_it_made() {
    let dir = tempfile::tempdir().unwrap();
    let remote = bare_remote(dir.path());
    let a = agent(&remote, &dir.path().join("a"));
    let many: Vec<Op> = (0..200)
        .map(|i| put(&format!("pkg{}/run/{i}", i % 10), "v", Expect::Absent))
        .collect();
    a.commit(&many).unwrap();
    a.commit(&[put("pkg3/run/new", "v", Expect::Absent)])
        .unwrap();
    let newest = std::fs::read_dir(remote.join("objects/pack"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "idx"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap())
        .unwrap();
    // The commit, its root tree, the trees along refs/pkg3/run/new, the blob.
    let sent = pack_objects(&newest);
    assert!(sent <= 8, "the last push sent {sent} objects");
    git(&remote, &["fsck", "--strict", "--no-dangling"]);
}

#[test]
fn a_path_remote_keeps_few_packs_and_its_readers_survive_the_merges() {
    let dir = tempfile::tempdir().unwrap();
    let remote = bare_remote(dir.path());
    let a = agent(&remote, &dir.path().join("a"));
    let b = agent(&remote, &dir.path().join("b"));
    for i in 0..60 {
        // One push each; `b` reads (and so opens packs) as they come, and
        // writes on trees whose packs `a` has merged and removed since.
        a.commit(&[put(&format!("a/{i}"), "1", Expect::Absent)])
            .unwrap();
        if i % 7 == 0 {
            b.refresh().unwrap();
            assert_eq!(b.list("a/").unwrap().len(), i + 1);
            b.commit(&[put(&format!("b/{i}"), "1", Expect::Absent)])
                .unwrap();
        }
    }
    let packs = packs(&remote);
    assert!(packs <= 17, "{packs} packs in the remote");
    b.refresh().unwrap();
    for i in 0..60 {
        assert!(b.get(&format!("a/{i}")).unwrap().is_some(), "a/{i}");
    }
    assert_eq!(b.list("b/").unwrap().len(), 9);
    git(&remote, &["fsck", "--strict", "--no-dangling"]);
    assert_eq!(
        git(&remote, &["rev-list", "--merges", "state"]),
        "",
        "a linear history"
    );
}

#[test]
fn batches_built_on_a_superseded_founding_batch_are_not_published() {
    use ocuroot_core::store::Superseded;
    let dir = tempfile::tempdir().unwrap();
    let remote = bare_remote(dir.path());
    let home_a = dir.path().join("a");
    let a = agent(&remote, &home_a);
    let b = agent(&remote, &dir.path().join("b"));
    let create = |store: &GitStore, key: &str, value: &str, durability: Durability| {
        store.commit_with(&[put(key, value, Expect::Absent)], durability)
    };
    // `a` creates r1 (founding: it waits for the next push), `b` creates it
    // first, then `a` claims work in r1 (shared: pushed now).
    create(&a, "pkg/r1", "a's", Durability::Founding).unwrap();
    create(&a, "note", "deferred", Durability::Deferred).unwrap();
    b.commit(&[put("pkg/r1", "b's", Expect::Absent)]).unwrap();
    let err = create(&a, "pkg/r1/claim", "a", Durability::Shared).unwrap_err();
    assert!(Superseded::caused(&err), "{err}");
    assert!(
        err.to_string().contains("another agent wrote first"),
        "{err}"
    );
    let listed = files(&remote);
    assert!(
        !listed.contains("claim"),
        "the claim was not published: {listed}"
    );
    assert!(
        !listed.contains("note"),
        "nor anything after the founding batch: {listed}"
    );
    assert_eq!(
        a.get("pkg/r1").unwrap().map(|e| e.value),
        Some(b"b's".to_vec())
    );
    // Nothing of it is left for a later command to push.
    drop(a);
    let a = agent(&remote, &home_a);
    drop(a);
    let listed = files(&remote);
    assert!(
        !listed.contains("claim") && !listed.contains("note"),
        "{listed}"
    );
    // A founding batch nobody contests rides on the next push.
    let a = agent(&remote, &home_a);
    let pushes = a.branch().stats().pushes;
    create(&a, "pkg/r2", "a's", Durability::Founding).unwrap();
    create(&a, "pkg/r2/claim", "a", Durability::Shared).unwrap();
    assert_eq!(a.branch().stats().pushes, pushes + 1);
    let listed = files(&remote);
    assert!(listed.contains("pkg/r2/claim"), "{listed}");
}

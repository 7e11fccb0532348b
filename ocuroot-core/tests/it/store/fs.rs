//! The directory store: layout compatible with the original Ocuroot, the
//! marker file, directory clean-up and crash recovery from the journal.

use std::fs;
use std::path::Path;

use ocuroot_core::ErrorKind;
use ocuroot_core::store::{Expect, FsStore, Op, Store, Version};

use crate::store::common::tree;

const KEY: &str = "github.com/org/repo/-/pkg.ocu.star/@r1/deploy/staging";

#[test]
fn layout_matches_the_original() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path(), "state").unwrap();
    assert_eq!(store.describe(), format!("fs:{}", dir.path().display()));
    assert_eq!(store.tag(), "state");
    let marker: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.path().join(".ocuroot-store")).unwrap()).unwrap();
    assert_eq!(
        marker,
        serde_json::json!({"version": 3, "Tags": {"state": {}}})
    );

    store
        .commit(&[Op::put(
            KEY,
            b"{\"kind\":\"ref\",\"body\":1}".to_vec(),
            Expect::Absent,
        )])
        .unwrap();
    let file = dir.path().join("refs").join(KEY).join("@object.json");
    assert_eq!(store.object_path(KEY).unwrap(), file);
    assert_eq!(fs::read(&file).unwrap(), b"{\"kind\":\"ref\",\"body\":1}");
    // No temporary or journal files are left behind.
    let leftovers: Vec<_> = tree(dir.path())
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("tmp") || p.to_string_lossy().contains("journal"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn files_written_by_others_have_versions() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path(), "state").unwrap();
    // As the original Ocuroot wrote them: plain files, pretty JSON, extra fields.
    let doc = b"{\n  \"kind\": \"ref\",\n  \"body_type\": \"map[string]interface {}\",\n  \"body\": {}\n}";
    let path = dir.path().join("refs/repo/-/pkg/@r1/@object.json");
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, doc).unwrap();
    let entry = store.get("repo/-/pkg/@r1").unwrap().unwrap();
    assert_eq!(entry.value, doc);
    assert_eq!(entry.version, Version::of_bytes(doc));
    assert_eq!(store.list("repo/").unwrap(), vec!["repo/-/pkg/@r1"]);
    // CAS against that version works.
    store
        .commit(&[Op::put(
            "repo/-/pkg/@r1",
            b"{}".to_vec(),
            Expect::Version(entry.version),
        )])
        .unwrap();
    // Editing the file by hand changes the version.
    let v = store.get("repo/-/pkg/@r1").unwrap().unwrap().version;
    fs::write(&path, b"{\"edited\":true}").unwrap();
    assert_ne!(store.get("repo/-/pkg/@r1").unwrap().unwrap().version, v);
    assert!(
        store
            .commit(&[Op::delete("repo/-/pkg/@r1", Expect::Version(v))])
            .unwrap_err()
            .is_conflict()
    );
}

#[test]
fn list_ignores_stray_files_and_directories() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path(), "state").unwrap();
    store
        .commit(&[Op::put("a/b", b"1".to_vec(), Expect::Any)])
        .unwrap();
    fs::write(dir.path().join("refs/a/README"), b"hi").unwrap();
    fs::write(dir.path().join("refs/a/b/@object.json.tmp"), b"partial").unwrap();
    fs::create_dir_all(dir.path().join("refs/a/empty/dirs")).unwrap();
    fs::create_dir_all(dir.path().join("dependencies/dependencies/x")).unwrap();
    assert_eq!(store.list("").unwrap(), vec!["a/b"]);
    assert_eq!(store.list("a/").unwrap(), vec!["a/b"]);
}

#[test]
fn delete_removes_empty_directories_up_to_refs() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path(), "state").unwrap();
    store
        .commit(&[
            Op::put("a/b/c/d", b"1".to_vec(), Expect::Any),
            Op::put("a/x", b"2".to_vec(), Expect::Any),
        ])
        .unwrap();
    store.commit(&[Op::delete("a/b/c/d", Expect::Any)]).unwrap();
    assert!(!dir.path().join("refs/a/b").exists());
    assert!(dir.path().join("refs/a/x/@object.json").exists());
    store.commit(&[Op::delete("a/x", Expect::Any)]).unwrap();
    assert!(!dir.path().join("refs/a").exists());
    assert!(dir.path().join("refs").is_dir(), "refs/ itself stays");
    // A directory that still holds a deeper key stays.
    store
        .commit(&[
            Op::put("p/q", b"1".to_vec(), Expect::Any),
            Op::put("p/q/r", b"2".to_vec(), Expect::Any),
        ])
        .unwrap();
    store.commit(&[Op::delete("p/q", Expect::Any)]).unwrap();
    assert!(dir.path().join("refs/p/q/r/@object.json").exists());
    assert!(!dir.path().join("refs/p/q/@object.json").exists());
}

#[test]
fn marker_versions_and_tags() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join(".ocuroot-store"),
        br#"{"version": 2, "Tags": {"state": {}}}"#,
    )
    .unwrap();
    let err = FsStore::open(dir.path(), "state").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Store);
    let msg = err.to_string();
    assert!(msg.contains("incompatible store version 2"), "{msg}");
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");

    fs::write(dir.path().join(".ocuroot-store"), b"not json").unwrap();
    assert_eq!(
        FsStore::open(dir.path(), "state").unwrap_err().kind(),
        ErrorKind::Store
    );

    // An existing marker (as the original writes it, compact) is kept; a
    // missing tag is added, other fields preserved.
    fs::write(
        dir.path().join(".ocuroot-store"),
        br#"{"version":3,"Tags":{"intent":{}},"x":1}"#,
    )
    .unwrap();
    FsStore::open(dir.path(), "intent").unwrap();
    assert_eq!(
        fs::read(dir.path().join(".ocuroot-store")).unwrap(),
        br#"{"version":3,"Tags":{"intent":{}},"x":1}"#,
        "unchanged when the tag is there"
    );
    FsStore::open(dir.path(), "state").unwrap();
    let marker: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.path().join(".ocuroot-store")).unwrap()).unwrap();
    assert_eq!(
        marker,
        serde_json::json!({"version": 3, "Tags": {"intent": {}, "state": {}}, "x": 1})
    );
}

#[test]
fn reopen_sees_the_data() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = FsStore::open(dir.path(), "intent").unwrap();
        store
            .commit(&[Op::put("a/b", b"1".to_vec(), Expect::Absent)])
            .unwrap();
    }
    let store = FsStore::open(dir.path(), "intent").unwrap();
    assert_eq!(store.get("a/b").unwrap().unwrap().value, b"1");
}

fn write_journal(dir: &Path, journal: serde_json::Value) {
    fs::write(
        dir.join(".journal.json"),
        serde_json::to_vec(&journal).unwrap(),
    )
    .unwrap();
}

#[test]
fn an_interrupted_batch_is_completed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = FsStore::open(dir.path(), "state").unwrap();
        store
            .commit(&[
                Op::put("pkg/@r1/old", b"old".to_vec(), Expect::Any),
                Op::put("pkg/@r1/a", b"stale".to_vec(), Expect::Any),
            ])
            .unwrap();
    }
    // A crash after the journal was written and half of it applied: `a` is
    // written, `b` and the delete are not.
    fs::write(dir.path().join("refs/pkg/@r1/a/@object.json"), b"{\"n\":1}").unwrap();
    write_journal(
        dir.path(),
        serde_json::json!({"format": 1, "ops": [
            {"op": "put", "key": "pkg/@r1/a", "text": "{\"n\":1}"},
            {"op": "put", "key": "pkg/@r1/b", "bytes": [0, 159, 146, 150]},
            {"op": "delete", "key": "pkg/@r1/old"},
        ]}),
    );
    // A journal temp file that never got renamed is a batch that never started.
    fs::write(
        dir.path().join(".journal.json.tmp"),
        b"{\"format\":1,\"ops\":[{\"op\":\"put\"",
    )
    .unwrap();

    let store = FsStore::open(dir.path(), "state").unwrap();
    assert_eq!(store.get("pkg/@r1/a").unwrap().unwrap().value, b"{\"n\":1}");
    assert_eq!(
        store.get("pkg/@r1/b").unwrap().unwrap().value,
        vec![0, 159, 146, 150]
    );
    assert_eq!(store.get("pkg/@r1/old").unwrap(), None);
    assert!(!dir.path().join(".journal.json").exists());
    assert!(!dir.path().join(".journal.json.tmp").exists());
    assert!(!dir.path().join("refs/pkg/@r1/old").exists());
}

#[test]
fn a_reader_completes_a_batch_left_by_a_crashed_process() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path(), "state").unwrap();
    store
        .commit(&[Op::put("x/1", b"before".to_vec(), Expect::Any)])
        .unwrap();
    // Another process died mid-batch while this store was open.
    write_journal(
        dir.path(),
        serde_json::json!({"format": 1, "ops": [
            {"op": "put", "key": "x/1", "text": "after"},
            {"op": "put", "key": "x/2", "text": "after"},
        ]}),
    );
    let got = store.get_many(&["x/1", "x/2"]).unwrap();
    assert_eq!(got[0].as_ref().unwrap().value, b"after");
    assert_eq!(got[1].as_ref().unwrap().value, b"after");
    assert!(!dir.path().join(".journal.json").exists());
}

#[test]
fn a_writer_completes_a_pending_batch_before_checking() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path(), "state").unwrap();
    write_journal(
        dir.path(),
        serde_json::json!({"format": 1, "ops": [{"op": "put", "key": "k", "text": "journal"}]}),
    );
    // `k` exists once the journal is applied, so creating it conflicts.
    let err = store
        .commit(&[Op::put("k", b"mine".to_vec(), Expect::Absent)])
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert_eq!(store.get("k").unwrap().unwrap().value, b"journal");
}

#[test]
fn bad_journals_are_refused() {
    for (journal, what) in [
        (
            serde_json::json!({"format": 1, "ops": [{"op": "put", "key": "../../escape", "text": "x"}]}),
            "a key outside the store",
        ),
        (
            serde_json::json!({"format": 99, "ops": []}),
            "an unknown format",
        ),
        (
            serde_json::json!({"format": 1, "ops": [{"op": "put", "key": "k"}]}),
            "a put without a value",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let store_dir = dir.path().join("store");
        // A store is created by its first write.
        FsStore::open(&store_dir, "state")
            .unwrap()
            .commit(&[Op::put("init", b"1".to_vec(), Expect::Absent)])
            .unwrap();
        write_journal(&store_dir, journal);
        let before = tree(dir.path());
        assert!(FsStore::open(&store_dir, "state").is_err(), "{what}");
        assert_eq!(tree(dir.path()), before, "{what}: nothing written");
    }
}

#[test]
fn a_store_is_created_by_its_first_write_not_by_opening_or_reading() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let store = FsStore::open(&store_dir, "state").unwrap();
    assert_eq!(store.get("a/b").unwrap(), None);
    assert!(store.list("").unwrap().is_empty());
    assert!(
        !store_dir.exists(),
        "opening and reading must not create the store"
    );
    store
        .commit(&[Op::put("a/b", b"1".to_vec(), Expect::Absent)])
        .unwrap();
    assert!(store_dir.join(".ocuroot-store").is_file());
    assert_eq!(store.get("a/b").unwrap().unwrap().value, b"1");
}

//! The directory store: layout compatible with the original Ocuroot, the
//! marker file, directory clean-up, and the log: reads through it, crash
//! recovery, the check after a restart, checkpoints and the cost of a commit
//! in fsyncs.

use std::fs;
use std::io::Write;
use std::path::Path;

use ocuroot_core::ErrorKind;
use ocuroot_core::store::{Durability, Expect, FsStore, Op, Store, Version};

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
    // The batch is in the log; a checkpoint writes the file.
    assert!(!file.exists());
    store.checkpoint().unwrap();
    assert_eq!(fs::read(&file).unwrap(), b"{\"kind\":\"ref\",\"body\":1}");
    // No temporary or journal files are left behind, only the log.
    let leftovers: Vec<_> = tree(dir.path())
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("tmp") || p.to_string_lossy().contains("journal"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(dir.path().join(".wal").is_file());
    assert!(!dir.path().join(".lock").exists());
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
    // Once checkpointed, editing the file by hand changes the version.
    store.checkpoint().unwrap();
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
    store.checkpoint().unwrap();
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
    // Checkpointing after every commit, so each commit writes the files.
    let store = FsStore::builder(dir.path(), "state")
        .checkpoint_bytes(0)
        .open()
        .unwrap();
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

/// The size of the store's log.
pub(crate) fn wal_len(dir: &Path) -> u64 {
    fs::metadata(dir.join(".wal")).unwrap().len()
}

/// CRC-32 (IEEE), to build logs by hand.
fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

/// This machine's boot id as the store records it (zero where unknown).
pub(crate) fn this_boot() -> [u8; 16] {
    let text = fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let hex: String = text.trim().chars().filter(|c| *c != '-').collect();
    let mut id = [0u8; 16];
    if hex.len() == 32 {
        for (i, b) in id.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
        }
    }
    id
}

/// The records of a log: `[len][crc][payload]` for each payload.
fn records(payloads: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in payloads {
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32(p).to_le_bytes());
        out.extend_from_slice(p);
    }
    out
}

/// A header as documented on `FsStore`, format 2.
fn header(boot: [u8; 16], generation: u64, end: u64) -> Vec<u8> {
    let mut h = vec![0u8; 64];
    h[0..8].copy_from_slice(b"OCUWAL1\0");
    h[8..12].copy_from_slice(&2u32.to_le_bytes());
    h[12..28].copy_from_slice(&boot);
    h[28..36].copy_from_slice(&generation.to_le_bytes());
    h[36..44].copy_from_slice(&end.to_le_bytes());
    let crc = crc32(&h[..60]);
    h[60..64].copy_from_slice(&crc.to_le_bytes());
    h
}

/// A format 2 log holding `payloads`.
pub(crate) fn hand_built_wal(boot: [u8; 16], payloads: &[Vec<u8>]) -> Vec<u8> {
    let records = records(payloads);
    let mut wal = header(boot, 7, 64 + records.len() as u64);
    wal.extend(records);
    wal
}

pub(crate) fn put(key: &str, text: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"ops": [{"op": "put", "key": key, "text": text}]}))
        .unwrap()
}

/// A store with `init` committed, dropped (as by a process that exits).
pub(crate) fn store_with(dir: &Path, init: &[Op]) {
    FsStore::open(dir, "state").unwrap().commit(init).unwrap();
}

/// `init` committed and checkpointed: in the files, with an empty log.
fn files_with(dir: &Path, init: &[Op]) {
    let store = FsStore::open(dir, "state").unwrap();
    store.commit(init).unwrap();
    store.checkpoint().unwrap();
}

#[test]
fn batches_are_read_from_the_log_until_a_checkpoint_writes_the_files() {
    let dir = tempfile::tempdir().unwrap();
    // Files as another tool (or a checkpoint) left them.
    files_with(
        dir.path(),
        &[
            Op::put("a/old", b"file".to_vec(), Expect::Any),
            Op::put("a/edited", b"file".to_vec(), Expect::Any),
        ],
    );
    assert_eq!(wal_len(dir.path()), 64);

    let store = FsStore::open(dir.path(), "state").unwrap();
    store
        .commit(&[
            Op::put("a/new", b"logged".to_vec(), Expect::Absent),
            Op::put("a/edited", b"logged".to_vec(), Expect::Any),
            Op::delete("a/old", Expect::Any),
        ])
        .unwrap();
    // No file changed: the log holds the batch.
    assert!(!store.object_path("a/new").unwrap().exists());
    assert_eq!(
        fs::read(store.object_path("a/old").unwrap()).unwrap(),
        b"file"
    );
    assert!(wal_len(dir.path()) > 64);
    // Every instance (every process) reads through the log.
    let other = FsStore::open(dir.path(), "state").unwrap();
    for s in [&store, &other] {
        assert_eq!(s.get("a/new").unwrap().unwrap().value, b"logged");
        assert_eq!(s.get("a/old").unwrap(), None);
        assert_eq!(s.list("a/").unwrap(), vec!["a/edited", "a/new"]);
        assert!(s.commit(&[Op::check("a/old", Expect::Absent)]).is_ok());
    }
    // A hand edit of a logged key is not seen: the log wins, and the
    // checkpoint overwrites it.
    fs::write(store.object_path("a/edited").unwrap(), b"by hand").unwrap();
    assert_eq!(other.get("a/edited").unwrap().unwrap().value, b"logged");

    other.checkpoint().unwrap();
    assert_eq!(wal_len(dir.path()), 64);
    assert_eq!(
        fs::read(store.object_path("a/new").unwrap()).unwrap(),
        b"logged"
    );
    assert_eq!(
        fs::read(store.object_path("a/edited").unwrap()).unwrap(),
        b"logged"
    );
    assert!(!dir.path().join("refs/a/old").exists());
    // The first instance notices the checkpoint (a new generation) and reads
    // the files; an edit is seen now that the key is not logged.
    fs::write(store.object_path("a/edited").unwrap(), b"by hand").unwrap();
    assert_eq!(store.get("a/edited").unwrap().unwrap().value, b"by hand");
    assert_eq!(store.list("a/").unwrap(), vec!["a/edited", "a/new"]);
    // And goes on logging in the new generation, seen by the other.
    store
        .commit(&[Op::put("a/later", b"1".to_vec(), Expect::Absent)])
        .unwrap();
    assert_eq!(other.get("a/later").unwrap().unwrap().value, b"1");
}

#[test]
fn bytes_past_the_end_of_the_log_are_ignored_and_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    store_with(dir.path(), &[Op::put("k", b"1".to_vec(), Expect::Any)]);
    let committed = wal_len(dir.path());
    // A writer died while appending its record, before it updated the
    // header: the record is past the log's end.
    let mut wal = fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join(".wal"))
        .unwrap();
    wal.write_all(&records(&[put("k", "torn")])[..20]).unwrap();
    drop(wal);
    let store = FsStore::open(dir.path(), "state").unwrap();
    assert_eq!(store.get("k").unwrap().unwrap().value, b"1");
    store
        .commit(&[Op::put("j", b"2".to_vec(), Expect::Absent)])
        .unwrap();
    assert!(wal_len(dir.path()) > committed);
    // The new record overwrote the leftovers, and survives the check after
    // a restart.
    store.set_wal_boot_id([9; 16]).unwrap();
    drop(store);
    let store = FsStore::open(dir.path(), "state").unwrap();
    assert_eq!(store.get("k").unwrap().unwrap().value, b"1");
    assert_eq!(store.get("j").unwrap().unwrap().value, b"2");
}

#[test]
fn after_a_restart_the_log_is_cut_before_its_first_damaged_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path(), "state").unwrap();
    store
        .commit(&[Op::put("a", b"1".to_vec(), Expect::Absent)])
        .unwrap();
    let first = wal_len(dir.path());
    store
        .commit(&[Op::put("b", b"2".to_vec(), Expect::Absent)])
        .unwrap();
    store
        .commit(&[Op::put("c", b"3".to_vec(), Expect::Absent)])
        .unwrap();
    drop(store);
    // The machine crashed: the second record never reached the disk whole
    // (its commit never returned, nor did any after it).
    let mut wal = fs::read(dir.path().join(".wal")).unwrap();
    wal[first as usize + 12] ^= 0x55;
    fs::write(dir.path().join(".wal"), &wal).unwrap();

    // In this boot, that is damage: an error naming the file and offset,
    // and nothing is cut.
    let err = FsStore::open(dir.path(), "state").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Store);
    assert!(err.to_string().contains("is damaged"), "{err}");
    assert!(
        err.to_string().contains(&format!("offset {first}")),
        "{err}"
    );
    assert_eq!(fs::read(dir.path().join(".wal")).unwrap(), wal);

    // After a restart (another boot id), it is cut there.
    let mut restarted = wal.clone();
    restarted[..64].copy_from_slice(&{
        let end = u64::from_le_bytes(wal[36..44].try_into().unwrap());
        let generation = u64::from_le_bytes(wal[28..36].try_into().unwrap());
        header([1; 16], generation, end)
    });
    fs::write(dir.path().join(".wal"), &restarted).unwrap();
    let store = FsStore::open(dir.path(), "state").unwrap();
    assert_eq!(store.get("a").unwrap().unwrap().value, b"1");
    assert_eq!(store.get("b").unwrap(), None);
    assert_eq!(store.get("c").unwrap(), None);
    assert_eq!(wal_len(dir.path()), first);
    let wal = fs::read(dir.path().join(".wal")).unwrap();
    assert_eq!(wal[12..28], this_boot(), "stamped with this boot");
    // The log goes on from there.
    store
        .commit(&[Op::put("b", b"again".to_vec(), Expect::Absent)])
        .unwrap();
    drop(store);
    let store = FsStore::open(dir.path(), "state").unwrap();
    assert_eq!(store.get("b").unwrap().unwrap().value, b"again");
}

#[test]
fn the_log_format_is_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    files_with(dir.path(), &[Op::put("old", b"1".to_vec(), Expect::Any)]);
    // A log built by hand from the documentation.
    let first = serde_json::to_vec(&serde_json::json!({"ops": [
        {"op": "put", "key": "pkg/@r1", "text": "{\"kind\":\"ref\",\"body\":{}}"},
        {"op": "put", "key": "pkg/@r1/x", "bytes": [0, 255]},
        {"op": "delete", "key": "old"},
    ]}))
    .unwrap();
    let second = serde_json::to_vec(
        &serde_json::json!({"ops": [{"op": "put", "key": "pkg/@r1/x", "text": "2"}]}),
    )
    .unwrap();
    fs::write(
        dir.path().join(".wal"),
        hand_built_wal(this_boot(), &[first, second]),
    )
    .unwrap();
    let store = FsStore::open(dir.path(), "state").unwrap();
    assert_eq!(
        store.get("pkg/@r1").unwrap().unwrap().value,
        b"{\"kind\":\"ref\",\"body\":{}}"
    );
    assert_eq!(store.get("pkg/@r1/x").unwrap().unwrap().value, b"2");
    assert_eq!(store.get("old").unwrap(), None);
    store.checkpoint().unwrap();
    assert_eq!(
        fs::read(store.object_path("pkg/@r1/x").unwrap()).unwrap(),
        b"2"
    );
    assert!(!dir.path().join("refs/old").exists());

    // And what a commit logs reads back the same way.
    store
        .commit(&[
            Op::put("t", b"text".to_vec(), Expect::Any),
            Op::put("u", vec![0xff, 0], Expect::Any),
            Op::delete("pkg/@r1", Expect::Any),
        ])
        .unwrap();
    let wal = fs::read(dir.path().join(".wal")).unwrap();
    assert_eq!(&wal[0..8], b"OCUWAL1\0");
    assert_eq!(u32::from_le_bytes(wal[8..12].try_into().unwrap()), 2);
    assert_eq!(wal[12..28], this_boot());
    assert_eq!(
        u64::from_le_bytes(wal[36..44].try_into().unwrap()),
        wal.len() as u64
    );
    assert!(wal[44..60].iter().all(|b| *b == 0));
    assert_eq!(crc32(&wal[..60]).to_le_bytes(), wal[60..64]);
    let len = u32::from_le_bytes(wal[64..68].try_into().unwrap()) as usize;
    let payload = &wal[72..72 + len];
    assert_eq!(crc32(payload).to_le_bytes(), wal[68..72]);
    let record: serde_json::Value = serde_json::from_slice(payload).unwrap();
    assert_eq!(
        record,
        serde_json::json!({"ops": [
            {"op": "delete", "key": "pkg/@r1"},
            {"op": "put", "key": "t", "text": "text"},
            {"op": "put", "key": "u", "bytes": [255, 0]},
        ]})
    );
}

#[test]
fn a_log_of_another_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    files_with(dir.path(), &[Op::put("old", b"1".to_vec(), Expect::Any)]);
    // Format 1, from before the first release: not read, not changed.
    let body = records(&[put("a", "1")]);
    let mut h = vec![0u8; 64];
    h[0..8].copy_from_slice(b"OCUWAL1\0");
    h[8..12].copy_from_slice(&1u32.to_le_bytes());
    h[12..28].copy_from_slice(&this_boot());
    h[36..44].copy_from_slice(&(64 + body.len() as u64).to_le_bytes());
    let crc = crc32(&h[..60]);
    h[60..64].copy_from_slice(&crc.to_le_bytes());
    h.extend(body);
    fs::write(dir.path().join(".wal"), &h).unwrap();

    let err = FsStore::open(dir.path(), "state")
        .and_then(|s| s.get("a"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Store);
    let text = err.to_string();
    assert!(
        text.contains("has format 1; this Ocuroot reads format 2"),
        "{text}"
    );
    assert!(text.contains(".wal"), "{text}");
    assert_eq!(fs::read(dir.path().join(".wal")).unwrap(), h);
}

#[test]
fn bad_logs_are_refused() {
    let good = put("k", "x");
    let cases: Vec<(Vec<u8>, &str, &str)> = vec![
        (
            hand_built_wal(
                [0; 16],
                &[serde_json::to_vec(
                    &serde_json::json!({"ops": [{"op": "put", "key": "../../escape", "text": "x"}]}),
                )
                .unwrap()],
            ),
            "a key outside the store",
            "offset 64",
        ),
        (
            hand_built_wal(
                this_boot(),
                &[serde_json::to_vec(&serde_json::json!({"ops": [{"op": "put", "key": "k"}]}))
                    .unwrap()],
            ),
            "a put without a value",
            "without exactly one",
        ),
        (
            hand_built_wal([0; 16], &[b"not json".to_vec()]),
            "a record that is not JSON",
            "is not a batch",
        ),
        (
            {
                let mut wal = hand_built_wal(this_boot(), &[good.clone(), good.clone()]);
                wal[80] ^= 0x20;
                wal
            },
            "a damaged record in this boot",
            "is damaged",
        ),
        (
            {
                let mut wal = hand_built_wal(this_boot(), std::slice::from_ref(&good));
                wal[30] ^= 1;
                wal
            },
            "a damaged header",
            "header checksum mismatch",
        ),
        (
            {
                let mut wal = hand_built_wal(this_boot(), &[]);
                wal[0] = b'X';
                wal
            },
            "another file",
            "bad magic",
        ),
        (
            {
                let mut wal = hand_built_wal(this_boot(), &[]);
                wal[8] = 9;
                let crc = crc32(&wal[..60]);
                wal[60..64].copy_from_slice(&crc.to_le_bytes());
                wal
            },
            "a later format",
            "has format 9",
        ),
    ];
    for (wal, what, message) in cases {
        let dir = tempfile::tempdir().unwrap();
        let store_dir = dir.path().join("store");
        store_with(
            &store_dir,
            &[Op::put("init", b"1".to_vec(), Expect::Absent)],
        );
        fs::write(store_dir.join(".wal"), wal).unwrap();
        let before = tree(dir.path());
        let err = FsStore::open(&store_dir, "state").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Store, "{what}: {err}");
        let msg = err.to_string();
        assert!(msg.contains(message), "{what}: {msg}");
        assert!(
            msg.contains(&store_dir.join(".wal").display().to_string()),
            "{what}: {msg}"
        );
        assert_eq!(tree(dir.path()), before, "{what}: nothing written");
        assert!(!dir.path().join("escape").exists());
    }
}

#[test]
fn checkpoints_keep_the_data_and_shrink_the_log() {
    for fsync in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::builder(dir.path(), "state")
            .fsync(fsync)
            .checkpoint_bytes(4096)
            .open()
            .unwrap();
        let mut model = std::collections::BTreeMap::new();
        let mut checkpoints = 0;
        for i in 0..200u32 {
            let key = format!("k/{}/v", i % 17);
            let value = format!("{{\"i\":{i},\"pad\":\"{}\"}}", "x".repeat(100)).into_bytes();
            let mut ops = vec![Op::put(&key, value.clone(), Expect::Any)];
            model.insert(key, value);
            if i % 3 == 0 {
                let gone = format!("k/{}/v", (i + 5) % 17);
                ops.push(Op::delete(&gone, Expect::Any));
                model.remove(&gone);
            }
            let before = wal_len(dir.path()).max(64);
            store.commit(&ops).unwrap();
            let after = wal_len(dir.path());
            if after == 64 {
                checkpoints += 1;
            } else {
                assert!(after > before, "the log grows until a checkpoint");
            }
            assert!(after < 4096 + 1024, "{after}");
        }
        assert!(checkpoints >= 5, "{checkpoints}");
        let check = |store: &FsStore| {
            let keys: Vec<&String> = model.keys().collect();
            assert_eq!(store.list("").unwrap().iter().collect::<Vec<_>>(), keys);
            for (k, v) in &model {
                assert_eq!(&store.get(k).unwrap().unwrap().value, v, "{k}");
            }
        };
        check(&store);
        store.checkpoint().unwrap();
        assert_eq!(wal_len(dir.path()), 64);
        check(&store);
        // The files alone hold everything.
        fs::remove_file(dir.path().join(".wal")).unwrap();
        check(&FsStore::open(dir.path(), "state").unwrap());

        // At 0, every commit checkpoints.
        let store = FsStore::builder(dir.path(), "state")
            .fsync(fsync)
            .checkpoint_bytes(0)
            .open()
            .unwrap();
        store
            .commit(&[Op::put("z", b"1".to_vec(), Expect::Any)])
            .unwrap();
        assert_eq!(wal_len(dir.path()), 64);
        assert_eq!(fs::read(store.object_path("z").unwrap()).unwrap(), b"1");
        assert_eq!(store.get("z").unwrap().unwrap().value, b"1");
    }
    // Checkpointing a store that does not exist creates nothing.
    let dir = tempfile::tempdir().unwrap();
    FsStore::open(dir.path().join("none"), "state")
        .unwrap()
        .checkpoint()
        .unwrap();
    assert!(!dir.path().join("none").exists());
}

#[test]
fn a_commit_costs_one_fsync_and_a_deferred_one_none() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path().join("s"), "state").unwrap();
    store
        .commit(&[Op::put("init", b"1".to_vec(), Expect::Absent)])
        .unwrap();
    let syncs = |f: &dyn Fn()| {
        let before = store.sync_count();
        f();
        store.sync_count() - before
    };
    // Six new keys in new directories.
    let six: Vec<Op> = (0..6)
        .map(|i| {
            Op::put(
                format!("pkg/@r1/task/t{i}/status"),
                b"{}".to_vec(),
                Expect::Absent,
            )
        })
        .collect();
    assert_eq!(syncs(&|| store.commit(&six).unwrap()), 1);
    // Replacements and deletes, with expectations.
    let v = store
        .get("pkg/@r1/task/t0/status")
        .unwrap()
        .unwrap()
        .version;
    let mixed = vec![
        Op::put("pkg/@r1/task/t0/status", b"1".to_vec(), Expect::Version(v)),
        Op::put("pkg/@r1/task/t1/status", b"1".to_vec(), Expect::Any),
        Op::put("pkg/@r1/task/t2/status", b"1".to_vec(), Expect::Any),
        Op::delete("pkg/@r1/task/t3/status", Expect::Any),
        Op::delete("pkg/@r1/task/t4/status", Expect::Any),
        Op::delete("pkg/@r1/task/t5/status", Expect::Any),
    ];
    assert_eq!(syncs(&|| store.commit(&mixed).unwrap()), 1);
    // Reads, checks and conflicts cost nothing.
    assert_eq!(
        syncs(&|| {
            store.get("init").unwrap();
            store.get_many(&["init", "pkg/@r1/task/t0/status"]).unwrap();
            store.list("").unwrap();
            store.commit(&[Op::check("init", Expect::Any)]).unwrap();
            store
                .commit(&[Op::put("init", b"2".to_vec(), Expect::Absent)])
                .unwrap_err();
        }),
        0
    );
    // A deferred commit costs nothing; the next durable one covers it.
    assert_eq!(
        syncs(&|| store
            .commit_with(
                &[Op::put("claim", b"1".to_vec(), Expect::Absent)],
                Durability::Deferred
            )
            .unwrap()),
        0
    );
    assert_eq!(store.get("claim").unwrap().unwrap().value, b"1");
    assert_eq!(
        syncs(&|| store
            .commit(&[Op::put("one", b"1".to_vec(), Expect::Any)])
            .unwrap()),
        1
    );
    // Store::sync makes deferred commits durable, once.
    let deferred = |key: &str| {
        store
            .commit_with(
                &[Op::put(key, b"1".to_vec(), Expect::Any)],
                Durability::Deferred,
            )
            .unwrap()
    };
    deferred("two");
    assert_eq!(syncs(&|| Store::sync(&store).unwrap()), 1);
    assert_eq!(syncs(&|| Store::sync(&store).unwrap()), 0);
    // A deferred commit a second after the last fsync makes one itself, so
    // nothing stays undurable for long when nobody syncs.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(syncs(&|| deferred("three")), 1);
    assert_eq!(syncs(&|| deferred("four")), 0);
    // Without fsync, nothing at all.
    let nosync = FsStore::builder(dir.path().join("n"), "state")
        .fsync(false)
        .open()
        .unwrap();
    nosync.commit(&six).unwrap();
    nosync.commit(&mixed[3..]).unwrap();
    nosync.checkpoint().unwrap();
    assert_eq!(nosync.sync_count(), 0);
}

#[test]
fn concurrent_commits_of_one_instance_share_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path(), "state").unwrap();
    store
        .commit(&[Op::put("init", b"1".to_vec(), Expect::Absent)])
        .unwrap();
    let before = store.sync_count();
    let commits = 8 * 50;
    std::thread::scope(|s| {
        for t in 0..8 {
            let store = &store;
            s.spawn(move || {
                for i in 0..50 {
                    store
                        .commit(&[Op::put(format!("t{t}/k{i}"), b"1".to_vec(), Expect::Absent)])
                        .unwrap();
                }
            });
        }
    });
    let syncs = store.sync_count() - before;
    assert!(syncs <= commits, "{syncs} fsyncs for {commits} commits");
    assert_eq!(store.list("").unwrap().len(), commits as usize + 1);
}

#[test]
fn reads_of_a_store_written_by_others_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // As the original Ocuroot leaves a store: marker and files, no log.
    fs::write(
        dir.path().join(".ocuroot-store"),
        br#"{"version":3,"Tags":{"state":{}}}"#,
    )
    .unwrap();
    let path = dir.path().join("refs/a/b/@object.json");
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, b"1").unwrap();
    let before = tree(dir.path());
    let store = FsStore::open(dir.path(), "state").unwrap();
    assert_eq!(store.get("a/b").unwrap().unwrap().value, b"1");
    assert_eq!(store.list("").unwrap(), vec!["a/b"]);
    store.commit(&[Op::check("a/b", Expect::Any)]).unwrap();
    store.checkpoint().unwrap();
    assert_eq!(tree(dir.path()), before);
    // The first write creates the log.
    store
        .commit(&[Op::put("a/c", b"2".to_vec(), Expect::Absent)])
        .unwrap();
    assert!(dir.path().join(".wal").is_file());
    // Reads of a store with a log change nothing either.
    let before: Vec<_> = tree(dir.path())
        .into_iter()
        .map(|p| {
            let data = fs::read(dir.path().join(&p)).ok();
            (p, data)
        })
        .collect();
    let store = FsStore::open(dir.path(), "state").unwrap();
    store.get_many(&["a/b", "a/c"]).unwrap();
    store.list("a/").unwrap();
    let after: Vec<_> = tree(dir.path())
        .into_iter()
        .map(|p| {
            let data = fs::read(dir.path().join(&p)).ok();
            (p, data)
        })
        .collect();
    assert_eq!(after, before);
}

#[test]
fn a_lock_file_of_an_earlier_version_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    files_with(dir.path(), &[Op::put("k", b"1".to_vec(), Expect::Any)]);
    // A `.lock` holds no data and is ignored.
    fs::write(dir.path().join(".lock"), b"").unwrap();
    let store = FsStore::open(dir.path(), "state").unwrap();
    assert_eq!(store.get("k").unwrap().unwrap().value, b"1");
    assert_eq!(fs::read(store.object_path("k").unwrap()).unwrap(), b"1");
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

#[test]
fn absent_files_are_looked_up_once_per_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path(), "state").unwrap();
    store
        .commit(&[Op::put("logged", b"1".to_vec(), Expect::Absent)])
        .unwrap();
    assert_eq!(store.get("a/b").unwrap(), None);
    // Another tool creates the file: this instance remembers it was absent...
    let path = dir.path().join("refs/a/b/@object.json");
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, b"by hand").unwrap();
    assert_eq!(store.get("a/b").unwrap(), None);
    // ...a new instance (a new command) reads it...
    let other = FsStore::open(dir.path(), "state").unwrap();
    assert_eq!(other.get("a/b").unwrap().unwrap().value, b"by hand");
    // ...and after a checkpoint (a new log generation) so does the first.
    other.checkpoint().unwrap();
    assert_eq!(store.get("a/b").unwrap().unwrap().value, b"by hand");
    assert_eq!(store.get("logged").unwrap().unwrap().value, b"1");
}

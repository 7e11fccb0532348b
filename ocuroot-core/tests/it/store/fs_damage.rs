//! The directory store with keys it cannot write back, or longer than the
//! limits allow: none stalls the store or loses a value. (Links planted in
//! a store and the leftovers of killed checkpoints: `symlinks.rs`.)

use std::fs;

use ocuroot_core::store::{Expect, FsStore, Op, Store};

use crate::store::fs::{hand_built_wal, put, store_with, this_boot, wal_len};

#[test]
fn a_key_whose_file_cannot_be_written_is_carried_over_and_the_rest_written_back() {
    let dir = tempfile::tempdir().unwrap();
    store_with(
        dir.path(),
        &[
            Op::put("blocked/key", b"1".to_vec(), Expect::Any),
            Op::put("free", b"2".to_vec(), Expect::Any),
        ],
    );
    // Something else took the path of `blocked/key`'s directory.
    fs::create_dir_all(dir.path().join("refs")).unwrap();
    fs::write(dir.path().join("refs/blocked"), "not a directory").unwrap();

    let store = FsStore::open(dir.path(), "state").unwrap();
    store
        .checkpoint()
        .expect("one bad key does not fail the checkpoint");
    assert_eq!(
        fs::read(dir.path().join("refs/free/@object.json")).unwrap(),
        b"2"
    );
    assert_eq!(store.get("blocked/key").unwrap().unwrap().value, b"1");
    let carried = wal_len(dir.path());
    assert!(carried > 64, "the blocked key stays in the log");
    assert!(
        carried < 200,
        "only the blocked key stays in the log: {carried} bytes"
    );

    // Later commits neither fail nor grow the log by re-checkpointing.
    store
        .commit(&[Op::put("free", b"3".to_vec(), Expect::Any)])
        .unwrap();
    drop(store);
    let reopened = FsStore::open(dir.path(), "state").unwrap();
    assert_eq!(reopened.get("blocked/key").unwrap().unwrap().value, b"1");
    assert_eq!(reopened.get("free").unwrap().unwrap().value, b"3");

    // Once the path is free, the next checkpoint writes it.
    fs::remove_file(dir.path().join("refs/blocked")).unwrap();
    reopened.checkpoint().unwrap();
    assert_eq!(wal_len(dir.path()), 64);
    assert_eq!(
        fs::read(dir.path().join("refs/blocked/key/@object.json")).unwrap(),
        b"1"
    );
}

#[test]
fn a_log_written_before_the_length_limits_still_replays() {
    let dir = tempfile::tempdir().unwrap();
    store_with(dir.path(), &[Op::put("a", b"0".to_vec(), Expect::Any)]);
    let long = format!("custom/{}", "x".repeat(300));
    fs::write(
        dir.path().join(".wal"),
        hand_built_wal(this_boot(), &[put(&long, "old"), put("b", "1")]),
    )
    .unwrap();
    let store = FsStore::open(dir.path(), "state").unwrap();
    assert_eq!(store.get("b").unwrap().unwrap().value, b"1");
    // The overlong key cannot be addressed any more, but it is not lost,
    // and it does not stop checkpoints.
    let e = store.get(&long).unwrap_err();
    assert!(e.message().contains("at most 200 bytes"), "{e}");
    store.checkpoint().unwrap();
    assert_eq!(
        fs::read(dir.path().join("refs/b/@object.json")).unwrap(),
        b"1"
    );
    assert!(
        wal_len(dir.path()) > 300,
        "the overlong key is kept in the log"
    );
    assert!(store.list("").unwrap().contains(&"b".to_string()));
}

#[test]
fn overlong_keys_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path().join("s"), "state").unwrap();
    let long = format!("custom/{}", "x".repeat(201));
    let e = store
        .commit(&[
            Op::put("ok", b"1".to_vec(), Expect::Any),
            Op::put(long, b"1".to_vec(), Expect::Any),
        ])
        .unwrap_err();
    assert!(e.message().contains("201 bytes long"), "{e}");
    assert!(!dir.path().join("s").exists(), "nothing was created");
}

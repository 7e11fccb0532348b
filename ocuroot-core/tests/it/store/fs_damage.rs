//! The directory store with keys it cannot write back and leftovers of
//! killed checkpoints: neither stalls the store nor loses a value.

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

/// What a probe found outside the store: the victim file untouched, and
/// nothing new in the outside directory.
struct Outside {
    dir: tempfile::TempDir,
}

const VICTIM: &[u8] = b"victim: must not change";
const PLANTED: &[u8] = br#"{"planted":"read from outside the store"}"#;

impl Outside {
    fn new() -> Outside {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("victim"), VICTIM).unwrap();
        fs::create_dir_all(dir.path().join("tree/k")).unwrap();
        fs::write(dir.path().join("tree/k/@object.json"), PLANTED).unwrap();
        fs::write(dir.path().join("planted.json"), PLANTED).unwrap();
        Outside { dir }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    fn assert_untouched(&self, probe: &str) {
        assert_eq!(fs::read(self.path("victim")).unwrap(), VICTIM, "{probe}");
        let mut names = Vec::new();
        collect(self.dir.path(), &mut names);
        names.sort();
        assert_eq!(
            names,
            [
                "planted.json",
                "tree",
                "tree/k",
                "tree/k/@object.json",
                "victim"
            ],
            "{probe}: nothing was created outside"
        );
        fn collect(dir: &std::path::Path, out: &mut Vec<String>) {
            for e in fs::read_dir(dir).unwrap() {
                let e = e.unwrap();
                let name = e.path();
                out.push(name.strip_prefix(dir).unwrap().display().to_string());
                if e.file_type().unwrap().is_dir() {
                    let mut sub = Vec::new();
                    collect(&e.path(), &mut sub);
                    let prefix = e.file_name().into_string().unwrap();
                    out.extend(sub.into_iter().map(|s| format!("{prefix}/{s}")));
                }
            }
        }
    }
}

/// Every way a symbolic link inside the store could redirect a read or a
/// write: each is refused with an error naming the link, and nothing outside
/// is read or written.
#[test]
fn symbolic_links_inside_a_store_are_never_followed() {
    use std::os::unix::fs::symlink;
    type Plant = fn(&std::path::Path, &Outside);
    let probes: &[(&str, Plant)] = &[
        ("the log", |s, o| {
            fs::remove_file(s.join(".wal")).unwrap();
            symlink(o.path("victim"), s.join(".wal")).unwrap();
        }),
        ("the marker", |s, o| {
            fs::remove_file(s.join(".ocuroot-store")).unwrap();
            symlink(o.path("victim"), s.join(".ocuroot-store")).unwrap();
        }),
        ("refs/", |s, o| {
            fs::remove_dir_all(s.join("refs")).unwrap();
            symlink(o.path("tree"), s.join("refs")).unwrap();
        }),
        ("a folder in refs/", |s, o| {
            fs::remove_dir_all(s.join("refs/rel")).unwrap();
            symlink(o.path("tree"), s.join("refs/rel")).unwrap();
        }),
        ("a document", |s, o| {
            fs::remove_file(s.join("refs/rel/k/@object.json")).unwrap();
            symlink(o.path("planted.json"), s.join("refs/rel/k/@object.json")).unwrap();
        }),
        ("a temporary file", |s, o| {
            symlink(o.path("victim"), s.join("refs/rel/k/@object.json.tmp")).unwrap();
        }),
        ("the checkpoint mark", |s, o| {
            symlink(o.path("victim"), s.join(".checkpoint")).unwrap();
        }),
    ];
    for (probe, plant) in probes {
        let outside = Outside::new();
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("store");
        {
            let store = FsStore::open(&dir, "state").unwrap();
            store
                .commit(&[Op::put("rel/k", b"1".to_vec(), Expect::Any)])
                .unwrap();
            store.checkpoint().unwrap();
        }
        plant(&dir, &outside);
        let mut errors = Vec::new();
        match FsStore::open(&dir, "state") {
            Err(e) => errors.push(e.to_string()),
            Ok(store) => {
                let steps: [(&str, &dyn Fn() -> ocuroot_core::Result<()>); 5] = [
                    ("get", &|| {
                        let got = store.get("rel/k")?;
                        let bytes = got.map(|e| e.value).unwrap_or_default();
                        assert_ne!(bytes, PLANTED, "{probe}: read from outside");
                        Ok(())
                    }),
                    ("list", &|| store.list("").map(drop)),
                    ("commit", &|| {
                        store.commit(&[
                            Op::put("rel/k", b"2".to_vec(), Expect::Any),
                            Op::put("rel/k/new", b"3".to_vec(), Expect::Any),
                        ])
                    }),
                    ("checkpoint", &|| store.checkpoint()),
                    ("get after", &|| {
                        let got = store.get("rel/k/new")?;
                        assert_ne!(got.map(|e| e.value).as_deref(), Some(PLANTED));
                        Ok(())
                    }),
                ];
                for (step, f) in steps {
                    if let Err(e) = f() {
                        errors.push(format!("{step}: {e}"));
                    }
                }
            }
        }
        outside.assert_untouched(probe);
        for e in &errors {
            assert!(
                e.contains("symbolic link"),
                "{probe}: an error that is not about the link: {e}"
            );
        }
        if !matches!(*probe, "a temporary file" | "the checkpoint mark") {
            assert!(!errors.is_empty(), "{probe}: the link was not refused");
        }
    }
}

#[test]
fn temporary_files_of_a_killed_checkpoint_are_removed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = FsStore::open(dir.path(), "state").unwrap();
        store
            .commit(&[Op::put("a/b", b"1".to_vec(), Expect::Any)])
            .unwrap();
        store.checkpoint().unwrap();
        store
            .commit(&[Op::put("a/b", b"2".to_vec(), Expect::Any)])
            .unwrap();
    }
    // As a checkpoint killed while writing files back leaves them.
    fs::write(dir.path().join(".checkpoint"), b"").unwrap();
    fs::write(dir.path().join("refs/a/b/@object.json.tmp"), b"par").unwrap();
    fs::create_dir_all(dir.path().join("refs/c")).unwrap();
    fs::write(dir.path().join("refs/c/@object.json.tmp"), b"tial").unwrap();

    let store = FsStore::open(dir.path(), "state").unwrap();
    assert!(!dir.path().join("refs/a/b/@object.json.tmp").exists());
    assert!(!dir.path().join("refs/c/@object.json.tmp").exists());
    assert!(!dir.path().join(".checkpoint").exists());
    assert_eq!(store.list("").unwrap(), vec!["a/b"]);
    assert_eq!(store.get("a/b").unwrap().unwrap().value, b"2");
}

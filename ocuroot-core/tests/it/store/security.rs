//! No key or ref can make a store touch anything outside its directory.

use std::sync::Arc;

use ocuroot_core::ErrorKind;
use ocuroot_core::refs::Ref;
use ocuroot_core::store::{Expect, FsStore, Op, PrefixStore, RefStore, Store};

use crate::store::common::tree;

const BAD_KEYS: &[&str] = &[
    "..",
    "../outside",
    "../../outside",
    "a/../../outside",
    "a/..",
    "./a",
    "a/./b",
    "a//b",
    "/etc/passwd",
    "a/",
    "a\\..\\..\\outside",
    "..\\outside",
    "a\0b",
    "a/\0/b",
    "a/\u{1b}[31m",
    "a/\n",
    "a/@object.json",
    "a/@object.json/b",
    "",
];

#[test]
fn bad_keys_write_nothing_anywhere() {
    let parent = tempfile::tempdir().unwrap();
    let store = FsStore::open(parent.path().join("store"), "state").unwrap();
    let shared: Arc<dyn Store> =
        Arc::new(FsStore::open(parent.path().join("shared"), "state").unwrap());
    let prefixed = PrefixStore::new(shared, "state/").unwrap();
    store
        .commit(&[Op::put("legit", b"1".to_vec(), Expect::Any)])
        .unwrap();
    let before = tree(parent.path());
    for s in [&store as &dyn Store, &prefixed] {
        for key in BAD_KEYS {
            let value = b"{\"kind\":\"ref\",\"body\":1}".to_vec();
            for ops in [
                vec![Op::put(*key, value.clone(), Expect::Any)],
                vec![
                    Op::put("fine", value.clone(), Expect::Any),
                    Op::put(*key, value.clone(), Expect::Absent),
                ],
                vec![Op::delete(*key, Expect::Any)],
                vec![Op::check(*key, Expect::Absent)],
            ] {
                let err = s.commit(&ops).unwrap_err();
                assert_eq!(err.kind(), ErrorKind::InvalidRef, "{key:?}: {err}");
            }
            assert_eq!(
                s.get(key).unwrap_err().kind(),
                ErrorKind::InvalidRef,
                "{key:?}"
            );
            assert!(s.get_many(&["legit", key]).is_err(), "{key:?}");
        }
    }
    assert_eq!(
        tree(parent.path()),
        before,
        "nothing new anywhere under the parent directory"
    );
    // The legitimate key is untouched.
    assert_eq!(store.get("legit").unwrap().unwrap().value, b"1");
}

#[test]
fn bad_list_prefixes_are_refused() {
    let parent = tempfile::tempdir().unwrap();
    let store = FsStore::open(parent.path().join("store"), "state").unwrap();
    // Something outside the store that a bad prefix would reach.
    std::fs::create_dir_all(parent.path().join("secret/@object.json")).unwrap();
    for prefix in [
        "../",
        "../secret",
        "..",
        "a/../../",
        "/",
        "/etc",
        "a//",
        "a\\b",
        "x/\0",
    ] {
        match store.list(prefix) {
            Err(e) => assert_eq!(e.kind(), ErrorKind::InvalidRef, "{prefix:?}: {e}"),
            // A partial segment like ".." only filters names; it may never
            // reach outside refs/.
            Ok(keys) => assert!(keys.is_empty(), "{prefix:?}: {keys:?}"),
        }
    }
}

#[test]
fn bad_refs_write_nothing() {
    let parent = tempfile::tempdir().unwrap();
    let fs_store = Arc::new(FsStore::open(parent.path().join("store"), "state").unwrap());
    let store = RefStore::new(fs_store.clone());
    let before = tree(parent.path());
    for text in [
        "../outside/@r1",
        "repo/-/../../outside/@r1",
        "repo/-/pkg/@r1/custom/../../../../x",
        "repo/-/pkg/@r1/custom/a\\..\\..\\x",
        "repo/-/a//b/@r1",
        "repo/-/pkg/@r1/custom/x\0y",
    ] {
        // Either the parser refuses it, or the store does.
        if let Ok(r) = Ref::parse(text) {
            let err = store
                .update(|tx| tx.set(&r, serde_json::json!({"evil": true})))
                .unwrap_err();
            assert!(
                matches!(err.kind(), ErrorKind::InvalidRef | ErrorKind::InvalidInput),
                "{text:?}: {err}"
            );
            assert!(store.get(&r).is_err(), "{text:?}");
        }
    }
    // Hand-built refs skip the parser; the store still refuses them.
    for filename in [
        "../../outside",
        "a/../../../outside",
        "a\\..",
        "/abs",
        "a//b",
    ] {
        let r = Ref {
            repo: "repo".into(),
            filename: filename.into(),
            release: Some("r1".into()),
            ..Ref::default()
        };
        let err = store
            .update(|tx| tx.set(&r, serde_json::json!(1)))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidRef, "{filename:?}: {err}");
        assert!(store.get(&r).is_err(), "{filename:?}");
        assert!(
            store
                .update(|tx| tx.link(&r, &Ref::parse("repo/-/x/@r1")?))
                .is_err()
        );
        assert!(
            store
                .update(|tx| tx.link(&Ref::parse("repo/-/x/@v1")?, &r))
                .is_err()
        );
    }
    assert_eq!(tree(parent.path()), before);

    // Dots inside a segment are just characters: `@..` is a directory named
    // `@..` inside the store.
    let r = Ref::parse("repo/-/pkg/@../custom/x").unwrap();
    store.update(|tx| tx.set(&r, serde_json::json!(1))).unwrap();
    fs_store.checkpoint().unwrap();
    assert!(
        parent
            .path()
            .join("store/refs/repo/-/pkg/@../custom/x/@object.json")
            .is_file()
    );
    let new: Vec<_> = tree(parent.path())
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    // The store directory is created by this first write; everything new is
    // inside it.
    assert!(
        new.iter().all(|p| p == "store" || p.starts_with("store/")),
        "{new:?}"
    );
}

#[test]
fn relative_refs_cannot_be_stored() {
    let store = RefStore::new(Arc::new(ocuroot_core::store::MemoryStore::new()));
    for text in ["./task/build", "./@/deploy/prod", "//pkg.ocu.star/@r1"] {
        let r = Ref::parse(text).unwrap();
        let err = store
            .update(|tx| tx.set(&r, serde_json::json!(1)))
            .unwrap_err();
        assert!(err.to_string().contains(&r.to_string()), "{text}: {err}");
        assert!(store.get(&r).is_err(), "{text}");
    }
    assert!(store.store().list("").unwrap().is_empty());
}

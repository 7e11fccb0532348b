//! The `Store` contract, checked against every backend.

use ocuroot_core::ErrorKind;
use ocuroot_core::store::{Expect, Op, Store, Version};

use crate::store::common::backends;

fn put(store: &dyn Store, key: &str, value: &str) -> Version {
    store
        .commit(&[Op::put(key, value.as_bytes().to_vec(), Expect::Any)])
        .unwrap();
    store.get(key).unwrap().unwrap().version
}

#[test]
fn get_put_overwrite() {
    for b in backends() {
        let s = b.store.as_ref();
        assert_eq!(s.get("pkg/@r1").unwrap(), None, "{}", b.name);
        let v1 = put(s, "pkg/@r1", "one");
        let e = s.get("pkg/@r1").unwrap().unwrap();
        assert_eq!(e.value, b"one", "{}", b.name);
        assert_eq!(e.version, v1, "{}: version is stable across reads", b.name);
        let v2 = put(s, "pkg/@r1", "two");
        assert_ne!(v1, v2, "{}: version changes with the value", b.name);
        assert_eq!(s.get("pkg/@r1").unwrap().unwrap().value, b"two");
    }
}

#[test]
fn list_by_prefix_is_sorted_and_exact() {
    for b in backends() {
        let s = b.store.as_ref();
        for k in ["a/bc", "a/b/c", "b", "a/b", "a/x/y", "a/b/c/d/e", "ab/c"] {
            put(s, k, k);
        }
        let all = vec!["a/b", "a/b/c", "a/b/c/d/e", "a/bc", "a/x/y", "ab/c", "b"];
        assert_eq!(s.list("").unwrap(), all, "{}", b.name);
        assert_eq!(
            s.list("a/b").unwrap(),
            vec!["a/b", "a/b/c", "a/b/c/d/e", "a/bc"],
            "{}",
            b.name
        );
        assert_eq!(
            s.list("a/b/").unwrap(),
            vec!["a/b/c", "a/b/c/d/e"],
            "{}",
            b.name
        );
        assert_eq!(
            s.list("a").unwrap(),
            vec!["a/b", "a/b/c", "a/b/c/d/e", "a/bc", "a/x/y", "ab/c"]
        );
        assert_eq!(
            s.list("a/").unwrap(),
            vec!["a/b", "a/b/c", "a/b/c/d/e", "a/bc", "a/x/y"]
        );
        assert_eq!(s.list("a/x/y").unwrap(), vec!["a/x/y"], "{}", b.name);
        assert!(s.list("zzz").unwrap().is_empty(), "{}", b.name);
        assert!(s.list("a/q/").unwrap().is_empty(), "{}", b.name);
        // Intermediate paths are not keys.
        assert!(s.get("a/x").unwrap().is_none(), "{}", b.name);
        assert!(s.get("a/b/c/d").unwrap().is_none(), "{}", b.name);
    }
}

#[test]
fn expectations() {
    for b in backends() {
        let s = b.store.as_ref();
        s.commit(&[Op::put("k", b"1".to_vec(), Expect::Absent)])
            .unwrap();
        let v = s.get("k").unwrap().unwrap().version;

        let err = s
            .commit(&[Op::put("k", b"2".to_vec(), Expect::Absent)])
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict, "{}", b.name);
        assert!(err.to_string().contains('k'), "{}: {err}", b.name);

        let err = s
            .commit(&[Op::put(
                "k",
                b"2".to_vec(),
                Expect::Version(Version(v.0 ^ 1)),
            )])
            .unwrap_err();
        assert!(err.is_conflict(), "{}", b.name);

        let err = s
            .commit(&[Op::put("nope", b"2".to_vec(), Expect::Version(v))])
            .unwrap_err();
        assert!(
            err.is_conflict(),
            "{}: version expected of an absent key",
            b.name
        );
        assert!(err.to_string().contains("nope"), "{}: {err}", b.name);
        assert_eq!(s.get("nope").unwrap(), None);

        s.commit(&[Op::put("k", b"2".to_vec(), Expect::Version(v))])
            .unwrap();
        assert_eq!(s.get("k").unwrap().unwrap().value, b"2");

        // Checks.
        let v = s.get("k").unwrap().unwrap().version;
        s.commit(&[
            Op::check("k", Expect::Version(v)),
            Op::check("other", Expect::Absent),
        ])
        .unwrap();
        assert!(
            s.commit(&[Op::check("k", Expect::Absent)])
                .unwrap_err()
                .is_conflict()
        );
        assert!(
            s.commit(&[Op::check("other", Expect::Version(v))])
                .unwrap_err()
                .is_conflict()
        );
        assert_eq!(
            s.list("").unwrap(),
            vec!["k"],
            "{}: checks write nothing",
            b.name
        );
    }
}

#[test]
fn a_failed_batch_writes_nothing() {
    for b in backends() {
        let s = b.store.as_ref();
        put(s, "exists", "old");
        put(s, "doomed", "keep me");
        let err = s
            .commit(&[
                Op::put("x/1", b"new".to_vec(), Expect::Any),
                Op::put("x/2", b"new".to_vec(), Expect::Absent),
                Op::delete("doomed", Expect::Any),
                Op::put("exists", b"new".to_vec(), Expect::Absent),
                Op::put("x/3", b"new".to_vec(), Expect::Any),
            ])
            .unwrap_err();
        assert!(err.is_conflict(), "{}", b.name);
        assert!(err.to_string().contains("exists"), "{}: {err}", b.name);
        assert_eq!(s.list("").unwrap(), vec!["doomed", "exists"], "{}", b.name);
        assert_eq!(s.get("exists").unwrap().unwrap().value, b"old");
        assert_eq!(s.get("doomed").unwrap().unwrap().value, b"keep me");
    }
}

#[test]
fn batches_apply_in_order() {
    for b in backends() {
        let s = b.store.as_ref();
        // A later op sees the effect of an earlier one.
        s.commit(&[
            Op::put("k", b"1".to_vec(), Expect::Absent),
            Op::put("k", b"2".to_vec(), Expect::Any),
            Op::put("gone", b"x".to_vec(), Expect::Absent),
            Op::delete("gone", Expect::Any),
            Op::check("gone", Expect::Absent),
        ])
        .unwrap();
        assert_eq!(s.get("k").unwrap().unwrap().value, b"2", "{}", b.name);
        assert_eq!(s.get("gone").unwrap(), None, "{}", b.name);
        let err = s
            .commit(&[
                Op::put("new", b"1".to_vec(), Expect::Absent),
                Op::check("new", Expect::Absent),
            ])
            .unwrap_err();
        assert!(err.is_conflict(), "{}", b.name);
        assert_eq!(s.get("new").unwrap(), None, "{}", b.name);
    }
}

#[test]
fn delete() {
    for b in backends() {
        let s = b.store.as_ref();
        // Deleting an absent key is a no-op.
        s.commit(&[Op::delete("a/b", Expect::Any)]).unwrap();
        s.commit(&[Op::delete("a/b", Expect::Absent)]).unwrap();
        let v = put(s, "a/b", "x");
        put(s, "a/b/c", "y");
        let err = s
            .commit(&[Op::delete("a/b", Expect::Version(Version(v.0 ^ 1)))])
            .unwrap_err();
        assert!(err.is_conflict(), "{}", b.name);
        s.commit(&[Op::delete("a/b", Expect::Version(v))]).unwrap();
        assert_eq!(s.get("a/b").unwrap(), None, "{}", b.name);
        assert_eq!(s.list("").unwrap(), vec!["a/b/c"], "{}", b.name);
        s.commit(&[Op::delete("a/b/c", Expect::Any)]).unwrap();
        assert!(s.list("").unwrap().is_empty(), "{}", b.name);
        // And the key can be written again.
        put(s, "a/b/c", "z");
        assert_eq!(s.list("a").unwrap(), vec!["a/b/c"], "{}", b.name);
    }
}

#[test]
fn get_many_and_empty_batches() {
    for b in backends() {
        let s = b.store.as_ref();
        put(s, "a", "1");
        put(s, "c", "3");
        let got = s.get_many(&["a", "b", "c"]).unwrap();
        let values: Vec<Option<Vec<u8>>> = got.into_iter().map(|e| e.map(|e| e.value)).collect();
        assert_eq!(
            values,
            vec![Some(b"1".to_vec()), None, Some(b"3".to_vec())],
            "{}",
            b.name
        );
        s.commit(&[]).unwrap();
        assert!(!s.describe().is_empty());
    }
}

#[test]
fn binary_and_large_values_round_trip() {
    for b in backends() {
        let s = b.store.as_ref();
        let bin: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
        s.commit(&[
            Op::put("bin", bin.clone(), Expect::Absent),
            Op::put(
                "text",
                "héllo \u{1F600}".as_bytes().to_vec(),
                Expect::Absent,
            ),
        ])
        .unwrap();
        assert_eq!(s.get("bin").unwrap().unwrap().value, bin, "{}", b.name);
        assert_eq!(
            s.get("text").unwrap().unwrap().value,
            "héllo \u{1F600}".as_bytes()
        );
    }
}

#[test]
fn invalid_keys_are_refused_everywhere() {
    for b in backends() {
        let s = b.store.as_ref();
        for key in [
            "",
            "../x",
            "a/../b",
            "a//b",
            "/a",
            "a/",
            "a\\b",
            "a\0b",
            "a/@object.json",
        ] {
            let e = s.get(key).unwrap_err();
            assert_eq!(
                e.kind(),
                ErrorKind::InvalidRef,
                "{}: get {key:?}: {e}",
                b.name
            );
            let e = s
                .commit(&[Op::put(key, b"x".to_vec(), Expect::Any)])
                .unwrap_err();
            assert_eq!(
                e.kind(),
                ErrorKind::InvalidRef,
                "{}: put {key:?}: {e}",
                b.name
            );
            let e = s.commit(&[Op::delete(key, Expect::Any)]).unwrap_err();
            assert_eq!(
                e.kind(),
                ErrorKind::InvalidRef,
                "{}: delete {key:?}: {e}",
                b.name
            );
        }
        for prefix in ["../", "a//", "/", "a/../", "\\"] {
            let e = s.list(prefix).unwrap_err();
            assert_eq!(
                e.kind(),
                ErrorKind::InvalidRef,
                "{}: list {prefix:?}: {e}",
                b.name
            );
        }
        // A batch with one bad key writes nothing.
        assert!(
            s.commit(&[
                Op::put("ok", b"x".to_vec(), Expect::Any),
                Op::put("../bad", b"x".to_vec(), Expect::Any),
            ])
            .is_err()
        );
        assert!(s.list("").unwrap().is_empty(), "{}", b.name);
    }
}

#[test]
fn prefix_store_maps_keys_under_its_prefix() {
    use ocuroot_core::store::{MemoryStore, PrefixStore};
    use std::sync::Arc;

    let inner = Arc::new(MemoryStore::new());
    let state = PrefixStore::new(inner.clone(), "state").unwrap();
    let intent = PrefixStore::new(inner.clone(), "intent/").unwrap();
    assert_eq!(state.prefix(), "state/");
    put(&state, "pkg/@r1", "s");
    put(&intent, "pkg/@r1", "i");
    put(&intent, "pkg/@r1/custom/x", "i");
    assert_eq!(
        inner.list("").unwrap(),
        vec!["intent/pkg/@r1", "intent/pkg/@r1/custom/x", "state/pkg/@r1"]
    );
    assert_eq!(state.list("").unwrap(), vec!["pkg/@r1"]);
    assert_eq!(intent.list("pkg/@r1/").unwrap(), vec!["pkg/@r1/custom/x"]);
    assert_eq!(state.get("pkg/@r1").unwrap().unwrap().value, b"s");
    // A conflict names the key and the store.
    let e = state
        .commit(&[Op::put("pkg/@r1", b"x".to_vec(), Expect::Absent)])
        .unwrap_err();
    assert!(e.is_conflict());
    assert!(e.to_string().contains("state/pkg/@r1"), "{e}");
    assert!(state.describe().contains("state/"), "{}", state.describe());
    for bad in ["", "/", "../x", "a//b"] {
        let e = PrefixStore::new(inner.clone(), bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidRef, "{bad:?}");
    }
}

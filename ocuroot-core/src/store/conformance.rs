//! The [`Store`] contract as a test a backend author runs against their own
//! store (cargo feature `conformance`): [`check`].
//!
//! ```
//! use ocuroot_core::store::{MemoryStore, conformance};
//!
//! // In a #[test]: each property gets a fresh, empty store.
//! conformance::check(MemoryStore::new);
//! ```
//!
//! The built-in backends ([`MemoryStore`](super::MemoryStore),
//! [`FsStore`](super::FsStore), [`PrefixStore`](super::PrefixStore),
//! [`GitStore`](super::GitStore)) are tested with it.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use super::{Expect, Op, Store, Version};
use crate::ErrorKind;

/// One property of the contract: given a fresh, empty store, it panics when
/// the store breaks the property.
pub type Property = fn(&dyn Store);

/// The properties [`check`] runs, by name: to run one alone, or each in a
/// test of its own.
pub const PROPERTIES: &[(&str, Property)] = &[
    ("get_put_overwrite", get_put_overwrite),
    (
        "list_by_prefix_is_sorted_and_exact",
        list_by_prefix_is_sorted_and_exact,
    ),
    ("expectations", expectations),
    (
        "a_failed_batch_writes_nothing",
        a_failed_batch_writes_nothing,
    ),
    ("batches_apply_in_order", batches_apply_in_order),
    ("delete", delete),
    ("get_many_and_empty_batches", get_many_and_empty_batches),
    (
        "binary_and_large_values_round_trip",
        binary_and_large_values_round_trip,
    ),
    (
        "invalid_keys_are_refused_everywhere",
        invalid_keys_are_refused_everywhere,
    ),
];

/// Check that the stores `new_store` makes keep the [`Store`] contract:
/// every one of [`PROPERTIES`], each on a fresh, empty store from
/// `new_store`.
///
/// # Panics
///
/// On the first property that fails, with a message naming the property and
/// the store ([`Store::describe`]) before the failed assertion's own.
pub fn check<S: Store>(mut new_store: impl FnMut() -> S) {
    for (name, property) in PROPERTIES {
        let store = new_store();
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| property(&store))) {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied());
            let Some(message) = message else {
                resume_unwind(panic);
            };
            panic!(
                "store conformance: property `{name}` failed for {}: {message}",
                store.describe()
            );
        }
    }
}

fn put(store: &dyn Store, key: &str, value: &str) -> Version {
    store
        .commit(&[Op::put(key, value.as_bytes().to_vec(), Expect::Any)])
        .unwrap();
    store.get(key).unwrap().unwrap().version
}

/// A written value reads back with a version that is stable across reads and changes with the value.
fn get_put_overwrite(s: &dyn Store) {
    assert_eq!(s.get("pkg/@r1").unwrap(), None);
    let v1 = put(s, "pkg/@r1", "one");
    let e = s.get("pkg/@r1").unwrap().unwrap();
    assert_eq!(e.value, b"one");
    assert_eq!(e.version, v1, "version is stable across reads");
    let v2 = put(s, "pkg/@r1", "two");
    assert_ne!(v1, v2, "version changes with the value");
    assert_eq!(s.get("pkg/@r1").unwrap().unwrap().value, b"two");
}

/// `list` returns exactly the keys starting with a plain string prefix, sorted; the directories between keys are not keys.
fn list_by_prefix_is_sorted_and_exact(s: &dyn Store) {
    for k in ["a/bc", "a/b/c", "b", "a/b", "a/x/y", "a/b/c/d/e", "ab/c"] {
        put(s, k, k);
    }
    let all = vec!["a/b", "a/b/c", "a/b/c/d/e", "a/bc", "a/x/y", "ab/c", "b"];
    assert_eq!(s.list("").unwrap(), all);
    assert_eq!(
        s.list("a/b").unwrap(),
        vec!["a/b", "a/b/c", "a/b/c/d/e", "a/bc"]
    );
    assert_eq!(s.list("a/b/").unwrap(), vec!["a/b/c", "a/b/c/d/e"]);
    assert_eq!(
        s.list("a").unwrap(),
        vec!["a/b", "a/b/c", "a/b/c/d/e", "a/bc", "a/x/y", "ab/c"]
    );
    assert_eq!(
        s.list("a/").unwrap(),
        vec!["a/b", "a/b/c", "a/b/c/d/e", "a/bc", "a/x/y"]
    );
    assert_eq!(s.list("a/x/y").unwrap(), vec!["a/x/y"]);
    assert!(s.list("zzz").unwrap().is_empty());
    assert!(s.list("a/q/").unwrap().is_empty());
    // Intermediate paths are not keys.
    assert!(s.get("a/x").unwrap().is_none());
    assert!(s.get("a/b/c/d").unwrap().is_none());
}

/// `Absent`, `Version` and `Check` expectations are enforced, and a conflict names its key.
fn expectations(s: &dyn Store) {
    s.commit(&[Op::put("k", b"1".to_vec(), Expect::Absent)])
        .unwrap();
    let v = s.get("k").unwrap().unwrap().version;

    let err = s
        .commit(&[Op::put("k", b"2".to_vec(), Expect::Absent)])
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(err.to_string().contains('k'), "{err}");

    let err = s
        .commit(&[Op::put(
            "k",
            b"2".to_vec(),
            Expect::Version(Version(v.0 ^ 1)),
        )])
        .unwrap_err();
    assert!(err.is_conflict());

    let err = s
        .commit(&[Op::put("nope", b"2".to_vec(), Expect::Version(v))])
        .unwrap_err();
    assert!(err.is_conflict(), "version expected of an absent key");
    assert!(err.to_string().contains("nope"), "{err}");
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
    assert_eq!(s.list("").unwrap(), vec!["k"], "checks write nothing");
}

/// A batch with one failed expectation writes none of its ops.
fn a_failed_batch_writes_nothing(s: &dyn Store) {
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
    assert!(err.is_conflict());
    assert!(err.to_string().contains("exists"), "{err}");
    assert_eq!(s.list("").unwrap(), vec!["doomed", "exists"]);
    assert_eq!(s.get("exists").unwrap().unwrap().value, b"old");
    assert_eq!(s.get("doomed").unwrap().unwrap().value, b"keep me");
}

/// Each op of a batch sees the effects of the ops before it.
fn batches_apply_in_order(s: &dyn Store) {
    // A later op sees the effect of an earlier one.
    s.commit(&[
        Op::put("k", b"1".to_vec(), Expect::Absent),
        Op::put("k", b"2".to_vec(), Expect::Any),
        Op::put("gone", b"x".to_vec(), Expect::Absent),
        Op::delete("gone", Expect::Any),
        Op::check("gone", Expect::Absent),
    ])
    .unwrap();
    assert_eq!(s.get("k").unwrap().unwrap().value, b"2");
    assert_eq!(s.get("gone").unwrap(), None);
    let err = s
        .commit(&[
            Op::put("new", b"1".to_vec(), Expect::Absent),
            Op::check("new", Expect::Absent),
        ])
        .unwrap_err();
    assert!(err.is_conflict());
    assert_eq!(s.get("new").unwrap(), None);
}

/// Deletes: an absent key is a no-op, expectations hold, and the key can be written again.
fn delete(s: &dyn Store) {
    // Deleting an absent key is a no-op.
    s.commit(&[Op::delete("a/b", Expect::Any)]).unwrap();
    s.commit(&[Op::delete("a/b", Expect::Absent)]).unwrap();
    let v = put(s, "a/b", "x");
    put(s, "a/b/c", "y");
    let err = s
        .commit(&[Op::delete("a/b", Expect::Version(Version(v.0 ^ 1)))])
        .unwrap_err();
    assert!(err.is_conflict());
    s.commit(&[Op::delete("a/b", Expect::Version(v))]).unwrap();
    assert_eq!(s.get("a/b").unwrap(), None);
    assert_eq!(s.list("").unwrap(), vec!["a/b/c"]);
    s.commit(&[Op::delete("a/b/c", Expect::Any)]).unwrap();
    assert!(s.list("").unwrap().is_empty());
    // And the key can be written again.
    put(s, "a/b/c", "z");
    assert_eq!(s.list("a").unwrap(), vec!["a/b/c"]);
}

/// `get_many` reads keys in order, with `None` for absent ones; an empty batch commits; `describe` says something.
fn get_many_and_empty_batches(s: &dyn Store) {
    put(s, "a", "1");
    put(s, "c", "3");
    let got = s.get_many(&["a", "b", "c"]).unwrap();
    let values: Vec<Option<Vec<u8>>> = got.into_iter().map(|e| e.map(|e| e.value)).collect();
    assert_eq!(values, vec![Some(b"1".to_vec()), None, Some(b"3".to_vec())]);
    s.commit(&[]).unwrap();
    assert!(!s.describe().is_empty());
}

/// Binary and large (70 kB) values, and UTF-8 text, round-trip byte for byte.
fn binary_and_large_values_round_trip(s: &dyn Store) {
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
    assert_eq!(s.get("bin").unwrap().unwrap().value, bin);
    assert_eq!(
        s.get("text").unwrap().unwrap().value,
        "héllo \u{1F600}".as_bytes()
    );
}

/// Invalid keys and list prefixes are refused with `InvalidRef` by `get`, puts, deletes and `list`, and a batch with one invalid key writes nothing.
fn invalid_keys_are_refused_everywhere(s: &dyn Store) {
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
        assert_eq!(e.kind(), ErrorKind::InvalidRef, "get {key:?}: {e}");
        let e = s
            .commit(&[Op::put(key, b"x".to_vec(), Expect::Any)])
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidRef, "put {key:?}: {e}");
        let e = s.commit(&[Op::delete(key, Expect::Any)]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidRef, "delete {key:?}: {e}");
    }
    for prefix in ["../", "a//", "/", "a/../", "\\"] {
        let e = s.list(prefix).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidRef, "list {prefix:?}: {e}");
    }
    // A batch with one bad key writes nothing.
    assert!(
        s.commit(&[
            Op::put("ok", b"x".to_vec(), Expect::Any),
            Op::put("../bad", b"x".to_vec(), Expect::Any),
        ])
        .is_err()
    );
    assert!(s.list("").unwrap().is_empty());
}

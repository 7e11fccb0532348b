//! The `Store` contract (`ocuroot_core::store::conformance`) checked
//! against every built-in backend, and what is particular to `PrefixStore`.

use std::sync::Arc;

use ocuroot_core::ErrorKind;
use ocuroot_core::store::{
    Expect, FsStore, GitBranch, GitStore, MemoryStore, Op, PrefixStore, Store, Version, conformance,
};

use crate::store::common::{bare_remote, git_options};

/// Fresh stores in new directories under one temporary directory, which
/// lives as long as the returned closure.
fn in_dirs<S: Store>(open: impl Fn(&std::path::Path) -> S) -> impl FnMut() -> S {
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0;
    move || {
        n += 1;
        open(&dir.path().join(n.to_string()))
    }
}

#[test]
fn memory() {
    conformance::check(MemoryStore::new);
}

#[test]
fn fs() {
    conformance::check(in_dirs(|d| {
        FsStore::open(d.join("state"), "state").unwrap()
    }));
}

#[test]
fn fs_without_fsync() {
    conformance::check(in_dirs(|d| {
        FsStore::builder(d, "intent").fsync(false).open().unwrap()
    }));
}

#[test]
fn fs_checkpointing_each_commit() {
    // Every commit checkpointed: reads come from the files.
    conformance::check(in_dirs(|d| {
        FsStore::builder(d, "state")
            .checkpoint_bytes(0)
            .open()
            .unwrap()
    }));
}

#[test]
fn prefix_over_memory() {
    conformance::check(|| PrefixStore::new(MemoryStore::new(), "state").unwrap());
}

#[test]
fn prefix_over_fs() {
    conformance::check(in_dirs(|d| {
        let shared: Arc<dyn Store> = Arc::new(FsStore::open(d, "state").unwrap());
        PrefixStore::new(shared, "intent/").unwrap()
    }));
}

fn git_store(dir: &std::path::Path, prefix: &str) -> GitStore {
    std::fs::create_dir_all(dir).unwrap();
    let remote = bare_remote(dir);
    let options = git_options(&remote, &dir.join("home"), "state");
    GitBranch::open(options)
        .unwrap()
        .store(prefix, "state")
        .unwrap()
}

#[test]
fn git() {
    conformance::check(in_dirs(|d| git_store(d, "")));
}

#[test]
fn git_under_a_prefix() {
    conformance::check(in_dirs(|d| git_store(d, "intent")));
}

fn put(store: &dyn Store, key: &str, value: &str) -> Version {
    store
        .commit(&[Op::put(key, value.as_bytes().to_vec(), Expect::Any)])
        .unwrap();
    store.get(key).unwrap().unwrap().version
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

/// A store that ignores every expectation: the suite must catch it.
struct Careless(MemoryStore);

impl Store for Careless {
    fn get(&self, key: &str) -> ocuroot_core::Result<Option<ocuroot_core::store::Entry>> {
        self.0.get(key)
    }
    fn list(&self, prefix: &str) -> ocuroot_core::Result<Vec<String>> {
        self.0.list(prefix)
    }
    fn commit(&self, ops: &[Op]) -> ocuroot_core::Result<()> {
        let careless: Vec<Op> = ops
            .iter()
            .filter_map(|op| match op {
                Op::Put { key, value, .. } => Some(Op::put(key, value.clone(), Expect::Any)),
                Op::Delete { key, .. } => Some(Op::delete(key, Expect::Any)),
                Op::Check { .. } => None,
            })
            .collect();
        self.0.commit(&careless)
    }
    fn describe(&self) -> String {
        "careless".to_string()
    }
}

#[test]
#[should_panic(expected = "store conformance: property `expectations` failed for careless: ")]
fn a_failure_names_the_property_and_the_store() {
    conformance::check(|| Careless(MemoryStore::new()));
}

//! State and intent storage.
//!
//! Storage has two layers:
//!
//! - [`Store`], the seam a host replaces: a small key/value interface with
//!   [`get`](Store::get), [`list`](Store::list) by prefix and an atomic
//!   [`commit`](Store::commit) of puts and deletes with expected versions. A
//!   backend is a few dozen lines: [`MemoryStore`], [`FsStore`] (a directory)
//!   and [`GitStore`] (a branch of a git remote shared by CI agents, each
//!   batch one commit pushed with compare-and-swap) are built in,
//!   [`PrefixStore`] puts one store's keys under a prefix of another
//!   (state and intent sharing one backend), and the C and Python layers adapt
//!   callbacks to it.
//! - [`RefStore`], built once on top of any `Store`: JSON documents addressed by
//!   [`Ref`](crate::refs::Ref)s, `#fragment` reads, links (`pkg/@/deploy/prod`
//!   -> `pkg/@r3/deploy/prod`), glob matching and optimistic [`Transaction`]s.
//!
//! Writing a backend: `get` and `list` read, and `commit` holds the backend's
//! lock (or transaction) while [`check_batch`] checks the batch's
//! expectations against it and returns the writes to apply, or the conflict
//! to return; [`MemoryStore`] is written that way. The cargo feature
//! `conformance` adds `store::conformance::check`, the contract as a test to
//! run against a new backend (the built-in ones run it).
//! `examples/rust` in the repository has a complete backend in about 50
//! lines.
//!
//! Keys are canonical ref strings without a fragment, such as
//! `github.com/org/repo/-/app/package.ocu.star/@r1/deploy/prod`. Every backend
//! validates every key it is given with [`crate::refs::validate_key`], so no
//! key can contain `..`, an empty segment, a backslash or a control character,
//! and no key can name a file outside a directory store.
//!
//! ```
//! use ocuroot_core::store::{Expect, MemoryStore, Op, Store};
//!
//! let store = MemoryStore::new();
//! store.commit(&[Op::put("pkg/@r1", b"{}".to_vec(), Expect::Absent)])?;
//! let entry = store.get("pkg/@r1")?.expect("just written");
//! // A second create of the same key is a conflict, and nothing is written.
//! let err = store
//!     .commit(&[Op::put("pkg/@r1", b"[]".to_vec(), Expect::Absent)])
//!     .unwrap_err();
//! assert!(err.is_conflict());
//! assert_eq!(store.get("pkg/@r1")?.unwrap().version, entry.version);
//! # Ok::<(), ocuroot_core::Error>(())
//! ```

use std::fmt;
use std::sync::Arc;

use crate::{Error, Result};

mod batch;
#[cfg(feature = "conformance")]
pub mod conformance;
mod fs;
mod git;
pub(crate) mod marker;
mod memory;
mod prefix;
mod refstore;

pub use batch::{Write, check_batch};
pub use fs::{FsStore, FsStoreBuilder};
pub use git::{
    GitBranch, GitOptions, GitStats, GitStore, NetworkSettings, Packed, pack_clone, prune_clones,
};
pub use memory::MemoryStore;
pub use prefix::PrefixStore;
pub use refstore::{RefStore, Transaction};

/// Opaque version of a stored value; it changes whenever the value changes.
///
/// Backends choose how to derive it: [`MemoryStore`] counts writes,
/// [`FsStore`] hashes the file's bytes (so files written by other tools have
/// versions too). Compare versions for equality only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Version(pub u64);

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl Version {
    /// The version a content-addressed backend gives `bytes`: their FNV-1a
    /// 64-bit hash. [`FsStore`] uses it; other backends may too.
    pub fn of_bytes(bytes: &[u8]) -> Version {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        Version(hash)
    }
}

/// A stored value and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The stored bytes (for [`RefStore`], a JSON envelope).
    pub value: Vec<u8>,
    /// The version of `value`, for [`Expect::Version`].
    pub version: Version,
}

/// What an [`Op`] expects of its key before the batch is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// No expectation.
    Any,
    /// The key must not exist.
    Absent,
    /// The key must exist with exactly this version.
    Version(Version),
}

impl Expect {
    /// `Expect::Version(v)` for a value read as present, `Expect::Absent` for
    /// one read as absent: "unchanged since I read it".
    pub fn unchanged(read: Option<Version>) -> Expect {
        match read {
            Some(v) => Expect::Version(v),
            None => Expect::Absent,
        }
    }

    /// Whether a key whose current version is `current` (`None`: absent)
    /// meets this expectation.
    pub fn is_met_by(self, current: Option<Version>) -> bool {
        match self {
            Expect::Any => true,
            Expect::Absent => current.is_none(),
            Expect::Version(v) => current == Some(v),
        }
    }

    /// The conflict error for `key` when `current` does not meet this
    /// expectation.
    pub fn conflict(self, key: &str, current: Option<Version>) -> Error {
        let found = match current {
            Some(v) => format!("version {v}"),
            None => "nothing".to_string(),
        };
        let expected = match self {
            Expect::Any => "anything".to_string(),
            Expect::Absent => "no value".to_string(),
            Expect::Version(v) => format!("version {v}"),
        };
        Error::conflict(format!(
            "conflict on {key}: expected {expected}, found {found} (it was changed concurrently; retry)"
        ))
    }
}

/// One operation of an atomic batch given to [`Store::commit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Write `value` at `key`.
    Put {
        /// The key.
        key: String,
        /// The new value.
        value: Vec<u8>,
        /// What the key must hold before the batch.
        expect: Expect,
    },
    /// Remove `key`. Removing an absent key is a no-op (given a compatible
    /// expectation).
    Delete {
        /// The key.
        key: String,
        /// What the key must hold before the batch.
        expect: Expect,
    },
    /// Write nothing, but fail the batch unless `key` meets `expect`: how a
    /// transaction makes its reads part of the commit.
    Check {
        /// The key.
        key: String,
        /// What the key must hold.
        expect: Expect,
    },
}

impl Op {
    /// An [`Op::Put`].
    pub fn put(key: impl Into<String>, value: Vec<u8>, expect: Expect) -> Op {
        Op::Put {
            key: key.into(),
            value,
            expect,
        }
    }
    /// An [`Op::Delete`].
    pub fn delete(key: impl Into<String>, expect: Expect) -> Op {
        Op::Delete {
            key: key.into(),
            expect,
        }
    }
    /// An [`Op::Check`].
    pub fn check(key: impl Into<String>, expect: Expect) -> Op {
        Op::Check {
            key: key.into(),
            expect,
        }
    }
    /// The key this operation is about.
    pub fn key(&self) -> &str {
        match self {
            Op::Put { key, .. } | Op::Delete { key, .. } | Op::Check { key, .. } => key,
        }
    }
    /// The expectation of this operation.
    pub fn expect(&self) -> Expect {
        match self {
            Op::Put { expect, .. } | Op::Delete { expect, .. } | Op::Check { expect, .. } => {
                *expect
            }
        }
    }
}

/// How soon a committed batch must survive a machine crash, and be seen by
/// other agents sharing the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// Durable, and visible to every agent, when [`Store::commit_with`]
    /// returns.
    #[default]
    Immediate,
    /// Visible to every agent sharing the store when the commit returns
    /// (the engine claims runs this way: a claim must be seen before the
    /// work runs), and durable soon after, as [`Deferred`](Durability::Deferred).
    /// For [`FsStore`], where every reader sees a batch at once, this is
    /// `Deferred`; a [`GitStore`] pushes before it returns.
    Shared,
    /// Visible to readers of this instance when the commit returns, and
    /// durable and visible to every agent soon after: no later than the next
    /// [`Immediate`](Durability::Immediate) or [`Shared`](Durability::Shared)
    /// commit or [`Store::sync`] returns, or the store is dropped (backends
    /// may bound the delay; [`FsStore`] syncs within about a second, and its
    /// other readers see the batch at once; a [`GitStore`] pushes with the
    /// next commit a second or more later). A machine crash may lose the last
    /// deferred batches, never part of one: what survives is the store as of
    /// some earlier moment. The engine commits run outcomes this way and
    /// syncs before it reports, so what a command reports is durable; a crash
    /// mid-release can only leave recently finished runs to run again.
    Deferred,
    /// [`Deferred`](Durability::Deferred), for a batch the ones committed
    /// after it through this instance build on (the engine creates a release
    /// this way, so the release and the claims of its first runs share one
    /// push). If, when it is published, it no longer applies because another
    /// agent wrote first, none of the batches after it is published either:
    /// the commit publishing them fails with a [`Store`](crate::ErrorKind::Store)
    /// error whose source is [`Superseded`]. Backends that check every batch
    /// against all agents' when it is committed treat it as `Deferred`.
    Founding,
}

/// The source of the error a commit fails with when a
/// [`Founding`](Durability::Founding) batch before it no longer applied
/// (another agent wrote first): nothing after that batch was published.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct Superseded(pub String);

impl Superseded {
    /// Whether `error` (or its source) says a founding batch was superseded.
    pub fn caused(error: &Error) -> bool {
        std::error::Error::source(error).is_some_and(|s| s.is::<Superseded>())
    }
}

/// A key/value store: the storage seam.
///
/// Implementations must be safe to share between threads. Keys are ref
/// strings without a fragment; implementations call [`validate_key`] on every
/// key they are given (and [`validate_prefix`] on list prefixes).
///
/// The trait is object safe; the engine holds an `Arc<dyn Store>`.
pub trait Store: Send + Sync {
    /// The value at `key` and its version, or `None` if absent.
    fn get(&self, key: &str) -> Result<Option<Entry>>;

    /// All keys starting with `prefix` (a plain string prefix, which may end
    /// in `/`; empty means every key), sorted.
    fn list(&self, prefix: &str) -> Result<Vec<String>>;

    /// Apply all `ops` atomically, or none of them.
    ///
    /// Expectations are checked in order, each against the store as left by
    /// the ops before it in the batch (so `Put(k, Absent)` then
    /// `Put(k, Any)` is fine, and a [`Op::Check`] after a put of the same key
    /// sees the put). If any expectation fails, nothing is written and the
    /// error is a [`Conflict`](crate::ErrorKind::Conflict) naming the key.
    fn commit(&self, ops: &[Op]) -> Result<()>;

    /// [`commit`](Store::commit) with a choice of [`Durability`]. Backends
    /// that make every commit durable at the same cost (or none) keep the
    /// default, which calls `commit`.
    fn commit_with(&self, ops: &[Op], durability: Durability) -> Result<()> {
        let _ = durability;
        self.commit(ops)
    }

    /// Make every batch committed through this instance durable, including
    /// [`Deferred`](Durability::Deferred) ones. Backends whose commits are
    /// always durable (or never) keep the default, which does nothing.
    fn sync(&self) -> Result<()> {
        Ok(())
    }

    /// Publish what this instance deferred and read what other agents have
    /// committed since: after it returns, reads see every batch any agent
    /// had made visible before it was called. A [`GitStore`] pushes its
    /// deferred batches and fetches; backends whose readers see every
    /// commit at once keep the default, which does nothing.
    fn refresh(&self) -> Result<()> {
        Ok(())
    }

    /// Bring whatever other tools read directly (such as the files of an
    /// [`FsStore`]) up to date with every committed batch, durably. Backends
    /// with nothing of the kind keep the default, which does nothing.
    fn checkpoint(&self) -> Result<()> {
        Ok(())
    }

    /// The values at several keys, in order.
    ///
    /// Backends that can should read all keys from one consistent snapshot
    /// (both built-in backends do); the default reads them one by one.
    fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Entry>>> {
        keys.iter().map(|k| self.get(k)).collect()
    }

    /// A short human description, such as `fs:/path/to/state` or `memory`.
    fn describe(&self) -> String {
        std::any::type_name::<Self>().to_string()
    }

    /// The identity of the ordered log this instance publishes its batches
    /// through, when several stores may share one (a [`GitStore`]'s branch,
    /// holding state and intent). Two stores with the same identity make a
    /// batch committed through either, [`Deferred`](Durability::Deferred)
    /// ones included, visible to other agents no later than every batch
    /// committed after it through the other. `None`, the default, promises
    /// nothing.
    fn publication_log(&self) -> Option<usize> {
        None
    }

    /// The revision reads see, when the backend names its revisions (a
    /// [`GitStore`]: the commit of its branch that reads come from, after
    /// fetching what is due). `None`, the default: the backend has none.
    fn revision(&self) -> Result<Option<String>> {
        Ok(None)
    }

    /// The keys whose values differ between revision `since` (one that
    /// [`revision`](Store::revision) gave) and the one reads see now,
    /// sorted. `None` when the backend cannot tell: it has no revisions
    /// (the default), or does not know `since`.
    fn changed_since(&self, since: &str) -> Result<Option<Vec<String>>> {
        let _ = since;
        Ok(None)
    }
}

/// A store behind a smart pointer is a store.
macro_rules! forward_store {
    ($($pointer:ident),*) => {$(
        impl<S: Store + ?Sized> Store for $pointer<S> {
            fn get(&self, key: &str) -> Result<Option<Entry>> {
                (**self).get(key)
            }
            fn list(&self, prefix: &str) -> Result<Vec<String>> {
                (**self).list(prefix)
            }
            fn commit(&self, ops: &[Op]) -> Result<()> {
                (**self).commit(ops)
            }
            fn commit_with(&self, ops: &[Op], durability: Durability) -> Result<()> {
                (**self).commit_with(ops, durability)
            }
            fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Entry>>> {
                (**self).get_many(keys)
            }
            fn checkpoint(&self) -> Result<()> {
                (**self).checkpoint()
            }
            fn sync(&self) -> Result<()> {
                (**self).sync()
            }
            fn refresh(&self) -> Result<()> {
                (**self).refresh()
            }
            fn describe(&self) -> String {
                (**self).describe()
            }
            fn publication_log(&self) -> Option<usize> {
                (**self).publication_log()
            }
            fn revision(&self) -> Result<Option<String>> {
                (**self).revision()
            }
            fn changed_since(&self, since: &str) -> Result<Option<Vec<String>>> {
                (**self).changed_since(since)
            }
        }
    )*};
}

forward_store!(Arc, Box);

/// Check that `key` may be stored (re-exported from [`crate::refs`]):
/// backends call this on every key they are given.
pub use crate::refs::validate_key;

/// Check a [`Store::list`] prefix: empty (everything), or a valid key
/// followed by `/` and the start of a segment (possibly empty), such as
/// `pkg/@r`.
pub fn validate_prefix(prefix: &str) -> Result<()> {
    let (dir, partial) = match prefix.rfind('/') {
        Some(i) => (Some(&prefix[..i]), &prefix[i + 1..]),
        None => (None, prefix),
    };
    if let Some(dir) = dir {
        validate_key(dir).map_err(|e| e.context(format!("invalid list prefix {prefix:?}")))?;
    }
    if partial.chars().any(|c| c.is_control() || c == '\\') {
        return Err(Error::invalid_ref(format!(
            "invalid list prefix {prefix:?}: control character or backslash"
        )));
    }
    Ok(())
}

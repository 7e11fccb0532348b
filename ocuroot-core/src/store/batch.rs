//! Checking a batch of [`Op`]s: the part of [`Store::commit`](super::Store::commit) every backend
//! shares. [`check_batch`] validates the keys, checks each expectation
//! against the store as the ops before it leave it, and returns the writes to
//! apply, or the [`Conflict`](crate::ErrorKind::Conflict) naming the key.

use std::collections::BTreeMap;

use super::{Expect, Op, Version, validate_key};
use crate::Result;

/// One write of a batch that passed [`check_batch`]: what the backend applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write<'a> {
    /// Store `value` at `key`; its version is `version`.
    Put {
        /// The key.
        key: &'a str,
        /// The new value.
        value: &'a [u8],
        /// The version the value gets (from `check_batch`'s `new_version`).
        version: Version,
    },
    /// Remove `key`, which may already be absent.
    Delete {
        /// The key.
        key: &'a str,
    },
}

impl Write<'_> {
    /// The key written.
    pub fn key(&self) -> &str {
        match self {
            Write::Put { key, .. } | Write::Delete { key } => key,
        }
    }
}

/// Check a batch for [`Store::commit`](super::Store::commit) and return the writes to apply, in
/// key order, one per key written (the last op on a key wins).
///
/// Every key is first checked with [`validate_key`]. Then each op's
/// expectation is checked in order, against the store as left by the ops
/// before it in the batch: `current(key)` gives a key's version before the
/// batch (`None`: absent; called at most once per key, and only when an
/// expectation needs it), and `new_version(value)` the version a put gives
/// its value (a counter, or [`Version::of_bytes`] for a content-addressed
/// store). The first expectation not met is a
/// [`Conflict`](crate::ErrorKind::Conflict) naming the key, and nothing
/// should be written; an error from `current` is returned as is.
///
/// The backend's part is to hold its lock (or transaction) from the first
/// `current` call until the writes are applied, so the batch is atomic. A
/// whole commit, over a map under a mutex (as [`MemoryStore`](super::MemoryStore)'s):
///
/// ```
/// use std::collections::BTreeMap;
/// use std::sync::Mutex;
///
/// use ocuroot_core::store::{Entry, Op, Expect, Version, Write, check_batch};
///
/// let map: Mutex<BTreeMap<String, Entry>> = Mutex::default();
/// let commit = |ops: &[Op]| -> ocuroot_core::Result<()> {
///     let mut map = map.lock().unwrap();
///     let writes = check_batch(
///         ops,
///         |key| Ok(map.get(key).map(|e| e.version)),
///         Version::of_bytes,
///     )?;
///     for write in writes {
///         match write {
///             Write::Put { key, value, version } => {
///                 let value = value.to_vec();
///                 map.insert(key.to_string(), Entry { value, version });
///             }
///             Write::Delete { key } => {
///                 map.remove(key);
///             }
///         }
///     }
///     Ok(())
/// };
/// commit(&[Op::put("a", b"1".to_vec(), Expect::Absent)])?;
/// let err = commit(&[
///     Op::put("b", b"2".to_vec(), Expect::Any),
///     Op::put("a", b"3".to_vec(), Expect::Absent),
/// ])
/// .unwrap_err();
/// assert!(err.is_conflict() && err.to_string().contains("conflict on a"));
/// assert!(!map.lock().unwrap().contains_key("b"), "all or nothing");
/// # Ok::<(), ocuroot_core::Error>(())
/// ```
pub fn check_batch<'a>(
    ops: &'a [Op],
    mut current: impl FnMut(&str) -> Result<Option<Version>>,
    mut new_version: impl FnMut(&[u8]) -> Version,
) -> Result<Vec<Write<'a>>> {
    for op in ops {
        validate_key(op.key())?;
    }
    // The state of each key as seen by the next op: from the store, or from
    // an earlier op of this batch.
    let mut seen: BTreeMap<&str, Option<Version>> = BTreeMap::new();
    let mut writes: BTreeMap<&str, Write<'a>> = BTreeMap::new();
    for op in ops {
        let key = op.key();
        let expect = op.expect();
        if expect != Expect::Any {
            let now = match seen.get(key) {
                Some(v) => *v,
                None => {
                    let v = current(key)?;
                    seen.insert(key, v);
                    v
                }
            };
            if !expect.is_met_by(now) {
                return Err(expect.conflict(key, now));
            }
        }
        match op {
            Op::Put { value, .. } => {
                let version = new_version(value);
                seen.insert(key, Some(version));
                writes.insert(
                    key,
                    Write::Put {
                        key,
                        value,
                        version,
                    },
                );
            }
            Op::Delete { .. } => {
                seen.insert(key, None);
                writes.insert(key, Write::Delete { key });
            }
            Op::Check { .. } => {}
        }
    }
    Ok(writes.into_values().collect())
}

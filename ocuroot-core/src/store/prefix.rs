//! [`PrefixStore`]: one store's keys under a prefix of another.

use super::{Durability, Entry, Op, Store, validate_key, validate_prefix};
use crate::{Error, Result};

/// A [`Store`] whose keys live under `prefix` in an inner store.
///
/// Used when one backend holds both state and intent: the state store is
/// `PrefixStore::new(backend.clone(), "state/")` and the intent store
/// `PrefixStore::new(backend, "intent/")`. Keys given to this store are
/// validated before the prefix is added, and keys listed by the inner store
/// are returned without it.
#[derive(Debug, Clone)]
pub struct PrefixStore<S> {
    inner: S,
    prefix: String,
}

impl<S: Store> PrefixStore<S> {
    /// Wrap `inner`, mapping each key `k` to `<prefix>k`. A `/` is appended
    /// to `prefix` if it does not end with one; the prefix must itself be a
    /// valid key.
    pub fn new(inner: S, prefix: &str) -> Result<PrefixStore<S>> {
        let trimmed = prefix.strip_suffix('/').unwrap_or(prefix);
        validate_key(trimmed).map_err(|e| e.context(format!("invalid store prefix {prefix:?}")))?;
        Ok(PrefixStore {
            inner,
            prefix: format!("{trimmed}/"),
        })
    }

    /// Wrap `inner` under one of the crate's own prefixes (`state`,
    /// `intent`): a constant segment, valid by construction.
    pub(crate) fn fixed(inner: S, prefix: &'static str) -> PrefixStore<S> {
        debug_assert!(validate_key(prefix).is_ok() && !prefix.contains('/'));
        PrefixStore {
            inner,
            prefix: format!("{prefix}/"),
        }
    }

    /// The prefix, ending with `/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn outer_key(&self, key: &str) -> Result<String> {
        validate_key(key)?;
        Ok(format!("{}{key}", self.prefix))
    }

    fn map_op(&self, op: &Op) -> Result<Op> {
        Ok(match op {
            Op::Put { key, value, expect } => Op::Put {
                key: self.outer_key(key)?,
                value: value.clone(),
                expect: *expect,
            },
            Op::Delete { key, expect } => Op::Delete {
                key: self.outer_key(key)?,
                expect: *expect,
            },
            Op::Check { key, expect } => Op::Check {
                key: self.outer_key(key)?,
                expect: *expect,
            },
        })
    }
}

impl<S: Store> Store for PrefixStore<S> {
    fn get(&self, key: &str) -> Result<Option<Entry>> {
        self.inner.get(&self.outer_key(key)?)
    }

    fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Entry>>> {
        let outer = keys
            .iter()
            .map(|k| self.outer_key(k))
            .collect::<Result<Vec<_>>>()?;
        let refs: Vec<&str> = outer.iter().map(String::as_str).collect();
        self.inner.get_many(&refs)
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        validate_prefix(prefix)?;
        let keys = self.inner.list(&format!("{}{prefix}", self.prefix))?;
        keys.into_iter()
            .map(|k| match k.strip_prefix(&self.prefix) {
                Some(rest) => Ok(rest.to_string()),
                None => Err(Error::store(format!(
                    "{} listed {k:?}, which is outside the prefix {:?}",
                    self.inner.describe(),
                    self.prefix
                ))),
            })
            .collect()
    }

    fn commit(&self, ops: &[Op]) -> Result<()> {
        self.commit_with(ops, Durability::Immediate)
    }

    fn commit_with(&self, ops: &[Op], durability: Durability) -> Result<()> {
        let mapped = ops
            .iter()
            .map(|op| self.map_op(op))
            .collect::<Result<Vec<_>>>()?;
        self.inner.commit_with(&mapped, durability).map_err(|e| {
            // Conflict messages name the inner key; say which store it is in.
            if e.is_conflict() {
                e.context(format!("in {}", self.describe()))
            } else {
                e
            }
        })
    }

    fn checkpoint(&self) -> Result<()> {
        self.inner.checkpoint()
    }

    fn sync(&self) -> Result<()> {
        self.inner.sync()
    }

    fn refresh(&self) -> Result<()> {
        self.inner.refresh()
    }

    fn describe(&self) -> String {
        format!("{} under {}", self.inner.describe(), self.prefix)
    }

    fn publication_log(&self) -> Option<usize> {
        self.inner.publication_log()
    }
}

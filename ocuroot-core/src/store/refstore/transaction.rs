//! [`Transaction`]: reads and writes committed together, or not at all.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use super::envelope::{Stored, decode, encode, encode_doc, link_target};
use super::{
    RefStore, View, get_via, is_link_position, key_of, link_candidates, match_in, no_fragment,
    parse_resolved, resolve_key,
};
use crate::refs::{Ref, RefGlobSet, StoreRef};
use crate::store::{Durability, Expect, Op, Version};
use crate::{Error, Result};

/// A write waiting for commit.
#[derive(Debug, Clone)]
struct Pending {
    /// The new envelope, or `None` to delete.
    value: Option<Vec<u8>>,
    /// Created with [`Transaction::create`]: the key must be absent in the
    /// store at commit.
    create: bool,
}

/// Reads and writes committed together, or not at all.
///
/// Reads see the transaction's own pending writes. Every key read from the
/// store (documents and the prefixes looked up for links) is remembered with
/// its version, and [`commit`](Self::commit) fails with a conflict if any of
/// them changed meanwhile. Listing ([`match_globs`](Self::match_globs)) is not
/// tracked: to claim a name found by listing, write it with
/// [`create`](Self::create).
pub struct Transaction<'a> {
    store: &'a RefStore,
    /// Keys read from the store: their version then, and their value.
    read: BTreeMap<String, (Option<Version>, Option<Vec<u8>>)>,
    /// Writes waiting for commit.
    pending: BTreeMap<String, Pending>,
}

impl fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transaction")
            .field("store", &self.store.describe())
            .field("read", &self.read.keys().collect::<Vec<_>>())
            .field("pending", &self.pending.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl View for Transaction<'_> {
    fn fetch(&mut self, keys: &[&str]) -> Result<()> {
        let missing: Vec<&str> = keys
            .iter()
            .copied()
            .filter(|k| !self.pending.contains_key(*k) && !self.read.contains_key(*k))
            .collect();
        if !missing.is_empty() {
            let entries = self.store.store.get_many(&missing)?;
            for (key, entry) in missing.iter().zip(entries) {
                let value = entry.map(|e| (e.version, e.value));
                let (version, bytes) = match value {
                    Some((v, b)) => (Some(v), Some(b)),
                    None => (None, None),
                };
                self.read.insert(key.to_string(), (version, bytes));
            }
        }
        Ok(())
    }

    fn value(&self, key: &str) -> Option<&[u8]> {
        match self.pending.get(key) {
            Some(p) => p.value.as_deref(),
            None => self.read.get(key).and_then(|(_, b)| b.as_deref()),
        }
    }
}

impl<'a> Transaction<'a> {
    pub(super) fn new(store: &'a RefStore) -> Transaction<'a> {
        Transaction {
            store,
            read: BTreeMap::new(),
            pending: BTreeMap::new(),
        }
    }

    /// The document `r` names, as [`RefStore::get`], seeing this
    /// transaction's pending writes.
    pub fn get<R: StoreRef + ?Sized>(&mut self, r: &R) -> Result<Option<Value>> {
        get_via(self, r)
    }

    /// [`get`](Self::get) of a ref given as a string.
    pub fn get_str(&mut self, r: &str) -> Result<Option<Value>> {
        self.get(&Ref::parse(r)?)
    }

    /// Whether [`get`](Self::get) would return a value.
    pub fn exists<R: StoreRef + ?Sized>(&mut self, r: &R) -> Result<bool> {
        Ok(self.get(r)?.is_some())
    }

    /// `r` with links resolved, as [`RefStore::resolve`], seeing pending
    /// writes.
    pub fn resolve(&mut self, r: &Ref) -> Result<Ref> {
        let key = key_of(r)?;
        let resolved = resolve_key(self, &key)?;
        if resolved == key {
            return Ok(r.clone());
        }
        parse_resolved(&resolved, &r.fragment)
    }

    /// The target if exactly `r` is a link, seeing pending writes.
    pub fn is_link(&mut self, r: &Ref) -> Result<Option<Ref>> {
        let key = key_of(r)?;
        self.fetch(&[&key])?;
        match self.value(&key) {
            Some(bytes) => match link_target(&key, bytes)? {
                Some(target) => Ok(Some(
                    Ref::parse(&target).map_err(|e| e.context(format!("link {key}")))?,
                )),
                None => Ok(None),
            },
            None => Ok(None),
        }
    }

    /// Write the document `r` names (through links, like the original:
    /// setting `pkg/@v1/custom/x` where `pkg/@v1` links to `pkg/@r1` writes
    /// `pkg/@r1/custom/x`). `r` must not have a fragment.
    pub fn set<R: StoreRef + ?Sized>(&mut self, r: &R, value: Value) -> Result<()> {
        self.set_doc(r, &value)
    }

    /// [`set`](Self::set) of anything that serialises to a JSON document,
    /// written as `serde_json::to_value(doc)` would be, without building
    /// that value first.
    pub fn set_doc<R, T>(&mut self, r: &R, doc: &T) -> Result<()>
    where
        R: StoreRef + ?Sized,
        T: serde::Serialize + ?Sized,
    {
        no_fragment(r.get_ref(), "set")?;
        let key = resolve_key(self, &key_of(r)?)?.into_owned();
        self.stage(key, Some(encode_doc(doc)?));
        Ok(())
    }

    /// Write a document that must not exist yet: the commit fails with a
    /// conflict if it exists in the store by then, and this call fails with a
    /// conflict if the transaction already knows it exists. How release
    /// numbers are allocated and runs are claimed.
    pub fn create<R: StoreRef + ?Sized>(&mut self, r: &R, value: Value) -> Result<()> {
        self.create_doc(r, &value)
    }

    /// [`create`](Self::create) of anything that serialises to a JSON
    /// document, written as [`set_doc`](Self::set_doc) writes it.
    pub fn create_doc<R, T>(&mut self, r: &R, doc: &T) -> Result<()>
    where
        R: StoreRef + ?Sized,
        T: serde::Serialize + ?Sized,
    {
        no_fragment(r.get_ref(), "create")?;
        let key = resolve_key(self, &key_of(r)?)?.into_owned();
        let known_present = match self.pending.get(&key) {
            Some(p) => p.value.is_some(),
            None => self.read.get(&key).is_some_and(|(v, _)| v.is_some()),
        };
        if known_present {
            return Err(Error::conflict(format!(
                "conflict on {key}: cannot create {}, it already exists",
                r.get_ref()
            )));
        }
        self.pending.insert(
            key,
            Pending {
                value: Some(encode_doc(doc)?),
                create: true,
            },
        );
        Ok(())
    }

    /// Delete the document `r` names (through links). Deleting a document
    /// that does not exist is a no-op. To remove a link itself, use
    /// [`unlink`](Self::unlink).
    pub fn delete<R: StoreRef + ?Sized>(&mut self, r: &R) -> Result<()> {
        no_fragment(r.get_ref(), "delete")?;
        let key = resolve_key(self, &key_of(r)?)?.into_owned();
        self.stage(key, None);
        Ok(())
    }

    /// Make exactly `r` a link to `target`. Replacing a link is fine;
    /// replacing a document is an error. Linking to the current target is a
    /// no-op.
    pub fn link<R, T>(&mut self, r: &R, target: &T) -> Result<()>
    where
        R: StoreRef + ?Sized,
        T: StoreRef + ?Sized,
    {
        let (r, key) = (r.get_ref(), key_of(r)?);
        let (target, target_key) = (target.get_ref(), key_of(target)?);
        no_fragment(r, "link")?;
        no_fragment(target, "link to")?;
        if !is_link_position(&key) {
            return Err(Error::invalid_input(format!(
                "cannot link {r}: links can only be tags (<pkg>/@<tag>) or work refs of the current release or a tag (<pkg>/@[<tag>]/<type>/<name>)"
            )));
        }
        self.fetch(&[&key])?;
        if let Some(bytes) = self.value(&key) {
            match decode(&key, bytes)? {
                Stored::Link(current) if current == target_key => return Ok(()),
                Stored::Link(_) => {}
                Stored::Doc(_) => {
                    return Err(Error::invalid_input(format!(
                        "cannot link {r} to {target}: existing ref is not a link, cannot overwrite"
                    )));
                }
            }
        }
        let link = encode(&Stored::Link(target_key.into_owned()))?;
        self.stage(key.into_owned(), Some(link));
        Ok(())
    }

    /// Remove the link at exactly `r`. No-op if there is nothing there; an
    /// error if `r` is a document.
    pub fn unlink(&mut self, r: &Ref) -> Result<()> {
        no_fragment(r, "unlink")?;
        let key = key_of(r)?;
        self.fetch(&[&key])?;
        let Some(bytes) = self.value(&key) else {
            return Ok(());
        };
        if let Stored::Doc(_) = decode(&key, bytes)? {
            return Err(Error::invalid_input(format!(
                "cannot unlink {r}: it is a document, not a link"
            )));
        }
        self.stage(key.into_owned(), None);
        Ok(())
    }

    /// Stored refs matching any of `globs`, as [`RefStore::match_globs`],
    /// including this transaction's pending writes. The listing itself is
    /// not checked at commit.
    pub fn match_globs(&mut self, globs: &[impl AsRef<str>]) -> Result<Vec<String>> {
        let set = RefGlobSet::new(globs)?;
        let mut out = match_in(self.store.store.as_ref(), &set)?;
        for (key, p) in &self.pending {
            if p.value.is_some() {
                if set.is_match(key) {
                    out.insert(key.clone());
                }
            } else {
                out.remove(key);
            }
        }
        Ok(out.into_iter().collect())
    }

    /// Read several refs, and the prefixes their link resolution looks at,
    /// in one store call (one lock, one consistent snapshot). Later reads of
    /// them in this transaction need no further round trips.
    pub fn prefetch<R: StoreRef>(&mut self, refs: &[R]) -> Result<()> {
        let keys = refs.iter().map(key_of).collect::<Result<Vec<_>>>()?;
        self.prefetch_keys(&keys)
    }

    /// [`prefetch`](Self::prefetch) of store keys.
    fn prefetch_keys(&mut self, keys: &[Cow<'_, str>]) -> Result<()> {
        let mut all: Vec<&str> = Vec::new();
        for k in keys {
            for c in link_candidates(k) {
                if !all.contains(&c) {
                    all.push(c);
                }
            }
        }
        self.fetch(&all)
    }

    /// Record a write of `key` (`None` deletes), keeping a create-if-absent
    /// expectation an earlier write in this transaction set.
    fn stage(&mut self, key: String, value: Option<Vec<u8>>) {
        let create = self.pending.get(&key).is_some_and(|p| p.create);
        self.pending.insert(key, Pending { value, create });
    }

    /// Whether the transaction has writes to commit.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Commit: one [`Store::commit`](crate::store::Store::commit) of every pending write plus a check of
    /// every key read. Fails with a conflict, writing nothing, if any key read
    /// has changed, or a key given to [`create`](Self::create) exists. A
    /// transaction that only read succeeds if everything it read was still
    /// current, so its reads were consistent.
    pub fn commit(self) -> Result<()> {
        self.commit_with(Durability::Immediate)
    }

    /// [`commit`](Self::commit) with a choice of [`Durability`].
    pub fn commit_with(self, durability: Durability) -> Result<()> {
        let Transaction {
            store,
            read,
            pending,
        } = self;
        if pending.is_empty() && read.is_empty() {
            return Ok(());
        }
        // Writes first, then checks of the keys only read; the values move
        // into the batch.
        let checks: Vec<Op> = read
            .iter()
            .filter(|(key, _)| !pending.contains_key(*key))
            .map(|(key, (version, _))| Op::check(key.clone(), Expect::unchanged(*version)))
            .collect();
        let mut ops = Vec::with_capacity(pending.len() + checks.len());
        for (key, p) in pending {
            let expect = if p.create {
                Expect::Absent
            } else {
                match read.get(&key) {
                    Some((version, _)) => Expect::unchanged(*version),
                    None => Expect::Any,
                }
            };
            ops.push(match p.value {
                Some(bytes) => Op::put(key, bytes, expect),
                None => Op::delete(key, expect),
            });
        }
        ops.extend(checks);
        store.store.commit_with(&ops, durability)
    }
}

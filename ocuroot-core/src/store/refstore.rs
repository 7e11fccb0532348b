//! [`RefStore`]: JSON documents, links, globs and transactions over any
//! [`Store`]. The envelope format and link rules are documented on the type.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::{Durability, Expect, Op, Store, Version, validate_key, validate_prefix};
use crate::refs::{Ref, RefGlobSet, StoreRef, is_release_id};
use crate::{Error, Result};

/// How many times [`RefStore::update`] runs its closure before giving up on
/// conflicts.
const UPDATE_ATTEMPTS: u32 = 16;

/// JSON documents addressed by refs, with links, globs and transactions,
/// over any [`Store`]. Cheap to clone.
///
/// Each key holds an envelope, as the original Ocuroot wrote it:
///
/// ```json
/// {"kind": "ref", "body": {"output": {"x": 1}}}
/// {"kind": "link", "body": "repo/-/pkg.ocu.star/@r3/deploy/prod"}
/// ```
///
/// Other fields written by the original (`body_type`, `links`, stacks) are
/// ignored when reading and not written.
///
/// # Links
///
/// A link works like a symlink on a ref *prefix*. To resolve a ref, the ref
/// (without its fragment) and then each parent prefix that still contains a
/// `/` is looked up; the first, deepest, link found has its prefix replaced by
/// its target, once. Links to links are not followed. So with the link
/// `pkg/@/deploy/staging` -> `pkg/@r1/deploy/staging`, the ref
/// `pkg/@/deploy/staging#output/x` reads `output.x` of the release 1
/// deployment, and with the tag `pkg/@v1` -> `pkg/@r1`, `pkg/@v1/custom/x`
/// reads `pkg/@r1/custom/x`. Writing and deleting go through links too;
/// [`Transaction::link`] and [`Transaction::unlink`] act on the exact ref.
///
/// # Transactions
///
/// A [`Transaction`] buffers writes and remembers the version of every key it
/// reads (including the link lookups). [`Transaction::commit`] is one
/// [`Store::commit`] whose expectations are exactly those versions, so it
/// fails with a conflict if anything the transaction depended on changed, and
/// nothing is written. [`RefStore::update`] retries such conflicts.
///
/// ```
/// use std::sync::Arc;
/// use ocuroot_core::refs::Ref;
/// use ocuroot_core::store::{MemoryStore, RefStore};
/// use serde_json::json;
///
/// let store = RefStore::new(Arc::new(MemoryStore::new()));
/// let r1 = Ref::parse("repo/-/pkg.ocu.star/@r1/deploy/staging")?;
/// let current = Ref::parse("repo/-/pkg.ocu.star/@/deploy/staging")?;
/// store.update(|tx| {
///     tx.set(&r1, json!({"output": {"host": "a.example"}}))?;
///     tx.link(&current, &r1)
/// })?;
/// let host = store.get_str("repo/-/pkg.ocu.star/@/deploy/staging#output/host")?;
/// assert_eq!(host, Some(json!("a.example")));
/// # Ok::<(), ocuroot_core::Error>(())
/// ```
#[derive(Clone)]
pub struct RefStore {
    store: Arc<dyn Store>,
}

impl fmt::Debug for RefStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RefStore")
            .field(&self.store.describe())
            .finish()
    }
}

/// A decoded envelope.
#[derive(Debug, Clone, PartialEq)]
enum Stored {
    Doc(Value),
    Link(String),
}

#[derive(serde::Deserialize)]
struct Envelope {
    kind: String,
    #[serde(default)]
    body: Value,
}

/// Decodes only the kind, skipping over the body without building it: used
/// on the parent prefixes looked up during link resolution, which are
/// usually large documents (a release) rather than links.
#[derive(serde::Deserialize)]
struct KindProbe {
    kind: String,
}

fn corrupt(key: &str, why: impl fmt::Display) -> Error {
    Error::store(format!("corrupt document at {key}: {why}"))
}

fn decode(key: &str, bytes: &[u8]) -> Result<Stored> {
    let env: Envelope = serde_json::from_slice(bytes).map_err(|e| corrupt(key, e))?;
    match env.kind.as_str() {
        "ref" => Ok(Stored::Doc(env.body)),
        "link" => match env.body {
            Value::String(target) => Ok(Stored::Link(target)),
            other => Err(corrupt(
                key,
                format!("link target is not a string: {other}"),
            )),
        },
        other => Err(corrupt(key, format!("unknown kind {other:?}"))),
    }
}

/// The target if `bytes` is a link.
fn link_target(key: &str, bytes: &[u8]) -> Result<Option<String>> {
    let probe: KindProbe = serde_json::from_slice(bytes).map_err(|e| corrupt(key, e))?;
    if probe.kind != "link" {
        return Ok(None);
    }
    match decode(key, bytes)? {
        Stored::Link(target) => Ok(Some(target)),
        Stored::Doc(_) => Ok(None),
    }
}

/// An envelope to write: serialised straight from the borrowed body, without
/// building (or cloning into) a JSON value first.
#[derive(serde::Serialize)]
struct EnvelopeOut<'a, T: ?Sized> {
    kind: &'static str,
    body: &'a T,
}

fn encode(stored: &Stored) -> Result<Vec<u8>> {
    match stored {
        Stored::Doc(body) => encode_doc(body),
        Stored::Link(target) => Ok(serde_json::to_vec_pretty(&EnvelopeOut {
            kind: "link",
            body: target,
        })?),
    }
}

/// The envelope of a document, from anything that serialises to one.
fn encode_doc<T: serde::Serialize + ?Sized>(body: &T) -> Result<Vec<u8>> {
    Ok(serde_json::to_vec_pretty(&EnvelopeOut {
        kind: "ref",
        body,
    })?)
}

/// The store key of `r`: its canonical string without the fragment. The ref
/// must be absolute.
fn key_of<R: StoreRef + ?Sized>(r: &R) -> Result<Cow<'_, str>> {
    r.store_key()
        .map_err(|e| e.context(format!("cannot store {}", r.get_ref())))
}

fn no_fragment(r: &Ref, what: &str) -> Result<()> {
    if r.fragment.is_empty() {
        Ok(())
    } else {
        Err(Error::invalid_ref(format!(
            "cannot {what} {r}: a fragment (#{}) can only be read, not written",
            r.fragment
        )))
    }
}

/// Walk `#a/b/c` into `doc`. A missing key, a non-object on the way, or a
/// `null` at the end gives `None`.
fn walk_fragment(doc: Value, fragment: &str) -> Option<Value> {
    if fragment.is_empty() {
        return Some(doc);
    }
    let mut current = doc;
    for part in fragment.split('/') {
        current = match current {
            Value::Object(mut map) => map.remove(part)?,
            _ => return None,
        };
        if current.is_null() {
            return None;
        }
    }
    Some(current)
}

/// Whether a link may live at `key`: a release ref (`<pkg>/@<tag>`, last
/// segment starting with `@`) or a work ref (`<pkg>/@[<tag>]/<type>/<name>`,
/// third segment from the end starting with `@`), never one naming a
/// release by id. The engine only ever links
/// these (tags, `@/task/<name>`, `@/deploy/<env>`; the original also
/// `repo.ocu.star/@` and `@/push/index`), so link resolution only needs to
/// look at these prefixes: two reads instead of one per path segment.
///
/// A release id (`@r<digits>`) is never a link (tags may not look like one),
/// so release documents, which can be large, are not read to find that out;
/// nor is anything in a release by id (`<pkg>/@r1/task/<name>`), so the
/// documents a run writes in its release cost no link lookups.
fn is_link_position(key: &str) -> bool {
    let mut segments = key.rsplit('/');
    let last = segments.next().unwrap_or("");
    let third = segments.nth(1);
    link_position(last, third)
}

/// [`is_link_position`] of a key whose last segment is `last` and whose
/// third segment from the end is `third`.
fn link_position(last: &str, third: Option<&str>) -> bool {
    let release_or_tag = |s: &str| s.starts_with('@') && !is_release_id(&s[1..]);
    release_or_tag(last) || third.is_some_and(release_or_tag)
}

/// `key`, then each parent prefix that still contains a `/` and could be a
/// link, deepest first.
fn link_candidates(key: &str) -> Vec<&str> {
    let mut out = vec![key];
    // One pass over the segments, left to right, remembering the two before.
    let mut before: [Option<&str>; 2] = [None, None];
    let mut end = 0;
    let mut segments = key.split('/').enumerate().peekable();
    while let Some((i, segment)) = segments.next() {
        end += segment.len();
        let prefix = i > 0 && segments.peek().is_some();
        if prefix && link_position(segment, before[0]) {
            out.push(&key[..end]);
        }
        before = [before[1], Some(segment)];
        end += 1;
    }
    out[1..].reverse();
    out
}

/// Something keys can be read from: the store directly, or a transaction.
/// Keys are fetched first (one store call for those not read yet), then
/// looked at without copying.
trait View {
    /// Read those of `keys` not read yet, in one store call.
    fn fetch(&mut self, keys: &[&str]) -> Result<()>;
    /// The raw value of a fetched key (`None` when it is absent).
    fn value(&self, key: &str) -> Option<&[u8]>;
}

/// The store directly, keeping what it read for one operation.
struct Direct<'a> {
    store: &'a dyn Store,
    read: Vec<(String, Option<Vec<u8>>)>,
}

impl<'a> Direct<'a> {
    fn new(store: &'a dyn Store) -> Direct<'a> {
        Direct {
            store,
            read: Vec::new(),
        }
    }
}

impl View for Direct<'_> {
    fn fetch(&mut self, keys: &[&str]) -> Result<()> {
        let missing: Vec<&str> = keys
            .iter()
            .copied()
            .filter(|k| !self.read.iter().any(|(read, _)| read == k))
            .collect();
        if !missing.is_empty() {
            let entries = self.store.get_many(&missing)?;
            for (key, entry) in missing.iter().zip(entries) {
                self.read.push((key.to_string(), entry.map(|e| e.value)));
            }
        }
        Ok(())
    }

    fn value(&self, key: &str) -> Option<&[u8]> {
        self.read
            .iter()
            .find(|(read, _)| read == key)
            .and_then(|(_, value)| value.as_deref())
    }
}

/// Where `key`'s links lead: `key` itself when no link applies.
fn resolve_key<'k>(view: &mut dyn View, key: &'k str) -> Result<Cow<'k, str>> {
    let candidates = link_candidates(key);
    view.fetch(&candidates)?;
    for candidate in &candidates {
        let Some(bytes) = view.value(candidate) else {
            continue;
        };
        if let Some(target) = link_target(candidate, bytes)? {
            let resolved = format!("{target}{}", &key[candidate.len()..]);
            validate_key(&resolved)
                .map_err(|e| e.context(format!("link {candidate} -> {target}")))?;
            return Ok(Cow::Owned(resolved));
        }
    }
    Ok(Cow::Borrowed(key))
}

/// Read the document `r` names, following links and the fragment.
fn get_via<R: StoreRef + ?Sized>(view: &mut dyn View, r: &R) -> Result<Option<Value>> {
    get_key(view, r.get_ref(), &key_of(r)?)
}

/// [`get_via`] of `r`, whose store key is `key`.
fn get_key(view: &mut dyn View, r: &Ref, key: &str) -> Result<Option<Value>> {
    let resolved = resolve_key(view, key)?;
    if resolved != key {
        view.fetch(&[&resolved])?;
    }
    let Some(bytes) = view.value(&resolved) else {
        return Ok(None);
    };
    match decode(&resolved, bytes)? {
        Stored::Doc(doc) => Ok(walk_fragment(doc, &r.fragment)),
        Stored::Link(target) => Err(Error::store(format!(
            "{r} resolves to {resolved}, which is itself a link (to {target}); links to links are not followed"
        ))),
    }
}

fn parse_resolved(key: &str, fragment: &str) -> Result<Ref> {
    let text = if fragment.is_empty() {
        key.to_string()
    } else {
        format!("{key}#{fragment}")
    };
    Ref::parse(&text).map_err(|e| e.context(format!("link resolved to {text:?}")))
}

/// The list prefixes needed to see every key matching `set`: the globs'
/// literal prefixes, leaving out those no valid key can start with (they
/// match nothing).
fn glob_prefixes(set: &RefGlobSet) -> Vec<String> {
    set.prefixes()
        .into_iter()
        .filter(|p| validate_prefix(p).is_ok())
        .collect()
}

fn match_in(store: &dyn Store, set: &RefGlobSet) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for prefix in glob_prefixes(set) {
        for key in store.list(&prefix)? {
            if set.is_match(&key) {
                out.insert(key);
            }
        }
    }
    Ok(out)
}

impl RefStore {
    /// Documents over `store`.
    pub fn new(store: Arc<dyn Store>) -> RefStore {
        RefStore { store }
    }

    /// The underlying key/value store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The underlying store's description (`fs:/path`, `memory`...).
    pub fn describe(&self) -> String {
        self.store.describe()
    }

    /// The document `r` names, after resolving links, walked into by the
    /// ref's `#fragment` (object keys separated by `/`). `None` if there is no
    /// document, or the fragment names a missing key or `null`.
    pub fn get<R: StoreRef + ?Sized>(&self, r: &R) -> Result<Option<Value>> {
        get_via(&mut Direct::new(self.store.as_ref()), r)
    }

    /// [`get`](Self::get) of a ref given as a string.
    pub fn get_str(&self, r: &str) -> Result<Option<Value>> {
        self.get(&Ref::parse(r)?)
    }

    /// Whether [`get`](Self::get) would return a value.
    pub fn exists<R: StoreRef + ?Sized>(&self, r: &R) -> Result<bool> {
        Ok(self.get(r)?.is_some())
    }

    /// `r` with links resolved: the deepest linked prefix of `r` (the whole
    /// ref first) replaced by its target, once. The fragment is kept.
    pub fn resolve(&self, r: &Ref) -> Result<Ref> {
        let key = key_of(r)?;
        let resolved = resolve_key(&mut Direct::new(self.store.as_ref()), &key)?;
        if resolved == key {
            return Ok(r.clone());
        }
        parse_resolved(&resolved, &r.fragment)
    }

    /// The target if exactly `r` (without its fragment) is a link.
    pub fn is_link(&self, r: &Ref) -> Result<Option<Ref>> {
        let key = key_of(r)?;
        match self.store.get(&key)? {
            Some(entry) => match link_target(&key, &entry.value)? {
                Some(target) => Ok(Some(
                    Ref::parse(&target).map_err(|e| e.context(format!("link {key}")))?,
                )),
                None => Ok(None),
            },
            None => Ok(None),
        }
    }

    /// Every stored ref (documents and links) matching any of `globs`,
    /// sorted and without duplicates. Only the subtrees under each glob's
    /// literal prefix are listed.
    pub fn match_globs(&self, globs: &[impl AsRef<str>]) -> Result<Vec<String>> {
        let set = RefGlobSet::new(globs)?;
        Ok(match_in(self.store.as_ref(), &set)?.into_iter().collect())
    }

    /// A new transaction. Nothing is written until
    /// [`commit`](Transaction::commit).
    pub fn transaction(&self) -> Transaction<'_> {
        Transaction {
            store: self,
            read: BTreeMap::new(),
            pending: BTreeMap::new(),
        }
    }

    /// Run `f` in a transaction and commit it, running `f` again on a fresh
    /// transaction when the commit (or `f`) fails with a conflict, up to 16
    /// times with a short randomised backoff. Returns `f`'s value, or the
    /// last conflict.
    pub fn update<T>(&self, f: impl FnMut(&mut Transaction<'_>) -> Result<T>) -> Result<T> {
        self.update_with(Durability::Immediate, f)
    }

    /// [`update`](Self::update), committing with `durability`.
    pub fn update_with<T>(
        &self,
        durability: Durability,
        mut f: impl FnMut(&mut Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut tx = self.transaction();
            let result = f(&mut tx).and_then(|value| tx.commit_with(durability).map(|()| value));
            match result {
                Err(e) if e.is_conflict() && attempt < UPDATE_ATTEMPTS => {
                    tracing::debug!(attempt, error = %e, "retrying a conflicting transaction");
                    std::thread::sleep(backoff(attempt));
                }
                Err(e) if e.is_conflict() => {
                    return Err(e.context(format!("gave up after {attempt} attempts")));
                }
                other => return other,
            }
        }
    }
}

/// Up to 2^attempt ms (capped at 64 ms), randomised so contending writers
/// spread out.
fn backoff(attempt: u32) -> Duration {
    let max_micros = 1000u64 << attempt.min(6);
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    Duration::from_micros(max_micros / 2 + random % (max_micros / 2))
}

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

impl Transaction<'_> {
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

    /// Commit: one [`Store::commit`] of every pending write plus a check of
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    /// The parent prefixes that could be links, found the slow way: every
    /// parent prefix with a `/`, deepest first.
    fn candidates_by_prefix(key: &str) -> Vec<&str> {
        let mut out = vec![key];
        let mut current = key;
        while let Some(i) = current.rfind('/') {
            current = &current[..i];
            if !current.contains('/') {
                break;
            }
            if is_link_position(current) {
                out.push(current);
            }
        }
        out
    }

    #[test]
    fn link_candidates_are_the_link_positions_deepest_first() {
        // Nothing in a release named by id can be a link.
        assert_eq!(
            link_candidates("repo/-/pkg.ocu.star/@r1/task/build/1/status/pending"),
            ["repo/-/pkg.ocu.star/@r1/task/build/1/status/pending"]
        );
        // Under a tag, the tag and the work ref are candidates.
        assert_eq!(
            link_candidates("repo/-/pkg.ocu.star/@v1/task/build/1"),
            [
                "repo/-/pkg.ocu.star/@v1/task/build/1",
                "repo/-/pkg.ocu.star/@v1/task/build",
                "repo/-/pkg.ocu.star/@v1",
            ]
        );
        assert_eq!(
            link_candidates("repo/-/pkg.ocu.star/@/deploy/prod"),
            ["repo/-/pkg.ocu.star/@/deploy/prod", "repo/-/pkg.ocu.star/@"]
        );
        for key in [
            "a",
            "a/b",
            "repo/-/pkg.ocu.star/@v1/custom/x",
            "repo/-/dir/pkg.ocu.star/@v2/deploy/prod/@x/y/@z/w",
            "@/environment/prod",
            "repo/-/@r1/task/a/@b/c",
            "repo/-/p/@/task/x/1/logs",
        ] {
            assert_eq!(link_candidates(key), candidates_by_prefix(key), "{key}");
        }
    }

    #[test]
    fn set_doc_writes_what_set_of_the_value_writes() {
        #[derive(serde::Serialize)]
        struct Doc {
            name: &'static str,
            n: u32,
            nested: BTreeMap<&'static str, Vec<f64>>,
            skipped: Option<u8>,
        }
        let doc = Doc {
            name: "x \"quoted\"",
            n: 7,
            nested: BTreeMap::from([("b", vec![1.5, -2.0]), ("a", vec![])]),
            skipped: None,
        };
        let store = RefStore::new(Arc::new(MemoryStore::new()));
        let a = Ref::parse("repo/-/p.ocu.star/@r1/task/a").unwrap();
        let b = Ref::parse("repo/-/p.ocu.star/@r1/task/b").unwrap();
        store
            .update(|tx| {
                tx.set_doc(&a, &doc)?;
                tx.set(&b, serde_json::to_value(&doc)?)
            })
            .unwrap();
        let raw = |r: &Ref| {
            store
                .store()
                .get(&key_of(r).unwrap())
                .unwrap()
                .unwrap()
                .value
        };
        assert_eq!(raw(&a), raw(&b));
    }
}

//! [`RefStore`]: JSON documents, links, globs and transactions over any
//! [`Store`]. The envelope format and link rules are documented on the type.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

mod envelope;
mod transaction;

use envelope::{Stored, decode, link_target};
pub use transaction::Transaction;

use super::{Durability, Store, validate_key, validate_prefix};
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
pub(crate) trait View {
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

    /// Whether a batch committed here, deferred or not, is visible to
    /// other agents no later than any batch committed afterwards through
    /// `later` (see [`Store::publication_log`]).
    pub fn publishes_before(&self, later: &RefStore) -> bool {
        self.store
            .publication_log()
            .is_some_and(|log| later.store.publication_log() == Some(log))
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
        Transaction::new(self)
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

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

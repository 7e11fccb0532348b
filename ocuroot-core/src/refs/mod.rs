//! Refs: the addresses of documents in a state or intent store.
//!
//! # Grammar
//!
//! The canonical form of a ref (what [`Ref`]'s `Display` writes) is
//!
//! ```text
//! [<repo>/-/]<package path>[/@<release>][/<type>/<subpath>][#<fragment>]
//! @<release>/<type>/<subpath>[#<fragment>]                     (global refs)
//! ```
//!
//! - `<repo>` is the repo alias or the origin URL as a path (`github.com/org/repo`).
//! - `<package path>` is the path of a package file from the repo root.
//! - `@<release>` is a release id (`@r1`), a tag link (`@v1.2`), or `@` alone:
//!   the current release, resolved through links by the store.
//! - `<type>` is a [`SubPathType`] (`task`, `deploy`, ...) and `<subpath>` a
//!   `/`-separated path below it (`deploy/prod/1/status/complete`).
//! - `#<fragment>` walks into the JSON document (`#output/host`).
//!
//! Relative forms are resolved with [`Ref::relative_to`]:
//! `./task/build` (this release), `./@/deploy/prod` (the current release of
//! this package), `./-/other/pkg.ocu.star/@/deploy/prod` and `//other/pkg.ocu.star`
//! (repo-root relative), and bare paths such as `pkg.ocu.star` (joined onto the
//! base package path).
//!
//! Parsing normalises: `call` becomes `task`, `+` becomes `@`, `//` becomes
//! `./-/`, and a trailing `/` is dropped. The result always round-trips:
//!
//! ```
//! use ocuroot_core::refs::{Ref, SubPathType};
//!
//! let r: Ref = "github.com/org/repo/-/backend/pkg.ocu.star/@r3/call/build/#output/image/"
//!     .parse()
//!     .unwrap();
//! assert_eq!(r.repo, "github.com/org/repo");
//! assert_eq!(r.filename, "backend/pkg.ocu.star");
//! assert_eq!(r.release.as_deref(), Some("r3"));
//! assert_eq!(r.subpath_type, Some(SubPathType::Task));
//! assert_eq!(r.subpath, "build");
//! assert_eq!(r.fragment, "output/image");
//! assert_eq!(
//!     r.to_string(),
//!     "github.com/org/repo/-/backend/pkg.ocu.star/@r3/task/build#output/image"
//! );
//! assert_eq!(Ref::parse(&r.to_string()).unwrap(), r);
//!
//! // Resolve a ref written in a package file against the release being evaluated.
//! let base = Ref::parse("github.com/org/repo/-/backend/pkg.ocu.star/@r3").unwrap();
//! let dep = Ref::parse("./@/deploy/staging#output/url").unwrap();
//! assert_eq!(
//!     dep.relative_to(&base).to_string(),
//!     "github.com/org/repo/-/backend/pkg.ocu.star/@/deploy/staging#output/url"
//! );
//! ```
//!
//! **Security:** no ref contains a `..` or `.` segment (other than the `./`
//! and `//` prefixes), an empty segment, a NUL or other control character, or
//! a backslash; [`Ref::parse`] rejects them and [`validate_key`] checks store
//! keys, so no ref can name a file outside a store.
//!
//! Globs over refs ([`RefGlob`], [`RefGlobSet`]) follow the semantics of the
//! original's glob library; see [`RefGlob`].

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

mod glob;
mod ids;
mod key;
mod parse;

pub use glob::{RefGlob, RefGlobSet};
pub use ids::{ReleaseId, WorkKind, WorkPath};
pub use key::{MAX_KEY_BYTES, MAX_SEGMENT_BYTES, validate_key};
pub(crate) use key::{abbreviate, segment_too_long, validate_stored_key};

/// The kind of sub-path in a ref: what the part after the release addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SubPathType {
    /// `task/<name>[/<run>...]`: a task of a release and its runs. `call` is an alias.
    Task,
    /// `deploy/<env>[/<run>...]`: a deployment of a release to an environment.
    Deploy,
    /// `custom/<name>`: user-defined state (approvals, flags).
    Custom,
    /// `environment/<name>`: an environment, normally global (`@/environment/prod`).
    Environment,
    /// `commit/<sha>`: marks the commit a release was built from.
    Commit,
    /// `push/...`: bookkeeping of pushes.
    Push,
    /// `op/...`: bookkeeping of operations.
    Op,
}

impl SubPathType {
    /// Every subpath type, in canonical order.
    pub const ALL: [SubPathType; 7] = [
        SubPathType::Task,
        SubPathType::Deploy,
        SubPathType::Custom,
        SubPathType::Environment,
        SubPathType::Commit,
        SubPathType::Push,
        SubPathType::Op,
    ];

    /// The canonical name, as written in refs.
    pub fn as_str(self) -> &'static str {
        match self {
            SubPathType::Task => "task",
            SubPathType::Deploy => "deploy",
            SubPathType::Custom => "custom",
            SubPathType::Environment => "environment",
            SubPathType::Commit => "commit",
            SubPathType::Push => "push",
            SubPathType::Op => "op",
        }
    }

    /// Parse a type name. `call`, the legacy name of `task`, gives [`SubPathType::Task`].
    pub fn parse(s: &str) -> Option<SubPathType> {
        match s {
            "task" | "call" => Some(SubPathType::Task),
            "deploy" => Some(SubPathType::Deploy),
            "custom" => Some(SubPathType::Custom),
            "environment" => Some(SubPathType::Environment),
            "commit" => Some(SubPathType::Commit),
            "push" => Some(SubPathType::Push),
            "op" => Some(SubPathType::Op),
            _ => None,
        }
    }
}

impl fmt::Display for SubPathType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed ref. See the [module documentation](self) for the grammar.
///
/// The fields are public; a `Ref` built by hand should be one [`Ref::parse`]
/// could produce (in particular a subpath needs a release, except in the
/// `./<type>/<subpath>` form), otherwise its string form does not round-trip.
/// [`Ref::validate_storable`] checks this before a ref is used as a store key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Ref {
    /// The repo: `""` when none was given (a bare or `./` path), `"."` for the
    /// current repo (from `//` or `./-/`), else the repo name.
    pub repo: String,
    /// The package path from the repo root; `"."` for "this package" (from `./`
    /// or a bare `.`); `""` for none (global refs, `<repo>/-/@r1`).
    pub filename: String,
    /// True for global refs (`@/environment/prod`, legacy `+/...`). A global
    /// ref has no repo or package, and always has a release.
    pub global: bool,
    /// `None`: no release segment; `Some("")`: `@`, the current release;
    /// `Some("r1")`: a release id; `Some("v1")`: a tag link.
    pub release: Option<String>,
    /// The subpath type, if any.
    pub subpath_type: Option<SubPathType>,
    /// The path below the subpath type, without leading or trailing `/`. May be
    /// empty even with a type (`pkg/@r1/deploy`).
    pub subpath: String,
    /// The JSON path after `#`, without the `#`.
    pub fragment: String,
}

impl Ref {
    /// Parse a ref.
    ///
    /// The lexer follows the original's rules in order: a leading `//` (repo
    /// root of the current repo), `./@` or `./+` (a release of this package),
    /// `./<type>/...` (a subpath of this package, no release), `@`/`+` (a
    /// global ref), else a path where `/-` ends the repo and `/@` (or `/+`)
    /// starts the release. The release runs to the next `/` or `#`, the type
    /// to the next `/`, the subpath to `#`.
    ///
    /// Normalisation: `call` -> `task`, `+` -> `@`, `//` -> `./-/` (repo `.`),
    /// `./` -> `.`, and a trailing `/` on the package path, subpath or fragment
    /// is dropped. The empty string is the empty ref.
    ///
    /// Decisions (differences from the original):
    /// - **Quirk 6 fixed:** a subpath type may end the ref or be followed by
    ///   the fragment: `x/@r1/deploy` is package `x`, release `r1`, type
    ///   `deploy` with an empty subpath (the original lost the package path).
    ///   It prints back as `x/@r1/deploy`.
    /// - A `#` in the package path starts the fragment (`pkg.ocu.star#x`); the
    ///   original made it part of the package path.
    /// - A second `/-` is an error (the original silently replaced the repo).
    /// - Every subpath segment is checked: none may start with `@` or contain
    ///   `=` (the original skipped the first character).
    /// - Security: `.`/`..` segments, empty segments, control characters
    ///   (including NUL) and backslashes are errors anywhere in the ref.
    /// - Limits: a segment longer than [`MAX_SEGMENT_BYTES`], or a ref longer
    ///   than [`MAX_KEY_BYTES`], is an error (so every ref fits a store).
    ///
    /// Errors are [`ErrorKind::InvalidRef`](crate::ErrorKind::InvalidRef) and
    /// say what was expected at which byte offset, quoting the ref.
    pub fn parse(s: &str) -> Result<Ref> {
        parse::parse(s)
    }

    /// True when the ref must be resolved with [`Ref::relative_to`] before it
    /// names a document: its repo is `""` or `"."`, its package is `"."`, or
    /// its release is `"."`. The empty ref is relative.
    ///
    /// Decision: a global ref is never relative (the original reported it
    /// relative because its repo is empty, and every caller special-cased it).
    pub fn is_relative(&self) -> bool {
        !self.global
            && (self.repo.is_empty()
                || self.repo == "."
                || self.filename == "."
                || self.release.as_deref() == Some("."))
    }

    /// Resolve this ref against `base` (the package or release being
    /// evaluated, or the CLI's `{repo, cwd}`).
    ///
    /// A ref that is not relative, is global, or names another repo is
    /// returned unchanged. Otherwise:
    /// - repo `""` or `"."` becomes `base.repo`;
    /// - package `"."` or `""` becomes `base.filename`; a bare path (repo `""`)
    ///   is joined onto `base.filename` (so `other.ocu.star` under base
    ///   `pkg.ocu.star` becomes `pkg.ocu.star/other.ocu.star`, as in the
    ///   original); a `./-/` or `//` path is kept, being repo-root relative.
    ///   The result is normalised and never climbs above the repo root;
    /// - a missing release becomes the base's release (if any); `@` (the
    ///   current release) is kept; `@.` becomes the base's release.
    ///
    /// **Decision (quirk 5a fixed):** an explicit non-empty release in the ref
    /// (`./@r3/task/x`) is kept. The original replaced it with the base's
    /// release, so such a ref could not name another release of the package.
    pub fn relative_to(&self, base: &Ref) -> Ref {
        if !self.is_relative() || self.global || (!self.repo.is_empty() && self.repo != ".") {
            return self.clone();
        }
        let mut out = self.clone();
        out.repo = base.repo.clone();
        let filename = if self.filename == "." || self.filename.is_empty() {
            clean_path(&[&base.filename])
        } else if self.repo.is_empty() {
            clean_path(&[&base.filename, &self.filename])
        } else {
            clean_path(&[&self.filename])
        };
        // An empty package path is the repo root when there is a repo; without
        // one, keep "this package" rather than turning it into nothing.
        out.filename = if filename.is_empty() && out.repo.is_empty() && !self.filename.is_empty() {
            ".".to_string()
        } else {
            filename
        };
        match self.release.as_deref() {
            None => out.release = base.release.clone(),
            Some(".") if base.release.is_some() => out.release = base.release.clone(),
            Some(_) => {}
        }
        out
    }

    /// True for global refs (`@/environment/prod`).
    pub fn is_global(&self) -> bool {
        self.global
    }

    /// This ref without its fragment: the document it addresses.
    pub fn without_fragment(&self) -> Ref {
        self.with_fragment("")
    }

    /// This ref with its fragment replaced (`""` removes it).
    pub fn with_fragment(&self, fragment: &str) -> Ref {
        Ref {
            fragment: fragment.to_string(),
            ..self.clone()
        }
    }

    /// The package: repo and package path only. Empty for a global ref.
    pub fn package(&self) -> Ref {
        Ref {
            repo: self.repo.clone(),
            filename: self.filename.clone(),
            ..Ref::default()
        }
    }

    /// `N` when the release is a release id `rN` (not a tag, not `@`).
    pub fn release_number(&self) -> Option<u64> {
        self.release_id().map(ReleaseId::number)
    }

    /// The release id, when the release segment is one (not a tag, a
    /// commit or `@`).
    pub fn release_id(&self) -> Option<ReleaseId> {
        self.release.as_deref().and_then(ReleaseId::parse)
    }

    /// The release: repo, package path, global flag and release (no subpath or fragment).
    pub fn release_ref(&self) -> Ref {
        Ref {
            repo: self.repo.clone(),
            filename: self.filename.clone(),
            global: self.global,
            release: self.release.clone(),
            ..Ref::default()
        }
    }

    /// This ref with its release set (`""` for `@`, the current release). The
    /// subpath and fragment are kept.
    pub fn with_release(&self, release: &str) -> Ref {
        Ref {
            release: Some(release.to_string()),
            ..self.clone()
        }
    }

    /// This ref with the given subpath type and subpath, keeping repo,
    /// package, release and the global flag; the fragment is cleared.
    pub fn with_subpath(&self, t: SubPathType, subpath: &str) -> Ref {
        Ref {
            subpath_type: Some(t),
            subpath: subpath.to_string(),
            fragment: String::new(),
            ..self.clone()
        }
    }

    /// Check that this ref can name a stored document: it is absolute (see
    /// [`Ref::is_relative`]), its string form without fragment passes
    /// [`validate_key`], and that string parses back to the same ref (so a
    /// hand-built, non-canonical ref cannot be stored under a key that means
    /// something else).
    pub fn validate_storable(&self) -> Result<()> {
        self.storable_key().map(drop)
    }

    /// The store key of the document this ref names: its string form without
    /// the fragment, after the checks of [`validate_storable`](Self::validate_storable).
    pub fn storable_key(&self) -> Result<String> {
        if self.is_relative() {
            return Err(Error::invalid_ref(format!(
                "ref {:?} is relative: resolve it against a package or release before using it with a store",
                self.to_string()
            )));
        }
        let mut key = String::with_capacity(self.doc_len());
        self.write_doc(&mut key)
            .expect("writing to a String cannot fail");
        validate_key(&key)?;
        let parsed = Ref::parse(&key)?;
        if !(parsed.fragment.is_empty() && parsed.same_document(self)) {
            return Err(Error::invalid_ref(format!(
                "ref {key:?} is not in canonical form (a subpath needs a release, a global ref has no package)"
            )));
        }
        Ok(key)
    }

    /// Whether both refs name the same document: every part equal but the
    /// fragment.
    fn same_document(&self, other: &Ref) -> bool {
        let Ref {
            repo,
            filename,
            global,
            release,
            subpath_type,
            subpath,
            fragment: _,
        } = self;
        *repo == other.repo
            && *filename == other.filename
            && *global == other.global
            && *release == other.release
            && *subpath_type == other.subpath_type
            && *subpath == other.subpath
    }

    /// An upper bound of the length of the string form without fragment.
    fn doc_len(&self) -> usize {
        self.repo.len()
            + self.filename.len()
            + self.release.as_ref().map_or(0, String::len)
            + self.subpath.len()
            + 32
    }

    /// The canonical form without the fragment: repo, `-`, package path,
    /// `@<release>`, type and subpath joined with `/`. Empty parts are left
    /// out.
    fn write_doc(&self, out: &mut impl fmt::Write) -> fmt::Result {
        let mut first = true;
        let mut seg = |out: &mut dyn fmt::Write, parts: &[&str]| -> fmt::Result {
            if !first {
                out.write_str("/")?;
            }
            first = false;
            parts.iter().try_for_each(|p| out.write_str(p))
        };
        if self.global {
            seg(out, &["@", self.release.as_deref().unwrap_or("")])?;
        } else {
            if !self.repo.is_empty() {
                seg(out, &[&self.repo])?;
                seg(out, &["-"])?;
            }
            if !self.filename.is_empty() {
                seg(out, &[&self.filename])?;
            }
            if let Some(r) = &self.release {
                seg(out, &["@", r])?;
            }
        }
        if let Some(t) = self.subpath_type {
            seg(out, &[t.as_str()])?;
        }
        if !self.subpath.is_empty() {
            seg(out, &[&self.subpath])?;
        }
        Ok(())
    }
}

/// A ref and its store key ([`Ref::storable_key`]), checked once: for refs
/// a transaction uses several times, such as a run and its status markers.
/// Dereferences to the [`Ref`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedRef {
    r: Ref,
    key: String,
}

impl KeyedRef {
    /// Check `r` for storage and keep its key.
    pub fn new(r: Ref) -> Result<KeyedRef> {
        let key = r.storable_key()?;
        Ok(KeyedRef { r, key })
    }

    /// The store key (the canonical string without the fragment).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// This ref with `path` (`/`-separated) appended to its subpath, the
    /// fragment cleared. A ref with a subpath type and segments made of
    /// ASCII letters, digits, `_`, `-` and `.` (not `.` or `..`) extends the
    /// key directly; anything else is checked as [`KeyedRef::new`] does.
    pub fn join(&self, path: &str) -> Result<KeyedRef> {
        let Some(t) = self.r.subpath_type else {
            return Err(Error::invalid_ref(format!(
                "cannot add {path:?} to {}: it has no subpath type",
                self.r
            )));
        };
        let subpath = if self.r.subpath.is_empty() {
            path.to_string()
        } else {
            format!("{}/{path}", self.r.subpath)
        };
        let r = self.r.with_subpath(t, &subpath);
        let plain = |seg: &str| {
            !matches!(seg, "" | "." | "..")
                && seg.len() <= MAX_SEGMENT_BYTES
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        };
        // (Anything else, or a key growing too long, takes the full check.)
        if path.split('/').all(plain) && self.key.len() + 1 + path.len() <= MAX_KEY_BYTES {
            let key = format!("{}/{path}", self.key);
            Ok(KeyedRef { r, key })
        } else {
            KeyedRef::new(r)
        }
    }
}

impl std::ops::Deref for KeyedRef {
    type Target = Ref;

    fn deref(&self) -> &Ref {
        &self.r
    }
}

impl fmt::Display for KeyedRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.r.fmt(f)
    }
}

/// A ref as store transactions take it: a [`Ref`], whose key is computed
/// and checked at each use, or a [`KeyedRef`], which carries it.
pub trait StoreRef {
    /// The ref.
    fn get_ref(&self) -> &Ref;
    /// Its store key, as [`Ref::storable_key`] gives it.
    fn store_key(&self) -> Result<std::borrow::Cow<'_, str>>;
}

impl StoreRef for Ref {
    fn get_ref(&self) -> &Ref {
        self
    }
    fn store_key(&self) -> Result<std::borrow::Cow<'_, str>> {
        self.storable_key().map(std::borrow::Cow::Owned)
    }
}

impl StoreRef for KeyedRef {
    fn get_ref(&self) -> &Ref {
        &self.r
    }
    fn store_key(&self) -> Result<std::borrow::Cow<'_, str>> {
        Ok(std::borrow::Cow::Borrowed(&self.key))
    }
}

impl<T: StoreRef + ?Sized> StoreRef for &T {
    fn get_ref(&self) -> &Ref {
        (**self).get_ref()
    }
    fn store_key(&self) -> Result<std::borrow::Cow<'_, str>> {
        (**self).store_key()
    }
}

/// Join `/`-separated paths, dropping empty and `.` segments and resolving
/// `..` without ever climbing above the root (like Go's `path.Join` rooted at
/// `/`, minus the leading `/`).
fn clean_path(parts: &[&str]) -> String {
    let mut segs: Vec<&str> = Vec::new();
    for seg in parts.iter().flat_map(|p| p.split('/')) {
        match seg {
            "" | "." => {}
            ".." => {
                segs.pop();
            }
            s => segs.push(s),
        }
    }
    segs.join("/")
}

impl fmt::Display for Ref {
    /// The canonical form: repo, `-`, package path, `@<release>`, type and
    /// subpath joined with `/`, then `#<fragment>`. Empty parts are left out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_doc(f)?;
        if !self.fragment.is_empty() {
            f.write_str("#")?;
            f.write_str(&self.fragment)?;
        }
        Ok(())
    }
}

impl FromStr for Ref {
    type Err = Error;

    fn from_str(s: &str) -> Result<Ref> {
        Ref::parse(s)
    }
}

/// A ref equals the text it is written as.
impl PartialEq<str> for Ref {
    fn eq(&self, other: &str) -> bool {
        // Compared as it is written out, without building the string.
        struct Expect<'a>(&'a str);
        impl fmt::Write for Expect<'_> {
            fn write_str(&mut self, s: &str) -> fmt::Result {
                self.0 = self.0.strip_prefix(s).ok_or(fmt::Error)?;
                Ok(())
            }
        }
        let mut expect = Expect(other);
        fmt::Write::write_fmt(&mut expect, format_args!("{self}")).is_ok() && expect.0.is_empty()
    }
}

impl PartialEq<&str> for Ref {
    fn eq(&self, other: &&str) -> bool {
        *self == **other
    }
}

impl PartialEq<String> for Ref {
    fn eq(&self, other: &String) -> bool {
        *self == **other
    }
}

impl serde::Serialize for Ref {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Ref {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Ref, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Ref::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Whether `id` is a release id, `r` followed by digits (`r1`, `r42`), as
/// opposed to a tag: tags may not take this form.
pub fn is_release_id(id: &str) -> bool {
    id.len() > 1 && id.starts_with('r') && id[1..].bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Ref {
        Ref::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn subpath_type_names_round_trip() {
        for t in SubPathType::ALL {
            assert_eq!(SubPathType::parse(t.as_str()), Some(t));
            assert_eq!(t.to_string(), t.as_str());
        }
        assert_eq!(SubPathType::parse("call"), Some(SubPathType::Task));
        assert_eq!(SubPathType::parse("Task"), None);
        assert_eq!(SubPathType::parse(""), None);
    }

    #[test]
    fn storable_key_is_the_string_form_without_fragment() {
        for s in [
            "repo/-/pkg.ocu.star/@r1/task/build#output/tag",
            "repo/-/pkg.ocu.star/@/deploy/prod",
            "repo/-/dir/pkg.ocu.star/@v1",
            "repo/-/@r2/custom/a/b",
            "@/environment/prod#attributes/x",
        ] {
            let r = p(s);
            assert_eq!(r.storable_key().unwrap(), r.without_fragment().to_string());
        }
        assert!(p("./@r1/task/x").storable_key().is_err());
    }

    #[test]
    fn keyed_ref_join_gives_the_key_of_the_joined_ref() {
        let run = KeyedRef::new(p("repo/-/pkg.ocu.star/@r1/task/build/1#x")).unwrap();
        assert_eq!(run.key(), "repo/-/pkg.ocu.star/@r1/task/build/1");
        for path in [
            "status/pending",
            "status/failed_retried",
            "logs",
            "a=b",
            "x/@y",
            "x//y",
        ] {
            let expected = run.with_subpath(SubPathType::Task, &format!("build/1/{path}"));
            match (run.join(path), expected.storable_key()) {
                (Ok(joined), Ok(key)) => {
                    assert_eq!(*joined, expected);
                    assert_eq!(joined.key(), key);
                }
                (Err(_), Err(_)) => {}
                (joined, key) => panic!("{path}: {joined:?} but {key:?}"),
            }
        }
        assert!(run.join("a=b").is_err());
        let deploy = KeyedRef::new(p("repo/-/pkg.ocu.star/@r1/deploy")).unwrap();
        assert_eq!(
            deploy.join("prod").unwrap().key(),
            "repo/-/pkg.ocu.star/@r1/deploy/prod"
        );
        assert!(
            KeyedRef::new(p("repo/-/pkg.ocu.star/@r1"))
                .unwrap()
                .join("x")
                .is_err()
        );
    }

    #[test]
    fn empty_ref() {
        assert_eq!(p(""), Ref::default());
        assert_eq!(Ref::default().to_string(), "");
        assert!(Ref::default().is_relative());
    }

    #[test]
    fn quirk6_type_without_subpath_keeps_package() {
        let r = p("x/@r1/deploy");
        assert_eq!(r.filename, "x");
        assert_eq!(r.release.as_deref(), Some("r1"));
        assert_eq!(r.subpath_type, Some(SubPathType::Deploy));
        assert_eq!(r.subpath, "");
        assert_eq!(r.to_string(), "x/@r1/deploy");
        assert_eq!(p("x/@r1/deploy/"), r);
        assert_eq!(p("x/@r1/deploy#a").fragment, "a");
        assert_eq!(p("./deploy").to_string(), "./deploy");
    }

    #[test]
    fn clean_path_never_climbs() {
        assert_eq!(clean_path(&["a/b", "../../../c"]), "c");
        assert_eq!(clean_path(&[".", "x"]), "x");
        assert_eq!(clean_path(&["", ""]), "");
        assert_eq!(clean_path(&["a//b/", "./c"]), "a/b/c");
    }

    #[test]
    fn relative_to_dot_release_takes_base_release() {
        let base = p("repo/-/pkg/@r4");
        assert_eq!(
            p("./@./task/x").relative_to(&base).to_string(),
            "repo/-/pkg/@r4/task/x"
        );
    }

    #[test]
    fn relative_to_root_package_with_cwd_dot() {
        let base = Ref {
            repo: "github.com/org/repo".into(),
            filename: ".".into(),
            ..Ref::default()
        };
        assert_eq!(
            p(".").relative_to(&base).to_string(),
            "github.com/org/repo/-"
        );
        assert_eq!(
            p("basic.ocu.star").relative_to(&base).to_string(),
            "github.com/org/repo/-/basic.ocu.star"
        );
    }

    #[test]
    fn display_global_without_release_writes_at() {
        let r = Ref {
            global: true,
            subpath_type: Some(SubPathType::Environment),
            subpath: "prod".into(),
            ..Ref::default()
        };
        assert_eq!(r.to_string(), "@/environment/prod");
        // Not canonical (a global ref has a release), so not storable.
        assert!(r.validate_storable().is_err());
    }

    #[test]
    fn serde_uses_the_string_form() {
        let r = p("github.com/o/r/-/p.ocu.star/@r1/call/b#output/x");
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, r#""github.com/o/r/-/p.ocu.star/@r1/task/b#output/x""#);
        assert_eq!(serde_json::from_str::<Ref>(&json).unwrap(), r);
        let err = serde_json::from_str::<Ref>(r#""a/../b""#).unwrap_err();
        assert!(err.to_string().contains("\"..\" segment"), "{err}");
    }
}

//! `refs`: the ref parser, `Display`, `relative_to`, store keys.

use ocuroot_core::ErrorKind;
use ocuroot_core::refs::{KeyedRef, Ref, validate_key};

use crate::{assert_not_internal, pending};

/// Fixed bases to resolve against: a release, the CLI's `{repo, cwd}` form
/// (package `.`), a run, and a global ref.
fn bases() -> &'static [Ref] {
    static BASES: std::sync::OnceLock<Vec<Ref>> = std::sync::OnceLock::new();
    BASES.get_or_init(|| {
        vec![
            Ref::parse("github.com/org/repo/-/backend/pkg.ocu.star/@r3").unwrap(),
            Ref {
                repo: "github.com/org/repo".into(),
                filename: ".".into(),
                ..Ref::default()
            },
            Ref::parse("repo/-/a/b/release.ocu.star/@/task/build/1").unwrap(),
            Ref::parse("@/environment/prod").unwrap(),
        ]
    })
}

/// The input as text (invalid UTF-8 replaced), then:
///
/// - the whole text: [`check_one`];
/// - if it has a newline, the parts before and after it: [`check_one`] each,
///   the first resolved against the second, and the second appended to the
///   first with [`KeyedRef::join`].
pub fn check_ref(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    let whole = check_one(&text);
    if let Some((a, b)) = text.split_once('\n') {
        let ra = check_one(a);
        let rb = check_one(b);
        if let (Some(ra), Some(rb)) = (&ra, &rb) {
            let resolved = ra.relative_to(rb);
            let _ = resolved.to_string();
            let _ = resolved.storable_key();
        }
        if let Some(ra) = &ra {
            return check_join(ra, b);
        }
    } else if let Some(r) = &whole {
        // Something to join: the last segment of the ref itself.
        let tail = text.rsplit('/').next().unwrap_or("");
        return check_join(r, tail);
    }
    true
}

/// Every segment of a part of a parsed ref is non-empty, not `.` or `..`
/// (the documented security property); `whole_dot` allows the whole part
/// to be `.` (this repo, this package).
#[track_caller]
fn assert_clean(src: &str, what: &str, part: &str, whole_dot: bool) {
    if part.is_empty() || (whole_dot && part == ".") {
        return;
    }
    for seg in part.split('/') {
        assert!(
            !matches!(seg, "" | "." | ".."),
            "{src:?} parsed with {what} {part:?}, which has a {seg:?} segment"
        );
    }
}

/// Parse `s`; if it parses, check the round trip, the store key, the
/// security properties and resolution against the fixed bases.
pub(crate) fn check_one(s: &str) -> Option<Ref> {
    let _ = validate_key(s);
    let r = match Ref::parse(s) {
        Ok(r) => r,
        Err(e) => {
            assert_eq!(
                e.kind(),
                ErrorKind::InvalidRef,
                "parse error of {s:?} is not InvalidRef: {e}"
            );
            return None;
        }
    };
    assert_eq!(
        s.parse::<Ref>().ok().as_ref(),
        Some(&r),
        "FromStr differs from parse"
    );

    // Round trip: the canonical form parses back to the same ref and prints
    // the same.
    let shown = r.to_string();
    let again = Ref::parse(&shown).unwrap_or_else(|e| {
        panic!("{s:?} parsed as {r:?}, whose string form {shown:?} does not parse: {e}")
    });
    assert_eq!(again, r, "{s:?} -> {shown:?} parses to another ref");
    assert_eq!(again.to_string(), shown, "Display is not stable for {s:?}");
    let json = serde_json::to_string(&r).expect("serialize a ref");
    let back: Ref = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("{s:?}: serde form {json} does not deserialize: {e}"));
    assert_eq!(back, r, "{s:?}: serde round trip");

    // Security: no `.`, `..` or empty segment, no control character or
    // backslash.
    assert_clean(s, "repo", &r.repo, true);
    assert_clean(s, "package path", &r.filename, true);
    assert_clean(s, "subpath", &r.subpath, false);
    assert_clean(s, "fragment", &r.fragment, false);
    assert!(
        !shown.chars().any(|c| c.is_control() || c == '\\'),
        "{s:?} parsed to {shown:?}, with a control character or backslash"
    );
    if r.global {
        assert!(r.release.is_some(), "{s:?}: a global ref without a release");
        assert!(
            r.repo.is_empty() && r.filename.is_empty(),
            "{s:?}: a global ref with a package"
        );
    }

    // The store key: validated, and the string of the same document.
    match r.storable_key() {
        Ok(key) => {
            validate_key(&key)
                .unwrap_or_else(|e| panic!("{s:?}: storable key {key:?} fails validate_key: {e}"));
            assert_eq!(
                Ref::parse(&key).ok(),
                Some(r.without_fragment()),
                "{s:?}: the storable key {key:?} names another document"
            );
            assert!(!r.is_relative(), "{s:?}: a relative ref has a store key");
            let keyed = KeyedRef::new(r.clone()).expect("KeyedRef::new of a storable ref");
            assert_eq!(keyed.key(), key);
        }
        Err(e) => {
            assert_not_internal(&e, &s);
            assert!(KeyedRef::new(r.clone()).is_err());
        }
    }

    let _ = (
        r.is_relative(),
        r.release_number(),
        r.package(),
        r.release_ref(),
    );
    for base in bases() {
        let resolved = r.relative_to(base);
        if !r.is_relative() {
            assert_eq!(
                resolved, r,
                "{s:?}: an absolute ref changed when resolved against {base}"
            );
        }
        let _ = resolved.to_string();
        let _ = resolved.storable_key();
    }
    Some(r)
}

/// [`KeyedRef::join`] gives the key [`KeyedRef::new`] gives the joined ref,
/// or both fail. `false` when skipped by a filter of [`pending`].
fn check_join(r: &Ref, path: &str) -> bool {
    let Ok(keyed) = KeyedRef::new(r.clone()) else {
        return true;
    };
    let Some(t) = r.subpath_type else {
        assert!(
            keyed.join(path).is_err(),
            "join onto {r} without a subpath type"
        );
        return true;
    };
    if pending::skip_join(keyed.key(), path) {
        return false;
    }
    let subpath = if r.subpath.is_empty() {
        path.to_string()
    } else {
        format!("{}/{path}", r.subpath)
    };
    let expected = r.with_subpath(t, &subpath);
    match (keyed.join(path), expected.storable_key()) {
        (Ok(joined), Ok(key)) => {
            assert_eq!(*joined, expected, "{r} joined with {path:?}");
            assert_eq!(joined.key(), key, "{r} joined with {path:?}");
        }
        (Err(e), Err(_)) => assert_not_internal(&e, &(r, path)),
        (joined, key) => panic!(
            "{r} joined with {path:?}: join gives {:?} but the joined ref's key is {:?}",
            joined.map(|k| k.key().to_string()),
            key
        ),
    }
    true
}

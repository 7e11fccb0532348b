//! Store keys: what a ref becomes in a store, and the limits every name and
//! ref segment keeps so that every key fits every filesystem.

use crate::{Error, Result};

/// The name of the document file in a filesystem store; no key segment may use it.
const OBJECT_FILE: &str = "@object.json";

/// The longest segment (a name between `/`s) a ref or store key may have, in
/// bytes. Every filesystem we write to allows 255-byte file names; the fs
/// store adds up to 16 bytes to a segment for its temporary files, and the
/// rest is margin.
pub const MAX_SEGMENT_BYTES: usize = 200;

/// The longest ref or store key, in bytes: well under any filesystem's path
/// limit (4096 on Linux) once a store's own directory is added.
pub const MAX_KEY_BYTES: usize = 1024;

/// A segment (or name) of `len` bytes is too long: the message, naming the
/// start of the segment.
pub(crate) fn segment_too_long(what: &str, seg: &str) -> String {
    format!(
        "{what} {:?} is {} bytes long; names and ref segments may be at most {MAX_SEGMENT_BYTES} bytes",
        abbreviate(seg),
        seg.len()
    )
}

/// The start of `s` (at most 40 characters, then `...`), for error messages
/// about overlong text.
pub(crate) fn abbreviate(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

/// Validate a store key: a ref string without fragment.
///
/// Rejects the empty key, empty segments (`a//b`, a leading or trailing `/`),
/// `.` and `..` segments, NUL and other control characters, backslashes, and a
/// segment named `@object.json` (the fs store's file name), a segment longer
/// than [`MAX_SEGMENT_BYTES`] and a key longer than [`MAX_KEY_BYTES`]. The
/// error names the key and the offending part.
pub fn validate_key(key: &str) -> Result<()> {
    check_key(key, true)
}

/// [`validate_key`] without the length limits: for keys read back from a
/// store written before the limits existed, which must stay readable.
pub(crate) fn validate_stored_key(key: &str) -> Result<()> {
    check_key(key, false)
}

fn check_key(key: &str, limits: bool) -> Result<()> {
    let err = |offset: usize, msg: &str| {
        Err(Error::invalid_ref(format!(
            "invalid store key {:?} at offset {offset}: {msg}",
            abbreviate(key)
        )))
    };
    if key.is_empty() {
        return err(0, "the key is empty");
    }
    if limits && key.len() > MAX_KEY_BYTES {
        return err(
            0,
            &format!(
                "the key is {} bytes long; keys may be at most {MAX_KEY_BYTES} bytes",
                key.len()
            ),
        );
    }
    // Keys are almost always ASCII: check bytes, and look at characters
    // only when there is something else (C1 control characters are
    // multi-byte).
    // (A fold without early exit, which compiles to a vectorised loop.)
    let plain = |b: u8| (b' '..=b'~').contains(&b) && b != b'\\';
    if !key.bytes().fold(true, |ok, b| ok & plain(b)) {
        for (i, c) in key.char_indices() {
            if c.is_control() {
                return err(i, &format!("control character {c:?} is not allowed"));
            }
            if c == '\\' {
                return err(i, "backslash is not allowed");
            }
        }
    }
    let bytes = key.as_bytes();
    let mut start = 0;
    loop {
        let end = bytes[start..]
            .iter()
            .position(|b| *b == b'/')
            .map_or(bytes.len(), |i| start + i);
        let seg = &key[start..end];
        match seg {
            "" => return err(start, "empty segment"),
            "." | ".." => return err(start, &format!("{seg:?} segment is not allowed")),
            OBJECT_FILE => {
                return err(
                    start,
                    &format!("segment {OBJECT_FILE:?} is reserved for the store"),
                );
            }
            _ if limits && seg.len() > MAX_SEGMENT_BYTES => {
                return err(start, &segment_too_long("segment", seg));
            }
            _ => {}
        }
        if end == bytes.len() {
            return Ok(());
        }
        start = end + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refs::Ref;

    fn p(s: &str) -> Ref {
        Ref::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn segments_and_refs_have_a_length_limit() {
        let ok = "a".repeat(MAX_SEGMENT_BYTES);
        p(&format!("@/custom/{ok}"));
        validate_key(&format!("@/custom/{ok}")).unwrap();
        let long = format!("{ok}b");
        for bad in [format!("@/custom/{long}"), format!("{long}/pkg.ocu.star")] {
            let e = Ref::parse(&bad).unwrap_err();
            assert!(e.message().contains("201 bytes long"), "{e}");
            assert!(e.message().contains("at most 200 bytes"), "{e}");
            assert!(e.message().len() < 300, "the message abbreviates: {e}");
            let e = validate_key(&bad).unwrap_err();
            assert!(e.message().contains("at most 200 bytes"), "{e}");
        }
        let total = vec!["a".repeat(100); 11].join("/");
        let e = Ref::parse(&total).unwrap_err();
        assert!(e.message().contains("at most 1024 bytes"), "{e}");
        let e = validate_key(&total).unwrap_err();
        assert!(e.message().contains("at most 1024 bytes"), "{e}");
    }
}

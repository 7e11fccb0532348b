//! The ref parser: a hand-written scanner following the lexer of the original
//! (`refs/parse.go`), with the decisions documented on [`Ref::parse`].
//!
//! All delimiters are ASCII, so the scanner works on bytes and only ever
//! slices the input at ASCII positions (always a `char` boundary).

use super::{Ref, SubPathType};
use crate::{Error, Result};

/// Parse `src` into a [`Ref`]. See [`Ref::parse`] for the grammar.
pub(super) fn parse(src: &str) -> Result<Ref> {
    let mut p = Parser {
        src,
        bytes: src.as_bytes(),
        r: Ref::default(),
    };
    p.run()?;
    Ok(p.r)
}

/// The text used in error messages to list the valid subpath types.
fn expected_types() -> String {
    let names: Vec<&str> = SubPathType::ALL.iter().map(|t| t.as_str()).collect();
    format!(
        "one of {} (or `call`, an alias of `task`)",
        names.join(", ")
    )
}

struct Parser<'a> {
    src: &'a str,
    bytes: &'a [u8],
    r: Ref,
}

/// What a part of the ref is called in error messages, and which checks its
/// segments get beyond the common ones (no empty, `.` or `..` segment).
#[derive(Clone, Copy)]
enum Part {
    Repo,
    Package,
    Subpath,
    Fragment,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Part::Repo => "repo",
            Part::Package => "package path",
            Part::Subpath => "subpath",
            Part::Fragment => "fragment",
        }
    }
}

impl Parser<'_> {
    fn err(&self, offset: usize, msg: impl std::fmt::Display) -> Error {
        Error::invalid_ref(format!(
            "invalid ref {:?} at offset {offset}: {msg}",
            self.src
        ))
    }

    /// The character at byte `offset`, quoted, for "found ..." messages.
    fn found(&self, offset: usize) -> String {
        match self.src[offset..].chars().next() {
            Some(c) => format!("{c:?}"),
            None => "end of ref".to_string(),
        }
    }

    /// First index at or after `from` holding one of `stops`, or the length.
    fn find(&self, from: usize, stops: &[u8]) -> usize {
        self.bytes[from..]
            .iter()
            .position(|b| stops.contains(b))
            .map_or(self.bytes.len(), |i| from + i)
    }

    fn run(&mut self) -> Result<()> {
        let s = self.src;
        if s.is_empty() {
            return Ok(());
        }
        if s.len() > super::MAX_KEY_BYTES {
            return Err(Error::invalid_ref(format!(
                "invalid ref {:?}: it is {} bytes long; refs may be at most {} bytes",
                super::abbreviate(s),
                s.len(),
                super::MAX_KEY_BYTES
            )));
        }
        self.check_chars()?;
        // Rule 1: `//` is the root of the current repo.
        if s.starts_with("//") {
            self.r.repo = ".".to_string();
            return self.path(2, true);
        }
        // Rule 2: `./@...` and `./+...`: a release of this package.
        if s.starts_with("./@") || s.starts_with("./+") {
            self.r.filename = ".".to_string();
            return self.release(2);
        }
        // `./` alone is "this package", like `.`.
        if s == "./" {
            self.r.filename = ".".to_string();
            return Ok(());
        }
        // Rule 3: `./<type>/...`: a subpath of this package (or release), no release given.
        if s.starts_with("./") && !s.starts_with("./-") {
            self.r.filename = ".".to_string();
            return self.subpath_type(2);
        }
        // Rule 4: global refs.
        if s.starts_with('@') || s.starts_with('+') {
            self.r.global = true;
            return self.release(0);
        }
        self.path(0, false)
    }

    /// Refs never contain control characters (including NUL) or backslashes.
    fn check_chars(&self) -> Result<()> {
        for (i, c) in self.src.char_indices() {
            if c.is_control() {
                return Err(self.err(
                    i,
                    format!("unexpected control character {c:?}: refs may not contain control characters"),
                ));
            }
            if c == '\\' {
                return Err(self.err(
                    i,
                    "unexpected backslash: refs separate segments with '/' and may not contain '\\'",
                ));
            }
        }
        Ok(())
    }

    /// Rule 5: `[<repo>/-/]<package path>`, then a release, a fragment or the end.
    fn path(&mut self, mut start: usize, mut repo_given: bool) -> Result<()> {
        let b = self.bytes;
        let mut i = start;
        while i < b.len() {
            match b[i] {
                b'/' if b.get(i + 1) == Some(&b'-') => {
                    let after = i + 2;
                    if !matches!(b.get(after), None | Some(b'/') | Some(b'#')) {
                        return Err(self.err(
                            after,
                            format!(
                                "expected '/', '#' or end of ref after the repo separator \"/-\", found {}",
                                self.found(after)
                            ),
                        ));
                    }
                    if repo_given {
                        let why = if self.r.repo == "." && self.src.starts_with("//") {
                            "the leading \"//\" already names the current repo"
                        } else {
                            "the repo was already given"
                        };
                        return Err(
                            self.err(i, format!("unexpected second repo separator \"/-\": {why}"))
                        );
                    }
                    self.set_repo(start, i)?;
                    repo_given = true;
                    match b.get(after) {
                        Some(b'/') => {
                            start = after + 1;
                            i = start;
                        }
                        Some(b'#') => return self.fragment(after + 1),
                        _ => return Ok(()),
                    }
                }
                b'/' if matches!(b.get(i + 1), Some(b'@') | Some(b'+')) => {
                    if i == start {
                        return Err(self.err(
                            i,
                            format!(
                                "expected a {} segment before the release, found '/'",
                                Part::Package.name()
                            ),
                        ));
                    }
                    self.set_filename(start, i, false)?;
                    return self.release(i + 1);
                }
                c @ (b'@' | b'+') => {
                    // At the very start of the input this is a global ref (handled in
                    // `run`); right after `/-/` or `//` it is a release of the repo root.
                    if i == start {
                        return self.release(i);
                    }
                    return Err(self.err(
                        i,
                        format!(
                            "unexpected release prefix '{}' in path: a release starts a segment, as in \"pkg.ocu.star/@r1\"",
                            c as char
                        ),
                    ));
                }
                b'#' => {
                    self.set_filename(start, i, true)?;
                    return self.fragment(i + 1);
                }
                _ => i += 1,
            }
        }
        self.set_filename(start, b.len(), true)
    }

    fn set_repo(&mut self, start: usize, end: usize) -> Result<()> {
        let repo = &self.src[start..end];
        if repo.is_empty() {
            return Err(self.err(end, "expected a repo before the repo separator \"/-\""));
        }
        // `./-/...`: the current repo.
        if repo != "." {
            self.check_segments(repo, start, Part::Repo)?;
        }
        self.r.repo = repo.to_string();
        Ok(())
    }

    /// Set the package path from `src[start..end]`. A trailing `/` is trimmed
    /// when the path ends the ref or precedes the fragment (`frontend/`).
    fn set_filename(&mut self, start: usize, end: usize, trim_slash: bool) -> Result<()> {
        let raw = &self.src[start..end];
        if raw.is_empty() {
            self.r.filename = String::new();
            return Ok(());
        }
        // A bare `.` is "this package" (the CLI's default ref).
        if raw == "." && self.r.repo.is_empty() {
            self.r.filename = ".".to_string();
            return Ok(());
        }
        let text = self.trim_trailing_slash(raw, start, trim_slash, Part::Package)?;
        self.check_segments(text, start, Part::Package)?;
        self.r.filename = text.to_string();
        Ok(())
    }

    /// Strip one trailing `/` (if allowed). `raw` must not be empty.
    fn trim_trailing_slash<'s>(
        &self,
        raw: &'s str,
        start: usize,
        allowed: bool,
        part: Part,
    ) -> Result<&'s str> {
        let Some(text) = raw.strip_suffix('/').filter(|_| allowed) else {
            return Ok(raw);
        };
        if text.is_empty() {
            return Err(self.err(
                start,
                format!("expected a {} segment, found '/'", part.name()),
            ));
        }
        Ok(text)
    }

    /// Check each `/`-separated segment of `text`, which starts at byte `base`.
    fn check_segments(&self, text: &str, base: usize, part: Part) -> Result<()> {
        let mut offset = base;
        for (n, seg) in text.split('/').enumerate() {
            if seg.is_empty() {
                return Err(self.err(
                    offset,
                    format!(
                        "expected a {} segment, found {}: empty segments are not allowed",
                        part.name(),
                        self.found(offset)
                    ),
                ));
            }
            if seg.len() > super::MAX_SEGMENT_BYTES {
                return Err(Error::invalid_ref(format!(
                    "invalid ref {:?} at offset {offset}: {}",
                    super::abbreviate(self.src),
                    super::segment_too_long(&format!("{} segment", part.name()), seg)
                )));
            }
            if seg == "." || seg == ".." {
                return Err(self.err(
                    offset,
                    format!("unexpected {seg:?} segment in {}: refs may not contain '.' or '..' segments", part.name()),
                ));
            }
            match part {
                // A subpath segment starting with `@` would read as a release
                // (and `@object.json` would clash with the store's file name).
                Part::Subpath if seg.starts_with('@') => {
                    return Err(self.err(offset, "unexpected release prefix '@' in subpath"));
                }
                // As in the original, only `/@` is rejected in a fragment.
                Part::Fragment if n > 0 && seg.starts_with('@') => {
                    return Err(self.err(offset, "unexpected release prefix '@' in fragment"));
                }
                Part::Subpath => {
                    if let Some(i) = seg.find('=') {
                        return Err(self.err(offset + i, "unexpected '=' in subpath"));
                    }
                }
                _ => {}
            }
            offset += seg.len() + 1;
        }
        Ok(())
    }

    /// Rule 6: the release, from the `@`/`+` at `at` up to `/`, `#` or the end.
    fn release(&mut self, at: usize) -> Result<()> {
        let start = at + 1;
        let end = self.find(start, b"/#");
        self.r.release = Some(self.src[start..end].to_string());
        match self.bytes.get(end) {
            Some(b'/') => self.subpath_type(end + 1),
            Some(b'#') => self.fragment(end + 1),
            _ => Ok(()),
        }
    }

    /// Rule 7: the subpath type. Decision (quirk 6): a type may end the ref or
    /// be followed directly by the fragment; the subpath is then empty.
    fn subpath_type(&mut self, start: usize) -> Result<()> {
        let end = self.find(start, b"/#");
        let text = &self.src[start..end];
        if text.is_empty() {
            return match self.bytes.get(end) {
                // A trailing `/` after the release (`pkg/@r1/`).
                None => Ok(()),
                Some(b'#') => Err(self.err(
                    end,
                    format!(
                        "unexpected fragment: expected a subpath type, {}",
                        expected_types()
                    ),
                )),
                _ => Err(self.err(
                    end,
                    format!("expected a subpath type, found '/': {}", expected_types()),
                )),
            };
        }
        let Some(ty) = SubPathType::parse(text) else {
            let mut msg = format!(
                "invalid subpath type: {text:?}: expected {}",
                expected_types()
            );
            if start == 2 && self.r.filename == "." && self.r.release.is_none() {
                msg.push_str("; to name a package path, leave out the leading \"./\"");
            }
            return Err(self.err(start, msg));
        };
        self.r.subpath_type = Some(ty);
        match self.bytes.get(end) {
            Some(b'/') => self.subpath(end + 1),
            Some(b'#') => self.fragment(end + 1),
            _ => Ok(()),
        }
    }

    /// Rule 8: the subpath, up to `#` or the end. A trailing `/` is trimmed.
    fn subpath(&mut self, start: usize) -> Result<()> {
        let end = self.find(start, b"#");
        let raw = &self.src[start..end];
        if !raw.is_empty() {
            let text = self.trim_trailing_slash(raw, start, true, Part::Subpath)?;
            self.check_segments(text, start, Part::Subpath)?;
            self.r.subpath = text.to_string();
        }
        if end < self.bytes.len() {
            return self.fragment(end + 1);
        }
        Ok(())
    }

    /// Rule 9: the fragment, the rest of the ref. A trailing `/` is trimmed.
    fn fragment(&mut self, start: usize) -> Result<()> {
        let raw = &self.src[start..];
        if !raw.is_empty() {
            let text = self.trim_trailing_slash(raw, start, true, Part::Fragment)?;
            self.check_segments(text, start, Part::Fragment)?;
            self.r.fragment = text.to_string();
        }
        Ok(())
    }
}

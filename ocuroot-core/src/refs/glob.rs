//! Ref globs with the semantics of `github.com/gobwas/glob` (separator `/`),
//! compiled with `globset`.
//!
//! globset and gobwas differ on `**`: globset gives it a special meaning only
//! as a whole path component (`**/x` also matches `x`, `a/**/b` also matches
//! `a/b`) and treats it as `*` elsewhere, while in gobwas `**` is simply "any
//! characters, `/` included", wherever it is. So the pattern is first
//! tokenised with gobwas rules and then written out as a globset pattern in
//! which every `**` becomes `{*,*/**/*}`. That alternation is exactly "any
//! string": its first branch matches strings without `/`, its second strings
//! with at least one `/` (first segment, then `/` or `/.../`, then last
//! segment). So `**/@*` does not match `@r1` (gobwas needs the `/`), `a/**/b`
//! does not match `a/b`, and `foo**` matches `foo/bar`. A pattern that is just
//! `**` is passed through (it matches everything in both).
//!
//! Character classes (`[abc]`, `[a-z]`, `[!abc]`) are re-emitted so that
//! globset reads them as gobwas does (`^` is not a negation in gobwas); unlike
//! gobwas they never match `/`, which in refs is always a separator.

use crate::{Error, Result};

/// One lexical element of a gobwas pattern.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// A literal character (escapes resolved).
    Lit(char),
    /// `*`: any run of non-`/` characters.
    Star,
    /// `**`: any run of characters.
    Super,
    /// `?`: one non-`/` character.
    Single,
    /// `[...]`: inclusive ranges, possibly negated.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// `{`
    Open,
    /// `,` inside braces.
    Comma,
    /// `}` inside braces.
    Close,
}

fn glob_err(pattern: &str, offset: usize, msg: impl std::fmt::Display) -> Error {
    Error::invalid_ref(format!(
        "invalid glob {pattern:?} at offset {offset}: {msg}"
    ))
}

/// Tokenise `pattern` with gobwas's rules.
fn tokenize(pattern: &str) -> Result<Vec<Tok>> {
    let mut toks = Vec::new();
    let mut chars = pattern.char_indices().peekable();
    let mut depth = 0usize;
    let mut open_at = Vec::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, e)) => toks.push(Tok::Lit(e)),
                None => return Err(glob_err(pattern, i, "trailing backslash")),
            },
            '*' => {
                if chars.next_if(|&(_, n)| n == '*').is_some() {
                    toks.push(Tok::Super);
                } else {
                    toks.push(Tok::Star);
                }
            }
            '?' => toks.push(Tok::Single),
            '{' => {
                depth += 1;
                open_at.push(i);
                toks.push(Tok::Open);
            }
            ',' if depth > 0 => toks.push(Tok::Comma),
            '}' if depth > 0 => {
                depth -= 1;
                open_at.pop();
                toks.push(Tok::Close);
            }
            '[' => {
                let negated = chars.next_if(|&(_, n)| n == '!').is_some();
                let mut ranges = Vec::new();
                loop {
                    let Some((j, mut lo)) = chars.next() else {
                        return Err(glob_err(pattern, i, "unclosed character class '['"));
                    };
                    if lo == ']' {
                        break;
                    }
                    if lo == '\\' {
                        lo = match chars.next() {
                            Some((_, e)) => e,
                            None => return Err(glob_err(pattern, j, "trailing backslash")),
                        };
                    }
                    // `x-y` is a range unless the `-` is the last character.
                    let mut ahead = chars.clone();
                    if let (Some((_, '-')), Some((k, hi))) = (ahead.next(), ahead.next())
                        && hi != ']'
                    {
                        if hi < lo {
                            return Err(glob_err(
                                pattern,
                                k,
                                format!("invalid range {lo:?}-{hi:?} in character class"),
                            ));
                        }
                        chars.next();
                        chars.next();
                        ranges.push((lo, hi));
                        continue;
                    }
                    ranges.push((lo, lo));
                }
                if ranges.is_empty() {
                    return Err(glob_err(pattern, i, "empty character class \"[]\""));
                }
                toks.push(Tok::Class { negated, ranges });
            }
            c => toks.push(Tok::Lit(c)),
        }
    }
    if let Some(&at) = open_at.last() {
        return Err(glob_err(
            pattern,
            at,
            "unclosed alternatives '{': expected '}'",
        ));
    }
    Ok(toks)
}

/// Characters globset treats specially outside classes.
fn push_lit(out: &mut String, c: char) {
    if matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | ',' | '\\') {
        out.push('\\');
    }
    out.push(c);
}

/// Characters that are special somewhere inside a globset class.
const CLASS_SPECIALS: [char; 5] = ['!', '-', '[', ']', '^'];

/// Write a class so that globset reads exactly the given ranges.
fn push_class(out: &mut String, negated: bool, ranges: &[(char, char)]) {
    // Split the ranges into "safe" ranges and the special characters they contain.
    let mut safe = Vec::new();
    let mut specials = Vec::new();
    for &(lo, hi) in ranges {
        let mut cur = Some(lo);
        for sp in CLASS_SPECIALS {
            let Some(c) = cur else { break };
            if c <= sp && sp <= hi {
                if c < sp {
                    safe.push((c, char::from_u32(sp as u32 - 1).unwrap_or(sp)));
                }
                if !specials.contains(&sp) {
                    specials.push(sp);
                }
                cur = char::from_u32(sp as u32 + 1);
            }
        }
        if let Some(c) = cur.filter(|&c| c <= hi) {
            safe.push((c, hi));
        }
    }
    let range_text = |(lo, hi): (char, char)| {
        if lo == hi {
            lo.to_string()
        } else {
            format!("{lo}-{hi}")
        }
    };
    if negated {
        // `]` first, `^`/`!` after the negation, `[` late (never before `:`), `-` last.
        out.push_str("[!");
        for sp in [']', '^', '!'] {
            if specials.contains(&sp) {
                out.push(sp);
            }
        }
        for &r in &safe {
            out.push_str(&range_text(r));
        }
        for sp in ['[', '-'] {
            if specials.contains(&sp) {
                out.push(sp);
            }
        }
        out.push(']');
        return;
    }
    // A positive class is written as alternatives of single-range classes and
    // escaped literals, which sidesteps every ordering rule of globset classes.
    let mut items: Vec<String> = safe
        .into_iter()
        .map(|r| {
            // A lone `/` stays a class: classes never match `/`.
            if r.0 == r.1 && r.0 != '/' {
                let mut s = String::new();
                push_lit(&mut s, r.0);
                s
            } else {
                format!("[{}]", range_text(r))
            }
        })
        .collect();
    for sp in specials {
        let mut s = String::new();
        push_lit(&mut s, sp);
        items.push(s);
    }
    if items.len() == 1 {
        out.push_str(&items[0]);
    } else {
        out.push('{');
        out.push_str(&items.join(","));
        out.push('}');
    }
}

/// The globset pattern equivalent to the gobwas tokens.
fn to_globset(toks: &[Tok]) -> String {
    if toks == [Tok::Super] {
        return "**".to_string();
    }
    let mut out = String::new();
    for t in toks {
        match t {
            Tok::Lit(c) => push_lit(&mut out, *c),
            Tok::Star => out.push('*'),
            Tok::Super => out.push_str("{*,*/**/*}"),
            Tok::Single => out.push('?'),
            Tok::Class { negated, ranges } => push_class(&mut out, *negated, ranges),
            Tok::Open => out.push('{'),
            Tok::Comma => out.push(','),
            Tok::Close => out.push('}'),
        }
    }
    out
}

/// The literal prefix of the tokens, cut back to the last `/` unless the
/// whole pattern is literal.
fn literal_prefix(toks: &[Tok]) -> String {
    let mut lit = String::new();
    for t in toks {
        match t {
            Tok::Lit(c) => lit.push(*c),
            _ => {
                let end = lit.rfind('/').map_or(0, |i| i + 1);
                lit.truncate(end);
                return lit;
            }
        }
    }
    lit
}

/// A compiled ref glob, with the semantics of the original (gobwas globs with
/// separator `/`):
///
/// - `*` matches any run of characters within a segment, `?` one character;
/// - `**` matches any run of characters, `/` included, wherever it appears
///   (`**/@*`, `a/**`, `foo**`);
/// - `[abc]`, `[a-z]` and `[!abc]` are character classes (never matching `/`);
/// - `{a,b}` are alternatives, which may nest and contain any pattern;
/// - `\` escapes the next character;
/// - the whole candidate must match.
///
/// ```
/// use ocuroot_core::refs::RefGlob;
///
/// let g = RefGlob::new("**/@*/{task,deploy}/*/*/status/{pending,paused}").unwrap();
/// assert!(g.is_match("github.com/o/r/-/pkg.ocu.star/@r1/deploy/prod/2/status/paused"));
/// assert!(!g.is_match("github.com/o/r/-/pkg.ocu.star/@r1/deploy/prod/2/status/complete"));
/// assert_eq!(g.literal_prefix(), "");
/// ```
#[derive(Debug, Clone)]
pub struct RefGlob {
    pattern: String,
    prefix: String,
    glob: globset::Glob,
    matcher: globset::GlobMatcher,
}

impl RefGlob {
    /// Compile a pattern. The error names the pattern and the offset of the problem.
    pub fn new(pattern: &str) -> Result<RefGlob> {
        let toks = tokenize(pattern)?;
        let translated = to_globset(&toks);
        let glob = globset::GlobBuilder::new(&translated)
            .literal_separator(true)
            .backslash_escape(true)
            .empty_alternates(true)
            .build()
            .map_err(|e| {
                Error::invalid_ref(format!("invalid glob {pattern:?}: {}", e.kind())).with_source(e)
            })?;
        Ok(RefGlob {
            pattern: pattern.to_string(),
            prefix: literal_prefix(&toks),
            matcher: glob.compile_matcher(),
            glob,
        })
    }

    /// True if the whole of `candidate` matches.
    pub fn is_match(&self, candidate: &str) -> bool {
        self.matcher.is_match(candidate)
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// The longest literal prefix of the pattern that ends at a `/` (or the
    /// whole pattern if it has no metacharacters), for listing store keys by
    /// prefix: every match starts with it. `"a/b/@*/task/*"` gives `"a/b/"`,
    /// `"**/@*"` gives `""`, `"@/environment/*"` gives `"@/environment/"`.
    pub fn literal_prefix(&self) -> &str {
        &self.prefix
    }
}

impl std::fmt::Display for RefGlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.pattern)
    }
}

/// Several [`RefGlob`]s, OR-ed: a candidate matches if any glob matches.
#[derive(Debug, Clone)]
pub struct RefGlobSet {
    globs: Vec<RefGlob>,
    set: globset::GlobSet,
}

impl RefGlobSet {
    /// Compile every pattern; the first invalid one gives the error. An empty
    /// set matches nothing.
    pub fn new(patterns: &[impl AsRef<str>]) -> Result<RefGlobSet> {
        let globs = patterns
            .iter()
            .map(|p| RefGlob::new(p.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        let mut builder = globset::GlobSetBuilder::new();
        for g in &globs {
            builder.add(g.glob.clone());
        }
        let set = builder.build().map_err(|e| {
            Error::invalid_ref(format!("invalid glob set: {}", e.kind())).with_source(e)
        })?;
        Ok(RefGlobSet { globs, set })
    }

    /// True if any glob matches the whole of `candidate`.
    pub fn is_match(&self, candidate: &str) -> bool {
        self.set.is_match(candidate)
    }

    /// The globs, in the order given.
    pub fn globs(&self) -> &[RefGlob] {
        &self.globs
    }

    /// True if the set has no globs (and so matches nothing).
    pub fn is_empty(&self) -> bool {
        self.globs.is_empty()
    }

    /// The literal prefixes of the globs, sorted and de-duplicated, leaving
    /// out any prefix that extends another (`a/` covers `a/b/`). Listing the
    /// keys under each finds every candidate that can match.
    pub fn prefixes(&self) -> Vec<String> {
        let mut all: Vec<&str> = self.globs.iter().map(|g| g.literal_prefix()).collect();
        all.sort_unstable();
        all.dedup();
        let mut out: Vec<String> = Vec::new();
        for p in all {
            // Sorted order puts a prefix before every string extending it.
            if !out.iter().any(|q| p.starts_with(q.as_str())) {
                out.push(p.to_string());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(p: &str) -> RefGlob {
        RefGlob::new(p).unwrap_or_else(|e| panic!("{p:?}: {e}"))
    }

    #[test]
    fn translation() {
        let t = |p: &str| to_globset(&tokenize(p).unwrap());
        assert_eq!(t("**"), "**");
        assert_eq!(t("**/@*"), "{*,*/**/*}/@*");
        assert_eq!(t("a/{b,c}"), "a/{b,c}");
        assert_eq!(t("a,b}"), "a\\,b\\}");
        assert_eq!(t("[abc]"), "{a,b,c}");
        assert_eq!(t("[a-c]"), "[a-c]");
        assert_eq!(t("[!a-c]"), "[!a-c]");
        assert_eq!(t("[^]"), "^");
        assert_eq!(t("[!^]"), "[!^]");
        assert_eq!(t("[!-]"), "[!-]");
        assert_eq!(t("[!\\]-]"), "[!]-]");
        assert_eq!(t("\\*x"), "\\*x");
    }

    #[test]
    fn super_star_anywhere_crosses_separators() {
        assert!(g("foo**").is_match("foo/bar/baz"));
        assert!(g("foo**").is_match("foo"));
        assert!(g("**bar").is_match("a/b/foobar"));
        assert!(!g("**bar").is_match("a/b/barx"));
        assert!(g("a**b").is_match("a/x/y/b"));
        assert!(g("a**b").is_match("ab"));
        assert!(g("{x,a**b}").is_match("a/b"));
        assert!(g("***").is_match("a/b"));
        assert!(g("**").is_match(""));
        assert!(g("**").is_match("a/b/c"));
    }

    #[test]
    fn gobwas_not_globset_semantics_for_recursive_components() {
        // gobwas `**/x` needs the `/`.
        assert!(!g("**/@*").is_match("@r1"));
        assert!(g("**/@*").is_match("/@r1"));
        // gobwas `a/**/b` needs two slashes.
        assert!(!g("a/**/b").is_match("a/b"));
        assert!(g("a/**/b").is_match("a/x/b"));
        assert!(g("a/**/b").is_match("a/x/y/b"));
        // gobwas `a/**` matches `a/` but not `a`.
        assert!(g("a/**").is_match("a/"));
        assert!(g("a/**").is_match("a/b/c"));
        assert!(!g("a/**").is_match("a"));
    }

    #[test]
    fn classes() {
        assert!(g("[abc]").is_match("b"));
        assert!(!g("[abc]").is_match("d"));
        assert!(g("[!abc]").is_match("d"));
        assert!(!g("[!abc]").is_match("a"));
        assert!(!g("[!abc]").is_match("/"));
        assert!(g("[^x]").is_match("^"));
        assert!(g("[^x]").is_match("x"));
        assert!(!g("[^x]").is_match("y"));
        assert!(g("r[0-9]").is_match("r7"));
        assert!(g("[!-]").is_match("a"));
        assert!(!g("[!-]").is_match("-"));
        assert!(g("[ -~]").is_match("-"));
        assert!(g("[ -~]").is_match("]"));
        assert!(g("[ -~]").is_match("["));
        assert!(g("[ -~]").is_match("a"));
        assert!(!g("[ -~]").is_match("/"));
        assert!(g("[!a-z]").is_match("]"));
        assert!(g("[!a-z]").is_match("!"));
        assert!(!g("[!a-z]").is_match("q"));
        assert!(g("[[:]").is_match(":"));
        assert!(g("[[:]").is_match("["));
    }

    #[test]
    fn errors() {
        for (p, want) in [
            ("a[bc", "unclosed character class"),
            ("{a,b", "unclosed alternatives"),
            ("a\\", "trailing backslash"),
            ("[]", "empty character class"),
            ("[z-a]", "invalid range"),
        ] {
            let e = RefGlob::new(p).unwrap_err().to_string();
            assert!(
                e.contains(want) && e.contains(&format!("{p:?}")),
                "{p}: {e}"
            );
        }
    }

    #[test]
    fn prefixes() {
        assert_eq!(g("a/b/@*/task/*").literal_prefix(), "a/b/");
        assert_eq!(g("**/@*").literal_prefix(), "");
        assert_eq!(g("@/environment/*").literal_prefix(), "@/environment/");
        assert_eq!(g("a/b/c").literal_prefix(), "a/b/c");
        assert_eq!(g("a/b\\*c/d*").literal_prefix(), "a/b*c/");
        assert_eq!(g("ab*").literal_prefix(), "");
        assert_eq!(g("a/{b,c}").literal_prefix(), "a/");
        let set =
            RefGlobSet::new(&["x/a/b/*", "x/a/*", "y/c", "y/c/d/*", "z/*/q", "x/a/*"]).unwrap();
        assert_eq!(set.prefixes(), vec!["x/a/", "y/c", "z/"]);
        let set = RefGlobSet::new(&["x/*", "**"]).unwrap();
        assert_eq!(set.prefixes(), vec![""]);
        assert!(
            RefGlobSet::new(&[] as &[&str])
                .unwrap()
                .prefixes()
                .is_empty()
        );
    }

    #[test]
    fn set_matches_any() {
        let set = RefGlobSet::new(&["**/@*/deploy/*", "@*/environment/*"]).unwrap();
        assert!(set.is_match("r/-/p/@r1/deploy/prod"));
        assert!(set.is_match("@/environment/prod"));
        assert!(!set.is_match("r/-/p/@r1/task/build"));
        assert!(!RefGlobSet::new(&[] as &[&str]).unwrap().is_match(""));
        let err = RefGlobSet::new(&["ok/*", "bad["]).unwrap_err().to_string();
        assert!(err.contains("\"bad[\""), "{err}");
    }
}

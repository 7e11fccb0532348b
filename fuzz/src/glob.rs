//! `glob`: ref globs ([`RefGlob`], [`RefGlobSet`]) and their literal
//! prefixes, with a small reference matcher of the documented semantics.

use ocuroot_core::ErrorKind;
use ocuroot_core::refs::{RefGlob, RefGlobSet};

use crate::pending;

/// Candidates per input, at most.
const MAX_LINES: usize = 12;
/// Patterns in the set, at most (compiling is what takes the time).
const MAX_SET: usize = 4;

/// The input as text, in lines: the first is the pattern, the others are
/// candidates (and, for the set, further patterns).
///
/// - compiling never panics; an error is `InvalidRef`;
/// - `as_str`/`Display` give the pattern back;
/// - every match starts with `literal_prefix()`, which ends at a `/` or is
///   the whole (unescaped) pattern when it has no metacharacters; such a
///   literal pattern matches itself;
/// - the set matches when one of its globs does, and every match starts
///   with one of `prefixes()`, which are sorted, unique and never extend
///   one another;
/// - for short patterns, matching agrees with [`oracle`], a direct
///   implementation of the rules documented on [`RefGlob`].
pub fn check_glob(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let pattern = lines.next().unwrap_or("");
    let rest: Vec<&str> = lines.take(MAX_LINES).collect();
    let glob = match RefGlob::new(pattern) {
        Ok(g) => Some(g),
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::InvalidRef, "{pattern:?}: {e}");
            None
        }
    };
    let oracle = Oracle::new(pattern);
    if pending::skip_glob_class_slash(oracle.as_ref().is_some_and(|o| o.class_names_slash)) {
        return false;
    }
    assert_eq!(
        glob.is_some(),
        oracle.is_some(),
        "{pattern:?}: compiles: {}, by the documented rules: {}",
        glob.is_some(),
        oracle.is_some()
    );
    if let Some(g) = &glob {
        check_one(g, pattern, &rest, oracle.as_ref());
    }

    // The set: the pattern and the first few short lines that compile on
    // their own.
    let patterns: Vec<&str> = glob
        .as_ref()
        .map(|_| pattern)
        .into_iter()
        .chain(
            rest.iter()
                .copied()
                .filter(|p| p.len() <= 64 && RefGlob::new(p).is_ok())
                .take(MAX_SET - 1),
        )
        .collect();
    let set = RefGlobSet::new(&patterns)
        .unwrap_or_else(|e| panic!("set of globs that compile one by one: {patterns:?}: {e}"));
    assert_eq!(set.is_empty(), patterns.is_empty());
    let prefixes = set.prefixes();
    for w in prefixes.windows(2) {
        assert!(w[0] < w[1], "prefixes not sorted and unique: {prefixes:?}");
    }
    for (i, p) in prefixes.iter().enumerate() {
        for (j, q) in prefixes.iter().enumerate() {
            assert!(
                i == j || !p.starts_with(q.as_str()),
                "{p:?} extends {q:?} in {prefixes:?}"
            );
        }
    }
    for c in rest.iter().chain(patterns.iter()) {
        let any = set.globs().iter().any(|g| g.is_match(c));
        assert_eq!(set.is_match(c), any, "set {patterns:?} on {c:?}");
        if any {
            assert!(
                prefixes.iter().any(|p| c.starts_with(p.as_str())),
                "set {patterns:?} matches {c:?}, under none of {prefixes:?}"
            );
        }
    }
    true
}

fn check_one(g: &RefGlob, pattern: &str, candidates: &[&str], oracle: Option<&Oracle>) {
    assert_eq!(g.as_str(), pattern);
    assert_eq!(g.to_string(), pattern);
    let prefix = g.literal_prefix();
    if let Some(o) = oracle {
        // "The longest literal prefix of the pattern that ends at a `/` (or
        // the whole pattern if it has no metacharacters)", escapes resolved.
        if o.literal {
            assert_eq!(
                prefix, o.head,
                "{pattern:?} is literal: its prefix is all of it"
            );
            assert!(
                g.is_match(&o.head),
                "literal pattern {pattern:?} does not match {:?}",
                o.head
            );
        } else {
            let cut = o.head.rfind('/').map_or(0, |i| i + 1);
            assert_eq!(prefix, &o.head[..cut], "{pattern:?}: literal prefix");
        }
    }
    let head = oracle.map_or("", |o| o.head.as_str());
    let extra = [prefix, pattern, head, ""];
    for c in candidates.iter().chain(extra.iter()) {
        let m = g.is_match(c);
        if m {
            assert!(
                c.starts_with(prefix),
                "{pattern:?} matches {c:?}, which does not start with its literal prefix {prefix:?}"
            );
        }
        if let Some(o) = oracle
            && let Some(want) = o.is_match(c)
        {
            assert_eq!(
                m, want,
                "{pattern:?} on {c:?}: RefGlob says {m}, the documented rules say {want}"
            );
        }
    }
}

// ----- the reference matcher ----------------------------------------------

/// One element of a pattern, by the rules documented on [`RefGlob`].
#[derive(Debug, Clone, PartialEq)]
enum Item {
    Lit(char),
    /// `*`: a run of non-`/` characters.
    Star,
    /// `**`: any run of characters.
    Super,
    /// `?`: one non-`/` character.
    Single,
    /// A class: one non-`/` character in (or, negated, not in) the ranges.
    Class(bool, Vec<(char, char)>),
    /// `{a,b,...}`: alternatives, each a sequence.
    Alt(Vec<Vec<Item>>),
}

/// Patterns longer than this are not checked against the oracle.
const ORACLE_MAX_PATTERN: usize = 96;
/// Candidates longer than this (in chars) are not checked.
const ORACLE_MAX_CANDIDATE: usize = 256;
/// Expansions of alternatives beyond this are not checked.
const ORACLE_MAX_EXPANSIONS: usize = 64;

struct Oracle {
    /// The literal characters the pattern starts with (escapes resolved).
    head: String,
    /// Whether the pattern is only literal characters.
    literal: bool,
    /// Whether a positive class names `/` by itself (see [`pending`]).
    class_names_slash: bool,
    /// Every alternative expanded: the pattern as a set of flat sequences
    /// (`None` when there are too many to check).
    seqs: Option<Vec<Vec<Item>>>,
}

impl Oracle {
    /// `None` when the pattern is invalid by the documented rules.
    fn new(pattern: &str) -> Option<Oracle> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut at = 0;
        let seq = parse_seq(&chars, &mut at, 0)?;
        if at != chars.len() {
            return None;
        }
        let head: String = seq
            .iter()
            .map_while(|i| match i {
                Item::Lit(c) => Some(*c),
                _ => None,
            })
            .collect();
        let literal = seq.iter().all(|i| matches!(i, Item::Lit(_)));
        let seqs = if pattern.len() <= ORACLE_MAX_PATTERN {
            expand(&seq)
        } else {
            None
        };
        Some(Oracle {
            head,
            literal,
            class_names_slash: names_slash(&seq),
            seqs,
        })
    }

    fn is_match(&self, candidate: &str) -> Option<bool> {
        let seqs = self.seqs.as_ref()?;
        let c: Vec<char> = candidate.chars().collect();
        if c.len() > ORACLE_MAX_CANDIDATE {
            return None;
        }
        Some(seqs.iter().any(|s| match_seq(s, &c)))
    }
}

/// A sequence up to the end, or (inside `depth` braces) up to a `,` or `}`.
fn parse_seq(p: &[char], at: &mut usize, depth: usize) -> Option<Vec<Item>> {
    let mut out = Vec::new();
    while let Some(&c) = p.get(*at) {
        match c {
            ',' | '}' if depth > 0 => return Some(out),
            '\\' => {
                out.push(Item::Lit(*p.get(*at + 1)?));
                *at += 2;
            }
            '*' => {
                if p.get(*at + 1) == Some(&'*') {
                    out.push(Item::Super);
                    *at += 2;
                } else {
                    out.push(Item::Star);
                    *at += 1;
                }
            }
            '?' => {
                out.push(Item::Single);
                *at += 1;
            }
            '{' => {
                *at += 1;
                let mut alts = vec![parse_seq(p, at, depth + 1)?];
                loop {
                    match p.get(*at) {
                        Some(',') => {
                            *at += 1;
                            alts.push(parse_seq(p, at, depth + 1)?);
                        }
                        Some('}') => {
                            *at += 1;
                            break;
                        }
                        _ => return None,
                    }
                }
                out.push(Item::Alt(alts));
            }
            '[' => {
                *at += 1;
                let negated = p.get(*at) == Some(&'!');
                if negated {
                    *at += 1;
                }
                let mut ranges = Vec::new();
                loop {
                    let mut lo = *p.get(*at)?;
                    *at += 1;
                    if lo == ']' {
                        break;
                    }
                    if lo == '\\' {
                        lo = *p.get(*at)?;
                        *at += 1;
                    }
                    // `x-y` is a range unless `y` is the closing `]`.
                    if p.get(*at) == Some(&'-')
                        && let Some(&hi) = p.get(*at + 1)
                        && hi != ']'
                    {
                        if hi < lo {
                            return None;
                        }
                        ranges.push((lo, hi));
                        *at += 2;
                        continue;
                    }
                    ranges.push((lo, lo));
                }
                if ranges.is_empty() {
                    return None;
                }
                out.push(Item::Class(negated, ranges));
            }
            c => {
                out.push(Item::Lit(c));
                *at += 1;
            }
        }
    }
    Some(out)
}

/// Whether a positive class in `seq` has `/` as a single character.
fn names_slash(seq: &[Item]) -> bool {
    seq.iter().any(|i| match i {
        Item::Class(false, ranges) => ranges.contains(&('/', '/')),
        Item::Alt(alts) => alts.iter().any(|a| names_slash(a)),
        _ => false,
    })
}

/// Every flat sequence the alternatives allow, or `None` if too many.
fn expand(seq: &[Item]) -> Option<Vec<Vec<Item>>> {
    let mut outs: Vec<Vec<Item>> = vec![Vec::new()];
    for item in seq {
        match item {
            Item::Alt(alts) => {
                let mut choices = Vec::new();
                for a in alts {
                    choices.extend(expand(a)?);
                }
                let mut next = Vec::new();
                for o in &outs {
                    for c in &choices {
                        let mut s = o.clone();
                        s.extend(c.iter().cloned());
                        next.push(s);
                        if next.len() > ORACLE_MAX_EXPANSIONS {
                            return None;
                        }
                    }
                }
                outs = next;
            }
            other => outs.iter_mut().for_each(|o| o.push(other.clone())),
        }
    }
    Some(outs)
}

/// Whether the flat sequence matches the whole candidate (dynamic
/// programming over pattern and candidate positions).
fn match_seq(seq: &[Item], c: &[char]) -> bool {
    // reach[j]: the items so far can match c[..j].
    let mut reach = vec![false; c.len() + 1];
    reach[0] = true;
    for item in seq {
        let mut next = vec![false; c.len() + 1];
        match item {
            Item::Star | Item::Super => {
                let mut on = false;
                for j in 0..=c.len() {
                    if reach[j] {
                        on = true;
                    }
                    next[j] = on;
                    if j < c.len() && *item == Item::Star && c[j] == '/' {
                        on = false;
                    }
                }
            }
            _ => {
                for j in 0..c.len() {
                    if reach[j] && one(item, c[j]) {
                        next[j + 1] = true;
                    }
                }
            }
        }
        reach = next;
    }
    reach[c.len()]
}

fn one(item: &Item, ch: char) -> bool {
    match item {
        Item::Lit(l) => *l == ch,
        Item::Single => ch != '/',
        Item::Class(negated, ranges) => {
            ch != '/' && ranges.iter().any(|&(lo, hi)| lo <= ch && ch <= hi) != *negated
        }
        Item::Star | Item::Super | Item::Alt(_) => unreachable!(),
    }
}

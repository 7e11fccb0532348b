//! A scan of a file's source for nesting that would make Starlark's parser
//! and compiler recurse past any stack: brackets nested too deep, blocks
//! indented too deep, and chains of operators (`1+1+1+...`, `a.b.c...`,
//! `f()()()...`) that parse into one left-deep tree. It runs before
//! parsing, without recursion, and only looks at tokens well enough to skip
//! strings and comments.

use crate::{Error, ErrorKind, Location, Result};

/// Brackets (`(`, `[`, `{`) open at once.
pub(crate) const MAX_BRACKETS: usize = 200;
/// Indented blocks open at once.
pub(crate) const MAX_BLOCKS: usize = 100;
/// Operators, calls, subscripts and attribute accesses in one run of an
/// expression without a `,`, `:` or `=` between them.
pub(crate) const MAX_CHAIN: usize = 1000;

const KEYWORD_OPERATORS: &[&str] = &["and", "or", "not", "in", "is", "if", "else", "lambda"];

/// Refuse `source` (shown as `file`) if it nests deeper than the limits
/// above, naming the line and column where it does.
pub(crate) fn check(source: &str, file: &str) -> Result<()> {
    let bytes = source.as_bytes();
    let err = |at: usize, msg: String| {
        let before = &source[..at];
        let line = before.matches('\n').count() as u32 + 1;
        let column = (at - before.rfind('\n').map_or(0, |i| i + 1)) as u32 + 1;
        Err(Error::new(ErrorKind::Eval, msg).with_location(Location {
            file: file.to_string(),
            line,
            column,
        }))
    };
    // One chain counter per open bracket, plus the top level.
    let mut chains: Vec<usize> = vec![0];
    let mut blocks: Vec<usize> = Vec::new();
    let mut at_line_start = true;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if at_line_start && chains.len() == 1 {
            let indent = bytes[i..]
                .iter()
                .take_while(|c| **c == b' ' || **c == b'\t')
                .count();
            let next = bytes.get(i + indent).copied();
            if !matches!(next, None | Some(b'\n' | b'\r' | b'#')) {
                while blocks.last().is_some_and(|w| *w > indent) {
                    blocks.pop();
                }
                if indent > 0 && blocks.last().is_none_or(|w| *w < indent) {
                    blocks.push(indent);
                    if blocks.len() > MAX_BLOCKS {
                        return err(
                            i + indent,
                            format!("blocks are indented more than {MAX_BLOCKS} deep"),
                        );
                    }
                }
            }
            at_line_start = false;
            i += indent;
            continue;
        }
        match b {
            b'\n' => {
                at_line_start = true;
                if chains.len() == 1 {
                    chains[0] = 0;
                }
                i += 1;
            }
            b'#' => {
                i += bytes[i..]
                    .iter()
                    .position(|c| *c == b'\n')
                    .unwrap_or(bytes.len() - i);
            }
            b'"' | b'\'' => {
                let triple = bytes[i..].starts_with(&[b, b, b]);
                let quote_len = if triple { 3 } else { 1 };
                let mut j = i + quote_len;
                loop {
                    match bytes.get(j) {
                        None => break,
                        Some(b'\\') => j += 2,
                        Some(b'\n') if !triple => break,
                        Some(c) if *c == b && (!triple || bytes[j..].starts_with(&[b, b, b])) => {
                            j += quote_len;
                            break;
                        }
                        Some(_) => j += 1,
                    }
                }
                i = j.min(bytes.len());
            }
            b'(' | b'[' | b'{' => {
                *chains.last_mut().expect("the top level is never closed") += 1;
                if *chains.last().unwrap_or(&0) > MAX_CHAIN {
                    return err(i, chain_message());
                }
                chains.push(0);
                if chains.len() > MAX_BRACKETS + 1 {
                    return err(
                        i,
                        format!("brackets are nested more than {MAX_BRACKETS} deep"),
                    );
                }
                i += 1;
            }
            b')' | b']' | b'}' => {
                if chains.len() > 1 {
                    chains.pop();
                }
                i += 1;
            }
            b',' | b':' | b';' => {
                *chains.last_mut().expect("the top level is never closed") = 0;
                i += 1;
            }
            b'=' if !matches!(bytes.get(i + 1), Some(b'='))
                && !is_operator_byte_before(bytes, i) =>
            {
                *chains.last_mut().expect("the top level is never closed") = 0;
                i += 1;
            }
            _ if b.is_ascii_alphabetic() || b == b'_' => {
                let len = bytes[i..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                    .count();
                let word = &source[i..i + len];
                if KEYWORD_OPERATORS.contains(&word) && bump(&mut chains) {
                    return err(i, chain_message());
                }
                i += len;
            }
            b'+' | b'-' | b'*' | b'/' | b'%' | b'|' | b'&' | b'^' | b'<' | b'>' | b'~' | b'.'
            | b'!' | b'=' => {
                if bump(&mut chains) {
                    return err(i, chain_message());
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Count one more link in the current chain; whether it is now too long.
fn bump(chains: &mut [usize]) -> bool {
    let last = chains.last_mut().expect("the top level is never closed");
    *last += 1;
    *last > MAX_CHAIN
}

/// Whether the `=` at `i` ends an operator (`+=`, `<=`, `!=`, `==`).
fn is_operator_byte_before(bytes: &[u8], i: usize) -> bool {
    i > 0
        && matches!(
            bytes[i - 1],
            b'+' | b'-' | b'*' | b'/' | b'%' | b'|' | b'&' | b'^' | b'<' | b'>' | b'!' | b'='
        )
}

fn chain_message() -> String {
    format!(
        "an expression chains more than {MAX_CHAIN} operators, calls or attributes without a \
         `,` between them; split it into several statements"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fails(src: &str) -> String {
        let e = check(src, "f.ocu.star").unwrap_err();
        assert!(e.location().is_some());
        e.to_string()
    }

    #[test]
    fn ordinary_files_pass() {
        let ok = r#"
x = [1, 2, {"a": (3 + 4) * 5}]  # a comment with ((((( brackets
s = "a string with [[[[ and +++" + '''and a
triple ((( quoted''' + 'x'
def f(a, b = 2):
    if a:
        return a.b.c(1)[0]
    return b >= 2 and not a
"#;
        check(ok, "f.ocu.star").unwrap();
        let long_list = format!("x = [{}]", vec!["1 + 1"; 5000].join(", "));
        check(&long_list, "f.ocu.star").unwrap();
    }

    #[test]
    fn deep_brackets_chains_and_blocks_are_refused_with_their_place() {
        let deep = format!("x = {}{}", "[".repeat(300), "]".repeat(300));
        assert!(fails(&deep).starts_with("f.ocu.star:1:205: brackets are nested more than 200"));
        let chain = format!("\nx = 1{}", "+1".repeat(2000));
        assert!(
            fails(&chain).starts_with("f.ocu.star:2:"),
            "{}",
            fails(&chain)
        );
        assert!(fails(&chain).contains("more than 1000 operators"));
        let calls = format!("x = f{}", "()".repeat(2000));
        assert!(fails(&calls).contains("more than 1000"));
        let mut blocks = String::new();
        for d in 0..150 {
            blocks.push_str(&format!("{}if x:\n", " ".repeat(d)));
        }
        blocks.push_str(&format!("{}pass\n", " ".repeat(150)));
        assert!(fails(&blocks).contains("indented more than 100 deep"));
    }
}

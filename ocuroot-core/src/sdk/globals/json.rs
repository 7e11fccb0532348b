//! The `json` module: Starlark's `encode` and `decode`, and the Go Starlark
//! module's `indent` and `encode_indent`, which the original offers.

use serde_json::Value as Json;
use starlark::environment::GlobalsBuilder;
use starlark::values::Value;

/// `json.encode`, `json.decode`, `json.indent` and `json.encode_indent`,
/// with the depth limit of every value leaving Starlark (see
/// [`MAX_VALUE_DEPTH`](crate::model::MAX_VALUE_DEPTH)).
#[starlark::starlark_module]
pub(super) fn json_members(builder: &mut GlobalsBuilder) {
    /// Encode a value as JSON text.
    fn encode(#[starlark(require = pos)] x: Value) -> anyhow::Result<String> {
        super::super::values::check_depth(x, "the value given to json.encode")?;
        x.to_json()
    }

    /// Decode JSON text into a value.
    fn decode<'v>(
        #[starlark(require = pos)] x: &str,
        heap: starlark::values::Heap<'v>,
    ) -> anyhow::Result<Value<'v>> {
        let v: Json = serde_json::from_str(x)
            .map_err(|e| anyhow::anyhow!("json.decode: invalid JSON: {e}"))?;
        crate::model::check_json_depth(&v, "the text given to json.decode")?;
        Ok(heap.alloc(v))
    }

    /// JSON text `str` laid out as Go's `json.Indent` does: every element of
    /// an object or array on a new line starting with `prefix` and one
    /// `indent` per level of nesting (keys, numbers and strings as written).
    fn indent(
        #[starlark(require = pos)] str: &str,
        #[starlark(require = named, default = "")] prefix: &str,
        #[starlark(require = named, default = "\t")] indent: &str,
    ) -> anyhow::Result<String> {
        lay_out(str, prefix, indent).map_err(|e| anyhow::anyhow!("json.indent: {e}"))
    }

    /// `json.indent(json.encode(x), prefix=prefix, indent=indent)`.
    fn encode_indent(
        #[starlark(require = pos)] x: Value,
        #[starlark(require = named, default = "")] prefix: &str,
        #[starlark(require = named, default = "\t")] indent: &str,
    ) -> anyhow::Result<String> {
        super::super::values::check_depth(x, "the value given to json.encode_indent")?;
        lay_out(&x.to_json()?, prefix, indent)
            .map_err(|e| anyhow::anyhow!("json.encode_indent: {e}"))
    }
}

/// `text` (JSON) laid out as Go's `json.Indent` lays it out: an element of
/// an object or array starts a new line of `prefix` and one `indent` per
/// level; `": "` after a key; an empty object or array stays `{}` / `[]`;
/// the first line has no prefix. Checked first with serde_json, so invalid
/// JSON is an error naming where.
fn lay_out(text: &str, prefix: &str, indent: &str) -> Result<String, String> {
    serde_json::from_str::<serde::de::IgnoredAny>(text)
        .map_err(|e| format!("invalid JSON: {e}"))?;
    let mut out = String::with_capacity(text.len() * 2);
    let mut depth = 0usize;
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(prefix);
        for _ in 0..depth {
            out.push_str(indent);
        }
    };
    let mut chars = text.chars().peekable();
    // Whether the last token opened an object or array, whose first
    // element (if any) starts the next line.
    let mut opened = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_whitespace() {
            continue;
        }
        if opened {
            opened = false;
            if c != '}' && c != ']' {
                depth += 1;
                newline(&mut out, depth);
            }
        }
        match c {
            '"' => {
                out.push('"');
                while let Some(s) = chars.next() {
                    out.push(s);
                    match s {
                        '\\' => {
                            if let Some(escaped) = chars.next() {
                                out.push(escaped);
                            }
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '{' | '[' => {
                out.push(c);
                opened = true;
            }
            '}' | ']' => {
                // Not after an empty one: its opening did not indent.
                let empty = out.ends_with('{') || out.ends_with('[');
                if !empty {
                    depth = depth.saturating_sub(1);
                    newline(&mut out, depth);
                }
                out.push(c);
            }
            ',' => {
                out.push(',');
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            other => out.push(other),
        }
    }
    // As Go's: leading white space is dropped, trailing white space kept.
    let trimmed = text.trim_end_matches(|c: char| c.is_ascii_whitespace());
    out.push_str(&text[trimmed.len()..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::lay_out;

    #[test]
    fn lays_out_as_go_json_indent() {
        assert_eq!(
            lay_out(
                r#"{"a":1, "b":[1,2,{}], "c":{"d":"x,y:\"z\""},"e":[]}"#,
                "",
                "\t"
            )
            .unwrap(),
            "{\n\t\"a\": 1,\n\t\"b\": [\n\t\t1,\n\t\t2,\n\t\t{}\n\t],\n\t\"c\": {\n\t\t\"d\": \"x,y:\\\"z\\\"\"\n\t},\n\t\"e\": []\n}"
        );
        assert_eq!(lay_out("[1]", "> ", "  ").unwrap(), "[\n>   1\n> ]");
        assert_eq!(lay_out(" 1e3 \n", "", "\t").unwrap(), "1e3 \n");
        assert_eq!(lay_out("\"a b\"", "", "\t").unwrap(), "\"a b\"");
        assert!(
            lay_out("{\"a\":}", "", "\t")
                .unwrap_err()
                .contains("invalid JSON")
        );
    }
}

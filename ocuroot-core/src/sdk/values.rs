//! Starlark values crossing into JSON, with the depth limit
//! ([`MAX_VALUE_DEPTH`]) checked first, without recursion: Starlark's own
//! conversion recurses once per level, so a value a million levels deep
//! (a loop of `x = [x]`) would otherwise exhaust the stack.

use serde_json::Value as Json;
use starlark::values::Value;
use starlark::values::dict::DictRef;
use starlark::values::list::ListRef;
use starlark::values::structs::StructRef;
use starlark::values::tuple::TupleRef;

use crate::model::MAX_VALUE_DEPTH;

/// Refuse `v` if it nests deeper than [`MAX_VALUE_DEPTH`] (a cycle, such
/// as a list containing itself, nests without end and is refused too).
pub(crate) fn check_depth(v: Value, what: &str) -> anyhow::Result<()> {
    let mut stack = vec![(v, 1usize)];
    while let Some((v, depth)) = stack.pop() {
        let before = stack.len();
        if let Some(list) = ListRef::from_value(v) {
            stack.extend(list.content().iter().map(|c| (*c, depth + 1)));
        } else if let Some(tuple) = TupleRef::from_value(v) {
            stack.extend(tuple.content().iter().map(|c| (*c, depth + 1)));
        } else if let Some(dict) = DictRef::from_value(v) {
            for (k, c) in dict.iter() {
                stack.push((k, depth + 1));
                stack.push((c, depth + 1));
            }
        } else if let Some(st) = StructRef::from_value(v) {
            stack.extend(st.iter().map(|(_, c)| (c, depth + 1)));
        }
        if stack.len() > before && depth > MAX_VALUE_DEPTH {
            anyhow::bail!("{what} is nested more than {MAX_VALUE_DEPTH} deep");
        }
    }
    Ok(())
}

/// `v` as JSON, once its depth is checked; `what` names it in errors.
pub(crate) fn to_json(v: Value, what: &str) -> anyhow::Result<Json> {
    check_depth(v, what)?;
    v.to_json_value()
        .map_err(|e| anyhow::anyhow!("{what} must be JSON-compatible: {e}"))
}

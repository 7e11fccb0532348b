//! Resolving a function's inputs against the state store.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::Result;
use crate::model::InputSpec;
use crate::refs::Ref;
use crate::store::RefStore;

/// The values of a function's inputs, or the refs it still waits for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Resolution {
    /// Values by input name (for every input that resolved).
    pub values: BTreeMap<String, Value>,
    /// Required refs that do not exist yet (or resolve to `null`).
    pub missing: Vec<Ref>,
}

impl Resolution {
    /// True when every input has a value.
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty()
    }
}

/// Resolve inputs: a ref's value from state (following links and the
/// `#fragment`), else its default; a static value as is.
pub fn resolve_inputs(
    state: &RefStore,
    inputs: &BTreeMap<String, InputSpec>,
) -> Result<Resolution> {
    let mut out = Resolution::default();
    for (name, spec) in inputs {
        match spec {
            InputSpec::Value(v) => {
                out.values.insert(name.clone(), v.clone());
            }
            InputSpec::Ref { r#ref, default } => match state.get(r#ref)?.filter(|v| !v.is_null()) {
                Some(v) => {
                    out.values.insert(name.clone(), v);
                }
                None => match default {
                    Some(d) => {
                        out.values.insert(name.clone(), d.clone());
                    }
                    None => out.missing.push(r#ref.clone()),
                },
            },
        }
    }
    Ok(out)
}

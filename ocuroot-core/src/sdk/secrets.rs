//! Secret masking.

use std::sync::{Arc, RwLock};

/// A shared set of strings to replace with `<secret>` in logs, stored
/// outputs and error messages. Cloning shares the set.
#[derive(Debug, Clone, Default)]
pub struct Secrets(Arc<RwLock<Vec<String>>>);

impl Secrets {
    /// `e` with every registered secret masked in its message and stack.
    pub fn mask_error(&self, e: crate::Error) -> crate::Error {
        if self.is_empty() {
            return e;
        }
        let mut masked = crate::Error::new(e.kind(), self.mask(e.message()));
        if let Some(l) = e.location() {
            masked = masked.with_location(l.clone());
        }
        if let Some(s) = e.stack() {
            masked = masked.with_stack(self.mask(s));
        }
        masked
    }

    /// Register a value; empty strings are ignored (they would mask everything).
    pub fn add(&self, value: &str) {
        if value.is_empty() {
            return;
        }
        let mut v = self.0.write().unwrap_or_else(|e| e.into_inner());
        if !v.iter().any(|s| s == value) {
            v.push(value.to_string());
            // Longest first, so a secret containing another is masked whole.
            v.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    /// Replace every registered value in `text` with `<secret>`.
    pub fn mask(&self, text: &str) -> String {
        let v = self.0.read().unwrap_or_else(|e| e.into_inner());
        let mut out = text.to_string();
        for s in v.iter() {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "<secret>");
            }
        }
        out
    }

    /// Mask every string inside a JSON value (keys and values).
    pub fn mask_json(&self, value: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        if self.is_empty() {
            return value.clone();
        }
        match value {
            Value::String(s) => Value::String(self.mask(s)),
            Value::Array(a) => Value::Array(a.iter().map(|v| self.mask_json(v)).collect()),
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, v)| (self.mask(k), self.mask_json(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// True when nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.0.read().unwrap_or_else(|e| e.into_inner()).is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_longest_first() {
        let s = Secrets::default();
        s.add("abc");
        s.add("abc123");
        s.add("");
        assert_eq!(s.mask("x abc123 abc"), "x <secret> <secret>");
        assert_eq!(
            s.mask_json(&serde_json::json!({"k": ["abc", 1]})),
            serde_json::json!({"k": ["<secret>", 1]})
        );
    }
}

//! Secret masking.

use std::sync::{Arc, RwLock};

/// A shared set of strings to replace with `<secret>` in logs, stored
/// outputs and error messages. Cloning shares the set.
///
/// Every value registered in any set is also remembered for the whole
/// process, for [`Secrets::process`]: diagnostics that no evaluation sees
/// (the `tracing` output of an embedding application or of the CLI, which
/// may include the URLs of HTTP requests) can be masked with it.
#[derive(Debug, Clone, Default)]
pub struct Secrets(Arc<RwLock<Vec<String>>>);

static PROCESS: std::sync::OnceLock<Secrets> = std::sync::OnceLock::new();

impl Secrets {
    /// Every secret registered in this process so far, in any set.
    pub fn process() -> &'static Secrets {
        PROCESS.get_or_init(Secrets::default)
    }

    /// `e` with every registered secret masked in its message and stack.
    pub fn mask_error(&self, e: crate::Error) -> crate::Error {
        if self.is_empty() {
            return e;
        }
        e.map_text(|text| self.mask(text))
    }

    /// Register a value; empty strings are ignored (they would mask everything).
    pub fn add(&self, value: &str) {
        if value.is_empty() {
            return;
        }
        let process = Secrets::process();
        if !Arc::ptr_eq(&self.0, &process.0) {
            process.add(value);
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

    /// Whether `text` contains a registered secret.
    pub fn found_in(&self, text: &str) -> bool {
        let v = self.0.read().unwrap_or_else(|e| e.into_inner());
        v.iter().any(|s| text.contains(s.as_str()))
    }

    /// Whether any string of a JSON value (key or value) contains a
    /// registered secret. Iterative: values may be deep.
    pub fn found_in_json(&self, value: &serde_json::Value) -> bool {
        use serde_json::Value;
        if self.is_empty() {
            return false;
        }
        let mut stack = vec![value];
        while let Some(v) = stack.pop() {
            match v {
                Value::String(s) if self.found_in(s) => return true,
                Value::Array(a) => stack.extend(a.iter()),
                Value::Object(o) => {
                    if o.keys().any(|k| self.found_in(k)) {
                        return true;
                    }
                    stack.extend(o.values());
                }
                _ => {}
            }
        }
        false
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

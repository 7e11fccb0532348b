//! The `.ocuroot-store` marker at the root of a directory or branch store:
//! `{"version":3,"Tags":{"state":{}}}`, as the original Ocuroot writes it.

use crate::{Error, Result};

/// The marker's file name.
pub(crate) const MARKER_FILE: &str = ".ocuroot-store";
/// The store format this version reads and writes.
pub(crate) const STORE_FORMAT: u64 = 3;

/// Check a marker (`existing`, absent when `None`) for a store tagged
/// `tag`; the new marker when it needs writing (created, or `tag` added).
/// `place` names the marker in errors (a path, or a branch and path).
pub(crate) fn marker_update(
    existing: Option<&[u8]>,
    tag: &str,
    place: &str,
) -> Result<Option<Vec<u8>>> {
    let mut marker = match existing {
        Some(bytes) => {
            let value: serde_json::Value = serde_json::from_slice(bytes)
                .map_err(|e| Error::store(format!("corrupt store marker {place}: {e}")))?;
            let serde_json::Value::Object(map) = value else {
                return Err(Error::store(format!(
                    "corrupt store marker {place}: not a JSON object"
                )));
            };
            map
        }
        None => serde_json::Map::new(),
    };
    let mut changed = false;
    match marker.get("version") {
        None if marker.is_empty() => {
            marker.insert("version".into(), STORE_FORMAT.into());
            changed = true;
        }
        Some(v) if v.as_u64() == Some(STORE_FORMAT) => {}
        other => {
            let found = other.map_or("(none)".to_string(), |v| v.to_string());
            return Err(Error::store(format!(
                "incompatible store version {found} at {place} (this Ocuroot reads version {STORE_FORMAT})"
            )));
        }
    }
    let tags = marker
        .entry("Tags")
        .or_insert_with(|| serde_json::Value::Object(Default::default()));
    if tags.is_null() {
        *tags = serde_json::Value::Object(Default::default());
    }
    let Some(tags) = tags.as_object_mut() else {
        return Err(Error::store(format!(
            "corrupt store marker {place}: \"Tags\" is not an object"
        )));
    };
    if !tags.contains_key(tag) {
        if !tags.is_empty() {
            tracing::warn!(
                store = %place,
                tags = ?tags.keys().collect::<Vec<_>>(),
                tag = %tag,
                "adding a tag to a store that already has others"
            );
        }
        tags.insert(tag.to_string(), serde_json::json!({}));
        changed = true;
    }
    Ok(if changed {
        Some(serde_json::to_vec(&marker)?)
    } else {
        None
    })
}

/// The tags a marker holds (`state`, `intent`), sorted; empty when it is not
/// a readable marker.
pub(crate) fn marker_tags(bytes: &[u8]) -> Vec<String> {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| {
            v.get("Tags")?
                .as_object()
                .map(|t| t.keys().cloned().collect())
        })
        .unwrap_or_default()
}

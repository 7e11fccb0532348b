//! An in-memory [`Store`]: a sorted map under a mutex. For tests and for
//! hosts that persist state themselves.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{Entry, Op, Store, Version, Write, check_batch, validate_key, validate_prefix};
use crate::Result;

/// A [`Store`] held in memory. Versions come from a counter, so every write
/// gives a new version even when the bytes are unchanged.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    map: BTreeMap<String, Entry>,
    last_version: u64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The map is only modified after every check has passed, so a panic
        // while the lock is held cannot leave half a batch behind.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Store for MemoryStore {
    fn get(&self, key: &str) -> Result<Option<Entry>> {
        validate_key(key)?;
        Ok(self.lock().map.get(key).cloned())
    }

    fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Entry>>> {
        for k in keys {
            validate_key(k)?;
        }
        let inner = self.lock();
        Ok(keys.iter().map(|k| inner.map.get(*k).cloned()).collect())
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        validate_prefix(prefix)?;
        let inner = self.lock();
        Ok(inner
            .map
            .range(prefix.to_string()..)
            .map(|(k, _)| k)
            .take_while(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }

    fn commit(&self, ops: &[Op]) -> Result<()> {
        let mut inner = self.lock();
        let mut next = inner.last_version;
        let writes = check_batch(
            ops,
            |k| Ok(inner.map.get(k).map(|e| e.version)),
            |_| {
                next += 1;
                Version(next)
            },
        )?;
        inner.last_version = next;
        for write in writes {
            match write {
                Write::Put {
                    key,
                    value,
                    version,
                } => {
                    let value = value.to_vec();
                    inner.map.insert(key.to_string(), Entry { value, version });
                }
                Write::Delete { key } => {
                    inner.map.remove(key);
                }
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        "memory".to_string()
    }
}

//! A custom [`Store`]: every key in a `BTreeMap` behind a `Mutex`.
//!
//! A real one would be a database table `(key PRIMARY KEY, value, version)`:
//! `get` and `list` are `SELECT`s, and `commit` is one transaction, in which
//! `check_batch` reads the versions it needs (`SELECT version ... FOR
//! UPDATE`) and the writes are `INSERT`s and `DELETE`s; returning the
//! conflict rolls it back. Here the mutex is the transaction.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use ocuroot_core::Result;
use ocuroot_core::store::{
    Entry, Op, Store, Version, Write, check_batch, validate_key, validate_prefix,
};

/// State and intent in memory, keyed by ref.
#[derive(Debug, Default)]
pub struct MapStore {
    map: Mutex<BTreeMap<String, Entry>>,
}

impl MapStore {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Entry>> {
        // Nothing is written until a whole batch has been checked, so a
        // poisoned map is still consistent.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Store for MapStore {
    fn get(&self, key: &str) -> Result<Option<Entry>> {
        validate_key(key)?;
        Ok(self.lock().get(key).cloned())
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        validate_prefix(prefix)?;
        let map = self.lock();
        let from = map.range(prefix.to_string()..).map(|(key, _)| key);
        Ok(from
            .take_while(|key| key.starts_with(prefix))
            .cloned()
            .collect())
    }

    fn commit(&self, ops: &[Op]) -> Result<()> {
        let mut map = self.lock();
        // Checks every op's expectation against the map as the ops before it
        // leave it: the writes to apply, or the conflict to return.
        // A version is the value's hash (content-addressed, as FsStore's).
        let current = |key: &str| Ok(map.get(key).map(|entry| entry.version));
        let writes = check_batch(ops, current, Version::of_bytes)?;
        for write in writes {
            match write {
                Write::Put {
                    key,
                    value,
                    version,
                } => {
                    let value = value.to_vec();
                    map.insert(key.to_string(), Entry { value, version });
                }
                Write::Delete { key } => {
                    map.remove(key);
                }
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        "map".to_string()
    }
}

#[cfg(test)]
mod tests {
    /// The library's conformance suite, on fresh stores.
    #[test]
    fn keeps_the_store_contract() {
        ocuroot_core::store::conformance::check(super::MapStore::default);
    }
}

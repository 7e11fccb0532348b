//! A key/value map behind the C store callbacks, for tests that need a
//! store of their own (or two: state and intent apart).

use std::collections::BTreeMap;
use std::ffi::{CStr, c_char, c_void};
use std::ptr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use ocuroot::*;

use super::c;

/// Keys, values and versions; a batch is checked against it as it stands
/// after the batch's earlier operations, then applied whole.
#[derive(Default)]
pub struct MapStore {
    entries: Mutex<BTreeMap<String, (Vec<u8>, u64)>>,
    next_version: AtomicU64,
    down: AtomicBool,
}

impl MapStore {
    /// Make every commit fail (`true`), as a store the agent lost, or work
    /// again (`false`). Reads still work.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Every key, sorted.
    pub fn keys(&self) -> Vec<String> {
        self.entries.lock().unwrap().keys().cloned().collect()
    }

    /// The value at `key` as JSON, if any.
    pub fn json(&self, key: &str) -> Option<serde_json::Value> {
        let entries = self.entries.lock().unwrap();
        entries
            .get(key)
            .map(|(v, _)| serde_json::from_slice(v).unwrap())
    }

    /// Callbacks over this map; it must outlive every workspace using them.
    pub fn callbacks(&self) -> ocuroot_store_callbacks {
        ocuroot_store_callbacks {
            userdata: self as *const MapStore as *mut c_void,
            get: Some(get),
            list: Some(list),
            commit: Some(commit),
            finalize: None,
        }
    }
}

fn map(ud: *mut c_void) -> &'static MapStore {
    // SAFETY: the tests pass a `MapStore` that outlives the workspace.
    unsafe { &*(ud as *const MapStore) }
}

fn text(s: *const c_char) -> String {
    // SAFETY: a NUL-terminated string from the library.
    unsafe { CStr::from_ptr(s) }.to_str().unwrap().to_string()
}

unsafe extern "C" fn get(
    ud: *mut c_void,
    key: *const c_char,
    reply: *mut ocuroot_store_reply,
) -> u32 {
    if let Some((value, version)) = map(ud).entries.lock().unwrap().get(&text(key)) {
        // SAFETY: the reply the library passes; `value.len()` bytes.
        unsafe {
            ocuroot_store_reply_set_value(
                reply,
                value.as_ptr(),
                value.len(),
                *version,
                ptr::null_mut(),
            )
        };
    }
    ocuroot_result::Ok as u32
}

unsafe extern "C" fn list(
    ud: *mut c_void,
    prefix: *const c_char,
    reply: *mut ocuroot_store_reply,
) -> u32 {
    let prefix = text(prefix);
    for key in map(ud).entries.lock().unwrap().keys() {
        if key.starts_with(&prefix) {
            let key = c(key);
            // SAFETY: the reply the library passes.
            unsafe { ocuroot_store_reply_add_key(reply, key.as_ptr(), ptr::null_mut()) };
        }
    }
    ocuroot_result::Ok as u32
}

unsafe extern "C" fn commit(
    ud: *mut c_void,
    ops: *const ocuroot_store_op,
    len: usize,
    reply: *mut ocuroot_store_reply,
) -> u32 {
    let store = map(ud);
    if store.down.load(Ordering::SeqCst) {
        let msg = c("the store is unreachable");
        // SAFETY: the reply the library passes.
        unsafe { ocuroot_store_reply_set_error(reply, msg.as_ptr(), ptr::null_mut()) };
        return ocuroot_result::Store as u32;
    }
    let ops = if len == 0 {
        &[][..]
    } else {
        // SAFETY: `len` ops from the library.
        unsafe { std::slice::from_raw_parts(ops, len) }
    };
    let mut entries = store.entries.lock().unwrap();
    // The version each key has once the batch's earlier operations apply.
    let mut view: BTreeMap<String, Option<u64>> = BTreeMap::new();
    for op in ops {
        let key = text(op.key);
        let current = view
            .get(&key)
            .copied()
            .unwrap_or_else(|| entries.get(&key).map(|(_, v)| *v));
        let ok = match op.expect {
            OCUROOT_EXPECT_ANY => true,
            OCUROOT_EXPECT_ABSENT => current.is_none(),
            OCUROOT_EXPECT_VERSION => current == Some(op.version),
            _ => false,
        };
        if !ok {
            let msg = c(&format!("{key} changed meanwhile"));
            // SAFETY: the reply the library passes.
            unsafe { ocuroot_store_reply_set_error(reply, msg.as_ptr(), ptr::null_mut()) };
            return ocuroot_result::Conflict as u32;
        }
        match op.kind {
            OCUROOT_OP_PUT => view.insert(key, Some(u64::MAX)),
            OCUROOT_OP_DELETE => view.insert(key, None),
            _ => None,
        };
    }
    for op in ops {
        let key = text(op.key);
        match op.kind {
            OCUROOT_OP_PUT => {
                let version = store.next_version.fetch_add(1, Ordering::SeqCst) + 1;
                let value = if op.value_len == 0 {
                    Vec::new()
                } else {
                    // SAFETY: `value_len` bytes from the library.
                    unsafe { std::slice::from_raw_parts(op.value, op.value_len) }.to_vec()
                };
                entries.insert(key, (value, version));
            }
            OCUROOT_OP_DELETE => {
                entries.remove(&key);
            }
            _ => {}
        }
    }
    ocuroot_result::Ok as u32
}

//! Store tests: the `Store` conformance suite run against every backend, the
//! directory store's layout, journal and security, the ref layer, and real
//! multi-thread, multi-process concurrency.

#[path = "store/common.rs"]
mod common;
#[path = "store/concurrency.rs"]
mod concurrency;
#[path = "store/conformance.rs"]
mod conformance;
#[path = "store/fs.rs"]
mod fs;
#[path = "store/refstore.rs"]
mod refstore;
#[path = "store/security.rs"]
mod security;

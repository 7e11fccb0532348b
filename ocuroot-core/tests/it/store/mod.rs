//! Store tests: the `Store` conformance suite run against every backend, the
//! directory store's layout, write-ahead log and security, the ref layer, and real
//! multi-thread, multi-process concurrency.

pub(crate) mod common;
mod concurrency;
mod conformance;
mod fs;
mod fs_damage;
mod git;
mod refstore;
mod security;
mod symlinks;

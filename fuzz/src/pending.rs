//! PENDING: filters for problems the fuzzers found that are not fixed yet.
//!
//! Until a problem is fixed, the fuzzers would otherwise rediscover it all
//! the time (libFuzzer stops at the first crash). Each filter here skips
//! the inputs of one problem; its reproducer in `fuzz/regressions/` is
//! skipped by the same filter (the replay counts it as skipped). Once the
//! fix is in, delete the filter (and this module when it is empty): the
//! replay then checks the reproducer for real.

/// The filters are on unless `$OCUROOT_FUZZ_NO_PENDING` is set (to check a
/// fix before deleting its filter: `OCUROOT_FUZZ_NO_PENDING=1
/// scripts/fuzz.sh replay`).
fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("OCUROOT_FUZZ_NO_PENDING").is_none())
}

/// Whether to skip an `fslog` input whose log header (valid, checksum
/// and all) gives an end more than 64 KiB past the end of the records: the
/// store allocates a buffer of that size before reading (`Wal::scan`,
/// ocuroot-core/src/store/fs/wal.rs), so a huge end aborts the process
/// (reproducer: `regressions/fslog/header-end-past-file-huge-alloc`).
pub fn skip_fslog_end(end: u64, natural: u64) -> bool {
    enabled() && end > natural.saturating_add(64 << 10)
}

/// Whether to skip the `KeyedRef::join` check of the `refs` target for a
/// path with a segment longer than `MAX_SEGMENT_BYTES`, or a joined key
/// longer than `MAX_KEY_BYTES`: the fast path of `KeyedRef::join`
/// (ocuroot-core/src/refs/mod.rs) checks the characters of the segments but
/// not their length, so it gives such a ref a key that `validate_key`
/// refuses (reproducer: `regressions/refs/join-segment-over-200-bytes`).
pub fn skip_join(key: &str, path: &str) -> bool {
    use ocuroot_core::refs::{MAX_KEY_BYTES, MAX_SEGMENT_BYTES};
    enabled()
        && (path.split('/').any(|s| s.len() > MAX_SEGMENT_BYTES)
            || key.len() + 1 + path.len() > MAX_KEY_BYTES)
}

/// Whether to skip a `glob` input whose pattern has a positive class naming
/// `/` by itself (`[/]`, `[ab/]`): `push_class`
/// (ocuroot-core/src/refs/glob.rs) writes the class's single characters
/// as literal alternatives (`{a,b,/}`), so such a class matches `/`,
/// although the documented rule is that classes never match `/`
/// (reproducer: `regressions/glob/positive-class-with-slash-matches-slash`).
pub fn skip_glob_class_slash(class_names_slash: bool) -> bool {
    enabled() && class_names_slash
}

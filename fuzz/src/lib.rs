//! The checks behind the fuzz targets, as plain functions: the libFuzzer
//! targets in `fuzz_targets/` call them, and so does the `replay` binary,
//! which runs every corpus and reproducer on stable without libFuzzer.
//!
//! Each `check_*` function takes the fuzzer's bytes, panics when a property
//! does not hold, and returns `false` when it skipped the input (so the
//! fuzzer does not keep it), `true` otherwise.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

mod fslog;
mod glob;
mod package;
pub mod pending;
mod refs;

pub use fslog::{FslogMode, RECORD_SEPARATOR, check_fslog, fslog_input};
pub use glob::check_glob;
pub use package::check_package;
pub use refs::check_ref;

/// A target's check: panics when a property does not hold; `false` when it
/// skipped the input.
pub type Check = fn(&[u8]) -> bool;

/// The fuzz targets, by name: the names of `fuzz_targets/*.rs`, of
/// `corpus/<name>/` and of `regressions/<name>/`.
pub const TARGETS: [(&str, Check); 4] = [
    ("refs", check_ref),
    ("glob", check_glob),
    ("package", check_package),
    ("fslog", check_fslog),
];

/// The check function of a target.
pub fn target(name: &str) -> Option<Check> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// A directory for this process's scratch files (package files, stores),
/// under `$TMPDIR` (`scripts/fuzz.sh` points it at `/dev/shm` when there is
/// one, and removes it afterwards).
pub(crate) fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("ocuroot-fuzz-")
            .tempdir()
            .expect("create a scratch directory");
        // Kept for the life of the process: libFuzzer exits without
        // running destructors anyway.
        dir.keep()
    })
}

/// Remove the scratch directory (the replay binary does at the end).
pub fn remove_scratch() {
    let _ = std::fs::remove_dir_all(scratch());
}

/// Assert that `e` is not a bug by its own account.
#[track_caller]
pub(crate) fn assert_not_internal(e: &ocuroot_core::Error, input: &dyn std::fmt::Debug) {
    assert_ne!(
        e.kind(),
        ocuroot_core::ErrorKind::Internal,
        "internal error (an invariant did not hold) for {input:?}: {e}"
    );
}

//! Replay fuzz inputs through the check functions, without libFuzzer (so
//! on stable): what CI runs, through `scripts/fuzz.sh replay`.
//!
//! ```text
//! replay                      every file of corpus/<target>/ and regressions/<target>/
//! replay <target> <path>...   the given files (or every file of the given directories)
//! ```
//!
//! A panic in a check fails that input; the others still run. The last line
//! is `replay: N passed, N failed`, and the exit status is 1 if any failed.
//! A crash that is not a panic (a stack overflow) ends the process: the
//! regressions print their names before they run, and `-v` prints every
//! file's, to find it.

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use ocuroot_fuzz::{TARGETS, target};

/// `$OCUROOT_FUZZ_DIR`, else the fuzz crate this was built from.
fn fuzz_dir() -> PathBuf {
    std::env::var_os("OCUROOT_FUZZ_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// The files of `dir` (recursively), sorted; none if it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

struct Tally {
    passed: usize,
    skipped: usize,
    failed: Vec<PathBuf>,
    verbose: bool,
}

impl Tally {
    fn run(&mut self, name: &str, check: ocuroot_fuzz::Check, path: &Path, announce: bool) {
        let data = match std::fs::read(path) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("replay: cannot read {}: {e}", path.display());
                self.failed.push(path.to_path_buf());
                return;
            }
        };
        if announce || self.verbose {
            eprintln!("replay: {name} {}", path.display());
        }
        match panic::catch_unwind(AssertUnwindSafe(|| check(&data))) {
            Ok(true) => self.passed += 1,
            Ok(false) => {
                self.skipped += 1;
                if announce || self.verbose {
                    eprintln!("replay:   skipped (filtered, see fuzz/src/pending.rs)");
                }
            }
            Err(_) => {
                eprintln!("replay: FAILED: {name} {}", path.display());
                self.failed.push(path.to_path_buf());
            }
        }
    }
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let verbose = args.first().is_some_and(|a| a == "-v");
    if verbose {
        args.remove(0);
    }
    let mut tally = Tally {
        passed: 0,
        skipped: 0,
        failed: Vec::new(),
        verbose,
    };
    let started = Instant::now();
    if let Some((name, paths)) = args.split_first() {
        let Some(check) = target(name) else {
            let names: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
            eprintln!("replay: unknown target {name:?}; the targets are {names:?}");
            return ExitCode::from(2);
        };
        if paths.is_empty() {
            eprintln!("usage: replay [-v] [<target> <file or directory>...]");
            return ExitCode::from(2);
        }
        for p in paths {
            let p = Path::new(p);
            let list = if p.is_dir() {
                files(p)
            } else {
                vec![p.to_path_buf()]
            };
            for f in list {
                tally.run(name, check, &f, true);
            }
        }
    } else {
        let dir = fuzz_dir();
        for (name, check) in TARGETS {
            let t = Instant::now();
            let before = tally.passed + tally.skipped + tally.failed.len();
            for f in files(&dir.join("regressions").join(name)) {
                tally.run(name, check, &f, true);
            }
            for f in files(&dir.join("corpus").join(name)) {
                tally.run(name, check, &f, false);
            }
            let n = tally.passed + tally.skipped + tally.failed.len() - before;
            eprintln!("replay: {name}: {n} inputs in {:.1?}", t.elapsed());
        }
    }
    ocuroot_fuzz::remove_scratch();
    for f in &tally.failed {
        eprintln!("replay: failed: {}", f.display());
    }
    eprintln!(
        "replay: {:.1?} in all; skipped: inputs of known problems, see fuzz/src/pending.rs",
        started.elapsed()
    );
    println!(
        "replay: {} passed, {} failed, {} skipped",
        tally.passed,
        tally.failed.len(),
        tally.skipped
    );
    if tally.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

//! The log file of each command, as the original writes it:
//! `$OCUROOT_HOME/logs/<unix nanoseconds>-<arguments>.log` (`OCUROOT_HOME`
//! defaults to `~/.ocuroot`), for a CI job to keep as an artifact. It holds
//! the command line, every diagnostic at `info` and above (`debug` and
//! above with `OCUROOT_DEBUG` set), every run's start, log lines and end,
//! the error a command ended with, and its exit status; every registered
//! secret is masked, as on every other channel.
//!
//! The directory is bounded: after writing a new file, the oldest files
//! beyond the last `OCUROOT_LOG_KEEP` (default 100) and any older than
//! `OCUROOT_LOG_MAX_AGE` (default `14d`) are removed. `OCUROOT_LOG_KEEP=0`
//! writes no file. A directory that cannot be written is said once on
//! stderr and the command goes on.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ocuroot_core::sdk::Secrets;

/// How many files the directory keeps by default.
const DEFAULT_KEEP: usize = 100;
/// How old a file may get by default.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(14 * 24 * 3600);
/// The longest part of a file name the arguments may take.
const MAX_ARGS_IN_NAME: usize = 120;

static FILE: OnceLock<Mutex<File>> = OnceLock::new();

/// Whether `OCUROOT_DEBUG` asks for debug diagnostics (set, and not `0`
/// or `false`).
pub(crate) fn debug() -> bool {
    std::env::var("OCUROOT_DEBUG")
        .is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// Open this command's log file (and tidy the directory); `args` are the
/// command line's arguments after the program name. The path, if a file
/// was opened.
pub(crate) fn open(args: &[String]) -> Option<PathBuf> {
    let keep = match std::env::var("OCUROOT_LOG_KEEP") {
        Ok(text) => match text.parse::<usize>() {
            Ok(n) => n,
            Err(_) => {
                eprintln!(
                    "Warning: OCUROOT_LOG_KEEP={text:?} is not a number of files; keeping {DEFAULT_KEEP}"
                );
                DEFAULT_KEEP
            }
        },
        Err(_) => DEFAULT_KEEP,
    };
    if keep == 0 {
        return None;
    }
    let max_age = match std::env::var("OCUROOT_LOG_MAX_AGE") {
        Ok(text) => humantime::parse_duration(&text).unwrap_or_else(|e| {
            eprintln!("Warning: OCUROOT_LOG_MAX_AGE={text:?}: {e}; keeping files for 14d");
            DEFAULT_MAX_AGE
        }),
        Err(_) => DEFAULT_MAX_AGE,
    };
    let home = match std::env::var_os("OCUROOT_HOME").filter(|h| !h.is_empty()) {
        Some(home) => PathBuf::from(home),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".ocuroot"),
    };
    let dir = home.join("logs");
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let path = dir.join(format!("{nanos}-{}.log", name_of(args)));
    let opened = std::fs::create_dir_all(&dir).and_then(|()| File::create_new(&path));
    let file = match opened {
        Ok(file) => file,
        Err(e) => {
            eprintln!(
                "Warning: cannot write the log file {}: {e}; going on without it",
                path.display()
            );
            return None;
        }
    };
    let _ = FILE.set(Mutex::new(file));
    line(&format!("ocuroot {}", args.join(" ")));
    tidy(&dir, &path, keep, max_age);
    Some(path)
}

/// Append `text` and a newline to the log file, secrets masked (nothing
/// without a file).
pub(crate) fn line(text: &str) {
    if let Some(file) = FILE.get() {
        let masked = Secrets::process().mask(text);
        let mut file = file.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = file.write_all(masked.as_bytes());
        let _ = file.write_all(b"\n");
    }
}

/// A writer of diagnostics into the log file (for `tracing`): one event's
/// text, written masked when dropped.
#[derive(Default)]
pub(crate) struct MaskedFile(Vec<u8>);

impl Write for MaskedFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.0.is_empty() {
            let text = String::from_utf8_lossy(&self.0).into_owned();
            self.0.clear();
            line(text.trim_end_matches('\n'));
        }
        Ok(())
    }
}

impl Drop for MaskedFile {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// The arguments as a file name: joined by `_`, with `/` and anything but
/// letters, digits, `.`, `-`, `_`, `@` and `=` made `_` (as the original
/// turns `/` into `_`), cut to a bounded length.
fn name_of(args: &[String]) -> String {
    let joined = args.join("_");
    let mut name: String = joined
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@' | '=') {
                c
            } else {
                '_'
            }
        })
        .take(MAX_ARGS_IN_NAME)
        .collect();
    if name.is_empty() {
        name.push_str("ocuroot");
    }
    name
}

/// Remove the log files beyond the newest `keep` and those older than
/// `max_age` (never `current`). Files are told by their names: a number of
/// nanoseconds, `-`, and `.log`.
fn tidy(dir: &Path, current: &Path, keep: usize, max_age: Duration) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut logs: Vec<(u128, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let (stamp, rest) = name.split_once('-')?;
            rest.ends_with(".log")
                .then(|| stamp.parse::<u128>().ok())
                .flatten()
                .map(|n| (n, e.path()))
        })
        .collect();
    logs.sort();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let oldest_kept = now.saturating_sub(max_age.as_nanos());
    let surplus = logs.len().saturating_sub(keep);
    for (i, (stamp, path)) in logs.iter().enumerate() {
        if path != current && (i < surplus || *stamp < oldest_kept) {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::name_of;

    #[test]
    fn arguments_make_a_safe_file_name() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            name_of(&args(&["release", "new", "backend/package.ocu.star"])),
            "release_new_backend_package.ocu.star"
        );
        assert_eq!(
            name_of(&args(&["state", "get", "a/../b #x"])),
            "state_get_a_.._b__x"
        );
        assert_eq!(name_of(&[]), "ocuroot");
        assert_eq!(name_of(&args(&[&"x".repeat(500)])).len(), 120);
    }
}

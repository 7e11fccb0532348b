//! A custom [`Host`]: commands run with `std::process::Command`, their
//! output streamed to the engine from two threads. Everything else (files,
//! environment, HTTP, the clock) keeps the local defaults.
//!
//! A real one might run commands in a container or on another machine; it
//! would hand the output to the [`LineSink`] the same way.

use std::process::{Command, Stdio};

use ocuroot_core::host::{Host, LineSink, ShellOutput, ShellRequest, Stream};
use ocuroot_core::{Error, Result};

/// Runs `<shell> -c <command>` as a child process (without the timeouts
/// and process groups of `LocalHost`).
#[derive(Debug, Default)]
pub struct ProcessHost;

impl Host for ProcessHost {
    fn shell(&self, req: &ShellRequest, lines: &LineSink<'_>) -> Result<ShellOutput> {
        let failed = |e: std::io::Error| Error::host(format!("running {:?}: {e}", req.command));
        let mut child = Command::new(&req.shell)
            .arg("-c")
            .arg(&req.command)
            .current_dir(&req.dir)
            .envs(&req.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(failed)?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            unreachable!("both pipes were asked for");
        };
        // Both pipes at once, so neither fills up and stalls the command:
        // stderr on a second thread. Each line reaches the run's log as it
        // is read; the sink is Sync and collects the ShellOutput.
        std::thread::scope(|s| {
            let err = s.spawn(|| lines.read(Stream::Stderr, stderr));
            lines.read(Stream::Stdout, stdout)?;
            err.join().expect("the stderr reader panicked")
        })
        .map_err(failed)?;
        let status = child.wait().map_err(failed)?;
        // A command killed by a signal has no exit code.
        Ok(lines.output(status.code().unwrap_or(-1)))
    }
}

//! A [`Host`] whose shell is a Python callable.

use std::sync::Arc;

use ocuroot_core::host::{Host, LineSink, ShellOutput, ShellRequest, Stream};
use ocuroot_core::{Error, Result};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString, PyTuple};

use crate::convert::{describe_py_err, type_name};

/// Runs `host.shell(...)` commands through a Python callable
/// `shell(command, shell, dir, env)`; everything else (environment, files,
/// HTTP, the clock) is the local host's.
///
/// The callable returns an object with `exit_code`, `stdout` and `stderr`
/// attributes (`ocuroot.ShellOutput`) or a tuple `(exit_code, stdout,
/// stderr)`; the output may be `str` or UTF-8 `bytes`. Once it returns, each
/// line of stdout and then of stderr goes to the run's log. An exception it
/// raises, or a result of another shape, is a host error: the command, and
/// so the run, fails with that message.
pub struct PyShell {
    callable: Arc<Py<PyAny>>,
}

impl PyShell {
    /// Wrap a Python callable (shared with whoever else must see the
    /// reference, such as the garbage collector's traversal).
    pub fn new(callable: Arc<Py<PyAny>>) -> PyShell {
        PyShell { callable }
    }

    fn call(&self, req: &ShellRequest) -> Result<(i32, String, String)> {
        // `components` drops `.` segments (`<dir>/.` is `<dir>`); `..` stays,
        // since resolving it lexically could be wrong through a symlink.
        let dir: std::path::PathBuf = req.dir.components().collect();
        let dir = dir.to_string_lossy();
        Python::attach(|py| {
            let env = PyDict::new(py);
            for (k, v) in &req.env {
                env.set_item(k, v).map_err(|e| callback_error(py, &e))?;
            }
            let result = self
                .callable
                .bind(py)
                .call1((req.command.as_str(), req.shell.as_str(), dir.as_ref(), env))
                .map_err(|e| callback_error(py, &e))?;
            shell_result(&result).map_err(|problem| {
                Error::host(format!(
                    "the shell callback returned {problem}; expected an ocuroot.ShellOutput \
                     or a tuple (exit_code: int, stdout: str, stderr: str)"
                ))
            })
        })
    }
}

impl Host for PyShell {
    fn shell(&self, req: &ShellRequest, lines: &LineSink<'_>) -> Result<ShellOutput> {
        // The callable runs attached to the interpreter; the lines go to the
        // engine afterwards, detached, so no engine code runs with the GIL.
        let (exit_code, stdout, stderr) = self.call(req)?;
        for line in stdout.lines() {
            lines.line(Stream::Stdout, line);
        }
        for line in stderr.lines() {
            lines.line(Stream::Stderr, line);
        }
        let mut combined_output = stdout.clone();
        if !combined_output.is_empty() && !combined_output.ends_with('\n') && !stderr.is_empty() {
            combined_output.push('\n');
        }
        combined_output.push_str(&stderr);
        Ok(ShellOutput {
            exit_code,
            stdout,
            stderr,
            combined_output,
        })
    }
}

fn callback_error(py: Python<'_>, err: &PyErr) -> Error {
    Error::host(format!(
        "the shell callback raised {}",
        describe_py_err(py, err)
    ))
}

/// `(exit_code, stdout, stderr)` from what the callable returned, or a
/// description of what was wrong with it.
fn shell_result(result: &Bound<'_, PyAny>) -> std::result::Result<(i32, String, String), String> {
    let (code, stdout, stderr) = if let Ok(tuple) = result.cast::<PyTuple>() {
        if tuple.len() != 3 {
            return Err(format!("a tuple of {} items", tuple.len()));
        }
        let item = |i| tuple.get_item(i).map_err(|e| e.to_string());
        (item(0)?, item(1)?, item(2)?)
    } else {
        let attr = |name: &str| {
            result
                .getattr(name)
                .map_err(|_| format!("{} (without `{name}`)", type_name(result)))
        };
        (attr("exit_code")?, attr("stdout")?, attr("stderr")?)
    };
    let exit_code = if code.is_instance_of::<pyo3::types::PyBool>() {
        None
    } else {
        code.extract::<i32>().ok()
    };
    let exit_code =
        exit_code.ok_or_else(|| format!("an exit code of type {}", type_name(&code)))?;
    Ok((
        exit_code,
        text(&stdout, "stdout")?,
        text(&stderr, "stderr")?,
    ))
}

/// Command output given as `str`, UTF-8 `bytes` or `None` (nothing).
fn text(value: &Bound<'_, PyAny>, what: &str) -> std::result::Result<String, String> {
    if value.is_none() {
        Ok(String::new())
    } else if let Ok(s) = value.cast::<PyString>() {
        s.to_cow()
            .map(|s| s.into_owned())
            .map_err(|e| format!("a {what} that is not valid text ({e})"))
    } else if let Ok(b) = value.cast::<PyBytes>() {
        Ok(String::from_utf8_lossy(b.as_bytes()).into_owned())
    } else {
        Err(format!("a {what} of type {}", type_name(value)))
    }
}

//! Core errors as Python exceptions, and Python exceptions as core errors.
//!
//! The exception classes (`ocuroot.OcurootError` and one subclass per
//! [`ErrorKind`](ocuroot_core::ErrorKind)) are defined in the pure-Python
//! module `ocuroot._errors`, which also holds the table from kind to class:
//! [`to_py_err`] hands it the kind name
//! ([`ErrorKind::as_str`](ocuroot_core::ErrorKind::as_str)), the message and
//! the location, and raises what it builds. Nothing else converts errors.

use pyo3::prelude::*;
use pyo3::types::PyDict;

/// The pure-Python module holding the exception tree.
const ERRORS_MODULE: &str = "ocuroot._errors";

/// The Python exception for a core error: the `ocuroot.OcurootError`
/// subclass of its kind, with `kind`, `message`, `file`, `line`, `column`
/// and `stack` set.
///
/// Should building it fail (the package is broken), the exception raised
/// while building it is returned instead: a Python error either way.
pub fn to_py_err(py: Python<'_>, e: &ocuroot_core::Error) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let from_native = py.import(ERRORS_MODULE)?.getattr("_from_native")?;
        let kwargs = PyDict::new(py);
        let location = e.location();
        kwargs.set_item("file", location.map(|l| l.file.as_str()))?;
        kwargs.set_item("line", location.map(|l| l.line))?;
        kwargs.set_item("column", location.map(|l| l.column))?;
        kwargs.set_item("stack", e.stack())?;
        let exc = from_native.call((e.kind().as_str(), e.to_string()), Some(&kwargs))?;
        Ok(PyErr::from_value(exc))
    };
    build().unwrap_or_else(|err| err)
}

/// Whether a Python exception is an `ocuroot.ConflictError` (what a store
/// raises when an expectation of a batch fails).
pub fn is_conflict(py: Python<'_>, err: &PyErr) -> bool {
    py.import(ERRORS_MODULE)
        .and_then(|m| m.getattr("ConflictError"))
        .map(|class| err.is_instance(py, &class))
        .unwrap_or(false)
}

//! # ocuroot-py
//!
//! The native half of the `ocuroot` Python package: the private extension
//! module `ocuroot._ocuroot`, built with [maturin](https://www.maturin.rs)
//! against the stable ABI (abi3, Python 3.9 and later). The pure-Python
//! package around it (`python/ocuroot`) turns what this module returns into
//! typed objects and holds the exception tree; users import `ocuroot`, never
//! this module.
//!
//! What lives here:
//!
//! - [`Workspace`](workspace::Workspace): [`ocuroot_core::Workspace`] for
//!   Python. Every method releases the GIL while the engine works and
//!   returns plain Python values (the JSON forms of the core's results).
//! - [`PyShell`](host::PyShell): a [`Host`](ocuroot_core::host::Host) whose
//!   `shell` is a Python callable.
//! - [`PyStore`](store::PyStore): a [`Store`](ocuroot_core::store::Store)
//!   backed by a Python object with `get`, `keys` and `commit`, and
//!   [`Op`](store::Op), the operations handed to its `commit`.
//! - [`to_py_err`](errors::to_py_err): the one place a core error becomes a
//!   Python exception (`ocuroot.OcurootError` and its subclasses).
//!
//! Callbacks run on the thread that called the workspace method and on the
//! engine's worker threads, each re-attaching to the interpreter only for
//! the call itself. A Python exception raised in a callback never unwinds
//! into the engine: it becomes a core error (a failed run for the shell, a
//! store error or conflict for the store).

pub mod convert;
pub mod errors;
pub mod host;
pub mod store;
pub mod workspace;

use pyo3::prelude::*;

/// The `ocuroot._ocuroot` extension module.
#[pymodule]
#[pyo3(name = "_ocuroot")]
fn ocuroot_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<workspace::Workspace>()?;
    m.add_class::<store::Op>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

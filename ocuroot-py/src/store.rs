//! A [`Store`] backed by a Python object, and the [`Op`] class its
//! `commit` receives.
//!
//! The protocol (also `ocuroot.Store` in the Python package):
//!
//! - `get(key: str) -> tuple[bytes, int] | None`: the value and its version
//!   (an opaque integer in `0..2**64` that changes whenever the value does),
//!   or `None` when absent.
//! - `keys(prefix: str) -> list[str]`: the keys starting with `prefix` (a
//!   plain string prefix), sorted. A store with `list` instead (the
//!   method's name until 0.2, which shadows the builtin inside implementing
//!   classes) still works, with a `DeprecationWarning`.
//! - `commit(ops: list[Op]) -> None`: apply every op or none. Each op's
//!   `expect` is checked in order against the store as left by the earlier
//!   ops of the batch; when one fails, nothing is written and the store
//!   raises `ocuroot.ConflictError`, which becomes a
//!   [`Conflict`](ocuroot_core::ErrorKind::Conflict) so the engine's
//!   optimistic transactions retry.
//!
//! Any other exception, or a result of the wrong shape, is a
//! [`Store`](ocuroot_core::ErrorKind::Store) error carrying the Python
//! message. Keys are validated here before the Python object sees them.

use std::sync::Arc;

use ocuroot_core::store::{self as core, Entry, Expect, Store, Version};
use ocuroot_core::{Error, Result};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyInt, PyList, PyString, PyTuple};

use crate::convert::{describe_py_err, type_name};
use crate::errors::is_conflict;

/// A store whose `get`, `keys` and `commit` are methods of a Python object.
pub struct PyStore {
    object: Arc<Py<PyAny>>,
    description: String,
    /// `keys`, or the deprecated `list`.
    keys_method: &'static str,
}

impl PyStore {
    /// Wrap a Python object implementing the store protocol (shared with
    /// whoever else must see the reference, such as the garbage collector's
    /// traversal). Fails with a `TypeError` if it lacks one of the three
    /// methods.
    pub fn new(py: Python<'_>, object: Arc<Py<PyAny>>) -> PyResult<PyStore> {
        let bound = object.bind(py);
        let callable = |method: &str| {
            bound
                .getattr(method)
                .map(|m| m.is_callable())
                .unwrap_or(false)
        };
        let keys_method = if callable("keys") {
            "keys"
        } else if callable("list") {
            let message = format!(
                "{}: the store method `list` is now `keys` (`list` shadows the builtin in the \
                 class); rename it, `list` will stop working in a later version",
                type_name(bound)
            );
            let message = std::ffi::CString::new(message).unwrap_or_default();
            let category = py.get_type::<pyo3::exceptions::PyDeprecationWarning>();
            PyErr::warn(py, &category, &message, 2)?;
            "list"
        } else {
            "keys"
        };
        for method in ["get", keys_method, "commit"] {
            if !callable(method) {
                return Err(PyTypeError::new_err(format!(
                    "store must have get, keys and commit methods; {} has no callable `{method}`",
                    type_name(bound)
                )));
            }
        }
        let description = format!("python:{}", type_name(bound));
        Ok(PyStore {
            object,
            description,
            keys_method,
        })
    }

    /// Call `method` with `args`, turning an exception into a core error,
    /// then read the result with `read` (which describes a wrong shape).
    fn call<T>(
        &self,
        method: &str,
        what: &str,
        args: impl for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, PyTuple>>,
        read: impl FnOnce(&Bound<'_, PyAny>) -> std::result::Result<T, String>,
    ) -> Result<T> {
        Python::attach(|py| {
            let args = args(py).map_err(|e| {
                Error::store(format!("store.{method}: {}", describe_py_err(py, &e)))
            })?;
            let result = match self.object.bind(py).call_method1(method, args) {
                Ok(result) => result,
                Err(e) if is_conflict(py, &e) => {
                    let message = e.value(py).str().map(|s| s.to_string());
                    return Err(Error::conflict(message.unwrap_or_default()));
                }
                Err(e) => {
                    return Err(Error::store(format!(
                        "store.{method}({what}) raised {}",
                        describe_py_err(py, &e)
                    )));
                }
            };
            read(&result).map_err(|problem| {
                Error::store(format!("store.{method}({what}) returned {problem}"))
            })
        })
    }
}

impl Store for PyStore {
    fn get(&self, key: &str) -> Result<Option<Entry>> {
        core::validate_key(key)?;
        self.call(
            "get",
            &format!("{key:?}"),
            |py| PyTuple::new(py, [key]),
            |result| {
                if result.is_none() {
                    return Ok(None);
                }
                let shape = || {
                    format!(
                        "{}; expected None or a tuple (value: bytes, version: int)",
                        type_name(result)
                    )
                };
                let tuple = result.cast::<PyTuple>().map_err(|_| shape())?;
                if tuple.len() != 2 {
                    return Err(shape());
                }
                let value = tuple.get_item(0).map_err(|e| e.to_string())?;
                let version = tuple.get_item(1).map_err(|e| e.to_string())?;
                Ok(Some(Entry {
                    value: bytes_of(&value).ok_or_else(|| {
                        format!("a value of type {}; expected bytes", type_name(&value))
                    })?,
                    version: Version(version_of(&version).ok_or_else(|| {
                        format!(
                            "a version of type {} ({}); expected an int in 0..2**64",
                            type_name(&version),
                            version.repr().map(|r| r.to_string()).unwrap_or_default()
                        )
                    })?),
                }))
            },
        )
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        core::validate_prefix(prefix)?;
        let mut keys = self.call(
            self.keys_method,
            &format!("{prefix:?}"),
            |py| PyTuple::new(py, [prefix]),
            |result| {
                if result.is_instance_of::<PyString>() {
                    return Err("a str; expected a list of keys".to_string());
                }
                let mut keys = Vec::new();
                let items = result
                    .try_iter()
                    .map_err(|_| format!("{}; expected a list of keys", type_name(result)))?;
                for item in items {
                    let item = item.map_err(|e| e.to_string())?;
                    let key = item
                        .extract::<String>()
                        .map_err(|_| format!("a key of type {}; expected str", type_name(&item)))?;
                    keys.push(key);
                }
                Ok(keys)
            },
        )?;
        for key in &keys {
            if !key.starts_with(prefix) {
                return Err(Error::store(format!(
                    "store.{}({prefix:?}) returned {key:?}, which does not start with the prefix",
                    self.keys_method
                )));
            }
            core::validate_key(key)
                .map_err(|e| e.context(format!("store.{}({prefix:?})", self.keys_method)))?;
        }
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    fn commit(&self, ops: &[core::Op]) -> Result<()> {
        for op in ops {
            core::validate_key(op.key())?;
        }
        self.call(
            "commit",
            &format!("{} ops", ops.len()),
            |py| {
                let ops = ops
                    .iter()
                    .map(|op| Py::new(py, Op::from(op)))
                    .collect::<PyResult<Vec<_>>>()?;
                PyTuple::new(py, [PyList::new(py, ops)?])
            },
            |_| Ok(()),
        )
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}

/// The bytes of a `bytes` or `bytearray`.
fn bytes_of(value: &Bound<'_, PyAny>) -> Option<Vec<u8>> {
    if let Ok(b) = value.cast::<PyBytes>() {
        Some(b.as_bytes().to_vec())
    } else if let Ok(b) = value.cast::<PyByteArray>() {
        Some(b.to_vec())
    } else {
        None
    }
}

/// A version: an `int` (not a `bool`) that fits in a `u64`.
fn version_of(value: &Bound<'_, PyAny>) -> Option<u64> {
    if value.is_instance_of::<PyInt>() && !value.is_instance_of::<pyo3::types::PyBool>() {
        value.extract::<u64>().ok()
    } else {
        None
    }
}

/// What an [`Op`] expects of its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum OpExpect {
    Any,
    Absent,
    Version(u64),
}

impl From<Expect> for OpExpect {
    fn from(e: Expect) -> Self {
        match e {
            Expect::Any => OpExpect::Any,
            Expect::Absent => OpExpect::Absent,
            Expect::Version(v) => OpExpect::Version(v.0),
        }
    }
}

/// The kind of an [`Op`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum OpKind {
    Put,
    Delete,
    Check,
}

impl OpKind {
    fn as_str(self) -> &'static str {
        match self {
            OpKind::Put => "put",
            OpKind::Delete => "delete",
            OpKind::Check => "check",
        }
    }
}

/// One operation of a batch given to a store's `commit` (`ocuroot.Op`).
///
/// `kind` is `"put"`, `"delete"` or `"check"`; `value` is the bytes to
/// write (puts only, `None` otherwise); `expect` is `None` (anything),
/// `"absent"` (the key must not exist) or an `int` (the key must exist with
/// that version).
#[pyclass(frozen, eq, hash, module = "ocuroot._ocuroot")]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Op {
    kind: OpKind,
    key: String,
    value: Option<Vec<u8>>,
    expect: OpExpect,
}

impl From<&core::Op> for Op {
    fn from(op: &core::Op) -> Self {
        let (kind, value) = match op {
            core::Op::Put { value, .. } => (OpKind::Put, Some(value.clone())),
            core::Op::Delete { .. } => (OpKind::Delete, None),
            core::Op::Check { .. } => (OpKind::Check, None),
        };
        Op {
            kind,
            key: op.key().to_string(),
            value,
            expect: op.expect().into(),
        }
    }
}

#[pymethods]
impl Op {
    /// `Op(kind, key, *, value=None, expect=None)`, for testing stores.
    #[new]
    #[pyo3(signature = (kind, key, *, value = None, expect = None))]
    fn py_new(
        kind: &str,
        key: String,
        value: Option<&Bound<'_, PyAny>>,
        expect: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let kind = match kind {
            "put" => OpKind::Put,
            "delete" => OpKind::Delete,
            "check" => OpKind::Check,
            other => {
                return Err(PyValueError::new_err(format!(
                    "kind must be \"put\", \"delete\" or \"check\", not {other:?}"
                )));
            }
        };
        let value = match value {
            Some(v) if !v.is_none() => Some(
                bytes_of(v).ok_or_else(|| PyTypeError::new_err("value must be bytes or None"))?,
            ),
            _ => None,
        };
        if (kind == OpKind::Put) != value.is_some() {
            return Err(PyValueError::new_err(
                "a put needs a value, and only a put may have one",
            ));
        }
        let expect = match expect {
            None => OpExpect::Any,
            Some(e) if e.is_none() => OpExpect::Any,
            Some(e) if e.extract::<String>().is_ok_and(|s| s == "absent") => OpExpect::Absent,
            Some(e) => OpExpect::Version(version_of(e).ok_or_else(|| {
                PyTypeError::new_err("expect must be None, \"absent\" or an int in 0..2**64")
            })?),
        };
        Ok(Op {
            kind,
            key,
            value,
            expect,
        })
    }

    /// `"put"`, `"delete"` or `"check"`.
    #[getter]
    fn kind(&self) -> &'static str {
        self.kind.as_str()
    }

    /// The key.
    #[getter]
    fn key(&self) -> &str {
        &self.key
    }

    /// The bytes to write (puts), else `None`.
    #[getter]
    fn value<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.value.as_deref().map(|v| PyBytes::new(py, v))
    }

    /// `None` (anything), `"absent"`, or the version the key must have.
    #[getter]
    fn expect<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(match self.expect {
            OpExpect::Any => py.None().into_bound(py),
            OpExpect::Absent => PyString::new(py, "absent").into_any(),
            OpExpect::Version(v) => v.into_pyobject(py)?.into_any(),
        })
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let value = match &self.value {
            Some(v) => PyBytes::new(py, v).repr()?.to_string(),
            None => "None".to_string(),
        };
        let expect = self.expect(py)?.repr()?.to_string();
        let key = PyString::new(py, &self.key).repr()?.to_string();
        Ok(format!(
            "Op(kind='{}', key={key}, value={value}, expect={expect})",
            self.kind.as_str()
        ))
    }
}

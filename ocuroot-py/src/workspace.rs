//! [`ocuroot_core::Workspace`] as the Python class
//! `ocuroot._ocuroot.Workspace`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ocuroot_core::model::{Event, EventSink};
use ocuroot_core::store::Store;
use ocuroot_core::workspace::{MAX_RUN_LEASE, MIN_RUN_LEASE};
use pyo3::PyTraverseError;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};

use crate::convert::{json_to_py, to_py};
use crate::errors::to_py_err;
use crate::host::PyShell;
use crate::store::PyStore;

/// An opened repository: the native side of `ocuroot.Workspace`.
///
/// Every method releases the GIL while the engine works and returns plain
/// Python values: the JSON forms of the core's results (`dict`, `list`,
/// `str`, numbers, `None`). Errors are raised as `ocuroot.OcurootError`
/// subclasses.
#[pyclass(frozen, module = "ocuroot._ocuroot")]
pub struct Workspace {
    inner: ocuroot_core::Workspace,
    /// The Python objects the engine's seams hold (shell, store, event
    /// callback), each one reference shared through an `Arc` with the seam
    /// that uses it, so the garbage collector's traversal accounts for every
    /// reference held: a callback referring back to its workspace is a
    /// cycle Python can collect.
    callbacks: Vec<Arc<Py<PyAny>>>,
}

/// Run `f` with the GIL released and raise its error as an `OcurootError`.
fn detached<T: Send>(
    py: Python<'_>,
    f: impl FnOnce() -> ocuroot_core::Result<T> + Send,
) -> PyResult<T> {
    py.detach(f).map_err(|e| to_py_err(py, &e))
}

/// The `str` globs of a `*globs` argument.
fn str_globs(what: &str, globs: &Bound<'_, PyTuple>) -> PyResult<Vec<String>> {
    globs
        .iter()
        .map(|g| {
            g.cast::<PyString>()
                .map_err(|_| PyTypeError::new_err(format!("{what} takes str globs")))
                .map(|s| s.to_string())
        })
        .collect()
}

/// An event sink calling a Python callable with each event's JSON form (a
/// `dict` tagged by `"event"`). The callable cannot fail the release: what
/// it raises goes to `sys.unraisablehook`.
fn event_sink(callable: Arc<Py<PyAny>>) -> EventSink {
    Arc::new(move |event: &Event| {
        let json = serde_json::to_value(event);
        Python::attach(|py| {
            let callable = callable.bind(py);
            let delivered = json
                .map_err(|e| PyValueError::new_err(e.to_string()))
                .and_then(|json| json_to_py(py, &json))
                .and_then(|value| callable.call1((value,)));
            if let Err(err) = delivered {
                err.write_unraisable(py, Some(callable));
            }
        })
    })
}

fn require_callable(what: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
    if value.is_callable() {
        Ok(())
    } else {
        Err(PyTypeError::new_err(format!(
            "{what} must be callable, not {}",
            crate::convert::type_name(value)
        )))
    }
}

#[pymethods]
impl Workspace {
    /// Open the repository containing `path`: discover its root, evaluate
    /// `repo.ocu.star` and open the stores.
    #[new]
    #[pyo3(signature = (
        path, *, shell = None, store = None, intent_store = None, parallel = None,
        max_attempts = None, run_lease = None, events = None, limit = None
    ))]
    // One parameter per keyword argument of `ocuroot.Workspace(...)`.
    #[allow(clippy::too_many_arguments)]
    fn py_new(
        py: Python<'_>,
        path: PathBuf,
        shell: Option<&Bound<'_, PyAny>>,
        store: Option<&Bound<'_, PyAny>>,
        intent_store: Option<&Bound<'_, PyAny>>,
        parallel: Option<i64>,
        max_attempts: Option<i64>,
        run_lease: Option<f64>,
        events: Option<&Bound<'_, PyAny>>,
        limit: Option<String>,
    ) -> PyResult<Self> {
        let mut builder = ocuroot_core::Workspace::builder(path);
        if let Some(limit) = limit {
            builder = builder.limit(limit);
        }
        let mut callbacks = Vec::new();
        if let Some(shell) = shell.filter(|s| !s.is_none()) {
            require_callable("shell", shell)?;
            let shell = Arc::new(shell.clone().unbind());
            callbacks.push(shell.clone());
            builder = builder.host(Arc::new(PyShell::new(shell)));
        }
        let mut py_store = |store: &Bound<'_, PyAny>| -> PyResult<Arc<dyn Store>> {
            let store = Arc::new(store.clone().unbind());
            callbacks.push(store.clone());
            Ok(Arc::new(PyStore::new(py, store)?))
        };
        let state = store
            .filter(|s| !s.is_none())
            .map(&mut py_store)
            .transpose()?;
        let intent = intent_store
            .filter(|s| !s.is_none())
            .map(&mut py_store)
            .transpose()?;
        // As in C: both given, each keeps its own keys without a prefix.
        builder = match (state, intent) {
            (Some(state), Some(intent)) => builder.stores(state, intent),
            (Some(state), None) => builder.store(state),
            (None, Some(intent)) => builder.intent_store(intent),
            (None, None) => builder,
        };
        if let Some(n) = parallel {
            let n = usize::try_from(n).ok().filter(|n| *n >= 1).ok_or_else(|| {
                PyValueError::new_err(format!("parallel must be 1 or more, not {n}"))
            })?;
            builder = builder.parallel(n);
        }
        if let Some(n) = max_attempts {
            let n = u32::try_from(n).ok().filter(|n| *n >= 1).ok_or_else(|| {
                PyValueError::new_err(format!("max_attempts must be 1 or more, not {n}"))
            })?;
            builder = builder.max_attempts(n);
        }
        if let Some(seconds) = run_lease {
            let lease = Duration::try_from_secs_f64(seconds)
                .ok()
                .filter(|lease| (MIN_RUN_LEASE..=MAX_RUN_LEASE).contains(lease))
                .ok_or_else(|| {
                    PyValueError::new_err(format!(
                        "run_lease must be {} to {} seconds (a day), not {seconds}",
                        MIN_RUN_LEASE.as_secs_f64(),
                        MAX_RUN_LEASE.as_secs()
                    ))
                })?;
            builder = builder.run_lease(lease);
        }
        if let Some(events) = events.filter(|s| !s.is_none()) {
            require_callable("events", events)?;
            let events = Arc::new(events.clone().unbind());
            callbacks.push(events.clone());
            builder = builder.events(event_sink(events));
        }
        let inner = detached(py, move || builder.open())?;
        Ok(Workspace { inner, callbacks })
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        for callback in &self.callbacks {
            visit.call(&**callback)?;
        }
        Ok(())
    }

    /// The repository root.
    #[getter]
    fn root(&self) -> PathBuf {
        self.inner.root().to_path_buf()
    }

    /// The repository name used in refs.
    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    /// The commit work is done at.
    #[getter]
    fn commit(&self) -> &str {
        self.inner.commit()
    }

    /// `release new`: the JSON form of what it did, tagged by `"kind"`
    /// (`"release"`, `"environments"` or `"empty"`).
    #[pyo3(signature = (file, force = false))]
    fn release_new<'py>(
        &self,
        py: Python<'py>,
        file: PathBuf,
        force: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let result = detached(py, || self.inner.release_new(&file, force))?;
        to_py(py, &result)
    }

    /// `release continue`: the release report.
    #[pyo3(signature = (release))]
    fn release_continue<'py>(&self, py: Python<'py>, release: &str) -> PyResult<Bound<'py, PyAny>> {
        let release = release.to_string();
        let report = detached(py, || self.inner.release_continue(&release))?;
        to_py(py, &report)
    }

    /// `release retry`: the release report.
    #[pyo3(signature = (release))]
    fn release_retry<'py>(&self, py: Python<'py>, release: &str) -> PyResult<Bound<'py, PyAny>> {
        let release = release.to_string();
        let report = detached(py, || self.inner.release_retry(&release))?;
        to_py(py, &report)
    }

    /// `release takeover`: the release report, once the claims on its
    /// running runs are broken and it has run on.
    #[pyo3(signature = (release))]
    fn release_takeover<'py>(&self, py: Python<'py>, release: &str) -> PyResult<Bound<'py, PyAny>> {
        let release = release.to_string();
        let report = detached(py, || self.inner.release_takeover(&release))?;
        to_py(py, &report)
    }

    /// `release status`: the release report as it stands in state (at any
    /// commit; nothing runs or is written).
    #[pyo3(signature = (release))]
    fn release_status<'py>(&self, py: Python<'py>, release: &str) -> PyResult<Bound<'py, PyAny>> {
        let release = release.to_string();
        let report = detached(py, || self.inner.release_status(&release))?;
        to_py(py, &report)
    }

    /// Read the stores afresh: publish what this workspace deferred and
    /// fetch what other agents have written since. A git store otherwise
    /// reads from its last fetch for up to `OCUROOT_GIT_FETCH_INTERVAL`
    /// seconds (5 by default); after this returns, reads see every change
    /// any agent had pushed before the call.
    fn refresh(&self, py: Python<'_>) -> PyResult<()> {
        detached(py, || self.inner.refresh())
    }

    /// `state gc`: pack the clones of this repository's git stores, and
    /// remove the other clones under `OCUROOT_HOME` unused for
    /// `unused_for` seconds.
    #[pyo3(signature = (unused_for))]
    fn state_gc<'py>(&self, py: Python<'py>, unused_for: f64) -> PyResult<Bound<'py, PyAny>> {
        let unused_for = std::time::Duration::try_from_secs_f64(unused_for).map_err(|_| {
            pyo3::exceptions::PyValueError::new_err(format!(
                "unused_for={unused_for}: expected a number of seconds, 0 or more"
            ))
        })?;
        let report = detached(py, || self.inner.state_gc(unused_for))?;
        to_py(py, &report)
    }

    /// A document (or `#fragment`) from the state store, or `None`.
    #[pyo3(signature = (r#ref))]
    fn state_get<'py>(&self, py: Python<'py>, r#ref: &str) -> PyResult<Bound<'py, PyAny>> {
        let r = r#ref.to_string();
        match detached(py, || self.inner.state_get(&r))? {
            Some(value) => json_to_py(py, &value),
            None => Ok(py.None().into_bound(py)),
        }
    }

    /// `state read`: `{"ref", "kind", "document"}` for the document at
    /// `ref`, typed by what the ref names, or `None`.
    #[pyo3(signature = (r#ref))]
    fn state_read<'py>(&self, py: Python<'py>, r#ref: &str) -> PyResult<Bound<'py, PyAny>> {
        let r = r#ref.to_string();
        match detached(py, || self.inner.state_read(&r))? {
            Some(read) => to_py(py, &read),
            None => Ok(py.None().into_bound(py)),
        }
    }

    /// The refs in the state store matching any of the globs, sorted.
    #[pyo3(signature = (*globs))]
    fn state_match(&self, py: Python<'_>, globs: &Bound<'_, PyTuple>) -> PyResult<Vec<String>> {
        let globs = str_globs("state_match", globs)?;
        detached(py, || self.inner.state_match(&globs))
    }

    /// `state match --no-links`: the refs matching any of the globs,
    /// without links and refs reached through one, sorted.
    #[pyo3(signature = (*globs))]
    fn state_match_no_links(
        &self,
        py: Python<'_>,
        globs: &Bound<'_, PyTuple>,
    ) -> PyResult<Vec<String>> {
        let globs = str_globs("state_match_no_links", globs)?;
        detached(py, || self.inner.state_match_no_links(&globs))
    }

    /// `state set`: write the JSON text `value` to the intent store at
    /// `ref` (custom state, an environment or a deploy intent); the
    /// absolute ref written.
    #[pyo3(signature = (r#ref, value))]
    fn state_set(&self, py: Python<'_>, r#ref: &str, value: &str) -> PyResult<String> {
        let (r, value) = (r#ref.to_string(), value.to_string());
        detached(py, || {
            let value: serde_json::Value = serde_json::from_str(&value)?;
            self.inner.state_set(&r, value).map(|r| r.to_string())
        })
    }

    /// `state delete`: remove `ref` from the intent store; the absolute ref.
    #[pyo3(signature = (r#ref))]
    fn state_delete(&self, py: Python<'_>, r#ref: &str) -> PyResult<String> {
        let r = r#ref.to_string();
        detached(py, || self.inner.state_delete(&r).map(|r| r.to_string()))
    }

    /// `state apply`: the JSON form of the outcome of making state match the
    /// intent at `ref`.
    #[pyo3(signature = (r#ref))]
    fn state_apply<'py>(&self, py: Python<'py>, r#ref: &str) -> PyResult<Bound<'py, PyAny>> {
        let r = r#ref.to_string();
        let outcome = detached(py, || self.inner.state_apply(&r))?;
        to_py(py, &outcome)
    }

    /// `state diff`: the JSON form of each intent ref that differs from
    /// state, and how.
    fn state_diff<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let changes = detached(py, || self.inner.state_diff())?;
        to_py(py, &changes)
    }

    /// `find-deploys`: the JSON form of each deployment whose release was
    /// made at one of the commits from `start` to `end`.
    fn find_deploys<'py>(
        &self,
        py: Python<'py>,
        start: &str,
        end: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let found = detached(py, || self.inner.find_deploys(start, end))?;
        to_py(py, &found)
    }

    /// `state checkpoint`: bring the stores' files up to date.
    fn state_checkpoint(&self, py: Python<'_>) -> PyResult<()> {
        detached(py, || self.inner.state_checkpoint())
    }

    /// `work continue`: with `dryrun`, the JSON form of each piece of work
    /// it would do; otherwise of the outcome.
    #[pyo3(signature = (dryrun = false))]
    fn work_continue<'py>(&self, py: Python<'py>, dryrun: bool) -> PyResult<Bound<'py, PyAny>> {
        let result = detached(py, || self.inner.work_continue(dryrun))?;
        to_py(py, &result)
    }

    /// `work ops`: as [`work_continue`](Self::work_continue), for the
    /// `check_envs` ops new environments leave.
    #[pyo3(signature = (dryrun = false))]
    fn work_ops<'py>(&self, py: Python<'py>, dryrun: bool) -> PyResult<Bound<'py, PyAny>> {
        let result = detached(py, || self.inner.work_ops(dryrun))?;
        to_py(py, &result)
    }

    /// `work any`: intent, then ops, then ready runs and redeploys (as
    /// [`work_continue`](Self::work_continue)).
    #[pyo3(signature = (dryrun = false))]
    fn work_any<'py>(&self, py: Python<'py>, dryrun: bool) -> PyResult<Bound<'py, PyAny>> {
        let result = detached(py, || self.inner.work_any(dryrun))?;
        to_py(py, &result)
    }

    /// `work any --comprehensive`: `work any` until nothing is left; the
    /// JSON form of the outcome.
    fn work_any_comprehensive<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let outcome = detached(py, || self.inner.work_any_comprehensive())?;
        to_py(py, &outcome)
    }

    /// `release lint`: the JSON form of the evaluated file.
    #[pyo3(signature = (file))]
    fn release_lint<'py>(&self, py: Python<'py>, file: PathBuf) -> PyResult<Bound<'py, PyAny>> {
        let lint = detached(py, || self.inner.release_lint(&file).map(|l| l.to_json()))?;
        json_to_py(py, &lint)
    }

    /// `push`: the JSON form of what it did.
    #[pyo3(signature = (dryrun = false))]
    fn push<'py>(&self, py: Python<'py>, dryrun: bool) -> PyResult<Bound<'py, PyAny>> {
        let outcome = detached(py, || self.inner.push(dryrun))?;
        to_py(py, &outcome)
    }

    /// `push` in a checkout of an intent branch: the JSON form of what it
    /// did.
    #[pyo3(signature = (dryrun = false))]
    fn push_intent<'py>(&self, py: Python<'py>, dryrun: bool) -> PyResult<Bound<'py, PyAny>> {
        let outcome = detached(py, || self.inner.push_intent(dryrun))?;
        to_py(py, &outcome)
    }

    /// `work cascade`: with `dryrun`, the list of work the first round
    /// would do (the JSON form of each item); otherwise the JSON form of the
    /// outcome.
    #[pyo3(signature = (dryrun = false))]
    fn work_cascade<'py>(&self, py: Python<'py>, dryrun: bool) -> PyResult<Bound<'py, PyAny>> {
        let result = detached(py, || self.inner.work_cascade(dryrun))?;
        to_py(py, &result)
    }

    /// `--cascade`: the JSON form of the outcome of following what this
    /// workspace changed to the deployments that read it.
    fn cascade<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let outcome = detached(py, || self.inner.cascade())?;
        to_py(py, &outcome)
    }

    /// `plan`: the JSON form (`{"work", "graph"}`) for `"json"`, the graph
    /// as text for `"mermaid"` and `"dot"`. Another format is a
    /// `ValueError`.
    #[pyo3(signature = (format = "json"))]
    fn plan<'py>(&self, py: Python<'py>, format: &str) -> PyResult<Bound<'py, PyAny>> {
        if !matches!(format, "json" | "mermaid" | "dot") {
            let shown = PyString::new(py, format).repr()?;
            return Err(PyValueError::new_err(format!(
                "unknown plan format {shown}: use 'json', 'mermaid' or 'dot'"
            )));
        }
        let plan = detached(py, || self.inner.plan())?;
        match format {
            "mermaid" => Ok(PyString::new(py, &plan.graph.to_mermaid()).into_any()),
            "dot" => Ok(PyString::new(py, &plan.graph.to_dot()).into_any()),
            _ => json_to_py(py, &plan.to_json()),
        }
    }

    /// `work trigger`: the JSON form of each commit with outstanding work
    /// and what its trigger did (with `dryrun`, only listed).
    #[pyo3(signature = (dryrun = false))]
    fn work_trigger<'py>(&self, py: Python<'py>, dryrun: bool) -> PyResult<Bound<'py, PyAny>> {
        let triggered = detached(py, || self.inner.work_trigger(dryrun))?;
        to_py(py, &triggered)
    }

    /// `work trigger --intent`: the JSON form of each trigger called (or,
    /// with `dryrun`, planned), one per repository state knows.
    #[pyo3(signature = (dryrun = false))]
    fn work_trigger_intent<'py>(
        &self,
        py: Python<'py>,
        dryrun: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let triggered = detached(py, || self.inner.work_trigger_intent(dryrun))?;
        to_py(py, &triggered)
    }

    fn __repr__(&self) -> String {
        format!(
            "Workspace(root={:?}, name={:?}, commit={:?})",
            self.inner.root().display().to_string(),
            self.inner.name(),
            self.inner.commit()
        )
    }
}

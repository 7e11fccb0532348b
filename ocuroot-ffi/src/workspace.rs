//! Workspaces and their options; the operations on a workspace.

use std::ffi::{c_char, c_void};
use std::sync::Arc;
use std::time::Duration;

use ocuroot_core::Workspace;
use ocuroot_core::host::Host;
use ocuroot_core::model::EventSink;
use ocuroot_core::model::ReleaseReport;
use ocuroot_core::store::Store;
use ocuroot_core::workspace::{MAX_RUN_LEASE, MIN_RUN_LEASE};

use crate::callbacks::{
    CHost, CStore, event_sink, ocuroot_event_fn, ocuroot_finalize_fn, ocuroot_shell_fn,
    ocuroot_store_callbacks,
};
use crate::error::{
    Failure, arg_mut, arg_out, arg_ref, arg_str, boundary, c_string, ocuroot_error, ocuroot_result,
    quiet,
};

/// How to open a workspace: parallelism, cascade attempts, the lease of
/// claims on runs, and the callbacks replacing the local shell, the
/// configured store and the (absent) progress output. Create with
/// `ocuroot_workspace_options_new`; free with
/// `ocuroot_workspace_options_free` (workspaces opened from it keep what
/// they need).
#[allow(non_camel_case_types)]
#[derive(Default)]
pub struct ocuroot_workspace_options {
    parallel: Option<usize>,
    max_attempts: Option<u32>,
    run_lease: Option<Duration>,
    host: Option<Arc<dyn Host>>,
    store: Option<Arc<dyn Store>>,
    intent_store: Option<Arc<dyn Store>>,
    events: Option<EventSink>,
    limit: Option<String>,
}

/// An opened repository: its configuration and its state and intent stores.
/// Open with `ocuroot_workspace_open`; free with `ocuroot_workspace_free`.
#[allow(non_camel_case_types)]
pub struct ocuroot_workspace {
    pub(crate) inner: Workspace,
}

/// Options with the defaults: parallelism = the number of CPUs, 3 attempts
/// at a failing redeploy in a cascade, leases of the `OCUROOT_RUN_LEASE`
/// environment variable or 2 minutes, commands run by the local shell, the
/// store `repo.ocu.star` configures, no events.
#[unsafe(no_mangle)]
pub extern "C" fn ocuroot_workspace_options_new() -> *mut ocuroot_workspace_options {
    quiet(std::ptr::null_mut(), || {
        Box::into_raw(Box::new(ocuroot_workspace_options::default()))
    })
}

/// Free options. NULL does nothing. Callbacks set on them are finalized
/// once no workspace opened from them remains.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_workspace_options_free(options: *mut ocuroot_workspace_options) {
    if !options.is_null() {
        // SAFETY: options this library made, freed once.
        quiet((), || drop(unsafe { Box::from_raw(options) }));
    }
}

/// How many work items may run at once (at least 1). With 1, every
/// callback is called only from the thread that runs the release.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_workspace_options_set_parallel(
    options: *mut ocuroot_workspace_options,
    parallel: usize,
    error: *mut *mut ocuroot_error,
) -> ocuroot_result {
    boundary(error, || {
        // SAFETY: options this library made.
        let options = unsafe { arg_mut(options, "options") }?;
        if parallel == 0 {
            return Err(Failure::invalid("parallel must be at least 1"));
        }
        options.parallel = Some(parallel);
        Ok(())
    })
}

/// Limit the work functions (`ocuroot_work_*`, `ocuroot_plan` aside) to
/// one package or one release of it: `<package>` or
/// `<package>/@<release or tag>`, the package as a path or a package ref,
/// as `ocuroot release retry` takes it. Work on other refs (other packages,
/// global intent such as `@/custom/...`) is not found, applied or
/// triggered. Checked by `ocuroot_workspace_open` (an unknown release is
/// `OCUROOT_RESULT_NOT_FOUND`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_workspace_options_set_limit(
    options: *mut ocuroot_workspace_options,
    package_or_release: *const c_char,
    error: *mut *mut ocuroot_error,
) -> ocuroot_result {
    boundary(error, || {
        // SAFETY: options this library made; a string from the caller.
        let options = unsafe { arg_mut(options, "options") }?;
        let text = unsafe { arg_str(package_or_release, "package_or_release") }?;
        options.limit = Some(text.to_string());
        Ok(())
    })
}

/// How many times a cascade (`ocuroot_cascade`, `ocuroot_work_cascade`)
/// runs a failing redeploy before it gives it up and reports it in the
/// outcome's `stopped` (at least 1; default 3).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_workspace_options_set_max_attempts(
    options: *mut ocuroot_workspace_options,
    max_attempts: u32,
    error: *mut *mut ocuroot_error,
) -> ocuroot_result {
    boundary(error, || {
        // SAFETY: options this library made.
        let options = unsafe { arg_mut(options, "options") }?;
        if max_attempts == 0 {
            return Err(Failure::invalid("max_attempts must be at least 1"));
        }
        options.max_attempts = Some(max_attempts);
        Ok(())
    })
}

/// How long a claim on a run holds without being renewed, in milliseconds
/// (300 to 86400000, a day; default: the `OCUROOT_RUN_LEASE` environment variable,
/// else 2 minutes). While a release runs, the agent renews the leases of
/// the runs it executes every third of this; once a claim's lease has
/// expired (its agent died or lost the store), any agent running the
/// release takes the run over and runs it again. `ocuroot_release_takeover`
/// breaks claims without waiting for their leases.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_workspace_options_set_run_lease_ms(
    options: *mut ocuroot_workspace_options,
    run_lease_ms: u64,
    error: *mut *mut ocuroot_error,
) -> ocuroot_result {
    boundary(error, || {
        // SAFETY: options this library made.
        let options = unsafe { arg_mut(options, "options") }?;
        let lease = Duration::from_millis(run_lease_ms);
        if !(MIN_RUN_LEASE..=MAX_RUN_LEASE).contains(&lease) {
            return Err(Failure::invalid(format!(
                "run_lease_ms must be at least {} and at most {} (a day)",
                MIN_RUN_LEASE.as_millis(),
                MAX_RUN_LEASE.as_millis()
            )));
        }
        options.run_lease = Some(lease);
        Ok(())
    })
}

/// Run every `host.shell` of work functions through `shell` instead of a
/// local process. `finalize` (may be NULL) is called with `userdata` once
/// the callback is no longer used. Replaces an earlier shell callback.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_workspace_options_set_shell(
    options: *mut ocuroot_workspace_options,
    shell: ocuroot_shell_fn,
    userdata: *mut c_void,
    finalize: ocuroot_finalize_fn,
    error: *mut *mut ocuroot_error,
) -> ocuroot_result {
    boundary(error, || {
        // SAFETY: options this library made.
        let options = unsafe { arg_mut(options, "options") }?;
        let host = CHost::new(shell, userdata, finalize).ok_or_else(|| Failure::null("shell"))?;
        options.host = Some(Arc::new(host));
        Ok(())
    })
}

/// Keep state and intent in the caller's store (under `state/` and
/// `intent/`) instead of the store `repo.ocu.star` configures; with
/// `ocuroot_workspace_options_set_intent_store` too, this store keeps state
/// only, with its keys as they are (no `state/` prefix). The struct is
/// copied; its `finalize` is called with its `userdata` once the store is
/// no longer used. Replaces an earlier store.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_workspace_options_set_store(
    options: *mut ocuroot_workspace_options,
    callbacks: *const ocuroot_store_callbacks,
    error: *mut *mut ocuroot_error,
) -> ocuroot_result {
    boundary(error, || {
        // SAFETY: options this library made.
        let options = unsafe { arg_mut(options, "options") }?;
        // SAFETY: a struct the caller filled in.
        let callbacks = unsafe { arg_ref(callbacks, "callbacks") }?;
        let store = CStore::new(callbacks).map_err(Failure::null)?;
        options.store = Some(Arc::new(store));
        Ok(())
    })
}

/// Keep intent in a store of its own: the caller's store `callbacks`, with
/// intent's keys as they are (no `intent/` prefix). State stays apart:
/// in the store of `ocuroot_workspace_options_set_store` (which then holds
/// only state, also without a prefix), or else in the state store
/// `repo.ocu.star` configures. The struct is copied; its
/// `finalize` is called with its `userdata` once the store is no longer
/// used. Replaces an earlier intent store.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_workspace_options_set_intent_store(
    options: *mut ocuroot_workspace_options,
    callbacks: *const ocuroot_store_callbacks,
    error: *mut *mut ocuroot_error,
) -> ocuroot_result {
    boundary(error, || {
        // SAFETY: options this library made.
        let options = unsafe { arg_mut(options, "options") }?;
        // SAFETY: a struct the caller filled in.
        let callbacks = unsafe { arg_ref(callbacks, "callbacks") }?;
        let store = CStore::new(callbacks).map_err(Failure::null)?;
        options.intent_store = Some(Arc::new(store));
        Ok(())
    })
}

/// Receive the events of running releases (runs starting and finishing,
/// log lines) as JSON. `finalize` (may be NULL) is called with `userdata`
/// once the callback is no longer used. Replaces an earlier event callback.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_workspace_options_set_events(
    options: *mut ocuroot_workspace_options,
    on_event: ocuroot_event_fn,
    userdata: *mut c_void,
    finalize: ocuroot_finalize_fn,
    error: *mut *mut ocuroot_error,
) -> ocuroot_result {
    boundary(error, || {
        // SAFETY: options this library made.
        let options = unsafe { arg_mut(options, "options") }?;
        let on_event = on_event.ok_or_else(|| Failure::null("on_event"))?;
        options.events = Some(event_sink(on_event, userdata, finalize));
        Ok(())
    })
}

/// Open the repository containing `path`: find its root and HEAD commit,
/// evaluate `repo.ocu.star` and open the stores. `options` may be NULL for
/// the defaults. On success `*workspace` receives a workspace to free with
/// `ocuroot_workspace_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_workspace_open(
    path: *const c_char,
    options: *const ocuroot_workspace_options,
    workspace: *mut *mut ocuroot_workspace,
    error: *mut *mut ocuroot_error,
) -> ocuroot_result {
    boundary(error, || {
        // SAFETY: a NUL-terminated string from the caller.
        let path = unsafe { arg_str(path, "path") }?;
        let out = arg_out(workspace, "workspace")?;
        let mut builder = Workspace::builder(path);
        // SAFETY: NULL or options this library made.
        if let Some(options) = unsafe { options.as_ref() } {
            if let Some(n) = options.parallel {
                builder = builder.parallel(n);
            }
            if let Some(limit) = &options.limit {
                builder = builder.limit(limit.clone());
            }
            if let Some(n) = options.max_attempts {
                builder = builder.max_attempts(n);
            }
            if let Some(lease) = options.run_lease {
                builder = builder.run_lease(lease);
            }
            if let Some(host) = &options.host {
                builder = builder.host(host.clone());
            }
            builder = match (&options.store, &options.intent_store) {
                (Some(state), Some(intent)) => builder.stores(state.clone(), intent.clone()),
                (Some(store), None) => builder.store(store.clone()),
                (None, Some(intent)) => builder.intent_store(intent.clone()),
                (None, None) => builder,
            };
            if let Some(events) = &options.events {
                builder = builder.events(events.clone());
            }
        }
        let inner = builder.open()?;
        let handle = Box::into_raw(Box::new(ocuroot_workspace { inner }));
        // SAFETY: checked not NULL above.
        unsafe { *out = handle };
        Ok(())
    })
}

/// Free a workspace. NULL does nothing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_workspace_free(workspace: *mut ocuroot_workspace) {
    if !workspace.is_null() {
        // SAFETY: a workspace this library made, freed once.
        quiet((), || drop(unsafe { Box::from_raw(workspace) }));
    }
}

/// Write `text` to the out-parameter `out` as a string the caller frees.
pub(crate) fn give_string(out: *mut *mut c_char, text: &str) {
    // SAFETY: `out` was checked not NULL by the caller of this function.
    unsafe { *out = c_string(text).into_raw() };
}

/// Write `json` to the out-parameter `out` as a string the caller frees.
pub(crate) fn give_json(
    out: *mut *mut c_char,
    json: &impl serde::Serialize,
) -> Result<(), Failure> {
    give_string(out, &serde_json::to_string(json)?);
    Ok(())
}

/// An operation of the workspace whose result is handed out as JSON in
/// the out-parameter `out` (named `out_name` in errors).
///
/// # Safety
/// As for every exported function: pointers are NULL or valid.
pub(crate) unsafe fn json_op<T: serde::Serialize>(
    workspace: *const ocuroot_workspace,
    out: *mut *mut c_char,
    out_name: &str,
    error: *mut *mut ocuroot_error,
    op: impl FnOnce(&Workspace) -> ocuroot_core::Result<T>,
) -> ocuroot_result {
    boundary(error, || {
        // SAFETY: pointers from the caller.
        let (ws, out) = unsafe { ws_args(workspace, out, out_name) }?;
        give_json(out, &op(ws)?)
    })
}

/// The workspace and the checked out-parameter of an operation.
///
/// # Safety
/// As for every exported function: pointers are NULL or valid.
pub(crate) unsafe fn ws_args<'a>(
    workspace: *const ocuroot_workspace,
    out: *mut *mut c_char,
    out_name: &str,
) -> Result<(&'a Workspace, *mut *mut c_char), Failure> {
    // SAFETY: as the caller promised.
    let ws = unsafe { arg_ref(workspace, "workspace") }?;
    let out = arg_out(out, out_name)?;
    Ok((&ws.inner, out))
}

/// The workspace, a string argument and the checked out-parameter of an
/// operation.
///
/// # Safety
/// As for every exported function: pointers are NULL or valid.
pub(crate) unsafe fn op_args<'a>(
    workspace: *const ocuroot_workspace,
    text: *const c_char,
    text_name: &str,
    out: *mut *mut c_char,
    out_name: &str,
) -> Result<(&'a Workspace, &'a str, *mut *mut c_char), Failure> {
    // SAFETY: as the caller promised.
    let ws = unsafe { arg_ref(workspace, "workspace") }?;
    // SAFETY: as the caller promised.
    let text = unsafe { arg_str(text, text_name) }?;
    let out = arg_out(out, out_name)?;
    Ok((&ws.inner, text, out))
}

/// `ocuroot release new <file>`: create a release of the package file
/// `file` (relative to the workspace root or absolute) at the HEAD commit
/// and run it until nothing more can run; with `force`, even if the commit
/// already has one. On success `*result_json` receives what happened,
/// tagged by `kind`: `"release"` with the report's `release`, `commit`,
/// `status` (`complete`, `blocked`, `paused`, `failed`...) and `work`;
/// `"environments"` for a file registering environments; or `"empty"`.
/// Failed work is not a failed call: the report says `failed`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_release_new(
    workspace: *const ocuroot_workspace,
    file: *const c_char,
    force: bool,
    result_json: *mut *mut c_char,
    error: *mut *mut ocuroot_error,
) -> ocuroot_result {
    boundary(error, || {
        // SAFETY: pointers from the caller.
        let (ws, file, out) =
            unsafe { op_args(workspace, file, "file", result_json, "result_json") }?;
        give_json(out, &ws.release_new(file, force)?)
    })
}

/// `ocuroot release continue <release>`: run a release's ready work again
/// (blocked work whose inputs now exist, paused work whose conditions
/// hold). `release` is a release ref (`repo/-/pkg/@r1`, or relative to the
/// workspace). On success `*report_json` receives the report.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_release_continue(
    workspace: *const ocuroot_workspace,
    release: *const c_char,
    report_json: *mut *mut c_char,
    error: *mut *mut ocuroot_error,
) -> ocuroot_result {
    // SAFETY: pointers from the caller.
    unsafe {
        release_op(
            workspace,
            release,
            report_json,
            error,
            Workspace::release_continue,
        )
    }
}

/// `ocuroot release retry <release>`: start a new run of each failed work
/// item of a release, then continue it. On success `*report_json` receives
/// the report.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_release_retry(
    workspace: *const ocuroot_workspace,
    release: *const c_char,
    report_json: *mut *mut c_char,
    error: *mut *mut ocuroot_error,
) -> ocuroot_result {
    // SAFETY: pointers from the caller.
    unsafe {
        release_op(
            workspace,
            release,
            report_json,
            error,
            Workspace::release_retry,
        )
    }
}

/// `ocuroot release takeover <release>`: break every claim on the running
/// runs of a release now, whatever their leases say, then continue it. For
/// a caller who knows the agents holding them are gone (a cancelled
/// pipeline, a lost machine): an agent still running one of them has its
/// outcome refused. Each taken-over run is marked `cancelled` (its status
/// marker records who held it, who took it over, when and why), a new run
/// replaces it, and an `Event:run_taken_over` is sent. On success
/// `*report_json` receives the report; a release with no running run is
/// `OCUROOT_RESULT_NOTHING_TO_RETRY`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_release_takeover(
    workspace: *const ocuroot_workspace,
    release: *const c_char,
    report_json: *mut *mut c_char,
    error: *mut *mut ocuroot_error,
) -> ocuroot_result {
    // SAFETY: pointers from the caller.
    unsafe {
        release_op(
            workspace,
            release,
            report_json,
            error,
            Workspace::release_takeover,
        )
    }
}

/// `ocuroot release status <release>`: the report of a release as it
/// stands in state, for a release at any commit: nothing is evaluated, run
/// or written. `release` is as for `ocuroot_release_continue`, or a package
/// alone for its latest release. On success `*report_json` receives the
/// report (a failed release is not a failed call: the report says
/// `failed`); an unknown release is `OCUROOT_RESULT_NOT_FOUND`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_release_status(
    workspace: *const ocuroot_workspace,
    release: *const c_char,
    report_json: *mut *mut c_char,
    error: *mut *mut ocuroot_error,
) -> ocuroot_result {
    // SAFETY: pointers from the caller.
    unsafe {
        release_op(
            workspace,
            release,
            report_json,
            error,
            Workspace::release_status,
        )
    }
}

/// An operation on an existing release that gives its report.
///
/// # Safety
/// As for every exported function: pointers are NULL or valid.
unsafe fn release_op(
    workspace: *const ocuroot_workspace,
    release: *const c_char,
    report_json: *mut *mut c_char,
    error: *mut *mut ocuroot_error,
    op: fn(&Workspace, &str) -> ocuroot_core::Result<ReleaseReport>,
) -> ocuroot_result {
    boundary(error, || {
        // SAFETY: pointers from the caller.
        let (ws, release, out) =
            unsafe { op_args(workspace, release, "release", report_json, "report_json") }?;
        give_json(out, &op(ws, release)?)
    })
}

/// `ocuroot release lint <file>`: evaluate a package file without running
/// anything. On success `*lint_json` receives `file`, `base` (the release
/// the file would create) and its `package` or `environments`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_release_lint(
    workspace: *const ocuroot_workspace,
    file: *const c_char,
    lint_json: *mut *mut c_char,
    error: *mut *mut ocuroot_error,
) -> ocuroot_result {
    boundary(error, || {
        // SAFETY: pointers from the caller.
        let (ws, file, out) = unsafe { op_args(workspace, file, "file", lint_json, "lint_json") }?;
        give_json(out, &ws.release_lint(file)?.to_json())
    })
}

/// The former name of `ocuroot_release_lint`, kept for 0.1 programs; it
/// will be removed in 0.3.
///
/// # Safety
/// As `ocuroot_release_lint`.
#[deprecated(note = "renamed ocuroot_release_lint")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_lint(
    workspace: *const ocuroot_workspace,
    file: *const c_char,
    lint_json: *mut *mut c_char,
    error: *mut *mut ocuroot_error,
) -> ocuroot_result {
    // SAFETY: the caller's pointers, passed on.
    unsafe { ocuroot_release_lint(workspace, file, lint_json, error) }
}

/// `ocuroot work cascade`: do everything outstanding (intent, ready runs,
/// redeploys of deployments whose inputs changed) at every commit, each in
/// a checkout of its commit (a temporary git worktree for another commit of
/// this repository), round after round until nothing is left. A redeploy
/// that keeps failing is given up after the options' `max_attempts`.
///
/// On success `*result_json` receives, with `dryrun`, the work the first
/// round would do, in dependency order, changing nothing: a JSON array of
/// `{"ref", "work_type" ("create", "update", "delete", "run" or "op"),
/// "commit", "reason", "waits_for"}` (the last three when they apply).
/// Otherwise the outcome, a JSON object: `applied` (intent), `releases`
/// (the report of every release that ran), `deferred`, `rounds` and
/// `stopped` (work given up; the last two when not empty). The work failed
/// when `stopped` is not empty or a release's status is `failed`; that is
/// not a failed call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_work_cascade(
    workspace: *const ocuroot_workspace,
    dryrun: bool,
    result_json: *mut *mut c_char,
    error: *mut *mut ocuroot_error,
) -> ocuroot_result {
    // SAFETY: pointers from the caller.
    unsafe {
        json_op(workspace, result_json, "result_json", error, |ws| {
            ws.work_cascade(dryrun)
        })
    }
}

/// `ocuroot release new --cascade`, after the fact: follow what this
/// workspace changed since its last cascade (the releases
/// `ocuroot_release_new` ran) to every deployment that reads it, each at
/// its own commit (in a temporary git worktree when that is not the
/// workspace's commit), until nothing is left. On success `*outcome_json`
/// receives the outcome, as `ocuroot_work_cascade` gives it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_cascade(
    workspace: *const ocuroot_workspace,
    outcome_json: *mut *mut c_char,
    error: *mut *mut ocuroot_error,
) -> ocuroot_result {
    // SAFETY: pointers from the caller.
    unsafe {
        json_op(
            workspace,
            outcome_json,
            "outcome_json",
            error,
            Workspace::cascade,
        )
    }
}

/// `ocuroot plan`: the outstanding work everywhere in dependency order and
/// the dependency graph of the latest release of every package. Runs
/// nothing. `format` is NULL or `"json"`, `"mermaid"` or `"dot"`; another
/// value is `OCUROOT_RESULT_INVALID_ARGUMENT`. On success `*plan_text`
/// receives, for JSON, `{"work": [...], "graph": [{"node", "depends_on":
/// [...]}]}` (the work items as `ocuroot_work_cascade` lists them, each with
/// `waits_for` when it cannot be done yet); for `mermaid` and `dot`, the
/// graph as a Mermaid flowchart or a Graphviz digraph. A dependency cycle
/// is an error naming every node on it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_plan(
    workspace: *const ocuroot_workspace,
    format: *const c_char,
    plan_text: *mut *mut c_char,
    error: *mut *mut ocuroot_error,
) -> ocuroot_result {
    boundary(error, || {
        // SAFETY: pointers from the caller.
        let (ws, out) = unsafe { ws_args(workspace, plan_text, "plan_text") }?;
        let format = if format.is_null() {
            "json"
        } else {
            // SAFETY: a NUL-terminated string from the caller.
            unsafe { arg_str(format, "format") }?
        };
        if !matches!(format, "json" | "mermaid" | "dot") {
            return Err(Failure::invalid(format!(
                "unknown plan format {format:?}: use \"json\", \"mermaid\" or \"dot\""
            )));
        }
        let plan = ws.plan()?;
        let text = match format {
            "mermaid" => plan.graph.to_mermaid(),
            "dot" => plan.graph.to_dot(),
            _ => serde_json::to_string(&plan.to_json())?,
        };
        give_string(out, &text);
        Ok(())
    })
}

/// `ocuroot work trigger`: call `repo.ocu.star`'s `trigger(commit)` for each
/// commit with outstanding work, so that a CI system starts work there;
/// with `dryrun`, only list those commits. One failing trigger does not
/// stop the others. On success `*result_json` receives a JSON array of
/// `{"repo", "commit", "status", "log", "error"}`: `status` is `"planned"`
/// (dry run), `"called"`, `"no_trigger"` (the repository has none) or
/// `"failed"` (with `error`); `log` (what the trigger printed) and `error`
/// only when not empty.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_work_trigger(
    workspace: *const ocuroot_workspace,
    dryrun: bool,
    result_json: *mut *mut c_char,
    error: *mut *mut ocuroot_error,
) -> ocuroot_result {
    // SAFETY: pointers from the caller.
    unsafe {
        json_op(workspace, result_json, "result_json", error, |ws| {
            ws.work_trigger(dryrun)
        })
    }
}

/// `ocuroot work trigger --intent`: call the trigger of every repository
/// state knows, at its latest recorded commit (with `dryrun`, only list
/// them): how a push to an intent branch reaches each repository's CI. On
/// success `*result_json` receives the same array as `ocuroot_work_trigger`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_work_trigger_intent(
    workspace: *const ocuroot_workspace,
    dryrun: bool,
    result_json: *mut *mut c_char,
    error: *mut *mut ocuroot_error,
) -> ocuroot_result {
    // SAFETY: pointers from the caller.
    unsafe {
        json_op(workspace, result_json, "result_json", error, |ws| {
            ws.work_trigger_intent(dryrun)
        })
    }
}

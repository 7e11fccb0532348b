//! Intent and the `work` commands: `state set`/`delete`/`diff`/`apply`/
//! `checkpoint`, `work continue`/`ops`/`any`.

use std::ffi::c_char;

use ocuroot_core::Workspace;

use crate::error::{arg_ref, arg_str, boundary, ocuroot_error, ocuroot_result};
use crate::workspace::{give_json, give_string, json_op, ocuroot_workspace, op_args};

/// `ocuroot state set <ref> <value>`: write the JSON document `value_json`
/// to the intent store at `ref`: custom state (`@/custom/<name>`,
/// `<package>/@[<release or tag>]/custom/<name>`), an environment
/// (`@/environment/<name>`) or a deploy intent
/// (`<package>/@/deploy/<environment>`). Nothing is written when the ref is
/// not intent or the document is not valid (`OCUROOT_RESULT_INVALID_INPUT`).
/// On success `*written_ref` receives the absolute ref written (free it
/// with `ocuroot_string_free`); `ocuroot_state_apply` makes state match it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_state_set(
    workspace: *const ocuroot_workspace,
    r#ref: *const c_char,
    value_json: *const c_char,
    written_ref: *mut *mut c_char,
    error: *mut *mut ocuroot_error,
) -> ocuroot_result {
    boundary(error, || {
        // SAFETY: pointers from the caller.
        let (ws, r, out) = unsafe { op_args(workspace, r#ref, "ref", written_ref, "written_ref") }?;
        // SAFETY: a pointer from the caller.
        let value = unsafe { arg_str(value_json, "value_json") }?;
        let value: serde_json::Value = serde_json::from_str(value)?;
        give_string(out, &ws.state_set(r, value)?.to_string());
        Ok(())
    })
}

/// `ocuroot state delete <ref>`: remove `ref` from the intent store
/// (applying that undoes it in state). On success `*deleted_ref` receives
/// the absolute ref.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_state_delete(
    workspace: *const ocuroot_workspace,
    r#ref: *const c_char,
    deleted_ref: *mut *mut c_char,
    error: *mut *mut ocuroot_error,
) -> ocuroot_result {
    boundary(error, || {
        // SAFETY: pointers from the caller.
        let (ws, r, out) = unsafe { op_args(workspace, r#ref, "ref", deleted_ref, "deleted_ref") }?;
        give_string(out, &ws.state_delete(r)?.to_string());
        Ok(())
    })
}

/// `ocuroot state apply <ref>`: make state match the intent at `ref`,
/// running the work that creates in releases at the current commit
/// (applying custom state runs nothing: `ocuroot_work_continue` then runs
/// what it unblocked). On success `*outcome_json` receives the outcome, as
/// `ocuroot_work_cascade` gives it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_state_apply(
    workspace: *const ocuroot_workspace,
    r#ref: *const c_char,
    outcome_json: *mut *mut c_char,
    error: *mut *mut ocuroot_error,
) -> ocuroot_result {
    boundary(error, || {
        // SAFETY: pointers from the caller.
        let (ws, r, out) =
            unsafe { op_args(workspace, r#ref, "ref", outcome_json, "outcome_json") }?;
        give_json(out, &ws.state_apply(r)?)
    })
}

/// `ocuroot state diff`: the intent refs whose state differs. On success
/// `*changes_json` receives a JSON array of `{"ref", "change"}`, `change`
/// being `"create"`, `"update"` or `"delete"`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_state_diff(
    workspace: *const ocuroot_workspace,
    changes_json: *mut *mut c_char,
    error: *mut *mut ocuroot_error,
) -> ocuroot_result {
    // SAFETY: pointers from the caller.
    unsafe {
        json_op(
            workspace,
            changes_json,
            "changes_json",
            error,
            Workspace::state_diff,
        )
    }
}

/// `ocuroot state checkpoint`: bring the stores' files up to date for
/// tools that read them directly (a directory store writes its log back).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_state_checkpoint(
    workspace: *const ocuroot_workspace,
    error: *mut *mut ocuroot_error,
) -> ocuroot_result {
    boundary(error, || {
        // SAFETY: a pointer from the caller.
        let ws = unsafe { arg_ref(workspace, "workspace") }?;
        Ok(ws.inner.state_checkpoint()?)
    })
}

/// `ocuroot work continue`: run the ready runs and redeploys of releases
/// at the current commit. On success `*result_json` receives, with
/// `dryrun`, the work it would do (changing nothing), else the outcome, as
/// `ocuroot_work_cascade` gives them.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_work_continue(
    workspace: *const ocuroot_workspace,
    dryrun: bool,
    result_json: *mut *mut c_char,
    error: *mut *mut ocuroot_error,
) -> ocuroot_result {
    // SAFETY: pointers from the caller.
    unsafe {
        json_op(workspace, result_json, "result_json", error, |ws| {
            ws.work_continue(dryrun)
        })
    }
}

/// `ocuroot work ops`: run the `check_envs` ops new environments left on
/// releases at the current commit (they add pending deploys). The result is
/// as `ocuroot_work_continue`'s.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_work_ops(
    workspace: *const ocuroot_workspace,
    dryrun: bool,
    result_json: *mut *mut c_char,
    error: *mut *mut ocuroot_error,
) -> ocuroot_result {
    // SAFETY: pointers from the caller.
    unsafe {
        json_op(workspace, result_json, "result_json", error, |ws| {
            ws.work_ops(dryrun)
        })
    }
}

/// `ocuroot work any`: apply intent that differs from state, then run ops,
/// then ready runs and redeploys, at the current commit. The result is as
/// `ocuroot_work_continue`'s.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_work_any(
    workspace: *const ocuroot_workspace,
    dryrun: bool,
    result_json: *mut *mut c_char,
    error: *mut *mut ocuroot_error,
) -> ocuroot_result {
    // SAFETY: pointers from the caller.
    unsafe {
        json_op(workspace, result_json, "result_json", error, |ws| {
            ws.work_any(dryrun)
        })
    }
}

/// `ocuroot work any --comprehensive`: `ocuroot_work_any` round after
/// round until nothing is left. On success `*outcome_json` receives the
/// outcome.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_work_any_comprehensive(
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
            Workspace::work_any_comprehensive,
        )
    }
}

//! Reading state through a workspace: documents, typed reads, matching
//! refs, and reading the stores afresh.

use std::ffi::c_char;

use ocuroot_core::Workspace;

use crate::error::{Failure, arg_out, arg_ref, arg_str, boundary, ocuroot_error, ocuroot_result};
use crate::workspace::{give_json, ocuroot_workspace, op_args};

/// Read the stores afresh: publish what this workspace deferred and fetch
/// what other agents have written since. A git store otherwise reads from
/// its last fetch for up to `OCUROOT_GIT_FETCH_INTERVAL` seconds (5 by
/// default), so a document another agent wrote a moment ago may not be
/// seen yet; after this returns, reads see every change any agent had
/// pushed before the call. A directory store has nothing to do.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_workspace_refresh(
    workspace: *const ocuroot_workspace,
    error: *mut *mut ocuroot_error,
) -> ocuroot_result {
    boundary(error, || {
        // SAFETY: a workspace from this library.
        let ws = unsafe { arg_ref(workspace, "workspace") }?;
        ws.inner.refresh()?;
        Ok(())
    })
}

/// `ocuroot state get <ref>`: the JSON document at a ref (links followed, a
/// `#fragment` selecting a field). On success `*value_json` receives it, or
/// NULL when there is nothing at the ref.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_state_get(
    workspace: *const ocuroot_workspace,
    r#ref: *const c_char,
    value_json: *mut *mut c_char,
    error: *mut *mut ocuroot_error,
) -> ocuroot_result {
    boundary(error, || {
        // SAFETY: pointers from the caller.
        let (ws, r, out) = unsafe { op_args(workspace, r#ref, "ref", value_json, "value_json") }?;
        match ws.state_get(r)? {
            Some(value) => give_json(out, &value),
            None => {
                // SAFETY: checked not NULL.
                unsafe { *out = std::ptr::null_mut() };
                Ok(())
            }
        }
    })
}

/// `ocuroot state read <ref>`: the document at a ref in state, typed by
/// what its ref names (links followed). On success `*read_json` receives
/// `{"ref", "kind", "document"}`: `ref` is the ref read once links are
/// followed; `kind` is `"release"` (`<pkg>/@r<N>`), `"run"`
/// (`<rel>/task/<name>/<n>`, `<rel>/deploy/<env>/<n>`), `"work"` (the
/// outcome of a task or deploy, `<rel>/task/<name>`, `<rel>/deploy/<env>`),
/// `"environment"` (`@/environment/<name>`), `"custom"` (`.../custom/...`)
/// or `"other"` (anything else, or a `#fragment`); `document` is the
/// document as stored (`include/ocuroot-json.md` lists the fields of each
/// kind). `*read_json` receives NULL when there is nothing at the ref, as
/// with `ocuroot_state_get`. A document whose shape is not what its ref
/// promises is `OCUROOT_RESULT_STORE`, naming the ref.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_state_read(
    workspace: *const ocuroot_workspace,
    r#ref: *const c_char,
    read_json: *mut *mut c_char,
    error: *mut *mut ocuroot_error,
) -> ocuroot_result {
    boundary(error, || {
        // SAFETY: pointers from the caller.
        let (ws, r, out) = unsafe { op_args(workspace, r#ref, "ref", read_json, "read_json") }?;
        match ws.state_read(r)? {
            Some(read) => give_json(out, &read),
            None => {
                // SAFETY: checked not NULL.
                unsafe { *out = std::ptr::null_mut() };
                Ok(())
            }
        }
    })
}

/// `ocuroot state match <glob>...`: the refs in state matching any of
/// `globs_len` globs, sorted. On success `*refs_json` receives a JSON array
/// of strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_state_match(
    workspace: *const ocuroot_workspace,
    globs: *const *const c_char,
    globs_len: usize,
    refs_json: *mut *mut c_char,
    error: *mut *mut ocuroot_error,
) -> ocuroot_result {
    // SAFETY: the caller's pointers, passed on.
    unsafe {
        state_match_with(workspace, globs, globs_len, refs_json, error, |ws, g| {
            ws.state_match(g)
        })
    }
}

/// `ocuroot state match --no-links <glob>...`: as `ocuroot_state_match`,
/// without links and the refs reached through one (each document once, at
/// its own ref).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_state_match_no_links(
    workspace: *const ocuroot_workspace,
    globs: *const *const c_char,
    globs_len: usize,
    refs_json: *mut *mut c_char,
    error: *mut *mut ocuroot_error,
) -> ocuroot_result {
    // SAFETY: the caller's pointers, passed on.
    unsafe {
        state_match_with(workspace, globs, globs_len, refs_json, error, |ws, g| {
            ws.state_match_no_links(g)
        })
    }
}

/// The state match operations: read the globs, run `op`, hand out its refs.
///
/// # Safety
/// As `ocuroot_state_match`.
unsafe fn state_match_with(
    workspace: *const ocuroot_workspace,
    globs: *const *const c_char,
    globs_len: usize,
    refs_json: *mut *mut c_char,
    error: *mut *mut ocuroot_error,
    op: fn(&Workspace, &[&str]) -> ocuroot_core::Result<Vec<String>>,
) -> ocuroot_result {
    boundary(error, || {
        // SAFETY: a workspace from this library.
        let ws = unsafe { arg_ref(workspace, "workspace") }?;
        let out = arg_out(refs_json, "refs_json")?;
        let patterns: Vec<&str> = if globs_len == 0 {
            Vec::new()
        } else {
            if globs.is_null() {
                return Err(Failure::null("globs"));
            }
            // SAFETY: the caller passes `globs_len` readable pointers.
            let ptrs = unsafe { std::slice::from_raw_parts(globs, globs_len) };
            ptrs.iter()
                .enumerate()
                // SAFETY: each a NUL-terminated string from the caller.
                .map(|(i, &p)| unsafe { arg_str(p, &format!("globs[{i}]")) })
                .collect::<Result<_, _>>()?
        };
        give_json(out, &op(&ws.inner, &patterns)?)
    })
}

/// `ocuroot state gc`: pack the clones of this repository's git stores
/// under `OCUROOT_HOME` (one pack each), and remove the other clones there
/// that no command has used for `unused_for_secs` seconds (remotes no longer
/// configured; 0 removes every other clone). On success `*report_json`
/// receives `{"home", "packed": [{"clone", "objects", "bytes_before",
/// "bytes_after"}], "removed": [<clone>...]}`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_state_gc(
    workspace: *const ocuroot_workspace,
    unused_for_secs: u64,
    report_json: *mut *mut c_char,
    error: *mut *mut ocuroot_error,
) -> ocuroot_result {
    boundary(error, || {
        // SAFETY: a workspace from this library.
        let ws = unsafe { arg_ref(workspace, "workspace") }?;
        let out = arg_out(report_json, "report_json")?;
        let report = ws
            .inner
            .state_gc(std::time::Duration::from_secs(unused_for_secs))?;
        give_json(out, &report)
    })
}

/// `ocuroot find-deploys <start> <end>`: the deployments of this
/// repository's packages (`<repo>/-/<package>/@/deploy/<environment>`)
/// whose release was made at one of the commits from `start` to `end`,
/// both included (either may be the older; any revision git takes names
/// one). On success
/// `*deploys_json` receives a JSON array of `{"ref", "release", "commit"}`,
/// newest commit first, then by ref. A commit the repository lacks is
/// `OCUROOT_RESULT_NOT_FOUND`; nothing is fetched.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_find_deploys(
    workspace: *const ocuroot_workspace,
    start: *const c_char,
    end: *const c_char,
    deploys_json: *mut *mut c_char,
    error: *mut *mut ocuroot_error,
) -> ocuroot_result {
    boundary(error, || {
        // SAFETY: pointers from the caller.
        let (ws, start, out) =
            unsafe { op_args(workspace, start, "start", deploys_json, "deploys_json") }?;
        // SAFETY: a pointer from the caller.
        let end = unsafe { arg_str(end, "end") }?;
        give_json(out, &ws.find_deploys(start, end)?)
    })
}

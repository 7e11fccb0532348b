//! `push`: from the repository (release what changed, then cascade), and
//! from a checkout of an intent branch (apply the intent that changed).

use std::ffi::c_char;

use crate::error::{ocuroot_error, ocuroot_result};
use crate::workspace::{json_op, ocuroot_workspace};

/// `ocuroot push`: release every package file changed since the last push
/// (all of them the first time; also the packages whose runs watch a
/// prefix of a changed path; not those `release_ignore` matches), follow
/// what they changed as `ocuroot_cascade` does, and record the push at
/// `<repo>/-/repo.ocu.star/@<commit>/push/index`. Refused
/// (`OCUROOT_RESULT_INVALID_INPUT`) with uncommitted or untracked changes,
/// and in a checkout of a store (there, `ocuroot_push_intent`). With
/// `dryrun`, only list the packages, changing nothing.
///
/// On success `*outcome_json` receives `{"commit", "previous_commit",
/// "packages": [{"package", "reason", "release", "error"}], "cascade",
/// "index", "dryrun"}` (`previous_commit`, a package's `release` and
/// `error`, and `index` only when they apply; `release` is what
/// `ocuroot_release_new` gives, `cascade` what `ocuroot_cascade` gives).
/// The work failed when a package has an `error`, a release's status is
/// `failed` or the cascade's `stopped` is not empty; that is not a failed
/// call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_push(
    workspace: *const ocuroot_workspace,
    dryrun: bool,
    outcome_json: *mut *mut c_char,
    error: *mut *mut ocuroot_error,
) -> ocuroot_result {
    // SAFETY: pointers from the caller.
    unsafe {
        json_op(workspace, outcome_json, "outcome_json", error, |ws| {
            ws.push(dryrun)
        })
    }
}

/// `ocuroot push` in a checkout of an intent branch (a workspace opened in
/// a directory whose `.ocuroot-store` says `intent`): apply the intent
/// changed on the intent branch since the last such push (the whole of
/// `ocuroot_state_diff` the first time, or when the store cannot tell what
/// changed since), and record the commit applied at `@/push/intent_commit`
/// in the intent store. The commit applied is the branch's tip as the
/// intent store reads it from the remote, which the checkout may be behind.
/// Refused (`OCUROOT_RESULT_INVALID_INPUT`) anywhere else, and with
/// uncommitted changes. With `dryrun`, only list the refs.
///
/// On success `*outcome_json` receives `{"commit", "checkout_commit",
/// "previous_commit", "refs", "outcome", "dryrun"}` (`checkout_commit` only
/// when the checkout is not at `commit`, `previous_commit` only when there
/// was a push before; `outcome` as `ocuroot_state_apply` gives it).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_push_intent(
    workspace: *const ocuroot_workspace,
    dryrun: bool,
    outcome_json: *mut *mut c_char,
    error: *mut *mut ocuroot_error,
) -> ocuroot_result {
    // SAFETY: pointers from the caller.
    unsafe {
        json_op(workspace, outcome_json, "outcome_json", error, |ws| {
            ws.push_intent(dryrun)
        })
    }
}

//! The C ABI of Ocuroot: `include/ocuroot.h`, generated from this crate by
//! cbindgen, and `libocuroot.so` / `libocuroot.a`.
//!
//! A C program opens a workspace (a git repository with `*.ocu.star`
//! files), optionally with its own shell runner, store and event callbacks,
//! and drives releases with the same operations as the CLI:
//! `ocuroot_release_new`, `_continue`, `_retry`, `_takeover`,
//! `ocuroot_release_lint`, `ocuroot_state_get`, `_read`, `_match`, `_set`,
//! `_apply`, and follows changes to the deployments that read them:
//! `ocuroot_cascade`, `ocuroot_work_cascade`, `ocuroot_plan`,
//! `ocuroot_work_trigger`, `ocuroot_push`. Results are JSON strings the
//! caller frees with [`ocuroot_string_free`], one string per result, in the
//! forms `include/ocuroot-json.md` lists field by field. The header's top
//! comment states the rules for ownership, lifetimes, threads and errors;
//! `examples/c/` runs the quickstart release with a C shell callback and a
//! C in-memory store, and an agent (`agent.c`) that fails, retries,
//! approves and rolls back a release.
//!
//! Every exported function checks its pointers for NULL and its strings
//! for UTF-8, and runs inside a panic boundary: nothing unwinds into C.
//!
//! # Safety
//!
//! One contract covers every `unsafe extern "C"` function here, so it is
//! stated once (and in the header) rather than on each: a pointer argument
//! is NULL or points to what its type says, alive for the call (a handle
//! this library made and has not freed; a NUL-terminated string; `len`
//! readable bytes or elements); a handle is freed once; a pointer passed to
//! a callback is used only during that callback.
#![allow(clippy::missing_safety_doc)]

mod callbacks;
mod error;
mod intent;
mod push;
mod state;
mod workspace;

use std::ffi::{CString, c_char};

pub use callbacks::{
    OCUROOT_EXPECT_ABSENT, OCUROOT_EXPECT_ANY, OCUROOT_EXPECT_VERSION, OCUROOT_OP_CHECK,
    OCUROOT_OP_DELETE, OCUROOT_OP_PUT, OCUROOT_STREAM_STDERR, OCUROOT_STREAM_STDOUT,
    ocuroot_event_fn, ocuroot_finalize_fn, ocuroot_shell_fn, ocuroot_shell_output,
    ocuroot_shell_output_set_error, ocuroot_shell_output_set_exit_code, ocuroot_shell_output_write,
    ocuroot_shell_request, ocuroot_store_callbacks, ocuroot_store_commit_fn, ocuroot_store_get_fn,
    ocuroot_store_list_fn, ocuroot_store_op, ocuroot_store_reply, ocuroot_store_reply_add_key,
    ocuroot_store_reply_set_error, ocuroot_store_reply_set_value,
};
pub use error::{
    ocuroot_error, ocuroot_error_code, ocuroot_error_column, ocuroot_error_file,
    ocuroot_error_free, ocuroot_error_kind, ocuroot_error_line, ocuroot_error_message,
    ocuroot_error_stack, ocuroot_result,
};
pub use intent::{
    ocuroot_state_apply, ocuroot_state_checkpoint, ocuroot_state_delete, ocuroot_state_diff,
    ocuroot_state_set, ocuroot_work_any, ocuroot_work_any_comprehensive, ocuroot_work_continue,
    ocuroot_work_ops,
};
pub use push::{ocuroot_push, ocuroot_push_intent};
pub use state::{
    ocuroot_find_deploys, ocuroot_state_gc, ocuroot_state_get, ocuroot_state_match,
    ocuroot_state_match_no_links, ocuroot_state_read, ocuroot_workspace_refresh,
};
#[allow(deprecated)]
pub use workspace::ocuroot_lint;
pub use workspace::{
    ocuroot_cascade, ocuroot_plan, ocuroot_release_continue, ocuroot_release_lint,
    ocuroot_release_new, ocuroot_release_retry, ocuroot_release_status, ocuroot_release_takeover,
    ocuroot_work_cascade, ocuroot_work_trigger, ocuroot_work_trigger_intent, ocuroot_workspace,
    ocuroot_workspace_free, ocuroot_workspace_open, ocuroot_workspace_options,
    ocuroot_workspace_options_free, ocuroot_workspace_options_new,
    ocuroot_workspace_options_set_events, ocuroot_workspace_options_set_intent_store,
    ocuroot_workspace_options_set_limit, ocuroot_workspace_options_set_max_attempts,
    ocuroot_workspace_options_set_parallel, ocuroot_workspace_options_set_run_lease_ms,
    ocuroot_workspace_options_set_shell, ocuroot_workspace_options_set_store,
};

/// The library's version (`0.1.0`), a static string.
#[unsafe(no_mangle)]
pub extern "C" fn ocuroot_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Free a string the library returned. NULL does nothing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ocuroot_string_free(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: a string this library made with `CString::into_raw`,
        // freed once.
        error::quiet((), || drop(unsafe { CString::from_raw(s) }));
    }
}

// A workspace handle may be used from several threads at once (the header
// says so).
const _: () = {
    const fn shared<T: Send + Sync>() {}
    shared::<ocuroot_workspace>();
};

//! The C ABI called as C calls it: raw pointers, NUL-terminated strings,
//! `extern "C"` callbacks with userdata. Covers bad arguments, callback
//! failures and store conflicts; `examples/c` is the same from real C.

use std::collections::BTreeMap;
use std::ffi::{CStr, c_char, c_void};
use std::path::Path;
use std::ptr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use ocuroot::*;

mod common;
use common::{c, take, take_error};

/// A git repository with `files`, in a temp dir.
fn repo(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    let status = std::process::Command::new("git")
        .args(["init", "--quiet"])
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    dir
}

const RELEASE: &str = r#"
def build():
    host.shell("make build")
    return done(outputs={"tag": "v1"})

def ship(tag):
    host.shell("ship " + tag)
    return done()

phase("build", tasks=[task(build, name="build")])
phase("ship", tasks=[task(ship, name="ship", inputs={"tag": input(ref="./task/build#output/tag")})])
"#;

/// What the test callbacks share: commands seen, a store, conflicts to
/// inject, whether the shell fails.
#[derive(Default)]
struct World {
    commands: Mutex<Vec<String>>,
    store: Mutex<BTreeMap<String, (Vec<u8>, u64)>>,
    next_version: AtomicUsize,
    conflicts_left: AtomicUsize,
    conflicts_seen: AtomicUsize,
    fail_shell: std::sync::atomic::AtomicBool,
    finalized: AtomicUsize,
    events: Mutex<Vec<serde_json::Value>>,
}

fn world(ud: *mut c_void) -> &'static World {
    // SAFETY: the tests pass a `World` that outlives the workspace.
    unsafe { &*(ud as *const World) }
}

unsafe extern "C" fn shell(
    ud: *mut c_void,
    req: *const ocuroot_shell_request,
    out: *mut ocuroot_shell_output,
) -> u32 {
    let w = world(ud);
    // SAFETY: the request the library passes.
    let req = unsafe { &*req };
    // SAFETY: a NUL-terminated string.
    let command = unsafe { CStr::from_ptr(req.command) }.to_str().unwrap();
    w.commands.lock().unwrap().push(command.to_string());
    if w.fail_shell.load(Ordering::SeqCst) {
        let msg = c("no runner is available for this command");
        // SAFETY: the output the library passes.
        unsafe { ocuroot_shell_output_set_error(out, msg.as_ptr(), ptr::null_mut()) };
        return 1;
    }
    let text = format!("ran {command}\n");
    // SAFETY: the output the library passes, `text.len()` bytes.
    unsafe {
        ocuroot_shell_output_write(
            out,
            OCUROOT_STREAM_STDOUT,
            text.as_ptr().cast(),
            text.len(),
            ptr::null_mut(),
        );
        ocuroot_shell_output_set_exit_code(out, 0, ptr::null_mut());
    }
    ocuroot_result::Ok as u32
}

unsafe extern "C" fn on_event(ud: *mut c_void, json: *const c_char) {
    // SAFETY: a NUL-terminated string, valid during the call.
    let json = unsafe { CStr::from_ptr(json) }.to_str().unwrap();
    world(ud)
        .events
        .lock()
        .unwrap()
        .push(serde_json::from_str(json).unwrap());
}

unsafe extern "C" fn finalize(ud: *mut c_void) {
    world(ud).finalized.fetch_add(1, Ordering::SeqCst);
}

unsafe extern "C" fn store_get(
    ud: *mut c_void,
    key: *const c_char,
    reply: *mut ocuroot_store_reply,
) -> u32 {
    // SAFETY: a NUL-terminated key.
    let key = unsafe { CStr::from_ptr(key) }.to_str().unwrap();
    if let Some((value, version)) = world(ud).store.lock().unwrap().get(key) {
        // SAFETY: the reply the library passes.
        unsafe {
            ocuroot_store_reply_set_value(
                reply,
                value.as_ptr(),
                value.len(),
                *version,
                ptr::null_mut(),
            )
        };
    }
    ocuroot_result::Ok as u32
}

unsafe extern "C" fn store_list(
    ud: *mut c_void,
    prefix: *const c_char,
    reply: *mut ocuroot_store_reply,
) -> u32 {
    // SAFETY: a NUL-terminated prefix.
    let prefix = unsafe { CStr::from_ptr(prefix) }.to_str().unwrap();
    for key in world(ud).store.lock().unwrap().keys() {
        if key.starts_with(prefix) {
            let key = c(key);
            // SAFETY: the reply the library passes.
            unsafe { ocuroot_store_reply_add_key(reply, key.as_ptr(), ptr::null_mut()) };
        }
    }
    ocuroot_result::Ok as u32
}

unsafe extern "C" fn store_commit(
    ud: *mut c_void,
    ops: *const ocuroot_store_op,
    len: usize,
    reply: *mut ocuroot_store_reply,
) -> u32 {
    let w = world(ud);
    // SAFETY: `len` ops from the library.
    let ops = unsafe { std::slice::from_raw_parts(ops, len) };
    let mut store = w.store.lock().unwrap();
    let key_of = |op: &ocuroot_store_op| {
        // SAFETY: a NUL-terminated key.
        unsafe { CStr::from_ptr(op.key) }
            .to_str()
            .unwrap()
            .to_string()
    };
    let conflict = |key: &str| {
        w.conflicts_seen.fetch_add(1, Ordering::SeqCst);
        let msg = c(&format!("{key} changed meanwhile"));
        // SAFETY: the reply the library passes.
        unsafe { ocuroot_store_reply_set_error(reply, msg.as_ptr(), ptr::null_mut()) };
        ocuroot_result::Conflict as u32
    };
    // Injected conflicts first: the engine must read again and retry.
    if w.conflicts_left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return conflict(&key_of(&ops[0]));
    }
    // Check in order against the batch so far, then apply.
    let mut view: BTreeMap<String, Option<u64>> = BTreeMap::new();
    for op in ops {
        let key = key_of(op);
        let current = view
            .get(&key)
            .copied()
            .unwrap_or_else(|| store.get(&key).map(|(_, v)| *v));
        let ok = match op.expect {
            OCUROOT_EXPECT_ANY => true,
            OCUROOT_EXPECT_ABSENT => current.is_none(),
            OCUROOT_EXPECT_VERSION => current == Some(op.version),
            _ => false,
        };
        if !ok {
            return conflict(&key);
        }
        match op.kind {
            OCUROOT_OP_PUT => view.insert(key, Some(u64::MAX)),
            OCUROOT_OP_DELETE => view.insert(key, None),
            _ => None,
        };
    }
    for op in ops {
        let key = key_of(op);
        match op.kind {
            OCUROOT_OP_PUT => {
                let version = w.next_version.fetch_add(1, Ordering::SeqCst) as u64 + 1;
                // SAFETY: `value_len` bytes from the library.
                let value = unsafe { std::slice::from_raw_parts(op.value, op.value_len) };
                store.insert(key, (value.to_vec(), version));
            }
            OCUROOT_OP_DELETE => {
                store.remove(&key);
            }
            _ => {}
        }
    }
    ocuroot_result::Ok as u32
}

/// Options with the test shell and store over `w`.
fn options(w: &World, parallel: usize) -> *mut ocuroot_workspace_options {
    let ud = w as *const World as *mut c_void;
    let opts = ocuroot_workspace_options_new();
    let callbacks = ocuroot_store_callbacks {
        userdata: ud,
        get: Some(store_get),
        list: Some(store_list),
        commit: Some(store_commit),
        finalize: Some(finalize),
    };
    // SAFETY: valid options and callbacks.
    unsafe {
        assert_eq!(
            ocuroot_workspace_options_set_shell(
                opts,
                Some(shell),
                ud,
                Some(finalize),
                ptr::null_mut()
            ),
            ocuroot_result::Ok
        );
        assert_eq!(
            ocuroot_workspace_options_set_store(opts, &callbacks, ptr::null_mut()),
            ocuroot_result::Ok
        );
        assert_eq!(
            ocuroot_workspace_options_set_parallel(opts, parallel, ptr::null_mut()),
            ocuroot_result::Ok
        );
    }
    opts
}

fn open(dir: &Path, opts: *const ocuroot_workspace_options) -> *mut ocuroot_workspace {
    let path = c(dir.to_str().unwrap());
    let mut ws = ptr::null_mut();
    let mut err = ptr::null_mut();
    // SAFETY: valid arguments.
    let code = unsafe { ocuroot_workspace_open(path.as_ptr(), opts, &mut ws, &mut err) };
    if code != ocuroot_result::Ok {
        panic!("open failed: {:?}", take_error(err));
    }
    ws
}

fn release_new(ws: *mut ocuroot_workspace, file: &str) -> serde_json::Value {
    let file = c(file);
    let mut json = ptr::null_mut();
    let mut err = ptr::null_mut();
    // SAFETY: valid arguments.
    let code = unsafe { ocuroot_release_new(ws, file.as_ptr(), false, &mut json, &mut err) };
    if code != ocuroot_result::Ok {
        panic!("release_new failed: {:?}", take_error(err));
    }
    serde_json::from_str(&take(json)).unwrap()
}

#[test]
fn a_release_through_c_callbacks_keeps_all_state_in_the_callback_store() {
    let dir = repo(&[
        ("repo.ocu.star", "repo_alias(\"c\")\n"),
        ("release.ocu.star", RELEASE),
    ]);
    let w = World::default();
    let opts = options(&w, 2);
    let ud = &w as *const World as *mut c_void;
    // SAFETY: valid options and callback.
    let code = unsafe {
        ocuroot_workspace_options_set_events(
            opts,
            Some(on_event),
            ud,
            Some(finalize),
            ptr::null_mut(),
        )
    };
    assert_eq!(code, ocuroot_result::Ok);
    let ws = open(dir.path(), opts);
    let report = release_new(ws, "release.ocu.star");
    assert_eq!(report["kind"], "release");
    assert_eq!(report["status"], "complete", "{report}");
    assert_eq!(*w.commands.lock().unwrap(), ["make build", "ship v1"]);
    // Everything is in the callback store, under state/ (nothing on disk).
    let keys: Vec<String> = w.store.lock().unwrap().keys().cloned().collect();
    assert!(keys.iter().all(|k| k.starts_with("state/")), "{keys:?}");
    assert!(
        keys.iter()
            .any(|k| k.ends_with("@r1/task/ship/1/status/complete")),
        "{keys:?}"
    );
    assert!(!dir.path().join(".store").exists());
    // What the shell callback wrote reached the run's log, as events.
    let events = w.events.lock().unwrap().clone();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    // The release's totals come first, before any run starts.
    assert_eq!(
        events[0],
        serde_json::json!({
            "event": "release_started",
            "release": "c/-/release.ocu.star/@r1",
            "total": 2,
            "complete": 0,
            "failed": 0,
        })
    );
    assert_eq!(kinds.iter().filter(|k| **k == "release_started").count(), 1);
    assert_eq!(
        kinds.iter().filter(|k| **k == "run_started").count(),
        2,
        "{events:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "run_finished").count(),
        2,
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| e["event"] == "log"
            && e["work"] == "task/build"
            && e["line"]["message"] == "ran make build"),
        "{events:?}"
    );

    // state_get and state_match read it back; an absent ref gives NULL.
    let r = c("c/-/release.ocu.star/@r1/task/build#output/tag");
    let mut json = ptr::null_mut();
    // SAFETY: valid arguments.
    unsafe {
        assert_eq!(
            ocuroot_state_get(ws, r.as_ptr(), &mut json, ptr::null_mut()),
            ocuroot_result::Ok
        );
        assert_eq!(take(json), "\"v1\"");
        let absent = c("c/-/release.ocu.star/@r9");
        let mut none = c"sentinel".as_ptr().cast_mut();
        assert_eq!(
            ocuroot_state_get(ws, absent.as_ptr(), &mut none, ptr::null_mut()),
            ocuroot_result::Ok
        );
        assert!(none.is_null());
        let glob = c("c/-/release.ocu.star/@r1/task/*");
        let globs = [glob.as_ptr()];
        assert_eq!(
            ocuroot_state_match(ws, globs.as_ptr(), 1, &mut json, ptr::null_mut()),
            ocuroot_result::Ok
        );
        assert_eq!(
            take(json),
            r#"["c/-/release.ocu.star/@r1/task/build","c/-/release.ocu.star/@r1/task/ship"]"#
        );
    }

    // The finalizers (shell, store and events) run once each, when both the
    // options and the workspace are gone.
    // SAFETY: freed once each.
    unsafe { ocuroot_workspace_options_free(opts) };
    assert_eq!(w.finalized.load(Ordering::SeqCst), 0);
    // SAFETY: freed once.
    unsafe { ocuroot_workspace_free(ws) };
    assert_eq!(w.finalized.load(Ordering::SeqCst), 3);
}

#[test]
fn a_shell_callback_error_fails_the_run_with_its_message_and_retry_runs_it_again() {
    let dir = repo(&[
        ("repo.ocu.star", "repo_alias(\"c\")\n"),
        ("release.ocu.star", RELEASE),
    ]);
    let w = World::default();
    w.fail_shell.store(true, Ordering::SeqCst);
    let opts = options(&w, 1);
    let ws = open(dir.path(), opts);
    let report = release_new(ws, "release.ocu.star");
    assert_eq!(report["status"], "failed", "{report}");
    let build = &report["work"][0];
    assert_eq!(build["path"], "task/build");
    assert_eq!(build["state"], "failed");
    let error = build["error"].as_str().unwrap();
    assert!(
        error.contains("no runner is available for this command") && error.contains("make build"),
        "{error}"
    );
    // The later phase never started.
    assert_eq!(*w.commands.lock().unwrap(), ["make build"]);

    // Once the shell works, a retry runs the failed work again and the rest
    // of the release after it; continuing a complete release does nothing.
    w.fail_shell.store(false, Ordering::SeqCst);
    let release = c("c/-/release.ocu.star/@r1");
    let mut json = ptr::null_mut();
    // SAFETY: valid arguments.
    unsafe {
        assert_eq!(
            ocuroot_release_retry(ws, release.as_ptr(), &mut json, ptr::null_mut()),
            ocuroot_result::Ok
        );
        let report: serde_json::Value = serde_json::from_str(&take(json)).unwrap();
        assert_eq!(report["status"], "complete", "{report}");
        assert_eq!(report["work"][0]["run"], 2);
        assert_eq!(
            ocuroot_release_continue(ws, release.as_ptr(), &mut json, ptr::null_mut()),
            ocuroot_result::Ok
        );
        let report: serde_json::Value = serde_json::from_str(&take(json)).unwrap();
        assert_eq!(report["status"], "complete", "{report}");
    }
    assert_eq!(
        *w.commands.lock().unwrap(),
        ["make build", "make build", "ship v1"]
    );
    // SAFETY: freed once each.
    unsafe {
        ocuroot_workspace_free(ws);
        ocuroot_workspace_options_free(opts);
    }
}

/// `ocuroot_release_status` reads a release's report from the callback
/// store: no shell command, no commit; an unknown release is not found.
#[test]
fn release_status_reads_the_report_without_running_or_writing() {
    let dir = repo(&[
        ("repo.ocu.star", "repo_alias(\"c\")\n"),
        ("release.ocu.star", RELEASE),
    ]);
    let w = World::default();
    w.fail_shell.store(true, Ordering::SeqCst);
    let opts = options(&w, 1);
    let ws = open(dir.path(), opts);
    let mut created = release_new(ws, "release.ocu.star");
    assert_eq!(created["status"], "failed", "{created}");
    created.as_object_mut().unwrap().remove("kind");
    w.fail_shell.store(false, Ordering::SeqCst);
    let store = w.store.lock().unwrap().clone();
    let commands = w.commands.lock().unwrap().clone();

    let mut json = ptr::null_mut();
    let mut err = ptr::null_mut();
    for arg in ["c/-/release.ocu.star/@r1", "release.ocu.star"] {
        let release = c(arg);
        // SAFETY: valid arguments.
        let code = unsafe { ocuroot_release_status(ws, release.as_ptr(), &mut json, &mut err) };
        assert_eq!(code, ocuroot_result::Ok, "{arg}");
        let report: serde_json::Value = serde_json::from_str(&take(json)).unwrap();
        assert_eq!(report, created, "{arg}");
        assert_eq!(report["work"][0]["state"], "failed");
        assert_eq!(report["work"][1]["state"], "waiting");
    }
    assert!(*w.store.lock().unwrap() == store, "release status wrote");
    assert_eq!(*w.commands.lock().unwrap(), commands, "release status ran");

    let unknown = c("c/-/release.ocu.star/@r9");
    json = ptr::null_mut();
    // SAFETY: valid arguments.
    let code = unsafe { ocuroot_release_status(ws, unknown.as_ptr(), &mut json, &mut err) };
    assert_eq!(code, ocuroot_result::NotFound);
    assert!(json.is_null());
    let (code, message) = take_error(err);
    assert_eq!(code, ocuroot_result::NotFound);
    assert!(message.contains("c/-/release.ocu.star/@r9"), "{message}");
    // SAFETY: freed once each.
    unsafe {
        ocuroot_workspace_free(ws);
        ocuroot_workspace_options_free(opts);
    }
}

#[test]
fn store_conflicts_are_retried_and_a_lasting_one_is_reported_as_a_conflict() {
    let dir = repo(&[
        ("repo.ocu.star", "repo_alias(\"c\")\n"),
        ("release.ocu.star", RELEASE),
    ]);
    // A few conflicts: the engine reads again and the release completes.
    let w = World::default();
    w.conflicts_left.store(3, Ordering::SeqCst);
    let opts = options(&w, 1);
    let ws = open(dir.path(), opts);
    let report = release_new(ws, "release.ocu.star");
    assert_eq!(report["status"], "complete", "{report}");
    assert_eq!(w.conflicts_seen.load(Ordering::SeqCst), 3);
    // SAFETY: freed once each.
    unsafe {
        ocuroot_workspace_free(ws);
        ocuroot_workspace_options_free(opts);
    }

    // A store that always conflicts: the call fails with the conflict code
    // and the store's message, and nothing was written.
    let w = World::default();
    w.conflicts_left.store(usize::MAX, Ordering::SeqCst);
    let opts = options(&w, 1);
    let ws = open(dir.path(), opts);
    let file = c("release.ocu.star");
    let mut json = ptr::null_mut();
    let mut err = ptr::null_mut();
    // SAFETY: valid arguments.
    let code = unsafe { ocuroot_release_new(ws, file.as_ptr(), false, &mut json, &mut err) };
    assert_eq!(code, ocuroot_result::Conflict);
    assert!(json.is_null(), "no result on failure");
    let (code, message) = take_error(err);
    assert_eq!(code, ocuroot_result::Conflict);
    assert!(message.contains("changed meanwhile"), "{message}");
    assert!(w.store.lock().unwrap().is_empty());
    // SAFETY: freed once each.
    unsafe {
        ocuroot_workspace_free(ws);
        ocuroot_workspace_options_free(opts);
    }
}

#[test]
fn null_arguments_are_refused_with_a_named_error() {
    let dir = repo(&[
        ("repo.ocu.star", "repo_alias(\"c\")\n"),
        ("release.ocu.star", RELEASE),
    ]);
    let ws = open(dir.path(), ptr::null());
    let file = c("release.ocu.star");
    let mut json = ptr::null_mut();
    let mut err = ptr::null_mut();
    // SAFETY: NULLs where the contract allows checking them.
    unsafe {
        assert_eq!(
            ocuroot_workspace_open(ptr::null(), ptr::null(), &mut ptr::null_mut(), &mut err),
            ocuroot_result::NullArgument
        );
        assert_eq!(
            take_error(err),
            (ocuroot_result::NullArgument, "path is NULL".into())
        );

        err = ptr::null_mut();
        assert_eq!(
            ocuroot_release_new(ptr::null(), file.as_ptr(), false, &mut json, &mut err),
            ocuroot_result::NullArgument
        );
        assert_eq!(take_error(err).1, "workspace is NULL");

        err = ptr::null_mut();
        assert_eq!(
            ocuroot_release_new(ws, ptr::null(), false, &mut json, &mut err),
            ocuroot_result::NullArgument
        );
        assert_eq!(take_error(err).1, "file is NULL");

        err = ptr::null_mut();
        assert_eq!(
            ocuroot_release_continue(ws, file.as_ptr(), ptr::null_mut(), &mut err),
            ocuroot_result::NullArgument
        );
        assert_eq!(take_error(err).1, "report_json is NULL");

        // Without an error out-parameter the code alone comes back.
        assert_eq!(
            ocuroot_state_match(ws, ptr::null(), 2, &mut json, ptr::null_mut()),
            ocuroot_result::NullArgument
        );
        let globs = [ptr::null::<c_char>()];
        err = ptr::null_mut();
        assert_eq!(
            ocuroot_state_match(ws, globs.as_ptr(), 1, &mut json, &mut err),
            ocuroot_result::NullArgument
        );
        assert_eq!(take_error(err).1, "globs[0] is NULL");

        // A store missing a callback, a shell callback that is NULL.
        let opts = ocuroot_workspace_options_new();
        let callbacks = ocuroot_store_callbacks {
            userdata: ptr::null_mut(),
            get: Some(store_get),
            list: None,
            commit: Some(store_commit),
            finalize: None,
        };
        err = ptr::null_mut();
        assert_eq!(
            ocuroot_workspace_options_set_store(opts, &callbacks, &mut err),
            ocuroot_result::NullArgument
        );
        assert_eq!(take_error(err).1, "list is NULL");
        assert_eq!(
            ocuroot_workspace_options_set_shell(opts, None, ptr::null_mut(), None, ptr::null_mut()),
            ocuroot_result::NullArgument
        );
        err = ptr::null_mut();
        assert_eq!(
            ocuroot_workspace_options_set_parallel(opts, 0, &mut err),
            ocuroot_result::InvalidArgument
        );
        assert_eq!(take_error(err).1, "parallel must be at least 1");

        // Accessors and _free accept NULL.
        assert!(ocuroot_error_message(ptr::null()).is_null());
        assert_eq!(
            ocuroot_error_code(ptr::null()),
            ocuroot_result::InvalidArgument
        );
        assert_eq!(ocuroot_error_line(ptr::null()), 0);
        ocuroot_error_free(ptr::null_mut());
        ocuroot_string_free(ptr::null_mut());
        ocuroot_workspace_free(ptr::null_mut());
        ocuroot_workspace_options_free(ptr::null_mut());
        ocuroot_workspace_options_free(opts);
        ocuroot_workspace_free(ws);
    }
}

#[test]
fn invalid_utf8_is_refused() {
    let dir = repo(&[
        ("repo.ocu.star", "repo_alias(\"c\")\n"),
        ("release.ocu.star", RELEASE),
    ]);
    let ws = open(dir.path(), ptr::null());
    let bad = b"release\xff.ocu.star\0";
    let mut json = ptr::null_mut();
    let mut err = ptr::null_mut();
    // SAFETY: a NUL-terminated (non-UTF-8) string.
    unsafe {
        assert_eq!(
            ocuroot_release_new(ws, bad.as_ptr().cast(), false, &mut json, &mut err),
            ocuroot_result::InvalidUtf8
        );
        let (_, message) = take_error(err);
        assert!(message.starts_with("file is not valid UTF-8"), "{message}");
        err = ptr::null_mut();
        assert_eq!(
            ocuroot_state_get(ws, bad.as_ptr().cast(), &mut json, &mut err),
            ocuroot_result::InvalidUtf8
        );
        assert!(take_error(err).1.starts_with("ref is not valid UTF-8"));
        assert!(json.is_null());
        ocuroot_workspace_free(ws);
    }
}

#[test]
fn an_evaluation_error_has_its_location_and_kind() {
    let dir = repo(&[
        ("repo.ocu.star", "repo_alias(\"c\")\n"),
        (
            "broken.ocu.star",
            "def f():\n    return done()\n\ntask(f, name=1 +)\n",
        ),
    ]);
    let ws = open(dir.path(), ptr::null());
    let file = c("broken.ocu.star");
    let mut json = ptr::null_mut();
    let mut err = ptr::null_mut();
    // SAFETY: valid arguments, then an error from the library.
    unsafe {
        assert_eq!(
            ocuroot_release_lint(ws, file.as_ptr(), &mut json, &mut err),
            ocuroot_result::Eval
        );
        assert_eq!(
            CStr::from_ptr(ocuroot_error_kind(err)).to_str().unwrap(),
            "eval"
        );
        assert_eq!(
            CStr::from_ptr(ocuroot_error_file(err)).to_str().unwrap(),
            "broken.ocu.star"
        );
        assert_eq!(ocuroot_error_line(err), 4);
        assert!(ocuroot_error_column(err) > 0);
        let message = CStr::from_ptr(ocuroot_error_message(err)).to_str().unwrap();
        assert!(message.contains("broken.ocu.star:4:"), "{message}");
        ocuroot_error_free(err);
        ocuroot_workspace_free(ws);
    }
}

#[test]
fn the_version_is_the_crate_version() {
    // SAFETY: a static string.
    let v = unsafe { CStr::from_ptr(ocuroot_version()) };
    assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
}

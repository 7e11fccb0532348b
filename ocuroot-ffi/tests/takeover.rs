//! Runs left `running` by an agent that is gone, through the C ABI:
//! `ocuroot_release_takeover` breaks the claim whatever its lease says and
//! runs the release on, with an `Event:run_taken_over`; and
//! `ocuroot_workspace_options_set_run_lease_ms`.
//!
//! The agent "dies" by losing its store: the shell callback of its build
//! makes every commit fail, so the claim is written and the outcome never
//! is, which leaves the run `running` under a lease that has not expired.

use std::ffi::{CStr, c_char, c_void};
use std::ptr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use ocuroot::*;
use serde_json::{Value, json};

mod common;
use common::json_doc::JsonDoc;
use common::store::MapStore;
use common::{c, call_err, call_json, committed_repo, open_with, take_error};

const RELEASE: &str = r#"ocuroot("0.3.0")

def build():
    host.shell("build")
    return done(outputs={"version": "1.0"})

def ship(version):
    host.shell("ship " + version)
    return done()

phase("build", tasks=[task(build, name="build")])
phase("ship", tasks=[task(ship, name="ship", inputs={"version": input(ref="./task/build#output/version")})])
"#;

const REL: &str = "p/-/release.ocu.star/@r1";

/// What the callbacks share: the store, the commands run, the events, and
/// whether the next `build` loses the store.
#[derive(Default)]
struct World {
    store: MapStore,
    commands: Mutex<Vec<String>>,
    events: Mutex<Vec<Value>>,
    crash_on_build: AtomicBool,
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
    // SAFETY: the request the library passes; a NUL-terminated command.
    let command = unsafe { CStr::from_ptr((*req).command) }.to_str().unwrap();
    w.commands.lock().unwrap().push(command.to_string());
    if command == "build" && w.crash_on_build.swap(false, Ordering::SeqCst) {
        w.store.set_down(true);
    }
    // SAFETY: the output the library passes.
    unsafe { ocuroot_shell_output_set_exit_code(out, 0, ptr::null_mut()) };
    ocuroot_result::Ok as u32
}

unsafe extern "C" fn on_event(ud: *mut c_void, json: *const c_char) {
    // SAFETY: a NUL-terminated string, valid during the call.
    let json = unsafe { CStr::from_ptr(json) }.to_str().unwrap();
    let event = serde_json::from_str(json).unwrap();
    world(ud).events.lock().unwrap().push(event);
}

/// Options with the world's shell, store and events, one run at a time and
/// a lease of a minute: long enough that no claim expires in a test.
fn options(w: &World) -> *mut ocuroot_workspace_options {
    let ud = w as *const World as *mut c_void;
    let callbacks = w.store.callbacks();
    let opts = ocuroot_workspace_options_new();
    // SAFETY: valid options and callbacks; `w` outlives the workspaces.
    unsafe {
        for code in [
            ocuroot_workspace_options_set_shell(opts, Some(shell), ud, None, ptr::null_mut()),
            ocuroot_workspace_options_set_store(opts, &callbacks, ptr::null_mut()),
            ocuroot_workspace_options_set_events(opts, Some(on_event), ud, None, ptr::null_mut()),
            ocuroot_workspace_options_set_parallel(opts, 1, ptr::null_mut()),
            ocuroot_workspace_options_set_run_lease_ms(opts, 60_000, ptr::null_mut()),
        ] {
            assert_eq!(code, ocuroot_result::Ok);
        }
    }
    opts
}

type ReleaseFn = unsafe extern "C" fn(
    *const ocuroot_workspace,
    *const c_char,
    *mut *mut c_char,
    *mut *mut ocuroot_error,
) -> ocuroot_result;

/// Call `f` on the release `rel`, which must fail: its code and message.
fn release_err(ws: *mut ocuroot_workspace, rel: &str, f: ReleaseFn) -> (ocuroot_result, String) {
    let rel = c(rel);
    // SAFETY: valid arguments.
    call_err(|o, e| unsafe { f(ws, rel.as_ptr(), o, e) })
}

/// Call `f` on the release `rel`: its report.
fn release_ok(ws: *mut ocuroot_workspace, rel: &str, f: ReleaseFn) -> Value {
    let rel = c(rel);
    // SAFETY: valid arguments.
    call_json(|o, e| unsafe { f(ws, rel.as_ptr(), o, e) })
}

fn state_get(ws: *mut ocuroot_workspace, r: &str) -> Value {
    let r = c(r);
    // SAFETY: valid arguments.
    call_json(|o, e| unsafe { ocuroot_state_get(ws, r.as_ptr(), o, e) })
}

fn statuses(ws: *mut ocuroot_workspace, run: &str) -> Vec<String> {
    let glob = c(&format!("{run}/status/*"));
    let globs = [glob.as_ptr()];
    // SAFETY: valid arguments: one glob.
    let refs = call_json(|o, e| unsafe { ocuroot_state_match(ws, globs.as_ptr(), 1, o, e) });
    refs.as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().rsplit('/').next().unwrap().to_string())
        .collect()
}

#[test]
fn takeover_breaks_a_claim_whatever_its_lease_and_runs_the_release_on() {
    let dir = committed_repo(&[
        ("repo.ocu.star", "repo_alias(\"p\")\n"),
        ("release.ocu.star", RELEASE),
    ]);
    let w = World::default();
    let opts = options(&w);

    // The first agent claims the build, runs it, and loses its store.
    w.crash_on_build.store(true, Ordering::SeqCst);
    let crashed = open_with(dir.path(), opts);
    let file = c("release.ocu.star");
    // SAFETY: valid arguments.
    let (code, message) =
        call_err(|o, e| unsafe { ocuroot_release_new(crashed, file.as_ptr(), false, o, e) });
    assert_eq!(code, ocuroot_result::Store, "{message}");
    assert!(message.contains("the store is unreachable"), "{message}");
    // SAFETY: opened above, freed once.
    unsafe { ocuroot_workspace_free(crashed) };
    w.store.set_down(false);

    let ws = open_with(dir.path(), opts);
    // SAFETY: made above, freed once; the workspace keeps what it needs.
    unsafe { ocuroot_workspace_options_free(opts) };
    let build1 = format!("{REL}/task/build/1");
    assert_eq!(statuses(ws, &build1), ["running"]);
    let claim = state_get(ws, &format!("{build1}/status/running"));
    assert_eq!(claim["agent"]["pid"], json!(std::process::id()), "{claim}");
    assert!(claim["expires"].is_string(), "{claim}");

    // Its lease holds: a retry leaves the run alone and says what to do.
    let (code, message) = release_err(ws, REL, ocuroot_release_retry);
    assert_eq!(code, ocuroot_result::NothingToRetry, "{message}");
    assert!(
        message.contains("still running in other agents"),
        "{message}"
    );
    assert!(message.contains("release takeover"), "{message}");

    // A takeover breaks it, and the release runs to the end.
    w.events.lock().unwrap().clear();
    let report = release_ok(ws, "release.ocu.star", ocuroot_release_takeover);
    assert_eq!(report["status"], "complete", "{report}");
    assert_eq!(report["release"], REL, "{report}");
    let work: Vec<(&str, i64)> = report["work"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["path"].as_str().unwrap(), w["run"].as_i64().unwrap()))
        .collect();
    assert_eq!(work, [("task/build", 2), ("task/ship", 1)], "{report}");
    assert_eq!(*w.commands.lock().unwrap(), ["build", "build", "ship 1.0"]);

    // The old run is cancelled, with the takeover recorded on its marker.
    assert_eq!(statuses(ws, &build1), ["cancelled"]);
    assert_eq!(statuses(ws, &format!("{REL}/task/build/2")), ["complete"]);
    let marker = state_get(ws, &format!("{build1}/status/cancelled"));
    assert_eq!(
        marker["retried_by"],
        format!("{REL}/task/build/2"),
        "{marker}"
    );
    let taken = &marker["taken_over"];
    assert_eq!(taken["holder"], claim["agent"], "{marker}");
    assert_eq!(taken["by"]["pid"], json!(std::process::id()), "{marker}");
    assert!(taken["at"].is_string(), "{marker}");
    let reason = taken["reason"].as_str().unwrap();
    assert!(reason.contains("a person broke the claim"), "{reason}");

    // One event says so, in the documented form.
    let doc = JsonDoc::load();
    let events = w.events.lock().unwrap();
    let taken: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "run_taken_over")
        .collect();
    assert_eq!(taken.len(), 1, "{events:?}");
    let event = taken[0];
    doc.check("Event:run_taken_over", event);
    doc.check("Agent", &event["holder"]);
    assert_eq!(event["release"], REL);
    assert_eq!(event["work"], "task/build");
    assert_eq!(
        (event["run"].as_u64(), event["new_run"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(event["holder"], claim["agent"]);
    assert_eq!(event["reason"], reason);
    drop(events);

    // Nothing is running any more: nothing to take over.
    let (code, message) = release_err(ws, REL, ocuroot_release_takeover);
    assert_eq!(code, ocuroot_result::NothingToRetry);
    assert_eq!(code as u32, 212);
    assert!(message.contains("nothing to take over"), "{message}");
    assert_eq!(w.commands.lock().unwrap().len(), 3, "nothing ran again");

    // SAFETY: opened above, freed once.
    unsafe { ocuroot_workspace_free(ws) };
}

#[test]
fn takeover_and_the_lease_option_refuse_bad_arguments() {
    let dir = committed_repo(&[
        ("repo.ocu.star", "repo_alias(\"p\")\n"),
        ("release.ocu.star", RELEASE),
    ]);
    let w = World::default();
    let opts = options(&w);
    let ws = open_with(dir.path(), opts);
    let rel = c(REL);
    let mut out = ptr::null_mut();
    let mut err = ptr::null_mut();
    // SAFETY: NULLs where the contract allows checking them; otherwise
    // valid arguments.
    unsafe {
        assert_eq!(
            ocuroot_release_takeover(ptr::null(), rel.as_ptr(), &mut out, &mut err),
            ocuroot_result::NullArgument
        );
        assert_eq!(take_error(err).1, "workspace is NULL");
        err = ptr::null_mut();
        assert_eq!(
            ocuroot_release_takeover(ws, ptr::null(), &mut out, &mut err),
            ocuroot_result::NullArgument
        );
        assert_eq!(take_error(err).1, "release is NULL");
        err = ptr::null_mut();
        assert_eq!(
            ocuroot_release_takeover(ws, rel.as_ptr(), ptr::null_mut(), &mut err),
            ocuroot_result::NullArgument
        );
        assert_eq!(take_error(err).1, "report_json is NULL");
        err = ptr::null_mut();
        let bad = b"p/-/\xff\0";
        assert_eq!(
            ocuroot_release_takeover(ws, bad.as_ptr().cast(), &mut out, &mut err),
            ocuroot_result::InvalidUtf8
        );
        assert!(take_error(err).1.starts_with("release is not valid UTF-8"));
        assert!(out.is_null());

        // A release that does not exist.
        err = ptr::null_mut();
        assert_eq!(
            ocuroot_release_takeover(ws, rel.as_ptr(), &mut out, &mut err),
            ocuroot_result::NotFound
        );
        take_error(err);

        // The lease: 300 ms to a day, on options that exist.
        err = ptr::null_mut();
        assert_eq!(
            ocuroot_workspace_options_set_run_lease_ms(ptr::null_mut(), 1000, &mut err),
            ocuroot_result::NullArgument
        );
        assert_eq!(take_error(err).1, "options is NULL");
        for bad in [0, 1, 299, 86_400_001, u64::MAX] {
            err = ptr::null_mut();
            assert_eq!(
                ocuroot_workspace_options_set_run_lease_ms(opts, bad, &mut err),
                ocuroot_result::InvalidArgument,
                "{bad}"
            );
            assert_eq!(
                take_error(err).1,
                "run_lease_ms must be at least 300 and at most 86400000 (a day)"
            );
        }
        for good in [300, 86_400_000] {
            assert_eq!(
                ocuroot_workspace_options_set_run_lease_ms(opts, good, ptr::null_mut()),
                ocuroot_result::Ok
            );
        }
        ocuroot_workspace_options_free(opts);
        ocuroot_workspace_free(ws);
    }
}

#[test]
fn a_short_lease_lets_the_next_agent_take_the_run_over_by_itself() {
    let dir = committed_repo(&[
        ("repo.ocu.star", "repo_alias(\"p\")\n"),
        ("release.ocu.star", RELEASE),
    ]);
    let w = World::default();
    let opts = options(&w);
    // SAFETY: options made above.
    let code = unsafe { ocuroot_workspace_options_set_run_lease_ms(opts, 300, ptr::null_mut()) };
    assert_eq!(code, ocuroot_result::Ok);
    w.crash_on_build.store(true, Ordering::SeqCst);
    let ws = open_with(dir.path(), opts);
    // SAFETY: made above, freed once.
    unsafe { ocuroot_workspace_options_free(opts) };
    let file = c("release.ocu.star");
    // SAFETY: valid arguments.
    let (code, _) = call_err(|o, e| unsafe { ocuroot_release_new(ws, file.as_ptr(), false, o, e) });
    assert_eq!(code, ocuroot_result::Store);
    w.store.set_down(false);

    // Once the lease has run out, a retry takes the run over: no takeover
    // is needed.
    std::thread::sleep(std::time::Duration::from_millis(700));
    let report = release_ok(ws, REL, ocuroot_release_retry);
    assert_eq!(report["status"], "complete", "{report}");
    assert_eq!(report["work"][0]["run"], 2, "{report}");
    let marker = state_get(ws, &format!("{REL}/task/build/1/status/cancelled"));
    let reason = marker["taken_over"]["reason"].as_str().unwrap();
    assert!(reason.contains("lease expired"), "{reason}");
    // SAFETY: opened above, freed once.
    unsafe { ocuroot_workspace_free(ws) };
}

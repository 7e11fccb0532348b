//! `include/ocuroot-json.md` against the library: every result type it
//! documents is produced through the C functions and checked against its
//! table (every field the result has is listed; every field listed as
//! always present is there), so the page cannot drift from the code. The
//! results of `ocuroot_push` and `ocuroot_push_intent` are checked in
//! `push.rs`, which has the git repositories they need, and the event of a
//! run taken over in `takeover.rs`.

use std::collections::BTreeSet;
use std::ffi::{CStr, c_char, c_void};
use std::panic::AssertUnwindSafe;
use std::ptr;
use std::sync::Mutex;

use ocuroot::*;
use serde_json::Value;

mod common;
use common::json_doc::JsonDoc;
use common::{c, call_json, call_maybe, committed_repo, open_with};

/// The sections `push.rs` checks.
const CHECKED_IN_PUSH: &[&str] = &["PushOutcome", "Pushed", "IntentPush"];

/// The sections `takeover.rs` checks (a run left running by an agent).
const CHECKED_IN_TAKEOVER: &[&str] = &["Event:run_taken_over", "Agent"];

const REPO: &str = r#"ocuroot("0.3.0")
repo_alias("p")
store.set(store.fs(".store"))

def on_commit(commit):
    print("scheduled " + commit)

trigger(on_commit)
"#;

const ENVIRONMENTS: &str = r#"ocuroot("0.3.0")
register_environment(environment("staging", {"type": "staging"}))
"#;

const MORE_ENVIRONMENTS: &str = r#"ocuroot("0.3.0")
register_environment(environment("staging", {"type": "staging"}))
register_environment(environment("production", {"type": "prod"}))
"#;

const FLAKY: &str = r#"ocuroot("0.3.0")

def boom():
    fail("boom")

task(boom, name="boom")
"#;

const RELEASE: &str = r#"ocuroot("0.3.0")

def build(region, previous):
    print("building for " + region)
    return done(outputs={"version": "1.0.1"})

def up(environment, version, approval):
    return done(outputs={"version": version})

def down(environment, version, approval):
    return done()

phase("build", tasks=[task(build, name="build", annotation="builds the version", inputs={
    "region": "eu",
    "previous": input(ref="./@/task/build#output/version", default="none"),
})])
phase("deploy", tasks=[
    deploy(up=up, down=down, environment=e, inputs={
        "version": input(ref="./task/build#output/version"),
        "approval": input(ref="./custom/approval"),
    })
    for e in environments()
])
"#;

const PKG: &str = "p/-/release.ocu.star";

unsafe extern "C" fn on_event(ud: *mut c_void, json: *const c_char) {
    // SAFETY: the Mutex the test passes; a string valid during the call.
    let (events, json) = unsafe { (&*(ud as *const Mutex<Vec<Value>>), CStr::from_ptr(json)) };
    let event = serde_json::from_str(json.to_str().unwrap()).unwrap();
    events.lock().unwrap().push(event);
}

/// A call with a string argument that gives JSON.
fn with_str(
    ws: *mut ocuroot_workspace,
    arg: &str,
    f: unsafe extern "C" fn(
        *const ocuroot_workspace,
        *const c_char,
        *mut *mut c_char,
        *mut *mut ocuroot_error,
    ) -> ocuroot_result,
) -> Value {
    let arg = c(arg);
    // SAFETY: valid arguments.
    call_json(|o, e| unsafe { f(ws, arg.as_ptr(), o, e) })
}

/// A call with a `dryrun` flag that gives JSON.
fn with_flag(
    ws: *mut ocuroot_workspace,
    flag: bool,
    f: unsafe extern "C" fn(
        *const ocuroot_workspace,
        bool,
        *mut *mut c_char,
        *mut *mut ocuroot_error,
    ) -> ocuroot_result,
) -> Value {
    // SAFETY: valid arguments.
    call_json(|o, e| unsafe { f(ws, flag, o, e) })
}

fn release_new(ws: *mut ocuroot_workspace, file: &str) -> Value {
    let file = c(file);
    // SAFETY: valid arguments.
    call_json(|o, e| unsafe { ocuroot_release_new(ws, file.as_ptr(), false, o, e) })
}

/// Check a release's report and its work items.
fn check_report(doc: &JsonDoc, section: &str, report: &Value) {
    doc.check(section, report);
    doc.check_each("WorkReport", &report["work"]);
}

/// Check a typed read and its document (the `document` section named).
fn check_read(doc: &JsonDoc, read: &Value, kind: &str, document: &str) {
    doc.check("StateRead", read);
    assert_eq!(read["kind"], kind, "{read}");
    doc.check(document, &read["document"]);
}

/// Check an evaluated package, down to its inputs.
fn check_package(doc: &JsonDoc, package: &Value) {
    doc.check("Package", package);
    for phase in package["phases"].as_array().unwrap() {
        doc.check("Phase", phase);
        for work in phase["tasks"].as_array().unwrap() {
            doc.check("Work", work);
            let (section, item) = match work.get("task") {
                Some(task) => ("Task", task),
                None => ("Deploy", &work["deploy"]),
            };
            doc.check(section, item);
            for f in ["fn", "up", "down"] {
                if let Some(id) = item.get(f) {
                    doc.check("FunctionId", id);
                }
            }
            for input in item["inputs"].as_object().unwrap().values() {
                doc.check("InputSpec", input);
            }
        }
    }
}

#[test]
fn every_documented_result_has_the_documented_fields() {
    let doc = JsonDoc::load();
    let dir = committed_repo(&[
        ("repo.ocu.star", REPO),
        ("environments.ocu.star", ENVIRONMENTS),
        ("more-environments.ocu.star", MORE_ENVIRONMENTS),
        ("empty.ocu.star", "ocuroot(\"0.3.0\")\n"),
        ("flaky.ocu.star", FLAKY),
        ("release.ocu.star", RELEASE),
    ]);
    let events: Mutex<Vec<Value>> = Mutex::default();
    let opts = ocuroot_workspace_options_new();
    // SAFETY: valid options; `events` outlives the workspace.
    unsafe {
        let ud = &events as *const Mutex<Vec<Value>> as *mut c_void;
        let code =
            ocuroot_workspace_options_set_events(opts, Some(on_event), ud, None, ptr::null_mut());
        assert_eq!(code, ocuroot_result::Ok);
        let code = ocuroot_workspace_options_set_parallel(opts, 1, ptr::null_mut());
        assert_eq!(code, ocuroot_result::Ok);
    }
    let ws = open_with(dir.path(), opts);
    // SAFETY: made above, freed once.
    unsafe { ocuroot_workspace_options_free(opts) };

    // Lint, of a package and of environments.
    let lint = with_str(ws, "release.ocu.star", ocuroot_release_lint);
    doc.check("Lint", &lint);
    check_package(&doc, &lint["package"]);
    let lint = with_str(ws, "environments.ocu.star", ocuroot_release_lint);
    doc.check("Lint", &lint);
    doc.check_each("Environment", &lint["environments"]);

    // The three kinds of release_new.
    let envs = release_new(ws, "environments.ocu.star");
    doc.check("NewRelease:environments", &envs);
    doc.check_each("Environment", &envs["environments"]);
    doc.check("WorkOutcome", &envs["outcome"]);
    doc.check_each("IntentChange", &envs["outcome"]["applied"]);
    doc.check("NewRelease:empty", &release_new(ws, "empty.ocu.star"));
    let failed = release_new(ws, "flaky.ocu.star");
    assert_eq!(failed["status"], "failed", "{failed}");
    check_report(&doc, "NewRelease:release", &failed);
    assert!(failed["work"][0]["summary"].is_string(), "{failed}");

    // A failed run's document, with its error.
    let run = with_str(ws, "p/-/flaky.ocu.star/@r1/task/boom/1", ocuroot_state_read);
    check_read(&doc, &run, "run", "RunDoc");
    doc.check("RunError", &run["document"]["error"]);
    if let Some(location) = run["document"]["error"].get("location") {
        doc.check("Location", location);
    }

    // A release that blocks on its approval: a work item waiting.
    let blocked = release_new(ws, "release.ocu.star");
    assert_eq!(blocked["status"], "blocked", "{blocked}");
    check_report(&doc, "NewRelease:release", &blocked);
    assert!(
        blocked["work"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.get("waiting_for").is_some()),
        "{blocked}"
    );

    // The same report read back from state.
    let status = with_str(ws, &format!("{PKG}/@r1"), ocuroot_release_status);
    check_report(&doc, "ReleaseReport", &status);
    assert_eq!(status["work"], blocked["work"]);

    // Intent: set, diffed, planned, applied.
    let (approval, yes) = (c(&format!("{PKG}/@r1/custom/approval")), c(r#""yes""#));
    // SAFETY: valid arguments.
    call_maybe(|o, e| unsafe { ocuroot_state_set(ws, approval.as_ptr(), yes.as_ptr(), o, e) });
    // SAFETY: valid arguments.
    let diff = call_json(|o, e| unsafe { ocuroot_state_diff(ws, o, e) });
    doc.check_each("IntentChange", &diff);
    let todos = with_flag(ws, true, ocuroot_work_any);
    doc.check_each("Todo", &todos);
    // SAFETY: valid arguments; NULL is the JSON format.
    let plan = call_json(|o, e| unsafe { ocuroot_plan(ws, ptr::null(), o, e) });
    doc.check("Plan", &plan);
    doc.check_each("Todo", &plan["work"]);
    doc.check_each("GraphNode", &plan["graph"]);
    let applied = with_str(
        ws,
        &format!("{PKG}/@r1/custom/approval"),
        ocuroot_state_apply,
    );
    doc.check("WorkOutcome", &applied);
    doc.check_each("IntentChange", &applied["applied"]);
    let report = with_str(ws, &format!("{PKG}/@r1"), ocuroot_release_continue);
    assert_eq!(report["status"], "complete", "{report}");
    check_report(&doc, "ReleaseReport", &report);

    // A new environment leaves an op; work ops runs it, work continue
    // deploys what it added.
    release_new(ws, "more-environments.ocu.star");
    // The commit has work (the op): its trigger is planned, then called.
    let planned = with_flag(ws, true, ocuroot_work_trigger);
    doc.check_each("Triggered", &planned);
    let called = with_flag(ws, false, ocuroot_work_trigger);
    doc.check_each("Triggered", &called);
    assert!(called[0].get("log").is_some(), "{called}");
    let ops = with_flag(ws, false, ocuroot_work_ops);
    doc.check("WorkOutcome", &ops);
    doc.check_each("OpReport", &ops["ops"]);
    let continued = with_flag(ws, false, ocuroot_work_continue);
    doc.check("WorkOutcome", &continued);
    for report in continued["releases"].as_array().unwrap() {
        check_report(&doc, "ReleaseReport", report);
    }

    // Typed reads of every kind of document.
    let release = with_str(ws, &format!("{PKG}/@r1"), ocuroot_state_read);
    check_read(&doc, &release, "release", "ReleaseDoc");
    check_package(&doc, &release["document"]["package"]);
    let run = with_str(ws, &format!("{PKG}/@r1/task/build/1"), ocuroot_state_read);
    check_read(&doc, &run, "run", "RunDoc");
    doc.check_each("RunFunction", &run["document"]["functions"]);
    let work = with_str(ws, &format!("{PKG}/@/deploy/staging"), ocuroot_state_read);
    check_read(&doc, &work, "work", "WorkDoc");
    let env = with_str(ws, "@/environment/production", ocuroot_state_read);
    check_read(&doc, &env, "environment", "Environment");
    let custom = with_str(
        ws,
        &format!("{PKG}/@r1/custom/approval"),
        ocuroot_state_read,
    );
    doc.check("StateRead", &custom);
    assert_eq!(custom["kind"], "custom");

    // The deployments made at this (the only) commit.
    let (start, end) = (c("HEAD"), c("HEAD"));
    // SAFETY: valid arguments.
    let found =
        call_json(|o, e| unsafe { ocuroot_find_deploys(ws, start.as_ptr(), end.as_ptr(), o, e) });
    assert!(!found.as_array().unwrap().is_empty(), "{found}");
    doc.check_each("FoundDeploy", &found);

    // SAFETY: opened above, freed once.
    unsafe { ocuroot_workspace_free(ws) };

    // The events of every run.
    for event in events.lock().unwrap().iter() {
        let kind = event["event"].as_str().unwrap();
        doc.check(&format!("Event:{kind}"), event);
        if kind == "log" {
            doc.check("LogLine", &event["line"]);
        }
    }

    // Every section of the page was checked, here, in push.rs or in
    // takeover.rs.
    let mut checked = doc.checked();
    checked.extend(CHECKED_IN_PUSH.iter().map(|s| s.to_string()));
    checked.extend(CHECKED_IN_TAKEOVER.iter().map(|s| s.to_string()));
    let documented: BTreeSet<String> = doc.sections.keys().cloned().collect();
    let unchecked: Vec<&String> = documented.difference(&checked).collect();
    assert!(unchecked.is_empty(), "never produced: {unchecked:?}");
}

#[test]
fn the_parser_reads_tables_and_refuses_bad_rows() {
    let doc = JsonDoc::parse(
        "# x\n\n### `A`\n\nText.\n\n| Field | Type | Present | Meaning |\n|---|---|---|---|\n\
         | `a` | string | always | . |\n| `b` | string | optional: when set | . |\n\n\
         | `kind` | The ref | document |\n|---|---|---|\n| `x` | y | z |\n",
    );
    let a = &doc.sections["A"].fields;
    assert_eq!(a.len(), 2, "{a:?}");
    assert!(a["a"] && !a["b"]);
    doc.check("A", &serde_json::json!({"a": "1"}));
    let missing = std::panic::catch_unwind(AssertUnwindSafe(|| {
        doc.check("A", &serde_json::json!({"b": "1"}))
    }));
    assert!(missing.is_err());
    let extra = std::panic::catch_unwind(AssertUnwindSafe(|| {
        doc.check("A", &serde_json::json!({"a": 1, "c": 2}))
    }));
    assert!(extra.is_err());
}

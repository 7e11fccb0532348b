//! Intent and the `work` commands through the C ABI: an approval set and
//! applied, a deletion done by `work any`, a new environment deployed by
//! `work ops` and `work continue`, a checkpoint, and bad arguments; and the
//! codes of the release conditions a C agent acts on.

use std::ffi::c_char;
use std::path::Path;
use std::ptr;

use ocuroot::*;
use serde_json::{Value, json};

mod common;
use common::{c, take, take_error};

const ENVIRONMENTS: &str = r#"ocuroot("0.3.0")
register_environment(environment("staging", {}))
"#;

const PROD: &str = r#"ocuroot("0.3.0")
register_environment(environment("staging", {}))
register_environment(environment("prod", {}))
"#;

/// A deploy to every environment, gated on the release's custom state.
const GATED: &str = r#"ocuroot("0.3.0")

def up(environment, approval):
    return done(outputs={"approval": approval})

def down(environment, approval):
    return done()

phase("deploy", tasks=[
    deploy(up=up, down=down, environment=e, inputs={"approval": input(ref="./custom/approval")})
    for e in environments()
])
"#;

const PKG: &str = "p/-/release.ocu.star";

fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in [
        ("repo.ocu.star", "repo_alias(\"p\")\n"),
        ("environments.ocu.star", ENVIRONMENTS),
        ("prod.ocu.star", PROD),
        ("release.ocu.star", GATED),
    ] {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    let git = std::process::Command::new("git")
        .args(["init", "--quiet"])
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(git.success());
    dir
}

fn open(dir: &Path) -> *mut ocuroot_workspace {
    let path = c(dir.to_str().unwrap());
    let (mut ws, mut err) = (ptr::null_mut(), ptr::null_mut());
    // SAFETY: valid arguments; default options.
    let code = unsafe { ocuroot_workspace_open(path.as_ptr(), ptr::null(), &mut ws, &mut err) };
    assert_eq!(code, ocuroot_result::Ok, "{:?}", take_error(err));
    ws
}

/// Call `f` with an out-parameter and an error; the text it gave.
fn call(f: impl FnOnce(*mut *mut c_char, *mut *mut ocuroot_error) -> ocuroot_result) -> String {
    let (mut out, mut err) = (ptr::null_mut(), ptr::null_mut());
    let code = f(&mut out, &mut err);
    assert_eq!(code, ocuroot_result::Ok, "{:?}", take_error(err));
    take(out)
}

fn json_of(text: String) -> Value {
    serde_json::from_str(&text).unwrap()
}

fn release_new(ws: *mut ocuroot_workspace, file: &str) -> Value {
    let file = c(file);
    // SAFETY: valid arguments.
    json_of(call(|o, e| unsafe {
        ocuroot_release_new(ws, file.as_ptr(), false, o, e)
    }))
}

fn state_diff(ws: *mut ocuroot_workspace) -> Value {
    // SAFETY: valid arguments.
    json_of(call(|o, e| unsafe { ocuroot_state_diff(ws, o, e) }))
}

type WorkFn = unsafe extern "C" fn(
    *const ocuroot_workspace,
    bool,
    *mut *mut c_char,
    *mut *mut ocuroot_error,
) -> ocuroot_result;

fn work(ws: *mut ocuroot_workspace, f: WorkFn, dryrun: bool) -> Value {
    // SAFETY: valid arguments.
    json_of(call(|o, e| unsafe { f(ws, dryrun, o, e) }))
}

fn refs(todos: &Value) -> Vec<&str> {
    todos
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["ref"].as_str().unwrap())
        .collect()
}

#[test]
fn an_approval_is_set_applied_and_deleted_through_the_c_abi() {
    let dir = repo();
    let ws = open(dir.path());
    release_new(ws, "environments.ocu.star");
    assert_eq!(release_new(ws, "release.ocu.star")["status"], "blocked");
    assert_eq!(state_diff(ws), json!([]));

    let approval = format!("{PKG}/@r1/custom/approval");
    let (r, value) = (c(&approval), c(r#""yes""#));
    // SAFETY: valid arguments.
    let written = call(|o, e| unsafe { ocuroot_state_set(ws, r.as_ptr(), value.as_ptr(), o, e) });
    assert_eq!(written, approval);
    assert_eq!(
        state_diff(ws),
        json!([{"ref": approval, "change": "create"}])
    );
    // SAFETY: valid arguments.
    let applied = json_of(call(|o, e| unsafe {
        ocuroot_state_apply(ws, r.as_ptr(), o, e)
    }));
    assert_eq!(
        applied["applied"],
        json!([{"ref": approval, "change": "create"}])
    );
    assert_eq!(
        applied["releases"],
        json!([]),
        "applying custom state runs nothing"
    );

    let planned = work(ws, ocuroot_work_continue, true);
    assert_eq!(refs(&planned), [format!("{PKG}/@r1/deploy/staging/1")]);
    let ran = work(ws, ocuroot_work_continue, false);
    assert_eq!(ran["releases"][0]["status"], "complete");
    assert_eq!(work(ws, ocuroot_work_continue, true), json!([]));

    // SAFETY: valid arguments.
    let deleted = call(|o, e| unsafe { ocuroot_state_delete(ws, r.as_ptr(), o, e) });
    assert_eq!(deleted, approval);
    let planned = work(ws, ocuroot_work_any, true);
    assert_eq!(refs(&planned), [approval.as_str()]);
    assert_eq!(planned[0]["work_type"], "delete");
    let done = work(ws, ocuroot_work_any, false);
    assert_eq!(
        done["applied"],
        json!([{"ref": approval, "change": "delete"}])
    );
    assert_eq!(state_diff(ws), json!([]));
    // SAFETY: a workspace from ocuroot_workspace_open, freed once.
    unsafe { ocuroot_workspace_free(ws) };
}

#[test]
fn a_new_environment_is_deployed_by_work_ops_then_work_continue() {
    let dir = repo();
    let ws = open(dir.path());
    release_new(ws, "environments.ocu.star");
    release_new(ws, "release.ocu.star");
    let (r, value) = (c(&format!("{PKG}/@r1/custom/approval")), c("true"));
    // SAFETY: valid arguments.
    call(|o, e| unsafe { ocuroot_state_set(ws, r.as_ptr(), value.as_ptr(), o, e) });
    // SAFETY: valid arguments.
    call(|o, e| unsafe { ocuroot_state_apply(ws, r.as_ptr(), o, e) });
    work(ws, ocuroot_work_continue, false);

    assert_eq!(release_new(ws, "prod.ocu.star")["kind"], "environments");
    let planned = work(ws, ocuroot_work_ops, true);
    assert_eq!(planned[0]["work_type"], "op");
    let ops = work(ws, ocuroot_work_ops, false);
    assert_eq!(
        ops["ops"][0]["added"],
        json!([format!("{PKG}/@r1/deploy/prod/1")])
    );
    let ran = work(ws, ocuroot_work_continue, false);
    assert_eq!(ran["releases"][0]["status"], "complete");
    // SAFETY: valid arguments.
    let idle = json_of(call(|o, e| unsafe {
        ocuroot_work_any_comprehensive(ws, o, e)
    }));
    assert_eq!(
        (&idle["applied"], &idle["releases"]),
        (&json!([]), &json!([]))
    );

    let mut err = ptr::null_mut();
    // SAFETY: valid arguments.
    assert_eq!(
        unsafe { ocuroot_state_checkpoint(ws, &mut err) },
        ocuroot_result::Ok
    );
    let object = dir
        .path()
        .join(".ocuroot/store/state/refs/@/environment/prod/@object.json");
    assert!(object.is_file(), "{}", object.display());
    // SAFETY: a workspace from ocuroot_workspace_open, freed once.
    unsafe { ocuroot_workspace_free(ws) };
}

#[test]
fn bad_intent_and_bad_arguments_are_refused_with_their_codes() {
    let dir = repo();
    let ws = open(dir.path());
    let not_intent = c(&format!("{PKG}/@r1/task/x"));
    let (good, bad) = (c("1"), c("{not json"));
    let (mut out, mut err) = (ptr::null_mut(), ptr::null_mut());
    // SAFETY: valid arguments.
    let code =
        unsafe { ocuroot_state_set(ws, not_intent.as_ptr(), good.as_ptr(), &mut out, &mut err) };
    assert_eq!(code, ocuroot_result::InvalidInput);
    assert!(take_error(err).1.contains("is not intent"));
    assert!(out.is_null(), "no out-parameter on failure");

    let custom = c(&format!("{PKG}/@/custom/x"));
    let mut err = ptr::null_mut();
    // SAFETY: valid arguments.
    let code = unsafe { ocuroot_state_set(ws, custom.as_ptr(), bad.as_ptr(), &mut out, &mut err) };
    assert_eq!(code, ocuroot_result::InvalidInput);
    assert!(take_error(err).1.contains("invalid JSON"));

    let mut err = ptr::null_mut();
    // SAFETY: a NULL value is refused, not read.
    let code = unsafe { ocuroot_state_set(ws, custom.as_ptr(), ptr::null(), &mut out, &mut err) };
    assert_eq!(code, ocuroot_result::NullArgument);
    assert!(take_error(err).1.contains("value_json"));

    let mut err = ptr::null_mut();
    // SAFETY: a NULL out-parameter is refused.
    let code = unsafe { ocuroot_work_any(ws, false, ptr::null_mut(), &mut err) };
    assert_eq!(code, ocuroot_result::NullArgument);
    assert!(take_error(err).1.contains("result_json"));
    assert_eq!(state_diff(ws), json!([]));
    // SAFETY: a workspace from ocuroot_workspace_open, freed once.
    unsafe { ocuroot_workspace_free(ws) };
}

#[test]
fn a_second_release_and_a_retry_of_nothing_have_codes_of_their_own() {
    let dir = repo();
    let ws = open(dir.path());
    release_new(ws, "environments.ocu.star");
    release_new(ws, "release.ocu.star");
    let file = c("release.ocu.star");
    let (mut out, mut err) = (ptr::null_mut(), ptr::null_mut());
    // SAFETY: valid arguments.
    let code = unsafe { ocuroot_release_new(ws, file.as_ptr(), false, &mut out, &mut err) };
    assert_eq!(code, ocuroot_result::AlreadyReleased);
    assert_eq!(code as u32, 211);
    let (_, message) = take_error(err);
    assert!(
        message.contains("There are already 1 releases"),
        "{message}"
    );
    assert!(!message.contains("--force"), "{message}");

    let rel = c(&format!("{PKG}/@r1"));
    let mut err = ptr::null_mut();
    // SAFETY: valid arguments.
    let code = unsafe { ocuroot_release_retry(ws, rel.as_ptr(), &mut out, &mut err) };
    assert_eq!(code, ocuroot_result::NothingToRetry);
    assert_eq!(code as u32, 212);
    assert!(take_error(err).1.contains("no failed work to retry"));
    // SAFETY: a workspace from ocuroot_workspace_open, freed once.
    unsafe { ocuroot_workspace_free(ws) };
}

/// A workspace opened with its work limited to `limit`, or the error.
fn open_limited(
    dir: &Path,
    limit: &str,
) -> Result<*mut ocuroot_workspace, (ocuroot_result, String)> {
    let options = ocuroot_workspace_options_new();
    let (path, limit) = (c(dir.to_str().unwrap()), c(limit));
    let (mut ws, mut err) = (ptr::null_mut(), ptr::null_mut());
    // SAFETY: options this library made, valid strings.
    let code = unsafe { ocuroot_workspace_options_set_limit(options, limit.as_ptr(), &mut err) };
    assert_eq!(code, ocuroot_result::Ok);
    // SAFETY: valid arguments; the options are freed once, after.
    let code = unsafe { ocuroot_workspace_open(path.as_ptr(), options, &mut ws, &mut err) };
    // SAFETY: options this library made, freed once.
    unsafe { ocuroot_workspace_options_free(options) };
    if code == ocuroot_result::Ok {
        Ok(ws)
    } else {
        Err(take_error(err))
    }
}

#[test]
fn a_limit_keeps_the_work_functions_to_one_package() {
    let dir = repo();
    std::fs::write(dir.path().join("other.ocu.star"), GATED).unwrap();
    let ws = open(dir.path());
    release_new(ws, "environments.ocu.star");
    for file in ["release.ocu.star", "other.ocu.star"] {
        release_new(ws, file);
        let (r, value) = (c(&format!("p/-/{file}/@r1/custom/approval")), c("true"));
        // SAFETY: valid arguments.
        call(|o, e| unsafe { ocuroot_state_set(ws, r.as_ptr(), value.as_ptr(), o, e) });
    }
    let everything = work(ws, ocuroot_work_any, true);
    assert_eq!(refs(&everything).len(), 2, "{everything}");
    // SAFETY: a workspace from ocuroot_workspace_open, freed once.
    unsafe { ocuroot_workspace_free(ws) };

    let limited = open_limited(dir.path(), "other.ocu.star").unwrap();
    let planned = work(limited, ocuroot_work_any, true);
    assert_eq!(
        refs(&planned),
        ["p/-/other.ocu.star/@r1/custom/approval"],
        "{planned}"
    );
    // SAFETY: as above.
    unsafe { ocuroot_workspace_free(limited) };

    let (code, message) = open_limited(dir.path(), "other.ocu.star/@r7").unwrap_err();
    assert_eq!(code, ocuroot_result::NotFound, "{message}");
    assert!(message.contains("no such release"), "{message}");
}

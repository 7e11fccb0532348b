//! The operations added so every layer has the same ones:
//! `ocuroot_release_lint` (and its former name), `ocuroot_state_match_no_links`
//! and `ocuroot_work_trigger_intent`, against a real repository with the
//! default host and the filesystem store.

use std::ffi::c_char;
use std::path::Path;
use std::ptr;

use ocuroot::*;

mod common;
use common::{c, take, take_error};

const PACKAGE: &str = "ocuroot(\"0.3.0\")\n\
def build():\n    return done(output={\"tag\": \"v1\"})\n\
task(build, name=\"build\")\n";

fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("repo.ocu.star"), "repo_alias(\"n\")\n").unwrap();
    std::fs::write(dir.path().join("p.ocu.star"), PACKAGE).unwrap();
    for args in [
        &["init", "--quiet"][..],
        &["add", "."],
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-qm",
            "x",
        ],
    ] {
        let ok = std::process::Command::new("git")
            .args(args)
            .current_dir(dir.path())
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }
    dir
}

fn open(dir: &Path) -> *mut ocuroot_workspace {
    let path = c(dir.to_str().unwrap());
    let (mut ws, mut err) = (ptr::null_mut(), ptr::null_mut());
    // SAFETY: valid arguments.
    let code = unsafe { ocuroot_workspace_open(path.as_ptr(), ptr::null(), &mut ws, &mut err) };
    assert_eq!(code, ocuroot_result::Ok, "{:?}", take_error(err));
    ws
}

/// Run `call` with an out-pointer and an error; the JSON it gives.
fn json(
    call: impl FnOnce(*mut *mut c_char, *mut *mut ocuroot_error) -> ocuroot_result,
) -> serde_json::Value {
    let (mut out, mut err) = (ptr::null_mut(), ptr::null_mut());
    let code = call(&mut out, &mut err);
    assert_eq!(code, ocuroot_result::Ok, "{:?}", take_error(err));
    serde_json::from_str(&take(out)).unwrap()
}

#[test]
fn lint_match_without_links_and_trigger_every_repository() {
    let dir = repo();
    let ws = open(dir.path());
    let file = c("p.ocu.star");
    // SAFETY: valid arguments throughout; every string is taken once.
    unsafe {
        let lint = json(|o, e| ocuroot_release_lint(ws, file.as_ptr(), o, e));
        assert_eq!(lint["base"], "n/-/p.ocu.star/@r1");
        #[allow(deprecated)]
        let former = json(|o, e| ocuroot_lint(ws, file.as_ptr(), o, e));
        assert_eq!(former, lint);

        let report = json(|o, e| ocuroot_release_new(ws, file.as_ptr(), false, o, e));
        assert_eq!(report["status"], "complete");
        let glob = c("n/-/p.ocu.star/@*/task/build");
        let globs = [glob.as_ptr()];
        let linked = json(|o, e| ocuroot_state_match(ws, globs.as_ptr(), 1, o, e));
        assert_eq!(
            linked,
            serde_json::json!([
                "n/-/p.ocu.star/@/task/build",
                "n/-/p.ocu.star/@r1/task/build"
            ])
        );
        let own = json(|o, e| ocuroot_state_match_no_links(ws, globs.as_ptr(), 1, o, e));
        assert_eq!(own, serde_json::json!(["n/-/p.ocu.star/@r1/task/build"]));

        let planned = json(|o, e| ocuroot_work_trigger_intent(ws, true, o, e));
        assert_eq!(planned[0]["repo"], "n");
        assert_eq!(planned[0]["status"], "planned");
        ocuroot_workspace_free(ws);
    }
}

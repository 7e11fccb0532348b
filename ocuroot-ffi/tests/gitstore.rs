//! A workspace opened through the C ABI without store callbacks uses the
//! store `repo.ocu.star` configures: here `store.git(...)` on a bare
//! repository on disk. Its own test binary, so that setting `OCUROOT_HOME`
//! races with no other test.

use std::process::Command;
use std::ptr;

use ocuroot::*;

mod common;
use common::{c, take, take_error};

fn git(args: &[&str]) -> String {
    let out = Command::new("git").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_configured_git_store_is_opened_without_store_callbacks() {
    let dir = tempfile::tempdir().unwrap();
    let remote = dir.path().join("store.git");
    let repo = dir.path().join("repo");
    git(&["init", "-q", "--bare", remote.to_str().unwrap()]);
    git(&["init", "-q", repo.to_str().unwrap()]);
    std::fs::write(
        repo.join("repo.ocu.star"),
        format!(
            "repo_alias(\"c\")\nstore.set(store.git({:?}, branch=\"ocuroot\"))\n",
            remote.to_str().unwrap()
        ),
    )
    .unwrap();
    std::fs::write(
        repo.join("release.ocu.star"),
        "def build():\n    return done(outputs={\"ok\": True})\n\ntask(build, name=\"build\")\n",
    )
    .unwrap();
    // SAFETY: the only test of this binary, before any thread reads the
    // environment. An hour between fetches: a workspace sees what another
    // pushed only when `ocuroot_workspace_refresh` asks.
    unsafe {
        std::env::set_var("OCUROOT_HOME", dir.path().join("reader"));
        std::env::set_var("OCUROOT_GIT_FETCH_INTERVAL", "3600");
    }
    let path = c(repo.to_str().unwrap());
    let r = c("c/-/release.ocu.star/@r1/task/build#output/ok");
    let mut reader = ptr::null_mut();
    let mut err = ptr::null_mut();
    // SAFETY: valid arguments; NULL options mean the defaults.
    let code = unsafe { ocuroot_workspace_open(path.as_ptr(), ptr::null(), &mut reader, &mut err) };
    assert_eq!(code, ocuroot_result::Ok);
    let read = |ws| {
        let mut value = ptr::null_mut();
        let mut err = ptr::null_mut();
        // SAFETY: valid arguments.
        let code = unsafe { ocuroot_state_get(ws, r.as_ptr(), &mut value, &mut err) };
        assert_eq!(code, ocuroot_result::Ok);
        (!value.is_null()).then(|| take(value))
    };
    assert_eq!(read(reader), None);
    // SAFETY: as above; the reader's clone is open already.
    unsafe { std::env::set_var("OCUROOT_HOME", dir.path().join("home")) };

    let mut ws = ptr::null_mut();
    // SAFETY: valid arguments; NULL options mean the defaults.
    let code = unsafe { ocuroot_workspace_open(path.as_ptr(), ptr::null(), &mut ws, &mut err) };
    assert_eq!(
        code,
        ocuroot_result::Ok,
        "{:?}",
        (!err.is_null()).then(|| take_error(err))
    );
    let file = c("release.ocu.star");
    let mut json = ptr::null_mut();
    // SAFETY: valid arguments.
    let code = unsafe { ocuroot_release_new(ws, file.as_ptr(), false, &mut json, &mut err) };
    assert_eq!(
        code,
        ocuroot_result::Ok,
        "{:?}",
        (!err.is_null()).then(|| take_error(err))
    );
    take(json);
    assert_eq!(read(ws).as_deref(), Some("true"));
    // SAFETY: opened above, freed once.
    unsafe { ocuroot_workspace_free(ws) };
    // The reader sees the release once it asks for a fresh view.
    assert_eq!(read(reader), None);
    // SAFETY: a workspace from this library.
    let code = unsafe { ocuroot_workspace_refresh(reader, &mut err) };
    assert_eq!(code, ocuroot_result::Ok);
    assert_eq!(read(reader).as_deref(), Some("true"));
    // `state gc` packs the clone of the configured store (under the
    // OCUROOT_HOME set now) and keeps it; a clone of a path reads the
    // remote's objects in place and holds none of its own.
    let mut report = ptr::null_mut();
    // SAFETY: a workspace from this library, valid pointers.
    let code = unsafe { ocuroot_state_gc(reader, 0, &mut report, &mut err) };
    assert_eq!(code, ocuroot_result::Ok);
    let report: serde_json::Value = serde_json::from_str(&take(report)).unwrap();
    assert_eq!(report["packed"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["packed"][0]["objects"], 0, "{report}");
    assert_eq!(report["removed"], serde_json::json!([]), "{report}");
    assert_eq!(read(reader).as_deref(), Some("true"));
    // SAFETY: opened above, freed once.
    unsafe { ocuroot_workspace_free(reader) };

    let files = git(&[
        "--git-dir",
        remote.to_str().unwrap(),
        "ls-tree",
        "-r",
        "--name-only",
        "ocuroot",
    ]);
    assert!(files.contains("state/.ocuroot-store\n"), "{files}");
    assert!(
        files.contains(
            "state/refs/c/-/release.ocu.star/@r1/task/build/1/status/complete/@object.json\n"
        ),
        "{files}"
    );
}

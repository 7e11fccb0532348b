//! `ocuroot_push` and `ocuroot_push_intent` through the C ABI, in real git
//! repositories: a push releases what changed since the last one, a push
//! in a checkout of an intent branch applies the intent a person committed
//! there, and each refuses where the other belongs. Their results are
//! checked against `include/ocuroot-json.md` too.

use std::path::Path;
use std::ptr;
use std::sync::Once;

use ocuroot::*;
use serde_json::Value;

mod common;
use common::json_doc::JsonDoc;
use common::{c, call_err, call_json, committed_repo, git, open_with};

const ENVIRONMENTS: &str = r#"ocuroot("0.3.0")
register_environment(environment("staging", {}))
"#;

const RELEASE: &str = r#"ocuroot("0.3.0")

def build():
    return done(outputs={"version": "1.0." + read("VERSION").strip()})

def up(environment, version):
    return done(outputs={"version": version})

def down(environment, version):
    return done()

phase("build", tasks=[task(build, name="build")])
phase("deploy", tasks=[
    deploy(up=up, down=down, environment=e,
           inputs={"version": input(ref="./task/build#output/version")})
    for e in environments()
])
"#;

/// Git stores are cloned under `OCUROOT_HOME`: one of this binary's own,
/// set before any test reads the environment.
fn home() {
    static HOME: Once = Once::new();
    HOME.call_once(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        // SAFETY: every test of this binary calls this first, and Once
        // makes the others wait, so no thread reads the environment now.
        unsafe { std::env::set_var("OCUROOT_HOME", dir) };
    });
}

type PushFn = unsafe extern "C" fn(
    *const ocuroot_workspace,
    bool,
    *mut *mut std::ffi::c_char,
    *mut *mut ocuroot_error,
) -> ocuroot_result;

fn push(ws: *mut ocuroot_workspace, f: PushFn, dryrun: bool) -> Value {
    // SAFETY: valid arguments.
    call_json(|o, e| unsafe { f(ws, dryrun, o, e) })
}

fn packages(outcome: &Value) -> Vec<(&str, &str)> {
    outcome["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["package"].as_str().unwrap(),
                p["reason"].as_str().unwrap(),
            )
        })
        .collect()
}

#[test]
fn push_releases_what_changed_since_the_last_push() {
    home();
    let doc = JsonDoc::load();
    let dir = committed_repo(&[
        (
            "repo.ocu.star",
            "repo_alias(\"p\")\nstore.set(store.fs(\".store\"))\n",
        ),
        ("environments.ocu.star", ENVIRONMENTS),
        ("release.ocu.star", RELEASE),
        ("VERSION", "1\n"),
    ]);
    let head = git(dir.path(), &["rev-parse", "HEAD"]).trim().to_string();
    let ws = open_with(dir.path(), ptr::null());

    // A dry run lists every package file, environments first, and changes
    // nothing.
    let planned = push(ws, ocuroot_push, true);
    doc.check("PushOutcome", &planned);
    assert_eq!(planned["dryrun"], true);
    assert_eq!(planned["commit"], head.as_str());
    assert_eq!(
        packages(&planned),
        [
            ("environments.ocu.star", "first push"),
            ("release.ocu.star", "first push")
        ]
    );
    assert!(planned.get("index").is_none(), "{planned}");

    // Untracked files: refused, nothing released.
    std::fs::write(dir.path().join("untracked.txt"), "x\n").unwrap();
    // SAFETY: valid arguments.
    let (code, message) = call_err(|o, e| unsafe { ocuroot_push(ws, false, o, e) });
    assert_eq!(code, ocuroot_result::InvalidInput);
    assert!(message.contains("uncommitted changes"), "{message}");
    assert!(message.contains("untracked.txt"), "{message}");
    std::fs::remove_file(dir.path().join("untracked.txt")).unwrap();

    // The push releases both and records itself.
    let done = push(ws, ocuroot_push, false);
    doc.check("PushOutcome", &done);
    assert_eq!(done["dryrun"], false);
    let pushed = done["packages"].as_array().unwrap();
    for p in pushed {
        doc.check("Pushed", p);
    }
    assert_eq!(pushed[0]["release"]["kind"], "environments");
    assert_eq!(pushed[1]["release"]["kind"], "release");
    assert_eq!(pushed[1]["release"]["status"], "complete");
    assert_eq!(
        done["index"],
        format!("p/-/repo.ocu.star/@{head}/push/index")
    );
    doc.check("WorkOutcome", &done["cascade"]);

    // Nothing changed since: nothing to release.
    let again = push(ws, ocuroot_push, false);
    assert_eq!(packages(&again), []);
    assert_eq!(again["previous_commit"], head.as_str());
    // SAFETY: opened above, freed once.
    unsafe { ocuroot_workspace_free(ws) };

    // A commit that changes one package file releases that one again.
    std::fs::write(
        dir.path().join("release.ocu.star"),
        format!("{RELEASE}\n# changed\n"),
    )
    .unwrap();
    git(dir.path(), &["commit", "--quiet", "-am", "change"]);
    let ws = open_with(dir.path(), ptr::null());
    let third = push(ws, ocuroot_push, false);
    assert_eq!(packages(&third), [("release.ocu.star", "changed")]);
    assert_eq!(
        third["packages"][0]["release"]["release"],
        "p/-/release.ocu.star/@r2"
    );

    // Not a checkout of an intent branch: push_intent refuses.
    // SAFETY: valid arguments.
    let (code, message) = call_err(|o, e| unsafe { ocuroot_push_intent(ws, false, o, e) });
    assert_eq!(code, ocuroot_result::InvalidInput);
    assert!(
        message.contains("checkout of an intent branch"),
        "{message}"
    );
    // SAFETY: opened above, freed once.
    unsafe { ocuroot_workspace_free(ws) };
}

const GATED: &str = r#"ocuroot("0.3.0")

def ship(approval):
    return done(outputs={"approved_by": approval})

task(ship, name="ship", inputs={"approval": input(ref="./custom/approval")})
"#;

const PKG: &str = "p/-/release.ocu.star";

fn bare(path: &Path) {
    git(
        path.parent().unwrap(),
        &["init", "--quiet", "--bare", path.to_str().unwrap()],
    );
}

#[test]
fn push_intent_applies_what_a_person_committed_to_the_intent_branch() {
    home();
    let doc = JsonDoc::load();
    let remotes = tempfile::tempdir().unwrap();
    let (state_git, intent_git) = (
        remotes.path().join("state.git"),
        remotes.path().join("intent.git"),
    );
    bare(&state_git);
    bare(&intent_git);
    let config = format!(
        "repo_alias(\"p\")\nstore.set(store.git({:?}, branch=\"state\"), \
         intent=store.git({:?}, branch=\"intent\"))\n",
        state_git.to_str().unwrap(),
        intent_git.to_str().unwrap()
    );
    let dir = committed_repo(&[("repo.ocu.star", &config), ("release.ocu.star", GATED)]);
    let ws = open_with(dir.path(), ptr::null());
    let file = c("release.ocu.star");
    // SAFETY: valid arguments.
    let report = call_json(|o, e| unsafe { ocuroot_release_new(ws, file.as_ptr(), false, o, e) });
    assert_eq!(report["status"], "blocked", "{report}");

    // A person approves with git alone, in a checkout of the intent branch.
    let checkout = remotes.path().join("checkout");
    git(
        remotes.path(),
        &[
            "clone",
            "--quiet",
            "-b",
            "intent",
            intent_git.to_str().unwrap(),
            checkout.to_str().unwrap(),
        ],
    );
    let approval = checkout.join(format!("refs/{PKG}/@r1/custom/approval/@object.json"));
    std::fs::create_dir_all(approval.parent().unwrap()).unwrap();
    std::fs::write(&approval, r#"{"kind":"ref","body":"a person"}"#).unwrap();
    git(&checkout, &["add", "-A"]);
    git(&checkout, &["commit", "--quiet", "-m", "approve"]);
    git(&checkout, &["push", "--quiet", "origin", "intent"]);
    let head = git(&checkout, &["rev-parse", "HEAD"]).trim().to_string();

    // CI pushes from the checkout: a dry run lists, a push applies.
    let intent_ws = open_with(&checkout, ptr::null());
    let planned = push(intent_ws, ocuroot_push_intent, true);
    doc.check("IntentPush", &planned);
    assert_eq!(planned["dryrun"], true);
    assert_eq!(planned["commit"], head.as_str());
    let wanted = format!("{PKG}/@r1/custom/approval");
    assert_eq!(planned["refs"], serde_json::json!([wanted]));
    let done = push(intent_ws, ocuroot_push_intent, false);
    doc.check("IntentPush", &done);
    assert_eq!(done["dryrun"], false);
    assert_eq!(done["outcome"]["applied"][0]["ref"], wanted.as_str());

    // In a store checkout, ocuroot_push refuses: that is push_intent's.
    // SAFETY: valid arguments.
    let (code, message) = call_err(|o, e| unsafe { ocuroot_push(intent_ws, false, o, e) });
    assert_eq!(code, ocuroot_result::InvalidInput);
    assert!(message.contains("checkout of a store"), "{message}");
    // SAFETY: opened above, freed once.
    unsafe { ocuroot_workspace_free(intent_ws) };

    // The approval reached state: the release continues.
    let release = c(&format!("{PKG}/@r1"));
    // SAFETY: valid arguments.
    let report = call_json(|o, e| unsafe { ocuroot_release_continue(ws, release.as_ptr(), o, e) });
    assert_eq!(report["status"], "complete", "{report}");
    // SAFETY: opened above, freed once.
    unsafe { ocuroot_workspace_free(ws) };
}

//! `ocuroot_state_read` through the C ABI: every kind of document typed by
//! its ref, links followed, absent refs as NULL, and bad arguments.

use std::ptr;

use ocuroot::*;
use serde_json::{Value, json};

mod common;
use common::{c, call_err, call_json, call_maybe, committed_repo, open_with};

const ENVIRONMENTS: &str = r#"ocuroot("0.3.0")
register_environment(environment("staging", {"type": "staging"}))
"#;

const RELEASE: &str = r#"ocuroot("0.3.0")

def build():
    return done(outputs={"version": "1.0.1"})

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

const PKG: &str = "p/-/release.ocu.star";

fn read(ws: *mut ocuroot_workspace, r: &str) -> Option<Value> {
    let r = c(r);
    // SAFETY: valid arguments.
    call_maybe(|o, e| unsafe { ocuroot_state_read(ws, r.as_ptr(), o, e) })
        .map(|t| serde_json::from_str(&t).unwrap())
}

#[test]
fn each_kind_of_document_is_read_typed_by_its_ref() {
    let dir = committed_repo(&[
        (
            "repo.ocu.star",
            "repo_alias(\"p\")\nstore.set(store.fs(\".store\"))\n",
        ),
        ("environments.ocu.star", ENVIRONMENTS),
        ("release.ocu.star", RELEASE),
    ]);
    let ws = open_with(dir.path(), ptr::null());
    for file in ["environments.ocu.star", "release.ocu.star"] {
        let file = c(file);
        // SAFETY: valid arguments.
        call_json(|o, e| unsafe { ocuroot_release_new(ws, file.as_ptr(), false, o, e) });
    }
    let (note, value) = (c(&format!("{PKG}/@r1/custom/note")), c(r#""hi""#));
    // SAFETY: valid arguments.
    call_maybe(|o, e| unsafe { ocuroot_state_set(ws, note.as_ptr(), value.as_ptr(), o, e) });
    // SAFETY: valid arguments.
    call_json(|o, e| unsafe { ocuroot_state_apply(ws, note.as_ptr(), o, e) });

    let release = read(ws, &format!("{PKG}/@r1")).unwrap();
    assert_eq!(release["kind"], "release");
    assert_eq!(release["ref"], format!("{PKG}/@r1"));
    assert_eq!(release["document"]["commit"].as_str().unwrap().len(), 40);
    assert_eq!(release["document"]["package"]["phases"][0]["name"], "build");

    let run = read(ws, &format!("{PKG}/@r1/task/build/1")).unwrap();
    assert_eq!(run["kind"], "run");
    assert_eq!(run["document"]["type"], "task");
    assert_eq!(run["document"]["output"], json!({"version": "1.0.1"}));

    // `@` is a link to the release that deployed: the ref read is its target.
    let work = read(ws, &format!("{PKG}/@/deploy/staging")).unwrap();
    assert_eq!(work["kind"], "work");
    assert_eq!(work["ref"], format!("{PKG}/@r1/deploy/staging"));
    assert_eq!(work["document"]["type"], "up");
    assert_eq!(work["document"]["release"], format!("{PKG}/@r1"));
    assert_eq!(work["document"]["output"], json!({"version": "1.0.1"}));
    assert_eq!(work["document"]["input"]["version"], "1.0.1");

    let env = read(ws, "@/environment/staging").unwrap();
    assert_eq!(
        env,
        json!({"ref": "@/environment/staging", "kind": "environment",
               "document": {"name": "staging", "attributes": {"type": "staging"}}})
    );

    assert_eq!(
        read(ws, &format!("{PKG}/@r1/custom/note")).unwrap(),
        json!({"ref": format!("{PKG}/@r1/custom/note"), "kind": "custom", "document": "hi"})
    );

    let fragment = read(ws, &format!("{PKG}/@r1/task/build#output/version")).unwrap();
    assert_eq!(fragment["kind"], "other");
    assert_eq!(fragment["document"], "1.0.1");

    // Nothing there: success, and NULL (as ocuroot_state_get gives it).
    assert_eq!(read(ws, "@/custom/nothing"), None);
    assert_eq!(read(ws, &format!("{PKG}/@r1/deploy/production")), None);

    // Bad arguments.
    let bad = c("not a ref//");
    // SAFETY: valid pointers; the ref does not parse.
    let (code, _) = call_err(|o, e| unsafe { ocuroot_state_read(ws, bad.as_ptr(), o, e) });
    assert_eq!(code, ocuroot_result::InvalidRef);
    let (mut out, mut err) = (ptr::null_mut(), ptr::null_mut());
    // SAFETY: NULL ref, refused.
    let code = unsafe { ocuroot_state_read(ws, ptr::null(), &mut out, &mut err) };
    assert_eq!(code, ocuroot_result::NullArgument);
    let (_, message) = common::take_error(err);
    assert!(message.contains("ref"), "{message}");
    let r = c("@/environment/staging");
    // SAFETY: NULL out-parameter, refused.
    let code = unsafe { ocuroot_state_read(ws, r.as_ptr(), ptr::null_mut(), ptr::null_mut()) };
    assert_eq!(code, ocuroot_result::NullArgument);

    // SAFETY: opened above, freed once.
    unsafe { ocuroot_workspace_free(ws) };
}

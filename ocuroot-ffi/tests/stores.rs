//! A separate intent store through the C ABI
//! (`ocuroot_workspace_options_set_intent_store`): with a state store too,
//! state lands in one callback store and intent in the other, neither
//! prefixed; alone, it takes intent from the store `repo.ocu.star`
//! configures, which keeps state.

use std::ptr;

use ocuroot::*;
use serde_json::json;

mod common;
use common::store::MapStore;
use common::{c, call_json, call_maybe, committed_repo, open_with};

const ENVIRONMENTS: &str = r#"ocuroot("0.3.0")
register_environment(environment("staging", {}))
"#;

/// A deploy gated on the release's custom state.
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
    committed_repo(&[
        (
            "repo.ocu.star",
            "repo_alias(\"p\")\nstore.set(store.fs(\".store\"))\n",
        ),
        ("environments.ocu.star", ENVIRONMENTS),
        ("release.ocu.star", GATED),
    ])
}

/// Release the environments and the gated package, approve it through
/// intent and apply that; the release's status after each step.
fn release_and_approve(ws: *mut ocuroot_workspace) -> (String, String) {
    for file in ["environments.ocu.star", "release.ocu.star"] {
        let file = c(file);
        // SAFETY: valid arguments.
        call_json(|o, e| unsafe { ocuroot_release_new(ws, file.as_ptr(), false, o, e) });
    }
    let release = c(&format!("{PKG}/@r1"));
    // SAFETY: valid arguments.
    let blocked = call_json(|o, e| unsafe { ocuroot_release_continue(ws, release.as_ptr(), o, e) });
    let (r, value) = (c(&format!("{PKG}/@r1/custom/approval")), c(r#""yes""#));
    // SAFETY: valid arguments.
    call_maybe(|o, e| unsafe { ocuroot_state_set(ws, r.as_ptr(), value.as_ptr(), o, e) });
    // SAFETY: valid arguments.
    call_json(|o, e| unsafe { ocuroot_state_apply(ws, r.as_ptr(), o, e) });
    // SAFETY: valid arguments.
    let done = call_json(|o, e| unsafe { ocuroot_release_continue(ws, release.as_ptr(), o, e) });
    (
        blocked["status"].as_str().unwrap().to_string(),
        done["status"].as_str().unwrap().to_string(),
    )
}

fn set(
    setter: unsafe extern "C" fn(
        *mut ocuroot_workspace_options,
        *const ocuroot_store_callbacks,
        *mut *mut ocuroot_error,
    ) -> ocuroot_result,
    opts: *mut ocuroot_workspace_options,
    store: &MapStore,
) {
    let callbacks = store.callbacks();
    // SAFETY: valid options and callbacks.
    let code = unsafe { setter(opts, &callbacks, ptr::null_mut()) };
    assert_eq!(code, ocuroot_result::Ok);
}

#[test]
fn state_and_intent_land_in_their_own_callback_stores() {
    let dir = repo();
    let (state, intent) = (MapStore::default(), MapStore::default());
    let opts = ocuroot_workspace_options_new();
    // The order of the setters does not matter.
    set(ocuroot_workspace_options_set_intent_store, opts, &intent);
    set(ocuroot_workspace_options_set_store, opts, &state);
    let ws = open_with(dir.path(), opts);
    // SAFETY: made above, freed once (the workspace keeps the stores).
    unsafe { ocuroot_workspace_options_free(opts) };

    assert_eq!(
        release_and_approve(ws),
        ("blocked".to_string(), "complete".to_string())
    );

    let (state_keys, intent_keys) = (state.keys(), intent.keys());
    // Neither store has a prefix, and each has only its own documents.
    for key in state_keys.iter().chain(&intent_keys) {
        assert!(
            !key.starts_with("state/") && !key.starts_with("intent/"),
            "{key}"
        );
    }
    let approval = |keys: &[String]| {
        keys.iter()
            .filter(|k| k.contains("custom/approval"))
            .cloned()
            .collect::<Vec<_>>()
    };
    // The approval is intent (set) and state (applied); the runs and the
    // environments are state only, the environment also intent (registering
    // writes intent, then applies it).
    assert!(!approval(&intent_keys).is_empty(), "{intent_keys:?}");
    assert!(!approval(&state_keys).is_empty(), "{state_keys:?}");
    assert!(
        state_keys.iter().any(|k| k.contains("/status/complete")),
        "{state_keys:?}"
    );
    assert!(
        !intent_keys.iter().any(|k| k.contains("/status/")),
        "{intent_keys:?}"
    );
    assert!(
        intent_keys
            .iter()
            .any(|k| k.contains("environment/staging")),
        "{intent_keys:?}"
    );
    // Nothing went to the store repo.ocu.star configures.
    assert!(!dir.path().join(".store").exists());

    // The intent store's document is what state_set wrote.
    let key = approval(&intent_keys).remove(0);
    let doc = intent.json(&key).unwrap();
    assert!(doc.to_string().contains("yes"), "{doc}");
    // SAFETY: opened above, freed once.
    unsafe { ocuroot_workspace_free(ws) };
}

#[test]
fn an_intent_store_alone_leaves_state_in_the_configured_store() {
    let dir = repo();
    let intent = MapStore::default();
    let opts = ocuroot_workspace_options_new();
    set(ocuroot_workspace_options_set_intent_store, opts, &intent);
    let ws = open_with(dir.path(), opts);
    // SAFETY: made above, freed once.
    unsafe { ocuroot_workspace_options_free(opts) };
    assert_eq!(
        release_and_approve(ws),
        ("blocked".to_string(), "complete".to_string())
    );
    let keys = intent.keys();
    assert!(
        keys.iter().any(|k| k.contains("custom/approval")),
        "{keys:?}"
    );
    assert!(!keys.iter().any(|k| k.contains("/status/")), "{keys:?}");
    // State is in the configured directory store.
    assert!(dir.path().join(".store").is_dir());
    let r = c(&format!("{PKG}/@r1/deploy/staging#output"));
    // SAFETY: valid arguments.
    let output = call_json(|o, e| unsafe { ocuroot_state_get(ws, r.as_ptr(), o, e) });
    assert_eq!(output, json!({"approval": "yes"}));
    // SAFETY: opened above, freed once.
    unsafe { ocuroot_workspace_free(ws) };
}

#[test]
fn an_intent_store_needs_every_callback() {
    let opts = ocuroot_workspace_options_new();
    let store = MapStore::default();
    let mut callbacks = store.callbacks();
    callbacks.list = None;
    let mut err = ptr::null_mut();
    // SAFETY: valid options; a callback is missing.
    let code = unsafe { ocuroot_workspace_options_set_intent_store(opts, &callbacks, &mut err) };
    assert_eq!(code, ocuroot_result::NullArgument);
    let (_, message) = common::take_error(err);
    assert!(message.contains("list"), "{message}");
    // SAFETY: NULL callbacks, refused.
    let code =
        unsafe { ocuroot_workspace_options_set_intent_store(opts, ptr::null(), ptr::null_mut()) };
    assert_eq!(code, ocuroot_result::NullArgument);
    // SAFETY: made above, freed once.
    unsafe { ocuroot_workspace_options_free(opts) };
}

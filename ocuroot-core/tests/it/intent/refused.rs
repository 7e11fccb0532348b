//! Intent that is refused (by `state_set`, or by `state_apply` when it got
//! into the intent store another way), and two intents for one document.

use ocuroot_core::refs::Ref;
use serde_json::{Value, json};

use super::{GATED, pkg, services, setup};

#[test]
fn invalid_intent_is_refused() {
    let fx = services(&["svc"]);
    let store_before = fx.dump("");

    let env = |name: &str| json!({"name": name, "attributes": {}});
    let cases: Vec<(&str, Value, &str)> = vec![
        ("@/environment/a/b", env("a/b"), "is not intent"),
        (
            "@/environment/a+b",
            env("a+b"),
            "invalid environment name \"a+b\"",
        ),
        ("@/environment/x", env("y"), "must match"),
        (
            "@/environment/x",
            json!({"attributes": {}}),
            "missing field `name`",
        ),
        (
            "svc.ocu.star/@bad+tag/custom/x",
            json!("1"),
            "invalid tag \"bad+tag\"",
        ),
        ("svc.ocu.star/@r1/task/x", json!("1"), "is not intent"),
        ("@/custom/x#frag", json!("1"), "#fragment"),
        (
            "svc.ocu.star/@/deploy/prod",
            json!({}),
            "missing field `release`",
        ),
        (
            "svc.ocu.star/@/deploy/prod",
            json!({"release": "test/-/other.ocu.star/@r1", "input": {}}),
            "is not a release of test/-/svc.ocu.star",
        ),
    ];
    for (r, value, message) in &cases {
        let err = fx
            .ws
            .state_set(r, value.clone())
            .expect_err(&format!("{r} = {value} is refused"));
        assert!(
            err.to_string().contains(message),
            "{r} = {value}: {message:?} in\n{err}"
        );
    }
    // Nothing was written: no intent differs, the store is as it was.
    assert_eq!(fx.diff(), Vec::<String>::new());
    assert!(fx.dump("") == store_before, "the store changed");
    assert_eq!(fx.log().len(), 2);
}

/// Intent that reached the intent store without `state_set` (written by
/// hand, or by a `git pull` of an intent branch) is checked when applied.
#[test]
fn applying_a_bad_intent_written_directly_is_refused() {
    let fx = services(&["svc"]);
    let state_before = fx.dump("state/");
    let bad_deploy = format!("{}/@/deploy/prod", pkg("svc"));
    let written = [
        ("@/environment/x", json!({"name": "y", "attributes": {}})),
        (
            "@/environment/a+b",
            json!({"name": "a+b", "attributes": {}}),
        ),
        (
            bad_deploy.as_str(),
            json!({"release": "test/-/other.ocu.star/@r1", "input": {}}),
        ),
    ];
    fx.ws
        .intent()
        .update(|tx| {
            for (r, body) in &written {
                tx.set(&Ref::parse(r)?, body.clone())?;
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(
        fx.diff(),
        ["@/environment/a+b", "@/environment/x", bad_deploy.as_str()]
    );

    for (r, message) in [
        ("@/environment/x", "must match"),
        ("@/environment/a+b", "invalid environment name"),
        (bad_deploy.as_str(), "is not a release of"),
    ] {
        let err = fx.ws.state_apply(r).expect_err(r);
        assert!(err.to_string().contains(message), "{r}: {err}");
    }
    assert!(fx.ws.work_any(false).is_err(), "work_any is refused too");

    assert!(fx.dump("state/") == state_before, "state changed");
    assert_eq!(fx.log().len(), 2, "nothing ran");
}

/// The same state document through a release and its tag, with two values:
/// either `state_set` refuses the second, or applying everything leaves
/// nothing to do. It refuses it; written into the intent store directly
/// (as a `git pull` of an intent branch could), the two must still
/// converge.
#[test]
fn two_intents_for_one_custom_state_converge() {
    let fx = setup(&[("release.ocu.star", GATED)]);
    fx.release("release.ocu.star");
    fx.set("release.ocu.star/@r1/custom/approval", json!("ok"));
    let tagged = "release.ocu.star/@v1/custom/approval";
    if let Err(e) = fx.ws.state_set(tagged, json!("yes")) {
        assert!(e.to_string().contains("already sets the same state"), "{e}");
        let r = fx.ws.resolve_user_ref(tagged).unwrap();
        fx.ws
            .intent()
            .update(|tx| tx.set(&r, json!("yes")))
            .unwrap();
    }
    fx.work_any();
    assert_eq!(fx.log().len(), 3, "{:?}", fx.log());
    assert_eq!(fx.diff(), Vec::<String>::new(), "work any left a diff");
    // The intent naming the release itself wins.
    assert_eq!(
        fx.get("test/-/release.ocu.star/@r1/custom/approval"),
        Some(json!("ok"))
    );
    fx.work_any();
    assert_eq!(fx.log().len(), 3, "deployed again: {:?}", fx.log());
}

//! Deploy intents (`<pkg>/@/deploy/<env>`) deleted or pointed at another
//! release, and global custom state set, changed and removed.

use serde_json::json;

use super::{ChangeKind, applied, assert_only_applied, pkg, services, setup};

#[test]
fn deleting_a_deploy_intent_runs_down() {
    let fx = services(&["svc"]);
    let p = pkg("svc");
    let rel = format!("{p}/@r1");
    let staging = format!("{p}/@/deploy/staging");
    assert_eq!(fx.diff(), Vec::<String>::new());

    let deleted = fx.ws.state_delete("svc.ocu.star/@/deploy/staging").unwrap();
    assert_eq!(deleted.to_string(), staging);
    assert!(fx.get(&staging).is_some(), "state is unchanged");
    assert_eq!(fx.diff(), [staging.as_str()]);

    // What `state diff | xargs -n1 state apply` does.
    let outs: Vec<_> = fx.diff().iter().map(|r| fx.apply(r)).collect();
    assert_eq!(outs.len(), 1);
    assert_eq!(
        applied(&outs[0]).first(),
        Some(&(staging.clone(), ChangeKind::Delete)),
        "{:#?}",
        outs[0]
    );
    fx.snap("deploy_intent_deleted", &outs[0]);

    assert_eq!(fx.sorted_since(2), ["svc down staging"]);
    assert_eq!(fx.get(&staging), None);
    let down = format!("{rel}/deploy/staging/2");
    assert_eq!(fx.statuses(&down), ["complete"]);
    assert_eq!(fx.get(&format!("{down}#type")), Some(json!("down")));

    // The other environment is still deployed, and was not touched.
    assert_eq!(
        fx.get(&format!("{p}/@/deploy/prod#output/env")),
        Some(json!("prod"))
    );
    assert_eq!(fx.count("svc up prod a"), 1);
    assert!(fx.matches(&format!("{rel}/deploy/prod/2")).is_empty());
    fx.assert_settled();
}

#[test]
fn a_deploy_intent_naming_another_release_redeploys_it() {
    let fx = services(&["svc"]);
    let p = pkg("svc");
    // A second release at the same commit is now deployed everywhere.
    fx.release_forced("svc.ocu.star");
    assert_eq!(
        fx.get(&format!("{p}/@/deploy/prod#release")),
        Some(json!(format!("{p}/@r2")))
    );
    assert_eq!(fx.log().len(), 4);

    // Roll prod back to r1, with another flag.
    let mut input = fx
        .get(&format!("{p}/@/deploy/prod#input"))
        .expect("deployed inputs");
    input["flag"] = json!("rollback");
    fx.set(
        "svc.ocu.star/@/deploy/prod",
        json!({"release": format!("{p}/@r1"), "input": input}),
    );
    assert_eq!(fx.diff(), [format!("{p}/@/deploy/prod")]);
    let out = fx.apply(&format!("{p}/@/deploy/prod"));
    assert_eq!(
        applied(&out).first(),
        Some(&(format!("{p}/@/deploy/prod"), ChangeKind::Update)),
        "{out:#?}"
    );
    fx.snap("deploy_intent_rollback", &out);
    assert_eq!(fx.sorted_since(4), ["svc up prod rollback"]);
    assert_eq!(
        fx.get(&format!("{p}/@/deploy/prod#release")),
        Some(json!(format!("{p}/@r1")))
    );
    assert_eq!(
        fx.get(&format!("{p}/@/deploy/prod#output/flag")),
        Some(json!("rollback"))
    );
    assert_eq!(
        fx.get(&format!("{p}/@/deploy/staging#release")),
        Some(json!(format!("{p}/@r2")))
    );
    fx.assert_settled();
    assert_eq!(fx.log().len(), 5);
}

#[test]
fn custom_state_is_set_and_removed() {
    let fx = setup(&[]);
    let test = "@/custom/test";
    fx.set(test, json!("1"));
    assert_eq!(fx.get(test), None);
    assert_eq!(fx.diff(), [test]);

    let out = fx.apply(test);
    assert_only_applied(&out, &[(test, ChangeKind::Create)]);
    fx.snap("custom_state_created", &out);
    assert_eq!(fx.get(test), Some(json!("1")), "a string");
    assert_eq!(fx.diff(), Vec::<String>::new());

    // The number 1: another value.
    fx.set(test, json!(1));
    assert_eq!(fx.diff(), [test]);
    let out = fx.apply(test);
    assert_only_applied(&out, &[(test, ChangeKind::Update)]);
    assert_eq!(fx.get(test), Some(json!(1)));

    fx.ws.state_delete(test).unwrap();
    assert_eq!(fx.get(test), Some(json!(1)));
    assert_eq!(fx.diff(), [test]);
    let out = fx.apply(test);
    assert_only_applied(&out, &[(test, ChangeKind::Delete)]);
    assert_eq!(fx.get(test), None);
    assert_eq!(fx.diff(), Vec::<String>::new());
    assert!(fx.matches("**/custom/*").is_empty());
}

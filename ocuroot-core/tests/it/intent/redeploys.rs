//! Redeploys when what a deployment read changed (custom state,
//! environment attributes, another package's output), found and done by
//! `work_continue`; and the dry runs of `work_continue` and `work_any`,
//! which list that work and change nothing.

use ocuroot_core::model::ReleaseStatus;
use serde_json::json;

use super::{
    APP, ChangeKind, GATED, LIB, PKG, applied, assert_nothing, pkg, service, services, setup,
    todo_refs,
};

#[test]
fn changed_custom_state_redeploys_with_work_continue() {
    let fx = services(&["svc"]);
    let p = pkg("svc");
    fx.assert_nothing_to_continue();
    assert_eq!(fx.log().len(), 2);

    fx.set("@/custom/flag", json!("b"));
    // Intent alone changes nothing the deployments read.
    assert!(fx.plan_continue().is_empty());
    fx.apply("@/custom/flag");
    assert_eq!(fx.log().len(), 2, "applying custom state runs nothing");

    let todo = fx.plan_continue();
    assert_eq!(
        todo_refs(&todo),
        [
            format!("{p}/@r1/deploy/prod"),
            format!("{p}/@r1/deploy/staging")
        ]
    );
    for t in &todo {
        assert_eq!(t.work_type.as_str(), "run", "{t:#?}");
        assert_eq!(t.commit.as_deref(), Some(fx.sha.as_str()), "{t:#?}");
        assert!(t.reason.contains("flag"), "{t:#?}");
    }
    fx.snap("custom_state_changed_planned", &todo);

    let out = fx.work_continue();
    assert!(out.applied.is_empty() && out.ops.is_empty(), "{out:#?}");
    assert_eq!(out.releases[0].release, format!("{p}/@r1"), "{out:#?}");
    assert_eq!(out.releases[0].status, ReleaseStatus::Complete, "{out:#?}");
    fx.snap("custom_state_changed_redeployed", &out);
    assert_eq!(fx.sorted_since(2), ["svc up prod b", "svc up staging b"]);
    for env in ["staging", "prod"] {
        assert_eq!(
            fx.get(&format!("{p}/@/deploy/{env}#output/flag")),
            Some(json!("b"))
        );
        assert_eq!(
            fx.statuses(&format!("{p}/@r1/deploy/{env}/2")),
            ["complete"]
        );
    }

    // Done: a second `work_continue` has nothing to do.
    assert!(fx.plan_continue().is_empty());
    fx.assert_nothing_to_continue();
    assert_eq!(fx.log().len(), 4);
}

#[test]
fn changed_environment_attributes_redeploy_with_work_continue() {
    let fx = services(&["svc"]);
    let p = pkg("svc");
    fx.set(
        "@/environment/staging",
        json!({"name": "staging", "attributes": {"tier": 10}}),
    );
    let out = fx.apply("@/environment/staging");
    assert_eq!(
        applied(&out).first(),
        Some(&("@/environment/staging".to_string(), ChangeKind::Update)),
        "{out:#?}"
    );
    assert_eq!(fx.log().len(), 2);

    let out = fx.work_continue();
    fx.snap("environment_attributes_changed_redeployed", &out);
    assert_eq!(fx.sorted_since(2), ["svc up staging a"]);
    assert_eq!(
        fx.get(&format!(
            "{p}/@/deploy/staging#input/environment/attributes/tier"
        )),
        Some(json!(10))
    );
    fx.assert_nothing_to_continue();
    assert_eq!(fx.log().len(), 3);
}

#[test]
fn another_packages_new_output_redeploys_with_work_continue() {
    let fx = setup(&[("lib.ocu.star", LIB), ("app.ocu.star", APP)]);
    fx.release("lib.ocu.star");
    fx.release("app.ocu.star");
    assert_eq!(fx.log(), ["lib build 1", "app up staging 1"]);
    fx.assert_nothing_to_continue();

    fx.release_forced("lib.ocu.star");
    assert_eq!(fx.log().len(), 3);
    let todo = fx.plan_continue();
    assert_eq!(todo.len(), 1, "{todo:#?}");
    assert_eq!(todo[0].r#ref, format!("{}/@r1/deploy/staging", pkg("app")));
    fx.snap("new_output_planned", &todo);

    fx.work_continue();
    assert_eq!(
        fx.log(),
        [
            "lib build 1",
            "app up staging 1",
            "lib build 2",
            "app up staging 2"
        ]
    );
    assert_eq!(
        fx.get(&format!("{}/@/deploy/staging#output/n", pkg("app"))),
        Some(json!(2))
    );
    fx.work_continue();
    assert_eq!(fx.log().len(), 4);
}

#[test]
fn dryrun_lists_the_work_and_changes_nothing() {
    let fx = setup(&[
        ("release.ocu.star", GATED),
        ("svc.ocu.star", &service("svc")),
    ]);
    let svc = pkg("svc");
    fx.release("release.ocu.star");
    fx.release("svc.ocu.star");
    // Pending intent (the approval) and changed state (the flag).
    let approval = format!("{PKG}/@r1/custom/approval");
    fx.set(&approval, json!("yes"));
    fx.set("@/custom/flag", json!("b"));
    fx.apply("@/custom/flag");

    let ran = fx.log();
    assert_eq!(ran.len(), 3, "{ran:?}");
    let diff_before = fx.diff();
    assert_eq!(diff_before, [approval.as_str()]);
    // State and intent, every entry with its version.
    let store_before = fx.dump("");

    let cont = fx.plan_continue();
    let any = fx.plan_any();

    // `continue`: the two redeploys; the gated deploys are blocked.
    assert_eq!(
        todo_refs(&cont),
        [
            format!("{svc}/@r1/deploy/prod"),
            format!("{svc}/@r1/deploy/staging")
        ],
        "{cont:#?}"
    );
    for t in &cont {
        assert_eq!(t.work_type.as_str(), "run");
        assert_eq!(t.commit.as_deref(), Some(fx.sha.as_str()));
    }
    // `any`: the intent first, then the same.
    assert_eq!(
        any.first().map(|t| serde_json::to_value(t).unwrap()),
        Some(
            json!({"ref": approval, "work_type": "create", "reason": "intent differs from state"})
        ),
        "{any:#?}"
    );
    assert_eq!(&any[1..], &cont[..]);
    fx.snap("dryrun_work_any", &any);

    // Nothing changed.
    assert_eq!(fx.log(), ran);
    assert_eq!(fx.diff(), diff_before);
    assert!(fx.dump("") == store_before, "the store changed");

    // Doing it does all of it.
    fx.work_any();
    let mut new = fx.log().split_off(3);
    new.sort();
    assert_eq!(
        new,
        [
            "svc up prod b",
            "svc up staging b",
            "up prod yes",
            "up staging yes"
        ]
    );
    assert!(fx.plan_any().is_empty());
    assert_eq!(fx.diff(), Vec::<String>::new());
    assert_nothing(&fx.work_any());
}

//! Approval gates: custom state of a release, a tag or a package, set as
//! intent and applied, unblocks the work that reads it.

use ocuroot_core::model::{ReleaseReport, ReleaseStatus};
use serde_json::json;

use super::{ChangeKind, GATED, PKG, SHIP, applied, assert_nothing, setup};

#[test]
fn an_approval_on_the_release_unblocks_its_deploys() {
    let fx = setup(&[("release.ocu.star", GATED)]);
    let rel = format!("{PKG}/@r1");
    let approval = format!("{rel}/custom/approval");

    let report = fx.release("release.ocu.star");
    assert_eq!(report.status, ReleaseStatus::Blocked, "{report:#?}");
    assert!(waits_for(&report, &approval), "{report:#?}");
    fx.snap("approval_release_new_blocked", &report);
    for env in ["staging", "prod"] {
        assert_eq!(fx.statuses(&format!("{rel}/deploy/{env}/1")), ["pending"]);
    }
    assert_eq!(fx.log(), ["build"]);
    assert_eq!(fx.diff(), Vec::<String>::new());

    // Intent only (relative to the workspace's directory): state is
    // unchanged and the release stays blocked.
    let written = fx
        .ws
        .state_set("release.ocu.star/@r1/custom/approval", json!("yes"))
        .unwrap();
    assert_eq!(written.to_string(), approval);
    assert_eq!(fx.get(&approval), None);
    assert_eq!(fx.diff(), [approval.as_str()]);
    let report = fx.ws.release_continue("release.ocu.star/@r1").unwrap();
    assert_eq!(report.status, ReleaseStatus::Blocked, "{report:#?}");
    assert_eq!(fx.log(), ["build"]);

    let out = fx.apply(&approval);
    assert_eq!(
        applied(&out).first(),
        Some(&(approval.clone(), ChangeKind::Create)),
        "{out:#?}"
    );
    fx.snap("approval_apply", &out);
    assert_eq!(fx.get(&approval), Some(json!("yes")));
    assert_eq!(fx.diff(), Vec::<String>::new());
    assert_eq!(fx.log(), ["build"], "applying custom state runs nothing");

    let report = fx.ws.release_continue("release.ocu.star/@r1").unwrap();
    assert_eq!(report.release, rel);
    assert_eq!(report.status, ReleaseStatus::Complete, "{report:#?}");
    fx.snap("approval_release_continue_complete", &report);
    assert_eq!(fx.sorted_since(1), ["up prod yes", "up staging yes"]);
    for env in ["staging", "prod"] {
        assert_eq!(
            fx.get(&format!("{PKG}/@/deploy/{env}#output/approval")),
            Some(json!("yes"))
        );
    }
}

#[test]
fn work_any_applies_an_approval_and_continues_the_release() {
    let fx = setup(&[("release.ocu.star", GATED)]);
    let approval = format!("{PKG}/@r1/custom/approval");
    fx.release("release.ocu.star");
    fx.set(&approval, json!("yes"));

    // `work_continue` does not look at intent: still blocked.
    assert_nothing(&fx.work_continue());
    assert_eq!(fx.log(), ["build"]);

    let out = fx.work_any();
    assert_eq!(
        applied(&out).first(),
        Some(&(approval.clone(), ChangeKind::Create)),
        "{out:#?}"
    );
    assert!(
        out.releases
            .iter()
            .any(|r| r.release == format!("{PKG}/@r1") && r.status == ReleaseStatus::Complete),
        "{out:#?}"
    );
    fx.snap("work_any_applies_the_approval", &out);
    assert_eq!(fx.sorted_since(1), ["up prod yes", "up staging yes"]);
    assert_eq!(
        fx.get(&format!("{PKG}/@/deploy/prod#release")),
        Some(json!(format!("{PKG}/@r1")))
    );
    assert_eq!(fx.get(&format!("{PKG}/@r1#commit")), Some(json!(fx.sha)));

    // Nothing is left: a second `work_any` does nothing.
    fx.assert_settled();
    assert_eq!(fx.log().len(), 3);
}

#[test]
fn package_custom_state_unblocks_a_task_through_work_any() {
    let fx = setup(&[("release.ocu.star", SHIP)]);
    let approval = format!("{PKG}/@/custom/approval");
    let report = fx.release("release.ocu.star");
    assert!(waits_for(&report, &approval), "{report:#?}");

    fx.set("release.ocu.star/@/custom/approval", json!("ok"));
    let out = fx.work_any();
    assert!(
        applied(&out).contains(&(approval.clone(), ChangeKind::Create)),
        "{out:#?}"
    );
    fx.snap("package_custom_state_work_any", &out);
    assert_eq!(fx.log(), ["build", "ship ok"]);
    assert_eq!(fx.get(&approval), Some(json!("ok")));
    assert_eq!(
        fx.get(&format!("{PKG}/@r1/task/ship#output/approval")),
        Some(json!("ok"))
    );
    assert_eq!(fx.statuses(&format!("{PKG}/@r1/task/ship/1")), ["complete"]);
}

#[test]
fn an_approval_on_a_tag_lands_on_its_release() {
    let fx = setup(&[("release.ocu.star", GATED)]);
    fx.release("release.ocu.star");
    assert!(fx.get(&format!("{PKG}/@v1")).is_some(), "tagged v1");

    let tagged = format!("{PKG}/@v1/custom/approval");
    fx.set("release.ocu.star/@v1/custom/approval", json!("yes"));
    assert_eq!(fx.diff(), [tagged.as_str()]);
    let out = fx.apply(&tagged);
    assert_eq!(
        applied(&out).first(),
        Some(&(tagged.clone(), ChangeKind::Create)),
        "{out:#?}"
    );

    // Written through the tag's link, to the release.
    assert_eq!(
        fx.matches(&format!("{PKG}/**/custom/*")),
        [format!("{PKG}/@r1/custom/approval")]
    );
    assert_eq!(
        fx.get(&format!("{PKG}/@r1/custom/approval")),
        Some(json!("yes"))
    );
    assert_eq!(fx.diff(), Vec::<String>::new());

    let report = fx.ws.release_continue("release.ocu.star/@v1").unwrap();
    assert_eq!(report.release, format!("{PKG}/@r1"));
    assert_eq!(report.status, ReleaseStatus::Complete, "{report:#?}");
    assert_eq!(fx.sorted_since(1), ["up prod yes", "up staging yes"]);
}

/// Whether some work of `report` waits for `r`.
fn waits_for(report: &ReleaseReport, r: &str) -> bool {
    report
        .work
        .iter()
        .any(|w| w.waiting_for.iter().any(|w| *w == r))
}

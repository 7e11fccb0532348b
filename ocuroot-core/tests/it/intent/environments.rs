//! Environments added and removed through intent: the `check_envs` ops a
//! new one leaves, `work_ops`, `work_continue`, `work_any` and
//! `work_any_comprehensive`, and the downs of a removed one.

use std::sync::Arc;

use ocuroot_core::model::{ReleaseStatus, WorkState};
use serde_json::json;

use super::{ChangeKind, applied, assert_nothing, done, open, pkg, service, services, setup};

/// A new environment, as the original schedules it (its
/// `tests/environments` `create_environment`): `state_apply` records
/// `op/check_envs` on the latest release of each package and deploys
/// nothing; `work_ops` runs the ops (the deploys become pending, the ops
/// go); `work_continue` deploys.
#[test]
fn adding_an_environment_records_ops_that_work_ops_and_continue_deploy() {
    let fx = services(&["a", "b"]);
    // a's latest release is r2.
    fx.release_forced("a.ocu.star");
    let before = fx.log().len();
    assert_eq!(before, 6);

    fx.set(
        "@/environment/prod3",
        json!({"name": "prod3", "attributes": {"tier": 3}}),
    );
    assert_eq!(fx.get("@/environment/prod3"), None);
    assert_eq!(fx.diff(), ["@/environment/prod3"]);
    assert_eq!(fx.log().len(), before, "setting intent runs nothing");

    let out = fx.apply("@/environment/prod3");
    assert_eq!(
        applied(&out).first(),
        Some(&("@/environment/prod3".to_string(), ChangeKind::Create)),
        "{out:#?}"
    );
    assert!(
        out.deferred
            .iter()
            .any(|d| d.contains("work ops at commit") && !d.contains("ocuroot ")),
        "{out:#?}"
    );
    fx.snap("environment_added", &out);
    assert_eq!(
        fx.get("@/environment/prod3"),
        Some(json!({"name": "prod3", "attributes": {"tier": 3}}))
    );
    assert_eq!(fx.log().len(), before, "applying deploys nothing yet");
    let ops = [
        format!("{}/@r2/op/check_envs", pkg("a")),
        format!("{}/@r1/op/check_envs", pkg("b")),
    ];
    assert_eq!(fx.matches("**/op/*"), ops);
    assert_eq!(fx.diff(), Vec::<String>::new());

    // The `work_ops` dry run lists them; `work_continue` does not run them.
    let dry = fx.plan_ops();
    for t in &dry {
        assert_eq!(t.work_type.as_str(), "op", "{t:#?}");
    }
    let listed: Vec<String> = dry.iter().map(|t| t.r#ref.to_string()).collect();
    assert_eq!(listed, ops);
    fx.snap("environment_added_ops_planned", &dry);
    assert_nothing(&fx.work_continue());
    assert_eq!(fx.matches("**/op/*"), ops);

    // `work_ops`: the deploys are added as pending runs and the ops go.
    let out = fx.work_ops();
    fx.snap("environment_added_work_ops", &out);
    for (name, rel) in [("a", "r2"), ("b", "r1")] {
        let p = pkg(name);
        assert!(
            out.ops
                .iter()
                .any(|o| o.r#ref == format!("{p}/@{rel}/op/check_envs")
                    && o.added == [format!("{p}/@{rel}/deploy/prod3/1")]),
            "{out:#?}"
        );
        assert_eq!(
            fx.statuses(&format!("{p}/@{rel}/deploy/prod3/1")),
            ["pending"]
        );
    }
    assert_eq!(fx.matches("**/op/*"), Vec::<String>::new());
    assert_eq!(fx.log().len(), before, "work ops deploys nothing");

    // `work_continue` deploys them.
    fx.work_continue();
    assert_eq!(fx.sorted_since(before), ["a up prod3 a", "b up prod3 a"]);
    for (name, rel) in [("a", "r2"), ("b", "r1")] {
        let p = pkg(name);
        assert_eq!(
            fx.get(&format!("{p}/@/deploy/prod3#release")),
            Some(json!(format!("{p}/@{rel}"))),
            "{name}"
        );
        assert_eq!(
            fx.get(&format!("{p}/@/deploy/prod3#output/env")),
            Some(json!("prod3"))
        );
        assert_eq!(
            fx.get(&format!(
                "{p}/@/deploy/prod3#input/environment/attributes/tier"
            )),
            Some(json!(3))
        );
        assert_eq!(
            fx.statuses(&format!("{p}/@{rel}/deploy/prod3/1")),
            ["complete"]
        );
    }
    assert!(
        fx.matches(&format!("{}/@r1/deploy/prod3/**", pkg("a")))
            .is_empty(),
        "a's older release is not deployed"
    );
    // Nothing else ran again (a was deployed by r1, then r2).
    for (line, n) in [
        ("a up staging a", 2),
        ("a up prod a", 2),
        ("b up staging a", 1),
        ("b up prod a", 1),
    ] {
        assert_eq!(fx.count(line), n, "{line}");
    }
    assert_eq!(fx.diff(), Vec::<String>::new());
    fx.assert_nothing_to_continue();

    // `work_any` does all of it in one call (the original's
    // `create_environment_omnibus`); where the deploys fail, it fails.
    fx.set(
        "@/environment/broken",
        json!({"name": "broken", "attributes": {"fails": true}}),
    );
    let out = done(fx.ws.work_any(false).unwrap());
    assert!(out.failed(), "{out:#?}");
    assert_eq!(
        applied(&out).first(),
        Some(&("@/environment/broken".to_string(), ChangeKind::Create)),
        "{out:#?}"
    );
    assert!(
        out.releases
            .iter()
            .any(|r| r.status == ReleaseStatus::Failed),
        "{out:#?}"
    );
    let errors: Vec<&str> = out
        .releases
        .iter()
        .flat_map(|r| &r.work)
        .filter(|w| w.state == WorkState::Failed)
        .filter_map(|w| w.error.as_deref())
        .collect();
    assert!(errors.iter().any(|e| e.contains("boom")), "{out:#?}");
    fx.snap("environment_broken_work_any", &out);
    assert_eq!(fx.count("a up broken a"), 1);
    assert_eq!(fx.count("b up broken a"), 1);
    assert_eq!(fx.get(&format!("{}/@/deploy/broken", pkg("a"))), None);
    assert_eq!(fx.matches("**/op/*"), Vec::<String>::new());
}

/// `work_any_comprehensive` repeats until nothing is left at this commit
/// (the deploys of a new environment, and the redeploys of a package that
/// reads them, in one call).
#[test]
fn work_any_comprehensive_repeats_until_nothing_is_left() {
    let fx = setup(&[
        ("a.ocu.star", &service("a")),
        (
            "reader.ocu.star",
            r#"
def up(environment, seen):
    mark("reader up {} {}".format(environment["name"], seen))
    return done(outputs={"seen": seen})

def down(environment, seen):
    return done()

[deploy(up=up, down=down, environment=e,
        inputs={"seen": input(ref="./-/a.ocu.star/@/deploy/prod3#output/env", default="none")})
 for e in environments()]
"#,
        ),
    ]);
    for file in ["a.ocu.star", "reader.ocu.star"] {
        fx.release(file);
    }
    assert_eq!(fx.count("reader up staging none"), 1);

    fx.set(
        "@/environment/prod3",
        json!({"name": "prod3", "attributes": {}}),
    );
    let out = fx.ws.work_any_comprehensive().unwrap();
    assert!(!out.failed(), "{out:#?}");
    fx.snap("work_any_comprehensive", &out);
    // Round 1 applies the environment, runs both ops and deploys both
    // packages to prod3 (a first, so the reader's new deploy reads a's
    // output); round 2 redeploys the reader's other deployments, which
    // read that output now too.
    assert_eq!(fx.count("a up prod3 a"), 1);
    assert_eq!(fx.count("reader up prod3 none"), 0);
    assert_eq!(fx.count("reader up staging prod3"), 1);
    assert_eq!(fx.count("reader up prod prod3"), 1);
    assert_eq!(fx.count("reader up prod3 prod3"), 1);
    fx.assert_settled();
    let again = fx.ws.work_any_comprehensive().unwrap();
    assert_nothing(&again);
}

#[test]
fn deleting_an_environment_runs_every_down_in_it() {
    let fx = services(&["a", "b"]);
    fx.ws.state_delete("@/environment/prod").unwrap();
    assert!(fx.get("@/environment/prod").is_some());
    assert_eq!(fx.diff(), ["@/environment/prod"]);
    assert_eq!(fx.log().len(), 4, "deleting intent runs nothing");

    let out = fx.apply("@/environment/prod");
    assert_eq!(
        applied(&out).first(),
        Some(&("@/environment/prod".to_string(), ChangeKind::Delete)),
        "{out:#?}"
    );
    fx.snap("environment_deleted", &out);
    assert_eq!(fx.sorted_since(4), ["a down prod", "b down prod"]);
    assert_eq!(fx.get("@/environment/prod"), None);
    assert_eq!(fx.matches("@/environment/*"), ["@/environment/staging"]);
    assert!(fx.matches("**/@/deploy/prod").is_empty());
    for name in ["a", "b"] {
        let p = pkg(name);
        assert_eq!(fx.get(&format!("{p}/@/deploy/prod")), None);
        assert_eq!(
            fx.get(&format!("{p}/@r1/deploy/prod/2#type")),
            Some(json!("down"))
        );
        // The other environment's deployment is untouched.
        assert_eq!(
            fx.get(&format!("{p}/@/deploy/staging#output/env")),
            Some(json!("staging"))
        );
        assert!(fx.matches(&format!("{p}/@r1/deploy/staging/2")).is_empty());
    }
    fx.assert_settled();
    assert_eq!(fx.log().len(), 6);
}

/// An agent at another commit (`OCU_REPO_COMMIT_OVERRIDE`) applies a new
/// environment: the release is not re-evaluated there, and the outcome
/// says so; at the release's commit, `work_any` finds and does the work.
#[test]
fn an_environment_applied_elsewhere_is_deployed_by_work_at_the_release_commit() {
    let fx = services(&["svc"]);
    let p = pkg("svc");
    fx.set(
        "@/environment/prod3",
        json!({"name": "prod3", "attributes": {}}),
    );
    let elsewhere = open(
        fx.dir.path(),
        Arc::new(fx.host.with_var("OCU_REPO_COMMIT_OVERRIDE", "other")),
        &fx.store,
    );
    assert_eq!(elsewhere.commit(), "other");
    let out = elsewhere.state_apply("@/environment/prod3").unwrap();
    assert!(!out.failed(), "{out:#?}");
    assert!(!out.deferred.is_empty(), "{out:#?}");
    fx.snap("environment_applied_elsewhere", &out);
    assert_eq!(fx.log().len(), 2);

    // At the release's commit, the outstanding work is found and done.
    fx.work_any();
    assert_eq!(fx.count("svc up prod3 a"), 1, "{:?}", fx.log());
    assert_eq!(
        fx.get(&format!("{p}/@/deploy/prod3#output/env")),
        Some(json!("prod3"))
    );
}

/// Registering many environments at once (a file of 300) is a bounded
/// number of commits and store scans, not one or more per environment: the
/// intent of all of them in one batch, their state and the `check_envs` op
/// of each package's latest release in another. What it leaves is what
/// applying each would leave.
#[test]
fn registering_many_environments_is_a_bounded_number_of_commits() {
    const N: usize = 300;
    let mut files = super::packages::service_files(&["a", "b"]);
    files.push((
        "many.ocu.star".to_string(),
        format!(
            "[register_environment(environment(\"e{{}}\".format(i), {{\"type\": \"prod\"}})) for i in range({N})]\n"
        ),
    ));
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, b)| (p.as_str(), b.as_str()))
        .collect();
    let fx = setup(&refs);
    fx.release("a.ocu.star");
    fx.release("b.ocu.star");

    let counting = Arc::new(crate::store::common::CountingStore::over(&fx.store));
    let counts = || (counting.commits(), counting.lists());
    let ws = ocuroot_core::Workspace::builder(fx.dir.path())
        .host(fx.host.clone())
        .store(counting.clone() as Arc<dyn ocuroot_core::store::Store>)
        .open()
        .unwrap();
    let before = counts();
    let ocuroot_core::model::NewRelease::Environments {
        environments,
        outcome,
    } = ws.release_new("many.ocu.star", false).unwrap()
    else {
        panic!("environments expected")
    };
    let (commits, lists) = counts();
    let (commits, lists) = (commits - before.0, lists - before.1);
    assert_eq!(environments.len(), N);
    assert!(commits <= 3, "{commits} commits for {N} environments");
    assert!(lists <= 10, "{lists} listings for {N} environments");

    // Every environment applied, each op once, a line per release and
    // environment; nothing deployed yet.
    assert_eq!(outcome.applied.len(), N, "{outcome:#?}");
    assert!(
        outcome
            .applied
            .iter()
            .all(|c| c.change == ChangeKind::Create)
    );
    assert_eq!(outcome.deferred.len(), 2 * N);
    assert_eq!(fx.matches("@/environment/e*").len(), N);
    assert_eq!(
        fx.matches("**/op/*"),
        [
            format!("{}/@r1/op/check_envs", pkg("a")),
            format!("{}/@r1/op/check_envs", pkg("b")),
        ]
    );
    assert_eq!(fx.diff(), Vec::<String>::new());

    // Registered again as they are: nothing to apply, one commit at most
    // (the intent, unchanged).
    let before = counts();
    let ocuroot_core::model::NewRelease::Environments { outcome, .. } =
        ws.release_new("many.ocu.star", false).unwrap()
    else {
        panic!("environments expected")
    };
    assert_nothing(&outcome);
    assert!(counts().0 - before.0 <= 1);

    // `work_ops` then adds the N deploys to each package's release.
    let ops = done(fx.ws.work_ops(false).unwrap());
    assert_eq!(ops.ops.len(), 2, "{ops:#?}");
    assert!(ops.ops.iter().all(|o| o.added.len() == N), "{ops:#?}");
}

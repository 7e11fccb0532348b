//! `release_status`: the report of a release as it stands in state, read
//! without evaluating, running or writing anything, from any commit.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use ocuroot_core::host::{Host, LineSink, ShellOutput, ShellRequest};
use ocuroot_core::model::{NewRelease, ReleaseReport, ReleaseStatus, WorkReport, WorkState};
use ocuroot_core::store::{MemoryStore, Store};
use ocuroot_core::{ErrorKind, Workspace};
use serde_json::json;

use super::{PKG, open, setup};

/// A build, then in one phase a task that fails and a deploy to each
/// environment that waits for the release's custom state `approval`.
const MIXED: &str = r#"
def build():
    mark("build")
    return done(tags=["v1"])

def check():
    fail("the check failed")

def up(environment, approval):
    mark("up {}".format(environment["name"]))
    return done()

def down(environment, approval):
    return done()

phase("build", tasks=[task(build, name="build")])
phase("deploy", tasks=[task(check, name="check")] + [
    deploy(up=up, down=down, environment=e, inputs={"approval": input(ref="./custom/approval")})
    for e in environments()
])
"#;

#[track_caller]
fn item<'a>(report: &'a ReleaseReport, path: &str) -> &'a WorkReport {
    report
        .work
        .iter()
        .find(|w| w.path == path)
        .unwrap_or_else(|| panic!("{path} in {report:#?}"))
}

#[test]
fn release_status_reports_complete_failed_and_blocked_work_and_writes_nothing() {
    let fx = setup(&[("release.ocu.star", MIXED), ("other.ocu.star", "\n")]);
    let rel = format!("{PKG}/@r1");
    let approval = format!("{rel}/custom/approval");
    let NewRelease::Release(created) = fx.ws.release_new("release.ocu.star", false).unwrap() else {
        panic!("a release expected")
    };
    assert_eq!(created.status, ReleaseStatus::Failed, "{created:#?}");
    let ran = fx.log();
    let before = fx.dump("");

    let status = fx.ws.release_status("release.ocu.star/@r1").unwrap();
    assert_eq!(status.release, rel);
    assert_eq!(status.commit, fx.sha);
    assert_eq!(status.status, ReleaseStatus::Failed, "{status:#?}");
    assert_eq!(item(&status, "task/build").state, WorkState::Complete);
    assert_eq!(item(&status, "task/build").run, Some(1));
    let check = item(&status, "task/check");
    assert_eq!(check.state, WorkState::Failed);
    assert!(
        check.error.as_deref().unwrap().contains("the check failed"),
        "{check:#?}"
    );
    assert!(check.summary.is_some(), "{check:#?}");
    for env in ["staging", "prod"] {
        let deploy = item(&status, &format!("deploy/{env}"));
        assert_eq!(deploy.state, WorkState::Blocked, "{deploy:#?}");
        assert_eq!(deploy.waiting_for, [approval.as_str()], "{deploy:#?}");
        assert_eq!(
            deploy.run_ref.as_ref().map(|r| r.to_string()),
            Some(format!("{rel}/deploy/{env}/1"))
        );
    }
    // What `release_new` reported, read back from state.
    assert_eq!(status, created);

    // The same release by its package alone (its latest release), by a
    // tag, and by package ref.
    for arg in [
        "release.ocu.star",
        "release.ocu.star/@v1",
        "//release.ocu.star/@r1",
        "//release.ocu.star",
        rel.as_str(),
    ] {
        assert_eq!(fx.ws.release_status(arg).unwrap(), status, "{arg}");
    }

    // Nothing ran and nothing was written.
    assert_eq!(fx.log(), ran);
    assert!(fx.dump("") == before, "release_status wrote to the store");

    // A release or package that has none: not found, naming the ref.
    let missing = fx.ws.release_status("release.ocu.star/@r7").unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);
    assert!(
        missing.message().contains(&format!("{PKG}/@r7")),
        "{missing}"
    );
    assert_eq!(missing.reference(), Some(format!("{PKG}/@r7").as_str()));
    let none = fx.ws.release_status("other.ocu.star").unwrap_err();
    assert_eq!(none.kind(), ErrorKind::NotFound);
    assert!(none.message().contains("test/-/other.ocu.star"), "{none}");
    let tag = fx.ws.release_status("release.ocu.star/@v9").unwrap_err();
    assert_eq!(tag.kind(), ErrorKind::NotFound, "{tag}");

    // Once approved and continued, the deploys complete; the check stays
    // failed.
    fx.set(&approval, json!("yes"));
    fx.apply(&approval);
    let continued = fx.ws.release_continue("release.ocu.star/@r1").unwrap();
    let status = fx.ws.release_status("release.ocu.star").unwrap();
    assert_eq!(status, continued);
    assert_eq!(status.status, ReleaseStatus::Failed);
    assert_eq!(item(&status, "deploy/prod").state, WorkState::Complete);
    assert!(item(&status, "deploy/prod").waiting_for.is_empty());
}

/// Another commit, where the package file does not even exist: the status
/// is read all the same, where `release_continue` refuses.
#[test]
fn release_status_works_at_another_commit() {
    let fx = setup(&[("release.ocu.star", MIXED)]);
    let NewRelease::Release(created) = fx.ws.release_new("release.ocu.star", false).unwrap() else {
        panic!("a release expected")
    };
    std::fs::remove_file(fx.dir.path().join("release.ocu.star")).unwrap();
    let elsewhere = open(
        fx.dir.path(),
        Arc::new(fx.host.with_var("OCU_REPO_COMMIT_OVERRIDE", "other")),
        &fx.store,
    );
    assert_eq!(elsewhere.commit(), "other");
    let before = fx.dump("");
    for arg in ["//release.ocu.star/@r1", "//release.ocu.star"] {
        let status = elsewhere.release_status(arg).unwrap();
        assert_eq!(status, created, "{arg}");
        assert_eq!(status.commit, fx.sha);
    }
    assert!(fx.dump("") == before, "release_status wrote to the store");
    let refused = elsewhere
        .release_continue("//release.ocu.star/@r1")
        .unwrap_err();
    assert!(
        refused.message().contains("current commit is other"),
        "{refused}"
    );
}

/// A run waiting in `next()` for a ref that does not exist is paused, with
/// what it waits for.
#[test]
fn release_status_reports_paused_work_and_what_it_waits_for() {
    let gate = r#"
def finish(ok):
    return done()

def start():
    mark("start")
    return next(finish, inputs={"ok": ref("./-/approver.ocu.star/@/task/approve#output/ok")})

task(start, name="gate")
"#;
    let fx = setup(&[("gate.ocu.star", gate)]);
    let created = fx.release("gate.ocu.star");
    assert_eq!(created.status, ReleaseStatus::Paused, "{created:#?}");
    let status = fx.ws.release_status("gate.ocu.star").unwrap();
    assert_eq!(status, created);
    let gate = item(&status, "task/gate");
    assert_eq!(gate.state, WorkState::Paused);
    assert_eq!(
        gate.waiting_for,
        ["test/-/approver.ocu.star/@/task/approve#output/ok"]
    );
}

/// Holds every shell command until opened.
#[derive(Default)]
struct Door {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Host for Door {
    fn shell(
        &self,
        _req: &ShellRequest,
        _lines: &LineSink<'_>,
    ) -> ocuroot_core::Result<ShellOutput> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut open = self.open.lock().unwrap();
        while !*open && Instant::now() < deadline {
            open = self
                .opened
                .wait_timeout(open, Duration::from_millis(100))
                .unwrap()
                .0;
        }
        Ok(ShellOutput::default())
    }
}

/// While another thread runs a release, its status says which work is
/// running and which waits for it.
#[test]
fn release_status_reports_running_work() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("repo.ocu.star"), "repo_alias(\"t\")\n").unwrap();
    std::fs::write(
        dir.path().join("release.ocu.star"),
        "def slow():\n    host.shell(\"wait\")\n\ndef after():\n    return done()\n\n\
         phase(\"one\", tasks=[task(slow, name=\"slow\")])\n\
         phase(\"two\", tasks=[task(after, name=\"after\")])\n",
    )
    .unwrap();
    git2::Repository::init(dir.path()).unwrap();
    let door = Arc::new(Door::default());
    let ws = Workspace::builder(dir.path())
        .host(door.clone())
        .store(Arc::new(MemoryStore::new()) as Arc<dyn Store>)
        .open()
        .unwrap();
    std::thread::scope(|s| {
        let release = s.spawn(|| ws.release_new("release.ocu.star", false));
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Ok(status) = ws.release_status("release.ocu.star/@r1")
                && status.status == ReleaseStatus::Running
            {
                break status;
            }
            assert!(Instant::now() < deadline, "the release never ran");
            std::thread::sleep(Duration::from_millis(10));
        };
        *door.open.lock().unwrap() = true;
        door.opened.notify_all();
        assert_eq!(item(&status, "task/slow").state, WorkState::Running);
        assert_eq!(item(&status, "task/after").state, WorkState::Waiting);
        let Ok(NewRelease::Release(done)) = release.join().unwrap() else {
            panic!("a release expected")
        };
        assert_eq!(done.status, ReleaseStatus::Complete);
    });
    let status = ws.release_status("release.ocu.star").unwrap();
    assert_eq!(status.status, ReleaseStatus::Complete, "{status:#?}");
}

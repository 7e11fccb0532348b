//! A deploy agent in Rust: state in a store of its own ([`MapStore`]),
//! commands through a host of its own ([`ProcessHost`]).
//!
//! It copies `examples/agent` into a fresh git repository, as a user's
//! checkout would be, and drives it through the library: a release whose
//! staging deploy fails once and is retried, an approval written through
//! intent, a typed read of a deploy's outputs, a second release, and a
//! rollback through a deploy intent. One line of output per step.
//!
//! ```text
//! cargo run -p ocuroot-example-agent [-- --keep]
//! ```

mod host;
mod store;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use ocuroot_core::Workspace;
use ocuroot_core::model::{
    NewRelease, ReleaseReport, StateDoc, StateRead, WorkDoc, WorkReport, WorkState,
};
use serde_json::json;

use host::ProcessHost;
use store::MapStore;

/// The package `release.ocu.star` of the repository named `agent`.
const PKG: &str = "agent/-/release.ocu.star";

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let keep = std::env::args().any(|a| a == "--keep");
    let dir = tempfile::Builder::new()
        .prefix("ocuroot-agent-")
        .tempdir()?;
    let work = dir.path();
    check_out(work)?;

    // The workspace: the repository at `work`, our host, and one store for
    // both state and intent (kept apart under `state/` and `intent/`).
    let ws = Workspace::builder(work)
        .host(Arc::new(ProcessHost))
        .store(Arc::new(MapStore::default()))
        .open()?;

    // 1. Register the environments: staging and production.
    ws.release_new("environments.ocu.star", false)?;
    println!("environments registered");

    // 2. Release, while the next deploy is set to fail: staging fails.
    std::fs::write(work.join(".fail-next-deploy"), "")?;
    let NewRelease::Release(first) = ws.release_new("release.ocu.star", false)? else {
        return Err("release.ocu.star declares a release".into());
    };
    let staging = item(&first, "deploy/staging");
    assert_eq!(staging.state, WorkState::Failed, "{first:?}");
    let summary = staging.summary.as_deref().unwrap_or("(no summary)");
    println!("staging failed: {summary}");

    // A retry runs staging again; production then waits for an approval.
    let r1 = first.release.to_string();
    let retried = ws.release_retry(&r1)?;
    let (staging, production) = (
        item(&retried, "deploy/staging"),
        item(&retried, "deploy/production"),
    );
    let waiting: Vec<String> = production
        .waiting_for
        .iter()
        .map(|r| r.to_string())
        .collect();
    println!(
        "retried: staging {}, production {} on {}",
        staging.state,
        production.state,
        waiting.join(", ")
    );

    // 3. Approve: production deploys and the release is complete.
    let done = approve(&ws, &r1, "alice")?;
    println!("approved: release {}", done.status);

    // 4. What production runs, read typed.
    let deployed = deployed_at(&ws, &format!("{PKG}/@"))?;
    println!("production runs {}", version(&deployed));

    // 5. A second release of the same commit (hence `force`), approved too.
    let NewRelease::Release(second) = ws.release_new("release.ocu.star", true)? else {
        return Err("release.ocu.star declares a release".into());
    };
    approve(&ws, &second.release.to_string(), "bob")?;
    let deployed = deployed_at(&ws, &format!("{PKG}/@"))?;
    println!("second release: production runs {}", version(&deployed));

    // 6. Roll back: a deploy intent naming the first release, with the
    // inputs its production deploy had, applied.
    let earlier = deployed_at(&ws, &r1)?;
    let intent = format!("{PKG}/@/deploy/production");
    ws.state_set(&intent, json!({"release": r1, "input": earlier.input}))?;
    ws.state_apply(&intent)?;
    let now = deployed_at(&ws, &format!("{PKG}/@"))?;
    println!(
        "rolled back: production runs {} from {}",
        version(&now),
        now.release
    );

    let log = std::fs::read_to_string(work.join("deployed.log"))?;
    println!(
        "deployed.log: {}",
        log.lines().collect::<Vec<_>>().join(" | ")
    );
    if keep {
        println!("kept {}", dir.keep().display());
    }
    Ok(())
}

/// Copy `examples/agent` (files only) into `work` and commit it to a new
/// git repository.
fn check_out(work: &Path) -> Result<()> {
    let agent = Path::new(env!("CARGO_MANIFEST_DIR")).join("../agent");
    for entry in std::fs::read_dir(agent)? {
        let entry = entry?;
        std::fs::copy(entry.path(), work.join(entry.file_name()))?;
    }
    let git = |args: &[&str]| -> Result<()> {
        let status = Command::new("git")
            .args([
                "-c",
                "user.name=agent",
                "-c",
                "user.email=agent@example.invalid",
            ])
            .args(args)
            .current_dir(work)
            .status()?;
        if !status.success() {
            return Err(format!("git {args:?} failed: {status}").into());
        }
        Ok(())
    };
    git(&["init", "-q"])?;
    git(&["add", "-A"])?;
    git(&["commit", "-qm", "agent example"])
}

/// The work item at `path` (`deploy/staging`) of a release's report.
fn item<'a>(report: &'a ReleaseReport, path: &str) -> &'a WorkReport {
    let found = report.work.iter().find(|w| w.path == path);
    found.unwrap_or_else(|| panic!("{} has no {path}", report.release))
}

/// The version a deploy's outputs name (`done(output={"version": ...})`).
fn version(outcome: &WorkDoc) -> &str {
    outcome.output["version"].as_str().unwrap_or("(none)")
}

/// Approve `release` through intent, then run it on.
fn approve(ws: &Workspace, release: &str, by: &str) -> Result<ReleaseReport> {
    let approval = format!("{release}/custom/approval");
    // Intent first (what should be), then applied to state (what is).
    ws.state_set(&approval, json!(by))?;
    ws.state_apply(&approval)?;
    // The input production waited for exists now: run the release on.
    Ok(ws.release_continue(release)?)
}

/// The outcome of the production deploy of `release` (`<pkg>/@r1`, or
/// `<pkg>/@` for what production runs now), read typed.
fn deployed_at(ws: &Workspace, release: &str) -> Result<WorkDoc> {
    match ws.state_read(&format!("{release}/deploy/production"))? {
        Some(StateRead {
            doc: StateDoc::Work(outcome),
            ..
        }) => Ok(outcome),
        other => Err(format!("no production deploy in {release}: {other:?}").into()),
    }
}

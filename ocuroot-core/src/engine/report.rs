//! The report of a release as it stands in state, and running releases on
//! to their reports.

use std::collections::BTreeSet;

use super::EngineContext;
use super::inputs::resolve_inputs;
use super::releases::{evaluate, load_release, max_release};
use super::scheduler::{Waiting, run_until_blocked};
use super::status::{load_statuses, run_ref};
use crate::model::{
    ReleaseDoc, ReleaseReport, ReleaseStatus, RunDoc, RunStatus, WorkOutcome, WorkReport, WorkState,
};
use crate::refs::Ref;
use crate::{Error, Result};

/// The report of a release as it stands in state.
pub(crate) fn report(
    ctx: &EngineContext,
    rel: &Ref,
    doc: &ReleaseDoc,
    waiting: &Waiting,
) -> Result<ReleaseReport> {
    let statuses = &waiting.statuses;
    let mut work = Vec::new();
    let mut earlier_complete = true;
    for (i, phase) in doc.package.phases.iter().enumerate() {
        let mut phase_complete = true;
        for w in &phase.work {
            let path = w.path();
            let latest = statuses.get(&path).copied();
            let mut item = WorkReport {
                path: path.clone(),
                phase: i,
                phase_name: phase.name.clone(),
                state: WorkState::Waiting,
                run: latest.map(|l| l.run),
                run_ref: None,
                duration_ms: None,
                error: None,
                summary: None,
                waiting_for: Vec::new(),
            };
            if let Some(l) = latest {
                let run = run_ref(rel, &path, l.run);
                item.run_ref = Some(run.clone());
                // The run document, read when needed: not for a run this
                // agent just finished (what it would say is known).
                let read_doc = || -> Result<Option<RunDoc>> {
                    Ok(ctx
                        .state
                        .get(&run)?
                        .and_then(|v| serde_json::from_value(v).ok()))
                };
                let mut run_doc: Option<Option<RunDoc>> = None;
                match waiting.finished.get(&path) {
                    Some(f) if f.run == l.run && f.status == l.status => {
                        item.duration_ms = f.duration_ms;
                        item.error = f.error.clone();
                        item.summary = f.summary.clone();
                    }
                    _ => {
                        let doc = read_doc()?;
                        if let Some(d) = &doc {
                            if let (Some(s), Some(e)) = (&d.started_at, &d.finished_at) {
                                item.duration_ms = e.millis_since(*s);
                            }
                            item.error = d.error.as_ref().map(|e| e.message.clone());
                            item.summary = d.error.as_ref().map(|e| e.one_line().to_string());
                        }
                        run_doc = Some(doc);
                    }
                }
                item.state = match l.status {
                    RunStatus::Complete => WorkState::Complete,
                    RunStatus::Failed | RunStatus::FailedRetried | RunStatus::Cancelled => {
                        WorkState::Failed
                    }
                    RunStatus::Running => WorkState::Running,
                    RunStatus::Paused => WorkState::Paused,
                    RunStatus::Pending if !earlier_complete => WorkState::Waiting,
                    RunStatus::Pending => WorkState::Pending,
                };
                if matches!(l.status, RunStatus::Pending | RunStatus::Paused) && earlier_complete {
                    let missing = match waiting.missing.get(&path) {
                        Some(m) => m.clone(),
                        None => match run_doc.map_or_else(read_doc, Ok)? {
                            Some(d) => resolve_inputs(&ctx.state, &d.current_inputs())?.missing,
                            None => Vec::new(),
                        },
                    };
                    if !missing.is_empty() && l.status == RunStatus::Pending {
                        item.state = WorkState::Blocked;
                    }
                    item.waiting_for = missing;
                }
                if l.status != RunStatus::Complete {
                    phase_complete = false;
                }
            } else {
                phase_complete = false;
            }
            work.push(item);
        }
        earlier_complete = earlier_complete && phase_complete;
    }
    let status = overall(&work);
    Ok(ReleaseReport {
        release: rel.clone(),
        commit: doc.commit.clone(),
        status,
        work,
    })
}

/// `release status`: the report of release `r` as it stands in state, at
/// any commit. Nothing is evaluated, run or written: the phases and work
/// come from the release document, each item's state from its latest run's
/// status marker, and what blocked or paused work waits for from its run
/// document's inputs, resolved against state now. `r` names a release
/// (`<pkg>/@r<N>` or a tag); a package without a release (`<pkg>`) means
/// its latest release (the highest `N`). A release or package that has
/// none is [`NotFound`](crate::ErrorKind::NotFound), naming the ref.
pub(crate) fn release_status(ctx: &EngineContext, r: &Ref) -> Result<ReleaseReport> {
    let target = match r.release {
        Some(_) => r.release_ref(),
        None => {
            let package = r.package();
            let latest = max_release(ctx, &package)?;
            if latest.number() == 0 {
                return Err(
                    Error::not_found(format!("no release of {package} found")).with_ref(&package)
                );
            }
            package.with_release(&latest.to_string())
        }
    };
    let (rel, doc) = load_release(ctx, &target)?;
    let waiting = Waiting {
        statuses: load_statuses(&ctx.state, &rel)?,
        ..Waiting::default()
    };
    report(ctx, &rel, &doc, &waiting)
}

fn overall(work: &[WorkReport]) -> ReleaseStatus {
    let any = |s: WorkState| work.iter().any(|w| w.state == s);
    if any(WorkState::Failed) {
        ReleaseStatus::Failed
    } else if work.iter().all(|w| w.state == WorkState::Complete) {
        ReleaseStatus::Complete
    } else if any(WorkState::Running) {
        ReleaseStatus::Running
    } else if any(WorkState::Paused) {
        ReleaseStatus::Paused
    } else if any(WorkState::Blocked) {
        ReleaseStatus::Blocked
    } else {
        ReleaseStatus::Pending
    }
}

/// Run each release (once) if it is at the current commit; note the others.
pub(crate) fn run_releases(
    ctx: &EngineContext,
    releases: Vec<Ref>,
    out: &mut WorkOutcome,
) -> Result<()> {
    let unique: BTreeSet<Ref> = releases.into_iter().collect();
    for rel in unique {
        let (rel, doc) = load_release(ctx, &rel)?;
        if doc.commit != ctx.commit {
            out.deferred.push(format!(
                "{rel}: at commit {}, so its new runs wait for `work continue` there",
                doc.commit
            ));
            continue;
        }
        let loaded = evaluate(ctx, &ctx.root.join(&rel.filename), &rel)?;
        let waiting = run_until_blocked(ctx, &loaded, &rel, &doc, false)?;
        let report = report(ctx, &rel, &doc, &waiting)?;
        out.releases.retain(|r| r.release != report.release);
        out.releases.push(report);
    }
    Ok(())
}

//! `release new`, `release continue`, `release retry`, and the report.

use std::path::Path;

use serde_json::json;

use super::EngineContext;
use super::deps::graph_with;
use super::intent;
use super::lease::{describe_claim, judge, running_marker, take_over};
use super::record::repo_record;
use super::releases::{evaluate, load_release, next_release_id, releases_at};
use super::report::report;
use super::scheduler::run_until_blocked;
use super::status::{Latest, RunRefs, load_statuses, replace_run, run_ref, status_ref};
use crate::model::{
    CommitRecord, Environment, NewRelease, ReleaseDoc, ReleaseReport, RunDoc, RunFunction,
    RunStatus, RunType, StatusMarker, Work, WorkOutcome,
};
use crate::refs::{Ref, SubPathType, WorkPath};
use crate::sdk::FileContents;
use crate::store::{Durability, Superseded};
use crate::{Error, ErrorKind, Result};

/// `release new`: create a release of the package in `file` at the current
/// commit and run it until nothing more can run.
pub fn release_new(
    ctx: &EngineContext,
    file: &Path,
    package: &Ref,
    force: bool,
) -> Result<NewRelease> {
    // Written with the first release at this commit (once, not per try).
    let repo_record = repo_record(ctx)?;
    // The release id is needed before evaluation (relative refs resolve
    // against it); if another agent takes it first, look again.
    //
    // The refusal of a second release at this commit is part of the
    // transaction that creates the release: numbers are allocated in order
    // (r<N> is created only by an agent that saw r<N-1>, with the create
    // failing if r<N> exists), so every release created after the id is
    // chosen below has a number of at least N. The one numbered N makes
    // the create conflict; the check that follows the choice sees every
    // release before it. After a conflict both are read again, so of any
    // number of agents releasing the same commit at once, one creates the
    // release and the others are refused.
    for _ in 0..16 {
        let id = next_release_id(ctx, package)?;
        if !force {
            refuse_existing(ctx, package)?;
        }
        let rel = package.with_release(&id.to_string());
        let loaded = evaluate(ctx, file, &rel)?;
        let package_doc = match loaded.contents() {
            FileContents::Empty => return Ok(NewRelease::Empty),
            FileContents::Environments(envs) => {
                let outcome = apply_environments(ctx, envs)?;
                return Ok(NewRelease::Environments {
                    environments: envs.clone(),
                    outcome,
                });
            }
            FileContents::Release(p) => p.clone(),
        };
        // A release that would close a dependency cycle is refused before
        // anything is written.
        graph_with(ctx, Some((package, &package_doc)))?
            .order()
            .map_err(|e| e.context(format!("cannot release {package}")))?;
        let doc = ReleaseDoc {
            commit: ctx.commit.clone(),
            package: package_doc,
            created_at: Some(ctx.timestamp()),
        };
        // Founding: the release rides on the push of its first claims (one
        // push fewer per release on a git store). If another agent created
        // this number first, nothing after it is published (no claim, so no
        // work runs) and the commit that would have pushed it fails with
        // `Superseded`: look again, as after a conflict here.
        let created = ctx.state.update_with(Durability::Founding, |tx| {
            if let Some((r, record)) = &repo_record {
                tx.set_doc(r, record)?;
            }
            tx.create_doc(&rel, &doc)?;
            tx.create(
                &rel.with_subpath(SubPathType::Commit, &ctx.commit),
                serde_json::to_value(CommitRecord {
                    time: doc.created_at,
                })?,
            )?;
            for (_, w) in doc.package.work() {
                let run = RunRefs::new(&run_ref(&rel, &w.path(), 1))?;
                let run_type = match w {
                    Work::Task(_) => RunType::Task,
                    Work::Deploy(_) => RunType::Up,
                };
                let run_doc = RunDoc::new(
                    run_type,
                    rel.clone(),
                    RunFunction {
                        function: w.entry_function().clone(),
                        inputs: w.inputs().clone(),
                        resolved: None,
                    },
                );
                tx.create_doc(&run.run, &run_doc)?;
                tx.create(run.marker(RunStatus::Pending)?, json!({}))?;
            }
            Ok(())
        });
        match created {
            Ok(()) => {
                // The intent store records the repository too, as the
                // original does (a git intent branch gets its support files
                // with it, and a checkout of it knows its stores).
                // It is no claim: it shares the next push (the first
                // claims', when state and intent share a branch).
                if let Some((r, record)) = &repo_record
                    && !ctx.intent.exists(r)?
                {
                    ctx.intent
                        .update_with(Durability::Deferred, |tx| tx.set_doc(r, record))?;
                }
                // Pushed with the first claims, or, with none to carry it,
                // by the scheduler's closing sync.
                let ran = run_until_blocked(ctx, &loaded, &rel, &doc, true);
                if let Err(e) = &ran
                    && Superseded::caused(e)
                {
                    tracing::debug!(release = %rel, error = %e, "another agent created the release first; looking again");
                    continue;
                }
                for (_, w) in doc.package.work() {
                    ctx.journal.record(&run_ref(&rel, &w.path(), 1));
                }
                return report(ctx, &rel, &doc, &ran?).map(NewRelease::Release);
            }
            Err(e) if e.is_conflict() && ctx.state.exists(&rel)? => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::conflict(format!(
        "could not allocate a release number for {package}: other agents keep taking them"
    )))
}

/// The refusal of `release new` without `--force` when `package` has
/// releases at the current commit (the original's message, listing them).
fn refuse_existing(ctx: &EngineContext, package: &Ref) -> Result<()> {
    let existing = releases_at(ctx, package, &ctx.commit)?;
    if existing.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = existing.iter().map(|r| format!("  {r}")).collect();
    Err(Error::new(
        ErrorKind::AlreadyReleased,
        format!(
            "{}\nThere are already {} releases for this commit (listed above).",
            list.join("\n"),
            existing.len()
        ),
    )
    .with_ref(package))
}

/// Write environments to intent (one transaction), then apply those that
/// state does not have as they are, as `state apply` would, in one more
/// transaction: a new environment gets an `op/check_envs` on the latest
/// release of every package.
fn apply_environments(ctx: &EngineContext, envs: &[Environment]) -> Result<WorkOutcome> {
    let refs = envs
        .iter()
        .map(|env| Ref::parse(&format!("@/environment/{}", env.name)))
        .collect::<Result<Vec<_>>>()?;
    ctx.intent.update(|tx| {
        for (r, env) in refs.iter().zip(envs) {
            tx.set(r, serde_json::to_value(env)?)?;
        }
        Ok(())
    })?;
    intent::apply_environments(ctx, &refs)
}

fn check_commit(ctx: &EngineContext, rel: &Ref, doc: &ReleaseDoc) -> Result<()> {
    if doc.commit != ctx.commit {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "release {rel} was created at commit {}, but the current commit is {}.\nTo check out the expected commit, run:\n\tgit checkout {}",
                doc.commit, ctx.commit, doc.commit
            ),
        ));
    }
    Ok(())
}

fn package_file(ctx: &EngineContext, rel: &Ref) -> std::path::PathBuf {
    ctx.root.join(&rel.filename)
}

/// `release continue`: run a release further.
pub fn release_continue(ctx: &EngineContext, r: &Ref) -> Result<ReleaseReport> {
    let (rel, doc) = load_release(ctx, r)?;
    check_commit(ctx, &rel, &doc)?;
    run_on(ctx, &rel, &doc)
}

/// Run a release (checked out at its commit) until nothing more can run,
/// and report it.
fn run_on(ctx: &EngineContext, rel: &Ref, doc: &ReleaseDoc) -> Result<ReleaseReport> {
    let loaded = evaluate(ctx, &package_file(ctx, rel), rel)?;
    let waiting = run_until_blocked(ctx, &loaded, rel, doc, false)?;
    report(ctx, rel, doc, &waiting)
}

/// The release `r` names, for `release retry` and `release takeover`: the
/// one it names, or without a release id, the latest release of the
/// package at the current commit. Its commit must be checked out.
fn target_release(ctx: &EngineContext, r: &Ref) -> Result<(Ref, ReleaseDoc)> {
    let target = match r.release.as_deref() {
        Some(id) if !id.is_empty() => r.release_ref(),
        _ => {
            let package = r.package();
            releases_at(ctx, &package, &ctx.commit)?
                .pop()
                .ok_or_else(|| {
                    Error::not_found(format!("no release of {package} at commit {}", ctx.commit))
                })?
        }
    };
    let (rel, doc) = load_release(ctx, &target)?;
    check_commit(ctx, &rel, &doc)?;
    Ok((rel, doc))
}

/// `release retry`: for each failed run, mark it `failed_retried` and create
/// a new pending run with the same stored inputs, then run the release on.
/// A run left `running` by an agent whose claim has lapsed (its lease
/// expired, or its process is known to be gone) is taken over: marked
/// `cancelled` with the takeover recorded, and run again. Without a
/// release id, the latest release of the package at the current commit.
pub fn release_retry(ctx: &EngineContext, r: &Ref) -> Result<ReleaseReport> {
    let (rel, doc) = target_release(ctx, r)?;
    let statuses = load_statuses(&ctx.state, &rel)?;
    let mut failed: Vec<(&WorkPath, &Latest)> = Vec::new();
    let mut taken = 0;
    let mut elsewhere = Vec::new();
    for (path, latest) in &statuses {
        match latest.status {
            RunStatus::Failed => failed.push((path, latest)),
            RunStatus::Running => {
                let Some(marker) = running_marker(ctx, &rel, path, latest.run)? else {
                    continue;
                };
                let verdict = judge(ctx, &marker);
                if verdict.may_take_over()
                    && take_over(ctx, &rel, path, latest.run, false)?.is_some()
                {
                    taken += 1;
                } else if !verdict.may_take_over() {
                    elsewhere.push(describe_claim(path, &marker, &verdict));
                }
            }
            _ => {}
        }
    }
    if failed.is_empty() && taken == 0 {
        let mut msg = format!("no failed work to retry in {rel}");
        if !elsewhere.is_empty() {
            msg.push_str(&format!(
                "; still running in other agents: {}. If you know those agents are gone, \
                 break their claims now with release takeover",
                elsewhere.join(", ")
            ));
        }
        return Err(Error::new(ErrorKind::NothingToRetry, msg).with_ref(&rel));
    }
    // Read again in each attempt: another agent retrying the same release
    // at the same moment makes this transaction conflict, and on the next
    // attempt the runs it retried are no longer failed.
    let retried = ctx.state.update(|tx| {
        let mut retried = 0;
        for (path, latest) in &failed {
            let old = run_ref(&rel, path, latest.run);
            let next = run_ref(&rel, path, latest.run + 1);
            if tx.get(&status_ref(&old, latest.status))?.is_none() || tx.get(&next)?.is_some() {
                continue;
            }
            retried += 1;
            replace_run(
                tx,
                &RunRefs::new(&old)?,
                (latest.status, RunStatus::FailedRetried),
                StatusMarker::default(),
                &next,
            )?;
        }
        Ok(retried)
    })?;
    if retried == 0 && taken == 0 {
        return Err(Error::new(
            ErrorKind::NothingToRetry,
            format!("no failed work to retry in {rel}: another agent retried it meanwhile"),
        )
        .with_ref(&rel));
    }
    run_on(ctx, &rel, &doc)
}

/// `release takeover`: break every claim on the runs of a release at once,
/// for a person who knows the agents holding them are gone. Each running
/// run is taken over whatever its lease says (marked `cancelled`, the
/// takeover recorded, a new pending run created), then the release runs
/// on. Without a release id, the latest release of the package at the
/// current commit.
pub fn release_takeover(ctx: &EngineContext, r: &Ref) -> Result<ReleaseReport> {
    let (rel, doc) = target_release(ctx, r)?;
    let mut taken = 0;
    for (path, latest) in load_statuses(&ctx.state, &rel)? {
        if latest.status == RunStatus::Running
            && take_over(ctx, &rel, &path, latest.run, true)?.is_some()
        {
            taken += 1;
        }
    }
    if taken == 0 {
        return Err(Error::new(
            ErrorKind::NothingToRetry,
            format!("nothing to take over in {rel}: none of its runs is running"),
        )
        .with_ref(&rel));
    }
    run_on(ctx, &rel, &doc)
}

//! `release new`, `release continue`, `release retry`, and the report.

use std::path::Path;

use serde_json::json;

use super::inputs::resolve_inputs;
use super::intent::{self, WorkOutcome};
use super::scheduler::{Waiting, run_until_blocked};
use super::status::{Latest, RunRefs, load_statuses, run_ref, set_status, status_ref};
use super::{EngineContext, millis_between};
use crate::host::Agent;
use crate::model::{
    Environment, ReleaseDoc, ReleaseReport, ReleaseStatus, RunDoc, RunFunction, RunStatus, RunType,
    Work, WorkReport, WorkState,
};
use crate::refs::{Ref, SubPathType};
use crate::sdk::{self, EvalOptions, FileContents, LoadedFile};
use crate::{Error, ErrorKind, Result};

/// What `release new` did.
///
/// Its JSON form (what the C and Python bindings return) is tagged by
/// `kind`: `{"kind": "release", ...}` with the fields of the
/// [`ReleaseReport`], `{"kind": "environments", "environments": [...],
/// "outcome": {...}}`, or `{"kind": "empty"}`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NewRelease {
    /// A release was created and run as far as it could go.
    Release(ReleaseReport),
    /// The file registers environments; they were written to intent and
    /// applied to state.
    Environments {
        /// The environments the file registers.
        environments: Vec<Environment>,
        /// What applying them did: each new environment leaves an
        /// `op/check_envs` on the latest release of each package.
        outcome: WorkOutcome,
    },
    /// The file declares neither a release nor environments.
    Empty,
}

impl NewRelease {
    /// Whether the release has failed work, or a release run by applying
    /// the environments did.
    pub fn failed(&self) -> bool {
        match self {
            NewRelease::Release(r) => r.is_failed(),
            NewRelease::Environments { outcome, .. } => outcome.failed(),
            NewRelease::Empty => false,
        }
    }
}

/// The environments in state, sorted by name.
pub(crate) fn environments(ctx: &EngineContext) -> Result<Vec<Environment>> {
    let mut envs = Vec::new();
    for r in ctx.state.match_globs(&["@/environment/*"])? {
        let Some(doc) = ctx.state.get_str(&r)? else {
            continue;
        };
        let env: Environment = serde_json::from_value(doc)
            .map_err(|e| Error::store(format!("{r}: invalid environment document: {e}")))?;
        envs.push(env);
    }
    envs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(envs)
}

/// Evaluate the package file of `base`'s package against current state.
pub(crate) fn evaluate(ctx: &EngineContext, file: &Path, base: &Ref) -> Result<LoadedFile> {
    let mut options = EvalOptions::new(ctx.host.clone(), ctx.root.clone(), base.clone());
    options.environments = environments(ctx)?.into();
    options.secrets = ctx.secrets.clone();
    options.limits = ctx.limits;
    sdk::evaluate_package(file, &options)
}

/// The releases of `package` at `commit`, ordered by release number.
pub(crate) fn releases_at(ctx: &EngineContext, package: &Ref, commit: &str) -> Result<Vec<Ref>> {
    let glob = format!("{package}/@*/commit/{commit}");
    let mut out: Vec<(u64, Ref)> = Vec::new();
    for r in ctx.state.match_globs(&[glob.as_str()])? {
        let rel = Ref::parse(&r)?.release_ref();
        out.push((rel.release_number().unwrap_or(0), rel));
    }
    out.sort_by_key(|(n, _)| *n);
    Ok(out.into_iter().map(|(_, r)| r).collect())
}

/// The largest release number of a package (0 when it has none).
fn max_release(ctx: &EngineContext, package: &Ref) -> Result<u64> {
    let glob = format!("{package}/@r*");
    Ok(ctx
        .state
        .match_globs(&[glob.as_str()])?
        .iter()
        .filter_map(|r| r.rsplit("/@r").next()?.parse::<u64>().ok())
        .max()
        .unwrap_or(0))
}

/// The release id `release new` would allocate next.
pub(crate) fn next_release_id(ctx: &EngineContext, package: &Ref) -> Result<String> {
    Ok(format!("r{}", max_release(ctx, package)? + 1))
}

/// `release new`: create a release of the package in `file` at the current
/// commit and run it until nothing more can run.
pub fn release_new(
    ctx: &EngineContext,
    file: &Path,
    package: &Ref,
    force: bool,
) -> Result<NewRelease> {
    if !force {
        let existing = releases_at(ctx, package, &ctx.commit)?;
        if !existing.is_empty() {
            let list: Vec<String> = existing.iter().map(|r| format!("  {r}")).collect();
            return Err(Error::invalid_input(format!(
                "{}\nThere are already {} releases for this commit (listed above).\nYou can force a new release with the --force flag",
                list.join("\n"),
                existing.len()
            )));
        }
    }
    // Written with the first release at this commit (once, not per try).
    let repo_record = super::cascade::repo_record(ctx)?;
    // The release id is needed before evaluation (relative refs resolve
    // against it); if another agent takes it first, evaluate again.
    for _ in 0..16 {
        let rel = package.with_release(&next_release_id(ctx, package)?);
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
        super::cascade::graph_with(ctx, Some((package, &package_doc)))?
            .order()
            .map_err(|e| e.context(format!("cannot release {package}")))?;
        let doc = ReleaseDoc {
            commit: ctx.commit.clone(),
            package: package_doc,
            created_at: ctx.timestamp(),
        };
        let created = ctx.state.update(|tx| {
            if let Some((r, record)) = &repo_record {
                tx.set(r, record.clone())?;
            }
            tx.create_doc(&rel, &doc)?;
            tx.create(
                &rel.with_subpath(SubPathType::Commit, &ctx.commit),
                json!({"time": doc.created_at}),
            )?;
            for (_, w) in doc.package.work() {
                let run = RunRefs::new(&run_ref(&rel, &w.path(), 1)?)?;
                let run_type = match w {
                    Work::Task(_) => RunType::Task,
                    Work::Deploy(_) => RunType::Up,
                };
                let run_doc = RunDoc::new(
                    run_type,
                    rel.to_string(),
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
                if let Some((r, record)) = &repo_record
                    && !ctx.intent.exists(r)?
                {
                    ctx.intent.update(|tx| tx.set(r, record.clone()))?;
                }
                for (_, w) in doc.package.work() {
                    ctx.journal.record(run_ref(&rel, &w.path(), 1)?);
                }
                let waiting = run_until_blocked(ctx, &loaded, &rel, &doc, true)?;
                return report(ctx, &rel, &doc, &waiting).map(NewRelease::Release);
            }
            Err(e) if e.is_conflict() && ctx.state.exists(&rel)? => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::conflict(format!(
        "could not allocate a release number for {package}: other agents keep taking them"
    )))
}

/// Write environments to intent (one transaction), then apply each that
/// state does not have as it is, as `state apply` would: a new environment
/// gets an `op/check_envs` on the latest release of every package.
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
    let mut outcome = WorkOutcome::default();
    for (r, env) in refs.iter().zip(envs) {
        // Registered again as it is: nothing to apply.
        if ctx.state.get(r)? == Some(serde_json::to_value(env)?) {
            continue;
        }
        outcome.merge(intent::apply(ctx, r)?);
    }
    Ok(outcome)
}

/// Resolve a release ref (`<pkg>/@r1` or a tag `<pkg>/@v1`) to `<pkg>/@r<N>`
/// and load its document.
pub(crate) fn load_release(ctx: &EngineContext, r: &Ref) -> Result<(Ref, ReleaseDoc)> {
    let rel = r.release_ref();
    match rel.release.as_deref() {
        None | Some("") => {
            return Err(Error::invalid_input(format!(
                "{r} does not name a release: give one like <package>/@r1 or a tag <package>/@v1"
            )));
        }
        _ => {}
    }
    let resolved = ctx.state.resolve(&rel)?.release_ref();
    let doc = ctx
        .state
        .get(&resolved)?
        .ok_or_else(|| Error::not_found(format!("release {rel} not found")))?;
    let doc: ReleaseDoc = serde_json::from_value(doc)
        .map_err(|e| Error::store(format!("{resolved}: invalid release document: {e}")))?;
    Ok((resolved, doc))
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
    let loaded = evaluate(ctx, &package_file(ctx, &rel), &rel)?;
    let waiting = run_until_blocked(ctx, &loaded, &rel, &doc, false)?;
    report(ctx, &rel, &doc, &waiting)
}

/// `release retry`: for each failed run, mark it `failed_retried` and create
/// a new pending run with the same stored inputs, then run the release on.
/// A run left `running` by an agent known to have died (same host, process
/// gone) is retried the same way and marked `cancelled`. Without a release
/// id, the latest release of the package at the current commit.
pub fn release_retry(ctx: &EngineContext, r: &Ref) -> Result<ReleaseReport> {
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
    let statuses = load_statuses(&ctx.state, &rel)?;
    // Failed runs, and runs left `running` by an agent known to have died.
    let mut retry: Vec<(&String, &Latest)> = Vec::new();
    let mut elsewhere = Vec::new();
    for (path, latest) in &statuses {
        match latest.status {
            RunStatus::Failed => retry.push((path, latest)),
            RunStatus::Running => {
                let run = run_ref(&rel, path, latest.run)?;
                let agent = ctx
                    .state
                    .get(&status_ref(&run, RunStatus::Running))?
                    .and_then(|m| serde_json::from_value::<Agent>(m["agent"].clone()).ok());
                match agent {
                    Some(a) if ctx.host.agent_alive(&a) == Some(false) => {
                        retry.push((path, latest))
                    }
                    Some(a) => elsewhere.push(format!("{path} (agent {} pid {})", a.host, a.pid)),
                    None => elsewhere.push(path.clone()),
                }
            }
            _ => {}
        }
    }
    if retry.is_empty() {
        let mut msg = format!("no failed work to retry in {rel}");
        if !elsewhere.is_empty() {
            msg.push_str(&format!(
                "; still running in other agents: {}",
                elsewhere.join(", ")
            ));
        }
        return Err(Error::invalid_input(msg));
    }
    // Read again in each attempt: another agent retrying the same release
    // at the same moment makes this transaction conflict, and on the next
    // attempt the runs it retried are no longer failed.
    let retried = ctx.state.update(|tx| {
        let mut retried = 0;
        for (path, latest) in &retry {
            let old = run_ref(&rel, path, latest.run)?;
            let next = run_ref(&rel, path, latest.run + 1)?;
            if tx.get(&status_ref(&old, latest.status))?.is_none() || tx.get(&next)?.is_some() {
                continue;
            }
            retried += 1;
            let old_doc: RunDoc = serde_json::from_value(
                tx.get(&old)?
                    .ok_or_else(|| Error::store(format!("run {old} has no document")))?,
            )
            .map_err(|e| Error::store(format!("{old}: invalid run document: {e}")))?;
            let mut first = old_doc
                .functions
                .first()
                .cloned()
                .ok_or_else(|| Error::store(format!("run {old} has no function")))?;
            first.resolved = None;
            let new_doc = RunDoc::new(old_doc.run_type, old_doc.release, first);
            let new = next;
            // A failed run becomes failed_retried; one abandoned by a dead
            // agent becomes cancelled.
            let to = match latest.status {
                RunStatus::Running => RunStatus::Cancelled,
                _ => RunStatus::FailedRetried,
            };
            set_status(
                tx,
                &RunRefs::new(&old)?,
                latest.status,
                to,
                json!({"retried_by": new.to_string()}),
            )?;
            tx.create_doc(&new, &new_doc)?;
            tx.create(&status_ref(&new, RunStatus::Pending), json!({}))?;
        }
        Ok(retried)
    })?;
    if retried == 0 {
        return Err(Error::invalid_input(format!(
            "no failed work to retry in {rel}: another agent retried it meanwhile"
        )));
    }
    let loaded = evaluate(ctx, &package_file(ctx, &rel), &rel)?;
    let waiting = run_until_blocked(ctx, &loaded, &rel, &doc, false)?;
    report(ctx, &rel, &doc, &waiting)
}

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
                waiting_for: Vec::new(),
            };
            if let Some(l) = latest {
                let run = run_ref(rel, &path, l.run)?;
                item.run_ref = Some(run.to_string());
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
                    }
                    _ => {
                        let doc = read_doc()?;
                        if let Some(d) = &doc {
                            if let (Some(s), Some(e)) = (&d.started_at, &d.finished_at) {
                                item.duration_ms = millis_between(s, e);
                            }
                            item.error = d.error.as_ref().map(|e| e.message.clone());
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
                    item.waiting_for = missing.iter().map(|r| r.to_string()).collect();
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
        release: rel.to_string(),
        commit: doc.commit.clone(),
        status,
        work,
    })
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

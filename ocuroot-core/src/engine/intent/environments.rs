//! Environments in intent: a new one gets the deploys that target it
//! (through `op/check_envs` on the latest release of every package); a
//! deleted one is undeployed, then removed from state.

use std::collections::{BTreeSet, HashSet};

use serde_json::{Value, json};

use super::deploys::{deploy_in, undeploy};
use super::{IntentKind, apply, validate_intent};
use crate::engine::EngineContext;
use crate::engine::releases::{check_envs_ref, evaluate, latest_releases, load_release};
use crate::engine::status::{run_ref, status_ref};
use crate::model::{
    ChangeKind, IntentChange, OpReport, RunDoc, RunFunction, RunStatus, RunType, Work, WorkOutcome,
};
use crate::refs::{Ref, WorkPath};
use crate::{Error, Result};

/// A new environment, as the original schedules it: the latest release of
/// every package that does not deploy to it yet gets an
/// `<rel>/op/check_envs` marker. `work ops` at the release's commit (or
/// `work any`, or a cascade) re-evaluates the file and adds the deploys it
/// now makes; `work continue` runs them.
pub(super) fn add_environment_ops(
    ctx: &EngineContext,
    env: &str,
    out: &mut WorkOutcome,
) -> Result<()> {
    let ops = LatestReleases::load(ctx)?.check_envs_ops(&[env], out);
    if ops.is_empty() {
        return Ok(());
    }
    ctx.state.update(|tx| {
        for op in &ops {
            tx.set(op, json!({}))?;
        }
        Ok(())
    })?;
    for op in &ops {
        ctx.journal.record(op);
    }
    Ok(())
}

/// The latest release of every package, each with the environments it
/// deploys to: read once for any number of new environments.
struct LatestReleases(Vec<(Ref, String, HashSet<String>)>);

impl LatestReleases {
    fn load(ctx: &EngineContext) -> Result<LatestReleases> {
        let mut out = Vec::new();
        for rel in latest_releases(ctx)? {
            let (rel, doc) = load_release(ctx, &rel)?;
            let envs = doc
                .package
                .phases
                .iter()
                .flat_map(|p| &p.work)
                .filter_map(|w| match w {
                    Work::Deploy(d) => Some(d.environment.as_str().to_string()),
                    Work::Task(_) => None,
                })
                .collect();
            out.push((rel, doc.commit, envs));
        }
        Ok(LatestReleases(out))
    }

    /// The `op/check_envs` markers `envs` call for (each once), with a
    /// line in `out.deferred` for each release and environment.
    fn check_envs_ops(&self, envs: &[&str], out: &mut WorkOutcome) -> BTreeSet<Ref> {
        let mut ops = BTreeSet::new();
        for env in envs {
            for (rel, commit, deployed) in &self.0 {
                if deployed.contains(*env) {
                    continue;
                }
                let op = check_envs_ref(rel);
                out.deferred.push(format!(
                    "{op}: work ops at commit {commit} adds the deploys to {env:?} it now makes, \
                     work continue runs them (work any does both)"
                ));
                ops.insert(op);
            }
        }
        ops
    }
}

/// Apply the intent of the environments `refs` (registering them): what
/// [`apply`] does for each, in one state transaction, with the releases of
/// every package read once, so registering N environments costs one
/// commit and one scan of the store, not N. An environment whose state is
/// already its intent is left alone; one whose intent is gone is removed
/// as [`apply`] removes it.
pub fn apply_environments(ctx: &EngineContext, refs: &[Ref]) -> Result<WorkOutcome> {
    let mut out = WorkOutcome::default();
    let mut wanted: Vec<(&Ref, Value, ChangeKind)> = Vec::new();
    for r in refs {
        if IntentKind::require(r)? != IntentKind::Environment {
            return Err(Error::invalid_input(format!("{r} is not an environment")).with_ref(r));
        }
        let Some(value) = ctx.intent.get(r)? else {
            out.merge(apply(ctx, r)?);
            continue;
        };
        validate_intent(r, &value)?;
        let change = match ctx.state.get(r)? {
            Some(current) if current == value => continue,
            Some(_) => ChangeKind::Update,
            None => ChangeKind::Create,
        };
        wanted.push((r, value, change));
    }
    if wanted.is_empty() {
        return Ok(out);
    }
    let names: Vec<&str> = wanted.iter().map(|(r, _, _)| r.subpath.as_str()).collect();
    let ops = LatestReleases::load(ctx)?.check_envs_ops(&names, &mut out);
    ctx.state.update(|tx| {
        for (r, value, _) in &wanted {
            tx.set(*r, value.clone())?;
        }
        for op in &ops {
            tx.set(op, json!({}))?;
        }
        Ok(())
    })?;
    for (r, _, change) in wanted {
        ctx.journal.record(r);
        out.applied.push(IntentChange {
            r#ref: r.clone(),
            change,
        });
    }
    for op in &ops {
        ctx.journal.record(op);
    }
    Ok(out)
}

/// Run the op `<rel>/op/check_envs` (at the current commit): re-evaluate
/// the release's file with the environments now in state, add the deploys
/// it now makes that the release lacks, each in the phase the file puts it
/// in as pending run 1, and remove the op, in one transaction. Nothing when
/// the op is gone already (another agent ran it).
pub(crate) fn run_check_envs(ctx: &EngineContext, rel: &Ref) -> Result<Option<OpReport>> {
    // Another agent may change the release (running this op, or another
    // one) between the read and the commit: then read it again.
    for _ in 0..16 {
        if let Some(done) = check_envs_once(ctx, rel)? {
            return Ok(done);
        }
    }
    Err(Error::conflict(format!(
        "{rel}: the release kept changing while its op/check_envs ran (other agents are adding \
         deploys to it)"
    )))
}

/// One try of [`run_check_envs`]: `None` when the release changed after it
/// was read.
fn check_envs_once(ctx: &EngineContext, rel: &Ref) -> Result<Option<Option<OpReport>>> {
    let (rel, doc) = load_release(ctx, rel)?;
    let op = check_envs_ref(&rel);
    if !ctx.state.exists(&op)? {
        return Ok(Some(None));
    }
    let loaded = evaluate(ctx, &ctx.root.join(&rel.filename), &rel)?;
    let mut updated = doc.clone();
    let mut new_runs = Vec::new();
    if let crate::sdk::FileContents::Release(package) = loaded.contents() {
        for (phase_index, work) in package.work() {
            let Work::Deploy(new) = work else {
                continue;
            };
            if deploy_in(&doc, new.environment.as_str()).is_some() {
                continue;
            }
            // The phase of the same name in the release, else the same position.
            let name = &package.phases[phase_index].name;
            let target = updated
                .package
                .phases
                .iter()
                .position(|p| !name.is_empty() && p.name == *name)
                .unwrap_or(phase_index.min(updated.package.phases.len().saturating_sub(1)));
            let Some(phase) = updated.package.phases.get_mut(target) else {
                continue;
            };
            phase.work.push(Work::Deploy(new.clone()));
            let run = run_ref(&rel, &WorkPath::deploy(new.environment.as_str()), 1);
            let run_doc = RunDoc::new(
                RunType::Up,
                rel.clone(),
                RunFunction {
                    function: new.up.clone(),
                    inputs: new.inputs.clone(),
                    resolved: None,
                },
            );
            new_runs.push((run, run_doc));
        }
    }
    let before = serde_json::to_value(&doc)?;
    let done = ctx.state.update(|tx| {
        if !tx.exists(&op)? {
            return Ok(Some(false));
        }
        if tx.get(&rel)?.as_ref() != Some(&before) {
            return Ok(None);
        }
        if !new_runs.is_empty() {
            tx.set(&rel, serde_json::to_value(&updated)?)?;
        }
        for (run, run_doc) in &new_runs {
            tx.create(run, serde_json::to_value(run_doc)?)?;
            tx.create(&status_ref(run, RunStatus::Pending), json!({}))?;
        }
        tx.delete(&op)?;
        Ok(Some(true))
    })?;
    match done {
        None => return Ok(None),
        Some(false) => return Ok(Some(None)),
        Some(true) => {}
    }
    for (run, _) in &new_runs {
        ctx.journal.record(run);
    }
    Ok(Some(Some(OpReport {
        r#ref: op.clone(),
        added: new_runs.into_iter().map(|(run, _)| run).collect(),
    })))
}

/// A deleted environment: a `down` run for every deployment in it.
pub(super) fn remove_environment(ctx: &EngineContext, r: &Ref) -> Result<Vec<Ref>> {
    let env = &r.subpath;
    let mut touched = Vec::new();
    for text in ctx.state.match_globs(&[format!("**/@/deploy/{env}")])? {
        let deployment = Ref::parse(&text)?;
        if let Some(rel) = undeploy(ctx, &deployment)?.act(ctx)? {
            touched.push(rel);
        }
    }
    Ok(touched)
}

/// Remove a deleted environment from state once nothing is deployed to it.
pub(super) fn finish_environment_removal(
    ctx: &EngineContext,
    r: &Ref,
    out: &mut WorkOutcome,
) -> Result<()> {
    let env = &r.subpath;
    let left = ctx.state.match_globs(&[format!("**/@/deploy/{env}")])?;
    if left.is_empty() {
        ctx.state.update(|tx| tx.delete(r))?;
    } else {
        out.deferred.push(format!(
            "{r} stays in state until these are undeployed: {}",
            left.join(", ")
        ));
    }
    Ok(())
}

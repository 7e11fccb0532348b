//! Deploy intents, `<pkg>/@/deploy/<env>` = `{"release", "input"}`: the
//! engine writes one as an `up` starts (and deletes it as a `down` starts);
//! a person points it at another release or other inputs to redeploy, or
//! deletes it to undeploy.
//!
//! Applying one compares it with state, and several agents may do that at
//! once, each with its own view of two stores. Two rules keep every
//! deployment done once, and never undone by a stale view:
//!
//! - **Intent is read after state.** The engine writes a deploy intent, and
//!   makes every agent see it, before the run it starts can reach state. So
//!   an intent read after state (with the intent store refreshed in
//!   between) is never older than what state shows: an agent cannot mistake
//!   an older intent for a rollback, or a missing one for an undeploy.
//!   [`apply_deploy`] decides from state, then reads the intent again, and
//!   acts only if it is the one the decision was about.
//! - **Work in flight is not a difference.** While the deployment's run is
//!   pending, running or paused, that run is what the intent calls for
//!   ([`deploy_in_flight`]).
//!
//! And a new run is created only after the run the decision saw (see
//! `status::new_run`): of agents acting on one change at once, one creates
//! the run.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::engine::EngineContext;
use crate::engine::releases::load_release;
use crate::engine::status::{Latest, NewRun, latest_status, load_run, new_run};
use crate::model::{Deploy, InputSpec, ReleaseDoc, RunFunction, RunType, Work};
use crate::refs::{Ref, SubPathType, WorkPath};
use crate::{Error, Result};

/// A deploy intent: which release is deployed, with which inputs.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, Serialize)]
pub(super) struct DeployIntent {
    pub release: String,
    #[serde(default)]
    pub input: BTreeMap<String, Value>,
}

impl DeployIntent {
    pub(super) fn from_value(r: &Ref, value: &Value) -> Result<DeployIntent> {
        serde_json::from_value(value.clone()).map_err(|e| {
            Error::validation(format!(
                "intent {r}: a deploy intent is {{\"release\": \"<package>/@r<N>\", \"input\": {{...}}}}: {e}"
            ))
        })
    }
}

/// The current deployment `<pkg>/@/deploy/<env>` links to, and its work
/// document.
pub(super) fn deployed(ctx: &EngineContext, r: &Ref) -> Result<Option<(Ref, Value)>> {
    let Some(target) = ctx.state.is_link(r)? else {
        return Ok(None);
    };
    Ok(ctx.state.get(&target)?.map(|doc| (target, doc)))
}

/// Whether a deployment's work document is what a deploy intent wants: the
/// same release, with the same inputs.
pub(super) fn same_deploy(wanted: &Value, current: &Value) -> bool {
    wanted.get("release") == current.get("release")
        && wanted.get("input").unwrap_or(&Value::Null)
            == current.get("input").unwrap_or(&Value::Null)
}

/// Whether the deployment of `release` (a release or tag ref) to `env` has
/// a run still to finish (pending, running or paused). A deploy intent
/// that differs from state while such a run exists is not a difference:
/// the run is applying it (an `up` writes the deploy intent as it starts,
/// long before its outcome reaches state; a `down` deletes it), or will.
/// Applying it again would deploy twice.
pub(super) fn deploy_in_flight(ctx: &EngineContext, release: &Ref, env: &str) -> Result<bool> {
    let Ok(rel) = ctx.state.resolve(&release.release_ref()) else {
        return Ok(false);
    };
    Ok(
        latest_status(&ctx.state, &rel.release_ref(), &WorkPath::deploy(env))?
            .is_some_and(Latest::in_flight),
    )
}

/// The deploy of `env` in a release's package.
pub(super) fn deploy_in<'d>(doc: &'d ReleaseDoc, env: &str) -> Option<&'d Deploy> {
    doc.package.work().find_map(|(_, w)| match w {
        Work::Deploy(d) if d.environment.as_str() == env => Some(d),
        _ => None,
    })
}

/// What a deploy intent (or its absence) comes to, decided from state.
pub(super) enum Decision {
    /// State is what the intent wants.
    Nothing,
    /// A run of this release is to finish first (it is in flight): run the
    /// release on.
    Run(Ref),
    /// A new run of this release.
    Create {
        release: Ref,
        path: WorkPath,
        run: NewRun,
    },
}

impl Decision {
    /// Do it. Returns the release to run on, if any.
    pub(super) fn act(self, ctx: &EngineContext) -> Result<Option<Ref>> {
        match self {
            Decision::Nothing => Ok(None),
            Decision::Run(rel) => Ok(Some(rel)),
            Decision::Create { release, path, run } => {
                new_run(ctx, &release, &path, run)?;
                Ok(Some(release))
            }
        }
    }
}

/// Apply the deploy intent at `r` (present: redeploy to it; absent:
/// undeploy). Decided from state, then confirmed against the intent read
/// again, fresh (see the module docs). Returns the release to run on.
pub(super) fn apply_deploy(ctx: &EngineContext, r: &Ref) -> Result<Option<Ref>> {
    for _ in 0..8 {
        let wanted = ctx.intent.get(r)?;
        let decision = match &wanted {
            Some(value) => redeploy(ctx, r, &DeployIntent::from_value(r, value)?)?,
            None => undeploy(ctx, r)?,
        };
        ctx.intent.store().refresh()?;
        if ctx.intent.get(r)? == wanted {
            return decision.act(ctx);
        }
    }
    Err(Error::conflict(format!(
        "intent {r} kept changing while it was applied"
    )))
}

/// A deploy intent present: a new `up` of its release with its inputs,
/// unless that is what is deployed, or a run of that deployment is still
/// to finish.
fn redeploy(ctx: &EngineContext, r: &Ref, intent: &DeployIntent) -> Result<Decision> {
    let target = Ref::parse(&intent.release)?;
    let env = &r.subpath;
    let (mut rel, mut doc) = load_release(ctx, &target)?;
    if deploy_in(&doc, env).is_none() {
        // The intent may be newer than this agent's view of state (another
        // agent added the deployment, then started it): read state afresh
        // before calling the intent wrong.
        ctx.state.store().refresh()?;
        (rel, doc) = load_release(ctx, &target)?;
    }
    let deploy = deploy_in(&doc, env).ok_or_else(|| {
        Error::not_found(format!(
            "intent {r}: release {rel} has no deployment to environment {env:?}"
        ))
    })?;
    let path = WorkPath::deploy(env.as_str());
    // Read before anything the decision rests on (see `new_run`).
    let latest = latest_status(&ctx.state, &rel, &path)?;
    if latest.is_some_and(Latest::in_flight) {
        return Ok(Decision::Run(rel));
    }
    let work_doc = ctx.state.get(&rel.with_subpath(SubPathType::Deploy, env))?;
    let current = deployed(ctx, r)?;
    let wanted = serde_json::to_value(intent)?;
    let is_current = current
        .as_ref()
        .is_some_and(|(target, _)| target.release_ref() == rel);
    if is_current && work_doc.is_some_and(|d| same_deploy(&wanted, &d)) {
        return Ok(Decision::Nothing);
    }
    let inputs = intent
        .input
        .iter()
        .map(|(k, v)| (k.clone(), InputSpec::Value(v.clone())))
        .collect();
    Ok(Decision::Create {
        release: rel,
        path,
        run: NewRun {
            run_type: RunType::Up,
            function: RunFunction {
                function: deploy.up.clone(),
                inputs,
                resolved: None,
            },
            after: latest,
            replaces: None,
        },
    })
}

/// A `down` run for the deployment `<pkg>/@/deploy/<env>` (if there is
/// one), with the inputs its `up` ran with; nothing while a run of it is
/// still to finish.
pub(super) fn undeploy(ctx: &EngineContext, r: &Ref) -> Result<Decision> {
    let Some(target) = ctx.state.is_link(r)? else {
        return Ok(Decision::Nothing);
    };
    let (rel, doc) = load_release(ctx, &target.release_ref())?;
    let env = &r.subpath;
    let path = WorkPath::deploy(env.as_str());
    // Read before anything the decision rests on (see `new_run`).
    let latest = latest_status(&ctx.state, &rel, &path)?;
    if latest.is_some_and(Latest::in_flight) {
        // Its down, or an up to finish first.
        return Ok(Decision::Run(rel));
    }
    let Some(work_doc) = ctx.state.get(&target)? else {
        return Ok(Decision::Nothing);
    };
    let deploy = deploy_in(&doc, env).ok_or_else(|| {
        Error::store(format!(
            "{r} links to {target}, but release {rel} has no deployment to {env:?}"
        ))
    })?;
    // The inputs the deployed `up` ran with, as recorded on its run.
    let run_ref_text = work_doc
        .get("run_ref")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::store(format!("{target}: work document without run_ref")))?;
    let up_run = load_run(&ctx.state, &Ref::parse(run_ref_text)?)?
        .ok_or_else(|| Error::store(format!("{run_ref_text} not found")))?;
    // The values it ran with, not the refs again: what the deployment
    // read may be gone by now (a dependency undeployed first).
    let inputs = up_run
        .functions
        .first()
        .map(|f| match &f.resolved {
            Some(values) => f
                .inputs
                .keys()
                .filter_map(|k| {
                    values
                        .get(k)
                        .map(|v| (k.clone(), InputSpec::Value(v.clone())))
                })
                .collect(),
            None => f.inputs.clone(),
        })
        .unwrap_or_default();
    Ok(Decision::Create {
        release: rel,
        path,
        run: NewRun {
            run_type: RunType::Down,
            function: RunFunction {
                function: deploy.down.clone(),
                inputs,
                resolved: None,
            },
            after: latest,
            replaces: None,
        },
    })
}

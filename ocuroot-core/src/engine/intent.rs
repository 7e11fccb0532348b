//! Intent applied to state (`state diff`, `state apply`) and the `work`
//! commands that find and do outstanding work at the current commit.
//!
//! Three kinds of intent are compared with state and applied:
//!
//! - **custom state**: `@/custom/<name>`, `<pkg>/@/custom/<name>` and
//!   `<pkg>/@<release or tag>/custom/<name>`: copied to state (through state
//!   links, so a tag names its release), or deleted from it;
//! - **environments** `@/environment/<name>`: written to state, then the
//!   latest release of every package gets the deploys that target the new
//!   environment; deleting one runs `down` for every deployment in it, then
//!   removes it from state;
//! - **deploy intents** `<pkg>/@/deploy/<env>` = `{"release", "input"}`,
//!   written by the engine when an `up` starts: pointing one at another
//!   release (or other inputs) redeploys with them, deleting one runs `down`.
//!
//! New runs are created as one transaction each and run at once when their
//! release is at the current commit; others stay pending for a `work
//! continue` at that commit.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::Serialize;
use serde_json::{Value, json};

use super::EngineContext;
use super::releases::{check_envs_ref, evaluate, latest_releases, load_release};
use super::report::run_releases;
use super::status::{load_run, new_run, run_ref, status_ref};
use crate::model::{
    ChangeKind, Deploy, Environment, EnvironmentName, InputSpec, IntentChange, OpReport,
    ReleaseDoc, RunDoc, RunFunction, RunStatus, RunType, Work, WorkOutcome,
};
use crate::refs::{Ref, SubPathType, WorkPath, is_release_id};
use crate::{Error, Result};

/// The intent refs that are compared with state.
const INTENT_GLOBS: [&str; 4] = [
    "**/@*/custom/*",
    "@/custom/*",
    "@/environment/*",
    "**/@/deploy/*",
];

/// The kinds of intent `state diff` compares and `state apply` applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntentKind {
    /// `@/custom/<name>`, `<pkg>/@/custom/<name>`, `<pkg>/@<id>/custom/<name>`.
    Custom,
    /// `@/environment/<name>`.
    Environment,
    /// `<pkg>/@/deploy/<env>`.
    Deploy,
}

impl IntentKind {
    /// The kind of intent `r` is, if it is one.
    pub fn of(r: &Ref) -> Option<IntentKind> {
        let one_segment = !r.subpath.is_empty() && !r.subpath.contains('/');
        match r.subpath_type? {
            SubPathType::Custom if r.release.is_some() && !r.subpath.is_empty() => {
                Some(IntentKind::Custom)
            }
            SubPathType::Environment if r.global && one_segment => Some(IntentKind::Environment),
            SubPathType::Deploy if !r.global && r.release.as_deref() == Some("") && one_segment => {
                Some(IntentKind::Deploy)
            }
            _ => None,
        }
    }

    /// The kind of `r`, or an error saying which refs are intent. The
    /// names in the ref are checked too: environment names, and a tag in the
    /// release position.
    pub fn require(r: &Ref) -> Result<IntentKind> {
        let kind = IntentKind::of(r).ok_or_else(|| {
            Error::invalid_input(format!(
                "{r} is not intent: intent is custom state (@/custom/<name>, \
                 <package>/@[<release or tag>]/custom/<name>), an environment \
                 (@/environment/<name>) or a deploy intent (<package>/@/deploy/<environment>)"
            ))
        })?;
        match kind {
            IntentKind::Custom => {
                if let Some(tag) = r.release.as_deref().filter(|t| !t.is_empty())
                    && !is_release_id(tag)
                {
                    crate::model::Tag::new(tag).map_err(|e| e.context(format!("intent {r}")))?;
                }
            }
            IntentKind::Environment | IntentKind::Deploy => {
                EnvironmentName::new(r.subpath.clone())
                    .map_err(|e| e.context(format!("intent {r}")))?;
            }
        }
        Ok(kind)
    }
}

/// Check an intent document before it is written or applied: environments
/// must be valid and named as their ref, deploy intents must name a release.
pub fn validate_intent(r: &Ref, value: &Value) -> Result<()> {
    match IntentKind::require(r)? {
        IntentKind::Custom => Ok(()),
        IntentKind::Environment => {
            let name = EnvironmentName::new(r.subpath.clone())
                .map_err(|e| e.context(format!("intent {r}")))?;
            let env: Environment = serde_json::from_value(value.clone()).map_err(|e| {
                Error::validation(format!(
                    "intent {r}: an environment is {{\"name\": ..., \"attributes\": {{...}}}}: {e}"
                ))
            })?;
            if env.name != name {
                return Err(Error::validation(format!(
                    "intent {r}: environment name ({:?}) must match subpath ({:?})",
                    env.name.as_str(),
                    name.as_str()
                )));
            }
            Ok(())
        }
        IntentKind::Deploy => {
            let intent = DeployIntent::from_value(r, value)?;
            let rel = Ref::parse(&intent.release)
                .map_err(|e| e.context(format!("intent {r}: release")))?;
            if rel.package() != r.package() || rel.release.as_deref().is_none_or(str::is_empty) {
                return Err(Error::validation(format!(
                    "intent {r}: release {} is not a release of {}",
                    intent.release,
                    r.package()
                )));
            }
            Ok(())
        }
    }
}

/// A deploy intent: which release is deployed, with which inputs.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, Serialize)]
struct DeployIntent {
    release: String,
    #[serde(default)]
    input: BTreeMap<String, Value>,
}

impl DeployIntent {
    fn from_value(r: &Ref, value: &Value) -> Result<DeployIntent> {
        serde_json::from_value(value.clone()).map_err(|e| {
            Error::validation(format!(
                "intent {r}: a deploy intent is {{\"release\": \"<package>/@r<N>\", \"input\": {{...}}}}: {e}"
            ))
        })
    }
}

/// Every difference between intent and state, sorted by ref.
pub fn diff(ctx: &EngineContext) -> Result<Vec<IntentChange>> {
    let intent_refs = ctx.intent.match_globs(&INTENT_GLOBS)?;
    let mut changes = BTreeMap::new();
    // State refs some intent ref stands for (through state links), and the
    // intent ref that speaks for each.
    let mut covered: BTreeMap<String, String> = BTreeMap::new();
    for text in &intent_refs {
        let r = Ref::parse(text)?;
        let Some(kind) = IntentKind::of(&r) else {
            continue;
        };
        let Some(wanted) = ctx.intent.get(&r)? else {
            continue;
        };
        let current = match kind {
            IntentKind::Deploy => deployed(ctx, &r)?.map(|(_, doc)| doc),
            _ => {
                let target = ctx.state.resolve(&r)?.to_string();
                // Two intents for one document (`@r1/custom/x` and, through a
                // tag, `@v1/custom/x`): the one naming it directly wins, else
                // the first; the other is not applied, or they would undo
                // each other forever.
                if let Some(first) = covered.get(&target).cloned() {
                    let this_is_direct = *text == target;
                    let first_is_direct = first == target;
                    if !this_is_direct || first_is_direct {
                        tracing::warn!(
                            intent = %text,
                            other = %first,
                            "two intents set the same state; ignoring this one"
                        );
                        continue;
                    }
                    changes.remove(&first);
                }
                covered.insert(target, text.clone());
                ctx.state.get(&r)?
            }
        };
        covered.insert(text.clone(), text.clone());
        let change = match current {
            None => Some(ChangeKind::Create),
            Some(current) if !same(kind, &wanted, &current) => Some(ChangeKind::Update),
            Some(_) => None,
        };
        if let Some(change) = change {
            changes.insert(text.clone(), change);
        }
    }
    for text in ctx.state.match_globs(&INTENT_GLOBS)? {
        let r = Ref::parse(&text)?;
        if IntentKind::of(&r).is_some() && !covered.contains_key(&text) {
            changes.insert(text, ChangeKind::Delete);
        }
    }
    changes
        .into_iter()
        .map(|(text, change)| {
            Ok(IntentChange {
                r#ref: Ref::parse(&text)?,
                change,
            })
        })
        .collect()
}

/// Whether state already holds what intent wants.
fn same(kind: IntentKind, wanted: &Value, current: &Value) -> bool {
    match kind {
        // A deploy intent is compared with the deployment's work document:
        // the same release, with the same inputs.
        IntentKind::Deploy => {
            wanted.get("release") == current.get("release")
                && wanted.get("input").unwrap_or(&Value::Null)
                    == current.get("input").unwrap_or(&Value::Null)
        }
        _ => wanted == current,
    }
}

/// The current deployment `<pkg>/@/deploy/<env>` links to, and its work
/// document.
fn deployed(ctx: &EngineContext, r: &Ref) -> Result<Option<(Ref, Value)>> {
    let Some(target) = ctx.state.is_link(r)? else {
        return Ok(None);
    };
    Ok(ctx.state.get(&target)?.map(|doc| (target, doc)))
}

/// Apply the intent at `r` to state (`state apply`). Runs the work this
/// creates in releases at the current commit.
pub fn apply(ctx: &EngineContext, r: &Ref) -> Result<WorkOutcome> {
    let kind = IntentKind::require(r)?;
    let wanted = ctx.intent.get(r)?;
    if let Some(value) = &wanted {
        validate_intent(r, value)?;
    }
    let mut out = WorkOutcome::default();
    let in_state = match kind {
        IntentKind::Deploy => deployed(ctx, r)?.is_some(),
        _ => ctx.state.get(r)?.is_some(),
    };
    let change = match (&wanted, in_state) {
        (None, _) => ChangeKind::Delete,
        (Some(_), false) => ChangeKind::Create,
        (Some(_), true) => ChangeKind::Update,
    };
    if kind == IntentKind::Custom {
        require_release(ctx, r)?;
    }
    let touched = match (kind, wanted) {
        (IntentKind::Custom, Some(value)) => {
            ctx.state.update(|tx| tx.set(r, value.clone()))?;
            vec![]
        }
        (IntentKind::Custom, None) => {
            ctx.state.update(|tx| tx.delete(r))?;
            vec![]
        }
        (IntentKind::Environment, Some(value)) => {
            ctx.state.update(|tx| tx.set(r, value.clone()))?;
            add_environment_ops(ctx, &r.subpath, &mut out)?;
            vec![]
        }
        (IntentKind::Environment, None) => remove_environment(ctx, r)?,
        (IntentKind::Deploy, Some(value)) => {
            redeploy_to_intent(ctx, r, &DeployIntent::from_value(r, &value)?)?
                .into_iter()
                .collect()
        }
        (IntentKind::Deploy, None) => undeploy(ctx, r)?.into_iter().collect(),
    };
    ctx.journal.record(r);
    out.applied.push(IntentChange {
        r#ref: r.clone(),
        change,
    });
    run_releases(ctx, touched, &mut out)?;
    if kind == IntentKind::Environment && ctx.intent.get(r)?.is_none() {
        finish_environment_removal(ctx, r, &mut out)?;
    }
    Ok(out)
}

/// Custom state of a release or tag (`<pkg>/@r1/custom/x`, `<pkg>/@v1/...`)
/// needs that release (or tag) to exist in state: an error naming it
/// otherwise.
pub fn require_release(ctx: &EngineContext, r: &Ref) -> Result<()> {
    let Some(id) = r.release.as_deref().filter(|id| !id.is_empty()) else {
        return Ok(());
    };
    if r.global {
        return Ok(());
    }
    let rel = r.release_ref();
    let exists = if is_release_id(id) {
        ctx.state.exists(&rel)?
    } else {
        ctx.state.is_link(&rel)?.is_some()
    };
    if exists {
        Ok(())
    } else {
        let what = if is_release_id(id) { "release" } else { "tag" };
        Err(Error::not_found(format!(
            "intent {r}: there is no {what} {rel} in state"
        )))
    }
}

/// The other intent ref, if any, that sets the same state document as `r`
/// (through a tag) to a different value.
pub fn conflicting_intent(ctx: &EngineContext, r: &Ref, value: &Value) -> Result<Option<String>> {
    if IntentKind::of(r) != Some(IntentKind::Custom) {
        return Ok(None);
    }
    let target = ctx.state.resolve(r)?;
    let glob = format!("{}/@*/custom/{}", r.package(), r.subpath);
    for other in ctx.intent.match_globs(&[glob.as_str()])? {
        if *r == other {
            continue;
        }
        let other_ref = Ref::parse(&other)?;
        if ctx.state.resolve(&other_ref)? == target
            && ctx.intent.get(&other_ref)?.as_ref() != Some(value)
        {
            return Ok(Some(other));
        }
    }
    Ok(None)
}

/// The deploy of `env` in a release's package, with its phase.
fn deploy_in<'d>(doc: &'d ReleaseDoc, env: &str) -> Option<&'d Deploy> {
    doc.package.work().find_map(|(_, w)| match w {
        Work::Deploy(d) if d.environment.as_str() == env => Some(d),
        _ => None,
    })
}

/// A deploy intent present: redeploy its release with its inputs, unless
/// that is what is deployed (or about to be). Returns the release to run.
fn redeploy_to_intent(ctx: &EngineContext, r: &Ref, intent: &DeployIntent) -> Result<Option<Ref>> {
    let (rel, doc) = load_release(ctx, &Ref::parse(&intent.release)?)?;
    let env = &r.subpath;
    let deploy = deploy_in(&doc, env).ok_or_else(|| {
        Error::not_found(format!(
            "intent {r}: release {rel} has no deployment to environment {env:?}"
        ))
    })?;
    let work_doc = ctx.state.get(&rel.with_subpath(SubPathType::Deploy, env))?;
    let current = deployed(ctx, r)?;
    let wanted = serde_json::to_value(intent)?;
    let is_current = current
        .as_ref()
        .is_some_and(|(target, _)| target.release_ref() == rel);
    if is_current && work_doc.is_some_and(|d| same(IntentKind::Deploy, &wanted, &d)) {
        return Ok(None);
    }
    let inputs = intent
        .input
        .iter()
        .map(|(k, v)| (k.clone(), InputSpec::Value(v.clone())))
        .collect();
    let function = RunFunction {
        function: deploy.up.clone(),
        inputs,
        resolved: None,
    };
    let path = WorkPath::deploy(env.as_str());
    new_run(ctx, &rel, &path, RunType::Up, function, None)?;
    Ok(Some(rel))
}

/// Create a `down` run for the deployment `<pkg>/@/deploy/<env>` (if there
/// is one), with the inputs its `up` was given. Returns its release.
fn undeploy(ctx: &EngineContext, r: &Ref) -> Result<Option<Ref>> {
    let Some((target, work_doc)) = deployed(ctx, r)? else {
        return Ok(None);
    };
    let rel = target.release_ref();
    let (rel, doc) = load_release(ctx, &rel)?;
    let env = &r.subpath;
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
    let function = RunFunction {
        function: deploy.down.clone(),
        inputs,
        resolved: None,
    };
    new_run(
        ctx,
        &rel,
        &WorkPath::deploy(env.as_str()),
        RunType::Down,
        function,
        None,
    )?;
    Ok(Some(rel))
}

/// A new environment, as the original schedules it: the latest release of
/// every package that does not deploy to it yet gets an
/// `<rel>/op/check_envs` marker. `work ops` at the release's commit (or
/// `work any`, or a cascade) re-evaluates the file and adds the deploys it
/// now makes; `work continue` runs them.
fn add_environment_ops(ctx: &EngineContext, env: &str, out: &mut WorkOutcome) -> Result<()> {
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
    let (rel, doc) = load_release(ctx, rel)?;
    let op = check_envs_ref(&rel);
    if !ctx.state.exists(&op)? {
        return Ok(None);
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
            return Ok(false);
        }
        if tx.get(&rel)?.as_ref() != Some(&before) {
            return Err(Error::conflict(format!(
                "{rel} changed while adding deploys"
            )));
        }
        if !new_runs.is_empty() {
            tx.set(&rel, serde_json::to_value(&updated)?)?;
        }
        for (run, run_doc) in &new_runs {
            tx.create(run, serde_json::to_value(run_doc)?)?;
            tx.create(&status_ref(run, RunStatus::Pending), json!({}))?;
        }
        tx.delete(&op)?;
        Ok(true)
    })?;
    if !done {
        return Ok(None);
    }
    for (run, _) in &new_runs {
        ctx.journal.record(run);
    }
    Ok(Some(OpReport {
        r#ref: op.clone(),
        added: new_runs.into_iter().map(|(run, _)| run).collect(),
    }))
}

/// A deleted environment: a `down` run for every deployment in it.
fn remove_environment(ctx: &EngineContext, r: &Ref) -> Result<Vec<Ref>> {
    let env = &r.subpath;
    let mut touched = Vec::new();
    for text in ctx.state.match_globs(&[format!("**/@/deploy/{env}")])? {
        let deployment = Ref::parse(&text)?;
        if let Some(rel) = undeploy(ctx, &deployment)? {
            touched.push(rel);
        }
    }
    Ok(touched)
}

/// Remove a deleted environment from state once nothing is deployed to it.
fn finish_environment_removal(ctx: &EngineContext, r: &Ref, out: &mut WorkOutcome) -> Result<()> {
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

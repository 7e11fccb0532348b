//! Outstanding work: found (for `work continue`, `work any`, `work
//! cascade` and `plan`) and done at one checkout.
//!
//! - **Intent** (`work any`, `work cascade`): every difference between
//!   intent and state.
//! - **Ops**: releases to check for environments added since they were
//!   created (`<rel>/op/check_envs`).
//! - **Ready runs**: pending or paused runs whose earlier phases are
//!   complete and whose inputs resolve.
//! - **Redeploys**: current deployments (`<pkg>/@/deploy/<env>`) whose `up`
//!   inputs now resolve to other values than the ones it ran with (new
//!   outputs of another package, changed custom state, changed environment
//!   attributes). Inputs that read the deployment itself
//!   (`./@/deploy/<env>`) are ignored, or every redeploy would call for
//!   another.
//!
//! Work is found in a scope: the current repository and commit (`work
//! continue`), everywhere (`work cascade`, `plan`), or only work connected to
//! what this workspace changed (`--cascade`); and within the workspace's
//! limit to one package or release, if it has one. A plan also lists the
//! work that waits, and what for.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::EngineContext;
use super::inputs::resolve_inputs;
use super::intent::{self, IntentKind};
use super::lease::{holder, judge, running_marker};
use super::releases::{check_envs_ref, load_release};
use super::report::run_releases;
use super::status::{Latest, NewRun, latest_run, load_run, load_statuses, new_run, run_ref};
use crate::Result;
use crate::model::{
    ChangeKind, InputSpec, ReleaseDoc, RunDoc, RunFunction, RunStatus, RunType, Todo, TodoKind,
    WorkOutcome,
};
use crate::refs::{Ref, SubPathType, WorkKind, WorkPath};

/// Where work is looked for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scope<'a> {
    /// Releases of this repository at the current commit.
    Here,
    /// Every release of every repository, at any commit.
    Everywhere,
    /// Like `Everywhere`, but only work connected to these changed refs:
    /// runs created, or reading refs written, by this workspace.
    Changes(&'a BTreeSet<Ref>),
}

/// What to find.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Finding {
    /// Differences between intent and state.
    pub intent: bool,
    /// `check_envs` ops.
    pub ops: bool,
    /// Ready runs and redeploys.
    pub runs: bool,
    /// Work that waits (for a plan).
    pub waiting: bool,
    /// Redeploys whose last attempt failed, to try again (cascade).
    pub failed_redeploys: bool,
}

impl Finding {
    /// Work to do at a commit: ops, ready runs and redeploys.
    pub(crate) const WORK: Finding = Finding {
        intent: false,
        ops: true,
        runs: true,
        waiting: false,
        failed_redeploys: false,
    };
}

/// The `work` commands that work at the current commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkCommand {
    /// `work continue`: ready runs and redeploys.
    Continue,
    /// `work ops`: the `check_envs` ops (new environments), which add
    /// pending deploys.
    Ops,
    /// `work any`: intent differences, then ops, then ready runs and
    /// redeploys.
    Any,
}

impl WorkCommand {
    fn finding(self) -> Finding {
        Finding {
            intent: self == WorkCommand::Any,
            ops: self != WorkCommand::Continue,
            runs: self != WorkCommand::Ops,
            ..Finding::default()
        }
    }
}

/// A piece of work found, with what doing it takes.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub todo: Todo,
    /// The repository of its release (empty for intent).
    pub repo: String,
    pub action: Action,
}

#[derive(Debug, Clone)]
pub(crate) enum Action {
    /// Apply this intent ref.
    Apply(Ref),
    /// Add the deploys of environments added since this release.
    Op(Ref),
    /// Run this release on.
    Run(Ref),
    /// A new `up` run for a deployment.
    Redeploy(Redeploy),
    /// Nothing now: it waits (plans only).
    Wait,
}

/// A deployment to redeploy with its inputs' new values.
#[derive(Debug, Clone)]
pub(crate) struct Redeploy {
    pub release: Ref,
    pub path: WorkPath,
    pub function: RunFunction,
    /// The latest run of the deployment when the redeploy was decided on.
    pub after: Latest,
    /// The failed run this attempt replaces, if the last one failed.
    pub retry_of: Option<u32>,
}

/// The work a `work` command would do now, in order.
pub fn find_work(ctx: &EngineContext, command: WorkCommand) -> Result<Vec<Todo>> {
    Ok(find(ctx, Scope::Here, command.finding())?
        .into_iter()
        .map(|f| f.todo)
        .collect())
}

/// Do the work [`find_work`] lists: `work any` applies the intent
/// differences first, then runs the ops and the releases with ready work;
/// `work ops` only runs the ops (their new deploys wait for `work
/// continue`).
pub fn work(ctx: &EngineContext, command: WorkCommand) -> Result<WorkOutcome> {
    let mut out = WorkOutcome::default();
    let mut finding = command.finding();
    if finding.intent {
        apply_intent(ctx, &mut out)?;
        finding.intent = false;
    }
    let found = find(ctx, Scope::Here, finding)?;
    execute(ctx, found, command != WorkCommand::Ops, &mut out)?;
    Ok(out)
}

/// `work any --comprehensive`: `work any` again until a round does nothing
/// (or has failed work, or `max_rounds` rounds are done).
pub fn work_comprehensive(ctx: &EngineContext, max_rounds: u32) -> Result<WorkOutcome> {
    let mut out = WorkOutcome::default();
    for _ in 0..max_rounds {
        let round = work(ctx, WorkCommand::Any)?;
        let (did, failed) = (round.did_something(), round.failed());
        out.merge(round);
        out.rounds += u32::from(did);
        if !did || failed {
            return Ok(out);
        }
    }
    if !find(ctx, Scope::Here, WorkCommand::Any.finding())?.is_empty() {
        out.stopped.push(format!(
            "work any comprehensive stopped after {max_rounds} rounds with work left at commit {}",
            ctx.commit
        ));
    }
    Ok(out)
}

/// Apply every difference between intent and state, in place.
pub(crate) fn apply_intent(ctx: &EngineContext, out: &mut WorkOutcome) -> Result<()> {
    for change in intent::diff(ctx)? {
        let r = change.r#ref.clone();
        if !ctx.within_limit(&r) {
            continue;
        }
        out.merge(intent::apply(ctx, &r)?);
    }
    Ok(())
}

/// Find outstanding work in `scope`.
pub(crate) fn find(ctx: &EngineContext, scope: Scope<'_>, finding: Finding) -> Result<Vec<Found>> {
    let mut found = Vec::new();
    if finding.intent {
        for change in intent::diff(ctx)? {
            let r = change.r#ref.clone();
            // A cascade following changes takes only intent it applied
            // itself (an environment emptied by its downs, say).
            if !changed(scope, &r) {
                continue;
            }
            found.push(Found {
                action: Action::Apply(r),
                todo: Todo {
                    r#ref: change.r#ref,
                    work_type: match change.change {
                        ChangeKind::Create => TodoKind::Create,
                        ChangeKind::Update => TodoKind::Update,
                        ChangeKind::Delete => TodoKind::Delete,
                    },
                    commit: None,
                    reason: "intent differs from state".into(),
                    waits_for: Vec::new(),
                },
                repo: String::new(),
            });
        }
    }
    if !(finding.ops || finding.runs) {
        return Ok(found);
    }
    for rel in releases(ctx, scope, finding.waiting)? {
        let (rel, doc) = load_release(ctx, &rel)?;
        let op = check_envs_ref(&rel);
        if finding.ops && ctx.state.exists(&op)? && changed(scope, &op) {
            found.push(Found {
                todo: Todo {
                    r#ref: op.clone(),
                    work_type: TodoKind::Op,
                    commit: Some(doc.commit.clone()),
                    reason: "environments added since the release".into(),
                    waits_for: Vec::new(),
                },
                repo: rel.repo.clone(),
                action: Action::Op(rel.clone()),
            });
        }
        if finding.runs {
            found.extend(runs(ctx, &rel, &doc, scope, finding.waiting)?);
        }
    }
    if finding.runs {
        found.extend(redeploys(ctx, scope, finding)?);
    }
    found.retain(|f| ctx.within_limit(&f.todo.r#ref));
    Ok(found)
}

/// Do work found at this checkout (`ctx.commit`): intent applied, ops,
/// redeploys, then (with `run`) every release with something to run is run
/// (once).
pub(crate) fn execute(
    ctx: &EngineContext,
    found: Vec<Found>,
    run: bool,
    out: &mut WorkOutcome,
) -> Result<()> {
    let mut releases: Vec<Ref> = Vec::new();
    for f in found {
        match f.action {
            Action::Apply(r) => out.merge(intent::apply(ctx, &r)?),
            Action::Op(rel) => {
                if let Some(report) = intent::run_check_envs(ctx, &rel)? {
                    out.ops.push(report);
                }
                releases.push(rel);
            }
            Action::Run(rel) => releases.push(rel),
            Action::Redeploy(rd) => {
                new_run(
                    ctx,
                    &rd.release,
                    &rd.path,
                    NewRun {
                        run_type: RunType::Up,
                        function: rd.function,
                        after: Some(rd.after),
                        replaces: rd.retry_of,
                    },
                )?;
                releases.push(rd.release);
            }
            Action::Wait => {}
        }
    }
    if run {
        run_releases(ctx, releases, out)?;
    }
    Ok(())
}

/// Whether `r` is connected to the changes of a `Changes` scope (always
/// true in the other scopes).
fn changed(scope: Scope<'_>, r: &Ref) -> bool {
    match scope {
        Scope::Changes(set) => {
            let r = r.without_fragment();
            if set.contains(&r) {
                return true;
            }
            // One below the other, segment-wise: `a` is `b` followed by `/...`.
            let below = |a: &str, b: &str| a.strip_prefix(b).is_some_and(|t| t.starts_with('/'));
            let text = r.to_string();
            set.iter().any(|c| {
                let c = c.to_string();
                below(&text, &c) || below(&c, &text)
            })
        }
        _ => true,
    }
}

/// Whether any of `inputs` reads (through links) something changed.
fn reads_changes(
    ctx: &EngineContext,
    scope: Scope<'_>,
    inputs: &BTreeMap<String, InputSpec>,
    names: Option<&[&String]>,
) -> Result<bool> {
    if !matches!(scope, Scope::Changes(_)) {
        return Ok(true);
    }
    for (name, spec) in inputs {
        if names.is_some_and(|n| !n.contains(&name)) {
            continue;
        }
        if let Some(r) = spec.as_ref()
            && changed(scope, &ctx.state.resolve(r)?)
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The releases that may have work in `scope`, sorted: at the current
/// commit (`Here`); elsewhere, those with a pending, paused or running (or,
/// for a plan, failed) run or an op.
fn releases(ctx: &EngineContext, scope: Scope<'_>, waiting: bool) -> Result<Vec<Ref>> {
    let globs = match scope {
        Scope::Here => vec![format!("**/@r*/commit/{}", ctx.commit)],
        _ => {
            // Running: the claims of other agents, to wait for or take over.
            let statuses = if waiting {
                "{pending,paused,running,failed}"
            } else {
                "{pending,paused,running}"
            };
            vec![
                format!("**/@r*/{{task,deploy}}/*/*/status/{statuses}"),
                "**/@r*/op/check_envs".to_string(),
            ]
        }
    };
    let mut out = Vec::new();
    for text in ctx.state.match_globs(&globs)? {
        let rel = Ref::parse(&text)?.release_ref();
        if matches!(scope, Scope::Here) && rel.repo != ctx.site.repo {
            continue;
        }
        out.push(rel);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The runs of `rel` that can start now, and (`waiting`) those that wait.
fn runs(
    ctx: &EngineContext,
    rel: &Ref,
    doc: &ReleaseDoc,
    scope: Scope<'_>,
    waiting: bool,
) -> Result<Vec<Found>> {
    let statuses = load_statuses(&ctx.state, rel)?;
    let mut found = Vec::new();
    let mut earlier: Option<&str> = None;
    for phase in &doc.package.phases {
        let mut complete = true;
        for w in &phase.work {
            let path = w.path();
            let Some(latest) = statuses.get(&path) else {
                complete = false;
                continue;
            };
            if latest.status != RunStatus::Complete {
                complete = false;
            }
            let run = run_ref(rel, &path, latest.run);
            let todo = |reason: String, waits_for: Vec<String>| Todo {
                r#ref: run.clone(),
                work_type: TodoKind::Run,
                commit: Some(doc.commit.clone()),
                reason,
                waits_for,
            };
            let wait = |reason: String, waits_for: Vec<String>| Found {
                todo: todo(reason, waits_for),
                repo: rel.repo.clone(),
                action: Action::Wait,
            };
            if latest.status == RunStatus::Failed {
                if waiting {
                    found.push(wait(
                        "failed".into(),
                        vec![format!("a retry of {rel} (release retry)")],
                    ));
                }
                continue;
            }
            if latest.status == RunStatus::Running {
                // Another agent's claim: wait for it, or take it over.
                let Some(marker) = running_marker(ctx, rel, &path, latest.run)? else {
                    continue;
                };
                let verdict = judge(ctx, &marker);
                let who = holder(&marker);
                if verdict.may_take_over() {
                    found.push(Found {
                        todo: todo(
                            format!("to take over from {who}: {}", verdict.reason()),
                            Vec::new(),
                        ),
                        repo: rel.repo.clone(),
                        action: Action::Run(rel.clone()),
                    });
                } else if waiting {
                    found.push(wait(
                        "running".into(),
                        vec![format!("{who} ({})", verdict.reason())],
                    ));
                }
                continue;
            }
            if !latest.status.is_runnable() {
                continue;
            }
            if let Some(phase_name) = earlier {
                if waiting {
                    found.push(wait(
                        latest.status.as_str().to_string(),
                        vec![format!("phase {phase_name:?} to complete")],
                    ));
                }
                continue;
            }
            if let Some(newer) = superseded(ctx, rel, &path)? {
                if waiting {
                    found.push(wait(
                        latest.status.as_str().to_string(),
                        vec![format!(
                            "a deploy intent naming it: {newer} is deployed already"
                        )],
                    ));
                }
                continue;
            }
            let Some(run_doc) = load_run(&ctx.state, &run)? else {
                continue;
            };
            let inputs = run_doc.current_inputs();
            let resolution = resolve_inputs(&ctx.state, &inputs)?;
            if !resolution.is_complete() {
                if waiting {
                    found.push(wait(
                        latest.status.as_str().to_string(),
                        resolution.missing.iter().map(|r| r.to_string()).collect(),
                    ));
                }
                continue;
            }
            if !changed(scope, &run) && !reads_changes(ctx, scope, &inputs, None)? {
                continue;
            }
            found.push(Found {
                todo: todo(latest.status.as_str().to_string(), Vec::new()),
                repo: rel.repo.clone(),
                action: Action::Run(rel.clone()),
            });
        }
        if !complete && earlier.is_none() {
            earlier = Some(if phase.name.is_empty() {
                "(unnamed)"
            } else {
                phase.name.as_str()
            });
        }
    }
    Ok(found)
}

/// For a deploy of `rel`, the newer release of the package deployed to the
/// same environment already, if any: running the older one would roll the
/// deployment back.
fn superseded(ctx: &EngineContext, rel: &Ref, path: &WorkPath) -> Result<Option<Ref>> {
    if path.kind() != WorkKind::Deploy {
        return Ok(None);
    }
    let current = path.in_release(&rel.package().with_release(""));
    let Some(target) = ctx.state.is_link(&current)? else {
        return Ok(None);
    };
    let deployed = target.release_ref();
    Ok(match (deployed.release_number(), rel.release_number()) {
        (Some(d), Some(r)) if d > r => Some(deployed),
        _ => None,
    })
}

/// Current deployments in `scope` whose inputs now resolve to values other
/// than those their `up` ran with.
fn redeploys(ctx: &EngineContext, scope: Scope<'_>, finding: Finding) -> Result<Vec<Found>> {
    let mut out = Vec::new();
    for text in ctx.state.match_globs(&["**/@/deploy/*"])? {
        let deployment = Ref::parse(&text)?;
        let Some(target) = ctx.state.is_link(&deployment)? else {
            continue;
        };
        let rel = target.release_ref();
        let Ok((rel, doc)) = load_release(ctx, &rel) else {
            continue;
        };
        if matches!(scope, Scope::Here) && (doc.commit != ctx.commit || rel.repo != ctx.site.repo) {
            continue;
        }
        let path = WorkPath::deploy(deployment.subpath.as_str());
        let statuses = load_statuses(&ctx.state, &rel)?;
        // Work still to run is a ready run, not a redeploy.
        let Some(latest) = statuses.get(&path).copied() else {
            continue;
        };
        let retry_of = match latest.status {
            RunStatus::Complete => None,
            // A plan lists the failed run itself (waiting for a retry).
            RunStatus::Failed if finding.failed_redeploys => Some(latest.run),
            _ => continue,
        };
        let Some(ran) = deployed_run(ctx, &target)? else {
            continue;
        };
        if ran.run_type == RunType::Down {
            continue;
        }
        let Some(first) = ran.functions.first() else {
            continue;
        };
        let ran_with = first.resolved.clone().unwrap_or_default();
        let relevant: BTreeMap<String, InputSpec> = first
            .inputs
            .iter()
            .filter(|(_, spec)| !reads_itself(spec, &deployment))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let now = resolve_inputs(&ctx.state, &relevant)?;
        if !now.is_complete() {
            continue;
        }
        let changed_inputs: Vec<&String> = now
            .values
            .iter()
            .filter(|(k, v)| ran_with.get(*k) != Some(*v))
            .map(|(k, _)| k)
            .collect();
        if changed_inputs.is_empty()
            || !reads_changes(ctx, scope, &relevant, Some(&changed_inputs))?
        {
            continue;
        }
        let names = changed_inputs
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let mut todo = Todo {
            r#ref: target.clone(),
            work_type: TodoKind::Run,
            commit: Some(doc.commit.clone()),
            reason: format!("inputs changed: {names}"),
            waits_for: Vec::new(),
        };
        if let Some(n) = retry_of {
            let failed = run_ref(&rel, &path, n);
            todo.reason = format!("inputs changed: {names}; its redeploy {failed} failed");
        }
        out.push(Found {
            todo,
            repo: rel.repo.clone(),
            action: Action::Redeploy(Redeploy {
                release: rel.clone(),
                path,
                function: RunFunction {
                    function: first.function.clone(),
                    inputs: first.inputs.clone(),
                    resolved: None,
                },
                after: latest,
                retry_of,
            }),
        });
    }
    Ok(out)
}

/// The run a deployment's current work document was written by.
fn deployed_run(ctx: &EngineContext, work_doc: &Ref) -> Result<Option<RunDoc>> {
    let Some(doc) = ctx.state.get(work_doc)? else {
        return Ok(None);
    };
    let Some(run_text) = doc.get("run_ref").and_then(Value::as_str) else {
        return Ok(None);
    };
    load_run(&ctx.state, &Ref::parse(run_text)?)
}

/// The deployment (`<rel>/deploy/<env>`) whose failed run doing `f`
/// would try again, if any: a redeploy replacing a failed run, or a
/// deploy intent naming a release whose run for it failed.
pub(crate) fn retried_failure(ctx: &EngineContext, f: &Found) -> Result<Option<Ref>> {
    let deployment = match &f.action {
        Action::Redeploy(rd) if rd.retry_of.is_some() => rd.path.in_release(&rd.release),
        Action::Apply(r) if IntentKind::of(r) == Some(IntentKind::Deploy) => {
            let Some(release) = ctx
                .intent
                .get(r)?
                .and_then(|i| i.get("release").and_then(Value::as_str).map(str::to_string))
            else {
                return Ok(None);
            };
            let Ok((rel, _)) = load_release(ctx, &Ref::parse(&release)?) else {
                return Ok(None);
            };
            rel.with_subpath(SubPathType::Deploy, &r.subpath)
        }
        // An environment deleted: its deployments' downs.
        Action::Apply(r)
            if IntentKind::of(r) == Some(IntentKind::Environment)
                && ctx.intent.get(r)?.is_none() =>
        {
            for text in ctx
                .state
                .match_globs(&[format!("**/@/deploy/{}", r.subpath)])?
            {
                let Some(target) = ctx.state.is_link(&Ref::parse(&text)?)? else {
                    continue;
                };
                if failure(ctx, &target)?.is_some() {
                    return Ok(Some(target));
                }
            }
            return Ok(None);
        }
        _ => return Ok(None),
    };
    Ok(failure(ctx, &deployment)?.map(|_| deployment))
}

/// The latest run of a work item, if it failed: its number and error.
pub(crate) fn failure(ctx: &EngineContext, deployment: &Ref) -> Result<Option<(Latest, String)>> {
    let rel = deployment.release_ref();
    let Some(path) = WorkPath::of_ref(deployment) else {
        return Ok(None);
    };
    Ok(match latest_run(ctx, &rel, &path)? {
        Some((latest, doc)) if latest.status == RunStatus::Failed => {
            let message = doc
                .error
                .map_or_else(|| "no error recorded".into(), |e| short_error(&e));
            Some((latest, message))
        }
        _ => None,
    })
}

/// A run's error on one line: the message without Starlark's rendering,
/// and where.
fn short_error(e: &crate::model::RunError) -> String {
    let first = e.message.lines().next().unwrap_or_default();
    let message = e
        .message
        .lines()
        .find_map(|l| l.strip_prefix("error: "))
        .unwrap_or(first);
    match &e.location {
        Some(at) => format!("{message} at {at}"),
        None => message.to_string(),
    }
}

/// Whether an input reads the deployment it belongs to (same package,
/// deploy, same environment), such as a counter of its own deploys.
fn reads_itself(spec: &InputSpec, deployment: &Ref) -> bool {
    let Some(r) = spec.as_ref() else {
        return false;
    };
    r.package() == deployment.package()
        && r.subpath_type == Some(SubPathType::Deploy)
        && r.subpath.split('/').next() == Some(deployment.subpath.as_str())
}

//! `work continue` and `work any`: the outstanding work at the current
//! commit, found and done (or, with `--dryrun`, listed).
//!
//! - **Ready runs**: pending or paused runs of releases at the current
//!   commit whose earlier phases are complete and whose inputs resolve.
//! - **Redeploys**: current deployments (`<pkg>/@/deploy/<env>`) of releases
//!   at the current commit whose `up` inputs now resolve to other values
//!   than the ones it ran with (new outputs of another package, changed
//!   custom state, changed environment attributes). Inputs that read the
//!   deployment itself (`./@/deploy/<env>`) are ignored, or every redeploy
//!   would call for another.
//! - `work any` first applies every difference between intent and state.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::EngineContext;
use super::inputs::resolve_inputs;
use super::intent::{self, ChangeKind, WorkOutcome};
use super::release::load_release;
use super::status::{load_run, load_statuses, run_ref};
use crate::Result;
use crate::model::{InputSpec, ReleaseDoc, RunFunction, RunStatus, RunType};
use crate::refs::{Ref, SubPathType};

/// What a piece of outstanding work is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TodoKind {
    /// Intent to apply: in intent, not in state.
    Create,
    /// Intent to apply: different in state.
    Update,
    /// Intent to apply: in state, not in intent.
    Delete,
    /// A run to execute, or a deployment to redeploy.
    Run,
    /// A release to check for environments added since it was created
    /// (`<rel>/op/check_envs`).
    Op,
}

/// One piece of outstanding work, as `--dryrun` prints it (the original's
/// `{"ref", "work_type", "commit"}`), with why it is to be done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Todo {
    /// The intent ref, run ref or deployment (`<rel>/deploy/<env>`).
    #[serde(rename = "ref")]
    pub r#ref: String,
    /// What kind of work.
    pub work_type: TodoKind,
    /// The commit it must be done at (runs and redeploys).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Why: `pending`, `paused`, or the inputs that changed.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// The work `work continue` (or, with `with_intent`, `work any`) would do
/// now, in order.
pub fn find_work(ctx: &EngineContext, with_intent: bool) -> Result<Vec<Todo>> {
    let mut todos = Vec::new();
    if with_intent {
        for change in intent::diff(ctx)? {
            todos.push(Todo {
                r#ref: change.r#ref,
                work_type: match change.change {
                    ChangeKind::Create => TodoKind::Create,
                    ChangeKind::Update => TodoKind::Update,
                    ChangeKind::Delete => TodoKind::Delete,
                },
                commit: None,
                reason: String::new(),
            });
        }
    }
    for rel in releases_at_commit(ctx, &ctx.commit)? {
        let (rel, doc) = load_release(ctx, &rel)?;
        let op = intent::check_envs_ref(&rel);
        if ctx.state.exists(&op)? {
            todos.push(Todo {
                r#ref: op.to_string(),
                work_type: TodoKind::Op,
                commit: Some(doc.commit.clone()),
                reason: "environments added since the release".into(),
            });
        }
        todos.extend(ready_runs(ctx, &rel, &doc)?);
    }
    todos.extend(redeploys(ctx)?.into_iter().map(|r| r.todo));
    Ok(todos)
}

/// `work continue` (`with_intent` false) or `work any` (true): do the work
/// [`find_work`] lists.
pub fn work(ctx: &EngineContext, with_intent: bool) -> Result<WorkOutcome> {
    let mut out = WorkOutcome::default();
    if with_intent {
        for change in intent::diff(ctx)? {
            let r = Ref::parse(&change.r#ref)?;
            out.merge(intent::apply(ctx, &r)?);
        }
    }
    // Redeploys become pending runs; then every release at this commit with
    // something to run is run (once).
    let mut releases: Vec<Ref> = Vec::new();
    for redeploy in redeploys(ctx)? {
        intent::new_run(
            ctx,
            &redeploy.release,
            &redeploy.path,
            RunType::Up,
            redeploy.function,
        )?;
        releases.push(redeploy.release);
    }
    for rel in releases_at_commit(ctx, &ctx.commit)? {
        let (rel, doc) = load_release(ctx, &rel)?;
        // Environments added while this release's commit was not checked
        // out: add their deploys now.
        let op = intent::check_envs_ref(&rel);
        let doc = if ctx.state.exists(&op)? {
            let added = intent::add_missing_deploys(ctx, &rel, &doc)?;
            ctx.state.update(|tx| tx.delete(&op))?;
            // The release document changed if deploys were added.
            if added {
                load_release(ctx, &rel)?.1
            } else {
                doc
            }
        } else {
            doc
        };
        if !ready_runs(ctx, &rel, &doc)?.is_empty() {
            releases.push(rel);
        }
    }
    intent::run_releases(ctx, releases, &mut out)?;
    Ok(out)
}

/// The releases (of any package) created at `commit`.
fn releases_at_commit(ctx: &EngineContext, commit: &str) -> Result<Vec<Ref>> {
    let mut out = Vec::new();
    for text in ctx
        .state
        .match_globs(&[format!("**/@r*/commit/{commit}")])?
    {
        out.push(Ref::parse(&text)?.release_ref());
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The runs of `rel` that can start now.
fn ready_runs(ctx: &EngineContext, rel: &Ref, doc: &ReleaseDoc) -> Result<Vec<Todo>> {
    let statuses = load_statuses(&ctx.state, rel)?;
    let mut todos = Vec::new();
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
            if !latest.status.is_runnable() {
                continue;
            }
            let run = run_ref(rel, &path, latest.run)?;
            let Some(run_doc) = load_run(&ctx.state, &run)? else {
                continue;
            };
            if resolve_inputs(&ctx.state, &run_doc.current_inputs())?.is_complete() {
                todos.push(Todo {
                    r#ref: run.to_string(),
                    work_type: TodoKind::Run,
                    commit: Some(doc.commit.clone()),
                    reason: latest.status.as_str().to_string(),
                });
            }
        }
        if !complete {
            break;
        }
    }
    Ok(todos)
}

/// A deployment to redeploy with its inputs' new values.
struct Redeploy {
    release: Ref,
    path: String,
    function: RunFunction,
    todo: Todo,
}

/// Current deployments, of releases at this commit, whose inputs now
/// resolve to values other than those their `up` ran with.
fn redeploys(ctx: &EngineContext) -> Result<Vec<Redeploy>> {
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
        if doc.commit != ctx.commit {
            continue;
        }
        let path = format!("deploy/{}", deployment.subpath);
        let statuses = load_statuses(&ctx.state, &rel)?;
        // Work still to run is a ready run, not a redeploy.
        if statuses
            .get(&path)
            .is_none_or(|l| l.status != RunStatus::Complete)
        {
            continue;
        }
        let Some(work_doc) = ctx.state.get(&target)? else {
            continue;
        };
        let Some(run_text) = work_doc.get("run_ref").and_then(Value::as_str) else {
            continue;
        };
        let Some(run_doc) = load_run(&ctx.state, &Ref::parse(run_text)?)? else {
            continue;
        };
        if run_doc.run_type == RunType::Down {
            continue;
        }
        let Some(first) = run_doc.functions.first() else {
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
        let changed: Vec<&String> = now
            .values
            .iter()
            .filter(|(k, v)| ran_with.get(*k) != Some(*v))
            .map(|(k, _)| k)
            .collect();
        if changed.is_empty() {
            continue;
        }
        let reason = format!(
            "inputs changed: {}",
            changed
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        out.push(Redeploy {
            todo: Todo {
                r#ref: target.to_string(),
                work_type: TodoKind::Run,
                commit: Some(doc.commit.clone()),
                reason,
            },
            release: rel,
            path,
            function: RunFunction {
                function: first.function.clone(),
                inputs: first.inputs.clone(),
                resolved: None,
            },
        });
    }
    Ok(out)
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

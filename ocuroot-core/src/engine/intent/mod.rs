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

use std::collections::BTreeMap;

use serde_json::Value;

use super::EngineContext;
use super::report::run_releases;
use crate::model::{ChangeKind, Environment, EnvironmentName, IntentChange, WorkOutcome};
use crate::refs::{Ref, SubPathType, is_release_id};
use crate::{Error, Result};

mod deploys;
mod environments;

use deploys::{DeployIntent, apply_deploy, deploy_in_flight, deployed, same_deploy};
pub use environments::apply_environments;
pub(crate) use environments::run_check_envs;
use environments::{add_environment_ops, finish_environment_removal, remove_environment};

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

/// Every difference between intent and state, sorted by ref.
pub fn diff(ctx: &EngineContext) -> Result<Vec<IntentChange>> {
    // What other agents wrote to intent up to now (a git store fetches):
    // a deploy intent read long after state could be older than it.
    ctx.intent.store().refresh()?;
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
        let Some(change) = change else {
            continue;
        };
        if kind == IntentKind::Deploy {
            let release = DeployIntent::from_value(&r, &wanted)
                .ok()
                .and_then(|i| Ref::parse(&i.release).ok());
            if let Some(release) = release
                && deploy_in_flight(ctx, &release, &r.subpath)?
            {
                continue;
            }
        }
        changes.insert(text.clone(), change);
    }
    for text in ctx.state.match_globs(&INTENT_GLOBS)? {
        let r = Ref::parse(&text)?;
        let Some(kind) = IntentKind::of(&r) else {
            continue;
        };
        if covered.contains_key(&text) {
            continue;
        }
        if kind == IntentKind::Deploy
            && let Some(target) = ctx.state.is_link(&r)?
            && deploy_in_flight(ctx, &target.release_ref(), &r.subpath)?
        {
            continue;
        }
        changes.insert(text, ChangeKind::Delete);
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
        IntentKind::Deploy => same_deploy(wanted, current),
        _ => wanted == current,
    }
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
        (IntentKind::Deploy, _) => apply_deploy(ctx, r)?.into_iter().collect(),
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

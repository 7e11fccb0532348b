//! The globals of `repo.ocu.star`: the alias, remotes, the trigger and the
//! stores.

use std::collections::BTreeMap;

use serde_json::json;
use starlark::collections::SmallMap;
use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::Value;
use starlark::values::list::UnpackList;
use starlark::values::none::NoneType;

use super::{ctx, identify, require_mode, to_json};
use crate::model::StoreSpec;
use crate::sdk::context::Mode;

#[starlark_module]
pub(super) fn repo_globals(builder: &mut GlobalsBuilder) {
    /// Set the repository alias used in refs (repo.ocu.star only).
    fn repo_alias(alias: &str, eval: &mut Evaluator<'_, '_, '_>) -> anyhow::Result<NoneType> {
        let ctx = ctx(eval)?;
        require_mode(ctx, "repo_alias()", &[Mode::Repo])?;
        if alias.is_empty() {
            anyhow::bail!("repo_alias() needs a non-empty alias");
        }
        crate::sdk::context::check_alias(alias).map_err(|e| anyhow::anyhow!("{}", e.message()))?;
        let mut repo = ctx.repo.borrow_mut();
        repo.alias = Some(alias.to_string());
        repo.locations.alias = Some(super::call_location(eval));
        Ok(NoneType)
    }

    /// Clone URLs for this repository, tried in order (repo.ocu.star only).
    fn remotes(
        remotes: UnpackList<String>,
        eval: &mut Evaluator<'_, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let ctx = ctx(eval)?;
        require_mode(ctx, "remotes()", &[Mode::Repo])?;
        ctx.repo.borrow_mut().remotes = Some(remotes.items);
        Ok(NoneType)
    }

    /// The function called with a commit that has outstanding work (repo.ocu.star only).
    fn trigger<'v>(r#fn: Value<'v>, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<NoneType> {
        let ctx = ctx(eval)?;
        require_mode(ctx, "trigger()", &[Mode::Repo])?;
        let (id, _) = identify(eval, ctx, r#fn, "trigger() fn")?;
        ctx.repo.borrow_mut().trigger = Some(id);
        Ok(NoneType)
    }
}

#[starlark_module]
pub(super) fn store_members(builder: &mut GlobalsBuilder) {
    /// Configure the stores: `store.set(state, intent=None)` (repo.ocu.star only).
    fn set<'v>(
        state: Value<'v>,
        intent: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let ctx = ctx(eval)?;
        require_mode(ctx, "store.set()", &[Mode::Repo])?;
        let parse = |v: Value, what: &str| -> anyhow::Result<StoreSpec> {
            let j = to_json(v, what)?;
            serde_json::from_value(j.clone()).map_err(|_| {
                anyhow::anyhow!("{what} must be store.fs(...) or store.git(...), got {j}")
            })
        };
        let state = parse(state, "state")?;
        let intent = match intent {
            Some(v) if !v.is_none() => Some(parse(v, "intent")?),
            _ => None,
        };
        let mut r = ctx.repo.borrow_mut();
        if r.store_set {
            anyhow::bail!("store already set");
        }
        r.store_set = true;
        let at = super::call_location(eval);
        r.locations.state = Some(at.clone());
        if intent.is_some() {
            r.locations.intent = Some(at);
        }
        r.state = Some(state);
        r.intent = intent;
        Ok(NoneType)
    }

    /// A filesystem store at a path relative to the repository root.
    fn fs<'v>(path: &str, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Value<'v>> {
        Ok(eval.heap().alloc(json!({"fs": {"path": path}})))
    }

    /// A store on a branch of a git repository.
    fn git<'v>(
        remote_url: &str,
        branch: Option<&str>,
        #[starlark(default = true)] create_branch: bool,
        // Absent: an empty map ("Absent dicts" in sdk/globals/mod.rs).
        #[starlark(default = SmallMap::new())] support_files: SmallMap<String, String>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let files: BTreeMap<String, String> = support_files.into_iter().collect();
        Ok(eval.heap().alloc(json!({"git": {
            "remote_url": remote_url,
            "branch": branch,
            "create_branch": create_branch,
            "support_files": files,
        }})))
    }
}

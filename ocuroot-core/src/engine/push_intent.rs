//! `ocuroot push` in a checkout of an intent branch: apply the intent that
//! changed since the last such push, and record the commit pushed at
//! `@/push/intent_commit` in the intent store.
//!
//! The commit applied is the intent branch's tip as the intent store reads
//! it (fetched from the remote), not the checkout's: a checkout left behind
//! the remote (another agent set intent since) still applies what the
//! remote holds, and the result names both commits.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::json;

use super::EngineContext;
use super::intent;
use crate::model::{IntentPush, WorkOutcome};
use crate::refs::Ref;
use crate::repo;
use crate::repo::paths::slash_path;
use crate::{Error, Result};

/// The ref recording the intent commit of the last push.
pub const INTENT_COMMIT_REF: &str = "@/push/intent_commit";

/// Push from the intent checkout whose store files are in `store_dir`.
pub fn push_intent(ctx: &EngineContext, store_dir: &Path, dryrun: bool) -> Result<IntentPush> {
    let git_root = ctx.site.git_root.clone().ok_or_else(|| {
        Error::config(format!(
            "push from an intent checkout needs a git checkout, but {} is not in one",
            store_dir.display()
        ))
    })?;
    let dirty = repo::uncommitted_changes(&git_root, &[])?;
    if !dirty.is_empty() {
        return Err(Error::invalid_input(format!(
            "you have uncommitted changes, please commit or stash them before running push: {}",
            dirty
                .iter()
                .take(10)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    // Store files are at <prefix>refs/<key>/@object.json from the git root.
    let prefix = match store_dir.strip_prefix(&git_root) {
        Ok(p) if !p.as_os_str().is_empty() => format!("{}/", slash_path(p)),
        _ => String::new(),
    };
    let record = Ref::parse(INTENT_COMMIT_REF)?;
    let previous = ctx
        .intent
        .get(&record)?
        .and_then(|doc| doc.get("commit")?.as_str().map(str::to_string));
    // What is applied is the intent branch as the store reads it (the
    // remote's tip), which the checkout may be behind: another agent set
    // intent since it was checked out or pulled.
    let store = ctx.intent.store();
    let tip = store.revision()?;
    let changed: Option<BTreeSet<String>> = match (&previous, &tip) {
        (Some(prev), Some(_)) => store
            .changed_since(prev)?
            .map(|keys| keys.into_iter().filter_map(|k| ref_text(&k)).collect()),
        (Some(prev), None) if repo::has_commit(&git_root, prev)? => Some(
            repo::changed_between(&git_root, prev, &ctx.commit)?
                .iter()
                .filter_map(|path| ref_of_path(path, &prefix))
                .collect(),
        ),
        _ => None,
    };
    let mut refs = Vec::new();
    for change in intent::diff(ctx)? {
        if changed
            .as_ref()
            .is_none_or(|c| c.contains(&change.r#ref.to_string()))
        {
            refs.push(change.r#ref);
        }
    }
    let commit = tip.unwrap_or_else(|| ctx.commit.clone());
    let mut outcome = WorkOutcome::default();
    if !dryrun {
        for r in &refs {
            outcome.merge(intent::apply(ctx, r)?);
        }
        ctx.intent
            .update(|tx| tx.set(&record, json!({"commit": commit})))?;
    }
    Ok(IntentPush {
        checkout_commit: (commit != ctx.commit).then(|| ctx.commit.clone()),
        commit,
        previous_commit: previous,
        refs,
        outcome,
        dryrun,
    })
}

/// A store key as the ref text [`intent::diff`] gives (normalised).
fn ref_text(key: &str) -> Option<String> {
    Ref::parse(key).ok().map(|r| r.to_string())
}

/// The ref a changed file of the store stands for:
/// `<prefix>refs/<key>/@object.json` is `<key>`.
fn ref_of_path(path: &str, prefix: &str) -> Option<String> {
    let key = path
        .strip_prefix(prefix)?
        .strip_prefix("refs/")?
        .strip_suffix("/@object.json")?;
    ref_text(key)
}

#[cfg(test)]
mod tests {
    use super::ref_of_path;

    #[test]
    fn store_paths_name_refs() {
        assert_eq!(
            ref_of_path("refs/r/-/p.ocu.star/@/custom/x/@object.json", ""),
            Some("r/-/p.ocu.star/@/custom/x".to_string())
        );
        assert_eq!(
            ref_of_path("intent/refs/@/environment/prod/@object.json", "intent/"),
            Some("@/environment/prod".to_string())
        );
        assert_eq!(ref_of_path(".ocuroot-store", ""), None);
        assert_eq!(ref_of_path("support.txt", ""), None);
    }
}

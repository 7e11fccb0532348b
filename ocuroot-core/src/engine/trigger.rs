//! `work trigger`: call `repo.ocu.star`'s `trigger(commit)` for each commit
//! with outstanding work, so a CI system can start `ocuroot work continue`
//! there.
//!
//! The trigger of a repository is the one in its `repo.ocu.star` as
//! recorded (by `release new`) at that commit; for the current repository,
//! when nothing is recorded, the file in the checkout. The file is
//! evaluated on its own (it cannot `load()` other files) and its trigger is
//! called in the current repository's root, so `host.shell` commands in it
//! run there (in a checkout of a store branch, which is no repository: in
//! the directory the command runs in).

use std::collections::BTreeSet;

use super::EngineContext;
use super::record::{repo_doc, with_recorded_file};
use super::work::{self, Finding, Scope};
use crate::Result;
use crate::model::{CommitRecord, FunctionId, Timestamp, TriggerStatus, Triggered};
use crate::refs::Ref;
use crate::repo::REPO_CONFIG_FILE;
use crate::sdk::{self, CallRequest};

/// The distinct (repository, commit) pairs that have work to do now, sorted.
pub fn commits_with_work(ctx: &EngineContext) -> Result<Vec<(String, String)>> {
    let mut sites = BTreeSet::new();
    for f in work::find(ctx, Scope::Everywhere, Finding::WORK)? {
        if let Some(commit) = f.todo.commit {
            sites.insert((f.repo, commit));
        }
    }
    Ok(sites.into_iter().collect())
}

/// `work trigger`: call the trigger of each commit with outstanding work
/// (with `dryrun`, only list them). One failing trigger does not stop the
/// others; each result says what happened.
pub fn work_trigger(ctx: &EngineContext, dryrun: bool) -> Result<Vec<Triggered>> {
    trigger_each(ctx, commits_with_work(ctx)?, dryrun)
}

/// `work trigger --intent`: call the trigger of every repository state
/// knows, at its latest recorded commit (with `dryrun`, only list them),
/// so that each one's CI compares its intent with state. The latest commit
/// is the one of the repository's most recent release; a repository
/// recorded without releases is triggered at its last recorded commit.
pub fn work_trigger_intent(ctx: &EngineContext, dryrun: bool) -> Result<Vec<Triggered>> {
    trigger_each(ctx, latest_commits(ctx)?, dryrun)
}

/// Each recorded repository and its latest commit, sorted by repository
/// (only the limit's repository, when the work is limited).
pub fn latest_commits(ctx: &EngineContext) -> Result<Vec<(String, String)>> {
    use std::collections::BTreeMap;
    // repo -> (time of its newest release, commit)
    let mut latest: BTreeMap<String, (Option<Timestamp>, String)> = BTreeMap::new();
    let records = ctx
        .state
        .match_globs(&[format!("**/-/{REPO_CONFIG_FILE}/@*")])?;
    for text in &records {
        let r = Ref::parse(text)?;
        if let Some(commit) = r.release {
            // Records sort by commit id, not by time: a fallback only.
            latest.insert(r.repo, (None, commit));
        }
    }
    let repos: Vec<String> = latest.keys().cloned().collect();
    for repo in repos {
        for text in ctx
            .state
            .match_globs(&[format!("{repo}/-/**/@r*/commit/*")])?
        {
            let r = Ref::parse(&text)?;
            if r.repo != repo {
                continue;
            }
            let time = ctx
                .state
                .get(&r)?
                .and_then(|doc| serde_json::from_value::<CommitRecord>(doc).ok())
                .and_then(|c| c.time);
            let commit = r.subpath.clone();
            if let Some(entry) = latest.get_mut(&repo)
                && time > entry.0
            {
                *entry = (time, commit);
            }
        }
    }
    Ok(latest
        .into_iter()
        .filter(|(repo, _)| ctx.limit.as_ref().is_none_or(|l| &l.repo == repo))
        .map(|(repo, (_, commit))| (repo, commit))
        .collect())
}

fn trigger_each(
    ctx: &EngineContext,
    sites: Vec<(String, String)>,
    dryrun: bool,
) -> Result<Vec<Triggered>> {
    let mut out = Vec::new();
    for (repo, commit) in sites {
        let mut t = Triggered {
            repo,
            commit,
            status: TriggerStatus::Planned,
            log: Vec::new(),
            error: None,
        };
        if !dryrun && let Err(e) = call_trigger(ctx, &mut t) {
            t.status = TriggerStatus::Failed;
            t.error = Some(e.to_string());
        }
        out.push(t);
    }
    Ok(out)
}

fn call_trigger(ctx: &EngineContext, t: &mut Triggered) -> Result<()> {
    let recorded = match repo_doc(ctx, &t.repo, &t.commit)? {
        Some(record) => record.source()?,
        None => None,
    };
    let source = match (recorded, &ctx.site.config_file) {
        (Some(s), _) => s,
        (None, Some(file)) if t.repo == ctx.site.repo => ctx.host.read_file(file)?,
        _ => {
            t.status = TriggerStatus::NoTrigger;
            return Ok(());
        }
    };
    with_recorded_file(&source, |dir, path| {
        let mut options = sdk::EvalOptions::new(ctx.host.clone(), dir, Default::default());
        options.limits = ctx.limits;
        options.secrets = ctx.secrets.clone();
        let (file, config) = sdk::evaluate_repo_file(path, &options)
            .map_err(|e| e.context(format!("{}/-/{REPO_CONFIG_FILE} at {}", t.repo, t.commit)))?;
        let Some(function): Option<FunctionId> = config.trigger else {
            t.status = TriggerStatus::NoTrigger;
            return Ok(());
        };
        let result = file.call(&CallRequest {
            function,
            inputs: [(
                "commit".to_string(),
                serde_json::Value::from(t.commit.clone()),
            )]
            .into_iter()
            .collect(),
            work_dir: Some(ctx.root.clone()),
            base: None,
            log_sink: None,
        });
        t.log = result.log.into_iter().map(|l| l.message).collect();
        result.outcome?;
        t.status = TriggerStatus::Called;
        Ok(())
    })
}

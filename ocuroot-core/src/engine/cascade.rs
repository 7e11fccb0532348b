//! Cascade: follow what changed until every dependant is up to date.
//!
//! A round finds the outstanding work, orders it by the dependency graph
//! (dependencies first), groups it by repository and commit, and does each
//! group in a checkout of that commit: in place for the current commit, in
//! a temporary git worktree for another commit of this repository, in a
//! temporary clone for another repository (cloned from the `remotes()` its
//! `repo.ocu.star` declares, else the git remotes recorded when it was
//! released). `host.shell` and the file helpers run inside that checkout.
//! Checkouts are removed when their group is done.
//!
//! Rounds repeat until nothing is left. Two bounds stop a cascade that would
//! not end: a redeploy that keeps failing is given up after
//! [`CascadeOptions::max_attempts`] failures, and the cascade stops after
//! [`CascadeOptions::max_rounds`] rounds. Either is reported in
//! [`WorkOutcome::stopped`] (and makes the outcome failed).
//!
//! [`work_cascade`] takes everything outstanding (all intent, every
//! release at every commit); [`cascade`] only the work connected to what
//! this workspace changed (`release new --cascade`, `state apply
//! --cascade`): runs it created, deployments reading documents it wrote,
//! and intent it applied that still differs from state (an environment
//! removed once its deployments' downs have run).
//!
//! A `down` runs with the values its `up` ran with, so undeploying a
//! dependency first cannot block it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::EngineContext;
use super::deps::graph;
use super::record::remotes_of;
use super::releases::load_release;
use super::work::{self, Action, Finding, Found, Scope};
use crate::model::{DependencyGraph, Node, Todo, WorkOutcome};
use crate::refs::Ref;
use crate::repo::{self, RepoClone, Worktree};
use crate::{Error, ErrorKind, Result};

/// Bounds of a cascade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CascadeOptions {
    /// Failures of one redeploy after which the cascade stops retrying it
    /// (default 3).
    pub max_attempts: u32,
    /// Rounds after which the cascade stops (default 100).
    pub max_rounds: u32,
}

impl Default for CascadeOptions {
    fn default() -> Self {
        CascadeOptions {
            max_attempts: 3,
            max_rounds: 100,
        }
    }
}

/// `work cascade`: do everything outstanding, everywhere, until nothing is
/// left.
pub fn work_cascade(ctx: &EngineContext, options: CascadeOptions) -> Result<WorkOutcome> {
    let out = run(ctx, options, true);
    ctx.journal.take();
    out
}

/// `--cascade`: follow the changes this workspace made (since the last
/// cascade) to the work they affect, until nothing is left.
pub fn cascade(ctx: &EngineContext, options: CascadeOptions) -> Result<WorkOutcome> {
    run(ctx, options, false)
}

/// What a cascade round looks for: intent too, and failed redeploys to
/// try again.
const ROUND: Finding = Finding {
    intent: true,
    failed_redeploys: true,
    ..Finding::WORK
};

/// `work cascade --dryrun`: the work the first round would do, in order.
pub fn plan_cascade(ctx: &EngineContext) -> Result<Vec<Todo>> {
    let mut found = work::find(ctx, Scope::Everywhere, ROUND)?;
    order(&graph(ctx)?, &mut found)?;
    Ok(found.into_iter().map(|f| f.todo).collect())
}

fn run(ctx: &EngineContext, options: CascadeOptions, everything: bool) -> Result<WorkOutcome> {
    let mut out = WorkOutcome::default();
    let mut changes = ctx.journal.take();
    let mut failures: BTreeMap<String, u32> = BTreeMap::new();
    let mut given_up: BTreeSet<String> = BTreeSet::new();
    let mut unreachable: BTreeSet<SiteKey> = BTreeSet::new();
    for round in 1..=options.max_rounds.max(1) {
        let scope = if everything {
            Scope::Everywhere
        } else {
            Scope::Changes(&changes)
        };
        let found = work::find(ctx, scope, ROUND)?;
        // A deployment whose last run failed is tried again at most once a
        // round (through a redeploy or its deploy intent), and given up
        // after `max_attempts` failures.
        let mut retried: BTreeSet<String> = BTreeSet::new();
        let mut kept = Vec::new();
        for f in found {
            if unreachable.contains(&(f.repo.clone(), f.todo.commit.clone())) {
                continue;
            }
            if let Some(deployment) = work::retried_failure(ctx, &f)? {
                let key = deployment.to_string();
                if given_up.contains(&key) {
                    continue;
                }
                let n = failures.entry(key.clone()).or_insert(0);
                if retried.insert(key.clone()) {
                    *n += 1;
                }
                if *n >= options.max_attempts.max(1) {
                    given_up.insert(key);
                    out.stopped.push(give_up_message(ctx, &deployment, *n)?);
                    continue;
                }
            }
            kept.push(f);
        }
        if kept.is_empty() {
            out.rounds = round - 1;
            return Ok(out);
        }
        order(&graph(ctx)?, &mut kept)?;
        for ((repo, commit), items) in group(kept) {
            // Work at another commit that cannot be done there (no
            // checkout, a file that no longer evaluates) is given up for
            // this cascade; the rest goes on.
            let done = open_site(ctx, &repo, commit.as_deref())
                .and_then(|site| work::execute(&site.ctx, items, true, &mut out));
            match (done, &commit) {
                (Ok(()), _) => {}
                (Err(e), Some(c)) if !in_place(ctx, &repo, commit.as_deref()) => {
                    out.stopped.push(format!(
                        "work of {repo} at commit {c} was given up: {}",
                        e.message()
                    ));
                    unreachable.insert((repo, commit));
                }
                (Err(e), _) => return Err(e),
            }
        }
        out.rounds = round;
        changes.extend(ctx.journal.take());
    }
    let left = work::find(ctx, Scope::Everywhere, Finding::default())?;
    out.stopped.push(format!(
        "cascade stopped after {} rounds with work still outstanding: {}. \
         Something keeps changing what it reads; `ocuroot plan` shows the work",
        options.max_rounds,
        left.iter()
            .map(|f| f.todo.r#ref.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Ok(out)
}

fn give_up_message(ctx: &EngineContext, deployment: &Ref, failures: u32) -> Result<String> {
    let (run, error) = match work::failure(ctx, deployment)? {
        Some((latest, message)) => (latest.run, message),
        None => (0, "no error recorded".into()),
    };
    let rel = deployment.release_ref();
    let commit = load_release(ctx, &rel)
        .map(|(_, doc)| doc.commit)
        .unwrap_or_else(|_| "?".into());
    Ok(format!(
        "{deployment}: its redeploy failed {failures} times, so the cascade stops retrying it \
         (run {run}: {error}). Fix the cause, then retry {rel} (release retry) at commit \
         {commit}, or run the cascade again (work cascade)"
    ))
}

/// Sort work by the graph: intent first, then work items in dependency
/// order (stable otherwise). A cycle is an error naming every node on it.
pub(crate) fn order(graph: &DependencyGraph, found: &mut [Found]) -> Result<()> {
    let position: BTreeMap<&Node, usize> = graph
        .order()?
        .into_iter()
        .enumerate()
        .map(|(i, n)| (n, i))
        .collect();
    let key = |f: &Found| -> usize {
        if matches!(f.action, Action::Apply(_)) {
            return 0;
        }
        Node::of_ref(&f.todo.r#ref)
            .and_then(|n| position.get(&n).copied())
            .map_or(1, |p| p + 2)
    };
    found.sort_by_key(key);
    Ok(())
}

/// Group work by repository and commit, keeping the order of each group's
/// first item.
/// A repository and a commit (none for intent, done in place).
type SiteKey = (String, Option<String>);

fn group(found: Vec<Found>) -> Vec<(SiteKey, Vec<Found>)> {
    let mut groups: Vec<(SiteKey, Vec<Found>)> = Vec::new();
    for f in found {
        let key = (f.repo.clone(), f.todo.commit.clone());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, items)) => items.push(f),
            None => groups.push((key, vec![f])),
        }
    }
    groups
}

/// A checkout to do work in, with the context that works there. The
/// checkout (if temporary) is removed when this is dropped.
pub(crate) struct SiteCheckout {
    pub ctx: EngineContext,
    _worktree: Option<Worktree>,
    _clone: Option<RepoClone>,
}

/// Whether work of `repo` at `commit` is done in the current checkout:
/// work without a commit (intent), or this repository at this commit.
fn in_place(ctx: &EngineContext, repo: &str, commit: Option<&str>) -> bool {
    commit.is_none_or(|c| (repo.is_empty() || repo == ctx.site.repo) && c == ctx.commit)
}

/// Open a checkout of `repo` at `commit` (`None`: work that has no commit,
/// done in place).
pub(crate) fn open_site(
    ctx: &EngineContext,
    repo: &str,
    commit: Option<&str>,
) -> Result<SiteCheckout> {
    let here = SiteCheckout {
        ctx: ctx.clone(),
        _worktree: None,
        _clone: None,
    };
    if in_place(ctx, repo, commit) {
        return Ok(here);
    }
    let Some(commit) = commit else {
        return Ok(here);
    };
    let area = ctx.site.work_area.clone().ok_or_else(|| {
        Error::new(
            ErrorKind::Git,
            format!(
                "work of {repo} at commit {commit} needs a checkout of that commit, \
                 but {} is not in a git repository",
                ctx.root.display()
            ),
        )
    })?;
    let mut site = ctx.clone();
    site.commit = commit.to_string();
    if repo == ctx.site.repo {
        let git_root = ctx
            .site
            .git_root
            .clone()
            .unwrap_or_else(|| ctx.root.clone());
        let wt = repo::add_worktree(&git_root, commit, &area.join("worktrees"))
            .map_err(|e| e.context(format!("work of {repo} at commit {commit}")))?;
        let below = ctx.root.strip_prefix(&git_root).unwrap_or(Path::new(""));
        site.root = wt.path().join(below);
        site.site.git_root = Some(wt.path().to_path_buf());
        site.site.config_file =
            Some(site.root.join(repo::REPO_CONFIG_FILE)).filter(|f| f.is_file());
        tracing::info!(commit, worktree = %wt.path().display(), "working in a worktree");
        return Ok(SiteCheckout {
            ctx: site,
            _worktree: Some(wt),
            _clone: None,
        });
    }
    let urls = remotes_of(ctx, repo, commit)?;
    let host = ctx.host.clone();
    let git_clone = move |url: &str, dest: &Path| -> Result<()> {
        let req = crate::host::ShellRequest {
            command: "git clone --quiet \"$OCUROOT_CLONE_URL\" \"$OCUROOT_CLONE_DEST\"".into(),
            shell: "sh".into(),
            dir: dest.parent().unwrap_or(dest).to_path_buf(),
            env: [
                ("OCUROOT_CLONE_URL".to_string(), url.to_string()),
                ("OCUROOT_CLONE_DEST".to_string(), dest.display().to_string()),
            ]
            .into_iter()
            .collect(),
            timeout: None,
        };
        let out = host.shell(&req, &crate::host::LineSink::new(|_, _| {}))?;
        if out.exit_code != 0 {
            return Err(Error::new(
                ErrorKind::Git,
                format!(
                    "git clone exited {}: {}",
                    out.exit_code,
                    out.combined_output.trim()
                ),
            ));
        }
        Ok(())
    };
    let clone = repo::clone_with(&urls, commit, &area.join("clones"), Some(&git_clone))
        .map_err(|e| e.context(format!("work of {repo} at commit {commit}")))?;
    site.root = clone.path().to_path_buf();
    site.site = super::Site {
        repo: repo.to_string(),
        git_root: Some(clone.path().to_path_buf()),
        work_area: Some(area),
        remotes: urls,
        config_file: Some(clone.path().join(repo::REPO_CONFIG_FILE)).filter(|f| f.is_file()),
        config: Default::default(),
    };
    tracing::info!(repo, commit, url = clone.url(), "working in a clone");
    Ok(SiteCheckout {
        ctx: site,
        _worktree: None,
        _clone: Some(clone),
    })
}

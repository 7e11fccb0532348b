//! `ocuroot push`: release every package file changed since the last push,
//! then cascade.
//!
//! The packages are, with no earlier push recorded, every `*.ocu.star` file
//! of the commit except `repo.ocu.star`; after one, the package files
//! changed since the pushed commit plus the packages that `done(watch=[...])`
//! a prefix of a changed path. Files matching a `release_ignore` glob of
//! `repo.ocu.star` are left out. Each is released at the current commit (a
//! release at this commit already is no reason to skip it), the files that
//! register environments first and then the others, each in path order;
//! then what the releases changed is cascaded. The push is recorded as
//! `<repo>/-/repo.ocu.star/@<commit>/push/index` (`{"commit",
//! "previous_commit", "release_configs": {"<package>": {"watch_files"}}}`),
//! linked from `<repo>/-/repo.ocu.star/@/push/index`, unless a package could
//! not be released (so the next push includes it again).
//!
//! Pushing refuses when the work tree has uncommitted or untracked changes
//! (a filesystem store kept inside the repository aside): the releases must
//! be of the commit.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::EngineContext;
use super::cascade::{self, CascadeOptions};
use super::record::repo_doc_ref;
use super::release::release_new;
use super::releases::releases_at;
use crate::host::ReadOnlyHost;
use crate::model::{
    PushIndex, PushOutcome, Pushed, ReleaseConfig, RunDoc, StoreSpec, WorkOutcome, parse_doc,
};
use crate::refs::{Ref, SubPathType};
use crate::repo::paths::slash_path;
use crate::repo::{self, REPO_CONFIG_FILE};
use crate::sdk::{self, EvalOptions, FileContents};
use crate::{Error, Result};

/// `<repo>/-/repo.ocu.star/@<release>/push/index`.
fn index_ref(repo: &str, release: &str) -> Ref {
    repo_doc_ref(repo, release).with_subpath(SubPathType::Push, "index")
}

/// `ocuroot push [--dryrun]`.
pub fn push(ctx: &EngineContext, options: CascadeOptions, dryrun: bool) -> Result<PushOutcome> {
    let git_root = ctx.site.git_root.clone().ok_or_else(|| {
        Error::config(format!(
            "push releases what changed between git commits, but {} is not in a git repository",
            ctx.root.display()
        ))
    })?;
    if !repo::has_commit(&git_root, &ctx.commit)? {
        return Err(Error::invalid_input(format!(
            "push needs the current commit to be a commit of the repository, but {} is not one \
             (is OCU_REPO_COMMIT_OVERRIDE set?)",
            ctx.commit
        )));
    }
    // Paths below the Ocuroot root are relative to it; git's to the git root.
    let prefix = match ctx.root.strip_prefix(&git_root) {
        Ok(p) if !p.as_os_str().is_empty() => format!("{}/", slash_path(p)),
        _ => String::new(),
    };
    let dirty = repo::uncommitted_changes(&git_root, &store_dirs(ctx, &git_root))?;
    if !dirty.is_empty() {
        let shown: Vec<&str> = dirty.iter().take(10).map(String::as_str).collect();
        return Err(Error::invalid_input(format!(
            "you have uncommitted changes, please commit or stash them before running push: {}{}",
            shown.join(", "),
            if dirty.len() > shown.len() {
                format!(" and {} more", dirty.len() - shown.len())
            } else {
                String::new()
            }
        )));
    }
    let ours = |paths: Vec<String>| -> Vec<String> {
        paths
            .into_iter()
            .filter_map(|p| p.strip_prefix(&prefix).map(str::to_string))
            .collect()
    };
    let at_head = ours(repo::files_at(&git_root, &ctx.commit)?);
    let previous = previous_index(ctx)?;
    let candidates: Vec<(String, String)> = match &previous {
        Some(index) if index.commit == ctx.commit => Vec::new(),
        Some(index) if repo::has_commit(&git_root, &index.commit)? => {
            let changed = ours(repo::changed_between(
                &git_root,
                &index.commit,
                &ctx.commit,
            )?);
            changed_packages(ctx, index, &changed, &at_head)?
        }
        // The last push's commit is gone (history rewritten): push everything.
        _ => at_head
            .iter()
            .filter(|p| is_package_file(p))
            .map(|p| (p.clone(), "first push".to_string()))
            .collect(),
    };
    let ignore = ignore_set(ctx)?;
    let mut packages: Vec<Pushed> = candidates
        .into_iter()
        .filter(|(p, _)| !ignore.is_match(p))
        .map(|(package, reason)| Pushed {
            package,
            reason,
            release: None,
            error: None,
        })
        .collect();
    // Files registering environments first, so that the packages released
    // after them deploy to those environments in their first release.
    packages.sort_by_cached_key(|p| !registers_environments(ctx, &p.package));
    let mut outcome = PushOutcome {
        commit: ctx.commit.clone(),
        previous_commit: previous.as_ref().map(|i| i.commit.clone()),
        packages: Vec::new(),
        cascade: WorkOutcome::default(),
        index: None,
        dryrun,
    };
    if dryrun {
        outcome.packages = packages;
        return Ok(outcome);
    }
    for p in &mut packages {
        let package = package_ref(ctx, &p.package);
        match release_new(ctx, &ctx.root.join(&p.package), &package, true) {
            Ok(released) => p.release = Some(released),
            Err(e) => p.error = Some(e.to_string()),
        }
    }
    outcome.cascade = cascade::cascade(ctx, options)?;
    if packages.iter().all(|p| p.error.is_none()) {
        let index = new_index(ctx, previous.as_ref(), &packages, &at_head)?;
        let r = index_ref(&ctx.site.repo, &ctx.commit);
        let link = index_ref(&ctx.site.repo, "");
        ctx.state.update(|tx| {
            tx.set_doc(&r, &index)?;
            tx.link(&link, &r)
        })?;
        outcome.index = Some(r.to_string());
    }
    outcome.packages = packages;
    Ok(outcome)
}

/// Whether the package file `path` registers environments: evaluated
/// without running commands or writing anything; a file that fails to
/// evaluate so does not (its error comes when it is released).
fn registers_environments(ctx: &EngineContext, path: &str) -> bool {
    let host = ReadOnlyHost::new(ctx.host.clone(), "while ordering the packages of a push");
    let mut options = EvalOptions::new(Arc::new(host), ctx.root.clone(), Ref::default());
    options.limits = ctx.limits;
    sdk::evaluate_package(&ctx.root.join(path), &options)
        .is_ok_and(|f| matches!(f.contents(), FileContents::Environments(_)))
}

/// The ref of this repository's package file `path`.
fn package_ref(ctx: &EngineContext, path: &str) -> Ref {
    Ref {
        repo: ctx.site.repo.clone(),
        filename: path.to_string(),
        ..Ref::default()
    }
}

/// Whether `path` (relative to the root) is a package file.
fn is_package_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.ends_with(".ocu.star") && name != REPO_CONFIG_FILE
}

/// The index of the last push of this repository, if there was one.
fn previous_index(ctx: &EngineContext) -> Result<Option<PushIndex>> {
    let link = index_ref(&ctx.site.repo, "");
    let Some(doc) = ctx.state.get(&link)? else {
        return Ok(None);
    };
    parse_doc(&link, "push index", doc).map(Some)
}

/// The packages to release after the push `index`, given the paths that
/// changed since (relative to the root), with why.
fn changed_packages(
    ctx: &EngineContext,
    index: &PushIndex,
    changed: &[String],
    at_head: &[String],
) -> Result<Vec<(String, String)>> {
    let exists: BTreeSet<&str> = at_head.iter().map(String::as_str).collect();
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for path in changed {
        if is_package_file(path) && exists.contains(path.as_str()) {
            out.insert(path.clone(), "changed".to_string());
        }
    }
    for (package, config) in &index.release_configs {
        let r = Ref::parse(package)?;
        if r.repo != ctx.site.repo || !exists.contains(r.filename.as_str()) {
            continue;
        }
        if out.contains_key(&r.filename) {
            continue;
        }
        let hit = config
            .watch_files
            .iter()
            .find(|w| !w.is_empty() && changed.iter().any(|c| c.starts_with(w.as_str())));
        if let Some(w) = hit {
            out.insert(r.filename.clone(), format!("watches {w}"));
        }
    }
    Ok(out.into_iter().collect())
}

/// `release_ignore` of `repo.ocu.star` as one glob set; `*` crosses `/`, as
/// in the original.
fn ignore_set(ctx: &EngineContext) -> Result<globset::GlobSet> {
    let mut set = globset::GlobSetBuilder::new();
    for pattern in &ctx.site.config.release_ignore {
        let glob = globset::GlobBuilder::new(pattern)
            .literal_separator(false)
            .build()
            .map_err(|e| Error::config(format!("release_ignore: invalid glob {pattern:?}: {e}")))?;
        set.add(glob);
    }
    set.build()
        .map_err(|e| Error::config(format!("release_ignore: {e}")))
}

/// The index of this push: the previous one's packages that still exist,
/// with each package pushed now replaced by the watch prefixes of its runs
/// at this commit.
fn new_index(
    ctx: &EngineContext,
    previous: Option<&PushIndex>,
    pushed: &[Pushed],
    at_head: &[String],
) -> Result<PushIndex> {
    let exists: BTreeSet<&str> = at_head.iter().map(String::as_str).collect();
    let mut configs: BTreeMap<String, ReleaseConfig> = previous
        .map(|i| i.release_configs.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|(package, _)| {
            Ref::parse(package)
                .is_ok_and(|r| r.repo != ctx.site.repo || exists.contains(r.filename.as_str()))
        })
        .collect();
    for p in pushed {
        let package = package_ref(ctx, &p.package);
        configs.insert(
            package.to_string(),
            ReleaseConfig {
                watch_files: watched(ctx, &package)?,
            },
        );
    }
    Ok(PushIndex {
        commit: ctx.commit.clone(),
        previous_commit: previous.map(|i| i.commit.clone()).unwrap_or_default(),
        release_configs: configs,
    })
}

/// The `done(watch=[...])` prefixes of every run of `package`'s releases at
/// the current commit, sorted.
fn watched(ctx: &EngineContext, package: &Ref) -> Result<Vec<String>> {
    let mut out = BTreeSet::new();
    for rel in releases_at(ctx, package, &ctx.commit)? {
        for run in ctx
            .state
            .match_globs(&[format!("{rel}/{{task,deploy}}/*/*")])?
        {
            let Some(doc) = ctx.state.get_str(&run)? else {
                continue;
            };
            if let Ok(run) = serde_json::from_value::<RunDoc>(doc) {
                out.extend(run.watch);
            }
        }
    }
    Ok(out.into_iter().collect())
}

/// The directories (relative to the git root) of filesystem stores kept
/// inside the work tree, which a push does not count as changes.
fn store_dirs(ctx: &EngineContext, git_root: &std::path::Path) -> Vec<String> {
    let config = &ctx.site.config;
    let mut out = Vec::new();
    for spec in [Some(config.state_store()), config.intent.clone()]
        .into_iter()
        .flatten()
    {
        if let StoreSpec::Fs { path } = spec
            && let Ok(rel) = ctx.root.join(path).strip_prefix(git_root)
        {
            out.push(slash_path(rel));
        }
    }
    out
}

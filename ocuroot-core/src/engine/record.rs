//! The repository record, `<repo>/-/repo.ocu.star/@<commit>`
//! ([`RepoRecord`]): written by `release new`, read by cascades (where to
//! clone a repository from) and `work trigger` (its `repo.ocu.star`).

use std::path::Path;

use super::EngineContext;
use crate::model::RepoRecord;
use crate::refs::Ref;
use crate::repo;
use crate::{Error, Result};

/// `<repo>/-/repo.ocu.star/@<commit>`: the record of `repo` at `commit`.
pub(crate) fn repo_doc_ref(repo: &str, commit: &str) -> Ref {
    Ref {
        repo: repo.to_string(),
        filename: repo::REPO_CONFIG_FILE.to_string(),
        release: Some(commit.to_string()),
        ..Ref::default()
    }
}

/// The record of this repository at the current commit, unless state has
/// it already: `release new` writes it with the release.
pub(crate) fn repo_record(ctx: &EngineContext) -> Result<Option<(Ref, RepoRecord)>> {
    if ctx.commit == repo::NULL_COMMIT {
        return Ok(None);
    }
    let r = repo_doc_ref(&ctx.site.repo, &ctx.commit);
    if ctx.state.exists(&r)? {
        return Ok(None);
    }
    let source = match &ctx.site.config_file {
        Some(f) => ctx.host.read_file(f)?,
        None => String::new(),
    };
    let record = RepoRecord::new(
        ctx.site.remotes.clone(),
        ctx.site.config.remotes.clone(),
        &source,
    );
    Ok(Some((r, record)))
}

/// The record of `repo` at `commit`, else at any commit.
pub(crate) fn repo_doc(
    ctx: &EngineContext,
    repo: &str,
    commit: &str,
) -> Result<Option<RepoRecord>> {
    let exact = repo_doc_ref(repo, commit);
    if let Some(doc) = ctx.state.get(&exact)? {
        return RepoRecord::from_doc(&exact, doc).map(Some);
    }
    let glob = format!("{repo}/-/{}/@*", repo::REPO_CONFIG_FILE);
    for text in ctx.state.match_globs(&[glob])?.into_iter().rev() {
        let r = Ref::parse(&text)?;
        if let Some(doc) = ctx.state.get(&r)? {
            return RepoRecord::from_doc(&r, doc).map(Some);
        }
    }
    Ok(None)
}

/// Run `eval` on a recorded `repo.ocu.star` `source`, written on its own
/// into a scratch directory: `eval` gets the directory and the file, which
/// are removed when it returns.
pub(crate) fn with_recorded_file<T>(
    source: &str,
    eval: impl FnOnce(&Path, &Path) -> Result<T>,
) -> Result<T> {
    let dir =
        tempfile::tempdir().map_err(|e| Error::io("cannot create", &std::env::temp_dir(), e))?;
    let path = dir.path().join(repo::REPO_CONFIG_FILE);
    std::fs::write(&path, source).map_err(|e| Error::io("cannot write", &path, e))?;
    eval(dir.path(), &path)
}

/// The URLs to clone `repo` from: its `remotes()`, else its git remotes.
pub(crate) fn remotes_of(ctx: &EngineContext, repo: &str, commit: &str) -> Result<Vec<String>> {
    let record = repo_doc(ctx, repo, commit)?.ok_or_else(|| {
        Error::not_found(format!(
            "cannot clone {repo} to work at commit {commit}: state has no {} \
             (written by `ocuroot release new` in that repository) saying where it lives",
            repo_doc_ref(repo, commit)
        ))
    })?;
    let urls = record.clone_urls().to_vec();
    if urls.is_empty() {
        return Err(Error::not_found(format!(
            "cannot clone {repo} to work at commit {commit}: it has no remotes \
             (add `remotes([...])` to its repo.ocu.star, or a git remote)"
        )));
    }
    Ok(urls)
}

//! Running in a checkout of a state or intent branch: the checkout is found
//! by its `.ocuroot-store` (deeper than any `repo.ocu.star`), and the
//! `repo.ocu.star` recorded in it names the real stores to open.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::engine::record::with_recorded_file;
use crate::host::Host;
use crate::model::RepoRecord;
use crate::model::{RepoConfig, StoreSpec};
use crate::refs::Ref;
use crate::repo::REPO_CONFIG_FILE;
use crate::sdk::{self, EvalOptions, Limits};
use crate::store::marker::{MARKER_FILE, marker_tags};
use crate::store::{FsStore, RefStore};
use crate::{Error, Result};

/// A checkout of a store branch that a command runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreCheckout {
    /// The directory holding `.ocuroot-store`.
    pub dir: PathBuf,
    /// Its tags: `state`, `intent`.
    pub tags: Vec<String>,
    /// The repository whose recorded `repo.ocu.star` opened the stores.
    pub repo: String,
}

/// The directory of the nearest `.ocuroot-store` above `start`, when it is
/// deeper than the nearest `repo.ocu.star` (or there is none).
pub(crate) fn find(start: &Path) -> Option<PathBuf> {
    for dir in start.ancestors() {
        if dir.join(REPO_CONFIG_FILE).is_file() {
            return None;
        }
        if dir.join(MARKER_FILE).is_file() {
            return Some(dir.to_path_buf());
        }
    }
    None
}

/// Read the checkout at `dir`: the first repository recorded in it and that
/// repository's `repo.ocu.star`, evaluated. Its stores must be git stores
/// (a directory store is only reachable from its repository).
pub(crate) fn open(
    dir: &Path,
    host: &Arc<dyn Host>,
    limits: Limits,
) -> Result<(StoreCheckout, RepoConfig)> {
    let marker = dir.join(MARKER_FILE);
    let bytes = std::fs::read(&marker).map_err(|e| Error::io("cannot read", &marker, e))?;
    let tags = marker_tags(&bytes);
    let Some(tag) = tags.first() else {
        return Err(Error::store(format!(
            "{} is not a store marker with tags (state or intent)",
            marker.display()
        )));
    };
    // Reading creates nothing in the checkout.
    let store = RefStore::new(Arc::new(FsStore::open(dir, tag)?));
    let records = store.match_globs(&[format!("**/-/{REPO_CONFIG_FILE}/@*")])?;
    let first = records
        .iter()
        .filter_map(|r| Ref::parse(r).ok())
        .map(|r| r.repo)
        .next()
        .ok_or_else(|| {
            Error::config(format!(
                "{} is a {tag} store checkout, but records no repository (no \
                 <repo>/-/{REPO_CONFIG_FILE}/@<commit>): run a release from the repository first",
                dir.display()
            ))
        })?;
    // The repository's latest record that has a source.
    let mut source = None;
    for text in records.iter().rev() {
        let r = Ref::parse(text)?;
        if r.repo != first {
            continue;
        }
        if let Some(doc) = store.get(&r)?
            && let Some(s) = RepoRecord::from_doc(&r, doc)?.source()?
        {
            source = Some(s);
            break;
        }
    }
    let source = source.ok_or_else(|| {
        Error::config(format!(
            "{first}/-/{REPO_CONFIG_FILE} is recorded in {} without its source",
            dir.display()
        ))
    })?;
    let config = with_recorded_file(&source, |scratch, path| {
        let mut options = EvalOptions::new(host.clone(), scratch, Ref::default());
        options.limits = limits;
        sdk::evaluate_repo_config(path, &options).map_err(|e| {
            e.context(format!(
                "the {REPO_CONFIG_FILE} of {first} recorded in {}",
                dir.display()
            ))
        })
    })?;
    let is_git = |spec: &StoreSpec| matches!(spec, StoreSpec::Git { .. });
    let git_only =
        config.state.as_ref().is_some_and(is_git) && config.intent.as_ref().is_none_or(is_git);
    if !git_only {
        return Err(Error::config(format!(
            "the {REPO_CONFIG_FILE} of {first} recorded in {} keeps state in a directory \
             (store.fs), which only that repository can reach: run ocuroot there",
            dir.display()
        )));
    }
    Ok((
        StoreCheckout {
            dir: dir.to_path_buf(),
            tags,
            repo: first,
        },
        config,
    ))
}

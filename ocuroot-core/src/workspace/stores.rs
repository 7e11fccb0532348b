//! Opening the stores `repo.ocu.star` configures: directories, or branches
//! of git remotes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::model::{RepoConfig, StoreSpec};
use crate::store::{Durability, FsStore, GitBranch, GitOptions, NetworkSettings, Store};
use crate::{Error, Result};

/// Environment variables are read through this (the host's).
pub(crate) type Vars<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The state and intent stores `config` names, relative to `root`.
///
/// With no intent store, one backend holds both, under `state/` and
/// `intent/`. Git stores are cloned under `OCUROOT_HOME` (default
/// `~/.ocuroot`); see [`git_options`] for the variables read.
pub(crate) fn open_configured(
    root: &Path,
    config: &RepoConfig,
    var: Vars<'_>,
) -> Result<(Arc<dyn Store>, Arc<dyn Store>)> {
    let state_spec = config.state_store();
    match &config.intent {
        Some(intent_spec) => {
            if let (
                StoreSpec::Git {
                    remote_url: a,
                    branch: ba,
                    ..
                },
                StoreSpec::Git {
                    remote_url: b,
                    branch: bb,
                    ..
                },
            ) = (&state_spec, intent_spec)
                && resolve_remote(root, a) == resolve_remote(root, b)
                && ba == bb
            {
                return Err(Error::config(format!(
                    "the state and intent stores are both branch {} of {a}: give them different \
                     branches, or configure one store.git(...) for both (state and intent are \
                     then kept under state/ and intent/)",
                    ba.as_deref().unwrap_or("(default)")
                )));
            }
            Ok((
                open_one(root, &state_spec, "state", var)?,
                open_one(root, intent_spec, "intent", var)?,
            ))
        }
        None => match &state_spec {
            StoreSpec::Fs { path } => {
                let base = fs_dir(root, path);
                Ok((
                    Arc::new(FsStore::open(base.join("state"), "state")?),
                    Arc::new(FsStore::open(base.join("intent"), "intent")?),
                ))
            }
            StoreSpec::Git { .. } => {
                let branch = GitBranch::open(git_options(root, &state_spec, var)?)?;
                // A new branch gets both stores' markers in one push.
                Ok((
                    Arc::new(branch.store_with("state", "state", Durability::Deferred)?),
                    Arc::new(branch.store("intent", "intent")?),
                ))
            }
        },
    }
}

fn open_one(root: &Path, spec: &StoreSpec, tag: &str, var: Vars<'_>) -> Result<Arc<dyn Store>> {
    Ok(match spec {
        StoreSpec::Fs { path } => Arc::new(FsStore::open(fs_dir(root, path), tag)?),
        StoreSpec::Git { .. } => {
            Arc::new(GitBranch::open(git_options(root, spec, var)?)?.store("", tag)?)
        }
    })
}

fn fs_dir(root: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        root.join(p)
    }
}

/// A remote path relative to the repository root made absolute; URLs are
/// kept.
fn resolve_remote(root: &Path, remote: &str) -> String {
    if remote.contains("://") || crate::repo::is_network_url(remote) {
        return remote.to_string();
    }
    let path = Path::new(remote);
    if path.is_absolute() {
        remote.to_string()
    } else {
        root.join(path).to_string_lossy().into_owned()
    }
}

/// The options of a `store.git(...)` spec, with:
///
/// - `OCUROOT_HOME` (default `$HOME/.ocuroot`): where clones live;
/// - `OCUROOT_GIT_USER_NAME` / `OCUROOT_GIT_USER_EMAIL`: the commit author
///   (default `Ocuroot <contact@ocuroot.com>`);
/// - `OCUROOT_GIT_FETCH_INTERVAL`: seconds between fetches before reads
///   (default 5; 0 fetches before every read);
/// - `OCUROOT_GIT_PUSH_ATTEMPTS`: how many times a rejected push is
///   re-applied and tried again (default 30);
/// - how network remotes are reached ([`NetworkSettings::from_env`]):
///   `OCUROOT_GIT_TOKEN`, `OCUROOT_GIT_USERNAME`, `GIT_SSH_COMMAND`,
///   `GIT_SSH`, `GIT_SSH_VARIANT`, `OCUROOT_SSH_SHARE`, `GIT_SSL_CAINFO`,
///   `SSL_CERT_FILE`.
pub(crate) fn git_options(root: &Path, spec: &StoreSpec, var: Vars<'_>) -> Result<GitOptions> {
    let StoreSpec::Git {
        remote_url,
        branch,
        create_branch,
        support_files,
    } = spec
    else {
        return Err(Error::internal("git_options of a directory store"));
    };
    let home = ocuroot_home(var)?;
    let mut options = GitOptions::new(resolve_remote(root, remote_url), home);
    options.branch = branch.clone();
    options.create_branch = *create_branch;
    for (path, _) in support_files.iter() {
        check_support_path(path)?;
    }
    options.support_files = support_files.clone();
    options.network = NetworkSettings::from_env(var);
    if let Some(name) = var("OCUROOT_GIT_USER_NAME") {
        options.author_name = name;
    }
    if let Some(email) = var("OCUROOT_GIT_USER_EMAIL") {
        options.author_email = email;
    }
    if let Some(text) = var("OCUROOT_GIT_FETCH_INTERVAL") {
        let seconds: f64 = text.trim().parse().ok().filter(|s: &f64| s.is_finite() && *s >= 0.0).ok_or_else(|| {
            Error::config(format!(
                "OCUROOT_GIT_FETCH_INTERVAL={text:?}: expected a number of seconds, such as 5 or 0.5"
            ))
        })?;
        options.fetch_interval = Duration::from_secs_f64(seconds);
    }
    if let Some(text) = var("OCUROOT_GIT_PUSH_ATTEMPTS") {
        options.push_attempts = text.trim().parse().ok().filter(|n| *n > 0).ok_or_else(|| {
            Error::config(format!(
                "OCUROOT_GIT_PUSH_ATTEMPTS={text:?}: expected a whole number of attempts, at least 1"
            ))
        })?;
    }
    Ok(options)
}

/// `OCUROOT_HOME`, else `$HOME/.ocuroot`.
pub(crate) fn ocuroot_home(var: Vars<'_>) -> Result<PathBuf> {
    if let Some(home) = var("OCUROOT_HOME") {
        return Ok(PathBuf::from(home));
    }
    match var("HOME") {
        Some(home) => Ok(PathBuf::from(home).join(".ocuroot")),
        None => Err(Error::config(
            "neither OCUROOT_HOME nor HOME is set: set OCUROOT_HOME to the directory where \
             ocuroot keeps its clones of git stores",
        )),
    }
}

/// A support file's path must stay in the branch and clear of the store's
/// own files.
fn check_support_path(path: &str) -> Result<()> {
    let bad = |why: &str| Error::config(format!("store.git(support_files=...): {path:?} {why}"));
    crate::refs::validate_key(path).map_err(|e| bad(e.message()))?;
    let first = path.split('/').next().unwrap_or_default();
    if matches!(
        first,
        "refs" | "state" | "intent" | ".ocuroot-store" | ".git"
    ) {
        return Err(bad("is where the store keeps its own files"));
    }
    Ok(())
}

/// `OCUROOT_HOME`, and the clones of the git stores `config` names (those
/// that exist).
pub(crate) fn configured_clones(
    root: &Path,
    config: &RepoConfig,
    var: Vars<'_>,
) -> Result<(PathBuf, Vec<PathBuf>)> {
    let home = ocuroot_home(var)?;
    let mut clones = Vec::new();
    for spec in std::iter::once(config.state_store()).chain(config.intent.clone()) {
        if matches!(spec, StoreSpec::Git { .. }) {
            let dir = GitBranch::clone_dir_of(&git_options(root, &spec, var)?)?;
            if dir.is_dir() && !clones.contains(&dir) {
                clones.push(dir);
            }
        }
    }
    Ok((home, clones))
}

//! The repository a command runs in: its Ocuroot root, git work tree, commit
//! and remotes, plus temporary worktrees of other commits (used by cascade).
//!
//! Everything here goes through `git2`; nothing shells out to `git`. The
//! process environment is never read implicitly: callers pass an `env`
//! closure, so the same code serves the CLI (`std::env::var`) and tests (a
//! map).

mod changes;
pub(crate) mod paths;
mod url;

use std::path::{Component, Path, PathBuf};

pub use changes::{changed_between, commits_between, files_at, has_commit, uncommitted_changes};
pub use url::{git_url_to_valid_path, redact_url};
pub(crate) use url::{is_network_url, scp_like};

use crate::{Error, Result};

/// Name of the file that marks an Ocuroot root.
pub const REPO_CONFIG_FILE: &str = "repo.ocu.star";

/// Environment variable that pretends HEAD is another commit.
pub const ENV_COMMIT_OVERRIDE: &str = "OCU_REPO_COMMIT_OVERRIDE";

/// Environment variable that sets the repo name when there is no alias.
pub const ENV_URL_OVERRIDE: &str = "OCU_REPO_URL_OVERRIDE";

/// The commit reported when there is no git repository or it has no commits.
pub const NULL_COMMIT: &str = "null";

/// Where a repository's name in refs comes from, in order of precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NameSource {
    /// `OCU_CFG_repo_alias`.
    AliasOverride,
    /// `repo_alias` in `repo.ocu.star`.
    Alias,
    /// `OCU_REPO_URL_OVERRIDE`.
    UrlOverride,
    /// The URL of the `origin` remote.
    Origin,
    /// The name of the root directory: there is no alias and no `origin`.
    Directory,
    /// The repository whose config a checkout of a state or intent branch
    /// records (the command runs in that checkout).
    StoreCheckout,
}

/// Facts about the repository a command runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoInfo {
    /// The Ocuroot root: the directory of the nearest `repo.ocu.star` above the
    /// starting directory, else the git work-tree root. Canonical.
    pub root: PathBuf,
    /// `root/repo.ocu.star`, if it exists.
    pub config_file: Option<PathBuf>,
    /// The work-tree root of the enclosing git repository, if any. Canonical.
    pub git_root: Option<PathBuf>,
    /// The repository's (common) git directory, shared by all its
    /// worktrees, if any. Canonical.
    pub git_dir: Option<PathBuf>,
    /// `OCU_REPO_COMMIT_OVERRIDE` if set and non-empty, else the HEAD commit
    /// (40 hex digits), else `"null"` when there are no commits or no git
    /// repository.
    pub commit: String,
    /// The URL of the remote named `origin`, if any.
    pub origin_url: Option<String>,
    /// The URLs of all remotes: `origin` first, then the others sorted by
    /// remote name. Remotes without a (UTF-8) URL are skipped.
    pub remotes: Vec<String>,
}

impl RepoInfo {
    /// Discover the repository enclosing `start`.
    ///
    /// Searches upward from `start` (canonicalised) for `repo.ocu.star`,
    /// stopping at the filesystem root, and independently finds the enclosing
    /// git repository. When `repo.ocu.star` is found its directory is the
    /// root, even if the git root is higher; otherwise the git work-tree root
    /// is. Git worktrees (`.git` files) are supported; bare repositories are
    /// an error, as is finding neither a `repo.ocu.star` nor a git repository.
    ///
    /// Environment lookups (`OCU_REPO_COMMIT_OVERRIDE`) go through `env`.
    pub fn discover(start: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<RepoInfo> {
        let start =
            std::fs::canonicalize(start).map_err(|e| Error::io("cannot resolve", start, e))?;

        let config_dir = start
            .ancestors()
            .find(|dir| dir.join(REPO_CONFIG_FILE).is_file())
            .map(Path::to_path_buf);

        let repo = match git2::Repository::discover(&start) {
            Ok(repo) => Some(repo),
            Err(e) if e.code() == git2::ErrorCode::NotFound => None,
            Err(e) => {
                return Err(Error::git(
                    &format!("cannot open the git repository above {}", start.display()),
                    e,
                ));
            }
        };

        let mut git_root = None;
        let mut git_dir = None;
        let mut head = None;
        let mut origin_url = None;
        let mut remotes = Vec::new();
        if let Some(repo) = &repo {
            let Some(workdir) = repo.workdir() else {
                return Err(Error::config(format!(
                    "{} is a bare git repository: run Ocuroot inside a work tree",
                    repo.path().display()
                )));
            };
            let workdir = std::fs::canonicalize(workdir)
                .map_err(|e| Error::io("cannot resolve git work tree", workdir, e))?;
            git_root = Some(workdir);
            git_dir = std::fs::canonicalize(repo.commondir()).ok();
            head = head_commit(repo)?;
            (origin_url, remotes) = remote_urls(repo)?;
        }

        let root = match (&config_dir, &git_root) {
            (Some(dir), _) => dir.clone(),
            (None, Some(dir)) => dir.clone(),
            (None, None) => {
                return Err(Error::config(format!(
                    "not in an Ocuroot repository: no {REPO_CONFIG_FILE} and no git repository above {}",
                    start.display()
                )));
            }
        };
        let config_file = config_dir.map(|dir| dir.join(REPO_CONFIG_FILE));

        let commit = match env(ENV_COMMIT_OVERRIDE).filter(|c| !c.is_empty()) {
            Some(c) => c,
            None => head.unwrap_or_else(|| NULL_COMMIT.to_string()),
        };

        Ok(RepoInfo {
            root,
            config_file,
            git_root,
            git_dir,
            commit,
            origin_url,
            remotes,
        })
    }

    /// The repo name used in refs when there is no alias, and where it
    /// comes from.
    ///
    /// `OCU_REPO_URL_OVERRIDE` (looked up through `env`) if set and non-empty,
    /// else [`git_url_to_valid_path`] of the `origin` URL, else the name of
    /// the root directory, so that a first run in a fresh local repository
    /// works. Only a root without a (UTF-8) name is an error.
    pub fn default_name(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(String, NameSource)> {
        if let Some(name) = env(ENV_URL_OVERRIDE).filter(|n| !n.is_empty()) {
            return Ok((name, NameSource::UrlOverride));
        }
        if let Some(url) = &self.origin_url {
            let name = git_url_to_valid_path(url);
            if !name.is_empty() {
                return Ok((name, NameSource::Origin));
            }
        }
        match self.root.file_name().and_then(|n| n.to_str()) {
            Some(name) if !name.is_empty() => Ok((name.to_string(), NameSource::Directory)),
            _ => Err(Error::config(
                "cannot determine the repository name: set repo_alias(...) in repo.ocu.star, \
                 OCU_CFG_repo_alias, or add an 'origin' remote",
            )),
        }
    }

    /// The path of `path` relative to the root, with `/` separators; used to
    /// build package refs.
    ///
    /// A relative `path` is taken relative to the root. `.` and `..` are
    /// resolved and symlinks of the existing part of the path are followed,
    /// so the path need not exist. The root itself gives `""`. A path outside
    /// the root, or one that is not valid UTF-8, is an
    /// [`InvalidInput`](crate::ErrorKind::InvalidInput) error.
    pub fn relative_path(&self, path: &Path) -> Result<String> {
        let absolute = if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.root.join(path)
        };
        let resolved = resolve(&paths::normalize(&absolute));
        let rel = resolved.strip_prefix(&self.root).map_err(|_| {
            Error::invalid_input(format!(
                "{} is outside the repository root {}",
                path.display(),
                self.root.display()
            ))
        })?;
        let mut parts = Vec::new();
        for component in rel.components() {
            match component {
                Component::Normal(part) => parts.push(part.to_str().ok_or_else(|| {
                    Error::invalid_input(format!("{} is not valid UTF-8", path.display()))
                })?),
                Component::CurDir => {}
                _ => {
                    return Err(Error::internal(format!(
                        "unexpected component in {} relative to {}",
                        resolved.display(),
                        self.root.display()
                    )));
                }
            }
        }
        Ok(parts.join("/"))
    }
}

/// The HEAD commit id, or `None` when the repository has no commits yet.
fn head_commit(repo: &git2::Repository) -> Result<Option<String>> {
    match repo.head() {
        Ok(head) => {
            let commit = head
                .peel_to_commit()
                .map_err(|e| Error::git("cannot resolve HEAD to a commit", e))?;
            Ok(Some(commit.id().to_string()))
        }
        Err(e)
            if matches!(
                e.code(),
                git2::ErrorCode::UnbornBranch | git2::ErrorCode::NotFound
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(Error::git("cannot read HEAD", e)),
    }
}

/// The `origin` URL and the URLs of all remotes (origin first, then by name).
fn remote_urls(repo: &git2::Repository) -> Result<(Option<String>, Vec<String>)> {
    let names = repo
        .remotes()
        .map_err(|e| Error::git("cannot list git remotes", e))?;
    // Names that are not valid UTF-8 cannot be looked up by name: skip them.
    let mut names: Vec<&str> = names.iter().filter_map(|n| n.ok().flatten()).collect();
    names.sort_by_key(|name| (*name != "origin", *name));
    let mut origin = None;
    let mut urls = Vec::new();
    for name in names {
        let remote = repo
            .find_remote(name)
            .map_err(|e| Error::git(&format!("cannot read git remote {name:?}"), e))?;
        if let Ok(url) = remote.url() {
            if name == "origin" {
                origin = Some(url.to_string());
            }
            urls.push(url.to_string());
        }
    }
    Ok((origin, urls))
}

/// Canonicalise the longest existing prefix of an absolute, normalised path
/// and append the rest unchanged.
fn resolve(path: &Path) -> PathBuf {
    let mut existing = path;
    let mut rest = Vec::new();
    loop {
        if let Ok(canonical) = std::fs::canonicalize(existing) {
            let mut out = canonical;
            out.extend(rest.iter().rev());
            return out;
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name);
                existing = parent;
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// A temporary, detached git worktree of a commit.
///
/// Created by [`add_worktree`]. Dropping it removes the directory and prunes
/// the worktree's registration from the repository, so `git worktree list`
/// no longer shows it.
#[derive(Debug)]
pub struct Worktree {
    path: PathBuf,
    name: String,
    commit: String,
    git_root: PathBuf,
    dir: Option<tempfile::TempDir>,
}

impl Worktree {
    /// The root of the worktree's checkout.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The full id (40 hex digits) of the commit checked out.
    pub fn commit(&self) -> &str {
        &self.commit
    }

    /// The worktree's name in the repository (`.git/worktrees/<name>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    fn cleanup(&mut self) -> Result<()> {
        let repo = git2::Repository::open(&self.git_root)
            .map_err(|e| Error::git("cannot open the repository to prune a worktree", e))?;
        let result = match repo.find_worktree(&self.name) {
            Ok(wt) => wt
                .prune(Some(
                    git2::WorktreePruneOptions::new()
                        .valid(true)
                        .locked(false)
                        .working_tree(true),
                ))
                .map_err(|e| Error::git(&format!("cannot prune worktree {}", self.name), e)),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(()),
            Err(e) => Err(Error::git(
                &format!("cannot find worktree {}", self.name),
                e,
            )),
        };
        // The temporary branch normally is gone already; remove it if
        // creation failed half way (after the prune, which releases it).
        if let Ok(mut branch) = repo.find_branch(&branch_name(&self.name), git2::BranchType::Local)
            && let Err(e) = while_worktrees_change(|| branch.delete())
        {
            tracing::warn!(worktree = %self.name, error = %e, "cannot delete the worktree's temporary branch");
        }
        if let Some(dir) = self.dir.take() {
            let path = dir.path().to_path_buf();
            dir.close()
                .map_err(|e| Error::io("cannot remove worktree directory", &path, e))?;
        }
        result
    }
}

impl Drop for Worktree {
    fn drop(&mut self) {
        if let Err(e) = self.cleanup() {
            tracing::warn!(worktree = %self.path.display(), "cannot remove worktree: {e}");
        }
    }
}

/// Verify that a checkout (`what`: worktree, clone) has `expected` checked
/// out.
fn check_head(repo: &git2::Repository, expected: &str, what: &str) -> Result<()> {
    let head = head_commit(repo)?;
    if head.as_deref() == Some(expected) {
        return Ok(());
    }
    Err(Error::new(
        crate::ErrorKind::Git,
        format!(
            "commit in {what} does not match expected commit: expected {expected}, found {}",
            head.as_deref().unwrap_or(NULL_COMMIT)
        ),
    ))
}

fn branch_name(worktree_name: &str) -> String {
    format!("ocuroot-worktree-{worktree_name}")
}

/// Run `op` (adding a worktree on a branch, deleting a branch), trying
/// again for a while when it fails because a branch is "checked out".
///
/// libgit2 checks that a branch is not checked out by opening every
/// worktree of the repository, and a worktree that another process is
/// adding or pruning at that moment makes the check answer yes (in libgit2
/// 1.9, `git_repository_foreach_worktree` turns a failed lookup into 1, the
/// callback's "found"). Agents cascading in one checkout at once hit it.
fn while_worktrees_change<T>(
    mut op: impl FnMut() -> std::result::Result<T, git2::Error>,
) -> std::result::Result<T, git2::Error> {
    let mut attempt = 0u32;
    loop {
        match op() {
            Err(e)
                if attempt < 40
                    && (e.message().contains("checked out")
                        || e.message().contains("HEAD of a linked repository")) =>
            {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(5 + u64::from(attempt) * 5));
            }
            other => return other,
        }
    }
}

/// Create a detached worktree of `commit` in a fresh directory under `under`.
///
/// `git_root` is the work tree (or any worktree) of the repository;
/// `commit` is anything git can resolve to a commit, usually a full id. The
/// checkout's HEAD is verified to be that commit. The worktree is removed and
/// pruned when the returned [`Worktree`] is dropped.
pub fn add_worktree(git_root: &Path, commit: &str, under: &Path) -> Result<Worktree> {
    let repo = git2::Repository::open(git_root).map_err(|e| {
        Error::git(
            &format!("cannot open the git repository at {}", git_root.display()),
            e,
        )
    })?;
    let target = repo
        .revparse_single(commit)
        .and_then(|obj| obj.peel_to_commit())
        .map_err(|e| Error::git(&format!("cannot find commit {commit}"), e))?;
    let oid = target.id();

    std::fs::create_dir_all(under).map_err(|e| Error::io("cannot create", under, e))?;
    let dir = tempfile::Builder::new()
        .prefix("ocuroot-wt-")
        .tempdir_in(under)
        .map_err(|e| Error::io("cannot create a directory in", under, e))?;
    let dir_name = dir
        .path()
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::internal("temporary directory name is not UTF-8"))?;
    let name = dir_name.trim_start_matches("ocuroot-wt-").to_string();
    let name = format!("ocuroot-{name}");
    let path = dir.path().join("checkout");

    let mut worktree = Worktree {
        path,
        name,
        commit: oid.to_string(),
        git_root: repo
            .workdir()
            .map_or_else(|| git_root.to_path_buf(), Path::to_path_buf),
        dir: Some(dir),
    };

    // libgit2 can only add a worktree on a branch: use a temporary one, then
    // detach HEAD and delete the branch.
    let branch_name = branch_name(&worktree.name);
    let mut branch = repo
        .branch(&branch_name, &target, false)
        .map_err(|e| Error::git("cannot create a branch for the worktree", e))?;
    let wt_repo = {
        let branch_ref = branch.get();
        let mut opts = git2::WorktreeAddOptions::new();
        opts.reference(Some(branch_ref));
        let wt =
            while_worktrees_change(|| repo.worktree(&worktree.name, &worktree.path, Some(&opts)))
                .map_err(|e| {
                Error::git(
                    &format!("cannot add a worktree at {}", worktree.path.display()),
                    e,
                )
            })?;
        git2::Repository::open_from_worktree(&wt)
            .map_err(|e| Error::git("cannot open the new worktree", e))?
    };
    wt_repo
        .set_head_detached(oid)
        .map_err(|e| Error::git("cannot detach the worktree's HEAD", e))?;
    // If it cannot be deleted now, `cleanup` deletes it.
    if let Err(e) = while_worktrees_change(|| branch.delete()) {
        tracing::debug!(branch = %branch_name, error = %e, "cannot delete a worktree's temporary branch yet");
    }

    check_head(&wt_repo, &worktree.commit, "worktree")?;
    worktree.path = std::fs::canonicalize(&worktree.path)
        .map_err(|e| Error::io("cannot resolve", &worktree.path, e))?;
    Ok(worktree)
}

/// A temporary clone of another repository, checked out (detached) at a
/// commit. Created by [`clone_at`]; dropping it removes the directory.
#[derive(Debug)]
pub struct RepoClone {
    path: PathBuf,
    url: String,
    _dir: tempfile::TempDir,
}

impl RepoClone {
    /// The root of the clone's checkout.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The URL it was cloned from.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// Clones `url` into the (new) directory `dest` when libgit2 cannot: this
/// build of libgit2 speaks only local and `file://` transports, so an
/// `https://` or `ssh` remote is cloned by the caller (for example with the
/// `git` command, through the [`Host`](crate::host::Host)).
pub type CloneFallback<'a> = &'a dyn Fn(&str, &Path) -> Result<()>;

/// Clone a repository into a fresh directory under `under`, trying `urls`
/// in order, and check out `commit` (detached). The checkout's HEAD is
/// verified to be that commit. Fails naming every URL tried when none
/// works.
pub fn clone_at(urls: &[String], commit: &str, under: &Path) -> Result<RepoClone> {
    clone_with(urls, commit, under, None)
}

/// [`clone_at`], with `fallback` cloning the URLs libgit2 cannot reach
/// (network transports).
pub fn clone_with(
    urls: &[String],
    commit: &str,
    under: &Path,
    fallback: Option<CloneFallback<'_>>,
) -> Result<RepoClone> {
    if urls.is_empty() {
        return Err(Error::new(
            crate::ErrorKind::Git,
            format!("cannot clone to reach commit {commit}: no remotes are known"),
        ));
    }
    std::fs::create_dir_all(under).map_err(|e| Error::io("cannot create", under, e))?;
    let mut failures = Vec::new();
    for url in urls {
        let dir = tempfile::Builder::new()
            .prefix("ocuroot-clone-")
            .tempdir_in(under)
            .map_err(|e| Error::io("cannot create a directory in", under, e))?;
        let path = dir.path().join("checkout");
        let attempt = (|| -> std::result::Result<(), String> {
            let repo = match git2::Repository::clone(url, &path) {
                Ok(repo) => repo,
                Err(e) => match fallback {
                    Some(clone) if e.class() == git2::ErrorClass::Net || is_network_url(url) => {
                        let _ = std::fs::remove_dir_all(&path);
                        clone(url, &path).map_err(|e| e.to_string())?;
                        git2::Repository::open(&path).map_err(|e| e.message().to_string())?
                    }
                    _ => return Err(e.message().to_string()),
                },
            };
            let oid = repo
                .revparse_single(commit)
                .and_then(|o| o.peel_to_commit())
                .map_err(|e| format!("commit {commit} not found: {}", e.message()))?
                .id();
            repo.set_head_detached(oid)
                .map_err(|e| e.message().to_string())?;
            repo.checkout_head(Some(git2::build::CheckoutBuilder::new().force()))
                .map_err(|e| e.message().to_string())?;
            check_head(&repo, &oid.to_string(), "clone").map_err(|e| e.message().to_string())
        })();
        match attempt {
            Ok(()) => {
                let path = std::fs::canonicalize(&path)
                    .map_err(|e| Error::io("cannot resolve", &path, e))?;
                return Ok(RepoClone {
                    path,
                    url: url.clone(),
                    _dir: dir,
                });
            }
            Err(e) => failures.push(format!("  {url}: {e}")),
        }
    }
    Err(Error::new(
        crate::ErrorKind::Git,
        format!(
            "all remotes exhausted trying to clone the repository at commit {commit}:\n{}",
            failures.join("\n")
        ),
    ))
}

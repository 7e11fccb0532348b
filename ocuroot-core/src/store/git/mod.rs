//! [`GitStore`]: state and intent in a branch of a git remote; the layout,
//! commits and pushes are documented on the type.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use git2::{Oid, Repository};

use super::marker::{MARKER_FILE, marker_update};
use super::{Durability, Entry, Expect, Op, Store, validate_key, validate_prefix};
use crate::{Error, Result};

mod clones;
mod https;
mod journal;
mod message;
mod network;
mod objects;
mod publish;
mod settings;
mod ssh;
mod transport;
mod tree;

pub use clones::{Packed, pack as pack_clone, prune as prune_clones};
pub use settings::NetworkSettings;

use transport::Transport;
use tree::{Action, Change};

/// How a [`GitBranch`] is opened: the remote, the branch, and how this agent
/// commits and pushes.
#[derive(Debug, Clone)]
pub struct GitOptions {
    /// The remote: a URL (`ssh://`, `https://`, `git@host:path`, `file://`)
    /// or an absolute path.
    pub remote: String,
    /// The branch; the remote's default branch when `None`.
    pub branch: Option<String>,
    /// Create the branch on the remote when it does not exist.
    pub create_branch: bool,
    /// Files written at the branch root whenever a repository's config is
    /// recorded for a new commit (`{path: content}`).
    pub support_files: BTreeMap<String, String>,
    /// `OCUROOT_HOME`: the local clone lives under `<home>/stores/`.
    pub home: PathBuf,
    /// The commit author's name (`Ocuroot` by default).
    pub author_name: String,
    /// The commit author's email (`contact@ocuroot.com` by default).
    pub author_email: String,
    /// Fetch before a read when the last fetch is older than this.
    pub fetch_interval: Duration,
    /// How long deferred batches may wait for a push.
    pub defer_interval: Duration,
    /// How many times a push the remote refuses while its branch stays
    /// where it was (a hook, a lock) is tried again before the commit
    /// fails. A push rejected because another agent pushed first is
    /// fetched, re-applied and retried without counting, for up to ten
    /// minutes.
    pub push_attempts: u32,
    /// How network remotes are reached: credentials, ssh command, CA.
    pub network: NetworkSettings,
}

impl GitOptions {
    /// The defaults for `remote`, cloned under `home`.
    pub fn new(remote: impl Into<String>, home: impl Into<PathBuf>) -> GitOptions {
        GitOptions {
            remote: remote.into(),
            branch: None,
            create_branch: true,
            support_files: BTreeMap::new(),
            home: home.into(),
            author_name: "Ocuroot".to_string(),
            author_email: "contact@ocuroot.com".to_string(),
            fetch_interval: Duration::from_secs(5),
            defer_interval: Duration::from_secs(1),
            push_attempts: 30,
            network: NetworkSettings::default(),
        }
    }
}

/// Counters of what a [`GitBranch`] did, for benchmarks and reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GitStats {
    /// Commits made (including re-applied ones).
    pub commits: u64,
    /// Pushes the remote accepted.
    pub pushes: u64,
    /// Pushes the remote rejected (then fetched and tried again).
    pub rejected: u64,
    /// Fetches.
    pub fetches: u64,
}

/// One branch of a remote, cloned locally: the shared part of the
/// [`GitStore`]s (state, intent) kept in it.
pub struct GitBranch {
    options: GitOptions,
    /// The remote as shown: without credentials.
    shown: String,
    branch: String,
    transport: Transport,
    clone_dir: PathBuf,
    inner: Mutex<Inner>,
    commits: AtomicU64,
    pushes: AtomicU64,
    rejected: AtomicU64,
    fetches: AtomicU64,
}

impl std::fmt::Debug for GitBranch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitBranch")
            .field("remote", &self.shown)
            .field("branch", &self.branch)
            .field("clone", &self.clone_dir)
            .finish_non_exhaustive()
    }
}

struct Inner {
    /// New objects, in memory until written into the clone as a pack.
    /// Declared before `repo`, so dropped before it.
    memory: objects::Memory,
    /// The deferred batches not pushed yet, on disk.
    journal: journal::Journal,
    repo: Repository,
    /// The remote's branch as last seen (`None`: it does not exist yet).
    tip: Option<Oid>,
    /// Commits on `tip` not pushed yet, oldest first.
    pending: Vec<Pending>,
    fetched: Option<Instant>,
}

/// A committed batch waiting for its push.
struct Pending {
    changes: Vec<Change>,
    message: String,
    commit: Oid,
    /// When it was committed, if deferred.
    deferred: Option<Instant>,
    /// Committed [`Founding`](Durability::Founding): the batches after it
    /// build on it.
    founding: bool,
}

impl Inner {
    /// The commit reads see: the tip and this agent's unpushed commits.
    fn head(&self) -> Option<Oid> {
        self.pending.last().map(|p| p.commit).or(self.tip)
    }
}

impl GitBranch {
    /// Clone (or open the clone of) the remote, fetch the branch, and
    /// create it on the remote if it is missing and `create_branch` allows.
    pub fn open(options: GitOptions) -> Result<Arc<GitBranch>> {
        let transport = Transport::for_url(&options.remote);
        let shown = crate::repo::redact_url(&options.remote);
        let clone_dir = GitBranch::clone_dir_of(&options)?;
        if let Transport::Network(url) = &transport {
            network::configure(
                url,
                settings::Settings::new(&options.network, Some(options.home.clone())),
            );
        }
        clones::pack_if_due(&clone_dir);
        let shared = transport.shared_objects()?;
        let repo = clones::open(&clone_dir, &shown, shared.as_deref())?;
        clones::mark_used(&clone_dir);
        // A remote on this machine: its objects are read in place, and the
        // clone holds none (what it pushes goes to the remote), so only the
        // remote's object directory is searched (and rescanned for each new
        // object libgit2 writes) rather than the clone's too.
        let repo = match &shared {
            Some(objects) if clones::holds_no_objects(&clone_dir) => {
                drop(repo);
                clones::reading_in_place(objects)?
            }
            Some(objects) => {
                clones::attach(&repo, objects)?;
                repo
            }
            None => repo,
        };
        let memory = objects::Memory::attach(&repo)?;
        let branch = match &options.branch {
            Some(b) => b.clone(),
            None => transport.default_branch(&repo)?,
        };
        if !git2::Reference::is_valid_name(&format!("refs/heads/{branch}")) {
            return Err(Error::config(format!(
                "store.git({shown:?}): {branch:?} is not a valid branch name"
            )));
        }
        let journal = journal::Journal::new(&clone_dir, &branch);
        let store = GitBranch {
            options,
            shown,
            branch,
            transport,
            clone_dir,
            inner: Mutex::new(Inner {
                memory,
                journal,
                repo,
                tip: None,
                pending: Vec::new(),
                fetched: None,
            }),
            commits: AtomicU64::new(0),
            pushes: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            fetches: AtomicU64::new(0),
        };
        {
            let mut inner = store.lock();
            store.fetch(&mut inner)?;
            if inner.tip.is_none() && !store.options.create_branch {
                return Err(Error::config(format!(
                    "branch {:?} does not exist on {} and create_branch is False",
                    store.branch, store.shown
                )));
            }
            store.resume_unpushed(&mut inner)?;
        }
        Ok(Arc::new(store))
    }

    /// Where the clone of `options`' remote lives:
    /// `<home>/stores/<host>/<path>.git`.
    pub fn clone_dir_of(options: &GitOptions) -> Result<PathBuf> {
        let name = crate::repo::git_url_to_valid_path(&options.remote);
        if name.is_empty() {
            return Err(Error::config(format!(
                "store.git({:?}): not a usable remote URL or path",
                crate::repo::redact_url(&options.remote)
            )));
        }
        Ok(options.home.join("stores").join(format!("{name}.git")))
    }

    /// The store of the files under `prefix` (`""`, or `state`/`intent`
    /// when both share the branch), tagged `tag` in its `.ocuroot-store`,
    /// which is created (committed and pushed) if it is missing.
    pub fn store(self: &Arc<Self>, prefix: &str, tag: &str) -> Result<GitStore> {
        self.store_with(prefix, tag, Durability::Immediate)
    }

    /// [`store`](Self::store), creating a missing `.ocuroot-store` with
    /// `durability`: [`Durability::Deferred`] lets it share the push of the
    /// next commit (the other store's marker, when state and intent share
    /// the branch).
    pub fn store_with(
        self: &Arc<Self>,
        prefix: &str,
        tag: &str,
        durability: Durability,
    ) -> Result<GitStore> {
        let prefix = match prefix.trim_matches('/') {
            "" => String::new(),
            p => {
                validate_key(p).map_err(|e| e.context("invalid store prefix"))?;
                format!("{p}/")
            }
        };
        let store = GitStore {
            branch: self.clone(),
            prefix,
            tag: tag.to_string(),
        };
        let path = format!("{}{MARKER_FILE}", store.prefix);
        let place = format!("{path} in branch {} of {}", self.branch, self.shown);
        let mut inner = self.lock();
        // Another agent may create the marker at the same moment: read it
        // again after a conflict.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let current = {
                let tree = tree_of(&inner.repo, inner.head())?;
                tree::read(&inner.repo, tree.as_ref(), &path)?
            };
            let existing = current.as_ref().map(|e| e.value.as_slice());
            let Some(bytes) = marker_update(existing, tag, &place)? else {
                break;
            };
            let change = Change {
                path: path.clone(),
                label: path.clone(),
                action: Action::Put(bytes),
                expect: Expect::unchanged(current.map(|e| e.version)),
            };
            let message = format!("{tag} store initialised\n\nstore: {tag}\n+ {path}\n");
            match self.commit_locked(&mut inner, vec![change], message, durability) {
                Err(e) if e.is_conflict() && attempt < 5 => continue,
                other => other?,
            }
            break;
        }
        drop(inner);
        Ok(store)
    }

    /// The branch (resolved from the remote's `HEAD` when none was given).
    pub fn branch(&self) -> &str {
        &self.branch
    }

    /// The remote, as configured (credentials and all: never show this;
    /// see [`GitBranch::shown_remote`]).
    pub fn remote(&self) -> &str {
        &self.options.remote
    }

    /// The remote as it may be shown: a password or token in it is `***`.
    pub fn shown_remote(&self) -> &str {
        &self.shown
    }

    /// The local bare clone.
    pub fn clone_dir(&self) -> &Path {
        &self.clone_dir
    }

    /// What this branch has done so far.
    pub fn stats(&self) -> GitStats {
        GitStats {
            commits: self.commits.load(Ordering::Relaxed),
            pushes: self.pushes.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            fetches: self.fetches.load(Ordering::Relaxed),
        }
    }

    /// Push every deferred batch now.
    pub fn sync(&self) -> Result<()> {
        let mut inner = self.lock();
        if inner.pending.is_empty() {
            return Ok(());
        }
        self.publish(&mut inner, false)
    }

    /// Push every deferred batch, then fetch: reads see what every agent
    /// had pushed before this call.
    pub fn refresh(&self) -> Result<()> {
        let mut inner = self.lock();
        if !inner.pending.is_empty() {
            self.publish(&mut inner, false)?;
        }
        self.fetch(&mut inner)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Fetch the branch; the tip becomes the remote's. Only with nothing
    /// pending (pending commits are re-applied by `publish`).
    fn fetch(&self, inner: &mut Inner) -> Result<()> {
        let tip = self.transport.fetch(&inner.repo, &self.branch)?;
        self.fetches.fetch_add(1, Ordering::Relaxed);
        inner.fetched = Some(Instant::now());
        inner.tip = tip;
        Ok(())
    }

    /// Fetch before a read when the last fetch is old and nothing is
    /// pending.
    fn refresh_if_due(&self, inner: &mut Inner) -> Result<()> {
        let due = inner
            .fetched
            .is_none_or(|at| at.elapsed() >= self.options.fetch_interval);
        if due && inner.pending.is_empty() {
            self.fetch(inner)?;
        }
        Ok(())
    }

    /// Commit `changes` on the head, then push unless the batch may wait.
    fn commit_locked(
        &self,
        inner: &mut Inner,
        mut changes: Vec<Change>,
        message: String,
        durability: Durability,
    ) -> Result<()> {
        let head = inner.head();
        let now = Instant::now();
        let deferred = matches!(durability, Durability::Deferred | Durability::Founding);
        let added = match self.make_commit(inner, head, &changes, &message)? {
            Some(commit) => {
                if deferred {
                    // Its caller is told it is recorded: it must outlive
                    // this process until it is pushed.
                    inner.journal.record(&changes, &message)?;
                }
                inner.pending.push(Pending {
                    changes: std::mem::take(&mut changes),
                    message,
                    commit,
                    deferred: deferred.then_some(now),
                    founding: durability == Durability::Founding,
                });
                true
            }
            None => false,
        };
        let oldest = inner.pending.iter().filter_map(|p| p.deferred).min();
        let may_wait =
            deferred && oldest.is_none_or(|t| now.duration_since(t) < self.options.defer_interval);
        if may_wait || inner.pending.is_empty() {
            return Ok(());
        }
        self.publish(inner, added)
    }

    /// The commit of `changes` on `parent`, or `None` if they change nothing.
    fn make_commit(
        &self,
        inner: &Inner,
        parent: Option<Oid>,
        changes: &[Change],
        message: &str,
    ) -> Result<Option<Oid>> {
        let repo = &inner.repo;
        let base = tree_of(repo, parent)?;
        let Some(tree) = tree::apply(repo, base.as_ref(), changes)? else {
            return Ok(None);
        };
        if base.as_ref().is_some_and(|b| b.id() == tree) {
            return Ok(None);
        }
        let tree = repo
            .find_tree(tree)
            .map_err(|e| Error::git("read the new tree", e))?;
        let signature = git2::Signature::now(&self.options.author_name, &self.options.author_email)
            .map_err(|e| Error::git("make the commit's author", e))?;
        let parent = match parent {
            Some(p) => Some(
                repo.find_commit(p)
                    .map_err(|e| Error::git("read the parent commit", e))?,
            ),
            None => None,
        };
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        let oid = repo
            .commit(None, &signature, &signature, message, &tree, &parents)
            .map_err(|e| Error::git("commit", e))?;
        // What a push sends: the commit and, of its tree, what differs from
        // its parent's (the objects along the paths it changed).
        let mut made = vec![oid, tree.id()];
        tree::along(
            repo,
            &tree,
            changes.iter().map(|c| c.path.as_str()),
            &mut made,
        )?;
        inner.memory.made(made);
        self.commits.fetch_add(1, Ordering::Relaxed);
        Ok(Some(oid))
    }
}

impl Drop for GitBranch {
    fn drop(&mut self) {
        let mut inner = self.lock();
        if !inner.pending.is_empty()
            && let Err(e) = self.publish(&mut inner, false)
        {
            tracing::warn!(error = %e, "could not push the last deferred batches");
        }
        // A clone of a remote on this machine reads the remote's objects in
        // place, and everything pushed is there; a clone of a network
        // remote keeps what it pushed and fetched for the next command.
        let inner = &mut *inner;
        if matches!(self.transport, Transport::Network(_))
            && let Err(e) = inner.memory.persist(&inner.repo)
        {
            tracing::debug!(error = %e, "could not write the last objects into the clone");
        }
        // The branch as last seen, for people looking at the clone of a
        // network remote (and what `state gc` keeps of its objects); the
        // tip in memory is what counts, so it is written once, and a
        // failure (a lock another process holds) is harmless. A clone of a
        // remote on this machine keeps no objects of its own.
        let name = format!("refs/remotes/origin/{}", self.branch);
        if matches!(self.transport, Transport::Network(_))
            && let Some(tip) = inner.tip
            && inner.repo.refname_to_id(&name).ok() != Some(tip)
            && let Err(e) = inner.repo.reference(&name, tip, true, "ocuroot: fetch")
        {
            tracing::debug!(error = %e, "could not update {name}");
        }
    }
}

/// The tree of `commit`.
fn tree_of(repo: &Repository, commit: Option<Oid>) -> Result<Option<git2::Tree<'_>>> {
    let Some(commit) = commit else {
        return Ok(None);
    };
    repo.find_commit(commit)
        .and_then(|c| c.tree())
        .map(Some)
        .map_err(|e| Error::git(&format!("read commit {commit}"), e))
}

/// A [`Store`] kept in a branch of a git remote that CI agents on many
/// machines share (`store.git(...)` in `repo.ocu.star`): the files under one
/// prefix of a [`GitBranch`].
///
/// # Layout
///
/// The branch holds the files a directory store ([`FsStore`](super::FsStore))
/// holds, as the original Ocuroot writes them, so a person browsing the
/// branch, the original binary and a checkout used as a directory store all
/// see the same state:
///
/// ```text
/// .ocuroot-store                     {"version":3,"Tags":{"state":{}}}
/// refs/<key>/@object.json            the value of <key>
/// support.txt ...                    support_files, at the branch root
/// ```
///
/// When state and intent share one branch, each has its files under
/// `state/` and `intent/` (with its own `.ocuroot-store`).
///
/// # Commits and pushes
///
/// Each batch ([`Store::commit`]) becomes one commit whose parent is the
/// remote's branch as this agent last saw it, with a message saying what
/// happened (`release r3 created`, `run .../deploy/prod/1 running`) and the
/// keys it wrote. No working tree is checked out: blobs and trees are built
/// in the object database of a bare clone under `$OCUROOT_HOME/stores/`.
///
/// The commit is pushed as a compare-and-swap: the remote's branch moves
/// only if it still points at the parent (checked on the connection that
/// pushes, and by the server). When another agent pushed first, the branch
/// is fetched, the batch's expectations (the blob ids of what the
/// transaction read) are checked against the new tip, and the batch is
/// applied again as a new commit on it and pushed again, with a jittered
/// backoff ([`GitOptions::push_attempts`] says for how long). An
/// expectation that no longer holds is a
/// [`Conflict`](crate::ErrorKind::Conflict), the error the engine already
/// handles (so a run another agent claimed is not executed twice). There is
/// never a merge commit or a force push, and the history stays linear. The
/// clone's view is never ahead of the remote: a commit becomes this agent's
/// view of the branch only once the remote has taken it. Deferred batches
/// are written to a journal in the clone as they are committed, so that
/// if the process is killed, or the remote cannot be reached, the next
/// command that opens the branch pushes them.
///
/// Network remotes (ssh, https, `git://`) are reached as
/// [`NetworkSettings`] say: ssh through the user's own `ssh` program, https
/// through rustls; see the crate's README.
///
/// [`Durability::Deferred`] batches (run outcomes) are committed locally
/// and pushed together with the next batch that must reach the remote
/// (a claim, [`Durability::Shared`], or an [`Durability::Immediate`] batch)
/// once a second has passed, or by [`Store::sync`]: several outcomes share
/// one push, while a claim always reaches the remote before its work runs.
///
/// Reads come from the last fetched tip plus this agent's own commits; the
/// branch is fetched again before a read when the last fetch is older than
/// the refresh interval ([`GitOptions::fetch_interval`], 5 s by default).
#[derive(Debug, Clone)]
pub struct GitStore {
    branch: Arc<GitBranch>,
    prefix: String,
    tag: String,
}

impl GitStore {
    /// Open the branch `options` name and its files at the branch root as a store
    /// tagged `tag` (`state` or `intent`).
    pub fn open(options: GitOptions, tag: &str) -> Result<GitStore> {
        GitBranch::open(options)?.store("", tag)
    }

    /// The branch this store is in.
    pub fn branch(&self) -> &Arc<GitBranch> {
        &self.branch
    }

    fn path(&self, key: &str) -> Result<String> {
        validate_key(key)?;
        Ok(tree::key_path(&self.prefix, key))
    }

    /// Support files to write with a batch that records a repository's
    /// config for a commit (`<repo>/-/repo.ocu.star/@<commit>`).
    fn support_changes(&self, ops: &[Op]) -> Vec<Change> {
        let records_config = ops.iter().any(|op| {
            matches!(op, Op::Put { .. })
                && crate::refs::Ref::parse(op.key()).is_ok_and(|r| {
                    r.filename == crate::repo::REPO_CONFIG_FILE
                        && r.release.is_some()
                        && r.subpath_type.is_none()
                })
        });
        if !records_config {
            return Vec::new();
        }
        self.branch
            .options
            .support_files
            .iter()
            .map(|(path, content)| Change {
                path: path.clone(),
                label: format!("support file {path}"),
                action: Action::Put(content.clone().into_bytes()),
                expect: Expect::Any,
            })
            .collect()
    }
}

impl Store for GitStore {
    fn get(&self, key: &str) -> Result<Option<Entry>> {
        let path = self.path(key)?;
        let mut inner = self.branch.lock();
        self.branch.refresh_if_due(&mut inner)?;
        let tree = tree_of(&inner.repo, inner.head())?;
        tree::read(&inner.repo, tree.as_ref(), &path)
    }

    fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Entry>>> {
        let paths = keys
            .iter()
            .map(|k| self.path(k))
            .collect::<Result<Vec<_>>>()?;
        let mut inner = self.branch.lock();
        self.branch.refresh_if_due(&mut inner)?;
        let tree = tree_of(&inner.repo, inner.head())?;
        paths
            .iter()
            .map(|p| tree::read(&inner.repo, tree.as_ref(), p))
            .collect()
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        validate_prefix(prefix)?;
        let mut inner = self.branch.lock();
        self.branch.refresh_if_due(&mut inner)?;
        let tree = tree_of(&inner.repo, inner.head())?;
        let refs_dir = format!("{}refs", self.prefix);
        tree::list(&inner.repo, tree.as_ref(), &refs_dir, prefix)
    }

    fn commit(&self, ops: &[Op]) -> Result<()> {
        self.commit_with(ops, Durability::Immediate)
    }

    fn commit_with(&self, ops: &[Op], durability: Durability) -> Result<()> {
        let mut changes = Vec::with_capacity(ops.len());
        for op in ops {
            let path = self.path(op.key())?;
            let action = match op {
                Op::Put { value, .. } => Action::Put(value.clone()),
                Op::Delete { .. } => Action::Delete,
                Op::Check { .. } => Action::Check,
            };
            changes.push(Change {
                path,
                label: op.key().to_string(),
                action,
                expect: op.expect(),
            });
        }
        changes.extend(self.support_changes(ops));
        let message = message::describe(&self.tag, ops);
        let mut inner = self.branch.lock();
        self.branch
            .commit_locked(&mut inner, changes, message, durability)
    }

    fn sync(&self) -> Result<()> {
        self.branch.sync()
    }

    fn refresh(&self) -> Result<()> {
        self.branch.refresh()
    }

    fn revision(&self) -> Result<Option<String>> {
        let mut inner = self.branch.lock();
        self.branch.refresh_if_due(&mut inner)?;
        Ok(inner.head().map(|oid| oid.to_string()))
    }

    fn changed_since(&self, since: &str) -> Result<Option<Vec<String>>> {
        let mut inner = self.branch.lock();
        self.branch.refresh_if_due(&mut inner)?;
        let Ok(since) = Oid::from_str(since) else {
            return Ok(None);
        };
        if inner.repo.find_commit(since).is_err() {
            return Ok(None);
        }
        let old = tree_of(&inner.repo, Some(since))?;
        let new = tree_of(&inner.repo, inner.head())?;
        let refs_dir = format!("{}refs", self.prefix);
        tree::changed_keys(&inner.repo, old.as_ref(), new.as_ref(), &refs_dir).map(Some)
    }

    fn publication_log(&self) -> Option<usize> {
        // The branch's pending batches are pushed in the order committed,
        // whichever of its stores committed them.
        Some(Arc::as_ptr(&self.branch) as usize)
    }

    fn describe(&self) -> String {
        let under = if self.prefix.is_empty() {
            String::new()
        } else {
            format!(" under {}", self.prefix.trim_end_matches('/'))
        };
        format!("git:{}#{}{under}", self.branch.shown, self.branch.branch)
    }
}

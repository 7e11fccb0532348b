//! Moving commits between the local clone and the remote: fetch, and push
//! with compare-and-swap.
//!
//! - **Path and `file://` remotes** are read and written in-process: the
//!   missing objects are copied between the two object databases (each
//!   object after the ones it names, so an interrupted copy leaves nothing
//!   dangling), and the branch is moved with
//!   `git_reference_create_matching`, which takes git's lock file and
//!   compares the branch's old value under it. That is a compare-and-swap
//!   `git push` also respects; libgit2's own local transport moves the ref
//!   without one, so it is not used. The remote's hooks do not run.
//! - **Other URLs** (ssh, https, git) go through libgit2, with the ssh and
//!   https subtransports of [`network`](super::network). A push is a
//!   compare-and-swap twice over: on the connection that pushes, the
//!   branch the remote lists must still be at the commit the batch was
//!   built on (else nothing is sent), and the server moves the branch only
//!   from that commit. Errors name the remote without its credentials.

use std::path::{Path, PathBuf};

use git2::{Direction, ErrorCode, Oid, Repository};

use super::network::{self, fail};
use super::objects::Memory;
use crate::{Error, Result};

/// Where the remote is and how to reach it.
#[derive(Debug)]
pub(super) enum Transport {
    /// A repository on this machine.
    Local(LocalRemote),
    /// A URL for libgit2's transports.
    Network(String),
}

/// A repository on this machine, opened once: its object database then
/// learns of the packs other agents add as it needs them, instead of
/// reading a pack directory that grows by one per push at every open.
pub(super) struct LocalRemote {
    path: PathBuf,
    open: std::sync::Mutex<Option<Repository>>,
}

impl std::fmt::Debug for LocalRemote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("LocalRemote").field(&self.path).finish()
    }
}

impl LocalRemote {
    fn new(path: PathBuf) -> LocalRemote {
        LocalRemote {
            path,
            open: std::sync::Mutex::new(None),
        }
    }

    /// `f` of the remote repository, opened on first use.
    fn with<T>(&self, f: impl FnOnce(&Repository) -> Result<T>) -> Result<T> {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let repo = match open.take() {
            Some(repo) => repo,
            None => open_remote(&self.path)?,
        };
        let result = f(&repo);
        *open = Some(repo);
        result
    }
}

/// How a push ended.
#[derive(Debug)]
pub(super) enum Pushed {
    /// The branch now points at the pushed commit.
    Accepted,
    /// The remote refused: it moved, a lock was held, a hook declined.
    Rejected(String),
}

impl Transport {
    /// The transport for `url`: a path (absolute, or already resolved by
    /// the caller) or `file://` URL is local; anything else is a network URL.
    pub fn for_url(url: &str) -> Transport {
        if let Some(path) = url.strip_prefix("file://") {
            return Transport::Local(LocalRemote::new(PathBuf::from(path)));
        }
        if crate::repo::is_network_url(url) {
            Transport::Network(url.to_string())
        } else {
            Transport::Local(LocalRemote::new(PathBuf::from(url)))
        }
    }

    /// The branch the remote's `HEAD` names, for `store.git(url)` without
    /// a branch.
    pub fn default_branch(&self, local: &Repository) -> Result<String> {
        let full = match self {
            Transport::Local(local_remote) => local_remote.with(|remote| {
                let path = &local_remote.path;
                let head = remote
                    .find_reference("HEAD")
                    .map_err(|e| Error::git(&format!("read HEAD of {}", path.display()), e))?;
                head.symbolic_target()
                    .ok()
                    .flatten()
                    .map(str::to_string)
                    .ok_or_else(|| {
                        Error::store(format!(
                            "HEAD of {} names no branch: give store.git(...) a branch",
                            path.display()
                        ))
                    })
            })?,
            Transport::Network(url) => {
                let mut remote = local
                    .remote_anonymous(url)
                    .or_else(|e| fail("open remote", url, e))?;
                let conn = remote
                    .connect_auth(Direction::Fetch, Some(callbacks()), None)
                    .or_else(|e| fail("connect to", url, e))?;
                let buf = conn
                    .default_branch()
                    .or_else(|e| fail("read the default branch of", url, e))?;
                buf.as_str().unwrap_or_default().to_string()
            }
        };
        Ok(full
            .strip_prefix("refs/heads/")
            .unwrap_or(&full)
            .to_string())
    }

    /// The objects directory of a remote on this machine, as a clone lists
    /// it in `objects/info/alternates` (see [`clones::attach`](super::clones::attach));
    /// `None` for a network remote.
    pub fn shared_objects(&self) -> Result<Option<String>> {
        let Transport::Local(local_remote) = self else {
            return Ok(None);
        };
        let objects = local_remote.with(|remote| Ok(remote.path().join("objects")))?;
        let objects = std::fs::canonicalize(&objects).unwrap_or(objects);
        Ok(Some(objects.to_string_lossy().into_owned()))
    }

    /// For a remote on this machine, a lock the agents pushing to it take
    /// in turn (an advisory lock on `ocuroot-push.lock` in its git
    /// directory); `None` for a network remote, where the server's
    /// compare-and-swap alone orders pushes.
    pub fn lock(&self) -> Result<Option<PushLock>> {
        match self {
            Transport::Local(local) => PushLock::take(&local.path).map(Some),
            Transport::Network(_) => Ok(None),
        }
    }

    /// Keep the pack directory of a remote on this machine small (see
    /// [`clones::merge_remote_packs`](super::clones::merge_remote_packs)).
    pub fn tidy(&self) {
        if let Transport::Local(local) = self
            && let Ok(git_dir) = local.with(|remote| Ok(remote.path().to_path_buf()))
        {
            super::clones::merge_remote_packs(&git_dir);
        }
    }

    /// The commit of the remote's `branch` (a remote on this machine only;
    /// `None` for a network remote or a branch that does not exist).
    pub fn tip(&self, branch: &str) -> Result<Option<Oid>> {
        let Transport::Local(local) = self else {
            return Ok(None);
        };
        let refname = format!("refs/heads/{branch}");
        local.with(|remote| match remote.refname_to_id(&refname) {
            Ok(oid) => Ok(Some(oid)),
            Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
            Err(e) => Err(Error::git(
                &format!("read {refname} of {}", local.path.display()),
                e,
            )),
        })
    }

    /// Bring the remote's `branch` into `local`'s object database; its
    /// commit, or `None` when the remote has no such branch.
    pub fn fetch(&self, local: &Repository, branch: &str) -> Result<Option<Oid>> {
        let refname = format!("refs/heads/{branch}");
        match self {
            // The clone reads the remote's objects in place (see
            // `clones::attach`): there is nothing to copy, only the branch to read.
            Transport::Local(_) => self.tip(branch),
            Transport::Network(url) => {
                let mut remote = local
                    .remote_anonymous(url)
                    .or_else(|e| fail("open remote", url, e))?;
                let mut conn = remote
                    .connect_auth(Direction::Fetch, Some(callbacks()), None)
                    .or_else(|e| fail("connect to", url, e))?;
                let tip = conn
                    .list()
                    .or_else(|e| fail("list the branches of", url, e))?
                    .iter()
                    .find(|head| head.name() == refname)
                    .map(|head| head.oid());
                let missing = match tip {
                    Some(oid) => !local
                        .odb()
                        .map_err(|e| Error::git("open the object database", e))?
                        .exists(oid),
                    None => false,
                };
                if missing {
                    let mut options = git2::FetchOptions::new();
                    options.remote_callbacks(callbacks());
                    options.download_tags(git2::AutotagOption::None);
                    conn.remote()
                        .download(&[refname.as_str()], Some(&mut options))
                        .or_else(|e| fail(&format!("fetch {refname} from"), url, e))?;
                    // The objects must be readable now, through the
                    // clone's (possibly new) pack directory.
                    let odb = local
                        .odb()
                        .map_err(|e| Error::git("open the object database", e))?;
                    if let Some(oid) = tip
                        && !odb.exists(oid)
                    {
                        odb.refresh()
                            .map_err(|e| Error::git("rescan the object database", e))?;
                        if !odb.exists(oid) {
                            return Err(Error::store(format!(
                                "fetch {refname} from {}: commit {oid} was not received",
                                crate::repo::redact_url(url)
                            )));
                        }
                    }
                }
                Ok(tip)
            }
        }
    }

    /// Move the remote's `branch` from `old` (`None`: it must not exist) to
    /// `new`, a descendant of `old` whose objects are in `local`.
    /// `memory` lists every object of those commits the remote may lack:
    /// a remote on this machine is sent those as one pack (no walk of the
    /// history, whose cost grows with the store).
    pub fn push(
        &self,
        local: &Repository,
        memory: &Memory,
        branch: &str,
        new: Oid,
        old: Option<Oid>,
    ) -> Result<Pushed> {
        let refname = format!("refs/heads/{branch}");
        match self {
            Transport::Local(local_remote) => local_remote.with(|remote| {
                let path = &local_remote.path;
                if !remote.is_bare()
                    && remote
                        .head()
                        .ok()
                        .and_then(|h| h.name().ok().map(str::to_string))
                        == Some(refname.clone())
                {
                    return Err(Error::store(format!(
                        "{} has {branch} checked out: a store's remote must be a bare \
                         repository, or have another branch checked out",
                        path.display()
                    )));
                }
                if let Some(pack) = memory.pack(local)? {
                    write_pack(remote, &pack)?;
                }
                let message = "ocuroot: push";
                let update = || match old {
                    Some(old) => remote.reference_matching(&refname, new, true, old, message),
                    None => remote.reference(&refname, new, false, message),
                };
                let mut moved = update();
                if moved.as_ref().is_err_and(|e| e.code() == ErrorCode::Locked)
                    && remove_stale_ref_lock(remote, &refname)
                {
                    moved = update();
                }
                match moved {
                    Ok(_) => Ok(Pushed::Accepted),
                    Err(e)
                        if matches!(
                            e.code(),
                            ErrorCode::Modified
                                | ErrorCode::Exists
                                | ErrorCode::Locked
                                | ErrorCode::NotFound
                        ) =>
                    {
                        Ok(Pushed::Rejected(e.message().to_string()))
                    }
                    Err(e) => Err(Error::git(
                        &format!("update {refname} of {}", path.display()),
                        e,
                    )),
                }
            }),
            Transport::Network(url) => push_network(local, url, &refname, new, old),
        }
    }
}

/// A ref's lock file older than this was left by a process that died
/// while it updated the ref (git holds one for milliseconds).
const STALE_REF_LOCK: std::time::Duration = std::time::Duration::from_secs(10);

/// Remove `refname`'s lock file in `remote` if it is stale (see
/// [`STALE_REF_LOCK`]); whether it did. Called under the push lock, so no
/// agent of ours is updating the ref.
fn remove_stale_ref_lock(remote: &Repository, refname: &str) -> bool {
    let lock = remote.path().join(format!("{refname}.lock"));
    let stale = std::fs::metadata(&lock)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t.elapsed().unwrap_or_default() > STALE_REF_LOCK);
    if !stale {
        return false;
    }
    tracing::warn!(lock = %lock.display(), "removing a lock file a process that died left on the branch");
    std::fs::remove_file(&lock).is_ok()
}

/// Push over libgit2's transports, through a private ref naming `new`:
/// sent only if, on this connection, the remote lists `refname` at `old`.
fn push_network(
    local: &Repository,
    url: &str,
    refname: &str,
    new: Oid,
    old: Option<Oid>,
) -> Result<Pushed> {
    let source = format!(
        "refs/ocuroot/push/{}-{}",
        std::process::id(),
        new.to_string().get(..12).unwrap_or_default()
    );
    local
        .reference(&source, new, true, "ocuroot: push")
        .map_err(|e| Error::git("name the commit to push", e))?;
    let mut rejected: Option<String> = None;
    let mut moved: Option<String> = None;
    let mut said = String::new();
    let result = {
        let mut remote = local
            .remote_anonymous(url)
            .or_else(|e| fail("open remote", url, e))?;
        let mut cbs = callbacks();
        let expected = old.unwrap_or(Oid::ZERO_SHA1);
        cbs.push_negotiation(|updates| {
            for update in updates {
                if update.dst_refname().ok() == Some(refname) && update.src() != expected {
                    let now = update.src();
                    moved = Some(if now.is_zero() {
                        format!("{refname} does not exist on the remote any more")
                    } else {
                        format!("{refname} is at {now} on the remote, not at {expected}")
                    });
                    return Err(git2::Error::from_str("the remote branch moved"));
                }
            }
            Ok(())
        });
        cbs.sideband_progress(|text| {
            said.push_str(&String::from_utf8_lossy(text));
            true
        });
        cbs.push_update_reference(|_, status| {
            if let Some(status) = status {
                rejected = Some(status.to_string());
            }
            Ok(())
        });
        let mut options = git2::PushOptions::new();
        options.remote_callbacks(cbs);
        remote.push(&[format!("{source}:{refname}")], Some(&mut options))
    };
    if let Ok(mut r) = local.find_reference(&source) {
        let _ = r.delete();
    }
    let said: Vec<&str> = said
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let with_remote = |reason: String| match said.as_slice() {
        [] => reason,
        lines => format!("{reason}; the remote said: {}", lines.join(" / ")),
    };
    if let Some(reason) = moved {
        return Ok(Pushed::Rejected(reason));
    }
    match result {
        Ok(()) => Ok(match rejected {
            Some(reason) => Pushed::Rejected(with_remote(reason)),
            None => Pushed::Accepted,
        }),
        Err(e)
            if e.code() == ErrorCode::NotFastForward
                || e.class() == git2::ErrorClass::Reference =>
        {
            Ok(Pushed::Rejected(with_remote(e.message().to_string())))
        }
        // The caller names the branch and the remote.
        Err(e) => Err(Error::store(network::clean_message(url, &e))),
    }
}

fn open_remote(path: &Path) -> Result<Repository> {
    Repository::open(path).map_err(|e| {
        Error::git(
            &format!("open the store's remote repository {}", path.display()),
            e,
        )
    })
}

/// Write the pack `pack` (its bytes) into `to`, indexed.
fn write_pack(to: &Repository, pack: &[u8]) -> Result<()> {
    use std::io::Write;
    let odb = to
        .odb()
        .map_err(|e| Error::git("open the remote's object database", e))?;
    let mut writer = odb
        .packwriter()
        .map_err(|e| Error::git("write a pack into the remote", e))?;
    writer
        .write_all(pack)
        .map_err(|e| Error::store(format!("write a pack into the remote: {e}")))?;
    writer
        .commit()
        .map_err(|e| Error::git("index the pack written into the remote", e))?;
    Ok(())
}

/// The callbacks of every network operation. Credentials and host keys are
/// the subtransports' work (see [`network`](super::network)); libgit2's own
/// `git://` transport needs neither.
fn callbacks<'a>() -> git2::RemoteCallbacks<'a> {
    git2::RemoteCallbacks::new()
}

/// An advisory lock on a remote on this machine, held while an agent
/// pushes to it (released when dropped). Agents that do not take it (a
/// person's `git push`) are still ordered by the branch's compare-and-swap.
pub(super) struct PushLock {
    #[cfg(unix)]
    _file: std::fs::File,
}

impl PushLock {
    fn take(remote: &Path) -> Result<PushLock> {
        let repo = open_remote(remote)?;
        let path = repo.path().join("ocuroot-push.lock");
        drop(repo);
        #[cfg(unix)]
        {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|e| Error::io("open the push lock", &path, e))?;
            rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
                .map_err(|e| Error::io("take the push lock", &path, e.into()))?;
            Ok(PushLock { _file: file })
        }
        #[cfg(not(unix))]
        {
            let _ = path;
            Ok(PushLock {})
        }
    }
}

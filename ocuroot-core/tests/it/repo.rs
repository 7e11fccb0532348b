//! Tests for repository discovery, repo names and temporary worktrees.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ocuroot_core::ErrorKind;
use ocuroot_core::repo::{
    NameSource, RepoInfo, add_worktree, clone_at, clone_with, commits_between,
    git_url_to_valid_path,
};

/// An `env` closure backed by a map.
fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |key| map.get(key).cloned()
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap()
}

fn write(root: &Path, rel: &str, content: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// Stage `files` (relative paths, already written) and commit them on HEAD.
fn commit(repo: &git2::Repository, files: &[&str], message: &str) -> git2::Oid {
    let mut index = repo.index().unwrap();
    for f in files {
        index.add_path(Path::new(f)).unwrap();
    }
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::now("Test", "test@example.com").unwrap();
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
        .unwrap()
}

/// A git repo in a fresh temp dir with one commit of `file.txt`.
fn repo_with_commit() -> (tempfile::TempDir, git2::Repository, git2::Oid) {
    let dir = tempfile::tempdir().unwrap();
    let repo = git2::Repository::init(dir.path()).unwrap();
    write(dir.path(), "file.txt", "one\n");
    let oid = commit(&repo, &["file.txt"], "first");
    (dir, repo, oid)
}

#[test]
fn nested_repo_config_below_git_root_wins() {
    let (dir, repo, oid) = repo_with_commit();
    write(dir.path(), "sub/repo.ocu.star", "repo_alias(\"x\")\n");
    write(dir.path(), "sub/deeper/pkg.ocu.star", "");
    commit(&repo, &["sub/repo.ocu.star"], "config");
    let _ = oid;

    let info = RepoInfo::discover(&dir.path().join("sub/deeper"), &no_env).unwrap();
    let sub = canonical(&dir.path().join("sub"));
    assert_eq!(info.root, sub);
    assert_eq!(info.config_file, Some(sub.join("repo.ocu.star")));
    assert_eq!(info.git_root, Some(canonical(dir.path())));
    assert_eq!(
        info.relative_path(&dir.path().join("sub/deeper/pkg.ocu.star"))
            .unwrap(),
        "deeper/pkg.ocu.star"
    );
}

#[test]
fn without_repo_config_the_git_root_is_the_root() {
    let (dir, _repo, _) = repo_with_commit();
    write(dir.path(), "a/b/pkg.ocu.star", "");
    let info = RepoInfo::discover(&dir.path().join("a/b"), &no_env).unwrap();
    assert_eq!(info.root, canonical(dir.path()));
    assert_eq!(info.git_root, Some(canonical(dir.path())));
    assert_eq!(info.config_file, None);
}

#[test]
fn repo_config_without_git() {
    let dir = tempfile::tempdir().unwrap();
    if git2::Repository::discover(dir.path()).is_ok() {
        return; // the temp dir is inside some git repo: not testable here
    }
    write(dir.path(), "repo.ocu.star", "");
    std::fs::create_dir_all(dir.path().join("x")).unwrap();
    let info = RepoInfo::discover(&dir.path().join("x"), &no_env).unwrap();
    assert_eq!(info.root, canonical(dir.path()));
    assert_eq!(info.git_root, None);
    assert_eq!(info.commit, "null");
    assert_eq!(info.origin_url, None);
    assert!(info.remotes.is_empty());
}

#[test]
fn neither_repo_config_nor_git_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    if git2::Repository::discover(dir.path()).is_ok()
        || dir
            .path()
            .ancestors()
            .any(|d| d.join("repo.ocu.star").is_file())
    {
        return;
    }
    let err = RepoInfo::discover(dir.path(), &no_env).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(
        err.message().contains("not in an Ocuroot repository"),
        "{err}"
    );
}

#[test]
fn missing_start_dir_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = RepoInfo::discover(&dir.path().join("nope"), &no_env).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[test]
fn commit_is_head_sha() {
    let (dir, repo, first) = repo_with_commit();
    let info = RepoInfo::discover(dir.path(), &no_env).unwrap();
    assert_eq!(info.commit, first.to_string());
    assert_eq!(info.commit.len(), 40);

    write(dir.path(), "file.txt", "two\n");
    let second = commit(&repo, &["file.txt"], "second");
    let info = RepoInfo::discover(dir.path(), &no_env).unwrap();
    assert_eq!(info.commit, second.to_string());
}

#[test]
fn commit_override_from_env() {
    let (dir, _repo, _) = repo_with_commit();
    let env = env_of(&[("OCU_REPO_COMMIT_OVERRIDE", "commitid")]);
    let info = RepoInfo::discover(dir.path(), &env).unwrap();
    assert_eq!(info.commit, "commitid");

    // An empty override is ignored.
    let env = env_of(&[("OCU_REPO_COMMIT_OVERRIDE", "")]);
    let info = RepoInfo::discover(dir.path(), &env).unwrap();
    assert_eq!(info.commit.len(), 40);
}

#[test]
fn no_commits_gives_null() {
    let dir = tempfile::tempdir().unwrap();
    git2::Repository::init(dir.path()).unwrap();
    let info = RepoInfo::discover(dir.path(), &no_env).unwrap();
    assert_eq!(info.commit, "null");
    assert_eq!(info.root, canonical(dir.path()));
}

#[test]
fn bare_repository_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    git2::Repository::init_bare(dir.path()).unwrap();
    let err = RepoInfo::discover(dir.path(), &no_env).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.message().contains("bare"), "{err}");
}

#[test]
fn origin_url_gives_the_name() {
    let (dir, repo, _) = repo_with_commit();
    repo.remote("upstream", "https://example.com/up/stream.git")
        .unwrap();
    repo.remote("origin", "git@github.com:org/repo.git")
        .unwrap();
    repo.remote("backup", "/srv/git/backup.git").unwrap();

    let info = RepoInfo::discover(dir.path(), &no_env).unwrap();
    assert_eq!(
        info.origin_url.as_deref(),
        Some("git@github.com:org/repo.git")
    );
    assert_eq!(
        info.remotes,
        vec![
            "git@github.com:org/repo.git",
            "/srv/git/backup.git",
            "https://example.com/up/stream.git",
        ]
    );
    assert_eq!(
        info.default_name(&no_env).unwrap(),
        ("github.com/org/repo".to_string(), NameSource::Origin)
    );
}

#[test]
fn url_override_gives_the_name() {
    let (dir, repo, _) = repo_with_commit();
    repo.remote("origin", "git@github.com:org/repo.git")
        .unwrap();
    let info = RepoInfo::discover(dir.path(), &no_env).unwrap();
    let env = env_of(&[("OCU_REPO_URL_OVERRIDE", "example.com/override")]);
    assert_eq!(
        info.default_name(&env).unwrap(),
        ("example.com/override".to_string(), NameSource::UrlOverride)
    );
}

#[test]
fn without_origin_the_name_is_the_root_directory_name() {
    let (dir, repo, _) = repo_with_commit();
    repo.remote("upstream", "https://example.com/up/stream.git")
        .unwrap();
    let info = RepoInfo::discover(dir.path(), &no_env).unwrap();
    assert_eq!(info.origin_url, None);
    assert_eq!(info.remotes, vec!["https://example.com/up/stream.git"]);
    let expected = info.root.file_name().unwrap().to_str().unwrap().to_string();
    assert_eq!(
        info.default_name(&no_env).unwrap(),
        (expected, NameSource::Directory)
    );
    // The URL override still comes first.
    let env = env_of(&[("OCU_REPO_URL_OVERRIDE", "example.com/override")]);
    assert_eq!(info.default_name(&env).unwrap().1, NameSource::UrlOverride);
}

#[test]
fn git_url_to_valid_path_table() {
    let cases = [
        ("git@github.com:org/repo.git", "github.com/org/repo"),
        ("git@github.com:org/repo", "github.com/org/repo"),
        ("github.com:org/repo.git", "github.com/org/repo"),
        ("https://github.com/org/repo.git", "github.com/org/repo"),
        ("https://github.com/org/repo", "github.com/org/repo"),
        ("https://github.com/org/repo.git/", "github.com/org/repo"),
        (
            "https://user:pw@github.com/org/repo.git",
            "github.com/org/repo",
        ),
        ("https://github.com:443/org/repo", "github.com/org/repo"),
        (
            "https://github.com/org/repo.git?x=1#frag",
            "github.com/org/repo",
        ),
        (
            "http://gitlab.example.com/a/b/c.git",
            "gitlab.example.com/a/b/c",
        ),
        ("ssh://git@host:22/org/repo", "host/org/repo"),
        ("ssh://git@host/org/repo.git", "host/org/repo"),
        ("ssh://[::1]:22/org/repo", "::1/org/repo"),
        ("git://host.xz/path/to/repo.git/", "host.xz/path/to/repo"),
        ("file:///tmp/x/remote.git", "tmp/x/remote"),
        ("/tmp/x/remote.git", "tmp/x/remote"),
        ("/tmp/x/remote.git/", "tmp/x/remote"),
        ("/tmp//x/./remote", "tmp/x/remote"),
        ("/tmp/../x/remote.git", "tmp/x/remote"),
        ("./relative/repo.git", "relative/repo"),
        ("C:\\repos\\thing.git", "C:/repos/thing"),
        ("  https://github.com/org/repo.git\n", "github.com/org/repo"),
        ("/tmp/x/.git", "tmp/x"),
        ("", ""),
    ];
    for (url, want) in cases {
        assert_eq!(git_url_to_valid_path(url), want, "url {url:?}");
    }
}

#[test]
fn git_url_to_valid_path_never_yields_bad_segments() {
    let urls = [
        "ssh://git@host:22/../../etc/passwd",
        "file://../x/y.git",
        "git@host:../../x.git",
        "https://h/a//b/./c/..",
        "/a\\..\\b\u{0}c",
    ];
    for url in urls {
        let path = git_url_to_valid_path(url);
        assert!(!path.starts_with('/'), "{url:?} -> {path:?}");
        assert!(!path.ends_with('/'), "{url:?} -> {path:?}");
        assert!(!path.contains('\\'), "{url:?} -> {path:?}");
        assert!(!path.chars().any(char::is_control), "{url:?} -> {path:?}");
        for seg in path.split('/') {
            assert!(
                !seg.is_empty() && seg != "." && seg != "..",
                "{url:?} -> {path:?}"
            );
        }
    }
}

#[test]
fn relative_path_cases() {
    let (dir, _repo, _) = repo_with_commit();
    write(dir.path(), "pkg/a/b.ocu.star", "");
    let info = RepoInfo::discover(dir.path(), &no_env).unwrap();
    let root = info.root.clone();

    assert_eq!(
        info.relative_path(&root.join("pkg/a/b.ocu.star")).unwrap(),
        "pkg/a/b.ocu.star"
    );
    // Non-canonical spellings of the same path, and the original temp path.
    assert_eq!(
        info.relative_path(&dir.path().join("pkg/./x/../a/b.ocu.star"))
            .unwrap(),
        "pkg/a/b.ocu.star"
    );
    // Relative paths are relative to the root.
    assert_eq!(
        info.relative_path(Path::new("pkg/a/b.ocu.star")).unwrap(),
        "pkg/a/b.ocu.star"
    );
    // The file need not exist.
    assert_eq!(
        info.relative_path(&root.join("new/file.ocu.star")).unwrap(),
        "new/file.ocu.star"
    );
    assert_eq!(info.relative_path(&root).unwrap(), "");

    let err = info
        .relative_path(&root.join("../elsewhere.ocu.star"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.message().contains("outside"), "{err}");
    let err = info.relative_path(Path::new("../x")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[cfg(unix)]
#[test]
fn relative_path_follows_symlinks_out_of_the_root() {
    let (dir, _repo, _) = repo_with_commit();
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "secret.ocu.star", "");
    std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
    let info = RepoInfo::discover(dir.path(), &no_env).unwrap();
    let err = info
        .relative_path(&dir.path().join("link/secret.ocu.star"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[test]
fn discovery_inside_a_git_worktree() {
    let (dir, _repo, first) = repo_with_commit();
    let under = tempfile::tempdir().unwrap();
    let wt = add_worktree(dir.path(), &first.to_string(), under.path()).unwrap();
    let info = RepoInfo::discover(wt.path(), &no_env).unwrap();
    assert_eq!(info.root, wt.path());
    assert_eq!(info.git_root.as_deref(), Some(wt.path()));
    assert_eq!(info.commit, first.to_string());
}

#[test]
fn worktree_of_an_older_commit() {
    let (dir, repo, first) = repo_with_commit();
    write(dir.path(), "file.txt", "two\n");
    write(dir.path(), "new.txt", "new\n");
    let second = commit(&repo, &["file.txt", "new.txt"], "second");
    let branches_before = repo.branches(None).unwrap().count();

    let under = tempfile::tempdir().unwrap();
    let wt = add_worktree(dir.path(), &first.to_string(), under.path()).unwrap();
    let path = wt.path().to_path_buf();
    assert!(path.starts_with(canonical(under.path())), "{path:?}");
    assert_eq!(wt.commit(), first.to_string());
    assert_eq!(
        std::fs::read_to_string(path.join("file.txt")).unwrap(),
        "one\n"
    );
    assert!(!path.join("new.txt").exists());

    // Detached at the requested commit, no leftover branch.
    let wt_repo = git2::Repository::open(&path).unwrap();
    assert!(wt_repo.head_detached().unwrap());
    assert_eq!(wt_repo.head().unwrap().target(), Some(first));
    assert_eq!(repo.branches(None).unwrap().count(), branches_before);
    drop(wt_repo);

    // The main checkout is untouched.
    assert_eq!(repo.head().unwrap().target(), Some(second));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("file.txt")).unwrap(),
        "two\n"
    );

    let names: Vec<String> = repo
        .worktrees()
        .unwrap()
        .iter()
        .map(|n| n.unwrap().unwrap().to_string())
        .collect();
    assert_eq!(names, vec![wt.name().to_string()]);

    drop(wt);
    assert!(!path.exists());
    assert_eq!(repo.worktrees().unwrap().len(), 0);
    // Only `under` itself is left.
    assert_eq!(std::fs::read_dir(under.path()).unwrap().count(), 0);
}

#[test]
fn two_worktrees_of_the_same_commit() {
    let (dir, _repo, first) = repo_with_commit();
    let under = tempfile::tempdir().unwrap();
    let a = add_worktree(dir.path(), &first.to_string(), under.path()).unwrap();
    let b = add_worktree(dir.path(), &first.to_string(), under.path()).unwrap();
    assert_ne!(a.path(), b.path());
    assert!(a.path().join("file.txt").is_file());
    assert!(b.path().join("file.txt").is_file());
}

#[test]
fn worktree_of_an_unknown_commit_is_an_error() {
    let (dir, repo, _) = repo_with_commit();
    let under = tempfile::tempdir().unwrap();
    let err = add_worktree(
        dir.path(),
        "0123456789012345678901234567890123456789",
        under.path(),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Git);
    assert_eq!(repo.worktrees().unwrap().len(), 0);
    assert_eq!(std::fs::read_dir(under.path()).unwrap().count(), 0);
}

/// A bare copy of the repository at `dir`, as a remote would hold it.
fn bare_copy(dir: &Path, under: &Path) -> String {
    let bare = under.join("remote.git");
    git2::build::RepoBuilder::new()
        .bare(true)
        .clone(dir.to_str().unwrap(), &bare)
        .unwrap();
    bare.display().to_string()
}

#[test]
fn clone_of_an_older_commit_trying_remotes_in_order() {
    let (dir, repo, first) = repo_with_commit();
    write(dir.path(), "file.txt", "two\n");
    commit(&repo, &["file.txt"], "second");
    let remotes = tempfile::tempdir().unwrap();
    let bare = bare_copy(dir.path(), remotes.path());
    let under = tempfile::tempdir().unwrap();
    let missing = remotes.path().join("missing.git").display().to_string();

    let clone = clone_at(&[missing, bare.clone()], &first.to_string(), under.path()).unwrap();
    assert_eq!(clone.url(), bare);
    assert_eq!(
        std::fs::read_to_string(clone.path().join("file.txt")).unwrap(),
        "one\n"
    );
    let cloned = git2::Repository::open(clone.path()).unwrap();
    assert!(cloned.head_detached().unwrap());
    assert_eq!(cloned.head().unwrap().target(), Some(first));
    drop(cloned);
    let path = clone.path().to_path_buf();
    drop(clone);
    assert!(!path.exists(), "the clone is removed when dropped");
    assert_eq!(std::fs::read_dir(under.path()).unwrap().count(), 0);
}

#[test]
fn clone_failures_name_every_remote() {
    let (_dir, _repo, first) = repo_with_commit();
    let under = tempfile::tempdir().unwrap();
    let err = clone_at(
        &["/nowhere/a.git".into(), "/nowhere/b.git".into()],
        &first.to_string(),
        under.path(),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Git);
    assert!(err.message().contains("all remotes exhausted"), "{err}");
    assert!(err.message().contains("/nowhere/a.git"), "{err}");
    assert!(err.message().contains("/nowhere/b.git"), "{err}");
    let err = clone_at(&[], &first.to_string(), under.path()).unwrap_err();
    assert!(err.message().contains("no remotes"), "{err}");
    // A commit the remote does not have.
    let (dir, _repo, _) = repo_with_commit();
    let remotes = tempfile::tempdir().unwrap();
    let bare = bare_copy(dir.path(), remotes.path());
    let err = clone_at(&[bare], &"0".repeat(40), under.path()).unwrap_err();
    assert!(err.message().contains("not found"), "{err}");
    assert_eq!(std::fs::read_dir(under.path()).unwrap().count(), 0);
}

#[test]
fn network_remotes_are_cloned_by_the_fallback() {
    let (dir, _repo, first) = repo_with_commit();
    let remotes = tempfile::tempdir().unwrap();
    let bare = bare_copy(dir.path(), remotes.path());
    let under = tempfile::tempdir().unwrap();
    let asked = std::sync::Mutex::new(Vec::new());
    let fallback = |url: &str, dest: &Path| -> ocuroot_core::Result<()> {
        asked.lock().unwrap().push(url.to_string());
        git2::Repository::clone(&bare, dest).unwrap();
        Ok(())
    };
    let url = "https://git.example.invalid/org/repo.git".to_string();
    let clone = clone_with(
        std::slice::from_ref(&url),
        &first.to_string(),
        under.path(),
        Some(&fallback),
    )
    .unwrap();
    assert_eq!(clone.url(), url);
    assert!(clone.path().join("file.txt").is_file());
    assert_eq!(*asked.lock().unwrap(), [url]);
}

/// A commit of `file.txt` = `content` on `parents` (none: on HEAD's),
/// updating `reference` if given.
fn commit_on(
    repo: &git2::Repository,
    reference: Option<&str>,
    parents: &[git2::Oid],
    content: &str,
) -> git2::Oid {
    write(repo.workdir().unwrap(), "file.txt", content);
    let mut index = repo.index().unwrap();
    index.add_path(Path::new("file.txt")).unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::now("Test", "test@example.com").unwrap();
    let parents: Vec<git2::Commit<'_>> = parents
        .iter()
        .map(|p| repo.find_commit(*p).unwrap())
        .collect();
    let parents: Vec<&git2::Commit<'_>> = parents.iter().collect();
    repo.commit(reference, &sig, &sig, content, &tree, &parents)
        .unwrap()
}

#[test]
fn commits_between_two_commits_newest_first_either_way_round() {
    let (dir, repo, c1) = repo_with_commit();
    let c2 = commit_on(&repo, Some("HEAD"), &[c1], "two\n");
    let c3 = commit_on(&repo, Some("HEAD"), &[c2], "three\n");
    let c4 = commit_on(&repo, Some("HEAD"), &[c3], "four\n");
    // A side branch off c2, not between c1 and c4.
    let side = commit_on(&repo, None, &[c2], "side\n");
    let ids = |oids: &[git2::Oid]| oids.iter().map(|o| o.to_string()).collect::<Vec<_>>();
    let root = dir.path();

    let between = commits_between(root, &c1.to_string(), &c4.to_string()).unwrap();
    assert_eq!(between, ids(&[c4, c3, c2, c1]));
    // Given the other way round: the same commits, newest first.
    let reversed = commits_between(root, &c4.to_string(), &c1.to_string()).unwrap();
    assert_eq!(reversed, ids(&[c4, c3, c2, c1]));
    // Revisions as git takes them: a short hash, HEAD~N.
    let short = &c2.to_string()[..10];
    assert_eq!(
        commits_between(root, short, "HEAD~1").unwrap(),
        ids(&[c3, c2])
    );
    assert_eq!(commits_between(root, "HEAD", "HEAD").unwrap(), ids(&[c4]));
    // Neither descends from the other: what the later one adds, and both ends.
    assert_eq!(
        commits_between(root, &c3.to_string(), &side.to_string()).unwrap(),
        ids(&[side, c3])
    );

    let missing = "0123456789abcdef0123456789abcdef01234567";
    let e = commits_between(root, missing, &c4.to_string()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.message().contains(missing), "{e}");
    assert!(e.message().contains("shallow"), "{e}");
}

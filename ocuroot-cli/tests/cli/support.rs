//! Shared helpers: temporary git repositories, fixtures, a hand-written fs
//! store, and the `ocuroot` command with a clean environment.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;
use serde_json::Value;
use tempfile::TempDir;

/// Environment variables that change what `ocuroot` does; removed from every
/// child so the developer's environment cannot leak into a test.
const LEAKY_ENV: &[&str] = &[
    "OCU_CFG_repo_alias",
    "OCU_REPO_URL_OVERRIDE",
    "OCU_REPO_COMMIT_OVERRIDE",
    "OCUROOT_LOG",
    "OCUROOT_DEBUG",
    "OCUROOT_LOG_KEEP",
    "OCUROOT_LOG_MAX_AGE",
    "OCUROOT_HOME",
    "OCUROOT_GIT_USER_NAME",
    "OCUROOT_GIT_USER_EMAIL",
    "OCUROOT_GIT_FETCH_INTERVAL",
    "OCUROOT_GIT_PUSH_ATTEMPTS",
    "OCUROOT_RUN_LEASE",
];

/// The directory of the fixture files of this test binary.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The quickstart example of the workspace.
pub fn quickstart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart")
}

/// The `ocuroot` binary built by cargo, run in `dir`, with the leaky
/// environment variables removed.
pub fn ocuroot_in(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("ocuroot").expect("the ocuroot binary is built");
    cmd.current_dir(dir);
    for var in LEAKY_ENV {
        cmd.env_remove(var);
    }
    cmd
}

/// Like [`ocuroot_in`], as a `std::process::Command`, for tests that spawn
/// several `ocuroot` processes and wait for them together.
pub fn std_ocuroot_in(dir: &Path) -> std::process::Command {
    clean_command(env!("CARGO_BIN_EXE_ocuroot"), dir)
}

/// `program` (such as a wrapper that runs `ocuroot` in another namespace)
/// run in `dir`, with the leaky environment variables removed.
pub fn clean_command(program: impl AsRef<std::ffi::OsStr>, dir: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(program);
    cmd.current_dir(dir);
    for var in LEAKY_ENV {
        cmd.env_remove(var);
    }
    cmd
}

/// The output of a finished command.
pub struct Output {
    /// Exit code (`-1` if killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Output {
    /// Panic with both streams unless the command exited with `code`.
    #[track_caller]
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "unexpected exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Panic unless the command succeeded.
    #[track_caller]
    pub fn success(self) -> Self {
        self.expect_code(0)
    }

    /// Panic unless the command failed with exit code 1.
    #[track_caller]
    pub fn failure(self) -> Self {
        self.expect_code(1)
    }
}

/// Run `cmd` to completion.
pub fn run(mut cmd: Command) -> Output {
    let out = cmd.output().expect("ocuroot runs");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

/// A git repository in a temporary directory.
pub struct Repo {
    dir: TempDir,
    root: PathBuf,
    git: git2::Repository,
}

impl Repo {
    /// An empty git repository (no commits).
    pub fn new() -> Repo {
        let dir = tempfile::Builder::new()
            .prefix("ocuroot-cli-test")
            .tempdir()
            .expect("temp dir");
        // Canonical, so paths printed by ocuroot can be redacted.
        let root = dir.path().canonicalize().expect("canonical temp dir");
        let git = git2::Repository::init(&root).expect("git init");
        Repo { dir, root, git }
    }

    /// A repository holding the quickstart example (its ocu.star files,
    /// scripts and `bin/docker`, not its `.ocuroot` state), committed.
    pub fn quickstart() -> Repo {
        let repo = Repo::new();
        let src = quickstart_dir();
        for entry in fs::read_dir(&src).expect("examples/quickstart exists") {
            let entry = entry.expect("dir entry");
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".ocu.star") || name.ends_with(".sh") {
                repo.copy_file(&entry.path(), &name);
            }
        }
        repo.copy_file(&src.join("bin/docker"), "bin/docker");
        assert!(
            repo.path().join("repo.ocu.star").is_file(),
            "the quickstart has a repo.ocu.star"
        );
        repo.commit("quickstart");
        repo
    }

    /// The (canonical) root of the work tree.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Write `contents` to `rel`, creating directories.
    pub fn write(&self, rel: &str, contents: &str) {
        let path = self.root.join(rel);
        fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        fs::write(&path, contents).expect("write file");
    }

    /// Copy `src` to `rel` (keeping its permissions), creating directories.
    pub fn copy_file(&self, src: &Path, rel: &str) {
        let path = self.root.join(rel);
        fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        fs::copy(src, &path).unwrap_or_else(|e| panic!("copy {}: {e}", src.display()));
    }

    /// Copy the directory `tests/fixtures/<name>` into the root, recursively.
    pub fn copy_fixture_dir(&self, name: &str) {
        self.copy_tree(&fixtures().join(name));
    }

    /// A repository holding `examples/<name>` (without its `run.sh` and
    /// state), with `.ocuroot/` ignored, committed.
    pub fn example(name: &str) -> Repo {
        let repo = Repo::new();
        repo.copy_tree(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../examples")
                .join(name),
        );
        let _ = fs::remove_file(repo.path().join("run.sh"));
        repo.write(".gitignore", ".ocuroot/\nout/\n");
        repo.commit(name);
        repo
    }

    /// The git repository.
    pub fn git(&self) -> &git2::Repository {
        &self.git
    }

    /// Copy the directory `src` into the root, recursively.
    pub fn copy_tree(&self, src: &Path) {
        fn walk(src: &Path, rel: &str, repo: &Repo) {
            for entry in fs::read_dir(src).expect("fixture dir") {
                let entry = entry.expect("dir entry");
                let name = entry.file_name().to_string_lossy().into_owned();
                let rel = if rel.is_empty() {
                    name.clone()
                } else {
                    format!("{rel}/{name}")
                };
                if entry.file_type().expect("file type").is_dir() {
                    // Never state left by running an example in place.
                    if name != ".ocuroot" {
                        walk(&entry.path(), &rel, repo);
                    }
                } else {
                    repo.copy_file(&entry.path(), &rel);
                }
            }
        }
        walk(src, "", self);
    }

    /// Stage every file and commit with a fixed signature.
    pub fn commit(&self, message: &str) -> git2::Oid {
        let mut index = self.git.index().expect("index");
        index
            .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
            .expect("git add");
        index.write().expect("write index");
        let tree = self
            .git
            .find_tree(index.write_tree().expect("write tree"))
            .expect("tree");
        let sig = git2::Signature::new("Test", "test@example.com", &git2::Time::new(0, 0))
            .expect("signature");
        let parent = self.git.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        self.git
            .commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
            .expect("git commit")
    }

    /// Add the remote `origin` with `url`.
    pub fn set_origin(&self, url: &str) {
        self.git.remote("origin", url).expect("git remote add");
    }

    /// `ocuroot <args>` run at the root.
    pub fn ocuroot(&self, args: &[&str]) -> Output {
        self.ocuroot_at("", args)
    }

    /// `ocuroot <args>` run in the subdirectory `sub` of the root.
    pub fn ocuroot_at(&self, sub: &str, args: &[&str]) -> Output {
        let mut cmd = ocuroot_in(&self.root.join(sub));
        cmd.args(args);
        let mut out = run(cmd);
        out.stdout = self.redact(&out.stdout);
        out.stderr = self.redact(&out.stderr);
        out
    }

    /// `text` with the temporary paths replaced by `[ROOT]`.
    pub fn redact(&self, text: &str) -> String {
        text.replace(&self.root.display().to_string(), "[ROOT]")
            .replace(&self.dir.path().display().to_string(), "[ROOT]")
    }

    /// Every file below the root except `.git`, relative, sorted.
    pub fn files(&self) -> Vec<String> {
        fn walk(dir: &Path, rel: &str, out: &mut Vec<String>) {
            for entry in fs::read_dir(dir).expect("read dir") {
                let entry = entry.expect("dir entry");
                let name = entry.file_name().to_string_lossy().into_owned();
                let rel = if rel.is_empty() {
                    name.clone()
                } else {
                    format!("{rel}/{name}")
                };
                if entry.file_type().expect("file type").is_dir() {
                    if name != ".git" {
                        out.push(format!("{rel}/"));
                        walk(&entry.path(), &rel, out);
                    }
                } else {
                    out.push(rel);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.root, "", &mut out);
        out.sort();
        out
    }

    /// Every file below `rel` with its contents, sorted by path.
    pub fn snapshot_dir(&self, rel: &str) -> Vec<(String, Vec<u8>)> {
        self.files()
            .into_iter()
            .filter(|f| f.starts_with(rel) && !f.ends_with('/'))
            .map(|f| {
                let bytes = fs::read(self.root.join(&f)).expect("read file");
                (f, bytes)
            })
            .collect()
    }
}

/// The state store of the fs layout at `<root>/.ocuroot/store/state`,
/// written by hand, as `FsStore` lays it out.
pub struct StateStore {
    dir: PathBuf,
}

impl StateStore {
    /// The state store of `repo` (at the default `.ocuroot/store`), with its
    /// `.ocuroot-store` marker written.
    pub fn create(repo: &Repo) -> StateStore {
        let dir = repo.path().join(".ocuroot/store/state");
        fs::create_dir_all(&dir).expect("mkdir store");
        fs::write(
            dir.join(".ocuroot-store"),
            r#"{"version": 3, "Tags": {"state": {}}}"#,
        )
        .expect("write marker");
        StateStore { dir }
    }

    fn put(&self, key: &str, envelope: Value) {
        let dir = self.dir.join("refs").join(key);
        fs::create_dir_all(&dir).expect("mkdir key");
        let bytes = serde_json::to_vec_pretty(&envelope).expect("encode");
        fs::write(dir.join("@object.json"), bytes).expect("write object");
    }

    /// Store the document `body` at `key`.
    pub fn doc(&self, key: &str, body: Value) -> &Self {
        self.put(key, serde_json::json!({"kind": "ref", "body": body}));
        self
    }

    /// Store a link at `key` to `target`.
    pub fn link(&self, key: &str, target: &str) -> &Self {
        self.put(key, serde_json::json!({"kind": "link", "body": target}));
        self
    }
}

/// True when `dir` is inside a git repository or below a `repo.ocu.star`, so
/// a test that needs to run outside of both cannot.
pub fn inside_some_repo(dir: &Path) -> bool {
    git2::Repository::discover(dir).is_ok()
        || dir.ancestors().any(|d| d.join("repo.ocu.star").is_file())
}

// ----- helpers of the release and intent tests ----------------------------------

/// Every command of the release and intent tests gets this long before it is killed, so an engine
/// that never returns fails the test instead of hanging it.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Prepended to every package file: the SDK version and `mark(line)`, which
/// appends `line` to `out/log.txt`.
pub const PRELUDE: &str = r#"ocuroot("0.3.0")

def mark(line):
    host.shell("mkdir -p out && echo '{}' >> out/log.txt".format(line))

"#;

/// `ocuroot <args>` at the root with extra environment variables and a
/// timeout; stdout and stderr redacted.
pub fn ocu_with(repo: &Repo, env: &[(&str, &str)], timeout: Duration, args: &[&str]) -> Output {
    ocu_in(repo, "", env, timeout, args)
}

/// `ocuroot <args>` in the subdirectory `sub` of the root.
pub fn ocu_at(repo: &Repo, sub: &str, args: &[&str]) -> Output {
    ocu_in(repo, sub, &[], TIMEOUT, args)
}

fn ocu_in(
    repo: &Repo,
    sub: &str,
    env: &[(&str, &str)],
    timeout: Duration,
    args: &[&str],
) -> Output {
    let mut cmd = ocuroot_in(&repo.path().join(sub));
    cmd.args(args).timeout(timeout);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut out = run(cmd);
    out.stdout = repo.redact(&out.stdout);
    out.stderr = repo.redact(&out.stderr);
    assert_ne!(
        out.code, -1,
        "ocuroot {args:?} did not finish within {timeout:?} (killed)\n--- stdout\n{}\n--- stderr\n{}",
        out.stdout, out.stderr
    );
    out
}

/// `ocuroot <args>` at the root.
pub fn ocu(repo: &Repo, args: &[&str]) -> Output {
    ocu_with(repo, &[], TIMEOUT, args)
}

/// `ocuroot <args>` at the root with extra environment variables.
pub fn ocu_env(repo: &Repo, env: &[(&str, &str)], args: &[&str]) -> Output {
    ocu_with(repo, env, TIMEOUT, args)
}

/// `state get <r>`: the document, or `None` when it is absent (exit 1).
#[track_caller]
pub fn get(repo: &Repo, r: &str) -> Option<Value> {
    let out = ocu(repo, &["state", "get", r]);
    match out.code {
        0 => Some(serde_json::from_str(&out.stdout).unwrap_or_else(|e| {
            panic!("state get {r} printed invalid JSON ({e}):\n{}", out.stdout)
        })),
        1 => None,
        c => panic!("state get {r} exited {c}\n{}", out.stderr),
    }
}

/// `state get <r>`, which must exist.
#[track_caller]
pub fn must_get(repo: &Repo, r: &str) -> Value {
    get(repo, r).unwrap_or_else(|| panic!("{r} is not in state"))
}

/// `state match <glob>`: the refs, sorted.
#[track_caller]
pub fn matches(repo: &Repo, glob: &str) -> Vec<String> {
    let out = ocu(repo, &["state", "match", glob]).success();
    out.stdout.lines().map(str::to_string).collect()
}

/// The status markers of a run (exactly one is expected).
#[track_caller]
pub fn statuses(repo: &Repo, run: &str) -> Vec<String> {
    let prefix = format!("{run}/status/");
    matches(repo, &format!("{run}/status/*"))
        .into_iter()
        .map(|r| r.strip_prefix(&prefix).unwrap_or(&r).to_string())
        .collect()
}

/// The lines of `out/<name>`, empty when the file does not exist.
pub fn out_lines(repo: &Repo, name: &str) -> Vec<String> {
    match fs::read_to_string(repo.path().join("out").join(name)) {
        Ok(text) => text.lines().map(str::to_string).collect(),
        Err(_) => Vec::new(),
    }
}

/// The lines `mark()` wrote.
pub fn log(repo: &Repo) -> Vec<String> {
    out_lines(repo, "log.txt")
}

//! Cascades through the C ABI, in a real git repository: a frontend
//! deployed at commit 1 reads the backend's output; releasing the backend
//! at commit 2 and cascading redeploys the frontend at commit 1 (in a git
//! worktree, so it sees commit 1's files). Also `ocuroot_plan`,
//! `ocuroot_work_cascade`, `ocuroot_work_trigger` and the max-attempts
//! option.

use std::ffi::c_char;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::ptr;

use ocuroot::*;

mod common;
use common::{c, take, take_error};
use serde_json::Value;

/// The repository: alias `c`, state in `.store`, and a trigger that prints
/// the commit it is called for.
const REPO: &str = r#"repo_alias("c")
store.set(store.fs(".store"))

def on_commit(commit):
    print("trigger " + commit)

trigger(on_commit)
"#;

const ENVIRONMENTS: &str = r#"ocuroot("0.3.0")

register_environment(environment("staging", {}))
"#;

/// Deployed to staging; outputs what `backend.txt` says at its commit.
const BACKEND: &str = r#"ocuroot("0.3.0")

def up(environment):
    value = host.shell("cat backend.txt").stdout.strip()
    return done(outputs={"value": value})

def down(environment):
    return done()

deploy(up=up, down=down, environment=environment("staging", {}))
"#;

/// Deployed to staging with the backend's output; appends the backend's
/// value and the `frontend.txt` of the checkout it runs in to `LOG`, and
/// fails when the backend's value is `bad`.
const FRONTEND: &str = r#"ocuroot("0.3.0")

def up(environment, backend):
    saw = host.read_file("frontend.txt").strip()
    host.shell("echo 'frontend {} {}' >> 'LOG'".format(backend, saw))
    if backend == "bad":
        fail("the backend is bad")
    return done(outputs={"backend": backend, "saw": saw})

def down(environment, backend):
    return done()

deploy(up=up, down=down, environment=environment("staging", {}),
       inputs={"backend": input(ref="./-/backend.ocu.star/@/deploy/staging#output/value")})
"#;

const FRONTEND_REF: &str = "c/-/frontend.ocu.star/@r1/deploy/staging";

/// The string a call wrote to its out-parameter, or a panic with its error.
fn call(
    what: &str,
    f: impl FnOnce(*mut *mut c_char, *mut *mut ocuroot_error) -> ocuroot_result,
) -> String {
    let mut out = ptr::null_mut();
    let mut err = ptr::null_mut();
    let code = f(&mut out, &mut err);
    if code != ocuroot_result::Ok {
        panic!("{what} failed: {:?}", take_error(err));
    }
    take(out)
}

fn json(
    what: &str,
    f: impl FnOnce(*mut *mut c_char, *mut *mut ocuroot_error) -> ocuroot_result,
) -> Value {
    serde_json::from_str(&call(what, f)).unwrap()
}

/// A git repository in a temp dir with the two packages, and the log the
/// frontend appends to (outside the repository, so every checkout writes
/// the same file).
struct Scenario {
    dir: tempfile::TempDir,
    commits: Vec<String>,
}

impl Scenario {
    fn new() -> Scenario {
        let dir = tempfile::tempdir().unwrap();
        let s = Scenario {
            dir,
            commits: Vec::new(),
        };
        std::fs::create_dir(s.repo()).unwrap();
        s.git(&["init", "--quiet"]);
        let log = s.log_path();
        let frontend = FRONTEND.replace("LOG", log.to_str().unwrap());
        s.write(&[
            ("repo.ocu.star", REPO),
            (".gitignore", ".store/\n"),
            ("environments.ocu.star", ENVIRONMENTS),
            ("backend.ocu.star", BACKEND),
            ("frontend.ocu.star", &frontend),
        ]);
        s
    }

    fn repo(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("frontend.log")
    }

    /// The lines the frontend's `up` appended.
    fn log(&self) -> Vec<String> {
        std::fs::read_to_string(self.log_path())
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .args([
                "-c",
                "user.name=ocuroot-tests",
                "-c",
                "user.email=tests@example.invalid",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .current_dir(self.repo())
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    fn write(&self, files: &[(&str, &str)]) {
        for (name, content) in files {
            std::fs::write(self.repo().join(name), content).unwrap();
        }
    }

    /// Commit `backend.txt` and `frontend.txt` (and whatever else is new).
    fn commit(&mut self, backend: &str, frontend: &str) -> String {
        self.write(&[
            ("backend.txt", &format!("{backend}\n")),
            ("frontend.txt", &format!("{frontend}\n")),
        ]);
        self.git(&["add", "."]);
        self.git(&["commit", "--quiet", "-m", backend]);
        let sha = self.git(&["rev-parse", "HEAD"]);
        self.commits.push(sha.clone());
        sha
    }
}

/// Open the workspace at the repository's HEAD; `max_attempts` if given.
fn open(dir: &Path, max_attempts: Option<u32>) -> *mut ocuroot_workspace {
    let opts = ocuroot_workspace_options_new();
    if let Some(n) = max_attempts {
        // SAFETY: valid options.
        let code = unsafe { ocuroot_workspace_options_set_max_attempts(opts, n, ptr::null_mut()) };
        assert_eq!(code, ocuroot_result::Ok);
    }
    let path = c(dir.to_str().unwrap());
    let mut ws = ptr::null_mut();
    let mut err = ptr::null_mut();
    // SAFETY: valid arguments; the options are freed once.
    let code = unsafe { ocuroot_workspace_open(path.as_ptr(), opts, &mut ws, &mut err) };
    // SAFETY: freed once; the workspace keeps what it needs.
    unsafe { ocuroot_workspace_options_free(opts) };
    if code != ocuroot_result::Ok {
        panic!("open failed: {:?}", take_error(err));
    }
    ws
}

fn release_new(ws: *mut ocuroot_workspace, file: &str) -> Value {
    let file = c(file);
    // SAFETY: valid arguments.
    json("release_new", |out, err| unsafe {
        ocuroot_release_new(ws, file.as_ptr(), false, out, err)
    })
}

fn plan(ws: *mut ocuroot_workspace, format: Option<&str>) -> String {
    let format = format.map(c);
    let format = format.as_ref().map_or(ptr::null(), |f| f.as_ptr());
    // SAFETY: valid arguments.
    call("plan", |out, err| unsafe {
        ocuroot_plan(ws, format, out, err)
    })
}

fn work_cascade(ws: *mut ocuroot_workspace, dryrun: bool) -> Value {
    // SAFETY: valid arguments.
    json("work_cascade", |out, err| unsafe {
        ocuroot_work_cascade(ws, dryrun, out, err)
    })
}

fn cascade(ws: *mut ocuroot_workspace) -> Value {
    // SAFETY: valid arguments.
    json("cascade", |out, err| unsafe {
        ocuroot_cascade(ws, out, err)
    })
}

fn work_trigger(ws: *mut ocuroot_workspace, dryrun: bool) -> Value {
    // SAFETY: valid arguments.
    json("work_trigger", |out, err| unsafe {
        ocuroot_work_trigger(ws, dryrun, out, err)
    })
}

fn state_get(ws: *mut ocuroot_workspace, r: &str) -> Value {
    let r = c(r);
    // SAFETY: valid arguments.
    json("state_get", |out, err| unsafe {
        ocuroot_state_get(ws, r.as_ptr(), out, err)
    })
}

/// Environments, backend and frontend released at commit 1 (`b1`, `f1`),
/// then commit 2 (`b2`, `f2`) checked out and its workspace opened.
fn released_at_commit_1(max_attempts: Option<u32>) -> (Scenario, *mut ocuroot_workspace) {
    let mut s = Scenario::new();
    s.commit("b1", "f1");
    let ws = open(&s.repo(), max_attempts);
    release_new(ws, "environments.ocu.star");
    for file in ["backend.ocu.star", "frontend.ocu.star"] {
        let report = release_new(ws, file);
        assert_eq!(report["status"], "complete", "{file}: {report}");
    }
    assert_eq!(s.log(), ["frontend b1 f1"]);
    // SAFETY: freed once.
    unsafe { ocuroot_workspace_free(ws) };
    s.commit("b2", "f2");
    let ws = open(&s.repo(), max_attempts);
    (s, ws)
}

#[test]
fn cascade_redeploys_the_frontend_at_its_own_commit() {
    let (s, ws) = released_at_commit_1(None);
    let report = release_new(ws, "backend.ocu.star");
    assert_eq!(report["status"], "complete", "{report}");
    assert_eq!(report["commit"], s.commits[1]);

    // What is outstanding: the frontend's redeploy, at commit 1.
    let planned = work_cascade(ws, true);
    let items = planned.as_array().expect("a dry run gives a JSON array");
    assert_eq!(items.len(), 1, "{planned:#}");
    assert_eq!(items[0]["ref"], FRONTEND_REF);
    assert_eq!(items[0]["work_type"], "run");
    assert_eq!(items[0]["commit"], s.commits[0]);
    let triggers = work_trigger(ws, true);
    assert_eq!(
        triggers,
        serde_json::json!([{"repo": "c", "commit": s.commits[0], "status": "planned"}])
    );
    // Dry runs change nothing; the trigger is called for commit 1 and
    // does nothing more either.
    assert_eq!(s.log(), ["frontend b1 f1"]);
    let called = work_trigger(ws, false);
    assert_eq!(
        called,
        serde_json::json!([{
            "repo": "c",
            "commit": s.commits[0],
            "status": "called",
            "log": [format!("trigger {}", s.commits[0])],
        }])
    );
    assert_eq!(s.log(), ["frontend b1 f1"]);

    let outcome = cascade(ws);
    assert!(outcome.is_object(), "{outcome:#}");
    assert!(outcome.get("stopped").is_none(), "{outcome:#}");
    let releases = outcome["releases"].as_array().unwrap();
    assert_eq!(releases.len(), 1, "{outcome:#}");
    assert_eq!(releases[0]["release"], "c/-/frontend.ocu.star/@r1");
    assert_eq!(releases[0]["commit"], s.commits[0]);
    assert_eq!(releases[0]["status"], "complete");
    // Redeployed with the new backend value, in a checkout of commit 1.
    assert_eq!(s.log(), ["frontend b1 f1", "frontend b2 f1"]);
    assert_eq!(
        state_get(ws, "c/-/frontend.ocu.star/@/deploy/staging#output"),
        serde_json::json!({"backend": "b2", "saw": "f1"})
    );
    // The worktree is gone and the checkout still at commit 2.
    assert_eq!(s.git(&["worktree", "list"]).lines().count(), 1);
    assert_eq!(s.git(&["rev-parse", "HEAD"]), s.commits[1]);

    // Nothing is left: another cascade does nothing, and neither would
    // `work cascade` or a trigger.
    let again = cascade(ws);
    assert_eq!(again["releases"], serde_json::json!([]), "{again:#}");
    assert_eq!(work_cascade(ws, true), serde_json::json!([]));
    assert_eq!(work_trigger(ws, true), serde_json::json!([]));
    assert_eq!(s.log().len(), 2);
    // SAFETY: freed once.
    unsafe { ocuroot_workspace_free(ws) };
}

#[test]
fn work_cascade_does_everything_outstanding() {
    let (s, ws) = released_at_commit_1(None);
    release_new(ws, "backend.ocu.star");
    // SAFETY: freed once.
    unsafe { ocuroot_workspace_free(ws) };

    // Another workspace (another agent) finds the work and does it.
    let ws = open(&s.repo(), None);
    let outcome = work_cascade(ws, false);
    assert!(outcome.is_object(), "{outcome:#}");
    assert!(outcome["rounds"].as_u64().unwrap() >= 1, "{outcome:#}");
    assert!(
        outcome["releases"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["release"] == "c/-/frontend.ocu.star/@r1" && r["status"] == "complete"),
        "{outcome:#}"
    );
    assert_eq!(s.log(), ["frontend b1 f1", "frontend b2 f1"]);
    assert_eq!(work_cascade(ws, true), serde_json::json!([]));
    // SAFETY: freed once.
    unsafe { ocuroot_workspace_free(ws) };
}

#[test]
fn plan_gives_json_mermaid_and_dot() {
    let (s, ws) = released_at_commit_1(None);
    release_new(ws, "backend.ocu.star");

    let plan_json: Value = serde_json::from_str(&plan(ws, None)).unwrap();
    assert_eq!(
        plan_json,
        serde_json::from_str::<Value>(&plan(ws, Some("json"))).unwrap()
    );
    let work = plan_json["work"].as_array().unwrap();
    assert_eq!(work.len(), 1, "{plan_json:#}");
    assert_eq!(work[0]["ref"], FRONTEND_REF);
    assert_eq!(work[0]["commit"], s.commits[0]);
    assert!(work[0].get("waits_for").is_none(), "{plan_json:#}");
    // The frontend's deploy depends on the backend's.
    let graph = &plan_json["graph"];
    let node = |name: &str| {
        graph
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["node"] == name)
            .unwrap_or_else(|| panic!("no {name}: {plan_json:#}"))
            .clone()
    };
    assert_eq!(
        node("c/-/frontend.ocu.star deploy staging")["depends_on"],
        serde_json::json!(["c/-/backend.ocu.star deploy staging", "environment staging"])
    );
    assert_eq!(
        node("c/-/backend.ocu.star deploy staging")["depends_on"],
        serde_json::json!(["environment staging"])
    );

    // The same graph as text: backend (n0) before frontend (n1).
    assert_eq!(
        plan(ws, Some("mermaid")),
        r#"flowchart LR
  n0["c/-/backend.ocu.star deploy staging"]
  n1["c/-/frontend.ocu.star deploy staging"]
  n2["environment staging"]
  n0 --> n1
  n2 --> n0
  n2 --> n1
"#
    );
    assert_eq!(
        plan(ws, Some("dot")),
        r#"digraph ocuroot {
  rankdir=LR;
  n0 [label="c/-/backend.ocu.star deploy staging"];
  n1 [label="c/-/frontend.ocu.star deploy staging"];
  n2 [label="environment staging"];
  n0 -> n1;
  n2 -> n0;
  n2 -> n1;
}
"#
    );

    // An unknown format is refused, naming it; nothing is written.
    let bad = c("svg");
    let mut out = ptr::null_mut();
    let mut err = ptr::null_mut();
    // SAFETY: valid arguments.
    let code = unsafe { ocuroot_plan(ws, bad.as_ptr(), &mut out, &mut err) };
    assert_eq!(code, ocuroot_result::InvalidArgument);
    assert!(out.is_null());
    let (code, message) = take_error(err);
    assert_eq!(code, ocuroot_result::InvalidArgument);
    assert!(message.contains("\"svg\""), "{message}");
    // SAFETY: freed once.
    unsafe { ocuroot_workspace_free(ws) };
}

#[test]
fn a_redeploy_that_keeps_failing_is_given_up_after_max_attempts() {
    // Two attempts instead of the default three.
    let (s, ws) = released_at_commit_1(Some(2));
    // A backend the frontend refuses.
    s.write(&[("backend.txt", "bad\n")]);
    let report = release_new(ws, "backend.ocu.star");
    assert_eq!(report["status"], "complete", "{report}");

    let outcome = cascade(ws);
    let stopped = outcome["stopped"].as_array().expect("stopped");
    assert_eq!(stopped.len(), 1, "{outcome:#}");
    let message = stopped[0].as_str().unwrap();
    assert!(
        message.contains(FRONTEND_REF) && message.contains("the backend is bad"),
        "{message}"
    );
    // Two attempts, then no more.
    assert_eq!(
        s.log(),
        ["frontend b1 f1", "frontend bad f1", "frontend bad f1"]
    );
    // SAFETY: freed once.
    unsafe { ocuroot_workspace_free(ws) };
}

#[test]
fn null_and_invalid_arguments_are_refused() {
    let mut s = Scenario::new();
    s.commit("b1", "f1");
    let ws = open(&s.repo(), None);
    let mut out = ptr::null_mut();
    let mut err = ptr::null_mut();
    // SAFETY: NULLs where the contract allows checking them.
    unsafe {
        assert_eq!(
            ocuroot_cascade(ptr::null(), &mut out, &mut err),
            ocuroot_result::NullArgument
        );
        assert_eq!(take_error(err).1, "workspace is NULL");
        err = ptr::null_mut();
        assert_eq!(
            ocuroot_cascade(ws, ptr::null_mut(), &mut err),
            ocuroot_result::NullArgument
        );
        assert_eq!(take_error(err).1, "outcome_json is NULL");
        err = ptr::null_mut();
        assert_eq!(
            ocuroot_work_cascade(ws, true, ptr::null_mut(), &mut err),
            ocuroot_result::NullArgument
        );
        assert_eq!(take_error(err).1, "result_json is NULL");
        err = ptr::null_mut();
        assert_eq!(
            ocuroot_work_cascade(ptr::null(), false, &mut out, &mut err),
            ocuroot_result::NullArgument
        );
        assert_eq!(take_error(err).1, "workspace is NULL");
        err = ptr::null_mut();
        assert_eq!(
            ocuroot_work_trigger(ws, true, ptr::null_mut(), &mut err),
            ocuroot_result::NullArgument
        );
        assert_eq!(take_error(err).1, "result_json is NULL");
        err = ptr::null_mut();
        assert_eq!(
            ocuroot_plan(ws, ptr::null(), ptr::null_mut(), &mut err),
            ocuroot_result::NullArgument
        );
        assert_eq!(take_error(err).1, "plan_text is NULL");
        err = ptr::null_mut();
        assert_eq!(
            ocuroot_plan(ptr::null(), ptr::null(), &mut out, &mut err),
            ocuroot_result::NullArgument
        );
        assert_eq!(take_error(err).1, "workspace is NULL");
        let bad = b"js\xffon\0";
        err = ptr::null_mut();
        assert_eq!(
            ocuroot_plan(ws, bad.as_ptr().cast(), &mut out, &mut err),
            ocuroot_result::InvalidUtf8
        );
        assert!(take_error(err).1.starts_with("format is not valid UTF-8"));
        // Without an error out-parameter the code alone comes back.
        assert_eq!(
            ocuroot_work_trigger(ptr::null(), true, &mut out, ptr::null_mut()),
            ocuroot_result::NullArgument
        );
        assert!(out.is_null());

        // max_attempts: at least 1, on options that exist.
        err = ptr::null_mut();
        assert_eq!(
            ocuroot_workspace_options_set_max_attempts(ptr::null_mut(), 2, &mut err),
            ocuroot_result::NullArgument
        );
        assert_eq!(take_error(err).1, "options is NULL");
        let opts = ocuroot_workspace_options_new();
        err = ptr::null_mut();
        assert_eq!(
            ocuroot_workspace_options_set_max_attempts(opts, 0, &mut err),
            ocuroot_result::InvalidArgument
        );
        assert_eq!(take_error(err).1, "max_attempts must be at least 1");
        ocuroot_workspace_options_free(opts);
        ocuroot_workspace_free(ws);
    }
}

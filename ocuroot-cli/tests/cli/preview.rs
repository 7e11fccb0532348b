//! `ocuroot preview <file>`: the page of a package file's phases, work and
//! inputs, served on an ephemeral port and fetched over HTTP; what it
//! refuses. The headless browser test in `view` loads it too.

use super::support::{Repo, ocu};
use super::view::View;

/// The state view's fixture with its environments released, committed.
pub(crate) fn repo() -> Repo {
    let repo = Repo::new();
    repo.copy_fixture_dir("view");
    repo.write(".gitignore", ".store/\nran\n");
    repo.commit("view fixture");
    ocu(&repo, &["release", "new", "environments.ocu.star"]).success();
    repo
}

/// `ocuroot preview <file> --port 0` in `repo`.
pub(crate) fn start(repo: &Repo, file: &str) -> View {
    View::spawn(repo.path(), &["preview", file, "--port", "0"], &[])
}

#[test]
fn the_page_shows_phases_work_and_inputs_and_writes_nothing() {
    let repo = repo();
    let store_before = repo.snapshot_dir(".store");
    let preview = start(&repo, "web.ocu.star");
    assert!(preview.addr.starts_with("127.0.0.1:"), "{}", preview.addr);

    let page = preview.get("/").ok();
    assert_eq!(
        page.header("Content-Type").as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert!(page.header("Content-Security-Policy").is_some());
    page.has("<h1>web.ocu.star</h1>")
        // Relative refs resolve against the release `release new` would make.
        .has("shop/-/web.ocu.star/@r1")
        .has("Phase 2 “staging”")
        .has("Phase 3 “production”")
        .has("data-work=\"task/build\"")
        .has("data-work=\"deploy/staging\"")
        .has("data-work=\"deploy/production\"")
        .has("<code>build()</code>")
        .has("up <code>up_approved()</code>")
        .has("down <code>down()</code>")
        // Inputs: where each comes from, and what state holds now.
        .has("<code>./task/build#output/version</code>")
        .has("<code>./custom/approval</code>")
        .has("required: the work waits for it")
        .has("made by this release when it runs")
        .has("set for this release with <code>ocuroot state set</code>")
        .has("<code>@/environment/production</code>")
        .has("now in state")
        .has("eu-west-1")
        // The graph of what the work reads, drawn as the plan page's.
        .has("<svg id=\"graph\"")
        .has("node-environment")
        // It refreshes itself, with the view's script and no inline one.
        .has("data-live=\"1\"")
        .has("<script src=\"/refresh.js\"></script>")
        .lacks("<script>")
        // Only the preview: no links to state pages this server lacks.
        .lacks("href=\"/plan\"");
    preview
        .get("/refresh.js")
        .ok()
        .has("document.body.dataset.live");
    preview.get("/nothing-here").expect(404);
    preview.post("/", &[], "").expect(405);
    // Nothing was released, run or written.
    assert_eq!(repo.snapshot_dir(".store"), store_before);
}

#[test]
fn the_file_is_evaluated_on_every_load_escaped_and_without_running_anything() {
    let repo = repo();
    repo.write(
        "evil.ocu.star",
        r#"ocuroot("0.3.0")

host.shell("touch ran")
print("<b>printed</b>")

def build():
    return done()

phase("<img src=x onerror=alert(1)>", tasks=[task(build, name="build")])
"#,
    );
    let preview = start(&repo, "evil.ocu.star");
    preview
        .get("/")
        .ok()
        .has("Phase 1 “&lt;img src=x onerror=alert(1)&gt;”")
        .lacks("<img src=x")
        .has("Not run while previewing")
        .has("touch ran")
        .has("&lt;b&gt;printed&lt;/b&gt;");
    assert!(!repo.path().join("ran").exists(), "the command ran");

    // An edit shows on the next load.
    repo.write(
        "evil.ocu.star",
        "ocuroot(\"0.3.0\")\n\ndef build():\n    return done()\n\nphase(\"renamed\", tasks=[task(build, name=\"compile\")])\n",
    );
    preview
        .get("/")
        .ok()
        .has("Phase 1 “renamed”")
        .has("data-work=\"task/compile\"");

    // A file that fails to evaluate: the error and where, on a page that
    // keeps reloading until the file is fixed.
    repo.write(
        "evil.ocu.star",
        "ocuroot(\"0.3.0\")\n\nphase(\"x\", tasks=[undefined_name])\n",
    );
    let failed = preview.get("/");
    assert!(failed.status >= 400, "{}", failed.body);
    failed
        .has("evil.ocu.star:3:")
        .has("undefined_name")
        .has("data-live=\"1\"");

    // A file registering environments shows them.
    let envs = start(&repo, "environments.ocu.star");
    envs.get("/")
        .ok()
        .has("Environments it registers")
        .has("<code>production</code>");
}

#[test]
fn a_release_or_a_missing_file_is_refused() {
    let repo = repo();
    let out = ocu(&repo, &["preview", "web.ocu.star/@r1"]).failure();
    assert_eq!(
        out.stderr.trim(),
        "Error: a release should not be specified for a preview"
    );
    let out = ocu(&repo, &["preview", "missing.ocu.star", "--port", "0"]).failure();
    assert!(
        out.stderr
            .starts_with("Error: package path does not exist: missing.ocu.star"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout, "");
}

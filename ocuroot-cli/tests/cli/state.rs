//! `ocuroot state get` and `state match` over a store written by hand in the
//! on-disk format of the fs store.

use serde_json::json;

use crate::support::{Repo, StateStore};

const PKG: &str = "quickstart/-/release.ocu.star";

/// The quickstart repository with a state store holding a release r1
/// (build task, staging deployment), a release r2 (build task), the
/// `@/deploy/staging` link to r1, and the staging environment.
fn populated() -> Repo {
    let repo = Repo::quickstart();
    StateStore::create(&repo)
        .doc(
            &format!("{PKG}/@r1"),
            json!({"commit": "0123456789abcdef0123456789abcdef01234567"}),
        )
        .doc(
            &format!("{PKG}/@r1/task/build"),
            json!({
                "type": "task",
                "release": format!("{PKG}/@r1"),
                "output": {"build_number": 1, "tag": "myapp:1"},
            }),
        )
        .doc(
            &format!("{PKG}/@r1/deploy/staging"),
            json!({"type": "up", "output": {"x": "from r1", "nested": {"n": [1, 2]}}}),
        )
        .doc(
            &format!("{PKG}/@r2/task/build"),
            json!({"output": {"build_number": 2, "tag": "myapp:2"}}),
        )
        .link(
            &format!("{PKG}/@/deploy/staging"),
            &format!("{PKG}/@r1/deploy/staging"),
        )
        .doc(
            "@/environment/staging",
            json!({"name": "staging", "attributes": {"type": "staging"}}),
        );
    repo
}

#[test]
fn get_prints_pretty_json() {
    let repo = populated();
    let out = repo
        .ocuroot(&["state", "get", &format!("{PKG}/@r1/task/build")])
        .success();
    let expected = format!(
        r#"{{
  "type": "task",
  "release": "{PKG}/@r1",
  "output": {{
    "build_number": 1,
    "tag": "myapp:1"
  }}
}}
"#
    );
    assert_eq!(out.stdout, expected);
    assert!(out.stderr.is_empty(), "{}", out.stderr);
}

#[test]
fn get_a_fragment() {
    let repo = populated();
    let get = |r: &str| {
        repo.ocuroot(&["state", "get", &format!("{PKG}/{r}")])
            .success()
            .stdout
    };
    assert_eq!(get("@r1/task/build#output/tag"), "\"myapp:1\"\n");
    assert_eq!(get("@r1/task/build#output/build_number"), "1\n");
    assert_eq!(
        get("@r1/task/build#output"),
        "{\n  \"build_number\": 1,\n  \"tag\": \"myapp:1\"\n}\n"
    );
    assert_eq!(
        get("@r1/deploy/staging#output/nested/n"),
        "[\n  1,\n  2\n]\n"
    );
    // `call` is an alias of `task`.
    assert_eq!(get("@r2/call/build#output/tag"), "\"myapp:2\"\n");
}

#[test]
fn get_follows_links() {
    let repo = populated();
    let out = repo
        .ocuroot(&["state", "get", &format!("{PKG}/@/deploy/staging#output/x")])
        .success();
    assert_eq!(out.stdout, "\"from r1\"\n");
    let out = repo
        .ocuroot(&["state", "get", &format!("{PKG}/@/deploy/staging")])
        .success();
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(doc["type"], "up");
    // The link itself is not the document.
    assert!(doc.get("kind").is_none(), "{doc}");
}

#[test]
fn get_global_ref() {
    let repo = populated();
    let out = repo
        .ocuroot(&["state", "get", "@/environment/staging#attributes/type"])
        .success();
    assert_eq!(out.stdout, "\"staging\"\n");
}

#[test]
fn get_absent_ref_fails() {
    let repo = populated();
    for (r, resolved) in [
        (
            format!("{PKG}/@r3/task/build"),
            format!("{PKG}/@r3/task/build"),
        ),
        (
            format!("{PKG}/@r1/task/build#output/missing"),
            format!("{PKG}/@r1/task/build#output/missing"),
        ),
        (
            format!("{PKG}/@/deploy/production"),
            format!("{PKG}/@/deploy/production"),
        ),
        (
            "release.ocu.star/@r9/task/build".to_string(),
            format!("{PKG}/@r9/task/build"),
        ),
    ] {
        let out = repo.ocuroot(&["state", "get", &r]).failure();
        assert!(out.stdout.is_empty(), "{r}: {}", out.stdout);
        assert_eq!(
            out.stderr,
            format!("Error: ref not found: {resolved}\n"),
            "{r}"
        );
    }
}

#[test]
fn get_relative_ref_resolves_against_the_current_directory() {
    let repo = populated();
    let out = repo
        .ocuroot(&["state", "get", "release.ocu.star/@r1/task/build#output/tag"])
        .success();
    assert_eq!(out.stdout, "\"myapp:1\"\n");
    let out = repo
        .ocuroot(&["state", "get", "release.ocu.star/@/deploy/staging#output/x"])
        .success();
    assert_eq!(out.stdout, "\"from r1\"\n");
    // `./` starts a same-package ref (`./task/...`), so a package path after
    // it is rejected, with a hint.
    let out = repo
        .ocuroot(&["state", "get", "./release.ocu.star/@r1/task/build"])
        .failure();
    assert!(
        out.stderr.contains("leave out the leading \"./\""),
        "{}",
        out.stderr
    );

    // From a subdirectory the same relative ref names another package.
    repo.write("sub/.keep", "");
    let out = repo
        .ocuroot_at(
            "sub",
            &["state", "get", "release.ocu.star/@r1/task/build#output/tag"],
        )
        .failure();
    assert_eq!(
        out.stderr,
        "Error: ref not found: quickstart/-/sub/release.ocu.star/@r1/task/build#output/tag\n"
    );
}

#[test]
fn match_lists_sorted_refs() {
    let repo = populated();
    let out = repo.ocuroot(&["state", "match", "**/@r1/task/*"]).success();
    assert_eq!(out.stdout, format!("{PKG}/@r1/task/build\n"));

    let out = repo.ocuroot(&["state", "match", "**/task/*"]).success();
    assert_eq!(
        out.stdout,
        format!("{PKG}/@r1/task/build\n{PKG}/@r2/task/build\n")
    );

    // Documents and links are candidates, intermediate paths are not.
    let out = repo.ocuroot(&["state", "match", "**"]).success();
    let expected: Vec<String> = vec![
        format!("{PKG}/@/deploy/staging"),
        format!("{PKG}/@r1"),
        format!("{PKG}/@r1/deploy/staging"),
        format!("{PKG}/@r1/task/build"),
        format!("{PKG}/@r2/task/build"),
        "@/environment/staging".to_string(),
    ];
    let mut sorted = expected.clone();
    sorted.sort();
    let got: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(got, sorted, "sorted, one per line");
}

#[test]
fn match_ors_several_globs() {
    let repo = populated();
    let out = repo
        .ocuroot(&[
            "state",
            "match",
            "**/@r2/task/*",
            "**/deploy/staging",
            // Overlaps the first: each ref is listed once.
            "**/@r2/**",
        ])
        .success();
    assert_eq!(
        out.stdout,
        format!("{PKG}/@/deploy/staging\n{PKG}/@r1/deploy/staging\n{PKG}/@r2/task/build\n")
    );

    let out = repo
        .ocuroot(&["state", "match", &format!("{PKG}/@r{{1,2}}/task/build")])
        .success();
    assert_eq!(
        out.stdout,
        format!("{PKG}/@r1/task/build\n{PKG}/@r2/task/build\n")
    );
}

#[test]
fn match_without_results_is_empty() {
    let repo = populated();
    let out = repo.ocuroot(&["state", "match", "nothing/**"]).success();
    assert_eq!(out.stdout, "");
}

#[test]
fn match_without_a_glob_lists_every_ref() {
    let repo = populated();
    let every = repo.ocuroot(&["state", "match"]).success().stdout;
    assert!(!every.is_empty());
    assert_eq!(
        every,
        repo.ocuroot(&["state", "match", "**"]).success().stdout
    );
}

#[test]
fn invalid_refs_and_globs_are_rejected() {
    let repo = populated();
    let out = repo.ocuroot(&["state", "get", "a/../b"]).failure();
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr.contains("invalid ref \"a/../b\""),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("\"..\" segment"), "{}", out.stderr);

    let out = repo
        .ocuroot(&["state", "get", &format!("{PKG}/@r1/bogus/x")])
        .failure();
    assert!(out.stderr.contains("invalid ref"), "{}", out.stderr);

    let out = repo.ocuroot(&["state", "match", "a/[b"]).failure();
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr.contains("invalid glob \"a/[b\""),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("unclosed character class"),
        "{}",
        out.stderr
    );

    // One bad glob fails the command even with good ones beside it.
    let out = repo.ocuroot(&["state", "match", "**", "{a,b"]).failure();
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(out.stderr.contains("invalid glob"), "{}", out.stderr);
}

#[test]
fn reads_leave_the_store_unchanged() {
    let repo = populated();
    let data = || {
        repo.snapshot_dir(".ocuroot/")
            .into_iter()
            .filter(|(f, _)| !f.ends_with("/.lock"))
            .collect::<Vec<_>>()
    };
    let before = data();
    repo.ocuroot(&["state", "get", &format!("{PKG}/@/deploy/staging")])
        .success();
    repo.ocuroot(&["state", "get", &format!("{PKG}/@r7")])
        .failure();
    repo.ocuroot(&["state", "match", "**"]).success();
    assert_eq!(data(), before);
}

#[test]
fn reads_without_a_store_do_not_create_one() {
    let repo = Repo::quickstart();
    repo.ocuroot(&["state", "get", &format!("{PKG}/@r1")])
        .failure();
    let out = repo.ocuroot(&["state", "match", "**"]).success();
    assert_eq!(out.stdout, "");
    assert!(!repo.path().join(".ocuroot").exists());
}

#[test]
fn incompatible_store_version_is_refused() {
    let repo = Repo::quickstart();
    StateStore::create(&repo);
    std::fs::write(
        repo.path().join(".ocuroot/store/state/.ocuroot-store"),
        r#"{"version": 2, "Tags": {"state": {}}}"#,
    )
    .expect("write marker");
    let out = repo.ocuroot(&["state", "match", "**"]).failure();
    assert!(
        out.stderr.contains("incompatible store version 2"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("[ROOT]/.ocuroot/store/state/.ocuroot-store"),
        "{}",
        out.stderr
    );
}

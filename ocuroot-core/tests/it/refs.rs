//! Ref parsing, formatting, resolution, store keys and globs.
//!
//! The tables port the original's `refs/refs_test.go` and the examples of the
//! specification (§3) and the notes on the original (§2.1–2.3).

use ocuroot_core::ErrorKind;
use ocuroot_core::refs::{Ref, RefGlob, RefGlobSet, SubPathType, validate_key};

fn parse(s: &str) -> Ref {
    Ref::parse(s).unwrap_or_else(|e| panic!("parse({s:?}) failed: {e}"))
}

fn parse_err(s: &str) -> String {
    match Ref::parse(s) {
        Ok(r) => panic!("parse({s:?}) should fail, got {r:?}"),
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::InvalidRef, "{e}");
            e.to_string()
        }
    }
}

/// A ref from its parts; `release` uses `None` for "no release segment".
fn r(
    repo: &str,
    filename: &str,
    release: Option<&str>,
    sub: Option<(SubPathType, &str)>,
    fragment: &str,
) -> Ref {
    Ref {
        repo: repo.into(),
        filename: filename.into(),
        global: false,
        release: release.map(Into::into),
        subpath_type: sub.map(|s| s.0),
        subpath: sub.map_or(String::new(), |s| s.1.into()),
        fragment: fragment.into(),
    }
}

fn global(release: &str, sub: Option<(SubPathType, &str)>, fragment: &str) -> Ref {
    Ref {
        global: true,
        release: Some(release.into()),
        ..r("", "", None, sub, fragment)
    }
}

use SubPathType::*;

mod round_trip {
    use super::*;

    /// Canonical refs: they parse and print back unchanged.
    const CANONICAL: &[&str] = &[
        // From refs_test.go (TestValidNormalizedRefs) and notes §2.1.
        "",
        "github.com/org/repo/-/path/to/package/@/deploy/prod#output/host",
        "github.com/org/repo/-/path/to/package/@v1/deploy/prod#output/host",
        "github.com/org/repo/-/path/to/package",
        "./-/path/to/package",
        "./-/path/to/package/@/deploy/prod#output/host",
        "./@/task/build#output/output1",
        "github.com/ocu-project/ocu/-/package.ocu.star/@ABC123/deploy/staging/ABC123/logs",
        "github.com/ocu-project/ocu/-/package.ocu.star/@ABC123/deploy/staging/ABC123/outputs",
        "github.com/org/repo/-/package.ocu.star/@v1/deploy/prod#output/host",
        "@/environment/production",
        "@/environment/staging#attributes/type",
        // SPEC §3 forms.
        "./task/build#output/x",
        "./@/deploy/staging#output/x",
        "./-/other/pkg.ocu.star/@/deploy/prod#output/x",
        "@/custom/approval",
        "github.com/org/repo/-/basic.ocu.star/@r1/deploy/staging/1/status/complete",
        "github.com/org/repo/-/basic.ocu.star/@r12/commit/0123456789abcdef",
        "github.com/org/repo/-/repo.ocu.star/@r1",
        "minimal/repo/-/package.ocu.star/@commitid.01JY1YT9R0EDV5EKQH5FVZF64B/custom/approval",
        "github.com/org/repo/-/@v1",
        "github.com/org/repo/-",
        "frontend/@",
        "frontend/package.ocu.star",
        ".",
        "./-",
        "./-/@r1",
        "@r2/custom/x",
        "@",
        "@#a/b",
        // Quirk 6 decision: a type with an empty subpath.
        "x/@r1/deploy",
        "x/@r1/deploy#output",
        "./deploy",
        // A fragment right after a package path or release.
        "pkg.ocu.star#a/b",
        "pkg.ocu.star/@r1#release",
        "repo/-#x",
        // Odd but legal characters.
        "github.com/org/repo/-/my-app/pkg=1.ocu.star/@r1/task/build",
        "github.com/org/repo/-/pkg.ocu.star/@r1/task/a@b/c+d",
        "github.com/org/repo/-/pkg.ocu.star/@r1/task/a#b#c",
        "github.com/org/repo/-/pkg.ocu.star/@r1#@top",
        "spaces in/pkg name.ocu.star/@r1/custom/é",
    ];

    #[test]
    fn canonical_refs_round_trip() {
        for &s in CANONICAL {
            let parsed = parse(s);
            assert_eq!(parsed.to_string(), s, "{s:?} parsed as {parsed:?}");
            assert_eq!(parse(&parsed.to_string()), parsed, "{s:?}");
            let via_from_str: Ref = s.parse().unwrap();
            assert_eq!(via_from_str, parsed);
        }
    }

    /// Non-canonical inputs and their canonical form.
    const NORMALISED: &[(&str, &str)] = &[
        // From refs_test.go (TestRefNormalization).
        ("./task/build/", "./task/build"),
        (
            "github.com/example/example/-/path/to/package/@/task/build#output/output1/",
            "github.com/example/example/-/path/to/package/@/task/build#output/output1",
        ),
        (
            "github.com/example/example/-/path/to/package/@/task/build/",
            "github.com/example/example/-/path/to/package/@/task/build",
        ),
        (
            "github.com/example/example/-/path/to/package/@/call/build/",
            "github.com/example/example/-/path/to/package/@/task/build",
        ),
        // Notes §2.1.
        (
            "github.com/example/example/-/path/to/package/+/task/build/",
            "github.com/example/example/-/path/to/package/@/task/build",
        ),
        (
            "//package.ocu.star/@r5/custom/approval",
            "./-/package.ocu.star/@r5/custom/approval",
        ),
        ("+/environment/production", "@/environment/production"),
        (
            "github.com/ocu-project/ocu/-/package.ocu.star/+/deploy/staging",
            "github.com/ocu-project/ocu/-/package.ocu.star/@/deploy/staging",
        ),
        ("./+/call/build", "./@/task/build"),
        ("./call/build", "./task/build"),
        ("github.com/org/repo/-/", "github.com/org/repo/-"),
        ("frontend/", "frontend"),
        ("frontend/#x/", "frontend#x"),
        ("./", "."),
        ("//", "./-"),
        ("//@r1", "./-/@r1"),
        ("x/@r1/", "x/@r1"),
        ("x/@r1/deploy/", "x/@r1/deploy"),
        ("x/@r1#", "x/@r1"),
        ("repo/-/#x", "repo/-#x"),
        ("@/", "@"),
        ("repo/-/+r1", "repo/-/@r1"),
    ];

    #[test]
    fn normalisation() {
        for &(input, want) in NORMALISED {
            let parsed = parse(input);
            assert_eq!(parsed.to_string(), want, "{input:?} parsed as {parsed:?}");
            assert_eq!(parse(want), parsed, "{input:?}");
        }
    }
}

mod structure {
    use super::*;

    #[test]
    fn fields() {
        let rows: Vec<(&str, Ref)> = vec![
            // From refs_test.go (TestRefStructure).
            ("", Ref::default()),
            (
                "github.com/org/repo/-/path/to/package/@/deploy/prod#output/host",
                r(
                    "github.com/org/repo",
                    "path/to/package",
                    Some(""),
                    Some((Deploy, "prod")),
                    "output/host",
                ),
            ),
            (
                "github.com/org/repo/-/path/to/package/@/deploy/prod/ABCDEF/logs",
                r(
                    "github.com/org/repo",
                    "path/to/package",
                    Some(""),
                    Some((Deploy, "prod/ABCDEF/logs")),
                    "",
                ),
            ),
            ("path/to/package", r("", "path/to/package", None, None, "")),
            (
                "github.com/org/repo/-/path/to/package",
                r("github.com/org/repo", "path/to/package", None, None, ""),
            ),
            (
                "./-/path/to/package/@/deploy/prod#output/host",
                r(
                    ".",
                    "path/to/package",
                    Some(""),
                    Some((Deploy, "prod")),
                    "output/host",
                ),
            ),
            (
                "./-/path/to/package/@/call/build#output/output1",
                r(
                    ".",
                    "path/to/package",
                    Some(""),
                    Some((Task, "build")),
                    "output/output1",
                ),
            ),
            (
                "github.com/org/repo/-/path/to/package/@v1",
                r(
                    "github.com/org/repo",
                    "path/to/package",
                    Some("v1"),
                    None,
                    "",
                ),
            ),
            (
                "github.com/org/repo/-/@v1",
                r("github.com/org/repo", "", Some("v1"), None, ""),
            ),
            (
                "github.com/org/repo/-/",
                r("github.com/org/repo", "", None, None, ""),
            ),
            ("frontend/@", r("", "frontend", Some(""), None, "")),
            (
                "github.com/ocu-project/ocu/-/@/deploy/staging",
                r(
                    "github.com/ocu-project/ocu",
                    "",
                    Some(""),
                    Some((Deploy, "staging")),
                    "",
                ),
            ),
            (
                "./@/task/build#output/output1",
                r("", ".", Some(""), Some((Task, "build")), "output/output1"),
            ),
            (
                "@/environment/production",
                global("", Some((Environment, "production")), ""),
            ),
            (
                "@/environment/staging#attributes/type",
                global("", Some((Environment, "staging")), "attributes/type"),
            ),
            (
                "./-/path/to/package",
                r(".", "path/to/package", None, None, ""),
            ),
            (
                "./task/build#output/output1",
                r("", ".", None, Some((Task, "build")), "output/output1"),
            ),
            (
                "//package.ocu.star/@r5/custom/approval",
                r(
                    ".",
                    "package.ocu.star",
                    Some("r5"),
                    Some((Custom, "approval")),
                    "",
                ),
            ),
            // More forms.
            (
                "+/environment/production",
                global("", Some((Environment, "production")), ""),
            ),
            ("@r7/op/x", global("r7", Some((Op, "x")), "")),
            ("./@v3", r("", ".", Some("v3"), None, "")),
            (".", r("", ".", None, None, "")),
            ("./", r("", ".", None, None, "")),
            ("//", r(".", "", None, None, "")),
            ("//pkg.ocu.star", r(".", "pkg.ocu.star", None, None, "")),
            (
                "x/@r1/deploy",
                r("", "x", Some("r1"), Some((Deploy, "")), ""),
            ),
            ("./push", r("", ".", None, Some((Push, "")), "")),
            ("a/@./task/b", r("", "a", Some("."), Some((Task, "b")), "")),
            ("pkg#output/x", r("", "pkg", None, None, "output/x")),
            ("#x", r("", "", None, None, "x")),
        ];
        for (s, want) in rows {
            assert_eq!(parse(s), want, "{s:?}");
        }
    }

    #[test]
    fn is_relative() {
        for s in [
            "",
            ".",
            "pkg.ocu.star",
            "frontend/@",
            "./task/build",
            "./@/deploy/x",
            "./-/pkg/@r1",
            "//pkg/@r1",
            "repo/-/pkg/@./task/x",
        ] {
            assert!(parse(s).is_relative(), "{s:?} should be relative");
        }
        for s in [
            "github.com/org/repo/-/pkg/@r1/task/x",
            "github.com/org/repo/-",
            "github.com/org/repo/-/pkg",
            // Decision: global refs are absolute.
            "@/environment/prod",
            "@r1/custom/x",
        ] {
            assert!(!parse(s).is_relative(), "{s:?} should not be relative");
        }
        assert!(parse("@/environment/prod").is_global());
        assert!(!parse("./task/x").is_global());
    }
}

mod invalid {
    use super::*;

    /// Inputs, the byte offset the error points at, and a part of the message.
    const INVALID: &[(&str, usize, &str)] = &[
        // From refs_test.go (TestInvalidRefs).
        (
            "repo.git/package/@/invalid/sub/path",
            19,
            "invalid subpath type: \"invalid\"",
        ),
        (
            "repo.git/package@/deploy/hello",
            16,
            "unexpected release prefix '@' in path",
        ),
        // Notes §2.1.
        ("pkg@/deploy/x", 3, "unexpected release prefix '@' in path"),
        ("pkg+x", 3, "unexpected release prefix '+' in path"),
        (
            "repo/-x",
            6,
            "expected '/', '#' or end of ref after the repo separator \"/-\", found 'x'",
        ),
        ("a/-/b/-/c", 5, "unexpected second repo separator"),
        (
            "//a/-/b",
            3,
            "the leading \"//\" already names the current repo",
        ),
        (
            "x/@r1/deploy/a/@r2",
            15,
            "unexpected release prefix '@' in subpath",
        ),
        (
            "x/@r1/deploy/@r2",
            13,
            "unexpected release prefix '@' in subpath",
        ),
        ("x/@r1/task/a=b", 12, "unexpected '=' in subpath"),
        ("x/@r1/task/=b", 11, "unexpected '=' in subpath"),
        ("x/@r1#a/@b", 8, "unexpected release prefix '@' in fragment"),
        ("./#x", 2, "unexpected fragment: expected a subpath type"),
        (
            "x/@r1/#x",
            6,
            "unexpected fragment: expected a subpath type",
        ),
        ("x/@r1//task", 6, "expected a subpath type, found '/'"),
        ("./frontend/pkg.ocu.star", 2, "leave out the leading \"./\""),
        ("x/@r1/calls/y", 6, "invalid subpath type: \"calls\""),
        ("/-/x", 0, "expected a repo before the repo separator"),
        (
            "/@r1",
            0,
            "expected a package path segment before the release",
        ),
        (
            "repo/-//@r1",
            7,
            "expected a package path segment before the release",
        ),
        // Security: `..`/`.` segments, empty segments, control characters, backslashes.
        ("a/../b", 2, "unexpected \"..\" segment in package path"),
        ("..", 0, "unexpected \"..\" segment in package path"),
        ("../x", 0, "unexpected \"..\" segment in package path"),
        ("./-/../x", 4, "unexpected \"..\" segment in package path"),
        ("//../x", 2, "unexpected \"..\" segment in package path"),
        ("a/./b", 2, "unexpected \".\" segment in package path"),
        ("repo/-/.", 7, "unexpected \".\" segment in package path"),
        ("github.com/../-/x", 11, "unexpected \"..\" segment in repo"),
        (
            "x/@r1/task/../../../etc",
            11,
            "unexpected \"..\" segment in subpath",
        ),
        (
            "x/@r1/task/a/./b",
            13,
            "unexpected \".\" segment in subpath",
        ),
        (
            "x/@r1/task/a#../b",
            13,
            "unexpected \"..\" segment in fragment",
        ),
        ("a//b", 2, "empty segments are not allowed"),
        ("/abs/path", 0, "empty segments are not allowed"),
        ("a//", 2, "empty segments are not allowed"),
        ("repo/-//", 7, "expected a package path segment, found '/'"),
        ("a//b/-/c", 2, "expected a repo segment, found '/'"),
        ("x/@r1/task/a//b", 13, "empty segments are not allowed"),
        ("x/@r1/task//", 11, "expected a subpath segment, found '/'"),
        ("x/@r1#a//b", 8, "empty segments are not allowed"),
        ("a\\b", 1, "unexpected backslash"),
        ("x/@r1/task/a\\..\\b", 12, "unexpected backslash"),
        ("a\0b", 1, "unexpected control character '\\0'"),
        ("x/@r1/task/a\nb", 12, "unexpected control character '\\n'"),
        ("x/@r1#\u{7f}", 6, "unexpected control character '\\u{7f}'"),
        ("\u{1b}[31m", 0, "unexpected control character"),
    ];

    #[test]
    fn errors_name_offset_and_expectation() {
        for &(input, offset, want) in INVALID {
            let msg = parse_err(input);
            assert!(
                msg.contains(&format!("at offset {offset}:")),
                "{input:?}: expected offset {offset} in {msg:?}"
            );
            assert!(
                msg.contains(want),
                "{input:?}: expected {want:?} in {msg:?}"
            );
            assert!(
                msg.contains(&format!("{input:?}")),
                "{input:?}: ref not quoted in {msg:?}"
            );
        }
    }

    #[test]
    fn snapshots() {
        insta::assert_snapshot!(
            parse_err("repo.git/package/@/invalid/sub/path"),
            @r#"invalid ref "repo.git/package/@/invalid/sub/path" at offset 19: invalid subpath type: "invalid": expected one of task, deploy, custom, environment, commit, push, op (or `call`, an alias of `task`)"#
        );
        insta::assert_snapshot!(
            parse_err("repo.git/package@/deploy/hello"),
            @r#"invalid ref "repo.git/package@/deploy/hello" at offset 16: unexpected release prefix '@' in path: a release starts a segment, as in "pkg.ocu.star/@r1""#
        );
        insta::assert_snapshot!(
            parse_err("github.com/org/repo/-pkg"),
            @r#"invalid ref "github.com/org/repo/-pkg" at offset 21: expected '/', '#' or end of ref after the repo separator "/-", found 'p'"#
        );
        insta::assert_snapshot!(
            parse_err("repo/-/a/../../etc/passwd"),
            @r#"invalid ref "repo/-/a/../../etc/passwd" at offset 9: unexpected ".." segment in package path: refs may not contain '.' or '..' segments"#
        );
        insta::assert_snapshot!(
            parse_err("a/@r1/task/x\0"),
            @r#"invalid ref "a/@r1/task/x\0" at offset 12: unexpected control character '\0': refs may not contain control characters"#
        );
        insta::assert_snapshot!(
            parse_err("./frontend/pkg.ocu.star"),
            @r#"invalid ref "./frontend/pkg.ocu.star" at offset 2: invalid subpath type: "frontend": expected one of task, deploy, custom, environment, commit, push, op (or `call`, an alias of `task`); to name a package path, leave out the leading "./""#
        );
    }
}

mod relative_to {
    use super::*;

    fn check(rows: &[(&str, &str)], base: &Ref) {
        for &(input, want) in rows {
            let got = parse(input).relative_to(base);
            assert_eq!(got.to_string(), want, "{input:?} relative to {base}");
        }
    }

    #[test]
    fn from_refs_test_go() {
        let base = parse("github.com/org/repo/-/path/to/package/@abc123");
        check(
            &[
                (
                    "./task/build#output/output1",
                    "github.com/org/repo/-/path/to/package/@abc123/task/build#output/output1",
                ),
                (
                    "./@/task/build#output/output1",
                    "github.com/org/repo/-/path/to/package/@/task/build#output/output1",
                ),
                (
                    "./-/path/to/package/@/task/build#output/output1",
                    "github.com/org/repo/-/path/to/package/@/task/build#output/output1",
                ),
                (
                    "github.com/org/repo2/-/path/to/package2/@/deploy/prod#output/host",
                    "github.com/org/repo2/-/path/to/package2/@/deploy/prod#output/host",
                ),
                ("@/environment/production", "@/environment/production"),
                ("+/environment/production", "@/environment/production"),
            ],
            &base,
        );
        check(
            &[("./@v3", "minimal/repo.git/-/@v3")],
            &parse("minimal/repo.git/-/"),
        );
    }

    #[test]
    fn explicit_release_is_kept() {
        // Decision: quirk 5a fixed.
        let base = parse("github.com/org/repo/-/pkg.ocu.star/@r1");
        check(
            &[
                (
                    "./@r3/task/x",
                    "github.com/org/repo/-/pkg.ocu.star/@r3/task/x",
                ),
                ("./@v2", "github.com/org/repo/-/pkg.ocu.star/@v2"),
                (
                    "./-/other.ocu.star/@r9/deploy/prod#output/x",
                    "github.com/org/repo/-/other.ocu.star/@r9/deploy/prod#output/x",
                ),
                // `@.` is "the base's release".
                (
                    "./@./task/x",
                    "github.com/org/repo/-/pkg.ocu.star/@r1/task/x",
                ),
            ],
            &base,
        );
    }

    #[test]
    fn cli_bases() {
        // `GetRef`: {repo, cwd relative to the repo root}.
        let frontend = Ref {
            repo: "github.com/org/repo".into(),
            filename: "frontend".into(),
            ..Ref::default()
        };
        check(
            &[
                (
                    "package.ocu.star",
                    "github.com/org/repo/-/frontend/package.ocu.star",
                ),
                (
                    "package.ocu.star/@r2",
                    "github.com/org/repo/-/frontend/package.ocu.star/@r2",
                ),
                (
                    "package.ocu.star/@",
                    "github.com/org/repo/-/frontend/package.ocu.star/@",
                ),
                (
                    "lib/package.ocu.star/",
                    "github.com/org/repo/-/frontend/lib/package.ocu.star",
                ),
                (
                    "//backend/package.ocu.star",
                    "github.com/org/repo/-/backend/package.ocu.star",
                ),
                (
                    "./-/backend/package.ocu.star",
                    "github.com/org/repo/-/backend/package.ocu.star",
                ),
                (".", "github.com/org/repo/-/frontend"),
                ("", "github.com/org/repo/-/frontend"),
                ("./@r4", "github.com/org/repo/-/frontend/@r4"),
                (
                    "other/repo/-/pkg.ocu.star/@r1",
                    "other/repo/-/pkg.ocu.star/@r1",
                ),
                ("@/environment/prod", "@/environment/prod"),
            ],
            &frontend,
        );
        let root = Ref {
            repo: "github.com/org/repo".into(),
            ..Ref::default()
        };
        check(
            &[
                ("basic.ocu.star", "github.com/org/repo/-/basic.ocu.star"),
                ("//basic.ocu.star", "github.com/org/repo/-/basic.ocu.star"),
                (".", "github.com/org/repo/-"),
            ],
            &root,
        );
    }

    #[test]
    fn sdk_bases() {
        // A new release: `<repo>/-/<pkg>/@r<N>`.
        let release = parse("github.com/org/repo/-/pkg.ocu.star/@r1");
        check(
            &[
                (
                    "./task/build#output/x",
                    "github.com/org/repo/-/pkg.ocu.star/@r1/task/build#output/x",
                ),
                (
                    "./call/build",
                    "github.com/org/repo/-/pkg.ocu.star/@r1/task/build",
                ),
                (
                    "./@/deploy/staging#output/x",
                    "github.com/org/repo/-/pkg.ocu.star/@/deploy/staging#output/x",
                ),
                (
                    "./-/other/pkg.ocu.star/@/deploy/env#output/x",
                    "github.com/org/repo/-/other/pkg.ocu.star/@/deploy/env#output/x",
                ),
                (
                    "other/repo/-/pkg/@/deploy/env#output/x",
                    "other/repo/-/pkg/@/deploy/env#output/x",
                ),
                ("@/custom/foo", "@/custom/foo"),
                ("@/environment/x", "@/environment/x"),
                // As in the original, a bare path is joined onto the package file path.
                (
                    "other.ocu.star/@/deploy/x",
                    "github.com/org/repo/-/pkg.ocu.star/other.ocu.star/@/deploy/x",
                ),
            ],
            &release,
        );
        // continue/retry with a tag: the tag is kept unresolved.
        check(
            &[(
                "./task/build",
                "github.com/org/repo/-/pkg.ocu.star/@v2/task/build",
            )],
            &parse("github.com/org/repo/-/pkg.ocu.star/@v2"),
        );
        // A base with a subpath: only repo, package and release are taken from it.
        check(
            &[(
                "./@/deploy/x",
                "github.com/org/repo/-/pkg.ocu.star/@/deploy/x",
            )],
            &parse("github.com/org/repo/-/pkg.ocu.star/@r1/task/build/1"),
        );
        // `release lint`: no release in the base.
        let lint = parse("github.com/org/repo/-/pkg.ocu.star");
        check(
            &[
                (
                    "./@/deploy/x",
                    "github.com/org/repo/-/pkg.ocu.star/@/deploy/x",
                ),
                (
                    "./task/build",
                    "github.com/org/repo/-/pkg.ocu.star/task/build",
                ),
            ],
            &lint,
        );
        // ...where a subpath without release is not canonical, so not storable.
        assert!(
            parse("./task/build")
                .relative_to(&lint)
                .validate_storable()
                .is_err()
        );
    }

    #[test]
    fn resolved_refs_are_absolute() {
        let base = parse("github.com/org/repo/-/pkg.ocu.star/@r1");
        for s in [
            "./task/x",
            "./@/deploy/y",
            "//a/@r2",
            "./-/b",
            "c.ocu.star",
            ".",
            "",
        ] {
            let out = parse(s).relative_to(&base);
            assert!(!out.is_relative(), "{s:?} -> {out}");
            assert_eq!(parse(&out.to_string()), out, "{s:?} -> {out}");
        }
    }
}

mod accessors {
    use super::*;

    #[test]
    fn parts() {
        let full = parse("github.com/org/repo/-/pkg.ocu.star/@r3/deploy/prod/2#output/x");
        assert_eq!(
            full.without_fragment().to_string(),
            "github.com/org/repo/-/pkg.ocu.star/@r3/deploy/prod/2"
        );
        assert_eq!(
            full.with_fragment("a/b").to_string(),
            "github.com/org/repo/-/pkg.ocu.star/@r3/deploy/prod/2#a/b"
        );
        assert_eq!(
            full.package().to_string(),
            "github.com/org/repo/-/pkg.ocu.star"
        );
        assert_eq!(
            full.release_ref().to_string(),
            "github.com/org/repo/-/pkg.ocu.star/@r3"
        );
        assert_eq!(
            full.with_release("").to_string(),
            "github.com/org/repo/-/pkg.ocu.star/@/deploy/prod/2#output/x"
        );
        assert_eq!(
            full.with_subpath(Task, "build/1/status/complete")
                .to_string(),
            "github.com/org/repo/-/pkg.ocu.star/@r3/task/build/1/status/complete"
        );
        let env = parse("@/environment/prod#attributes");
        assert_eq!(env.release_ref().to_string(), "@");
        assert_eq!(
            env.with_subpath(Custom, "flag").to_string(),
            "@/custom/flag"
        );
        assert_eq!(env.package(), Ref::default());
    }

    #[test]
    fn serde_string_form() {
        let r = parse("github.com/org/repo/-/pkg.ocu.star/@r1/task/b#output/x");
        let json = serde_json::json!({ "ref": r });
        assert_eq!(
            json.to_string(),
            r#"{"ref":"github.com/org/repo/-/pkg.ocu.star/@r1/task/b#output/x"}"#
        );
        let back: Ref = serde_json::from_value(json["ref"].clone()).unwrap();
        assert_eq!(back, r);
        assert!(serde_json::from_str::<Ref>(r#""a\\b""#).is_err());
    }
}

mod store_keys {
    use super::*;

    #[test]
    fn storable_refs() {
        for s in [
            "github.com/org/repo/-/pkg.ocu.star/@r1",
            "github.com/org/repo/-/pkg.ocu.star/@r1/task/build/1/status/complete#output",
            "github.com/org/repo/-/pkg.ocu.star/@/deploy/prod",
            "github.com/org/repo/-/repo.ocu.star/@r1",
            "@/environment/prod",
            "@/custom/approval",
        ] {
            parse(s)
                .validate_storable()
                .unwrap_or_else(|e| panic!("{s:?}: {e}"));
        }
    }

    #[test]
    fn unstorable_refs() {
        for s in [
            "",
            ".",
            "./task/x",
            "./@/deploy/y",
            "//pkg/@r1",
            "pkg.ocu.star/@r1",
        ] {
            let e = parse(s).validate_storable().unwrap_err();
            assert!(e.to_string().contains("is relative"), "{s:?}: {e}");
        }
        let mut bad = parse("github.com/org/repo/-/pkg.ocu.star/@r1/task/x");
        bad.subpath = "@object.json".into();
        let e = bad.validate_storable().unwrap_err().to_string();
        assert!(e.contains("\"@object.json\" is reserved"), "{e}");
        bad.subpath = "../../x".into();
        let e = bad.validate_storable().unwrap_err().to_string();
        assert!(e.contains("\"..\" segment"), "{e}");
        // Not canonical: a subpath without a release.
        let e = parse("github.com/org/repo/-/pkg.ocu.star")
            .with_subpath(Task, "x")
            .validate_storable()
            .unwrap_err()
            .to_string();
        assert!(e.contains("not in canonical form"), "{e}");
    }

    #[test]
    fn keys() {
        for k in [
            "a",
            "a/b",
            "@/environment/prod",
            "github.com/o/r/-/p/@r1/task/x",
        ] {
            validate_key(k).unwrap_or_else(|e| panic!("{k:?}: {e}"));
        }
        let rows: &[(&str, &str)] = &[
            ("", "the key is empty"),
            ("a//b", "at offset 2: empty segment"),
            ("/a", "at offset 0: empty segment"),
            ("a/", "at offset 2: empty segment"),
            ("a/../b", "at offset 2: \"..\" segment is not allowed"),
            ("./a", "at offset 0: \".\" segment is not allowed"),
            ("a/\0", "at offset 2: control character '\\0'"),
            ("a\tb", "at offset 1: control character '\\t'"),
            ("a\\b", "at offset 1: backslash"),
            (
                "a/@object.json",
                "at offset 2: segment \"@object.json\" is reserved",
            ),
            ("a/@object.json/b", "segment \"@object.json\" is reserved"),
        ];
        for &(k, want) in rows {
            let e = validate_key(k).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidRef);
            let msg = e.to_string();
            assert!(
                msg.contains(want) && msg.contains(&format!("{k:?}")),
                "{k:?}: {msg}"
            );
        }
        insta::assert_snapshot!(
            validate_key("a/../b").unwrap_err().to_string(),
            @r#"invalid store key "a/../b" at offset 2: ".." segment is not allowed"#
        );
    }
}

mod globs {
    use super::*;

    const REPO: &str = "github.com/org/repo";
    const REL: &str = "github.com/org/repo/-/frontend/package.ocu.star/@r3";

    /// Realistic candidates: docs and links of a store.
    fn candidates() -> Vec<String> {
        let mut v: Vec<String> = [
            "",
            "/task/build",
            "/task/build/1",
            "/task/build/1/logs",
            "/task/build/1/status/pending",
            "/task/build/1/status/complete",
            "/deploy/staging",
            "/deploy/staging/2",
            "/deploy/staging/2/logs",
            "/deploy/staging/2/status/paused",
            "/custom/approval",
            "/custom/approval/extra",
            "/commit/abc123",
        ]
        .iter()
        .map(|s| format!("{REL}{s}"))
        .collect();
        v.extend(
            [
                "github.com/org/repo/-/frontend/package.ocu.star/@",
                "github.com/org/repo/-/frontend/package.ocu.star/@/deploy/staging",
                "github.com/org/repo/-/frontend/package.ocu.star/@v1.2",
                "github.com/org/repo/-/repo.ocu.star/@r1",
                "github.com/org/repo/-/backend/repo.ocu.star/@r1",
                "github.com/org/repo/-/@r1/commit/abc123",
                "github.com/org/other/-/pkg.ocu.star/@r1/commit/abc123",
                "@/environment/prod",
                "@/environment/prod/extra",
                "@/custom/flag",
                "@r1",
            ]
            .map(String::from),
        );
        v
    }

    /// Notes §2.3's internal globs, with the candidates each matches.
    fn table() -> Vec<(String, Vec<String>)> {
        let rel = |s: &str| format!("{REL}{s}");
        let cur = "github.com/org/repo/-/frontend/package.ocu.star/@";
        vec![
            (
                "**/@*".to_string(),
                vec![
                    rel(""),
                    cur.to_string(),
                    format!("{cur}v1.2"),
                    "github.com/org/repo/-/repo.ocu.star/@r1".into(),
                    "github.com/org/repo/-/backend/repo.ocu.star/@r1".into(),
                ],
            ),
            (
                "**/@*/{task,deploy}/*".into(),
                vec![
                    rel("/task/build"),
                    rel("/deploy/staging"),
                    format!("{cur}/deploy/staging"),
                ],
            ),
            (
                "**/@*/{task,deploy}/*/*".into(),
                vec![rel("/task/build/1"), rel("/deploy/staging/2")],
            ),
            (
                "**/@*/{task,deploy}/*/*/logs".into(),
                vec![rel("/task/build/1/logs"), rel("/deploy/staging/2/logs")],
            ),
            (
                "**/@*/deploy/*".into(),
                vec![rel("/deploy/staging"), format!("{cur}/deploy/staging")],
            ),
            ("**/@*/custom/*".into(), vec![rel("/custom/approval")]),
            ("@*/environment/*".into(), vec!["@/environment/prod".into()]),
            (
                "**/-/repo.ocu.star/@*".into(),
                vec!["github.com/org/repo/-/repo.ocu.star/@r1".into()],
            ),
            (
                format!("{REPO}/-/**/@*/commit/abc123"),
                // gobwas `**` between `/-/` and `/@` needs a non-empty package path.
                vec![rel("/commit/abc123")],
            ),
            (
                "**/@/deploy/*".into(),
                vec![format!("{cur}/deploy/staging")],
            ),
            (
                "**/@*/{task,deploy}/*/*/status/{pending,paused}".into(),
                vec![
                    rel("/task/build/1/status/pending"),
                    rel("/deploy/staging/2/status/paused"),
                ],
            ),
            (
                format!("{REL}/**"),
                candidates()
                    .into_iter()
                    .filter(|c| c.starts_with(&format!("{REL}/")))
                    .collect(),
            ),
            ("**".into(), candidates()),
        ]
    }

    #[test]
    fn internal_globs_match_exactly_the_expected_refs() {
        let all = candidates();
        for (pattern, want) in table() {
            let g = RefGlob::new(&pattern).unwrap();
            assert_eq!(g.as_str(), pattern);
            let got: Vec<&String> = all.iter().filter(|c| g.is_match(c)).collect();
            let want: Vec<&String> = all.iter().filter(|c| want.contains(c)).collect();
            assert_eq!(got, want, "glob {pattern:?}");
            for c in &got {
                assert!(
                    c.starts_with(g.literal_prefix()),
                    "{pattern:?} prefix vs {c:?}"
                );
            }
        }
    }

    #[test]
    fn literal_prefixes() {
        for (pattern, prefix) in [
            ("a/b/@*/task/*", "a/b/"),
            ("**/@*", ""),
            ("@/environment/*", "@/environment/"),
            ("@*/environment/*", ""),
            (
                "github.com/org/repo/-/**/@*/commit/abc",
                "github.com/org/repo/-/",
            ),
            (
                "github.com/org/repo/-/pkg.ocu.star/@r1",
                "github.com/org/repo/-/pkg.ocu.star/@r1",
            ),
            (
                "github.com/org/repo/-/pkg.ocu.star/@r?",
                "github.com/org/repo/-/pkg.ocu.star/",
            ),
            ("a/b/{c,d}/e", "a/b/"),
            ("a/[bc]/e", "a/"),
        ] {
            assert_eq!(
                RefGlob::new(pattern).unwrap().literal_prefix(),
                prefix,
                "{pattern:?}"
            );
        }
    }

    #[test]
    fn glob_set() {
        let set = RefGlobSet::new(&[
            format!("{REL}/task/*"),
            format!("{REL}/deploy/*"),
            "@*/environment/*".to_string(),
            format!("{REL}/task/*/*/status/*"),
        ])
        .unwrap();
        assert!(set.is_match(&format!("{REL}/task/build")));
        assert!(set.is_match(&format!("{REL}/deploy/staging")));
        assert!(set.is_match("@/environment/prod"));
        assert!(set.is_match(&format!("{REL}/task/build/1/status/complete")));
        assert!(!set.is_match(&format!("{REL}/task/build/1")));
        assert!(!set.is_match(&format!("{REL}/custom/approval")));
        assert_eq!(set.prefixes(), vec!["".to_string()]);
        let set = RefGlobSet::new(&[
            format!("{REL}/task/*"),
            format!("{REL}/deploy/*/*"),
            "@/environment/*".into(),
        ])
        .unwrap();
        assert_eq!(
            set.prefixes(),
            vec![
                "@/environment/".to_string(),
                format!("{REL}/deploy/"),
                format!("{REL}/task/")
            ]
        );
        assert_eq!(set.globs().len(), 3);
    }

    #[test]
    fn invalid_globs_name_the_pattern() {
        let e = RefGlob::new("a/{b,c").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidRef);
        insta::assert_snapshot!(e.to_string(), @r#"invalid glob "a/{b,c" at offset 2: unclosed alternatives '{': expected '}'"#);
        let e = RefGlob::new("a/[bc").unwrap_err();
        insta::assert_snapshot!(e.to_string(), @r#"invalid glob "a/[bc" at offset 2: unclosed character class '['"#);
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn path_seg() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9_é][a-zA-Z0-9_.=é -]{0,6}"
    }
    fn sub_seg() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9_+.-][a-zA-Z0-9_.@+-]{0,6}".prop_filter("no . or ..", |s| s != "." && s != "..")
    }
    fn frag_seg() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9_][a-zA-Z0-9_.@#=+-]{0,6}"
    }
    fn segs(
        seg: impl Strategy<Value = String>,
        min: usize,
        max: usize,
    ) -> impl Strategy<Value = String> {
        prop::collection::vec(seg, min..=max).prop_map(|v| v.join("/"))
    }
    fn repo() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            Just(".".to_string()),
            segs(path_seg(), 1, 3)
        ]
    }
    fn release() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            "r[0-9]{1,3}",
            "v[0-9]\\.[0-9]{1,2}(-rc[0-9])?",
            Just(".".to_string()),
            "[a-zA-Z0-9.=@+-]{1,8}",
        ]
    }
    fn sub() -> impl Strategy<Value = Option<(SubPathType, String)>> {
        prop::option::of((
            prop::sample::select(SubPathType::ALL.to_vec()),
            segs(sub_seg(), 0, 3),
        ))
    }
    fn fragment() -> impl Strategy<Value = String> {
        segs(frag_seg(), 0, 3)
    }

    fn build(
        repo: String,
        filename: String,
        global: bool,
        release: Option<String>,
        sub: Option<(SubPathType, String)>,
        fragment: String,
    ) -> Ref {
        Ref {
            repo,
            filename,
            global,
            release,
            subpath_type: sub.as_ref().map(|s| s.0),
            subpath: sub.map_or(String::new(), |s| s.1),
            fragment,
        }
    }

    /// Only canonical refs: what `Ref::parse` can produce.
    fn canonical_ref() -> impl Strategy<Value = Ref> {
        let global = (release(), sub(), fragment()).prop_map(|(rel, sub, frag)| {
            build(String::new(), String::new(), true, Some(rel), sub, frag)
        });
        // `./<type>/<subpath>`: no release.
        let this_package = (sub(), fragment())
            .prop_map(|(sub, frag)| build(String::new(), ".".into(), false, None, sub, frag));
        let package = (
            repo(),
            segs(path_seg(), 0, 3),
            prop::option::of(release()),
            sub(),
            fragment(),
        )
            .prop_map(|(repo, mut filename, release, sub, frag)| {
                if repo.is_empty() && filename.is_empty() {
                    // A bare ref needs a path (else it would read as global).
                    filename = ".".into();
                }
                // A subpath needs a release.
                let sub = if release.is_some() { sub } else { None };
                build(repo, filename, false, release, sub, frag)
            });
        prop_oneof![global, this_package, package]
    }

    proptest! {
        // Integration tests have no lib.rs for proptest's failure files; failures print the case.
        #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn canonical_refs_round_trip(r in canonical_ref()) {
            let s = r.to_string();
            let back = Ref::parse(&s).map_err(|e| TestCaseError::fail(format!("{s:?}: {e}")))?;
            prop_assert_eq!(&back, &r, "{:?}", s);
            prop_assert_eq!(back.to_string(), s);
        }

        #[test]
        fn whatever_parses_round_trips(s in "[a-z./@+#=\\-]{0,16}") {
            if let Ok(r) = Ref::parse(&s) {
                let canonical = r.to_string();
                let back = Ref::parse(&canonical).map_err(|e| TestCaseError::fail(format!("{s:?} -> {canonical:?}: {e}")))?;
                prop_assert_eq!(back, r, "{:?} -> {:?}", s, canonical);
            }
        }

        #[test]
        fn whatever_parses_from_ref_tokens_round_trips(
            s in prop::collection::vec(
                prop::sample::select(vec![
                    "task", "deploy", "call", "x", "r1", "/", "@", "+", "#", ".", "..", "-", "//", "./", "=",
                ]),
                0..10,
            )
            .prop_map(|v| v.concat())
        ) {
            if let Ok(r) = Ref::parse(&s) {
                let canonical = r.to_string();
                let back = Ref::parse(&canonical).map_err(|e| TestCaseError::fail(format!("{s:?} -> {canonical:?}: {e}")))?;
                prop_assert_eq!(back, r, "{:?} -> {:?}", s, canonical);
            }
        }

        #[test]
        fn parse_never_panics(s in any::<String>()) {
            let _ = Ref::parse(&s);
        }

        #[test]
        fn resolved_canonical_refs_are_absolute(r in canonical_ref()) {
            // A ref naming another repo is returned unchanged (even with `@.`): move it here.
            let r = if r.global || r.repo.is_empty() || r.repo == "." { r } else { Ref { repo: ".".into(), ..r } };
            let base = Ref::parse("github.com/org/repo/-/pkg.ocu.star/@r1").unwrap();
            let out = r.relative_to(&base);
            prop_assert!(!out.is_relative(), "{} -> {}", r, out);
        }

        #[test]
        fn parsed_refs_have_no_unsafe_segments(s in "[a-z./@#\\\\-]{0,12}") {
            if let Ok(r) = Ref::parse(&s) {
                let key = r.without_fragment().to_string();
                for seg in key.split('/').skip_while(|seg| *seg == ".") {
                    prop_assert!(seg != ".." && !seg.contains('\\'), "{:?} -> {:?}", s, key);
                }
            }
        }
    }
}

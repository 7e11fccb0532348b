//! The ref layer: documents, fragments, links, tags, globs, transactions.

use std::sync::Arc;

use ocuroot_core::ErrorKind;
use ocuroot_core::refs::Ref;
use ocuroot_core::store::{Expect, FsStore, MemoryStore, Op, RefStore, Store};
use serde_json::json;

const PKG: &str = "github.com/org/repo/-/pkg.ocu.star";

fn r(s: &str) -> Ref {
    Ref::parse(&s.replace("PKG", PKG)).unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// A memory and a directory ref store.
fn stores() -> Vec<(RefStore, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    vec![
        (RefStore::new(Arc::new(MemoryStore::new())), None),
        (
            RefStore::new(Arc::new(FsStore::open(dir.path(), "state").unwrap())),
            Some(dir),
        ),
    ]
}

fn set(store: &RefStore, at: &str, value: serde_json::Value) {
    store.update(|tx| tx.set(&r(at), value.clone())).unwrap();
}

fn link(store: &RefStore, at: &str, target: &str) {
    store.update(|tx| tx.link(&r(at), &r(target))).unwrap();
}

fn get(store: &RefStore, at: &str) -> Option<serde_json::Value> {
    store.get(&r(at)).unwrap()
}

#[test]
fn documents_and_fragments() {
    for (s, _d) in stores() {
        assert_eq!(get(&s, "PKG/@r1"), None);
        set(
            &s,
            "PKG/@r1/task/build",
            json!({"output": {"n": 3, "nested": {"x": "y"}, "nothing": null}, "list": [1]}),
        );
        assert_eq!(get(&s, "PKG/@r1/task/build#output/n"), Some(json!(3)));
        assert_eq!(
            get(&s, "PKG/@r1/task/build#output/nested/x"),
            Some(json!("y"))
        );
        assert_eq!(
            get(&s, "PKG/@r1/task/build#output/nested"),
            Some(json!({"x": "y"}))
        );
        assert_eq!(get(&s, "PKG/@r1/task/build#output/missing"), None);
        assert_eq!(
            get(&s, "PKG/@r1/task/build#output/nothing"),
            None,
            "null counts as missing"
        );
        assert_eq!(get(&s, "PKG/@r1/task/build#output/n/deeper"), None);
        assert_eq!(
            get(&s, "PKG/@r1/task/build#list/0"),
            None,
            "no array indexes"
        );
        assert!(s.exists(&r("PKG/@r1/task/build")).unwrap());
        assert!(!s.exists(&r("PKG/@r1/task/test")).unwrap());
        assert_eq!(
            s.get_str(&format!("{PKG}/@r1/task/build#output/n"))
                .unwrap(),
            Some(json!(3))
        );
        // The stored envelope is the original's.
        let raw = s
            .store()
            .get(&format!("{PKG}/@r1/task/build"))
            .unwrap()
            .unwrap();
        let env: serde_json::Value = serde_json::from_slice(&raw.value).unwrap();
        assert_eq!(env["kind"], "ref");
        assert_eq!(env["body"]["output"]["n"], 3);
        // Intermediate paths are not documents.
        assert_eq!(get(&s, "PKG/@r1"), None);
        // Writing or deleting a fragment is refused.
        let e = s
            .update(|tx| tx.set(&r("PKG/@r1/task/build#output"), json!(1)))
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidRef, "{e}");
        assert!(
            s.update(|tx| tx.delete(&r("PKG/@r1/task/build#output")))
                .is_err()
        );
        // Delete.
        s.update(|tx| tx.delete(&r("PKG/@r1/task/build"))).unwrap();
        assert_eq!(get(&s, "PKG/@r1/task/build"), None);
        s.update(|tx| tx.delete(&r("PKG/@r1/task/build"))).unwrap();
    }
}

#[test]
fn reads_documents_written_by_the_original() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FsStore::open(dir.path(), "state").unwrap();
    let key = format!("{PKG}/@r1/deploy/staging");
    let path = fs.object_path(&key).unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        &path,
        "{\n  \"kind\": \"ref\",\n  \"body_type\": \"models.Work\",\n  \"links\": [\n    \"x/@/deploy/staging\"\n  ],\n  \"body\": {\n    \"output\": {\"host\": \"h\"}\n  }\n}",
    )
    .unwrap();
    let link_path = fs.object_path(&format!("{PKG}/@/deploy/staging")).unwrap();
    std::fs::create_dir_all(link_path.parent().unwrap()).unwrap();
    std::fs::write(
        &link_path,
        format!("{{\n  \"kind\": \"link\",\n  \"body\": \"{key}\"\n}}"),
    )
    .unwrap();
    let s = RefStore::new(Arc::new(fs));
    assert_eq!(
        get(&s, "PKG/@/deploy/staging#output/host"),
        Some(json!("h"))
    );
    // A corrupt document is a clear error naming it.
    std::fs::write(&path, "{\"kind\": \"ref\", \"body\": ").unwrap();
    let e = s.get(&r("PKG/@r1/deploy/staging")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Store);
    assert!(e.to_string().contains(&key), "{e}");
}

#[test]
fn links_on_prefixes() {
    for (s, _d) in stores() {
        set(&s, "PKG/@r1/deploy/staging", json!({"output": {"x": 1}}));
        set(&s, "PKG/@r1/deploy/staging/1/status/complete", json!({}));
        set(&s, "PKG/@r2/deploy/staging", json!({"output": {"x": 2}}));
        link(&s, "PKG/@/deploy/staging", "PKG/@r1/deploy/staging");
        assert_eq!(get(&s, "PKG/@/deploy/staging#output/x"), Some(json!(1)));
        assert_eq!(
            get(&s, "PKG/@/deploy/staging/1/status/complete"),
            Some(json!({}))
        );
        assert_eq!(
            s.resolve(&r("PKG/@/deploy/staging/1#output")).unwrap(),
            r("PKG/@r1/deploy/staging/1#output")
        );
        assert_eq!(
            s.resolve(&r("PKG/@r2/deploy/staging")).unwrap(),
            r("PKG/@r2/deploy/staging")
        );
        assert_eq!(
            s.is_link(&r("PKG/@/deploy/staging")).unwrap(),
            Some(r("PKG/@r1/deploy/staging"))
        );
        assert_eq!(s.is_link(&r("PKG/@/deploy/staging/1")).unwrap(), None);
        assert_eq!(s.is_link(&r("PKG/@r1/deploy/staging")).unwrap(), None);
        // Relinking moves it.
        link(&s, "PKG/@/deploy/staging", "PKG/@r2/deploy/staging");
        assert_eq!(get(&s, "PKG/@/deploy/staging#output/x"), Some(json!(2)));
        assert_eq!(get(&s, "PKG/@/deploy/staging/1/status/complete"), None);
        // Linking to the same target again is a no-op.
        link(&s, "PKG/@/deploy/staging", "PKG/@r2/deploy/staging");
        // Setting through a link writes the target.
        set(&s, "PKG/@/deploy/staging", json!({"output": {"x": 22}}));
        assert_eq!(get(&s, "PKG/@r2/deploy/staging#output/x"), Some(json!(22)));
        // Unlink removes the link, not the target.
        s.update(|tx| tx.unlink(&r("PKG/@/deploy/staging")))
            .unwrap();
        assert_eq!(get(&s, "PKG/@/deploy/staging"), None);
        assert_eq!(get(&s, "PKG/@r2/deploy/staging#output/x"), Some(json!(22)));
        s.update(|tx| tx.unlink(&r("PKG/@/deploy/staging")))
            .unwrap();
    }
}

#[test]
fn tags_and_deeper_refs() {
    for (s, _d) in stores() {
        set(&s, "PKG/@r1", json!({"commit": "abc"}));
        set(&s, "PKG/@r1/custom/x", json!({"v": "r1"}));
        link(&s, "PKG/@v1", "PKG/@r1");
        assert_eq!(get(&s, "PKG/@v1#commit"), Some(json!("abc")));
        assert_eq!(get(&s, "PKG/@v1/custom/x#v"), Some(json!("r1")));
        // Writing under a tag writes the release.
        set(&s, "PKG/@v1/custom/y", json!(true));
        assert_eq!(get(&s, "PKG/@r1/custom/y"), Some(json!(true)));
        // The deepest link wins, once; links to links are not followed.
        set(&s, "PKG/@r2/custom/x", json!({"v": "r2"}));
        link(&s, "PKG/@v1/custom/x", "PKG/@r2/custom/x");
        assert_eq!(get(&s, "PKG/@v1/custom/x#v"), Some(json!("r2")));
        link(&s, "PKG/@v2", "PKG/@v1");
        let e = s.get(&r("PKG/@v2")).unwrap_err();
        assert!(e.to_string().contains("link"), "{e}");
        assert_eq!(
            s.resolve(&r("PKG/@v2/custom/z")).unwrap(),
            r("PKG/@v1/custom/z")
        );
        // Deleting through a tag deletes the target document.
        s.update(|tx| tx.delete(&r("PKG/@v1/custom/y"))).unwrap();
        assert_eq!(get(&s, "PKG/@r1/custom/y"), None);
    }
}

#[test]
fn a_link_cannot_replace_a_document() {
    for (s, _d) in stores() {
        set(&s, "PKG/@/custom/credential", json!({"real": "doc"}));
        set(&s, "PKG/@r1/custom/credential", json!({}));
        let e = s
            .update(|tx| {
                tx.link(
                    &r("PKG/@/custom/credential"),
                    &r("PKG/@r1/custom/credential"),
                )
            })
            .unwrap_err();
        assert!(e.to_string().contains("existing ref is not a link"), "{e}");
        assert_eq!(
            get(&s, "PKG/@/custom/credential"),
            Some(json!({"real": "doc"}))
        );
        let e = s
            .update(|tx| tx.unlink(&r("PKG/@/custom/credential")))
            .unwrap_err();
        assert!(e.to_string().contains("not a link"), "{e}");
        // Links need absolute refs at both ends.
        assert!(s.update(|tx| tx.link(&r("PKG/@v1"), &r("./@r1"))).is_err());
        assert!(
            s.update(|tx| tx.link(&r("PKG/@v1"), &r("PKG/@r1#x")))
                .is_err()
        );
    }
}

#[test]
fn matching_globs() {
    for (s, _d) in stores() {
        let other = "github.com/org/repo/-/other/pkg.ocu.star";
        set(&s, "PKG/@r1", json!({}));
        set(&s, "PKG/@r1/task/build/1", json!({}));
        set(&s, "PKG/@r1/task/build/1/status/complete", json!({}));
        set(&s, "PKG/@r1/deploy/prod/1/status/pending", json!({}));
        set(&s, "PKG/@r1/deploy/prod/2/status/paused", json!({}));
        set(
            &s,
            &format!("{other}/@r3/task/t/1/status/pending"),
            json!({}),
        );
        set(&s, "@/environment/prod", json!({"name": "prod"}));
        set(&s, "@/environment/staging", json!({"name": "staging"}));
        link(&s, "PKG/@/deploy/prod", "PKG/@r1/deploy/prod");
        link(&s, "PKG/@v1", "PKG/@r1");

        let outstanding = s
            .match_globs(&["**/@*/{task,deploy}/*/*/status/{pending,paused}"])
            .unwrap();
        assert_eq!(
            outstanding,
            vec![
                format!("{other}/@r3/task/t/1/status/pending"),
                format!("{PKG}/@r1/deploy/prod/1/status/pending"),
                format!("{PKG}/@r1/deploy/prod/2/status/paused"),
            ]
        );
        // Releases: documents and links, not intermediate paths.
        assert_eq!(
            s.match_globs(&["**/@*"]).unwrap(),
            vec![format!("{PKG}/@r1"), format!("{PKG}/@v1")]
        );
        assert_eq!(
            s.match_globs(&["**/@/deploy/*"]).unwrap(),
            vec![format!("{PKG}/@/deploy/prod")]
        );
        assert_eq!(
            s.match_globs(&["@*/environment/*"]).unwrap(),
            vec!["@/environment/prod", "@/environment/staging"]
        );
        // Several globs are OR-ed, results sorted and de-duplicated.
        let both = s
            .match_globs(&[
                "@/environment/*".to_string(),
                "@/environment/prod".to_string(),
                format!("{PKG}/@r1/task/*/*"),
            ])
            .unwrap();
        assert_eq!(
            both,
            vec![
                "@/environment/prod".to_string(),
                "@/environment/staging".to_string(),
                format!("{PKG}/@r1/task/build/1"),
            ]
        );
        assert!(s.match_globs(&["nothing/**"]).unwrap().is_empty());
        assert!(s.match_globs(&["[unclosed"]).is_err());
        let none: [&str; 0] = [];
        assert!(s.match_globs(&none).unwrap().is_empty());
    }
}

#[test]
fn transactions_read_their_writes() {
    for (s, _d) in stores() {
        set(&s, "PKG/@r1/deploy/prod", json!({"n": 1}));
        s.update(|tx| {
            tx.set(&r("PKG/@r2/deploy/prod"), json!({"n": 2}))?;
            assert_eq!(tx.get(&r("PKG/@r2/deploy/prod#n"))?, Some(json!(2)));
            tx.link(&r("PKG/@/deploy/prod"), &r("PKG/@r2/deploy/prod"))?;
            assert_eq!(tx.get(&r("PKG/@/deploy/prod#n"))?, Some(json!(2)));
            assert_eq!(
                tx.resolve(&r("PKG/@/deploy/prod"))?,
                r("PKG/@r2/deploy/prod")
            );
            assert_eq!(
                tx.is_link(&r("PKG/@/deploy/prod"))?,
                Some(r("PKG/@r2/deploy/prod"))
            );
            tx.delete(&r("PKG/@r1/deploy/prod"))?;
            assert_eq!(tx.get(&r("PKG/@r1/deploy/prod"))?, None);
            assert_eq!(
                tx.match_globs(&["**/deploy/prod"])?,
                vec![
                    format!("{PKG}/@/deploy/prod"),
                    format!("{PKG}/@r2/deploy/prod")
                ]
            );
            // Nothing is visible outside until commit.
            assert_eq!(s.get(&r("PKG/@r2/deploy/prod"))?, None);
            assert!(s.get(&r("PKG/@r1/deploy/prod"))?.is_some());
            Ok(())
        })
        .unwrap();
        assert_eq!(get(&s, "PKG/@/deploy/prod#n"), Some(json!(2)));
        assert_eq!(get(&s, "PKG/@r1/deploy/prod"), None);
        // A dropped transaction writes nothing.
        let mut tx = s.transaction();
        tx.set(&r("PKG/@r9"), json!(9)).unwrap();
        assert!(!tx.is_empty());
        drop(tx);
        assert_eq!(get(&s, "PKG/@r9"), None);
    }
}

#[test]
fn transactions_conflict_on_concurrent_changes() {
    for (s, _d) in stores() {
        set(&s, "PKG/@r1/custom/counter", json!({"n": 1}));
        let mut tx = s.transaction();
        let n = tx.get(&r("PKG/@r1/custom/counter#n")).unwrap().unwrap();
        tx.set(
            &r("PKG/@r1/custom/counter"),
            json!({"n": n.as_i64().unwrap() + 1}),
        )
        .unwrap();
        tx.set(&r("PKG/@r1/custom/side"), json!("effect")).unwrap();
        // Someone else writes first.
        set(&s, "PKG/@r1/custom/counter", json!({"n": 10}));
        let e = tx.commit().unwrap_err();
        assert!(e.is_conflict(), "{e}");
        assert!(e.to_string().contains("custom/counter"), "{e}");
        assert_eq!(get(&s, "PKG/@r1/custom/counter#n"), Some(json!(10)));
        assert_eq!(
            get(&s, "PKG/@r1/custom/side"),
            None,
            "nothing of the batch was written"
        );

        // A read of a different key also conflicts (the read set is checked).
        let mut tx = s.transaction();
        let n = tx.get(&r("PKG/@r1/custom/counter#n")).unwrap().unwrap();
        tx.set(&r("PKG/@r1/custom/copy"), n).unwrap();
        set(&s, "PKG/@r1/custom/counter", json!({"n": 11}));
        assert!(tx.commit().unwrap_err().is_conflict());

        // A link appearing on a prefix of something read also conflicts.
        let mut tx = s.transaction();
        assert_eq!(tx.get(&r("PKG/@v1/custom/counter")).unwrap(), None);
        tx.set(&r("PKG/@r1/custom/seen"), json!(false)).unwrap();
        link(&s, "PKG/@v1", "PKG/@r1");
        assert!(tx.commit().unwrap_err().is_conflict());

        // A read-only transaction succeeds only if its reads are still current.
        let mut tx = s.transaction();
        tx.get(&r("PKG/@r1/custom/counter")).unwrap();
        tx.commit().unwrap();
        let mut tx = s.transaction();
        tx.get(&r("PKG/@r1/custom/counter")).unwrap();
        set(&s, "PKG/@r1/custom/counter", json!({"n": 12}));
        assert!(tx.commit().unwrap_err().is_conflict());
    }
}

#[test]
fn create_claims_a_name_once() {
    for (s, _d) in stores() {
        s.update(|tx| tx.create(&r("PKG/@r1"), json!({"by": "a"})))
            .unwrap();
        // Known to exist: fails immediately.
        let mut tx = s.transaction();
        tx.get(&r("PKG/@r1")).unwrap();
        assert!(
            tx.create(&r("PKG/@r1"), json!({"by": "b"}))
                .unwrap_err()
                .is_conflict()
        );
        // Created by someone else meanwhile: fails at commit.
        let mut tx = s.transaction();
        tx.create(&r("PKG/@r5"), json!({"by": "b"})).unwrap();
        tx.create(&r("PKG/@r5/commit/abc"), json!({})).unwrap();
        s.update(|tx| tx.create(&r("PKG/@r5"), json!({"by": "a"})))
            .unwrap();
        let e = tx.commit().unwrap_err();
        assert!(e.is_conflict(), "{e}");
        assert_eq!(get(&s, "PKG/@r5#by"), Some(json!("a")));
        assert_eq!(get(&s, "PKG/@r5/commit/abc"), None);
        // Raced: both see r2 free, one wins.
        let mut a = s.transaction();
        let mut b = s.transaction();
        assert_eq!(a.get(&r("PKG/@r2")).unwrap(), None);
        assert_eq!(b.get(&r("PKG/@r2")).unwrap(), None);
        a.create(&r("PKG/@r2"), json!({"by": "a"})).unwrap();
        b.create(&r("PKG/@r2"), json!({"by": "b"})).unwrap();
        a.commit().unwrap();
        assert!(b.commit().unwrap_err().is_conflict());
        assert_eq!(get(&s, "PKG/@r2#by"), Some(json!("a")));
    }
}

#[test]
fn update_retries_conflicts_and_allocates_numbers() {
    for (s, _d) in stores() {
        let threads = 4;
        let per_thread = 6;
        std::thread::scope(|scope| {
            for t in 0..threads {
                let s = s.clone();
                scope.spawn(move || {
                    for _ in 0..per_thread {
                        // Allocate the next release number, as `release new` does.
                        let mut attempts = 0;
                        loop {
                            let res = s.update(|tx| {
                                let taken = tx.match_globs(&[format!("{PKG}/@r*")])?;
                                let next = taken.len() + 1;
                                tx.create(&r(&format!("PKG/@r{next}")), json!({"by": t}))?;
                                Ok(next)
                            });
                            match res {
                                Ok(_) => break,
                                Err(e) if e.is_conflict() && attempts < 20 => attempts += 1,
                                Err(e) => panic!("{e}"),
                            }
                        }
                    }
                });
            }
        });
        let releases = s.match_globs(&[format!("{PKG}/@r*")]).unwrap();
        assert_eq!(releases.len(), threads * per_thread);
        let mut numbers: Vec<usize> = releases
            .iter()
            .map(|k| k.rsplit("@r").next().unwrap().parse().unwrap())
            .collect();
        numbers.sort();
        assert_eq!(numbers, (1..=threads * per_thread).collect::<Vec<_>>());
    }
}

#[test]
fn update_gives_up_on_persistent_conflicts() {
    let s = RefStore::new(Arc::new(MemoryStore::new()));
    let mut calls = 0;
    let e = s
        .update(|tx| {
            calls += 1;
            tx.get(&r("PKG/@r1"))?;
            // Someone always writes in between.
            s.store().commit(&[Op::put(
                format!("{PKG}/@r1"),
                format!("{{\"kind\":\"ref\",\"body\":{calls}}}").into_bytes(),
                Expect::Any,
            )])?;
            tx.set(&r("PKG/@r1"), json!(0))
        })
        .unwrap_err();
    assert!(e.is_conflict());
    assert_eq!(calls, 16);
    // Other errors are returned at once.
    let mut calls = 0;
    let e = s
        .update(|_tx| -> ocuroot_core::Result<()> {
            calls += 1;
            Err(ocuroot_core::Error::validation("no"))
        })
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation);
    assert_eq!(calls, 1);
}

#[test]
fn relative_and_global_refs() {
    for (s, _d) in stores() {
        set(&s, "@/custom/approval", json!({"ok": true}));
        assert_eq!(get(&s, "@/custom/approval#ok"), Some(json!(true)));
        assert_eq!(s.store().list("@/").unwrap(), vec!["@/custom/approval"]);
        let e = s.get(&r("./task/build")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidRef);
        assert!(e.to_string().contains("task/build"), "{e}");
    }
}

#[test]
fn links_only_live_at_release_and_work_refs() {
    let s = RefStore::new(Arc::new(ocuroot_core::store::MemoryStore::new()));
    for at in [
        "PKG/@v1",
        "PKG/@/task/build",
        "PKG/@v1/custom/x",
        "@/custom/x",
    ] {
        s.update(|tx| tx.link(&r(at), &r("PKG/@r1/task/other")))
            .unwrap_or_else(|e| panic!("{at}: {e}"));
    }
    // Nothing in a release named by id: `@r1` is a release, not a tag.
    for at in [
        "PKG/@r1/custom/x",
        "PKG/@r1/task/build",
        "PKG/@r1/task/build/1",
        "PKG/@r1/task/build/1/status/pending",
    ] {
        let err = s
            .update(|tx| tx.link(&r(at), &r("PKG/@r1/task/other")))
            .unwrap_err();
        assert!(err.message().contains("links can only be"), "{at}: {err}");
    }
}

#[test]
fn prefetch_reads_everything_in_one_call() {
    let counting = Arc::new(super::common::CountingStore::default());
    // What reaches the backend: reads and listings.
    let calls = || counting.reads() + counting.lists();
    let s = RefStore::new(counting.clone());
    set(&s, "PKG/@r1/task/a", json!({"output": 1}));
    set(&s, "PKG/@r1/task/b", json!({"output": 2}));
    link(&s, "PKG/@/task/a", "PKG/@r1/task/a");
    let refs = [
        r("PKG/@r1/task/a"),
        r("PKG/@r1/task/b"),
        r("PKG/@/task/a"),
        r("PKG/@r1/task/c"),
    ];
    let mut tx = s.transaction();
    let before = calls();
    tx.prefetch(&refs).unwrap();
    assert_eq!(calls(), before + 1);
    assert_eq!(tx.get(&refs[0]).unwrap(), Some(json!({"output": 1})));
    assert_eq!(tx.get(&refs[1]).unwrap(), Some(json!({"output": 2})));
    assert!(!tx.exists(&refs[3]).unwrap());
    // Through the link: the target was prefetched too.
    assert_eq!(tx.get(&refs[2]).unwrap(), Some(json!({"output": 1})));
    assert_eq!(calls(), before + 1);
}

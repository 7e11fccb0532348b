//! `ocuroot find-deploys <start> <end>`: the deployments whose release was
//! made at a commit between the two, newest commit first, in a repository
//! where packages were released at different commits.

use super::support::{Repo, ocu};

const ENVIRONMENTS: &str = r#"ocuroot("0.3.0")

register_environment(environment("staging", {"type": "staging"}))
register_environment(environment("production", {"type": "prod"}))
"#;

/// A package deploying to every environment, its `marker` changing the
/// file so that each commit has something to release.
fn package(marker: &str) -> String {
    format!(
        r#"ocuroot("0.3.0")

# {marker}
def up(environment):
    return done()

def down(environment):
    return done()

phase("deploy", tasks=[deploy(up=up, down=down, environment=e) for e in environments()])
"#
    )
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

#[test]
fn deploys_of_releases_made_between_two_commits_newest_first() {
    let repo = Repo::new();
    repo.write(
        "repo.ocu.star",
        "ocuroot(\"0.3.0\")\nrepo_alias(\"shop\")\nstore.set(store.fs(\".store\"))\n",
    );
    repo.write(".gitignore", ".store/\n");
    repo.write("environments.ocu.star", ENVIRONMENTS);
    repo.write("api.ocu.star", &package("api 1"));
    repo.write("web.ocu.star", &package("web 1"));
    let c1 = repo.commit("first").to_string();
    ocu(&repo, &["release", "new", "environments.ocu.star"]).success();
    ocu(&repo, &["release", "new", "api.ocu.star"]).success();
    ocu(&repo, &["release", "new", "web.ocu.star"]).success();

    repo.write("web.ocu.star", &package("web 2"));
    let c2 = repo.commit("second").to_string();
    ocu(&repo, &["release", "new", "web.ocu.star"]).success();

    repo.write("notes.txt", "nothing released here\n");
    let c3 = repo.commit("third").to_string();

    // Everything from the first commit: web's deployments are its second
    // release's now (the links follow what is deployed), made at c2.
    let out = ocu(&repo, &["find-deploys", &c1, &c3]).success();
    assert_eq!(
        lines(&out.stdout),
        [
            "shop/-/web.ocu.star/@/deploy/production",
            "shop/-/web.ocu.star/@/deploy/staging",
            "shop/-/api.ocu.star/@/deploy/production",
            "shop/-/api.ocu.star/@/deploy/staging",
        ],
        "{}",
        out.stderr
    );
    // Either order, and any revision git takes.
    let reversed = ocu(&repo, &["find-deploys", &c3, &c1]).success();
    assert_eq!(reversed.stdout, out.stdout);
    let short = ocu(&repo, &["find-deploys", &c2[..10], "HEAD"]).success();
    assert_eq!(
        lines(&short.stdout),
        [
            "shop/-/web.ocu.star/@/deploy/production",
            "shop/-/web.ocu.star/@/deploy/staging",
        ]
    );
    // Both ends are included: the range of the first commit alone.
    let first = ocu(&repo, &["find-deploys", &c1, &c1]).success();
    assert_eq!(
        lines(&first.stdout),
        [
            "shop/-/api.ocu.star/@/deploy/production",
            "shop/-/api.ocu.star/@/deploy/staging",
        ]
    );
    // A range with no release: nothing, and success.
    let none = ocu(&repo, &["find-deploys", "HEAD", "HEAD"]).success();
    assert_eq!(none.stdout, "");

    // A commit the repository lacks: exit 1, as the original's errors.
    let missing = "0123456789abcdef0123456789abcdef01234567";
    let err = ocu(&repo, &["find-deploys", missing, &c3]).failure();
    assert!(
        err.stderr
            .starts_with(&format!("Error: failed to search for commit {missing}: ")),
        "{}",
        err.stderr
    );
    assert!(err.stderr.contains("there is no commit"), "{}", err.stderr);
    assert_eq!(err.stdout, "");
    // Two commits are required.
    let usage = ocu(&repo, &["find-deploys", &c1]);
    assert_eq!(usage.code, 2, "{}", usage.stderr);
}

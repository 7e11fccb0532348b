//! Commit messages that say what a batch did (`release r3 created`,
//! `run .../deploy/prod/1 running`), read from the refs it writes.

use crate::refs::{Ref, SubPathType, is_release_id};
use crate::store::{Expect, Op};

/// At most this many written keys are listed in a message's body.
const BODY_KEYS: usize = 40;

/// The message of the commit of `ops` in the store tagged `tag`: a subject
/// naming the main effect, then the store and every key written (`+`) or
/// removed (`-`).
pub(super) fn describe(tag: &str, ops: &[Op]) -> String {
    let subject = subject(ops);
    let mut body = format!("{subject}\n\nstore: {tag}\n");
    let written: Vec<&Op> = ops
        .iter()
        .filter(|op| !matches!(op, Op::Check { .. }))
        .collect();
    for op in written.iter().take(BODY_KEYS) {
        let sign = if matches!(op, Op::Delete { .. }) {
            '-'
        } else {
            '+'
        };
        body.push_str(&format!("{sign} {}\n", op.key()));
    }
    if written.len() > BODY_KEYS {
        body.push_str(&format!("... and {} more\n", written.len() - BODY_KEYS));
    }
    body
}

fn subject(ops: &[Op]) -> String {
    let mut runs: Vec<String> = Vec::new();
    let mut releases: Vec<String> = Vec::new();
    let mut other: Vec<String> = Vec::new();
    for op in ops {
        let Ok(r) = Ref::parse(op.key()) else {
            continue;
        };
        let put = matches!(op, Op::Put { .. });
        match op {
            Op::Put { .. } | Op::Delete { .. } => {}
            Op::Check { .. } => continue,
        }
        // <release>/<task|deploy>/<name>/<run>/status/<status>
        let parts: Vec<&str> = r.subpath.split('/').collect();
        if put
            && matches!(
                r.subpath_type,
                Some(SubPathType::Task | SubPathType::Deploy)
            )
            && parts.len() == 4
            && parts[2] == "status"
        {
            let run = Ref {
                subpath: format!("{}/{}", parts[0], parts[1]),
                ..r.clone()
            };
            runs.push(format!("run {run} {}", parts[3]));
            continue;
        }
        if put
            && op.expect() == Expect::Absent
            && r.subpath_type.is_none()
            && r.release.as_deref().is_some_and(is_release_id)
        {
            releases.push(format!(
                "release {} created ({})",
                r.release.as_deref().unwrap_or_default(),
                r.package()
            ));
            continue;
        }
        if r.subpath_type == Some(SubPathType::Environment) && r.is_global() {
            let verb = if put { "registered" } else { "removed" };
            other.push(format!("environment {} {verb}", r.subpath));
            continue;
        }
        if r.filename == crate::repo::REPO_CONFIG_FILE && r.subpath_type.is_none() {
            if let Some(commit) = &r.release {
                other.push(format!("repository {} recorded at {commit}", r.repo));
            }
            continue;
        }
    }
    let pick = |mut items: Vec<String>, what: &str| -> Option<String> {
        match items.len() {
            0 => None,
            1 => items.pop(),
            n => Some(format!("{n} {what}: {}", items.join(", "))),
        }
    };
    if let Some(s) = pick(releases, "releases created") {
        return s;
    }
    if let Some(s) = pick(runs, "runs") {
        return s;
    }
    if let Some(s) = pick(other, "changes") {
        return s;
    }
    let writes: Vec<&Op> = ops
        .iter()
        .filter(|op| !matches!(op, Op::Check { .. }))
        .collect();
    match writes.as_slice() {
        [Op::Delete { key, .. }] => format!("delete {key}"),
        [op] => format!("set {}", op.key()),
        ops => format!("update {} refs", ops.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_name_what_happened() {
        let rel = "repo/-/pkg.ocu.star/@r3";
        let ops = [Op::put(rel, b"{}".to_vec(), Expect::Absent)];
        assert_eq!(subject(&ops), "release r3 created (repo/-/pkg.ocu.star)");
        let ops = [
            Op::delete(format!("{rel}/deploy/prod/1/status/pending"), Expect::Any),
            Op::put(
                format!("{rel}/deploy/prod/1/status/running"),
                b"{}".to_vec(),
                Expect::Absent,
            ),
            Op::put(format!("{rel}/deploy/prod/1"), b"{}".to_vec(), Expect::Any),
        ];
        assert_eq!(
            subject(&ops),
            "run repo/-/pkg.ocu.star/@r3/deploy/prod/1 running"
        );
        let ops = [Op::put("@/environment/prod", b"{}".to_vec(), Expect::Any)];
        assert_eq!(subject(&ops), "environment prod registered");
        let ops = [Op::put(
            "repo/-/repo.ocu.star/@abc",
            b"{}".to_vec(),
            Expect::Absent,
        )];
        assert_eq!(subject(&ops), "repository repo recorded at abc");
        let ops = [Op::delete("repo/-/pkg.ocu.star/@/custom/x", Expect::Any)];
        assert_eq!(subject(&ops), "delete repo/-/pkg.ocu.star/@/custom/x");
        let message = describe("state", &ops);
        assert!(message.contains("store: state\n- repo/-/pkg.ocu.star/@/custom/x\n"));
    }
}

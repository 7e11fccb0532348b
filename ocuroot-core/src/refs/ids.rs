//! The names inside a release: [`ReleaseId`] (`r1`, `r2`, ...) and
//! [`WorkPath`] (`task/<name>`, `deploy/<environment>`).

use std::fmt;
use std::str::FromStr;

use super::{Ref, SubPathType};
use crate::{Error, Result};

/// A release id, `r<N>`: the N-th release of a package (from 1).
///
/// The release segment of a [`Ref`] may also be a tag (`@v1`), a commit
/// (repository records) or empty (`@`, the current release);
/// [`Ref::release_id`] is the id when it is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReleaseId(u64);

impl ReleaseId {
    /// The release numbered `n`.
    pub fn new(n: u64) -> ReleaseId {
        ReleaseId(n)
    }

    /// Its number.
    pub fn number(self) -> u64 {
        self.0
    }

    /// The id after this one.
    pub fn next(self) -> ReleaseId {
        ReleaseId(self.0 + 1)
    }

    /// `s` if it is a release id (`r` and digits).
    pub fn parse(s: &str) -> Option<ReleaseId> {
        if !super::is_release_id(s) {
            return None;
        }
        s[1..].parse().ok().map(ReleaseId)
    }
}

impl fmt::Display for ReleaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}", self.0)
    }
}

/// What a [`WorkPath`] names. Ordered as their names are (`deploy` first),
/// so paths sort as their text does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WorkKind {
    /// A deployment to an environment.
    Deploy,
    /// A task.
    Task,
}

/// Where a piece of work lives inside a release: `task/<name>` or
/// `deploy/<environment>`. Its JSON form is that text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkPath {
    kind: WorkKind,
    name: String,
}

impl WorkPath {
    /// `task/<name>`.
    pub fn task(name: impl Into<String>) -> WorkPath {
        WorkPath {
            kind: WorkKind::Task,
            name: name.into(),
        }
    }

    /// `deploy/<environment>`.
    pub fn deploy(environment: impl Into<String>) -> WorkPath {
        WorkPath {
            kind: WorkKind::Deploy,
            name: environment.into(),
        }
    }

    /// Task or deploy.
    pub fn kind(&self) -> WorkKind {
        self.kind
    }

    /// The task's name or the deployment's environment.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The subpath type of refs to it.
    pub fn subpath_type(&self) -> SubPathType {
        match self.kind {
            WorkKind::Task => SubPathType::Task,
            WorkKind::Deploy => SubPathType::Deploy,
        }
    }

    /// The work a ref is in (`<rel>/deploy/prod/2/...` is in `deploy/prod`),
    /// if it is in one.
    pub fn of_ref(r: &Ref) -> Option<WorkPath> {
        let name = r.subpath.split('/').next().filter(|n| !n.is_empty())?;
        match r.subpath_type? {
            SubPathType::Task => Some(WorkPath::task(name)),
            SubPathType::Deploy => Some(WorkPath::deploy(name)),
            _ => None,
        }
    }

    /// `<rel>/task/<name>` or `<rel>/deploy/<environment>`.
    pub fn in_release(&self, rel: &Ref) -> Ref {
        rel.with_subpath(self.subpath_type(), &self.name)
    }
}

impl fmt::Display for WorkPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            WorkKind::Task => "task",
            WorkKind::Deploy => "deploy",
        };
        write!(f, "{kind}/{}", self.name)
    }
}

impl PartialEq<str> for WorkPath {
    fn eq(&self, other: &str) -> bool {
        other.parse::<WorkPath>().is_ok_and(|p| p == *self)
    }
}

impl PartialEq<&str> for WorkPath {
    fn eq(&self, other: &&str) -> bool {
        *self == **other
    }
}

impl FromStr for WorkPath {
    type Err = Error;

    fn from_str(s: &str) -> Result<WorkPath> {
        let bad =
            || Error::invalid_ref(format!("{s:?} is not task/<name> or deploy/<environment>"));
        let (kind, name) = s.split_once('/').ok_or_else(bad)?;
        if name.is_empty() || name.contains('/') {
            return Err(bad());
        }
        match kind {
            "task" | "call" => Ok(WorkPath::task(name)),
            "deploy" => Ok(WorkPath::deploy(name)),
            _ => Err(bad()),
        }
    }
}

impl serde::Serialize for WorkPath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for WorkPath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_paths_read_write_and_sort_as_their_text() {
        let mut paths: Vec<WorkPath> = ["task/b", "deploy/prod", "task/a", "deploy/a"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        paths.sort();
        let text: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
        let mut sorted = text.clone();
        sorted.sort();
        assert_eq!(text, sorted);
        assert_eq!("call/x".parse::<WorkPath>().unwrap(), WorkPath::task("x"));
        for bad in ["task", "task/", "op/x", "task/a/b", ""] {
            assert!(bad.parse::<WorkPath>().is_err(), "{bad}");
        }
        let r = Ref::parse("repo/-/a.ocu.star/@r1/deploy/prod/2").unwrap();
        assert_eq!(WorkPath::of_ref(&r), Some(WorkPath::deploy("prod")));
        assert_eq!(
            WorkPath::task("build")
                .in_release(&r.release_ref())
                .to_string(),
            "repo/-/a.ocu.star/@r1/task/build"
        );
        assert_eq!(serde_json::to_value(WorkPath::task("b")).unwrap(), "task/b");
    }

    #[test]
    fn a_ref_equals_its_text() {
        let r = Ref::parse("a/-/b.ocu.star/@r1/task/x").unwrap();
        assert!(r == "a/-/b.ocu.star/@r1/task/x");
        assert!(r != "a/-/b.ocu.star/@r1/task/");
        assert!(r != "a/-/b.ocu.star/@r1/task/xy");
        assert!(r != *"");
        let text = String::from("a/-/b.ocu.star/@r1/task/x");
        assert!(r == text);
    }

    #[test]
    fn release_ids() {
        assert_eq!(ReleaseId::parse("r12"), Some(ReleaseId::new(12)));
        assert_eq!(ReleaseId::new(12).next().to_string(), "r13");
        for bad in ["r", "v1", "12", "r1a", ""] {
            assert_eq!(ReleaseId::parse(bad), None, "{bad}");
        }
    }
}

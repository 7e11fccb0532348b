//! What state records of a repository at a commit, and of a commit a
//! release was made at.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::refs::Ref;
use crate::{Error, Result};

/// `<repo>/-/repo.ocu.star/@<commit>`: what is known of a repository at a
/// commit, written by `release new` (with the first release at the commit),
/// so that cascades started elsewhere can clone the repository and
/// `work trigger` can call its trigger.
///
/// The JSON form is the original's: `{"Remotes": [...], "remotes": [...],
/// "source": "<base64>"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoRecord {
    /// The URLs of the repository's git remotes, `origin` first.
    #[serde(rename = "Remotes", default)]
    pub git_remotes: Vec<String>,
    /// The URLs its `repo.ocu.star` declares with `remotes([...])`.
    #[serde(default)]
    pub remotes: Vec<String>,
    /// The source of its `repo.ocu.star`, base64 (empty for none).
    #[serde(default)]
    pub source: String,
}

impl RepoRecord {
    /// A record of these remotes and this `repo.ocu.star` source.
    pub fn new(git_remotes: Vec<String>, remotes: Vec<String>, source: &str) -> RepoRecord {
        RepoRecord {
            git_remotes,
            remotes,
            source: base64::engine::general_purpose::STANDARD.encode(source),
        }
    }

    /// Read the record stored at `r`.
    pub fn from_doc(r: &Ref, doc: serde_json::Value) -> Result<RepoRecord> {
        super::parse_doc(r, "repository record", doc)
    }

    /// The source of `repo.ocu.star`, if one was recorded.
    pub fn source(&self) -> Result<Option<String>> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&self.source)
            .map_err(|e| Error::store(format!("recorded repo.ocu.star is not base64: {e}")))?;
        let source = String::from_utf8(bytes)
            .map_err(|_| Error::store("recorded repo.ocu.star is not UTF-8"))?;
        Ok(Some(source).filter(|s| !s.is_empty()))
    }

    /// The URLs to clone the repository from: its `remotes()`, else its git
    /// remotes.
    pub fn clone_urls(&self) -> &[String] {
        if self.remotes.is_empty() {
            &self.git_remotes
        } else {
            &self.remotes
        }
    }
}

/// `<pkg>/@<release>/commit/<commit>`: the commit a release was made at, and
/// when.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitRecord {
    /// When the release was created.
    #[serde(
        default,
        deserialize_with = "super::time::optional::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub time: Option<super::Timestamp>,
}

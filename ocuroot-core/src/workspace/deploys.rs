//! `find-deploys`: which deployments carry the changes between two commits.

use super::Workspace;
use crate::model::FoundDeploy;
use crate::{Error, Result, engine, repo};

impl Workspace {
    /// `find-deploys <start> <end>`: the deployments of this repository's
    /// packages (`<repo>/-/**/@/deploy/*`) whose release was made at one
    /// of the commits from `start` to `end`, both included (see
    /// [`repo::commits_between`]: either may be the older, and any
    /// revision git takes names one). Ordered by commit, newest first, then
    /// by ref. A commit the repository lacks is
    /// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound); nothing is
    /// fetched.
    pub fn find_deploys(&self, start: &str, end: &str) -> Result<Vec<FoundDeploy>> {
        let git_root = self.info.git_root.as_ref().ok_or_else(|| {
            Error::config(format!(
                "{} is not in a git repository: deployments are found by the commits of one",
                self.info.root.display()
            ))
        })?;
        let commits = repo::commits_between(git_root, start, end)
            .map_err(|e| e.context(format!("failed to search for commit {start}")))?;
        let deploys = engine::releases::deployments(&self.engine(), &self.name)?;
        let mut out = Vec::new();
        for commit in &commits {
            out.extend(deploys.iter().filter(|d| &d.commit == commit).cloned());
        }
        Ok(out)
    }
}

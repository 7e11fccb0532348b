//! The dependency graph across packages, of the latest release of every
//! package in state.

use super::EngineContext;
use super::releases::{latest_releases, load_release};
use crate::Result;
use crate::model::{DependencyGraph, Package};
use crate::refs::Ref;

/// The dependency graph of the latest release of every package in state.
pub fn graph(ctx: &EngineContext) -> Result<DependencyGraph> {
    graph_with(ctx, None)
}

/// The dependency graph of the latest release of every package in state,
/// with `replace`'s package (about to be released) in place of its latest
/// release.
pub(crate) fn graph_with(
    ctx: &EngineContext,
    replace: Option<(&Ref, &Package)>,
) -> Result<DependencyGraph> {
    let mut g = DependencyGraph::new();
    for rel in latest_releases(ctx)? {
        if replace.is_some_and(|(p, _)| p.package() == rel.package()) {
            continue;
        }
        let (rel, doc) = load_release(ctx, &rel)?;
        g.add_package(&rel.package(), &doc.package);
    }
    if let Some((p, package)) = replace {
        g.add_package(&p.package(), package);
    }
    Ok(g)
}

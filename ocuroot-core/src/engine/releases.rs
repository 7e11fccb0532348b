//! Finding and reading releases: the environments in state, evaluating a
//! release's file, release ids, the releases of a package.

use std::collections::BTreeMap;
use std::path::Path;

use super::EngineContext;
use crate::model::{Environment, FoundDeploy, ReleaseDoc, parse_doc};
use crate::refs::{Ref, ReleaseId, SubPathType};
use crate::sdk::{self, EvalOptions, LoadedFile};
use crate::{Error, Result};

/// The environments in state, sorted by name.
pub(crate) fn environments(ctx: &EngineContext) -> Result<Vec<Environment>> {
    let mut envs = Vec::new();
    for r in ctx.state.match_globs(&["@/environment/*"])? {
        let Some(doc) = ctx.state.get_str(&r)? else {
            continue;
        };
        let env: Environment = parse_doc(&r, "environment document", doc)?;
        envs.push(env);
    }
    envs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(envs)
}

/// Evaluate the package file of `base`'s package against current state.
pub(crate) fn evaluate(ctx: &EngineContext, file: &Path, base: &Ref) -> Result<LoadedFile> {
    let mut options = EvalOptions::new(ctx.host.clone(), ctx.root.clone(), base.clone());
    options.environments = environments(ctx)?.into();
    options.secrets = ctx.secrets.clone();
    options.limits = ctx.limits;
    sdk::evaluate_package(file, &options)
}

/// The releases of `package` at `commit`, ordered by release number.
pub(crate) fn releases_at(ctx: &EngineContext, package: &Ref, commit: &str) -> Result<Vec<Ref>> {
    let glob = format!("{package}/@*/commit/{commit}");
    let mut out: Vec<(u64, Ref)> = Vec::new();
    for r in ctx.state.match_globs(&[glob.as_str()])? {
        let rel = Ref::parse(&r)?.release_ref();
        out.push((rel.release_number().unwrap_or(0), rel));
    }
    out.sort_by_key(|(n, _)| *n);
    Ok(out.into_iter().map(|(_, r)| r).collect())
}

/// The release of this repository made last at the current commit, of any
/// package (by the time its commit record was written; ties go to the
/// greater release number, then the later ref), if there is one.
pub(crate) fn latest_release_here(ctx: &EngineContext) -> Result<Option<Ref>> {
    let glob = format!("{}/-/**/@*/commit/{}", ctx.site.repo, ctx.commit);
    // (when, number, ref text): the order of "made last".
    type Key = (Option<crate::model::Timestamp>, u64, String);
    let mut latest: Option<(Key, Ref)> = None;
    for text in ctx.state.match_globs(&[glob.as_str()])? {
        let r = Ref::parse(&text)?;
        if r.repo != ctx.site.repo || r.subpath_type != Some(SubPathType::Commit) {
            continue;
        }
        let time = ctx
            .state
            .get(&r)?
            .and_then(|doc| serde_json::from_value::<crate::model::CommitRecord>(doc).ok())
            .and_then(|c| c.time);
        let rel = r.release_ref();
        let key = (time, rel.release_number().unwrap_or(0), rel.to_string());
        if latest.as_ref().is_none_or(|(k, _)| key > *k) {
            latest = Some((key, rel));
        }
    }
    Ok(latest.map(|(_, rel)| rel))
}

/// The largest release number of a package (0 when it has none).
pub(crate) fn max_release(ctx: &EngineContext, package: &Ref) -> Result<ReleaseId> {
    let glob = format!("{package}/@r*");
    Ok(ctx
        .state
        .match_globs(&[glob.as_str()])?
        .iter()
        .filter_map(|r| ReleaseId::parse(&r[r.rfind("/@")? + 2..]))
        .max()
        .unwrap_or(ReleaseId::new(0)))
}

/// The release id `release new` would allocate next.
pub(crate) fn next_release_id(ctx: &EngineContext, package: &Ref) -> Result<ReleaseId> {
    Ok(max_release(ctx, package)?.next())
}

/// Resolve a release ref (`<pkg>/@r1` or a tag `<pkg>/@v1`) to `<pkg>/@r<N>`
/// and load its document.
pub(crate) fn load_release(ctx: &EngineContext, r: &Ref) -> Result<(Ref, ReleaseDoc)> {
    let rel = r.release_ref();
    match rel.release.as_deref() {
        None | Some("") => {
            return Err(Error::invalid_input(format!(
                "{r} does not name a release: give one like <package>/@r1 or a tag <package>/@v1"
            )));
        }
        _ => {}
    }
    let resolved = ctx.state.resolve(&rel)?.release_ref();
    let doc = ctx
        .state
        .get(&resolved)?
        .ok_or_else(|| Error::not_found(format!("release {rel} not found")).with_ref(&rel))?;
    let doc: ReleaseDoc = parse_doc(&resolved, "release document", doc)?;
    Ok((resolved, doc))
}

/// The latest release of every package (by release number).
pub(crate) fn latest_releases(ctx: &EngineContext) -> Result<Vec<Ref>> {
    let mut latest: BTreeMap<Ref, (u64, Ref)> = BTreeMap::new();
    for text in ctx.state.match_globs(&["**/@r*/commit/*"])? {
        let rel = Ref::parse(&text)?.release_ref();
        let Some(n) = rel.release_number() else {
            continue;
        };
        let package = rel.package();
        if latest.get(&package).is_none_or(|(m, _)| *m < n) {
            latest.insert(package, (n, rel));
        }
    }
    Ok(latest.into_values().map(|(_, r)| r).collect())
}

/// Every deployment of a package of `repo` (`<repo>/-/**/@/deploy/*`, the
/// links to what is deployed in each environment), with the release
/// deployed and the commit it was made at, in ref order. A link or release
/// that cannot be read is an error naming it, as in the original.
pub(crate) fn deployments(ctx: &EngineContext, repo: &str) -> Result<Vec<FoundDeploy>> {
    let glob = format!("{repo}/-/**/@/deploy/*");
    let mut out = Vec::new();
    for text in ctx.state.match_globs(&[glob.as_str()])? {
        let deploy = Ref::parse(&text)?;
        let resolved = ctx.state.resolve(&deploy)?;
        let (release, doc) = load_release(ctx, &resolved)
            .map_err(|e| e.context(format!("cannot read the release deployed at {deploy}")))?;
        out.push(FoundDeploy {
            r#ref: deploy,
            release,
            commit: doc.commit,
        });
    }
    Ok(out)
}

/// `<rel>/op/check_envs`: the release must be checked for environments
/// added since it was created.
pub(crate) fn check_envs_ref(rel: &Ref) -> Ref {
    rel.with_subpath(SubPathType::Op, "check_envs")
}

//! What the pages show, read through [`Workspace`]: the overview matrix, a
//! release with its runs, one run with its log, and any ref.

use std::collections::{BTreeMap, BTreeSet};

use ocuroot_core::model::{
    ChangeKind, Environment, LogLine, ReleaseDoc, ReleaseReport, ReleaseStatus, RunDoc, RunType,
    StateDoc, WorkDoc, WorkState,
};
use ocuroot_core::refs::{Ref, SubPathType};
use ocuroot_core::{Error, Workspace};

/// One package: its releases, newest first, and where each environment
/// stands.
pub(crate) struct PackageRow {
    /// `<repo>/-/<path>.ocu.star`.
    pub package: Ref,
    /// Its releases, newest first.
    pub releases: Vec<Ref>,
    /// The latest release as it stands.
    pub latest: Option<ReleaseReport>,
    /// Why the latest release could not be read (a damaged document): the
    /// row says so and the rest of the page is shown.
    pub error: Option<String>,
    /// By environment name.
    pub cells: BTreeMap<String, Cell>,
}

/// One package in one environment.
#[derive(Default)]
pub(crate) struct Cell {
    /// What is deployed there (`<pkg>/@/deploy/<env>`).
    pub deployed: Option<Deployed>,
    /// The latest release's work for this environment, when it is not the
    /// deployed one or has not completed.
    pub pending: Option<(Ref, WorkState)>,
    /// How intent differs from state for this deployment, if it does.
    pub intent: Option<ChangeKind>,
}

/// The outcome of the last deploy (or teardown) of a package to an
/// environment.
pub(crate) struct Deployed {
    /// The release deployed.
    pub release: Ref,
    /// The run that deployed it.
    pub run: Ref,
    /// `up`, or `down` for a teardown.
    pub run_type: RunType,
    /// When that run finished.
    pub finished: Option<String>,
}

/// The overview page.
pub(crate) struct Overview {
    /// The repository name.
    pub repo: String,
    /// Every environment in state.
    pub environments: Vec<Environment>,
    /// Environments whose intent differs from state (name, change).
    pub environment_intent: BTreeMap<String, ChangeKind>,
    /// Every package with a release.
    pub packages: Vec<PackageRow>,
    /// Intent refs whose state differs, in all.
    pub intent_changes: usize,
}

impl Overview {
    /// How many releases of the latest ones stand in `status`.
    pub fn count(&self, status: ReleaseStatus) -> usize {
        self.packages
            .iter()
            .filter(|p| p.latest.as_ref().is_some_and(|r| r.status == status))
            .count()
    }

    /// Whether anything is running (the page refreshes itself).
    pub fn live(&self) -> bool {
        self.count(ReleaseStatus::Running) > 0
    }
}

fn parse(text: &str) -> Result<Ref, Error> {
    Ref::parse(text).map_err(|e| e.context(format!("state view: the ref {text:?}")))
}

/// Releases by package, each package's newest first.
fn releases_by_package(ws: &Workspace) -> Result<BTreeMap<Ref, Vec<Ref>>, Error> {
    let mut by_package: BTreeMap<Ref, Vec<Ref>> = BTreeMap::new();
    for text in ws.state_match_no_links(&["**/@r*"])? {
        let r = parse(&text)?;
        if r.release_number().is_some() && r.subpath_type.is_none() {
            by_package.entry(r.package()).or_default().push(r);
        }
    }
    for releases in by_package.values_mut() {
        releases.sort_by_key(|r| std::cmp::Reverse(r.release_number()));
    }
    Ok(by_package)
}

/// The deploy (or teardown) whose outcome is at `r` (a link
/// `<pkg>/@/deploy/<env>` or `<rel>/deploy/<env>`), if there is one.
fn deployed(ws: &Workspace, r: &str) -> Result<Option<Deployed>, Error> {
    let Some(StateDoc::Work(work)) = ws.state_read(r)?.map(|read| read.doc) else {
        return Ok(None);
    };
    let finished = run_doc(ws, &work.run_ref)?.and_then(|d| d.finished_at);
    Ok(Some(Deployed {
        release: work.release,
        run: work.run_ref,
        run_type: work.run_type,
        finished: finished.map(|t| t.to_string()),
    }))
}

/// Read the overview: environments, packages, and each cell.
pub(crate) fn overview(ws: &Workspace) -> Result<Overview, Error> {
    let environments = ws.environments()?;
    let changes = ws.state_diff()?;
    let mut intent: BTreeMap<String, ChangeKind> = BTreeMap::new();
    let mut environment_intent = BTreeMap::new();
    for c in &changes {
        if c.r#ref.subpath_type == Some(SubPathType::Environment) && c.r#ref.global {
            environment_intent.insert(c.r#ref.subpath.clone(), c.change);
        } else {
            intent.insert(c.r#ref.without_fragment().to_string(), c.change);
        }
    }
    let mut env_names: BTreeSet<String> = environments
        .iter()
        .map(|e| e.name.as_str().to_string())
        .collect();
    let mut packages = Vec::new();
    for (package, releases) in releases_by_package(ws)? {
        let (latest, error) = match releases.first().map(|r| ws.release_status(&r.to_string())) {
            Some(Ok(report)) => (Some(report), None),
            Some(Err(e)) => (None, Some(e.to_string())),
            None => (None, None),
        };
        let mut cells: BTreeMap<String, Cell> = BTreeMap::new();
        let deploys = package
            .with_release("")
            .with_subpath(SubPathType::Deploy, "*");
        for text in ws.state_match(&[deploys.to_string()])? {
            let env = parse(&text)?.subpath;
            if let Some(d) = deployed(ws, &text)? {
                cells.entry(env.clone()).or_default().deployed = Some(d);
            }
            env_names.insert(env);
        }
        if let Some(report) = &latest {
            for w in &report.work {
                if w.path.subpath_type() != SubPathType::Deploy {
                    continue;
                }
                let env = w.path.name().to_string();
                let cell = cells.entry(env.clone()).or_default();
                if cell.deployed.is_none() && w.state == WorkState::Complete {
                    // A teardown removes the link; the release's outcome
                    // for the environment says it was torn down.
                    let outcome = w.path.in_release(&report.release).to_string();
                    cell.deployed = deployed(ws, &outcome)?;
                }
                let deployed_here = cell
                    .deployed
                    .as_ref()
                    .is_some_and(|d| d.release == report.release);
                if !(deployed_here && w.state == WorkState::Complete) {
                    cell.pending = Some((report.release.clone(), w.state));
                }
                env_names.insert(env);
            }
        }
        for env in &env_names {
            let key = package
                .with_release("")
                .with_subpath(SubPathType::Deploy, env)
                .to_string();
            if let Some(change) = intent.get(&key) {
                cells.entry(env.clone()).or_default().intent = Some(*change);
            }
        }
        packages.push(PackageRow {
            package,
            releases,
            latest,
            error,
            cells,
        });
    }
    Ok(Overview {
        repo: ws.name().to_string(),
        environments,
        environment_intent,
        packages,
        intent_changes: changes.len(),
    })
}

/// A run as the release and run pages show it.
pub(crate) struct RunInfo {
    /// The run ref (`<rel>/deploy/<env>/<n>`).
    pub r#ref: Ref,
    /// Its number.
    pub number: u32,
    /// Its status marker (`complete`, `failed_retried`, ...).
    pub status: String,
    /// The run document, if it could be read.
    pub doc: Option<RunDoc>,
}

impl RunInfo {
    /// How long it took, if it finished.
    pub fn duration_ms(&self) -> Option<u64> {
        let d = self.doc.as_ref()?;
        d.finished_at?.millis_since(d.started_at?)
    }
}

/// The release page.
pub(crate) struct ReleaseView {
    /// The report: every work item in phase order.
    pub report: ReleaseReport,
    /// The release document (commit, package, creation time).
    pub doc: Option<ReleaseDoc>,
    /// Every run of each work item, oldest first, by `task/<name>` or
    /// `deploy/<env>`.
    pub runs: BTreeMap<String, Vec<RunInfo>>,
    /// The work outcomes (inputs and outputs) of complete work.
    pub outcomes: BTreeMap<String, WorkDoc>,
    /// Custom state of the release (`<rel>/custom/...`) and its values.
    pub custom: Vec<(Ref, serde_json::Value)>,
}

impl ReleaseView {
    /// Whether work is running (the page refreshes itself).
    pub fn live(&self) -> bool {
        self.report.status == ReleaseStatus::Running
    }
}

fn run_doc(ws: &Workspace, run: &Ref) -> Result<Option<RunDoc>, Error> {
    Ok(match ws.state_read(&run.to_string())? {
        Some(read) => match read.doc {
            StateDoc::Run(d) => Some(d),
            _ => None,
        },
        None => None,
    })
}

/// Every run under `prefix` (`<rel>/<kind>/<name>` or one run ref), from
/// their status markers: (work path, number, status, run ref).
fn run_markers(ws: &Workspace, glob: &str) -> Result<Vec<(String, u32, String, Ref)>, Error> {
    let mut out = Vec::new();
    for text in ws.state_match_no_links(&[glob])? {
        let Some((run, status)) = text.rsplit_once("/status/") else {
            continue;
        };
        let r = parse(run)?;
        let Some((work, n)) = r.subpath.rsplit_once('/') else {
            continue;
        };
        let (Some(kind), Ok(n)) = (r.subpath_type, n.parse::<u32>()) else {
            continue;
        };
        out.push((
            format!("{}/{work}", kind.as_str()),
            n,
            status.to_string(),
            r,
        ));
    }
    out.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    Ok(out)
}

/// Read a release page: `release` is a release ref (`<pkg>/@r<N>` or a tag).
pub(crate) fn release(ws: &Workspace, release: &str) -> Result<ReleaseView, Error> {
    let report = ws.release_status(release)?;
    let rel = report.release.clone();
    let doc = match ws.state_read(&rel.to_string())? {
        Some(read) => match read.doc {
            StateDoc::Release(d) => Some(d),
            _ => None,
        },
        None => None,
    };
    let mut runs: BTreeMap<String, Vec<RunInfo>> = BTreeMap::new();
    for kind in ["task", "deploy"] {
        let glob = format!("{rel}/{kind}/*/*/status/*");
        for (work, number, status, r) in run_markers(ws, &glob)? {
            let doc = run_doc(ws, &r)?;
            runs.entry(work).or_default().push(RunInfo {
                r#ref: r,
                number,
                status,
                doc,
            });
        }
    }
    let mut outcomes = BTreeMap::new();
    for w in &report.work {
        if w.state != WorkState::Complete {
            continue;
        }
        if let Some(StateDoc::Work(d)) = ws
            .state_read(&w.path.in_release(&rel).to_string())?
            .map(|read| read.doc)
        {
            outcomes.insert(w.path.to_string(), d);
        }
    }
    let mut custom = Vec::new();
    for text in ws.state_match(&[format!("{rel}/custom/**")])? {
        if let Some(v) = ws.state_get(&text)? {
            custom.push((parse(&text)?, v));
        }
    }
    Ok(ReleaseView {
        report,
        doc,
        runs,
        outcomes,
        custom,
    })
}

/// The run page.
pub(crate) struct RunView {
    /// The run, its status and document.
    pub run: RunInfo,
    /// Its log: the stored log once it finished, else what it wrote so far.
    pub log: Vec<LogLine>,
    /// Whether the log is still being written.
    pub live: bool,
}

/// Read a run page: `run` is `<rel>/task/<name>/<n>` or
/// `<rel>/deploy/<env>/<n>`.
pub(crate) fn run(ws: &Workspace, run: &str) -> Result<RunView, Error> {
    let r = ws.resolve_user_ref(run)?;
    let markers = run_markers(ws, &format!("{r}/status/*"))?;
    let Some((_, number, status, r)) = markers.into_iter().next() else {
        return Err(Error::not_found(format!("run not found: {r}")));
    };
    let doc = run_doc(ws, &r)?;
    run_view(
        ws,
        RunInfo {
            r#ref: r,
            number,
            status,
            doc,
        },
    )
}

/// The run page of a run already read (the export has it from the release
/// page): only its log is read.
pub(crate) fn run_view(ws: &Workspace, run: RunInfo) -> Result<RunView, Error> {
    let r = &run.r#ref;
    let live = run.status == "running";
    let mut log: Vec<LogLine> = Vec::new();
    match ws.state_get(&format!("{r}/logs"))? {
        Some(v) => log = serde_json::from_value(v).unwrap_or_default(),
        None => {
            let mut chunks: Vec<(u64, String)> = ws
                .state_match_no_links(&[format!("{r}/live_logs/*")])?
                .into_iter()
                .filter_map(|t| {
                    let k = t.rsplit('/').next()?.parse::<u64>().ok()?;
                    Some((k, t))
                })
                .collect();
            chunks.sort();
            for (_, text) in chunks {
                if let Some(v) = ws.state_get(&text)? {
                    let lines: Vec<LogLine> = serde_json::from_value(v).unwrap_or_default();
                    log.extend(lines);
                }
            }
        }
    }
    Ok(RunView { run, log, live })
}

/// The ref browser page.
pub(crate) struct RefView {
    /// The ref asked for (resolved against the repository).
    pub r#ref: Ref,
    /// Where it links to, if it is a link.
    pub link: Option<Ref>,
    /// The document (links followed), if there is one.
    pub document: Option<serde_json::Value>,
    /// The intent at the same ref, if any.
    pub intent: Option<serde_json::Value>,
    /// The refs one level below.
    pub children: Vec<String>,
}

/// Read any ref for the ref browser.
pub(crate) fn reference(ws: &Workspace, text: &str) -> Result<RefView, Error> {
    let r = ws.resolve_user_ref(text)?;
    let link = if r.fragment.is_empty() {
        ws.state().is_link(&r)?
    } else {
        None
    };
    let document = ws.state_get(&r.to_string())?;
    let intent = if r.fragment.is_empty() {
        ws.intent().get(&r)?
    } else {
        None
    };
    let children = if r.fragment.is_empty() {
        let base = r.to_string();
        let base = base.trim_end_matches('/');
        ws.state_match(&[format!("{base}/*")])?
    } else {
        Vec::new()
    };
    Ok(RefView {
        r#ref: r,
        link,
        document,
        intent,
        children,
    })
}

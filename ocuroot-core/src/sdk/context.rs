//! The per-evaluation context native functions reach through
//! `Evaluator::extra`: what a file declares (the collector), what
//! `repo.ocu.star` configures, the files being evaluated with their def
//! tables, and the modules of an evaluated package.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use starlark::any::ProvidesStaticType;
use starlark::environment::FrozenModule;
use starlark::values::OwnedFrozenValue;

use super::{EvalOptions, LogLine};
use crate::host::Stream;
use crate::model::{Environment, FunctionId, RepoConfig, StoreSpec, Work};
use crate::{Error, ErrorKind, Location, Result};

/// Which kind of file (or call) is being evaluated; decides which globals work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A package file (release or environments).
    Package,
    /// `repo.ocu.star`.
    Repo,
    /// Calling a work function of an evaluated package.
    Call,
}

/// A file being evaluated: its path relative to the package dir and its defs.
pub(crate) struct FileFrame {
    pub rel: String,
    pub defs: DefTable,
}

/// What a package file declares, in declaration order.
#[derive(Default)]
pub(crate) struct Collector {
    pub next_id: u64,
    pub work: HashMap<u64, (Work, Location)>,
    /// Work declared but not yet placed in a phase.
    pub pending: Vec<u64>,
    pub phases: Vec<(String, Vec<u64>)>,
    pub environments: Vec<(Environment, Location)>,
    pub package_declared: bool,
}

/// Check a `repo_alias`, given by the call or the global: it starts every
/// ref of the repository, so it must be a valid key, and no segment may be
/// `-` or start with `@` (either would end the repository part early).
pub(crate) fn check_alias(alias: &str) -> crate::Result<()> {
    crate::refs::validate_key(alias)
        .map_err(|e| Error::config(format!("invalid repo_alias {alias:?}: {}", e.message())))?;
    if alias
        .split('/')
        .any(|seg| seg == "-" || seg.starts_with('@'))
    {
        return Err(Error::config(format!(
            "invalid repo_alias {alias:?}: a segment \"-\" or starting with \"@\" would end \
             the repository part of refs"
        )));
    }
    Ok(())
}

/// What repo.ocu.star configures through calls.
#[derive(Default)]
pub(crate) struct RepoCollector {
    pub locations: crate::model::RepoLocations,
    pub alias: Option<String>,
    pub state: Option<StoreSpec>,
    pub intent: Option<StoreSpec>,
    pub store_set: bool,
    pub remotes: Option<Vec<String>>,
    pub trigger: Option<FunctionId>,
}

impl RepoCollector {
    /// Combine the call-based settings with the top-level globals, which win.
    pub(crate) fn finish(self, globals: RepoGlobals, path: &Path) -> crate::Result<RepoConfig> {
        let source = std::fs::read_to_string(path).unwrap_or_default();
        let display = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        // The line of a top-level `name = ...`, for a setting made as a global.
        let assigned = |name: &str| -> Location {
            let line = source
                .lines()
                .position(|l| {
                    l.strip_prefix(name)
                        .is_some_and(|rest| rest.trim_start().starts_with('='))
                })
                .map_or(0, |i| i as u32 + 1);
            Location {
                file: display.clone(),
                line,
                column: 1,
            }
        };
        let bad = |what: &str, v: &Json| {
            Error::config(format!("{what} has an unexpected value {v}"))
                .with_location(assigned(what))
        };
        let mut locations = self.locations;
        let mut cfg = RepoConfig {
            alias: self.alias,
            state: self.state,
            intent: self.intent,
            remotes: self.remotes.unwrap_or_default(),
            release_ignore: Vec::new(),
            trigger: self.trigger,
            locations: Default::default(),
        };
        if let Some(v) = globals.alias {
            match v {
                Json::String(s) if !s.is_empty() => {
                    check_alias(&s).map_err(|e| e.with_location(assigned("repo_alias")))?;
                    cfg.alias = Some(s);
                    locations.alias = Some(assigned("repo_alias"));
                }
                Json::Null => {}
                other => return Err(bad("repo_alias", &other)),
            }
        }
        let strings = |what: &str, v: Json| -> crate::Result<Vec<String>> {
            serde_json::from_value::<Vec<String>>(v.clone()).map_err(|_| bad(what, &v))
        };
        if let Some(v) = globals.remotes {
            cfg.remotes = strings("repo_remotes", v)?;
        }
        if let Some(v) = globals.release_ignore {
            cfg.release_ignore = strings("release_ignore", v)?;
        }
        if let Some(v) = globals.state_store {
            cfg.state =
                Some(serde_json::from_value(v.clone()).map_err(|_| bad("state_store", &v))?);
            locations.state = Some(assigned("state_store"));
        }
        if let Some(v) = globals.intent_store {
            cfg.intent =
                Some(serde_json::from_value(v.clone()).map_err(|_| bad("intent_store", &v))?);
            locations.intent = Some(assigned("intent_store"));
        }
        cfg.locations = locations;
        Ok(cfg)
    }
}

/// A log line (masked, stamped with the host's clock), already passed to the
/// live sink: what [`Ctx::log_line`] appends. It needs only the options, so
/// `host.shell` can make lines on the threads reading a command's output.
pub(crate) fn emit_line(options: &EvalOptions, stream: Stream, message: &str) -> LogLine {
    let line = LogLine {
        timestamp: options
            .host
            .now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
        stream,
        message: options.secrets.mask(message),
    };
    if let Some(sink) = &options.log_sink {
        sink(&line);
    }
    line
}

/// The evaluation context reached from native functions via `Evaluator::extra`.
#[derive(ProvidesStaticType)]
pub(crate) struct Ctx {
    pub options: EvalOptions,
    pub mode: Mode,
    /// Directory `host.shell` runs in and file helpers resolve against.
    pub work_dir: PathBuf,
    pub files: RefCell<Vec<FileFrame>>,
    pub modules: RefCell<ModuleSet>,
    /// Modules of an already evaluated package (call mode).
    pub frozen: Option<std::sync::Arc<ModuleSet>>,
    pub collector: RefCell<Collector>,
    pub repo: RefCell<RepoCollector>,
    pub log: RefCell<Vec<LogLine>>,
}

impl Ctx {
    pub(crate) fn new(options: EvalOptions, mode: Mode, work_dir: PathBuf) -> Ctx {
        Ctx {
            options,
            mode,
            work_dir,
            files: RefCell::new(Vec::new()),
            modules: RefCell::new(ModuleSet::default()),
            frozen: None,
            collector: RefCell::new(Collector::default()),
            repo: RefCell::new(RepoCollector::default()),
            log: RefCell::new(Vec::new()),
        }
    }

    /// Append a line to the log (masked) and pass it to the live sink.
    pub(crate) fn log_line(&self, stream: Stream, message: &str) {
        let line = emit_line(&self.options, stream, message);
        self.log.borrow_mut().push(line);
    }

    /// `p` relative to the work directory (absolute paths as they are).
    pub(crate) fn path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.work_dir.join(p)
        }
    }
}

/// Routes `print` into the log.
pub(crate) struct Printer<'a>(pub &'a Ctx);

impl starlark::PrintHandler for Printer<'_> {
    fn println(&self, text: &str) -> starlark::Result<()> {
        self.0.log_line(Stream::Stdout, text);
        Ok(())
    }
}

/// The parameters of a def: names, which have defaults, and `**kwargs`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Params {
    pub names: Vec<String>,
    pub required: Vec<String>,
    pub has_kwargs: bool,
}

impl Params {
    /// `def f(ctx)`: called as `f(ctx)` with `ctx.inputs.<name>`.
    pub(crate) fn is_ctx_style(&self) -> bool {
        self.names.len() == 1 && self.names[0] == "ctx" && self.required.len() == 1
    }
}

/// A top-level `def`: where it is and its parameters.
#[derive(Debug, Clone)]
pub(crate) struct DefInfo {
    /// Line of the `def`, 1-based.
    pub line: u32,
    /// Column of the `def`, 1-based.
    pub column: u32,
    /// Its parameters, from the source.
    pub params: Params,
}

/// Each top-level `def` of a file by name.
pub(crate) type DefTable = HashMap<String, DefInfo>;

/// A frozen module with its def table.
pub(crate) struct ModuleEntry {
    pub frozen: FrozenModule,
    pub defs: DefTable,
}

/// Every module of an evaluated package, keyed by path relative to the
/// package file's directory (the `file` of a [`FunctionId`]).
#[derive(Default)]
pub(crate) struct ModuleSet {
    pub modules: BTreeMap<String, ModuleEntry>,
}

impl ModuleSet {
    /// Find a function by id, checking it is still defined where it was;
    /// returns it with its parameters.
    pub fn find(&self, id: &FunctionId) -> Result<(OwnedFrozenValue, Params)> {
        let missing = |why: &str| {
            Error::new(
                ErrorKind::Eval,
                format!("function {} at {} not found: {why}", id.name, id.pos()),
            )
        };
        let entry = self
            .modules
            .get(&id.file)
            .ok_or_else(|| missing("the file is not part of this package"))?;
        let params = match entry.defs.get(&id.name) {
            Some(d) if d.line == id.line && d.column == id.column => d.params.clone(),
            Some(_) => {
                return Err(missing(
                    "it moved; the file changed since the release was created",
                ));
            }
            None => return Err(missing("no top-level def of that name")),
        };
        // Private names (`_helper`) are globals of their module too.
        let (value, _) = entry
            .frozen
            .get_any_visibility(&id.name)
            .map_err(|_| missing("no global of that name"))?;
        Ok((value, params))
    }
}
/// Settings read from top-level globals of repo.ocu.star after evaluation.
#[derive(Debug, Clone, Default)]
pub(crate) struct RepoGlobals {
    pub alias: Option<serde_json::Value>,
    pub remotes: Option<serde_json::Value>,
    pub state_store: Option<serde_json::Value>,
    pub intent_store: Option<serde_json::Value>,
    pub release_ignore: Option<serde_json::Value>,
}

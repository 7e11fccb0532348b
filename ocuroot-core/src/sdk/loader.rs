//! Reading, parsing and evaluating files: `load()` resolution, the module
//! cache, cycle detection, the SDK version check, and turning what a file
//! declared into model types.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use starlark::environment::{FrozenModule, Globals, Module};
use starlark::eval::{Evaluator, FileLoader};
use starlark::syntax::{AstModule, Dialect};
use starlark::values::FrozenHeapName;
use starlark_syntax::syntax::ast::{ArgumentP, AstLiteral, ExprP, ParameterP, StmtP};

use super::context::{
    self, Collector, Ctx, DefInfo, DefTable, Mode, ModuleEntry, Params, RepoGlobals,
};
use super::errors::{LastStatement, ocu_to_starlark, starlark_to_ocu};
use super::globals;
use super::{Declared, EvalOptions, FileContents, LoadedFile};
use crate::model::RepoConfig;
use crate::repo::paths::{normalize, relative_to, slash_path};
use crate::{Error, ErrorKind, Location, Result};

/// The dialect: standard Starlark plus f-strings, keyword-only arguments and
/// top-level statements; `load()` bindings are file-local as in Go.
pub(crate) fn dialect() -> Dialect {
    Dialect {
        enable_top_level_stmt: true,
        enable_f_strings: true,
        enable_keyword_only_arguments: true,
        enable_load_reexport: false,
        ..Dialect::Standard
    }
}

/// The globals every file sees (built once).
pub(crate) fn shared_globals() -> &'static Globals {
    static GLOBALS: OnceLock<Globals> = OnceLock::new();
    GLOBALS.get_or_init(globals::build)
}

/// Evaluate a package file completely.
pub(crate) fn evaluate(path: &Path, options: &EvalOptions, mode: Mode) -> Result<LoadedFile> {
    evaluate_inner(path, options, mode).map(|(file, _)| file)
}

/// Evaluate `repo.ocu.star`.
pub(crate) fn evaluate_repo(path: &Path, options: &EvalOptions) -> Result<RepoConfig> {
    let (_, repo) = evaluate_inner(path, options, Mode::Repo)?;
    repo
}

/// Evaluate `repo.ocu.star`, keeping the file for calls.
pub(crate) fn evaluate_repo_file(
    path: &Path,
    options: &EvalOptions,
) -> Result<(LoadedFile, RepoConfig)> {
    let (file, repo) = evaluate_inner(path, options, Mode::Repo)?;
    Ok((file, repo?))
}

fn evaluate_inner(
    path: &Path,
    options: &EvalOptions,
    mode: Mode,
) -> Result<(LoadedFile, Result<RepoConfig>)> {
    let root = canonical(&options.root)?;
    let path = inside_root(&root, path)?;
    let package_dir = path.parent().unwrap_or(&root).to_path_buf();
    let ctx = Ctx::new(options.clone(), mode, package_dir.clone());
    let state = EvalState::new(&ctx, &root, &package_dir);
    let main = state.eval_file(&path).map_err(|e| e.into_ocu())?;
    let repo_settings = main.repo_settings.clone();
    let mut modules = std::mem::take(&mut *ctx.modules.borrow_mut());
    modules.modules.insert(
        main.rel.clone(),
        ModuleEntry {
            frozen: main.frozen,
            defs: main.defs,
        },
    );
    let collector = std::mem::take(&mut *ctx.collector.borrow_mut());
    let prints = std::mem::take(&mut *ctx.log.borrow_mut());
    let repo = std::mem::take(&mut *ctx.repo.borrow_mut());
    refuse_secret_inputs(&collector, &ctx.options.secrets)?;
    let (contents, declared) = match mode {
        Mode::Repo => (FileContents::Empty, Vec::new()),
        _ => assemble(collector)?,
    };
    let loaded = LoadedFile {
        contents,
        declared,
        prints,
        modules: std::sync::Arc::new(modules),
        path,
        options: options.clone(),
    };
    let config = repo.finish(repo_settings, &loaded.path);
    Ok((loaded, config))
}

struct Evaluated {
    rel: String,
    frozen: FrozenModule,
    defs: DefTable,
    repo_settings: RepoGlobals,
}

/// An error during evaluation: either Starlark's (with its own spans and
/// stack) or ours (already carrying a location).
pub(crate) enum EvalFail {
    Starlark(starlark::Error, LastStatement),
    Ocu(Error),
}

impl EvalFail {
    pub(super) fn into_ocu(self) -> Error {
        match self {
            EvalFail::Starlark(e, last) => starlark_to_ocu(&e, &last),
            EvalFail::Ocu(e) => e,
        }
    }
    fn into_starlark(self) -> starlark::Error {
        match self {
            EvalFail::Starlark(e, _) => e,
            EvalFail::Ocu(e) => ocu_to_starlark(e),
        }
    }
}

/// One evaluation: the context, the root `load()` may not leave, the
/// module cache and the stack of files being evaluated (for cycles).
pub(super) struct EvalState<'a> {
    pub ctx: &'a Ctx,
    pub root: &'a Path,
    pub package_dir: &'a Path,
    pub cache: RefCell<HashMap<PathBuf, FrozenModule>>,
    pub stack: RefCell<Vec<PathBuf>>,
}

impl<'a> EvalState<'a> {
    /// A fresh evaluation: no module loaded yet.
    pub fn new(ctx: &'a Ctx, root: &'a Path, package_dir: &'a Path) -> EvalState<'a> {
        EvalState {
            ctx,
            root,
            package_dir,
            cache: RefCell::new(HashMap::new()),
            stack: RefCell::new(Vec::new()),
        }
    }

    pub fn display(&self, path: &Path) -> String {
        path.strip_prefix(self.root)
            .map(slash_path)
            .unwrap_or_else(|_| path.display().to_string())
    }

    fn eval_file(&self, path: &Path) -> std::result::Result<Evaluated, EvalFail> {
        let display = self.display(path);
        let rel = relative_to(path, self.package_dir);
        let source = self
            .ctx
            .options
            .host
            .read_file(path)
            .map_err(|e| EvalFail::Ocu(e.context(format!("cannot read {display}"))))?;
        super::nesting::check(&source, &display).map_err(EvalFail::Ocu)?;
        let ast = AstModule::parse(&display, source, &dialect())
            .map_err(|e| EvalFail::Starlark(e, LastStatement::default()))?;
        check_version_calls(&ast)?;
        let defs = def_table(&ast);
        self.stack.borrow_mut().push(path.to_path_buf());
        self.ctx.files.borrow_mut().push(context::FileFrame {
            rel: rel.clone(),
            defs: defs.clone(),
        });
        let result = self.eval_ast(ast, path, &display);
        self.ctx.files.borrow_mut().pop();
        self.stack.borrow_mut().pop();
        let (frozen, repo_settings) = result?;
        Ok(Evaluated {
            rel,
            frozen,
            defs,
            repo_settings,
        })
    }

    fn eval_ast(
        &self,
        ast: AstModule,
        path: &Path,
        display: &str,
    ) -> std::result::Result<(FrozenModule, RepoGlobals), EvalFail> {
        let loader = Loader {
            state: self,
            dir: path.parent().unwrap_or(self.root).to_path_buf(),
            from: display.to_string(),
        };
        let limits = self.ctx.options.limits;
        let printer = context::Printer(self.ctx);
        let last = LastStatement::default();
        Module::with_temp_heap(|module| {
            let mut repo = RepoGlobals::default();
            {
                let mut eval = Evaluator::new(&module);
                last.install(&mut eval);
                eval.set_loader(&loader);
                eval.set_print_handler(&printer);
                eval.extra = Some(self.ctx);
                set_limits(&mut eval, limits).map_err(EvalFail::Ocu)?;
                eval.eval_module(ast, shared_globals())
                    .map_err(|e| EvalFail::Starlark(e, last.clone()))?;
            }
            if self.ctx.mode == Mode::Repo && self.stack.borrow().len() == 1 {
                let get = |name: &str| -> std::result::Result<Option<serde_json::Value>, EvalFail> {
                    match module.get(name) {
                        Some(v) => super::values::to_json(v, name).map(Some).map_err(|e| {
                            EvalFail::Ocu(Error::config(format!(
                                "{display}: global {name} cannot be converted to a setting: {e}"
                            )))
                        }),
                        None => Ok(None),
                    }
                };
                repo.alias = get("repo_alias")?;
                repo.remotes = get("repo_remotes")?;
                repo.state_store = get("state_store")?;
                repo.intent_store = get("intent_store")?;
                repo.release_ignore = get("release_ignore")?;
            }
            let frozen = module
                .freeze_named(FrozenHeapName::User(Box::new(display.to_string())))
                .map_err(|e| {
                    EvalFail::Ocu(Error::new(
                        ErrorKind::Eval,
                        format!("{display}: cannot freeze module: {e:?}"),
                    ))
                })?;
            Ok((frozen, repo))
        })
    }

    fn load(
        &self,
        raw: &str,
        dir: &Path,
        from: &str,
    ) -> std::result::Result<FrozenModule, EvalFail> {
        let fail = |msg: String| EvalFail::Ocu(Error::new(ErrorKind::Eval, msg));
        if raw.is_empty() || raw.contains('\\') || raw.chars().any(|c| c.is_control()) {
            return Err(fail(format!("{from}: invalid load path {raw:?}")));
        }
        if raw.starts_with('/') {
            return Err(fail(format!(
                "{from}: load path {raw:?} must be relative to the loading file (like \"./tasks.ocu.star\")"
            )));
        }
        let joined = normalize(&dir.join(raw));
        if !joined.starts_with(self.root) {
            return Err(fail(format!(
                "{from}: load({raw:?}) resolves to {} which is outside the repository root",
                joined.display()
            )));
        }
        let resolved = match joined.canonicalize() {
            Ok(p) if p.starts_with(self.root) => p,
            Ok(p) => {
                return Err(fail(format!(
                    "{from}: load({raw:?}) resolves to {} which is outside the repository root",
                    p.display()
                )));
            }
            Err(e) => {
                return Err(fail(format!(
                    "{from}: cannot load {raw:?}: {}: {e}",
                    self.display(&joined)
                )));
            }
        };
        if let Some(pos) = self.stack.borrow().iter().position(|p| *p == resolved) {
            let stack = self.stack.borrow();
            let mut cycle: Vec<String> = stack[pos..].iter().map(|p| self.display(p)).collect();
            cycle.push(self.display(&resolved));
            return Err(fail(format!("load cycle: {}", cycle.join(" -> "))));
        }
        if let Some(m) = self.cache.borrow().get(&resolved) {
            return Ok(m.clone());
        }
        let evaluated = self.eval_file(&resolved)?;
        self.cache
            .borrow_mut()
            .insert(resolved, evaluated.frozen.clone());
        self.ctx.modules.borrow_mut().modules.insert(
            evaluated.rel.clone(),
            ModuleEntry {
                frozen: evaluated.frozen.clone(),
                defs: evaluated.defs,
            },
        );
        Ok(evaluated.frozen)
    }
}

/// The `load()` of one file: paths resolve against its directory.
pub(super) struct Loader<'a> {
    pub state: &'a EvalState<'a>,
    pub dir: PathBuf,
    pub from: String,
}

impl FileLoader for Loader<'_> {
    fn load(&self, path: &str) -> starlark::Result<FrozenModule> {
        self.state
            .load(path, &self.dir, &self.from)
            .map_err(EvalFail::into_starlark)
    }
}

pub(crate) fn set_limits(eval: &mut Evaluator, limits: super::Limits) -> Result<()> {
    let internal = |e: anyhow::Error| Error::internal(format!("setting evaluation limits: {e}"));
    eval.set_max_tick_count(limits.max_ticks)
        .map_err(internal)?;
    eval.set_max_callstack_size(limits.max_callstack)
        .map_err(internal)?;
    eval.set_max_heap_size(limits.max_heap_bytes)
        .map_err(internal)?;
    Ok(())
}

/// `ocuroot(...)` must be called with exactly one string literal.
pub(super) fn check_version_calls(ast: &AstModule) -> std::result::Result<(), EvalFail> {
    let mut stmts = vec![ast.statement()];
    while let Some(s) = stmts.pop() {
        match &s.node {
            StmtP::Statements(v) => stmts.extend(v.iter().rev()),
            StmtP::Expression(e) => {
                let ExprP::Call(callee, args) = &e.node else {
                    continue;
                };
                let ExprP::Identifier(id) = &callee.node else {
                    continue;
                };
                if id.node.ident != "ocuroot" {
                    continue;
                }
                let problem = match args.args.as_slice() {
                    [a] => match &a.node {
                        ArgumentP::Positional(x) | ArgumentP::Named(_, x) => match &x.node {
                            ExprP::Literal(AstLiteral::String(_)) => None,
                            _ => Some("ocuroot() must have a string literal as its argument"),
                        },
                        _ => Some("ocuroot() must have exactly one argument"),
                    },
                    _ => Some("ocuroot() must have exactly one argument"),
                };
                if let Some(msg) = problem {
                    let span = ast.file_span(e.span);
                    return Err(EvalFail::Starlark(
                        starlark::Error::new_spanned(
                            starlark::ErrorKind::Other(anyhow::anyhow!("{msg}")),
                            span.span,
                            &span.file,
                        ),
                        LastStatement::default(),
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

pub(super) fn def_table(ast: &AstModule) -> DefTable {
    let mut defs = DefTable::new();
    let mut stmts = vec![ast.statement()];
    while let Some(s) = stmts.pop() {
        match &s.node {
            StmtP::Statements(v) => stmts.extend(v.iter()),
            StmtP::Def(d) => {
                let pos = ast.file_span(s.span).resolve_span().begin;
                let mut params = Params::default();
                for p in &d.params {
                    match &p.node {
                        ParameterP::Normal(name, _, default) => {
                            params.names.push(name.node.ident.clone());
                            if default.is_none() {
                                params.required.push(name.node.ident.clone());
                            }
                        }
                        ParameterP::KwArgs(..) => params.has_kwargs = true,
                        ParameterP::Args(..) | ParameterP::NoArgs | ParameterP::Slash => {}
                    }
                }
                defs.insert(
                    d.name.node.ident.clone(),
                    DefInfo {
                        line: pos.line as u32 + 1,
                        column: pos.column as u32 + 1,
                        params,
                    },
                );
            }
            _ => {}
        }
    }
    defs
}

/// Turn what the file declared into the package (or environments), and
/// validate it.
/// A static input holding a `secret()` would be stored in the release, run
/// and task documents in the clear (and is shown by `release lint`): refuse
/// it, whether `secret()` was called before or after the work was declared.
fn refuse_secret_inputs(collector: &Collector, secrets: &super::Secrets) -> Result<()> {
    if secrets.is_empty() {
        return Ok(());
    }
    for (work, loc) in collector.work.values() {
        for (name, spec) in work.inputs() {
            let value = match spec {
                crate::model::InputSpec::Value(v) => Some(v),
                crate::model::InputSpec::Ref { default, .. } => default.as_ref(),
            };
            if value.is_some_and(|v| secrets.found_in_json(v)) {
                return Err(Error::validation(secret_input_message(&format!(
                    "input {name:?} of {}",
                    work.path()
                )))
                .with_location(loc.clone()));
            }
        }
    }
    Ok(())
}

/// Why a secret may not be an input stored with the work, and what to do.
pub(super) fn secret_input_message(what: &str) -> String {
    format!(
        "{what} holds a value registered with secret(): inputs are stored in state, so a \
         secret cannot be one; read it inside the work function instead, e.g. \
         token = secret(host.env()[\"TOKEN\"])"
    )
}

fn assemble(collector: Collector) -> Result<(FileContents, Vec<Declared>)> {
    let Collector {
        work,
        mut pending,
        mut phases,
        environments,
        package_declared,
        ..
    } = collector;
    // Work declared after the last phase() becomes single-item phases.
    for id in pending.drain(..) {
        phases.push((String::new(), vec![id]));
    }
    if package_declared && !environments.is_empty() {
        let (_, loc) = &environments[0];
        return Err(Error::validation(
            "environments and packages should not be declared in the same file",
        )
        .with_location(loc.clone()));
    }
    if !environments.is_empty() {
        let mut seen: BTreeMap<String, Location> = BTreeMap::new();
        let mut envs = Vec::new();
        for (env, loc) in environments {
            if let Some(first) = seen.get(env.name.as_str()) {
                return Err(Error::validation(format!(
                    "environment {} is registered twice (first at {first})",
                    env.name
                ))
                .with_location(loc));
            }
            seen.insert(env.name.to_string(), loc);
            envs.push(env);
        }
        return Ok((FileContents::Environments(envs), Vec::new()));
    }
    if !package_declared {
        return Ok((FileContents::Empty, Vec::new()));
    }
    let mut package = crate::model::Package::default();
    let mut declared = Vec::new();
    let mut first_seen: BTreeMap<crate::refs::WorkPath, Location> = BTreeMap::new();
    for (name, ids) in phases {
        let mut items = Vec::new();
        for id in ids {
            let (item, loc) = work
                .get(&id)
                .cloned()
                .ok_or_else(|| Error::internal(format!("unknown work id {id}")))?;
            let path = item.path();
            if let Some(first) = first_seen.get(&path) {
                let what = match &item {
                    crate::model::Work::Task(t) => {
                        format!("task {:?} is declared", t.name.as_str())
                    }
                    crate::model::Work::Deploy(d) => {
                        format!("environment {:?} is deployed", d.environment.as_str())
                    }
                };
                return Err(Error::validation(format!(
                    "{what} more than once in this package (first at {first}); each task name and each environment may be used once"
                ))
                .with_location(loc));
            }
            first_seen.insert(path.clone(), loc.clone());
            declared.push(Declared {
                path,
                location: loc,
            });
            items.push(item);
        }
        package
            .phases
            .push(crate::model::Phase { name, work: items });
    }
    Ok((FileContents::Release(package), declared))
}

/// `path`, canonical, which must be inside the (canonical) `root`.
pub(super) fn inside_root(root: &Path, path: &Path) -> Result<PathBuf> {
    let path = canonical(path)?;
    if !path.starts_with(root) {
        return Err(Error::invalid_input(format!(
            "{} is outside the repository root {}",
            path.display(),
            root.display()
        )));
    }
    Ok(path)
}

pub(super) fn canonical(p: &Path) -> Result<PathBuf> {
    p.canonicalize().map_err(|e| Error::io("cannot open", p, e))
}

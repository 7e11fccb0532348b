//! The SDK globals of SPEC §2, and the per-evaluation context they write to.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde_json::{Value as Json, json};
use starlark::any::ProvidesStaticType;
use starlark::collections::SmallMap;
use starlark::environment::{Globals, GlobalsBuilder, LibraryExtension};
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::list::UnpackList;
use starlark::values::none::NoneType;
use starlark::values::structs::AllocStruct;
use starlark::values::{Heap, Value};

use super::errors::span_location;
use super::loader::{DefTable, ModuleSet, RepoGlobals};
use super::{EvalOptions, LogLine};
use crate::host::{HttpRequest, ShellRequest, Stream};
use crate::model::{
    Deploy, Environment, EnvironmentName, FunctionId, InputSpec, RepoConfig, StoreSpec, Tag, Task,
    TaskName, Work,
};
use crate::refs::Ref;
use crate::{Error, Location};

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

/// What repo.ocu.star configures through calls.
#[derive(Default)]
pub(crate) struct RepoCollector {
    alias: Option<String>,
    state: Option<StoreSpec>,
    intent: Option<StoreSpec>,
    store_set: bool,
    remotes: Option<Vec<String>>,
    trigger: Option<FunctionId>,
}

impl RepoCollector {
    /// Combine the call-based settings with the top-level globals, which win.
    pub(crate) fn finish(self, globals: RepoGlobals, path: &Path) -> crate::Result<RepoConfig> {
        let file = path.display();
        let bad = |what: &str, v: &Json| {
            Error::config(format!("{file}: {what} has an unexpected value {v}"))
        };
        let mut cfg = RepoConfig {
            alias: self.alias,
            state: self.state,
            intent: self.intent,
            remotes: self.remotes.unwrap_or_default(),
            release_ignore: Vec::new(),
            trigger: self.trigger,
        };
        if let Some(v) = globals.alias {
            match v {
                Json::String(s) if !s.is_empty() => cfg.alias = Some(s),
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
        }
        if let Some(v) = globals.intent_store {
            cfg.intent =
                Some(serde_json::from_value(v.clone()).map_err(|_| bad("intent_store", &v))?);
        }
        Ok(cfg)
    }
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
        let line = LogLine {
            timestamp: self
                .options
                .host
                .now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            stream,
            message: self.options.secrets.mask(message),
        };
        if let Some(sink) = &self.options.log_sink {
            sink(&line);
        }
        self.log.borrow_mut().push(line);
    }

    fn path(&self, p: &str) -> PathBuf {
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

fn ctx<'a>(eval: &Evaluator<'_, 'a, '_>) -> anyhow::Result<&'a Ctx> {
    eval.extra
        .and_then(|e| e.downcast_ref::<Ctx>())
        .ok_or_else(|| anyhow::anyhow!("internal error: the Ocuroot SDK context is missing"))
}

fn require_mode(ctx: &Ctx, what: &str, allowed: &[Mode]) -> anyhow::Result<()> {
    if allowed.contains(&ctx.mode) {
        return Ok(());
    }
    match ctx.mode {
        Mode::Repo => anyhow::bail!("{what} is not available in repo.ocu.star"),
        Mode::Package if allowed == [Mode::Repo] => {
            anyhow::bail!("{what} is only available in repo.ocu.star")
        }
        Mode::Package => anyhow::bail!("{what} can only be used inside a work function"),
        Mode::Call => anyhow::bail!("{what} can only be used at the top level of a file"),
    }
}

fn call_location(eval: &Evaluator) -> Location {
    eval.call_stack_top_location()
        .map(|s| span_location(&s))
        .unwrap_or(Location {
            file: "<unknown>".into(),
            line: 0,
            column: 0,
        })
}

fn to_json(v: Value, what: &str) -> anyhow::Result<Json> {
    v.to_json_value()
        .map_err(|e| anyhow::anyhow!("{what} must be JSON-compatible: {e}"))
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

/// Find which module-level function `v` is.
pub(crate) fn identify(
    eval: &Evaluator,
    ctx: &Ctx,
    v: Value,
    role: &str,
) -> anyhow::Result<(FunctionId, Params)> {
    let kind = v.get_type();
    if kind != "function" {
        anyhow::bail!("{role} must be a function, got a value of type {kind}");
    }
    let name = v.function_name().unwrap_or("lambda").to_string();
    let not_top = || {
        anyhow::anyhow!(
            "{role} must be a function defined at the top level of a .ocu.star file or a loaded file, \
             so it can be found again when the release runs; `{name}` is {}",
            if name == "lambda" {
                "a lambda"
            } else {
                "not a module-level def"
            }
        )
    };
    if name == "lambda" {
        return Err(not_top());
    }
    if ctx.mode != Mode::Call
        && let Some(frame) = ctx.files.borrow().last()
        && let Some(g) = eval.module().get(&name)
        && g.ptr_eq(v)
        && let Some(d) = frame.defs.get(&name)
    {
        let id = FunctionId {
            name,
            file: frame.rel.clone(),
            line: d.line,
            column: d.column,
        };
        return Ok((id, d.params.clone()));
    }
    let check = |set: &ModuleSet| -> Option<(FunctionId, Params)> {
        for (file, entry) in &set.modules {
            if let Ok(Some(g)) = entry.frozen.get_option(&name)
                && g.value().ptr_eq(v)
            {
                let d = entry.defs.get(&name)?;
                let id = FunctionId {
                    name: name.clone(),
                    file: file.clone(),
                    line: d.line,
                    column: d.column,
                };
                return Some((id, d.params.clone()));
            }
        }
        None
    };
    if let Some(id) = check(&ctx.modules.borrow()) {
        return Ok(id);
    }
    if let Some(frozen) = &ctx.frozen
        && let Some(id) = check(frozen)
    {
        return Ok(id);
    }
    Err(not_top())
}

fn valid_input_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Resolve a ref string written in a file against the evaluation's base.
fn resolve_ref(ctx: &Ctx, s: &str) -> anyhow::Result<Ref> {
    let r = Ref::parse(s).map_err(|e| anyhow::anyhow!("{}", e.message()))?;
    Ok(r.relative_to(&ctx.options.base))
}

/// Convert an `inputs={...}` dict into input specs.
fn convert_inputs(
    ctx: &Ctx,
    inputs: Option<SmallMap<String, Value>>,
) -> anyhow::Result<BTreeMap<String, InputSpec>> {
    let mut out = BTreeMap::new();
    for (name, v) in inputs.into_iter().flatten() {
        if !valid_input_name(&name) {
            anyhow::bail!(
                "invalid input name {name:?}: input names must match [A-Za-z_][A-Za-z0-9_]*"
            );
        }
        let j = to_json(v, &format!("input {name:?}"))?;
        out.insert(name.clone(), input_spec(ctx, &name, j)?);
    }
    Ok(out)
}

fn input_spec(ctx: &Ctx, name: &str, j: Json) -> anyhow::Result<InputSpec> {
    if let Json::Object(o) = &j {
        let is_descriptor = !o.is_empty()
            && o.keys()
                .all(|k| matches!(k.as_str(), "ref" | "default" | "value"));
        if is_descriptor {
            let default = o.get("default").filter(|d| !d.is_null()).cloned();
            return match (o.get("ref"), o.get("value")) {
                (Some(Json::String(r)), _) => Ok(InputSpec::Ref {
                    r#ref: resolve_ref(ctx, r)?,
                    default,
                }),
                (Some(Json::Null) | None, Some(v)) if !v.is_null() => {
                    Ok(InputSpec::Value(v.clone()))
                }
                (Some(Json::Null) | None, _) => match default {
                    Some(d) => Ok(InputSpec::Value(d)),
                    None => anyhow::bail!("input {name:?} needs a ref or a default"),
                },
                (Some(other), _) => {
                    anyhow::bail!("input {name:?}: ref must be a string, got {other}")
                }
            };
        }
    }
    if j.is_null() {
        anyhow::bail!("input {name:?} is None; give a value, or input(ref=..., default=...)");
    }
    Ok(InputSpec::Value(j))
}

/// Check inputs against a function's parameters (SPEC §2 input rules).
fn check_params(
    id: &FunctionId,
    params: &Params,
    inputs: &BTreeMap<String, InputSpec>,
    all_inputs_must_be_params: bool,
) -> anyhow::Result<()> {
    if params.is_ctx_style() {
        return Ok(());
    }
    if all_inputs_must_be_params && !params.has_kwargs {
        for k in inputs.keys() {
            if !params.names.contains(k) {
                anyhow::bail!(
                    "input {k:?} is not a parameter of {} at {} (parameters: {})",
                    id.name,
                    id.pos(),
                    params.names.join(", ")
                );
            }
        }
    }
    for p in &params.required {
        if !inputs.contains_key(p) {
            anyhow::bail!(
                "parameter {p:?} of {} at {} has no default value and no input (inputs: {})",
                id.name,
                id.pos(),
                if inputs.is_empty() {
                    "none".to_string()
                } else {
                    inputs.keys().cloned().collect::<Vec<_>>().join(", ")
                }
            );
        }
    }
    Ok(())
}

/// Record a declared work item; returns the value `task()` / `deploy()`
/// give back (its id, which `phase()` reads).
fn register_work<'v>(eval: &Evaluator<'v, '_, '_>, ctx: &Ctx, work: Work) -> Value<'v> {
    let loc = call_location(eval);
    let mut c = ctx.collector.borrow_mut();
    c.next_id += 1;
    let id = c.next_id;
    let json = json!({"task_id": id, "path": work.path()});
    c.work.insert(id, (work, loc));
    c.pending.push(id);
    c.package_declared = true;
    eval.heap().alloc(json)
}

fn work_id(v: Value) -> anyhow::Result<u64> {
    let j = to_json(v, "a phase entry")?;
    j.get("task_id").and_then(Json::as_u64).ok_or_else(|| {
        anyhow::anyhow!("phase entries must be the values returned by task() or deploy(), got {j}")
    })
}

fn environment_name(v: Value) -> anyhow::Result<EnvironmentName> {
    if let Some(s) = v.unpack_str() {
        return EnvironmentName::new(s).map_err(|e| anyhow::anyhow!("{}", e.message()));
    }
    let j = to_json(v, "environment")?;
    match j.get("name").and_then(Json::as_str) {
        Some(n) => EnvironmentName::new(n).map_err(|e| anyhow::anyhow!("{}", e.message())),
        None => anyhow::bail!(
            "environment must be an environment (from environment() or environments()), got {j}"
        ),
    }
}

fn env_value<'v>(heap: Heap<'v>, env: &Environment) -> Value<'v> {
    heap.alloc(AllocStruct([
        ("name", heap.alloc(env.name.as_str())),
        (
            "attributes",
            heap.alloc(Json::Object(env.attributes.clone())),
        ),
    ]))
}

fn shell_impl<'v>(
    eval: &mut Evaluator<'v, '_, '_>,
    command: &str,
    shell: &str,
    dir: &str,
    env: Option<SmallMap<String, String>>,
    mute: bool,
    continue_on_error: bool,
) -> anyhow::Result<Value<'v>> {
    let ctx = ctx(eval)?;
    let req = ShellRequest {
        command: command.to_string(),
        shell: shell.to_string(),
        dir: ctx.path(dir),
        env: env.into_iter().flatten().collect(),
    };
    let mut on_line = |stream: Stream, line: &str| {
        if !mute {
            ctx.log_line(stream, line);
        }
    };
    let out = ctx
        .options
        .host
        .shell(&req, &mut on_line)
        .map_err(|e| anyhow::anyhow!("{}", ctx.options.secrets.mask(e.message())))?;
    if out.exit_code != 0 && !continue_on_error {
        anyhow::bail!(
            "{}: exit status {}",
            ctx.options.secrets.mask(command),
            out.exit_code
        );
    }
    let heap = eval.heap();
    Ok(heap.alloc(AllocStruct([
        ("stdout", heap.alloc(out.stdout)),
        ("stderr", heap.alloc(out.stderr)),
        ("combined_output", heap.alloc(out.combined_output)),
        ("exit_code", heap.alloc(out.exit_code)),
    ])))
}

fn http_impl<'v>(
    eval: &mut Evaluator<'v, '_, '_>,
    method: &str,
    url: &str,
    headers: Option<SmallMap<String, String>>,
    body: &str,
) -> anyhow::Result<Value<'v>> {
    let ctx = ctx(eval)?;
    let resp = ctx
        .options
        .host
        .http(&HttpRequest {
            method: method.to_string(),
            url: url.to_string(),
            headers: headers.into_iter().flatten().collect(),
            body: body.to_string(),
        })
        .map_err(|e| anyhow::anyhow!("{}", ctx.options.secrets.mask(e.message())))?;
    let heap = eval.heap();
    Ok(heap.alloc(AllocStruct([
        ("status_code", heap.alloc(resp.status_code as i32)),
        ("status_text", heap.alloc(resp.status_text)),
        ("headers", heap.alloc(serde_json::to_value(resp.headers)?)),
        ("body", heap.alloc(resp.body)),
    ])))
}

#[starlark_module]
fn sdk_globals(builder: &mut GlobalsBuilder) {
    /// Declare the SDK version the file is written for: `ocuroot("0.3.0")`.
    fn ocuroot(#[starlark(require = pos)] version: &str) -> anyhow::Result<NoneType> {
        super::version::check(version).map_err(anyhow::Error::msg)?;
        Ok(NoneType)
    }

    /// A standalone task: `task(fn, name, annotation="", inputs={})`.
    fn task<'v>(
        r#fn: Value<'v>,
        name: &str,
        #[starlark(default = "")] annotation: &str,
        inputs: Option<SmallMap<String, Value<'v>>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        task_impl(eval, r#fn, name, annotation, inputs)
    }

    /// Alias of `task` (older spelling).
    fn call<'v>(
        r#fn: Value<'v>,
        name: &str,
        #[starlark(default = "")] annotation: &str,
        inputs: Option<SmallMap<String, Value<'v>>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        task_impl(eval, r#fn, name, annotation, inputs)
    }

    /// A deployment to one environment: `deploy(environment, up, down, inputs={})`.
    fn deploy<'v>(
        environment: Value<'v>,
        up: Option<Value<'v>>,
        down: Option<Value<'v>>,
        inputs: Option<SmallMap<String, Value<'v>>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let ctx = ctx(eval)?;
        require_mode(ctx, "deploy()", &[Mode::Package])?;
        let env = environment_name(environment)?;
        let up = up.ok_or_else(|| anyhow::anyhow!("deploy() needs an `up` function"))?;
        let down = down.ok_or_else(|| anyhow::anyhow!("deploy() needs a `down` function"))?;
        let (up_id, up_params) = identify(eval, ctx, up, "deploy() `up`")?;
        let (down_id, down_params) = identify(eval, ctx, down, "deploy() `down`")?;
        let mut specs = convert_inputs(ctx, inputs)?;
        if specs.contains_key("environment") {
            anyhow::bail!(
                "environment is a reserved input for deployments: it is always passed, as a dict with name and attributes"
            );
        }
        specs.insert(
            "environment".to_string(),
            InputSpec::Ref {
                r#ref: Ref::parse(&format!("@/environment/{env}"))
                    .map_err(|e| anyhow::anyhow!("{}", e.message()))?,
                default: None,
            },
        );
        check_params(&up_id, &up_params, &specs, true)?;
        // Decision (SPEC §2): `down` receives the inputs it declares.
        check_params(&down_id, &down_params, &specs, false)?;
        Ok(register_work(
            eval,
            ctx,
            Work::Deploy(Deploy {
                environment: env,
                up: up_id,
                down: down_id,
                inputs: specs,
            }),
        ))
    }

    /// Group work: `phase(name, tasks=[...])` (`work=` accepted too).
    fn phase<'v>(
        #[starlark(require = pos)] name: &str,
        tasks: Option<Value<'v>>,
        work: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let ctx = ctx(eval)?;
        require_mode(ctx, "phase()", &[Mode::Package])?;
        let list = match (tasks, work) {
            (Some(t), _) if t.length().map(|n| n > 0).unwrap_or(true) => Some(t),
            (_, Some(w)) => Some(w),
            (t, None) => t,
        };
        let mut ids = Vec::new();
        if let Some(list) = list {
            for item in list
                .iterate(eval.heap())
                .map_err(|e| anyhow::anyhow!("phase tasks must be a list: {e}"))?
            {
                ids.push(work_id(item)?);
            }
        }
        let mut c = ctx.collector.borrow_mut();
        let pending = std::mem::take(&mut c.pending);
        for id in pending {
            if !ids.contains(&id) {
                c.phases.push((String::new(), vec![id]));
            }
        }
        c.phases.push((name.to_string(), ids));
        c.package_declared = true;
        Ok(NoneType)
    }

    /// An input from state: `input(ref=None, default=None)`.
    fn input<'v>(
        r#ref: Option<Value<'v>>,
        default: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let ctx = ctx(eval)?;
        require_mode(ctx, "input()", &[Mode::Package, Mode::Call])?;
        let r = match r#ref {
            None => None,
            Some(v) if v.is_none() => None,
            Some(v) => match v.unpack_str() {
                Some(s) => Some(resolve_ref(ctx, s)?.to_string()),
                None => match to_json(v, "ref")?.get("ref").and_then(Json::as_str) {
                    Some(s) => Some(resolve_ref(ctx, s)?.to_string()),
                    None => anyhow::bail!("input(ref=...) must be a ref string or ref(...)"),
                },
            },
        };
        let d = match default {
            Some(v) if !v.is_none() => Some(to_json(v, "default")?),
            _ => None,
        };
        if r.is_none() && d.is_none() {
            anyhow::bail!("input must have either ref or default");
        }
        let mut o = serde_json::Map::new();
        if let Some(r) = r {
            o.insert("ref".into(), Json::String(r));
        }
        if let Some(d) = d {
            o.insert("default".into(), d);
        }
        Ok(eval.heap().alloc(Json::Object(o)))
    }

    /// A required input from state; work blocks until the ref exists.
    fn r#ref<'v>(
        #[starlark(require = pos)] r: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let ctx = ctx(eval)?;
        require_mode(ctx, "ref()", &[Mode::Package, Mode::Call])?;
        let abs = resolve_ref(ctx, r)?;
        Ok(eval.heap().alloc(json!({"ref": abs.to_string()})))
    }

    /// Success: `done(outputs={}, tags=[], watch=[])`; `output=` is accepted too.
    fn done<'v>(
        outputs: Option<Value<'v>>,
        output: Option<Value<'v>>,
        tags: Option<UnpackList<String>>,
        watch: Option<UnpackList<String>>,
        #[starlark(default = "")] annotation: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let _ = annotation;
        let outs = match (outputs, output) {
            (Some(_), Some(_)) => anyhow::bail!("done() takes outputs= or output=, not both"),
            (Some(v), None) | (None, Some(v)) if !v.is_none() => to_json(v, "outputs")?,
            _ => json!({}),
        };
        if !outs.is_object() {
            anyhow::bail!("done() outputs must be a dict, got {outs}");
        }
        let tags: Vec<String> = tags.map(|t| t.items).unwrap_or_default();
        for t in &tags {
            Tag::new(t.as_str()).map_err(|e| anyhow::anyhow!("{}", e.message()))?;
        }
        Ok(eval.heap().alloc(json!({"done": {
            "outputs": outs,
            "tags": tags,
            "watch": watch.map(|w| w.items).unwrap_or_default(),
        }})))
    }

    /// Continue with another function: `next(fn, annotation="", inputs={})`.
    fn next<'v>(
        r#fn: Value<'v>,
        #[starlark(default = "")] annotation: &str,
        inputs: Option<SmallMap<String, Value<'v>>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let ctx = ctx(eval)?;
        let (id, params) = identify(eval, ctx, r#fn, "next() fn")?;
        let specs = convert_inputs(ctx, inputs)?;
        check_params(&id, &params, &specs, true)?;
        Ok(eval.heap().alloc(json!({"next": {
            "fn": serde_json::to_value(&id)?,
            "annotation": annotation,
            "inputs": serde_json::to_value(&specs)?,
        }})))
    }

    /// An environment value: `environment(name, attributes={})`.
    fn environment<'v>(
        name: &str,
        attributes: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let name = EnvironmentName::new(name).map_err(|e| anyhow::anyhow!("{}", e.message()))?;
        let attributes = match attributes {
            Some(v) if !v.is_none() => match to_json(v, "attributes")? {
                Json::Object(o) => o,
                other => anyhow::bail!("environment attributes must be a dict, got {other}"),
            },
            _ => serde_json::Map::new(),
        };
        Ok(env_value(eval.heap(), &Environment { name, attributes }))
    }

    /// The environments in state, sorted by name.
    fn environments<'v>(eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Vec<Value<'v>>> {
        let ctx = ctx(eval)?;
        require_mode(ctx, "environments()", &[Mode::Package, Mode::Call])?;
        let mut envs: Vec<&Environment> = ctx.options.environments.iter().collect();
        envs.sort_by(|a, b| a.name.cmp(&b.name));
        let heap = eval.heap();
        Ok(envs.iter().map(|e| env_value(heap, e)).collect())
    }

    /// Register an environment (environment files only).
    fn register_environment<'v>(
        #[starlark(require = pos)] env: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let ctx = ctx(eval)?;
        require_mode(ctx, "register_environment()", &[Mode::Package])?;
        let j = to_json(env, "environment")?;
        let name = j.get("name").and_then(Json::as_str).ok_or_else(|| {
            anyhow::anyhow!("register_environment() needs an environment(...), got {j}")
        })?;
        let name = EnvironmentName::new(name).map_err(|e| anyhow::anyhow!("{}", e.message()))?;
        let attributes = match j.get("attributes") {
            Some(Json::Object(o)) => o.clone(),
            None | Some(Json::Null) => serde_json::Map::new(),
            Some(other) => anyhow::bail!("environment attributes must be a dict, got {other}"),
        };
        let loc = call_location(eval);
        ctx.collector
            .borrow_mut()
            .environments
            .push((Environment { name, attributes }, loc));
        Ok(NoneType)
    }

    /// Register a value to be masked as `<secret>`; returns it.
    fn secret<'v>(
        #[starlark(require = pos)] value: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let s = value
            .unpack_str()
            .ok_or_else(|| anyhow::anyhow!("secret value must be a string"))?;
        ctx(eval)?.options.secrets.add(s);
        Ok(value)
    }

    /// `d[key]`, or a clear failure naming the key.
    fn unwrap<'v>(
        #[starlark(require = pos)] d: Value<'v>,
        #[starlark(require = pos)] key: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        d.at(key, eval.heap())
            .map_err(|_| anyhow::anyhow!("expected key {key} in {d}"))
    }

    /// `{"outputs": kwargs}`.
    fn outputs<'v>(
        #[starlark(kwargs)] kwargs: SmallMap<String, Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let mut o = serde_json::Map::new();
        for (k, v) in kwargs {
            o.insert(k.clone(), to_json(v, &k)?);
        }
        Ok(eval.heap().alloc(json!({ "outputs": o })))
    }

    /// Set the repository alias used in refs (repo.ocu.star only).
    fn repo_alias(
        #[starlark(require = pos)] alias: &str,
        eval: &mut Evaluator<'_, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let ctx = ctx(eval)?;
        require_mode(ctx, "repo_alias()", &[Mode::Repo])?;
        if alias.is_empty() {
            anyhow::bail!("repo_alias() needs a non-empty alias");
        }
        ctx.repo.borrow_mut().alias = Some(alias.to_string());
        Ok(NoneType)
    }

    /// Clone URLs for this repository, tried in order (repo.ocu.star only).
    fn remotes(
        #[starlark(require = pos)] urls: UnpackList<String>,
        eval: &mut Evaluator<'_, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let ctx = ctx(eval)?;
        require_mode(ctx, "remotes()", &[Mode::Repo])?;
        ctx.repo.borrow_mut().remotes = Some(urls.items);
        Ok(NoneType)
    }

    /// The function called with a commit that has outstanding work (repo.ocu.star only).
    fn trigger<'v>(
        #[starlark(require = pos)] r#fn: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let ctx = ctx(eval)?;
        require_mode(ctx, "trigger()", &[Mode::Repo])?;
        let (id, _) = identify(eval, ctx, r#fn, "trigger() fn")?;
        ctx.repo.borrow_mut().trigger = Some(id);
        Ok(NoneType)
    }
}

fn task_impl<'v>(
    eval: &mut Evaluator<'v, '_, '_>,
    f: Value<'v>,
    name: &str,
    annotation: &str,
    inputs: Option<SmallMap<String, Value<'v>>>,
) -> anyhow::Result<Value<'v>> {
    let ctx = ctx(eval)?;
    require_mode(ctx, "task()", &[Mode::Package])?;
    let name = TaskName::new(name).map_err(|e| anyhow::anyhow!("{}", e.message()))?;
    let (id, params) = identify(eval, ctx, f, "task() fn")?;
    let specs = convert_inputs(ctx, inputs)?;
    check_params(&id, &params, &specs, true)?;
    Ok(register_work(
        eval,
        ctx,
        Work::Task(Task {
            name,
            function: id,
            annotation: annotation.to_string(),
            inputs: specs,
        }),
    ))
}

#[starlark_module]
fn store_members(builder: &mut GlobalsBuilder) {
    /// Configure the stores: `store.set(state, intent=None)` (repo.ocu.star only).
    fn set<'v>(
        state: Value<'v>,
        intent: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let ctx = ctx(eval)?;
        require_mode(ctx, "store.set()", &[Mode::Repo])?;
        let parse = |v: Value, what: &str| -> anyhow::Result<StoreSpec> {
            let j = to_json(v, what)?;
            serde_json::from_value(j.clone()).map_err(|_| {
                anyhow::anyhow!("{what} must be store.fs(...) or store.git(...), got {j}")
            })
        };
        let state = parse(state, "state")?;
        let intent = match intent {
            Some(v) if !v.is_none() => Some(parse(v, "intent")?),
            _ => None,
        };
        let mut r = ctx.repo.borrow_mut();
        if r.store_set {
            anyhow::bail!("store already set");
        }
        r.store_set = true;
        r.state = Some(state);
        r.intent = intent;
        Ok(NoneType)
    }

    /// A filesystem store at a path relative to the repository root.
    fn fs<'v>(
        #[starlark(require = pos)] path: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        Ok(eval.heap().alloc(json!({"fs": {"path": path}})))
    }

    /// A store on a branch of a git repository.
    fn git<'v>(
        #[starlark(require = pos)] remote_url: &str,
        branch: Option<&str>,
        #[starlark(default = true)] create_branch: bool,
        support_files: Option<SmallMap<String, String>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let files: BTreeMap<String, String> = support_files.into_iter().flatten().collect();
        Ok(eval.heap().alloc(json!({"git": {
            "remote_url": remote_url,
            "branch": branch,
            "create_branch": create_branch,
            "support_files": files,
        }})))
    }
}

/// The host helpers, defined once and registered twice: as `host.<name>`
/// and as bare globals (`shell`, `read`, `write`...), as in the original.
macro_rules! host_helpers {
    ($module:ident, $read:ident, $write:ident) => {
        #[starlark_module]
        fn $module(builder: &mut GlobalsBuilder) {
            /// Run a shell command; see SPEC §2.
            fn shell<'v>(
                #[starlark(require = pos)] command: &str,
                #[starlark(default = "sh")] shell: &str,
                #[starlark(default = ".")] dir: &str,
                env: Option<SmallMap<String, String>>,
                #[starlark(default = false)] mute: bool,
                #[starlark(default = false)] continue_on_error: bool,
                eval: &mut Evaluator<'v, '_, '_>,
            ) -> anyhow::Result<Value<'v>> {
                shell_impl(eval, command, shell, dir, env, mute, continue_on_error)
            }
            /// The operating system (`linux`, `darwin`...).
            fn os(eval: &mut Evaluator<'_, '_, '_>) -> anyhow::Result<String> {
                Ok(ctx(eval)?.options.host.os())
            }
            /// The CPU architecture (`amd64`, `arm64`...).
            fn arch(eval: &mut Evaluator<'_, '_, '_>) -> anyhow::Result<String> {
                Ok(ctx(eval)?.options.host.arch())
            }
            /// The environment variables, as a dict.
            fn env(eval: &mut Evaluator<'_, '_, '_>) -> anyhow::Result<BTreeMap<String, String>> {
                Ok(ctx(eval)?.options.host.env())
            }
            /// The package directory.
            fn pwd(eval: &mut Evaluator<'_, '_, '_>) -> anyhow::Result<String> {
                Ok(ctx(eval)?.work_dir.display().to_string())
            }
            /// Read a file relative to the package directory.
            fn $read(
                #[starlark(require = pos)] path: &str,
                eval: &mut Evaluator<'_, '_, '_>,
            ) -> anyhow::Result<String> {
                let c = ctx(eval)?;
                c.options
                    .host
                    .read_file(&c.path(path))
                    .map_err(|e| anyhow::anyhow!("{}", e.message()))
            }
            /// Write a file relative to the package directory, creating parent directories.
            fn $write(
                #[starlark(require = pos)] path: &str,
                #[starlark(require = pos)] content: &str,
                eval: &mut Evaluator<'_, '_, '_>,
            ) -> anyhow::Result<NoneType> {
                let c = ctx(eval)?;
                c.options
                    .host
                    .write_file(&c.path(path), content)
                    .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
                Ok(NoneType)
            }
            /// The entries of a directory, sorted.
            fn read_dir(
                #[starlark(require = pos)] path: &str,
                eval: &mut Evaluator<'_, '_, '_>,
            ) -> anyhow::Result<Vec<String>> {
                let c = ctx(eval)?;
                c.options
                    .host
                    .read_dir(&c.path(path))
                    .map_err(|e| anyhow::anyhow!("{}", e.message()))
            }
            /// Whether a path is a directory (an error if it does not exist).
            fn is_dir(
                #[starlark(require = pos)] path: &str,
                eval: &mut Evaluator<'_, '_, '_>,
            ) -> anyhow::Result<bool> {
                let c = ctx(eval)?;
                c.options
                    .host
                    .is_dir(&c.path(path))
                    .map_err(|e| anyhow::anyhow!("{}", e.message()))
            }
        }
    };
}

host_helpers!(host_members, read_file, write_file);
host_helpers!(bare_host, read, write);

#[starlark_module]
fn http_members(builder: &mut GlobalsBuilder) {
    /// HTTP GET.
    fn get<'v>(
        #[starlark(require = pos)] url: &str,
        headers: Option<SmallMap<String, String>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        http_impl(eval, "GET", url, headers, "")
    }
    /// HTTP HEAD.
    fn head<'v>(
        #[starlark(require = pos)] url: &str,
        headers: Option<SmallMap<String, String>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        http_impl(eval, "HEAD", url, headers, "")
    }
    /// HTTP DELETE.
    fn delete<'v>(
        #[starlark(require = pos)] url: &str,
        headers: Option<SmallMap<String, String>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        http_impl(eval, "DELETE", url, headers, "")
    }
    /// HTTP POST.
    fn post<'v>(
        #[starlark(require = pos)] url: &str,
        headers: Option<SmallMap<String, String>>,
        #[starlark(default = "")] body: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        http_impl(eval, "POST", url, headers, body)
    }
    /// HTTP PUT.
    fn put<'v>(
        #[starlark(require = pos)] url: &str,
        headers: Option<SmallMap<String, String>>,
        #[starlark(default = "")] body: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        http_impl(eval, "PUT", url, headers, body)
    }
    /// HTTP PATCH.
    fn patch<'v>(
        #[starlark(require = pos)] url: &str,
        headers: Option<SmallMap<String, String>>,
        #[starlark(default = "")] body: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        http_impl(eval, "PATCH", url, headers, body)
    }
}

/// Build the globals shared by every evaluation.
pub(crate) fn build() -> Globals {
    GlobalsBuilder::extended_by(&[
        LibraryExtension::StructType,
        LibraryExtension::Json,
        LibraryExtension::Print,
        LibraryExtension::Map,
        LibraryExtension::Filter,
    ])
    .with(sdk_globals)
    .with(bare_host)
    .with(|b| b.namespace("host", host_members))
    .with(|b| b.namespace("http", http_members))
    .with(|b| b.namespace("store", store_members))
    .build()
}

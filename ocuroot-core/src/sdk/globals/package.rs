//! The globals of package files: tasks, deploys, phases, inputs, results,
//! environments and secrets.

use std::collections::BTreeMap;

use serde_json::{Value as Json, json};
use starlark::collections::SmallMap;
use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::list::UnpackList;
use starlark::values::none::NoneType;
use starlark::values::{Heap, Value};

use super::{call_location, ctx, identify, require_mode, to_json};
use crate::model::{
    Deploy, Environment, EnvironmentName, FunctionId, InputSpec, Tag, Task, TaskName, Work,
};
use crate::refs::Ref;
use crate::sdk::context::{Ctx, Mode, Params};

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
    inputs: SmallMap<String, Value>,
) -> anyhow::Result<BTreeMap<String, InputSpec>> {
    let mut out = BTreeMap::new();
    for (name, v) in inputs {
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
    heap.alloc(super::environment::EnvValue::new(env))
}

/// The environment value of `j` (`{"name", "attributes"}`), as
/// `environment(name=j["name"], attributes=j["attributes"])` makes it.
fn env_from_json<'v>(
    eval: &mut Evaluator<'v, '_, '_>,
    j: &Json,
    what: &str,
) -> anyhow::Result<Value<'v>> {
    let name = j
        .get("name")
        .ok_or_else(|| anyhow::anyhow!("{what}: expected key \"name\" in {j}"))?
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("{what}: the name must be a string, got {}", j["name"]))?;
    let name = EnvironmentName::new(name).map_err(|e| anyhow::anyhow!("{}", e.message()))?;
    let attributes = match j.get("attributes") {
        Some(Json::Object(o)) => o.clone(),
        None => anyhow::bail!("{what}: expected key \"attributes\" in {j}"),
        Some(other) => anyhow::bail!("environment attributes must be a dict, got {other}"),
    };
    Ok(env_value(eval.heap(), &Environment { name, attributes }))
}

/// `task` and its older spelling `call`: the same function under two names.
macro_rules! task_functions {
    ($($name:ident, $doc:literal;)*) => {
        #[starlark_module]
        pub(super) fn task_globals(builder: &mut GlobalsBuilder) {
            $(
                #[doc = $doc]
                fn $name<'v>(
                    r#fn: Value<'v>,
                    name: &str,
                    #[starlark(default = "")] annotation: &str,
                    // Absent: an empty map ("Absent dicts" in sdk/globals/mod.rs).
                    #[starlark(default = SmallMap::new())] inputs: SmallMap<String, Value<'v>>,
                    eval: &mut Evaluator<'v, '_, '_>,
                ) -> anyhow::Result<Value<'v>> {
                    task_impl(eval, r#fn, name, annotation, inputs)
                }
            )*
        }
    };
}

task_functions! {
    task, "A standalone task: `task(fn, name, annotation=\"\", inputs={})`.";
    call, "Alias of `task` (older spelling).";
}

#[starlark_module]
pub(super) fn package_globals(builder: &mut GlobalsBuilder) {
    /// Declare the SDK version the file is written for: `ocuroot("0.3.0")`.
    fn ocuroot(version: &str) -> anyhow::Result<NoneType> {
        crate::sdk::version::check(version).map_err(anyhow::Error::msg)?;
        Ok(NoneType)
    }

    /// A deployment to one environment: `deploy(environment, up, down, inputs={})`.
    fn deploy<'v>(
        environment: Value<'v>,
        up: Option<Value<'v>>,
        down: Option<Value<'v>>,
        // Absent: an empty map ("Absent dicts" in sdk/globals/mod.rs).
        #[starlark(default = SmallMap::new())] inputs: SmallMap<String, Value<'v>>,
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

    /// Group work: `phase(name, work=[], tasks=[])`, the original's order;
    /// `tasks` wins when both are given and it is not empty.
    fn phase<'v>(
        name: &str,
        work: Option<Value<'v>>,
        tasks: Option<Value<'v>>,
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

    /// A required input from state: `ref(ref)`; work blocks until the ref
    /// exists.
    fn r#ref<'v>(r#ref: &str, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Value<'v>> {
        let ctx = ctx(eval)?;
        require_mode(ctx, "ref()", &[Mode::Package, Mode::Call])?;
        let abs = resolve_ref(ctx, r#ref)?;
        Ok(eval.heap().alloc(json!({"ref": abs.to_string()})))
    }

    /// Success: `done(annotation="", outputs={}, tags=[], watch=[])`, the
    /// original's order; `output=` (the older spelling) is accepted by
    /// keyword.
    fn done<'v>(
        #[starlark(default = "")] annotation: &str,
        outputs: Option<Value<'v>>,
        tags: Option<UnpackList<String>>,
        watch: Option<UnpackList<String>>,
        #[starlark(require = named)] output: Option<Value<'v>>,
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
        // Absent: an empty map ("Absent dicts" in sdk/globals/mod.rs).
        #[starlark(default = SmallMap::new())] inputs: SmallMap<String, Value<'v>>,
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

    /// The environment `envJSON` (JSON text of `{"name", "attributes"}`, as
    /// an environment's `json()` gives) describes.
    #[allow(non_snake_case)]
    fn environment_from_json<'v>(
        envJSON: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let j: Json = serde_json::from_str(envJSON)
            .map_err(|e| anyhow::anyhow!("environment_from_json: invalid JSON: {e}"))?;
        crate::model::check_json_depth(&j, "the text given to environment_from_json")?;
        env_from_json(eval, &j, "environment_from_json")
    }

    /// The environment the dict `envDict` (`{"name", "attributes"}`, as an
    /// environment's `dict()` gives) describes.
    #[allow(non_snake_case)]
    fn environment_from_dict<'v>(
        envDict: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let j = to_json(envDict, "envDict")?;
        env_from_json(eval, &j, "environment_from_dict")
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
        env: Value<'v>,
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
    fn secret<'v>(value: Value<'v>, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Value<'v>> {
        let s = value
            .unpack_str()
            .ok_or_else(|| anyhow::anyhow!("secret value must be a string"))?;
        ctx(eval)?.options.secrets.add(s);
        Ok(value)
    }

    /// `d[key]`, or a clear failure naming the key.
    fn unwrap<'v>(
        d: Value<'v>,
        key: Value<'v>,
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
}

fn task_impl<'v>(
    eval: &mut Evaluator<'v, '_, '_>,
    f: Value<'v>,
    name: &str,
    annotation: &str,
    inputs: SmallMap<String, Value<'v>>,
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

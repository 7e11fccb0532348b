//! The SDK globals: package files (`package`), `repo.ocu.star` (`repo`),
//! host access and HTTP (`host`), and the helpers they share.
//!
//! # Absent dicts
//!
//! A dict parameter that may be left out (`env=`, `headers=`, `inputs=`,
//! `support_files=`) is declared `#[starlark(default = SmallMap::new())]
//! name: SmallMap<..>`, never `Option<SmallMap<..>>`: left out, it is an
//! empty map, every byte of it written. A `None` of `Option<SmallMap>`
//! writes only the niche (the entries pointer); the map's other words are
//! uninitialised, as Rust allows. Collecting such an option through
//! `.into_iter().flatten()`, the release build's `Flatten::next` unswitched
//! its loop on the map's hash index: it loads the index, `freeze`s it and
//! branches on it before testing the pointer. That is sound (LLVM's `freeze`
//! makes it an arbitrary fixed value, and both loops do the same for a
//! `None`; MemorySanitizer, which sees the `freeze`, reports nothing), but
//! valgrind sees only the machine code: "Conditional jump or move depends
//! on uninitialised value(s)" in `shell_impl` for every `host.shell` without
//! `env=`, in any program linking the release `libocuroot` (issue 30).

mod environment;
mod host;
mod json;
mod package;
mod repo;

use std::sync::OnceLock;

use serde_json::Value as Json;
use starlark::environment::{Globals, GlobalsBuilder, LibraryExtension};
use starlark::eval::Evaluator;
use starlark::syntax::{AstModule, Dialect};
use starlark::values::Value;

use super::context::{Ctx, Mode, ModuleSet, Params};
use super::errors::span_location;
use crate::Location;
use crate::model::FunctionId;

pub(super) fn ctx<'a>(eval: &Evaluator<'_, 'a, '_>) -> anyhow::Result<&'a Ctx> {
    eval.extra
        .and_then(|e| e.downcast_ref::<Ctx>())
        .ok_or_else(|| anyhow::anyhow!("internal error: the Ocuroot SDK context is missing"))
}

pub(super) fn require_mode(ctx: &Ctx, what: &str, allowed: &[Mode]) -> anyhow::Result<()> {
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

pub(super) fn call_location(eval: &Evaluator) -> Location {
    eval.call_stack_top_location()
        .map(|s| span_location(&s))
        .unwrap_or(Location {
            file: "<unknown>".into(),
            line: 0,
            column: 0,
        })
}

pub(super) fn to_json(v: Value, what: &str) -> anyhow::Result<Json> {
    super::values::to_json(v, what)
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
        && let Some(g) = module_global(eval, &name)
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
            // Private names (`_helper`) count: they are globals of their
            // module, only hidden from `load()`. The def table tells a def
            // of this module from a name it loaded.
            if let Ok((g, _)) = entry.frozen.get_any_visibility(&name)
                && g.value().ptr_eq(v)
                && let Some(d) = entry.defs.get(&name)
            {
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

/// The global `name` of the module being evaluated, private ones included.
///
/// `Module::get` hides names starting with `_` (they are not exported by
/// `load()`), but they are globals of their module all the same, and the
/// original accepts them as work functions and triggers: those are read by
/// evaluating the name as an expression in the same module.
fn module_global<'v>(eval: &Evaluator<'v, '_, '_>, name: &str) -> Option<Value<'v>> {
    let module = eval.module();
    if let Some(v) = module.get(name) {
        return Some(v);
    }
    let is_identifier =
        name.starts_with('_') && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !is_identifier {
        return None;
    }
    static NO_GLOBALS: OnceLock<Globals> = OnceLock::new();
    let ast = AstModule::parse("<lookup>", name.to_owned(), &Dialect::Standard).ok()?;
    let mut lookup = Evaluator::new(module);
    lookup
        .eval_module(
            ast,
            NO_GLOBALS.get_or_init(|| GlobalsBuilder::new().build()),
        )
        .ok()
}

/// Build the globals shared by every evaluation.
pub(crate) fn build() -> Globals {
    GlobalsBuilder::extended_by(&[
        LibraryExtension::StructType,
        LibraryExtension::Print,
        LibraryExtension::Map,
        LibraryExtension::Filter,
    ])
    .with(sdk_modules)
    .with(|b| b.namespace("json", json::json_members))
    .build()
}

/// The SDK's own functions and namespaces (the globals but for Starlark's
/// library and `json`).
fn sdk_modules(b: &mut GlobalsBuilder) {
    package::package_globals(b);
    package::task_globals(b);
    repo::repo_globals(b);
    host::bare_host(b);
    b.namespace("host", host::host_members);
    b.namespace("http", host::http_members);
    b.namespace("store", repo::store_members);
}

/// The package files' own globals (`task`, `deploy`, `phase`, `done`...),
/// for the SDK's stubs.
pub(super) fn package_members(b: &mut GlobalsBuilder) {
    package::package_globals(b);
    package::task_globals(b);
}

/// `repo.ocu.star`'s globals, for the SDK's stubs.
pub(super) fn repo_members(b: &mut GlobalsBuilder) {
    repo::repo_globals(b);
}

/// The `store` namespace's members, for the SDK's stubs.
pub(super) fn store_members(b: &mut GlobalsBuilder) {
    repo::store_members(b);
}

/// The `host` namespace's members, for the SDK's stubs.
pub(super) fn host_members(b: &mut GlobalsBuilder) {
    host::host_members(b);
}

/// The `http` namespace's members, for the SDK's stubs.
pub(super) fn http_members(b: &mut GlobalsBuilder) {
    host::http_members(b);
}

/// The `json` namespace's members, for the SDK's stubs.
pub(super) fn json_members(b: &mut GlobalsBuilder) {
    json::json_members(b);
}

#[cfg(test)]
mod tests {
    use starlark::docs::{DocItem, DocMember, DocModule};
    use starlark::environment::GlobalsBuilder;

    /// Every function of `module` (namespaces included) as
    /// `(qualified name, positional-only parameters, all parameters)`.
    fn functions(
        module: &DocModule,
        prefix: &str,
        out: &mut Vec<(String, Vec<String>, Vec<String>)>,
    ) {
        for (name, item) in &module.members {
            let qualified = format!("{prefix}{name}");
            match item {
                DocItem::Module(m) => functions(m, &format!("{qualified}."), out),
                DocItem::Member(DocMember::Function(f)) => {
                    let names = |ps: &[starlark::docs::DocParam]| -> Vec<String> {
                        ps.iter().map(|p| p.name.clone()).collect()
                    };
                    let mut all = names(&f.params.pos_only);
                    all.extend(names(&f.params.pos_or_named));
                    all.extend(names(&f.params.named_only));
                    out.push((qualified, names(&f.params.pos_only), all));
                }
                _ => {}
            }
        }
    }

    /// The original's SDK is written in Starlark, where every parameter can
    /// be passed by keyword (`phase(name="build", tasks=[...])`): ours must
    /// take each by keyword too, so no SDK global has a positional-only
    /// parameter.
    #[test]
    fn every_sdk_parameter_is_accepted_by_keyword() {
        let globals = GlobalsBuilder::new().with(super::sdk_modules).build();
        let mut found = Vec::new();
        functions(&globals.documentation(), "", &mut found);
        let positional_only: Vec<String> = found
            .iter()
            .filter(|(_, pos_only, _)| !pos_only.is_empty())
            .map(|(name, pos_only, _)| format!("{name}({})", pos_only.join(", ")))
            .collect();
        assert_eq!(positional_only, Vec::<String>::new());
        // The parameter names are the original's, so keyword calls written
        // for it work here.
        let params = |name: &str| -> Vec<String> {
            found
                .iter()
                .find(|(n, _, _)| n == name)
                .unwrap_or_else(|| panic!("{name} is not an SDK global"))
                .2
                .clone()
        };
        const SHELL: &[&str] = &[
            "command",
            "shell",
            "dir",
            "env",
            "mute",
            "continue_on_error",
            // Ours: the original has no timeout.
            "timeout",
        ];
        for (name, expected) in [
            ("task", &["fn", "name", "annotation", "inputs"][..]),
            ("call", &["fn", "name", "annotation", "inputs"]),
            ("deploy", &["environment", "up", "down", "inputs"]),
            ("phase", &["name", "work", "tasks"]),
            ("input", &["ref", "default"]),
            ("ref", &["ref"]),
            (
                "done",
                &["annotation", "outputs", "tags", "watch", "output"],
            ),
            ("next", &["fn", "annotation", "inputs"]),
            ("environment", &["name", "attributes"]),
            ("environment_from_json", &["envJSON"]),
            ("environment_from_dict", &["envDict"]),
            ("register_environment", &["env"]),
            ("secret", &["value"]),
            ("ocuroot", &["version"]),
            ("repo_alias", &["alias"]),
            ("remotes", &["remotes"]),
            ("trigger", &["fn"]),
            ("store.set", &["state", "intent"]),
            ("store.fs", &["path"]),
            (
                "store.git",
                &["remote_url", "branch", "create_branch", "support_files"],
            ),
            ("host.shell", SHELL),
            ("shell", SHELL),
            ("host.read_file", &["path"]),
            ("read", &["path"]),
            ("host.write_file", &["path", "content"]),
            ("write", &["path", "content"]),
            ("read_dir", &["path"]),
            ("is_dir", &["path"]),
            ("http.get", &["url", "headers"]),
            ("http.post", &["url", "headers", "body"]),
        ] {
            assert_eq!(params(name), expected, "{name}");
        }
    }

    /// The default of parameter `param` of function `name` (`http.get`...)
    /// as documented, `...` for an `Option` parameter.
    fn documented_default(module: &DocModule, name: &str, param: &str) -> Option<String> {
        let (first, rest) = match name.split_once('.') {
            Some((m, rest)) => (m, Some(rest)),
            None => (name, None),
        };
        match (module.members.get(first), rest) {
            (Some(DocItem::Module(m)), Some(rest)) => documented_default(m, rest, param),
            (Some(DocItem::Member(DocMember::Function(f))), None) => {
                let ps = &f.params;
                (ps.pos_only.iter())
                    .chain(&ps.pos_or_named)
                    .chain(&ps.named_only)
                    .find(|p| p.name == param)
                    .and_then(|p| p.default_value.clone())
            }
            _ => None,
        }
    }

    /// "Absent dicts" (the module docs): each dict parameter that may be
    /// left out is an empty dict then, not an `Option` (documented `...`),
    /// whose `None` the release build's valgrind run reported.
    #[test]
    fn absent_dict_parameters_default_to_an_empty_dict() {
        let globals = GlobalsBuilder::new().with(super::sdk_modules).build();
        let docs = globals.documentation();
        for (name, param) in [
            ("host.shell", "env"),
            ("shell", "env"),
            ("http.get", "headers"),
            ("http.head", "headers"),
            ("http.delete", "headers"),
            ("http.post", "headers"),
            ("http.put", "headers"),
            ("http.patch", "headers"),
            ("task", "inputs"),
            ("call", "inputs"),
            ("deploy", "inputs"),
            ("next", "inputs"),
            ("store.git", "support_files"),
        ] {
            assert_eq!(
                documented_default(&docs, name, param).as_deref(),
                Some("{}"),
                "{name}({param}=...)"
            );
        }
    }
}

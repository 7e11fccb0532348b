//! A session in one live module: evaluate a file, then statements and
//! expressions typed after it, with the file's globals and every SDK global
//! (`ocuroot repl`), or one expression's value (`state set -f starlark`).

use std::path::Path;

use starlark::environment::Module;
use starlark::eval::Evaluator;
use starlark::syntax::AstModule;
use starlark::values::Value;

use super::context::{self, Ctx, Mode};
use super::errors::{LastStatement, starlark_to_ocu};
use super::loader::{
    EvalFail, EvalState, Loader, canonical, check_version_calls, def_table, dialect, inside_root,
    set_limits, shared_globals,
};
use super::{EvalOptions, LogLine};
use crate::repo::paths::relative_to;
use crate::{Error, Result};

/// The value of one input, when it is not `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplValue {
    /// As Starlark prints it (`repr`): strings quoted.
    pub repr: String,
    /// As JSON, when it converts (functions and structs of functions do
    /// not).
    pub json: Option<serde_json::Value>,
}

/// Where a session reads its inputs and writes what they print.
pub trait ReplIo {
    /// The next input (one or more complete lines), or `None` at the end.
    fn read(&mut self) -> Option<String>;
    /// A line printed (`print()`, `host.shell` output), secrets masked.
    fn print(&mut self, line: &LogLine);
    /// What an input evaluated to: `Ok(None)` for `None` (and statements),
    /// or its error. Returns whether to go on.
    fn result(&mut self, result: Result<Option<ReplValue>>) -> bool;
}

/// Evaluate `file` (if any), then each input `io` gives in the same module,
/// so the file's globals (private ones too) and every SDK global are
/// there. `repo.ocu.star` is evaluated with the repository globals, any
/// other file as a package file. Fails with the file's error; an input's
/// error goes to [`ReplIo::result`].
pub fn repl(file: Option<&Path>, options: &EvalOptions, io: &mut dyn ReplIo) -> Result<()> {
    let root = canonical(&options.root)?;
    let file = file.map(|f| inside_root(&root, f)).transpose()?;
    let is_repo_file = file
        .as_ref()
        .and_then(|f| f.file_name())
        .is_some_and(|n| n == crate::repo::REPO_CONFIG_FILE);
    let mode = if is_repo_file {
        Mode::Repo
    } else {
        Mode::Package
    };
    let package_dir = match &file {
        Some(f) => f.parent().unwrap_or(&root).to_path_buf(),
        None => options.root.clone(),
    };
    let ctx = Ctx::new(options.clone(), mode, package_dir.clone());
    let state = EvalState::new(&ctx, &root, &package_dir);
    session(&state, file.as_deref(), io)
}

/// The JSON value of one Starlark expression evaluated with the SDK
/// globals and nothing else (`state set -f starlark`).
pub fn evaluate_expression(text: &str, options: &EvalOptions) -> Result<serde_json::Value> {
    super::on_eval_stack(|| evaluate_expression_here(text, options))
}

fn evaluate_expression_here(text: &str, options: &EvalOptions) -> Result<serde_json::Value> {
    struct One<'a> {
        input: Option<&'a str>,
        value: Option<Result<Option<ReplValue>>>,
    }
    impl ReplIo for One<'_> {
        fn read(&mut self) -> Option<String> {
            self.input.take().map(str::to_string)
        }
        fn print(&mut self, _line: &LogLine) {}
        fn result(&mut self, result: Result<Option<ReplValue>>) -> bool {
            self.value = Some(result);
            false
        }
    }
    let mut one = One {
        input: Some(text),
        value: None,
    };
    repl(None, options, &mut one)?;
    match one.value {
        Some(Ok(Some(ReplValue {
            json: Some(json), ..
        }))) => Ok(json),
        Some(Ok(Some(v))) => Err(Error::invalid_input(format!(
            "{} cannot be stored: it is not a JSON value",
            v.repr
        ))),
        Some(Ok(None)) => Ok(serde_json::Value::Null),
        Some(Err(e)) => Err(e),
        None => Err(Error::internal("the expression was not evaluated")),
    }
}

/// Whether `text` is a complete input: a block (`def f():`) once an empty
/// line closes it, anything else once it parses or fails for another
/// reason than ending early (an open bracket).
pub fn input_is_complete(text: &str) -> bool {
    let opens_block = text
        .lines()
        .next()
        .is_some_and(|l| l.trim_end().ends_with(':'));
    if opens_block {
        return text.ends_with("\n\n");
    }
    if super::nesting::check(text, "<repl>").is_err() {
        // Complete enough to be refused when it is run.
        return true;
    }
    match AstModule::parse("<repl>", text.to_owned(), &dialect()) {
        Ok(_) => true,
        Err(e) => !e.to_string().contains("end of file"),
    }
}

fn session(state: &EvalState<'_>, file: Option<&Path>, io: &mut dyn ReplIo) -> Result<()> {
    let ctx = state.ctx;
    let limits = ctx.options.limits;
    let printer = context::Printer(ctx);
    let flush = |io: &mut dyn ReplIo| {
        for line in std::mem::take(&mut *ctx.log.borrow_mut()) {
            io.print(&line);
        }
    };
    Module::with_temp_heap(|module| -> Result<()> {
        let (display, rel, dir, ast) = match file {
            Some(path) => {
                let display = state.display(path);
                let source = ctx
                    .options
                    .host
                    .read_file(path)
                    .map_err(|e| e.context(format!("cannot read {display}")))?;
                super::nesting::check(&source, &display)?;
                let ast = AstModule::parse(&display, source, &dialect())
                    .map_err(|e| starlark_to_ocu(&e, &LastStatement::default()))?;
                check_version_calls(&ast).map_err(EvalFail::into_ocu)?;
                state.stack.borrow_mut().push(path.to_path_buf());
                let rel = relative_to(path, state.package_dir);
                let dir = path.parent().unwrap_or(state.root).to_path_buf();
                (display, rel, dir, Some(ast))
            }
            None => (
                "<repl>".to_string(),
                "<repl>".to_string(),
                state.package_dir.to_path_buf(),
                None,
            ),
        };
        // The file's def table stays on the frame stack, so `task(fn=f)`
        // typed later finds the file's functions.
        let defs = ast.as_ref().map(def_table).unwrap_or_default();
        ctx.files
            .borrow_mut()
            .push(context::FileFrame { rel, defs });
        let loader = Loader {
            state,
            dir,
            from: display,
        };
        let run = |ast: AstModule| -> Result<Option<ReplValue>> {
            let last = LastStatement::default();
            let mut eval = Evaluator::new(&module);
            last.install(&mut eval);
            eval.set_loader(&loader);
            eval.set_print_handler(&printer);
            eval.extra = Some(ctx);
            set_limits(&mut eval, limits)?;
            let value = eval
                .eval_module(ast, shared_globals())
                .map_err(|e| starlark_to_ocu(&e, &last))?;
            Ok(describe(value, &ctx.options.secrets))
        };
        if let Some(ast) = ast {
            let result = run(ast);
            flush(io);
            result.map_err(|e| ctx.options.secrets.mask_error(e))?;
        }
        while let Some(input) = io.read() {
            let result = super::nesting::check(&input, "<repl>")
                .and_then(|()| {
                    AstModule::parse("<repl>", input, &dialect())
                        .map_err(|e| starlark_to_ocu(&e, &LastStatement::default()))
                })
                .and_then(run)
                .map_err(|e| ctx.options.secrets.mask_error(e));
            flush(io);
            if !io.result(result) {
                break;
            }
        }
        Ok(())
    })
}

/// A value as a session shows it, with registered secrets masked.
fn describe(value: Value, secrets: &super::Secrets) -> Option<ReplValue> {
    if value.is_none() {
        return None;
    }
    Some(ReplValue {
        repr: secrets.mask(&value.to_repr()),
        json: value.to_json_value().ok().map(|j| secrets.mask_json(&j)),
    })
}

//! Converting between Starlark errors and crate errors.

use std::cell::RefCell;
use std::rc::Rc;

use starlark::codemap::{FileSpan, FileSpanRef};
use starlark::eval::{BeforeStmtFunc, BeforeStmtFuncDyn, Evaluator};

use crate::{Error, ErrorKind, Location};

/// The 1-based start of a span.
pub(crate) fn span_location(span: &FileSpan) -> Location {
    let r = span.resolve_span();
    Location {
        file: span.filename().to_string(),
        line: r.begin.line as u32 + 1,
        column: r.begin.column as u32 + 1,
    }
}

/// A Starlark error as a crate error: kind `Eval`, the location of the
/// innermost span, the call stack, and Starlark's full rendering (traceback,
/// message and source snippet) as the message.
///
/// Errors raised by the evaluator itself (the tick and heap limits) carry no
/// span; for those the last statement executed (`last`) is the location.
pub(crate) fn starlark_to_ocu(e: &starlark::Error, last: &LastStatement) -> Error {
    let frames = &e.call_stack().frames;
    let mut location = e.span().map(span_location).or_else(|| {
        frames
            .iter()
            .rev()
            .find_map(|f| f.location.as_ref().map(span_location))
    });
    let mut suffix = String::new();
    if location.is_none()
        && let Some(l) = last.get()
    {
        suffix = format!("\n --> {l} (the last statement executed)");
        location = Some(l);
    }
    let stack = frames
        .iter()
        .map(|f| match &f.location {
            Some(l) => format!("{} ({})", f.name, span_location(l)),
            None => f.name.clone(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut message = format!("{e}");
    while message.ends_with('\n') {
        message.pop();
    }
    // Starlark renders a span at the very end of a file (an unclosed call,
    // a missing `:`) at 1:1 with an empty snippet: point at the end of the
    // last line instead, and show it.
    if let Some((at, line)) = e.span().and_then(end_of_file) {
        message = format!(
            "error: {}\n --> {at} (the end of the file)\n  |\n{} | {line}\n  |",
            e.without_diagnostic(),
            at.line
        );
        location = Some(at);
    }
    if message.contains("ticks has been exceeded") {
        message.push_str(" (a loop or recursion that does not end?)");
    }
    message.push_str(&suffix);
    // The message alone, without traceback or snippet: `fail("x")` gives
    // `x`, a failed `host.shell` its own message.
    let bare = e.without_diagnostic().to_string();
    let bare = bare.strip_prefix("fail:").unwrap_or(&bare).trim();
    let summary = bare.lines().next().unwrap_or_default().to_string();
    let mut err = Error::new(ErrorKind::Eval, message)
        .with_stack(stack)
        .with_summary(summary);
    if let Some(l) = location {
        err = err.with_location(l);
    }
    err
}

/// Where a span at the end of its file (past the last character that is not
/// white space) really is: the end of the last line with text, and that line.
fn end_of_file(span: &FileSpan) -> Option<(Location, String)> {
    let source = span.file.source();
    let text = source.trim_end();
    if (span.span.begin().get() as usize) < text.len() {
        return None;
    }
    let line = text.lines().last().unwrap_or_default();
    let at = Location {
        file: span.filename().to_string(),
        line: text.lines().count().max(1) as u32,
        column: line.chars().count() as u32 + 1,
    };
    Some((at, line.to_string()))
}

/// A crate error raised inside Starlark (e.g. from a nested `load`).
pub(crate) fn ocu_to_starlark(e: Error) -> starlark::Error {
    starlark::Error::new_other(anyhow::anyhow!("{}", e.message()))
}

/// Remembers the span of the statement being executed, so errors the
/// evaluator raises without a span (tick and heap limits) still say where.
#[derive(Clone, Default)]
pub(crate) struct LastStatement(Rc<RefCell<Option<FileSpan>>>);

impl LastStatement {
    /// Install on an evaluator.
    pub(crate) fn install<'a, 'e: 'a>(&self, eval: &mut Evaluator<'_, 'a, 'e>) {
        // `before_stmt_for_dap` is starlark's hook for debuggers; the crate is
        // pinned to an exact version, so relying on it is safe.
        eval.before_stmt_for_dap(BeforeStmtFunc::from_dyn(Box::new(self.clone())));
    }

    fn get(&self) -> Option<Location> {
        self.0.borrow().as_ref().map(span_location)
    }
}

impl<'e> BeforeStmtFuncDyn<'e> for LastStatement {
    fn call<'v>(
        &mut self,
        span: FileSpanRef,
        _continued: bool,
        _eval: &mut Evaluator<'v, '_, 'e>,
    ) -> starlark::Result<()> {
        *self.0.borrow_mut() = Some(span.to_file_span());
        Ok(())
    }
}

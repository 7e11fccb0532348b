//! Calling a work function of an evaluated package.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value as Json;
use starlark::environment::Module;
use starlark::eval::Evaluator;
use starlark::values::Value;
use starlark::values::structs::AllocStruct;

use super::context::{Ctx, Mode, Params, Printer};
use super::errors::{LastStatement, starlark_to_ocu};
use super::loader::set_limits;
use super::{Inputs, LoadedFile, LogLine};
use crate::model::{FunctionId, InputSpec, Tag};
use crate::refs::Ref;
use crate::{Error, ErrorKind, Result};

/// A call of one work function.
#[derive(Clone)]
pub struct CallRequest {
    /// The function (from the package, or from an earlier `next`).
    pub function: FunctionId,
    /// Resolved input values by name. Only the parameters the function
    /// declares are passed (SPEC §2: `down` gets the inputs it declares).
    pub inputs: Inputs,
    /// Where `host.shell` runs and relative file paths resolve; defaults to
    /// the package file's directory.
    pub work_dir: Option<PathBuf>,
    /// The release the call belongs to, for relative refs in `next()`;
    /// defaults to the base the file was evaluated with.
    pub base: Option<Ref>,
    /// Receives this call's log lines as they are produced (in addition to
    /// the sink of the evaluation options, which it replaces when set).
    pub log_sink: Option<super::LogSink>,
}

impl std::fmt::Debug for CallRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallRequest")
            .field("function", &self.function)
            .field("inputs", &self.inputs)
            .field("work_dir", &self.work_dir)
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// What a work function returned.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `done(...)` or `None`.
    Done {
        /// Outputs, stored on the run and the task document (secrets masked).
        outputs: serde_json::Map<String, Json>,
        /// Tags linking `<pkg>/@<tag>` to the release.
        tags: Vec<Tag>,
        /// Repository paths whose changes should trigger a new release.
        watch: Vec<String>,
    },
    /// `next(fn, inputs=...)`: continue with another function.
    Next {
        /// The next function.
        function: FunctionId,
        /// Free text.
        annotation: String,
        /// Its inputs (refs already absolute).
        inputs: BTreeMap<String, InputSpec>,
    },
}

/// The result of a call and the log lines it produced.
#[derive(Debug)]
pub struct CallResult {
    /// The outcome, or the error (message and Starlark stack, secrets masked).
    pub outcome: Result<Outcome>,
    /// Everything printed or streamed by `host.shell`, secrets masked.
    pub log: Vec<LogLine>,
}

pub(crate) fn call(file: &LoadedFile, req: &CallRequest) -> CallResult {
    let mut options = file.options.clone();
    if let Some(base) = &req.base {
        options.base = base.clone();
    }
    if let Some(sink) = &req.log_sink {
        options.log_sink = Some(sink.clone());
    }
    let secrets = options.secrets.clone();
    let package_dir = file
        .path
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_else(|| options.root.clone());
    let mut ctx = Ctx::new(
        options.clone(),
        Mode::Call,
        req.work_dir.clone().unwrap_or(package_dir),
    );
    ctx.frozen = Some(file.modules.clone());
    let outcome = file
        .modules
        .find(&req.function)
        .and_then(|(f, params)| run(&ctx, &f, &params, req));
    let outcome = outcome.map_err(|e| secrets.mask_error(e));
    let log = std::mem::take(&mut *ctx.log.borrow_mut());
    CallResult { outcome, log }
}

fn run(
    ctx: &Ctx,
    f: &starlark::values::OwnedFrozenValue,
    params: &Params,
    req: &CallRequest,
) -> Result<Outcome> {
    let printer = Printer(ctx);
    let last = LastStatement::default();
    let returned: Json = Module::with_temp_heap(|module| -> Result<Json> {
        let heap = module.heap();
        let mut eval = Evaluator::new(&module);
        last.install(&mut eval);
        eval.set_print_handler(&printer);
        eval.extra = Some(ctx);
        set_limits(&mut eval, ctx.options.limits)?;
        let fv = heap.access_owned_frozen_value(f);
        let result = if params.is_ctx_style() {
            let inputs: Vec<(&str, Value)> = req
                .inputs
                .iter()
                .map(|(k, v)| (k.as_str(), heap.alloc(v.clone())))
                .collect();
            let c = if inputs.is_empty() {
                heap.alloc(AllocStruct(std::iter::empty::<(String, Value)>()))
            } else {
                heap.alloc(AllocStruct([("inputs", heap.alloc(AllocStruct(inputs)))]))
            };
            eval.eval_function(fv, &[c], &[])
        } else {
            let named: Vec<(&str, Value)> = req
                .inputs
                .iter()
                .filter(|(k, _)| params.has_kwargs || params.names.contains(k))
                .map(|(k, v)| (k.as_str(), heap.alloc(v.clone())))
                .collect();
            eval.eval_function(fv, &[], &named)
        };
        let v = result.map_err(|e| starlark_to_ocu(&e, &last))?;
        super::values::check_depth(v, &format!("the value {} returned", req.function))
            .map_err(|e| Error::new(ErrorKind::Eval, e.to_string()))?;
        v.to_json_value().map_err(|e| {
            Error::new(
                ErrorKind::Eval,
                format!(
                    "{} returned a value that is not JSON-compatible: {e}",
                    req.function
                ),
            )
        })
    })?;
    parse_outcome(ctx, &req.function, returned)
}

fn parse_outcome(ctx: &Ctx, function: &FunctionId, v: Json) -> Result<Outcome> {
    let bad = |what: String| {
        Error::new(
            ErrorKind::Eval,
            format!("{function} returned {what}; expected done(...), next(...) or None"),
        )
    };
    let obj = match v {
        Json::Null => {
            return Ok(Outcome::Done {
                outputs: Default::default(),
                tags: Vec::new(),
                watch: Vec::new(),
            });
        }
        Json::Object(o) => o,
        other => return Err(bad(other.to_string())),
    };
    if let Some(done) = obj.get("done") {
        let secrets = &ctx.options.secrets;
        let outputs = match done.get("outputs") {
            Some(Json::Object(o)) if o.keys().any(|k| k.len() > crate::refs::MAX_SEGMENT_BYTES) => {
                let long = o.keys().find(|k| k.len() > crate::refs::MAX_SEGMENT_BYTES);
                return Err(Error::validation(format!(
                    "{function} returned an output name that cannot be a ref segment: {}",
                    crate::refs::segment_too_long("output name", long.map_or("", |k| k.as_str()))
                )));
            }
            Some(Json::Object(o)) if o.keys().any(|k| secrets.found_in(k)) => {
                return Err(Error::validation(format!(
                    "{function} returned an output whose name contains a value registered \
                     with secret(); output names are stored and shown in the clear (and two \
                     masked names would be one): use a fixed name, with the secret as the value"
                )));
            }
            Some(Json::Object(o)) => {
                match ctx.options.secrets.mask_json(&Json::Object(o.clone())) {
                    Json::Object(o) => o,
                    _ => unreachable!("masking keeps the shape"),
                }
            }
            None | Some(Json::Null) => Default::default(),
            Some(other) => return Err(bad(format!("outputs {other}"))),
        };
        if done.get("tags").is_some_and(|t| secrets.found_in_json(t)) {
            return Err(Error::validation(format!(
                "{function} returned a tag containing a value registered with secret(): tags \
                 become refs, which are stored and shown in the clear"
            )));
        }
        let tags = done
            .get("tags")
            .cloned()
            .map(serde_json::from_value::<Vec<Tag>>)
            .transpose()
            .map_err(|e| Error::validation(format!("{function}: {e}")))?
            .unwrap_or_default();
        let watch = done
            .get("watch")
            .cloned()
            .map(serde_json::from_value::<Vec<String>>)
            .transpose()
            .map_err(|e| bad(format!("watch: {e}")))?
            .unwrap_or_default();
        return Ok(Outcome::Done {
            outputs,
            tags,
            watch,
        });
    }
    if let Some(next) = obj.get("next") {
        if next
            .get("inputs")
            .is_some_and(|i| ctx.options.secrets.found_in_json(i))
        {
            return Err(Error::validation(super::loader::secret_input_message(
                &format!("an input of the next(...) that {function} returned"),
            )));
        }
        let function: FunctionId =
            serde_json::from_value(next.get("fn").cloned().unwrap_or(Json::Null))
                .map_err(|e| bad(format!("next without a function ({e})")))?;
        let inputs: BTreeMap<String, InputSpec> = serde_json::from_value(
            next.get("inputs")
                .cloned()
                .unwrap_or(Json::Object(Default::default())),
        )
        .map_err(|e| bad(format!("next with invalid inputs ({e})")))?;
        let annotation = next
            .get("annotation")
            .and_then(Json::as_str)
            .unwrap_or("")
            .to_string();
        return Ok(Outcome::Next {
            function,
            annotation,
            inputs,
        });
    }
    Err(bad(Json::Object(obj).to_string()))
}

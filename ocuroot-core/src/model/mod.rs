//! Plain data types shared by the SDK, the engine and the bindings.
//!
//! Everything here is serde-serialisable and free of Starlark values: the SDK
//! turns an evaluated `*.ocu.star` file into these types, and the engine stores
//! them in the release document. The JSON shapes follow the original Ocuroot
//! layout (`{"task": {...}}` / `{"deploy": {...}}`, input descriptors with
//! `ref` / `default` / `value`) so existing state stays readable.

mod doc;
mod event;
pub mod graph;
mod names;
mod outcome;
mod package;
mod push;
mod record;
mod release;
mod time;

pub use doc::{StateDoc, StateRead};
pub use event::{Event, EventSink, LogLine};
pub use graph::{DependencyGraph, Node};
pub use names::{EnvironmentName, Tag, TaskName};
pub use outcome::{
    ChangeKind, FoundDeploy, IntentChange, NewRelease, OpReport, Plan, Todo, TodoKind,
    TriggerStatus, Triggered, WorkOutcome,
};
pub use package::{
    DEFAULT_STORE_DIR, Deploy, Environment, FunctionId, InputSpec, Package, Phase, RepoConfig,
    RepoLocations, StoreSpec, Task, Work,
};
pub use push::{IntentPush, PushIndex, PushOutcome, Pushed, ReleaseConfig};
pub use record::{CommitRecord, RepoRecord};
pub use release::{
    ReleaseDoc, ReleaseReport, ReleaseStatus, RunDoc, RunError, RunFunction, RunStatus, RunType,
    StatusMarker, Takeover, WorkDoc, WorkReport, WorkState,
};
pub use time::Timestamp;

/// How deeply values may nest (lists, dicts, structs, JSON arrays and
/// objects) where they cross between Starlark, JSON and the store: task
/// outputs and inputs, `json.encode`, `state set`. Store documents add a few
/// levels of their own, and JSON readers stop at 128, so anything deeper
/// could be stored but never read back.
pub const MAX_VALUE_DEPTH: usize = 100;

/// Read the document stored at `r` as a `T`; `what` names it in the error
/// (`<ref>: invalid <what>: ...`, a [`Store`](crate::ErrorKind::Store)
/// error carrying the ref).
pub fn parse_doc<T: serde::de::DeserializeOwned>(
    r: &dyn std::fmt::Display,
    what: &str,
    doc: serde_json::Value,
) -> crate::Result<T> {
    serde_json::from_value(doc)
        .map_err(|e| crate::Error::store(format!("{r}: invalid {what}: {e}")).with_ref(r))
}

/// Refuse a JSON value nesting deeper than [`MAX_VALUE_DEPTH`]; `what` names
/// it in the error. Iterative, so no input can exhaust the stack.
pub fn check_json_depth(value: &serde_json::Value, what: &str) -> crate::Result<()> {
    use serde_json::Value;
    let mut stack = vec![(value, 1usize)];
    while let Some((v, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Array(a) => Box::new(a.iter()),
            Value::Object(o) => Box::new(o.values()),
            _ => continue,
        };
        if depth > MAX_VALUE_DEPTH {
            return Err(crate::Error::invalid_input(format!(
                "{what} is nested more than {MAX_VALUE_DEPTH} deep"
            )));
        }
        stack.extend(children.map(|c| (c, depth + 1)));
    }
    Ok(())
}

//! Plain data types shared by the SDK, the engine and the bindings.
//!
//! Everything here is serde-serialisable and free of Starlark values: the SDK
//! turns an evaluated `*.ocu.star` file into these types, and the engine stores
//! them in the release document. The JSON shapes follow the original Ocuroot
//! layout (`{"task": {...}}` / `{"deploy": {...}}`, input descriptors with
//! `ref` / `default` / `value`) so existing state stays readable.

mod names;
mod package;
mod release;

pub use names::{EnvironmentName, Tag, TaskName};
pub use package::{
    DEFAULT_STORE_DIR, Deploy, Environment, FunctionId, InputSpec, Package, Phase, RepoConfig,
    RepoLocations, StoreSpec, Task, Work,
};
pub use release::{
    ReleaseDoc, ReleaseReport, ReleaseStatus, RunDoc, RunError, RunFunction, RunStatus, RunType,
    WorkDoc, WorkReport, WorkState,
};

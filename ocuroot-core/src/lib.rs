//! Ocuroot release engine (work in progress).
#![warn(missing_docs)]

pub mod error;
pub mod host;
pub mod model;
pub mod refs;
pub mod repo;
pub mod sdk;
pub mod store;
pub mod workspace;

pub use error::{Error, ErrorKind, Location, Result};
pub use workspace::Workspace;

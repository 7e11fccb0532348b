//! `ocuroot state view`: the state store as web pages, served on a local
//! port or exported as static files.
//!
//! Pages: the overview (packages × environments, environments, counts), a
//! release (phases, work, runs, inputs and outputs, what waits for what,
//! failures with their Starlark stack, earlier attempts), a run (its log,
//! live while it runs), the plan with the dependency graph (SVG drawn here),
//! and the ref browser (`/ref`, `/match`). Everything is read through
//! [`Workspace`](ocuroot_core::Workspace); templates are maud's, which escape every value. With
//! `--allow-intent`, an item waiting for custom state can be approved.
//!
//! `ocuroot preview <file>` serves one more page with the same server and
//! frame: a package file's phases, work and inputs, evaluated from the file.

mod approve;
mod data;
mod detail;
mod export;
mod layout;
mod links;
mod pages;
mod plan;
mod preview;
mod server;

pub(crate) use export::export;
pub(crate) use preview::serve_preview;
pub(crate) use server::{ServeOptions, serve};

//! Integration tests of ocuroot-core, in one test binary with a module per
//! area.

mod architecture;
mod cascade;
mod engine;
mod graph;
mod intent;
mod leases;
mod live;
mod operations;
mod refs;
mod repo;
mod sdk;
mod store;

//! The package files the core's intent tests and the CLI's share, and the
//! names they are released under (alias `test`). Each test crate includes
//! this file with `#[path]`; each prepends its own prelude, which defines
//! `mark(line)`.

#![allow(dead_code)]

/// Two environments, `staging` (tier 1) and `prod` (tier 2).
pub const ENVIRONMENTS: &str = include_str!("environments.ocu.star");

/// A build task that tags its release `v1`, then a deploy to every
/// environment that needs the release's custom state `approval`.
pub const GATED: &str = include_str!("gated.ocu.star");

/// A task gated on the package's custom state `<pkg>/@/custom/approval`.
pub const SHIP: &str = include_str!("ship.ocu.star");

/// A service deployed to every environment; its `up` reads the global
/// custom state `flag` (default `a`) and fails in an environment whose
/// attributes say `fails`. `NAME` is replaced by the package's name.
pub const SERVICE: &str = include_str!("service.ocu.star");

/// A library whose build number counts its releases.
pub const LIB: &str = include_str!("lib.ocu.star");

/// An app deployed to staging with the library's latest build number.
pub const APP: &str = include_str!("app.ocu.star");

/// `release.ocu.star` of the test repository.
pub const PKG: &str = "test/-/release.ocu.star";

/// [`SERVICE`] for the package `name`.
pub fn service(name: &str) -> String {
    SERVICE.replace("NAME", name)
}

/// The package `<name>.ocu.star` of the test repository.
pub fn pkg(name: &str) -> String {
    format!("test/-/{name}.ocu.star")
}

/// `<name>.ocu.star` with [`service`] for each of `names`.
pub fn service_files(names: &[&str]) -> Vec<(String, String)> {
    names
        .iter()
        .map(|n| (format!("{n}.ocu.star"), service(n)))
        .collect()
}

//! `package`: evaluating a `*.ocu.star` file, then calling the work
//! functions it declares, under small limits and a host that runs nothing.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use ocuroot_core::host::{
    Agent, Host, HttpRequest, HttpResponse, LineSink, ShellOutput, ShellRequest,
};
use ocuroot_core::model::{Environment, EnvironmentName, FunctionId, InputSpec, Package, Work};
use ocuroot_core::refs::Ref;
use ocuroot_core::sdk::{self, CallRequest, EvalOptions, Inputs, Limits, Outcome};
use ocuroot_core::{Error, ErrorKind};
use serde_json::{Value, json};

use crate::assert_not_internal;

/// Small limits, so that a runaway input fails fast.
pub fn limits() -> Limits {
    Limits {
        max_ticks: 100_000,
        max_callstack: 50,
        max_heap_bytes: 64 << 20,
        ..Limits::default()
    }
}

/// Work functions called per input, at most (`next` chains included).
const MAX_CALLS: usize = 4;

/// The largest file the host reads for the package.
const MAX_READ: u64 = 1 << 20;

/// A host that runs no command, writes nothing, makes no request, reads
/// only inside the package's directory, and answers everything else with
/// fixed values, so that evaluation depends on the input alone.
struct FuzzHost {
    root: PathBuf,
}

impl FuzzHost {
    fn refuse(what: &str) -> Error {
        Error::host(format!("{what} is not available while fuzzing"))
    }

    /// `path` if it lies inside the root (no `..`), else an error.
    fn inside(&self, path: &Path) -> ocuroot_core::Result<PathBuf> {
        let full = if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.root.join(path)
        };
        let escapes = full.components().any(|c| matches!(c, Component::ParentDir));
        if escapes || !full.starts_with(&self.root) {
            return Err(Error::host(format!(
                "{} is outside the package directory",
                path.display()
            )));
        }
        Ok(full)
    }
}

impl Host for FuzzHost {
    fn shell(
        &self,
        _req: &ShellRequest,
        _lines: &LineSink<'_>,
    ) -> ocuroot_core::Result<ShellOutput> {
        Err(Self::refuse("host.shell"))
    }
    fn env(&self) -> BTreeMap<String, String> {
        [("HOME", "/nonexistent"), ("USER", "fuzz"), ("CI", "true")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
    fn os(&self) -> String {
        "linux".into()
    }
    fn arch(&self) -> String {
        "amd64".into()
    }
    fn read_file(&self, path: &Path) -> ocuroot_core::Result<String> {
        let full = self.inside(path)?;
        let meta = std::fs::symlink_metadata(&full).map_err(|e| Error::io("stat", &full, e))?;
        if !meta.is_file() || meta.len() > MAX_READ {
            return Err(Error::host(format!(
                "{} is not a small file",
                path.display()
            )));
        }
        std::fs::read_to_string(&full).map_err(|e| Error::io("read", &full, e))
    }
    fn write_file(&self, _path: &Path, _contents: &str) -> ocuroot_core::Result<()> {
        Err(Self::refuse("host.write_file"))
    }
    fn read_dir(&self, path: &Path) -> ocuroot_core::Result<Vec<String>> {
        let full = self.inside(path)?;
        let mut names: Vec<String> = std::fs::read_dir(&full)
            .map_err(|e| Error::io("read directory", &full, e))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        Ok(names)
    }
    fn is_dir(&self, path: &Path) -> ocuroot_core::Result<bool> {
        let full = self.inside(path)?;
        std::fs::symlink_metadata(&full)
            .map(|m| m.is_dir())
            .map_err(|e| Error::io("stat", &full, e))
    }
    fn http(&self, _req: &HttpRequest) -> ocuroot_core::Result<HttpResponse> {
        Err(Self::refuse("http"))
    }
    fn now(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000)
    }
    fn agent(&self) -> Agent {
        Agent::new("fuzz", 1)
    }
    fn agent_alive(&self, _agent: &Agent) -> Option<bool> {
        None
    }
}

/// The package directory (written once per process) and its options.
struct Fixture {
    file: PathBuf,
    options: EvalOptions,
}

/// A file the input may `load()`.
const LIB: &str = "\
def helper(x, y = 1):
    return {\"x\": x, \"y\": y}

value = 1
names = [\"a\", \"b\"]
";

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let root = crate::scratch().join("package");
        std::fs::create_dir_all(root.join("lib")).unwrap();
        std::fs::write(root.join("lib.star"), LIB).unwrap();
        std::fs::write(root.join("lib/common.star"), LIB).unwrap();
        std::fs::write(root.join("version.txt"), "1.2.3\n").unwrap();
        // The sandbox compares against the root as the SDK sees it.
        let root = root.canonicalize().unwrap();
        let environments: Vec<Environment> = [("staging", "staging"), ("production", "prod")]
            .into_iter()
            .map(|(name, ty)| Environment {
                name: EnvironmentName::new(name).unwrap(),
                attributes: json!({"type": ty}).as_object().unwrap().clone(),
            })
            .collect();
        let mut options = EvalOptions::new(
            Arc::new(FuzzHost { root: root.clone() }),
            &root,
            Ref::parse("repo/-/release.ocu.star/@r1").unwrap(),
        );
        options.environments = environments.into();
        options.limits = limits();
        Fixture {
            file: root.join("release.ocu.star"),
            options,
        }
    })
}

/// Write the input as `release.ocu.star` and evaluate it. Evaluation
/// returns a file or an error (never `Internal`); a package stores as JSON
/// and reads back the same; then up to [`MAX_CALLS`] work functions are
/// called (inputs: the static values, the defaults, the environment), and
/// each returns an outcome or an error.
pub fn check_package(data: &[u8]) -> bool {
    let fx = fixture();
    std::fs::write(&fx.file, data).expect("write the package file");
    let result = sdk::evaluate_package(&fx.file, &fx.options);
    if debug() {
        match &result {
            Ok(l) => eprintln!("package: evaluated: {:?}", l.contents()),
            Err(e) => eprintln!("package: error: {e}"),
        }
    }
    let loaded = match result {
        Ok(l) => l,
        Err(e) => {
            assert_not_internal(&e, &String::from_utf8_lossy(data));
            return true;
        }
    };
    let Some(package) = loaded.package() else {
        return true;
    };
    round_trip(package);

    let mut calls = 0;
    for (_, work) in package.work() {
        let (functions, inputs, env) = match work {
            Work::Task(t) => (vec![&t.function], &t.inputs, None),
            Work::Deploy(d) => (
                vec![&d.up, &d.down],
                &d.inputs,
                Some(d.environment.as_str()),
            ),
        };
        for f in functions {
            let mut function = f.clone();
            let mut inputs = values(inputs, env);
            while calls < MAX_CALLS {
                calls += 1;
                match call(&loaded, &function, inputs) {
                    Some((next, next_inputs)) => {
                        function = next;
                        inputs = values(&next_inputs, env);
                    }
                    None => break,
                }
            }
        }
    }
    true
}

/// The package's stored (JSON) form reads back as the same package.
fn round_trip(package: &Package) {
    let stored = serde_json::to_value(package)
        .unwrap_or_else(|e| panic!("an evaluated package does not serialize: {e}\n{package:?}"));
    let back: Package = serde_json::from_value(stored.clone())
        .unwrap_or_else(|e| panic!("a stored package does not read back: {e}\n{stored}"));
    assert_eq!(
        &back, package,
        "the stored package reads back different: {stored}"
    );
}

/// `$OCUROOT_FUZZ_DEBUG` is set: print what evaluations and calls give.
fn debug() -> bool {
    static DEBUG: OnceLock<bool> = OnceLock::new();
    *DEBUG.get_or_init(|| std::env::var_os("OCUROOT_FUZZ_DEBUG").is_some())
}

/// Values for a call: static values as given, refs as their defaults (the
/// environment for `@/environment/<name>`), else `null`.
fn values(specs: &BTreeMap<String, InputSpec>, env: Option<&str>) -> Inputs {
    specs
        .iter()
        .map(|(name, spec)| {
            let v = match spec {
                InputSpec::Value(v) => v.clone(),
                InputSpec::Ref { r#ref, default } => match default {
                    Some(d) => d.clone(),
                    None if r#ref.is_global() => json!({
                        "name": r#ref.subpath.clone(),
                        "attributes": {"type": env.unwrap_or("staging")},
                    }),
                    None => Value::Null,
                },
            };
            (name.clone(), v)
        })
        .collect()
}

/// Call `function`; the next function and its inputs if it returned `next`.
fn call(
    loaded: &sdk::LoadedFile,
    function: &FunctionId,
    inputs: Inputs,
) -> Option<(FunctionId, BTreeMap<String, InputSpec>)> {
    let result = loaded.call(&CallRequest {
        function: function.clone(),
        inputs,
        work_dir: None,
        base: None,
        log_sink: None,
    });
    if debug() {
        eprintln!("package: call {function:?}: {:?}", result.outcome);
    }
    match result.outcome {
        Ok(Outcome::Next {
            function, inputs, ..
        }) => Some((function, inputs)),
        Ok(Outcome::Done { .. }) => None,
        Err(e) => {
            assert_ne!(e.kind(), ErrorKind::Internal, "calling {function:?}: {e}");
            None
        }
    }
}

//! Evaluating files without releasing them: `release lint`, `repl`, and
//! expressions (`state set -f starlark`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Workspace;
use crate::Result;
use crate::host::ReadOnlyHost;
use crate::model::{Environment, Package};
use crate::refs::Ref;
use crate::repo::REPO_CONFIG_FILE;
use crate::sdk::{self, EvalOptions, FileContents, LoadedFile, ReplIo};

/// Where the environments shown by a lint came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvironmentSource {
    /// `@/environment/*` in the state store.
    State,
    /// The state store has none; these files of the repository register them.
    Files(Vec<String>),
    /// None anywhere.
    None,
}

/// The result of [`Workspace::lint`].
#[derive(Debug)]
pub struct Lint {
    /// The package file, relative to the root.
    pub file: String,
    /// The ref relative refs resolved against (the release `release new`
    /// would create next).
    pub base: Ref,
    /// The evaluated file.
    pub loaded: LoadedFile,
    /// Where `environments()` got its list.
    pub environment_source: EnvironmentSource,
    /// The commands, writes and requests the file made while it was
    /// evaluated, which lint skipped (it never runs them), secrets masked.
    pub skipped: Vec<String>,
}

impl Lint {
    /// The package, if the file declares a release.
    pub fn package(&self) -> Option<&Package> {
        self.loaded.package()
    }

    /// The JSON form of the lint (`release lint --format json`, and what
    /// the C and Python bindings return): `file`, `base`, then `package`
    /// (a release), `environments` (a file registering them) or nothing
    /// more (an empty file).
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "file": self.file,
            "base": self.base.to_string(),
        });
        let extra = match self.loaded.contents() {
            FileContents::Release(p) => Some(("package", serde_json::to_value(p))),
            FileContents::Environments(e) => Some(("environments", serde_json::to_value(e))),
            FileContents::Empty => None,
        };
        if let (Some((name, Ok(value))), Some(o)) = (extra, v.as_object_mut()) {
            o.insert(name.to_string(), value);
        }
        if let Some(o) = v.as_object_mut() {
            o.insert("skipped".to_string(), self.skipped.clone().into());
        }
        v
    }
}

impl Workspace {
    /// Options for evaluating a file of this repository.
    pub fn eval_options(&self, base: Ref, environments: Vec<Environment>) -> EvalOptions {
        let mut o = EvalOptions::new(self.host.clone(), self.info.root.clone(), base);
        o.environments = environments.into();
        o.limits = self.limits;
        o.secrets = self.secrets.clone();
        o
    }

    /// The former name of [`release_lint`](Self::release_lint).
    #[deprecated(
        since = "0.1.1",
        note = "renamed release_lint, as in every binding and the CLI"
    )]
    pub fn lint(&self, file: impl AsRef<Path>) -> Result<Lint> {
        self.release_lint(file)
    }

    /// `release lint`: evaluate a package file without touching state or
    /// running anything.
    ///
    /// Relative refs resolve against the release `release new` would create
    /// next. `environments()` returns the environments in state; when state
    /// has none, those registered by the repository's environment files, so a
    /// fresh checkout lints meaningfully.
    pub fn release_lint(&self, file: impl AsRef<Path>) -> Result<Lint> {
        let abs = self.package_file(file.as_ref())?;
        let package = self.package_ref(&abs)?;
        let base = package.with_release(&self.next_release_id(&package)?.to_string());
        let mut environments = self.environments()?;
        let mut source = EnvironmentSource::State;
        if environments.is_empty() {
            let (envs, files) = self.registered_environments(&abs)?;
            environments = envs;
            source = if files.is_empty() {
                EnvironmentSource::None
            } else {
                EnvironmentSource::Files(files)
            };
        }
        // Linting runs nothing: commands, writes and requests are skipped
        // and listed (a file under review may be hostile).
        let host = Arc::new(ReadOnlyHost::skipping(self.host.clone()));
        let mut options = self.eval_options(base.clone(), environments);
        options.host = host.clone();
        let loaded = sdk::evaluate_package(&abs, &options)?;
        let skipped = host
            .skipped()
            .iter()
            .map(|s| self.secrets.mask(s))
            .collect();
        Ok(Lint {
            file: package.filename.clone(),
            base,
            loaded,
            environment_source: source,
            skipped,
        })
    }

    /// `repl`: evaluate `file` (a path or a package ref; none: nothing),
    /// then each input `io` gives in the same module, with the file's
    /// globals and every SDK global; see [`sdk::repl`]. Relative refs
    /// resolve against the file's package (no release); `environments()`
    /// returns the environments in state.
    pub fn repl(&self, file: Option<&Path>, io: &mut dyn ReplIo) -> Result<()> {
        let file = file.map(|f| self.package_file(f)).transpose()?;
        let base = match &file {
            Some(f) => self.package_ref(f)?,
            None => self.cwd_ref(),
        };
        let options = self.eval_options(base, self.environments()?);
        sdk::repl(file.as_deref(), &options, io)
    }

    /// The JSON value of one Starlark expression, evaluated with the SDK
    /// globals (`state set -f starlark`).
    pub fn eval_expression(&self, text: &str) -> Result<serde_json::Value> {
        let options = self.eval_options(self.cwd_ref(), self.environments()?);
        sdk::evaluate_expression(text, &options)
    }

    /// Environments registered by the repository's package files (other than
    /// `except`), with the files that register them.
    fn registered_environments(&self, except: &Path) -> Result<(Vec<Environment>, Vec<String>)> {
        let except = except.canonicalize().ok();
        // The package's own repository: the directory of the nearest
        // repo.ocu.star above it (below the root, a repository of its own,
        // such as an example in a project), else the root.
        let repo_dir = except
            .as_deref()
            .and_then(|p| {
                p.ancestors()
                    .skip(1)
                    .take_while(|d| d.starts_with(&self.info.root))
                    .find(|d| d.join(REPO_CONFIG_FILE).is_file())
            })
            .unwrap_or(&self.info.root);
        let mut files = Vec::new();
        collect_package_files(repo_dir, &mut files);
        let mut envs: Vec<Environment> = Vec::new();
        let mut sources = Vec::new();
        for f in files {
            if Some(&f) == except.as_ref() {
                continue;
            }
            let mut options = self.eval_options(Ref::default(), Vec::new());
            // Looking for environments must not run anything: other files'
            // top-level commands and requests are refused here.
            options.host = Arc::new(ReadOnlyHost::new(
                self.host.clone(),
                "while looking for environments (release lint)",
            ));
            // Only files that evaluate cleanly and register environments count.
            let Ok(loaded) = sdk::evaluate_package(&f, &options) else {
                continue;
            };
            if let FileContents::Environments(list) = loaded.contents() {
                sources.push(self.info.relative_path(&f)?);
                for e in list {
                    if !envs.iter().any(|x| x.name == e.name) {
                        envs.push(e.clone());
                    }
                }
            }
        }
        envs.sort_by(|a, b| a.name.cmp(&b.name));
        Ok((envs, sources))
    }
}

/// Every `*.ocu.star` file below `dir` except `repo.ocu.star`, skipping
/// hidden directories, `target`, `node_modules` and directories with a
/// `repo.ocu.star` of their own (another repository); sorted.
fn collect_package_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            if !name.starts_with('.')
                && name != "target"
                && name != "node_modules"
                && !path.join(REPO_CONFIG_FILE).is_file()
            {
                collect_package_files(&path, out);
            }
        } else if name.ends_with(".ocu.star")
            && name != "repo.ocu.star"
            && let Ok(p) = path.canonicalize()
        {
            out.push(p);
        }
    }
}

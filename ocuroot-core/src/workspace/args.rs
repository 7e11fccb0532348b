//! Arguments as users give them: refs relative to the working directory,
//! package files as paths or as package refs.

use std::path::{Path, PathBuf};

use super::Workspace;
use crate::refs::Ref;
use crate::{Error, Result};

impl Workspace {
    /// The ref of the working directory: relative refs given on the command
    /// line resolve against it (`release.ocu.star` from the root is
    /// `<repo>/-/release.ocu.star`).
    pub fn cwd_ref(&self) -> Ref {
        let filename = self.info.relative_path(&self.cwd).unwrap_or_default();
        Ref {
            repo: self.name.clone(),
            filename,
            ..Ref::default()
        }
    }

    /// Parse a ref given by a user and make it absolute against the working
    /// directory.
    pub fn resolve_user_ref(&self, text: &str) -> Result<Ref> {
        if text.trim().is_empty() || text.starts_with('#') {
            return Err(Error::invalid_ref(format!(
                "invalid ref {text:?}: it names nothing (give a ref such as @/custom/<name> or \
                 <package>/@/deploy/<environment>)"
            )));
        }
        let r = Ref::parse(text)?;
        if let Some(checkout) = &self.checkout
            && r.is_relative()
        {
            return Err(Error::invalid_input(format!(
                "ref {text:?} is relative, and this is a checkout of a {} store ({}): give                  the full ref, such as {}/-/<package>/@/custom/<name>",
                checkout.tags.join(" and "),
                checkout.dir.display(),
                checkout.repo
            )));
        }
        let r = r.relative_to(&self.cwd_ref());
        r.validate_storable()
            .map_err(|e| e.context(format!("ref {text:?}")))?;
        Ok(r)
    }

    /// The release of this repository made last at the current commit, of
    /// any package, if there is one: what `release retry` with no argument
    /// retries (the original takes the greatest ref string instead, so
    /// `@r9` came after `@r10`).
    pub fn latest_release_here(&self) -> Result<Option<Ref>> {
        crate::engine::releases::latest_release_here(&self.engine())
    }

    /// The package ref of a package file (`<repo>/-/<path from root>`).
    pub fn package_ref(&self, file: &Path) -> Result<Ref> {
        let abs = self.abs(file);
        let rel = self.info.relative_path(&abs)?;
        Ok(Ref {
            repo: self.name.clone(),
            filename: rel,
            ..Ref::default()
        })
    }

    fn abs(&self, file: &Path) -> PathBuf {
        if file.is_absolute() {
            file.to_path_buf()
        } else {
            self.cwd.join(file)
        }
    }

    /// The package file a user named, as a path (relative to the working
    /// directory, or absolute) or as a package ref, as the original's
    /// commands take them: `//backend/package.ocu.star` and
    /// `./-/backend/package.ocu.star` (from the repository root), or
    /// `<repo>/-/backend/package.ocu.star`. A path that exists is a path.
    pub fn package_file(&self, arg: &Path) -> Result<PathBuf> {
        let abs = self.abs(arg);
        if abs.exists() {
            return Ok(abs);
        }
        let Some(text) = arg.to_str().filter(|t| looks_like_package_ref(t)) else {
            return Ok(abs);
        };
        let r = self.resolve_user_ref(text)?;
        if r.global
            || r.release.is_some()
            || r.subpath_type.is_some()
            || !r.fragment.is_empty()
            || r.filename.is_empty()
        {
            return Err(Error::invalid_input(format!(
                "{text}: expected a package file or a package ref like //path/to/package.ocu.star"
            )));
        }
        if r.repo != self.name {
            return Err(Error::invalid_input(format!(
                "{text} is a package of repository {}, but this is repository {}",
                r.repo, self.name
            )));
        }
        let file = self.info.root.join(&r.filename);
        if !file.is_file() {
            return Err(Error::not_found(format!(
                "{text}: there is no package file {} in the repository",
                r.filename
            )));
        }
        Ok(file)
    }

    /// This workspace with its work limited to `package_or_release`, read
    /// as [`release_arg`](Self::release_arg) reads it; a tag is resolved
    /// to its release.
    pub(super) fn limited(mut self, package_or_release: Option<&str>) -> Result<Workspace> {
        let Some(text) = package_or_release else {
            return Ok(self);
        };
        let mut limit = self
            .release_arg(text)
            .map_err(|e| e.context("the package or release to limit the work to"))?;
        match limit.release.as_deref() {
            None => {}
            Some("") => limit.release = None,
            Some(_) => {
                let resolved = self.state.resolve(&limit)?;
                if !self.state.exists(&resolved)? {
                    return Err(Error::not_found(format!(
                        "cannot limit the work to {limit}: there is no such release"
                    )));
                }
                limit.release = resolved.release;
            }
        }
        self.limit = Some(limit);
        Ok(self)
    }

    /// A release (or package) a user named, `<package>[/@<release or
    /// tag>]`, where `<package>` is a package file path or a package ref
    /// (see [`package_file`](Self::package_file)); made absolute.
    pub fn release_arg(&self, text: &str) -> Result<Ref> {
        if text.trim().is_empty() || text.starts_with('#') {
            return Err(Error::invalid_ref(format!(
                "invalid release {text:?}: give a package path, optionally with /@<release>"
            )));
        }
        let r = self.release_or_package(text)?;
        if r.global || r.subpath_type.is_some() || !r.fragment.is_empty() {
            let mut release = r.clone();
            release.subpath_type = None;
            release.subpath.clear();
            release.fragment.clear();
            let hint = if r.global || release.release.is_none() {
                "a package path, optionally with /@<release>".to_string()
            } else {
                format!("the release itself, {release}")
            };
            return Err(Error::invalid_ref(format!(
                "{text:?} is not a release: it names {r} inside one; give {hint}"
            )));
        }
        Ok(r)
    }

    fn release_or_package(&self, text: &str) -> Result<Ref> {
        let (package, release) = match text.find("/@") {
            Some(i) => (&text[..i], Some(&text[i + 1..])),
            None => (text, None),
        };
        let path = Path::new(package);
        let is_path =
            !package.is_empty() && !looks_like_package_ref(package) && self.abs(path).is_file();
        if !is_path {
            return self.resolve_user_ref(text);
        }
        let package = self.package_ref(&self.abs(path))?;
        match release {
            None => Ok(package),
            Some(rest) => {
                let r = Ref::parse(&format!("{package}/{rest}"))
                    .map_err(|e| e.context(format!("release {text:?}")))?;
                r.validate_storable()
                    .map_err(|e| e.context(format!("ref {text:?}")))?;
                Ok(r)
            }
        }
    }
}

/// Whether a package argument is written as a ref rather than a path.
fn looks_like_package_ref(text: &str) -> bool {
    text.starts_with("//") || text.starts_with("./-/") || text.contains("/-/")
}

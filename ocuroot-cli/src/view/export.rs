//! `ocuroot state view --export DIR`: the overview, the plan, every release
//! and every run as static HTML files in one directory (for a CI job to
//! publish): no scripts, no forms, links between the files.

use std::fs;
use std::path::Path;

use maud::Markup;
use ocuroot_core::{Error, Workspace};

use super::links::{Mode, Site, file_name};
use super::{data, detail, layout, pages, plan};

fn write(dir: &Path, name: &str, page: Markup) -> Result<(), Error> {
    let path = dir.join(name);
    fs::write(&path, page.into_string()).map_err(|e| Error::io("write", &path, e))
}

/// Write every page into `dir` (created if need be); returns how many.
pub(crate) fn export(ws: &Workspace, dir: &Path) -> Result<usize, Error> {
    fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
    let site = Site {
        mode: Mode::Export,
        allow_intent: false,
        token: String::new(),
    };
    let overview = data::overview(ws)?;
    write(dir, "index.html", pages::overview(&site, &overview))?;
    write(dir, "plan.html", plan::plan(&site, &ws.plan()?))?;
    let mut count = 2;
    let mut unreadable = Vec::new();
    for package in &overview.packages {
        for rel in &package.releases {
            let text = rel.to_string();
            let (page, runs) = match data::release(ws, &text) {
                Ok(view) => {
                    count += 1;
                    let page = pages::release(&site, &view, None);
                    (page, view.runs.into_values().flatten().collect())
                }
                Err(e) => {
                    // The page says why; the other releases are still written.
                    let body = layout::error_body(&crate::render::error(&e));
                    unreadable.push(format!("{text}: {e}"));
                    (layout::page(&site, &text, false, body), Vec::new())
                }
            };
            write(dir, &file_name("release", &text), page)?;
            for run in runs {
                let name = file_name("run", &run.r#ref.to_string());
                write(dir, &name, detail::run(&site, &data::run_view(ws, run)?))?;
                count += 1;
            }
        }
    }
    if !unreadable.is_empty() {
        return Err(Error::store(format!(
            "state view --export: wrote {count} pages into {}, but {} releases could not be read:\n  {}",
            dir.display(),
            unreadable.len(),
            unreadable.join("\n  ")
        )));
    }
    Ok(count)
}

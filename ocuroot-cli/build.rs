//! Embeds the repository's examples for `ocuroot mcp` (`example_list`,
//! `example_get`): every `*.star` file and `README.md` under `examples/`,
//! as `EXAMPLE_FILES` in `$OUT_DIR/examples.rs`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Every file to embed below `dir`, skipping hidden directories and build
/// output.
fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if !name.starts_with('.') && name != "target" && name != "node_modules" {
                collect(&path, out);
            }
        } else if kind.is_file() && (name.ends_with(".star") || name == "README.md") {
            out.push(path);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let examples = manifest.join("..").join("examples");
    println!("cargo:rerun-if-changed={}", examples.display());
    let mut files = Vec::new();
    collect(&examples, &mut files);
    let mut rows: Vec<(String, String, String)> = files
        .iter()
        .filter_map(|f| {
            let rel = f.strip_prefix(&examples).ok()?;
            let mut parts = rel.iter().map(|p| p.to_string_lossy().into_owned());
            let example = parts.next()?;
            let inside = parts.collect::<Vec<_>>().join("/");
            if inside.is_empty() {
                return None;
            }
            let abs = std::fs::canonicalize(f).ok()?;
            Some((example, inside, abs.to_string_lossy().into_owned()))
        })
        .collect();
    rows.sort();
    let mut code = String::from(
        "/// Every embedded example file: `(example, path inside it, contents)`,\n\
         /// sorted by example and path.\n\
         const EXAMPLE_FILES: &[(&str, &str, &str)] = &[\n",
    );
    for (example, inside, abs) in rows {
        let _ = writeln!(
            code,
            "    ({example:?}, {inside:?}, include_str!({abs:?})),"
        );
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo")).join("examples.rs");
    std::fs::write(&out, code).expect("write examples.rs");
}

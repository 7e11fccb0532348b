//! Where each page is: a path with a query on the server, a file name in
//! an export (`--export DIR` writes every page flat into DIR, so the links
//! between them are plain relative file names).

use ocuroot_core::refs::Ref;

/// The script that refreshes live pages, served as a file so that the
/// pages' content security policy can forbid inline scripts.
pub(crate) const REFRESH_SCRIPT: &str = "/refresh.js";

/// Served live, or written as static files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `ocuroot state view`: pages refresh themselves, the ref browser and
    /// (with `--allow-intent`) approvals are there.
    Serve,
    /// `ocuroot state view --export DIR`: static pages, no scripts, no forms.
    Export,
    /// `ocuroot preview <file>`: one page about a package file, which
    /// refreshes itself; no state pages to link to.
    Preview,
}

/// How pages link to each other, and what they may offer.
#[derive(Clone, Debug)]
pub(crate) struct Site {
    /// Served or exported.
    pub mode: Mode,
    /// Whether approvals may be written from the page.
    pub allow_intent: bool,
    /// The token every form must carry back (cross-site request guard).
    pub token: String,
}

/// `text` encoded for a query string value.
pub(crate) fn query_value(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The longest export file name made of the ref alone; longer ones are cut
/// and end in a checksum of the whole ref.
const MAX_FILE_STEM: usize = 160;

/// A file name for the page of `r`: characters other than ASCII letters,
/// digits, `.` and `-` are written `_xx` (hex), so names are one path
/// segment, safe on any file system and in a URL, and distinct per ref.
pub(crate) fn file_name(prefix: &str, r: &str) -> String {
    let mut stem = String::with_capacity(r.len() * 2);
    for b in r.bytes() {
        if b.is_ascii_alphanumeric() || b == b'.' || b == b'-' {
            stem.push(b as char);
        } else {
            stem.push_str(&format!("_{b:02x}"));
        }
    }
    if stem.len() > MAX_FILE_STEM {
        let mut cut = MAX_FILE_STEM - 9;
        while !stem.is_char_boundary(cut) {
            cut -= 1;
        }
        let sum = crc32fast::hash(r.as_bytes());
        stem = format!("{}_{sum:08x}", &stem[..cut]);
    }
    format!("{prefix}-{stem}.html")
}

impl Site {
    /// The overview.
    pub fn overview(&self) -> String {
        match self.mode {
            Mode::Serve | Mode::Preview => "/".into(),
            Mode::Export => "index.html".into(),
        }
    }

    /// The plan and graph.
    pub fn plan(&self) -> String {
        match self.mode {
            Mode::Serve | Mode::Preview => "/plan".into(),
            Mode::Export => "plan.html".into(),
        }
    }

    /// A release page.
    pub fn release(&self, r: &Ref) -> String {
        self.page("release", &r.to_string())
    }

    /// A run page.
    pub fn run(&self, r: &Ref) -> String {
        self.page("run", &r.to_string())
    }

    fn page(&self, kind: &str, r: &str) -> String {
        match self.mode {
            Mode::Serve | Mode::Preview => format!("/{kind}?ref={}", query_value(r)),
            Mode::Export => file_name(kind, r),
        }
    }

    /// The ref browser at `r` (served pages only).
    pub fn reference(&self, r: &str) -> Option<String> {
        match self.mode {
            Mode::Serve => Some(format!("/ref?ref={}", query_value(r))),
            Mode::Export | Mode::Preview => None,
        }
    }

    /// The refs matching `glob` (served pages only).
    pub fn matching(&self, glob: &str) -> Option<String> {
        match self.mode {
            Mode::Serve => Some(format!("/match?glob={}", query_value(glob))),
            Mode::Export | Mode::Preview => None,
        }
    }

    /// The approval form for `input` (a custom state ref) of `release`, when
    /// approvals are allowed.
    pub fn approve(&self, release: &Ref, input: &Ref) -> Option<String> {
        (self.mode == Mode::Serve && self.allow_intent).then(|| {
            format!(
                "/approve?release={}&ref={}",
                query_value(&release.to_string()),
                query_value(&input.to_string())
            )
        })
    }

    /// Whether pages carry the script that refreshes them while work runs.
    pub fn refreshes(&self) -> bool {
        matches!(self.mode, Mode::Serve | Mode::Preview)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_one_safe_segment_and_distinct() {
        let a = file_name("run", "repo/-/pkg.ocu.star/@r1/deploy/prod/1");
        assert_eq!(
            a,
            "run-repo_2f-_2fpkg.ocu.star_2f_40r1_2fdeploy_2fprod_2f1.html"
        );
        assert_ne!(
            a,
            file_name("run", "repo/-/pkg.ocu.star/@r1/deploy/prod_2f1")
        );
        let long = "x/".repeat(200);
        let name = file_name("release", &long);
        assert!(name.len() < 200, "{name}");
        assert_ne!(name, file_name("release", &"x/".repeat(201)));
    }
}

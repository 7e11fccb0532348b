//! Git remote URLs: the name a URL gives a repository in refs, which URLs
//! need a network transport, and how a URL is shown without its
//! credentials.

/// Turn a git remote URL into a path usable as the repo part of a ref.
///
/// - `git@github.com:org/repo.git` -> `github.com/org/repo`
/// - `https://github.com/org/repo.git` -> `github.com/org/repo`
/// - `ssh://git@host:22/org/repo` -> `host/org/repo`
/// - `file:///tmp/x/remote.git` and `/tmp/x/remote.git` -> `tmp/x/remote`
///
/// User names and ports are stripped, as are a trailing `.git` and `/`, a
/// URL's query and fragment, and empty, `.` and `..` segments; backslashes
/// count as separators and control characters are dropped. The result has
/// no leading or trailing slash; it is empty only when nothing usable is
/// left.
pub fn git_url_to_valid_path(url: &str) -> String {
    let url = url.trim();
    let (host, path) = if let Some((_scheme, rest)) = url.split_once("://") {
        let rest = rest.split(['?', '#']).next().unwrap_or_default();
        let (authority, path) = match rest.find(['/', '\\']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        (clean_host(authority), path)
    } else if let Some((authority, path)) = scp_like(url) {
        (clean_host(authority), path)
    } else {
        (String::new(), url)
    };

    let mut segments: Vec<String> = Vec::new();
    for segment in std::iter::once(host.as_str()).chain(path.split(['/', '\\'])) {
        let segment: String = segment.chars().filter(|c| !c.is_control()).collect();
        if !segment.is_empty() && segment != "." && segment != ".." {
            segments.push(segment);
        }
    }
    while let Some(last) = segments.last_mut() {
        if let Some(stripped) = last.strip_suffix(".git") {
            *last = stripped.to_string();
        }
        if last.is_empty() || last == "." || last == ".." {
            segments.pop();
        } else {
            break;
        }
    }
    segments.join("/")
}

/// Split an scp-like `[user@]host:path` URL, as git does: a colon with no
/// slash before it. A single letter before the colon is a Windows drive,
/// not a host.
pub(crate) fn scp_like(url: &str) -> Option<(&str, &str)> {
    let colon = url.find(':')?;
    let before = &url[..colon];
    if before.is_empty() || before.contains(['/', '\\']) {
        return None;
    }
    if before.len() == 1 && before.chars().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    Some((before, &url[colon + 1..]))
}

/// Strip `user@` and `:port` (and IPv6 brackets) from a URL authority.
fn clean_host(authority: &str) -> String {
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(inner) = host.strip_prefix('[') {
        inner.split(']').next().unwrap_or_default()
    } else {
        host.split(':').next().unwrap_or_default()
    };
    host.chars()
        .filter(|c| !c.is_control() && *c != '\\')
        .collect()
}

/// Whether `url` needs a network transport (not a path or `file://`).
pub(crate) fn is_network_url(url: &str) -> bool {
    (url.contains("://") && !url.starts_with("file://")) || scp_like(url).is_some()
}

/// `url` as it may be shown: a password or token in its user part
/// (`https://ci:<token>@host/...`, `https://<token>@host/...`) becomes
/// `***`, and so does the value of a query parameter (some hosts take a
/// token there). A user name with no password is kept when it cannot be a
/// token (`git@`, `ssh://deploy@`), since ssh needs it and it is no secret.
///
/// Every error, log line and store document that names a remote uses this.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let authority = match authority.rsplit_once('@') {
        Some((user, host)) => {
            let user = match user.split_once(':') {
                Some((name, _)) => format!("{name}:***"),
                // A lone user part on http(s) is how a token is often
                // given (`https://<token>@host`).
                None if scheme.starts_with("http") && !user.is_empty() => "***".to_string(),
                None => user.to_string(),
            };
            format!("{user}@{host}")
        }
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let (query, fragment) = match query.split_once('#') {
                Some((q, f)) => (q, Some(f)),
                None => (query, None),
            };
            let query: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) => format!("{k}=***"),
                    None => kv.to_string(),
                })
                .collect();
            let fragment = fragment.map_or_else(String::new, |f| format!("#{f}"));
            format!("{path}?{}{fragment}", query.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn credentials_never_show() {
        for (url, shown) in [
            (
                "https://ci:s3cret@git.example.com/org/state.git",
                "https://ci:***@git.example.com/org/state.git",
            ),
            (
                "https://s3cret@git.example.com/state.git",
                "https://***@git.example.com/state.git",
            ),
            (
                "https://git.example.com/state.git?token=s3cret",
                "https://git.example.com/state.git?token=***",
            ),
            (
                "ssh://git@127.0.0.1:2222/srv/state.git",
                "ssh://git@127.0.0.1:2222/srv/state.git",
            ),
            (
                "git@github.com:org/state.git",
                "git@github.com:org/state.git",
            ),
            ("/srv/state.git", "/srv/state.git"),
            ("https://u:p%40ss@h/x", "https://u:***@h/x"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
            assert!(!redact_url(url).contains("s3cret"));
        }
    }
}

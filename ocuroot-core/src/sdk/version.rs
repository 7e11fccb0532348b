//! The `ocuroot("0.3.0")` SDK version declaration.

/// The SDK version this engine implements.
pub const SDK_VERSION: &str = "0.3.0";

/// Check a declared version against the one SDK we have (0.3.0), with the
/// original's rules: a semver constraint satisfied by 0.3.0 (`0.3.x`,
/// `>=0.3`, `0.3`), or any exact `0.3.<n>` (aliased to 0.3.0).
pub(crate) fn check(declared: &str) -> Result<(), String> {
    let d = declared.trim();
    if let Some(patch) = d.strip_prefix("0.3.")
        && !patch.is_empty()
        && patch.chars().all(|c| c.is_ascii_digit())
    {
        return Ok(());
    }
    let ours = semver::Version::new(0, 3, 0);
    // Masterminds-style constraints may separate comparators with spaces;
    // semver (Cargo style) wants commas.
    let normalised = normalise(d);
    match semver::VersionReq::parse(&normalised) {
        Ok(req) if req.matches(&ours) => Ok(()),
        _ => Err(format!(
            "unsupported SDK version {declared:?}: this is Ocuroot SDK {SDK_VERSION}; \
             use ocuroot(\"0.3.0\") (0.3.<n>, 0.3.x and >=0.3 are accepted too)"
        )),
    }
}

fn normalise(s: &str) -> String {
    let mut out = String::new();
    let mut prev_op = false;
    for (i, tok) in s.split_whitespace().enumerate() {
        let is_op = matches!(tok, ">=" | "<=" | ">" | "<" | "=" | "^" | "~");
        if i > 0 {
            out.push_str(if prev_op || tok.starts_with(',') {
                ""
            } else {
                ", "
            });
        }
        out.push_str(tok);
        prev_op = is_op;
    }
    out.replace(",,", ",")
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn accepted_versions() {
        for v in [
            "0.3.0", "0.3.14", "0.3.x", "0.3.*", ">=0.3", ">= 0.3", "0.3", "^0.3", "~0.3",
            ">=0.1 <1",
        ] {
            assert!(check(v).is_ok(), "{v}");
        }
    }

    #[test]
    fn rejected_versions() {
        for v in ["0.4.0", "1.0", "", "banana", "<0.3", "0.2.9"] {
            let e = check(v).unwrap_err();
            assert!(e.contains("unsupported SDK version"), "{v}: {e}");
        }
    }
}

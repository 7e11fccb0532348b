//! Validated names: environments, tasks and tags.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

fn all_chars(s: &str, ok: impl Fn(char) -> bool) -> bool {
    !s.is_empty() && s.chars().all(ok)
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $what:literal, $allowed:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Validate and wrap a name.
            pub fn new(s: impl Into<String>) -> Result<Self> {
                let s = s.into();
                if s.len() > crate::refs::MAX_SEGMENT_BYTES {
                    return Err(Error::validation(crate::refs::segment_too_long($what, &s)));
                }
                let check: fn(&str) -> bool = $check;
                if check(&s) {
                    Ok($name(s))
                } else {
                    Err(Error::validation(format!(
                        concat!("invalid ", $what, " {:?}: ", $allowed),
                        s
                    )))
                }
            }
            /// The name as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                $name::new(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $name::new(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

name_type!(
    /// An environment name: letters, digits, `_`, `.` and `-` (SPEC §6 allows
    /// `-`, which the original rejected). Never `/` or `+`, never `.` or `..`.
    EnvironmentName,
    "environment name",
    "environment names may only contain letters, numbers, periods, underscores and hyphens",
    |s| all_chars(s, |c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && s != "."
        && s != ".."
);

name_type!(
    /// A task name: `[A-Za-z0-9_.-]+` (so it is one ref segment).
    TaskName,
    "task name",
    "task names may only contain letters, numbers, periods, underscores and hyphens",
    |s| all_chars(s, |c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && s != "."
        && s != ".."
);

name_type!(
    /// A release tag: `[A-Za-z0-9._-]+`, not of the release-id form `r<digits>`.
    Tag,
    "tag",
    "tags may only contain letters, numbers, periods, underscores and hyphens, and must not look like a release id (r<number>)",
    |s| all_chars(s, |c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && s != "."
        && s != ".."
        && !crate::refs::is_release_id(s)
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_names() {
        for ok in ["staging", "prod-eu", "us_east.1"] {
            EnvironmentName::new(ok).unwrap();
        }
        for bad in ["", "a/b", "bad+environment", "..", "a b", "é"] {
            assert!(EnvironmentName::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tags() {
        for ok in ["v1", "1.0.0-rc1", "r", "release", "r1a"] {
            Tag::new(ok).unwrap();
        }
        for bad in ["r1", "r123", "invalid/tag", ""] {
            assert!(Tag::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_fit_one_ref_segment() {
        let at_limit = "a".repeat(crate::refs::MAX_SEGMENT_BYTES);
        TaskName::new(at_limit.clone()).unwrap();
        EnvironmentName::new(at_limit.clone()).unwrap();
        let e = TaskName::new(format!("{at_limit}b")).unwrap_err();
        assert!(e.message().contains("201 bytes long"), "{e}");
        assert!(e.message().contains("at most 200 bytes"), "{e}");
        assert!(EnvironmentName::new(format!("{at_limit}b")).is_err());
    }
}

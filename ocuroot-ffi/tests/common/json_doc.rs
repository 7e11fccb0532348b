//! `include/ocuroot-json.md` read as data: one table of fields per result
//! type, each field *always* or *optional*, so the tests can hold every
//! result the C functions give against the page that documents it.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// One documented type: its fields, and whether each is always present.
#[derive(Debug, Default)]
pub struct Section {
    /// Field name to "always present".
    pub fields: BTreeMap<String, bool>,
}

/// The page's sections, and which of them a test has checked.
pub struct JsonDoc {
    /// Sections by name (`ReleaseReport`, `NewRelease:release`...).
    pub sections: BTreeMap<String, Section>,
    checked: RefCell<BTreeSet<String>>,
}

/// The text between the first pair of backticks in `s`.
fn code(s: &str) -> Option<&str> {
    let start = s.find('`')? + 1;
    let len = s[start..].find('`')?;
    Some(&s[start..start + len])
}

impl JsonDoc {
    /// Parse `include/ocuroot-json.md`: a `### `Name`` heading starts a
    /// section; its first table (`| Field | Type | Present | Meaning |`)
    /// lists the fields.
    pub fn load() -> JsonDoc {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../include/ocuroot-json.md");
        let text = std::fs::read_to_string(path).unwrap();
        JsonDoc::parse(&text)
    }

    /// Parse the page's text.
    pub fn parse(text: &str) -> JsonDoc {
        let mut sections = BTreeMap::new();
        let mut current: Option<(String, Section, bool)> = None;
        for line in text.lines() {
            if let Some(heading) = line.strip_prefix("### ") {
                if let Some((name, section, _)) = current.take() {
                    sections.insert(name, section);
                }
                let name = code(heading)
                    .unwrap_or_else(|| panic!("a section without a `Name`: {line}"))
                    .to_string();
                current = Some((name, Section::default(), false));
            } else if line.starts_with("## ") {
                if let Some((name, section, _)) = current.take() {
                    sections.insert(name, section);
                }
            } else if let Some((name, section, table_done)) = &mut current {
                if *table_done {
                    continue;
                }
                if !line.starts_with('|') {
                    // The first table ended.
                    *table_done = !section.fields.is_empty();
                    continue;
                }
                let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
                if cells[0] == "Field" || cells[0].starts_with("---") {
                    continue;
                }
                assert_eq!(cells.len(), 4, "{name}: a row of 4 cells: {line}");
                let field = code(cells[0]).unwrap_or_else(|| panic!("{name}: {line}"));
                let always = if cells[2] == "always" {
                    true
                } else if cells[2].starts_with("optional") {
                    false
                } else {
                    panic!("{name}.{field}: Present is `always` or `optional...`: {line}")
                };
                let again = section.fields.insert(field.to_string(), always);
                assert!(again.is_none(), "{name}.{field} is listed twice");
            }
        }
        if let Some((name, section, _)) = current.take() {
            sections.insert(name, section);
        }
        for (name, section) in &sections {
            assert!(!section.fields.is_empty(), "{name} lists no fields");
        }
        JsonDoc {
            sections,
            checked: RefCell::default(),
        }
    }

    /// Check `value` against the section `name`: an object with every field
    /// listed as always present, and no field the section does not list.
    pub fn check(&self, name: &str, value: &Value) {
        let section = self
            .sections
            .get(name)
            .unwrap_or_else(|| panic!("include/ocuroot-json.md has no section `{name}`"));
        let object = value
            .as_object()
            .unwrap_or_else(|| panic!("{name} is not an object: {value}"));
        for (field, always) in &section.fields {
            if *always {
                assert!(
                    object.contains_key(field),
                    "{name}.{field} is documented as always present, but is missing: {value}"
                );
            }
        }
        for field in object.keys() {
            assert!(
                section.fields.contains_key(field),
                "{name}.{field} is not in include/ocuroot-json.md: {value}"
            );
        }
        self.checked.borrow_mut().insert(name.to_string());
    }

    /// [`check`](Self::check) each element of an array (which must not be
    /// empty, so that the check checks something).
    pub fn check_each(&self, name: &str, value: &Value) {
        let items = value
            .as_array()
            .unwrap_or_else(|| panic!("not an array of {name}: {value}"));
        assert!(!items.is_empty(), "no {name} to check");
        for item in items {
            self.check(name, item);
        }
    }

    /// The sections checked so far.
    pub fn checked(&self) -> BTreeSet<String> {
        self.checked.borrow().clone()
    }
}

//! A state document read back typed: [`StateDoc`], what
//! [`Workspace::state_read`](crate::Workspace::state_read) returns.

use serde::Serialize;
use serde_json::Value;

use super::{Environment, ReleaseDoc, RunDoc, WorkDoc, parse_doc};
use crate::refs::{Ref, ReleaseId, SubPathType};

/// A document of the state (or intent) store, typed by what its ref names.
///
/// | Ref (after links are followed) | Variant |
/// |---|---|
/// | `<pkg>/@r<N>` | [`Release`](StateDoc::Release) |
/// | `<rel>/task/<name>/<n>`, `<rel>/deploy/<env>/<n>` | [`Run`](StateDoc::Run) |
/// | `<rel>/task/<name>`, `<rel>/deploy/<env>` | [`Work`](StateDoc::Work): the outcome a successful run wrote (its inputs and outputs) |
/// | `@/environment/<name>` | [`Environment`](StateDoc::Environment) |
/// | `.../custom/<name>` | [`Custom`](StateDoc::Custom) |
/// | anything else, or a `#fragment` | [`Other`](StateDoc::Other) |
///
/// Its JSON form (what the C and Python bindings return) is
/// `{"kind": "release" | "run" | "work" | "environment" | "custom" | "other",
/// "ref": "<the ref read, links followed>", "document": {...}}`, the document
/// in the form it is stored in.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", content = "document", rename_all = "snake_case")]
pub enum StateDoc {
    /// A release: the commit and the package as evaluated.
    Release(ReleaseDoc),
    /// One run of a task or deploy: its functions, inputs, outputs, error.
    Run(RunDoc),
    /// The outcome of a task or deploy: the run that produced it, its inputs
    /// and outputs.
    Work(WorkDoc),
    /// An environment and its attributes.
    Environment(Environment),
    /// Custom state (`state set` of `.../custom/...`): any JSON value.
    Custom(Value),
    /// Any other document (bookkeeping under `op/`, `push/`, `commit/`, run
    /// status markers) or a part of one picked by a `#fragment`.
    Other(Value),
}

/// [`StateDoc`] with the ref it was read at, as the bindings return it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StateRead {
    /// The ref read, links followed.
    #[serde(rename = "ref")]
    pub r#ref: Ref,
    /// The document.
    #[serde(flatten)]
    pub doc: StateDoc,
}

impl StateDoc {
    /// Type `value`, the document stored at `r` (a ref with links already
    /// followed). A document that does not have the shape its ref promises is
    /// a [`Store`](crate::ErrorKind::Store) error naming the ref.
    pub fn from_ref(r: &Ref, value: Value) -> crate::Result<StateDoc> {
        if !r.fragment.is_empty() {
            return Ok(StateDoc::Other(value));
        }
        let segments: Vec<&str> = r.subpath.split('/').filter(|s| !s.is_empty()).collect();
        let is_release = r
            .release
            .as_deref()
            .is_some_and(|id| ReleaseId::parse(id).is_some());
        Ok(match (r.subpath_type, segments.as_slice()) {
            (None, []) if is_release && !r.global => {
                StateDoc::Release(parse_doc(r, "release document", value)?)
            }
            (Some(SubPathType::Task | SubPathType::Deploy), [_]) if is_release => {
                StateDoc::Work(parse_doc(r, "work outcome", value)?)
            }
            (Some(SubPathType::Task | SubPathType::Deploy), [_, n])
                if is_release && n.parse::<u64>().is_ok() =>
            {
                StateDoc::Run(parse_doc(r, "run document", value)?)
            }
            (Some(SubPathType::Environment), [_]) if r.global => {
                StateDoc::Environment(parse_doc(r, "environment", value)?)
            }
            (Some(SubPathType::Custom), _) => StateDoc::Custom(value),
            _ => StateDoc::Other(value),
        })
    }

    /// The variant's name, as in the JSON form's `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            StateDoc::Release(_) => "release",
            StateDoc::Run(_) => "run",
            StateDoc::Work(_) => "work",
            StateDoc::Environment(_) => "environment",
            StateDoc::Custom(_) => "custom",
            StateDoc::Other(_) => "other",
        }
    }

    /// The outputs of a work outcome or a run (`None` for other documents,
    /// and for a run that has not finished).
    pub fn outputs(&self) -> Option<&Value> {
        match self {
            StateDoc::Work(w) => Some(&w.output),
            StateDoc::Run(r) => r.output.as_ref(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kind(r: &str, v: Value) -> String {
        match StateDoc::from_ref(&Ref::parse(r).unwrap(), v) {
            Ok(d) => d.kind().to_string(),
            Err(e) => format!("error: {e}"),
        }
    }

    #[test]
    fn the_ref_decides_the_type() {
        let work = json!({"run_ref": "r/-/p.ocu.star/@r1/task/build/1", "type": "task",
            "release": "r/-/p.ocu.star/@r1", "output": {"tag": "x"}});
        assert_eq!(kind("r/-/p.ocu.star/@r1/task/build", work.clone()), "work");
        assert_eq!(kind("r/-/p.ocu.star/@r1/deploy/prod", work.clone()), "work");
        assert_eq!(
            kind("@/environment/prod", json!({"name": "prod"})),
            "environment"
        );
        assert_eq!(kind("r/-/p.ocu.star/@/custom/ok", json!(true)), "custom");
        assert_eq!(kind("@/custom/approval", json!("yes")), "custom");
        assert_eq!(
            kind("r/-/p.ocu.star/@r1/task/build#output", json!(1)),
            "other"
        );
        assert_eq!(kind("r/-/p.ocu.star/@r1/op/check_envs", json!({})), "other");
        assert_eq!(
            kind("r/-/p.ocu.star/@r1/task/build/1/status/complete", json!({})),
            "other"
        );
        // A tag link's target is read, not the tag: a tag is no release id.
        assert_eq!(kind("r/-/p.ocu.star/@v1", json!({})), "other");
    }

    #[test]
    fn a_document_of_the_wrong_shape_names_its_ref() {
        let e = kind("r/-/p.ocu.star/@r1/task/build/1", json!({"x": 1}));
        assert!(
            e.starts_with("error: r/-/p.ocu.star/@r1/task/build/1: invalid run document"),
            "{e}"
        );
    }

    #[test]
    fn the_json_form_is_tagged_by_kind() {
        let r = Ref::parse("@/custom/approval").unwrap();
        let read = StateRead {
            doc: StateDoc::from_ref(&r, json!("yes")).unwrap(),
            r#ref: r,
        };
        assert_eq!(
            serde_json::to_value(&read).unwrap(),
            json!({"ref": "@/custom/approval", "kind": "custom", "document": "yes"})
        );
    }
}

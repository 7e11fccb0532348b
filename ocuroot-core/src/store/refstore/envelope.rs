//! The envelope every value is stored in: `{"kind": "doc", "body": ...}`
//! or `{"kind": "link", "body": "<target key>"}`.

use std::fmt;

use serde_json::Value;

use crate::{Error, Result};

/// A decoded envelope.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Stored {
    Doc(Value),
    Link(String),
}

#[derive(serde::Deserialize)]
pub(super) struct Envelope {
    kind: String,
    #[serde(default)]
    body: Value,
}

/// Decodes only the kind, skipping over the body without building it: used
/// on the parent prefixes looked up during link resolution, which are
/// usually large documents (a release) rather than links.
#[derive(serde::Deserialize)]
pub(super) struct KindProbe {
    kind: String,
}

pub(super) fn corrupt(key: &str, why: impl fmt::Display) -> Error {
    Error::store(format!("corrupt document at {key}: {why}")).with_ref(key)
}

pub(super) fn decode(key: &str, bytes: &[u8]) -> Result<Stored> {
    let env: Envelope = serde_json::from_slice(bytes).map_err(|e| corrupt(key, e))?;
    match env.kind.as_str() {
        "ref" => Ok(Stored::Doc(env.body)),
        "link" => match env.body {
            Value::String(target) => Ok(Stored::Link(target)),
            other => Err(corrupt(
                key,
                format!("link target is not a string: {other}"),
            )),
        },
        other => Err(corrupt(key, format!("unknown kind {other:?}"))),
    }
}

/// The target if `bytes` is a link.
pub(super) fn link_target(key: &str, bytes: &[u8]) -> Result<Option<String>> {
    let probe: KindProbe = serde_json::from_slice(bytes).map_err(|e| corrupt(key, e))?;
    if probe.kind != "link" {
        return Ok(None);
    }
    match decode(key, bytes)? {
        Stored::Link(target) => Ok(Some(target)),
        Stored::Doc(_) => Ok(None),
    }
}

/// An envelope to write: serialised straight from the borrowed body, without
/// building (or cloning into) a JSON value first.
#[derive(serde::Serialize)]
pub(super) struct EnvelopeOut<'a, T: ?Sized> {
    kind: &'static str,
    body: &'a T,
}

pub(super) fn encode(stored: &Stored) -> Result<Vec<u8>> {
    match stored {
        Stored::Doc(body) => encode_doc(body),
        Stored::Link(target) => Ok(serde_json::to_vec_pretty(&EnvelopeOut {
            kind: "link",
            body: target,
        })?),
    }
}

/// The envelope of a document, from anything that serialises to one.
pub(super) fn encode_doc<T: serde::Serialize + ?Sized>(body: &T) -> Result<Vec<u8>> {
    Ok(serde_json::to_vec_pretty(&EnvelopeOut {
        kind: "ref",
        body,
    })?)
}

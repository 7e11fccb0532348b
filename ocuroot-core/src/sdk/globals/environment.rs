//! The environment value of package files: what `environment()`,
//! `environments()`, `environment_from_json()` and `environment_from_dict()`
//! return. As the original's `struct(name, attributes, json, dict)`: the
//! attributes `name` and `attributes`, and the methods `json()` (JSON text
//! of `{"name", "attributes"}`) and `dict()` (that dict). It converts to
//! JSON as `{"name", "attributes"}`, so it can be passed wherever an
//! environment or JSON is expected, and two are equal when their names and
//! attributes are.

use std::fmt;

use allocative::Allocative;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value as Json;
use starlark::environment::{Methods, MethodsBuilder, MethodsStatic};
use starlark::starlark_module;
use starlark::starlark_simple_value;
use starlark::values::{
    Heap, ProvidesStaticType, StarlarkPagable, StarlarkValue, Value, ValueLike, starlark_value,
};

use crate::model::Environment;

/// An environment in Starlark. The attributes are kept as JSON text (a
/// simple value holds no heap values, and they are read rarely).
#[derive(Debug, ProvidesStaticType, StarlarkPagable, Allocative)]
pub(super) struct EnvValue {
    name: String,
    attributes: String,
}

starlark_simple_value!(EnvValue);

impl EnvValue {
    /// The value of `env`.
    pub(super) fn new(env: &Environment) -> EnvValue {
        EnvValue {
            name: env.name.as_str().to_string(),
            attributes: Json::Object(env.attributes.clone()).to_string(),
        }
    }

    fn attributes(&self) -> Json {
        // Written by `new` from a JSON object: it reads back.
        serde_json::from_str(&self.attributes).unwrap_or(Json::Object(Default::default()))
    }

    /// `{"name", "attributes"}`.
    fn to_json(&self) -> Json {
        let mut doc = serde_json::Map::new();
        doc.insert("name".into(), Json::String(self.name.clone()));
        doc.insert("attributes".into(), self.attributes());
        Json::Object(doc)
    }
}

impl fmt::Display for EnvValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "environment(name = {}, attributes = {})",
            Json::String(self.name.clone()),
            self.attributes
        )
    }
}

impl Serialize for EnvValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("name", &self.name)?;
        map.serialize_entry("attributes", &self.attributes())?;
        map.end()
    }
}

#[starlark_value(type = "environment")]
impl<'v> StarlarkValue<'v> for EnvValue {
    fn get_methods() -> Option<&'static Methods> {
        static METHODS: MethodsStatic =
            MethodsStatic::new("environment_methods", environment_methods);
        Some(METHODS.methods())
    }

    fn equals(&self, other: Value<'v>) -> starlark::Result<bool> {
        Ok(other
            .downcast_ref::<EnvValue>()
            .is_some_and(|o| o.name == self.name && o.attributes() == self.attributes()))
    }
}

#[starlark_module]
fn environment_methods(builder: &mut MethodsBuilder) {
    /// The environment's name.
    #[starlark(attribute)]
    fn name(this: &EnvValue) -> starlark::Result<String> {
        Ok(this.name.clone())
    }

    /// The environment's attributes (a dict).
    #[starlark(attribute)]
    fn attributes<'v>(this: &EnvValue, heap: Heap<'v>) -> starlark::Result<Value<'v>> {
        Ok(heap.alloc(this.attributes()))
    }

    /// JSON text of `{"name": ..., "attributes": ...}`, which
    /// `environment_from_json` reads back.
    fn json(this: &EnvValue) -> starlark::Result<String> {
        Ok(this.to_json().to_string())
    }

    /// The dict `{"name": ..., "attributes": ...}`, which
    /// `environment_from_dict` reads back.
    fn dict<'v>(this: &EnvValue, heap: Heap<'v>) -> starlark::Result<Value<'v>> {
        Ok(heap.alloc(this.to_json()))
    }
}

//! Parts shared by the spec types: hooks, schemas, one-or-many values, secret masking.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::dtype::FeatureDataType;

/// A `column: type` map whose order is kept.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SchemaSpec(pub Vec<(String, FeatureDataType)>);

impl SchemaSpec {
    /// No columns.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for SchemaSpec {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for SchemaSpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = SchemaSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of column name to data type")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<SchemaSpec, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, FeatureDataType>()? {
                    out.push((k, v));
                }
                Ok(SchemaSpec(out))
            }
        }
        deserializer.deserialize_map(V)
    }
}

/// Butterfree's pre- and post-hooks, as SQL queries over the incoming rows, which they see as a
/// table named `input` (`select *, feature + 1 as feature2 from input`). Each returns the rows
/// that go on; they run in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HooksSpec {
    /// Run on the component's input.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pre: Vec<String>,
    /// Run on the component's output.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post: Vec<String>,
}

impl HooksSpec {
    /// No hook.
    pub fn is_empty(&self) -> bool {
        self.pre.is_empty() && self.post.is_empty()
    }
}

pub(super) fn default_true() -> bool {
    true
}

/// A string or a list of strings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One value.
    One(String),
    /// Several values.
    Many(Vec<String>),
}

impl OneOrMany {
    /// As a list.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// Whether a setting's name says it holds a secret.
pub fn is_secret_setting(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["password", "secret", "token", "key.pem", "private", "sasl.jaas"]
        .iter()
        .any(|k| n.contains(k))
}

/// Client settings with the values of secret-looking names replaced by `***` (for `Debug`).
pub(super) fn masked(options: &BTreeMap<String, String>) -> BTreeMap<&str, &str> {
    options
        .iter()
        .map(|(k, v)| (k.as_str(), if is_secret_setting(k) { "***" } else { v.as_str() }))
        .collect()
}

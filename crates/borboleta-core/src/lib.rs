//! # borboleta-core
//!
//! The declarative part of Borboleta: the pipeline spec ([`FeatureSetPipelineSpec`] and the other
//! `*Spec` types, from YAML or a builder), validation that reports every problem with its YAML
//! path, Butterfree's naming rules, data types, window definitions and errors. No I/O besides
//! reading the spec file.
//!
//! ```
//! use borboleta_core::*;
//! let yaml = r#"
//! readers:
//!   - {id: events, type: file, path: events.jsonl, format: json}
//! source: {query: select * from events}
//! feature_set:
//!   name: user_features
//!   entity: user
//!   keys: [{name: id, dtype: bigint}]
//!   timestamp: {from_column: ts}
//!   features: [{name: amount, dtype: double}]
//! writers: [{type: online_feature_store}]
//! "#;
//! let spec = FeatureSetPipelineSpec::from_yaml_str(yaml, None, &|_| None).unwrap();
//! assert_eq!(output_columns(&spec.feature_set), ["id", "timestamp", "amount"]);
//! ```
#![deny(missing_docs)]
#![warn(missing_debug_implementations)]

pub mod builder;
pub mod dtype;
pub mod error;
mod load;
pub mod naming;
pub mod spec;
pub mod time;
pub mod validate;
pub mod window;
pub mod yaml_lines;

pub use builder::FeatureSetPipelineSpecBuilder;
pub use dtype::FeatureDataType;
pub use error::{Error, Result, SpecIssue, SpecIssues};
pub use load::expand;
pub use naming::{feature_columns, key_columns, output_columns};
pub use spec::*;
pub use window::{WindowDefinition, WindowMode};
pub use yaml_lines::YamlLines;

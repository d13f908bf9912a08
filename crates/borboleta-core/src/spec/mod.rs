//! The declarative pipeline spec: one set of `*Spec` types, read from YAML or built in Rust.
//!
//! ```yaml
//! readers:
//!   - id: events
//!     type: file
//!     path: data/events.jsonl
//!     format: json
//! source:
//!   query: select * from events
//! feature_set:
//!   name: user_features
//!   entity: user
//!   keys: [{name: id, dtype: bigint}]
//!   timestamp: {from_column: ts}
//!   features:
//!     - {name: amount, dtype: double}
//! writers:
//!   - type: historical_feature_store
//!   - type: online_feature_store
//! ```

mod common;
mod feature_set;
mod pipeline;
mod reader;
mod writer;

pub use common::*;
pub use feature_set::*;
pub use pipeline::*;
pub use reader::*;
pub use writer::*;

#[cfg(test)]
mod secret_tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn secrets_are_not_printed() {
        let c = CassandraConfigSpec {
            password: Some("hunter2".into()),
            ..Default::default()
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        let k = KafkaReaderSpec {
            id: "e".into(),
            topic: OneOrMany::One("t".into()),
            connection_string: None,
            value_schema: SchemaSpec::default(),
            options: BTreeMap::from([
                ("sasl.password".to_string(), "hunter2".to_string()),
                ("security.protocol".to_string(), "SASL_SSL".to_string()),
            ]),
            starting_offsets: None,
            ending_offsets: None,
            stream: true,
            columns: vec![],
            incremental_strategy: None,
            pre_processing: vec![],
            hooks: HooksSpec::default(),
        };
        let text = format!("{k:?}");
        assert!(!text.contains("hunter2") && text.contains("SASL_SSL"), "{text}");
    }
}

//! Pipelines declared in Rust: [`FeatureSetPipelineSpecBuilder`] and the builder methods of the
//! feature set types; `build` validates the spec like a YAML one.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::FeatureDataType;
use crate::spec::*;

impl FeatureSetPipelineSpec {
    /// A builder for pipelines declared in Rust.
    pub fn builder() -> FeatureSetPipelineSpecBuilder {
        FeatureSetPipelineSpecBuilder::default()
    }
}

/// Builds a [`FeatureSetPipelineSpec`] in Rust; `build` validates it like a YAML spec.
#[derive(Debug, Default)]
pub struct FeatureSetPipelineSpecBuilder {
    readers: Vec<ReaderSpec>,
    query: Option<String>,
    feature_set: Option<FeatureSetSpec>,
    writers: Vec<WriterSpec>,
    streaming: Option<StreamingSpec>,
    base_dir: Option<PathBuf>,
}

impl FeatureSetPipelineSpecBuilder {
    /// Sets the streaming settings.
    pub fn streaming(mut self, s: StreamingSpec) -> Self {
        self.streaming = Some(s);
        self
    }
    /// Adds a reader.
    pub fn reader(mut self, reader: ReaderSpec) -> Self {
        self.readers.push(reader);
        self
    }
    /// Adds a file reader.
    pub fn file_reader(self, id: &str, path: &str, format: FileFormat) -> Self {
        self.reader(ReaderSpec::File(FileReaderSpec {
            id: id.into(),
            path: path.into(),
            format,
            schema: None,
            options: BTreeMap::new(),
            columns: vec![],
            incremental_strategy: None,
            pre_processing: vec![],
            hooks: HooksSpec::default(),
            stream: false,
            max_file_age_seconds: None,
        }))
    }
    /// Sets the source query.
    pub fn query(mut self, query: &str) -> Self {
        self.query = Some(query.into());
        self
    }
    /// Sets the feature set.
    pub fn feature_set(mut self, fs: FeatureSetSpec) -> Self {
        self.feature_set = Some(fs);
        self
    }
    /// Adds a writer.
    pub fn writer(mut self, w: WriterSpec) -> Self {
        self.writers.push(w);
        self
    }
    /// Folder that relative paths resolve against.
    pub fn base_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.base_dir = Some(dir.into());
        self
    }
    /// Validates and returns the spec.
    pub fn build(self) -> crate::Result<FeatureSetPipelineSpec> {
        let mut issues = crate::SpecIssues::default();
        if self.query.is_none() {
            issues.push("source.query", "a source query is required");
        }
        if self.feature_set.is_none() {
            issues.push("feature_set", "a feature set is required");
        }
        issues.into_result()?;
        let spec = FeatureSetPipelineSpec {
            readers: self.readers,
            source: SourceSpec {
                query: self.query.unwrap_or_default(),
                hooks: HooksSpec::default(),
            },
            feature_set: self.feature_set.unwrap_or_else(|| FeatureSetSpec::new("", "")),
            writers: self.writers,
            streaming: self.streaming,
            base_dir: self.base_dir,
            yaml_lines: None,
            catalog: BTreeMap::new(),
            sink: None,
        };
        crate::validate::validate(&spec).into_result()?;
        Ok(spec)
    }
}

impl FeatureSetSpec {
    /// A feature set with no keys and features yet; timestamp from column `timestamp`.
    pub fn new(name: &str, entity: &str) -> Self {
        Self {
            name: name.into(),
            entity: entity.into(),
            description: String::new(),
            keys: vec![],
            timestamp: TimestampFeatureSpec::default(),
            features: vec![],
            deduplicate_rows: None,
            aggregation: None,
            hooks: HooksSpec::default(),
        }
    }
    /// Adds a key.
    pub fn with_key(mut self, key: FeatureSpec) -> Self {
        self.keys.push(key);
        self
    }
    /// Sets the timestamp feature.
    pub fn with_timestamp(mut self, ts: TimestampFeatureSpec) -> Self {
        self.timestamp = ts;
        self
    }
    /// Adds a feature.
    pub fn with_feature(mut self, f: FeatureSpec) -> Self {
        self.features.push(f);
        self
    }
    /// Sets the description.
    pub fn with_description(mut self, d: &str) -> Self {
        self.description = d.into();
        self
    }
    /// Sets the aggregation (windows, pivot, distinct) of an aggregated feature set.
    pub fn with_aggregation(mut self, a: AggregationSpec) -> Self {
        self.aggregation = Some(a);
        self
    }
    /// Whether this is an aggregated feature set (Butterfree's `AggregatedFeatureSet`).
    pub fn is_aggregated(&self) -> bool {
        self.aggregation.is_some()
            || self
                .features
                .iter()
                .any(|f| matches!(f.transformation, Some(TransformSpec::Aggregated(_))))
    }
}

impl FeatureSpec {
    /// A feature read from the column of the same name.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            description: String::new(),
            dtype: None,
            from_column: None,
            transformation: None,
        }
    }
    /// Sets the type the column is cast to.
    pub fn dtype(mut self, t: FeatureDataType) -> Self {
        self.dtype = Some(t);
        self
    }
    /// Reads from another column.
    pub fn from_column(mut self, c: &str) -> Self {
        self.from_column = Some(c.into());
        self
    }
    /// Sets the description.
    pub fn description(mut self, d: &str) -> Self {
        self.description = d.into();
        self
    }
    /// Computes the feature with a SQL expression.
    pub fn sql(mut self, expression: &str) -> Self {
        self.transformation = Some(TransformSpec::SqlExpression(SqlExpressionSpec {
            expression: expression.into(),
        }));
        self
    }
    /// Computes the feature with functions, optionally over windows.
    pub fn functions(mut self, functions: &[(&str, FeatureDataType)], window: Option<FunctionWindowSpec>) -> Self {
        let functions = functions
            .iter()
            .map(|(f, t)| FunctionSpec {
                function: (*f).into(),
                dtype: *t,
            })
            .collect();
        self.transformation = Some(TransformSpec::SparkFunction(SparkFunctionSpec { functions, window }));
        self
    }
}

impl TimestampFeatureSpec {
    /// Timestamp read from `column`.
    pub fn from_column(column: &str) -> Self {
        Self {
            from_column: Some(column.into()),
            ..Self::default()
        }
    }
}

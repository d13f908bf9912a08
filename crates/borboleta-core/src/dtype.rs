//! Butterfree's `DataType` enum, mapped to Arrow types.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use arrow::datatypes::{DataType as ArrowType, Field, TimeUnit};

/// The data types a feature can declare (Butterfree's `DataType`), plus decimals with precision.
///
/// Written in a spec in lower or upper case: `bigint`, `INTEGER`, `array<string>`, `decimal(12,2)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FeatureDataType {
    /// Timestamp with time zone UTC (Spark `TIMESTAMP`).
    Timestamp,
    /// Wall-clock timestamp without time zone (Spark `TIMESTAMP_NTZ`).
    TimestampNtz,
    /// Bytes.
    Binary,
    /// Boolean.
    Boolean,
    /// Calendar date.
    Date,
    /// Decimal with precision and scale (Butterfree's default: 10, 0).
    Decimal(u8, i8),
    /// 64-bit float.
    Double,
    /// 32-bit float.
    Float,
    /// 32-bit integer.
    Integer,
    /// 64-bit integer.
    Bigint,
    /// UTF-8 string.
    String,
    /// List of 64-bit integers.
    ArrayBigint,
    /// List of strings.
    ArrayString,
    /// List of 32-bit floats.
    ArrayFloat,
}

/// The names accepted in a spec, for error messages.
pub const DATA_TYPE_NAMES: &[&str] = &[
    "timestamp",
    "timestamp_ntz",
    "binary",
    "boolean",
    "date",
    "decimal",
    "double",
    "float",
    "integer",
    "bigint",
    "string",
    "array<bigint>",
    "array<string>",
    "array<float>",
];

impl FeatureDataType {
    /// The Arrow type used for columns of this type.
    pub fn to_arrow(self) -> ArrowType {
        match self {
            Self::Timestamp => ArrowType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Self::TimestampNtz => ArrowType::Timestamp(TimeUnit::Microsecond, None),
            Self::Binary => ArrowType::Binary,
            Self::Boolean => ArrowType::Boolean,
            Self::Date => ArrowType::Date32,
            Self::Decimal(p, s) => ArrowType::Decimal128(p, s),
            Self::Double => ArrowType::Float64,
            Self::Float => ArrowType::Float32,
            Self::Integer => ArrowType::Int32,
            Self::Bigint => ArrowType::Int64,
            Self::String => ArrowType::Utf8,
            Self::ArrayBigint => list_of(ArrowType::Int64),
            Self::ArrayString => list_of(ArrowType::Utf8),
            Self::ArrayFloat => list_of(ArrowType::Float32),
        }
    }

    /// Butterfree's enum member name (`BIGINT`, `TIMESTAMP`, ...), as used in metadata.
    pub fn butterfree_name(self) -> &'static str {
        match self {
            Self::Timestamp => "TIMESTAMP",
            Self::TimestampNtz => "TIMESTAMP_NTZ",
            Self::Binary => "BINARY",
            Self::Boolean => "BOOLEAN",
            Self::Date => "DATE",
            Self::Decimal(..) => "DECIMAL",
            Self::Double => "DOUBLE",
            Self::Float => "FLOAT",
            Self::Integer => "INTEGER",
            Self::Bigint => "BIGINT",
            Self::String => "STRING",
            Self::ArrayBigint => "ARRAY_BIGINT",
            Self::ArrayString => "ARRAY_STRING",
            Self::ArrayFloat => "ARRAY_FLOAT",
        }
    }
}

fn list_of(item: ArrowType) -> ArrowType {
    ArrowType::List(Arc::new(Field::new("item", item, true)))
}

impl fmt::Display for FeatureDataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Decimal(p, s) => write!(f, "decimal({p},{s})"),
            Self::ArrayBigint => f.write_str("array<bigint>"),
            Self::ArrayString => f.write_str("array<string>"),
            Self::ArrayFloat => f.write_str("array<float>"),
            other => f.write_str(&other.butterfree_name().to_ascii_lowercase()),
        }
    }
}

impl FromStr for FeatureDataType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm: String = s
            .trim()
            .to_ascii_lowercase()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let t = match norm.as_str() {
            "timestamp" => Self::Timestamp,
            "timestamp_ntz" => Self::TimestampNtz,
            "binary" => Self::Binary,
            "boolean" | "bool" => Self::Boolean,
            "date" => Self::Date,
            "decimal" => Self::Decimal(10, 0),
            "double" => Self::Double,
            "float" => Self::Float,
            "integer" | "int" => Self::Integer,
            "bigint" | "long" => Self::Bigint,
            "string" => Self::String,
            "array<bigint>" | "array_bigint" => Self::ArrayBigint,
            "array<string>" | "array_string" => Self::ArrayString,
            "array<float>" | "array_float" => Self::ArrayFloat,
            other => {
                if let Some(args) = other.strip_prefix("decimal(").and_then(|r| r.strip_suffix(')')) {
                    let mut it = args.split(',');
                    let p = it.next().and_then(|p| p.parse::<u8>().ok());
                    let sc = it.next().map_or(Some(0), |s| s.parse::<i8>().ok());
                    if let (Some(p), Some(sc), None) = (p, sc, it.next())
                        && (1..=38).contains(&p)
                        && sc >= 0
                        && sc as u8 <= p
                    {
                        return Ok(Self::Decimal(p, sc));
                    }
                    return Err(format!(
                        "invalid decimal type `{s}`: expected decimal(precision, scale) with 1 <= precision <= 38 and 0 <= scale <= precision"
                    ));
                }
                return Err(format!(
                    "unknown data type `{s}`{}; expected one of: {}",
                    crate::error::hint(s, DATA_TYPE_NAMES.iter().copied()),
                    DATA_TYPE_NAMES.join(", ")
                ));
            }
        };
        Ok(t)
    }
}

impl serde::Serialize for FeatureDataType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for FeatureDataType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_butterfree_names_in_any_case() {
        assert_eq!("BIGINT".parse::<FeatureDataType>().unwrap(), FeatureDataType::Bigint);
        assert_eq!(
            "Array<String>".parse::<FeatureDataType>().unwrap(),
            FeatureDataType::ArrayString
        );
        assert_eq!(
            "decimal(12, 2)".parse::<FeatureDataType>().unwrap(),
            FeatureDataType::Decimal(12, 2)
        );
        let err = "bigitn".parse::<FeatureDataType>().unwrap_err();
        assert!(err.contains("did you mean `bigint`"), "{err}");
        assert!("decimal(40,2)".parse::<FeatureDataType>().is_err());
    }
}

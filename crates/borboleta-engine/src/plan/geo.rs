//! Butterfree's H3 and stack transforms: `h3_latlng_to_cell_string(lat, lng, resolution)` (the
//! `h3o` crate, same cells as H3 v3's `geo_to_h3`) and the column stacking of `StackTransform`.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringArray};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, Float64Type};
use datafusion::common::{Result as DfResult, ScalarValue, exec_err};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

/// `h3_latlng_to_cell_string(lat, lng, resolution)`: the H3 cell (hex string) of a point, null
/// when a coordinate is null or invalid or the resolution is not 0-15.
pub fn h3_udf() -> ScalarUDF {
    ScalarUDF::from(H3Cell {
        signature: Signature::any(3, Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct H3Cell {
    signature: Signature,
}

impl ScalarUDFImpl for H3Cell {
    fn name(&self) -> &str {
        "h3_latlng_to_cell_string"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let safe = CastOptions {
            safe: true,
            ..Default::default()
        };
        let float = |a: &ColumnarValue| -> DfResult<ArrayRef> {
            Ok(cast_with_options(&a.to_array(rows)?, &DataType::Float64, &safe)?)
        };
        let (lat, lng) = (float(&args.args[0])?, float(&args.args[1])?);
        let res = match &args.args[2] {
            ColumnarValue::Scalar(s) => match s.cast_to(&DataType::UInt8) {
                Ok(ScalarValue::UInt8(Some(r))) => h3o::Resolution::try_from(r).ok(),
                _ => None,
            },
            ColumnarValue::Array(_) => return exec_err!("h3_latlng_to_cell_string: the resolution must be a constant"),
        };
        let (lat, lng) = (lat.as_primitive::<Float64Type>(), lng.as_primitive::<Float64Type>());
        let out: StringArray = (0..rows)
            .map(|i| {
                if lat.is_null(i) || lng.is_null(i) {
                    return None;
                }
                let cell = h3o::LatLng::new(lat.value(i), lng.value(i)).ok()?.to_cell(res?);
                Some(cell.to_string())
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// Whether a column name matches one pattern.
type Matcher = Box<dyn Fn(&str) -> bool>;

/// The columns of `available` a `StackTransform` selects, in their order: a plain pattern may
/// hold one `*` (prefix before the first, suffix after the last), `!` negates it; with `regex`,
/// patterns are regular expressions anchored at the start (Python's `re.match`).
pub fn stack_columns(available: &[String], patterns: &[String], regex: bool) -> Result<Vec<String>, String> {
    let matchers: Vec<Matcher> = if regex {
        let mut m: Vec<Matcher> = Vec::new();
        for p in patterns {
            let re = regex::Regex::new(&format!("^(?:{p})")).map_err(|e| format!("pattern `{p}`: {e}"))?;
            m.push(Box::new(move |c| re.is_match(c)));
        }
        m
    } else {
        patterns
            .iter()
            .map(|p| {
                let (negate, p) = match p.strip_prefix('!') {
                    Some(rest) => (true, rest.to_string()),
                    None => (false, p.clone()),
                };
                let f: Matcher = match (p.find('*'), p.rfind('*')) {
                    (Some(first), Some(last)) => {
                        let (pre, post) = (p[..first].to_string(), p[last + 1..].to_string());
                        Box::new(move |c: &str| (c.starts_with(&pre) && c.ends_with(&post)) != negate)
                    }
                    _ => Box::new(move |c: &str| (c == p) != negate),
                };
                f
            })
            .collect()
    };
    let selected: Vec<String> = available
        .iter()
        .filter(|c| matchers.iter().any(|m| m(c)))
        .cloned()
        .collect();
    if selected.is_empty() {
        return Err(format!(
            "columns not found, columns in the data: [{}]",
            available.join(", ")
        ));
    }
    Ok(selected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_patterns_as_butterfree() {
        let cols: Vec<String> = ["id", "feature1", "feature2", "other_feature", "ts"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            stack_columns(&cols, &p(&["feature*"]), false).unwrap(),
            ["feature1", "feature2"]
        );
        assert_eq!(
            // one `*` is meant: with two, the text between them is ignored (Butterfree's rule)
            stack_columns(&cols, &p(&["*feature*"]), false).unwrap(),
            cols
        );
        assert_eq!(
            stack_columns(&cols, &p(&["!feature*"]), false).unwrap(),
            ["id", "other_feature", "ts"]
        );
        assert_eq!(stack_columns(&cols, &p(&["ts", "id"]), false).unwrap(), ["id", "ts"]);
        assert_eq!(stack_columns(&cols, &p(&["feat.*2"]), true).unwrap(), ["feature2"]);
        assert!(
            stack_columns(&cols, &p(&["nope"]), false)
                .unwrap_err()
                .contains("columns in the data")
        );
    }
}

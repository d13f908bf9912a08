//! Spark's non-ANSI casts as DataFusion UDFs: a value that cannot be cast becomes null, and is
//! counted (the run summary reports "values nulled by casts").

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::{Array, ArrayRef, AsArray, TimestampMicrosecondArray};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, Float64Type, TimeUnit, TimestampMicrosecondType};
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use datafusion::common::Result as DfResult;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// Counts values that became null because they could not be cast.
#[derive(Debug, Default, Clone)]
pub struct NullCounter(Arc<AtomicU64>);

impl NullCounter {
    /// The count so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
    fn add(&self, n: usize) {
        if n > 0 {
            self.0.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
}

/// `spark_cast(x)` to a fixed type, with Spark's rules where they differ from Arrow's:
/// timestamps and numbers convert through epoch seconds.
#[derive(Debug)]
struct SparkCast {
    target: DataType,
    counter: NullCounter,
    signature: Signature,
}

impl PartialEq for SparkCast {
    fn eq(&self, other: &Self) -> bool {
        self.target == other.target && Arc::ptr_eq(&self.counter.0, &other.counter.0)
    }
}
impl Eq for SparkCast {}
impl Hash for SparkCast {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.target.hash(state);
    }
}

impl ScalarUDFImpl for SparkCast {
    fn name(&self) -> &str {
        "spark_cast"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(self.target.clone())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let input = args.args[0].to_array(rows)?;
        let out = spark_cast_array(&input, &self.target)?;
        self.counter.add(out.null_count().saturating_sub(input.null_count()));
        Ok(ColumnarValue::Array(out))
    }
}

/// Casts an array with Spark's non-ANSI rules (bad values become null).
pub fn spark_cast_array(input: &ArrayRef, target: &DataType) -> DfResult<ArrayRef> {
    let safe = CastOptions {
        safe: true,
        ..Default::default()
    };
    let from = input.data_type();
    if from == target {
        return Ok(Arc::clone(input));
    }
    let is_ts = |t: &DataType| matches!(t, DataType::Timestamp(..));
    // timestamp -> number: epoch seconds (Spark), not the raw unit.
    if is_ts(from) && (target.is_numeric()) {
        let micros = cast_with_options(input, &DataType::Timestamp(TimeUnit::Microsecond, None), &safe)?;
        let micros = micros.as_primitive::<TimestampMicrosecondType>();
        let out: ArrayRef = if target.is_floating() || matches!(target, DataType::Decimal128(..)) {
            Arc::new(micros.unary::<_, Float64Type>(|v| v as f64 / 1e6))
        } else {
            Arc::new(micros.unary::<_, arrow::datatypes::Int64Type>(|v| v.div_euclid(1_000_000)))
        };
        return Ok(cast_with_options(&out, target, &safe)?);
    }
    // number -> timestamp: epoch seconds.
    if from.is_numeric() && is_ts(target) {
        let secs = cast_with_options(input, &DataType::Float64, &safe)?;
        let secs = secs.as_primitive::<Float64Type>();
        let micros: TimestampMicrosecondArray = secs
            .iter()
            .map(|v| {
                v.and_then(|s| {
                    let m = (s * 1e6).round();
                    (m.is_finite() && m.abs() < 9.2e18).then_some(m as i64)
                })
            })
            .collect();
        let tz = match target {
            DataType::Timestamp(_, tz) => tz.clone(),
            _ => None,
        };
        let out: ArrayRef = Arc::new(micros.with_timezone_opt(tz));
        return Ok(cast_with_options(&out, target, &safe)?);
    }
    // string -> integer: Spark trims and drops a fractional part ("7.5" -> 7).
    if matches!(from, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) && target.is_integer() {
        let strings = cast_with_options(input, &DataType::Utf8, &safe)?;
        let trimmed: arrow::array::StringArray = strings
            .as_string::<i32>()
            .iter()
            .map(|s| s.map(spark_integer_text))
            .collect();
        return Ok(cast_with_options(&trimmed, target, &safe)?);
    }
    // string -> timestamp: Spark's default parser also takes a date alone and `T` or space.
    Ok(cast_with_options(input, target, &safe)?)
}

/// The integer part of a decimal number as Spark's string-to-integer cast reads it: surrounding
/// whitespace is ignored, and `[+-]digits.digits` keeps the digits before the point. Anything
/// else is returned as it is (and fails the cast).
fn spark_integer_text(s: &str) -> &str {
    let t = s.trim();
    match t.split_once('.') {
        Some((int, frac)) => {
            let digits = int.trim_start_matches(['+', '-']);
            let ok = int.len() - digits.len() <= 1
                && digits.bytes().all(|b| b.is_ascii_digit())
                && frac.bytes().all(|b| b.is_ascii_digit())
                && !(digits.is_empty() && frac.is_empty());
            if ok && !digits.is_empty() {
                int
            } else if ok {
                "0"
            } else {
                t
            }
        }
        None => t,
    }
}

/// An expression casting `expr` to `target` with Spark's rules, counting nulled values.
pub fn spark_cast(expr: Expr, target: DataType, counter: &NullCounter) -> Expr {
    let udf = ScalarUDF::from(SparkCast {
        target,
        counter: counter.clone(),
        signature: Signature::any(1, Volatility::Immutable),
    });
    udf.call(vec![expr])
}

/// `to_timestamp(string, mask)` with a Java date pattern, parsed leniently like Spark's legacy
/// parser: trailing text after the pattern is ignored (`2020-02-07T00:00:00` with `yyyy-MM-dd`).
#[derive(Debug)]
struct ParseTimestamp {
    java_mask: String,
    chrono_format: String,
    target: DataType,
    counter: NullCounter,
    signature: Signature,
}

impl PartialEq for ParseTimestamp {
    fn eq(&self, other: &Self) -> bool {
        self.java_mask == other.java_mask
            && self.target == other.target
            && Arc::ptr_eq(&self.counter.0, &other.counter.0)
    }
}
impl Eq for ParseTimestamp {}
impl Hash for ParseTimestamp {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.java_mask.hash(state);
    }
}

impl ScalarUDFImpl for ParseTimestamp {
    fn name(&self) -> &str {
        "spark_to_timestamp"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(self.target.clone())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let input = args.args[0].to_array(args.number_rows)?;
        let parsed = parse_strings(&input, &self.chrono_format)?;
        let tz = match &self.target {
            DataType::Timestamp(_, tz) => tz.clone(),
            _ => None,
        };
        let out: ArrayRef = Arc::new(parsed.with_timezone_opt(tz));
        self.counter.add(out.null_count().saturating_sub(input.null_count()));
        Ok(ColumnarValue::Array(out))
    }
}

/// Parses every value of `input` (as text) with a chrono format ([`parse_with_format`]); a value
/// that does not parse becomes null.
pub fn parse_strings(input: &ArrayRef, chrono_format: &str) -> DfResult<TimestampMicrosecondArray> {
    let strings = cast_with_options(input, &DataType::Utf8, &CastOptions::default())?;
    Ok(strings
        .as_string::<i32>()
        .iter()
        .map(|s| s.and_then(|s| parse_with_format(s, chrono_format)))
        .collect())
}

/// Parses `s` with a chrono format, ignoring trailing text; naive values are UTC.
pub fn parse_with_format(s: &str, format: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok((dt, _)) = DateTime::parse_and_remainder(s, format) {
        return Some(dt.timestamp_micros());
    }
    if let Ok((dt, _)) = NaiveDateTime::parse_and_remainder(s, format) {
        return Some(dt.and_utc().timestamp_micros());
    }
    if let Ok((d, _)) = NaiveDate::parse_and_remainder(s, format) {
        return Some(borboleta_core::time::date_start_micros(d));
    }
    None
}

/// An expression parsing strings with a Java date pattern into `target` (a timestamp type).
pub fn parse_timestamp(expr: Expr, java_mask: &str, target: DataType, counter: &NullCounter) -> Expr {
    let udf = ScalarUDF::from(ParseTimestamp {
        java_mask: java_mask.to_string(),
        chrono_format: java_to_chrono(java_mask),
        target,
        counter: counter.clone(),
        signature: Signature::any(1, Volatility::Immutable),
    });
    udf.call(vec![expr])
}

/// Translates a Java `SimpleDateFormat`/`DateTimeFormatter` pattern to a chrono format.
pub fn java_to_chrono(mask: &str) -> String {
    let chars: Vec<char> = mask.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // quoted literal; '' is a quote
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                push_literal(&mut out, chars[i]);
                i += 1;
            }
            i += 1;
            continue;
        }
        let mut n = 1;
        while i + n < chars.len() && chars[i + n] == c {
            n += 1;
        }
        let piece = match (c, n) {
            ('y', 2) => "%y".to_string(),
            ('y', _) | ('u', _) => "%Y".to_string(),
            ('M', 1) | ('M', 2) => "%m".to_string(),
            ('M', 3) => "%b".to_string(),
            ('M', _) => "%B".to_string(),
            ('d', _) => "%d".to_string(),
            ('D', _) => "%j".to_string(),
            ('H', _) => "%H".to_string(),
            ('k', _) => "%H".to_string(),
            ('h', _) => "%I".to_string(),
            ('m', _) => "%M".to_string(),
            ('s', _) => "%S".to_string(),
            ('S', n) => format!("%{}f", n.min(9)),
            ('a', _) => "%p".to_string(),
            ('E', 1..=3) => "%a".to_string(),
            ('E', _) => "%A".to_string(),
            ('X', 1) | ('Z', _) | ('x', _) => "%z".to_string(),
            ('X', _) => "%:z".to_string(),
            _ => {
                let mut lit = String::new();
                for _ in 0..n {
                    push_literal(&mut lit, c);
                }
                lit
            }
        };
        out.push_str(&piece);
        i += n;
    }
    out
}

fn push_literal(out: &mut String, c: char) {
    if c == '%' {
        out.push_str("%%");
    } else {
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;

    #[test]
    fn strings_to_integers_as_spark() {
        let input: ArrayRef = Arc::new(arrow::array::StringArray::from(vec![
            Some(" 7.5 "),
            Some("-3.9"),
            Some(".5"),
            Some("12"),
            Some("1e3"),
            Some("1.2.3"),
            Some("."),
            None,
        ]));
        let out = spark_cast_array(&input, &DataType::Int64).unwrap();
        let out: Vec<Option<i64>> = out.as_primitive::<arrow::datatypes::Int64Type>().iter().collect();
        assert_eq!(out, [Some(7), Some(-3), Some(0), Some(12), None, None, None, None]);
    }

    #[test]
    fn java_masks_translate() {
        assert_eq!(java_to_chrono("yyyy-MM-dd HH:mm:ss"), "%Y-%m-%d %H:%M:%S");
        assert_eq!(
            java_to_chrono("yyyy-MM-dd'T'HH:mm:ss.SSSXXX"),
            "%Y-%m-%dT%H:%M:%S.%3f%:z"
        );
        assert_eq!(
            parse_with_format("2020-02-07T00:00:00", &java_to_chrono("yyyy-MM-dd")),
            Some(1_581_033_600_000_000)
        );
        assert_eq!(
            parse_with_format("07/02/2020 10:00", &java_to_chrono("dd/MM/yyyy HH:mm")),
            Some(1_581_069_600_000_000)
        );
        assert_eq!(parse_with_format("garbage", "%Y-%m-%d"), None);
    }

    #[test]
    fn casts_count_nulled_values() {
        let input: ArrayRef = Arc::new(arrow::array::StringArray::from(vec![Some("1"), Some("x"), None]));
        let out = spark_cast_array(&input, &DataType::Int64).unwrap();
        assert_eq!(out.null_count(), 2);
        let secs: ArrayRef = Arc::new(Int64Array::from(vec![1_581_542_311]));
        let ts = spark_cast_array(&secs, &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))).unwrap();
        assert_eq!(
            ts.as_primitive::<TimestampMicrosecondType>().value(0),
            1_581_542_311_000_000
        );
    }
}

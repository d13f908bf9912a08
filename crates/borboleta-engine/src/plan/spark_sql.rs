//! What Spark SQL does differently from DataFusion in a source query, translated:
//!
//! - date functions take Java date patterns (`yyyy-MM-dd HH:mm:ss`), not chrono's `%Y-%m-%d`:
//!   `date_format`, `to_date`, `to_timestamp`, `unix_timestamp` and `from_unixtime` are registered
//!   with Spark's signatures, defaults and results, all in UTC;
//! - `CAST` is Spark's non-ANSI cast: a value that cannot be cast becomes null and is counted
//!   ([`spark_casts`] rewrites the query's casts; the run summary reports the count).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringArray, TimestampMicrosecondArray};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, Int64Type, TimeUnit, TimestampMicrosecondType};
use chrono::DateTime;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Result as DfResult, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::expr::{Cast, TryCast};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    ColumnarValue, Expr, LogicalPlan, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::plan::cast::{NullCounter, java_to_chrono, parse_strings, spark_cast, spark_cast_array};

/// Spark's default pattern for `unix_timestamp` and `from_unixtime`.
const DEFAULT_PATTERN: &str = "yyyy-MM-dd HH:mm:ss";

/// The Spark date functions that take Java patterns, replacing DataFusion's functions of the same
/// names in a session.
pub fn spark_date_functions() -> Vec<ScalarUDF> {
    [
        SparkDateFn::DateFormat,
        SparkDateFn::ToDate,
        SparkDateFn::ToTimestamp,
        SparkDateFn::UnixTimestamp,
        SparkDateFn::FromUnixtime,
    ]
    .into_iter()
    .map(|f| {
        ScalarUDF::from(SparkDate {
            f,
            signature: Signature::variadic_any(if f == SparkDateFn::UnixTimestamp {
                Volatility::Stable
            } else {
                Volatility::Immutable
            }),
        })
    })
    .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum SparkDateFn {
    DateFormat,
    ToDate,
    ToTimestamp,
    UnixTimestamp,
    FromUnixtime,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct SparkDate {
    f: SparkDateFn,
    signature: Signature,
}

fn utc_timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

impl ScalarUDFImpl for SparkDate {
    fn name(&self) -> &str {
        match self.f {
            SparkDateFn::DateFormat => "date_format",
            SparkDateFn::ToDate => "to_date",
            SparkDateFn::ToTimestamp => "to_timestamp",
            SparkDateFn::UnixTimestamp => "unix_timestamp",
            SparkDateFn::FromUnixtime => "from_unixtime",
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        let (min, max) = match self.f {
            SparkDateFn::DateFormat => (2, 2),
            SparkDateFn::UnixTimestamp => (0, 2),
            _ => (1, 2),
        };
        if args.len() < min || args.len() > max {
            return plan_err!(
                "{} takes {min} to {max} arguments (Spark's signature), got {}",
                self.name(),
                args.len()
            );
        }
        if args.len() == 2 && !matches!(args[1], DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) {
            return plan_err!("{}: the pattern must be a string, got {}", self.name(), args[1]);
        }
        Ok(match self.f {
            SparkDateFn::DateFormat | SparkDateFn::FromUnixtime => DataType::Utf8,
            SparkDateFn::ToDate => DataType::Date32,
            SparkDateFn::ToTimestamp => utc_timestamp(),
            SparkDateFn::UnixTimestamp => DataType::Int64,
        })
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let pattern = match args.args.get(1) {
            None => None,
            Some(ColumnarValue::Scalar(s)) => match s {
                ScalarValue::Utf8(p) | ScalarValue::LargeUtf8(p) | ScalarValue::Utf8View(p) => p.clone(),
                _ => return exec_err!("{}: the pattern must be a string", self.name()),
            },
            Some(ColumnarValue::Array(_)) => {
                return exec_err!("{}: the pattern must be a constant string", self.name());
            }
        };
        if self.f == SparkDateFn::UnixTimestamp && args.args.is_empty() {
            let now = chrono::Utc::now().timestamp();
            return Ok(ColumnarValue::Scalar(ScalarValue::Int64(Some(now))));
        }
        let input = args.args[0].to_array(rows)?;
        let out: ArrayRef = match self.f {
            SparkDateFn::DateFormat => {
                let micros = to_micros(&input, None)?;
                format_micros(&micros, pattern.as_deref().unwrap_or(DEFAULT_PATTERN))
            }
            SparkDateFn::ToDate => {
                let micros = to_micros(&input, pattern.as_deref())?;
                spark_cast_array(&micros, &DataType::Date32)?
            }
            SparkDateFn::ToTimestamp => to_micros(&input, pattern.as_deref())?,
            SparkDateFn::UnixTimestamp => {
                let micros = to_micros(&input, Some(pattern.as_deref().unwrap_or(DEFAULT_PATTERN)))?;
                let micros = micros.as_primitive::<TimestampMicrosecondType>();
                Arc::new(micros.unary::<_, Int64Type>(|v| v.div_euclid(1_000_000)))
            }
            SparkDateFn::FromUnixtime => {
                let secs = cast_with_options(&input, &DataType::Int64, &safe())?;
                let micros: TimestampMicrosecondArray = secs
                    .as_primitive::<Int64Type>()
                    .iter()
                    .map(|s| s.and_then(|s| s.checked_mul(1_000_000)))
                    .collect();
                format_micros(
                    &(Arc::new(micros) as ArrayRef),
                    pattern.as_deref().unwrap_or(DEFAULT_PATTERN),
                )
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

fn safe() -> CastOptions<'static> {
    CastOptions {
        safe: true,
        ..Default::default()
    }
}

/// A timestamp array (µs, UTC) from strings (parsed with the Java pattern when given, else with
/// Spark's cast), dates, timestamps or numbers (epoch seconds, as Spark's cast).
fn to_micros(input: &ArrayRef, pattern: Option<&str>) -> DfResult<ArrayRef> {
    let is_string = matches!(
        input.data_type(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    );
    if let (true, Some(p)) = (is_string, pattern) {
        let parsed = parse_strings(input, &java_to_chrono(p))?;
        return Ok(Arc::new(parsed.with_timezone("UTC")));
    }
    spark_cast_array(input, &utc_timestamp())
}

fn format_micros(micros: &ArrayRef, pattern: &str) -> ArrayRef {
    let format = java_to_chrono(pattern);
    let micros = micros.as_primitive::<TimestampMicrosecondType>();
    let out: StringArray = micros
        .iter()
        .map(|v| {
            v.and_then(DateTime::from_timestamp_micros)
                .map(|t| t.format(&format).to_string())
        })
        .collect();
    Arc::new(out)
}

/// Rewrites every `CAST`/`TRY_CAST` the user wrote in `plan` into Spark's non-ANSI cast: a value
/// that cannot be cast becomes null and is counted in `counter`. Output column names are kept.
pub fn spark_casts(plan: LogicalPlan, counter: &NullCounter) -> DfResult<LogicalPlan> {
    let rewritten = plan.transform_up(|node| {
        let preserver = NamePreserver::new(&node);
        let node = node.map_expressions(|expr| {
            let saved = preserver.save(&expr);
            let new = expr.transform_up(|e| {
                Ok(match e {
                    Expr::Cast(Cast { expr, field }) | Expr::TryCast(TryCast { expr, field }) => {
                        Transformed::yes(spark_cast(*expr, field.data_type().clone(), counter))
                    }
                    other => Transformed::no(other),
                })
            })?;
            Ok(if new.transformed {
                Transformed::yes(saved.restore(new.data))
            } else {
                new
            })
        })?;
        if node.transformed {
            node.map_data(|p| p.recompute_schema())
        } else {
            Ok(node)
        }
    })?;
    Ok(rewritten.data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::new_session;
    use arrow::array::Int64Array;

    fn secs(v: &[Option<i64>]) -> ArrayRef {
        Arc::new(Int64Array::from(v.to_vec()))
    }

    async fn one(sql: &str) -> String {
        let ctx = new_session();
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string()
    }

    #[tokio::test]
    async fn java_patterns_in_date_functions() {
        let got = one(
            "select date_format(to_timestamp('2024-03-10 13:05:09', 'yyyy-MM-dd HH:mm:ss'), 'dd/MM/yyyy HH:mm') as a, \
             to_date('10/03/2024', 'dd/MM/yyyy') as b, \
             unix_timestamp('2024-03-10 00:00:01') as c, \
             unix_timestamp('10-03-2024', 'dd-MM-yyyy') as d, \
             from_unixtime(1710028801) as e, \
             from_unixtime(1710028801, 'yyyyMMdd') as f, \
             to_date('nonsense', 'yyyy-MM-dd') as g",
        )
        .await;
        assert!(
            got.contains(
                "| 10/03/2024 13:05 | 2024-03-10 | 1710028801 | 1710028800 | 2024-03-10 00:00:01 | 20240310 |   |"
            ),
            "{got}"
        );
    }

    #[test]
    fn from_unixtime_formats_in_utc() {
        let out = format_micros(
            &spark_cast_array(&secs(&[Some(0), None]), &utc_timestamp()).unwrap(),
            DEFAULT_PATTERN,
        );
        let out = out.as_string::<i32>();
        assert_eq!(out.value(0), "1970-01-01 00:00:00");
        assert!(out.is_null(1));
    }

    #[tokio::test]
    async fn casts_are_non_ansi_and_counted() {
        let ctx = new_session();
        let counter = NullCounter::default();
        let df = ctx
            .sql("select cast(x as int) as n, cast(x as bigint) from (values ('1'), ('x'), (null)) t(x)")
            .await
            .unwrap();
        let names = |df: &datafusion::dataframe::DataFrame| df.schema().columns();
        let before = names(&df);
        let plan = spark_casts(df.logical_plan().clone(), &counter).unwrap();
        let df = datafusion::dataframe::DataFrame::new(ctx.state(), plan);
        assert_eq!(names(&df), before, "casts keep their column names");
        let batches = df.collect().await.unwrap();
        let col = batches[0].column(0).as_primitive::<arrow::datatypes::Int32Type>();
        assert_eq!(col.iter().collect::<Vec<_>>(), [Some(1), None, None]);
        assert_eq!(
            counter.get(),
            2,
            "`x` nulled in both columns, the null input not counted"
        );
    }
}

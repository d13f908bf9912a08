//! Butterfree's reader pre-processing functions (`Reader.with_`): `filter`, `replace`,
//! `explode_json_column`, `forward_fill` and `pivot` (with `mock_value`), in declared order.

use std::sync::Arc;

use arrow::array::{AsArray, StringArray};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::DataType;
use borboleta_core::{PreProcessingSpec, SpecIssues};
use datafusion::common::{Result as DfResult, ScalarValue, exec_err};
use datafusion::execution::FunctionRegistry;
use datafusion::functions_aggregate::first_last::last_value_udaf;
use datafusion::logical_expr::expr::NullTreatment;
use datafusion::logical_expr::expr::WindowFunction;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprFunctionExt, ExprSchemable, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility, WindowFrame, WindowFrameBound, WindowFrameUnits, col, lit, when,
};
use datafusion::prelude::{DataFrame, SessionContext};

use crate::error::Result;
use crate::plan::cast::{NullCounter, spark_cast};
use crate::plan::util::{check_column, clean_df_error, column};

/// Applies `steps` to a reader's rows; problems go to `issues` under `path` (`readers[i]`).
pub(crate) async fn apply(
    ctx: &SessionContext,
    mut df: DataFrame,
    steps: &[PreProcessingSpec],
    path: &str,
    counter: &NullCounter,
    issues: &mut SpecIssues,
) -> Result<DataFrame> {
    for (i, step) in steps.iter().enumerate() {
        let p = format!("{path}.pre_processing[{i}]");
        match apply_one(ctx, df.clone(), step, counter).await {
            Ok(d) => df = d,
            Err((field, m)) => {
                issues.push(if field.is_empty() { p } else { format!("{p}.{field}") }, m);
                return Ok(df);
            }
        }
    }
    Ok(df)
}

type StepResult = std::result::Result<DataFrame, (String, String)>;

async fn apply_one(ctx: &SessionContext, df: DataFrame, step: &PreProcessingSpec, counter: &NullCounter) -> StepResult {
    let df_err = |field: &str| {
        let field = field.to_string();
        move |e: datafusion::error::DataFusionError| (field.clone(), clean_df_error(&e))
    };
    match step {
        PreProcessingSpec::Filter(condition) => {
            let e = df.parse_sql_expr(condition).map_err(df_err("filter"))?;
            e.get_type(df.schema()).map_err(df_err("filter"))?;
            df.filter(e).map_err(df_err("filter"))
        }
        PreProcessingSpec::Replace { column: c, values } => {
            let e = check_column(&df, c).map_err(|m| ("replace.column".to_string(), m))?;
            let t = e.get_type(df.schema()).map_err(df_err("replace.column"))?;
            if !matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) {
                return Err(("replace.column".into(), format!("column `{c}` is {t}, not a string")));
            }
            if values.is_empty() {
                return Ok(df);
            }
            let mut pairs = values.iter();
            let (k, v) = pairs.next().map(|(k, v)| (k.clone(), v.clone())).unwrap_or_default();
            let mut b = when(e.clone().eq(lit(k)), lit(v));
            for (k, v) in pairs {
                b = b.when(e.clone().eq(lit(k.clone())), lit(v.clone()));
            }
            let replaced = b.otherwise(e).map_err(df_err("replace"))?;
            df.with_column(c, replaced).map_err(df_err("replace"))
        }
        PreProcessingSpec::ExplodeJsonColumn { column: c, schema } => {
            let e = check_column(&df, c).map_err(|m| ("explode_json_column.column".to_string(), m))?;
            let mut out = df;
            for (field, dtype) in &schema.0 {
                let text = json_field_udf().call(vec![e.clone(), lit(field.clone())]);
                out = out
                    .with_column(field, spark_cast(text, dtype.to_arrow(), counter))
                    .map_err(df_err("explode_json_column.schema"))?;
            }
            Ok(out)
        }
        PreProcessingSpec::ForwardFill {
            partition_by,
            order_by,
            fill_column,
            filled_column,
        } => {
            let target = filled_column.as_deref().unwrap_or(fill_column);
            let fill = forward_fill(&df, partition_by.to_vec(), order_by, fill_column)
                .map_err(|(f, m)| (format!("forward_fill.{f}"), m))?;
            df.with_column(target, fill).map_err(df_err("forward_fill"))
        }
        PreProcessingSpec::Pivot {
            group_by,
            pivot_column,
            agg_column,
            aggregation,
            forward_fill: ffill,
            mock_value,
            mock_type,
        } => {
            pivot(
                ctx,
                df,
                group_by,
                pivot_column,
                agg_column,
                aggregation,
                *ffill,
                mock_value.as_deref().zip(*mock_type),
                counter,
            )
            .await
        }
    }
}

/// `last_value(fill) IGNORE NULLS` over the rows of the partition up to the current one.
fn forward_fill(
    df: &DataFrame,
    partition_by: Vec<String>,
    order_by: &str,
    fill: &str,
) -> std::result::Result<Expr, (String, String)> {
    let value = check_column(df, fill).map_err(|m| ("fill_column".to_string(), m))?;
    let order = check_column(df, order_by).map_err(|m| ("order_by".to_string(), m))?;
    let mut partition = Vec::new();
    for p in &partition_by {
        partition.push(check_column(df, p).map_err(|m| ("partition_by".to_string(), m))?);
    }
    Expr::from(WindowFunction::new(last_value_udaf(), vec![value]))
        .partition_by(partition)
        .order_by(vec![order.sort(true, true)])
        .window_frame(WindowFrame::new_bounds(
            WindowFrameUnits::Rows,
            WindowFrameBound::Preceding(ScalarValue::UInt64(None)),
            WindowFrameBound::CurrentRow,
        ))
        .null_treatment(NullTreatment::IgnoreNulls)
        .build()
        .map_err(|e| (String::new(), e.to_string()))
}

#[allow(clippy::too_many_arguments)]
async fn pivot(
    ctx: &SessionContext,
    df: DataFrame,
    group_by: &[String],
    pivot_column: &str,
    agg_column: &str,
    aggregation: &str,
    ffill: bool,
    mock: Option<(&str, borboleta_core::FeatureDataType)>,
    counter: &NullCounter,
) -> StepResult {
    let err = |field: &str, m: String| (format!("pivot.{field}"), m);
    let df_err = |field: &'static str| move |e: datafusion::error::DataFusionError| err(field, clean_df_error(&e));
    let mut groups = Vec::new();
    for g in group_by {
        groups.push(check_column(&df, g).map_err(|m| err("group_by", m))?);
    }
    if groups.is_empty() {
        return Err(err("group_by", "at least one column is required".into()));
    }
    let pivot_expr = check_column(&df, pivot_column).map_err(|m| err("pivot_column", m))?;
    let agg_expr = check_column(&df, agg_column).map_err(|m| err("agg_column", m))?;
    let original_type = agg_expr.get_type(df.schema()).map_err(df_err("agg_column"))?;
    if ctx.udaf(aggregation).is_err()
        && ![
            "first",
            "last",
            "mean",
            "collect_set",
            "collect_list",
            "approx_count_distinct",
            "variance",
        ]
        .contains(&aggregation)
    {
        return Err(err("aggregation", format!("unknown aggregate `{aggregation}`")));
    }
    // a mock value stands for the input's nulls, so the forward fill leaves them null
    let (value, mock_literal) = match mock {
        Some((m, t)) => {
            let target = t.to_arrow();
            let m_lit = ScalarValue::Utf8(Some(m.to_string()))
                .cast_to(&target)
                .map_err(|e| err("mock_value", format!("`{m}` is not a {t}: {e}")))?;
            let v = datafusion::functions::expr_fn::coalesce(vec![
                spark_cast(agg_expr.clone(), target, counter),
                lit(m_lit.clone()),
            ]);
            (v, Some(m_lit))
        }
        None => (agg_expr.clone(), None),
    };
    // the pivot values, sorted, as Spark finds them
    let literals = crate::plan::aggregated::distinct_sorted(&df, &pivot_expr)
        .await
        .map_err(df_err("pivot_column"))?;
    let names: Vec<String> = literals.iter().map(ScalarValue::to_string).collect();
    // one row per group and pivot value, then one column per pivot value
    let mut by_value = groups.clone();
    by_value.push(pivot_expr.clone().alias("__borboleta_pivot"));
    let stage = df
        .aggregate(
            by_value,
            vec![
                crate::plan::aggregated::aggregate_expr(ctx, &aggregation.to_ascii_lowercase(), value)
                    .map_err(|e| err("aggregation", e.to_string()))?
                    .alias("__borboleta_value"),
            ],
        )
        .map_err(df_err("aggregation"))?;
    let group_cols: Vec<Expr> = group_by.iter().map(|g| column(g)).collect();
    let max = datafusion::functions_aggregate::min_max::max_udaf();
    let cells: Vec<Expr> = literals
        .iter()
        .zip(&names)
        .map(|(v, n)| {
            let pick = when(col("__borboleta_pivot").eq(lit(v.clone())), col("__borboleta_value")).end()?;
            Ok(max.call(vec![pick]).alias(n))
        })
        .collect::<DfResult<_>>()
        .map_err(df_err("pivot_column"))?;
    let mut out = stage.aggregate(group_cols, cells).map_err(df_err("pivot"))?;
    if ffill {
        let (time, rest) = group_by.split_last().unwrap_or((&group_by[0], &[]));
        for n in &names {
            let e = forward_fill(&out, rest.to_vec(), time, n).map_err(|(f, m)| err(&f, m))?;
            out = out.with_column(n, e).map_err(df_err("forward_fill"))?;
        }
    }
    if let Some(m) = mock_literal {
        for n in &names {
            let c = column(n);
            let e = when(
                c.clone().eq(lit(m.clone())),
                lit(ScalarValue::try_from(&original_type).unwrap_or(ScalarValue::Null)),
            )
            .otherwise(c)
            .map_err(df_err("mock_value"))?;
            out = out
                .with_column(n, spark_cast(e, original_type.clone(), counter))
                .map_err(df_err("mock_value"))?;
        }
    }
    Ok(out)
}

fn json_field_udf() -> ScalarUDF {
    ScalarUDF::from(JsonField {
        signature: Signature::any(2, Volatility::Immutable),
    })
}

/// `json_field(text, name)`: the value of top-level field `name` of a JSON document as text
/// (strings unquoted, anything else as JSON); null when the text is not a JSON object or the
/// field is missing or null.
#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonField {
    signature: Signature,
}

impl ScalarUDFImpl for JsonField {
    fn name(&self) -> &str {
        "json_field"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let name = match &args.args[1] {
            ColumnarValue::Scalar(ScalarValue::Utf8(Some(n))) => n.clone(),
            _ => return exec_err!("json_field: the field name must be a constant string"),
        };
        let text = cast_with_options(
            &args.args[0].to_array(args.number_rows)?,
            &DataType::Utf8,
            &CastOptions::default(),
        )?;
        let out: StringArray = text
            .as_string::<i32>()
            .iter()
            .map(|t| {
                let doc: serde_json::Value = serde_json::from_str(t?).ok()?;
                match doc.get(&name)? {
                    serde_json::Value::Null => None,
                    serde_json::Value::String(s) => Some(s.clone()),
                    other => Some(other.to_string()),
                }
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

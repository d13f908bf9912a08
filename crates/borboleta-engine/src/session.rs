//! The DataFusion session every pipeline runs in: DataFusion's functions plus Spark's.

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray};
use arrow::datatypes::{DataType, Float64Type};
use datafusion::execution::SessionStateBuilder;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_spark::SessionStateBuilderSpark;

/// A session with the Spark-compatible function library registered.
pub fn new_session() -> SessionContext {
    let config = SessionConfig::new()
        .with_information_schema(true)
        .set_str("datafusion.sql_parser.enable_ident_normalization", "false");
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_default_features()
        .with_spark_features()
        .build();
    let ctx = SessionContext::new_with_state(state);
    for udf in spark_extras()
        .into_iter()
        .chain(crate::spark_sql::spark_date_functions())
    {
        ctx.register_udf(udf);
    }
    ctx
}

/// Spark functions that neither DataFusion nor `datafusion-spark` provide.
fn spark_extras() -> Vec<ScalarUDF> {
    vec![float_fn("log1p", f64::ln_1p)]
}

fn float_fn(name: &str, f: fn(f64) -> f64) -> ScalarUDF {
    create_udf(
        name,
        vec![DataType::Float64],
        DataType::Float64,
        Volatility::Immutable,
        Arc::new(move |args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let out: ArrayRef = Arc::new(arrays[0].as_primitive::<Float64Type>().unary::<_, Float64Type>(f));
            Ok(ColumnarValue::Array(out))
        }),
    )
}

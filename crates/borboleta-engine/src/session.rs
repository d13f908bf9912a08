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
    new_session_with_memory_limit(None)
}

/// [`new_session`] whose query memory pool is capped at `limit` bytes: sorts, aggregations and
/// joins spill to the temporary folder beyond it (an operator that cannot spill fails with
/// "resources exhausted" instead of growing without bound).
pub fn new_session_with_memory_limit(limit: Option<usize>) -> SessionContext {
    new_session_with(limit, crate::hooks::RustHooks::default())
}

/// [`new_session_with_memory_limit`] with Rust hooks ([`crate::hooks`]) for the pipeline.
pub fn new_session_with(limit: Option<usize>, hooks: crate::hooks::RustHooks) -> SessionContext {
    let config = SessionConfig::new()
        .with_information_schema(true)
        .set_str("datafusion.sql_parser.enable_ident_normalization", "false")
        .with_extension(Arc::new(hooks));
    let mut builder = SessionStateBuilder::new()
        .with_config(config)
        .with_default_features()
        .with_spark_features();
    if let Some(limit) = limit {
        let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(datafusion::execution::memory_pool::FairSpillPool::new(limit)))
            .build_arc();
        match runtime {
            Ok(r) => builder = builder.with_runtime_env(r),
            Err(e) => tracing::warn!("memory limit not applied: {e}"),
        }
    }
    let state = builder.build();
    let ctx = SessionContext::new_with_state(state);
    for udf in spark_extras()
        .into_iter()
        .chain(crate::plan::spark_sql::spark_date_functions())
    {
        ctx.register_udf(udf);
    }
    ctx
}

/// Spark functions that neither DataFusion nor `datafusion-spark` provide.
fn spark_extras() -> Vec<ScalarUDF> {
    vec![float_fn("log1p", f64::ln_1p), crate::plan::geo::h3_udf()]
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

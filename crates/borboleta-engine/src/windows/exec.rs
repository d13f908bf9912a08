//! Helpers of the operators that run an inner plan inside `execute` ([`super::RowWindowsExec`],
//! [`super::RollingWindowsExec`]): display, metrics, projection.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::Result as DfResult;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::ExecutionPlan;

/// `exec` with only the `projection` columns of its `schema` (a table scan's projection).
pub(crate) fn project(
    exec: Arc<dyn ExecutionPlan>,
    schema: &SchemaRef,
    projection: Option<&Vec<usize>>,
) -> DfResult<Arc<dyn ExecutionPlan>> {
    match projection {
        None => Ok(exec),
        Some(p) => {
            let exprs: Vec<(Arc<dyn PhysicalExpr>, String)> = p
                .iter()
                .map(|&i| {
                    let name = schema.field(i).name().clone();
                    let c: Arc<dyn PhysicalExpr> =
                        Arc::new(datafusion::physical_expr::expressions::Column::new(&name, i));
                    (c, name)
                })
                .collect();
            Ok(Arc::new(
                datafusion::physical_plan::projection::ProjectionExec::try_new(exprs, exec)?,
            ))
        }
    }
}

/// An operator's inner plan (one it runs inside `execute`), under its own line.
pub(crate) fn fmt_inner_plan(input: &Arc<dyn ExecutionPlan>, f: &mut fmt::Formatter) -> fmt::Result {
    let input = datafusion::physical_plan::displayable(input.as_ref())
        .indent(true)
        .to_string();
    for line in input.lines() {
        write!(f, "\n    | {line}")?;
    }
    Ok(())
}

/// The metrics of an operator that runs `input` inside `execute`: as a leaf, it reports the rows
/// its inner plan read (the run summary's "rows read").
pub(crate) fn inner_plan_metrics(
    input: &Arc<dyn ExecutionPlan>,
) -> Option<datafusion::physical_plan::metrics::MetricsSet> {
    use datafusion::physical_plan::metrics::{ExecutionPlanMetricsSet, MetricBuilder};
    let set = ExecutionPlanMetricsSet::new();
    MetricBuilder::new(&set)
        .output_rows(0)
        .add(crate::plan::util::rows_read(input) as usize);
    Some(set.clone_inner())
}

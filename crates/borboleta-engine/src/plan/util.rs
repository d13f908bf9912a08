//! Small helpers of the planners and operators: column references, DataFusion's messages, rows read.

use std::sync::Arc;

use datafusion::common::Column;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::DataFrame;

/// Column reference by exact name (no identifier normalisation).
pub fn column(name: &str) -> Expr {
    Expr::Column(Column::new_unqualified(name))
}

/// `col(name)` if the column exists, else a message with the nearest names.
pub(crate) fn check_column(df: &DataFrame, name: &str) -> std::result::Result<Expr, String> {
    let fields: Vec<String> = df.schema().fields().iter().map(|f| f.name().clone()).collect();
    if fields.iter().any(|f| f == name) {
        return Ok(column(name));
    }
    let visible: Vec<&str> = fields
        .iter()
        .map(String::as_str)
        .filter(|f| !f.starts_with("__borboleta"))
        .collect();
    Err(format!(
        "column `{name}` not found{}; available: {}",
        borboleta_core::error::hint(name, visible.iter().copied()),
        visible.join(", ")
    ))
}

/// DataFusion's messages, without the "Error during planning:" noise.
pub fn clean_df_error(e: &datafusion::error::DataFusionError) -> String {
    let s = e.to_string();
    let s = s.split("\nbacktrace").next().unwrap_or(&s).to_string();
    s.trim_start_matches("Error during planning: ")
        .trim_start_matches("Schema error: ")
        .trim_start_matches("SQL error: ")
        .to_string()
}

/// Rows produced by the leaves (scans) of an executed plan.
pub(crate) fn rows_read(plan: &Arc<dyn ExecutionPlan>) -> u64 {
    if plan.children().is_empty() {
        return plan.metrics().and_then(|m| m.output_rows()).unwrap_or(0) as u64;
    }
    plan.children().iter().map(|c| rows_read(c)).sum()
}

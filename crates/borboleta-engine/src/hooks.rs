//! Butterfree's pre- and post-hooks: SQL queries from the spec over the incoming rows (a table
//! named `input`), and Rust functions over DataFusion DataFrames, registered on the session.
//! Every declared hook runs (Butterfree never runs reader pre-hooks nor writer hooks).

use std::sync::Arc;

use datafusion::common::Result as DfResult;
use datafusion::prelude::{DataFrame, SessionContext};

use crate::error::{Error, Result};
use crate::plan::util::clean_df_error;

/// A hook written in Rust: the rows in, the rows that go on out.
pub type HookFn = Arc<dyn Fn(DataFrame) -> DfResult<DataFrame> + Send + Sync>;

/// Where a hook runs, in pipeline order (Butterfree's A17 order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookPoint {
    /// On a reader's rows as read (the reader's id).
    ReaderPre(String),
    /// On a reader's rows after its date filter, before the source query sees them.
    ReaderPost(String),
    /// On the source query's rows.
    SourcePost,
    /// On the source's rows, before the feature set.
    FeatureSetPre,
    /// On the feature rows, after the date and duplicate filters.
    FeatureSetPost,
    /// On the feature rows, before every writer.
    SinkPre,
}

/// Rust hooks of a pipeline: a session config extension (`SessionConfig::with_extension`).
#[derive(Clone, Default)]
pub struct RustHooks(pub Vec<(HookPoint, HookFn)>);

impl std::fmt::Debug for RustHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter().map(|(p, _)| p)).finish()
    }
}

/// Runs the SQL hooks (`path` is their YAML path, e.g. `readers[0].hooks.post`), then the Rust
/// hooks registered for `point`.
pub(crate) async fn run(
    ctx: &SessionContext,
    mut df: DataFrame,
    sql: &[String],
    path: &str,
    point: HookPoint,
) -> Result<DataFrame> {
    for (i, query) in sql.iter().enumerate() {
        // `input` is the incoming rows; a table of that name is shadowed meanwhile
        let shadowed = ctx.deregister_table("input")?;
        ctx.register_table("input", df.clone().into_view())?;
        let result = ctx.sql(query).await;
        ctx.deregister_table("input")?;
        if let Some(t) = shadowed {
            ctx.register_table("input", t)?;
        }
        df = result.map_err(|e| Error::spec(format!("{path}[{i}]"), clean_df_error(&e)))?;
    }
    let state = ctx.state();
    if let Some(hooks) = state.config().get_extension::<RustHooks>() {
        for (p, f) in &hooks.0 {
            if *p == point {
                df = f(df)?;
            }
        }
    }
    Ok(df)
}

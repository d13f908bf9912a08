//! The planners: a spec's feature set as a DataFusion plan.
//!
//! [`feature_set`] plans row-level feature sets, [`aggregated`] aggregated ones, [`preprocess`]
//! the readers' pre-processing; [`cast`] and [`spark_sql`] give Spark's casts and SQL dialect,
//! [`geo`] the H3 and stack transforms, [`util`] small helpers shared by all of them.

pub mod aggregated;
pub mod cast;
pub mod feature_set;
pub mod geo;
pub mod preprocess;
pub mod spark_sql;
pub mod util;

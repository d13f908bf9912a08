//! The window operators: row-level windows and the duplicate-row filter in one pass
//! ([`RowWindowsExec`]), rolling windows of aggregated feature sets ([`RollingWindowsExec`]), and
//! the Spark-exact sliding folds both use ([`sliding`]).

pub(crate) mod exec;
pub mod rolling;
pub mod row_windows;
pub mod sliding;

pub use rolling::RollingWindowsExec;
pub use row_windows::RowWindowsExec;

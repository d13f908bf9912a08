//! Window aggregates over floating-point values that give Spark's results exactly.
//!
//! DataFusion slides a window by retracting the rows that leave it (`sum -= x`), so rounding
//! error builds up along a partition: a 7-day average of 8.06 and 8.06 comes out as
//! 8.060000000000002. Spark recomputes the frame from its first row whenever rows leave it, so
//! its sums are the plain left-to-right sums of the frame. Butterfree's duplicate-row filter
//! compares values exactly, so that error changes which rows are kept. These aggregates keep the
//! frame's values and compute each result the way Spark does: `avg` and `sum` as a left-to-right
//! sum, `stddev`/`variance` with Spark's `CentralMomentAgg` update (Welford), in frame order.

use std::collections::VecDeque;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type};
use datafusion::common::{Result, ScalarValue, not_impl_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility};

/// What the aggregate computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SlidingKind {
    /// `avg`.
    Avg,
    /// `sum` (of floating-point values).
    Sum,
    /// `stddev_pop`.
    StddevPop,
    /// `stddev_samp` (`stddev`).
    StddevSamp,
    /// `var_pop`.
    VarPop,
    /// `var_samp` (`variance`).
    VarSamp,
}

impl SlidingKind {
    /// The Spark-exact aggregate of a window function name (`sum` only over floating-point
    /// values: an integer sum is exact in any order).
    pub fn of(function: &str, float_input: bool) -> Option<Self> {
        Some(match function {
            "avg" | "mean" => Self::Avg,
            "sum" if float_input => Self::Sum,
            "stddev_pop" => Self::StddevPop,
            "stddev" | "stddev_samp" => Self::StddevSamp,
            "var_pop" => Self::VarPop,
            "var_samp" | "variance" => Self::VarSamp,
            _ => return None,
        })
    }

    /// Whether it needs the central moments (Welford's update), not only the count and sum.
    pub(crate) fn needs_moments(self) -> bool {
        !matches!(self, Self::Avg | Self::Sum)
    }
}

/// The left-to-right fold of a frame's values: Spark's sum, and its `CentralMomentAgg` update
/// (Welford) when `moments`.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Fold {
    pub(crate) n: f64,
    sum: f64,
    avg: f64,
    m2: f64,
}

impl Fold {
    /// Adds the values (nulls skipped), in order.
    pub(crate) fn add_all<'a>(&mut self, values: impl IntoIterator<Item = &'a Option<f64>>, moments: bool) {
        for x in values.into_iter().flatten() {
            self.n += 1.0;
            self.sum += x;
            if moments {
                let delta = x - self.avg;
                let delta_n = delta / self.n;
                self.avg += delta_n;
                self.m2 += delta * (delta - delta_n);
            }
        }
    }

    /// The aggregate's value over the values added.
    pub(crate) fn value(&self, kind: SlidingKind) -> Option<f64> {
        let n = self.n;
        match kind {
            _ if n == 0.0 => None,
            SlidingKind::Avg => Some(self.sum / n),
            SlidingKind::Sum => Some(self.sum),
            SlidingKind::VarPop => Some(self.m2 / n),
            SlidingKind::StddevPop => Some((self.m2 / n).sqrt()),
            SlidingKind::VarSamp | SlidingKind::StddevSamp if n < 2.0 => None,
            SlidingKind::VarSamp => Some(self.m2 / (n - 1.0)),
            SlidingKind::StddevSamp => Some((self.m2 / (n - 1.0)).sqrt()),
        }
    }
}

/// The UDAF for a window function over floating-point values.
pub fn sliding_udaf(kind: SlidingKind) -> Arc<AggregateUDF> {
    Arc::new(AggregateUDF::from(SparkSliding {
        kind,
        signature: Signature::numeric(1, Volatility::Immutable),
    }))
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct SparkSliding {
    kind: SlidingKind,
    signature: Signature,
}

impl AggregateUDFImpl for SparkSliding {
    fn name(&self) -> &str {
        match self.kind {
            SlidingKind::Avg => "avg",
            SlidingKind::Sum => "sum",
            SlidingKind::StddevPop => "stddev_pop",
            SlidingKind::StddevSamp => "stddev_samp",
            SlidingKind::VarPop => "var_pop",
            SlidingKind::VarSamp => "var_samp",
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }
    fn state_fields(&self, _args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new("unused", DataType::Float64, true))])
    }
    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(SlidingAccumulator {
            kind: self.kind,
            values: VecDeque::new(),
        }))
    }
    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        self.accumulator(args)
    }
}

/// The frame's values, in order (nulls kept so retraction stays positional).
#[derive(Debug)]
struct SlidingAccumulator {
    kind: SlidingKind,
    values: VecDeque<Option<f64>>,
}

fn as_f64(values: &ArrayRef) -> Result<ArrayRef> {
    Ok(arrow::compute::cast(values, &DataType::Float64)?)
}

impl Accumulator for SlidingAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let v = as_f64(&values[0])?;
        self.values.extend(v.as_primitive::<Float64Type>().iter());
        Ok(())
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let n = values[0].len().min(self.values.len());
        self.values.drain(..n);
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let mut fold = Fold::default();
        fold.add_all(&self.values, self.kind.needs_moments());
        Ok(ScalarValue::Float64(fold.value(self.kind)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.values.capacity() * std::mem::size_of::<Option<f64>>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        not_impl_err!("{:?} is a window function here, not a grouped aggregate", self.kind)
    }

    fn merge_batch(&mut self, _states: &[ArrayRef]) -> Result<()> {
        not_impl_err!("{:?} is a window function here, not a grouped aggregate", self.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Float64Array;
    use datafusion::prelude::SessionContext;

    const N: usize = 300;

    fn x(i: usize) -> f64 {
        (i % 17) as f64 * 0.37 + 0.01
    }

    /// Every row's result over a 4-row frame.
    async fn results(ctx: &SessionContext, f: &str) -> Vec<Option<f64>> {
        let values: Vec<String> = (0..N).map(|i| format!("({i}, {})", x(i))).collect();
        let sql = format!(
            "select {f}(x) over (order by i rows between 3 preceding and current row) as v \
             from (values {}) as t(i, x) order by i",
            values.join(", ")
        );
        let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
        let b = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
        let v = b.column(0).as_any().downcast_ref::<Float64Array>().unwrap();
        v.iter().collect()
    }

    /// Spark recomputes a frame when rows leave it: the results are those of a fresh
    /// left-to-right pass over each frame, bit for bit (a retracting sum drifts).
    #[tokio::test]
    async fn sliding_results_are_those_of_a_fresh_frame() {
        let ctx = SessionContext::new();
        for (name, kind) in [
            ("spark_avg", SlidingKind::Avg),
            ("spark_sum", SlidingKind::Sum),
            ("spark_var_samp", SlidingKind::VarSamp),
        ] {
            ctx.register_udaf(sliding_udaf(kind).as_ref().clone().with_aliases([name]));
        }
        let (avg, sum, var) = (
            results(&ctx, "spark_avg").await,
            results(&ctx, "spark_sum").await,
            results(&ctx, "spark_var_samp").await,
        );
        let mut drift = 0;
        let df_avg = results(&ctx, "avg").await;
        for i in 0..N {
            let frame: Vec<f64> = (i.saturating_sub(3)..=i).map(x).collect();
            let s = frame.iter().fold(0.0, |a, b| a + b);
            let n = frame.len() as f64;
            assert_eq!(sum[i], Some(s), "sum at row {i}");
            assert_eq!(avg[i], Some(s / n), "avg at row {i}");
            let (mut k, mut mean, mut m2) = (0f64, 0f64, 0f64);
            for v in &frame {
                k += 1.0;
                let d = v - mean;
                let dn = d / k;
                mean += dn;
                m2 += d * (d - dn);
            }
            let want = (k >= 2.0).then(|| m2 / (k - 1.0));
            assert_eq!(var[i], want, "var_samp at row {i}");
            drift += usize::from(df_avg[i] != Some(s / n));
        }
        eprintln!("DataFusion's retracting avg differs from a fresh frame at {drift} of {N} rows");
    }
}

//! The historical store's partition columns: `year`, `month`, `day` of `timestamp` (UTC).

use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use borboleta_core::naming::{PARTITION_COLUMNS, TIMESTAMP_COLUMN};
use chrono::Datelike;

use crate::error::Result;

/// Adds `year`, `month`, `day` (UTC calendar date of `timestamp`) to a batch.
pub fn with_partition_columns(batch: &RecordBatch) -> Result<RecordBatch> {
    let idx = batch.schema().index_of(TIMESTAMP_COLUMN)?;
    let micros = crate::sink::latest::event_micros(batch.column(idx))?;
    let n = micros.len();
    let (mut y, mut m, mut d) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    for v in micros.iter() {
        match v.and_then(chrono::DateTime::from_timestamp_micros) {
            Some(t) => {
                y.push(Some(t.year()));
                m.push(Some(t.month() as i32));
                d.push(Some(t.day() as i32));
            }
            None => {
                y.push(None);
                m.push(None);
                d.push(None);
            }
        }
    }
    let schema = partitioned_schema(&batch.schema());
    let mut cols: Vec<ArrayRef> = batch.columns().to_vec();
    cols.push(Arc::new(Int32Array::from(y)));
    cols.push(Arc::new(Int32Array::from(m)));
    cols.push(Arc::new(Int32Array::from(d)));
    Ok(RecordBatch::try_new(schema, cols)?)
}

/// `schema` + `year`, `month`, `day` (int).
pub fn partitioned_schema(schema: &Schema) -> SchemaRef {
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    for p in PARTITION_COLUMNS {
        fields.push(Field::new(p, DataType::Int32, true));
    }
    Arc::new(Schema::new(fields))
}

//! Latest row per key by event time, with the deterministic tie rule of
//! [`borboleta_core::time::write_timestamp`]. Used by every online writer.

use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::{cast, interleave_record_batch};
use arrow::datatypes::{DataType, Int64Type, SchemaRef, TimeUnit};
use arrow::row::{RowConverter, SortField};
use borboleta_core::time::{stable_hash, write_timestamp};
use datafusion::common::HashMap;
use datafusion::common::hash_map::EntryRef;

use crate::connector::Rejected;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy)]
struct Candidate {
    batch: usize,
    row: usize,
    ms: i64,
    hash: Option<u64>,
}

/// The winners: one row per key, with its write timestamp and its JSON form.
#[derive(Debug)]
pub struct LatestRows {
    /// One row per key.
    pub batch: RecordBatch,
    /// Write timestamp (microseconds) of each row.
    pub write_timestamps: Vec<i64>,
    /// Each row as a JSON object (the tie-break hashes this text).
    pub json_rows: Vec<String>,
}

/// Accumulates batches and keeps, per key, the row with the greatest write timestamp.
#[derive(Debug)]
pub struct LatestPerKey {
    schema: SchemaRef,
    key_idx: Vec<usize>,
    ts_idx: usize,
    converter: RowConverter,
    batches: Vec<RecordBatch>,
    /// Per key (in arrow's row format), the best row so far.
    best: HashMap<Vec<u8>, Candidate>,
    retained: usize,
    max_event_micros: Option<i64>,
    /// What was dropped.
    pub rejected: Rejected,
}

impl LatestPerKey {
    /// For rows of `schema`, keyed by `keys`, ordered by `timestamp`. Rows later than
    /// `max_event_micros` are rejected.
    pub fn new(schema: SchemaRef, keys: &[String], timestamp: &str, max_event_micros: Option<i64>) -> Result<Self> {
        let idx = |c: &str| {
            schema
                .index_of(c)
                .map_err(|_| Error::Internal(format!("column `{c}` missing from the feature rows")))
        };
        let key_idx = keys.iter().map(|k| idx(k)).collect::<Result<Vec<_>>>()?;
        let ts_idx = idx(timestamp)?;
        let fields = key_idx
            .iter()
            .map(|i| SortField::new(schema.field(*i).data_type().clone()))
            .collect();
        Ok(Self {
            converter: RowConverter::new(fields)?,
            schema,
            key_idx,
            ts_idx,
            batches: Vec::new(),
            best: HashMap::new(),
            retained: 0,
            max_event_micros,
            rejected: Rejected::default(),
        })
    }

    /// Adds a batch.
    pub fn push(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let cols: Vec<_> = self.key_idx.iter().map(|i| Arc::clone(batch.column(*i))).collect();
        let rows = self.converter.convert_columns(&cols)?;
        let ts = event_micros(batch.column(self.ts_idx))?;
        let b = self.batches.len();
        self.batches.push(batch);
        self.retained += ts.len();
        for row in 0..ts.len() {
            if ts.is_null(row) {
                self.rejected.null_timestamp += 1;
                continue;
            }
            let micros = ts.value(row);
            if self.max_event_micros.is_some_and(|m| micros > m) {
                self.rejected.future_timestamp += 1;
                continue;
            }
            let cand = Candidate {
                batch: b,
                row,
                ms: micros.div_euclid(1000),
                hash: None,
            };
            // the key is copied only when it is new
            match self.best.entry_ref(rows.row(row).as_ref()) {
                EntryRef::Vacant(v) => {
                    v.insert(cand);
                }
                EntryRef::Occupied(mut o) => {
                    let cur = o.get_mut();
                    if cand.ms > cur.ms {
                        *cur = cand;
                    } else if cand.ms == cur.ms {
                        let cur_hash = match cur.hash {
                            Some(h) => h,
                            None => row_hash(&self.batches[cur.batch], cur.row)?,
                        };
                        cur.hash = Some(cur_hash);
                        let new_hash = row_hash(&self.batches[b], row)?;
                        let rank = |h: u64| (write_timestamp(cand.ms * 1000, h), h);
                        if rank(new_hash) > rank(cur_hash) {
                            *cur = Candidate {
                                hash: Some(new_hash),
                                ..cand
                            };
                        }
                    }
                }
            }
        }
        if self.retained > 4 * self.best.len() + 65_536 {
            self.compact()?;
        }
        Ok(())
    }

    fn winners(&self) -> Result<RecordBatch> {
        let mut cands: Vec<&Candidate> = self.best.values().collect();
        cands.sort_by_key(|c| (c.batch, c.row));
        let indices: Vec<(usize, usize)> = cands.iter().map(|c| (c.batch, c.row)).collect();
        let refs: Vec<&RecordBatch> = self.batches.iter().collect();
        if indices.is_empty() {
            return Ok(RecordBatch::new_empty(Arc::clone(&self.schema)));
        }
        Ok(interleave_record_batch(&refs, &indices)?)
    }

    fn compact(&mut self) -> Result<()> {
        let mut cands: Vec<(Vec<u8>, Candidate)> = self.best.drain().collect();
        cands.sort_by_key(|(_, c)| (c.batch, c.row));
        let indices: Vec<(usize, usize)> = cands.iter().map(|(_, c)| (c.batch, c.row)).collect();
        let refs: Vec<&RecordBatch> = self.batches.iter().collect();
        let merged = interleave_record_batch(&refs, &indices)?;
        self.batches = vec![merged];
        self.retained = indices.len();
        for (i, (k, c)) in cands.into_iter().enumerate() {
            self.best.insert(k, Candidate { batch: 0, row: i, ..c });
        }
        Ok(())
    }

    /// Number of distinct keys so far.
    pub fn len(&self) -> usize {
        self.best.len()
    }

    /// Whether no row was kept.
    pub fn is_empty(&self) -> bool {
        self.best.is_empty()
    }

    /// The winning rows, their write timestamps and JSON.
    pub fn finish(self) -> Result<LatestRows> {
        let batch = self.winners()?;
        let json_rows = batch_to_json_rows(&batch)?;
        let ts = event_micros(batch.column(self.ts_idx))?;
        let write_timestamps = json_rows
            .iter()
            .enumerate()
            .map(|(i, j)| write_timestamp(ts.value(i), stable_hash(j.as_bytes())))
            .collect();
        Ok(LatestRows {
            batch,
            write_timestamps,
            json_rows,
        })
    }
}

/// A timestamp column as microseconds since the epoch (UTC).
pub fn event_micros(column: &arrow::array::ArrayRef) -> Result<arrow::array::Int64Array> {
    let ts = cast(column, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
    let ts = cast(&ts, &DataType::Int64)?;
    Ok(ts.as_primitive::<Int64Type>().clone())
}

fn row_hash(batch: &RecordBatch, row: usize) -> Result<u64> {
    let one = batch.slice(row, 1);
    let json = batch_to_json_rows(&one)?;
    Ok(stable_hash(json.first().map(String::as_bytes).unwrap_or_default()))
}

/// Each row of `batch` as a JSON object (nulls omitted, timestamps in RFC 3339).
pub fn batch_to_json_rows(batch: &RecordBatch) -> Result<Vec<String>> {
    let mut buf = Vec::new();
    {
        let mut w = arrow::json::LineDelimitedWriter::new(&mut buf);
        w.write(batch)?;
        w.finish()?;
    }
    let text = String::from_utf8(buf).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(text.lines().map(str::to_string).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, TimestampMicrosecondArray};
    use arrow::datatypes::{Field, Schema};

    fn batch(ids: &[i64], ts: &[Option<i64>], v: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new(
                "timestamp",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("v", DataType::Int64, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(ids.to_vec())),
                Arc::new(TimestampMicrosecondArray::from(ts.to_vec()).with_timezone("UTC")),
                Arc::new(Int64Array::from(v.to_vec())),
            ],
        )
        .unwrap()
    }

    #[test]
    fn keeps_latest_event_whatever_the_arrival_order() {
        let b1 = batch(&[1, 2, 1], &[Some(3_000), Some(1_000), Some(1_000)], &[13, 21, 11]);
        let b2 = batch(&[1, 2, 2], &[Some(2_000), None, Some(5_000)], &[12, 99, 25]);
        let mut l = LatestPerKey::new(b1.schema(), &["id".into()], "timestamp", None).unwrap();
        l.push(b1.clone()).unwrap();
        l.push(b2.clone()).unwrap();
        assert_eq!(l.rejected.null_timestamp, 1);
        let out = l.finish().unwrap();
        let mut rows = out.json_rows.clone();
        rows.sort();
        assert!(rows[0].contains("\"v\":13"), "{rows:?}");
        assert!(rows[1].contains("\"v\":25"), "{rows:?}");
    }

    #[test]
    fn ties_are_broken_the_same_way_in_any_order() {
        let a = batch(&[1], &[Some(7_000)], &[1]);
        let b = batch(&[1], &[Some(7_400)], &[2]);
        let run = |first: &RecordBatch, second: &RecordBatch| {
            let mut l = LatestPerKey::new(first.schema(), &["id".into()], "timestamp", None).unwrap();
            l.push(first.clone()).unwrap();
            l.push(second.clone()).unwrap();
            l.finish().unwrap().json_rows[0].clone()
        };
        assert_eq!(run(&a, &b), run(&b, &a));
    }
}

//! JSON lines into Arrow batches of a given schema (the file stream's and the Kafka reader's values).

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

/// Decodes JSON lines `bytes` into batches of `schema`; the first error as text.
pub(crate) fn decode_json(schema: &SchemaRef, bytes: &[u8]) -> std::result::Result<Vec<RecordBatch>, String> {
    let mut d = arrow::json::ReaderBuilder::new(Arc::clone(schema))
        .with_batch_size(8192)
        .build_decoder()
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut buf = bytes;
    while !buf.is_empty() {
        let n = d.decode(buf).map_err(|e| e.to_string())?;
        buf = &buf[n..];
        if n == 0 || !buf.is_empty() {
            match d.flush().map_err(|e| e.to_string())? {
                Some(b) => out.push(b),
                None if n == 0 => break,
                None => {}
            }
        }
    }
    if let Some(b) = d.flush().map_err(|e| e.to_string())? {
        out.push(b);
    }
    Ok(out)
}

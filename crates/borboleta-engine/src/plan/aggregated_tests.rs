//! Property test of the rolling windows: for random small event sets, every output row equals a
//! brute-force computation from the raw events with Butterfree's semantics (window
//! `[end - length, end)`, daily grid from the first event's day to the end date, other slides
//! only at window ends with events, date filter, then the consecutive-duplicate filter), with
//! nulls, empty windows, day boundaries, pivots and `with_distinct` (7- and 30-day windows).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, AsArray, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema, TimeUnit, TimestampMicrosecondType};
use async_trait::async_trait;
use borboleta_core::FeatureSetPipelineSpec;
use chrono::NaiveDate;
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

use crate::connector::{Reader, Writer};
use crate::pipeline::{FeatureSetPipeline, RunOptions};
use crate::sink::{MemoryMode, MemoryWriter};

const DAY: i64 = 86_400;
const FUNCTIONS: [&str; 7] = ["avg", "sum", "count", "min", "max", "stddev_pop", "var_samp"];

#[derive(Debug, Clone)]
struct Event {
    key: i64,
    ts: i64, // seconds
    value: Option<f64>,
    distinct: i64,
    pivot: &'static str,
}

/// xorshift64*: a small deterministic generator (no dependency).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const BASE: i64 = 1_704_067_200; // 2024-01-01 00:00:00 UTC

fn events(seed: u64) -> Vec<Event> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let n = 5 + rng.below(40) as usize;
    let mut used = std::collections::HashSet::new();
    let mut out = Vec::new();
    while out.len() < n {
        // 25 days, some events exactly on midnights and on 6-hour boundaries
        let ts = match rng.below(5) {
            0 => BASE + rng.below(25) as i64 * DAY,
            1 => BASE + rng.below(100) as i64 * 6 * 3600,
            _ => BASE + rng.below(25 * DAY as u64) as i64,
        };
        let key = 1 + rng.below(3) as i64;
        if !used.insert((key, ts)) {
            continue; // distinct timestamps per key: `keep: last` has no ties
        }
        let value = (rng.below(6) != 0).then(|| (rng.below(2000) as f64 - 500.0) / 8.0);
        out.push(Event {
            key,
            ts,
            value,
            distinct: rng.below(4) as i64,
            pivot: if rng.below(2) == 0 { "a" } else { "b" },
        });
    }
    out
}

#[derive(Debug)]
struct TestReader(Arc<MemTable>);

#[async_trait]
impl Reader for TestReader {
    fn id(&self) -> &str {
        "events"
    }
    async fn table_provider(&self, _ctx: &SessionContext) -> crate::Result<Arc<dyn TableProvider>> {
        Ok(Arc::clone(&self.0) as Arc<dyn TableProvider>)
    }
}

fn table(events: &[Event]) -> Arc<MemTable> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("x", DataType::Float64, true),
        Field::new("d", DataType::Int64, false),
        Field::new("p", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(Int64Array::from_iter_values(events.iter().map(|e| e.key))),
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(events.iter().map(|e| e.ts * 1_000_000))
                    .with_timezone("UTC"),
            ),
            Arc::new(Float64Array::from_iter(events.iter().map(|e| e.value))),
            Arc::new(Int64Array::from_iter_values(events.iter().map(|e| e.distinct))),
            Arc::new(StringArray::from_iter_values(events.iter().map(|e| e.pivot))),
        ],
    )
    .unwrap();
    Arc::new(MemTable::try_new(schema, vec![vec![batch]]).unwrap())
}

#[derive(Debug, Clone)]
struct Case {
    windows: Vec<(&'static str, i64)>, // definition, seconds
    slide: Option<(&'static str, i64)>,
    distinct: Option<bool>, // Some(last?)
    pivot: bool,
    start: Option<NaiveDate>,
    end: NaiveDate,
}

type Row = (i64, i64, Vec<Option<f64>>);

async fn engine(events: &[Event], case: &Case) -> Vec<Row> {
    let windows: Vec<String> = case.windows.iter().map(|(d, _)| format!("\"{d}\"")).collect();
    let mut agg = format!("windows: [{}]", windows.join(", "));
    if let Some((s, _)) = case.slide {
        agg.push_str(&format!(", slide: \"{s}\""));
    }
    if let Some(last) = case.distinct {
        agg.push_str(&format!(
            ", distinct: {{subset: [d], keep: {}}}",
            if last { "last" } else { "first" }
        ));
    }
    if case.pivot {
        agg.push_str(", pivot: {column: p, values: [\"a\", \"b\"]}");
    }
    let functions: Vec<String> = FUNCTIONS
        .iter()
        .map(|f| {
            format!(
                "{{function: {f}, dtype: {}}}",
                if *f == "count" { "bigint" } else { "double" }
            )
        })
        .collect();
    let yaml = format!(
        "readers: [{{id: events, type: file, path: unused.jsonl, format: json}}]\n\
         source: {{query: select * from events}}\n\
         feature_set:\n  name: fs\n  entity: e\n  keys: [{{name: id, dtype: bigint}}]\n  timestamp: {{from_column: ts}}\n  \
         aggregation: {{{agg}}}\n  features:\n    - {{name: x, transformation: {{type: aggregated, functions: [{}]}}}}\n\
         writers: [{{type: historical_feature_store, debug_mode: true}}]\n",
        functions.join(", ")
    );
    let spec = FeatureSetPipelineSpec::from_yaml_str(&yaml, None, &|_| None).unwrap();
    let writer: Arc<dyn Writer> = Arc::new(MemoryWriter::new(
        "historical_feature_store__fs",
        MemoryMode::Historical,
    ));
    let p = FeatureSetPipeline::try_new(spec, vec![Arc::new(TestReader(table(events)))], vec![writer])
        .await
        .unwrap();
    p.run(RunOptions {
        start_date: case.start,
        end_date: Some(case.end),
        progress: None,
    })
    .await
    .unwrap();
    let batches = p
        .sql("select * from historical_feature_store__fs order by id, timestamp")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let mut rows = Vec::new();
    for b in &batches {
        let n_features = b.num_columns() - 5; // id, timestamp, ..., year, month, day
        for r in 0..b.num_rows() {
            let key = b.column(0).as_primitive::<Int64Type>().value(r);
            let ts = b.column(1).as_primitive::<TimestampMicrosecondType>().value(r) / 1_000_000;
            let mut values = Vec::new();
            for c in 0..n_features {
                let col = b.column(2 + c);
                values.push(if col.is_null(r) {
                    None
                } else if col.data_type() == &DataType::Int64 {
                    Some(col.as_primitive::<Int64Type>().value(r) as f64)
                } else {
                    Some(col.as_primitive::<Float64Type>().value(r))
                });
            }
            rows.push((key, ts, values));
        }
    }
    rows
}

fn aggregate(f: &str, values: &[f64]) -> Option<f64> {
    let n = values.len() as f64;
    if f == "count" {
        return Some(n);
    }
    if values.is_empty() {
        return None;
    }
    let mean = values.iter().sum::<f64>() / n;
    let m2: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
    match f {
        "avg" => Some(mean),
        "sum" => Some(values.iter().sum()),
        "min" => values.iter().copied().reduce(f64::min),
        "max" => values.iter().copied().reduce(f64::max),
        "stddev_pop" => Some((m2 / n).sqrt()),
        "var_samp" => (values.len() > 1).then(|| m2 / (n - 1.0)),
        _ => unreachable!(),
    }
}

fn brute(events: &[Event], case: &Case) -> Vec<Row> {
    let slide = case.slide.map_or(DAY, |s| s.1);
    let grid = slide == DAY;
    let day = |s: i64| s.div_euclid(DAY) * DAY;
    let end_excl = (case.end - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days() * DAY + DAY;
    let start = case
        .start
        .map(|s| (s - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days() * DAY);
    let first_day = events.iter().map(|e| day(e.ts)).min().unwrap();
    let mut by_key: BTreeMap<i64, Vec<&Event>> = BTreeMap::new();
    for e in events {
        by_key.entry(e.key).or_default().push(e);
    }
    let pivots: Vec<Option<&str>> = if case.pivot {
        vec![Some("a"), Some("b")]
    } else {
        vec![None]
    };
    let mut out = Vec::new();
    for (key, evs) in by_key {
        let mut ends: Vec<i64> = Vec::new();
        if grid {
            let mut t = first_day;
            while t < end_excl {
                ends.push(t);
                t += DAY;
            }
        } else {
            for e in &evs {
                for (_, len) in &case.windows {
                    let mut t = (e.ts.div_euclid(slide) + 1) * slide;
                    while t - len <= e.ts {
                        ends.push(t);
                        t += slide;
                    }
                }
            }
            ends.sort_unstable();
            ends.dedup();
        }
        ends.retain(|t| *t < end_excl && start.is_none_or(|s| *t >= s));
        let mut previous: Option<Vec<Option<f64>>> = None;
        for t in ends {
            let mut row = Vec::new();
            for p in &pivots {
                for f in FUNCTIONS {
                    for (_, len) in &case.windows {
                        let in_window: Vec<&&Event> = evs.iter().filter(|e| e.ts >= t - len && e.ts < t).collect();
                        let kept: Vec<&&Event> = match case.distinct {
                            None => in_window,
                            Some(last) => {
                                let mut pick: BTreeMap<i64, &&Event> = BTreeMap::new();
                                for e in in_window {
                                    let slot = pick.entry(e.distinct).or_insert(e);
                                    if (last && e.ts > slot.ts) || (!last && e.ts < slot.ts) {
                                        *slot = e;
                                    }
                                }
                                pick.into_values().collect()
                            }
                        };
                        let kept: Vec<&&Event> = kept.into_iter().filter(|e| p.is_none_or(|p| e.pivot == p)).collect();
                        if kept.is_empty() {
                            row.push(None);
                        } else {
                            let values: Vec<f64> = kept.iter().filter_map(|e| e.value).collect();
                            row.push(aggregate(f, &values));
                        }
                    }
                }
            }
            if previous.as_ref() != Some(&row) {
                out.push((key, t, row.clone()));
            }
            previous = Some(row);
        }
    }
    out
}

fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0),
        _ => false,
    }
}

async fn check(case: Case, seeds: std::ops::Range<u64>) {
    for seed in seeds {
        let evs = events(seed);
        let got = engine(&evs, &case).await;
        let want = brute(&evs, &case);
        let same = got.len() == want.len()
            && got
                .iter()
                .zip(&want)
                .all(|(g, w)| g.0 == w.0 && g.1 == w.1 && g.2.iter().zip(&w.2).all(|(a, b)| close(*a, *b)));
        assert!(
            same,
            "seed {seed}, {case:?}\nevents: {evs:?}\nengine ({} rows): {got:?}\nbrute force ({} rows): {want:?}",
            got.len(),
            want.len()
        );
    }
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

#[tokio::test]
async fn daily_grid_matches_brute_force() {
    let case = Case {
        windows: vec![("1 day", DAY), ("3 days", 3 * DAY), ("1 week", 7 * DAY)],
        slide: None,
        distinct: None,
        pivot: false,
        start: None,
        end: date("2024-01-30"),
    };
    check(case.clone(), 0..12).await;
    // a start date inside the data, an end date before its last event
    check(
        Case {
            start: Some(date("2024-01-08")),
            end: date("2024-01-20"),
            ..case
        },
        12..20,
    )
    .await;
}

#[tokio::test]
async fn other_slides_match_brute_force() {
    let case = Case {
        windows: vec![("12 hours", DAY / 2), ("1 day", DAY)],
        slide: Some(("6 hours", DAY / 4)),
        distinct: None,
        pivot: false,
        start: Some(date("2024-01-03")),
        end: date("2024-01-21"),
    };
    check(case, 100..110).await;
}

#[tokio::test]
async fn distinct_and_pivot_match_brute_force() {
    for last in [true, false] {
        let case = Case {
            windows: vec![("7 days", 7 * DAY), ("30 days", 30 * DAY)],
            slide: None,
            distinct: Some(last),
            pivot: false,
            start: None,
            end: date("2024-02-05"),
        };
        check(case, 200..208).await;
    }
    let case = Case {
        windows: vec![("2 days", 2 * DAY)],
        slide: None,
        distinct: None,
        pivot: true,
        start: None,
        end: date("2024-01-28"),
    };
    check(case.clone(), 300..308).await;
    check(
        Case {
            distinct: Some(true),
            ..case
        },
        308..314,
    )
    .await;
}

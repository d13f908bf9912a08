"""Case (c) on Butterfree: a streaming FileReader(json) -> FeatureSet -> online memory table.

    python pipeline_stream.py [--poll progress|count] [--workdir DIR]
                              [--files 20 --rows-per-file 5000 --burst-files 10 --burst-rows 100000]

The FeatureSet `events_stream_features` has the three non-window features of case (a)
(pipeline_rows.row_features(with_window=False)); its only writer is OnlineFeatureStoreWriter in
debug mode, a Spark memory table. The pipeline is started on an empty folder
(WORKDIR/stream/input), then

1. latency: --files files of --rows-per-file events are dropped one at a time (written to a
   staging folder, then renamed in, so the stream never sees half a file); for each, the time
   from the start of its write until its rows are in the table;
2. throughput: --burst-files files of --burst-rows events are dropped at once; the time until
   all their rows are in the table.

The files hold gen_data.json_lines(n, seed) with seed i for single file i and 1000 + i for
burst file i: bench/gen_stream.py writes the same bytes for Borboleta. They are all rendered
before the Spark session starts.

"Rows are in the table" is polled every 10 ms, either from the query's progress reports, which
Spark posts right after a batch is committed to the sink (--poll progress, the default; a count
confirms the total at the end), or with `select count(*)` on the memory table (--poll count;
each poll is a Spark job over the whole table, which slows what it measures). The median
latency leaves out the first (cold) file. Prints one `RESULT {json}` line.
"""

import argparse
import os
import shutil
import statistics
import time

from common import DEFAULT_WORKDIR, ENTITY, emit, spark_session
from gen_data import json_lines
from pipeline_rows import row_features

NAME = "events_stream_features"
ONLINE_VIEW = f"online_feature_store__{NAME}"


def build_pipeline(input_dir):
    from butterfree.constants import DataType
    from butterfree.extract import Source
    from butterfree.extract.readers import FileReader
    from butterfree.load import Sink
    from butterfree.load.writers import OnlineFeatureStoreWriter
    from butterfree.pipelines import FeatureSetPipeline
    from butterfree.transform import FeatureSet
    from butterfree.transform.features import KeyFeature, TimestampFeature
    from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType, TimestampType

    schema = StructType([
        StructField("id", LongType()),
        StructField("ts", TimestampType()),
        StructField("amount", DoubleType()),
        StructField("category", StringType()),
    ])
    return FeatureSetPipeline(
        source=Source(
            readers=[FileReader(id="events_stream", path=input_dir, format="json", schema=schema, stream=True)],
            query="select * from events_stream",
        ),
        feature_set=FeatureSet(
            name=NAME,
            entity=ENTITY,
            description="row-level features over streamed events",
            keys=[KeyFeature(name="id", description="entity id", dtype=DataType.BIGINT)],
            timestamp=TimestampFeature(from_column="ts"),
            features=row_features(with_window=False),
        ),
        sink=Sink(writers=[OnlineFeatureStoreWriter(debug_mode=True)]),
    )


def drop_file(content, staging, input_dir, name):
    """Write content under staging, then rename it into input_dir (atomic)."""
    tmp = os.path.join(staging, name)
    with open(tmp, "w") as f:
        f.write(content)
    os.rename(tmp, os.path.join(input_dir, name))


def table_count(spark):
    return spark.sql(f"select count(*) from {ONLINE_VIEW}").first()[0]


def wait_for(spark, query, expected, mode, seen, timeout=600.0, poll=0.01):
    """Block until `expected` rows are in the memory table; `seen` maps batchId -> input rows."""
    deadline = time.perf_counter() + timeout
    while True:
        if mode == "count":
            count = table_count(spark)
        else:
            seen.update((b["batchId"], b["numInputRows"]) for b in query.recentProgress)
            count = sum(seen.values())
        if count >= expected:
            return
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{count} of {expected} rows after {timeout}s")
        time.sleep(poll)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", default=DEFAULT_WORKDIR, help="Spark warehouse, input and staging folders")
    p.add_argument("--poll", choices=["progress", "count"], default="progress")
    p.add_argument("--files", type=int, default=20)
    p.add_argument("--rows-per-file", type=int, default=5000)
    p.add_argument("--burst-files", type=int, default=10)
    p.add_argument("--burst-rows", type=int, default=100_000)
    args = p.parse_args()

    root = os.path.join(args.workdir, "stream")
    shutil.rmtree(root, ignore_errors=True)
    input_dir, staging = os.path.join(root, "input"), os.path.join(root, "staging")
    os.makedirs(input_dir)
    os.makedirs(staging)
    single = [json_lines(args.rows_per_file, seed=i) for i in range(args.files)]
    burst = [json_lines(args.burst_rows, seed=1000 + i) for i in range(args.burst_files)]

    t0 = time.perf_counter()
    spark = spark_session(args.workdir)
    spark.sparkContext.setLogLevel("ERROR")
    t_session = time.perf_counter() - t0

    t = time.perf_counter()
    build_pipeline(input_dir).run()  # returns once the streaming query has started
    t_start = time.perf_counter() - t
    query = spark.streams.active[0]

    expected, latencies, seen = 0, [], {}
    for i, content in enumerate(single):
        expected += args.rows_per_file
        t = time.perf_counter()
        drop_file(content, staging, input_dir, f"single-{i:04d}.json")
        wait_for(spark, query, expected, args.poll, seen)
        latencies.append(time.perf_counter() - t)

    t = time.perf_counter()
    for i, content in enumerate(burst):
        drop_file(content, staging, input_dir, f"burst-{i:04d}.json")
    expected += args.burst_files * args.burst_rows
    wait_for(spark, query, expected, args.poll, seen)
    t_burst = time.perf_counter() - t

    t = time.perf_counter()
    total = [table_count(spark) for _ in range(5)][0]
    t_count = (time.perf_counter() - t) / 5
    assert total == expected, (total, expected)

    batches = [b for b in query.recentProgress if b["numInputRows"] > 0]
    query.stop()
    rest = latencies[1:] or latencies
    emit({
        "pipeline": "stream",
        "poll": args.poll,
        "files": args.files,
        "rows_per_file": args.rows_per_file,
        "burst_files": args.burst_files,
        "burst_rows_per_file": args.burst_rows,
        "session_s": round(t_session, 3),
        "start_s": round(t_start, 3),
        "first_file_latency_s": round(latencies[0], 3),
        "median_file_latency_s": round(statistics.median(rest), 3),
        "max_file_latency_s": round(max(rest), 3),
        "file_events_per_s": round(args.rows_per_file * len(latencies) / sum(latencies)),
        "burst_s": round(t_burst, 3),
        "burst_events_per_s": round(args.burst_files * args.burst_rows / t_burst),
        "burst_batches": sum(1 for b in batches if b["batchId"] >= len(single)),
        "count_s_at_end": round(t_count, 3),
        "median_batch_trigger_ms": statistics.median(b["durationMs"]["triggerExecution"] for b in batches),
        "total_rows": expected,
    })
    spark.stop()


if __name__ == "__main__":
    main()

"""What the Butterfree pipelines of the benchmarks share: the Spark session, the sinks, the
fixtures the answers are compared with, and the timing of one batch run.

Everything runs in UTC (this Python process, the JVM and the Spark session), so the historical
year/month/day partitions, the rolling-window boundaries and the fixtures do not depend on the
machine's time zone. The session is Spark `local[2]` with a 4 GB driver; `BF_MASTER` and
`BF_DRIVER_MEMORY` override them.

Each pipeline script prints one `RESULT {json}` line on stdout (`emit`), which `bench/run.py`
reads; Spark's own output goes to stderr.
"""

import argparse
import datetime
import json
import os
import tempfile
import time

os.environ["TZ"] = "UTC"
time.tzset()

DEFAULT_WORKDIR = os.path.join(tempfile.gettempdir(), "borboleta-butterfree-bench")
DATABASE = "bench_fs"
ENTITY = "user"


def spark_session(workdir):
    """The local Spark session (Butterfree's SparkClient picks it up with getOrCreate)."""
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.master(os.environ.get("BF_MASTER", "local[2]"))
        .appName("borboleta-butterfree-bench")
        .config("spark.driver.memory", os.environ.get("BF_DRIVER_MEMORY", "4g"))
        .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.warehouse.dir", os.path.join(workdir, "warehouse"))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )


def batch_sink(out_dir):
    """The writers of the batch cases: HistoricalFeatureStoreWriter (a real parquet table on
    local files, `debug_mode=False`, database `bench_fs`) and OnlineFeatureStoreWriter in debug
    mode (the temporary view `online_feature_store__<feature set>`)."""
    from butterfree.configs.db import MetastoreConfig
    from butterfree.load import Sink
    from butterfree.load.writers import HistoricalFeatureStoreWriter, OnlineFeatureStoreWriter

    config = MetastoreConfig(path=os.path.abspath(out_dir), mode="overwrite", format_="parquet",
                             file_system="file")
    return Sink(writers=[
        HistoricalFeatureStoreWriter(db_config=config, database=DATABASE),
        OnlineFeatureStoreWriter(debug_mode=True),
    ])


def historical_path(out_dir, feature_set_name):
    """Where HistoricalFeatureStoreWriter puts the table: <out>/historical/<entity>/<name>."""
    return os.path.join(os.path.abspath(out_dir), "historical", ENTITY, feature_set_name)


def _json_value(value):
    """Timestamps as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (UTC); everything else as json.dumps has it."""
    if isinstance(value, datetime.datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value


def _write_jsonl(rows, path):
    with open(path, "w") as f:
        for row in rows:
            f.write(json.dumps({k: _json_value(v) for k, v in row.asDict().items()}) + "\n")


def summary(df):
    """A whole output in one row: the row count and, per column, the non-null count, the sum
    (double, bigint, int) and min/max (timestamp, string, double, bigint, int). Keys are
    `rows` and `<column>.non_null|sum|min|max`; bench/compare.py computes the same for Borboleta."""
    from pyspark.sql import functions as F

    aggs = [F.count(F.lit(1)).alias("rows")]
    for name, dtype in df.dtypes:
        aggs.append(F.count(name).alias(f"{name}.non_null"))
        if dtype in ("double", "bigint", "int"):
            aggs.append(F.sum(name).alias(f"{name}.sum"))
        if dtype in ("timestamp", "string", "double", "bigint", "int"):
            aggs += [F.min(name).alias(f"{name}.min"), F.max(name).alias(f"{name}.max")]
    row = df.agg(*aggs).first()
    return {k: _json_value(v) for k, v in row.asDict().items()}


def write_fixture(spark, name, hist_dir, online_view, fixture_dir, n=20):
    """The answers of one run, for bench/compare.py --online, in fixture_dir:

    - `<name>_historical.jsonl`: the first n rows by (id, timestamp) of the historical table as
      read back from disk (partition columns year/month/day included);
    - `<name>_online.jsonl`: the first n rows by id of the online view;
    - `<name>_meta.json`: both schemas (`historical_schema`, `online_schema`: "column type") and
      both `summary`s (`historical_summary`, `online_summary`).
    """
    os.makedirs(fixture_dir, exist_ok=True)
    hist = spark.read.parquet(hist_dir)
    online = spark.table(online_view)
    _write_jsonl(hist.orderBy("id", "timestamp").limit(n).collect(),
                 os.path.join(fixture_dir, f"{name}_historical.jsonl"))
    _write_jsonl(online.orderBy("id").limit(n).collect(), os.path.join(fixture_dir, f"{name}_online.jsonl"))
    meta = {
        "historical_schema": [f"{c} {t}" for c, t in hist.dtypes],
        "online_schema": [f"{c} {t}" for c, t in online.dtypes],
        "historical_summary": summary(hist),
        "online_summary": summary(online),
    }
    with open(os.path.join(fixture_dir, f"{name}_meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")


def task_counts(spark):
    """(jobs, stages, completed tasks) this session has run so far."""
    tracker = spark.sparkContext.statusTracker()
    jobs = tracker.getJobIdsForGroup(None)
    stages = {s for j in jobs if tracker.getJobInfo(j) for s in tracker.getJobInfo(j).stageIds}
    infos = [tracker.getStageInfo(s) for s in stages]
    return len(jobs), len(stages), sum(i.numCompletedTasks for i in infos if i)


def emit(result):
    """The one machine-readable line of a run: `RESULT {json}` on stdout."""
    print("RESULT " + json.dumps(result), flush=True)


def batch_args(description):
    """The command line of the batch pipelines."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", required=True, help="parquet folder made by gen_data.py")
    p.add_argument("--out", required=True, help="root folder of the historical table")
    p.add_argument("--workdir", default=DEFAULT_WORKDIR, help="Spark warehouse and scratch")
    p.add_argument("--expected", metavar="FIXTURE_DIR",
                   help="also write the run's answers there (write_fixture), after the timings")
    return p.parse_args()


def run_batch(name, feature_set_name, build_pipeline, args, **run_kwargs):
    """One batch run: start the session, `pipeline.run(**run_kwargs)`, count the online view,
    then (untimed) count input and historical rows, write the fixture if asked, and emit
    session_s, run_s and online_count_s (seconds) with the row and Spark task counts."""
    t0 = time.perf_counter()
    spark = spark_session(args.workdir)
    spark.sparkContext.setLogLevel("ERROR")
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {DATABASE}")
    t_session = time.perf_counter() - t0

    pipeline = build_pipeline(args.input, args.out)
    t = time.perf_counter()
    pipeline.run(**run_kwargs)
    t_run = time.perf_counter() - t

    online_view = f"online_feature_store__{feature_set_name}"
    t = time.perf_counter()
    online_rows = spark.table(online_view).count()
    t_online = time.perf_counter() - t
    jobs, stages, tasks = task_counts(spark)

    hist_dir = historical_path(args.out, feature_set_name)
    input_rows = spark.read.parquet(args.input).count()
    historical_rows = spark.read.parquet(hist_dir).count()
    if args.expected:
        write_fixture(spark, name, hist_dir, online_view, args.expected)
    emit({
        "pipeline": name,
        "input_rows": input_rows,
        "historical_rows": historical_rows,
        "online_rows": online_rows,
        "session_s": round(t_session, 3),
        "run_s": round(t_run, 3),
        "online_count_s": round(t_online, 3),
        "spark_jobs": jobs,
        "spark_stages": stages,
        "spark_tasks": tasks,
    })
    spark.stop()

#!/usr/bin/env python3
"""Borboleta side by side with Butterfree 1.8.0: the one entry point (`make bench`).

    python3 bench/run.py [--quick] [--no-butterfree] [--runs N]
    python3 bench/run.py --smoke      # CI: tiny sizes, the debug build, no Butterfree, 1 run

Builds Borboleta in release mode once, creates Butterfree's venv if needed
(bench/butterfree/setup.sh: Butterfree 1.8.0 and PySpark 3.5.1 from PyPI), generates the data
once (bench/butterfree/gen_data.py, seed 42, cached), then for each case runs N fresh processes of each system on the same files in the
same run, interleaved (Borboleta, Butterfree, Borboleta, ...), and reports the median
(min-max) of process wall time, CPU-seconds of the process tree and peak RSS of the process
tree, and the ratio Borboleta / Butterfree. Cases:

  (a) row-level pipeline (bench/butterfree/pipeline_rows.py) at 100k, 1M and 5M rows (--quick: 100k, 1M);
      the historical and online outputs of both systems from the same run are compared
      (bench/compare.py; Butterfree's online view is saved by one more, untimed, run of its
      script with --expected);
  (b) aggregated pipeline (pipeline_agg.py: avg/sum/count/max of amount over 1, 7 and 30-day
      rolling windows, daily slide, end date 2024-03-31) at the same sizes, compared the same
      way; --agg-sizes adds sizes for Borboleta alone (e.g. 50000000), with --memory-limit-mb;
  (c) streaming file pipeline (pipeline_stream.py --poll progress): per-file latency of 20
      files x 5,000 events, then a burst of 10 x 100,000 events. Borboleta runs as
      `borboleta-bench stream`; if that binary is missing, through the release CLI and its
      /metrics endpoint (bench/stream_cli.py);
  (d) Kafka -> the row-level features of (c) -> Cassandra (Borboleta alone): drain a preloaded
      topic of --d-events (default 5M) events with 10k ids, and again with 1M ids
      (`borboleta run --available-now`, max_rows_per_batch 200k): events per CPU-second of the
      pipeline process and Cassandra writes/s; then freshness at a steady 10k events/s
      (`borboleta-bench freshness`: linger.ms=0, one sampled key polled every 1 ms);
  (e) online lookups over one warm connection (`borboleta-bench lookup`, the library's
      OnlineLookup): 10k calls of 1 key and of 100 keys on the 10k-ids table of (d); and the
      CLI's `borboleta online get` end to end. (d) and (e) start Kafka and Cassandra with
      scripts/services;
  (s) start-up: `borboleta --version` and `borboleta validate examples/events/pipeline.yaml`,
      15 fresh processes each.

Raw results: bench/results/<UTC timestamp>.json (and bench/results/latest.json); a markdown
table on stdout; charts of (a) and (b) against size in docs/img/ (bench/charts.py).

Everything it runs is in this repository: Butterfree's side (its pipelines, their Spark session,
the venv setup and the data generators) in bench/butterfree/ (README there). Outside the clone,
BENCH_CACHE (default ~/.cache/borboleta) holds the venv (bench-venv), the data (bench-data),
scratch (bench-work) and the release target dir (target-release).
"""

import argparse
import ctypes
import datetime
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BF = os.path.join(HERE, "butterfree")  # Butterfree's side: setup.sh, gen_data.py, pipeline_*.py
CACHE = os.environ.get("BENCH_CACHE", os.path.expanduser("~/.cache/borboleta"))
VENV = os.path.join(CACHE, "bench-venv")
VPY = os.path.join(VENV, "bin", "python")
DATA = os.path.join(CACHE, "bench-data")
WORK = os.path.join(CACHE, "bench-work")
TARGET = os.path.join(CACHE, "target-release")
BORBOLETA = os.path.join(TARGET, "release", "borboleta")
BENCH = os.path.join(TARGET, "release", "borboleta-bench")

ROWS_SPEC = """\
# Case (a): the row-level pipeline of Butterfree's pipeline_rows.py.
readers:
  - {{id: events, type: file, path: {input}, format: parquet}}
source:
  query: select * from events
feature_set:
  name: events_row_features
  entity: user
  description: row-level features over events
  keys:
    - {{name: id, description: entity id, dtype: bigint}}
  timestamp: {{from_column: ts}}
  features:
    - name: amount_x2
      description: amount times two
      dtype: double
      transformation: {{type: sql_expression, expression: amount * 2}}
    - name: category_group
      description: CASE over category
      dtype: string
      transformation:
        type: sql_expression
        expression: "CASE WHEN category < 'cat_05' THEN 'A' WHEN category < 'cat_10' THEN 'B' ELSE 'C' END"
    - name: amount
      description: log(amount + 1)
      transformation:
        type: spark_function
        functions: [{{function: log1p, dtype: double}}]
    - name: amount
      description: avg amount of the entity over the last 7 days
      transformation:
        type: spark_function
        functions: [{{function: avg, dtype: double}}]
        window: {{partition_by: id, mode: fixed_windows, definitions: ["7 days"]}}
writers:
  - {{type: historical_feature_store, path: {out}}}
  - {{type: online_feature_store, path: {out}/online.sqlite}}
"""

AGG_SPEC = """\
# Case (b): the aggregated pipeline of Butterfree's pipeline_agg.py.
readers:
  - {{id: events, type: file, path: {input}, format: parquet}}
source:
  query: select * from events
feature_set:
  name: events_agg_features
  entity: user
  description: rolling-window aggregations of amount
  keys:
    - {{name: id, description: entity id, dtype: bigint}}
  timestamp: {{from_column: ts}}
  aggregation: {{windows: ["1 day", "7 days", "30 days"]}}
  features:
    - name: amount
      description: amount aggregations
      transformation:
        type: aggregated
        functions:
          - {{function: avg, dtype: double}}
          - {{function: sum, dtype: double}}
          - {{function: count, dtype: bigint}}
          - {{function: max, dtype: double}}
writers:
  - {{type: historical_feature_store, path: {out}}}
  - {{type: online_feature_store, path: {out}/online.sqlite}}
"""
AGG_END_DATE = "2024-03-31"

# case -> (spec template, Butterfree script, feature set name, extra Borboleta arguments)
BATCH = {
    "a": (ROWS_SPEC, "pipeline_rows.py", "events_row_features", []),
    "b": (AGG_SPEC, "pipeline_agg.py", "events_agg_features", ["--end-date", AGG_END_DATE]),
}


# ---------------------------------------------------------------- process measurement

def _set_subreaper():
    """Orphans of our children (pyspark's JVM may outlive python by a moment) are reparented
    to us, so we reap them and their CPU time lands in RUSAGE_CHILDREN."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def _children():
    kids = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(entry))
    return kids


def _status_kb(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def tree_rss_kb(root):
    """Sum of VmRSS over root and its descendants. As in Butterfree's run_all.py, children the
    JVM forks (Hadoop's shell helpers: until they exec they show the JVM's RSS) are skipped."""
    kids, total, todo = _children(), 0, [root]
    while todo:
        pid = todo.pop()
        total += _status_kb(pid, "VmRSS:")
        if _comm(pid) == "java":
            todo.extend(k for k in kids.get(pid, []) if _comm(k).startswith("python"))
        else:
            todo.extend(kids.get(pid, []))
    return total


def measure(cmd, log_path, cwd=None, env=None):
    """Run cmd as a fresh process. Returns wall s (spawn .. exit of the process), CPU-seconds of
    the process tree (user+sys, RUSAGE_CHILDREN delta, orphans reaped), peak RSS MiB of the tree
    (VmRSS sum sampled every 50 ms, at least the process's own ru_maxrss) and the RESULT json."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = []
    with open(log_path, "w") as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, cwd=cwd, env=env)
        reader = threading.Thread(target=lambda: out.extend(proc.stdout))
        reader.start()
        peak, done = [0], threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], tree_rss_kb(proc.pid))
                done.wait(0.05)

        sampler = threading.Thread(target=sample)
        sampler.start()
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        # reap orphans (the JVM) so their CPU time is counted; give them 30 s
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                time.sleep(0.05)
        reader.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        with open(log_path) as f:
            tail = f.read()[-3000:]
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}), see {log_path}:\n{tail}")
    result = next((json.loads(line[7:]) for line in out if line.startswith("RESULT ")), {})
    with open("/proc/loadavg") as f:
        load = float(f.read().split()[0])
    return {
        "wall_s": round(wall, 4),
        "cpu_s": round(cpu, 3),
        "peak_rss_mib": round(max(peak[0], ru.ru_maxrss) / 1024, 1),
        "loadavg_1m_after": load,
        "result": result,
    }


# ---------------------------------------------------------------- setup

def sh(cmd, **kw):
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)


def smoke_venv():
    """A small venv with numpy and pyarrow (for bench/butterfree/gen_data.py and gen_stream.py),
    for --smoke."""
    venv = os.path.join(CACHE, "bench-smoke-venv")
    py = os.path.join(venv, "bin", "python")
    if not os.path.exists(os.path.join(venv, ".installed")):
        sh([sys.executable, "-m", "venv", venv])
        sh([py, "-m", "pip", "install", "-q", "numpy", "pyarrow"])
        open(os.path.join(venv, ".installed"), "w").close()
    return py


def setup(args):
    if not args.no_butterfree or not os.path.exists(VPY):
        sh([os.path.join(BF, "setup.sh"), VENV])
    env = dict(os.environ, CARGO_TARGET_DIR=TARGET)
    if args.smoke:
        # the whole workspace, as CI builds it: building two packages alone would unify the
        # dependencies' features differently and rebuild them
        debug_target = os.environ.get("CARGO_TARGET_DIR", os.path.join(CACHE, "target"))
        sh(["cargo", "build", "--workspace", "--all-targets"], cwd=ROOT,
           env=dict(os.environ, CARGO_TARGET_DIR=debug_target))
    elif not args.no_build:
        sh(["cargo", "build", "--release", "-p", "borboleta-cli", "-p", "borboleta-bench"], cwd=ROOT, env=env)
    for exe in (BORBOLETA, BENCH):
        if not os.path.exists(exe):
            print(f"warning: {exe} is missing", flush=True)
    for n in list(args.sizes) + list(args.agg_sizes):
        d = os.path.join(DATA, f"events_{n}")
        if not os.path.isdir(d):
            sh([VPY, os.path.join(BF, "gen_data.py"), "--rows", str(n), "--out", d])
    if "c" in args.cases.split(","):
        sh([VPY, os.path.join(HERE, "gen_stream.py"), "--out", os.path.join(DATA, "stream"),
            "--files", str(args.files), "--burst-files", str(args.burst_files)])


# ---------------------------------------------------------------- cases

def case_batch(case, n, args, runs, butterfree=True):
    """Case (a) or (b) at n rows: fresh processes of each system, then their outputs compared."""
    template, script, name, extra = BATCH[case]
    data = os.path.join(DATA, f"events_{n}")
    work = os.path.join(WORK, f"{case}_{n}")
    os.makedirs(os.path.join(work, "logs"), exist_ok=True)
    out_b = os.path.join(work, "borboleta_out")
    out_s = os.path.join(work, "butterfree_out")
    spec = os.path.join(work, "spec.yaml")
    with open(spec, "w") as f:
        f.write(template.format(input=data, out=out_b))
    env = dict(os.environ, TZ="UTC")
    cmd_b = [BORBOLETA, "run", spec, "--quiet"] + extra
    if args.memory_limit_mb:
        cmd_b += ["--memory-limit-mb", str(args.memory_limit_mb)]
    butterfree = butterfree and not args.no_butterfree
    for r in range(args.runs):
        shutil.rmtree(out_b, ignore_errors=True)
        m = measure(cmd_b, os.path.join(work, "logs", f"borboleta_{r}.log"), env=env)
        runs.append(dict(m, case=case, size=n, system="borboleta", repeat=r))
        print(json.dumps(runs[-1]), flush=True)
        if butterfree:
            shutil.rmtree(out_s, ignore_errors=True)
            cmd = [VPY, script, "--input", data, "--out", out_s, "--workdir", os.path.join(work, "spark")]
            m = measure(cmd, os.path.join(work, "logs", f"butterfree_{r}.log"), cwd=BF)
            runs.append(dict(m, case=case, size=n, system="butterfree", repeat=r))
            print(json.dumps(runs[-1]), flush=True)
    if not butterfree:
        return None
    # one more Butterfree run, not timed, that also saves its online view's summary and first
    # rows (common.py's --expected): the online outputs are compared with it
    fixture = os.path.join(work, "butterfree_fixture")
    shutil.rmtree(out_s, ignore_errors=True)
    shutil.rmtree(fixture, ignore_errors=True)
    cmd = [VPY, script, "--input", data, "--out", out_s, "--workdir", os.path.join(work, "spark"),
           "--expected", fixture]
    measure(cmd, os.path.join(work, "logs", "butterfree_fixture.log"), cwd=BF)
    hist = os.path.join("historical", "user", name)
    compare = [VPY, os.path.join(HERE, "compare.py")]
    cmp = subprocess.run(compare + [os.path.join(out_b, hist), os.path.join(out_s, hist)],
                         capture_output=True, text=True)
    online = subprocess.run(compare + ["--online", os.path.join(out_b, "online.sqlite"), name, fixture,
                                       {"a": "rows", "b": "agg"}[case], os.path.join(out_b, hist)],
                            capture_output=True, text=True)
    failed = [f"compare.py failed: {p.stderr[-2000:]}" for p in (cmp, online) if p.returncode != 0]
    if failed:
        return {"case": case, "size": n, "same": False, "differences": failed}
    c = json.loads(cmp.stdout)
    o = json.loads(online.stdout)
    c["same"] = c["same"] and o["same"]
    c["differences"] += o["differences"]
    c["notes"] = o.get("notes", [])
    c["online"] = {"borboleta": o["borboleta"], "butterfree": o["butterfree"]}
    c.update(case=case, size=n)
    print(f"({case}) {n:,}: same answers: {c['same']}" + "".join(f"\n  - {d}" for d in c["differences"])
          + "".join(f"\n  note: {d}" for d in c["notes"]), flush=True)
    return c


def case_startup(args, runs):
    """Start-up: `borboleta --version` and `validate` of the README example, 15 fresh processes each."""
    work = os.path.join(WORK, "startup")
    os.makedirs(work, exist_ok=True)
    example = os.path.join(ROOT, "examples", "events", "pipeline.yaml")
    for name, cmd in (("version", [BORBOLETA, "--version"]), ("validate", [BORBOLETA, "validate", example])):
        for r in range(15):
            m = measure(cmd, os.path.join(work, f"{name}.log"))
            runs.append(dict(m, case="s", size=name, system="borboleta", repeat=r))
        ws = sorted(r["wall_s"] * 1000 for r in runs if r["case"] == "s" and r["size"] == name)
        print(f"start-up {name}: median {statistics.median(ws):.1f} ms ({ws[0]:.1f}-{ws[-1]:.1f})", flush=True)


def case_kafka(args, runs):
    """Cases (d) and (e), Borboleta alone."""
    sh([os.path.join(ROOT, "scripts", "services"), "up", "kafka", "cassandra"])
    work = os.path.join(WORK, "kafka")
    logs = os.path.join(work, "logs")
    os.makedirs(logs, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d%H%M%S")
    specs = {}
    for ids in args.d_ids:
        topic = f"bench_d_{ids}_{stamp}"
        m = measure([BENCH, "produce", "--topic", topic, "--events", str(args.d_events), "--ids", str(ids)],
                    os.path.join(logs, f"produce_{ids}.log"))
        print(f"(d) produced {args.d_events:,} events over {ids:,} ids to {topic} in {m['wall_s']:.1f}s", flush=True)
        for r in range(args.runs):
            d = os.path.join(work, f"d_{ids}_{r}")
            shutil.rmtree(d, ignore_errors=True)
            spec = subprocess.run([BENCH, "spec", "--dir", d, "--topic", topic, "--keyspace", f"bench_d_{ids}"],
                                  check=True, capture_output=True, text=True).stdout.strip()
            specs.setdefault(ids, spec)
            log = os.path.join(logs, f"drain_{ids}_{r}.log")
            m = measure([BORBOLETA, "run", spec, "--available-now"], log)
            with open(log) as f:
                text = f.read()
            writes = next((int(line.split(":")[1].split()[0]) for line in text.splitlines()
                           if "online_feature_store (cassandra):" in line and "rows written" in line), None)
            m["result"] = {"events": args.d_events, "ids": ids, "cassandra_writes": writes,
                           "events_per_cpu_s": round(args.d_events / m["cpu_s"]) if m["cpu_s"] else None,
                           "events_per_s": round(args.d_events / m["wall_s"]),
                           "cassandra_writes_per_s": round(writes / m["wall_s"]) if writes else None}
            runs.append(dict(m, case="d", size=f"drain {ids}", system="borboleta", repeat=r))
            print(json.dumps(runs[-1]), flush=True)
    for r in range(args.runs):
        topic = f"bench_fresh_{stamp}_{r}"
        d = os.path.join(work, f"fresh_{r}")
        shutil.rmtree(d, ignore_errors=True)
        spec = subprocess.run([BENCH, "spec", "--dir", d, "--topic", topic, "--keyspace", "bench_fresh",
                               "--max-rows", "100000"], check=True, capture_output=True, text=True).stdout.strip()
        m = measure([BENCH, "freshness", "--borboleta", BORBOLETA, "--spec", spec, "--topic", topic,
                     "--rate", str(args.fresh_rate), "--seconds", str(args.fresh_seconds)],
                    os.path.join(logs, f"freshness_{r}.log"))
        runs.append(dict(m, case="d", size="freshness", system="borboleta", repeat=r))
        print(json.dumps(runs[-1]), flush=True)
    spec = specs.get(min(args.d_ids))
    if spec is None:
        return
    for batch in (1, 100):
        for r in range(args.runs):
            m = measure([BENCH, "lookup", "--spec", spec, "--ids", str(min(args.d_ids)), "--calls",
                         str(args.lookup_calls), "--batch", str(batch)], os.path.join(logs, f"lookup_{batch}_{r}.log"))
            runs.append(dict(m, case="e", size=f"lookup {batch}", system="borboleta", repeat=r))
            print(json.dumps(runs[-1]), flush=True)
    for r in range(args.runs):
        walls = []
        for i in range(20):
            m = measure([BORBOLETA, "online", "get", spec, "--key", f"id={i * 37}"], os.path.join(logs, "cli_get.log"))
            walls.append(m["wall_s"] * 1000)
        m["result"] = {"median_ms": round(statistics.median(walls), 2), "max_ms": round(max(walls), 2), "calls": 20}
        runs.append(dict(m, case="e", size="cli get", system="borboleta", repeat=r))
        print(json.dumps(runs[-1]), flush=True)


def case_stream(args, runs):
    work = os.path.join(WORK, "stream")
    os.makedirs(os.path.join(work, "logs"), exist_ok=True)
    data = os.path.join(DATA, "stream")
    for r in range(args.runs):
        if os.path.exists(BENCH):
            cmd = [BENCH, "stream", "--data", data, "--work", os.path.join(work, "borboleta"),
                   "--files", str(args.files), "--burst-files", str(args.burst_files)]
        else:  # stopgap: the release CLI driven through its /metrics endpoint
            cmd = [sys.executable, os.path.join(HERE, "stream_cli.py"), "--borboleta", BORBOLETA, "--data", data,
                   "--work", os.path.join(work, "borboleta"),
                   "--files", str(args.files), "--burst-files", str(args.burst_files)]
        m = measure(cmd, os.path.join(work, "logs", f"borboleta_{r}.log"))
        runs.append(dict(m, case="c", size="stream", system="borboleta", repeat=r))
        print(json.dumps({k: v for k, v in runs[-1].items() if k != "result"}
                         | {"median_file_latency_s": m["result"].get("median_file_latency_s"),
                            "burst_events_per_s": m["result"].get("burst_events_per_s")}), flush=True)
        if not args.no_butterfree:
            cmd = [VPY, "pipeline_stream.py", "--poll", "progress", "--workdir", os.path.join(work, "butterfree"),
                   "--files", str(args.files), "--burst-files", str(args.burst_files)]
            m = measure(cmd, os.path.join(work, "logs", f"butterfree_{r}.log"), cwd=BF)
            runs.append(dict(m, case="c", size="stream", system="butterfree", repeat=r))
            print(json.dumps({k: v for k, v in runs[-1].items() if k != "result"}
                             | {"median_file_latency_s": m["result"].get("median_file_latency_s"),
                                "burst_events_per_s": m["result"].get("burst_events_per_s")}), flush=True)


# ---------------------------------------------------------------- report

def stat(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def fmt(s, unit="", digits=2):
    if s is None:
        return "–"
    f = lambda v: f"{v:,.{digits}f}"  # noqa: E731
    return f"{f(s['median'])}{unit} ({f(s['min'])}–{f(s['max'])})"


def ratio(a, b, digits=3):
    if a is None or b is None or not b["median"]:
        return "–"
    return f"{a['median'] / b['median']:.{digits}f}×"


def summarize(runs):
    groups = {}
    for r in runs:
        groups.setdefault((r["case"], r["size"], r["system"]), []).append(r)
    out = []
    for (case, size, system), rs in groups.items():
        g = {"case": case, "size": size, "system": system, "runs": len(rs),
             "wall_s": stat([r["wall_s"] for r in rs]),
             "cpu_s": stat([r["cpu_s"] for r in rs]),
             "peak_rss_mib": stat([r["peak_rss_mib"] for r in rs])}
        if case == "c":
            for k in ("median_file_latency_s", "first_file_latency_s", "max_file_latency_s",
                      "burst_s", "burst_events_per_s"):
                g[k] = stat([r["result"].get(k) for r in rs])
            # the streaming process alone (Borboleta: without the driver when stream_cli.py runs it)
            g["own_cpu_s"] = stat([r["result"].get("borboleta_cpu_s", r["cpu_s"]) for r in rs])
            g["own_peak_rss_mib"] = stat([r["result"].get("borboleta_peak_rss_mib", r["peak_rss_mib"]) for r in rs])
        if case in ("d", "e"):
            keys = {k for r in rs for k, v in r["result"].items() if isinstance(v, (int, float))}
            for k in sorted(keys):
                g[k] = stat([r["result"].get(k) for r in rs])
        out.append(g)
    return out


def table(summary, comparisons):
    by = {(g["case"], g["size"], g["system"]): g for g in summary}
    lines = ["| case | system | wall s | CPU s | peak RSS MiB | wall ratio B/BF | CPU ratio | RSS ratio |",
             "|---|---|---|---|---|---|---|---|"]
    keys = sorted({(g["case"], g["size"]) for g in summary if g["case"] in ("a", "b", "c")},
                  key=lambda k: (k[0], str(k[1]).zfill(12)))
    for case, size in keys:
        b, s = by.get((case, size, "borboleta")), by.get((case, size, "butterfree"))
        label = (f"(a) rows {size:,}" if case == "a" else f"(b) aggregated {size:,}" if case == "b"
                 else "(c) stream, process")
        for name, g in (("Borboleta", b), ("Butterfree 1.8.0", s)):
            if g is None:
                continue
            r = (ratio(b["wall_s"], s["wall_s"]), ratio(b["cpu_s"], s["cpu_s"]),
                 ratio(b["peak_rss_mib"], s["peak_rss_mib"])) if (name == "Borboleta" and s) else ("", "", "")
            lines.append(f"| {label} | {name} | {fmt(g['wall_s'])} | {fmt(g['cpu_s'])} | "
                         f"{fmt(g['peak_rss_mib'], digits=0)} | {r[0]} | {r[1]} | {r[2]} |")
    b, s = by.get(("c", "stream", "borboleta")), by.get(("c", "stream", "butterfree"))
    if b or s:
        lines += ["", "| (c) streaming | system | median file latency ms | first file ms | burst s | burst events/s "
                  "| CPU s (pipeline process) | peak RSS MiB (pipeline process) |",
                  "|---|---|---|---|---|---|---|---|"]
        for name, g in (("Borboleta", b), ("Butterfree 1.8.0", s)):
            if g is None:
                continue
            ms = lambda x: x and {k: v * 1000 for k, v in x.items()}  # noqa: E731
            lines.append(f"| | {name} | {fmt(ms(g['median_file_latency_s']), digits=1)} | "
                         f"{fmt(ms(g['first_file_latency_s']), digits=0)} | {fmt(g['burst_s'], digits=3)} | "
                         f"{fmt(g['burst_events_per_s'], digits=0)} | {fmt(g['own_cpu_s'])} | "
                         f"{fmt(g['own_peak_rss_mib'], digits=0)} |")
        if b and s:
            lines.append(f"| | ratio B/BF | {ratio(b['median_file_latency_s'], s['median_file_latency_s'], 4)} | "
                         f"{ratio(b['first_file_latency_s'], s['first_file_latency_s'], 4)} | "
                         f"{ratio(b['burst_s'], s['burst_s'], 4)} | "
                         f"{ratio(b['burst_events_per_s'], s['burst_events_per_s'], 1)} | "
                         f"{ratio(b['own_cpu_s'], s['own_cpu_s'])} | {ratio(b['own_peak_rss_mib'], s['own_peak_rss_mib'])} |")
    for g in sorted((g for g in summary if g["case"] == "s"), key=lambda g: g["size"]):
        ms = {k: v * 1000 for k, v in g["wall_s"].items()}
        lines.append(f"\nStart-up `{g['size']}`: {fmt(ms, ' ms', 1)} process wall, {g['runs']} fresh processes")
    de = [g for g in summary if g["case"] in ("d", "e")]
    if de:
        lines += ["", "| (d)/(e) | figures: median (min–max) of the runs |", "|---|---|"]
        show = {"drain": ["events_per_cpu_s", "events_per_s", "cassandra_writes_per_s", "cassandra_writes"],
                "freshness": ["p50_ms", "p99_ms", "max_ms", "count", "achieved_rate_per_s"],
                "lookup": ["p50_ms", "p99_ms", "mean_ms", "max_ms", "connect_ms"],
                "cli get": ["median_ms", "max_ms"]}
        for g in sorted(de, key=lambda g: (g["case"], g["size"])):
            ks = next(v for k, v in show.items() if g["size"].startswith(k))
            figures = "; ".join(f"{k} {fmt(g.get(k), digits=1)}" for k in ks if g.get(k))
            lines.append(f"| ({g['case']}) {g['size']} | {figures}; process CPU s {fmt(g['cpu_s'])}, "
                         f"peak RSS MiB {fmt(g['peak_rss_mib'], digits=0)} |")
    for c in comparisons:
        if c:
            lines.append(f"\nSame answers ({c['case']}) {c['size']:,}: {'yes' if c['same'] else 'NO'}"
                         + f" (rows: Borboleta {c.get('borboleta', {}).get('rows')}, "
                           f"Butterfree {c.get('butterfree', {}).get('rows')})"
                         + "".join(f"\n  - {d}" for d in c["differences"])
                         + "".join(f"\n  note: {d}" for d in c.get("notes", [])))
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="(a) at 100k and 1M only")
    p.add_argument("--no-butterfree", action="store_true", help="Borboleta only")
    p.add_argument("--runs", type=int, default=3, help="fresh processes per system and case (default 3)")
    p.add_argument("--no-build", action="store_true", help="use the release binaries already built")
    p.add_argument("--cases", default="a,b,c,s,d,e",
                   help="comma list of cases (a, b, c, s = start-up, d, e; d and e run together)")
    p.add_argument("--sizes", help="comma list of (a)/(b) sizes (default 100000,1000000[,5000000])")
    p.add_argument("--agg-sizes", default="", help="comma list of extra (b) sizes for Borboleta alone")
    p.add_argument("--memory-limit-mb", type=int, help="Borboleta's --memory-limit-mb for (a)/(b)")
    p.add_argument("--smoke", action="store_true",
                   help="CI: every case at tiny sizes with the debug build, Butterfree skipped, 1 run, "
                        "results not saved (so the harness cannot rot)")
    p.add_argument("--files", type=int, default=20, help="(c) single files (default 20)")
    p.add_argument("--burst-files", type=int, default=10, help="(c) burst files of 100k events (default 10)")
    p.add_argument("--d-events", type=int, default=5_000_000, help="(d) events in each preloaded topic")
    p.add_argument("--d-ids", default="10000,1000000", help="(d) comma list of id counts (default 10000,1000000)")
    p.add_argument("--fresh-rate", type=int, default=10_000, help="(d) freshness: events per second")
    p.add_argument("--fresh-seconds", type=int, default=30, help="(d) freshness: seconds measured")
    p.add_argument("--lookup-calls", type=int, default=10_000, help="(e) calls per lookup run")
    args = p.parse_args()
    if args.smoke:
        global BORBOLETA, BENCH, VPY, DATA, WORK
        debug = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(CACHE, "target")), "debug")
        BORBOLETA, BENCH = os.path.join(debug, "borboleta"), os.path.join(debug, "borboleta-bench")
        VPY = smoke_venv()
        DATA, WORK = os.path.join(CACHE, "bench-smoke-data"), os.path.join(CACHE, "bench-smoke-work")
        args.no_butterfree, args.runs, args.files, args.burst_files = True, 1, 2, 1
        args.sizes, args.agg_sizes = "10000", ""
        args.d_events, args.d_ids, args.fresh_rate, args.fresh_seconds, args.lookup_calls = 20_000, "1000", 1000, 3, 200
    args.sizes = ([int(s) for s in args.sizes.split(",")] if args.sizes
                  else [100_000, 1_000_000] + ([] if args.quick else [5_000_000]))
    args.d_ids = [int(s) for s in str(args.d_ids).split(",") if s]
    cases = args.cases.split(",")
    if "a" not in cases and "b" not in cases:
        args.sizes = []
    args.agg_sizes = [int(s) for s in args.agg_sizes.split(",") if s] if "b" in cases else []

    _set_subreaper()
    os.environ["TZ"] = "UTC"
    started = datetime.datetime.now(datetime.timezone.utc)
    setup(args)
    runs, comparisons = [], []
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)

    def save():
        if args.smoke:
            return
        doc = {"started": started.isoformat(), "argv": sys.argv[1:], "machine": machine(),
               "summary": summarize(runs), "comparisons": comparisons, "runs": runs}
        for name in (f"{stamp}.json", "latest.json"):
            with open(os.path.join(HERE, "results", name), "w") as f:
                json.dump(doc, f, indent=1)

    if "c" in cases:
        case_stream(args, runs)
        save()
    if "s" in cases:
        case_startup(args, runs)
        save()
    if "d" in cases or "e" in cases:
        case_kafka(args, runs)
        save()
    for n in args.sizes:
        for case in ("a", "b"):
            if case in cases:
                comparisons.append(case_batch(case, n, args, runs))
                save()
    for n in args.agg_sizes:
        case_batch("b", n, args, runs, butterfree=False)
        save()
    save()
    print()
    print(table(summarize(runs), comparisons))
    print("\n--smoke: results not saved" if args.smoke else f"\nraw results: bench/results/{stamp}.json")
    if not args.smoke:
        charts()


def charts():
    """docs/img/bench-{a,b}.png from every results file (bench/charts.py, matplotlib in its own venv)."""
    venv = os.path.join(CACHE, "bench-charts-venv")
    py = os.path.join(venv, "bin", "python")
    if not os.path.exists(py):
        sh([sys.executable, "-m", "venv", venv])
        sh([py, "-m", "pip", "install", "-q", "matplotlib"])
    sh([py, os.path.join(HERE, "charts.py")])


def machine():
    info = {"cpus": os.cpu_count()}
    try:
        with open("/proc/meminfo") as f:
            info["mem_total_kib"] = int(f.readline().split()[1])
        info["kernel"] = os.uname().release
        info["rustc"] = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
        info["java"] = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()[0]
    except (OSError, IndexError, ValueError):
        pass
    return info


if __name__ == "__main__":
    main()

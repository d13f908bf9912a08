#!/usr/bin/env python3
"""Memory over a long streaming run (issue 6: "memory flat over a 10-minute run").

Runs `borboleta run <spec>` on a streaming file pipeline with checkpointing, the embedded online
store and the historical store (the production path; no debug table, whose memory grows with its
rows by design up to debug_max_rows), drops a file of --rows events every --every seconds for
--minutes, samples the process's RSS every 5 s, and prints the RSS of the first and last minutes.

    python3 bench/soak.py [--binary PATH] [--minutes 10] [--rows 5000] [--every 0.5]
"""

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

SPEC = """
readers:
  - id: events
    type: file
    path: in
    format: json
    stream: true
    schema: {id: bigint, ts: string, amount: double, category: string}
source:
  query: select * from events
feature_set:
  name: soak
  entity: user
  keys: [{name: id, dtype: bigint}]
  timestamp: {from_column: ts}
  features:
    - {name: amount_x2, dtype: double, transformation: {type: sql_expression, expression: amount * 2}}
    - {name: category, dtype: string}
writers:
  - {type: historical_feature_store}
  - {type: online_feature_store}
streaming:
  checkpoint_path: ckpt
"""


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def events(n, rng, t0):
    lines = []
    for _ in range(n):
        ts = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t0 + rng.randrange(90 * 86400)))
        lines.append(json.dumps({"id": rng.randrange(10000), "ts": ts,
                                 "amount": round(rng.lognormvariate(3, 1), 2),
                                 "category": f"cat_{rng.randrange(20):02d}"}))
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_bin = os.path.expanduser("~/.cache/borboleta/target-release/release/borboleta")
    p.add_argument("--binary", default=default_bin)
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--rows", type=int, default=5000)
    p.add_argument("--every", type=float, default=0.5)
    args = p.parse_args()

    work = tempfile.mkdtemp(prefix="borboleta-soak-")
    os.makedirs(os.path.join(work, "in"))
    os.makedirs(os.path.join(work, "staging"))
    with open(os.path.join(work, "spec.yaml"), "w") as f:
        f.write(SPEC)
    proc = subprocess.Popen([args.binary, "run", "spec.yaml", "--quiet"], cwd=work,
                            stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "stderr.log"), "w"))
    rng = random.Random(42)
    t0 = 1704067200
    start = time.time()
    samples = []  # (seconds, rss KiB)
    next_sample = start
    n = 0
    while time.time() - start < args.minutes * 60:
        name = f"f{n:06d}.jsonl"
        tmp = os.path.join(work, "staging", name)
        with open(tmp, "w") as f:
            f.write(events(args.rows, rng, t0))
        os.rename(tmp, os.path.join(work, "in", name))
        n += 1
        if time.time() >= next_sample:
            samples.append((time.time() - start, rss_kib(proc.pid)))
            next_sample += 5
        time.sleep(args.every)
        if proc.poll() is not None:
            raise SystemExit(f"the stream exited: {open(os.path.join(work, 'stderr.log')).read()[-2000:]}")
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    first = [r for s, r in samples if s < 60]
    last = [r for s, r in samples if s >= args.minutes * 60 - 60]
    result = {
        "binary": args.binary,
        "minutes": args.minutes,
        "files": n,
        "events": n * args.rows,
        "rss_mib_first_minute_median": round(statistics.median(first) / 1024, 1),
        "rss_mib_last_minute_median": round(statistics.median(last) / 1024, 1),
        "rss_mib_max": round(max(r for _, r in samples) / 1024, 1),
        "samples": [(round(s), r) for s, r in samples],
        "exit_code": proc.returncode,
    }
    print(json.dumps(result))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

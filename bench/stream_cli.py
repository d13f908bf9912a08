"""Case (c) through the release CLI, when `borboleta-bench` is not built: a stopgap driver.

    python3 bench/stream_cli.py --borboleta BIN --data DIR --work DIR [--files N --burst-files N]

Starts `borboleta run <stream spec> --quiet --metrics-addr 127.0.0.1:<port>` (the same spec
as `borboleta-bench stream`: JSON file reader with stream: true, the 3 non-window features,
online debug table, checkpoint on), then drops the files of DIR exactly as
`borboleta-bench stream` does and polls `borboleta_output_rows_total` on /metrics (HTTP on
loopback, about every 0.5 ms; the counter is updated right after an epoch's writers commit).
Stops the CLI with SIGINT. Prints one `RESULT {json}` line; `borboleta_cpu_s` and
`borboleta_peak_rss_mib` are the CLI process's own (wait4 rusage), without this driver;
they include its shutdown, where the CLI prints its debug tables (to /dev/null here): the
`*_before_stop` fields are the same figures just before SIGINT.
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

SPEC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "specs", "stream.yaml")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metrics(conn):
    conn.request("GET", "/metrics")
    body = conn.getresponse().read().decode()
    out = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def load(data, prefix, limit):
    names = sorted(n for n in os.listdir(data) if n.startswith(prefix) and n.endswith(".json"))[:limit]
    files = []
    for n in names:
        with open(os.path.join(data, n), "rb") as f:
            b = f.read()
        files.append((n, b, b.count(b"\n")))
    return files


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--borboleta", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--files", type=int, default=20)
    p.add_argument("--burst-files", type=int, default=10)
    p.add_argument("--timeout", type=float, default=600)
    args = p.parse_args()

    single, burst = load(args.data, "single-", args.files), load(args.data, "burst-", args.burst_files)
    shutil.rmtree(args.work, ignore_errors=True)
    inp, staging, ckpt = (os.path.join(args.work, d) for d in ("input", "staging", "checkpoint"))
    for d in (inp, staging, ckpt):
        os.makedirs(d)
    spec = os.path.join(args.work, "stream.yaml")
    with open(spec, "w") as f:
        f.write(open(SPEC).read().replace("@INPUT@", inp).replace("@CHECKPOINT@", ckpt))
    port = free_port()
    t = time.perf_counter()
    proc = subprocess.Popen([args.borboleta, "run", spec, "--quiet", "--metrics-addr", f"127.0.0.1:{port}"],
                            env=dict(os.environ, TZ="UTC"), stdout=subprocess.DEVNULL)
    conn = None
    while conn is None:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            metrics(c)
            conn = c
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"borboleta exited with {proc.returncode}")
            time.sleep(0.002)
    start_s = time.perf_counter() - t

    def wait_rows(expected):
        deadline = time.perf_counter() + args.timeout
        while True:
            n = metrics(conn).get("borboleta_output_rows_total", 0)
            if n >= expected:
                return
            if time.perf_counter() > deadline or proc.poll() is not None:
                raise SystemExit(f"{n} of {expected} rows (borboleta rc {proc.poll()})")
            time.sleep(0.0005)

    def drop(name, b):
        tmp = os.path.join(staging, name)
        with open(tmp, "wb") as f:
            f.write(b)
        os.rename(tmp, os.path.join(inp, name))

    expected, latencies = 0, []
    for name, b, lines in single:
        expected += lines
        t = time.perf_counter()
        drop(name, b)
        wait_rows(expected)
        latencies.append(time.perf_counter() - t)
    burst_events = sum(x[2] for x in burst)
    t = time.perf_counter()
    for name, b, _ in burst:
        drop(name, b)
    expected += burst_events
    wait_rows(expected)
    burst_s = time.perf_counter() - t
    m = metrics(conn)
    with open(f"/proc/{proc.pid}/status") as f:
        hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    with open(f"/proc/{proc.pid}/stat") as f:
        ticks = f.read().rsplit(")", 1)[1].split()
    cpu_before_stop = (int(ticks[11]) + int(ticks[12])) / os.sysconf("SC_CLK_TCK")
    proc.send_signal(signal.SIGINT)
    _, status, ru = os.wait4(proc.pid, 0)
    rest = latencies[1:] or latencies
    print("RESULT " + json.dumps({
        "pipeline": "stream", "system": "borboleta", "driver": "bench/stream_cli.py (CLI + /metrics)",
        "files": len(single), "rows_per_file": single[0][2], "burst_files": len(burst),
        "burst_events": burst_events, "start_s": round(start_s, 4),
        "latencies_s": [round(x, 6) for x in latencies],
        "first_file_latency_s": round(latencies[0], 6),
        "median_file_latency_s": round(statistics.median(rest), 6),
        "min_file_latency_s": round(min(rest), 6), "max_file_latency_s": round(max(rest), 6),
        "burst_s": round(burst_s, 4), "burst_events_per_s": round(burst_events / burst_s),
        "output_rows": m.get("borboleta_output_rows_total"), "epochs": m.get("borboleta_epochs_total"),
        "expected_rows": expected, "exit_code": os.waitstatus_to_exitcode(status),
        "borboleta_cpu_s": round(ru.ru_utime + ru.ru_stime, 3),
        "borboleta_cpu_s_before_stop": round(cpu_before_stop, 2),
        "borboleta_vmhwm_mib_before_stop": round(hwm / 1024, 1),
        "borboleta_peak_rss_mib": round(max(hwm, ru.ru_maxrss) / 1024, 1),
    }), flush=True)


if __name__ == "__main__":
    main()

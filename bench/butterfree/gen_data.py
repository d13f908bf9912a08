"""The benchmark's synthetic events, shared by both systems: the batch table and the stream lines.

    python gen_data.py --rows 1000000 --out DIR [--seed 42]

Writes DIR/part-NNNNN.parquet, at most 1M rows per file, part p drawn from the seed
[seed, p]. Columns:

- id: int64, 10,000 distinct entities (0..9999);
- ts: timestamp[us, UTC], whole seconds, uniform over the 90 days from 2024-01-01;
- amount: float64, log-normal(3, 1) rounded to cents, about 1% null;
- category: string, 20 values cat_00..cat_19.

The output depends only on --rows and --seed (and on numpy's PCG64 generator and pyarrow's
parquet writer): `bench/run.py` generates each size once into BENCH_CACHE/bench-data and both
systems read the same files, so their answers can be compared row for row.

`json_lines(n, seed)` renders `make_events(n, [seed])` as JSON lines, one event a line
(`{"id":..,"ts":"YYYY-MM-DDTHH:MM:SS.000Z","amount":..|null,"category":".."}`): the files of
the streaming case (c). `pipeline_stream.py` (Butterfree) builds its files with it and
`bench/gen_stream.py` writes the same lines for Borboleta, so both stream identical bytes.

Needs numpy and pyarrow only (the smoke venv of `bench/run.py --smoke` has just those).
"""

import argparse
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

START = np.datetime64("2024-01-01T00:00:00", "s")
DAYS = 90
N_IDS = 10_000
CATEGORIES = np.array([f"cat_{i:02d}" for i in range(20)])
NULL_FRACTION = 0.01
ROWS_PER_FILE = 1_000_000


def make_events(n, seed):
    """n events as a pyarrow table, drawn from numpy's default generator seeded with `seed`
    (an int or a list of ints). The draws are made column by column in this order: ids,
    seconds since START, amounts, the null mask, categories."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, N_IDS, n, dtype=np.int64)
    ts = START + rng.integers(0, DAYS * 86400, n)
    amount = np.round(rng.lognormal(3.0, 1.0, n), 2)
    nulls = rng.random(n) < NULL_FRACTION
    category = CATEGORIES[rng.integers(0, len(CATEGORIES), n)]
    return pa.table({
        "id": pa.array(ids, pa.int64()),
        "ts": pa.array(ts.astype("datetime64[us]"), pa.timestamp("us", tz="UTC")),
        "amount": pa.array(amount, pa.float64(), mask=nulls),
        "category": pa.array(category, pa.string()),
    })


def json_lines(n, seed):
    """`make_events(n, [seed])` as one string of JSON lines (the stream files of case (c)).
    Doubles are written with Python's shortest round-trip repr, timestamps with milliseconds."""
    t = make_events(n, seed=[seed]).to_pydict()
    lines = []
    for i, ts, amount, category in zip(t["id"], t["ts"], t["amount"], t["category"]):
        amount = "null" if amount is None else repr(amount)
        stamp = ts.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        lines.append(f'{{"id":{i},"ts":"{stamp}","amount":{amount},"category":"{category}"}}\n')
    return "".join(lines)


def write_events(rows, out, seed=42):
    """The parquet folder of `rows` events: part p holds rows [p * 1M, (p + 1) * 1M)."""
    os.makedirs(out, exist_ok=True)
    for part, start in enumerate(range(0, rows, ROWS_PER_FILE)):
        n = min(ROWS_PER_FILE, rows - start)
        pq.write_table(make_events(n, seed=[seed, part]), os.path.join(out, f"part-{part:05d}.parquet"))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, required=True, help="number of events")
    p.add_argument("--out", required=True, help="folder to create (parquet part files)")
    p.add_argument("--seed", type=int, default=42, help="base seed (default 42, as the benchmarks use)")
    args = p.parse_args()
    write_events(args.rows, args.out, args.seed)
    print(f"wrote {args.rows} rows to {args.out}")


if __name__ == "__main__":
    main()

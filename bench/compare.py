"""Compare Borboleta's outputs with Butterfree's from the same run (cases a and b).

    <venv>/bin/python bench/compare.py BORBOLETA_DIR BUTTERFREE_DIR
    <venv>/bin/python bench/compare.py --online BORBOLETA_SQLITE TABLE FIXTURE_DIR NAME [BORBOLETA_HIST]

The second form compares the online outputs: Borboleta's embedded online store (SQLite, one
JSON row per key) with the fixture Butterfree's script writes with `--expected FIXTURE_DIR`
(`NAME_meta.json`: the online view's row count, per-column non-null counts, sums, min and max;
`NAME_online.jsonl`: its first 20 rows by id), with the same tolerance. Keys with several rows at
their latest timestamp may publish any of them (Butterfree picks one arbitrarily, Borboleta by a
stable hash): given Borboleta's historical table, a difference that some choice among those rows
removes is reported as a note, not a difference.

Each DIR is a historical table root (`.../historical/user/<feature set>`, hive partitions
year=/month=/day=). Prints one JSON object: per side the row count and, per column, non-null
count, sum (numbers), min and max, and the first 20 rows by (id, timestamp); and the
differences (floating sums, mins, maxes and first-row doubles with relative tolerance 1e-9: a
window sum of doubles depends on the order of the additions).
Timestamps are compared as UTC microseconds (Butterfree writes INT96).
"""

import json
import math
import os
import sys

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

REL_TOL = 1e-9


def load(path):
    table = ds.dataset(path, format="parquet", partitioning="hive",
                       ignore_prefixes=[".", "_"]).to_table()
    cols, stamps = {}, set()
    for name in table.column_names:
        col = table.column(name).combine_chunks() if table.num_rows else table.column(name)
        if pa.types.is_timestamp(col.type):
            col = pc.cast(pc.cast(col, pa.timestamp("us", tz="UTC")), pa.int64())
            stamps.add(name)
        elif pa.types.is_dictionary(col.type):
            col = pc.cast(col, col.type.value_type)
        if pa.types.is_integer(col.type) and name in ("year", "month", "day"):
            col = pc.cast(col, pa.int64())
        cols[name] = col
    return table.num_rows, cols, stamps


def summary(path):
    rows, cols, stamps = load(path)
    out = {"rows": rows, "columns": {}}
    for name, col in cols.items():
        s = {"type": str(col.type), "non_null": rows - col.null_count}
        if name in stamps:
            s["type"] = "timestamp (UTC microseconds)"
        elif pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
            s["sum"] = pc.sum(col).as_py()
        if rows - col.null_count:
            mm = pc.min_max(col)
            s["min"], s["max"] = mm["min"].as_py(), mm["max"].as_py()
        out["columns"][name] = s
    return out


def first_rows(path, n=20):
    """The first n rows by (id, timestamp, then every other column), as lists."""
    rows, cols, _ = load(path)
    table = pa.table(cols)
    names = ["id", "timestamp"] + [c for c in table.column_names if c not in ("id", "timestamp")]
    table = table.select(names).sort_by([(c, "ascending") for c in names]).slice(0, n)
    return names, [list(r.values()) for r in table.to_pylist()]


def rows_equal(ra, rb):
    for x, y in zip(ra, rb):
        if isinstance(x, float) and isinstance(y, float):
            if not math.isclose(x, y, rel_tol=REL_TOL):
                return False
        elif x != y:
            return False
    return len(ra) == len(rb)


def same(a, b, key):
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        # floating values computed from sums (window sums, averages) depend on the order the
        # values were added in: sums, mins and maxes of such columns match within REL_TOL
        return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=0.0)
    return a == b


def online_table(sqlite_path, table):
    """Borboleta's online rows (the `row` JSON of each key) as a pyarrow table."""
    import sqlite3

    with sqlite3.connect(sqlite_path) as c:
        rows = [json.loads(r) for (r,) in c.execute(f'SELECT row FROM "{table}"')]
    names = list(dict.fromkeys(k for r in rows for k in r))
    return rows, names


def spark_summary(rows, names, types):
    """The fixture's summary (common.py's `summary`) of rows given as dicts: Spark's keys and
    formats (timestamps as ISO text with microseconds, sums of doubles and bigints)."""
    out = {"rows": len(rows)}
    for name in names:
        values = [r.get(name) for r in rows]
        present = [v for v in values if v is not None]
        out[f"{name}.non_null"] = len(present)
        dtype = types.get(name)
        if dtype == "timestamp":
            present = [iso_micros(v) for v in present]
        if dtype in ("double", "bigint", "int"):
            out[f"{name}.sum"] = math.fsum(present) if dtype == "double" else sum(present)
        if dtype in ("timestamp", "string", "double", "bigint", "int") and present:
            out[f"{name}.min"], out[f"{name}.max"] = min(present), max(present)
    return out


def iso_micros(text):
    """`2024-03-30T23:27:10Z` (or with a fraction) as `2024-03-30T23:27:10.000000Z`."""
    import datetime

    t = datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def latest_ties(hist_path, names):
    """id -> every row (as online JSON would hold it) at that id's latest timestamp, for the ids
    with more than one: the rows either system may publish online (docs/butterfree-differences.md:
    Butterfree picks any, Borboleta by a stable hash)."""
    _, cols, stamps = load(hist_path)
    table = pa.table({n: cols[n] for n in names if n in cols})
    latest = table.group_by("id").aggregate([("timestamp", "max")])
    at_latest = table.join(latest, "id").filter(pc.equal(pc.field("timestamp"), pc.field("timestamp_max")))
    counts = at_latest.group_by("id").aggregate([("timestamp", "count")])
    tied = set(counts.filter(pc.greater(pc.field("timestamp_count"), 1))["id"].to_pylist())
    out = {}
    for row in at_latest.drop_columns(["timestamp_max"]).to_pylist():
        if row["id"] in tied:
            row["timestamp"] = micros_iso(row["timestamp"])
            out.setdefault(row["id"], []).append(row)
    return out


def micros_iso(us):
    import datetime

    t = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(microseconds=us)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def online_differences(rows, types, meta, expected):
    a, b = spark_summary(rows, list(types), types), meta["online_summary"]
    diffs = []
    for key in sorted(set(a) | set(b)):
        if not same(a.get(key), b.get(key), key):
            diffs.append(f"online {key}: borboleta {a.get(key)!r} vs butterfree {b.get(key)!r}")
    got = sorted(rows, key=lambda r: r["id"])[: len(expected)]
    for i, (ra, rb) in enumerate(zip(got, expected)):
        ra = {k: iso_micros(v) if types.get(k) == "timestamp" and v is not None else v for k, v in ra.items()}
        cols = list(types)
        if not rows_equal([ra.get(c) for c in cols], [rb.get(c) for c in cols]):
            diffs.append(f"online first rows by id, row {i}: borboleta {ra} vs butterfree {rb}")
            break
    return a, diffs


def online_main(sqlite_path, table, fixture, name, hist_path=None):
    import itertools

    with open(os.path.join(fixture, f"{name}_meta.json")) as f:
        meta = json.load(f)
    types = dict(c.split(" ", 1) for c in meta["online_schema"])
    rows, names = online_table(sqlite_path, table)
    with open(os.path.join(fixture, f"{name}_online.jsonl")) as f:
        expected = [json.loads(line) for line in f]
    a, diffs = online_differences(rows, types, meta, expected)
    notes = []
    if names and sorted(names) != sorted(types):
        diffs.append(f"columns: borboleta {names} vs butterfree {list(types)}")
    elif diffs and hist_path:
        # keys with several rows at their latest timestamp: is there a choice of those rows that
        # gives Butterfree's online output exactly?
        ties = latest_ties(hist_path, list(types))
        if ties and len(list(itertools.islice(itertools.product(*ties.values()), 4097))) <= 4096:
            index = {r["id"]: i for i, r in enumerate(rows)}
            for choice in itertools.product(*ties.values()):
                alt = list(rows)
                for r in choice:
                    alt[index[r["id"]]] = r
                if not online_differences(alt, types, meta, expected)[1]:
                    notes.append(
                        f"online: {len(ties)} keys have several rows at their latest timestamp "
                        f"(ids {sorted(ties)}); Butterfree published other rows of those ties than "
                        "Borboleta's stable-hash rule, and with its choices the outputs are the same "
                        "(docs/butterfree-differences.md: ties on timestamp)"
                    )
                    diffs = []
                    break
    print(json.dumps({"same": not diffs, "differences": diffs, "notes": notes, "borboleta": a,
                      "butterfree": meta["online_summary"]}))


def main():
    if sys.argv[1] == "--online":
        return online_main(*sys.argv[2:7])
    a, b = summary(sys.argv[1]), summary(sys.argv[2])
    diffs = []
    if a["rows"] != b["rows"]:
        diffs.append(f"rows: borboleta {a['rows']} vs butterfree {b['rows']}")
    for name in sorted(set(a["columns"]) | set(b["columns"])):
        ca, cb = a["columns"].get(name), b["columns"].get(name)
        if ca is None or cb is None:
            diffs.append(f"column {name}: only in {'butterfree' if ca is None else 'borboleta'}")
            continue
        for key in ("non_null", "sum", "min", "max"):
            if key in ca or key in cb:
                va, vb = ca.get(key), cb.get(key)
                if not same(va, vb, key):
                    diffs.append(f"{name}.{key}: borboleta {va!r} vs butterfree {vb!r}")
    na, fa = first_rows(sys.argv[1])
    nb, fb = first_rows(sys.argv[2])
    if na != nb:
        diffs.append(f"column order: borboleta {na} vs butterfree {nb}")
    else:
        for i, (ra, rb) in enumerate(zip(fa, fb)):
            if not rows_equal(ra, rb):
                diffs.append(f"first rows by (id, timestamp), row {i}: borboleta {ra} vs butterfree {rb}")
                break
    print(json.dumps({"same": not diffs, "differences": diffs, "borboleta": a, "butterfree": b}))


if __name__ == "__main__":
    main()

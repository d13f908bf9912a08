"""Charts of docs/benchmarks.md: time and memory against input size, both systems.

    <venv with matplotlib>/bin/python bench/charts.py [--results bench/results] [--out docs/img]

bench/run.py calls it after a full run (in its own venv, BENCH_CACHE/bench-charts-venv, made on
first use). For each case (a) and (b), every (size, system) takes its figures from the newest
results file that has it (runs at different sizes are made at different times: the files are
named by their UTC start). Writes bench-a.png and bench-b.png: process wall time (left) and peak
RSS of the process tree (right) against rows, log-log, medians with min-max bars.
"""

import argparse
import glob
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TITLES = {"a": "(a) row-level pipeline (pipeline_rows.py)", "b": "(b) aggregated 1/7/30-day windows (pipeline_agg.py)"}
NAMES = {"borboleta": "Borboleta", "butterfree": "Butterfree 1.8.0"}


def newest_summaries(results_dir):
    """(case, size, system) -> (summary group, results file), the newest file winning."""
    out = {}
    for path in sorted(glob.glob(os.path.join(results_dir, "2*.json"))):
        with open(path) as f:
            doc = json.load(f)
        for g in doc.get("summary", []):
            if g["case"] in TITLES and isinstance(g["size"], int):
                out[(g["case"], g["size"], g["system"])] = (g, os.path.basename(path))
    return out


def chart(case, groups, out_dir):
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, metric, label in ((axes[0], "wall_s", "process wall time (s)"),
                              (axes[1], "peak_rss_mib", "peak RSS of the process tree (MiB)")):
        for system, style in (("borboleta", "o-"), ("butterfree", "s--")):
            pts = sorted((size, g[metric]) for (c, size, s), (g, _) in groups.items()
                         if c == case and s == system and g.get(metric))
            if not pts:
                continue
            xs = [p[0] for p in pts]
            med = [p[1]["median"] for p in pts]
            err = [[m - p[1]["min"] for m, p in zip(med, pts)], [p[1]["max"] - m for m, p in zip(med, pts)]]
            ax.errorbar(xs, med, yerr=err, fmt=style, capsize=3, label=NAMES[system])
            for x, y in zip(xs, med):
                ax.annotate(f"{y:,.1f}" if y < 100 else f"{y:,.0f}", (x, y), textcoords="offset points",
                            xytext=(4, 4), fontsize=8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("input rows")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    files = sorted({f for (c, _, _), (_, f) in groups.items() if c == case})
    fig.suptitle(f"{TITLES[case]} — medians, min–max bars; from {', '.join(files)}", fontsize=9)
    fig.tight_layout()
    path = os.path.join(out_dir, f"bench-{case}.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default=os.path.join(HERE, "results"))
    p.add_argument("--out", default=os.path.join(os.path.dirname(HERE), "docs", "img"))
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    groups = newest_summaries(args.results)
    for case in TITLES:
        if any(c == case for c, _, _ in groups):
            print(chart(case, groups, args.out))


if __name__ == "__main__":
    main()

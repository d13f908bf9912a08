"""Write the JSON-lines files of case (c): the exact lines pipeline_stream.py drops.

    <venv>/bin/python bench/gen_stream.py --out DIR [--files 20 --rows-per-file 5000 --burst-files 10 --burst-rows 100000]

Uses `json_lines` of bench/butterfree/gen_data.py, the function Butterfree's
bench/butterfree/pipeline_stream.py renders its files with, and the same seeds (single file
i -> i, burst file i -> 1000 + i), so both systems stream identical bytes. Needs numpy and
pyarrow only.
Writes DIR/single-NNNN.json, DIR/burst-NNNN.json and DIR/manifest.json.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "butterfree"))
from gen_data import json_lines  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--files", type=int, default=20)
    p.add_argument("--rows-per-file", type=int, default=5000)
    p.add_argument("--burst-files", type=int, default=10)
    p.add_argument("--burst-rows", type=int, default=100_000)
    args = p.parse_args()
    manifest = vars(args).copy()
    path = os.path.join(args.out, "manifest.json")
    if os.path.exists(path):
        with open(path) as f:
            if json.load(f) == manifest:
                print(f"stream data already in {args.out}")
                return
    os.makedirs(args.out, exist_ok=True)
    for i in range(args.files):
        with open(os.path.join(args.out, f"single-{i:04d}.json"), "w") as f:
            f.write(json_lines(args.rows_per_file, seed=i))
    for i in range(args.burst_files):
        with open(os.path.join(args.out, f"burst-{i:04d}.json"), "w") as f:
            f.write(json_lines(args.burst_rows, seed=1000 + i))
    with open(path, "w") as f:
        json.dump(manifest, f)
    print(f"wrote stream data to {args.out}")


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# Creates the virtualenv the Butterfree side of the benchmarks runs in: Butterfree 1.8.0 with
# PySpark 3.5.1 (Spark's jars come inside the pyspark wheel: nothing is fetched from Maven).
#
#   bench/butterfree/setup.sh VENV_DIR      # bench/run.py uses BENCH_CACHE/bench-venv
#
# Needs python3 (>= 3.9, with venv and pip) and, to run the pipelines, Java 17 on PATH.
# Everything comes from PyPI. Does nothing when VENV_DIR already imports the pinned versions.
#
# The pins:
# - butterfree[h3]==1.8.0: butterfree imports h3 unconditionally, so the extra is needed; it
#   pins pyspark 3.5.1 and numpy 1.26.4.
# - pyarrow==17.0.0: the newest pyarrow that still accepts numpy 1.26 (the benchmark's data
#   generator and bench/compare.py use pyarrow).
# - cassandra-driver==3.24.0 (pinned by butterfree) is an sdist whose setup.py needs
#   pkg_resources, which recent setuptools no longer ship: it is built first, with
#   setuptools<70 and without build isolation, so butterfree's install finds it satisfied.
set -euo pipefail
venv=${1:?usage: setup.sh VENV_DIR}
python=${PYTHON:-python3}

check='import butterfree, h3, pyarrow, pyspark
assert butterfree.__version__ == "1.8.0", butterfree.__version__
assert pyspark.__version__ == "3.5.1", pyspark.__version__
assert pyarrow.__version__ == "17.0.0", pyarrow.__version__'
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$check" 2>/dev/null; then
  echo "butterfree 1.8.0 already installed in $venv"
  exit 0
fi

command -v java >/dev/null || echo "warning: no java on PATH; the Butterfree pipelines need Java 17" >&2
"$python" -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q "setuptools<70" wheel
"$venv/bin/pip" install -q --no-build-isolation "cassandra-driver==3.24.0"
"$venv/bin/pip" install -q "butterfree[h3]==1.8.0" "pyarrow==17.0.0"
"$venv/bin/python" -c "$check"
"$venv/bin/python" -c 'import butterfree, pyspark, pyarrow; print("butterfree", butterfree.__version__, "pyspark", pyspark.__version__, "pyarrow", pyarrow.__version__)'

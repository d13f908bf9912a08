#!/usr/bin/env bash
# `make example-stream`: the streaming example (examples/stream) end to end, with no services.
#
#  1. Live: `borboleta run pipeline.yaml --debug --no-checkpoint --sql "$(cat live.sql)"` runs in
#     the background over the two seed files in incoming/. The files in arrivals/ then arrive one
#     by one, and the debug table is shown after each epoch. SIGTERM stops the stream (exit 0).
#     --debug turns every writer into an in-memory table: nothing is written.
#  2. For real: the same spec without --debug, over the same files, writing the historical store,
#     the online store and the checkpoint. SIGTERM stops it and commits the open commit interval
#     (exit 0). Then `checkpoint show`, the Parquet files, `online get`, and a restart that reads
#     nothing again.
#
# Everything is written under a temporary folder, removed on exit (EXAMPLE_WORKDIR=<folder> uses
# and keeps that folder instead). BORBOLETA=<binary> runs that binary instead of `cargo run`.
# Only the processes this script starts are stopped, by their pid.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

if [[ -n ${BORBOLETA:-} ]]; then
  cli=("$BORBOLETA")
else
  cargo build --locked --manifest-path "$repo/Cargo.toml" -p borboleta-cli
  # `cargo run` replaces itself with the binary (exec), so `$!` below is borboleta's own pid.
  cli=(cargo run --quiet --locked --manifest-path "$repo/Cargo.toml" -p borboleta-cli --)
fi

if [[ -n ${EXAMPLE_WORKDIR:-} ]]; then
  work=$EXAMPLE_WORKDIR
  keep=1
  mkdir -p "$work"
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/borboleta-example-stream.XXXXXX")
  keep=0
fi

pid= # the running stream, started by this script
cleanup() {
  local rc=$?
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  if ((!keep)); then
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say() { printf '\n==> %s\n' "$*"; }

# A copy of the example (the spec and the seed files) in its own folder under $work.
fresh_copy() {
  mkdir -p "$1"
  cp "$here/pipeline.yaml" "$1/"
  cp -R "$here/incoming" "$1/incoming"
}

# Puts a file into the stream's folder the way a producer should: a hidden name, then a rename.
arrive() { # arrive <example folder> <file>
  local name
  name=$(basename "$2")
  cp "$2" "$1/incoming/.$name.tmp"
  mv "$1/incoming/.$name.tmp" "$1/incoming/$name"
}

# Waits up to 60 s for `$@` to succeed, while the stream runs.
wait_until() { # wait_until <what> <command...>
  local what=$1
  shift
  for _ in $(seq 600); do
    if "$@"; then
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "error: the stream exited while waiting for $what" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "error: timed out waiting for $what" >&2
  return 1
}

# Stops the stream with SIGTERM (the epoch in progress finishes, everything written is
# committed) and checks that it exits 0.
stop() {
  kill -TERM "$pid"
  local rc=0
  wait "$pid" || rc=$?
  pid=
  if ((rc != 0)); then
    echo "error: the stream exited with $rc after SIGTERM, not 0" >&2
    return 1
  fi
  echo "exit code: 0"
}

arrivals=("$here"/arrivals/*.jsonl)
sql=$(<"$here/live.sql")

# --- 1. live ------------------------------------------------------------------------------------
live=$work/live
fresh_copy "$live"
# The CLI prints `-- epoch N --` and the --sql result each time an epoch has been written.
section() { awk -v m="-- epoch $2 --" '$0 == m { on = 1; next } /^-- epoch / { on = 0 } on' "$1"; }
printed() { [[ $(section "$live/live.out" "$1" | grep -c '^+') -ge 3 ]]; } # the table is whole
show() {
  wait_until "epoch $1 in the debug table" printed "$1"
  echo "-- epoch $1 --"
  section "$live/live.out" "$1"
}

say "1. Live: the stream over incoming/ (2 seed files), every writer a debug table"
echo "borboleta run pipeline.yaml --debug --no-checkpoint --sql \"$sql\" --sql-interval 0.2"
"${cli[@]}" run "$live/pipeline.yaml" --debug --no-checkpoint --sql "$sql" --sql-interval 0.2 \
  >"$live/live.out" 2>"$live/live.err" &
pid=$!
show 0
n=0
for f in "${arrivals[@]}"; do
  n=$((n + 1))
  sleep 1
  say "$(basename "$f") arrives ($(wc -l <"$f" | tr -d ' ') events)"
  arrive "$live" "$f"
  show "$n"
done
say "SIGTERM: the stream finishes its epoch and stops"
stop
cat "$live/live.err"

# --- 2. for real --------------------------------------------------------------------------------
durable=$work/durable
fresh_copy "$durable"
log=$durable/stream.log
committed() { grep -q "epoch committed epoch=$1 " "$log"; } # the epoch is written (info log)

say "2. For real: the same spec and files, writing the historical and online stores"
echo "borboleta run pipeline.yaml"
NO_COLOR=1 BORBOLETA_LOG=info "${cli[@]}" run "$durable/pipeline.yaml" >/dev/null 2>"$log" &
pid=$!
wait_until "epoch 0" committed 0
echo "epoch 0: the 2 seed files"
n=0
for f in "${arrivals[@]}"; do
  n=$((n + 1))
  arrive "$durable" "$f"
  wait_until "epoch $n" committed "$n"
  echo "epoch $n: $(basename "$f")"
done
say "SIGTERM: the open commit interval (epochs 0-$n) is moved into place and committed"
stop
grep -v -e ' INFO ' -e ' WARN ' "$log" || true

say "borboleta checkpoint show pipeline.yaml"
"${cli[@]}" checkpoint show "$durable/pipeline.yaml"

say "The historical store: one Parquet file per day for the whole commit interval"
(cd "$durable" && find feature_store/historical -name '*.parquet' | sort)

say "borboleta online get pipeline.yaml --key id=2 --key id=4"
echo "(events-005 brought a late event for user 2, at 08:00: the store keeps the newer 11:00 row)"
"${cli[@]}" online get "$durable/pipeline.yaml" --key id=2 --key id=4

say "A restart with --available-now: every file is in the checkpoint, nothing is read again"
"${cli[@]}" run "$durable/pipeline.yaml" --available-now

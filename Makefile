# Targets mirror CI (.ci/run). Cargo's target dir defaults to ~/.cache/borboleta/target.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/borboleta/target

.PHONY: check test example example-stream services-up services-down fmt golden bench bench-smoke

## fmt, module structure (scripts/check-modules) and clippy (warnings are errors), as CI runs them
check:
	cargo fmt --all --check
	scripts/check-modules
	cargo clippy --workspace --all-targets --locked -- -D warnings

## every test: unit tests, golden cases (3 time zones), end-to-end CLI runs
test:
	scripts/services up kafka cassandra s3
	cargo test --workspace --locked

## run the README example on embedded defaults (no services)
example:
	cargo run --locked -p borboleta-cli -- run examples/events/pipeline.yaml
	cargo run --locked -p borboleta-cli -- online get examples/events/pipeline.yaml --key id=3

## run the streaming example (examples/stream/run.sh): files arrive, the live debug table grows,
## SIGTERM stops it (exit 0); then a real run, its checkpoint and online store (no services)
example-stream:
	examples/stream/run.sh

## rewrite tests/golden/*/expected*.txt (review the diff against the Butterfree semantics)
golden:
	UPDATE_GOLDEN=1 cargo test --locked -p borboleta-cli --test it golden

fmt:
	cargo fmt --all

## Borboleta vs Butterfree 1.8.0 side by side (release build, docs/benchmarks.md); Butterfree's
## side is bench/butterfree/, its venv made from PyPI into ~/.cache/borboleta/bench-venv;
## BENCH_ARGS=--quick for a few minutes, --no-butterfree, --runs N, --cases a,b --sizes 100000
bench:
	python3 bench/run.py $(BENCH_ARGS)

## the harness at tiny sizes with the debug build, no Butterfree (what CI runs)
bench-smoke:
	python3 bench/run.py --smoke

## real Kafka (127.0.0.1:9092) and Cassandra (127.0.0.1:9042) from Maven Central jars
services-up:
	scripts/services up

services-down:
	scripts/services down

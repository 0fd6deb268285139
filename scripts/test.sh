#!/usr/bin/env bash
# The test command (README): installs what is missing, then runs every test of the workspace
# optimised, with overflow checks (the `release-checked` profile of Cargo.toml: the concurrency
# tests need real speed), and the loom model checks, and checks that the fuzz targets (outside
# the workspace; run by scripts/fuzz.sh on nightly) still compile.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo test --workspace --profile release-checked
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p shared --release --no-default-features --test loom
cargo check --manifest-path fuzz/Cargo.toml --bins

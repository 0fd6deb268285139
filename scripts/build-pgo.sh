#!/usr/bin/env bash
# Builds the gateway with profile-guided optimisation (rustc's -Cprofile-generate/-Cprofile-use,
# LLVM's instrumentation PGO): an instrumented gateway first forwards the benchmark's IMIX traffic
# (scripts/bench-gateway.sh: both suites, both directions, one SA and 64 SAs, one core, a few
# seconds a cell), its counts are merged with llvm-profdata (rustup's llvm-tools component, which
# matches rustc's LLVM; installed here if missing) and the gateway is built again with them. The
# compiler then lays out the packet path for the branches real traffic takes; BENCHMARKS.md,
# "Thirteenth session", has what it gains. The same code as `cargo build --release`: only the
# layout and inlining change. The build is then checked end to end: gateway_e2e (ping, TCP, tshark
# decrypting the link) runs against the very binary built here.
#
# Usage: scripts/build-pgo.sh   prints the gateway's path (target/pgo/release/gateway; with
#        CARGO_TARGET_DIR set, under it). Env: CHECK=0 skips the end-to-end check.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=$(realpath -m "${CARGO_TARGET_DIR:-target}")
PROFILES=$TARGET/pgo-profiles
PROFDATA=$PROFILES/gateway.profdata
CHECK=${CHECK:-1}

HOST=$(rustc -vV | sed -n 's/^host: //p')
LLVM_PROFDATA=$(rustc --print sysroot)/lib/rustlib/$HOST/bin/llvm-profdata
if [ ! -x "$LLVM_PROFDATA" ]; then
  echo "build-pgo: installing rustup's llvm-tools (llvm-profdata for rustc's LLVM)" >&2
  rustup component add llvm-tools >&2 || { echo "build-pgo: llvm-profdata not found and rustup could not add llvm-tools" >&2; exit 1; }
fi

echo "build-pgo: training an instrumented gateway on IMIX traffic" >&2
rm -rf "$PROFILES"
mkdir -p "$PROFILES"
RUSTFLAGS="-Cprofile-generate=$PROFILES/raw" CARGO_TARGET_DIR=$TARGET/pgo-train \
  SIZES=imix CORES=1 SAS="one many" DIRS="encrypt decrypt" SUITES="aes-gcm-256 aes-cbc-256-hmac-sha256" \
  BASELINE=0 PGO=0 WARMUP=1 SAMPLES=2 ./scripts/bench-gateway.sh | grep '^| [ed]' >&2
"$LLVM_PROFDATA" merge -o "$PROFDATA" "$PROFILES"/raw

echo "build-pgo: building the gateway with the profile" >&2
export RUSTFLAGS="-Cprofile-use=$PROFDATA" CARGO_TARGET_DIR=$TARGET/pgo
cargo build --release -q -p dataplane --bin gateway
if [ "$CHECK" = 1 ]; then
  echo "build-pgo: end-to-end check of the optimised gateway (gateway_e2e)" >&2
  cargo test --release -q -p dataplane --test gateway_e2e >&2
fi
echo "$CARGO_TARGET_DIR/release/gateway"

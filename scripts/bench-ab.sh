#!/usr/bin/env bash
# One gateway benchmark cell, alternating between a baseline commit and the working tree, so that
# a change is measured against its own reference in the same run (BENCHMARKS.md, "Eighth
# session"). The baseline is checked out in a temporary worktree and built in its own target
# directory; each round runs scripts/bench-gateway.sh once for each, without the testpmd and
# ipsec-secgw references (BASELINE=0), and prints its table row.
#
# Usage: scripts/bench-ab.sh BASE_COMMIT [ROUNDS]   (env: SIZE=64 SUITE=aes-gcm-256 DIR=encrypt
#        CORES=1 SAS=one SAMPLES=5)
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=${1:?usage: scripts/bench-ab.sh BASE_COMMIT [ROUNDS]}
ROUNDS=${2:-3}
DIR=${DIR:-encrypt}
HERE=$(pwd)
TARGET=$(realpath "${CARGO_TARGET_DIR:-target}")
WORKTREE=$(mktemp -d /tmp/bench-ab.XXXXXX)
git worktree add -q --detach "$WORKTREE" "$BASE"
trap 'git -C "$HERE" worktree remove --force "$WORKTREE"' EXIT

cell() {
  SIZES=${SIZE:-64} SUITES=${SUITE:-aes-gcm-256} DIRS=$DIR CORES=${CORES:-1} SAS=${SAS:-one} \
    BASELINE=0 SAMPLES=${SAMPLES:-5} ./scripts/bench-gateway.sh 2>&1 | grep "^| $DIR"
}
for _ in $(seq "$ROUNDS"); do
  echo "base $(cd "$WORKTREE" && CARGO_TARGET_DIR=$TARGET-ab-base cell)"
  echo "this $(CARGO_TARGET_DIR=$TARGET cell)"
done

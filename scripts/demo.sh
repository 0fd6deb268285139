#!/usr/bin/env bash
# The main command (README): installs what is missing, builds, and runs the built-in demo.
# Until the gateway exists it demonstrates the shared tables: writer processes install, update and
# delete SAs in a fresh region while two reader processes look them up and verify every record.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo run --release -q -p shared --bin shmctl -- demo "$@"

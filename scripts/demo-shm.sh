#!/usr/bin/env bash
# The shared-table demo (README): installs what is missing, builds, and shows the shared region
# under load: writer processes install, update and delete SAs in a fresh region while two reader
# processes look them up and verify every record.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo run --release -q -p shared --bin shmctl -- demo "$@"

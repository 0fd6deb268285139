#!/usr/bin/env bash
# Short libFuzzer runs of every target in fuzz/ (not part of the test command: needs a nightly
# toolchain). Installs nightly and cargo-fuzz if missing, then runs each target for
# FUZZ_SECONDS (default 60) and fails if any target finds a crash.
#   ./scripts/fuzz.sh                 # every target
#   ./scripts/fuzz.sh inbound_decap   # one target
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${FUZZ_SECONDS:-60}"
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
cargo +nightly fuzz --version >/dev/null 2>&1 || cargo install --locked cargo-fuzz
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo +nightly fuzz list)
for target in "${targets[@]}"; do
    echo "== fuzzing $target for ${seconds}s"
    mkdir -p "corpus/$target"
    log="$(mktemp)"
    if ! cargo +nightly fuzz run --release "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 >"$log" 2>&1; then
        tail -n 60 "$log"
        echo "== $target: libFuzzer found a failure (artifact under fuzz/artifacts/$target)" >&2
        exit 1
    fi
    grep -E '^Done [0-9]+ runs' "$log" || tail -n 3 "$log"
    rm -f "$log"
done

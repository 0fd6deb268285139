#!/usr/bin/env bash
# Installs what the build, the tests and the demo need. Idempotent: installs only what is missing.
# Add a package to the list below when a crate, test or script starts to need it.
set -euo pipefail

DEBIAN_PACKAGES=(
  build-essential
  pkg-config
  iproute2
  dpdk
  libdpdk-dev
  librte-meta-net
  librte-meta-crypto
  libipsec-mb-dev
  librte-meta-mempool
  librte-meta-bus
  dpdk-dev
  dpdk-doc
  clang
  libclang-dev
  python3-scapy
  tshark
  ethtool
  iputils-ping
  strongswan-charon
  strongswan-swanctl
  libcharon-extra-plugins
  libstrongswan-extra-plugins
  libstrongswan-standard-plugins
  openssl
)

missing=()
for p in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v cargo >/dev/null || { echo "setup: cargo not found (install Rust with rustup)" >&2; exit 1; }

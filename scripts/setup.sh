#!/usr/bin/env bash
# Installs everything tapvip needs on a fresh Debian machine (run as root) and builds it:
# system packages that are missing, the npm dependencies (with their native addons), the WASM
# and TypeScript builds. Idempotent: a second run only rebuilds.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
for p in libpcap-dev tcpdump tshark iproute2 iptables nftables iperf3 curl python3 make g++; do
  dpkg -s "$p" >/dev/null 2>&1 || need_pkgs+=("$p")
done
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  echo "setup: installing ${need_pkgs[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
for addon in pcap raw-socket better-sqlite3; do
  node -e "require('$addon')" || { echo "setup: native addon $addon did not build" >&2; exit 1; }
done
npm run build --silent
node -e "require('./native/build/Release/tapvip_tap.node')" || { echo "setup: the native TAP addon (native/) did not build" >&2; exit 1; }

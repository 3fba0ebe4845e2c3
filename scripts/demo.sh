#!/usr/bin/env bash
# The main job: a node in a box. Installs and builds tapvip, then builds network namespaces (a
# node, three pods, a client pod, an external client), runs `tapvip run` on a TAP in the node
# with the seed's Service examples, drives real traffic at every Service type, prints the
# spread over backends and removes everything (also on Ctrl-C). Needs root and /dev/net/tun.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
command -v curl >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >/dev/null; }
exec node dist/src/demo/node-in-a-box.js

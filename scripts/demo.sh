#!/usr/bin/env bash
# The main job until the node agent lands: installs and builds tapvip, then replays the shipped
# sample capture (test/pcap/basic-in.pcap, real traffic recorded with tcpdump in network
# namespaces) through the WASM pipeline with the matching Services, and shows the result.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p build/demo
node bin/tapvip.js replay --manifests test/pcap/basic.yaml --node-ip 10.244.0.1 --pod-cidr 10.244.0.0/16 \
  test/pcap/basic-in.pcap -o build/demo/out.pcap --verdicts build/demo/verdicts.jsonl
echo
echo "== verdict per input frame (build/demo/verdicts.jsonl) =="
node -e '
  for (const l of require("fs").readFileSync("build/demo/verdicts.jsonl", "utf8").trim().split("\n")) {
    const v = JSON.parse(l);
    console.log(`#${String(v.frame).padStart(3)} ${v.verdict.padEnd(5)} ${v.reason.padEnd(14)} ${v.in}${v.out ? "\n" + " ".repeat(27) + "=> " + v.out : ""}`);
  }'
echo
echo "== what tcpdump reads in build/demo/out.pcap =="
tcpdump -nn -r build/demo/out.pcap 2>/dev/null | head -40

// A traffic generator for TAP tests, run inside a test namespace with
// `ip netns exec <ns> node test/helpers/tap-child.mjs <addon.node> <tap name>`.
// Opens its own TAP (created in that namespace by TUNSETIFF), prints {"name","mac"} as one JSON
// line, then for every stdin line "<seconds> <frame hex>" writes that frame into its TAP in
// native batches of 64 for <seconds> and prints {"sent","errors","lastError","seconds"}. The
// frame's destination MAC must be this TAP's MAC (the parent learns it from the first line).
// Closes the TAP and exits when stdin closes, so a dead parent never leaves it running.

import { createRequire } from "node:module";
import { createInterface } from "node:readline";

const [addonPath, name] = process.argv.slice(2);
const require = createRequire(import.meta.url);
const n = require(addonPath);
const tap = n.open(name, 0, null);
n.setUp(tap.name, true, null);
console.log(JSON.stringify({ name: tap.name, mac: Array.from(tap.mac, (b) => b.toString(16).padStart(2, "0")).join(":") }));

const BATCH = 64;
const lines = createInterface({ input: process.stdin });
lines.on("close", () => {
  n.close(tap.fd);
  process.exit(0);
});
lines.on("line", (line) => {
  const [seconds, hex] = line.trim().split(/\s+/);
  const frame = Buffer.from(hex, "hex");
  const cap = (frame.length + 15) & ~15;
  const buf = new Uint8Array(BATCH * 16 + BATCH * cap);
  const dv = new DataView(buf.buffer);
  for (let i = 0; i < BATCH; i++) {
    const off = BATCH * 16 + i * cap;
    buf.set(frame, off);
    dv.setUint32(i * 16, off, true);
    dv.setUint32(i * 16 + 4, frame.length, true);
    dv.setUint32(i * 16 + 8, cap, true);
    dv.setUint32(i * 16 + 12, 1, true); // verdict TX
  }
  let sent = 0;
  let errors = 0;
  let lastError = null;
  const t0 = process.hrtime.bigint();
  const end = Date.now() + Number(seconds) * 1000;
  while (Date.now() < end) {
    for (let k = 0; k < 16; k++) {
      const r = n.writeBatch(tap.fd, buf, 0, BATCH, 1 << 1);
      sent += r.written;
      errors += r.errors;
      if (r.lastError) lastError = r.lastError;
    }
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(JSON.stringify({ sent, errors, lastError, seconds: secs }));
});

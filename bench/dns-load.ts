// A DNS load generator for bench/dns.ts when dnsperf is not installed: queries from a file
// ("name TYPE" a line, cycled through), over several UDP sockets with at most --outstanding
// queries in flight (closed loop), or at a fixed --rate; the latency of every answered query is
// taken with process.hrtime. Prints "result <json>" and writes the latencies (ms, float64) to
// --latencies.
//
//   node dist/bench/dns-load.js --port P --queries F [--duration 20] [--sockets 4]
//        [--outstanding 200] [--rate QPS] [--timeout-ms 2000] [--latencies FILE]

import dgram from "node:dgram";
import { readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import * as dnsPacket from "dns-packet";
import type { RecordType } from "dns-packet";

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    host: { type: "string", default: "127.0.0.1" },
    queries: { type: "string" },
    duration: { type: "string", default: "20" },
    sockets: { type: "string", default: "4" },
    outstanding: { type: "string", default: "200" },
    rate: { type: "string" },
    "timeout-ms": { type: "string", default: "2000" },
    latencies: { type: "string" },
  },
});
const PORT = Number(values.port);
const HOST = values.host!;
const SOCKETS = Number(values.sockets);
const MAX_OUT = Number(values.outstanding);
const RATE = values.rate ? Number(values.rate) : 0;
const TIMEOUT_NS = BigInt(Number(values["timeout-ms"])) * 1_000_000n;
const DURATION_NS = BigInt(Math.round(Number(values.duration) * 1e9));

const templates = readFileSync(values.queries!, "utf8")
  .split("\n")
  .filter((l) => l.trim() !== "")
  .map((l) => {
    const [name, type] = l.trim().split(/\s+/);
    return dnsPacket.encode({ type: "query", id: 0, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name: name!, type: (type ?? "A") as RecordType }] });
  });

interface Sock {
  s: dgram.Socket;
  nextId: number;
  /** send time (hrtime ns) per ID; 0n = free */
  sentAt: BigInt64Array;
}

const RCODES = ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"];
let qi = 0;
let sent = 0;
let completed = 0;
let lost = 0;
let inFlight = 0;
const rcodes: Record<string, number> = {};
const lat = new Float64Array(Math.max(1_000_000, RATE * Number(values.duration) * 2 || 20_000_000));
let nLat = 0;
let stopping = false;
const start = process.hrtime.bigint();

const socks: Sock[] = await Promise.all(
  Array.from({ length: SOCKETS }, async () => {
    const s = dgram.createSocket("udp4");
    await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
    const sock: Sock = { s, nextId: 0, sentAt: new BigInt64Array(65536) };
    s.on("message", (m) => {
      if (m.length < 12) return;
      const id = (m[0]! << 8) | m[1]!;
      const t = sock.sentAt[id]!;
      if (t === 0n) return; // late (already counted lost) or unknown
      sock.sentAt[id] = 0n;
      inFlight--;
      completed++;
      if (nLat < lat.length) lat[nLat++] = Number(process.hrtime.bigint() - t) / 1e6;
      const rc = RCODES[m[3]! & 0xf] ?? `RCODE${m[3]! & 0xf}`;
      rcodes[rc] = (rcodes[rc] ?? 0) + 1;
      if (!RATE) pump();
    });
    return sock;
  }),
);

let rr = 0;
function sendOne(): boolean {
  const sock = socks[rr++ % SOCKETS]!;
  // find a free ID (wraps; an ID still in flight is skipped)
  for (let k = 0; k < 65536; k++) {
    const id = sock.nextId;
    sock.nextId = (sock.nextId + 1) & 0xffff;
    if (sock.sentAt[id] !== 0n) continue;
    const t = templates[qi++ % templates.length]!;
    const b = Buffer.allocUnsafe(t.length);
    t.copy(b);
    b[0] = id >> 8;
    b[1] = id & 0xff;
    sock.sentAt[id] = process.hrtime.bigint();
    sock.s.send(b, PORT, HOST);
    sent++;
    inFlight++;
    return true;
  }
  return false;
}

function pump(): void {
  if (stopping) return;
  while (inFlight < MAX_OUT) if (!sendOne()) break;
}

// timeouts
const sweep = setInterval(() => {
  const now = process.hrtime.bigint();
  for (const sock of socks) {
    for (let id = 0; id < 65536; id++) {
      const t = sock.sentAt[id]!;
      if (t !== 0n && now - t > TIMEOUT_NS) {
        sock.sentAt[id] = 0n;
        inFlight--;
        lost++;
      }
    }
  }
  if (!RATE) pump();
}, 250);

// fixed rate: every millisecond, send what is due (never more than --outstanding in flight)
let rateTimer: NodeJS.Timeout | null = null;
if (RATE) {
  let due = 0;
  let last = process.hrtime.bigint();
  rateTimer = setInterval(() => {
    const now = process.hrtime.bigint();
    due += (Number(now - last) / 1e9) * RATE;
    last = now;
    while (due >= 1 && inFlight < MAX_OUT && !stopping) {
      if (!sendOne()) break;
      due--;
    }
    if (due > RATE / 10) due = RATE / 10; // do not accumulate a burst while saturated
  }, 1);
} else pump();

await new Promise((r) => setTimeout(r, Number(DURATION_NS / 1_000_000n)));
stopping = true;
if (rateTimer) clearInterval(rateTimer);
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
// wait for the answers still in flight (at most the timeout)
const waitEnd = Date.now() + Number(TIMEOUT_NS / 1_000_000n);
while (inFlight > 0 && Date.now() < waitEnd) await new Promise((r) => setTimeout(r, 10));
lost += inFlight;
clearInterval(sweep);
for (const s of socks) s.s.close();
if (values.latencies) writeFileSync(values.latencies, Buffer.from(lat.buffer, 0, nLat * 8));
process.stdout.write(`result ${JSON.stringify({ sent, completed, lost, seconds, qps: completed / seconds, rcodes })}\n`);

// The DNS benchmark's server process (started by bench/dns.ts): a DnsServer on 127.0.0.1 over a
// fixed set of Services and EndpointSlices (bench/dns-zone.ts). Prints "ready <port>
// <build ms>" once it answers, and on SIGTERM one line "metrics <json>" (its counters), then exits.
//
//   node dist/bench/dns-server.js --services 10000 [--port 0] [--answer-cache N]
//   node dist/bench/dns-server.js --echo      (no DNS: a bare Node UDP echo, the ceiling of any
//                                              single-process Node UDP server on this machine)

import dgram from "node:dgram";
import { parseArgs } from "node:util";
import { DnsServer } from "../src/discovery/dns.js";
import { buildZone, StaticSource, ZONE } from "./dns-zone.js";

const { values } = parseArgs({
  options: { services: { type: "string", default: "10000" }, port: { type: "string", default: "0" }, "answer-cache": { type: "string" }, echo: { type: "boolean" } },
});
if (values.echo) {
  // The floor of any Node UDP server here: each query goes back as it came, with QR set.
  const udp = dgram.createSocket({ type: "udp4", lookup: (a: string, _o: unknown, cb: (e: null, a: string, f: number) => void) => cb(null, a, 4) } as dgram.SocketOptions);
  udp.on("message", (m, r) => {
    m[2]! |= 0x80;
    udp.send(m, r.port, r.address);
  });
  await new Promise<void>((res) => udp.bind(Number(values.port), "127.0.0.1", () => res()));
  process.stdout.write(`ready ${udp.address().port} 0\n`);
  const bye = (): void => {
    process.stdout.write("metrics {}\n");
    process.exit(0);
  };
  process.on("SIGTERM", bye);
  process.on("SIGINT", bye);
  await new Promise(() => {});
}
const zone = buildZone(Number(values.services));
const source = new StaticSource({ Service: zone.services, EndpointSlice: zone.slices });
const server = new DnsServer({
  source,
  address: "127.0.0.1",
  port: Number(values.port),
  zone: ZONE,
  ...(values["answer-cache"] !== undefined ? { answerCache: Number(values["answer-cache"]) } : {}),
});
const t0 = performance.now();
await server.start(); // binds, lists, builds the index
const buildMs = performance.now() - t0;
process.stdout.write(`ready ${server.port} ${buildMs.toFixed(1)}\n`);
process.stdout.on("error", () => {}); // the benchmark went away: just exit
const stop = (): void => {
  process.stdout.write(`metrics ${JSON.stringify({ ...server.metrics(), cachedAnswers: server.cachedAnswers })}\n`);
  void server.stop().then(() => process.exit(0));
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);

// `tapvip run`: the node agent. Opens the TAP, programs the kernel (netconfig.ts), syncs the
// maps from objects read by list+watch (proxier.ts), and serves frames (datapath.ts) once the
// first full sync is in. SIGINT/SIGTERM stop it and remove everything it configured.

import { parseArgs } from "node:util";
import { execFileSync } from "node:child_process";
import { Dataplane } from "../maps/dataplane.js";
import { Programmer } from "../proxy/programmer.js";
import { Tap } from "../host/tap.js";
import type { IncomingMessage, ServerResponse } from "node:http";
import { loadObjects } from "../host/objects.js";
import { Proxier } from "./proxier.js";
import { TapDatapath } from "./datapath.js";
import { MultiQueueDatapath } from "./multiqueue.js";
import { NodeNetwork, MASQUERADE_IP } from "./netconfig.js";
import { StaticSource } from "./static-source.js";
import { parseCIDR, parseIP, cidrContains } from "../store/net.js";
import { startServe, type ServeHandle } from "../store/cli-serve.js";
import { ApiClient } from "../store/client.js";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { ReadinessProber, podStatusWriter } from "./probes.js";
import { saveState, restoreState } from "./state.js";
import { CaptureTap, captureHandler } from "./capture.js";
import { registerDnsMetrics, startDnsFromFlags, type DnsServer } from "../discovery/dns.js";
import type { ObjectSource } from "../store/watch.js";
import { ALGORITHMS, type Algorithm } from "../maps/layout.js";
import { HealthCheckServers, HealthCheckTargets, ProxyHealth, healthCheckTarget, startHealthz } from "./healthcheck.js";
import { createMetrics } from "./metrics.js";
import { startAdmin, parseBindAddress } from "./admin.js";
import { portView } from "./views.js";
import type { Service } from "../store/types.js";

export const RUN_USAGE = `tapvip run --tap NAME --node-name NAME --node-ip IP
           [--data DIR] [--listen ADDR:PORT] [--nodeport-range A-B] [--lb-pool CIDR]   (embedded store + API, the default)
           [--server URL]                                                               (or: objects from a remote tapvip API)
           [--manifests FILE|DIR]                                                       (or: a fixed set of objects)
           [--pod-cidr CIDR] [--cluster-cidr CIDR,...] [--service-cidr CIDR] [--nodeport-addresses CIDR,...]
           [--nodeport-iface IF,...] [--masquerade-ip IP] [--algorithm ALG] [--seed N]
           [--max-conntrack N] [--admin-address 127.0.0.1:10249|off] [--healthz-address 0.0.0.0:10256|off]
           [--healthcheck-address IP] [--state-file FILE|off] [--offload on|off] [--queues N]
           [--dns ADDR:PORT] [--cluster-domain ZONE] [--dns-upstream IP:PORT,...] [-v]`;

function interfacesExcept(skip: string[]): string[] {
  const out = execFileSync("ip", ["-o", "link", "show"]).toString();
  return out.split("\n").map((l) => /^\d+: ([^:@]+)/.exec(l)?.[1]).filter((n): n is string => !!n && !skip.includes(n));
}

/** /capture on an agent with worker queues: frames never pass through the main thread there. */
function captureRefused(queues: number) {
  return (_req: IncomingMessage, res: ServerResponse): void => {
    res.writeHead(409, { "Content-Type": "text/plain; charset=utf-8" })
      .end(`capture needs tapvip run --queues 1 (this agent serves ${queues} TAP queues from worker threads)\n`);
  };
}

export async function runMain(argv: string[], log = (l: string) => process.stderr.write(`${l}\n`)): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      tap: { type: "string" }, "node-name": { type: "string" }, "node-ip": { type: "string" },
      manifests: { type: "string" }, "pod-cidr": { type: "string" }, "service-cidr": { type: "string" },
      data: { type: "string" }, listen: { type: "string" }, "nodeport-range": { type: "string" }, "lb-pool": { type: "string" },
      server: { type: "string" },
      "nodeport-addresses": { type: "string" }, "nodeport-iface": { type: "string" },
      algorithm: { type: "string" }, seed: { type: "string" }, "max-conntrack": { type: "string" }, "masquerade-ip": { type: "string" },
      "admin-address": { type: "string" }, "state-file": { type: "string" }, "cluster-cidr": { type: "string" }, "healthz-address": { type: "string" }, "healthcheck-address": { type: "string" },
      verbose: { type: "boolean", short: "v" }, offload: { type: "string" }, queues: { type: "string" },
      dns: { type: "string" }, "cluster-domain": { type: "string" }, "dns-upstream": { type: "string" },
    },
  });
  for (const f of ["tap", "node-name", "node-ip"] as const) {
    if (!values[f]) throw new Error(`run: --${f} is required\n${RUN_USAGE}`);
  }
  const nodeIP = values["node-ip"]!;
  const serviceCIDR = values["service-cidr"] ?? "10.96.0.0/12";
  const alg = (values.algorithm ?? "random") as Algorithm;
  if (!(alg in ALGORITHMS) || (alg as string) === "default") throw new Error(`run: --algorithm: unsupported value "${alg}"`);
  const npCidrs = values["nodeport-addresses"]?.split(",").map((s) => s.trim()).filter(Boolean) ?? [];
  const npNets = npCidrs.map((c) => parseCIDR(c) ?? (() => { throw new Error(`run: --nodeport-addresses: invalid CIDR "${c}"`); })());
  const nodePortAddrs = [nodeIP].filter((ip) => {
    const a = parseIP(ip);
    return a !== null && (npNets.length === 0 ? !ip.startsWith("127.") : npNets.some((n) => cidrContains(n, a)));
  });

  if ([values.manifests, values.server].filter(Boolean).length > 1) throw new Error("run: --manifests and --server exclude each other");
  // Where objects come from: a fixed set, a remote API, or (default) the embedded store.
  let serve: ServeHandle | null = null;
  let source: ObjectSource;
  if (values.manifests) {
    source = new StaticSource(await loadObjects(values.manifests, { serviceCIDR, note: log }));
  } else if (values.server) {
    source = new ApiClient(values.server);
  } else {
    serve = await startServe({
      data: values.data ?? "/var/lib/tapvip", listen: values.listen, serviceCIDR,
      nodePortRange: values["nodeport-range"], lbPool: values["lb-pool"], log,
    });
    source = serve.registry;
    log(`tapvip: API on ${serve.url} (data ${values.data ?? "/var/lib/tapvip"})`);
  }
  // The fast path (default): a TAP with virtio-net headers and checksum/segmentation offloads,
  // so TCP and UDP arrive as super-frames of up to 64 KiB; "off" is the plain one-frame-per-
  // MTU path. Where the kernel refuses offloads the TAP still works, frame by frame.
  const offload = values.offload ?? "on";
  if (offload !== "on" && offload !== "off") throw new Error(`run: --offload: "${offload}" is not on or off`);
  // --queues N: a multi-queue TAP with one worker thread per queue over shared maps.
  const queues = Number(values.queues ?? "1");
  if (!Number.isInteger(queues) || queues < 1 || queues > 16) throw new Error(`run: --queues: "${values.queues}" is not an integer in 1..16`);
  const tap = Tap.open(values.tap!, { up: true, vnetHdr: offload === "on", multiQueue: queues > 1 });
  const taps = [tap];
  let dp: Dataplane;
  try {
    while (taps.length < queues) taps.push(Tap.open(tap.name, { vnetHdr: offload === "on", multiQueue: true }));
    const offloads = offload === "on" ? tap.setOffloads() : [];
    log(`tapvip: TAP ${tap.name} offloads: ${offloads.length ? offloads.join(" ") : offload === "on" ? "refused by the kernel (plain frames)" : "off"}`);
    const superFrames = offloads.some((o) => o.startsWith("tso") || o.startsWith("uso"));
    dp = new Dataplane({
      seed: values.seed ? Number(values.seed) : undefined,
      batchMax: 64,
      queues,
      // A super-frame is up to 64 KiB of IP plus the Ethernet and virtio-net headers.
      frameCap: superFrames ? 65_536 + 64 : 2048 + tap.vnetHdrLen,
      maxEntries: values["max-conntrack"] ? { conntrack: Number(values["max-conntrack"]) } : {},
      config: { snatAddr: values["masquerade-ip"] ?? MASQUERADE_IP, swapMacs: false, defaultAlgorithm: alg },
    });
  } catch (e) {
    for (const t of taps) t.close();
    throw e;
  }
  const prog = new Programmer(dp, { nodeName: values["node-name"]! });
  prog.setNodeAddresses(nodePortAddrs);
  prog.setLocalSources([...(values["pod-cidr"] ? [values["pod-cidr"]] : []), `${nodeIP}/32`]);

  const nodePortIfaces = values["nodeport-iface"]?.split(",").filter(Boolean) ?? interfacesExcept(["lo", tap.name]);
  const net = new NodeNetwork({ tap: tap.name, serviceCIDR, podCIDR: values["pod-cidr"], nodePortAddrs, nodePortIfaces, masqueradeIP: values["masquerade-ip"],
    replySourceCIDRs: values["cluster-cidr"]?.split(",").map((c) => c.trim()).filter(Boolean), log: values.verbose ? log : undefined });
  const stateFile = values["state-file"] === "off" ? null : (values["state-file"] ?? `${values.data ?? "/var/lib/tapvip"}/agent-state.bin`);
  const capture = new CaptureTap();
  const datapath = queues > 1 ? new MultiQueueDatapath(dp, taps, log, (e) => {
    log(`tapvip: ${e.message}`);
    shutdown(1);
  }) : new TapDatapath(dp, tap, capture);
  let prober: ReadinessProber | null = null;
  let serving = false;
  const nodeName = values["node-name"]!;
  const programmerView = () => prog.programmed().map((p) => portView(p.model, p.svcId));
  const health = new ProxyHealth();
  const metrics = createMetrics({ dp, programmerView, datapathStats: () => datapath.stats });
  const hcTargets = new HealthCheckTargets();
  const healthChecks = new HealthCheckServers({
    host: values["healthcheck-address"] ?? "0.0.0.0",
    proxyHealthy: () => health.isHealthy(),
    onError: (e) => log(`health check: ${e.message}`),
  });
  let proxier: Proxier | null = null;
  let stopping = false;
  let dns: DnsServer | null = null;
  const shutdown = (code: number): void => {
    if (stopping) return;
    stopping = true;
    const datapathStopped = datapath.stop();
    prober?.stop();
    // Graceful restart: conntrack, affinity and SNAT survive into the next start.
    if (serving && stateFile) {
      try {
        mkdirSync(dirname(stateFile), { recursive: true });
        const st = saveState(dp, stateFile, { now: datapath.now() });
        log(`tapvip: saved ${st.conntrack} conntrack, ${st.affinity} affinity, ${st.snat} SNAT entries to ${stateFile}`);
      } catch (e) {
        log(`cleanup: ${(e as Error).message}`);
      }
    }
    proxier?.stop();
    void dns?.stop();
    void healthChecks.close();
    const errs = net.teardown();
    for (const e of errs) log(`cleanup: ${e}`);
    log(`tapvip: stopped (rx ${datapath.stats.rxFrames} frames, tx ${datapath.stats.txFrames})`);
    // Queue workers let go of their fds before the TAP closes.
    const closing = Promise.resolve(datapathStopped).then(() => {
      for (const t of taps) t.close();
    }).then(() => (serve ? serve.close() : undefined));
    void closing.catch((e: Error) => log(`cleanup: ${e.message}`)).finally(() => process.exit(code));
  };
  process.on("SIGINT", () => shutdown(0));
  process.on("SIGTERM", () => shutdown(0));
  try {
    net.setup();
    proxier = new Proxier(source, prog, {
      log,
      onQueued: () => health.queued(),
      onServiceApplied: (name, svc, models) => hcTargets.set(name, svc ? healthCheckTarget(svc as Service, models, nodeName) : null),
      onSync: (ms, full, ok) => {
        metrics.observeSync(ms, full, ok);
        if (ok) health.updated();
        void healthChecks.sync(hcTargets.list());
        if (values.verbose) log(`sync ${full ? "full" : "partial"} ${ok ? "ok" : "FAILED"} in ${ms.toFixed(1)} ms`);
        const f = prog.frontendSummary();
        try {
          net.setRoutedIPs(f.externalIPs);
          net.setNodePorts(f.nodePorts);
        } catch (e) {
          log(`node networking: ${(e as Error).message}`);
        }
      },
    });
    await proxier.start();
    await proxier.ready;
    if (stateFile) restoreState(dp, stateFile, { now: datapath.now(), ids: prog, log });
    await datapath.start();
    if (queues > 1) log(`tapvip: ${queues} TAP queues, one worker thread each`);
    serving = true;
    dns = await startDnsFromFlags({ dns: values.dns, clusterDomain: values["cluster-domain"], dnsUpstream: values["dns-upstream"] }, source, log);
    if (dns) registerDnsMetrics(metrics.registry, dns);
    const podApi = serve ? serve.registry : values.server ? (source as ApiClient) : null;
    if (podApi) {
      prober = new ReadinessProber({ nodeName, source, writer: podStatusWriter(podApi), log });
      await prober.start();
    } else log("tapvip: readiness probes off (--manifests is a fixed set of objects)");
    const adminAddr = parseBindAddress(values["admin-address"] ?? "127.0.0.1:10249");
    if (adminAddr) {
      await startAdmin({ dp, programmerView, now: () => datapath.now(), registry: metrics.registry, health, capture: queues > 1 ? captureRefused(queues) : captureHandler(capture, { log }), ...adminAddr })
        .then((a) => log(`tapvip: admin on ${a.url} (/ct /lb /metrics /healthz /capture)`), (e: Error) => log(`admin server: ${e.message}`));
    }
    const hzAddr = parseBindAddress(values["healthz-address"] ?? "0.0.0.0:10256", "0.0.0.0");
    if (hzAddr) await startHealthz(health, hzAddr.host, hzAddr.port).catch((e: Error) => log(`healthz: ${e.message}`));
    log(`tapvip: serving on TAP ${tap.name} (${tap.mac}), node ${values["node-name"]} ${nodeIP}`);
  } catch (e) {
    log(`tapvip: ${(e as Error).message}`);
    shutdown(1);
  }
  return new Promise<number>(() => {}); // runs until a signal
}

// `tapvip serve --data DIR [--listen ADDR:PORT] [--service-cidr CIDR] [--nodeport-range A-B]
//  [--lb-pool CIDR] [--token-file F --tls-cert F --tls-key F] [--durability full|normal]`
// Runs the store, the Kubernetes-compatible API and the controller manager (endpoint controllers,
// events) alone (no dataplane). Prints the listen URL; SIGINT/SIGTERM stop the controllers, close
// the API (ending watches) and the store cleanly.

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { Registry } from "./registry.js";
import { ApiServer } from "./api/server.js";
import { ControllerManager } from "./controller-manager.js";
import { DNS_PARSE_OPTIONS, startDnsFromFlags, type DnsServer } from "../discovery/dns.js";

export const SERVE_USAGE = `usage: tapvip serve --data DIR [--listen ADDR:PORT] [--service-cidr CIDR] [--dns ADDR:PORT] [--cluster-domain ZONE] [--dns-upstream IP:PORT,...]
                    [--nodeport-range A-B] [--lb-pool CIDR]
                    [--token-file FILE --tls-cert FILE --tls-key FILE] [--durability full|normal]

  --data DIR            data directory (SQLite store, created if missing)
  --listen ADDR:PORT    API address (default 127.0.0.1:6443); anything but loopback
                        needs --token-file, --tls-cert and --tls-key
  --service-cidr CIDR   ClusterIP range (default 10.96.0.0/12)
  --nodeport-range A-B  NodePort range (default 30000-32767)
  --lb-pool CIDR        LoadBalancer ingress IP pool (default: none, services stay pending)
  --durability MODE     full (default: fsync every commit) or normal`;

export function parseListen(s: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(s.trim());
  if (!m) throw new Error(`--listen: expected ADDR:PORT, got ${JSON.stringify(s)}`);
  const host = m[1] ?? (m[2] || "127.0.0.1");
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`--listen: invalid port ${port}`);
  return { host, port };
}

export interface ServeHandle {
  registry: Registry;
  server: ApiServer;
  /** The controller manager (absent with controllers: false). */
  controllers?: ControllerManager;
  url: string;
  close(): Promise<void>;
}

export interface ServeOptions {
  data: string;
  listen?: string;
  serviceCIDR?: string;
  nodePortRange?: string;
  lbPool?: string;
  token?: string;
  tls?: { cert: string | Buffer; key: string | Buffer };
  durability?: "full" | "normal";
  /** Run the controller manager (endpoint controllers, events). Default true. */
  controllers?: boolean;
  /** Controller coalescing window, ms (default 10). */
  controllerBatchMs?: number;
  log?: (line: string) => void;
}

/** Opens the store and starts the API; the caller owns shutdown. */
export async function startServe(o: ServeOptions): Promise<ServeHandle> {
  const { host, port } = parseListen(o.listen ?? "127.0.0.1:6443");
  const registry = Registry.open(o.data, {
    serviceCIDR: o.serviceCIDR,
    nodePortRange: o.nodePortRange,
    lbPool: o.lbPool,
    store: { durability: o.durability ?? "full" },
  });
  let server: ApiServer;
  let controllers: ControllerManager | undefined;
  try {
    server = new ApiServer({ registry, host, port, token: o.token, tls: o.tls, log: o.log });
    await server.listen();
    if (o.controllers ?? true) {
      controllers = new ControllerManager({
        source: registry,
        writer: registry,
        lbPool: o.lbPool,
        repairReport: registry.repairReport,
        batchMs: o.controllerBatchMs,
        log: o.log ?? ((l) => process.stderr.write(`${l}\n`)),
      });
      await controllers.start();
    }
  } catch (e) {
    if (controllers) {
      controllers.stop();
      await server!.close().catch(() => undefined);
    }
    registry.close();
    throw e;
  }
  let closed = false;
  return {
    registry,
    server,
    controllers,
    url: server.url,
    async close() {
      if (closed) return;
      closed = true;
      controllers?.stop();
      await server.close();
      registry.close();
    },
  };
}

export async function serveMain(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        data: { type: "string" },
        listen: { type: "string" },
        "service-cidr": { type: "string" },
        "nodeport-range": { type: "string" },
        "lb-pool": { type: "string" },
        "token-file": { type: "string" },
        "tls-cert": { type: "string" },
        "tls-key": { type: "string" },
        durability: { type: "string" },
        verbose: { type: "boolean", short: "v" },
        help: { type: "boolean", short: "h" },
        ...DNS_PARSE_OPTIONS,
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    process.stderr.write(`tapvip serve: ${(e as Error).message}\n${SERVE_USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${SERVE_USAGE}\n`);
    return 0;
  }
  if (!values.data) {
    process.stderr.write(`tapvip serve: --data is required\n${SERVE_USAGE}\n`);
    return 2;
  }
  const durability = values.durability ?? "full";
  if (durability !== "full" && durability !== "normal") {
    process.stderr.write(`tapvip serve: --durability must be full or normal\n`);
    return 2;
  }
  let handle: ServeHandle;
  try {
    const token = values["token-file"] ? readFileSync(values["token-file"], "utf8").trim() : undefined;
    const tls =
      values["tls-cert"] || values["tls-key"]
        ? { cert: readFileSync(values["tls-cert"] ?? ""), key: readFileSync(values["tls-key"] ?? "") }
        : undefined;
    handle = await startServe({
      data: values.data,
      listen: values.listen,
      serviceCIDR: values["service-cidr"],
      nodePortRange: values["nodeport-range"],
      lbPool: values["lb-pool"],
      token,
      tls,
      durability,
      log: values.verbose ? (l) => process.stderr.write(`${l}\n`) : undefined,
    });
  } catch (e) {
    process.stderr.write(`tapvip serve: ${(e as Error).message}\n`);
    return 1;
  }
  const rep = handle.registry.repairReport;
  if (rep.leaked.length || rep.missing.length || rep.duplicates.length) {
    process.stderr.write(
      `tapvip serve: repair: released ${rep.leaked.length} leaked, restored ${rep.missing.length} missing allocation(s), ${rep.duplicates.length} duplicate(s)\n`,
    );
  }
  let dns: DnsServer | null = null;
  try {
    dns = await startDnsFromFlags({ dns: values.dns, clusterDomain: values["cluster-domain"], dnsUpstream: values["dns-upstream"] }, handle.registry, (l) => process.stderr.write(`${l}\n`));
  } catch (e) {
    process.stderr.write(`tapvip serve: --dns: ${(e as Error).message}\n`);
    await handle.close();
    return 1;
  }
  process.stdout.write(`tapvip serve: listening on ${handle.url}\n`);
  return await new Promise<number>((resolve) => {
    const stop = (sig: string): void => {
      process.off("SIGINT", onInt);
      process.off("SIGTERM", onTerm);
      process.stderr.write(`tapvip serve: ${sig}, shutting down\n`);
      void dns?.stop();
      handle.close().then(
        () => resolve(0),
        (e) => {
          process.stderr.write(`tapvip serve: ${(e as Error).message}\n`);
          resolve(1);
        },
      );
    };
    const onInt = (): void => stop("SIGINT");
    const onTerm = (): void => stop("SIGTERM");
    process.on("SIGINT", onInt);
    process.on("SIGTERM", onTerm);
  });
}

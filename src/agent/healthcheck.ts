// Node health endpoints, like kube-proxy's:
//  - HealthCheckServers: one HTTP server per healthCheckNodePort (LoadBalancer Services with
//    externalTrafficPolicy Local), answering any path per spec §5 (healthCheckResponse): 200
//    while this node has local READY endpoints for the service, else 503 (terminating-only
//    endpoints answer 503 while their traffic still flows). `sync()` opens, closes and updates
//    servers by difference; a port that cannot be bound is reported and retried on a later
//    sync, and never affects the other services.
//  - ProxyHealth + startHealthz: the proxier's own /healthz (kube-proxy's healthz server,
//    default port 10256): 200 unless a change has waited longer than the timeout for a sync.

import { createServer, type Server, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { countLocalReadyEndpoints, healthCheckResponse } from "../proxy/endpoints.js";
import type { ServicePortModel } from "../proxy/programmer.js";
import { notProxiedReason } from "../proxy/model.js";
import type { Service } from "../store/types.js";

/** One service that needs a health check server. */
export interface HealthCheckService {
  namespace: string;
  name: string;
  /** The Service's healthCheckNodePort. */
  port: number;
  /** Local READY endpoints (distinct IPs across the service's ports; see countLocalReadyEndpoints). */
  localReadyEndpoints: number;
}

/** A health check port that could not be served. */
export class HealthCheckPortError extends Error {
  constructor(readonly port: number, readonly service: string, override readonly cause: Error) {
    super(`healthCheckNodePort ${port} of service ${service}: ${cause.message}`);
    this.name = "HealthCheckPortError";
  }
}

export interface HealthCheckServersOptions {
  /** Address to bind (default "0.0.0.0": every node address, like kube-proxy). */
  host?: string;
  /** Called when a port cannot be served (e.g. EADDRINUSE); other services keep working. */
  onError?: (err: HealthCheckPortError) => void;
  /** The proxier's own health (serviceProxyHealthy in the body; 503 when false). Default: healthy. */
  proxyHealthy?: () => boolean;
  /** A failed port is retried by a sync no sooner than this after the failure (default 5000 ms). */
  retryAfterMs?: number;
}

interface PortState {
  svc: HealthCheckService;
  server: Server | null;
  /** Settles when the listen attempt has succeeded or failed. */
  listening: Promise<void>;
  failedAt: number | null;
}

/**
 * Sets of healthCheckNodePort HTTP servers kept equal to the last `sync()`. Two services
 * claiming one port: the first (in sync order) is served, the second is reported.
 */
export class HealthCheckServers {
  private readonly ports = new Map<number, PortState>();
  private readonly host: string;
  private readonly retryAfterMs: number;
  private closed = false;

  constructor(private readonly opts: HealthCheckServersOptions = {}) {
    this.host = opts.host ?? "0.0.0.0";
    this.retryAfterMs = opts.retryAfterMs ?? 5000;
  }

  /**
   * Makes the open servers match `services`: new ports are opened, gone ones closed, the rest
   * only see their counts updated (no restart). Resolves when every listen has settled;
   * failures are reported through onError, never thrown. After close() it does nothing.
   */
  async sync(services: readonly HealthCheckService[]): Promise<void> {
    if (this.closed) return; // a sync racing with shutdown
    const want = new Map<number, HealthCheckService>();
    for (const s of services) {
      if (!Number.isInteger(s.port) || s.port < 1 || s.port > 65535) {
        this.report(s.port, s, new Error(`invalid port ${s.port}`));
        continue;
      }
      const prev = want.get(s.port);
      if (prev) {
        this.report(s.port, s, new Error(`port already used by the health check of service ${prev.namespace}/${prev.name}`));
        continue;
      }
      want.set(s.port, s);
    }
    const closing: Promise<void>[] = [];
    for (const [port, st] of this.ports) {
      if (!want.has(port)) {
        this.ports.delete(port);
        closing.push(closeServer(st.server));
      }
    }
    const pending: Promise<void>[] = [];
    const now = Date.now();
    for (const [port, svc] of want) {
      const st = this.ports.get(port);
      if (st && (st.failedAt === null || now - st.failedAt < this.retryAfterMs)) {
        st.svc = { ...svc };
        pending.push(st.listening);
        continue;
      }
      if (st) this.ports.delete(port); // failed earlier: try again
      pending.push(this.open(port, { ...svc }));
    }
    await Promise.all([...closing, ...pending]);
  }

  /** Ports being served (listening successfully), ascending. */
  listening(): number[] {
    return [...this.ports.entries()].filter(([, s]) => s.server !== null && s.failedAt === null).map(([p]) => p).sort((a, b) => a - b);
  }

  /** Ports that failed and wait for a retry, ascending. */
  failed(): number[] {
    return [...this.ports.entries()].filter(([, s]) => s.failedAt !== null).map(([p]) => p).sort((a, b) => a - b);
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.ports.values()];
    this.ports.clear();
    await Promise.all(all.map((s) => closeServer(s.server)));
  }

  private open(port: number, svc: HealthCheckService): Promise<void> {
    const server = createServer((req, res) => this.answer(port, req, res));
    const st: PortState = { svc, server, listening: Promise.resolve(), failedAt: null };
    st.listening = new Promise<void>((resolve) => {
      const onError = (e: Error) => {
        st.failedAt = Date.now();
        st.server = null;
        server.close(() => {});
        this.report(port, st.svc, e);
        resolve();
      };
      server.once("error", onError);
      server.listen({ port, host: this.host, exclusive: true }, () => {
        server.off("error", onError);
        server.on("error", () => {}); // later socket errors must not crash the agent
        resolve();
      });
    });
    this.ports.set(port, st);
    return st.listening;
  }

  private answer(port: number, _req: IncomingMessage, res: ServerResponse): void {
    const st = this.ports.get(port);
    if (!st) {
      res.writeHead(503).end();
      return;
    }
    const healthy = this.opts.proxyHealthy ? this.opts.proxyHealthy() : true;
    const r = healthCheckResponse(st.svc.namespace, st.svc.name, st.svc.localReadyEndpoints, healthy);
    res.writeHead(r.status, { ...r.headers, "Content-Length": Buffer.byteLength(r.body) });
    res.end(r.body);
  }

  private report(port: number, svc: HealthCheckService, e: Error): void {
    this.opts.onError?.(new HealthCheckPortError(port, `${svc.namespace}/${svc.name}`, e));
  }
}

function closeServer(server: Server | null): Promise<void> {
  if (!server || !server.listening) return Promise.resolve();
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/**
 * The health check target of one Service, or null when it needs none: a LoadBalancer with
 * externalTrafficPolicy Local and a healthCheckNodePort. `models` are the service's port
 * models (buildModels), whose endpoints give the local ready count across all ports.
 */
export function healthCheckTarget(svc: Service, models: readonly ServicePortModel[], nodeName: string): HealthCheckService | null {
  const spec = svc.spec ?? {};
  if (notProxiedReason(svc) !== null) return null;
  if (spec.type !== "LoadBalancer" || spec.externalTrafficPolicy !== "Local") return null;
  const port = spec.healthCheckNodePort;
  if (!port) return null;
  return {
    namespace: svc.metadata.namespace ?? "default",
    name: svc.metadata.name ?? "",
    port,
    localReadyEndpoints: countLocalReadyEndpoints(models.map((m) => m.endpoints), nodeName),
  };
}

/** Keeps the health check targets per service name between syncs (set after each service applies). */
export class HealthCheckTargets {
  private readonly byName = new Map<string, HealthCheckService>();
  set(name: string, target: HealthCheckService | null): void {
    if (target) this.byName.set(name, target);
    else this.byName.delete(name);
  }
  list(): HealthCheckService[] {
    return [...this.byName.values()].sort((a, b) => a.port - b.port);
  }
}

// ---------------------------------------------------------------------------------------
// The proxier's healthz

export interface ProxyHealthOptions {
  /** How long a change may wait for its sync before the proxier is unhealthy (default 60 s = 2 × kube-proxy's syncPeriod). */
  timeoutMs?: number;
  /** Clock (ms), for tests. */
  now?: () => number;
}

export interface ProxyHealthStatus {
  healthy: boolean;
  lastUpdated: string;
  currentTime: string;
  nodeEligible: boolean;
}

/**
 * kube-proxy's proxier health: `queued()` when a change waits for a sync, `updated()` after a
 * successful sync. Unhealthy while the oldest unsynced change is older than the timeout, and
 * until the first sync once something was queued.
 */
export class ProxyHealth {
  private lastUpdated = 0;
  private oldestPending = 0;
  private readonly timeoutMs: number;
  private readonly clock: () => number;

  constructor(opts: ProxyHealthOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 60_000;
    this.clock = opts.now ?? Date.now;
  }

  /** A change is waiting for a sync (only the oldest pending one counts). */
  queued(): void {
    if (this.oldestPending === 0) this.oldestPending = this.clock();
  }

  /** A sync succeeded: everything queued before it is in the maps. */
  updated(): void {
    this.lastUpdated = this.clock();
    this.oldestPending = 0;
  }

  isHealthy(): boolean {
    if (this.oldestPending === 0) return true;
    return this.clock() - this.oldestPending < this.timeoutMs;
  }

  status(): ProxyHealthStatus {
    const now = this.clock();
    return {
      healthy: this.isHealthy(),
      lastUpdated: new Date(this.lastUpdated).toISOString(),
      currentTime: new Date(now).toISOString(),
      nodeEligible: true,
    };
  }
}

/** kube-proxy's healthz answer: JSON {lastUpdated, currentTime, nodeEligible}; 200 or 503. */
export function healthzResponse(h: ProxyHealth): { status: 200 | 503; headers: Record<string, string>; body: string } {
  const s = h.status();
  return {
    status: s.healthy ? 200 : 503,
    headers: { "Content-Type": "application/json", "X-Content-Type-Options": "nosniff" },
    body: JSON.stringify({ lastUpdated: s.lastUpdated, currentTime: s.currentTime, nodeEligible: s.nodeEligible }),
  };
}

export const DEFAULT_HEALTHZ_PORT = 10256;

/** Serves /healthz (and /livez, which ignores node eligibility like upstream) on host:port. */
export async function startHealthz(h: ProxyHealth, host = "0.0.0.0", port = DEFAULT_HEALTHZ_PORT): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== "/healthz" && path !== "/livez") {
      res.writeHead(404, { "Content-Type": "text/plain; charset=utf-8" }).end("404 page not found\n");
      return;
    }
    const r = healthzResponse(h);
    res.writeHead(r.status, r.headers).end(r.body);
  });
  await listen(server, host, port);
  return { server, port: (server.address() as AddressInfo).port, close: () => closeServer(server) };
}

/** Listens or rejects with an error naming the address. */
export function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => reject(new Error(`listen on ${host}:${port}: ${e.message}`));
    server.once("error", onError);
    server.listen({ port, host, exclusive: true }, () => {
      server.off("error", onError);
      resolve();
    });
  });
}

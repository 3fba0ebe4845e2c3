// The agent's local admin server (default http://127.0.0.1:10249, kube-proxy's metrics
// address): GET /ct (conntrack flows), GET /lb (services → frontends → backends), GET /metrics
// (Prometheus), GET /healthz. /ct and /lb answer text by default and JSON with ?format=json
// (or Accept: application/json). The client side is what `tapvip ct list` and
// `tapvip lb list` run.

import { createServer, type Server, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import type { Registry } from "prom-client";
import type { Dataplane } from "../maps/dataplane.js";
import { conntrackList, conntrackText, lbList, lbText, type ProgrammerView } from "./views.js";
import { healthzResponse, listen, type ProxyHealth } from "./healthcheck.js";

export const DEFAULT_ADMIN_HOST = "127.0.0.1";
export const DEFAULT_ADMIN_PORT = 10249;
export const DEFAULT_ADMIN_URL = `http://${DEFAULT_ADMIN_HOST}:${DEFAULT_ADMIN_PORT}`;

/**
 * "host:port", "[v6]:port", ":port" (host = defaultHost) or "port" → {host, port}; "" or "off"
 * → null (disabled). Like kube-proxy's --metrics-bind-address / --healthz-bind-address.
 */
export function parseBindAddress(s: string, defaultHost = DEFAULT_ADMIN_HOST): { host: string; port: number } | null {
  const v = s.trim();
  if (v === "" || v === "off") return null;
  const m = /^(?:\[([^\]]+)\]|([^:]*))?:?(\d+)$/.exec(v.includes(":") ? v : `:${v}`);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !Number.isInteger(port) || port > 65535) throw new Error(`invalid bind address "${s}": expected HOST:PORT`);
  return { host: m[1] ?? (m[2] || defaultHost), port };
}

export interface AdminOptions {
  dp: Dataplane;
  programmerView: ProgrammerView;
  /** The dataplane clock in seconds (TapDatapath.now()), for conntrack timeouts. */
  now: () => number;
  /** Served on /metrics when given. */
  registry?: Registry;
  /** /healthz answers kube-proxy's JSON from it; without it /healthz is a plain 200 "ok". */
  health?: ProxyHealth;
  /** Default 127.0.0.1 (the admin server is not meant to leave the node). */
  host?: string;
  /** Default 10249; 0 picks a free port. */
  port?: number;
  /** GET /capture (captureHandler from capture.ts). */
  capture?: (req: IncomingMessage, res: ServerResponse) => void;
}

export interface AdminServer {
  server: Server;
  port: number;
  url: string;
  close(): Promise<void>;
}

const TEXT = "text/plain; charset=utf-8";
const JSON_CT = "application/json";

function wantsJson(req: IncomingMessage, query: URLSearchParams): boolean | null {
  const f = query.get("format") ?? query.get("o") ?? query.get("output");
  if (f !== null) {
    if (f === "json") return true;
    if (f === "text" || f === "") return false;
    return null;
  }
  return /application\/json/.test(req.headers.accept ?? "");
}

export async function startAdmin(opts: AdminOptions): Promise<AdminServer> {
  const host = opts.host ?? DEFAULT_ADMIN_HOST;
  const server = createServer((req, res) => {
    handle(opts, req, res).catch((e: Error) => {
      if (!res.headersSent) res.writeHead(500, { "Content-Type": TEXT });
      res.end(`${e.message}\n`);
    });
  });
  await listen(server, host, opts.port ?? DEFAULT_ADMIN_PORT);
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    url: `http://${host.includes(":") ? `[${host}]` : host}:${port}`,
    close: () => new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); }),
  };
}

async function handle(opts: AdminOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const u = new URL(req.url ?? "/", "http://admin");
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { "Content-Type": TEXT, Allow: "GET, HEAD" }).end("method not allowed\n");
    return;
  }
  const send = (status: number, type: string, body: string, extra: Record<string, string> = {}) => {
    res.writeHead(status, { "Content-Type": type, "Content-Length": Buffer.byteLength(body), ...extra });
    res.end(req.method === "HEAD" ? undefined : body);
  };
  if (u.pathname === "/capture") {
    if (!opts.capture) return send(404, TEXT, "capture is not enabled\n");
    return opts.capture(req, res);
  }
  switch (u.pathname) {
    case "/ct":
    case "/lb": {
      const json = wantsJson(req, u.searchParams);
      if (json === null) return send(400, TEXT, "format must be text or json\n");
      if (u.pathname === "/ct") {
        const now = opts.now();
        const flows = conntrackList(opts.dp, { now, programmerView: opts.programmerView });
        return json ? send(200, JSON_CT, JSON.stringify({ now, flows }, null, 2) + "\n") : send(200, TEXT, conntrackText(flows));
      }
      const list = lbList(opts.dp, opts.programmerView);
      return json ? send(200, JSON_CT, JSON.stringify({ services: list }, null, 2) + "\n") : send(200, TEXT, lbText(list));
    }
    case "/metrics": {
      if (!opts.registry) return send(404, TEXT, "metrics are not enabled\n");
      return send(200, opts.registry.contentType, await opts.registry.metrics());
    }
    case "/healthz": {
      if (!opts.health) return send(200, TEXT, "ok\n");
      const r = healthzResponse(opts.health);
      return send(r.status, r.headers["Content-Type"]!, r.body, { "X-Content-Type-Options": "nosniff" });
    }
    case "/":
      return send(200, TEXT, "tapvip admin: /ct /lb (?format=json) /metrics /healthz\n");
    default:
      return send(404, TEXT, "404 page not found\n");
  }
}

// ---------------------------------------------------------------------------------------
// Client side (the CLI)

export type OutputFormat = "text" | "json";

async function fetchAdmin(base: string, path: string, format: OutputFormat): Promise<string> {
  const url = `${base.replace(/\/+$/, "")}${path}?format=${format}`;
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  } catch (e) {
    const err = e as Error & { cause?: Error & { code?: string } };
    const why = err.cause?.code ?? err.cause?.message ?? err.message;
    throw new Error(`cannot reach the tapvip agent's admin server at ${base} (${why}); is \`tapvip run\` running? (--admin URL selects another)`);
  }
  const body = await res.text();
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}: ${body.trim()}`);
  return body;
}

/** The conntrack table from a running agent: text like `conntrack -L`, or JSON {now, flows}. */
export function fetchCt(url = DEFAULT_ADMIN_URL, format: OutputFormat = "text"): Promise<string> {
  return fetchAdmin(url, "/ct", format);
}

/** Services → frontends → backends from a running agent: text, or JSON {services}. */
export function fetchLb(url = DEFAULT_ADMIN_URL, format: OutputFormat = "text"): Promise<string> {
  return fetchAdmin(url, "/lb", format);
}

export const CT_USAGE = "tapvip ct list [--admin URL] [-o text|json]";
export const LB_USAGE = "tapvip lb list [--admin URL] [-o text|json]";

async function listMain(what: "ct" | "lb", argv: string[], out: (s: string) => void): Promise<number> {
  const usage = what === "ct" ? CT_USAGE : LB_USAGE;
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { admin: { type: "string" }, output: { type: "string", short: "o" } },
  });
  if (positionals.length !== 1 || positionals[0] !== "list") throw new Error(`${what}: expected "list"\nusage: ${usage}`);
  const format = (values.output ?? "text") as OutputFormat;
  if (format !== "text" && format !== "json") throw new Error(`${what}: -o must be text or json, got "${values.output}"\nusage: ${usage}`);
  const url = values.admin ?? process.env.TAPVIP_ADMIN ?? DEFAULT_ADMIN_URL;
  out(what === "ct" ? await fetchCt(url, format) : await fetchLb(url, format));
  return 0;
}

/** `tapvip ct list`: prints the agent's conntrack table. */
export function ctMain(argv: string[], out: (s: string) => void = (s) => void process.stdout.write(s)): Promise<number> {
  return listMain("ct", argv, out);
}

/** `tapvip lb list`: prints the agent's services → backends. */
export function lbMain(argv: string[], out: (s: string) => void = (s) => void process.stdout.write(s)): Promise<number> {
  return listMain("lb", argv, out);
}

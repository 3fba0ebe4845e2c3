// The Kubernetes-compatible HTTP API over a Registry: discovery, namespaced and cluster-wide
// CRUD, list with label/field selectors, watch (chunked JSON lines, resume from a
// resourceVersion, ERROR 410 when too old), deletecollection, /status, PATCH (merge, strategic
// merge, JSON patch, apply-patch+yaml), Table output for kubectl, and minimal OpenAPI documents.
//
// Listens on 127.0.0.1 by default; any other address needs both a bearer token and TLS.

import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { timingSafeEqual } from "node:crypto";
import type { AddressInfo } from "node:net";
import { parse as parseYaml } from "yaml";
import { KINDS, Registry, StatusError, kindForResource, statusErrors, toStatus, type KindInfo } from "../registry.js";
import type { Status } from "../types.js";
import type { StoredObject } from "../db.js";
import type { WatchEvent } from "../watch.js";
import { PATCH_CONTENT_TYPES } from "./patch.js";
import { toTable, type IncludeObject } from "./tables.js";
import { apiGroup, apiGroupList, apiVersions, coreResourceList, groupResourceList, SERVER_VERSION } from "./discovery.js";
import { openAPIV3Root, openAPIV3GroupVersion } from "./openapi.js";

export interface ApiServerOptions {
  registry: Registry;
  /** Address to listen on; default 127.0.0.1. */
  host?: string;
  /** Port; 0 (default) picks a free one. */
  port?: number;
  /** Required bearer token (Authorization: Bearer …). Mandatory off loopback. */
  token?: string;
  /** TLS certificate and key (PEM). Mandatory off loopback. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Log each request to this function. */
  log?: (line: string) => void;
}

export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\./.test(host);
}

interface Route {
  info: KindInfo;
  namespace?: string;
  name?: string;
  subresource?: string;
}

class HttpError extends Error {
  constructor(readonly status: Status) {
    super(status.message);
  }
}

const MAX_BODY = 8 * 1024 * 1024;

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new HttpError(statusFor(413, "RequestEntityTooLarge", "request entity too large")));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function statusFor(code: number, reason: string, message: string): Status {
  return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, code };
}

function wantsTable(req: IncomingMessage): boolean {
  const accept = req.headers.accept ?? "";
  return /as=Table/.test(accept) && /g=meta\.k8s\.io/.test(accept);
}

export class ApiServer {
  readonly registry: Registry;
  private readonly server: Server;
  private readonly opts: ApiServerOptions;
  private readonly watches = new Set<() => void>();
  private address = "";

  constructor(opts: ApiServerOptions) {
    const host = opts.host ?? "127.0.0.1";
    if (!isLoopback(host) && (!opts.token || !opts.tls)) {
      throw new Error(`refusing to listen on ${host}: a bearer token and TLS (certificate and key) are required off loopback`);
    }
    this.opts = { ...opts, host };
    this.registry = opts.registry;
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      this.handle(req, res).catch((e) => this.sendStatus(res, e instanceof HttpError ? e.status : toStatus(e)));
    };
    this.server = opts.tls ? createHttpsServer({ cert: opts.tls.cert, key: opts.tls.key }, handler) : createHttpServer(handler);
    this.server.keepAliveTimeout = 5000;
  }

  /** Starts listening; resolves with the base URL. */
  async listen(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.opts.port ?? 0, this.opts.host, () => {
        this.server.off("error", reject);
        resolve();
      });
    });
    const a = this.server.address() as AddressInfo;
    const host = a.family === "IPv6" ? `[${a.address}]` : a.address;
    this.address = `${host}:${a.port}`;
    return this.url;
  }

  get url(): string {
    return `${this.opts.tls ? "https" : "http"}://${this.address}`;
  }

  get port(): number {
    return (this.server.address() as AddressInfo | null)?.port ?? 0;
  }

  async close(): Promise<void> {
    for (const stop of [...this.watches]) stop();
    this.watches.clear();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections?.();
    });
  }

  // ---------------------------------------------------------------- plumbing

  private sendJSON(res: ServerResponse, code: number, body: unknown): void {
    if (res.headersSent) {
      res.end();
      return;
    }
    const text = JSON.stringify(body);
    res.writeHead(code, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text), "Cache-Control": "no-cache, private" });
    res.end(text);
  }

  private sendStatus(res: ServerResponse, st: Status): void {
    this.sendJSON(res, st.code ?? 500, st);
  }

  private authorized(req: IncomingMessage): boolean {
    const token = this.opts.token;
    if (!token) return true;
    const h = req.headers.authorization ?? "";
    const m = /^Bearer\s+(.+)$/i.exec(h);
    if (!m) return false;
    const a = Buffer.from(m[1]!.trim());
    const b = Buffer.from(token);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://localhost");
    const path = url.pathname.replace(/\/+$/, "") || "/";
    this.opts.log?.(`${req.method} ${req.url}`);
    if (!this.authorized(req)) {
      this.sendStatus(res, statusFor(401, "Unauthorized", "Unauthorized"));
      return;
    }
    const method = req.method ?? "GET";

    // health, version, discovery, openapi
    if (method === "GET") {
      switch (path) {
        case "/healthz":
        case "/livez":
        case "/readyz":
          res.writeHead(200, { "Content-Type": "text/plain" });
          res.end("ok");
          return;
        case "/version":
          return this.sendJSON(res, 200, SERVER_VERSION);
        case "/api":
          return this.sendJSON(res, 200, apiVersions(this.address));
        case "/api/v1":
          return this.sendJSON(res, 200, coreResourceList());
        case "/apis":
          return this.sendJSON(res, 200, apiGroupList());
        case "/openapi/v3":
          return this.sendJSON(res, 200, openAPIV3Root());
      }
      let m: RegExpExecArray | null;
      if ((m = /^\/openapi\/v3\/(api\/v1|apis\/discovery\.k8s\.io\/v1)$/.exec(path))) {
        return this.sendJSON(res, 200, openAPIV3GroupVersion(m[1]!));
      }
      if ((m = /^\/apis\/([^/]+)$/.exec(path))) {
        const g = apiGroup(m[1]!);
        if (g) return this.sendJSON(res, 200, g);
      }
      if ((m = /^\/apis\/([^/]+)\/([^/]+)$/.exec(path))) {
        const g = groupResourceList(m[1]!, m[2]!);
        if (g) return this.sendJSON(res, 200, g);
      }
    }

    const route = this.route(path);
    if (!route) {
      this.sendStatus(res, statusFor(404, "NotFound", "the server could not find the requested resource"));
      return;
    }
    const q = url.searchParams;
    const dryRun = q.getAll("dryRun").includes("All");
    const { info, namespace, name, subresource } = route;
    if (subresource && !info.subresources.includes(subresource)) {
      this.sendStatus(res, statusFor(404, "NotFound", "the server could not find the requested resource"));
      return;
    }

    switch (method) {
      case "GET": {
        if (name) {
          const obj = this.registry.get(info.kind, namespace, name);
          return this.sendObject(req, res, 200, info, obj, q);
        }
        if (q.get("watch") === "true" || q.get("watch") === "1") return this.serveWatch(req, res, info, namespace, q);
        const list = this.registry.listSync(info.kind, {
          namespace,
          labelSelector: q.get("labelSelector") ?? undefined,
          fieldSelector: q.get("fieldSelector") ?? undefined,
        });
        if (wantsTable(req)) {
          return this.sendJSON(
            res,
            200,
            toTable(info.kind, list.items, { resourceVersion: list.resourceVersion, include: includeParam(q) }),
          );
        }
        return this.sendJSON(res, 200, {
          kind: `${info.kind}List`,
          apiVersion: info.apiVersion,
          metadata: { resourceVersion: list.resourceVersion },
          items: list.items,
        });
      }
      case "POST": {
        if (name) throw statusErrors.methodNotAllowed("the server does not allow this method on the requested resource");
        const body = await this.parseBody(req);
        const obj = this.registry.create(info.kind, body as StoredObject, { namespace, dryRun });
        return this.sendObject(req, res, 201, info, obj, q);
      }
      case "PUT": {
        if (!name) throw statusErrors.methodNotAllowed("the server does not allow this method on the requested resource");
        const body = (await this.parseBody(req)) as StoredObject;
        const existed = !!this.registry.find(info.kind, namespace, name);
        const obj = this.registry.update(info.kind, body, {
          namespace,
          name,
          dryRun,
          subresource: subresource === "status" ? "status" : undefined,
        });
        return this.sendObject(req, res, existed ? 200 : 201, info, obj, q);
      }
      case "PATCH": {
        if (!name) throw statusErrors.methodNotAllowed("the server does not allow this method on the requested resource");
        const ct = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
        const type = PATCH_CONTENT_TYPES[ct];
        if (!type) {
          throw new HttpError(statusFor(415, "UnsupportedMediaType", `the body of the request was in an unknown format - accepted media types include: ${Object.keys(PATCH_CONTENT_TYPES).join(", ")}`));
        }
        const text = await readBody(req);
        let body: unknown;
        try {
          body = type === "apply" ? parseYaml(text) : JSON.parse(text);
        } catch (e) {
          throw statusErrors.badRequest(`error decoding patch: ${(e as Error).message}`);
        }
        const existed = !!this.registry.find(info.kind, namespace, name);
        const obj = this.registry.patch(info.kind, namespace, name, type, body, {
          dryRun,
          subresource: subresource === "status" ? "status" : undefined,
        });
        return this.sendObject(req, res, existed ? 200 : 201, info, obj as StoredObject, q);
      }
      case "DELETE": {
        const text = await readBody(req);
        let opts: {
          gracePeriodSeconds?: number;
          preconditions?: { uid?: string; resourceVersion?: string };
          dryRun?: string[];
        } = {};
        if (text.trim()) {
          try {
            opts = JSON.parse(text);
          } catch (e) {
            throw statusErrors.badRequest(`invalid DeleteOptions: ${(e as Error).message}`);
          }
        }
        const graceQ = q.get("gracePeriodSeconds");
        const grace = graceQ !== null ? Number(graceQ) : opts.gracePeriodSeconds;
        const dr = dryRun || (opts.dryRun ?? []).includes("All");
        if (!name) {
          const list = this.registry.deleteCollection(info.kind, namespace, {
            labelSelector: q.get("labelSelector") ?? undefined,
            fieldSelector: q.get("fieldSelector") ?? undefined,
            gracePeriodSeconds: grace,
            dryRun: dr,
          });
          return this.sendJSON(res, 200, {
            kind: `${info.kind}List`,
            apiVersion: info.apiVersion,
            metadata: { resourceVersion: list.resourceVersion },
            items: list.items,
          });
        }
        const obj = this.registry.delete(info.kind, namespace, name, {
          gracePeriodSeconds: grace,
          preconditions: opts.preconditions,
          dryRun: dr,
        }) as StoredObject;
        const stillThere = !dr && !!this.registry.find(info.kind, namespace, name);
        return this.sendObject(req, res, stillThere ? 202 : 200, info, obj, q);
      }
      default:
        throw statusErrors.methodNotAllowed(`method ${method} not allowed`);
    }
  }

  private sendObject(req: IncomingMessage, res: ServerResponse, code: number, info: KindInfo, obj: StoredObject, q: URLSearchParams): void {
    if (wantsTable(req)) {
      this.sendJSON(res, code, toTable(info.kind, [obj], { resourceVersion: obj.metadata.resourceVersion, include: includeParam(q) }));
      return;
    }
    this.sendJSON(res, code, obj);
  }

  private async parseBody(req: IncomingMessage): Promise<unknown> {
    const text = await readBody(req);
    const ct = (req.headers["content-type"] ?? "application/json").toLowerCase();
    try {
      const v = ct.includes("yaml") ? parseYaml(text) : JSON.parse(text);
      if (!v || typeof v !== "object" || Array.isArray(v)) throw new Error("expected an object");
      return v;
    } catch (e) {
      throw statusErrors.badRequest(`the body of the request could not be decoded: ${(e as Error).message}`);
    }
  }

  /** Maps a path to a kind, namespace, name and subresource. */
  private route(path: string): Route | undefined {
    let group: string;
    let rest: string[];
    const segs = path.split("/").filter((s) => s !== "").map(decodeURIComponent);
    if (segs[0] === "api" && segs[1] === "v1") {
      group = "";
      rest = segs.slice(2);
    } else if (segs[0] === "apis" && segs.length >= 3) {
      group = segs[1]!;
      if (segs[2] !== "v1") return undefined;
      rest = segs.slice(3);
    } else return undefined;
    if (rest.length === 0) return undefined;
    if (rest[0] === "namespaces" && rest.length >= 3) {
      const nsKind = kindForResource(group, rest[2]!);
      if (nsKind && nsKind.namespaced) {
        if (rest.length > 5) return undefined;
        return { info: nsKind, namespace: rest[1], name: rest[3], subresource: rest[4] };
      }
    }
    const info = kindForResource(group, rest[0]!);
    if (!info || rest.length > 3) return undefined;
    if (info.namespaced) {
      if (rest.length > 1) return undefined; // cluster-wide list/watch only
      return { info };
    }
    return { info, name: rest[1], subresource: rest[2] };
  }

  // ---------------------------------------------------------------- watch

  private serveWatch(req: IncomingMessage, res: ServerResponse, info: KindInfo, namespace: string | undefined, q: URLSearchParams): void {
    const table = wantsTable(req);
    const include = includeParam(q);
    res.writeHead(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked", "Cache-Control": "no-cache, private" });
    res.flushHeaders();
    let first = true;
    const write = (ev: WatchEvent): void => {
      let object: unknown = ev.object;
      if (table && (ev.type === "ADDED" || ev.type === "MODIFIED" || ev.type === "DELETED")) {
        object = toTable(info.kind, [ev.object], { resourceVersion: ev.object.metadata.resourceVersion, include, noHeaders: !first });
        first = false;
      }
      res.write(`${JSON.stringify({ type: ev.type, object })}\n`);
    };
    let timer: NodeJS.Timeout | undefined;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      w.stop();
      this.watches.delete(finish);
      res.end();
    };
    const w = this.registry.watch(
      info.kind,
      {
        namespace,
        labelSelector: q.get("labelSelector") ?? undefined,
        fieldSelector: q.get("fieldSelector") ?? undefined,
        resourceVersion: q.get("resourceVersion") ?? undefined,
        bookmarkIntervalMs: q.get("allowWatchBookmarks") === "true" ? 30_000 : 0,
      },
      {
        onEvent: write,
        onClose: (err) => {
          if (err) res.write(`${JSON.stringify({ type: "ERROR", object: err })}\n`);
          finish();
        },
      },
    );
    this.watches.add(finish);
    const timeout = Number(q.get("timeoutSeconds") ?? "0");
    if (timeout > 0) {
      timer = setTimeout(finish, timeout * 1000);
      timer.unref?.();
    }
    req.on("close", finish);
    res.on("close", finish);
  }
}

function includeParam(q: URLSearchParams): IncludeObject {
  const v = q.get("includeObject");
  return v === "None" || v === "Object" ? v : "Metadata";
}

export { StatusError, KINDS };

// An HTTP client of tapvip's Kubernetes-compatible API (and, for the verbs it uses, of a real
// Kubernetes API server): list + watch as an ObjectSource, so the node agent and the controller
// manager can run against a remote store exactly as against the in-process registry, plus
// get / create / update / patch / delete / apply.
//
// Watch: `?watch=true&resourceVersion=RV&allowWatchBookmarks=true`, a chunked stream of JSON
// lines. A stream the server ends cleanly (timeoutSeconds, server-side rotation) is resumed
// transparently from the last resourceVersion seen; an ERROR line (410 Gone when the
// resourceVersion was compacted) or a non-200 answer ends the watch with onClose(status); a
// broken connection ends it with onClose(503 status) so a Reflector resumes it. Errors of the
// unary verbs are thrown as ApiError carrying the server's Status (message with field and rule).

import { request as httpRequest, Agent as HttpAgent, type IncomingMessage, type ClientRequest } from "node:http";
import { request as httpsRequest, Agent as HttpsAgent } from "node:https";
import type { StoredObject } from "./db.js";
import type { Status } from "./types.js";
import type { ListOptions, ObjectList, ObjectSource, Watch, WatchHandlers, WatchOptions } from "./watch.js";

// ------------------------------------------------------------------ kinds

export interface ClientKind {
  kind: string;
  group: string;
  apiVersion: string;
  resource: string;
  namespaced: boolean;
  /** Names accepted on the command line (singular, plural, short names). */
  aliases: string[];
}

const k = (kind: string, group: string, resource: string, namespaced: boolean, short: string[]): ClientKind => ({
  kind,
  group,
  apiVersion: group ? `${group}/v1` : "v1",
  resource,
  namespaced,
  aliases: [kind.toLowerCase(), resource, ...short, ...(group ? [`${resource}.${group}`, `${kind.toLowerCase()}.${group}`] : [])],
});

/** The kinds tapvip serves, as the client addresses them. */
export const CLIENT_KINDS: readonly ClientKind[] = [
  k("Namespace", "", "namespaces", false, ["ns"]),
  k("Service", "", "services", true, ["svc"]),
  k("Endpoints", "", "endpoints", true, ["ep"]),
  k("EndpointSlice", "discovery.k8s.io", "endpointslices", true, []),
  k("Pod", "", "pods", true, ["po"]),
  k("Node", "", "nodes", false, ["no"]),
  k("Event", "", "events", true, ["ev"]),
];

/** A kind by its Kind name or any command-line alias (case-insensitive), or undefined. */
export function resolveKind(name: string): ClientKind | undefined {
  const n = name.toLowerCase();
  return CLIENT_KINDS.find((c) => c.kind.toLowerCase() === n || c.aliases.includes(n));
}

function kindInfo(kind: string): ClientKind {
  const c = resolveKind(kind);
  if (!c) throw new ApiError(clientStatus(400, "BadRequest", `the server doesn't have a resource type "${kind}"`));
  return c;
}

// ------------------------------------------------------------------ errors

/** An API error: the server's Status (or one made up for transport failures). */
export class ApiError extends Error {
  readonly code: number;
  constructor(readonly status: Status) {
    super(status.message ?? status.reason ?? "error");
    this.name = "ApiError";
    this.code = status.code ?? 500;
  }
}

export function clientStatus(code: number, reason: string, message: string): Status {
  return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, code };
}

/**
 * kubectl's rendering of a Status: `Error from server (Reason): message`, followed by each cause
 * (field: message) the message does not already contain.
 */
export function formatStatus(st: Status): string {
  const head = st.reason && st.reason !== "InternalError" ? `Error from server (${st.reason}): ` : "Error from server: ";
  const msg = st.message ?? st.reason ?? "unknown error";
  const lines = [`${head}${msg}`];
  for (const c of st.details?.causes ?? []) {
    const text = c.field ? `${c.field}: ${c.message ?? c.reason ?? ""}` : (c.message ?? "");
    if (text && !msg.includes(c.message ?? text)) lines.push(`  ${text}`);
  }
  return lines.join("\n");
}

function isStatus(v: unknown): v is Status {
  return !!v && typeof v === "object" && (v as { kind?: unknown }).kind === "Status";
}

// ------------------------------------------------------------------ the client

export interface ClientOptions {
  /** Base URL, e.g. http://127.0.0.1:6443. */
  server: string;
  /** Bearer token. */
  token?: string;
  /** CA certificate(s) to trust for https. */
  ca?: string | Buffer;
  /** Skip TLS verification (self-signed servers in tests). */
  insecureSkipTLSVerify?: boolean;
  /** Per-request timeout for unary calls, ms (default 30 s). */
  timeoutMs?: number;
  /** Field manager for server-side apply (default "tapvip"). */
  fieldManager?: string;
}

export interface ClientDeleteOptions {
  gracePeriodSeconds?: number;
  preconditions?: { uid?: string; resourceVersion?: string };
  dryRun?: boolean;
}

export type ClientPatchType = "merge" | "strategic" | "json" | "apply";

const PATCH_CT: Record<ClientPatchType, string> = {
  merge: "application/merge-patch+json",
  strategic: "application/strategic-merge-patch+json",
  json: "application/json-patch+json",
  apply: "application/apply-patch+yaml",
};

export type ApplyAction = "created" | "configured" | "unchanged";

interface Response {
  code: number;
  body: unknown;
}

export class ApiClient implements ObjectSource {
  readonly server: URL;
  private readonly opts: ClientOptions;
  private readonly agent: HttpAgent | HttpsAgent;
  private readonly watches = new Set<() => void>();

  constructor(opts: ClientOptions | string) {
    this.opts = typeof opts === "string" ? { server: opts } : opts;
    this.server = new URL(this.opts.server);
    if (this.server.protocol !== "http:" && this.server.protocol !== "https:") {
      throw new Error(`--server: expected an http:// or https:// URL, got ${JSON.stringify(this.opts.server)}`);
    }
    this.agent =
      this.server.protocol === "https:"
        ? new HttpsAgent({ keepAlive: true, ca: this.opts.ca, rejectUnauthorized: !this.opts.insecureSkipTLSVerify })
        : new HttpAgent({ keepAlive: true });
  }

  /** Ends open watches and idle connections. */
  close(): void {
    for (const stop of [...this.watches]) stop();
    this.watches.clear();
    this.agent.destroy();
  }

  // ---------------------------------------------------------------- paths

  /** The collection path of a kind, namespaced when the kind is and a namespace is given. */
  collectionPath(kind: string, namespace?: string): string {
    const c = kindInfo(kind);
    const base = c.group ? `/apis/${c.group}/v1` : "/api/v1";
    if (c.namespaced && namespace) return `${base}/namespaces/${encodeURIComponent(namespace)}/${c.resource}`;
    return `${base}/${c.resource}`;
  }

  objectPath(kind: string, namespace: string | undefined, name: string, subresource?: string): string {
    const c = kindInfo(kind);
    const p = `${this.collectionPath(kind, c.namespaced ? (namespace || "default") : undefined)}/${encodeURIComponent(name)}`;
    return subresource ? `${p}/${subresource}` : p;
  }

  // ---------------------------------------------------------------- transport

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    const h: Record<string, string> = { Accept: "application/json", "User-Agent": "tapvip-client", ...extra };
    if (this.opts.token) h.Authorization = `Bearer ${this.opts.token}`;
    return h;
  }

  private open(method: string, path: string, headers: Record<string, string>, cb: (res: IncomingMessage) => void): ClientRequest {
    const url = new URL(path, this.server);
    const fn = url.protocol === "https:" ? httpsRequest : httpRequest;
    return fn(url, { method, headers, agent: this.agent }, cb);
  }

  /** One request; resolves with the code and parsed JSON body (or text). Transport errors → 503 ApiError. */
  async request(method: string, path: string, body?: unknown, contentType = "application/json"): Promise<Response> {
    const payload = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
    const headers = this.headers(payload !== undefined ? { "Content-Type": contentType, "Content-Length": String(Buffer.byteLength(payload)) } : {});
    return await new Promise<Response>((resolve, reject) => {
      const req = this.open(method, path, headers, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let parsed: unknown = text;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            /* not JSON */
          }
          resolve({ code: res.statusCode ?? 0, body: parsed });
        });
        res.on("error", (e) => reject(transportError(this.server, e)));
      });
      req.setTimeout(this.opts.timeoutMs ?? 30_000, () => req.destroy(new Error("request timed out")));
      req.on("error", (e) => reject(transportError(this.server, e)));
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  /** A request whose non-2xx answer becomes an ApiError. */
  private async call<T>(method: string, path: string, body?: unknown, contentType?: string): Promise<{ code: number; body: T }> {
    const r = await this.request(method, path, body, contentType);
    if (r.code >= 200 && r.code < 300) return r as { code: number; body: T };
    if (isStatus(r.body)) throw new ApiError({ ...r.body, code: r.body.code ?? r.code });
    const text = typeof r.body === "string" ? r.body : JSON.stringify(r.body);
    throw new ApiError(clientStatus(r.code, r.code === 404 ? "NotFound" : "Unknown", `the server responded with ${r.code}: ${text ?? ""}`.trim()));
  }

  // ---------------------------------------------------------------- ObjectSource

  async list(kind: string, opts: ListOptions = {}): Promise<ObjectList> {
    const q = new URLSearchParams();
    if (opts.labelSelector) q.set("labelSelector", opts.labelSelector);
    if (opts.fieldSelector) q.set("fieldSelector", opts.fieldSelector);
    const qs = q.toString();
    const { body } = await this.call<{ items?: StoredObject[]; metadata?: { resourceVersion?: string } }>(
      "GET",
      `${this.collectionPath(kind, opts.namespace)}${qs ? `?${qs}` : ""}`,
    );
    const c = kindInfo(kind);
    // a list's items carry no apiVersion/kind on a real API server: fill them in
    const items = (body.items ?? []).map((it) => ({ ...it, apiVersion: it.apiVersion ?? c.apiVersion, kind: it.kind ?? c.kind }));
    return { items, resourceVersion: body.metadata?.resourceVersion ?? "" };
  }

  watch(kind: string, opts: WatchOptions, handlers: WatchHandlers): Watch {
    let stopped = false;
    let lastRV = opts.resourceVersion ?? "";
    let req: ClientRequest | undefined;
    let retry: NodeJS.Timeout | undefined;
    const stop = (): void => {
      if (stopped) return;
      stopped = true;
      this.watches.delete(stop);
      if (retry) clearTimeout(retry);
      req?.destroy();
    };
    const end = (err?: Status): void => {
      if (stopped) return;
      stop();
      handlers.onClose?.(err);
    };
    const connect = (): void => {
      if (stopped) return;
      const q = new URLSearchParams({ watch: "true", allowWatchBookmarks: "true" });
      if (lastRV) q.set("resourceVersion", lastRV);
      if (opts.labelSelector) q.set("labelSelector", opts.labelSelector);
      if (opts.fieldSelector) q.set("fieldSelector", opts.fieldSelector);
      let path: string;
      try {
        path = `${this.collectionPath(kind, opts.namespace)}?${q.toString()}`;
      } catch (e) {
        queueMicrotask(() => end(e instanceof ApiError ? e.status : clientStatus(400, "BadRequest", String(e))));
        return;
      }
      let sawData = false;
      let finished = false;
      const r = this.open("GET", path, this.headers(), (res) => {
        if (res.statusCode !== 200) {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            finished = true;
            let st: Status;
            try {
              const v = JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown;
              st = isStatus(v) ? { ...v, code: v.code ?? res.statusCode } : clientStatus(res.statusCode ?? 500, "Unknown", `watch: HTTP ${res.statusCode}`);
            } catch {
              st = clientStatus(res.statusCode ?? 500, "Unknown", `watch: HTTP ${res.statusCode}`);
            }
            end(st);
          });
          return;
        }
        res.setEncoding("utf8");
        let buf = "";
        res.on("data", (chunk: string) => {
          if (stopped) return;
          buf += chunk;
          let i: number;
          while ((i = buf.indexOf("\n")) >= 0) {
            const line = buf.slice(0, i).trim();
            buf = buf.slice(i + 1);
            if (!line) continue;
            let ev: { type: string; object: StoredObject | Status };
            try {
              ev = JSON.parse(line);
            } catch {
              continue;
            }
            if (ev.type === "ERROR") {
              finished = true;
              const st = isStatus(ev.object) ? ev.object : clientStatus(500, "InternalError", "watch error");
              end(st);
              return;
            }
            const obj = ev.object as StoredObject;
            if (!obj || typeof obj !== "object") continue;
            sawData = true;
            const rv = obj.metadata?.resourceVersion;
            if (rv) lastRV = rv;
            if (ev.type === "ADDED" || ev.type === "MODIFIED" || ev.type === "DELETED" || ev.type === "BOOKMARK") {
              handlers.onEvent({ type: ev.type, object: obj });
            }
            if (stopped) return;
          }
        });
        res.on("end", () => {
          if (finished || stopped) return;
          finished = true;
          // the server closed the stream cleanly: resume from the last resourceVersion seen
          retry = setTimeout(connect, sawData ? 0 : 200);
          retry.unref?.();
        });
        res.on("error", () => undefined);
        res.on("close", () => {
          if (!finished && !stopped) {
            finished = true;
            end(clientStatus(503, "ServiceUnavailable", "watch: connection lost"));
          }
        });
      });
      r.on("error", (e) => {
        if (finished || stopped) return;
        finished = true;
        end(transportError(this.server, e).status);
      });
      r.end();
      req = r;
    };
    this.watches.add(stop);
    connect();
    return { stop };
  }

  // ---------------------------------------------------------------- CRUD

  async get<T = StoredObject>(kind: string, namespace: string | undefined, name: string): Promise<T> {
    return (await this.call<T>("GET", this.objectPath(kind, namespace, name))).body;
  }

  /** The object, or undefined on 404. */
  async find<T = StoredObject>(kind: string, namespace: string | undefined, name: string): Promise<T | undefined> {
    try {
      return await this.get<T>(kind, namespace, name);
    } catch (e) {
      if (e instanceof ApiError && e.code === 404) return undefined;
      throw e;
    }
  }

  async create<T extends object = StoredObject>(kind: string, obj: T, opts: { namespace?: string; dryRun?: boolean } = {}): Promise<T> {
    const c = kindInfo(kind);
    const o = obj as unknown as StoredObject;
    const ns = c.namespaced ? (opts.namespace || o.metadata?.namespace || "default") : undefined;
    const body = { ...o, apiVersion: c.apiVersion, kind: c.kind };
    return (await this.call<T>("POST", `${this.collectionPath(kind, ns)}${opts.dryRun ? "?dryRun=All" : ""}`, body)).body;
  }

  async update<T extends object = StoredObject>(
    kind: string,
    obj: T,
    opts: { namespace?: string; name?: string; subresource?: "status"; dryRun?: boolean } = {},
  ): Promise<T> {
    const c = kindInfo(kind);
    const o = obj as unknown as StoredObject;
    const name = opts.name ?? o.metadata?.name ?? "";
    const ns = opts.namespace || o.metadata?.namespace;
    const body = { ...o, apiVersion: c.apiVersion, kind: c.kind };
    return (await this.call<T>("PUT", `${this.objectPath(kind, ns, name, opts.subresource)}${opts.dryRun ? "?dryRun=All" : ""}`, body)).body;
  }

  async patch<T = StoredObject>(
    kind: string,
    namespace: string | undefined,
    name: string,
    type: ClientPatchType,
    body: unknown,
    opts: { subresource?: "status"; force?: boolean } = {},
  ): Promise<T> {
    const q = new URLSearchParams();
    if (type === "apply") {
      q.set("fieldManager", this.opts.fieldManager ?? "tapvip");
      if (opts.force ?? true) q.set("force", "true");
    }
    const qs = q.toString();
    const text = typeof body === "string" ? body : JSON.stringify(body);
    return (await this.call<T>("PATCH", `${this.objectPath(kind, namespace, name, opts.subresource)}${qs ? `?${qs}` : ""}`, text, PATCH_CT[type])).body;
  }

  /** Deletes; resolves with the deleted (or, for graceful deletion, the marked) object. */
  async delete<T = StoredObject>(kind: string, namespace: string | undefined, name: string, opts: ClientDeleteOptions = {}): Promise<T> {
    const body: Record<string, unknown> = { kind: "DeleteOptions", apiVersion: "v1" };
    if (opts.gracePeriodSeconds !== undefined) body.gracePeriodSeconds = opts.gracePeriodSeconds;
    if (opts.preconditions) body.preconditions = opts.preconditions;
    if (opts.dryRun) body.dryRun = ["All"];
    return (await this.call<T>("DELETE", this.objectPath(kind, namespace, name), body)).body;
  }

  /**
   * Creates the object or, when it exists, applies it server-side (apply patch: the manifest
   * merged into the live object, as `kubectl apply --server-side`). Reports whether anything
   * changed.
   */
  async apply<T extends object = StoredObject>(obj: T, opts: { namespace?: string } = {}): Promise<{ object: T; action: ApplyAction }> {
    const o = structuredClone(obj) as unknown as StoredObject;
    if (!o || typeof o !== "object" || typeof o.kind !== "string") throw new ApiError(clientStatus(400, "BadRequest", "apply: object has no kind"));
    const c = kindInfo(o.kind);
    o.metadata ??= {};
    const name = o.metadata.name;
    if (!name) {
      if (typeof o.metadata.generateName === "string") return { object: await this.create(c.kind, o as unknown as T, opts), action: "created" };
      throw new ApiError(clientStatus(400, "BadRequest", `${c.resource}: metadata.name: Required value: name or generateName is required`));
    }
    const ns = c.namespaced ? (opts.namespace || o.metadata.namespace || "default") : undefined;
    if (c.namespaced) o.metadata.namespace = ns;
    const live = await this.find<StoredObject>(c.kind, ns, name);
    if (!live) {
      try {
        return { object: await this.create(c.kind, o as unknown as T, { namespace: ns }), action: "created" };
      } catch (e) {
        if (!(e instanceof ApiError && e.code === 409 && e.status.reason === "AlreadyExists")) throw e;
      }
    }
    delete o.metadata.resourceVersion;
    delete o.metadata.uid;
    delete o.metadata.creationTimestamp;
    delete (o.metadata as Record<string, unknown>).managedFields;
    o.apiVersion = c.apiVersion;
    o.kind = c.kind;
    const out = await this.patch<StoredObject>(c.kind, ns, name, "apply", JSON.stringify(o));
    const action: ApplyAction = live && live.metadata.resourceVersion === out.metadata.resourceVersion ? "unchanged" : "configured";
    return { object: out as unknown as T, action };
  }
}

function transportError(server: URL, e: Error): ApiError {
  const code = (e as NodeJS.ErrnoException).code;
  const msg =
    code === "ECONNREFUSED"
      ? `the connection to the server ${server.host} was refused - did you specify the right host or port?`
      : `unable to reach the server ${server.host}: ${e.message}`;
  return new ApiError(clientStatus(503, "ServiceUnavailable", msg));
}

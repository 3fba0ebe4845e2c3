// The registry: create/get/list/update/patch/delete/deleteCollection and list+watch for
// Namespace, Service, Endpoints, EndpointSlice, Pod and Node over the durable Store.
//
// Every write runs as one Store transaction: defaulting → allocation (ClusterIP, NodePorts,
// healthCheckNodePort, LoadBalancer ingress IP) → validation → object + event + allocation rows.
// In-memory allocators mirror the allocation table; an AllocOp records what a write did to them
// and undoes it when the transaction fails, so a failed write allocates nothing.
// Errors are thrown as StatusError carrying a Kubernetes Status (HTTP code in status.code).

import { randomUUID, randomBytes } from "node:crypto";
import { Store, GoneError, type StoreEvent, type StoreOptions, type StoredObject } from "./db.js";
import {
  AllocationError,
  IPAllocator,
  PortAllocator,
  DEFAULT_NODE_PORT_RANGE,
  type RandomSource,
} from "./allocators.js";
import {
  defaultEndpointSlice,
  defaultEndpoints,
  defaultService,
  isHeadless,
  needsClusterIP,
  needsHealthCheck,
  needsNodePort,
} from "./defaults.js";
import { parseIP, parseCIDR, cidrContains } from "./net.js";
import type { EndpointSlice, Endpoints, Namespace, ObjectMeta, Pod, Service, Status } from "./types.js";
import {
  fieldErrors,
  invalidStatus,
  isDNS1123Subdomain,
  isValidPortNum,
  validateDNS1123Label,
  validateEndpointSlice,
  validateEndpoints,
  validateNamespace,
  validateObjectMeta,
  validateObjectMetaUpdate,
  validateService,
  isValidIP,
  type FieldError,
} from "./validation.js";
import {
  SelectorError,
  compileFilter,
  matchesFilter,
  type ListOptions,
  type ObjectList,
  type ObjectSource,
  type Watch,
  type WatchEvent,
  type WatchHandlers,
  type WatchOptions,
} from "./watch.js";
import { applyPatch, PatchError, type PatchType } from "./api/patch.js";
import { podDeletionPlan, podDueForRemoval } from "./controllers/pods.js";

// ------------------------------------------------------------------ kinds

export interface Node {
  apiVersion: "v1";
  kind: "Node";
  metadata: ObjectMeta;
  spec?: { podCIDR?: string; podCIDRs?: string[]; unschedulable?: boolean; [k: string]: unknown };
  status?: {
    addresses?: { type: string; address: string }[];
    conditions?: { type: string; status: string; [k: string]: unknown }[];
    nodeInfo?: Record<string, string>;
    [k: string]: unknown;
  };
}

export type Kind = "Namespace" | "Service" | "Endpoints" | "EndpointSlice" | "Pod" | "Node" | "Event";

export interface KindInfo {
  kind: Kind;
  group: string;
  version: string;
  apiVersion: string;
  /** Plural resource name, e.g. "services". */
  resource: string;
  singular: string;
  namespaced: boolean;
  shortNames: string[];
  /** Subresources served (e.g. "status"). */
  subresources: string[];
  /** PUT on a missing object creates it. */
  createOnUpdate: boolean;
}

export const KINDS: Readonly<Record<Kind, KindInfo>> = {
  Namespace: info("Namespace", "", "namespaces", false, ["ns"], ["status"], false),
  Service: info("Service", "", "services", true, ["svc"], ["status"], false),
  Endpoints: info("Endpoints", "", "endpoints", true, ["ep"], [], true),
  EndpointSlice: info("EndpointSlice", "discovery.k8s.io", "endpointslices", true, [], [], true),
  Pod: info("Pod", "", "pods", true, ["po"], ["status"], false),
  Node: info("Node", "", "nodes", false, ["no"], ["status"], false),
  // core/v1 Events: written by the controller manager (allocation failures, controller errors),
  // read by `tapvip describe` and `kubectl get events`.
  Event: info("Event", "", "events", true, ["ev"], [], false),
};

function info(
  kind: Kind,
  group: string,
  resource: string,
  namespaced: boolean,
  shortNames: string[],
  subresources: string[],
  createOnUpdate: boolean,
): KindInfo {
  const version = "v1";
  return {
    kind,
    group,
    version,
    apiVersion: group ? `${group}/${version}` : version,
    resource,
    singular: kind.toLowerCase(),
    namespaced,
    shortNames,
    subresources,
    createOnUpdate,
  };
}

export function isKind(k: string): k is Kind {
  return Object.prototype.hasOwnProperty.call(KINDS, k);
}

/** Kind by plural resource name and API group. */
export function kindForResource(group: string, resource: string): KindInfo | undefined {
  return Object.values(KINDS).find((k) => k.group === group && k.resource === resource);
}

// ------------------------------------------------------------------ Status errors

export class StatusError extends Error {
  readonly code: number;
  constructor(readonly status: Status) {
    super(status.message ?? status.reason ?? "error");
    this.name = "StatusError";
    this.code = status.code ?? 500;
  }
}

function qualified(info: KindInfo): string {
  return info.group ? `${info.resource}.${info.group}` : info.resource;
}

function status(code: number, reason: string, message: string, details?: Status["details"]): Status {
  const s: Status = { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, code };
  if (details) s.details = details;
  return s;
}

export const statusErrors = {
  notFound: (info: KindInfo, name: string) =>
    new StatusError(
      status(404, "NotFound", `${qualified(info)} "${name}" not found`, { name, group: info.group || undefined, kind: info.resource }),
    ),
  alreadyExists: (info: KindInfo, name: string) =>
    new StatusError(
      status(409, "AlreadyExists", `${qualified(info)} "${name}" already exists`, { name, group: info.group || undefined, kind: info.resource }),
    ),
  conflict: (info: KindInfo, name: string, why: string) =>
    new StatusError(
      status(409, "Conflict", `Operation cannot be fulfilled on ${qualified(info)} "${name}": ${why}`, {
        name,
        group: info.group || undefined,
        kind: info.resource,
      }),
    ),
  badRequest: (message: string) => new StatusError(status(400, "BadRequest", message)),
  forbidden: (info: KindInfo, name: string, why: string) =>
    new StatusError(
      status(403, "Forbidden", `${qualified(info)} "${name}" is forbidden: ${why}`, { name, group: info.group || undefined, kind: info.resource }),
    ),
  internal: (message: string) =>
    new StatusError(status(500, "InternalError", `Internal error occurred: ${message}`, { causes: [{ message }] })),
  gone: (message: string) => new StatusError(status(410, "Expired", message)),
  methodNotAllowed: (message: string) => new StatusError(status(405, "MethodNotAllowed", message)),
  invalid: (kind: string, name: string, errs: readonly FieldError[]) => new StatusError(invalidStatus(kind, name, errs)),
};

/** Wraps any thrown value as a Status. */
export function toStatus(e: unknown): Status {
  if (e instanceof StatusError) return e.status;
  if (e instanceof GoneError) return statusErrors.gone(e.message).status;
  if (e instanceof SelectorError || e instanceof PatchError) return statusErrors.badRequest(e.message).status;
  return statusErrors.internal(e instanceof Error ? e.message : String(e)).status;
}

// ------------------------------------------------------------------ allocations of a Service

export type Pool = "serviceIP" | "nodePort" | "lbIP";

export interface ServiceAllocations {
  serviceIP: string[];
  nodePort: number[];
  lbIP: string[];
}

export interface AllocationRanges {
  serviceCIDR: string;
  nodePortRange: string;
  lbPool?: string;
}

function inCIDR(cidr: string | undefined, ip: string): boolean {
  if (!cidr) return false;
  const c = parseCIDR(cidr);
  const p = parseIP(ip);
  return !!c && !!p && cidrContains(c, p);
}

/**
 * What a stored Service holds in each pool: its clusterIPs (not None), its distinct nodePorts
 * and healthCheckNodePort, and the LoadBalancer ingress IPs inside the pool (only for
 * LoadBalancer services without a loadBalancerClass). The repair pass and the crash test use it.
 */
export function serviceAllocations(svc: Service): ServiceAllocations {
  const spec = svc.spec ?? {};
  const out: ServiceAllocations = { serviceIP: [], nodePort: [], lbIP: [] };
  if (needsClusterIP(svc) && !isHeadless(svc)) {
    for (const ip of spec.clusterIPs ?? (spec.clusterIP ? [spec.clusterIP] : [])) {
      if (ip && ip !== "None" && !out.serviceIP.includes(ip)) out.serviceIP.push(ip);
    }
  }
  if (needsNodePort(svc)) {
    for (const p of spec.ports ?? []) if (p.nodePort && !out.nodePort.includes(p.nodePort)) out.nodePort.push(p.nodePort);
  }
  if (needsHealthCheck(svc) && spec.healthCheckNodePort && !out.nodePort.includes(spec.healthCheckNodePort)) {
    out.nodePort.push(spec.healthCheckNodePort);
  }
  if (spec.type === "LoadBalancer" && !spec.loadBalancerClass) {
    for (const ing of svc.status?.loadBalancer?.ingress ?? []) if (ing.ip && !out.lbIP.includes(ing.ip)) out.lbIP.push(ing.ip);
  }
  return out;
}

export interface RepairReport {
  /** Rows in the allocation table no stored Service holds (released). */
  leaked: { pool: string; value: string; owner: string }[];
  /** Values stored Services hold that the table lacked (added). */
  missing: { pool: string; value: string; owner: string }[];
  /** Values held by more than one Service (the first owner keeps it). */
  duplicates: { pool: string; value: string; owners: string[] }[];
  /** Values outside the configured ranges (not tracked). */
  outOfRange: { pool: string; value: string; owner: string }[];
}

// ------------------------------------------------------------------ allocation operation

class AllocOp {
  private readonly done: { pool: Pool; value: string; op: "add" | "del" }[] = [];

  constructor(private readonly reg: Registry) {}

  private alloc(pool: Pool): IPAllocator | PortAllocator | undefined {
    return pool === "serviceIP" ? this.reg.serviceIPs : pool === "nodePort" ? this.reg.nodePorts : this.reg.lbIPs;
  }

  allocate(pool: Pool, value: string, owner: string): void {
    const a = this.alloc(pool)!;
    if (a instanceof PortAllocator) a.allocate(Number(value));
    else a.allocate(value);
    this.done.push({ pool, value, op: "add" });
    this.reg.store.addAllocation(pool, value, owner);
  }

  next(pool: Pool, owner: string): string {
    const a = this.alloc(pool)!;
    const value = String(a.allocateNext());
    this.done.push({ pool, value, op: "add" });
    this.reg.store.addAllocation(pool, value, owner);
    return value;
  }

  release(pool: Pool, value: string): void {
    const a = this.alloc(pool);
    if (!a) return;
    const has = a instanceof PortAllocator ? a.has(Number(value)) : a.has(value);
    if (!has) return;
    if (a instanceof PortAllocator) a.release(Number(value));
    else a.release(value);
    this.done.push({ pool, value, op: "del" });
    this.reg.store.removeAllocation(pool, value);
  }

  rollback(): void {
    for (const d of this.done.reverse()) {
      const a = this.alloc(d.pool)!;
      if (d.op === "add") {
        if (a instanceof PortAllocator) a.release(Number(d.value));
        else a.release(d.value);
      } else if (a instanceof PortAllocator) a.allocate(Number(d.value));
      else a.allocate(d.value);
    }
    this.done.length = 0;
  }
}

class DryRunResult<T> {
  constructor(readonly value: T) {}
}

// ------------------------------------------------------------------ helpers

function now(clock?: () => Date): string {
  return (clock ? clock() : new Date()).toISOString().replace(/\.\d{3}Z$/, "Z");
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== "object") return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => deepEqual(x, bb[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const ak = Object.keys(ao).filter((k) => ao[k] !== undefined);
  const bk = Object.keys(bo).filter((k) => bo[k] !== undefined);
  return ak.length === bk.length && ak.every((k) => deepEqual(ao[k], bo[k]));
}

/** Everything except metadata and status: what bumps metadata.generation. */
function specOf(o: StoredObject): Record<string, unknown> {
  const { metadata: _m, status: _s, apiVersion: _a, kind: _k, ...rest } = o;
  return rest;
}

const SUFFIX_CHARS = "bcdfghjklmnpqrstvwxz2456789";
function generateSuffix(): string {
  const b = randomBytes(5);
  let s = "";
  for (const x of b) s += SUFFIX_CHARS[x % SUFFIX_CHARS.length];
  return s;
}

export interface RegistryOptions {
  /** Service CIDR, default 10.96.0.0/12. */
  serviceCIDR?: string;
  /** NodePort range, default 30000-32767. */
  nodePortRange?: string;
  /** LoadBalancer ingress pool (CIDR); none by default (LoadBalancer services stay pending). */
  lbPool?: string;
  /** Random source for dynamic allocation (deterministic in tests). */
  random?: RandomSource;
  /** Clock for timestamps and pod grace periods. */
  clock?: () => Date;
  /** Create namespaces default/kube-system and the default/kubernetes Service. Default true. */
  bootstrap?: boolean;
  /** A deleted namespace stays Terminating this long before it and its content go. Default 500; 0 = at once. */
  namespaceGraceMs?: number;
  /** Finish pod deletions when their grace period ends (timers). Default true. */
  podGraceTimers?: boolean;
  store?: StoreOptions;
}

export interface WriteOptions {
  /** Validate and allocate, then roll back (dryRun=All). */
  dryRun?: boolean;
}

export interface UpdateOptions extends WriteOptions {
  subresource?: "status";
}

export interface DeleteOptions extends WriteOptions {
  preconditions?: { uid?: string; resourceVersion?: string };
  /** Pods: seconds until the pod is removed (default its terminationGracePeriodSeconds, 30). */
  gracePeriodSeconds?: number;
}

type AnyObject = StoredObject;

const PROTECTED_NAMESPACES = new Set(["default", "kube-system", "kube-public"]);

// ------------------------------------------------------------------ the registry

export class Registry implements ObjectSource {
  readonly store: Store;
  serviceIPs: IPAllocator;
  nodePorts: PortAllocator;
  lbIPs: IPAllocator | undefined;
  readonly ranges: AllocationRanges;
  readonly repairReport: RepairReport;
  private readonly random: RandomSource | undefined;
  private readonly clock: (() => Date) | undefined;
  private readonly graceTimers = new Map<string, NodeJS.Timeout>();
  private readonly podGraceTimers: boolean;
  private closed = false;
  private currentOp: AllocOp | undefined;
  private readonly namespaceGraceMs: number;
  private readonly nsTimers = new Set<NodeJS.Timeout>();

  /** Opens (or creates) the store in `dir`, repairs allocations and bootstraps. */
  static open(dir: string, opts: RegistryOptions = {}): Registry {
    return new Registry(new Store(dir, opts.store), opts);
  }

  constructor(store: Store, opts: RegistryOptions = {}) {
    this.store = store;
    this.random = opts.random;
    this.clock = opts.clock;
    this.podGraceTimers = opts.podGraceTimers ?? true;
    this.namespaceGraceMs = opts.namespaceGraceMs ?? 500;
    this.ranges = {
      serviceCIDR: opts.serviceCIDR ?? "10.96.0.0/12",
      nodePortRange: opts.nodePortRange ?? DEFAULT_NODE_PORT_RANGE,
      lbPool: opts.lbPool,
    };
    const fresh = this.freshAllocators();
    this.serviceIPs = fresh.serviceIPs;
    this.nodePorts = fresh.nodePorts;
    this.lbIPs = fresh.lbIPs;
    this.repairReport = this.repair();
    if (opts.bootstrap ?? true) this.bootstrap();
    this.resumePodGrace();
    for (const ns of this.store.list("Namespace")) {
      if ((ns.metadata as ObjectMeta).deletionTimestamp) this.scheduleNamespaceFinalize(ns.metadata.name ?? "", ns.metadata.uid ?? "");
    }
  }

  private freshAllocators(): { serviceIPs: IPAllocator; nodePorts: PortAllocator; lbIPs: IPAllocator | undefined } {
    const r = this.random ? { random: this.random } : {};
    return {
      serviceIPs: new IPAllocator(this.ranges.serviceCIDR, r),
      nodePorts: new PortAllocator(this.ranges.nodePortRange, r),
      lbIPs: this.ranges.lbPool ? new IPAllocator(this.ranges.lbPool, { ...r, reserveFirst: false }) : undefined,
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.graceTimers.values()) clearTimeout(t);
    for (const t of this.nsTimers) clearTimeout(t);
    this.nsTimers.clear();
    this.graceTimers.clear();
    this.store.close();
  }

  // ---------------------------------------------------------------- repair and bootstrap

  /** What the stored Services hold, per pool, with duplicates and out-of-range values split out. */
  derivedAllocations(): { rows: { pool: Pool; value: string; owner: string }[]; report: Omit<RepairReport, "leaked" | "missing"> } {
    const rows: { pool: Pool; value: string; owner: string }[] = [];
    const owners = new Map<string, string[]>();
    const outOfRange: RepairReport["outOfRange"] = [];
    const probe = this.freshAllocators();
    for (const obj of this.store.list("Service")) {
      const svc = obj as unknown as Service;
      const owner = `${svc.metadata.namespace}/${svc.metadata.name}`;
      const a = serviceAllocations(svc);
      const add = (pool: Pool, value: string, ok: boolean): void => {
        if (!ok) {
          outOfRange.push({ pool, value, owner });
          return;
        }
        const k = `${pool}:${value}`;
        const list = owners.get(k);
        if (list) {
          list.push(owner);
          return;
        }
        owners.set(k, [owner]);
        rows.push({ pool, value, owner });
      };
      for (const ip of a.serviceIP) add("serviceIP", ip, probe.serviceIPs.contains(ip));
      for (const p of a.nodePort) add("nodePort", String(p), probe.nodePorts.contains(p));
      if (probe.lbIPs) for (const ip of a.lbIP) if (probe.lbIPs.contains(ip)) add("lbIP", ip, true);
    }
    const duplicates: RepairReport["duplicates"] = [];
    for (const [k, list] of owners) {
      if (list.length > 1) {
        const i = k.indexOf(":");
        duplicates.push({ pool: k.slice(0, i), value: k.slice(i + 1), owners: list });
      }
    }
    return { rows, report: { duplicates, outOfRange } };
  }

  /**
   * Rebuilds the allocation table and the in-memory allocators from the stored Services
   * (upstream's repair controllers, run once at start-up).
   */
  repair(): RepairReport {
    const { rows, report } = this.derivedAllocations();
    const key = (r: { pool: string; value: string }): string => `${r.pool}:${r.value}`;
    const table = this.store.allocations();
    const derivedKeys = new Map(rows.map((r) => [key(r), r]));
    const tableKeys = new Map(table.map((r) => [key(r), r]));
    const leaked = table.filter((r) => {
      const d = derivedKeys.get(key(r));
      return !d || d.owner !== r.owner;
    });
    const missing = rows.filter((r) => {
      const t = tableKeys.get(key(r));
      return !t || t.owner !== r.owner;
    });
    if (leaked.length > 0 || missing.length > 0) this.store.transaction(() => this.store.replaceAllocations(rows));
    const fresh = this.freshAllocators();
    for (const r of rows) {
      if (r.pool === "serviceIP") fresh.serviceIPs.allocate(r.value);
      else if (r.pool === "nodePort") fresh.nodePorts.allocate(Number(r.value));
      else fresh.lbIPs?.allocate(r.value);
    }
    this.serviceIPs = fresh.serviceIPs;
    this.nodePorts = fresh.nodePorts;
    this.lbIPs = fresh.lbIPs;
    return { leaked, missing, ...report };
  }

  private bootstrap(): void {
    for (const ns of ["default", "kube-system", "kube-public", "kube-node-lease"]) {
      if (!this.store.get("Namespace", "", ns)) {
        this.create("Namespace", { apiVersion: "v1", kind: "Namespace", metadata: { name: ns } });
      }
    }
    if (!this.store.get("Service", "default", "kubernetes")) {
      const first = this.serviceIPs.firstAddress();
      const svc: Service = {
        apiVersion: "v1",
        kind: "Service",
        metadata: { name: "kubernetes", namespace: "default", labels: { component: "apiserver", provider: "kubernetes" } },
        spec: {
          type: "ClusterIP",
          ports: [{ name: "https", protocol: "TCP", port: 443, targetPort: 6443 }],
          sessionAffinity: "None",
        },
      };
      if (!this.serviceIPs.has(first)) svc.spec!.clusterIP = first;
      this.create("Service", svc);
    }
  }

  // ---------------------------------------------------------------- transactions

  private write<T>(dryRun: boolean | undefined, fn: (op: AllocOp) => T): T {
    if (this.closed) throw statusErrors.internal("the store is closed");
    if (this.currentOp) return fn(this.currentOp); // nested: the outer write owns the rollback
    const op = new AllocOp(this);
    this.currentOp = op;
    try {
      return this.store.transaction(() => {
        const r = fn(op);
        if (dryRun) throw new DryRunResult(r);
        return r;
      });
    } catch (e) {
      op.rollback();
      if (e instanceof DryRunResult) return e.value as T;
      if (e instanceof AllocationError) {
        throw e.code === 500 ? statusErrors.internal(e.message) : statusErrors.badRequest(e.message);
      }
      throw e;
    } finally {
      this.currentOp = undefined;
    }
  }

  private info(kind: string): KindInfo {
    if (!isKind(kind)) throw statusErrors.badRequest(`unknown kind ${JSON.stringify(kind)}`);
    return KINDS[kind];
  }

  private requireNamespace(ns: string): void {
    const o = this.store.get("Namespace", "", ns);
    if (!o) throw statusErrors.notFound(KINDS.Namespace, ns);
    if ((o.metadata as ObjectMeta).deletionTimestamp) {
      throw statusErrors.forbidden(KINDS.Namespace, ns, `unable to create new content in namespace ${ns} because it is being terminated`);
    }
  }

  // ---------------------------------------------------------------- reads

  get<T = AnyObject>(kind: string, namespace: string | undefined, name: string): T {
    const info = this.info(kind);
    const obj = this.store.get(kind, info.namespaced ? (namespace ?? "default") : "", name);
    if (!obj) throw statusErrors.notFound(info, name);
    return obj as T;
  }

  /** The object or undefined. */
  find<T = AnyObject>(kind: string, namespace: string | undefined, name: string): T | undefined {
    const info = this.info(kind);
    return this.store.get(kind, info.namespaced ? (namespace ?? "default") : "", name) as T | undefined;
  }

  listSync(kind: string, opts: ListOptions = {}): ObjectList {
    const info = this.info(kind);
    let filter;
    try {
      filter = compileFilter(info.namespaced ? opts : { ...opts, namespace: undefined });
    } catch (e) {
      throw statusErrors.badRequest((e as Error).message);
    }
    const items = this.store.list(kind, filter.namespace).filter((o) => matchesFilter(filter, o));
    return { items, resourceVersion: String(this.store.currentRV()) };
  }

  async list(kind: string, opts: ListOptions = {}): Promise<ObjectList> {
    return this.listSync(kind, opts);
  }

  // ---------------------------------------------------------------- create

  /** A copy of a client's object with the kind, apiVersion and metadata this kind requires. */
  private normalizeInput(kind: string, input: object): { info: KindInfo; obj: AnyObject; meta: ObjectMeta } {
    const info = this.info(kind);
    const obj = structuredClone(input) as unknown as AnyObject;
    if (obj.kind !== undefined && obj.kind !== kind) {
      throw statusErrors.badRequest(`the kind of the provided object (${String(obj.kind)}) does not match ${kind}`);
    }
    obj.kind = kind;
    obj.apiVersion = info.apiVersion;
    if (!obj.metadata || typeof obj.metadata !== "object") obj.metadata = {};
    return { info, obj, meta: obj.metadata as ObjectMeta };
  }

  create<T extends AnyObject | object>(kind: string, input: T, opts: WriteOptions & { namespace?: string } = {}): T {
    const { info, obj, meta } = this.normalizeInput(kind, input);
    if (info.namespaced) {
      if (opts.namespace && meta.namespace && meta.namespace !== opts.namespace) {
        throw statusErrors.badRequest("the namespace of the provided object does not match the namespace sent on the request");
      }
      meta.namespace = meta.namespace || opts.namespace || "default";
    } else {
      delete meta.namespace;
    }
    if (!meta.name && meta.generateName) meta.name = `${meta.generateName}${generateSuffix()}`;
    return this.write(opts.dryRun, (op) => {
      const name = meta.name ?? "";
      const ns = meta.namespace ?? "";
      if (info.namespaced && ns) this.requireNamespace(ns);
      if (name && this.store.get(kind, ns, name)) throw statusErrors.alreadyExists(info, name);
      delete meta.resourceVersion;
      delete meta.deletionTimestamp;
      delete meta.deletionGracePeriodSeconds;
      delete (meta as Record<string, unknown>).managedFields;
      delete (meta as Record<string, unknown>).selfLink;
      meta.uid = randomUUID();
      meta.creationTimestamp = now(this.clock);
      meta.generation = 1;
      const prepared = this.prepare(kind, obj, undefined, op, false);
      return this.store.put(prepared, "ADDED") as unknown as T;
    });
  }

  // ---------------------------------------------------------------- update

  update<T extends AnyObject | object>(
    kind: string,
    input: T,
    opts: UpdateOptions & { namespace?: string; name?: string } = {},
  ): T {
    const { info, obj, meta } = this.normalizeInput(kind, input);
    if (info.namespaced) meta.namespace = meta.namespace || opts.namespace || "default";
    else delete meta.namespace;
    if (opts.namespace && info.namespaced && meta.namespace !== opts.namespace) {
      throw statusErrors.badRequest("the namespace of the provided object does not match the namespace sent on the request");
    }
    if (opts.name && !meta.name) meta.name = opts.name;
    if (opts.name && meta.name !== opts.name) {
      throw statusErrors.badRequest("the name of the object does not match the name on the URL");
    }
    const name = meta.name ?? "";
    const ns = meta.namespace ?? "";
    return this.write(opts.dryRun, (op) => {
      const old = this.store.get(kind, ns, name);
      if (!old) {
        if (info.createOnUpdate && !opts.subresource) {
          return this.create(kind, input, { namespace: ns, dryRun: false }) as T;
        }
        throw statusErrors.notFound(info, name);
      }
      return this.updateExisting(info, obj, old, op, opts.subresource) as unknown as T;
    });
  }

  private updateExisting(info: KindInfo, obj: AnyObject, old: AnyObject, op: AllocOp, subresource: "status" | undefined): AnyObject {
    const meta = obj.metadata as ObjectMeta;
    const oldMeta = old.metadata as ObjectMeta;
    const name = oldMeta.name ?? "";
    if (meta.resourceVersion && meta.resourceVersion !== oldMeta.resourceVersion) {
      throw statusErrors.conflict(info, name, "the object has been modified; please apply your changes to the latest version and try again");
    }
    if (meta.uid && meta.uid !== oldMeta.uid) {
      throw statusErrors.conflict(info, name, `Precondition failed: UID in precondition: ${meta.uid}, UID in object meta: ${oldMeta.uid}`);
    }
    let next: AnyObject;
    if (subresource === "status") {
      next = structuredClone(old);
      if (info.kind === "Service") {
        const st = (obj.status ?? {}) as Service["status"] & object;
        const cur = (next.status ?? {}) as Service["status"] & object;
        cur.loadBalancer = st.loadBalancer ?? {};
        next.status = cur;
      } else {
        next.status = obj.status;
      }
    } else {
      next = obj;
      if (info.kind === "Service" || info.kind === "Namespace" || info.kind === "Node") {
        if (old.status !== undefined) next.status = structuredClone(old.status);
        else delete next.status;
      }
    }
    const nm = next.metadata as ObjectMeta;
    nm.uid = oldMeta.uid;
    nm.creationTimestamp = oldMeta.creationTimestamp;
    nm.generation = oldMeta.generation ?? 1;
    if (oldMeta.deletionTimestamp) {
      nm.deletionTimestamp = oldMeta.deletionTimestamp;
      nm.deletionGracePeriodSeconds = oldMeta.deletionGracePeriodSeconds;
    } else {
      delete nm.deletionTimestamp;
      delete nm.deletionGracePeriodSeconds;
    }
    delete (nm as Record<string, unknown>).managedFields;
    nm.resourceVersion = oldMeta.resourceVersion;
    const metaErrs = validateObjectMetaUpdate(nm, oldMeta);
    if (metaErrs.length) throw statusErrors.invalid(info.kind, name, metaErrs);

    const prepared = this.prepare(info.kind, next, old, op, subresource === "status");
    if (!deepEqual(specOf(prepared), specOf(old))) prepared.metadata.generation = (oldMeta.generation ?? 1) + 1;
    if (deepEqual(prepared, old)) return old; // no-op: no new resourceVersion, no event
    const out = this.store.put(prepared, "MODIFIED", old);
    if (info.kind === "Pod" && nm.deletionTimestamp && podDueForRemoval(out as unknown as Pod, this.clock ? this.clock() : new Date())) {
      return this.deleteNow(out, op); // the last finalizer of a pod past its grace period is gone
    }
    return out;
  }

  // ---------------------------------------------------------------- patch

  patch<T = AnyObject>(
    kind: string,
    namespace: string | undefined,
    name: string,
    type: PatchType,
    body: unknown,
    opts: UpdateOptions = {},
  ): T {
    const info = this.info(kind);
    const ns = info.namespaced ? (namespace ?? "default") : "";
    return this.write(opts.dryRun, () => {
      const old = this.store.get(kind, ns, name);
      if (!old) {
        if (type === "apply" && !opts.subresource) {
          const obj = structuredClone(body) as AnyObject;
          obj.metadata = { ...(obj.metadata ?? {}), name, ...(info.namespaced ? { namespace: ns } : {}) };
          return this.create(kind, obj, { namespace: ns || undefined }) as T;
        }
        throw statusErrors.notFound(info, name);
      }
      let patched: AnyObject;
      try {
        patched = applyPatch(kind, type, old, body) as AnyObject;
      } catch (e) {
        if (e instanceof PatchError) throw statusErrors.badRequest(e.message);
        throw e;
      }
      if (!patched || typeof patched !== "object" || Array.isArray(patched)) throw statusErrors.badRequest("patch produced a non-object");
      patched.metadata ??= {};
      if (type === "apply") delete patched.metadata.resourceVersion;
      return this.update(kind, patched, { namespace: ns || undefined, name, subresource: opts.subresource }) as T;
    });
  }

  // ---------------------------------------------------------------- delete

  delete<T = AnyObject>(kind: string, namespace: string | undefined, name: string, opts: DeleteOptions = {}): T {
    const info = this.info(kind);
    const ns = info.namespaced ? (namespace ?? "default") : "";
    return this.write(opts.dryRun, (op) => {
      const old = this.store.get(kind, ns, name);
      if (!old) throw statusErrors.notFound(info, name);
      const pre = opts.preconditions;
      if (pre?.uid && pre.uid !== old.metadata.uid) {
        throw statusErrors.conflict(info, name, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${old.metadata.uid}`);
      }
      if (pre?.resourceVersion && pre.resourceVersion !== old.metadata.resourceVersion) {
        throw statusErrors.conflict(
          info,
          name,
          `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${old.metadata.resourceVersion}`,
        );
      }
      if (kind === "Namespace") {
        if (PROTECTED_NAMESPACES.has(name)) throw statusErrors.forbidden(info, name, "this namespace may not be deleted");
        if (this.namespaceGraceMs <= 0 || opts.gracePeriodSeconds === 0) return this.finalizeNamespace(old, op) as T;
        if ((old.metadata as ObjectMeta).deletionTimestamp) return old as T;
        // Terminating first (as upstream): new content is refused, then the contents and the
        // namespace go after a short delay.
        const next = structuredClone(old) as unknown as Namespace;
        next.metadata.deletionTimestamp = now(this.clock);
        next.status = { ...(next.status ?? {}), phase: "Terminating" };
        const out = this.store.put(next as unknown as AnyObject, "MODIFIED", old);
        if (!opts.dryRun) this.scheduleNamespaceFinalize(name, old.metadata.uid ?? "");
        return out as T;
      }
      if (kind === "Pod") {
        // Graceful deletion (upstream CheckGracefulDelete + BeforeDelete, as podDeletionPlan):
        // the pod is marked terminating (deletionTimestamp = now + grace) and removed when the
        // grace period ends (timer below, resumed at start-up); a shorter grace period moves the
        // deadline earlier; finalizers hold the marked pod until they are cleared.
        const nowMs = (this.clock ? this.clock() : new Date()).getTime();
        const plan = podDeletionPlan(old as unknown as Pod, nowMs, { gracePeriodSeconds: opts.gracePeriodSeconds });
        if (plan.removeNow && !plan.blockedByFinalizers) return this.deleteNow(old, op) as T;
        if (!plan.update) return old as T;
        const out = this.store.put(plan.update as unknown as AnyObject, "MODIFIED", old);
        if (!opts.dryRun && !plan.removeNow) this.scheduleGrace(ns, name, old.metadata.uid ?? "", Date.parse(plan.removeAt) - nowMs);
        return out as T;
      }
      return this.deleteNow(old, op) as T;
    });
  }

  private finalizeNamespace(ns: AnyObject, op: AllocOp): AnyObject {
    const name = ns.metadata.name ?? "";
    for (const k of Object.values(KINDS)) {
      if (!k.namespaced) continue;
      for (const o of this.store.list(k.kind, name)) this.deleteNow(o, op);
    }
    return this.store.remove(ns);
  }

  private scheduleNamespaceFinalize(name: string, uid: string): void {
    const t = setTimeout(() => {
      this.nsTimers.delete(t);
      if (this.closed) return;
      this.finishNamespaceDeletion(name, uid);
    }, this.namespaceGraceMs);
    t.unref?.();
    this.nsTimers.add(t);
  }

  /** Removes a Terminating namespace and everything in it now. */
  finishNamespaceDeletion(name: string, uid?: string): void {
    this.write(false, (op) => {
      const cur = this.store.get("Namespace", "", name);
      if (cur && (!uid || cur.metadata.uid === uid) && (cur.metadata as ObjectMeta).deletionTimestamp) this.finalizeNamespace(cur, op);
    });
  }

  private deleteNow(old: AnyObject, op: AllocOp): AnyObject {
    if (old.kind === "Service") {
      const a = serviceAllocations(old as unknown as Service);
      for (const ip of a.serviceIP) op.release("serviceIP", ip);
      for (const p of a.nodePort) op.release("nodePort", String(p));
      for (const ip of a.lbIP) op.release("lbIP", ip);
    }
    const key = `${old.metadata.namespace ?? ""}/${old.metadata.name ?? ""}`;
    if (old.kind === "Pod" && this.graceTimers.has(key)) {
      clearTimeout(this.graceTimers.get(key));
      this.graceTimers.delete(key);
    }
    return this.store.remove(old);
  }

  deleteCollection(kind: string, namespace: string | undefined, opts: ListOptions & DeleteOptions = {}): ObjectList {
    const info = this.info(kind);
    const items = this.listSync(kind, { ...opts, namespace: info.namespaced ? namespace : undefined }).items;
    const out: AnyObject[] = [];
    this.write(opts.dryRun, () => {
      for (const it of items) {
        out.push(this.delete(kind, it.metadata.namespace, it.metadata.name ?? "", { gracePeriodSeconds: opts.gracePeriodSeconds }));
      }
    });
    return { items: out, resourceVersion: String(this.store.currentRV()) };
  }

  // ---------------------------------------------------------------- pod grace periods

  private scheduleGrace(ns: string, name: string, uid: string, ms: number): void {
    if (!this.podGraceTimers) return;
    const key = `${ns}/${name}`;
    const prev = this.graceTimers.get(key);
    if (prev) clearTimeout(prev);
    const t = setTimeout(() => {
      this.graceTimers.delete(key);
      if (this.closed) return;
      try {
        this.finishPodDeletion(ns, name, uid);
      } catch {
        /* already gone */
      }
    }, Math.max(0, ms));
    t.unref?.();
    this.graceTimers.set(key, t);
  }

  /** Removes the terminating pod (its grace period has run out) unless finalizers still hold it. */
  private finishPodDeletion(ns: string, name: string, uid: string): void {
    this.write(false, (op) => {
      const cur = this.store.get("Pod", ns, name);
      const meta = cur?.metadata as ObjectMeta | undefined;
      if (cur && cur.metadata.uid === uid && meta?.deletionTimestamp && (meta.finalizers ?? []).length === 0) this.deleteNow(cur, op);
    });
  }

  /** Removes every terminating pod whose grace period has ended at `at`; returns how many. */
  sweepTerminatingPods(at: Date = this.clock ? this.clock() : new Date()): number {
    let n = 0;
    for (const p of this.store.list("Pod")) {
      if (podDueForRemoval(p as unknown as Pod, at)) {
        this.finishPodDeletion(p.metadata.namespace ?? "", p.metadata.name ?? "", p.metadata.uid ?? "");
        n++;
      }
    }
    return n;
  }

  private resumePodGrace(): void {
    const t = (this.clock ? this.clock() : new Date()).getTime();
    for (const p of this.store.list("Pod")) {
      const ts = (p.metadata as ObjectMeta).deletionTimestamp;
      if (ts) this.scheduleGrace(p.metadata.namespace ?? "", p.metadata.name ?? "", p.metadata.uid ?? "", Date.parse(ts) - t);
    }
  }

  // ---------------------------------------------------------------- per-kind preparation

  /** Defaulting, allocation and validation of a create (old undefined) or update. */
  private prepare(kind: string, obj: AnyObject, old: AnyObject | undefined, op: AllocOp, statusWrite: boolean): AnyObject {
    const name = obj.metadata.name ?? "";
    switch (kind) {
      case "Service":
        return this.prepareService(obj as unknown as Service, old as unknown as Service | undefined, op, statusWrite) as unknown as AnyObject;
      case "Endpoints": {
        const ep = defaultEndpoints(obj as unknown as Endpoints);
        const errs = validateEndpoints(ep, old as unknown as Endpoints | undefined);
        (ep.subsets ?? []).forEach((ss, i) => {
          (ss.addresses ?? []).forEach((a, j) => errs.push(...this.notClusterIP(a.ip, `subsets[${i}].addresses[${j}].ip`)));
          (ss.notReadyAddresses ?? []).forEach((a, j) =>
            errs.push(...this.notClusterIP(a.ip, `subsets[${i}].notReadyAddresses[${j}].ip`)),
          );
        });
        if (errs.length) throw statusErrors.invalid("Endpoints", name, errs);
        return ep as unknown as AnyObject;
      }
      case "EndpointSlice": {
        const es = defaultEndpointSlice(obj as unknown as EndpointSlice);
        if (!Array.isArray(es.endpoints)) es.endpoints = [];
        const errs = validateEndpointSlice(es, old as unknown as EndpointSlice | undefined);
        if (es.addressType !== "FQDN") {
          es.endpoints.forEach((e, i) =>
            (e.addresses ?? []).forEach((a, j) => errs.push(...this.notClusterIP(a, `endpoints[${i}].addresses[${j}]`))),
          );
        }
        if (errs.length) throw statusErrors.invalid("EndpointSlice", name, errs);
        return es as unknown as AnyObject;
      }
      case "Namespace": {
        const ns = obj as unknown as Namespace;
        ns.spec ??= { finalizers: ["kubernetes"] };
        ns.status = { ...(ns.status ?? {}), phase: "Active" };
        const errs = validateNamespace(ns, old as unknown as Namespace | undefined);
        if (errs.length) throw statusErrors.invalid("Namespace", name, errs);
        return ns as unknown as AnyObject;
      }
      case "Pod":
        return this.preparePod(obj as unknown as Pod) as unknown as AnyObject;
      case "Event": {
        const errs = validateObjectMeta(obj.metadata as ObjectMeta, true, isDNS1123Subdomain);
        const inv = obj.involvedObject;
        if (!inv || typeof inv !== "object" || Array.isArray(inv)) errs.push(fieldErrors.required("involvedObject"));
        if (obj.type !== undefined && obj.type !== "Normal" && obj.type !== "Warning") {
          errs.push(fieldErrors.notSupported("type", obj.type, ["Normal", "Warning"]));
        }
        if (errs.length) throw statusErrors.invalid("Event", name, errs);
        return obj;
      }
      case "Node": {
        const node = obj as unknown as Node;
        const errs = validateObjectMeta(node.metadata, false, isDNS1123Subdomain);
        (node.status?.addresses ?? []).forEach((a, i) => {
          if (a.type === "InternalIP" || a.type === "ExternalIP") errs.push(...isValidIP(`status.addresses[${i}].address`, a.address));
        });
        if (errs.length) throw statusErrors.invalid("Node", name, errs);
        return node as unknown as AnyObject;
      }
    }
    throw statusErrors.badRequest(`unknown kind ${kind}`);
  }

  private notClusterIP(ip: string | undefined, field: string): FieldError[] {
    if (ip && parseIP(ip) && inCIDR(this.ranges.serviceCIDR, ip)) {
      return [fieldErrors.invalid(field, ip, `may not be in the service CIDR (${this.ranges.serviceCIDR})`)];
    }
    return [];
  }

  private preparePod(pod: Pod): Pod {
    const errs = validateObjectMeta(pod.metadata, true, isDNS1123Subdomain);
    const spec = (pod.spec ??= { containers: [] });
    if (!Array.isArray(spec.containers) || spec.containers.length === 0) errs.push(fieldErrors.required("spec.containers"));
    spec.terminationGracePeriodSeconds ??= 30;
    (spec.containers ?? []).forEach((c, i) => {
      if (!c || typeof c !== "object") return;
      if (!c.name) errs.push(fieldErrors.required(`spec.containers[${i}].name`));
      else errs.push(...validateDNS1123Label(c.name, `spec.containers[${i}].name`));
      (c.ports ?? []).forEach((p, j) => {
        p.protocol ??= "TCP";
        for (const m of isValidPortNum(p.containerPort)) {
          errs.push(fieldErrors.invalid(`spec.containers[${i}].ports[${j}].containerPort`, p.containerPort ?? 0, m));
        }
      });
    });
    const st = (pod.status ??= {});
    st.phase ??= "Pending";
    if (st.podIP !== undefined && st.podIP !== "") {
      errs.push(...isValidIP("status.podIP", st.podIP));
      if (!st.podIPs || st.podIPs.length === 0) st.podIPs = [{ ip: st.podIP }];
    }
    if (errs.length) throw statusErrors.invalid("Pod", pod.metadata.name ?? "", errs);
    return pod;
  }

  private prepareService(input: Service, old: Service | undefined, op: AllocOp, statusWrite: boolean): Service {
    const name = input.metadata.name ?? "";
    const family = this.serviceIPs.family;
    let svc: Service;
    if (statusWrite && old) {
      svc = input; // spec is the stored one
    } else {
      if (!old) input.status = { loadBalancer: {} };
      svc = defaultService(input, { primaryFamily: family, old });
    }
    if (!statusWrite) {
      const pre = validateService(svc, old, { allocated: false });
      if (pre.length) throw statusErrors.invalid("Service", name, pre);
    }
    const errs = this.allocateService(svc, old, op, statusWrite);
    if (errs.length) throw statusErrors.invalid("Service", name, errs);
    if (!statusWrite) {
      const post = validateService(svc, old, { allocated: true });
      if (post.length) throw statusErrors.invalid("Service", name, post);
    } else {
      const serrs: FieldError[] = [];
      (svc.status?.loadBalancer?.ingress ?? []).forEach((ing, i) => {
        if (ing.ip) serrs.push(...isValidIP(`status.loadBalancer.ingress[${i}].ip`, ing.ip));
        if (ing.hostname) serrs.push(...isDNS1123Subdomain(ing.hostname).map((m) => fieldErrors.invalid(`status.loadBalancer.ingress[${i}].hostname`, ing.hostname, m)));
      });
      if (serrs.length) throw statusErrors.invalid("Service", name, serrs);
    }
    return svc;
  }

  /**
   * §3 allocation for a create (old undefined) or an update: allocates what the new object needs
   * and the old one did not hold, fills values left empty, and releases what the old object held
   * and the new one no longer uses. Returns 422 field errors; range-full throws 500.
   */
  private allocateService(svc: Service, old: Service | undefined, op: AllocOp, statusWrite: boolean): FieldError[] {
    const spec = (svc.spec ??= {});
    const owner = `${svc.metadata.namespace}/${svc.metadata.name}`;
    const held = old ? serviceAllocations(old) : { serviceIP: [], nodePort: [], lbIP: [] };
    const errs: FieldError[] = [];
    const rethrow500 = (e: unknown): void => {
      if (e instanceof AllocationError && e.code === 500) throw statusErrors.internal(e.message);
      if (!(e instanceof AllocationError)) throw e;
    };

    // ClusterIP(s)
    const newIPs: string[] = [];
    if (needsClusterIP(svc) && !isHeadless(svc)) {
      const fams = spec.ipFamilies ?? [];
      fams.forEach((f, i) => {
        if (f !== this.serviceIPs.family && (i === 0 || spec.ipFamilyPolicy === "RequireDualStack")) {
          errs.push(fieldErrors.invalid(`spec.ipFamilies[${i}]`, f, "not configured on this cluster"));
        }
      });
      if (spec.ipFamilyPolicy === "RequireDualStack") {
        errs.push(fieldErrors.invalid("spec.ipFamilyPolicy", "RequireDualStack", "this cluster is not configured for dual-stack services"));
      }
      if (errs.length) return errs;
      if (fams.length > 1) spec.ipFamilies = [fams[0]!];
      const want = (spec.clusterIPs ?? []).filter((ip) => ip && ip !== "None");
      if (want.length === 0) {
        try {
          const ip = op.next("serviceIP", owner);
          spec.clusterIP = ip;
          spec.clusterIPs = [ip];
          newIPs.push(ip);
        } catch (e) {
          rethrow500(e);
          throw e;
        }
      } else {
        if (want.length > 1) {
          errs.push(fieldErrors.invalid("spec.clusterIPs[1]", want[1], "not configured on this cluster"));
          return errs;
        }
        const ip = want[0]!;
        if (!held.serviceIP.includes(ip)) {
          try {
            op.allocate("serviceIP", ip, owner);
          } catch (e) {
            rethrow500(e);
            errs.push(fieldErrors.invalid("spec.clusterIPs", spec.clusterIPs, `failed to allocate IP ${ip}: ${(e as Error).message}`));
            return errs;
          }
        }
        newIPs.push(ip);
      }
    }

    // NodePorts (shared by ports with the same port number) and the health-check nodePort
    const newPorts = new Set<number>();
    if (needsNodePort(svc)) {
      const auto = spec.type === "NodePort" || spec.allocateLoadBalancerNodePorts !== false;
      const byPort = new Map<number, number>();
      const ports = spec.ports ?? [];
      ports.forEach((p, i) => {
        const np = p.nodePort;
        if (!np) return;
        if (!newPorts.has(np) && !held.nodePort.includes(np)) {
          try {
            op.allocate("nodePort", String(np), owner);
          } catch (e) {
            rethrow500(e);
            errs.push(fieldErrors.invalid(`spec.ports[${i}].nodePort`, np, (e as Error).message));
            return;
          }
        }
        newPorts.add(np);
        if (!byPort.has(p.port)) byPort.set(p.port, np);
      });
      if (errs.length) return errs;
      if (auto) {
        for (const p of ports) {
          if (p.nodePort) continue;
          const shared = byPort.get(p.port);
          if (shared) {
            p.nodePort = shared;
            continue;
          }
          try {
            const np = Number(op.next("nodePort", owner));
            p.nodePort = np;
            byPort.set(p.port, np);
            newPorts.add(np);
          } catch (e) {
            rethrow500(e);
            throw e;
          }
        }
      }
    }
    if (needsHealthCheck(svc)) {
      const hc = spec.healthCheckNodePort;
      if (hc) {
        if (newPorts.has(hc)) {
          errs.push(fieldErrors.invalid("spec.healthCheckNodePort", hc, "provided port is already allocated"));
          return errs;
        }
        if (!held.nodePort.includes(hc)) {
          try {
            op.allocate("nodePort", String(hc), owner);
          } catch (e) {
            rethrow500(e);
            errs.push(fieldErrors.invalid("spec.healthCheckNodePort", hc, (e as Error).message));
            return errs;
          }
        }
        newPorts.add(hc);
      } else {
        try {
          const np = Number(op.next("nodePort", owner));
          spec.healthCheckNodePort = np;
          newPorts.add(np);
        } catch (e) {
          rethrow500(e);
          throw e;
        }
      }
    }

    // LoadBalancer ingress IPs from the pool (not for services with a loadBalancerClass)
    const newLB: string[] = [];
    const lb = this.lbIPs;
    if (spec.type === "LoadBalancer" && !spec.loadBalancerClass && lb) {
      svc.status ??= {};
      const lbs = (svc.status.loadBalancer ??= {});
      let ingress = structuredClone(lbs.ingress ?? []);
      const inPool = (ip: string | undefined): ip is string => !!ip && lb.contains(ip);
      const tryTake = (ip: string): boolean => {
        if (newLB.includes(ip)) return true;
        if (held.lbIP.includes(ip)) {
          newLB.push(ip);
          return true;
        }
        try {
          op.allocate("lbIP", ip, owner);
          newLB.push(ip);
          return true;
        } catch (e) {
          rethrow500(e);
          return false;
        }
      };
      if (!statusWrite) {
        const want = inPool(spec.loadBalancerIP) ? spec.loadBalancerIP : undefined;
        if (want) {
          if (!ingress.some((g) => g.ip === want)) {
            ingress = ingress.filter((g) => !inPool(g.ip));
            if (tryTake(want)) ingress.unshift({ ip: want, ipMode: "VIP" });
          }
        } else if (!spec.loadBalancerIP && !ingress.some((g) => inPool(g.ip))) {
          try {
            const ip = op.next("lbIP", owner);
            newLB.push(ip);
            ingress.push({ ip, ipMode: "VIP" });
          } catch (e) {
            if (!(e instanceof AllocationError)) throw e; // pool full: stays pending
          }
        }
      }
      const kept: typeof ingress = [];
      for (const [i, g] of ingress.entries()) {
        if (inPool(g.ip) && !tryTake(g.ip)) {
          if (statusWrite) {
            errs.push(fieldErrors.invalid(`status.loadBalancer.ingress[${i}].ip`, g.ip, "provided IP is already allocated"));
          }
          continue;
        }
        kept.push(g);
      }
      if (errs.length) return errs;
      if (kept.length) lbs.ingress = kept;
      else delete lbs.ingress;
    }

    // release what the old object held and the new one does not use
    for (const ip of held.serviceIP) if (!newIPs.includes(ip)) op.release("serviceIP", ip);
    for (const p of held.nodePort) if (!newPorts.has(p)) op.release("nodePort", String(p));
    for (const ip of held.lbIP) if (!newLB.includes(ip)) op.release("lbIP", ip);
    return errs;
  }

  // ---------------------------------------------------------------- watch

  watch(kind: string, opts: WatchOptions, handlers: WatchHandlers): Watch {
    const info = this.info(kind);
    const filter = compileFilter(info.namespaced ? opts : { ...opts, namespace: undefined });
    const queue: WatchEvent[] = [];
    let stopped = false;
    let scheduled = false;
    let closeErr: Status | undefined;
    let closing = false;
    const drain = (): void => {
      scheduled = false;
      while (!stopped && queue.length > 0) handlers.onEvent(queue.shift()!);
      if (!stopped && closing) {
        stopped = true;
        unsubscribe();
        handlers.onClose?.(closeErr);
      }
    };
    const schedule = (): void => {
      if (!scheduled) {
        scheduled = true;
        queueMicrotask(drain);
      }
    };
    const push = (ev: StoreEvent): void => {
      if (ev.kind !== kind) return;
      const nowMatch = matchesFilter(filter, ev.object);
      let type: WatchEvent["type"] | undefined;
      if (ev.type === "ADDED") type = nowMatch ? "ADDED" : undefined;
      else if (ev.type === "DELETED") type = nowMatch ? "DELETED" : undefined;
      else {
        const before = ev.old ? matchesFilter(filter, ev.old) : nowMatch;
        if (before && nowMatch) type = "MODIFIED";
        else if (nowMatch) type = "ADDED";
        else if (before) type = "DELETED";
      }
      if (!type) return;
      queue.push({ type, object: ev.object });
      schedule();
    };
    let unsubscribe: () => void = () => undefined;
    const rv = opts.resourceVersion ?? "";
    try {
      if (rv === "" || rv === "0") {
        for (const o of this.store.list(kind, filter.namespace)) if (matchesFilter(filter, o)) queue.push({ type: "ADDED", object: o });
      } else {
        const n = Number(rv);
        if (!Number.isInteger(n) || n < 0) throw statusErrors.badRequest(`invalid resource version ${JSON.stringify(rv)}`);
        for (const ev of this.store.eventsSince(n)) push(ev);
      }
      unsubscribe = this.store.subscribe(push);
    } catch (e) {
      closing = true;
      closeErr = e instanceof GoneError ? statusErrors.gone(e.message).status : toStatus(e);
    }
    schedule();
    let bookmark: NodeJS.Timeout | undefined;
    if (opts.bookmarkIntervalMs && opts.bookmarkIntervalMs > 0 && !closing) {
      bookmark = setInterval(() => {
        queue.push({
          type: "BOOKMARK",
          object: { apiVersion: info.apiVersion, kind, metadata: { resourceVersion: String(this.store.currentRV()) } },
        });
        schedule();
      }, opts.bookmarkIntervalMs);
      bookmark.unref?.();
    }
    return {
      stop: () => {
        stopped = true;
        if (bookmark) clearInterval(bookmark);
        unsubscribe();
      },
    };
  }
}

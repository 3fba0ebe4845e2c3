// meta.k8s.io/v1 Table output (what `kubectl get` asks for with
// `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`), with the columns of the upstream
// printers (pkg/printers/internalversion): services NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE
// (+ SELECTOR at priority 1, shown by -o wide), and sensible ones for the other kinds.

import type { StoredObject } from "../db.js";
import type { EndpointSlice, Endpoints, Namespace, Pod, Service } from "../types.js";
import type { Node } from "../registry.js";

export interface TableColumnDefinition {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
}

export interface TableRow {
  cells: unknown[];
  object?: unknown;
}

export interface Table {
  kind: "Table";
  apiVersion: "meta.k8s.io/v1";
  metadata: { resourceVersion?: string; continue?: string };
  columnDefinitions: TableColumnDefinition[];
  rows: TableRow[];
}

const col = (name: string, type = "string", priority = 0, format = "", description = ""): TableColumnDefinition => ({
  name,
  type,
  format,
  description: description || name,
  priority,
});

const NAME = col("Name", "string", 0, "name", "Name must be unique within a namespace.");
const AGE = col("Age", "string", 0, "", "CreationTimestamp is a timestamp representing the server time when this object was created.");

/** k8s.io/apimachinery/pkg/util/duration.HumanDuration. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${Math.floor(hours / 24)}d` : `${Math.floor(hours / 24)}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const dy = Math.floor(hours / 24) % 365;
    return dy === 0 ? `${Math.floor(hours / 24 / 365)}y` : `${Math.floor(hours / 24 / 365)}y${dy}d`;
  }
  return `${Math.floor(hours / 24 / 365)}y`;
}

function age(o: StoredObject, now: number): string {
  const ts = o.metadata.creationTimestamp;
  if (typeof ts !== "string" || !ts) return "<unknown>";
  return humanDuration(now - Date.parse(ts));
}

function formatLabels(m: Record<string, string> | undefined): string {
  const keys = Object.keys(m ?? {}).sort();
  if (keys.length === 0) return "<none>";
  return keys.map((k) => `${k}=${m![k]}`).join(",");
}

function lbStatus(svc: Service, wide: boolean): string {
  const parts = (svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip || i.hostname || "").filter((x) => x !== "");
  const r = parts.join(",");
  if (!wide && r.length > 16) return `${r.slice(0, 13)}...`;
  return r;
}

export function serviceExternalIP(svc: Service, wide: boolean): string {
  const spec = svc.spec ?? {};
  const ext = spec.externalIPs ?? [];
  switch (spec.type) {
    case "ClusterIP":
    case "NodePort":
    case undefined:
      return ext.length ? ext.join(",") : "<none>";
    case "LoadBalancer": {
      const lb = lbStatus(svc, wide);
      if (ext.length) return [...(lb ? lb.split(",") : []), ...ext].join(",");
      return lb || "<pending>";
    }
    case "ExternalName":
      return spec.externalName ?? "";
  }
  return "<unknown>";
}

export function servicePorts(svc: Service): string {
  const ports = svc.spec?.ports ?? [];
  if (ports.length === 0) return "<none>";
  return ports.map((p) => (p.nodePort ? `${p.port}:${p.nodePort}/${p.protocol ?? "TCP"}` : `${p.port}/${p.protocol ?? "TCP"}`)).join(",");
}

function endpointsString(ep: Endpoints): string {
  const max = 3;
  const list: string[] = [];
  let count = 0;
  for (const ss of ep.subsets ?? []) {
    const addrs = ss.addresses ?? [];
    if (!ss.ports || ss.ports.length === 0) {
      for (const a of addrs) {
        if (list.length < max) list.push(a.ip);
        count++;
      }
    } else {
      for (const p of ss.ports) {
        for (const a of addrs) {
          if (list.length < max) list.push(a.ip.includes(":") ? `[${a.ip}]:${p.port}` : `${a.ip}:${p.port}`);
          count++;
        }
      }
    }
  }
  if (list.length === 0) return "<none>";
  const ret = list.join(",");
  return count > max ? `${ret} + ${count - max} more...` : ret;
}

function sliceEndpoints(es: EndpointSlice): string {
  const all = (es.endpoints ?? []).flatMap((e) => e.addresses ?? []);
  if (all.length === 0) return "<none>";
  const head = all.slice(0, 3).join(",");
  return all.length > 3 ? `${head} + ${all.length - 3} more...` : head;
}

function slicePorts(es: EndpointSlice): string {
  if (!es.ports || es.ports.length === 0) return "<unset>";
  const ps = es.ports.map((p) => (p.port === undefined || p.port === null ? "<unset>" : String(p.port)));
  return ps.length > 3 ? `${ps.slice(0, 3).join(",")} + ${ps.length - 3} more...` : ps.join(",");
}

interface Printer {
  columns: TableColumnDefinition[];
  cells(o: StoredObject, now: number): unknown[];
}

const PRINTERS: Record<string, Printer> = {
  Service: {
    columns: [
      NAME,
      col("Type", "string", 0, "", "The type of the service."),
      col("Cluster-IP", "string", 0, "", "The cluster IP of the service."),
      col("External-IP", "string", 0, "", "The external IP of the service."),
      col("Port(s)", "string", 0, "", "The ports of the service."),
      AGE,
      col("Selector", "string", 1, "", "The selector of the service."),
    ],
    cells(o, now) {
      const s = o as unknown as Service;
      const spec = s.spec ?? {};
      const ip = spec.clusterIPs?.[0] ?? spec.clusterIP ?? "";
      return [
        s.metadata.name,
        spec.type ?? "ClusterIP",
        ip === "" ? "<none>" : ip,
        serviceExternalIP(s, false),
        servicePorts(s),
        age(o, now),
        formatLabels(spec.selector),
      ];
    },
  },
  Endpoints: {
    columns: [NAME, col("Endpoints", "string", 0, "", "Endpoints of the service."), AGE],
    cells: (o, now) => [o.metadata.name, endpointsString(o as unknown as Endpoints), age(o, now)],
  },
  EndpointSlice: {
    columns: [
      NAME,
      col("AddressType", "string", 0, "", "The address type of the endpoint slice."),
      col("Ports", "string", 0, "", "The ports of the endpoint slice."),
      col("Endpoints", "string", 0, "", "The endpoints of the endpoint slice."),
      AGE,
    ],
    cells(o, now) {
      const es = o as unknown as EndpointSlice;
      return [es.metadata.name, es.addressType, slicePorts(es), sliceEndpoints(es), age(o, now)];
    },
  },
  Pod: {
    columns: [
      NAME,
      col("Ready", "string", 0, "", "The aggregate readiness state of this pod for accepting traffic."),
      col("Status", "string", 0, "", "The aggregate status of the containers in this pod."),
      col("Restarts", "string", 0, "", "The number of times the containers in this pod have been restarted."),
      AGE,
      col("IP", "string", 1, "", "The IP address assigned to the pod."),
      col("Node", "string", 1, "", "The name of the node the pod is assigned to."),
      col("Nominated Node", "string", 1, "", "The nominated node."),
      col("Readiness Gates", "string", 1, "", "The readiness gates."),
    ],
    cells(o, now) {
      const p = o as unknown as Pod;
      const total = p.spec?.containers?.length ?? 0;
      const ready = (p.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True") ? total : 0;
      const status = p.metadata.deletionTimestamp ? "Terminating" : (p.status?.phase ?? "Pending");
      return [
        p.metadata.name,
        `${ready}/${total}`,
        status,
        "0",
        age(o, now),
        p.status?.podIP || "<none>",
        p.spec?.nodeName || "<none>",
        "<none>",
        "<none>",
      ];
    },
  },
  Namespace: {
    columns: [NAME, col("Status", "string", 0, "", "The status of the namespace"), AGE],
    cells: (o, now) => [o.metadata.name, (o as unknown as Namespace).status?.phase ?? "Active", age(o, now)],
  },
  Node: {
    columns: [
      NAME,
      col("Status", "string", 0, "", "The status of the node"),
      col("Roles", "string", 0, "", "The roles of the node"),
      AGE,
      col("Version", "string", 0, "", "Kubelet Version reported by the node."),
      col("Internal-IP", "string", 1, "", "List of internal IPs in the node."),
      col("External-IP", "string", 1, "", "List of external IPs in the node."),
    ],
    cells(o, now) {
      const n = o as unknown as Node;
      const ready = (n.status?.conditions ?? []).find((c) => c.type === "Ready");
      const st = ready ? (ready.status === "True" ? "Ready" : ready.status === "False" ? "NotReady" : "Unknown") : "Unknown";
      const addr = (t: string): string =>
        (n.status?.addresses ?? []).filter((a) => a.type === t).map((a) => a.address).join(",") || "<none>";
      return [n.metadata.name, st, "<none>", age(o, now), n.status?.nodeInfo?.kubeletVersion ?? "", addr("InternalIP"), addr("ExternalIP")];
    },
  },
};

export type IncludeObject = "None" | "Metadata" | "Object";

function rowObject(o: StoredObject, include: IncludeObject): unknown {
  if (include === "None") return undefined;
  if (include === "Object") return o;
  return { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: o.metadata };
}

/** A Table of `items` (one row each) for `kind`; columnDefinitions omitted when `noHeaders`. */
export function toTable(
  kind: string,
  items: StoredObject[],
  opts: { resourceVersion?: string; include?: IncludeObject; now?: number; noHeaders?: boolean } = {},
): Table {
  const printer = PRINTERS[kind] ?? { columns: [NAME, AGE], cells: (o: StoredObject, now: number) => [o.metadata.name, age(o, now)] };
  const now = opts.now ?? Date.now();
  const include = opts.include ?? "Metadata";
  return {
    kind: "Table",
    apiVersion: "meta.k8s.io/v1",
    metadata: opts.resourceVersion ? { resourceVersion: opts.resourceVersion } : {},
    columnDefinitions: opts.noHeaders ? [] : printer.columns,
    rows: items.map((o) => {
      const row: TableRow = { cells: printer.cells(o, now) };
      const obj = rowObject(o, include);
      if (obj !== undefined) row.object = obj;
      return row;
    }),
  };
}

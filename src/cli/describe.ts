// `tapvip describe service NAME [-n NS]`: the Service as kubectl describes it — type, IPs, ports
// with their target ports, node ports and endpoints (from the managed EndpointSlices, else the
// Endpoints object), session affinity, traffic policies — and its Events (allocation failures,
// controller errors). Other kinds print their fields as YAML followed by their Events.

import { parseArgs } from "node:util";
import { stringify } from "yaml";
import type { ApiClient } from "../store/client.js";
import type { StoredObject } from "../store/db.js";
import type { EndpointSlice, Endpoints, Service } from "../store/types.js";
import { humanDuration, serviceExternalIP } from "../store/api/tables.js";
import { CLIENT_FLAGS, CLIENT_FLAGS_USAGE, CliUsageError, clientFrom, kindArg, processIo, runCommand, type EventLike, type Io } from "./common.js";

export const DESCRIBE_USAGE = `usage: tapvip describe KIND NAME [-n NAMESPACE]   (KIND: service, or any kind tapvip serves)
${CLIENT_FLAGS_USAGE}`;

const W = 25; // label column width

function line(label: string, value: string): string {
  return `${`${label}:`.padEnd(W + 1)}${value}\n`;
}

function mapText(m: Record<string, string> | undefined, indent: number): string {
  const keys = Object.keys(m ?? {}).sort();
  if (keys.length === 0) return "<none>";
  return keys.map((k, i) => `${i ? " ".repeat(indent) : ""}${k}=${m![k]}`).join("\n");
}

function selectorText(m: Record<string, string> | undefined): string {
  const keys = Object.keys(m ?? {}).sort();
  return keys.length ? keys.map((k) => `${k}=${m![k]}`).join(",") : "<none>";
}

/** ip:port list of the ready endpoints serving this service port. */
function endpointsForPort(portName: string, slices: EndpointSlice[], legacy: Endpoints | undefined): string {
  const out: string[] = [];
  if (slices.length > 0) {
    for (const s of slices) {
      const p = (s.ports ?? []).find((x) => (x.name ?? "") === portName);
      if (!p || p.port === undefined || p.port === null) continue;
      for (const e of s.endpoints ?? []) {
        if (e.conditions?.ready === false) continue;
        for (const a of e.addresses ?? []) out.push(a.includes(":") ? `[${a}]:${p.port}` : `${a}:${p.port}`);
      }
    }
  } else {
    for (const ss of legacy?.subsets ?? []) {
      const p = (ss.ports ?? []).find((x) => (x.name ?? "") === portName);
      if (!p) continue;
      for (const a of ss.addresses ?? []) out.push(a.ip.includes(":") ? `[${a.ip}]:${p.port}` : `${a.ip}:${p.port}`);
    }
  }
  if (out.length === 0) return "<none>";
  const sorted = [...new Set(out)].sort();
  return sorted.length > 8 ? `${sorted.slice(0, 8).join(",")} + ${sorted.length - 8} more...` : sorted.join(",");
}

function eventsText(events: EventLike[], now: number): string {
  if (events.length === 0) return "Events:                   <none>\n";
  const rows = [["Type", "Reason", "Age", "From", "Message"], ["----", "------", "----", "----", "-------"]];
  for (const e of events) {
    const last = e.lastTimestamp ?? e.firstTimestamp ?? (e.metadata.creationTimestamp as string | undefined) ?? "";
    const first = e.firstTimestamp ?? last;
    let age = last ? humanDuration(now - Date.parse(last)) : "<unknown>";
    if ((e.count ?? 1) > 1 && first) age = `${age} (x${e.count} over ${humanDuration(now - Date.parse(first))})`;
    rows.push([e.type ?? "", e.reason ?? "", age, e.source?.component ?? e.reportingComponent ?? "", e.message ?? ""]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return `Events:\n${rows.map((r) => `  ${r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 2))).join("")}`.trimEnd()).join("\n")}\n`;
}

async function eventsFor(client: ApiClient, obj: StoredObject): Promise<EventLike[]> {
  const ns = obj.metadata.namespace || "default";
  let items: StoredObject[];
  try {
    items = (await client.list("Event", { namespace: ns })).items;
  } catch {
    return [];
  }
  return (items as EventLike[])
    .filter((e) => e.involvedObject?.kind === obj.kind && e.involvedObject?.name === obj.metadata.name && (!e.involvedObject?.uid || !obj.metadata.uid || e.involvedObject.uid === obj.metadata.uid))
    .sort((a, b) => Date.parse(a.lastTimestamp ?? "") - Date.parse(b.lastTimestamp ?? ""));
}

export async function describeService(client: ApiClient, svc: Service, now: number): Promise<string> {
  const ns = svc.metadata.namespace ?? "default";
  const name = svc.metadata.name ?? "";
  const spec = svc.spec ?? {};
  const [sliceList, legacy, events] = await Promise.all([
    client.list("EndpointSlice", { namespace: ns, labelSelector: `kubernetes.io/service-name=${name}` }).catch(() => ({ items: [] as StoredObject[] })),
    client.find<Endpoints>("Endpoints", ns, name).catch(() => undefined),
    eventsFor(client, svc as unknown as StoredObject),
  ]);
  const slices = sliceList.items as unknown as EndpointSlice[];
  let s = "";
  s += line("Name", name);
  s += line("Namespace", ns);
  s += line("Labels", mapText(svc.metadata.labels, W + 1));
  s += line("Annotations", mapText(svc.metadata.annotations, W + 1));
  s += line("Selector", selectorText(spec.selector));
  s += line("Type", spec.type ?? "ClusterIP");
  if (spec.ipFamilyPolicy) s += line("IP Family Policy", spec.ipFamilyPolicy);
  if (spec.ipFamilies?.length) s += line("IP Families", spec.ipFamilies.join(","));
  if (spec.type === "ExternalName") s += line("External Name", spec.externalName ?? "");
  else {
    s += line("IP", spec.clusterIP ?? "<none>");
    s += line("IPs", (spec.clusterIPs ?? []).join(",") || "<none>");
  }
  if (spec.externalIPs?.length) s += line("External IPs", spec.externalIPs.join(","));
  if (spec.loadBalancerIP) s += line("Desired LoadBalancer IP", spec.loadBalancerIP);
  if (spec.loadBalancerClass) s += line("LoadBalancer Class", spec.loadBalancerClass);
  if (spec.type === "LoadBalancer") {
    const ing = (svc.status?.loadBalancer?.ingress ?? []).map((g) => g.ip || g.hostname || "").filter((x) => x);
    s += line("LoadBalancer Ingress", ing.length ? ing.join(", ") : serviceExternalIP(svc, true));
  }
  for (const p of spec.ports ?? []) {
    const pn = p.name ? p.name : "<unset>";
    const proto = p.protocol ?? "TCP";
    s += line("Port", `${pn}  ${p.port}/${proto}`);
    s += line("TargetPort", `${p.targetPort ?? p.port}/${proto}`);
    if (p.nodePort) s += line("NodePort", `${pn}  ${p.nodePort}/${proto}`);
    if (spec.type !== "ExternalName") s += line("Endpoints", endpointsForPort(p.name ?? "", slices, legacy));
  }
  if (spec.type !== "ExternalName" && (spec.ports ?? []).length === 0) s += line("Endpoints", endpointsForPort("", slices, legacy));
  s += line("Session Affinity", spec.sessionAffinity ?? "None");
  if (spec.sessionAffinity === "ClientIP") s += line("Session Affinity Timeout", `${spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? 10800}s`);
  if (spec.type === "NodePort" || spec.type === "LoadBalancer") s += line("External Traffic Policy", spec.externalTrafficPolicy ?? "Cluster");
  if (spec.internalTrafficPolicy) s += line("Internal Traffic Policy", spec.internalTrafficPolicy);
  if (spec.healthCheckNodePort) s += line("HealthCheck NodePort", String(spec.healthCheckNodePort));
  if (spec.publishNotReadyAddresses) s += line("Publish Not Ready Addresses", "true");
  s += eventsText(events, now);
  return s;
}

export async function describeMain(argv: string[], io: Io = processIo): Promise<number> {
  return runCommand(io, "describe", DESCRIBE_USAGE, async () => {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { ...CLIENT_FLAGS, namespace: { type: "string", short: "n" } },
    });
    if (values.help) {
      io.out(`${DESCRIBE_USAGE}\n`);
      return 0;
    }
    let [kindName, ...names] = positionals;
    if (kindName?.includes("/")) {
      names = [kindName.split("/", 2)[1]!, ...names];
      kindName = kindName.split("/", 2)[0];
    }
    if (!kindName || names.length === 0) throw new CliUsageError("KIND and NAME are required");
    const kind = kindArg(kindName);
    const ns = kind.namespaced ? (values.namespace ?? "default") : undefined;
    const client = await clientFrom(values);
    const now = io.now ? io.now() : Date.now();
    try {
      let first = true;
      for (const n of names) {
        const obj = await client.get(kind.kind, ns, n);
        if (!first) io.out("\n\n");
        first = false;
        if (kind.kind === "Service") io.out(await describeService(client, obj as unknown as Service, now));
        else {
          const { metadata, apiVersion: _a, kind: _k, ...rest } = obj;
          io.out(line("Name", metadata.name ?? ""));
          if (kind.namespaced) io.out(line("Namespace", metadata.namespace ?? ""));
          io.out(line("Labels", mapText(metadata.labels as Record<string, string> | undefined, W + 1)));
          io.out(line("Annotations", mapText(metadata.annotations as Record<string, string> | undefined, W + 1)));
          if (metadata.deletionTimestamp) io.out(line("Terminating since", String(metadata.deletionTimestamp)));
          io.out(stringify(rest));
          io.out(eventsText(await eventsFor(client, obj), now));
        }
      }
    } finally {
      client.close();
    }
    return 0;
  });
}

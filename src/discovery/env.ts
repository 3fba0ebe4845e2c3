// Service environment variables (spec §6, kubelet's envvars.FromServices): for a pod in a
// namespace, the docker-links variables of every Service with a clusterIP in that namespace, plus
// `kubernetes` from `default`. `tapvip env -n NS` prints them for the current store contents
// (a Service created after a pod started is, as upstream, absent from that pod's environment).

import { parseArgs } from "node:util";
import type { StoredObject } from "../store/db.js";
import type { Service } from "../store/types.js";
import { CLIENT_FLAGS, CLIENT_FLAGS_USAGE, CliUsageError, clientFrom, processIo, runCommand, type Io } from "../cli/common.js";

export type EnvPair = [name: string, value: string];

/** Services the kubelet always exposes from `default` (its "master services"). */
const MASTER_SERVICES = new Set(["kubernetes"]);

function envName(s: string): string {
  return s.replace(/-/g, "_").toUpperCase();
}

function hasClusterIP(svc: Service): boolean {
  const ip = svc.spec?.clusterIP;
  return !!ip && ip !== "None";
}

function joinHostPort(ip: string, port: number): string {
  return ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** The variables of one Service, in upstream order (envvars.FromServices). */
export function serviceVars(svc: Service): EnvPair[] {
  if (!svc.spec || !hasClusterIP(svc)) return [];
  const ip = svc.spec.clusterIP!;
  const prefix = envName(svc.metadata.name ?? "");
  const ports = svc.spec.ports ?? [];
  const out: EnvPair[] = [[`${prefix}_SERVICE_HOST`, ip]];
  if (ports.length === 0) return out;
  const portName = `${prefix}_SERVICE_PORT`;
  out.push([portName, String(ports[0]!.port)]);
  for (const sp of ports) if (sp.name) out.push([`${portName}_${envName(sp.name)}`, String(sp.port)]);
  ports.forEach((sp, i) => {
    const proto = sp.protocol || "TCP";
    const url = `${proto.toLowerCase()}://${joinHostPort(ip, sp.port)}`;
    if (i === 0) out.push([`${prefix}_PORT`, url]);
    const pp = `${prefix}_PORT_${sp.port}_${proto.toUpperCase()}`;
    out.push([pp, url], [`${pp}_PROTO`, proto.toLowerCase()], [`${pp}_PORT`, String(sp.port)], [`${pp}_ADDR`, ip]);
  });
  return out;
}

/**
 * The environment of a pod in `namespace`: Services of that namespace with a clusterIP (not
 * headless, not ExternalName) and the master services of `default`; a same-named Service in the
 * pod's namespace wins over `default/kubernetes` (kubelet's getServiceEnvVarMap). Services are
 * taken in name order, variables in upstream order; a repeated name keeps its first position and
 * its last value (the kubelet builds a map).
 */
export function serviceEnv(services: readonly (Service | StoredObject)[], namespace: string): EnvPair[] {
  const chosen = new Map<string, Service>();
  for (const o of services as Service[]) {
    if (o.kind !== undefined && o.kind !== "Service") continue;
    if (!o.spec || !hasClusterIP(o)) continue;
    const name = o.metadata.name ?? "";
    const ns = o.metadata.namespace ?? "default";
    if (ns === namespace) chosen.set(name, o);
    else if (ns === "default" && MASTER_SERVICES.has(name) && !chosen.has(name)) chosen.set(name, o);
  }
  const vars = new Map<string, string>();
  for (const name of [...chosen.keys()].sort()) for (const [k, v] of serviceVars(chosen.get(name)!)) vars.set(k, v);
  return [...vars];
}

export function formatDotenv(pairs: readonly EnvPair[]): string {
  return pairs.map(([k, v]) => `${k}=${v}\n`).join("");
}

/** The inverse of formatDotenv (`tapvip env` output → pairs); blank lines are skipped. */
export function parseDotenv(text: string): EnvPair[] {
  const out: EnvPair[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    const i = line.indexOf("=");
    if (i <= 0) throw new Error(`not a KEY=VALUE line: ${JSON.stringify(line)}`);
    out.push([line.slice(0, i), line.slice(i + 1)]);
  }
  return out;
}

export function formatJson(pairs: readonly EnvPair[]): string {
  return `${JSON.stringify(Object.fromEntries(pairs), null, 2)}\n`;
}

export const ENV_USAGE = `Usage: tapvip env -n NAMESPACE [--server URL] [--format dotenv|json]
  Prints the Service environment variables a pod in NAMESPACE gets (KEY=VALUE a line).
  -n, --namespace NS   the pod's namespace (default "default")
  --format F           dotenv (default) or json
${CLIENT_FLAGS_USAGE}`;

export async function envMain(argv: string[], io: Io = processIo): Promise<number> {
  return runCommand(io, "env", ENV_USAGE, async () => {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { ...CLIENT_FLAGS, namespace: { type: "string", short: "n" }, format: { type: "string" } },
    });
    if (values.help) {
      io.out(`${ENV_USAGE}\n`);
      return 0;
    }
    if (positionals.length > 0) throw new CliUsageError(`unexpected argument "${positionals[0]}"`);
    const format = values.format ?? "dotenv";
    if (format !== "dotenv" && format !== "json") throw new CliUsageError(`--format: unsupported format "${format}" (dotenv, json)`);
    const ns = values.namespace ?? "default";
    const client = await clientFrom(values);
    const own = await client.list("Service", { namespace: ns });
    const def = ns === "default" ? { items: [] } : await client.list("Service", { namespace: "default" });
    const pairs = serviceEnv([...def.items, ...own.items], ns);
    io.out(format === "json" ? formatJson(pairs) : formatDotenv(pairs));
    return 0;
  });
}

// Loads Kubernetes manifests for commands that run without the API server (replay): parses,
// defaults and validates every object as the API would, and fills what an API server would
// allocate (clusterIP, nodePorts) deterministically from the configured ranges.

import { readManifests } from "../store/manifests.js";
import { defaultService, defaultEndpoints, defaultEndpointSlice, needsClusterIP, needsNodePort } from "../store/defaults.js";
import { validateService, validateEndpoints, validateEndpointSlice, aggregateMessage, type FieldError } from "../store/validation.js";
import { IPAllocator, PortAllocator, parsePortRange, seededRandom } from "../store/allocators.js";
import type { KubeObject, Service } from "../store/types.js";

export interface LoadOptions {
  serviceCIDR?: string;
  nodePortRange?: string;
  seed?: number;
  /** Receives one line per value filled in (e.g. an allocated clusterIP). */
  note?: (line: string) => void;
}

export class InvalidObjectError extends Error {
  constructor(message: string, readonly causes: readonly FieldError[]) {
    super(message);
    this.name = "InvalidObjectError";
  }
}

function fail(kind: string, name: string, errs: FieldError[]): never {
  throw new InvalidObjectError(`${kind} "${name}" is invalid: ${aggregateMessage(errs)}`, errs);
}

/** Reads, defaults, allocates and validates; throws InvalidObjectError naming field and rule. */
export async function loadObjects(path: string, opts: LoadOptions = {}): Promise<KubeObject[]> {
  const objs = await readManifests(path);
  const rnd = seededRandom(opts.seed ?? 1);
  const ips = new IPAllocator(opts.serviceCIDR ?? "10.96.0.0/12", { random: rnd });
  const ports = new PortAllocator(parsePortRange(opts.nodePortRange ?? "30000-32767"), { random: rnd });
  const out: KubeObject[] = [];
  // Explicit addresses and ports first, so automatic picks never collide with them.
  const services: Service[] = [];
  for (const o of objs) {
    if (o.kind !== "Service") continue;
    const s = defaultService(o);
    for (const ip of s.spec?.clusterIPs ?? []) if (ip !== "None" && ips.contains(ip)) { try { ips.allocate(ip); } catch { /* a duplicate: the second Service keeps it, as given */ } }
    for (const p of s.spec?.ports ?? []) if (p.nodePort) { try { ports.allocate(p.nodePort); } catch { /* shared or out of range: validated below */ } }
    services.push(s);
  }
  let si = 0;
  for (const o of objs) {
    const name = `${o.metadata.namespace ?? "default"}/${o.metadata.name ?? ""}`;
    if (o.kind === "Service") {
      const s = services[si++]!;
      const spec = s.spec!;
      if (needsClusterIP(s) && !spec.clusterIP) {
        const ip = ips.allocateNext();
        spec.clusterIP = ip;
        spec.clusterIPs = [ip];
        opts.note?.(`Service ${name}: allocated clusterIP ${ip}`);
      }
      if (needsNodePort(s)) {
        const byNumber = new Map<number, number>();
        for (const p of spec.ports ?? []) {
          if (p.nodePort) continue;
          const np = byNumber.get(p.port) ?? ports.allocateNext();
          byNumber.set(p.port, np);
          p.nodePort = np;
          opts.note?.(`Service ${name}: allocated nodePort ${np} for port ${p.port}/${p.protocol}`);
        }
      }
      const errs = validateService(s, undefined, { allocated: true });
      if (errs.length) fail("Service", o.metadata.name ?? "", errs);
      out.push(s);
    } else if (o.kind === "Endpoints") {
      const e = defaultEndpoints(o);
      const errs = validateEndpoints(e);
      if (errs.length) fail("Endpoints", o.metadata.name ?? "", errs);
      out.push(e);
    } else if (o.kind === "EndpointSlice") {
      const e = defaultEndpointSlice(o);
      const errs = validateEndpointSlice(e);
      if (errs.length) fail("EndpointSlice", o.metadata.name ?? "", errs);
      out.push(e);
    } else {
      out.push(o);
    }
  }
  return out;
}

// Pod helpers shared by the endpoint controllers, and the graceful-deletion rule for pods as a
// pure function. Behaviour follows upstream: k8s.io/endpointslice/util (ShouldPodBeInEndpoints,
// ShouldSetHostname, IsPodReady, FindPort) and the pod REST strategy (CheckGracefulDelete) plus
// the generic registry's BeforeDelete for the deletionTimestamp arithmetic.

import { parseIP, formatIP } from "../net.js";
import type { IPFamily, Pod, Protocol, Service, ServicePort } from "../types.js";

/** Default `spec.terminationGracePeriodSeconds` (pod defaulting). */
export const DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS = 30;

/** True when the pod's `Ready` condition has status "True". */
export function podIsReady(pod: Pod): boolean {
  const c = pod.status?.conditions?.find((x) => x?.type === "Ready");
  return c?.status === "True";
}

/** Terminal = phase Succeeded or Failed (all containers stopped for good). */
export function podIsTerminal(pod: Pod): boolean {
  const phase = pod.status?.phase;
  return phase === "Succeeded" || phase === "Failed";
}

/** Terminating = metadata.deletionTimestamp is set (graceful deletion under way). */
export function podIsTerminating(pod: Pod): boolean {
  return !!pod.metadata?.deletionTimestamp;
}

/**
 * The pod's IPs in canonical text form, from `status.podIPs` (or `status.podIP` alone when
 * podIPs is absent, as the API server's defaulting would have filled podIPs from it).
 * Unparseable entries are skipped; duplicates removed.
 */
export function podIPs(pod: Pod): string[] {
  const st = pod.status;
  if (!st) return [];
  const raw: string[] = [];
  if (Array.isArray(st.podIPs) && st.podIPs.length > 0) {
    for (const p of st.podIPs) if (p && typeof p.ip === "string") raw.push(p.ip);
  } else if (typeof st.podIP === "string" && st.podIP !== "") {
    raw.push(st.podIP);
  }
  const out: string[] = [];
  for (const r of raw) {
    const ip = parseIP(r);
    if (!ip) continue;
    const s = formatIP(ip);
    if (!out.includes(s)) out.push(s);
  }
  return out;
}

/** IPs of the given family (IPv4-mapped IPv6 counts as IPv4, as Go's IsIPv6 does). */
export function podIPsOfFamily(pod: Pod, family: IPFamily): string[] {
  const want = family === "IPv6" ? 6 : 4;
  return podIPs(pod).filter((s) => parseIP(s)?.family === want);
}

/**
 * ShouldPodBeInEndpoints: not terminal, has an IP, and (unless includeTerminating) not
 * terminating. The EndpointSlice controller passes includeTerminating=true; the Endpoints
 * controller passes `publishNotReadyAddresses`.
 */
export function shouldPodBeInEndpoints(pod: Pod, includeTerminating: boolean): boolean {
  if (podIsTerminal(pod)) return false;
  const st = pod.status;
  const hasIP = !!st && ((typeof st.podIP === "string" && st.podIP !== "") || (Array.isArray(st.podIPs) && st.podIPs.length > 0));
  if (!hasIP) return false;
  if (!includeTerminating && podIsTerminating(pod)) return false;
  return true;
}

/** ShouldSetHostname: pod.spec.hostname set, pod.spec.subdomain == service name, same namespace. */
export function shouldSetHostname(pod: Pod, svc: Service): boolean {
  const hostname = pod.spec?.hostname ?? "";
  return (
    hostname.length > 0 &&
    (pod.spec?.subdomain ?? "") === (svc.metadata?.name ?? "") &&
    (svc.metadata?.namespace ?? "") === (pod.metadata?.namespace ?? "")
  );
}

/**
 * FindPort: the container port a Service port reaches on this pod. A numeric targetPort is used
 * as is (absent → the service port, as defaulting would set it); a named targetPort is looked up
 * by name and protocol in `spec.containers[].ports`, then in sidecar init containers
 * (restartPolicy Always). Returns null when the pod has no such port.
 */
export function findPort(pod: Pod, svcPort: ServicePort): number | null {
  const tp = svcPort.targetPort;
  if (tp === undefined || tp === null) return typeof svcPort.port === "number" ? svcPort.port : null;
  if (typeof tp === "number") return tp;
  const proto: Protocol = svcPort.protocol ?? "TCP";
  for (const c of pod.spec?.containers ?? []) {
    for (const p of c?.ports ?? []) {
      if (p && p.name === tp && (p.protocol ?? "TCP") === proto) return p.containerPort;
    }
  }
  for (const c of pod.spec?.initContainers ?? []) {
    if (c?.["restartPolicy"] !== "Always") continue;
    for (const p of c.ports ?? []) {
      if (p && p.name === tp && (p.protocol ?? "TCP") === proto) return p.containerPort;
    }
  }
  return null;
}

// ------------------------------------------------------------------ graceful deletion

export interface PodDeleteOptions {
  /** DeleteOptions.gracePeriodSeconds, when the request carries one. */
  gracePeriodSeconds?: number;
}

export interface PodDeletionPlan {
  /**
   * The pod must be removed from storage now: no grace period applies (0, unscheduled, terminal),
   * a pending graceful deletion has run out, or the stored grace period is already 0. Finalizers
   * still block the removal: see `blockedByFinalizers`.
   */
  removeNow: boolean;
  /** Non-empty metadata.finalizers keep the object (marked) until they are cleared. */
  blockedByFinalizers: boolean;
  /**
   * The pod to write (a copy with deletionTimestamp / deletionGracePeriodSeconds set, generation
   * bumped when it was > 0), or null when nothing needs writing.
   */
  update: Pod | null;
  /** The effective grace period in seconds. */
  gracePeriodSeconds: number;
  /** When the pod is to be removed (= its deletionTimestamp), RFC 3339 with second precision. */
  removeAt: string;
}

/** RFC 3339 at second precision, as metav1.Time marshals. */
export function formatKubeTime(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
}

function parseTime(s: string | undefined): number | null {
  if (!s) return null;
  const t = Date.parse(s);
  return Number.isNaN(t) ? null : t;
}

function terminationGracePeriod(pod: Pod): number {
  const v = pod.spec?.["terminationGracePeriodSeconds"];
  return typeof v === "number" && Number.isFinite(v) ? v : DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS;
}

/**
 * What a DELETE of this pod does at time `now` (upstream CheckGracefulDelete + BeforeDelete):
 * - grace period = options.gracePeriodSeconds, else spec.terminationGracePeriodSeconds (default 30);
 *   0 when the pod is unscheduled (no nodeName) or terminal; a negative value becomes 1;
 * - 0 → removed at once; otherwise the pod is marked terminating with
 *   deletionTimestamp = now + grace and deletionGracePeriodSeconds = grace, and removed when that
 *   time comes;
 * - an already-terminating pod only accepts a shorter grace period (the deletionTimestamp moves
 *   earlier by the difference); otherwise the pending deletion stands.
 */
export function podDeletionPlan(pod: Pod, now: Date | number, options: PodDeleteOptions = {}): PodDeletionPlan {
  const nowMs = typeof now === "number" ? now : now.getTime();
  const meta = pod.metadata ?? {};
  const blockedByFinalizers = (meta.finalizers ?? []).length > 0;
  const existingTs = parseTime(meta.deletionTimestamp);

  if (existingTs !== null) {
    const current = meta.deletionGracePeriodSeconds;
    if (current === undefined || current === null || current === 0) {
      return { removeNow: true, blockedByFinalizers, update: null, gracePeriodSeconds: 0, removeAt: meta.deletionTimestamp! };
    }
    const requested = options.gracePeriodSeconds;
    if (requested !== undefined && requested !== null && requested < current) {
      const period = Math.max(0, requested);
      const newTs = existingTs - current * 1000 + period * 1000;
      const removeAt = formatKubeTime(newTs);
      const update = structuredClone(pod);
      update.metadata.deletionTimestamp = removeAt;
      update.metadata.deletionGracePeriodSeconds = period;
      return { removeNow: period === 0 || nowMs >= newTs, blockedByFinalizers, update, gracePeriodSeconds: period, removeAt };
    }
    return {
      removeNow: nowMs >= existingTs,
      blockedByFinalizers,
      update: null,
      gracePeriodSeconds: current,
      removeAt: meta.deletionTimestamp!,
    };
  }

  let period = options.gracePeriodSeconds ?? terminationGracePeriod(pod);
  if (!pod.spec?.nodeName) period = 0;
  if (podIsTerminal(pod)) period = 0;
  if (period < 0) period = 1;

  const removeMs = nowMs + period * 1000;
  const removeAt = formatKubeTime(removeMs);
  if (period === 0 && !blockedByFinalizers) {
    return { removeNow: true, blockedByFinalizers, update: null, gracePeriodSeconds: 0, removeAt };
  }
  const update = structuredClone(pod);
  update.metadata ??= {};
  update.metadata.deletionTimestamp = removeAt;
  update.metadata.deletionGracePeriodSeconds = period;
  if ((update.metadata.generation ?? 0) > 0) update.metadata.generation = update.metadata.generation! + 1;
  return { removeNow: period === 0, blockedByFinalizers, update, gracePeriodSeconds: period, removeAt };
}

/** True when a terminating pod's grace period has run out at `now` (and no finalizer holds it). */
export function podDueForRemoval(pod: Pod, now: Date | number): boolean {
  const ts = parseTime(pod.metadata?.deletionTimestamp);
  if (ts === null) return false;
  if ((pod.metadata?.finalizers ?? []).length > 0) return false;
  const nowMs = typeof now === "number" ? now : now.getTime();
  return nowMs >= ts || (pod.metadata?.deletionGracePeriodSeconds ?? 0) === 0;
}

// Helpers both endpoint controllers share: which Services they manage and which pods a Service selects.

import { selectorMatches } from "./selector.js";
import type { Pod, Service } from "../types.js";

/** Label on Endpoints / EndpointSlices of headless Services (value ""). */
export const LABEL_HEADLESS = "service.kubernetes.io/headless";
/** Annotation both controllers set from the trigger time of a change. */
export const ANNOTATION_LAST_CHANGE_TRIGGER_TIME = "endpoints.kubernetes.io/last-change-trigger-time";

/**
 * The controllers manage endpoints only for Services with a selector that are not ExternalName.
 * An empty selector counts as none: the API server's storage cannot tell `{}` from an absent map,
 * so upstream sees `selector: {}` as nil and such Services take user-written endpoints.
 */
export function controllerManagesService(svc: Service): boolean {
  const spec = svc.spec ?? {};
  if (spec.type === "ExternalName") return false;
  const sel = spec.selector;
  return !!sel && typeof sel === "object" && Object.keys(sel).length > 0;
}

/** clusterIP set and not "None" (upstream helper.IsServiceIPSet). */
export function isServiceIPSet(svc: Service): boolean {
  const ip = svc.spec?.clusterIP ?? svc.spec?.clusterIPs?.[0] ?? "";
  return ip !== "None" && ip !== "";
}

/** Pods in the Service's namespace whose labels match its selector, ordered by name. */
export function podsForService(svc: Service, pods: readonly Pod[]): Pod[] {
  const sel = svc.spec?.selector;
  if (!sel) return [];
  const ns = svc.metadata?.namespace ?? "";
  return pods
    .filter((p) => (p.metadata?.namespace ?? "") === ns && selectorMatches(sel, p.metadata?.labels))
    .sort((a, b) => cmpStr(a.metadata?.name ?? "", b.metadata?.name ?? ""));
}

export function cmpStr(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function timeText(t: Date | string): string {
  return typeof t === "string" ? t : t.toISOString();
}

export function labelsEqual(a: Readonly<Record<string, string>> | undefined, b: Readonly<Record<string, string>> | undefined): boolean {
  const ak = Object.keys(a ?? {});
  const bk = Object.keys(b ?? {});
  if (ak.length !== bk.length) return false;
  for (const k of ak) if (!Object.prototype.hasOwnProperty.call(b ?? {}, k) || (b ?? {})[k] !== (a ?? {})[k]) return false;
  return true;
}

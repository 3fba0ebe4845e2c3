// Discovery documents: /api, /api/v1, /apis, /apis/discovery.k8s.io[/v1], /version.

import { KINDS, type KindInfo } from "../registry.js";

export const SERVER_VERSION = {
  major: "1",
  minor: "32",
  gitVersion: "v1.32.0-tapvip",
  gitCommit: "0000000000000000000000000000000000000000",
  gitTreeState: "clean",
  buildDate: "2025-01-01T00:00:00Z",
  goVersion: `node${process.versions.node}`,
  compiler: "tapvip",
  platform: `${process.platform}/${process.arch === "x64" ? "amd64" : process.arch}`,
};

const VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

function resourcesOf(group: string): object[] {
  const out: object[] = [];
  for (const k of Object.values(KINDS) as KindInfo[]) {
    if (k.group !== group) continue;
    const verbs = k.kind === "Namespace" ? VERBS.filter((v) => v !== "deletecollection") : VERBS;
    const r: Record<string, unknown> = {
      name: k.resource,
      singularName: k.singular,
      namespaced: k.namespaced,
      kind: k.kind,
      verbs,
    };
    if (k.shortNames.length) r.shortNames = k.shortNames;
    if (k.kind === "Service" || k.kind === "Pod") r.categories = ["all"];
    out.push(r);
    for (const sub of k.subresources) {
      out.push({ name: `${k.resource}/${sub}`, singularName: "", namespaced: k.namespaced, kind: k.kind, verbs: ["get", "patch", "update"] });
    }
  }
  return out;
}

export function apiVersions(serverAddress: string): object {
  return {
    kind: "APIVersions",
    versions: ["v1"],
    serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress }],
  };
}

export function coreResourceList(): object {
  return { kind: "APIResourceList", apiVersion: "v1", groupVersion: "v1", resources: resourcesOf("") };
}

const DISCOVERY_GROUP = {
  name: "discovery.k8s.io",
  versions: [{ groupVersion: "discovery.k8s.io/v1", version: "v1" }],
  preferredVersion: { groupVersion: "discovery.k8s.io/v1", version: "v1" },
};

export function apiGroupList(): object {
  return { kind: "APIGroupList", apiVersion: "v1", groups: [DISCOVERY_GROUP] };
}

export function apiGroup(name: string): object | undefined {
  if (name !== DISCOVERY_GROUP.name) return undefined;
  return { kind: "APIGroup", apiVersion: "v1", ...DISCOVERY_GROUP };
}

export function groupResourceList(group: string, version: string): object | undefined {
  if (group !== DISCOVERY_GROUP.name || version !== "v1") return undefined;
  return { kind: "APIResourceList", apiVersion: "v1", groupVersion: "discovery.k8s.io/v1", resources: resourcesOf(group) };
}

// Minimal OpenAPI v3 documents: enough for kubectl to learn, per group-version-kind, that the
// PATCH operation accepts the `fieldValidation` query parameter (so it uses server-side field
// validation instead of downloading the full OpenAPI v2 schema for client-side validation).
// Strategic merge patch is deliberately not advertised in the request body types: kubectl then
// computes apply patches from its built-in type information rather than from schemas we do not
// serve.

import { KINDS, type KindInfo } from "../registry.js";

const GROUP_VERSIONS: Record<string, string> = { "api/v1": "", "apis/discovery.k8s.io/v1": "discovery.k8s.io" };

export function openAPIV3Root(): object {
  const paths: Record<string, { serverRelativeURL: string }> = {};
  for (const gv of Object.keys(GROUP_VERSIONS)) paths[gv] = { serverRelativeURL: `/openapi/v3/${gv}?hash=tapvip1` };
  return { paths };
}

const queryParams = ["dryRun", "fieldManager", "fieldValidation", "force", "pretty"].map((name) => ({
  name,
  in: "query",
  schema: { type: name === "force" ? "boolean" : "string", uniqueItems: true },
}));

function operation(k: KindInfo, id: string, patch: boolean): object {
  const op: Record<string, unknown> = {
    operationId: id,
    tags: [k.group ? "discovery_v1" : "core_v1"],
    parameters: queryParams,
    responses: { "200": { description: "OK" } },
    "x-kubernetes-action": patch ? "patch" : "put",
    "x-kubernetes-group-version-kind": { group: k.group, version: k.version, kind: k.kind },
  };
  if (patch) {
    op.requestBody = {
      content: {
        "application/json-patch+json": { schema: { type: "object" } },
        "application/merge-patch+json": { schema: { type: "object" } },
        "application/apply-patch+yaml": { schema: { type: "object" } },
      },
      required: true,
    };
  }
  return op;
}

export function openAPIV3GroupVersion(gv: string): object {
  const group = GROUP_VERSIONS[gv] ?? "";
  const paths: Record<string, object> = {};
  for (const k of Object.values(KINDS)) {
    if (k.group !== group) continue;
    const base = `/${gv}${k.namespaced ? "/namespaces/{namespace}" : ""}/${k.resource}/{name}`;
    paths[base] = {
      put: operation(k, `replace${k.kind}`, false),
      patch: operation(k, `patch${k.kind}`, true),
      parameters: [{ name: "name", in: "path", required: true, schema: { type: "string" } }],
    };
  }
  return {
    openapi: "3.0.0",
    info: { title: "Kubernetes", version: "v1.32.0-tapvip" },
    paths,
    components: { schemas: {} },
  };
}

// Tests for src/store/manifests.ts: multi-document YAML/JSON, List expansion, namespace defaulting, file/dir reading, errors.
import { describe, it, expect } from "vitest";
import { mkdtempSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ManifestError, parseManifests, readManifests } from "../../src/store/manifests.js";

const SVC = `apiVersion: v1
kind: Service
metadata:
  name: a
spec:
  ports:
    - port: 80
`;

describe("parseManifests", () => {
  it("parses multi-document YAML, skipping empty documents", () => {
    const objs = parseManifests(`---\n${SVC}---\n# only a comment\n---\n\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: prod\n`);
    expect(objs.map((o) => o.kind)).toEqual(["Service", "Namespace"]);
  });
  it("defaults metadata.namespace for namespaced kinds only", () => {
    const objs = parseManifests(`${SVC}---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: prod\n`);
    expect(objs[0]!.metadata.namespace).toBe("default");
    expect(objs[1]!.metadata.namespace).toBeUndefined();
    const other = parseManifests(SVC.replace("name: a", "name: a\n  namespace: prod"));
    expect(other[0]!.metadata.namespace).toBe("prod");
  });
  it("parses JSON", () => {
    const objs = parseManifests(JSON.stringify({ apiVersion: "discovery.k8s.io/v1", kind: "EndpointSlice", metadata: { name: "s" }, addressType: "IPv4", endpoints: [] }));
    expect(objs).toHaveLength(1);
    expect(objs[0]!.kind).toBe("EndpointSlice");
    expect(objs[0]!.metadata.namespace).toBe("default");
  });
  it("expands kind: List", () => {
    const list = { apiVersion: "v1", kind: "List", items: [{ apiVersion: "v1", kind: "Service", metadata: { name: "a" }, spec: {} }, { apiVersion: "v1", kind: "Endpoints", metadata: { name: "a", namespace: "x" } }] };
    const objs = parseManifests(JSON.stringify(list));
    expect(objs.map((o) => `${o.kind}/${o.metadata.namespace}`)).toEqual(["Service/default", "Endpoints/x"]);
  });
  it("names the source and document index in errors", () => {
    expect(() => parseManifests(`${SVC}---\nkind: [unclosed\n`, { source: "f.yaml" })).toThrow(/^f\.yaml: document 1: invalid YAML/);
    expect(() => parseManifests(`${SVC}---\n- a\n- b\n`, { source: "f.yaml" })).toThrow("f.yaml: document 1: not a Kubernetes object");
    expect(() => parseManifests(`${SVC}---\napiVersion: v1\nmetadata: {name: x}\n`, { source: "f.yaml" })).toThrow("f.yaml: document 1: Object 'Kind' is missing");
    expect(() => parseManifests(`apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n`, { source: "f.yaml" })).toThrow('f.yaml: document 0: no matches for kind "Deployment" in version "apps/v1"');
    expect.assertions(7);
    try {
      parseManifests(`${SVC}---\n---\n- 1\n`, { source: "g.yaml" });
    } catch (e) {
      expect(e).toBeInstanceOf(ManifestError);
      expect((e as ManifestError).documentIndex).toBe(2);
      expect((e as ManifestError).source).toBe("g.yaml");
    }
  });
});

describe("readManifests", () => {
  it("reads a file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tapvip-store-"));
    writeFileSync(join(dir, "one.yaml"), SVC);
    const objs = await readManifests(join(dir, "one.yaml"));
    expect(objs[0]!.metadata.name).toBe("a");
  });
  it("reads *.yaml, *.yml and *.json of a directory sorted by name", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tapvip-store-"));
    writeFileSync(join(dir, "b.yml"), SVC.replace("name: a", "name: b"));
    writeFileSync(join(dir, "a.yaml"), SVC);
    writeFileSync(join(dir, "c.json"), JSON.stringify({ apiVersion: "v1", kind: "Service", metadata: { name: "c" } }));
    writeFileSync(join(dir, "d.txt"), "not yaml: [");
    mkdirSync(join(dir, "sub.yaml"));
    const objs = await readManifests(dir);
    expect(objs.map((o) => o.metadata.name)).toEqual(["a", "b", "c"]);
  });
  it("names the file in errors", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tapvip-store-"));
    const p = join(dir, "bad.yaml");
    writeFileSync(p, `${SVC}---\nfoo: [\n`);
    await expect(readManifests(p)).rejects.toThrow(`${p}: document 1:`);
    await expect(readManifests(join(dir, "missing.yaml"))).rejects.toThrow("missing.yaml");
  });
});

// The machine's kubectl against `tapvip serve`: create, get (table output, -o wide, -A), apply
// (client-side and server-side), patch (strategic, merge, json), delete of the seed's manifests.
// kubectl is isolated from any real cluster config: KUBECONFIG points to an empty temp file and
// HOME / --cache-dir to a temp directory.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startServe, type ServeHandle } from "../../src/store/cli-serve.js";
import { tempDir, freePort } from "./fixtures/tmp.js";

const KUBECTL = "/usr/bin/kubectl";
const SEED = "/work/shared/seed/service-examples.yaml";
const available = existsSync(KUBECTL) && existsSync(SEED);

const tmp = tempDir("tapvip-kubectl-");
let h: ServeHandle;

interface Out {
  code: number;
  stdout: string;
  stderr: string;
}

function kubectl(...args: string[]): Promise<Out> {
  const env = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: tmp.dir,
    KUBECONFIG: join(tmp.dir, "kubeconfig"),
  };
  return new Promise((resolve) => {
    execFile(
      KUBECTL,
      ["--server", h.url, "--cache-dir", join(tmp.dir, "cache"), "--request-timeout", "10s", ...args],
      { env, timeout: 20_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === "number" ? ((err as { code: number }).code) : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Table rows as arrays of cells (split on 2+ spaces). */
function rows(text: string): string[][] {
  return text
    .trim()
    .split("\n")
    .map((l) => l.trim().split(/\s{2,}/));
}

function ok(o: Out): string {
  expect(o.code, `kubectl failed: ${o.stderr}`).toBe(0);
  return o.stdout;
}

beforeAll(async () => {
  if (!available) return;
  writeFileSync(join(tmp.dir, "kubeconfig"), "");
  h = await startServe({
    data: join(tmp.dir, "data"),
    listen: `127.0.0.1:${await freePort()}`,
    serviceCIDR: "10.0.0.0/16",
    lbPool: "192.0.2.128/25",
    durability: "normal",
  });
});
afterAll(async () => {
  await h?.close();
  tmp.cleanup();
});

describe.skipIf(!available)("kubectl against tapvip serve", () => {
  it("creates the seed's manifests", async () => {
    const out = ok(await kubectl("create", "-f", SEED));
    expect(out.trim().split("\n")).toEqual([
      "service/my-service created",
      "service/my-service-manual created",
      "endpoints/my-service-manual created",
      "service/my-service-multiport created",
      "service/my-service-nodeport created",
      "service/my-service-lb created",
      "namespace/prod created",
      "service/my-service created",
      "service/my-service-externalip created",
    ]);
    const again = await kubectl("create", "-f", SEED);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('services "my-service" already exists');
  });

  it("gets services as a table, wide, and across namespaces", async () => {
    const t = rows(ok(await kubectl("get", "svc")));
    expect(t[0]).toEqual(["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]);
    const by = new Map(t.slice(1).map((r) => [r[0], r]));
    expect(by.get("kubernetes")!.slice(1, 5)).toEqual(["ClusterIP", "10.0.0.1", "<none>", "443/TCP"]);
    expect(by.get("my-service-nodeport")!.slice(1, 5)).toEqual(["NodePort", expect.stringMatching(/^10\.0\./), "<none>", "80:30007/TCP"]);
    const lb = by.get("my-service-lb")!;
    expect(lb[1]).toBe("LoadBalancer");
    expect(lb[2]).toBe("10.0.171.239");
    expect(lb[3]).toMatch(/^192\.0\.2\.(1[3-9]\d|2[0-5]\d)$/);
    expect(lb[4]).toMatch(/^80:3\d{4}\/TCP$/);
    expect(by.get("my-service-externalip")![3]).toBe("80.11.12.10");
    expect(by.get("my-service-multiport")![4]).toBe("80/TCP,443/TCP");

    const wide = rows(ok(await kubectl("get", "svc", "-o", "wide")));
    expect(wide[0]).toEqual(["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"]);
    expect(wide.find((r) => r[0] === "my-service")![6]).toBe("app=MyApp");

    const all = rows(ok(await kubectl("get", "svc", "-A")));
    expect(all[0]![0]).toBe("NAMESPACE");
    expect(all.find((r) => r[0] === "prod")!.slice(1, 6)).toEqual(["my-service", "ExternalName", "<none>", "my.database.example.com", "<none>"]);
    expect(all.length - 1).toBe(8);

    const misc = ok(await kubectl("get", "endpoints,namespaces"));
    expect(misc).toContain("192.0.2.42:9376");
    expect(misc).toMatch(/namespace\/prod\s+Active/);
  });

  it("applies the seed (then a changed copy) and patches", async () => {
    const first = await kubectl("apply", "-f", SEED);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain("service/my-service-multiport configured");
    const again = ok(await kubectl("apply", "-f", SEED));
    expect(again).toContain("service/my-service-multiport unchanged");
    expect(again).toContain("namespace/prod unchanged");

    const changed = readFileSync(SEED, "utf8").replace("port: 443", "port: 8443").replace("targetPort: 9377", "targetPort: 9443");
    const file = join(tmp.dir, "changed.yaml");
    writeFileSync(file, changed);
    expect(ok(await kubectl("apply", "-f", file))).toContain("service/my-service-multiport configured");
    const mp = JSON.parse(ok(await kubectl("get", "svc", "my-service-multiport", "-o", "json")));
    expect(mp.spec.ports.map((p: { port: number; targetPort: number }) => `${p.port}:${p.targetPort}`)).toEqual(["80:9376", "8443:9443"]);
    expect(mp.metadata.generation).toBe(2);

    expect(ok(await kubectl("patch", "svc", "my-service", "-p", '{"spec":{"ports":[{"port":80,"targetPort":8080}]}}'))).toContain(
      "service/my-service patched",
    );
    ok(await kubectl("patch", "svc", "my-service", "--type", "merge", "-p", '{"metadata":{"labels":{"tier":"web"}}}'));
    ok(await kubectl("patch", "svc", "my-service", "--type", "json", "-p", '[{"op":"add","path":"/spec/ports/0/name","value":"http"},{"op":"add","path":"/spec/ports/-","value":{"name":"m","port":9090}}]'));
    const s = JSON.parse(ok(await kubectl("get", "svc", "my-service", "-o", "json")));
    expect(s.spec.ports.map((p: { port: number; targetPort: number }) => `${p.port}:${p.targetPort}`)).toEqual(["80:8080", "9090:9090"]);
    expect(s.metadata.labels).toEqual({ tier: "web" });
    const sel = rows(ok(await kubectl("get", "svc", "-l", "tier=web")));
    expect(sel.slice(1).map((r) => r[0])).toEqual(["my-service"]);

    const bad = await kubectl("patch", "svc", "my-service-nodeport", "-p", '{"spec":{"ports":[{"port":80,"nodePort":8080}]}}');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("provided port is not in the valid range. The range of valid ports is 30000-32767");

    const ssa = await kubectl("apply", "--server-side", "--force-conflicts", "-f", file);
    expect(ssa.code, ssa.stderr).toBe(0);
    expect(ssa.stdout).toContain("service/my-service-multiport serverside-applied");
  });

  it("deletes the seed's manifests", async () => {
    const del = ok(await kubectl("delete", "-f", SEED));
    expect(del).toContain('service "my-service-lb" deleted');
    expect(del).toContain('namespace "prod" deleted');
    expect(del).toContain('endpoints "my-service-manual" deleted');
    await new Promise((r) => setTimeout(r, 700)); // namespace termination
    const all = rows(ok(await kubectl("get", "svc", "-A")));
    expect(all.slice(1).map((r) => `${r[0]}/${r[1]}`)).toEqual(["default/kubernetes"]);
    // every allocation but the kubernetes service's was released
    expect(h.registry.store.allocations().map((a) => `${a.pool}:${a.value}`)).toEqual(["serviceIP:10.0.0.1"]);
  });
});

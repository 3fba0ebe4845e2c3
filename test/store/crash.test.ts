// kill -9 during a stream of writes: every acknowledged write survives, and the allocation table
// (written in the same transactions) equals exactly what the stored Services hold — before any
// repair runs. Then a reopened registry finds nothing to repair and keeps allocating correctly.
import { afterAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { DB_FILE } from "../../src/store/db.js";
import { Registry, serviceAllocations } from "../../src/store/registry.js";
import type { Service } from "../../src/store/types.js";
import { tempDir } from "./fixtures/tmp.js";

const here = fileURLToPath(new URL(".", import.meta.url));
const tmp = tempDir("tapvip-crash-");
afterAll(() => tmp.cleanup());

function runUntilKilled(dir: string, acks: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--import", join(here, "fixtures/ts-register.mjs"), join(here, "fixtures/crash-child.ts"), dir],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    const lines: string[] = [];
    let buf = "";
    let err = "";
    let killed = false;
    child.stdout.on("data", (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        lines.push(line); // keep reading after the kill: the pipe holds every line written before it
        if (!killed && lines.filter((l) => l.startsWith("ACK")).length >= acks) {
          killed = true;
          child.kill("SIGKILL");
        }
      }
    });
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("close", (code, sig) => {
      if (sig === "SIGKILL") resolve(lines);
      else reject(new Error(`child exited ${code}: ${err}`));
    });
  });
}

describe("crash safety", () => {
  it("kill -9 mid-stream loses no acknowledged write and leaks or doubles no allocation", async () => {
    const lines = await runUntilKilled(tmp.dir, 120);
    expect(lines[0]).toBe("READY");

    // expected presence from acknowledged operations; the one in flight may or may not be there
    const present = new Map<string, boolean>();
    let inFlight: string | undefined;
    for (const l of lines.slice(1)) {
      const [kind, op, name] = l.split(" ") as [string, string, string];
      if (kind === "BEGIN") inFlight = name;
      else {
        inFlight = undefined;
        present.set(name, op !== "delete");
      }
    }

    const raw = new Database(join(tmp.dir, DB_FILE));
    const services = (raw.prepare("SELECT data FROM objects WHERE kind = 'Service'").all() as { data: string }[]).map(
      (r) => JSON.parse(r.data) as Service,
    );
    const names = new Set(services.map((s) => s.metadata.name!));
    for (const [name, want] of present) {
      if (name === inFlight) continue;
      expect(names.has(name), `${name} should ${want ? "" : "not "}be stored`).toBe(want);
    }
    expect(lines.filter((l) => l.startsWith("ACK")).length).toBeGreaterThanOrEqual(120);
    expect(present.size).toBeGreaterThan(50);

    // allocations table == exactly the set derived from stored Services, before any repair
    const derived: string[] = [];
    for (const s of services) {
      const a = serviceAllocations(s);
      const owner = `${s.metadata.namespace}/${s.metadata.name}`;
      for (const ip of a.serviceIP) derived.push(`serviceIP:${ip}:${owner}`);
      for (const p of a.nodePort) derived.push(`nodePort:${p}:${owner}`);
      for (const ip of a.lbIP) derived.push(`lbIP:${ip}:${owner}`);
    }
    const table = (raw.prepare("SELECT pool, value, owner FROM allocations").all() as { pool: string; value: string; owner: string }[]).map(
      (r) => `${r.pool}:${r.value}:${r.owner}`,
    );
    raw.close();
    expect(new Set(derived).size).toBe(derived.length); // no value held twice
    expect([...table].sort()).toEqual([...derived].sort());
    expect(derived.some((d) => d.startsWith("lbIP:"))).toBe(true);
    expect(derived.some((d) => d.startsWith("nodePort:"))).toBe(true);

    // reopen: repair finds nothing; allocators agree; new writes never reuse a live value
    const reg = Registry.open(tmp.dir, { serviceCIDR: "10.96.0.0/20", lbPool: "192.0.2.0/24", store: { durability: "normal" } });
    try {
      expect(reg.repairReport.leaked).toEqual([]);
      expect(reg.repairReport.missing).toEqual([]);
      expect(reg.repairReport.duplicates).toEqual([]);
      expect(reg.serviceIPs.used()).toBe(derived.filter((d) => d.startsWith("serviceIP:")).length);
      expect(reg.nodePorts.used()).toBe(derived.filter((d) => d.startsWith("nodePort:")).length);
      const live = new Set(derived.map((d) => d.split(":").slice(0, 2).join(":")));
      for (let i = 0; i < 20; i++) {
        const s = reg.create<Service>("Service", {
          apiVersion: "v1",
          kind: "Service",
          metadata: { name: `after${i}`, namespace: "default" },
          spec: { type: "NodePort", ports: [{ port: 80 }] },
        });
        expect(live.has(`serviceIP:${s.spec!.clusterIP}`)).toBe(false);
        expect(live.has(`nodePort:${s.spec!.ports![0]!.nodePort}`)).toBe(false);
      }
    } finally {
      reg.close();
    }
  });
});

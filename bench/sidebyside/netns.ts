// Network namespaces of the side-by-side benchmark and its tests, named
// `tvsb-<pid base36>-<role>` so they never clash with the test suite's (`tvt-…`, links tv0…tv7,
// tvr) or bench/node.ts's, and a leftover of a killed run is recognisable by its pid.
// Every namespace and child process made here is removed at cleanup(): called by the benchmark
// in `finally`, and registered for process exit and SIGINT/SIGTERM/SIGHUP. Links are created
// directly inside the namespaces (never in the host namespace) and go with them.

import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from "node:child_process";
import { sweepStaleNamespaces } from "../../src/host/netns.js";

export const PREFIX = "tvsb-";
const PID36 = process.pid.toString(36);

const namespaces = new Set<string>();
const children = new Set<ChildProcess>();
let registered = false;

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command; never throws on exit status. */
export function run(cmd: string, args: string[], o: { input?: string; timeoutMs?: number } = {}): RunResult {
  const r = spawnSync(cmd, args, { encoding: "utf8", input: o.input, timeout: o.timeoutMs ?? 60_000, maxBuffer: 256 << 20 });
  return { status: r.status, stdout: r.stdout ?? "", stderr: (r.stderr ?? "") + (r.error ? String(r.error) : "") };
}

/** Runs a command and returns stdout; throws with stderr on failure. */
export function must(cmd: string, args: string[], o: { input?: string; timeoutMs?: number } = {}): string {
  const r = run(cmd, args, o);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ").slice(0, 200)} failed (${r.status ?? "signal"}): ${r.stderr.trim().slice(0, 500)}`);
  return r.stdout;
}

export function hasCommand(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
}

/** Why namespaces cannot be made here, or null. */
export function netnsUnavailable(): string | null {
  if (process.platform !== "linux") return "needs Linux";
  if (process.getuid?.() !== 0) return "needs root (network namespaces)";
  if (!hasCommand("ip")) return "`ip` (iproute2) is not installed";
  return null;
}

/** Creates `tvsb-<pid36>-<role>` with lo up and IPv6 off; tracked for cleanup. */
export function createNs(role: string): string {
  if (!/^[a-z0-9]{1,6}$/.test(role)) throw new Error(`namespace role ${role}: use [a-z0-9]{1,6}`);
  register();
  const name = `${PREFIX}${PID36}-${role}`;
  must("ip", ["netns", "add", name]);
  namespaces.add(name);
  try {
    must("ip", ["-n", name, "link", "set", "lo", "up"]);
    sysctl(name, "net.ipv6.conf.all.disable_ipv6", "1");
    sysctl(name, "net.ipv6.conf.default.disable_ipv6", "1");
  } catch (e) {
    deleteNs(name);
    throw e;
  }
  return name;
}

export function deleteNs(name: string): void {
  if (!namespaces.has(name)) throw new Error(`refusing to delete namespace ${name}: not created by this process`);
  namespaces.delete(name);
  run("ip", ["netns", "del", name], { timeoutMs: 30_000 });
}

/** `ip netns exec ns cmd…`; never throws on exit status. */
export function nsRun(ns: string, cmd: string[], o: { input?: string; timeoutMs?: number } = {}): RunResult {
  own(ns);
  return run("ip", ["netns", "exec", ns, ...cmd], o);
}

/** `ip netns exec ns cmd…`, stdout; throws on failure. */
export function nsMust(ns: string, cmd: string[], o: { input?: string; timeoutMs?: number } = {}): string {
  own(ns);
  return must("ip", ["netns", "exec", ns, ...cmd], o);
}

/** `ip -n ns args…` */
export function nsIp(ns: string, args: string[]): string {
  own(ns);
  return must("ip", ["-n", ns, ...args]);
}

export function sysctl(ns: string, key: string, value: string): void {
  if (!/^[a-z0-9_.-]+$/i.test(key) || !/^[a-z0-9 _.-]*$/i.test(value)) throw new Error(`bad sysctl ${key}=${value}`);
  nsMust(ns, ["sh", "-c", `echo '${value}' > /proc/sys/${key.replaceAll(".", "/")}`]);
}

/** A long-running command in a namespace; killed at cleanup if still running. */
export function nsSpawn(ns: string, cmd: string[], opts: SpawnOptions = {}): ChildProcess {
  own(ns);
  register();
  const child = spawn("ip", ["netns", "exec", ns, ...cmd], { stdio: ["ignore", "pipe", "pipe"], ...opts });
  children.add(child);
  child.on("exit", () => children.delete(child));
  return child;
}

/** SIGTERM, then SIGKILL after `ms`; resolves when it has exited. */
export async function stopChild(c: ChildProcess, ms = 5000): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise<void>((r) => c.once("exit", () => r()));
  c.kill("SIGTERM");
  const t = setTimeout(() => c.kill("SIGKILL"), ms);
  await exited;
  clearTimeout(t);
}

/** A veth pair `a` (in nsA) ↔ `b` (in nsB), created inside the namespaces. */
export function veth(nsA: string, a: string, nsB: string, b: string): void {
  own(nsA);
  own(nsB);
  must("ip", ["link", "add", "name", a, "netns", nsA, "type", "veth", "peer", "name", b, "netns", nsB]);
}

/** Kills the children and deletes the namespaces this process made. */
export function cleanup(): void {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      try {
        c.kill("SIGKILL");
      } catch {
        /* gone */
      }
    }
  }
  children.clear();
  for (const ns of [...namespaces]) deleteNs(ns);
}

/** Deletes `tvsb-<pid36>-*` namespaces whose process is gone (a killed earlier run). */
export function sweepStale(): string[] {
  return sweepStaleNamespaces(/^tvsb-([0-9a-z]+)-[a-z0-9]+$/, 30_000);
}

function own(ns: string): void {
  if (!namespaces.has(ns)) throw new Error(`namespace ${ns} was not created by this process`);
}

function register(): void {
  if (registered) return;
  registered = true;
  process.on("exit", cleanup);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const handler = (): void => {
      cleanup();
      process.removeListener(sig, handler);
      process.kill(process.pid, sig);
    };
    process.on(sig, handler);
  }
}

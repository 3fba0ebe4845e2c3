// Network namespaces for tests and the demo: created with names `tvt-<pid base36>-<random>`, always removed
// (afterAll → cleanupAll(); also on process exit and SIGINT/SIGTERM/SIGHUP, registered once),
// and only ever the ones this process created. Host interfaces, routes and namespaces are never
// touched: links are created directly inside test namespaces (veth ends with `netns`), and
// deleting a namespace deletes the virtual links in it.
//
// A leftover from a SIGKILLed run (its pid is in the name) is removed by sweepStale().

import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { randomBytes } from "node:crypto";
import { accessSync, constants, existsSync, readdirSync } from "node:fs";

export const PREFIX = "tvt-";
const PID36 = process.pid.toString(36);

const namespaces = new Set<string>();
const children = new Set<ChildProcess>();
const closers = new Set<() => void>();
let registered = false;

/** A fresh name, `tvt-<pid36>-<hex>`, at most 15 characters (usable as a link name too). */
export function uniqueName(): string {
  const room = 15 - PREFIX.length - PID36.length - 1;
  return `${PREFIX}${PID36}-${randomBytes(4).toString("hex").slice(0, Math.max(2, room))}`;
}

/** Why namespace tests cannot run here, or null when they can (root, /dev/net/tun, `ip`). */
export function netnsUnavailable(opts: { tun?: boolean } = {}): string | null {
  if (process.platform !== "linux") return "needs Linux";
  if (process.getuid?.() !== 0) return "needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN for network namespaces)";
  if (opts.tun !== false) {
    try {
      accessSync("/dev/net/tun", constants.R_OK | constants.W_OK);
    } catch {
      return "/dev/net/tun is missing";
    }
  }
  try {
    execFileSync("ip", ["-V"], { stdio: "ignore" });
  } catch {
    return "`ip` (iproute2) is not installed";
  }
  return null;
}

/** Runs `ip args...` and returns stdout; throws with stderr on failure. */
export function ip(args: string[], opts: { input?: string } = {}): string {
  return run("ip", args, opts);
}

function run(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): string {
  try {
    return execFileSync(cmd, args, {
      encoding: "utf8",
      input: opts.input,
      stdio: ["pipe", "pipe", "pipe"],
      timeout: opts.timeoutMs ?? 20_000,
    });
  } catch (e) {
    const err = e as Error & { stderr?: string; status?: number };
    throw new Error(`${cmd} ${args.join(" ")} failed (${err.status ?? "signal"}): ${String(err.stderr ?? err.message).trim()}`);
  }
}

/**
 * Creates a namespace with lo up and IPv6 off (no router solicitations or DAD noise on test
 * links), tracked for cleanup. Returns its name.
 */
export function createNetns(opts: { ipv6?: boolean } = {}): string {
  registerCleanup();
  const name = uniqueName();
  ip(["netns", "add", name]);
  namespaces.add(name);
  try {
    ip(["-n", name, "link", "set", "lo", "up"]);
    if (!opts.ipv6) {
      nsSysctl(name, "net.ipv6.conf.all.disable_ipv6", "1");
      nsSysctl(name, "net.ipv6.conf.default.disable_ipv6", "1");
    }
  } catch (e) {
    deleteNetns(name);
    throw e;
  }
  return name;
}

/** Deletes a namespace this process created (its virtual links go with it). */
export function deleteNetns(name: string): void {
  if (!namespaces.has(name)) throw new Error(`refusing to delete namespace ${name}: not created by this test process`);
  namespaces.delete(name);
  try {
    execFileSync("ip", ["netns", "del", name], { stdio: "ignore", timeout: 10_000 });
  } catch {
    /* already gone */
  }
}

/** Runs a command inside a namespace (`ip netns exec ns cmd...`) and returns stdout. */
export function nsExec(ns: string, cmd: string[], opts: { input?: string; timeoutMs?: number } = {}): string {
  ownNs(ns);
  return run("ip", ["netns", "exec", ns, ...cmd], opts);
}

/** Sets a sysctl inside a namespace (writes /proc/sys there; no dependency on procps). */
export function nsSysctl(ns: string, key: string, value: string): void {
  if (!/^[a-z0-9_.-]+$/i.test(key) || !/^[a-z0-9 _.-]*$/i.test(value)) throw new Error(`bad sysctl ${key}=${value}`);
  nsExec(ns, ["sh", "-c", `echo '${value}' > /proc/sys/${key.replaceAll(".", "/")}`]);
}

/** `ip -n ns args...` */
export function nsIp(ns: string, args: string[]): string {
  ownNs(ns);
  return ip(["-n", ns, ...args]);
}

/** Starts a long-running command inside a namespace; it is killed at cleanup if still running. */
export function nsSpawn(ns: string, cmd: string[], opts: SpawnOptions = {}): ChildProcess {
  ownNs(ns);
  registerCleanup();
  const child = spawn("ip", ["netns", "exec", ns, ...cmd], { stdio: ["ignore", "pipe", "pipe"], ...opts });
  children.add(child);
  child.on("exit", () => children.delete(child));
  return child;
}

/** A veth pair with one end in each namespace (created there, never in the host namespace). */
export function vethPair(nsA: string, nsB: string): { a: string; b: string } {
  ownNs(nsA);
  ownNs(nsB);
  const a = uniqueName();
  const b = uniqueName();
  ip(["link", "add", "name", a, "netns", nsA, "type", "veth", "peer", "name", b, "netns", nsB]);
  return { a, b };
}

/** Registers something to close before the namespaces go (e.g. a Tap held by this process). */
export function onCleanup(fn: () => void): () => void {
  registerCleanup();
  closers.add(fn);
  return () => closers.delete(fn);
}

/** Closes registered resources, kills spawned children, deletes every namespace we created. */
export function cleanupAll(): void {
  for (const fn of [...closers].reverse()) {
    closers.delete(fn);
    try {
      fn();
    } catch {
      /* keep cleaning */
    }
  }
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
  for (const ns of [...namespaces]) deleteNetns(ns);
}

/** Deletes `tvt-<pid36>-*` namespaces whose creating process no longer exists. */
export function sweepStale(): string[] {
  return sweepStaleNamespaces(/^tvt-([0-9a-z]+)-[0-9a-f]+$/, 10_000);
}

/**
 * Deletes the namespaces whose name matches `pattern` (group 1: the creating process's pid in
 * base 36) when that process no longer exists: leftovers of a killed run. Returns their names.
 */
export function sweepStaleNamespaces(pattern: RegExp, timeoutMs: number): string[] {
  const dir = "/var/run/netns";
  if (!existsSync(dir)) return [];
  const removed: string[] = [];
  for (const name of readdirSync(dir)) {
    const m = pattern.exec(name);
    if (!m) continue;
    const pid = parseInt(m[1]!, 36);
    if (pid === process.pid || alive(pid)) continue;
    try {
      execFileSync("ip", ["netns", "del", name], { stdio: "ignore", timeout: timeoutMs });
      removed.push(name);
    } catch {
      /* someone else got it */
    }
  }
  return removed;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

function ownNs(ns: string): void {
  if (!namespaces.has(ns)) throw new Error(`namespace ${ns} was not created by this test process`);
}

function registerCleanup(): void {
  if (registered) return;
  registered = true;
  process.on("exit", cleanupAll);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const handler = (): void => {
      cleanupAll();
      process.removeListener(sig, handler);
      process.kill(process.pid, sig); // default action now that we are clean
    };
    process.on(sig, handler);
  }
}

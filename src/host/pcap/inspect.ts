// Independent decoders for capture files: tcpdump's text rendering (deterministic, for golden
// files) and tshark's checksum validation (ip, tcp, udp, icmp, icmpv6, sctp), run as child processes.
import { execFile } from "node:child_process";

export interface ChecksumProblem {
  /** 1-based frame number, as tcpdump/tshark count. */
  frame: number;
  /** e.g. "tcp: Bad checksum [should be 0x93bf]" (protocol that flagged it, then tshark's text). */
  problem: string;
}

/**
 * tshark preferences (names valid for Wireshark 4.0, checked with `tshark -G defaultprefs`) that
 * turn checksum validation on. ICMP and ICMPv6 checksums are always validated (no preference).
 * tshark ignores an unknown value of an enum preference silently: "CRC 32c" is the exact spelling.
 */
export const TSHARK_CHECKSUM_PREFS: readonly string[] = [
  "ip.check_checksum:TRUE",
  "tcp.check_checksum:TRUE",
  "udp.check_checksum:TRUE",
  "sctp.checksum:CRC 32c",
];

/** Wireshark's expert group PI_CHECKSUM. */
const PI_CHECKSUM = 0x01000000;

const MAX_OUTPUT = 256 * 1024 * 1024;
const DETERMINISTIC_ENV = { ...process.env, TZ: "UTC", LC_ALL: "C", LANG: "C" };

interface RunResult {
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[]): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { env: DETERMINISTIC_ENV, maxBuffer: MAX_OUTPUT, encoding: "utf8" }, (err, stdout, stderr) => {
      if (err) {
        const e = err as NodeJS.ErrnoException & { code?: string | number };
        const why = e.code === "ENOENT" ? `${cmd} is not installed` : stderr.trim() || e.message;
        reject(Object.assign(new Error(why), { stdout, stderr, cause: err }));
      } else {
        resolve({ stdout, stderr });
      }
    });
  });
}

const availability = new Map<string, Promise<boolean>>();

function available(cmd: string, versionArgs: string[]): Promise<boolean> {
  let p = availability.get(cmd);
  if (!p) {
    p = run(cmd, versionArgs).then(
      () => true,
      () => false,
    );
    availability.set(cmd, p);
  }
  return p;
}

/** True when a working `tshark` is on PATH. */
export function tsharkAvailable(): Promise<boolean> {
  return available("tshark", ["-v"]);
}

/** True when a working `tcpdump` is on PATH. */
export function tcpdumpAvailable(): Promise<boolean> {
  return available("tcpdump", ["--version"]);
}

export interface TcpdumpTextOptions {
  /**
   * "none" (default, `-t`): no timestamps, so the text depends only on the frames' bytes;
   * "epoch" (`-tt`): seconds.microseconds since the epoch; "relative" (`-ttttt`): since frame 1.
   */
  timestamps?: "none" | "epoch" | "relative";
}

const TS_FLAG = { none: "-t", epoch: "-tt", relative: "-ttttt" } as const;

/**
 * `tcpdump -nn -vv -e -r path` (no name resolution, verbose with checksum checks, link-level
 * header) in the C locale and UTC, with trailing whitespace stripped from every line and a final
 * newline: stable text for golden files. Rejects (naming the file) when tcpdump fails, e.g. on a
 * truncated file.
 */
export async function tcpdumpText(path: string, opts: TcpdumpTextOptions = {}): Promise<string> {
  const ts = TS_FLAG[opts.timestamps ?? "none"];
  let out: RunResult;
  try {
    out = await run("tcpdump", ["-nn", "-vv", "-e", ts, "-r", path]);
  } catch (e) {
    throw new Error(`tcpdump -r ${path} failed: ${(e as Error).message}`, { cause: e });
  }
  const lines = out.stdout.split("\n").map((l) => l.replace(/[ \t\r]+$/, ""));
  while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  return lines.length === 0 ? "" : lines.join("\n") + "\n";
}

type Json = string | number | boolean | null | Json[] | { [k: string]: Json };

/**
 * Frames of `path` that tshark, with checksum validation on (TSHARK_CHECKSUM_PREFS), flags with an
 * expert info of the Checksum group: bad IPv4 header, TCP, UDP, ICMP, ICMPv6 or SCTP checksums
 * (also inside ICMP error quotes, and TCP's 0xffff-instead-of-0 warning). Empty when all is well.
 */
export async function tsharkChecksumProblems(path: string): Promise<ChecksumProblem[]> {
  const args = ["-n", "-r", path];
  for (const p of TSHARK_CHECKSUM_PREFS) args.push("-o", p);
  args.push("-Y", `_ws.expert.group == 0x${PI_CHECKSUM.toString(16).padStart(8, "0")}`);
  args.push("-T", "json", "--no-duplicate-keys");
  let out: RunResult;
  try {
    out = await run("tshark", args);
  } catch (e) {
    throw new Error(`tshark -r ${path} failed: ${(e as Error).message}`, { cause: e });
  }
  const text = out.stdout.trim();
  if (text === "") return [];
  let packets: Json;
  try {
    packets = JSON.parse(text) as Json;
  } catch (e) {
    throw new Error(`tshark -r ${path}: unparsable JSON output: ${(e as Error).message}`, { cause: e });
  }
  const problems: ChecksumProblem[] = [];
  for (const pkt of asArray(packets)) {
    const layers = field(field(pkt, "_source"), "layers");
    const frameNo = Number(first(field(field(layers, "frame"), "frame.number")));
    collectChecksumExperts(layers, "", (proto, message) => {
      problems.push({ frame: frameNo, problem: `${proto}: ${message}` });
    });
  }
  problems.sort((a, b) => a.frame - b.frame);
  return problems;
}

function asArray(v: Json | undefined): Json[] {
  return Array.isArray(v) ? v : v === undefined ? [] : [v];
}

function field(v: Json | undefined, key: string): Json | undefined {
  if (v && typeof v === "object" && !Array.isArray(v)) return v[key];
  return undefined;
}

function first(v: Json | undefined): Json | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Walks tshark's JSON tree and reports every `_ws.expert` object of the Checksum group. The
 * protocol is the prefix of the expert's own field name ("udp.checksum.bad" -> "udp"), else the
 * innermost enclosing protocol key.
 */
function collectChecksumExperts(node: Json | undefined, proto: string, report: (proto: string, msg: string) => void): void {
  if (Array.isArray(node)) {
    for (const n of node) collectChecksumExperts(n, proto, report);
    return;
  }
  if (!node || typeof node !== "object") return;
  for (const [key, value] of Object.entries(node)) {
    if (key === "_ws.expert") {
      for (const expert of asArray(value)) {
        if (!expert || typeof expert !== "object" || Array.isArray(expert)) continue;
        const groups = asArray(expert["_ws.expert.group"]).map(Number);
        const messages = asArray(expert["_ws.expert.message"]).map(String);
        const ownKey = Object.keys(expert).find((k) => !k.startsWith("_ws."));
        const who = ownKey ? ownKey.split(".")[0]! : proto || "?";
        groups.forEach((g, i) => {
          if (g === PI_CHECKSUM) report(who, messages[i] ?? "checksum problem");
        });
      }
    } else if (value && typeof value === "object") {
      // protocol subtrees are keyed by the bare protocol name ("ip", "tcp"); field trees have dots
      collectChecksumExperts(value, key.includes(".") ? proto : key, report);
    }
  }
}

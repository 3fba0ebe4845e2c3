// Shared plumbing of the client commands (apply, get, delete, describe): the --server / --token
// flags, output streams (injectable for tests), kind names, manifest reading (multi-document YAML
// from a file, a directory or stdin) and error printing as kubectl does (field and rule).

import { readFile, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { ApiClient, ApiError, formatStatus, resolveKind, type ClientKind } from "../store/client.js";
import type { StoredObject } from "../store/db.js";

/** Default API address: `tapvip serve`'s default --listen. */
export const DEFAULT_SERVER = "http://127.0.0.1:6443";

export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** stdin text (for `-f -`). */
  stdin?: () => Promise<string>;
  /** The clock for AGE columns. */
  now?: () => number;
}

export const processIo: Io = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  stdin: async () => {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(typeof c === "string" ? Buffer.from(c) : (c as Buffer));
    return Buffer.concat(chunks).toString("utf8");
  },
};

export class CliUsageError extends Error {}

/** Options every client command takes. */
export const CLIENT_FLAGS = {
  server: { type: "string" },
  token: { type: "string" },
  "token-file": { type: "string" },
  "insecure-skip-tls-verify": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

export const CLIENT_FLAGS_USAGE = `  --server URL         API server (default $TAPVIP_SERVER or ${DEFAULT_SERVER})
  --token T, --token-file F   bearer token
  --insecure-skip-tls-verify  do not verify the server's certificate`;

export async function clientFrom(values: { server?: string; token?: string; "token-file"?: string; "insecure-skip-tls-verify"?: boolean }): Promise<ApiClient> {
  const server = values.server ?? process.env.TAPVIP_SERVER ?? DEFAULT_SERVER;
  const token = values.token ?? (values["token-file"] ? (await readFile(values["token-file"], "utf8")).trim() : undefined);
  try {
    return new ApiClient({ server, token, insecureSkipTLSVerify: values["insecure-skip-tls-verify"] });
  } catch (e) {
    throw new CliUsageError((e as Error).message);
  }
}

export function kindArg(name: string): ClientKind {
  const k = resolveKind(name);
  if (!k) throw new ApiErrorLike(`error: the server doesn't have a resource type "${name}"`);
  return k;
}

/** A client-side error printed as is (no "Error from server"). */
export class ApiErrorLike extends Error {}

/**
 * Runs a command body: usage errors exit 2, API errors print the Status (message with field and
 * rule, plus causes) and exit 1.
 */
export async function runCommand(io: Io, name: string, usage: string, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (e) {
    if (e instanceof CliUsageError || (e as { code?: string }).code?.startsWith?.("ERR_PARSE_ARGS")) {
      io.err(`tapvip ${name}: ${(e as Error).message}\n${usage}\n`);
      return 2;
    }
    io.err(`${errorText(e)}\n`);
    return 1;
  }
}

export function errorText(e: unknown): string {
  if (e instanceof ApiError) return formatStatus(e.status);
  if (e instanceof ApiErrorLike) return e.message;
  return `error: ${e instanceof Error ? e.message : String(e)}`;
}

// ------------------------------------------------------------------ manifests

export interface Manifest {
  object: StoredObject;
  source: string;
}

function docsOf(text: string, source: string): Manifest[] {
  const out: Manifest[] = [];
  parseAllDocuments(text, { prettyErrors: false }).forEach((doc, i) => {
    if (doc.errors.length > 0) throw new ApiErrorLike(`error: ${source}: document ${i}: invalid YAML: ${doc.errors[0]!.message}`);
    const v: unknown = doc.toJS({ maxAliasCount: 100 });
    if (v === null || v === undefined) return;
    const push = (x: unknown, where: string): void => {
      if (!x || typeof x !== "object" || Array.isArray(x)) throw new ApiErrorLike(`error: ${where}: not a Kubernetes object (expected a mapping)`);
      const o = x as StoredObject;
      if (typeof o.kind !== "string" || !o.kind) throw new ApiErrorLike(`error: ${where}: Object 'Kind' is missing`);
      if (typeof o.apiVersion !== "string" || !o.apiVersion) throw new ApiErrorLike(`error: ${where}: Object 'apiVersion' is missing`);
      const k = resolveKind(o.kind);
      if (!k || k.kind !== o.kind || k.apiVersion !== o.apiVersion) {
        throw new ApiErrorLike(`error: ${where}: no matches for kind "${o.kind}" in version "${o.apiVersion}"`);
      }
      if (!o.metadata || typeof o.metadata !== "object") o.metadata = {};
      out.push({ object: o, source });
    };
    if ((v as { kind?: unknown }).kind === "List" && Array.isArray((v as { items?: unknown }).items)) {
      ((v as { items: unknown[] }).items).forEach((it, j) => {
        if (it !== null && it !== undefined) push(it, `${source}: document ${i}: items[${j}]`);
      });
    } else push(v, `${source}: document ${i}`);
  });
  return out;
}

const MANIFEST_EXT = /\.(ya?ml|json)$/i;

/** Objects from files, directories (their *.yaml|*.yml|*.json, sorted) or "-" (stdin). */
export async function readManifestArgs(paths: string[], io: Io): Promise<Manifest[]> {
  const out: Manifest[] = [];
  for (const p of paths) {
    if (p === "-") {
      if (!io.stdin) throw new ApiErrorLike("error: no standard input");
      out.push(...docsOf(await io.stdin(), "<stdin>"));
      continue;
    }
    let st;
    try {
      st = await stat(p);
    } catch {
      throw new ApiErrorLike(`error: the path "${p}" does not exist`);
    }
    const files: string[] = [];
    if (st.isDirectory()) {
      for (const n of (await readdir(p)).filter((n) => MANIFEST_EXT.test(n)).sort()) {
        const f = join(p, n);
        if ((await stat(f)).isFile()) files.push(f);
      }
    } else files.push(p);
    for (const f of files) out.push(...docsOf(await readFile(f, "utf8"), f));
  }
  return out;
}

/** `service/web`, as kubectl names objects in its messages. */
export function objectRef(kind: ClientKind, name: string): string {
  const k = kind.group ? `${kind.kind.toLowerCase()}.${kind.group}` : kind.kind.toLowerCase();
  return `${k}/${name}`;
}

/** The fields of a core/v1 Event that `get events` and `describe` show. */
export interface EventLike extends StoredObject {
  involvedObject?: { kind?: string; name?: string; namespace?: string; uid?: string };
  reason?: string;
  message?: string;
  type?: string;
  count?: number;
  lastTimestamp?: string;
  firstTimestamp?: string;
  eventTime?: string;
  source?: { component?: string };
  reportingComponent?: string;
}

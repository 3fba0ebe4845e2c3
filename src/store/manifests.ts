// Reading Kubernetes manifests: multi-document YAML or JSON text, `kind: List` expansion,
// namespace defaulting for namespaced kinds, and loading from a file, a directory of
// *.yaml/*.yml/*.json files (sorted by name) or stdin ("-"). Errors name file and document.

import { readFile, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { API_VERSIONS, CLUSTER_SCOPED_KINDS, type KubeKind, type KubeObject } from "./types.js";

export class ManifestError extends Error {
  constructor(
    message: string,
    readonly source: string | undefined,
    readonly documentIndex: number | undefined,
  ) {
    super(message);
    this.name = "ManifestError";
  }
}

export interface ParseOptions {
  /** Name used in error messages (file path, or "<stdin>"). */
  source?: string;
  /** Namespace given to namespaced objects that carry none; default "default". */
  defaultNamespace?: string;
}

function where(source: string | undefined, index: number): string {
  return `${source ?? "<input>"}: document ${index}`;
}

function isKnownKind(kind: string): kind is KubeKind {
  return Object.prototype.hasOwnProperty.call(API_VERSIONS, kind);
}

function toObject(raw: unknown, source: string | undefined, index: number, opts: ParseOptions, ctx: string): KubeObject {
  const fail = (msg: string): never => {
    throw new ManifestError(`${where(source, index)}: ${ctx}${msg}`, source, index);
  };
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) fail("not a Kubernetes object (expected a mapping)");
  const obj = raw as Record<string, unknown>;
  const kind = obj.kind;
  const apiVersion = obj.apiVersion;
  if (typeof kind !== "string" || kind === "") fail("Object 'Kind' is missing");
  if (typeof apiVersion !== "string" || apiVersion === "") fail("Object 'apiVersion' is missing");
  if (!isKnownKind(kind as string)) fail(`no matches for kind ${JSON.stringify(kind)} in version ${JSON.stringify(apiVersion)}`);
  if (API_VERSIONS[kind as KubeKind] !== apiVersion) {
    fail(`no matches for kind ${JSON.stringify(kind)} in version ${JSON.stringify(apiVersion)}`);
  }
  if (obj.metadata === undefined || obj.metadata === null) obj.metadata = {};
  if (typeof obj.metadata !== "object" || Array.isArray(obj.metadata)) fail("metadata must be a mapping");
  const meta = obj.metadata as Record<string, unknown>;
  if (!CLUSTER_SCOPED_KINDS.has(kind as string) && (meta.namespace === undefined || meta.namespace === null || meta.namespace === "")) {
    meta.namespace = opts.defaultNamespace ?? "default";
  }
  return obj as unknown as KubeObject;
}

/**
 * Parses multi-document YAML (JSON is YAML too). Empty documents are skipped; `kind: List`
 * documents contribute their items. Document indexes in errors count from 0 over every
 * document of the text, empty ones included.
 */
export function parseManifests(text: string, opts: ParseOptions = {}): KubeObject[] {
  const out: KubeObject[] = [];
  const docs = parseAllDocuments(text, { prettyErrors: false });
  const list = Array.isArray(docs) ? docs : [docs];
  list.forEach((doc, index) => {
    if (doc.errors.length > 0) {
      const e = doc.errors[0]!;
      throw new ManifestError(`${where(opts.source, index)}: invalid YAML: ${e.message}`, opts.source, index);
    }
    const value: unknown = doc.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) return;
    if (typeof value === "object" && !Array.isArray(value) && (value as { kind?: unknown }).kind === "List") {
      const items = (value as { items?: unknown }).items ?? [];
      if (!Array.isArray(items)) {
        throw new ManifestError(`${where(opts.source, index)}: List items must be a sequence`, opts.source, index);
      }
      items.forEach((item, j) => {
        if (item === null || item === undefined) return;
        out.push(toObject(item, opts.source, index, opts, `items[${j}]: `));
      });
      return;
    }
    out.push(toObject(value, opts.source, index, opts, ""));
  });
  return out;
}

const MANIFEST_EXT = /\.(ya?ml|json)$/i;

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * Reads manifests from a file, from every *.yaml/*.yml/*.json file directly in a directory
 * (sorted by name), or from stdin when given "-".
 */
export async function readManifests(pathOrDirOrDash: string, opts: Omit<ParseOptions, "source"> = {}): Promise<KubeObject[]> {
  if (pathOrDirOrDash === "-") return parseManifests(await readStdin(), { ...opts, source: "<stdin>" });
  let st;
  try {
    st = await stat(pathOrDirOrDash);
  } catch (e) {
    throw new ManifestError(`${pathOrDirOrDash}: ${(e as Error).message}`, pathOrDirOrDash, undefined);
  }
  const files: string[] = [];
  if (st.isDirectory()) {
    const names = (await readdir(pathOrDirOrDash)).filter((n) => MANIFEST_EXT.test(n)).sort();
    for (const n of names) {
      const p = join(pathOrDirOrDash, n);
      if ((await stat(p)).isFile()) files.push(p);
    }
  } else {
    files.push(pathOrDirOrDash);
  }
  const out: KubeObject[] = [];
  for (const f of files) {
    const text = await readFile(f, "utf8");
    out.push(...parseManifests(text, { ...opts, source: f }));
  }
  return out;
}

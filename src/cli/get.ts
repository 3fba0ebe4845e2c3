// `tapvip get KIND [NAME…] [-n NS|-A] [-l SELECTOR] [-o wide|yaml|json|name] [--no-headers]`:
// kubectl-like tables (the API's printer columns: services NAME TYPE CLUSTER-IP EXTERNAL-IP
// PORT(S) AGE, + SELECTOR with -o wide; endpoints, endpointslices, pods, namespaces, nodes;
// events LAST SEEN TYPE REASON OBJECT MESSAGE), or the objects as YAML / JSON.

import { parseArgs } from "node:util";
import { stringify } from "yaml";
import type { ClientKind } from "../store/client.js";
import type { StoredObject } from "../store/db.js";
import { humanDuration, toTable } from "../store/api/tables.js";
import { CLIENT_FLAGS, CLIENT_FLAGS_USAGE, CliUsageError, clientFrom, errorText, kindArg, objectRef, processIo, runCommand, type EventLike, type Io } from "./common.js";

export const GET_USAGE = `usage: tapvip get KIND [NAME ...] [-n NAMESPACE | -A] [-l SELECTOR] [-o wide|yaml|json|name] [--no-headers]
  KIND: services (svc), endpoints (ep), endpointslices, pods (po), namespaces (ns), nodes (no), events (ev)
${CLIENT_FLAGS_USAGE}`;

/** Aligned columns, as kubectl's tabwriter prints them (3 spaces between columns). */
export function formatColumns(rows: string[][]): string {
  if (rows.length === 0) return "";
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 3))).join("").trimEnd()).join("\n") + "\n";
}

function eventRows(items: StoredObject[], now: number): { header: string[]; rows: string[][] } {
  return {
    header: ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
    rows: items.map((o) => {
      const e = o as EventLike;
      const t = evTime(e);
      return [
        t ? humanDuration(now - Date.parse(t)) : "<unknown>",
        e.type ?? "",
        e.reason ?? "",
        `${(e.involvedObject?.kind ?? "").toLowerCase()}/${e.involvedObject?.name ?? ""}`,
        e.message ?? "",
      ];
    }),
  };
}

function evTime(o: StoredObject): string {
  const e = o as EventLike;
  return e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? (o.metadata.creationTimestamp as string | undefined) ?? "";
}

/** Header and rows for the kind's table (wide adds the priority-1 columns). */
export function tableRows(kind: ClientKind, items: StoredObject[], opts: { wide: boolean; allNamespaces: boolean; now: number }): { header: string[]; rows: string[][] } {
  let header: string[];
  let rows: string[][];
  if (kind.kind === "Event") ({ header, rows } = eventRows(items, opts.now));
  else {
    const t = toTable(kind.kind, items, { now: opts.now, include: "None" });
    const keep = t.columnDefinitions.map((c, i) => (opts.wide || c.priority === 0 ? i : -1)).filter((i) => i >= 0);
    header = keep.map((i) => t.columnDefinitions[i]!.name.toUpperCase());
    rows = t.rows.map((r) => keep.map((i) => String(r.cells[i] ?? "")));
  }
  if (opts.allNamespaces && kind.namespaced) {
    header = ["NAMESPACE", ...header];
    rows = rows.map((r, i) => [items[i]!.metadata.namespace ?? "", ...r]);
  }
  return { header, rows };
}

export async function getMain(argv: string[], io: Io = processIo): Promise<number> {
  return runCommand(io, "get", GET_USAGE, async () => {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        ...CLIENT_FLAGS,
        namespace: { type: "string", short: "n" },
        "all-namespaces": { type: "boolean", short: "A" },
        selector: { type: "string", short: "l" },
        output: { type: "string", short: "o" },
        "no-headers": { type: "boolean" },
      },
    });
    if (values.help) {
      io.out(`${GET_USAGE}\n`);
      return 0;
    }
    if (positionals.length === 0) throw new CliUsageError("KIND is required");
    const output = values.output ?? "";
    if (!["", "wide", "yaml", "json", "name"].includes(output)) throw new CliUsageError(`-o: unsupported output format "${output}" (wide, yaml, json, name)`);
    const [kindName, ...names] = positionals as [string, ...string[]];
    const kind = kindArg(kindName);
    const all = !!values["all-namespaces"] && names.length === 0;
    const ns = kind.namespaced ? (all ? undefined : (values.namespace ?? "default")) : undefined;
    const client = await clientFrom(values);
    const now = io.now ? io.now() : Date.now();
    let items: StoredObject[] = [];
    let failed = 0;
    try {
      if (names.length) {
        for (const n of names) {
          try {
            items.push(await client.get(kind.kind, ns, n));
          } catch (e) {
            io.err(`${errorText(e)}\n`);
            failed++;
          }
        }
      } else {
        items = (await client.list(kind.kind, { namespace: ns, labelSelector: values.selector })).items;
        items.sort((a, b) =>
          `${a.metadata.namespace ?? ""}/${a.metadata.name ?? ""}` < `${b.metadata.namespace ?? ""}/${b.metadata.name ?? ""}` ? -1 : 1,
        );
        if (kind.kind === "Event") items.sort((a, b) => (Date.parse(evTime(a)) || 0) - (Date.parse(evTime(b)) || 0));
      }
    } finally {
      client.close();
    }

    if (output === "yaml" || output === "json") {
      const doc = names.length === 1 && items.length === 1 ? items[0] : { apiVersion: "v1", kind: "List", metadata: { resourceVersion: "" }, items };
      if (items.length || names.length !== 1) io.out(output === "json" ? `${JSON.stringify(doc, null, 4)}\n` : stringify(doc));
      return failed ? 1 : 0;
    }
    if (output === "name") {
      for (const o of items) io.out(`${objectRef(kind, o.metadata.name ?? "")}\n`);
      return failed ? 1 : 0;
    }
    if (items.length === 0) {
      if (!names.length) io.err(ns ? `No resources found in ${ns} namespace.\n` : "No resources found\n");
      return failed ? 1 : 0;
    }
    const { header, rows } = tableRows(kind, items, { wide: output === "wide", allNamespaces: all, now });
    io.out(formatColumns(values["no-headers"] ? rows : [header, ...rows]));
    return failed ? 1 : 0;
  });
}

// `tapvip apply -f FILE|DIR|- [-f …] [-n NS]`: creates each object of the manifests or, when it
// exists, applies it server-side (the manifest merged into the live object). Prints
// `kind/name created|configured|unchanged` per object; errors print the field and rule.

import { parseArgs } from "node:util";
import { resolveKind } from "../store/client.js";
import { CLIENT_FLAGS, CLIENT_FLAGS_USAGE, CliUsageError, clientFrom, errorText, objectRef, processIo, readManifestArgs, runCommand, type Io } from "./common.js";

export const APPLY_USAGE = `usage: tapvip apply -f FILE|DIR|- [-f ...] [-n NAMESPACE] [--server URL]
${CLIENT_FLAGS_USAGE}`;

export async function applyMain(argv: string[], io: Io = processIo): Promise<number> {
  return runCommand(io, "apply", APPLY_USAGE, async () => {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { ...CLIENT_FLAGS, filename: { type: "string", short: "f", multiple: true }, namespace: { type: "string", short: "n" } },
    });
    if (values.help) {
      io.out(`${APPLY_USAGE}\n`);
      return 0;
    }
    if (positionals.length) throw new CliUsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
    const files = values.filename ?? [];
    if (files.length === 0) throw new CliUsageError("-f FILE|DIR|- is required");
    const manifests = await readManifestArgs(files, io);
    const client = await clientFrom(values);
    let failed = 0;
    try {
      for (const m of manifests) {
        const kind = resolveKind(m.object.kind)!;
        const name = String(m.object.metadata.name ?? m.object.metadata.generateName ?? "");
        if (kind.namespaced && values.namespace) {
          if (m.object.metadata.namespace && m.object.metadata.namespace !== values.namespace) {
            io.err(`error: the namespace from the provided object "${m.object.metadata.namespace}" does not match the namespace "${values.namespace}". You must pass '--namespace=${m.object.metadata.namespace}' to perform this operation.\n`);
            failed++;
            continue;
          }
          m.object.metadata.namespace = values.namespace;
        }
        try {
          const r = await client.apply(m.object);
          io.out(`${objectRef(kind, r.object.metadata.name ?? name)} ${r.action}\n`);
        } catch (e) {
          io.err(`${errorText(e)}\n`);
          failed++;
        }
      }
    } finally {
      client.close();
    }
    return failed ? 1 : 0;
  });
}

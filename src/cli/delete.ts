// `tapvip delete KIND NAME [NAME…] [-n NS]` and `tapvip delete -f FILE|DIR|-`: deletes objects
// (pods gracefully unless --grace-period 0 / --now). Prints `kind "name" deleted`.

import { parseArgs } from "node:util";
import { ApiError, resolveKind, type ClientKind } from "../store/client.js";
import { CLIENT_FLAGS, CLIENT_FLAGS_USAGE, CliUsageError, clientFrom, errorText, kindArg, processIo, readManifestArgs, runCommand, type Io } from "./common.js";

export const DELETE_USAGE = `usage: tapvip delete KIND NAME [NAME ...] [-n NAMESPACE] [--grace-period N|--now] [--ignore-not-found]
       tapvip delete -f FILE|DIR|- [-f ...]
${CLIENT_FLAGS_USAGE}`;

export async function deleteMain(argv: string[], io: Io = processIo): Promise<number> {
  return runCommand(io, "delete", DELETE_USAGE, async () => {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        ...CLIENT_FLAGS,
        filename: { type: "string", short: "f", multiple: true },
        namespace: { type: "string", short: "n" },
        "grace-period": { type: "string" },
        now: { type: "boolean" },
        "ignore-not-found": { type: "boolean" },
      },
    });
    if (values.help) {
      io.out(`${DELETE_USAGE}\n`);
      return 0;
    }
    let grace: number | undefined;
    if (values["grace-period"] !== undefined) {
      grace = Number(values["grace-period"]);
      if (!Number.isInteger(grace)) throw new CliUsageError(`--grace-period must be an integer, got ${values["grace-period"]}`);
    }
    if (values.now) grace = 1;
    const targets: { kind: ClientKind; namespace?: string; name: string }[] = [];
    if (values.filename?.length) {
      if (positionals.length) throw new CliUsageError("give either -f or KIND NAME, not both");
      for (const m of await readManifestArgs(values.filename, io)) {
        const kind = resolveKind(m.object.kind)!;
        targets.push({ kind, namespace: values.namespace ?? m.object.metadata.namespace, name: m.object.metadata.name ?? "" });
      }
    } else {
      if (positionals.length < 2) throw new CliUsageError("KIND and NAME are required (or -f FILE)");
      let [kindName, ...names] = positionals as [string, ...string[]];
      // kind/name forms
      if (kindName.includes("/")) {
        names = [kindName, ...names];
        kindName = "";
      }
      for (const n of names) {
        const [k, nm] = n.includes("/") ? (n.split("/", 2) as [string, string]) : [kindName, n];
        targets.push({ kind: kindArg(k), namespace: values.namespace, name: nm });
      }
    }
    const client = await clientFrom(values);
    let failed = 0;
    try {
      for (const t of targets) {
        const ns = t.kind.namespaced ? (t.namespace ?? "default") : undefined;
        try {
          await client.delete(t.kind.kind, ns, t.name, { gracePeriodSeconds: grace });
          io.out(`${t.kind.kind.toLowerCase()}${t.kind.group ? `.${t.kind.group}` : ""} "${t.name}" deleted\n`);
        } catch (e) {
          if (e instanceof ApiError && e.code === 404 && values["ignore-not-found"]) continue;
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

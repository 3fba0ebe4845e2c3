// The tapvip command line. Each subcommand parses its flags, runs, prints errors with the
// field and rule that failed, and exits non-zero on failure.

import { parseArgs } from "node:util";
import { replay } from "./replay.js";
import { runMain, RUN_USAGE } from "../agent/run.js";
import { serveMain } from "../store/cli-serve.js";
import { ctMain, lbMain, CT_USAGE, LB_USAGE } from "../agent/admin.js";
import { captureMain, CAPTURE_USAGE } from "../agent/capture.js";
import { envMain } from "../discovery/env.js";
import { applyMain, getMain, deleteMain, describeMain } from "../cli/index.js";
import { ALGORITHMS, type Algorithm } from "../maps/layout.js";

const USAGE = `usage:
  tapvip env -n NS [--server URL] [--format dotenv|json]
  ${CAPTURE_USAGE}
  ${CT_USAGE}
  ${LB_USAGE}
  tapvip serve --data DIR [--listen ADDR:PORT] [--service-cidr CIDR] [--nodeport-range A-B] [--lb-pool CIDR]
  tapvip apply -f FILE|DIR|- [-n NS] [--server URL]
  tapvip get KIND [NAME] [-n NS|-A] [-l SELECTOR] [-o wide|yaml|json|name] [--server URL]
  tapvip delete KIND NAME [-n NS] [--grace-period N] | delete -f FILE|DIR|- [--server URL]
  tapvip describe service NAME [-n NS] [--server URL]
  ${RUN_USAGE}
  tapvip replay --manifests <file|dir> [--node-ip IP] [--node-name NAME] [--pod-cidr CIDR]
                [--service-cidr CIDR] [--seed N] [--algorithm ALG] [--no-swap-macs]
                <in.pcap> -o <out.pcap> [--verdicts out.jsonl]
`;

class UsageError extends Error {}

async function cmdReplay(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      manifests: { type: "string" },
      "node-ip": { type: "string" },
      "node-name": { type: "string" },
      "pod-cidr": { type: "string" },
      "service-cidr": { type: "string" },
      seed: { type: "string" },
      algorithm: { type: "string" },
      "no-swap-macs": { type: "boolean" },
      output: { type: "string", short: "o" },
      verdicts: { type: "string" },
    },
  });
  if (!values.manifests) throw new UsageError("replay: --manifests is required");
  if (positionals.length !== 1) throw new UsageError("replay: exactly one input capture is required");
  if (!values.output) throw new UsageError("replay: -o <out.pcap> is required");
  const seed = values.seed === undefined ? 1 : Number(values.seed);
  if (!Number.isInteger(seed) || seed < 0) throw new UsageError(`replay: --seed must be a non-negative integer, got ${values.seed}`);
  const alg = values.algorithm as Algorithm | undefined;
  if (alg !== undefined && (!(alg in ALGORITHMS) || (alg as string) === "default")) throw new UsageError(`replay: --algorithm: unsupported value "${alg}"`);
  const s = await replay({
    manifests: values.manifests,
    input: positionals[0]!,
    output: values.output,
    verdicts: values.verdicts,
    nodeIP: values["node-ip"],
    nodeName: values["node-name"],
    podCIDR: values["pod-cidr"],
    serviceCIDR: values["service-cidr"],
    seed,
    algorithm: alg,
    swapMacs: !values["no-swap-macs"],
    log: (l) => process.stderr.write(`${l}\n`),
  });
  const reasons = Object.entries(s.byReason).map(([k, v]) => `${k}=${v}`).join(" ");
  process.stdout.write(`replayed ${s.frames} frames through ${s.services} service ports: ${Object.entries(s.byVerdict).map(([k, v]) => `${k}=${v}`).join(" ")}; wrote ${s.written} frames to ${values.output}\nreasons: ${reasons}\n`);
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case "replay":
        return await cmdReplay(rest);
      case "run":
        return await runMain(rest);
      case "serve":
        return await serveMain(rest);
      case "ct":
        return await ctMain(rest);
      case "capture":
        return await captureMain(rest);
      case "env":
        return await envMain(rest);
      case "lb":
        return await lbMain(rest);
      case "apply":
        return await applyMain(rest);
      case "get":
        return await getMain(rest);
      case "delete":
        return await deleteMain(rest);
      case "describe":
        return await describeMain(rest);
      case undefined:
      case "help":
      case "--help":
      case "-h":
        process.stdout.write(USAGE);
        return cmd === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command "${cmd}"`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`tapvip: ${e.message}\n${USAGE}`);
      return 2;
    }
    process.stderr.write(`tapvip: ${(e as Error).message}\n`);
    return 1;
  }
}

if (process.argv[1] && /(cli\.js|tapvip(\.js)?)$/.test(process.argv[1])) {
  // Output piped into `head` and the like: a closed pipe ends the command quietly.
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(0);
    throw e;
  });
  main(process.argv.slice(2)).then((code) => process.exit(code));
}

// Discovery by environment variables on the node in a box, the way the demo does it: pods
// start with the Service variables of their namespace at that moment (tapvip env → podEnv), so a
// pod started before a Service lacks it — in the environment its process really got
// (/proc/PID/environ) — and one started after has it and reaches the Service through
// $MY_SERVICE_SERVICE_HOST:$MY_SERVICE_SERVICE_PORT from inside the pod.

import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { netnsUnavailable, cleanupAll, sweepStale } from "../helpers/netns.js";
import { parseDotenv } from "../../src/discovery/env.js";
import { buildBox, startServer, startIdlePod, waitForOutput, Agent, podYaml, podEnv, podExec, processEnv, eventually, type Box } from "../../src/demo/topology.js";

const skip = netnsUnavailable();

describe.skipIf(skip !== null)(`pods start with the Service environment of their start (${skip ?? "root"})`, () => {
  let box: Box;
  let agent: Agent;

  beforeAll(async () => {
    sweepStale();
    box = buildBox(["envweb", "envearly", "envlate"]);
    agent = new Agent(box, { tap: "tvenv", apiPort: 16580, dataDir: join(mkdtempSync(join(tmpdir(), "tapvip-env-")), "data"),
      extraArgs: ["--admin-address", "off", "--healthz-address", "off"] });
    await agent.start();
  }, 60_000);

  afterAll(() => {
    agent?.child?.kill("SIGKILL");
    cleanupAll();
  });

  it("before the Service: absent; after: present, and curl through the variables works", async () => {
    const [web, early, late] = box.pods as [typeof box.pods[0], typeof box.pods[0], typeof box.pods[0]];
    const varsNow = () => parseDotenv(agent.cli(["env", "-n", "default"]));

    // the backend and a client pod start before the Service exists
    web.env = podEnv(web, varsNow());
    const webProc = startServer(web, [8080], []);
    await waitForOutput(webProc, "ready", 10_000);
    const earlyProc = startIdlePod(early, varsNow());

    agent.apply(`
apiVersion: v1
kind: Service
metadata: {name: my-service, namespace: default}
spec:
  selector: {app: envweb}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
${podYaml("envweb", web.ip, { labels: { app: "envweb" } })}`);
    const vip = agent.get<{ spec: { clusterIP: string } }>("service", "my-service").spec.clusterIP;

    // a client pod started now
    const lateProc = startIdlePod(late, varsNow());

    const webEnv = processEnv(webProc.pid!);
    const earlyEnv = processEnv(earlyProc.pid!);
    const lateEnv = processEnv(lateProc.pid!);
    expect(webEnv.ME).toBe("envweb"); // the workload's own process, not `ip netns exec`
    for (const e of [webEnv, earlyEnv, lateEnv]) expect(e.KUBERNETES_SERVICE_HOST).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(webEnv.MY_SERVICE_SERVICE_HOST).toBeUndefined();
    expect(earlyEnv.MY_SERVICE_SERVICE_HOST).toBeUndefined();
    expect(lateEnv).toMatchObject({ MY_SERVICE_SERVICE_HOST: vip, MY_SERVICE_SERVICE_PORT: "80", MY_SERVICE_SERVICE_PORT_HTTP: "80", HOSTNAME: "envlate" });
    // exec in the pods sees the same environments
    expect(podExec(early, ["sh", "-c", 'echo "${MY_SERVICE_SERVICE_HOST:-unset}"']).trim()).toBe("unset");
    const body = await eventually(() => {
      try {
        return podExec(late, ["sh", "-c", 'curl -sS --max-time 2 "http://$MY_SERVICE_SERVICE_HOST:$MY_SERVICE_SERVICE_PORT/"']);
      } catch {
        return null;
      }
    }, 10_000);
    expect(body).toMatch(/^envweb saw 10\.244\.0\./);
  }, 40_000);
});

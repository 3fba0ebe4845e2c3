import { defineConfig } from "vitest/config";

// Tests run against the built WASM (build/*.wasm): `npm test` builds first.
// The end-to-end tests run once per TAP datapath: the fast path (virtio-net headers with
// offloads, the agent's default), the plain one (`tapvip run --offload off`) and the fast path
// on two queues served by two worker threads over shared maps (`--queues 2`). Their namespaces
// are named per process, so the projects may run side by side.
const E2E = "test/e2e/**/*.test.ts";
const AGENTLESS_E2E = "test/e2e/netconfig.test.ts"; // no agent, no datapath: once is enough

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    maxWorkers: 2,
    projects: [
      { extends: true, test: { name: "unit", include: ["test/**/*.test.ts"], exclude: [E2E] } },
      { extends: true, test: { name: "e2e-offload", include: [E2E], env: { TAPVIP_OFFLOAD: "on" } } },
      { extends: true, test: { name: "e2e-plain", include: [E2E], exclude: [AGENTLESS_E2E], env: { TAPVIP_OFFLOAD: "off" } } },
      { extends: true, test: { name: "e2e-queues", include: [E2E], exclude: [AGENTLESS_E2E], env: { TAPVIP_OFFLOAD: "on", TAPVIP_QUEUES: "2" } } },
    ],
  },
});

import { defineConfig } from "vitest/config";

// Tests run against the built WASM (build/*.wasm): `npm test` builds first.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    maxWorkers: 2,
  },
});

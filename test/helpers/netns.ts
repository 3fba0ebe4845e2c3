// Test access to the namespace helpers (src/host/netns.ts), shared with the demo.
export * from "../../src/host/netns.js";

import { defineConfig } from "vitest/config";

// Two projects: fast pure unit tests beside the code, and integration/e2e tests that start real servers
// (etcd, kube-apiserver, kwok, nats-server) through test/harness and so run one file at a time.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          // test/harness holds pure tests of the harness itself (profile fabrics vs the C4P model): no cluster needed.
          include: ["{cli,crds,common,operator,agent,gateway,bench,scripts}/**/*.test.ts", "test/harness/**/*.test.ts"],
          environment: "node",
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/**/*.test.ts"],
          exclude: ["test/harness/**", "**/node_modules/**"],
          environment: "node",
          testTimeout: 120_000,
          hookTimeout: 300_000,
          fileParallelism: false,
          globalSetup: ["test/harness/global-setup.ts"],
        },
      },
    ],
  },
});

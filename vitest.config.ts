import { defineConfig } from "vitest/config";

// Two projects: fast pure unit tests beside the code, and integration/e2e tests that start real servers
// (etcd, kube-apiserver, kwok, nats-server) through test/harness and so run one file at a time.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["{crds,operator,agent,bench,scripts}/**/*.test.ts"],
          environment: "node",
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/**/*.test.ts"],
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

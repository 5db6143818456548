/** The cluster a test file runs against, with a fresh-namespace helper: test/harness/context.ts in one object. */
import { freshNamespace, getTestCluster, type TestCluster as HarnessCluster } from "../harness/context.js";

export interface TestCluster extends HarnessCluster {
  /** Creates a namespace `<prefix>-<random>` (deleted after the test, or after the file from a hook). */
  freshNamespace(prefix: string): Promise<string>;
}

export function testCluster(): TestCluster {
  return { ...getTestCluster(), freshNamespace };
}

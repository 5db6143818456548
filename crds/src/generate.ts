/**
 * Writes the generated CRD YAML under crds/. `npm run gen:crds`; a unit test fails when the committed YAML is stale.
 */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { renderCrdFiles } from "./render.js";

const crdsDir = fileURLToPath(new URL("..", import.meta.url));
for (const { fileName, yaml } of renderCrdFiles()) {
  writeFileSync(`${crdsDir}/${fileName}`, yaml);
  console.log(`wrote crds/${fileName}`);
}

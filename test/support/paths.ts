import path from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root, for entry points and files tests and scripts start from. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

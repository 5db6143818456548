// @ts-check
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "bench/results/", "agent/src/grpc/generated/", "**/*.py"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-restricted-syntax": [
        "error",
        { selector: "TSEnumDeclaration", message: "Use an `as const` object and a derived union instead of an enum." },
      ],
    },
  },
  // Production code never imports test code: what a test helper and a shipped command both need (cluster profiles)
  // lives in common/. The typescript-eslint twin of no-restricted-imports, so the component boundaries below keep
  // their own options. Test files beside the code may use the harness.
  {
    files: ["{cli,crds,common,operator,agent,gateway}/**/*.ts"],
    ignores: ["**/*.test.ts"],
    rules: {
      "@typescript-eslint/no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              regex: "(^|/)test/",
              message: "Production code must not import from test/: move what both need to common/.",
            },
          ],
        },
      ],
    },
  },
  // Component boundaries: what both the operator and the agent need lives in common/ (or crds/, the API).
  {
    files: ["agent/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              group: ["**/operator/**"],
              message: "The agent must not import operator internals: move shared code to common/.",
            },
          ],
        },
      ],
    },
  },
  {
    files: ["gateway/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              group: ["**/operator/**", "**/agent/**"],
              message: "The gateway must not import operator or agent internals: move shared code to common/.",
            },
          ],
        },
      ],
    },
  },
  {
    files: ["common/**/*.ts", "crds/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              group: ["**/operator/**", "**/agent/**", "**/gateway/**"],
              message: "common/ and crds/ are imported by the components, never the other way round.",
            },
          ],
        },
      ],
    },
  },
);

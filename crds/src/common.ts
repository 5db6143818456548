/** Schema pieces both resources share. */
import { Type } from "@sinclair/typebox";

export const API_GROUP = "gpufleet.io";
export const API_VERSION = "v1alpha1";
export const API_GROUP_VERSION = `${API_GROUP}/${API_VERSION}`;

/** Names of objects derived from a resource (pods, services) must stay within DNS-label limits. */
export const MAX_RESOURCE_NAME_LENGTH = 40;

export const EnvVarSchema = Type.Object({
  name: Type.String({
    minLength: 1,
    maxLength: 256,
    pattern: "^[-._a-zA-Z][-._a-zA-Z0-9]*$",
    description: "Variable name.",
  }),
  value: Type.String({ maxLength: 32768, description: "Variable value." }),
});

export const EnvSchema = Type.Array(EnvVarSchema, { maxItems: 64, default: [] });

/** Root-level CEL rule shared by both resources. */
export const NAME_LENGTH_RULE = {
  rule: `self.metadata.name.size() <= ${MAX_RESOURCE_NAME_LENGTH}`,
  message: `metadata.name must be at most ${MAX_RESOURCE_NAME_LENGTH} characters (pod and service names are derived from it)`,
};

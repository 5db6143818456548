export { detectFaults } from "./detect.js";
export { C4dMemo } from "./memo.js";
export { c4dConfigFor, C4D_DEFAULTS, DEFAULT_FAULT_POLICY, type C4dConfig } from "./config.js";
export {
  C4dAction,
  C4dFaultClass,
  type C4dAmbiguity,
  type C4dBlame,
  type C4dEvidence,
  type C4dInput,
  type C4dReport,
  type C4dVerdict,
} from "./types.js";

/** The gpufleet.io API: resource types, schemas, conditions and topology labels. */
export * from "./common.js";
export * from "./conditions.js";
export * from "./reasons.js";
export * from "./serving-deployment.js";
export * from "./training-job.js";
export * from "./topology.js";
export * from "./fabric-topology.js";
export * from "./gpu-profile.js";
export { ALL_CRDS, servingDeploymentCrd, trainingJobCrd, fabricTopologyCrd, gpuProfileCrd } from "./crd.js";

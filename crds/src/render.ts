import { stringify } from "yaml";
import { ALL_CRDS } from "./crd.js";

const HEADER = "# Generated from crds/src by `npm run gen:crds`. Do not edit by hand.\n";

export function renderCrdFiles(): { fileName: string; yaml: string }[] {
  return ALL_CRDS.map((crd) => {
    const name = (crd.metadata as { name: string }).name;
    const [plural, ...group] = name.split(".");
    return { fileName: `${group.join(".")}_${plural}.yaml`, yaml: HEADER + stringify(crd, { lineWidth: 0 }) };
  });
}

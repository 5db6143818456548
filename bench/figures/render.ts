/**
 * Renders a Vega-Lite spec to SVG headless: vega-lite compiles it to a Vega spec, and a Vega View with the "none"
 * renderer (no canvas, no DOM) writes the SVG string. Text widths are estimated by Vega without a canvas, which is
 * why every figure keeps labels short.
 */
import * as vega from "vega";
import * as vl from "vega-lite";
import type { TopLevelSpec } from "vega-lite";

/** Look shared by every figure: white background, readable font sizes, a fixed per-series palette. */
export const FIGURE_CONFIG = {
  background: "white",
  font: "sans-serif",
  title: { fontSize: 15, anchor: "start", subtitleFontSize: 11, subtitleColor: "#555" },
  axis: { labelFontSize: 11, titleFontSize: 12, gridColor: "#e6e6e6" },
  legend: { labelFontSize: 11, titleFontSize: 12 },
  header: { labelFontSize: 12, titleFontSize: 12 },
  range: { category: { scheme: "tableau10" } },
} as const;

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const compiled = vl.compile({ ...spec, config: { ...FIGURE_CONFIG, ...(spec.config ?? {}) } } as TopLevelSpec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

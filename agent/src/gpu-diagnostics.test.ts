import { describe, expect, it } from "vitest";
import { GpuMeasurementError, judgeGpuMeasurement, parseMeasurement } from "./gpu-diagnostics.js";
import { FailedPreconditionError } from "./grpc/status.js";

const m = (value: number, unit = "TFLOP/s") => ({
  name: "x",
  value,
  unit,
  details: { medianMs: 1.5, device: "NVIDIA H200" },
});

describe("judgeGpuMeasurement", () => {
  it.each([
    {
      name: "H200 GEMM at 754 of 989 passes",
      diagnostic: "gpu-gemm",
      value: 754,
      unit: "TFLOP/s",
      passed: true,
      fraction: "0.762",
    },
    {
      name: "H200 GEMM at 500 of 989 fails (below 0.6)",
      diagnostic: "gpu-gemm",
      value: 500,
      unit: "TFLOP/s",
      passed: false,
      fraction: "0.506",
    },
    {
      name: "H200 copy at 4241 of 4800 passes",
      diagnostic: "hbm-copy",
      value: 4241,
      unit: "GB/s",
      passed: true,
      fraction: "0.884",
    },
    {
      name: "H200 copy at 3000 of 4800 fails (below 0.7)",
      diagnostic: "hbm-copy",
      value: 3000,
      unit: "GB/s",
      passed: false,
      fraction: "0.625",
    },
    {
      name: "all-reduce at 360 of 450 passes",
      diagnostic: "all-reduce",
      value: 360,
      unit: "GB/s",
      passed: true,
      fraction: "0.800",
    },
  ] as const)("$name", ({ diagnostic, value, unit, passed, fraction }) => {
    const v = judgeGpuMeasurement(diagnostic, m(value, unit), "H200-141GB");
    expect(v.passed).toBe(passed);
    expect(v.details).toMatchObject({ fraction, measured: `${value} ${unit}`, medianMs: "1.5", device: "NVIDIA H200" });
    expect(v.summary).toContain(passed ? "at or above" : "BELOW");
  });

  it("does not pass a measurement it has no catalog figure to judge against", () => {
    const v = judgeGpuMeasurement("gpu-gemm", m(754), undefined);
    expect(v.passed).toBe(false);
    expect(v.summary).toMatch(/no GPU model is known/);
  });
});

describe("parseMeasurement", () => {
  it("reads the CLI's JSON line", () => {
    expect(
      parseMeasurement(0, 'noise\n{"name":"copy","value":4241.2,"unit":"GB/s","details":{"bytes":2147483648}}\n', ""),
    ).toEqual({ name: "copy", value: 4241.2, unit: "GB/s", details: { bytes: 2147483648 } });
  });

  it("turns the CLI's precondition exit into FAILED_PRECONDITION with its reason", () => {
    const run = () =>
      parseMeasurement(
        3,
        '{"error":"precondition","name":"all-reduce","reason":"1 GPU visible: an all-reduce needs at least 2 ranks"}',
        "",
      );
    expect(run).toThrow(FailedPreconditionError);
    expect(run).toThrow(/1 GPU visible/);
  });

  it.each([
    {
      name: "a crash with no JSON",
      code: 1,
      stdout: "",
      stderr: "Traceback ... CUDA error: out of memory",
      message: /out of memory/,
    },
    {
      name: "a non-zero exit with JSON",
      code: 1,
      stdout: '{"value":1,"unit":"GB/s"}',
      stderr: "boom",
      message: /failed \(exit 1\): boom/,
    },
    { name: "JSON without a value", code: 0, stdout: '{"unit":"GB/s"}', stderr: "", message: /no measurement/ },
  ])("rejects $name", ({ code, stdout, stderr, message }) => {
    expect(() => parseMeasurement(code, stdout, stderr)).toThrow(GpuMeasurementError);
    expect(() => parseMeasurement(code, stdout, stderr)).toThrow(message);
  });
});

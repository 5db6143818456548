import { describe, expect, it } from "vitest";
import { CircuitBreaker } from "./circuit.js";

const policy = { failureThreshold: 3, openMs: 1000 };

describe("CircuitBreaker", () => {
  it("opens after the threshold of consecutive failures and fails fast while open", () => {
    const c = new CircuitBreaker(policy);
    c.onFailure(0);
    c.onFailure(1);
    expect(c.state(2)).toBe("closed");
    c.onSuccess(); // a success in between resets the count
    c.onFailure(3);
    c.onFailure(4);
    expect(c.tryAcquire(5)).toBe(true);
    c.onFailure(5);
    expect(c.state(6)).toBe("open");
    expect(c.tryAcquire(6)).toBe(false);
    expect(c.retryInMs(6)).toBe(999);
  });

  it("lets exactly one trial through when half-open; its success closes the circuit", () => {
    const c = new CircuitBreaker(policy);
    for (let i = 0; i < 3; i++) c.onFailure(0);
    expect(c.state(999)).toBe("open");
    expect(c.state(1000)).toBe("half-open");
    expect(c.tryAcquire(1000)).toBe(true);
    expect(c.tryAcquire(1001)).toBe(false);
    c.onSuccess();
    expect(c.state(1002)).toBe("closed");
    expect(c.tryAcquire(1002)).toBe(true);
  });

  it("re-opens for a full cool-down when the half-open trial fails", () => {
    const c = new CircuitBreaker(policy);
    for (let i = 0; i < 3; i++) c.onFailure(0);
    expect(c.tryAcquire(1500)).toBe(true);
    c.onFailure(1500);
    expect(c.state(2499)).toBe("open");
    expect(c.tryAcquire(2499)).toBe(false);
    expect(c.state(2500)).toBe("half-open");
  });
});

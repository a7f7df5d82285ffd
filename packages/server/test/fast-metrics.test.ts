import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Counter, Histogram, Registry } from "prom-client";
import { FastCounter, FastHistogram } from "../src/ops/fast-metrics.js";

/**
 * The fast series must expose exactly what prom-client's own metrics expose
 * for the same observations: the same lines, in the same order, whatever
 * the labels and values.
 */

const buckets = [0.001, 0.005, 0.01, 0.1, 1];
const observations: [Record<"service" | "method", string>, number][] = [
  [{ service: "a", method: "Get" }, 0.0004],
  [{ service: "a", method: "Get" }, 0.005],
  [{ service: "a", method: "Get" }, 0.3],
  [{ service: "b", method: "Set" }, 7],
  [{ service: "a", method: "Get" }, 0.001],
  [{ service: 'quote"and\\slash', method: "new\nline" }, 0.02],
];

describe("fast metrics", () => {
  it("a FastHistogram exposes what a prom-client Histogram exposes for the same values", async () => {
    const slowRegistry = new Registry();
    const fastRegistry = new Registry();
    const config = { name: "h_seconds", help: "help", labelNames: ["service", "method"] as const, buckets };
    const slow = new Histogram({ ...config, labelNames: [...config.labelNames], registers: [slowRegistry] });
    const fast = new FastHistogram({ ...config, labelNames: [...config.labelNames], registers: [fastRegistry] });
    for (const [labels, value] of observations) {
      slow.observe(labels, value);
      fast.series(labels).observe(value);
    }
    assert.equal(await fastRegistry.metrics(), await slowRegistry.metrics());
    fast.reset();
    slow.reset();
    assert.equal(await fastRegistry.metrics(), await slowRegistry.metrics(), "after a reset");
  });

  it("a FastCounter exposes what a prom-client Counter exposes for the same increments", async () => {
    const slowRegistry = new Registry();
    const fastRegistry = new Registry();
    const config = { name: "c_total", help: "help", labelNames: ["service", "method"] };
    const slow = new Counter({ ...config, registers: [slowRegistry] });
    const fast = new FastCounter({ ...config, registers: [fastRegistry] });
    for (const [labels, value] of observations) {
      slow.inc(labels, value);
      fast.series(labels).inc(value);
    }
    slow.inc({ service: "a", method: "Get" });
    fast.series({ service: "a", method: "Get" }).inc();
    assert.equal(await fastRegistry.metrics(), await slowRegistry.metrics());
  });

  it("a series timer records the time that passed", async () => {
    const fast = new FastHistogram({ name: "t_seconds", help: "help", labelNames: ["x"], buckets, registers: [] });
    const series = fast.series({ x: "1" });
    const stop = series.startTimer();
    await new Promise((resolve) => setTimeout(resolve, 20));
    stop();
    assert.equal(series.count, 1);
    assert.ok(series.sum >= 0.015 && series.sum < 1, `${series.sum} s`);
    assert.equal(series.counts[3], 1, "in the 0.1 s bucket");
  });
});

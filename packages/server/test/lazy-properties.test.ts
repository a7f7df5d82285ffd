import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { describe, it } from "node:test";
import { forwardProperties } from "@stategate/api";

/**
 * forwardProperties gives the per-call objects of the direct gRPC path and of
 * the Node SDK (requests, handler contexts, responses) their lazy `signal`,
 * `header` and `trailer`. It replaced object literal getters, which V8 keeps
 * in the old generation with the whole call behind them (BENCHMARKS.md,
 * "minor GC"): the last test holds it to the property that matters, one
 * shared hidden class in fast mode.
 */

describe("forwardProperties", () => {
  it("reads the source when the property is read, not before, and each time", () => {
    let reads = 0;
    const source = {
      get signal() {
        reads++;
        return `signal ${reads}`;
      },
    };
    const target = forwardProperties({ stream: false }, source, ["signal"]);
    assert.equal(reads, 0);
    assert.equal(target.signal, "signal 1");
    assert.equal(target.signal, "signal 2");
    assert.equal(target.stream, false);
  });

  it("makes own, enumerable, read-only properties, which a spread copies by value", () => {
    const target = forwardProperties({ message: "m" }, { header: "h", trailer: "t" }, ["header", "trailer"]);
    assert.deepEqual(Object.keys(target), ["message", "header", "trailer"]);
    assert.deepEqual({ ...target }, { message: "m", header: "h", trailer: "t" });
    assert.throws(() => {
      (target as { header: string }).header = "other";
    }, TypeError);
  });

  it("gives every object one hidden class in fast mode, where an object literal getter is a dictionary", () => {
    // V8's own view, through its test natives in a child process.
    const api = createRequire(import.meta.url).resolve("@stategate/api");
    const script = `
      const { forwardProperties } = await import(${JSON.stringify(api)});
      const make = (n) => forwardProperties({ stream: false, message: n }, { signal: n }, ["signal"]);
      const a = make(1), b = make(2);
      const literal = (n) => ({ message: n, get signal() { return n; } });
      console.log(JSON.stringify({
        shared: %HaveSameMap(a, b),
        fast: %HasFastProperties(a),
        literalFast: %HasFastProperties(literal(1)),
      }));`;
    const out = execFileSync(process.execPath, ["--allow-natives-syntax", "--input-type=module", "-e", script], {
      encoding: "utf8",
    });
    assert.deepEqual(JSON.parse(out), { shared: true, fast: true, literalFast: false });
  });
});

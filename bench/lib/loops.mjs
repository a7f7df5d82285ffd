// The two load shapes.
//
// Open loop: requests are sent on a fixed timetable whatever the previous
// ones are doing, and each latency is measured from the time the request was
// scheduled, not from when it was actually sent. A stall therefore shows up
// in every request it delayed (no coordinated omission), as with wrk2.
//
// Closed loop: `concurrency` workers each send the next request as soon as
// their previous one answers; the figure is the throughput.
import { setImmediate as immediate } from "node:timers/promises";
import { createHistogram, encode, recordMs, summary } from "./hist.mjs";

const isPromise = (value) => value !== null && typeof value === "object" && typeof value.then === "function";

/**
 * Sends `op(i)` `rate` times a second for `durationMs`; resolves when every
 * request has settled, or at `graceMs` after the last scheduled send,
 * whichever comes first. Returns histograms of latency from the scheduled
 * time (`latency`) and from the actual send (`service`).
 *
 * A request still unanswered at that deadline counts as `unanswered` (not
 * ok) and is recorded in `latency` at the time it had waited so far: a lower
 * bound of its real latency, so a saturated path never looks faster for the
 * requests it did not answer.
 */
export function openLoop(op, { rate, durationMs, firstIndex = 0, graceMs = Number.POSITIVE_INFINITY }) {
  const total = Math.max(1, Math.round((rate * durationMs) / 1000));
  const interval = 1000 / rate;
  const latency = createHistogram();
  const service = createHistogram();
  let sent = 0;
  let ok = 0;
  let errors = 0;
  let unanswered = 0;
  let firstError;
  let settled = 0;
  let maxInFlight = 0;
  let finished = false;
  const pending = new Map();
  const cpuBefore = process.cpuUsage();
  const start = performance.now() + 5;
  let drainedResolve;
  const drained = new Promise((resolve) => {
    drainedResolve = resolve;
  });
  return new Promise((resolve) => {
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(deadline);
      const now = performance.now();
      for (const scheduledAt of pending.values()) {
        unanswered++;
        recordMs(latency, now - scheduledAt);
      }
      const elapsedMs = now - start;
      const cpu = process.cpuUsage(cpuBefore);
      const result = {
        scheduled: total,
        sent,
        ok,
        errors,
        unanswered,
        firstError,
        maxInFlight,
        elapsedMs,
        achievedRate: (ok * 1000) / Math.max(1, elapsedMs),
        loadgenCpuSeconds: (cpu.user + cpu.system) / 1e6,
        latency: encode(latency),
        service: encode(service),
        summary: summary(latency),
      };
      // Resolves once the requests left unanswered at the deadline have settled too
      // (not serialised with the result).
      Object.defineProperty(result, "drained", { value: drained, enumerable: false });
      resolve(result);
    };
    const deadline = Number.isFinite(graceMs) ? setTimeout(finish, 5 + durationMs + graceMs) : undefined;
    const done = (index, scheduledAt, sentAt, error) => {
      if (++settled === total) drainedResolve();
      if (finished) return;
      pending.delete(index);
      const now = performance.now();
      if (error === undefined) {
        ok++;
        recordMs(latency, now - scheduledAt);
        recordMs(service, now - sentAt);
      } else {
        errors++;
        firstError ??= String(error?.message ?? error);
      }
      if (settled === total) finish();
    };
    const tick = () => {
      if (finished) return;
      const now = performance.now();
      while (sent < total && start + sent * interval <= now) {
        const scheduledAt = start + sent * interval;
        const index = firstIndex + sent;
        sent++;
        maxInFlight = Math.max(maxInFlight, sent - settled);
        const sentAt = performance.now();
        pending.set(index, scheduledAt);
        try {
          const result = op(index);
          if (isPromise(result)) {
            result.then(
              () => done(index, scheduledAt, sentAt),
              (error) => done(index, scheduledAt, sentAt, error ?? "error"),
            );
          } else {
            done(index, scheduledAt, sentAt);
          }
        } catch (error) {
          done(index, scheduledAt, sentAt, error ?? "error");
        }
      }
      if (sent < total) setTimeout(tick, Math.max(0, start + sent * interval - performance.now()));
    };
    setTimeout(tick, 5);
  });
}

/**
 * Runs `concurrency` workers back to back: `warmupMs` unmeasured, then a
 * measured window of `durationMs`. Throughput counts the requests that
 * completed inside the window, whenever they started. The window stays open
 * past `durationMs` until at least `minOps` have completed (a very slow cell
 * on a loaded machine), up to a minute, so a rate is never computed from
 * nothing; its real length is reported. Workers stop starting requests when
 * it closes; what is in flight then is awaited but not counted.
 */
export async function closedLoop(op, { concurrency, durationMs, warmupMs = 0, firstIndex = 0, minOps = 1 }) {
  const latency = createHistogram();
  const measureFrom = performance.now() + warmupMs;
  const due = measureFrom + durationMs;
  const hardStop = measureFrom + Math.max(durationMs, 60_000);
  let closedAt;
  let next = firstIndex;
  let ok = 0;
  let errors = 0;
  let firstError;
  let cpuBefore;
  const worker = async () => {
    let turns = 0;
    while (closedAt === undefined) {
      const started = performance.now();
      let failed = false;
      try {
        const result = op(next++);
        if (isPromise(result)) await result;
        // A synchronous backend (SQLite in this process) must still let timers and I/O run.
        else if ((++turns & 63) === 0) await immediate();
      } catch (error) {
        failed = true;
        firstError ??= String(error?.message ?? error);
      }
      const ended = performance.now();
      if (closedAt !== undefined || ended < measureFrom) continue;
      cpuBefore ??= process.cpuUsage();
      if (failed) errors++;
      else {
        ok++;
        recordMs(latency, ended - started);
      }
      if ((ended >= due && ok >= minOps) || ended >= hardStop) closedAt = ended;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const cpu = process.cpuUsage(cpuBefore);
  const windowMs = closedAt - measureFrom;
  return {
    concurrency,
    ok,
    errors,
    firstError,
    durationMs: windowMs,
    opsPerSecond: (ok * 1000) / windowMs,
    loadgenCpuSeconds: (cpu.user + cpu.system) / 1e6,
    latency: encode(latency),
    summary: summary(latency),
  };
}

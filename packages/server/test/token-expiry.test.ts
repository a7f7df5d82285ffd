import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { TimerClock } from "../src/auth/expiry.js";
import { callAt, MAX_TIMER_MS } from "../src/auth/expiry.js";

// A stream opened with a token ends when the token expires, however far away
// that is. setTimeout fires at once for a delay past 2^31-1 ms (about 24.8
// days), so the timer behind it is re-armed in steps; this checks the steps
// with a clock of our own instead of waiting for days.

const DAY_MS = 86_400_000;

/** A fake clock: timers fire only when `advance` moves time past them. */
function fakeClock(start = 1_700_000_000_000) {
  let now = start;
  let next = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  const delays: number[] = [];
  const clock: TimerClock = {
    now: () => now,
    setTimeout(fn, ms) {
      delays.push(ms);
      const id = ++next;
      timers.set(id, { at: now + ms, fn });
      return id;
    },
    clearTimeout(handle) {
      timers.delete(handle as number);
    },
  };
  /** Moves time forward by `ms`, firing the timers due on the way, in order. */
  const advance = (ms: number) => {
    const end = now + ms;
    while (true) {
      const due = [...timers.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      timers.delete(due[0]);
      now = due[1].at;
      due[1].fn();
    }
    now = end;
  };
  return { clock, advance, delays, pending: () => timers.size, now: () => now };
}

describe("callAt: a timer for a time however far away", () => {
  it("a token expiring in a year: steps of at most 2^31-1 ms, and it fires at the expiry, not before", () => {
    const { clock, advance, delays, now } = fakeClock();
    const expiresAt = now() + 365 * DAY_MS;
    let firedAt: number | undefined;
    callAt(
      expiresAt,
      () => {
        firedAt = now();
      },
      clock,
    );
    assert.equal(delays[0], MAX_TIMER_MS, "the first step is as long as setTimeout takes, never longer");
    advance(364 * DAY_MS);
    assert.equal(firedAt, undefined, "not a day early");
    assert.ok(
      delays.every((ms) => ms > 0 && ms <= MAX_TIMER_MS),
      `every step within setTimeout's range: ${delays}`,
    );
    advance(DAY_MS - 1);
    assert.equal(firedAt, undefined, "not a millisecond early");
    advance(1);
    assert.equal(firedAt, expiresAt);
    assert.equal(delays.length, Math.ceil((365 * DAY_MS) / MAX_TIMER_MS), "one step per 24.8 days");
  });

  it("a near expiry is one timer of the exact delay", () => {
    const { clock, advance, delays, now } = fakeClock();
    let fired = 0;
    callAt(now() + 1_500, () => fired++, clock);
    assert.deepEqual(delays, [1_500]);
    advance(1_499);
    assert.equal(fired, 0);
    advance(1);
    assert.equal(fired, 1);
    advance(10 * MAX_TIMER_MS);
    assert.equal(fired, 1, "once");
  });

  it("a time already past fires at once; a cancelled timer never fires", () => {
    const { clock, advance, pending, now } = fakeClock();
    let past = 0;
    callAt(now() - 5, () => past++, clock);
    assert.equal(past, 1);
    let far = 0;
    const cancel = callAt(now() + 100 * DAY_MS, () => far++, clock);
    advance(50 * DAY_MS);
    cancel();
    assert.equal(pending(), 0, "no timer left behind");
    advance(100 * DAY_MS);
    assert.equal(far, 0);
  });

  it("the real clock: fires after its delay", async () => {
    const started = Date.now();
    const firedAt = await new Promise<number>((resolve) => callAt(started + 50, () => resolve(Date.now())));
    assert.ok(firedAt - started >= 45, `fired after ${firedAt - started} ms`);
  });
});

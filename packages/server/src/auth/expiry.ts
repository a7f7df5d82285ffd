/** The longest delay setTimeout honours (about 24.8 days); a longer one fires at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** What `callAt` needs of the clock and the timers; tests pass their own. */
export interface TimerClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const systemClock: TimerClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/**
 * Calls `fn` once at `atMs` (ms since the epoch), however far away: a time
 * past setTimeout's range is reached in steps of at most MAX_TIMER_MS, each
 * re-armed from the clock, so a token that expires in a year still ends its
 * stream. A time already past calls `fn` at once. Returns a cancel function.
 *
 * @example
 * const cancel = callAt(identity.expiresAtMs, () => end("token expired"));
 */
export function callAt(atMs: number, fn: () => void, clock: TimerClock = systemClock): () => void {
  let handle: unknown;
  let cancelled = false;
  const arm = () => {
    if (cancelled) return;
    const delay = atMs - clock.now();
    if (delay <= 0) fn();
    else handle = clock.setTimeout(arm, Math.min(delay, MAX_TIMER_MS));
  };
  arm();
  return () => {
    cancelled = true;
    if (handle !== undefined) clock.clearTimeout(handle);
  };
}

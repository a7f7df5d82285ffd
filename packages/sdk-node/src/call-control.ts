import { Code, ConnectError } from "@connectrpc/connect";
import { getAbortSignalReason } from "@connectrpc/connect/protocol";
import type { AbortWatch } from "./h2-exchange.js";

/**
 * What a call's signal aborts with once the call is over. Connect aborts
 * without a reason, and Node 20 then builds a DOMException, stack trace
 * included, for every call; this one is built once. It is the same kind of
 * error (an AbortError), so a listener sees what it would see with Connect.
 */
const completedReason = new DOMException("This operation was aborted", "AbortError");

function ignore() {}

/**
 * One call's cancellation, doing what Connect's `runUnaryCall` and
 * `runStreamingCall` do with two AbortControllers per call: the call aborts
 * when the caller's signal does (with its reason), when the deadline passes
 * (DEADLINE_EXCEEDED), when it fails (with its error) and when it completes.
 *
 * The AbortController behind `signal` is made only when someone asks for the
 * signal (an interceptor reading `req.signal`): aborting one costs Node about
 * 5 µs, a tenth of a whole call. Made late, it starts out aborted if the call
 * already is, so what its holder sees is what Connect's signal would show.
 * The exchange reading the call's stream is told directly, and the deadline
 * timer exists only when there is a timeout.
 */
export class CallControl implements AbortWatch {
  private controller: AbortController | undefined;
  private aborted = false;
  private reason: unknown;
  watcher: AbortWatch["watcher"];
  private timer: NodeJS.Timeout | undefined;
  private outer: AbortSignal | undefined;
  private requests: AsyncIterable<unknown> | undefined;
  private completed = false;

  /**
   * @param outer the caller's signal
   * @param timeoutMs the call's timeout, if it has one
   * @param requests a stream's request messages: told to stop when the call ends, as Connect tells them
   */
  constructor(outer: AbortSignal | undefined, timeoutMs: number | undefined, requests?: AsyncIterable<unknown>) {
    this.requests = requests;
    if (timeoutMs !== undefined) this.timer = setTimeout(onDeadline, timeoutMs, this);
    if (outer !== undefined) {
      if (outer.aborted) {
        this.abort(getAbortSignalReason(outer));
      } else {
        this.outer = outer;
        outer.addEventListener("abort", this);
      }
    }
  }

  /** The signal interceptors and the transport see as `req.signal`. */
  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  /**
   * The signal a request carries if it is not this call's own (an
   * interceptor's), read without making the call's own one.
   */
  foreignSignal(req: object, own: object): AbortSignal | undefined {
    if (req === own) return undefined;
    const signal = (req as { signal: AbortSignal }).signal;
    return this.controller !== undefined && signal === this.controller.signal ? undefined : signal;
  }

  /** Whether the call was aborted, and why (what `signal.aborted` and `signal.reason` say). */
  get abortReason(): { reason: unknown } | undefined {
    return this.aborted ? { reason: this.reason } : undefined;
  }

  /** The caller's signal aborted. */
  handleEvent(): void {
    if (this.outer !== undefined) this.abort(getAbortSignalReason(this.outer));
  }

  /** The deadline passed. */
  expire(): void {
    this.timer = undefined;
    this.abort(new ConnectError("the operation timed out", Code.DeadlineExceeded));
  }

  /** The call completed: the signal aborts, with the pre-built reason. */
  done(): void {
    this.completed = true;
    this.abort(completedReason);
  }

  /**
   * The error a failed call rejects with, as Connect makes it: the abort
   * reason when the call was aborted (CANCELED unless it is a ConnectError
   * already), otherwise the failure itself as a ConnectError.
   */
  fail(reason: unknown): ConnectError {
    const error = this.aborted ? ConnectError.from(this.reason, Code.Canceled) : ConnectError.from(reason);
    this.abort(error);
    return error;
  }

  private abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.outer !== undefined) {
      this.outer.removeEventListener("abort", this);
      this.outer = undefined;
    }
    this.controller?.abort(reason);
    const watcher = this.watcher;
    this.watcher = undefined;
    watcher?.abortedWith(reason);
    const requests = this.requests;
    if (requests !== undefined) {
      this.requests = undefined;
      const it = requests[Symbol.asyncIterator]();
      if (!this.completed) it.throw?.(reason).catch(ignore);
      it.return?.().catch(ignore);
    }
  }
}

function onDeadline(call: CallControl) {
  call.expire();
}

import { createContextKey } from "@connectrpc/connect";

/**
 * Whether a call was aborted (its client left, its deadline passed, the
 * gateway ended it), as the interceptors ask it on every call. An
 * AbortSignal answers too, but on Node 20 making one costs several
 * microseconds, and listening to one a few more: the direct gRPC path makes
 * its call's AbortSignal only when a handler or interceptor asks for
 * `signal` (streams do, unary calls almost never), and tells the rest
 * through this.
 */
export interface CallAbort {
  readonly aborted: boolean;
  /** Why, once aborted. */
  readonly reason: unknown;
  /** Calls `listener` once when the call aborts; returns a function that stops listening. */
  listen(listener: () => void): () => void;
}

/** The CallAbort of a call, set by the doors that keep one; the others are asked through `req.signal`. */
export const kCallAbort = createContextKey<CallAbort | undefined>(undefined);

/**
 * A CallAbort over an AbortSignal, for calls whose door keeps none. A class,
 * not an object literal with getters: V8 keeps a literal's getters in the old
 * generation, and with them the call (see forwardProperties in @stategate/api).
 */
class SignalAbort implements CallAbort {
  constructor(private readonly signal: AbortSignal) {}

  get aborted(): boolean {
    return this.signal.aborted;
  }

  get reason(): unknown {
    return this.signal.reason;
  }

  listen(listener: () => void): () => void {
    const signal = this.signal;
    signal.addEventListener("abort", listener, { once: true });
    return () => signal.removeEventListener("abort", listener);
  }
}

/** A CallAbort over an AbortSignal, for calls whose door keeps none. */
export function signalAbort(signal: AbortSignal): CallAbort {
  return new SignalAbort(signal);
}

/** A call's abort, with an AbortSignal made only when someone asks for it. */
export class LazyAbort implements CallAbort {
  private controller: AbortController | undefined;
  private why: { reason: unknown } | undefined;
  private listeners: (() => void)[] | undefined;

  get aborted(): boolean {
    return this.why !== undefined;
  }

  get reason(): unknown {
    return this.why?.reason;
  }

  /** The call's AbortSignal, made on first use (already aborted if the call was). */
  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.why !== undefined) this.controller.abort(this.why.reason);
    }
    return this.controller.signal;
  }

  listen(listener: () => void): () => void {
    if (this.why !== undefined) {
      listener();
      return () => {};
    }
    this.listeners ??= [];
    const listeners = this.listeners;
    listeners.push(listener);
    return () => {
      const at = listeners.indexOf(listener);
      if (at >= 0) listeners.splice(at, 1);
    };
  }

  /** Aborts the call once; later calls change nothing. */
  abort(reason: unknown): void {
    if (this.why !== undefined) return;
    this.why = { reason };
    const listeners = this.listeners;
    this.listeners = undefined;
    if (listeners) for (const listener of listeners) listener();
    this.controller?.abort(reason);
  }
}

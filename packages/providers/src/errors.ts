/**
 * The error classes adapters throw. The gateway maps each to a gRPC code in
 * one place; any other error is treated as a backend failure (UNAVAILABLE or
 * INTERNAL) and its details stay in the log.
 */

/** The entity was not at the expected version: nothing was written. */
export class VersionConflictError extends Error {
  override readonly name = "VersionConflictError";
  constructor(
    readonly expected: number,
    readonly actual: number,
  ) {
    super(`version conflict: expected ${expected}, found ${actual}`);
  }
}

/** The backend cannot be reached or refused the connection. */
export class ProviderUnavailableError extends Error {
  override readonly name: string = "ProviderUnavailableError";
  constructor(
    readonly provider: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${provider}: ${message}`, options);
  }
}

/**
 * The backend is reachable and answering, but ended this operation at its own
 * time limit (a PostgreSQL statement_timeout, a lock wait timeout): the server
 * said so itself. The gateway answers DEADLINE_EXCEEDED. A backend that does
 * not answer at all is a plain ProviderUnavailableError instead; this class
 * extends it so code that only knows "the backend failed" still treats it so.
 */
export class ProviderTimeoutError extends ProviderUnavailableError {
  override readonly name = "ProviderTimeoutError";
}

/** The value is larger than the backend accepts. */
export class ValueTooLargeError extends Error {
  override readonly name = "ValueTooLargeError";
  constructor(
    readonly limitBytes: number,
    readonly actualBytes: number,
  ) {
    super(`value of ${actualBytes} bytes exceeds the limit of ${limitBytes} bytes`);
  }
}

/** The provider was closed; no further calls are accepted. */
export class ProviderClosedError extends Error {
  override readonly name = "ProviderClosedError";
  constructor(readonly provider: string) {
    super(`${provider}: closed`);
  }
}

/**
 * A provider spec names an unknown provider or carries a bad option. Thrown
 * at start-up so a bad configuration stops the process with a clear message.
 */
export class ProviderConfigError extends Error {
  override readonly name = "ProviderConfigError";
  constructor(
    message: string,
    /** The option at fault ("name" for an unknown provider), when there is one. */
    readonly option?: string,
  ) {
    super(message);
  }
}
